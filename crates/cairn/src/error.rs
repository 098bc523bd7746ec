//! Errors.
//!
//! One umbrella [`Error`] that every narrower error converts into. Errors are split the way toyDB splits them:
//! *deterministic* ones (the same input always fails: a value serde cannot encode, a damaged file) and
//! *environmental* ones (the disk said no). [`Error::is_environmental`] tells them apart, so a caller can decide
//! whether retrying after a reopen can help.

use std::io;
use std::path::PathBuf;

/// A `Result` whose error is Cairn's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Cairn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed. The database refuses further writes until it is reopened if this happened on the write
    /// path (see [`Error::Failed`]).
    #[error("{op} {path}: {source}")]
    Io {
        /// What Cairn was doing, for example "fsync log segment".
        op: &'static str,
        /// The file or directory it was doing it to.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A file of the database is damaged where damage cannot be an interrupted write.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
    /// Another process (or another handle in this process) holds the database directory in exclusive mode.
    #[error(
        "database {path} is locked: open in exclusive mode by another process or another handle in this one; close \
         it first (several processes can share a database if every one opens it with Builder::mode(Mode::Shared))"
    )]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// An exclusive open found processes that have the database directory open in shared mode.
    #[error(
        "database {path} is locked: open in shared mode by other processes; open it in shared mode too \
         (Builder::mode(Mode::Shared)) or close them first"
    )]
    LockedShared {
        /// The database directory.
        path: PathBuf,
    },
    /// An earlier write or fsync failed, so the database no longer knows what reached the disk. It refuses writes
    /// until it is reopened; reads still see the last state that was known durable.
    #[error("database {path} refuses writes after an earlier I/O failure ({cause}); reopen it to recover")]
    Failed {
        /// The database directory.
        path: PathBuf,
        /// The message of the failure that put the database into this state.
        cause: String,
    },
    /// serde could not encode a key or value of a table.
    #[error("table `{table}`: cannot encode {what}: {message}")]
    Encode {
        /// The table name.
        table: String,
        /// "key" or "value".
        what: &'static str,
        /// What serde said.
        message: String,
    },
    /// A stored key or value does not decode as the table's Rust type.
    #[error(
        "table `{table}`: a stored {what} does not decode as the schema's type ({message}) in {file} at offset \
         {offset}; the schema changed incompatibly, or the file is damaged (run `cairn verify`)"
    )]
    Decode {
        /// The table name.
        table: String,
        /// "key" or "value".
        what: &'static str,
        /// The file the record was read from.
        file: PathBuf,
        /// Where in that file the record starts.
        offset: u64,
        /// What serde said.
        message: String,
    },
    /// The types of a table cannot be described (see [`crate::describe`]), so the database cannot store its schema.
    #[error(
        "table `{table}`: cannot describe its {what} type to store it in the schema: {message}. Types whose \
         `Deserialize` accepts no simple value (an empty or zero-filled string, bytes or number) cannot be traced: \
         wrap the value in a type that can, or report the type to Cairn"
    )]
    Describe {
        /// The table.
        table: String,
        /// "key" or "value".
        what: &'static str,
        /// What failed, naming the type.
        message: String,
    },
    /// Records of a table were written by a schema version whose types the running schema cannot read: a type or a
    /// key changed incompatibly. Nothing was read or written.
    #[error(
        "table `{table}`: records written by schema version {writer_version} hold {writer} at `{path}`, where this \
         build's schema (version {reader_version}) has {reader}; this change is not compatible \
         (docs/schema-evolution.md). Keep the old type, or migrate: open the database with the old types and copy \
         the records into a database of the new ones (examples/migrate.rs)"
    )]
    IncompatibleSchema {
        /// The table.
        table: String,
        /// Where in the key or value, as `key` or `value` followed by the path, e.g. `value: Account.balance`.
        path: String,
        /// The schema version that wrote the records.
        writer_version: u32,
        /// The writer's type at `path`.
        writer: String,
        /// The running schema's version.
        reader_version: u32,
        /// The running schema's type at `path`.
        reader: String,
    },
    /// A record written by another schema version cannot be built as the running schema's type, most often because
    /// a field the code added has no default. Nothing was written.
    #[error(
        "table `{table}`: a record written by schema version {writer_version} ({file} at offset {offset}) cannot be \
         read as this build's type: at `{path}`: {message}. Give a field that is new `#[serde(default)]` (or make it \
         an `Option`), or migrate (docs/schema-evolution.md)"
    )]
    RecordIncompatible {
        /// The table.
        table: String,
        /// The schema version that wrote the record.
        writer_version: u32,
        /// The file the record was read from.
        file: PathBuf,
        /// Where in that file the record starts.
        offset: u64,
        /// Where in the value.
        path: String,
        /// What serde said, e.g. "missing field `age`".
        message: String,
    },
    /// The database holds a schema description this build cannot read: it was written by a newer Cairn.
    #[error(
        "database {path}: schema version {version} is stored in a form this build cannot read ({message}); use the \
         Cairn that wrote it or a newer one"
    )]
    SchemaUnreadable {
        /// The database directory.
        path: PathBuf,
        /// The schema version.
        version: u32,
        /// What failed.
        message: String,
    },
    /// A write was attempted from inside a read closure of the same thread; it would wait for itself.
    #[error("cannot write inside a read closure (`read`) on the same thread: finish reading first")]
    WriteInsideRead,
    /// A write was attempted through a table handle while this thread runs a transaction closure; it would wait
    /// for itself. Write through the transaction's tables instead.
    #[error("cannot write through a table handle inside a transaction closure: use the transaction's tables")]
    WriteInsideTransaction,
    /// A write would give a unique index key to a second record. The write was refused; the transaction goes on
    /// (its other writes stand) unless the closure returns the error, as `?` does, and then nothing is committed.
    #[error(
        "unique index `{index}` of table `{table}` already holds {key} for another record; change the value, or \
         change or remove the other record first (earlier in the same transaction works)"
    )]
    UniqueViolation {
        /// The table written.
        table: String,
        /// The unique index.
        index: &'static str,
        /// The index key, printed with `Debug`.
        key: String,
    },
    /// The data on disk holds two records with the same key of a unique index: they were written before the index
    /// was declared.
    #[error(
        "database {path}: unique index `{index}` of table `{table}` finds {key} in more than one record (written \
         before the index was declared); open it with a schema that declares the index non-unique, remove the \
         duplicates, then declare it unique again"
    )]
    IndexCollision {
        /// The database directory.
        path: PathBuf,
        /// The table.
        table: String,
        /// The unique index.
        index: &'static str,
        /// The index key found twice, printed with `Debug`.
        key: String,
    },
    /// An auto-id table has handed out every id up to `u64::MAX`.
    #[error("table `{table}` has no ids left to allocate (the next would pass u64::MAX)")]
    IdsExhausted {
        /// The table.
        table: String,
    },
    /// A backup cannot be written where it was asked to go; nothing was written there.
    #[error("cannot back up into {path}: {problem}")]
    BackupTarget {
        /// The directory the backup was to be written to.
        path: PathBuf,
        /// What is wrong with it, and what to do.
        problem: String,
    },
    /// A single transaction does not fit in one log record.
    #[error("transaction of {size} bytes exceeds the limit of {limit} bytes for one commit; split it")]
    TransactionTooLarge {
        /// The encoded size of the transaction.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An untyped write (`cairn load`, `cairn edit`: [`RawDb`](crate::raw::RawDb)) was refused before anything was
    /// written: the record does not fit the stored schema, or writing it could break what the program relies on.
    #[error("table `{table}`: {problem}")]
    RawWrite {
        /// The table.
        table: String,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// A change feed subscription cannot go on (it lagged, its position is no longer in the log, the database
    /// closed); see [`FeedError`](crate::FeedError).
    #[error(transparent)]
    Feed(crate::FeedError),
    /// The key given does not open the encrypted database: no slot of its key file accepts it. Nothing else was
    /// read.
    #[error("the key does not open database {path}: it expects {expects}; check the key or passphrase (a key file `KEYS` accepts only the keys it was written for)")]
    WrongKey {
        /// The database directory.
        path: PathBuf,
        /// What kind of key the database's key file has slots for.
        expects: &'static str,
    },
    /// The database is encrypted and no key was given, or a file holds encrypted data that this open has no key
    /// for.
    #[error("database {path} is encrypted ({file} holds encrypted data): open it with a key (Builder::encryption, or `--key-file`/`CAIRN_PASSPHRASE` for the cairn command)")]
    KeyRequired {
        /// The database directory.
        path: PathBuf,
        /// The file that showed it: the key file or an encrypted unit's file.
        file: PathBuf,
    },
    /// A key was given for a database that was created without encryption.
    #[error("database {path} is not encrypted, but a key was given: open it without one (encryption is chosen when a database is created; to encrypt this one, copy it into a new encrypted database with `cairn dump` and `cairn load`)")]
    NotEncrypted {
        /// The database directory.
        path: PathBuf,
    },
    /// An encrypted unit does not authenticate: its bytes were changed, or it was moved from another place, file or
    /// database. Nothing of it was used.
    #[error("{file} at offset {offset}: {what} fails authentication: its bytes were changed, or moved here from another place or database; restore the file from a backup")]
    Authentication {
        /// The file.
        file: PathBuf,
        /// The offset of the unit (frame header or snapshot block header) in the file.
        offset: u64,
        /// What was found there.
        what: &'static str,
    },
    /// Key rotation needs the database open in exclusive mode: other processes would keep reading with the old keys.
    #[error("cannot rotate the key of database {path} in shared mode: close the other processes and open it in exclusive mode")]
    RotateShared {
        /// The database directory.
        path: PathBuf,
    },
}

impl From<crate::FeedError> for Error {
    /// A feed error that wraps an engine error (I/O, damage while reading the log) becomes that error.
    fn from(e: crate::FeedError) -> Self {
        match e {
            crate::FeedError::Log(e) => *e,
            e => Error::Feed(e),
        }
    }
}

impl Error {
    /// True for errors caused by the environment (I/O, locks, the failed state) rather than by the data or the call.
    pub fn is_environmental(&self) -> bool {
        matches!(self, Error::Io { .. } | Error::Locked { .. } | Error::LockedShared { .. } | Error::Failed { .. })
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }
}

/// Damage found in a file of the database, with the place it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} is damaged at offset {offset}: {what}; run `cairn verify` to see all damage and `cairn salvage` to copy out what is readable")]
pub struct Corruption {
    /// The damaged file.
    pub file: PathBuf,
    /// The byte offset in that file where the damage starts.
    pub offset: u64,
    /// What is wrong there.
    pub what: String,
}

impl Corruption {
    pub(crate) fn new(file: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        Corruption { file: file.into(), offset, what: what.into() }
    }
}

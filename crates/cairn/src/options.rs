//! Options for opening a database, through [`Builder`].

use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::schema::Schema;
use crate::seal::{Compression, EncryptionKey};
use crate::storage::{FsStorage, Storage};

/// When a commit counts as durable, and so when it returns and becomes visible to readers.
///
/// | mode | a commit returns after | a crash of the machine can lose |
/// |---|---|---|
/// | `Immediate` | its log record is fsynced | nothing that was acknowledged |
/// | `Periodic(d)` | its log record is written to the OS | the commits of the last `d` or so |
/// | `None` | its log record is written to the OS | whatever the OS had not written back |
///
/// A crash of the process alone (the machine keeps running) loses nothing in any mode: every acknowledged commit was
/// handed to the OS. Commits become visible in sequence order, so a `None` commit queued behind an `Immediate` one
/// becomes visible (and returns) once the `Immediate` one is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The commit returns once its log record is fsynced. The default.
    #[default]
    Immediate,
    /// A background thread fsyncs the log at this interval.
    Periodic(Duration),
    /// Cairn never fsyncs the log on its own (it still does at close, at compaction and when a segment fills up).
    None,
}

/// Who may open a database directory at once.
///
/// | mode | who | a write | a read |
/// |---|---|---|---|
/// | `Exclusive` | one open handle, in one process | group commit, as fast as Cairn goes | sees this process's commits |
/// | `Shared` | any number of processes, each in shared mode | takes a file lock, catches up with the others, commits, releases | sees every commit any process finished before it began |
///
/// The two modes refuse each other: an exclusive open of a directory that processes have open in shared mode fails
/// with [`Error::LockedShared`](crate::Error::LockedShared), a shared open of one held exclusively with
/// [`Error::Locked`](crate::Error::Locked). ARCHITECTURE.md ("Shared mode") describes the costs and the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// One process, one handle: a second open fails with [`Error::Locked`](crate::Error::Locked). The default.
    #[default]
    Exclusive,
    /// Several processes, which need not know of each other, on one directory (on one machine: the locks are
    /// advisory file locks and the counter a memory-mapped file). Writes are serialized across processes by a file
    /// lock and are not group-committed; a read first checks, with one atomic load, whether another process
    /// committed, and if so catches up from the log.
    Shared,
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) durability: Durability,
    pub(crate) segment_size: u64,
    pub(crate) compact_after: Option<u64>,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) feed_buffer: usize,
    pub(crate) mode: Mode,
    pub(crate) compression: Compression,
    pub(crate) compress_above: usize,
    pub(crate) encryption: Option<EncryptionKey>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Immediate,
            segment_size: 64 << 20,
            compact_after: Some(64 << 20),
            storage: Arc::new(FsStorage),
            feed_buffer: 1024,
            mode: Mode::Exclusive,
            compression: Compression::None,
            compress_above: 512,
            encryption: None,
        }
    }
}

/// Opens a database with options. Get one from the schema: `MySchema::builder()`.
#[derive(Debug)]
pub struct Builder<S> {
    pub(crate) options: Options,
    _schema: PhantomData<fn() -> S>,
}

impl<S: Schema> Default for Builder<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Schema> Builder<S> {
    /// A builder with the defaults: `Immediate` durability, 64 MiB log segments, automatic compaction once 64 MiB of
    /// log has accumulated since the last snapshot.
    pub fn new() -> Self {
        Builder { options: Options::default(), _schema: PhantomData }
    }

    /// The durability of every commit that does not choose its own.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.options.durability = durability;
        self
    }

    /// The size at which the active log segment is closed and a new one started.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.options.segment_size = bytes.max(4096);
        self
    }

    /// Compact in the background once this many bytes of log have accumulated since the last snapshot; `None` turns
    /// automatic compaction off (`compact()` still works).
    pub fn compact_after(mut self, bytes: Option<u64>) -> Self {
        self.options.compact_after = bytes;
        self
    }

    /// The storage the database lives on. The default is the file system; tests put a failing one here.
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.options.storage = storage;
        self
    }

    /// How many recent commits the change feed keeps in memory for its subscribers (default 1024, at least 1). A
    /// subscriber that falls further behind is told it lagged ([`FeedError::Lagged`](crate::FeedError::Lagged)) and
    /// can resume from the log. The buffer is filled only while someone is subscribed, and holds each commit's
    /// write sets (so also records that the commit replaced or removed) until it leaves the buffer.
    pub fn feed_buffer(mut self, commits: usize) -> Self {
        self.options.feed_buffer = commits.max(1);
        self
    }

    /// Who may open the database at once: [`Mode::Exclusive`] (the default) or [`Mode::Shared`] for several processes.
    /// Every process that opens a directory in shared mode must ask for it. Shared mode needs the file system's
    /// storage (the default [`FsStorage`](crate::FsStorage)): its locks and counter are files beside the log.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.options.mode = mode;
        self
    }

    /// Compress what is written from now on: snapshot blocks, and log payloads from
    /// [`compress_log_above`](Self::compress_log_above) bytes up. Every unit says how it is stored, so a database
    /// opens with any setting, and compressed and plain units mix freely.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.options.compression = compression;
        self
    }

    /// Log payloads (one per transaction) of at least this many bytes are compressed (default 512): below it the
    /// codec's few bytes of framing and its time buy nothing.
    pub fn compress_log_above(mut self, bytes: usize) -> Self {
        self.options.compress_above = bytes;
        self
    }

    /// Encrypt the database under `key` (XChaCha20-Poly1305, every log payload and snapshot block sealed with its
    /// own nonce and bound to its place). A new database is created encrypted; an existing one must have been
    /// created with a key that opens it, else the open fails with
    /// [`Error::WrongKey`](crate::Error::WrongKey) before anything else is read. A database created without a key
    /// refuses one ([`Error::NotEncrypted`](crate::Error::NotEncrypted)); one created with a key refuses an open
    /// without ([`Error::KeyRequired`](crate::Error::KeyRequired)). [`Db::rotate_key`](crate::Db::rotate_key)
    /// changes the key.
    pub fn encryption(mut self, key: EncryptionKey) -> Self {
        self.options.encryption = Some(key);
        self
    }

    /// Opens (or creates) the database in directory `path`.
    pub fn open(self, path: impl AsRef<Path>) -> Result<S> {
        let db = crate::db::open::open(self.options, path.as_ref(), S::tables())?;
        Ok(S::from_db(db))
    }
}

//! Cairn is a database for Rust programs whose schema is the program's own Rust types.
//!
//! One [`schema!`] declaration gives the program a struct with one typed table per field. All data lives in memory
//! as Rust values, so a read costs about a `HashMap` lookup and never waits for a writer. Every commit is appended to
//! a checksummed log and fsynced before it returns (by default); the log is folded into snapshots in the background.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct Account {
//!     email: String,
//!     balance: i64,
//! }
//!
//! cairn::schema! {
//!     pub Bank {
//!         accounts: <String, Account>,
//!         audit: ordered<u64, String>,
//!     }
//! }
//!
//! # fn main() -> Result<(), cairn::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let db = Bank::open(dir.path().join("bank"))?;
//! db.accounts.insert("ada".into(), Account { email: "ada@example.com".into(), balance: 10 })?;
//! assert_eq!(db.accounts.get("ada").map(|a| a.balance), Some(10));
//!
//! // A transaction over two tables: all or nothing.
//! db.transaction(|tx| {
//!     tx.accounts.update(&"ada".to_string(), |a| a.balance -= 3)?;
//!     tx.audit.insert(1, "ada paid 3".into())?;
//!     Ok::<_, cairn::Error>(())
//! })?;
//!
//! // A consistent read over several tables.
//! let (balance, entries) = db.read(|r| (r.accounts.get("ada").map(|a| a.balance), r.audit.len()));
//! assert_eq!((balance, entries), (Some(7), 1));
//! # Ok(()) }
//! ```
//!
//! A directory is opened by one process at a time unless every process opens it in shared mode
//! (`Bank::builder().mode(cairn::Mode::Shared).open(path)`, see [`Mode`]): then writes are serialized across
//! processes by a file lock, and each read sees every commit another process finished before it began.
//!
//! See `ARCHITECTURE.md` for how it works and `docs/format.md` for the bytes on disk.

#![warn(clippy::unwrap_used)]

mod db;
pub mod describe;
mod error;
mod evolve;
mod feed;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod index;
pub mod inspect;
mod log;
mod options;
pub mod raw;
mod schema;
mod seal;
mod snapshot;
mod storage;
mod store;
mod sys;
mod table;
mod txn;

/// Declares a schema: a struct with one typed table per field, plus a transaction struct (`NameTxn`) and a read
/// struct (`NameRead`) with the same fields.
///
/// ```text
/// cairn::schema! {
///     pub SchemaV1 {
///         accounts: <Username, Account>,        // a hash table (the default)
///         events: ordered<u64, Event>,          // an ordered table: range scans in key order
///         notes: auto<Note>,                    // keys are `Id<Note>`s the database allocates (`insert_new`)
///         users: <u64, User> {                  // secondary indexes: a name, a key type, a function of the value
///             by_email: unique String = |u: &User| u.email.clone(),
///             by_city: String = |u: &User| u.city.clone(),
///             by_joined: ordered u64 = |u: &User| u.joined,  // a B-tree: fast ranges in index key order
///         },
///     }
/// }
/// ```
/// A table's field name is its identity on disk. Keys and values are any serde types; hash tables need keys that are
/// `Hash + Eq`, ordered tables keys that are `Ord`; index keys are `Hash + Ord + Clone + Debug`. An index is a hash
/// map unless declared `ordered` (then a B-tree), as tables are: a range over a hash index works but sorts.
///
/// A table with indexes gets a struct of its own (`SchemaV1Users`, and `SchemaV1UsersTxn`, `SchemaV1UsersRead` for
/// transactions and read views) that derefs to the table and has one field per index: `db.users.by_email.get(..)`.
/// Indexes are maintained in the transaction that writes; a write that would give a unique index key to a second
/// record fails with [`Error::UniqueViolation`]. They are kept in memory only and rebuilt at open.
///
/// The database stores a description of the schema's types and reads records written by other versions of them by
/// field and variant name (docs/schema-evolution.md). A table renamed in the code keeps its data when it names its
/// earlier name: `#[renamed_from(people)] persons: <u64, Person>,`.
pub use cairn_macros::schema;

// Opening a database.
pub use db::Db;
pub use options::{Builder, Durability, Mode};
pub use seal::{Compression, EncryptionKey};

// Schema evolution: the stored schema.
pub use db::Unreadable;
pub use evolve::{IndexDescription, SchemaDescription, TableDescription};

// Backup.
pub use db::backup::Backup;

// Schemas and tables.
pub use schema::{IndexDef, Key, Schema, TableDef, TableKind, Value};
pub use table::{Iter, OrderedTable, OrderedTableRead, Table, TableRead};
pub use txn::{Transaction, TxnOrderedTable, TxnTable};

// Secondary indexes and auto-id tables.
pub use id::{Id, IdRange};
pub use index::{Index, IndexRead, TxnIndex, TxnUniqueIndex, UniqueIndex, UniqueIndexRead};
pub use store::index::IndexKey;

// The change feed.
#[cfg(feature = "async")]
pub use feed::SubscriptionStream;
pub use feed::{Change, Commit, FeedError, Subscription, TableEvent, TableHandle};

// Errors.
pub use error::{Corruption, Error, Result};

// Storage.
pub use storage::{FsStorage, Storage, StorageFile};

// Used by the code `schema!` generates.
#[doc(hidden)]
pub use table::{FromDb, StateRef};

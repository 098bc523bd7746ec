//! The engine: an open database, its write path and its background work.
//!
//! - `open`: recovery (snapshot, log replay, torn-tail cut) and start-up.
//! - `commit`: the group-commit pipeline that makes transactions durable and visible.
//! - `compact`: folding the log into a new snapshot, in the background or on demand.
//! - `backup`: a consistent copy of the live database in another directory.
//! - `shared`: several processes on one directory (shared mode): lock files, the counter, catch-up.

pub(crate) mod backup;
pub(crate) mod commit;
pub(crate) mod compact;
mod group;
pub(crate) mod open;
mod rekey;
pub(crate) mod shared;
pub(crate) mod spill;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::evolve::{SchemaDescription, TablePlans};
use crate::options::Durability;
use crate::storage::Storage;
use crate::store::read::{self, Reader};
use crate::store::state::{Committed, State};
use crate::txn::{self, Transaction};

/// A table of the open schema.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    pub(crate) name: &'static str,
    pub(crate) id: u32,
    /// Whether the table has a unique index: its writes then claim index keys (see `store::index`).
    pub(crate) unique: bool,
}

/// What the writer lock protects: the next sequence number, and the transactions queued but not yet published
/// (a transaction reads through them, newest first, before it reads the published state).
pub(crate) struct Writer {
    pub(crate) next_seq: u64,
    pub(crate) pending: Vec<Arc<Committed>>,
}

/// Signals for the background threads.
#[derive(Default)]
pub(crate) struct Background {
    state: Mutex<BgState>,
    wake: Condvar,
}

#[derive(Default)]
struct BgState {
    shutdown: bool,
    compact: bool,
}

/// The shared core of an open database.
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) reader: Reader,
    /// The schema's tables, then Cairn's own (see `ids`).
    pub(crate) tables: Vec<TableInfo>,
    /// The position of the table of id counters, `ids::TABLE`.
    pub(crate) ids_pos: usize,
    pub(crate) unknown_tables: Vec<String>,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) pipeline: commit::Pipeline,
    pub(crate) durability: Durability,
    /// The current snapshot (sequence number, path); the lock also serializes compactions.
    pub(crate) snapshot: Mutex<Option<(u64, PathBuf)>>,
    pub(crate) compact_after: Option<u64>,
    pub(crate) background: Arc<Background>,
    /// The running schema's version: every put this process writes says so.
    pub(crate) schema_version: u32,
    /// Every schema version stored in the database, the running one included.
    pub(crate) schemas: BTreeMap<u32, Arc<SchemaDescription>>,
    /// How each table (by position) reads the records of each schema version.
    pub(crate) plans: Vec<Arc<TablePlans>>,
    /// Records found at open that the running types cannot represent.
    pub(crate) unreadable: Vec<Unreadable>,
    /// Shared mode: the writer lock and the counter of commits (see `shared`); `None` in exclusive mode.
    pub(crate) shared: Option<Arc<shared::Shared>>,
    pub(crate) _lock: Box<dyn Debug + Send + Sync>,
    /// Last, so it runs after the state is freed (fields drop in order): see `sys::ReturnFreedMemory`.
    pub(crate) freed: crate::sys::ReturnFreedMemory,
}

/// A record found at open that the running schema cannot read, though the database can: it holds an enum variant
/// the running code does not know (written by a newer schema version). It is kept on disk as it is, through
/// compaction and backup, but the table does not show it; writing or removing its key replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unreadable {
    /// The table.
    pub table: String,
    /// The key, as stored (postcard); decode it with the table's key type.
    pub key: Vec<u8>,
    /// The schema version that wrote the record.
    pub schema_version: u32,
    /// Why it cannot be read, naming the enum and the variant.
    pub reason: String,
}

impl Inner {
    /// Runs `f` as one transaction, under the writer lock, and commits what it wrote if it returns `Ok`.
    pub(crate) fn write<R, E: From<Error>>(
        &self,
        durability: Option<Durability>,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.write_locked(None, durability, f)
    }

    /// [`Inner::write`], in shared mode with the writer lock `held` already (by the open), else taking it.
    pub(crate) fn write_locked<R, E: From<Error>>(
        &self,
        held: Option<shared::WriterGuard>,
        durability: Option<Durability>,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        if read::in_read() {
            return Err(Error::WriteInsideRead.into());
        }
        if txn::in_transaction() {
            return Err(Error::WriteInsideTransaction.into());
        }
        let _committer = self.pipeline.begin();
        let mut writer = self.writer.lock();
        // Shared mode: the writer lock is held until the commit is published and counted, so transactions of all
        // processes run one at a time, each after catching up with all before it.
        let _lock = match (&self.shared, held) {
            (Some(_), Some(held)) => Some(held),
            (Some(shared), None) => Some(shared.lock_writer()?),
            (None, _) => None,
        };
        if self.shared.is_some() {
            self.pipeline.check()?;
            self.catch_up(true)?;
            writer.pending.clear();
            writer.next_seq = self.pipeline.published() + 1;
        }
        self.pipeline.check()?;
        let published = self.pipeline.published();
        writer.pending.retain(|c| c.seq > published);
        let (value, mut payload, writes, claims) = {
            let tx = Transaction::new(self, &writer.pending);
            let value = f(&tx)?;
            tx.finish()?;
            let (payload, writes, claims) = tx.into_parts();
            (value, payload, writes, claims)
        };
        if payload.is_empty() {
            return Ok(value);
        }
        if payload.len() > crate::log::frame::MAX_PAYLOAD {
            payload.abort(&self.pipeline);
            return Err(
                Error::TransactionTooLarge { size: payload.len(), limit: crate::log::frame::MAX_PAYLOAD }.into()
            );
        }
        let seq = writer.next_seq;
        let committed = Arc::new(Committed { seq, writes, claims });
        let sync = durability.unwrap_or(self.durability) == Durability::Immediate;
        match payload.finish(&self.pipeline, seq)? {
            Ok(bytes) => self.pipeline.enqueue(seq, bytes, committed.clone(), sync)?,
            Err(pre) => self.pipeline.enqueue_prewritten(seq, pre, committed.clone(), sync)?,
        }
        writer.next_seq += 1;
        writer.pending.push(committed);
        drop(writer);
        // Shared mode holds the lock across processes until this commit is published, so no other committer of this
        // process can queue meanwhile: no batch to fill.
        if let Some(flushed) = self.pipeline.wait(seq, self.shared.is_none())? {
            if self.compact_after.is_some_and(|limit| flushed.log_bytes >= limit) {
                self.background.request_compaction();
            }
        }
        Ok(value)
    }

    /// Runs `f` on the latest published state. In shared mode, first catches up if another process committed since
    /// (one atomic load when nothing changed; an error there is logged, and the read sees the state it had).
    #[inline(always)]
    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        if let Some(shared) = &self.shared {
            if shared.counter.committed() > self.pipeline.published() && !read::in_read() && !txn::in_transaction() {
                if let Err(e) = self.catch_up(false) {
                    tracing::error!(dir = %self.dir.display(), error = %e, "catching up with other processes failed; reading the state this process has");
                }
            }
        }
        self.reader.with(f)
    }
}

impl Background {
    pub(crate) fn request_compaction(&self) {
        let mut s = self.state.lock();
        if !s.compact {
            s.compact = true;
            self.wake.notify_all();
        }
    }

    fn shutdown(&self) {
        self.state.lock().shutdown = true;
        self.wake.notify_all();
    }

    /// Waits for a compaction request (true) or shutdown (false).
    fn next_compaction(&self) -> bool {
        let mut s = self.state.lock();
        loop {
            if s.shutdown {
                return false;
            }
            if std::mem::take(&mut s.compact) {
                return true;
            }
            self.wake.wait(&mut s);
        }
    }

    /// Sleeps for `interval` or until shutdown; false on shutdown.
    fn sleep(&self, interval: std::time::Duration) -> bool {
        let mut s = self.state.lock();
        if !s.shutdown {
            self.wake.wait_for(&mut s, interval);
        }
        !s.shutdown
    }
}

/// An open database: what a `schema!` struct holds. Dropping it stops the background threads and syncs the log.
pub struct Db {
    pub(crate) inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner.dir).field("seq", &self.last_seq()).finish_non_exhaustive()
    }
}

impl Db {
    pub(crate) fn start(inner: Arc<Inner>) -> Self {
        let mut threads = Vec::new();
        let weak = Arc::downgrade(&inner);
        let bg = inner.background.clone();
        threads.push(
            std::thread::Builder::new()
                .name("cairn-compact".into())
                .spawn(move || {
                    crate::sys::run_in_background();
                    while bg.next_compaction() {
                        let Some(inner) = weak.upgrade() else { return };
                        if let Err(e) = inner.compact() {
                            tracing::warn!(dir = %inner.dir.display(), error = %e, "background compaction failed");
                        }
                    }
                })
                .expect("spawn the compaction thread"),
        );
        if let Durability::Periodic(interval) = inner.durability {
            let weak = Arc::downgrade(&inner);
            let bg = inner.background.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("cairn-sync".into())
                    .spawn(move || {
                        while bg.sleep(interval) {
                            let Some(inner) = weak.upgrade() else { return };
                            if let Err(e) = inner.pipeline.sync_now() {
                                tracing::error!(dir = %inner.dir.display(), error = %e, "periodic fsync failed");
                            }
                        }
                    })
                    .expect("spawn the sync thread"),
            );
        }
        Db { inner, threads }
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The sequence number of the last transaction visible to readers (in shared mode: in this process; see
    /// [`Db::refresh`]).
    pub fn last_seq(&self) -> u64 {
        self.inner.pipeline.published()
    }

    /// The mode the database was opened in.
    pub fn mode(&self) -> crate::options::Mode {
        match self.inner.shared {
            Some(_) => crate::options::Mode::Shared,
            None => crate::options::Mode::Exclusive,
        }
    }

    /// In shared mode, catches up now with every commit other processes finished, and reports an error doing so
    /// (reads catch up by themselves, but can only log an error). Returns the sequence number now visible. In
    /// exclusive mode there is nothing to catch up with.
    ///
    /// Like a write, it is refused inside a read closure ([`Error::WriteInsideRead`]): publishing waits for reads.
    pub fn refresh(&self) -> Result<u64> {
        if read::in_read() {
            return Err(Error::WriteInsideRead);
        }
        self.inner.catch_up(false)?;
        Ok(self.last_seq())
    }

    /// Tables found on disk that the schema does not declare. They are kept, untouched, through compaction.
    pub fn unknown_tables(&self) -> &[String] {
        &self.inner.unknown_tables
    }

    /// The version number of the running schema in this database (see docs/schema-evolution.md). Versions count
    /// from 1; opening with types described exactly as a stored version reuses its number.
    pub fn schema_version(&self) -> u32 {
        self.inner.schema_version
    }

    /// Every schema version stored in the database, the running one included: the tables with their key and value
    /// types, as described from the Rust types of the code that opened it.
    pub fn schemas(&self) -> &BTreeMap<u32, Arc<SchemaDescription>> {
        &self.inner.schemas
    }

    /// Records found at open that the running schema cannot read (an enum variant it does not know), as of the
    /// open. Empty unless a newer schema wrote to this database.
    pub fn unreadable(&self) -> &[Unreadable] {
        &self.inner.unreadable
    }

    /// Folds the log into a new snapshot now, and drops the log before it. Readers and writers go on meanwhile.
    ///
    /// Like a write, it is refused inside a read closure ([`Error::WriteInsideRead`]): closing the log segment can
    /// wait for a publish that waits for that very read.
    pub fn compact(&self) -> Result<()> {
        if read::in_read() {
            return Err(Error::WriteInsideRead);
        }
        self.inner.compact()
    }

    /// Re-encrypts the whole database under `new`: new data keys, every file rewritten through a compaction, and
    /// the key file rewritten so that only `new` opens it. Readers go on; writers pause as for a compaction. A crash
    /// at any point leaves a database that opens with the old key or the new one (while both would, calling this
    /// again finishes the rotation); see ARCHITECTURE.md, "Compression and encryption". Fails with
    /// [`Error::NotEncrypted`] on a database created without a key, and with [`Error::RotateShared`] in shared
    /// mode.
    pub fn rotate_key(&self, new: crate::EncryptionKey) -> Result<()> {
        if read::in_read() {
            return Err(Error::WriteInsideRead);
        }
        self.inner.rotate_key(&new)
    }

    /// Writes a consistent copy of the database into directory `dir` while readers and writers go on (writers pause
    /// only while the log is rolled), and returns what it copied. The copy holds the state after exactly one commit,
    /// [`Backup::seq`](crate::Backup::seq), and is an ordinary database directory: restoring is opening it.
    ///
    /// `dir` must not exist or be an empty directory. The copy is written into `dir` with `.cairn-partial` appended to
    /// its name and renamed to `dir` once it is durable, so a crash or an error never leaves a partial copy at `dir`.
    /// Compactions wait until the backup is done. Like a write, it is refused inside a read closure
    /// ([`Error::WriteInsideRead`]), and a database in the failed state refuses it ([`Error::Failed`]).
    pub fn backup_to(&self, dir: impl AsRef<Path>) -> Result<backup::Backup> {
        self.inner.backup_to(dir.as_ref())
    }

    /// Used by `schema!`: a typed handle on the table at position `pos`.
    #[doc(hidden)]
    pub fn __table<T: crate::table::FromDb>(&self, pos: usize) -> T {
        T::from_db(self, pos)
    }

    /// Used by `schema!`: runs a transaction.
    #[doc(hidden)]
    pub fn __transaction<R, E: From<Error>>(
        &self,
        durability: Option<Durability>,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.inner.write(durability, f)
    }

    /// Used by `schema!`: runs a read over all tables at one state.
    #[doc(hidden)]
    pub fn __read<R>(&self, f: impl FnOnce(crate::table::StateRef<'_>) -> R) -> R {
        self.inner.read(|state| f(crate::table::StateRef(state)))
    }
}

/// A database holding at least this many records returns its memory to the system when it closes.
const RETURN_MEMORY_AT: usize = 100_000;

impl Drop for Db {
    fn drop(&mut self) {
        let records = self.inner.reader.with(|state| state.record_count());
        if records >= RETURN_MEMORY_AT {
            self.inner.freed.armed.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.inner.background.shutdown();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Err(e) = self.inner.pipeline.sync_now() {
            tracing::error!(dir = %self.inner.dir.display(), error = %e, "final fsync at close failed");
        }
        self.inner.pipeline.feed.close();
    }
}

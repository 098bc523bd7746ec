//! Shared mode: several processes, which do not otherwise cooperate, on one database directory.
//!
//! Two files beside the log and the snapshots (bytes in `docs/format.md`):
//! - `LOCK` carries the **mode lock**: an exclusive `flock` in exclusive mode, a shared one in shared mode, so that
//!   the two modes refuse each other and any number of shared processes coexist.
//! - `SHARED` carries the **writer lock** (an exclusive `flock` on it) and, mapped into every process's memory, the
//!   **counter** (`counter.rs`): the last committed sequence number, and the append in progress.
//!
//! The writer lock is held by one process for one write transaction at a time (catch-up, the transaction, the
//! append, its fsync, the counter's bump), by a compaction from its catch-up to its last removal, and by an open
//! through its recovery and its first transaction. In a process it is also exclusive between threads (`flock` is per
//! open file, not per thread), so it is taken through [`Shared::lock_writer`].
//!
//! Readers take no lock: they compare the counter with what they have published (`follow.rs`) and catch up, from the
//! log or, when the frames they need were folded away, from the newest snapshot.

mod counter;
pub(crate) mod follow;

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

pub(crate) use counter::{Counter, Dirty};

use crate::error::{Error, Result};
use crate::log::frame::{self, HEADER_LEN};
use crate::log::segment;
use crate::schema::TableDef;
use crate::storage::Storage;
use crate::store::TableStore;

/// The name of the counter file, which also carries the writer lock.
pub(crate) const COUNTER_FILE: &str = "SHARED";

/// Makes an empty store of one table (from its `TableDef`), for a reload from a snapshot.
pub(crate) type Maker = Arc<dyn Fn() -> Box<dyn TableStore> + Send + Sync>;

/// What a process in shared mode keeps of the shared files.
pub(crate) struct Shared {
    pub(crate) counter: Counter,
    /// Whether a thread of this process holds the writer lock.
    held: Mutex<bool>,
    free: Condvar,
    /// Empty stores of every table (by position), for a reload.
    pub(crate) makers: Vec<Maker>,
    /// The log segment size this process rolls at.
    pub(crate) segment_size: u64,
    /// The mode lock, held shared for as long as the database is open.
    _mode_lock: File,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("counter", &self.counter).finish_non_exhaustive()
    }
}

/// The writer lock, held by this thread until dropped.
pub(crate) struct WriterGuard {
    shared: Arc<Shared>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if let Err(e) = self.shared.counter.file.unlock() {
            // Closing the database closes the file, which releases the lock anyway.
            tracing::error!(file = %self.shared.counter.path.display(), error = %e, "releasing the writer lock failed");
        }
        *self.shared.held.lock() = false;
        self.shared.free.notify_one();
    }
}

impl Shared {
    /// Takes the writer lock, waiting for other threads of this process and for other processes.
    pub(crate) fn lock_writer(self: &Arc<Self>) -> Result<WriterGuard> {
        {
            let mut held = self.held.lock();
            while *held {
                self.free.wait(&mut held);
            }
            *held = true;
        }
        if let Err(e) = self.counter.file.lock() {
            *self.held.lock() = false;
            self.free.notify_one();
            return Err(Error::io("take the writer lock of a shared-mode database", &self.counter.path, e));
        }
        Ok(WriterGuard { shared: self.clone() })
    }
}

/// A process attached to a shared database, holding the writer lock for its recovery.
pub(crate) struct Attached {
    pub(crate) shared: Arc<Shared>,
    pub(crate) guard: WriterGuard,
    /// No other process had the database open: the counter is untrusted, recovery alone decides, and then resets it.
    pub(crate) first: bool,
}

fn open_rw(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

/// Attaches to the database in `dir` in shared mode: takes the writer lock, then the mode lock shared.
pub(crate) fn attach(dir: &Path, lock_path: &Path, defs: &[TableDef], segment_size: u64) -> Result<Attached> {
    // Followers read log segments that a compaction in another process may remove meanwhile; only Unix keeps a
    // removed file readable through the descriptors open on it.
    if !cfg!(unix) {
        return Err(Error::io(
            "open in shared mode, which needs Unix file semantics (open it in exclusive mode)",
            dir,
            std::io::ErrorKind::Unsupported.into(),
        ));
    }
    let counter_path = dir.join(COUNTER_FILE);
    let file = open_rw(&counter_path).map_err(|e| Error::io("open shared-mode counter file", &counter_path, e))?;
    file.lock().map_err(|e| Error::io("take the writer lock of a shared-mode database", &counter_path, e))?;
    let mode = open_rw(lock_path).map_err(|e| Error::io("open lock file", lock_path, e))?;
    // Alone (the exclusive lock is free): nobody else has the database open. Then keep it shared. Converting is not
    // atomic, so an exclusive-mode open may slip in between: then this one refuses.
    let first = match mode.try_lock() {
        Ok(()) => true,
        Err(TryLockError::WouldBlock) => false,
        Err(TryLockError::Error(e)) => return Err(Error::io("lock database directory", lock_path, e)),
    };
    match mode.try_lock_shared() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(Error::Locked { path: dir.to_path_buf() }),
        Err(TryLockError::Error(e)) => return Err(Error::io("lock database directory", lock_path, e)),
    }
    let counter = Counter::map(file, &counter_path)?;
    let shared = Arc::new(Shared {
        counter,
        held: Mutex::new(true),
        free: Condvar::new(),
        makers: defs.iter().map(|d| d.make.clone()).collect(),
        segment_size,
        _mode_lock: mode,
    });
    Ok(Attached { guard: WriterGuard { shared: shared.clone() }, shared, first })
}

/// Whether the lock file at `lock_path`, which an exclusive open just found locked, is held by processes in shared
/// mode (for the error message: true if a shared lock can be taken now).
pub(crate) fn held_shared(lock_path: &Path) -> bool {
    File::open(lock_path).is_ok_and(|f| f.try_lock_shared().is_ok())
}

/// Undoes the append a writer left interrupted (it died holding the writer lock), if any: zeroes the bytes it may
/// have written after the last committed frame, and fsyncs them, before anything else is appended. Called with the
/// writer lock held. An append whose batch was committed (the writer died after the counter's bump, before it
/// cleared the marker) is left alone.
pub(crate) fn repair(storage: &dyn Storage, dir: &Path, counter: &Counter) -> Result<()> {
    let Some(Dirty { segment: first, start, end }) = counter.dirty() else { return Ok(()) };
    let path = dir.join(segment::file_name(first));
    let file = match storage.open_read(&path) {
        Ok(_) => storage.open_write(&path).map_err(|e| Error::io("open log segment", &path, e))?,
        // The segment never came to be: nothing to undo.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            counter.clear_dirty();
            return Ok(());
        }
        Err(e) => return Err(Error::io("open log segment", &path, e)),
    };
    let mut header = [0u8; HEADER_LEN];
    let n = file.read_at(&mut header, start).map_err(|e| Error::io("read log segment", &path, e))?;
    let committed = n == HEADER_LEN
        && frame::checked_len(&header).is_some()
        && u64::from_le_bytes(header[8..16].try_into().unwrap_or_default()) <= counter.committed();
    if !committed && end > start {
        tracing::warn!(file = %path.display(), start, end, "a process died while appending to the shared log; zeroing what it wrote");
        let size = file.size().map_err(|e| Error::io("stat log segment", &path, e))?;
        let end = end.min(size);
        let zeros = vec![0u8; (end.saturating_sub(start)).min(1 << 20) as usize];
        let mut at = start;
        while at < end {
            let n = (end - at).min(zeros.len() as u64) as usize;
            file.write_all_at(&zeros[..n], at).map_err(|e| Error::io("zero interrupted append", &path, e))?;
            at += n as u64;
        }
        file.sync_data().map_err(|e| Error::io("fsync log segment", &path, e))?;
    }
    counter.clear_dirty();
    Ok(())
}

#[cfg(test)]
mod tests;

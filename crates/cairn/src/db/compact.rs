//! Compaction: close the active segment, fold the previous snapshot and the closed segments into a new snapshot (on
//! files only, see `snapshot::merge`), then remove what the new snapshot replaces.
//!
//! Writers pause only while the active segment is closed and the next one created (an fsync and a file creation);
//! readers never pause. The new snapshot becomes the base of the next compaction the moment its rename is durable,
//! before anything is removed: a crash or an I/O error during the removals leaves files that the next open (or the
//! next compaction) recognizes as covered by the snapshot and removes.
//!
//! In shared mode a compaction holds the writer lock throughout: it catches up first (so it rolls at the true end of
//! the log), takes the newest snapshot on disk as its base (another process may have compacted), and removes the
//! replaced files without truncating them, since another process may be reading them; on Unix a removed file stays
//! readable through the descriptors already open on it.

use std::path::{Path, PathBuf};

use super::shared::WriterGuard;
use super::Inner;
use crate::error::{Error, Result};
use crate::log::segment;
use crate::snapshot::merge;
use crate::storage::Storage;

/// How much of a replaced file one truncation frees.
const SHRINK_STEP: u64 = 4 << 20;

/// Truncates a replaced file in steps before it is removed. Unlinking a large file frees all its extents in one
/// journal transaction, and on ext4 a concurrent `fdatasync` of the log waits for it: the benchmark saw commits stall
/// for 26 ms behind the 70 ms unlink of a 190 MB snapshot. Small truncations free the extents a little at a time, and
/// commits slip in between (RocksDB deletes files in chunks for the same reason). Best effort: the file is obsolete,
/// so a failure here only means it is removed in one go.
fn shrink(storage: &dyn Storage, path: &Path) {
    let Ok(file) = storage.open_write(path) else { return };
    let Ok(mut len) = file.size() else { return };
    while len > SHRINK_STEP {
        len -= SHRINK_STEP;
        if file.set_len(len).is_err() {
            return;
        }
    }
}

impl Inner {
    /// Shared mode, for work on the files of the log (a compaction, a backup; `current` is the snapshot lock's
    /// content): takes the writer lock, catches up, and makes the newest snapshot on disk the current one. Exclusive
    /// mode: nothing.
    pub(crate) fn hold_log(&self, current: &mut Option<(u64, PathBuf)>) -> Result<Option<WriterGuard>> {
        let Some(shared) = &self.shared else { return Ok(None) };
        let lock = shared.lock_writer()?;
        self.catch_up(true)?;
        *current = crate::db::open::list(&*self.storage, &self.dir)?.snapshots.pop();
        Ok(Some(lock))
    }

    /// Compacts now. Concurrent calls run one after the other.
    pub(crate) fn compact(&self) -> Result<()> {
        let mut current = self.snapshot.lock();
        self.compact_locked(&mut current, None, false)
    }

    /// Compacts, holding the snapshot lock (whose content is `current`). Key rotation (`db::rekey`) passes the
    /// keyring to switch to, which takes effect under the writer lock just before the roll, and `force`s a fold even
    /// when no frame came since the snapshot: the snapshot is then rewritten in place under the new key.
    pub(crate) fn compact_locked(
        &self,
        current: &mut Option<(u64, PathBuf)>,
        switch: Option<crate::seal::keys::Keyring>,
        force: bool,
    ) -> Result<()> {
        // The writer lock first (as every write takes it before the shared one): no transaction may be writing its
        // frame ahead during the roll (`db::spill`). Shared mode keeps both for the whole compaction.
        let mut writer = Some(self.writer.lock());
        let log_lock = self.hold_log(current)?;
        if let Some(ring) = switch {
            self.pipeline.seal.set_keyring(ring);
        }
        let active_first = self.pipeline.roll()?;
        if log_lock.is_none() {
            writer = None;
        }
        let _writer = writer;
        let upto = active_first - 1;
        let base_seq = current.as_ref().map_or(0, |(seq, _)| *seq);
        if upto < base_seq || (upto == base_seq && !force) || (upto == 0 && current.is_none()) {
            return Ok(());
        }
        let names = self.storage.list(&self.dir).map_err(|e| Error::io("list database directory", &self.dir, e))?;
        let mut closed: Vec<(u64, PathBuf)> = names
            .iter()
            .filter_map(|n| segment::parse_name(n).map(|first| (first, self.dir.join(n))))
            .filter(|(first, _)| *first < active_first)
            .collect();
        closed.sort();
        // Segments whose frames the base snapshot already holds are leftovers: skip them, remove them below.
        let leftovers = segment::take_covered(&mut closed, base_seq);
        let paths: Vec<PathBuf> = closed.into_iter().map(|(_, p)| p).collect();
        let base_path = current.as_ref().map(|(_, p)| p.clone());
        let folded = merge::fold(&*self.storage, &self.pipeline.seal, &self.dir, base_path.as_deref(), &paths, upto)?;
        *current = Some((folded.seq, folded.path.clone()));
        tracing::debug!(dir = %self.dir.display(), seq = folded.seq, records = folded.records, "compacted");

        let mut first_error = None;
        // A forced fold with nothing new replaced the base snapshot under its own name.
        for path in leftovers.iter().chain(&paths).chain(base_path.iter()).filter(|p| **p != folded.path) {
            if self.shared.is_none() {
                shrink(&*self.storage, path);
            }
            if let Err(e) = self.storage.remove(path) {
                first_error.get_or_insert(Error::io("remove file replaced by the new snapshot", path, e));
            }
        }
        if let Err(e) = self.storage.sync_dir(&self.dir) {
            first_error.get_or_insert(Error::io("fsync directory", &self.dir, e));
        }
        self.pipeline.reset_log_bytes();
        first_error.map_or(Ok(()), Err)
    }
}

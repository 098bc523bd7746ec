//! Compaction: close the active segment, fold the previous snapshot and the closed segments into a new snapshot (on
//! files only, see `snapshot::merge`), then remove what the new snapshot replaces.
//!
//! Writers pause only while the active segment is closed and the next one created (an fsync and a file creation);
//! readers never pause. A crash at any point leaves either the old snapshot and all its segments, or the new snapshot
//! (plus leftovers that the next open removes).

use std::sync::atomic::Ordering;

use super::Inner;
use crate::error::{Error, Result};
use crate::log::segment;
use crate::snapshot::merge;

impl Inner {
    /// Compacts now. Concurrent calls run one after the other.
    pub(crate) fn compact(&self) -> Result<()> {
        let mut current = self.snapshot.lock();
        let active_first = self.pipeline.roll()?;
        let upto = active_first - 1;
        let old_seq = current.as_ref().map_or(0, |(seq, _)| *seq);
        if upto <= old_seq {
            return Ok(());
        }
        let names = self.storage.list(&self.dir).map_err(|e| Error::io("list database directory", &self.dir, e))?;
        let mut segments: Vec<(u64, std::path::PathBuf)> = names
            .iter()
            .filter_map(|n| segment::parse_name(n).map(|first| (first, self.dir.join(n))))
            .filter(|(first, _)| *first < active_first)
            .collect();
        segments.sort();
        let paths: Vec<_> = segments.iter().map(|(_, p)| p.clone()).collect();
        let old_path = current.as_ref().map(|(_, p)| p.clone());
        let folded = merge::fold(&*self.storage, &self.dir, old_path.as_deref(), &paths, upto)?;
        let mut freed = 0u64;
        for path in &paths {
            if let Ok(file) = self.storage.open_read(path) {
                freed += file.len().unwrap_or(0);
            }
            self.storage.remove(path).map_err(|e| Error::io("remove compacted log segment", path, e))?;
        }
        if let Some(old) = &old_path {
            self.storage.remove(old).map_err(|e| Error::io("remove replaced snapshot", old, e))?;
        }
        self.storage.sync_dir(&self.dir).map_err(|e| Error::io("fsync directory", &self.dir, e))?;
        let _ = self.pipeline.log_bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| Some(b.saturating_sub(freed)));
        tracing::debug!(dir = %self.dir.display(), seq = folded.seq, records = folded.records, "compacted");
        *current = Some((folded.seq, folded.path));
        Ok(())
    }
}

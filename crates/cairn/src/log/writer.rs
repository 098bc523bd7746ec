//! Appending frames to the active log segment, fsyncing, and rolling to a new segment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::segment;
use crate::error::{Error, Result};
use crate::storage::{Storage, StorageFile};

/// The open, active log segment.
#[derive(Debug)]
pub(crate) struct LogWriter {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    file: Box<dyn StorageFile>,
    path: PathBuf,
    offset: u64,
    first_seq: u64,
    /// The last sequence number written to the file (not necessarily synced).
    written_seq: u64,
    /// The last sequence number known fsynced.
    synced_seq: u64,
    segment_limit: u64,
}

impl LogWriter {
    /// Creates a new segment whose first frame will be `first_seq`, durably (file and directory fsynced).
    pub(crate) fn create(storage: Arc<dyn Storage>, dir: &Path, first_seq: u64, segment_limit: u64) -> Result<Self> {
        let path = dir.join(segment::file_name(first_seq));
        let file = storage.open_write(&path).map_err(|e| Error::io("create log segment", &path, e))?;
        let header = segment::encode_header(first_seq);
        file.set_len(0).map_err(|e| Error::io("truncate new log segment", &path, e))?;
        file.write_all_at(&header, 0).map_err(|e| Error::io("write log segment header", &path, e))?;
        file.sync_all().map_err(|e| Error::io("fsync new log segment", &path, e))?;
        storage.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
        let last = first_seq - 1;
        Ok(LogWriter {
            storage,
            dir: dir.to_path_buf(),
            file,
            path,
            offset: segment::HEADER_LEN as u64,
            first_seq,
            written_seq: last,
            synced_seq: last,
            segment_limit,
        })
    }

    /// Continues the existing segment at `path`, whose valid data ends at `end`, after sequence number `last_seq`.
    /// Everything up to `end` is fsynced first, so what recovery found counts as durable.
    pub(crate) fn resume(
        storage: Arc<dyn Storage>,
        dir: &Path,
        path: PathBuf,
        first_seq: u64,
        end: u64,
        last_seq: u64,
        segment_limit: u64,
    ) -> Result<Self> {
        let file = storage.open_write(&path).map_err(|e| Error::io("open log segment", &path, e))?;
        let len = file.size().map_err(|e| Error::io("stat log segment", &path, e))?;
        if len > end {
            file.set_len(end).map_err(|e| Error::io("cut torn tail of log segment", &path, e))?;
        }
        file.sync_all().map_err(|e| Error::io("fsync log segment", &path, e))?;
        Ok(LogWriter {
            storage,
            dir: dir.to_path_buf(),
            file,
            path,
            offset: end,
            first_seq,
            written_seq: last_seq,
            synced_seq: last_seq,
            segment_limit,
        })
    }

    /// Writes `chunks` (whole frames up to sequence number `upto`) at the end of the segment. On failure the segment
    /// is cut back to where it was, as far as the storage lets us.
    pub(crate) fn append(&mut self, chunks: &[Vec<u8>], upto: u64) -> Result<()> {
        let start = self.offset;
        let mut at = start;
        for chunk in chunks {
            if let Err(e) = self.file.write_all_at(chunk, at) {
                let _ = self.file.set_len(start);
                return Err(Error::io("append to log segment", &self.path, e));
            }
            at += chunk.len() as u64;
        }
        self.offset = at;
        self.written_seq = upto;
        Ok(())
    }

    /// Makes everything written so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.synced_seq == self.written_seq {
            return Ok(());
        }
        self.file.sync_data().map_err(|e| Error::io("fsync log segment", &self.path, e))?;
        self.synced_seq = self.written_seq;
        Ok(())
    }

    /// Drops frames written after the last successful append (after a failed sync): best effort.
    pub(crate) fn cut_back(&mut self, offset: u64) {
        let _ = self.file.set_len(offset);
        self.offset = offset;
    }

    /// Syncs this segment and starts the next one, unless this one holds no frame yet.
    pub(crate) fn roll(&mut self) -> Result<()> {
        if self.written_seq < self.first_seq {
            return Ok(());
        }
        self.sync()?;
        *self = LogWriter::create(self.storage.clone(), &self.dir, self.written_seq + 1, self.segment_limit)?;
        Ok(())
    }

    /// True when the segment has grown past its size limit.
    pub(crate) fn full(&self) -> bool {
        self.offset >= self.segment_limit
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn first_seq(&self) -> u64 {
        self.first_seq
    }

    pub(crate) fn synced_seq(&self) -> u64 {
        self.synced_seq
    }
}

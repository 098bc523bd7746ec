//! The counter file `SHARED` of a database in shared mode, mapped into the memory of every process that has it open,
//! so that a reader learns whether another process committed with one atomic load and no system call.
//!
//! The file is 64 bytes: eight little-endian `u64` words (byte layout in `docs/format.md`), each read and written only
//! with atomic operations of its own width, by every process, through `MAP_SHARED` mappings of the same page:
//!
//! | word | field | meaning |
//! |---|---|---|
//! | 0 | magic | `CAIRNSHM` |
//! | 1 | version | `1` in the low 32 bits; the high 32 bits are 0 |
//! | 2 | committed | the last sequence number a writer appended and made visible (after its fsync, per its durability) |
//! | 3 | dirty segment | 0, or the first sequence number of the segment a writer is appending to right now |
//! | 4 | dirty start | where that append begins (the end of the committed frames) |
//! | 5 | dirty end | where it ends |
//! | 6, 7 | reserved | 0 |
//!
//! Only the holder of the writer lock (an `flock` on this same file) stores to it. The words are not a durable
//! record: after a crash of the machine they may hold anything, so the first process to open the database (no other
//! one has it open) ignores them, recovers from the log alone and rewrites them.

#![allow(unsafe_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{Corruption, Error, Result};

/// The file's length.
pub(crate) const LEN: u64 = 64;
const MAGIC: u64 = u64::from_le_bytes(*b"CAIRNSHM");
const VERSION: u64 = 1;

const W_MAGIC: usize = 0;
const W_VERSION: usize = 1;
const W_COMMITTED: usize = 2;
const W_DIRTY_SEGMENT: usize = 3;
const W_DIRTY_START: usize = 4;
const W_DIRTY_END: usize = 5;

/// An append in progress (or interrupted): segment, start, end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dirty {
    pub(crate) segment: u64,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// The mapped counter file. The file handle is also the writer lock (see `shared`).
pub(crate) struct Counter {
    map: MmapRaw,
    pub(crate) file: File,
    pub(crate) path: PathBuf,
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter").field("path", &self.path).field("committed", &self.committed()).finish()
    }
}

impl Counter {
    /// Maps `path`, which must hold the writer lock's file open as `file`. The caller holds the writer lock: a file
    /// shorter than [`LEN`] (new) is extended with zeros and given its header; a header that is not ours is refused.
    pub(crate) fn map(file: File, path: &Path) -> Result<Self> {
        let len = file.metadata().map_err(|e| Error::io("stat shared-mode counter file", path, e))?.len();
        if len < LEN {
            file.set_len(LEN).map_err(|e| Error::io("size shared-mode counter file", path, e))?;
        }
        let map = MmapOptions::new()
            .len(LEN as usize)
            .map_raw(&file)
            .map_err(|e| Error::io("map shared-mode counter file into memory", path, e))?;
        let counter = Counter { map, file, path: path.to_path_buf() };
        match (counter.load(W_MAGIC), counter.load(W_VERSION)) {
            (0, 0) => {
                counter.store(W_VERSION, VERSION);
                counter.store(W_MAGIC, MAGIC);
            }
            (MAGIC, VERSION) => {}
            (MAGIC, v) => {
                return Err(Corruption::new(
                    path,
                    8,
                    format!("shared-mode counter file of version {v}, this build knows version {VERSION}; use the Cairn that wrote it, or remove the file while no process has the database open"),
                )
                .into())
            }
            _ => {
                return Err(Corruption::new(
                    path,
                    0,
                    "not a Cairn shared-mode counter file (wrong magic bytes); remove it while no process has the database open",
                )
                .into())
            }
        }
        Ok(counter)
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < 8);
        // SAFETY: the mapping is `LEN` = 64 bytes long and starts at a page boundary, so `8 * i` for `i < 8` is in
        // bounds and 8-byte aligned, as `AtomicU64` requires. The mapping lives as long as `self`, and so does the
        // returned reference. The bytes are shared with other processes (and other mappings), which access them only
        // with atomic operations of the same width, never with plain loads or stores, so every access is atomic.
        unsafe { &*self.map.as_mut_ptr().add(8 * i).cast::<AtomicU64>() }
    }

    fn load(&self, i: usize) -> u64 {
        u64::from_le(self.word(i).load(Ordering::Acquire))
    }

    fn store(&self, i: usize, v: u64) {
        self.word(i).store(v.to_le(), Ordering::Release);
    }

    /// The last sequence number committed by any process.
    #[inline]
    pub(crate) fn committed(&self) -> u64 {
        self.load(W_COMMITTED)
    }

    /// The append in progress or interrupted, if any.
    pub(crate) fn dirty(&self) -> Option<Dirty> {
        match self.load(W_DIRTY_SEGMENT) {
            0 => None,
            segment => Some(Dirty { segment, start: self.load(W_DIRTY_START), end: self.load(W_DIRTY_END) }),
        }
    }

    /// Before an append (writer lock held): where it goes, so that the next writer can undo it if this process dies.
    pub(crate) fn begin_append(&self, d: Dirty) {
        self.store(W_DIRTY_START, d.start);
        self.store(W_DIRTY_END, d.end);
        self.store(W_DIRTY_SEGMENT, d.segment);
    }

    /// After an append that is written (and synced, per its durability): every process may now see `upto`.
    pub(crate) fn commit(&self, upto: u64) {
        self.store(W_COMMITTED, upto);
        self.clear_dirty();
    }

    /// The interrupted append was undone (writer lock held).
    pub(crate) fn clear_dirty(&self) {
        self.store(W_DIRTY_SEGMENT, 0);
    }

    /// The first process to open the database, after recovering from the log alone: the log ends at `last_seq`.
    pub(crate) fn reset(&self, last_seq: u64) {
        self.clear_dirty();
        self.store(W_DIRTY_START, 0);
        self.store(W_DIRTY_END, 0);
        self.store(W_COMMITTED, last_seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> Counter {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).unwrap();
        Counter::map(file, path).unwrap()
    }

    #[test]
    fn two_mappings_of_one_file_see_each_others_stores_and_the_bytes_are_little_endian() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("SHARED");
        let (a, b) = (open(&path), open(&path));
        a.commit(0x0102_0304_0506_0708);
        assert_eq!(b.committed(), 0x0102_0304_0506_0708);
        b.begin_append(Dirty { segment: 7, start: 32, end: 96 });
        assert_eq!(a.dirty(), Some(Dirty { segment: 7, start: 32, end: 96 }));
        a.commit(9);
        assert_eq!(b.dirty(), None);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, LEN);
        assert_eq!(&bytes[0..8], b"CAIRNSHM");
        assert_eq!(&bytes[8..16], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[16..24], &9u64.to_le_bytes());
    }

    #[test]
    fn a_file_that_is_not_a_counter_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("SHARED");
        std::fs::write(&path, [0xAB; 64]).unwrap();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let err = Counter::map(file, &path).unwrap_err().to_string();
        assert!(err.contains("not a Cairn shared-mode counter file"), "{err}");
    }
}

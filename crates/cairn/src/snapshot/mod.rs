//! Snapshots: the whole database at one sequence number, in one immutable file.
//!
//! ```text
//! header (32 bytes)
//!  0  8  magic "CAIRNSNP"
//!  8  4  format version, u32 LE
//! 12  4  flags, u32 LE (0)
//! 16  8  seq: the last transaction folded in, u64 LE
//! 24  4  reserved (0)
//! 28  4  CRC32C of bytes 0..28
//! blocks, each:
//!  0  4  payload length, u32 LE
//!  4  4  block kind, u32 LE: 1 catalog, 2 records, 3 end; bits 8.. say how the payload is stored (`seal`)
//!  8  4  CRC32C of bytes 0..8 and the payload as stored
//! 12  n  payload
//! ```
//! A payload may be compressed and encrypted (`crate::seal`); the checks below apply to it once decoded, and an
//! encrypted block authenticates the snapshot's sequence number and its own index.
//! The catalog block holds create-table and define-schema operations (the log's encoding). Record blocks hold
//! `table:varint schema:varint key:bytes value:bytes` (format 1: without `schema`) sorted by table id, then key bytes. The end block holds the record count and
//! the number of blocks before it, both u64 LE; a snapshot without it is damaged. Snapshots are written to a
//! `.tmp` file, fsynced, renamed, and the directory fsynced, so a snapshot that exists under its final name is whole.

pub(crate) mod merge;

use std::path::{Path, PathBuf};

use crate::error::{Corruption, Error, Result};
use crate::format::{get_bytes, get_varint, put_bytes, put_varint, FORMAT_VERSION};
use crate::log::record::{self, Op};
use crate::schema::TableKind;
use crate::seal::{self, Place, Seal};
use crate::storage::{Storage, StorageFile, Waiting};

/// Magic bytes at the start of every snapshot.
pub(crate) const MAGIC: &[u8; 8] = b"CAIRNSNP";
/// File name extension of snapshots.
pub(crate) const EXT: &str = "snap";
pub(crate) const HEADER_LEN: usize = 32;
pub(crate) const BLOCK_HEADER_LEN: usize = 12;
const BLOCK_TARGET: usize = 64 * 1024;
/// The writer fsyncs the snapshot whenever this much more is written, so the page cache never holds much of it dirty:
/// on ext4 a concurrent `fdatasync` of the log waits for the journal commit, which waits for the snapshot's data
/// written so far. Measured in the benchmark's commits-during-compaction step: with 16 MiB the worst commit took
/// 24 ms, with 1 MiB 6-12 ms (on a loaded machine, the rest being CPU scheduling); compaction took about as long.
const SYNC_EVERY: u64 = 1 << 20;
pub(crate) const KIND_CATALOG: u32 = 1;
pub(crate) const KIND_RECORDS: u32 = 2;
const KIND_END: u32 = 3;

/// The file name of the snapshot that ends at `seq`.
pub(crate) fn file_name(seq: u64) -> String {
    format!("{seq:020}.{EXT}")
}

/// Parses a snapshot file name back into its sequence number.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(EXT)?.strip_suffix('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok()).flatten()
}

/// One table in a catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CatalogEntry {
    pub(crate) id: u32,
    pub(crate) kind: TableKind,
    pub(crate) name: String,
}

/// Writes a snapshot to a temporary file and publishes it atomically.
pub(crate) struct SnapshotWriter {
    file: Box<dyn StorageFile>,
    tmp: PathBuf,
    seq: u64,
    seal: std::sync::Arc<Seal>,
    offset: u64,
    block: Vec<u8>,
    records: u64,
    blocks: u64,
    synced: u64,
}

impl SnapshotWriter {
    /// Starts `tmp` (replacing any leftover) for a snapshot ending at `seq`, with `catalog` and the schema versions
    /// `schemas` (version, encoded description), its blocks stored as `seal` says.
    pub(crate) fn create(
        storage: &dyn Storage,
        seal: &std::sync::Arc<Seal>,
        tmp: PathBuf,
        seq: u64,
        catalog: &[CatalogEntry],
        schemas: &[(u32, Vec<u8>)],
    ) -> Result<Self> {
        let file = storage.open_write(&tmp).map_err(|e| Error::io("create snapshot", &tmp, e))?;
        file.set_len(0).map_err(|e| Error::io("truncate snapshot", &tmp, e))?;
        let mut header = [0u8; HEADER_LEN];
        header[0..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        header[16..24].copy_from_slice(&seq.to_le_bytes());
        let crc = crc32c::crc32c(&header[0..28]);
        header[28..32].copy_from_slice(&crc.to_le_bytes());
        file.write_all_at(&header, 0).map_err(|e| Error::io("write snapshot", &tmp, e))?;
        let mut w = SnapshotWriter {
            file,
            tmp,
            seq,
            seal: seal.clone(),
            offset: HEADER_LEN as u64,
            block: Vec::with_capacity(BLOCK_TARGET * 2),
            records: 0,
            blocks: 0,
            synced: 0,
        };
        for t in catalog {
            record::put_create(&mut w.block, t.id, t.kind, &t.name);
        }
        for (version, description) in schemas {
            record::put_schema(&mut w.block, *version, description);
        }
        w.flush_block(KIND_CATALOG)?;
        Ok(w)
    }

    /// Appends a record written by schema version `schema`. Records must come sorted by table id, then key bytes.
    pub(crate) fn record(&mut self, table: u32, schema: u32, key: &[u8], value: &[u8]) -> Result<()> {
        // A block grows past its target only by one record, and a record fits in one log frame, so a block's
        // length always fits its u32 field.
        if !self.block.is_empty() && self.block.len() + key.len() + value.len() + 20 > BLOCK_TARGET {
            self.flush_block(KIND_RECORDS)?;
        }
        put_varint(&mut self.block, table.into());
        put_varint(&mut self.block, schema.into());
        put_bytes(&mut self.block, key);
        put_bytes(&mut self.block, value);
        self.records += 1;
        Ok(())
    }

    fn flush_block(&mut self, kind: u32) -> Result<()> {
        let plain = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_TARGET * 2));
        let (kind, payload) = self.seal.seal(kind, Place::Block { snapshot: self.seq, index: self.blocks }, plain);
        let mut header = [0u8; BLOCK_HEADER_LEN];
        header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&kind.to_le_bytes());
        let mut crc = crc32c::crc32c(&header[0..8]);
        crc = crc32c::crc32c_append(crc, &payload);
        header[8..12].copy_from_slice(&crc.to_le_bytes());
        let mut out = Vec::with_capacity(BLOCK_HEADER_LEN + payload.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&payload);
        self.file.write_all_at(&out, self.offset).map_err(|e| Error::io("write snapshot", &self.tmp, e))?;
        self.offset += out.len() as u64;
        self.blocks += 1;
        if self.offset - self.synced >= SYNC_EVERY {
            self.file.sync_data().map_err(|e| Error::io("fsync snapshot", &self.tmp, e))?;
            self.synced = self.offset;
        }
        Ok(())
    }

    /// Writes the end block, fsyncs, renames the file to `dest` and fsyncs the directory.
    pub(crate) fn finish(mut self, storage: &dyn Storage, dest: &Path) -> Result<()> {
        if !self.block.is_empty() {
            self.flush_block(KIND_RECORDS)?;
        }
        let blocks = self.blocks;
        self.block.extend_from_slice(&self.records.to_le_bytes());
        self.block.extend_from_slice(&blocks.to_le_bytes());
        self.flush_block(KIND_END)?;
        self.file.sync_all().map_err(|e| Error::io("fsync snapshot", &self.tmp, e))?;
        drop(self.file);
        storage.rename(&self.tmp, dest).map_err(|e| Error::io("rename snapshot into place", dest, e))?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        storage.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
        Ok(())
    }
}

/// A snapshot read into memory and checked from end to end.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) path: PathBuf,
    pub(crate) seq: u64,
    pub(crate) catalog: Vec<CatalogEntry>,
    /// The schema versions defined in the catalog block: (version, encoded description).
    pub(crate) schemas: Vec<(u32, Vec<u8>)>,
    /// The format version in the header: records of version 1 carry no schema version.
    version: u32,
    bytes: Vec<u8>,
    record_blocks: Vec<RecordBlock>,
    pub(crate) record_count: u64,
    /// Records per table id.
    pub(crate) table_counts: std::collections::BTreeMap<u32, u64>,
}

/// One record block: its payload in the file's bytes, or decoded (decompressed, decrypted) beside them.
#[derive(Debug)]
struct RecordBlock {
    /// Offset of the block's header in the file.
    at: usize,
    /// Where the payload lies in the file, if it is stored as it is.
    start: usize,
    len: usize,
    decoded: Option<Vec<u8>>,
}

impl RecordBlock {
    fn payload<'a>(&'a self, file: &'a [u8]) -> &'a [u8] {
        self.decoded.as_deref().unwrap_or(&file[self.start..self.start + self.len])
    }

    /// The file offset to name for a record at `p` in the payload: its own in a block stored as it is, else the
    /// block's.
    fn offset_of(&self, p: usize) -> usize {
        if self.decoded.is_some() {
            self.at
        } else {
            self.start + p
        }
    }
}

impl Snapshot {
    /// Reads and verifies the snapshot at `path`: every checksum, the record count, the order of records; blocks
    /// are decoded as `seal` reads them.
    /// For a caller that waits (`Waiting::Caller`), a large file is read, and a snapshot of many blocks checked, on
    /// two threads.
    pub(crate) fn read(storage: &dyn Storage, seal: &Seal, path: &Path, waiting: Waiting) -> Result<Self> {
        let bytes = waiting.read_all(storage, path).map_err(|e| Error::io("read snapshot", path, e))?;
        Self::parse_for(path, bytes, seal, waiting)
    }

    /// Checks and decodes a snapshot's bytes, as for a caller that waits (on two threads past 8 blocks).
    pub(crate) fn parse(path: &Path, bytes: Vec<u8>, seal: &Seal) -> Result<Self> {
        Self::parse_for(path, bytes, seal, Waiting::Caller)
    }

    fn parse_for(path: &Path, bytes: Vec<u8>, seal: &Seal, waiting: Waiting) -> Result<Self> {
        let damaged =
            |offset: usize, what: &str| -> Error { Corruption::new(path, offset as u64, what.to_string()).into() };
        let header = bytes.get(..HEADER_LEN).ok_or_else(|| damaged(0, "snapshot shorter than its header"))?;
        if &header[0..8] != MAGIC {
            return Err(damaged(0, "not a Cairn snapshot (wrong magic bytes)"));
        }
        if crc32c::crc32c(&header[0..28]) != u32::from_le_bytes(header[28..32].try_into().expect("4 bytes")) {
            return Err(damaged(0, "snapshot header checksum mismatch"));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if version == 0 || version > FORMAT_VERSION {
            return Err(damaged(8, &format!("snapshot written by format version {version}, this build reads versions 1 to {FORMAT_VERSION}; use a Cairn that reads it")));
        }
        if header[12..16] != [0; 4] || header[24..28] != [0; 4] {
            return Err(damaged(
                12,
                "snapshot header has flags or reserved bytes this build does not know; use a Cairn that reads it",
            ));
        }
        let seq = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
        let mut snap = Snapshot {
            path: path.to_path_buf(),
            seq,
            catalog: Vec::new(),
            schemas: Vec::new(),
            version,
            bytes: Vec::new(),
            record_blocks: Vec::new(),
            record_count: 0,
            table_counts: Default::default(),
        };
        // First every block's bounds, in file order, up to the end block. A block that cannot be read stops the
        // walk; its error is reported after the checksums of the blocks before it (and of itself, when its bounds
        // hold), as a reader checking them one by one would.
        struct Stored {
            pos: usize,
            kind: u32,
            base: u32,
            start: usize,
            len: usize,
        }
        // Whether the block at `pos`, with its payload at `start..start + len` (in bounds), has its checksum.
        let checksum_ok = |pos: usize, start: usize, len: usize| {
            let h = &bytes[pos..pos + BLOCK_HEADER_LEN];
            let stored = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
            crc32c::crc32c_append(crc32c::crc32c(&h[0..8]), &bytes[start..start + len]) == stored
        };
        let mut stored_blocks: Vec<Stored> = Vec::new();
        let mut stopped: Option<Error> = None;
        let mut pos = HEADER_LEN;
        loop {
            let Some(h) = bytes.get(pos..pos + BLOCK_HEADER_LEN) else {
                stopped = Some(damaged(pos, "snapshot ends without its end block"));
                break;
            };
            let len = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")) as usize;
            let kind = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
            let start = pos + BLOCK_HEADER_LEN;
            if bytes.get(start..start + len).is_none() {
                stopped = Some(damaged(pos, "snapshot block runs past the end of the file"));
                break;
            }
            let Some(base) = seal::base_kind(kind) else {
                // Its checksum first, as for every block: a damaged kind field is damage, not a newer format.
                let what = if checksum_ok(pos, start, len) {
                    "snapshot block stored in a way this build does not know; use a Cairn that reads it"
                } else {
                    "snapshot block checksum mismatch"
                };
                stopped = Some(damaged(pos, what));
                break;
            };
            stored_blocks.push(Stored { pos, kind, base, start, len });
            if base == KIND_END {
                break;
            }
            pos = start + len;
        }
        // Then, on two threads when there are many blocks, each block's checksum, its decoding (decrypt,
        // decompress: most of the cost of reading a sealed snapshot) and the walk over its records (most of the
        // cost of reading a plain one). The results are checked in file order below, so the first fault in the
        // file is the one reported, whichever thread found it.
        // `None` when the checksum fails; else the payload as it decoded, and the walk of a record block's payload.
        type Done<'b> = Option<(Result<std::borrow::Cow<'b, [u8]>>, Option<BlockWalk>)>;
        let work = |(index, b): (usize, &Stored)| -> Done<'_> {
            if !checksum_ok(b.pos, b.start, b.len) {
                return None;
            }
            let place = Place::Block { snapshot: seq, index: index as u64 };
            let payload = seal.open(b.kind, place, &bytes[b.start..b.start + b.len], path, b.pos as u64);
            let walk = match &payload {
                Ok(p) if b.base == KIND_RECORDS && index > 0 => Some(BlockWalk::of(p, version)),
                _ => None,
            };
            Some((payload, walk))
        };
        let mut done: Vec<_> = if stored_blocks.len() > 8 && waiting == Waiting::Caller {
            let half = stored_blocks.len() / 2;
            let (first, second) = stored_blocks.split_at(half);
            std::thread::scope(|s| {
                let later = s.spawn(|| second.iter().enumerate().map(|(i, b)| work((half + i, b))).collect::<Vec<_>>());
                let mut all: Vec<_> = first.iter().enumerate().map(work).collect();
                all.extend(later.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
                all
            })
        } else {
            stored_blocks.iter().enumerate().map(work).collect()
        };
        if let Some(b) = stored_blocks.iter().zip(&done).find_map(|(b, d)| d.is_none().then_some(b)) {
            return Err(damaged(b.pos, "snapshot block checksum mismatch"));
        }
        if let Some(e) = stopped {
            return Err(e);
        }
        // Then check them in order.
        // The last record of the blocks before this one.
        let mut last_before: Option<(u32, Vec<u8>)> = None;
        for (blocks, (b, result)) in stored_blocks.iter().zip(done.drain(..)).enumerate() {
            let blocks = blocks as u64;
            let Stored { pos, base, start, len, .. } = *b;
            let (payload, walk) = result.expect("every checksum held");
            let payload = payload?;
            let decoded = matches!(payload, std::borrow::Cow::Owned(_));
            // Offsets inside a decoded payload are not file offsets: name the block instead.
            let at = |p: usize| if decoded { pos } else { start + p };
            match base {
                KIND_CATALOG if blocks == 0 => {
                    for op in record::ops(&payload) {
                        match op {
                            Ok(Op::CreateTable { table, kind, name }) => {
                                snap.catalog.push(CatalogEntry { id: table, kind, name: name.to_string() })
                            }
                            Ok(Op::DefineSchema { schema, description }) if version >= 2 => {
                                snap.schemas.push((schema, description.to_vec()))
                            }
                            Ok(_) | Err(_) => return Err(damaged(at(0), "malformed catalog entry")),
                        }
                    }
                }
                KIND_RECORDS if blocks > 0 => {
                    let walk = walk.expect("record blocks are walked");
                    if let (Some(l), Some((t, k, end))) = (&last_before, &walk.first) {
                        if (l.0, &l.1[..]) >= (*t, &k[..]) {
                            return Err(damaged(at(*end), "snapshot records out of order"));
                        }
                    }
                    if let Some((p, what)) = walk.fault {
                        return Err(damaged(at(p), what));
                    }
                    snap.record_count += walk.count;
                    for (table, n) in walk.tables {
                        *snap.table_counts.entry(table).or_default() += n;
                    }
                    if walk.last.is_some() {
                        last_before = walk.last;
                    }
                    let decoded = decoded.then(|| payload.into_owned());
                    snap.record_blocks.push(RecordBlock { at: pos, start, len, decoded });
                }
                KIND_END => {
                    let counts = (payload.len() == 16).then(|| {
                        (
                            u64::from_le_bytes(payload[0..8].try_into().expect("8 bytes")),
                            u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes")),
                        )
                    });
                    if counts != Some((snap.record_count, blocks)) {
                        return Err(damaged(pos, "snapshot end block does not match its contents"));
                    }
                    if start + len != bytes.len() {
                        return Err(damaged(start + len, "bytes after the snapshot's end block"));
                    }
                    break;
                }
                _ => return Err(damaged(pos, "unknown or misplaced snapshot block")),
            }
        }
        drop(done);
        drop(stored_blocks);
        snap.bytes = bytes;
        Ok(snap)
    }

    /// The file's length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Every record, in order: (offset in the file, table id, schema version, key, value).
    pub(crate) fn records(&self) -> impl Iterator<Item = (u64, u32, u32, &[u8], &[u8])> + '_ {
        self.records_in(0..self.record_blocks.len())
    }

    /// The number of record blocks.
    pub(crate) fn record_block_count(&self) -> usize {
        self.record_blocks.len()
    }

    /// The records of the record blocks `blocks` (numbered from 0), in order.
    pub(crate) fn records_in(
        &self,
        blocks: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (u64, u32, u32, &[u8], &[u8])> + '_ {
        self.record_blocks[blocks].iter().flat_map(move |block| {
            let payload = block.payload(&self.bytes);
            let mut p = 0;
            std::iter::from_fn(move || {
                if p >= payload.len() {
                    return None;
                }
                let at = block.offset_of(p) as u64;
                next_record(payload, &mut p, self.version).map(|(t, s, k, v)| (at, t, s, k, v))
            })
        })
    }
}

/// What walking one record block's payload found: its records per table, its first and last key, and the first
/// fault (offset in the payload, what), after which the walk stopped.
struct BlockWalk {
    count: u64,
    /// Records per table id, in the order the tables appear (a handful of tables per block at most).
    tables: Vec<(u32, u64)>,
    /// The first record's table and key, and where it ends in the payload.
    first: Option<(u32, Vec<u8>, usize)>,
    last: Option<(u32, Vec<u8>)>,
    fault: Option<(usize, &'static str)>,
}

impl BlockWalk {
    fn of(payload: &[u8], version: u32) -> Self {
        let mut w = BlockWalk { count: 0, tables: Vec::new(), first: None, last: None, fault: None };
        let mut p = 0;
        let mut last: Option<(u32, &[u8])> = None;
        while p < payload.len() {
            let Some((table, _, key, _)) = next_record(payload, &mut p, version) else {
                w.fault = Some((p, "malformed snapshot record"));
                break;
            };
            if last.is_some_and(|l| l >= (table, key)) {
                w.fault = Some((p, "snapshot records out of order"));
                break;
            }
            if last.is_none() {
                w.first = Some((table, key.to_vec(), p));
            }
            last = Some((table, key));
            w.count += 1;
            match w.tables.iter_mut().find(|(t, _)| *t == table) {
                Some((_, n)) => *n += 1,
                None => w.tables.push((table, 1)),
            }
        }
        w.last = last.map(|(t, k)| (t, k.to_vec()));
        w
    }
}

/// One record of a snapshot of format `version`: (table, schema version, key, value).
/// (Also read by salvage, block by block.)
pub(crate) fn next_record<'a>(buf: &'a [u8], pos: &mut usize, version: u32) -> Option<(u32, u32, &'a [u8], &'a [u8])> {
    let table = u32::try_from(get_varint(buf, pos)?).ok()?;
    let schema = if version >= 2 { u32::try_from(get_varint(buf, pos)?).ok()? } else { 0 };
    let key = get_bytes(buf, pos)?;
    let value = get_bytes(buf, pos)?;
    Some((table, schema, key, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FsStorage;

    fn write(dir: &Path, records: &[(u32, &[u8], &[u8])]) -> PathBuf {
        let catalog = vec![CatalogEntry { id: 1, kind: TableKind::Hash, name: "a".into() }];
        let dest = dir.join(file_name(9));
        let schemas = vec![(3, b"description".to_vec())];
        let mut w =
            SnapshotWriter::create(&FsStorage, &Seal::plain(), dir.join("x.tmp"), 9, &catalog, &schemas).unwrap();
        for (t, k, v) in records {
            w.record(*t, *t + 2, k, v).unwrap();
        }
        w.finish(&FsStorage, &dest).unwrap();
        dest
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![7u8; 100_000];
        let path = write(dir.path(), &[(1, b"a", b"1"), (1, b"b", &big), (2, b"a", b"")]);
        let snap = Snapshot::read(&FsStorage, &Seal::plain(), &path, Waiting::Caller).unwrap();
        assert_eq!(snap.seq, 9);
        assert_eq!(snap.catalog[0].name, "a");
        assert_eq!(snap.schemas, vec![(3, b"description".to_vec())]);
        let got: Vec<_> = snap.records().map(|(_, t, s, k, v)| (t, s, k.to_vec(), v.len())).collect();
        assert_eq!(got, vec![(1, 3, b"a".to_vec(), 1), (1, 3, b"b".to_vec(), 100_000), (2, 4, b"a".to_vec(), 0)]);
        assert!(!dir.path().join("x.tmp").exists());
    }

    #[test]
    fn every_flip_and_truncation_is_reported_with_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &[(1, b"a", b"1"), (1, b"b", b"22")]);
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            let err = Snapshot::parse(&path, bad, &Seal::plain()).unwrap_err();
            let Error::Corrupt(err) = err else { panic!("flip at {i}: {err}") };
            assert!(err.offset as usize <= good.len(), "flip at {i}");
        }
        for cut in 0..good.len() {
            assert!(Snapshot::parse(&path, good[..cut].to_vec(), &Seal::plain()).is_err(), "cut at {cut}");
        }
    }

    /// A snapshot of many blocks is checked on two threads; its counts are whole, and of two damaged blocks the one
    /// earlier in the file is reported, whichever thread checked it.
    #[test]
    fn many_blocks_are_counted_whole_and_the_first_damage_in_the_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<[u8; 4]> = (0..3_000u32).map(|i| i.to_be_bytes()).collect();
        let value = vec![5u8; 1_000];
        let mut records: Vec<(u32, &[u8], &[u8])> = keys.iter().map(|k| (1, &k[..], &value[..])).collect();
        records.extend(keys[..10].iter().map(|k| (2, &k[..], &b"x"[..])));
        let path = write(dir.path(), &records);
        let good = std::fs::read(&path).unwrap();
        let snap = Snapshot::parse(&path, good.clone(), &Seal::plain()).unwrap();
        assert!(snap.record_block_count() > 16, "{} blocks", snap.record_block_count());
        assert_eq!(snap.record_count, 3_010);
        assert_eq!(snap.table_counts.iter().map(|(t, n)| (*t, *n)).collect::<Vec<_>>(), vec![(1, 3_000), (2, 10)]);
        let got: Vec<(u32, Vec<u8>)> = snap.records().map(|(_, t, _, k, _)| (t, k.to_vec())).collect();
        let want: Vec<(u32, Vec<u8>)> = records.iter().map(|(t, k, _)| (*t, k.to_vec())).collect();
        assert_eq!(got, want);
        let at = |i: usize| snap.record_blocks[i].at;
        let (early, late) = (3, snap.record_block_count() - 2);
        let offset_of = |flips: &[usize]| {
            let mut bad = good.clone();
            for &i in flips {
                bad[at(i) + BLOCK_HEADER_LEN + 10] ^= 0x40;
            }
            match Snapshot::parse(&path, bad, &Seal::plain()).unwrap_err() {
                Error::Corrupt(c) => c.offset as usize,
                other => panic!("{other}"),
            }
        };
        assert_eq!(offset_of(&[late]), at(late));
        assert_eq!(offset_of(&[late, early]), at(early));
    }

    #[test]
    fn names() {
        assert_eq!(parse_name(&file_name(12)), Some(12));
        assert_eq!(parse_name("00000000000000000012.snap.tmp"), None);
    }
}

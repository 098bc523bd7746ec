//! Salvage: everything readable of a damaged database, written into a new, valid one, with a report of what was
//! lost. What `cairn salvage` runs.
//!
//! It reads the source's files only (no lock, nothing written there) and trusts nothing but checksums:
//!
//! - **The newest snapshot**, block by block. A block whose checksum fails is lost with every record in it; the walk
//!   goes on at the next offset where a whole block starts. A damaged header loses nothing by itself (the sequence
//!   number is then taken from the file name).
//! - **Every log segment**, frame by frame. A frame that is not whole is lost; the walk goes on at the next 8-aligned
//!   offset where a whole frame starts. Frames are applied in sequence order, each whole (a frame with a malformed
//!   operation is lost whole); sequence numbers after the snapshot that no whole frame carries are reported missing.
//!   Later frames are still applied: the result holds every readable commit, which may be a state the database
//!   never had if a commit in the middle was lost (the report says so).
//!
//! The new database is a snapshot of the result, at the last sequence number found, and an empty log after it: it
//! opens as any database does, with the same table ids, names and schema versions (where they were readable).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::db::open::LOCK_FILE;
use crate::error::{Error, Result};
use crate::format::FORMAT_VERSION;
use crate::log::frame::{self, Probe};
use crate::log::record::{self, Op};
use crate::log::segment;
use crate::log::writer::LogWriter;
use crate::seal::{self, EncryptionKey, Place, Seal};
use crate::snapshot::{self, CatalogEntry, SnapshotWriter, BLOCK_HEADER_LEN, HEADER_LEN, KIND_CATALOG, KIND_RECORDS};
use crate::storage::{FsStorage, Storage};

/// What [`salvage`] wrote and what it could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Salvaged {
    /// The new database.
    pub out: PathBuf,
    /// The last sequence number it holds.
    pub seq: u64,
    /// The records it holds, Cairn's own tables included.
    pub records: u64,
    /// What could not be read, in the order it was found.
    pub lost: Vec<Loss>,
}

/// Something [`salvage`] could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loss {
    /// The file, if the loss is in one place.
    pub file: Option<PathBuf>,
    /// Where in it.
    pub offset: u64,
    /// What was lost, and why.
    pub what: String,
}

/// Writes everything readable of the database in `dir` into a new database in `out` (which must not exist or be
/// empty) and reports what was lost. See the module docs.
pub fn salvage(dir: impl AsRef<Path>, out: impl AsRef<Path>) -> Result<Salvaged> {
    salvage_keyed(dir, out, None)
}

/// [`salvage`] of a database that may be encrypted under `key`. The copy is encrypted under the same key (with new
/// data keys). A unit that fails authentication is lost like a damaged one; so is every snapshot block after a
/// damaged one (a block authenticates its index, which damage before it hides).
pub fn salvage_keyed(dir: impl AsRef<Path>, out: impl AsRef<Path>, key: Option<EncryptionKey>) -> Result<Salvaged> {
    let (dir, out) = (dir.as_ref(), out.as_ref());
    let storage: Arc<dyn Storage> = Arc::new(FsStorage);
    if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(Error::BackupTarget {
            path: out.to_path_buf(),
            problem: "it is not empty; salvage into a new directory".into(),
        });
    }
    let listing = super::open::list_database(&*storage, dir)?;
    let seal = crate::seal::load(&*storage, dir, crate::seal::Settings::reading(key.as_ref()))?;
    let mut found = Found::default();
    if let Some((seq, path)) = listing.snapshots.last() {
        let bytes = storage.read_all(path).map_err(|e| Error::io("read snapshot", path, e))?;
        found.snapshot(&seal, path, *seq, &bytes);
    }
    let mut frames: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for (_, path) in &listing.segments {
        let bytes = storage.read_all(path).map_err(|e| Error::io("read log segment", path, e))?;
        found.segment(&seal, path, &bytes, &mut frames);
    }
    found.apply(frames);
    found.write(&storage, out, key.as_ref())
}

/// What was read so far.
#[derive(Default)]
struct Found {
    snapshot_seq: u64,
    last_seq: u64,
    catalog: Vec<CatalogEntry>,
    schemas: Vec<(u32, Vec<u8>)>,
    records: BTreeMap<(u32, Vec<u8>), (u32, Vec<u8>)>,
    /// Where each frame was read from, by sequence number, for the report.
    places: BTreeMap<u64, (PathBuf, u64)>,
    lost: Vec<Loss>,
}

impl Found {
    fn lose(&mut self, file: &Path, offset: usize, what: impl Into<String>) {
        self.lost.push(Loss { file: Some(file.to_path_buf()), offset: offset as u64, what: what.into() });
    }

    fn snapshot(&mut self, seal: &Seal, path: &Path, named_seq: u64, bytes: &[u8]) {
        let header = bytes.get(..HEADER_LEN);
        let whole = header.is_some_and(|h| {
            &h[0..8] == snapshot::MAGIC
                && crc32c::crc32c(&h[0..28]) == u32::from_le_bytes(h[28..32].try_into().unwrap_or_default())
        });
        let version = match header {
            Some(h) if whole => u32::from_le_bytes(h[8..12].try_into().unwrap_or_default()),
            _ => {
                self.lose(path, 0, "snapshot header damaged; its sequence number is taken from the file name");
                FORMAT_VERSION
            }
        };
        if version == 0 || version > FORMAT_VERSION {
            self.lose(
                path,
                8,
                format!("snapshot of format version {version}, which this build cannot read: all of it"),
            );
            return;
        }
        self.snapshot_seq = named_seq;
        self.last_seq = named_seq;
        let mut pos = HEADER_LEN;
        let mut index = 0;
        while pos + BLOCK_HEADER_LEN <= bytes.len() {
            match block_at(bytes, pos) {
                Some((kind, stored)) => {
                    let place = Place::Block { snapshot: named_seq, index };
                    match seal.open(kind, place, stored, path, pos as u64) {
                        Ok(payload) => self.block(path, pos, kind & seal::KIND_MASK, &payload, version),
                        Err(e) => self.lose(path, pos, format!("{e}: every record in the block")),
                    }
                    pos += BLOCK_HEADER_LEN + stored.len();
                    index += 1;
                }
                None => {
                    let next = (pos + 1..bytes.len()).find(|&p| block_at(bytes, p).is_some());
                    let end = next.unwrap_or(bytes.len());
                    self.lose(
                        path,
                        pos,
                        format!("{} bytes of snapshot blocks damaged: every record in them", end - pos),
                    );
                    pos = end;
                }
            }
        }
    }

    fn block(&mut self, path: &Path, pos: usize, kind: u32, payload: &[u8], version: u32) {
        match kind {
            KIND_CATALOG => {
                for op in record::ops(payload) {
                    match op {
                        Ok(Op::CreateTable { table, kind, name }) => {
                            self.catalog.push(CatalogEntry { id: table, kind, name: name.to_string() })
                        }
                        Ok(Op::DefineSchema { schema, description }) => {
                            self.schemas.push((schema, description.to_vec()))
                        }
                        _ => return self.lose(path, pos, "malformed catalog entry: the catalog's rest"),
                    }
                }
            }
            KIND_RECORDS => {
                let mut p = 0;
                while p < payload.len() {
                    match snapshot::next_record(payload, &mut p, version) {
                        Some((table, schema, key, value)) => {
                            self.records.insert((table, key.to_vec()), (schema, value.to_vec()));
                        }
                        None => return self.lose(path, pos, "malformed snapshot record: the rest of its block"),
                    }
                }
            }
            _ => {}
        }
    }

    fn segment(&mut self, seal: &Seal, path: &Path, bytes: &[u8], frames: &mut BTreeMap<u64, Vec<u8>>) {
        match segment::decode_header(bytes) {
            Ok(_) => {}
            Err(segment::HeaderError::Bad(why)) => self.lose(path, 0, format!("{why}; its frames are read anyway")),
            Err(segment::HeaderError::Unsupported(why)) => return self.lose(path, 0, format!("{why}: all of it")),
        }
        let mut pos = segment::HEADER_LEN;
        while pos < bytes.len() {
            match frame::probe(bytes, pos) {
                Probe::Frame { header, payload } => {
                    if header.seq > self.snapshot_seq && !frames.contains_key(&header.seq) {
                        let place = Place::Frame { seq: header.seq, durable: header.durable };
                        match seal.open(header.kind, place, payload, path, pos as u64) {
                            Ok(payload) => {
                                self.places.insert(header.seq, (path.to_path_buf(), pos as u64));
                                frames.insert(header.seq, payload.into_owned());
                            }
                            Err(e) => self.lose(path, pos, format!("{e}: the frame there (a transaction)")),
                        }
                    }
                    pos += header.frame_len();
                }
                Probe::Zeros if bytes[pos..].iter().all(|&b| b == 0) => break,
                Probe::Zeros | Probe::Bad(_) => {
                    let why = match frame::probe(bytes, pos) {
                        Probe::Bad(why) => why,
                        _ => "zeros before more data",
                    };
                    let next = (pos + frame::ALIGN..bytes.len())
                        .step_by(frame::ALIGN)
                        .find(|&p| matches!(frame::probe(bytes, p), Probe::Frame { .. }));
                    self.lose(path, pos, format!("{why}: the frame there (a transaction) is unreadable"));
                    pos = next.unwrap_or(bytes.len());
                }
            }
        }
    }

    fn apply(&mut self, frames: BTreeMap<u64, Vec<u8>>) {
        let mut expected = self.snapshot_seq + 1;
        for (seq, payload) in frames {
            if seq > expected {
                let which = match seq - 1 {
                    last if last == expected => format!("transaction {expected} is"),
                    last => format!("transactions {expected} to {last} are"),
                };
                let what = format!("{which} missing (their frames were damaged); later ones were kept");
                self.lost.push(Loss { file: None, offset: 0, what });
            }
            expected = seq + 1;
            let ops: std::result::Result<Vec<Op<'_>>, usize> = record::ops(&payload).collect();
            let Ok(ops) = ops else {
                let (file, offset) = self.places.get(&seq).cloned().unwrap_or_default();
                let what = format!("transaction {seq}: a malformed operation; the whole transaction");
                self.lost.push(Loss { file: Some(file), offset, what });
                continue;
            };
            for op in ops {
                match op {
                    Op::Put { table, schema, key, value } => {
                        self.records.insert((table, key.to_vec()), (schema, value.to_vec()));
                    }
                    Op::Delete { table, key } => {
                        self.records.remove(&(table, key.to_vec()));
                    }
                    Op::CreateTable { table, kind, name } if !self.catalog.iter().any(|c| c.id == table) => {
                        self.catalog.push(CatalogEntry { id: table, kind, name: name.to_string() })
                    }
                    Op::DefineSchema { schema, description } if !self.schemas.iter().any(|(v, _)| *v == schema) => {
                        self.schemas.push((schema, description.to_vec()))
                    }
                    _ => {}
                }
            }
            self.last_seq = seq;
        }
    }

    fn write(self, storage: &Arc<dyn Storage>, out: &Path, key: Option<&EncryptionKey>) -> Result<Salvaged> {
        storage.create_dir_all(out).map_err(|e| Error::io("create directory", out, e))?;
        storage.open_write(&out.join(LOCK_FILE)).map_err(|e| Error::io("create lock file", out, e))?;
        let seal = crate::seal::load(
            &**storage,
            out,
            crate::seal::Settings { create: true, ..crate::seal::Settings::reading(key) },
        )?;
        if self.last_seq > 0 {
            let name = snapshot::file_name(self.last_seq);
            let tmp = out.join(format!("{name}.tmp"));
            let mut w = SnapshotWriter::create(&**storage, &seal, tmp, self.last_seq, &self.catalog, &self.schemas)?;
            for ((table, key), (schema, value)) in &self.records {
                w.record(*table, *schema, key, value)?;
            }
            w.finish(&**storage, &out.join(name))?;
        }
        drop(LogWriter::create(storage.clone(), out, self.last_seq + 1, 64 << 20)?);
        Ok(Salvaged { out: out.to_path_buf(), seq: self.last_seq, records: self.records.len() as u64, lost: self.lost })
    }
}

/// The whole block at `pos` (its checksum matches): its kind and payload.
fn block_at(bytes: &[u8], pos: usize) -> Option<(u32, &[u8])> {
    let h = bytes.get(pos..pos + BLOCK_HEADER_LEN)?;
    let len = u32::from_le_bytes(h[0..4].try_into().ok()?) as usize;
    let kind = u32::from_le_bytes(h[4..8].try_into().ok()?);
    let stored = u32::from_le_bytes(h[8..12].try_into().ok()?);
    if !(1..=3).contains(&kind) {
        return None;
    }
    let payload = bytes.get(pos + BLOCK_HEADER_LEN..pos + BLOCK_HEADER_LEN + len)?;
    (crc32c::crc32c_append(crc32c::crc32c(&h[0..8]), payload) == stored).then_some((kind, payload))
}

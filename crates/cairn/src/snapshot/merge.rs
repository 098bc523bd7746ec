//! Compaction: folds the previous snapshot and the closed log segments after it into a new snapshot.
//!
//! It works on files only, never on the in-memory tables, so it blocks no reader and no writer: the old snapshot's
//! records are sorted by (table id, key bytes), the log's last write per key is collected into a sorted vector that
//! borrows from the segments' bytes, and the two are merged into the new file. It holds the old snapshot's and the
//! closed segments' bytes in memory while it works (a streaming reader is a later step). Tables that the running schema
//! does not know are carried over untouched.
//!
//! Keys are compared as encoded bytes, so a table's key type must encode equal keys to equal bytes. Every serde type
//! whose `Eq` is structural does; the schema-evolution rules forbid changing a key type without a migration.

use std::path::{Path, PathBuf};

use super::{file_name, CatalogEntry, Snapshot, SnapshotWriter};
use crate::error::{Corruption, Result};
use crate::log::record::{self, Op};
use crate::log::scan::{self, SegmentData};
use crate::seal::Seal;
use crate::storage::{Storage, Waiting};

/// A table id and an encoded key.
type TableKey<'a> = (u32, &'a [u8]);

/// The last write to a key: for a put, the schema version and the encoded value; `None` for a delete.
type Write<'a> = Option<(u32, &'a [u8])>;

/// What a fold produced.
#[derive(Debug)]
pub(crate) struct Folded {
    pub(crate) path: PathBuf,
    pub(crate) seq: u64,
    pub(crate) records: u64,
}

/// Writes the snapshot for sequence number `upto` from `old` and `segments` (closed, in order) into `dir`, reading
/// and writing units as `seal` does (so a fold after a key rotation writes everything under the new key).
pub(crate) fn fold(
    storage: &dyn Storage,
    seal: &std::sync::Arc<Seal>,
    dir: &Path,
    old: Option<&Path>,
    segments: &[PathBuf],
    upto: u64,
) -> Result<Folded> {
    let old = old.map(|p| Snapshot::read(storage, seal, p, Waiting::Nobody)).transpose()?;
    let after = old.as_ref().map_or(0, |s| s.seq);
    let mut catalog = old.as_ref().map(|s| s.catalog.clone()).unwrap_or_default();
    let bytes = scan::read_segments(storage, segments.iter().map(PathBuf::as_path), Waiting::Nobody)?;
    let data: Vec<SegmentData<'_>> =
        segments.iter().zip(&bytes).map(|(path, bytes)| SegmentData { path, bytes }).collect();
    let scanned = scan::scan(&data, after)?;
    if let Some(cut) = scanned.cut {
        return Err(Corruption::new(
            &segments[cut.segment],
            cut.offset as u64,
            format!("closed log segment is not whole: {}", cut.reason),
        )
        .into());
    }
    // Every write in log order, then sorted by key (stably, so a key's writes stay in log order) and cut to the last
    // write per key. A sorted vector costs a third of what inserting into a B-tree did (measured on 1M records).
    let mut schemas = old.as_ref().map(|s| s.schemas.clone()).unwrap_or_default();
    let mut latest: Vec<(TableKey<'_>, Write<'_>)> = Vec::new();
    let frames: Vec<_> = scanned.frames.iter().filter(|f| f.header.seq <= upto).collect();
    let payloads = frames.iter().map(|f| f.plain(seal, &data[f.segment])).collect::<Result<Vec<_>>>()?;
    for (frame, payload) in frames.iter().zip(&payloads) {
        for op in record::ops(payload) {
            match op {
                Ok(Op::Put { table, schema, key, value }) => latest.push(((table, key), Some((schema, value)))),
                Ok(Op::Delete { table, key }) => latest.push(((table, key), None)),
                Ok(Op::CreateTable { table, kind, name }) => {
                    if !catalog.iter().any(|c| c.id == table) {
                        catalog.push(CatalogEntry { id: table, kind, name: name.to_string() });
                    }
                }
                Ok(Op::DefineSchema { schema, description }) => {
                    if !schemas.iter().any(|(v, _)| *v == schema) {
                        schemas.push((schema, description.to_vec()));
                    }
                }
                Ok(Op::Writer { .. }) => {}
                Err(at) => return Err(frame.malformed_op(&segments[frame.segment], at).into()),
            }
        }
    }
    latest.sort_by(|a, b| a.0.cmp(&b.0));
    // `dedup_by` keeps the first of equal neighbours; swapping first makes it keep the last write's value.
    latest.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    let seq = scanned.last_seq.min(upto).max(after);
    let dest = dir.join(file_name(seq));
    let tmp = dir.join(format!("{}.tmp", file_name(seq)));
    let mut w = SnapshotWriter::create(storage, seal, tmp, seq, &catalog, &schemas)?;
    let mut log = latest.into_iter().peekable();
    let mut records = 0u64;
    let mut emit = |w: &mut SnapshotWriter, t: u32, k: &[u8], v: Write<'_>| -> Result<()> {
        if let Some((s, v)) = v {
            records += 1;
            w.record(t, s, k, v)?;
        }
        Ok(())
    };
    if let Some(old) = &old {
        for (_, t, s, k, v) in old.records() {
            while let Some(&((lt, lk), lv)) = log.peek() {
                if (lt, lk) >= (t, k) {
                    break;
                }
                log.next();
                emit(&mut w, lt, lk, lv)?;
            }
            match log.peek() {
                Some(&((lt, lk), lv)) if (lt, lk) == (t, k) => {
                    log.next();
                    emit(&mut w, t, k, lv)?;
                }
                _ => emit(&mut w, t, k, Some((s, v)))?,
            }
        }
    }
    for ((t, k), v) in log {
        emit(&mut w, t, k, v)?;
    }
    w.finish(storage, &dest)?;
    Ok(Folded { path: dest, seq, records })
}

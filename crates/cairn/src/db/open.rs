//! Opening a database: lock, load the newest snapshot, replay the log after it, cut a torn tail, start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::commit::{Around, Pipeline};
use super::shared;
use super::Unreadable;
use super::{Background, Db, Inner, TableInfo, Writer};
use crate::error::{Corruption, Error, Result};
use crate::evolve::{self, Plan};
use crate::format::FORMAT_VERSION;
use crate::log::record::{self, Op};
use crate::log::scan::{self, SegmentData};
use crate::log::segment;
use crate::log::writer::LogWriter;
use crate::options::{Mode, Options};
use crate::schema::TableDef;
use crate::seal::{self, Seal};
use crate::snapshot::{self, CatalogEntry, Snapshot};
use crate::storage::{Storage, Waiting};
use crate::store::read::Reader;
use crate::store::state::State;
use crate::store::{DecodeFailure, FailureKind, LoadBatch, TableStore};

/// The name of the lock file in a database directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// The files of a database directory, sorted by sequence number.
pub(crate) struct Listing {
    pub(crate) snapshots: Vec<(u64, PathBuf)>,
    pub(crate) segments: Vec<(u64, PathBuf)>,
    pub(crate) temporary: Vec<PathBuf>,
}

/// What recovery reads first, under the lock: the newest snapshot, the segments after it (with their bytes), and the
/// files that are leftovers.
pub(crate) struct Base {
    pub(crate) snap: Option<Snapshot>,
    /// Older snapshots (of a compaction interrupted before its clean-up) and segments the snapshot covers.
    pub(crate) obsolete: Vec<PathBuf>,
    pub(crate) segments: Vec<(u64, PathBuf)>,
    pub(crate) bytes: Vec<Vec<u8>>,
}

/// Lists `dir` (under its lock), removes leftover temporary files, reads the newest snapshot and the segments it does
/// not cover: what both openings, typed (`open`) and untyped (`raw`), start recovery from. The snapshot is decoded
/// as `seal` reads it.
pub(crate) fn read_base(storage: &dyn Storage, dir: &Path, seal: &Seal) -> Result<Base> {
    let listing = list(storage, dir)?;
    for tmp in &listing.temporary {
        storage.remove(tmp).map_err(|e| Error::io("remove leftover temporary file", tmp, e))?;
    }
    let snap = match listing.snapshots.last() {
        Some((_, path)) => Some(Snapshot::read(storage, seal, path, Waiting::Caller)?),
        None => None,
    };
    let snap_seq = snap.as_ref().map_or(0, |s| s.seq);
    let mut obsolete: Vec<PathBuf> = listing.snapshots.iter().rev().skip(1).map(|(_, p)| p.clone()).collect();
    let mut segments = listing.segments;
    obsolete.extend(segment::take_covered(&mut segments, snap_seq));
    let bytes = scan::read_segments(storage, segments.iter().map(|(_, p)| p.as_path()), Waiting::Caller)?;
    Ok(Base { snap, obsolete, segments, bytes })
}

/// Lists the snapshots, log segments and leftover temporary files of the database directory `dir`.
pub(crate) fn list(storage: &dyn Storage, dir: &Path) -> Result<Listing> {
    let names = storage.list(dir).map_err(|e| Error::io("list database directory", dir, e))?;
    let mut l = Listing { snapshots: Vec::new(), segments: Vec::new(), temporary: Vec::new() };
    for name in names {
        if let Some(seq) = snapshot::parse_name(&name) {
            l.snapshots.push((seq, dir.join(name)));
        } else if let Some(seq) = segment::parse_name(&name) {
            l.segments.push((seq, dir.join(name)));
        } else if name.ends_with(".snap.tmp") {
            l.temporary.push(dir.join(name));
        }
    }
    l.snapshots.sort();
    l.segments.sort();
    Ok(l)
}

/// The lock a process holds on an open database directory: the exclusive mode lock, or (shared mode) nothing here
/// and the attachment, which holds the shared mode lock and, until its guard is dropped, the writer lock.
pub(crate) type DirLock = (Box<dyn std::fmt::Debug + Send + Sync>, Option<shared::Attached>);

/// Locks `dir` as `options.mode` says. In shared mode the writer lock is held from here until the attachment's
/// guard is dropped (recovery may cut the log, and table ids are assigned from the catalog the open reads), and a
/// dead writer's interrupted append has been undone. `defs` are the tables a reload from a snapshot makes.
pub(crate) fn lock_dir(options: &Options, dir: &Path, defs: &[TableDef]) -> Result<DirLock> {
    let storage = &*options.storage;
    let lock_path = dir.join(LOCK_FILE);
    Ok(match options.mode {
        Mode::Exclusive => (
            storage.lock(&lock_path).map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock if shared::held_shared(&lock_path) => {
                    Error::LockedShared { path: dir.to_path_buf() }
                }
                std::io::ErrorKind::WouldBlock => Error::Locked { path: dir.to_path_buf() },
                _ => Error::io("lock database directory", &lock_path, e),
            })?,
            None,
        ),
        Mode::Shared => {
            let attached = shared::attach(dir, &lock_path, defs, options.segment_size)?;
            if !attached.first {
                shared::repair(storage, dir, &attached.shared.counter)?;
            }
            (Box::new(()), Some(attached))
        }
    })
}

/// Opens the database in `dir` for the schema whose tables are `defs`.
pub(crate) fn open(options: Options, dir: &Path, mut defs: Vec<TableDef>) -> Result<Db> {
    let ids_pos = defs.len();
    defs.push(crate::id::table_def());
    let storage = options.storage.clone();
    storage.create_dir_all(dir).map_err(|e| Error::io("create database directory", dir, e))?;
    let (lock, attached) = lock_dir(&options, dir, &defs)?;
    // The key file first: a wrong key is refused before anything else is read.
    let seal = seal::load(&*storage, dir, seal::Settings::of(&options))?;
    let Base { snap, obsolete, segments, bytes } = read_base(&*storage, dir, &seal)?;
    let snap_seq = snap.as_ref().map_or(0, |s| s.seq);
    let data: Vec<SegmentData<'_>> =
        segments.iter().zip(&bytes).map(|((_, path), bytes)| SegmentData { path, bytes }).collect();
    let scanned = scan::scan(&data, snap_seq)?;
    let payloads = scanned.frames.iter().map(|f| f.plain(&seal, &data[f.segment])).collect::<Result<Vec<_>>>()?;

    // The catalog: the snapshot's, then the tables created in the log; the same for schema versions.
    let mut catalog: Vec<CatalogEntry> = snap.as_ref().map(|s| s.catalog.clone()).unwrap_or_default();
    let mut raw_schemas: Vec<(u32, &[u8])> =
        snap.as_ref().map(|s| s.schemas.iter().map(|(v, d)| (*v, &d[..])).collect()).unwrap_or_default();
    for (frame, payload) in scanned.frames.iter().zip(&payloads) {
        for op in record::ops(payload) {
            match op {
                Ok(Op::CreateTable { table, kind, name }) if !catalog.iter().any(|c| c.id == table) => {
                    catalog.push(CatalogEntry { id: table, kind, name: name.to_string() });
                }
                Ok(Op::DefineSchema { schema, description }) => raw_schemas.push((schema, description)),
                Ok(_) => {}
                Err(at) => return Err(frame.malformed_op(data[frame.segment].path, at).into()),
            }
        }
    }
    let mut next_id = catalog.iter().map(|c| c.id + 1).max().unwrap_or(1);
    let mut tables = Vec::with_capacity(defs.len());
    let mut created = Vec::new();
    for def in &defs {
        // By name, else by an earlier name (a renamed table keeps its id and its name on disk).
        let found = catalog.iter().find(|c| c.name == def.name).or_else(|| {
            def.old_names
                .iter()
                .find_map(|old| catalog.iter().find(|c| c.name == *old && !defs.iter().any(|d| d.name == *old)))
        });
        let id = match found {
            Some(c) => c.id,
            None => {
                let id = next_id;
                next_id += 1;
                created.push((id, def.kind, def.name));
                id
            }
        };
        tables.push(TableInfo { name: def.name, id, unique: def.indexes.iter().any(|&(_, unique)| unique) });
    }
    let unknown_tables: Vec<String> =
        catalog.iter().filter(|c| !tables.iter().any(|t| t.id == c.id)).map(|c| c.name.clone()).collect();
    for name in &unknown_tables {
        tracing::warn!(dir = %dir.display(), table = %name, "table on disk is not in the schema; it is kept as it is");
    }

    // The running schema against the stored versions: its version, and how each table reads each version.
    let running = evolve::describe_schema(&defs)?;
    let versions = evolve::resolve(dir, &defs, running, &raw_schemas)?;
    let plans = &versions.plans;
    // Looks up the plan for a record; refusals and undefined versions are errors here.
    let plan_for = |pos: usize, schema: u32, file: &Path, offset: u64| -> Result<&Plan> {
        match plans[pos].get(schema) {
            Plan::Refuse(r) => Err(r.error(tables[pos].name)),
            Plan::Undefined => Err(Corruption::new(
                file,
                offset,
                format!(
                    "record of table `{}` names schema version {schema}, which the database does not define",
                    tables[pos].name
                ),
            )
            .into()),
            plan => Ok(plan),
        }
    };

    // Load the snapshot and replay the log into both copies of the state at once.
    let pos_of: HashMap<u32, usize> = tables.iter().enumerate().map(|(pos, t)| (t.id, pos)).collect();
    let mut stores: Vec<Box<dyn TableStore>> = defs.iter().map(|d| (d.make)()).collect();
    let mut twins: Vec<Box<dyn TableStore>> = stores.iter().map(|s| s.clone_boxed()).collect();
    let decode_error = |pos: usize, schema: u32, file: &Path, offset: u64, f: DecodeFailure| match f.kind {
        FailureKind::Mismatch(path) => Error::RecordIncompatible {
            table: tables[pos].name.to_string(),
            writer_version: schema,
            file: file.to_path_buf(),
            offset,
            path,
            message: f.message,
        },
        _ => Error::Decode {
            table: tables[pos].name.to_string(),
            what: f.what,
            file: file.to_path_buf(),
            offset,
            message: f.message,
        },
    };
    // Records that hold an enum variant the running types lack, by (table position, key bytes): later writes to
    // the key in the log replace them.
    let mut unreadable: HashMap<(usize, Vec<u8>), Unreadable> = HashMap::new();
    let unreadable_record = |pos: usize, key: &[u8], schema: u32, f: DecodeFailure| Unreadable {
        table: tables[pos].name.to_string(),
        key: key.to_vec(),
        schema_version: schema,
        reason: f.message,
    };
    if let Some(snap) = &snap {
        for (table, &count) in &snap.table_counts {
            if let Some(&pos) = pos_of.get(table) {
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                stores[pos].reserve(count);
                twins[pos].reserve(count);
            }
        }
        // Two threads decode half the blocks each into per-table batches for both copies; then one thread fills
        // each copy. (Records are unique per table, so the order of insertion does not matter.)
        let blocks = snap.record_block_count();
        type Decoded = (Vec<[Option<LoadBatch>; 2]>, Vec<(usize, Unreadable)>);
        let decode = |range: std::ops::Range<usize>| -> Result<Decoded> {
            let mut batches: Vec<[Option<LoadBatch>; 2]> = (0..stores.len()).map(|_| [None, None]).collect();
            let mut skipped = Vec::new();
            for (offset, table, schema, key, value) in snap.records_in(range) {
                if let Some(&pos) = pos_of.get(&table) {
                    let plan = plan_for(pos, schema, &snap.path, offset)?;
                    match stores[pos].decode_into(&mut batches[pos], key, value, plan) {
                        Ok(()) => {}
                        Err(f) if f.kind == FailureKind::UnknownVariant => {
                            skipped.push((pos, unreadable_record(pos, key, schema, f)))
                        }
                        Err(f) => return Err(decode_error(pos, schema, &snap.path, offset, f)),
                    }
                }
            }
            Ok((batches, skipped))
        };
        let (first, second) = std::thread::scope(|s| {
            let second = s.spawn(|| decode(blocks / 2..blocks));
            let first = decode(0..blocks / 2);
            (first, second.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        let ((first, skipped_first), (second, skipped_second)) = (first?, second?);
        for (pos, u) in skipped_first.into_iter().chain(skipped_second) {
            unreadable.insert((pos, u.key.clone()), u);
        }
        let (mut for_a, mut for_b) = (Vec::new(), Vec::new());
        for (pos, [a, b]) in first.into_iter().enumerate().chain(second.into_iter().enumerate()) {
            for_a.extend(a.map(|a| (pos, a)));
            for_b.extend(b.map(|b| (pos, b)));
        }
        std::thread::scope(|s| {
            let twins = &mut twins;
            s.spawn(move || for_b.into_iter().for_each(|(pos, b)| twins[pos].insert_batch(b)));
            for_a.into_iter().for_each(|(pos, a)| stores[pos].insert_batch(a));
        });
    }
    for (frame, payload) in scanned.frames.iter().zip(&payloads) {
        let seg = &data[frame.segment];
        for op in record::ops(payload).flatten() {
            let (table, key, value) = match op {
                Op::Put { table, schema, key, value } => (table, key, Some((schema, value))),
                Op::Delete { table, key } => (table, key, None),
                Op::CreateTable { .. } | Op::Writer { .. } | Op::DefineSchema { .. } => continue,
            };
            let Some(&pos) = pos_of.get(&table) else { continue };
            let at = frame.offset as u64;
            let value = match value {
                Some((schema, v)) => Some((v, plan_for(pos, schema, seg.path, at)?, schema)),
                None => None,
            };
            if !unreadable.is_empty() {
                unreadable.remove(&(pos, key.to_vec()));
            }
            match stores[pos].apply_encoded(&mut *twins[pos], key, value.map(|(v, plan, _)| (v, plan))) {
                Ok(()) => {}
                Err(f) => {
                    let schema = value.map_or(0, |(_, _, s)| s);
                    if f.kind == FailureKind::UnknownVariant {
                        unreadable.insert((pos, key.to_vec()), unreadable_record(pos, key, schema, f));
                    } else {
                        return Err(decode_error(pos, schema, seg.path, at, f));
                    }
                }
            }
        }
    }
    let last_seq = scanned.last_seq;
    if let Some(a) = &attached {
        let committed = a.shared.counter.committed();
        if !a.first && last_seq != committed {
            return Err(Corruption::new(
                dir.join(shared::COUNTER_FILE),
                16,
                format!("the log ends at sequence number {last_seq}, but processes that have the database open committed up to {committed}; close them all and open it again"),
            )
            .into());
        }
    }
    let mut unreadable: Vec<Unreadable> = unreadable.into_values().collect();
    unreadable.sort_by(|a, b| (&a.table, &a.key).cmp(&(&b.table, &b.key)));
    if !unreadable.is_empty() {
        tracing::warn!(dir = %dir.display(), records = unreadable.len(), first = %unreadable[0].reason, "records written by a newer schema hold enum variants this schema does not know; they are kept on disk but not shown (Db::unreadable)");
    }
    let evolve::Versions { current: schema_version, define: new_schema, stored: schemas, plans } = versions;
    drop(raw_schemas);
    drop(payloads);
    drop(data);
    for (pos, store) in stores.iter().enumerate() {
        if let Some((index, key)) = store.index_collision() {
            return Err(Error::IndexCollision {
                path: dir.to_path_buf(),
                table: tables[pos].name.to_string(),
                index,
                key,
            });
        }
    }

    let (log, log_bytes) = start_log(&storage, dir, options.segment_size, segments, bytes, &scanned, obsolete)?;

    let (writer, published) = crate::store::publish::new(State::new(stores, last_seq), State::new(twins, last_seq));
    let reader = Reader::new(published);
    let (guard, shared) = match attached {
        Some(a) => {
            if a.first {
                a.shared.counter.reset(last_seq);
            }
            (Some(a.guard), Some(a.shared))
        }
        None => (None, None),
    };
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        storage: storage.clone(),
        reader,
        tables,
        ids_pos,
        unknown_tables,
        writer: Mutex::new(Writer { next_seq: last_seq + 1, pending: Vec::new() }),
        pipeline: Pipeline::new(
            dir.to_path_buf(),
            log,
            writer,
            last_seq,
            log_bytes,
            Around { feed: Arc::new(crate::feed::Hub::new(options.feed_buffer)), shared: shared.clone(), seal },
        ),
        durability: options.durability,
        snapshot: Mutex::new(snap.map(|s| (s.seq, s.path))),
        compact_after: options.compact_after,
        background: Arc::new(Background::default()),
        schema_version,
        schemas,
        plans,
        unreadable,
        shared,
        _lock: lock,
        freed: Default::default(),
    });
    let db = Db::start(inner);
    if !created.is_empty() || new_schema.is_some() {
        db.inner.write_locked(guard, None, |tx| {
            if let Some(description) = &new_schema {
                tx.define_schema(schema_version, description);
            }
            for &(id, kind, name) in &created {
                tx.create_table(id, kind, name);
            }
            Ok::<_, Error>(())
        })?;
    }
    Ok(db)
}

/// Cuts a torn tail, removes what is obsolete and opens the active segment for appending, after recovery scanned
/// `segments` (read as `bytes`) into `scanned`. Returns the log writer and the bytes of log since the snapshot.
/// Shared by the typed open and the untyped one (`crate::raw`).
pub(crate) fn start_log(
    storage: &Arc<dyn Storage>,
    dir: &Path,
    segment_size: u64,
    mut segments: Vec<(u64, PathBuf)>,
    bytes: Vec<Vec<u8>>,
    scanned: &scan::Scan,
    mut obsolete: Vec<PathBuf>,
) -> Result<(LogWriter, u64)> {
    let last_seq = scanned.last_seq;
    let mut keep = segments.len();
    let mut resume_end = scanned.end as u64;
    if let Some(cut) = &scanned.cut {
        tracing::warn!(file = %segments[cut.segment].1.display(), offset = cut.offset, reason = cut.reason, "cutting torn log tail");
        keep = cut.segment + 1;
        if cut.offset == 0 {
            keep = cut.segment;
        }
        resume_end = cut.offset as u64;
    }
    obsolete.extend(segments.drain(keep..).map(|(_, p)| p));
    for path in &obsolete {
        storage.remove(path).map_err(|e| Error::io("remove obsolete file", path, e))?;
    }
    if !obsolete.is_empty() {
        storage.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
    }
    let log_bytes: u64 = scanned.frames.iter().map(|f| f.header.frame_len() as u64).sum();
    // Bytes after the end of the data that are not zero (a torn write) are zeroed before anything is appended.
    let dirty_end = match (segments.len().checked_sub(1), scanned.cut.as_ref()) {
        (Some(last), cut) if cut.is_none_or(|c| c.offset != 0) => {
            let tail = bytes[last].get(resume_end as usize..).unwrap_or_default();
            resume_end + tail.iter().rposition(|&b| b != 0).map_or(0, |i| i as u64 + 1)
        }
        _ => resume_end,
    };
    // A segment of an older format is continued only to clean its tail, then rolled: a segment's frames are all of
    // its header's format version.
    let older_format = bytes.last().and_then(|b| segment::header_version(b)).is_some_and(|v| v < FORMAT_VERSION);
    drop(bytes);
    let resumable = scanned.cut.as_ref().is_none_or(|c| c.offset != 0) && !segments.is_empty();
    let mut log = match segments.last() {
        Some((first, path)) if resumable => LogWriter::resume(
            storage.clone(),
            dir,
            path.clone(),
            *first,
            resume_end,
            dirty_end,
            last_seq,
            segment_size,
        )?,
        _ => LogWriter::create(storage.clone(), dir, last_seq + 1, segment_size)?,
    };
    if older_format && resumable {
        if log.first_seq() > last_seq {
            // No frame in it: rewrite it in place with the current header.
            log = LogWriter::create(storage.clone(), dir, last_seq + 1, segment_size)?;
        } else {
            log.roll()?;
        }
    }

    Ok((log, log_bytes))
}

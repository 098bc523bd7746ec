//! Opening a database without its schema: the lock, recovery on bytes, and an engine with no in-memory tables.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::db::commit::Pipeline;
use crate::db::open::{list, start_log, LOCK_FILE};
use crate::db::{Background, Db, Inner, Writer};
use crate::error::{Error, Result};
use crate::inspect::Inspection;
use crate::log::scan::{self, SegmentData};
use crate::log::segment;
use crate::options::Options;
use crate::snapshot::Snapshot;
use crate::store::read::Reader;
use crate::store::state::State;

/// Opens the existing database in `dir` as an ordinary open does (exclusive lock, newest snapshot, log replay on
/// bytes, torn tail cut), and returns the engine, with no tables of its own, beside the view of what it holds.
pub(super) fn open(options: Options, dir: &Path) -> Result<(Db, Inspection)> {
    let storage = options.storage.clone();
    let lock_path = dir.join(LOCK_FILE);
    let listing = list(&*storage, dir)?;
    if listing.snapshots.is_empty() && listing.segments.is_empty() {
        return Err(Error::io(
            "find a Cairn database (no snapshot or log segment)",
            dir,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let lock = storage.lock(&lock_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock => Error::Locked { path: dir.to_path_buf() },
        _ => Error::io("lock database directory", &lock_path, e),
    })?;
    // Listed again under the lock: what was listed before may have changed.
    let listing = list(&*storage, dir)?;
    for tmp in &listing.temporary {
        storage.remove(tmp).map_err(|e| Error::io("remove leftover temporary file", tmp, e))?;
    }
    let snap = match listing.snapshots.last() {
        Some((_, path)) => Some(Snapshot::read(&*storage, path)?),
        None => None,
    };
    let snap_seq = snap.as_ref().map_or(0, |s| s.seq);
    let mut obsolete: Vec<_> = listing.snapshots.iter().rev().skip(1).map(|(_, p)| p.clone()).collect();
    let mut segments = listing.segments;
    obsolete.extend(segment::take_covered(&mut segments, snap_seq));
    let bytes = scan::read_segments(&*storage, segments.iter().map(|(_, p)| p.as_path()))?;
    let scanned = {
        let data: Vec<SegmentData<'_>> =
            segments.iter().zip(&bytes).map(|((_, path), bytes)| SegmentData { path, bytes }).collect();
        scan::scan(&data, snap_seq)?
    };
    let view = Inspection::from_scan(dir, snap.as_ref(), &segments, &bytes, &scanned)?;
    let last_seq = scanned.last_seq;
    let (log, log_bytes) = start_log(&storage, dir, options.segment_size, segments, bytes, &scanned, obsolete)?;

    let schemas: BTreeMap<_, _> = view.schemas.iter().map(|(v, s)| (*v, Arc::new(s.clone()))).collect();
    let (writer, shared) = crate::store::publish::new(
        State { tables: Vec::new(), seq: last_seq },
        State { tables: Vec::new(), seq: last_seq },
    );
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        storage: storage.clone(),
        reader: Reader::new(shared),
        tables: Vec::new(),
        ids_pos: 0,
        unknown_tables: Vec::new(),
        writer: Mutex::new(Writer { next_seq: last_seq + 1, pending: Vec::new() }),
        pipeline: Pipeline::new(
            dir.to_path_buf(),
            log,
            writer,
            last_seq,
            log_bytes,
            Arc::new(crate::feed::Hub::new(options.feed_buffer)),
            // The untyped path opens exclusively: `LOCK` refuses it while shared-mode processes are attached.
            None,
        ),
        durability: options.durability,
        snapshot: Mutex::new(snap.map(|s| (s.seq, s.path))),
        compact_after: options.compact_after,
        background: Arc::new(Background::default()),
        // Every put of this handle is encoded by the newest stored version (0 when none is stored: it then refuses
        // to write records).
        schema_version: schemas.keys().next_back().copied().unwrap_or(0),
        schemas,
        plans: Vec::new(),
        unreadable: Vec::new(),
        _lock: lock,
        shared: None,
    });
    Ok((Db::start(inner), view))
}

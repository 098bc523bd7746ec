//! Opening a database without its schema: the lock, recovery on bytes, and an engine with no in-memory tables.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::db::commit::{Around, Pipeline};
use crate::db::open::{list, lock_dir, read_base, start_log, Base};
use crate::db::shared;
use crate::db::{Background, Db, Inner, Writer};
use crate::error::{Error, Result};
use crate::inspect::Inspection;
use crate::log::scan::{self, SegmentData};
use crate::options::Options;
use crate::store::read::Reader;
use crate::store::state::State;

/// Lists `dir`, refusing a directory that holds no snapshot and no log segment: the tools never create a database.
pub(super) fn list_database(storage: &dyn crate::storage::Storage, dir: &Path) -> Result<crate::db::open::Listing> {
    let listing = list(storage, dir)?;
    if listing.snapshots.is_empty() && listing.segments.is_empty() {
        return Err(Error::io(
            "find a Cairn database (no snapshot or log segment)",
            dir,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    Ok(listing)
}

/// Opens the existing database in `dir` as an ordinary open does (exclusive lock, or in shared mode the writer
/// lock for the recovery; newest snapshot, log replay on bytes, torn tail cut), and returns the engine, with no tables
/// of its own, beside the view of what it holds.
///
/// In shared mode the view is of the moment of the open only: other processes' commits reach the engine (its
/// backup and compaction catch up with them) but not the view, so a shared handle is used for backups only.
pub(super) fn open(options: Options, dir: &Path) -> Result<(Db, Inspection)> {
    let storage = options.storage.clone();
    list_database(&*storage, dir)?;
    // As the typed open; with no tables, nothing to make on a reload.
    let (lock, attached) = lock_dir(&options, dir, &[])?;
    // The key file first, then everything else, listed again under the lock: it may have changed.
    let seal = crate::seal::load(
        &*storage,
        dir,
        crate::seal::Settings { create: false, ..crate::seal::Settings::of(&options) },
    )?;
    let Base { snap, obsolete, segments, bytes } = read_base(&*storage, dir, &seal)?;
    let snap_seq = snap.as_ref().map_or(0, |s| s.seq);
    let scanned = {
        let data: Vec<SegmentData<'_>> =
            segments.iter().zip(&bytes).map(|((_, path), bytes)| SegmentData { path, bytes }).collect();
        scan::scan(&data, snap_seq)?
    };
    let view = Inspection::from_scan(dir, &seal, snap.as_ref(), &segments, &bytes, &scanned)?;
    let last_seq = scanned.last_seq;
    if let Some(a) = attached.as_ref().filter(|a| !a.first) {
        let committed = a.shared.counter.committed();
        if last_seq != committed {
            return Err(crate::error::Corruption::new(
                dir.join(shared::COUNTER_FILE),
                16,
                format!("the log ends at sequence number {last_seq}, but processes that have the database open committed up to {committed}; close them all and open it again"),
            )
            .into());
        }
    }
    let (log, log_bytes) = start_log(&storage, dir, options.segment_size, segments, bytes, &scanned, obsolete)?;

    let schemas: BTreeMap<_, _> = view.schemas.iter().map(|(v, s)| (*v, Arc::new(s.clone()))).collect();
    let (writer, published) =
        crate::store::publish::new(State::new(Vec::new(), last_seq), State::new(Vec::new(), last_seq));
    let shared = attached.map(|a| {
        if a.first {
            a.shared.counter.reset(last_seq);
        }
        // The writer lock (`a.guard`) is released here: recovery is done, and this handle creates no table.
        a.shared
    });
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        storage: storage.clone(),
        reader: Reader::new(published),
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
            Around { feed: Arc::new(crate::feed::Hub::new(options.feed_buffer)), shared: shared.clone(), seal },
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
        freed: Default::default(),
        shared,
    });
    Ok((Db::start(inner), view))
}

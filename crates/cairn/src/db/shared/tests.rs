//! The dead writer, exactly: a process that appended frames and died before the counter said they were committed.

use std::path::Path;

use crate::db::open::open;
use crate::db::Db;
use crate::log::frame::{FrameHeader, KIND_TXN};
use crate::log::record;
use crate::options::{Mode, Options};
use crate::schema::TableDef;
use crate::storage::{FsStorage, Storage};
use crate::table::{FromDb, Table};

use super::Dirty;

fn open_shared(dir: &Path) -> (Db, Table<u32, String>) {
    let options = Options { mode: Mode::Shared, ..Options::default() };
    let db = open(options, dir, vec![TableDef::hash::<u32, String>("t", Vec::new())]).unwrap();
    let table = Table::from_db(&db, 0);
    (db, table)
}

/// The frame of transaction `seq`: a put of `key` and `value` into table `table`, written by schema `schema`.
fn frame(seq: u64, schema: u32, table: u32, key: u32, value: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    record::put_writer(&mut payload, schema);
    record::put_raw(&mut payload, table, &postcard::to_stdvec(&key).unwrap(), &postcard::to_stdvec(value).unwrap());
    let header = FrameHeader::for_payload(KIND_TXN, seq, 0, &payload);
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(&payload);
    bytes.resize(header.frame_len(), 0);
    bytes
}

#[test]
fn the_next_writer_zeroes_what_a_dead_writer_appended_before_it_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (a, ta) = open_shared(dir.path());
    let (b, tb) = open_shared(dir.path());
    ta.insert(1, "ten".into()).unwrap();

    // `a` dies holding the writer lock after appending two frames, before bumping the counter: the first the very
    // length of the frame `b` will write, so that without the repair the second would stay whole behind it.
    let shared = a.inner.shared.clone().unwrap();
    let committed = shared.counter.committed();
    let (table, schema) = (a.inner.tables[0].id, a.inner.schema_version);
    let (path, start, first_seq) = {
        let p = a.inner.pipeline.publisher();
        (p.log.path().to_path_buf(), p.log.offset(), p.log.first_seq())
    };
    let mut dead = frame(committed + 1, schema, table, 2, "bb");
    dead.extend(frame(committed + 2, schema, table, 1, "stale"));
    let file = FsStorage.open_write(&path).unwrap();
    file.write_all_at(&dead, start).unwrap();
    shared.counter.begin_append(Dirty { segment: first_seq, start, end: start + dead.len() as u64 });

    tb.insert(2, "cc".into()).unwrap();
    assert_eq!(shared.counter.dirty(), None);
    assert_eq!(ta.get(&1).as_deref(), Some("ten"));
    assert_eq!(ta.get(&2).as_deref(), Some("cc"));
    drop((ta, tb, a, b));
    let (_db, t) = open_shared(dir.path());
    assert_eq!(t.get(&1).as_deref(), Some("ten"), "the dead writer's second frame survived");
    assert_eq!(t.get(&2).as_deref(), Some("cc"));
    assert_eq!(t.len(), 2);
}

#[test]
fn an_append_the_counter_already_counts_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (a, ta) = open_shared(dir.path());
    let (b, tb) = open_shared(dir.path());
    let (start, first_seq) = {
        let p = a.inner.pipeline.publisher();
        (p.log.offset(), p.log.first_seq())
    };
    ta.insert(1, "one".into()).unwrap();
    let end = a.inner.pipeline.publisher().log.offset();
    // `a` died after the bump, before it cleared the marker: its frame is committed.
    a.inner.shared.as_ref().unwrap().counter.begin_append(Dirty { segment: first_seq, start, end });
    tb.insert(2, "two".into()).unwrap();
    drop((ta, tb, a, b));
    let (_db, t) = open_shared(dir.path());
    assert_eq!((t.get(&1).as_deref(), t.get(&2).as_deref()), (Some("one"), Some("two")));
}

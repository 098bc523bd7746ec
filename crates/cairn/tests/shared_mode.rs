//! Shared mode within one process: two handles on one directory behave as two processes do (each has its own lock
//! files open, and `flock` locks are per open file), so these tests check the protocol fast. The tests with real
//! child processes, kills included, are in `crates/cairn-testkit/tests/shared_processes.rs`.
#![cfg(unix)]

use std::collections::BTreeSet;

use cairn::{Error, Mode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    title: String,
}

cairn::schema! {
    Bank {
        counters: <u32, u64>,
        notes: auto<Note> {
            by_title: unique String = |n: &Note| n.title.clone(),
        },
    }
}

fn shared(dir: &std::path::Path) -> Bank {
    Bank::builder().mode(Mode::Shared).open(dir).unwrap()
}

fn increment(db: &Bank, key: u32) {
    db.transaction(|t| {
        let n = t.counters.get(&key).unwrap_or(0);
        t.counters.insert(key, n + 1)
    })
    .unwrap();
}

#[test]
fn shared_and_exclusive_opens_refuse_each_other_and_shared_ones_coexist() {
    let dir = tempfile::tempdir().unwrap();
    let exclusive = Bank::open(dir.path()).unwrap();
    let err = Bank::builder().mode(Mode::Shared).open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("exclusive mode"), "{err}");
    drop(exclusive);

    let a = shared(dir.path());
    let b = shared(dir.path());
    assert_eq!(a.db().mode(), Mode::Shared);
    let err = Bank::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::LockedShared { .. }), "{err}");
    assert!(err.to_string().contains("Mode::Shared"), "{err}");
    drop((a, b));
    // Once every shared handle is closed, an exclusive open works again and sees everything.
    drop(Bank::open(dir.path()).unwrap());
}

#[test]
fn a_read_sees_what_another_handle_committed_without_being_told() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (shared(dir.path()), shared(dir.path()));
    a.counters.insert(1, 10).unwrap();
    assert_eq!(b.counters.get(&1), Some(10));
    b.counters.insert(1, 11).unwrap();
    b.counters.insert(2, 20).unwrap();
    assert_eq!(a.counters.get(&1), Some(11));
    assert_eq!(a.read(|r| (r.counters.get(&1).copied(), r.counters.get(&2).copied())), (Some(11), Some(20)));
    b.counters.remove(&2).unwrap();
    assert_eq!(a.counters.get(&2), None);
    assert_eq!(a.db().last_seq(), b.db().last_seq());
    assert_eq!(a.db().refresh().unwrap(), b.db().last_seq());
}

#[test]
fn read_modify_write_transactions_of_two_handles_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let handles = [shared(dir.path()), shared(dir.path())];
    std::thread::scope(|s| {
        for (i, db) in handles.iter().enumerate() {
            s.spawn(move || {
                for n in 0..200 {
                    increment(db, n % 3);
                    if i == 0 && n % 50 == 49 {
                        db.db().compact().unwrap();
                    }
                }
            });
        }
    });
    for db in &handles {
        let total: u64 = (0..3).map(|k| db.counters.get(&k).unwrap_or(0)).sum();
        assert_eq!(total, 400);
    }
    drop(handles);
    let db = Bank::open(dir.path()).unwrap();
    assert_eq!((0..3).map(|k| db.counters.get(&k).unwrap_or(0)).sum::<u64>(), 400);
}

#[test]
fn a_handle_behind_a_compaction_reloads_from_the_snapshot_and_writes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = Bank::builder().mode(Mode::Shared).segment_size(4096).open(dir.path()).unwrap();
    let b = shared(dir.path());
    assert_eq!(b.counters.get(&0), None);
    for k in 0..300 {
        a.counters.insert(k, u64::from(k)).unwrap();
    }
    a.counters.remove(&7).unwrap();
    a.db().compact().unwrap();
    a.counters.insert(1000, 1).unwrap();
    // b never read in between: the segments it had not read were folded away.
    assert_eq!(b.counters.len(), 300);
    assert_eq!(b.counters.get(&7), None);
    assert_eq!(b.counters.get(&299), Some(299));
    b.counters.insert(1001, 2).unwrap();
    b.db().compact().unwrap();
    assert_eq!(a.counters.get(&1001), Some(2));
    assert_eq!(a.counters.len(), 301);
    drop((a, b));
    let db = Bank::open(dir.path()).unwrap();
    assert_eq!(db.counters.len(), 301);
    assert_eq!(db.counters.get(&1000), Some(1));
}

#[test]
fn auto_ids_and_unique_indexes_hold_across_handles() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (shared(dir.path()), shared(dir.path()));
    let mut ids = BTreeSet::new();
    for i in 0..20 {
        let db = if i % 2 == 0 { &a } else { &b };
        let id = db.notes.insert_new(Note { title: format!("n{i}") }).unwrap();
        assert!(ids.insert(id.get()), "id {id} handed out twice");
    }
    let range = a.notes.reserve_ids(5).unwrap();
    let next = b.notes.insert_new(Note { title: "after".into() }).unwrap();
    assert!(!range.contains(next), "{next} is in {range:?}, reserved by the other handle");
    // b's index knows a's records: the unique title is taken.
    let err = b.notes.insert_new(Note { title: "n0".into() }).unwrap_err();
    assert!(matches!(err, Error::UniqueViolation { .. }), "{err}");
    assert_eq!(b.notes.by_title.get("n4").map(|(id, _)| id.get()), Some(5));
}

#[test]
fn the_change_feed_delivers_another_handles_commits_once_this_one_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (shared(dir.path()), shared(dir.path()));
    let mut feed = b.counters.subscribe();
    a.counters.insert(5, 50).unwrap();
    a.counters.insert(6, 60).unwrap();
    b.db().refresh().unwrap();
    let wait = std::time::Duration::from_secs(5);
    let first = feed.next_timeout(wait).unwrap().expect("an event");
    let second = feed.next_timeout(wait).unwrap().expect("an event");
    assert_eq!(first.seq() + 1, second.seq());
    assert_eq!(second.seq(), a.db().last_seq());
}

#[test]
fn a_backup_from_one_handle_holds_what_the_other_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (shared(dir.path()), shared(dir.path()));
    for k in 0..10 {
        a.counters.insert(k, 1).unwrap();
    }
    a.db().compact().unwrap();
    a.counters.insert(10, 1).unwrap();
    let out = tempfile::tempdir().unwrap();
    let backup = b.db().backup_to(out.path().join("copy")).unwrap();
    assert_eq!(backup.seq, a.db().last_seq());
    let copy = Bank::open(out.path().join("copy")).unwrap();
    assert_eq!(copy.counters.len(), 11);
}

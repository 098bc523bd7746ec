//! Auto-id tables: ids allocated by the database, never handed out twice, even across aborts, crashes and reopens.

use std::collections::BTreeSet;

use cairn::{Error, Id};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    title: String,
}

fn note(title: &str) -> Note {
    Note { title: title.into() }
}

cairn::schema! {
    Notes {
        notes: auto<Note> {
            by_title: String = |n: &Note| n.title.clone(),
        },
        tags: auto<String>,
        other: <u32, u32>,
    }
}

#[test]
fn ids_start_at_one_grow_and_are_typed_per_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = Notes::open(dir.path()).unwrap();
    let a = db.notes.insert_new(note("a")).unwrap();
    let b = db.notes.insert_new(note("b")).unwrap();
    assert_eq!((a.get(), b.get()), (1, 2));
    assert_eq!(db.notes.get(&b), Some(note("b")));
    assert_eq!(db.notes.by_title.get("a").map(|(id, _)| id).collect::<Vec<_>>(), [a]);
    // Each table counts on its own.
    let t: Id<String> = db.tags.insert_new("x".into()).unwrap();
    assert_eq!(t.get(), 1);
    // Several in one transaction.
    let ids = db
        .transaction(|tx| (0..3).map(|i| tx.notes.insert_new(note(&format!("t{i}")))).collect::<Result<Vec<_>, _>>())
        .unwrap();
    assert_eq!(ids.iter().map(|i| i.get()).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(format!("{:?} {}", ids[0], ids[0]), "Id(3) 3");
}

#[test]
fn an_id_is_never_handed_out_twice_after_removal_abort_or_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = BTreeSet::new();
    {
        let db = Notes::open(dir.path()).unwrap();
        for i in 0..10 {
            assert!(seen.insert(db.notes.insert_new(note(&i.to_string())).unwrap()));
        }
        // Removing the newest records does not free their ids.
        let last = *seen.last().unwrap();
        db.notes.remove(&last).unwrap();
        assert!(seen.insert(db.notes.insert_new(note("after removal")).unwrap()));
        // An aborted transaction takes nothing: its ids are handed out again, as they were never seen.
        let aborted = db.transaction(|tx| {
            let id = tx.notes.insert_new(note("aborted"))?;
            Err::<(), _>(Abort::After(id))
        });
        let Err(Abort::After(aborted_id)) = aborted else { panic!("the transaction aborts with its id") };
        let next = db.notes.insert_new(note("next")).unwrap();
        assert_eq!(next, aborted_id, "the aborted transaction's id was not taken");
        assert!(seen.insert(next));
        db.compact().unwrap();
        db.notes.remove(&next).unwrap();
    }
    // After a reopen (snapshot + log), and the newest record removed before it, ids go on growing.
    let db = Notes::open(dir.path()).unwrap();
    let id = db.notes.insert_new(note("after reopen")).unwrap();
    assert!(id > *seen.last().unwrap(), "{id:?} after {:?}", seen.last());
}

/// Why the transaction above returned `Err`.
#[derive(Debug)]
enum Abort {
    Db(#[allow(dead_code)] Error),
    After(Id<Note>),
}

impl From<Error> for Abort {
    fn from(e: Error) -> Self {
        Abort::Db(e)
    }
}

#[test]
fn reserved_ranges_are_never_handed_out_and_can_be_filled_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let db = Notes::open(dir.path()).unwrap();
    db.notes.insert_new(note("first")).unwrap();
    let range = db.notes.reserve_ids(100).unwrap();
    assert_eq!((range.start().get(), range.end().get()), (2, 102));
    let after = db.notes.insert_new(note("after")).unwrap();
    assert_eq!(after.get(), 102);
    // A client fills part of its range later, by hand.
    let mut range = range;
    let granted = range.next().unwrap();
    db.notes.insert(granted, note("offline")).unwrap();
    assert!(range.contains(Id::from_raw(50)) && !range.contains(after));
    drop(db);
    let db = Notes::open(dir.path()).unwrap();
    assert_eq!(db.notes.insert_new(note("x")).unwrap().get(), 103);
}

#[test]
fn ids_inserted_by_hand_above_the_counter_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let db = Notes::open(dir.path()).unwrap();
    db.notes.insert(Id::from_raw(40), note("by hand")).unwrap();
    assert_eq!(db.notes.insert_new(note("auto")).unwrap().get(), 41);
    db.transaction(|tx| {
        tx.notes.insert(Id::from_raw(90), note("by hand, same transaction"))?;
        assert_eq!(tx.notes.insert_new(note("auto"))?.get(), 91);
        Ok::<_, Error>(())
    })
    .unwrap();
    // The counter is Cairn's own table: the schema does not see it, it is not an unknown table, and the change feed
    // does not show it (though the transactions that took ids wrote it).
    assert!(db.db().unknown_tables().is_empty());
    let mut feed = db.subscribe_from(0);
    let mut seen = Vec::new();
    while let Some(commit) = feed.try_next().unwrap() {
        seen.extend(commit.tables());
    }
    assert!(seen.contains(&"notes") && !seen.contains(&"cairn.ids"), "{seen:?}");
}

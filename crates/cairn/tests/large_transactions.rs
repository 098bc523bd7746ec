//! Transactions whose log record passes a few MiB write it to the log while they run (`db::spill`): they commit,
//! reopen and replay like any other, an abandoned one leaves no trace, and other committers, compactions and
//! readers around them see nothing half-written.

use std::sync::mpsc;
use std::time::Duration;

cairn::schema! {
    /// Records big enough that a few thousand make a payload of several MiB.
    Big {
        items: ordered<u32, Vec<u8>>,
        small: <u32, u32>,
    }
}

/// Enough 1 KiB records for about 12 MiB of payload: past the spill threshold and several chunks.
const N: u32 = 12_000;

/// An application's own error, to give up with.
#[derive(Debug)]
enum AppError {
    Db(#[allow(dead_code)] cairn::Error),
    GaveUp,
}

impl From<cairn::Error> for AppError {
    fn from(e: cairn::Error) -> Self {
        AppError::Db(e)
    }
}

fn value(i: u32) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; 1024];
    v[..4].copy_from_slice(&i.to_le_bytes());
    v
}

fn load(tx: &BigTxn<'_>, range: std::ops::Range<u32>) -> cairn::Result<()> {
    for i in range {
        tx.items.insert(i, value(i))?;
    }
    Ok(())
}

fn check_all(db: &Big, n: u32) {
    assert_eq!(db.items.len(), n as usize);
    db.read(|r| {
        for (i, (k, v)) in r.items.iter().enumerate() {
            assert_eq!(*k, i as u32);
            assert_eq!(*v, value(i as u32), "record {i}");
        }
    });
}

#[test]
fn a_large_transaction_commits_reopens_and_replays_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = Big::open(dir.path()).unwrap();
    db.small.insert(1, 1).unwrap();
    db.transaction(|tx| {
        load(tx, 0..N)?;
        // Reads its own writes, including those already written to the log.
        assert_eq!(tx.items.get(&0), Some(value(0)));
        tx.items.remove(&5)?;
        tx.items.insert(5, value(5))?;
        tx.small.insert(2, 2)
    })
    .unwrap();
    db.small.insert(3, 3).unwrap();
    check_all(&db, N);
    let seq = db.db().last_seq();
    drop(db);

    let db = Big::open(dir.path()).unwrap();
    check_all(&db, N);
    assert_eq!(db.small.len(), 3);
    assert_eq!(db.db().last_seq(), seq);
    // The change feed reads the large frame back from the log like any other.
    let mut feed = db.items.subscribe_from(0);
    let event = feed.try_next().unwrap().expect("the large transaction is in the log");
    assert_eq!(event.seq(), seq - 1);
    assert_eq!(event.changes().len(), N as usize);
    db.compact().unwrap();
    drop(db);
    check_all(&Big::open(dir.path()).unwrap(), N);
}

#[test]
fn an_abandoned_large_transaction_leaves_nothing_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = Big::open(dir.path()).unwrap();
    db.transaction(|tx| load(tx, 0..10)).unwrap();
    let before = db.db().last_seq();
    let err = db
        .transaction(|tx| {
            load(tx, 10..N)?;
            Err::<(), _>(AppError::GaveUp)
        })
        .unwrap_err();
    assert!(matches!(err, AppError::GaveUp), "{err:?}");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = db.transaction(|tx| {
            load(tx, 10..N)?;
            panic!("the application gives up");
            #[allow(unreachable_code)]
            Ok::<_, cairn::Error>(())
        });
    }));
    assert!(panicked.is_err());
    check_all(&db, 10);
    // The log goes on where the abandoned frames began.
    db.transaction(|tx| load(tx, 10..20)).unwrap();
    db.small.insert(1, 1).unwrap();
    drop(db);
    // Nothing of the abandoned frames follows the log's end (it would read as a torn tail).
    let inspected = cairn::inspect::Inspection::open(dir.path()).unwrap();
    assert!(inspected.torn_tail.is_none(), "{:?}", inspected.torn_tail);
    let db = Big::open(dir.path()).unwrap();
    check_all(&db, 20);
    assert_eq!(db.small.get(&1), Some(1));
    assert_eq!(db.db().last_seq(), before + 2, "the abandoned transactions took no sequence number");
}

#[test]
fn committers_and_a_compaction_wait_for_a_large_transaction_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Big::builder().compact_after(None).open(dir.path()).unwrap();
    db.small.insert(0, 0).unwrap();
    let (started, go) = mpsc::channel();
    let shared = &db;
    std::thread::scope(|s| {
        let committer = s.spawn(move || {
            go.recv().unwrap();
            for i in 1..=50 {
                shared.small.insert(i, i).unwrap();
            }
        });
        let compactor = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            db.compact().unwrap();
        });
        db.transaction(|tx| {
            load(tx, 0..N / 2)?;
            started.send(()).unwrap();
            // The others are now waiting: for the writer lock, and the compaction for its roll.
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(db.small.len(), 1, "nothing commits while a transaction runs");
            load(tx, N / 2..N)
        })
        .unwrap();
        committer.join().unwrap();
        compactor.join().unwrap();
    });
    check_all(&db, N);
    assert_eq!(db.small.len(), 51);
    db.compact().unwrap();
    db.small.insert(99, 99).unwrap();
    drop(db);
    let db = Big::open(dir.path()).unwrap();
    check_all(&db, N);
    assert_eq!(db.small.len(), 52);
}

#[test]
fn an_inspection_reads_large_frames_whole_and_finds_no_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = Big::builder().compact_after(None).open(dir.path()).unwrap();
    db.transaction(|tx| load(tx, 0..N)).unwrap();
    db.transaction(|tx| load(tx, N..N + 1)).unwrap();
    let last = db.db().last_seq();
    drop(db);
    let inspected = cairn::inspect::Inspection::open(dir.path()).unwrap();
    assert!(inspected.torn_tail.is_none(), "{:?}", inspected.torn_tail);
    assert_eq!(inspected.last_seq, last);
    assert_eq!(inspected.table("items").unwrap().records.len(), N as usize + 1);
}

//! Point 2: transactions over several tables read their own writes, discard everything on `Err` or panic, commit
//! atomically on `Ok`, and are serializable.

use std::sync::Arc;

cairn::schema! {
    /// Two tables that transactions keep consistent with each other.
    Bank {
        balances: <u32, i64>,
        log: ordered<u64, (u32, u32, i64)>,
    }
}

#[derive(Debug)]
enum AppError {
    Db(cairn::Error),
    Insufficient,
}

impl From<cairn::Error> for AppError {
    fn from(e: cairn::Error) -> Self {
        AppError::Db(e)
    }
}

fn open(dir: &std::path::Path) -> Bank {
    let db = Bank::open(dir).unwrap();
    if db.balances.is_empty() {
        db.transaction(|tx| {
            for id in 0..4 {
                tx.balances.insert(id, 100)?;
            }
            Ok::<_, cairn::Error>(())
        })
        .unwrap();
    }
    db
}

#[test]
fn reads_own_writes_across_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.transaction(|tx| {
        tx.balances.insert(9, 5)?;
        assert_eq!(tx.balances.get(&9), Some(5));
        assert_eq!(tx.balances.update(&9, |b| *b *= 2)?, Some(()));
        assert_eq!(tx.balances.get(&9), Some(10));
        assert_eq!(tx.balances.remove(&0)?, Some(100));
        assert!(!tx.balances.contains_key(&0));
        assert_eq!(tx.balances.len(), 4);
        tx.log.insert(2, (1, 2, 3))?;
        tx.log.insert(1, (1, 2, 3))?;
        assert_eq!(tx.log.iter().map(|(k, _)| k).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(tx.log.range(2..).count(), 1);
        // Nothing is visible outside before the commit.
        assert_eq!(db.balances.get(&9), None);
        assert_eq!(db.balances.get(&0), Some(100));
        Ok::<_, cairn::Error>(())
    })
    .unwrap();
    assert_eq!(db.balances.get(&9), Some(10));
    assert_eq!(db.balances.get(&0), None);
    assert_eq!(db.log.len(), 2);
}

#[test]
fn err_discards_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let seq = db.db().last_seq();
    let r = db.transaction(|tx| {
        tx.balances.insert(1, 0)?;
        tx.log.insert(1, (1, 2, 100))?;
        Err::<(), _>(AppError::Insufficient)
    });
    assert!(matches!(r, Err(AppError::Insufficient)));
    assert_eq!(db.balances.get(&1), Some(100));
    assert!(db.log.is_empty());
    assert_eq!(db.db().last_seq(), seq, "nothing was logged");
    drop(db);
    let db = open(dir.path());
    assert_eq!(db.balances.get(&1), Some(100));
    assert!(db.log.is_empty());
}

#[test]
fn panic_discards_everything_and_the_database_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        db.transaction(|tx| {
            tx.balances.insert(1, 0)?;
            panic!("the application failed mid-transaction");
            #[allow(unreachable_code)]
            Ok::<_, cairn::Error>(())
        })
    }));
    assert!(r.is_err());
    assert_eq!(db.balances.get(&1), Some(100));
    db.balances.insert(1, 1).unwrap();
    assert_eq!(db.balances.get(&1), Some(1));
}

#[test]
fn concurrent_read_modify_write_loses_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    db.transaction(|tx| {
                        let from = (i % 4) as u32;
                        let to = ((i + 1 + t) % 4) as u32;
                        let a = tx.balances.get(&from).unwrap();
                        if a < 1 {
                            return Err(AppError::Insufficient);
                        }
                        tx.balances.insert(from, a - 1)?;
                        let b = tx.balances.get(&to).unwrap();
                        tx.balances.insert(to, b + 1)?;
                        let next = tx.log.iter().last().map_or(0, |(k, _)| k + 1);
                        tx.log.insert(next, (from, to, 1))?;
                        Ok(())
                    })
                    .or_else(|e| match e {
                        AppError::Insufficient => Ok(()),
                        AppError::Db(e) => Err(e),
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let total: i64 = db.balances.iter().map(|(_, b)| b).sum();
    assert_eq!(total, 400);
    // Every transaction appended at the next free key: serializable execution leaves no gap and no overwrite.
    let keys: Vec<u64> = db.log.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, (0..keys.len() as u64).collect::<Vec<_>>());
    assert_eq!(keys.len(), 200);
}

#[test]
fn writes_that_would_wait_for_themselves_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let inside_read = db.read(|_| db.balances.insert(1, 1));
    assert!(matches!(inside_read, Err(cairn::Error::WriteInsideRead)), "{inside_read:?}");
    let compact_inside_read = db.read(|_| db.compact());
    assert!(matches!(compact_inside_read, Err(cairn::Error::WriteInsideRead)), "{compact_inside_read:?}");
    let inside_txn = db.transaction(|_| db.balances.insert(1, 1));
    assert!(matches!(inside_txn, Err(cairn::Error::WriteInsideTransaction)), "{inside_txn:?}");
    assert_eq!(db.balances.get(&1), Some(100));
}

#[test]
fn read_only_transaction_logs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let seq = db.db().last_seq();
    let sum: i64 = db.transaction(|tx| Ok::<_, cairn::Error>(tx.balances.iter().map(|(_, b)| b).sum())).unwrap();
    assert_eq!(sum, 400);
    assert_eq!(db.db().last_seq(), seq);
}

/// A read of a database this thread has never read, from inside a read of another: it sees the other's data, and a
/// write from there still fails clearly instead of waiting for itself.
#[test]
fn a_first_read_of_another_database_inside_a_read() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(a_dir.path());
    let b = open(b_dir.path());
    b.balances.insert(7, 70).unwrap();
    let seen = std::thread::scope(|s| {
        s.spawn(|| {
            a.read(|_| {
                let inner = b.balances.get(&7);
                let write = b.balances.insert(8, 80);
                (inner, matches!(write, Err(cairn::Error::WriteInsideRead)))
            })
        })
        .join()
        .unwrap()
    });
    assert_eq!(seen, (Some(70), true));
    assert_eq!(b.balances.get(&8), None);
}

/// A thread that reads several databases in turn, nests reads of one inside another, panics inside a read and reads
/// a database closed and reopened in the same directory always sees each database's own records, and can write
/// again once its reads are over (the thread's last-used reader is switched, never stale; `store/read.rs`).
#[test]
fn one_thread_switching_between_databases_reads_each_ones_records() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(a_dir.path());
    let b = open(b_dir.path());
    a.balances.insert(11, 10).unwrap();
    b.balances.insert(11, 20).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..100 {
                assert_eq!(a.balances.get(&11), Some(10), "pass {i}");
                assert_eq!(b.balances.get(&11), Some(20), "pass {i}");
            }
            let nested = a.read(|_| {
                let from_b = b.balances.get(&11);
                let a_again = a.balances.get(&11);
                let write = a.balances.insert(12, 1);
                (from_b, a_again, matches!(write, Err(cairn::Error::WriteInsideRead)))
            });
            assert_eq!(nested, (Some(20), Some(10), true));
            let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                b.read(|_| -> () { panic!("inside a read") })
            }));
            assert!(panicked.is_err());
            b.balances.insert(12, 2).unwrap();
            assert_eq!(b.balances.get(&12), Some(2));
        })
        .join()
        .unwrap()
    });
    drop(a);
    let reopened = open(a_dir.path());
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(reopened.balances.get(&11), Some(10));
            assert_eq!(reopened.balances.get(&12), None, "the write inside a read never happened");
            assert_eq!(b.balances.get(&11), Some(20));
            reopened.balances.insert(13, 30).unwrap();
            assert_eq!(reopened.balances.get(&13), Some(30));
        })
        .join()
        .unwrap()
    });
}

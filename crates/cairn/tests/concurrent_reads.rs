//! Point 3 of issue 2: many readers, never blocked, always see a state consistent across tables (never half a
//! transaction) while writers commit and compaction runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

cairn::schema! {
    /// Money moves between `checking` and `savings` of the same customer; the pair's sum never changes.
    Accounts {
        checking: <u32, i64>,
        savings: ordered<u32, i64>,
    }
}

const CUSTOMERS: u32 = 64;
const EACH: i64 = 1_000;
const TRANSFERS_PER_WRITER: u32 = 300;
const READERS: u64 = 3;

#[test]
fn readers_never_see_half_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Accounts::builder()
            .durability(cairn::Durability::None)
            .segment_size(64 << 10)
            .compact_after(Some(256 << 10))
            .open(dir.path())
            .unwrap(),
    );
    db.transaction(|tx| {
        for c in 0..CUSTOMERS {
            tx.checking.insert(c, EACH)?;
            tx.savings.insert(c, 0)?;
        }
        Ok::<_, cairn::Error>(())
    })
    .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    // Readers that have finished their first read: writers start once all three have, so the readers are running
    // while the writers work even on a machine that schedules threads late.
    let started = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    let mut handles = Vec::new();
    for w in 0..2u32 {
        let (db, started) = (db.clone(), started.clone());
        writers.push(std::thread::spawn(move || {
            while started.load(Ordering::Acquire) < READERS {
                std::thread::yield_now();
            }
            let mut i = w;
            for _ in 0..TRANSFERS_PER_WRITER {
                let c = (i * 7) % CUSTOMERS;
                let amount = i64::from(i % 13) - 6;
                db.transaction(|tx| {
                    tx.checking.update(&c, |v| *v -= amount)?;
                    tx.savings.update(&c, |v| *v += amount)?;
                    Ok::<_, cairn::Error>(())
                })
                .unwrap();
                i += 2;
            }
        }));
    }
    {
        let (db, stop) = (db.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                db.compact().unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }
    for r in 0..READERS as u32 {
        let (db, stop, reads, started) = (db.clone(), stop.clone(), reads.clone(), started.clone());
        handles.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Whole-database view: every pair sums to EACH, and so does the total.
                let total = db.read(|v| {
                    let mut total = 0;
                    for (c, s) in v.savings.iter() {
                        let k = *v.checking.get(c).expect("every customer has both accounts");
                        assert_eq!(k + s, EACH, "customer {c} seen half-way through a transfer");
                        total += k + s;
                    }
                    total
                });
                assert_eq!(total, EACH * i64::from(CUSTOMERS));
                // Point reads inside one read closure see one state too.
                let c = (n as u32 * 31 + r) % CUSTOMERS;
                let pair = db.read(|v| v.checking.get(&c).copied().unwrap() + v.savings.get(&c).copied().unwrap());
                assert_eq!(pair, EACH);
                // Snapshot iterators are consistent on their own table.
                assert_eq!(db.savings.iter().len(), CUSTOMERS as usize);
                if n == 0 {
                    started.fetch_add(1, Ordering::Release);
                }
                n += 1;
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    while started.load(Ordering::Acquire) < READERS {
        std::thread::yield_now();
    }
    let before = reads.load(Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let during = reads.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    assert!(during > 0, "readers made no progress while the writers worked");
    assert_eq!(db.db().last_seq(), 2 + 2 * u64::from(TRANSFERS_PER_WRITER), "every transfer committed");
    drop(db);
    let db = Accounts::open(dir.path()).unwrap();
    let total: i64 = db.checking.iter().map(|(_, v)| v).sum::<i64>() + db.savings.iter().map(|(_, v)| v).sum::<i64>();
    assert_eq!(total, EACH * i64::from(CUSTOMERS));
}

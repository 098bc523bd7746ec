//! The change feed (issue 5, part 3): subscriptions per table and for the whole database deliver committed changes in
//! commit order, with transaction boundaries and sequence numbers; they resume from a sequence number while the log
//! holds it and say plainly when it does not; a slow subscriber never blocks writers and is told it lagged; nothing is
//! delivered before it is durable.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use cairn::{Commit, Durability, FeedError, Subscription, TableEvent};

cairn::schema! {
    /// Three tables, two kinds.
    Shop {
        accounts: <String, i64>,
        audit: ordered<u64, String>,
        notes: <u32, String>,
    }
}

/// A transaction's own error: it aborts the transaction.
#[derive(Debug)]
enum Abort {
    Asked,
    Db(#[allow(dead_code)] cairn::Error),
}

impl From<cairn::Error> for Abort {
    fn from(e: cairn::Error) -> Self {
        Abort::Db(e)
    }
}

const WAIT: Duration = Duration::from_secs(30);

fn open(dir: &Path) -> Shop {
    Shop::builder().compact_after(None).open(dir).unwrap()
}

/// Small segments, no fsyncs, no automatic compaction: many segment rolls, quickly.
fn open_small(dir: &Path, feed_buffer: usize) -> Shop {
    Shop::builder()
        .durability(Durability::None)
        .segment_size(4096)
        .compact_after(None)
        .feed_buffer(feed_buffer)
        .open(dir)
        .unwrap()
}

fn account_changes(e: &TableEvent<String, i64>) -> Vec<(String, Option<i64>)> {
    e.changes().iter().map(|c| (c.key().clone(), c.value().copied())).collect()
}

/// Everything a commit says, typed through the handles.
type Summary =
    (u64, Vec<&'static str>, Vec<(String, Option<i64>)>, Vec<(u64, Option<String>)>, Vec<(u32, Option<String>)>);

fn summary(db: &Shop, c: &Commit) -> Summary {
    let acc = c.changes(&db.accounts).iter().map(|c| (c.key().clone(), c.value().copied())).collect();
    let audit = c.changes(&db.audit).iter().map(|c| (*c.key(), c.value().cloned())).collect();
    let notes = c.changes(&db.notes).iter().map(|c| (*c.key(), c.value().cloned())).collect();
    (c.seq(), c.tables(), acc, audit, notes)
}

/// Compares two lists of summaries and shows the first difference only.
fn assert_same(got: &[Summary], expected: &[Summary], what: &str) {
    if let Some(i) = (0..got.len().max(expected.len())).find(|&i| got.get(i) != expected.get(i)) {
        panic!("{what}: first difference at {i}: got {:?}, expected {:?}", got.get(i), expected.get(i));
    }
}

/// Takes what is ready without waiting for new commits (every commit made so far has returned, so it is published).
fn ready<T>(sub: &mut Subscription<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(item) = sub.try_next().unwrap() {
        out.push(item);
    }
    out
}

/// One transaction per call writing a few records of every table, with values large enough to fill 4 KiB segments.
fn commit_mixed(db: &Shop, i: u64) {
    db.transaction(|tx| {
        tx.accounts.insert(format!("k{}", i % 7), i as i64)?;
        if i.is_multiple_of(3) {
            tx.accounts.remove(&format!("k{}", (i + 1) % 7))?;
        }
        tx.audit.insert(i % 11, "x".repeat(120))?;
        tx.audit.insert(i % 5, format!("{i}"))?;
        if i.is_multiple_of(4) {
            tx.notes.insert(i as u32, "note".into())?;
        }
        Ok::<_, cairn::Error>(())
    })
    .unwrap();
}

#[test]
fn table_and_database_feeds_keep_commit_order_and_transaction_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut accounts = db.accounts.subscribe();
    let mut audit = db.audit.subscribe();
    let mut all = db.db().subscribe();
    let start = db.db().last_seq();

    db.transaction(|tx| {
        tx.accounts.insert("a".into(), 1)?;
        tx.accounts.insert("b".into(), 2)?;
        tx.audit.insert(1, "opened".into())
    })
    .unwrap();
    db.notes.insert(7, "only notes".into()).unwrap();
    db.transaction(|tx| {
        tx.accounts.insert("a".into(), 5)?;
        tx.accounts.insert("a".into(), 6)?; // a key written twice: one change, the last value
        tx.accounts.remove(&"b".to_string())?;
        tx.accounts.insert("c".into(), 9)?; // inserted and removed in the same transaction: a removal
        tx.accounts.remove(&"c".to_string()).map(drop)
    })
    .unwrap();
    db.transaction(|tx| {
        tx.audit.insert(3, "three".into())?;
        tx.audit.insert(2, "two".into())
    })
    .unwrap();
    let aborted = db.transaction(|tx| {
        tx.accounts.insert("never".into(), 0)?;
        Err::<(), _>(Abort::Asked)
    });
    assert!(matches!(aborted, Err(Abort::Asked)));
    assert_eq!(db.db().last_seq(), start + 4, "the aborted transaction took no sequence number");

    let events = ready(&mut accounts);
    assert_eq!(events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [start + 1, start + 3], "only its transactions");
    assert_eq!(account_changes(&events[0]), [("a".into(), Some(1)), ("b".into(), Some(2))]);
    assert_eq!(
        account_changes(&events[1]),
        [("a".into(), Some(6)), ("b".into(), None), ("c".into(), None)],
        "last write per key, in the order the keys were first written"
    );

    let events = ready(&mut audit);
    assert_eq!(events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [start + 1, start + 4]);
    let keys: Vec<u64> = events[1].changes().iter().map(|c| *c.key()).collect();
    assert_eq!(keys, [2, 3], "an ordered table's changes come in key order");

    let commits: Vec<Summary> = ready(&mut all).iter().map(|c| summary(&db, c)).collect();
    assert_eq!(commits.len(), 4, "one commit per transaction, none for the aborted one");
    assert_eq!(commits[0].1, ["accounts", "audit"]);
    assert_eq!(commits[0].3, [(1, Some("opened".to_string()))]);
    assert_eq!((commits[1].0, commits[1].1.clone()), (start + 2, vec!["notes"]));
    assert!(commits[1].2.is_empty(), "no changes for a table the transaction did not write");
    assert_eq!(commits[2].1, ["accounts"]);
    assert_eq!(commits[3].1, ["audit"]);
    assert!(commits.windows(2).all(|w| w[0].0 < w[1].0), "sequence numbers strictly increase");
    assert_eq!(accounts.resume_from(), start + 4, "passed over the transactions that did not write it");
}

#[test]
fn replay_from_the_log_crosses_segment_rolls_and_joins_the_live_feed() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_small(dir.path(), 1024);
    let first = db.db().last_seq();
    let mut live_feed = db.db().subscribe();
    for i in 0..300 {
        commit_mixed(&db, i);
    }
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count();
    assert!(segments >= 5, "the log rolled over several segments ({segments})");
    let mut live: Vec<Summary> = ready(&mut live_feed).iter().map(|c| summary(&db, c)).collect();
    assert_eq!(live.len(), 300);

    // From the beginning, and from the middle of a segment: exactly what the live subscriber saw, in the same order
    // down to the changes inside each transaction.
    for from in [0, first + 137] {
        let mut replay = db.db().subscribe_from(from);
        let got: Vec<Summary> = ready(&mut replay).iter().map(|c| summary(&db, c)).collect();
        let expected: Vec<Summary> = live.iter().filter(|s| s.0 > from).cloned().collect();
        assert_same(&got, &expected, &format!("replay from {from}"));
        // Caught up: the next commits arrive through the ring, with nothing skipped or repeated at the switch.
        commit_mixed(&db, 1000 + from);
        live.extend(ready(&mut live_feed).iter().map(|c| summary(&db, c)));
        let next = replay.next_timeout(WAIT).unwrap().expect("the live commit");
        assert_eq!(summary(&db, &next), live[live.len() - 1]);
    }

    // A table subscription from the log skips the transactions that did not write it.
    let mut notes = db.notes.subscribe_from(0);
    let seqs: Vec<u64> = ready(&mut notes).iter().map(|e| e.seq()).collect();
    let expected: Vec<u64> = live.iter().filter(|s| !s.4.is_empty()).map(|s| s.0).collect();
    assert_eq!(seqs[..expected.len()], expected[..]);
}

#[test]
fn catching_up_while_writers_commit_misses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A ring of 4: the catching-up reader keeps finding the ring moved past it, and a live one lags now and then.
    let db = Arc::new(open_small(dir.path(), 4));
    let start = db.db().last_seq();
    for i in 0..100 {
        db.accounts.insert(format!("k{i}"), i).unwrap();
    }
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 100..600 {
                db.accounts.insert(format!("k{i}"), i).unwrap();
            }
        })
    };
    let end = start + 600;
    let mut seen = Vec::new();
    let mut sub = db.accounts.subscribe_from(start);
    let mut resubscribed = 0;
    while seen.last().copied().unwrap_or(start) < end {
        match sub.next_timeout(WAIT).unwrap_or_else(|e| match e {
            FeedError::Lagged { resume_from } => {
                resubscribed += 1;
                sub = db.accounts.subscribe_from(resume_from);
                None
            }
            e => panic!("{e}"),
        }) {
            Some(event) => {
                let [change] = event.changes() else { panic!("one change per transaction") };
                assert_eq!(change.key(), &format!("k{}", event.seq() - start - 1));
                seen.push(event.seq());
            }
            None if resubscribed > 0 => {}
            None => panic!("no event within {WAIT:?}"),
        }
    }
    writer.join().unwrap();
    assert_eq!(seen, (start + 1..=end).collect::<Vec<_>>(), "every transaction once, in order");
}

#[test]
fn a_position_the_log_no_longer_holds_is_too_old_and_contents_plus_feed_start_over() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 0..10 {
        db.accounts.insert(format!("k{i}"), i).unwrap();
    }
    db.compact().unwrap();
    let folded = db.db().last_seq();
    db.accounts.insert("after".into(), 1).unwrap();

    let mut old = db.accounts.subscribe_from(3);
    match old.next() {
        Some(Err(FeedError::TooOld { requested: 3, oldest })) => assert_eq!(oldest, folded),
        other => panic!("expected TooOld, got {other:?}"),
    }
    assert!(old.next().is_none(), "an error ends the subscription");
    assert!(matches!(old.try_next(), Err(FeedError::Closed)));
    let err = cairn::Error::from(FeedError::TooOld { requested: 3, oldest: folded });
    assert!(err.to_string().contains("compaction folded them into a snapshot"), "{err}");

    // From the snapshot's position on, the log has everything.
    let mut sub = db.accounts.subscribe_from(folded);
    let events = ready(&mut sub);
    assert_eq!(events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [folded + 1]);

    // Starting over: the contents and the changes after them, nothing missing or twice.
    let (contents, mut changes) = db.accounts.subscribe_with_contents();
    db.accounts.insert("later".into(), 2).unwrap();
    db.accounts.remove(&"k0".to_string()).unwrap();
    let mut rebuilt: std::collections::BTreeMap<String, i64> = contents.collect();
    for event in ready(&mut changes) {
        for c in event.changes() {
            match c.value() {
                Some(v) => rebuilt.insert(c.key().clone(), *v),
                None => rebuilt.remove(c.key()),
            };
        }
    }
    assert_eq!(rebuilt, db.accounts.iter().collect());
    assert_eq!(changes.resume_from(), db.db().last_seq());
}

#[test]
fn compaction_under_a_catching_up_subscriber_answers_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_small(dir.path(), 1024);
    for i in 0..200 {
        commit_mixed(&db, i);
    }
    let mut sub = db.db().subscribe_from(0);
    let mut last = None;
    for _ in 0..5 {
        last = Some(sub.try_next().unwrap().expect("in the log").seq());
    }
    db.compact().unwrap();
    let mut delivered = 5;
    let err = loop {
        match sub.try_next() {
            // What the reader had already read of a removed segment is still whole and committed.
            Ok(Some(c)) => {
                assert_eq!(Some(c.seq() - 1), last, "consecutive up to the end");
                last = Some(c.seq());
                delivered += 1;
            }
            Ok(None) => panic!("caught up although compaction removed the log it was reading"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, FeedError::TooOld { .. }), "{err}");
    assert!(delivered < 200);
}

#[test]
fn a_subscriber_that_does_not_read_lags_and_never_blocks_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open_small(dir.path(), 16));
    let mut idle = db.accounts.subscribe();
    let start = idle.resume_from();
    let (done, finished) = mpsc::channel();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 0..200 {
                db.accounts.insert(format!("k{i}"), i).unwrap();
            }
            done.send(()).unwrap();
        })
    };
    finished.recv_timeout(WAIT).expect("the writer finished while the subscriber read nothing");
    writer.join().unwrap();

    match idle.next() {
        Some(Err(FeedError::Lagged { resume_from })) => assert_eq!(resume_from, start),
        other => panic!("expected Lagged, got {other:?}"),
    }
    assert!(idle.next().is_none());
    // Resuming reads the missed commits from the log, then follows the live ones.
    let mut resumed = db.accounts.subscribe_from(start);
    let seqs: Vec<u64> = ready(&mut resumed).iter().map(|e| e.seq()).collect();
    assert_eq!(seqs, (start + 1..=start + 200).collect::<Vec<_>>());
}

/// A file system whose log fsyncs wait while the gate is closed.
#[derive(Debug, Default)]
struct Gate {
    closed: parking_lot::Mutex<bool>,
    changed: parking_lot::Condvar,
    waiting: std::sync::atomic::AtomicUsize,
}

#[derive(Debug)]
struct GatedStorage(Arc<Gate>);

#[derive(Debug)]
struct GatedFile(Box<dyn cairn::StorageFile>, Option<Arc<Gate>>);

impl Gate {
    fn set(&self, closed: bool) {
        *self.closed.lock() = closed;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock();
        self.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        while *closed {
            self.changed.wait(&mut closed);
        }
        self.waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl cairn::Storage for GatedStorage {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        cairn::FsStorage.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        cairn::FsStorage.list(dir)
    }
    fn open_read(&self, path: &Path) -> std::io::Result<Box<dyn cairn::StorageFile>> {
        cairn::FsStorage.open_read(path)
    }
    fn open_write(&self, path: &Path) -> std::io::Result<Box<dyn cairn::StorageFile>> {
        let gate = path.extension().is_some_and(|x| x == "log").then(|| self.0.clone());
        Ok(Box::new(GatedFile(cairn::FsStorage.open_write(path)?, gate)))
    }
    fn read_all(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        cairn::FsStorage.read_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        cairn::FsStorage.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        cairn::FsStorage.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        cairn::FsStorage.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn std::fmt::Debug + Send + Sync>> {
        cairn::FsStorage.lock(path)
    }
}

impl cairn::StorageFile for GatedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        if let Some(gate) = &self.1 {
            gate.pass();
        }
        self.0.sync_data()
    }
    fn sync_all(&self) -> std::io::Result<()> {
        self.0.sync_all()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn allocate(&self, len: u64) -> std::io::Result<()> {
        self.0.allocate(len)
    }
    fn size(&self) -> std::io::Result<u64> {
        self.0.size()
    }
}

#[test]
fn an_immediate_commit_is_delivered_only_after_its_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let db = Arc::new(Shop::builder().storage(Arc::new(GatedStorage(gate.clone()))).open(dir.path()).unwrap());
    db.accounts.insert("before".into(), 0).unwrap();
    let before = db.db().last_seq();
    let mut sub = db.accounts.subscribe();
    // Not in the ring (it started after `before`): this one reads the log, where the next frame will be written
    // before it is fsynced.
    let mut from_log = db.accounts.subscribe_from(before - 1);
    gate.set(true);
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || db.accounts.insert("a".into(), 1).unwrap())
    };
    while gate.waiting.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The record is written, its fsync has not returned: not delivered, not visible, not acknowledged.
    assert!(sub.next_timeout(Duration::from_millis(200)).unwrap().is_none());
    let old = from_log.next_timeout(WAIT).unwrap().expect("the durable commit, from the log");
    assert_eq!(old.seq(), before);
    assert!(from_log.next_timeout(Duration::from_millis(200)).unwrap().is_none(), "written is not durable");
    assert_eq!(db.accounts.get("a"), None);
    assert!(!writer.is_finished());
    gate.set(false);
    for sub in [&mut sub, &mut from_log] {
        let event = sub.next_timeout(WAIT).unwrap().expect("delivered once durable");
        assert_eq!((event.seq(), account_changes(&event)), (before + 1, vec![("a".into(), Some(1))]));
    }
    writer.join().unwrap();
}

#[test]
fn a_subscriber_in_another_thread_sees_each_commit_only_once_it_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    let sub = db.db().subscribe();
    let start = sub.resume_from();
    let reader = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut sub = sub;
            for n in 1..=100u64 {
                let commit = sub.next().unwrap().unwrap();
                assert_eq!(commit.seq(), start + n);
                assert!(db.db().last_seq() >= commit.seq(), "published before delivered");
                for c in commit.changes(&db.accounts) {
                    assert_eq!(db.accounts.get(c.key()), c.value().copied(), "visible to readers when delivered");
                }
            }
        })
    };
    for i in 0..100 {
        db.accounts.insert(format!("k{i}"), i).unwrap();
    }
    reader.join().unwrap();
}

#[test]
fn closing_the_database_ends_subscriptions_after_what_was_published() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut sub = db.accounts.subscribe();
    let mut held = db.db().subscribe_from(0);
    let reader = std::thread::spawn(move || sub.by_ref().map(|e| e.unwrap().seq()).collect::<Vec<_>>());
    for i in 0..3 {
        db.accounts.insert(format!("k{i}"), i).unwrap();
    }
    let last = db.db().last_seq();
    drop(db);
    assert_eq!(reader.join().unwrap(), [last - 2, last - 1, last], "what was published, then the end");
    // A subscription that outlives its database does not keep it locked.
    let db = open(dir.path());
    assert!(matches!(held.try_next(), Err(FeedError::Closed)));
    assert_eq!(db.accounts.len(), 3);
}

#[test]
fn a_position_after_the_last_commit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let last = db.db().last_seq();
    match db.accounts.subscribe_from(last + 5).next() {
        Some(Err(FeedError::Ahead { requested, last: l })) => assert_eq!((requested, l), (last + 5, last)),
        other => panic!("expected Ahead, got {other:?}"),
    }
}

cairn::schema! {
    /// `Shop` without `audit` and `notes`: they become tables on disk that the schema does not declare.
    Smaller {
        accounts: <String, i64>,
    }
}

#[test]
fn the_whole_database_feed_skips_tables_the_schema_does_not_declare() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        db.accounts.insert("a".into(), 1).unwrap();
        db.notes.insert(1, "gone".into()).unwrap();
        db.transaction(|tx| {
            tx.accounts.insert("b".into(), 2)?;
            tx.audit.insert(1, "gone too".into())
        })
        .unwrap();
    }
    let db = Smaller::open(dir.path()).unwrap();
    let commits: Vec<(Vec<&str>, usize)> =
        ready(&mut db.db().subscribe_from(0)).iter().map(|c| (c.tables(), c.changes(&db.accounts).len())).collect();
    assert_eq!(commits, [(vec!["accounts"], 1), (vec!["accounts"], 1)]);
}

#[test]
#[cfg(not(loom))] // tokio is not a dev-dependency under loom (Cargo.toml)
fn an_async_stream_wakes_on_each_commit_and_ends_when_the_database_closes() {
    use futures_core::Stream;
    use std::pin::Pin;

    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    db.accounts.insert("before".into(), 0).unwrap();
    // From the log (the commit above), then live.
    let mut stream = db.accounts.subscribe_from(db.db().last_seq() - 1).into_stream();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 1..=20 {
                std::thread::sleep(Duration::from_millis(2));
                db.accounts.insert(format!("k{i}"), i).unwrap();
            }
        })
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let values = runtime.block_on(async {
        let mut values = Vec::new();
        while values.len() < 21 {
            let next = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx));
            let event = tokio::time::timeout(WAIT, next).await.expect("woken").unwrap().unwrap();
            values.extend(event.changes().iter().map(|c| *c.value().unwrap()));
        }
        values
    });
    assert_eq!(values, (0..=20).collect::<Vec<i64>>());
    writer.join().unwrap();
    let db = Arc::into_inner(db).unwrap();
    drop(db);
    let end = runtime.block_on(std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)));
    assert!(end.is_none(), "the stream ends with the database");
}

#[test]
fn subscribing_inside_a_read_closure_while_a_commit_publishes_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    let (inside, entered) = mpsc::channel();
    let (result, got) = mpsc::channel();
    let reader = {
        let db = db.clone();
        std::thread::spawn(move || {
            let (count, mut sub) = db.read(|r| {
                inside.send(()).unwrap();
                // Meanwhile a commit publishes and waits for this read to leave the copy it updates next.
                std::thread::sleep(Duration::from_millis(100));
                (r.accounts.len(), db.accounts.subscribe())
            });
            result.send((count, sub.next_timeout(WAIT).map(|e| e.map(|e| e.seq())))).unwrap();
        })
    };
    entered.recv_timeout(WAIT).unwrap();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || db.accounts.insert("a".into(), 1).unwrap())
    };
    let (count, event) = got.recv_timeout(WAIT).expect("subscribe returned inside the read");
    reader.join().unwrap();
    writer.join().unwrap();
    assert_eq!(count, 0, "the read saw the state before the commit");
    // The commit could not be published before the read ended, so the subscription made inside it gets it.
    assert_eq!(event.unwrap(), Some(db.db().last_seq()));
}

#[test]
fn subscribers_that_come_and_go_during_commits_start_exactly_after_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open_small(dir.path(), 1024));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 100_000 {
                db.accounts.insert(format!("k{}", i % 50), i).unwrap();
                i += 1;
            }
        })
    };
    for _ in 0..200 {
        // Alone, so every registration resets the ring while commits are being published.
        let mut sub = db.accounts.subscribe();
        let first = sub.resume_from() + 1;
        for expected in first..first + 3 {
            let event = sub.next_timeout(WAIT).unwrap().expect("the writer is committing");
            assert_eq!(event.seq(), expected, "nothing missed or repeated after registering");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn subscriptions_and_what_they_deliver_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Subscription<Commit>>();
    send_sync::<Subscription<TableEvent<String, i64>>>();
    send_sync::<cairn::SubscriptionStream<Commit>>();
    send_sync::<Commit>();
    send_sync::<cairn::Change<String, i64>>();
    send_sync::<FeedError>();
}

#[test]
fn reading_the_log_tail_while_large_frames_are_written_never_sees_damage() {
    let dir = tempfile::tempdir().unwrap();
    // Frames of 320 KiB straddle the log reader's 1 MiB chunks; a ring of 2 keeps the reader at the log's tail,
    // where the writer is appending, for as long as the writer runs.
    let db = Arc::new(
        Shop::builder()
            .durability(Durability::None)
            .segment_size(16 << 20)
            .compact_after(None)
            .feed_buffer(2)
            .open(dir.path())
            .unwrap(),
    );
    let value = |i: u32| char::from(b'a' + (i % 26) as u8).to_string().repeat(320 << 10);
    let start = db.db().last_seq();
    // A backlog first: the reader crosses several chunk boundaries inside frames before it reaches the tail.
    for i in 0..20 {
        db.notes.insert(i, value(i)).unwrap();
    }
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 20..120 {
                db.notes.insert(i, value(i)).unwrap();
            }
        })
    };
    let mut sub = db.notes.subscribe_from(start);
    let mut next = start + 1;
    while next <= start + 120 {
        match sub.next_timeout(WAIT) {
            Ok(Some(event)) => {
                let [change] = event.changes() else { panic!("one change per transaction") };
                let i = (event.seq() - start - 1) as u32;
                assert_eq!((event.seq(), change.value()), (next, Some(&value(i))));
                next += 1;
            }
            Ok(None) => panic!("nothing within {WAIT:?}"),
            Err(FeedError::Lagged { resume_from }) => sub = db.notes.subscribe_from(resume_from),
            Err(e) => panic!("{e}"),
        }
    }
    writer.join().unwrap();
}

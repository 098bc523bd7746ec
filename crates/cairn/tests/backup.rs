//! Online backup (issue 5, part 4): `Db::backup_to` writes a copy that opens with exactly the state of one commit,
//! while writers and readers go on; the target must be new or empty; leftovers of an interrupted backup are removed.
//! Storage failures and power loss during a backup are in `cairn-testkit/tests/backup_faults.rs`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use cairn::{Durability, FsStorage, Storage, StorageFile};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

const ACCOUNTS: u32 = 8;
const INITIAL: i64 = 1_000;
const WRITERS: u32 = 3;

/// One transfer, as the ledger records it: which writer made it (its `nth` transfer) and what moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Transfer {
    writer: u32,
    nth: u64,
    from: u32,
    to: u32,
    amount: i64,
}

cairn::schema! {
    /// Accounts, and the ledger of every transfer in commit order (key `n` is the `n`-th transfer).
    Bank {
        accounts: <u32, i64>,
        ledger: ordered<u64, Transfer>,
    }
}

cairn::schema! {
    /// The same database seen by a program that no longer declares the ledger.
    AccountsOnly {
        accounts: <u32, i64>,
    }
}

fn open(dir: &Path) -> Bank {
    Bank::builder().segment_size(4 << 10).compact_after(Some(24 << 10)).open(dir).unwrap()
}

fn fund(db: &Bank) {
    db.transaction(|tx| {
        for a in 0..ACCOUNTS {
            tx.accounts.insert(a, INITIAL)?;
        }
        Ok::<_, cairn::Error>(())
    })
    .unwrap();
}

/// One transfer by `writer`, its `nth`: a transaction that moves money and appends to the ledger.
fn transfer(db: &Bank, writer: u32, nth: u64, rng: &mut StdRng) {
    let (from, to, amount) = (rng.random_range(0..ACCOUNTS), rng.random_range(0..ACCOUNTS), rng.random_range(1..50));
    db.transaction(|tx| {
        let n = tx.ledger.len() as u64 + 1;
        tx.accounts.update(&from, |b| *b -= amount)?;
        tx.accounts.update(&to, |b| *b += amount)?;
        tx.ledger.insert(n, Transfer { writer, nth, from, to, amount })?;
        Ok::<_, cairn::Error>(())
    })
    .unwrap();
}

/// The balances after the transfers of `ledger`, from the initial ones.
fn replay<'a>(ledger: impl IntoIterator<Item = &'a Transfer>) -> BTreeMap<u32, i64> {
    let mut accounts: BTreeMap<u32, i64> = (0..ACCOUNTS).map(|a| (a, INITIAL)).collect();
    for t in ledger {
        *accounts.get_mut(&t.from).unwrap() -= t.amount;
        *accounts.get_mut(&t.to).unwrap() += t.amount;
    }
    accounts
}

/// Waits until the database has published `n` more commits than `since`.
fn wait_for_commits(db: &Bank, since: u64, n: u64) {
    while db.db().last_seq() < since + n {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The names of the files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

fn partial(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap().to_os_string();
    name.push(".cairn-partial");
    out.with_file_name(name)
}

#[test]
fn every_copy_opens_with_exactly_the_state_of_the_commit_it_names_while_writers_go_on() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("source");
    let db = Arc::new(open(&source));
    fund(&db);
    let funded = db.db().last_seq();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(u64::from(w));
                let mut nth = 0;
                while !stop.load(Ordering::Relaxed) {
                    nth += 1;
                    transfer(&db, w, nth, &mut rng);
                }
                nth
            })
        })
        .collect();

    // Backups between commits, one right after a compaction, one with a compaction before it and commits between.
    let mut backups = Vec::new();
    for round in 0..6 {
        wait_for_commits(&db, db.db().last_seq(), 40);
        if round == 2 || round == 4 {
            db.db().compact().unwrap();
        }
        if round == 4 {
            wait_for_commits(&db, db.db().last_seq(), 40);
        }
        let out = root.path().join(format!("backup-{round}"));
        let backup = db.db().backup_to(&out).unwrap();
        assert_eq!(backup.path, out);
        assert!(backup.seq > funded, "round {round}: the copy holds the writers' commits");
        assert!(!partial(&out).exists(), "round {round}: the partial directory is renamed into place");
        let files = names(&out).iter().filter(|n| n.ends_with(".log") || n.ends_with(".snap")).count();
        assert_eq!(backup.files, files as u64, "round {round}: {:?}", names(&out));
        backups.push(backup);
    }
    stop.store(true, Ordering::Relaxed);
    let made: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(backups.windows(2).all(|w| w[0].seq < w[1].seq), "commits went on between backups: {backups:?}");

    // The source's ledger is the whole history in commit order: commit `funded + n` made transfer `n`.
    let history: Vec<Transfer> = db.ledger.iter().map(|(_, t)| t).collect();
    assert_eq!(db.db().last_seq(), funded + history.len() as u64);
    assert_eq!(made.iter().sum::<u64>(), history.len() as u64);
    for backup in &backups {
        let copy = Bank::open(&backup.path).unwrap();
        let what = format!("copy at seq {}", backup.seq);
        assert_eq!(copy.db().last_seq(), backup.seq, "{what}");
        let transfers = (backup.seq - funded) as usize;
        let ledger: Vec<(u64, Transfer)> = copy.ledger.iter().collect();
        let expected: Vec<(u64, Transfer)> = (1..).zip(history[..transfers].iter().copied()).collect();
        assert_eq!(ledger, expected, "{what}: the ledger is the source's at that commit");
        let accounts: BTreeMap<u32, i64> = copy.accounts.iter().collect();
        assert_eq!(accounts, replay(&history[..transfers]), "{what}: the balances are the source's at that commit");
        assert_eq!(accounts.values().sum::<i64>(), i64::from(ACCOUNTS) * INITIAL, "{what}");
        for w in 0..WRITERS {
            let nths: Vec<u64> = ledger.iter().filter(|(_, t)| t.writer == w).map(|(_, t)| t.nth).collect();
            assert_eq!(nths, (1..=nths.len() as u64).collect::<Vec<_>>(), "{what}: writer {w}'s transfers");
        }
        // The copy is a database of its own: it takes commits, and the source does not see them.
        transfer(&copy, 9, 1, &mut StdRng::seed_from_u64(9));
        assert_eq!(copy.db().last_seq(), backup.seq + 1);
    }
    assert_eq!(db.ledger.len(), history.len());
}

#[test]
fn a_copy_of_a_new_database_and_of_one_whose_commits_were_never_fsynced() {
    let root = tempfile::tempdir().unwrap();
    let db = Bank::builder().durability(Durability::None).open(root.path().join("db")).unwrap();
    fund(&db);
    let mut rng = StdRng::seed_from_u64(1);
    for nth in 1..=20 {
        transfer(&db, 0, nth, &mut rng);
    }
    let backup = db.db().backup_to(root.path().join("copy")).unwrap();
    assert_eq!(backup.seq, db.db().last_seq());
    assert_eq!(backup.files, 1, "no snapshot yet: the one segment");
    drop(db);
    // The source is gone; the copy holds every commit although none was fsynced by its committer.
    fs::remove_dir_all(root.path().join("db")).unwrap();
    let copy = Bank::open(root.path().join("copy")).unwrap();
    assert_eq!(copy.db().last_seq(), backup.seq);
    assert_eq!(copy.ledger.len(), 20);
    let history: Vec<Transfer> = copy.ledger.iter().map(|(_, t)| t).collect();
    assert_eq!(copy.accounts.iter().collect::<BTreeMap<_, _>>(), replay(&history));
}

#[test]
fn a_copy_after_a_compaction_is_the_snapshot_and_idle_backups_add_no_segment() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("db");
    let db = Bank::builder().compact_after(None).open(&source).unwrap();
    fund(&db);
    db.db().compact().unwrap();
    let segments = names(&source);
    let first = db.db().backup_to(root.path().join("first")).unwrap();
    assert_eq!((first.seq, first.files), (db.db().last_seq(), 1), "the snapshot alone: {:?}", names(&first.path));
    assert!(names(&first.path).iter().any(|n| n.ends_with(".snap")));
    let second = db.db().backup_to(root.path().join("second")).unwrap();
    assert_eq!(second.seq, first.seq);
    assert_eq!(names(&source), segments, "backups of an idle database roll nothing");
    let copy = Bank::open(&second.path).unwrap();
    assert_eq!(copy.accounts.iter().collect::<BTreeMap<_, _>>(), replay([]));
    assert_eq!(copy.db().last_seq(), second.seq);
}

#[test]
fn backups_leave_automatic_compaction_as_it_was() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("db");
    let db = Bank::builder().segment_size(64 << 10).compact_after(Some(2 << 10)).open(&source).unwrap();
    fund(&db);
    let mut rng = StdRng::seed_from_u64(5);
    // Each backup rolls a segment of ten commits (about 640 bytes); compaction is due every 2 KiB of log, whoever
    // rolled it, so at most four such segments (and the active one) wait for it.
    for nth in 1..=240 {
        transfer(&db, 0, nth, &mut rng);
        if nth % 10 == 0 {
            let backup = db.db().backup_to(root.path().join(format!("copy-{nth}"))).unwrap();
            assert_eq!(backup.seq, db.db().last_seq());
        }
    }
    let segments = || names(&source).iter().filter(|n| n.ends_with(".log")).count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while segments() > 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "24 backups rolled segments that were never folded: {:?}",
            names(&source)
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(names(&source).iter().any(|n| n.ends_with(".snap")));
}

#[test]
fn tables_the_schema_does_not_declare_are_copied() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("db");
    let db = open(&source);
    fund(&db);
    let mut rng = StdRng::seed_from_u64(2);
    for nth in 1..=5 {
        transfer(&db, 0, nth, &mut rng);
    }
    db.db().compact().unwrap();
    transfer(&db, 0, 6, &mut rng);
    let ledger: Vec<(u64, Transfer)> = db.ledger.iter().collect();
    drop(db);

    let without = AccountsOnly::open(&source).unwrap();
    assert_eq!(without.db().unknown_tables(), ["ledger"]);
    let backup = without.db().backup_to(root.path().join("copy")).unwrap();
    drop(without);
    let copy = Bank::open(&backup.path).unwrap();
    assert_eq!(copy.ledger.iter().collect::<Vec<_>>(), ledger, "the table the backing-up program did not know");
}

#[test]
fn a_target_that_is_not_empty_is_refused_and_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let db = open(&root.path().join("db"));
    fund(&db);

    let full = root.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("notes.txt"), "mine").unwrap();
    let err = db.db().backup_to(&full).unwrap_err();
    assert!(matches!(&err, cairn::Error::BackupTarget { path, .. } if *path == full), "{err}");
    let message = err.to_string();
    assert!(message.contains(&*full.to_string_lossy()) && message.contains("not empty"), "{message}");
    assert_eq!(names(&full), ["notes.txt"]);
    assert!(!partial(&full).exists(), "nothing was created beside it");

    let file = root.path().join("a-file");
    fs::write(&file, "mine").unwrap();
    let err = db.db().backup_to(&file).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert_eq!(fs::read(&file).unwrap(), b"mine");

    let err = db.db().backup_to(root.path().join("db")).unwrap_err();
    assert!(err.to_string().contains("not empty"), "the database's own directory: {err}");

    // A directory named like a partial copy but holding someone else's file is not a leftover: it is not touched.
    let out = root.path().join("out");
    fs::create_dir(partial(&out)).unwrap();
    fs::write(partial(&out).join("photo.jpg"), "mine").unwrap();
    let err = db.db().backup_to(&out).unwrap_err();
    assert!(matches!(&err, cairn::Error::BackupTarget { path, .. } if *path == out), "{err}");
    let message = err.to_string();
    assert!(message.contains("photo.jpg") && message.contains(&*partial(&out).to_string_lossy()), "{message}");
    assert_eq!(names(&partial(&out)), ["photo.jpg"]);
    assert!(!out.exists());

    // Inside a read closure a backup would wait for a flush that waits for the read.
    let err = db.read(|_| db.db().backup_to(root.path().join("from-a-read"))).unwrap_err();
    assert!(matches!(err, cairn::Error::WriteInsideRead), "{err}");
    assert!(!root.path().join("from-a-read").exists() && !partial(&root.path().join("from-a-read")).exists());

    // An empty directory is a fine target.
    let empty = root.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let backup = db.db().backup_to(&empty).unwrap();
    assert_eq!(Bank::open(&empty).unwrap().db().last_seq(), backup.seq);
    db.accounts.insert(ACCOUNTS, 0).unwrap();
}

#[test]
fn the_leftovers_of_an_interrupted_backup_are_removed_by_the_next() {
    let root = tempfile::tempdir().unwrap();
    let db = open(&root.path().join("db"));
    fund(&db);
    let out = root.path().join("out");
    // What a backup killed while copying leaves: the partial directory, its LOCK, a file half written.
    fs::create_dir(partial(&out)).unwrap();
    fs::write(partial(&out).join("LOCK"), "").unwrap();
    fs::write(partial(&out).join("00000000000000000001.log"), b"CAIRNLOG torn").unwrap();
    fs::write(partial(&out).join("00000000000000000099.snap"), b"CAIRNSNP torn").unwrap();
    let backup = db.db().backup_to(&out).unwrap();
    assert!(!partial(&out).exists());
    assert_eq!(names(&out), ["00000000000000000001.log", "LOCK"]);
    let copy = Bank::open(&out).unwrap();
    assert_eq!(copy.db().last_seq(), backup.seq);
    assert_eq!(copy.accounts.len(), ACCOUNTS as usize);
}

/// A storage that stops the `n`-th write to files under one directory until the test lets it go on: it holds a
/// backup in the middle of its copy.
#[derive(Debug, Clone)]
struct Gate {
    under: PathBuf,
    stop_at: u64,
    state: Arc<(Mutex<GateState>, Condvar)>,
}

#[derive(Debug, Default)]
struct GateState {
    writes: u64,
    paused: bool,
    open: bool,
}

impl Gate {
    fn new(under: PathBuf, stop_at: u64) -> Self {
        Gate { under, stop_at, state: Arc::default() }
    }

    fn wait_until_paused(&self) {
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap();
        while !s.paused {
            s = cv.wait(s).unwrap();
        }
    }

    fn open(&self) {
        let (lock, cv) = &*self.state;
        lock.lock().unwrap().open = true;
        cv.notify_all();
    }

    fn write(&self) {
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap();
        s.writes += 1;
        if s.writes == self.stop_at {
            s.paused = true;
            cv.notify_all();
            while !s.open {
                s = cv.wait(s).unwrap();
            }
        }
    }
}

impl Storage for Gate {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        FsStorage.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        FsStorage.list(dir)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        FsStorage.open_read(path)
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = FsStorage.open_write(path)?;
        if path.starts_with(&self.under) {
            return Ok(Box::new(GatedFile { file, gate: self.clone() }));
        }
        Ok(file)
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        FsStorage.read_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        FsStorage.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        FsStorage.remove(path)
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        FsStorage.remove_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        FsStorage.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Debug + Send + Sync>> {
        FsStorage.lock(path)
    }
}

#[derive(Debug)]
struct GatedFile {
    file: Box<dyn StorageFile>,
    gate: Gate,
}

impl StorageFile for GatedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.gate.write();
        self.file.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.file.allocate(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.file.size()
    }
}

#[test]
fn commits_and_reads_go_on_while_a_backup_copies() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    // The backup stops at its second write into the partial copy: inside the snapshot, which takes several chunks.
    let gate = Gate::new(partial(&out), 2);
    let db = Arc::new(
        Bank::builder().storage(Arc::new(gate.clone())).compact_after(None).open(root.path().join("db")).unwrap(),
    );
    fund(&db);
    let mut rng = StdRng::seed_from_u64(3);
    // Accounts no transfer touches, so that the snapshot is a few MiB.
    db.transaction(|tx| {
        for a in ACCOUNTS..200_000 {
            tx.accounts.insert(a, rng.random())?;
        }
        Ok::<_, cairn::Error>(())
    })
    .unwrap();
    db.db().compact().unwrap();
    transfer(&db, 0, 1, &mut rng);
    let before = db.db().last_seq();
    let snapshot_len = fs::read_dir(root.path().join("db"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "snap"))
        .map(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    assert!(snapshot_len > 2 << 20, "the snapshot takes several chunks: {snapshot_len} bytes");

    let backing_up = {
        let (db, out) = (db.clone(), out.clone());
        std::thread::spawn(move || db.db().backup_to(&out))
    };
    gate.wait_until_paused();
    // The backup holds its place in the middle of the copy. Another thread commits, and reads see each commit.
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(4);
            for nth in 2..=21 {
                transfer(&db, 0, nth, &mut rng);
            }
        })
    };
    writer.join().unwrap();
    assert_eq!(db.db().last_seq(), before + 20, "commits completed during the copy");
    assert_eq!(db.ledger.len(), 21, "and readers see them");
    // A second backup into the same target is refused while the first writes it.
    let err = db.db().backup_to(&out).unwrap_err();
    assert!(err.to_string().contains("another backup into it is running"), "{err}");
    gate.open();
    let backup = backing_up.join().unwrap().unwrap();

    assert_eq!(backup.seq, before, "the copy holds the state at the start of the backup");
    assert!(backup.bytes > snapshot_len);
    let copy = Bank::open(&out).unwrap();
    assert_eq!(copy.db().last_seq(), before);
    assert_eq!(copy.accounts.len(), 200_000);
    assert_eq!(copy.ledger.len(), 1);
    let history: Vec<Transfer> = copy.ledger.iter().map(|(_, t)| t).collect();
    let transferred: BTreeMap<u32, i64> = copy.accounts.iter().filter(|(a, _)| *a < ACCOUNTS).collect();
    assert_eq!(transferred, replay(&history));
}

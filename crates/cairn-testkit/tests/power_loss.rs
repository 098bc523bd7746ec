//! Power loss (issue 4, item 1). A workload of bank transfers runs on [`SimStorage`], whose disk is frozen at a chosen
//! storage call: in the middle of a commit, a segment roll, a compaction or the creation of the database. Every state
//! a real disk may be left in at that moment (every combination of dropped, kept and torn unsynced writes and lost
//! directory operations while there are few, a seeded sample otherwise) is then reopened and checked:
//! - it opens, with no error of any kind: a power loss alone never damages a database;
//! - every commit acknowledged as durable is there;
//! - nothing is half applied and nothing was invented: with `n` ledger entries, the ledger is exactly the transfers
//!   committed under keys `1..=n` (a gap-free prefix), the balances are the initial ones plus those transfers, and the
//!   notes are exactly those the last five of them wrote (each commit also removes an older note).
//!
//! For a share of the images a second session then runs on the recovered database and is frozen too, during its
//! recovery or its first commits (or not at all, then it closes cleanly before the power goes); a few of the images
//! of that moment are checked the same way, with the promise of the second session.
//!
//! Durability `Immediate` runs with one writer and with three (whose commits share fsyncs and are written in batches);
//! `None` and `Periodic` promise only what was fsynced (commits that asked for `Immediate`, and what came before them
//! or before a compaction). Segments are 4 KiB and compaction runs every 16 KiB of log (about 35
//! commits) and every 45 commits, so segment
//! rolls and compactions are among the crash points.
//!
//! The crash points are every storage call of the workload, for as many workload seeds as it takes to reach
//! `CAIRN_POWER_LOSS_CASES` points (default 1000; the concurrent test takes a quarter of that, and the test without
//! fsync per commit two thirds for `None` and one third for `Periodic`); `CAIRN_POWER_LOSS_SEED` changes the seeds.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn::{Durability, Storage, StorageFile};
use cairn_testkit::{CrashImage, Sampling, Sealing, SimStorage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

const DIR: &str = "/bank";
const ACCOUNTS: u32 = 8;
const INITIAL_BALANCE: i64 = 1000;
/// How many notes a commit leaves behind it: commit `k` writes note `k` and removes note `k - NOTES`.
const NOTES: u64 = 5;
/// Commits of the first session.
const COMMITS: u64 = 100;
/// An explicit compaction after every this many commits (on top of the automatic ones).
const COMPACT_EVERY: u64 = 45;
/// Commits of the second session.
const SECOND_COMMITS: u64 = 8;
/// Crash points per test by default: about 10 seconds each in a debug build.
const DEFAULT_CASES: u64 = 1000;
const DEFAULT_SEED: u64 = 0x70_6f77_6572;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Transfer {
    from: u32,
    to: u32,
    amount: i64,
}

cairn::schema! {
    /// Accounts, the ledger of every transfer between them, and notes that come and go.
    Bank {
        accounts: <u32, i64>,
        ledger: ordered<u64, Transfer>,
        notes: <u64, String>,
    }
}

/// A durability setting under test, and the number of writer threads.
#[derive(Debug, Clone, Copy)]
struct Mode {
    name: &'static str,
    durability: Durability,
    /// In modes that do not fsync every commit: every this many commits asks for `Immediate`.
    immediate_every: u64,
    writers: u64,
    /// How long a file sync takes on the simulated disk.
    sync_latency: Duration,
    /// How log payloads and snapshot blocks are stored.
    sealing: Sealing,
}

const IMMEDIATE: Mode = Mode {
    name: "immediate",
    durability: Durability::Immediate,
    immediate_every: 1,
    writers: 1,
    sync_latency: Duration::ZERO,
    sealing: Sealing::Plain,
};
const COMPRESSED: Mode = Mode { name: "immediate, lz4", sealing: Sealing::Compressed, ..IMMEDIATE };
const ENCRYPTED: Mode = Mode { name: "immediate, encrypted", sealing: Sealing::Encrypted, ..IMMEDIATE };
const BOTH: Mode = Mode { name: "immediate, lz4+encrypted", sealing: Sealing::Both, ..IMMEDIATE };
const CONCURRENT: Mode =
    Mode { name: "immediate, 3 writers", writers: 3, sync_latency: Duration::from_micros(100), ..IMMEDIATE };
const NONE: Mode = Mode { name: "none", durability: Durability::None, immediate_every: 7, ..IMMEDIATE };
const PERIODIC: Mode = Mode {
    name: "periodic",
    durability: Durability::Periodic(Duration::from_millis(1)),
    immediate_every: 11,
    ..IMMEDIATE
};

/// What the test knows of the database it crashed: the states a recovery may find are those of `durable..=written`
/// ledger entries.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    /// Commits acknowledged as durable: ledger keys `1..=durable` must survive.
    durable: u64,
    /// The last key a commit was attempted for: no later key may appear.
    written: u64,
}

#[derive(Debug, Default)]
struct Totals {
    points: u64,
    images: u64,
    exhaustive_points: u64,
    second_crashes: u64,
    second_images: u64,
    lost_unsynced: u64,
    failures: Vec<String>,
}

#[test]
fn power_loss_with_immediate_durability_loses_no_acknowledged_commit() {
    let totals = run(IMMEDIATE, cases());
    report(IMMEDIATE.name, &totals);
}

/// The same on compressed, encrypted, and compressed-and-encrypted databases (issue 8), a quarter of the crash points
/// each. Creation writes the key file first, so crashes during it are among the points.
#[test]
fn power_loss_on_compressed_and_encrypted_databases_loses_no_acknowledged_commit() {
    for mode in [COMPRESSED, ENCRYPTED, BOTH] {
        let totals = run(mode, cases() / 4);
        report(mode.name, &totals);
    }
}

/// Three writers at once: commits queue behind each other's fsync and are written in batches of several frames, so
/// a crash can tear a batch. The crash points vary a little from run to run with the scheduling.
#[test]
fn power_loss_with_concurrent_writers_loses_no_acknowledged_commit() {
    let totals = run(CONCURRENT, cases() / 4);
    report(CONCURRENT.name, &totals);
}

/// Without an fsync per commit, only what was fsynced is promised: commits that asked for `Immediate`, everything
/// before them, and everything before a compaction. The rest may be lost, but never in part and never out of order.
#[test]
fn power_loss_without_fsync_per_commit_keeps_what_was_synced() {
    let cases = cases();
    let none = run(NONE, cases * 2 / 3);
    report(NONE.name, &none);
    let periodic = run(PERIODIC, cases / 3);
    report(PERIODIC.name, &periodic);
}

fn cases() -> u64 {
    env_or("CAIRN_POWER_LOSS_CASES", DEFAULT_CASES)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn report(name: &str, t: &Totals) {
    println!(
        "power loss ({name}): crash points: {}, of which {} with every image; images checked: {}; second crashes: {}, \
         their images checked: {}; images that lost unsynced commits: {}; failures: {}",
        t.points,
        t.exhaustive_points,
        t.images,
        t.second_crashes,
        t.second_images,
        t.lost_unsynced,
        t.failures.len()
    );
    assert!(t.failures.is_empty(), "{} failures; the first ones:\n{}", t.failures.len(), t.failures.join("\n\n"));
    assert!(t.points >= 50, "only {} crash points were reached", t.points);
}

/// Crashes the workload of `mode` at `cases` storage calls: every call of a seed's workload, seed after seed.
fn run(mode: Mode, cases: u64) -> Totals {
    let base = env_or("CAIRN_POWER_LOSS_SEED", DEFAULT_SEED);
    let started = Instant::now();
    let mut t = Totals::default();
    let mut seed = base;
    while t.points < cases {
        let calls = dry_run(mode, seed);
        for k in 1..=calls {
            if t.points == cases || t.failures.len() >= 5 {
                break;
            }
            crash_point(mode, seed, k, &mut t);
        }
        seed += 1;
        if t.failures.len() >= 5 {
            break;
        }
    }
    println!("power loss ({}): {:.1} s", mode.name, started.elapsed().as_secs_f64());
    t
}

fn open(sim: &SimStorage, mode: Mode) -> cairn::Result<Bank> {
    mode.sealing
        .apply(Bank::builder())
        .storage(sim.shared())
        .durability(mode.durability)
        .segment_size(4096)
        .compact_after(Some(16 * 1024))
        .open(DIR)
}

/// The number of storage calls of the whole first session of `seed`, run without a crash.
fn dry_run(mode: Mode, seed: u64) -> u64 {
    let sim = SimStorage::new();
    sim.set_sync_latency(mode.sync_latency);
    let db = open(&sim, mode).expect("open on a fresh simulated disk");
    let mut known = Known::default();
    work(&db, mode, seed, 1, COMMITS, &mut known).expect("the workload without a crash");
    drop(db);
    sim.calls()
}

/// Runs commits `first..first + count` (keys) on `mode.writers` threads, compacting now and then; each thread stops
/// at its first error.
fn work(db: &Bank, mode: Mode, seed: u64, first: u64, count: u64, known: &mut Known) -> cairn::Result<()> {
    let next = AtomicU64::new(first);
    let durable = AtomicU64::new(known.durable);
    let written = AtomicU64::new(known.written);
    let end = first + count;
    let writer = || -> cairn::Result<()> {
        loop {
            let body = |tx: &BankTxn<'_>| {
                // The key is taken under the writer lock, so keys follow the commit order.
                let key = next.fetch_add(1, Ordering::Relaxed);
                if key >= end {
                    return Ok(None);
                }
                written.fetch_max(key, Ordering::Relaxed);
                commit(tx, seed, key)?;
                Ok::<_, cairn::Error>(Some(key))
            };
            // Whether this commit asks for `Immediate` depends on its key, known only inside: ask for the mode's
            // own durability, and for `Immediate` when the next key is due for it.
            let due = next.load(Ordering::Relaxed).is_multiple_of(mode.immediate_every);
            let key = if due { db.transaction_with(Durability::Immediate, body)? } else { db.transaction(body)? };
            let Some(key) = key else { return Ok(()) };
            if due || mode.durability == Durability::Immediate {
                durable.fetch_max(key, Ordering::Relaxed);
            }
            if key.is_multiple_of(COMPACT_EVERY) {
                db.compact()?;
                durable.fetch_max(key, Ordering::Relaxed);
            }
        }
    };
    let result = std::thread::scope(|s| {
        let threads: Vec<_> = (1..mode.writers).map(|_| s.spawn(writer)).collect();
        let mut result = writer();
        for t in threads {
            let r = t.join().expect("a writer thread panicked");
            result = result.and(r);
        }
        result
    });
    known.durable = durable.into_inner();
    known.written = written.into_inner();
    result
}

/// Commit `key`: the transfer of that key, its ledger entry, its note, and the removal of an older note.
fn commit(tx: &BankTxn<'_>, seed: u64, key: u64) -> cairn::Result<()> {
    let transfer = transfer(seed, key);
    if key == 1 {
        for account in 0..ACCOUNTS {
            tx.accounts.insert(account, INITIAL_BALANCE)?;
        }
    }
    tx.accounts.update(&transfer.from, |b| *b -= transfer.amount)?;
    tx.accounts.update(&transfer.to, |b| *b += transfer.amount)?;
    tx.ledger.insert(key, transfer)?;
    tx.notes.insert(key, note(seed, key))?;
    if key > NOTES {
        tx.notes.remove(&(key - NOTES))?;
    }
    Ok(())
}

fn mix(seed: u64, key: u64) -> u64 {
    // splitmix64
    let mut z = seed ^ key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The transfer committed under `key`: the same in every session and every crash.
fn transfer(seed: u64, key: u64) -> Transfer {
    let h = mix(seed, key);
    let from = (h % u64::from(ACCOUNTS)) as u32;
    let to = (from + 1 + ((h >> 8) % u64::from(ACCOUNTS - 1)) as u32) % ACCOUNTS;
    Transfer { from, to, amount: 1 + ((h >> 16) % 100) as i64 }
}

/// The note committed under `key`: up to 700 bytes, so that frames end anywhere in a sector.
fn note(seed: u64, key: u64) -> String {
    let h = mix(seed ^ 0x6e6f_7465, key);
    let len = (h % 700) as usize;
    let fill = char::from(b'a' + (key % 26) as u8);
    format!("{key}:{}", fill.to_string().repeat(len))
}

/// Crashes the first session of `seed` at its `k`-th storage call and checks every image.
fn crash_point(mode: Mode, seed: u64, k: u64, t: &mut Totals) {
    let sim = SimStorage::new();
    sim.set_sync_latency(mode.sync_latency);
    let mut known = Known::default();
    sim.stop_after(k);
    if let Ok(db) = open(&sim, mode) {
        let _ = work(&db, mode, seed, 1, COMMITS, &mut known);
    }
    if !sim.stopped() {
        // The automatic compactions make the number of calls vary a little from run to run.
        return;
    }
    let trace = sim.trace();
    let pending = sim.pending();
    let images = sim.crash_images(&Sampling { exhaustive_up_to: 256, samples: 24, seed: seed ^ k });
    t.points += 1;
    t.exhaustive_points += u64::from(images.exhaustive);
    let mut rng = StdRng::seed_from_u64(mix(seed, k));
    for (i, image) in images.images.iter().enumerate() {
        t.images += 1;
        let context = || {
            format!(
                "mode {}, seed {seed}, crash at storage call {k} ({known:?}), image {i} of {} ({image:?})\n\
                 pending at the crash: {pending:#?}\nlast calls: {trace:#?}",
                mode.name,
                images.images.len()
            )
        };
        let found = match recover_and_check(&sim, image, mode, seed, known) {
            Ok(n) => n,
            Err(e) => {
                t.failures.push(format!("{e}\n{}", context()));
                return;
            }
        };
        t.lost_unsynced += u64::from(found < known.written);
        if i == 0 || rng.random_bool(0.25) {
            if let Err(e) = second_crash(&sim, image, mode, seed, found, &mut rng, t) {
                t.failures.push(format!("after a second crash: {e}\nfirst crash: {}", context()));
                return;
            }
        }
    }
}

/// Restores `image`, opens it and checks it against `known`; returns the number of ledger entries found.
fn recover_and_check(sim: &SimStorage, image: &CrashImage, mode: Mode, seed: u64, known: Known) -> Result<u64, String> {
    sim.restore(image);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let db = open(sim, mode).map_err(|e| format!("open failed: {e} ({e:?})"))?;
        check(&db, seed, known)
    }));
    result.unwrap_or_else(|panic| Err(format!("panicked: {}", panic_message(&*panic))))
}

/// Runs a second session on `image` (whose ledger has `found` entries) and freezes it at a random call, then checks a
/// few of the images of that moment.
fn second_crash(
    sim: &SimStorage,
    image: &CrashImage,
    mode: Mode,
    seed: u64,
    found: u64,
    rng: &mut StdRng,
    t: &mut Totals,
) -> Result<(), String> {
    sim.restore(image);
    let k = rng.random_range(1..=40);
    sim.stop_after(k);
    let mut known = Known { durable: found, written: found };
    if let Ok(db) = open(sim, mode) {
        let _ = work(&db, mode, seed, found + 1, SECOND_COMMITS, &mut known);
    }
    if !sim.stopped() {
        // Closed cleanly before the power went: everything it committed was fsynced at close.
        known.durable = known.written;
    }
    t.second_crashes += 1;
    let images = sim.crash_images(&Sampling { exhaustive_up_to: 4, samples: 3, seed: rng.random() });
    for image in images.images.iter().take(4) {
        t.second_images += 1;
        recover_and_check(sim, image, mode, seed, known)
            .map_err(|e| format!("{e}\nsecond session stopped at call {k} ({known:?}), image {image:?}"))?;
    }
    Ok(())
}

/// Checks that the database holds exactly the state after `n` commits, for some `n` that `known` allows.
fn check(db: &Bank, seed: u64, known: Known) -> Result<u64, String> {
    let (accounts, ledger, notes) = db.read(|r| {
        let accounts: BTreeMap<u32, i64> = r.accounts.iter().map(|(k, v)| (*k, *v)).collect();
        let ledger: Vec<(u64, Transfer)> = r.ledger.iter().map(|(k, v)| (*k, *v)).collect();
        let notes: BTreeMap<u64, String> = r.notes.iter().map(|(k, v)| (*k, v.clone())).collect();
        (accounts, ledger, notes)
    });
    let n = ledger.len() as u64;
    for (i, (key, transfer)) in ledger.iter().enumerate() {
        if *key != i as u64 + 1 {
            return Err(format!("the ledger is not a gap-free prefix: entry {i} has key {key}"));
        }
        if *transfer != self::transfer(seed, *key) {
            return Err(format!("ledger entry {key} is {transfer:?}, a value that was never committed"));
        }
    }
    if n < known.durable {
        return Err(format!("lost acknowledged commits: the ledger ends at {n}, {} were durable", known.durable));
    }
    if n > known.written {
        return Err(format!("the ledger ends at {n}, but only {} commits were ever attempted", known.written));
    }
    let mut expected: BTreeMap<u32, i64> = BTreeMap::new();
    if n > 0 {
        expected = (0..ACCOUNTS).map(|a| (a, INITIAL_BALANCE)).collect();
        for key in 1..=n {
            let tr = transfer(seed, key);
            *expected.get_mut(&tr.from).expect("every account exists") -= tr.amount;
            *expected.get_mut(&tr.to).expect("every account exists") += tr.amount;
        }
    }
    if accounts != expected {
        return Err(format!(
            "half-applied commits: after {n} transfers the balances are {accounts:?}, not {expected:?}"
        ));
    }
    let expected_notes: BTreeMap<u64, String> =
        (n.saturating_sub(NOTES - 1).max(1)..=n).map(|k| (k, note(seed, k))).collect();
    if notes != expected_notes {
        let keys: Vec<&u64> = notes.keys().collect();
        return Err(format!("half-applied commits: after {n} transfers the notes have keys {keys:?}"));
    }
    Ok(n)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

#[test]
fn the_workload_reaches_rolls_and_compactions() {
    let sim = SimStorage::new();
    let created = Arc::new(Created::default());
    let storage = Arc::new(Counting { inner: sim.shared(), created: created.clone() });
    let db = Bank::builder()
        .storage(storage)
        .durability(IMMEDIATE.durability)
        .segment_size(4096)
        .compact_after(Some(16 * 1024))
        .open(DIR)
        .unwrap();
    let mut known = Known::default();
    let snapshots = |sim: &SimStorage| {
        sim.current_image().files().filter(|(p, _)| p.extension().is_some_and(|e| e == "snap")).count()
    };
    work(&db, IMMEDIATE, DEFAULT_SEED, 1, COMPACT_EVERY - 1, &mut known).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while snapshots(&sim) == 0 {
        assert!(Instant::now() < deadline, "no automatic compaction before the first explicit one");
        std::thread::sleep(Duration::from_millis(1));
    }
    work(&db, IMMEDIATE, DEFAULT_SEED, COMPACT_EVERY, COMMITS - COMPACT_EVERY + 1, &mut known).unwrap();
    assert_eq!(check(&db, DEFAULT_SEED, known), Ok(COMMITS));
    drop(db);
    let files: Vec<String> = sim.current_image().files().map(|(p, _)| p.display().to_string()).collect();
    // Sequence number 1 created the tables, so key `k` is sequence number `k + 1`.
    let last_compaction = COMMITS / COMPACT_EVERY * COMPACT_EVERY + 1;
    // An automatic compaction may have run after it and replaced its snapshot with a later one.
    let snapshot_seq = files
        .iter()
        .filter_map(|f| Path::new(f).file_name()?.to_str()?.strip_suffix(".snap")?.parse::<u64>().ok())
        .max();
    assert!(
        snapshot_seq.is_some_and(|s| s >= last_compaction),
        "no snapshot of the last compaction or later: {files:?}"
    );
    // Compactions removed the segments they folded: of the segments left, only the first may begin at or before the
    // snapshot (how many are left depends on when the last automatic compaction ran).
    let firsts: Vec<u64> = files
        .iter()
        .filter_map(|f| Path::new(f).file_name()?.to_str()?.strip_suffix(".log")?.parse::<u64>().ok())
        .collect();
    // Every compaction rolls the log once at most; the segments beyond those came from segments filling up. (The
    // files left at the end cannot show it: a late automatic compaction may fold all but the active segment.)
    let (segments, snapshots) = (created.with("log"), created.with("tmp"));
    assert!(segments > 1 + snapshots, "segments did not roll: {segments} created, {snapshots} compactions");
    let snapshot_seq = snapshot_seq.expect("checked above");
    assert!(firsts.iter().filter(|&&f| f <= snapshot_seq).count() <= 1, "a folded segment was left: {files:?}");
}

/// The distinct paths a database opened for writing.
#[derive(Default, Debug)]
struct Created(parking_lot::Mutex<std::collections::BTreeSet<std::path::PathBuf>>);

impl Created {
    fn with(&self, extension: &str) -> usize {
        self.0.lock().iter().filter(|p| p.extension().is_some_and(|e| e == extension)).count()
    }
}

/// A storage that notes every path opened for writing, and otherwise is `inner`.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Storage>,
    created: Arc<Created>,
}

impl Storage for Counting {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn open_read(&self, path: &Path) -> std::io::Result<Box<dyn StorageFile>> {
        self.inner.open_read(path)
    }
    fn open_write(&self, path: &Path) -> std::io::Result<Box<dyn StorageFile>> {
        self.created.0.lock().insert(path.to_path_buf());
        self.inner.open_write(path)
    }
    fn read_all(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.inner.read_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn std::fmt::Debug + Send + Sync>> {
        self.inner.lock(path)
    }
}

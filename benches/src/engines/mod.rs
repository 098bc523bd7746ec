//! The engines behind one trait, and the sequence of operations every durable engine runs in its child process.

pub mod cairn;
pub mod cairn_features;
pub mod cairn_sealed;
pub mod cairn_shared;
pub mod fjall;
pub mod hashmap;
pub mod native_db;
pub mod raw;
pub mod redb;
pub mod sled;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::workload::{
    expect_scan, percentile, proc_status_kib, secs, time, Key, Out, Recs, Res, TempDir, Workload, BATCH_SIZE, THREADS,
};

/// Every engine, in the order they run; the first five are the durable ones, then the two limits, then Cairn's own
/// features (indexes, change feed, shared mode, compression and encryption) measured against Cairn without them.
pub const ALL: &[&str] = &[
    "cairn",
    "redb",
    "fjall",
    "sled",
    "native_db",
    "hashmap",
    "raw",
    "cairn_features",
    "cairn_shared",
    "cairn_sealed",
];
/// The real peers: "best peer" ratios take the best of these.
pub const PEERS: &[&str] = &["redb", "fjall", "sled", "native_db"];

/// What an engine does with its compaction.
pub enum Compaction {
    Done,
    /// The engine has none (the reason is reported).
    None(&'static str),
}

/// A durable key-value engine as the suite uses it. Every write method is one durable (fsynced) transaction.
pub trait Engine: Sized + Sync {
    const NAME: &'static str;
    fn open(dir: &Path) -> Res<Self>;
    /// All of `recs` in one durable transaction.
    fn load(&self, recs: Recs<'_>) -> Res<()>;
    /// One record in one durable transaction.
    fn commit_one(&self, key: &Key, val: &[u8]) -> Res<()>;
    /// Reads every key (each must exist) and returns the sum of `touch` over the values.
    fn read(&self, keys: &[Key]) -> Res<u64>;
    /// Whether `key` is present (the first read after reopen, and checks).
    fn contains(&self, key: &Key) -> Res<bool>;
    /// Every record: (count, sum of `touch`).
    fn scan(&self) -> Res<(u64, u64)>;
    /// Removes every key in one durable transaction.
    fn remove(&self, keys: &[Key]) -> Res<()>;
    /// Compacts (the engine's own notion: reclaim space, fold the log).
    fn compact(&mut self) -> Res<Compaction>;
    /// Compacts through a shared reference, so commits can run meanwhile; `Err(reason)` when the engine can't.
    fn compact_shared(&self) -> Result<Res<()>, &'static str>;
}

/// Runs the whole sequence for engine `E`, printing each measurement.
pub fn run<E: Engine>(w: &Workload, root: &Path) -> Res<()> {
    let out = Out { engine: E::NAME };
    let base_rss = proc_status_kib("VmRSS");
    let dir = TempDir::new(root, E::NAME)?;
    let mut db = E::open(&dir.0)?;

    // 1. Bulk load, one durable transaction.
    let (r, d) = time(|| db.load(w.load()));
    r?;
    out.val("bulk_load", secs(d), "s");
    // 10. Peak memory after the load, 9. size after the load.
    let hwm = proc_status_kib("VmHWM");
    out.val("peak_rss_after_load", hwm as f64 / 1024.0, "MiB (VmHWM, whole process)");
    out.val("peak_rss_engine", hwm.saturating_sub(base_rss) as f64 / 1024.0, "MiB (VmHWM - RSS with the workload)");
    let rss = proc_status_kib("VmRSS").saturating_sub(base_rss);
    out.val("rss_after_load_engine", rss as f64 / 1024.0, "MiB (VmRSS - RSS with the workload)");
    out.size("size_after_load", &dir.0);

    // 2. Single-record durable commits, each timed.
    let mut lat = Vec::with_capacity(w.single().len());
    for (k, v) in w.single().iter() {
        let t = Instant::now();
        db.commit_one(k, v)?;
        lat.push(t.elapsed());
    }
    let total: Duration = lat.iter().sum();
    let lat_in_order = lat.clone();
    lat.sort();
    out.val("commit_p50", percentile(&lat, 50.0).as_secs_f64() * 1e6, "µs");
    out.val("commit_p99", percentile(&lat, 99.0).as_secs_f64() * 1e6, "µs");
    out.val("commit_max", lat[lat.len() - 1].as_secs_f64() * 1e3, "ms");
    out.val("commits_1thread", lat.len() as f64 / secs(total), "commits/s");
    let first = lat_in_order[0];
    out.emit("commits_1thread_after_first", Some((lat.len() - 1) as f64 / secs(total - first)), "commits/s", "");
    out.val("commit_first", first.as_secs_f64() * 1e3, "ms");

    // 3. The same from 8 threads at once.
    let recs = w.threaded();
    let barrier = Barrier::new(THREADS + 1);
    let d = std::thread::scope(|s| -> Res<Duration> {
        let handles: Vec<_> = recs
            .chunks(THREADS)
            .into_iter()
            .map(|part| {
                let (db, barrier) = (&db, &barrier);
                s.spawn(move || -> Res<()> {
                    barrier.wait();
                    for (k, v) in part.iter() {
                        db.commit_one(k, v)?;
                    }
                    Ok(())
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        for h in handles {
            h.join().map_err(|_| "a commit thread panicked")??;
        }
        Ok(t.elapsed())
    })?;
    out.val("commits_8threads", recs.len() as f64 / secs(d), "commits/s");

    // 4. 100 durable transactions of 1,000 records.
    let (r, d) = time(|| -> Res<()> {
        let b = w.batches();
        for i in 0..b.len() / BATCH_SIZE {
            db.load(b.slice(i * BATCH_SIZE, (i + 1) * BATCH_SIZE))?;
        }
        Ok(())
    });
    r?;
    out.val("batch_100x1000", secs(d), "s");

    // 5. Random point reads from 1 and 2 threads. 6. Full scan.
    read_steps(&out, w, |keys| db.read(keys))?;
    scan_step(&out, w, || db.scan())?;

    // 7. Close, reopen until the first read succeeds, then 1M random reads.
    let (_, d) = time(|| drop(db));
    out.val("close", secs(d), "s");
    let first = &w.load().keys[0];
    let t = Instant::now();
    db = E::open(&dir.0)?;
    if !db.contains(first)? {
        return Err("reopen: the first loaded key is missing".into());
    }
    out.val("reopen", secs(t.elapsed()), "s");
    let (r, d) = time(|| db.read(&w.read_keys));
    check("reopen_reads", r?, w.read_expect)?;
    out.val("reopen_reads", secs(d) * 1e6 / w.read_keys.len() as f64, "s per 1M reads");

    // 9. Compaction and the size after it.
    let (r, d) = time(|| db.compact());
    match r? {
        Compaction::Done => {
            out.val("compaction", secs(d), "s");
            out.size("size_after_compaction", &dir.0);
            // As many single commits again, of new records, now that no compaction runs beside them: step 2
            // follows the bulk load, whose compaction an engine may run in the background meanwhile.
            let mut fresh = w.fresh(1);
            let mut lat = Vec::with_capacity(w.single().len());
            for _ in 0..w.single().len() {
                fresh.next();
                let t = Instant::now();
                db.commit_one(&fresh.key, &fresh.val)?;
                lat.push(t.elapsed());
            }
            lat.sort();
            out.val("commit_p50_quiet", percentile(&lat, 50.0).as_secs_f64() * 1e6, "µs");
        }
        Compaction::None(why) => {
            out.null("compaction", "s", why);
            out.null("size_after_compaction", "MiB allocated (st_blocks*512)", why);
            out.null("size_after_compaction_apparent", "MiB apparent (st_size)", why);
        }
    }

    // 11. The worst single durable commit while a compaction runs (on N records plus some log).
    for part in w.prelog().chunks(w.prelog().len() / BATCH_SIZE) {
        db.load(part)?;
    }
    during_compaction(&out, &db, w)?;

    // 8. Remove N/2 in one durable transaction.
    let (r, d) = time(|| db.remove(w.removed()));
    r?;
    out.val("remove_half", secs(d), "s");
    if db.contains(&w.removed()[0])? || !db.contains(&w.load().keys[w.n - 1])? {
        return Err("remove_half: wrong contents after the removal".into());
    }
    if let Compaction::Done = db.compact()? {
        out.size("size_after_remove_compaction", &dir.0);
    }
    drop(db);
    Ok(())
}

/// How often the read and scan steps repeat in one process: the best repetition is reported (the machine's noise
/// only ever slows a repetition down), and every repetition's answer is checked.
pub const REPS: usize = 3;

/// 1M random reads from 1 thread, then split over 2 threads; `read` returns the accumulator of its keys.
pub fn read_steps(out: &Out, w: &Workload, read: impl Fn(&[Key]) -> Res<u64> + Sync) -> Res<()> {
    let n = w.read_keys.len() as f64;
    let (mut best1, mut best2) = (Duration::MAX, Duration::MAX);
    for _ in 0..REPS {
        let (r, d) = time(|| read(&w.read_keys));
        check("reads_1thread", r?, w.read_expect)?;
        best1 = best1.min(d);
    }
    out.val("reads_1thread", n / secs(best1) / 1e6, "M reads/s");
    for _ in 0..REPS {
        let (halves, d) = time(|| {
            std::thread::scope(|s| {
                let hs: Vec<_> =
                    w.read_keys.chunks(w.read_keys.len().div_ceil(2)).map(|ks| s.spawn(|| read(ks))).collect();
                hs.into_iter().map(|h| h.join().expect("a read thread panicked")).collect::<Vec<_>>()
            })
        });
        let mut sum = 0;
        for h in halves {
            sum += h?;
        }
        check("reads_2threads", sum, w.read_expect)?;
        best2 = best2.min(d);
    }
    out.val("reads_2threads", n / secs(best2) / 1e6, "M reads/s");
    Ok(())
}

/// The full scan, best of `REPS`; `scan` returns (count, accumulator).
pub fn scan_step(out: &Out, w: &Workload, scan: impl Fn() -> Res<(u64, u64)>) -> Res<()> {
    let mut best = Duration::MAX;
    for _ in 0..REPS {
        let (r, d) = time(&scan);
        check("scan", r?, expect_scan(w.written()))?;
        best = best.min(d);
    }
    out.val("scan", secs(best), "s");
    Ok(())
}

fn during_compaction<E: Engine>(out: &Out, db: &E, w: &Workload) -> Res<()> {
    const OP: &str = "commit_max_during_compaction";
    let done = AtomicBool::new(false);
    let mut fresh = w.fresh(0);
    let mut lat = Vec::new();
    let (compaction, d) = std::thread::scope(|s| {
        let t = Instant::now();
        let h = s.spawn(|| {
            let r = db.compact_shared();
            done.store(true, Ordering::Release);
            r
        });
        while !done.load(Ordering::Acquire) {
            fresh.next();
            let t = Instant::now();
            if let Err(e) = db.commit_one(&fresh.key, &fresh.val) {
                return (Ok(Err(e)), t.elapsed());
            }
            lat.push(t.elapsed());
        }
        (h.join().expect("the compaction thread panicked"), t.elapsed())
    });
    match compaction {
        Err(why) => {
            out.null(OP, "ms", why);
            return Ok(());
        }
        Ok(r) => r?,
    }
    lat.sort();
    let max = lat.last().copied().unwrap_or_default();
    out.val(OP, max.as_secs_f64() * 1e3, "ms");
    out.val("commit_p50_during_compaction", percentile(&lat, 50.0).as_secs_f64() * 1e6, "µs");
    out.val("commits_during_compaction", lat.len() as f64, "commits");
    out.val("compaction_under_commits", secs(d), "s");
    Ok(())
}

/// Fails loudly when an engine returned wrong data.
pub fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Res<()> {
    if got != want {
        return Err(format!("{what}: wrong result: got {got:?}, expected {want:?}").into());
    }
    Ok(())
}

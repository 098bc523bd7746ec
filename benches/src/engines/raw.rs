//! The disk limit: the same encoded bytes (24-byte key then 150-byte value per record) appended to one file
//! preallocated with fallocate, with one fdatasync per "commit". It has no index, so it answers only the write steps.
//!
//! Its last step is the limit for commits during a compaction: single commits while a second thread writes as many
//! bytes as Cairn's snapshot to another file, in 64 KiB writes with an fdatasync per MiB (what Cairn's snapshot writer
//! does), spread over the time Cairn's compaction took in the same run (the parent passes both in [`FOLD_ENV`]).

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::workload::{
    percentile, secs, time, Out, Recs, Res, TempDir, Workload, BATCH_SIZE, KEY, SINGLE, THREADED, THREADS, VAL,
};

const REC: u64 = (KEY + VAL) as u64;

/// Set by the parent for the raw child: `SECS,MIB`, the seconds Cairn's compaction under commits took in this run and
/// the MiB of its snapshot. Without it, the load's bytes are written at full speed.
pub const FOLD_ENV: &str = "CAIRN_BENCH_FOLD";

/// The most commits the during-a-write step makes (space for them is reserved up front).
const DURING_CAP: usize = 50_000;

struct Log {
    file: File,
    end: AtomicU64,
}

impl Log {
    /// Appends `recs` encoded, then fdatasyncs: one durable "commit". Concurrent appends take disjoint ranges.
    fn commit(&self, recs: Recs<'_>) -> Res<()> {
        let mut buf = Vec::with_capacity(recs.len() * REC as usize);
        for (k, v) in recs.iter() {
            buf.extend_from_slice(k);
            buf.extend_from_slice(v);
        }
        let at = self.end.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.file.write_all_at(&buf, at)?;
        self.file.sync_data()?;
        Ok(())
    }
}

pub fn run(w: &Workload, root: &Path) -> Res<()> {
    let out = Out { engine: "raw" };
    let dir = TempDir::new(root, "raw")?;
    let path = dir.0.join("log");
    let file = File::options().create(true).truncate(true).read(true).write(true).open(&path)?;
    let total = (w.n + SINGLE + THREADED + w.batches().len() + DURING_CAP) as u64 * REC;
    fs4::FileExt::allocate(&file, total)?;
    file.sync_all()?;
    File::open(&dir.0)?.sync_all()?;
    let log = Log { file, end: AtomicU64::new(0) };

    let (r, d) = time(|| log.commit(w.load()));
    r?;
    out.val("bulk_load", secs(d), "s");
    out.size("size_after_load", &dir.0);

    let mut lat = Vec::with_capacity(SINGLE);
    for i in 0..SINGLE {
        let t = Instant::now();
        log.commit(w.single().slice(i, i + 1))?;
        lat.push(t.elapsed());
    }
    let sum: Duration = lat.iter().sum();
    lat.sort();
    out.val("commit_p50", percentile(&lat, 50.0).as_secs_f64() * 1e6, "µs");
    out.val("commit_p99", percentile(&lat, 99.0).as_secs_f64() * 1e6, "µs");
    out.val("commit_max", lat[SINGLE - 1].as_secs_f64() * 1e3, "ms");
    out.val("commits_1thread", SINGLE as f64 / secs(sum), "commits/s");

    // 8 threads, each append at its own range and its own fdatasync (the kernel may merge concurrent ones).
    let barrier = Barrier::new(THREADS + 1);
    let d = std::thread::scope(|s| -> Res<Duration> {
        let hs: Vec<_> = w
            .threaded()
            .chunks(THREADS)
            .into_iter()
            .map(|part| {
                let (log, barrier) = (&log, &barrier);
                s.spawn(move || -> Res<()> {
                    barrier.wait();
                    for i in 0..part.len() {
                        log.commit(part.slice(i, i + 1))?;
                    }
                    Ok(())
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        for h in hs {
            h.join().map_err(|_| "a commit thread panicked")??;
        }
        Ok(t.elapsed())
    })?;
    out.val("commits_8threads", THREADED as f64 / secs(d), "commits/s");

    let (r, d) = time(|| -> Res<()> {
        let b = w.batches();
        for i in 0..b.len() / BATCH_SIZE {
            log.commit(b.slice(i * BATCH_SIZE, (i + 1) * BATCH_SIZE))?;
        }
        Ok(())
    });
    r?;
    out.val("batch_100x1000", secs(d), "s");

    const NO: &str = "raw append limit: no index";
    for op in ["reads_1thread", "reads_2threads", "scan", "reopen", "reopen_reads", "remove_half"] {
        out.null(op, "", NO);
    }
    out.null("peak_rss_after_load", "MiB", NO);
    during_write(&out, &log, w, &dir.0)
}

/// Single commits while another file of a snapshot's size is written beside them (see the module docs).
fn during_write(out: &Out, log: &Log, w: &Workload, dir: &Path) -> Res<()> {
    const MIB: u64 = 1 << 20;
    let fold = std::env::var(FOLD_ENV).ok();
    let parsed = fold.as_deref().and_then(|f| {
        let (secs, mib) = f.split_once(',')?;
        Some((secs.parse::<f64>().ok()?, mib.parse::<f64>().ok()?))
    });
    let (span, bytes) = match parsed {
        Some((span, mib)) => (span, (mib * MIB as f64) as u64),
        None => (0.0, w.n as u64 * REC),
    };
    let path = dir.join("fold");
    let file = File::options().create(true).truncate(true).write(true).open(&path)?;
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut fresh = w.fresh(0);
    let mut lat = Vec::new();
    let written = std::thread::scope(|s| -> Res<Duration> {
        let writer = s.spawn(|| -> Res<Duration> {
            let block = vec![0x5au8; 64 << 10];
            let t = Instant::now();
            let (mut at, mut synced) = (0u64, 0u64);
            let r = (|| -> Res<()> {
                while at < bytes {
                    file.write_all_at(&block, at)?;
                    at += block.len() as u64;
                    if at - synced >= MIB {
                        file.sync_data()?;
                        synced = at;
                        // Spread over `span` seconds: wait until this MiB's share of the time has passed.
                        let due = Duration::from_secs_f64(span * at as f64 / bytes as f64);
                        if let Some(wait) = due.checked_sub(t.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                }
                file.sync_all()?;
                Ok(())
            })();
            done.store(true, Ordering::Release);
            r.map(|()| t.elapsed())
        });
        while !done.load(Ordering::Acquire) && lat.len() < DURING_CAP {
            fresh.next();
            let t = Instant::now();
            log.commit(Recs { keys: std::slice::from_ref(&fresh.key), vals: &fresh.val })?;
            lat.push(t.elapsed());
        }
        writer.join().map_err(|_| "the writer thread panicked")?
    })?;
    drop(file);
    std::fs::remove_file(&path)?;
    lat.sort();
    let note = if parsed.is_some() { "" } else { "cairn not run: the load's bytes at full speed" };
    let max = lat.last().copied().unwrap_or_default();
    out.emit("commit_max_during_compaction", Some(max.as_secs_f64() * 1e3), "ms", note);
    out.emit("commit_p50_during_compaction", Some(percentile(&lat, 50.0).as_secs_f64() * 1e6), "µs", note);
    out.val("commits_during_compaction", lat.len() as f64, "commits");
    out.val("compaction_under_commits", secs(written), "s");
    Ok(())
}

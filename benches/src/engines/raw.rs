//! The disk limit: the same encoded bytes (24-byte key then 150-byte value per record) appended to one file
//! preallocated with fallocate, with one fdatasync per "commit". It has no index, so it answers only the write steps.

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
    let total = (w.n + SINGLE + THREADED + w.batches().len()) as u64 * REC;
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
    out.null("commit_max_during_compaction", "ms", NO);
    Ok(())
}

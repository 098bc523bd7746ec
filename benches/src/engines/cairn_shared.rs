//! Shared mode against exclusive mode, in the same run (issue 7): the read cost when nothing changed, and the
//! latency and throughput of durable single-record commits from 1 process and from 4 processes.
//!
//! - Reads: the workload's N records are loaded into one database opened exclusively and one opened in shared mode;
//!   the read keys are then read from both in alternating chunks of 100,000, so both see the same machine.
//! - Commits, 1 process: `SINGLE` durable commits of one record each, in each mode (median, p99, commits/s).
//! - Commits, 4 processes: four copies of this binary (`CAIRN_SHARED_WRITER`, see [`writer`]) commit `SINGLE / 4`
//!   records each into one shared database; the parent reports the wall time's throughput and the children's worst
//!   median and p99. Beside it, 4 threads of one process commit as many into an exclusive database (group commit).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::workload::{percentile, secs, Key, Out, Res, TempDir, Workload, BATCH_SIZE, SINGLE};

cairn::schema! {
    /// One table of the workload's records.
    pub Kv {
        kv: <Key, Vec<u8>>,
    }
}

/// The environment variable that makes this binary a writer child: `DIR,ID,COMMITS`.
pub const WRITER_ENV: &str = "CAIRN_SHARED_WRITER";

fn open(dir: &Path, mode: cairn::Mode) -> Res<Kv> {
    Ok(Kv::builder().mode(mode).open(dir)?)
}

/// A writer child: `COMMITS` durable single-record commits into the shared database in `DIR`; prints
/// `median_us p99_us` of its commits.
pub fn writer(spec: &str) -> Res<()> {
    let parts: Vec<&str> = spec.split(',').collect();
    let [dir, id, commits] = parts[..] else {
        return Err(format!("{WRITER_ENV}={spec:?}: want DIR,ID,COMMITS").into());
    };
    let (id, commits): (u8, usize) = (id.parse()?, commits.parse()?);
    let db = open(Path::new(dir), cairn::Mode::Shared)?;
    let mut lat = Vec::with_capacity(commits);
    for i in 0..commits {
        let mut key = [0u8; 24];
        key[0] = id;
        key[8..16].copy_from_slice(&(i as u64).to_le_bytes());
        let t = Instant::now();
        db.kv.insert(key, vec![id; 150])?;
        lat.push(t.elapsed());
    }
    lat.sort();
    println!("{} {}", percentile(&lat, 0.5).as_secs_f64() * 1e6, percentile(&lat, 0.99).as_secs_f64() * 1e6);
    Ok(())
}

fn reads(out: &Out, w: &Workload, root: &Path) -> Res<()> {
    let dirs = [TempDir::new(root, "cairn-shared-x")?, TempDir::new(root, "cairn-shared-s")?];
    let dbs = [open(&dirs[0].0, cairn::Mode::Exclusive)?, open(&dirs[1].0, cairn::Mode::Shared)?];
    let recs = w.load();
    for db in &dbs {
        for i in 0..recs.len().div_ceil(BATCH_SIZE) {
            let batch = recs.slice(i * BATCH_SIZE, ((i + 1) * BATCH_SIZE).min(recs.len()));
            db.transaction(|t| {
                for (k, v) in batch.iter() {
                    t.kv.insert(*k, v.to_vec())?;
                }
                Ok::<_, cairn::Error>(())
            })?;
        }
    }
    let mut spent = [Duration::ZERO; 2];
    let mut found = [0usize; 2];
    for chunk in w.read_keys.chunks(100_000) {
        for (i, db) in dbs.iter().enumerate() {
            let t = Instant::now();
            found[i] += chunk.iter().filter(|k| db.kv.get_with(*k, |v| v.len()).is_some()).count();
            spent[i] += t.elapsed();
        }
    }
    if found[0] != w.read_keys.len() || found[1] != found[0] {
        return Err(format!("reads found {found:?} of {} keys", w.read_keys.len()).into());
    }
    let rate = |i: usize| found[i] as f64 / secs(spent[i]) / 1e6;
    out.val("get_exclusive", rate(0), "M reads/s (paired chunks with get_shared)");
    out.val("get_shared", rate(1), "M reads/s (nothing changed: one atomic load more per read)");
    Ok(())
}

fn commits_one_process(out: &Out, root: &Path, mode: cairn::Mode, label: &str) -> Res<()> {
    let dir = TempDir::new(root, &format!("cairn-shared-commit-{label}"))?;
    let db = open(&dir.0, mode)?;
    let mut lat = Vec::with_capacity(SINGLE);
    let start = Instant::now();
    for i in 0..SINGLE {
        let mut key = [0u8; 24];
        key[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let t = Instant::now();
        db.kv.insert(key, vec![1; 150])?;
        lat.push(t.elapsed());
    }
    let wall = start.elapsed();
    lat.sort();
    out.val(&format!("commit_1p_{label}_p50"), percentile(&lat, 0.5).as_secs_f64() * 1e6, "µs (durable, 1 record)");
    out.val(&format!("commit_1p_{label}_p99"), percentile(&lat, 0.99).as_secs_f64() * 1e6, "µs");
    out.val(&format!("commit_1p_{label}_rate"), SINGLE as f64 / secs(wall), "commits/s");
    Ok(())
}

fn commits_four(out: &Out, root: &Path) -> Res<()> {
    let per = SINGLE / 4;
    let dir = TempDir::new(root, "cairn-shared-commit-4p")?;
    drop(open(&dir.0, cairn::Mode::Shared)?);
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let children: Vec<_> = (0..4u8)
        .map(|id| {
            Command::new(&exe).env(WRITER_ENV, format!("{},{id},{per}", dir.0.display())).stdout(Stdio::piped()).spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut worst = (0f64, 0f64);
    for child in children {
        let o = child.wait_with_output()?;
        if !o.status.success() {
            return Err(format!("a shared writer ended with {}", o.status).into());
        }
        let text = String::from_utf8_lossy(&o.stdout);
        let v: Vec<f64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        let [p50, p99] = v[..] else { return Err(format!("a shared writer printed {text:?}").into()) };
        worst = (worst.0.max(p50), worst.1.max(p99));
    }
    let wall = start.elapsed();
    let db = open(&dir.0, cairn::Mode::Exclusive)?;
    if db.kv.len() != 4 * per {
        return Err(format!("4 shared writers left {} records, want {}", db.kv.len(), 4 * per).into());
    }
    out.val("commit_4p_shared_rate", (4 * per) as f64 / secs(wall), "commits/s (4 processes, wall time incl. start)");
    out.val("commit_4p_shared_p50", worst.0, "µs (worst child's median)");
    out.val("commit_4p_shared_p99", worst.1, "µs (worst child's p99)");

    let dir = TempDir::new(root, "cairn-shared-commit-4t")?;
    let db = open(&dir.0, cairn::Mode::Exclusive)?;
    let start = Instant::now();
    std::thread::scope(|s| -> Res<()> {
        let handles: Vec<_> = (0..4u8)
            .map(|id| {
                let db = &db;
                s.spawn(move || -> Res<()> {
                    for i in 0..per {
                        let mut key = [0u8; 24];
                        key[0] = id;
                        key[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                        db.kv.insert(key, vec![id; 150])?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "a writer thread panicked")??;
        }
        Ok(())
    })?;
    out.val(
        "commit_4t_exclusive_rate",
        (4 * per) as f64 / secs(start.elapsed()),
        "commits/s (4 threads, group commit)",
    );
    Ok(())
}

/// Runs every step, printing each measurement.
pub fn run(w: &Workload, root: &Path) -> Res<()> {
    let out = Out { engine: "cairn_shared" };
    reads(&out, w, root)?;
    commits_one_process(&out, root, cairn::Mode::Exclusive, "exclusive")?;
    commits_one_process(&out, root, cairn::Mode::Shared, "shared")?;
    commits_four(&out, root)
}

//! The workload (records generated before timing starts), the measurements every engine shares, and the helpers
//! that read the process's memory and a directory's size.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Errors of an engine or of the suite: printed by the child, which then exits non-zero.
pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const KEY: usize = 24;
pub const VAL: usize = 150;
pub type Key = [u8; KEY];

/// Single-record durable commits, timed one by one (also the 1-thread rate).
pub const SINGLE: usize = 1_000;
/// Single-record durable commits from 8 threads, in total.
pub const THREADS: usize = 8;
pub const THREADED: usize = 1_000;
/// Durable transactions of `BATCH_SIZE` records.
pub const BATCHES: usize = 100;
pub const BATCH_SIZE: usize = 1_000;
/// Records written as log before the compaction during which commits are timed (10 transactions of 1,000).
pub const PRELOG: usize = 10_000;

/// The records of one run: the N loaded ones, then the ones each later step adds, each key random and distinct with
/// overwhelming probability (192 random bits).
pub struct Workload {
    pub n: usize,
    keys: Vec<Key>,
    vals: Vec<u8>,
    /// Random keys among the N loaded, read by every read step.
    pub read_keys: Vec<Key>,
    /// The accumulator that reading `read_keys` must give.
    pub read_expect: u64,
    pub seed: u64,
}

/// A run of records: keys and their values, stored apart.
#[derive(Clone, Copy)]
pub struct Recs<'a> {
    pub keys: &'a [Key],
    pub vals: &'a [u8],
}

impl<'a> Recs<'a> {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a Key, &'a [u8])> + 'a {
        let vals = self.vals;
        self.keys.iter().enumerate().map(move |(i, k)| (k, &vals[i * VAL..(i + 1) * VAL]))
    }

    pub fn get(&self, i: usize) -> (&'a Key, &'a [u8]) {
        (&self.keys[i], &self.vals[i * VAL..(i + 1) * VAL])
    }

    pub fn slice(&self, from: usize, to: usize) -> Recs<'a> {
        Recs { keys: &self.keys[from..to], vals: &self.vals[from * VAL..to * VAL] }
    }

    /// Splits into `parts` runs of (nearly) equal length.
    pub fn chunks(&self, parts: usize) -> Vec<Recs<'a>> {
        let per = self.len().div_ceil(parts);
        (0..parts).map(|p| self.slice((p * per).min(self.len()), ((p + 1) * per).min(self.len()))).collect()
    }
}

/// What each read adds to the accumulator: the value's length, first and last byte (so every read touches it).
#[inline(always)]
pub fn touch(v: &[u8]) -> u64 {
    v.len() as u64 + v[0] as u64 + v[v.len() - 1] as u64
}

impl Workload {
    pub fn generate(n: usize, reads: usize, seed: u64) -> Workload {
        let total = n + SINGLE + THREADED + BATCHES * BATCH_SIZE + PRELOG;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut keys = vec![[0u8; KEY]; total];
        for k in &mut keys {
            rng.fill_bytes(k);
        }
        let mut vals = vec![0u8; total * VAL];
        rng.fill_bytes(&mut vals);
        let mut w = Workload { n, keys, vals, read_keys: Vec::with_capacity(reads), read_expect: 0, seed };
        for _ in 0..reads {
            let i = rng.random_range(0..n);
            let (k, v) = w.all().get(i);
            let (k, t) = (*k, touch(v));
            w.read_keys.push(k);
            w.read_expect += t;
        }
        w
    }

    fn all(&self) -> Recs<'_> {
        Recs { keys: &self.keys, vals: &self.vals }
    }

    /// The N records of the bulk load.
    pub fn load(&self) -> Recs<'_> {
        self.all().slice(0, self.n)
    }

    pub fn single(&self) -> Recs<'_> {
        let s = self.n;
        self.all().slice(s, s + SINGLE)
    }

    pub fn threaded(&self) -> Recs<'_> {
        let s = self.n + SINGLE;
        self.all().slice(s, s + THREADED)
    }

    pub fn batches(&self) -> Recs<'_> {
        let s = self.n + SINGLE + THREADED;
        self.all().slice(s, s + BATCHES * BATCH_SIZE)
    }

    /// Every record written up to (and including) the batches: what the scan and the reopen see.
    pub fn written(&self) -> Recs<'_> {
        self.all().slice(0, self.n + SINGLE + THREADED + BATCHES * BATCH_SIZE)
    }

    pub fn prelog(&self) -> Recs<'_> {
        let s = self.n + SINGLE + THREADED + BATCHES * BATCH_SIZE;
        self.all().slice(s, s + PRELOG)
    }

    /// The keys removed by `remove_half`: the first N/2 loaded.
    pub fn removed(&self) -> &[Key] {
        &self.keys[..self.n / 2]
    }

    /// An endless source of records not in the workload, `stream` 0 for the commits during compaction, 1 for the
    /// quiet commits after it (distinct keys: native_db refuses to insert a key twice).
    pub fn fresh(&self, stream: u64) -> Fresh {
        let seed = self.seed ^ 0x5eed_f00d ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Fresh { rng: ChaCha8Rng::seed_from_u64(seed), key: [0; KEY], val: vec![0; VAL] }
    }
}

pub struct Fresh {
    rng: ChaCha8Rng,
    pub key: Key,
    pub val: Vec<u8>,
}

impl Fresh {
    pub fn next(&mut self) {
        self.rng.fill_bytes(&mut self.key);
        self.rng.fill_bytes(&mut self.val);
    }
}

/// The scan's expected (count, accumulator) over `recs`.
pub fn expect_scan(recs: Recs<'_>) -> (u64, u64) {
    (recs.len() as u64, recs.iter().map(|(_, v)| touch(v)).sum())
}

/// One measurement, printed by the child as a JSON line.
pub struct Out {
    pub engine: &'static str,
}

impl Out {
    pub fn emit(&self, op: &str, value: Option<f64>, unit: &str, note: &str) {
        let line = serde_json::json!({"engine": self.engine, "op": op, "value": value, "unit": unit, "note": note});
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        eprintln!("  [{}] {op} = {} {unit} {note}", self.engine, value.map_or("null".into(), |v| format!("{v:.3}")));
    }

    pub fn val(&self, op: &str, value: f64, unit: &str) {
        self.emit(op, Some(value), unit, "");
    }

    pub fn null(&self, op: &str, unit: &str, why: &str) {
        self.emit(op, None, unit, why);
    }

    /// Both sizes of a directory: allocated (what the disk holds) and apparent.
    pub fn size(&self, op: &str, dir: &Path) {
        let (alloc, apparent) = dir_size(dir);
        self.val(op, mib(alloc), "MiB allocated (st_blocks*512)");
        self.val(&format!("{op}_apparent"), mib(apparent), "MiB apparent (st_size)");
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub fn time<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// A field of /proc/self/status in KiB (VmHWM, VmRSS).
pub fn proc_status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

/// (allocated bytes = st_blocks*512, apparent bytes = st_size) of every file under `dir`.
pub fn dir_size(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut total = (0, 0);
    let Ok(rd) = std::fs::read_dir(dir) else { return total };
    for e in rd.flatten() {
        let Ok(m) = std::fs::symlink_metadata(e.path()) else { continue };
        if m.is_dir() {
            let (a, b) = dir_size(&e.path());
            total.0 += a;
            total.1 += b;
        } else {
            total.0 += m.blocks() * 512;
            total.1 += m.size();
        }
    }
    total
}

/// A fresh directory for one engine's database under the benchmark root (never /tmp: it may be tmpfs).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(root: &Path, engine: &str) -> Res<TempDir> {
        let p = root.join(format!("{engine}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Percentile (0..=100) of sorted durations, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

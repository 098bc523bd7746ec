//! read-path: micro-benchmark of in-memory read-publish mechanisms for Cairn.
//!
//! The parent process re-executes itself once per candidate per run (`--child NAME`) so that
//! memory and allocator state never leak between candidates; each child prints `metric value`
//! lines that the parent aggregates into a Markdown table (stdout and RESULTS.md).

mod cands;
mod report;

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use cands::{Baseline, Cand, Data, Hashed, Key, Lr, Papaya, Swap, VLEN};
use rand::seq::SliceRandom;
use report::{render, stat, Samples};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// (name in the table, argument for --child)
const CANDIDATES: &[(&str, &str)] = &[
    ("HashMap (std, foldhash) — baseline", "hashmap"),
    ("left-right, HashTable<Arc<Entry>>", "left-right"),
    ("left-right, HashTable<(u64, Arc<Entry>)>", "left-right-hash"),
    ("ArcSwap<imbl::HashMap>", "arcswap-imbl"),
    ("papaya::HashMap (no cross-table atomicity)", "papaya"),
];

const NOTES_MARKER: &str = "<!-- notes: text below this line is kept when the benchmark rewrites this file -->";

struct Args {
    records: usize,
    runs: usize,
    write_ops: usize,
    passes: usize,
    paired: bool,
    pin: bool,
    child: Option<String>,
    only: Option<Vec<String>>,
    results: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        records: 1_000_000,
        runs: 3,
        write_ops: 1000,
        passes: 5,
        paired: true,
        pin: true,
        child: None,
        only: None,
        results: concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md").to_string(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(f) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{f} needs a value"));
        match f.as_str() {
            "--records" => a.records = val().parse().expect("--records N"),
            "--runs" => a.runs = val().parse().expect("--runs K"),
            "--write-ops" => a.write_ops = val().parse().expect("--write-ops M"),
            "--passes" => a.passes = val().parse().expect("--passes P"),
            "--no-paired" => a.paired = false,
            "--no-pin" => a.pin = false,
            "--child" => a.child = Some(val()),
            "--only" => a.only = Some(val().split(',').map(str::to_string).collect()),
            "--results" => a.results = val(),
            "-h" | "--help" => {
                println!("read-path [--records N] [--runs K] [--passes P] [--no-paired] [--no-pin] [--write-ops M] [--only a,b] [--results FILE|-]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.records > 0 && a.runs > 0 && a.write_ops > 0 && a.passes > 0);
    a
}

fn main() {
    let args = parse_args();
    match args.child.clone() {
        Some(name) => child(&name, &args),
        None => parent(&args),
    }
}

// ---------------------------------------------------------------------------------------------
// Child: one candidate, one run.

const SEED: u64 = 0xCA1A;

fn gen(n: usize, seed: u64) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut keys = vec![[0u8; 24]; n];
    for k in keys.iter_mut() {
        rng.fill_bytes(k);
    }
    let mut vals = vec![0u8; n * VLEN];
    rng.fill_bytes(&mut vals);
    Data { keys, vals }
}

/// The keys in a seeded random order, materialised so reading the key itself is sequential.
fn perm(d: &Data, seed: u64) -> Vec<Key> {
    let mut idx: Vec<u32> = (0..d.keys.len() as u32).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    idx.iter().map(|&i| d.keys[i as usize]).collect()
}

/// (VmRSS, VmHWM) of this process in MiB.
fn rss_mib() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| -> f64 {
        let line = s.lines().find(|l| l.starts_with(name)).expect("field in /proc/self/status");
        let kb: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

static PIN: AtomicBool = AtomicBool::new(true);

/// Pins the calling thread to CPU `i` modulo the CPU count (unless --no-pin), so that the
/// scheduler's placement (two threads on one CPU until the load balancer moves one) does not
/// enter the numbers.
fn pin(i: usize) {
    if !PIN.load(Ordering::Relaxed) {
        return;
    }
    let n = thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: plain libc calls on a zeroed, properly sized cpu_set_t.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(i % n, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(rc, 0, "sched_setaffinity failed");
    }
}

/// Every thread reads its whole key list; returns (total reads per second, xor of accumulators).
fn reads<C: Cand>(sh: &C::Shared, perms: &[&[Key]], one_guard: bool) -> (f64, u64) {
    let b = Barrier::new(perms.len());
    let spans: Vec<(Instant, Instant, u64)> = thread::scope(|s| {
        let hs: Vec<_> = perms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let b = &b;
                s.spawn(move || {
                    pin(i);
                    let r = C::reader(sh);
                    b.wait();
                    let t0 = Instant::now();
                    let acc = if one_guard {
                        C::get_all(&r, p)
                    } else {
                        let mut acc = 0u64;
                        for k in p.iter() {
                            acc = acc.wrapping_add(C::get(&r, k));
                        }
                        acc
                    };
                    let acc = black_box(acc);
                    (t0, Instant::now(), acc)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    let total: usize = perms.iter().map(|p| p.len()).sum();
    let acc = spans.iter().fold(0, |a, s| a ^ s.2);
    (total as f64 / (end - start).as_secs_f64(), acc)
}

/// `m` single-record insert+publish operations while one reader thread reads continuously.
/// Returns per-operation latencies in microseconds and the reader's reads per second meanwhile.
fn write_latency<C: Cand>(c: &mut C, sh: &C::Shared, p: &[Key], extra: &Data) -> (Vec<f64>, f64) {
    let stop = AtomicBool::new(false);
    let started = AtomicBool::new(false);
    thread::scope(|s| {
        let reader = s.spawn(|| {
            pin(1);
            let r = C::reader(sh);
            let (mut acc, mut n) = (0u64, 0usize);
            started.store(true, Ordering::Release);
            let t0 = Instant::now();
            'outer: loop {
                for chunk in p.chunks(1024) {
                    for k in chunk {
                        acc = acc.wrapping_add(C::get(&r, k));
                    }
                    n += chunk.len();
                    if stop.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                }
            }
            black_box(acc);
            n as f64 / t0.elapsed().as_secs_f64()
        });
        pin(0);
        while !started.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        // Let the reader get going before the first timed write.
        thread::sleep(std::time::Duration::from_millis(50));
        let mut lat = Vec::with_capacity(extra.keys.len());
        for (i, k) in extra.keys.iter().enumerate() {
            let t = Instant::now();
            c.write_one(*k, extra.value(i));
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
        stop.store(true, Ordering::Relaxed);
        (lat, reader.join().unwrap())
    })
}

/// Throughput of C relative to the reference HashMap: each thread walks its key list in chunks,
/// reading every chunk from both (alternating which goes first) and adding up the time each
/// takes, so drift in machine speed hits both alike. Returns reference time / candidate time.
fn paired_reads<C: Cand>(sh: &C::Shared, rs: &<Baseline as Cand>::Shared, perms: &[&[Key]]) -> f64 {
    const CHUNK: usize = 32 * 1024;
    let b = Barrier::new(perms.len());
    let times: Vec<(f64, f64)> = thread::scope(|s| {
        let hs: Vec<_> = perms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let b = &b;
                s.spawn(move || {
                    pin(i);
                    let (r, rr) = (C::reader(sh), Baseline::reader(rs));
                    let (mut tc, mut tr, mut acc) = (0.0, 0.0, 0u64);
                    b.wait();
                    for (i, ch) in p.chunks(CHUNK).enumerate() {
                        for j in 0..2 {
                            let t = Instant::now();
                            if (i + j) % 2 == 0 {
                                for k in ch {
                                    acc = acc.wrapping_add(C::get(&r, k));
                                }
                                tc += t.elapsed().as_secs_f64();
                            } else {
                                for k in ch {
                                    acc = acc.wrapping_add(Baseline::get(&rr, k));
                                }
                                tr += t.elapsed().as_secs_f64();
                            }
                        }
                    }
                    black_box(acc);
                    (tc, tr)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    times.iter().map(|t| t.1).sum::<f64>() / times.iter().map(|t| t.0).sum::<f64>()
}

/// One timed full scan: (milliseconds, accumulator).
fn scan_ms<C: Cand>(sh: &C::Shared, n: usize) -> (f64, u64) {
    let r = C::reader(sh);
    let t = Instant::now();
    let (acc, count) = black_box(C::scan(&r));
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(count, n, "scan visited a wrong number of entries");
    (ms, acc)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn child(name: &str, a: &Args) {
    match name {
        "hashmap" => run_child::<Baseline>(a),
        "left-right" => run_child::<Lr<std::sync::Arc<cands::Entry>>>(a),
        "left-right-hash" => run_child::<Lr<Hashed>>(a),
        "arcswap-imbl" => run_child::<Swap>(a),
        "papaya" => run_child::<Papaya>(a),
        other => panic!("unknown candidate {other}"),
    }
}

fn run_child<C: Cand>(a: &Args) {
    PIN.store(a.pin, Ordering::Relaxed);
    // Everything is generated before anything is measured.
    let d = gen(a.records, SEED);
    let p1 = perm(&d, SEED + 1);
    let p2 = perm(&d, SEED + 2);
    let extra = gen(a.write_ops, SEED + 3);
    let (rss0, _) = rss_mib();

    let t = Instant::now();
    let mut c = C::build(&d);
    let t_fin = Instant::now();
    c.finish();
    let finish_ms = t_fin.elapsed().as_secs_f64() * 1e3;
    let build_s = t.elapsed().as_secs_f64();
    let (rss1, hwm1) = rss_mib();

    let sh = c.shared();
    // One untimed pass first, so the first timed pass does not pay for a cold cache and TLB.
    black_box(reads::<C>(&sh, &[&p2], false));
    // The machine is shared and its speed drifts within a second, so besides the absolute
    // numbers the child builds a reference HashMap (after the RSS and build measurements above)
    // and measures ratios against it with the two interleaved in small chunks (`paired_reads`).
    let reference = a.paired.then(|| {
        let b = Baseline::build(&d);
        let s = b.shared();
        black_box(reads::<Baseline>(&s, &[&p2], false));
        (b, s)
    });
    let (mut r1, mut r1g, mut r2, mut scan, mut scale) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut q1, mut q2, mut qs) = (vec![], vec![], vec![]);
    let (mut acc1, mut acc2, mut scan_acc) = (0, 0, 0);
    for _ in 0..a.passes {
        // Untimed: bring the candidate's hot parts (control bytes, top levels) back into the
        // cache after the previous pass's reference reads.
        black_box(reads::<C>(&sh, &[&p2[..p2.len() / 10]], false));
        let (x, acc) = reads::<C>(&sh, &[&p1], false);
        let (z, accz) = reads::<C>(&sh, &[&p1, &p2], false);
        let (y, accg) = reads::<C>(&sh, &[&p1], true);
        assert_eq!(acc, accg, "one-guard pass saw different values");
        let (sc, sacc) = scan_ms::<C>(&sh, a.records);
        (acc1, acc2, scan_acc) = (acc, accz, sacc);
        r1.push(x);
        r1g.push(y);
        r2.push(z);
        scan.push(sc);
        scale.push(z / x);
        if let Some((_, rs)) = &reference {
            q1.push(paired_reads::<C>(&sh, rs, &[&p1]));
            q2.push(paired_reads::<C>(&sh, rs, &[&p1, &p2]));
            qs.push(sc / scan_ms::<Baseline>(rs, a.records).0);
        }
        if std::env::var_os("READ_PATH_DEBUG").is_some() {
            eprintln!("pass 1T {:.2} 1Tg {:.2} 2T {:.2} scan {sc:.1}; paired {:.2?} {:.2?} {:.2?}", x / 1e6, y / 1e6, z / 1e6, q1.last(), q2.last(), qs.last());
        }
    }
    drop(reference);
    let m = |v: &[f64]| stat(v).0;
    let (r1, r1g, r2, scan_ms) = (m(&r1), m(&r1g), m(&r2), m(&scan));

    let mut out = vec![
        ("build_s", build_s),
        ("finish_ms", finish_ms),
        ("rss_mib", rss1 - rss0),
        ("peak_mib", hwm1 - rss0),
        ("reads1", r1),
        ("reads1_guard", r1g),
        ("reads2", r2),
        ("scale2", m(&scale)),
        ("scan_ms", scan_ms),
        ("acc_read", acc1 as f64),
        ("acc_read2", acc2 as f64),
        ("acc_scan", scan_acc as f64),
    ];
    if a.paired {
        out.extend([("pair_reads1", m(&q1)), ("pair_reads2", m(&q2)), ("pair_scan", m(&qs))]);
    }
    if C::WRITES {
        let (mut lat, rdr) = write_latency(&mut c, &sh, &p1, &extra);
        lat.sort_by(f64::total_cmp);
        out.push(("write_p50_us", percentile(&lat, 0.50)));
        out.push(("write_p99_us", percentile(&lat, 0.99)));
        out.push(("write_max_us", *lat.last().unwrap()));
        out.push(("reads_during_writes", rdr));
    }
    for (k, v) in out {
        println!("{k} {v}");
    }
}

// ---------------------------------------------------------------------------------------------
// Parent: run every candidate in a fresh child process, `runs` times, and report.

fn parent(a: &Args) {
    let exe = std::env::current_exe().expect("current_exe");
    let cands: Vec<(&str, &str)> = CANDIDATES
        .iter()
        .copied()
        .filter(|(_, id)| a.only.as_ref().is_none_or(|o| o.iter().any(|x| x == id)))
        .collect();
    let mut samples: Vec<Samples> = vec![Samples::new(); cands.len()];
    for run in 0..a.runs {
        // Rotate the order each run so no candidate always runs first or last.
        for j in 0..cands.len() {
            let i = (j + run) % cands.len();
            eprintln!("run {}/{}: {}", run + 1, a.runs, cands[i].1);
            let out = Command::new(&exe)
                .args(["--child", cands[i].1, "--records", &a.records.to_string()])
                .args(["--write-ops", &a.write_ops.to_string(), "--passes", &a.passes.to_string()])
                .args(if a.paired { &[][..] } else { &["--no-paired"][..] })
                .args(if a.pin { &[][..] } else { &["--no-pin"][..] })
                .stderr(Stdio::inherit())
                .output()
                .expect("spawn child");
            assert!(out.status.success(), "child {} failed: {}", cands[i].1, out.status);
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let mut it = line.split_whitespace();
                if let (Some(k), Some(v)) = (it.next(), it.next()) {
                    samples[i].entry(k.to_string()).or_default().push(v.parse().unwrap());
                }
            }
        }
    }
    let report = render(a, &cands, &samples);
    println!("{report}");
    if a.results != "-" {
        let notes = std::fs::read_to_string(&a.results)
            .ok()
            .and_then(|s| s.find(NOTES_MARKER).map(|i| s[i + NOTES_MARKER.len()..].to_string()))
            .unwrap_or_else(|| "\n\n## Interpretation\n\n(not written yet)\n".to_string());
        std::fs::write(&a.results, format!("{report}\n{NOTES_MARKER}{notes}")).expect("write results");
        eprintln!("wrote {}", a.results);
    }
}


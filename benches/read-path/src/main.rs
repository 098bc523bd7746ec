//! read-path: micro-benchmark of in-memory read-publish mechanisms for Cairn.
//!
//! The parent process re-executes itself once per candidate per run (`--child NAME`) so that
//! memory and allocator state never leak between candidates; each child prints `metric value`
//! lines that the parent aggregates into a Markdown table (stdout and RESULTS.md).

mod cands;

use std::collections::HashMap;
use std::hint::black_box;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use cands::{Baseline, Cand, Data, Hashed, Key, Lr, Papaya, Swap, VLEN};
use rand::seq::SliceRandom;
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
            "--child" => a.child = Some(val()),
            "--only" => a.only = Some(val().split(',').map(str::to_string).collect()),
            "--results" => a.results = val(),
            "-h" | "--help" => {
                println!("read-path [--records N] [--runs K] [--passes P] [--no-paired] [--write-ops M] [--only a,b] [--results FILE|-]");
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

/// Every thread reads its whole key list; returns (total reads per second, xor of accumulators).
fn reads<C: Cand>(sh: &C::Shared, perms: &[&[Key]], one_guard: bool) -> (f64, u64) {
    let b = Barrier::new(perms.len());
    let spans: Vec<(Instant, Instant, u64)> = thread::scope(|s| {
        let hs: Vec<_> = perms
            .iter()
            .map(|p| {
                let b = &b;
                s.spawn(move || {
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
        while !started.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
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
            .map(|p| {
                let b = &b;
                s.spawn(move || {
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
    // Everything is generated before anything is measured.
    let d = gen(a.records, SEED);
    let p1 = perm(&d, SEED + 1);
    let p2 = perm(&d, SEED + 2);
    let extra = gen(a.write_ops, SEED + 3);
    let (rss0, _) = rss_mib();

    let t = Instant::now();
    let mut c = C::build(&d);
    c.finish();
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
    let (mut r1, mut r1g, mut r2, mut scan) = (vec![], vec![], vec![], vec![]);
    let (mut q1, mut q2, mut qs) = (vec![], vec![], vec![]);
    let (mut acc1, mut acc2, mut scan_acc) = (0, 0, 0);
    for _ in 0..a.passes {
        let (x, acc) = reads::<C>(&sh, &[&p1], false);
        let (y, accg) = reads::<C>(&sh, &[&p1], true);
        assert_eq!(acc, accg, "one-guard pass saw different values");
        let (z, accz) = reads::<C>(&sh, &[&p1, &p2], std::env::var_os("TG").is_some());
        let (sc, sacc) = scan_ms::<C>(&sh, a.records);
        (acc1, acc2, scan_acc) = (acc, accz, sacc);
        (r1.push(x), r1g.push(y), r2.push(z), scan.push(sc));
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
        ("rss_mib", rss1 - rss0),
        ("peak_mib", hwm1 - rss0),
        ("reads1", r1),
        ("reads1_guard", r1g),
        ("reads2", r2),
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

type Samples = HashMap<String, Vec<f64>>;

fn parent(a: &Args) {
    let exe = std::env::current_exe().expect("current_exe");
    let cands: Vec<(&str, &str)> = CANDIDATES
        .iter()
        .copied()
        .filter(|(_, id)| a.only.as_ref().map_or(true, |o| o.iter().any(|x| x == id)))
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

/// (median, min, max)
fn stat(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let med = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    (med, s[0], s[n - 1])
}

fn med(s: &Samples, k: &str) -> Option<f64> {
    s.get(k).map(|v| stat(v).0)
}

/// "median [min–max]" scaled by `scale`, with `prec` decimals.
fn cell(s: &Samples, k: &str, scale: f64, prec: usize) -> String {
    match s.get(k) {
        None => "n/a".into(),
        Some(v) if v.len() == 1 => format!("{:.*}", prec, v[0] * scale),
        Some(v) => {
            let (m, lo, hi) = stat(v);
            format!("{:.*} [{:.*}–{:.*}]", prec, m * scale, prec, lo * scale, prec, hi * scale)
        }
    }
}

fn ratio(s: &Samples, base: Option<&Samples>, k: &str) -> String {
    match (med(s, k), base.and_then(|b| med(b, k))) {
        (Some(x), Some(b)) => format!("{:.2}x", x / b),
        _ => "n/a".into(),
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn render(a: &Args, cands: &[(&str, &str)], samples: &[Samples]) -> String {
    use std::fmt::Write;
    let base = cands.iter().position(|c| c.1 == "hashmap").map(|i| &samples[i]);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap().trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut o = String::new();
    let w = &mut o;
    writeln!(w, "# read-path results\n").unwrap();
    writeln!(w, "- date: {}", sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap();
    writeln!(w, "- nproc: {}; CPU: {}; kernel: {}", sh("nproc", &[]), cpu, sh("uname", &["-r"])).unwrap();
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    writeln!(
        w,
        "- toolchain: {}; allocator: system (glibc malloc); transparent huge pages: {}",
        sh("rustc", &["--version"]),
        thp.trim()
    )
    .unwrap();
    writeln!(
        w,
        "- command: `cargo run --release --manifest-path {}/Cargo.toml -- {}`",
        env!("CARGO_MANIFEST_DIR"),
        argv.join(" ")
    )
    .unwrap();
    writeln!(
        w,
        "- workload: {} records, key [u8; 24], value Vec<u8> of {} bytes (seeded ChaCha8); {} runs, each candidate in a fresh child process; \
         each read and scan figure is the median of {} interleaved passes inside the child; \
         cells are median [min–max] over runs, ratios are of medians\n",
        a.records, VLEN, a.runs, a.passes
    )
    .unwrap();

    writeln!(w, "| candidate | build (s) | RSS after build (MiB) | RSS vs HashMap | 1T reads (M/s) | 1T vs HashMap | 2T reads, total (M/s) | 2T / 1T | scan (ms) | scan vs HashMap | insert+publish p50 (µs) | insert+publish p99 (µs) |").unwrap();
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
    for (c, s) in cands.iter().zip(samples) {
        let scal = match (med(s, "reads2"), med(s, "reads1")) {
            (Some(x), Some(y)) => format!("{:.2}x", x / y),
            _ => "n/a".into(),
        };
        writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.0,
            cell(s, "build_s", 1.0, 2),
            cell(s, "rss_mib", 1.0, 0),
            ratio(s, base, "rss_mib"),
            cell(s, "reads1", 1e-6, 2),
            ratio(s, base, "reads1"),
            cell(s, "reads2", 1e-6, 2),
            scal,
            cell(s, "scan_ms", 1.0, 1),
            ratio(s, base, "scan_ms"),
            cell(s, "write_p50_us", 1.0, 1),
            cell(s, "write_p99_us", 1.0, 1),
        )
        .unwrap();
    }

    writeln!(w, "\nSecondary measurements:\n").unwrap();
    writeln!(w, "| candidate | 1T reads, one guard for the whole pass (M/s) | peak RSS during build (MiB) | insert+publish max (µs) | reader M/s during the {} inserts |", a.write_ops).unwrap();
    writeln!(w, "|---|---|---|---|---|").unwrap();
    for (c, s) in cands.iter().zip(samples) {
        writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            c.0,
            cell(s, "reads1_guard", 1e-6, 2),
            cell(s, "peak_mib", 1.0, 0),
            cell(s, "write_max_us", 1.0, 0),
            cell(s, "reads_during_writes", 1e-6, 2),
        )
        .unwrap();
    }

    // Every candidate must have read and scanned the same values.
    let sums: Vec<(f64, f64, f64)> = samples
        .iter()
        .map(|s| (med(s, "acc_read").unwrap(), med(s, "acc_read2").unwrap(), med(s, "acc_scan").unwrap()))
        .collect();
    let same = sums.windows(2).all(|p| p[0] == p[1]);
    writeln!(w, "\nChecksums (read and scan accumulators) identical across candidates: {}", if same { "yes" } else { "NO" }).unwrap();

    writeln!(w, "\nQuality bars (SPEC §6), from the medians above:\n").unwrap();
    writeln!(w, "| candidate | reads ≥ 0.8x HashMap | 2T ≥ 1.7x 1T | scan ≤ 1.5x HashMap | memory ≤ 1.5x HashMap |").unwrap();
    writeln!(w, "|---|---|---|---|---|").unwrap();
    for (c, s) in cands.iter().zip(samples) {
        let rel = |k: &str| match (med(s, k), base.and_then(|b| med(b, k))) {
            (Some(x), Some(b)) => Some(x / b),
            _ => None,
        };
        let verdict = |v: Option<f64>, ok: &dyn Fn(f64) -> bool| match v {
            Some(x) => format!("{} ({:.2}x)", if ok(x) { "yes" } else { "no" }, x),
            None => "n/a".into(),
        };
        let scal = med(s, "reads2").zip(med(s, "reads1")).map(|(x, y)| x / y);
        writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            c.0,
            verdict(rel("reads1"), &|x| x >= 0.8),
            verdict(scal, &|x| x >= 1.7),
            verdict(rel("scan_ms"), &|x| x <= 1.5),
            verdict(rel("rss_mib"), &|x| x <= 1.5),
        )
        .unwrap();
    }
    o
}

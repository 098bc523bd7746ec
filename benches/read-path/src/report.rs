//! Aggregation of the children's samples into the Markdown report.

use std::collections::HashMap;
use std::fmt::Write;
use std::process::Command;

use crate::cands::VLEN;
use crate::Args;

/// metric name -> one value per run (each already a median of passes inside the child)
pub type Samples = HashMap<String, Vec<f64>>;

/// (median, min, max)
pub fn stat(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let med = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    (med, s[0], s[n - 1])
}

fn med(s: &Samples, k: &str) -> Option<f64> {
    s.get(k).map(|v| stat(v).0)
}

/// "median [min–max]" scaled by `scale`, with `prec` decimals and an optional suffix.
fn cell(s: &Samples, k: &str, scale: f64, prec: usize, suffix: &str) -> String {
    match s.get(k) {
        None => "n/a".into(),
        Some(v) if v.len() == 1 => format!("{:.*}{suffix}", prec, v[0] * scale),
        Some(v) => {
            let (m, lo, hi) = stat(v);
            format!("{:.*}{suffix} [{:.*}–{:.*}]", prec, m * scale, prec, lo * scale, prec, hi * scale)
        }
    }
}

/// Ratio of this candidate's median to the baseline's median (separate processes, unpaired).
fn ratio(s: &Samples, base: Option<&Samples>, k: &str) -> Option<f64> {
    Some(med(s, k)? / med(base?, k)?)
}

fn x(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.2}x"))
}

fn verdict(v: Option<f64>, ok: bool) -> String {
    v.map_or("n/a".into(), |v| format!("{} ({v:.2}x)", if ok { "**yes**" } else { "no" }))
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

pub fn render(a: &Args, cands: &[(&str, &str)], samples: &[Samples]) -> String {
    let base = cands.iter().position(|c| c.1 == "hashmap").map(|i| &samples[i]);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("model name"))?;
            Some(l.split(':').nth(1)?.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut o = String::new();
    let w = &mut o;
    let _ = writeln!(w, "# read-path results\n");
    let _ = writeln!(w, "- date: {}", sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    let _ = writeln!(w, "- nproc: {}; CPU: {} (from /proc/cpuinfo); kernel: {}", sh("nproc", &[]), cpu, sh("uname", &["-r"]));
    let _ = writeln!(
        w,
        "- toolchain: {}; allocator: system (glibc malloc); transparent huge pages: {}",
        sh("rustc", &["--version"]),
        thp.trim()
    );
    let _ = writeln!(
        w,
        "- command: `cargo run --release --manifest-path {}/Cargo.toml -- {}`",
        env!("CARGO_MANIFEST_DIR"),
        argv.join(" ")
    );
    let _ = writeln!(
        w,
        "- workload: {} records, key `[u8; 24]`, value `Vec<u8>` of {} bytes (seeded ChaCha8); {} runs, every candidate \
         in a fresh child process per run; inside a child each read and scan figure is the median of {} passes; \
         cells are median [min–max] over the runs; insert+publish latency over {} single-record operations; \
         reader threads {}\n",
        a.records, VLEN, a.runs, a.passes, a.write_ops,
        if a.pin { "pinned one per CPU (the writer of the latency test on CPU 0, its reader on CPU 1)" } else { "not pinned" }
    );

    let _ = writeln!(w, "## Absolute numbers\n");
    let _ = writeln!(w, "| candidate | build (s) | RSS after build (MiB) | RSS vs HashMap | 1T reads (M/s) | 2T reads, total (M/s) | 2T / 1T | scan (ms) | insert+publish p50 (µs) | insert+publish p99 (µs) |");
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
    for (c, s) in cands.iter().zip(samples) {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.0,
            cell(s, "build_s", 1.0, 2, ""),
            cell(s, "rss_mib", 1.0, 0, ""),
            x(ratio(s, base, "rss_mib")),
            cell(s, "reads1", 1e-6, 2, ""),
            cell(s, "reads2", 1e-6, 2, ""),
            cell(s, "scale2", 1.0, 2, "x"),
            cell(s, "scan_ms", 1.0, 1, ""),
            cell(s, "write_p50_us", 1.0, 1, ""),
            cell(s, "write_p99_us", 1.0, 1, ""),
        );
    }
    let _ = writeln!(
        w,
        "\n2T / 1T is the median over passes of (2-thread total) / (1-thread), both taken back to back in the same child.\n"
    );

    let _ = writeln!(w, "## Relative to the HashMap\n");
    let _ = writeln!(
        w,
        "Paired: each child also builds a reference HashMap (after its own build and RSS were measured) and reads \
         the same keys from both, alternating in chunks of 32K keys, so the machine's drift hits both alike. \
         Unpaired: ratio of the medians above, from separate processes.\n"
    );
    let _ = writeln!(w, "| candidate | 1T reads, paired | 1T reads, unpaired | 2T reads, paired | 2T reads, unpaired | scan time, paired | scan time, unpaired |");
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    for (c, s) in cands.iter().zip(samples) {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} |",
            c.0,
            cell(s, "pair_reads1", 1.0, 2, "x"),
            x(ratio(s, base, "reads1")),
            cell(s, "pair_reads2", 1.0, 2, "x"),
            x(ratio(s, base, "reads2")),
            cell(s, "pair_scan", 1.0, 2, "x"),
            x(ratio(s, base, "scan_ms")),
        );
    }

    let _ = writeln!(w, "\n## Quality bars (SPEC §6)\n");
    let _ = writeln!(w, "Reads and scan use the paired medians, memory the RSS ratio, scaling the 2T / 1T column.\n");
    let _ = writeln!(w, "| candidate | reads ≥ 0.8x HashMap | 2T ≥ 1.7x 1T | scan ≤ 1.5x HashMap | memory ≤ 1.5x HashMap |");
    let _ = writeln!(w, "|---|---|---|---|---|");
    for (c, s) in cands.iter().zip(samples) {
        let (r, sc, sn, m) = (med(s, "pair_reads1"), med(s, "scale2"), med(s, "pair_scan"), ratio(s, base, "rss_mib"));
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            c.0,
            verdict(r, r.is_some_and(|v| v >= 0.8)),
            verdict(sc, sc.is_some_and(|v| v >= 1.7)),
            verdict(sn, sn.is_some_and(|v| v <= 1.5)),
            verdict(m, m.is_some_and(|v| v <= 1.5)),
        );
    }

    let _ = writeln!(w, "\n## Secondary measurements\n");
    let _ = writeln!(w, "| candidate | 1T reads, one guard held for the whole pass (M/s) | of which in build: finish (ms) | peak RSS during build (MiB) | insert+publish max (µs) | reader M/s during the inserts |");
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    for (c, s) in cands.iter().zip(samples) {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} |",
            c.0,
            cell(s, "reads1_guard", 1e-6, 2, ""),
            cell(s, "finish_ms", 1.0, 1, ""),
            cell(s, "peak_mib", 1.0, 0, ""),
            cell(s, "write_max_us", 1.0, 0, ""),
            cell(s, "reads_during_writes", 1e-6, 2, ""),
        );
    }

    // Every candidate must have read and scanned the same values.
    let _ = writeln!(
        w,
        "\n\"finish\" is the part of the build after the last insert: for left-right the second publish, which is when \
         left-right creates the second copy (`Absorb::sync_with`, a clone of the table); nothing for the others."
    );
    let same = ["acc_read", "acc_read2", "acc_scan"].iter().all(|k| {
        let all: Vec<f64> = samples.iter().flat_map(|s| s.get(*k).cloned().unwrap_or_default()).collect();
        all.windows(2).all(|p| p[0] == p[1])
    });
    let _ = writeln!(
        w,
        "\nChecksums of the read and scan accumulators identical across candidates: {}",
        if same { "yes" } else { "**NO**" }
    );
    o
}

//! Medians over runs, the Markdown tables, the variation between runs, the target ratios and the JSON output.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde_json::{json, Value};

use crate::engines::cairn_sealed::{OPS as SEALED_OPS, VARIANTS};
use crate::engines::PEERS;
use crate::workload::{BATCHES, BATCH_SIZE, KEY, SINGLE, THREADED, VAL};
use crate::Args;

/// One value printed by a child.
pub struct Measurement {
    engine: String,
    op: String,
    value: Option<f64>,
    unit: String,
    note: String,
    run: usize,
}

impl Measurement {
    /// The value of `op` for `engine` in run `run`, when this is it.
    pub fn value_of(&self, run: usize, engine: &str, op: &str) -> Option<f64> {
        (self.run == run && self.engine == engine && self.op == op).then_some(self.value).flatten()
    }

    pub fn parse(line: &str, run: usize) -> Option<Measurement> {
        let v: Value = serde_json::from_str(line).ok()?;
        Some(Measurement {
            engine: v["engine"].as_str()?.to_string(),
            op: v["op"].as_str()?.to_string(),
            value: v["value"].as_f64(),
            unit: v["unit"].as_str().unwrap_or("").to_string(),
            note: v["note"].as_str().unwrap_or("").to_string(),
            run,
        })
    }
}

/// The engine whose ops are one per variant, set out in their own tables.
const SEALED: &str = "cairn_sealed";

/// The rows of the main table, in the order; other ops follow in the extra table.
const MAIN: &[&str] = &[
    "bulk_load",
    "commit_p50",
    "commit_p99",
    "commits_1thread",
    "commits_8threads",
    "batch_100x1000",
    "reads_1thread",
    "reads_2threads",
    "scan",
    "reopen",
    "reopen_reads",
    "remove_half",
    "size_after_load",
    "size_after_load_apparent",
    "size_after_compaction",
    "size_after_compaction_apparent",
    "peak_rss_after_load",
    "peak_rss_engine",
    "commit_max_during_compaction",
];

#[derive(Default)]
struct Cell {
    runs: Vec<Option<f64>>,
    unit: String,
    note: String,
}

impl Cell {
    fn values(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.runs.iter().flatten().copied().collect();
        v.sort_by(f64::total_cmp);
        v
    }

    fn median(&self) -> Option<f64> {
        median(&self.values())
    }
}

fn median(v: &[f64]) -> Option<f64> {
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

pub struct Report {
    records: usize,
    runs: usize,
    engines: Vec<String>,
    cells: BTreeMap<(String, String), Cell>,
    ops: Vec<String>,
    failures: Vec<String>,
    loads: Vec<(usize, String, f64)>,
    revision: String,
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(0.0) => "0".into(),
        Some(v) if v.abs() >= 1000.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) if v.abs() >= 1.0 => format!("{v:.2}"),
        Some(v) if v.abs() >= 0.01 => format!("{v:.3}"),
        Some(v) => format!("{v:.2e}"),
    }
}

impl Report {
    pub fn new(
        args: &Args,
        all: Vec<Measurement>,
        failures: Vec<String>,
        loads: Vec<(usize, String, f64)>,
        revision: String,
    ) -> Report {
        let mut cells: BTreeMap<(String, String), Cell> = BTreeMap::new();
        let mut ops: Vec<String> = MAIN.iter().map(|s| s.to_string()).collect();
        for m in all {
            if !ops.contains(&m.op) {
                ops.push(m.op.clone());
            }
            let c = cells.entry((m.engine, m.op)).or_default();
            if c.runs.len() <= m.run {
                c.runs.resize(m.run + 1, None);
            }
            c.runs[m.run] = m.value;
            if c.unit.is_empty() || c.unit.len() < m.unit.len() {
                c.unit = m.unit;
            }
            if c.note.is_empty() {
                c.note = m.note;
            }
        }
        Report {
            records: args.records,
            runs: args.runs,
            engines: args.engines.clone(),
            cells,
            ops,
            failures,
            loads,
            revision,
        }
    }

    fn cell(&self, engine: &str, op: &str) -> Option<&Cell> {
        self.cells.get(&(engine.to_string(), op.to_string()))
    }

    fn run_value(&self, engine: &str, op: &str, run: usize) -> Option<f64> {
        self.cell(engine, op)?.runs.get(run).copied().flatten()
    }

    fn unit(&self, op: &str) -> String {
        self.engines
            .iter()
            .filter_map(|e| self.cell(e, op))
            .map(|c| c.unit.clone())
            .max_by_key(|u| u.len())
            .unwrap_or_default()
    }

    fn table(&self, out: &mut String, ops: &[String], cell: impl Fn(&Cell) -> String) {
        let _ = writeln!(out, "| operation | unit | {} |", self.engines.join(" | "));
        let _ = writeln!(out, "|---|---|{}", "---:|".repeat(self.engines.len()));
        for op in ops {
            let cols: Vec<String> = self.engines.iter().map(|e| self.cell(e, op).map_or("-".into(), &cell)).collect();
            let _ = writeln!(out, "| {op} | {} | {} |", self.unit(op), cols.join(" | "));
        }
    }

    pub fn markdown(&self, elapsed: Duration) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "## Results: {} records, {} run(s), medians ({:.0} s in all)\n",
            self.records,
            self.runs,
            elapsed.as_secs_f64()
        );
        let _ = writeln!(s, "Cairn under test: `{}`.\n", self.revision);
        let main: Vec<String> = self.ops.iter().filter(|o| MAIN.contains(&o.as_str())).cloned().collect();
        let extra: Vec<String> = self
            .ops
            .iter()
            .filter(|o| !MAIN.contains(&o.as_str()) && self.cell(SEALED, o).is_none())
            .cloned()
            .collect();
        self.table(&mut s, &main, |c| fmt(c.median()));
        let _ = writeln!(s, "\nOther measurements (medians):\n");
        self.table(&mut s, &extra, |c| fmt(c.median()));
        if self.engines.iter().any(|e| e == SEALED) {
            self.sealed(&mut s);
        }

        let _ = writeln!(s, "\nWhy a cell is n/a:\n");
        let mut notes = BTreeMap::<String, Vec<String>>::new();
        for ((e, op), c) in &self.cells {
            if c.median().is_none() && !c.note.is_empty() {
                notes.entry(format!("{e}: {}", c.note)).or_default().push(op.clone());
            }
        }
        for (why, ops) in notes {
            let _ = writeln!(s, "- {why} ({})", ops.join(", "));
        }

        if self.runs > 1 {
            let _ = writeln!(s, "\n### Variation between runs (min - max; spread = (max - min) / median)\n");
            let all: Vec<String> = self.ops.clone();
            self.table(&mut s, &all, |c| {
                let v = c.values();
                match (v.first(), v.last(), c.median()) {
                    (Some(lo), Some(hi), Some(m)) if m != 0.0 => {
                        format!("{} - {} ({:.0}%)", fmt(Some(*lo)), fmt(Some(*hi)), (hi - lo) / m.abs() * 100.0)
                    }
                    (Some(lo), Some(hi), _) => format!("{} - {}", fmt(Some(*lo)), fmt(Some(*hi))),
                    _ => "n/a".into(),
                }
            });
            let mut spreads: Vec<f64> = self
                .cells
                .values()
                .filter_map(|c| {
                    let v = c.values();
                    let m = c.median()?;
                    (v.len() > 1 && m != 0.0).then(|| (v[v.len() - 1] - v[0]) / m.abs() * 100.0)
                })
                .collect();
            spreads.sort_by(f64::total_cmp);
            if let (Some(m), Some(max)) = (median(&spreads), spreads.last()) {
                let _ = writeln!(
                    s,
                    "\nRuns varied by a median spread of {m:.0}% per cell (largest {max:.0}%, {} cells).",
                    spreads.len()
                );
            }
        }

        let _ =
            writeln!(s, "\nLoad average (1 min, from /proc/loadavg; 2 means both cores busy) as each child started:\n");
        for run in 0..self.runs {
            let l: Vec<String> =
                self.loads.iter().filter(|(r, _, _)| *r == run).map(|(_, e, l)| format!("{e} {l:.2}")).collect();
            let _ = writeln!(s, "- run {}: {}", run + 1, l.join(", "));
        }

        let _ = writeln!(s, "\n### Cairn's targets (issue 3), ratios within each run, median over runs [per run]\n");
        for line in self.ratios() {
            let _ = writeln!(s, "{line}");
        }
        if !self.failures.is_empty() {
            let _ = writeln!(s, "\n### Failures\n");
            for f in &self.failures {
                let _ = writeln!(s, "- {f}");
            }
        }
        s
    }

    /// The `cairn_sealed` rows: medians with a column per variant, then each variant / plain within each run.
    fn sealed(&self, out: &mut String) {
        let names: Vec<&str> = VARIANTS.iter().map(|v| v.name).collect();
        let unit = |op: &str| self.cell(SEALED, &format!("{op}_plain")).map_or(String::new(), |c| c.unit.clone());
        let _ = writeln!(out, "\nCompression and encryption (`cairn_sealed`, medians):\n");
        let _ = writeln!(out, "| operation | unit | {} |", names.join(" | "));
        let _ = writeln!(out, "|---|---|{}", "---:|".repeat(names.len()));
        for op in SEALED_OPS {
            let cols: Vec<String> = names
                .iter()
                .map(|v| self.cell(SEALED, &format!("{op}_{v}")).map_or("-".into(), |c| fmt(c.median())))
                .collect();
            let _ = writeln!(out, "| {op} | {} | {} |", unit(op), cols.join(" | "));
        }
        let others = &names[1..];
        let _ = writeln!(
            out,
            "\nCompression and encryption, against plain Cairn in the same run (variant / plain, median over runs; \
             below 1 is faster or smaller):\n"
        );
        let _ = writeln!(out, "| operation | {} |", others.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(others.len()));
        for op in SEALED_OPS {
            let cols: Vec<String> = others
                .iter()
                .map(|v| {
                    let mut per: Vec<f64> = (0..self.runs)
                        .filter_map(|r| {
                            let x = self.run_value(SEALED, &format!("{op}_{v}"), r)?;
                            let plain = self.run_value(SEALED, &format!("{op}_plain"), r)?;
                            (plain != 0.0).then(|| x / plain)
                        })
                        .collect();
                    per.sort_by(f64::total_cmp);
                    fmt(median(&per))
                })
                .collect();
            let _ = writeln!(out, "| {op} | {} |", cols.join(" | "));
        }
    }

    /// The best (smallest) time among the real peers in one run.
    fn best_peer(&self, op: &str, run: usize) -> Option<(f64, &'static str)> {
        PEERS.iter().filter_map(|p| self.run_value(p, op, run).map(|v| (v, *p))).min_by(|a, b| a.0.total_cmp(&b.0))
    }

    fn ratios(&self) -> Vec<String> {
        type F<'a> = Box<dyn Fn(usize) -> Option<f64> + 'a>;
        let v = |e: &'static str, op: &'static str| move |r: usize| self.run_value(e, op, r);
        let ratio = |a: &'static str, op_a: &'static str, b: &'static str, op_b: &'static str| -> F<'_> {
            Box::new(move |r| Some(v(a, op_a)(r)? / v(b, op_b)(r)?))
        };
        let vs_best =
            |op: &'static str| -> F<'_> { Box::new(move |r| Some(v("cairn", op)(r)? / self.best_peer(op, r)?.0)) };
        let live_bytes = ((self.records + SINGLE + THREADED + BATCHES * BATCH_SIZE) * (KEY + VAL)) as f64;
        let mib = (1u64 << 20) as f64;
        // (what, target text, met if, per-run ratio)
        type Row<'a> = (&'static str, &'static str, Box<dyn Fn(f64) -> bool>, F<'a>);
        let rows: Vec<Row<'_>> = vec![
            (
                "random reads 1 thread, Cairn / HashMap",
                ">= 0.8",
                Box::new(|x| x >= 0.8),
                ratio("cairn", "reads_1thread", "hashmap", "reads_1thread"),
            ),
            (
                "1M reads after reopen (no compaction running), Cairn / HashMap speed",
                "info",
                Box::new(|x| x >= 0.8),
                ratio("hashmap", "reopen_reads", "cairn", "reopen_reads"),
            ),
            (
                "random reads 1 thread, Cairn / redb",
                "about 8 (info)",
                Box::new(|x| x >= 8.0),
                ratio("cairn", "reads_1thread", "redb", "reads_1thread"),
            ),
            (
                "random reads, Cairn 2 threads / 1 thread",
                ">= 1.7",
                Box::new(|x| x >= 1.7),
                ratio("cairn", "reads_2threads", "cairn", "reads_1thread"),
            ),
            (
                "random reads, HashMap 2 threads / 1 thread (what this machine gives)",
                "info",
                Box::new(|x| x >= 1.7),
                ratio("hashmap", "reads_2threads", "hashmap", "reads_1thread"),
            ),
            (
                "full scan time, Cairn / HashMap",
                "<= 1.5",
                Box::new(|x| x <= 1.5),
                ratio("cairn", "scan", "hashmap", "scan"),
            ),
            (
                "durable commit p50, Cairn / raw append+fdatasync",
                "<= 1.3",
                Box::new(|x| x <= 1.3),
                ratio("cairn", "commit_p50", "raw", "commit_p50"),
            ),
            (
                "durable commit p50 with no compaction beside (after step 9), Cairn / raw",
                "info",
                Box::new(|x| x <= 1.3),
                ratio("cairn", "commit_p50_quiet", "raw", "commit_p50"),
            ),
            (
                "durable commit p50 during a compaction, Cairn / raw beside the same bytes written",
                "info",
                Box::new(|x| x <= 1.3),
                ratio("cairn", "commit_p50_during_compaction", "raw", "commit_p50_during_compaction"),
            ),
            (
                "durable commit p50, Cairn / fjall",
                "<= 1.0",
                Box::new(|x| x <= 1.0),
                ratio("cairn", "commit_p50", "fjall", "commit_p50"),
            ),
            (
                "commit rate, Cairn 8 threads / 1 thread",
                ">= 4",
                Box::new(|x| x >= 4.0),
                ratio("cairn", "commits_8threads", "cairn", "commits_1thread"),
            ),
            (
                "commit rate, Cairn 8 threads / 1 thread without its first commit",
                "info",
                Box::new(|x| x >= 4.0),
                ratio("cairn", "commits_8threads", "cairn", "commits_1thread_after_first"),
            ),
            ("bulk load time, Cairn / best peer", "<= 0.35", Box::new(|x| x <= 0.35), vs_best("bulk_load")),
            ("100 x 1,000 batch time, Cairn / best peer", "<= 0.8", Box::new(|x| x <= 0.8), vs_best("batch_100x1000")),
            ("remove N/2 time, Cairn / best peer", "<= 0.4", Box::new(|x| x <= 0.4), vs_best("remove_half")),
            (
                "reopen until first read, Cairn / HashMap build from memory",
                "<= 1.3",
                Box::new(|x| x <= 1.3),
                ratio("cairn", "reopen", "hashmap", "reopen"),
            ),
            (
                "reopen then 1M reads time, Cairn / redb",
                "<= 0.2",
                Box::new(|x| x <= 0.2),
                ratio("cairn", "reopen_reads", "redb", "reopen_reads"),
            ),
            (
                "size after compaction (allocated), Cairn / raw key+value bytes",
                "<= 1.1",
                Box::new(|x| x <= 1.1),
                Box::new(move |r| Some(v("cairn", "size_after_compaction")(r)? * mib / live_bytes)),
            ),
            (
                "size after compaction (apparent), Cairn / raw key+value bytes",
                "<= 1.1",
                Box::new(|x| x <= 1.1),
                Box::new(move |r| Some(v("cairn", "size_after_compaction_apparent")(r)? * mib / live_bytes)),
            ),
            (
                "peak memory after load (VmHWM - workload), Cairn / HashMap",
                "<= 1.5",
                Box::new(|x| x <= 1.5),
                ratio("cairn", "peak_rss_engine", "hashmap", "peak_rss_engine"),
            ),
            (
                "memory after load, not peak (VmRSS - workload), Cairn / HashMap",
                "info",
                Box::new(|x| x <= 1.5),
                ratio("cairn", "rss_after_load_engine", "hashmap", "rss_after_load_engine"),
            ),
            (
                "peak memory after load (whole process VmHWM), Cairn / HashMap",
                "info",
                Box::new(|x| x <= 1.5),
                ratio("cairn", "peak_rss_after_load", "hashmap", "peak_rss_after_load"),
            ),
            (
                "worst commit during compaction, Cairn, ms",
                "< 5",
                Box::new(|x| x < 5.0),
                Box::new(v("cairn", "commit_max_during_compaction")),
            ),
            (
                "worst commit of raw append+fdatasync beside Cairn's snapshot bytes written in its time, ms",
                "info",
                Box::new(|x| x < 5.0),
                Box::new(v("raw", "commit_max_during_compaction")),
            ),
        ];
        let mut lines = Vec::new();
        for (what, target, ok, f) in rows {
            let per: Vec<Option<f64>> = (0..self.runs).map(&f).collect();
            let mut vals: Vec<f64> = per.iter().flatten().copied().collect();
            vals.sort_by(f64::total_cmp);
            let runs: Vec<String> = per.iter().map(|x| fmt(*x)).collect();
            let line = match median(&vals) {
                None => format!("- {what}: n/a (target {target}) [{}]", runs.join(", ")),
                Some(m) => {
                    let verdict = if target.contains("info") {
                        "info"
                    } else if ok(m) {
                        "met"
                    } else {
                        "MISSED"
                    };
                    format!("- {what}: {} (target {target}): {verdict} [{}]", fmt(Some(m)), runs.join(", "))
                }
            };
            lines.push(line);
        }
        for op in ["bulk_load", "batch_100x1000", "remove_half"] {
            let best: Vec<String> =
                (0..self.runs).map(|r| self.best_peer(op, r).map_or("n/a".into(), |(_, p)| p.to_string())).collect();
            lines.push(format!("- best peer for {op} per run: {}", best.join(", ")));
        }
        lines
    }

    pub fn json(&self) -> String {
        let mut arr = Vec::new();
        for op in &self.ops {
            for e in &self.engines {
                if let Some(c) = self.cell(e, op) {
                    let v = c.values();
                    arr.push(json!({
                        "engine": e, "op": op, "value": c.median(), "unit": c.unit,
                        "min": v.first(), "max": v.last(), "runs": c.runs, "note": c.note,
                    }));
                }
            }
        }
        serde_json::to_string_pretty(&Value::Array(arr)).unwrap_or_default()
    }
}

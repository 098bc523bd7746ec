//! `cairn-bench`: Cairn beside redb, fjall, sled and native_db, and two limits (a foldhash `HashMap`, a raw
//! append+fdatasync), measured in one run (issue 3).
//!
//! The parent re-executes itself once per engine per run (`--child ENGINE`): each engine runs in a fresh process,
//! prints its measurements as JSON lines on stdout, and the parent collects them, reports medians, spreads and the
//! target ratios.

mod engines;
mod report;
mod workload;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use report::Measurement;
use workload::{Res, Workload};

const USAGE: &str = "usage: cairn-bench [--records N] [--reads R] [--runs K] [--json PATH] [--engines a,b,...] \
[--seed S] [--dir DIR]
  --records N   records loaded (default 1000000)
  --reads R     random point reads per read step (default 1000000)
  --runs K      repeat everything K times, report medians (default 1)
  --json PATH   write medians (and per-run values) as a JSON array
  --engines     a comma-separated subset of: cairn,redb,fjall,sled,native_db,hashmap,raw,cairn_features,cairn_shared,
                cairn_sealed
  --seed S      the workload generator's seed (default 1)
  --dir DIR     where the databases live (default /work/bench-tmp; not /tmp, which may be tmpfs)";

pub struct Args {
    pub records: usize,
    pub reads: usize,
    pub runs: usize,
    pub json: Option<PathBuf>,
    pub engines: Vec<String>,
    pub seed: u64,
    pub dir: PathBuf,
    child: Option<String>,
}

fn parse() -> Res<Args> {
    let mut a = Args {
        records: 1_000_000,
        reads: 1_000_000,
        runs: 1,
        json: None,
        engines: engines::ALL.iter().map(|s| s.to_string()).collect(),
        seed: 1,
        dir: PathBuf::from("/work/bench-tmp"),
        child: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--records" => a.records = v.replace('_', "").parse()?,
            "--reads" => a.reads = v.replace('_', "").parse()?,
            "--runs" => a.runs = v.parse()?,
            "--json" => a.json = Some(v.into()),
            "--seed" => a.seed = v.parse()?,
            "--dir" => a.dir = v.into(),
            "--child" => a.child = Some(v),
            "--engines" => {
                a.engines = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                if let Some(bad) = a.engines.iter().find(|e| !engines::ALL.contains(&e.as_str())) {
                    return Err(format!("unknown engine {bad}; known: {}", engines::ALL.join(",")).into());
                }
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}").into()),
        }
    }
    if a.records < 4 || a.reads == 0 || a.runs == 0 {
        return Err("--records must be at least 4, --reads and --runs at least 1".into());
    }
    Ok(a)
}

fn main() {
    if let Ok(spec) = std::env::var(engines::cairn_shared::WRITER_ENV) {
        if let Err(e) = engines::cairn_shared::writer(&spec) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let r = match &args.child {
        Some(engine) => child(&args, engine),
        None => parent(&args),
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// One engine, one run: generate the workload, then run every step, printing JSON lines.
fn child(args: &Args, engine: &str) -> Res<()> {
    let (w, d) = workload::time(|| Workload::generate(args.records, args.reads, args.seed));
    eprintln!("[{engine}] workload of {} records generated in {:.1} s", args.records, d.as_secs_f64());
    match engine {
        "cairn" => engines::run::<engines::cairn::Cairn>(&w, &args.dir),
        "redb" => engines::run::<engines::redb::Redb>(&w, &args.dir),
        "fjall" => engines::run::<engines::fjall::Fjall>(&w, &args.dir),
        "sled" => engines::run::<engines::sled::Sled>(&w, &args.dir),
        "native_db" => engines::run::<engines::native_db::NativeDb>(&w, &args.dir),
        "hashmap" => engines::hashmap::run(&w),
        "raw" => engines::raw::run(&w, &args.dir),
        "cairn_features" => engines::cairn_features::run(&w, &args.dir),
        "cairn_shared" => engines::cairn_shared::run(&w, &args.dir),
        "cairn_sealed" => engines::cairn_sealed::run(&w, &args.dir),
        other => Err(format!("unknown engine {other}").into()),
    }
}

fn parent(args: &Args) -> Res<()> {
    std::fs::create_dir_all(&args.dir)?;
    let exe = std::env::current_exe()?;
    let mut all: Vec<Measurement> = Vec::new();
    let mut failures = Vec::new();
    let mut loads = Vec::new();
    eprintln!("cairn under test: {}", cairn_revision());
    let started = std::time::Instant::now();
    for run in 0..args.runs {
        for engine in &args.engines {
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            let load1: f64 = load.split_whitespace().next().and_then(|l| l.parse().ok()).unwrap_or(f64::NAN);
            loads.push((run, engine.clone(), load1));
            eprintln!(
                "== run {}/{} engine {engine} ({:.0} s so far, load {load1})",
                run + 1,
                args.runs,
                started.elapsed().as_secs_f64()
            );
            let mut cmd = Command::new(&exe);
            if engine == "raw" {
                // The raw limit writes Cairn's snapshot bytes over the time Cairn's compaction took, in this run.
                let of = |op: &str| all.iter().find_map(|m| m.value_of(run, "cairn", op));
                if let (Some(secs), Some(mib)) = (of("compaction_under_commits"), of("size_after_compaction_apparent"))
                {
                    cmd.env(engines::raw::FOLD_ENV, format!("{secs},{mib}"));
                }
            }
            let mut child = cmd
                .args(["--child", engine])
                .args(["--records", &args.records.to_string(), "--reads", &args.reads.to_string()])
                .args(["--seed", &args.seed.to_string()])
                .arg("--dir")
                .arg(&args.dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let stdout = child.stdout.take().ok_or("no child stdout")?;
            for line in BufReader::new(stdout).lines() {
                let line = line?;
                match Measurement::parse(&line, run) {
                    Some(m) => all.push(m),
                    None => eprintln!("[{engine}] unparsed output: {line}"),
                }
            }
            let status = child.wait()?;
            if !status.success() {
                eprintln!("!! run {} engine {engine} failed: {status}", run + 1);
                failures.push(format!("run {} engine {engine}: child exited with {status} (see stderr)", run + 1));
            }
        }
    }
    let _ = std::fs::remove_dir(&args.dir);
    let rep = report::Report::new(args, all, failures, loads, cairn_revision());
    print!("{}", rep.markdown(started.elapsed()));
    if let Some(path) = &args.json {
        std::fs::write(path, rep.json())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Which Cairn was measured: the git revision of the tree the suite was built in, `-dirty` if it had changes;
/// `CAIRN_BENCH_REVISION` overrides it (for a suite run on an exported tree).
fn cairn_revision() -> String {
    if let Ok(r) = std::env::var("CAIRN_BENCH_REVISION") {
        return r;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new("git").args(["-C", dir, "describe", "--always", "--dirty", "--abbrev=12"]).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => format!("{dir} is not a git checkout"),
    }
}

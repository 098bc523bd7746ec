//! The kill loop: start a child on the database, SIGKILL it at a random moment, reopen, check, repeat.
//!
//! Most kills land a random 5-60 ms after the child prints `ready`; one in five lands 0-20 ms after the spawn, often
//! inside recovery. The loop stops at the first failure: a check that fails (see `check`), a reopen that fails or
//! panics, a child that ends on its own or is not ready in time.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::bank::{self, Transfer};
use crate::check::{check, Ack, State, Totals};
use crate::process::{killed, Run};
use crate::Options;

/// How long a child may take to open the database.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the loop `options` describe, prints its report, and returns the exit code: success if every check passed.
pub(crate) fn run(options: &Options) -> ExitCode {
    let started = Instant::now();
    let (dir, temporary) = match &options.dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let dir = std::env::temp_dir().join(format!("crashloop-{}", std::process::id()));
            if let Err(e) = std::fs::create_dir(&dir) {
                eprintln!("crashloop: cannot create the directory {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
            (dir, true)
        }
    };
    let mut kill_loop = KillLoop {
        options,
        dir,
        rng: StdRng::seed_from_u64(options.seed),
        totals: Totals::default(),
        before_ready: 0,
        mid_compaction: 0,
        ledger: Vec::new(),
    };
    let outcome = std::env::current_exe()
        .map_err(|e| format!("cannot find the crashloop executable to run as the child: {e}"))
        .and_then(|exe| (1..=options.kills).try_for_each(|kill| kill_loop.round(&exe, kill)));

    let KillLoop { dir, totals, before_ready, mid_compaction, ledger, .. } = kill_loop;
    println!(
        "durability: {}, seed: {:#x}, killed before ready: {before_ready}, kills mid-compaction: {mid_compaction}, \
         recovered but unacknowledged: {}, not a prefix: {}, ledger entries: {}, {:.1?}",
        options.durability,
        options.seed,
        totals.unacknowledged,
        totals.not_a_prefix,
        ledger.len(),
        started.elapsed()
    );
    match &outcome {
        Err(failure) => {
            eprintln!("crashloop: FAILED: {failure}\nthe database is kept in {}:", dir.display());
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                eprintln!("  {:>10}  {}", len, entry.file_name().to_string_lossy());
            }
        }
        Ok(()) if temporary => {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                eprintln!("crashloop: cannot remove {}: {e}", dir.display());
            }
        }
        Ok(()) => {}
    }
    println!("{totals}");
    if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

struct KillLoop<'a> {
    options: &'a Options,
    dir: PathBuf,
    rng: StdRng,
    totals: Totals,
    /// Kills that landed before the child was ready: while it opened the database (or before it started to).
    before_ready: u64,
    /// Kills that left what an interrupted compaction leaves: a `.tmp` file or a second snapshot.
    mid_compaction: u64,
    /// The ledger the last reopen found.
    ledger: Vec<(u64, Transfer)>,
}

impl KillLoop<'_> {
    /// One child, killed, and the reopen after it; the error says what failed, at which kill.
    fn round(&mut self, exe: &Path, kill: u64) -> Result<(), String> {
        let round_started = Instant::now();
        let args = [OsStr::new("--child"), self.dir.as_os_str(), OsStr::new(&self.options.durability)];
        let mut run = Run::spawn(exe, &args).map_err(|e| format!("kill {kill}: cannot start the child: {e}"))?;
        if self.rng.random_bool(0.2) {
            thread::sleep(Duration::from_millis(self.rng.random_range(0..=20)));
        } else {
            match run.wait_for("ready", READY_TIMEOUT) {
                Ok(()) => thread::sleep(Duration::from_millis(self.rng.random_range(5..=60))),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("kill {kill}: the child was not ready after {READY_TIMEOUT:?}"));
                }
                Err(RecvTimeoutError::Disconnected) => {} // It ended on its own; the status says how.
            }
        }
        let ended = run.kill().map_err(|e| format!("kill {kill}: cannot kill the child: {e}"))?;
        self.totals.kills += 1;
        if !killed(&ended.status) {
            return Err(format!(
                "kill {kill}: the child ended on its own ({}); its stderr:\n{}",
                ended.status, ended.stderr
            ));
        }
        let acked = parse_acks(&ended.lines).map_err(|e| format!("kill {kill}: {e}"))?;
        let ready = ended.lines.iter().any(|line| line == "ready");
        self.before_ready += u64::from(!ready);
        let mid_compaction = compaction_leftovers(&self.dir);
        self.mid_compaction += u64::from(mid_compaction);

        let state = match catch_unwind(AssertUnwindSafe(|| reopen(&self.dir))) {
            Ok(Ok(state)) => state,
            Ok(Err(e)) => return Err(format!("kill {kill}: reopening {} failed: {e}", self.dir.display())),
            Err(_) => return Err(format!("kill {kill}: reopening {} panicked", self.dir.display())),
        };
        let verdict = check(&state, &acked, &self.ledger);
        self.totals.add(&acked, &verdict);
        self.ledger = state.ledger;
        if self.options.verbose {
            println!(
                "kill {kill}: {} acknowledged, {} unacknowledged, ledger {} entries{}{}, {:.1?}",
                acked.len(),
                verdict.unacknowledged,
                self.ledger.len(),
                if ready { "" } else { ", before ready" },
                if mid_compaction { ", mid-compaction" } else { "" },
                round_started.elapsed()
            );
        }
        match verdict.problems() {
            None => Ok(()),
            Some(problems) => Err(format!(
                "kill {kill} (the child acknowledged {} commits, the last {:?}): {problems}",
                acked.len(),
                acked.last()
            )),
        }
    }
}

/// The `ack` lines of a child, sorted by key.
fn parse_acks(lines: &[String]) -> Result<Vec<Ack>, String> {
    let mut acked = Vec::new();
    for line in lines.iter().filter(|line| *line != "ready") {
        acked.push(parse_ack(line).ok_or_else(|| format!("unexpected line {line:?} from the child"))?);
    }
    acked.sort_unstable_by_key(|ack| ack.key);
    Ok(acked)
}

/// `ack <key> <writer> <seq>`.
fn parse_ack(line: &str) -> Option<Ack> {
    let mut fields = line.strip_prefix("ack ")?.split(' ');
    let ack = Ack {
        key: fields.next()?.parse().ok()?,
        writer: fields.next()?.parse().ok()?,
        seq: fields.next()?.parse().ok()?,
    };
    fields.next().is_none().then_some(ack)
}

/// Opens the database, reads every table at one state, and closes it.
fn reopen(dir: &Path) -> cairn::Result<State> {
    let db = bank::open(dir, cairn::Durability::Immediate)?;
    Ok(db.read(|r| State {
        balances: r.accounts.iter().map(|(&a, &b)| (a, b)).collect::<BTreeMap<_, _>>(),
        writers: r.writers.iter().map(|(&w, &s)| (w, s)).collect(),
        ledger: r.ledger.iter().map(|(&k, &t)| (k, t)).collect(),
    }))
}

/// Whether `dir` holds what a compaction interrupted before its clean-up leaves: a `.tmp` file or two snapshots.
/// A figure for the report only: it relies on file names that are Cairn's business, not the checker's.
fn compaction_leftovers(dir: &Path) -> bool {
    let names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.iter().any(|n| n.ends_with(".tmp")) || names.iter().filter(|n| n.ends_with(".snap")).count() > 1
}

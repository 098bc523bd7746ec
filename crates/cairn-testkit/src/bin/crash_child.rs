//! The child process of the kill test (`tests/kill.rs`): bank transfers in a loop, until it is killed.
//!
//! `crash_child DIR` opens the bank in `DIR`, creates the accounts if there are none, prints `ready`, then runs
//! writer threads that commit transfers for ever. Each transaction moves an amount between two accounts and inserts
//! the ledger entry that records it, under the next ledger key; once the commit returns `Ok` the writer prints
//! `ack <key>`. The keys are taken inside the transaction (under the writer lock), so they follow the commit order.
//! Every `COMPACT_EVERY` commits a writer also compacts. Any error ends the process with a message on stderr and a
//! non-zero code; a panic aborts it.

#[path = "crash_child/bank.rs"]
mod bank;

use std::convert::Infallible;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use rand::Rng;

use bank::{Bank, Transfer, ACCOUNTS, INITIAL_BALANCE};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Writer threads: enough for commits to queue behind one another's fsync (group commit).
const WRITERS: usize = 3;
/// Commits between explicit compactions, on top of the automatic ones.
const COMPACT_EVERY: u64 = 400;

/// What the writers share.
struct Shared {
    db: Bank,
    next_key: AtomicU64,
    commits: AtomicU64,
}

fn main() -> ExitCode {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let (Some(dir), Some(durability)) =
        (args.first(), args.get(1).and_then(|m| bank::durability(&m.to_string_lossy())))
    else {
        eprintln!("usage: crash_child DIR immediate|periodic|none");
        return ExitCode::from(2);
    };
    let Err(e) = run(Path::new(dir), durability);
    eprintln!("crash_child: {e}");
    ExitCode::FAILURE
}

/// Runs until a writer fails, and returns its error.
fn run(dir: &Path, durability: cairn::Durability) -> Result<Infallible, BoxError> {
    let db = bank::open(dir, durability)?;
    db.transaction(|tx| {
        if tx.accounts.is_empty() {
            for account in 0..ACCOUNTS {
                tx.accounts.insert(account, INITIAL_BALANCE)?;
            }
        }
        Ok::<_, cairn::Error>(())
    })?;
    let next_key = db.ledger.last().map_or(1, |(key, _)| key + 1);
    let shared = Arc::new(Shared { db, next_key: AtomicU64::new(next_key), commits: AtomicU64::new(0) });
    say("ready")?;

    let (errors, first_error) = mpsc::channel();
    for i in 0..WRITERS {
        let shared = shared.clone();
        let errors = errors.clone();
        std::thread::Builder::new().name(format!("writer-{i}")).spawn(move || {
            let Err(e) = write_forever(&shared);
            let _ = errors.send(e);
        })?;
    }
    drop(errors);
    Err(first_error.recv().unwrap_or_else(|_| "every writer stopped without an error".into()))
}

fn write_forever(shared: &Shared) -> Result<Infallible, BoxError> {
    let mut rng = rand::rng();
    loop {
        let from = rng.random_range(0..ACCOUNTS);
        let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
        let transfer = Transfer { from, to, amount: rng.random_range(1..=100) };
        let key = shared.db.transaction(|tx| {
            let key = shared.next_key.fetch_add(1, Ordering::Relaxed);
            let debited = tx.accounts.update(&from, |b| *b -= transfer.amount)?;
            let credited = tx.accounts.update(&to, |b| *b += transfer.amount)?;
            if debited.is_none() || credited.is_none() {
                return Err(BoxError::from(format!("account {from} or {to} is missing")));
            }
            tx.ledger.insert(key, transfer)?;
            Ok(key)
        })?;
        say(&format!("ack {key}"))?;
        if (shared.commits.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(COMPACT_EVERY) {
            shared.db.compact()?;
        }
    }
}

/// Prints one line to stdout and flushes it.
fn say(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

//! The child process: bank transfers from several writer threads, until it is killed.
//!
//! The child opens the bank, creates the accounts if there are none, prints `ready`, then runs `WRITERS` threads
//! that commit transfers for ever. Each transaction moves an amount between two accounts, records the writer's new
//! sequence number in `writers`, and inserts the ledger entry under the next ledger key; once the commit returns `Ok`
//! the writer prints `ack <key> <writer> <seq>`. The keys are taken inside the transaction (under the writer lock),
//! so they follow the commit order. Every `COMPACT_EVERY` commits a writer also compacts, on top of the automatic
//! compactions. Any error ends the process with a message on stderr; a panic aborts it.

use std::convert::Infallible;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use rand::Rng;

use crate::bank::{self, Bank, Transfer, ACCOUNTS, INITIAL_BALANCE};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Writer threads: enough for commits to queue behind one another's fsync (group commit).
const WRITERS: u32 = 3;
/// Commits between explicit compactions.
const COMPACT_EVERY: u64 = 400;

/// What the writers share.
struct Shared {
    db: Bank,
    next_key: AtomicU64,
    commits: AtomicU64,
}

/// Runs until a writer fails, and returns its error.
pub(crate) fn run(dir: &Path, durability: cairn::Durability) -> Result<Infallible, BoxError> {
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
    for writer in 0..WRITERS {
        let shared = shared.clone();
        let errors = errors.clone();
        std::thread::Builder::new().name(format!("writer-{writer}")).spawn(move || {
            let Err(e) = write_forever(&shared, writer);
            let _ = errors.send(e);
        })?;
    }
    drop(errors);
    Err(first_error.recv().unwrap_or_else(|_| "every writer stopped without an error".into()))
}

fn write_forever(shared: &Shared, writer: u32) -> Result<Infallible, BoxError> {
    let mut rng = rand::rng();
    let mut seq = shared.db.writers.get(&writer).unwrap_or(0);
    loop {
        seq += 1;
        let from = rng.random_range(0..ACCOUNTS);
        let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
        let transfer = Transfer { from, to, amount: rng.random_range(1..=100), writer, seq };
        let key = shared.db.transaction(|tx| {
            let key = shared.next_key.fetch_add(1, Ordering::Relaxed);
            let debited = tx.accounts.update(&from, |b| *b -= transfer.amount)?;
            let credited = tx.accounts.update(&to, |b| *b += transfer.amount)?;
            if debited.is_none() || credited.is_none() {
                return Err(BoxError::from(format!("account {from} or {to} is missing")));
            }
            tx.writers.insert(writer, seq)?;
            tx.ledger.insert(key, transfer)?;
            Ok(key)
        })?;
        say(&format!("ack {key} {writer} {seq}"))?;
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

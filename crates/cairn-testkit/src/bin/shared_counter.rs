//! `shared_counter`: one of several processes incrementing shared counters in one database in shared mode, for
//! `tests/shared_processes.rs`.
//!
//! ```text
//! shared_counter DIR ID OPS COMPACT_EVERY
//! ```
//!
//! Opens the database in `DIR` in shared mode (small segments and a low compaction threshold, so that rolls and
//! automatic compactions happen all the time) and commits `OPS` transactions, each a read-modify-write: it increments
//! the total (key 0), its own counter (key `ID + 1`, so `ID` < 99) and one of four shared counters (key `100 + n % 4`), and inserts
//! a note `(ID, n)` under a new auto id. After each commit returns it checks that it reads its own counter back
//! (a process reads its own writes) and that the total never went back, then prints `ack ID n NOTE_ID`. Every
//! `COMPACT_EVERY` commits (0: never) it also compacts. Any failure ends it with a message and exit code 3.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cairn::{Durability, Mode};

cairn::schema! {
    Counters {
        counters: <u32, u64>,
        notes: auto<(u32, u64)>,
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, id, ops, compact_every] = &args[..] else {
        eprintln!("usage: shared_counter DIR ID OPS COMPACT_EVERY");
        return ExitCode::from(2);
    };
    let parsed = (id.parse::<u32>(), ops.parse::<u64>(), compact_every.parse::<u64>());
    let (Ok(id), Ok(ops), Ok(compact_every)) = parsed else {
        eprintln!("shared_counter: ID, OPS and COMPACT_EVERY are numbers");
        return ExitCode::from(2);
    };
    match run(PathBuf::from(dir), id, ops, compact_every) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shared_counter {id}: {e}");
            ExitCode::from(3)
        }
    }
}

fn run(dir: PathBuf, id: u32, ops: u64, compact_every: u64) -> Result<(), BoxError> {
    let db = Counters::builder()
        .mode(Mode::Shared)
        .durability(Durability::Immediate)
        .segment_size(16 << 10)
        .compact_after(Some(64 << 10))
        .open(&dir)?;
    let own = id + 1;
    let mut out = std::io::stdout().lock();
    let mut last_total = 0;
    for n in 0..ops {
        let note = db.transaction(|t| {
            for key in [0, own, 100 + (n % 4) as u32] {
                let v = t.counters.get(&key).unwrap_or(0);
                t.counters.insert(key, v + 1)?;
            }
            t.notes.insert_new((id, n))
        })?;
        let mine = db.counters.get(&own).unwrap_or(0);
        let total = db.counters.get(&0).unwrap_or(0);
        if mine < n + 1 || total < last_total {
            return Err(format!("after commit {n}: own counter {mine}, total {total} (was {last_total})").into());
        }
        last_total = total;
        writeln!(out, "ack {id} {n} {note}")?;
        out.flush()?;
        if compact_every > 0 && n % compact_every == compact_every - 1 {
            db.db().compact()?;
        }
    }
    Ok(())
}

//! `crashloop`: kill -9 a process that writes to a Cairn database, again and again, and check after each kill that
//! nothing acknowledged is lost and no transaction is half applied.
//!
//! ```text
//! crashloop [--kills N] [--seed S] [--durability immediate|periodic|none] [--dir DIR] [--verbose]
//! ```
//!
//! Each round starts a child process on the database in `DIR` (by default a new `crashloop-PID` directory in the
//! system's temporary directory, removed after a run that passes and kept after one that fails), SIGKILLs it at a
//! random moment, reopens the database in this process and checks it. The child is this same executable, run as `crashloop --child DIR DURABILITY`, so the one
//! binary is all there is to build and copy.
//!
//! The child (`child`) commits bank transfers from three writer threads, each transaction moving an amount between
//! two accounts, advancing the writer's own sequence number and appending a ledger entry under the next ledger key,
//! and prints `ack <key> <writer> <seq>` once a commit returns. Small segments and a low compaction threshold keep
//! segment rolls and compactions happening all the time. The checker (`check`) then verifies that every
//! acknowledged commit and every entry an earlier reopen found is there, that the balances, the writers' sequence
//! numbers and the ledger agree (no half-applied transaction), and that the ledger keys and each writer's sequence
//! numbers are gap-free prefixes. A process crash loses nothing in any durability mode: an acknowledged commit was
//! handed to the OS.
//!
//! The run ends with one line, `kills: N, acknowledged commits checked: M, lost: L, half-applied: H`, preceded by a
//! line of details (seed, kills before the child was ready or in the middle of a compaction, ...). It stops at the
//! first failure, which it describes on stderr (what, at which kill, and where the database is), and exits with 1;
//! 0 means every check passed; 2 is a usage error. `--seed` fixes the kill timings (not the writers' interleaving);
//! the default is random and printed. `--verbose` prints a line per kill.

mod bank;
mod check;
mod child;
mod parent;
mod process;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: crashloop [--kills N] [--seed S] [--durability immediate|periodic|none] [--dir DIR] \
                     [--verbose]";
/// Kills when `--kills` is not given.
const DEFAULT_KILLS: u64 = 100;
/// The exit code of a child whose writer failed; never 1, which is how a killed process ends on Windows.
const CHILD_FAILED: u8 = 3;

/// The options of a kill loop.
pub(crate) struct Options {
    pub(crate) kills: u64,
    pub(crate) seed: u64,
    /// The child's durability, by name (see `bank::durability`).
    pub(crate) durability: String,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) verbose: bool,
}

/// What the command line asks for.
enum Mode {
    Loop(Options),
    Child { dir: PathBuf, durability: cairn::Durability },
    Help,
}

fn main() -> ExitCode {
    match parse(std::env::args_os().skip(1)) {
        Ok(Mode::Loop(options)) => parent::run(&options),
        Ok(Mode::Child { dir, durability }) => {
            let report = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                report(info);
                std::process::abort();
            }));
            let Err(e) = child::run(&dir, durability);
            eprintln!("crashloop child: {e}");
            ExitCode::from(CHILD_FAILED)
        }
        Ok(Mode::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crashloop: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse(mut args: impl Iterator<Item = OsString>) -> Result<Mode, String> {
    let mut options = Options {
        kills: DEFAULT_KILLS,
        seed: rand::random(),
        durability: "immediate".into(),
        dir: None,
        verbose: false,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.to_str() {
            Some("--kills") => options.kills = number(&value("--kills")?)?,
            Some("--seed") => options.seed = number(&value("--seed")?)?,
            Some("--durability") => options.durability = durability(value("--durability")?)?.0,
            Some("--dir") => options.dir = Some(value("--dir")?.into()),
            Some("--verbose") => options.verbose = true,
            Some("--help" | "-h") => return Ok(Mode::Help),
            Some("--child") => {
                let (Some(dir), Some(name), None) = (args.next(), args.next(), args.next()) else {
                    return Err("--child takes a directory and a durability, and nothing else".into());
                };
                return Ok(Mode::Child { dir: dir.into(), durability: durability(name)?.1 });
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Mode::Loop(options))
}

/// A durability by name, and what it means.
fn durability(name: OsString) -> Result<(String, cairn::Durability), String> {
    let name = name.into_string().map_err(|name| format!("unknown durability {name:?}"))?;
    let durability = bank::durability(&name).ok_or_else(|| format!("unknown durability {name:?}"))?;
    Ok((name, durability))
}

/// A decimal or `0x` hexadecimal number.
fn number(text: &OsString) -> Result<u64, String> {
    let text = text.to_string_lossy();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|e| format!("{text:?} is not a number: {e}"))
}

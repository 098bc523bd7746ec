//! Kill -9: runs `crashloop` (see its docs in `src/bin/crashloop/main.rs`), which SIGKILLs a writing child process
//! again and again and checks each reopened database, and asserts on its last line: the number of kills asked for,
//! some acknowledged commits checked, nothing lost, nothing half-applied.
//!
//! `CAIRN_KILLS` sets the number of kills (default 50 with `Immediate`, a fifth of it but at least 10 with `Periodic`
//! and `None`), `CAIRN_SEED` the seed of the kill timings.
#![cfg(unix)]

use std::process::Command;

const DEFAULT_KILLS: u64 = 50;
const DEFAULT_SEED: u64 = 0x6b69_6c6c;

#[test]
fn kill_9_loses_no_acknowledged_commit_and_applies_no_half_transaction() {
    crashloop("immediate", env_or("CAIRN_KILLS", DEFAULT_KILLS));
}

/// A crash of the process alone loses nothing in any durability mode: an acknowledged commit was handed to the OS.
#[test]
fn kill_9_loses_nothing_with_periodic_or_no_fsync() {
    let kills = (env_or("CAIRN_KILLS", DEFAULT_KILLS) / 5).max(10);
    crashloop("periodic", kills);
    crashloop("none", kills);
}

fn crashloop(durability: &str, kills: u64) {
    let seed = env_or("CAIRN_SEED", DEFAULT_SEED);
    let out = Command::new(env!("CARGO_BIN_EXE_crashloop"))
        .args(["--kills", &kills.to_string(), "--seed", &seed.to_string(), "--durability", durability])
        .output()
        .expect("run crashloop");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    let report = format!("crashloop --durability {durability} ended with {}:\n{stdout}{stderr}", out.status);
    assert!(out.status.success(), "{report}");
    let [killed, checked, lost, half_applied] = stdout.lines().last().and_then(counts).expect(&report);
    assert_eq!((killed, lost, half_applied), (kills, 0, 0), "{report}");
    assert!(checked > 0, "no acknowledged commit was checked\n{report}");
}

/// The counts of `kills: N, acknowledged commits checked: M, lost: L, half-applied: H`.
fn counts(line: &str) -> Option<[u64; 4]> {
    let names = ["kills", "acknowledged commits checked", "lost", "half-applied"];
    let mut fields = line.split(", ");
    let mut counts = [0; 4];
    for (name, count) in names.iter().zip(&mut counts) {
        *count = fields.next()?.strip_prefix(name)?.strip_prefix(": ")?.parse().ok()?;
    }
    fields.next().is_none().then_some(counts)
}

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|e| panic!("{name}={value:?}: {e}")),
        Err(_) => default,
    }
}

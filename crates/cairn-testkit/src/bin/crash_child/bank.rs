//! The schema of the kill test, shared by `crash_child` and `tests/kill.rs` (which includes this file by path).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The number of accounts, numbered `0..ACCOUNTS`.
pub(crate) const ACCOUNTS: u32 = 10;
/// Every account's balance before the first transfer.
pub(crate) const INITIAL_BALANCE: i64 = 1000;

/// One entry of the ledger: `amount` moved from account `from` to account `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Transfer {
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) amount: i64,
}

cairn::schema! {
    /// Ten accounts and the ledger of every transfer between them.
    pub(crate) Bank {
        /// Balance by account number.
        accounts: <u32, i64>,
        /// Every transfer, by a key that grows by one per commit, across restarts: the keys are `1..=len`.
        ledger: ordered<u64, Transfer>,
    }
}

/// The durability a child runs with, by the name the test passes on its command line.
#[allow(dead_code)] // The test only opens with `Immediate`.
pub(crate) fn durability(name: &str) -> Option<cairn::Durability> {
    match name {
        "immediate" => Some(cairn::Durability::Immediate),
        "periodic" => Some(cairn::Durability::Periodic(std::time::Duration::from_millis(5))),
        "none" => Some(cairn::Durability::None),
        _ => None,
    }
}

/// Opens the bank in `dir` with `durability`, and segments and a compaction threshold small enough that
/// segment rolls (every ~40 commits) and automatic compactions (every ~170) happen in every run.
pub(crate) fn open(dir: &Path, durability: cairn::Durability) -> cairn::Result<Bank> {
    Bank::builder().durability(durability).segment_size(4 * 1024).compact_after(Some(16 * 1024)).open(dir)
}

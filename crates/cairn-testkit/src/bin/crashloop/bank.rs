//! The schema both processes share, and how they open it.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The number of accounts, numbered `0..ACCOUNTS`.
pub(crate) const ACCOUNTS: u32 = 10;
/// Every account's balance before the first transfer.
pub(crate) const INITIAL_BALANCE: i64 = 1000;

/// One entry of the ledger: `amount` moved from account `from` to account `to`, by the `seq`-th commit of writer
/// `writer` (counted from 1, across restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Transfer {
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) amount: i64,
    pub(crate) writer: u32,
    pub(crate) seq: u64,
}

cairn::schema! {
    /// Ten accounts, the ledger of every transfer between them, and how far each writer got.
    pub(crate) Bank {
        /// Balance by account number.
        accounts: <u32, i64>,
        /// The `seq` of each writer's last transfer: writer `w`'s ledger entries have the sequence `1..=writers[w]`.
        writers: <u32, u64>,
        /// Every transfer, by a key that grows by one per commit, across restarts: the keys are `1..=len`.
        ledger: ordered<u64, Transfer>,
    }
}

/// The durability the child runs with, by its name on the command line.
pub(crate) fn durability(name: &str) -> Option<cairn::Durability> {
    match name {
        "immediate" => Some(cairn::Durability::Immediate),
        "periodic" => Some(cairn::Durability::Periodic(std::time::Duration::from_millis(5))),
        "none" => Some(cairn::Durability::None),
        _ => None,
    }
}

/// Opens the bank in `dir` with `durability`, and segments and a compaction threshold small enough that segment rolls
/// (every few dozen commits) and automatic compactions (every few hundred) happen in every run.
pub(crate) fn open(dir: &Path, durability: cairn::Durability) -> cairn::Result<Bank> {
    Bank::builder().durability(durability).segment_size(4 * 1024).compact_after(Some(16 * 1024)).open(dir)
}

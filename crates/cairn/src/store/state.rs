//! The database state that readers see: every table, at one sequence number.

use std::any::Any;

use super::index::TableClaims;
use super::{Store, TableStore};

/// All tables of the schema, by position, as of transaction `seq`.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) tables: Vec<Box<dyn TableStore>>,
    pub(crate) seq: u64,
}

impl State {
    /// The table at `pos`, with the store type it was opened with.
    pub(crate) fn table<S: Store>(&self, pos: usize) -> &S {
        let table: &dyn Any = &*self.tables[pos];
        table.downcast_ref::<S>().expect("a table's store type is fixed when the database opens")
    }

    /// Index `i` of the table at `pos`, with the store type the schema declared it with.
    pub(crate) fn index<T: 'static>(&self, pos: usize, i: usize) -> &T {
        self.tables[pos].index(i).downcast_ref::<T>().expect("an index's store type is fixed by the schema")
    }
}

/// A committed transaction on its way to readers: its sequence number, a write set per table it touched, and the
/// claims it made on the unique indexes of those tables (see `store::index`).
pub(crate) struct Committed {
    pub(crate) seq: u64,
    pub(crate) writes: Vec<(usize, Box<dyn Any + Send + Sync>)>,
    pub(crate) claims: Vec<(usize, TableClaims)>,
}

impl Committed {
    /// This transaction's writes to the table at `pos`, if it has any.
    pub(crate) fn writes<S: Store>(&self, pos: usize) -> Option<&S::Writes> {
        self.writes.iter().find(|(p, _)| *p == pos).and_then(|(_, w)| w.downcast_ref::<S::Writes>())
    }

    /// This transaction's claims on the unique indexes of the table at `pos`, if it made any.
    pub(crate) fn claims(&self, pos: usize) -> Option<&TableClaims> {
        self.claims.iter().find(|(p, _)| *p == pos).map(|(_, c)| c)
    }
}

impl State {
    /// Applies a committed transaction.
    pub(crate) fn apply(&mut self, committed: &Committed) {
        for (pos, writes) in &committed.writes {
            self.tables[*pos].apply(&**writes);
        }
        self.seq = committed.seq;
    }
}

//! The database state that readers see: every table, at one sequence number.

use std::any::{Any, TypeId};

use super::index::TableClaims;
use super::{Store, TableStore};

/// All tables of the schema, by position, as of transaction `seq`.
#[derive(Default)]
pub(crate) struct State {
    /// Each table with the type id of its concrete store, taken from the box itself in `new` (neither changes
    /// after), so that a lookup checks its table's type with one comparison instead of a virtual call (`table`).
    tables: Vec<(TypeId, Box<dyn TableStore>)>,
    pub(crate) seq: u64,
}

impl State {
    /// The state of these tables (by position) as of transaction `seq`.
    pub(crate) fn new(tables: Vec<Box<dyn TableStore>>, seq: u64) -> Self {
        let tables = tables.into_iter().map(|t| ((&*t as &dyn Any).type_id(), t)).collect();
        State { tables, seq }
    }

    /// The number of records in every table.
    pub(crate) fn record_count(&self) -> usize {
        self.tables.iter().map(|(_, t)| t.records()).sum()
    }

    /// The table at `pos`, type-erased.
    pub(crate) fn store(&self, pos: usize) -> &dyn TableStore {
        &*self.tables[pos].1
    }

    /// The table at `pos`, with the store type it was opened with.
    ///
    /// This is on every read's path. `Any::downcast_ref` would cost a virtual call (`type_id`) per lookup, which in
    /// a loop of random reads delays the next lookup's cache misses; the type recorded at `new` is compared instead
    /// (1M random reads: see ARCHITECTURE.md, issue 3).
    #[inline(always)]
    pub(crate) fn table<S: Store>(&self, pos: usize) -> &S {
        let (ty, table) = &self.tables[pos];
        assert!(*ty == TypeId::of::<S>(), "a table's store type is fixed when the database opens");
        let table: &dyn TableStore = &**table;
        // SAFETY: `ty` is the type id of the value behind `table` (both set in `new`; `tables` is private and never
        // replaced), and it equals `S`'s, so the trait object's data pointer points at a live `S`, borrowed for as
        // long as `self`.
        #[allow(unsafe_code)]
        unsafe {
            &*(table as *const dyn TableStore as *const S)
        }
    }

    /// [`State::table`] without the type check, for the read path (each lookup's instructions delay the next
    /// lookup's cache misses: ARCHITECTURE.md, issue 3). Panics if there is no table at `pos` (an emptied state).
    ///
    /// # Safety
    ///
    /// `table::<S>(pos)` returned on some state of the same database. Every state of one database holds, at each
    /// position, a store of one type or no table at all: states are built only from the schema's table
    /// definitions (`db::open`, `db::shared::follow`), or emptied (`State::default`, when the writer side drops).
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn table_checked_before<S: Store>(&self, pos: usize) -> &S {
        let (ty, table) = &self.tables[pos];
        debug_assert!(*ty == TypeId::of::<S>(), "a table's store type is fixed when the database opens");
        let table: &dyn TableStore = &**table;
        // SAFETY: by the caller's promise and the invariant above, the value behind `table` is an `S`.
        unsafe { &*(table as *const dyn TableStore as *const S) }
    }

    /// Index `i` of the table at `pos`, with the store type the schema declared it with.
    pub(crate) fn index<T: 'static>(&self, pos: usize, i: usize) -> &T {
        self.tables[pos].1.index(i).downcast_ref::<T>().expect("an index's store type is fixed by the schema")
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
            self.tables[*pos].1.apply(&**writes);
        }
        self.seq = committed.seq;
    }
}

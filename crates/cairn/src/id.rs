//! Auto-id tables: ordered tables keyed by [`Id<V>`], whose ids the database allocates.
//!
//! Each such table has a counter, the next id to hand out, kept in Cairn's own ordered table `cairn.ids` (table name
//! -> next id) and written in the same transaction as the records that use the ids, as SQLite keeps AUTOINCREMENT
//! counters in `sqlite_sequence`. So an allocation is exactly as durable as its transaction: an aborted or lost
//! transaction hands nothing out, and no id that a committed transaction took, used or not, is handed out again.
//! The next id is also never below the table's largest key plus one, so ids inserted by hand (from a reserved range,
//! say) are never handed out again either. The counter costs no format change: it is an ordinary table whose name no
//! schema can declare (table names are Rust identifiers; this one has a dot).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Result;
use crate::schema::{TableDef, Value};
use crate::table::OrderedTable;
use crate::txn::TxnOrderedTable;

/// The name of Cairn's table of id counters.
pub(crate) const TABLE: &str = "cairn.ids";

/// The definition of the table of id counters, appended to every schema's tables.
pub(crate) fn table_def() -> TableDef {
    TableDef::ordered::<String, u64>(TABLE, Vec::new())
}

/// The id of a record of an auto-id table of `T` values: a `u64` that says which table it belongs to. Ids start at 1
/// and grow; one is never handed out twice. Stored as a plain `u64`.
pub struct Id<T> {
    raw: u64,
    _table: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    /// The id with this number (for ids read from elsewhere, such as a URL).
    pub const fn from_raw(raw: u64) -> Self {
        Id { raw, _table: PhantomData }
    }

    /// The id's number.
    pub const fn get(self) -> u64 {
        self.raw
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Id<T> {}

impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<T> Eq for Id<T> {}

impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.raw.cmp(&other.raw)
    }
}

impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.raw)
    }
}

impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.raw, f)
    }
}

impl<T> Serialize for Id<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Id<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        u64::deserialize(deserializer).map(Id::from_raw)
    }
}

/// A range of ids reserved at once (for example granted to a client that creates records offline): every id in it
/// is the caller's to insert with, and the database never hands any of them out.
pub struct IdRange<T> {
    start: u64,
    end: u64,
    _table: PhantomData<fn() -> T>,
}

impl<T> IdRange<T> {
    pub(crate) fn new(start: u64, end: u64) -> Self {
        IdRange { start, end, _table: PhantomData }
    }

    /// The first id of the range.
    pub fn start(&self) -> Id<T> {
        Id::from_raw(self.start)
    }

    /// The id just past the range.
    pub fn end(&self) -> Id<T> {
        Id::from_raw(self.end)
    }

    /// Whether `id` is in the range.
    pub fn contains(&self, id: Id<T>) -> bool {
        (self.start..self.end).contains(&id.raw)
    }
}

impl<T> fmt::Debug for IdRange<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdRange({}..{})", self.start, self.end)
    }
}

impl<T> Iterator for IdRange<T> {
    type Item = Id<T>;

    fn next(&mut self) -> Option<Id<T>> {
        (self.start < self.end).then(|| {
            self.start += 1;
            Id::from_raw(self.start - 1)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.end - self.start).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl<V: Value> OrderedTable<Id<V>, V> {
    /// Inserts `value` under a new id, as a transaction of its own, and returns the id.
    pub fn insert_new(&self, value: V) -> Result<Id<V>> {
        self.write(|t| t.insert_new(value))
    }

    /// Reserves `count` ids at once, as a transaction of its own: none of them will be handed out by `insert_new`;
    /// insert records under them with `insert`.
    pub fn reserve_ids(&self, count: u64) -> Result<IdRange<V>> {
        self.write(|t| t.reserve_ids(count))
    }
}

impl<V: Value> TxnOrderedTable<'_, Id<V>, V> {
    /// Inserts `value` under a new id and returns the id. The id is taken only if the transaction commits.
    pub fn insert_new(&self, value: V) -> Result<Id<V>> {
        let id = Id::from_raw(self.tx.allocate_ids::<V>(self.pos, 1)?);
        self.insert(id, value)?;
        Ok(id)
    }

    /// Reserves `count` ids, if the transaction commits: see [`OrderedTable::reserve_ids`].
    pub fn reserve_ids(&self, count: u64) -> Result<IdRange<V>> {
        let start = self.tx.allocate_ids::<V>(self.pos, count)?;
        Ok(IdRange::new(start, start + count))
    }
}

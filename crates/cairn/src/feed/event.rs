//! What a subscription delivers: one transaction at a time, for one table ([`TableEvent`]) or for the whole database
//! ([`Commit`]), made of [`Change`]s.

use std::fmt;
use std::sync::Arc;

use super::decode::{FeedStore, Txn};
use crate::store::Shared;

/// One key's final write in one transaction: its new value, or its removal.
///
/// Only the last write of a transaction to a key is a change (a key written twice yields one change, with the second
/// value). A removal may name a key that did not exist before the transaction, if the transaction inserted it and
/// then removed it. Changes from the live feed share the committed record with the tables, so they cost no copy.
pub struct Change<K, V>(Kind<K, V>);

enum Kind<K, V> {
    /// The record written.
    Written(Shared<K, V>),
    /// The record removed, as the transaction found it (live changes).
    Removed(Shared<K, V>),
    /// The key removed (changes read back from the log, which records only the key).
    RemovedKey(K),
}

impl<K, V> Change<K, V> {
    pub(crate) fn written(entry: Shared<K, V>) -> Self {
        Change(Kind::Written(entry))
    }

    pub(crate) fn removed_key(key: K) -> Self {
        Change(Kind::RemovedKey(key))
    }

    /// A write-set entry: the record written, or for a removal the record removed.
    pub(crate) fn from_write(entry: Shared<K, V>, removed: bool) -> Self {
        Change(if removed { Kind::Removed(entry) } else { Kind::Written(entry) })
    }

    /// The key.
    pub fn key(&self) -> &K {
        match &self.0 {
            Kind::Written(e) | Kind::Removed(e) => &e.key,
            Kind::RemovedKey(k) => k,
        }
    }

    /// The new value, or `None` if the key was removed.
    pub fn value(&self) -> Option<&V> {
        match &self.0 {
            Kind::Written(e) => Some(&e.value),
            Kind::Removed(_) | Kind::RemovedKey(_) => None,
        }
    }

    /// Whether the key was removed.
    pub fn is_removal(&self) -> bool {
        self.value().is_none()
    }
}

impl<K: Clone, V> Clone for Change<K, V> {
    fn clone(&self) -> Self {
        Change(match &self.0 {
            Kind::Written(e) => Kind::Written(e.clone()),
            Kind::Removed(e) => Kind::Removed(e.clone()),
            Kind::RemovedKey(k) => Kind::RemovedKey(k.clone()),
        })
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Change<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Change").field("key", self.key()).field("value", &self.value()).finish()
    }
}

/// One transaction's changes to one table, delivered by a table's subscription
/// ([`Table::subscribe`](crate::Table::subscribe)). A transaction that did not write the table yields no event.
pub struct TableEvent<K, V> {
    pub(crate) seq: u64,
    pub(crate) changes: Vec<Change<K, V>>,
}

impl<K, V> TableEvent<K, V> {
    /// The transaction's sequence number: resume after this event with `subscribe_from(seq)`.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The changes, one per key: in the order the transaction first wrote each key for a hash table, in key order
    /// for an ordered table.
    pub fn changes(&self) -> &[Change<K, V>] {
        &self.changes
    }

    /// The changes, owned.
    pub fn into_changes(self) -> Vec<Change<K, V>> {
        self.changes
    }
}

impl<K: Clone, V> Clone for TableEvent<K, V> {
    fn clone(&self) -> Self {
        TableEvent { seq: self.seq, changes: self.changes.clone() }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for TableEvent<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableEvent").field("seq", &self.seq).field("changes", &self.changes).finish()
    }
}

/// One transaction of the whole database, delivered by [`Db::subscribe`](crate::Db::subscribe): its sequence
/// number, the tables it wrote, and their changes typed through the schema's table handles. Cheap to clone.
#[derive(Clone)]
pub struct Commit {
    pub(crate) txn: Txn,
    /// The names of the tables the feed covers, by position.
    pub(crate) names: Arc<[&'static str]>,
}

impl Commit {
    /// The transaction's sequence number: resume after this commit with `subscribe_from(seq)`.
    pub fn seq(&self) -> u64 {
        self.txn.seq()
    }

    /// The names of the tables the transaction wrote, in schema order.
    pub fn tables(&self) -> Vec<&'static str> {
        self.txn.positions().into_iter().filter_map(|pos| self.names.get(pos).copied()).collect()
    }

    /// The transaction's changes to `table` (a handle of the schema, `&db.accounts`), as in
    /// [`TableEvent::changes`]; empty if it did not write that table. The table is found by its name.
    pub fn changes<T: TableHandle>(&self, table: &T) -> Vec<Change<T::Key, T::Value>> {
        table.__changes(self)
    }

    /// The changes to the table named `name`, typed as store `S`.
    pub(crate) fn changes_of<S: FeedStore>(&self, name: &str) -> Vec<Change<S::K, S::V>> {
        let Some(pos) = self.names.iter().position(|n| *n == name) else { return Vec::new() };
        self.txn.changes::<S>(pos).unwrap_or_default()
    }
}

impl fmt::Debug for Commit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Commit").field("seq", &self.seq()).field("tables", &self.tables()).finish()
    }
}

mod sealed {
    pub trait Sealed {}
    impl<K, V> Sealed for crate::Table<K, V> {}
    impl<K, V> Sealed for crate::OrderedTable<K, V> {}
}

/// A typed table handle of a schema ([`Table`](crate::Table) or [`OrderedTable`](crate::OrderedTable)): what
/// [`Commit::changes`] takes to type a transaction's changes. Implemented by Cairn only.
pub trait TableHandle: sealed::Sealed {
    /// The table's key type.
    type Key;
    /// The table's value type.
    type Value;

    /// Used by [`Commit::changes`].
    #[doc(hidden)]
    fn __changes(&self, commit: &Commit) -> Vec<Change<Self::Key, Self::Value>>;
}

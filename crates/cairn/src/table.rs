//! Typed table handles (`Table`, `OrderedTable`) and read views over one published state (`TableRead`,
//! `OrderedTableRead`).
//!
//! Point reads go straight to the published state and never wait. `read` lends a consistent view for as long as its
//! closure runs: iterate it, look keys up, all at one state. `iter` and `range` on a handle take a snapshot of entry
//! pointers first, so the iterator they return holds no read epoch and never delays a writer.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::sync::Arc;

use crate::db::Inner;
use crate::error::Result;
use crate::schema::{Key, Value};
use crate::store::hash::HashStore;
use crate::store::ordered::OrderedStore;
use crate::store::state::State;
use crate::store::{Shared, Store};
use crate::txn::{TxnOrderedTable, TxnTable};

/// Built by `schema!` from an open database.
#[doc(hidden)]
pub trait FromDb {
    /// The handle on the table at `pos`.
    fn from_db(db: &crate::Db, pos: usize) -> Self;
}

/// One published state of every table, for the `read` of a `schema!` struct.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct StateRef<'r>(pub(crate) &'r State);

impl fmt::Debug for StateRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateRef").field("seq", &self.0.seq).finish()
    }
}

/// An owned snapshot iterator: yields copies of the records that were in the table when it was created.
pub struct Iter<K, V> {
    pub(crate) entries: std::vec::IntoIter<Shared<K, V>>,
}

impl<K, V> Iter<K, V> {
    pub(crate) fn new(entries: Vec<Shared<K, V>>) -> Self {
        Iter { entries: entries.into_iter() }
    }
}

impl<K: Clone, V: Clone> Iterator for Iter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        self.entries.next().map(|e| (e.key.clone(), e.value.clone()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl<K: Clone, V: Clone> DoubleEndedIterator for Iter<K, V> {
    fn next_back(&mut self) -> Option<(K, V)> {
        self.entries.next_back().map(|e| (e.key.clone(), e.value.clone()))
    }
}

impl<K: Clone, V: Clone> ExactSizeIterator for Iter<K, V> {}

impl<K, V> fmt::Debug for Iter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("remaining", &self.entries.len()).finish()
    }
}

macro_rules! define_table {
    (
        $(#[$doc:meta])*
        $name:ident, $(#[$rdoc:meta])* $read:ident, $store:ident, $txn:ident, $seeds:ty,
        key: [$($kb:tt)+], lookup: [$($qb:tt)+]
    ) => {
        $(#[$doc])*
        pub struct $name<K, V> {
            pub(crate) inner: Arc<Inner>,
            pub(crate) pos: usize,
            /// The table's seeds (every store of it in this database has the same: `hasher::Seeds`), so that a
            /// lookup hashes its key while it finds the table instead of after (ARCHITECTURE.md, issue 3).
            seeds: $seeds,
            _types: PhantomData<fn() -> (K, V)>,
        }

        impl<K: Key + $($kb)+, V: Value> FromDb for $name<K, V> {
            /// Checks the table's store type once, here, so that reads need not (`with`), and copies its seeds.
            fn from_db(db: &crate::Db, pos: usize) -> Self {
                let seeds = db.inner.read(|state| state.table::<$store<K, V>>(pos).seeds().clone());
                $name { inner: db.inner.clone(), pos, seeds, _types: PhantomData }
            }
        }

        impl<K, V> fmt::Debug for $name<K, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("name", &self.inner.tables[self.pos].name).finish()
            }
        }

        impl<K: Key + $($kb)+, V: Value> $name<K, V> {
            #[inline(always)]
            pub(crate) fn with<R>(&self, f: impl FnOnce(&$store<K, V>) -> R) -> R {
                // SAFETY: `from_db`, the only constructor, checked the type on a state of this database.
                #[allow(unsafe_code)]
                self.inner.read(|state| f(unsafe { state.table_checked_before::<$store<K, V>>(self.pos) }))
            }

            /// Looks `key` up, hashing it (from the handle's seeds) before the table is found.
            #[inline(always)]
            fn find_with<Q, R>(&self, key: &Q, f: impl FnOnce(Option<&Shared<K, V>>) -> R) -> R
            where
                K: Borrow<Q>,
                Q: ?Sized + $($qb)+,
            {
                let hash = self.seeds.hash_one(key);
                self.with(|t| {
                    debug_assert!(t.seeds() == &self.seeds, "every store of a table shares its seeds");
                    f(t.find_hashed(hash, key))
                })
            }

            pub(crate) fn write<R>(&self, f: impl FnOnce(&$txn<'_, K, V>) -> Result<R>) -> Result<R> {
                self.inner.write(None, |tx| f(&$txn::__new(tx, self.pos)))
            }

            /// The table's name: its identity on disk.
            pub fn name(&self) -> &'static str {
                self.inner.tables[self.pos].name
            }

            /// A copy of the value for `key`.
            pub fn get<Q>(&self, key: &Q) -> Option<V>
            where
                K: Borrow<Q>,
                Q: ?Sized + $($qb)+,
                V: Clone,
            {
                self.find_with(key, |e| e.map(|e| e.value.clone()))
            }

            /// Lends the value for `key` to `f`, without copying it.
            #[inline]
            pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
            where
                K: Borrow<Q>,
                Q: ?Sized + $($qb)+,
            {
                self.find_with(key, |e| e.map(|e| f(&e.value)))
            }

            /// Whether `key` is present.
            pub fn contains_key<Q>(&self, key: &Q) -> bool
            where
                K: Borrow<Q>,
                Q: ?Sized + $($qb)+,
            {
                self.find_with(key, |e| e.is_some())
            }

            /// The number of records.
            pub fn len(&self) -> usize {
                self.with(|t| Store::len(t))
            }

            /// Whether the table has no records.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Lends a consistent view of the table to `f`: lookups and iteration inside it all see one state, and
            /// iteration borrows records instead of copying them. Writers are not blocked, but a commit published
            /// while `f` runs waits for `f` to return before its second half is applied, so keep `f` short.
            pub fn read<R>(&self, f: impl FnOnce(&$read<'_, K, V>) -> R) -> R {
                self.with(|t| f(&$read { store: t }))
            }

            /// Inserts or replaces the value for `key`, as a transaction of its own.
            pub fn insert(&self, key: K, value: V) -> Result<()> {
                self.write(|t| t.insert(key, value))
            }

            /// Removes `key` as a transaction of its own, returning its value if it was present.
            pub fn remove(&self, key: &K) -> Result<Option<V>>
            where
                V: Clone,
            {
                self.write(|t| t.remove(key))
            }

            /// Removes `key` as a transaction of its own, without copying its value out; whether it was present.
            pub fn delete(&self, key: &K) -> Result<bool> {
                self.write(|t| t.delete(key))
            }

            /// Changes the value for `key` in a transaction of its own: `f` edits a copy, which replaces the value.
            /// Returns `None` (and writes nothing) if the key is absent.
            pub fn update<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> Result<Option<R>>
            where
                V: Clone,
            {
                self.write(|t| t.update(key, f))
            }
        }

        $(#[$rdoc])*
        pub struct $read<'r, K, V> {
            store: &'r $store<K, V>,
        }

        impl<K, V> fmt::Debug for $read<'_, K, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($read)).finish_non_exhaustive()
            }
        }

        impl<'r, K: Key + $($kb)+, V: Value> $read<'r, K, V> {
            /// Used by `schema!`.
            #[doc(hidden)]
            pub fn __new(state: StateRef<'r>, pos: usize) -> Self {
                $read { store: state.0.table::<$store<K, V>>(pos) }
            }

            /// The value for `key`, borrowed.
            pub fn get<Q>(&self, key: &Q) -> Option<&'r V>
            where
                K: Borrow<Q>,
                Q: ?Sized + $($qb)+,
            {
                self.store.find_by(key).map(|e| &e.value)
            }

            /// Whether `key` is present.
            pub fn contains_key<Q>(&self, key: &Q) -> bool
            where
                K: Borrow<Q>,
                Q: ?Sized + $($qb)+,
            {
                self.store.find_by(key).is_some()
            }

            /// The number of records.
            pub fn len(&self) -> usize {
                Store::len(self.store)
            }

            /// Whether the table has no records.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }
    };
}

define_table!(
    /// A hash table of a schema: `get` in constant time, iteration in no particular order.
    ///
    /// Every method that writes is a transaction of its own, durable per the database's [`Durability`](crate::Durability) when it
    /// returns; group several writes with the schema's `transaction`.
    Table,
    /// A consistent, borrowed view of a hash table, lent by [`Table::read`] or the schema's `read`.
    TableRead, HashStore, TxnTable, crate::store::hasher::Seeds,
    key: [Hash + Eq], lookup: [Hash + Eq]
);

define_table!(
    /// An ordered table of a schema: iteration and `range` in key order.
    ///
    /// Every method that writes is a transaction of its own, durable per the database's [`Durability`](crate::Durability) when it
    /// returns; group several writes with the schema's `transaction`.
    OrderedTable,
    /// A consistent, borrowed view of an ordered table, lent by [`OrderedTable::read`] or the schema's `read`.
    OrderedTableRead, OrderedStore, TxnOrderedTable, crate::store::ordered::Unhashed,
    key: [Ord], lookup: [Ord]
);

impl<K: Key + Hash + Eq, V: Value> Table<K, V> {
    /// A snapshot of every record, in no particular order. Taking it costs a pass over the table's pointers; the
    /// iterator then copies one record at a time and never delays a writer.
    pub fn iter(&self) -> Iter<K, V> {
        Iter { entries: self.with(|t| t.entries().cloned().collect::<Vec<_>>()).into_iter() }
    }
}

impl<'r, K: Key + Hash + Eq, V: Value> TableRead<'r, K, V> {
    /// Every record, borrowed, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&'r K, &'r V)> + 'r {
        self.store.entries().map(|e| (&e.key, &e.value))
    }
}

impl<K: Key + Ord, V: Value> OrderedTable<K, V> {
    /// A snapshot of every record in key order; see [`Table::iter`].
    pub fn iter(&self) -> Iter<K, V> {
        self.range::<K, _>(..)
    }

    /// A snapshot of the records whose keys fall in `range`, in key order.
    pub fn range<Q, R>(&self, range: R) -> Iter<K, V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        Iter { entries: self.with(|t| t.range(range).cloned().collect::<Vec<_>>()).into_iter() }
    }

    /// The record with the smallest key.
    pub fn first(&self) -> Option<(K, V)>
    where
        V: Clone,
    {
        self.with(|t| t.range::<K, _>(..).next().map(|e| (e.key.clone(), e.value.clone())))
    }

    /// The record with the largest key.
    pub fn last(&self) -> Option<(K, V)>
    where
        V: Clone,
    {
        self.with(|t| t.range::<K, _>(..).next_back().map(|e| (e.key.clone(), e.value.clone())))
    }
}

impl<'r, K: Key + Ord, V: Value> OrderedTableRead<'r, K, V> {
    /// Every record, borrowed, in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&'r K, &'r V)> + 'r {
        self.store.range::<K, _>(..).map(|e| (&e.key, &e.value))
    }

    /// The records whose keys fall in `range`, borrowed, in key order.
    pub fn range<Q, R>(&self, range: R) -> impl DoubleEndedIterator<Item = (&'r K, &'r V)> + 'r
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized + 'r,
        R: RangeBounds<Q> + 'r,
    {
        self.store.range(range).map(|e| (&e.key, &e.value))
    }
}

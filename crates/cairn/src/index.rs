//! Typed handles on secondary indexes: on the database (`UniqueIndex`, `Index`: each call reads the latest published
//! state, never waiting), in a read view (`UniqueIndexRead`, `IndexRead`: borrowed, at the view's one state), and in a
//! transaction (`TxnUniqueIndex`, `TxnIndex`: the transaction's own writes included).
//!
//! A table with indexes is declared in `schema!` with a block after its types, and its field in the schema's struct
//! then carries one handle per index beside the table's own methods:
//!
//! ```text
//! accounts: <u64, Account> {
//!     by_email: unique String = |a: &Account| a.email.clone(),
//!     by_city: String = |a: &Account| a.city.clone(),
//! },
//! ```
//! `db.accounts.by_email.get("ada@example.com")`, `db.accounts.by_city.get("Paris")`,
//! `db.accounts.by_city.range("A".to_string().."C".to_string())`.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::sync::Arc;

use crate::db::Inner;
use crate::schema::{Key, Value};
use crate::store::hash::HashStore;
use crate::store::index::{IndexKey, MultiStore, UniqueStore};
use crate::store::ordered::OrderedStore;
use crate::store::Shared;
use crate::table::{Iter, StateRef};
use crate::txn::{Transaction, TxnOrderedTable, TxnTable};

fn copy<K: Clone, V: Clone>(e: &Shared<K, V>) -> (K, V) {
    (e.key.clone(), e.value.clone())
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $store:ident) => {
        $(#[$doc])*
        pub struct $name<K, V, IK> {
            inner: Arc<Inner>,
            pos: usize,
            index: usize,
            _types: PhantomData<fn() -> (K, V, IK)>,
        }

        impl<K, V, IK> fmt::Debug for $name<K, V, IK> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("table", &self.inner.tables[self.pos].name)
                    .field("index", &self.index)
                    .finish()
            }
        }

        impl<K: Key + Eq, V: Value, IK: IndexKey> $name<K, V, IK> {
            /// Used by `schema!`.
            #[doc(hidden)]
            pub fn __new(db: &crate::Db, pos: usize, index: usize) -> Self {
                $name { inner: db.inner.clone(), pos, index, _types: PhantomData }
            }

            fn with<R>(&self, f: impl FnOnce(&$store<K, V, IK>) -> R) -> R {
                self.inner.read(|state| f(state.index(self.pos, self.index)))
            }
        }
    };
}

handle!(
    /// A unique index of a table: each index key leads to at most one record. A write that would give an index key
    /// to a second record fails with [`Error::UniqueViolation`](crate::Error::UniqueViolation).
    UniqueIndex,
    UniqueStore
);

handle!(
    /// A non-unique index of a table: each index key leads to any number of records (in no particular order).
    Index,
    MultiStore
);

impl<K: Key + Eq, V: Value, IK: IndexKey> UniqueIndex<K, V, IK> {
    /// The record whose index key is `ik`, copied.
    pub fn get<Q: Hash + Ord + ?Sized>(&self, ik: &Q) -> Option<(K, V)>
    where
        IK: Borrow<Q>,
        V: Clone,
    {
        self.with(|s| s.get(ik).map(copy))
    }

    /// Lends the record whose index key is `ik` to `f`.
    pub fn get_with<Q: Hash + Ord + ?Sized, R>(&self, ik: &Q, f: impl FnOnce(&K, &V) -> R) -> Option<R>
    where
        IK: Borrow<Q>,
    {
        self.with(|s| s.get(ik).map(|e| f(&e.key, &e.value)))
    }

    /// Whether a record has index key `ik`.
    pub fn contains_key<Q: Hash + Ord + ?Sized>(&self, ik: &Q) -> bool
    where
        IK: Borrow<Q>,
    {
        self.with(|s| s.get(ik).is_some())
    }

    /// A snapshot of the records whose index keys fall in `range`, in index key order.
    pub fn range<Q: Hash + Ord + ?Sized, R: RangeBounds<Q>>(&self, range: R) -> Iter<K, V>
    where
        IK: Borrow<Q>,
    {
        Iter::new(self.with(|s| s.range(range).cloned().collect()))
    }

    /// The number of records indexed (every record of the table).
    pub fn len(&self) -> usize {
        self.with(|s| s.len())
    }

    /// Whether the index (and so its table) is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lends a consistent, borrowed view of the index to `f` (see [`Table::read`](crate::Table::read)).
    pub fn read<R>(&self, f: impl FnOnce(&UniqueIndexRead<'_, K, V, IK>) -> R) -> R {
        self.with(|store| f(&UniqueIndexRead { store }))
    }
}

impl<K: Key + Eq, V: Value, IK: IndexKey> Index<K, V, IK> {
    /// A snapshot of the records whose index key is `ik`, in no particular order.
    pub fn get<Q: Hash + Ord + ?Sized>(&self, ik: &Q) -> Iter<K, V>
    where
        IK: Borrow<Q>,
    {
        Iter::new(self.with(|s| s.get(ik).map(|b| b.iter().cloned().collect()).unwrap_or_default()))
    }

    /// The number of records whose index key is `ik`.
    pub fn count<Q: Hash + Ord + ?Sized>(&self, ik: &Q) -> usize
    where
        IK: Borrow<Q>,
    {
        self.with(|s| s.get(ik).map_or(0, |b| b.len()))
    }

    /// Whether any record has index key `ik`.
    pub fn contains_key<Q: Hash + Ord + ?Sized>(&self, ik: &Q) -> bool
    where
        IK: Borrow<Q>,
    {
        self.count(ik) > 0
    }

    /// A snapshot of the records whose index keys fall in `range`, in index key order (records sharing one index key
    /// in no particular order).
    pub fn range<Q: Hash + Ord + ?Sized, R: RangeBounds<Q>>(&self, range: R) -> Iter<K, V>
    where
        IK: Borrow<Q>,
    {
        Iter::new(self.with(|s| s.range(range).flat_map(|(_, b)| b.iter().cloned()).collect()))
    }

    /// The number of distinct index keys.
    pub fn key_count(&self) -> usize {
        self.with(|s| s.key_count())
    }

    /// Lends a consistent, borrowed view of the index to `f` (see [`Table::read`](crate::Table::read)).
    pub fn read<R>(&self, f: impl FnOnce(&IndexRead<'_, K, V, IK>) -> R) -> R {
        self.with(|store| f(&IndexRead { store }))
    }
}

/// A unique index at one consistent state, borrowed: lent by [`UniqueIndex::read`] or the schema's `read`.
pub struct UniqueIndexRead<'r, K, V, IK> {
    store: &'r UniqueStore<K, V, IK>,
}

/// A non-unique index at one consistent state, borrowed: lent by [`Index::read`] or the schema's `read`.
pub struct IndexRead<'r, K, V, IK> {
    store: &'r MultiStore<K, V, IK>,
}

impl<K, V, IK> fmt::Debug for UniqueIndexRead<'_, K, V, IK> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UniqueIndexRead").finish_non_exhaustive()
    }
}

impl<K, V, IK> fmt::Debug for IndexRead<'_, K, V, IK> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexRead").finish_non_exhaustive()
    }
}

impl<'r, K: Key + Eq, V: Value, IK: IndexKey> UniqueIndexRead<'r, K, V, IK> {
    /// Used by `schema!`.
    #[doc(hidden)]
    pub fn __new(state: StateRef<'r>, pos: usize, index: usize) -> Self {
        UniqueIndexRead { store: state.0.index(pos, index) }
    }

    /// The record whose index key is `ik`, borrowed.
    pub fn get<Q: Hash + Ord + ?Sized>(&self, ik: &Q) -> Option<(&'r K, &'r V)>
    where
        IK: Borrow<Q>,
    {
        self.store.get(ik).map(|e| (&e.key, &e.value))
    }

    /// The records whose index keys fall in `range`, borrowed, in index key order.
    pub fn range<Q: Hash + Ord + ?Sized + 'r, R: RangeBounds<Q> + 'r>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = (&'r K, &'r V)> + 'r
    where
        IK: Borrow<Q>,
    {
        self.store.range(range).map(|e| (&e.key, &e.value))
    }

    /// Every record, borrowed, in index key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&'r K, &'r V)> + 'r {
        self.store.range::<IK, _>(..).map(|e| (&e.key, &e.value))
    }
}

impl<'r, K: Key + Eq, V: Value, IK: IndexKey> IndexRead<'r, K, V, IK> {
    /// Used by `schema!`.
    #[doc(hidden)]
    pub fn __new(state: StateRef<'r>, pos: usize, index: usize) -> Self {
        IndexRead { store: state.0.index(pos, index) }
    }

    /// The records whose index key is `ik`, borrowed, in no particular order.
    pub fn get<Q: Hash + Ord + ?Sized>(&self, ik: &Q) -> impl Iterator<Item = (&'r K, &'r V)> + 'r
    where
        IK: Borrow<Q>,
    {
        self.store.get(ik).into_iter().flat_map(|b| b.iter()).map(|e| (&e.key, &e.value))
    }

    /// The number of records whose index key is `ik`.
    pub fn count<Q: Hash + Ord + ?Sized>(&self, ik: &Q) -> usize
    where
        IK: Borrow<Q>,
    {
        self.store.get(ik).map_or(0, |b| b.len())
    }

    /// The records whose index keys fall in `range` with their index keys, borrowed, in index key order.
    pub fn range<Q: Hash + Ord + ?Sized + 'r, R: RangeBounds<Q> + 'r>(
        &self,
        range: R,
    ) -> impl Iterator<Item = (&'r IK, &'r K, &'r V)> + 'r
    where
        IK: Borrow<Q>,
    {
        self.store.range(range).flat_map(|(ik, b)| b.iter().map(move |e| (ik, &e.key, &e.value)))
    }
}

/// How a transaction's index handle reads its table's entries, fixed by the table's kind.
type Lookup<K, V, IK> = fn(&Transaction<'_>, usize, usize, &IK) -> Vec<Shared<K, V>>;

macro_rules! txn_handle {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        pub struct $name<'t, K, V, IK> {
            tx: &'t Transaction<'t>,
            pos: usize,
            index: usize,
            lookup: Lookup<K, V, IK>,
        }

        impl<K, V, IK> fmt::Debug for $name<'_, K, V, IK> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("index", &self.index).finish_non_exhaustive()
            }
        }

        impl<'t, K: Key, V: Value, IK: IndexKey> $name<'t, K, V, IK> {
            /// Used by `schema!`: the index at `index` of a hash table in a transaction.
            #[doc(hidden)]
            pub fn __new(table: &TxnTable<'t, K, V>, index: usize) -> Self
            where
                K: Hash + Eq,
            {
                let lookup: Lookup<K, V, IK> = |tx, pos, index, ik| tx.$method::<HashStore<K, V>, IK>(pos, index, ik);
                $name { tx: table.tx, pos: table.pos, index, lookup }
            }

            /// Used by `schema!`: the index at `index` of an ordered table in a transaction.
            #[doc(hidden)]
            pub fn __new_ordered(table: &TxnOrderedTable<'t, K, V>, index: usize) -> Self
            where
                K: Ord,
            {
                let lookup: Lookup<K, V, IK> =
                    |tx, pos, index, ik| tx.$method::<OrderedStore<K, V>, IK>(pos, index, ik);
                $name { tx: table.tx, pos: table.pos, index, lookup }
            }

            fn find(&self, ik: &IK) -> Vec<Shared<K, V>> {
                (self.lookup)(self.tx, self.pos, self.index, ik)
            }
        }
    };
}

txn_handle!(
    /// A unique index inside a transaction: it sees the transaction's own writes.
    TxnUniqueIndex,
    unique_lookup
);

txn_handle!(
    /// A non-unique index inside a transaction: it sees the transaction's own writes.
    TxnIndex,
    multi_lookup
);

impl<K: Key, V: Value + Clone, IK: IndexKey> TxnUniqueIndex<'_, K, V, IK> {
    /// The record whose index key is `ik`, as this transaction sees it.
    pub fn get(&self, ik: &IK) -> Option<(K, V)> {
        self.find(ik).first().map(copy)
    }

    /// Whether a record has index key `ik`, as this transaction sees it.
    pub fn contains_key(&self, ik: &IK) -> bool {
        !self.find(ik).is_empty()
    }
}

impl<K: Key, V: Value + Clone, IK: IndexKey> TxnIndex<'_, K, V, IK> {
    /// The records whose index key is `ik`, as this transaction sees them, in no particular order.
    pub fn get(&self, ik: &IK) -> Vec<(K, V)> {
        self.find(ik).iter().map(copy).collect()
    }

    /// The number of records whose index key is `ik`, as this transaction sees them.
    pub fn count(&self, ik: &IK) -> usize {
        self.find(ik).len()
    }
}

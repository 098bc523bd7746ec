//! Transactions: a closure that receives the schema's tables, reads its own writes, and commits atomically.
//!
//! A transaction runs under the writer lock, so transactions are serializable: each sees every transaction committed
//! before it (published or still queued for its fsync) and nothing of those after. Its reads look, in order, at its own
//! writes, at the transactions queued but not yet published (newest first), and at the published state. Its writes are
//! encoded into one log record as they happen and kept as a typed write set per table; nothing reaches the log or the
//! readers unless the closure returns `Ok`. An `Err` or a panic drops them.

use std::any::Any;
use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::sync::Arc;

use crate::db::spill::Payload;
use crate::db::Inner;
use crate::error::{Error, Result};
use crate::log::record;
use crate::schema::{Key, TableKind, Value};
use crate::store::hash::HashStore;
use crate::store::index::{AnyBox, IndexKey, MultiStore, TableClaims, UniqueStore};
use crate::store::ordered::OrderedStore;
use crate::store::state::Committed;
use crate::store::{Entry, Shared, Store, WriteSet};

thread_local! {
    static IN_TRANSACTION: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread runs a transaction closure.
pub(crate) fn in_transaction() -> bool {
    IN_TRANSACTION.with(Cell::get)
}

struct TxnFlag;

impl TxnFlag {
    fn set() -> Self {
        IN_TRANSACTION.with(|f| f.set(true));
        TxnFlag
    }
}

impl Drop for TxnFlag {
    fn drop(&mut self) {
        IN_TRANSACTION.with(|f| f.set(false));
    }
}

type AnyWrites = Box<dyn Any + Send + Sync>;

/// What a finished transaction hands to the commit path: its encoded record, its write sets and its index claims.
pub(crate) type Parts = (Payload, Vec<(usize, AnyWrites)>, Vec<(usize, TableClaims)>);

/// An open transaction, untyped. The `schema!` struct's transaction type wraps it with one typed table per field.
pub struct Transaction<'t> {
    inner: &'t Inner,
    pending: &'t [Arc<Committed>],
    writes: RefCell<Vec<Option<AnyWrites>>>,
    /// The claims on the unique indexes of each table written that has them (see `store::index`), by position;
    /// empty for most transactions, so it costs nothing to start one.
    claims: RefCell<Vec<(usize, TableClaims)>>,
    /// The next id this transaction would hand out, per auto-id table it took ids from (by position).
    next_ids: RefCell<Vec<(usize, u64)>>,
    payload: RefCell<Payload>,
    scratch: RefCell<Vec<u8>>,
    _flag: TxnFlag,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction").field("bytes", &self.payload.borrow().len()).finish_non_exhaustive()
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // Dropped without committing (an `Err`, a panic): a frame it was writing ahead is cut off the log.
        self.payload.get_mut().abort(&self.inner.pipeline);
    }
}

impl<'t> Transaction<'t> {
    pub(crate) fn new(inner: &'t Inner, pending: &'t [Arc<Committed>]) -> Self {
        Transaction {
            inner,
            pending,
            writes: RefCell::new((0..inner.tables.len()).map(|_| None).collect()),
            claims: RefCell::new(Vec::new()),
            next_ids: RefCell::new(Vec::new()),
            payload: RefCell::new(Payload::default()),
            scratch: RefCell::new(Vec::new()),
            _flag: TxnFlag::set(),
        }
    }

    /// Writes what the transaction keeps for itself: the id counters of the auto-id tables it allocated from.
    pub(crate) fn finish(&self) -> Result<()> {
        let next_ids = std::mem::take(&mut *self.next_ids.borrow_mut());
        for (pos, next) in next_ids {
            self.put::<OrderedStore<String, u64>>(self.inner.ids_pos, self.table_name(pos).to_string(), next)?;
        }
        Ok(())
    }

    /// The encoded record, the write sets of the tables written and the claims on their unique indexes.
    pub(crate) fn into_parts(self) -> Parts {
        let writes = self.writes.take().into_iter().enumerate().filter_map(|(pos, w)| w.map(|w| (pos, w))).collect();
        (self.payload.take(), writes, self.claims.take())
    }

    /// Takes `count` ids of the auto-id table at `pos`, returning the first: the next id after those this transaction
    /// took, else the stored counter, and never one at or below the table's largest key as this transaction sees it.
    pub(crate) fn allocate_ids<V: Value>(&self, pos: usize, count: u64) -> Result<u64> {
        type Ids<V> = OrderedStore<crate::id::Id<V>, V>;
        let taken = self.next_ids.borrow().iter().find(|(p, _)| *p == pos).map(|&(_, next)| next);
        let stored = taken.or_else(|| {
            self.lookup::<OrderedStore<String, u64>>(self.inner.ids_pos, &self.table_name(pos).to_string())
                .map(|e| e.value)
        });
        let own = self.writes.borrow()[pos]
            .as_ref()
            .and_then(|w| w.downcast_ref::<<Ids<V> as Store>::Writes>()?.last_key().map(|k| k.get()));
        let pending = self.pending.iter().filter_map(|c| c.writes::<Ids<V>>(pos)?.last_key().map(|k| k.get())).max();
        let published = self.inner.read(|state| state.table::<Ids<V>>(pos).last_key().map(|k| k.get()));
        let last = own.max(pending).max(published).unwrap_or(0);
        let start = stored.unwrap_or(1).max(last.saturating_add(1)).max(1);
        let exhausted = || Error::IdsExhausted { table: self.table_name(pos).to_string() };
        let end = start.checked_add(count).filter(|_| last < u64::MAX).ok_or_else(exhausted)?;
        let mut next_ids = self.next_ids.borrow_mut();
        match next_ids.iter_mut().find(|(p, _)| *p == pos) {
            Some((_, next)) => *next = end,
            None => next_ids.push((pos, end)),
        }
        Ok(start)
    }

    /// Checks, then records, what a write of `key` from `old` to `new` frees and takes in the unique indexes of the
    /// table at `pos` (all of them checked before any is recorded, so a refused write leaves no claim behind).
    fn claim<S: Store>(&self, pos: usize, key: &S::K, old: Option<&S::V>, new: Option<&S::V>) -> Result<()> {
        let mut claims = self.claims.borrow_mut();
        self.inner.read(|state| {
            let indexes = state.table::<S>(pos).indexes();
            let at = match claims.iter().position(|(p, _)| *p == pos) {
                Some(at) => at,
                None => {
                    claims.push((pos, indexes.iter().map(|_| None).collect()));
                    claims.len() - 1
                }
            };
            let own = &mut claims[at].1;
            for record in [false, true] {
                for (i, index) in indexes.iter().enumerate().filter(|(_, ix)| ix.unique()) {
                    let pending: Vec<Option<&AnyBox>> =
                        self.pending.iter().rev().map(|c| c.claims(pos).and_then(|cl| cl[i].as_ref())).collect();
                    if record {
                        index.claim(key, old, new, &mut own[i], &pending)
                    } else {
                        // Checking alone: look through this transaction's claims without changing them.
                        let layers: Vec<Option<&AnyBox>> =
                            std::iter::once(own[i].as_ref()).chain(pending.iter().copied()).collect();
                        index.claim(key, old, new, &mut None, &layers)
                    }
                    .map_err(|ik| Error::UniqueViolation {
                        table: self.table_name(pos).to_string(),
                        index: index.name(),
                        key: ik,
                    })?;
                }
            }
            Ok(())
        })
    }

    pub(crate) fn create_table(&self, id: u32, kind: TableKind, name: &str) {
        let mut payload = self.payload.borrow_mut();
        self.begin_payload(&mut payload);
        record::put_create(payload.buf(), id, kind, name);
    }

    /// Writes a put (`Some(value)`) or a delete of already-encoded bytes to the table with id `table`, with no
    /// write set: for the untyped write path (`crate::raw`), whose database has no in-memory tables.
    pub(crate) fn put_encoded(&self, table: u32, key: &[u8], value: Option<&[u8]>) {
        let mut payload = self.payload.borrow_mut();
        self.begin_payload(&mut payload);
        let payload = payload.buf();
        match value {
            Some(value) => record::put_raw(payload, table, key, value),
            None => {
                record::begin_delete(payload, table);
                crate::format::put_bytes(payload, key);
            }
        }
    }

    /// Writes the definition of schema version `version` (at open, when the running schema is new).
    pub(crate) fn define_schema(&self, version: u32, description: &[u8]) {
        let mut payload = self.payload.borrow_mut();
        self.begin_payload(&mut payload);
        record::put_schema(payload.buf(), version, description);
    }

    /// Starts the payload, if it is empty, with the running schema's version: every put after it was encoded by
    /// that version. (A transaction that writes nothing leaves the payload empty and makes no frame.)
    fn begin_payload(&self, payload: &mut Payload) {
        if payload.is_empty() {
            record::put_writer(payload.buf(), self.inner.schema_version);
        }
    }

    /// The payload, ready for one more operation: written out to the log first if it has grown large
    /// (`db::spill`).
    fn payload_for_op(&self) -> Result<std::cell::RefMut<'_, Payload>> {
        let mut payload = self.payload.borrow_mut();
        // Shared mode marks each append in the counter file before it writes (`db::shared`), so it writes no frame
        // ahead.
        // An encrypted payload is sealed whole at commit, so it cannot be written ahead either. (A compressed
        // database spills too: the spilled frame is stored uncompressed.)
        if self.inner.shared.is_none() && !self.inner.pipeline.seal.encrypted() {
            payload.make_room(&self.inner.pipeline, self.pending.last().map(|c| c.seq))?;
        }
        self.begin_payload(&mut payload);
        Ok(payload)
    }

    fn table_name(&self, pos: usize) -> &'static str {
        self.inner.tables[pos].name
    }

    /// The current entry for `key`: own writes, then queued transactions, then the published state.
    fn lookup<S: Store>(&self, pos: usize, key: &S::K) -> Option<Shared<S::K, S::V>> {
        if let Some(w) = self.writes.borrow()[pos].as_ref() {
            let w = w.downcast_ref::<S::Writes>().expect("write set type matches its table");
            if let Some(hit) = w.get(key) {
                return hit.cloned();
            }
        }
        for c in self.pending.iter().rev() {
            if let Some(hit) = c.writes::<S>(pos).and_then(|w| w.get(key)) {
                return hit.cloned();
            }
        }
        self.inner.read(|state| state.table::<S>(pos).find(key).cloned())
    }

    /// Looks `keys` up in the published state and forgets the answers: the point is the cache lines it brings in
    /// for the lookups that follow (`delete_many`).
    fn warm<S: Store>(&self, pos: usize, keys: &[&S::K]) {
        self.inner.read(|state| {
            let table = state.table::<S>(pos);
            for key in keys {
                std::hint::black_box(table.find(key).is_some());
            }
        });
    }

    fn with_writes<S: Store, R>(&self, pos: usize, f: impl FnOnce(&mut S::Writes) -> R) -> R {
        let mut writes = self.writes.borrow_mut();
        let slot =
            writes[pos].get_or_insert_with(|| Box::new(self.inner.read(|state| state.table::<S>(pos).new_writes())));
        f(slot.downcast_mut::<S::Writes>().expect("write set type matches its table"))
    }

    fn encode_err(&self, pos: usize, what: &'static str, e: postcard::Error) -> Error {
        Error::Encode { table: self.table_name(pos).to_string(), what, message: e.to_string() }
    }

    fn put<S: Store>(&self, pos: usize, key: S::K, value: S::V) -> Result<()> {
        if self.inner.tables[pos].unique {
            let prior = self.lookup::<S>(pos, &key);
            self.claim::<S>(pos, &key, prior.as_ref().map(|e| &e.value), Some(&value))?;
        }
        {
            let mut payload = self.payload_for_op()?;
            let payload = payload.buf();
            let mut scratch = self.scratch.borrow_mut();
            let start = payload.len();
            record::begin_put(payload, self.inner.tables[pos].id);
            let encoded =
                record::put_value(payload, &mut scratch, &key).map_err(|e| self.encode_err(pos, "key", e)).and_then(
                    |()| record::put_value(payload, &mut scratch, &value).map_err(|e| self.encode_err(pos, "value", e)),
                );
            if let Err(e) = encoded {
                payload.truncate(start);
                return Err(e);
            }
        }
        self.with_writes::<S, _>(pos, |w| w.put(Arc::new(Entry { key, value })));
        Ok(())
    }

    /// Removes the record `prior` (the key's current entry, as this transaction sees it).
    fn delete<S: Store>(&self, pos: usize, prior: Shared<S::K, S::V>) -> Result<()> {
        if self.inner.tables[pos].unique {
            self.claim::<S>(pos, &prior.key, Some(&prior.value), None)?;
        }
        {
            let mut payload = self.payload_for_op()?;
            let payload = payload.buf();
            let mut scratch = self.scratch.borrow_mut();
            let start = payload.len();
            record::begin_delete(payload, self.inner.tables[pos].id);
            if let Err(e) = record::put_value(payload, &mut scratch, &prior.key) {
                payload.truncate(start);
                return Err(self.encode_err(pos, "key", e));
            }
        }
        self.with_writes::<S, _>(pos, |w| w.remove(prior));
        Ok(())
    }

    /// The record holding key `ik` of the unique index at `index` of the table at `pos`, as this transaction sees it:
    /// the holder as the claims of the transaction and of those queued before it say, else as the published index
    /// says, then that key's record.
    pub(crate) fn unique_lookup<S: Store, IK: IndexKey>(
        &self,
        pos: usize,
        index: usize,
        ik: &IK,
    ) -> Vec<Shared<S::K, S::V>> {
        let holder = {
            let claims = self.claims.borrow();
            let own = claims.iter().find(|(p, _)| *p == pos).and_then(|(_, c)| c[index].as_ref());
            self.inner.read(|state| {
                let store = state.index::<UniqueStore<S::K, S::V, IK>>(pos, index);
                let pending: Vec<Option<&AnyBox>> =
                    self.pending.iter().rev().map(|c| c.claims(pos).and_then(|cl| cl[index].as_ref())).collect();
                store.holder(ik, own, &pending).cloned()
            })
        };
        holder.and_then(|key| self.lookup::<S>(pos, &key)).into_iter().collect()
    }

    /// The records with key `ik` in the non-unique index at `index` of the table at `pos`, as this transaction sees
    /// them: the published index's, less those the transaction or those queued before it rewrote, plus those they
    /// wrote with that index key.
    pub(crate) fn multi_lookup<S: Store, IK: IndexKey>(
        &self,
        pos: usize,
        index: usize,
        ik: &IK,
    ) -> Vec<Shared<S::K, S::V>> {
        let writes = self.writes.borrow();
        let own = writes[pos].as_ref().and_then(|w| w.downcast_ref::<S::Writes>());
        let layers: Vec<&S::Writes> =
            own.into_iter().chain(self.pending.iter().rev().filter_map(|c| c.writes::<S>(pos))).collect();
        let shadowed = |k: &S::K, upto: usize| layers[..upto].iter().any(|l| l.get(k).is_some());
        self.inner.read(|state| {
            let store = state.index::<MultiStore<S::K, S::V, IK>>(pos, index);
            let published = store.get(ik).into_iter().flat_map(|b| b.iter());
            let mut out: Vec<_> = published.filter(|e| !shadowed(&e.key, layers.len())).cloned().collect();
            for (i, layer) in layers.iter().enumerate() {
                layer.for_each(&mut |e, removed| {
                    if !removed && !shadowed(&e.key, i) && store.extract(&e.value) == *ik {
                        out.push(e.clone());
                    }
                });
            }
            out
        })
    }

    /// Every entry as this transaction sees it, in no particular order.
    fn entries<S: Store>(&self, pos: usize) -> Vec<Shared<S::K, S::V>> {
        let writes = self.writes.borrow();
        let own = writes[pos].as_ref().and_then(|w| w.downcast_ref::<S::Writes>());
        let layers: Vec<&S::Writes> =
            own.into_iter().chain(self.pending.iter().rev().filter_map(|c| c.writes::<S>(pos))).collect();
        let shadowed = |k: &S::K, upto: usize| layers[..upto].iter().any(|l| l.get(k).is_some());
        let mut out: Vec<Shared<S::K, S::V>> = self.inner.read(|state| {
            state.table::<S>(pos).entries().filter(|e| !shadowed(&e.key, layers.len())).cloned().collect()
        });
        for (i, layer) in layers.iter().enumerate() {
            layer.for_each(&mut |e, removed| {
                if !removed && !shadowed(&e.key, i) {
                    out.push(e.clone());
                }
            });
        }
        out
    }
}

macro_rules! txn_table_methods {
    ($store:ident) => {
        /// The value for `key`, as this transaction sees it (its own writes included).
        pub fn get(&self, key: &K) -> Option<V>
        where
            V: Clone,
        {
            self.tx.lookup::<$store<K, V>>(self.pos, key).map(|e| e.value.clone())
        }

        /// Lends the value for `key` to `f`.
        pub fn get_with<R>(&self, key: &K, f: impl FnOnce(&V) -> R) -> Option<R> {
            self.tx.lookup::<$store<K, V>>(self.pos, key).map(|e| f(&e.value))
        }

        /// Whether `key` is present, as this transaction sees it.
        pub fn contains_key(&self, key: &K) -> bool {
            self.tx.lookup::<$store<K, V>>(self.pos, key).is_some()
        }

        /// Inserts or replaces the value for `key`.
        pub fn insert(&self, key: K, value: V) -> Result<()> {
            self.tx.put::<$store<K, V>>(self.pos, key, value)
        }

        /// Removes `key`, returning its value if it was present.
        pub fn remove(&self, key: &K) -> Result<Option<V>>
        where
            V: Clone,
        {
            let Some(prior) = self.tx.lookup::<$store<K, V>>(self.pos, key) else {
                return Ok(None);
            };
            let value = prior.value.clone();
            self.tx.delete::<$store<K, V>>(self.pos, prior)?;
            Ok(Some(value))
        }

        /// Removes `key` without copying its value out; whether it was present. Use it rather than `remove` when
        /// the value is not needed: records are shared with readers, so `remove` must clone the value it returns.
        pub fn delete(&self, key: &K) -> Result<bool> {
            let Some(prior) = self.tx.lookup::<$store<K, V>>(self.pos, key) else {
                return Ok(false);
            };
            self.tx.delete::<$store<K, V>>(self.pos, prior)?;
            Ok(true)
        }

        /// Removes every key of `keys` without copying values out; how many were present (a key listed twice
        /// counts once). The same as calling [`delete`](Self::delete) for each, only faster for many keys: each
        /// group of keys is first looked up in one tight loop, so that the cache misses of those lookups overlap
        /// instead of each waiting behind the bookkeeping of the removal before it.
        pub fn delete_many<'k>(&self, keys: impl IntoIterator<Item = &'k K>) -> Result<usize>
        where
            K: 'k,
        {
            const GROUP: usize = 32;
            let mut keys = keys.into_iter();
            let mut group: Vec<&K> = Vec::with_capacity(GROUP);
            let mut removed = 0;
            loop {
                group.clear();
                group.extend(keys.by_ref().take(GROUP));
                if group.is_empty() {
                    return Ok(removed);
                }
                self.tx.warm::<$store<K, V>>(self.pos, &group);
                for key in &group {
                    removed += usize::from(self.delete(key)?);
                }
            }
        }

        /// Changes the value for `key` in place (on a copy that replaces it); `None` if the key is absent.
        pub fn update<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> Result<Option<R>>
        where
            V: Clone,
        {
            let Some(mut value) = self.get(key) else {
                return Ok(None);
            };
            let r = f(&mut value);
            self.tx.put::<$store<K, V>>(self.pos, key.clone(), value)?;
            Ok(Some(r))
        }

        /// The number of records, as this transaction sees it. Costs a pass over the table.
        pub fn len(&self) -> usize {
            self.tx.entries::<$store<K, V>>(self.pos).len()
        }

        /// Whether the table is empty, as this transaction sees it.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }
    };
}

/// A hash table inside a transaction.
pub struct TxnTable<'t, K, V> {
    pub(crate) tx: &'t Transaction<'t>,
    pub(crate) pos: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

/// An ordered table inside a transaction.
pub struct TxnOrderedTable<'t, K, V> {
    pub(crate) tx: &'t Transaction<'t>,
    pub(crate) pos: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'t, K, V> TxnTable<'t, K, V> {
    /// Used by `schema!`.
    #[doc(hidden)]
    pub fn __new(tx: &'t Transaction<'t>, pos: usize) -> Self {
        TxnTable { tx, pos, _types: PhantomData }
    }
}

impl<'t, K, V> TxnOrderedTable<'t, K, V> {
    /// Used by `schema!`.
    #[doc(hidden)]
    pub fn __new(tx: &'t Transaction<'t>, pos: usize) -> Self {
        TxnOrderedTable { tx, pos, _types: PhantomData }
    }
}

impl<K, V> TxnTable<'_, K, V>
where
    K: Key + Hash + Eq,
    V: Value,
{
    txn_table_methods!(HashStore);

    /// Every record as this transaction sees it, in no particular order (copies).
    pub fn iter(&self) -> impl Iterator<Item = (K, V)>
    where
        V: Clone,
    {
        self.tx.entries::<HashStore<K, V>>(self.pos).into_iter().map(|e| (e.key.clone(), e.value.clone()))
    }
}

impl<K, V> TxnOrderedTable<'_, K, V>
where
    K: Key + Ord,
    V: Value,
{
    txn_table_methods!(OrderedStore);

    /// Every record as this transaction sees it, in key order (copies).
    pub fn iter(&self) -> impl Iterator<Item = (K, V)>
    where
        V: Clone,
    {
        self.range::<K, _>(..)
    }

    /// The records whose keys fall in `range`, in key order, as this transaction sees them (copies).
    pub fn range<Q, R>(&self, range: R) -> impl Iterator<Item = (K, V)>
    where
        V: Clone,
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        let mut entries = self.tx.entries::<OrderedStore<K, V>>(self.pos);
        entries.retain(|e| range.contains(e.key.borrow()));
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries.into_iter().map(|e| (e.key.clone(), e.value.clone()))
    }
}

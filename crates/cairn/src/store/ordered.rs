//! Ordered tables: a `BTreeMap` from key to shared entry.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::ops::RangeBounds;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::index::Indexes;
use super::{Shared, Store, WriteSet};
use crate::schema::TableKind;

/// The ordered tables' stand-in for [`super::hasher::Seeds`], so that both kinds of handle look keys up alike.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Unhashed;

impl Unhashed {
    /// Nothing to compute before the lookup.
    #[inline(always)]
    pub(crate) fn hash_one<Q: ?Sized>(&self, _key: &Q) {}
}

/// The records of an ordered table.
pub(crate) struct OrderedStore<K, V>(BTreeMap<K, Shared<K, V>>, Indexes<K, V>);

impl<K: Clone + 'static, V: 'static> Clone for OrderedStore<K, V> {
    fn clone(&self) -> Self {
        OrderedStore(self.0.clone(), self.1.clone())
    }
}

impl<K: Ord, V> OrderedStore<K, V> {
    /// Looks a key up by any borrowed form of it.
    pub(crate) fn find_by<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&Shared<K, V>>
    where
        K: Borrow<Q>,
    {
        self.0.get(key)
    }

    /// What a handle keeps to look keys up: nothing (the hash table's handle keeps its seeds).
    pub(crate) fn seeds(&self) -> &Unhashed {
        &Unhashed
    }

    /// [`OrderedStore::find_by`], with the nothing [`Unhashed::hash_one`] computed.
    #[inline(always)]
    pub(crate) fn find_hashed<Q: Ord + ?Sized>(&self, (): (), key: &Q) -> Option<&Shared<K, V>>
    where
        K: Borrow<Q>,
    {
        self.find_by(key)
    }

    /// The largest key.
    pub(crate) fn last_key(&self) -> Option<&K> {
        self.0.last_key_value().map(|(k, _)| k)
    }

    /// The entries whose keys fall in `range`, in order.
    pub(crate) fn range<Q: Ord + ?Sized, R: RangeBounds<Q>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = &Shared<K, V>> + '_
    where
        K: Borrow<Q>,
    {
        self.0.range::<Q, R>(range).map(|(_, e)| e)
    }
}

impl<K, V> Store for OrderedStore<K, V>
where
    K: Clone + Ord + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type K = K;
    type V = V;
    type Writes = OrderedWrites<K, V>;
    const KIND: TableKind = TableKind::Ordered;

    fn find(&self, key: &K) -> Option<&Shared<K, V>> {
        self.0.get(key)
    }

    fn with_indexes(indexes: Indexes<K, V>, _seeds: &super::hasher::Seeds) -> Self {
        OrderedStore(BTreeMap::new(), indexes)
    }

    fn indexes(&self) -> &Indexes<K, V> {
        &self.1
    }

    fn reserve(&mut self, additional: usize) {
        self.1.reserve(additional);
    }

    fn put(&mut self, entry: Shared<K, V>) {
        if self.1.is_empty() {
            self.0.insert(entry.key.clone(), entry);
        } else {
            let old = self.0.insert(entry.key.clone(), entry.clone());
            self.1.replace(old.as_ref(), Some(&entry));
        }
    }

    fn delete(&mut self, key: &K) {
        let old = self.0.remove(key);
        self.1.replace(old.as_ref(), None);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn entries(&self) -> impl Iterator<Item = &Shared<K, V>> + '_ {
        self.0.values()
    }

    fn new_writes(&self) -> OrderedWrites<K, V> {
        OrderedWrites(BTreeMap::new())
    }

    fn apply_writes(&mut self, writes: &OrderedWrites<K, V>) {
        let mut pairs = Vec::new();
        for (key, (entry, removed)) in &writes.0 {
            let old = if *removed { self.0.remove(key) } else { self.0.insert(key.clone(), entry.clone()) };
            if !self.1.is_empty() {
                pairs.push((old, (!removed).then_some(entry)));
            }
        }
        self.1.replace_all(&pairs);
    }
}

/// A transaction's writes to an ordered table: the last write per key, in key order (the entry written, or the entry
/// removed and `true`).
pub(crate) struct OrderedWrites<K, V>(BTreeMap<K, (Shared<K, V>, bool)>);

impl<K: Ord, V> OrderedWrites<K, V> {
    /// The largest key written or removed.
    pub(crate) fn last_key(&self) -> Option<&K> {
        self.0.last_key_value().map(|(k, _)| k)
    }
}

impl<K, V> WriteSet<K, V> for OrderedWrites<K, V>
where
    K: Clone + Ord + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn put(&mut self, entry: Shared<K, V>) {
        self.0.insert(entry.key.clone(), (entry, false));
    }

    fn remove(&mut self, prior: Shared<K, V>) {
        self.0.insert(prior.key.clone(), (prior, true));
    }

    fn get(&self, key: &K) -> Option<Option<&Shared<K, V>>> {
        self.0.get(key).map(|(e, removed)| (!removed).then_some(e))
    }

    fn for_each(&self, f: &mut dyn FnMut(&Shared<K, V>, bool)) {
        for (e, removed) in self.0.values() {
            f(e, *removed);
        }
    }
}

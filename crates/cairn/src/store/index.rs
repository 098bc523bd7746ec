//! Secondary indexes: maps from a key computed from each record's value to the records, kept inside their table's
//! store and so published with it (in both copies of the state, sharing the records' `Arc<Entry>`s).
//!
//! An index is derived data: it is never written to disk, but rebuilt as the snapshot and the log are loaded, and
//! updated wherever its table changes, from the record replaced and the record written:
//! - a unique index maps each index key to the one record holding it;
//! - a non-unique index maps each index key to a bucket of records, found by pointer, so that removing one record
//!   from a bucket of a million costs no more than from a bucket of one.
//!
//! The map is a hash map (lookups cost about what a table's do) unless the index is declared `ordered`, which makes
//! it a B-tree: ranges in index key order then cost a B-tree range, and every lookup a B-tree search. A range over a
//! hash index still works, by sorting the matching keys (linear in the index).
//!
//! Uniqueness is enforced where a transaction writes, not where its write set is applied: each write to a table with
//! unique indexes computes the index keys it frees and takes, and records them as the transaction's *claims*
//! (index key -> the table key now holding it, or `None` once freed). Who holds an index key, as a transaction sees
//! it, is then its own claims, the claims of the transactions queued before it (newest first), and the published
//! index, the same layering as reads of records. Applying a write set removes every replaced record's index keys
//! before it adds the new ones, so moving an index key from one record to another within a transaction never
//! collides with itself. A collision can then only come from data written before the index was declared; it is
//! counted as the snapshot and the log are loaded, and opening reports it.

use std::any::Any;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hash};
use std::ops::RangeBounds;
use std::sync::Arc;

use super::Shared;

/// A type-erased box, as claims travel with a transaction.
pub(crate) type AnyBox = Box<dyn Any + Send + Sync>;

/// The claims of one transaction on one table: per index, the index keys it freed or took (`None` for a non-unique
/// index, or when the transaction changed nothing the index sees).
pub(crate) type TableClaims = Vec<Option<AnyBox>>;

/// The typed claims of a unique index: index key -> the key now holding it, or `None` once freed.
type Claims<IK, K> = BTreeMap<IK, Option<K>>;

/// What a key an index is built on must be: hashable (for lookups), ordered (for ranges), printable (for error
/// messages), shareable.
pub trait IndexKey: Hash + Ord + Clone + Debug + Send + Sync + 'static {}

impl<T: Hash + Ord + Clone + Debug + Send + Sync + 'static> IndexKey for T {}

/// An index's map from index key to `T`: a hash map, or a B-tree for an index declared `ordered`.
#[derive(Clone)]
pub(crate) enum Map<IK, T> {
    Hash(hashbrown::HashMap<IK, T, super::hasher::Seeds>),
    Ordered(BTreeMap<IK, T>),
}

impl<IK: IndexKey, T> Map<IK, T> {
    fn new(ordered: bool) -> Self {
        if ordered {
            Map::Ordered(BTreeMap::new())
        } else {
            Map::Hash(hashbrown::HashMap::default())
        }
    }

    fn get<Q: Hash + Ord + ?Sized>(&self, k: &Q) -> Option<&T>
    where
        IK: Borrow<Q>,
    {
        match self {
            Map::Hash(m) => m.get(k),
            Map::Ordered(m) => m.get(k),
        }
    }

    fn get_mut(&mut self, k: &IK) -> Option<&mut T> {
        match self {
            Map::Hash(m) => m.get_mut(k),
            Map::Ordered(m) => m.get_mut(k),
        }
    }

    fn insert(&mut self, k: IK, v: T) -> Option<T> {
        match self {
            Map::Hash(m) => m.insert(k, v),
            Map::Ordered(m) => m.insert(k, v),
        }
    }

    fn remove(&mut self, k: &IK) -> Option<T> {
        match self {
            Map::Hash(m) => m.remove(k),
            Map::Ordered(m) => m.remove(k),
        }
    }

    fn len(&self) -> usize {
        match self {
            Map::Hash(m) => m.len(),
            Map::Ordered(m) => m.len(),
        }
    }

    fn reserve(&mut self, additional: usize) {
        if let Map::Hash(m) = self {
            m.reserve(additional);
        }
    }

    /// The entries whose keys fall in `range`, in key order: a B-tree range, or for a hash map the matching entries
    /// sorted.
    fn range<Q: Ord + ?Sized, R: RangeBounds<Q>>(&self, range: R) -> std::vec::IntoIter<(&IK, &T)>
    where
        IK: Borrow<Q>,
    {
        match self {
            Map::Ordered(m) => m.range::<Q, R>(range).collect::<Vec<_>>().into_iter(),
            Map::Hash(m) => {
                let mut v: Vec<(&IK, &T)> = m.iter().filter(|(k, _)| range.contains((*k).borrow())).collect();
                v.sort_unstable_by(|a, b| a.0.cmp(b.0));
                v.into_iter()
            }
        }
    }
}

/// One index of a table, type-erased over its key type.
pub(crate) trait IndexStore<K, V>: Any + Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether the index allows one record per index key.
    fn unique(&self) -> bool;
    /// Removes `old`'s index key (if `old` is present).
    fn remove(&mut self, old: &Shared<K, V>);
    /// Adds `new` under its index key.
    fn insert(&mut self, new: &Shared<K, V>);
    /// Makes room for `additional` more records (a hint).
    fn reserve(&mut self, additional: usize);
    fn clone_boxed(&self) -> Box<dyn IndexStore<K, V>>;
    fn as_any(&self) -> &dyn Any;
    /// For a unique index, the first index key found held by two records while loading, printed.
    fn collision(&self) -> Option<&str>;
    /// Records what a write of `key` (from `old` to `new`) frees and takes in `own`, after checking that no other key
    /// holds what it takes, as seen through `own`, then `pending` (the claims of queued transactions on this index,
    /// newest first), then this (published) index. Returns the index key already held, printed.
    fn claim(
        &self,
        key: &K,
        old: Option<&V>,
        new: Option<&V>,
        own: &mut Option<AnyBox>,
        pending: &[Option<&AnyBox>],
    ) -> Result<(), String>;
}

impl<K: 'static, V: 'static> Clone for Box<dyn IndexStore<K, V>> {
    fn clone(&self) -> Self {
        self.clone_boxed()
    }
}

/// A record replaced (or removed, or none) and the record that replaces it (if any).
pub(crate) type Replacement<'a, K, V> = (Option<Shared<K, V>>, Option<&'a Shared<K, V>>);

/// The indexes of one table. Empty for most tables, and then every hook below is one length check.
pub(crate) struct Indexes<K, V>(Vec<Box<dyn IndexStore<K, V>>>);

impl<K, V> Default for Indexes<K, V> {
    fn default() -> Self {
        Indexes(Vec::new())
    }
}

impl<K: 'static, V: 'static> Clone for Indexes<K, V> {
    fn clone(&self) -> Self {
        Indexes(self.0.clone())
    }
}

impl<K: 'static, V: 'static> Indexes<K, V> {
    pub(crate) fn new(indexes: Vec<Box<dyn IndexStore<K, V>>>) -> Self {
        Indexes(indexes)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn get(&self, i: usize) -> &dyn IndexStore<K, V> {
        &*self.0[i]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &dyn IndexStore<K, V>> + '_ {
        self.0.iter().map(|i| &**i)
    }

    /// One record replaced (`old`) by another (`new`), either side possibly absent.
    #[inline]
    pub(crate) fn replace(&mut self, old: Option<&Shared<K, V>>, new: Option<&Shared<K, V>>) {
        if self.0.is_empty() {
            return;
        }
        for index in &mut self.0 {
            if let Some(old) = old {
                index.remove(old);
            }
            if let Some(new) = new {
                index.insert(new);
            }
        }
    }

    /// The replacements of one transaction: every old index key goes before any new one is added.
    pub(crate) fn replace_all(&mut self, pairs: &[Replacement<'_, K, V>]) {
        for index in &mut self.0 {
            pairs.iter().filter_map(|(old, _)| old.as_ref()).for_each(|old| index.remove(old));
            pairs.iter().filter_map(|(_, new)| *new).for_each(|new| index.insert(new));
        }
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.0.iter_mut().for_each(|i| i.reserve(additional));
    }

    /// The first collision of a unique index: (index name, index key printed).
    pub(crate) fn collision(&self) -> Option<(&'static str, String)> {
        self.0.iter().find_map(|i| i.collision().map(|k| (i.name(), k.to_string())))
    }
}

/// How an index computes its key from a record's value.
type Extract<V, IK> = fn(&V) -> IK;

/// A unique index: each index key leads to at most one record.
pub(crate) struct UniqueStore<K, V, IK> {
    name: &'static str,
    extract: Extract<V, IK>,
    map: Map<IK, Shared<K, V>>,
    collision: Option<String>,
}

impl<K, V, IK: Clone> Clone for UniqueStore<K, V, IK> {
    fn clone(&self) -> Self {
        UniqueStore { name: self.name, extract: self.extract, map: self.map.clone(), collision: self.collision.clone() }
    }
}

impl<K: 'static, V, IK: IndexKey> UniqueStore<K, V, IK> {
    pub(crate) fn new(name: &'static str, extract: Extract<V, IK>, ordered: bool) -> Self {
        UniqueStore { name, extract, map: Map::new(ordered), collision: None }
    }

    pub(crate) fn get<Q: Hash + Ord + ?Sized>(&self, ik: &Q) -> Option<&Shared<K, V>>
    where
        IK: Borrow<Q>,
    {
        self.map.get(ik)
    }

    pub(crate) fn range<Q: Ord + ?Sized, R: RangeBounds<Q>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = &Shared<K, V>> + '_
    where
        IK: Borrow<Q>,
    {
        self.map.range::<Q, R>(range).map(|(_, e)| e)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Who holds `ik` as seen through `own`, then `pending`, then this index: `Some(None)` if a layer freed it.
    pub(crate) fn holder<'a>(
        &'a self,
        ik: &IK,
        own: Option<&'a AnyBox>,
        pending: &[Option<&'a AnyBox>],
    ) -> Option<&'a K> {
        for layer in own.into_iter().chain(pending.iter().flatten().copied()) {
            let claims = layer.downcast_ref::<Claims<IK, K>>().expect("claims have their index's types");
            if let Some(holder) = claims.get(ik) {
                return holder.as_ref();
            }
        }
        self.map.get(ik).map(|e| &e.key)
    }
}

impl<K, V, IK> IndexStore<K, V> for UniqueStore<K, V, IK>
where
    K: Clone + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    IK: IndexKey,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn unique(&self) -> bool {
        true
    }

    fn remove(&mut self, old: &Shared<K, V>) {
        let ik = (self.extract)(&old.value);
        if self.map.get(&ik).is_some_and(|e| Arc::ptr_eq(e, old)) {
            self.map.remove(&ik);
        }
    }

    fn insert(&mut self, new: &Shared<K, V>) {
        let ik = (self.extract)(&new.value);
        if let Some(before) = self.map.insert(ik.clone(), new.clone()) {
            if before.key != new.key && self.collision.is_none() {
                self.collision = Some(format!("{ik:?}"));
            }
        }
    }

    fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    fn clone_boxed(&self) -> Box<dyn IndexStore<K, V>> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn collision(&self) -> Option<&str> {
        self.collision.as_deref()
    }

    fn claim(
        &self,
        key: &K,
        old: Option<&V>,
        new: Option<&V>,
        own: &mut Option<AnyBox>,
        pending: &[Option<&AnyBox>],
    ) -> Result<(), String> {
        let freed = old.map(self.extract);
        let taken = new.map(self.extract);
        if freed == taken {
            return Ok(());
        }
        if let Some(ik) = &taken {
            if let Some(holder) = self.holder(ik, own.as_ref(), pending) {
                if holder != key {
                    return Err(format!("{ik:?}"));
                }
            }
        }
        let claims = own
            .get_or_insert_with(|| Box::new(Claims::<IK, K>::new()))
            .downcast_mut::<Claims<IK, K>>()
            .expect("claims have their index's types");
        if let Some(ik) = freed {
            claims.insert(ik, None);
        }
        if let Some(ik) = taken {
            claims.insert(ik, Some(key.clone()));
        }
        Ok(())
    }
}

/// The records sharing one key of a non-unique index, found by the address of their entry.
pub(crate) enum Bucket<K, V> {
    One(Shared<K, V>),
    Many(hashbrown::HashTable<Shared<K, V>>),
}

impl<K, V> Clone for Bucket<K, V> {
    fn clone(&self) -> Self {
        match self {
            Bucket::One(e) => Bucket::One(e.clone()),
            Bucket::Many(t) => Bucket::Many(t.clone()),
        }
    }
}

impl<K, V> Bucket<K, V> {
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Shared<K, V>> + '_ {
        let (one, many) = match self {
            Bucket::One(e) => (Some(e), None),
            Bucket::Many(t) => (None, Some(t.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Bucket::One(_) => 1,
            Bucket::Many(t) => t.len(),
        }
    }
}

fn address<K, V>(e: &Shared<K, V>) -> u64 {
    foldhash::fast::FixedState::default().hash_one(Arc::as_ptr(e) as usize)
}

/// A non-unique index: each index key leads to any number of records, in no particular order.
pub(crate) struct MultiStore<K, V, IK> {
    name: &'static str,
    extract: Extract<V, IK>,
    map: Map<IK, Bucket<K, V>>,
}

impl<K, V, IK: Clone> Clone for MultiStore<K, V, IK> {
    fn clone(&self) -> Self {
        MultiStore { name: self.name, extract: self.extract, map: self.map.clone() }
    }
}

impl<K, V, IK: IndexKey> MultiStore<K, V, IK> {
    pub(crate) fn new(name: &'static str, extract: Extract<V, IK>, ordered: bool) -> Self {
        MultiStore { name, extract, map: Map::new(ordered) }
    }

    pub(crate) fn extract(&self, value: &V) -> IK {
        (self.extract)(value)
    }

    pub(crate) fn get<Q: Hash + Ord + ?Sized>(&self, ik: &Q) -> Option<&Bucket<K, V>>
    where
        IK: Borrow<Q>,
    {
        self.map.get(ik)
    }

    pub(crate) fn range<Q: Ord + ?Sized, R: RangeBounds<Q>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = (&IK, &Bucket<K, V>)> + '_
    where
        IK: Borrow<Q>,
    {
        self.map.range::<Q, R>(range)
    }

    /// The number of distinct index keys.
    pub(crate) fn key_count(&self) -> usize {
        self.map.len()
    }
}

impl<K, V, IK> IndexStore<K, V> for MultiStore<K, V, IK>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    IK: IndexKey,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn unique(&self) -> bool {
        false
    }

    fn remove(&mut self, old: &Shared<K, V>) {
        let ik = (self.extract)(&old.value);
        let Some(bucket) = self.map.get_mut(&ik) else { return };
        match bucket {
            Bucket::One(e) if Arc::ptr_eq(e, old) => {
                self.map.remove(&ik);
            }
            Bucket::One(_) => {}
            Bucket::Many(t) => {
                if let Ok(found) = t.find_entry(address(old), |e| Arc::ptr_eq(e, old)) {
                    found.remove();
                }
                if t.len() == 1 {
                    let last = t.drain().next().expect("a bucket of one has one record");
                    *bucket = Bucket::One(last);
                }
            }
        }
    }

    fn insert(&mut self, new: &Shared<K, V>) {
        let ik = (self.extract)(&new.value);
        match self.map.get_mut(&ik) {
            None => {
                self.map.insert(ik, Bucket::One(new.clone()));
            }
            Some(bucket) => {
                if let Bucket::One(e) = bucket {
                    if Arc::ptr_eq(e, new) {
                        return;
                    }
                    let mut t = hashbrown::HashTable::with_capacity(2);
                    t.insert_unique(address(e), e.clone(), address);
                    *bucket = Bucket::Many(t);
                }
                if let Bucket::Many(t) = bucket {
                    if t.find(address(new), |e| Arc::ptr_eq(e, new)).is_none() {
                        t.insert_unique(address(new), new.clone(), address);
                    }
                }
            }
        }
    }

    fn reserve(&mut self, _additional: usize) {
        // Fewer index keys than records, by an unknown factor: let the map grow.
    }

    fn clone_boxed(&self) -> Box<dyn IndexStore<K, V>> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn collision(&self) -> Option<&str> {
        None
    }

    fn claim(
        &self,
        _key: &K,
        _old: Option<&V>,
        _new: Option<&V>,
        _own: &mut Option<AnyBox>,
        _pending: &[Option<&AnyBox>],
    ) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Entry;

    fn entry(key: u32, value: &str) -> Shared<u32, String> {
        Arc::new(Entry { key, value: value.to_string() })
    }

    #[allow(clippy::ptr_arg)] // an extractor takes the value type itself
    fn first_char(v: &String) -> char {
        v.chars().next().unwrap_or(' ')
    }

    #[test]
    fn a_unique_index_moves_a_key_between_records_within_one_batch_without_a_collision() {
        let mut ix: Indexes<u32, String> =
            Indexes::new(vec![Box::new(UniqueStore::new("by_first", first_char, false))]);
        let (a, b) = (entry(1, "apple"), entry(2, "banana"));
        ix.replace(None, Some(&a));
        ix.replace(None, Some(&b));
        // Record 2 takes 'a' while record 1 moves to 'c', applied with 2 first.
        let (b2, a2) = (entry(2, "avocado"), entry(1, "cherry"));
        ix.replace_all(&[(Some(b.clone()), Some(&b2)), (Some(a.clone()), Some(&a2))]);
        let u = ix.get(0).as_any().downcast_ref::<UniqueStore<u32, String, char>>().unwrap();
        assert_eq!(u.get(&'a').map(|e| e.key), Some(2));
        assert_eq!(u.get(&'c').map(|e| e.key), Some(1));
        assert!(u.get(&'b').is_none());
        assert_eq!(ix.collision(), None);
        // Two records loaded with one index key are a collision.
        ix.replace(None, Some(&entry(3, "almond")));
        assert_eq!(ix.collision(), Some(("by_first", "'a'".to_string())));
    }

    #[test]
    fn claims_see_own_then_pending_then_published_holders() {
        let mut u = UniqueStore::<u32, String, char>::new("by_first", first_char, true);
        u.insert(&entry(1, "apple"));
        // Another key may not take 'a' while 1 holds it.
        let mut own = None;
        assert_eq!(u.claim(&2, None, Some(&"avocado".into()), &mut own, &[]), Err("'a'".into()));
        // Once 1 moves to 'c' in this transaction, 2 may take 'a'; 3 may not take 'c'.
        u.claim(&1, Some(&"apple".into()), Some(&"cherry".into()), &mut own, &[]).unwrap();
        u.claim(&2, None, Some(&"avocado".into()), &mut own, &[]).unwrap();
        assert_eq!(u.claim(&3, None, Some(&"cress".into()), &mut own, &[]), Err("'c'".into()));
        // A later transaction sees those claims as pending: 'a' is 2's, 'c' is 1's, 'b' free.
        let pending = [own.as_ref()];
        let mut next = None;
        assert_eq!(u.claim(&4, None, Some(&"acorn".into()), &mut next, &pending), Err("'a'".into()));
        u.claim(&4, None, Some(&"banana".into()), &mut next, &pending).unwrap();
        // Rewriting a record with the same index key claims nothing.
        let mut third = None;
        u.claim(&1, Some(&"cherry".into()), Some(&"coconut".into()), &mut third, &pending).unwrap();
        assert!(third.is_none());
    }

    #[test]
    fn a_non_unique_index_keeps_every_record_and_removes_by_pointer() {
        let mut m = MultiStore::<u32, String, char>::new("by_first", first_char, false);
        let records: Vec<_> = (0..100).map(|i| entry(i, if i % 2 == 0 { "even" } else { "odd" })).collect();
        records.iter().for_each(|e| m.insert(e));
        assert_eq!(m.get(&'e').map(Bucket::len), Some(50));
        // Removing a record with the same key and index key but another pointer removes nothing.
        m.remove(&entry(0, "even"));
        assert_eq!(m.get(&'e').map(Bucket::len), Some(50));
        for e in records.iter().filter(|e| e.key % 2 == 0 && e.key > 0) {
            m.remove(e);
        }
        let left: Vec<u32> = m.get(&'e').unwrap().iter().map(|e| e.key).collect();
        assert_eq!(left, [0]);
        m.remove(&records[0]);
        assert!(m.get(&'e').is_none());
        assert_eq!(m.key_count(), 1);
    }
}

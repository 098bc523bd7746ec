//! Hash tables: a `hashbrown::HashTable` of shared entries, hashed with `hasher::Seeds`.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use serde::de::DeserializeOwned;
use serde::Serialize;

use std::sync::Arc;

use super::index::Indexes;
use super::{Shared, Store, WriteSet};
use crate::schema::TableKind;

type Hasher = super::hasher::Seeds;

/// The records of a hash table.
pub(crate) struct HashStore<K, V> {
    table: hashbrown::HashTable<Shared<K, V>>,
    hasher: Hasher,
    indexes: Indexes<K, V>,
}

impl<K: 'static, V: 'static> Clone for HashStore<K, V> {
    fn clone(&self) -> Self {
        HashStore { table: self.table.clone(), hasher: self.hasher.clone(), indexes: self.indexes.clone() }
    }
}

impl<K: Hash + Eq, V> HashStore<K, V> {
    /// Looks a key up by any borrowed form of it.
    #[inline(always)]
    pub(crate) fn find_by<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&Shared<K, V>>
    where
        K: Borrow<Q>,
    {
        self.find_hashed(self.hasher.hash_one(key), key)
    }

    /// The seeds this table hashes with (a handle copies them: `table.rs`).
    pub(crate) fn seeds(&self) -> &Hasher {
        &self.hasher
    }

    /// Looks up `key`, whose hash under [`HashStore::seeds`] is `hash`.
    #[inline(always)]
    pub(crate) fn find_hashed<Q: Eq + ?Sized>(&self, hash: u64, key: &Q) -> Option<&Shared<K, V>>
    where
        K: Borrow<Q>,
    {
        self.table.find(hash, |e| e.key.borrow() == key)
    }
}

impl<K, V> Store for HashStore<K, V>
where
    K: Clone + Hash + Eq + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type K = K;
    type V = V;
    type Writes = HashWrites<K, V>;
    const KIND: TableKind = TableKind::Hash;

    #[inline]
    fn find(&self, key: &K) -> Option<&Shared<K, V>> {
        self.find_by(key)
    }

    fn with_indexes(indexes: Indexes<K, V>, seeds: &Hasher) -> Self {
        HashStore { table: hashbrown::HashTable::new(), hasher: seeds.clone(), indexes }
    }

    fn indexes(&self) -> &Indexes<K, V> {
        &self.indexes
    }

    fn put(&mut self, entry: Shared<K, V>) {
        let hash = self.hasher.hash_one(&entry.key);
        self.put_with_hash(hash, entry);
    }

    fn delete(&mut self, key: &K) {
        let hash = self.hasher.hash_one(key);
        if let Ok(o) = self.table.find_entry(hash, |e| e.key == *key) {
            let (old, _) = o.remove();
            self.indexes.replace(Some(&old), None);
        }
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn entries(&self) -> impl Iterator<Item = &Shared<K, V>> + '_ {
        self.table.iter()
    }

    fn reserve(&mut self, additional: usize) {
        let hasher = &self.hasher;
        self.table.reserve(additional, |e| hasher.hash_one(&e.key));
        self.indexes.reserve(additional);
    }

    fn hash_of(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    fn put_with_hash(&mut self, hash: u64, entry: Shared<K, V>) {
        if self.indexes.is_empty() {
            self.put_hashed(hash, entry);
        } else {
            let old = self.put_hashed(hash, entry.clone());
            self.indexes.replace(old.as_ref(), Some(&entry));
        }
    }

    fn new_writes(&self) -> HashWrites<K, V> {
        HashWrites { ops: Vec::new(), index: hashbrown::HashTable::new(), hasher: self.hasher.clone() }
    }

    fn apply_writes(&mut self, w: &HashWrites<K, V>) {
        debug_assert!(
            w.hasher.hash_one(0u64) == self.hasher.hash_one(0u64),
            "a write set hashes as the table it came from"
        );
        // A batch larger than the table would make it grow several times on the way: grow once. (Smaller batches
        // may be mostly replacements, and reserving for them could double the table for nothing.)
        if w.ops.len() > self.table.len() {
            Store::reserve(self, w.ops.len());
        }
        if self.indexes.is_empty() {
            w.ops.iter().for_each(|op| drop(self.apply_op(op)));
        } else {
            let pairs: Vec<_> =
                w.ops.iter().map(|op| (self.apply_op(op), (!op.removed).then_some(&op.entry))).collect();
            self.indexes.replace_all(&pairs);
        }
    }
}

impl<K: Hash + Eq, V> HashStore<K, V> {
    /// Puts `entry`, returning the record it replaced.
    fn put_hashed(&mut self, hash: u64, entry: Shared<K, V>) -> Option<Shared<K, V>> {
        let hasher = &self.hasher;
        match self.table.entry(hash, |e| e.key == entry.key, |e| hasher.hash_one(&e.key)) {
            hashbrown::hash_table::Entry::Occupied(mut o) => Some(std::mem::replace(o.get_mut(), entry)),
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(entry);
                None
            }
        }
    }

    /// Applies one write of a write set, returning the record it replaced or removed.
    fn apply_op(&mut self, op: &Op<K, V>) -> Option<Shared<K, V>> {
        if op.removed {
            // The slot holding this very pointer (the usual case), else the record with the key (the transaction
            // removed a record it had written itself, over an older one).
            let prior = &op.entry;
            let found = self.table.find_entry(op.hash, |e| Arc::ptr_eq(e, prior) || e.key == prior.key);
            found.ok().map(|o| o.remove().0)
        } else {
            self.put_hashed(op.hash, op.entry.clone())
        }
    }
}

/// One key's last write in a transaction.
struct Op<K, V> {
    /// The key's hash under the table's hasher.
    hash: u64,
    /// The record written, or for a removal the record removed.
    entry: Shared<K, V>,
    removed: bool,
}

/// A transaction's writes to a hash table: the last write per key, in the order the keys were first written (so
/// that applying them walks the new records in the order they were allocated), each with its hash, computed once.
pub(crate) struct HashWrites<K, V> {
    ops: Vec<Op<K, V>>,
    /// Positions in `ops`, by hash.
    index: hashbrown::HashTable<u32>,
    hasher: Hasher,
}

impl<K: Hash + Eq, V> HashWrites<K, V> {
    fn set(&mut self, entry: Shared<K, V>, removed: bool) {
        let hash = self.hasher.hash_one(&entry.key);
        let ops = &mut self.ops;
        match self.index.entry(hash, |&i| ops[i as usize].entry.key == entry.key, |&i| ops[i as usize].hash) {
            hashbrown::hash_table::Entry::Occupied(o) => {
                let op = &mut ops[*o.get() as usize];
                // A removal of the transaction's own record keeps the key's first prior: what applying must find.
                if !(removed && op.removed) {
                    op.entry = entry;
                }
                op.removed = removed;
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                let at = u32::try_from(ops.len()).expect("a transaction writes fewer than 2^32 keys to one table");
                v.insert(at);
                ops.push(Op { hash, entry, removed });
            }
        }
    }
}

impl<K, V> WriteSet<K, V> for HashWrites<K, V>
where
    K: Clone + Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn put(&mut self, entry: Shared<K, V>) {
        self.set(entry, false);
    }

    fn remove(&mut self, prior: Shared<K, V>) {
        self.set(prior, true);
    }

    fn get(&self, key: &K) -> Option<Option<&Shared<K, V>>> {
        let hash = self.hasher.hash_one(key);
        let &i = self.index.find(hash, |&i| self.ops[i as usize].entry.key == *key)?;
        let op = &self.ops[i as usize];
        Some((!op.removed).then_some(&op.entry))
    }

    fn for_each(&self, f: &mut dyn FnMut(&Shared<K, V>, bool)) {
        for op in &self.ops {
            f(&op.entry, op.removed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Entry;

    #[test]
    fn put_replace_delete_and_clone_shares_entries() {
        let mut s: HashStore<String, u32> = HashStore::with_indexes(Indexes::default(), &Hasher::default());
        s.put(Arc::new(Entry { key: "a".into(), value: 1 }));
        s.put(Arc::new(Entry { key: "a".into(), value: 2 }));
        s.put(Arc::new(Entry { key: "b".into(), value: 3 }));
        assert_eq!(Store::len(&s), 2);
        assert_eq!(s.find_by("a").map(|e| e.value), Some(2));
        let copy = s.clone();
        assert!(Arc::ptr_eq(copy.find_by("b").unwrap(), s.find_by("b").unwrap()));
        s.delete(&"a".to_string());
        assert!(s.find_by("a").is_none());
        assert_eq!(copy.find_by("a").map(|e| e.value), Some(2));
    }

    fn entry(key: &str, value: u32) -> Shared<String, u32> {
        Arc::new(Entry { key: key.into(), value })
    }

    #[test]
    fn write_sets_apply_last_write_per_key_and_find_removed_records() {
        let mut s: HashStore<String, u32> = HashStore::with_indexes(Indexes::default(), &Hasher::default());
        let (a, b, c) = (entry("a", 1), entry("b", 2), entry("c", 3));
        for e in [&a, &b, &c] {
            s.put(e.clone());
        }
        let mut w = s.new_writes();
        // a: written, then removed (the removal must find the table's record by key: its pointer is not ours).
        let a2 = entry("a", 10);
        w.put(a2.clone());
        w.remove(a2);
        // b: removed (by pointer), then written again.
        w.remove(b.clone());
        w.put(entry("b", 20));
        // c: removed. d: new.
        w.remove(c.clone());
        w.put(entry("d", 4));
        assert_eq!(w.get(&"a".to_string()).map(|e| e.is_none()), Some(true));
        assert_eq!(w.get(&"b".to_string()).flatten().map(|e| e.value), Some(20));
        assert!(w.get(&"e".to_string()).is_none());
        let mut order = Vec::new();
        w.for_each(&mut |e, removed| order.push((e.key.clone(), removed)));
        let keys: Vec<_> = order.iter().map(|(k, r)| format!("{k}{}", if *r { "-" } else { "+" })).collect();
        assert_eq!(keys, ["a-", "b+", "c-", "d+"], "first-write order, last write per key");

        s.apply_writes(&w);
        let mut got: Vec<_> = s.entries().map(|e| (e.key.clone(), e.value)).collect();
        got.sort();
        assert_eq!(got, [("b".to_string(), 20), ("d".to_string(), 4)]);
    }
}

//! Hash tables: a `hashbrown::HashTable` of shared entries, hashed with foldhash.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Shared, Store, Visit, WriteSet};
use crate::schema::TableKind;

type Hasher = foldhash::fast::RandomState;

/// The records of a hash table.
pub(crate) struct HashStore<K, V> {
    table: hashbrown::HashTable<Shared<K, V>>,
    hasher: Hasher,
}

impl<K, V> Clone for HashStore<K, V> {
    fn clone(&self) -> Self {
        HashStore { table: self.table.clone(), hasher: self.hasher.clone() }
    }
}

impl<K, V> Default for HashStore<K, V> {
    fn default() -> Self {
        HashStore { table: hashbrown::HashTable::new(), hasher: Hasher::default() }
    }
}

impl<K: Hash + Eq, V> HashStore<K, V> {
    /// Looks a key up by any borrowed form of it.
    pub(crate) fn find_by<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&Shared<K, V>>
    where
        K: Borrow<Q>,
    {
        let hash = self.hasher.hash_one(key);
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

    fn find(&self, key: &K) -> Option<&Shared<K, V>> {
        self.find_by(key)
    }

    fn put(&mut self, entry: Shared<K, V>) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(&entry.key);
        match self.table.entry(hash, |e| e.key == entry.key, |e| hasher.hash_one(&e.key)) {
            hashbrown::hash_table::Entry::Occupied(mut o) => *o.get_mut() = entry,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(entry);
            }
        }
    }

    fn delete(&mut self, key: &K) {
        let hash = self.hasher.hash_one(key);
        if let Ok(o) = self.table.find_entry(hash, |e| e.key == *key) {
            o.remove();
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
    }
}

/// A transaction's writes to a hash table.
pub(crate) struct HashWrites<K, V>(HashMap<K, Option<Shared<K, V>>, Hasher>);

impl<K, V> Default for HashWrites<K, V> {
    fn default() -> Self {
        HashWrites(HashMap::default())
    }
}

impl<K, V> WriteSet<K, V> for HashWrites<K, V>
where
    K: Clone + Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn put(&mut self, entry: Shared<K, V>) {
        self.0.insert(entry.key.clone(), Some(entry));
    }

    fn delete(&mut self, key: K) {
        self.0.insert(key, None);
    }

    fn get(&self, key: &K) -> Option<Option<&Shared<K, V>>> {
        self.0.get(key).map(Option::as_ref)
    }

    fn for_each(&self, f: &mut Visit<'_, K, V>) {
        for (k, e) in &self.0 {
            f(k, e.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Entry;
    use std::sync::Arc;

    #[test]
    fn put_replace_delete_and_clone_shares_entries() {
        let mut s: HashStore<String, u32> = HashStore::default();
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
}

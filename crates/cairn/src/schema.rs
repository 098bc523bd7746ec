//! What a schema declares: its tables, their names and kinds. The `schema!` macro implements [`Schema`].

use std::fmt;
use std::sync::Arc;

use crate::describe::{describe, TraceError, TypeDescription};
use crate::store::index::{IndexKey, IndexStore, Indexes, MultiStore, UniqueStore};
use crate::store::TableStore;

/// How a table keeps its records in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TableKind {
    /// A hash table: `get` in constant time, iteration in no particular order. Keys are `Eq + Hash`.
    Hash,
    /// An ordered table: iteration and `range` in key order. Keys are `Ord`.
    Ordered,
}

impl TableKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            TableKind::Hash => 0,
            TableKind::Ordered => 1,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(TableKind::Hash),
            1 => Some(TableKind::Ordered),
            _ => None,
        }
    }
}

/// Describes a table's key and value types; on failure, says which ("key" or "value").
pub(crate) type DescribeFn = fn() -> Result<(TypeDescription, TypeDescription), (&'static str, TraceError)>;

/// One table of a schema, as the `schema!` macro describes it.
pub struct TableDef {
    pub(crate) name: &'static str,
    pub(crate) kind: TableKind,
    /// The names of the table's indexes, and whether each is unique.
    pub(crate) indexes: Vec<(&'static str, bool)>,
    /// Earlier names of the table (`#[renamed_from(..)]`), tried in order when its name is not on disk.
    pub(crate) old_names: Vec<&'static str>,
    /// Describes the key and value types (see [`crate::describe`]).
    /// On failure, says which ("key" or "value").
    pub(crate) describe: DescribeFn,
    pub(crate) make: Arc<dyn Fn() -> Box<dyn TableStore> + Send + Sync>,
}

impl fmt::Debug for TableDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableDef")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("indexes", &self.indexes)
            .field("old_names", &self.old_names)
            .finish_non_exhaustive()
    }
}

/// One secondary index of a table, as the `schema!` macro describes it: a name and a function of the value.
pub struct IndexDef<K, V> {
    store: Box<dyn IndexStore<K, V>>,
}

impl<K: 'static, V: 'static> fmt::Debug for IndexDef<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexDef").field("name", &self.store.name()).field("unique", &self.store.unique()).finish()
    }
}

impl<K: Key + Eq, V: Value> IndexDef<K, V> {
    /// Used by `schema!`: a unique index named `name` on the key `extract` computes from each value, a B-tree if
    /// `ordered`, else a hash map.
    #[doc(hidden)]
    pub fn unique<IK: IndexKey>(name: &'static str, ordered: bool, extract: fn(&V) -> IK) -> Self {
        IndexDef { store: Box::new(UniqueStore::new(name, extract, ordered)) }
    }

    /// Used by `schema!`: a non-unique index named `name` on the key `extract` computes from each value, a B-tree
    /// if `ordered`, else a hash map.
    #[doc(hidden)]
    pub fn multi<IK: IndexKey>(name: &'static str, ordered: bool, extract: fn(&V) -> IK) -> Self {
        IndexDef { store: Box::new(MultiStore::new(name, extract, ordered)) }
    }
}

impl TableDef {
    /// The table's stable name: its identity on disk.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The table's kind.
    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// The names of the table's secondary indexes, each with whether it is unique.
    pub fn indexes(&self) -> &[(&'static str, bool)] {
        &self.indexes
    }

    /// The table's earlier names, from `#[renamed_from(..)]`.
    pub fn old_names(&self) -> &[&'static str] {
        &self.old_names
    }

    /// Used by `schema!`: the table was called `names` before (`#[renamed_from(..)]`). A database that has a table
    /// of one of these names and none of the new one opens it under the new name; the name on disk stays, so code
    /// that still uses the old name keeps working too.
    #[doc(hidden)]
    pub fn renamed_from(mut self, names: &[&'static str]) -> Self {
        self.old_names.extend_from_slice(names);
        self
    }
}

/// A schema: the struct `schema!` generates. Not meant to be implemented by hand.
pub trait Schema: Sized + Send + Sync + 'static {
    /// The schema's tables, in declaration order.
    fn tables() -> Vec<TableDef>;
    /// Builds the schema's struct around an open database.
    fn from_db(db: crate::Db) -> Self;
}

/// What a table's key must be: any serde type that can be cloned and shared between threads. Hash tables also need
/// `Hash + Eq`, ordered tables `Ord`.
pub trait Key: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {}

impl<T: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static> Key for T {}

/// What a table's value must be: any serde type that can be shared between threads.
pub trait Value: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {}

impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static> Value for T {}

impl TableDef {
    /// Used by `schema!`: a hash table named `name`, with secondary indexes.
    #[doc(hidden)]
    pub fn hash<K: Key + std::hash::Hash + Eq, V: Value>(name: &'static str, indexes: Vec<IndexDef<K, V>>) -> Self {
        Self::of::<crate::store::hash::HashStore<K, V>>(name, indexes)
    }

    /// Used by `schema!`: an ordered table named `name`, with secondary indexes.
    #[doc(hidden)]
    pub fn ordered<K: Key + Ord, V: Value>(name: &'static str, indexes: Vec<IndexDef<K, V>>) -> Self {
        Self::of::<crate::store::ordered::OrderedStore<K, V>>(name, indexes)
    }

    fn of<S: crate::store::Store>(name: &'static str, indexes: Vec<IndexDef<S::K, S::V>>) -> Self {
        let names = indexes.iter().map(|i| (i.store.name(), i.store.unique())).collect();
        let protos = Indexes::new(indexes.into_iter().map(|i| i.store).collect());
        TableDef {
            name,
            kind: S::KIND,
            indexes: names,
            old_names: Vec::new(),
            describe: || {
                Ok((describe::<S::K>().map_err(|e| ("key", e))?, describe::<S::V>().map_err(|e| ("value", e))?))
            },
            make: {
                // Drawn once per table each time a database opens: every store made for it shares them.
                let seeds = crate::store::hasher::Seeds::default();
                Arc::new(move || Box::new(S::with_indexes(protos.clone(), &seeds)))
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::any::Any;

    use super::TableDef;
    use crate::store::hash::HashStore;

    fn seeds(store: &dyn crate::store::TableStore) -> crate::store::hasher::Seeds {
        (store as &dyn Any).downcast_ref::<HashStore<u64, u64>>().expect("a hash table's store").seeds().clone()
    }

    /// A table handle hashes with seeds it copied when it was made (`table.rs`), so every store made for one table
    /// of one open database (both copies, a reload from another process's snapshot) must hash alike; another
    /// open of the same schema draws its own, so copying one database's table into another's is not pathological.
    #[test]
    fn every_store_made_for_a_table_hashes_alike_and_each_open_draws_its_own() {
        let def = TableDef::hash::<u64, u64>("t", Vec::new());
        let (first, second) = ((def.make)(), (def.make)());
        assert_eq!(seeds(&*first), seeds(&*second));
        assert_eq!(seeds(&*first), seeds(&*first.clone_boxed()));
        let other = TableDef::hash::<u64, u64>("t", Vec::new());
        assert_ne!(seeds(&*first), seeds(&*(other.make)()));
    }
}

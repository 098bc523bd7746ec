//! What a schema declares: its tables, their names and kinds. The `schema!` macro implements [`Schema`].

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

/// One table of a schema, as the `schema!` macro describes it.
#[derive(Debug)]
pub struct TableDef {
    pub(crate) name: &'static str,
    pub(crate) kind: TableKind,
    pub(crate) make: fn() -> Box<dyn TableStore>,
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
    /// Used by `schema!`: a hash table named `name`.
    #[doc(hidden)]
    pub fn hash<K: Key + std::hash::Hash + Eq, V: Value>(name: &'static str) -> Self {
        Self::of::<crate::store::hash::HashStore<K, V>>(name)
    }

    /// Used by `schema!`: an ordered table named `name`.
    #[doc(hidden)]
    pub fn ordered<K: Key + Ord, V: Value>(name: &'static str) -> Self {
        Self::of::<crate::store::ordered::OrderedStore<K, V>>(name)
    }

    fn of<S: crate::store::Store>(name: &'static str) -> Self {
        TableDef { name, kind: S::KIND, make: || Box::new(S::default()) }
    }
}

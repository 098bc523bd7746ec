//! The in-memory tables and how readers see them.
//!
//! Every table keeps its records as `Arc<Entry<K, V>>`, and the whole database state (all tables) exists twice (see
//! `publish`): readers read the active copy without locks or waiting, the commit path applies a transaction to the
//! other copy, makes it active, waits for the readers still in the old copy, then applies the transaction there
//! too. Both copies share the same `Arc<Entry>`s, so records are stored once and only the index (a hash table or
//! B-tree of pointers) is doubled. One switch publishes all tables at once, so a reader never
//! sees half of a transaction. ARCHITECTURE.md records the measurements behind this choice.

pub(crate) mod hash;
pub(crate) mod hasher;
pub(crate) mod index;
pub(crate) mod ordered;
pub(crate) mod publish;
pub(crate) mod read;
pub(crate) mod state;

use std::any::Any;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::evolve::Plan;
use crate::schema::TableKind;
use index::Indexes;

/// A record, shared by both copies of the state and by write sets.
#[derive(Debug)]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
}

/// A shared record.
pub(crate) type Shared<K, V> = Arc<Entry<K, V>>;

/// A typed table store. Not `Default`: a hash store must hash with its table's seeds, which the table's handle
/// copies (`hasher::Seeds`), so every store is made through `with_indexes`.
pub(crate) trait Store: Clone + Send + Sync + 'static {
    type K: Clone + Serialize + DeserializeOwned + Send + Sync + 'static;
    type V: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The last write per key of one transaction to this table.
    type Writes: WriteSet<Self::K, Self::V>;
    const KIND: TableKind;

    /// An empty table with these indexes, hashing with `seeds` if it hashes.
    fn with_indexes(indexes: Indexes<Self::K, Self::V>, seeds: &hasher::Seeds) -> Self;
    fn indexes(&self) -> &Indexes<Self::K, Self::V>;
    fn find(&self, key: &Self::K) -> Option<&Shared<Self::K, Self::V>>;
    fn put(&mut self, entry: Shared<Self::K, Self::V>);
    fn delete(&mut self, key: &Self::K);
    fn len(&self) -> usize;
    fn entries(&self) -> impl Iterator<Item = &Shared<Self::K, Self::V>> + '_;
    fn reserve(&mut self, _additional: usize) {}
    /// The hash `put_with_hash` expects for `key` (stores that do not hash return 0).
    fn hash_of(&self, _key: &Self::K) -> u64 {
        0
    }
    /// Puts `entry`, whose key hashes to `hash` (from `hash_of` on this table or a copy of it).
    fn put_with_hash(&mut self, _hash: u64, entry: Shared<Self::K, Self::V>) {
        self.put(entry);
    }
    /// Puts `entry` into this table and into `twin`, a copy of it (same hasher).
    fn put_twin(&mut self, twin: &mut Self, entry: Shared<Self::K, Self::V>) {
        let hash = self.hash_of(&entry.key);
        twin.put_with_hash(hash, entry.clone());
        self.put_with_hash(hash, entry);
    }
    /// An empty write set for this table (it may share the table's hasher, so that applying it needs no rehash).
    fn new_writes(&self) -> Self::Writes;
    /// Applies a transaction's write set.
    fn apply_writes(&mut self, writes: &Self::Writes);
}

/// The writes of one transaction to one table: the last write per key.
///
/// A removal keeps the entry it removes (`prior`): the record as the transaction found it, which carries the key and,
/// when it came from the state the transaction started from, is the very pointer the table holds, so applying the
/// removal finds its slot without reading the record.
pub(crate) trait WriteSet<K, V>: Send + Sync + 'static {
    fn put(&mut self, entry: Shared<K, V>);
    fn remove(&mut self, prior: Shared<K, V>);
    /// `Some(None)` if the key was removed, `Some(Some(e))` if written, `None` if untouched.
    fn get(&self, key: &K) -> Option<Option<&Shared<K, V>>>;
    /// Visits every write: the entry written, or for a removal the entry removed and `true`.
    fn for_each(&self, f: &mut dyn FnMut(&Shared<K, V>, bool));
}

/// Why an encoded record did not decode.
#[derive(Debug)]
pub(crate) struct DecodeFailure {
    pub(crate) what: &'static str,
    pub(crate) message: String,
    pub(crate) kind: FailureKind,
}

/// What kind of decoding failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The bytes do not decode: damage, or a type that changed without Cairn knowing (format 1 records).
    Damaged,
    /// The record holds an enum variant the running type does not have: that record cannot be read, the others can.
    UnknownVariant,
    /// The running type cannot be built from the record (at this path): a change that needs a migration.
    Mismatch(String),
}

/// Decodes a value written under `plan`. A refused or undefined version is a `Mismatch` here; open checks for those
/// first, to report them with their own errors.
pub(crate) fn decode_value<V: DeserializeOwned + 'static>(bytes: &[u8], plan: &Plan) -> Result<V, DecodeFailure> {
    let unreadable =
        |message: String| DecodeFailure { what: "value", message, kind: FailureKind::Mismatch(String::new()) };
    match plan {
        Plan::Fast => decode(bytes, "value"),
        Plan::Refuse(r) => {
            Err(unreadable(format!("written by schema version {}, which this schema cannot read", r.writer_version)))
        }
        Plan::Undefined => Err(unreadable("written by a schema version the database does not define".into())),
        Plan::Resolve(writer) => crate::describe::decode_as::<V>(bytes, writer).map_err(|e| {
            use crate::describe::ResolveError;
            match e {
                ResolveError::Malformed(message) => {
                    DecodeFailure { what: "value", message, kind: FailureKind::Damaged }
                }
                ResolveError::UnknownVariant { path, enum_name, variant } => DecodeFailure {
                    what: "value",
                    message: format!("unknown variant `{variant}` of enum `{enum_name}` at `{path}`"),
                    kind: FailureKind::UnknownVariant,
                },
                ResolveError::Mismatch { path, message } => {
                    DecodeFailure { what: "value", message, kind: FailureKind::Mismatch(path) }
                }
            }
        }),
    }
}

/// What the state needs of a table without knowing its types.
pub(crate) trait TableStore: Any + Send + Sync {
    /// Applies a transaction's write set (`S::Writes` behind `Any`).
    fn apply(&mut self, writes: &(dyn Any + Send + Sync));
    /// Applies one encoded operation from the log or a snapshot to this table and to `twin`, the other copy of it (a
    /// clone of this table made before loading, of the same type): each record is decoded and hashed once, and goes
    /// into both copies while it is in the cache.
    ///
    /// A put whose value cannot be read (`FailureKind::UnknownVariant`) removes the key, as the put superseded what
    /// the table held, and returns the failure.
    fn apply_encoded(
        &mut self,
        twin: &mut dyn TableStore,
        key: &[u8],
        value: Option<(&[u8], &Plan)>,
    ) -> Result<(), DecodeFailure>;
    /// Decodes one snapshot record into `batches`, one per copy of the state (each created on first use; typed
    /// batches behind `Any`): the record and its hash once, the pointer twice (its second reference taken while it
    /// is in the cache).
    fn decode_into(
        &self,
        batches: &mut [Option<LoadBatch>; 2],
        key: &[u8],
        value: &[u8],
        plan: &Plan,
    ) -> Result<(), DecodeFailure>;
    /// Puts a batch's records into this table.
    fn insert_batch(&mut self, batch: LoadBatch);
    fn clone_boxed(&self) -> Box<dyn TableStore>;
    /// The number of records.
    fn records(&self) -> usize;
    /// Makes room for `additional` more records (a hint; ordered tables ignore it).
    fn reserve(&mut self, additional: usize);
    /// The table's index at `i`, as its concrete store type (`index::UniqueStore` or `index::MultiStore`).
    fn index(&self, i: usize) -> &dyn Any;
    /// The first index key a unique index found held by two records while loading: (index name, key printed).
    fn index_collision(&self) -> Option<(&'static str, String)>;
    /// Builds the write set (`S::Writes` behind `Any`) of one transaction that another process committed (shared mode)
    /// from its operations on this table as the log holds them, in log order, against this table (the published
    /// state) and `earlier`, the transactions decoded before it and not yet applied (oldest first). A removal carries
    /// the record it removes as the operations before it see it; a removal of a key nobody holds is dropped.
    fn decode_writes(
        &self,
        pos: usize,
        earlier: &[Arc<state::Committed>],
        ops: &[EncodedWrite<'_>],
    ) -> Result<Box<dyn Any + Send + Sync>, DecodeFailure>;
    /// Decodes this table's operations read back from the log into the change feed's typed changes.
    fn feed_decoder(&self, plans: Arc<crate::evolve::TablePlans>) -> Box<dyn crate::feed::Decoder>;
}

/// One write as the log holds it: the encoded key, and for a put the encoded value with the plan that reads it.
pub(crate) type EncodedWrite<'a> = (&'a [u8], Option<(&'a [u8], &'a Plan)>);

/// Decoded records on their way into one copy of a table: a `Batch<K, V>` behind `Any`.
pub(crate) type LoadBatch = Box<dyn Any + Send>;

/// The typed content of a [`LoadBatch`]: records with their hashes.
type Batch<K, V> = Vec<(u64, Shared<K, V>)>;

/// Decodes a whole postcard value; trailing bytes are an error.
/// Decodes one postcard value from the front of `bytes`. A `Vec<u8>` is read in one copy, not byte by byte through
/// serde's sequence visitor: postcard writes a byte sequence as its length and the bytes, the same as a byte string
/// (`log::record::put_value` writes it that way; both paths give the same result on every input, see tests). That
/// visitor was 15% of the CPU time of reopening 1M records of 150-byte values.
fn take<T: DeserializeOwned + 'static>(bytes: &[u8]) -> postcard::Result<(T, &[u8])> {
    let mut out: Option<T> = None;
    let Some(slot) = (&mut out as &mut dyn Any).downcast_mut::<Option<Vec<u8>>>() else {
        return postcard::take_from_bytes::<T>(bytes);
    };
    let (b, rest) = postcard::take_from_bytes::<&[u8]>(bytes)?;
    *slot = Some(b.to_vec());
    Ok((out.expect("set just above"), rest))
}

pub(crate) fn decode<T: DeserializeOwned + 'static>(bytes: &[u8], what: &'static str) -> Result<T, DecodeFailure> {
    match take::<T>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(DecodeFailure {
            what,
            message: format!("{} bytes left over after decoding", rest.len()),
            kind: FailureKind::Damaged,
        }),
        Err(e) => Err(DecodeFailure { what, message: e.to_string(), kind: FailureKind::Damaged }),
    }
}

impl<S: Store> TableStore for S {
    fn records(&self) -> usize {
        Store::len(self)
    }

    fn apply(&mut self, writes: &(dyn Any + Send + Sync)) {
        self.apply_writes(writes.downcast_ref::<S::Writes>().expect("write set type matches its table"));
    }

    fn apply_encoded(
        &mut self,
        twin: &mut dyn TableStore,
        key: &[u8],
        value: Option<(&[u8], &Plan)>,
    ) -> Result<(), DecodeFailure> {
        let twin = (twin as &mut dyn Any).downcast_mut::<S>().expect("a table's twin has its type");
        let key: S::K = decode(key, "key")?;
        match value.map(|(v, plan)| decode_value::<S::V>(v, plan)) {
            Some(Ok(value)) => self.put_twin(twin, Arc::new(Entry { key, value })),
            Some(Err(f)) if f.kind == FailureKind::UnknownVariant => {
                self.delete(&key);
                twin.delete(&key);
                return Err(f);
            }
            Some(Err(f)) => return Err(f),
            None => {
                self.delete(&key);
                twin.delete(&key);
            }
        }
        Ok(())
    }

    fn decode_into(
        &self,
        batches: &mut [Option<LoadBatch>; 2],
        key: &[u8],
        value: &[u8],
        plan: &Plan,
    ) -> Result<(), DecodeFailure> {
        let entry = Arc::new(Entry { key: decode::<S::K>(key, "key")?, value: decode_value::<S::V>(value, plan)? });
        let hash = self.hash_of(&entry.key);
        let [a, b] = batches.each_mut().map(|b| {
            b.get_or_insert_with(|| Box::new(Batch::<S::K, S::V>::new()))
                .downcast_mut::<Batch<S::K, S::V>>()
                .expect("a load batch has its table's types")
        });
        a.push((hash, entry.clone()));
        b.push((hash, entry));
        Ok(())
    }

    fn insert_batch(&mut self, batch: LoadBatch) {
        let batch = batch.downcast::<Batch<S::K, S::V>>().expect("a load batch has its table's types");
        for (hash, entry) in *batch {
            self.put_with_hash(hash, entry);
        }
    }

    fn clone_boxed(&self) -> Box<dyn TableStore> {
        Box::new(self.clone())
    }

    fn reserve(&mut self, additional: usize) {
        Store::reserve(self, additional);
    }

    fn index(&self, i: usize) -> &dyn Any {
        self.indexes().get(i).as_any()
    }

    fn index_collision(&self) -> Option<(&'static str, String)> {
        self.indexes().collision()
    }

    fn feed_decoder(&self, plans: Arc<crate::evolve::TablePlans>) -> Box<dyn crate::feed::Decoder> {
        crate::feed::decoder::<S>(plans)
    }

    fn decode_writes(
        &self,
        pos: usize,
        earlier: &[Arc<state::Committed>],
        ops: &[EncodedWrite<'_>],
    ) -> Result<Box<dyn Any + Send + Sync>, DecodeFailure> {
        let mut writes = self.new_writes();
        for &(key, value) in ops {
            let key: S::K = decode(key, "key")?;
            match value {
                Some((v, plan)) => writes.put(Arc::new(Entry { key, value: decode_value::<S::V>(v, plan)? })),
                None => {
                    let prior = match writes.get(&key) {
                        Some(hit) => hit.cloned(),
                        None => match earlier.iter().rev().find_map(|c| c.writes::<S>(pos)?.get(&key)) {
                            Some(hit) => hit.cloned(),
                            None => self.find(&key).cloned(),
                        },
                    };
                    if let Some(prior) = prior {
                        writes.remove(prior);
                    }
                }
            }
        }
        Ok(Box::new(writes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-copy path for byte vectors agrees with postcard's own on every input: well-formed (lengths around
    /// the varint boundaries, with and without bytes after), cut short, an over-long varint, and pseudo-random bytes.
    #[test]
    fn byte_vectors_decode_as_postcard_does() {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for len in [0usize, 1, 127, 128, 150, 16_384] {
            let v: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
            let encoded = postcard::to_stdvec(&v).unwrap();
            inputs.push(encoded.clone());
            inputs.push([encoded.as_slice(), &[9, 9]].concat());
            inputs.push(encoded[..encoded.len() - 1].to_vec());
        }
        inputs.push(vec![0xff; 11]);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            let len = (x % 12) as usize;
            inputs.push(
                (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect(),
            );
        }
        let mut ok = 0;
        for input in &inputs {
            let ours = take::<Vec<u8>>(input).map_err(|e| e.to_string());
            let theirs = postcard::take_from_bytes::<Vec<u8>>(input).map_err(|e| e.to_string());
            assert_eq!(ours.is_ok(), theirs.is_ok(), "input {input:?}: {ours:?} vs {theirs:?}");
            if let (Ok(a), Ok(b)) = (ours, theirs) {
                assert_eq!(a, b, "input {input:?}");
                ok += 1;
            }
        }
        assert!(ok >= 12, "the well-formed inputs decode ({ok})");
        // Other types are untouched.
        assert_eq!(take::<Vec<u16>>(&postcard::to_stdvec(&vec![1u16, 300]).unwrap()).unwrap().0, vec![1, 300]);
    }
}

//! One transaction as the feed carries it, from the ring (the committed write sets, shared) or from the log
//! (decoded once, with the tables' types, into the same shape), and its typed changes per table.
//!
//! Both sources give the same changes in the same order: the last write per key, in the order the transaction first
//! wrote each key for hash tables (as `HashWrites` keeps them) and in key order for ordered tables (as
//! `OrderedWrites` does). The log's operations are deduplicated by their encoded key, which is exact because equal
//! keys encode to equal bytes (`docs/format.md`); ordered tables sort them with the key type's `Ord`, which only
//! the typed handle knows ([`FeedStore::order`]).

use std::any::Any;
use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use super::event::Change;
use super::log::Frame;
use super::FeedError;
use crate::db::Inner;
use crate::error::{Corruption, Error};
use crate::evolve::TablePlans;
use crate::log::frame::HEADER_LEN;
use crate::log::record::{self, Op};
use crate::schema::{Key, Value};
use crate::store::hash::HashStore;
use crate::store::ordered::OrderedStore;
use crate::store::state::Committed;
use crate::store::{decode, decode_value, DecodeFailure, Entry, Store, WriteSet};

/// One operation on a table as the log holds it: the encoded key, and for a put the schema version and the encoded
/// value.
pub(crate) type EncodedOp<'a> = (&'a [u8], Option<(u32, &'a [u8])>);

/// A `Vec<Change<K, V>>` of one table, behind `Any`.
pub(crate) type AnyChanges = Box<dyn Any + Send + Sync>;

/// Decodes a table's operations from the log without its types being known where it is called.
pub(crate) trait Decoder: Send + Sync {
    /// One transaction's operations on this table, in log order (a key, and a value or `None` for a removal), as
    /// the last change per key in first-write order.
    /// A value comes with the schema version that encoded it.
    fn decode(&self, ops: &[EncodedOp<'_>]) -> Result<AnyChanges, DecodeFailure>;
}

struct Typed<S>(Arc<TablePlans>, PhantomData<fn() -> S>);

/// The decoder of store type `S` (see `TableStore::feed_decoder`), reading each schema version by `plans`.
pub(crate) fn decoder<S: Store>(plans: Arc<TablePlans>) -> Box<dyn Decoder> {
    Box::new(Typed::<S>(plans, PhantomData))
}

impl<S: Store> Decoder for Typed<S> {
    fn decode(&self, ops: &[EncodedOp<'_>]) -> Result<AnyChanges, DecodeFailure> {
        let mut last: Vec<EncodedOp<'_>> = Vec::with_capacity(ops.len());
        let mut index: HashMap<&[u8], usize> = HashMap::new();
        for &(key, value) in ops {
            match index.entry(key) {
                std::collections::hash_map::Entry::Occupied(o) => last[*o.get()].1 = value,
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(last.len());
                    last.push((key, value));
                }
            }
        }
        let mut changes: Vec<Change<S::K, S::V>> = Vec::with_capacity(last.len());
        for (key, value) in last {
            let key: S::K = decode(key, "key")?;
            changes.push(match value {
                Some((schema, value)) => {
                    Change::written(Arc::new(Entry { key, value: decode_value(value, self.0.get(schema))? }))
                }
                None => Change::removed_key(key),
            });
        }
        Ok(Box::new(changes))
    }
}

/// A store type the feed can type changes for: it knows how its write sets order them.
pub(crate) trait FeedStore: Store {
    /// Puts changes decoded from the log (last write per key, first-write order) in this table's write-set order.
    fn order(changes: &mut [Change<Self::K, Self::V>]);
}

impl<K: Key + Hash + Eq, V: Value> FeedStore for HashStore<K, V> {
    fn order(_: &mut [Change<K, V>]) {}
}

impl<K: Key + Ord, V: Value> FeedStore for OrderedStore<K, V> {
    fn order(changes: &mut [Change<K, V>]) {
        changes.sort_by(|a, b| a.key().cmp(b.key()));
    }
}

/// One committed transaction that touched at least one table a subscription follows.
#[derive(Clone)]
pub(crate) enum Txn {
    /// From the ring: the write sets the commit published.
    Live(Arc<Committed>),
    /// Read back from the log.
    Log(Arc<LogTxn>),
}

/// A transaction decoded from the log: the changes per table position, positions ascending.
pub(crate) struct LogTxn {
    seq: u64,
    tables: Vec<(usize, AnyChanges)>,
}

impl Txn {
    pub(crate) fn seq(&self) -> u64 {
        match self {
            Txn::Live(c) => c.seq,
            Txn::Log(t) => t.seq,
        }
    }

    /// The positions of the tables it wrote, ascending.
    pub(crate) fn positions(&self) -> Vec<usize> {
        match self {
            Txn::Live(c) => c.writes.iter().map(|(pos, _)| *pos).collect(),
            Txn::Log(t) => t.tables.iter().map(|(pos, _)| *pos).collect(),
        }
    }

    /// Its changes to the table at `pos`, typed as `S` (`None` if it did not write that table, or the table is of
    /// another type).
    pub(crate) fn changes<S: FeedStore>(&self, pos: usize) -> Option<Vec<Change<S::K, S::V>>> {
        match self {
            Txn::Live(c) => {
                let writes = c.writes::<S>(pos)?;
                let mut out = Vec::new();
                writes.for_each(&mut |entry, removed| out.push(Change::from_write(entry.clone(), removed)));
                Some(out)
            }
            Txn::Log(t) => {
                let (_, changes) = t.tables.iter().find(|(p, _)| *p == pos)?;
                let mut out = changes.downcast_ref::<Vec<Change<S::K, S::V>>>()?.clone();
                S::order(&mut out);
                Some(out)
            }
        }
    }

    /// [`Txn::changes`], moving them out of a transaction decoded for this subscription alone.
    pub(crate) fn into_changes<S: FeedStore>(self, pos: usize) -> Option<Vec<Change<S::K, S::V>>> {
        let Txn::Log(t) = self else { return self.changes::<S>(pos) };
        let t = match Arc::try_unwrap(t) {
            Ok(t) => t,
            Err(shared) => return Txn::Log(shared).changes::<S>(pos),
        };
        let (_, changes) = t.tables.into_iter().find(|(p, _)| *p == pos)?;
        let mut out = *changes.downcast::<Vec<Change<S::K, S::V>>>().ok()?;
        S::order(&mut out);
        Some(out)
    }
}

/// Whether a transaction from the ring wrote any table in `positions`.
pub(crate) fn touches(committed: &Committed, positions: &std::ops::Range<usize>) -> bool {
    committed.writes.iter().any(|(pos, _)| positions.contains(pos))
}

/// The decoders of the tables a subscription follows, by table id.
pub(crate) struct Tables {
    tables: Vec<TableDecoder>,
}

struct TableDecoder {
    id: u32,
    pos: usize,
    name: &'static str,
    decoder: Box<dyn Decoder>,
}

impl Tables {
    /// The decoders of the tables at `positions`.
    pub(crate) fn new(inner: &Inner, positions: std::ops::Range<usize>) -> Self {
        let decoders: Vec<Box<dyn Decoder>> = inner.read(|state| {
            positions.clone().map(|pos| state.store(pos).feed_decoder(inner.plans[pos].clone())).collect()
        });
        let tables = positions
            .zip(decoders)
            .map(|(pos, decoder)| TableDecoder { id: inner.tables[pos].id, pos, name: inner.tables[pos].name, decoder })
            .collect();
        Tables { tables }
    }

    /// The frame's changes to these tables; `None` if it wrote none of them.
    pub(crate) fn decode(&self, frame: &Frame<'_>) -> Result<Option<Txn>, FeedError> {
        type Ops<'a> = Vec<EncodedOp<'a>>;
        let mut per_table: Vec<(usize, Ops<'_>)> = Vec::new();
        for op in record::ops(&frame.payload) {
            let (table, key, value) = match op {
                Ok(Op::Put { table, schema, key, value }) => (table, key, Some((schema, value))),
                Ok(Op::Delete { table, key }) => (table, key, None),
                Ok(Op::CreateTable { .. } | Op::Writer { .. } | Op::DefineSchema { .. }) => continue,
                Err(at) => {
                    let offset = frame.offset + (HEADER_LEN + at) as u64;
                    let what = "malformed operation in a checksummed frame";
                    return Err(Error::from(Corruption::new(frame.path, offset, what)).into());
                }
            };
            let Some(i) = self.tables.iter().position(|t| t.id == table) else { continue };
            match per_table.iter_mut().find(|(j, _)| *j == i) {
                Some((_, ops)) => ops.push((key, value)),
                None => per_table.push((i, vec![(key, value)])),
            }
        }
        if per_table.is_empty() {
            return Ok(None);
        }
        let mut tables = Vec::with_capacity(per_table.len());
        for (i, ops) in per_table {
            let t = &self.tables[i];
            let changes = t.decoder.decode(&ops).map_err(|f| Error::Decode {
                table: t.name.to_string(),
                what: f.what,
                file: frame.path.to_path_buf(),
                offset: frame.offset,
                message: f.message,
            })?;
            tables.push((t.pos, changes));
        }
        tables.sort_by_key(|(pos, _)| *pos);
        Ok(Some(Txn::Log(Arc::new(LogTxn { seq: frame.seq, tables }))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
        postcard::to_stdvec(v).unwrap()
    }

    fn decoded<S: FeedStore>(ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<(S::K, Option<S::V>)>
    where
        S::K: Clone,
        S::V: Clone,
    {
        let ops: Vec<EncodedOp<'_>> = ops.iter().map(|(k, v)| (&k[..], v.as_deref().map(|v| (0, v)))).collect();
        let any = decoder::<S>(TablePlans::fast()).decode(&ops).unwrap();
        let txn = Txn::Log(Arc::new(LogTxn { seq: 1, tables: vec![(0, any)] }));
        txn.changes::<S>(0).unwrap().iter().map(|c| (c.key().clone(), c.value().cloned())).collect()
    }

    #[test]
    fn the_last_write_per_key_in_first_write_order_or_key_order() {
        let ops = vec![
            (enc(&5u32), Some(enc(&"a"))),
            (enc(&2u32), Some(enc(&"b"))),
            (enc(&5u32), None),
            (enc(&9u32), None),
            (enc(&2u32), Some(enc(&"c"))),
        ];
        let expected_hash = vec![(5, None), (2, Some("c".to_string())), (9, None)];
        assert_eq!(decoded::<HashStore<u32, String>>(&ops), expected_hash);
        let expected_ordered = vec![(2, Some("c".to_string())), (5, None), (9, None)];
        assert_eq!(decoded::<OrderedStore<u32, String>>(&ops), expected_ordered);
    }

    #[test]
    fn only_final_writes_are_decoded_and_a_bad_one_is_named() {
        // An overwritten value that does not decode is never looked at; the final one is.
        let ops = vec![(enc(&1u32), Some(vec![0xff; 3])), (enc(&1u32), Some(enc(&"ok")))];
        assert_eq!(decoded::<HashStore<u32, String>>(&ops), vec![(1, Some("ok".to_string()))]);
        let bad: Vec<EncodedOp<'_>> = vec![(&[7], Some((0, &[0xff, 0xff])))];
        let err = decoder::<HashStore<u32, String>>(TablePlans::fast()).decode(&bad).expect_err("a bad value");
        assert_eq!(err.what, "value");
    }
}

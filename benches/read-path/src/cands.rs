//! The candidate read-publish mechanisms, each behind the same small trait so the harness in
//! `main.rs` times them with identical code.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use arc_swap::ArcSwap;
use foldhash::fast::FixedState;
use hashbrown::hash_table::{Entry as TEntry, HashTable};
use left_right::{Absorb, ReadHandle, ReadHandleFactory, WriteHandle};

pub type Key = [u8; 24];
pub const VLEN: usize = 150;

/// The generated records: keys and one flat buffer of values. Every candidate copies each value
/// into its own `Vec<u8>` while building, so the RSS delta of a build covers all owned memory.
pub struct Data {
    pub keys: Vec<Key>,
    pub vals: Vec<u8>,
}

impl Data {
    pub fn value(&self, i: usize) -> &[u8] {
        &self.vals[i * VLEN..(i + 1) * VLEN]
    }
}

/// Same hasher (and seed) for every candidate.
pub fn hasher() -> FixedState {
    FixedState::with_seed(0x5eed_cafe)
}

/// The per-read work: touches the length and the first and last value byte.
#[inline(always)]
pub fn mix(v: &[u8]) -> u64 {
    v.len() as u64 ^ v[0] as u64 ^ v[VLEN - 1] as u64
}

#[cold]
#[inline(never)]
fn missing() -> ! {
    panic!("a key that was inserted was not found")
}

pub trait Cand: Sized {
    /// Whether the candidate supports single-record insert+publish alongside a reader.
    const WRITES: bool = true;
    /// Something shareable across threads from which each thread makes its reader.
    type Shared: Send + Sync;
    /// The per-thread reader.
    type Reader;
    /// Insert every record, one at a time, from one writer.
    fn build(d: &Data) -> Self;
    /// Whatever must happen before the structure is fully in its steady state (timed with build).
    fn finish(&mut self) {}
    fn shared(&self) -> Self::Shared;
    fn reader(s: &Self::Shared) -> Self::Reader;
    /// One point read, taking and releasing whatever guard the mechanism needs.
    fn get(r: &Self::Reader, k: &Key) -> u64;
    /// All the reads under one guard (a read snapshot held for the whole pass).
    fn get_all(r: &Self::Reader, keys: &[Key]) -> u64;
    /// Visit every entry under one guard; returns the accumulator and the entry count.
    fn scan(r: &Self::Reader) -> (u64, usize);
    /// Insert one record and make it visible to readers.
    fn write_one(&mut self, _k: Key, _v: &[u8]) {}
}

fn fold_values<'a>(it: impl Iterator<Item = &'a Vec<u8>>) -> (u64, usize) {
    it.fold((0u64, 0usize), |(a, n), v| (a.wrapping_add(mix(v)), n + 1))
}

// ---------------------------------------------------------------------------------------------
// 1. Baseline: std HashMap with foldhash.

type StdMap = HashMap<Key, Vec<u8>, FixedState>;
pub struct Baseline(Arc<StdMap>);

impl Cand for Baseline {
    const WRITES: bool = false;
    type Shared = Arc<StdMap>;
    type Reader = Arc<StdMap>;
    fn build(d: &Data) -> Self {
        let mut m = StdMap::with_hasher(hasher());
        for (i, k) in d.keys.iter().enumerate() {
            m.insert(*k, d.value(i).to_vec());
        }
        Baseline(Arc::new(m))
    }
    fn shared(&self) -> Self::Shared {
        self.0.clone()
    }
    fn reader(s: &Self::Shared) -> Self::Reader {
        s.clone()
    }
    #[inline]
    fn get(r: &Self::Reader, k: &Key) -> u64 {
        match r.get(k) {
            Some(v) => mix(v),
            None => missing(),
        }
    }
    fn get_all(r: &Self::Reader, keys: &[Key]) -> u64 {
        let m: &StdMap = r;
        keys.iter().fold(0u64, |a, k| a.wrapping_add(m.get(k).map_or_else(|| missing(), |v| mix(v))))
    }
    fn scan(r: &Self::Reader) -> (u64, usize) {
        fold_values(r.values())
    }
}

// ---------------------------------------------------------------------------------------------
// 2 and 5. left-right over a hashbrown HashTable whose two copies share one Arc<Entry> per record.

pub struct Entry {
    pub key: Key,
    pub value: Vec<u8>,
}

/// What a bucket holds: either just the `Arc<Entry>` (2) or the hash beside it (5).
pub trait Slot: Clone + Send + Sync + 'static {
    fn new(h: u64, e: Arc<Entry>) -> Self;
    fn entry(&self) -> &Entry;
    fn rehash(&self, s: &FixedState) -> u64;
    fn is(&self, h: u64, k: &Key) -> bool;
}

impl Slot for Arc<Entry> {
    fn new(_: u64, e: Arc<Entry>) -> Self {
        e
    }
    #[inline(always)]
    fn entry(&self) -> &Entry {
        self
    }
    #[inline(always)]
    fn rehash(&self, s: &FixedState) -> u64 {
        s.hash_one(self.key)
    }
    #[inline(always)]
    fn is(&self, _: u64, k: &Key) -> bool {
        self.key == *k
    }
}

#[derive(Clone)]
pub struct Hashed(u64, Arc<Entry>);

impl Slot for Hashed {
    fn new(h: u64, e: Arc<Entry>) -> Self {
        Hashed(h, e)
    }
    #[inline(always)]
    fn entry(&self) -> &Entry {
        &self.1
    }
    #[inline(always)]
    fn rehash(&self, _: &FixedState) -> u64 {
        self.0
    }
    #[inline(always)]
    fn is(&self, h: u64, k: &Key) -> bool {
        self.0 == h && self.1.key == *k
    }
}

#[derive(Clone)]
pub struct LrTable<S> {
    t: HashTable<S>,
    s: FixedState,
}

pub enum Op {
    Insert(Arc<Entry>),
    #[allow(dead_code)] // part of the op set a real table needs; not exercised here
    Remove(Key),
}

impl<S: Slot> LrTable<S> {
    fn upsert(&mut self, e: Arc<Entry>) {
        let s = &self.s;
        let h = s.hash_one(e.key);
        match self.t.entry(h, |x| x.is(h, &e.key), |x| x.rehash(s)) {
            TEntry::Occupied(mut o) => *o.get_mut() = S::new(h, e),
            TEntry::Vacant(v) => {
                v.insert(S::new(h, e));
            }
        }
    }
    fn remove(&mut self, k: &Key) {
        let h = self.s.hash_one(k);
        if let Ok(o) = self.t.find_entry(h, |x| x.is(h, k)) {
            o.remove();
        }
    }
    #[inline(always)]
    fn get(&self, k: &Key) -> u64 {
        let h = self.s.hash_one(k);
        match self.t.find(h, |x| x.is(h, k)) {
            Some(x) => mix(&x.entry().value),
            None => missing(),
        }
    }
}

impl<S: Slot> Absorb<Op> for LrTable<S> {
    fn absorb_first(&mut self, op: &mut Op, _: &Self) {
        match op {
            Op::Insert(e) => self.upsert(Arc::clone(e)),
            Op::Remove(k) => self.remove(k),
        }
    }
    fn absorb_second(&mut self, op: Op, _: &Self) {
        match op {
            Op::Insert(e) => self.upsert(e),
            Op::Remove(k) => self.remove(&k),
        }
    }
    fn sync_with(&mut self, first: &Self) {
        // Called by left-right on the second publish: builds the second copy (one Arc clone per
        // record).
        *self = first.clone();
    }
}

pub struct Lr<S: Slot>(WriteHandle<LrTable<S>, Op>);

impl<S: Slot> Cand for Lr<S> {
    type Shared = ReadHandleFactory<LrTable<S>>;
    type Reader = ReadHandle<LrTable<S>>;
    fn build(d: &Data) -> Self {
        let (mut w, _r) = left_right::new_from_empty::<_, Op>(LrTable { t: HashTable::new(), s: hasher() });
        for (i, k) in d.keys.iter().enumerate() {
            w.append(Op::Insert(Arc::new(Entry { key: *k, value: d.value(i).to_vec() })));
        }
        w.publish();
        Lr(w)
    }
    fn finish(&mut self) {
        // left-right only materialises the second copy (Absorb::sync_with) on the second
        // publish; do it here so build time and RSS include both copies.
        self.0.publish();
    }
    fn shared(&self) -> Self::Shared {
        self.0.factory()
    }
    fn reader(s: &Self::Shared) -> Self::Reader {
        s.handle()
    }
    #[inline]
    fn get(r: &Self::Reader, k: &Key) -> u64 {
        r.enter().expect("writer alive").get(k)
    }
    fn get_all(r: &Self::Reader, keys: &[Key]) -> u64 {
        let g = r.enter().expect("writer alive");
        keys.iter().fold(0u64, |a, k| a.wrapping_add(g.get(k)))
    }
    fn scan(r: &Self::Reader) -> (u64, usize) {
        let g = r.enter().expect("writer alive");
        g.t.iter().fold((0u64, 0usize), |(a, n), x| (a.wrapping_add(mix(&x.entry().value)), n + 1))
    }
    fn write_one(&mut self, k: Key, v: &[u8]) {
        self.0.append(Op::Insert(Arc::new(Entry { key: k, value: v.to_vec() })));
        self.0.publish();
    }
}

// ---------------------------------------------------------------------------------------------
// 3. ArcSwap of a persistent (HAMT) imbl::HashMap.

type Im = imbl::GenericHashMap<Key, Vec<u8>, FixedState, imbl::shared_ptr::DefaultSharedPtr>;
pub struct Swap(Arc<ArcSwap<Im>>);

impl Cand for Swap {
    type Shared = Arc<ArcSwap<Im>>;
    type Reader = Arc<ArcSwap<Im>>;
    fn build(d: &Data) -> Self {
        // Built while uniquely owned (in place), then published once.
        let mut m = Im::with_hasher(hasher());
        for (i, k) in d.keys.iter().enumerate() {
            m.insert(*k, d.value(i).to_vec());
        }
        Swap(Arc::new(ArcSwap::from_pointee(m)))
    }
    fn shared(&self) -> Self::Shared {
        self.0.clone()
    }
    fn reader(s: &Self::Shared) -> Self::Reader {
        s.clone()
    }
    #[inline]
    fn get(r: &Self::Reader, k: &Key) -> u64 {
        match r.load().get(k) {
            Some(v) => mix(v),
            None => missing(),
        }
    }
    fn get_all(r: &Self::Reader, keys: &[Key]) -> u64 {
        let m = r.load_full();
        keys.iter().fold(0u64, |a, k| a.wrapping_add(m.get(k).map_or_else(|| missing(), |v| mix(v))))
    }
    fn scan(r: &Self::Reader) -> (u64, usize) {
        fold_values(r.load_full().values())
    }
    fn write_one(&mut self, k: Key, v: &[u8]) {
        // Single writer: clone (O(1), shares structure), insert (path copy), publish.
        let mut m = Im::clone(&self.0.load());
        m.insert(k, v.to_vec());
        self.0.store(Arc::new(m));
    }
}

// ---------------------------------------------------------------------------------------------
// 4. papaya (lock-free map; no atomic visibility across several maps).

type Pm = papaya::HashMap<Key, Vec<u8>, FixedState>;
pub struct Papaya(Arc<Pm>);

impl Cand for Papaya {
    type Shared = Arc<Pm>;
    type Reader = Arc<Pm>;
    fn build(d: &Data) -> Self {
        let m = papaya::HashMap::builder()
            .hasher(hasher())
            .resize_mode(papaya::ResizeMode::Blocking)
            .build();
        for (i, k) in d.keys.iter().enumerate() {
            m.pin().insert(*k, d.value(i).to_vec());
        }
        Papaya(Arc::new(m))
    }
    fn shared(&self) -> Self::Shared {
        self.0.clone()
    }
    fn reader(s: &Self::Shared) -> Self::Reader {
        s.clone()
    }
    #[inline]
    fn get(r: &Self::Reader, k: &Key) -> u64 {
        match r.pin().get(k) {
            Some(v) => mix(v),
            None => missing(),
        }
    }
    fn get_all(r: &Self::Reader, keys: &[Key]) -> u64 {
        let p = r.pin();
        keys.iter().fold(0u64, |a, k| a.wrapping_add(p.get(k).map_or_else(|| missing(), |v| mix(v))))
    }
    fn scan(r: &Self::Reader) -> (u64, usize) {
        let p = r.pin();
        fold_values(p.iter().map(|(_, v)| v))
    }
    fn write_one(&mut self, k: Key, v: &[u8]) {
        self.0.pin().insert(k, v.to_vec());
    }
}

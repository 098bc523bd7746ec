//! Cairn's own features, measured against Cairn without them in the same process (issue 5): inserts into a table
//! with no, one and three secondary indexes, lookups through a unique index beside lookups by primary key, reopen
//! with the indexes rebuilt, and reopen of records written by an older schema version (resolved by name) beside
//! reopen of the same records under the schema that wrote them (issue 6).
//!
//! Every table holds the workload's records as `Person`s: the 24-byte key, an email made from the key (unique), a
//! city and an age (shared by many records), and the 150-byte value. Inserts run as durable transactions of 1,000
//! records, as the suite's `batch_100x1000` does, over all N records.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::workload::{percentile, secs, time, Key, Out, Recs, Res, TempDir, Workload, BATCH_SIZE};

#[derive(Clone, Serialize, Deserialize)]
pub struct Person {
    email: String,
    city: u16,
    age: u8,
    data: Vec<u8>,
}

fn email(key: &Key) -> String {
    let mut s = String::with_capacity(2 * 12 + 8);
    for b in &key[..12] {
        s.push_str(&format!("{b:02x}"));
    }
    s.push_str("@bench.x");
    s
}

fn person(key: &Key, val: &[u8]) -> Person {
    Person {
        email: email(key),
        city: u16::from_le_bytes([key[12], key[13]]) % 1000,
        age: key[14] % 100,
        data: val.to_vec(),
    }
}

cairn::schema! {
    /// No index.
    pub Plain {
        people: <Key, Person>,
    }
}

cairn::schema! {
    /// One unique index.
    pub One {
        people: <Key, Person> {
            by_email: unique String = |p: &Person| p.email.clone(),
        },
    }
}

cairn::schema! {
    /// A unique index and two non-unique ones.
    pub Three {
        people: <Key, Person> {
            by_email: unique String = |p: &Person| p.email.clone(),
            by_city: u16 = |p: &Person| p.city,
            by_age: u8 = |p: &Person| p.age,
        },
    }
}

/// What the steps below need of each schema.
trait People: Sized {
    const LABEL: &'static str;
    fn open(dir: &Path) -> Res<Self>;
    fn insert_batch(&self, recs: Recs<'_>) -> Res<()>;
    fn get(&self, key: &Key) -> bool;
    /// Looks `email` up through the unique index; `None` when the schema has none.
    fn by_email(&self, email: &str) -> Option<bool>;
}

macro_rules! people {
    ($ty:ident, $label:literal, $by_email:expr) => {
        impl People for $ty {
            const LABEL: &'static str = $label;

            fn open(dir: &Path) -> Res<Self> {
                Ok($ty::open(dir)?)
            }

            fn insert_batch(&self, recs: Recs<'_>) -> Res<()> {
                self.transaction(|tx| {
                    for (k, v) in recs.iter() {
                        tx.people.insert(*k, person(k, v))?;
                    }
                    Ok::<_, cairn::Error>(())
                })?;
                Ok(())
            }

            fn get(&self, key: &Key) -> bool {
                self.people.get_with(key, |p| std::hint::black_box(p.age)).is_some()
            }

            fn by_email(&self, email: &str) -> Option<bool> {
                #[allow(clippy::redundant_closure_call)]
                ($by_email)(self, email)
            }
        }
    };
}

people!(Plain, "0_indexes", |_: &Plain, _: &str| None);
people!(One, "1_index", |db: &One, e: &str| Some(db.people.by_email.get_with(e, |_, p| p.age).is_some()));
people!(Three, "3_indexes", |db: &Three, e: &str| Some(db.people.by_email.get_with(e, |_, p| p.age).is_some()));

fn steps<P: People>(out: &Out, w: &Workload, root: &Path, emails: &[String]) -> Res<()> {
    let dir = TempDir::new(root, &format!("cairn-features-{}", P::LABEL))?;
    let db = P::open(&dir.0)?;
    let recs = w.load();
    let (r, d) = time(|| -> Res<()> {
        for i in 0..recs.len().div_ceil(BATCH_SIZE) {
            db.insert_batch(recs.slice(i * BATCH_SIZE, ((i + 1) * BATCH_SIZE).min(recs.len())))?;
        }
        Ok(())
    });
    r?;
    out.val(&format!("insert_{}", P::LABEL), secs(d), "s (N records, durable transactions of 1,000)");

    let t = Instant::now();
    let found = w.read_keys.iter().filter(|k| db.get(k)).count();
    out.val(&format!("get_by_key_{}", P::LABEL), found as f64 / secs(t.elapsed()) / 1e6, "M reads/s");
    if found != w.read_keys.len() {
        return Err("a loaded key is missing".into());
    }
    let t = Instant::now();
    let mut hits = 0;
    for e in emails {
        match db.by_email(e) {
            Some(true) => hits += 1,
            Some(false) => return Err(format!("email {e} not found through the index").into()),
            None => break,
        }
    }
    if hits > 0 {
        out.val(&format!("get_by_unique_index_{}", P::LABEL), hits as f64 / secs(t.elapsed()) / 1e6, "M reads/s");
    }

    drop(db);
    let t = Instant::now();
    let db = P::open(&dir.0)?;
    if !db.get(&recs.keys[0]) {
        return Err("reopen: the first loaded key is missing".into());
    }
    out.val(&format!("reopen_{}", P::LABEL), secs(t.elapsed()), "s (indexes rebuilt from the records)");
    Ok(())
}

/// `Person` one version later: a field added with a default. Records written as `Person` are read by name.
#[derive(Clone, Serialize, Deserialize)]
pub struct PersonV2 {
    email: String,
    city: u16,
    age: u8,
    data: Vec<u8>,
    #[serde(default)]
    nickname: String,
}

cairn::schema! {
    /// `Plain` with the value type one version later.
    pub PlainV2 {
        people: <Key, PersonV2>,
    }
}

/// Reopen of N records written as `Person`: with the same schema (the fast path), then with `PersonV2` (every record
/// decoded by the writer's description and resolved by name), then with the same schema again.
fn evolved_reopen(out: &Out, w: &Workload, root: &Path) -> Res<()> {
    let dir = TempDir::new(root, "cairn-features-evolve")?;
    let db = Plain::open(&dir.0)?;
    let recs = w.load();
    for i in 0..recs.len().div_ceil(BATCH_SIZE) {
        db.insert_batch(recs.slice(i * BATCH_SIZE, ((i + 1) * BATCH_SIZE).min(recs.len())))?;
    }
    db.compact()?;
    drop(db);
    let first = &recs.keys[0];
    let t = Instant::now();
    let db = Plain::open(&dir.0)?;
    if !db.get(first) {
        return Err("reopen: the first loaded key is missing".into());
    }
    out.val("reopen_same_schema", secs(t.elapsed()), "s (N records of the running schema version: fast path)");
    drop(db);
    let t = Instant::now();
    let db = PlainV2::open(&dir.0)?;
    if db.people.get_with(first, |p| p.nickname.is_empty()) != Some(true) {
        return Err("evolved reopen: the first key is missing or its new field is not the default".into());
    }
    out.val("reopen_older_schema", secs(t.elapsed()), "s (N records of an older version: resolved by name)");
    Ok(())
}

cairn::schema! {
    /// One small table for the change feed's latency.
    pub Events {
        events: <u64, u64>,
    }
}

/// Durable single-record commits timed for the change feed.
const FEED_COMMITS: usize = 1_000;

/// The latency from the start of a durable commit to its delivery to every one of `subscribers` blocked
/// subscribers (each on its own thread), beside the commit's own latency in the same run. Each commit starts once
/// every subscriber has the one before, so the figure is the latency of one delivery, not a queue: back to back,
/// 100 threads on 2 cores cannot take a commit every 150 µs each.
fn feed_latency(out: &Out, root: &Path, subscribers: usize) -> Res<()> {
    let dir = TempDir::new(root, &format!("cairn-features-feed-{subscribers}"))?;
    let db = Events::open(&dir.0)?;
    let base = Instant::now();
    let ready = Barrier::new(subscribers + 1);
    let delivered = AtomicUsize::new(0);
    let (starts, commits, deliveries) = std::thread::scope(|s| -> Res<_> {
        let handles: Vec<_> = (0..subscribers)
            .map(|_| {
                let (sub, ready, delivered) = (db.events.subscribe(), &ready, &delivered);
                s.spawn(move || -> Res<Vec<Duration>> {
                    ready.wait();
                    let mut got = vec![Duration::ZERO; FEED_COMMITS];
                    for event in sub.take(FEED_COMMITS) {
                        let at = base.elapsed();
                        let event = event?;
                        got[*event.changes()[0].key() as usize] = at;
                        delivered.fetch_add(1, Ordering::Release);
                    }
                    Ok(got)
                })
            })
            .collect();
        ready.wait();
        let (mut starts, mut commits) = (Vec::with_capacity(FEED_COMMITS), Vec::with_capacity(FEED_COMMITS));
        for i in 0..FEED_COMMITS {
            let t = base.elapsed();
            db.events.insert(i as u64, i as u64)?;
            starts.push(t);
            commits.push(base.elapsed() - t);
            while delivered.load(Ordering::Acquire) < (i + 1) * subscribers {
                std::thread::yield_now();
            }
        }
        let mut deliveries = Vec::new();
        for h in handles {
            deliveries.push(h.join().map_err(|_| "a subscriber panicked")??);
        }
        Ok((starts, commits, deliveries))
    })?;
    // Per commit, the time until the last subscriber had it.
    let mut all: Vec<Duration> = (0..FEED_COMMITS)
        .map(|i| deliveries.iter().map(|d| d[i]).max().unwrap_or_default().saturating_sub(starts[i]))
        .collect();
    all.sort();
    let mut commits = commits;
    commits.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    out.val(
        &format!("feed_latency_{subscribers}_sub_p50"),
        us(percentile(&all, 50.0)),
        "µs (commit start to the last subscriber)",
    );
    out.val(
        &format!("feed_latency_{subscribers}_sub_p99"),
        us(percentile(&all, 99.0)),
        "µs (commit start to the last subscriber)",
    );
    out.val(
        &format!("feed_commit_{subscribers}_sub_p50"),
        us(percentile(&commits, 50.0)),
        "µs (the commit call alone)",
    );
    Ok(())
}

/// Runs every feature step, printing each measurement.
pub fn run(w: &Workload, root: &Path) -> Res<()> {
    let out = Out { engine: "cairn_features" };
    let emails: Vec<String> = w.read_keys.iter().map(email).collect();
    steps::<Plain>(&out, w, root, &emails)?;
    steps::<One>(&out, w, root, &emails)?;
    steps::<Three>(&out, w, root, &emails)?;
    evolved_reopen(&out, w, root)?;
    feed_latency(&out, root, 1)?;
    feed_latency(&out, root, 100)?;
    Ok(())
}

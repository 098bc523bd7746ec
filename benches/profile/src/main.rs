//! `cairn-profile`: one step of the benchmark at a time, in one process, for `perf record` and for A/B runs of an
//! engine change (issue 3). Not part of Cairn's build (its own workspace) and not a benchmark of record: the suite in
//! `benches/` is. The database lives in `/work/bench-tmp/profile` (or `$CAIRN_PROFILE_DIR`).
//!
//! ```text
//! cargo run --release --manifest-path benches/profile/Cargo.toml -- load      # 1M records, one transaction, compact
//! cargo run --release --manifest-path benches/profile/Cargo.toml -- read [P]  # reopen, then P passes of 1M reads
//! cargo run --release --manifest-path benches/profile/Cargo.toml -- reopen    # open until the first read, 3 times
//! cargo run --release --manifest-path benches/profile/Cargo.toml -- remove [each|many]  # remove N/2 (reload first)
//! ```
//!
//! `read` prints, per pass: Cairn through `get_with` per key and Cairn with one `read` view held for the pass (each twice), a
//! foldhash `HashMap` of the same records built in this process, and that `HashMap` with a chain of `k` dependent
//! additions between lookups (`hm+k`), which shows what instructions between lookups cost: the cache misses of
//! consecutive lookups overlap only while the next lookup fits in the CPU's window.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::{seq::SliceRandom, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Key = [u8; 24];

cairn::schema! {
    /// The benchmark's schema: one hash table of 24-byte keys and byte-vector values.
    pub Bench {
        data: <[u8; 24], Vec<u8>>,
    }
}

const N: usize = 1_000_000;

fn touch(v: &[u8]) -> u64 {
    v.len() as u64 + v[0] as u64 + v[v.len() - 1] as u64
}

fn rate(d: Duration) -> f64 {
    N as f64 / d.as_secs_f64() / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("read");
    let dir = std::env::var_os("CAIRN_PROFILE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/work/bench-tmp/profile".into());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut recs: Vec<(Key, Vec<u8>)> = Vec::with_capacity(N);
    for _ in 0..N {
        let mut k = [0u8; 24];
        rng.fill_bytes(&mut k);
        let mut v = vec![0u8; 150];
        rng.fill_bytes(&mut v);
        recs.push((k, v));
    }
    let mut keys: Vec<Key> = recs.iter().map(|r| r.0).collect();
    keys.shuffle(&mut rng);
    let open = || {
        let t = Instant::now();
        let db = Bench::open(dir.join("db")).expect("run `load` first");
        assert!(db.data.contains_key(&keys[0]), "run `load` again: the database lacks a loaded key");
        (db, t.elapsed())
    };
    match mode {
        "load" => {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let db = Bench::open(dir.join("db")).unwrap();
            let t = Instant::now();
            db.transaction(|tx| {
                for (k, v) in &recs {
                    tx.data.insert(*k, v.clone())?;
                }
                Ok::<_, cairn::Error>(())
            })
            .unwrap();
            println!("load {:?}", t.elapsed());
            db.db().compact().unwrap();
            println!("load and compaction {:?}", t.elapsed());
        }
        "reopen" => {
            for _ in 0..3 {
                let (db, d) = open();
                println!("reopen {d:?}");
                let t = Instant::now();
                drop(db);
                println!("close {:?}", t.elapsed());
            }
        }
        "read" => {
            let (db, d) = open();
            println!("reopen {d:?}");
            let t = Instant::now();
            let mut m: HashMap<Key, Vec<u8>, foldhash::fast::FixedState> =
                HashMap::with_capacity_and_hasher(N, Default::default());
            for (k, v) in &recs {
                m.insert(*k, v.clone());
            }
            println!("hashmap build {:?}", t.elapsed());
            drop(recs);
            let passes: usize = args.get(2).map(|s| s.parse().expect("passes")).unwrap_or(3);
            for _ in 0..passes {
                // Each Cairn pass twice: the machine's cache (here a 260 MB L3) holds much of what the pass before
                // touched, so the second of a pair is the one to compare with the HashMap's (warm from its own).
                for _ in 0..2 {
                    let t = Instant::now();
                    std::hint::black_box(cairn_pass(&db, &keys));
                    print!("cairn {:.2} M/s  ", rate(t.elapsed()));
                }
                for _ in 0..2 {
                    let t = Instant::now();
                    std::hint::black_box(view_pass(&db, &keys));
                    print!("cairn, one view {:.2}  ", rate(t.elapsed()));
                }
                for chain in [0usize, 25, 50, 100] {
                    let t = Instant::now();
                    let mut acc = 0u64;
                    for k in &keys {
                        let mut j = 0u64;
                        for i in 0..chain {
                            j = j.wrapping_add(std::hint::black_box(i as u64));
                        }
                        acc += touch(m.get(k).unwrap()) + j;
                    }
                    std::hint::black_box(acc);
                    print!("hm+{chain} {:.2}  ", rate(t.elapsed()));
                }
                println!();
            }
        }
        "remove" => {
            let many = args.get(2).map(String::as_str) != Some("each");
            let (db, _) = open();
            let t = Instant::now();
            let mut body = Duration::ZERO;
            db.transaction(|tx| {
                let t0 = Instant::now();
                if many {
                    tx.data.delete_many(&keys[..N / 2])?;
                } else {
                    for k in &keys[..N / 2] {
                        tx.data.delete(k)?;
                    }
                }
                body = t0.elapsed();
                Ok::<_, cairn::Error>(())
            })
            .unwrap();
            let how = if many { "delete_many" } else { "delete each" };
            println!("remove N/2 ({how}) {:?}, of which the closure {body:?}; run `load` before the next", t.elapsed());
        }
        other => panic!("unknown mode {other}: load, read, reopen or remove"),
    }
}

/// One pass of reads inside one `read` view, out of line for the same reason as `cairn_pass`.
#[inline(never)]
fn view_pass(db: &Bench, keys: &[Key]) -> u64 {
    db.data.read(|r| keys.iter().map(|k| touch(r.get(k).unwrap())).sum::<u64>())
}

/// One pass of per-key reads, kept out of line so its loop can be read in a disassembly.
#[inline(never)]
fn cairn_pass(db: &Bench, keys: &[Key]) -> u64 {
    let mut acc = 0;
    for k in keys {
        acc += db.data.get_with(k, |v| touch(v)).unwrap();
    }
    acc
}

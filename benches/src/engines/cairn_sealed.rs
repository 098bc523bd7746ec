//! Compression and encryption at rest against plain Cairn, in one child process (issue 8).
//!
//! Every variant in [`VARIANTS`] gets a fresh directory and the same steps: the workload's N records in one durable
//! transaction (`bulk_load`), the size on disk, `SINGLE` durable single-record commits (`commit_p50`, `commit_p99`),
//! `compact()` and the size after it, then close and reopen until the first read (`reopen`, from the compressed or
//! sealed snapshot). Then N text values (English-like sentences of about 150 bytes, generated before any timing) go
//! in one durable transaction into another fresh directory, and the size is taken after the load and after a
//! compaction: random values do not compress, text does.
//!
//! Each measurement is the op of [`OPS`] suffixed with the variant's name (`bulk_load_lz4`), under the engine
//! `cairn_sealed`; the report sets them out as one table with a column per variant and the ratios against `plain`.
//!
//! Automatic compaction is off (`compact_after(None)`) so that no background compaction races the sizes; every
//! other option is Cairn's default, so the log payloads from 512 bytes up are compressed (the single commits are
//! below that) and the bulk loads, above 4 MiB, reach the log uncompressed (or, encrypted, sealed from memory).

use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::workload::{dir_size, mib, percentile, secs, time, Key, Out, Res, TempDir, Workload};

cairn::schema! {
    /// The suite's table: 24-byte keys and byte-vector values.
    pub Sealed {
        data: <Key, Vec<u8>>,
    }
}

/// A configuration of compression and encryption.
pub struct Variant {
    pub name: &'static str,
    compression: cairn::Compression,
    encrypted: bool,
}

/// The variants, `plain` first: the report's ratios divide by it.
pub const VARIANTS: &[Variant] = &[
    Variant { name: "plain", compression: cairn::Compression::None, encrypted: false },
    Variant { name: "lz4", compression: cairn::Compression::Lz4, encrypted: false },
    Variant { name: "zstd3", compression: cairn::Compression::Zstd { level: 3 }, encrypted: false },
    Variant { name: "encrypted", compression: cairn::Compression::None, encrypted: true },
    Variant { name: "lz4_encrypted", compression: cairn::Compression::Lz4, encrypted: true },
];

/// The ops every variant reports, in the report's order (each suffixed with `_{variant}`).
pub const OPS: &[&str] = &[
    "bulk_load",
    "commit_p50",
    "commit_p99",
    "compaction",
    "reopen",
    "size_after_load",
    "size_after_load_apparent",
    "size_after_compaction",
    "size_after_compaction_apparent",
    "text_bulk_load",
    "text_size_after_load",
    "text_size_after_load_apparent",
    "text_size_after_compaction",
    "text_size_after_compaction_apparent",
];

/// A raw key, so the figures hold no passphrase derivation.
const KEY_BYTES: [u8; 32] = [0x5a; 32];

fn open(v: &Variant, dir: &Path) -> Res<Sealed> {
    let mut b = Sealed::builder().compact_after(None).compression(v.compression);
    if v.encrypted {
        b = b.encryption(cairn::EncryptionKey::from_bytes(KEY_BYTES));
    }
    Ok(b.open(dir)?)
}

/// Words with a rough frequency skew (earlier words are drawn more often), for English-like text.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "it", "that", "was", "for", "on", "are", "with", "as", "his", "they",
    "be", "at", "one", "have", "this", "from", "or", "had", "by", "not", "word", "but", "what", "some", "we", "can",
    "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which",
    "do", "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would", "like", "so",
    "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look", "more", "day", "could", "go", "come",
    "did", "number", "sound", "no", "most", "people", "my", "over", "know", "water", "than", "call", "first", "who",
    "may", "down", "side", "been", "now", "find", "any", "new", "work", "part", "take", "get", "place", "made", "live",
    "where", "after", "back", "little", "only", "round", "man", "year", "came", "show", "every", "good", "me", "give",
    "our", "under", "name", "very", "through", "just", "form", "sentence", "great", "think", "say", "help", "low",
    "line", "differ", "turn", "cause", "much", "mean", "before", "move", "right", "boy", "old", "too", "same", "tell",
    "does", "set", "three", "want", "air", "well", "also", "play", "small", "end", "put", "home", "read", "hand",
    "port", "large", "spell", "add", "even", "land", "here", "must", "big", "high", "such", "follow", "act", "why",
    "ask", "men", "change", "went", "light", "kind", "off", "need", "house", "picture", "try", "us", "again", "animal",
    "point", "mother", "world", "near", "build", "self", "earth", "father", "river", "mountain", "harbour", "window",
    "letter", "garden", "morning", "evening", "journey", "question", "answer", "station",
];

/// `n` sentences of about 150 bytes from a generator seeded with `seed`.
pub fn text_values(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7e47);
    (0..n)
        .map(|_| {
            let mut s = String::with_capacity(180);
            while s.len() < 140 {
                let u: f64 = rng.random();
                let w = WORDS[((u * u) * WORDS.len() as f64) as usize];
                if s.is_empty() {
                    let mut c = w.chars();
                    s.extend(c.next().map(|f| f.to_ascii_uppercase()));
                    s.push_str(c.as_str());
                } else {
                    s.push(if rng.random_ratio(1, 12) { ',' } else { ' ' });
                    if s.ends_with(',') {
                        s.push(' ');
                    }
                    s.push_str(w);
                }
            }
            s.push('.');
            s.into_bytes()
        })
        .collect()
}

/// Both sizes of `dir`, as `{base}_{variant}` and `{base}_apparent_{variant}`.
fn size(out: &Out, base: &str, variant: &str, dir: &Path) {
    let (alloc, apparent) = dir_size(dir);
    out.val(&format!("{base}_{variant}"), mib(alloc), "MiB allocated (st_blocks*512)");
    out.val(&format!("{base}_apparent_{variant}"), mib(apparent), "MiB apparent (st_size)");
}

fn load(db: &Sealed, keys: &[Key], vals: impl Iterator<Item = Vec<u8>>) -> Res<()> {
    db.transaction(|tx| {
        for (k, v) in keys.iter().zip(vals) {
            tx.data.insert(*k, v)?;
        }
        Ok::<_, cairn::Error>(())
    })?;
    Ok(())
}

fn variant(out: &Out, w: &Workload, root: &Path, v: &Variant, text: &[Vec<u8>]) -> Res<()> {
    let name = v.name;
    let dir = TempDir::new(root, &format!("cairn-sealed-{name}"))?;
    let db = open(v, &dir.0)?;
    let recs = w.load();
    let (r, d) = time(|| load(&db, recs.keys, recs.iter().map(|(_, v)| v.to_vec())));
    r?;
    out.val(&format!("bulk_load_{name}"), secs(d), "s");
    size(out, "size_after_load", name, &dir.0);

    let mut lat = Vec::with_capacity(w.single().len());
    for (k, val) in w.single().iter() {
        let t = Instant::now();
        db.data.insert(*k, val.to_vec())?;
        lat.push(t.elapsed());
    }
    lat.sort();
    out.val(&format!("commit_p50_{name}"), percentile(&lat, 50.0).as_secs_f64() * 1e6, "µs");
    out.val(&format!("commit_p99_{name}"), percentile(&lat, 99.0).as_secs_f64() * 1e6, "µs");

    let (r, d) = time(|| db.compact());
    r?;
    out.val(&format!("compaction_{name}"), secs(d), "s");
    size(out, "size_after_compaction", name, &dir.0);

    drop(db);
    let first = &recs.keys[0];
    let t = Instant::now();
    let db = open(v, &dir.0)?;
    if db.data.get_with(first, |v| v.len()) != Some(recs.get(0).1.len()) {
        return Err(format!("{name}: reopen: the first loaded key is missing or wrong").into());
    }
    out.val(&format!("reopen_{name}"), secs(t.elapsed()), "s");
    drop(db);
    drop(dir);

    let dir = TempDir::new(root, &format!("cairn-sealed-text-{name}"))?;
    let db = open(v, &dir.0)?;
    let (r, d) = time(|| load(&db, recs.keys, text.iter().cloned()));
    r?;
    out.val(&format!("text_bulk_load_{name}"), secs(d), "s");
    size(out, "text_size_after_load", name, &dir.0);
    db.compact()?;
    size(out, "text_size_after_compaction", name, &dir.0);
    if db.data.get_with(first, |v| v == text[0].as_slice()) != Some(true) {
        return Err(format!("{name}: the first text value is missing or wrong").into());
    }
    Ok(())
}

/// Runs every variant, printing each measurement.
pub fn run(w: &Workload, root: &Path) -> Res<()> {
    let out = Out { engine: "cairn_sealed" };
    let (text, d) = time(|| text_values(w.n, w.seed));
    let bytes: usize = text.iter().map(Vec::len).sum();
    eprintln!("[cairn_sealed] {} text values ({:.1} MiB) generated in {:.1} s", text.len(), mib(bytes as u64), secs(d));
    for v in VARIANTS {
        variant(&out, w, root, v, &text)?;
    }
    Ok(())
}

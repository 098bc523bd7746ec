//! Damage (issue 4, item 3). A database with a snapshot and two log segments after it is written on the real file
//! system and closed. Then, in a fresh copy each time, one byte of one file is flipped (XOR 0xFF), for every byte of
//! every file, or one file is truncated, at every offset; and the copy is opened. Each case must end in one of these:
//! - **exact**: it opens with exactly the committed state;
//! - **tail cut**: the damage is in the last frames of the log, which no later frame vouches for, so recovery cannot
//!   tell it from a torn write (docs/format.md, "The scan rule") and cuts the log just before the damaged frame: it
//!   opens with the state before that frame, keeping every commit before the damaged spot;
//! - **corrupt**: it fails with `Error::Corrupt` naming the damaged file and an offset in it at or before the damage.
//!
//! Anything else fails the test: a panic, another error, a state that is not the committed one or the allowed prefix
//! (a wrong value, or durable commits cut silently), or `Corrupt` naming another file or a place after the damage.
//! Every database that opens must also take a new commit and show it, with everything else, after a reopen.
//!
//! The cases run on `SimStorage` loaded with the files (fast); every 100th also runs on the real file system and must
//! end the same way. Files larger than 3000 bytes of data get a seeded sample of 3000 positions each way.
//! `CAIRN_DAMAGE_DATABASES` sets how many databases (with different value sizes, so different frame boundaries) are
//! built and damaged.
//!
//! The same cases run on compressed, encrypted and compressed-and-encrypted databases (issue 8), one database each
//! and fewer positions per file. There a unit whose bytes pass the checksum but not the cipher may also end in
//! `Error::Authentication`, under the same rule as `Corrupt` (the damaged file, at or before the damage); and the
//! key file `KEYS` is damaged like every other file.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cairn_testkit::{CrashImage, Sealing, SimStorage};
use rand::rngs::StdRng;
use rand::SeedableRng;

cairn::schema! {
    /// Items that are written, overwritten and removed, and counters.
    Store {
        items: ordered<u32, String>,
        counters: <String, u64>,
    }
}

/// The state of the database: both tables.
type State = (BTreeMap<u32, String>, BTreeMap<String, u64>);

const DIR: &str = "/db";
const BEFORE_SNAPSHOT: u32 = 25;
const AFTER_SNAPSHOT: u32 = 40;
/// Databases damaged by default, each with other value sizes and so other frame boundaries;
/// `CAIRN_DAMAGE_DATABASES` sets the number.
const DEFAULT_DATABASES: u64 = 3;
/// Every this many cases also runs on the real file system.
const REAL_FS_EVERY: u64 = 100;
/// At most this many positions of a file's data are damaged, each way.
const MAX_POSITIONS: usize = 3000;
/// The same for each sealed way (compressed, encrypted, both).
const SEALED_POSITIONS: usize = 1500;
/// At most this many positions of the zeros reserved after a segment's data are damaged, each way.
const ZERO_POSITIONS: usize = 100;

fn open_at(path: &Path, storage: Option<&SimStorage>, sealing: Sealing) -> cairn::Result<Store> {
    let builder = sealing.apply(Store::builder().segment_size(4096).compact_after(None));
    match storage {
        Some(sim) => builder.storage(sim.shared()).open(path),
        None => builder.open(path),
    }
}

fn state(db: &Store) -> State {
    db.read(|r| {
        (
            r.items.iter().map(|(k, v)| (*k, v.clone())).collect(),
            r.counters.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        )
    })
}

/// The committed history: the state after each sequence number, from the one that created the tables.
struct History {
    states: Vec<(u64, State)>,
}

impl History {
    fn at(&self, seq: u64) -> Option<&State> {
        self.states.iter().find(|(s, _)| *s == seq).map(|(_, st)| st)
    }

    fn last(&self) -> &State {
        &self.states.last().expect("at least the empty state").1
    }
}

/// Writes the database on the real file system: commits, a compaction, more commits (two segments), a clean close.
fn build(dir: &Path, variant: u64, sealing: Sealing) -> History {
    let db = open_at(dir, None, sealing).expect("create the database");
    let mut model: State = Default::default();
    let mut states = vec![(db.db().last_seq(), model.clone())];
    for i in 1..=BEFORE_SNAPSHOT + AFTER_SNAPSHOT {
        let len = (u64::from(i) * 37 + variant * 101) as usize % 120;
        // Sealed ways get hex digits, which lz4 cannot shrink, so the log still spans two segments.
        let fill = match sealing {
            Sealing::Plain => "v".repeat(len),
            _ => {
                (0..len).map(|j| char::from(b"0123456789abcdef"[(mix(u64::from(i), j as u64) % 16) as usize])).collect()
            }
        };
        let value = format!("value {i} {fill}");
        let counter = format!("c{}", i % 5);
        let removed = (i % 7 == 0).then_some((i * 3) % 37);
        db.transaction(|tx| {
            tx.items.insert(i % 37, value.clone())?;
            let n = tx.counters.get(&counter).unwrap_or(0);
            tx.counters.insert(counter.clone(), n + 1)?;
            if let Some(k) = removed {
                tx.items.remove(&k)?;
            }
            Ok::<_, cairn::Error>(())
        })
        .expect("commit");
        model.0.insert(i % 37, value);
        *model.1.entry(counter).or_default() += 1;
        if let Some(k) = removed {
            model.0.remove(&k);
        }
        assert_eq!(state(&db), model);
        states.push((db.db().last_seq(), model.clone()));
        if i == BEFORE_SNAPSHOT {
            db.compact().expect("compact");
        }
    }
    History { states }
}

/// A hash of two numbers, for values that do not compress.
fn mix(a: u64, b: u64) -> u64 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0xD1B5_4A32_D192_ED03);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

/// A frame of a log segment: where it starts, where its payload ends, where its padding ends, and its sequence
/// number (docs/format.md, "Log segments").
#[derive(Debug, Clone, Copy)]
struct Frame {
    start: usize,
    payload_end: usize,
    end: usize,
    seq: u64,
}

fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut pos = 32;
    while pos + 32 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        if len == 0 {
            break;
        }
        let seq = u64::from_le_bytes(bytes[pos + 8..pos + 16].try_into().expect("8 bytes"));
        let end = pos + (32 + len).div_ceil(8) * 8;
        out.push(Frame { start: pos, payload_end: pos + 32 + len, end, seq });
        pos = end;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    Flip(usize),
    Truncate(usize),
}

impl Damage {
    fn apply(self, bytes: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        match self {
            Damage::Flip(p) => b[p] ^= 0xFF,
            Damage::Truncate(t) => b.truncate(t),
        }
        b
    }

    fn pos(self) -> usize {
        match self {
            Damage::Flip(p) | Damage::Truncate(p) => p,
        }
    }

    /// Whether the damage touches `frame`'s header or payload (its padding is checked by nothing).
    fn hits(self, frame: &Frame) -> bool {
        match self {
            Damage::Flip(p) => frame.start <= p && p < frame.payload_end,
            Damage::Truncate(t) => t < frame.payload_end,
        }
    }
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Exact,
    /// Opened with the state before sequence number `.0`, the damaged frame.
    TailCut(u64),
    Corrupt,
    /// `Error::Authentication` naming the damaged file at or before the damage (encrypted databases only).
    Authentication,
    Failure(String),
}

/// The files of the database, and what each case may end with.
struct Layout {
    sealing: Sealing,
    files: Vec<(PathBuf, Vec<u8>)>,
    /// For each log segment (by index into `files`): its frames.
    segments: BTreeMap<usize, Vec<Frame>>,
}

impl Layout {
    /// The sequence number of the frame a tail cut may start at, if the damage allows one.
    fn allowed_cut(&self, file: usize, damage: Damage) -> Option<u64> {
        let frames = self.segments.get(&file)?;
        let last_segment = *self.segments.keys().last()? == file;
        let spot = match damage.pos() {
            p if p < 32 => frames.first()?,
            _ => frames.iter().find(|f| damage.hits(f))?,
        };
        // A flip leaves the later frames whole, and each of them vouches for the ones before.
        let nothing_after = matches!(damage, Damage::Truncate(_)) || spot.seq == frames.last()?.seq;
        (last_segment && nothing_after).then_some(spot.seq)
    }
}

/// Opens the damaged copy at `at` and tells how the case ended. A database that opens must also take a new commit and
/// show it, with everything it recovered, after a reopen.
fn run_case(
    layout: &Layout,
    history: &History,
    file: usize,
    damage: Damage,
    at: &Path,
    sim: Option<&SimStorage>,
) -> Outcome {
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let db = open_at(at, sim, layout.sealing)?;
        let found = state(&db);
        db.items.insert(1000, "after".into())?;
        drop(db);
        let reopened = state(&open_at(at, sim, layout.sealing)?);
        Ok((found, reopened))
    }));
    let (found, reopened) = match opened {
        Err(_) => return Outcome::Failure("panicked".into()),
        Ok(Err(cairn::Error::Corrupt(c))) => {
            return classify(layout, file, damage, (&c.file, c.offset), Outcome::Corrupt, &c.to_string());
        }
        Ok(Err(e @ cairn::Error::Authentication { .. })) if layout.sealing.encrypted() => {
            let cairn::Error::Authentication { file: named, offset, .. } = &e else { unreachable!("matched above") };
            return classify(layout, file, damage, (named, *offset), Outcome::Authentication, &e.to_string());
        }
        Ok(Err(e)) => return Outcome::Failure(format!("an error other than Corrupt: {e}")),
        Ok(Ok(states)) => states,
    };
    let mut expected_after = found.clone();
    expected_after.0.insert(1000, "after".into());
    if reopened != expected_after {
        return Outcome::Failure(format!(
            "after recovery and one more commit, a reopen found {}",
            describe(history, &reopened)
        ));
    }
    if &found == history.last() {
        return Outcome::Exact;
    }
    match layout.allowed_cut(file, damage) {
        Some(seq) if history.at(seq - 1) == Some(&found) => Outcome::TailCut(seq),
        Some(seq) => Outcome::Failure(format!(
            "opened with {}, neither the committed state nor the one before the damaged frame {seq}",
            describe(history, &found)
        )),
        None => Outcome::Failure(format!(
            "opened with {}, where only the committed state or Corrupt is allowed",
            describe(history, &found)
        )),
    }
}

/// `found` (`Corrupt` or `Authentication`) if the error names the damaged file, at or before the damage.
fn classify(layout: &Layout, file: usize, damage: Damage, named: (&Path, u64), found: Outcome, error: &str) -> Outcome {
    let damaged = &layout.files[file].0;
    if named.0.file_name() == damaged.file_name() && named.1 as usize <= damage.pos() {
        found
    } else {
        Outcome::Failure(format!("{found:?} names the wrong place: {error}"))
    }
}

fn describe(history: &History, found: &State) -> String {
    match history.states.iter().find(|(_, s)| s == found) {
        Some((seq, _)) => format!("the state after sequence number {seq}"),
        None => format!("a state that was never committed: {found:?}"),
    }
}

/// The positions to damage in a file: every byte of the data (up to the last non-zero byte and a little after), or a
/// seeded random sample of `MAX_POSITIONS` of them when there are more, plus a sample of the zeros reserved after it.
fn positions(bytes: &[u8], seed: u64, max: usize) -> Vec<usize> {
    let data = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1 + 64).min(bytes.len());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut spots: Vec<usize> =
        if data <= max { (0..data).collect() } else { rand::seq::index::sample(&mut rng, data, max).into_vec() };
    let zeros = bytes.len() - data;
    spots.extend(rand::seq::index::sample(&mut rng, zeros, zeros.min(ZERO_POSITIONS)).into_iter().map(|i| data + i));
    spots.sort_unstable();
    spots
}

/// Counts of the outcomes, over all databases.
#[derive(Debug, Default)]
struct Totals {
    cases: u64,
    outcomes: BTreeMap<&'static str, u64>,
    lost_commits: u64,
    failures: Vec<String>,
}

#[test]
fn every_flip_and_truncation_recovers_the_committed_state_or_reports_the_damage() {
    let started = Instant::now();
    let databases =
        std::env::var("CAIRN_DAMAGE_DATABASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_DATABASES);
    let mut t = Totals::default();
    for variant in 0..databases {
        damage_database(variant, Sealing::Plain, MAX_POSITIONS, &mut t);
    }
    println!(
        "damage: {} databases, {} cases: {:?}; commits lost by tail cuts: {}; {:.1} s",
        databases,
        t.cases,
        t.outcomes,
        t.lost_commits,
        started.elapsed().as_secs_f64()
    );
    assert!(t.failures.is_empty(), "{} failures, the first ones:\n{}", t.outcomes["FAILED"], t.failures.join("\n"));
    assert!(t.outcomes.get("tail cut").is_some_and(|&n| n > 0), "no case cut the tail: {:?}", t.outcomes);
    assert!(t.outcomes.get("corrupt").is_some_and(|&n| n > 1000), "{:?}", t.outcomes);
}

#[test]
fn compressed_and_encrypted_databases_recover_or_report_the_damage_too() {
    for (n, sealing) in Sealing::SEALED.into_iter().enumerate() {
        let started = Instant::now();
        let mut t = Totals::default();
        damage_database(n as u64 + 1, sealing, SEALED_POSITIONS, &mut t);
        println!(
            "damage, {}: {} cases: {:?}; commits lost by tail cuts: {}; {:.1} s",
            sealing.name(),
            t.cases,
            t.outcomes,
            t.lost_commits,
            started.elapsed().as_secs_f64()
        );
        let name = sealing.name();
        assert!(
            t.failures.is_empty(),
            "{name}: {} failures, the first ones:\n{}",
            t.outcomes["FAILED"],
            t.failures.join("\n")
        );
        assert!(t.outcomes.get("tail cut").is_some_and(|&n| n > 0), "{name}: no case cut the tail: {:?}", t.outcomes);
        assert!(t.outcomes.get("corrupt").is_some_and(|&n| n > 300), "{name}: {:?}", t.outcomes);
    }
}

/// Builds database number `variant` (its values' sizes depend on it), stored the `sealing` way, and runs every case
/// on it, damaging up to `max` positions of each file each way.
fn damage_database(variant: u64, sealing: Sealing, max: usize, t: &mut Totals) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let real = tmp.path().join("db");
    let history = build(&real, variant, sealing);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&real)
        .expect("list the database")
        .map(|e| {
            let name = e.expect("directory entry").file_name();
            (PathBuf::from(&name), std::fs::read(real.join(&name)).expect("read a file of the database"))
        })
        .collect();
    files.sort();
    let segments: BTreeMap<usize, Vec<Frame>> = files
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| name.extension().is_some_and(|e| e == "log"))
        .map(|(i, (_, bytes))| (i, frames(bytes)))
        .collect();
    let names: Vec<String> = files.iter().map(|(n, b)| format!("{} ({} bytes)", n.display(), b.len())).collect();
    println!("damage: database {variant}: {names:?}");
    assert!(files.iter().any(|(n, _)| n.extension().is_some_and(|e| e == "snap")), "no snapshot: {names:?}");
    assert!(segments.len() >= 2, "two log segments after the snapshot: {names:?}");
    assert!(segments.values().all(|f| f.len() >= 3), "{segments:?}");
    assert_eq!(files.iter().any(|(n, _)| n == Path::new("KEYS")), sealing.encrypted(), "{names:?}");
    let layout = Layout { sealing, files, segments };

    for (file, (name, bytes)) in layout.files.iter().enumerate() {
        let spots = positions(bytes, variant * 100 + file as u64, max);
        let flips = spots.iter().map(|&p| Damage::Flip(p));
        let truncations = spots.iter().map(|&p| Damage::Truncate(p));
        for damage in flips.chain(truncations) {
            t.cases += 1;
            let damaged = damage.apply(bytes);
            let mut image = CrashImage::new();
            for (other, (n, b)) in layout.files.iter().enumerate() {
                image.insert(&Path::new(DIR).join(n), if other == file { damaged.clone() } else { b.clone() });
            }
            let sim = SimStorage::from_image(&image);
            let mut outcome = run_case(&layout, &history, file, damage, Path::new(DIR), Some(&sim));
            if t.cases.is_multiple_of(REAL_FS_EVERY) {
                let dir = tmp.path().join(format!("case-{}", t.cases));
                std::fs::create_dir(&dir).expect("case directory");
                for (other, (n, b)) in layout.files.iter().enumerate() {
                    std::fs::write(dir.join(n), if other == file { &damaged } else { b }).expect("write a copy");
                }
                let on_disk = run_case(&layout, &history, file, damage, &dir, None);
                if on_disk != outcome {
                    outcome = Outcome::Failure(format!("the file system gave {on_disk:?}, SimStorage {outcome:?}"));
                }
                std::fs::remove_dir_all(&dir).expect("remove the case directory");
            }
            let kind = match outcome {
                Outcome::Exact => "exact",
                Outcome::TailCut(seq) => {
                    t.lost_commits += history.states.last().expect("states").0 - (seq - 1);
                    "tail cut"
                }
                Outcome::Corrupt => "corrupt",
                Outcome::Authentication => "authentication",
                Outcome::Failure(why) => {
                    if t.failures.len() < 10 {
                        t.failures.push(format!("database {variant}, {} {damage:?}: {why}", name.display()));
                    }
                    "FAILED"
                }
            };
            *t.outcomes.entry(kind).or_default() += 1;
        }
    }
}

/// A log segment that is not the last, truncated exactly at a frame boundary (or inside the padding of its last whole
/// frame), is reported as damage in that segment where its frames end (a regression: it used to name the next,
/// intact segment).
#[test]
fn a_segment_truncated_at_a_frame_boundary_is_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let db = open_at(&dir, None, Sealing::Plain).unwrap();
    for i in 0..60u32 {
        db.items.insert(i, "x".repeat(100)).unwrap();
    }
    drop(db);
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 2, "{segments:?}");
    let first = std::fs::read(&segments[0]).unwrap();
    let cut = frames(&first)[3].end;
    std::fs::write(&segments[0], &first[..cut]).unwrap();
    match open_at(&dir, None, Sealing::Plain) {
        Err(cairn::Error::Corrupt(c)) => {
            assert_eq!(c.file, segments[0], "{c}");
            assert_eq!(c.offset, cut as u64, "{c}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened a log with frames missing in the middle"),
    }
}

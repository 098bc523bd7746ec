//! Databases written by every released format version open and read back exactly.
//!
//! `fixtures/vN/` was written by format version N (`write_fixture` below, run once by a build of that version with
//! `CAIRN_WRITE_FIXTURE=vN cargo test -p cairn --test backward_compatibility -- --ignored`). Each holds a snapshot
//! and a log after it. A later format version keeps these directories as they are and adds its own.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    title: String,
    words: Vec<String>,
    stars: Option<u8>,
}

cairn::schema! {
    /// The fixture's schema.
    Fixture {
        docs: <String, Doc>,
        order: ordered<u64, String>,
    }
}

fn doc(i: u64) -> Doc {
    Doc {
        title: format!("doc {i}"),
        words: (0..i % 4).map(|w| format!("w{w}")).collect(),
        stars: (!i.is_multiple_of(3)).then_some((i % 6) as u8),
    }
}

fn expected() -> (BTreeMap<String, Doc>, BTreeMap<u64, String>) {
    let mut docs = BTreeMap::new();
    let mut order = BTreeMap::new();
    for i in 0..40u64 {
        docs.insert(format!("d{i}"), doc(i));
        order.insert(i, format!("d{i}"));
    }
    for i in (0..40u64).step_by(5) {
        docs.remove(&format!("d{i}"));
        order.remove(&i);
    }
    for i in 40..50u64 {
        docs.insert(format!("d{i}"), doc(i));
        order.insert(i, format!("d{i}"));
    }
    (docs, order)
}

fn fixture(version: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(version)
}

#[test]
#[ignore = "writes a fixture; run once, by hand, by the build of the format version it is named after"]
fn write_fixture() {
    let Some(version) = std::env::var("CAIRN_WRITE_FIXTURE").ok() else {
        return;
    };
    let dir = fixture(&version);
    let _ = std::fs::remove_dir_all(&dir);
    let db = Fixture::builder().compact_after(None).open(&dir).unwrap();
    for i in 0..40u64 {
        db.transaction(|tx| {
            tx.docs.insert(format!("d{i}"), doc(i))?;
            tx.order.insert(i, format!("d{i}"))
        })
        .unwrap();
    }
    for i in (0..40u64).step_by(5) {
        db.transaction(|tx| {
            tx.docs.remove(&format!("d{i}"))?;
            tx.order.remove(&i).map(|_| ())
        })
        .unwrap();
    }
    db.compact().unwrap();
    for i in 40..50u64 {
        db.transaction(|tx| {
            tx.docs.insert(format!("d{i}"), doc(i))?;
            tx.order.insert(i, format!("d{i}"))
        })
        .unwrap();
    }
    drop(db);
    std::fs::remove_file(dir.join("LOCK")).unwrap();
}

/// The version this build writes new segments in.
const CURRENT: u32 = 3;

#[test]
fn format_v1_opens() {
    opens_and_carries_on("v1", 1);
}

#[test]
fn format_v2_opens() {
    opens_and_carries_on("v2", 2);
}

/// Opens a copy of `fixtures/<name>` (written by format `version`), checks every record, writes, reopens and
/// compacts it.
fn opens_and_carries_on(name: &str, version: u32) {
    let work = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), work.path().join(e.file_name())).unwrap();
    }
    let names: Vec<String> =
        std::fs::read_dir(work.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().any(|n| n.ends_with(".snap")) && names.iter().any(|n| n.ends_with(".log")), "{names:?}");
    let db = Fixture::open(work.path()).unwrap();
    let (docs, order) = expected();
    assert_eq!(db.docs.iter().collect::<BTreeMap<_, _>>(), docs);
    assert_eq!(db.order.iter().collect::<BTreeMap<_, _>>(), order);
    assert_eq!(db.db().schema_version(), 1, "format 1 gets its schema stored as version 1, format 2 has it");
    db.docs.insert("new".into(), doc(1)).unwrap();
    drop(db);

    // The old segment was continued only to be rolled: the new frames are in a segment of the current format, and a
    // reopen replays both (format 1's puts as schema version 0, read as the running types).
    let mut segments: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    assert_eq!(segments.len(), 2, "{segments:?}");
    let header_version = |p: &Path| u32::from_le_bytes(std::fs::read(p).unwrap()[8..12].try_into().unwrap());
    assert_eq!(header_version(&segments[0]), version);
    assert_eq!(header_version(&segments[1]), CURRENT);
    let db = Fixture::open(work.path()).unwrap();
    assert_eq!(db.docs.len(), docs.len() + 1);
    assert_eq!(db.order.iter().collect::<BTreeMap<_, _>>(), order);
    assert_eq!(db.db().schema_version(), 1);
    assert_eq!(db.db().schemas().len(), 1);
    db.compact().unwrap();
    drop(db);
    let db = Fixture::open(work.path()).unwrap();
    assert_eq!(db.docs.len(), docs.len() + 1);
    assert_eq!(db.docs.get("new"), Some(doc(1)));
    assert_eq!(db.db().schema_version(), 1, "the stored schema survives compaction");
}

//! Point 5 of issue 2: a torn or garbage tail is cut at the last whole record; damage elsewhere is a clear error
//! naming file and offset; snapshots, compaction and tables unknown to the schema.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

cairn::schema! {
    /// The schema most tests here use.
    Notes {
        notes: ordered<u32, String>,
        tags: <String, u32>,
    }
}

cairn::schema! {
    /// The same database seen by a program that dropped the `tags` table.
    NotesOnly {
        notes: ordered<u32, String>,
    }
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn contents(db: &Notes) -> BTreeMap<u32, String> {
    db.notes.iter().collect()
}

/// The end (padding included) of every frame in a log segment, read from the frame headers (docs/format.md).
fn frame_ends(bytes: &[u8]) -> Vec<u64> {
    let mut ends = Vec::new();
    let mut pos = 32;
    while pos + 32 <= bytes.len() && bytes[pos..pos + 32].iter().any(|&b| b != 0) {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += (32 + len).div_ceil(8) * 8;
        ends.push(pos as u64);
    }
    ends
}

/// Writes `n` single-record commits (after the table-creating one) and returns the end of each in the log.
fn write_commits(dir: &Path, n: u32) -> Vec<u64> {
    let db = Notes::open(dir).unwrap();
    for i in 0..n {
        db.notes.insert(i, format!("note {i} {}", "y".repeat(i as usize * 7))).unwrap();
    }
    drop(db);
    let ends = frame_ends(&fs::read(files(dir, "log").pop().unwrap()).unwrap());
    assert_eq!(ends.len() as u32, n + 1);
    ends[1..].to_vec()
}

#[test]
fn torn_tail_at_every_offset_recovers_the_committed_prefix_and_keeps_new_writes() {
    let base = tempfile::tempdir().unwrap();
    let ends = write_commits(base.path(), 8);
    let log_name = files(base.path(), "log").pop().unwrap().file_name().unwrap().to_owned();
    let full = fs::read(base.path().join(&log_name)).unwrap();
    let from = ends[ends.len() - 4];
    let data_end = *ends.last().unwrap();
    assert!(full.len() as u64 >= data_end);
    for cut in from..=data_end {
        let work = tempfile::tempdir().unwrap();
        copy_dir(base.path(), work.path());
        fs::write(work.path().join(&log_name), &full[..cut as usize]).unwrap();
        // A frame is whole once its checksummed bytes are; only its zero padding (under 8 bytes) may be missing.
        let mut whole = ends.iter().filter(|&&e| e <= cut).count() as u32;
        {
            let db = Notes::open(work.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            let got = contents(&db);
            if got.len() as u32 == whole + 1 {
                assert!(ends[whole as usize] - cut < 8, "cut at {cut}: a torn frame was replayed");
                whole += 1;
            }
            assert_eq!(got.keys().copied().collect::<Vec<_>>(), (0..whole).collect::<Vec<_>>(), "cut at {cut}");
            db.notes.insert(1000, "after recovery".into()).unwrap();
        }
        let db = Notes::open(work.path()).unwrap();
        assert_eq!(db.notes.len() as u32, whole + 1, "cut at {cut}: a write after recovery must survive");
        assert_eq!(db.notes.get(&1000).as_deref(), Some("after recovery"));
    }
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    write_commits(dir.path(), 5);
    let log = files(dir.path(), "log").pop().unwrap();
    let mut bytes = fs::read(&log).unwrap();
    let end = frame_ends(&bytes).pop().unwrap() as usize;
    // Garbage right after the data, and more far into the reserved space.
    for (i, b) in bytes[end..end + 1000].iter_mut().enumerate() {
        *b = ((i as u32).wrapping_mul(2654435761) >> 13) as u8 | 1;
    }
    let far = bytes.len() - 10;
    bytes[far] = 0xee;
    fs::write(&log, &bytes).unwrap();
    let db = Notes::open(dir.path()).unwrap();
    assert_eq!(db.notes.len(), 5);
    let zeroed = fs::read(&log).unwrap();
    assert!(zeroed[end..].iter().all(|&b| b == 0), "the torn tail is zeroed before anything is appended");
    db.notes.insert(5, "five".into()).unwrap();
    drop(db);
    let db = Notes::open(dir.path()).unwrap();
    assert_eq!(db.notes.len(), 6);
}

#[test]
fn damage_before_durable_records_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let ends = write_commits(dir.path(), 6);
    let log = files(dir.path(), "log").pop().unwrap();
    let mut bytes = fs::read(&log).unwrap();
    let at = ends[1] as usize + 40; // inside the third commit's frame
    bytes[at] ^= 0x40;
    fs::write(&log, &bytes).unwrap();
    let err = Notes::open(dir.path()).unwrap_err();
    let cairn::Error::Corrupt(c) = &err else { panic!("expected corruption, got {err}") };
    assert_eq!(c.file, log);
    assert_eq!(c.offset, ends[1]);
    let msg = err.to_string();
    assert!(msg.contains(&log.display().to_string()) && msg.contains(&ends[1].to_string()), "{msg}");
    assert!(msg.contains("cairn verify"), "the message says what to do: {msg}");
    // Nothing was cut: the damaged file is left as it was for salvage.
    assert_eq!(fs::read(&log).unwrap(), bytes);
}

#[test]
fn damaged_snapshot_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Notes::open(dir.path()).unwrap();
        for i in 0..50 {
            db.notes.insert(i, "n".repeat(30)).unwrap();
        }
        db.compact().unwrap();
    }
    let snap = files(dir.path(), "snap").pop().unwrap();
    let mut bytes = fs::read(&snap).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    fs::write(&snap, &bytes).unwrap();
    let err = Notes::open(dir.path()).unwrap_err();
    let cairn::Error::Corrupt(c) = &err else { panic!("expected corruption, got {err}") };
    assert_eq!(c.file, snap);
    assert!(c.offset as usize <= at);
}

#[test]
fn a_table_missing_from_the_schema_is_kept_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Notes::open(dir.path()).unwrap();
        db.notes.insert(1, "one".into()).unwrap();
        db.tags.insert("red".into(), 1).unwrap();
    }
    {
        let db = NotesOnly::open(dir.path()).unwrap();
        assert_eq!(db.db().unknown_tables(), ["tags".to_string()]);
        assert_eq!(db.notes.get(&1).as_deref(), Some("one"));
        db.notes.insert(2, "two".into()).unwrap();
        db.compact().unwrap();
    }
    let db = Notes::open(dir.path()).unwrap();
    assert!(db.db().unknown_tables().is_empty());
    assert_eq!(db.tags.get("red"), Some(1), "compaction kept the table the schema did not know");
    assert_eq!(db.notes.len(), 2);
}

#[test]
fn background_compaction_runs_when_the_log_grows() {
    let dir = tempfile::tempdir().unwrap();
    let db = Notes::builder()
        .durability(cairn::Durability::None)
        .segment_size(16 << 10)
        .compact_after(Some(64 << 10))
        .open(dir.path())
        .unwrap();
    for i in 0..2000 {
        db.notes.insert(i % 300, format!("{i:>100}")).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while files(dir.path(), "snap").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no snapshot after 10 s");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let expected = contents(&db);
    drop(db);
    let frames: usize = files(dir.path(), "log").iter().map(|p| frame_ends(&fs::read(p).unwrap()).len()).sum();
    assert!(frames < 2000, "compaction dropped the folded log ({frames} frames left)");
    let db = Notes::open(dir.path()).unwrap();
    assert_eq!(contents(&db), expected);
}

#[test]
fn leftovers_of_an_interrupted_compaction_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Notes::open(dir.path()).unwrap();
        db.notes.insert(1, "one".into()).unwrap();
        db.compact().unwrap();
        db.notes.insert(2, "two".into()).unwrap();
    }
    fs::write(dir.path().join("00000000000000000099.snap.tmp"), b"half a snapshot").unwrap();
    let db = Notes::open(dir.path()).unwrap();
    assert_eq!(db.notes.len(), 2);
    assert!(!dir.path().join("00000000000000000099.snap.tmp").exists());
}

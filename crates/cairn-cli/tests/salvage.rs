//! `cairn salvage` on whole and on damaged databases: what it keeps opens as an ordinary database, what it loses it
//! names.

use std::path::Path;
use std::process::{Command, Output, Stdio};

cairn::schema! {
    pub(crate) Store {
        items: ordered<u64, String>,
    }
}

/// Serializes opening test databases with spawning the binary (a forked child holds the parent's `LOCK`).
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(args: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = {
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        cmd.spawn().expect("the cairn binary runs")
    };
    child.wait_with_output().expect("the cairn binary runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// 300 records of 500 bytes in a snapshot (three record blocks), then 10 commits of one record each in the log.
fn database(dir: &Path) {
    let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let db = Store::open(dir).unwrap();
    db.transaction(|tx| (1..=300).try_for_each(|i| tx.items.insert(i, format!("{i:0>500}")))).unwrap();
    db.compact().unwrap();
    for i in 301..=310 {
        db.items.insert(i, format!("{i}")).unwrap();
    }
}

fn open(dir: &Path) -> Store {
    let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    Store::open(dir).unwrap()
}

fn file(dir: &Path, ext: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == ext))
        .unwrap()
}

fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_whole_database_is_salvaged_whole() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let out = dir.path().join("salvaged");
    let o = run(&[Path::new("salvage"), dir.path(), &out]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("up to seq"), "{}", text(&o));
    let db = open(&out);
    assert_eq!(db.items.len(), 310);
    assert_eq!(db.items.get(&7).unwrap(), format!("{:0>500}", 7));
    assert_eq!(db.items.get(&310).unwrap(), "310");
}

#[test]
fn a_damaged_snapshot_block_and_log_frame_lose_only_their_records_and_are_named() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let snap = file(dir.path(), "snap");
    let log = file(dir.path(), "log");
    let snap_len = std::fs::metadata(&snap).unwrap().len() as usize;
    flip(&snap, snap_len / 2);
    // The third of the log's frames: each is a 32-byte header and its payload, padded to 8 bytes.
    let log_bytes = std::fs::read(&log).unwrap();
    let mut third = 32;
    for _ in 0..2 {
        let len = u32::from_le_bytes(log_bytes[third..third + 4].try_into().unwrap()) as usize;
        third += 32 + len.next_multiple_of(8);
    }
    flip(&log, third + 40);

    // An ordinary open refuses the damage.
    {
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        assert!(Store::open(dir.path()).is_err());
    }
    let out = dir.path().join("salvaged");
    let o = run(&[Path::new("salvage"), dir.path(), &out]);
    let report = text(&o);
    assert_eq!(o.status.code(), Some(4), "{report}");
    assert!(report.contains(&format!("{} at offset", snap.display())), "{report}");
    assert!(report.contains(&format!("{} at offset {third}", log.display())), "{report}");
    assert!(report.contains("transaction 5 is missing"), "{report}");

    let db = open(&out);
    let kept = db.items.len();
    // A record block holds about 127 of the 510-byte records.
    assert!(kept > 150 && kept < 300, "one block of the snapshot and one commit are lost, the rest kept: {kept}");
    assert!(db.items.get(&1).is_some(), "the first block is whole: {report}");
    assert_eq!(db.items.get(&303), None, "the damaged commit is lost");
    assert_eq!(db.items.get(&310).unwrap(), "310", "commits after it are kept");
    drop(db);
    let verify = run(&[Path::new("verify"), &out]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn salvage_refuses_a_target_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let o = run(&[Path::new("salvage"), dir.path(), dir.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not empty"), "{}", text(&o));
}

//! `cairn backup` of a database a program has open in shared mode: the tool joins it for the copy.

use std::process::Command;

cairn::schema! {
    Notes {
        notes: <u64, String>,
    }
}

#[test]
fn backup_works_while_a_program_has_the_database_open_in_shared_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("notes");
    let db = Notes::builder().mode(cairn::Mode::Shared).open(&dir).unwrap();
    for i in 0..20u64 {
        db.notes.insert(i, format!("note {i}")).unwrap();
    }
    // An exclusive open is refused while the program has it open; `backup` is not.
    let compact = Command::new(env!("CARGO_BIN_EXE_cairn")).arg("compact").arg(&dir).output().unwrap();
    assert_eq!(compact.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&compact.stderr).contains("shared mode"), "{compact:?}");
    let copy = tmp.path().join("copy");
    let backup = Command::new(env!("CARGO_BIN_EXE_cairn")).arg("backup").arg(&dir).arg(&copy).output().unwrap();
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    assert!(String::from_utf8_lossy(&backup.stdout).contains("seq"), "{backup:?}");

    // The program goes on writing; the copy holds what was committed before it.
    db.notes.insert(100, "after the backup".into()).unwrap();
    assert_eq!(db.notes.len(), 21);
    drop(db);
    let restored = Notes::open(&copy).unwrap();
    assert_eq!(restored.notes.len(), 20);
    assert_eq!(restored.notes.get(&7).as_deref(), Some("note 7"));
    assert_eq!(restored.notes.get(&100), None);
    drop(restored);
    assert_eq!(Notes::open(&dir).unwrap().notes.len(), 21);
}

//! Point 6 of issue 2: an I/O error during a write or fsync fails that commit, leaves memory as it was, puts the
//! database into a failed state that refuses writes, and a reopen gives exactly the last durable state.

use std::collections::BTreeMap;
use std::io::ErrorKind;

use cairn_testkit::{Call, FaultyStorage, Sealing};

cairn::schema! {
    /// One table is enough to see what survives.
    Kv {
        items: ordered<u32, String>,
    }
}

fn open(dir: &std::path::Path, storage: &FaultyStorage) -> cairn::Result<Kv> {
    open_sealed(dir, storage, Sealing::Plain)
}

fn open_sealed(dir: &std::path::Path, storage: &FaultyStorage, sealing: Sealing) -> cairn::Result<Kv> {
    sealing.apply(Kv::builder().storage(storage.shared()).segment_size(4096).compact_after(None)).open(dir)
}

fn contents(db: &Kv) -> BTreeMap<u32, String> {
    db.items.iter().collect()
}

#[test]
fn failed_fsync_fails_the_commit_and_the_database() {
    for kind in [ErrorKind::Other, ErrorKind::StorageFull] {
        let dir = tempfile::tempdir().unwrap();
        let storage = FaultyStorage::new();
        let db = open(dir.path(), &storage).unwrap();
        db.items.insert(1, "one".into()).unwrap();
        storage.fail(Call::Sync, 1, kind, false);
        let err = db.items.insert(2, "two".into()).unwrap_err();
        assert!(matches!(err, cairn::Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("fsync log segment"), "{err}");
        assert_eq!(db.items.get(&2), None, "a failed commit is never visible");
        assert_eq!(contents(&db), BTreeMap::from([(1, "one".to_string())]));
        let refused = db.items.insert(3, "three".into()).unwrap_err();
        assert!(matches!(refused, cairn::Error::Failed { .. }), "{refused}");
        assert!(refused.to_string().contains("reopen"), "{refused}");
        assert!(refused.is_environmental());
        drop(db);
        storage.heal();
        let db = open(dir.path(), &storage).unwrap();
        assert_eq!(contents(&db), BTreeMap::from([(1, "one".to_string())]));
        db.items.insert(4, "four".into()).unwrap();
        drop(db);
        let db = open(dir.path(), &storage).unwrap();
        assert_eq!(db.items.len(), 2);
    }
}

#[test]
fn failed_write_fails_the_commit_and_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let db = open(dir.path(), &storage).unwrap();
    db.items.insert(1, "one".into()).unwrap();
    storage.fail(Call::Write, 1, ErrorKind::StorageFull, false);
    let err = db
        .transaction(|tx| {
            tx.items.insert(2, "two".into())?;
            tx.items.remove(&1)?;
            Ok::<_, cairn::Error>(())
        })
        .unwrap_err();
    assert!(err.to_string().contains("append to log segment"), "{err}");
    assert_eq!(contents(&db), BTreeMap::from([(1, "one".to_string())]));
    assert!(matches!(db.items.insert(5, "x".into()), Err(cairn::Error::Failed { .. })));
    drop(db);
    storage.heal();
    let db = open(dir.path(), &storage).unwrap();
    assert_eq!(contents(&db), BTreeMap::from([(1, "one".to_string())]));
}

/// Fails the n-th call of each kind in turn, through a script of commits, segment rolls and compactions, and checks
/// after every case that memory holds exactly the acknowledged commits and a reopen gives them back; on plain,
/// compressed, encrypted and compressed-and-encrypted databases.
#[test]
fn a_failure_at_any_single_call_loses_no_acknowledged_commit() {
    for sealing in Sealing::ALL {
        let cases = fail_each_call(sealing);
        println!("io faults, {}: {cases} injected failures fired", sealing.name());
        assert!(cases >= 40, "{}: only {cases} injected failures fired", sealing.name());
    }
}

fn fail_each_call(sealing: Sealing) -> usize {
    let mut cases = 0;
    for call in Call::ALL {
        for n in 1..=12 {
            let dir = tempfile::tempdir().unwrap();
            let storage = FaultyStorage::new();
            let db = open_sealed(dir.path(), &storage, sealing).unwrap();
            let mut model = BTreeMap::new();
            storage.fail(call, n, ErrorKind::Other, false);
            let mut failed = false;
            for i in 0..40u32 {
                let value = format!("value {i} {}", "x".repeat(200));
                let result = if i % 10 == 9 {
                    db.compact()
                } else {
                    db.items.insert(i % 17, value.clone()).map(|()| {
                        model.insert(i % 17, value);
                    })
                };
                match result {
                    Ok(()) => {}
                    Err(cairn::Error::Failed { .. }) => {
                        failed = true;
                        break;
                    }
                    Err(e) => {
                        assert!(e.is_environmental(), "{call:?} #{n}: {e}");
                        assert_eq!(contents(&db), model, "{call:?} #{n}: memory after the failure");
                    }
                }
            }
            assert_eq!(contents(&db), model, "{call:?} #{n}: memory at the end (failed state: {failed})");
            drop(db);
            cases += usize::from(storage.fired());
            storage.heal();
            let db = open_sealed(dir.path(), &storage, sealing)
                .unwrap_or_else(|e| panic!("{}, {call:?} #{n}: reopen: {e}", sealing.name()));
            assert_eq!(contents(&db), model, "{}, {call:?} #{n}: after reopen", sealing.name());
        }
    }
    cases
}

/// A failure while a database is being created (its key file, its first segment) fails the open with an I/O error;
/// once the disk is healed the same open creates it, or opens what was made, with the same key, and it works.
#[test]
fn a_failure_while_creating_a_database_leaves_a_directory_that_opens() {
    let mut fired = 0;
    for sealing in Sealing::ALL {
        for call in Call::ALL {
            for n in 1..=4 {
                let dir = tempfile::tempdir().unwrap();
                let storage = FaultyStorage::new();
                storage.fail(call, n, ErrorKind::Other, false);
                let what = format!("{}, {call:?} #{n}", sealing.name());
                let first = open_sealed(dir.path(), &storage, sealing);
                if let Err(e) = &first {
                    assert!(e.is_environmental(), "{what}: {e}");
                }
                let acknowledged = first.map(|db| db.items.insert(1, "one".into()).is_ok()).unwrap_or(false);
                fired += usize::from(storage.fired());
                storage.heal();
                let db = open_sealed(dir.path(), &storage, sealing).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
                assert_eq!(db.items.get(&1).is_some(), acknowledged, "{what}");
                db.items.insert(2, "two".into()).unwrap();
                drop(db);
                let db = open_sealed(dir.path(), &storage, sealing).unwrap();
                assert_eq!(db.items.get(&2).as_deref(), Some("two"), "{what}");
                assert_eq!(dir.path().join("KEYS").exists(), sealing.encrypted(), "{what}");
            }
        }
    }
    assert!(fired >= 30, "only {fired} failures fired during creation");
}

#[test]
fn second_open_of_a_locked_directory_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Kv::open(dir.path()).unwrap();
    let err = Kv::open(dir.path()).unwrap_err();
    assert!(matches!(err, cairn::Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("locked"), "{err}");
    drop(db);
    Kv::open(dir.path()).unwrap();
}

/// A transaction large enough to write its frame while it runs (several MiB) meets a failed write: the insert that
/// triggered it fails, the database fails, and even a transaction that ignores the error and returns `Ok` cannot
/// commit what was lost; a reopen gives the state before it.
#[test]
fn a_failed_write_of_a_large_transaction_fails_it_even_if_the_error_is_ignored() {
    let big = "x".repeat(1024);
    for ignore in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let storage = FaultyStorage::new();
        let db = open(dir.path(), &storage).unwrap();
        db.items.insert(1, "one".into()).unwrap();
        // The first write after this is the large transaction's first chunk (nothing else writes meanwhile).
        storage.fail(Call::Write, 1, ErrorKind::StorageFull, false);
        let mut failed_inserts = 0;
        let result = db.transaction(|tx| {
            for i in 10..10_000 {
                match tx.items.insert(i, big.clone()) {
                    Ok(_) => {}
                    Err(e) if ignore => {
                        assert!(e.to_string().contains("append to log segment") || e.to_string().contains("failed"));
                        failed_inserts += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        });
        let err = result.unwrap_err();
        assert!(storage.fired());
        assert!(!ignore || failed_inserts > 0, "the insert that wrote the chunk reported the failure");
        if !ignore {
            assert!(err.to_string().contains("append to log segment"), "{err}");
        } else {
            assert!(matches!(err, cairn::Error::Failed { .. }), "{err}");
        }
        assert_eq!(contents(&db), BTreeMap::from([(1, "one".to_string())]), "nothing of it is visible");
        assert!(matches!(db.items.insert(2, "two".into()), Err(cairn::Error::Failed { .. })));
        drop(db);
        storage.heal();
        let db = open(dir.path(), &storage).unwrap();
        assert_eq!(contents(&db), BTreeMap::from([(1, "one".to_string())]));
        db.items.insert(2, "two".into()).unwrap();
        drop(db);
        assert_eq!(open(dir.path(), &storage).unwrap().items.len(), 2);
    }
}

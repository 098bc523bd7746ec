//! Key rotation is crash-safe (issue 8): `rotate_key` is stopped at every storage call it makes, by an injected I/O
//! error (on the real file system) and by a power loss (on `SimStorage`, every state the disk may be left in). After
//! each, the database must open with the old key or with the new one, holding every acknowledged commit and nothing
//! else; a rotation that returned `Ok` must leave only the new key working; and rotating again from whatever opened
//! must succeed and leave only the new key working. The happy path and the files' contents are in
//! `cairn/tests/encryption.rs`.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;

use cairn::{EncryptionKey, Error, Storage};
use cairn_testkit::{Call, CrashImage, FaultyStorage, Sampling, SimStorage};

cairn::schema! {
    /// Two tables, one folded into the snapshot and one only in the log when rotation starts.
    Vault {
        items: ordered<u32, String>,
        names: <String, u32>,
    }
}

const OLD: [u8; 32] = [7; 32];
const NEW: [u8; 32] = [9; 32];
const DIR: &str = "/db";

type State = (BTreeMap<u32, String>, BTreeMap<String, u32>);

fn open(dir: &Path, storage: Arc<dyn Storage>, key: [u8; 32]) -> cairn::Result<Vault> {
    Vault::builder()
        .storage(storage)
        .segment_size(4096)
        .compact_after(None)
        .compression(cairn::Compression::Lz4)
        .compress_log_above(0)
        .encryption(EncryptionKey::from_bytes(key))
        .open(dir)
}

fn state(db: &Vault) -> State {
    (db.items.iter().collect(), db.names.iter().collect())
}

/// Fills a new database: a snapshot, then a few segments of log after it.
fn fill(db: &Vault) -> State {
    for i in 0..20 {
        db.items.insert(i, format!("folded {i} {}", "x".repeat(i as usize * 13))).unwrap();
    }
    db.compact().unwrap();
    for i in 20..60 {
        db.transaction(|tx| {
            tx.items.insert(i, format!("logged {i} {}", "y".repeat(i as usize * 7)))?;
            tx.names.insert(format!("name {i}"), i)
        })
        .unwrap();
    }
    state(db)
}

/// Which keys open the database in `dir` now (old first), checking that the state is `expected` and that a rotation
/// that finished (`done`) left only the new key working.
fn reopen(dir: &Path, storage: &Arc<dyn Storage>, expected: &State, done: bool) -> Result<Vec<[u8; 32]>, String> {
    let mut opened = Vec::new();
    for key in [OLD, NEW] {
        match open(dir, Arc::clone(storage), key) {
            Ok(db) => {
                if state(&db) != *expected {
                    return Err(format!(
                        "key {}: {} items, {} names; expected {} and {}",
                        key[0],
                        state(&db).0.len(),
                        state(&db).1.len(),
                        expected.0.len(),
                        expected.1.len()
                    ));
                }
                opened.push(key);
            }
            Err(Error::WrongKey { .. }) => {}
            Err(e) => return Err(format!("key {}: {e} ({e:?})", key[0])),
        }
    }
    match opened.first() {
        None => Err("neither key opens it".into()),
        Some(&OLD) if done => Err("the old key still opens it after a rotation that returned Ok".into()),
        Some(_) => Ok(opened),
    }
}

/// Rotates again from `key` if it is the old one, and checks that only the new key opens the result, with `expected`.
fn finish(dir: &Path, storage: &Arc<dyn Storage>, key: [u8; 32], expected: &State) -> Result<(), String> {
    if key == OLD {
        let db = open(dir, Arc::clone(storage), OLD).map_err(|e| e.to_string())?;
        db.rotate_key(EncryptionKey::from_bytes(NEW)).map_err(|e| format!("rotating again: {e}"))?;
    }
    match reopen(dir, storage, expected, true)?[..] {
        [NEW] => Ok(()),
        _ => Err("the old key opens it after rotating again".into()),
    }
}

#[test]
fn a_failure_at_any_call_of_a_rotation_leaves_a_database_that_opens_with_one_of_the_keys() {
    let calls = Call::ALL;
    let mut fired = BTreeMap::new();
    for call in calls {
        for n in 1.. {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            let faulty = FaultyStorage::new();
            let storage = faulty.shared();
            let db = open(dir, Arc::clone(&storage), OLD).unwrap();
            let mut expected = fill(&db);
            faulty.fail(call, n, ErrorKind::Other, false);
            let rotated = db.rotate_key(EncryptionKey::from_bytes(NEW));
            if !faulty.fired() {
                rotated.unwrap();
                drop(db);
                // Every call of this kind in a rotation has failed once by now.
                let plain: Arc<dyn Storage> = Arc::new(cairn::FsStorage);
                assert_eq!(reopen(dir, &plain, &expected, true), Ok(vec![NEW]), "{call:?} #{n}: no failure");
                break;
            }
            *fired.entry(format!("{call:?}")).or_insert(0) += 1;
            // A commit after the failure is either acknowledged (and must survive) or refused.
            let after = db.items.insert(1000, "after".into());
            if after.is_ok() {
                expected.0.insert(1000, "after".into());
            }
            let done = rotated.is_ok();
            drop(db);
            faulty.heal();
            let context = format!("{call:?} #{n} failed (rotation {rotated:?}, commit after it {after:?})");
            let keys = reopen(dir, &storage, &expected, done).unwrap_or_else(|e| panic!("{context}: {e}"));
            finish(dir, &storage, keys[0], &expected).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert!(n < 200, "{call:?}: a rotation makes fewer than 200 calls of a kind");
        }
    }
    eprintln!("rotation faults: failures injected per call kind: {fired:?}");
    for kind in ["Write", "Sync", "OpenWrite", "Rename", "SyncDir"] {
        assert!(fired.get(kind).copied().unwrap_or(0) >= 1, "a rotation makes {kind} calls: {fired:?}");
    }
}

#[test]
fn a_power_loss_at_any_call_of_a_rotation_leaves_a_database_that_opens_with_one_of_the_keys() {
    let dir = Path::new(DIR);
    let (mut points, mut images, mut exhaustive) = (0u64, 0u64, 0u64);
    let mut opened_with = BTreeMap::new();
    for k in 1.. {
        let sim = SimStorage::new();
        let storage = sim.shared();
        let db = open(dir, Arc::clone(&storage), OLD).unwrap();
        let expected = fill(&db);
        sim.stop_after(k);
        let rotated = db.rotate_key(EncryptionKey::from_bytes(NEW));
        drop(db);
        if !sim.stopped() {
            rotated.unwrap();
            // Forget the planned stop: the disk as it is now, everything kept.
            sim.restore(&sim.current_image());
            assert_eq!(reopen(dir, &storage, &expected, true), Ok(vec![NEW]), "a rotation that ran to its end");
            break;
        }
        assert!(rotated.is_err(), "call {k}: the rotation reports the stopped disk");
        let trace = sim.trace();
        let found = sim.crash_images(&Sampling { exhaustive_up_to: 64, samples: 8, seed: k });
        points += 1;
        exhaustive += u64::from(found.exhaustive);
        for (i, image) in found.images.iter().enumerate() {
            images += 1;
            let context = || format!("power lost at call {k} of the rotation, image {i}; last calls: {trace:#?}");
            let keys = check_image(&sim, image, &expected, i == 0).unwrap_or_else(|e| panic!("{}: {e}", context()));
            let which = match keys[..] {
                [OLD] => "old key only",
                [NEW] => "new key only",
                _ => "both keys",
            };
            *opened_with.entry(which).or_insert(0) += 1;
        }
        assert!(k < 2000, "a rotation of this database makes fewer than 2000 calls");
    }
    eprintln!(
        "rotation power loss: {points} crash points ({exhaustive} enumerated exhaustively), {images} images; \
         opened with: {opened_with:?}"
    );
    assert!(points >= 10, "only {points} crash points");
    assert_eq!(opened_with.len(), 3, "crashes before, during and after the rotation: {opened_with:?}");
}

/// Restores `image`, checks which keys open it with `expected`; for `finish_it`, rotates again to the end.
fn check_image(
    sim: &SimStorage,
    image: &CrashImage,
    expected: &State,
    finish_it: bool,
) -> Result<Vec<[u8; 32]>, String> {
    sim.restore(image);
    let storage = sim.shared();
    let keys = reopen(Path::new(DIR), &storage, expected, false)?;
    if finish_it {
        finish(Path::new(DIR), &storage, keys[0], expected)?;
    }
    Ok(keys)
}

//! Online backup under faults (issue 5, part 4):
//! - a storage failure at any call of a backup is an error naming what failed and where, leaves nothing at the
//!   target or beside it, and leaves the source working (unless the failure was in the source's own log roll: then
//!   the source is in the failed state, as after any failed roll, and a reopen gives back every commit);
//! - a power loss at any call of a backup leaves the source with every commit, and at the target either nothing or
//!   the whole copy (never a copy with fewer commits);
//! - segments and snapshots left behind by an interrupted compaction are not copied.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use cairn::Storage;
use cairn_testkit::{Call, FaultyStorage, Sampling, SimStorage};

cairn::schema! {
    /// One table is enough to see what a copy holds.
    Kv {
        items: ordered<u32, String>,
    }
}

fn open(dir: &Path, storage: std::sync::Arc<dyn Storage>) -> cairn::Result<Kv> {
    Kv::builder().storage(storage).segment_size(8 << 20).compact_after(None).open(dir)
}

fn contents(db: &Kv) -> BTreeMap<u32, String> {
    db.items.iter().collect()
}

fn partial(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap().to_os_string();
    name.push(".cairn-partial");
    out.with_file_name(name)
}

/// A database whose backup copies a snapshot of a few MiB (several chunks, fsynced between them), a closed segment
/// whose last MiB is reserved space (a hole in the copy), and rolls an active segment that holds frames.
fn fill(db: &Kv) -> BTreeMap<u32, String> {
    db.transaction(|tx| {
        for i in 0..2_500u32 {
            tx.items.insert(i, format!("{i:>1000}"))?;
        }
        Ok::<_, cairn::Error>(())
    })
    .unwrap();
    db.db().compact().unwrap();
    // 2.3 MiB of log: the segment reserves 4 MiB. A backup rolls it; its copy is thrown away.
    for i in 0..23u32 {
        db.items.insert(5_000 + i, format!("{i} {}", "z".repeat(100_000))).unwrap();
    }
    let root = tempfile::tempdir().unwrap();
    db.db().backup_to(root.path().join("rolls")).unwrap();
    for i in 0..30u32 {
        db.items.insert(10_000 + i, format!("after the roll {i} {}", "y".repeat(200))).unwrap();
    }
    contents(db)
}

#[test]
fn a_failure_at_any_call_of_a_backup_leaves_the_source_working_and_nothing_at_the_target() {
    let template = tempfile::tempdir().unwrap();
    let filled = fill(&open(template.path(), FaultyStorage::new().shared()).unwrap());
    let mut fired = BTreeMap::new();
    for call in Call::ALL {
        for n in 1.. {
            let root = tempfile::tempdir().unwrap();
            let (source, out) = (root.path().join("db"), root.path().join("out"));
            std::fs::create_dir(&source).unwrap();
            for file in std::fs::read_dir(template.path()).unwrap() {
                let file = file.unwrap();
                std::fs::copy(file.path(), source.join(file.file_name())).unwrap();
            }
            let storage = FaultyStorage::new();
            let db = open(&source, storage.shared()).unwrap();
            let mut model = filled.clone();
            assert_eq!(contents(&db), model);
            let seq = db.db().last_seq();
            storage.fail(call, n, ErrorKind::Other, false);
            let result = db.db().backup_to(&out);
            if !storage.fired() {
                let backup = result.unwrap_or_else(|e| panic!("{call:?} #{n}: no failure fired, yet: {e}"));
                assert_eq!(backup.seq, seq);
                break;
            }
            *fired.entry(format!("{call:?}")).or_insert(0) += 1;
            let case = format!("{call:?} #{n}");
            let err = result.expect_err(&case);
            let cairn::Error::Io { path, .. } = &err else { panic!("{case}: not an I/O error: {err}") };
            let message = err.to_string();
            assert!(message.contains("injected failure"), "{case}: {message}");
            assert!(message.contains(&*path.to_string_lossy()), "{case}: names the file: {message}");
            assert!(!out.exists(), "{case}: something is at the target after {message}");
            assert!(!partial(&out).exists(), "{case}: the partial copy is left after {message}");

            // Only the roll writes to the source; a failed roll puts it in the failed state, as it would in a commit.
            let in_source = path.starts_with(&source);
            match db.items.insert(1, "after the failed backup".into()) {
                Ok(()) => {
                    assert!(!in_source, "{case}: the source's roll failed ({message}), yet it took a commit");
                    model.insert(1, "after the failed backup".into());
                }
                Err(e) => {
                    assert!(in_source, "{case}: a failure in the copy ({message}) failed the source: {e}");
                    assert!(matches!(e, cairn::Error::Failed { .. }), "{case}: {e}");
                    // A failed database is not backed up: its disk may not hold what its memory does.
                    let refused = db.db().backup_to(&out).unwrap_err();
                    assert!(matches!(refused, cairn::Error::Failed { .. }), "{case}: {refused}");
                    assert!(!out.exists() && !partial(&out).exists(), "{case}: a refused backup left files");
                }
            }
            assert_eq!(contents(&db), model, "{case}");
            storage.heal();
            if !in_source {
                let backup = db.db().backup_to(&out).unwrap_or_else(|e| panic!("{case}: the next backup: {e}"));
                assert_eq!(backup.seq, seq + 1, "{case}");
                let copy = open(&out, storage.shared()).unwrap();
                assert_eq!(contents(&copy), model, "{case}: the next backup's copy");
            }
            drop(db);
            let db = open(&source, storage.shared()).unwrap_or_else(|e| panic!("{case}: reopen: {e}"));
            assert_eq!(contents(&db), model, "{case}: after reopen");
        }
    }
    // Every kind of call a backup makes failed at least once; a backup removes nothing unless it failed.
    for call in Call::ALL.iter().filter(|c| **c != Call::Remove) {
        assert!(fired.contains_key(&format!("{call:?}")), "{call:?} never failed: {fired:?}");
    }
    assert!(fired.values().sum::<u32>() >= 25, "{fired:?}");
    assert!(fired["SetLen"] >= 3, "the hole at the end of a copied segment: {fired:?}");
}

#[test]
fn files_an_interrupted_compaction_left_are_not_copied() {
    let root = tempfile::tempdir().unwrap();
    let (source, out) = (root.path().join("db"), root.path().join("out"));
    let storage = FaultyStorage::new();
    let db = open(&source, storage.shared()).unwrap();
    let model = fill(&db);
    // The second compaction cannot remove what its snapshot replaces: the old snapshot and the covered segments stay.
    storage.fail(Call::Remove, 1, ErrorKind::Other, true);
    assert!(db.db().compact().is_err());
    storage.heal();
    let names = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    let in_source = names(&source);
    let snapshots: Vec<&String> = in_source.iter().filter(|n| n.ends_with(".snap")).collect();
    assert_eq!(snapshots.len(), 2, "{in_source:?}");
    let covered: Vec<&String> = in_source.iter().filter(|n| n.ends_with(".log") && **n <= *snapshots[1]).collect();
    assert!(covered.len() >= 2, "{in_source:?}");

    let backup = db.db().backup_to(&out).unwrap();
    // The current snapshot and the active segment as it was rolled (its frames none, so not rolled: nothing after).
    let copied = names(&out);
    assert_eq!(copied, [snapshots[1].clone(), "LOCK".to_string()], "source: {in_source:?}");
    assert_eq!(backup.files, 1);
    let copy = open(&out, storage.shared()).unwrap();
    assert_eq!(contents(&copy), model);
    assert_eq!(copy.db().last_seq(), backup.seq);
}

fn open_sim(dir: &Path, sim: &SimStorage) -> cairn::Result<Kv> {
    Kv::builder().storage(sim.shared()).segment_size(4096).compact_after(None).open(dir)
}

/// A small database on a fresh simulated disk, with a snapshot and two segments after it; returns the database, its
/// contents and its last commit.
fn sim_database(sim: &SimStorage) -> (Kv, BTreeMap<u32, String>, u64) {
    let db = open_sim(Path::new("/db"), sim).unwrap();
    for i in 0..40u32 {
        db.items.insert(i, format!("{i:>100}")).unwrap();
    }
    db.db().compact().unwrap();
    for i in 0..25u32 {
        db.items.insert(100 + i, format!("after the snapshot {i:>200}")).unwrap();
    }
    let model = contents(&db);
    let seq = db.db().last_seq();
    (db, model, seq)
}

#[test]
fn power_loss_during_a_backup_leaves_nothing_or_the_whole_copy() {
    let (source, out) = (Path::new("/db"), Path::new("/out"));
    let (mut points, mut images, mut copies) = (0, 0, 0);
    for k in 1.. {
        let sim = SimStorage::new();
        let (db, model, seq) = sim_database(&sim);
        sim.stop_after(k);
        let result = db.db().backup_to(out);
        let stopped = sim.stopped();
        drop(db);
        assert!(stopped || result.is_ok(), "call #{k}: {result:?}");
        points += 1;
        let crashed = sim.crash_images(&Sampling { exhaustive_up_to: 64, samples: 8, seed: k });
        for image in &crashed.images {
            images += 1;
            let case = format!("power lost at call #{k} of a backup: {image:?}");
            let sim = SimStorage::from_image(image);
            let db = open_sim(source, &sim).unwrap_or_else(|e| panic!("{case}: source: {e}"));
            assert_eq!(db.db().last_seq(), seq, "{case}");
            assert_eq!(contents(&db), model, "{case}");
            let at_target = sim.list(out).map(|names| !names.is_empty()).unwrap_or(false);
            if at_target {
                copies += 1;
                let copy = open_sim(out, &sim).unwrap_or_else(|e| panic!("{case}: copy: {e}"));
                assert_eq!(copy.db().last_seq(), seq, "{case}: the copy");
                assert_eq!(contents(&copy), model, "{case}: the copy");
            } else {
                // Whatever the lost backup left beside the target, the next one takes its place.
                let backup = db.db().backup_to(out).unwrap_or_else(|e| panic!("{case}: the next backup: {e}"));
                drop(db);
                let copy = open_sim(out, &sim).unwrap_or_else(|e| panic!("{case}: copy: {e}"));
                assert_eq!((copy.db().last_seq(), contents(&copy)), (backup.seq, model.clone()), "{case}");
            }
        }
        if !stopped {
            break;
        }
    }
    // Power lost after the rename, and no power loss at all, leave a copy; all the other points none.
    assert!(points >= 10 && copies >= 2 && images > copies, "points {points}, images {images}, copies {copies}");
}

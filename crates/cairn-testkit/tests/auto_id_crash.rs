//! Auto ids across power loss: a crash at every storage call of a session that allocates ids, every crash image
//! (sampled when there are many), then a reopen. No acknowledged record is lost, and the next id handed out is above
//! every id acknowledged before the crash and every id the table holds: an id is never handed out twice.

use cairn::{Durability, Id};
use cairn_testkit::{Sampling, SimStorage};

cairn::schema! {
    /// Notes with ids the database allocates, and a table written beside them.
    Notes {
        notes: auto<String>,
        other: <u64, u64>,
    }
}

const DIR: &str = "/db";
const COMMITS: u64 = 24;

fn open(sim: &SimStorage) -> cairn::Result<Notes> {
    Notes::builder()
        .storage(sim.shared())
        .durability(Durability::Immediate)
        .segment_size(4096)
        .compact_after(Some(8 * 1024))
        .open(DIR)
}

/// Allocates ids until the storage stops (or `COMMITS` are done); returns the ids acknowledged, in order, each with
/// whether its record was kept (every fourth transaction removes the record it just created: the id is taken, and
/// only the stored counter remembers it).
fn session(db: &Notes) -> Vec<(Id<String>, bool)> {
    let mut acknowledged = Vec::new();
    for i in 0..COMMITS {
        let kept = i % 4 != 3;
        let r = db.transaction(|tx| {
            let id = tx.notes.insert_new(format!("note {i} {}", "x".repeat((i * 37 % 300) as usize)))?;
            if !kept {
                tx.notes.remove(&id)?;
            }
            tx.other.insert(i, i)?;
            Ok::<_, cairn::Error>(id)
        });
        match r {
            Ok(id) => acknowledged.push((id, kept)),
            Err(_) => break,
        }
        if i % 10 == 9 && db.compact().is_err() {
            break;
        }
    }
    acknowledged
}

#[test]
fn no_id_is_handed_out_twice_across_a_power_loss_at_any_call() {
    let calls = {
        let sim = SimStorage::new();
        let db = open(&sim).unwrap();
        assert_eq!(session(&db).len(), COMMITS as usize);
        drop(db);
        sim.calls()
    };
    let (mut points, mut images_checked) = (0, 0);
    for k in 1..calls {
        let sim = SimStorage::new();
        sim.stop_after(k);
        let acknowledged = match open(&sim) {
            Ok(db) => session(&db),
            Err(_) => Vec::new(),
        };
        if !sim.stopped() {
            continue;
        }
        points += 1;
        let images = sim.crash_images(&Sampling { exhaustive_up_to: 16, samples: 4, seed: k });
        for image in &images.images {
            images_checked += 1;
            sim.restore(image);
            let db = open(&sim).unwrap_or_else(|e| panic!("crash at call {k}: reopen failed: {e}"));
            for (id, kept) in &acknowledged {
                assert_eq!(db.notes.contains_key(id), *kept, "crash at call {k}: acknowledged {id:?}");
            }
            let highest = db.notes.last().map(|(id, _)| id);
            let next = db.notes.insert_new("after the crash".into()).unwrap();
            assert!(
                acknowledged.last().is_none_or(|(a, _)| next > *a) && highest.is_none_or(|h| next > h),
                "crash at call {k}: handed out {next:?} again (acknowledged up to {:?}, table up to {highest:?})",
                acknowledged.last()
            );
        }
    }
    assert!(points > 10, "the sessions crashed at only {points} points");
    println!("auto ids: {points} crash points, {images_checked} images");
}

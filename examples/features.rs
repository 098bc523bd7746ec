//! Secondary indexes, auto-id tables, the change feed and online backup, in one small program.
//!
//! `cargo run -p cairn --example features` (it works in a temporary directory and removes it).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    email: String,
    city: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Note {
    author: u64,
    text: String,
}

cairn::schema! {
    Crm {
        users: <u64, User> {
            by_email: unique String = |u: &User| u.email.clone(),
            by_city: String = |u: &User| u.city.clone(),
        },
        notes: auto<Note> {
            by_author: u64 = |n: &Note| n.author,
        },
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Crm::open(dir.path().join("crm"))?;

    // Follow every change to `users` from the beginning, on another thread.
    let feed = db.users.subscribe_from(0);
    let follower = std::thread::spawn(move || {
        for event in feed.take(3) {
            let event = event.expect("the feed follows the log");
            for change in event.changes() {
                println!("feed: seq {} user {} -> {:?}", event.seq(), change.key(), change.value().map(|u| &u.email));
            }
        }
    });

    db.users.insert(1, User { email: "ada@example.com".into(), city: "London".into() })?;
    db.users.insert(2, User { email: "grace@example.com".into(), city: "Arlington".into() })?;
    let taken = db.users.insert(3, User { email: "ada@example.com".into(), city: "Paris".into() });
    println!("a second ada: {}", taken.expect_err("the unique index refuses it"));
    db.users.update(&2, |u| u.city = "London".into())?;

    let (id, ada) = db.users.by_email.get("ada@example.com").expect("indexed");
    println!("by email: user {id} in {}", ada.city);
    let mut londoners: Vec<u64> = db.users.by_city.get("London").map(|(id, _)| id).collect();
    londoners.sort();
    println!("by city: London has {londoners:?}");

    // Ids the database allocates, in the same transaction as the records.
    let first = db.transaction(|tx| {
        let first = tx.notes.insert_new(Note { author: 1, text: "analytical engine".into() })?;
        tx.notes.insert_new(Note { author: 1, text: "bernoulli numbers".into() })?;
        Ok::<_, cairn::Error>(first)
    })?;
    println!("notes by user 1: {} (the first is {first})", db.notes.by_author.count(&1));
    let granted = db.notes.reserve_ids(100)?;
    println!("ids reserved for an offline client: {:?}", granted);

    follower.join().expect("the follower ends after three events");

    // A consistent copy while the database stays open; restoring is opening it.
    let backup = db.backup_to(dir.path().join("crm-backup"))?;
    let copy = Crm::open(&backup.path)?;
    println!("backup at seq {} has {} users and {} notes", backup.seq, copy.users.len(), copy.notes.len());
    Ok(())
}

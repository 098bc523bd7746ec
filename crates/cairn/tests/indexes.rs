//! Secondary indexes: declared in `schema!`, maintained in the writing transaction, unique ones enforced there,
//! queried by key, by all records of a key, by range; rebuilt on open.

use cairn::Error;
use serde::{Deserialize, Serialize};

/// An account (public: a schema in a module below uses it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Unique.
    pub email: String,
    /// Shared by many.
    pub city: String,
    /// Neither.
    pub balance: i64,
}

fn account(email: &str, city: &str) -> Account {
    Account { email: email.into(), city: city.into(), balance: 0 }
}

cairn::schema! {
    Bank {
        accounts: <u32, Account> {
            by_email: unique String = |a: &Account| a.email.clone(),
            by_city: String = |a: &Account| a.city.clone(),
        },
        log: ordered<u64, String> {
            by_len: ordered usize = |s: &String| s.len(),
        },
        plain: <u32, u32>,
    }
}

fn keys<V>(records: impl IntoIterator<Item = (u32, V)>) -> Vec<u32> {
    let mut keys: Vec<u32> = records.into_iter().map(|(k, _)| k).collect();
    keys.sort();
    keys
}

#[test]
fn lookups_through_unique_and_non_unique_indexes_follow_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = Bank::open(dir.path()).unwrap();
    db.accounts.insert(1, account("ada@x", "Paris")).unwrap();
    db.accounts.insert(2, account("bob@x", "Paris")).unwrap();
    db.accounts.insert(3, account("cy@x", "Oslo")).unwrap();

    assert_eq!(db.accounts.by_email.get("bob@x").map(|(k, _)| k), Some(2));
    assert!(db.accounts.by_email.get("nobody@x").is_none());
    assert_eq!(keys(db.accounts.by_city.get("Paris")), [1, 2]);
    assert_eq!(db.accounts.by_city.count("Oslo"), 1);
    assert_eq!(db.accounts.by_city.key_count(), 2);

    // A changed value moves its record in every index; the old index keys lead nowhere.
    db.accounts.update(&2, |a| (a.email, a.city) = ("bob@y".into(), "Oslo".into())).unwrap();
    assert!(db.accounts.by_email.get("bob@x").is_none());
    assert_eq!(db.accounts.by_email.get("bob@y").map(|(k, _)| k), Some(2));
    assert_eq!(keys(db.accounts.by_city.get("Paris")), [1]);
    assert_eq!(keys(db.accounts.by_city.get("Oslo")), [2, 3]);

    // A removal leaves no trace.
    db.accounts.remove(&3).unwrap();
    assert!(!db.accounts.by_email.contains_key("cy@x"));
    assert_eq!(keys(db.accounts.by_city.get("Oslo")), [2]);
    assert_eq!(db.accounts.by_email.len(), 2);

    // Ranges come in index key order.
    let emails: Vec<String> = db.accounts.by_email.range::<str, _>(..).map(|(_, a)| a.email).collect();
    assert_eq!(emails, ["ada@x", "bob@y"]);
    db.log.insert(1, "abc".into()).unwrap();
    db.log.insert(2, "a".into()).unwrap();
    db.log.insert(3, "abcdef".into()).unwrap();
    let lens: Vec<u64> = db.log.by_len.range(2..).map(|(k, _)| k).collect();
    assert_eq!(lens, [1, 3]);
    let lens: Vec<u64> = db.log.by_len.range(..4).rev().map(|(k, _)| k).collect();
    assert_eq!(lens, [1, 2], "a range of an `ordered` index runs backwards too");
    // Tables without indexes keep their plain handle.
    db.plain.insert(1, 1).unwrap();
    assert_eq!(db.plain.get(&1), Some(1));
}

#[test]
fn a_unique_violation_refuses_the_write_names_the_index_and_key_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Bank::open(dir.path()).unwrap();
    db.accounts.insert(1, account("ada@x", "Paris")).unwrap();

    let err = db.accounts.insert(2, account("ada@x", "Oslo")).unwrap_err();
    match &err {
        Error::UniqueViolation { table, index, key } => {
            assert_eq!((table.as_str(), *index, key.as_str()), ("accounts", "by_email", "\"ada@x\""));
        }
        other => panic!("expected a unique violation, got {other:?}"),
    }
    assert!(err.to_string().contains("by_email") && err.to_string().contains("ada@x"), "{err}");
    assert!(db.accounts.get(&2).is_none());

    // In a transaction that returns the error, nothing of it is committed.
    let seq = db.db().last_seq();
    let r = db.transaction(|tx| {
        tx.plain.insert(7, 7)?;
        tx.accounts.insert(3, account("ada@x", "Rome"))?;
        Ok::<_, Error>(())
    });
    assert!(matches!(r, Err(Error::UniqueViolation { .. })));
    assert_eq!(db.db().last_seq(), seq);
    assert!(db.plain.get(&7).is_none());

    // Rewriting a record with its own index key is no violation.
    db.accounts.update(&1, |a| a.balance = 5).unwrap();
    assert_eq!(db.accounts.by_email.get("ada@x").map(|(_, a)| a.balance), Some(5));
}

#[test]
fn a_transaction_may_move_an_index_key_between_records_and_sees_its_own_index_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Bank::open(dir.path()).unwrap();
    db.accounts.insert(1, account("ada@x", "Paris")).unwrap();
    db.accounts.insert(2, account("bob@x", "Paris")).unwrap();

    db.transaction(|tx| {
        // Swap the two emails through a third value.
        tx.accounts.update(&1, |a| a.email = "tmp@x".into())?;
        tx.accounts.update(&2, |a| a.email = "ada@x".into())?;
        tx.accounts.update(&1, |a| a.email = "bob@x".into())?;
        assert_eq!(tx.accounts.by_email.get(&"ada@x".to_string()).map(|(k, _)| k), Some(2));
        assert_eq!(tx.accounts.by_email.get(&"bob@x".to_string()).map(|(k, _)| k), Some(1));
        assert!(tx.accounts.by_email.get(&"tmp@x".to_string()).is_none());
        // The published index has not changed yet.
        assert_eq!(db.accounts.by_email.get("ada@x").map(|(k, _)| k), Some(1));

        tx.accounts.insert(3, account("cy@x", "Paris"))?;
        tx.accounts.update(&1, |a| a.city = "Oslo".into())?;
        assert_eq!(keys(tx.accounts.by_city.get(&"Paris".to_string())), [2, 3]);
        assert_eq!(tx.accounts.by_city.count(&"Oslo".to_string()), 1);
        tx.accounts.remove(&3)?;
        // A key freed by a removal can be taken in the same transaction.
        tx.accounts.insert(4, account("cy@x", "Rome"))?;
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(db.accounts.by_email.get("ada@x").map(|(k, _)| k), Some(2));
    assert_eq!(db.accounts.by_email.get("bob@x").map(|(k, _)| k), Some(1));
    assert_eq!(db.accounts.by_email.get("cy@x").map(|(k, _)| k), Some(4));
    assert_eq!(keys(db.accounts.by_city.get("Paris")), [2]);

    // A refused write inside a transaction that goes on leaves no claim behind: the key stays free for others.
    db.transaction(|tx| {
        assert!(tx.accounts.insert(5, account("ada@x", "Paris")).is_err());
        tx.accounts.insert(5, account("eve@x", "Paris"))?;
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(db.accounts.by_email.get("eve@x").map(|(k, _)| k), Some(5));
}

#[test]
fn a_read_view_sees_tables_and_indexes_at_one_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = Bank::open(dir.path()).unwrap();
    for i in 0..10 {
        db.accounts.insert(i, account(&format!("{i}@x"), if i % 2 == 0 { "Even" } else { "Odd" })).unwrap();
    }
    db.read(|r| {
        assert_eq!(r.accounts.len(), 10);
        let (k, a) = r.accounts.by_email.get("3@x").unwrap();
        assert_eq!((*k, a.city.as_str()), (3, "Odd"));
        let mut odd: Vec<u32> = r.accounts.by_city.get("Odd").map(|(k, _)| *k).collect();
        odd.sort();
        assert_eq!(odd, [1, 3, 5, 7, 9]);
        let cities: Vec<&String> = r.accounts.by_city.range::<str, _>(..).map(|(ik, _, _)| ik).collect();
        assert_eq!(cities.len(), 10);
        assert!(cities.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(r.accounts.by_email.iter().count(), 10);
    });
    let n = db.accounts.by_city.read(|ix| ix.count("Even"));
    assert_eq!(n, 5);
}

#[test]
fn indexes_are_rebuilt_on_reopen_from_the_snapshot_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Bank::open(dir.path()).unwrap();
        for i in 0..100 {
            db.accounts.insert(i, account(&format!("{i}@x"), &format!("c{}", i % 7))).unwrap();
        }
        db.compact().unwrap();
        for i in 0..50 {
            db.accounts.update(&i, |a| a.email = format!("{i}@y")).unwrap();
        }
        db.accounts.remove(&99).unwrap();
    }
    let db = Bank::open(dir.path()).unwrap();
    assert_eq!(db.accounts.by_email.len(), 99);
    assert_eq!(db.accounts.by_email.get("10@y").map(|(k, _)| k), Some(10));
    assert!(db.accounts.by_email.get("10@x").is_none());
    assert_eq!(db.accounts.by_email.get("60@x").map(|(k, _)| k), Some(60));
    assert_eq!(db.accounts.by_city.count("c1"), 14, "99 records, keys 1, 8, ... 92 (99 is removed)");
    // Uniqueness holds after reopen too.
    assert!(db.accounts.insert(500, account("10@y", "c0")).is_err());
}

mod before {
    use super::Account;

    cairn::schema! {
        pub Bank {
            accounts: <u32, Account> {
                by_city: String = |a: &Account| a.city.clone(),
            },
            log: ordered<u64, String>,
            plain: <u32, u32>,
        }
    }
}

#[test]
fn declaring_a_unique_index_over_duplicates_fails_to_open_with_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = before::Bank::open(dir.path()).unwrap();
        db.accounts.insert(1, account("same@x", "Paris")).unwrap();
        db.accounts.insert(2, account("same@x", "Oslo")).unwrap();
    }
    let err = Bank::open(dir.path()).unwrap_err();
    match &err {
        Error::IndexCollision { table, index, key, .. } => {
            assert_eq!((table.as_str(), *index, key.as_str()), ("accounts", "by_email", "\"same@x\""));
        }
        other => panic!("expected an index collision, got {other:?}"),
    }
    assert!(err.to_string().contains("non-unique"), "the message says what to do: {err}");
    // The schema without the unique index still opens it, with both records.
    let db = before::Bank::open(dir.path()).unwrap();
    assert_eq!(db.accounts.len(), 2);
}

#[test]
fn concurrent_writers_racing_for_the_same_unique_keys_win_exactly_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = Bank::open(dir.path()).unwrap();
    const EMAILS: u32 = 150;
    // Durable commits queue behind each other's fsyncs, so a writer checks its claims against transactions that are
    // committed but not yet published.
    let wins: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u32)
            .map(|t| {
                let db = &db;
                s.spawn(move || {
                    (0..EMAILS)
                        .filter(|i| db.accounts.insert(t * 1000 + i, account(&format!("{i}@x"), "Paris")).is_ok())
                        .count() as u32
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().sum::<u32>(), EMAILS, "each email is won once: {wins:?}");
    assert_eq!(db.accounts.len(), EMAILS as usize);
    assert_eq!(db.accounts.by_email.len(), EMAILS as usize);
    for i in 0..EMAILS {
        let (key, a) = db.accounts.by_email.get(&format!("{i}@x")).unwrap();
        assert_eq!(key % 1000, i);
        assert_eq!(db.accounts.get(&key), Some(a));
    }
}

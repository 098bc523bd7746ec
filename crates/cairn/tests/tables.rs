//! Point 1: typed hash and ordered tables, every read and write method, and what survives a reopen.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
struct Username(String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Account {
    email: String,
    tags: Vec<String>,
    balance: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Event {
    Opened(Username),
    Paid { from: Username, amount: u32 },
}

cairn::schema! {
    /// A schema with both table kinds.
    Shop {
        accounts: <Username, Account>,
        names: <String, u32>,
        events: ordered<u64, Event>,
    }
}

fn account(n: i64) -> Account {
    Account { email: format!("{n}@example.com"), tags: vec!["a".into(); n as usize % 3], balance: n }
}

#[test]
fn hash_table_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Shop::open(dir.path()).unwrap();
    let ada = Username("ada".into());
    assert!(db.accounts.is_empty());
    assert_eq!(db.accounts.get(&ada), None);
    db.accounts.insert(ada.clone(), account(1)).unwrap();
    assert_eq!(db.accounts.get(&ada), Some(account(1)));
    assert_eq!(db.accounts.get_with(&ada, |a| a.email.len()), Some(13));
    assert!(db.accounts.contains_key(&ada));
    assert_eq!(db.accounts.len(), 1);

    db.accounts.insert(ada.clone(), account(2)).unwrap();
    assert_eq!(db.accounts.len(), 1, "insert replaces");
    assert_eq!(
        db.accounts
            .update(&ada, |a| {
                a.balance += 40;
                a.balance
            })
            .unwrap(),
        Some(42)
    );
    assert_eq!(db.accounts.get(&ada).unwrap().balance, 42);
    assert_eq!(db.accounts.update(&Username("nobody".into()), |a| a.balance).unwrap(), None);

    assert_eq!(db.accounts.remove(&ada).unwrap().map(|a| a.balance), Some(42));
    assert_eq!(db.accounts.remove(&ada).unwrap(), None);
    assert!(!db.accounts.contains_key(&ada));

    // Borrowed lookups, as with std maps.
    db.names.insert("x".to_string(), 7).unwrap();
    assert_eq!(db.names.get("x"), Some(7));
    assert!(db.names.contains_key("x"));
    assert_eq!(db.names.name(), "names");
}

#[test]
fn iteration_sees_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = Shop::open(dir.path()).unwrap();
    db.transaction(|tx| {
        for i in 0..100 {
            tx.accounts.insert(Username(format!("u{i}")), account(i))?;
        }
        Ok::<_, cairn::Error>(())
    })
    .unwrap();
    let iter = db.accounts.iter();
    db.accounts.insert(Username("late".into()), account(1000)).unwrap();
    let mut seen: Vec<i64> = iter.map(|(_, a)| a.balance).collect();
    seen.sort();
    assert_eq!(seen, (0..100).collect::<Vec<_>>(), "the iterator does not see a later write");
    assert_eq!(db.accounts.iter().len(), 101);
    let total: i64 = db.accounts.read(|t| t.iter().map(|(_, a)| a.balance).sum());
    assert_eq!(total, (0..100).sum::<i64>() + 1000);
}

#[test]
fn ordered_table_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let db = Shop::open(dir.path()).unwrap();
    for i in (0..50u64).rev() {
        db.events.insert(i * 2, Event::Paid { from: Username("a".into()), amount: i as u32 }).unwrap();
    }
    let keys: Vec<u64> = db.events.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, (0..50).map(|i| i * 2).collect::<Vec<_>>());
    let keys: Vec<u64> = db.events.range(10..=20).map(|(k, _)| k).collect();
    assert_eq!(keys, vec![10, 12, 14, 16, 18, 20]);
    let keys: Vec<u64> = db.events.range(95..).map(|(k, _)| k).collect();
    assert_eq!(keys, vec![96, 98]);
    assert_eq!(db.events.first().map(|(k, _)| k), Some(0));
    assert_eq!(db.events.last().map(|(k, _)| k), Some(98));
    let back: Vec<u64> = db.events.read(|t| t.range(..6).rev().map(|(k, _)| *k).collect());
    assert_eq!(back, vec![4, 2, 0]);
    assert_eq!(db.events.read(|t| t.get(&4).cloned()), Some(Event::Paid { from: Username("a".into()), amount: 2 }));
}

#[test]
fn everything_survives_reopen_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let db = Shop::open(dir.path()).unwrap();
        for i in 0..200 {
            db.accounts.insert(Username(format!("u{i}")), account(i)).unwrap();
            db.events.insert(i as u64, Event::Opened(Username(format!("u{i}")))).unwrap();
        }
        for i in 0..200 {
            if i % 3 == 0 {
                db.accounts.remove(&Username(format!("u{i}"))).unwrap();
            }
        }
        db.compact().unwrap();
        db.accounts.update(&Username("u1".into()), |a| a.balance = -1).unwrap();
        db.names.insert("after-compaction".into(), 1).unwrap();
        let mut all: Vec<(Username, Account)> = db.accounts.iter().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    };
    let db = Shop::open(dir.path()).unwrap();
    let mut all: Vec<(Username, Account)> = db.accounts.iter().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(all, expected);
    assert_eq!(db.accounts.get(&Username("u1".into())).unwrap().balance, -1);
    assert_eq!(db.events.len(), 200);
    assert_eq!(db.names.get("after-compaction"), Some(1));
}

#[test]
fn the_directory_holds_a_snapshot_and_a_fresh_segment_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Shop::open(dir.path()).unwrap();
    for i in 0..10 {
        db.names.insert(format!("n{i}"), i).unwrap();
    }
    db.compact().unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    // Sequence numbers: 1 created the tables, 2..=11 are the inserts.
    assert_eq!(names, vec!["00000000000000000011.snap", "00000000000000000012.log", "LOCK"]);
    db.names.insert("more".into(), 1).unwrap();
    db.compact().unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, vec!["00000000000000000012.snap", "00000000000000000013.log", "LOCK"]);
}

/// `delete` and `delete_many` remove like `remove` without returning values: counts exclude absent keys and keys
/// listed twice, keys written earlier in the same transaction are removed too, and the result survives a reopen.
#[test]
fn delete_and_delete_many() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..300).map(|i| format!("n{i}")).collect();
    {
        let db = Shop::open(dir.path()).unwrap();
        db.transaction(|tx| {
            for (i, n) in names.iter().enumerate() {
                tx.names.insert(n.clone(), i as u32)?;
            }
            Ok::<_, cairn::Error>(())
        })
        .unwrap();
        assert!(db.names.delete(&names[0]).unwrap());
        assert!(!db.names.delete(&names[0]).unwrap(), "an absent key is not counted");
        let removed = db
            .transaction(|tx| {
                tx.names.insert("fresh".to_string(), 7)?;
                // Every odd name (two of them twice), one absent key, and the key this transaction wrote.
                let mut doomed: Vec<String> = names.iter().skip(1).step_by(2).cloned().collect();
                doomed.extend([names[1].clone(), names[299].clone(), "absent".into(), "fresh".into()]);
                let n = tx.names.delete_many(&doomed)?;
                assert_eq!(tx.names.get(&"fresh".to_string()), None, "the transaction sees its own removals");
                Ok::<_, cairn::Error>(n)
            })
            .unwrap();
        assert_eq!(removed, 150 + 1, "150 odd names and the fresh key; duplicates and the absent key count 0");
    }
    let db = Shop::open(dir.path()).unwrap();
    assert_eq!(db.names.len(), 149);
    for (i, n) in names.iter().enumerate() {
        assert_eq!(db.names.get(n), (i % 2 == 0 && i != 0).then_some(i as u32), "{n}");
    }
    assert_eq!(db.names.get("fresh"), None);
}

//! The change feed as a model: random transactions (with removals, keys written twice, aborts) and reopens, with
//! compaction off and small segments. Whole-database and table subscriptions from sequence number 0 must deliver
//! exactly the committed transactions, each with exactly its last write per key, and rebuild exactly the tables. A
//! subscription opened midway and read a little after every step must deliver the same, across the switch from the
//! log to the live ring.

use std::collections::BTreeMap;
use std::path::Path;

use cairn::{Commit, Durability, Subscription};
use proptest::prelude::*;

cairn::schema! {
    /// One table of each kind.
    FeedModel {
        hashed: <u8, u16>,
        ordered: ordered<u8, String>,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Hashed(u8, Option<u16>),
    Ordered(u8, Option<String>),
}

#[derive(Debug, Clone)]
enum Step {
    /// Operations, and whether the transaction commits (or its closure returns `Err`).
    Txn(Vec<Op>, bool),
    Reopen,
    /// Starts following from 0 (if not following already).
    Follow,
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0u8..8;
    let op = prop_oneof![
        (key.clone(), proptest::option::of(any::<u16>())).prop_map(|(k, v)| Op::Hashed(k, v)),
        (key, proptest::option::of("[a-z]{0,24}")).prop_map(|(k, v)| Op::Ordered(k, v)),
    ];
    prop_oneof![
        10 => (proptest::collection::vec(op, 1..6), proptest::bool::weighted(0.8)).prop_map(|(ops, c)| Step::Txn(ops, c)),
        1 => Just(Step::Reopen),
        1 => Just(Step::Follow),
    ]
}

#[derive(Debug)]
struct Abort;

impl From<cairn::Error> for Abort {
    fn from(e: cairn::Error) -> Self {
        panic!("unexpected database error: {e}")
    }
}

type Tables = (BTreeMap<u8, u16>, BTreeMap<u8, String>);
type HashedChanges = Vec<(u8, Option<u16>)>;
type OrderedChanges = Vec<(u8, Option<String>)>;
/// What the feed must say of one committed transaction.
type Expected = (u64, HashedChanges, OrderedChanges);

fn open(dir: &Path) -> FeedModel {
    FeedModel::builder().durability(Durability::None).segment_size(4096).compact_after(None).open(dir).unwrap()
}

/// The transaction's effect on `tables` and its changes: the last write per key (first-write order for the hash
/// table, key order for the ordered one); a removal writes only if the key is there as the transaction sees it.
fn simulate(tables: &mut Tables, ops: &[Op]) -> (HashedChanges, OrderedChanges) {
    let mut hashed: HashedChanges = Vec::new();
    let mut ordered: BTreeMap<u8, Option<String>> = BTreeMap::new();
    let mut set = |k: u8, v: Option<u16>| match hashed.iter_mut().find(|(key, _)| *key == k) {
        Some(slot) => slot.1 = v,
        None => hashed.push((k, v)),
    };
    for op in ops {
        match op.clone() {
            Op::Hashed(k, Some(v)) => {
                tables.0.insert(k, v);
                set(k, Some(v));
            }
            Op::Hashed(k, None) => {
                if tables.0.remove(&k).is_some() {
                    set(k, None);
                }
            }
            Op::Ordered(k, Some(v)) => {
                tables.1.insert(k, v.clone());
                ordered.insert(k, Some(v));
            }
            Op::Ordered(k, None) => {
                if tables.1.remove(&k).is_some() {
                    ordered.insert(k, None);
                }
            }
        }
    }
    (hashed, ordered.into_iter().collect())
}

fn said(db: &FeedModel, c: &Commit) -> Expected {
    let hashed = c.changes(&db.hashed).iter().map(|c| (*c.key(), c.value().copied())).collect();
    let ordered = c.changes(&db.ordered).iter().map(|c| (*c.key(), c.value().cloned())).collect();
    (c.seq(), hashed, ordered)
}

/// Everything the subscription has ready; it must then be at the last commit.
fn drain(db: &FeedModel, sub: &mut Subscription<Commit>, got: &mut Vec<Expected>) -> Result<(), TestCaseError> {
    while let Some(c) = sub.try_next().map_err(|e| TestCaseError::fail(e.to_string()))? {
        let names: Vec<&str> = c.tables();
        let (seq, hashed, ordered) = said(db, &c);
        let touched: Vec<&str> = [("hashed", !hashed.is_empty()), ("ordered", !ordered.is_empty())]
            .into_iter()
            .filter_map(|(name, t)| t.then_some(name))
            .collect();
        prop_assert_eq!(names, touched);
        got.push((seq, hashed, ordered));
    }
    prop_assert_eq!(sub.resume_from(), db.db().last_seq());
    Ok(())
}

fn rebuild(commits: &[Expected]) -> Tables {
    let mut tables = Tables::default();
    for (_, hashed, ordered) in commits {
        for (k, v) in hashed {
            match v {
                Some(v) => tables.0.insert(*k, *v),
                None => tables.0.remove(k),
            };
        }
        for (k, v) in ordered {
            match v {
                Some(v) => tables.1.insert(*k, v.clone()),
                None => tables.1.remove(k),
            };
        }
    }
    tables
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_subscriber_from_zero_rebuilds_exactly_the_tables(steps in proptest::collection::vec(step(), 1..50)) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        let mut model = Tables::default();
        let mut expected: Vec<Expected> = Vec::new();
        // A subscription from 0 opened midway, read one item after every step.
        let mut follower: Option<(Subscription<Commit>, Vec<Expected>)> = None;
        for step in steps {
            match step {
                Step::Txn(ops, commit) => {
                    let before = db.db().last_seq();
                    let mut after = model.clone();
                    let (hashed, ordered) = simulate(&mut after, &ops);
                    let result = db.transaction(|tx| {
                        for op in &ops {
                            match op.clone() {
                                Op::Hashed(k, Some(v)) => tx.hashed.insert(k, v)?,
                                Op::Hashed(k, None) => drop(tx.hashed.remove(&k)?),
                                Op::Ordered(k, Some(v)) => tx.ordered.insert(k, v)?,
                                Op::Ordered(k, None) => drop(tx.ordered.remove(&k)?),
                            }
                        }
                        if commit { Ok(()) } else { Err(Abort) }
                    });
                    prop_assert_eq!(result.is_ok(), commit);
                    if commit && !(hashed.is_empty() && ordered.is_empty()) {
                        model = after;
                        expected.push((before + 1, hashed, ordered));
                        prop_assert_eq!(db.db().last_seq(), before + 1);
                    } else {
                        prop_assert_eq!(db.db().last_seq(), before, "an aborted or empty transaction is not logged");
                    }
                }
                Step::Reopen => {
                    if let Some((mut sub, mut got)) = follower.take() {
                        drain(&db, &mut sub, &mut got)?;
                        prop_assert_eq!(&got, &expected);
                    }
                    drop(db);
                    db = open(dir.path());
                }
                Step::Follow => {
                    if follower.is_none() {
                        follower = Some((db.db().subscribe_from(0), Vec::new()));
                    }
                }
            }
            if let Some((sub, got)) = &mut follower {
                if let Some(c) = sub.try_next().map_err(|e| TestCaseError::fail(e.to_string()))? {
                    got.push(said(&db, &c));
                }
            }
        }
        if let Some((mut sub, mut got)) = follower.take() {
            drain(&db, &mut sub, &mut got)?;
            prop_assert_eq!(&got, &expected);
        }

        let mut got = Vec::new();
        drain(&db, &mut db.db().subscribe_from(0), &mut got)?;
        prop_assert_eq!(&got, &expected);
        let rebuilt = rebuild(&got);
        prop_assert_eq!(&rebuilt, &model);
        prop_assert_eq!(db.hashed.iter().collect::<BTreeMap<_, _>>(), rebuilt.0);
        prop_assert_eq!(db.ordered.iter().collect::<BTreeMap<_, _>>(), rebuilt.1);

        // A table's own subscription: the transactions that wrote it, with the same changes.
        let mut table = db.ordered.subscribe_from(0);
        let mut events = Vec::new();
        while let Some(e) = table.try_next().map_err(|e| TestCaseError::fail(e.to_string()))? {
            events.push((e.seq(), e.changes().iter().map(|c| (*c.key(), c.value().cloned())).collect::<Vec<_>>()));
        }
        let wanted: Vec<_> = expected.iter().filter(|e| !e.2.is_empty()).map(|e| (e.0, e.2.clone())).collect();
        prop_assert_eq!(events, wanted);
    }
}

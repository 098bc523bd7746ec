//! The index model test: random writes (some refused by the unique index), transactions that commit or abort,
//! compactions and reopens, applied to Cairn and to a `BTreeMap`; after every step both indexes must agree exactly
//! with the table, and the table with the model.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

/// A value with a unique index on `a` and a non-unique one on `b`; small domains make collisions common. Each table
/// has one hash and one B-tree (`ordered`) index.
type Pair = (u8, u8);

cairn::schema! {
    Indexed {
        hashed: <u8, Pair> {
            by_a: unique u8 = |v: &Pair| v.0,
            by_b: ordered u8 = |v: &Pair| v.1,
        },
        ordered: ordered<u8, Pair> {
            by_a: unique ordered u8 = |v: &Pair| v.0,
            by_b: u8 = |v: &Pair| v.1,
        },
    }
}

#[derive(Debug, Clone)]
enum Step {
    Put(u8, Pair),
    Remove(u8),
    Txn(Vec<(u8, Option<Pair>)>, bool),
    Compact,
    Reopen,
}

const KEYS: u8 = 24;
const AS: u8 = 32;
const BS: u8 = 4;

fn step() -> impl Strategy<Value = Step> {
    let key = 0..KEYS;
    let pair = (0..AS, 0..BS);
    prop_oneof![
        6 => (key.clone(), pair.clone()).prop_map(|(k, v)| Step::Put(k, v)),
        3 => key.clone().prop_map(Step::Remove),
        3 => (proptest::collection::vec((key, proptest::option::of(pair)), 1..8), any::<bool>())
            .prop_map(|(w, commit)| Step::Txn(w, commit)),
        1 => Just(Step::Compact),
        1 => Just(Step::Reopen),
    ]
}

fn open(dir: &std::path::Path) -> Indexed {
    Indexed::builder()
        .durability(cairn::Durability::None)
        .segment_size(4096)
        .compact_after(Some(16 << 10))
        .open(dir)
        .unwrap()
}

/// Applies one write to the model as the unique index allows it; returns whether it was allowed.
fn model_write(model: &mut BTreeMap<u8, Pair>, key: u8, value: Option<Pair>) -> bool {
    match value {
        Some(v) => {
            if model.iter().any(|(k, w)| *k != key && w.0 == v.0) {
                return false;
            }
            model.insert(key, v);
        }
        None => {
            model.remove(&key);
        }
    }
    true
}

macro_rules! check_table {
    ($db:expr, $table:ident, $model:expr) => {{
        let mut records: Vec<(u8, Pair)> = $db.$table.iter().collect();
        records.sort();
        prop_assert_eq!(&records, &$model.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
        for a in 0..AS {
            let expected = $model.iter().find(|(_, v)| v.0 == a).map(|(k, v)| (*k, *v));
            prop_assert_eq!($db.$table.by_a.get(&a), expected);
        }
        prop_assert_eq!($db.$table.by_a.len(), $model.len());
        for b in 0..BS {
            let got: BTreeSet<u8> = $db.$table.by_b.get(&b).map(|(k, _)| k).collect();
            let expected: BTreeSet<u8> = $model.iter().filter(|(_, v)| v.1 == b).map(|(k, _)| *k).collect();
            prop_assert_eq!(got, expected);
        }
        let ranged: Vec<u8> = $db.$table.by_a.range(..).map(|(_, v)| v.0).collect();
        let mut sorted: Vec<u8> = $model.values().map(|v| v.0).collect();
        sorted.sort();
        prop_assert_eq!(ranged, sorted);
    }};
}

fn check(db: &Indexed, model: &BTreeMap<u8, Pair>) -> Result<(), TestCaseError> {
    check_table!(db, hashed, model);
    check_table!(db, ordered, model);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn indexes_always_agree_with_their_tables(steps in proptest::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        let mut model: BTreeMap<u8, Pair> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Put(k, v) => {
                    let allowed = model_write(&mut model, k, Some(v));
                    prop_assert_eq!(db.hashed.insert(k, v).is_ok(), allowed);
                    prop_assert_eq!(db.ordered.insert(k, v).is_ok(), allowed);
                }
                Step::Remove(k) => {
                    model_write(&mut model, k, None);
                    db.hashed.remove(&k).unwrap();
                    db.ordered.remove(&k).unwrap();
                }
                Step::Txn(writes, commit) => {
                    let mut next = model.clone();
                    let r = db.transaction(|tx| {
                        for &(k, v) in &writes {
                            let allowed = model_write(&mut next, k, v);
                            let (h, o) = match v {
                                Some(v) => (tx.hashed.insert(k, v).is_ok(), tx.ordered.insert(k, v).is_ok()),
                                None => (tx.hashed.remove(&k).is_ok(), tx.ordered.remove(&k).is_ok()),
                            };
                            // A refused write leaves the transaction going on.
                            assert_eq!((h, o), (allowed, allowed), "write {k} {v:?}");
                        }
                        // Inside the transaction, the indexes see its writes.
                        for (k, v) in &next {
                            assert_eq!(tx.hashed.by_a.get(&v.0), Some((*k, *v)));
                            assert!(tx.ordered.by_b.get(&v.1).contains(&(*k, *v)));
                        }
                        if commit { Ok(()) } else { Err(cairn::Error::WriteInsideRead) }
                    });
                    prop_assert_eq!(r.is_ok(), commit);
                    if commit {
                        model = next;
                    }
                }
                Step::Compact => db.compact().unwrap(),
                Step::Reopen => {
                    drop(db);
                    db = open(dir.path());
                }
            }
            check(&db, &model)?;
        }
    }
}

//! The model test: random sequences of inserts, removes, updates, transactions that commit or abort, compactions and
//! reopens, applied to Cairn and to a `BTreeMap`, compared after every step.

use std::collections::BTreeMap;

use proptest::prelude::*;

cairn::schema! {
    /// An ordered table (compared in order) and a hash table (compared as a set) holding the same data.
    Model {
        ordered: ordered<u16, Vec<u8>>,
        hashed: <u16, Vec<u8>>,
    }
}

#[derive(Debug, Clone)]
enum Step {
    Insert(u16, Vec<u8>),
    Remove(u16),
    Update(u16, u8),
    Txn(Vec<(u16, Option<Vec<u8>>)>, bool),
    Compact,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0u16..48;
    let value = proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        6 => (key.clone(), value.clone()).prop_map(|(k, v)| Step::Insert(k, v)),
        3 => key.clone().prop_map(Step::Remove),
        2 => (key.clone(), any::<u8>()).prop_map(|(k, b)| Step::Update(k, b)),
        3 => (proptest::collection::vec((key, proptest::option::of(value)), 1..8), any::<bool>()).prop_map(|(w, c)| Step::Txn(w, c)),
        1 => Just(Step::Compact),
        1 => Just(Step::Reopen),
    ]
}

fn open(dir: &std::path::Path) -> Model {
    Model::builder()
        .durability(cairn::Durability::None)
        .segment_size(4096)
        .compact_after(Some(16 << 10))
        .open(dir)
        .unwrap()
}

fn check(db: &Model, model: &BTreeMap<u16, Vec<u8>>) -> Result<(), TestCaseError> {
    let ordered: Vec<(u16, Vec<u8>)> = db.ordered.iter().collect();
    prop_assert_eq!(&ordered, &model.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>());
    let mut hashed: Vec<(u16, Vec<u8>)> = db.hashed.iter().collect();
    hashed.sort();
    prop_assert_eq!(hashed, ordered);
    for k in 0..48 {
        prop_assert_eq!(db.hashed.get(&k), model.get(&k).cloned());
    }
    prop_assert_eq!(db.ordered.len(), model.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cairn_behaves_like_a_btreemap(steps in proptest::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        let mut model: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Insert(k, v) => {
                    db.transaction(|tx| {
                        tx.ordered.insert(k, v.clone())?;
                        tx.hashed.insert(k, v.clone())
                    }).unwrap();
                    model.insert(k, v);
                }
                Step::Remove(k) => {
                    // `remove` returns the value, `delete` only whether there was one.
                    let a = db.ordered.remove(&k).unwrap();
                    let b = db.hashed.delete(&k).unwrap();
                    let m = model.remove(&k);
                    prop_assert_eq!(&a, &m);
                    prop_assert_eq!(b, m.is_some());
                }
                Step::Update(k, b) => {
                    let r = db.ordered.update(&k, |v| v.push(b)).unwrap();
                    db.hashed.update(&k, |v| v.push(b)).unwrap();
                    prop_assert_eq!(r.is_some(), model.contains_key(&k));
                    if let Some(v) = model.get_mut(&k) {
                        v.push(b);
                    }
                }
                Step::Txn(writes, commit) => {
                    let mut next = model.clone();
                    let result = db.transaction(|tx| {
                        for (k, v) in &writes {
                            match v {
                                Some(v) => {
                                    tx.ordered.insert(*k, v.clone())?;
                                    tx.hashed.insert(*k, v.clone())?;
                                    next.insert(*k, v.clone());
                                }
                                None => {
                                    let present = next.remove(k);
                                    assert_eq!(tx.ordered.delete(k)?, present.is_some());
                                    assert_eq!(tx.hashed.remove(k)?, present);
                                }
                            }
                            // Reads inside see the transaction's own writes.
                            assert_eq!(tx.ordered.get(k), next.get(k).cloned());
                        }
                        if commit { Ok(()) } else { Err(cairn::Error::WriteInsideRead) }
                    });
                    prop_assert_eq!(result.is_ok(), commit);
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
        drop(db);
        let db = open(dir.path());
        check(&db, &model)?;
    }
}

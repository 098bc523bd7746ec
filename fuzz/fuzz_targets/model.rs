//! The model fuzzer: operations on a Cairn database and on a `BTreeMap`, with injected I/O failures and reopens,
//! compared after every step. A failed operation must leave memory as it was; after a reopen the database holds
//! exactly the acknowledged commits.
#![no_main]

use std::collections::BTreeMap;
use std::io::ErrorKind;

use arbitrary::Arbitrary;
use cairn_testkit::{Call, FaultyStorage};

cairn::schema! {
    /// One ordered table, compared with the model in order.
    Model {
        items: ordered<u8, Vec<u8>>,
    }
}

#[derive(Debug, Arbitrary)]
enum Step {
    Insert(u8, Vec<u8>),
    Remove(u8),
    Txn(Vec<(u8, Option<Vec<u8>>)>, bool),
    Compact,
    Reopen,
    Fail(Call, u8),
}

/// Why a transaction closure returns `Err`: the application's own abort, or a database error.
#[derive(Debug)]
enum TxnError {
    Abort,
    Db(cairn::Error),
}

impl From<cairn::Error> for TxnError {
    fn from(e: cairn::Error) -> Self {
        TxnError::Db(e)
    }
}

fn open(dir: &std::path::Path, storage: &FaultyStorage) -> Option<Model> {
    Model::builder()
        .storage(storage.shared())
        .durability(cairn::Durability::None)
        .segment_size(4096)
        .compact_after(None)
        .open(dir)
        .ok()
}

fn contents(db: &Model) -> BTreeMap<u8, Vec<u8>> {
    db.items.iter().collect()
}

libfuzzer_sys::fuzz_target!(|steps: Vec<Step>| {
    let dir = tempfile::tempdir().expect("temporary directory");
    let storage = FaultyStorage::new();
    let mut model: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let mut db = open(dir.path(), &storage).expect("a fresh database opens");
    for step in steps.into_iter().take(64) {
        let result = match step {
            Step::Insert(k, v) => db.items.insert(k, v.clone()).map(|()| {
                model.insert(k, v);
            }),
            Step::Remove(k) => db.items.remove(&k).map(|old| assert_eq!(old, model.remove(&k))),
            Step::Txn(writes, commit) => {
                let mut next = model.clone();
                let r = db.transaction(|tx| {
                    for (k, v) in &writes {
                        match v {
                            Some(v) => {
                                tx.items.insert(*k, v.clone())?;
                                next.insert(*k, v.clone());
                            }
                            None => {
                                tx.items.remove(k)?;
                                next.remove(k);
                            }
                        }
                    }
                    if commit {
                        Ok(())
                    } else {
                        Err(TxnError::Abort)
                    }
                });
                match r {
                    Ok(()) => {
                        model = next;
                        Ok(())
                    }
                    Err(TxnError::Abort) => Ok(()),
                    Err(TxnError::Db(e)) => Err(e),
                }
            }
            Step::Compact => db.compact(),
            Step::Reopen => {
                drop(db);
                storage.heal();
                db = open(dir.path(), &storage).expect("reopen after healing");
                Ok(())
            }
            Step::Fail(call, n) => {
                storage.fail(call, u64::from(n % 8) + 1, ErrorKind::Other, false);
                Ok(())
            }
        };
        // A failed operation changed nothing; only I/O errors are expected.
        if let Err(e) = result {
            assert!(e.is_environmental(), "unexpected error: {e}");
        }
        assert_eq!(contents(&db), model, "memory differs from the acknowledged commits");
    }
    drop(db);
    storage.heal();
    let db = open(dir.path(), &storage).expect("final reopen");
    assert_eq!(contents(&db), model, "a reopen differs from the acknowledged commits");
});

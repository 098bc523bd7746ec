//! An explicit migration: copy a `SchemaV1` database into a `SchemaV2` one through `From` conversions.
//!
//! Compatible changes need no migration (docs/schema-evolution.md, `examples/evolve.rs`); this is the path for a
//! change that is not compatible, here splitting a `name` field in two, widening `balance` and changing the key type.
//! Opening the old database with the new schema is refused, naming the table, the field and both versions; the
//! data moves by copying it, converted with `From`, into a new database in one transaction.
//! Run: `cargo run --example migrate`.

use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) struct Account {
        pub(crate) name: String,
        pub(crate) balance: i32,
    }

    cairn::schema! {
        /// The old schema.
        pub(crate) SchemaV1 {
            /// Accounts by number.
            accounts: <u32, Account>,
        }
    }
}

mod v2 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Account {
        pub(crate) first_name: String,
        pub(crate) last_name: String,
        pub(crate) balance: i64,
    }

    cairn::schema! {
        /// The new schema.
        pub(crate) SchemaV2 {
            /// Accounts by number, in order.
            accounts: ordered<u64, Account>,
        }
    }
}

impl From<v1::Account> for v2::Account {
    fn from(a: v1::Account) -> Self {
        let (first, last) = a.name.split_once(' ').unwrap_or((&a.name, ""));
        v2::Account { first_name: first.to_string(), last_name: last.to_string(), balance: a.balance.into() }
    }
}

fn main() -> Result<(), cairn::Error> {
    let dir = std::env::temp_dir().join(format!("cairn-migrate-{}", std::process::id()));
    let old = v1::SchemaV1::open(dir.join("v1"))?;
    old.transaction(|tx| {
        tx.accounts.insert(1, v1::Account { name: "Ada Lovelace".into(), balance: 10 })?;
        tx.accounts.insert(2, v1::Account { name: "Alan Turing".into(), balance: 20 })?;
        Ok::<_, cairn::Error>(())
    })?;

    drop(old);

    // The new types cannot read the old records in place: the open says why and changes nothing.
    match v2::SchemaV2::open(dir.join("v1")) {
        Err(e @ cairn::Error::IncompatibleSchema { .. }) => println!("refused, as it should be:\n  {e}"),
        other => panic!("expected the new schema to be refused, got {other:?}"),
    }

    // The whole copy is one transaction: the new database has all of it or none of it.
    let old = v1::SchemaV1::open(dir.join("v1"))?;
    let new = v2::SchemaV2::open(dir.join("v2"))?;
    let total = old.accounts.len();
    new.transaction(|tx| {
        for (done, (id, account)) in old.accounts.iter().enumerate() {
            tx.accounts.insert(id.into(), account.into())?;
            if (done + 1) % 1000 == 0 || done + 1 == total {
                println!("copied {} of {total}", done + 1);
            }
        }
        Ok::<_, cairn::Error>(())
    })?;
    drop(old);

    for (id, a) in new.accounts.iter() {
        println!("{id}: {} {} has {}", a.first_name, a.last_name, a.balance);
    }
    assert_eq!(new.accounts.len(), 2);
    println!("migrated; it is now safe to delete {}", dir.join("v1").display());
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

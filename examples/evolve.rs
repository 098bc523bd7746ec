//! Schema evolution without migrations: two versions of a program's types share one database, in both directions.
//!
//! Version 1 stores accounts with a name and a plan. Version 2 adds an `email` field (with a default), a new plan
//! variant and a table. Each opens what the other wrote; the stored schema says which version wrote what.
//! The rules are in docs/schema-evolution.md. Run: `cargo run --example evolve`.

use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) enum Plan {
        Free,
        Paid,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Account {
        pub(crate) name: String,
        pub(crate) plan: Plan,
    }

    cairn::schema! {
        /// The first version of the program.
        pub(crate) Shop {
            /// Accounts by number.
            accounts: <u32, Account>,
        }
    }
}

mod v2 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) enum Plan {
        Free,
        Paid,
        /// New in version 2: version 1 cannot read a record that holds it, and says so.
        Team {
            seats: u32,
        },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Account {
        pub(crate) name: String,
        pub(crate) plan: Plan,
        /// New in version 2: records of version 1 read with the default.
        #[serde(default)]
        pub(crate) email: String,
    }

    cairn::schema! {
        /// The second version: a field, a variant and a table more.
        pub(crate) Shop {
            /// Accounts by number.
            accounts: <u32, Account>,
            /// Orders by number (new).
            orders: ordered<u64, String>,
        }
    }
}

fn main() -> Result<(), cairn::Error> {
    let dir = std::env::temp_dir().join(format!("cairn-evolve-{}", std::process::id()));

    // Version 1 writes.
    let db = v1::Shop::open(&dir)?;
    db.accounts.insert(1, v1::Account { name: "Ada".into(), plan: v1::Plan::Paid })?;
    db.accounts.insert(2, v1::Account { name: "Alan".into(), plan: v1::Plan::Free })?;
    println!("v1 wrote 2 accounts as schema version {}", db.db().schema_version());
    drop(db);

    // Version 2 reads them (email takes its default) and writes its own.
    let db = v2::Shop::open(&dir)?;
    println!("v2 opened as schema version {}; account 1 = {:?}", db.db().schema_version(), db.accounts.get(&1));
    db.transaction(|tx| {
        tx.accounts.insert(3, v2::Account { name: "Grace".into(), plan: v2::Plan::Paid, email: "g@x".into() })?;
        tx.accounts
            .insert(4, v2::Account { name: "Edsger".into(), plan: v2::Plan::Team { seats: 5 }, email: "e@x".into() })?;
        tx.orders.insert(1, "a book".into())
    })?;
    drop(db);

    // Version 1 opens the database version 2 wrote: it reads account 3 (skipping `email`), reports account 4 (a
    // plan it does not know) instead of failing, and keeps the `orders` table it does not declare.
    let db = v1::Shop::open(&dir)?;
    println!("v1 again: account 3 = {:?}", db.accounts.get(&3));
    for u in db.db().unreadable() {
        println!("v1 cannot read a record of `{}` written by version {}: {}", u.table, u.schema_version, u.reason);
    }
    println!("v1 keeps tables it does not know: {:?}", db.db().unknown_tables());
    for (version, schema) in db.db().schemas() {
        let accounts = schema.tables.iter().find(|t| t.name == "accounts").expect("both versions have accounts");
        println!("stored schema version {version}, accounts value:\n{}", accounts.value);
    }
    assert_eq!(db.accounts.len(), 3);
    db.compact()?; // copies version 2's records as they are
    drop(db);

    // Nothing version 1 could not read was lost.
    let db = v2::Shop::open(&dir)?;
    assert_eq!(db.accounts.get(&4).map(|a| a.plan), Some(v2::Plan::Team { seats: 5 }));
    assert_eq!(db.orders.len(), 1);
    println!("v2 again: all {} accounts, account 4 = {:?}", db.accounts.len(), db.accounts.get(&4));
    drop(db);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

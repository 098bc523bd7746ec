//! The quick start: a schema of accounts and files, opened on a directory.
//!
//! Run it twice: `cargo run --release --example quickstart`. The first run creates `quickstart.cairn/` and stores a
//! few records; the second run shows what the first stored, then adds more.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Username(String);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Account {
    display_name: String,
    files: Vec<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileMeta {
    owner: Username,
    name: String,
    size: u64,
}

cairn::schema! {
    /// The quick start's schema: one table per field.
    pub SchemaV1 {
        /// Accounts by user name.
        accounts: <Username, Account>,
        /// File metadata by id.
        files: <Uuid, FileMeta>,
    }
}

fn main() -> Result<(), cairn::Error> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "quickstart.cairn".into());
    let db = SchemaV1::open(&path)?;

    if db.accounts.is_empty() {
        println!("{path} is new: storing an account and its first file");
    } else {
        println!(
            "{path} holds {} accounts and {} files (last commit #{}):",
            db.accounts.len(),
            db.files.len(),
            db.db().last_seq()
        );
        db.read(|r| {
            for (name, account) in r.accounts.iter() {
                println!("  {} ({}):", account.display_name, name.0);
                for id in &account.files {
                    if let Some(f) = r.files.get(id) {
                        println!("    {} {} bytes", f.name, f.size);
                    }
                }
            }
        });
    }

    // One transaction over both tables: the account and its new file appear together or not at all.
    let name = Username("ada".into());
    let run = db.files.len() + 1;
    db.transaction(|tx| {
        let id = Uuid::new_v4();
        tx.files
            .insert(id, FileMeta { owner: name.clone(), name: format!("notes-{run}.txt"), size: 100 * run as u64 })?;
        match tx.accounts.update(&name, |a| a.files.push(id))? {
            Some(()) => {}
            None => {
                tx.accounts.insert(name.clone(), Account { display_name: "Ada Lovelace".into(), files: vec![id] })?
            }
        }
        Ok::<_, cairn::Error>(())
    })?;

    let account = db.accounts.get(&name).expect("just written");
    println!("stored: {} now has {} file(s); run again to see them", account.display_name, account.files.len());
    Ok(())
}

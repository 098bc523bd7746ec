//! The `cairn` binary run on databases a test program writes: it reads them by their stored schema alone.

use std::path::Path;
use std::process::{Command, Output};

use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) enum Plan {
        Free,
        Team { seats: u32 },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Account {
        pub(crate) name: String,
        pub(crate) plan: Plan,
        pub(crate) tags: Vec<String>,
        pub(crate) note: Option<String>,
    }

    cairn::schema! {
        pub(crate) Shop {
            accounts: <String, Account>,
            orders: ordered<u64, (u32, f64)>,
        }
    }
}

mod v2 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Account {
        pub(crate) name: String,
        pub(crate) plan: v1::Plan,
        pub(crate) tags: Vec<String>,
        pub(crate) note: Option<String>,
        #[serde(default)]
        pub(crate) email: String,
    }

    cairn::schema! {
        pub(crate) Shop {
            accounts: <String, Account>,
            orders: ordered<u64, (u32, f64)>,
        }
    }
}

fn cairn(args: &[&str], dir: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.arg(args[0]).arg(dir).args(&args[1..]);
    let child = {
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn()
    };
    child.expect("the cairn binary runs").wait_with_output().expect("the cairn binary runs")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "exit {:?}, stderr: {}", o.status.code(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Serializes writing the test databases with spawning the binary in other tests: a child between fork and exec
/// holds a copy of the parent's open files, `LOCK` among them, so a reopen right after a close could find the
/// database still locked (`Error::Locked`).
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A database written by v1 (a snapshot and a log), then by v2.
fn database(dir: &Path) {
    let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let db = v1::Shop::open(dir).unwrap();
    db.transaction(|tx| {
        tx.accounts.insert(
            "ada".into(),
            v1::Account { name: "Ada".into(), plan: v1::Plan::Free, tags: vec!["a".into()], note: None },
        )?;
        tx.accounts.insert(
            "bob".into(),
            v1::Account {
                name: "Bob".into(),
                plan: v1::Plan::Team { seats: 3 },
                tags: vec![],
                note: Some("hi".into()),
            },
        )?;
        tx.orders.insert(1, (7, 2.5))?;
        tx.orders.insert(2, (8, 0.5))
    })
    .unwrap();
    db.compact().unwrap();
    db.orders.remove(&2).unwrap();
    drop(db);
    let db = v2::Shop::open(dir).unwrap();
    db.accounts
        .insert(
            "cy".into(),
            v2::Account { name: "Cy".into(), plan: v1::Plan::Free, tags: vec![], note: None, email: "c@x".into() },
        )
        .unwrap();
}

#[test]
fn tables_info_and_schema_describe_the_database() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let tables = stdout(&cairn(&["tables"], dir.path()));
    assert!(tables.contains("accounts\thash\t3"), "{tables}");
    assert!(tables.contains("orders\tordered\t1"), "{tables}");
    let info = stdout(&cairn(&["info"], dir.path()));
    assert!(info.contains("schemas      1, 2"), "{info}");
    assert!(info.contains("snapshot     at seq"), "{info}");
    let schema = stdout(&cairn(&["schema"], dir.path()));
    assert!(schema.contains("schema version 2"), "{schema}");
    assert!(schema.contains("email: String"), "{schema}");
    let old = stdout(&cairn(&["schema", "--version", "1"], dir.path()));
    assert!(old.contains("enum Plan { Free, Team { seats: u32 } }"), "{old}");
    assert!(!old.contains("email"), "{old}");
}

#[test]
fn dump_decodes_every_record_by_the_version_that_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let out = stdout(&cairn(&["dump", "accounts"], dir.path()));
    // Records come in stored order (by encoded key); look them up by key.
    let mut lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    lines.sort_by_key(|l| l["key"].as_str().unwrap().to_string());
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        serde_json::json!({"table": "accounts", "key": "ada", "schema_version": 1,
            "value": {"name": "Ada", "plan": "Free", "tags": ["a"], "note": null}})
    );
    assert_eq!(lines[1]["value"]["plan"], serde_json::json!({"Team": {"seats": 3}}));
    assert_eq!(lines[2]["schema_version"], 2);
    assert_eq!(lines[2]["value"]["email"], "c@x");
    let all = stdout(&cairn(&["dump"], dir.path()));
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(all.contains(r#""key":1,"schema_version":1,"table":"orders","value":[7,2.5]"#), "{all}");
    let text = stdout(&cairn(&["dump", "orders", "--format", "text"], dir.path()));
    assert_eq!(text.trim(), "orders 1 => [7, 2.5]");
}

#[test]
fn get_finds_a_record_by_its_key_as_json_and_says_when_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let bob = stdout(&cairn(&["get", "accounts", "\"bob\""], dir.path()));
    let bob: serde_json::Value = serde_json::from_str(&bob).unwrap();
    assert_eq!(bob["note"], "hi");
    let missing = cairn(&["get", "orders", "2"], dir.path());
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no record with key 2"));
    let bad = cairn(&["get", "nope", "1"], dir.path());
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("its tables are: accounts, orders"));
    let unquoted = cairn(&["get", "accounts", "bob"], dir.path());
    assert_eq!(unquoted.status.code(), Some(2));
}

#[test]
fn a_directory_that_is_not_a_database_is_an_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = cairn(&["info"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no snapshot or log segment") && err.contains(&*dir.path().to_string_lossy()), "{err}");
}

#[test]
fn a_torn_tail_is_left_out_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let log = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&log).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let at = end.next_multiple_of(8);
    bytes.resize(bytes.len().max(at + 40), 0);
    bytes[at..at + 40].fill(0xAB); // half a frame header: an interrupted write
    std::fs::write(&log, &bytes).unwrap();
    let info = stdout(&cairn(&["info"], dir.path()));
    assert!(info.contains(&format!("at offset {at}")), "{info}");
    let tables = stdout(&cairn(&["tables"], dir.path()));
    assert!(tables.contains("accounts\thash\t3"), "{tables}");
}

#[test]
fn verify_says_ok_or_names_the_damage_with_exit_code_4() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let ok = stdout(&cairn(&["verify"], dir.path()));
    assert!(ok.starts_with("ok: 4 records"), "{ok}");
    // Flip a byte inside the snapshot's records: its block checksum no longer matches.
    let snap = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "snap"))
        .unwrap();
    let mut bytes = std::fs::read(&snap).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x10;
    std::fs::write(&snap, &bytes).unwrap();
    let o = cairn(&["verify"], dir.path());
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&*snap.to_string_lossy()) && err.contains("offset"), "{err}");
}

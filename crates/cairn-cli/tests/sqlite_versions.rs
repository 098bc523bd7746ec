//! `cairn export --sqlite` on a database whose records were written by several schema versions: they are exported in
//! the newest version's columns, by field name, as far as that is possible without the program's defaults.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Item {
        pub(crate) name: String,
        pub(crate) gone: u8,
    }

    cairn::schema! {
        pub(crate) Stock {
            items: <u32, Item>,
        }
    }
}

mod v2 {
    use super::*;

    /// v1's `Item` without `gone`, and with an optional `note` (a flat column) and `labels` (a JSON one).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Item {
        pub(crate) name: String,
        pub(crate) note: Option<String>,
        pub(crate) labels: Option<Vec<String>>,
    }

    cairn::schema! {
        pub(crate) Stock {
            items: <u32, Item>,
        }
    }
}

mod v3 {
    use super::*;

    /// v2's `Item` with a defaulted `count`: a default only the program knows.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Item {
        pub(crate) name: String,
        pub(crate) note: Option<String>,
        pub(crate) labels: Option<Vec<String>>,
        #[serde(default)]
        pub(crate) count: u32,
    }

    cairn::schema! {
        pub(crate) Stock {
            items: <u32, Item>,
        }
    }
}

/// Serializes opening test databases with spawning the binary: a child between fork and exec holds a copy of the
/// parent's open files, `LOCK` among them.
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = {
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        cmd.spawn().expect("the cairn binary runs")
    };
    child.wait_with_output().expect("the cairn binary runs")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Item 1 written by v1, item 2 by v2.
fn database(dir: &Path) {
    let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let db = v1::Stock::open(dir).unwrap();
    db.items.insert(1, v1::Item { name: "bolt".into(), gone: 9 }).unwrap();
    drop(db);
    let db = v2::Stock::open(dir).unwrap();
    db.items
        .insert(2, v2::Item { name: "nut".into(), note: Some("m4".into()), labels: Some(vec!["x".into()]) })
        .unwrap();
}

#[test]
fn older_records_export_by_field_name_with_absent_options_as_null() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let file = dir.path().join("out.db");
    let o = run(&["export", "--sqlite", s(&file), s(dir.path())]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let conn = rusqlite::Connection::open(&file).unwrap();
    let rows: Vec<(i64, String, Option<String>, String)> = conn
        .prepare("SELECT key, name, note, labels FROM items ORDER BY key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [(1, "bolt".into(), None, "null".into()), (2, "nut".into(), Some("m4".into()), r#"["x"]"#.into())]
    );
    let dropped: i64 =
        conn.query_row("SELECT count(*) FROM _cairn_columns WHERE column_name = 'gone'", [], |r| r.get(0)).unwrap();
    assert_eq!(dropped, 0, "a field the newest version dropped is left out");
    drop(conn);

    let copy = tempfile::tempdir().unwrap();
    drop({
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        v2::Stock::open(copy.path()).unwrap()
    });
    let o = run(&["import", "--sqlite", s(&file), s(copy.path())]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let db = v2::Stock::open(copy.path()).unwrap();
    assert_eq!(db.items.get(&1), Some(v2::Item { name: "bolt".into(), note: None, labels: None }));
    assert_eq!(db.items.get(&2).unwrap().labels, Some(vec!["x".into()]));
}

#[test]
fn an_older_record_lacking_a_field_without_a_known_default_stops_the_export_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    drop({
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        v3::Stock::open(dir.path()).unwrap()
    });
    let file = dir.path().join("out.db");
    let o = run(&["export", "--sqlite", s(&file), s(dir.path())]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("table `items`, key 1") && e.contains("schema version 1") && e.contains("field `count`"), "{e}");
    assert!(!file.exists(), "no partial export is left under the name asked for");
    assert!(!dir.path().join("out.db.partial").exists(), "nor beside it");
}

//! `cairn export --sqlite` and `cairn import --sqlite` run on a database a test program writes: the SQLite file read
//! with SQL directly, then imported into a fresh database of the same schema and compared record by record.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Status {
    Active,
    Banned,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    city: String,
    zip: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Person {
    name: String,
    age: u32,
    score: f64,
    active: bool,
    nick: Option<String>,
    status: Status,
    avatar: Vec<u8>,
    balance: i64,
    tags: Vec<String>,
    address: Address,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    celsius: f32,
    sensor: char,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Figure {
    Circle(f64),
    Rect { w: u32, h: u32 },
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Wide {
    small: i128,
    big: u128,
    id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
struct Version {
    major: u32,
    minor: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
}

cairn::schema! {
    Zoo {
        people: <String, Person>,
        readings: ordered<u64, Reading>,
        figures: <u32, Figure>,
        wide: <u64, Wide>,
        pairs: <(u32, String), Vec<u64>>,
        notes: auto<Note>,
        versions: <Version, String>,
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

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "exit {:?}, stderr: {}", o.status.code(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn failed(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "stdout: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn open(dir: &Path) -> Zoo {
    let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    Zoo::open(dir).unwrap()
}

fn person(name: &str, age: u32) -> Person {
    Person {
        name: name.into(),
        age,
        score: 0.5 + f64::from(age),
        active: age.is_multiple_of(2),
        nick: (age > 30).then(|| format!("{name}!")),
        status: if age > 60 { Status::Banned } else { Status::Active },
        avatar: vec![0, 255, age as u8],
        balance: -i64::from(age) * 1_000_000_007,
        tags: vec!["x".into(), name.to_lowercase()],
        address: Address { city: "Oslo".into(), zip: age * 10 },
    }
}

/// A database holding every kind of table and value the export maps.
fn database(dir: &Path) {
    let db = open(dir);
    db.transaction(|tx| {
        tx.people.insert("ada".into(), person("Ada", 36))?;
        tx.people.insert("bob".into(), person("Bob", 71))?;
        tx.people.insert("cy \"quoted\"".into(), person("Cy", 20))?;
        tx.readings.insert(1, Reading { celsius: -3.25, sensor: 'a' })?;
        tx.readings.insert(i64::MAX as u64, Reading { celsius: 0.0, sensor: 'ß' })?;
        tx.readings.insert(u64::MAX, Reading { celsius: 99.5, sensor: 'z' })?;
        tx.figures.insert(1, Figure::Circle(1.5))?;
        tx.figures.insert(2, Figure::Rect { w: 3, h: 4 })?;
        tx.figures.insert(3, Figure::Empty)?;
        tx.wide.insert(u64::MAX - 1, Wide { small: i128::MIN, big: u128::MAX, id: u64::MAX })?;
        tx.wide.insert(5, Wide { small: -5, big: 5, id: 5 })?;
        tx.pairs.insert((1, "one".into()), vec![1, u64::MAX])?;
        tx.pairs.insert((2, "two".into()), vec![])?;
        tx.versions.insert(Version { major: 1, minor: 2 }, "first".into())?;
        tx.versions.insert(Version { major: 1, minor: 3 }, "second".into())
    })
    .unwrap();
    db.notes.insert_new(Note { text: "first".into() }).unwrap();
    db.notes.insert_new(Note { text: "second".into() }).unwrap();
}

/// Every record of every table, by typed reads.
#[allow(clippy::type_complexity)]
fn contents(
    db: &Zoo,
) -> (
    BTreeMap<String, Person>,
    Vec<(u64, Reading)>,
    BTreeMap<u32, Figure>,
    BTreeMap<u64, Wide>,
    BTreeMap<(u32, String), Vec<u64>>,
    Vec<(u64, Note)>,
    BTreeMap<Version, String>,
) {
    (
        db.people.iter().collect(),
        db.readings.iter().collect(),
        db.figures.iter().collect(),
        db.wide.iter().collect(),
        db.pairs.iter().collect(),
        db.notes.iter().map(|(id, n)| (id.get(), n)).collect(),
        db.versions.iter().collect(),
    )
}

fn fresh(dir: &Path) {
    drop(open(dir));
}

#[test]
fn export_then_import_gives_back_every_record_of_every_table() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let file = dir.path().join("out.db");
    let out = ok(&run(&["export", "--sqlite", s(&file), s(dir.path())]));
    assert!(out.contains("exported 17 records of 7 tables"), "{out}");

    let conn = Connection::open(&file).unwrap();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        names,
        ["_cairn_columns", "_cairn_tables", "figures", "notes", "pairs", "people", "readings", "versions", "wide"]
    );
    let columns: Vec<(String, String)> = conn
        .prepare("SELECT name, type FROM pragma_table_info('people') ORDER BY cid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want = [
        ("key", "TEXT"),
        ("name", "TEXT"),
        ("age", "INTEGER"),
        ("score", "REAL"),
        ("active", "INTEGER"),
        ("nick", "TEXT"),
        ("status", "TEXT"),
        ("avatar", "BLOB"),
        ("balance", "INTEGER"),
        ("tags", "TEXT"),
        ("address", "TEXT"),
    ];
    assert_eq!(columns, want.map(|(a, b)| (a.to_string(), b.to_string())));
    let (age, status, nick, tags, address): (i64, String, Option<String>, String, String) = conn
        .query_row("SELECT age, status, nick, tags, address FROM people WHERE key = 'bob'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    assert_eq!((age, status.as_str(), nick.as_deref()), (71, "Banned", Some("Bob!")));
    assert_eq!(tags, r#"["x","bob"]"#);
    assert_eq!(address, r#"{"city":"Oslo","zip":710}"#);
    let young: i64 =
        conn.query_row("SELECT count(*) FROM people WHERE age < 40 AND nick IS NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(young, 1, "only Cy is under 40 with no nick");
    // u64 keys past i64::MAX are decimal text; the others stay integers.
    let keys: Vec<(String, String)> = conn
        .prepare("SELECT typeof(key), CAST(key AS TEXT) FROM readings ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(keys.contains(&("text".into(), u64::MAX.to_string())), "{keys:?}");
    assert!(keys.contains(&("integer".into(), i64::MAX.to_string())), "{keys:?}");
    let big: String =
        conn.query_row("SELECT big FROM wide WHERE id = ?1", [u64::MAX.to_string()], |r| r.get(0)).unwrap();
    assert_eq!(big, u128::MAX.to_string());
    // A key struct of flat fields is one column per field, together the primary key.
    let columns: Vec<(String, i64)> = conn
        .prepare("SELECT name, pk FROM pragma_table_info('versions') ORDER BY cid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(columns, [("major".into(), 1), ("minor".into(), 2), ("value".into(), 0)]);
    let second: String =
        conn.query_row("SELECT value FROM versions WHERE major = 1 AND minor = 3", [], |r| r.get(0)).unwrap();
    assert_eq!(second, "second");
    let rect: String = conn.query_row("SELECT value FROM figures WHERE key = 2", [], |r| r.get(0)).unwrap();
    assert_eq!(rect, r#"{"Rect":{"w":3,"h":4}}"#);
    let pair: String = conn.query_row("SELECT key FROM pairs WHERE value = '[]'", [], |r| r.get(0)).unwrap();
    assert_eq!(pair, r#"[2,"two"]"#);
    let kinds: Vec<(String, String)> = conn
        .prepare("SELECT name, kind FROM _cairn_tables WHERE name IN ('readings', 'people') ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, [("people".into(), "hash".into()), ("readings".into(), "ordered".into())]);
    drop(conn);

    let copy = tempfile::tempdir().unwrap();
    fresh(copy.path());
    let out = ok(&run(&["import", "--sqlite", s(&file), s(copy.path())]));
    assert!(out.contains("imported 17 records of 7 tables"), "{out}");
    let original = open(dir.path());
    let imported = open(copy.path());
    assert_eq!(contents(&imported), contents(&original));
    assert_eq!(contents(&imported).1.last().map(|(k, _)| *k), Some(u64::MAX), "ordered, u64::MAX last");
    // The auto-id counter moved past the imported ids.
    assert_eq!(imported.notes.insert_new(Note { text: "third".into() }).unwrap().get(), 3);
}

#[test]
fn a_wrong_type_in_a_column_fails_the_import_naming_table_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let file = dir.path().join("out.db");
    ok(&run(&["export", "--sqlite", s(&file), s(dir.path())]));
    let conn = Connection::open(&file).unwrap();
    let rowid: i64 = conn.query_row("SELECT rowid FROM people WHERE key = 'bob'", [], |r| r.get(0)).unwrap();
    conn.execute("UPDATE people SET age = 'old' WHERE key = 'bob'", []).unwrap();
    drop(conn);

    let target = tempfile::tempdir().unwrap();
    {
        let db = open(target.path());
        db.people.insert("ada".into(), person("Old Ada", 1)).unwrap();
    }
    let e = failed(&run(&["import", "--sqlite", s(&file), s(target.path())]));
    assert!(e.contains(&format!("table `people`, row {rowid}, column `age`")), "{e}");
    assert!(e.contains("expected an integer") && e.contains("\"old\"") && e.contains("nothing was written"), "{e}");
    let db = open(target.path());
    assert_eq!(db.people.get("ada").unwrap().name, "Old Ada", "the target is unchanged");
    assert_eq!((db.people.len(), db.readings.len(), db.figures.len()), (1, 0, 0));
    drop(db);

    // A number out of the field's range is refused by the schema's encoder, with the same place.
    let conn = Connection::open(&file).unwrap();
    conn.execute("UPDATE people SET age = 5000000000 WHERE key = 'bob'", []).unwrap();
    drop(conn);
    let e = failed(&run(&["import", "--sqlite", s(&file), s(target.path())]));
    assert!(e.contains(&format!("table `people`, row {rowid}, column `age`: ")) && e.contains("5000000000"), "{e}");
    // A JSON column that does not fit names its path inside the value.
    let conn = Connection::open(&file).unwrap();
    conn.execute("UPDATE people SET age = 71 WHERE key = 'bob'", []).unwrap();
    let rect: i64 = conn.query_row("SELECT rowid FROM figures WHERE key = 2", [], |r| r.get(0)).unwrap();
    conn.execute("UPDATE figures SET value = '{\"Rect\":{\"w\":3}}' WHERE key = 2", []).unwrap();
    drop(conn);
    let e = failed(&run(&["import", "--sqlite", s(&file), s(target.path())]));
    assert!(e.contains(&format!("table `figures`, row {rect}, column `value`: ")) && e.contains("`h`"), "{e}");
    assert_eq!(open(target.path()).people.get("ada").unwrap().name, "Old Ada");
}

#[test]
fn import_replaces_records_under_the_same_keys_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let file = dir.path().join("out.db");
    ok(&run(&["export", "--sqlite", s(&file), s(dir.path())]));
    let target = tempfile::tempdir().unwrap();
    {
        let db = open(target.path());
        db.people.insert("ada".into(), person("Old Ada", 1)).unwrap();
        db.people.insert("zed".into(), person("Zed", 2)).unwrap();
    }
    ok(&run(&["import", "--sqlite", s(&file), s(target.path())]));
    let db = open(target.path());
    assert_eq!(db.people.get("ada").unwrap(), person("Ada", 36));
    assert_eq!(db.people.get("zed").unwrap(), person("Zed", 2));
    assert_eq!(db.people.len(), 4);
}

#[test]
fn tables_that_match_no_cairn_table_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let file = dir.path().join("out.db");
    ok(&run(&["export", "--sqlite", s(&file), s(dir.path())]));
    let target = tempfile::tempdir().unwrap();
    fresh(target.path());

    let conn = Connection::open(&file).unwrap();
    conn.execute_batch("CREATE TABLE scratch (x)").unwrap();
    drop(conn);
    let e = failed(&run(&["import", "--sqlite", s(&file), s(target.path())]));
    assert!(e.contains("SQLite table `scratch`") && e.contains("not listed in `_cairn_tables`"), "{e}");

    let conn = Connection::open(&file).unwrap();
    conn.execute_batch(
        "DROP TABLE scratch; ALTER TABLE figures RENAME TO ghosts; UPDATE _cairn_tables SET name = 'ghosts' WHERE name = \
         'figures'; UPDATE _cairn_columns SET table_name = 'ghosts' WHERE table_name = 'figures';",
    )
    .unwrap();
    drop(conn);
    let e = failed(&run(&["import", "--sqlite", s(&file), s(target.path())]));
    assert!(e.contains("SQLite table `ghosts` has no matching Cairn table"), "{e}");
    assert!(e.contains("nothing was written"), "{e}");
    assert_eq!(open(target.path()).people.len(), 0);

    let e = failed(&run(&["export", "--sqlite", s(&file), s(dir.path())]));
    assert!(e.contains("already exists"), "{e}");
}

#[test]
fn piped_stderr_of_a_successful_export_and_import_holds_no_progress_drawing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        db.transaction(|tx| {
            for i in 0..20_000u64 {
                tx.readings.insert(i, Reading { celsius: i as f32, sensor: 'p' })?;
            }
            Ok::<_, cairn::Error>(())
        })
        .unwrap();
    }
    let file = dir.path().join("out.db");
    let o = run(&["export", "--sqlite", s(&file), s(dir.path())]);
    assert!(ok(&o).contains("exported 20000 records"));
    assert!(o.stderr.is_empty(), "stderr: {:?}", String::from_utf8_lossy(&o.stderr));
    let target = tempfile::tempdir().unwrap();
    fresh(target.path());
    let o = run(&["import", "--sqlite", s(&file), s(target.path())]);
    assert!(ok(&o).contains("imported 20000 records"));
    let d = run(&["dump", s(target.path()), "readings"]);
    assert_eq!(ok(&d).lines().count(), 20_000);
    for stderr in [&o.stderr, &d.stderr] {
        let text = String::from_utf8_lossy(stderr);
        assert!(!text.contains('\r') && !text.contains('\x1b'), "stderr: {text:?}");
        assert!(stderr.is_empty(), "stderr: {text:?}");
    }
}

//! Three versions of one program's schema, compiled into one test binary, writing and reading each other's
//! databases in every direction (docs/schema-evolution.md).
//!
//! - v1: `people: <u64, Person { name, age, status }>` with `Status { Active, Suspended }`, `notes: ordered<u32,
//!   String>`.
//! - v2: `Person` fields reordered, `email` added with a default, `Status::Closed { reason }` added, a table `tags`
//!   added, an index added.
//! - v3: `people` renamed `persons`, `name` renamed `full_name` (alias), `age` removed, `notes` removed.

use std::collections::BTreeMap;

use cairn::Error;
use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) enum Status {
        Active,
        Suspended,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Person {
        pub(crate) name: String,
        /// A default, so that this version reads records of versions that no longer have the field.
        #[serde(default)]
        pub(crate) age: u32,
        pub(crate) status: Status,
    }

    cairn::schema! {
        pub(crate) Db {
            people: <u64, Person>,
            notes: ordered<u32, String>,
        }
    }
}

mod v2 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) enum Status {
        Active,
        Suspended,
        Closed { reason: String },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Person {
        pub(crate) status: Status,
        #[serde(default)]
        pub(crate) age: u32,
        pub(crate) name: String,
        #[serde(default)]
        pub(crate) email: String,
    }

    cairn::schema! {
        pub(crate) Db {
            people: <u64, Person> {
                by_email: String = |p: &Person| p.email.clone(),
            },
            notes: ordered<u32, String>,
            tags: <String, u32>,
        }
    }
}

mod v3 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) enum Status {
        Active,
        Suspended,
        Closed { reason: String },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Person {
        #[serde(alias = "name")]
        pub(crate) full_name: String,
        pub(crate) status: Status,
        #[serde(default)]
        pub(crate) email: String,
    }

    cairn::schema! {
        pub(crate) Db {
            #[renamed_from(people)]
            persons: <u64, Person>,
            tags: <String, u32>,
        }
    }
}

fn v1_person(i: u64) -> v1::Person {
    v1::Person {
        name: format!("person {i}"),
        age: 20 + i as u32,
        status: if i.is_multiple_of(2) { v1::Status::Active } else { v1::Status::Suspended },
    }
}

fn write_v1(dir: &std::path::Path, range: std::ops::Range<u64>) {
    let db = v1::Db::open(dir).unwrap();
    db.transaction(|tx| {
        for i in range.clone() {
            tx.people.insert(i, v1_person(i))?;
            tx.notes.insert(i as u32, format!("note {i}"))?;
        }
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn same_schema_reuses_its_version_and_reads_fast() {
    let dir = tempfile::tempdir().unwrap();
    write_v1(dir.path(), 0..10);
    let db = v1::Db::open(dir.path()).unwrap();
    assert_eq!(db.db().schema_version(), 1);
    assert_eq!(db.db().schemas().len(), 1);
    let stored = &db.db().schemas()[&1];
    let people = stored.tables.iter().find(|t| t.name == "people").unwrap();
    assert_eq!(people.value.to_string().lines().next().unwrap(), "Person");
    assert!(people.value.to_string().contains("name: String"), "{}", people.value);
    assert_eq!(db.people.len(), 10);
    assert!(db.db().unreadable().is_empty());
}

#[test]
fn newer_code_reads_older_records_and_older_code_reads_newer_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_v1(dir.path(), 0..20);

    // v2 opens v1's database: every record, the new field at its default, the new table empty.
    let db = v2::Db::open(dir.path()).unwrap();
    assert_eq!(db.db().schema_version(), 2);
    assert_eq!(db.people.len(), 20);
    let p = db.people.get(&3).unwrap();
    assert_eq!((p.name.as_str(), p.age, &p.status, p.email.as_str()), ("person 3", 23, &v2::Status::Suspended, ""));
    assert_eq!(db.people.by_email.count(&String::new()), 20, "the new index is built over old records");
    // v2 writes records that v1 can read, and one it cannot (a new variant), and overwrites an old one.
    db.transaction(|tx| {
        tx.people
            .insert(100, v2::Person { status: v2::Status::Active, age: 50, name: "new".into(), email: "n@x".into() })?;
        tx.people.insert(
            101,
            v2::Person {
                status: v2::Status::Closed { reason: "moved".into() },
                age: 51,
                name: "closed".into(),
                email: "c@x".into(),
            },
        )?;
        tx.people.insert(
            4,
            v2::Person { status: v2::Status::Suspended, age: 99, name: "four".into(), email: "4@x".into() },
        )?;
        tx.tags.insert("t".into(), 1)?;
        Ok::<_, Error>(())
    })
    .unwrap();
    drop(db);

    // v1 opens it: v1 and v2 records read (email skipped), the record with `Closed` is reported, not fatal.
    let db = v1::Db::open(dir.path()).unwrap();
    assert_eq!(db.db().schema_version(), 1, "v1's description is stored already");
    assert_eq!(db.db().schemas().len(), 2);
    assert_eq!(db.people.get(&100), Some(v1::Person { name: "new".into(), age: 50, status: v1::Status::Active }));
    assert_eq!(db.people.get(&4), Some(v1::Person { name: "four".into(), age: 99, status: v1::Status::Suspended }));
    assert_eq!(db.people.get(&7), Some(v1_person(7)));
    assert_eq!(db.people.get(&101), None);
    let unreadable = db.db().unreadable();
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    assert_eq!(unreadable[0].table, "people");
    assert_eq!(unreadable[0].schema_version, 2);
    assert_eq!(unreadable[0].key, postcard::to_stdvec(&101u64).unwrap());
    assert!(
        unreadable[0].reason.contains("Closed") && unreadable[0].reason.contains("Status"),
        "{}",
        unreadable[0].reason
    );
    assert_eq!(db.db().unknown_tables(), ["tags".to_string()]);
    assert_eq!(db.people.len(), 21);
    // v1 writes and compacts: compaction copies v2's records as they are, so nothing of them is lost.
    db.people.insert(200, v1_person(200)).unwrap();
    db.compact().unwrap();
    drop(db);

    let db = v2::Db::open(dir.path()).unwrap();
    assert_eq!(db.db().schema_version(), 2);
    assert_eq!(db.people.len(), 23);
    let closed = db.people.get(&101).unwrap();
    assert_eq!(closed.status, v2::Status::Closed { reason: "moved".into() });
    assert_eq!(closed.email, "c@x", "v1's compaction kept the field it did not know");
    assert_eq!(db.people.get(&200).unwrap().email, "");
    assert_eq!(db.tags.get("t"), Some(1));
    assert!(db.db().unreadable().is_empty());
}

#[test]
fn renamed_table_and_field_and_removed_field() {
    let dir = tempfile::tempdir().unwrap();
    write_v1(dir.path(), 0..5);
    let db = v3::Db::open(dir.path()).unwrap();
    assert_eq!(db.persons.len(), 5, "the renamed table finds its records");
    assert_eq!(db.persons.get(&2).unwrap().full_name, "person 2", "the renamed field finds its value");
    assert_eq!(db.db().unknown_tables(), ["notes".to_string()]);
    db.persons
        .insert(9, v3::Person { full_name: "nine".into(), status: v3::Status::Active, email: "9@x".into() })
        .unwrap();
    drop(db);

    // v1 still opens: its table name is the one on disk; v3's record lacks `name` (renamed, which v1 cannot know)
    // and v1's `name` has no default, so the open is refused naming the field, and nothing is lost.
    let err = v1::Db::open(dir.path()).unwrap_err();
    match &err {
        Error::RecordIncompatible { table, writer_version, message, .. } => {
            assert_eq!(table, "people");
            assert_eq!(*writer_version, 2);
            assert!(message.contains("name"), "{message}");
        }
        other => panic!("expected RecordIncompatible, got {other:?}"),
    }
    assert!(err.to_string().contains("serde(default)"), "{err}");
    let db = v3::Db::open(dir.path()).unwrap();
    assert_eq!(db.persons.len(), 6);
    assert_eq!(db.persons.get(&9).unwrap().full_name, "nine");
}

mod changed_type {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Person {
        pub(crate) name: String,
        pub(crate) age: String,
        pub(crate) status: v1::Status,
    }

    cairn::schema! {
        pub(crate) Db {
            people: <u64, Person>,
            notes: ordered<u32, String>,
        }
    }
}

mod changed_key {
    use super::*;

    cairn::schema! {
        pub(crate) Db {
            people: <String, v1::Person>,
            notes: ordered<u32, String>,
        }
    }
}

mod widened {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Person {
        pub(crate) name: String,
        pub(crate) age: i64,
        pub(crate) status: Option<v1::Status>,
    }

    cairn::schema! {
        pub(crate) Db {
            people: <u64, Person>,
            notes: ordered<u32, String>,
        }
    }
}

#[test]
fn incompatible_changes_are_refused_at_open_naming_table_field_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    write_v1(dir.path(), 0..3);
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();

    let err = changed_type::Db::open(dir.path()).unwrap_err();
    match &err {
        Error::IncompatibleSchema { table, path, writer_version, reader_version, writer, reader } => {
            assert_eq!(table, "people");
            assert_eq!(path, "value: Person.age");
            assert_eq!((*writer_version, *reader_version), (1, 2));
            assert_eq!((writer.as_str(), reader.as_str()), ("u32", "String"));
        }
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    }
    assert!(err.to_string().contains("examples/migrate.rs"), "{err}");

    let err = changed_key::Db::open(dir.path()).unwrap_err();
    match &err {
        Error::IncompatibleSchema { table, path, writer, reader, .. } => {
            assert_eq!(table, "people");
            assert_eq!((path.as_str(), writer.as_str(), reader.as_str()), ("key", "u64", "String"));
        }
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    }

    // The refused opens wrote nothing a later open sees: v1 opens at version 1 with its records.
    let db = v1::Db::open(dir.path()).unwrap();
    assert_eq!(db.people.len(), 3);
    assert_eq!(db.people.get(&1), Some(v1_person(1)));
    drop(db);
    let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(before.len(), after.len());

    // Widening an integer and wrapping in an Option read forwards.
    let db = widened::Db::open(dir.path()).unwrap();
    assert_eq!(db.people.get(&2).unwrap().age, 22);
    assert_eq!(db.people.get(&2).unwrap().status, Some(v1::Status::Active));
    db.people.insert(7, widened::Person { name: "w".into(), age: 1, status: None }).unwrap();
    drop(db);
    // ... but not backwards: v1 refuses i64 where it has u32.
    match v1::Db::open(dir.path()).unwrap_err() {
        Error::IncompatibleSchema { path, .. } => assert!(path.starts_with("value: Person."), "{path}"),
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    }
}

#[test]
fn versions_and_records_survive_reopen_compaction_and_backup() {
    let dir = tempfile::tempdir().unwrap();
    write_v1(dir.path(), 0..10);
    {
        let db = v2::Db::open(dir.path()).unwrap();
        db.people
            .insert(
                50,
                v2::Person {
                    status: v2::Status::Closed { reason: "r".into() },
                    age: 1,
                    name: "n".into(),
                    email: "e".into(),
                },
            )
            .unwrap();
        db.compact().unwrap();
        let backup = db.db().backup_to(dir.path().join("copy")).unwrap();
        assert!(backup.seq > 0);
    }
    for path in [dir.path().to_path_buf(), dir.path().join("copy")] {
        let db = v1::Db::open(&path).unwrap();
        assert_eq!(db.db().schemas().keys().copied().collect::<Vec<_>>(), vec![1, 2], "{}", path.display());
        assert_eq!(db.people.len(), 10);
        assert_eq!(db.db().unreadable().len(), 1);
        drop(db);
        let db = v2::Db::open(&path).unwrap();
        let all: BTreeMap<u64, v2::Person> = db.people.iter().collect();
        assert_eq!(all.len(), 11);
        assert_eq!(all[&50].status, v2::Status::Closed { reason: "r".into() });
    }
}

// ---- Fixtures written by each schema version, checked in under tests/fixtures/schema-v{1,2}/ ----

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), work.path().join(e.file_name())).unwrap();
    }
    work
}

fn v2_person(i: u64) -> v2::Person {
    v2::Person {
        status: match i % 3 {
            0 => v2::Status::Active,
            1 => v2::Status::Suspended,
            _ => v2::Status::Closed { reason: format!("reason {i}") },
        },
        age: 30 + i as u32,
        name: format!("v2 person {i}"),
        email: format!("{i}@example.org"),
    }
}

#[test]
#[ignore = "writes the schema fixtures; run once, by hand, when a schema version of this test is added"]
fn write_schema_fixtures() {
    if std::env::var_os("CAIRN_WRITE_FIXTURE").is_none() {
        return;
    }
    for name in ["schema-v1", "schema-v2"] {
        let _ = std::fs::remove_dir_all(fixture(name));
    }
    // schema-v1: written by v1 only, a snapshot and a log after it.
    let dir = fixture("schema-v1");
    write_v1(&dir, 0..10);
    let db = v1::Db::builder().compact_after(None).open(&dir).unwrap();
    db.compact().unwrap();
    db.people.insert(10, v1_person(10)).unwrap();
    drop(db);
    finish_fixture(&dir);
    // schema-v2: written by v1, then by v2 (records of both versions, one with a variant v1 lacks).
    let dir = fixture("schema-v2");
    write_v1(&dir, 0..6);
    let db = v2::Db::builder().compact_after(None).open(&dir).unwrap();
    db.transaction(|tx| {
        for i in 6..12 {
            tx.people.insert(i, v2_person(i))?;
        }
        tx.tags.insert("fixture".into(), 2)
    })
    .unwrap();
    db.compact().unwrap();
    db.people.insert(12, v2_person(12)).unwrap();
    drop(db);
    finish_fixture(&dir);
}

/// Removes the lock file and cuts the reserved zeros off the log segments (they read as the end of the data).
fn finish_fixture(dir: &std::path::Path) {
    std::fs::remove_file(dir.join("LOCK")).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "log") {
            let bytes = std::fs::read(&path).unwrap();
            let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1).next_multiple_of(8);
            std::fs::write(&path, &bytes[..end.min(bytes.len())]).unwrap();
        }
    }
}

#[test]
fn schema_fixtures_open_in_every_version() {
    // schema-v1 in v1, v2 and v3.
    let work = copy_fixture("schema-v1");
    let db = v1::Db::open(work.path()).unwrap();
    assert_eq!(db.people.iter().collect::<BTreeMap<_, _>>(), (0..=10).map(|i| (i, v1_person(i))).collect());
    assert_eq!(db.db().schema_version(), 1);
    drop(db);
    let work = copy_fixture("schema-v1");
    let db = v2::Db::open(work.path()).unwrap();
    let p = db.people.get(&10).unwrap();
    assert_eq!((p.name.as_str(), p.age, p.email.as_str()), ("person 10", 30, ""));
    assert_eq!(db.people.len(), 11);
    drop(db);
    let work = copy_fixture("schema-v1");
    let db = v3::Db::open(work.path()).unwrap();
    assert_eq!(db.persons.get(&3).unwrap().full_name, "person 3");
    assert_eq!(db.persons.len(), 11);
    drop(db);

    // schema-v2 in v2, v1 (one record unreadable) and v3.
    let work = copy_fixture("schema-v2");
    let db = v2::Db::open(work.path()).unwrap();
    assert_eq!(db.db().schemas().len(), 2);
    for i in 6..=12 {
        assert_eq!(db.people.get(&i), Some(v2_person(i)), "record {i}");
    }
    assert_eq!(db.people.get(&2).unwrap().name, "person 2");
    assert_eq!(db.tags.get("fixture"), Some(2));
    drop(db);
    let work = copy_fixture("schema-v2");
    let db = v1::Db::open(work.path()).unwrap();
    let closed: Vec<u64> = (6..=12).filter(|i| i % 3 == 2).collect();
    assert_eq!(db.people.len(), 13 - closed.len());
    assert_eq!(db.db().unreadable().len(), closed.len());
    assert_eq!(
        db.people.get(&7),
        Some(v1::Person { name: "v2 person 7".into(), age: 37, status: v1::Status::Suspended })
    );
    drop(db);
    let work = copy_fixture("schema-v2");
    let db = v3::Db::open(work.path()).unwrap();
    assert_eq!(db.persons.get(&8).unwrap().status, v3::Status::Closed { reason: "reason 8".into() });
    assert_eq!(db.persons.len(), 13);
}

// ---- Property: random values survive every compatible pair of versions ----

mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    fn v1_status() -> impl Strategy<Value = v1::Status> {
        prop_oneof![Just(v1::Status::Active), Just(v1::Status::Suspended)]
    }

    fn v1_people() -> impl Strategy<Value = BTreeMap<u64, v1::Person>> {
        proptest::collection::btree_map(
            any::<u64>(),
            ("\\PC{0,12}", any::<u32>(), v1_status()).prop_map(|(name, age, status)| v1::Person { name, age, status }),
            0..20,
        )
    }

    fn v2_people() -> impl Strategy<Value = BTreeMap<u64, v2::Person>> {
        let status = prop_oneof![
            Just(v2::Status::Active),
            Just(v2::Status::Suspended),
            "\\PC{0,8}".prop_map(|reason| v2::Status::Closed { reason }),
        ];
        proptest::collection::btree_map(
            any::<u64>(),
            ("\\PC{0,12}", any::<u32>(), status, "\\PC{0,12}").prop_map(|(name, age, status, email)| v2::Person {
                status,
                age,
                name,
                email,
            }),
            0..20,
        )
    }

    fn v1_to_v2(p: &v1::Person) -> v2::Person {
        let status = match p.status {
            v1::Status::Active => v2::Status::Active,
            v1::Status::Suspended => v2::Status::Suspended,
        };
        v2::Person { status, age: p.age, name: p.name.clone(), email: String::new() }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn v1_values_read_in_v2_and_v3(people in v1_people(), compact in any::<bool>()) {
            let dir = tempfile::tempdir().unwrap();
            let db = v1::Db::open(dir.path()).unwrap();
            db.transaction(|tx| {
                for (k, p) in &people { tx.people.insert(*k, p.clone())?; }
                Ok::<_, Error>(())
            }).unwrap();
            if compact { db.compact().unwrap(); }
            drop(db);
            let db = v2::Db::open(dir.path()).unwrap();
            let expected: BTreeMap<u64, v2::Person> = people.iter().map(|(k, p)| (*k, v1_to_v2(p))).collect();
            prop_assert_eq!(db.people.iter().collect::<BTreeMap<_, _>>(), expected);
            drop(db);
            let db = v3::Db::open(dir.path()).unwrap();
            let names: BTreeMap<u64, String> = db.persons.iter().map(|(k, p)| (k, p.full_name)).collect();
            prop_assert_eq!(names, people.iter().map(|(k, p)| (*k, p.name.clone())).collect::<BTreeMap<_, _>>());
        }

        #[test]
        fn v2_values_read_in_v1_or_are_reported(people in v2_people(), compact in any::<bool>()) {
            let dir = tempfile::tempdir().unwrap();
            write_v1(dir.path(), 0..0);
            let db = v2::Db::open(dir.path()).unwrap();
            db.transaction(|tx| {
                for (k, p) in &people { tx.people.insert(*k, p.clone())?; }
                Ok::<_, Error>(())
            }).unwrap();
            if compact { db.compact().unwrap(); }
            drop(db);
            let db = v1::Db::open(dir.path()).unwrap();
            let mut readable = BTreeMap::new();
            let mut closed = Vec::new();
            for (k, p) in &people {
                let status = match &p.status {
                    v2::Status::Active => v1::Status::Active,
                    v2::Status::Suspended => v1::Status::Suspended,
                    v2::Status::Closed { .. } => { closed.push(postcard::to_stdvec(k).unwrap()); continue }
                };
                readable.insert(*k, v1::Person { name: p.name.clone(), age: p.age, status });
            }
            prop_assert_eq!(db.people.iter().collect::<BTreeMap<_, _>>(), readable);
            let mut reported: Vec<Vec<u8>> = db.db().unreadable().iter().map(|u| u.key.clone()).collect();
            reported.sort();
            closed.sort();
            prop_assert_eq!(reported, closed);
            db.compact().unwrap();
            drop(db);
            // And back in v2, after v1 compacted: every value exactly as written.
            let db = v2::Db::open(dir.path()).unwrap();
            prop_assert_eq!(db.people.iter().collect::<BTreeMap<_, _>>(), people);
        }
    }
}

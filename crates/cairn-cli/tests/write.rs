//! `cairn load`, `cairn edit`, `cairn compact`, `cairn backup` and `cairn restore` run on databases a test program
//! writes, and the program reading what the tool wrote.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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
        pub(crate) note: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Note {
        pub(crate) text: String,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct User {
        pub(crate) email: String,
    }

    cairn::schema! {
        pub(crate) Shop {
            accounts: <String, Account>,
            notes: auto<Note>,
            users: <u64, User> {
                by_email: unique String = |u: &User| u.email.clone(),
            },
        }
    }
}

mod v2 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Account {
        pub(crate) name: String,
        pub(crate) plan: v1::Plan,
        pub(crate) note: Option<String>,
        #[serde(default)]
        pub(crate) email: String,
    }

    cairn::schema! {
        pub(crate) Shop {
            accounts: <String, Account>,
            notes: auto<v1::Note>,
            users: <u64, v1::User> {
                by_email: unique String = |u: &v1::User| u.email.clone(),
            },
        }
    }
}

/// Serializes opening test databases with spawning the binary: a child between fork and exec holds a copy of the
/// parent's open files, `LOCK` among them.
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.args(args).envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = {
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        cmd.spawn().expect("the cairn binary runs")
    };
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().expect("the cairn binary runs")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "exit {:?}, stderr: {}", o.status.code(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn failed(o: &Output, code: i32) -> String {
    assert_eq!(o.status.code(), Some(code), "stdout: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A database written by v1, then opened by v2 (so two schema versions, v2 the newest).
fn database(dir: &Path) {
    let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let db = v1::Shop::open(dir).unwrap();
    db.accounts.insert("ada".into(), v1::Account { name: "Ada".into(), plan: v1::Plan::Free, note: None }).unwrap();
    db.notes.insert_new(v1::Note { text: "one".into() }).unwrap();
    let two = db.notes.insert_new(v1::Note { text: "two".into() }).unwrap();
    db.notes.remove(&two).unwrap();
    db.compact().unwrap();
    drop(db);
    drop(v2::Shop::open(dir).unwrap());
}

fn open_v2(dir: &Path) -> v2::Shop {
    let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    v2::Shop::open(dir).unwrap()
}

#[test]
fn load_writes_every_line_in_one_transaction_that_the_program_reads() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let lines = concat!(
        r#"{"key": "bob", "value": {"name": "Bob", "plan": {"Team": {"seats": 3}}, "note": "hi", "email": "b@x"}}"#,
        "\n",
        r#"{"table": "accounts", "key": "cy", "value": {"name": "Cy", "plan": "Free", "email": ""}}"#,
        "\n"
    );
    let out = ok(&run(&["load", s(dir.path()), "accounts"], lines, &[]));
    assert!(out.contains("loaded 2 records into `accounts`"), "{out}");
    let ron = "(key: \"dee\", value: (name: \"Dee\", plan: Team(seats: 1), note: \"n\", email: \"d@x\"))\n";
    ok(&run(&["load", s(dir.path()), "accounts", "--format", "ron"], ron, &[]));

    let db = open_v2(dir.path());
    let bob = db.accounts.get("bob").unwrap();
    assert_eq!(bob.plan, v1::Plan::Team { seats: 3 });
    assert_eq!((bob.note.as_deref(), bob.email.as_str()), (Some("hi"), "b@x"));
    assert_eq!(db.accounts.get("cy").unwrap().note, None, "a missing option is None");
    assert_eq!(db.accounts.get("dee").unwrap().email, "d@x");
    assert_eq!(db.accounts.get("ada").unwrap().name, "Ada", "older records are untouched");
    assert_eq!(db.db().schema_version(), 2, "no schema version was added by the tool");
}

#[test]
fn an_invalid_line_fails_the_whole_load_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let lines = concat!(
        r#"{"key": "bob", "value": {"name": "Bob", "plan": "Free", "email": "b"}}"#,
        "\n",
        r#"{"key": "cy", "value": {"name": "Cy", "plan": {"Team": {"seats": -1}}, "email": ""}}"#,
        "\n"
    );
    let e = failed(&run(&["load", s(dir.path()), "accounts"], lines, &[]), 1);
    assert!(e.contains("line 2") && e.contains("`value.plan::Team.seats`"), "{e}");
    assert!(e.contains("nothing was written"), "{e}");
    // A record in the older version's form lacks the newer version's field, which has no default the tool knows.
    let old = r#"{"table":"accounts","key":"x","schema_version":1,"value":{"name":"X","plan":"Free","note":null}}"#;
    let e = failed(&run(&["load", s(dir.path()), "accounts"], old, &[]), 1);
    assert!(e.contains("missing field `email`"), "{e}");
    let e = failed(&run(&["load", s(dir.path()), "accounts"], r#"{"table":"notes","key":"x","value":{}}"#, &[]), 1);
    assert!(e.contains("line 1"), "{e}");
    assert!(open_v2(dir.path()).accounts.get("bob").is_none(), "the valid first line was not written either");
}

#[test]
fn a_table_with_a_unique_index_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let line = r#"{"key": 7, "value": {"email": "a@x"}}"#;
    let e = failed(&run(&["load", s(dir.path()), "users"], line, &[]), 1);
    assert!(e.contains("unique index `by_email`") && e.contains("--force"), "{e}");
    assert!(open_v2(dir.path()).users.get(&7).is_none());
    ok(&run(&["load", s(dir.path()), "users", "--force"], line, &[]));
    assert_eq!(open_v2(dir.path()).users.by_email.get("a@x").map(|(k, _)| k), Some(7), "the index is rebuilt");
}

#[test]
fn auto_ids_written_by_the_tool_are_never_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    // Id 2 was handed out and removed: reusing it is refused.
    let e = failed(&run(&["load", s(dir.path()), "notes"], r#"{"key": 2, "value": {"text": "again"}}"#, &[]), 1);
    assert!(e.contains("id 2 was handed out before"), "{e}");
    ok(&run(&["load", s(dir.path()), "notes"], r#"{"key": 10, "value": {"text": "ten"}}"#, &[]));
    let db = open_v2(dir.path());
    db.notes.remove(&cairn::Id::from_raw(10)).unwrap();
    let next = db.notes.insert_new(v1::Note { text: "next".into() }).unwrap();
    assert_eq!(next.get(), 11, "the counter moved past the id the tool wrote, though its record is gone");
}

#[test]
fn writing_is_refused_while_a_program_has_the_database_open() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let db = open_v2(dir.path());
    let e = failed(&run(&["load", s(dir.path()), "accounts"], "", &[]), 1);
    assert!(e.contains("locked"), "{e}");
    let e = failed(&run(&["compact", s(dir.path())], "", &[]), 1);
    assert!(e.contains("locked"), "{e}");
    drop(db);
}

/// An editor script: replaces `from` with `to` in the file, the first time; later runs apply `then` (a second
/// sed expression) instead.
fn editor(dir: &Path, first: &str, then: &str) -> String {
    let script = dir.join("editor.sh");
    let marker = dir.join("edited-once");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncp \"$1\" \"{seen}.$(ls {d} | wc -l)\"\nif [ -e {m} ]; then sed -i '{then}' \"$1\"; else touch {m}; sed -i \
             '{first}' \"$1\"; fi\n",
            seen = dir.join("seen").display(),
            d = dir.display(),
            m = marker.display(),
        ),
    )
    .unwrap();
    format!("sh {}", script.display())
}

#[test]
fn edit_writes_the_saved_record_and_shows_an_invalid_edit_again_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let tools = tempfile::tempdir().unwrap();
    // First save: a plan that does not exist; second: a valid one, and the newer version's field.
    let ed = editor(tools.path(), "s/Free/Gold/", "s/Gold/Team(seats: 4)/; s/note: None,/note: None, email: \"e@x\",/");
    let out = ok(&run(&["edit", s(dir.path()), "accounts", "\"ada\""], "", &[("EDITOR", &ed)]));
    assert!(out.contains("wrote `accounts` \"ada\""), "{out}");
    let mut seen: Vec<_> = std::fs::read_dir(tools.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seen"))
        .collect();
    seen.sort();
    assert_eq!(seen.len(), 2, "the editor ran twice");
    let first = std::fs::read_to_string(&seen[0]).unwrap();
    assert!(first.contains("Account(") && first.contains("plan: Free"), "{first}");
    let second = std::fs::read_to_string(&seen[1]).unwrap();
    assert!(second.contains("// cairn: ERROR:") && second.contains("no variant `Gold`"), "{second}");
    let ada = open_v2(dir.path()).accounts.get("ada").unwrap();
    assert_eq!((ada.plan, ada.email.as_str()), (v1::Plan::Team { seats: 4 }, "e@x"));
}

#[test]
fn an_edit_that_stays_invalid_writes_nothing_and_a_missing_record_is_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let tools = tempfile::tempdir().unwrap();
    let ed = editor(tools.path(), "s/Free/Gold/", "s/x/x/");
    let e = failed(&run(&["edit", s(dir.path()), "accounts", "\"ada\""], "", &[("EDITOR", &ed)]), 1);
    assert!(e.contains("still invalid") && e.contains("nothing was written"), "{e}");
    assert_eq!(open_v2(dir.path()).accounts.get("ada").unwrap().plan, v1::Plan::Free);
    let e = failed(&run(&["edit", s(dir.path()), "accounts", "\"nobody\""], "", &[("EDITOR", "true")]), 3);
    assert!(e.contains("no record"), "{e}");
}

#[test]
fn dump_as_ron_loads_back_into_another_database() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let line =
        r#"{"key": "bob", "value": {"name": "Bob", "plan": {"Team": {"seats": 3}}, "note": "hi", "email": "b"}}"#;
    ok(&run(&["load", s(dir.path()), "accounts"], line, &[]));
    let dump = ok(&run(&["dump", s(dir.path()), "accounts", "--format", "ron"], "", &[]));
    let bob = dump.lines().find(|l| l.contains("\"bob\"")).unwrap();
    assert!(bob.contains("plan:Team(seats:3)") || bob.contains("plan: Team(seats: 3)"), "{bob}");
    let copy = tempfile::tempdir().unwrap();
    let copy = copy.path().join("copy");
    database(&copy);
    ok(&run(&["load", s(&copy), "accounts", "--format", "ron"], bob, &[]));
    assert_eq!(open_v2(&copy).accounts.get("bob"), open_v2(dir.path()).accounts.get("bob"));
}

#[test]
fn compact_backup_and_restore_keep_every_record() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    ok(&run(
        &["load", s(dir.path()), "accounts"],
        r#"{"key":"bob","value":{"name":"Bob","plan":"Free","email":""}}"#,
        &[],
    ));
    let out = ok(&run(&["compact", s(dir.path())], "", &[]));
    assert!(out.contains("snapshot at seq"), "{out}");
    let dump = ok(&run(&["dump", s(dir.path())], "", &[]));

    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("b");
    let out = ok(&run(&["backup", s(dir.path()), s(&backup)], "", &[]));
    assert!(out.contains("backed up"), "{out}");
    let restored = backups.path().join("restored");
    ok(&run(&["restore", s(&backup), s(&restored)], "", &[]));
    assert_eq!(ok(&run(&["dump", s(&restored)], "", &[])), dump);
    assert_eq!(open_v2(&restored).accounts.get("bob").unwrap().name, "Bob");

    // Restore refuses a target that is not empty, and leaves it as it was.
    let e = failed(&run(&["restore", s(&backup), s(dir.path())], "", &[]), 1);
    assert!(e.contains("not empty"), "{e}");
    assert_eq!(ok(&run(&["dump", s(dir.path())], "", &[])), dump);
}

#[test]
fn completions_and_help_are_there() {
    let bash = ok(&run(&["completions", "bash"], "", &[]));
    assert!(bash.contains("_cairn") && bash.contains("restore"), "{}", &bash[..200.min(bash.len())]);
    let help = ok(&run(&["load", "--help"], "", &[]));
    assert!(help.contains("--force") && help.contains("one transaction"), "{help}");
    let e = failed(&run(&["load"], "", &[]), 2);
    assert!(e.contains("Usage"), "{e}");
}

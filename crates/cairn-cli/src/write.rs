//! The commands that write records: `load` (lines from stdin, one transaction) and `edit` (one record in
//! `$EDITOR`). Both open the database through `cairn::raw`, which takes its lock and encodes every record by the
//! newest stored schema version; see that module for what is refused and why (unique indexes, auto ids).

use std::io::{BufRead, Write};
use std::path::Path;

use cairn::describe::decode_dynamic;
use cairn::raw::RawWrite;

use crate::{fail, progress, records, Failure, Format};

/// `cairn load`: every line of `input` is a record of `table`; all are validated, then written in one transaction.
pub(crate) fn load(
    out: &mut impl Write,
    input: impl BufRead,
    dir: &Path,
    table: &str,
    format: Format,
    force: bool,
) -> Result<(), Failure> {
    if matches!(format, Format::Text) {
        return Err(Failure { message: "load reads --format json or ron, not text".into(), code: 2 });
    }
    let mut db = crate::key::raw(dir)?;
    let d = db.description(table)?.clone();
    let mut writes = Vec::new();
    let bar = progress::spinner("reading records", true);
    for (n, line) in input.lines().enumerate() {
        bar.inc(1);
        let line = line.map_err(|e| fail(format!("reading stdin: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: String| fail(format!("line {}: {e}; nothing was written", n + 1));
        let (named, key, value) = records::parse(format, &line, &d).map_err(at)?;
        if let Some(named) = named.filter(|t| *t != table && *t != d.name) {
            return Err(at(format!("the record is for table `{named}`, not `{table}`")));
        }
        writes.push(RawWrite { table: table.to_string(), key, value: Some(value) });
    }
    bar.finish_and_clear();
    let seq = db.commit(&writes, force)?;
    writeln!(out, "loaded {} records into `{table}` (seq {seq})", writes.len())?;
    Ok(())
}

/// The marker of the lines `edit` adds to the file; they are removed before the file is read.
const NOTE: &str = "// cairn:";

/// `cairn edit`: the value of `key` (JSON) as RON in `$EDITOR`; saved, it is validated and written in one
/// transaction. An invalid edit is shown again with the error as a comment; saving it unchanged, or emptying the
/// file, gives up and writes nothing.
pub(crate) fn edit(out: &mut impl Write, dir: &Path, table: &str, key: &str, force: bool) -> Result<(), Failure> {
    let mut db = crate::key::raw(dir)?;
    let d = db.description(table)?.clone();
    let key = records::json_read(key, &d.key).map_err(|e| Failure {
        message: format!("the key `{key}` is not a key of `{table}` in JSON ({e}); quote strings: '\"alice\"'"),
        code: 2,
    })?;
    let encoded = cairn::describe::encode_dynamic(&key, &d.key).map_err(fail)?;
    let view = db.view();
    let t = view.table(table).ok_or_else(|| fail(format!("no table `{table}`")))?;
    let Some(record) = t.records.get(&encoded) else {
        return Err(Failure {
            message: format!("table `{table}` has no record with key {key}; add records with `cairn load`"),
            code: 3,
        });
    };
    // Shown as the newest version reads it: the edit is written by that version.
    let writer = view.description(t, record.schema_version).ok_or_else(|| fail("no stored description"))?;
    let current = decode_dynamic(&record.value, &writer.value).map_err(fail)?;
    let version = db.schema_version().unwrap_or(0);
    let mut text = records::ron_pretty(&current, &writer.value).map_err(fail)?;
    let header = format!(
        "{NOTE} table `{table}`, key {key}, written as schema version {version}. Save to write it; empty the file to \
         cancel.\n"
    );
    let file = tempfile::Builder::new().prefix("cairn-edit-").suffix(".ron").tempfile().map_err(|e| {
        fail(format!("creating a temporary file for the editor: {e}; set TMPDIR to a writable directory"))
    })?;
    let mut error: Option<String> = None;
    loop {
        let mut shown = header.clone();
        if let Some(e) = &error {
            for line in e.lines() {
                shown.push_str(&format!("{NOTE} ERROR: {line}\n"));
            }
            shown.push_str(&format!("{NOTE} Fix it and save again; save it unchanged to give up.\n"));
        }
        shown.push_str(&text);
        std::fs::write(file.path(), &shown).map_err(|e| fail(format!("writing {}: {e}", file.path().display())))?;
        run_editor(file.path())?;
        let saved = std::fs::read_to_string(file.path())
            .map_err(|e| fail(format!("reading {}: {e}", file.path().display())))?;
        let body: String = saved.lines().filter(|l| !l.starts_with(NOTE)).map(|l| format!("{l}\n")).collect();
        if body.trim().is_empty() {
            writeln!(out, "empty file: nothing written")?;
            return Ok(());
        }
        if error.is_none() && body.trim() == text.trim() {
            writeln!(out, "no change: nothing written")?;
            return Ok(());
        }
        if error.is_some() && body == text {
            return Err(fail(format!(
                "the edit of `{table}` {key} is still invalid ({}); nothing was written",
                error.unwrap_or_default()
            )));
        }
        let checked = records::ron_read(&body, &d.value)
            .and_then(|value| cairn::describe::encode_dynamic(&value, &d.value).map(|_| value));
        match checked {
            Ok(value) => {
                let write = RawWrite { table: table.to_string(), key: key.clone(), value: Some(value) };
                let seq = db.commit(&[write], force)?;
                writeln!(out, "wrote `{table}` {key} (seq {seq})")?;
                return Ok(());
            }
            Err(e) => {
                error = Some(e);
                text = body;
            }
        }
    }
}

/// Runs `$EDITOR` (or `$VISUAL`, else `vi`) on `path` through the shell, so an editor with arguments works.
fn run_editor(path: &Path) -> Result<(), Failure> {
    let editor = std::env::var("EDITOR").or_else(|_| std::env::var("VISUAL")).unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| fail(format!("running the editor `{editor}`: {e}; set EDITOR")))?;
    if !status.success() {
        return Err(fail(format!("the editor `{editor}` exited with {status}; nothing was written")));
    }
    Ok(())
}

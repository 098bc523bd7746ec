//! `cairn export --sqlite`: reads the database's files as they are (no lock, like `dump`) and writes a new SQLite
//! file in one transaction with one prepared statement per table. The file is written beside `out` and renamed
//! into place when complete, so `out` is never a partial export.

use std::io::Write;
use std::path::{Path, PathBuf};

use cairn::describe::{Dynamic, Shape};
use cairn::inspect::{InspectedTable, Inspection};
use cairn::TableDescription;
use rusqlite::types::Value;
use rusqlite::Connection;

use super::mapping::{columns, struct_fields, to_sql, Column, Part};
use super::{quote, COLUMNS, TABLES};
use crate::{fail, progress, Failure};

/// `cairn export --sqlite OUT DIR`.
pub(crate) fn export(out: &mut impl Write, dir: &Path, file: &Path) -> Result<(), Failure> {
    if file.exists() {
        return Err(fail(format!(
            "{} already exists; export writes a new file: remove it or choose another name",
            file.display()
        )));
    }
    let db = crate::key::view(dir)?;
    let version = db.schemas.keys().next_back().copied().ok_or_else(|| {
        fail(format!("{} stores no schema: open it once with its program, then export", dir.display()))
    })?;
    let tables: Vec<&InspectedTable> = db.tables.iter().filter(|t| !t.name.contains('.')).collect();
    let partial = PathBuf::from(format!("{}.partial", file.display()));
    let _ = std::fs::remove_file(&partial);
    let written = write(&db, &tables, version, &partial).and_then(|n| {
        std::fs::rename(&partial, file)
            .map_err(|e| fail(format!("renaming {} to {}: {e}", partial.display(), file.display())))?;
        Ok(n)
    });
    match written {
        Ok(records) => {
            writeln!(out, "exported {records} records of {} tables to {}", tables.len(), file.display())?;
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Writes every table into a new SQLite file at `path`, in one transaction; returns the number of records.
fn write(db: &Inspection, tables: &[&InspectedTable], version: u32, path: &Path) -> Result<u64, Failure> {
    let sql = |e: rusqlite::Error| fail(format!("writing {}: {e}", path.display()));
    let mut conn = Connection::open(path).map_err(sql)?;
    let tx = conn.transaction().map_err(sql)?;
    tx.execute_batch(&format!(
        "CREATE TABLE {TABLES} (name TEXT PRIMARY KEY, kind TEXT NOT NULL, schema_version INTEGER NOT NULL,
             key_type TEXT NOT NULL, value_type TEXT NOT NULL, records INTEGER NOT NULL);
         CREATE TABLE {COLUMNS} (table_name TEXT NOT NULL, position INTEGER NOT NULL, column_name TEXT NOT NULL,
             part TEXT NOT NULL, field TEXT, encoding TEXT NOT NULL, nullable INTEGER NOT NULL,
             PRIMARY KEY (table_name, position));"
    ))
    .map_err(sql)?;
    let total: u64 = tables.iter().map(|t| t.records.len() as u64).sum();
    let bar = progress::bar(total, "export");
    for t in tables {
        let d = db.newest_description(t).ok_or_else(|| {
            fail(format!("table `{}`: no stored description of its records; open it once with its program", t.name))
        })?;
        let name = &d.name;
        if name.eq_ignore_ascii_case(TABLES) || name.eq_ignore_ascii_case(COLUMNS) {
            return Err(fail(format!("table `{name}` has the name of a table export writes itself; rename it")));
        }
        let cols = columns(d);
        let kind = if d.ordered { "ordered" } else { "hash" };
        tx.execute(
            &format!("INSERT INTO {TABLES} VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            rusqlite::params![name, kind, version, d.key.to_string(), d.value.to_string(), t.records.len() as i64],
        )
        .map_err(sql)?;
        for (i, c) in cols.iter().enumerate() {
            tx.execute(
                &format!("INSERT INTO {COLUMNS} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                rusqlite::params![name, i as i64, c.name, c.part.name(), c.field, c.encoding.name(), c.nullable],
            )
            .map_err(sql)?;
        }
        let defs: Vec<String> = cols.iter().map(|c| format!("{}{}", quote(&c.name), c.encoding.declared())).collect();
        let keys: Vec<String> = cols.iter().filter(|c| c.part == Part::Key).map(|c| quote(&c.name)).collect();
        tx.execute_batch(&format!(
            "CREATE TABLE {} ({}, PRIMARY KEY ({}))",
            quote(name),
            defs.join(", "),
            keys.join(", ")
        ))
        .map_err(sql)?;
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let mut insert =
            tx.prepare(&format!("INSERT INTO {} VALUES ({})", quote(name), marks.join(", "))).map_err(sql)?;
        for (k, record) in &t.records {
            let key = db.decode_key(t, k).map_err(|e| fail(format!("table `{name}`: a key does not decode: {e}")))?;
            let at = |e: String| fail(format!("table `{name}`, key {key}: {e}"));
            let value = db.decode_value(t, record).map_err(at)?;
            let row = cols
                .iter()
                .map(|c| cell(c, d, &key, &value, record.schema_version, version))
                .collect::<Result<Vec<Value>, String>>()
                .map_err(at)?;
            insert.execute(rusqlite::params_from_iter(row)).map_err(sql)?;
            bar.inc(1);
        }
    }
    tx.commit().map_err(sql)?;
    bar.finish_and_clear();
    Ok(total)
}

/// The SQLite value of column `c` of `d` for one record. A record written by an older schema version is read by
/// field name: a field it lacks is `None` if the newest version has it as an option (as serde reads it), else an
/// error.
fn cell(
    c: &Column,
    d: &TableDescription,
    key: &Dynamic,
    value: &Dynamic,
    written: u32,
    newest: u32,
) -> Result<Value, String> {
    let whole = match c.part {
        Part::Key => key,
        Part::Value => value,
    };
    let Some(field) = &c.field else { return to_sql(whole, c.encoding, c.nullable) };
    let Dynamic::Struct(fields) = whole else {
        return Err(format!("the {} is {whole}, not a struct with the field `{field}`", c.part.name()));
    };
    match fields.iter().find(|(n, _)| n == field) {
        Some((_, v)) => to_sql(v, c.encoding, c.nullable).map_err(|e| format!("field `{field}`: {e}")),
        None if c.nullable => Ok(Value::Null),
        None if optional(d, c.part, field) => to_sql(&Dynamic::Option(None), c.encoding, false),
        None => Err(format!(
            "it was written by schema version {written}, which has no field `{field}` (version {newest} has it and \
             it is not an option); rewrite the record with the program of version {newest}, then export"
        )),
    }
}

/// Whether `field` of `d`'s key or value is an option.
fn optional(d: &TableDescription, part: Part, field: &str) -> bool {
    let whole = match part {
        Part::Key => &d.key,
        Part::Value => &d.value,
    };
    struct_fields(&whole.root, &whole.types)
        .and_then(|fields| fields.iter().find(|f| f.name == field))
        .is_some_and(|f| matches!(f.shape, Shape::Option(_)))
}

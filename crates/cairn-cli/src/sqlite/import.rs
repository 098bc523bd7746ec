//! `cairn import --sqlite`: reads a file `cairn export --sqlite` wrote (its `_cairn_columns` say how each column
//! maps) and writes every row into the database as one transaction through `cairn::raw`, encoded by the newest
//! stored schema. Every column is checked against the schema first; the first that does not fit fails the import,
//! naming table, row and column, and nothing is written. A row whose key the database holds replaces that record;
//! records the file does not hold are kept.

use std::io::Write;
use std::path::Path;

use cairn::describe::{encode_dynamic, Dynamic, Shape, TypeDescription};
use cairn::raw::RawWrite;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

use super::mapping::{from_sql, struct_fields, Column, Encoding, Part};
use super::{quote, COLUMNS, TABLES};
use crate::{fail, progress, Failure};

/// One column to read: how it was written, and the type it must fit.
struct Reading {
    column: Column,
    shape: Shape,
    /// `shape` with the table's types, to check a value alone.
    alone: TypeDescription,
}

/// `cairn import --sqlite IN DIR`.
pub(crate) fn import(out: &mut impl Write, dir: &Path, file: &Path, force: bool) -> Result<(), Failure> {
    let sql = |e: rusqlite::Error| fail(format!("reading {}: {e}", file.display()));
    if !file.is_file() {
        return Err(fail(format!(
            "{} is not a file; give the SQLite file `cairn export --sqlite` wrote",
            file.display()
        )));
    }
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    let described: Vec<String> = match conn.prepare(&format!("SELECT name FROM {TABLES} ORDER BY name")) {
        Ok(mut s) => s.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(sql)?,
        Err(_) => {
            return Err(fail(format!(
                "{} has no table `{TABLES}`: it was not written by `cairn export --sqlite`, so how its columns map is \
                 unknown",
                file.display()
            )))
        }
    };
    let all: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()))
        .map_err(sql)?;
    if let Some(stray) = all.iter().find(|n| !described.contains(n) && *n != TABLES && *n != COLUMNS) {
        return Err(fail(format!(
            "SQLite table `{stray}` in {} is not listed in `{TABLES}`, so it was not exported from a Cairn table; drop \
             it (or export again) and import once more; nothing was written",
            file.display()
        )));
    }
    let mut db = crate::key::raw(dir)?;
    let mut plans = Vec::new();
    let mut total = 0u64;
    for name in &described {
        let d = db.description(name).map_err(|e| {
            fail(format!("SQLite table `{name}` has no matching Cairn table ({e}); nothing was written"))
        })?;
        let readings =
            readings(&conn, name, d).map_err(|e| fail(format!("table `{name}`: {e}; nothing was written")))?;
        total += conn
            .query_row(&format!("SELECT count(*) FROM {}", quote(name)), [], |r| r.get::<_, i64>(0))
            .map_err(sql)? as u64;
        plans.push((name.clone(), readings));
    }
    let bar = progress::bar(total, "import");
    let mut writes = Vec::new();
    for (name, readings) in &plans {
        let list: Vec<String> = readings.iter().map(|r| quote(&r.column.name)).collect();
        let mut select = conn
            .prepare(&format!("SELECT rowid, {} FROM {} ORDER BY rowid", list.join(", "), quote(name)))
            .map_err(sql)?;
        let mut rows = select.query([]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let rowid: i64 = row.get(0).map_err(sql)?;
            let mut key = Vec::new();
            let mut value = Vec::new();
            for (i, r) in readings.iter().enumerate() {
                let at = |e: String| {
                    fail(format!("table `{name}`, row {rowid}, column `{}`: {e}; nothing was written", r.column.name))
                };
                let cell: Value = row.get(i + 1).map_err(sql)?;
                let v = from_sql(&cell, r.column.encoding, r.column.nullable, &r.shape, &r.alone).map_err(at)?;
                encode_dynamic(&v, &r.alone).map_err(at)?;
                match r.column.part {
                    Part::Key => key.push((r.column.field.clone(), v)),
                    Part::Value => value.push((r.column.field.clone(), v)),
                }
            }
            writes.push(RawWrite { table: name.clone(), key: assemble(key), value: Some(assemble(value)) });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let spinner = progress::spinner("writing", false);
    let seq = db.commit(&writes, force)?;
    spinner.finish_and_clear();
    writeln!(
        out,
        "imported {} records of {} tables into {} (seq {seq}); records under the same keys were replaced",
        writes.len(),
        plans.len(),
        dir.display()
    )?;
    Ok(())
}

/// The columns of SQLite table `name` as `_cairn_columns` lists them, each with the type it must fit in `d`.
fn readings(conn: &Connection, name: &str, d: &cairn::TableDescription) -> Result<Vec<Reading>, String> {
    let mut s = conn
        .prepare(&format!(
            "SELECT column_name, part, field, encoding, nullable FROM {COLUMNS} WHERE table_name = ?1 ORDER BY position"
        ))
        .map_err(|e| e.to_string())?;
    let rows: Vec<(String, String, Option<String>, String, bool)> = s
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| format!("reading `{COLUMNS}`: {e}"))?;
    if !rows.iter().any(|r| r.1 == "key") {
        return Err(format!("`{COLUMNS}` lists no key column for it"));
    }
    rows.into_iter()
        .map(|(column, part, field, encoding, nullable)| {
            let bad = |what: &str| format!("column `{column}`: `{COLUMNS}` gives the unknown {what}");
            let part = Part::from_name(&part).ok_or_else(|| bad("part"))?;
            let encoding = Encoding::from_name(&encoding).ok_or_else(|| bad("encoding"))?;
            let whole = match part {
                Part::Key => &d.key,
                Part::Value => &d.value,
            };
            let shape = match &field {
                None => whole.root.clone(),
                Some(f) => struct_fields(&whole.root, &whole.types)
                    .and_then(|fields| fields.iter().find(|x| x.name == *f))
                    .map(|x| x.shape.clone())
                    .ok_or_else(|| {
                        format!(
                            "column `{column}` holds the {} field `{f}`, which the Cairn table's {} ({}) does not \
                             have",
                            part.name(),
                            part.name(),
                            whole.root
                        )
                    })?,
            };
            let alone = TypeDescription { root: shape.clone(), types: whole.types.clone() };
            Ok(Reading { column: Column { name: column, part, field, encoding, nullable }, shape, alone })
        })
        .collect()
}

/// A key or value from its columns: the one whole value, or a struct of its fields.
fn assemble(mut parts: Vec<(Option<String>, Dynamic)>) -> Dynamic {
    if parts.len() == 1 && parts[0].0.is_none() {
        return parts.remove(0).1;
    }
    Dynamic::Struct(parts.into_iter().map(|(f, v)| (f.unwrap_or_default(), v)).collect())
}

//! The commands that only read: `info`, `tables`, `schema`, `dump`, `verify`, `get`. They read the files as they
//! are, take no lock and write nothing (`cairn::inspect`).

use std::io::Write;
use std::path::Path;

use cairn::inspect::{InspectedTable, Inspection};

use crate::{fail, Failure, Format};
use crate::{progress, records};

/// `cairn info`.
pub(crate) fn info(out: &mut impl Write, dir: &Path) -> Result<(), Failure> {
    let db = crate::key::view(dir)?;
    writeln!(out, "database     {}", db.path.display())?;
    writeln!(out, "last seq     {}", db.last_seq)?;
    writeln!(out, "encryption   {}", if db.encrypted { "XChaCha20-Poly1305 (key file KEYS)" } else { "none" })?;
    match db.snapshot_seq {
        Some(seq) => writeln!(out, "snapshot     at seq {seq}")?,
        None => writeln!(out, "snapshot     none")?,
    }
    let versions: Vec<String> = db.schemas.keys().map(u32::to_string).collect();
    writeln!(out, "schemas      {}", if versions.is_empty() { "none stored".into() } else { versions.join(", ") })?;
    let total: u64 = db.files.iter().map(|(_, n)| n).sum();
    writeln!(out, "files        {} ({} bytes)", db.files.len(), total)?;
    for (path, n) in &db.files {
        writeln!(out, "  {:<40} {n}", path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into()))?;
    }
    if let Some((file, offset, why)) = &db.torn_tail {
        writeln!(out, "torn tail    {} at offset {offset}: {why} (left out; the next open cuts it)", file.display())?;
    }
    writeln!(out, "tables")?;
    for t in &db.tables {
        writeln!(out, "  {:<24} {:<8} {} records", t.name, kind(t), t.records.len())?;
    }
    Ok(())
}

/// `cairn tables`.
pub(crate) fn tables(out: &mut impl Write, dir: &Path) -> Result<(), Failure> {
    let db = crate::key::view(dir)?;
    for t in &db.tables {
        writeln!(out, "{}\t{}\t{}", t.name, kind(t), t.records.len())?;
    }
    Ok(())
}

/// `cairn schema`.
pub(crate) fn schema(out: &mut impl Write, dir: &Path, version: Option<u32>) -> Result<(), Failure> {
    let db = crate::key::view(dir)?;
    let (v, schema) = match version {
        Some(v) => (
            v,
            db.schemas.get(&v).ok_or_else(|| {
                fail(format!("schema version {v} is not stored in {}; `cairn info` lists the versions", dir.display()))
            })?,
        ),
        None => db.schemas.iter().next_back().map(|(v, s)| (*v, s)).ok_or_else(|| {
            fail(format!(
                "{} stores no schema (written before Cairn stored schemas): open it once with its program",
                dir.display()
            ))
        })?,
    };
    writeln!(out, "schema version {v}")?;
    for t in &schema.tables {
        let kind = if t.ordered { "ordered" } else { "hash" };
        writeln!(out, "\ntable {} ({kind})", t.name)?;
        if !t.old_names.is_empty() {
            writeln!(out, "  renamed from {}", t.old_names.join(", "))?;
        }
        for ix in &t.indexes {
            writeln!(out, "  index {}{}", ix.name, if ix.unique { " (unique)" } else { "" })?;
        }
        writeln!(out, "  key:   {}", indent(&t.key.to_string()))?;
        writeln!(out, "  value: {}", indent(&t.value.to_string()))?;
    }
    Ok(())
}

/// `cairn dump`.
pub(crate) fn dump(out: &mut impl Write, dir: &Path, table: Option<String>, format: Format) -> Result<(), Failure> {
    let db = crate::key::view(dir)?;
    let tables: Vec<&InspectedTable> = match &table {
        Some(name) => vec![find(&db, name)?],
        None => db.tables.iter().filter(|t| !t.name.contains('.')).collect(),
    };
    let bar = progress::bar(tables.iter().map(|t| t.records.len() as u64).sum(), "dump");
    for t in tables {
        for (key, record) in &t.records {
            bar.inc(1);
            let k = db.decode_key(t, key).map_err(|e| fail(format!("table `{}`: key: {e}", t.name)))?;
            let v = db.decode_value(t, record).map_err(|e| fail(format!("table `{}`: value of {k}: {e}", t.name)))?;
            let (Some(kd), Some(vd)) = (db.newest_description(t), db.description(t, record.schema_version)) else {
                return Err(fail(format!("table `{}`: no stored description of its records", t.name)));
            };
            let line = records::render(format, &t.name, (&k, &kd.key), record.schema_version, (&v, &vd.value))
                .map_err(|e| fail(format!("table `{}`: {k}: {e}", t.name)))?;
            writeln!(out, "{line}")?;
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// `cairn verify`.
pub(crate) fn verify(out: &mut impl Write, dir: &Path) -> Result<(), Failure> {
    let db = match crate::key::view(dir) {
        Err(e @ cairn::Error::Corrupt(_)) => return Err(Failure { message: e.to_string(), code: 4 }),
        other => other?,
    };
    let mut bad = 0usize;
    let mut records = 0usize;
    let described: Vec<&InspectedTable> = db.tables.iter().filter(|t| db.newest_description(t).is_some()).collect();
    let bar = progress::bar(described.iter().map(|t| t.records.len() as u64).sum(), "verify");
    for t in described {
        for (key, record) in &t.records {
            records += 1;
            bar.inc(1);
            let checked = db.decode_key(t, key).and_then(|_| db.decode_value(t, record).map(|_| ()));
            if let Err(e) = checked {
                bad += 1;
                writeln!(out, "table `{}`, record of schema version {}: {e}", t.name, record.schema_version)?;
            }
        }
    }
    bar.finish_and_clear();
    if let Some((file, offset, why)) = &db.torn_tail {
        writeln!(
            out,
            "torn tail: {} at offset {offset}: {why} (an interrupted write; the next open cuts it)",
            file.display()
        )?;
    }
    if bad > 0 {
        return Err(Failure { message: format!("{bad} of {records} records do not decode"), code: 4 });
    }
    writeln!(out, "ok: {records} records in {} tables, checksums whole, last seq {}", db.tables.len(), db.last_seq)?;
    Ok(())
}

/// `cairn get`.
pub(crate) fn get(out: &mut impl Write, dir: &Path, table: String, key: String) -> Result<(), Failure> {
    let db = crate::key::view(dir)?;
    let t = find(&db, &table)?;
    let wanted: serde_json::Value = serde_json::from_str(&key).map_err(|e| Failure {
        message: format!("the key `{key}` is not JSON ({e}); quote strings: '\"alice\"'"),
        code: 2,
    })?;
    for (k, record) in &t.records {
        let decoded = db.decode_key(t, k).map_err(|e| fail(format!("table `{}`: key: {e}", t.name)))?;
        if serde_json::to_value(&decoded).ok().as_ref() == Some(&wanted) {
            let v = db.decode_value(t, record).map_err(|e| fail(format!("table `{}`: value: {e}", t.name)))?;
            writeln!(out, "{}", serde_json::to_string(&v).map_err(|e| fail(e.to_string()))?)?;
            return Ok(());
        }
    }
    Err(Failure { message: format!("table `{table}` has no record with key {key}"), code: 3 })
}

pub(crate) fn find<'a>(db: &'a Inspection, name: &str) -> Result<&'a InspectedTable, Failure> {
    db.table(name).ok_or_else(|| {
        let names: Vec<&str> = db.tables.iter().map(|t| t.name.as_str()).collect();
        fail(format!("no table `{name}` in {}; its tables are: {}", db.path.display(), names.join(", ")))
    })
}

fn kind(t: &InspectedTable) -> &'static str {
    match t.kind {
        cairn::TableKind::Ordered => "ordered",
        _ => "hash",
    }
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n         ")
}

//! Schema evolution at open: the schema versions stored in the database, the running schema's description, and how
//! each table reads the records of each version.
//!
//! The database stores every schema that ever opened it, numbered from 1 (`docs/format.md`: define-schema operations
//! in the log and in the snapshot's catalog), and every put says which version encoded it. At open, the running
//! schema is described from its Rust types (`crate::describe`); if an identical description is stored, its number
//! is reused, otherwise it becomes the next version, written with the open's first transaction.
//!
//! Each table then gets a [`Plan`] per stored version: `Fast` (plain postcard, as if nothing changed) when that
//! version described the table's key and value exactly as the running code does, `Resolve` (decode by the writer's
//! description, match fields and variants by name) when they differ compatibly, and `Refuse` when they do not. A
//! plan is only used when a record of its version is met, so a version whose records are all gone costs nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::describe::{check_compatible, check_key_compatible, TypeDescription};
use crate::error::{Error, Result};
use crate::schema::{TableDef, TableKind};

/// A schema as the database stores it: every table with its key and value types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaDescription {
    /// The tables, in declaration order (Cairn's own, such as `cairn.ids`, last).
    pub tables: Vec<TableDescription>,
}

/// One table of a stored schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDescription {
    /// The table's name.
    pub name: String,
    /// Its earlier names (`#[renamed_from(..)]`).
    pub old_names: Vec<String>,
    /// True for an ordered table, false for a hash table.
    pub ordered: bool,
    /// The key type.
    pub key: TypeDescription,
    /// The value type.
    pub value: TypeDescription,
    /// The secondary indexes.
    pub indexes: Vec<IndexDescription>,
}

/// One secondary index of a stored table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDescription {
    /// The index's name.
    pub name: String,
    /// Whether it is unique.
    pub unique: bool,
}

impl TableDescription {
    /// True if `name` is this table's name or one of its earlier names.
    pub(crate) fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.old_names.iter().any(|n| n == name)
    }
}

/// How a table reads the values of records written by one schema version.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Plain postcard into the table's type.
    Fast,
    /// Decode by the writer's description of the value and resolve by name.
    Resolve(Arc<TypeDescription>),
    /// The writer's types cannot be read as the running ones.
    Refuse(Box<Refusal>),
    /// The version is not defined in the database (damage).
    Undefined,
}

/// Why a version's records cannot be read: the fields of [`Error::IncompatibleSchema`].
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    path: String,
    pub(crate) writer_version: u32,
    writer: String,
    reader_version: u32,
    reader: String,
}

impl Refusal {
    pub(crate) fn error(&self, table: &str) -> Error {
        Error::IncompatibleSchema {
            table: table.to_string(),
            path: self.path.clone(),
            writer_version: self.writer_version,
            writer: self.writer.clone(),
            reader_version: self.reader_version,
            reader: self.reader.clone(),
        }
    }
}

/// One table's plans, by schema version.
#[derive(Debug)]
pub(crate) struct TablePlans {
    /// Index = schema version; version 0 (records written before schemas were stored) is always `Fast`.
    by_version: Vec<Plan>,
}

impl TablePlans {
    /// The plan for records of `version`.
    pub(crate) fn get(&self, version: u32) -> &Plan {
        self.by_version.get(version as usize).unwrap_or(&Plan::Undefined)
    }

    /// Plans that read every version as the running types.
    #[cfg(test)]
    pub(crate) fn fast() -> Arc<Self> {
        Arc::new(TablePlans { by_version: vec![Plan::Fast] })
    }
}

/// The outcome of matching the running schema against the stored versions.
#[derive(Debug)]
pub(crate) struct Versions {
    /// The running schema's version.
    pub(crate) current: u32,
    /// Its encoded description, when it is new and must be written at open.
    pub(crate) define: Option<Vec<u8>>,
    /// Every stored version (and the running one), decoded.
    pub(crate) stored: BTreeMap<u32, Arc<SchemaDescription>>,
    /// Per table of `defs`, in order.
    pub(crate) plans: Vec<Arc<TablePlans>>,
}

/// Describes the running schema's tables.
pub(crate) fn describe_schema(defs: &[TableDef]) -> Result<SchemaDescription> {
    let mut tables = Vec::with_capacity(defs.len());
    for def in defs {
        let (key, value) = (def.describe)().map_err(|(what, e)| Error::Describe {
            table: def.name.to_string(),
            what,
            message: e.message,
        })?;
        tables.push(TableDescription {
            name: def.name.to_string(),
            old_names: def.old_names.iter().map(|n| n.to_string()).collect(),
            ordered: def.kind == TableKind::Ordered,
            key,
            value,
            indexes: def
                .indexes
                .iter()
                .map(|&(name, unique)| IndexDescription { name: name.to_string(), unique })
                .collect(),
        });
    }
    Ok(SchemaDescription { tables })
}

/// Matches the running schema (`defs`, described as `running`) against the versions stored in the database at
/// `dir` (`raw`: version and encoded description, in any order, duplicates allowed).
pub(crate) fn resolve(
    dir: &Path,
    defs: &[TableDef],
    running: SchemaDescription,
    raw: &[(u32, &[u8])],
) -> Result<Versions> {
    let mut stored: BTreeMap<u32, Arc<SchemaDescription>> = BTreeMap::new();
    for &(version, bytes) in raw {
        if version == 0 || stored.contains_key(&version) {
            continue;
        }
        let description = decode_description(bytes).map_err(|message| Error::SchemaUnreadable {
            path: dir.to_path_buf(),
            version,
            message,
        })?;
        stored.insert(version, Arc::new(description));
    }
    let (current, define) = match stored.iter().find(|(_, d)| ***d == running) {
        Some((&v, _)) => (v, None),
        None => {
            let v = stored.keys().next_back().map_or(1, |v| v + 1);
            let bytes = postcard::to_stdvec(&running).expect("a schema description always encodes");
            stored.insert(v, Arc::new(running.clone()));
            (v, Some(bytes))
        }
    };
    let max = stored.keys().next_back().copied().unwrap_or(current);
    let plans = defs
        .iter()
        .zip(&running.tables)
        .map(|(def, reader)| {
            let mut by_version = Vec::with_capacity(max as usize + 1);
            by_version.push(Plan::Fast);
            for v in 1..=max {
                by_version.push(match stored.get(&v) {
                    None => Plan::Undefined,
                    Some(schema) => plan(def, reader, schema, v, current),
                });
            }
            Arc::new(TablePlans { by_version })
        })
        .collect();
    Ok(Versions { current, define, stored, plans })
}

/// How `reader` (the running description of `def`) reads records that schema version `version` wrote.
fn plan(def: &TableDef, reader: &TableDescription, schema: &SchemaDescription, version: u32, current: u32) -> Plan {
    let writer = schema
        .tables
        .iter()
        .find(|t| t.name == def.name)
        .or_else(|| schema.tables.iter().find(|t| def.old_names.iter().any(|&n| t.answers_to(n))))
        .or_else(|| schema.tables.iter().find(|t| t.answers_to(def.name)));
    let Some(writer) = writer else {
        // That version did not have the table: it wrote none of its records.
        return Plan::Fast;
    };
    let refuse = |part: &str, e: crate::describe::Incompatibility| {
        Plan::Refuse(Box::new(Refusal {
            // The whole key or value is "key" or "value", a place inside it "value: Account.balance".
            path: if e.path.is_empty() || e.path == "(root)" {
                part.to_string()
            } else {
                format!("{part}: {}", e.path)
            },
            writer_version: version,
            writer: e.writer,
            reader_version: current,
            reader: e.reader,
        }))
    };
    if let Err(e) = check_key_compatible(&writer.key, &reader.key) {
        return refuse("key", e);
    }
    if writer.value == reader.value {
        return Plan::Fast;
    }
    match check_compatible(&writer.value, &reader.value) {
        Ok(()) => Plan::Resolve(Arc::new(writer.value.clone())),
        Err(e) => refuse("value", e),
    }
}

/// Decodes a stored schema description.
pub(crate) fn decode_description(bytes: &[u8]) -> std::result::Result<SchemaDescription, String> {
    match postcard::take_from_bytes::<SchemaDescription>(bytes) {
        Ok((d, [])) => Ok(d),
        Ok((_, rest)) => Err(format!("{} bytes left over", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

//! `cairn export --sqlite` and `cairn import --sqlite`: every table of a database as a SQLite table, and back.
//!
//! The SQLite file holds one table per Cairn table (Cairn's own tables, such as `cairn.ids`, are left out: import
//! moves an auto-id table's counter past every id it writes), named as the newest schema names it, with a PRIMARY
//! KEY on the key's columns. `mapping` says which columns a table gets and how each type is stored. Two tables
//! describe the rest, so import reads every column exactly as export wrote it:
//!
//! - `_cairn_tables(name, kind, schema_version, key_type, value_type, records)`: one row per exported table.
//! - `_cairn_columns(table_name, position, column_name, part, field, encoding, nullable)`: one row per column:
//!   whether it holds the key or the value, which struct field (NULL: the whole key or value), and its encoding.

mod export;
mod import;
mod mapping;

pub(crate) use export::export;
pub(crate) use import::import;

/// The metadata tables' names; no Cairn table may take them.
const TABLES: &str = "_cairn_tables";
const COLUMNS: &str = "_cairn_columns";

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

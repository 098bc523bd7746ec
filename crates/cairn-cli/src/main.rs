//! `cairn`: look into any Cairn database without the program that wrote it. Records are decoded by the schema the
//! database stores (docs/schema-evolution.md). The tool reads the files as they are and never writes.
//!
//! Exit codes: 0 success, 1 an error (printed on stderr), 2 a usage error, 3 nothing found (`get`), 4 damage found
//! (`verify`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cairn::inspect::{InspectedTable, Inspection};
use clap::{Parser, Subcommand, ValueEnum};

/// Look into a Cairn database: its tables, schema and records.
#[derive(Parser)]
#[command(name = "cairn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The database at a glance: files, sequence numbers, schema versions, tables and record counts.
    Info {
        /// The database directory.
        dir: PathBuf,
    },
    /// One line per table: name, kind, records.
    Tables {
        /// The database directory.
        dir: PathBuf,
    },
    /// The stored schema: every table's key and value types, as the newest (or the given) version describes them.
    Schema {
        /// The database directory.
        dir: PathBuf,
        /// A schema version to show instead of the newest.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Every record of one table, or of all tables (Cairn's own left out), in stored order (by encoded key): JSON
    /// lines (for pipes) or text.
    Dump {
        /// The database directory.
        dir: PathBuf,
        /// Only this table.
        table: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Checks every checksum of the snapshot and the log, the order and counts of the snapshot's records, and that
    /// every record decodes by its schema version. Exit code 4 when anything is damaged, naming file and offset.
    Verify {
        /// The database directory.
        dir: PathBuf,
    },
    /// The value of one record, as JSON. Exit code 3 when there is none.
    Get {
        /// The database directory.
        dir: PathBuf,
        /// The table.
        table: String,
        /// The key, as JSON (`42`, `"alice"`, `[1, 2]`, `{"field": 1}`).
        key: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON object per line: `{"table", "key", "schema_version", "value"}`.
    Json,
    /// `table key => value`, Rust-like.
    Text,
}

/// What a command failed with, and the exit code that says so.
struct Failure {
    message: String,
    code: u8,
}

impl From<cairn::Error> for Failure {
    fn from(e: cairn::Error) -> Self {
        Failure { message: e.to_string(), code: 1 }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure { message: format!("writing the output: {e}"), code: 1 }
    }
}

fn fail(message: impl Into<String>) -> Failure {
    Failure { message: message.into(), code: 1 }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`cairn dump | head`) is not an error.
        Err(f) if f.message.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("cairn: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(command: Command) -> Result<(), Failure> {
    let out = std::io::stdout();
    let mut out = out.lock();
    match command {
        Command::Info { dir } => {
            let db = Inspection::open(&dir)?;
            writeln!(out, "database     {}", db.path.display())?;
            writeln!(out, "last seq     {}", db.last_seq)?;
            match db.snapshot_seq {
                Some(seq) => writeln!(out, "snapshot     at seq {seq}")?,
                None => writeln!(out, "snapshot     none")?,
            }
            let versions: Vec<String> = db.schemas.keys().map(u32::to_string).collect();
            writeln!(
                out,
                "schemas      {}",
                if versions.is_empty() { "none stored".into() } else { versions.join(", ") }
            )?;
            let total: u64 = db.files.iter().map(|(_, n)| n).sum();
            writeln!(out, "files        {} ({} bytes)", db.files.len(), total)?;
            for (path, n) in &db.files {
                writeln!(
                    out,
                    "  {:<40} {n}",
                    path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into())
                )?;
            }
            if let Some((file, offset, why)) = &db.torn_tail {
                writeln!(
                    out,
                    "torn tail    {} at offset {offset}: {why} (left out; the next open cuts it)",
                    file.display()
                )?;
            }
            writeln!(out, "tables")?;
            for t in &db.tables {
                writeln!(out, "  {:<24} {:<8} {} records", t.name, kind(t), t.records.len())?;
            }
        }
        Command::Tables { dir } => {
            let db = Inspection::open(&dir)?;
            for t in &db.tables {
                writeln!(out, "{}\t{}\t{}", t.name, kind(t), t.records.len())?;
            }
        }
        Command::Schema { dir, version } => {
            let db = Inspection::open(&dir)?;
            let (v, schema) = match version {
                Some(v) => (
                    v,
                    db.schemas.get(&v).ok_or_else(|| {
                        fail(format!(
                            "schema version {v} is not stored in {}; `cairn info` lists the versions",
                            dir.display()
                        ))
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
        }
        Command::Dump { dir, table, format } => {
            let db = Inspection::open(&dir)?;
            let tables: Vec<&InspectedTable> = match &table {
                Some(name) => vec![find(&db, name)?],
                None => db.tables.iter().filter(|t| !t.name.contains('.')).collect(),
            };
            for t in tables {
                for (key, record) in &t.records {
                    let k = db.decode_key(t, key).map_err(|e| fail(format!("table `{}`: key: {e}", t.name)))?;
                    let v = db
                        .decode_value(t, record)
                        .map_err(|e| fail(format!("table `{}`: value of {k}: {e}", t.name)))?;
                    match format {
                        Format::Json => {
                            let line = serde_json::json!({
                                "table": t.name, "key": k, "schema_version": record.schema_version, "value": v,
                            });
                            writeln!(out, "{line}")?;
                        }
                        Format::Text => writeln!(out, "{} {k} => {v}", t.name)?,
                    }
                }
            }
        }
        Command::Verify { dir } => {
            let db = match Inspection::open(&dir) {
                Err(e @ cairn::Error::Corrupt(_)) => return Err(Failure { message: e.to_string(), code: 4 }),
                other => other?,
            };
            let mut bad = 0usize;
            let mut records = 0usize;
            for t in db.tables.iter().filter(|t| db.newest_description(t).is_some()) {
                for (key, record) in &t.records {
                    records += 1;
                    let checked = db.decode_key(t, key).and_then(|_| db.decode_value(t, record).map(|_| ()));
                    if let Err(e) = checked {
                        bad += 1;
                        writeln!(out, "table `{}`, record of schema version {}: {e}", t.name, record.schema_version)?;
                    }
                }
            }
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
            writeln!(
                out,
                "ok: {records} records in {} tables, checksums whole, last seq {}",
                db.tables.len(),
                db.last_seq
            )?;
        }
        Command::Get { dir, table, key } => {
            let db = Inspection::open(&dir)?;
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
            return Err(Failure { message: format!("table `{table}` has no record with key {key}"), code: 3 });
        }
    }
    Ok(())
}

fn find<'a>(db: &'a Inspection, name: &str) -> Result<&'a InspectedTable, Failure> {
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

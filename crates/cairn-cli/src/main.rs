//! `cairn`: look into, edit and maintain any Cairn database without the program that wrote it. Records are read and
//! written by the schema the database stores (docs/schema-evolution.md).
//!
//! - `read`: `info`, `tables`, `schema`, `dump`, `verify`, `get` read the files as they are, with no lock.
//! - `write`: `load`, `edit` write records, encoded by the newest stored schema version (`cairn::raw`).
//! - `admin`: `compact`, `backup`, `restore` through the engine's own compaction and backup, and `salvage`.
//! - `sqlite`: `export --sqlite` (reads like `dump`) and `import --sqlite` (writes like `load`).
//!
//! Long commands show progress on stderr when it is a terminal (`progress`), and nothing in a pipe.
//!
//! Exit codes: 0 success, 1 an error (printed on stderr, saying what to do), 2 a usage error, 3 nothing found
//! (`get`, `edit`), 4 damage found (`verify`, `salvage`).

mod admin;
mod key;
mod progress;
mod read;
mod records;
mod sqlite;
mod write;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// Look into, edit and maintain a Cairn database by the schema it stores: its tables, schema and records.
///
/// Exit codes: 0 success, 1 an error, 2 a usage error, 3 nothing found (get, edit), 4 damage found (verify,
/// salvage).
#[derive(Parser)]
#[command(name = "cairn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// For an encrypted database: a file holding its 32-byte key (raw, or as 64 hex digits). Without it, the
    /// passphrase in the environment variable `CAIRN_PASSPHRASE` is used, if set.
    #[arg(long, global = true, value_name = "PATH", env = "CAIRN_KEY_FILE")]
    key_file: Option<PathBuf>,
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
    /// lines (for pipes), RON lines or text. Each value is shown as the schema version that wrote it has it.
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
    /// Writes records from stdin into one table, in one transaction: one per line, JSON (`{"key": K, "value": V}`,
    /// as `dump` writes them) or RON (`(key: K, value: V)`). Every record is checked against the newest stored
    /// schema version and encoded by it; one that does not fit fails the whole load, naming the line and the field.
    /// Takes the database's lock: not while a program has it open.
    Load {
        /// The database directory.
        dir: PathBuf,
        /// The table.
        table: String,
        /// Input format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Write even to a table with a unique index (only the program computes index keys, so a duplicate would
        /// make its next open fail), and under ids an auto-id table handed out and removed.
        #[arg(long)]
        force: bool,
    },
    /// Opens one record as RON in $EDITOR and writes it back, in one transaction, when saved. An invalid edit is shown
    /// again with the error as a comment; nothing is written until it is valid. Exit code 3 when there is no record.
    Edit {
        /// The database directory.
        dir: PathBuf,
        /// The table.
        table: String,
        /// The key, as JSON (`42`, `"alice"`).
        key: String,
        /// As for `load`.
        #[arg(long)]
        force: bool,
    },
    /// Folds the log into a new snapshot and removes the log before it (the engine's compaction).
    Compact {
        /// The database directory.
        dir: PathBuf,
    },
    /// Writes a consistent copy of the database into OUT, which must not exist or be empty; the copy appears there
    /// whole or not at all. The copy is an ordinary database directory. Works while programs have the database open
    /// in shared mode (their writers pause during the copy), not while one has it open exclusively.
    Backup {
        /// The database directory.
        dir: PathBuf,
        /// Where the copy goes.
        out: PathBuf,
    },
    /// Copies a backup into DIR, which must not exist or be empty: whole or not at all. The backup is checked first.
    Restore {
        /// The backup (a database directory).
        backup: PathBuf,
        /// Where the database goes.
        dir: PathBuf,
    },
    /// Writes everything readable of a damaged database into a new database at OUT (which must not exist or be
    /// empty) and lists what was lost: file, offset, which transactions or records. Reads the source only. Exit code
    /// 4 when anything was lost.
    Salvage {
        /// The damaged database directory.
        dir: PathBuf,
        /// Where the new database goes.
        out: PathBuf,
    },
    /// Writes every table (Cairn's own, such as `cairn.ids`, left out) into a new SQLite file, one SQLite table
    /// each, in one transaction: flat key and value fields as typed columns, the rest as JSON text, and the tables
    /// `_cairn_tables` and `_cairn_columns` saying how each column maps, for `import`. Integers past i64 are
    /// decimal text. See docs/cli.md. Reads the files as they are, like `dump`.
    Export {
        /// The database directory.
        dir: PathBuf,
        /// The SQLite file to write; it must not exist.
        #[arg(long, value_name = "OUT")]
        sqlite: PathBuf,
    },
    /// Writes every row of a SQLite file `export` wrote into the database, in one transaction, each checked against
    /// the newest stored schema; a row that does not fit fails the import, naming table, row and column, and
    /// nothing is written. A record under a key the database holds is replaced; other records are kept. Takes the
    /// database's lock.
    Import {
        /// The database directory (an existing database: its program created it and its schema).
        dir: PathBuf,
        /// The SQLite file to read.
        #[arg(long, value_name = "IN")]
        sqlite: PathBuf,
        /// As for `load`.
        #[arg(long)]
        force: bool,
    },
    /// Re-encrypts an encrypted database under a new key, through a compaction (crash-safe: until it finishes,
    /// the old key and the new one both open the database; run it again to finish). Give the current key as for
    /// every command (`--key-file` or `CAIRN_PASSPHRASE`) and the new one here. Takes the database's lock.
    Rekey {
        /// The database directory.
        dir: PathBuf,
        /// A file holding the new 32-byte key (raw, or as 64 hex digits).
        #[arg(
            long,
            value_name = "PATH",
            conflicts_with = "new_passphrase_env",
            required_unless_present = "new_passphrase_env"
        )]
        new_key_file: Option<PathBuf>,
        /// The name of an environment variable holding the new passphrase (never on the command line, where other
        /// users could read it).
        #[arg(long, value_name = "VAR")]
        new_passphrase_env: Option<String>,
    },
    /// Prints a shell completion script: `cairn completions bash > /etc/bash_completion.d/cairn`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// One JSON object per line: `{"table", "key", "schema_version", "value"}`.
    Json,
    /// One RON record per line: `(table: .., key: .., schema_version: .., value: ..)`.
    Ron,
    /// `table key => value`, Rust-like.
    Text,
}

/// What a command failed with, and the exit code that says so.
pub(crate) struct Failure {
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

pub(crate) fn fail(message: impl Into<String>) -> Failure {
    Failure { message: message.into(), code: 1 }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = key::choose(cli.key_file.as_deref()).and_then(|()| run(cli.command));
    match result {
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
        Command::Info { dir } => read::info(&mut out, &dir),
        Command::Tables { dir } => read::tables(&mut out, &dir),
        Command::Schema { dir, version } => read::schema(&mut out, &dir, version),
        Command::Dump { dir, table, format } => read::dump(&mut out, &dir, table, format),
        Command::Verify { dir } => read::verify(&mut out, &dir),
        Command::Get { dir, table, key } => read::get(&mut out, &dir, table, key),
        Command::Load { dir, table, format, force } => {
            write::load(&mut out, std::io::stdin().lock(), &dir, &table, format, force)
        }
        Command::Edit { dir, table, key, force } => write::edit(&mut out, &dir, &table, &key, force),
        Command::Compact { dir } => admin::compact(&mut out, &dir),
        Command::Backup { dir, out: target } => admin::backup(&mut out, &dir, &target),
        Command::Restore { backup, dir } => admin::restore(&mut out, &backup, &dir),
        Command::Salvage { dir, out: target } => admin::salvage(&mut out, &dir, &target),
        Command::Export { dir, sqlite } => sqlite::export(&mut out, &dir, &sqlite),
        Command::Import { dir, sqlite, force } => sqlite::import(&mut out, &dir, &sqlite, force),
        Command::Rekey { dir, new_key_file, new_passphrase_env } => {
            admin::rekey(&mut out, &dir, key::read(new_key_file.as_deref(), new_passphrase_env.as_deref())?)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cairn", &mut out);
            Ok(())
        }
    }
}

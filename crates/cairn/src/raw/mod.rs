//! Writing any Cairn database without the program that wrote it: what `cairn load`, `cairn edit`, `cairn compact`,
//! `cairn backup` and `cairn salvage` (`salvage.rs`) are built on.
//!
//! A [`RawDb`] opens a directory as the program would: it takes the exclusive lock (so [`Error::Locked`] while an
//! application has it open), recovers from the newest snapshot and the log, and cuts a torn tail. It keeps no
//! in-memory tables: records stay the bytes of an [`Inspection`]. Its commits go through the engine's ordinary
//! commit pipeline as ordinary frames, so recovery, compaction, backup and the change feed see nothing unusual,
//! and its compaction and backup are the engine's own.
//!
//! Every record it writes is encoded by the **newest stored schema version**, and its frames name that version as
//! their writer, exactly as the program of that version would encode them (`describe::encode_dynamic`). It never
//! defines a schema version and never changes the format. Before anything is written, each write is checked:
//!
//! - **Unique indexes.** Index keys are computed by the program's closures, which a tool does not have, so a write
//!   could give two records one unique key, and the program's next open would fail with
//!   [`Error::IndexCollision`]. Writes to a table whose newest description has a unique index are refused unless
//!   forced. Non-unique indexes need nothing: indexes are rebuilt at open.
//! - **Auto ids.** An auto-id table (an ordered table keyed by `u64` whose counter is in `cairn.ids`) must never
//!   hand out an id twice. A put of a new key at or above the counter moves the counter past it, in the same
//!   transaction; a put of a new key below the counter (an id handed out before and removed since) is refused
//!   unless forced. A table with no counter yet needs nothing: the program never hands out an id below its largest
//!   key plus one.

mod open;
mod salvage;

pub use salvage::{salvage, salvage_keyed, Loss, Salvaged};

use std::path::Path;

use crate::db::Db;
use crate::describe::{encode_dynamic, Dynamic, Shape};
use crate::error::{Error, Result};
use crate::evolve::TableDescription;
use crate::inspect::{Inspection, StoredRecord};
use crate::options::Options;
use crate::seal::EncryptionKey;
use crate::Backup;

/// The name of Cairn's table of id counters (`crate::id`).
const IDS: &str = "cairn.ids";

/// A database opened without its schema, for writing records as values of its stored types. See the module docs.
#[derive(Debug)]
pub struct RawDb {
    db: Db,
    view: Inspection,
}

/// One write of a [`RawDb::commit`]: a put (`value: Some`) or a removal of `key` in `table`, as values of the
/// newest stored description (read them with [`describe::deserialize_dynamic`](crate::describe::deserialize_dynamic)
/// by [`RawDb::description`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RawWrite {
    /// The table, by its name on disk or in the newest schema.
    pub table: String,
    /// The key.
    pub key: Dynamic,
    /// The new value, or `None` to remove the record.
    pub value: Option<Dynamic>,
}

impl RawDb {
    /// Opens the existing database in `dir`, taking its lock ([`Error::Locked`] if a program has it open).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_keyed(dir, None)
    }

    /// Opens the existing database in `dir` as [`open`](Self::open) does, with `key` if it is encrypted (see
    /// [`Builder::encryption`](crate::Builder::encryption) for the errors of a missing or wrong key).
    pub fn open_keyed(dir: impl AsRef<Path>, key: Option<EncryptionKey>) -> Result<Self> {
        let options = Options { compact_after: None, encryption: key, ..Options::default() };
        let (db, view) = open::open(options, dir.as_ref())?;
        Ok(RawDb { db, view })
    }

    /// What the database holds, as of this handle's last commit.
    pub fn view(&self) -> &Inspection {
        &self.view
    }

    /// The schema version every record written by this handle is encoded by: the newest stored one.
    pub fn schema_version(&self) -> Option<u32> {
        self.view.schemas.keys().next_back().copied()
    }

    /// How the newest schema describes `table`: its key and value types, the form writes must take.
    pub fn description(&self, table: &str) -> Result<&TableDescription> {
        let t = self.view.table(table).ok_or_else(|| refused(table, no_table(&self.view)))?;
        self.view.newest_description(t).ok_or_else(|| {
            refused(
                table,
                "the database stores no description of it (written before Cairn stored schemas, or a table of \
                 Cairn's own): open it once with its program, then try again"
                    .into(),
            )
        })
    }

    /// Validates every write against the newest stored schema, then commits them all as one transaction (durable
    /// when it returns). Returns its sequence number, or the last one if there was nothing to write. `force` lets
    /// through writes to tables with unique indexes and ids below an auto-id table's counter (see the module docs).
    pub fn commit(&mut self, writes: &[RawWrite], force: bool) -> Result<u64> {
        let mut ops: Vec<(u32, Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(writes.len());
        let mut counters: Vec<(String, u64)> = Vec::new();
        for w in writes {
            let d = self.description(&w.table)?;
            let encode = |what: &str, v: &Dynamic, desc| {
                encode_dynamic(v, desc).map_err(|e| refused(&w.table, format!("the {what} {v} does not fit: {e}")))
            };
            let key = encode("key", &w.key, &d.key)?;
            let value = w.value.as_ref().map(|v| encode("value", v, &d.value)).transpose()?;
            if let Some(ix) = d.indexes.iter().find(|ix| ix.unique).filter(|_| !force) {
                return Err(refused(
                    &w.table,
                    format!(
                        "it has the unique index `{}`, whose keys only the program can compute; a write here could \
                         give two records one key and make the program's next open fail. Force it (`--force`) if \
                         you know the write keeps the index unique",
                        ix.name
                    ),
                ));
            }
            let t = self.view.table(&w.table).ok_or_else(|| refused(&w.table, no_table(&self.view)))?;
            if let (Some(_), true, Dynamic::U64(id)) = (&value, d.ordered && d.key.root == Shape::U64, &w.key) {
                if let Some(next) = self.counter(&t.name, &counters) {
                    let exists = t.records.contains_key(&key);
                    if !exists && *id < next && !force {
                        return Err(refused(
                            &w.table,
                            format!(
                                "id {id} was handed out before (the next id is {next}) and its record was removed; \
                                 an id is never reused. Insert it under a new id, or force it (`--force`)"
                            ),
                        ));
                    }
                    if *id >= next {
                        counters.retain(|(name, _)| *name != t.name);
                        counters.push((t.name.clone(), id.saturating_add(1)));
                    }
                }
            }
            ops.push((t.id, key, value));
        }
        let ids = self.view.table(IDS).map(|t| t.id);
        for (name, next) in &counters {
            if let Some(ids) = ids {
                let key = postcard::to_stdvec(name).map_err(|e| refused(IDS, e.to_string()))?;
                ops.push((ids, key, Some(postcard::to_stdvec(next).map_err(|e| refused(IDS, e.to_string()))?)));
            }
        }
        if ops.is_empty() {
            return Ok(self.db.last_seq());
        }
        if self.schema_version().is_none() {
            return Err(refused(&writes[0].table, "the database stores no schema to encode records by".into()));
        }
        self.db.inner.write(None, |tx| {
            for (table, key, value) in &ops {
                tx.put_encoded(*table, key, value.as_deref());
            }
            Ok::<_, Error>(())
        })?;
        let version = self.schema_version().unwrap_or(0);
        for (table, key, value) in ops {
            if let Some(t) = self.view.tables.iter_mut().find(|t| t.id == table) {
                match value {
                    Some(value) => t.records.insert(key, StoredRecord { schema_version: version, value }),
                    None => t.records.remove(&key),
                };
            }
        }
        self.view.last_seq = self.db.last_seq();
        Ok(self.view.last_seq)
    }

    /// The next id of auto-id table `name`: as this commit moved it, else as stored.
    fn counter(&self, name: &str, moved: &[(String, u64)]) -> Option<u64> {
        if let Some((_, next)) = moved.iter().find(|(n, _)| n == name) {
            return Some(*next);
        }
        let ids = self.view.table(IDS)?;
        let record = ids.records.get(&postcard::to_stdvec(name).ok()?)?;
        postcard::from_bytes(&record.value).ok()
    }

    /// Re-encrypts the database under `key` (the engine's key rotation, [`Db::rotate_key`](crate::Db::rotate_key)).
    pub fn rotate_key(&self, key: EncryptionKey) -> Result<()> {
        self.db.rotate_key(key)
    }

    /// Folds the log into a new snapshot now (the engine's compaction).
    pub fn compact(&self) -> Result<()> {
        self.db.compact()
    }

    /// Writes a consistent copy into `dir`, which must not exist or be empty (the engine's backup).
    pub fn backup_to(&self, dir: impl AsRef<Path>) -> Result<Backup> {
        self.db.backup_to(dir)
    }

    /// Backs up the database in `dir` into `out` whoever has it open: exclusively (as [`backup_to`](Self::backup_to)
    /// on a handle of its own), or, while programs have it open in shared mode, by joining them in shared mode for
    /// the copy. Writers of those programs pause while the log is rolled and the files copied (the copy holds the
    /// writer lock throughout, as a shared-mode backup does). Fails with [`Error::Locked`] while a program has it
    /// open exclusively.
    pub fn backup(dir: impl AsRef<Path>, out: impl AsRef<Path>, key: Option<EncryptionKey>) -> Result<Backup> {
        let dir = dir.as_ref();
        let options = |mode| Options { compact_after: None, encryption: key.clone(), mode, ..Options::default() };
        match open::open(options(crate::Mode::Exclusive), dir) {
            Ok((db, _)) => db.backup_to(out),
            Err(Error::LockedShared { .. }) => open::open(options(crate::Mode::Shared), dir)?.0.backup_to(out),
            Err(e) => Err(e),
        }
    }

    /// The sequence number of the last commit.
    pub fn last_seq(&self) -> u64 {
        self.db.last_seq()
    }
}

fn refused(table: &str, problem: String) -> Error {
    Error::RawWrite { table: table.to_string(), problem }
}

fn no_table(view: &Inspection) -> String {
    let names: Vec<&str> = view.tables.iter().map(|t| t.name.as_str()).filter(|n| !n.contains('.')).collect();
    format!("no such table in {}; its tables are: {}", view.path.display(), names.join(", "))
}

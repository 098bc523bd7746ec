//! Reading any Cairn database without the program that wrote it: its tables, records and schema versions, decoded
//! by the schema the database stores (see `docs/schema-evolution.md`). What the `cairn` command-line tool is built
//! on.
//!
//! An [`Inspection`] is a read-only view of the files as they are when it is taken: the newest snapshot plus the
//! log after it, each record kept as its stored bytes with the schema version that wrote it. It takes no lock and
//! writes nothing, so it can look at a database another process has open; a torn tail at the end of the log (a
//! write in progress, or an interrupted one) is left out and reported, as recovery would cut it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::db::open::{list, Listing};
use crate::describe::{decode_dynamic, Dynamic};
use crate::error::{Error, Result};
use crate::evolve::{decode_description, SchemaDescription, TableDescription};
use crate::log::record::{self, Op};
use crate::log::scan::{self, SegmentData};
use crate::log::segment;
use crate::schema::TableKind;
use crate::seal::{self, EncryptionKey, Seal};
use crate::snapshot::Snapshot;
use crate::storage::{FsStorage, Storage, Waiting};

/// A read-only view of a database directory's contents.
#[derive(Debug)]
pub struct Inspection {
    /// The database directory.
    pub path: PathBuf,
    /// The sequence number of the snapshot read, if there is one.
    pub snapshot_seq: Option<u64>,
    /// The last committed sequence number found.
    pub last_seq: u64,
    /// The database's files that were read, with their sizes in bytes.
    pub files: Vec<(PathBuf, u64)>,
    /// Every stored schema version.
    pub schemas: BTreeMap<u32, SchemaDescription>,
    /// Every table on disk, in id order, Cairn's own (names with a dot) included.
    pub tables: Vec<InspectedTable>,
    /// A torn tail at the end of the log that was left out: (file, offset, why).
    pub torn_tail: Option<(PathBuf, u64, String)>,
    /// Whether the database is encrypted (it has a key file, and the view was taken with its key).
    pub encrypted: bool,
}

/// One table of an [`Inspection`].
#[derive(Debug)]
pub struct InspectedTable {
    /// The table's id on disk.
    pub id: u32,
    /// Its name on disk (a renamed table keeps its first name).
    pub name: String,
    /// Its kind.
    pub kind: TableKind,
    /// Its records, by encoded key.
    pub records: BTreeMap<Vec<u8>, StoredRecord>,
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The schema version that wrote it (0: before the database stored schemas).
    pub schema_version: u32,
    /// The encoded value.
    pub value: Vec<u8>,
}

impl Inspection {
    /// Reads the database in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(&FsStorage, dir.as_ref())
    }

    /// Reads the database in `dir` through `storage`.
    pub fn open_with(storage: &dyn Storage, dir: &Path) -> Result<Self> {
        Self::open_keyed(storage, dir, None)
    }

    /// Reads the database in `dir` through `storage`, with `key` if it is encrypted: without one, an encrypted
    /// database fails with [`Error::KeyRequired`], with a wrong one with [`Error::WrongKey`].
    pub fn open_keyed(storage: &dyn Storage, dir: &Path, key: Option<&EncryptionKey>) -> Result<Self> {
        let Listing { snapshots, mut segments, .. } = list(storage, dir)?;
        if snapshots.is_empty() && segments.is_empty() {
            return Err(Error::io(
                "find a Cairn database (no snapshot or log segment)",
                dir,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let seal = seal::load(storage, dir, seal::Settings::reading(key))?;
        let snap = match snapshots.last() {
            Some((_, path)) => Some(Snapshot::read(storage, &seal, path, Waiting::Caller)?),
            None => None,
        };
        let snap_seq = snap.as_ref().map_or(0, |s| s.seq);
        segment::take_covered(&mut segments, snap_seq);
        let bytes = scan::read_segments(storage, segments.iter().map(|(_, p)| p.as_path()), Waiting::Caller)?;
        let data: Vec<SegmentData<'_>> =
            segments.iter().zip(&bytes).map(|((_, path), bytes)| SegmentData { path, bytes }).collect();
        let scanned = scan::scan(&data, snap_seq)?;
        Self::from_scan(dir, &seal, snap.as_ref(), &segments, &bytes, &scanned)
    }

    /// The view of what recovery read: the snapshot, the segments after it (`bytes`, read whole) and their scan.
    pub(crate) fn from_scan(
        dir: &Path,
        seal: &Seal,
        snap: Option<&Snapshot>,
        segments: &[(u64, PathBuf)],
        bytes: &[Vec<u8>],
        scanned: &scan::Scan,
    ) -> Result<Self> {
        let data: Vec<SegmentData<'_>> =
            segments.iter().zip(bytes).map(|((_, path), bytes)| SegmentData { path, bytes }).collect();
        let mut files: Vec<(PathBuf, u64)> = Vec::new();
        let mut tables: BTreeMap<u32, InspectedTable> = BTreeMap::new();
        let mut raw_schemas: Vec<(u32, Vec<u8>)> = Vec::new();
        if let Some(snap) = snap {
            files.push((snap.path.clone(), snap.len()));
            for c in &snap.catalog {
                tables.entry(c.id).or_insert_with(|| InspectedTable {
                    id: c.id,
                    name: c.name.clone(),
                    kind: c.kind,
                    records: BTreeMap::new(),
                });
            }
            raw_schemas.extend(snap.schemas.iter().cloned());
            for (_, table, schema, key, value) in snap.records() {
                if let Some(t) = tables.get_mut(&table) {
                    t.records.insert(key.to_vec(), StoredRecord { schema_version: schema, value: value.to_vec() });
                }
            }
        }
        for ((_, path), b) in segments.iter().zip(bytes) {
            files.push((path.clone(), b.len() as u64));
        }
        for frame in &scanned.frames {
            let seg = &data[frame.segment];
            let payload = frame.plain(seal, seg)?;
            for op in record::ops(&payload) {
                match op {
                    Ok(Op::CreateTable { table, kind, name }) => {
                        tables.entry(table).or_insert_with(|| InspectedTable {
                            id: table,
                            name: name.to_string(),
                            kind,
                            records: BTreeMap::new(),
                        });
                    }
                    Ok(Op::DefineSchema { schema, description }) => raw_schemas.push((schema, description.to_vec())),
                    Ok(Op::Put { table, schema, key, value }) => {
                        if let Some(t) = tables.get_mut(&table) {
                            t.records
                                .insert(key.to_vec(), StoredRecord { schema_version: schema, value: value.to_vec() });
                        }
                    }
                    Ok(Op::Delete { table, key }) => {
                        if let Some(t) = tables.get_mut(&table) {
                            t.records.remove(key);
                        }
                    }
                    Ok(Op::Writer { .. }) => {}
                    Err(at) => return Err(frame.malformed_op(seg.path, at).into()),
                }
            }
        }
        let mut schemas = BTreeMap::new();
        for (version, raw) in raw_schemas {
            if version == 0 || schemas.contains_key(&version) {
                continue;
            }
            let description = decode_description(&raw).map_err(|message| Error::SchemaUnreadable {
                path: dir.to_path_buf(),
                version,
                message,
            })?;
            schemas.insert(version, description);
        }
        let torn_tail = scanned
            .cut
            .as_ref()
            .map(|cut| (segments[cut.segment].1.clone(), cut.offset as u64, cut.reason.to_string()));
        Ok(Inspection {
            path: dir.to_path_buf(),
            snapshot_seq: snap.map(|s| s.seq),
            last_seq: scanned.last_seq,
            files,
            schemas,
            tables: tables.into_values().collect(),
            torn_tail,
            encrypted: seal.encrypted(),
        })
    }

    /// The table named `name` on disk, or whose newest description names it (a renamed table).
    pub fn table(&self, name: &str) -> Option<&InspectedTable> {
        self.tables.iter().find(|t| t.name == name).or_else(|| {
            let described = self.schemas.values().rev().flat_map(|s| &s.tables).find(|d| d.name == name)?;
            self.tables.iter().find(|t| described.old_names.contains(&t.name))
        })
    }

    /// How schema version `version` described `table` (version 0: the oldest stored version).
    pub fn description(&self, table: &InspectedTable, version: u32) -> Option<&TableDescription> {
        let schema = match version {
            0 => self.schemas.values().next()?,
            v => self.schemas.get(&v)?,
        };
        schema.tables.iter().find(|d| d.answers_to(&table.name))
    }

    /// The newest description of `table`: its name in the code and its current key and value types.
    pub fn newest_description(&self, table: &InspectedTable) -> Option<&TableDescription> {
        self.schemas.values().rev().flat_map(|s| &s.tables).find(|d| d.answers_to(&table.name))
    }

    /// Decodes an encoded key of `table` (keys encode alike in every version).
    pub fn decode_key(&self, table: &InspectedTable, key: &[u8]) -> std::result::Result<Dynamic, String> {
        let d = self.newest_description(table).ok_or_else(|| no_description(table))?;
        decode_dynamic(key, &d.key)
    }

    /// Decodes a record's value by the description of the version that wrote it.
    pub fn decode_value(&self, table: &InspectedTable, record: &StoredRecord) -> std::result::Result<Dynamic, String> {
        let d = self.description(table, record.schema_version).ok_or_else(|| {
            format!(
                "table `{}`: schema version {} is not stored, so its records cannot be decoded",
                table.name, record.schema_version
            )
        })?;
        decode_dynamic(&record.value, &d.value)
    }
}

fn no_description(table: &InspectedTable) -> String {
    format!(
        "table `{}` has no stored description (the database was written before Cairn stored schemas): open it once \
         with its program to store one",
        table.name
    )
}

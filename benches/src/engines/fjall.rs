//! fjall with its defaults; every commit is a write batch persisted with `PersistMode::SyncData` (fdatasync, as
//! Cairn and the raw limit use). Compaction is a memtable flush followed by a major compaction.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::{Compaction, Engine};
use crate::workload::{touch, Key, Recs, Res};

pub struct Fjall {
    db: Database,
    ks: Keyspace,
}

const MODE: Option<PersistMode> = Some(PersistMode::SyncData);

impl Engine for Fjall {
    const NAME: &'static str = "fjall";

    fn open(dir: &Path) -> Res<Self> {
        let db = Database::builder(dir.join("db")).open()?;
        let ks = db.keyspace("data", KeyspaceCreateOptions::default)?;
        Ok(Fjall { db, ks })
    }

    fn load(&self, recs: Recs<'_>) -> Res<()> {
        let mut b = self.db.batch().durability(MODE);
        for (k, v) in recs.iter() {
            b.insert(&self.ks, k.as_slice(), v);
        }
        b.commit()?;
        Ok(())
    }

    fn commit_one(&self, key: &Key, val: &[u8]) -> Res<()> {
        let mut b = self.db.batch().durability(MODE);
        b.insert(&self.ks, key.as_slice(), val);
        b.commit()?;
        Ok(())
    }

    fn read(&self, keys: &[Key]) -> Res<u64> {
        let mut acc = 0;
        for k in keys {
            acc += touch(&self.ks.get(k)?.ok_or("fjall: a written key is missing")?);
        }
        Ok(std::hint::black_box(acc))
    }

    fn contains(&self, key: &Key) -> Res<bool> {
        Ok(self.ks.get(key)?.map(|v| std::hint::black_box(touch(&v))).is_some())
    }

    fn scan(&self) -> Res<(u64, u64)> {
        let (mut n, mut acc) = (0, 0);
        for g in self.ks.iter() {
            let (_, v) = g.into_inner()?;
            n += 1;
            acc += touch(&v);
        }
        Ok(std::hint::black_box((n, acc)))
    }

    fn remove(&self, keys: &[Key]) -> Res<()> {
        let mut b = self.db.batch().durability(MODE);
        for k in keys {
            b.remove(&self.ks, k.as_slice());
        }
        b.commit()?;
        Ok(())
    }

    fn compact(&mut self) -> Res<Compaction> {
        self.compact_shared().map_err(|e| e.to_string())??;
        Ok(Compaction::Done)
    }

    fn compact_shared(&self) -> Result<Res<()>, &'static str> {
        Ok((|| {
            self.ks.rotate_memtable_and_wait()?;
            self.ks.major_compact()?;
            Ok(())
        })())
    }
}

//! redb with its defaults: every write transaction commits with `Durability::Immediate`.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Compaction, Engine};
use crate::workload::{touch, Key, Recs, Res};

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");

pub struct Redb(Database);

impl Engine for Redb {
    const NAME: &'static str = "redb";

    fn open(dir: &Path) -> Res<Self> {
        let db = Database::create(dir.join("db.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(DATA)?;
        tx.commit()?;
        Ok(Redb(db))
    }

    fn load(&self, recs: Recs<'_>) -> Res<()> {
        let tx = self.0.begin_write()?;
        {
            let mut t = tx.open_table(DATA)?;
            for (k, v) in recs.iter() {
                t.insert(k.as_slice(), v)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn commit_one(&self, key: &Key, val: &[u8]) -> Res<()> {
        let tx = self.0.begin_write()?;
        tx.open_table(DATA)?.insert(key.as_slice(), val)?;
        tx.commit()?;
        Ok(())
    }

    fn read(&self, keys: &[Key]) -> Res<u64> {
        let tx = self.0.begin_read()?;
        let t = tx.open_table(DATA)?;
        let mut acc = 0;
        for k in keys {
            acc += touch(t.get(k.as_slice())?.ok_or("redb: a written key is missing")?.value());
        }
        Ok(std::hint::black_box(acc))
    }

    fn contains(&self, key: &Key) -> Res<bool> {
        let tx = self.0.begin_read()?;
        let t = tx.open_table(DATA)?;
        Ok(t.get(key.as_slice())?.map(|g| std::hint::black_box(touch(g.value()))).is_some())
    }

    fn scan(&self) -> Res<(u64, u64)> {
        let tx = self.0.begin_read()?;
        let t = tx.open_table(DATA)?;
        let (mut n, mut acc) = (0, 0);
        for e in t.iter()? {
            let (_, v) = e?;
            n += 1;
            acc += touch(v.value());
        }
        Ok(std::hint::black_box((n, acc)))
    }

    fn remove(&self, keys: &[Key]) -> Res<()> {
        let tx = self.0.begin_write()?;
        {
            let mut t = tx.open_table(DATA)?;
            for k in keys {
                t.remove(k.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn compact(&mut self) -> Res<Compaction> {
        self.0.compact()?;
        Ok(Compaction::Done)
    }

    fn compact_shared(&self) -> Result<Res<()>, &'static str> {
        Err("redb's compact() takes &mut Database: no commit can run during it")
    }
}

//! sled 0.34 with its defaults; every commit is followed by `flush()` (sled's fsync). sled has no compaction call.

use std::path::Path;

use super::{Compaction, Engine};
use crate::workload::{touch, Key, Recs, Res};

pub struct Sled(sled::Db);

impl Engine for Sled {
    const NAME: &'static str = "sled";

    fn open(dir: &Path) -> Res<Self> {
        Ok(Sled(sled::open(dir.join("db"))?))
    }

    fn load(&self, recs: Recs<'_>) -> Res<()> {
        let mut b = sled::Batch::default();
        for (k, v) in recs.iter() {
            b.insert(k.as_slice(), v);
        }
        self.0.apply_batch(b)?;
        self.0.flush()?;
        Ok(())
    }

    fn commit_one(&self, key: &Key, val: &[u8]) -> Res<()> {
        self.0.insert(key, val)?;
        self.0.flush()?;
        Ok(())
    }

    fn read(&self, keys: &[Key]) -> Res<u64> {
        let mut acc = 0;
        for k in keys {
            acc += touch(&self.0.get(k)?.ok_or("sled: a written key is missing")?);
        }
        Ok(std::hint::black_box(acc))
    }

    fn contains(&self, key: &Key) -> Res<bool> {
        Ok(self.0.get(key)?.map(|v| std::hint::black_box(touch(&v))).is_some())
    }

    fn scan(&self) -> Res<(u64, u64)> {
        let (mut n, mut acc) = (0, 0);
        for e in self.0.iter() {
            let (_, v) = e?;
            n += 1;
            acc += touch(&v);
        }
        Ok(std::hint::black_box((n, acc)))
    }

    fn remove(&self, keys: &[Key]) -> Res<()> {
        let mut b = sled::Batch::default();
        for k in keys {
            b.remove(k.as_slice());
        }
        self.0.apply_batch(b)?;
        self.0.flush()?;
        Ok(())
    }

    fn compact(&mut self) -> Res<Compaction> {
        Ok(Compaction::None("sled 0.34 has no compaction call"))
    }

    fn compact_shared(&self) -> Result<Res<()>, &'static str> {
        Err("sled 0.34 has no compaction call")
    }
}

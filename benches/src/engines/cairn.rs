//! Cairn through its public typed API, as a user writes it: default options (durability `Immediate`).

use std::path::Path;

use super::{Compaction, Engine};
use crate::workload::{touch, Key, Recs, Res};

cairn::schema! {
    /// One hash table of 24-byte keys and byte-vector values.
    pub Bench {
        data: <[u8; 24], Vec<u8>>,
    }
}

pub struct Cairn(Bench);

impl Engine for Cairn {
    const NAME: &'static str = "cairn";

    fn open(dir: &Path) -> Res<Self> {
        Ok(Cairn(Bench::open(dir.join("db"))?))
    }

    fn load(&self, recs: Recs<'_>) -> Res<()> {
        self.0.transaction(|tx| {
            for (k, v) in recs.iter() {
                tx.data.insert(*k, v.to_vec())?;
            }
            Ok::<_, cairn::Error>(())
        })?;
        Ok(())
    }

    fn commit_one(&self, key: &Key, val: &[u8]) -> Res<()> {
        self.0.data.insert(*key, val.to_vec())?;
        Ok(())
    }

    fn read(&self, keys: &[Key]) -> Res<u64> {
        let mut acc = 0;
        for k in keys {
            acc += self.0.data.get_with(k, |v| touch(v)).ok_or("cairn: a written key is missing")?;
        }
        Ok(std::hint::black_box(acc))
    }

    fn contains(&self, key: &Key) -> Res<bool> {
        Ok(self.0.data.get_with(key, |v| std::hint::black_box(touch(v))).is_some())
    }

    fn scan(&self) -> Res<(u64, u64)> {
        let r = self.0.read(|r| r.data.iter().fold((0, 0), |(n, acc), (_, v)| (n + 1, acc + touch(v))));
        Ok(std::hint::black_box(r))
    }

    fn remove(&self, keys: &[Key]) -> Res<()> {
        // The API for removing many keys whose values are not needed (`remove` would copy each value out).
        self.0.transaction(|tx| tx.data.delete_many(keys))?;
        Ok(())
    }

    fn compact(&mut self) -> Res<Compaction> {
        self.0.compact()?;
        Ok(Compaction::Done)
    }

    fn compact_shared(&self) -> Result<Res<()>, &'static str> {
        Ok(self.0.compact().map_err(Into::into))
    }
}

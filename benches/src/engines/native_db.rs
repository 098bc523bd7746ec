//! native_db (on redb, whose write transactions commit with `Durability::Immediate`) with its default codec
//! (bincode 1.3 through native_model). A record is a struct whose primary key is a 24-byte newtype.

use std::path::Path;
use std::sync::OnceLock;

use native_db::db_type::{Key as NKey, ToKey};
use native_db::{native_db, Builder, Database, Models};
use native_model::{native_model, Model};
use serde::{Deserialize, Serialize};

use super::{Compaction, Engine};
use crate::workload::{touch, Key, Recs, Res};

/// The primary key: 24 bytes, encoded as themselves (native_db's `Vec<u8>` key would encode byte by byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct K24(pub Key);

impl ToKey for K24 {
    fn to_key(&self) -> NKey {
        NKey::new(self.0.to_vec())
    }

    fn key_names() -> Vec<String> {
        vec!["K24".to_string()]
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[native_model(id = 1, version = 1)]
#[native_db]
pub struct Rec {
    #[primary_key]
    key: K24,
    value: Vec<u8>,
}

fn models() -> &'static Models {
    static MODELS: OnceLock<Models> = OnceLock::new();
    MODELS.get_or_init(|| {
        let mut m = Models::new();
        m.define::<Rec>().expect("define the native_db model");
        m
    })
}

pub struct NativeDb(Database<'static>);

impl Engine for NativeDb {
    const NAME: &'static str = "native_db";

    fn open(dir: &Path) -> Res<Self> {
        let path = dir.join("db.native");
        let db = if path.exists() {
            Builder::new().open(models(), &path)?
        } else {
            Builder::new().create(models(), &path)?
        };
        Ok(NativeDb(db))
    }

    fn load(&self, recs: Recs<'_>) -> Res<()> {
        let rw = self.0.rw_transaction()?;
        for (k, v) in recs.iter() {
            rw.insert(Rec { key: K24(*k), value: v.to_vec() })?;
        }
        rw.commit()?;
        Ok(())
    }

    fn commit_one(&self, key: &Key, val: &[u8]) -> Res<()> {
        let rw = self.0.rw_transaction()?;
        rw.insert(Rec { key: K24(*key), value: val.to_vec() })?;
        rw.commit()?;
        Ok(())
    }

    fn read(&self, keys: &[Key]) -> Res<u64> {
        let r = self.0.r_transaction()?;
        let mut acc = 0;
        for k in keys {
            let rec: Rec = r.get().primary(K24(*k))?.ok_or("native_db: a written key is missing")?;
            acc += touch(&rec.value);
        }
        Ok(std::hint::black_box(acc))
    }

    fn contains(&self, key: &Key) -> Res<bool> {
        let r = self.0.r_transaction()?;
        let rec: Option<Rec> = r.get().primary(K24(*key))?;
        Ok(rec.map(|rec| std::hint::black_box(touch(&rec.value))).is_some())
    }

    fn scan(&self) -> Res<(u64, u64)> {
        let r = self.0.r_transaction()?;
        let (mut n, mut acc) = (0, 0);
        for rec in r.scan().primary::<Rec>()?.all()? {
            let rec = rec?;
            n += 1;
            acc += touch(&rec.value);
        }
        Ok(std::hint::black_box((n, acc)))
    }

    fn remove(&self, keys: &[Key]) -> Res<()> {
        let rw = self.0.rw_transaction()?;
        for k in keys {
            // native_db removes by the whole item: fetch it, then remove it.
            let rec: Rec = rw.get().primary(K24(*k))?.ok_or("native_db: a key to remove is missing")?;
            rw.remove(rec)?;
        }
        rw.commit()?;
        Ok(())
    }

    fn compact(&mut self) -> Res<Compaction> {
        self.0.compact()?;
        Ok(Compaction::Done)
    }

    fn compact_shared(&self) -> Result<Res<()>, &'static str> {
        Err("native_db's compact() takes &mut Database (redb's): no commit can run during it")
    }
}

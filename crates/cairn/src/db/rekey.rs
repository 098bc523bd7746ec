//! Key rotation: re-encrypt the whole database under new data keys, sealed under a new application key, through a
//! compaction, so that a crash at any point leaves a database that opens.
//!
//! 1. Write the key file with **two slots**, one for the old application key and one for the new, each sealing
//!    the old data keys and a new one (epoch + 1). From here either key opens the database.
//! 2. Under the writer lock, switch the seal to the new data key, then roll and fold (a compaction): every frame
//!    from then on, and the new snapshot, are sealed under the new data key. The fold reads the old files with the
//!    old data keys, which the keyring still holds.
//! 3. Check that no file left holds a unit under an older data key (a frame sealed before the switch and queued
//!    across the roll would be one); fold again while one does.
//! 4. Write the key file with **one slot**, the new application key sealing only the new data key. From here only
//!    the new key opens the database, and the old data keys are gone from disk.
//!
//! | Crash | Key file | Files | Opens with |
//! |---|---|---|---|
//! | before 1's rename | old | old epoch | old key |
//! | between 1 and 4 | two slots | both epochs | old or new key; rotating again finishes the job |
//! | after 4's rename | new | new epoch | new key |

use std::path::PathBuf;

use super::Inner;
use crate::error::{Error, Result};
use crate::log::frame::{self, Probe};
use crate::log::segment;
use crate::seal::keys::Opener;
use crate::seal::{EncryptionKey, Seal};
use crate::snapshot;

/// Folds to retry when a frame under an old key turns up after the roll.
const ATTEMPTS: usize = 4;

impl Inner {
    /// See [`Db::rotate_key`](crate::Db::rotate_key).
    pub(crate) fn rotate_key(&self, new: &EncryptionKey) -> Result<()> {
        if self.shared.is_some() {
            return Err(Error::RotateShared { path: self.dir.clone() });
        }
        let Some(ring) = self.pipeline.seal.keyring() else {
            return Err(Error::NotEncrypted { path: self.dir.clone() });
        };
        // Serialized with compactions and backups: a backup copies the key file and the files it opens together.
        let mut current = self.snapshot.lock();
        let storage = &*self.storage;
        let next = ring.with_new_key(Opener::new(new)?)?;
        next.store(storage, &self.dir, &[&ring.opener, &next.opener])?;
        let epoch = next.current;
        let mut switch = Some(next.clone());
        for attempt in 1..=ATTEMPTS {
            self.compact_locked(&mut current, switch.take(), true)?;
            match self.older_unit(epoch)? {
                None => {
                    let done = next.current_only();
                    done.store(storage, &self.dir, &[&done.opener])?;
                    self.pipeline.seal.set_keyring(done);
                    tracing::info!(dir = %self.dir.display(), epoch, "database re-encrypted under a new key");
                    return Ok(());
                }
                Some((file, offset)) if attempt == ATTEMPTS => {
                    return Err(Error::Authentication {
                        file,
                        offset,
                        what: "after re-encryption, a unit still sealed under the old key (key rotation did not finish; both keys still open the database; run it again)",
                    })
                }
                Some(_) => {}
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The first unit in the database's files sealed under a data key older than `epoch`, if any.
    fn older_unit(&self, epoch: u32) -> Result<Option<(PathBuf, u64)>> {
        let names = self.storage.list(&self.dir).map_err(|e| Error::io("list database directory", &self.dir, e))?;
        for name in &names {
            let path = self.dir.join(name);
            let is_segment = segment::parse_name(name).is_some();
            if !is_segment && snapshot::parse_name(name).is_none() {
                continue;
            }
            let bytes = self.storage.read_all(&path).map_err(|e| Error::io("read", &path, e))?;
            let old = |kind: u32, stored: &[u8]| Seal::epoch_of(kind, stored).is_none_or(|e| e < epoch);
            if is_segment {
                let mut pos = segment::HEADER_LEN;
                while let Probe::Frame { header, payload } = frame::probe(&bytes, pos) {
                    if old(header.kind, payload) {
                        return Ok(Some((path, pos as u64)));
                    }
                    pos += header.frame_len();
                }
            } else {
                let mut pos = snapshot::HEADER_LEN;
                while let Some(h) = bytes.get(pos..pos + snapshot::BLOCK_HEADER_LEN) {
                    let len = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")) as usize;
                    let kind = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
                    let start = pos + snapshot::BLOCK_HEADER_LEN;
                    if old(kind, bytes.get(start..start + len).unwrap_or_default()) {
                        return Ok(Some((path, pos as u64)));
                    }
                    pos = start + len;
                }
            }
        }
        Ok(None)
    }
}

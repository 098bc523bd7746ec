//! Compression and encryption at rest: how a log payload or a snapshot block becomes the bytes on disk, and back.
//!
//! Every such unit says in its `kind` field (bits 0..8 the unit's own kind, bits 8..12 the codec, bit 16
//! "encrypted") how it was stored, so readers need no setting to decode it; the setting only chooses what new writes
//! use. A unit is first compressed (`codec`), then, in an encrypted database, sealed with XChaCha20-Poly1305:
//!
//! ```text
//! encrypted unit := epoch:u32 LE   nonce:24 bytes   ciphertext   tag:16 bytes
//! associated data := database id (16 bytes)   b"L" kind:u32 seq:u64 durable:u64        (a log frame)
//!                                             b"S" kind:u32 snapshot:u64 block:u64     (a snapshot block)
//! ```
//!
//! The epoch names the data key (see `keys`); the nonce is this process's random 16-byte prefix and a counter, so
//! it never repeats under one key. The associated data binds a unit to its place (sequence number, or snapshot and
//! block index) and to its database, so a unit moved, replayed or copied from another file or database fails
//! authentication. An encrypted database accepts no unencrypted unit, and a database opened without a key refuses
//! encrypted ones, so neither can be swapped in for the other.

pub(crate) mod codec;
pub(crate) mod keys;

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{Tag, XNonce};
use parking_lot::RwLock;

pub use codec::Compression;
pub use keys::EncryptionKey;

use crate::error::{Corruption, Error, Result};
use crate::storage::Storage;
use keys::Keyring;

/// The bits of a `kind` field that hold the codec.
const CODEC_SHIFT: u32 = 8;
const CODEC_MASK: u32 = 0xf << CODEC_SHIFT;
/// The bit of a `kind` field that says the unit is encrypted.
pub(crate) const ENCRYPTED: u32 = 1 << 16;
/// The bits of a `kind` field that name the unit's own kind.
pub(crate) const KIND_MASK: u32 = 0xff;
/// Bytes an encrypted unit adds: epoch, nonce, tag.
pub(crate) const OVERHEAD: usize = 4 + 24 + 16;

/// The kind of a unit, without its storage bits; `None` if the storage bits hold something this build does not
/// know.
pub(crate) fn base_kind(kind: u32) -> Option<u32> {
    (kind & !(KIND_MASK | CODEC_MASK | ENCRYPTED) == 0 && (kind & CODEC_MASK) >> CODEC_SHIFT <= codec::ZSTD)
        .then_some(kind & KIND_MASK)
}

/// Where a unit belongs: what its associated data binds it to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    /// The payload of log frame `seq`, whose header says `durable`.
    Frame { seq: u64, durable: u64 },
    /// Block `index` (from 0, the catalog) of the snapshot that ends at `snapshot`.
    Block { snapshot: u64, index: u64 },
}

/// How this database stores units: the compression for new writes and, if it is encrypted, its keys.
pub(crate) struct Seal {
    compression: Compression,
    /// Log payloads from this size up are compressed.
    compress_above: usize,
    keys: Option<RwLock<Arc<Keyring>>>,
    nonce_prefix: [u8; 16],
    nonce_counter: AtomicU64,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seal").field("compression", &self.compression).field("encrypted", &self.keys.is_some()).finish()
    }
}

impl Seal {
    /// Stores everything as it is and reads what needs no key.
    pub(crate) fn plain() -> Arc<Seal> {
        Arc::new(Seal::new(Compression::None, usize::MAX, None).expect("no randomness is drawn without keys"))
    }

    pub(crate) fn new(compression: Compression, compress_above: usize, keys: Option<Keyring>) -> Result<Seal> {
        let nonce_prefix = if keys.is_some() { keys::random()? } else { [0; 16] };
        Ok(Seal {
            compression,
            compress_above,
            keys: keys.map(|k| RwLock::new(Arc::new(k))),
            nonce_prefix,
            nonce_counter: AtomicU64::new(0),
        })
    }

    /// Whether the database is encrypted.
    pub(crate) fn encrypted(&self) -> bool {
        self.keys.is_some()
    }

    /// The current keyring of an encrypted database.
    pub(crate) fn keyring(&self) -> Option<Arc<Keyring>> {
        self.keys.as_ref().map(|k| k.read().clone())
    }

    /// Replaces the keyring (key rotation): units sealed from now on use its current key.
    pub(crate) fn set_keyring(&self, ring: Keyring) {
        if let Some(k) = &self.keys {
            *k.write() = Arc::new(ring);
        }
    }

    /// The epoch of the data key an encrypted unit was sealed under (`None` for an unencrypted one).
    pub(crate) fn epoch_of(kind: u32, stored: &[u8]) -> Option<u32> {
        (kind & ENCRYPTED != 0)
            .then(|| stored.get(..4).map(|e| u32::from_le_bytes(e.try_into().expect("4 bytes"))))
            .flatten()
    }

    /// Turns `plain`, a unit of kind `kind` for `place`, into what is stored: the kind field with its storage bits
    /// and the bytes.
    pub(crate) fn seal(&self, kind: u32, place: Place, plain: Vec<u8>) -> (u32, Vec<u8>) {
        let threshold = match place {
            Place::Frame { .. } => self.compress_above,
            Place::Block { .. } => 0,
        };
        let (mut kind, body) = match (plain.len() >= threshold).then(|| codec::compress(self.compression, &plain)) {
            Some(Some((codec, compressed))) => (kind | codec << CODEC_SHIFT, compressed),
            _ => (kind, plain),
        };
        let Some(ring) = self.keyring() else { return (kind, body) };
        kind |= ENCRYPTED;
        let mut nonce = [0u8; 24];
        nonce[..16].copy_from_slice(&self.nonce_prefix);
        nonce[16..].copy_from_slice(&self.nonce_counter.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let mut out = Vec::with_capacity(body.len() + OVERHEAD);
        out.extend_from_slice(&ring.current.to_le_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        let aad = associated(&ring.db_id, kind, place);
        let tag = ring.ciphers[&ring.current]
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut out[28..])
            .expect("a unit below 256 GiB always encrypts");
        out.extend_from_slice(&tag);
        (kind, out)
    }

    /// The plain bytes of a stored unit of kind `kind` for `place`, found in `file` at `offset`.
    pub(crate) fn open<'a>(
        &self,
        kind: u32,
        place: Place,
        stored: &'a [u8],
        file: &Path,
        offset: u64,
    ) -> Result<Cow<'a, [u8]>> {
        let body: Cow<'a, [u8]> = match (kind & ENCRYPTED != 0, self.keyring()) {
            (false, None) => Cow::Borrowed(stored),
            (true, None) => {
                let dir = file.parent().unwrap_or(Path::new("."));
                return Err(Error::KeyRequired { path: dir.to_path_buf(), file: file.to_path_buf() });
            }
            (false, Some(_)) => {
                return Err(Error::Authentication {
                    file: file.to_path_buf(),
                    offset,
                    what: "unit stored unencrypted in an encrypted database",
                })
            }
            (true, Some(ring)) => Cow::Owned(unseal(&ring, kind, place, stored, file, offset)?),
        };
        match (kind & CODEC_MASK) >> CODEC_SHIFT {
            codec::NONE => Ok(body),
            c => codec::decompress(c, &body).map(Cow::Owned).map_err(|what| Corruption::new(file, offset, what).into()),
        }
    }
}

/// What a database stores its units with: read from the options of an open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings<'a> {
    pub(crate) compression: Compression,
    pub(crate) compress_above: usize,
    pub(crate) key: Option<&'a EncryptionKey>,
    /// Whether a key file may be created (a new database opened with a key). The tools never create one.
    pub(crate) create: bool,
}

impl<'a> Settings<'a> {
    /// The settings of `options`, for an open that may create the database.
    pub(crate) fn of(options: &'a crate::options::Options) -> Self {
        Settings {
            compression: options.compression,
            compress_above: options.compress_above,
            key: options.encryption.as_ref(),
            create: true,
        }
    }

    /// Reading only, with `key` if the database is encrypted.
    pub(crate) fn reading(key: Option<&'a EncryptionKey>) -> Self {
        Settings { compression: Compression::None, compress_above: usize::MAX, key, create: false }
    }
}

/// Reads the key file of the database in `dir` (under its lock, before any other file is read), or creates one for
/// a new database opened with a key, and returns how the database stores its units.
///
/// | key file | key given | result |
/// |---|---|---|
/// | present | yes | its keys, or [`Error::WrongKey`] |
/// | present | no | [`Error::KeyRequired`] |
/// | missing | no | a plain database |
/// | missing | yes | [`Error::NotEncrypted`] if `dir` holds a snapshot or segment, else a new key file |
pub(crate) fn load(storage: &dyn Storage, dir: &Path, settings: Settings<'_>) -> Result<Arc<Seal>> {
    let names = storage.list(dir).map_err(|e| Error::io("list database directory", dir, e))?;
    let path = keys::path(dir);
    if names.iter().any(|n| n == keys::KEYS_TMP) && settings.create {
        // A key file being rewritten when a process died: `KEYS` is the old one or the new one, whole.
        let tmp = dir.join(keys::KEYS_TMP);
        storage.remove(&tmp).map_err(|e| Error::io("remove leftover temporary file", &tmp, e))?;
    }
    let ring = match (names.iter().any(|n| n == keys::KEYS_FILE), settings.key) {
        (true, Some(key)) => {
            let bytes = storage.read_all(&path).map_err(|e| Error::io("read key file", &path, e))?;
            Some(keys::unlock(dir, &path, &bytes, key)?)
        }
        (true, None) => return Err(Error::KeyRequired { path: dir.to_path_buf(), file: path }),
        (false, None) => None,
        (false, Some(key)) => {
            let holds_data = names
                .iter()
                .any(|n| crate::log::segment::parse_name(n).is_some() || crate::snapshot::parse_name(n).is_some());
            if holds_data || !settings.create {
                return Err(Error::NotEncrypted { path: dir.to_path_buf() });
            }
            let ring = Keyring::create(key)?;
            ring.store(storage, dir, &[&ring.opener])?;
            Some(ring)
        }
    };
    Ok(Arc::new(Seal::new(settings.compression, settings.compress_above, ring)?))
}

fn unseal(ring: &Keyring, kind: u32, place: Place, stored: &[u8], file: &Path, offset: u64) -> Result<Vec<u8>> {
    let auth = |what| Error::Authentication { file: file.to_path_buf(), offset, what };
    if stored.len() < OVERHEAD {
        return Err(auth("encrypted unit shorter than its nonce and tag"));
    }
    let epoch = u32::from_le_bytes(stored[0..4].try_into().expect("4 bytes"));
    let Some(cipher) = ring.ciphers.get(&epoch) else {
        return Err(auth("unit encrypted under a data key the key file does not hold"));
    };
    let (body, tag) = stored[28..].split_at(stored.len() - 28 - 16);
    let mut plain = body.to_vec();
    let aad = associated(&ring.db_id, kind, place);
    cipher
        .decrypt_in_place_detached(XNonce::from_slice(&stored[4..28]), &aad, &mut plain, Tag::from_slice(tag))
        .map_err(|_| auth("encrypted unit"))?;
    Ok(plain)
}

fn associated(db_id: &[u8; 16], kind: u32, place: Place) -> [u8; 37] {
    let mut aad = [0u8; 37];
    aad[0..16].copy_from_slice(db_id);
    let (tag, a, b) = match place {
        Place::Frame { seq, durable } => (b'L', seq, durable),
        Place::Block { snapshot, index } => (b'S', snapshot, index),
    };
    aad[16] = tag;
    aad[17..21].copy_from_slice(&kind.to_le_bytes());
    aad[21..29].copy_from_slice(&a.to_le_bytes());
    aad[29..37].copy_from_slice(&b.to_le_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypted(compression: Compression) -> Seal {
        Seal::new(compression, 64, Some(Keyring::create(&EncryptionKey::from_bytes([3; 32])).unwrap())).unwrap()
    }

    #[test]
    fn units_round_trip_and_bind_their_place() {
        let text = b"the same words again and again and again and again and again and again".repeat(4);
        let here = Place::Frame { seq: 5, durable: 4 };
        for seal in [encrypted(Compression::Lz4), encrypted(Compression::None)] {
            let (kind, stored) = seal.seal(1, here, text.clone());
            assert_eq!(base_kind(kind), Some(1));
            assert!(!stored.windows(10).any(|w| w == &text[..10]), "plaintext in the unit");
            let f = Path::new("db/1.log");
            assert_eq!(seal.open(kind, here, &stored, f, 40).unwrap().as_ref(), &text[..]);
            for elsewhere in [
                Place::Frame { seq: 6, durable: 4 },
                Place::Frame { seq: 5, durable: 3 },
                Place::Block { snapshot: 5, index: 4 },
            ] {
                assert!(matches!(
                    seal.open(kind, elsewhere, &stored, f, 40),
                    Err(Error::Authentication { offset: 40, .. })
                ));
            }
            let mut bad = stored.clone();
            bad[30] ^= 1;
            assert!(matches!(seal.open(kind, here, &bad, f, 40), Err(Error::Authentication { .. })));
            assert!(matches!(Seal::plain().open(kind, here, &stored, f, 40), Err(Error::KeyRequired { .. })));
            assert!(matches!(seal.open(1, here, &text, f, 40), Err(Error::Authentication { .. })));
            // Another database's key and id: nothing opens.
            assert!(matches!(
                encrypted(Compression::None).open(kind, here, &stored, f, 40),
                Err(Error::Authentication { .. })
            ));
        }
        let small = Seal::new(Compression::Zstd { level: 3 }, 1 << 20, None).unwrap();
        let (kind, stored) = small.seal(1, here, text.clone());
        assert_eq!((kind, &stored), (1, &text), "below the threshold nothing is compressed");
        let (kind, stored) = small.seal(2, Place::Block { snapshot: 1, index: 1 }, text.clone());
        assert!(kind != 2 && stored.len() < text.len());
        assert_eq!(Seal::plain().open(kind, here, &stored, Path::new("x"), 0).unwrap().as_ref(), &text[..]);
    }

    #[test]
    fn unknown_storage_bits_are_refused() {
        assert_eq!(base_kind(1 | 3 << CODEC_SHIFT), None);
        assert_eq!(base_kind(1 | 1 << 20), None);
        assert_eq!(base_kind(2 | ENCRYPTED | 2 << CODEC_SHIFT), Some(2));
    }
}

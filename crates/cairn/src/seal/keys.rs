//! The key file `KEYS`: which cipher a database uses, its id, and its data keys, each copy sealed under a key the
//! application holds.
//!
//! ```text
//!  0  8  magic "CAIRNKEY"
//!  8  4  version, u32 LE (1)
//! 12  4  cipher, u32 LE (1 = XChaCha20-Poly1305)
//! 16 16  database id (random; in the associated data of every encrypted unit)
//! 32  4  slot count, u32 LE (1, or 2 while a key rotation runs)
//! 36     slots, each:
//!         0  4  kdf, u32 LE: 0 = the application's key as it is, 1 = argon2id of a passphrase
//!         4 12  argon2 memory (KiB), passes, lanes: u32 LE each (0 for kdf 0)
//!        16 16  salt (zero for kdf 0)
//!        32 24  nonce
//!        56  4  sealed length n, u32 LE
//!        60  n  the data keys sealed under the slot's key: count:u32, then (epoch:u32, key:32 bytes) each;
//!               associated data: bytes 0..32 of the file and the slot's index (u32 LE)
//!  end   4  CRC32C of everything before it
//! ```
//!
//! Data keys never leave memory in the clear. A slot opens with the application's key (or the key derived from its
//! passphrase); if none does, the key is wrong. Rotation (`db::rekey`) writes two slots, one per application key,
//! both sealing the old and the new data keys, so either key opens the database while files of both epochs exist.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::storage::Storage;

/// The name of the key file in a database directory.
pub(crate) const KEYS_FILE: &str = "KEYS";
/// The key file being rewritten.
pub(crate) const KEYS_TMP: &str = "KEYS.tmp";
const MAGIC: &[u8; 8] = b"CAIRNKEY";
const VERSION: u32 = 1;
/// The only cipher: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`). Its 192-bit nonces can be drawn at random
/// without a realistic chance of repeating, which matters because a frame's position is reused after recovery cuts a
/// torn tail.
pub(crate) const CIPHER_XCHACHA: u32 = 1;
const KDF_RAW: u32 = 0;
const KDF_ARGON2ID: u32 = 1;
const SLOT_FIXED: usize = 60;

/// argon2id's cost for passphrases: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane). Stored per slot, so a
/// later build can raise it without making old key files unreadable.
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_PASSES: u32 = 2;
const ARGON2_LANES: u32 = 1;

/// The secret a database is encrypted under: a 256-bit key, or a passphrase from which argon2id derives one.
///
/// The secret is wiped from memory when the value is dropped and never printed (`Debug` shows only which kind it
/// is). See [`Builder::encryption`](crate::Builder::encryption).
#[derive(Clone)]
pub struct EncryptionKey(Secret);

#[derive(Clone)]
enum Secret {
    Raw(Zeroizing<[u8; 32]>),
    Passphrase(Zeroizing<String>),
}

impl EncryptionKey {
    /// A key of 32 bytes, which should come from a cryptographic random source (or a key management service).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let mut key = key;
        let secret = Zeroizing::new(key);
        key.zeroize();
        EncryptionKey(Secret::Raw(secret))
    }

    /// A passphrase; the key is derived from it with argon2id (19 MiB of memory, 2 passes), salted per database.
    pub fn passphrase(passphrase: impl Into<String>) -> Self {
        EncryptionKey(Secret::Passphrase(Zeroizing::new(passphrase.into())))
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Secret::Raw(_) => "EncryptionKey(raw key, hidden)",
            Secret::Passphrase(_) => "EncryptionKey(passphrase, hidden)",
        })
    }
}

/// How one slot derives its sealing key from the application's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kdf {
    kind: u32,
    memory: u32,
    passes: u32,
    lanes: u32,
    salt: [u8; 16],
}

impl Kdf {
    /// A fresh derivation for `key`: raw keys are used as they are, passphrases get a new salt.
    fn fresh(key: &EncryptionKey) -> Result<Self> {
        Ok(match key.0 {
            Secret::Raw(_) => Kdf { kind: KDF_RAW, memory: 0, passes: 0, lanes: 0, salt: [0; 16] },
            Secret::Passphrase(_) => Kdf {
                kind: KDF_ARGON2ID,
                memory: ARGON2_MEMORY_KIB,
                passes: ARGON2_PASSES,
                lanes: ARGON2_LANES,
                salt: random()?,
            },
        })
    }

    /// The sealing key for `key`, if `key` is of this slot's kind.
    fn derive(&self, key: &EncryptionKey) -> Option<Zeroizing<[u8; 32]>> {
        match (&key.0, self.kind) {
            (Secret::Raw(k), KDF_RAW) => Some(k.clone()),
            (Secret::Passphrase(p), KDF_ARGON2ID) => {
                let params = argon2::Params::new(self.memory, self.passes, self.lanes, Some(32)).ok()?;
                let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
                let mut out = Zeroizing::new([0u8; 32]);
                argon.hash_password_into(p.as_bytes(), &self.salt, &mut *out).ok()?;
                Some(out)
            }
            _ => None,
        }
    }
}

/// One application key's way into the data keys: its derivation and the key it derived.
#[derive(Clone)]
pub(crate) struct Opener {
    kdf: Kdf,
    sealing: Zeroizing<[u8; 32]>,
}

impl Opener {
    /// The opener of `key` for a new slot.
    pub(crate) fn new(key: &EncryptionKey) -> Result<Self> {
        let kdf = Kdf::fresh(key)?;
        let sealing = kdf.derive(key).expect("a fresh derivation fits its key");
        Ok(Opener { kdf, sealing })
    }
}

/// The data keys of an encrypted database, by epoch, and what it takes to write its key file again.
#[derive(Clone)]
pub(crate) struct Keyring {
    pub(crate) db_id: [u8; 16],
    /// The epoch new units are encrypted under: the highest.
    pub(crate) current: u32,
    pub(crate) ciphers: BTreeMap<u32, XChaCha20Poly1305>,
    keys: BTreeMap<u32, Zeroizing<[u8; 32]>>,
    /// The slot that opened the key file (or that created it).
    pub(crate) opener: Opener,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("current", &self.current).field("epochs", &self.keys.len()).finish()
    }
}

impl Keyring {
    fn from_keys(db_id: [u8; 16], keys: BTreeMap<u32, Zeroizing<[u8; 32]>>, opener: Opener) -> Self {
        let current = *keys.keys().next_back().expect("a key file holds at least one key");
        let ciphers = keys.iter().map(|(&e, k)| (e, XChaCha20Poly1305::new((&**k).into()))).collect();
        Keyring { db_id, current, ciphers, keys, opener }
    }

    /// A new database's keyring: a random id and one random data key (epoch 1).
    pub(crate) fn create(key: &EncryptionKey) -> Result<Self> {
        let mut keys = BTreeMap::new();
        keys.insert(1, Zeroizing::new(random()?));
        Ok(Keyring::from_keys(random()?, keys, Opener::new(key)?))
    }

    /// This keyring with one more data key, the new current one, opened by `opener`.
    pub(crate) fn with_new_key(&self, opener: Opener) -> Result<Self> {
        let mut keys = self.keys.clone();
        keys.insert(self.current + 1, Zeroizing::new(random()?));
        Ok(Keyring::from_keys(self.db_id, keys, opener))
    }

    /// This keyring with only its current data key.
    pub(crate) fn current_only(&self) -> Self {
        let keys = self.keys.range(self.current..).map(|(&e, k)| (e, k.clone())).collect();
        Keyring::from_keys(self.db_id, keys, self.opener.clone())
    }

    /// The key file's bytes with one slot per opener, each sealing every data key.
    fn encode(&self, openers: &[&Opener]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&CIPHER_XCHACHA.to_le_bytes());
        out.extend_from_slice(&self.db_id);
        out.extend_from_slice(&(openers.len() as u32).to_le_bytes());
        let mut plain = Zeroizing::new(Vec::new());
        plain.extend_from_slice(&(self.keys.len() as u32).to_le_bytes());
        for (epoch, key) in &self.keys {
            plain.extend_from_slice(&epoch.to_le_bytes());
            plain.extend_from_slice(&**key);
        }
        for (index, opener) in openers.iter().enumerate() {
            let nonce: [u8; 24] = random()?;
            let aad = slot_aad(&out[..32], index as u32);
            let sealed = XChaCha20Poly1305::new((&*opener.sealing).into())
                .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad })
                .expect("sealing a few keys cannot fail");
            let k = &opener.kdf;
            for word in [k.kind, k.memory, k.passes, k.lanes] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(&k.salt);
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
            out.extend_from_slice(&sealed);
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Writes the key file of `dir` with a slot per opener: to `KEYS.tmp`, fsynced, renamed over `KEYS`, the
    /// directory fsynced. A crash leaves the old file or the new one.
    pub(crate) fn store(&self, storage: &dyn Storage, dir: &Path, openers: &[&Opener]) -> Result<()> {
        let bytes = self.encode(openers)?;
        let tmp = dir.join(KEYS_TMP);
        let file = storage.open_write(&tmp).map_err(|e| Error::io("create key file", &tmp, e))?;
        file.set_len(0).map_err(|e| Error::io("truncate key file", &tmp, e))?;
        file.write_all_at(&bytes, 0).map_err(|e| Error::io("write key file", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync key file", &tmp, e))?;
        drop(file);
        let dest = dir.join(KEYS_FILE);
        storage.rename(&tmp, &dest).map_err(|e| Error::io("rename key file into place", &dest, e))?;
        storage.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))
    }
}

fn slot_aad(head: &[u8], index: u32) -> Vec<u8> {
    let mut aad = head.to_vec();
    aad.extend_from_slice(&index.to_le_bytes());
    aad
}

/// A key file parsed as far as its structure goes.
struct Parsed<'a> {
    head: &'a [u8],
    db_id: [u8; 16],
    slots: Vec<(Kdf, [u8; 24], &'a [u8])>,
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<Parsed<'a>> {
    let damaged =
        |offset: usize, what: &str| -> Error { crate::error::Corruption::new(path, offset as u64, what).into() };
    if bytes.len() < 40 || &bytes[0..8] != MAGIC {
        return Err(damaged(0, "not a Cairn key file (too short or wrong magic bytes)"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(damaged(0, "key file checksum mismatch; restore KEYS from a backup of this database"));
    }
    let word = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes"));
    if word(8) != VERSION {
        return Err(damaged(
            8,
            &format!("key file of version {}, this build reads version {VERSION}; use a Cairn that reads it", word(8)),
        ));
    }
    if word(12) != CIPHER_XCHACHA {
        return Err(damaged(
            12,
            &format!("key file names cipher {}, this build knows only 1 (XChaCha20-Poly1305)", word(12)),
        ));
    }
    let db_id: [u8; 16] = body[16..32].try_into().expect("16 bytes");
    let count = word(32) as usize;
    let mut slots = Vec::new();
    let mut pos = 36;
    for _ in 0..count {
        let Some(fixed) = body.get(pos..pos + SLOT_FIXED) else { return Err(damaged(pos, "key slot cut short")) };
        let w = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().expect("4 bytes"));
        let kdf =
            Kdf { kind: w(0), memory: w(4), passes: w(8), lanes: w(12), salt: fixed[16..32].try_into().expect("16") };
        let nonce: [u8; 24] = fixed[32..56].try_into().expect("24 bytes");
        let n = w(56) as usize;
        let Some(sealed) = body.get(pos + SLOT_FIXED..pos + SLOT_FIXED + n) else {
            return Err(damaged(pos, "key slot cut short"));
        };
        slots.push((kdf, nonce, sealed));
        pos += SLOT_FIXED + n;
    }
    if pos != body.len() || slots.is_empty() {
        return Err(damaged(pos, "key file holds bytes after its slots, or no slot"));
    }
    Ok(Parsed { head: &body[..32], db_id, slots })
}

/// Opens the key file `bytes` (read from `path`, in database `dir`) with `key`: [`Error::WrongKey`] unless one
/// of its slots accepts it.
pub(crate) fn unlock(dir: &Path, path: &Path, bytes: &[u8], key: &EncryptionKey) -> Result<Keyring> {
    let p = parse(path, bytes)?;
    for (index, (kdf, nonce, sealed)) in p.slots.iter().enumerate() {
        let Some(sealing) = kdf.derive(key) else { continue };
        let aad = slot_aad(p.head, index as u32);
        let Ok(plain) = XChaCha20Poly1305::new((&*sealing).into())
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
        else {
            continue;
        };
        let plain = Zeroizing::new(plain);
        let count = plain.get(..4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")) as usize);
        if count.is_none_or(|c| c == 0 || plain.len() != 4 + c * 36) {
            return Err(crate::error::Corruption::new(path, 36, "key slot holds no well-formed key list").into());
        }
        let keys = plain[4..]
            .chunks_exact(36)
            .map(|c| {
                let epoch = u32::from_le_bytes(c[0..4].try_into().expect("4 bytes"));
                (epoch, Zeroizing::new(c[4..36].try_into().expect("32 bytes")))
            })
            .collect();
        return Ok(Keyring::from_keys(p.db_id, keys, Opener { kdf: *kdf, sealing }));
    }
    let kinds: Vec<u32> = p.slots.iter().map(|s| s.0.kind).collect();
    let expects = match (kinds.contains(&KDF_RAW), kinds.contains(&KDF_ARGON2ID)) {
        (true, true) => "a 32-byte key or a passphrase",
        (true, false) => "a 32-byte key (EncryptionKey::from_bytes)",
        _ => "a passphrase (EncryptionKey::passphrase)",
    };
    Err(Error::WrongKey { path: dir.to_path_buf(), expects })
}

/// The key file's path in `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(KEYS_FILE)
}

/// `N` bytes from the operating system's random source.
pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::io("draw random bytes", "getrandom", std::io::Error::other(e.to_string())))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FsStorage;

    #[test]
    fn a_key_file_opens_with_its_key_only() {
        let dir = tempfile::tempdir().unwrap();
        for key in [EncryptionKey::from_bytes([7; 32]), EncryptionKey::passphrase("correct horse")] {
            let ring = Keyring::create(&key).unwrap();
            ring.store(&FsStorage, dir.path(), &[&ring.opener]).unwrap();
            let bytes = std::fs::read(path(dir.path())).unwrap();
            let opened = unlock(dir.path(), &path(dir.path()), &bytes, &key).unwrap();
            assert_eq!((opened.db_id, opened.current), (ring.db_id, 1));
            assert_eq!(*opened.keys[&1], *ring.keys[&1]);
            for wrong in [EncryptionKey::from_bytes([8; 32]), EncryptionKey::passphrase("battery staple")] {
                assert!(matches!(unlock(dir.path(), &path(dir.path()), &bytes, &wrong), Err(Error::WrongKey { .. })));
            }
            // The data key is not in the file in the clear.
            assert!(!bytes.windows(32).any(|w| w == *ring.keys[&1]));
            let mut bad = bytes.clone();
            bad[50] ^= 1;
            assert!(matches!(unlock(dir.path(), &path(dir.path()), &bad, &key), Err(Error::Corrupt(_))));
        }
    }

    #[test]
    fn during_rotation_either_key_opens_both_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (EncryptionKey::passphrase("old"), EncryptionKey::from_bytes([1; 32]));
        let ring = Keyring::create(&old).unwrap();
        let next = ring.with_new_key(Opener::new(&new).unwrap()).unwrap();
        next.store(&FsStorage, dir.path(), &[&ring.opener, &next.opener]).unwrap();
        let bytes = std::fs::read(path(dir.path())).unwrap();
        for key in [&old, &new] {
            let opened = unlock(dir.path(), &path(dir.path()), &bytes, key).unwrap();
            assert_eq!(opened.current, 2);
            assert_eq!(opened.ciphers.len(), 2);
        }
        let done = next.current_only();
        done.store(&FsStorage, dir.path(), &[&done.opener]).unwrap();
        let bytes = std::fs::read(path(dir.path())).unwrap();
        assert!(matches!(unlock(dir.path(), &path(dir.path()), &bytes, &old), Err(Error::WrongKey { .. })));
        assert_eq!(
            unlock(dir.path(), &path(dir.path()), &bytes, &new).unwrap().ciphers.keys().collect::<Vec<_>>(),
            vec![&2]
        );
    }
}

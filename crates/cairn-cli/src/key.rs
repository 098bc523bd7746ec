//! The key of an encrypted database, for every command: `--key-file` (or `CAIRN_KEY_FILE`), else the passphrase in
//! `CAIRN_PASSPHRASE`. Chosen once in `main`; the commands open databases through [`view`] and [`raw`].

use std::path::Path;
use std::sync::OnceLock;

use cairn::inspect::Inspection;
use cairn::raw::RawDb;
use cairn::EncryptionKey;

use crate::{fail, Failure};

/// The environment variable holding a passphrase.
pub(crate) const PASSPHRASE_ENV: &str = "CAIRN_PASSPHRASE";

static KEY: OnceLock<Option<EncryptionKey>> = OnceLock::new();

/// Reads the key the command was given, if any.
pub(crate) fn choose(key_file: Option<&Path>) -> Result<(), Failure> {
    let key = match key_file {
        Some(path) => Some(from_file(path)?),
        None => std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty()).map(EncryptionKey::passphrase),
    };
    KEY.set(key).map_err(|_| fail("the key was chosen twice"))
}

/// The key given to the command.
pub(crate) fn given() -> Option<EncryptionKey> {
    KEY.get().cloned().flatten()
}

/// A key given as a file or as the name of an environment variable holding a passphrase.
pub(crate) fn read(file: Option<&Path>, passphrase_env: Option<&str>) -> Result<EncryptionKey, Failure> {
    match (file, passphrase_env) {
        (Some(path), _) => from_file(path),
        (None, Some(var)) => match std::env::var(var) {
            Ok(p) if !p.is_empty() => Ok(EncryptionKey::passphrase(p)),
            _ => {
                Err(fail(format!("the environment variable {var} holds no passphrase; set it, or give --new-key-file")))
            }
        },
        (None, None) => Err(fail("no new key: give --new-key-file PATH or --new-passphrase-env VAR")),
    }
}

/// A 32-byte key from `path`: the raw bytes, or 64 hex digits (surrounding whitespace ignored).
fn from_file(path: &Path) -> Result<EncryptionKey, Failure> {
    let bytes = std::fs::read(path).map_err(|e| fail(format!("read key file {}: {e}", path.display())))?;
    if let Ok(raw) = <[u8; 32]>::try_from(&bytes[..]) {
        return Ok(EncryptionKey::from_bytes(raw));
    }
    let text = String::from_utf8_lossy(&bytes);
    let hex = text.trim();
    let mut key = [0u8; 32];
    let digits: Option<Vec<u8>> = hex
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).ok().and_then(|d| u8::from_str_radix(d, 16).ok()))
        .collect();
    match digits {
        Some(d) if hex.len() == 64 && d.len() == 32 => {
            key.copy_from_slice(&d);
            Ok(EncryptionKey::from_bytes(key))
        }
        _ => Err(fail(format!(
            "key file {} holds {} bytes: a key is 32 raw bytes or 64 hex digits",
            path.display(),
            bytes.len()
        ))),
    }
}

/// Opens `dir` read-only (no lock), with the key given.
pub(crate) fn view(dir: &Path) -> cairn::Result<Inspection> {
    Inspection::open_keyed(&cairn::FsStorage, dir, given().as_ref())
}

/// Opens `dir` for writing (its lock), with the key given.
pub(crate) fn raw(dir: &Path) -> cairn::Result<RawDb> {
    RawDb::open_keyed(dir, given())
}

//! Test tools for Cairn.
//!
//! - [`FaultyStorage`]: the real file system behind Cairn's storage seam, counting every call and failing the ones a
//!   test chooses, with the error kind it chooses (ENOSPC, EIO, ...).
//! - [`SimStorage`]: an in-memory disk with a volatile cache that can lose power, leaving any state a real disk may
//!   be left in (unsynced writes dropped, kept or torn, unsynced directory entries lost), for power-loss tests.
//!
//! - [`Sealing`]: the ways a database can store its units (plain, compressed, encrypted, both), so that the
//!   reliability suite runs on each.
//!
//! Not published; used by the tests of the workspace, the crash harness and the fuzzers.

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

use cairn::{Builder, Compression, EncryptionKey, FsStorage, Schema, Storage, StorageFile};
use parking_lot::{Condvar, Mutex};

pub mod sim;

pub use sim::{CrashImage, CrashImages, Fate, Pending, PendingKind, Sampling, SimStorage};

/// The kinds of storage call a test can count and fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Call {
    /// `write_all_at` on any file.
    Write,
    /// `sync_data` or `sync_all` on any file.
    Sync,
    /// `set_len` or `allocate` on any file.
    SetLen,
    /// Opening a file for writing (creating it if needed).
    OpenWrite,
    /// Renaming a file.
    Rename,
    /// Removing a file or an empty directory.
    Remove,
    /// Syncing a directory.
    SyncDir,
}

impl Call {
    /// Every kind of call, in declaration order (for tests that fail each kind in turn).
    pub const ALL: [Call; 7] =
        [Call::Write, Call::Sync, Call::SetLen, Call::OpenWrite, Call::Rename, Call::Remove, Call::SyncDir];
}

#[derive(Debug, Default)]
struct Plan {
    counts: [u64; Call::ALL.len()],
    /// Fail the call of this kind once its count reaches this number (1 = the next one).
    fail: Option<(Call, u64, io::ErrorKind)>,
    /// Once a failure fired, keep failing every call of that kind (a dead disk) or not.
    sticky: bool,
    fired: bool,
    /// Calls of this kind wait until released.
    held: Option<Call>,
}

/// A storage over the real file system that counts calls and fails the ones a test picks. Clones share one plan:
/// keep a clone to steer the storage you gave to the database (`Arc::new(storage.clone())`).
#[derive(Debug, Default, Clone)]
pub struct FaultyStorage {
    fs: FsStorage,
    plan: Arc<Mutex<Plan>>,
    gate: Arc<Condvar>,
}

impl FaultyStorage {
    /// A storage that fails nothing (yet).
    pub fn new() -> Self {
        FaultyStorage::default()
    }

    /// This storage as the database builder takes it.
    pub fn shared(&self) -> Arc<dyn Storage> {
        Arc::new(self.clone())
    }

    /// How many calls of kind `call` were made so far.
    pub fn count(&self, call: Call) -> u64 {
        self.plan.lock().counts[index(call)]
    }

    /// Fails the `n`-th call of kind `call` from now on (1 = the next one) with `kind`; with `sticky`, every later
    /// call of that kind fails too.
    pub fn fail(&self, call: Call, n: u64, kind: io::ErrorKind, sticky: bool) {
        let mut p = self.plan.lock();
        let at = p.counts[index(call)] + n;
        p.fail = Some((call, at, kind));
        p.sticky = sticky;
        p.fired = false;
    }

    /// Stops failing.
    pub fn heal(&self) {
        let mut p = self.plan.lock();
        p.fail = None;
        p.fired = false;
    }

    /// Makes every call of kind `call` wait until [`FaultyStorage::release`].
    pub fn hold(&self, call: Call) {
        self.plan.lock().held = Some(call);
    }

    /// Lets held calls go on.
    pub fn release(&self) {
        self.plan.lock().held = None;
        self.gate.notify_all();
    }

    /// Whether the planned failure has fired.
    pub fn fired(&self) -> bool {
        self.plan.lock().fired
    }

    fn check(&self, call: Call) -> io::Result<()> {
        let mut p = self.plan.lock();
        while p.held == Some(call) {
            self.gate.wait(&mut p);
        }
        p.counts[index(call)] += 1;
        let count = p.counts[index(call)];
        if let Some((c, at, kind)) = p.fail {
            if c == call && (count == at || (p.sticky && count > at)) {
                p.fired = true;
                return Err(io::Error::new(kind, format!("injected failure of {call:?} #{count}")));
            }
        }
        Ok(())
    }
}

fn index(call: Call) -> usize {
    Call::ALL.iter().position(|c| *c == call).expect("every call kind is listed")
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.fs.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.fs.list(dir)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(FaultyFile { inner: self.fs.open_read(path)?, storage: self.clone() }))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.check(Call::OpenWrite)?;
        Ok(Box::new(FaultyFile { inner: self.fs.open_write(path)?, storage: self.clone() }))
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.fs.read_all(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Call::Rename)?;
        self.fs.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(Call::Remove)?;
        self.fs.remove(path)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Call::Remove)?;
        self.fs.remove_dir(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Call::SyncDir)?;
        self.fs.sync_dir(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Debug + Send + Sync>> {
        self.fs.lock(path)
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn StorageFile>,
    storage: FaultyStorage,
}

impl StorageFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.storage.check(Call::Write)?;
        self.inner.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.storage.check(Call::Sync)?;
        self.inner.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.storage.check(Call::Sync)?;
        self.inner.sync_all()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.storage.check(Call::SetLen)?;
        self.inner.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        self.storage.check(Call::SetLen)?;
        self.inner.allocate(len)
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}

/// How a test's database stores its log payloads and snapshot blocks (docs/format.md, "Compression and
/// encryption"). The sealed ways compress every log payload (`compress_log_above(0)`), so that damage and faults
/// meet compressed frames, not only the large ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// Neither compressed nor encrypted.
    Plain,
    /// lz4, from the first byte.
    Compressed,
    /// XChaCha20-Poly1305 under [`Sealing::KEY`].
    Encrypted,
    /// lz4, then encrypted.
    Both,
}

impl Sealing {
    /// Every way, plain first.
    pub const ALL: [Sealing; 4] = [Sealing::Plain, Sealing::Compressed, Sealing::Encrypted, Sealing::Both];
    /// The ways that are not plain.
    pub const SEALED: [Sealing; 3] = [Sealing::Compressed, Sealing::Encrypted, Sealing::Both];
    /// The key of the encrypted ways.
    pub const KEY: [u8; 32] = *b"cairn-testkit reliability key 32";

    /// `builder` set up for this way.
    pub fn apply<S: Schema>(self, builder: Builder<S>) -> Builder<S> {
        let builder = match self {
            Sealing::Compressed | Sealing::Both => builder.compression(Compression::Lz4).compress_log_above(0),
            Sealing::Plain | Sealing::Encrypted => builder,
        };
        match self {
            Sealing::Encrypted | Sealing::Both => builder.encryption(EncryptionKey::from_bytes(Sealing::KEY)),
            Sealing::Plain | Sealing::Compressed => builder,
        }
    }

    /// Whether the database has a key file.
    pub fn encrypted(self) -> bool {
        matches!(self, Sealing::Encrypted | Sealing::Both)
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Sealing::Plain => "plain",
            Sealing::Compressed => "lz4",
            Sealing::Encrypted => "encrypted",
            Sealing::Both => "lz4+encrypted",
        }
    }
}

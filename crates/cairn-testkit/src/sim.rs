//! [`SimStorage`]: an in-memory disk with a volatile cache, for power-loss tests.
//!
//! It keeps apart what a real disk has made durable from what it only holds in its cache, and at a simulated power
//! loss produces the states a real disk may be left in (docs/format.md, "Assumptions about the disk"):
//!
//! - **Files.** Every file (an inode) has durable contents and the list of changes made since its last sync: writes
//!   (`write_all_at`) and size changes (`set_len`, `allocate`), in order. `sync_data` and `sync_all` both make the
//!   file's current contents durable, its length included: fdatasync and fsync are modelled alike because the length
//!   is treated as part of the data (Cairn relies on nothing more from either).
//! - **Directories.** Every directory has durable entries and the entry operations made since its last `sync_dir`:
//!   creations (`open_write` or `lock` of a missing file), renames and removals. A file created and synced whose
//!   directory was never synced may vanish; a rename not followed by `sync_dir` may or may not survive, but it is
//!   atomic (the new name or the old one, never both or neither). Directories themselves (`create_dir_all`) are
//!   durable at once, and file renames stay within one directory. Renaming a directory (onto a missing or empty one,
//!   as a backup does) and removing an empty one are durable at once too: more than a real disk promises, so a test
//!   sees the files of a renamed directory as they were durable, not whether the rename itself was made durable.
//! - **Power loss** ([`SimStorage::crash`], [`SimStorage::crash_images`]). Each pending change meets a [`Fate`]
//!   independently of the others, since a disk may write its cache back in any order: a directory operation or a size
//!   change is kept or dropped; a write is kept, dropped or torn. A torn write keeps a prefix of its bytes and the
//!   rest of its range keeps what was there before (a write never changes bytes outside its range, the
//!   "powersafe overwrite" of SQLite). Exhaustive enumeration tears a write at every 512-byte sector boundary of the
//!   file inside it, plus once in its middle at a byte boundary (a disk without atomic sectors); random sampling tears
//!   at any byte. A write that grew the file and is torn grows it only to the end of the kept prefix.
//! - After a crash the storage continues from the chosen image as its new durable state: locks are released and the
//!   handles opened before it fail, as they would in a new process.
//!
//! [`SimStorage::stop_after`] freezes the disk at the k-th mutating call: that call and every later one fail, so a
//! test can stop a database in the middle of a commit, a segment roll or a compaction and then take the crash images
//! of that moment.

mod crash;
mod file;

pub use crash::{CrashImage, CrashImages, Fate, Pending, PendingKind, Sampling, SECTOR};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn::{Storage, StorageFile};
use file::{SimFile, SimLock};
use parking_lot::Mutex;

/// How many recent calls [`SimStorage::trace`] remembers.
const TRACE_LEN: usize = 24;

type Ino = u64;

/// One file's contents: what is durable, what the cache holds, and the changes between the two.
#[derive(Debug, Clone, Default)]
struct Inode {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<FileChange>,
}

/// A change to a file's contents not yet made durable. `at` is the number of the call that made it.
#[derive(Debug, Clone)]
enum FileChange {
    Write { offset: u64, data: Vec<u8>, at: u64 },
    SetLen { len: u64, at: u64 },
    Allocate { len: u64, at: u64 },
}

/// One directory's entries: the durable ones, the current ones, and the operations between the two.
#[derive(Debug, Clone, Default)]
struct Dir {
    durable: BTreeMap<String, Ino>,
    current: BTreeMap<String, Ino>,
    pending: Vec<DirChange>,
}

/// A directory operation not yet made durable.
#[derive(Debug, Clone)]
enum DirChange {
    Create { name: String, ino: Ino, at: u64 },
    Rename { from: String, to: String, ino: Ino, at: u64 },
    Remove { name: String, ino: Ino, at: u64 },
}

/// The whole simulated disk.
#[derive(Debug, Clone, Default)]
struct Disk {
    dirs: BTreeMap<PathBuf, Dir>,
    inodes: BTreeMap<Ino, Inode>,
    next_ino: Ino,
}

#[derive(Debug, Default)]
struct Sim {
    disk: Disk,
    /// Held locks: path and the token of the guard holding it.
    locks: HashMap<PathBuf, u64>,
    next_token: u64,
    /// Bumped at every crash: handles of an older epoch are dead.
    epoch: u64,
    /// Mutating calls so far.
    calls: u64,
    stop_at: Option<u64>,
    /// The call at which the disk stopped, once it has.
    stopped: Option<u64>,
    trace: VecDeque<String>,
    sync_latency: Duration,
}

/// An in-memory storage that can lose power. Clones share one disk: keep a clone to crash the storage you gave to the
/// database (`Arc::new(sim.clone())`). See the module documentation for the model.
#[derive(Debug, Clone, Default)]
pub struct SimStorage {
    sim: Arc<Mutex<Sim>>,
}

impl SimStorage {
    /// An empty disk.
    pub fn new() -> Self {
        SimStorage::default()
    }

    /// A disk holding `image` as its durable state.
    pub fn from_image(image: &CrashImage) -> Self {
        let sim = SimStorage::new();
        sim.restore(image);
        sim
    }

    /// This storage as the database builder takes it.
    pub fn shared(&self) -> Arc<dyn Storage> {
        Arc::new(self.clone())
    }

    /// Mutating calls made so far (writes, size changes, syncs, creations, renames, removals, directory syncs).
    pub fn calls(&self) -> u64 {
        self.sim.lock().calls
    }

    /// Freezes the disk at the `n`-th mutating call from now (1 = the next one): that call and every later one fail
    /// with an I/O error and change nothing, as if the power had gone just before it.
    pub fn stop_after(&self, n: u64) {
        let mut s = self.sim.lock();
        s.stop_at = Some(s.calls + n.max(1));
    }

    /// Makes every file sync take this long (default: no time), so that concurrent commits queue behind one
    /// another's fsync and are written in batches, as on a real disk.
    pub fn set_sync_latency(&self, latency: Duration) {
        self.sim.lock().sync_latency = latency;
    }

    /// Whether the disk has stopped (see [`SimStorage::stop_after`]).
    pub fn stopped(&self) -> bool {
        self.sim.lock().stopped.is_some()
    }

    /// The most recent mutating calls, oldest first, for failure reports.
    pub fn trace(&self) -> Vec<String> {
        self.sim.lock().trace.iter().cloned().collect()
    }

    /// The changes a power loss now could lose, each with the fates it may meet.
    pub fn pending(&self) -> Vec<Pending> {
        crash::slots(&self.sim.lock().disk).into_iter().map(|s| s.pending).collect()
    }

    /// The durable state if the power went now and the disk wrote back what `choose` says of each pending change
    /// (in the order of [`SimStorage::pending`]). A fate that is not among the change's own is taken as `Drop`.
    pub fn image(&self, choose: &mut impl FnMut(&Pending) -> Fate) -> CrashImage {
        // `choose` runs without the disk locked: it may look at the storage.
        let disk = self.sim.lock().disk.clone();
        let slots = crash::slots(&disk);
        let fates: Vec<Fate> = slots.iter().map(|slot| choose(&slot.pending)).collect();
        crash::build(&disk, &slots, &fates)
    }

    /// The states a power loss now may leave: every combination of fates while there are at most
    /// `sampling.exhaustive_up_to` of them, otherwise a seeded random sample. Identical images are listed once.
    pub fn crash_images(&self, sampling: &Sampling) -> CrashImages {
        crash::images(&self.sim.lock().disk, sampling)
    }

    /// Loses power now: the pending changes meet the fates `choose` picks, and the disk goes on from the result.
    pub fn crash(&self, choose: &mut impl FnMut(&Pending) -> Fate) {
        let image = self.image(choose);
        self.restore(&image);
    }

    /// Continues from `image` as the durable state, as after a power loss: nothing is pending, every lock is released,
    /// every handle opened before fails, and a planned stop is forgotten.
    pub fn restore(&self, image: &CrashImage) {
        let mut s = self.sim.lock();
        let mut disk = Disk::default();
        for (dir, files) in image.dirs() {
            let mut entries = BTreeMap::new();
            for (name, bytes) in files {
                let ino = disk.next_ino;
                disk.next_ino += 1;
                disk.inodes.insert(ino, Inode { durable: bytes.clone(), current: bytes.clone(), pending: Vec::new() });
                entries.insert(name.clone(), ino);
            }
            disk.dirs.insert(dir.clone(), Dir { durable: entries.clone(), current: entries, pending: Vec::new() });
        }
        s.disk = disk;
        s.locks.clear();
        s.epoch += 1;
        s.stop_at = None;
        s.stopped = None;
        s.trace.clear();
    }

    /// The current contents of every file, as a crash that kept everything would leave them.
    pub fn current_image(&self) -> CrashImage {
        self.image(&mut |_| Fate::Keep)
    }

    /// What is durable now, as a crash that dropped everything pending would leave it.
    pub fn durable_image(&self) -> CrashImage {
        self.image(&mut |_| Fate::Drop)
    }
}

impl Sim {
    /// Counts a mutating call, and fails it if the disk has stopped.
    fn call(&mut self, what: impl FnOnce() -> String) -> io::Result<u64> {
        self.calls += 1;
        if self.stopped.is_none() && self.stop_at.is_some_and(|at| self.calls >= at) {
            self.stopped = Some(self.calls);
        }
        if let Some(at) = self.stopped {
            return Err(io::Error::other(format!("simulated power loss: the disk stopped at call #{at}")));
        }
        if self.trace.len() == TRACE_LEN {
            self.trace.pop_front();
        }
        let line = format!("#{} {}", self.calls, what());
        self.trace.push_back(line);
        Ok(self.calls)
    }

    fn refuse_if_stopped(&self) -> io::Result<()> {
        match self.stopped {
            Some(at) => Err(io::Error::other(format!("simulated power loss: the disk stopped at call #{at}"))),
            None => Ok(()),
        }
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.disk.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    fn lookup(&self, path: &Path) -> io::Result<Ino> {
        let (dir, name) = split(path)?;
        self.disk.dirs.get(dir).and_then(|d| d.current.get(name)).copied().ok_or_else(|| not_found(path))
    }

    /// The file at `path`, created (empty, a pending directory entry) if missing.
    fn open_or_create(&mut self, path: &Path, at: u64) -> io::Result<Ino> {
        if let Ok(ino) = self.lookup(path) {
            return Ok(ino);
        }
        let (dir, name) = split(path)?;
        let ino = self.disk.next_ino;
        let d = self.dir_mut(dir)?;
        d.current.insert(name.to_string(), ino);
        d.pending.push(DirChange::Create { name: name.to_string(), ino, at });
        self.disk.inodes.insert(ino, Inode::default());
        self.disk.next_ino += 1;
        Ok(ino)
    }

    /// Whether directory `dir` holds files or directories.
    fn has_children(&self, dir: &Path) -> io::Result<bool> {
        let d = self.disk.dirs.get(dir).ok_or_else(|| not_found(dir))?;
        Ok(!d.current.is_empty() || self.disk.dirs.keys().any(|k| k != dir && k.starts_with(dir)))
    }

    /// Renames directory `from`, with everything under it and the locks held there, to `to`, which must be missing or
    /// an empty directory. Durable at once, like the creation of a directory.
    fn rename_dir(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        if self.lookup(to).is_ok() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{}: a file", to.display())));
        }
        if to.starts_with(from) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot move a directory into itself"));
        }
        if self.disk.dirs.contains_key(to) && self.has_children(to)? {
            return Err(io::Error::new(io::ErrorKind::DirectoryNotEmpty, format!("{}: not empty", to.display())));
        }
        let moved: Vec<PathBuf> = self.disk.dirs.keys().filter(|d| d.starts_with(from)).cloned().collect();
        for old in moved {
            let dir = self.disk.dirs.remove(&old).expect("listed just above");
            let new = to.join(old.strip_prefix(from).expect("listed by prefix"));
            self.disk.dirs.insert(new, dir);
        }
        let locks: Vec<PathBuf> = self.locks.keys().filter(|p| p.starts_with(from)).cloned().collect();
        for old in locks {
            let token = self.locks.remove(&old).expect("listed just above");
            self.locks.insert(to.join(old.strip_prefix(from).expect("listed by prefix")), token);
        }
        Ok(())
    }

    fn inode(&mut self, ino: Ino) -> &mut Inode {
        self.disk.inodes.get_mut(&ino).expect("an open file's inode lives as long as the disk")
    }
}

fn split(path: &Path) -> io::Result<(&Path, &str)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, format!("not a file path: {}", path.display()));
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
    Ok((path.parent().ok_or_else(bad)?, name))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file or directory", path.display()))
}

fn short(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

impl Storage for SimStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.sim.lock();
        s.refuse_if_stopped()?;
        for d in dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            s.disk.dirs.entry(d.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.sim.lock();
        let d = s.disk.dirs.get(dir).ok_or_else(|| not_found(dir))?;
        Ok(d.current.keys().cloned().collect())
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let s = self.sim.lock();
        let ino = s.lookup(path)?;
        Ok(Box::new(SimFile { sim: self.sim.clone(), ino, epoch: s.epoch, writable: false, name: short(path) }))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let mut s = self.sim.lock();
        let at = s.call(|| format!("open_write {}", short(path)))?;
        let ino = s.open_or_create(path, at)?;
        Ok(Box::new(SimFile { sim: self.sim.clone(), ino, epoch: s.epoch, writable: true, name: short(path) }))
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut s = self.sim.lock();
        let ino = s.lookup(path)?;
        Ok(s.inode(ino).current.clone())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.sim.lock();
        let at = s.call(|| format!("rename {} -> {}", short(from), short(to)))?;
        if s.disk.dirs.contains_key(from) {
            return s.rename_dir(from, to);
        }
        let ino = s.lookup(from)?;
        let ((dir, from_name), (to_dir, to_name)) = (split(from)?, split(to)?);
        if dir != to_dir {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "SimStorage renames only within one directory"));
        }
        if from_name == to_name {
            return Ok(());
        }
        let d = s.dir_mut(dir)?;
        d.current.remove(from_name);
        d.current.insert(to_name.to_string(), ino);
        d.pending.push(DirChange::Rename { from: from_name.to_string(), to: to_name.to_string(), ino, at });
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.sim.lock();
        let at = s.call(|| format!("remove {}", short(path)))?;
        let ino = s.lookup(path)?;
        let (dir, name) = split(path)?;
        let d = s.dir_mut(dir)?;
        d.current.remove(name);
        d.pending.push(DirChange::Remove { name: name.to_string(), ino, at });
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.sim.lock();
        s.call(|| format!("remove_dir {}", dir.display()))?;
        if s.has_children(dir)? {
            return Err(io::Error::new(io::ErrorKind::DirectoryNotEmpty, format!("{}: not empty", dir.display())));
        }
        s.disk.dirs.remove(dir);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.sim.lock();
        s.call(|| format!("sync_dir {}", dir.display()))?;
        let d = s.dir_mut(dir)?;
        d.durable = d.current.clone();
        d.pending.clear();
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Debug + Send + Sync>> {
        let mut s = self.sim.lock();
        s.refuse_if_stopped()?;
        let at = s.calls;
        s.open_or_create(path, at)?;
        if s.locks.contains_key(path) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let token = s.next_token;
        s.next_token += 1;
        s.locks.insert(path.to_path_buf(), token);
        Ok(Box::new(SimLock { sim: Arc::downgrade(&self.sim), token }))
    }
}

#[cfg(test)]
mod tests;

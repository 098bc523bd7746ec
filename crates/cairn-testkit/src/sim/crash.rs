//! Crash images: which pending changes a power loss keeps, drops or tears, and the disk state that results. Pure: it
//! reads the simulated disk and builds new states, it changes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{DirChange, Disk, FileChange, Ino};

/// The sector size at which exhaustive enumeration tears writes.
pub const SECTOR: u64 = 512;

/// What a power loss does to one pending change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fate {
    /// Lost: the disk never wrote it back.
    Drop,
    /// Written back whole.
    Keep,
    /// Only this many leading bytes of the write reached the disk (writes only).
    Tear(u64),
}

/// What a pending change is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingKind {
    /// `write_all_at` of `len` bytes at `offset`.
    Write {
        /// Where the write starts.
        offset: u64,
        /// How many bytes it writes.
        len: u64,
    },
    /// `set_len` to this length.
    SetLen(u64),
    /// `allocate` up to this length.
    Allocate(u64),
    /// A file of this name created in the directory.
    Create(String),
    /// A rename within the directory.
    Rename {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
    /// A file of this name removed from the directory.
    Remove(String),
}

/// A change that a power loss now could lose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The file changed, by one of its names; for a directory operation, the directory.
    pub path: PathBuf,
    /// The change.
    pub kind: PendingKind,
    /// The number of the mutating call that made it (see [`super::SimStorage::calls`]).
    pub call: u64,
    /// The fates exhaustive enumeration gives it. Random sampling may also tear a write at any other byte.
    pub fates: Vec<Fate>,
}

/// How [`super::SimStorage::crash_images`] chooses images.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    /// Enumerate every combination of fates while there are at most this many.
    pub exhaustive_up_to: u64,
    /// Otherwise, draw this many combinations (besides "everything kept" and "everything dropped").
    pub samples: usize,
    /// The seed of the draw.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { exhaustive_up_to: 256, samples: 24, seed: 0 }
    }
}

/// The result of [`super::SimStorage::crash_images`].
#[derive(Debug, Clone)]
pub struct CrashImages {
    /// The distinct images, "everything kept" first.
    pub images: Vec<CrashImage>,
    /// Pending changes.
    pub pending: usize,
    /// Combinations of their fates (saturating).
    pub combinations: u128,
    /// Whether `images` holds every combination's image.
    pub exhaustive: bool,
}

/// The files of a disk after a power loss: directory, then name, then contents.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct CrashImage {
    dirs: BTreeMap<PathBuf, BTreeMap<String, Vec<u8>>>,
}

impl CrashImage {
    /// An image with no directory.
    pub fn new() -> Self {
        CrashImage::default()
    }

    /// Puts a file at `path` (its directory is created).
    pub fn insert(&mut self, path: &Path, bytes: Vec<u8>) {
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.dirs.entry(dir).or_default().insert(name, bytes);
    }

    /// The contents of the file at `path`.
    pub fn file(&self, path: &Path) -> Option<&[u8]> {
        let name = path.file_name()?.to_str()?;
        self.dirs.get(path.parent()?)?.get(name).map(Vec::as_slice)
    }

    /// Every file, with its full path.
    pub fn files(&self) -> impl Iterator<Item = (PathBuf, &[u8])> + '_ {
        self.dirs.iter().flat_map(|(dir, files)| files.iter().map(|(name, b)| (dir.join(name), b.as_slice())))
    }

    pub(super) fn dirs(&self) -> &BTreeMap<PathBuf, BTreeMap<String, Vec<u8>>> {
        &self.dirs
    }
}

impl fmt::Debug for CrashImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (path, bytes) in self.files() {
            let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            m.entry(&path.display(), &format_args!("{} bytes ({used} up to the last non-zero)", bytes.len()));
        }
        m.finish()
    }
}

/// A pending change and where it lives in the disk model.
pub(super) struct Slot {
    target: Target,
    pub(super) pending: Pending,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Target {
    Dir(PathBuf, usize),
    File(Ino, usize),
}

/// Every pending change that can matter: directory operations, and changes to files that some image can hold (a file
/// removed and its removal made durable is gone from every image, whatever happens to its writes).
pub(super) fn slots(disk: &Disk) -> Vec<Slot> {
    let mut slots = Vec::new();
    let mut reachable: HashSet<Ino> = HashSet::new();
    let mut names: HashMap<Ino, PathBuf> = HashMap::new();
    for (path, dir) in &disk.dirs {
        for (name, ino) in dir.durable.iter().chain(&dir.current) {
            names.entry(*ino).or_insert_with(|| path.join(name));
        }
        reachable.extend(dir.durable.values());
        for (i, change) in dir.pending.iter().enumerate() {
            let (kind, call) = match change {
                DirChange::Create { name, ino, at } => {
                    reachable.insert(*ino);
                    names.entry(*ino).or_insert_with(|| path.join(name));
                    (PendingKind::Create(name.clone()), *at)
                }
                DirChange::Rename { from, to, ino, at } => {
                    reachable.insert(*ino);
                    (PendingKind::Rename { from: from.clone(), to: to.clone() }, *at)
                }
                DirChange::Remove { name, at, .. } => (PendingKind::Remove(name.clone()), *at),
            };
            let pending = Pending { path: path.clone(), kind, call, fates: vec![Fate::Drop, Fate::Keep] };
            slots.push(Slot { target: Target::Dir(path.clone(), i), pending });
        }
    }
    for (ino, inode) in disk.inodes.iter().filter(|(ino, _)| reachable.contains(ino)) {
        let path = names.get(ino).cloned().unwrap_or_else(|| PathBuf::from(format!("<inode {ino}>")));
        for (i, change) in inode.pending.iter().enumerate() {
            let (kind, call, fates) = match change {
                FileChange::Write { offset, data, at } => {
                    let len = data.len() as u64;
                    (PendingKind::Write { offset: *offset, len }, *at, write_fates(*offset, len))
                }
                FileChange::SetLen { len, at } => (PendingKind::SetLen(*len), *at, vec![Fate::Drop, Fate::Keep]),
                FileChange::Allocate { len, at } => (PendingKind::Allocate(*len), *at, vec![Fate::Drop, Fate::Keep]),
            };
            let pending = Pending { path: path.clone(), kind, call, fates };
            slots.push(Slot { target: Target::File(*ino, i), pending });
        }
    }
    slots
}

/// Drop, keep, a tear at every sector boundary inside the write, and a tear in its middle at a byte boundary.
fn write_fates(offset: u64, len: u64) -> Vec<Fate> {
    let mut fates = vec![Fate::Drop, Fate::Keep];
    let mut boundary = (offset / SECTOR + 1) * SECTOR;
    while boundary < offset + len {
        fates.push(Fate::Tear(boundary - offset));
        boundary += SECTOR;
    }
    let middle = len / 2;
    if middle > 0 && !(offset + middle).is_multiple_of(SECTOR) {
        fates.push(Fate::Tear(middle));
    }
    fates
}

/// The image that results when each slot meets the fate at the same position in `fates`.
pub(super) fn build(disk: &Disk, slots: &[Slot], fates: &[Fate]) -> CrashImage {
    let chosen: HashMap<&Target, Fate> = slots.iter().map(|s| &s.target).zip(fates.iter().copied()).collect();
    let fate = |t: Target| chosen.get(&t).copied().unwrap_or(Fate::Drop);
    let mut image = CrashImage::new();
    for (path, dir) in &disk.dirs {
        let mut entries = dir.durable.clone();
        for (i, change) in dir.pending.iter().enumerate() {
            if fate(Target::Dir(path.clone(), i)) != Fate::Keep {
                continue;
            }
            match change {
                DirChange::Create { name, ino, .. } => {
                    entries.insert(name.clone(), *ino);
                }
                DirChange::Rename { from, to, ino, .. } => {
                    if entries.get(from) == Some(ino) {
                        entries.remove(from);
                    }
                    entries.insert(to.clone(), *ino);
                }
                DirChange::Remove { name, ino, .. } => {
                    if entries.get(name) == Some(ino) {
                        entries.remove(name);
                    }
                }
            }
        }
        let files = entries.into_iter().map(|(name, ino)| (name, contents(disk, ino, &fate))).collect();
        image.dirs.insert(path.clone(), files);
    }
    image
}

/// A file's durable contents with its pending changes applied according to their fates.
fn contents(disk: &Disk, ino: Ino, fate: &impl Fn(Target) -> Fate) -> Vec<u8> {
    let inode = &disk.inodes[&ino];
    let mut data = inode.durable.clone();
    for (i, change) in inode.pending.iter().enumerate() {
        match (change, fate(Target::File(ino, i))) {
            (FileChange::Write { offset, data: bytes, .. }, Fate::Keep) => put(&mut data, *offset, bytes),
            (FileChange::Write { offset, data: bytes, .. }, Fate::Tear(n)) => {
                put(&mut data, *offset, &bytes[..(n as usize).min(bytes.len())])
            }
            (FileChange::SetLen { len, .. }, Fate::Keep) => data.resize(*len as usize, 0),
            (FileChange::Allocate { len, .. }, Fate::Keep) if data.len() < *len as usize => {
                data.resize(*len as usize, 0)
            }
            _ => {}
        }
    }
    data
}

fn put(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let (start, end) = (offset as usize, offset as usize + bytes.len());
    if data.len() < end {
        data.resize(end, 0);
    }
    data[start..end].copy_from_slice(bytes);
}

/// Every combination of fates when there are few, otherwise "all kept", "all dropped" and a seeded sample.
pub(super) fn images(disk: &Disk, sampling: &Sampling) -> CrashImages {
    let slots = slots(disk);
    let combinations = slots.iter().fold(1u128, |n, s| n.saturating_mul(s.pending.fates.len() as u128));
    let exhaustive = combinations <= u128::from(sampling.exhaustive_up_to);
    let mut seen = HashSet::new();
    let mut images = Vec::new();
    let mut add = |fates: &[Fate]| {
        let image = build(disk, &slots, fates);
        if seen.insert(image.clone()) {
            images.push(image);
        }
    };
    add(&vec![Fate::Keep; slots.len()]);
    add(&vec![Fate::Drop; slots.len()]);
    if exhaustive {
        let mut digits = vec![0usize; slots.len()];
        loop {
            let fates: Vec<Fate> = slots.iter().zip(&digits).map(|(s, &d)| s.pending.fates[d]).collect();
            add(&fates);
            // Next combination: a mixed-radix counter over the slots' fate lists.
            let mut i = 0;
            while i < digits.len() {
                digits[i] += 1;
                if digits[i] < slots[i].pending.fates.len() {
                    break;
                }
                digits[i] = 0;
                i += 1;
            }
            if i == digits.len() {
                break;
            }
        }
    } else {
        let mut rng = StdRng::seed_from_u64(sampling.seed);
        let mut calls: Vec<u64> = slots.iter().map(|s| s.pending.call).collect();
        calls.sort_unstable();
        calls.dedup();
        for n in 0..sampling.samples {
            let fates: Vec<Fate> = match n % 3 {
                // Every change on its own.
                0 => slots.iter().map(|s| random_fate(&s.pending, &mut rng)).collect(),
                // Written back in call order until the power went, in the middle of one call.
                1 => {
                    let cut = calls[rng.random_range(0..calls.len())];
                    slots
                        .iter()
                        .map(|s| match s.pending.call.cmp(&cut) {
                            std::cmp::Ordering::Less => Fate::Keep,
                            std::cmp::Ordering::Equal => random_fate(&s.pending, &mut rng),
                            std::cmp::Ordering::Greater => Fate::Drop,
                        })
                        .collect()
                }
                // Nearly everything written back: a few holes, kept out of order around them.
                _ => slots
                    .iter()
                    .map(|s| if rng.random_bool(0.85) { Fate::Keep } else { random_fate(&s.pending, &mut rng) })
                    .collect(),
            };
            add(&fates);
        }
    }
    CrashImages { images, pending: slots.len(), combinations, exhaustive }
}

/// A random fate for `p`: drop, keep or (a write of two bytes or more) tear at any byte, with even chances.
fn random_fate(p: &Pending, rng: &mut StdRng) -> Fate {
    let choices = match p.kind {
        PendingKind::Write { len, .. } if len >= 2 => 3,
        _ => 2,
    };
    match (rng.random_range(0..choices), &p.kind) {
        (0, _) => Fate::Drop,
        (1, _) => Fate::Keep,
        (_, PendingKind::Write { len, .. }) => Fate::Tear(rng.random_range(1..*len)),
        _ => unreachable!("only writes of two bytes or more get a third choice"),
    }
}

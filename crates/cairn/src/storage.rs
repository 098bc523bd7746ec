//! The storage seam: every byte Cairn writes or reads, every fsync, rename, removal and directory sync goes through
//! [`Storage`], so tests can put a storage that fails or lies in its place (see `cairn-testkit`).
//!
//! [`FsStorage`], the default, is a thin layer over `std::fs`.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// A directory-and-files storage backend. Implementations must be safe to share between threads.
pub trait Storage: Send + Sync + Debug + 'static {
    /// Creates `dir` and its parents if they do not exist.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Opens a file for reading and writing, creating it if missing.
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Reads a whole file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Reads a whole file for a caller that waits on it (opening a database), on more than one thread where that
    /// is faster. Background work (a compaction) uses [`Storage::read_all`], so that it takes one core from the
    /// application and no more. The default is `read_all`.
    fn read_all_now(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.read_all(path)
    }
    /// Renames `from` to `to`, replacing `to`. A backup also renames a directory, onto a missing or empty one.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory. Only a backup that failed uses it, to remove its partial copy; the default reports
    /// [`io::ErrorKind::Unsupported`], and the empty directory is then left behind.
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let _ = dir;
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing) for as long as the returned guard lives. Fails with
    /// [`io::ErrorKind::WouldBlock`] if someone else holds it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Debug + Send + Sync>>;
}

/// An open file of a [`Storage`].
pub trait StorageFile: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the file's data and metadata durable (fsync).
    fn sync_all(&self) -> io::Result<()>;
    /// Sets the file's length, truncating or extending with zeros.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves space so that the file is at least `len` bytes long and writes below `len` allocate nothing; the new
    /// bytes read as zeros. Never shrinks the file.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Asks the system to start writing `len` bytes at `offset` to the device, without waiting and without any
    /// promise of durability (only a later [`StorageFile::sync_data`] gives that), so that the sync has less left
    /// to do. A hint: the default does nothing.
    fn start_writeback(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(FsFile(File::open(path)?)))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        Ok(Box::new(FsFile(file)))
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_all_now(&self, path: &Path) -> io::Result<Vec<u8>> {
        read_whole(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(())
        }
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Debug + Send + Sync>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(file)),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[derive(Debug)]
struct FsFile(File);

impl StorageFile for FsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(&self.0, buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(&self.0, buf, offset)
        }
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_all_at(&self.0, buf, offset)
        }
        #[cfg(windows)]
        {
            let (mut buf, mut offset) = (buf, offset);
            while !buf.is_empty() {
                let n = std::os::windows::fs::FileExt::seek_write(&self.0, buf, offset)?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                buf = &buf[n..];
                offset += n as u64;
            }
            Ok(())
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        if self.size()? >= len {
            return Ok(());
        }
        fs4::FileExt::allocate(&self.0, len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn start_writeback(&self, offset: u64, len: u64) {
        crate::sys::start_writeback(&self.0, offset, len);
    }
}

/// Who waits while a whole file is read: the application (an open, an inspection, a catch-up from a snapshot in
/// shared mode), or nobody (a compaction, which runs beside the application's threads and so takes one core and no
/// more: reading and checking the old snapshot on two threads slowed the commits running beside it, see
/// ARCHITECTURE.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    Caller,
    Nobody,
}

impl Waiting {
    /// Reads the whole file at `path` as this waiting calls for.
    pub(crate) fn read_all(self, storage: &dyn Storage, path: &Path) -> io::Result<Vec<u8>> {
        match self {
            Waiting::Caller => storage.read_all_now(path),
            Waiting::Nobody => storage.read_all(path),
        }
    }
}

/// Files at least this large are read by two threads at once (`read_whole`).
const READ_IN_HALVES: u64 = 32 << 20;

/// Reads a whole file. A large one (a snapshot, at open) is read as two halves on two threads: the copy out of the
/// page cache and the faults of the fresh buffer's pages are most of the time, and they split across cores (190 MB
/// at reopen: 90 to 50 ms here). A file that changes length while it is read (none of Cairn's should) is read again
/// the ordinary way.
#[cfg(unix)]
fn read_whole(path: &Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let Ok(size) = usize::try_from(len) else { return fs::read(path) };
    if len < READ_IN_HALVES {
        // The file is open already: read it from here rather than opening it again.
        let mut buf = Vec::with_capacity(size);
        io::Read::read_to_end(&mut &file, &mut buf)?;
        return Ok(buf);
    }
    // Zeroed by the allocator's fresh pages, not by a pass over them: the reads below are the first to touch them.
    let mut buf = vec![0u8; size];
    let (first, second) = buf.split_at_mut(size / 2);
    let half = first.len() as u64;
    let (a, b) = std::thread::scope(|s| {
        let later = s.spawn(|| file.read_exact_at(second, half));
        (file.read_exact_at(first, 0), later.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    for r in [a, b] {
        match r {
            Ok(()) => {}
            // Shorter than it was a moment ago: read it as it is now.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return fs::read(path),
            Err(e) => return Err(e),
        }
    }
    let mut probe = [0u8; 1];
    match file.read_at(&mut probe, len)? {
        0 => Ok(buf),
        // Longer than it was: the same.
        _ => fs::read(path),
    }
}

#[cfg(not(unix))]
fn read_whole(path: &Path) -> io::Result<Vec<u8>> {
    fs::read(path)
}

#[cfg(test)]
mod read_tests {
    use super::*;

    /// A file past the two-thread threshold reads back byte for byte, its two halves in their places.
    #[test]
    fn a_large_file_reads_whole_in_halves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let len = READ_IN_HALVES as usize + 12_345;
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let read = FsStorage.read_all_now(&path).unwrap();
        assert_eq!(read.len(), len);
        assert!(read == bytes, "the file read back differs");
        let small = dir.path().join("small");
        std::fs::write(&small, b"abc").unwrap();
        assert_eq!(FsStorage.read_all_now(&small).unwrap(), b"abc");
        assert_eq!(FsStorage.read_all_now(&dir.path().join("missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}

//! Handles of [`SimStorage`](super::SimStorage): open files and lock guards.

use std::io;
use std::sync::{Arc, Weak};

use cairn::StorageFile;
use parking_lot::{Mutex, MutexGuard};

use super::{FileChange, Ino, Sim};

/// The guard of `SimStorage::lock`: releases the lock when dropped, unless a crash released it already. The lock
/// follows its file when a directory is renamed, so the guard finds it by its token.
#[derive(Debug)]
pub(super) struct SimLock {
    pub(super) sim: Weak<Mutex<Sim>>,
    pub(super) token: u64,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.upgrade() {
            sim.lock().locks.retain(|_, token| *token != self.token);
        }
    }
}

/// An open file of a [`SimStorage`](super::SimStorage). Like a POSIX descriptor it refers to the file, not to its name.
#[derive(Debug)]
pub(super) struct SimFile {
    pub(super) sim: Arc<Mutex<Sim>>,
    pub(super) ino: Ino,
    pub(super) epoch: u64,
    pub(super) writable: bool,
    pub(super) name: String,
}

impl SimFile {
    /// Locks the disk for a call through this handle, refusing handles from before a crash.
    fn open(&self) -> io::Result<MutexGuard<'_, Sim>> {
        let s = self.sim.lock();
        if s.epoch != self.epoch {
            return Err(io::Error::other(format!("{}: file handle from before a simulated power loss", self.name)));
        }
        Ok(s)
    }

    /// Sleeps for the sync latency, without holding the disk.
    fn wait_for_sync(&self) -> io::Result<()> {
        let latency = self.open()?.sync_latency;
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        Ok(())
    }

    fn open_for_write(&self) -> io::Result<MutexGuard<'_, Sim>> {
        if !self.writable {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("{} is open for reading", self.name)));
        }
        self.open()
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut s = self.open()?;
        let data = &s.inode(self.ino).current;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.open_for_write()?;
        let at = s.call(|| format!("write {} @{offset} +{}", self.name, buf.len()))?;
        if buf.is_empty() {
            return Ok(());
        }
        let inode = s.inode(self.ino);
        let (start, end) = (offset as usize, offset as usize + buf.len());
        if inode.current.len() < end {
            inode.current.resize(end, 0);
        }
        inode.current[start..end].copy_from_slice(buf);
        inode.pending.push(FileChange::Write { offset, data: buf.to_vec(), at });
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.wait_for_sync()?;
        let mut s = self.open_for_write()?;
        s.call(|| format!("sync_data {}", self.name))?;
        let inode = s.inode(self.ino);
        inode.durable = inode.current.clone();
        inode.pending.clear();
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.wait_for_sync()?;
        let mut s = self.open_for_write()?;
        s.call(|| format!("sync_all {}", self.name))?;
        let inode = s.inode(self.ino);
        inode.durable = inode.current.clone();
        inode.pending.clear();
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.open_for_write()?;
        let at = s.call(|| format!("set_len {} {len}", self.name))?;
        let inode = s.inode(self.ino);
        inode.current.resize(len as usize, 0);
        inode.pending.push(FileChange::SetLen { len, at });
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let mut s = self.open_for_write()?;
        let at = s.call(|| format!("allocate {} {len}", self.name))?;
        let inode = s.inode(self.ino);
        if (inode.current.len() as u64) < len {
            inode.current.resize(len as usize, 0);
            inode.pending.push(FileChange::Allocate { len, at });
        }
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        let mut s = self.open()?;
        Ok(s.inode(self.ino).current.len() as u64)
    }
}

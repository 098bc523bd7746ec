//! Calls to the operating system that std does not offer.
#![allow(unsafe_code)]

/// Lowers the calling thread's CPU priority to the lowest (nice 19), so background work runs on whatever the
/// application's threads leave. Best effort: on failure (or off Linux, where the call would apply to the whole
/// process) the thread keeps its priority.
pub(crate) fn run_in_background() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `setpriority` reads no memory of ours; on Linux, `PRIO_PROCESS` with id 0 names the calling
        // thread alone (nice values are per thread), so it cannot change any other thread of the program.
        let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
        if r != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower the compaction thread's priority");
        }
    }
}

/// Starts writeback of `len` bytes of `file` at `offset` (`sync_file_range(2)` with `SYNC_FILE_RANGE_WRITE`): the
/// pages go to the device while the caller goes on, and a later `fdatasync` has less to wait for. No durability
/// is promised or assumed. Best effort: a failure (or another system) changes nothing but the timing.
pub(crate) fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
        // SAFETY: `sync_file_range` reads no memory of ours; the descriptor is open for as long as `file` is
        // borrowed, and the call only schedules I/O of that file's page cache.
        let r = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
        if r != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not start writeback of a log segment");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Hands the heap memory freed by a closing database back to the operating system, when `armed`.
///
/// glibc keeps freed blocks of up to 128 bytes (a record's shared entry is one) on lists that it merges only at the
/// next large allocation, so without this, closing a database of a million records made the *next* open in the
/// process pay 100-230 ms of merging inside its first allocation (found with strace and timers in the benchmark's
/// close-then-reopen step). `malloc_trim(0)` does the merge at close, where the cost belongs, and returns the
/// memory. Armed by `Db::drop` only for databases that held many records; elsewhere (other allocators' systems)
/// it does nothing.
#[derive(Debug, Default)]
pub(crate) struct ReturnFreedMemory {
    pub(crate) armed: std::sync::atomic::AtomicBool,
}

impl Drop for ReturnFreedMemory {
    fn drop(&mut self) {
        if !self.armed.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: `malloc_trim` takes a plain integer and only reorganizes glibc's own heap, which every allocation
        // and free already synchronizes on; it invalidates no live allocation.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

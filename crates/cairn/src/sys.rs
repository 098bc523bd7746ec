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

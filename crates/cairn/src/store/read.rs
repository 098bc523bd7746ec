//! Per-thread read handles.
//!
//! A `left_right::ReadHandle` belongs to one thread. Each thread keeps one per open database in a thread-local list,
//! created on its first read, so a read costs a thread-local lookup, an epoch store and a fence, then the table
//! lookup itself. A thread-local counter knows whether the thread is inside a read closure, so that a write from
//! there (which would wait for the thread's own read to end) fails instead of deadlocking.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

use left_right::{ReadHandle, ReadHandleFactory};

use super::state::State;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static HANDLES: RefCell<Vec<(u64, ReadHandle<State>)>> = const { RefCell::new(Vec::new()) };
    static READ_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Gives any thread read access to one database's published state.
pub(crate) struct Reader {
    id: u64,
    factory: ReadHandleFactory<State>,
}

struct DepthGuard;

impl DepthGuard {
    fn enter() -> Self {
        READ_DEPTH.with(|d| d.set(d.get() + 1));
        DepthGuard
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        READ_DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// True while this thread is inside a read of any database.
pub(crate) fn in_read() -> bool {
    READ_DEPTH.with(|d| d.get() > 0)
}

impl Reader {
    pub(crate) fn new(factory: ReadHandleFactory<State>) -> Self {
        Reader { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), factory }
    }

    /// Runs `f` on the latest published state. Never blocks.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        HANDLES.with(|cell| {
            if let Ok(handles) = cell.try_borrow() {
                if let Some((_, handle)) = handles.iter().find(|(id, _)| *id == self.id) {
                    return Self::enter(handle, f);
                }
            }
            let handle = self.factory.handle();
            match cell.try_borrow_mut() {
                Ok(mut handles) => {
                    handles.retain(|(_, h)| !h.was_dropped());
                    handles.push((self.id, handle));
                    drop(handles);
                    self.with(f)
                }
                // A read nested in a read of another database that this thread has not read before.
                Err(_) => Self::enter(&handle, f),
            }
        })
    }

    fn enter<R>(handle: &ReadHandle<State>, f: impl FnOnce(&State) -> R) -> R {
        let guard = handle.enter().expect("the state outlives every handle of its database");
        let _depth = DepthGuard::enter();
        f(&guard)
    }
}

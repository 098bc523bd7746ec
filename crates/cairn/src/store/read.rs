//! Per-thread readers.
//!
//! A `publish::Reader` belongs to one thread. Each thread keeps one per open database in a thread-local list, created
//! on its first read, so a read costs a thread-local lookup and the reader's two plain stores, then the table lookup
//! itself. A thread-local counter knows whether the thread is inside a read closure, so that a write from there
//! (which would wait for the thread's own read to end) fails instead of deadlocking.

use std::cell::{Cell, RefCell};

use super::publish::{self, Arc, Published};
use super::state::State;

thread_local! {
    static READERS: RefCell<Vec<publish::Reader<State>>> = const { RefCell::new(Vec::new()) };
    /// Reads that run on a temporary reader (nested in a read of another database, see `with`).
    static TEMPORARY: Cell<u32> = const { Cell::new(0) };
}

/// Gives any thread read access to one database's published state.
pub(crate) struct Reader {
    shared: Arc<Published<State>>,
}

/// True while this thread is inside a read of any database (checked on the write path only).
pub(crate) fn in_read() -> bool {
    TEMPORARY.with(Cell::get) > 0
        || READERS.with(|cell| cell.try_borrow().map_or(true, |readers| readers.iter().any(|r| r.is_reading())))
}

impl Reader {
    pub(crate) fn new(shared: Arc<Published<State>>) -> Self {
        Reader { shared }
    }

    /// Runs `f` on the latest published state. Never blocks.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        READERS.with(|cell| {
            if let Ok(readers) = cell.try_borrow() {
                if let Some(r) = readers.iter().find(|r| r.publishes(&self.shared)) {
                    return r.read(f);
                }
            }
            let reader = publish::reader(&self.shared);
            match cell.try_borrow_mut() {
                Ok(mut readers) => {
                    readers.retain(|r| !r.is_closed());
                    readers.push(reader);
                    drop(readers);
                    self.with(f)
                }
                // A read nested in a read of another database that this thread has not read before.
                Err(_) => {
                    TEMPORARY.with(|t| t.set(t.get() + 1));
                    let out = reader.read(f);
                    TEMPORARY.with(|t| t.set(t.get() - 1));
                    out
                }
            }
        })
    }
}

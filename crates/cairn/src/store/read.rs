//! Per-thread readers.
//!
//! A `publish::Reader` belongs to one thread. Each thread keeps one per open database in a thread-local list, created
//! on its first read, so a read costs a thread-local lookup and the reader's two plain stores, then the table lookup
//! itself. Each reader counts its nesting, so `in_read` knows whether the thread is inside a read closure, and a write
//! from there (which would wait for the thread's own read to end) fails instead of deadlocking.

use std::cell::RefCell;
use std::rc::Rc;

use super::publish::{self, Arc, Published};
use super::state::State;

thread_local! {
    static READERS: RefCell<Vec<Rc<publish::Reader<State>>>> = const { RefCell::new(Vec::new()) };
}

/// Gives any thread read access to one database's published state.
pub(crate) struct Reader {
    shared: Arc<Published<State>>,
}

/// True while this thread is inside a read of any database (checked on the write path only).
pub(crate) fn in_read() -> bool {
    READERS.with(|cell| cell.try_borrow().map_or(true, |readers| readers.iter().any(|r| r.is_reading())))
}

impl Reader {
    pub(crate) fn new(shared: Arc<Published<State>>) -> Self {
        Reader { shared }
    }

    /// Runs `f` on the latest published state. Never blocks.
    ///
    /// The common case (this thread has read this database before) is kept small enough to inline into the caller's
    /// loop: every instruction here delays the next lookup's cache misses (ARCHITECTURE.md, issue 3). The thread's
    /// list is borrowed only to find the reader, not while `f` runs, so `f` may read other databases freely.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let found = READERS.with(|cell| cell.borrow().iter().find(|r| r.publishes(&self.shared)).cloned());
        match found {
            Some(r) => r.read(f),
            None => self.with_new_reader(f),
        }
    }

    /// The first read of this database on this thread. Readers of closed databases leave the list here, and are
    /// dropped after the list is released: dropping one may drop the last copy of a state, and with it values whose
    /// own `Drop` could read a database. So no user code ever runs while the list is borrowed.
    #[cold]
    #[inline(never)]
    fn with_new_reader<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let reader = Rc::new(publish::reader(&self.shared));
        let closed: Vec<_> = READERS.with(|cell| {
            let mut readers = cell.borrow_mut();
            let closed = readers.extract_if(.., |r| r.is_closed()).collect();
            readers.push(reader.clone());
            closed
        });
        drop(closed);
        reader.read(f)
    }
}

//! Per-thread readers.
//!
//! A `publish::Reader` belongs to one thread. Each thread keeps one per open database in a thread-local list, created
//! on its first read. The reader of the database this thread read last is also kept in a second thread-local, a
//! plain pair of pointers with no destructor, so the common read (the same database as the previous one) costs two
//! thread-local loads and a comparison, then the reader's two plain stores and the table lookup itself. Each reader
//! knows whether it is inside a read (its slot counter is odd then), so `in_read` knows whether the thread is inside
//! a read closure, and a write from there (which would wait for the thread's own read to end) fails instead of
//! deadlocking.

#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::publish::{self, Arc, Published};
use super::state::State;

/// The thread's readers. Dropping the list (at thread exit) forgets the last-used reader first.
struct Readers(RefCell<Vec<Rc<publish::Reader<State>>>>);

impl Drop for Readers {
    fn drop(&mut self) {
        LAST.set(NONE);
    }
}

/// The last-used reader: the address of the state it reads, and the reader. Invariant: while `LAST` names a reader,
/// that reader is in this thread's `READERS` list, which owns it (through an `Rc`, so it never moves). Every path that
/// takes a reader out of the list, or drops the list, resets `LAST` first.
type Last = (*const Published<State>, *const publish::Reader<State>);

const NONE: Last = (std::ptr::null(), std::ptr::null());

thread_local! {
    static READERS: Readers = const { Readers(RefCell::new(Vec::new())) };
    static LAST: Cell<Last> = const { Cell::new(NONE) };
}

/// Gives any thread read access to one database's published state.
pub(crate) struct Reader {
    shared: Arc<Published<State>>,
}

/// True while this thread is inside a read of any database (checked on the write path only).
pub(crate) fn in_read() -> bool {
    READERS.with(|cell| cell.0.try_borrow().map_or(true, |readers| readers.iter().any(|r| r.is_reading())))
}

impl Reader {
    pub(crate) fn new(shared: Arc<Published<State>>) -> Self {
        Reader { shared }
    }

    /// Runs `f` on the latest published state. Never blocks.
    ///
    /// The common case (this thread read this database last) is kept small enough to inline into the caller's loop:
    /// every instruction here delays the next lookup's cache misses (ARCHITECTURE.md, issue 3). No thread-local is
    /// borrowed while `f` runs, so `f` may read other databases freely.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let (state, reader) = LAST.get();
        let reader = if std::ptr::eq(state, Arc::as_ptr(&self.shared)) { reader } else { self.switch() };
        // SAFETY: `LAST` names a reader owned by this thread's list (the invariant at `Last`; `switch` has just
        // made it so), and no reader that is inside a read leaves the list (`switch`), so it outlives this call
        // even if `f` reads other databases.
        unsafe { &*reader }.read_in(&self.shared, f)
    }

    /// A read of another database than the last one: finds (or on the first read of this database on this thread,
    /// creates) its reader and makes it the last-used one. Readers of closed databases that no read is inside leave
    /// the list here, and are dropped after the list is released: dropping one may drop the last copy of a state,
    /// and with it values whose own `Drop` could read a database. So no user code ever runs while the list is
    /// borrowed. Takes no closure, so that a lookup loop builds none for this path.
    #[cold]
    #[inline(never)]
    fn switch(&self) -> *const publish::Reader<State> {
        let (reader, closed) = READERS.with(|cell| {
            let mut readers = cell.0.borrow_mut();
            LAST.set(NONE);
            let closed: Vec<_> = readers.extract_if(.., |r| r.is_closed() && !r.is_reading()).collect();
            let reader = match readers.iter().find(|r| r.publishes(&self.shared)) {
                Some(r) => Rc::as_ptr(r),
                None => {
                    let r = Rc::new(publish::reader(&self.shared));
                    let p = Rc::as_ptr(&r);
                    readers.push(r);
                    p
                }
            };
            LAST.set((Arc::as_ptr(&self.shared), reader));
            (reader, closed)
        });
        drop(closed);
        reader
    }
}

//! Publishing a state to readers that never wait: two copies, asymmetric fences.
//!
//! The state exists twice. Readers read the *active* copy; the writer changes the other one, makes it active, waits
//! until no reader can still be in the old one, and changes that too. Each reader thread owns a slot, a counter that
//! is odd while the thread reads.
//!
//! Reader: `slot = odd` (a release store), a *light* fence, `i = active` (acquire), read copy `i`, `slot = even`
//! (release). Writer: change the inactive copy, `active = it` (release), take the list of the other threads' slots;
//! if there are any, a *heavy* fence, then for every slot that was odd, wait until it changes; then change the other
//! copy. A reader registers its slot under the list's lock, so one missing from the list loads the new index.
//!
//! Why no reader is ever in a copy being changed: the heavy fence (`membarrier(PRIVATE_EXPEDITED)`, a memory barrier
//! run on every CPU that runs a thread of this process) orders each reader's slot store either before the writer's
//! reading of the slots (then the writer sees it odd and waits for it) or after the writer's store to `active` (then
//! the reader loads the new index and never touches the old copy). The light fence only has to stop the compiler
//! from reordering, so a read costs two plain stores and a load on top of the lookup, with no hardware barrier: the
//! cache misses of consecutive lookups overlap as they do in a plain `HashMap`. Where `membarrier` is unavailable, the
//! `membarrier` crate falls back to real fences on both sides. The writer side is only ever used by one thread at a
//! time (the commit pipeline's publisher lock).
//!
//! This is the one module of Cairn allowed `unsafe` (listed in `UNSAFE.md`); `tests::loom_*` checks the protocol
//! under loom with fences in place of membarrier (`RUSTFLAGS="--cfg loom" cargo test -p cairn --lib --release loom`).

#![allow(unsafe_code)]

use std::cell::Cell;

use sync::{AtomicU64, AtomicUsize, Mutex, Ordering};

#[cfg(not(loom))]
mod sync {
    pub(super) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::Arc;

    pub(super) use parking_lot::Mutex;

    use std::sync::atomic::{compiler_fence, fence, AtomicBool};

    /// Whether `membarrier(PRIVATE_EXPEDITED)` is registered for this process. Set once, before the first reader
    /// of the first state exists, and never cleared.
    static EXPEDITED: AtomicBool = AtomicBool::new(false);

    /// Registers this process for expedited membarrier if the kernel offers it (Linux 4.14 and later).
    pub(super) fn init() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| EXPEDITED.store(membarrier::register(), Ordering::SeqCst));
    }

    #[inline(always)]
    pub(super) fn light() {
        if EXPEDITED.load(Ordering::Relaxed) {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    pub(super) fn heavy() {
        #[cfg(test)]
        HEAVY_CALLS.with(|c| c.set(c.get() + 1));
        if !(EXPEDITED.load(Ordering::Relaxed) && membarrier::expedited()) {
            fence(Ordering::SeqCst);
        }
    }

    #[cfg(test)]
    std::thread_local! {
        /// Heavy fences issued by this thread (tests only; per thread, so tests running beside it do not count).
        static HEAVY_CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    /// Heavy fences issued so far by this thread.
    #[cfg(test)]
    pub(super) fn heavy_calls() -> u64 {
        HEAVY_CALLS.with(|c| c.get())
    }

    #[cfg(target_os = "linux")]
    mod membarrier {
        const QUERY: libc::c_long = 0;
        const PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
        const REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

        fn call(cmd: libc::c_long) -> libc::c_long {
            // SAFETY: membarrier(2) takes two integer arguments (command, flags) and touches no memory of ours.
            unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_long) }
        }

        pub(super) fn register() -> bool {
            let supported = call(QUERY);
            supported >= 0
                && supported & PRIVATE_EXPEDITED != 0
                && supported & REGISTER_PRIVATE_EXPEDITED != 0
                && call(REGISTER_PRIVATE_EXPEDITED) == 0
        }

        /// A memory barrier on every CPU running a thread of this process; false if the kernel refused.
        pub(super) fn expedited() -> bool {
            call(PRIVATE_EXPEDITED) == 0
        }
    }

    #[cfg(not(target_os = "linux"))]
    mod membarrier {
        pub(super) fn register() -> bool {
            false
        }

        pub(super) fn expedited() -> bool {
            false
        }
    }

    pub(super) fn spin() {
        std::thread::yield_now();
    }

    pub(super) use std::thread::ThreadId;

    pub(super) fn this_thread() -> ThreadId {
        std::thread::current().id()
    }

    /// A cell whose contents the protocol, not the borrow checker, keeps free of data races.
    pub(super) struct RaceCell<T>(std::cell::UnsafeCell<T>);

    impl<T> RaceCell<T> {
        pub(super) fn new(t: T) -> Self {
            RaceCell(std::cell::UnsafeCell::new(t))
        }

        /// # Safety
        /// No one may change the contents while `f` runs.
        #[inline(always)]
        pub(super) unsafe fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
            // SAFETY: the caller guarantees no concurrent mutation, so a shared reference is sound.
            f(unsafe { &*self.0.get() })
        }

        /// # Safety
        /// No one else may read or change the contents while `f` runs.
        pub(super) unsafe fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
            // SAFETY: the caller guarantees exclusive access, so a unique reference is sound.
            f(unsafe { &mut *self.0.get() })
        }
    }
}

#[cfg(loom)]
mod sync {
    pub(super) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    pub(crate) use loom::sync::Arc;

    pub(super) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(super) fn new(t: T) -> Self {
            Mutex(loom::sync::Mutex::new(t))
        }

        pub(super) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().expect("not poisoned")
        }
    }

    pub(super) fn init() {}

    pub(super) fn light() {
        loom::sync::atomic::fence(Ordering::SeqCst);
    }

    pub(super) fn heavy() {
        loom::sync::atomic::fence(Ordering::SeqCst);
    }

    pub(super) fn spin() {
        loom::thread::yield_now();
    }

    pub(super) use loom::thread::ThreadId;

    pub(super) fn this_thread() -> ThreadId {
        loom::thread::current().id()
    }

    pub(super) struct RaceCell<T>(loom::cell::UnsafeCell<T>);

    impl<T> RaceCell<T> {
        pub(super) fn new(t: T) -> Self {
            RaceCell(loom::cell::UnsafeCell::new(t))
        }

        pub(super) unsafe fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
            // SAFETY: as in the std version; loom checks the claim.
            self.0.with(|p| f(unsafe { &*p }))
        }

        pub(super) unsafe fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
            // SAFETY: as in the std version; loom checks the claim.
            self.0.with_mut(|p| f(unsafe { &mut *p }))
        }
    }
}

pub(crate) use sync::Arc;
use sync::RaceCell;

/// One reader thread's slot, on its own cache line.
#[repr(align(128))]
struct Slot {
    count: AtomicU64,
    /// The thread the slot belongs to.
    owner: sync::ThreadId,
}

/// The two copies and the readers' slots.
pub(crate) struct Published<T> {
    copies: [RaceCell<T>; 2],
    active: AtomicUsize,
    slots: Mutex<Vec<Arc<Slot>>>,
    /// Set when the writer side is gone: the copies are empty and readers may be dropped.
    closed: std::sync::atomic::AtomicBool,
}

// SAFETY: readers get `&T` from several threads (T: Sync) and the writer changes the copies from whichever thread
// holds the writer side (T: Send); the protocol above keeps the two apart.
unsafe impl<T: Send + Sync> Sync for Published<T> {}
// SAFETY: as above; moving the structure moves the `T`s.
unsafe impl<T: Send> Send for Published<T> {}

/// The writer side. Not `Clone`: one writer at a time. Dropping it empties the state (hence `T: Default`).
pub(crate) struct Writer<T: Default> {
    shared: Arc<Published<T>>,
}

/// One thread's reader. Not `Sync`: it belongs to the thread that uses it.
pub(crate) struct Reader<T> {
    shared: Arc<Published<T>>,
    slot: Arc<Slot>,
    /// The copy the outermost read chose (nested reads see the same state).
    index: Cell<usize>,
}

/// Creates the pair from two equal copies of the initial state.
pub(crate) fn new<T: Default>(first: T, second: T) -> (Writer<T>, Arc<Published<T>>) {
    sync::init();
    let shared = Arc::new(Published {
        copies: [RaceCell::new(first), RaceCell::new(second)],
        active: AtomicUsize::new(0),
        slots: Mutex::new(Vec::new()),
        closed: std::sync::atomic::AtomicBool::new(false),
    });
    (Writer { shared: shared.clone() }, shared)
}

impl<T> Published<T> {
    /// Whether the writer side is gone (the state was emptied).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// A reader of `shared` for the calling thread.
pub(crate) fn reader<T>(shared: &Arc<Published<T>>) -> Reader<T> {
    let slot = Arc::new(Slot { count: AtomicU64::new(0), owner: sync::this_thread() });
    shared.slots.lock().push(slot.clone());
    Reader { shared: shared.clone(), slot, index: Cell::new(0) }
}

impl<T> Reader<T> {
    /// Whether this reader reads `shared`.
    pub(crate) fn publishes(&self, shared: &Arc<Published<T>>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// Whether this reader is inside a read.
    pub(crate) fn is_reading(&self) -> bool {
        !self.slot.count.load(Ordering::Relaxed).is_multiple_of(2)
    }

    /// Whether the writer side of this reader's state is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Runs `f` on the active copy (the tests' form of [`Reader::read_in`]).
    #[cfg(test)]
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.read_in(&self.shared, f)
    }

    /// Runs `f` on the active copy of `shared`, which is the state this reader reads (checked in debug builds):
    /// the caller has its address at hand, so the copies' address does not wait for the load of this reader's.
    /// Never waits.
    ///
    /// Kept to a few instructions (it is inlined into every lookup loop, and each instruction between lookups
    /// delays the next one's cache misses): the outermost read makes the counter odd and picks the copy; a nested
    /// read, which finds the counter odd already, reuses the copy and leaves the counter alone. The counter is read
    /// back from the slot itself (only this thread stores to it), not kept twice.
    #[inline(always)]
    pub(crate) fn read_in<R>(&self, shared: &Published<T>, f: impl FnOnce(&T) -> R) -> R {
        debug_assert!(std::ptr::eq(shared, &*self.shared), "a reader reads its own state");
        let c = self.slot.count.load(Ordering::Relaxed);
        let outermost = c.is_multiple_of(2);
        let index = if outermost {
            // Release, not Relaxed: a writer that waited on our previous read may see this value rather than the
            // even one that ended it, and must still synchronize with the end of that read (a relaxed store would
            // not continue the release sequence). loom found this. On x86 it is the same plain store.
            self.slot.count.store(c + 1, Ordering::Release);
            sync::light();
            // `& 1`: the index is 0 or 1 (the writer stores nothing else), and the mask spares a bounds check.
            let i = shared.active.load(Ordering::Acquire) & 1;
            self.index.set(i);
            i
        } else {
            self.index.get()
        };
        let _exit = Exit { reader: self, end: outermost.then_some(c + 2) };
        // SAFETY: our slot is odd, so the writer does not change copy `index` until we leave (module docs).
        unsafe { shared.copies[index].with(f) }
    }
}

/// Leaves the read even if `f` panics: the outermost read makes the counter even again (`end`).
struct Exit<'a, T> {
    reader: &'a Reader<T>,
    end: Option<u64>,
}

impl<T> Drop for Exit<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(c) = self.end {
            self.reader.slot.count.store(c, Ordering::Release);
        }
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        self.shared.slots.lock().retain(|s| !Arc::ptr_eq(s, &self.slot));
    }
}

impl<T: Default> Drop for Writer<T> {
    /// Empties both copies (through the protocol, so it is safe even if a reader lingers) so that the memory goes
    /// back at once, even while threads keep idle readers of this state.
    fn drop(&mut self) {
        self.publish(|t| *t = T::default());
        self.shared.closed.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl<T: Default> Writer<T> {
    /// Applies `change` to both copies, publishing the first one changed: readers see all of the change or none.
    pub(crate) fn publish(&mut self, mut change: impl FnMut(&mut T)) {
        let shared = &*self.shared;
        let old = shared.active.load(Ordering::Relaxed);
        let new = 1 - old;
        // SAFETY: no reader is in the inactive copy: the previous publish waited for every reader of it to leave,
        // and readers that started since then loaded the active index.
        unsafe { shared.copies[new].with_mut(&mut change) };
        shared.active.store(new, Ordering::Release);
        // The writer's own slot, when even, needs neither the fence nor a wait: program order orders the writer's
        // own stores and loads, and it is not inside a read (an odd one is kept, and waited for as before: writes
        // are refused inside reads, so that would be a bug, and a hang is better than a race). With no other slot
        // there is no fence at all: a reader that registers after the list was read took the list's lock after the
        // store to `active`, so it loads the new index. The fence is a system call that interrupts every other core
        // running a thread of this process (~20 µs here when the compaction runs beside a commit).
        let me = sync::this_thread();
        let slots: Vec<Arc<Slot>> = shared
            .slots
            .lock()
            .iter()
            .filter(|s| s.owner != me || s.count.load(Ordering::Relaxed) % 2 == 1)
            .cloned()
            .collect();
        if !slots.is_empty() {
            sync::heavy();
        }
        for slot in &slots {
            let seen = slot.count.load(Ordering::Acquire);
            if seen % 2 == 1 {
                while slot.count.load(Ordering::Acquire) == seen {
                    sync::spin();
                }
            }
        }
        // SAFETY: every reader that may have loaded `old` has left; new readers load `new`.
        unsafe { shared.copies[old].with_mut(&mut change) };
    }

    /// Runs `f` on the published state (the writer may read without a slot: it never races itself).
    #[cfg(test)]
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let active = self.shared.active.load(Ordering::Relaxed);
        // SAFETY: only the writer changes copies, and it is busy here.
        unsafe { self.shared.copies[active].with(f) }
    }
}

#[cfg(all(test, loom))]
mod tests {
    use super::*;

    /// A reader always sees a pair of equal numbers, and loom finds no data race on the copies, in every
    /// interleaving of two reads and two publications (loom explores them all: no preemption bound). It caught the
    /// release-sequence bug described in `Reader::read`.
    const PUBLISHES: u64 = 2;

    /// Publishes the pair `(i, i)`, changing its halves one at a time.
    fn publish_pair(writer: &mut Writer<(u64, u64)>, i: u64) {
        writer.publish(|p| {
            p.0 = i;
            p.1 = i;
        });
    }

    #[test]
    fn loom_readers_never_see_a_copy_being_changed() {
        loom::model(|| {
            let (mut writer, shared) = new((0u64, 0u64), (0u64, 0u64));
            let reading = {
                let shared = shared.clone();
                loom::thread::spawn(move || {
                    let r = reader(&shared);
                    let (a, b) = r.read(|p| *p);
                    assert_eq!(a, b);
                    let (c, d) = r.read(|p| *p);
                    assert_eq!(c, d);
                    assert!(c >= a, "a reader went back in time");
                })
            };
            for i in 1..=PUBLISHES {
                publish_pair(&mut writer, i);
            }
            reading.join().unwrap();
            assert_eq!(writer.read(|p| *p), (PUBLISHES, PUBLISHES));
        });
    }

    /// The writer's own reader is left out of the fence and the wait, and a reader registering meanwhile is fenced
    /// or sees the new copy (the publication takes the slot list before it decides on the fence): in every
    /// interleaving, the other reader sees equal numbers and the writer's reader sees each publication at once.
    #[test]
    fn loom_the_writers_own_reader_needs_no_fence() {
        loom::model(|| {
            let (mut writer, shared) = new((0u64, 0u64), (0u64, 0u64));
            let own = reader(&shared);
            let reading = {
                let shared = shared.clone();
                loom::thread::spawn(move || {
                    let r = reader(&shared);
                    let (a, b) = r.read(|p| *p);
                    assert_eq!(a, b);
                })
            };
            for i in 1..=PUBLISHES {
                publish_pair(&mut writer, i);
                assert_eq!(own.read(|p| *p), (i, i));
            }
            reading.join().unwrap();
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn readers_see_whole_publications_under_stress() {
        let (mut writer, shared) = new(vec![0u64; 64], vec![0u64; 64]);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (shared, stop) = (shared.clone(), stop.clone());
                std::thread::spawn(move || {
                    let r = reader(&shared);
                    let mut last = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (first, all_equal) = r.read(|v| (v[0], v.iter().all(|x| *x == v[0])));
                        assert!(all_equal, "a reader saw half a publication");
                        assert!(first >= last, "a reader went back in time");
                        last = first;
                        // Nested reads see the state of the outer read.
                        r.read(|outer| r.read(|inner| assert_eq!(outer[0], inner[0])));
                    }
                })
            })
            .collect();
        for i in 1..=1_000u64 {
            writer.publish(|v| v.iter_mut().for_each(|x| *x = i));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(writer.read(|v| v[63]), 1_000);
        assert_eq!(shared.slots.lock().len(), 0, "readers deregister when dropped");
    }

    /// A publication fences only when another thread has a reader: the writer's own reader (a program that reads
    /// and writes on one thread) costs it no system call.
    #[test]
    fn a_publication_fences_only_for_other_threads_readers() {
        let (mut writer, shared) = new(0u64, 0u64);
        let own = reader(&shared);
        let before = sync::heavy_calls();
        for i in 1..=10 {
            writer.publish(|v| *v = i);
            assert_eq!(own.read(|v| *v), i);
        }
        assert_eq!(sync::heavy_calls(), before, "no fence with only the writer's own reader");
        let (registered_tx, registered_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let other = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let r = reader(&shared);
                registered_tx.send(()).unwrap();
                done_rx.recv().unwrap();
                r.read(|v| *v)
            })
        };
        registered_rx.recv().unwrap();
        writer.publish(|v| *v = 11);
        assert!(sync::heavy_calls() > before, "a fence for another thread's reader");
        done_tx.send(()).unwrap();
        assert_eq!(other.join().unwrap(), 11);
    }
}

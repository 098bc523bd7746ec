//! The live side of the feed: a bounded ring of the latest published transactions, and the subscribers waiting on it.
//!
//! Invariants (every one relied on by `subscription`):
//! - Registration learns a published sequence number `P` such that every transaction after `P` is pushed while the
//!   subscriber stays registered. It is a store-then-load handshake with the publisher (Dekker): the publisher stores
//!   the published sequence number, then a `SeqCst` fence, then loads the subscriber count; a subscriber stores the
//!   count, then a `SeqCst` fence, then loads the published sequence number. Of two fences one comes first, so
//!   either the publisher sees the subscriber and pushes its batch, or the subscriber sees the batch published.
//! - Registration takes no lock the publisher holds while it waits for readers: subscribing inside a read closure,
//!   while a commit waits for that very read to end, must not deadlock (`tests/feed.rs` has the case).
//! - The first subscriber resets the ring to `(P, P]`. A push at or before the ring's last sequence number is
//!   skipped (its batch was published before `P`), a push after a gap empties the ring first, so the ring always
//!   holds consecutive transactions `(last - len, last]` and never hides a gap.
//! - The publisher never waits for a subscriber: it takes the ring's lock, which subscribers hold only to look up or
//!   clone one `Arc`, and a subscriber that does not read is simply overtaken (its next lookup finds a gap).
//! - With no subscriber, publishing costs a fence and one relaxed load; taking the publisher lock to register
//!   instead would cost nothing there, but deadlocks as above.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::db::commit::Pipeline;
use crate::store::state::Committed;

/// What the ring holds for a subscriber positioned after sequence number `after`.
pub(crate) enum Lookup {
    /// The next transaction, `after + 1`.
    Next(Arc<Committed>),
    /// Nothing after `after` has been pushed yet.
    Nothing,
    /// `after + 1` already left the ring (or was never in it).
    Gap,
}

/// The latest published transactions, consecutive. Pure: no locking, no waking.
pub(crate) struct Ring {
    items: VecDeque<Arc<Committed>>,
    capacity: usize,
    /// The sequence number of the newest transaction pushed (or the position the ring was reset to).
    last: u64,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        Ring { items: VecDeque::new(), capacity: capacity.max(1), last: 0 }
    }

    /// Empties the ring and positions it after `seq`.
    pub(crate) fn reset(&mut self, seq: u64) {
        self.items.clear();
        self.last = seq;
    }

    /// Appends the next transaction, dropping the oldest one past capacity. One at or before the last is skipped;
    /// one that does not follow the last empties the ring first, so the ring never hides a gap.
    pub(crate) fn push(&mut self, committed: Arc<Committed>) {
        if committed.seq <= self.last {
            return;
        }
        if committed.seq != self.last + 1 {
            self.items.clear();
        }
        self.last = committed.seq;
        self.items.push_back(committed);
        if self.items.len() > self.capacity {
            self.items.pop_front();
        }
    }

    /// What follows `after`.
    pub(crate) fn lookup(&self, after: u64) -> Lookup {
        if after >= self.last {
            return Lookup::Nothing;
        }
        let first = self.last - self.items.len() as u64;
        if after < first {
            return Lookup::Gap;
        }
        Lookup::Next(self.items[(after - first) as usize].clone())
    }
}

/// The ring and who is waiting on it.
pub(crate) struct Shared {
    pub(crate) ring: Ring,
    subscribers: usize,
    closed: bool,
    /// Async subscribers waiting for the next push, by subscription id.
    wakers: Vec<(u64, Waker)>,
}

/// The feed of one open database. Outlives it: subscriptions hold it, not the database.
pub(crate) struct Hub {
    shared: Mutex<Shared>,
    arrived: Condvar,
    /// `shared.subscribers`, readable without the lock.
    subscribers: AtomicUsize,
    closed: AtomicBool,
    next_id: AtomicU64,
}

/// How long a subscriber may wait for the next push.
pub(crate) enum Wait<'a> {
    /// Not at all.
    No,
    /// Until this instant.
    Until(Instant),
    /// Until it comes or the database closes.
    Forever,
    /// Not here: wake this waker when something is pushed (the async `Stream`).
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    Waker(&'a Waker),
}

impl Hub {
    pub(crate) fn new(capacity: usize) -> Self {
        Hub {
            shared: Mutex::new(Shared { ring: Ring::new(capacity), subscribers: 0, closed: false, wakers: Vec::new() }),
            arrived: Condvar::new(),
            subscribers: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
        }
    }

    /// Offers a published batch. Called by the publisher, in sequence order, right after it stored the published
    /// sequence number.
    pub(crate) fn publish(&self, batch: &[Arc<Committed>]) {
        // The publisher's half of the registration handshake (module documentation).
        fence(Ordering::SeqCst);
        if self.subscribers.load(Ordering::Relaxed) == 0 {
            return;
        }
        let wakers = {
            let mut s = self.shared.lock();
            if s.subscribers == 0 {
                return;
            }
            for committed in batch {
                s.ring.push(committed.clone());
            }
            std::mem::take(&mut s.wakers)
        };
        self.arrived.notify_all();
        wakers.into_iter().for_each(|(_, w)| w.wake());
    }

    /// Registers a subscriber; returns its id and the published sequence number at registration: every batch after
    /// it will be pushed while the subscriber is registered.
    pub(crate) fn register(&self, pipeline: &Pipeline) -> (u64, u64) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut s = self.shared.lock();
        s.subscribers += 1;
        self.subscribers.store(s.subscribers, Ordering::Relaxed);
        // The subscriber's half of the handshake (module documentation).
        fence(Ordering::SeqCst);
        let published = pipeline.published();
        if s.subscribers == 1 {
            s.ring.reset(published);
        }
        (id, published)
    }

    /// Unregisters subscriber `id`. The last one to leave empties the ring, freeing the write sets it held.
    pub(crate) fn unregister(&self, id: u64) {
        let mut s = self.shared.lock();
        s.wakers.retain(|(w, _)| *w != id);
        s.subscribers -= 1;
        self.subscribers.store(s.subscribers, Ordering::Relaxed);
        if s.subscribers == 0 {
            let last = s.ring.last;
            s.ring.reset(last);
        }
    }

    /// The database closed: wakes every waiting subscriber; each delivers what the ring still holds for it, then ends.
    pub(crate) fn close(&self) {
        let wakers = {
            let mut s = self.shared.lock();
            s.closed = true;
            self.closed.store(true, Ordering::Release);
            std::mem::take(&mut s.wakers)
        };
        self.arrived.notify_all();
        wakers.into_iter().for_each(|(_, w)| w.wake());
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether the ring can serve a subscriber after `after` (it holds `after + 1`, or nothing after `after` was
    /// published yet).
    pub(crate) fn serves(&self, after: u64) -> bool {
        !matches!(self.shared.lock().ring.lookup(after), Lookup::Gap)
    }

    /// The transaction after `after`, waiting for it as `wait` allows. `Nothing` once the wait is over, or if the
    /// database closed (see [`Hub::is_closed`]).
    pub(crate) fn next(&self, id: u64, after: u64, wait: &Wait<'_>) -> Lookup {
        let mut s = self.shared.lock();
        loop {
            let found = s.ring.lookup(after);
            if !matches!(found, Lookup::Nothing) || s.closed {
                return found;
            }
            match wait {
                Wait::No => return found,
                Wait::Forever => self.arrived.wait(&mut s),
                Wait::Until(deadline) => {
                    if self.arrived.wait_until(&mut s, *deadline).timed_out() {
                        return s.ring.lookup(after);
                    }
                }
                Wait::Waker(waker) => {
                    register_waker(&mut s, id, waker);
                    return found;
                }
            }
        }
    }
}

fn register_waker(s: &mut MutexGuard<'_, Shared>, id: u64, waker: &Waker) {
    match s.wakers.iter_mut().find(|(w, _)| *w == id) {
        Some((_, old)) => old.clone_from(waker),
        None => s.wakers.push((id, waker.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(seq: u64) -> Arc<Committed> {
        Arc::new(Committed { seq, writes: Vec::new(), claims: Vec::new() })
    }

    fn next_seq(ring: &Ring, after: u64) -> Option<u64> {
        match ring.lookup(after) {
            Lookup::Next(c) => Some(c.seq),
            _ => None,
        }
    }

    #[test]
    fn serves_consecutive_transactions_and_reports_what_left() {
        let mut ring = Ring::new(3);
        ring.reset(10);
        assert!(matches!(ring.lookup(10), Lookup::Nothing));
        assert!(matches!(ring.lookup(9), Lookup::Gap), "before the reset position is not in the ring");
        for seq in 11..=15 {
            ring.push(txn(seq));
        }
        // Capacity 3: 13, 14 and 15 remain.
        assert!(matches!(ring.lookup(11), Lookup::Gap));
        assert_eq!(next_seq(&ring, 12), Some(13));
        assert_eq!(next_seq(&ring, 14), Some(15));
        assert!(matches!(ring.lookup(15), Lookup::Nothing));
        assert!(matches!(ring.lookup(20), Lookup::Nothing), "a subscriber ahead of a pending push waits");
    }

    #[test]
    fn a_push_already_covered_is_skipped_and_one_after_a_gap_empties_the_ring() {
        let mut ring = Ring::new(8);
        ring.reset(5);
        // A batch 4..=6 whose push raced with the reset to 5: 4 and 5 were published before the subscriber came.
        for seq in 4..=6 {
            ring.push(txn(seq));
        }
        assert!(matches!(ring.lookup(4), Lookup::Gap));
        assert_eq!(next_seq(&ring, 5), Some(6));
        ring.push(txn(8));
        assert!(matches!(ring.lookup(6), Lookup::Gap), "7 is missing: never served as if it were not");
        assert_eq!(next_seq(&ring, 7), Some(8));
    }

    #[test]
    fn exactly_capacity_behind_is_not_a_gap() {
        let mut ring = Ring::new(4);
        ring.reset(0);
        for seq in 1..=4 {
            ring.push(txn(seq));
        }
        assert_eq!(next_seq(&ring, 0), Some(1));
        ring.push(txn(5));
        assert!(matches!(ring.lookup(0), Lookup::Gap));
        assert_eq!(next_seq(&ring, 1), Some(2));
    }
}

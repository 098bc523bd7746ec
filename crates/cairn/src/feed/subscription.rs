//! A subscription: a position in the sequence of commits, read forward from the log until the ring serves it, then
//! from the ring.
//!
//! The position `after` is the last sequence number delivered or passed over (a transaction that wrote none of the
//! followed tables). Each step looks for `after + 1` and moves `after` to it, so nothing is skipped or delivered twice,
//! wherever it comes from:
//! - **Catching up** (`log` is set): frames are read back from the log, up to the published sequence number. When
//!   the log has nothing more published, the subscription switches to the ring if the ring holds `after + 1` (or
//!   nothing after `after` yet); otherwise writers filled the ring past it meanwhile, and the log is read on. The
//!   subscription is registered with the hub from the start, so the ring fills while it catches up.
//! - **Live**: the ring serves `after + 1`, or it has left the ring: [`FeedError::Lagged`].
//!
//! Any error ends the subscription (it unregisters at once, so the ring stops filling for it).

use std::ops::Range;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::decode::{touches, Tables, Txn};
use super::hub::{Hub, Lookup, Wait};
use super::log::LogReader;
use super::FeedError;
use crate::db::Inner;

/// What one step found.
enum Step {
    Item(Txn),
    /// Nothing yet.
    Pending,
    /// The database closed, or an error ended the subscription earlier.
    End,
}

/// Catching up from the log.
struct CatchUp {
    reader: LogReader,
    tables: Tables,
}

/// The untyped state of a subscription.
pub(crate) struct Cursor {
    hub: Arc<Hub>,
    /// Not an `Arc`: a subscription must not keep a closed database (and its lock) alive.
    inner: Weak<Inner>,
    id: u64,
    after: u64,
    /// The positions of the tables followed.
    pub(crate) positions: Range<usize>,
    /// The names of the tables the whole-database feed covers, by position.
    pub(crate) names: Arc<[&'static str]>,
    log: Option<CatchUp>,
    /// An error found at registration, reported by the first step.
    pending: Option<FeedError>,
    ended: bool,
}

impl Cursor {
    /// A subscription to the tables at `positions`, after `from` (`None`: the last published commit).
    pub(crate) fn new(inner: &Arc<Inner>, positions: Range<usize>, from: Option<u64>) -> Self {
        let hub = inner.pipeline.feed.clone();
        let (id, published) = hub.register(&inner.pipeline);
        let after = from.unwrap_or(published);
        let pending = (after > published).then_some(FeedError::Ahead { requested: after, last: published });
        let log = (pending.is_none() && !hub.serves(after))
            .then(|| CatchUp { reader: LogReader::default(), tables: Tables::new(inner, positions.clone()) });
        let names = inner.tables[..super::schema_tables(inner)].iter().map(|t| t.name).collect();
        Cursor { hub, inner: Arc::downgrade(inner), id, after, positions, names, log, pending, ended: false }
    }

    /// Moves a live subscription forward to `seq`, a state the caller read after registering: the ring serves what
    /// follows it.
    pub(crate) fn skip_to(&mut self, seq: u64) {
        debug_assert!(self.log.is_none() && seq >= self.after);
        self.after = seq;
    }

    fn step(&mut self, wait: &Wait<'_>) -> Result<Step, FeedError> {
        if self.ended {
            return Ok(Step::End);
        }
        let step = self.advance(wait);
        if matches!(step, Err(_) | Ok(Step::End)) {
            self.end();
        }
        step
    }

    fn advance(&mut self, wait: &Wait<'_>) -> Result<Step, FeedError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        loop {
            if let Some(catch_up) = &mut self.log {
                let Some(inner) = self.inner.upgrade().filter(|_| !self.hub.is_closed()) else {
                    return Ok(Step::End);
                };
                let published = inner.pipeline.published();
                match catch_up.reader.next(&inner, self.after, published)? {
                    Some(frame) => {
                        let txn = catch_up.tables.decode(&frame)?;
                        self.after = frame.seq;
                        if let Some(txn) = txn {
                            return Ok(Step::Item(txn));
                        }
                    }
                    None if self.hub.serves(self.after) => self.log = None,
                    None => {}
                }
                continue;
            }
            match self.hub.next(self.id, self.after, wait) {
                Lookup::Next(committed) => {
                    self.after = committed.seq;
                    if touches(&committed, &self.positions) {
                        return Ok(Step::Item(Txn::Live(committed)));
                    }
                }
                Lookup::Gap => return Err(FeedError::Lagged { resume_from: self.after }),
                Lookup::Nothing if self.hub.is_closed() => return Ok(Step::End),
                Lookup::Nothing => return Ok(Step::Pending),
            }
        }
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.log = None;
            self.hub.unregister(self.id);
        }
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.end();
    }
}

/// A subscription to committed changes, in commit order: [`TableEvent`](crate::TableEvent)s from a table's
/// `subscribe`, [`Commit`](crate::Commit)s from [`Db::subscribe`](crate::Db::subscribe).
///
/// - As an [`Iterator`], `next` blocks until the next transaction is committed. It ends (`None`) when the database
///   closes: a live subscription first delivers what the feed buffer still holds for it, one still catching up from
///   the log ends at once. [`try_next`](Self::try_next) and [`next_timeout`](Self::next_timeout) wait less and report
///   the end as [`FeedError::Closed`]. Subscribing never waits for a commit or a lock that a commit holds, so it may
///   happen anywhere, even inside a read closure.
/// - A change is delivered once it is visible to readers, which is once it is as durable as its commit's
///   [`Durability`](crate::Durability) promises: with `Immediate`, after its fsync.
/// - Writers never wait for a subscriber. One that falls more than
///   [`Builder::feed_buffer`](crate::Builder::feed_buffer) commits behind gets [`FeedError::Lagged`] and can subscribe
///   again from where it was; one that starts in the past reads the log until it catches up, or gets
///   [`FeedError::TooOld`] if compaction folded what it needs into a snapshot.
/// - Any error ends the subscription.
///
/// ```
/// cairn::schema! {
///     pub Bank {
///         accounts: <String, i64>,
///         audit: ordered<u64, String>,
///     }
/// }
///
/// # fn main() -> Result<(), cairn::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Bank::open(dir.path())?;
/// let mut accounts = db.accounts.subscribe();
/// let mut everything = db.db().subscribe();
/// db.transaction(|tx| {
///     tx.accounts.insert("ada".into(), 10)?;
///     tx.audit.insert(1, "ada opened".into())
/// })?;
///
/// let event = accounts.next().expect("the database is open")?;
/// let change = &event.changes()[0];
/// assert_eq!((change.key().as_str(), change.value()), ("ada", Some(&10)));
///
/// let commit = everything.next().expect("the database is open")?;
/// assert_eq!(commit.tables(), ["accounts", "audit"]);
/// assert_eq!(commit.changes(&db.audit)[0].value().map(String::as_str), Some("ada opened"));
///
/// // Later, or after a restart: everything after a position, read back from the log.
/// let mut again = db.accounts.subscribe_from(event.seq() - 1);
/// assert_eq!(again.try_next()?.map(|e| e.seq()), Some(event.seq()));
/// # Ok(()) }
/// ```
pub struct Subscription<T> {
    cursor: Cursor,
    make: fn(Txn, &Cursor) -> T,
}

impl<T> Subscription<T> {
    pub(crate) fn new(cursor: Cursor, make: fn(Txn, &Cursor) -> T) -> Self {
        Subscription { cursor, make }
    }

    pub(crate) fn cursor_mut(&mut self) -> &mut Cursor {
        &mut self.cursor
    }

    /// The last sequence number delivered or passed over: every change up to it has been seen. Subscribing again
    /// from it continues exactly where this subscription is.
    pub fn resume_from(&self) -> u64 {
        self.cursor.after
    }

    /// The next transaction if one is ready; `Ok(None)` if not yet. Reads the log if catching up, never waits for a
    /// commit.
    pub fn try_next(&mut self) -> Result<Option<T>, FeedError> {
        self.poll(&Wait::No)
    }

    /// The next transaction, waiting at most `timeout` for it; `Ok(None)` if none came.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<T>, FeedError> {
        self.poll(&Wait::Until(Instant::now() + timeout))
    }

    fn poll(&mut self, wait: &Wait<'_>) -> Result<Option<T>, FeedError> {
        match self.cursor.step(wait)? {
            Step::Item(txn) => Ok(Some((self.make)(txn, &self.cursor))),
            Step::Pending => Ok(None),
            Step::End => Err(FeedError::Closed),
        }
    }
}

impl<T> Iterator for Subscription<T> {
    type Item = Result<T, FeedError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            return match self.cursor.step(&Wait::Forever) {
                Ok(Step::Item(txn)) => Some(Ok((self.make)(txn, &self.cursor))),
                Ok(Step::Pending) => continue,
                Ok(Step::End) => None,
                Err(e) => Some(Err(e)),
            };
        }
    }
}

impl<T> std::iter::FusedIterator for Subscription<T> {}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("resume_from", &self.cursor.after)
            .field("catching_up", &self.cursor.log.is_some())
            .field("ended", &self.cursor.ended)
            .finish()
    }
}

#[cfg(feature = "async")]
pub use stream::SubscriptionStream;

#[cfg(feature = "async")]
mod stream {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::{Step, Subscription, Wait};
    use crate::FeedError;

    impl<T> Subscription<T> {
        /// This subscription as a [`Stream`](futures_core::Stream) (feature `async`): it wakes its task when the next
        /// transaction is published and ends when the database closes. It needs no particular runtime. While it
        /// catches up from the log it reads files in `poll_next`, one chunk at a time.
        pub fn into_stream(self) -> SubscriptionStream<T> {
            SubscriptionStream(self)
        }
    }

    /// A [`Subscription`] as a [`Stream`](futures_core::Stream); see [`Subscription::into_stream`].
    #[derive(Debug)]
    pub struct SubscriptionStream<T>(Subscription<T>);

    impl<T> SubscriptionStream<T> {
        /// See [`Subscription::resume_from`].
        pub fn resume_from(&self) -> u64 {
            self.0.resume_from()
        }
    }

    impl<T> futures_core::Stream for SubscriptionStream<T> {
        type Item = Result<T, FeedError>;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let sub = &mut self.get_mut().0;
            match sub.cursor.step(&Wait::Waker(cx.waker())) {
                Ok(Step::Item(txn)) => Poll::Ready(Some(Ok((sub.make)(txn, &sub.cursor)))),
                Ok(Step::Pending) => Poll::Pending,
                Ok(Step::End) => Poll::Ready(None),
                Err(e) => Poll::Ready(Some(Err(e))),
            }
        }
    }
}

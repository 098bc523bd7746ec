//! Why a subscription stops.

use crate::error::Error;

/// Why a change feed subscription cannot go on. Each ends the subscription: after it, the iterator ends and
/// [`Subscription::try_next`](crate::Subscription::try_next) reports [`FeedError::Closed`]. Converts into
/// [`Error`] (an engine error inside [`FeedError::Log`] becomes that error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The subscriber fell more than the feed buffer behind the writers, which never wait for a subscriber: the
    /// commits after `resume_from` left the buffer before it read them. Subscribe again from `resume_from`: the new
    /// subscription reads them back from the log, as long as compaction has not folded them into a snapshot.
    #[error(
        "change feed subscriber fell more than the feed buffer behind the writers and missed the commits after \
         sequence number {resume_from}; subscribe again from {resume_from} to catch up from the log, or raise \
         `Builder::feed_buffer`"
    )]
    Lagged {
        /// The last sequence number this subscription delivered or passed over: everything up to it was seen.
        resume_from: u64,
    },
    /// The log no longer holds the changes after `requested`: compaction folded them into a snapshot, and the log
    /// now starts after `oldest`. Read the tables (for example with
    /// [`Table::subscribe_with_contents`](crate::Table::subscribe_with_contents)) and follow the changes after them.
    #[error(
        "the log no longer holds the changes after sequence number {requested}: compaction folded them into a \
         snapshot and the log now starts after {oldest}; read the tables and subscribe from their sequence number"
    )]
    TooOld {
        /// The position the subscription was at.
        requested: u64,
        /// The oldest position the log can resume from now.
        oldest: u64,
    },
    /// The position to subscribe from is after the last commit: it belongs to another database, or to commits
    /// that a crash lost (with `Periodic` or `None` durability), whose sequence numbers are now being reused.
    #[error(
        "cannot subscribe from sequence number {requested}: the last commit is {last}; the position comes from \
         another database or from commits a crash lost, so read the tables and subscribe again"
    )]
    Ahead {
        /// The position asked for.
        requested: u64,
        /// The last sequence number committed.
        last: u64,
    },
    /// The database was closed (every change published before was delivered), or this subscription already
    /// reported the error that ended it.
    #[error("the change feed subscription has ended: the database was closed, or an earlier error ended it")]
    Closed,
    /// Reading the log back failed: an I/O error or damage, naming the file and offset.
    #[error(transparent)]
    Log(Box<Error>),
}

impl From<Error> for FeedError {
    fn from(e: Error) -> Self {
        match e {
            Error::Feed(e) => e,
            e => FeedError::Log(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_without_nesting() {
        let io = Error::io("read log segment", "x.log", std::io::ErrorKind::NotFound.into());
        let feed = FeedError::from(io);
        assert!(matches!(&feed, FeedError::Log(e) if matches!(**e, Error::Io { .. })));
        assert!(matches!(Error::from(feed), Error::Io { .. }), "the engine error comes back out");
        let lagged = Error::from(FeedError::Lagged { resume_from: 7 });
        assert!(matches!(FeedError::from(lagged), FeedError::Lagged { resume_from: 7 }));
    }

    #[test]
    fn messages_say_what_to_do() {
        let m = FeedError::Lagged { resume_from: 41 }.to_string();
        assert!(m.contains("after sequence number 41") && m.contains("subscribe again from 41"), "{m}");
        let m = FeedError::TooOld { requested: 3, oldest: 90 }.to_string();
        assert!(m.contains("after sequence number 3") && m.contains("starts after 90"), "{m}");
        let m = FeedError::Ahead { requested: 12, last: 9 }.to_string();
        assert!(m.contains("12") && m.contains("last commit is 9"), "{m}");
    }
}

//! The change feed: committed transactions, in commit order, for one table or the whole database.
//!
//! - **Where changes come from.** Every published batch is offered to the [`Hub`] (`hub`), which keeps the latest
//!   [`Builder::feed_buffer`](crate::Builder::feed_buffer) transactions in a ring while anyone is subscribed. A
//!   subscription that starts in the past reads the log back (`log`) up to the published sequence number, then
//!   switches to the ring at the exact transaction where the log left off (`subscription`).
//! - **Durable before delivered.** The publisher offers a batch right after publishing it to readers, and publication
//!   already waits for the batch's durability (the fsync of an `Immediate` batch). The log reader delivers no frame
//!   past the published sequence number. So no change is delivered before its commit returns durable or could have.
//! - **Zero copy, typed late.** The ring holds each transaction's committed write sets (`Arc<Committed>`), the very
//!   ones applied to the tables: the publisher adds one pointer per transaction and converts nothing. Each subscriber
//!   types the changes it wants on its own thread, as [`Change`]s sharing the records (`Arc<Entry>`). Converting at
//!   publication instead would make every commit pay for every subscriber's types, on the write path.
//! - **Nearly free when unused.** With no subscriber, publishing a batch costs a fence and one relaxed load (the
//!   registration handshake, see `hub`; a lock would deadlock a subscriber inside a read closure). The ring is
//!   emptied when the last subscriber leaves, so it keeps no write sets alive.
//! - **Writers never wait for subscribers.** The publisher takes the ring's lock, which subscribers hold only to
//!   look one transaction up; a subscriber that does not read is overtaken and told [`FeedError::Lagged`] when it
//!   does. Blocked subscribers wait on a condition variable, async ones leave a waker.
//! - **Transactions, not operations.** One event per transaction; its changes are the last write per key, in the
//!   order of the table's write sets (`decode`), identical whether read from the ring or from the log.
//! - **Which tables.** A table subscription follows its table's position. The whole-database feed follows
//!   [`schema_tables`]: the schema's own tables. Tables on disk the schema does not declare have no position and are
//!   skipped, and so is a transaction that wrote only those.

mod api;
mod decode;
mod error;
mod event;
mod hub;
mod log;
mod subscription;

pub(crate) use decode::{decoder, Decoder};
pub use error::FeedError;
pub use event::{Change, Commit, TableEvent, TableHandle};
pub(crate) use hub::Hub;
pub use subscription::Subscription;
#[cfg(feature = "async")]
pub use subscription::SubscriptionStream;

use crate::db::Inner;

/// The positions `0..n` of the tables the whole-database feed covers: the schema's own. Tables the engine keeps for
/// itself after the schema's (such as id counters) are left out here, and only here.
pub(crate) fn schema_tables(inner: &Inner) -> usize {
    // Cairn's own tables (the id counters) follow the schema's.
    inner.ids_pos
}

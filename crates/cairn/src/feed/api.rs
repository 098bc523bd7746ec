//! Subscribing: `subscribe` and `subscribe_from` on table handles and on [`Db`].

use std::hash::Hash;

use super::decode::{FeedStore, Txn};
use super::event::{Change, Commit, TableEvent, TableHandle};
use super::subscription::{Cursor, Subscription};
use crate::db::Db;
use crate::schema::{Key, Value};
use crate::store::hash::HashStore;
use crate::store::ordered::OrderedStore;
use crate::store::Store;
use crate::table::{Iter, OrderedTable, Table};

/// The event of a table subscription, typed as store `S`.
fn table_event<S: FeedStore>(txn: Txn, cursor: &Cursor) -> TableEvent<S::K, S::V> {
    TableEvent { seq: txn.seq(), changes: txn.into_changes::<S>(cursor.positions.start).unwrap_or_default() }
}

fn commit(txn: Txn, cursor: &Cursor) -> Commit {
    Commit { txn, names: cursor.names.clone() }
}

macro_rules! table_feed {
    ($table:ident, $store:ident, [$($kb:tt)+]) => {
        impl<K: Key + $($kb)+, V: Value> $table<K, V> {
            /// Subscribes to the changes committed to this table from now on: one [`TableEvent`] per transaction
            /// that wrote it, in commit order. See [`Subscription`].
            pub fn subscribe(&self) -> Subscription<TableEvent<K, V>> {
                self.subscription(None)
            }

            /// Subscribes to the changes committed to this table after sequence number `seq` (0: since the
            /// database was created), read back from the log until the subscription catches up with the live
            /// commits. If compaction already folded them into a snapshot, the subscription yields
            /// [`FeedError::TooOld`](crate::FeedError::TooOld).
            pub fn subscribe_from(&self, seq: u64) -> Subscription<TableEvent<K, V>> {
                self.subscription(Some(seq))
            }

            /// A snapshot of the table's records and a subscription to every change committed after it, with
            /// nothing missed or repeated between the two: how a follower starts, or starts over after
            /// [`FeedError::TooOld`](crate::FeedError::TooOld).
            pub fn subscribe_with_contents(&self) -> (Iter<K, V>, Subscription<TableEvent<K, V>>) {
                let mut subscription = self.subscription(None);
                // Registered first, so the ring keeps every commit after the state read next.
                let (seq, entries) = self.inner.read(|state| {
                    let table = state.table::<$store<K, V>>(self.pos);
                    (state.seq, table.entries().cloned().collect::<Vec<_>>())
                });
                subscription.cursor_mut().skip_to(seq);
                (Iter { entries: entries.into_iter() }, subscription)
            }

            fn subscription(&self, from: Option<u64>) -> Subscription<TableEvent<K, V>> {
                let cursor = Cursor::new(&self.inner, self.pos..self.pos + 1, from);
                Subscription::new(cursor, table_event::<$store<K, V>>)
            }
        }

        impl<K: Key + $($kb)+, V: Value> TableHandle for $table<K, V> {
            type Key = K;
            type Value = V;

            fn __changes(&self, commit: &Commit) -> Vec<Change<K, V>> {
                commit.changes_of::<$store<K, V>>(self.name())
            }
        }
    };
}

table_feed!(Table, HashStore, [Hash + Eq]);
table_feed!(OrderedTable, OrderedStore, [Ord]);

impl Db {
    /// Subscribes to every transaction committed to the schema's tables from now on: one [`Commit`] per
    /// transaction, in commit order, typed through the schema's table handles (`commit.changes(&db.accounts)`).
    /// Tables on disk that the schema does not declare are not followed; a transaction that wrote only those
    /// yields nothing. See [`Subscription`].
    pub fn subscribe(&self) -> Subscription<Commit> {
        self.commits(None)
    }

    /// Subscribes to every transaction committed after sequence number `seq` (0: since the database was created),
    /// read back from the log until the subscription catches up; see [`Table::subscribe_from`].
    pub fn subscribe_from(&self, seq: u64) -> Subscription<Commit> {
        self.commits(Some(seq))
    }

    fn commits(&self, from: Option<u64>) -> Subscription<Commit> {
        let cursor = Cursor::new(&self.inner, 0..super::schema_tables(&self.inner), from);
        Subscription::new(cursor, commit)
    }
}

//! The commit pipeline: group commit, durability, and publishing to readers.
//!
//! A committing thread, holding the writer lock, takes the next sequence number and queues its frame and its write
//! set; then, without the writer lock, it waits until its transaction is published. The first waiter that finds no
//! leader becomes the leader: it takes everything queued so far, writes it with one call per large chunk, fsyncs once
//! if any transaction in the batch asked for `Immediate` durability, and publishes the whole batch to readers with
//! one switch of the state's two copies (`store::publish`). Transactions queued while a leader works form the next
//! batch, so concurrent committers share fsyncs. Publication follows sequence order, so a commit is visible only when
//! it and everything before it are as durable as their modes promise.
//!
//! If a write or fsync fails, the batch is not published (readers keep the state before it), the log is cut back to
//! where the batch began as far as the storage allows, and the pipeline enters the failed state: every later commit is
//! refused until the database is reopened. A batch taken before a failure elsewhere (a periodic fsync, a roll) is not
//! written either: after a failed fsync, a later one may report success for pages the kernel dropped. A committer
//! gets an error only if its transaction was not published.
//!
//! Who leads, what a batch holds and who learns of a failure is `db::group`, which does no I/O and is checked under
//! loom; this module builds the batches and flushes them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::group::{self, Batch, Group, Unpublished};
use super::shared::{Dirty, Shared};
use super::spill::Prewritten;
use crate::error::{Error, Result};
use crate::feed::Hub;
use crate::log::frame::{FrameHeader, HEADER_LEN, KIND_TXN};
use crate::log::writer::LogWriter;
use crate::seal::{Place, Seal};
use crate::store::publish;
use crate::store::state::{Committed, State};

/// Payloads at least this large are written from their own buffer instead of being copied into the batch.
const OWN_CHUNK: usize = 256 * 1024;

/// The log writer and the writing side of the published state: whoever holds it may write and publish.
pub(crate) struct Publisher {
    pub(crate) log: LogWriter,
    state: publish::Writer<State>,
}

/// One transaction as its committer queues it.
struct Frame {
    header: [u8; HEADER_LEN],
    payload: Vec<u8>,
    pad: usize,
    /// The frame is in the log already (`db::spill`): `header` and `payload` are empty.
    prewritten: Option<Prewritten>,
    committed: Arc<Committed>,
    sync: bool,
}

impl Frame {
    /// The frame of transaction `seq`, written when everything up to `durable` is fsynced. Computes the checksum,
    /// so a committer does it before it takes the queue lock.
    /// `kind` carries the storage bits of a sealed payload (`crate::seal`).
    fn new(kind: u32, seq: u64, durable: u64, payload: Vec<u8>, committed: Arc<Committed>, sync: bool) -> Self {
        let header = FrameHeader::for_payload(kind, seq, durable, &payload);
        let pad = header.frame_len() - HEADER_LEN - payload.len();
        Frame { header: header.encode(), payload, pad, prewritten: None, committed, sync }
    }
}

/// A committer counted by group commit ([`Pipeline::begin`]); a wrapper, so callers need not name the private batch
/// type.
pub(crate) struct Committer<'a>(
    #[allow(dead_code, reason = "counted while it lives")] group::Active<'a, Frames, Publisher>,
);

/// The frames of one batch, as the chunks one write each: small frames are copied into shared chunks, large payloads
/// are written from their own buffer.
#[derive(Default)]
struct Frames {
    chunks: Vec<Vec<u8>>,
    last_chunk_small: bool,
    /// Where the batch begins in the log if its first frame was written ahead (`db::spill`).
    prewritten: Option<Prewritten>,
    bytes: u64,
    committed: Vec<Arc<Committed>>,
    sync: bool,
}

impl Batch for Frames {
    type Item = Frame;

    fn push(&mut self, frame: Frame) {
        if let Some(pre) = frame.prewritten {
            // Its writer held the log from the end of the last batch published until it queued this frame, so it is
            // the first of its batch.
            debug_assert!(self.committed.is_empty(), "a frame written ahead begins its batch");
            self.prewritten = Some(pre);
            self.bytes += pre.bytes;
        } else if frame.payload.len() >= OWN_CHUNK {
            self.bytes += (HEADER_LEN + frame.payload.len() + frame.pad) as u64;
            self.chunks.push(frame.header.to_vec());
            self.chunks.push(frame.payload);
            if frame.pad > 0 {
                self.chunks.push(vec![0; frame.pad]);
            }
            self.last_chunk_small = false;
        } else {
            self.bytes += (HEADER_LEN + frame.payload.len() + frame.pad) as u64;
            if !self.last_chunk_small {
                self.chunks.push(Vec::with_capacity(64 * 1024));
                self.last_chunk_small = true;
            }
            let chunk = self.chunks.last_mut().expect("a small chunk was just ensured");
            chunk.extend_from_slice(&frame.header);
            chunk.extend_from_slice(&frame.payload);
            chunk.resize(chunk.len() + frame.pad, 0);
        }
        self.committed.push(frame.committed);
        self.sync |= frame.sync;
    }

    fn syncs(&self) -> bool {
        self.sync
    }
}

/// See the module documentation.
pub(crate) struct Pipeline {
    dir: PathBuf,
    group: Group<Frames, Publisher>,
    published: AtomicU64,
    synced: AtomicU64,
    /// Bytes appended to the log since the last snapshot.
    pub(crate) log_bytes: AtomicU64,
    /// The change feed: every published batch is offered to it.
    pub(crate) feed: Arc<Hub>,
    /// Shared mode: the counter that every flush marks before its append and bumps after it.
    shared: Option<Arc<Shared>>,
    /// How payloads are stored: compressed, encrypted.
    pub(crate) seal: Arc<Seal>,
}

/// What a flush by a leader may ask of the database afterwards.
pub(crate) struct Flushed {
    /// Bytes of log written since the last snapshot, counting this flush: compaction is due past a threshold.
    pub(crate) log_bytes: u64,
}

/// What a pipeline serves besides the log and the state: the change feed, shared mode's counter, the seal.
pub(crate) struct Around {
    pub(crate) feed: Arc<Hub>,
    pub(crate) shared: Option<Arc<Shared>>,
    pub(crate) seal: Arc<Seal>,
}

impl Pipeline {
    pub(crate) fn new(
        dir: PathBuf,
        log: LogWriter,
        state: publish::Writer<State>,
        seq: u64,
        log_bytes: u64,
        Around { feed, shared, seal }: Around,
    ) -> Self {
        let synced = log.synced_seq();
        Pipeline {
            dir,
            group: Group::new(seq, Publisher { log, state }),
            published: AtomicU64::new(seq),
            synced: AtomicU64::new(synced),
            log_bytes: AtomicU64::new(log_bytes),
            feed,
            shared,
            seal,
        }
    }

    /// The sequence number of the last transaction readers can see.
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Refuses with [`Error::Failed`] if the pipeline has failed.
    pub(crate) fn check(&self) -> Result<()> {
        self.group.check().map_err(|f| self.failed(f))
    }

    fn failed(&self, failed: group::Failed) -> Error {
        Error::Failed { path: self.dir.clone(), cause: failed.0 }
    }

    /// Puts the pipeline into the failed state after `error` from work its caller did holding the publisher.
    pub(crate) fn fail(&self, held: &Publisher, error: &Error) {
        self.group.fail(held, error.to_string());
    }

    /// Queues transaction `seq`, whose frame `pre` is in the log already (`db::spill`). Called as
    /// [`Pipeline::enqueue`] is.
    pub(crate) fn enqueue_prewritten(
        &self,
        seq: u64,
        pre: Prewritten,
        committed: Arc<Committed>,
        sync: bool,
    ) -> Result<()> {
        let frame =
            Frame { header: [0; HEADER_LEN], payload: Vec::new(), pad: 0, prewritten: Some(pre), committed, sync };
        self.group.enqueue(seq, frame).map_err(|f| {
            // Failed since the frame was written: it never becomes part of the log.
            let mut p = self.group.publisher();
            if p.log.first_seq() == pre.segment {
                p.log.cut_back(pre.start);
            }
            self.failed(f)
        })
    }

    /// Queues transaction `seq`. Must be called in sequence order (under the writer lock). Compresses and encrypts
    /// the payload as the database does (`crate::seal`).
    pub(crate) fn enqueue(&self, seq: u64, payload: Vec<u8>, committed: Arc<Committed>, sync: bool) -> Result<()> {
        let durable = self.synced.load(Ordering::Acquire);
        let (kind, payload) = self.seal.seal(KIND_TXN, Place::Frame { seq, durable }, payload);
        let frame = Frame::new(kind, seq, durable, payload, committed, sync);
        self.group.enqueue(seq, frame).map_err(|f| self.failed(f))
    }

    /// Counts a committer for group commit until the value drops: a leader fills its batch with the committers
    /// counted (`db::group`). Taken before the writer lock.
    pub(crate) fn begin(&self) -> Committer<'_> {
        Committer(self.group.begin())
    }

    /// Waits until transaction `seq` is published, leading a flush if nobody else is. Returns what the flush it led
    /// (if any) reported, so the caller can trigger compaction. A leader fills its batch first if `fill`: false
    /// where the waiter holds a lock the committers counted need before they can queue (the writer lock, shared
    /// mode's lock across processes), which would only make it wait out `group::FILL_WAIT`.
    pub(crate) fn wait(&self, seq: u64, fill: bool) -> Result<Option<Flushed>> {
        self.group.wait(seq, fill, |p, frames, upto| self.flush(p, frames, upto)).map_err(|e| match e {
            Unpublished::Flush(e) => e,
            Unpublished::Failed(f) => self.failed(f),
        })
    }

    fn flush(&self, p: &mut Publisher, frames: Frames, upto: u64) -> Result<Flushed> {
        // A frame written ahead is cut back with the batch if the fsync fails, unless a roll has closed its segment
        // since (the roll fsynced it).
        let start = match frames.prewritten {
            Some(pre) if pre.segment == p.log.first_seq() => pre.start,
            _ => p.log.offset(),
        };
        if let Some(shared) = &self.shared {
            // Shared mode never writes a frame ahead (`db::spill`): the counter marks every append a flush makes.
            debug_assert!(frames.prewritten.is_none());
            shared.counter.begin_append(Dirty { segment: p.log.first_seq(), start, end: start + frames.bytes });
        }
        p.log.append(&frames.chunks, upto)?;
        if frames.sync {
            if let Err(e) = p.log.sync() {
                p.log.cut_back(start);
                return Err(e);
            }
            self.synced.store(p.log.synced_seq(), Ordering::Release);
        }
        // Both copies get the batch before the committers return, so the next commit does not pay for this one and
        // the write sets are freed.
        p.state.publish(|state| frames.committed.iter().for_each(|c| state.apply(c)));
        self.published.store(upto, Ordering::Release);
        if let Some(shared) = &self.shared {
            // Written and synced as its durability asks: other processes may see it (before any roll, so that a
            // new segment never starts after an uncommitted frame).
            shared.counter.commit(upto);
        }
        // Delivered at publication, so no subscriber sees a commit before its readers do (nor before it is durable).
        self.feed.publish(&frames.committed);
        let log_bytes = self.log_bytes.fetch_add(frames.bytes, Ordering::AcqRel) + frames.bytes;
        if p.log.full() {
            if let Err(e) = p.log.roll() {
                // The batch is durable and published; what failed is preparing the next segment.
                self.group.fail(p, e.to_string());
            }
            self.synced.store(p.log.synced_seq(), Ordering::Release);
        }
        Ok(Flushed { log_bytes })
    }

    /// The publisher (log writer and state), for catching up with other processes (shared mode) and for a large
    /// transaction writing its frame ahead (`db::spill`).
    pub(crate) fn publisher(&self) -> impl std::ops::DerefMut<Target = Publisher> + '_ {
        self.group.publisher()
    }

    /// Publishes `batch`, the commits of other processes up to `upto` (`bytes` of log), read from the log.
    pub(crate) fn publish_followed(&self, p: &mut Publisher, batch: &[Arc<Committed>], upto: u64, bytes: u64) {
        p.state.publish(|state| batch.iter().for_each(|c| state.apply(c)));
        self.group.advance(p, upto);
        self.published.store(upto, Ordering::Release);
        self.feed.publish(batch);
        self.log_bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Replaces both copies of the state (`first` and `second`, sharing their records) with a state reloaded from
    /// the snapshot of transaction `seq`. The change feed's ring sees the gap and is emptied at its next commit.
    pub(crate) fn replace_state(&self, p: &mut Publisher, first: State, second: State, seq: u64) {
        let mut fresh = [Some(first), Some(second)].into_iter();
        p.state.publish(|state| {
            if let Some(next) = fresh.next().flatten() {
                *state = next;
            }
        });
        self.group.advance(p, seq);
        self.published.store(seq, Ordering::Release);
        self.log_bytes.store(0, Ordering::Release);
    }

    /// After a compaction: the log not yet folded is the active segment's frames.
    pub(crate) fn reset_log_bytes(&self) {
        let p = self.group.publisher();
        let active = p.log.offset().saturating_sub(crate::log::segment::HEADER_LEN as u64);
        self.log_bytes.store(active, Ordering::Release);
    }

    /// Fsyncs whatever was written and not yet synced (the periodic syncer, and a clean close).
    pub(crate) fn sync_now(&self) -> Result<()> {
        let mut p = self.group.publisher();
        if let Err(e) = p.log.sync() {
            self.group.fail(&p, e.to_string());
            return Err(e);
        }
        self.synced.store(p.log.synced_seq(), Ordering::Release);
        Ok(())
    }

    /// Closes the active segment (if it holds any frame) and starts a new one. Returns the first sequence number of
    /// the new active segment: every segment before it is closed and immutable. The caller holds the writer lock, so
    /// that no transaction is writing its frame ahead (`db::spill`).
    pub(crate) fn roll(&self) -> Result<u64> {
        let mut p = self.group.publisher();
        self.check()?;
        if let Err(e) = p.log.roll() {
            self.group.fail(&p, e.to_string());
            return Err(e);
        }
        self.synced.store(p.log.synced_seq(), Ordering::Release);
        Ok(p.log.first_seq())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_copies_small_frames_into_shared_chunks_and_writes_large_payloads_from_their_own_buffer() {
        let large = vec![3; OWN_CHUNK + 1];
        let large_at = large.as_ptr();
        let mut frames = Frames::default();
        let mut expected = Vec::new();
        for (seq, payload) in [vec![1; 10], vec![2; 100], large, vec![4; 7]].into_iter().enumerate() {
            let seq = seq as u64 + 1;
            let header = FrameHeader::for_payload(KIND_TXN, seq, 0, &payload);
            expected.extend_from_slice(&header.encode());
            expected.extend_from_slice(&payload);
            expected.resize(expected.len().next_multiple_of(crate::log::frame::ALIGN), 0);
            let committed = Arc::new(Committed { seq, writes: Vec::new(), claims: Vec::new() });
            frames.push(Frame::new(KIND_TXN, seq, 0, payload, committed, seq == 2));
        }
        assert_eq!(frames.chunks.concat(), expected);
        assert_eq!(frames.bytes, expected.len() as u64);
        // Frames 1 and 2 share a chunk; frame 3 is its header, its payload (not copied) and its padding; frame 4
        // starts a new small chunk.
        assert_eq!(frames.chunks.len(), 5);
        assert_eq!(frames.chunks[2].as_ptr(), large_at);
        assert_eq!(frames.committed.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert!(frames.sync, "one frame asking for an fsync makes the batch fsync");
    }
}

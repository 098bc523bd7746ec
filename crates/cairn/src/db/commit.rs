//! The commit pipeline: group commit, durability, and publishing to readers.
//!
//! A committing thread, holding the writer lock, takes the next sequence number and queues its frame and its write
//! set; then, without the writer lock, it waits until its transaction is published. The first waiter that finds no
//! leader becomes the leader: it takes everything queued so far, writes it with one call per large chunk, fsyncs once
//! if any transaction in the batch asked for `Immediate` durability, and publishes the whole batch to readers with
//! one switch of the state's two copies (`store::publish`). Transactions queued while a leader works form the next batch, so concurrent committers share
//! fsyncs. Publication follows sequence order, so a commit is visible only when it and everything before it are as
//! durable as their modes promise.
//!
//! If a write or fsync fails, the batch is not published (readers keep the state before it), the log is cut back to
//! where the batch began as far as the storage allows, and the pipeline enters the failed state: every later commit is
//! refused until the database is reopened.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::log::frame::{FrameHeader, KIND_TXN};
use crate::log::writer::LogWriter;
use crate::store::publish;
use crate::store::state::{Committed, State};

/// Payloads at least this large are written from their own buffer instead of being copied into the batch.
const OWN_CHUNK: usize = 256 * 1024;

/// The log writer and the writing side of the published state: whoever holds it may write and publish.
pub(crate) struct Publisher {
    pub(crate) log: LogWriter,
    state: publish::Writer<State>,
}

#[derive(Default)]
struct Queue {
    chunks: Vec<Vec<u8>>,
    last_chunk_small: bool,
    bytes: u64,
    batch: Vec<Arc<Committed>>,
    last_seq: u64,
    needs_sync: bool,
    leader: bool,
    published: u64,
    failed: Option<String>,
}

/// See the module documentation.
pub(crate) struct Pipeline {
    dir: PathBuf,
    queue: Mutex<Queue>,
    turn: Condvar,
    publisher: Mutex<Publisher>,
    published: AtomicU64,
    synced: AtomicU64,
    /// Bytes appended to the log since the last snapshot.
    pub(crate) log_bytes: AtomicU64,
}

/// What a flush by a leader may ask of the database afterwards.
pub(crate) struct Flushed {
    /// Bytes of log written since the last snapshot, counting this flush: compaction is due past a threshold.
    pub(crate) log_bytes: u64,
}

impl Pipeline {
    pub(crate) fn new(dir: PathBuf, log: LogWriter, state: publish::Writer<State>, seq: u64, log_bytes: u64) -> Self {
        let synced = log.synced_seq();
        Pipeline {
            dir,
            queue: Mutex::new(Queue { published: seq, last_seq: seq, ..Queue::default() }),
            turn: Condvar::new(),
            publisher: Mutex::new(Publisher { log, state }),
            published: AtomicU64::new(seq),
            synced: AtomicU64::new(synced),
            log_bytes: AtomicU64::new(log_bytes),
        }
    }

    /// The sequence number of the last transaction readers can see.
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Refuses with [`Error::Failed`] if the pipeline has failed.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.queue.lock().failed {
            Some(cause) => Err(self.failed(cause)),
            None => Ok(()),
        }
    }

    fn failed(&self, cause: &str) -> Error {
        Error::Failed { path: self.dir.clone(), cause: cause.to_string() }
    }

    /// Queues transaction `seq`. Must be called in sequence order (under the writer lock).
    pub(crate) fn enqueue(&self, seq: u64, payload: Vec<u8>, committed: Arc<Committed>, sync: bool) -> Result<()> {
        let header = FrameHeader::for_payload(KIND_TXN, seq, self.synced.load(Ordering::Acquire), &payload);
        let pad = header.frame_len() - crate::log::frame::HEADER_LEN - payload.len();
        let mut q = self.queue.lock();
        if let Some(cause) = &q.failed {
            return Err(self.failed(cause));
        }
        q.bytes += header.frame_len() as u64;
        if payload.len() >= OWN_CHUNK {
            q.chunks.push(header.encode().to_vec());
            q.chunks.push(payload);
            q.chunks.push(vec![0; pad]);
            q.last_chunk_small = false;
        } else {
            if !q.last_chunk_small {
                q.chunks.push(Vec::with_capacity(64 * 1024));
                q.last_chunk_small = true;
            }
            let chunk = q.chunks.last_mut().expect("a small chunk was just ensured");
            chunk.extend_from_slice(&header.encode());
            chunk.extend_from_slice(&payload);
            chunk.resize(chunk.len() + pad, 0);
        }
        q.batch.push(committed);
        q.last_seq = seq;
        q.needs_sync |= sync;
        Ok(())
    }

    /// Waits until transaction `seq` is published, leading a flush if nobody else is. Returns what the flush it led
    /// (if any) reported, so the caller can trigger compaction.
    pub(crate) fn wait(&self, seq: u64) -> Result<Option<Flushed>> {
        let mut led = None;
        let mut q = self.queue.lock();
        loop {
            if q.published >= seq {
                return Ok(led);
            }
            if let Some(cause) = &q.failed {
                return Err(self.failed(cause));
            }
            if q.leader {
                self.turn.wait(&mut q);
                continue;
            }
            q.leader = true;
            let chunks = std::mem::take(&mut q.chunks);
            let batch = std::mem::take(&mut q.batch);
            let bytes = std::mem::take(&mut q.bytes);
            let sync = std::mem::take(&mut q.needs_sync);
            q.last_chunk_small = false;
            let upto = q.last_seq;
            drop(q);
            let result = self.flush(&chunks, batch, sync, upto, bytes);
            q = self.queue.lock();
            q.leader = false;
            match result {
                Ok(flushed) => {
                    q.published = upto;
                    led = Some(flushed);
                }
                Err(e) => {
                    q.failed.get_or_insert_with(|| e.to_string());
                    self.turn.notify_all();
                    return Err(e);
                }
            }
            self.turn.notify_all();
        }
    }

    fn flush(
        &self,
        chunks: &[Vec<u8>],
        batch: Vec<Arc<Committed>>,
        sync: bool,
        upto: u64,
        bytes: u64,
    ) -> Result<Flushed> {
        let mut p = self.publisher.lock();
        let start = p.log.offset();
        p.log.append(chunks, upto)?;
        if sync {
            if let Err(e) = p.log.sync() {
                p.log.cut_back(start);
                return Err(e);
            }
            self.synced.store(p.log.synced_seq(), Ordering::Release);
        }
        // Both copies get the batch before the committers return, so the next commit does not pay for this one and
        // the write sets are freed.
        p.state.publish(|state| batch.iter().for_each(|c| state.apply(c)));
        self.published.store(upto, Ordering::Release);
        let log_bytes = self.log_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if p.log.full() {
            if let Err(e) = p.log.roll() {
                // The batch is durable and published; what failed is preparing the next segment.
                self.queue.lock().failed.get_or_insert_with(|| e.to_string());
            }
            self.synced.store(p.log.synced_seq(), Ordering::Release);
        }
        Ok(Flushed { log_bytes })
    }

    /// After a compaction: the log not yet folded is the active segment's frames.
    pub(crate) fn reset_log_bytes(&self) {
        let p = self.publisher.lock();
        let active = p.log.offset().saturating_sub(crate::log::segment::HEADER_LEN as u64);
        self.log_bytes.store(active, Ordering::Release);
    }

    /// Fsyncs whatever was written and not yet synced (the periodic syncer, and a clean close).
    pub(crate) fn sync_now(&self) -> Result<()> {
        let mut p = self.publisher.lock();
        if let Err(e) = p.log.sync() {
            self.queue.lock().failed.get_or_insert_with(|| e.to_string());
            return Err(e);
        }
        self.synced.store(p.log.synced_seq(), Ordering::Release);
        Ok(())
    }

    /// Closes the active segment (if it holds any frame) and starts a new one. Returns the first sequence number of
    /// the new active segment: every segment before it is closed and immutable.
    pub(crate) fn roll(&self) -> Result<u64> {
        self.check()?;
        let mut p = self.publisher.lock();
        if let Err(e) = p.log.roll() {
            self.queue.lock().failed.get_or_insert_with(|| e.to_string());
            return Err(e);
        }
        self.synced.store(p.log.synced_seq(), Ordering::Release);
        Ok(p.log.first_seq())
    }
}

//! Large transactions write their frame to the log while they run, instead of holding it in memory.
//!
//! A transaction encodes every write into its payload as it happens (`txn`). Held whole until the commit, a bulk load
//! of 1M records kept 180 MB of encoded bytes alive beside the records themselves, and paid for growing that buffer
//! and for faulting in its pages. Once a transaction's payload passes [`SPILL_AT`], it instead:
//!
//! 1. waits until every transaction queued before it is published: the log then ends where its frame begins, and it
//!    stays the log's only writer until it commits or is dropped (nothing can be queued, or the log rolled, without
//!    the writer lock it holds);
//! 2. writes its payload behind a 32-byte gap left for the frame header, in chunks of [`CHUNK`] as they fill, with a
//!    running checksum, into space reserved as for any append;
//! 3. at commit, writes the last chunk, the padding and then the header (sequence number, length, checksums), moves
//!    the end of the log over the frame, lets the publisher go and queues the transaction as already written: the
//!    flush that publishes it writes nothing for it, only fsyncs (if asked) and publishes, as for any frame.
//!
//! Until the header is written, the gap reads as zeros, which recovery, inspection and the change feed take for the end
//! of the log: a crash while the transaction runs leaves the database as it was. A transaction dropped without
//! committing (an `Err`, a panic) cuts the segment back to where its frame began. A failed write puts the database
//! into the failed state, as a failed flush does, and the transaction can no longer commit.
//!
//! Exclusive mode only: in shared mode every append is first marked in the counter file, so that the next writer
//! can undo the append of a process that died (`db::shared`), and a frame written ahead would escape that mark.
//!
//! Each chunk is written under the publisher lock, taken for that write only. Nothing else writes the log meanwhile:
//! flushes need queued transactions, and rolls (compaction, backup) take the writer lock first. A periodic fsync may
//! run in between, which makes some of the frame durable early and is harmless. The transaction holds no lock that
//! readers need, and none of it has a lifetime: `Transaction` must stay covariant, so the pipeline is passed in.

use crate::error::{Error, Result};
use crate::log::frame::{FrameHeader, HEADER_LEN, KIND_TXN, MAX_PAYLOAD};

use super::commit::Pipeline;

/// A payload this large starts writing itself to the log.
pub(crate) const SPILL_AT: usize = 4 << 20;
/// Once spilling, the payload is written whenever this much has been encoded.
pub(crate) const CHUNK: usize = 1 << 20;

/// A transaction's encoded log record: in memory, or partly written to the log already.
#[derive(Default)]
pub(crate) struct Payload {
    buf: Vec<u8>,
    spill: Option<Spill>,
}

/// Where a frame written while its transaction runs is, and how far it got.
#[derive(Debug)]
pub(crate) struct Spill {
    /// The first sequence number of the segment the frame is in, and where the frame begins.
    segment: u64,
    start: u64,
    /// Payload bytes written, and their running checksum.
    len: u64,
    crc: u32,
}

/// A frame written by [`Payload::finish`], as its commit queues it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prewritten {
    /// The first sequence number of the segment it is in.
    pub(crate) segment: u64,
    /// Where it begins.
    pub(crate) start: u64,
    /// Its length, padding included.
    pub(crate) bytes: u64,
}

impl Payload {
    /// The bytes not yet written, to encode the next operation into (whole operations only: the buffer is written
    /// out only between operations, by [`Payload::make_room`]).
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// The payload's length so far, written or not.
    pub(crate) fn len(&self) -> u64 {
        self.spill.as_ref().map_or(0, |s| s.len) + self.buf.len() as u64
    }

    /// True if nothing was encoded.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Called before each operation is encoded: writes the buffer to the log if it has grown past the threshold.
    /// `pending_last` is the sequence number of the last transaction queued before this one. An error leaves the
    /// buffer as it was; if anything had been written, the database has failed, so the transaction cannot commit.
    pub(crate) fn make_room(&mut self, pipeline: &Pipeline, pending_last: Option<u64>) -> Result<()> {
        let threshold = if self.spill.is_some() { CHUNK } else { SPILL_AT };
        // Past the limit nothing more is written: the commit refuses it with `TransactionTooLarge`.
        if self.buf.len() < threshold || self.len() > MAX_PAYLOAD {
            return Ok(());
        }
        if self.spill.is_none() {
            if let Some(seq) = pending_last {
                // This transaction holds the writer lock: no committer can queue before it is done.
                pipeline.wait(seq, false)?;
            }
            let p = pipeline.publisher();
            pipeline.check()?;
            self.spill = Some(Spill { segment: p.log.first_seq(), start: p.log.offset(), len: 0, crc: 0 });
        }
        let spill = self.spill.as_mut().expect("just ensured");
        spill.write(pipeline, &self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// For the commit of transaction `seq`: the payload to queue, or, if it was written ahead, the rest of its
    /// frame written and the log's end moved over it. On failure the database has failed.
    pub(crate) fn finish(mut self, pipeline: &Pipeline, seq: u64) -> Result<Result<Vec<u8>, Prewritten>> {
        let Some(spill) = self.spill.take() else { return Ok(Ok(std::mem::take(&mut self.buf))) };
        spill.finish(pipeline, seq, &self.buf).map(Err)
    }

    /// For a transaction dropped without committing: cuts the log back to where its frame began, if it wrote any.
    pub(crate) fn abort(&mut self, pipeline: &Pipeline) {
        if let Some(spill) = self.spill.take() {
            pipeline.publisher().log.cut_back(spill.start);
        }
    }
}

impl Spill {
    fn write(&mut self, pipeline: &Pipeline, bytes: &[u8]) -> Result<()> {
        let mut p = pipeline.publisher();
        pipeline.check()?;
        debug_assert_eq!(p.log.first_seq(), self.segment, "nothing rolls the log under a running transaction");
        let at = self.start + HEADER_LEN as u64 + self.len;
        if let Err(e) = p.log.write_ahead(bytes, at) {
            pipeline.fail(&p, &e);
            return Err(e);
        }
        // The chunk goes to the device while the transaction encodes the next, so the commit's fsync finds little
        // left to write.
        p.log.start_writeback(at, bytes.len() as u64);
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn finish(mut self, pipeline: &Pipeline, seq: u64, tail: &[u8]) -> Result<Prewritten> {
        let start = self.start;
        let cut = |e: Error| {
            let mut p = pipeline.publisher();
            pipeline.fail(&p, &e);
            p.log.cut_back(start);
            e
        };
        self.write(pipeline, tail).map_err(cut)?;
        let len = u32::try_from(self.len)
            .map_err(|_| Error::TransactionTooLarge { size: self.len, limit: MAX_PAYLOAD })
            .map_err(cut)?;
        let mut p = pipeline.publisher();
        let header = FrameHeader { len, kind: KIND_TXN, seq, durable: p.log.synced_seq(), payload_crc: self.crc };
        let payload_end = self.start + (HEADER_LEN as u64) + self.len;
        let end = self.start + header.frame_len() as u64;
        // The padding, then the header: until the header is there, the frame reads as the end of the log.
        let written = p
            .log
            .write_ahead(&[0u8; 8][..(end - payload_end) as usize], payload_end)
            .and_then(|()| p.log.write_ahead(&header.encode(), self.start));
        if let Err(e) = written {
            pipeline.fail(&p, &e);
            p.log.cut_back(self.start);
            return Err(e);
        }
        p.log.extend_to(end, seq);
        Ok(Prewritten { segment: self.segment, start: self.start, bytes: end - self.start })
    }
}

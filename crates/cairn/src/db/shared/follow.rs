//! Catching up with the commits of other processes (shared mode).
//!
//! A process knows the last sequence number it published and where in the log that frame ends (its log writer's
//! position). When the counter says more was committed, it reads the frames after that position, up to the counter
//! and never past it (bytes beyond belong to a writer at work, or to one that died), decodes each into the typed write
//! sets a local commit would have produced, and publishes them with one switch of the state's two copies: indexes,
//! auto-id counters and the change feed see them exactly as local commits.
//!
//! At the end of a segment it moves to the segment named by the next sequence number. When that one is gone, a
//! compaction elsewhere folded it away: the process reloads the newest snapshot into both copies and follows the log
//! from there. Compaction removes files without truncating them in shared mode, so a segment this process has open
//! stays readable even after its removal.

use std::path::Path;
use std::sync::Arc;

use super::{repair, Shared};
use crate::db::commit::Publisher;
use crate::db::Inner;
use crate::error::{Corruption, Error, Result};
use crate::evolve::Plan;
use crate::log::frame::{self, Probe, HEADER_LEN};
use crate::log::record::{self, Op};
use crate::log::segment;
use crate::log::writer::LogWriter;
use crate::snapshot::Snapshot;
use crate::store::state::{Committed, State};
use crate::store::{DecodeFailure, EncodedWrite, FailureKind, TableStore};

/// What the log holds at the follower's position.
enum Next {
    Frame { seq: u64, kind: u32, durable: u64, payload: Vec<u8>, len: u64 },
    End,
}

/// Reads as much of `buf` as the file holds at `offset`; returns how many bytes.
fn read_full(log: &LogWriter, buf: &mut [u8], offset: u64) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match log.read_at(&mut buf[n..], offset + n as u64)? {
            0 => break,
            read => n += read,
        }
    }
    Ok(n)
}

fn next_frame(log: &LogWriter) -> Result<Next> {
    let at = log.offset();
    let mut header = [0u8; HEADER_LEN];
    let n = read_full(log, &mut header, at)?;
    if header[..n].iter().all(|&b| b == 0) {
        return Ok(Next::End);
    }
    let not_whole = |why: &str| -> Error {
        Corruption::new(log.path(), at, format!("a frame another process committed is not whole: {why}")).into()
    };
    let Some(len) = frame::checked_len(&header) else { return Err(not_whole("frame header checksum mismatch")) };
    let mut buf = vec![0u8; frame::padded(len)];
    let n = read_full(log, &mut buf, at)?;
    match frame::probe(&buf[..n], 0) {
        Probe::Frame { header, payload } => {
            let (seq, kind, durable) = (header.seq, header.kind, header.durable);
            Ok(Next::Frame { seq, kind, durable, payload: payload.to_vec(), len: header.frame_len() as u64 })
        }
        Probe::Bad(why) => Err(not_whole(why)),
        Probe::Zeros => Ok(Next::End),
    }
}

impl Inner {
    /// Publishes every commit other processes made up to the counter. A writer (`as_writer`, holding the writer lock)
    /// then also undoes an append that a dead writer left behind and moves to the segment it will append to.
    pub(crate) fn catch_up(&self, as_writer: bool) -> Result<()> {
        let Some(shared) = &self.shared else { return Ok(()) };
        let mut p = self.pipeline.publisher();
        let target = shared.counter.committed();
        let mut published = self.pipeline.published();
        let mut batch: Vec<Arc<Committed>> = Vec::new();
        let mut bytes = 0;
        while published < target {
            let at = p.log.offset();
            match next_frame(&p.log)? {
                // After a reload: frames the snapshot already holds.
                Next::Frame { seq, len, .. } if seq <= published => p.log.followed(at + len, seq),
                Next::Frame { seq, kind, durable, payload, len } if seq == published + 1 => {
                    let place = crate::seal::Place::Frame { seq, durable };
                    let payload = self.pipeline.seal.open(kind, place, &payload, p.log.path(), at)?;
                    let committed = self.decode_commit(seq, &payload, &batch, p.log.path(), at)?;
                    batch.push(Arc::new(committed));
                    published = seq;
                    bytes += len;
                    p.log.followed(at + len, seq);
                }
                Next::Frame { seq, .. } => {
                    return Err(Corruption::new(
                        p.log.path(),
                        at,
                        format!(
                            "frame {seq} where frame {} was due, following another process's commits",
                            published + 1
                        ),
                    )
                    .into())
                }
                Next::End => match self.open_segment(shared, published + 1)? {
                    Some(log) => p.log = log,
                    None => {
                        // Folded into a snapshot by a compaction in another process.
                        batch.clear();
                        bytes = 0;
                        published = self.reload(shared, &mut p, published + 1)?;
                    }
                },
            }
        }
        if !batch.is_empty() {
            self.pipeline.publish_followed(&mut p, &batch, published, bytes);
        }
        if as_writer {
            self.prepare_append(shared, &mut p, published)?;
        }
        Ok(())
    }

    /// With the writer lock, caught up to `published`: undo a dead writer's append, and continue the segment the last
    /// writer started (recreating it if it died while creating it), writable.
    fn prepare_append(&self, shared: &Shared, p: &mut Publisher, published: u64) -> Result<()> {
        repair(&*self.storage, &self.dir, &shared.counter)?;
        let next = self.dir.join(segment::file_name(published + 1));
        if p.log.first_seq() <= published {
            match self.open_segment(shared, published + 1) {
                Ok(Some(log)) => p.log = log,
                Ok(None) => {}
                Err(_) if next.exists() => {
                    tracing::warn!(file = %next.display(), "a process died while creating this log segment; creating it again");
                    p.log = LogWriter::create(self.storage.clone(), &self.dir, published + 1, shared.segment_size)?;
                }
                Err(e) => return Err(e),
            }
        }
        p.log.make_writable()
    }

    /// The segment whose first frame is `first`, to follow from its start, if it exists.
    fn open_segment(&self, shared: &Shared, first: u64) -> Result<Option<LogWriter>> {
        let path = self.dir.join(segment::file_name(first));
        let log = match LogWriter::follow(self.storage.clone(), &self.dir, path.clone(), first, shared.segment_size) {
            Ok(log) => log,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut header = [0u8; segment::HEADER_LEN];
        let n = log.read_at(&mut header, 0)?;
        match segment::decode_header(&header[..n]) {
            Ok(seq) if seq == first => Ok(Some(log)),
            Ok(seq) => Err(Corruption::new(&path, 16, format!("segment header says it starts at {seq}")).into()),
            Err(e) => Err(Corruption::new(&path, 0, format!("{e:?}")).into()),
        }
    }

    /// Replaces both copies of the state with the newest snapshot, which must hold frame `needed` (its segment is
    /// gone), and positions the log after it; returns its sequence number. Retries if a compaction replaces the
    /// snapshot meanwhile.
    fn reload(&self, shared: &Shared, p: &mut Publisher, needed: u64) -> Result<u64> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let gone =
                |e: &Error| matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
            let listing = crate::db::open::list(&*self.storage, &self.dir)?;
            let missing = || -> Error {
                Corruption::new(
                    self.dir.join(segment::file_name(needed)),
                    0,
                    format!(
                        "frame {needed} was committed by another process, but neither the log nor a snapshot holds it"
                    ),
                )
                .into()
            };
            let Some((seq, path)) = listing.snapshots.last().cloned() else { return Err(missing()) };
            if seq < needed {
                return Err(missing());
            }
            let snap = match Snapshot::read(&*self.storage, &self.pipeline.seal, &path, crate::storage::Waiting::Caller)
            {
                Err(e) if gone(&e) && attempt < 5 => continue,
                r => r?,
            };
            let Some((first, _)) = listing.segments.iter().rev().find(|(first, _)| *first <= seq + 1) else {
                return Err(Corruption::new(&path, 0, format!("no log segment continues after snapshot {seq}")).into());
            };
            let log = match self.open_segment(shared, *first)? {
                Some(log) => log,
                None if attempt < 5 => continue,
                None => return Err(Corruption::new(&path, 0, "the log segment after this snapshot is gone").into()),
            };
            let (a, b) = self.load_snapshot(shared, &snap)?;
            tracing::info!(dir = %self.dir.display(), seq, "reloaded from a snapshot another process wrote");
            self.pipeline.replace_state(p, a, b, seq);
            p.log = log;
            return Ok(seq);
        }
    }

    /// Both copies of the state as of `snap`.
    fn load_snapshot(&self, shared: &Shared, snap: &Snapshot) -> Result<(State, State)> {
        let mut stores: Vec<Box<dyn TableStore>> = shared.makers.iter().map(|make| make()).collect();
        let mut twins: Vec<Box<dyn TableStore>> = stores.iter().map(|s| s.clone_boxed()).collect();
        for (offset, table, schema, key, value) in snap.records() {
            let Some(pos) = self.tables.iter().position(|t| t.id == table) else { continue };
            let plan = self.plan(pos, schema, &snap.path, offset)?;
            match stores[pos].apply_encoded(&mut *twins[pos], key, Some((value, plan))) {
                Ok(()) => {}
                Err(f) if f.kind == FailureKind::UnknownVariant => {
                    tracing::warn!(table = self.tables[pos].name, reason = %f.message, "record not readable by this schema; not shown");
                }
                Err(f) => return Err(self.decode_error(pos, &snap.path, offset, f)),
            }
        }
        Ok((State::new(stores, snap.seq), State::new(twins, snap.seq)))
    }

    /// How the table at `pos` reads a record of schema version `schema`, or why it cannot.
    fn plan(&self, pos: usize, schema: u32, file: &Path, offset: u64) -> Result<&Plan> {
        match self.plans[pos].get(schema) {
            Plan::Refuse(r) => Err(r.error(self.tables[pos].name)),
            Plan::Undefined => Err(Error::Decode {
                table: self.tables[pos].name.to_string(),
                what: "value",
                file: file.to_path_buf(),
                offset,
                message: format!(
                    "written by schema version {schema}, which another process defined after this one opened the \
                     database; reopen the database to read records of that version"
                ),
            }),
            plan => Ok(plan),
        }
    }

    fn decode_error(&self, pos: usize, file: &Path, offset: u64, f: DecodeFailure) -> Error {
        Error::Decode {
            table: self.tables[pos].name.to_string(),
            what: f.what,
            file: file.to_path_buf(),
            offset,
            message: f.message,
        }
    }

    /// The write sets of transaction `seq` (`payload`, the frame at `at` in `file`), against the published state
    /// and `earlier`, the transactions decoded before it and not yet published.
    fn decode_commit(
        &self,
        seq: u64,
        payload: &[u8],
        earlier: &[Arc<Committed>],
        file: &Path,
        at: u64,
    ) -> Result<Committed> {
        let mut per_table: Vec<(usize, Vec<EncodedWrite<'_>>)> = Vec::new();
        for op in record::ops(payload) {
            let op = op.map_err(|off| {
                Corruption::new(file, at + (HEADER_LEN + off) as u64, "malformed operation in a checksummed frame")
            })?;
            let (table, key, value) = match op {
                Op::Put { table, schema, key, value } => (table, key, Some((schema, value))),
                Op::Delete { table, key } => (table, key, None),
                Op::CreateTable { .. } | Op::Writer { .. } | Op::DefineSchema { .. } => continue,
            };
            // Tables this schema does not declare are skipped, as on replay.
            let Some(pos) = self.tables.iter().position(|t| t.id == table) else { continue };
            let value = match value {
                Some((schema, v)) => Some((v, self.plan(pos, schema, file, at)?)),
                None => None,
            };
            match per_table.iter_mut().find(|(p, _)| *p == pos) {
                Some((_, ops)) => ops.push((key, value)),
                None => per_table.push((pos, vec![(key, value)])),
            }
        }
        let writes = self.reader.with(|state| {
            per_table
                .iter()
                .map(|(pos, ops)| {
                    state
                        .store(*pos)
                        .decode_writes(*pos, earlier, ops)
                        .map(|w| (*pos, w))
                        .map_err(|f| self.decode_error(*pos, file, at, f))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Committed { seq, writes, claims: Vec::new() })
    }
}

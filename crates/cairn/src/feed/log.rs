//! Reading committed transactions back from the log, for a subscription that starts in the past.
//!
//! - **What is delivered.** Only frames whose sequence number is at most the published one, read *before* the
//!   bytes: those frames were whole in the file before publication, and publication waited for their durability.
//!   Whatever follows them (a frame being written, reserved zeros) is where the reader stops for now, never an error.
//! - **Lazily.** A segment is read in chunks of [`CHUNK`] (or one frame, if larger), so a backlog is never in memory
//!   at once.
//! - **Against compaction.** Each chunk is read under the database's snapshot lock, which compaction holds while it
//!   truncates and removes the segments it folded: a chunk never comes from a file being removed. Between chunks the
//!   lock is free, so a long backlog does not hold compaction up. A segment that vanished meanwhile sends the reader
//!   back to the directory listing, where the new snapshot answers [`FeedError::TooOld`].
//! - **Stale bytes.** A chunk may have caught a frame mid-write. A whole frame up to the published sequence number is
//!   final whenever it was read; an anomaly (a bad frame, zeros, a frame out of sequence) is believed only in bytes
//!   read after the published sequence number was, and a refill reads again from the frame's start rather than
//!   extending what an earlier read left.

use std::path::{Path, PathBuf};

use super::FeedError;
use crate::db::Inner;
use crate::error::{Corruption, Error};
use crate::log::frame::{self, FrameHeader, Probe, HEADER_LEN};
use crate::log::segment::{self, HeaderError};

/// How much of a segment one read takes.
pub(crate) const CHUNK: usize = 1 << 20;

/// What the bytes at a position of a segment are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole, checksummed frame.
    Frame(FrameHeader),
    /// The buffer ends inside a frame: this many bytes from the position are needed.
    More(usize),
    /// The data ends here (zeros, or the end of the file).
    End,
    /// Not a whole frame.
    Bad(&'static str),
}

/// Parses the frame at `buf[pos..]`; `eof` says whether the buffer reaches the end of the file. Pure.
pub(crate) fn parse(buf: &[u8], pos: usize, eof: bool) -> Parsed {
    let rest = &buf[pos.min(buf.len())..];
    let Some(h) = rest.get(..HEADER_LEN) else {
        if !eof {
            return Parsed::More(HEADER_LEN);
        }
        return if rest.iter().all(|&b| b == 0) { Parsed::End } else { Parsed::Bad("truncated frame header") };
    };
    if h.iter().all(|&b| b == 0) {
        return Parsed::End;
    }
    let Some(need) = frame::checked_len(h) else {
        return Parsed::Bad("frame header checksum mismatch");
    };
    if rest.len() < need && !eof {
        return Parsed::More(need);
    }
    match frame::probe(buf, pos) {
        Probe::Frame { header, .. } => Parsed::Frame(header),
        Probe::Zeros => Parsed::End,
        Probe::Bad(reason) => Parsed::Bad(reason),
    }
}

/// One transaction read back: its sequence number and payload, and where it is.
pub(crate) struct Frame<'a> {
    pub(crate) seq: u64,
    /// Decompressed and decrypted.
    pub(crate) payload: std::borrow::Cow<'a, [u8]>,
    pub(crate) path: &'a Path,
    pub(crate) offset: u64,
}

/// The part of one segment being read.
struct Segment {
    path: PathBuf,
    first: u64,
    /// Bytes of the file from offset `base`.
    buf: Vec<u8>,
    base: u64,
    /// The next frame, in `buf`.
    pos: usize,
    /// `buf` reached the end of the file when it was read.
    eof: bool,
    /// `buf[pos..]` was read during the current call.
    fresh: bool,
}

/// Reads the log forward from a position; see the module documentation.
#[derive(Default)]
pub(crate) struct LogReader {
    segment: Option<Segment>,
}

/// What the reader found, before the frame is lent out (so the loop does not hold the borrow).
enum Found {
    Frame { header: frame::FrameHeader, start: usize },
    CaughtUp,
}

impl LogReader {
    /// The frame of transaction `after + 1`, if `published` (read before this call) covers it; `None` if the log
    /// holds nothing published after `after`.
    pub(crate) fn next(&mut self, inner: &Inner, after: u64, published: u64) -> Result<Option<Frame<'_>>, FeedError> {
        if let Some(seg) = &mut self.segment {
            seg.fresh = false;
        }
        let mut finished: Option<u64> = None;
        let found = loop {
            let seg = match &mut self.segment {
                Some(seg) => seg,
                None => {
                    let seg = open(inner, after)?;
                    if finished == Some(seg.first) {
                        return Err(anomaly(
                            inner,
                            after,
                            &seg.path,
                            seg.base + seg.buf.len() as u64,
                            format!("the log ends before sequence number {}, which was committed", after + 1),
                        ));
                    }
                    self.segment.insert(seg)
                }
            };
            let at = seg.base + seg.pos as u64;
            match parse(&seg.buf, seg.pos, seg.eof) {
                Parsed::More(need) => {
                    if !seg.fill(inner, need)? {
                        self.segment = None;
                    }
                }
                Parsed::Frame(h) if h.seq <= after => seg.pos += h.frame_len(),
                // A whole frame that is published is final, however long ago it was read.
                Parsed::Frame(h) if h.seq == after + 1 && h.seq <= published => {
                    let start = seg.pos + HEADER_LEN;
                    seg.pos += h.frame_len();
                    break Found::Frame { header: h, start };
                }
                // Not published yet, or the end of what is written: nothing more for now. The bytes after the
                // position may change, so they are read again next time.
                Parsed::Frame(_) | Parsed::End | Parsed::Bad(_) if after >= published => {
                    seg.rewind();
                    break Found::CaughtUp;
                }
                // From here on `after + 1` is published, so it is whole in the file: believe only fresh bytes.
                _ if !seg.fresh => seg.rewind(),
                Parsed::Frame(h) => {
                    let what = format!("frame of sequence number {} where {} was due", h.seq, after + 1);
                    return Err(anomaly(inner, after, &seg.path, at, what));
                }
                Parsed::Bad(reason) => return Err(anomaly(inner, after, &seg.path, at, reason.to_string())),
                // This segment is closed and ends before `after + 1`: the next one starts with it.
                Parsed::End => finished = self.segment.take().map(|s| s.first),
            }
        };
        Ok(match found {
            Found::CaughtUp => None,
            Found::Frame { header, start } => {
                let seg = self.segment.as_ref().expect("a frame was found in the current segment");
                let offset = seg.base + (start - HEADER_LEN) as u64;
                let stored = &seg.buf[start..start + header.len as usize];
                let place = crate::seal::Place::Frame { seq: header.seq, durable: header.durable };
                let payload = inner.pipeline.seal.open(header.kind, place, stored, &seg.path, offset)?;
                Some(Frame { seq: header.seq, payload, path: &seg.path, offset })
            }
        })
    }
}

impl Segment {
    /// Forgets the bytes after the position: they are read again.
    fn rewind(&mut self) {
        self.buf.truncate(self.pos);
        self.eof = false;
    }

    /// Reads the file again from the position, at least `need` bytes if the file has them, under the snapshot lock.
    /// Unread bytes from an earlier read are dropped, not extended: they may hold a frame caught mid-write. False
    /// if the file is gone (compaction removed it).
    fn fill(&mut self, inner: &Inner, need: usize) -> Result<bool, FeedError> {
        let _compaction = inner.snapshot.lock();
        self.read(inner, need)
    }

    /// [`Segment::fill`], with the snapshot lock held by the caller.
    fn read(&mut self, inner: &Inner, need: usize) -> Result<bool, FeedError> {
        let file = match inner.storage.open_read(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("open log segment", &self.path, e).into()),
        };
        self.base += self.pos as u64;
        self.pos = 0;
        let want = need.max(CHUNK);
        let mut filled = 0;
        self.buf.clear();
        self.buf.resize(want, 0);
        while filled < want {
            let n = file
                .read_at(&mut self.buf[filled..], self.base + filled as u64)
                .map_err(|e| Error::io("read log segment", &self.path, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        self.buf.truncate(filled);
        self.eof = filled < want;
        self.fresh = true;
        Ok(true)
    }
}

/// Opens the segment holding transaction `after + 1`, under the snapshot lock.
fn open(inner: &Inner, after: u64) -> Result<Segment, FeedError> {
    let snapshot = inner.snapshot.lock();
    let base = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
    if after < base {
        return Err(FeedError::TooOld { requested: after, oldest: base });
    }
    let dir = &inner.dir;
    let names = inner.storage.list(dir).map_err(|e| Error::io("list database directory", dir, e))?;
    let Some(first) = names.iter().filter_map(|n| segment::parse_name(n)).filter(|&f| f <= after + 1).max() else {
        let what = format!("no log segment holds sequence number {}, and no snapshot covers it", after + 1);
        return Err(Error::from(Corruption::new(dir, 0, what)).into());
    };
    let path = dir.join(segment::file_name(first));
    let mut seg = Segment { path, first, buf: Vec::new(), base: 0, pos: 0, eof: false, fresh: false };
    if !seg.read(inner, segment::HEADER_LEN)? {
        return Err(Error::io("open log segment", &seg.path, std::io::ErrorKind::NotFound.into()).into());
    }
    match segment::decode_header(&seg.buf) {
        Ok(f) if f == first => {}
        Ok(f) => {
            let what = format!("segment header says it starts at sequence number {f}, its name says {first}");
            return Err(Error::from(Corruption::new(&seg.path, 0, what)).into());
        }
        Err(HeaderError::Bad(what)) => return Err(Error::from(Corruption::new(&seg.path, 0, what)).into()),
        Err(HeaderError::Unsupported(what)) => return Err(Error::from(Corruption::new(&seg.path, 0, what)).into()),
    }
    seg.pos = segment::HEADER_LEN;
    Ok(seg)
}

/// Something unexpected at `path:offset` while reading towards `after + 1`: the log was compacted under the reader
/// (a replaced segment whose removal failed half-way), or it is damaged.
fn anomaly(inner: &Inner, after: u64, path: &Path, offset: u64, what: String) -> FeedError {
    let base = inner.snapshot.lock().as_ref().map_or(0, |(seq, _)| *seq);
    if after < base {
        return FeedError::TooOld { requested: after, oldest: base };
    }
    Error::from(Corruption::new(path, offset, what)).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::frame::frame;

    #[test]
    fn a_whole_frame_parses_and_a_cut_one_asks_for_more_unless_the_file_ends() {
        let f = frame(3, b"payload");
        assert!(matches!(parse(&f, 0, false), Parsed::Frame(h) if h.seq == 3));
        for cut in 1..HEADER_LEN {
            assert_eq!(parse(&f[..cut], 0, false), Parsed::More(HEADER_LEN), "cut at {cut}");
            assert!(matches!(parse(&f[..cut], 0, true), Parsed::Bad(_)), "cut at {cut}, end of file");
        }
        for cut in HEADER_LEN..HEADER_LEN + 7 {
            assert_eq!(parse(&f[..cut], 0, false), Parsed::More(HEADER_LEN + 7), "cut at {cut}");
            assert!(matches!(parse(&f[..cut], 0, true), Parsed::Bad(_)), "cut at {cut}, end of file");
        }
    }

    #[test]
    fn zeros_and_the_end_of_the_file_end_the_data() {
        let mut buf = frame(1, b"x");
        let end = buf.len();
        assert_eq!(parse(&buf, end, true), Parsed::End);
        assert_eq!(parse(&buf, end, false), Parsed::More(HEADER_LEN));
        buf.resize(end + 64, 0);
        assert_eq!(parse(&buf, end, false), Parsed::End);
    }

    #[test]
    fn a_damaged_header_never_asks_for_its_claimed_length() {
        let mut f = frame(3, b"payload");
        f[0] = 0xff; // the length, now huge and unchecked
        assert_eq!(parse(&f[..HEADER_LEN], 0, false), Parsed::Bad("frame header checksum mismatch"));
        let mut g = frame(3, b"payload");
        let last = g.len() - 2;
        g[last - 1] ^= 1;
        assert!(matches!(parse(&g, 0, true), Parsed::Bad(_)), "payload damage is found once the frame is whole");
    }
}

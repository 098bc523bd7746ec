//! Reading a whole log: which frames to replay, where a torn tail must be cut, and when damage is real.
//! Pure: it works on the bytes of the segments, the caller does the I/O.
//!
//! The rule. Frames are replayed in order while each is whole and carries the next sequence number. At the first
//! spot that is not (a bad frame, a hole of zeros followed by more data, a segment header that is missing), recovery
//! looks at everything after it for proof that the spot had been fsynced: a later whole frame whose `durable` field is
//! at least the sequence number expected at the spot, or a later segment's whole header (a segment is fsynced before
//! the next one is created). With proof, the spot is damage to durable data, reported with file and offset. Without
//! it, the spot is taken for the end of an interrupted write (or of writes a crashing disk kept out of order) and
//! everything from it on is cut off. The one case this cannot tell apart is damage to the very last fsynced frames,
//! with nothing written after them: those are cut like a torn tail.

use std::borrow::Cow;
use std::path::Path;

use super::frame::{self, FrameHeader, Probe};
use super::segment::{self, HeaderError};
use crate::error::{Corruption, Result};
use crate::seal::{Place, Seal};

/// One segment's bytes, as read from disk.
#[derive(Debug)]
pub(crate) struct SegmentData<'a> {
    pub(crate) path: &'a Path,
    pub(crate) bytes: &'a [u8],
}

/// A frame found by the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameAt {
    /// Index of the segment in the scanned list.
    pub(crate) segment: usize,
    /// Offset of the frame header in the segment.
    pub(crate) offset: usize,
    pub(crate) header: FrameHeader,
}

impl FrameAt {
    /// The frame's payload within `bytes` (the segment's bytes).
    pub(crate) fn payload<'b>(&self, bytes: &'b [u8]) -> &'b [u8] {
        let start = self.offset + frame::HEADER_LEN;
        &bytes[start..start + self.header.len as usize]
    }

    /// The payload as written, decompressed and decrypted as `seal` reads it; `seg` is the frame's segment.
    pub(crate) fn plain<'b>(&self, seal: &Seal, seg: &SegmentData<'b>) -> Result<Cow<'b, [u8]>> {
        let place = Place::Frame { seq: self.header.seq, durable: self.header.durable };
        seal.open(self.header.kind, place, self.payload(seg.bytes), seg.path, self.offset as u64)
    }

    /// The damage of an operation that does not decode at `at` (within the payload) of this frame, in `path`. In a
    /// payload stored compressed or encrypted, `at` is no file offset, and the frame's own is named.
    pub(crate) fn malformed_op(&self, path: &Path, at: usize) -> Corruption {
        let offset =
            if self.header.kind == frame::KIND_TXN { self.offset + frame::HEADER_LEN + at } else { self.offset };
        Corruption::new(path, offset as u64, "malformed operation in a checksummed frame")
    }
}

/// Reads the segments at `paths` whole.
pub(crate) fn read_segments<'p>(
    storage: &dyn crate::storage::Storage,
    paths: impl IntoIterator<Item = &'p Path>,
    waiting: crate::storage::Waiting,
) -> crate::error::Result<Vec<Vec<u8>>> {
    paths
        .into_iter()
        .map(|p| waiting.read_all(storage, p).map_err(|e| crate::error::Error::io("read log segment", p, e)))
        .collect()
}

/// Where the log must be cut before anything new is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cut {
    /// The segment holding the cut. Every later segment is deleted.
    pub(crate) segment: usize,
    /// Truncate the segment to this length; `0` means delete the whole file (its header never became durable).
    pub(crate) offset: usize,
    /// Why, for the log.
    pub(crate) reason: &'static str,
}

/// The result of scanning the log.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Frames with a sequence number after the snapshot, in order.
    pub(crate) frames: Vec<FrameAt>,
    /// The last sequence number in the log (or the snapshot's, if the log adds nothing).
    pub(crate) last_seq: u64,
    /// Where valid data ends in the last kept segment (the append position).
    pub(crate) end: usize,
    /// The torn tail to cut, if any.
    pub(crate) cut: Option<Cut>,
}

/// Scans `segments` (sorted by first sequence number) for frames after sequence number `after`.
pub(crate) fn scan(segments: &[SegmentData<'_>], after: u64) -> Result<Scan, Corruption> {
    let mut out = Scan { last_seq: after, ..Scan::default() };
    let mut expected: Option<u64> = None;
    for (i, seg) in segments.iter().enumerate() {
        let first = match segment::decode_header(seg.bytes) {
            Ok(first) => first,
            Err(HeaderError::Bad(what)) => return bad(segments, i, 0, expected_or(expected, after), what, out),
            Err(HeaderError::Unsupported(what)) => return Err(Corruption::new(seg.path, 0, what)),
        };
        match expected {
            None if first > after + 1 => {
                return Err(Corruption::new(
                    seg.path,
                    0,
                    format!(
                        "log starts at sequence number {first} but the snapshot ends at {after}: a segment is missing"
                    ),
                ))
            }
            None => {}
            Some(e) if e != first => {
                return Err(Corruption::new(
                    seg.path,
                    0,
                    format!("segment starts at sequence number {first}, expected {e}: the frames between are missing"),
                ))
            }
            Some(_) => {}
        }
        let mut next = first;
        let mut pos = segment::HEADER_LEN;
        let last_segment = i + 1 == segments.len();
        loop {
            match frame::probe(seg.bytes, pos) {
                Probe::Frame { header, .. } if header.seq == next => {
                    if header.seq > after {
                        out.frames.push(FrameAt { segment: i, offset: pos, header });
                        out.last_seq = header.seq;
                    }
                    next += 1;
                    pos += header.frame_len();
                }
                Probe::Frame { .. } => return bad(segments, i, pos, next, "frame out of sequence", out),
                Probe::Zeros if !last_segment => {
                    // A closed segment ends here; the next must continue at `next`. If it does not, frames are
                    // missing from the end of this one (the next segment's header proves they were durable).
                    if let Ok(first) = segment::decode_header(segments[i + 1].bytes) {
                        if first != next {
                            return Err(Corruption::new(
                                seg.path,
                                pos.min(seg.bytes.len()) as u64,
                                format!(
                                    "log segment ends before sequence number {next} but the next segment starts at \
                                     {first}: frames are missing from the end of this one"
                                ),
                            ));
                        }
                    }
                    break;
                }
                Probe::Zeros if seg.bytes[pos.min(seg.bytes.len())..].iter().all(|&b| b == 0) => {
                    out.end = pos;
                    return Ok(out);
                }
                Probe::Zeros => return bad(segments, i, pos, next, "hole of zeros before more data", out),
                Probe::Bad(reason) => return bad(segments, i, pos, next, reason, out),
            }
        }
        expected = Some(next);
    }
    Ok(out)
}

fn expected_or(expected: Option<u64>, after: u64) -> u64 {
    expected.unwrap_or(after + 1)
}

/// Decides between damage and a torn tail at `segments[seg]`, offset `pos`, where sequence number `expected` was due.
fn bad(
    segments: &[SegmentData<'_>],
    seg: usize,
    pos: usize,
    expected: u64,
    reason: &'static str,
    mut out: Scan,
) -> Result<Scan, Corruption> {
    if let Some((j, p, durable)) = durable_evidence(segments, seg, pos, expected) {
        return Err(Corruption::new(
            segments[seg].path,
            pos as u64,
            format!(
                "{reason}; sequence number {expected} was already durable, as the frame at {}:{p} (durable up to {durable}) shows",
                segments[j].path.display()
            ),
        ));
    }
    out.end = pos;
    out.cut = Some(Cut { segment: seg, offset: pos, reason });
    Ok(out)
}

/// Proof that sequence number `expected`, due at `(seg, pos)`, had been fsynced: the place of the proof and the
/// sequence number it shows durable.
fn durable_evidence(
    segments: &[SegmentData<'_>],
    seg: usize,
    pos: usize,
    expected: u64,
) -> Option<(usize, usize, u64)> {
    for (j, s) in segments.iter().enumerate().skip(seg) {
        let start = if j == seg {
            pos + frame::ALIGN
        } else {
            if let Ok(first) = segment::decode_header(s.bytes) {
                if first > expected {
                    return Some((j, 0, first - 1));
                }
            }
            segment::HEADER_LEN
        };
        let mut p = start;
        while p + frame::HEADER_LEN <= s.bytes.len() {
            if s.bytes[p..p + frame::ALIGN].iter().any(|&b| b != 0) {
                if let Probe::Frame { header, .. } = frame::probe(s.bytes, p) {
                    if header.durable >= expected && header.seq > expected {
                        return Some((j, p, header.durable));
                    }
                    // Step over the whole frame: a payload may hold bytes that look like a frame.
                    p += header.frame_len();
                    continue;
                }
            }
            p += frame::ALIGN;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::frame::KIND_TXN;

    /// Builds a segment of frames `first..first+n`, each frame's `durable` being `durable(seq)`.
    fn seg(first: u64, n: u64, durable: impl Fn(u64) -> u64) -> Vec<u8> {
        let mut v = segment::encode_header(first).to_vec();
        for seq in first..first + n {
            let payload = format!("payload of {seq}");
            let h = FrameHeader::for_payload(KIND_TXN, seq, durable(seq), payload.as_bytes());
            v.extend_from_slice(&h.encode());
            v.extend_from_slice(payload.as_bytes());
            v.resize(v.len() + h.frame_len() - frame::HEADER_LEN - payload.len(), 0);
        }
        v
    }

    fn data<'a>(path: &'a Path, segs: &'a [Vec<u8>]) -> Vec<SegmentData<'a>> {
        segs.iter().map(|b| SegmentData { path, bytes: b }).collect()
    }

    #[test]
    fn clean_log_with_preallocated_zeros() {
        let mut s = seg(1, 5, |q| q - 1);
        let end = s.len();
        s.resize(end + 4096, 0);
        let segs = [s];
        let p = Path::new("a.log");
        let scan = scan(&data(p, &segs), 0).unwrap();
        assert_eq!(scan.frames.len(), 5);
        assert_eq!(scan.last_seq, 5);
        assert_eq!(scan.end, end);
        assert!(scan.cut.is_none());
        let after_snapshot = super::scan(&data(p, &segs), 3).unwrap();
        assert_eq!(after_snapshot.frames.iter().map(|f| f.header.seq).collect::<Vec<_>>(), vec![4, 5]);
    }

    #[test]
    fn torn_tail_is_cut_at_the_last_whole_frame() {
        let whole = seg(1, 5, |q| q - 1);
        let four = seg(1, 4, |q| q - 1).len();
        // Up to the end of frame 5's checksummed bytes; its zero padding is not part of it.
        let unpadded = four + frame::HEADER_LEN + "payload of 5".len();
        assert!(unpadded < whole.len());
        for cut in four + 1..unpadded {
            let segs = [whole[..cut].to_vec()];
            let scan = scan(&data(Path::new("a.log"), &segs), 0).unwrap();
            assert_eq!(scan.last_seq, 4, "cut at {cut}");
            assert_eq!(scan.cut.as_ref().map(|c| c.offset), Some(four), "cut at {cut}");
        }
    }

    #[test]
    fn unsynced_hole_then_frame_is_a_tail() {
        // Frames 4 and 5 were written together after fsync of 3; the disk kept 5 and dropped 4.
        let mut s = seg(1, 5, |q| if q <= 3 { q - 1 } else { 3 });
        let three = seg(1, 3, |q| q - 1).len();
        let four = seg(1, 4, |q| q - 1).len();
        s[three..four].fill(0);
        let segs = [s];
        let scan = scan(&data(Path::new("a.log"), &segs), 0).unwrap();
        assert_eq!(scan.last_seq, 3);
        assert_eq!(scan.cut.unwrap().offset, three);
    }

    #[test]
    fn damage_to_durable_frame_is_an_error_naming_the_offset() {
        // Frame 5 was written after 3 and 4 were fsynced, so damage at 3 is damage to durable data.
        let mut s = seg(1, 5, |q| q - 1);
        let two = seg(1, 2, |q| q - 1).len();
        s[two + 40] ^= 0xff;
        let segs = [s];
        let err = scan(&data(Path::new("a.log"), &segs), 0).unwrap_err();
        assert_eq!(err.offset, two as u64);
        assert!(err.what.contains("already durable"), "{}", err.what);
    }

    #[test]
    fn rollover_continues_into_the_next_segment() {
        let mut a = seg(1, 3, |q| q - 1);
        a.resize(a.len() + 64, 0);
        let b = seg(4, 2, |q| q - 1);
        let segs = [a, b];
        let scan = scan(&data(Path::new("x.log"), &segs), 0).unwrap();
        assert_eq!(scan.last_seq, 5);
        assert_eq!(scan.frames.last().unwrap().segment, 1);
    }

    #[test]
    fn a_closed_segment_cut_at_a_frame_boundary_is_named() {
        let a = seg(1, 5, |q| q - 1);
        let three = seg(1, 3, |q| q - 1).len();
        let segs = [a[..three].to_vec(), seg(6, 2, |q| q - 1)];
        let paths = [Path::new("a.log"), Path::new("b.log")];
        let data: Vec<_> = segs.iter().zip(paths).map(|(b, path)| SegmentData { path, bytes: b }).collect();
        let err = scan(&data, 0).unwrap_err();
        assert_eq!((err.file.as_path(), err.offset), (Path::new("a.log"), three as u64));
    }

    #[test]
    fn missing_segment_is_an_error() {
        let segs = [seg(1, 3, |q| q - 1), seg(6, 2, |q| q - 1)];
        let err = scan(&data(Path::new("x.log"), &segs), 0).unwrap_err();
        assert!(err.what.contains("missing"), "{}", err.what);
        let segs = [seg(10, 3, |q| q - 1)];
        assert!(scan(&data(Path::new("x.log"), &segs), 5).is_err());
    }

    #[test]
    fn new_segment_whose_header_never_landed_is_dropped() {
        for torn in [vec![0u8; 10], segment::encode_header(4)[..20].to_vec(), vec![0u8; 32]] {
            let segs = [seg(1, 3, |q| q - 1), torn];
            let scan = scan(&data(Path::new("x.log"), &segs), 0).unwrap();
            assert_eq!(scan.last_seq, 3);
            assert_eq!(scan.cut.map(|c| (c.segment, c.offset)), Some((1, 0)));
        }
    }

    #[test]
    fn a_later_segment_header_proves_the_earlier_segment_durable() {
        let mut a = seg(1, 3, |q| q - 1);
        let two = seg(1, 2, |q| q - 1).len();
        a[two + 3] ^= 1;
        let segs = [a, segment::encode_header(4).to_vec()];
        let err = scan(&data(Path::new("x.log"), &segs), 0).unwrap_err();
        assert_eq!(err.offset, two as u64);
    }

    #[test]
    fn a_frame_inside_a_payload_is_no_proof() {
        // Frame 3 is torn; frame 2's payload happens to contain the bytes of a frame claiming durability up to 99.
        let fake = {
            let h = FrameHeader::for_payload(KIND_TXN, 50, 99, b"fake");
            let mut v = h.encode().to_vec();
            v.extend_from_slice(b"fake");
            v.resize(h.frame_len(), 0);
            v
        };
        let mut s = segment::encode_header(1).to_vec();
        for (seq, payload) in [(1u64, b"one".to_vec()), (2, fake)] {
            let h = FrameHeader::for_payload(KIND_TXN, seq, seq - 1, &payload);
            s.extend_from_slice(&h.encode());
            s.extend_from_slice(&payload);
            s.resize(s.len() + h.frame_len() - frame::HEADER_LEN - payload.len(), 0);
        }
        let end = s.len();
        // Frame 3: a torn header, then frame 2 copied again after it (a reordered write of stale bytes).
        s.extend_from_slice(&[0xAB; 8]);
        s.resize(end + 32, 0);
        let again = s[segment::HEADER_LEN..end].to_vec();
        s.extend_from_slice(&again);
        let segs = [s];
        let scan = scan(&data(Path::new("x.log"), &segs), 0).unwrap();
        assert_eq!(scan.last_seq, 2);
        assert_eq!(scan.cut.unwrap().offset, end);
    }
}

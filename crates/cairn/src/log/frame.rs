//! Log frames: the unit of atomicity on disk. Pure encoding and decoding, no I/O.
//!
//! ```text
//! offset size field
//!  0      4   payload_len   u32 LE, > 0
//!  4      4   kind          u32 LE, 1 = transaction; bits 8.. say how the payload is stored (`seal`)
//!  8      8   seq           u64 LE, the transaction's sequence number (consecutive across the log)
//! 16      8   durable       u64 LE, highest seq known fsynced when this frame was written
//! 24      4   payload_crc   CRC32C of the payload
//! 28      4   header_crc    CRC32C of bytes 0..28
//! 32      n   payload
//!         p   zero padding to the next multiple of 8
//! ```
//!
//! `durable` lets recovery tell an interrupted write from damage: if a frame found *after* a bad spot says that the
//! bad spot's sequence number had already been fsynced when it was written, the bad spot is damage to durable data,
//! not a torn tail.

/// Size of a frame header.
pub(crate) const HEADER_LEN: usize = 32;
/// Frames start at multiples of this.
pub(crate) const ALIGN: usize = 8;
/// The frame kind of a transaction record.
pub(crate) const KIND_TXN: u32 = 1;
/// The largest payload one frame may carry.
pub(crate) const MAX_PAYLOAD: u64 = u32::MAX as u64 - 64;

/// The fields of a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) len: u32,
    pub(crate) kind: u32,
    pub(crate) seq: u64,
    pub(crate) durable: u64,
    pub(crate) payload_crc: u32,
}

impl FrameHeader {
    /// The header for `payload`.
    pub(crate) fn for_payload(kind: u32, seq: u64, durable: u64, payload: &[u8]) -> Self {
        FrameHeader { len: payload.len() as u32, kind, seq, durable, payload_crc: crc32c::crc32c(payload) }
    }

    /// The header's 32 bytes.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.len.to_le_bytes());
        b[4..8].copy_from_slice(&self.kind.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.durable.to_le_bytes());
        b[24..28].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Bytes the whole frame occupies, padding included.
    pub(crate) fn frame_len(&self) -> usize {
        padded(HEADER_LEN + self.len as usize)
    }
}

/// `n` rounded up to a multiple of [`ALIGN`].
pub(crate) fn padded(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// The length of the whole frame (header and payload, before padding) whose header is `h`, if the header's checksum
/// matches: a length is trusted only then.
pub(crate) fn checked_len(h: &[u8]) -> Option<usize> {
    let stored = u32::from_le_bytes(h[28..32].try_into().expect("4 bytes"));
    (crc32c::crc32c(&h[0..28]) == stored)
        .then(|| HEADER_LEN + u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")) as usize)
}

/// What is found at one position of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Probe<'a> {
    /// A whole, checksummed frame.
    Frame { header: FrameHeader, payload: &'a [u8] },
    /// Zeros (or too few bytes for a header): where written data normally ends.
    Zeros,
    /// Something that is not a whole frame.
    Bad(&'static str),
}

/// Reads the frame starting at `buf[pos..]`.
pub(crate) fn probe(buf: &[u8], pos: usize) -> Probe<'_> {
    let Some(h) = buf.get(pos..pos + HEADER_LEN) else {
        return if buf[pos.min(buf.len())..].iter().all(|&b| b == 0) {
            Probe::Zeros
        } else {
            Probe::Bad("truncated frame header")
        };
    };
    if h.iter().all(|&b| b == 0) {
        return Probe::Zeros;
    }
    if checked_len(h).is_none() {
        return Probe::Bad("frame header checksum mismatch");
    }
    let header = FrameHeader {
        len: u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")),
        kind: u32::from_le_bytes(h[4..8].try_into().expect("4 bytes")),
        seq: u64::from_le_bytes(h[8..16].try_into().expect("8 bytes")),
        durable: u64::from_le_bytes(h[16..24].try_into().expect("8 bytes")),
        payload_crc: u32::from_le_bytes(h[24..28].try_into().expect("4 bytes")),
    };
    if header.len == 0 {
        return Probe::Bad("frame with an empty payload");
    }
    if crate::seal::base_kind(header.kind) != Some(KIND_TXN) {
        return Probe::Bad("unknown frame kind");
    }
    let start = pos + HEADER_LEN;
    let Some(payload) = buf.get(start..start + header.len as usize) else {
        return Probe::Bad("frame payload runs past the end of the file");
    };
    if crc32c::crc32c(payload) != header.payload_crc {
        return Probe::Bad("frame payload checksum mismatch");
    }
    Probe::Frame { header, payload }
}

/// Test support: the padded frame of transaction `seq` carrying `payload`, with `durable` = `seq - 1`.
#[cfg(test)]
pub(crate) fn frame(seq: u64, payload: &[u8]) -> Vec<u8> {
    let h = FrameHeader::for_payload(KIND_TXN, seq, seq - 1, payload);
    let mut v = h.encode().to_vec();
    v.extend_from_slice(payload);
    v.resize(h.frame_len(), 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let f = frame(7, b"hello");
        assert_eq!(f.len(), 40);
        match probe(&f, 0) {
            Probe::Frame { header, payload } => {
                assert_eq!(header.seq, 7);
                assert_eq!(header.durable, 6);
                assert_eq!(payload, b"hello");
                assert_eq!(header.frame_len(), 40);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn zeros_and_short_tails() {
        assert_eq!(probe(&[0u8; 64], 0), Probe::Zeros);
        assert_eq!(probe(&[0u8; 5], 0), Probe::Zeros);
        assert_eq!(probe(&[], 0), Probe::Zeros);
        assert_eq!(probe(&[1u8; 5], 0), Probe::Bad("truncated frame header"));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let f = frame(3, b"some payload bytes");
        for i in 0..HEADER_LEN + 18 {
            for bit in 0..8 {
                let mut g = f.clone();
                g[i] ^= 1 << bit;
                assert!(matches!(probe(&g, 0), Probe::Bad(_)), "flip at byte {i} bit {bit} not detected");
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let f = frame(3, b"some payload bytes");
        for cut in 1..HEADER_LEN + 18 {
            assert!(matches!(probe(&f[..cut], 0), Probe::Bad(_)), "cut at {cut}");
        }
    }
}

//! Log segment files: naming and the 32-byte segment header. Pure, no I/O.
//!
//! ```text
//! offset size field
//!  0      8   magic "CAIRNLOG"
//!  8      4   format version, u32 LE
//! 12      4   flags, u32 LE (0)
//! 16      8   first_seq, u64 LE: the sequence number of the segment's first frame
//! 24      4   reserved (0)
//! 28      4   CRC32C of bytes 0..28
//! 32          frames
//! ```

use crate::format::FORMAT_VERSION;

/// Magic bytes at the start of every log segment.
pub(crate) const MAGIC: &[u8; 8] = b"CAIRNLOG";
/// Size of the segment header; the first frame starts here.
pub(crate) const HEADER_LEN: usize = 32;
/// File name extension of log segments.
pub(crate) const EXT: &str = "log";

/// The file name of the segment whose first frame has `first_seq`.
pub(crate) fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{EXT}")
}

/// The header bytes of a new segment.
pub(crate) fn encode_header(first_seq: u64) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&b[0..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Why a segment header is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Missing, torn or damaged: recovery decides from what follows whether this is an interrupted segment creation
    /// or damage (see `scan`).
    Bad(&'static str),
    /// Whole and checksummed, but of a format this build cannot read: always an error.
    Unsupported(String),
}

/// The format version a segment's header names (unchecked: read it only from a header `decode_header` accepted).
pub(crate) fn header_version(buf: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(8..12)?.try_into().ok()?))
}

/// Decodes a segment header, returning its `first_seq`.
pub(crate) fn decode_header(buf: &[u8]) -> Result<u64, HeaderError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Err(HeaderError::Bad("segment header never completely written"));
    };
    if &h[0..8] != MAGIC {
        return Err(HeaderError::Bad("segment header damaged or never written (wrong magic bytes)"));
    }
    let stored = u32::from_le_bytes(h[28..32].try_into().expect("4 bytes"));
    if crc32c::crc32c(&h[0..28]) != stored {
        return Err(HeaderError::Bad("segment header checksum mismatch"));
    }
    let version = header_version(h).expect("a whole header");
    if version == 0 || version > FORMAT_VERSION {
        return Err(HeaderError::Unsupported(format!(
            "segment written by format version {version}, this build reads versions 1 to {FORMAT_VERSION}; use a Cairn that reads it"
        )));
    }
    if h[12..16] != [0; 4] || h[24..28] != [0; 4] {
        return Err(HeaderError::Unsupported(
            "segment header has flags or reserved bytes this build does not know; use a Cairn that reads it".into(),
        ));
    }
    Ok(u64::from_le_bytes(h[16..24].try_into().expect("8 bytes")))
}

/// Removes from the front of `segments` (sorted by first sequence number) those whose every frame is at or before
/// `seq`, the sequence number a snapshot holds, and returns their paths: each is known to be covered when the next
/// segment starts at or before `seq + 1`.
pub(crate) fn take_covered(segments: &mut Vec<(u64, std::path::PathBuf)>, seq: u64) -> Vec<std::path::PathBuf> {
    let covered = segments.windows(2).take_while(|w| w[1].0 <= seq + 1).count();
    segments.drain(..covered).map(|(_, p)| p).collect()
}

/// Parses a segment file name back into its `first_seq`.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(EXT)?.strip_suffix('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = encode_header(42);
        assert_eq!(decode_header(&h), Ok(42));
        for cut in 0..HEADER_LEN {
            assert!(matches!(decode_header(&h[..cut]), Err(HeaderError::Bad(_))), "cut at {cut}");
        }
        let mut bad = h;
        bad[17] ^= 1;
        assert!(matches!(decode_header(&bad), Err(HeaderError::Bad(_))));
        let mut future = h;
        future[8] = 9;
        let crc = crc32c::crc32c(&future[0..28]);
        future[28..32].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(decode_header(&future), Err(HeaderError::Unsupported(_))));
    }

    #[test]
    fn covered_segments_are_those_before_one_starting_within_the_snapshot() {
        use std::path::PathBuf;
        let mut segs: Vec<(u64, PathBuf)> = [1, 5, 9, 14].iter().map(|&f| (f, PathBuf::from(file_name(f)))).collect();
        assert_eq!(take_covered(&mut segs, 8), vec![PathBuf::from(file_name(1)), PathBuf::from(file_name(5))]);
        assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), vec![9, 14]);
        assert!(take_covered(&mut segs, 20).len() == 1, "the last segment is never taken");
        assert!(take_covered(&mut segs, 99).is_empty());
    }

    #[test]
    fn names() {
        assert_eq!(file_name(7), "00000000000000000007.log");
        assert_eq!(parse_name(&file_name(7)), Some(7));
        assert_eq!(parse_name("7.log"), None);
        assert_eq!(parse_name("00000000000000000007.snap"), None);
        assert_eq!(parse_name("+0000000000000000007.log"), None);
    }
}

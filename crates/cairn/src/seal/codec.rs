//! Compression of log payloads and snapshot blocks: which codecs exist, and the bytes each writes.
//!
//! A compressed unit is `len:u32 LE` (the uncompressed length) followed by the codec's output: lz4's block format
//! (`lz4_flex`) or one zstd frame. The length lets decompression refuse a unit that would grow past what it says,
//! and bounds what it allocates.

use std::io::Read;

/// How Cairn compresses what it writes to disk: snapshot blocks, and log payloads from a size up
/// ([`Builder::compress_log_above`](crate::Builder::compress_log_above)).
///
/// Every unit on disk says which codec wrote it, so a database may hold units of several codecs and opens with any
/// setting; the setting chooses only what new writes use. A unit is stored compressed only when that makes it
/// smaller. Measured on this project's benchmark data (ARCHITECTURE.md, "Compression and encryption"): lz4 costs
/// little time and compresses text about 2x; zstd compresses text further for more CPU. Random bytes compress with
/// neither, and then nothing is stored compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Store everything as it is. The default.
    #[default]
    None,
    /// lz4 (block format): fast in both directions, a modest ratio.
    Lz4,
    /// zstd at `level` (1 ..= 22; 3 is zstd's own default): a better ratio, slower to write.
    Zstd {
        /// The zstd compression level.
        level: i32,
    },
}

/// The codec ids of the `kind` fields (bits 8..12).
pub(crate) const NONE: u32 = 0;
pub(crate) const LZ4: u32 = 1;
pub(crate) const ZSTD: u32 = 2;

impl Compression {
    /// The codec id written for units this setting compresses.
    fn id(self) -> u32 {
        match self {
            Compression::None => NONE,
            Compression::Lz4 => LZ4,
            Compression::Zstd { .. } => ZSTD,
        }
    }
}

/// `plain` compressed as `compression` says, with its codec id, if that is smaller than `plain`.
pub(crate) fn compress(compression: Compression, plain: &[u8]) -> Option<(u32, Vec<u8>)> {
    if compression == Compression::None {
        return None;
    }
    let len = u32::try_from(plain.len()).ok()?;
    let mut out = Vec::with_capacity(plain.len() / 2 + 16);
    out.extend_from_slice(&len.to_le_bytes());
    match compression {
        Compression::None => return None,
        Compression::Lz4 => {
            out.resize(4 + lz4_flex::block::get_maximum_output_size(plain.len()), 0);
            let n = lz4_flex::block::compress_into(plain, &mut out[4..]).ok()?;
            out.truncate(4 + n);
        }
        Compression::Zstd { level } => {
            let compressed = zstd::bulk::compress(plain, level.clamp(1, 22)).ok()?;
            out.extend_from_slice(&compressed);
        }
    }
    (out.len() < plain.len()).then(|| (compression.id(), out))
}

/// Undoes [`compress`] for a unit of codec `codec`; the error says what is wrong.
pub(crate) fn decompress(codec: u32, stored: &[u8]) -> Result<Vec<u8>, &'static str> {
    let (len, data) = match stored.split_first_chunk::<4>() {
        Some((len, data)) => (u32::from_le_bytes(*len) as usize, data),
        None => return Err("compressed unit shorter than its length field"),
    };
    match codec {
        LZ4 => {
            // lz4 cannot grow data more than 255-fold, so a length beyond that is damage, not a large unit.
            if len > data.len().saturating_mul(255) + 16 {
                return Err("lz4 unit claims more bytes than its data can hold");
            }
            let mut out = vec![0; len];
            match lz4_flex::block::decompress_into(data, &mut out) {
                Ok(n) if n == len => Ok(out),
                _ => Err("lz4 unit does not decompress to its length"),
            }
        }
        ZSTD => {
            // Read through a limit rather than allocating the claimed length up front: zstd's ratio is unbounded.
            let mut out = Vec::with_capacity(len.min(data.len().saturating_mul(16)));
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|_| "zstd unit does not decompress")?;
            match decoder.take(len as u64 + 1).read_to_end(&mut out) {
                Ok(n) if n == len => Ok(out),
                _ => Err("zstd unit does not decompress to its length"),
            }
        }
        _ => Err("unit compressed by a codec this build does not know; use a Cairn that reads it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_codecs_round_trip_text_and_refuse_what_does_not_shrink() {
        let text: Vec<u8> = (0..2000).flat_map(|i| format!("record {i} of the benchmark, ").into_bytes()).collect();
        for c in [Compression::Lz4, Compression::Zstd { level: 3 }] {
            let (id, stored) = compress(c, &text).expect("text shrinks");
            assert!(stored.len() < text.len() / 2, "{c:?}: {} of {}", stored.len(), text.len());
            assert_eq!(decompress(id, &stored).unwrap(), text);
            let mut cut = stored.clone();
            cut.truncate(stored.len() - 3);
            assert!(decompress(id, &cut).is_err(), "{c:?}: a cut unit decompresses");
            let mut longer = stored.clone();
            longer[0..4].copy_from_slice(&(text.len() as u32 + 1).to_le_bytes());
            assert!(decompress(id, &longer).is_err(), "{c:?}: a wrong length is accepted");
        }
        let random: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        assert_eq!(compress(Compression::Lz4, &random[..16]), None);
        assert_eq!(compress(Compression::None, &text), None);
        assert!(decompress(9, &[0, 0, 0, 0]).is_err());
    }
}

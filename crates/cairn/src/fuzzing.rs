//! Entry points for the fuzzers in `fuzz/` and for replaying the inputs they found (`tests/fuzz_regressions.rs`).
//!
//! Each function feeds arbitrary bytes to one decoder of what Cairn reads from disk and checks the decoder's
//! promises with `assert!`: it must never panic otherwise, and what it accepts must be consistent. Not part of the
//! supported API.

use std::path::Path;

use crate::log::frame::{self, Probe};
use crate::log::record::{self, Op};
use crate::log::scan::{self, SegmentData};
use crate::log::segment;
use crate::snapshot::Snapshot;

/// Probes a frame at every 8-byte position: an accepted frame lies inside the input and re-encodes to its own bytes.
pub fn frame(bytes: &[u8]) {
    for pos in (0..bytes.len()).step_by(frame::ALIGN) {
        if let Probe::Frame { header, payload } = frame::probe(bytes, pos) {
            assert_eq!(&header.encode()[..], &bytes[pos..pos + frame::HEADER_LEN]);
            assert_eq!(payload.len(), header.len as usize);
            assert!(pos + frame::HEADER_LEN + payload.len() <= bytes.len());
        }
    }
}

/// Decodes a segment header: an accepted one re-encodes to its own bytes (but for the version and the checksum, when
/// it is of an older format version).
pub fn segment_header(bytes: &[u8]) {
    if let Ok(first) = segment::decode_header(bytes) {
        let again = segment::encode_header(first);
        if segment::header_version(bytes) == segment::header_version(&again) {
            assert_eq!(&again[..], &bytes[..segment::HEADER_LEN]);
        } else {
            assert!(segment::header_version(bytes) < Some(crate::format::FORMAT_VERSION));
            assert_eq!((&again[..8], &again[12..28]), (&bytes[..8], &bytes[12..28]));
        }
    }
}

/// Decodes the operations of a transaction payload: accepted operations re-encode to the bytes they came from.
pub fn record_ops(bytes: &[u8]) {
    let mut reencoded = Vec::new();
    for op in record::ops(bytes) {
        let Ok(op) = op else { break };
        match op {
            Op::Put { table, key, value, .. } => record::put_raw(&mut reencoded, table, key, value),
            Op::Writer { schema } => record::put_writer(&mut reencoded, schema),
            Op::DefineSchema { schema, description } => record::put_schema(&mut reencoded, schema, description),
            Op::Delete { table, key } => {
                record::begin_delete(&mut reencoded, table);
                crate::format::put_bytes(&mut reencoded, key);
            }
            Op::CreateTable { table, kind, name } => record::put_create(&mut reencoded, table, kind, name),
        }
    }
    // Varints may be written longer than needed, so compare decoded forms rather than bytes.
    let again: Vec<_> = record::ops(&reencoded).collect();
    let first: Vec<_> = record::ops(bytes).take_while(Result::is_ok).collect();
    assert_eq!(again, first);
}

/// Parses a snapshot: an accepted one yields records in strictly increasing (table, key) order, as many as it says.
pub fn snapshot(bytes: &[u8]) {
    if let Ok(snap) = Snapshot::parse(Path::new("fuzz.snap"), bytes.to_vec(), &crate::seal::Seal::plain()) {
        let mut last: Option<(u32, Vec<u8>)> = None;
        let mut count = 0u64;
        for (offset, table, _, key, _) in snap.records() {
            assert!((offset as usize) < bytes.len());
            if let Some(l) = &last {
                assert!((l.0, l.1.as_slice()) < (table, key));
            }
            last = Some((table, key.to_vec()));
            count += 1;
        }
        assert_eq!(count, snap.record_count);
    }
}

/// Scans a log made of the given segments after sequence number `after`: accepted frames are consecutive, lie inside
/// their segments, and a cut lies inside the data.
pub fn log(segments: &[&[u8]], after: u64) {
    let path = Path::new("fuzz.log");
    let data: Vec<SegmentData<'_>> = segments.iter().map(|b| SegmentData { path, bytes: b }).collect();
    if let Ok(scan) = scan::scan(&data, after) {
        let mut expected = None;
        for f in &scan.frames {
            assert!(f.header.seq > after);
            if let Some(e) = expected {
                assert_eq!(f.header.seq, e);
            }
            expected = Some(f.header.seq + 1);
            assert!(f.offset + frame::HEADER_LEN + f.header.len as usize <= segments[f.segment].len());
        }
        assert_eq!(scan.last_seq, scan.frames.last().map_or(after, |f| f.header.seq));
        if let Some(cut) = &scan.cut {
            assert!(cut.segment < segments.len());
            assert!(cut.offset <= segments[cut.segment].len());
            assert!(scan.frames.iter().all(|f| (f.segment, f.offset) < (cut.segment, cut.offset)));
        }
    }
}

/// The log-scan fuzz input: the first 8 bytes give the snapshot's sequence number (modulo 64), the rest is split into
/// segments at each 0xFE byte. Then [`log`].
pub fn log_input(data: &[u8]) {
    let (after, rest) = match data.split_first_chunk::<8>() {
        Some((a, rest)) => (u64::from_le_bytes(*a) % 64, rest),
        None => (0, data),
    };
    let segments: Vec<&[u8]> = rest.split(|&b| b == 0xFE).collect();
    log(&segments, after);
}

/// The writer's and the reader's types of the [`schema`] target: the reader adds a field with a default, widens an
/// integer, reorders fields and adds an enum variant.
mod versions {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) enum E1 {
        X,
        Y(i64),
        Z { s: String },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) struct V1 {
        pub(super) a: u32,
        pub(super) b: String,
        pub(super) c: Option<Vec<E1>>,
        pub(super) d: Vec<u8>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) enum E2 {
        X,
        Y(i64),
        Z { s: String },
        W,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) struct V2 {
        pub(super) c: Option<Vec<E2>>,
        pub(super) a: u64,
        #[serde(default)]
        pub(super) e: bool,
        pub(super) b: String,
        pub(super) d: Vec<u8>,
    }

    impl From<V1> for V2 {
        fn from(v: V1) -> Self {
            let e = |e: E1| match e {
                E1::X => E2::X,
                E1::Y(n) => E2::Y(n),
                E1::Z { s } => E2::Z { s },
            };
            V2 { c: v.c.map(|c| c.into_iter().map(e).collect()), a: v.a.into(), e: false, b: v.b, d: v.d }
        }
    }
}

/// Decodes a stored schema description, and a record by a writer's description (`describe`): never a panic; bytes
/// postcard accepts as the writer's type read back exactly as it, and by name as the next version.
pub fn schema(bytes: &[u8]) {
    use std::sync::OnceLock;
    static WRITER: OnceLock<crate::describe::TypeDescription> = OnceLock::new();
    let _ = crate::evolve::decode_description(bytes);
    let writer = WRITER.get_or_init(|| crate::describe::describe::<versions::V1>().expect("V1 describes"));
    let same = crate::describe::decode_as::<versions::V1>(bytes, writer);
    let next = crate::describe::decode_as::<versions::V2>(bytes, writer);
    if let Ok((v1, [])) = postcard::take_from_bytes::<versions::V1>(bytes) {
        assert_eq!(same.as_ref().ok(), Some(&v1));
        assert_eq!(next.ok(), Some(versions::V2::from(v1)));
    } else {
        assert!(same.is_err(), "postcard refuses what the description decoded");
    }
}

/// Replays one fuzz input through the decoder target named `target`. Returns false for an unknown target.
pub fn replay(target: &str, data: &[u8]) -> bool {
    match target {
        "frame" => frame(data),
        "segment_header" => segment_header(data),
        "record_ops" => record_ops(data),
        "snapshot" => snapshot(data),
        "log_scan" => log_input(data),
        "schema" => schema(data),
        _ => return false,
    }
    true
}

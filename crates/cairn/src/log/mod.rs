//! The write-ahead log: checksummed frames in numbered segment files.
//!
//! `frame`, `record`, `segment` and `scan` are pure (bytes in, values out) and tested without I/O; `writer` is the
//! thin part that touches files.

pub(crate) mod frame;
pub(crate) mod record;
pub(crate) mod scan;
pub(crate) mod segment;
pub(crate) mod writer;

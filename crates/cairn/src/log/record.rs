//! The payload of a transaction frame: a list of operations. Pure encoding and decoding.
//!
//! ```text
//! op := 0x01 table:varint key:bytes value:bytes      put
//!     | 0x02 table:varint key:bytes                  delete
//!     | 0x03 table:varint kind:u8 name:bytes         create table (kind 0 = hash, 1 = ordered)
//!     | 0x04 schema:varint                           the puts after it were encoded by this schema version
//!     | 0x05 schema:varint description:bytes         define a schema version (format 2)
//! bytes := len:varint byte*len
//! ```
//! Keys and values are encoded with postcard (serde). A transaction's operations are replayed in order. A put before
//! any `0x04` in its frame (every put of format 1) has schema version 0: "written before schemas were stored".

use serde::Serialize;

use crate::format::{get_bytes, get_varint, put_bytes, put_varint, varint_len};
use crate::schema::TableKind;

const PUT: u8 = 1;
const DELETE: u8 = 2;
const CREATE: u8 = 3;
const WRITER: u8 = 4;
const SCHEMA: u8 = 5;

/// One decoded operation, borrowing from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    /// A put; `schema` is the schema version that encoded it (the last `Writer` before it in the payload, else 0).
    Put {
        table: u32,
        schema: u32,
        key: &'a [u8],
        value: &'a [u8],
    },
    Delete {
        table: u32,
        key: &'a [u8],
    },
    CreateTable {
        table: u32,
        kind: TableKind,
        name: &'a str,
    },
    /// The puts after this one were encoded by schema version `schema`.
    Writer {
        schema: u32,
    },
    /// Defines schema version `schema` (a postcard-encoded `SchemaDescription`).
    DefineSchema {
        schema: u32,
        description: &'a [u8],
    },
}

/// Encodes `value` with postcard into `scratch`, then appends it to `out` with its length.
pub(crate) fn put_serialized<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    value: &T,
) -> Result<(), postcard::Error> {
    scratch.clear();
    let taken = std::mem::take(scratch);
    let filled = postcard::to_extend(value, taken)?;
    put_bytes(out, &filled);
    *scratch = filled;
    Ok(())
}

/// Encodes `value` with postcard and appends it to `out` with its length, as [`put_serialized`] does.
///
/// A `Vec<u8>` is written in one copy: serde hands a byte vector to the serializer one element at a time, and postcard
/// writes a sequence of bytes as its length (varint) followed by the bytes, which is exactly what a byte string looks
/// like, so the bytes on disk are the same either way (`tests::byte_vectors_encode_as_postcard_does`). The per-byte
/// path cost about 1 ns a byte, a seventh of a bulk load of 150-byte values.
pub(crate) fn put_value<T: Serialize + 'static>(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    value: &T,
) -> Result<(), postcard::Error> {
    match (value as &dyn std::any::Any).downcast_ref::<Vec<u8>>() {
        Some(bytes) => {
            let len = bytes.len() as u64;
            put_varint(out, (varint_len(len) + bytes.len()) as u64);
            put_bytes(out, bytes);
            Ok(())
        }
        None => put_serialized(out, scratch, value),
    }
}

/// Appends a put of already-encoded key and value.
pub(crate) fn put_raw(out: &mut Vec<u8>, table: u32, key: &[u8], value: &[u8]) {
    out.push(PUT);
    put_varint(out, table.into());
    put_bytes(out, key);
    put_bytes(out, value);
}

/// Appends a writer operation: the puts after it were encoded by schema version `schema`.
pub(crate) fn put_writer(out: &mut Vec<u8>, schema: u32) {
    out.push(WRITER);
    put_varint(out, schema.into());
}

/// Appends the definition of schema version `schema`.
pub(crate) fn put_schema(out: &mut Vec<u8>, schema: u32, description: &[u8]) {
    out.push(SCHEMA);
    put_varint(out, schema.into());
    put_bytes(out, description);
}

/// Starts a put: the caller appends the key and the value with [`put_serialized`].
pub(crate) fn begin_put(out: &mut Vec<u8>, table: u32) {
    out.push(PUT);
    put_varint(out, table.into());
}

/// Starts a delete: the caller appends the key with [`put_serialized`].
pub(crate) fn begin_delete(out: &mut Vec<u8>, table: u32) {
    out.push(DELETE);
    put_varint(out, table.into());
}

/// Appends a create-table operation.
pub(crate) fn put_create(out: &mut Vec<u8>, table: u32, kind: TableKind, name: &str) {
    out.push(CREATE);
    put_varint(out, table.into());
    out.push(kind.code());
    put_bytes(out, name.as_bytes());
}

/// Iterates the operations of a payload. Yields `Err(offset)` (within the payload) at the first malformed one.
pub(crate) fn ops(payload: &[u8]) -> Ops<'_> {
    Ops { buf: payload, pos: 0, schema: 0 }
}

/// Iterator returned by [`ops`].
pub(crate) struct Ops<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The schema version of the puts that follow.
    schema: u32,
}

impl<'a> Iterator for Ops<'a> {
    type Item = Result<Op<'a>, usize>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let op = self.decode();
        if op.is_none() {
            self.pos = self.buf.len();
        }
        Some(op.ok_or(start))
    }
}

impl<'a> Ops<'a> {
    fn decode(&mut self) -> Option<Op<'a>> {
        let buf = self.buf;
        let tag = *buf.get(self.pos)?;
        self.pos += 1;
        // Every operation's first field is a u32 varint: a table id or a schema version.
        let table = u32::try_from(get_varint(buf, &mut self.pos)?).ok()?;
        match tag {
            PUT => {
                let key = get_bytes(buf, &mut self.pos)?;
                let value = get_bytes(buf, &mut self.pos)?;
                Some(Op::Put { table, schema: self.schema, key, value })
            }
            WRITER => {
                self.schema = table;
                Some(Op::Writer { schema: table })
            }
            SCHEMA => Some(Op::DefineSchema { schema: table, description: get_bytes(buf, &mut self.pos)? }),
            DELETE => Some(Op::Delete { table, key: get_bytes(buf, &mut self.pos)? }),
            CREATE => {
                let kind = TableKind::from_code(*buf.get(self.pos)?)?;
                self.pos += 1;
                let name = std::str::from_utf8(get_bytes(buf, &mut self.pos)?).ok()?;
                Some(Op::CreateTable { table, kind, name })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_vectors_encode_as_postcard_does() {
        let mut scratch = Vec::new();
        for len in [0usize, 1, 127, 128, 150, 16_383, 16_384, 70_000] {
            let v: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            put_value(&mut fast, &mut scratch, &v).unwrap();
            put_serialized(&mut slow, &mut scratch, &v).unwrap();
            assert_eq!(fast, slow, "length {len}");
            let mut at = 0;
            let encoded = get_bytes(&fast, &mut at).unwrap();
            assert_eq!(postcard::from_bytes::<Vec<u8>>(encoded).unwrap(), v);
        }
        // Other types take the serde path.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        put_value(&mut a, &mut scratch, &vec![1u16, 300]).unwrap();
        put_serialized(&mut b, &mut scratch, &vec![1u16, 300]).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn ops_round_trip() {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        put_create(&mut out, 3, TableKind::Ordered, "events");
        begin_put(&mut out, 3);
        put_serialized(&mut out, &mut scratch, &7u64).unwrap();
        put_serialized(&mut out, &mut scratch, "seven").unwrap();
        begin_delete(&mut out, 3);
        put_serialized(&mut out, &mut scratch, &8u64).unwrap();
        put_writer(&mut out, 2);
        put_raw(&mut out, 1, b"k", b"v");
        put_schema(&mut out, 2, b"desc");
        let got: Vec<_> = ops(&out).collect::<Result<_, _>>().unwrap();
        assert_eq!(got[0], Op::CreateTable { table: 3, kind: TableKind::Ordered, name: "events" });
        assert_eq!(got[1], Op::Put { table: 3, schema: 0, key: &[7], value: &[5, b's', b'e', b'v', b'e', b'n'] });
        assert_eq!(got[2], Op::Delete { table: 3, key: &[8] });
        assert_eq!(got[3], Op::Writer { schema: 2 });
        assert_eq!(got[4], Op::Put { table: 1, schema: 2, key: b"k", value: b"v" });
        assert_eq!(got[5], Op::DefineSchema { schema: 2, description: b"desc" });
    }

    #[test]
    fn malformed_ops_are_reported_not_panicked() {
        let mut out = Vec::new();
        put_raw(&mut out, 1, b"key", b"value");
        for cut in 1..out.len() {
            let got: Vec<_> = ops(&out[..cut]).collect();
            assert_eq!(got, vec![Err(0)], "cut at {cut}");
        }
        assert_eq!(ops(&[9, 0]).collect::<Vec<_>>(), vec![Err(0)]);
    }
}

//! The payload of a transaction frame: a list of operations. Pure encoding and decoding.
//!
//! ```text
//! op := 0x01 table:varint key:bytes value:bytes      put
//!     | 0x02 table:varint key:bytes                  delete
//!     | 0x03 table:varint kind:u8 name:bytes         create table (kind 0 = hash, 1 = ordered)
//! bytes := len:varint byte*len
//! ```
//! Keys and values are encoded with postcard (serde). A transaction's operations are replayed in order.

use serde::Serialize;

use crate::format::{get_bytes, get_varint, put_bytes, put_varint};
use crate::schema::TableKind;

const PUT: u8 = 1;
const DELETE: u8 = 2;
const CREATE: u8 = 3;

/// One decoded operation, borrowing from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    Put { table: u32, key: &'a [u8], value: &'a [u8] },
    Delete { table: u32, key: &'a [u8] },
    CreateTable { table: u32, kind: TableKind, name: &'a str },
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

/// Appends a put of already-encoded key and value.
pub(crate) fn put_raw(out: &mut Vec<u8>, table: u32, key: &[u8], value: &[u8]) {
    out.push(PUT);
    put_varint(out, table.into());
    put_bytes(out, key);
    put_bytes(out, value);
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
    Ops { buf: payload, pos: 0 }
}

/// Iterator returned by [`ops`].
pub(crate) struct Ops<'a> {
    buf: &'a [u8],
    pos: usize,
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
        let table = u32::try_from(get_varint(buf, &mut self.pos)?).ok()?;
        match tag {
            PUT => {
                let key = get_bytes(buf, &mut self.pos)?;
                let value = get_bytes(buf, &mut self.pos)?;
                Some(Op::Put { table, key, value })
            }
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
    fn ops_round_trip() {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        put_create(&mut out, 3, TableKind::Ordered, "events");
        begin_put(&mut out, 3);
        put_serialized(&mut out, &mut scratch, &7u64).unwrap();
        put_serialized(&mut out, &mut scratch, "seven").unwrap();
        begin_delete(&mut out, 3);
        put_serialized(&mut out, &mut scratch, &8u64).unwrap();
        put_raw(&mut out, 1, b"k", b"v");
        let got: Vec<_> = ops(&out).collect::<Result<_, _>>().unwrap();
        assert_eq!(got[0], Op::CreateTable { table: 3, kind: TableKind::Ordered, name: "events" });
        assert_eq!(got[1], Op::Put { table: 3, key: &[7], value: &[5, b's', b'e', b'v', b'e', b'n'] });
        assert_eq!(got[2], Op::Delete { table: 3, key: &[8] });
        assert_eq!(got[3], Op::Put { table: 1, key: b"k", value: b"v" });
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

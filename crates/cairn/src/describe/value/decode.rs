//! Postcard bytes to a [`Value`], by the writer's description.
//!
//! Postcard's encoding: `bool`, `u8` and `i8` are one byte; wider integers are LEB128 varints, signed ones
//! zigzag-encoded first; floats are little-endian; `char`, strings and byte strings are a varint length and the
//! bytes; an option is `0` or `1` and the value; sequences and maps are a varint length and the elements (pairs);
//! tuples and structs are their elements in order; a newtype is its content; unit is nothing; an enum is its variant
//! index as a varint and the variant's content.

use std::collections::BTreeMap;

use super::{Content, Step, Value};
use crate::describe::{Container, Field, Shape, TypeDescription, VariantContent};

/// How deeply values may nest: deeper is taken for damage (and would risk the stack).
const MAX_DEPTH: usize = 256;
/// How many elements a sequence of zero-sized values (which take no bytes) may have.
const MAX_ZERO_SIZED: usize = 1 << 16;

/// Why bytes do not decode, and where (innermost step first).
#[derive(Debug)]
pub(super) struct DecodeError {
    pub(super) message: String,
    pub(super) trail: Vec<Step>,
}

impl DecodeError {
    fn new(message: impl Into<String>) -> Self {
        DecodeError { message: message.into(), trail: Vec::new() }
    }
}

trait At<T> {
    /// Adds `step` to the error's path.
    fn at(self, step: impl FnOnce() -> Step) -> Result<T, DecodeError>;
}

impl<T> At<T> for Result<T, DecodeError> {
    fn at(self, step: impl FnOnce() -> Step) -> Result<T, DecodeError> {
        self.map_err(|mut error| {
            error.trail.push(step());
            error
        })
    }
}

/// Decodes all of `bytes` as one value of `writer`'s root shape.
pub(super) fn decode<'a>(bytes: &'a [u8], writer: &'a TypeDescription) -> Result<Value<'a>, DecodeError> {
    let mut decoder = Decoder { bytes, types: &writer.types, depth: 0 };
    let value = decoder.value(&writer.root)?;
    if !decoder.bytes.is_empty() {
        return Err(DecodeError::new(format!("{} bytes left over after the value", decoder.bytes.len())));
    }
    Ok(value)
}

struct Decoder<'a> {
    /// The bytes not decoded yet.
    bytes: &'a [u8],
    types: &'a BTreeMap<String, Container>,
    depth: usize,
}

macro_rules! varint {
    ($name:ident, $ty:ty) => {
        /// A LEB128 varint of at most as many bytes as the type needs, checked the way postcard does.
        fn $name(&mut self) -> Result<$ty, DecodeError> {
            const BITS: u32 = <$ty>::BITS;
            const MAX_BYTES: u32 = BITS.div_ceil(7);
            let mut value: $ty = 0;
            for i in 0..MAX_BYTES {
                let byte = self.byte()?;
                value |= <$ty>::from(byte & 0x7f) << (7 * i);
                if byte & 0x80 == 0 {
                    let last_bits = BITS - 7 * i;
                    if i == MAX_BYTES - 1 && last_bits < 8 && u32::from(byte) >= 1 << last_bits {
                        return Err(DecodeError::new("a varint overflows its type"));
                    }
                    return Ok(value);
                }
            }
            Err(DecodeError::new("a varint is too long for its type"))
        }
    };
}

impl<'a> Decoder<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.bytes.len() {
            return Err(DecodeError::new(format!("needs {len} bytes, {} are left", self.bytes.len())));
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    varint!(varint_u16, u16);
    varint!(varint_u32, u32);
    varint!(varint_u64, u64);
    varint!(varint_u128, u128);

    /// A length prefix, as postcard writes `usize` (a `u64` varint on 64-bit targets).
    fn len(&mut self) -> Result<usize, DecodeError> {
        let len = self.varint_u64()?;
        usize::try_from(len).map_err(|_| DecodeError::new(format!("a length of {len} does not fit in memory")))
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.len()?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::new("a string is not UTF-8"))
    }

    /// How many elements of `shape` a length prefix may announce: as many as the bytes left can hold.
    fn check_len(&self, len: usize, shapes: &[&Shape]) -> Result<(), DecodeError> {
        let min_size: usize = shapes.iter().map(|shape| self.min_size(shape, 0)).sum();
        let max = self.bytes.len().checked_div(min_size).unwrap_or(MAX_ZERO_SIZED);
        if len > max {
            return Err(DecodeError::new(format!(
                "a length of {len} is more than the {} bytes left can hold",
                self.bytes.len()
            )));
        }
        Ok(())
    }

    /// A lower bound of the bytes a value of `shape` takes (0 past a small depth: only a bound is needed).
    fn min_size(&self, shape: &Shape, depth: usize) -> usize {
        if depth > 8 {
            return 0;
        }
        let all = |shapes: &[Shape]| shapes.iter().map(|shape| self.min_size(shape, depth + 1)).sum();
        let fields = |fields: &[Field]| fields.iter().map(|field| self.min_size(&field.shape, depth + 1)).sum();
        match shape {
            Shape::Unknown | Shape::Unit => 0,
            Shape::Tuple(shapes) => all(shapes),
            Shape::Named(name) => match self.types.get(name) {
                None | Some(Container::Unit) => 0,
                Some(Container::Newtype(shape)) => self.min_size(shape, depth + 1),
                Some(Container::Tuple(shapes)) => all(shapes),
                Some(Container::Struct(list)) => fields(list),
                Some(Container::Enum(_)) => 1,
            },
            _ => 1,
        }
    }

    fn value(&mut self, shape: &'a Shape) -> Result<Value<'a>, DecodeError> {
        Ok(match shape {
            Shape::Unknown => {
                return Err(DecodeError::new(
                    "the writer's description has no shape here (no value like this one was seen while tracing its \
                     type), so the record cannot be decoded by it",
                ))
            }
            Shape::Unit => Value::Unit,
            Shape::Bool => match self.byte()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                byte => return Err(DecodeError::new(format!("a bool is {byte}, not 0 or 1"))),
            },
            Shape::U8 => Value::U64(self.byte()?.into()),
            Shape::U16 => Value::U64(self.varint_u16()?.into()),
            Shape::U32 => Value::U64(self.varint_u32()?.into()),
            Shape::U64 => Value::U64(self.varint_u64()?),
            Shape::U128 => Value::U128(self.varint_u128()?),
            Shape::I8 => Value::I64(i8::from_le_bytes([self.byte()?]).into()),
            Shape::I16 => Value::I64(unzigzag(self.varint_u16()?.into()) as i64),
            Shape::I32 => Value::I64(unzigzag(self.varint_u32()?.into()) as i64),
            Shape::I64 => Value::I64(unzigzag(self.varint_u64()?.into()) as i64),
            Shape::I128 => Value::I128(unzigzag(self.varint_u128()?)),
            Shape::F32 => Value::F32(f32::from_le_bytes(self.array()?)),
            Shape::F64 => Value::F64(f64::from_le_bytes(self.array()?)),
            Shape::Char => {
                let len = self.len()?;
                if len > 4 {
                    return Err(DecodeError::new(format!("a char of {len} bytes")));
                }
                let text = std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::new("a char is not UTF-8"))?;
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Value::Char(c),
                    _ => return Err(DecodeError::new(format!("a char holds {:?}", text))),
                }
            }
            Shape::Str => Value::Str(self.str()?),
            Shape::Bytes => {
                let len = self.len()?;
                Value::Bytes(self.take(len)?)
            }
            Shape::Option(inner) => match self.byte()? {
                0 => Value::Option(None),
                1 => Value::Option(Some(Box::new(self.nested(inner)?))),
                byte => return Err(DecodeError::new(format!("an option's tag is {byte}, not 0 or 1"))),
            },
            Shape::Seq(element) if **element == Shape::U8 => {
                let len = self.len()?;
                Value::ByteSeq(self.take(len)?)
            }
            Shape::Tuple(shapes) if shapes.len() > 1 && shapes.iter().all(|s| *s == Shape::U8) => {
                Value::ByteTuple(self.take(shapes.len())?)
            }
            Shape::Seq(element) => {
                let len = self.len()?;
                self.check_len(len, &[element])?;
                let mut elements = Vec::with_capacity(len);
                for index in 0..len {
                    elements.push(self.nested(element).at(|| Step::Index(index))?);
                }
                Value::Seq(elements)
            }
            Shape::Map(key, value) => {
                let len = self.len()?;
                self.check_len(len, &[key, value])?;
                let mut entries = Vec::with_capacity(len);
                for index in 0..len {
                    let key = self.nested(key).at(|| Step::Index(index))?;
                    let value = self.nested(value).at(|| Step::Key(key.label(index)))?;
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            Shape::Tuple(shapes) => Value::Tuple(self.elements(shapes)?),
            Shape::Named(name) => self.named(name)?,
        })
    }

    /// A value one level deeper.
    fn nested(&mut self, shape: &'a Shape) -> Result<Value<'a>, DecodeError> {
        if self.depth == MAX_DEPTH {
            return Err(DecodeError::new(format!("values nest more than {MAX_DEPTH} deep")));
        }
        self.depth += 1;
        let value = self.value(shape);
        self.depth -= 1;
        value
    }

    fn elements(&mut self, shapes: &'a [Shape]) -> Result<Vec<Value<'a>>, DecodeError> {
        let decoded = shapes.iter().enumerate();
        decoded.map(|(position, shape)| self.nested(shape).at(|| Step::Position(position))).collect()
    }

    fn fields(&mut self, fields: &'a [Field]) -> Result<Vec<(&'a str, Value<'a>)>, DecodeError> {
        let decoded = fields.iter().map(|field| {
            let value = self.nested(&field.shape).at(|| Step::Field(field.name.clone()))?;
            Ok((field.name.as_str(), value))
        });
        decoded.collect()
    }

    fn named(&mut self, name: &'a str) -> Result<Value<'a>, DecodeError> {
        let container = self.types.get(name).ok_or_else(|| {
            DecodeError::new(format!("the writer's description names `{name}` but does not describe it"))
        })?;
        Ok(match container {
            Container::Unit => Value::UnitStruct,
            Container::Newtype(shape) => Value::Newtype(Box::new(self.nested(shape).at(|| Step::Position(0))?)),
            Container::Tuple(shapes) => Value::TupleStruct(self.elements(shapes)?),
            Container::Struct(fields) => Value::Struct(self.fields(fields)?),
            Container::Enum(variants) => {
                let index = self.varint_u32()?;
                let variant = variants.iter().find(|variant| variant.index == index).ok_or_else(|| {
                    DecodeError::new(format!("enum `{name}` has no variant {index} in the writer's description"))
                })?;
                let step = || Step::Variant(variant.name.clone());
                let content = match &variant.content {
                    VariantContent::Unit => Content::Unit,
                    VariantContent::Newtype(shape) => {
                        Content::Newtype(Box::new(self.nested(shape).at(|| Step::Position(0)).at(step)?))
                    }
                    VariantContent::Tuple(shapes) => Content::Tuple(self.elements(shapes).at(step)?),
                    VariantContent::Struct(fields) => Content::Struct(self.fields(fields).at(step)?),
                };
                Value::Enum { variant: &variant.name, content }
            }
        })
    }
}

/// Postcard's zigzag decoding: 0, 1, 2, 3 stand for 0, -1, 1, -2.
fn unzigzag(n: u128) -> i128 {
    ((n >> 1) as i128) ^ -((n & 1) as i128)
}

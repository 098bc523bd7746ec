//! Reading postcard bytes written under one description as another type, by name.
//!
//! Postcard bytes carry no names, so they are first decoded by the writer's description into a [`Value`] that has
//! them (`decode`), then the reader's type is deserialized from that value (`de`) the way a self-describing format
//! would be read: a struct is a map from field names, an enum variant is identified by its name. serde's own derived
//! code then does the resolution: it matches fields and aliases, skips unknown fields, fills `#[serde(default)]`s,
//! and its primitive visitors widen integers with range checks.
//!
//! Damaged bytes are an error, never a panic, a hang, or a large allocation: nesting is bounded, and a length
//! prefix is checked against the bytes left before anything is allocated for it.

mod de;
mod decode;
#[cfg(test)]
mod evolution_tests;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::de::DeserializeOwned;

use super::{Dynamic, Shape, TypeDescription};

/// Why a record written under another description could not be read as the reader's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolveError {
    /// The bytes do not follow the writer's description (damage, or a wrong description).
    Malformed(String),
    /// The record holds an enum variant the reader's type does not have.
    UnknownVariant {
        /// Where in the value, e.g. `Account.status`.
        path: String,
        /// The enum's name.
        enum_name: String,
        /// The variant's name.
        variant: String,
    },
    /// The reader's type cannot be built from the record: a field it needs is missing and has no default, or a
    /// value does not fit (a type changed).
    Mismatch {
        /// Where in the value.
        path: String,
        /// What serde said.
        message: String,
    },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Malformed(message) => write!(f, "malformed record: {message}"),
            ResolveError::UnknownVariant { path, enum_name, variant } => {
                write!(f, "at `{path}`: enum `{enum_name}` has no variant `{variant}`")
            }
            ResolveError::Mismatch { path, message } => write!(f, "at `{path}`: {message}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// Decodes `bytes`, written with postcard under `writer`, as a `T`: struct fields and enum variants are matched by
/// name, fields `T` lacks are skipped, fields the record lacks take `T`'s serde default.
pub(crate) fn decode_as<T: DeserializeOwned>(bytes: &[u8], writer: &TypeDescription) -> Result<T, ResolveError> {
    let root = match &writer.root {
        Shape::Named(name) => name.as_str(),
        _ => "",
    };
    let value = decode::decode(bytes, writer)
        .map_err(|error| ResolveError::Malformed(format!("at `{}`: {}", render(root, &error.trail), error.message)))?;
    T::deserialize(de::ValueDeserializer::new(value)).map_err(|error| error.into_resolve(root))
}

/// Decodes `bytes`, written with postcard under `writer`, into a [`Dynamic`] value: no Rust type needed.
pub fn decode_dynamic(bytes: &[u8], writer: &TypeDescription) -> Result<Dynamic, String> {
    let root = match &writer.root {
        Shape::Named(name) => name.as_str(),
        _ => "",
    };
    let value = decode::decode(bytes, writer)
        .map_err(|error| format!("malformed record at `{}`: {}", render(root, &error.trail), error.message))?;
    Ok(dynamic(value))
}

fn dynamic(value: Value<'_>) -> Dynamic {
    let all = |values: Vec<Value<'_>>| values.into_iter().map(dynamic).collect();
    let fields = |fields: Vec<(&str, Value<'_>)>| fields.into_iter().map(|(n, v)| (n.to_owned(), dynamic(v))).collect();
    match value {
        Value::Unit | Value::UnitStruct => Dynamic::Unit,
        Value::Bool(b) => Dynamic::Bool(b),
        Value::U64(n) => Dynamic::U64(n),
        Value::I64(n) => Dynamic::I64(n),
        Value::U128(n) => Dynamic::U128(n),
        Value::I128(n) => Dynamic::I128(n),
        Value::F32(x) => Dynamic::F64(x.into()),
        Value::F64(x) => Dynamic::F64(x),
        Value::Char(c) => Dynamic::Char(c),
        Value::Str(text) => Dynamic::Str(text.to_owned()),
        Value::Bytes(bytes) | Value::ByteSeq(bytes) | Value::ByteTuple(bytes) => Dynamic::Bytes(bytes.to_vec()),
        Value::Option(inner) => Dynamic::Option(inner.map(|v| Box::new(dynamic(*v)))),
        Value::Seq(items) | Value::Tuple(items) | Value::TupleStruct(items) => Dynamic::Seq(all(items)),
        Value::Map(entries) => Dynamic::Map(entries.into_iter().map(|(k, v)| (dynamic(k), dynamic(v))).collect()),
        Value::Newtype(inner) => dynamic(*inner),
        Value::Struct(fs) => Dynamic::Struct(fields(fs)),
        Value::Enum { variant, content } => Dynamic::Variant(
            variant.to_owned(),
            Box::new(match content {
                Content::Unit => Dynamic::Unit,
                Content::Newtype(inner) => dynamic(*inner),
                Content::Tuple(items) => Dynamic::Seq(all(items)),
                Content::Struct(fs) => Dynamic::Struct(fields(fs)),
            }),
        ),
    }
}

/// A record decoded by its writer's description: postcard's data with the names put back. Names borrow from the
/// description, strings and bytes from the record.
#[derive(Debug)]
enum Value<'a> {
    Unit,
    Bool(bool),
    /// Every unsigned integer up to `u64`.
    U64(u64),
    /// Every signed integer up to `i64`.
    I64(i64),
    U128(u128),
    I128(i128),
    F32(f32),
    F64(f64),
    Char(char),
    Str(&'a str),
    Bytes(&'a [u8]),
    Option(Option<Box<Value<'a>>>),
    Seq(Vec<Value<'a>>),
    /// A sequence of `u8` (a `Vec<u8>`, the commonest payload): its bytes, not one value per byte.
    ByteSeq(&'a [u8]),
    /// A tuple or array of `u8` (`[u8; 32]`): its bytes.
    ByteTuple(&'a [u8]),
    Map(Vec<(Value<'a>, Value<'a>)>),
    Tuple(Vec<Value<'a>>),
    UnitStruct,
    Newtype(Box<Value<'a>>),
    TupleStruct(Vec<Value<'a>>),
    Struct(Vec<(&'a str, Value<'a>)>),
    Enum {
        variant: &'a str,
        content: Content<'a>,
    },
}

impl Value<'_> {
    /// How a path prints this value as a map key: strings, integers, chars and bools as themselves, anything else
    /// by the entry's position.
    fn label(&self, index: usize) -> String {
        match self {
            Value::Str(text) => format!("{text:?}"),
            Value::U64(n) => n.to_string(),
            Value::I64(n) => n.to_string(),
            Value::U128(n) => n.to_string(),
            Value::I128(n) => n.to_string(),
            Value::Char(c) => format!("{c:?}"),
            Value::Bool(b) => b.to_string(),
            _ => format!("#{index}"),
        }
    }
}

/// What an enum variant carries.
#[derive(Debug)]
enum Content<'a> {
    Unit,
    Newtype(Box<Value<'a>>),
    Tuple(Vec<Value<'a>>),
    Struct(Vec<(&'a str, Value<'a>)>),
}

/// One step of the path to a value, e.g. `.city`, `::Closed`, `[3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Variant(String),
    Index(usize),
    /// A position in a tuple, tuple struct or tuple variant.
    Position(usize),
    /// The entry of a map under this key, printed.
    Key(String),
}

/// Prints a path: the root container's name, then the steps (collected innermost first, as errors unwind).
fn render(root: &str, trail: &[Step]) -> String {
    let mut path = root.to_owned();
    for step in trail.iter().rev() {
        match step {
            Step::Field(name) => path.push_str(&format!(".{name}")),
            Step::Variant(name) => path.push_str(&format!("::{name}")),
            Step::Index(index) => path.push_str(&format!("[{index}]")),
            Step::Position(position) => path.push_str(&format!(".{position}")),
            Step::Key(key) => path.push_str(&format!("[{key}]")),
        }
    }
    if path.is_empty() {
        "(root)".to_owned()
    } else {
        path
    }
}

//! A record read without its Rust type: the data of a postcard record with the names its description gives it.
//! What tools (the `cairn` command, a viewer) show and export.

use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A value decoded by its description alone. Serializes as a self-describing format expects: structs as maps from
/// field names, enum variants as serde's externally tagged form (`"Unit"`, `{"Variant": content}`), options as null
/// or the value, byte strings and byte sequences as arrays of numbers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Dynamic {
    /// `()`, a unit struct.
    Unit,
    /// A `bool`.
    Bool(bool),
    /// Any unsigned integer up to `u64`.
    U64(u64),
    /// Any signed integer up to `i64`.
    I64(i64),
    /// A `u128`.
    U128(u128),
    /// An `i128`.
    I128(i128),
    /// An `f32` or `f64`.
    F64(f64),
    /// A `char`.
    Char(char),
    /// A string.
    Str(String),
    /// A byte string or a sequence of bytes.
    Bytes(Vec<u8>),
    /// An option.
    Option(Option<Box<Dynamic>>),
    /// A sequence, a tuple, a tuple struct or an array.
    Seq(Vec<Dynamic>),
    /// A map, its entries in stored order.
    Map(Vec<(Dynamic, Dynamic)>),
    /// A struct (or a struct variant's content): fields by name, in order.
    Struct(Vec<(String, Dynamic)>),
    /// An enum variant and what it carries (`Unit` for a unit variant).
    Variant(String, Box<Dynamic>),
}

impl Serialize for Dynamic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dynamic::Unit => s.serialize_unit(),
            Dynamic::Bool(b) => s.serialize_bool(*b),
            Dynamic::U64(n) => s.serialize_u64(*n),
            Dynamic::I64(n) => s.serialize_i64(*n),
            Dynamic::U128(n) => s.serialize_u128(*n),
            Dynamic::I128(n) => s.serialize_i128(*n),
            Dynamic::F64(x) => s.serialize_f64(*x),
            Dynamic::Char(c) => s.serialize_char(*c),
            Dynamic::Str(text) => s.serialize_str(text),
            Dynamic::Bytes(bytes) => {
                let mut seq = s.serialize_seq(Some(bytes.len()))?;
                for b in bytes {
                    seq.serialize_element(b)?;
                }
                seq.end()
            }
            Dynamic::Option(None) => s.serialize_none(),
            Dynamic::Option(Some(inner)) => s.serialize_some(inner),
            Dynamic::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Dynamic::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Dynamic::Struct(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (name, v) in fields {
                    map.serialize_entry(name, v)?;
                }
                map.end()
            }
            Dynamic::Variant(name, content) => match **content {
                Dynamic::Unit => s.serialize_str(name),
                ref content => {
                    let mut map = s.serialize_map(Some(1))?;
                    map.serialize_entry(name, content)?;
                    map.end()
                }
            },
        }
    }
}

impl fmt::Display for Dynamic {
    /// A Rust-like rendering: `{ name: "Ada", plan: Team { seats: 5 } }`, `Some(3)`, `[1, 2]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, items: &[Dynamic]) -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        fn fields(f: &mut fmt::Formatter<'_>, fields: &[(String, Dynamic)]) -> fmt::Result {
            f.write_str("{ ")?;
            for (i, (name, v)) in fields.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{name}: {v}")?;
            }
            f.write_str(" }")
        }
        match self {
            Dynamic::Unit => f.write_str("()"),
            Dynamic::Bool(b) => write!(f, "{b}"),
            Dynamic::U64(n) => write!(f, "{n}"),
            Dynamic::I64(n) => write!(f, "{n}"),
            Dynamic::U128(n) => write!(f, "{n}"),
            Dynamic::I128(n) => write!(f, "{n}"),
            Dynamic::F64(x) => write!(f, "{x:?}"),
            Dynamic::Char(c) => write!(f, "{c:?}"),
            Dynamic::Str(text) => write!(f, "{text:?}"),
            Dynamic::Bytes(bytes) => write!(f, "{bytes:?}"),
            Dynamic::Option(None) => f.write_str("None"),
            Dynamic::Option(Some(v)) => write!(f, "Some({v})"),
            Dynamic::Seq(items) => {
                f.write_str("[")?;
                list(f, items)?;
                f.write_str("]")
            }
            Dynamic::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    write!(f, "{}{k}: {v}", if i > 0 { ", " } else { "" })?;
                }
                f.write_str("}")
            }
            Dynamic::Struct(fs) => fields(f, fs),
            Dynamic::Variant(name, content) => match &**content {
                Dynamic::Unit => f.write_str(name),
                Dynamic::Struct(fs) => {
                    write!(f, "{name} ")?;
                    fields(f, fs)
                }
                Dynamic::Seq(items) => {
                    write!(f, "{name}(")?;
                    list(f, items)?;
                    f.write_str(")")
                }
                other => write!(f, "{name}({other})"),
            },
        }
    }
}

//! The description types. They are stored in the database (postcard-encoded, see docs/format.md), so their serde
//! layout is part of the on-disk format: add variants only at the end, never reorder or remove.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The shape of a value as postcard encodes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Shape {
    /// Never observed while tracing (the element of a sequence, or the content of an option, that no sample had).
    /// Compatible with every shape; a record that holds one cannot be decoded by this description.
    Unknown,
    /// `()`, a unit struct.
    Unit,
    /// `bool`.
    Bool,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `i128`.
    I128,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `u128`.
    U128,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`.
    Char,
    /// A string.
    Str,
    /// A byte string (`serialize_bytes`).
    Bytes,
    /// `Option<T>`.
    Option(Box<Shape>),
    /// A sequence of any length (`Vec<T>`, sets).
    Seq(Box<Shape>),
    /// A map (`HashMap<K, V>`, `BTreeMap<K, V>`).
    Map(Box<Shape>, Box<Shape>),
    /// A tuple or a fixed-size array: each element in order.
    Tuple(Vec<Shape>),
    /// A struct or an enum, by its serde name, described in [`TypeDescription::types`].
    Named(String),
}

/// A named struct or enum.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Container {
    /// `struct S;`
    Unit,
    /// `struct S(T);`
    Newtype(Shape),
    /// `struct S(A, B);`
    Tuple(Vec<Shape>),
    /// `struct S { a: A, b: B }`, fields in declaration (and encoding) order.
    Struct(Vec<Field>),
    /// `enum E { .. }`, the variants seen while tracing, by index.
    Enum(Vec<Variant>),
}

/// A named field of a struct or a struct variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    /// The field's serde name.
    pub name: String,
    /// Its shape.
    pub shape: Shape,
}

/// One variant of an enum.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Variant {
    /// The variant's index: what postcard writes for it.
    pub index: u32,
    /// Its serde name.
    pub name: String,
    /// What it carries.
    pub content: VariantContent,
}

/// What an enum variant carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum VariantContent {
    /// `V`
    Unit,
    /// `V(T)`
    Newtype(Shape),
    /// `V(A, B)`
    Tuple(Vec<Shape>),
    /// `V { a: A }`
    Struct(Vec<Field>),
}

/// The description of one serde type: its shape, and every struct and enum it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypeDescription {
    /// The type itself.
    pub root: Shape,
    /// The structs and enums reachable from `root`, by serde name.
    pub types: BTreeMap<String, Container>,
}

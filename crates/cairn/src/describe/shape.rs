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

impl fmt::Display for Shape {
    /// Rust-like: `u64`, `String`, `Vec<u8>`, `Option<T>`, `Map<K, V>`, `(A, B)`, a container by its name, `?` for
    /// [`Shape::Unknown`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Unknown => f.write_str("?"),
            Shape::Unit => f.write_str("()"),
            Shape::Bool => f.write_str("bool"),
            Shape::I8 => f.write_str("i8"),
            Shape::I16 => f.write_str("i16"),
            Shape::I32 => f.write_str("i32"),
            Shape::I64 => f.write_str("i64"),
            Shape::I128 => f.write_str("i128"),
            Shape::U8 => f.write_str("u8"),
            Shape::U16 => f.write_str("u16"),
            Shape::U32 => f.write_str("u32"),
            Shape::U64 => f.write_str("u64"),
            Shape::U128 => f.write_str("u128"),
            Shape::F32 => f.write_str("f32"),
            Shape::F64 => f.write_str("f64"),
            Shape::Char => f.write_str("char"),
            Shape::Str => f.write_str("String"),
            Shape::Bytes => f.write_str("Bytes"),
            Shape::Option(inner) => write!(f, "Option<{inner}>"),
            Shape::Seq(element) => write!(f, "Vec<{element}>"),
            Shape::Map(key, value) => write!(f, "Map<{key}, {value}>"),
            Shape::Tuple(elements) if elements.len() == 1 => write!(f, "({},)", elements[0]),
            Shape::Tuple(elements) => write!(f, "({})", List(elements)),
            Shape::Named(name) => f.write_str(name),
        }
    }
}

impl Container {
    /// `struct` or `enum`: the keyword that declares this kind of container.
    pub fn keyword(&self) -> &'static str {
        match self {
            Container::Enum(_) => "enum",
            Container::Unit | Container::Newtype(_) | Container::Tuple(_) | Container::Struct(_) => "struct",
        }
    }

    /// The container's declaration under `name`, as Rust would write it: `struct Account { id: u64 }`,
    /// `enum Status { Open, Closed(String) }`.
    pub fn declaration<'a>(&'a self, name: &'a str) -> impl fmt::Display + 'a {
        Declaration { name, container: self }
    }
}

impl fmt::Display for VariantContent {
    /// What follows the variant's name: nothing, `(A, B)` or ` { a: A }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VariantContent::Unit => Ok(()),
            VariantContent::Newtype(shape) => write!(f, "({shape})"),
            VariantContent::Tuple(shapes) => write!(f, "({})", List(shapes)),
            VariantContent::Struct(fields) => write!(f, " {{ {} }}", List(fields)),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.shape)
    }
}

impl fmt::Display for TypeDescription {
    /// The root shape on the first line, then one declaration per line for each named container.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root)?;
        for (name, container) in &self.types {
            write!(f, "\n{}", container.declaration(name))?;
        }
        Ok(())
    }
}

struct Declaration<'a> {
    name: &'a str,
    container: &'a Container,
}

impl fmt::Display for Declaration<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name;
        match self.container {
            Container::Unit => write!(f, "struct {name}"),
            Container::Newtype(shape) => write!(f, "struct {name}({shape})"),
            Container::Tuple(shapes) => write!(f, "struct {name}({})", List(shapes)),
            Container::Struct(fields) if fields.is_empty() => write!(f, "struct {name} {{}}"),
            Container::Struct(fields) => write!(f, "struct {name} {{ {} }}", List(fields)),
            Container::Enum(variants) => {
                write!(f, "enum {name} {{")?;
                for (i, variant) in variants.iter().enumerate() {
                    let separator = if i == 0 { " " } else { ", " };
                    write!(f, "{separator}{}{}", variant.name, variant.content)?;
                }
                f.write_str(if variants.is_empty() { "}" } else { " }" })
            }
        }
    }
}

/// Items separated by `, `.
struct List<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for List<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

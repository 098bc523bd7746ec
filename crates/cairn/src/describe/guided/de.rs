//! A [`Dynamic`] value read from a self-describing format, as the type a description describes.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

use super::{intern, intern_list};
use crate::describe::{Container, Dynamic, Field, Shape, TypeDescription, VariantContent};

/// How deeply input may nest before it is refused (deeper would risk the stack).
const MAX_DEPTH: usize = 128;

/// Reads one value of `description`'s type from `deserializer` (JSON, RON, any self-describing format), in the
/// form [`Described`](super::Described) and the JSON dump write: structs as maps by field name (fields that are
/// options may be left out), enum variants externally tagged, byte strings as sequences of numbers. Errors name the
/// path in the value (`Account.plan`) and what was expected there.
pub fn deserialize_dynamic<'de, D: Deserializer<'de>>(
    deserializer: D,
    description: &TypeDescription,
) -> Result<Dynamic, D::Error> {
    let root = match &description.root {
        Shape::Named(name) => name.clone(),
        _ => String::new(),
    };
    Seed { shape: &description.root, types: &description.types, path: root, depth: 0 }.deserialize(deserializer)
}

/// One value to read: its shape and where it is.
#[derive(Clone)]
struct Seed<'a> {
    shape: &'a Shape,
    types: &'a BTreeMap<String, Container>,
    path: String,
    depth: usize,
}

impl<'a> Seed<'a> {
    fn child(&self, shape: &'a Shape, step: impl fmt::Display) -> Self {
        Seed { shape, types: self.types, path: format!("{}{step}", self.path), depth: self.depth + 1 }
    }

    fn place(&self) -> String {
        if self.path.is_empty() {
            "the value".into()
        } else {
            format!("`{}`", self.path)
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Dynamic;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom(format!("{} nests more than {MAX_DEPTH} levels deep", self.place())));
        }
        let shape = self.shape;
        match shape {
            Shape::Unknown => Err(de::Error::custom(format!(
                "the stored description has no shape at {} (no value like this was seen when the program described \
                 its type), so nothing can be written there",
                self.place()
            ))),
            Shape::Unit => d.deserialize_unit(self),
            Shape::Bool => d.deserialize_bool(self),
            Shape::U8 | Shape::U16 | Shape::U32 | Shape::U64 => d.deserialize_u64(self),
            Shape::U128 => d.deserialize_u128(self),
            Shape::I8 | Shape::I16 | Shape::I32 | Shape::I64 => d.deserialize_i64(self),
            Shape::I128 => d.deserialize_i128(self),
            Shape::F32 | Shape::F64 => d.deserialize_f64(self),
            Shape::Char => d.deserialize_char(self),
            Shape::Str => d.deserialize_string(self),
            Shape::Bytes | Shape::Seq(_) => d.deserialize_seq(self),
            Shape::Option(_) => d.deserialize_option(self),
            Shape::Map(..) => d.deserialize_map(self),
            Shape::Tuple(shapes) => d.deserialize_tuple(shapes.len(), self),
            Shape::Named(name) => {
                let container = self.types.get(name).ok_or_else(|| {
                    de::Error::custom(format!("the description names `{name}` but does not describe it"))
                })?;
                let static_name = intern(name);
                match container {
                    Container::Unit => d.deserialize_unit_struct(static_name, self),
                    Container::Newtype(_) => d.deserialize_newtype_struct(static_name, self),
                    Container::Tuple(shapes) => d.deserialize_tuple_struct(static_name, shapes.len(), self),
                    Container::Struct(fields) => {
                        d.deserialize_struct(static_name, intern_list(fields.iter().map(|f| f.name.as_str())), self)
                    }
                    Container::Enum(variants) => {
                        d.deserialize_enum(static_name, intern_list(variants.iter().map(|v| v.name.as_str())), self)
                    }
                }
            }
        }
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Dynamic;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.shape {
            Shape::Named(name) => match self.types.get(name) {
                Some(c) => format!("{} {name}", c.keyword()),
                None => name.clone(),
            },
            shape => shape.to_string(),
        };
        write!(f, "{what} at {}", self.place())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Dynamic, E> {
        match self.shape {
            Shape::Unit | Shape::Named(_) => Ok(Dynamic::Unit),
            Shape::Option(_) => Ok(Dynamic::Option(None)),
            _ => Err(E::invalid_type(de::Unexpected::Unit, &self)),
        }
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Dynamic, E> {
        match self.shape {
            Shape::Bool => Ok(Dynamic::Bool(b)),
            _ => Err(E::invalid_type(de::Unexpected::Bool(b), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dynamic, E> {
        self.visit_i128(n.into())
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dynamic, E> {
        self.visit_i128(n.into())
    }

    fn visit_u128<E: de::Error>(self, n: u128) -> Result<Dynamic, E> {
        match (self.shape, i128::try_from(n)) {
            (Shape::U128, _) => Ok(Dynamic::U128(n)),
            (_, Ok(n)) => self.visit_i128(n),
            _ => Err(E::custom(format!("{n} does not fit in {} at {}", self.shape, self.place()))),
        }
    }

    fn visit_i128<E: de::Error>(self, n: i128) -> Result<Dynamic, E> {
        let (min, max): (i128, i128) = match self.shape {
            Shape::U8 => (0, u8::MAX.into()),
            Shape::U16 => (0, u16::MAX.into()),
            Shape::U32 => (0, u32::MAX.into()),
            Shape::U64 => (0, u64::MAX.into()),
            Shape::U128 => (0, i128::MAX),
            Shape::I8 => (i8::MIN.into(), i8::MAX.into()),
            Shape::I16 => (i16::MIN.into(), i16::MAX.into()),
            Shape::I32 => (i32::MIN.into(), i32::MAX.into()),
            Shape::I64 => (i64::MIN.into(), i64::MAX.into()),
            Shape::I128 => (i128::MIN, i128::MAX),
            Shape::F32 | Shape::F64 => return Ok(Dynamic::F64(n as f64)),
            _ => return Err(E::invalid_type(de::Unexpected::Other("an integer"), &self)),
        };
        if n < min || n > max {
            return Err(E::custom(format!("{n} does not fit in {} at {}", self.shape, self.place())));
        }
        Ok(match self.shape {
            Shape::U128 => Dynamic::U128(n as u128),
            Shape::I128 => Dynamic::I128(n),
            Shape::U8 | Shape::U16 | Shape::U32 | Shape::U64 => Dynamic::U64(n as u64),
            _ => Dynamic::I64(n as i64),
        })
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Dynamic, E> {
        match self.shape {
            Shape::F32 | Shape::F64 => Ok(Dynamic::F64(x)),
            _ => Err(E::invalid_type(de::Unexpected::Float(x), &self)),
        }
    }

    fn visit_char<E: de::Error>(self, c: char) -> Result<Dynamic, E> {
        match self.shape {
            Shape::Char => Ok(Dynamic::Char(c)),
            Shape::Str => Ok(Dynamic::Str(c.to_string())),
            _ => Err(E::invalid_type(de::Unexpected::Char(c), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Dynamic, E> {
        let mut chars = text.chars();
        match (self.shape, chars.next(), chars.next()) {
            (Shape::Str, ..) => Ok(Dynamic::Str(text.to_owned())),
            (Shape::Char, Some(c), None) => Ok(Dynamic::Char(c)),
            _ => Err(E::invalid_type(de::Unexpected::Str(text), &self)),
        }
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Dynamic, E> {
        match self.shape {
            Shape::Bytes => Ok(Dynamic::Bytes(bytes.to_vec())),
            Shape::Seq(element) if **element == Shape::U8 => Ok(Dynamic::Bytes(bytes.to_vec())),
            _ => Err(E::invalid_type(de::Unexpected::Bytes(bytes), &self)),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Dynamic, E> {
        match self.shape {
            Shape::Option(_) => Ok(Dynamic::Option(None)),
            _ => Err(E::invalid_type(de::Unexpected::Option, &self)),
        }
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
        match self.shape {
            Shape::Option(inner) => Ok(Dynamic::Option(Some(Box::new(self.child(inner, "").deserialize(d)?)))),
            _ => Err(de::Error::invalid_type(de::Unexpected::Option, &self)),
        }
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
        match self.shape {
            Shape::Named(name) => match self.types.get(name) {
                Some(Container::Newtype(inner)) => self.child(inner, ".0").deserialize(d),
                _ => Err(de::Error::invalid_type(de::Unexpected::NewtypeStruct, &self)),
            },
            _ => Err(de::Error::invalid_type(de::Unexpected::NewtypeStruct, &self)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dynamic, A::Error> {
        let fixed: Option<&[Shape]> = match self.shape {
            Shape::Tuple(shapes) => Some(shapes),
            Shape::Named(name) => match self.types.get(name) {
                Some(Container::Tuple(shapes)) => Some(shapes),
                Some(Container::Struct(fields)) => return self.struct_from_seq(fields, seq),
                _ => return Err(de::Error::invalid_type(de::Unexpected::Seq, &self)),
            },
            _ => None,
        };
        if let Some(shapes) = fixed {
            let items = self.elements(shapes, &mut seq)?;
            // As records decode: a tuple of bytes (`[u8; 32]`) is bytes.
            if matches!(self.shape, Shape::Tuple(_)) && shapes.len() > 1 && shapes.iter().all(|s| *s == Shape::U8) {
                return Ok(Dynamic::Bytes(items.iter().map(byte).collect()));
            }
            return Ok(Dynamic::Seq(items));
        }
        let element = match self.shape {
            Shape::Seq(element) => &**element,
            Shape::Bytes => &Shape::U8,
            _ => return Err(de::Error::invalid_type(de::Unexpected::Seq, &self)),
        };
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child(element, format!("[{}]", items.len())))? {
            items.push(item);
        }
        if *element == Shape::U8 {
            let bytes = items.iter().map(byte).collect();
            return Ok(Dynamic::Bytes(bytes));
        }
        Ok(Dynamic::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dynamic, A::Error> {
        match self.shape {
            Shape::Map(key, value) => {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key_seed(self.child(key, format!("[#{}]", entries.len())))? {
                    let v = map.next_value_seed(self.child(value, format!("[{k}]")))?;
                    entries.push((k, v));
                }
                Ok(Dynamic::Map(entries))
            }
            Shape::Named(name) => match self.types.get(name) {
                Some(Container::Struct(fields)) => Ok(Dynamic::Struct(self.fields(fields, &mut map)?)),
                _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
            },
            _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
        }
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Dynamic, A::Error> {
        let variants = match self.shape {
            Shape::Named(name) => match self.types.get(name) {
                Some(Container::Enum(variants)) => variants,
                _ => return Err(de::Error::invalid_type(de::Unexpected::Enum, &self)),
            },
            _ => return Err(de::Error::invalid_type(de::Unexpected::Enum, &self)),
        };
        let (name, access) = data.variant_seed(Identifier)?;
        let variant = variants.iter().find(|v| v.name == name).ok_or_else(|| {
            let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
            de::Error::custom(format!(
                "{} has no variant `{name}` (it has: {}) at {}",
                self.shape,
                names.join(", "),
                self.place()
            ))
        })?;
        let inner = Seed { path: format!("{}::{name}", self.path), ..self.clone() };
        let content = match &variant.content {
            VariantContent::Unit => {
                access.unit_variant()?;
                Dynamic::Unit
            }
            VariantContent::Newtype(shape) => access.newtype_variant_seed(inner.child(shape, ""))?,
            VariantContent::Tuple(shapes) => access.tuple_variant(shapes.len(), Content { seed: inner, shapes })?,
            VariantContent::Struct(fields) => {
                let names = intern_list(fields.iter().map(|f| f.name.as_str()));
                access.struct_variant(names, StructContent { seed: inner, fields })?
            }
        };
        Ok(Dynamic::Variant(name, Box::new(content)))
    }
}

impl<'a> Seed<'a> {
    /// The elements of a tuple (or tuple struct or tuple variant), exactly as many as `shapes`.
    fn elements<'de, A: SeqAccess<'de>>(&self, shapes: &'a [Shape], seq: &mut A) -> Result<Vec<Dynamic>, A::Error> {
        let mut items = Vec::with_capacity(shapes.len());
        for (i, shape) in shapes.iter().enumerate() {
            match seq.next_element_seed(self.child(shape, format!(".{i}")))? {
                Some(item) => items.push(item),
                None => return Err(de::Error::invalid_length(i, &self.clone())),
            }
        }
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!("more than {} elements at {}", shapes.len(), self.place())));
        }
        Ok(items)
    }

    /// A struct's fields by name, in the description's order; fields that are options may be left out.
    fn fields<'de, A: MapAccess<'de>>(
        &self,
        fields: &'a [Field],
        map: &mut A,
    ) -> Result<Vec<(String, Dynamic)>, A::Error> {
        let mut given: Vec<Option<Dynamic>> = fields.iter().map(|_| None).collect();
        while let Some(name) = map.next_key_seed(Identifier)? {
            let Some(at) = fields.iter().position(|f| f.name == name) else {
                let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                return Err(de::Error::custom(format!(
                    "no field `{name}` at {} (its fields: {})",
                    self.place(),
                    names.join(", ")
                )));
            };
            if given[at].is_some() {
                return Err(de::Error::custom(format!("field `{name}` given twice at {}", self.place())));
            }
            given[at] = Some(map.next_value_seed(self.child(&fields[at].shape, format!(".{name}")))?);
        }
        fields
            .iter()
            .zip(given)
            .map(|(field, v)| match (v, &field.shape) {
                (Some(v), _) => Ok((field.name.clone(), v)),
                (None, Shape::Option(_)) => Ok((field.name.clone(), Dynamic::Option(None))),
                (None, shape) => {
                    Err(de::Error::custom(format!("missing field `{}` ({shape}) at {}", field.name, self.place())))
                }
            })
            .collect()
    }

    /// A struct written as a sequence of its fields' values, in order.
    fn struct_from_seq<'de, A: SeqAccess<'de>>(&self, fields: &'a [Field], mut seq: A) -> Result<Dynamic, A::Error> {
        let mut out = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            match seq.next_element_seed(self.child(&field.shape, format!(".{}", field.name)))? {
                Some(v) => out.push((field.name.clone(), v)),
                None => return Err(de::Error::invalid_length(i, &self.clone())),
            }
        }
        Ok(Dynamic::Struct(out))
    }
}

/// An element read as a `u8` (so in range) as a byte.
fn byte(item: &Dynamic) -> u8 {
    match item {
        Dynamic::U64(b) => *b as u8,
        _ => 0,
    }
}

/// A struct field's or an enum variant's name.
struct Identifier;

impl<'de> DeserializeSeed<'de> for Identifier {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Identifier {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field or variant name")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<String, E> {
        String::from_utf8(bytes.to_vec()).map_err(|_| E::invalid_value(de::Unexpected::Bytes(bytes), &self))
    }
}

/// The elements of a tuple variant.
struct Content<'a> {
    seed: Seed<'a>,
    shapes: &'a [Shape],
}

impl<'de> Visitor<'de> for Content<'_> {
    type Value = Dynamic;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} elements at {}", self.shapes.len(), self.seed.place())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dynamic, A::Error> {
        Ok(Dynamic::Seq(self.seed.elements(self.shapes, &mut seq)?))
    }
}

/// The fields of a struct variant.
struct StructContent<'a> {
    seed: Seed<'a>,
    fields: &'a [Field],
}

impl<'de> Visitor<'de> for StructContent<'_> {
    type Value = Dynamic;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the fields of {}", self.seed.place())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dynamic, A::Error> {
        Ok(Dynamic::Struct(self.seed.fields(self.fields, &mut map)?))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Dynamic, A::Error> {
        self.seed.struct_from_seq(self.fields, seq)
    }
}

//! Any serde type from a [`Value`], as from a self-describing format: structs are maps from field names, enum
//! variants are identified by name, integers are offered at their widest so serde's visitors range-check them.

use std::fmt;
use std::vec;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Unexpected, Visitor};
use serde::forward_to_deserialize_any;

use super::{render, Content, ResolveError, Step, Value};

/// Why the reader's type could not be built, and where (innermost step first).
#[derive(Debug)]
pub(super) struct DeError {
    kind: Kind,
    trail: Vec<Step>,
}

#[derive(Debug)]
enum Kind {
    Custom(String),
    UnknownVariant { variant: String, enum_name: Option<String> },
}

impl DeError {
    pub(super) fn into_resolve(self, root: &str) -> ResolveError {
        let path = render(root, &self.trail);
        match self.kind {
            Kind::Custom(message) => ResolveError::Mismatch { path, message },
            Kind::UnknownVariant { variant, enum_name } => {
                ResolveError::UnknownVariant { path, enum_name: enum_name.unwrap_or_default(), variant }
            }
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Custom(message) => f.write_str(message),
            Kind::UnknownVariant { variant, .. } => write!(f, "unknown variant `{variant}`"),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        DeError { kind: Kind::Custom(message.to_string()), trail: Vec::new() }
    }

    fn unknown_variant(variant: &str, _expected: &'static [&'static str]) -> Self {
        DeError { kind: Kind::UnknownVariant { variant: variant.to_owned(), enum_name: None }, trail: Vec::new() }
    }
}

trait At<T> {
    /// Adds `step` to the error's path.
    fn at(self, step: impl FnOnce() -> Step) -> Result<T, DeError>;
}

impl<T> At<T> for Result<T, DeError> {
    fn at(self, step: impl FnOnce() -> Step) -> Result<T, DeError> {
        self.map_err(|mut error| {
            error.trail.push(step());
            error
        })
    }
}

/// Deserializes from one decoded value.
pub(super) struct ValueDeserializer<'de> {
    value: Value<'de>,
}

impl<'de> ValueDeserializer<'de> {
    pub(super) fn new(value: Value<'de>) -> Self {
        ValueDeserializer { value }
    }
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'de> {
    type Error = DeError;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Unit | Value::UnitStruct => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::U64(n) => visitor.visit_u64(n),
            Value::I64(n) => visitor.visit_i64(n),
            Value::U128(n) => match u64::try_from(n) {
                Ok(n) => visitor.visit_u64(n),
                Err(_) => visitor.visit_u128(n),
            },
            Value::I128(n) => match i64::try_from(n) {
                Ok(n) => visitor.visit_i64(n),
                Err(_) => visitor.visit_i128(n),
            },
            Value::F32(x) => visitor.visit_f32(x),
            Value::F64(x) => visitor.visit_f64(x),
            Value::Char(c) => visitor.visit_char(c),
            Value::Str(text) => visitor.visit_borrowed_str(text),
            Value::Bytes(bytes) => visitor.visit_borrowed_bytes(bytes),
            Value::Option(None) => visitor.visit_none(),
            Value::Option(Some(inner)) => visitor.visit_some(ValueDeserializer::new(*inner)),
            Value::Seq(elements) => visit_elements(elements, Step::Index, visitor),
            Value::ByteSeq(bytes) => visit_bytes_as_elements(bytes, Step::Index, visitor),
            Value::ByteTuple(bytes) => visit_bytes_as_elements(bytes, Step::Position, visitor),
            Value::Tuple(elements) | Value::TupleStruct(elements) => visit_elements(elements, Step::Position, visitor),
            Value::Map(entries) => {
                visitor.visit_map(Entries { entries: entries.into_iter().enumerate(), pending: None })
            }
            Value::Struct(fields) => visitor.visit_map(Fields { fields: fields.into_iter(), pending: None }),
            Value::Newtype(inner) => {
                visitor.visit_newtype_struct(ValueDeserializer::new(*inner)).at(|| Step::Position(0))
            }
            Value::Enum { variant, content } => visitor.visit_enum(Variant { name: variant, content }),
        }
    }

    /// A value that is not an option is read as `Some`: a field may become optional.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Option(_) => self.deserialize_any(visitor),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Struct(fields) => {
                let values = fields.into_iter().map(|(_, value)| value).collect();
                visit_elements(values, Step::Position, visitor)
            }
            value => ValueDeserializer::new(value).deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    /// Names the enum in an unknown-variant error: the reader's name for it, the one its user knows.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor).map_err(|mut error| {
            if let Kind::UnknownVariant { enum_name: enum_name @ None, .. } = &mut error.kind {
                *enum_name = Some(name.to_owned());
            }
            error
        })
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct
        newtype_struct map struct identifier
    }
}

fn visit_elements<'de, V: Visitor<'de>>(
    elements: Vec<Value<'de>>,
    step: fn(usize) -> Step,
    visitor: V,
) -> Result<V::Value, DeError> {
    let len = elements.len();
    let mut access = Elements { elements: elements.into_iter().enumerate(), step };
    let value = visitor.visit_seq(&mut access)?;
    let left = access.elements.len();
    if left > 0 {
        return Err(de::Error::invalid_length(
            len,
            &format!("{} elements, as the reader's type has", len - left).as_str(),
        ));
    }
    Ok(value)
}

/// Visits `bytes` as a sequence of `u8` values, without a value per byte.
fn visit_bytes_as_elements<'de, V: Visitor<'de>>(
    bytes: &'de [u8],
    step: fn(usize) -> Step,
    visitor: V,
) -> Result<V::Value, DeError> {
    let mut access = ByteElements { bytes, next: 0, step };
    let value = visitor.visit_seq(&mut access)?;
    if access.next < bytes.len() {
        return Err(de::Error::invalid_length(
            bytes.len(),
            &format!("{} elements, as the reader's type has", access.next).as_str(),
        ));
    }
    Ok(value)
}

struct ByteElements<'de> {
    bytes: &'de [u8],
    next: usize,
    step: fn(usize) -> Step,
}

impl<'de> de::SeqAccess<'de> for ByteElements<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(&byte) = self.bytes.get(self.next) else { return Ok(None) };
        let index = self.next;
        self.next += 1;
        seed.deserialize(ValueDeserializer::new(Value::U64(byte.into()))).at(|| (self.step)(index)).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len() - self.next)
    }
}

struct Elements<'de> {
    elements: std::iter::Enumerate<vec::IntoIter<Value<'de>>>,
    step: fn(usize) -> Step,
}

impl<'de> de::SeqAccess<'de> for Elements<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        match self.elements.next() {
            None => Ok(None),
            Some((index, value)) => seed.deserialize(ValueDeserializer::new(value)).at(|| (self.step)(index)).map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.elements.len())
    }
}

struct Entries<'de> {
    entries: std::iter::Enumerate<vec::IntoIter<(Value<'de>, Value<'de>)>>,
    /// The value of the entry whose key was just read, with its label for paths.
    pending: Option<(String, Value<'de>)>,
}

impl<'de> de::MapAccess<'de> for Entries<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((index, (key, value))) = self.entries.next() else {
            return Ok(None);
        };
        let label = key.label(index);
        self.pending = Some((label.clone(), value));
        seed.deserialize(ValueDeserializer::new(key)).at(|| Step::Key(label)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (label, value) =
            self.pending.take().ok_or_else(|| de::Error::custom("a map value asked for before its key"))?;
        seed.deserialize(ValueDeserializer::new(value)).at(|| Step::Key(label))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A struct's fields as a map from their names, for serde's derived code to match by name.
struct Fields<'de> {
    fields: vec::IntoIter<(&'de str, Value<'de>)>,
    pending: Option<(&'de str, Value<'de>)>,
}

impl<'de> de::MapAccess<'de> for Fields<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((name, value)) = self.fields.next() else {
            return Ok(None);
        };
        self.pending = Some((name, value));
        seed.deserialize(BorrowedStrDeserializer::new(name)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (name, value) =
            self.pending.take().ok_or_else(|| de::Error::custom("a field asked for before its name"))?;
        seed.deserialize(ValueDeserializer::new(value)).at(|| Step::Field(name.to_owned()))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

/// An enum value, identified by its variant's name.
struct Variant<'de> {
    name: &'de str,
    content: Content<'de>,
}

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let identifier = seed.deserialize(BorrowedStrDeserializer::new(self.name))?;
        Ok((identifier, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.content {
            Content::Unit => Ok(()),
            content => Err(wrong_kind(self.name, &content, "unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let name = self.name;
        match self.content {
            Content::Newtype(inner) => {
                seed.deserialize(ValueDeserializer::new(*inner)).at(|| Step::Position(0)).at(|| step(name))
            }
            content => Err(wrong_kind(name, &content, "newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        let name = self.name;
        match self.content {
            Content::Tuple(elements) => visit_elements(elements, Step::Position, visitor).at(|| step(name)),
            content => Err(wrong_kind(name, &content, "tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let name = self.name;
        match self.content {
            Content::Struct(fields) => {
                visitor.visit_map(Fields { fields: fields.into_iter(), pending: None }).at(|| step(name))
            }
            content => Err(wrong_kind(name, &content, "struct variant")),
        }
    }
}

fn step(variant: &str) -> Step {
    Step::Variant(variant.to_owned())
}

fn wrong_kind(name: &str, content: &Content<'_>, expected: &str) -> DeError {
    let unexpected = match content {
        Content::Unit => Unexpected::UnitVariant,
        Content::Newtype(_) => Unexpected::NewtypeVariant,
        Content::Tuple(_) => Unexpected::TupleVariant,
        Content::Struct(_) => Unexpected::StructVariant,
    };
    let mut error: DeError = de::Error::invalid_type(unexpected, &expected);
    error.trail.push(step(name));
    error
}

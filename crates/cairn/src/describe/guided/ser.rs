//! A [`Dynamic`] value serialized as the type a description describes.

use std::collections::BTreeMap;

use serde::ser::{
    SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple, SerializeTupleStruct,
    SerializeTupleVariant,
};
use serde::{Serialize, Serializer};

use super::intern;
use crate::describe::{Container, Dynamic, Field, Shape, TypeDescription, VariantContent};

/// A [`Dynamic`] value that serializes as the type `description` describes: the calls a derived `Serialize` of that
/// type would make, with its names. Fails (with the serializer's error, naming the place) when the value does not
/// have the description's shape.
#[derive(Debug, Clone, Copy)]
pub struct Described<'a> {
    value: &'a Dynamic,
    shape: &'a Shape,
    types: &'a BTreeMap<String, Container>,
}

impl<'a> Described<'a> {
    /// `value` as a value of `description`'s type.
    pub fn new(value: &'a Dynamic, description: &'a TypeDescription) -> Self {
        Described { value, shape: &description.root, types: &description.types }
    }

    fn at(&self, value: &'a Dynamic, shape: &'a Shape) -> Self {
        Described { value, shape, types: self.types }
    }
}

thread_local! {
    /// The message of the last error a [`Described`] raised on this thread: serializers such as postcard's keep only
    /// that an error happened.
    static LAST_ERROR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// An error with `message`, which [`take_last_error`] returns afterwards.
fn fail<E: serde::ser::Error>(message: String) -> E {
    LAST_ERROR.with(|last| *last.borrow_mut() = Some(message.clone()));
    E::custom(message)
}

/// The message of the last error raised on this thread, if any, taken.
pub(super) fn take_last_error() -> Option<String> {
    LAST_ERROR.with(|last| last.borrow_mut().take())
}

/// What the value is, for errors: `a string`, `a struct`.
fn what(value: &Dynamic) -> &'static str {
    match value {
        Dynamic::Unit => "unit",
        Dynamic::Bool(_) => "a bool",
        Dynamic::U64(_) | Dynamic::I64(_) | Dynamic::U128(_) | Dynamic::I128(_) => "an integer",
        Dynamic::F64(_) => "a float",
        Dynamic::Char(_) => "a char",
        Dynamic::Str(_) => "a string",
        Dynamic::Bytes(_) => "bytes",
        Dynamic::Option(_) => "an option",
        Dynamic::Seq(_) => "a sequence",
        Dynamic::Map(_) => "a map",
        Dynamic::Struct(_) => "a struct",
        Dynamic::Variant(..) => "an enum variant",
    }
}

/// The value as an `i128`, if it is an integer that fits.
fn integer(value: &Dynamic) -> Option<i128> {
    match *value {
        Dynamic::U64(n) => Some(n.into()),
        Dynamic::I64(n) => Some(n.into()),
        Dynamic::U128(n) => i128::try_from(n).ok(),
        Dynamic::I128(n) => Some(n),
        _ => None,
    }
}

impl Serialize for Described<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let value = self.value;
        let mismatch = || fail::<S::Error>(format!("expected {}, found {}", self.shape, what(value)));
        macro_rules! int {
            ($ty:ty, $method:ident) => {{
                let n = match (value, self.shape) {
                    (Dynamic::U128(n), Shape::U128) => return s.serialize_u128(*n),
                    _ => integer(value).ok_or_else(mismatch)?,
                };
                let n = <$ty>::try_from(n)
                    .map_err(|_| fail::<S::Error>(format!("{n} does not fit in {}", stringify!($ty))))?;
                s.$method(n)
            }};
        }
        match self.shape {
            Shape::Unknown => Err(fail::<S::Error>(
                "the stored description has no shape here (no value like this was seen when the program described \
                 its type), so no value can be written here"
                    .to_string(),
            )),
            Shape::Unit => match value {
                Dynamic::Unit => s.serialize_unit(),
                _ => Err(mismatch()),
            },
            Shape::Bool => match value {
                Dynamic::Bool(b) => s.serialize_bool(*b),
                _ => Err(mismatch()),
            },
            Shape::U8 => int!(u8, serialize_u8),
            Shape::U16 => int!(u16, serialize_u16),
            Shape::U32 => int!(u32, serialize_u32),
            Shape::U64 => int!(u64, serialize_u64),
            Shape::U128 => int!(u128, serialize_u128),
            Shape::I8 => int!(i8, serialize_i8),
            Shape::I16 => int!(i16, serialize_i16),
            Shape::I32 => int!(i32, serialize_i32),
            Shape::I64 => int!(i64, serialize_i64),
            Shape::I128 => int!(i128, serialize_i128),
            Shape::F32 | Shape::F64 => {
                let x = match *value {
                    Dynamic::F64(x) => x,
                    _ => integer(value).ok_or_else(mismatch)? as f64,
                };
                if *self.shape == Shape::F32 {
                    s.serialize_f32(x as f32)
                } else {
                    s.serialize_f64(x)
                }
            }
            Shape::Char => match value {
                Dynamic::Char(c) => s.serialize_char(*c),
                Dynamic::Str(text) if text.chars().count() == 1 => s.serialize_char(text.chars().next().unwrap_or(' ')),
                _ => Err(mismatch()),
            },
            Shape::Str => match value {
                Dynamic::Str(text) => s.serialize_str(text),
                _ => Err(mismatch()),
            },
            // A sequence of bytes: postcard encodes it exactly as `serialize_bytes`, and text formats show numbers.
            Shape::Bytes => match value {
                Dynamic::Bytes(bytes) => bytes.serialize(s),
                Dynamic::Seq(_) => self.at(value, &Shape::Seq(Box::new(Shape::U8))).serialize(s),
                _ => Err(mismatch()),
            },
            Shape::Option(inner) => match value {
                Dynamic::Option(None) => s.serialize_none(),
                Dynamic::Option(Some(v)) => s.serialize_some(&self.at(v, inner)),
                _ => Err(mismatch()),
            },
            Shape::Seq(element) => match value {
                Dynamic::Seq(items) => {
                    let mut seq = s.serialize_seq(Some(items.len()))?;
                    for item in items {
                        seq.serialize_element(&self.at(item, element))?;
                    }
                    seq.end()
                }
                Dynamic::Bytes(bytes) if **element == Shape::U8 => bytes.serialize(s),
                _ => Err(mismatch()),
            },
            Shape::Map(key, val) => match value {
                Dynamic::Map(entries) => {
                    let mut map = s.serialize_map(Some(entries.len()))?;
                    for (k, v) in entries {
                        map.serialize_entry(&self.at(k, key), &self.at(v, val))?;
                    }
                    map.end()
                }
                _ => Err(mismatch()),
            },
            Shape::Tuple(shapes) => {
                let bytes: Vec<Dynamic>;
                let items = match value {
                    Dynamic::Seq(items) => items,
                    Dynamic::Bytes(b) => {
                        bytes = b.iter().map(|&b| Dynamic::U64(b.into())).collect();
                        &bytes
                    }
                    _ => return Err(mismatch()),
                };
                if items.len() != shapes.len() {
                    return Err(fail::<S::Error>(format!(
                        "expected {} elements for {}, found {}",
                        shapes.len(),
                        self.shape,
                        items.len()
                    )));
                }
                let mut tuple = s.serialize_tuple(shapes.len())?;
                for (item, shape) in items.iter().zip(shapes) {
                    tuple.serialize_element(&self.at(item, shape))?;
                }
                tuple.end()
            }
            Shape::Named(name) => self.named(name, s),
        }
    }
}

impl<'a> Described<'a> {
    fn named<S: Serializer>(&self, name: &'a str, s: S) -> Result<S::Ok, S::Error> {
        let value = self.value;
        let container = self
            .types
            .get(name)
            .ok_or_else(|| fail::<S::Error>(format!("the description names `{name}` but does not describe it")))?;
        let static_name = intern(name);
        let mismatch = || fail::<S::Error>(format!("expected {} {name}, found {}", container.keyword(), what(value)));
        match container {
            Container::Unit => match value {
                Dynamic::Unit => s.serialize_unit_struct(static_name),
                _ => Err(mismatch()),
            },
            Container::Newtype(shape) => s.serialize_newtype_struct(static_name, &self.at(value, shape)),
            Container::Tuple(shapes) => {
                let items = self.items(shapes, name, &mismatch)?;
                let mut tuple = s.serialize_tuple_struct(static_name, shapes.len())?;
                for (item, shape) in items.iter().zip(shapes) {
                    tuple.serialize_field(&self.at(item, shape))?;
                }
                tuple.end()
            }
            Container::Struct(fields) => {
                let given = self.fields(fields, name, &mismatch)?;
                let mut st = s.serialize_struct(static_name, fields.len())?;
                for (field, v) in fields.iter().zip(given) {
                    st.serialize_field(intern(&field.name), &self.at(v, &field.shape))?;
                }
                st.end()
            }
            Container::Enum(variants) => {
                let Dynamic::Variant(variant, content) = value else { return Err(mismatch()) };
                let v = variants.iter().find(|v| v.name == *variant).ok_or_else(|| {
                    let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
                    fail::<S::Error>(format!("enum {name} has no variant `{variant}` (it has: {})", names.join(", ")))
                })?;
                let (index, vname) = (v.index, intern(&v.name));
                let path = format!("{name}::{variant}");
                match &v.content {
                    VariantContent::Unit => match **content {
                        Dynamic::Unit => s.serialize_unit_variant(static_name, index, vname),
                        _ => Err(fail::<S::Error>(format!("{path} carries nothing, found {}", what(content)))),
                    },
                    VariantContent::Newtype(shape) => {
                        s.serialize_newtype_variant(static_name, index, vname, &self.at(content, shape))
                    }
                    VariantContent::Tuple(shapes) => {
                        let inner = self.at(content, &Shape::Unit);
                        let items = inner.items(shapes, &path, &mismatch)?;
                        let mut tuple = s.serialize_tuple_variant(static_name, index, vname, shapes.len())?;
                        for (item, shape) in items.iter().zip(shapes) {
                            tuple.serialize_field(&self.at(item, shape))?;
                        }
                        tuple.end()
                    }
                    VariantContent::Struct(fields) => {
                        let inner = self.at(content, &Shape::Unit);
                        let given = inner.fields(fields, &path, &mismatch)?;
                        let mut st = s.serialize_struct_variant(static_name, index, vname, fields.len())?;
                        for (field, v) in fields.iter().zip(given) {
                            st.serialize_field(intern(&field.name), &self.at(v, &field.shape))?;
                        }
                        st.end()
                    }
                }
            }
        }
    }

    /// The elements of a tuple struct or tuple variant `path`.
    fn items<E: serde::ser::Error>(
        &self,
        shapes: &[Shape],
        path: &str,
        mismatch: &dyn Fn() -> E,
    ) -> Result<&'a [Dynamic], E> {
        let Dynamic::Seq(items) = self.value else { return Err(mismatch()) };
        if items.len() != shapes.len() {
            return Err(fail::<E>(format!("{path} has {} elements, found {}", shapes.len(), items.len())));
        }
        Ok(items)
    }

    /// The values of a struct's (or struct variant's) fields, in the description's order. A field the value lacks
    /// is `None` if it is an option, else an error; a field the description lacks is an error.
    fn fields<E: serde::ser::Error>(
        &self,
        fields: &'a [Field],
        path: &str,
        mismatch: &dyn Fn() -> E,
    ) -> Result<Vec<&'a Dynamic>, E> {
        static NONE: Dynamic = Dynamic::Option(None);
        let Dynamic::Struct(given) = self.value else { return Err(mismatch()) };
        if let Some((unknown, _)) = given.iter().find(|(n, _)| !fields.iter().any(|f| f.name == *n)) {
            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            return Err(fail::<E>(format!("{path} has no field `{unknown}` (it has: {})", names.join(", "))));
        }
        fields
            .iter()
            .map(|field| match given.iter().find(|(n, _)| *n == field.name) {
                Some((_, v)) => Ok(v),
                None if matches!(field.shape, Shape::Option(_)) => Ok(&NONE),
                None => Err(fail::<E>(format!("{path} needs field `{}` ({})", field.name, field.shape))),
            })
            .collect()
    }
}

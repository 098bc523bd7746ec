//! Phase B: the shape postcard writes for a sample, recorded by a serializer, and merged across samples.
//!
//! Serializing gives what deserializing cannot: the true field names in order, and each variant's index and name.
//! A sample shows one variant of each enum, `None` or `Some`, and maybe an empty sequence, so shapes are merged:
//! [`Shape::Unknown`] gives way to anything, enums gather their variants by index, and anything else must agree.

use std::collections::BTreeMap;

use serde::ser::{self, Serialize};

use super::Failure;
use crate::describe::{Container, Field, Shape, Variant, VariantContent};

/// The merged shapes of every sample recorded.
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) root: Option<Shape>,
    pub(super) types: BTreeMap<String, Container>,
}

impl Recorder {
    /// Records one sample. Fails fatally when its shapes conflict with earlier samples'.
    pub(super) fn record<T: Serialize>(&mut self, sample: &T) -> Result<(), Failure> {
        let mut types = BTreeMap::new();
        let root = sample.serialize(ShapeSerializer { types: &mut types })?;
        for (name, container) in types {
            add_container(&mut self.types, name, container)?;
        }
        self.root = Some(match self.root.take() {
            None => root,
            Some(earlier) => merge(&earlier, &root).ok_or_else(|| {
                Failure::fatal(format!("two samples have different shapes: `{earlier}` and `{root}`"))
            })?,
        });
        Ok(())
    }
}

fn add_container(types: &mut BTreeMap<String, Container>, name: String, container: Container) -> Result<(), Failure> {
    let merged = match types.get(&name) {
        None => container,
        Some(earlier) => merge_containers(earlier, &container).ok_or_else(|| {
            Failure::fatal(format!(
                "two types are both named `{name}` but have different shapes: `{}` and `{}` (a generic type used \
                 with different parameters? give each a distinct #[serde(rename)])",
                earlier.declaration(&name),
                container.declaration(&name)
            ))
        })?,
    };
    types.insert(name, merged);
    Ok(())
}

/// The shape that describes values of both `a` and `b`, if there is one.
fn merge(a: &Shape, b: &Shape) -> Option<Shape> {
    Some(match (a, b) {
        (Shape::Unknown, other) | (other, Shape::Unknown) => other.clone(),
        (Shape::Option(a), Shape::Option(b)) => Shape::Option(Box::new(merge(a, b)?)),
        (Shape::Seq(a), Shape::Seq(b)) => Shape::Seq(Box::new(merge(a, b)?)),
        (Shape::Map(ak, av), Shape::Map(bk, bv)) => Shape::Map(Box::new(merge(ak, bk)?), Box::new(merge(av, bv)?)),
        (Shape::Tuple(a), Shape::Tuple(b)) => Shape::Tuple(merge_all(a, b)?),
        (a, b) if a == b => a.clone(),
        _ => return None,
    })
}

fn merge_all(a: &[Shape], b: &[Shape]) -> Option<Vec<Shape>> {
    if a.len() != b.len() {
        return None;
    }
    a.iter().zip(b).map(|(a, b)| merge(a, b)).collect()
}

fn merge_fields(a: &[Field], b: &[Field]) -> Option<Vec<Field>> {
    if a.len() != b.len() {
        return None;
    }
    let merged = a.iter().zip(b).map(|(a, b)| {
        let shape = merge(&a.shape, &b.shape).filter(|_| a.name == b.name)?;
        Some(Field { name: a.name.clone(), shape })
    });
    merged.collect()
}

fn merge_containers(a: &Container, b: &Container) -> Option<Container> {
    Some(match (a, b) {
        (Container::Unit, Container::Unit) => Container::Unit,
        (Container::Newtype(a), Container::Newtype(b)) => Container::Newtype(merge(a, b)?),
        (Container::Tuple(a), Container::Tuple(b)) => Container::Tuple(merge_all(a, b)?),
        (Container::Struct(a), Container::Struct(b)) => Container::Struct(merge_fields(a, b)?),
        (Container::Enum(a), Container::Enum(b)) => {
            let mut variants: BTreeMap<u32, Variant> = a.iter().map(|v| (v.index, v.clone())).collect();
            for variant in b {
                let merged = match variants.get(&variant.index) {
                    None => variant.clone(),
                    Some(earlier) if earlier.name != variant.name => return None,
                    Some(earlier) => Variant {
                        index: variant.index,
                        name: variant.name.clone(),
                        content: merge_contents(&earlier.content, &variant.content)?,
                    },
                };
                variants.insert(variant.index, merged);
            }
            Container::Enum(variants.into_values().collect())
        }
        _ => return None,
    })
}

fn merge_contents(a: &VariantContent, b: &VariantContent) -> Option<VariantContent> {
    Some(match (a, b) {
        (VariantContent::Unit, VariantContent::Unit) => VariantContent::Unit,
        (VariantContent::Newtype(a), VariantContent::Newtype(b)) => VariantContent::Newtype(merge(a, b)?),
        (VariantContent::Tuple(a), VariantContent::Tuple(b)) => VariantContent::Tuple(merge_all(a, b)?),
        (VariantContent::Struct(a), VariantContent::Struct(b)) => VariantContent::Struct(merge_fields(a, b)?),
        _ => return None,
    })
}

/// Records the shape of one value; named containers go to `types`.
struct ShapeSerializer<'a> {
    types: &'a mut BTreeMap<String, Container>,
}

impl ShapeSerializer<'_> {
    fn named(self, name: &str, container: Container) -> Result<Shape, Failure> {
        add_container(self.types, name.to_owned(), container)?;
        Ok(Shape::Named(name.to_owned()))
    }

    fn variant(self, name: &str, index: u32, variant: &str, content: VariantContent) -> Result<Shape, Failure> {
        let variant = Variant { index, name: variant.to_owned(), content };
        self.named(name, Container::Enum(vec![variant]))
    }

    fn shape_of<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<Shape, Failure> {
        value.serialize(ShapeSerializer { types: self.types })
    }
}

impl<'a> ser::Serializer for ShapeSerializer<'a> {
    type Ok = Shape;
    type Error = Failure;
    type SerializeSeq = Elements<'a>;
    type SerializeTuple = Elements<'a>;
    type SerializeTupleStruct = Elements<'a>;
    type SerializeTupleVariant = Elements<'a>;
    type SerializeMap = Entries<'a>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Fields<'a>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, _: bool) -> Result<Shape, Failure> {
        Ok(Shape::Bool)
    }
    fn serialize_i8(self, _: i8) -> Result<Shape, Failure> {
        Ok(Shape::I8)
    }
    fn serialize_i16(self, _: i16) -> Result<Shape, Failure> {
        Ok(Shape::I16)
    }
    fn serialize_i32(self, _: i32) -> Result<Shape, Failure> {
        Ok(Shape::I32)
    }
    fn serialize_i64(self, _: i64) -> Result<Shape, Failure> {
        Ok(Shape::I64)
    }
    fn serialize_i128(self, _: i128) -> Result<Shape, Failure> {
        Ok(Shape::I128)
    }
    fn serialize_u8(self, _: u8) -> Result<Shape, Failure> {
        Ok(Shape::U8)
    }
    fn serialize_u16(self, _: u16) -> Result<Shape, Failure> {
        Ok(Shape::U16)
    }
    fn serialize_u32(self, _: u32) -> Result<Shape, Failure> {
        Ok(Shape::U32)
    }
    fn serialize_u64(self, _: u64) -> Result<Shape, Failure> {
        Ok(Shape::U64)
    }
    fn serialize_u128(self, _: u128) -> Result<Shape, Failure> {
        Ok(Shape::U128)
    }
    fn serialize_f32(self, _: f32) -> Result<Shape, Failure> {
        Ok(Shape::F32)
    }
    fn serialize_f64(self, _: f64) -> Result<Shape, Failure> {
        Ok(Shape::F64)
    }
    fn serialize_char(self, _: char) -> Result<Shape, Failure> {
        Ok(Shape::Char)
    }
    fn serialize_str(self, _: &str) -> Result<Shape, Failure> {
        Ok(Shape::Str)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Shape, Failure> {
        Ok(Shape::Bytes)
    }
    fn serialize_none(self) -> Result<Shape, Failure> {
        Ok(Shape::Option(Box::new(Shape::Unknown)))
    }
    fn serialize_some<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Shape, Failure> {
        Ok(Shape::Option(Box::new(self.shape_of(value)?)))
    }
    fn serialize_unit(self) -> Result<Shape, Failure> {
        Ok(Shape::Unit)
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Shape, Failure> {
        self.named(name, Container::Unit)
    }
    fn serialize_unit_variant(self, name: &'static str, index: u32, variant: &'static str) -> Result<Shape, Failure> {
        self.variant(name, index, variant, VariantContent::Unit)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        mut self,
        name: &'static str,
        value: &T,
    ) -> Result<Shape, Failure> {
        let inner = self.shape_of(value)?;
        self.named(name, Container::Newtype(inner))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Shape, Failure> {
        let inner = self.shape_of(value)?;
        self.variant(name, index, variant, VariantContent::Newtype(inner))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Elements<'a>, Failure> {
        if len.is_none() {
            return Err(Failure::fatal("it serializes a sequence of unknown length, which postcard cannot write"));
        }
        Ok(Elements::new(self.types, Close::Seq))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Elements<'a>, Failure> {
        Ok(Elements::new(self.types, Close::Tuple))
    }
    fn serialize_tuple_struct(self, name: &'static str, _len: usize) -> Result<Elements<'a>, Failure> {
        Ok(Elements::new(self.types, Close::TupleStruct(name)))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Elements<'a>, Failure> {
        Ok(Elements::new(self.types, Close::TupleVariant(name, index, variant)))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Entries<'a>, Failure> {
        if len.is_none() {
            return Err(Failure::fatal("it serializes a map of unknown length, which postcard cannot write"));
        }
        Ok(Entries { types: self.types, key: Shape::Unknown, value: Shape::Unknown })
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Fields<'a>, Failure> {
        Ok(Fields { types: self.types, fields: Vec::new(), name, variant: None })
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Fields<'a>, Failure> {
        Ok(Fields { types: self.types, fields: Vec::new(), name, variant: Some((index, variant)) })
    }
}

/// What a sequence of elements becomes once complete.
enum Close {
    Seq,
    Tuple,
    TupleStruct(&'static str),
    TupleVariant(&'static str, u32, &'static str),
}

pub(super) struct Elements<'a> {
    types: &'a mut BTreeMap<String, Container>,
    shapes: Vec<Shape>,
    close: Close,
}

impl<'a> Elements<'a> {
    fn new(types: &'a mut BTreeMap<String, Container>, close: Close) -> Self {
        Elements { types, shapes: Vec::new(), close }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Failure> {
        let shape = value.serialize(ShapeSerializer { types: self.types })?;
        self.shapes.push(shape);
        Ok(())
    }

    fn close(self) -> Result<Shape, Failure> {
        let serializer = ShapeSerializer { types: self.types };
        match self.close {
            Close::Seq => {
                let mut element = Shape::Unknown;
                for shape in &self.shapes {
                    element = merge(&element, shape).ok_or_else(|| {
                        Failure::fatal(format!("a sequence holds elements of two shapes: `{element}` and `{shape}`"))
                    })?;
                }
                Ok(Shape::Seq(Box::new(element)))
            }
            Close::Tuple => Ok(Shape::Tuple(self.shapes)),
            Close::TupleStruct(name) => serializer.named(name, Container::Tuple(self.shapes)),
            Close::TupleVariant(name, index, variant) => {
                serializer.variant(name, index, variant, VariantContent::Tuple(self.shapes))
            }
        }
    }
}

macro_rules! elements {
    ($($trait:ident $method:ident,)*) => {$(
        impl ser::$trait for Elements<'_> {
            type Ok = Shape;
            type Error = Failure;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Failure> {
                self.push(value)
            }

            fn end(self) -> Result<Shape, Failure> {
                self.close()
            }
        }
    )*};
}

elements! {
    SerializeSeq serialize_element,
    SerializeTuple serialize_element,
    SerializeTupleStruct serialize_field,
    SerializeTupleVariant serialize_field,
}

pub(super) struct Entries<'a> {
    types: &'a mut BTreeMap<String, Container>,
    key: Shape,
    value: Shape,
}

impl ser::SerializeMap for Entries<'_> {
    type Ok = Shape;
    type Error = Failure;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Failure> {
        let shape = key.serialize(ShapeSerializer { types: self.types })?;
        self.key = merge(&self.key, &shape)
            .ok_or_else(|| Failure::fatal(format!("a map holds keys of two shapes: `{}` and `{shape}`", self.key)))?;
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Failure> {
        let shape = value.serialize(ShapeSerializer { types: self.types })?;
        self.value = merge(&self.value, &shape).ok_or_else(|| {
            Failure::fatal(format!("a map holds values of two shapes: `{}` and `{shape}`", self.value))
        })?;
        Ok(())
    }

    fn end(self) -> Result<Shape, Failure> {
        Ok(Shape::Map(Box::new(self.key), Box::new(self.value)))
    }
}

pub(super) struct Fields<'a> {
    types: &'a mut BTreeMap<String, Container>,
    fields: Vec<Field>,
    name: &'static str,
    /// For a struct variant: its index and name.
    variant: Option<(u32, &'static str)>,
}

impl Fields<'_> {
    fn push<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Failure> {
        let shape = value.serialize(ShapeSerializer { types: self.types })?;
        self.fields.push(Field { name: name.to_owned(), shape });
        Ok(())
    }

    fn skip(&self, field: &'static str) -> Failure {
        Failure::fatal(format!(
            "`{}` skips field `{field}` when serializing (skip_serializing_if?), which postcard cannot read back",
            self.name
        ))
    }

    fn close(self) -> Result<Shape, Failure> {
        let serializer = ShapeSerializer { types: self.types };
        match self.variant {
            None => serializer.named(self.name, Container::Struct(self.fields)),
            Some((index, variant)) => {
                serializer.variant(self.name, index, variant, VariantContent::Struct(self.fields))
            }
        }
    }
}

macro_rules! fields {
    ($($trait:ident,)*) => {$(
        impl ser::$trait for Fields<'_> {
            type Ok = Shape;
            type Error = Failure;

            fn serialize_field<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Failure> {
                self.push(name, value)
            }

            fn skip_field(&mut self, name: &'static str) -> Result<(), Failure> {
                Err(self.skip(name))
            }

            fn end(self) -> Result<Shape, Failure> {
                self.close()
            }
        }
    )*};
}

fields! {
    SerializeStruct,
    SerializeStructVariant,
}

//! Whether records written under one description can be read as another: checked once, when a database is opened,
//! so that a schema change that cannot work is refused before any record is read.
//!
//! Values are read by name (see `value`), so their rules follow what that reading accepts: structs match fields by
//! name (a field on one side only is skipped, or takes its default: a missing default shows when a record is read),
//! enums match variants by name, integers may widen, a value may become an `Option`. Keys are compared as encoded
//! bytes, so a key's encoding may not change at all, except that an enum may gain variants at the end.
//!
//! Paths read like the values they point into: `Account.address.city`, `Status::Closed.0`, `tags[_]` for any
//! element of a sequence, `scores[key]` and `scores[_]` for a map's keys and values.

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

use super::{Container, Field, Shape, TypeDescription, VariantContent};

/// Where and why a writer's description cannot be read as the reader's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incompatibility {
    /// Where, e.g. `Account.balance` or `Status::Closed.0`.
    pub(crate) path: String,
    /// The writer's shape there, printed.
    pub(crate) writer: String,
    /// The reader's shape there, printed.
    pub(crate) reader: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at `{}`: written as `{}`, cannot be read as `{}`", self.path, self.writer, self.reader)
    }
}

impl std::error::Error for Incompatibility {}

/// Checks that values written under `writer` can be read as `reader` by name (see docs/schema-evolution.md).
pub(crate) fn check_compatible(writer: &TypeDescription, reader: &TypeDescription) -> Result<(), Incompatibility> {
    Walk::new(writer, reader, Rules::Values).root()
}

/// Checks that keys written under `writer` encode exactly as the same keys do under `reader` (keys are compared as
/// bytes on disk, so a key's encoding may not change).
pub(crate) fn check_key_compatible(writer: &TypeDescription, reader: &TypeDescription) -> Result<(), Incompatibility> {
    Walk::new(writer, reader, Rules::Keys).root()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// Read by name: fields and variants matched by name, widening allowed.
    Values,
    /// Compared as bytes: the same encoding, enums may only gain variants at the end.
    Keys,
}

/// Walks the writer's and the reader's shapes together.
struct Walk<'a> {
    writer: &'a TypeDescription,
    reader: &'a TypeDescription,
    rules: Rules,
    /// The pairs of containers already compared (or being compared: recursive types).
    visited: HashSet<(&'a str, &'a str)>,
    /// The path to the shapes being compared.
    path: String,
}

impl<'a> Walk<'a> {
    fn new(writer: &'a TypeDescription, reader: &'a TypeDescription, rules: Rules) -> Self {
        let path = match &writer.root {
            Shape::Named(name) => name.clone(),
            _ => String::new(),
        };
        Walk { writer, reader, rules, visited: HashSet::new(), path }
    }

    fn root(mut self) -> Result<(), Incompatibility> {
        let (writer, reader) = (self.writer, self.reader);
        self.shape(&writer.root, &reader.root)
    }

    /// Runs `check` with `step` appended to the path.
    fn at<R>(&mut self, step: fmt::Arguments<'_>, check: impl FnOnce(&mut Self) -> R) -> R {
        let len = self.path.len();
        fmt::Write::write_fmt(&mut self.path, step).expect("writing to a String cannot fail");
        let result = check(self);
        self.path.truncate(len);
        result
    }

    fn shape(&mut self, writer: &'a Shape, reader: &'a Shape) -> Result<(), Incompatibility> {
        let values = self.rules == Rules::Values;
        match (writer, reader) {
            (Shape::Unknown, _) | (_, Shape::Unknown) => Ok(()),
            (Shape::Option(writer), Shape::Option(reader)) => self.shape(writer, reader),
            (Shape::Seq(writer), Shape::Seq(reader)) => self.at(format_args!("[_]"), |walk| walk.shape(writer, reader)),
            (Shape::Map(writer_key, writer_value), Shape::Map(reader_key, reader_value)) => {
                self.at(format_args!("[key]"), |walk| walk.shape(writer_key, reader_key))?;
                self.at(format_args!("[_]"), |walk| walk.shape(writer_value, reader_value))
            }
            (Shape::Tuple(writer), Shape::Tuple(reader)) if writer.len() == reader.len() => {
                self.positions(writer, reader)
            }
            (Shape::Named(writer), Shape::Named(reader)) => self.named(writer, reader),
            (writer, Shape::Option(reader)) if values => self.shape(writer, reader),
            (writer, reader) if writer == reader || (values && widens(writer, reader)) => Ok(()),
            (writer, reader) => {
                Err(self.incompatible(self.printed(writer, self.writer), self.printed(reader, self.reader)))
            }
        }
    }

    fn positions(&mut self, writer: &'a [Shape], reader: &'a [Shape]) -> Result<(), Incompatibility> {
        for (position, (writer, reader)) in writer.iter().zip(reader).enumerate() {
            self.at(format_args!(".{position}"), |walk| walk.shape(writer, reader))?;
        }
        Ok(())
    }

    fn named(&mut self, writer_name: &'a str, reader_name: &'a str) -> Result<(), Incompatibility> {
        if !self.visited.insert((writer_name, reader_name)) {
            return Ok(());
        }
        let (Some(writer), Some(reader)) = (self.writer.types.get(writer_name), self.reader.types.get(reader_name))
        else {
            let undescribed = |name: &str, types: &TypeDescription| match types.types.contains_key(name) {
                true => name.to_owned(),
                false => format!("{name} (not described)"),
            };
            return Err(self.incompatible(undescribed(writer_name, self.writer), undescribed(reader_name, self.reader)));
        };
        match (writer, reader) {
            (Container::Unit, Container::Unit) => Ok(()),
            (Container::Newtype(writer), Container::Newtype(reader)) => {
                self.at(format_args!(".0"), |walk| walk.shape(writer, reader))
            }
            (Container::Tuple(writer), Container::Tuple(reader)) if writer.len() == reader.len() => {
                self.positions(writer, reader)
            }
            (Container::Struct(writer), Container::Struct(reader)) => self.fields(writer, reader),
            (Container::Enum(writer), Container::Enum(reader)) => {
                for variant in writer {
                    let counterpart = match self.rules {
                        Rules::Values => reader.iter().find(|other| other.name == variant.name),
                        Rules::Keys => reader.iter().find(|other| other.index == variant.index),
                    };
                    let Some(counterpart) = counterpart else {
                        if self.rules == Rules::Values {
                            continue;
                        }
                        let written = format!("{}{} (variant {})", variant.name, variant.content, variant.index);
                        return Err(self.at(format_args!("::{}", variant.name), |walk| {
                            walk.incompatible(written, format!("no variant {}", variant.index))
                        }));
                    };
                    self.at(format_args!("::{}", variant.name), |walk| {
                        if counterpart.name != variant.name {
                            let printed = |v: &super::Variant| format!("{}{} (variant {})", v.name, v.content, v.index);
                            return Err(walk.incompatible(printed(variant), printed(counterpart)));
                        }
                        walk.content(&variant.name, &variant.content, &counterpart.content)
                    })?;
                }
                Ok(())
            }
            _ => Err(self.incompatible(
                format!("{} {writer_name}", writer.keyword()),
                format!("{} {reader_name}", reader.keyword()),
            )),
        }
    }

    fn fields(&mut self, writer: &'a [Field], reader: &'a [Field]) -> Result<(), Incompatibility> {
        if self.rules == Rules::Keys {
            let names =
                |fields: &[Field]| fields.iter().map(|field| field.name.as_str()).collect::<Vec<_>>().join(", ");
            if names(writer) != names(reader) {
                return Err(self.incompatible(format!("fields {}", names(writer)), format!("fields {}", names(reader))));
            }
        }
        for field in writer {
            if let Some(counterpart) = reader.iter().find(|other| other.name == field.name) {
                self.at(format_args!(".{}", field.name), |walk| walk.shape(&field.shape, &counterpart.shape))?;
            }
        }
        Ok(())
    }

    fn content(
        &mut self,
        name: &str,
        writer: &'a VariantContent,
        reader: &'a VariantContent,
    ) -> Result<(), Incompatibility> {
        match (writer, reader) {
            (VariantContent::Unit, VariantContent::Unit) => Ok(()),
            (VariantContent::Newtype(writer), VariantContent::Newtype(reader)) => {
                self.at(format_args!(".0"), |walk| walk.shape(writer, reader))
            }
            (VariantContent::Tuple(writer), VariantContent::Tuple(reader)) if writer.len() == reader.len() => {
                self.positions(writer, reader)
            }
            (VariantContent::Struct(writer), VariantContent::Struct(reader)) => self.fields(writer, reader),
            (writer, reader) => Err(self.incompatible(format!("{name}{writer}"), format!("{name}{reader}"))),
        }
    }

    /// A shape as an error prints it: a container with its keyword (`struct Account`), anything else as Rust would.
    fn printed(&self, shape: &Shape, description: &TypeDescription) -> String {
        match shape {
            Shape::Named(name) => match description.types.get(name) {
                Some(container) => format!("{} {name}", container.keyword()),
                None => name.clone(),
            },
            shape => shape.to_string(),
        }
    }

    fn incompatible(&self, writer: String, reader: String) -> Incompatibility {
        let path = if self.path.is_empty() { "(root)".to_owned() } else { self.path.clone() };
        Incompatibility { path, writer, reader }
    }
}

/// Whether every value of integer or float shape `writer` is a value of `reader`.
fn widens(writer: &Shape, reader: &Shape) -> bool {
    fn integer(shape: &Shape) -> Option<(bool, u32)> {
        Some(match shape {
            Shape::U8 => (false, 8),
            Shape::U16 => (false, 16),
            Shape::U32 => (false, 32),
            Shape::U64 => (false, 64),
            Shape::U128 => (false, 128),
            Shape::I8 => (true, 8),
            Shape::I16 => (true, 16),
            Shape::I32 => (true, 32),
            Shape::I64 => (true, 64),
            Shape::I128 => (true, 128),
            _ => return None,
        })
    }
    match (integer(writer), integer(reader)) {
        (Some((writer_signed, writer_bits)), Some((reader_signed, reader_bits))) => {
            match (writer_signed, reader_signed) {
                (false, true) => reader_bits > writer_bits,
                (true, false) => false,
                _ => reader_bits >= writer_bits,
            }
        }
        _ => matches!((writer, reader), (Shape::F32, Shape::F64)),
    }
}

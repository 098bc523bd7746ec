//! Deriving a [`TypeDescription`] from a serde type, with no help from the type's author.
//!
//! A type's `Deserialize` knows which values exist but not what they are called on the wire (its field list
//! includes aliases), and its `Serialize` knows names and variant indexes but needs a value. So tracing has two
//! phases: `sample` makes values by driving `Deserialize` (searching depth-first for values its validation accepts),
//! and `record` serializes each sample with a serializer that writes down shapes instead of bytes. Samples are made
//! until every variant of every enum reached has been built once, plus one with options `None` and sequences empty;
//! their shapes are merged.
//!
//! Limits: a type must be one postcard can decode (no `deserialize_any`: untagged or internally tagged enums,
//! `flatten`); a validating `Deserialize` must accept one of a few candidate values (see `sample`); a generic type
//! used with two parameters has two shapes under one serde name, which is refused; an option or sequence whose content
//! no sample could hold (a validating element no candidate passes, or a type that has no finite values) is refused
//! rather than left [`Shape::Unknown`], since records holding one could not be read back.

mod record;
mod sample;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{de, ser, Serialize};

use super::{Container, Field, Shape, TypeDescription, VariantContent};
use record::Recorder;
use sample::Explorer;

/// How many runs of `Deserialize` tracing one type may take.
const MAX_RUNS: usize = 20_000;

/// Why a type could not be described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceError {
    /// What failed, naming the type (and the container or field) where it did, and what to do.
    pub(crate) message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TraceError {}

/// Describes `T`: its shape as postcard encodes it, with every struct and enum it reaches.
pub(crate) fn describe<T: Serialize + DeserializeOwned>() -> Result<TypeDescription, TraceError> {
    let type_name = std::any::type_name::<T>();
    let fail = |message: String| TraceError { message: format!("cannot describe `{type_name}`: {message}") };
    let mut explorer = Explorer::default();
    let mut recorder = Recorder::default();
    let mut runs = 0;
    // The last failure, and the last that was not just recursion going too deep: the likelier cause.
    let mut last_error = String::new();
    let mut last_cause = String::new();
    let mut minimal = false;
    loop {
        explorer.restart(minimal);
        let found = loop {
            if runs == MAX_RUNS {
                let uncovered = explorer.uncovered();
                let what = match uncovered.first() {
                    Some(variant) => format!("no value with {} found", variant_label(variant)),
                    None => "no value found".to_owned(),
                };
                return Err(fail(format!("{what} in {MAX_RUNS} tries; the last attempt failed with: {last_error}")));
            }
            runs += 1;
            let outcome = explorer.run::<T>().and_then(|sample| recorder.record(&sample));
            match outcome {
                Ok(()) => break true,
                Err(failure) if failure.fatal => return Err(fail(failure.message)),
                Err(failure) => {
                    if !failure.recursion {
                        last_cause.clone_from(&failure.message);
                    }
                    last_error = failure.message;
                }
            }
            if !explorer.backtrack() {
                break false;
            }
        };
        if !found && recorder.root.is_none() {
            return Err(fail(format!("no value of it could be made; the last attempt failed with: {last_error}")));
        }
        if minimal {
            let root = recorder.root.unwrap_or(Shape::Unknown);
            let description = TypeDescription { root, types: recorder.types };
            if let Some(path) = unknown_position(&description) {
                let cause = if last_cause.is_empty() { &last_error } else { &last_cause };
                return Err(fail(format!(
                    "no value could be made for `{path}`, so records holding one could not be read back; the last \
                     attempt failed with: {cause}"
                )));
            }
            return Ok(description);
        }
        let progress = found && explorer.succeeded();
        let uncovered = explorer.uncovered();
        if let Some(variant) = uncovered.first() {
            if !progress {
                return Err(fail(format!(
                    "{} could not be built; the last attempt failed with: {last_error}",
                    variant_label(variant)
                )));
            }
        } else {
            // Last, a sample with every option `None` and every sequence empty where it can: what a
            // `skip_serializing_if` would skip, which postcard cannot read back.
            minimal = true;
        }
    }
}

/// Where the description still has a [`Shape::Unknown`]: an option or sequence whose content no sample had.
fn unknown_position(description: &TypeDescription) -> Option<String> {
    let root = unknown_in(&description.root, String::new());
    let mut containers = description.types.iter();
    root.or_else(|| {
        containers.find_map(|(name, container)| match container {
            Container::Unit => None,
            Container::Newtype(shape) => unknown_in(shape, format!("{name}.0")),
            Container::Tuple(shapes) => unknown_in_all(shapes, name),
            Container::Struct(fields) => unknown_in_fields(fields, name),
            Container::Enum(variants) => variants.iter().find_map(|variant| {
                let path = format!("{name}::{}", variant.name);
                match &variant.content {
                    VariantContent::Unit => None,
                    VariantContent::Newtype(shape) => unknown_in(shape, format!("{path}.0")),
                    VariantContent::Tuple(shapes) => unknown_in_all(shapes, &path),
                    VariantContent::Struct(fields) => unknown_in_fields(fields, &path),
                }
            }),
        })
    })
}

fn unknown_in(shape: &Shape, path: String) -> Option<String> {
    match shape {
        Shape::Unknown if path.is_empty() => Some("(root)".to_owned()),
        Shape::Unknown => Some(path),
        Shape::Option(inner) => unknown_in(inner, path),
        Shape::Seq(element) => unknown_in(element, format!("{path}[_]")),
        Shape::Map(key, value) => {
            unknown_in(key, format!("{path}[key]")).or_else(|| unknown_in(value, format!("{path}[_]")))
        }
        Shape::Tuple(shapes) => unknown_in_all(shapes, &path),
        _ => None,
    }
}

fn unknown_in_all(shapes: &[Shape], path: &str) -> Option<String> {
    shapes.iter().enumerate().find_map(|(position, shape)| unknown_in(shape, format!("{path}.{position}")))
}

fn unknown_in_fields(fields: &[Field], path: &str) -> Option<String> {
    fields.iter().find_map(|field| unknown_in(&field.shape, format!("{path}.{}", field.name)))
}

fn variant_label(variant: &sample::Uncovered) -> String {
    match variant.listed_name {
        Some(name) => format!("variant {} (`{name}`) of enum `{}`", variant.index, variant.enum_name),
        None => format!("variant {} of enum `{}`", variant.index, variant.enum_name),
    }
}

/// Why a run failed. A fatal failure ends tracing: no other value would do better.
#[derive(Debug)]
struct Failure {
    message: String,
    fatal: bool,
    /// Whether the run failed only because a container nested too deep.
    recursion: bool,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Failure { message: message.into(), fatal: false, recursion: false }
    }

    fn fatal(message: impl Into<String>) -> Self {
        Failure { message: message.into(), fatal: true, recursion: false }
    }

    fn recursion(message: impl Into<String>) -> Self {
        Failure { message: message.into(), fatal: false, recursion: true }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl de::Error for Failure {
    fn custom<M: fmt::Display>(message: M) -> Self {
        Failure::new(message.to_string())
    }
}

impl ser::Error for Failure {
    fn custom<M: fmt::Display>(message: M) -> Self {
        Failure::new(message.to_string())
    }
}

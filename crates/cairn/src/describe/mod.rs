//! Descriptions of serde types, derived from the types themselves: what Cairn stores as a database's schema, and
//! what it uses to read records written by another version of the schema.
//!
//! - [`TypeDescription`] is the shape of one serde type as postcard encodes it: primitives, options, sequences,
//!   maps, tuples, and named structs and enums with their field and variant names.
//! - `trace` derives a description from a type (no hand-written description, no derive: it drives the type's own
//!   `Deserialize` to make sample values, then its `Serialize` to record their shapes).
//! - `value` decodes postcard bytes by a writer's description into a dynamic value, and deserializes any serde type
//!   from it by name: fields are matched by name (absent ones take their serde default, unknown ones are skipped),
//!   enum variants by name.
//! - `guided` reads and writes [`Dynamic`] values in any serde format (JSON, RON, postcard) as a description's
//!   type, without the Rust type: what tools use to take records in and write them as the program would.
//! - `compat` decides whether records written under one description can be read as another, and says where not.

mod compat;
mod dynamic;
mod guided;
mod shape;
mod trace;
mod value;

pub use dynamic::Dynamic;
pub use guided::{deserialize_dynamic, encode_dynamic, Described};
pub use shape::{Container, Field, Shape, TypeDescription, Variant, VariantContent};

pub(crate) use compat::{check_compatible, check_key_compatible, Incompatibility};
pub(crate) use trace::{describe, TraceError};
pub use value::decode_dynamic;
pub(crate) use value::{decode_as, ResolveError};

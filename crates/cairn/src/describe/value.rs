//! Reading postcard bytes written under one description as another type, by name. (Skeleton: to be written.)

use serde::de::DeserializeOwned;

use super::TypeDescription;

/// Why a record written under another description could not be read as the reader's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolveError {
    /// The bytes do not follow the writer's description (damage, or a wrong description).
    Malformed(String),
    /// The record holds an enum variant the reader's type does not have.
    UnknownVariant {
        /// Where in the value, e.g. `Account.status`.
        path: String,
        /// The enum's name.
        enum_name: String,
        /// The variant's name.
        variant: String,
    },
    /// The reader's type cannot be built from the record: a field it needs is missing and has no default, or a
    /// value does not fit (a type changed).
    Mismatch {
        /// Where in the value.
        path: String,
        /// What serde said.
        message: String,
    },
}

/// Decodes `bytes`, written with postcard under `writer`, as a `T`: struct fields and enum variants are matched by
/// name, fields `T` lacks are skipped, fields the record lacks take `T`'s serde default.
pub(crate) fn decode_as<T: DeserializeOwned>(bytes: &[u8], writer: &TypeDescription) -> Result<T, ResolveError> {
    let _ = (bytes, writer);
    todo!()
}

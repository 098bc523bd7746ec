//! Deriving a [`TypeDescription`] from a serde type. (Skeleton: to be written.)

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::TypeDescription;

/// Why a type could not be described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceError {
    /// What failed, naming the type (and the container or field) where it did, and what to do.
    pub(crate) message: String,
}

/// Describes `T`: its shape as postcard encodes it, with every struct and enum it reaches.
pub(crate) fn describe<T: Serialize + DeserializeOwned>() -> Result<TypeDescription, TraceError> {
    todo!()
}

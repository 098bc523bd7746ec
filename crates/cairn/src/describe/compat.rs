//! Whether records written under one description can be read as another. (Skeleton: to be written.)

use super::TypeDescription;

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

/// Checks that values written under `writer` can be read as `reader` by name (see docs/schema-evolution.md).
pub(crate) fn check_compatible(writer: &TypeDescription, reader: &TypeDescription) -> Result<(), Incompatibility> {
    let _ = (writer, reader);
    todo!()
}

/// Checks that keys written under `writer` encode exactly as the same keys do under `reader` (keys are compared as
/// bytes on disk, so a key's encoding may not change).
pub(crate) fn check_key_compatible(writer: &TypeDescription, reader: &TypeDescription) -> Result<(), Incompatibility> {
    let _ = (writer, reader);
    todo!()
}

//! Reading and writing [`Dynamic`] values in any serde format, guided by a [`TypeDescription`]: what lets a tool
//! that has no Rust types take records in as JSON or RON and write them as postcard exactly as the program would.
//!
//! - [`deserialize_dynamic`] reads a value of a description from any self-describing deserializer (JSON, RON). It
//!   asks for what the description says (`deserialize_struct` for a struct, `deserialize_enum` for an enum), so
//!   each format's own syntax for structs, enums, options and tuples is accepted, and anything else is refused with
//!   the format's error (which names the line and column) and the path in the value.
//! - [`Described`] serializes a [`Dynamic`] value as the description's type: the same calls a derived `Serialize` of
//!   that type would make, with its struct, field and variant names. Into postcard it writes the record's bytes;
//!   into RON, RON as the program's type would print.
//! - [`encode_dynamic`] is the postcard case, checked: the bytes decode back to the same value.
//!
//! serde's struct and enum calls take `&'static str` names; the names of a description are interned (each distinct
//! name is leaked once per process), which bounds the cost by the size of the schemas a process reads.

mod de;
mod ser;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

pub use de::deserialize_dynamic;
pub use ser::Described;

use super::{decode_dynamic, Dynamic, TypeDescription};

/// Encodes `value` as postcard by `description`, as the program whose type it describes would. Fails, naming the
/// place, when the value does not have the description's shape or a number does not fit its type.
pub fn encode_dynamic(value: &Dynamic, description: &TypeDescription) -> Result<Vec<u8>, String> {
    ser::take_last_error();
    let bytes = postcard::to_stdvec(&Described::new(value, description))
        .map_err(|e| ser::take_last_error().unwrap_or_else(|| e.to_string()))?;
    // The value as it reads back: what a reader of these bytes will see.
    decode_dynamic(&bytes, description)?;
    Ok(bytes)
}

/// `name` as a `&'static str`, leaked the first time it is asked for.
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(&known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// A list of names (a struct's fields, an enum's variants) as serde's struct and enum calls take it, leaked the first
/// time it is asked for.
fn intern_list<'a>(names: impl Iterator<Item = &'a str>) -> &'static [&'static str] {
    type Lists = HashMap<Vec<&'static str>, &'static [&'static str]>;
    static LISTS: Mutex<Option<Lists>> = Mutex::new(None);
    let names: Vec<&'static str> = names.map(intern).collect();
    let mut lists = LISTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lists = lists.get_or_insert_with(HashMap::new);
    if let Some(&known) = lists.get(&names) {
        return known;
    }
    let leaked: &'static [&'static str] = Box::leak(names.clone().into_boxed_slice());
    lists.insert(names, leaked);
    leaked
}

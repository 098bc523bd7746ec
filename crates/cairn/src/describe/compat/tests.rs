use std::collections::{BTreeMap, HashMap};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{check_compatible, check_key_compatible, Incompatibility};
use crate::describe::{describe, Shape, TypeDescription};

fn described<T: Serialize + DeserializeOwned>() -> TypeDescription {
    describe::<T>().unwrap_or_else(|e| panic!("{e}"))
}

fn values<W, R>() -> Result<(), Incompatibility>
where
    W: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    check_compatible(&described::<W>(), &described::<R>())
}

fn keys<W, R>() -> Result<(), Incompatibility>
where
    W: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    check_key_compatible(&described::<W>(), &described::<R>())
}

fn incompatible(path: &str, writer: &str, reader: &str) -> Result<(), Incompatibility> {
    Err(Incompatibility { path: path.to_owned(), writer: writer.to_owned(), reader: reader.to_owned() })
}

mod v1 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub(super) struct Account {
        pub(super) id: u32,
        pub(super) name: String,
        pub(super) age: i32,
        pub(super) legacy: bool,
        pub(super) tags: Vec<i32>,
        pub(super) scores: HashMap<String, u8>,
        pub(super) address: Address,
        pub(super) status: Status,
        pub(super) parent: Option<Box<Account>>,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct Address {
        pub(super) city: String,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) enum Status {
        Open,
        Closed(String),
        Gone,
    }
}

/// v1 evolved in every way reading by name allows.
mod v2 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub(super) struct Account {
        pub(super) status: Status,
        pub(super) id: u64,
        pub(super) full_name: String,
        pub(super) age: Option<i64>,
        pub(super) tags: Vec<i128>,
        pub(super) scores: BTreeMap<String, u16>,
        #[serde(rename = "address")]
        pub(super) home: Place,
        pub(super) parent: Option<Box<Account>>,
        pub(super) email: Option<String>,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct Place {
        pub(super) city: String,
        pub(super) zip: u32,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) enum Status {
        Open,
        Frozen { until: u64 },
        Closed(String),
    }
}

#[test]
fn evolution_by_name_is_compatible_both_ways() {
    assert_eq!(values::<v1::Account, v1::Account>(), Ok(()));
    assert_eq!(values::<v1::Account, v2::Account>(), Ok(()));
    assert_eq!(values::<v2::Account, v2::Account>(), Ok(()));
}

/// Versions of `Account` that v1 records cannot be read as, one change each.
mod broken {
    use super::*;

    macro_rules! account {
        ($module:ident { $($field:ident: $ty:ty),* }) => {
            pub(in super::super) mod $module {
                use super::*;

                #[derive(Serialize, Deserialize)]
                pub(in super::super) struct Account {
                    $(pub(in super::super) $field: $ty,)*
                }
            }
        };
    }

    account!(text_age { age: String });
    account!(narrow_age { age: i16 });
    account!(text_tags { tags: Vec<String> });
    account!(number_keys { scores: HashMap<u8, u8> });
    account!(unsigned_age { age: u64 });
    account!(address_city { address: Address });
    account!(status_kind { status: Status });
    account!(status_content { status: ClosedNumber });
    account!(status_struct { status: Address });

    #[derive(Serialize, Deserialize)]
    pub(super) struct Address {
        pub(super) city: u32,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) enum Status {
        Closed { reason: String },
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "Status")]
    pub(super) enum ClosedNumber {
        Closed(u32),
    }
}

#[test]
fn a_changed_type_is_reported_with_its_path_and_both_shapes() {
    assert_eq!(values::<v1::Account, broken::text_age::Account>(), incompatible("Account.age", "i32", "String"));
    assert_eq!(values::<v1::Account, broken::narrow_age::Account>(), incompatible("Account.age", "i32", "i16"));
    assert_eq!(values::<v1::Account, broken::unsigned_age::Account>(), incompatible("Account.age", "i32", "u64"));
    assert_eq!(values::<v1::Account, broken::text_tags::Account>(), incompatible("Account.tags[_]", "i32", "String"));
    assert_eq!(
        values::<v1::Account, broken::number_keys::Account>(),
        incompatible("Account.scores[key]", "String", "u8")
    );
    assert_eq!(
        values::<v1::Account, broken::address_city::Account>(),
        incompatible("Account.address.city", "String", "u32")
    );
    assert_eq!(
        values::<v1::Account, broken::status_kind::Account>(),
        incompatible("Account.status::Closed", "Closed(String)", "Closed { reason: String }")
    );
    assert_eq!(
        values::<v1::Account, broken::status_content::Account>(),
        incompatible("Account.status::Closed.0", "String", "u32")
    );
    assert_eq!(
        values::<v1::Account, broken::status_struct::Account>(),
        incompatible("Account.status", "enum Status", "struct Address")
    );
}

#[test]
fn integers_widen_only_to_types_that_hold_every_value() {
    assert_eq!(values::<u8, u16>(), Ok(()));
    assert_eq!(values::<u8, i16>(), Ok(()));
    assert_eq!(values::<u32, i64>(), Ok(()));
    assert_eq!(values::<u64, u128>(), Ok(()));
    assert_eq!(values::<i8, i128>(), Ok(()));
    assert_eq!(values::<f32, f64>(), Ok(()));
    assert_eq!(values::<u32, i32>(), incompatible("(root)", "u32", "i32"));
    assert_eq!(values::<i8, u64>(), incompatible("(root)", "i8", "u64"));
    assert_eq!(values::<u64, u32>(), incompatible("(root)", "u64", "u32"));
    assert_eq!(values::<f64, f32>(), incompatible("(root)", "f64", "f32"));
    assert_eq!(values::<i32, f64>(), incompatible("(root)", "i32", "f64"));
}

#[test]
fn options_sequences_and_tuples() {
    assert_eq!(values::<u64, Option<u64>>(), Ok(()));
    assert_eq!(values::<Option<u8>, Option<u32>>(), Ok(()));
    assert_eq!(values::<Option<u64>, u64>(), incompatible("(root)", "Option<u64>", "u64"));
    assert_eq!(values::<Vec<u8>, Option<Vec<u16>>>(), Ok(()));
    assert_eq!(values::<(u8, String), (u16, String)>(), Ok(()));
    assert_eq!(values::<(u8, String), (u8, String, u8)>(), incompatible("(root)", "(u8, String)", "(u8, String, u8)"));
    assert_eq!(values::<(u8, String), (u8, bool)>(), incompatible(".1", "String", "bool"));
    assert_eq!(
        values::<Vec<String>, HashMap<String, String>>(),
        incompatible("(root)", "Vec<String>", "Map<String, String>")
    );
}

#[derive(Serialize, Deserialize)]
struct Node {
    value: u32,
    children: Vec<Node>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "Node")]
struct WideNode {
    value: u64,
    children: Vec<WideNode>,
}

#[derive(Serialize, Deserialize)]
struct Tree {
    value: u64,
    children: Vec<Tree>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "Node")]
struct TextNode {
    value: String,
    children: Vec<TextNode>,
}

#[test]
fn recursive_and_renamed_types() {
    assert_eq!(values::<Node, WideNode>(), Ok(()));
    assert_eq!(values::<Node, Tree>(), Ok(()));
    assert_eq!(values::<Node, TextNode>(), incompatible("Node.value", "u32", "String"));
}

#[test]
fn unknown_shapes_are_compatible_with_anything() {
    let unknown = TypeDescription { root: Shape::Seq(Box::new(Shape::Unknown)), types: BTreeMap::new() };
    assert_eq!(check_compatible(&unknown, &described::<Vec<String>>()), Ok(()));
    assert_eq!(check_compatible(&described::<Vec<String>>(), &unknown), Ok(()));
    assert_eq!(check_key_compatible(&unknown, &described::<Vec<String>>()), Ok(()));
}

mod kinds {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub(super) enum Old {
        A,
        B(u32),
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "Old")]
    pub(super) enum Appended {
        A,
        B(u32),
        C,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "Old")]
    pub(super) enum Inserted {
        A,
        C,
        B(u32),
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct Key {
        pub(super) tenant: u32,
        pub(super) id: String,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "Other")]
    pub(super) struct SameEncoding {
        pub(super) tenant: u32,
        pub(super) id: String,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "Key")]
    pub(super) struct Renamed {
        pub(super) tenant: u32,
        pub(super) name: String,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "Key")]
    pub(super) struct Wider {
        pub(super) tenant: u64,
        pub(super) id: String,
    }
}

#[test]
fn keys_must_encode_the_same() {
    assert_eq!(keys::<String, String>(), Ok(()));
    assert_eq!(keys::<u64, u64>(), Ok(()));
    assert_eq!(keys::<u32, u64>(), incompatible("(root)", "u32", "u64"));
    assert_eq!(keys::<u32, Option<u32>>(), incompatible("(root)", "u32", "Option<u32>"));
    assert_eq!(keys::<kinds::Key, kinds::SameEncoding>(), Ok(()));
    assert_eq!(keys::<kinds::Key, kinds::Renamed>(), incompatible("Key", "fields tenant, id", "fields tenant, name"));
    assert_eq!(keys::<kinds::Key, kinds::Wider>(), incompatible("Key.tenant", "u32", "u64"));
    // Values may widen where keys may not.
    assert_eq!(values::<kinds::Key, kinds::Wider>(), Ok(()));
}

#[test]
fn key_enums_may_only_gain_variants_at_the_end() {
    assert_eq!(keys::<kinds::Old, kinds::Appended>(), Ok(()));
    assert_eq!(keys::<kinds::Appended, kinds::Old>(), incompatible("Old::C", "C (variant 2)", "no variant 2"));
    assert_eq!(keys::<kinds::Old, kinds::Inserted>(), incompatible("Old::B", "B(u32) (variant 1)", "C (variant 1)"));
    // Read by name, the order of variants does not matter.
    assert_eq!(values::<kinds::Old, kinds::Inserted>(), Ok(()));
}

#[test]
fn incompatibilities_and_descriptions_print_readably() {
    let error = values::<v1::Account, broken::text_age::Account>().unwrap_err();
    assert_eq!(error.to_string(), "at `Account.age`: written as `i32`, cannot be read as `String`");
    let description = described::<(Option<u64>, Vec<kinds::Old>, HashMap<String, (u8, char)>, uuid::Uuid)>();
    assert_eq!(
        description.to_string(),
        "(Option<u64>, Vec<Old>, Map<String, (u8, char)>, Bytes)\nenum Old { A, B(u32) }"
    );
}

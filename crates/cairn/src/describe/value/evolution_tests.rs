//! Records written by one version of a type, read as another.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{decode_as, ResolveError};
use crate::describe::describe;

mod v1 {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) struct Account {
        pub(super) id: u32,
        pub(super) name: String,
        pub(super) age: i32,
        pub(super) legacy: bool,
        pub(super) nick: String,
        pub(super) address: Address,
        pub(super) status: Status,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) struct Address {
        pub(super) street: String,
        pub(super) city: String,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) enum Status {
        Open,
        Closed(String),
    }
}

mod v2 {
    use serde::{Deserialize, Serialize};

    /// v1 with: fields reordered, `name` renamed (aliased), `age` widened, `nick` made optional, `legacy` removed,
    /// `email` added with a default, and a variant added to `Status`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) struct Account {
        pub(super) address: Address,
        pub(super) id: u32,
        #[serde(alias = "name")]
        pub(super) full_name: String,
        pub(super) age: i64,
        pub(super) nick: Option<String>,
        #[serde(default)]
        pub(super) email: String,
        pub(super) status: Status,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) struct Address {
        pub(super) city: String,
        pub(super) street: String,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) enum Status {
        Open,
        Frozen { until: u64 },
        Closed(String),
    }
}

/// Types that a v1 record cannot become.
mod broken {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    pub(super) struct Account {
        pub(super) id: u32,
        pub(super) phone: String,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename = "Account")]
    pub(super) struct TextAge {
        pub(super) age: String,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename = "Account")]
    pub(super) struct WithAddress {
        pub(super) address: Address,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub(super) struct Address {
        pub(super) city: u32,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub(super) enum Status {
        Open,
        Closed(u32),
    }
}

/// `value` written under `W`'s description, read as `R`.
fn read_as<W: Serialize + DeserializeOwned, R: DeserializeOwned>(value: &W) -> Result<R, ResolveError> {
    let writer = describe::<W>().unwrap_or_else(|e| panic!("{e}"));
    decode_as::<R>(&postcard::to_allocvec(value).unwrap(), &writer)
}

fn old_account(status: v1::Status) -> v1::Account {
    v1::Account {
        id: 7,
        name: "Ada".to_owned(),
        age: -3,
        legacy: true,
        nick: "ada".to_owned(),
        address: v1::Address { street: "Main".to_owned(), city: "Paris".to_owned() },
        status,
    }
}

#[test]
fn v1_records_read_as_v2() {
    let read: v2::Account = read_as(&old_account(v1::Status::Closed("moved".to_owned()))).unwrap();
    assert_eq!(
        read,
        v2::Account {
            address: v2::Address { city: "Paris".to_owned(), street: "Main".to_owned() },
            id: 7,
            full_name: "Ada".to_owned(),
            age: -3,
            nick: Some("ada".to_owned()),
            email: String::new(),
            status: v2::Status::Closed("moved".to_owned()),
        }
    );
    let read: v2::Account = read_as(&old_account(v1::Status::Open)).unwrap();
    assert_eq!(read.status, v2::Status::Open);
}

#[test]
fn a_new_variant_read_by_the_old_type_is_named() {
    let new = v2::Account {
        address: v2::Address { city: "Oslo".to_owned(), street: "Ring".to_owned() },
        id: 1,
        full_name: "Bo".to_owned(),
        age: 40,
        nick: None,
        email: "bo@example.com".to_owned(),
        status: v2::Status::Frozen { until: 9 },
    };
    // v2 has no `name` (only its alias), so v1 cannot read it either way; the variant is what is tested here.
    let error = read_as::<v2::Status, v1::Status>(&new.status).unwrap_err();
    assert_eq!(
        error,
        ResolveError::UnknownVariant {
            path: "Status".to_owned(),
            enum_name: "Status".to_owned(),
            variant: "Frozen".to_owned()
        }
    );
    let error = read_as::<Vec<v2::Status>, Vec<v1::Status>>(&vec![v2::Status::Open, new.status]).unwrap_err();
    assert_eq!(
        error,
        ResolveError::UnknownVariant {
            path: "[1]".to_owned(),
            enum_name: "Status".to_owned(),
            variant: "Frozen".to_owned()
        }
    );
    assert_eq!(read_as::<v2::Status, v1::Status>(&v2::Status::Open), Ok(v1::Status::Open));
}

#[test]
fn a_missing_field_without_default_is_a_mismatch_naming_it() {
    let error = read_as::<v1::Account, broken::Account>(&old_account(v1::Status::Open)).unwrap_err();
    assert_eq!(
        error,
        ResolveError::Mismatch { path: "Account".to_owned(), message: "missing field `phone`".to_owned() }
    );
}

#[test]
fn a_changed_type_is_a_mismatch_with_its_path() {
    let error = read_as::<v1::Account, broken::TextAge>(&old_account(v1::Status::Open)).unwrap_err();
    assert_eq!(
        error,
        ResolveError::Mismatch {
            path: "Account.age".to_owned(),
            message: "invalid type: integer `-3`, expected a string".to_owned()
        }
    );
    let error = read_as::<v1::Account, broken::WithAddress>(&old_account(v1::Status::Open)).unwrap_err();
    assert!(matches!(&error, ResolveError::Mismatch { path, .. } if path == "Account.address.city"), "{error:?}");
    let error = read_as::<v1::Status, broken::Status>(&v1::Status::Closed("x".to_owned())).unwrap_err();
    assert!(matches!(&error, ResolveError::Mismatch { path, .. } if path == "Status::Closed.0"), "{error:?}");
}

#[test]
fn integers_widen_and_narrow_with_range_checks() {
    assert_eq!(read_as::<i32, i64>(&-5), Ok(-5));
    assert_eq!(read_as::<u8, u64>(&200), Ok(200));
    assert_eq!(read_as::<u16, i32>(&65_535), Ok(65_535));
    assert_eq!(read_as::<f32, f64>(&1.5), Ok(1.5));
    assert_eq!(read_as::<i64, i32>(&-7), Ok(-7));
    let error = read_as::<Vec<i64>, Vec<i32>>(&vec![0, 1, 2, 1 << 40]).unwrap_err();
    assert!(
        matches!(&error, ResolveError::Mismatch { path, message } if path == "[3]" && message.contains("invalid value")),
        "{error:?}"
    );
    assert_eq!(read_as::<u128, u8>(&255), Ok(255));
    assert_eq!(read_as::<i128, i128>(&i128::MIN), Ok(i128::MIN));
}

#[test]
fn a_value_becomes_an_option() {
    assert_eq!(read_as::<u32, Option<u64>>(&3), Ok(Some(3)));
    assert_eq!(read_as::<(String, u8), (Option<String>, u8)>(&("a".to_owned(), 1)), Ok((Some("a".to_owned()), 1)));
}

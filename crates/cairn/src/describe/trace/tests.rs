use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use super::describe;
use crate::describe::{Container, Field, Shape, TypeDescription, Variant, VariantContent};

fn named(name: &str) -> Shape {
    Shape::Named(name.to_owned())
}

fn field(name: &str, shape: Shape) -> Field {
    Field { name: name.to_owned(), shape }
}

fn variant(index: u32, name: &str, content: VariantContent) -> Variant {
    Variant { index, name: name.to_owned(), content }
}

fn boxed(shape: Shape) -> Box<Shape> {
    Box::new(shape)
}

fn primitive(root: Shape) -> TypeDescription {
    TypeDescription { root, types: BTreeMap::new() }
}

/// The description printed, one container per line: compact to assert.
fn printed<T: Serialize + serde::de::DeserializeOwned>() -> String {
    describe::<T>().unwrap_or_else(|e| panic!("{e}")).to_string()
}

#[test]
fn primitives_and_std_types() {
    assert_eq!(describe::<u64>(), Ok(primitive(Shape::U64)));
    assert_eq!(describe::<String>(), Ok(primitive(Shape::Str)));
    assert_eq!(describe::<()>(), Ok(primitive(Shape::Unit)));
    assert_eq!(describe::<i8>(), Ok(primitive(Shape::I8)));
    assert_eq!(describe::<char>(), Ok(primitive(Shape::Char)));
    assert_eq!(describe::<f32>(), Ok(primitive(Shape::F32)));
    assert_eq!(describe::<(u8, bool, i128)>(), Ok(primitive(Shape::Tuple(vec![Shape::U8, Shape::Bool, Shape::I128]))));
    assert_eq!(describe::<[u16; 3]>(), Ok(primitive(Shape::Tuple(vec![Shape::U16; 3]))));
    assert_eq!(describe::<Vec<String>>(), Ok(primitive(Shape::Seq(boxed(Shape::Str)))));
    assert_eq!(describe::<Option<u32>>(), Ok(primitive(Shape::Option(boxed(Shape::U32)))));
    assert_eq!(describe::<HashMap<String, i64>>(), Ok(primitive(Shape::Map(boxed(Shape::Str), boxed(Shape::I64)))));
    assert_eq!(
        describe::<BTreeMap<u64, Vec<u8>>>(),
        Ok(primitive(Shape::Map(boxed(Shape::U64), boxed(Shape::Seq(boxed(Shape::U8))))))
    );
    assert_eq!(describe::<NonZeroU32>(), Ok(primitive(Shape::U32)));
    assert_eq!(describe::<uuid::Uuid>(), Ok(primitive(Shape::Bytes)));
}

#[derive(Serialize, Deserialize)]
struct Address {
    street: String,
    city: String,
}

#[derive(Serialize, Deserialize)]
struct Account {
    id: uuid::Uuid,
    owner: Option<String>,
    address: Address,
    balances: Vec<(u32, i64)>,
    status: Status,
}

#[derive(Serialize, Deserialize)]
enum Status {
    Open,
    Frozen(String),
    Limited(u32, u32),
    Closed { at: u64, reason: Option<Reason> },
}

#[derive(Serialize, Deserialize)]
struct Reason(String);

#[test]
fn nested_structs_and_every_kind_of_variant() {
    let description = describe::<Account>().unwrap();
    let mut types = BTreeMap::new();
    types.insert(
        "Account".to_owned(),
        Container::Struct(vec![
            field("id", Shape::Bytes),
            field("owner", Shape::Option(boxed(Shape::Str))),
            field("address", named("Address")),
            field("balances", Shape::Seq(boxed(Shape::Tuple(vec![Shape::U32, Shape::I64])))),
            field("status", named("Status")),
        ]),
    );
    types.insert("Address".to_owned(), Container::Struct(vec![field("street", Shape::Str), field("city", Shape::Str)]));
    types.insert(
        "Status".to_owned(),
        Container::Enum(vec![
            variant(0, "Open", VariantContent::Unit),
            variant(1, "Frozen", VariantContent::Newtype(Shape::Str)),
            variant(2, "Limited", VariantContent::Tuple(vec![Shape::U32, Shape::U32])),
            variant(
                3,
                "Closed",
                VariantContent::Struct(vec![
                    field("at", Shape::U64),
                    field("reason", Shape::Option(boxed(named("Reason")))),
                ]),
            ),
        ]),
    );
    types.insert("Reason".to_owned(), Container::Newtype(Shape::Str));
    assert_eq!(description, TypeDescription { root: named("Account"), types });
}

#[test]
fn display_is_rust_like() {
    assert_eq!(
        printed::<Account>(),
        "Account\n\
         struct Account { id: Bytes, owner: Option<String>, address: Address, balances: Vec<(u32, i64)>, status: Status }\n\
         struct Address { street: String, city: String }\n\
         struct Reason(String)\n\
         enum Status { Open, Frozen(String), Limited(u32, u32), Closed { at: u64, reason: Option<Reason> } }"
    );
}

#[derive(Serialize, Deserialize)]
struct Node {
    value: i32,
    children: Vec<Node>,
}

#[derive(Serialize, Deserialize)]
enum Expr {
    Lit(i64),
    Add(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
}

#[derive(Serialize, Deserialize)]
struct List {
    head: u8,
    tail: Option<Box<List>>,
}

#[derive(Serialize, Deserialize)]
struct Forest(Vec<Forest>);

#[test]
fn recursive_types() {
    assert_eq!(printed::<Node>(), "Node\nstruct Node { value: i32, children: Vec<Node> }");
    assert_eq!(printed::<Expr>(), "Expr\nenum Expr { Lit(i64), Add(Expr, Expr), Neg(Expr) }");
    assert_eq!(printed::<List>(), "List\nstruct List { head: u8, tail: Option<List> }");
    assert_eq!(printed::<Forest>(), "Forest\nstruct Forest(Vec<Forest>)");
}

#[derive(Serialize, Deserialize)]
struct Renamed {
    #[serde(alias = "identifier", alias = "key")]
    id: u64,
    #[serde(rename = "label", alias = "title")]
    name: String,
}

#[derive(Serialize, Deserialize)]
enum Aliased {
    #[serde(alias = "Old")]
    New,
    Other(u8),
}

#[test]
fn aliases_do_not_become_fields_or_variants() {
    assert_eq!(printed::<Renamed>(), "Renamed\nstruct Renamed { id: u64, label: String }");
    assert_eq!(printed::<Aliased>(), "Aliased\nenum Aliased { New, Other(u8) }");
}

/// Accepts only strings that look like a date, `YYYY-MM-DD`.
#[derive(Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[derive(Clone)]
struct Date(String);

impl TryFrom<String> for Date {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match text.split('-').collect::<Vec<_>>()[..] {
            [y, m, d] if text.len() == 10 && digits(y) && digits(m) && digits(d) => Ok(Date(text)),
            _ => Err(format!("not a date: {text:?}")),
        }
    }
}

impl From<Date> for String {
    fn from(date: Date) -> String {
        date.0
    }
}

#[derive(Serialize, Deserialize)]
struct Event {
    on: Date,
    ids: Vec<uuid::Uuid>,
    count: NonZeroU32,
}

#[test]
fn validating_types_get_values_they_accept() {
    assert_eq!(printed::<Event>(), "Event\nstruct Event { on: String, ids: Vec<Bytes>, count: u32 }");
}

#[derive(Serialize, Deserialize)]
struct Marker;

#[derive(Serialize, Deserialize)]
struct Pair(u8, Marker);

#[derive(Serialize, Deserialize)]
struct Empty {}

#[test]
fn unit_and_tuple_structs() {
    assert_eq!(printed::<Pair>(), "Pair\nstruct Marker\nstruct Pair(u8, Marker)");
    assert_eq!(printed::<Empty>(), "Empty\nstruct Empty {}");
}

#[derive(Serialize, Deserialize)]
enum Big {
    A,
    B,
    C(Small),
    D,
    E { inner: Small },
}

#[derive(Serialize, Deserialize)]
enum Small {
    X,
    Y(bool),
}

#[test]
fn every_variant_of_nested_enums_is_found() {
    assert_eq!(
        printed::<Vec<Big>>(),
        "Vec<Big>\nenum Big { A, B, C(Small), D, E { inner: Small } }\nenum Small { X, Y(bool) }"
    );
}

#[derive(Serialize, Deserialize)]
enum Never {}

#[derive(Serialize, Deserialize)]
enum HalfBuildable {
    Fine(u8),
    Impossible(Never),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    A(u8),
    B(String),
}

#[derive(Serialize, Deserialize)]
struct Skips {
    #[serde(skip_serializing_if = "Option::is_none")]
    maybe: Option<u8>,
}

#[derive(Serialize, Deserialize)]
struct Generic<T> {
    value: T,
}

#[derive(Serialize, Deserialize)]
struct TwoGenerics {
    a: Generic<u8>,
    b: Generic<String>,
}

#[test]
fn what_cannot_be_described_is_refused_with_a_reason() {
    let error = describe::<HalfBuildable>().unwrap_err().message;
    assert!(error.contains("variant 1 (`Impossible`) of enum `HalfBuildable` could not be built"), "{error}");
    let error = describe::<Untagged>().unwrap_err().message;
    assert!(error.contains("deserialize_any"), "{error}");
    let error = describe::<Skips>().unwrap_err().message;
    assert!(error.contains("skips field `maybe`"), "{error}");
    let error = describe::<TwoGenerics>().unwrap_err().message;
    assert!(error.contains("both named `Generic`"), "{error}");
    assert!(error.contains("struct Generic { value: u8 }"), "{error}");
    let error = describe::<Never>().unwrap_err().message;
    assert!(error.contains("Never"), "{error}");
}

#[derive(Serialize, Deserialize)]
enum Top {
    A,
    B(Inner),
}

#[derive(Serialize, Deserialize)]
enum Inner {
    X,
    Y,
}

#[test]
fn covered_variants_that_lead_to_uncovered_ones_are_taken_again() {
    // Once `Top::B(Inner::X)` is built, every variant of `Top` is covered; `B` must still be chosen over `A` to reach
    // `Inner::Y`.
    assert_eq!(printed::<Top>(), "Top\nenum Inner { X, Y }\nenum Top { A, B(Inner) }");
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WithOther {
    First(u8),
    SecondOne,
    #[serde(other)]
    Unrecognised,
}

#[test]
fn serde_attributes_on_variants() {
    assert_eq!(printed::<WithOther>(), "WithOther\nenum WithOther { first(u8), second_one, unrecognised }");
}

#[derive(Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[derive(Clone)]
struct Hostname(String);

impl TryFrom<String> for Hostname {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.contains('.') {
            true => Ok(Hostname(text)),
            false => Err(format!("not a host name: {text:?}")),
        }
    }
}

impl From<Hostname> for String {
    fn from(host: Hostname) -> String {
        host.0
    }
}

#[test]
fn a_validator_no_candidate_satisfies_is_reported() {
    let error = describe::<Vec<Hostname>>().unwrap_err().message;
    assert!(error.contains("Hostname"), "{error}");
    assert!(error.contains("no value could be made for `[_]`"), "{error}");
    assert!(error.contains("the last attempt failed with: not a host name: \"a\""), "{error}");
    let error = describe::<Hostname>().unwrap_err().message;
    assert!(error.contains("no value of it could be made; the last attempt failed with: not a host name"), "{error}");
}

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{deserialize_dynamic, encode_dynamic, Described};
use crate::describe::{decode_dynamic, describe, Dynamic, TypeDescription};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Plan {
    Free,
    Team { seats: u32 },
    Pair(u8, i64),
    Wrapped(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meters(f64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Account {
    name: String,
    plan: Plan,
    tags: Vec<String>,
    note: Option<String>,
    avatar: Vec<u8>,
    hash: [u8; 4],
    height: Meters,
    scores: BTreeMap<u32, i16>,
    initial: char,
    pair: (bool, u64),
}

fn sample() -> Vec<Account> {
    let base = Account {
        name: "Ada".into(),
        plan: Plan::Free,
        tags: vec!["a".into(), "b".into()],
        note: None,
        avatar: vec![0, 1, 255],
        hash: [9, 8, 7, 6],
        height: Meters(1.75),
        scores: [(1, -3), (700, 12)].into_iter().collect(),
        initial: 'é',
        pair: (true, u64::MAX),
    };
    vec![
        base.clone(),
        Account { plan: Plan::Team { seats: 5 }, note: Some("hi".into()), ..base.clone() },
        Account { plan: Plan::Pair(3, -9), tags: vec![], avatar: vec![], ..base.clone() },
        Account { plan: Plan::Wrapped("w".into()), ..base },
    ]
}

fn description<T: Serialize + DeserializeOwned>() -> TypeDescription {
    describe::<T>().unwrap_or_else(|e| panic!("{e}"))
}

/// Each value through postcard, then decoded without its type, written as text by the description, read back by it
/// and encoded again: the bytes the program wrote, and the value the program reads.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    values: &[T],
    to_text: impl Fn(&Described<'_>) -> String,
    from_text: impl Fn(&str, &TypeDescription) -> Result<Dynamic, String>,
) {
    let d = description::<T>();
    for value in values {
        let bytes = postcard::to_stdvec(value).unwrap();
        let dynamic = decode_dynamic(&bytes, &d).unwrap();
        let text = to_text(&Described::new(&dynamic, &d));
        let read = from_text(&text, &d).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(read, dynamic, "{text}");
        assert_eq!(encode_dynamic(&read, &d).unwrap(), bytes, "{text}");
        assert_eq!(&postcard::from_bytes::<T>(&encode_dynamic(&read, &d).unwrap()).unwrap(), value);
    }
}

fn json(text: &str, d: &TypeDescription) -> Result<Dynamic, String> {
    deserialize_dynamic(&mut serde_json::Deserializer::from_str(text), d).map_err(|e| e.to_string())
}

fn ron_text(text: &str, d: &TypeDescription) -> Result<Dynamic, String> {
    let mut de = ron::Deserializer::from_str(text).map_err(|e| e.to_string())?;
    deserialize_dynamic(&mut de, d).map_err(|e| e.to_string())
}

#[test]
fn json_round_trips_every_shape_to_the_programs_bytes() {
    round_trip(&sample(), |v| serde_json::to_string(v).unwrap(), json);
}

#[test]
fn ron_round_trips_every_shape_to_the_programs_bytes() {
    round_trip(&sample(), |v| ron::to_string(v).unwrap(), ron_text);
}

#[test]
fn ron_written_by_the_description_is_ron_as_the_program_would_write_it() {
    let d = description::<Account>();
    for value in sample() {
        let dynamic = decode_dynamic(&postcard::to_stdvec(&value).unwrap(), &d).unwrap();
        assert_eq!(ron::to_string(&Described::new(&dynamic, &d)).unwrap(), ron::to_string(&value).unwrap());
    }
}

#[test]
fn the_plain_json_form_of_a_dynamic_value_reads_back() {
    // What `cairn dump` prints (Dynamic's own Serialize) is what `cairn load` takes.
    round_trip(&sample(), |v| serde_json::to_string(&json_of(v)).unwrap(), json);
}

fn json_of(v: &Described<'_>) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn an_option_field_may_be_left_out_and_others_may_not() {
    let d = description::<Account>();
    let full = serde_json::to_value(&sample()[0]).unwrap();
    let mut without_note = full.clone();
    without_note.as_object_mut().unwrap().remove("note");
    let read = json(&without_note.to_string(), &d).unwrap();
    assert_eq!(encode_dynamic(&read, &d).unwrap(), postcard::to_stdvec(&sample()[0]).unwrap());
    let mut without_name = full;
    without_name.as_object_mut().unwrap().remove("name");
    let e = json(&without_name.to_string(), &d).unwrap_err();
    assert!(e.contains("missing field `name`"), "{e}");
}

#[test]
fn errors_name_the_place_and_what_was_expected() {
    let d = description::<Account>();
    let mut v = serde_json::to_value(&sample()[1]).unwrap();
    v["plan"]["Team"]["seats"] = serde_json::json!("five");
    let e = json(&v.to_string(), &d).unwrap_err();
    assert!(e.contains("u32 at `Account.plan::Team.seats`"), "{e}");
    assert!(e.contains("line 1"), "the format's position is kept: {e}");

    v["plan"] = serde_json::json!({"Team": {"seats": 5_000_000_000u64}});
    let e = json(&v.to_string(), &d).unwrap_err();
    assert!(e.contains("5000000000 does not fit in u32"), "{e}");

    v["plan"] = serde_json::json!("Gold");
    let e = json(&v.to_string(), &d).unwrap_err();
    assert!(e.contains("no variant `Gold`") && e.contains("Free, Team, Pair, Wrapped"), "{e}");

    v["plan"] = serde_json::json!("Free");
    v["colour"] = serde_json::json!(1);
    let e = json(&v.to_string(), &d).unwrap_err();
    assert!(e.contains("no field `colour`"), "{e}");

    let e = json(r#"{"name": "x", "plan": "Free", "tags": [1]}"#, &d).unwrap_err();
    assert!(e.contains("String at `Account.tags[0]`"), "{e}");
}

#[test]
fn a_value_of_the_wrong_shape_does_not_encode() {
    let d = description::<Account>();
    let e = encode_dynamic(&Dynamic::Str("x".into()), &d).unwrap_err();
    assert!(e.contains("expected struct Account, found a string"), "{e}");
    let e = encode_dynamic(&Dynamic::U64(300), &description::<u8>()).unwrap_err();
    assert!(e.contains("300 does not fit in u8"), "{e}");
}

#[test]
fn wide_integers_read_from_json() {
    let d = description::<(u128, i128)>();
    let read = json(&format!("[{}, {}]", u128::MAX, i128::MIN), &d).unwrap();
    assert_eq!(encode_dynamic(&read, &d).unwrap(), postcard::to_stdvec(&(u128::MAX, i128::MIN)).unwrap());
}

#[test]
fn hostile_nesting_is_refused_without_overflowing_the_stack() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Tree(Vec<Tree>);
    let d = description::<Tree>();
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(json(&deep, &d).is_err());
}

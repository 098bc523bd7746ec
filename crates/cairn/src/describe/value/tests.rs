use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{decode_as, ResolveError};
use crate::describe::{describe, Shape, TypeDescription};

fn described<T: Serialize + DeserializeOwned>() -> TypeDescription {
    describe::<T>().unwrap_or_else(|e| panic!("{e}"))
}

/// `value` encoded by postcard, decoded by `decode_as` under its own description.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(values: &[T]) {
    let description = described::<T>();
    for value in values {
        let bytes = postcard::to_allocvec(value).unwrap();
        assert_eq!(&decode_as::<T>(&bytes, &description).unwrap(), value, "{bytes:02x?}");
    }
}

#[test]
fn every_primitive_decodes_as_postcard_encodes_it() {
    round_trip(&[false, true]);
    round_trip(&[0u8, 1, 127, 128, 255]);
    round_trip(&[0i8, 1, -1, i8::MIN, i8::MAX]);
    round_trip(&[0u16, 127, 128, 16_383, 16_384, u16::MAX]);
    round_trip(&[0i16, -1, 1, -64, 64, i16::MIN, i16::MAX]);
    round_trip(&[0u32, 1, 300, u32::MAX - 1, u32::MAX]);
    round_trip(&[0i32, -1, 63, -65, i32::MIN, i32::MAX]);
    round_trip(&[0u64, 1 << 35, u64::MAX]);
    round_trip(&[0i64, -(1 << 40), i64::MIN, i64::MAX]);
    round_trip(&[0u128, u128::from(u64::MAX) + 1, u128::MAX]);
    round_trip(&[0i128, -1, i128::from(i64::MIN) - 1, i128::MIN, i128::MAX]);
    round_trip(&[0.0f32, -1.5, f32::MAX, f32::INFINITY]);
    round_trip(&[0.0f64, 1e300, f64::MIN_POSITIVE, f64::NEG_INFINITY]);
    round_trip(&['a', 'é', '中', '🦀']);
    round_trip(&[String::new(), "hello".to_owned(), "ü".repeat(200)]);
    round_trip(&[(), ()]);
    round_trip(&[uuid::Uuid::nil(), uuid::Uuid::new_v4()]);
    round_trip(&[std::num::NonZeroU32::MIN, std::num::NonZeroU32::MAX]);
    round_trip(&[None, Some(0u8), Some(7)]);
    round_trip(&[vec![], vec![1u16, 2, 300]]);
    round_trip(&[[1u8, 2, 3]]);
    round_trip(&[(1u8, "x".to_owned(), -2i64)]);
    round_trip(&[BTreeMap::from([(1u64, "a".to_owned()), (2, "b".to_owned())])]);
    round_trip(&[HashMap::from([("k".to_owned(), vec![Some(true), None])])]);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<String>,
    status: Status,
    parent: Option<Box<Record>>,
    scores: BTreeMap<String, i32>,
    shape: (u8, i16),
    unit: Marker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Marker;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Status {
    Open,
    Held(Option<u32>),
    Moved(String, i8),
    Closed { at: u64, reasons: Vec<Reason> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Reason {
    Fraud,
    Request(String),
}

fn status() -> impl Strategy<Value = Status> {
    let reason = prop_oneof![Just(Reason::Fraud), any::<String>().prop_map(Reason::Request)];
    prop_oneof![
        Just(Status::Open),
        any::<Option<u32>>().prop_map(Status::Held),
        (any::<String>(), any::<i8>()).prop_map(|(s, n)| Status::Moved(s, n)),
        (any::<u64>(), prop::collection::vec(reason, 0..3)).prop_map(|(at, reasons)| Status::Closed { at, reasons }),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    let leaf = (
        any::<u64>(),
        any::<String>(),
        prop::collection::vec(any::<String>(), 0..3),
        status(),
        prop::collection::btree_map(any::<String>(), any::<i32>(), 0..3),
        any::<(u8, i16)>(),
    )
        .prop_map(|(id, name, tags, status, scores, shape)| Record {
            id,
            name,
            tags,
            status,
            parent: None,
            scores,
            shape,
            unit: Marker,
        });
    leaf.prop_recursive(3, 8, 1, |inner| {
        (inner, any::<u64>()).prop_map(|(parent, id)| Record { id, parent: Some(Box::new(parent.clone())), ..parent })
    })
}

proptest! {
    #[test]
    fn any_record_round_trips(records in prop::collection::vec(record(), 1..4)) {
        let description = described::<Vec<Record>>();
        let bytes = postcard::to_allocvec(&records).unwrap();
        prop_assert_eq!(decode_as::<Vec<Record>>(&bytes, &description), Ok(records));
    }

    /// Damaged or random bytes are an error, never a panic; bytes of primitives decode exactly when postcard's own
    /// deserializer accepts them.
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let description = described::<Vec<Record>>();
        let _ = decode_as::<Vec<Record>>(&bytes, &description);
        agrees_with_postcard::<u16>(&bytes);
        agrees_with_postcard::<i32>(&bytes);
        agrees_with_postcard::<u64>(&bytes);
        agrees_with_postcard::<i128>(&bytes);
        agrees_with_postcard::<u128>(&bytes);
        agrees_with_postcard::<bool>(&bytes);
        agrees_with_postcard::<String>(&bytes);
        agrees_with_postcard::<Option<i16>>(&bytes);
        agrees_with_postcard::<Vec<u32>>(&bytes);
        agrees_with_postcard::<(u8, i8, f32)>(&bytes);
    }

    #[test]
    fn damaged_records_never_panic(record in record(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let description = described::<Record>();
        let mut bytes = postcard::to_allocvec(&record).unwrap();
        let at = at.index(bytes.len());
        bytes[at] = byte;
        let _ = decode_as::<Record>(&bytes, &description);
        bytes.truncate(at);
        prop_assert!(matches!(decode_as::<Record>(&bytes, &description), Err(ResolveError::Malformed(_))));
    }
}

fn agrees_with_postcard<T: Serialize + DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) {
    let ours = decode_as::<T>(bytes, &described::<T>()).ok();
    let theirs = match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Some(value),
        _ => None,
    };
    // Compared as encoded bytes, so that a NaN equals itself.
    let encode = |v: &Option<T>| postcard::to_allocvec(v).expect("a decoded value encodes");
    assert_eq!(
        encode(&ours),
        encode(&theirs),
        "{} from {bytes:02x?}: {ours:?} / {theirs:?}",
        std::any::type_name::<T>()
    );
}

#[test]
fn malformed_bytes_say_what_and_where() {
    let description = described::<Record>();
    let record = Record {
        id: 1,
        name: "n".to_owned(),
        tags: vec![],
        status: Status::Open,
        parent: None,
        scores: BTreeMap::new(),
        shape: (1, 2),
        unit: Marker,
    };
    let bytes = postcard::to_allocvec(&record).unwrap();
    let malformed = |bytes: &[u8]| match decode_as::<Record>(bytes, &description) {
        Err(ResolveError::Malformed(message)) => message,
        other => panic!("{other:?}"),
    };
    assert_eq!(malformed(&bytes[..1]), "at `Record.name`: needs 1 bytes, 0 are left");
    assert_eq!(malformed(&[&bytes[..], &[0]].concat()), "at `Record`: 1 bytes left over after the value");
    // id 1, name "n", then a tag count far beyond the bytes left.
    let huge = [1, 1, b'n', 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(malformed(&huge), "at `Record.tags`: a length of 4294967295 is more than the 0 bytes left can hold");
    // id 1, name "n", no tags, status variant 9.
    assert_eq!(
        malformed(&[1, 1, b'n', 0, 9]),
        "at `Record.status`: enum `Status` has no variant 9 in the writer's description"
    );
    // A ten-byte varint whose last byte overflows a u64.
    let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    assert_eq!(malformed(&overflow), "at `Record.id`: a varint overflows its type");
    let bad_option = [2];
    let description = TypeDescription { root: Shape::Option(Box::new(Shape::U8)), types: BTreeMap::new() };
    assert!(
        matches!(decode_as::<Option<u8>>(&bad_option, &description), Err(ResolveError::Malformed(m)) if m.contains("option's tag is 2"))
    );
}

#[test]
fn a_shape_never_seen_while_tracing_cannot_be_decoded() {
    let description = TypeDescription { root: Shape::Seq(Box::new(Shape::Unknown)), types: BTreeMap::new() };
    assert_eq!(decode_as::<Vec<u8>>(&[0], &description), Ok(vec![]));
    let error = decode_as::<Vec<u8>>(&[1, 5], &description).unwrap_err();
    assert!(
        matches!(&error, ResolveError::Malformed(m) if m.starts_with("at `[0]`: the writer's description has no shape here")),
        "{error}"
    );
}

#[test]
fn zero_sized_elements_and_deep_nesting_are_bounded() {
    let description = described::<Vec<()>>();
    assert_eq!(decode_as::<Vec<()>>(&[3], &description), Ok(vec![(), (), ()]));
    let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(matches!(decode_as::<Vec<()>>(&huge, &description), Err(ResolveError::Malformed(_))));

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Chain(Option<Box<Chain>>);
    let description = described::<Chain>();
    let ok = [&[1u8; 120][..], &[0]].concat();
    assert!(decode_as::<Chain>(&ok, &description).is_ok());
    let deep = [&[1u8; 10_000][..], &[0]].concat();
    assert!(
        matches!(decode_as::<Chain>(&deep, &description), Err(ResolveError::Malformed(m)) if m.contains("nest more than 256"))
    );
}

#[test]
fn byte_sequences_and_byte_arrays_are_read_without_a_value_per_byte() {
    round_trip(&[Vec::<u8>::new(), vec![0, 1, 255], vec![7; 300]]);
    round_trip(&[[0u8; 4], [1, 2, 3, 255]]);
    round_trip(&[(vec![9u8; 3], [5u8; 2], "x".to_owned())]);
    // Bytes read as wider integers (a `Vec<u8>` field that became `Vec<u16>`).
    let bytes = postcard::to_allocvec(&vec![1u8, 200]).unwrap();
    assert_eq!(decode_as::<Vec<u16>>(&bytes, &described::<Vec<u8>>()).unwrap(), vec![1u16, 200]);
    // An array read as an array of another length is refused, naming where.
    let bytes = postcard::to_allocvec(&[1u8, 2, 3]).unwrap();
    let err = decode_as::<[u8; 2]>(&bytes, &described::<[u8; 3]>()).unwrap_err();
    assert!(matches!(err, ResolveError::Mismatch { .. }), "{err:?}");
    // Too few bytes for the length prefix is damage.
    let err = decode_as::<Vec<u8>>(&[5, 1, 2], &described::<Vec<u8>>()).unwrap_err();
    assert!(matches!(err, ResolveError::Malformed(_)), "{err:?}");
}

//! How a Cairn table becomes a SQLite table, and back: which columns a description gives, and how one value is
//! stored in one column. Pure: no SQLite connection, no files (the unit tests below need neither).
//!
//! - **Columns.** A key or value of a flat type is one column (`key`, `value`). A struct key whose fields are all
//!   flat is one column per field; any other key is one JSON column `key`. A struct value is one column per field:
//!   flat fields typed, the others (nested structs, sequences, maps, tuples, data enums) JSON text. Any other value
//!   is one column `value`, typed or JSON. Names that would clash (SQLite compares them without case) get a `_`
//!   appended; `_cairn_columns` records what every column holds, so import never guesses.
//! - **Flat types.** `bool` is INTEGER 0/1; integers up to `i64` (and `u8`..`u32`) are INTEGER; `u64`, `i128` and
//!   `u128` (*wide*) are INTEGER when they fit in an `i64` and decimal TEXT when they do not, in a column declared
//!   without a type so SQLite converts neither; `f32`/`f64` are REAL, NaN the TEXT `NaN` (SQLite would store NULL);
//!   `char` and strings are TEXT; byte strings and `Vec<u8>` are BLOB; enums whose variants are all unit are the
//!   variant's name as TEXT. `Option` of any of these is the same column, NULL for `None`.

use std::collections::BTreeMap;

use cairn::describe::{Container, Dynamic, Shape, TypeDescription, VariantContent};
use cairn::TableDescription;
use rusqlite::types::Value;

/// How one column stores its values. Its name is what `_cairn_columns.encoding` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// `bool`: INTEGER 0 or 1.
    Bool,
    /// An integer that always fits in an `i64`: INTEGER.
    Integer,
    /// `u64`, `i128`, `u128`: INTEGER when it fits in an `i64`, else decimal TEXT.
    Wide,
    /// `f32`, `f64`: REAL, NaN as the TEXT `NaN`.
    Real,
    /// `char`: TEXT of one character.
    Char,
    /// A string: TEXT.
    Text,
    /// A byte string: BLOB.
    Blob,
    /// An enum of unit variants: the variant's name as TEXT.
    Enum,
    /// Anything else: the value as JSON text, as `cairn dump` writes it.
    Json,
}

impl Encoding {
    const ALL: [Encoding; 9] = [
        Encoding::Bool,
        Encoding::Integer,
        Encoding::Wide,
        Encoding::Real,
        Encoding::Char,
        Encoding::Text,
        Encoding::Blob,
        Encoding::Enum,
        Encoding::Json,
    ];

    /// The name in `_cairn_columns.encoding`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Encoding::Bool => "bool",
            Encoding::Integer => "integer",
            Encoding::Wide => "wide-integer",
            Encoding::Real => "real",
            Encoding::Char => "char",
            Encoding::Text => "text",
            Encoding::Blob => "blob",
            Encoding::Enum => "enum",
            Encoding::Json => "json",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The declared column type: it gives SQLite's affinity, so a wide integer's column has none.
    pub(crate) fn declared(self) -> &'static str {
        match self {
            Encoding::Bool | Encoding::Integer => " INTEGER",
            Encoding::Wide => "",
            Encoding::Real => " REAL",
            Encoding::Char | Encoding::Text | Encoding::Enum | Encoding::Json => " TEXT",
            Encoding::Blob => " BLOB",
        }
    }
}

/// Whether a column holds (part of) the key or the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Key,
    Value,
}

impl Part {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Part::Key => "key",
            Part::Value => "value",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Part> {
        [Part::Key, Part::Value].into_iter().find(|p| p.name() == name)
    }
}

/// One SQLite column of a table: what it holds and how.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    /// The SQLite column's name.
    pub(crate) name: String,
    pub(crate) part: Part,
    /// The struct field it holds, or `None` for the whole key or value.
    pub(crate) field: Option<String>,
    pub(crate) encoding: Encoding,
    /// True when the field is an `Option` of a flat type: NULL is `None`.
    pub(crate) nullable: bool,
}

/// The columns of `d`'s SQLite table: the key's, then the value's.
pub(crate) fn columns(d: &TableDescription) -> Vec<Column> {
    let mut out = part_columns(Part::Key, &d.key, true);
    out.extend(part_columns(Part::Value, &d.value, false));
    let mut taken: Vec<String> = Vec::new();
    for c in &mut out {
        while taken.iter().any(|t| t.eq_ignore_ascii_case(&c.name)) {
            c.name.push('_');
        }
        taken.push(c.name.clone());
    }
    out
}

fn part_columns(part: Part, d: &TypeDescription, all_flat: bool) -> Vec<Column> {
    let whole = |(encoding, nullable)| Column { name: part.name().into(), part, field: None, encoding, nullable };
    if let Some(flat) = flat(&d.root, &d.types) {
        return vec![whole(flat)];
    }
    if let Some(fields) = struct_fields(&d.root, &d.types) {
        let mapped: Vec<Option<(Encoding, bool)>> = fields.iter().map(|f| flat(&f.shape, &d.types)).collect();
        if !(all_flat && mapped.iter().any(Option::is_none)) {
            return fields
                .iter()
                .zip(mapped)
                .map(|(f, flat)| {
                    let (encoding, nullable) = flat.unwrap_or((Encoding::Json, false));
                    Column { name: f.name.clone(), part, field: Some(f.name.clone()), encoding, nullable }
                })
                .collect();
        }
    }
    vec![whole((Encoding::Json, false))]
}

/// The fields of a named struct with at least one field.
pub(crate) fn struct_fields<'a>(
    shape: &Shape,
    types: &'a BTreeMap<String, Container>,
) -> Option<&'a [cairn::describe::Field]> {
    match shape {
        Shape::Named(name) => match types.get(name) {
            Some(Container::Struct(fields)) if !fields.is_empty() => Some(fields),
            _ => None,
        },
        _ => None,
    }
}

/// The encoding of a flat shape, and whether it is an option of one.
fn flat(shape: &Shape, types: &BTreeMap<String, Container>) -> Option<(Encoding, bool)> {
    match shape {
        Shape::Option(inner) => scalar(inner, types).map(|e| (e, true)),
        other => scalar(other, types).map(|e| (e, false)),
    }
}

fn scalar(shape: &Shape, types: &BTreeMap<String, Container>) -> Option<Encoding> {
    Some(match shape {
        Shape::Bool => Encoding::Bool,
        Shape::I8 | Shape::I16 | Shape::I32 | Shape::I64 | Shape::U8 | Shape::U16 | Shape::U32 => Encoding::Integer,
        Shape::U64 | Shape::I128 | Shape::U128 => Encoding::Wide,
        Shape::F32 | Shape::F64 => Encoding::Real,
        Shape::Char => Encoding::Char,
        Shape::Str => Encoding::Text,
        Shape::Bytes => Encoding::Blob,
        Shape::Seq(element) if **element == Shape::U8 => Encoding::Blob,
        Shape::Named(name) => match types.get(name) {
            Some(Container::Enum(variants))
                if !variants.is_empty() && variants.iter().all(|v| v.content == VariantContent::Unit) =>
            {
                Encoding::Enum
            }
            _ => return None,
        },
        _ => return None,
    })
}

/// `value` as stored in a column of `encoding` (`nullable`: `value` is an option).
pub(crate) fn to_sql(value: &Dynamic, encoding: Encoding, nullable: bool) -> Result<Value, String> {
    if nullable {
        return match value {
            Dynamic::Option(None) => Ok(Value::Null),
            Dynamic::Option(Some(inner)) => to_sql(inner, encoding, false),
            other => Err(format!("expected an option, found {other}")),
        };
    }
    let wide = |n: Option<i64>, text: String| Ok(n.map_or(Value::Text(text), Value::Integer));
    match (encoding, value) {
        (Encoding::Json, v) => serde_json::to_string(v).map(Value::Text).map_err(|e| e.to_string()),
        (Encoding::Bool, Dynamic::Bool(b)) => Ok(Value::Integer(i64::from(*b))),
        (Encoding::Integer | Encoding::Wide, Dynamic::I64(n)) => Ok(Value::Integer(*n)),
        (Encoding::Integer | Encoding::Wide, Dynamic::U64(n)) => wide(i64::try_from(*n).ok(), n.to_string()),
        (Encoding::Wide, Dynamic::I128(n)) => wide(i64::try_from(*n).ok(), n.to_string()),
        (Encoding::Wide, Dynamic::U128(n)) => wide(i64::try_from(*n).ok(), n.to_string()),
        (Encoding::Real, Dynamic::F64(x)) if x.is_nan() => Ok(Value::Text("NaN".into())),
        (Encoding::Real, Dynamic::F64(x)) => Ok(Value::Real(*x)),
        (Encoding::Char, Dynamic::Char(c)) => Ok(Value::Text(c.to_string())),
        (Encoding::Text, Dynamic::Str(s)) => Ok(Value::Text(s.clone())),
        (Encoding::Blob, Dynamic::Bytes(b)) => Ok(Value::Blob(b.clone())),
        (Encoding::Enum, Dynamic::Variant(name, _)) => Ok(Value::Text(name.clone())),
        (encoding, other) => Err(format!("{other} cannot be stored as {}", encoding.name())),
    }
}

/// The value of `shape` (within `d`'s types; fastest when `d.root` is `shape`) that a column of `encoding` holds as
/// `sql`. Numbers are range-checked
/// later, by the encoder; this only reads what SQLite holds.
pub(crate) fn from_sql(
    sql: &Value,
    encoding: Encoding,
    nullable: bool,
    shape: &Shape,
    d: &TypeDescription,
) -> Result<Dynamic, String> {
    if nullable {
        let inner = match shape {
            Shape::Option(inner) => inner,
            other => return Err(format!("NULL is recorded as allowed here, but the field is a {other}")),
        };
        return match sql {
            Value::Null => Ok(Dynamic::Option(None)),
            sql => Ok(Dynamic::Option(Some(Box::new(from_sql(sql, encoding, false, inner, d)?)))),
        };
    }
    let found = || match sql {
        Value::Null => "NULL".to_string(),
        Value::Integer(n) => format!("the integer {n}"),
        Value::Real(x) => format!("the real {x}"),
        Value::Text(t) => format!("the text {t:?}"),
        Value::Blob(b) => format!("a blob of {} bytes", b.len()),
    };
    let wrong = |expected: &str| Err(format!("expected {expected} for a {shape}, found {}", found()));
    let signed = matches!(shape, Shape::I8 | Shape::I16 | Shape::I32 | Shape::I64 | Shape::I128);
    match (encoding, sql) {
        (Encoding::Json, Value::Text(text)) if d.root == *shape => crate::records::json_read(text, d),
        (Encoding::Json, Value::Text(text)) => {
            crate::records::json_read(text, &TypeDescription { root: shape.clone(), types: d.types.clone() })
        }
        (Encoding::Json, _) => wrong("JSON text"),
        (Encoding::Bool, Value::Integer(n @ (0 | 1))) => Ok(Dynamic::Bool(*n == 1)),
        (Encoding::Bool, _) => wrong("the integer 0 or 1"),
        (Encoding::Integer | Encoding::Wide, Value::Integer(n)) if signed => Ok(Dynamic::I64(*n)),
        (Encoding::Integer | Encoding::Wide, Value::Integer(n)) => {
            u64::try_from(*n).map(Dynamic::U64).map_err(|_| format!("{n} is negative, but a {shape} is unsigned"))
        }
        (Encoding::Wide, Value::Text(t)) => {
            let parsed = match shape {
                Shape::I128 => t.parse::<i128>().map(Dynamic::I128).ok(),
                Shape::U128 => t.parse::<u128>().map(Dynamic::U128).ok(),
                _ => t.parse::<u64>().map(Dynamic::U64).ok(),
            };
            parsed.ok_or_else(|| format!("the text {t:?} is not a {shape}"))
        }
        (Encoding::Integer | Encoding::Wide, _) => wrong("an integer (or, past i64, its decimal text)"),
        (Encoding::Real, Value::Real(x)) => Ok(Dynamic::F64(*x)),
        (Encoding::Real, Value::Integer(n)) => Ok(Dynamic::F64(*n as f64)),
        (Encoding::Real, Value::Text(t)) if t == "NaN" => Ok(Dynamic::F64(f64::NAN)),
        (Encoding::Real, _) => wrong("a real (or the text NaN)"),
        (Encoding::Char, Value::Text(t)) if t.chars().count() == 1 => {
            Ok(Dynamic::Char(t.chars().next().unwrap_or(' ')))
        }
        (Encoding::Char, _) => wrong("text of one character"),
        (Encoding::Text, Value::Text(t)) => Ok(Dynamic::Str(t.clone())),
        (Encoding::Text, _) => wrong("text"),
        (Encoding::Blob, Value::Blob(b)) => Ok(Dynamic::Bytes(b.clone())),
        (Encoding::Blob, _) => wrong("a blob"),
        (Encoding::Enum, Value::Text(t)) => Ok(Dynamic::Variant(t.clone(), Box::new(Dynamic::Unit))),
        (Encoding::Enum, _) => wrong("a variant's name as text"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn::describe::{Field, Variant};

    fn desc(root: Shape, types: Vec<(&str, Container)>) -> TypeDescription {
        TypeDescription { root, types: types.into_iter().map(|(n, c)| (n.to_string(), c)).collect() }
    }

    fn field(name: &str, shape: Shape) -> Field {
        Field { name: name.into(), shape }
    }

    fn table(key: TypeDescription, value: TypeDescription) -> TableDescription {
        let mut d: TableDescription = serde_json::from_value(serde_json::json!({
            "name": "t", "old_names": [], "ordered": false,
            "key": {"root": "Unit", "types": {}}, "value": {"root": "Unit", "types": {}}, "indexes": []
        }))
        .unwrap();
        d.key = key;
        d.value = value;
        d
    }

    #[test]
    fn a_struct_value_gives_typed_columns_for_flat_fields_and_json_for_the_rest() {
        let status = Container::Enum(vec![
            Variant { index: 0, name: "Open".into(), content: VariantContent::Unit },
            Variant { index: 1, name: "Closed".into(), content: VariantContent::Unit },
        ]);
        let value = desc(
            Shape::Named("Item".into()),
            vec![
                (
                    "Item",
                    Container::Struct(vec![
                        field("key", Shape::Str),
                        field("count", Shape::Option(Box::new(Shape::U32))),
                        field("status", Shape::Named("Status".into())),
                        field("tags", Shape::Seq(Box::new(Shape::Str))),
                    ]),
                ),
                ("Status", status),
            ],
        );
        let cols = columns(&table(desc(Shape::U64, vec![]), value));
        let got: Vec<(&str, Option<&str>, Encoding, bool)> =
            cols.iter().map(|c| (c.name.as_str(), c.field.as_deref(), c.encoding, c.nullable)).collect();
        assert_eq!(
            got,
            vec![
                ("key", None, Encoding::Wide, false),
                ("key_", Some("key"), Encoding::Text, false),
                ("count", Some("count"), Encoding::Integer, true),
                ("status", Some("status"), Encoding::Enum, false),
                ("tags", Some("tags"), Encoding::Json, false),
            ]
        );
    }

    #[test]
    fn a_key_struct_with_a_nested_field_is_one_json_column() {
        let key = desc(
            Shape::Named("K".into()),
            vec![("K", Container::Struct(vec![field("a", Shape::U8), field("b", Shape::Seq(Box::new(Shape::U32)))]))],
        );
        let cols = columns(&table(key, desc(Shape::Tuple(vec![Shape::U8, Shape::F64]), vec![])));
        assert_eq!(cols.len(), 2);
        assert_eq!((cols[0].name.as_str(), cols[0].encoding), ("key", Encoding::Json));
        assert_eq!((cols[1].name.as_str(), cols[1].encoding), ("value", Encoding::Json));
    }

    #[test]
    fn wide_integers_past_i64_are_text_and_read_back_exactly() {
        let d = desc(Shape::U128, vec![]);
        for (shape, v) in [
            (Shape::U64, Dynamic::U64(u64::MAX)),
            (Shape::U64, Dynamic::U64(7)),
            (Shape::U128, Dynamic::U128(u128::MAX)),
            (Shape::I128, Dynamic::I128(i128::MIN)),
            (Shape::I128, Dynamic::I64(-3)),
        ] {
            let sql = to_sql(&v, Encoding::Wide, false).unwrap();
            let back = from_sql(&sql, Encoding::Wide, false, &shape, &d).unwrap();
            assert_eq!(to_sql(&back, Encoding::Wide, false).unwrap(), sql, "{v}");
        }
        assert_eq!(to_sql(&Dynamic::U64(u64::MAX), Encoding::Wide, false).unwrap(), Value::Text(u64::MAX.to_string()));
        assert_eq!(to_sql(&Dynamic::U64(9), Encoding::Wide, false).unwrap(), Value::Integer(9));
    }

    #[test]
    fn nan_and_none_survive_and_a_wrong_type_is_named() {
        let d = desc(Shape::F64, vec![]);
        let nan = to_sql(&Dynamic::F64(f64::NAN), Encoding::Real, false).unwrap();
        assert_eq!(nan, Value::Text("NaN".into()));
        let Dynamic::F64(x) = from_sql(&nan, Encoding::Real, false, &Shape::F64, &d).unwrap() else { panic!() };
        assert!(x.is_nan());
        let opt = Shape::Option(Box::new(Shape::U32));
        assert_eq!(from_sql(&Value::Null, Encoding::Integer, true, &opt, &d).unwrap(), Dynamic::Option(None));
        let err = from_sql(&Value::Text("abc".into()), Encoding::Integer, false, &Shape::U32, &d).unwrap_err();
        assert!(err.contains("expected an integer") && err.contains("\"abc\""), "{err}");
        let err = from_sql(&Value::Integer(-1), Encoding::Integer, false, &Shape::U32, &d).unwrap_err();
        assert!(err.contains("negative"), "{err}");
    }
}

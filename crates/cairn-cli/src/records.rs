//! Records as text: one line per record in JSON or RON (what `dump` writes and `load` reads), and one value as
//! pretty RON (what `edit` shows). Every value is read by the stored description of its table
//! (`cairn::describe::deserialize_dynamic`), so a value that does not fit is refused with the path in it.
//!
//! A line is a record of `table`, `key`, `schema_version` and `value`. `load` needs only `key` and `value`; a
//! `table` given must be the table loaded. In RON, `Some` may be left out (`note: "hi"` for an `Option<String>`).

use cairn::describe::{deserialize_dynamic, Container, Described, Dynamic, Field, Shape, TypeDescription};
use cairn::TableDescription;
use serde::de::DeserializeSeed;

use crate::Format;

/// The name of the record type of a line (made unique among the program's types where it must be).
const RECORD: &str = "CairnRecord";

/// The type of one line of `table`'s records, keys by `key` and values by `value`; for reading, `table` and
/// `schema_version` are options.
fn line(key: &TypeDescription, value: &TypeDescription, reading: bool) -> TypeDescription {
    let maybe = |shape: Shape| if reading { Shape::Option(Box::new(shape)) } else { shape };
    let mut types = key.types.clone();
    types.extend(value.types.clone());
    let fields = vec![
        field("table", maybe(Shape::Str)),
        field("key", key.root.clone()),
        field("schema_version", maybe(Shape::U32)),
        field("value", value.root.clone()),
    ];
    let mut name = RECORD.to_string();
    while types.contains_key(&name) {
        name.push('_');
    }
    types.insert(name.clone(), Container::Struct(fields));
    TypeDescription { root: Shape::Named(name), types }
}

fn field(name: &str, shape: Shape) -> Field {
    Field { name: name.into(), shape }
}

/// One line of a dump: `value` as `value_type` (the description of the version that wrote it).
pub(crate) fn render(
    format: Format,
    table: &str,
    key: (&Dynamic, &TypeDescription),
    schema_version: u32,
    value: (&Dynamic, &TypeDescription),
) -> Result<String, String> {
    Ok(match format {
        Format::Json => serde_json::json!({
            "table": table, "key": key.0, "schema_version": schema_version, "value": value.0,
        })
        .to_string(),
        Format::Text => format!("{table} {} => {}", key.0, value.0),
        Format::Ron => {
            let d = line(key.1, value.1, false);
            let record = Dynamic::Struct(vec![
                ("table".into(), Dynamic::Str(table.into())),
                ("key".into(), key.0.clone()),
                ("schema_version".into(), Dynamic::U64(schema_version.into())),
                ("value".into(), value.0.clone()),
            ]);
            ron::to_string(&Described::new(&record, &d)).map_err(|e| e.to_string())?
        }
    })
}

/// One line of `load`'s input: the table it names (if any), the key and the value, by `table`'s newest
/// description.
pub(crate) fn parse(
    format: Format,
    text: &str,
    table: &TableDescription,
) -> Result<(Option<String>, Dynamic, Dynamic), String> {
    let d = line(&table.key, &table.value, true);
    let record = match format {
        Format::Ron => ron_read(text, &d),
        _ => json_read(text, &d),
    };
    // Paths start at the record's fields: `value.plan::Team.seats`.
    let record = record.map_err(|e| match &d.root {
        Shape::Named(name) => e.replace(&format!("`{name}."), "`"),
        _ => e,
    })?;
    let Dynamic::Struct(mut fields) = record else { return Err("a line is not a record".into()) };
    let mut take = |name: &str| fields.iter().position(|(n, _)| n == name).map(|at| fields.remove(at).1);
    let named = match take("table") {
        Some(Dynamic::Option(Some(t))) => match *t {
            Dynamic::Str(t) => Some(t),
            _ => None,
        },
        _ => None,
    };
    let key = take("key").ok_or("a line has no key")?;
    let value = take("value").ok_or("a line has no value")?;
    Ok((named, key, value))
}

/// A value of `d`, from JSON.
pub(crate) fn json_read(text: &str, d: &TypeDescription) -> Result<Dynamic, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = deserialize_dynamic(&mut de, d).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// A value of `d`, from RON (comments allowed, `Some` optional).
pub(crate) fn ron_read(text: &str, d: &TypeDescription) -> Result<Dynamic, String> {
    ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
        .from_str_seed(text, Seed(d))
        .map_err(|e| e.to_string())
}

/// `value` as pretty RON by `d`.
pub(crate) fn ron_pretty(value: &Dynamic, d: &TypeDescription) -> Result<String, String> {
    ron::ser::to_string_pretty(&Described::new(value, d), ron::ser::PrettyConfig::new().struct_names(true))
        .map_err(|e| e.to_string())
}

/// [`deserialize_dynamic`] as a seed, for deserializers that take one.
struct Seed<'a>(&'a TypeDescription);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Dynamic;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
        deserialize_dynamic(d, self.0)
    }
}

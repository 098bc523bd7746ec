//! Phase A: values of a type, made by driving its own `Deserialize` with a deserializer that chooses what to supply.
//!
//! Every `deserialize_*` call is a choice point with a list of alternatives (candidate values, `Some` or `None`, one
//! element or none, an enum's variants). A run records the alternative it took at each choice point, in traversal
//! order; a failed run is retried depth-first by moving the last choice point that has alternatives left to its
//! next one and replaying the decisions before it. That finds values that pass validating impls (a `Uuid` wants 16
//! bytes, a `NonZeroU32` wants 1) and ends recursion (a container may be entered at most twice on the stack, so a
//! third entry fails and backtracking picks `None`, an empty sequence, or another variant).

use std::collections::{BTreeMap, BTreeSet};

use serde::de::value::U32Deserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::Failure;

/// How many times a container may be on the deserialization stack at once.
const MAX_NESTING: usize = 2;
/// The variant count assumed for an enum whose `Deserialize` names no variants: tried until an index is refused.
const UNLISTED_VARIANTS: usize = 1024;

const STRINGS: &[&str] =
    &["", "0", "00000000-0000-0000-0000-000000000000", "1970-01-01T00:00:00Z", "1970-01-01", "00:00:00", "a"];
const BYTE_LENGTHS: &[usize] = &[0, 16, 32, 8, 4, 12, 20, 64];

/// The search state: the decisions of the current run, and what is known about each enum.
#[derive(Default)]
pub(super) struct Explorer {
    choices: Vec<Choice>,
    /// The next choice point of the current run.
    position: usize,
    /// The containers being deserialized, outermost first.
    stack: Vec<&'static str>,
    enums: BTreeMap<&'static str, EnumInfo>,
    /// The enum variants being deserialized, outermost first.
    active: Vec<(&'static str, u32)>,
    /// The enums met inside each enum variant, in any run.
    leads: BTreeMap<(&'static str, u32), BTreeSet<&'static str>>,
    /// The enums with a variant not built yet, or a variant that leads to one: where the search should go.
    hungry: BTreeSet<&'static str>,
    /// Whether options are `None` and sequences empty first (a minimal sample) rather than last.
    empty_first: bool,
}

struct Choice {
    chosen: usize,
    alternatives: Alternatives,
}

enum Alternatives {
    Count(usize),
    /// An enum's variant indexes, in the order to try them.
    Variants {
        name: &'static str,
        order: Vec<u32>,
    },
}

struct EnumInfo {
    /// The names its `Deserialize` lists (aliases included, so at least as many as it has variants).
    listed: &'static [&'static str],
    /// Its variant count, once an index was refused.
    count: Option<usize>,
    /// The variant indexes that appeared in a successful run.
    covered: BTreeSet<u32>,
    /// Whether a successful run reached it.
    reached: bool,
}

impl EnumInfo {
    fn limit(&self) -> usize {
        let listed = if self.listed.is_empty() { UNLISTED_VARIANTS } else { self.listed.len() };
        self.count.unwrap_or(listed).min(listed)
    }

    fn uncovered(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.limit() as u32).filter(|index| !self.covered.contains(index))
    }
}

/// An enum variant no successful run could build.
pub(super) struct Uncovered {
    pub(super) enum_name: &'static str,
    pub(super) index: u32,
    /// The name its `Deserialize` lists at that index (a guess when the enum has aliases).
    pub(super) listed_name: Option<&'static str>,
}

impl Explorer {
    /// Starts a new search from no decisions, keeping what was learnt about enums.
    pub(super) fn restart(&mut self, empty_first: bool) {
        self.choices.clear();
        self.empty_first = empty_first;
        self.hungry =
            self.enums.iter().filter(|(_, info)| info.uncovered().next().is_some()).map(|(&name, _)| name).collect();
        loop {
            let leading = self.leads.iter().filter(|(_, met)| !met.is_disjoint(&self.hungry));
            let more: Vec<&'static str> =
                leading.map(|(&(name, _), _)| name).filter(|name| !self.hungry.contains(name)).collect();
            if more.is_empty() {
                break;
            }
            self.hungry.extend(more);
        }
    }

    /// Runs `T::deserialize` once, replaying the recorded decisions and choosing first alternatives after them.
    pub(super) fn run<T: de::DeserializeOwned>(&mut self) -> Result<T, Failure> {
        self.position = 0;
        self.stack.clear();
        self.active.clear();
        T::deserialize(&mut *self)
    }

    /// After a failed run: moves the last choice point with alternatives left to its next one. False when every
    /// alternative was tried.
    pub(super) fn backtrack(&mut self) -> bool {
        self.choices.truncate(self.position);
        while let Some(choice) = self.choices.last_mut() {
            let next = match &choice.alternatives {
                Alternatives::Count(count) => Some(choice.chosen + 1).filter(|next| next < count),
                Alternatives::Variants { name, order } => {
                    let limit = self.enums.get(name).map_or(usize::MAX, EnumInfo::limit);
                    (choice.chosen + 1..order.len()).find(|&next| (order[next] as usize) < limit)
                }
            };
            if let Some(next) = next {
                choice.chosen = next;
                return true;
            }
            self.choices.pop();
        }
        false
    }

    /// After a successful run: records the variants it built. True when one of them had not been built before.
    pub(super) fn succeeded(&mut self) -> bool {
        let mut progress = false;
        for choice in &self.choices[..self.position] {
            if let Alternatives::Variants { name, order } = &choice.alternatives {
                if let Some(info) = self.enums.get_mut(name) {
                    info.reached = true;
                    progress |= info.covered.insert(order[choice.chosen]);
                }
            }
        }
        progress
    }

    /// The variants of reached enums that no successful run built yet.
    pub(super) fn uncovered(&self) -> Vec<Uncovered> {
        let reached = self.enums.iter().filter(|(_, info)| info.reached);
        reached
            .flat_map(|(&enum_name, info)| {
                info.uncovered().map(move |index| Uncovered {
                    enum_name,
                    index,
                    listed_name: info.listed.get(index as usize).copied(),
                })
            })
            .collect()
    }

    /// The alternative taken at the next choice point, which has `count` alternatives.
    fn choose(&mut self, count: usize) -> Result<usize, Failure> {
        self.choose_with(|_| Alternatives::Count(count))
    }

    fn choose_with(&mut self, alternatives: impl FnOnce(&Self) -> Alternatives) -> Result<usize, Failure> {
        if self.position == self.choices.len() {
            let alternatives = alternatives(self);
            self.choices.push(Choice { chosen: 0, alternatives });
        }
        let choice = &self.choices[self.position];
        self.position += 1;
        match &choice.alternatives {
            Alternatives::Count(count) if choice.chosen < *count => Ok(choice.chosen),
            Alternatives::Variants { order, .. } if choice.chosen < order.len() => Ok(order[choice.chosen] as usize),
            Alternatives::Variants { name, .. } => {
                Err(Failure::new(format!("enum `{name}` has no variant left to try")))
            }
            Alternatives::Count(_) => Err(Failure::new("no alternative left")),
        }
    }

    /// Whether the next option is `None`, or the next sequence or map empty.
    fn choose_empty(&mut self) -> Result<bool, Failure> {
        Ok((self.choose(2)? == 0) == self.empty_first)
    }

    /// Chooses a variant of enum `name`: those no successful run built come first, then those that lead to an enum
    /// with such variants, then the others.
    fn choose_variant(&mut self, name: &'static str, listed: &'static [&'static str]) -> Result<u32, Failure> {
        for outer in &self.active {
            self.leads.entry(*outer).or_default().insert(name);
        }
        self.enums.entry(name).or_insert_with(|| EnumInfo {
            listed,
            count: None,
            covered: BTreeSet::new(),
            reached: false,
        });
        let index = self.choose_with(|explorer| {
            let info = &explorer.enums[name];
            let leads_to_hungry =
                |index: &u32| explorer.leads.get(&(name, *index)).is_some_and(|met| !met.is_disjoint(&explorer.hungry));
            let (towards, others): (Vec<u32>, Vec<u32>) = info.covered.iter().partition(|index| leads_to_hungry(index));
            let order = info.uncovered().chain(towards).chain(others).collect();
            Alternatives::Variants { name, order }
        })?;
        Ok(index as u32)
    }

    /// Enters container `name`, or fails the run if it is already nested too deep.
    fn enter(&mut self, name: &'static str) -> Result<usize, Failure> {
        if self.stack.iter().filter(|&&entered| entered == name).count() >= MAX_NESTING {
            return Err(Failure::recursion(format!("recursion: `{name}` nested more than {MAX_NESTING} deep")));
        }
        self.stack.push(name);
        Ok(self.stack.len() - 1)
    }

    fn within<R>(
        &mut self,
        name: &'static str,
        body: impl FnOnce(&mut Self) -> Result<R, Failure>,
    ) -> Result<R, Failure> {
        let depth = self.enter(name)?;
        let result = body(self);
        self.stack.truncate(depth);
        result
    }
}

macro_rules! integers {
    ($($method:ident => $visit:ident $ty:ty,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
            let value = self.choose(2)? as $ty;
            visitor.$visit(value)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Explorer {
    type Error = Failure;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Failure> {
        Err(Failure::fatal(
            "its Deserialize asks for a self-describing format (deserialize_any: an untagged or internally tagged \
             enum, #[serde(flatten)], or a dynamic value such as serde_json::Value), which postcard cannot decode",
        ))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Failure> {
        Err(Failure::fatal(
            "its Deserialize skips a value of unknown type (deserialize_ignored_any), which postcard cannot decode",
        ))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Failure> {
        Err(Failure::fatal("its Deserialize asks for an identifier outside an enum, which postcard cannot decode"))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let value = self.choose(2)? == 1;
        visitor.visit_bool(value)
    }

    integers! {
        deserialize_i8 => visit_i8 i8,
        deserialize_i16 => visit_i16 i16,
        deserialize_i32 => visit_i32 i32,
        deserialize_i64 => visit_i64 i64,
        deserialize_i128 => visit_i128 i128,
        deserialize_u8 => visit_u8 u8,
        deserialize_u16 => visit_u16 u16,
        deserialize_u32 => visit_u32 u32,
        deserialize_u64 => visit_u64 u64,
        deserialize_u128 => visit_u128 u128,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        self.choose(1)?;
        visitor.visit_f32(0.0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        self.choose(1)?;
        visitor.visit_f64(0.0)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        self.choose(1)?;
        visitor.visit_char('a')
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let candidate = self.choose(STRINGS.len())?;
        visitor.visit_str(STRINGS[candidate])
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let candidate = self.choose(BYTE_LENGTHS.len())?;
        visitor.visit_bytes(&[0; 64][..BYTE_LENGTHS[candidate]])
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        if self.choose_empty()? {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Failure> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, Failure> {
        self.within(name, |explorer| visitor.visit_newtype_struct(explorer))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let len = usize::from(!self.choose_empty()?);
        visitor.visit_seq(Elements { explorer: self, left: len })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Failure> {
        visitor.visit_seq(Elements { explorer: self, left: len })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.within(name, |explorer| visitor.visit_seq(Elements { explorer, left: len }))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let len = usize::from(!self.choose_empty()?);
        visitor.visit_map(Entries { explorer: self, left: len })
    }

    /// The fields are supplied in order, as many as the visitor asks for: `fields` lists aliases too, so it only
    /// bounds their number.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.within(name, |explorer| visitor.visit_seq(Elements { explorer, left: fields.len() }))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.within(name, |explorer| {
            let index = explorer.choose_variant(name, variants)?;
            explorer.active.push((name, index));
            let depth = explorer.active.len() - 1;
            let value = visitor.visit_enum(Variant { explorer: &mut *explorer, name, index });
            explorer.active.truncate(depth);
            value
        })
    }
}

/// A sequence, tuple or struct: `left` more elements.
struct Elements<'a> {
    explorer: &'a mut Explorer,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_> {
    type Error = Failure;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Failure> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.explorer).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct Entries<'a> {
    explorer: &'a mut Explorer,
    left: usize,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = Failure;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Failure> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.explorer).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Failure> {
        seed.deserialize(&mut *self.explorer)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// The chosen variant of an enum, identified by index as postcard does.
struct Variant<'a> {
    explorer: &'a mut Explorer,
    name: &'static str,
    index: u32,
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = Failure;
    type Variant = &'a mut Explorer;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), Failure> {
        let identifier: U32Deserializer<Failure> = self.index.into_deserializer();
        match seed.deserialize(identifier) {
            Ok(value) => Ok((value, self.explorer)),
            Err(error) => {
                // The enum refuses this index: it has exactly `index` variants.
                if let Some(info) = self.explorer.enums.get_mut(self.name) {
                    info.count = Some(self.index as usize);
                }
                Err(error)
            }
        }
    }
}

impl<'de> de::VariantAccess<'de> for &mut Explorer {
    type Error = Failure;

    fn unit_variant(self) -> Result<(), Failure> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Failure> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Failure> {
        visitor.visit_seq(Elements { explorer: self, left: len })
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Failure> {
        visitor.visit_seq(Elements { explorer: self, left: fields.len() })
    }
}

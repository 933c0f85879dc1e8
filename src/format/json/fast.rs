//! The same conversion straight from the parser, without building a `serde_json::Value`
//! first: that tree, a map for every typed value, cost most of a load's CPU (a 20k-item
//! file took longer to check than DynamoDB Local took to write a sixth of it). It has no
//! errors of its own: at anything it does not expect (a bad value, a duplicate key, an
//! `Item` wrapper with keys beside it) it gives up and `read::exact_item` decides, so every
//! item it returns is the one `read::exact_item` returns, and every error is that path's.

use crate::format::item::{Item, Value};
use crate::format::limits::{MAX_ITEM_BYTES, MAX_NESTING_DEPTH};
use crate::format::number::Number;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess};
use std::collections::HashSet;
use std::fmt;

/// Why the fast path gave up; never shown.
fn give_up<E: de::Error>() -> E {
    E::custom("")
}

pub(super) fn item(line: &str) -> Option<Item> {
    let mut size = 0;
    let mut parser = serde_json::Deserializer::from_str(line);
    let item = Line { size: &mut size }.deserialize(&mut parser).ok()?;
    parser.end().ok()?;
    Some(item)
}

fn count<E: de::Error>(size: &mut usize, bytes: usize) -> Result<(), E> {
    *size = size.saturating_add(bytes);
    if *size > MAX_ITEM_BYTES {
        return Err(give_up());
    }
    Ok(())
}

/// A whole line: an item, bare or as `{"Item":{...}}` alone.
struct Line<'s> {
    size: &'s mut usize,
}

impl<'de> DeserializeSeed<'de> for Line<'_> {
    type Value = Item;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Item, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> de::Visitor<'de> for Line<'_> {
    type Value = Item;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an item")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let mut item = Item::new();
        let Some(first) = map.next_key::<String>()? else {
            return Ok(item);
        };
        if first == "Item" {
            let item = map.next_value_seed(Attributes {
                depth: 0,
                size: self.size,
            })?;
            // Keys beside `Item` make it an attribute: the exact path decides.
            return match map.next_key::<IgnoredAny>()? {
                None => Ok(item),
                Some(_) => Err(give_up()),
            };
        }
        let value = map.next_value_seed(Attribute {
            depth: 0,
            size: &mut *self.size,
        })?;
        add(&mut item, first, value, 0, self.size)?;
        rest(map, item, 0, self.size)
    }
}

/// Counts and adds one attribute; a name given twice is left to the exact path.
fn add<E: de::Error>(
    item: &mut Item,
    name: String,
    value: Value,
    depth: usize,
    size: &mut usize,
) -> Result<(), E> {
    if name.is_empty() {
        return Err(give_up());
    }
    count(size, usize::from(depth > 0) + name.len())?;
    match item.insert(name, value) {
        None => Ok(()),
        Some(_) => Err(give_up()),
    }
}

fn rest<'de, A: MapAccess<'de>>(
    mut map: A,
    mut item: Item,
    depth: usize,
    size: &mut usize,
) -> Result<Item, A::Error> {
    while let Some(name) = map.next_key::<String>()? {
        let value = map.next_value_seed(Attribute {
            depth,
            size: &mut *size,
        })?;
        add(&mut item, name, value, depth, size)?;
    }
    Ok(item)
}

/// A map of attributes: an item, or the inside of an `M`.
struct Attributes<'s> {
    depth: usize,
    size: &'s mut usize,
}

impl<'de> DeserializeSeed<'de> for Attributes<'_> {
    type Value = Item;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Item, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> de::Visitor<'de> for Attributes<'_> {
    type Value = Item;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("attributes")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
        rest(map, Item::new(), self.depth, self.size)
    }
}

/// One typed value, `{"S":"..."}` and the rest.
struct Attribute<'s> {
    depth: usize,
    size: &'s mut usize,
}

impl<'de> DeserializeSeed<'de> for Attribute<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > MAX_NESTING_DEPTH {
            return Err(give_up());
        }
        d.deserialize_map(self)
    }
}

impl<'de> de::Visitor<'de> for Attribute<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a typed value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let size = self.size;
        // Borrowed from the line: a type key written with an escape gives up.
        let kind = map.next_key::<&'de str>()?.ok_or_else(give_up)?;
        let number_size = |n: &str| n.trim_start_matches('-').len().div_ceil(2) + 1;
        let number = |n: String| match Number::parse(&n) {
            Ok(_) => Ok(n),
            Err(_) => Err(give_up()),
        };
        let binary = |text: String| STANDARD.decode(text).map_err(|_| give_up());
        let value = match kind {
            "S" => {
                let s: String = map.next_value()?;
                count(size, s.len())?;
                Value::S(s)
            }
            "N" => {
                let n = number(map.next_value()?)?;
                count(size, number_size(&n))?;
                Value::N(n)
            }
            "B" => {
                let b = binary(map.next_value()?)?;
                count(size, b.len())?;
                Value::B(b)
            }
            "BOOL" => {
                let b: bool = map.next_value()?;
                count(size, 1)?;
                Value::Bool(b)
            }
            "NULL" => {
                if !map.next_value::<bool>()? {
                    return Err(give_up());
                }
                count(size, 1)?;
                Value::Null(true)
            }
            "L" => {
                count(size, 3)?;
                Value::L(map.next_value_seed(List {
                    depth: self.depth + 1,
                    size: &mut *size,
                })?)
            }
            "M" => {
                count(size, 3)?;
                Value::M(map.next_value_seed(Attributes {
                    depth: self.depth + 1,
                    size: &mut *size,
                })?)
            }
            "SS" => {
                let members: Vec<String> = set(map.next_value()?)?;
                for s in &members {
                    count(size, s.len())?;
                }
                distinct(members.iter())?;
                Value::Ss(members)
            }
            "NS" => {
                let mut members = Vec::new();
                let mut values = HashSet::new();
                for n in set(map.next_value()?)? {
                    let value = Number::parse(&n).map_err(|_| give_up())?;
                    if !values.insert(value) {
                        return Err(give_up());
                    }
                    count(size, number_size(&n))?;
                    members.push(n);
                }
                Value::Ns(members)
            }
            "BS" => {
                let mut members = Vec::new();
                for text in set(map.next_value()?)? {
                    let b = binary(text)?;
                    count(size, b.len())?;
                    members.push(b);
                }
                distinct(members.iter())?;
                Value::Bs(members)
            }
            _ => return Err(give_up()),
        };
        match map.next_key::<IgnoredAny>()? {
            None => Ok(value),
            Some(_) => Err(give_up()),
        }
    }
}

fn set<E: de::Error>(members: Vec<String>) -> Result<Vec<String>, E> {
    if members.is_empty() {
        return Err(give_up());
    }
    Ok(members)
}

fn distinct<T: Eq + std::hash::Hash, E: de::Error>(
    members: impl IntoIterator<Item = T>,
) -> Result<(), E> {
    let mut seen = HashSet::new();
    for member in members {
        if !seen.insert(member) {
            return Err(give_up());
        }
    }
    Ok(())
}

/// The members of an `L`, each one level deeper.
struct List<'s> {
    depth: usize,
    size: &'s mut usize,
}

impl<'de> DeserializeSeed<'de> for List<'_> {
    type Value = Vec<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> de::Visitor<'de> for List<'_> {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(member) = seq.next_element_seed(Attribute {
            depth: self.depth,
            size: &mut *self.size,
        })? {
            count(self.size, 1)?;
            list.push(member);
        }
        Ok(list)
    }
}

//! The field names a serde struct accepts, read from its derived `Deserialize` impl.
//!
//! Used to refuse unknown fields in JS input: serde-wasm-bindgen reads structs field by field, so
//! `deny_unknown_fields` never sees a misspelt key (a typo would otherwise be dropped silently).

use serde::de::{self, Deserialize, Deserializer, Visitor};

struct FieldNames(&'static [&'static str]);

#[derive(Debug)]
struct Found;

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names captured")
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Found
    }
}

struct Capture<'a>(&'a mut FieldNames);

impl<'de> Deserializer<'de> for Capture<'_> {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Found> {
        self.0 .0 = fields;
        Err(Found)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The field names of struct `T` (empty for a non-struct).
pub fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut names = FieldNames(&[]);
    let _ = T::deserialize(Capture(&mut names));
    names.0
}

//! Reads caller values at the JS boundary, so that nothing a caller passes can throw through wasm.
//!
//! Why this exists: a JS exception thrown inside an import that is not marked `catch` (a getter
//! or Proxy trap run by serde-wasm-bindgen's field reads, `Object.keys` on a revoked Proxy,
//! `instanceof` on a Proxy whose `getPrototypeOf` trap throws, wasm-bindgen's string glue reading
//! `(5).length`) unwinds straight through the Rust frames that called it. Their epilogues never
//! run, so the shadow-stack pointer (the `__stack_pointer` global) is never restored: every such
//! call leaks its frames (about 4 KiB), and after a few hundred calls the 1 MiB stack runs into
//! the data below it: `memory access out of bounds`, then `unreachable`, on every later call of
//! the instance. Here a caller value is read by one import marked `catch`, `readTape`, which
//! catches what the value throws itself: a throw becomes `invalid_argument` (1) naming the path,
//! with the original exception as `cause`.
//!
//! [`read`] turns a caller value into a [`Value`] tree (plain objects, arrays, `Uint8Array`s of
//! any realm, primitives; refusing everything else) from that one tape, then [`from_value`]
//! deserializes our types from the tree with serde, naming the path of the first refused value.

use std::fmt;

use js_sys::{Array, Function, Object, Reflect};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::Error;

#[wasm_bindgen(module = "/src/js/convert.js")]
extern "C" {
    /// The tape of `value` (see [`read`]); functions and causes go to `side`.
    #[wasm_bindgen(catch, js_name = readTape)]
    fn read_tape(value: &JsValue, side: &Array, max_depth: u32, max_bytes: u32) -> Result<js_sys::Uint8Array, JsValue>;
    /// A promise for `value` (a thenable is followed); never throws.
    #[wasm_bindgen(catch)]
    pub fn settle(value: &JsValue) -> Result<js_sys::Promise, JsValue>;
}

/// How deep objects and arrays may nest in any argument.
pub const MAX_DEPTH: usize = crate::channels::meta::MAX_DEPTH;
/// The most one argument may hold (strings, bytes, and 16 bytes per value), so a huge or
/// endless (Proxy) value is refused instead of exhausting memory.
pub const MAX_INPUT_BYTES: usize = 64 << 20;

/// A caller value, read once: nothing in it can run caller code any more.
#[derive(Debug, Clone)]
pub enum Value {
    /// `undefined`: an absent struct field; refused almost everywhere else.
    Undefined,
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A bigint (within i128; larger ones are refused while reading).
    BigInt(i128),
    /// A well-formed string.
    Text(String),
    /// The bytes of a `Uint8Array` (copied).
    Bytes(Vec<u8>),
    /// A function (only callbacks accept one).
    Function(Function),
    /// A dense array without named properties.
    List(Vec<Value>),
    /// A plain object's own string-keyed properties, in property order.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// What the value is, for messages.
    fn describe(&self) -> String {
        match self {
            Value::Undefined => "undefined".into(),
            Value::Null => "null".into(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Number(n) => format!("the number {n}"),
            Value::BigInt(n) => format!("the bigint {n}"),
            Value::Text(_) => "a string".into(),
            Value::Bytes(_) => "a Uint8Array".into(),
            Value::Function(_) => "a function".into(),
            Value::List(_) => "an array".into(),
            Value::Map(_) => "an object".into(),
        }
    }

    /// Removes and returns the property `key` of a map (`None` if absent or not a map).
    pub fn take(&mut self, key: &str) -> Option<Value> {
        match self {
            Value::Map(entries) => {
                let at = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(at).1)
            }
            _ => None,
        }
    }

    /// The property `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// One step of a path: a property or an array index.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// A refused caller value: why, where (the path below the argument), and the JS exception that
/// caused it, if one did.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Innermost step first (steps are added while the error travels outward).
    steps: Vec<Step>,
    message: String,
    cause: Option<JsValue>,
}

impl Refusal {
    fn new(message: impl Into<String>) -> Refusal {
        Refusal { steps: Vec::new(), message: message.into(), cause: None }
    }

    fn caused(message: impl Into<String>, cause: JsValue) -> Refusal {
        Refusal { steps: Vec::new(), message: message.into(), cause: Some(cause) }
    }

    fn at(mut self, step: Step) -> Refusal {
        self.steps.push(step);
        self
    }

    /// The path, e.g. `.utxos["<txid>:0"].value`.
    pub fn path(&self) -> String {
        let mut out = String::new();
        for step in self.steps.iter().rev() {
            match step {
                Step::Index(i) => out.push_str(&format!("[{i}]")),
                Step::Key(key) if is_identifier(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Step::Key(key) => out.push_str(&format!("[{key:?}]")),
            }
        }
        out
    }

    /// The error of argument `what`: `invalid_argument` naming the path, and the JS cause.
    pub fn into_error(self, what: &str) -> (Error, Option<JsValue>) {
        (Error::InvalidArgument(format!("{what}{}: {}", self.path(), self.message)), self.cause)
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path(), self.message)
    }
}

impl std::error::Error for Refusal {}

impl de::Error for Refusal {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Refusal::new(msg.to_string())
    }
}

/// Reads `value` (see the module doc): plain objects (prototype `Object.prototype` of any realm,
/// or `null`), dense arrays without named properties, `Uint8Array`s of any realm, primitives and
/// functions. Refuses `Map`, `Set`, `Date`, class instances, boxed primitives, symbols, symbol
/// keys, lone surrogates, nesting deeper than [`MAX_DEPTH`] (cycles included) and more than
/// [`MAX_INPUT_BYTES`] in all.
///
/// `readTape` (convert.js) walks the value once, depth first, and writes a tape: each value is
/// charged 16 bytes when reached, each string or key its UTF-8 length once found well-formed, each
/// `Uint8Array` its length once copied. The first refusal replaces the tape with a refusal record;
/// [`Tape`] turns either into a [`Value`] or a [`Refusal`].
pub fn read(value: &JsValue) -> Result<Value, Refusal> {
    let side = Array::new();
    let tape = read_tape(value, &side, MAX_DEPTH as u32, MAX_INPUT_BYTES as u32)
        .map_err(|e| Refusal::caused("the value could not be read", e))?
        .to_vec();
    Tape { bytes: &tape, at: 0, side: &side }.read()
}

/// Tags of the tape (`readTape` in convert.js writes them).
mod tag {
    pub const UNDEFINED: u8 = 0;
    pub const NULL: u8 = 1;
    pub const FALSE: u8 = 2;
    pub const TRUE: u8 = 3;
    /// Then an f64.
    pub const NUMBER: u8 = 4;
    /// Then the decimal text.
    pub const BIGINT: u8 = 5;
    /// Then the text.
    pub const TEXT: u8 = 6;
    /// Then a u32 length and the bytes.
    pub const BYTES: u8 = 7;
    /// Then the u32 index of the function in `side`.
    pub const FUNCTION: u8 = 8;
    /// Then a u32 count and the items.
    pub const LIST: u8 = 9;
    /// Then a u32 count and, per entry, the key's text and the value.
    pub const MAP: u8 = 10;
    /// Then a code (`KEY` set for a key's refusal), a detail text, the u32 index of the cause in
    /// `side` (`u32::MAX` if none), a u32 count and the steps, innermost first (0 and a key's
    /// text, or 1 and a u32 index).
    pub const REFUSED: u8 = 11;
    /// The flag of a refusal code that says a key, not a value, was refused.
    pub const KEY: u8 = 0x80;
}

/// Reads a tape of `readTape`. Its texts are UTF-8 that `TextEncoder` wrote.
struct Tape<'a> {
    bytes: &'a [u8],
    at: usize,
    side: &'a Array,
}

impl Tape<'_> {
    fn read(mut self) -> Result<Value, Refusal> {
        if self.bytes.first() == Some(&tag::REFUSED) {
            self.at = 1;
            return Err(self.refusal());
        }
        let value = self.value();
        debug_assert_eq!(self.at, self.bytes.len());
        value
    }

    fn byte(&mut self) -> u8 {
        self.at += 1;
        self.bytes[self.at - 1]
    }

    fn take(&mut self, n: usize) -> &[u8] {
        self.at += n;
        &self.bytes[self.at - n..self.at]
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().expect("four bytes"))
    }

    fn text(&mut self) -> String {
        let n = self.u32() as usize;
        String::from_utf8_lossy(self.take(n)).into_owned()
    }

    fn value(&mut self) -> Result<Value, Refusal> {
        Ok(match self.byte() {
            tag::UNDEFINED => Value::Undefined,
            tag::NULL => Value::Null,
            tag::FALSE => Value::Bool(false),
            tag::TRUE => Value::Bool(true),
            tag::NUMBER => Value::Number(f64::from_le_bytes(self.take(8).try_into().expect("eight bytes"))),
            tag::BIGINT => {
                let text = self.text();
                let n = text
                    .parse::<i128>()
                    .map_err(|_| Refusal::new(format!("the bigint {text} is out of every accepted range")))?;
                Value::BigInt(n)
            }
            tag::TEXT => Value::Text(self.text()),
            tag::BYTES => {
                let n = self.u32() as usize;
                Value::Bytes(self.take(n).to_vec())
            }
            tag::FUNCTION => Value::Function(self.side.get(self.u32()).unchecked_into()),
            tag::LIST => {
                let n = self.u32() as usize;
                let mut items = Vec::with_capacity(n);
                for i in 0..n {
                    items.push(self.value().map_err(|r| r.at(Step::Index(i)))?);
                }
                Value::List(items)
            }
            tag::MAP => {
                let n = self.u32() as usize;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.text();
                    let value = self.value().map_err(|r| r.at(Step::Key(key.clone())))?;
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            other => unreachable!("tape tag {other}"),
        })
    }

    fn refusal(&mut self) -> Refusal {
        let code = self.byte();
        let detail = self.text();
        let cause = self.u32();
        let message = match code & !tag::KEY {
            0 => "the string could not be read".to_string(),
            1 => "the string is not well-formed UTF-16 (it has a lone surrogate)".to_string(),
            2 => format!("the value is larger than {} MiB", MAX_INPUT_BYTES >> 20),
            3 => "the bigint could not be read".to_string(),
            4 => "a symbol cannot be stored".to_string(),
            5 => "the object could not be inspected".to_string(),
            6 => "the Uint8Array could not be read".to_string(),
            7 => format!("a {detail} is not accepted here: use a plain object, an array, a Uint8Array or a primitive"),
            8 => format!("nested deeper than {MAX_DEPTH} levels (or cyclic)"),
            9 => "its keys could not be read".to_string(),
            10 => "a symbol key cannot be stored".to_string(),
            11 => "reading it threw".to_string(),
            13 => "its length could not be read".to_string(),
            14 => "its length is not an array length".to_string(),
            15 => "an array with holes, named properties or symbol keys cannot be stored".to_string(),
            other => unreachable!("refusal code {other}"),
        };
        let message = if code & tag::KEY != 0 { format!("a key: {message}") } else { message };
        let mut refusal = match cause {
            u32::MAX => Refusal::new(message),
            index => Refusal::caused(message, self.side.get(index)),
        };
        for _ in 0..self.u32() {
            let step = match self.byte() {
                0 => Step::Key(self.text()),
                _ => Step::Index(self.u32() as usize),
            };
            refusal = refusal.at(step);
        }
        refusal
    }
}

/// Sets an own enumerable property, also for `"__proto__"` (which plain assignment would treat
/// as the prototype).
pub fn set_own(object: &Object, key: &str, value: &JsValue) {
    if key == "__proto__" {
        let descriptor = Object::new();
        for (field, flag) in [("writable", true), ("enumerable", true), ("configurable", true)] {
            let _ = Reflect::set(&descriptor, &field.into(), &flag.into());
        }
        let _ = Reflect::set(&descriptor, &"value".into(), value);
        let _ = Reflect::define_property(object, &key.into(), &descriptor);
    } else {
        let _ = Reflect::set(object, &key.into(), value);
    }
}

/// Deserializes `T` from a read value; the refusal names the path of the first bad value.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Refusal> {
    T::deserialize(ValueDeserializer(value))
}

/// Reads `value` and deserializes `T` from it: the whole boundary for one argument `what`.
pub fn parse<T: DeserializeOwned>(value: &JsValue, what: &str) -> Result<T, Rejection> {
    read(value).and_then(|v| from_value(&v)).map_err(|r| Rejection::from_refusal(r, what))
}

/// An error for JS plus the exception that caused it (`cause` on the rejection).
#[derive(Debug)]
pub struct Rejection {
    /// The error.
    pub error: Error,
    /// The caller's exception that caused it, if any.
    pub cause: Option<JsValue>,
}

impl Rejection {
    /// The rejection of argument `what` for `refusal`.
    pub fn from_refusal(refusal: Refusal, what: &str) -> Rejection {
        let (error, cause) = refusal.into_error(what);
        Rejection { error, cause }
    }
}

impl From<Error> for Rejection {
    fn from(error: Error) -> Rejection {
        Rejection { error, cause: None }
    }
}

/// The serde deserializer over a [`Value`].
struct ValueDeserializer<'a>(&'a Value);

impl ValueDeserializer<'_> {
    fn wrong(&self, expected: &str) -> Refusal {
        Refusal::new(format!("expected {expected}, got {}", self.0.describe()))
    }

    /// A map's entries for `visitor`; for a struct (`fields`), `undefined` means absent.
    fn entries<'de, V: Visitor<'de>>(self, visitor: V, fields: bool) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Map(entries) => {
                visitor.visit_map(Entries { entries: entries.iter(), value: None, skip_undefined: fields })
            }
            _ => Err(self.wrong("an object")),
        }
    }

    /// An integer within `min..=max`: a number (a safe integer) or a bigint.
    fn integer(&self, min: i128, max: i128) -> Result<i128, Refusal> {
        const SAFE: f64 = 9_007_199_254_740_991.0;
        let range = || {
            if max > SAFE as i128 {
                format!("an integer in {min}..={max} (a bigint, or a number up to 2^53 - 1)")
            } else {
                format!("an integer in {min}..={max}")
            }
        };
        let n = match self.0 {
            Value::Number(n) if n.fract() == 0.0 && n.abs() <= SAFE => *n as i128,
            Value::BigInt(n) => *n,
            _ => return Err(self.wrong(&range())),
        };
        if n < min || n > max {
            return Err(self.wrong(&range()));
        }
        Ok(n)
    }
}

macro_rules! integer_methods {
    ($( $method:ident $visit:ident $ty:ty ),*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
                let n = self.integer(<$ty>::MIN as i128, <$ty>::MAX as i128)?;
                visitor.$visit(n as $ty)
            }
        )*
    };
}

struct Entries<'a> {
    entries: std::slice::Iter<'a, (String, Value)>,
    value: Option<&'a (String, Value)>,
    /// Struct fields: `undefined` means absent.
    skip_undefined: bool,
}

impl<'de, 'a> MapAccess<'de> for Entries<'a> {
    type Error = Refusal;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Refusal> {
        let entry = loop {
            match self.entries.next() {
                Some((_, Value::Undefined)) if self.skip_undefined => continue,
                other => break other,
            }
        };
        let Some(entry) = entry else { return Ok(None) };
        self.value = Some(entry);
        let key: de::value::StrDeserializer<'_, Refusal> = entry.0.as_str().into_deserializer();
        seed.deserialize(key).map(Some).map_err(|r| r.at(Step::Key(entry.0.clone())))
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Refusal> {
        let (key, value) = self.value.take().ok_or_else(|| Refusal::new("a value without a key"))?;
        seed.deserialize(ValueDeserializer(value)).map_err(|r| r.at(Step::Key(key.clone())))
    }
}

struct Items<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
}

impl<'de, 'a> SeqAccess<'de> for Items<'a> {
    type Error = Refusal;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Refusal> {
        match self.items.next() {
            None => Ok(None),
            Some((i, value)) => seed.deserialize(ValueDeserializer(value)).map(Some).map_err(|r| r.at(Step::Index(i))),
        }
    }
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'_> {
    type Error = Refusal;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => visitor.visit_f64(*n),
            Value::BigInt(n) => visitor.visit_i128(*n),
            Value::Text(s) => visitor.visit_str(s),
            Value::Bytes(b) => visitor.visit_bytes(b),
            Value::List(_) => self.deserialize_seq(visitor),
            Value::Map(_) => self.deserialize_map(visitor),
            Value::Undefined | Value::Function(_) => Err(self.wrong("a value")),
        }
    }

    integer_methods!(
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16, deserialize_u32 visit_u32 u32,
        deserialize_u64 visit_u64 u64, deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16,
        deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_f64(visitor)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Number(n) => visitor.visit_f64(*n),
            _ => Err(self.wrong("a number")),
        }
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.wrong("a boolean")),
        }
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_str(visitor)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Text(s) => visitor.visit_str(s),
            _ => Err(self.wrong("a string")),
        }
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_str(visitor)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Bytes(b) => visitor.visit_bytes(b),
            _ => Err(self.wrong("a Uint8Array")),
        }
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_bytes(visitor)
    }
    // Only `null` is "none" (an entry's tombstone): an `undefined` entry is refused, so a missing
    // lookup (`map.get(k)`) never deletes. Undefined struct fields never get here (skipped above).
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            Value::Undefined => Err(self.wrong("a value, or null to delete the entry")),
            _ => visitor.visit_some(self),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Null | Value::Undefined => visitor.visit_unit(),
            _ => Err(self.wrong("null")),
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_unit(visitor)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::List(items) => visitor.visit_seq(Items { items: items.iter().enumerate() }),
            _ => Err(self.wrong("an array")),
        }
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.entries(visitor, false)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        self.entries(visitor, true)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Text(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => Err(self.wrong("a string")),
        }
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_str(visitor)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_unit()
    }
}

//! The tape of a caller's value, as `readTape` (src/js/convert.js) writes it, and the serde
//! deserializer that reads our types from it (the root crate's `js::convert` reads the value and
//! builds the refusals that name a JS cause).
//!
//! Here, in wallet-persist-core, so the release build optimises the cursor (each value's head,
//! each text) for speed (see core.rs): every `store()` reads its changeset through it. The
//! generic parts (the deserializer as each serde visitor uses it) are instantiated where they are
//! used, in the size-optimised root crate: instantiated here, for the changeset's types, they
//! made the gzipped .wasm 3.6% larger (12.9 kB) for another 6% of `store()`'s time.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// One step of a path: a property or an array index.
#[derive(Debug, Clone)]
pub enum Step {
    /// A property.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Why a value was refused and where (the path below the argument).
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Innermost step first (steps are added while the error travels outward).
    pub steps: Vec<Step>,
    /// Why.
    pub message: String,
}

impl Refusal {
    /// A refusal of the value itself (no path yet).
    pub fn new(message: impl Into<String>) -> Refusal {
        Refusal { steps: Vec::new(), message: message.into() }
    }

    /// The refusal one step further out.
    #[cold]
    #[inline(never)]
    pub fn at(mut self, step: Step) -> Refusal {
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
}

#[cold]
#[inline(never)]
fn message(message: String) -> Refusal {
    Refusal::new(message)
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
    #[cold]
    fn custom<T: fmt::Display>(msg: T) -> Self {
        message(msg.to_string())
    }
}

/// Deserializes `T` from the value on `tape`; the refusal names the path of the first bad value.
///
/// Invariant of every refusal: a bigint outside i128 anywhere in the value is refused before
/// anything else about the value (the first one, depth first): once deserializing failed, the
/// whole tape is checked (had it succeeded, it read every bigint).
pub fn deserialize<T: DeserializeOwned>(tape: &[u8]) -> Result<T, Refusal> {
    let refusal = match T::deserialize(TapeDeserializer(&mut Cursor { bytes: tape, at: 0 }, None)) {
        Ok(value) => return Ok(value),
        Err(refusal) => refusal,
    };
    check_bigints(tape)?;
    Err(refusal)
}

/// [`deserialize`] of a value that is an object, also returning its properties whose value is
/// `null` (in property order), noted while deserializing: no second pass over the tape.
pub fn deserialize_noting_nulls<T: DeserializeOwned>(tape: &[u8]) -> Result<(T, Vec<&str>), Refusal> {
    let mut nulls = Vec::new();
    let refusal = match T::deserialize(TapeDeserializer(&mut Cursor { bytes: tape, at: 0 }, Some(&mut nulls))) {
        Ok(value) => return Ok((value, nulls)),
        Err(refusal) => refusal,
    };
    check_bigints(tape)?;
    Err(refusal)
}

/// Refuses the first bigint (depth first) outside i128 on `tape`, naming its path.
pub fn check_bigints(tape: &[u8]) -> Result<(), Refusal> {
    Cursor { bytes: tape, at: 0 }.skip(true)
}

/// Tags of the tape (`readTape` in convert.js writes them).
pub mod tag {
    #![allow(missing_docs)]
    pub const UNDEFINED: u8 = 0;
    pub const NULL: u8 = 1;
    pub const FALSE: u8 = 2;
    pub const TRUE: u8 = 3;
    /// Then an f64.
    pub const NUMBER: u8 = 4;
    /// Then the decimal text (a bigint outside i64).
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
    /// Then the value as a little-endian i64 (a bigint within i64).
    pub const BIGINT64: u8 = 12;
    /// The flag of a refusal code that says a key, not a value, was refused.
    pub const KEY: u8 = 0x80;
}

/// One value of a tape as far as its tag and fixed part: a scalar whole, a list or map its count
/// (its items, or keys and values, follow).
#[allow(missing_docs)]
pub enum Head<'t> {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    /// Its decimal text (see [`bigint`]).
    BigInt(&'t str),
    /// A bigint within i64.
    BigInt64(i64),
    Text(&'t str),
    Bytes(&'t [u8]),
    /// Its index in `side`.
    Function(u32),
    List(usize),
    Map(usize),
}

impl Head<'_> {
    /// What the value is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Head::Undefined => "undefined".into(),
            Head::Null => "null".into(),
            Head::Bool(b) => format!("the boolean {b}"),
            Head::Number(n) => format!("the number {n}"),
            Head::BigInt(text) => format!("the bigint {text}"),
            Head::BigInt64(n) => format!("the bigint {n}"),
            Head::Text(_) => "a string".into(),
            Head::Bytes(_) => "a Uint8Array".into(),
            Head::Function(_) => "a function".into(),
            Head::List(_) => "an array".into(),
            Head::Map(_) => "an object".into(),
        }
    }
}

/// A bigint's value from its decimal text (as JS writes it: no leading zeros, no `-0`). Most fit
/// an i64, which parses faster in wasm than an i128.
pub fn bigint(text: &str) -> Result<i128, Refusal> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n.into());
    }
    text.parse().map_err(|_| Refusal::new(format!("the bigint {text} is out of every accepted range")))
}

/// A position in a tape. Its texts are UTF-8: `readTape` writes them as ASCII or with
/// `TextEncoder` (after checking them well-formed), the root crate's `Value::write` from Rust
/// strings.
pub struct Cursor<'t> {
    /// The tape.
    pub bytes: &'t [u8],
    /// Where the next value starts.
    pub at: usize,
}

impl<'t> Cursor<'t> {
    /// The next byte, not consumed.
    pub fn peek(&self) -> u8 {
        self.bytes[self.at]
    }

    /// The next byte.
    pub fn byte(&mut self) -> u8 {
        self.at += 1;
        self.bytes[self.at - 1]
    }

    /// The next `n` bytes.
    #[inline(always)]
    pub fn take(&mut self, n: usize) -> &'t [u8] {
        self.at += n;
        &self.bytes[self.at - n..self.at]
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N));
        out
    }

    /// The next little-endian `u32`.
    #[inline(always)]
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// A text, borrowed from the tape (U+FFFD alone if it were not UTF-8, which no writer does).
    #[inline(never)]
    pub fn text(&mut self) -> &'t str {
        let n = self.u32() as usize;
        std::str::from_utf8(self.take(n)).unwrap_or("\u{fffd}")
    }

    /// The next value's head (see [`Head`]).
    #[inline(never)]
    pub fn head(&mut self) -> Head<'t> {
        match self.byte() {
            tag::UNDEFINED => Head::Undefined,
            tag::NULL => Head::Null,
            tag::FALSE => Head::Bool(false),
            tag::TRUE => Head::Bool(true),
            tag::NUMBER => Head::Number(f64::from_le_bytes(self.array())),
            tag::BIGINT => Head::BigInt(self.text()),
            tag::BIGINT64 => Head::BigInt64(i64::from_le_bytes(self.array())),
            tag::TEXT => Head::Text(self.text()),
            tag::BYTES => {
                let n = self.u32() as usize;
                Head::Bytes(self.take(n))
            }
            tag::FUNCTION => Head::Function(self.u32()),
            tag::LIST => Head::List(self.u32() as usize),
            tag::MAP => Head::Map(self.u32() as usize),
            other => unreachable!("tape tag {other}"),
        }
    }

    /// Passes over the next value; with `check`, refuses the first bigint outside i128 in it
    /// (naming its path).
    pub fn skip(&mut self, check: bool) -> Result<(), Refusal> {
        match self.head() {
            Head::BigInt(text) if check => {
                bigint(text)?;
            }
            Head::List(n) => {
                for i in 0..n {
                    self.skip(check).map_err(|r| r.at(Step::Index(i)))?;
                }
            }
            Head::Map(n) => {
                for _ in 0..n {
                    let key = self.text();
                    self.skip(check).map_err(|r| r.at(Step::Key(key.to_owned())))?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The serde deserializer of the value at a cursor of a checked tape. A visitor that reads less
/// than the whole value (fewer items, an ignored value) leaves the cursor after it all the same.
/// If the value is an object, the keys of its properties whose value is `null` are pushed onto
/// the second field, if any, as they are read (its nested values note nothing).
struct TapeDeserializer<'c, 't>(&'c mut Cursor<'t>, Option<&'c mut Vec<&'t str>>);

#[cold]
#[inline(never)]
fn wrong(head: &Head<'_>, expected: &str) -> Refusal {
    Refusal::new(format!("expected {expected}, got {}", head.describe()))
}

impl TapeDeserializer<'_, '_> {
    /// A map's entries for `visitor`; for a struct (`fields`), `undefined` means absent.
    fn entries<'de, V: Visitor<'de>>(self, visitor: V, fields: bool) -> Result<V::Value, Refusal> {
        match self.0.head() {
            Head::Map(n) => {
                let mut entries = Entries { cursor: self.0, left: n, key: None, skip_undefined: fields, nulls: self.1 };
                let value = visitor.visit_map(&mut entries)?;
                entries.finish()?;
                Ok(value)
            }
            head => Err(wrong(&head, "an object")),
        }
    }

    /// An integer within `min..=max`: a number (a safe integer) or a bigint.
    #[inline(never)]
    fn integer(self, min: i128, max: i128) -> Result<i128, Refusal> {
        const SAFE: f64 = 9_007_199_254_740_991.0;
        let range = || {
            if max > SAFE as i128 {
                format!("an integer in {min}..={max} (a bigint, or a number up to 2^53 - 1)")
            } else {
                format!("an integer in {min}..={max}")
            }
        };
        let head = self.0.head();
        let n = match &head {
            Head::Number(n) if n.fract() == 0.0 && n.abs() <= SAFE => *n as i128,
            Head::BigInt(text) => bigint(text)?,
            Head::BigInt64(n) => i128::from(*n),
            _ => return Err(wrong(&head, &range())),
        };
        if n < min || n > max {
            return Err(wrong(&head, &range()));
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

/// A map's entries, read in order; `key` is the key whose value is next.
struct Entries<'c, 't> {
    cursor: &'c mut Cursor<'t>,
    left: usize,
    key: Option<&'t str>,
    /// Struct fields: `undefined` means absent.
    skip_undefined: bool,
    /// Where the keys whose value is `null` go, if anywhere.
    nulls: Option<&'c mut Vec<&'t str>>,
}

impl<'t> Entries<'_, 't> {
    /// The next key whose value is to be read, after passing over the value of the previous key
    /// if the visitor did not read it (noting it if its value is `null`; for struct fields,
    /// passing over keys whose value is `undefined`); `None` after the last. Not generic: one
    /// function for every visitor.
    #[inline(never)]
    fn next_key(&mut self) -> Result<Option<&'t str>, Refusal> {
        if self.key.take().is_some() {
            self.cursor.skip(true)?;
        }
        loop {
            if self.left == 0 {
                return Ok(None);
            }
            self.left -= 1;
            let key = self.cursor.text();
            if let Some(nulls) = self.nulls.as_deref_mut() {
                if self.cursor.peek() == tag::NULL {
                    nulls.push(key);
                }
            }
            if self.skip_undefined && self.cursor.peek() == tag::UNDEFINED {
                self.cursor.byte();
                continue;
            }
            return Ok(Some(key));
        }
    }

    /// The key whose value is next.
    #[inline(never)]
    fn value_key(&mut self) -> Result<&'t str, Refusal> {
        self.key.take().ok_or_else(|| Refusal::new("a value without a key"))
    }

    /// Passes over what the visitor did not read.
    #[inline(never)]
    fn finish(mut self) -> Result<(), Refusal> {
        if self.key.take().is_some() {
            self.cursor.skip(true)?;
        }
        for _ in 0..self.left {
            self.cursor.text();
            self.cursor.skip(true)?;
        }
        Ok(())
    }
}

impl<'de> MapAccess<'de> for Entries<'_, '_> {
    type Error = Refusal;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Refusal> {
        let Some(key) = self.next_key()? else {
            return Ok(None);
        };
        let found: de::value::StrDeserializer<'_, Refusal> = key.into_deserializer();
        let found = seed.deserialize(found).map(Some).map_err(|r| at_key(r, key));
        self.key = Some(key);
        found
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Refusal> {
        let key = self.value_key()?;
        seed.deserialize(TapeDeserializer(self.cursor, None)).map_err(|r| at_key(r, key))
    }
}

/// The refusal `refusal` one property further out. One function, not one copy per visitor.
#[cold]
#[inline(never)]
fn at_key(refusal: Refusal, key: &str) -> Refusal {
    refusal.at(Step::Key(key.to_owned()))
}

/// A list's items, read in order.
struct Items<'c, 't> {
    cursor: &'c mut Cursor<'t>,
    left: usize,
    index: usize,
}

/// The refusal `refusal` one array index further out. One function, not one copy per visitor.
#[cold]
#[inline(never)]
fn at_index(refusal: Refusal, index: usize) -> Refusal {
    refusal.at(Step::Index(index))
}

impl Items<'_, '_> {
    /// The index of the next item, `None` after the last.
    fn next_index(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.index += 1;
        Some(self.index - 1)
    }

    /// Passes over the items the visitor did not read.
    #[inline(never)]
    fn finish(self) -> Result<(), Refusal> {
        for _ in 0..self.left {
            self.cursor.skip(true)?;
        }
        Ok(())
    }
}

impl<'de> SeqAccess<'de> for Items<'_, '_> {
    type Error = Refusal;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Refusal> {
        let Some(index) = self.next_index() else {
            return Ok(None);
        };
        seed.deserialize(TapeDeserializer(&mut *self.cursor, None)).map(Some).map_err(|r| at_index(r, index))
    }
}

impl<'de> de::Deserializer<'de> for TapeDeserializer<'_, '_> {
    type Error = Refusal;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0.head() {
            Head::Null => visitor.visit_unit(),
            Head::Bool(b) => visitor.visit_bool(b),
            Head::Number(n) => visitor.visit_f64(n),
            Head::BigInt(text) => visitor.visit_i128(bigint(text)?),
            Head::BigInt64(n) => visitor.visit_i128(n.into()),
            Head::Text(s) => visitor.visit_str(s),
            Head::Bytes(b) => visitor.visit_bytes(b),
            Head::List(n) => self.items(n, visitor),
            Head::Map(n) => {
                let mut entries = Entries { cursor: self.0, left: n, key: None, skip_undefined: false, nulls: self.1 };
                let value = visitor.visit_map(&mut entries)?;
                entries.finish()?;
                Ok(value)
            }
            head @ (Head::Undefined | Head::Function(_)) => Err(wrong(&head, "a value")),
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
        match self.0.head() {
            Head::Number(n) => visitor.visit_f64(n),
            head => Err(wrong(&head, "a number")),
        }
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0.head() {
            Head::Bool(b) => visitor.visit_bool(b),
            head => Err(wrong(&head, "a boolean")),
        }
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_str(visitor)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0.head() {
            Head::Text(s) => visitor.visit_str(s),
            head => Err(wrong(&head, "a string")),
        }
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_str(visitor)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0.head() {
            Head::Bytes(b) => visitor.visit_bytes(b),
            head => Err(wrong(&head, "a Uint8Array")),
        }
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_bytes(visitor)
    }
    // Only `null` is "none" (an entry's tombstone): an `undefined` entry is refused, so a missing
    // lookup (`map.get(k)`) never deletes. Undefined struct fields never get here (skipped above).
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0.peek() {
            tag::NULL => {
                self.0.byte();
                visitor.visit_none()
            }
            tag::UNDEFINED => Err(wrong(&self.0.head(), "a value, or null to delete the entry")),
            _ => visitor.visit_some(self),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0.head() {
            Head::Null | Head::Undefined => visitor.visit_unit(),
            head => Err(wrong(&head, "null")),
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_unit(visitor)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0.head() {
            Head::List(n) => self.items(n, visitor),
            head => Err(wrong(&head, "an array")),
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
        match self.0.head() {
            Head::Text(s) => visitor.visit_enum(s.into_deserializer()),
            head => Err(wrong(&head, "a string")),
        }
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_str(visitor)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.0.skip(true)?;
        visitor.visit_unit()
    }
}

impl TapeDeserializer<'_, '_> {
    /// A list of `n` items (its head read) for `visitor`.
    fn items<'de, V: Visitor<'de>>(self, n: usize, visitor: V) -> Result<V::Value, Refusal> {
        let mut items = Items { cursor: self.0, left: n, index: 0 };
        let value = visitor.visit_seq(&mut items)?;
        items.finish()?;
        Ok(value)
    }
}

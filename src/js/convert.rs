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
//! [`Tape::read`] keeps that tape (plain objects, arrays, `Uint8Array`s of any realm, primitives;
//! everything else refused), then [`Tape::deserialize`] reads our types from it with serde, naming
//! the path of the first refused value. [`read`] builds a [`Value`] tree instead, for arguments
//! whose properties are picked by hand; [`from_value`] deserializes from a part of such a tree.

use std::cell::Cell;
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
    /// `store`'s walletId and changes on one tape (see [`read_store_args`]), written at `ptr` if it
    /// fits in `cap` bytes; its length.
    #[wasm_bindgen(catch, js_name = readChanges)]
    fn read_changes(
        wallet: &JsValue,
        changes: &JsValue,
        max_depth: u32,
        max_bytes: u32,
        ptr: u32,
        cap: u32,
    ) -> Result<u32, JsValue>;
    /// The last `readChanges` tape that did not fit, written at `ptr`.
    #[wasm_bindgen(js_name = takeTape)]
    fn take_tape(ptr: u32);
    /// The functions and causes of the last `readChanges` tape.
    #[wasm_bindgen(js_name = takeSide)]
    fn take_side() -> Array;
    /// Gives convert.js this module's memory, for `readChanges`.
    #[wasm_bindgen(js_name = setMemory)]
    fn set_memory(memory: &JsValue);
}

thread_local! {
    /// Whether convert.js has the module's memory.
    static MEMORY_SET: Cell<bool> = const { Cell::new(false) };
    /// The buffer `readChanges` writes into, kept between calls (all of it initialised; a call made
    /// while another reads, from a getter, finds it taken and grows its own).
    static CHANGES_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
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

/// A caller value read once into a tape by `readTape` (convert.js): nothing in it can run caller
/// code any more. [`Tape::deserialize`] reads our types straight from it; [`Tape::value`] builds
/// the [`Value`] tree for callers that pick properties by hand.
///
/// Invariant of every refusal: a bigint outside i128 anywhere in the value is refused before
/// anything else about the value (the first one, depth first). [`Tape::value`] meets it by
/// parsing in order; [`Tape::deserialize`] by checking the whole tape once it has failed (had it
/// succeeded, it read every bigint); a caller that refuses the value for another reason calls
/// [`Tape::check_bigints`] first.
pub struct Tape {
    bytes: Vec<u8>,
    /// The functions the tape holds (by index).
    side: Array,
}

impl Tape {
    /// Reads `value`: plain objects (prototype `Object.prototype` of any realm, or `null`), dense
    /// arrays without named properties, `Uint8Array`s of any realm, primitives and functions.
    /// Refuses `Map`, `Set`, `Date`, class instances, boxed primitives, symbols, symbol keys,
    /// lone surrogates, nesting deeper than [`MAX_DEPTH`] (cycles included) and more than
    /// [`MAX_INPUT_BYTES`] in all; bigints outside i128 are refused later (see [`Tape`]).
    ///
    /// `readTape` walks the value once, depth first: each value is charged 16 bytes when reached,
    /// each string or key its UTF-8 length once found well-formed, each `Uint8Array` its length.
    /// Its first refusal replaces the tape with a refusal record.
    pub fn read(value: &JsValue) -> Result<Tape, Refusal> {
        let side = Array::new();
        let bytes = read_tape(value, &side, MAX_DEPTH as u32, MAX_INPUT_BYTES as u32)
            .map_err(|e| Refusal::caused("the value could not be read", e))?
            .to_vec();
        if bytes.first() == Some(&tag::REFUSED) {
            return Err(Cursor { bytes: &bytes, at: 1 }.refusal(&side));
        }
        Ok(Tape { bytes, side })
    }

    /// The value as a tree.
    pub fn value(&self) -> Result<Value, Refusal> {
        Cursor { bytes: &self.bytes, at: 0 }.value(&self.side)
    }

    /// The tape's value, to deserialize or inspect.
    pub fn view(&self) -> TapeView<'_> {
        TapeView(&self.bytes)
    }
}

/// A read value's tape (see [`Tape`]), borrowed: from a [`Tape`], or from [`read_store_args`].
#[derive(Clone, Copy)]
pub struct TapeView<'t>(&'t [u8]);

impl TapeView<'_> {
    /// Deserializes `T` from the value; the refusal names the path of the first bad value.
    pub fn deserialize<T: DeserializeOwned>(self) -> Result<T, Refusal> {
        let refusal = match T::deserialize(TapeDeserializer(&mut Cursor { bytes: self.0, at: 0 })) {
            Ok(value) => return Ok(value),
            Err(refusal) => refusal,
        };
        self.check_bigints()?;
        Err(refusal)
    }

    /// Refuses the first bigint (depth first) outside i128, naming its path.
    pub fn check_bigints(self) -> Result<(), Refusal> {
        Cursor { bytes: self.0, at: 0 }.skip(true)
    }

    /// Whether the value is a plain object.
    pub fn is_object(self) -> bool {
        self.0.first() == Some(&tag::MAP)
    }

    /// The first of `keys` that the (plain object) value has as a property whose value is `null`.
    pub fn null_property(self, keys: &[&'static str]) -> Option<&'static str> {
        let mut cursor = Cursor { bytes: self.0, at: 0 };
        let Head::Map(n) = cursor.head() else { return None };
        let mut found = Vec::new();
        for _ in 0..n {
            let key = cursor.text();
            if cursor.peek() == tag::NULL {
                found.extend(keys.iter().filter(|k| **k == key));
            }
            cursor.skip(false).ok()?;
        }
        keys.iter().find(|k| found.contains(k)).copied()
    }
}

/// Reads `value` into a [`Value`] tree (see [`Tape::read`]).
pub fn read(value: &JsValue) -> Result<Value, Refusal> {
    Tape::read(value)?.value()
}

/// `store`'s two arguments, read in one call across the boundary: first the walletId, then, only
/// if it is 64 lowercase hex characters, `changes` as [`Tape::read`] reads them (so for any other
/// walletId none of the changes' getters run). `id` gets the walletId's text (`None`: not a
/// string; a lone surrogate reads as U+FFFD) and is `Err` for anything but a wallet id, which is
/// then the error; else `then` gets the changes' tape. A refusal of the changes is argument
/// `what`'s.
pub fn read_store_args<T>(
    wallet: &JsValue,
    changes: &JsValue,
    what: &str,
    id: impl FnOnce(Option<&str>) -> crate::Result<crate::model::WalletId>,
    then: impl FnOnce(TapeView<'_>) -> Result<T, Rejection>,
) -> Result<(crate::model::WalletId, T), Rejection> {
    if !MEMORY_SET.get() {
        set_memory(&wasm_bindgen::memory());
        MEMORY_SET.set(true);
    }
    let mut buffer = CHANGES_BUFFER.take();
    let result = (|| {
        let n = read_changes(
            wallet,
            changes,
            MAX_DEPTH as u32,
            MAX_INPUT_BYTES as u32,
            buffer.as_mut_ptr() as u32,
            buffer.len() as u32,
        )
        .map_err(|e| Rejection::from_refusal(Refusal::caused("the value could not be read", e), what))?
            as usize;
        if n > buffer.len() {
            buffer.resize(n.max(1024), 0);
            take_tape(buffer.as_mut_ptr() as u32);
        }
        let mut cursor = Cursor { bytes: &buffer[..n], at: 0 };
        let wallet = match cursor.byte() {
            STORE_ID_NOT_TEXT => id(None)?,
            STORE_ID_BAD => {
                id(Some(cursor.text()))?;
                return Err(Error::Internal("a wallet id was not read as one".into()).into());
            }
            _ => id(Some(cursor.text()))?,
        };
        let tape = &cursor.bytes[cursor.at..];
        if tape.first() == Some(&tag::REFUSED) {
            let refusal = Cursor { bytes: tape, at: 1 }.refusal(&take_side());
            return Err(Rejection::from_refusal(refusal, what));
        }
        Ok((wallet, then(TapeView(tape))?))
    })();
    // Kept unless a large value made it large (as convert.js keeps its own tape buffer).
    if buffer.len() <= 65536 {
        CHANGES_BUFFER.set(buffer);
    }
    result
}

/// The first tag of a `readChanges` tape: the walletId is not a string.
const STORE_ID_NOT_TEXT: u8 = 0;
/// The walletId is a string but not a wallet id (its text follows, then nothing).
const STORE_ID_BAD: u8 = 1;

/// Tags of the tape (`readTape` in convert.js writes them).
mod tag {
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
enum Head<'t> {
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
    fn describe(&self) -> String {
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
fn bigint(text: &str) -> Result<i128, Refusal> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n.into());
    }
    text.parse().map_err(|_| Refusal::new(format!("the bigint {text} is out of every accepted range")))
}

/// A position in a tape. Its texts are UTF-8: `readTape` writes them as ASCII or with
/// `TextEncoder` (after checking them well-formed), [`Value::write`] from Rust strings.
///
/// The fixed-size readers are `inline(always)`: the crate is optimised for size, and as calls
/// (with a `Result` each) they cost a store() of a small changeset about a tenth of its time.
struct Cursor<'t> {
    bytes: &'t [u8],
    at: usize,
}

impl<'t> Cursor<'t> {
    fn peek(&self) -> u8 {
        self.bytes[self.at]
    }

    fn byte(&mut self) -> u8 {
        self.at += 1;
        self.bytes[self.at - 1]
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> &'t [u8] {
        self.at += n;
        &self.bytes[self.at - n..self.at]
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N));
        out
    }

    #[inline(always)]
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// A text, borrowed from the tape (U+FFFD alone if it were not UTF-8, which no writer does).
    fn text(&mut self) -> &'t str {
        let n = self.u32() as usize;
        std::str::from_utf8(self.take(n)).unwrap_or("\u{fffd}")
    }

    /// The next value's head (see [`Head`]).
    fn head(&mut self) -> Head<'t> {
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
    fn skip(&mut self, check: bool) -> Result<(), Refusal> {
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

    /// The next value as a tree.
    fn value(&mut self, side: &Array) -> Result<Value, Refusal> {
        Ok(match self.head() {
            Head::Undefined => Value::Undefined,
            Head::Null => Value::Null,
            Head::Bool(b) => Value::Bool(b),
            Head::Number(n) => Value::Number(n),
            Head::BigInt(text) => Value::BigInt(bigint(text)?),
            Head::BigInt64(n) => Value::BigInt(n.into()),
            Head::Text(text) => Value::Text(text.to_owned()),
            Head::Bytes(bytes) => Value::Bytes(bytes.to_vec()),
            Head::Function(index) => Value::Function(side.get(index).unchecked_into()),
            Head::List(n) => {
                let mut items = Vec::with_capacity(n);
                for i in 0..n {
                    items.push(self.value(side).map_err(|r| r.at(Step::Index(i)))?);
                }
                Value::List(items)
            }
            Head::Map(n) => {
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.text().to_owned();
                    let value = self.value(side).map_err(|r| r.at(Step::Key(key.clone())))?;
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
        })
    }

    /// The refusal record after its tag.
    fn refusal(&mut self, side: &Array) -> Refusal {
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
            index => Refusal::caused(message, side.get(index)),
        };
        for _ in 0..self.u32() {
            let step = match self.byte() {
                0 => Step::Key(self.text().to_owned()),
                _ => Step::Index(self.u32() as usize),
            };
            refusal = refusal.at(step);
        }
        refusal
    }
}

impl Value {
    /// Writes the value as `readTape` would (a function as an index nothing reads).
    fn write(&self, out: &mut Vec<u8>) {
        fn text(out: &mut Vec<u8>, text: &str) {
            out.extend_from_slice(&(text.len() as u32).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        match self {
            Value::Undefined => out.push(tag::UNDEFINED),
            Value::Null => out.push(tag::NULL),
            Value::Bool(b) => out.push(if *b { tag::TRUE } else { tag::FALSE }),
            Value::Number(n) => {
                out.push(tag::NUMBER);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Value::BigInt(n) => {
                out.push(tag::BIGINT);
                text(out, &n.to_string());
            }
            Value::Text(s) => {
                out.push(tag::TEXT);
                text(out, s);
            }
            Value::Bytes(bytes) => {
                out.push(tag::BYTES);
                out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                out.extend_from_slice(bytes);
            }
            Value::Function(_) => {
                out.push(tag::FUNCTION);
                out.extend_from_slice(&u32::MAX.to_le_bytes());
            }
            Value::List(items) => {
                out.push(tag::LIST);
                out.extend_from_slice(&(items.len() as u32).to_le_bytes());
                items.iter().for_each(|item| item.write(out));
            }
            Value::Map(entries) => {
                out.push(tag::MAP);
                out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
                for (key, value) in entries {
                    text(out, key);
                    value.write(out);
                }
            }
        }
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

/// Deserializes `T` from a read value (written back to a tape: one deserializer, over tapes);
/// the refusal names the path of the first bad value.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Refusal> {
    let mut bytes = Vec::new();
    value.write(&mut bytes);
    T::deserialize(TapeDeserializer(&mut Cursor { bytes: &bytes, at: 0 }))
}

/// Reads `value` and deserializes `T` from it: the whole boundary for one argument `what`.
pub fn parse<T: DeserializeOwned>(value: &JsValue, what: &str) -> Result<T, Rejection> {
    Tape::read(value).and_then(|tape| tape.view().deserialize()).map_err(|r| Rejection::from_refusal(r, what))
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

/// The serde deserializer of the value at a cursor of a checked tape. A visitor that reads less
/// than the whole value (fewer items, an ignored value) leaves the cursor after it all the same.
struct TapeDeserializer<'c, 't>(&'c mut Cursor<'t>);

fn wrong(head: &Head<'_>, expected: &str) -> Refusal {
    Refusal::new(format!("expected {expected}, got {}", head.describe()))
}

impl TapeDeserializer<'_, '_> {
    /// A map's entries for `visitor`; for a struct (`fields`), `undefined` means absent.
    fn entries<'de, V: Visitor<'de>>(self, visitor: V, fields: bool) -> Result<V::Value, Refusal> {
        match self.0.head() {
            Head::Map(n) => {
                let mut entries = Entries { cursor: self.0, left: n, key: None, skip_undefined: fields };
                let value = visitor.visit_map(&mut entries)?;
                entries.finish()?;
                Ok(value)
            }
            head => Err(wrong(&head, "an object")),
        }
    }

    /// An integer within `min..=max`: a number (a safe integer) or a bigint.
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
}

impl Entries<'_, '_> {
    /// Passes over what the visitor did not read.
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
        if self.key.take().is_some() {
            self.cursor.skip(true)?;
        }
        let key = loop {
            if self.left == 0 {
                return Ok(None);
            }
            self.left -= 1;
            let key = self.cursor.text();
            if self.skip_undefined && self.cursor.peek() == tag::UNDEFINED {
                self.cursor.byte();
                continue;
            }
            break key;
        };
        let found: de::value::StrDeserializer<'_, Refusal> = key.into_deserializer();
        let found = seed.deserialize(found).map(Some).map_err(|r| r.at(Step::Key(key.to_string())));
        self.key = Some(key);
        found
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Refusal> {
        let key = self.key.take().ok_or_else(|| Refusal::new("a value without a key"))?;
        seed.deserialize(TapeDeserializer(self.cursor)).map_err(|r| r.at(Step::Key(key.to_owned())))
    }
}

/// A list's items, read in order.
struct Items<'c, 't> {
    cursor: &'c mut Cursor<'t>,
    left: usize,
    index: usize,
}

impl Items<'_, '_> {
    /// Passes over the items the visitor did not read.
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
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.index += 1;
        let index = self.index - 1;
        seed.deserialize(TapeDeserializer(&mut *self.cursor)).map(Some).map_err(|r| r.at(Step::Index(index)))
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
                let mut entries = Entries { cursor: self.0, left: n, key: None, skip_undefined: false };
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

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
//! everything else refused), then [`TapeView::deserialize`] reads our types from it with serde
//! ([`wallet_persist_core::input`]), naming the path of the first refused value. [`read`] builds
//! a [`Value`] tree instead, for arguments whose properties are picked by hand; [`from_value`]
//! deserializes from a part of such a tree.

use std::cell::Cell;
use std::fmt;

use js_sys::{Array, Function, Object, Reflect};
use serde::de::DeserializeOwned;
use wallet_persist_core::input::{self, bigint, tag, Cursor, Head, Step};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::Error;
use crate::model::WalletId;

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

/// A refused caller value: why and where (see [`input::Refusal`]), and the JS exception that
/// caused it, if one did.
#[derive(Debug, Clone)]
pub struct Refusal {
    inner: input::Refusal,
    cause: Option<JsValue>,
}

impl Refusal {
    fn new(message: impl Into<String>) -> Refusal {
        input::Refusal::new(message).into()
    }

    fn caused(message: impl Into<String>, cause: JsValue) -> Refusal {
        Refusal { inner: input::Refusal::new(message), cause: Some(cause) }
    }

    fn at(self, step: Step) -> Refusal {
        Refusal { inner: self.inner.at(step), cause: self.cause }
    }

    /// The error of argument `what`: `invalid_argument` naming the path, and the JS cause.
    pub fn into_error(self, what: &str) -> (Error, Option<JsValue>) {
        (Error::InvalidArgument(format!("{what}{}: {}", self.inner.path(), self.inner.message)), self.cause)
    }
}

impl From<input::Refusal> for Refusal {
    fn from(inner: input::Refusal) -> Refusal {
        Refusal { inner, cause: None }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::error::Error for Refusal {}

/// A caller value read once into a tape by `readTape` (convert.js): nothing in it can run caller
/// code any more. [`TapeView::deserialize`] reads our types straight from it; [`Tape::value`] builds
/// the [`Value`] tree for callers that pick properties by hand.
///
/// Invariant of every refusal: a bigint outside i128 anywhere in the value is refused before
/// anything else about the value (the first one, depth first). [`Tape::value`] meets it by
/// parsing in order; [`TapeView::deserialize`] by checking the whole tape once it has failed (had it
/// succeeded, it read every bigint); a caller that refuses the value for another reason calls
/// [`TapeView::check_bigints`] first.
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
            return Err(refusal_record(&mut Cursor { bytes: &bytes, at: 1 }, &side));
        }
        Ok(Tape { bytes, side })
    }

    /// The value as a tree.
    pub fn value(&self) -> Result<Value, Refusal> {
        tree(&mut Cursor { bytes: &self.bytes, at: 0 }, &self.side)
    }

    /// The tape's value, to deserialize or inspect.
    pub fn view(&self) -> TapeView<'_> {
        TapeView(&self.bytes)
    }
}

/// A read value's tape (see [`Tape`]), borrowed: from a [`Tape`], or from [`read_store_args`].
#[derive(Clone, Copy)]
pub struct TapeView<'t>(&'t [u8]);

impl<'t> TapeView<'t> {
    /// Deserializes `T` from the value; the refusal names the path of the first bad value.
    pub fn deserialize<T: DeserializeOwned>(self) -> Result<T, Refusal> {
        Ok(input::deserialize(self.0)?)
    }

    /// [`TapeView::deserialize`] of an object, also returning the keys of its properties whose
    /// value is `null` (see [`input::deserialize_noting_nulls`]).
    pub fn deserialize_noting_nulls<T: DeserializeOwned>(self) -> Result<(T, Vec<&'t str>), Refusal> {
        Ok(input::deserialize_noting_nulls(self.0)?)
    }

    /// Refuses the first bigint (depth first) outside i128, naming its path.
    pub fn check_bigints(self) -> Result<(), Refusal> {
        Ok(input::check_bigints(self.0)?)
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
    id: impl FnOnce(Option<&str>) -> crate::Result<WalletId>,
    then: impl FnOnce(TapeView<'_>) -> Result<T, Rejection>,
) -> Result<(WalletId, T), Rejection> {
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
            let refusal = refusal_record(&mut Cursor { bytes: tape, at: 1 }, &take_side());
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

/// The next value as a tree.
fn tree(cursor: &mut Cursor<'_>, side: &Array) -> Result<Value, Refusal> {
    Ok(match cursor.head() {
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
                items.push(tree(cursor, side).map_err(|r| r.at(Step::Index(i)))?);
            }
            Value::List(items)
        }
        Head::Map(n) => {
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let key = cursor.text().to_owned();
                let value = tree(cursor, side).map_err(|r| r.at(Step::Key(key.clone())))?;
                entries.push((key, value));
            }
            Value::Map(entries)
        }
    })
}

/// The refusal record after its tag.
fn refusal_record(cursor: &mut Cursor<'_>, side: &Array) -> Refusal {
    let code = cursor.byte();
    let detail = cursor.text();
    let cause = cursor.u32();
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
    for _ in 0..cursor.u32() {
        let step = match cursor.byte() {
            0 => Step::Key(cursor.text().to_owned()),
            _ => Step::Index(cursor.u32() as usize),
        };
        refusal = refusal.at(step);
    }
    refusal
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
    Ok(input::deserialize(&bytes)?)
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

//! Our own results as a tape that `buildValue` (src/js/convert.js) turns into JS values in one pass: one call across the
//! boundary per value instead of one per field, string and byte array.
//!
//! The values built are those serde-wasm-bindgen builds with `serialize_large_number_types_as_bigints`
//! and `serialize_missing_as_null` (human-readable; `u64`/`i64` as BigInt, other numbers as numbers,
//! `None`, `()` and unit structs as `null`, bytes as fresh `Uint8Array`s, unit variants as their
//! name, other variants as `{ variant: value }`), except that every map becomes a plain object whose
//! keys (strings) are all own enumerable properties, `"__proto__"` included.
//!
//! Tape: one tag byte per value, then its payload; numbers little-endian, counts and lengths `u32`.

use std::collections::HashMap;

use js_sys::Array;
use serde::ser::{self, Serialize};
use wasm_bindgen::prelude::*;

use crate::error::{Error, Result};

#[wasm_bindgen(module = "/src/js/convert.js")]
extern "C" {
    /// Builds the value on `tape` (a view of wasm memory, read before anything else runs in wasm);
    /// `names` are the struct field names, by index.
    #[wasm_bindgen(js_name = buildValue)]
    fn build_value(tape: &[u8], names: &Array) -> JsValue;
}

// The tags; `buildValue` in convert.js has the same list.
const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const NUMBER: u8 = 3; // f64
const BIGINT_U64: u8 = 4;
const BIGINT_I64: u8 = 5;
const STRING: u8 = 6; // length, UTF-8
const BYTES: u8 = 7; // length, bytes
const ARRAY: u8 = 8; // count, values
const OBJECT: u8 = 9; // count, (key, value) pairs; a key is a STRING or a FIELD
const FIELD: u8 = 10; // index into the field names

/// Writes values onto a tape and builds them in JS. The tape and the field names are kept between
/// values, so a long run of values of the same types allocates once and sends each name once.
pub struct TapeWriter {
    tape: Vec<u8>,
    names: Array,
    /// Field name (by address and length: they are `&'static str`) → index in `names`.
    indices: HashMap<(usize, usize), u32>,
}

impl TapeWriter {
    /// An empty tape.
    pub fn new() -> Self {
        TapeWriter { tape: Vec::new(), names: Array::new(), indices: HashMap::new() }
    }

    /// The JS value of `value`.
    pub fn build<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<JsValue> {
        self.tape.clear();
        value.serialize(&mut *self).map_err(|e| Error::Internal(format!("result conversion: {}", e.0)))?;
        Ok(build_value(&self.tape, &self.names))
    }

    fn u32(&mut self, n: usize) -> std::result::Result<(), TapeError> {
        let n = u32::try_from(n).map_err(|_| TapeError("a length does not fit in 32 bits".into()))?;
        self.tape.extend_from_slice(&n.to_le_bytes());
        Ok(())
    }

    fn tagged(&mut self, tag: u8, bytes: &[u8]) -> std::result::Result<(), TapeError> {
        self.tape.push(tag);
        self.u32(bytes.len())?;
        self.tape.extend_from_slice(bytes);
        Ok(())
    }

    fn number(&mut self, n: f64) {
        self.tape.push(NUMBER);
        self.tape.extend_from_slice(&n.to_le_bytes());
    }

    /// Starts a container: its tag and a count patched by `end`.
    fn open(&mut self, tag: u8) -> Container {
        self.tape.push(tag);
        let at = self.tape.len();
        self.tape.extend_from_slice(&[0; 4]);
        Container { at, count: 0 }
    }

    fn end(&mut self, container: Container) -> std::result::Result<(), TapeError> {
        let count = u32::try_from(container.count).map_err(|_| TapeError("too many elements".into()))?;
        self.tape[container.at..container.at + 4].copy_from_slice(&count.to_le_bytes());
        Ok(())
    }

    fn field(&mut self, name: &'static str) {
        let next = self.indices.len() as u32;
        let index = *self.indices.entry((name.as_ptr() as usize, name.len())).or_insert_with(|| {
            self.names.push(&JsValue::from_str(name));
            next
        });
        self.tape.push(FIELD);
        self.tape.extend_from_slice(&index.to_le_bytes());
    }

    /// `{ variant: … }`: the object around a non-unit enum variant's value.
    fn variant(&mut self, variant: &'static str) -> Container {
        let mut object = self.open(OBJECT);
        object.count = 1;
        self.field(variant);
        object
    }
}

impl Default for TapeWriter {
    fn default() -> Self {
        Self::new()
    }
}

struct Container {
    at: usize,
    count: usize,
}

/// A value serde cannot put on the tape (a map key that is not a string, a 128-bit number).
#[derive(Debug)]
pub struct TapeError(String);

impl std::fmt::Display for TapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TapeError {}

impl ser::Error for TapeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        TapeError(msg.to_string())
    }
}

type Done = std::result::Result<(), TapeError>;

/// A container being written: the writer and its count.
pub struct Compound<'a> {
    writer: &'a mut TapeWriter,
    container: Container,
    /// The enclosing `{ variant: … }` object of a tuple or struct variant, closed with it.
    variant: Option<Container>,
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.container.count += 1;
        value.serialize(&mut *self.writer)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Done {
        self.container.count += 1;
        self.writer.field(key);
        value.serialize(&mut *self.writer)
    }

    fn finish(self) -> Done {
        self.writer.end(self.container)?;
        match self.variant {
            Some(variant) => self.writer.end(variant),
            None => Ok(()),
        }
    }
}

impl<'a> ser::Serializer for &'a mut TapeWriter {
    type Ok = ();
    type Error = TapeError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn is_human_readable(&self) -> bool {
        true
    }

    fn serialize_bool(self, v: bool) -> Done {
        self.tape.push(if v { TRUE } else { FALSE });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Done {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Done {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Done {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_u8(self, v: u8) -> Done {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Done {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Done {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f32(self, v: f32) -> Done {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Done {
        self.number(v);
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Done {
        self.tape.push(BIGINT_I64);
        self.tape.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Done {
        self.tape.push(BIGINT_U64);
        self.tape.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Done {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Done {
        self.tagged(STRING, v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Done {
        self.tagged(BYTES, v)
    }
    fn serialize_none(self) -> Done {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        self.tape.push(NULL);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Done {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Done {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Done {
        let object = self.variant(variant);
        value.serialize(&mut *self)?;
        self.end(object)
    }
    fn serialize_seq(self, _len: Option<usize>) -> std::result::Result<Compound<'a>, TapeError> {
        let container = self.open(ARRAY);
        Ok(Compound { writer: self, container, variant: None })
    }
    fn serialize_tuple(self, len: usize) -> std::result::Result<Compound<'a>, TapeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> std::result::Result<Compound<'a>, TapeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> std::result::Result<Compound<'a>, TapeError> {
        let outer = self.variant(variant);
        let container = self.open(ARRAY);
        Ok(Compound { writer: self, container, variant: Some(outer) })
    }
    fn serialize_map(self, _len: Option<usize>) -> std::result::Result<Compound<'a>, TapeError> {
        let container = self.open(OBJECT);
        Ok(Compound { writer: self, container, variant: None })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> std::result::Result<Compound<'a>, TapeError> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> std::result::Result<Compound<'a>, TapeError> {
        let outer = self.variant(variant);
        let container = self.open(OBJECT);
        Ok(Compound { writer: self, container, variant: Some(outer) })
    }
}

/// The sequence-like serde traits: each element is the next value in the container.
macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = TapeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
                self.element(value)
            }
            fn end(self) -> Done {
                self.finish()
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = TapeError;
    /// A key must be a string: it becomes an own property name.
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
        self.container.count += 1;
        let at = self.writer.tape.len();
        key.serialize(&mut *self.writer)?;
        if self.writer.tape[at] != STRING {
            return Err(TapeError("a map key is not a string".into()));
        }
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Done {
        self.finish()
    }
}

/// The struct-like serde traits: each field is a (name, value) pair of the object.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = TapeError;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Done {
                self.field(key, value)
            }
            fn end(self) -> Done {
                self.finish()
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

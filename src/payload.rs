//! The payload of every wallet row (and of a pending registration), written and read by hand in
//! bincode 2's `config::standard()` format, byte for byte: little endian; unsigned integers as a
//! varint (a value up to 250 in one byte, else a marker byte 251, 252 or 253 and the value as u16,
//! u32 or u64); `u8` and `bool` as one byte; strings and byte strings as a varint length and the
//! bytes; `Option` as a tag byte 0 or 1 and the value; an enum as its variant index (varint u32);
//! structs and tuples as their fields in order; a map as a varint length and its pairs.
//!
//! Hand-written so the .wasm holds one small reader and writer instead of a serde and bincode
//! instance per area. Reading accepts exactly what bincode (with the envelope's byte limit)
//! accepts and refuses exactly what it refuses; tests/payload.rs checks both directions against
//! bincode on random and mutated values.
//!
//! Reading never panics and allocates only for bytes present in the input. Like bincode's limit,
//! every read claims bytes against [`MAX_CLAIMED`] before it happens (1 for a `u8`, `bool` or tag,
//! 4 for a `u32` or variant index, 8 for a `u64` or a length, the length for a string's bytes);
//! a claim past it is an oversize value.

/// Claimed bytes past which a payload is refused as oversize (bincode's `Limit`).
pub const MAX_CLAIMED: u64 = crate::codec::MAX_BLOB_BYTES as u64;

const U16_MARK: u8 = 251;
const U32_MARK: u8 = 252;
const U64_MARK: u8 = 253;

/// Where a payload is written: bytes, or only their count (to check a size without allocating).
pub struct Out {
    buf: Vec<u8>,
    counted: usize,
    count_only: bool,
}

impl Out {
    /// Appends to `buf`.
    pub fn appending(buf: Vec<u8>) -> Out {
        Out { buf, counted: 0, count_only: false }
    }
    /// Counts bytes without keeping them.
    pub fn counter() -> Out {
        Out { buf: Vec::new(), counted: 0, count_only: true }
    }
    /// The bytes written (empty for a counter).
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
    /// Bytes written (or counted) so far, `buf`'s initial bytes included.
    pub fn len(&self) -> usize {
        self.counted + self.buf.len()
    }
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Raw bytes.
    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) {
        if self.count_only {
            self.counted += bytes.len();
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }
    /// One raw byte.
    #[inline]
    pub fn byte(&mut self, byte: u8) {
        if self.count_only {
            self.counted += 1;
        } else {
            self.buf.push(byte);
        }
    }
    /// An unsigned integer as a varint (the same bytes for `u32`, `u64` and `usize`).
    #[inline(never)]
    pub fn varint(&mut self, value: u64) {
        if value <= 250 {
            self.byte(value as u8);
        } else if value <= u64::from(u16::MAX) {
            self.byte(U16_MARK);
            self.bytes(&(value as u16).to_le_bytes());
        } else if value <= u64::from(u32::MAX) {
            self.byte(U32_MARK);
            self.bytes(&(value as u32).to_le_bytes());
        } else {
            self.byte(U64_MARK);
            self.bytes(&value.to_le_bytes());
        }
    }
    /// A length-prefixed byte string.
    #[inline(never)]
    pub fn byte_string(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.bytes(bytes);
    }
}

/// Why a payload did not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    /// The input ended inside a value.
    End,
    /// A claim passed [`MAX_CLAIMED`]; carries the last integer read (for a length, the length).
    TooLarge(u64),
    /// A byte sequence no value encodes as.
    Invalid(&'static str),
}

/// Reads a payload front to back. The readers of strings, varints and ids, and each struct's
/// `encode` and `decode`, are one function each (`inline(never)`): inlined into every area's
/// row decoder they made the .wasm larger, and a call per field costs next to nothing.
pub struct In<'a> {
    rest: &'a [u8],
    claimed: u64,
    /// The last read of at most 8 bytes, as a little-endian integer: what bincode's envelope
    /// reported as the length of an oversize claim.
    last: u64,
}

impl<'a> In<'a> {
    /// A reader over `payload`, nothing claimed yet.
    pub fn new(payload: &'a [u8]) -> In<'a> {
        In { rest: payload, claimed: 0, last: 0 }
    }
    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
    #[inline]
    fn claim(&mut self, n: u64) -> Result<(), Fail> {
        match self.claimed.checked_add(n) {
            Some(claimed) if claimed <= MAX_CLAIMED => {
                self.claimed = claimed;
                Ok(())
            }
            _ => Err(Fail::TooLarge(self.last)),
        }
    }
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        if n > self.rest.len() {
            return Err(Fail::End);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        if n <= 8 {
            let mut le = [0u8; 8];
            le[..n].copy_from_slice(head);
            self.last = u64::from_le_bytes(le);
        }
        Ok(head)
    }
    #[inline]
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], Fail> {
        let head = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }
    /// One byte (a `u8`).
    #[inline]
    pub fn u8(&mut self) -> Result<u8, Fail> {
        self.claim(1)?;
        Ok(self.take(1)?[0])
    }
    /// A varint of at most `widest` (the marker of the widest width accepted), claiming `claim`.
    #[inline(never)]
    fn varint(&mut self, claim: u64, widest: u8) -> Result<u64, Fail> {
        self.claim(claim)?;
        let first = self.take(1)?[0];
        match first {
            0..=250 => Ok(u64::from(first)),
            U16_MARK => Ok(u64::from(u16::from_le_bytes(self.take_array()?))),
            U32_MARK if widest >= U32_MARK => Ok(u64::from(u32::from_le_bytes(self.take_array()?))),
            U64_MARK if widest >= U64_MARK => Ok(u64::from_le_bytes(self.take_array()?)),
            _ => Err(Fail::Invalid("varint marker too wide for its integer type")),
        }
    }
    /// A `u32`.
    #[inline]
    pub fn u32(&mut self) -> Result<u32, Fail> {
        self.varint(4, U32_MARK).map(|v| v as u32)
    }
    /// A `u64`.
    #[inline]
    pub fn u64(&mut self) -> Result<u64, Fail> {
        self.varint(8, U64_MARK)
    }
    /// A length (a `usize` in bincode: 8 bytes claimed, u64 wide).
    #[inline]
    pub fn length(&mut self) -> Result<u64, Fail> {
        self.varint(8, U64_MARK)
    }
    /// A `bool`: 0 or 1.
    #[inline]
    pub fn bool(&mut self) -> Result<bool, Fail> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Fail::Invalid("bool other than 0 or 1")),
        }
    }
    /// An `Option` tag: 0 (`None`) or 1 (`Some`).
    #[inline]
    pub fn tag(&mut self) -> Result<bool, Fail> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Fail::Invalid("option tag other than 0 or 1")),
        }
    }
    /// 32 raw bytes, claimed one byte at a time (bincode reads a `[u8; 32]` byte by byte).
    #[inline(never)]
    pub fn array32(&mut self) -> Result<[u8; 32], Fail> {
        if self.claimed + 32 <= MAX_CLAIMED && self.rest.len() >= 32 {
            self.claimed += 32;
            let out: [u8; 32] = self.rest[..32].try_into().map_err(|_| Fail::End)?;
            self.rest = &self.rest[32..];
            self.last = u64::from(out[31]);
            return Ok(out);
        }
        let mut out = [0u8; 32];
        for byte in &mut out {
            *byte = self.u8()?;
        }
        Ok(out)
    }
    /// A length-prefixed byte string, borrowed from the input.
    #[inline(never)]
    pub fn byte_string(&mut self) -> Result<&'a [u8], Fail> {
        let len = self.length()?;
        self.claim(len)?;
        // The claim bounds `len` by MAX_CLAIMED, which fits any usize.
        self.take(len as usize)
    }
    /// A length-prefixed UTF-8 string.
    #[inline(never)]
    pub fn string(&mut self) -> Result<String, Fail> {
        let bytes = self.byte_string()?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(Fail::Invalid("string is not UTF-8")),
        }
    }
}

/// A value that writes itself into a payload.
pub trait Put {
    /// Appends the value's bytes.
    fn encode(&self, out: &mut Out);
}

/// A value that reads itself from a payload.
pub trait Take: Sized {
    /// Reads one value; the reader stops after it.
    fn decode(input: &mut In<'_>) -> Result<Self, Fail>;
}

impl<T: Put + ?Sized> Put for &T {
    #[inline]
    fn encode(&self, out: &mut Out) {
        (**self).encode(out)
    }
}

impl<A: Put, B: Put> Put for (A, B) {
    #[inline]
    fn encode(&self, out: &mut Out) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

impl<A: Take, B: Take> Take for (A, B) {
    #[inline]
    fn decode(input: &mut In<'_>) -> Result<Self, Fail> {
        let a = A::decode(input)?;
        Ok((a, B::decode(input)?))
    }
}

impl Put for u8 {
    #[inline]
    fn encode(&self, out: &mut Out) {
        out.byte(*self)
    }
}
impl Take for u8 {
    #[inline]
    fn decode(input: &mut In<'_>) -> Result<Self, Fail> {
        input.u8()
    }
}

impl Put for u32 {
    #[inline]
    fn encode(&self, out: &mut Out) {
        out.varint(u64::from(*self))
    }
}
impl Take for u32 {
    #[inline]
    fn decode(input: &mut In<'_>) -> Result<Self, Fail> {
        input.u32()
    }
}

impl Put for u64 {
    #[inline]
    fn encode(&self, out: &mut Out) {
        out.varint(*self)
    }
}
impl Take for u64 {
    #[inline]
    fn decode(input: &mut In<'_>) -> Result<Self, Fail> {
        input.u64()
    }
}

impl Put for bool {
    #[inline]
    fn encode(&self, out: &mut Out) {
        out.byte(u8::from(*self))
    }
}
impl Take for bool {
    #[inline]
    fn decode(input: &mut In<'_>) -> Result<Self, Fail> {
        input.bool()
    }
}

impl Put for str {
    #[inline]
    fn encode(&self, out: &mut Out) {
        out.byte_string(self.as_bytes())
    }
}
impl Put for String {
    #[inline]
    fn encode(&self, out: &mut Out) {
        out.byte_string(self.as_bytes())
    }
}
impl Take for String {
    #[inline]
    fn decode(input: &mut In<'_>) -> Result<Self, Fail> {
        input.string()
    }
}

impl Put for serde_bytes::ByteBuf {
    #[inline]
    fn encode(&self, out: &mut Out) {
        out.byte_string(self)
    }
}
impl Take for serde_bytes::ByteBuf {
    #[inline(never)]
    fn decode(input: &mut In<'_>) -> Result<Self, Fail> {
        input.byte_string().map(|bytes| serde_bytes::ByteBuf::from(bytes.to_vec()))
    }
}

impl<T: Put> Put for Option<T> {
    #[inline]
    fn encode(&self, out: &mut Out) {
        match self {
            None => out.byte(0),
            Some(value) => {
                out.byte(1);
                value.encode(out);
            }
        }
    }
}
impl<T: Take> Take for Option<T> {
    #[inline]
    fn decode(input: &mut In<'_>) -> Result<Self, Fail> {
        if input.tag()? {
            T::decode(input).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// `Put` and `Take` for a struct: its fields in declaration order (list them all, in that order).
#[macro_export]
macro_rules! payload_struct {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::payload::Put for $ty {
            #[inline(never)]
            fn encode(&self, out: &mut $crate::payload::Out) {
                $( $crate::payload::Put::encode(&self.$field, out); )*
            }
        }
        impl $crate::payload::Take for $ty {
            #[inline(never)]
            fn decode(input: &mut $crate::payload::In<'_>) -> ::std::result::Result<Self, $crate::payload::Fail> {
                // Struct literal fields are evaluated in the order written: the payload's order.
                Ok($ty { $( $field: $crate::payload::Take::decode(input)?, )* })
            }
        }
    };
}

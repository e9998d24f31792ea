//! 32-byte identifiers, written as 64 lowercase hex characters everywhere outside Rust.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// A 32-byte hash or id: txid, identity id, token id, contact id, block hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

/// The id of one wallet: 32 bytes, 64 lowercase hex characters in JS and in IndexedDB keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WalletId(pub [u8; 32]);

/// The value of each lowercase hex digit; `INVALID` for every other byte.
const NIBBLES: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 16 {
        table[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const INVALID: u8 = 0x80;

/// 32 bytes from 64 lowercase hex characters, from a table without a branch per digit: every
/// store parses three or four ids (the wallet, txids, hashes).
fn parse_hex32(s: &str, what: &str) -> Result<[u8; 32], Error> {
    let bad = || Error::InvalidArgument(format!("{what} must be 64 lowercase hex characters, got {s:?}"));
    let Ok(pairs) = <&[u8; 64]>::try_from(s.as_bytes()) else { return Err(bad()) };
    let mut out = [0u8; 32];
    let mut seen = 0u8;
    for (byte, pair) in out.iter_mut().zip(pairs.chunks_exact(2)) {
        let (high, low) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
        seen |= high | low;
        *byte = (high << 4) | low;
    }
    if seen & INVALID != 0 {
        return Err(bad());
    }
    Ok(out)
}

/// 64 lowercase hex characters, from a table: ids are spelled for every row a flush writes and
/// every row `load` checks, and `write!("{b:02x}")` per byte cost ~6% of a 10,000-row load.
fn hex32(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The order of the bytes (as `[u8; 32]` compares), eight at a time: in wasm a byte slice
/// compares with `memcmp`, a loop over single bytes, and every staged change looks its wallet up
/// in B-trees keyed by these ids (whose bytes often differ only at the end).
fn cmp32(a: &[u8; 32], b: &[u8; 32]) -> Ordering {
    let words = |bytes: &[u8; 32]| -> [u64; 4] {
        std::array::from_fn(|i| u64::from_be_bytes(bytes[8 * i..8 * i + 8].try_into().expect("eight bytes")))
    };
    words(a).cmp(&words(b))
}

fn write_hex(bytes: &[u8; 32], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&hex32(bytes))
}

/// Deserializes a string (human-readable formats) and parses it with `parse`, without an owned
/// copy of the text; a parse error is the format's custom error.
pub(crate) fn parse_text<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: fn(&str) -> Result<T, Error>,
) -> Result<T, D::Error> {
    struct Text<T>(fn(&str) -> Result<T, Error>);
    impl<T> serde::de::Visitor<'_> for Text<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            (self.0)(text).map_err(E::custom)
        }
    }
    d.deserialize_string(Text(parse))
}

macro_rules! hex_id {
    ($ty:ident, $what:literal) => {
        impl $ty {
            /// Parses 64 lowercase hex characters.
            pub fn from_hex(s: &str) -> Result<Self, Error> {
                parse_hex32(s, $what).map($ty)
            }
            /// 64 lowercase hex characters.
            pub fn to_hex(&self) -> String {
                hex32(&self.0)
            }
        }
        impl Ord for $ty {
            fn cmp(&self, other: &Self) -> Ordering {
                cmp32(&self.0, &other.0)
            }
        }
        impl PartialOrd for $ty {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(&self.0, f)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "("))?;
                write_hex(&self.0, f)?;
                write!(f, ")")
            }
        }
        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::from_hex(s)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(s)
                }
            }
        }
        /// 32 raw bytes in a payload.
        impl $crate::payload::Put for $ty {
            #[inline]
            fn encode(&self, out: &mut $crate::payload::Out) {
                out.bytes(&self.0)
            }
        }
        impl $crate::payload::Take for $ty {
            #[inline]
            fn decode(input: &mut $crate::payload::In<'_>) -> Result<Self, $crate::payload::Fail> {
                input.array32().map($ty)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    parse_text(d, Self::from_hex)
                } else {
                    <[u8; 32]>::deserialize(d).map($ty)
                }
            }
        }
    };
}

hex_id!(Hash32, "a 32-byte id");
hex_id!(WalletId, "a wallet id");

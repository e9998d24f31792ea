//! Entry keys: how each area's key is spelled in JS (a string) and in IndexedDB (array parts).
//!
//! An IndexedDB key is `[walletIdHex, ...entryKey.to_parts()]`, so one key range covers one wallet.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::model::ids::Hash32;
use crate::payload::{Fail, In, Out, Put, Take};

/// One component of an IndexedDB array key. Numbers sort before strings, as in IndexedDB.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyPart {
    /// A number (an index, a vout).
    Num(u32),
    /// A string (a wallet id or hash in hex, an address, a name).
    Text(String),
}

/// A full IndexedDB key: `[walletIdHex, ...entry key parts]`.
pub type Key = Vec<KeyPart>;

/// A typed entry key. `ARITY` parts in IndexedDB; `js_key` / `parse_js` for JS object keys.
pub trait EntryKey: Ord + Clone + fmt::Debug + Sized {
    /// How many key parts the key takes in IndexedDB.
    const ARITY: usize;
    /// Appends the key parts to `out`.
    fn to_parts(&self, out: &mut Key);
    /// Reads the key from exactly `ARITY` parts; `None` if they do not form one.
    fn from_parts(parts: &[KeyPart]) -> Option<Self>;
    /// The key as a JS object key (e.g. `"<txid>:<vout>"`).
    fn js_key(&self) -> String;
    /// Parses a JS object key; `InvalidArgument` if malformed.
    fn parse_js(s: &str) -> Result<Self, Error>;
}

fn bad_key(what: &str, s: &str) -> Error {
    Error::InvalidArgument(format!("malformed {what} key {s:?}"))
}

/// The key of a per-wallet singleton (the wallet record, the sync state).
impl EntryKey for () {
    const ARITY: usize = 0;
    fn to_parts(&self, _: &mut Key) {}
    fn from_parts(parts: &[KeyPart]) -> Option<Self> {
        parts.is_empty().then_some(())
    }
    fn js_key(&self) -> String {
        String::new()
    }
    fn parse_js(_: &str) -> Result<Self, Error> {
        Ok(())
    }
}

impl EntryKey for u32 {
    const ARITY: usize = 1;
    fn to_parts(&self, out: &mut Key) {
        out.push(KeyPart::Num(*self));
    }
    fn from_parts(parts: &[KeyPart]) -> Option<Self> {
        match parts {
            [KeyPart::Num(n)] => Some(*n),
            _ => None,
        }
    }
    fn js_key(&self) -> String {
        self.to_string()
    }
    fn parse_js(s: &str) -> Result<Self, Error> {
        // Canonical decimal only, so that one number has exactly one key spelling: `parse` also
        // takes a leading `+` and leading zeros.
        match s.parse::<u32>() {
            Ok(n) if s == "0" || !s.starts_with(['+', '0']) => Ok(n),
            _ => Err(bad_key("u32", s)),
        }
    }
}

impl EntryKey for String {
    const ARITY: usize = 1;
    fn to_parts(&self, out: &mut Key) {
        out.push(KeyPart::Text(self.clone()));
    }
    fn from_parts(parts: &[KeyPart]) -> Option<Self> {
        match parts {
            [KeyPart::Text(s)] => Some(s.clone()),
            _ => None,
        }
    }
    fn js_key(&self) -> String {
        self.clone()
    }
    fn parse_js(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(bad_key("string", s));
        }
        Ok(s.to_owned())
    }
}

impl EntryKey for Hash32 {
    const ARITY: usize = 1;
    fn to_parts(&self, out: &mut Key) {
        out.push(KeyPart::Text(self.to_hex()));
    }
    fn from_parts(parts: &[KeyPart]) -> Option<Self> {
        match parts {
            [KeyPart::Text(s)] => Hash32::from_hex(s).ok(),
            _ => None,
        }
    }
    fn js_key(&self) -> String {
        self.to_hex()
    }
    fn parse_js(s: &str) -> Result<Self, Error> {
        Hash32::from_hex(s)
    }
}

/// Two keys side by side; in JS `"<a>:<b>"` (split at the first colon, so `A` never holds one).
impl<A: EntryKey, B: EntryKey> EntryKey for (A, B) {
    const ARITY: usize = A::ARITY + B::ARITY;
    fn to_parts(&self, out: &mut Key) {
        self.0.to_parts(out);
        self.1.to_parts(out);
    }
    fn from_parts(parts: &[KeyPart]) -> Option<Self> {
        if parts.len() != Self::ARITY {
            return None;
        }
        let (a, b) = parts.split_at(A::ARITY);
        Some((A::from_parts(a)?, B::from_parts(b)?))
    }
    fn js_key(&self) -> String {
        format!("{}:{}", self.0.js_key(), self.1.js_key())
    }
    fn parse_js(s: &str) -> Result<Self, Error> {
        let (a, b) = s.split_once(':').ok_or_else(|| bad_key("composite", s))?;
        Ok((A::parse_js(a)?, B::parse_js(b)?))
    }
}

/// A transaction output: `"<txid hex>:<vout>"` in JS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OutPoint {
    /// The transaction id.
    pub txid: Hash32,
    /// The output index.
    pub vout: u32,
}

impl EntryKey for OutPoint {
    const ARITY: usize = 2;
    fn to_parts(&self, out: &mut Key) {
        (self.txid, self.vout).to_parts(out)
    }
    fn from_parts(parts: &[KeyPart]) -> Option<Self> {
        <(Hash32, u32)>::from_parts(parts).map(|(txid, vout)| OutPoint { txid, vout })
    }
    fn js_key(&self) -> String {
        (self.txid, self.vout).js_key()
    }
    fn parse_js(s: &str) -> Result<Self, Error> {
        <(Hash32, u32)>::parse_js(s).map(|(txid, vout)| OutPoint { txid, vout })
    }
}

impl Serialize for OutPoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.js_key())
        } else {
            (self.txid, self.vout).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for OutPoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            crate::model::ids::parse_text(d, OutPoint::parse_js)
        } else {
            let (txid, vout) = <(Hash32, u32)>::deserialize(d)?;
            Ok(OutPoint { txid, vout })
        }
    }
}

/// The txid's 32 bytes, then the vout.
impl Put for OutPoint {
    #[inline]
    fn encode(&self, out: &mut Out) {
        self.txid.encode(out);
        self.vout.encode(out);
    }
}

impl Take for OutPoint {
    #[inline]
    fn decode(input: &mut In<'_>) -> Result<Self, Fail> {
        let txid = Take::decode(input)?;
        Ok(OutPoint { txid, vout: input.u32()? })
    }
}

/// Which side of a contact relationship an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactKind {
    /// A request we sent.
    Sent,
    /// A request we received.
    Received,
    /// Both sides sent one.
    Established,
}

impl ContactKind {
    fn as_str(self) -> &'static str {
        match self {
            ContactKind::Sent => "sent",
            ContactKind::Received => "received",
            ContactKind::Established => "established",
        }
    }
}

/// The variant index in declaration order, as serde numbers it.
impl Put for ContactKind {
    #[inline]
    fn encode(&self, out: &mut Out) {
        let index: u32 = match self {
            ContactKind::Sent => 0,
            ContactKind::Received => 1,
            ContactKind::Established => 2,
        };
        index.encode(out)
    }
}

impl Take for ContactKind {
    #[inline]
    fn decode(input: &mut In<'_>) -> Result<Self, Fail> {
        match input.u32()? {
            0 => Ok(ContactKind::Sent),
            1 => Ok(ContactKind::Received),
            2 => Ok(ContactKind::Established),
            _ => Err(Fail::Invalid("unknown contact kind")),
        }
    }
}

impl EntryKey for ContactKind {
    const ARITY: usize = 1;
    fn to_parts(&self, out: &mut Key) {
        out.push(KeyPart::Text(self.as_str().to_owned()));
    }
    fn from_parts(parts: &[KeyPart]) -> Option<Self> {
        match parts {
            [KeyPart::Text(s)] => Self::parse_js(s).ok(),
            _ => None,
        }
    }
    fn js_key(&self) -> String {
        self.as_str().to_owned()
    }
    fn parse_js(s: &str) -> Result<Self, Error> {
        match s {
            "sent" => Ok(ContactKind::Sent),
            "received" => Ok(ContactKind::Received),
            "established" => Ok(ContactKind::Established),
            _ => Err(bad_key("contact kind", s)),
        }
    }
}

/// Spells a key as a JSON array, e.g. `["ab…", 0]`.
pub fn key_to_string(key: &Key) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|part| match part {
            KeyPart::Num(n) => n.to_string(),
            KeyPart::Text(s) => format!("{s:?}"),
        })
        .collect();
    format!("[{}]", parts.join(","))
}

//! The versioned envelope every stored value is wrapped in:
//! `magic (4) | flags u8 | schema version u16 LE | payload length u32 LE | bincode payload`.
//!
//! Decoding never allocates past the byte limit, refuses trailing bytes, unknown flags and schema
//! versions newer than this build's, and never panics on any input.
//!
//! Wallet rows and pending registrations go through [`encode_payload`] / [`decode_payload`]: the
//! same bytes, written and read by hand ([`crate::payload`]). Everything else goes through serde.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::payload::{Fail, In, Out, Put, Take};

/// Identifies a wallet-persist envelope.
pub const MAGIC: [u8; 4] = *b"WPST";
/// The schema version this build writes and the newest it reads.
pub const SCHEMA_VERSION: u16 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 11;
/// The default and largest byte limit for one stored value.
pub const MAX_BLOB_BYTES: usize = 16 * 1024 * 1024;
/// Flag bit 0 is "payload encrypted"; plain envelopes carry no flag.
const KNOWN_FLAGS: u8 = 0;
/// Flag bit 0: the payload is `nonce | ciphertext | tag` (see `backend::encrypted`), opened by the
/// encrypted backend before anything decodes it. A plain decoder refuses it as an unknown flag.
pub const FLAG_SEALED: u8 = 1;

/// bincode's own limit bounds every length-prefixed allocation inside a payload.
type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_BLOB_BYTES>,
>;

fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_BLOB_BYTES>()
}

/// Encodes `value` into an envelope; refuses a payload over `limit` bytes.
pub fn encode<T: Serialize>(value: &T, limit: usize) -> Result<Vec<u8>> {
    encode_as(value, SCHEMA_VERSION, limit)
}

/// `encode`, stamping the header with schema version `version` (for migrations).
pub fn encode_as<T: Serialize>(value: &T, version: u16, limit: usize) -> Result<Vec<u8>> {
    let limit = limit.min(MAX_BLOB_BYTES);
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.push(0);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| Error::Internal(format!("encode: {e}")))?;
    let len = out.len() - HEADER_LEN;
    if len > limit {
        return Err(Error::BlobTooLarge { len: len as u64, limit: limit as u64 });
    }
    out[7..11].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// [`encode`] for a value with a hand-written payload ([`Put`]): the same bytes as bincode's.
pub fn encode_payload<T: Put + ?Sized>(value: &T, limit: usize) -> Result<Vec<u8>> {
    let mut out = Out::appending(plain_header());
    value.encode(&mut out);
    seal_length(out.finish(), limit)
}

/// The header of a plain envelope, its payload length still 0, with room for a small payload.
#[inline(never)]
fn plain_header() -> Vec<u8> {
    let mut header = Vec::with_capacity(64);
    header.extend_from_slice(&MAGIC);
    header.push(0);
    header.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    header.extend_from_slice(&[0; 4]);
    header
}

/// Writes the payload length into the header of `envelope`; refuses a payload over `limit`.
#[inline(never)]
fn seal_length(mut envelope: Vec<u8>, limit: usize) -> Result<Vec<u8>> {
    let limit = limit.min(MAX_BLOB_BYTES);
    let len = envelope.len() - HEADER_LEN;
    if len > limit {
        return Err(Error::BlobTooLarge { len: len as u64, limit: limit as u64 });
    }
    envelope[7..11].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(envelope)
}

/// [`check_size`] for a value with a hand-written payload.
pub fn check_payload_size<T: Put + ?Sized>(value: &T, limit: usize) -> Result<()> {
    let limit = limit.min(MAX_BLOB_BYTES);
    let mut size = Out::counter();
    value.encode(&mut size);
    if size.len() > limit {
        return Err(Error::BlobTooLarge { len: size.len() as u64, limit: limit as u64 });
    }
    Ok(())
}

/// [`decode`] for a value with a hand-written payload ([`Take`]): accepts and refuses what
/// `decode` does, with the same error kinds.
pub fn decode_payload<T: Take>(bytes: &[u8], limit: usize) -> Result<T> {
    let (_version, payload) = check_header(bytes, limit, SCHEMA_VERSION)?;
    let mut input = In::new(payload);
    match T::decode(&mut input) {
        Ok(value) if input.rest().is_empty() => Ok(value),
        Ok(_) => Err(payload_error(None, input.rest().len(), limit)),
        Err(fail) => Err(payload_error(Some(fail), 0, limit)),
    }
}

/// The error of a payload that failed to read (`fail`) or left `trailing` bytes.
#[cold]
#[inline(never)]
fn payload_error(fail: Option<Fail>, trailing: usize, limit: usize) -> Error {
    match fail {
        None => Error::BlobDecode(format!("{trailing} trailing bytes after the payload")),
        Some(Fail::End) => Error::BlobDecode("payload ends inside a value".into()),
        Some(Fail::TooLarge(len)) => Error::BlobTooLarge { len, limit: limit.min(MAX_BLOB_BYTES) as u64 },
        Some(Fail::Invalid(what)) => Error::BlobDecode(what.into()),
    }
}

/// Refuses a value whose encoded payload would exceed `limit`, without allocating it.
pub fn check_size<T: Serialize>(value: &T, limit: usize) -> Result<()> {
    let limit = limit.min(MAX_BLOB_BYTES);
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, bincode::config::standard())
        .map_err(|e| Error::Internal(format!("encode: {e}")))?;
    if size.bytes_written > limit {
        return Err(Error::BlobTooLarge { len: size.bytes_written as u64, limit: limit as u64 });
    }
    Ok(())
}

/// Reads the schema version of an envelope without decoding its payload.
pub fn schema_version(bytes: &[u8]) -> Result<u16> {
    check_header(bytes, MAX_BLOB_BYTES, u16::MAX).map(|(version, _)| version)
}

/// Validates the header of a plain envelope; returns the schema version and the payload slice.
fn check_header(bytes: &[u8], limit: usize, newest: u16) -> Result<(u16, &[u8])> {
    check_header_flags(bytes, limit.min(MAX_BLOB_BYTES), newest, KNOWN_FLAGS)
}

/// `check_header` for a value whose flags byte must be exactly `flags`.
fn check_header_flags(bytes: &[u8], limit: usize, newest: u16, flags_expected: u8) -> Result<(u16, &[u8])> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::BlobDecode(format!("truncated header: {} bytes", bytes.len())));
    }
    if bytes[0..4] != MAGIC {
        return Err(Error::BlobDecode("wrong magic".into()));
    }
    let flags = bytes[4];
    if flags != flags_expected {
        return Err(Error::BlobDecode(format!("unknown flags {flags:#04x}")));
    }
    let version = u16::from_le_bytes([bytes[5], bytes[6]]);
    if version > newest {
        return Err(Error::SchemaVersionUnsupported { found: version, supported: newest });
    }
    if version == 0 {
        return Err(Error::BlobDecode("schema version 0".into()));
    }
    let len = u32::from_le_bytes([bytes[7], bytes[8], bytes[9], bytes[10]]) as usize;
    if len > limit {
        return Err(Error::BlobTooLarge { len: len as u64, limit: limit as u64 });
    }
    let payload = &bytes[HEADER_LEN..];
    if payload.len() < len {
        return Err(Error::BlobDecode(format!("truncated payload: {} of {len} bytes", payload.len())));
    }
    if payload.len() > len {
        return Err(Error::BlobDecode(format!("{} trailing bytes after the envelope", payload.len() - len)));
    }
    Ok((version, payload))
}

/// The header of a sealed value whose payload (`nonce | ciphertext | tag`) is `payload_len` bytes.
pub fn sealed_header(payload_len: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(&MAGIC);
    header[4] = FLAG_SEALED;
    header[5..7].copy_from_slice(&SCHEMA_VERSION.to_le_bytes());
    header[7..11].copy_from_slice(&(payload_len as u32).to_le_bytes());
    header
}

/// Whether `bytes` is a sealed value (magic and the sealed flag), authentic or not.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[0..4] == MAGIC && bytes[4] == FLAG_SEALED
}

/// Splits a sealed value into its header and payload, checking the header as [`decode`] does
/// (magic, exactly the sealed flag, schema version, length, no trailing bytes).
pub fn split_sealed(bytes: &[u8]) -> Result<(&[u8], &[u8])> {
    if bytes.len() >= HEADER_LEN && bytes[4] != FLAG_SEALED && bytes[0..4] == MAGIC {
        return Err(Error::BlobDecode(format!("not a sealed value (flags {:#04x})", bytes[4])));
    }
    // A sealed payload holds a whole envelope, its key and the nonce and tag: allow for them.
    let (_version, payload) = check_header_flags(bytes, usize::MAX, SCHEMA_VERSION, FLAG_SEALED)?;
    Ok((&bytes[..HEADER_LEN], payload))
}

/// Decodes an envelope written by this or an older schema.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T> {
    decode_leading(bytes, limit, false)
}

/// Decodes the leading `T` of an envelope's payload (checked like [`decode`]) and ignores what
/// follows it: the channel a meta row names, whatever type the app's meta after it has.
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T> {
    decode_leading(bytes, limit, true)
}

fn decode_leading<T: DeserializeOwned>(bytes: &[u8], limit: usize, rest_allowed: bool) -> Result<T> {
    let (_version, payload) = check_header(bytes, limit, SCHEMA_VERSION)?;
    let mut reader = PayloadReader { rest: payload, last_int: 0 };
    let mut decoder = bincode::serde::OwnedSerdeDecoder::from_reader(&mut reader, config());
    let decoded = T::deserialize(decoder.as_deserializer());
    let value = decoded.map_err(|e| match e {
        bincode::error::DecodeError::LimitExceeded => {
            Error::BlobTooLarge { len: reader.last_int, limit: limit.min(MAX_BLOB_BYTES) as u64 }
        }
        // A length beyond the address space (wasm32 usize) is an oversize claim too.
        bincode::error::DecodeError::OutsideUsizeRange(len) => {
            Error::BlobTooLarge { len, limit: limit.min(MAX_BLOB_BYTES) as u64 }
        }
        other => Error::BlobDecode(other.to_string()),
    })?;
    if !reader.rest.is_empty() && !rest_allowed {
        return Err(Error::BlobDecode(format!("{} trailing bytes after the payload", reader.rest.len())));
    }
    Ok(value)
}

/// Reads a payload and remembers the last integer read. bincode reads a length prefix just before
/// it checks the claim against the limit, so on `LimitExceeded` this is the offending length.
struct PayloadReader<'a> {
    rest: &'a [u8],
    last_int: u64,
}

impl bincode::de::read::Reader for PayloadReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::result::Result<(), bincode::error::DecodeError> {
        if out.len() > self.rest.len() {
            return Err(bincode::error::DecodeError::UnexpectedEnd { additional: out.len() - self.rest.len() });
        }
        let (head, tail) = self.rest.split_at(out.len());
        out.copy_from_slice(head);
        self.rest = tail;
        if out.len() <= 8 {
            let mut le = [0u8; 8];
            le[..out.len()].copy_from_slice(out);
            self.last_int = u64::from_le_bytes(le);
        }
        Ok(())
    }
}

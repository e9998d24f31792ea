//! The backup file format, written and validated in full before anything is imported:
//!
//! ```text
//! "WPBK" | format u16 | schema u16 | created-at ms u64 | store count u16
//! | per store: name length u8, name, row count u32                      (the manifest)
//! | per store, per row: key length u32, key (bincode), value length u32, value (envelope)
//! | CRC-32 (IEEE) u32 of every byte before it
//! ```
//! All integers little-endian. Every length is checked against the bytes that remain before
//! anything is allocated, so a hostile file can neither over-allocate nor read out of bounds.

use crate::backend::Row;
use crate::codec::{self, HEADER_LEN, MAX_BLOB_BYTES, SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::layout::{AREA_STORES, CHANNEL_HISTORY, CHANNEL_STORES};
use crate::model::{Key, WalletChangeSet};

/// The first four bytes of every backup.
pub const MAGIC: [u8; 4] = *b"WPBK";
/// The format this build writes and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;

/// A validated backup.
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    /// The schema version of the rows.
    pub schema: u16,
    /// When the backup was taken (unix ms).
    pub created_at_ms: u64,
    /// Every backup store, in `backup_stores` order, with its rows.
    pub stores: Vec<(&'static str, Vec<Row>)>,
}

impl Backup {
    /// Rows over every store.
    pub fn row_count(&self) -> usize {
        self.stores.iter().map(|(_, rows)| rows.len()).sum()
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320).
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |crc, b| TABLE[((crc ^ u32::from(*b)) & 0xff) as usize] ^ (crc >> 8))
}

fn invalid(message: impl Into<String>) -> Error {
    Error::BackupInvalid(message.into())
}

/// Writes `stores` (each with its rows) as a backup.
pub fn encode(stores: &[(&'static str, Vec<Row>)], created_at_ms: u64) -> Result<Vec<u8>> {
    let mut out =
        Vec::with_capacity(64 + stores.iter().flat_map(|(_, rows)| rows).map(|r| r.value.len() + 48).sum::<usize>());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&created_at_ms.to_le_bytes());
    out.extend_from_slice(&(stores.len() as u16).to_le_bytes());
    for (store, rows) in stores {
        out.push(store.len() as u8);
        out.extend_from_slice(store.as_bytes());
        out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    }
    for (_, rows) in stores {
        for row in rows {
            let key = bincode::serde::encode_to_vec(&row.key, bincode::config::standard())
                .map_err(|e| Error::Internal(format!("backup key: {e}")))?;
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(&key);
            out.extend_from_slice(&(row.value.len() as u32).to_le_bytes());
            out.extend_from_slice(&row.value);
        }
    }
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A bounds-checked cursor over the backup bytes.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(invalid(format!("truncated: {what} needs {n} bytes, {} remain", self.rest.len())));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
}

/// Checks one row the way `load` or `loadChannel` would: area rows and channel rows decode and
/// match their key; other stores' values must be envelopes this build can read.
pub fn check_row(store: &str, row: &Row) -> Result<()> {
    if AREA_STORES.contains(&store) {
        let mut scratch = Default::default();
        WalletChangeSet::load_row(&mut scratch, store, &row.key, &row.value, MAX_BLOB_BYTES)
    } else if CHANNEL_STORES.contains(&store) {
        crate::channels::rows::check_row(store, row, MAX_BLOB_BYTES)
    } else {
        codec::schema_version(&row.value).and_then(|version| {
            if version > SCHEMA_VERSION {
                Err(Error::SchemaVersionUnsupported { found: version, supported: SCHEMA_VERSION })
            } else {
                Ok(())
            }
        })
    }
}

/// Checks the history rows of every channel together, as `loadChannel` reads them: an id stored
/// twice in one channel would make that channel unloadable.
fn check_history(rows: &[Row]) -> Result<()> {
    let mut channels: std::collections::BTreeMap<&str, Vec<Row>> = Default::default();
    for row in rows {
        if let Some(crate::model::KeyPart::Text(channel)) = row.key.first() {
            channels.entry(channel).or_default().push(row.clone());
        }
    }
    for (channel, rows) in channels {
        crate::channels::HistoryIndex::from_rows(channel, &rows, MAX_BLOB_BYTES)
            .map_err(|e| invalid(format!("{CHANNEL_HISTORY} of channel {channel:?}: {e}")))?;
    }
    Ok(())
}

/// Validates every byte of a backup and returns its rows; `progress(rows checked, total)` is
/// called at least every 1,000 rows. Refuses with `BackupInvalid` naming the first problem, or
/// `SchemaVersionUnsupported` for a backup from a newer build.
pub fn decode(bytes: &[u8], progress: &mut dyn FnMut(u64, u64)) -> Result<Backup> {
    if bytes.len() < 4 || bytes[..4] != MAGIC {
        return Err(invalid("not a wallet-persist backup (wrong magic)"));
    }
    let mut cursor = Cursor { rest: &bytes[4..] };
    let format = cursor.u16("the format version")?;
    if format == 0 {
        return Err(invalid("format version 0"));
    }
    if format > FORMAT_VERSION {
        return Err(Error::SchemaVersionUnsupported { found: format, supported: FORMAT_VERSION });
    }
    if bytes.len() < 4 + 2 + 4 {
        return Err(invalid("truncated: no checksum"));
    }
    let (content, crc) = bytes.split_at(bytes.len() - 4);
    let expected = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if crc32(content) != expected {
        return Err(invalid("checksum mismatch: the backup is corrupt or truncated"));
    }
    let mut cursor = Cursor { rest: &content[6..] };
    let schema = cursor.u16("the schema version")?;
    if schema > SCHEMA_VERSION {
        return Err(Error::SchemaVersionUnsupported { found: schema, supported: SCHEMA_VERSION });
    }
    if schema == 0 {
        return Err(invalid("schema version 0"));
    }
    let created_at_ms = cursor.u64("the creation time")?;
    let store_count = cursor.u16("the store count")?;
    let mut manifest: Vec<(&'static str, u32)> = Vec::new();
    for _ in 0..store_count {
        let len = cursor.u8("a store name length")?;
        let name = cursor.take(usize::from(len), "a store name")?;
        let store = crate::layout::backup_stores()
            .find(|s| s.as_bytes() == name)
            .ok_or_else(|| invalid(format!("unknown store {:?}", String::from_utf8_lossy(name))))?;
        if manifest.iter().any(|(s, _)| *s == store) {
            return Err(invalid(format!("store {store} listed twice")));
        }
        manifest.push((store, cursor.u32("a row count")?));
    }
    let total: u64 = manifest.iter().map(|(_, n)| u64::from(*n)).sum();
    let mut done = 0u64;
    let mut stores = Vec::with_capacity(manifest.len());
    for (store, count) in manifest {
        // Each row takes at least 8 bytes, so the count cannot claim more rows than could fit.
        if u64::from(count) * 8 > cursor.rest.len() as u64 {
            return Err(invalid(format!("truncated: {store} claims {count} rows")));
        }
        let mut rows = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let key_len = cursor.u32("a key length")? as usize;
            let key_bytes = cursor.take(key_len, "a key")?;
            // No key is longer than the value that repeats it (at most `MAX_BLOB_BYTES`), and the
            // limit bounds what a hostile length inside the key can make the decoder allocate.
            let key: Key = bincode::serde::decode_from_slice::<Key, _>(
                key_bytes,
                bincode::config::standard().with_limit::<MAX_BLOB_BYTES>(),
            )
            .ok()
            .filter(|(_, read)| *read == key_len)
            .map(|(key, _)| key)
            .ok_or_else(|| invalid(format!("{store}: an unreadable key")))?;
            let value_len = cursor.u32("a value length")? as usize;
            if value_len > MAX_BLOB_BYTES + HEADER_LEN {
                return Err(invalid(format!("{store}: a value of {value_len} bytes exceeds the limit")));
            }
            let value = cursor.take(value_len, "a value")?.to_vec();
            let row = Row { key, value };
            check_row(store, &row)
                .map_err(|e| invalid(format!("{store} {}: {e}", crate::model::key_to_string(&row.key))))?;
            rows.push(row);
            done += 1;
            if done % 1_000 == 0 {
                progress(done, total);
            }
        }
        if store == CHANNEL_HISTORY {
            check_history(&rows)?;
        }
        stores.push((store, rows));
    }
    if !cursor.rest.is_empty() {
        return Err(invalid(format!("{} unexpected bytes after the last row", cursor.rest.len())));
    }
    progress(done, total);
    Ok(Backup { schema, created_at_ms, stores })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::{history_key, meta_key, HistoryEntry};
    use crate::layout::{CHANNEL_META, RETRIEVAL_HINTS};
    use crate::model::Bytes;

    fn roundtrip(stores: &[(&'static str, Vec<Row>)]) -> Result<Backup> {
        decode(&encode(stores, 1).unwrap(), &mut |_, _| {})
    }

    fn history_row(channel: &str, seq: u32, id: &str) -> Row {
        let entry = HistoryEntry { id: id.into(), bytes: Bytes::from(vec![1]), timestamp_ms: None };
        Row { key: history_key(channel, seq), value: codec::encode(&(channel, seq, &entry), MAX_BLOB_BYTES).unwrap() }
    }

    #[test]
    fn channel_rows_are_checked_as_load_channel_reads_them() {
        // Any meta type passes (the app's own), as long as it names the channel it is stored under.
        let meta = Row { key: meta_key("chat"), value: codec::encode(&("chat", 7u8), MAX_BLOB_BYTES).unwrap() };
        let history = vec![history_row("chat", 0, "m0"), history_row("chat", 1, "m1")];
        assert!(roundtrip(&[(CHANNEL_META, vec![meta.clone()]), (CHANNEL_HISTORY, history)]).is_ok());

        // A meta row moved under another channel's key (checksum recomputed by encode).
        let moved = Row { key: meta_key("chbt"), value: meta.value.clone() };
        let error = roundtrip(&[(CHANNEL_META, vec![moved])]).unwrap_err();
        assert_eq!(error.code(), 14, "{error}");
        assert!(error.to_string().contains("channel_meta"), "{error}");

        // A history row whose key names another seq, one id stored twice, a channel id too long.
        let mut wrong_seq = history_row("chat", 0, "m0");
        wrong_seq.key = history_key("chat", 5);
        assert_eq!(roundtrip(&[(CHANNEL_HISTORY, vec![wrong_seq])]).unwrap_err().code(), 14);
        let twice = vec![history_row("chat", 0, "m0"), history_row("chat", 1, "m0")];
        assert_eq!(roundtrip(&[(CHANNEL_HISTORY, twice)]).unwrap_err().code(), 14);
        let long = "x".repeat(257);
        let hint = Row {
            key: crate::channels::hint_key(&long, "m"),
            value: codec::encode(&(long.as_str(), "m", Bytes::from(vec![1])), MAX_BLOB_BYTES).unwrap(),
        };
        assert_eq!(roundtrip(&[(RETRIEVAL_HINTS, vec![hint])]).unwrap_err().code(), 14);
    }
}

//! A backend wrapper that encrypts at rest: over any backend (IndexedDB in the browser, memory on
//! the host), with a [`Cipher`] set, every row is stored as
//!
//! - **key**: each text part (wallet id, address, txid, identity, channel id, message id, names)
//!   replaced by its keyed hash ([`Cipher::hash_text`]), part by part, so a range over one wallet
//!   or one channel is still one range; numbers (indexes, vouts, sequence numbers) stay as they are;
//! - **value**: `envelope header with flag "sealed" | nonce | XChaCha20-Poly1305(real key | plain
//!   envelope) | tag`, the associated data binding it to its store, its stored key and its header.
//!
//! A row edited, truncated, moved to another key or another store fails authentication: a bulk
//! read reports it in `unreadable` (load skips and reports it; `loadChannel` refuses it), `get`
//! fails with `BlobDecode`. Rows come back with their real keys, in real-key order, so every layer
//! above reads and checks them exactly as plain rows. `db_meta` (the schema stamp and the key
//! record) is stored in the clear. Without a cipher the wrapper passes everything through.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::{Backend, Ops, ReadEvent, Row, StoreRows, WriteBatch, WriteOp, WriteSource};
use crate::codec::{self, HEADER_LEN};
use crate::crypto::ops::{self, NONCE_LEN};
use crate::crypto::{Cipher, KeyRecord};
use crate::error::{Error, Result};
use crate::layout::DB_META;
use crate::log::log_at;
use crate::model::{key_to_string, Key, KeyPart};

/// Encrypts rows on their way to `inner` and opens them on their way back, once a cipher is set.
#[derive(Debug)]
pub struct EncryptedBackend<B> {
    inner: B,
    cipher: RefCell<Option<Rc<Cipher>>>,
    /// The cipher of a conversion to encrypted whose write may have landed without us learning it
    /// (it failed, e.g. timed out), with the key record it wrote: the next reconnect reads the key
    /// record and starts sealing with it if that record is on disk.
    landing: RefCell<Option<(KeyRecord, Rc<Cipher>)>>,
    /// A conversion's write is under way: its ops were sealed by the conversion itself, so they
    /// pass through as they are, also once a reconnect inside that write (the write landed, its
    /// answer was lost) has turned the cipher on. Only while every other writer waits.
    presealed: Cell<bool>,
    /// The key record of the cipher, and whether this store may write it (not a read-only
    /// follower): after a reconnect the database must still be locked by that data key.
    record: RefCell<Option<(KeyRecord, bool)>>,
}

impl<B> EncryptedBackend<B> {
    /// A pass-through wrapper (a plain database) until [`EncryptedBackend::set_cipher`].
    pub fn new(inner: B) -> Self {
        EncryptedBackend {
            inner,
            cipher: RefCell::new(None),
            landing: RefCell::new(None),
            presealed: Cell::new(false),
            record: RefCell::new(None),
        }
    }

    /// Marks the writes from now on as sealed already (`true`, for a conversion's own write, while
    /// it holds the database alone) or not (`false`, as after it).
    pub fn set_presealed(&self, presealed: bool) {
        self.presealed.set(presealed);
    }

    /// Sets the cipher a conversion's write (of `record`) may have landed with, for the next
    /// reconnect to settle (see the `landing` field). A write whose outcome is unknown (a timeout)
    /// leaves the `Db` disconnected, so nothing is written before that reconnect.
    pub fn set_landing(&self, landing: Option<(KeyRecord, Rc<Cipher>)>) {
        *self.landing.borrow_mut() = landing;
    }

    /// The wrapped backend: rows as stored.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Starts (`Some`) or stops (`None`, on close: the keys are wiped once no read holds them)
    /// encrypting.
    pub fn set_cipher(&self, cipher: Option<Rc<Cipher>>) {
        *self.cipher.borrow_mut() = cipher;
    }

    /// Remembers the key record on disk that the cipher belongs to, and whether this store may
    /// write it back (`may_write`: the writer, not a read-only follower); see `reconnect`.
    pub fn set_record(&self, record: Option<KeyRecord>, may_write: bool) {
        *self.record.borrow_mut() = record.map(|record| (record, may_write));
    }

    /// The cipher, when the database is encrypted and unlocked.
    pub fn cipher(&self) -> Option<Rc<Cipher>> {
        self.cipher.borrow().clone()
    }

    /// Whether rows are sealed.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.borrow().is_some()
    }
}

/// Most texts a [`KeyHasher`] remembers (a few hundred KiB).
const MEMO_TEXTS: usize = 4_096;

/// The stored form of keys: one hash per distinct text, memoised for one batch or read.
struct KeyHasher<'a> {
    cipher: &'a Cipher,
    memo: HashMap<String, String>,
}

impl<'a> KeyHasher<'a> {
    fn new(cipher: &'a Cipher) -> Self {
        KeyHasher { cipher, memo: HashMap::new() }
    }

    /// The stored spelling of `text`, hashed twice and compared (see [`seal_checked`]: a key part
    /// stored under a miscomputed hash could never be found, replaced or deleted by its real key).
    fn text(&mut self, text: &str) -> Result<String> {
        if let Some(hashed) = self.memo.get(text) {
            return Ok(hashed.clone());
        }
        let hashed = self.cipher.hash_text(text);
        if self.cipher.hash_text(text) != hashed {
            return Err(Error::Internal(
                "hashing a key part gave two different results (the JavaScript engine miscomputes); nothing was written"
                    .into(),
            ));
        }
        // Bounded: most texts (txids, addresses) occur once; wallet ids recur and come back.
        if self.memo.len() >= MEMO_TEXTS {
            self.memo.clear();
        }
        self.memo.insert(text.to_owned(), hashed.clone());
        Ok(hashed)
    }

    fn key(&mut self, key: &Key) -> Result<Key> {
        key.iter()
            .map(|part| match part {
                KeyPart::Num(n) => Ok(KeyPart::Num(*n)),
                KeyPart::Text(text) => self.text(text).map(KeyPart::Text),
            })
            .collect()
    }
}

/// A key as bytes: per part, `0 | u32 LE` or `1 | length u32 LE | UTF-8`.
fn key_bytes(key: &Key, out: &mut Vec<u8>) {
    for part in key {
        match part {
            KeyPart::Num(n) => {
                out.push(0);
                out.extend_from_slice(&n.to_le_bytes());
            }
            KeyPart::Text(text) => {
                out.push(1);
                out.extend_from_slice(&(text.len() as u32).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
}

/// Reads [`key_bytes`] back; `None` if malformed.
fn parse_key(mut bytes: &[u8]) -> Option<Key> {
    let mut key = Vec::new();
    let u32_at = |bytes: &mut &[u8]| -> Option<u32> {
        let (head, rest) = bytes.split_first_chunk::<4>()?;
        *bytes = rest;
        Some(u32::from_le_bytes(*head))
    };
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        match tag {
            0 => key.push(KeyPart::Num(u32_at(&mut bytes)?)),
            1 => {
                let len = u32_at(&mut bytes)? as usize;
                if len > bytes.len() {
                    return None;
                }
                let (text, rest) = bytes.split_at(len);
                key.push(KeyPart::Text(String::from_utf8(text.to_vec()).ok()?));
                bytes = rest;
            }
            _ => return None,
        }
    }
    Some(key)
}

const ROW_LABEL: &[u8] = b"wallet-persist/row/";

/// The associated data of a row: its store, its stored key and its header.
fn row_ad(store: &str, stored_key: &Key, header: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(64);
    ad.extend_from_slice(store.as_bytes());
    ad.push(0);
    key_bytes(stored_key, &mut ad);
    ad.extend_from_slice(header);
    ad
}

/// What a sealed row's plaintext holds before its value: `key_bytes(key)`'s length (u32 LE) and
/// those bytes ([`open_value`] reads it back).
fn plain_prefix(key: &Key) -> Vec<u8> {
    let mut prefix = vec![0; 4];
    key_bytes(key, &mut prefix);
    let len = (prefix.len() - 4) as u32;
    prefix[..4].copy_from_slice(&len.to_le_bytes());
    prefix
}

/// Seals `value` (a plain envelope) stored under `stored_key` in `store`, carrying its real `key`.
pub fn seal_value(cipher: &Cipher, store: &str, key: &Key, stored_key: &Key, value: &[u8]) -> Result<Vec<u8>> {
    let prefix = plain_prefix(key);
    let plain_len = prefix.len() + value.len();
    let header = codec::sealed_header(NONCE_LEN + plain_len + ops::TAG_LEN);
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plain_len + ops::TAG_LEN);
    out.extend_from_slice(&header);
    out.extend_from_slice(&[0; NONCE_LEN]);
    out.extend_from_slice(&prefix);
    out.extend_from_slice(value);
    let ad = row_ad(store, stored_key, &header);
    ops::seal_in_place(cipher.seal_key(), &[ROW_LABEL, &ad], &mut out, HEADER_LEN + NONCE_LEN)?;
    Ok(out)
}

/// How many times a row is sealed before its write fails.
const SEAL_ATTEMPTS: u32 = 3;

/// [`seal_value`], read back and compared with `key` and `value` before it is used. A sealed row
/// authenticates whatever bytes were sealed, so a miscomputed seal would be stored as a valid row
/// that no later check can tell from the real one, and the real row would be lost. WebKitGTK
/// 2.50's WebAssembly JIT was seen to do exactly that (one byte of a sealed key wrong, about one
/// test run in ten); a seal that reads back wrong is made again with a fresh nonce, and after
/// `SEAL_ATTEMPTS` (3) the write fails with nothing written.
pub fn seal_checked(cipher: &Cipher, store: &str, key: &Key, stored_key: &Key, value: &[u8]) -> Result<Vec<u8>> {
    for _ in 0..SEAL_ATTEMPTS {
        let sealed = seal_value(cipher, store, faults::key_to_seal(key).as_ref().unwrap_or(key), stored_key, value)?;
        if seal_holds(cipher, store, stored_key, &sealed, key, value) {
            return Ok(sealed);
        }
        log_at!(
            Error,
            "{store} {}: the sealed row read back different from what was sealed (the JavaScript engine miscomputed); sealing it again",
            key_to_string(key)
        );
    }
    Err(Error::Internal(format!(
        "{store} {}: sealing read back different bytes {SEAL_ATTEMPTS} times (the JavaScript engine miscomputes); nothing was written",
        key_to_string(key)
    )))
}

/// Whether `sealed` opens (under `stored_key` in `store`) to exactly `key` and `value`: one
/// decryption into one buffer, compared in place.
fn seal_holds(cipher: &Cipher, store: &str, stored_key: &Key, sealed: &[u8], key: &Key, value: &[u8]) -> bool {
    let Ok((header, payload)) = codec::split_sealed(sealed) else { return false };
    let ad = row_ad(store, stored_key, header);
    let Some(plain) = ops::open(cipher.seal_key(), &[ROW_LABEL, &ad], payload) else { return false };
    plain.strip_prefix(plain_prefix(key).as_slice()) == Some(value)
}

/// Tests: seals that go wrong on purpose, as a miscomputing engine's would.
pub mod faults {
    use crate::model::Key;

    #[cfg(feature = "testing")]
    thread_local! {
        static WRONG_SEALS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    /// Tests: the next `count` seals seal a key with one character changed (authentic, wrong).
    #[cfg(feature = "testing")]
    pub fn miscompute_next_seals(count: u32) {
        WRONG_SEALS.with(|c| c.set(count));
    }

    /// The key the next seal uses in place of `key`, when a test asked for a wrong one.
    pub(super) fn key_to_seal(key: &Key) -> Option<Key> {
        #[cfg(feature = "testing")]
        if WRONG_SEALS.with(|c| c.replace(c.get().saturating_sub(1))) > 0 {
            let mut wrong = key.clone();
            match wrong.first_mut() {
                Some(crate::model::KeyPart::Text(text)) => text.replace_range(0..text.len().min(1), "E"),
                Some(crate::model::KeyPart::Num(n)) => *n ^= 1,
                None => {}
            }
            return Some(wrong);
        }
        let _ = key;
        None
    }
}

/// Opens a sealed row: its real key and its plain envelope. `BlobDecode` when it fails
/// authentication (edited, truncated, moved, or sealed under another key).
pub fn open_value(cipher: &Cipher, store: &str, stored_key: &Key, value: &[u8]) -> Result<Row> {
    let (header, payload) = codec::split_sealed(value)?;
    let ad = row_ad(store, stored_key, header);
    let plain = ops::open(cipher.seal_key(), &[ROW_LABEL, &ad], payload).ok_or_else(|| {
        Error::BlobDecode("the row failed authentication (edited, truncated, moved, or another key)".into())
    })?;
    let bad = || Error::BlobDecode("a sealed row holds a malformed key".into());
    let (len, rest) = plain.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err(bad());
    }
    let key = parse_key(&rest[..len]).ok_or_else(bad)?;
    Ok(Row { key, value: rest[len..].to_vec() })
}

/// `op` as stored: keys hashed, a value sealed (`db_meta` and whole-store clears as they are).
fn seal_op(hasher: &mut KeyHasher<'_>, op: &WriteOp) -> Result<WriteOp> {
    Ok(match op {
        WriteOp::Put { store, .. } | WriteOp::Delete { store, .. } if *store == DB_META => op.clone(),
        WriteOp::Put { store, key, value } => {
            let stored = hasher.key(key)?;
            let value = seal_checked(hasher.cipher, store, key, &stored, value)?;
            WriteOp::Put { store, key: stored, value }
        }
        WriteOp::Delete { store, key } => WriteOp::Delete { store, key: hasher.key(key)? },
        // Key parts are hashed one by one, so a hashed prefix is the prefix of the hashed keys.
        WriteOp::DeletePrefix { store, prefix } => WriteOp::DeletePrefix { store, prefix: hasher.key(prefix)? },
        WriteOp::DeleteWallet { store, wallet } => {
            WriteOp::DeleteGroup { store, group: hasher.text(&wallet.to_hex())? }
        }
        WriteOp::DeleteGroup { store, group } if *store != DB_META => {
            WriteOp::DeleteGroup { store, group: hasher.text(group)? }
        }
        WriteOp::DeleteGroup { .. } | WriteOp::Clear { .. } => op.clone(),
    })
}

/// The ops of `source` as stored, each sealed as it is pulled.
struct Sealed<'a> {
    cipher: &'a Cipher,
    source: &'a dyn WriteSource,
}

impl WriteSource for Sealed<'_> {
    fn stores(&self) -> Vec<&'static str> {
        self.source.stores()
    }

    fn strict(&self) -> bool {
        self.source.strict()
    }

    /// Store names are not hashed, so the order stays store by store.
    fn stream(&self) -> Ops<'_> {
        let mut hasher = KeyHasher::new(self.cipher);
        Box::new(self.source.stream().map(move |op| op.and_then(|op| seal_op(&mut hasher, &op).map(Cow::Owned))))
    }
}

impl<B: Backend> EncryptedBackend<B> {
    /// `batch` as stored: keys hashed, values sealed (`db_meta` and whole-store clears as they are).
    pub fn seal_batch(cipher: &Cipher, batch: &WriteBatch) -> Result<WriteBatch> {
        let mut hasher = KeyHasher::new(cipher);
        let ops = batch.ops.iter().map(|op| seal_op(&mut hasher, op)).collect::<Result<_>>()?;
        Ok(WriteBatch { ops, strict: batch.strict })
    }

    /// Opens every row of one store's read; a row that fails is moved to `unreadable`.
    pub fn open_rows(cipher: &Cipher, rows: StoreRows) -> StoreRows {
        if rows.store == DB_META {
            return rows;
        }
        let StoreRows { store, rows: sealed, mut unreadable } = rows;
        let mut opened = Vec::with_capacity(sealed.len());
        for row in sealed {
            match open_value(cipher, store, &row.key, &row.value) {
                Ok(row) => opened.push(row),
                Err(error) => unreadable.push((key_to_string(&row.key), error)),
            }
        }
        opened.sort_by(|a, b| a.key.cmp(&b.key));
        StoreRows { store, rows: opened, unreadable }
    }

    fn open_reads(&self, reads: Vec<Result<StoreRows>>) -> Vec<Result<StoreRows>> {
        match self.cipher() {
            None => reads,
            Some(cipher) => reads.into_iter().map(|read| read.map(|rows| Self::open_rows(&cipher, rows))).collect(),
        }
    }
}

/// The stored spelling of each of `groups` (a key's first part): one key range each.
fn hash_groups(cipher: &Cipher, groups: &[&str]) -> Result<Vec<String>> {
    let mut hasher = KeyHasher::new(cipher);
    groups.iter().map(|group| hasher.text(group)).collect()
}

/// Opened rows read from the ranges of the hashed `wanted` groups: a row sealed under a real key
/// outside them (moved there by someone holding the key) is reported in `unreadable`, never
/// returned.
fn keep_wanted(rows: &mut StoreRows, wanted: &std::collections::HashSet<&str>) {
    if rows.store == DB_META {
        return;
    }
    let (inside, outside): (Vec<Row>, Vec<Row>) = std::mem::take(&mut rows.rows)
        .into_iter()
        .partition(|row| matches!(row.key.first(), Some(KeyPart::Text(first)) if wanted.contains(first.as_str())));
    rows.rows = inside;
    for row in outside {
        let error = Error::EntryMismatch(format!("{}: sealed under another key", rows.store));
        rows.unreadable.push((key_to_string(&row.key), error));
    }
}

impl<B: Backend> EncryptedBackend<B> {
    /// After a reconnect the database may not be the one this store unlocked (its data cleared, or
    /// deleted by another tab and created again): its key record must still be that of the
    /// cipher's data key (a passphrase change re-wraps it, keeping the key). A database created
    /// again empty gets the record back from the writer, so its rows stay openable with the same
    /// secret (a follower writes nothing and reads what the writer puts there). A database locked
    /// by another key, or rows without a record, fail the reconnect: nothing is read or written.
    async fn check_record(&self) -> Result<()> {
        let Some((ours, may_write)) = self.record.borrow().clone() else { return Ok(()) };
        match KeyRecord::read(&self.inner).await? {
            Some(found) if found.check == ours.check => {
                self.set_record(Some(found), may_write);
                Ok(())
            }
            Some(_) => Err(Error::WrongKey(
                "since the store reconnected, its database is locked by another key (it was replaced): nothing is \
                 read or written; close this store and open the database with its secret"
                    .into(),
            )),
            None if !may_write => Ok(()),
            None => {
                let stores: Vec<&'static str> = crate::layout::all_stores().filter(|s| *s != DB_META).collect();
                for read in self.inner.read(&stores).await? {
                    if !matches!(read, Ok(rows) if rows.rows.is_empty() && rows.unreadable.is_empty()) {
                        return Err(Error::WrongKey(
                            "since the store reconnected, its database holds rows but no key record: nothing is \
                             written; close this store and open the database again"
                                .into(),
                        ));
                    }
                }
                self.inner.write(&WriteBatch { ops: vec![ours.op()?], strict: true }).await?;
                log_at!(Warn, "the database was created again under this store: its key record was written back");
                Ok(())
            }
        }
    }
}

impl<B: Backend> Backend for EncryptedBackend<B> {
    async fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.write_source(batch).await
    }

    async fn write_source(&self, source: &dyn WriteSource) -> Result<()> {
        match self.cipher() {
            Some(cipher) if !self.presealed.get() => self.inner.write_source(&Sealed { cipher: &cipher, source }).await,
            _ => self.inner.write_source(source).await,
        }
    }

    async fn read(&self, stores: &[&'static str]) -> Result<Vec<Result<StoreRows>>> {
        let reads = self.inner.read(stores).await?;
        Ok(self.open_reads(reads))
    }

    /// Plain: the inner stream. Sealed: every row opened as its piece arrives; sealed keys sort by
    /// their hash, not by wallet, so only the end completes a wallet. A read of some groups streams
    /// the ranges of their hashes, as [`Backend::read_groups`] reads them.
    async fn read_stream(
        &self,
        stores: &[&'static str],
        groups: Option<&[&str]>,
        sink: &mut dyn FnMut(ReadEvent) -> Result<()>,
    ) -> Result<()> {
        let Some(cipher) = self.cipher() else { return self.inner.read_stream(stores, groups, sink).await };
        let Some(groups) = groups else {
            let mut open = |event| match event {
                ReadEvent::Rows(rows) => sink(ReadEvent::Rows(Self::open_rows(&cipher, rows))),
                ReadEvent::Complete(_) => Ok(()),
                other => sink(other),
            };
            return self.inner.read_stream(stores, None, &mut open).await;
        };
        let hashed = hash_groups(&cipher, groups)?;
        let hashed: Vec<&str> = hashed.iter().map(String::as_str).collect();
        let wanted: std::collections::HashSet<&str> = groups.iter().copied().collect();
        let mut open = |event| match event {
            ReadEvent::Rows(rows) => {
                let mut rows = Self::open_rows(&cipher, rows);
                keep_wanted(&mut rows, &wanted);
                sink(ReadEvent::Rows(rows))
            }
            other => sink(other),
        };
        self.inner.read_stream(stores, Some(&hashed), &mut open).await
    }

    /// Reads the ranges of the hashed groups (key parts are hashed one by one, so one group is
    /// still one range). A row sealed under a real key outside `groups` (moved there by someone
    /// holding the key) is reported in `unreadable`, never returned.
    async fn read_groups(&self, stores: &[&'static str], groups: &[&str]) -> Result<Vec<Result<StoreRows>>> {
        let Some(cipher) = self.cipher() else { return self.inner.read_groups(stores, groups).await };
        let hashed = hash_groups(&cipher, groups)?;
        let hashed: Vec<&str> = hashed.iter().map(String::as_str).collect();
        let mut reads = self.open_reads(self.inner.read_groups(stores, &hashed).await?);
        // Only looked up: a `HashSet`, whose instance the .wasm already holds, not a B-tree of its own.
        let wanted: std::collections::HashSet<&str> = groups.iter().copied().collect();
        for rows in reads.iter_mut().flatten() {
            keep_wanted(rows, &wanted);
        }
        Ok(reads)
    }

    async fn get(&self, store: &'static str, key: &Key) -> Result<Option<Vec<u8>>> {
        let cipher = match self.cipher() {
            Some(cipher) if store != DB_META => cipher,
            _ => return self.inner.get(store, key).await,
        };
        let stored = KeyHasher::new(&cipher).key(key)?;
        let Some(value) = self.inner.get(store, &stored).await? else { return Ok(None) };
        let row = open_value(&cipher, store, &stored, &value)?;
        if &row.key != key {
            return Err(Error::EntryMismatch(format!("{store} {}: sealed under another key", key_to_string(key))));
        }
        Ok(Some(row.value))
    }

    async fn scan(&self, store: &'static str) -> Result<StoreRows> {
        let rows = self.inner.scan(store).await?;
        Ok(match self.cipher() {
            None => rows,
            Some(cipher) => Self::open_rows(&cipher, rows),
        })
    }

    /// The rows of the hashed groups' ranges, as [`EncryptedBackend::read_groups`] reads them.
    async fn scan_groups(&self, store: &'static str, groups: &[&str]) -> Result<StoreRows> {
        let Some(cipher) = self.cipher() else { return self.inner.scan_groups(store, groups).await };
        let hashed = hash_groups(&cipher, groups)?;
        let hashed: Vec<&str> = hashed.iter().map(String::as_str).collect();
        let mut rows = Self::open_rows(&cipher, self.inner.scan_groups(store, &hashed).await?);
        keep_wanted(&mut rows, &groups.iter().copied().collect());
        Ok(rows)
    }

    async fn pause(&self) {
        self.inner.pause().await
    }

    /// Also settles a conversion whose outcome was unknown: its cipher is used if its key record
    /// is on disk (the new connection reads it after the old write finished either way).
    async fn reconnect(&self) -> Result<()> {
        self.inner.reconnect().await?;
        let landing = self.landing.borrow().clone();
        if let Some((record, cipher)) = landing {
            if KeyRecord::read(&self.inner).await?.as_ref() == Some(&record) {
                self.set_cipher(Some(cipher));
                self.set_record(Some(record), true);
            }
            self.set_landing(None);
            return Ok(());
        }
        self.check_record().await
    }

    /// Also wipes the keys: a closed store never opens a row again.
    fn close(&self) {
        self.set_cipher(None);
        self.set_landing(None);
        self.set_record(None, false);
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bytes_round_trip() {
        let key = vec![KeyPart::Text("ab".into()), KeyPart::Num(7), KeyPart::Text(String::new())];
        let mut bytes = Vec::new();
        key_bytes(&key, &mut bytes);
        assert_eq!(parse_key(&bytes), Some(key));
        assert_eq!(parse_key(&bytes[..bytes.len() - 1]), None);
        assert_eq!(parse_key(&[2]), None);
    }
}

//! The storage contract the persister is written against, and its implementations:
//! IndexedDB (`indexeddb`, wasm only), in-memory (`memory`), a fault-injecting wrapper (`faulty`)
//! and an encrypting wrapper (`encrypted`).

pub mod encrypted;
#[cfg(any(test, feature = "testing"))]
pub mod faulty;
pub mod indexeddb;
pub mod memory;
pub mod progress;

use std::borrow::Cow;
use std::collections::BTreeSet;

use crate::error::Result;
use crate::model::{Key, KeyPart, WalletId};

pub use encrypted::EncryptedBackend;
#[cfg(any(test, feature = "testing"))]
pub use faulty::{FaultyBackend, Op, Slowness, VirtualClock};
pub use memory::MemoryBackend;

/// One request inside a write transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Writes `value` under `key` in `store` (insert or replace).
    Put {
        /// The object store.
        store: &'static str,
        /// The full key, wallet id first.
        key: Key,
        /// The encoded envelope.
        value: Vec<u8>,
    },
    /// Deletes the row `key` of `store`, if any.
    Delete {
        /// The object store.
        store: &'static str,
        /// The full key, wallet id first.
        key: Key,
    },
    /// Deletes every row of one wallet in `store` (one key-range request).
    DeleteWallet {
        /// The object store.
        store: &'static str,
        /// The wallet whose rows go.
        wallet: WalletId,
    },
    /// Deletes every row of `store` whose key starts with the text part `group` (one key-range
    /// request over `[group]..[group, []]`), e.g. every row of one channel.
    DeleteGroup {
        /// The object store.
        store: &'static str,
        /// The first key part shared by the rows that go.
        group: String,
    },
    /// Deletes every row of `store` whose key starts with `prefix` (one key-range request over
    /// `[...prefix]..[...prefix, []]`), e.g. every identity key of one identity.
    DeletePrefix {
        /// The object store.
        store: &'static str,
        /// The leading key parts shared by the rows that go (wallet id first).
        prefix: Key,
    },
    /// Deletes every row of `store`.
    Clear {
        /// The object store.
        store: &'static str,
    },
}

impl WriteOp {
    /// The object store the op writes to.
    pub fn store(&self) -> &'static str {
        match self {
            WriteOp::Put { store, .. }
            | WriteOp::Delete { store, .. }
            | WriteOp::DeleteWallet { store, .. }
            | WriteOp::DeleteGroup { store, .. }
            | WriteOp::DeletePrefix { store, .. }
            | WriteOp::Clear { store } => store,
        }
    }

    /// The wallet the op writes to (the first part of its key).
    pub fn wallet_hex(&self) -> Option<String> {
        match self {
            WriteOp::Put { key, .. } | WriteOp::Delete { key, .. } | WriteOp::DeletePrefix { prefix: key, .. } => {
                match key.first() {
                    Some(KeyPart::Text(hex)) => Some(hex.clone()),
                    _ => None,
                }
            }
            WriteOp::DeleteWallet { wallet, .. } => Some(wallet.to_hex()),
            WriteOp::DeleteGroup { .. } | WriteOp::Clear { .. } => None,
        }
    }

    /// Bytes of value the op carries (0 but for a put).
    pub fn value_len(&self) -> usize {
        match self {
            WriteOp::Put { value, .. } => value.len(),
            _ => 0,
        }
    }
}

/// How a backend that issues its requests over several tasks (IndexedDB) splits one write: at
/// most `rows` requests per chunk, and no more than `bytes` of values unless one op alone is
/// larger. Every chunk holds at least one op, so any limits make progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSize {
    /// Requests per chunk at most.
    pub rows: usize,
    /// Bytes of values per chunk at most (one larger op makes a chunk of its own).
    pub bytes: usize,
}

impl ChunkSize {
    /// 250 rows of the 100,000-row bench point per task: issuing a put took 100–140 µs of the
    /// main thread on the loaded 2-core bench machine (Chromium), so a chunk stays well under
    /// 100 ms there; the database works through one chunk while the next is issued.
    pub const DEFAULT: ChunkSize = ChunkSize { rows: 250, bytes: 256 << 10 };

    /// `ops` cut into chunks, in order, each pulled from `ops` only when asked for: one chunk's
    /// ops (and the first op of the next) are held at a time. An op that fails ends the chunks
    /// with its error.
    pub fn chunks<'a>(self, ops: Ops<'a>) -> Chunks<'a> {
        Chunks { size: self, ops, next: None }
    }
}

/// The chunks of a write, from [`ChunkSize::chunks`].
pub struct Chunks<'a> {
    size: ChunkSize,
    ops: Ops<'a>,
    /// The op that did not fit the last chunk: the first of the next.
    next: Option<Cow<'a, WriteOp>>,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<Vec<Cow<'a, WriteOp>>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while chunk.len() < self.size.rows.max(1) {
            let op = match self.next.take() {
                Some(op) => op,
                None => match self.ops.next() {
                    Some(Ok(op)) => op,
                    Some(Err(error)) => return Some(Err(error)),
                    None => break,
                },
            };
            let len = op.value_len();
            if !chunk.is_empty() && bytes + len > self.size.bytes {
                self.next = Some(op);
                break;
            }
            bytes += len;
            chunk.push(op);
        }
        (!chunk.is_empty()).then_some(Ok(chunk))
    }
}

/// The ops of a [`WriteSource`], in issue order: borrowed from a batch, or made (encoded,
/// sealed) as they are pulled. An op that cannot be made is an error, and fails the write.
pub type Ops<'a> = Box<dyn Iterator<Item = Result<Cow<'a, WriteOp>>> + 'a>;

/// Ops that commit together or not at all, made as they are pulled: a backend that issues a
/// write in chunks holds one chunk of encoded values at a time, not the whole write.
pub trait WriteSource {
    /// The stores the ops touch, sorted and unique (the transaction's scope).
    fn stores(&self) -> Vec<&'static str>;

    /// Whether the write asks for strict durability (see [`WriteBatch::strict`]).
    fn strict(&self) -> bool;

    /// A new pass over the ops, store after store in [`WriteSource::stores`] order; within a
    /// store, in the order they apply. (Ops on different stores never touch the same row, and
    /// Chromium commits a transaction ~15% faster when its puts come store by store rather than
    /// wallet by wallet across 13 stores: 1,000 wallets, measured with make bench.)
    fn stream(&self) -> Ops<'_>;
}

/// Ops that commit together or not at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    /// The requests, issued in order.
    pub ops: Vec<WriteOp>,
    /// Ask for strict durability (flushed to disk before `complete`); IndexedDB's default in
    /// Chromium is relaxed.
    pub strict: bool,
}

impl WriteBatch {
    /// A batch with the browser's default durability.
    pub fn new(ops: Vec<WriteOp>) -> Self {
        WriteBatch { ops, strict: false }
    }

    /// The stores the batch touches, sorted and unique (the transaction's scope).
    pub fn stores(&self) -> Vec<&'static str> {
        // Inserted one by one: `collect` into the set would sort every op's store first.
        let mut stores = BTreeSet::new();
        stores.extend(self.ops.iter().map(WriteOp::store));
        stores.into_iter().collect()
    }
}

impl WriteSource for WriteBatch {
    fn stores(&self) -> Vec<&'static str> {
        WriteBatch::stores(self)
    }

    fn strict(&self) -> bool {
        self.strict
    }

    /// The ops sorted by store; the sort is stable, so each store sees them in batch order.
    fn stream(&self) -> Ops<'_> {
        let mut ops: Vec<&WriteOp> = self.ops.iter().collect();
        ops.sort_by_key(|op| op.store());
        Box::new(ops.into_iter().map(|op| Ok(Cow::Borrowed(op))))
    }
}

/// One stored row: its key and its envelope bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The full key, wallet id first.
    pub key: Key,
    /// The envelope bytes as stored.
    pub value: Vec<u8>,
}

/// The rows read from one store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreRows {
    /// The object store read.
    pub store: &'static str,
    /// Its rows, in key order.
    pub rows: Vec<Row>,
    /// Rows whose key or value is not ours at all (spelled key, why).
    pub unreadable: Vec<(String, crate::error::Error)>,
}

/// A piece of a [`Backend::read_stream`].
#[derive(Debug)]
pub enum ReadEvent {
    /// Rows of one store (a chunk of it, or all of it), in key order.
    Rows(StoreRows),
    /// A bulk request of a store failed as a whole (this error, e.g. one value the browser cannot
    /// read): the rows it was to read come next, read one by one, each unreadable one reported
    /// in [`StoreRows::unreadable`].
    OneByOne(&'static str, crate::error::Error),
    /// Every row whose first key part sorts below this text (as strings: a wallet id's hex) has
    /// been handed over, in every store. Each `Complete` is above the one before.
    Complete(String),
    /// The read starts over (sent by [`crate::db::Db::read_stream`] before each attempt, never by
    /// a backend): every piece handed over before is void.
    Restart,
}

/// Durable storage. Single-threaded: futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// Applies the whole batch in one readwrite transaction: every op or none; resolves once the
    /// transaction committed. Nothing but the transaction's own requests is awaited while it is
    /// open (IndexedDB issues the requests in chunks, each from the previous chunk's callback, and
    /// reports each chunk done to [`progress`], so a write bounded in time runs as long as it
    /// keeps progressing).
    async fn write(&self, batch: &WriteBatch) -> Result<()>;

    /// [`Backend::write`] of the ops of `source`, pulled as they are issued: one transaction, every
    /// op or none; an op that cannot be made fails the write with nothing written. By default
    /// every op is pulled first, then written as one batch.
    async fn write_source(&self, source: &dyn WriteSource) -> Result<()> {
        let ops = source.stream().map(|op| op.map(Cow::into_owned)).collect::<Result<Vec<_>>>()?;
        self.write(&WriteBatch { ops, strict: source.strict() }).await
    }

    /// Reads every row of `stores` in one readonly transaction, one bulk read per store (IndexedDB
    /// reads it in chunks, within the same transaction), each store's rows in key order. The outer
    /// error fails the whole read; an inner error is one store's bulk read failing as a whole (e.g.
    /// one unreadable value), to be retried with `scan`. Each chunk read is reported to
    /// [`progress`].
    async fn read(&self, stores: &[&'static str]) -> Result<Vec<Result<StoreRows>>>;

    /// `read`, limited to the rows whose key starts with one of the text parts `groups` (one
    /// key-range bulk read per store and group over `[group]..[group, []]`, all in one readonly
    /// transaction), so the time is that of the rows read. With `groups` sorted, each store's
    /// rows stay in key order.
    async fn read_groups(&self, stores: &[&'static str], groups: &[&str]) -> Result<Vec<Result<StoreRows>>>;

    /// [`Backend::read`] (or [`Backend::read_groups`] with `groups`) handed to `sink` piece by
    /// piece as it arrives, so the reader need not hold every row at once. Pieces of different
    /// stores interleave; one store's rows come in key order. A [`ReadEvent::Complete`] promises
    /// that no row whose first key part sorts below its text is still to come. The whole stream is
    /// one snapshot: a request that fails as a whole is read again row by row within it (see
    /// [`ReadEvent::OneByOne`]). By default every store is read first, then handed over (no
    /// `Complete`: the end completes everything; see [`read_whole`]). A `sink` error ends the read
    /// with that error.
    async fn read_stream(
        &self,
        stores: &[&'static str],
        groups: Option<&[&str]>,
        sink: &mut dyn FnMut(ReadEvent) -> Result<()>,
    ) -> Result<()> {
        read_whole(self, stores, groups, sink).await
    }

    /// Reads one row (in its own readonly transaction).
    async fn get(&self, store: &'static str, key: &Key) -> Result<Option<Vec<u8>>>;

    /// Reads one store row by row, so a row whose value cannot be read is reported in
    /// `unreadable` instead of failing the others.
    async fn scan(&self, store: &'static str) -> Result<StoreRows>;

    /// [`Backend::scan`] limited to the rows whose key starts with one of the text parts `groups`
    /// (as [`Backend::read_groups`]), the unreadable ones included: a row outside them is neither
    /// returned nor reported. By default the whole store is scanned, then narrowed.
    async fn scan_groups(&self, store: &'static str, groups: &[&str]) -> Result<StoreRows> {
        let mut rows = self.scan(store).await?;
        rows.rows.retain(|row| in_groups(&row.key, groups));
        rows.unreadable.retain(|(key, _)| spelled_in_groups(key, groups));
        Ok(rows)
    }

    /// Lets the host run other work before a long job goes on: IndexedDB resolves in a later task,
    /// so the page stays responsive; a backend with no event loop to share goes on at once.
    async fn pause(&self) {}

    /// Drops the current connection (if any) and connects again, e.g. after the browser closed
    /// the database under us. The caller re-runs the schema gate.
    async fn reconnect(&self) -> Result<()>;

    /// Releases the connection; later calls fail with `Closed`.
    fn close(&self);
}

/// Whether `key` starts with the text part of one of `groups`.
fn in_groups(key: &Key, groups: &[&str]) -> bool {
    matches!(key.first(), Some(KeyPart::Text(first)) if groups.contains(&first.as_str()))
}

/// Whether a key spelled as a JSON array (how `unreadable` names a row) starts with the text part
/// of one of `groups`. Groups are wallet ids or their hashes (hex): JSON and
/// [`crate::model::key_to_string`] spell them alike, with nothing escaped.
fn spelled_in_groups(spelled: &str, groups: &[&str]) -> bool {
    let Some(rest) = spelled.strip_prefix("[\"") else { return false };
    groups.iter().any(|group| {
        rest.strip_prefix(*group)
            .and_then(|rest| rest.strip_prefix('"'))
            .is_some_and(|rest| rest.starts_with(',') || rest.starts_with(']'))
    })
}

/// Where the reads of a stream are, as [`ReadEvent::Complete`]s: each read's chunks come in key
/// order, so the lowest first key part an unfinished read is at (its last chunk's last key's; the
/// empty text before its first chunk, or when that part is not text) bounds
/// what is still to come.
#[derive(Debug)]
pub struct Frontier {
    /// Per read: `None` once finished, else where it is.
    at: Vec<Option<String>>,
    complete: String,
}

impl Frontier {
    /// `reads` reads, none begun.
    pub fn new(reads: usize) -> Self {
        Frontier { at: vec![Some(String::new()); reads], complete: String::new() }
    }

    /// Read `read` handed over a chunk: `more` whether it goes on, `last` the first key part of the
    /// chunk's last key when that is text. The `Complete` this raises, if any.
    pub fn chunk(&mut self, read: usize, more: bool, last: Option<String>) -> Option<ReadEvent> {
        self.at[read] = more.then(|| last.unwrap_or_default());
        self.raised()
    }

    fn raised(&mut self) -> Option<ReadEvent> {
        let lowest = self.at.iter().flatten().min()?;
        if *lowest <= self.complete {
            return None;
        }
        self.complete.clone_from(lowest);
        Some(ReadEvent::Complete(self.complete.clone()))
    }
}

/// How many rows a long job (a load's decoding, handing its wallets over) does between two pauses
/// (see [`Backend::pause`]): a few milliseconds of work.
pub const SLICE_ROWS: usize = 1_000;

/// The default [`Backend::read_stream`]: every store read, then handed over in pieces of
/// [`SLICE_ROWS`] rows, pausing after each [`SLICE_ROWS`] rows handed over. A store whose bulk
/// read failed is scanned in its place, in a read of its own: one snapshot only for a backend
/// nothing writes to meanwhile (the test doubles that use it).
pub async fn read_whole<B: Backend + ?Sized>(
    backend: &B,
    stores: &[&'static str],
    groups: Option<&[&str]>,
    sink: &mut dyn FnMut(ReadEvent) -> Result<()>,
) -> Result<()> {
    let reads = match groups {
        None => backend.read(stores).await?,
        Some(groups) => backend.read_groups(stores, groups).await?,
    };
    let mut since_pause = 0;
    for (store, read) in stores.iter().zip(reads) {
        let StoreRows { store, rows, mut unreadable } = match read {
            Ok(rows) => rows,
            Err(error) => {
                sink(ReadEvent::OneByOne(store, error))?;
                match groups {
                    None => backend.scan(store).await?,
                    Some(groups) => backend.scan_groups(store, groups).await?,
                }
            }
        };
        let mut rows = rows.into_iter();
        loop {
            let piece: Vec<Row> = rows.by_ref().take(SLICE_ROWS).collect();
            let last = piece.len() < SLICE_ROWS;
            since_pause += piece.len();
            sink(ReadEvent::Rows(StoreRows { store, rows: piece, unreadable: std::mem::take(&mut unreadable) }))?;
            if since_pause >= SLICE_ROWS {
                backend.pause().await;
                since_pause = 0;
            }
            if last {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyPart;

    fn put(len: usize) -> WriteOp {
        WriteOp::Put { store: "utxos", key: vec![KeyPart::Num(len as u32)], value: vec![0; len] }
    }

    fn ends(size: ChunkSize, ops: &[WriteOp]) -> Vec<usize> {
        let stream: Ops<'_> = Box::new(ops.iter().map(|op| Ok(Cow::Borrowed(op))));
        let mut end = 0;
        size.chunks(stream)
            .map(|chunk| {
                end += chunk.unwrap().len();
                end
            })
            .collect()
    }

    #[test]
    fn chunks_cover_every_op_once_in_order_within_their_limits() {
        let ops: Vec<WriteOp> = [3, 0, 5, 1, 9, 2, 2, 0, 4].into_iter().map(put).collect();
        for rows in 0..=4 {
            for bytes in 0..=12 {
                let size = ChunkSize { rows, bytes };
                let stream: Ops<'_> = Box::new(ops.iter().map(|op| Ok(Cow::Borrowed(op))));
                let chunks: Vec<_> = size.chunks(stream).map(Result::unwrap).collect();
                let flat: Vec<&WriteOp> = chunks.iter().flatten().map(|op| &**op).collect();
                assert_eq!(flat, ops.iter().collect::<Vec<_>>(), "{size:?}: every op once, in order");
                for chunk in &chunks {
                    assert!(!chunk.is_empty(), "{size:?}: an empty chunk");
                    assert!(chunk.len() <= rows.max(1), "{size:?}: {} rows", chunk.len());
                    let total: usize = chunk.iter().map(|op| op.value_len()).sum();
                    assert!(chunk.len() == 1 || total <= bytes, "{size:?}: {total} bytes");
                }
            }
        }
        assert_eq!(ends(ChunkSize { rows: 2, bytes: 100 }, &ops), vec![2, 4, 6, 8, 9]);
        assert_eq!(ends(ChunkSize { rows: 10, bytes: 6 }, &ops), vec![2, 4, 5, 8, 9]);
        assert!(ends(ChunkSize::DEFAULT, &[]).is_empty());
    }

    /// A failing op ends the chunks with its error; nothing after it is pulled.
    #[test]
    fn a_failing_op_ends_the_chunks_with_its_error() {
        let ops = [put(1), put(2), put(3)];
        let pulled = std::cell::Cell::new(0);
        let stream: Ops<'_> = Box::new(ops.iter().enumerate().map(|(i, op)| {
            pulled.set(pulled.get() + 1);
            if i == 2 {
                Err(crate::error::Error::BlobTooLarge { len: 3, limit: 2 })
            } else {
                Ok(Cow::Borrowed(op))
            }
        }));
        let mut chunks = ChunkSize { rows: 2, bytes: 100 }.chunks(stream);
        assert_eq!(chunks.next().unwrap().unwrap().len(), 2);
        assert!(matches!(chunks.next(), Some(Err(crate::error::Error::BlobTooLarge { .. }))));
        assert_eq!(pulled.get(), 3);
    }

    /// A batch streams store by store, each store's ops in batch order.
    #[test]
    fn a_batch_streams_store_by_store_in_batch_order() {
        let op = |store, n| WriteOp::Put { store, key: vec![KeyPart::Num(n)], value: vec![] };
        let batch = WriteBatch::new(vec![op("utxos", 1), op("accounts", 2), op("utxos", 3), op("accounts", 4)]);
        let streamed: Vec<WriteOp> = batch.stream().map(|op| op.unwrap().into_owned()).collect();
        assert_eq!(streamed, vec![op("accounts", 2), op("accounts", 4), op("utxos", 1), op("utxos", 3)]);
    }
}

//! The storage contract the persister is written against, and its implementations:
//! IndexedDB (`indexeddb`, wasm only), in-memory (`memory`), a fault-injecting wrapper (`faulty`)
//! and an encrypting wrapper (`encrypted`).

pub mod encrypted;
#[cfg(any(test, feature = "testing"))]
pub mod faulty;
pub mod indexeddb;
pub mod memory;

use std::collections::BTreeSet;

use crate::error::Result;
use crate::model::{Key, KeyPart, WalletId};

pub use encrypted::EncryptedBackend;
#[cfg(any(test, feature = "testing"))]
pub use faulty::{FaultyBackend, Op, VirtualClock};
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

/// Durable storage. Single-threaded: futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// Applies the whole batch in one readwrite transaction: every op or none.
    /// All requests are issued before anything is awaited; resolves once the transaction committed.
    async fn write(&self, batch: &WriteBatch) -> Result<()>;

    /// Reads every row of `stores` in one readonly transaction, one bulk read per store (IndexedDB
    /// reads it in chunks, within the same transaction), each store's rows in key order. The outer
    /// error fails the whole read; an inner error is one store's bulk read failing as a whole (e.g.
    /// one unreadable value), to be retried with `scan`.
    async fn read(&self, stores: &[&'static str]) -> Result<Vec<Result<StoreRows>>>;

    /// `read`, limited to the rows whose key starts with one of the text parts `groups` (one
    /// key-range bulk read per store and group over `[group]..[group, []]`, all in one readonly
    /// transaction), so the time is that of the rows read. With `groups` sorted, each store's
    /// rows stay in key order.
    async fn read_groups(&self, stores: &[&'static str], groups: &[&str]) -> Result<Vec<Result<StoreRows>>>;

    /// Reads one row (in its own readonly transaction).
    async fn get(&self, store: &'static str, key: &Key) -> Result<Option<Vec<u8>>>;

    /// Reads one store row by row, so a row whose value cannot be read is reported in
    /// `unreadable` instead of failing the others.
    async fn scan(&self, store: &'static str) -> Result<StoreRows>;

    /// Lets the host run other work before a long job goes on: IndexedDB resolves in a later task,
    /// so the page stays responsive; a backend with no event loop to share goes on at once.
    async fn pause(&self) {}

    /// Drops the current connection (if any) and connects again, e.g. after the browser closed
    /// the database under us. The caller re-runs the schema gate.
    async fn reconnect(&self) -> Result<()>;

    /// Releases the connection; later calls fail with `Closed`.
    fn close(&self);
}

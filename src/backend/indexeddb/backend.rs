//! The IndexedDB backend, on `web-sys`.
//!
//! rexie 0.6.2 was the first choice, but it hides the `IDBTransaction` (so the `QuotaExceededError`
//! Chromium reports as the abort cause of a commit cannot be read), hides the `IDBDatabase` (no
//! `versionchange` handling) and awaits every delete. This module issues requests directly and only
//! awaits the transaction's `complete`/`abort` (and, for a write in several chunks, each chunk's
//! first request).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Promise, Reflect, Uint32Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbFactory, IdbKeyRange, IdbObjectStore};

use super::error::js_error;
use crate::backend::{
    progress, Backend, ChunkSize, Frontier, ReadEvent, Row, StoreRows, WriteBatch, WriteOp, WriteSource,
};
use crate::error::{Error, Result};
use crate::layout::all_stores;
use crate::log::log_at;
use crate::model::{Key, KeyPart};

#[wasm_bindgen(module = "/src/backend/indexeddb/idb.js")]
extern "C" {
    #[wasm_bindgen(js_name = requestDone)]
    fn request_done(request: &web_sys::IdbRequest) -> Promise;
    #[wasm_bindgen(js_name = transactionDone)]
    fn transaction_done(tx: &web_sys::IdbTransaction) -> Promise;
    #[wasm_bindgen(js_name = requestSettled)]
    fn request_settled(request: &web_sys::IdbRequest) -> Promise;
    #[wasm_bindgen(js_name = chunkReader, catch)]
    fn chunk_reader(
        tx: &web_sys::IdbTransaction,
        reads: &Array,
        count: u32,
        one_by_one_on_failure: bool,
    ) -> Result<ChunkReader, JsValue>;
    #[wasm_bindgen(js_name = packRows)]
    fn pack_rows(keys: &Array, values: &Array) -> Packed;

    type ChunkReader;
    /// The promise of the next chunk, `undefined` after the last.
    #[wasm_bindgen(method)]
    fn next(this: &ChunkReader) -> Option<Promise>;

    /// A chunk of a read (see `chunkReader` in idb.js), or the read's failure.
    type Chunk;
    #[wasm_bindgen(method, getter)]
    fn read(this: &Chunk) -> u32;
    #[wasm_bindgen(method, getter)]
    fn error(this: &Chunk) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn fatal(this: &Chunk) -> JsValue;
    /// The failure of the chunk's bulk request, its rows then read one by one.
    #[wasm_bindgen(method, getter, js_name = fellBack)]
    fn fell_back(this: &Chunk) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn more(this: &Chunk) -> bool;
    #[wasm_bindgen(method, getter)]
    fn last(this: &Chunk) -> Option<String>;
    #[wasm_bindgen(method, getter)]
    fn length(this: &Chunk) -> u32;
    /// Rows `[from, to)` of the chunk, packed.
    #[wasm_bindgen(method)]
    fn pack(this: &Chunk, from: u32, to: u32) -> Packed;

    /// Rows as `packRows` packs them (see idb.js).
    type Packed;
    #[wasm_bindgen(method, getter)]
    fn keys(this: &Packed) -> String;
    #[wasm_bindgen(method, getter)]
    fn size(this: &Packed) -> u32;
    /// Copies every value into `into` (of `size` bytes), end to end.
    #[wasm_bindgen(method, js_name = copyValues)]
    fn copy_values(this: &Packed, into: &mut [u8]);
    #[wasm_bindgen(method, getter)]
    fn ends(this: &Packed) -> Uint32Array;
    #[wasm_bindgen(method, getter)]
    fn bad(this: &Packed) -> Array;
    #[wasm_bindgen(js_name = nextTask)]
    fn next_task() -> Promise;
    #[wasm_bindgen(js_name = commitTransaction)]
    fn commit_transaction(tx: &web_sys::IdbTransaction);
    #[wasm_bindgen(js_name = writeTransaction, catch)]
    fn write_transaction(db: &IdbDatabase, names: &Array, strict: bool) -> Result<web_sys::IdbTransaction, JsValue>;
    #[wasm_bindgen(js_name = openDatabase)]
    fn open_database(factory: &IdbFactory, name: &str, stores: &Array, timeout_ms: u32) -> Promise;
    #[wasm_bindgen(js_name = watchVersionChange)]
    fn watch_version_change(db: &IdbDatabase, on_change: &Closure<dyn FnMut(f64, f64)>);
}

/// The global `indexedDB` of a window or a worker, or `StorageUnavailable`.
fn factory() -> Result<IdbFactory> {
    let value = Reflect::get(&js_sys::global(), &JsValue::from_str("indexedDB"))
        .map_err(|e| Error::StorageUnavailable(format!("indexedDB cannot be read: {:?}", js_error(e))))?;
    if value.is_undefined() || value.is_null() {
        return Err(Error::StorageUnavailable("indexedDB is not available in this context".into()));
    }
    value.dyn_into::<IdbFactory>().map_err(|_| Error::StorageUnavailable("indexedDB is not an IDBFactory".into()))
}

fn key_to_js(key: &Key) -> JsValue {
    let array = Array::new_with_length(key.len() as u32);
    for (i, part) in key.iter().enumerate() {
        let value = match part {
            KeyPart::Num(n) => JsValue::from_f64(f64::from(*n)),
            KeyPart::Text(s) => JsValue::from_str(s),
        };
        array.set(i as u32, value);
    }
    array.into()
}

/// The keys `packRows` spells in one string (see idb.js): each part `s<UTF-16 length>:<text>`,
/// `=` (the text part at that position of the key before) or `n<u32>;`, each key ended by `|`.
/// `None` if the text is not in that form.
fn parse_keys(text: &str) -> Option<Vec<Key>> {
    let mut keys: Vec<Key> = Vec::new();
    let mut key = Vec::new();
    let mut rest = text;
    while let Some(&tag) = rest.as_bytes().first() {
        if !matches!(tag, b'|' | b'n' | b's' | b'=') {
            return None;
        }
        rest = &rest[1..];
        match tag {
            b'|' => keys.push(std::mem::take(&mut key)),
            b'=' => match keys.last()?.get(key.len())? {
                part @ KeyPart::Text(_) => key.push(part.clone()),
                KeyPart::Num(_) => return None,
            },
            b'n' => {
                let end = rest.find(';')?;
                key.push(KeyPart::Num(rest[..end].parse().ok()?));
                rest = &rest[end + 1..];
            }
            _ => {
                let colon = rest.find(':')?;
                let units: usize = rest[..colon].parse().ok()?;
                rest = &rest[colon + 1..];
                let (mut counted, mut len) = (0, 0);
                for c in rest.chars() {
                    if counted >= units {
                        break;
                    }
                    counted += c.len_utf16();
                    len += c.len_utf8();
                }
                if counted != units {
                    return None;
                }
                key.push(KeyPart::Text(rest[..len].to_owned()));
                rest = &rest[len..];
            }
        }
    }
    key.is_empty().then_some(keys)
}

/// Adds a packed chunk's rows: one copy of its bytes and one of its keys into wasm, then a row per
/// key; a row whose key or value is not ours at all is reported.
fn push_chunk(rows: &mut StoreRows, chunk: &Packed) -> Result<()> {
    let mut bytes = vec![0; chunk.size() as usize];
    chunk.copy_values(&mut bytes);
    let ends = chunk.ends().to_vec();
    let keys = parse_keys(&chunk.keys())
        .filter(|keys| keys.len() == ends.len())
        .ok_or_else(|| Error::Internal(format!("{}: a chunk of rows came back malformed", rows.store)))?;
    let mut start = 0;
    rows.rows.reserve(keys.len());
    for (key, end) in keys.into_iter().zip(ends) {
        let end = end as usize;
        let value =
            bytes.get(start..end).ok_or_else(|| Error::Internal("a chunk's row ends are out of order".into()))?;
        rows.rows.push(Row { key, value: value.to_vec() });
        start = end;
    }
    for bad in chunk.bad().iter() {
        let bad: Array = bad.unchecked_into();
        let key = bad.get(0).as_string().unwrap_or_default();
        let error = match bad.get(1).as_f64() {
            Some(0.0) => Error::EntryMismatch("key is not a wallet-persist key".into()),
            Some(1.0) => Error::BlobDecode("value is not a Uint8Array".into()),
            _ => js_error(bad.get(2)),
        };
        rows.unreadable.push((key, error));
    }
    Ok(())
}

/// [`pause`] when `since` is [`READ_SLICE_MS`] ago, then `since` is now.
async fn pause_if_due(since: &mut f64) {
    if js_sys::Date::now() - *since >= READ_SLICE_MS {
        pause().await;
        *since = js_sys::Date::now();
    }
}

/// Resolves in a later task of the event loop, so the page runs (input, rendering) in between.
pub async fn pause() {
    // `nextTask` never rejects.
    let _ = JsFuture::from(next_task()).await;
}

fn describe(value: &JsValue) -> String {
    js_sys::JSON::stringify(value).ok().and_then(|s| s.as_string()).unwrap_or_else(|| format!("{value:?}"))
}

/// Called when another connection upgrades or deletes the database: `(old, new)` versions, new
/// `-1` for a delete.
pub type VersionChangeHook = Box<dyn Fn(f64, f64)>;

type VersionHandler = Closure<dyn FnMut(f64, f64)>;

/// An open IndexedDB database with every object store of the layout.
pub struct IndexedDbBackend {
    name: String,
    open_timeout_ms: u32,
    db: RefCell<Option<IdbDatabase>>,
    /// Set by `close` only: without a connection and not closed, calls fail with a retryable
    /// `ConnectionLost` (a reconnect failed) instead of `Closed`.
    closed: Cell<bool>,
    /// Set when a `versionchange` closed the connection: writes fail until `reconnect`.
    superseded: Rc<Cell<bool>>,
    hook: Rc<RefCell<Option<VersionChangeHook>>>,
    /// Keeps the `versionchange` handler alive while its connection is.
    handler: RefCell<Option<VersionHandler>>,
    /// How a write's requests are split into tasks.
    chunk_size: Cell<ChunkSize>,
    /// Tests: the next write aborts its transaction instead of issuing this chunk (0-based).
    #[cfg(feature = "testing")]
    abort_at_chunk: Cell<Option<usize>>,
    /// Tests: how the next write waits between chunks (see `slow_next_write`).
    #[cfg(feature = "testing")]
    slow_chunks: Cell<Option<SlowChunks>>,
    /// The most rows one read request returns (see `bulk_read`).
    read_chunk_rows: Cell<u32>,
    /// The most rows of a chunk handed over at once (see `each_chunk`).
    read_piece_rows: Cell<u32>,
}

impl std::fmt::Debug for IndexedDbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexedDbBackend").field("name", &self.name).finish_non_exhaustive()
    }
}

/// How long a read hands rows over before it lets the page run (a piece may run past it).
const READ_SLICE_MS: f64 = 8.0;

/// How many rows of a chunk a read hands over at once by default: turning them into JS values
/// (getAllRecords does it lazily), copying them into wasm, decoding them and building the objects
/// of the wallets they complete take a few milliseconds.
pub const DEFAULT_READ_PIECE_ROWS: u32 = crate::backend::SLICE_ROWS as u32;

/// What [`IndexedDbBackend::each_chunk`] hands over of one read.
enum Piece {
    /// Rows of a chunk, with its [`ChunkEnd`] when they are its last.
    Rows(StoreRows, Option<ChunkEnd>),
    /// The read failed as a whole: nothing more of it comes.
    Failed(Error),
    /// The chunk's bulk request failed (this error): its rows, read one by one in the same
    /// transaction, come next.
    OneByOne(Error),
}

/// Where a read is once one of its chunks was handed over whole.
struct ChunkEnd {
    /// More of the read follows.
    more: bool,
    /// The first key part of the chunk's last key, when that is text.
    last: Option<String>,
}

/// How many rows one read request returns by default.
pub const DEFAULT_READ_CHUNK_ROWS: u32 = 4_096;

/// How long an open may take by default before it fails with `Timeout` or `UpgradeBlocked`.
pub const DEFAULT_OPEN_TIMEOUT_MS: u32 = 10_000;

impl IndexedDbBackend {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str) -> Result<Self> {
        Self::open_with(name, DEFAULT_OPEN_TIMEOUT_MS).await
    }

    /// `open`, failing with `UpgradeBlocked` (an upgrade another tab blocks) or `Timeout` after
    /// `open_timeout_ms`.
    pub async fn open_with(name: &str, open_timeout_ms: u32) -> Result<Self> {
        let backend = IndexedDbBackend {
            name: name.to_owned(),
            open_timeout_ms,
            db: RefCell::new(None),
            closed: Cell::new(false),
            superseded: Rc::default(),
            hook: Rc::default(),
            handler: RefCell::new(None),
            chunk_size: Cell::new(ChunkSize::DEFAULT),
            #[cfg(feature = "testing")]
            abort_at_chunk: Cell::new(None),
            #[cfg(feature = "testing")]
            slow_chunks: Cell::new(None),
            read_chunk_rows: Cell::new(DEFAULT_READ_CHUNK_ROWS),
            read_piece_rows: Cell::new(DEFAULT_READ_PIECE_ROWS),
        };
        backend.connect().await?;
        Ok(backend)
    }

    async fn connect(&self) -> Result<()> {
        let factory = factory()?;
        let stores: Array = all_stores().map(JsValue::from_str).collect();
        let db: IdbDatabase = JsFuture::from(open_database(&factory, &self.name, &stores, self.open_timeout_ms))
            .await
            .map_err(|e| match js_error(e) {
                // At open, "UnknownError" is the browser refusing storage (e.g. denied by settings).
                Error::ConnectionLost(message) => Error::StorageUnavailable(message),
                other => other,
            })?
            .unchecked_into();
        let superseded = self.superseded.clone();
        let hook = self.hook.clone();
        let name = self.name.clone();
        let handler = Closure::new(move |old: f64, new: f64| {
            superseded.set(true);
            log_at!(Warn, "database {name} closed: another connection is moving it from version {old} to {new}");
            if let Some(hook) = &*hook.borrow() {
                hook(old, new);
            }
        });
        watch_version_change(&db, &handler);
        self.superseded.set(false);
        *self.handler.borrow_mut() = Some(handler);
        *self.db.borrow_mut() = Some(db);
        Ok(())
    }

    /// Sets the callback run when another connection upgrades or deletes the database.
    pub fn on_version_change(&self, hook: VersionChangeHook) {
        *self.hook.borrow_mut() = Some(hook);
    }

    /// Deletes the database `name` (resolves once no connection holds it).
    pub async fn delete(name: &str) -> Result<()> {
        let request = factory()?.delete_database(name).map_err(js_error)?;
        JsFuture::from(request_done(&request)).await.map_err(js_error)?;
        Ok(())
    }

    /// Sets how a write's requests are split into tasks ([`ChunkSize::DEFAULT`] unless set).
    pub fn set_chunk_size(&self, size: ChunkSize) {
        self.chunk_size.set(size);
    }

    /// Tests: the next write aborts its transaction (no error: a transient failure) in place of
    /// issuing its chunk `chunk` (0-based), after the chunks before it were issued.
    #[cfg(feature = "testing")]
    pub fn abort_next_write_at_chunk(&self, chunk: usize) {
        self.abort_at_chunk.set(Some(chunk));
    }

    /// Tests: the next write waits `delay_ms` before issuing each chunk after the first, and
    /// forever before chunk `stall_at` (0-based) and later ones, as a slow or a stalled database
    /// would. Meanwhile reads keep its transaction active; they are not progress.
    #[cfg(feature = "testing")]
    pub fn slow_next_write(&self, delay_ms: u32, stall_at: Option<usize>) {
        self.slow_chunks.set(Some(SlowChunks { delay_ms, stall_at }));
    }

    fn take_abort_at_chunk(&self) -> Option<usize> {
        #[cfg(feature = "testing")]
        return self.abort_at_chunk.take();
        #[cfg(not(feature = "testing"))]
        None
    }

    /// Sets the most rows one read request returns (at least 1; default
    /// [`DEFAULT_READ_CHUNK_ROWS`]). Smaller chunks mean less memory held at once, more requests.
    pub fn set_read_chunk_rows(&self, rows: u32) {
        self.read_chunk_rows.set(rows.max(1));
    }

    /// Sets the most rows of a chunk a read hands over at once (at least 1; default
    /// [`DEFAULT_READ_PIECE_ROWS`]). Smaller pieces mean shorter tasks.
    pub fn set_read_piece_rows(&self, rows: u32) {
        self.read_piece_rows.set(rows.max(1));
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn db(&self) -> Result<IdbDatabase> {
        if self.superseded.get() {
            return Err(Error::ClosedByUpgrade(self.name.clone()));
        }
        match &*self.db.borrow() {
            Some(db) => Ok(db.clone()),
            None if self.closed.get() => Err(Error::Closed),
            None => Err(Error::ConnectionLost(format!("no connection to {}: the last reconnect failed", self.name))),
        }
    }
}

fn store_handle<'a>(
    tx: &web_sys::IdbTransaction,
    cache: &'a mut Vec<(&'static str, IdbObjectStore)>,
    name: &'static str,
) -> Result<&'a IdbObjectStore> {
    if let Some(i) = cache.iter().position(|(n, _)| *n == name) {
        return Ok(&cache[i].1);
    }
    cache.push((name, tx.object_store(name).map_err(js_error)?));
    Ok(&cache.last().expect("just pushed").1)
}

/// Every key `[first, ...parts]`: arrays sort after every other key type, so `[first, []]` bounds
/// them from above.
fn group_range(first: &str) -> Result<IdbKeyRange> {
    let first = JsValue::from_str(first);
    let lower = Array::of1(&first);
    let upper = Array::of2(&first, &Array::new());
    IdbKeyRange::bound_with_lower_open_and_upper_open(&lower, &upper, false, true).map_err(js_error)
}

/// Every key `[...prefix, ...more]`: `[...prefix, []]` bounds them from above, as in `group_range`.
fn prefix_range(prefix: &Key) -> Result<IdbKeyRange> {
    let lower: Array = key_to_js(prefix).unchecked_into();
    let upper = Array::from(&lower);
    upper.push(&Array::new());
    IdbKeyRange::bound_with_lower_open_and_upper_open(&lower, &upper, false, true).map_err(js_error)
}

/// Issues one op's request.
fn issue(
    tx: &web_sys::IdbTransaction,
    stores: &mut Vec<(&'static str, IdbObjectStore)>,
    op: &WriteOp,
) -> Result<web_sys::IdbRequest> {
    let store = store_handle(tx, stores, op.store())?;
    let issued = match op {
        WriteOp::Put { key, value, .. } => store.put_with_key(&Uint8Array::from(&value[..]), &key_to_js(key)),
        WriteOp::Delete { key, .. } => store.delete(&key_to_js(key)),
        WriteOp::DeleteWallet { wallet, .. } => store.delete(group_range(&wallet.to_hex())?.as_ref()),
        WriteOp::DeleteGroup { group, .. } => store.delete(group_range(group)?.as_ref()),
        WriteOp::DeletePrefix { prefix, .. } => store.delete(prefix_range(prefix)?.as_ref()),
        WriteOp::Clear { .. } => store.clear(),
    };
    issued.map_err(js_error)
}

/// Tests: how a write waits before each chunk after the first (see `slow_next_write`).
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy)]
struct SlowChunks {
    delay_ms: u32,
    stall_at: Option<usize>,
}

/// Tests: waits as `slow` says before issuing chunk `chunk`, with one read of `store` at a time in
/// flight so the transaction stays active (each issued from the previous one's success). Returns
/// early if a read cannot be issued or fails: the chunk's own request then reports why.
#[cfg(feature = "testing")]
async fn hold_between_chunks(tx: &web_sys::IdbTransaction, store: &'static str, slow: SlowChunks, chunk: usize) {
    let until = js_sys::Date::now() + f64::from(slow.delay_ms);
    let Ok(object_store) = tx.object_store(store) else { return };
    while slow.stall_at.is_some_and(|at| chunk >= at) || js_sys::Date::now() < until {
        let Ok(read) = object_store.get(&JsValue::from_f64(0.0)) else { return };
        if !settled_ok(request_settled(&read)).await {
            return;
        }
    }
}

/// Whether the request behind `settled` (a `requestSettled` promise, which never rejects) succeeded.
async fn settled_ok(settled: Promise) -> bool {
    JsFuture::from(settled).await.ok().and_then(|ok| ok.as_bool()) == Some(true)
}

/// Aborts the transaction when dropped armed: a write whose future is dropped before its last
/// chunk was issued (a deadline) must not let the chunks already issued commit by themselves.
struct AbortUnlessIssued<'a>(&'a web_sys::IdbTransaction, bool);

impl Drop for AbortUnlessIssued<'_> {
    fn drop(&mut self) {
        if self.1 {
            let _ = self.0.abort();
        }
    }
}

impl IndexedDbBackend {
    /// Issues the ops of `source` into `tx` chunk by chunk (`chunk_size`), so no task issues them
    /// all and one chunk of values is made (encoded, sealed) at a time: each chunk is pulled from
    /// the source right after the one before it was issued, while the database works through
    /// that. Each chunk after the first is issued once the previous chunk's first request
    /// succeeded: from a microtask of that success event's task, while the transaction is active,
    /// and with the rest of the previous chunk still queued, so the database never waits for the
    /// page. The transaction cannot commit in between: a request is pending until the end. Each
    /// chunk the database got through is reported to [`progress`]. `Ok(Some(first))`: every
    /// request was issued, `first` settles with the last chunk's first request; `Ok(None)`: a
    /// request failed, so the transaction aborts; `Err`: an op could not be made or a request
    /// could not be issued (the caller aborts).
    async fn issue_chunks(&self, tx: &web_sys::IdbTransaction, source: &dyn WriteSource) -> Result<Option<Promise>> {
        let mut stores = Vec::new();
        let mut previous: Option<Promise> = None;
        let abort_at = self.take_abort_at_chunk();
        #[cfg(feature = "testing")]
        let hold = self.slow_chunks.take();
        let mut chunks = self.chunk_size.get().chunks(source.stream());
        let mut next = chunks.next().transpose()?;
        let mut chunk = 0;
        while let Some(ops) = next {
            if let Some(first) = previous.take() {
                if !settled_ok(first).await {
                    return Ok(None);
                }
                progress::report();
            }
            if abort_at == Some(chunk) {
                let _ = tx.abort();
                return Ok(None);
            }
            #[cfg(feature = "testing")]
            if let (Some(hold), true) = (hold, chunk > 0) {
                hold_between_chunks(tx, ops[0].store(), hold, chunk).await;
            }
            let first = issue(tx, &mut stores, &ops[0])?;
            previous = Some(request_settled(&first));
            for op in &ops[1..] {
                issue(tx, &mut stores, op)?;
            }
            drop(ops);
            // Made while the database works through the chunk just issued.
            next = chunks.next().transpose()?;
            chunk += 1;
        }
        Ok(previous)
    }

    /// One readonly transaction over `stores`, each store read in chunks of at most
    /// `read_chunk_rows` rows (every row when `groups` is `None`, else one range per group): every
    /// store's first request is issued at once, and a store's next chunk is requested as its
    /// current chunk arrives, so the read sees one snapshot. Each chunk is handed to `on` as it
    /// arrives, in pieces of at most `read_piece_rows` rows with the page let run between two
    /// pieces, with the index of its read (store by store, range by range within a store): its
    /// rows, and with the chunk's last piece its [`ChunkEnd`]. A read's chunks come in key order,
    /// the chunks of different reads interleaved. A chunk whose bulk request fails (a value the
    /// browser cannot read) fails its read as a whole, or, with `one_by_one`, is read again one
    /// row at a time in the same transaction ([`Piece::OneByOne`], then its rows, each unreadable
    /// one reported), so the read stays one snapshot.
    async fn each_chunk(
        &self,
        stores: &[&'static str],
        groups: Option<&[&str]>,
        one_by_one: bool,
        on: &mut dyn FnMut(usize, &'static str, Piece) -> Result<()>,
    ) -> Result<()> {
        let ranges = match groups {
            None => vec![JsValue::UNDEFINED],
            Some(groups) => {
                groups.iter().map(|group| group_range(group).map(JsValue::from)).collect::<Result<Vec<_>>>()?
            }
        };
        let db = self.db()?;
        let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
        let tx = db.transaction_with_str_sequence(&names).map_err(js_error)?;
        let reads: Array = stores
            .iter()
            .flat_map(|store| ranges.iter().map(|range| Array::of2(&JsValue::from_str(store), range)))
            .collect();
        let reader = chunk_reader(&tx, &reads, self.read_chunk_rows.get(), one_by_one).map_err(js_error)?;
        // A failed request does not abort the readonly transaction (see `requestDone`): one store
        // failing leaves the others readable. The page runs before a chunk and between two pieces
        // of one once this ran for `READ_SLICE_MS` since it last did (a chunk that arrived while
        // the one before was handled resumes this in the same task); every read's next request is
        // issued as its chunk arrives, so the transaction stays alive meanwhile.
        let mut since = js_sys::Date::now();
        while let Some(next) = reader.next() {
            pause_if_due(&mut since).await;
            let chunk: Chunk = JsFuture::from(next).await.map_err(js_error)?.unchecked_into();
            if !chunk.fatal().is_undefined() {
                return Err(js_error(chunk.fatal()));
            }
            progress::report();
            let read = chunk.read() as usize;
            let store = stores[read / ranges.len()];
            if !chunk.error().is_undefined() {
                on(read, store, Piece::Failed(js_error(chunk.error())))?;
                continue;
            }
            if !chunk.fell_back().is_undefined() {
                on(read, store, Piece::OneByOne(js_error(chunk.fell_back())))?;
            }
            let length = chunk.length();
            let piece = self.read_piece_rows.get();
            let mut from = 0u32;
            loop {
                let to = length.min(from.saturating_add(piece));
                let mut rows = StoreRows { store, rows: Vec::new(), unreadable: Vec::new() };
                push_chunk(&mut rows, &chunk.pack(from, to))?;
                let end = (to == length).then(|| ChunkEnd { more: chunk.more(), last: chunk.last() });
                on(read, store, Piece::Rows(rows, end))?;
                if to == length {
                    break;
                }
                from = to;
                pause_if_due(&mut since).await;
            }
        }
        Ok(())
    }

    /// [`IndexedDbBackend::each_chunk`], every store's rows (range by range, in the order of
    /// `groups`) collected whole.
    async fn bulk_read(&self, stores: &[&'static str], groups: Option<&[&str]>) -> Result<Vec<Result<StoreRows>>> {
        // One slot per read (store and range, store by store).
        let per_store = groups.map_or(1, <[&str]>::len);
        let mut reads: Vec<Result<StoreRows>> = stores
            .iter()
            .flat_map(|store| (0..per_store).map(|_| Ok(StoreRows { store, rows: Vec::new(), unreadable: Vec::new() })))
            .collect();
        let mut collect = |read: usize, _: &'static str, piece: Piece| {
            match (&mut reads[read], piece) {
                (Ok(rows), Piece::Rows(more, _)) => {
                    rows.rows.extend(more.rows);
                    rows.unreadable.extend(more.unreadable);
                }
                (slot @ Ok(_), Piece::Failed(error) | Piece::OneByOne(error)) => *slot = Err(error),
                (Err(_), _) => {}
            }
            Ok(())
        };
        self.each_chunk(stores, groups, false, &mut collect).await?;
        let mut reads = reads.into_iter();
        let out = stores
            .iter()
            .map(|store| {
                let mut rows = StoreRows { store, rows: Vec::new(), unreadable: Vec::new() };
                // Collected first: every read of this store is taken, even after a failed one.
                for read in reads.by_ref().take(per_store).collect::<Vec<_>>() {
                    let more = read?;
                    rows.rows.extend(more.rows);
                    rows.unreadable.extend(more.unreadable);
                }
                Ok(rows)
            })
            .collect();
        Ok(out)
    }
}

impl Backend for IndexedDbBackend {
    async fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.write_source(batch).await
    }

    async fn write_source(&self, source: &dyn WriteSource) -> Result<()> {
        let stores = source.stores();
        if stores.is_empty() {
            return Ok(());
        }
        let db = self.db()?;
        let names: Array = stores.into_iter().map(JsValue::from_str).collect();
        let tx = write_transaction(&db, &names, source.strict()).map_err(js_error)?;
        let done = transaction_done(&tx);
        let mut guard = AbortUnlessIssued(&tx, true);
        let issued = self.issue_chunks(&tx, source).await;
        crate::log::memory_mark!("indexeddb: issued");
        match issued {
            Ok(Some(last)) => {
                commit_transaction(&tx);
                guard.1 = false;
                // The database got to the last chunk: progress, then the commit.
                if settled_ok(last).await {
                    progress::report();
                }
            }
            // A request failed: the transaction aborts by itself and `done` gives the cause.
            Ok(None) => guard.1 = false,
            Err(error) => {
                drop(guard);
                let _ = JsFuture::from(done).await;
                return Err(error);
            }
        }
        JsFuture::from(done).await.map_err(js_error)?;
        Ok(())
    }

    async fn read(&self, stores: &[&'static str]) -> Result<Vec<Result<StoreRows>>> {
        self.bulk_read(stores, None).await
    }

    async fn read_groups(&self, stores: &[&'static str], groups: &[&str]) -> Result<Vec<Result<StoreRows>>> {
        self.bulk_read(stores, Some(groups)).await
    }

    /// Every chunk handed over as it arrives; reading every row, a [`ReadEvent::Complete`] follows
    /// each chunk that raises the [`Frontier`].
    async fn read_stream(
        &self,
        stores: &[&'static str],
        groups: Option<&[&str]>,
        sink: &mut dyn FnMut(ReadEvent) -> Result<()>,
    ) -> Result<()> {
        let mut frontier = Frontier::new(stores.len() * groups.map_or(1, <[&str]>::len));
        let mut on = |read: usize, store: &'static str, piece: Piece| {
            let raised = match piece {
                Piece::Rows(rows, end) => {
                    sink(ReadEvent::Rows(rows))?;
                    end.and_then(|ChunkEnd { more, last }| frontier.chunk(read, more, last))
                }
                Piece::OneByOne(error) => return sink(ReadEvent::OneByOne(store, error)),
                Piece::Failed(error) => return Err(error),
            };
            match raised {
                Some(complete) if groups.is_none() => sink(complete),
                _ => Ok(()),
            }
        };
        self.each_chunk(stores, groups, true, &mut on).await
    }

    async fn get(&self, store: &'static str, key: &Key) -> Result<Option<Vec<u8>>> {
        let db = self.db()?;
        let tx = db.transaction_with_str(store).map_err(js_error)?;
        let request = tx.object_store(store).map_err(js_error)?.get(&key_to_js(key)).map_err(js_error)?;
        let value = JsFuture::from(request_done(&request)).await.map_err(js_error)?;
        if value.is_undefined() {
            return Ok(None);
        }
        match value.dyn_ref::<Uint8Array>() {
            Some(bytes) => Ok(Some(bytes.to_vec())),
            None => Err(Error::BlobDecode(format!("{store} {}: value is not a Uint8Array", describe(&key_to_js(key))))),
        }
    }

    async fn scan(&self, store: &'static str) -> Result<StoreRows> {
        let db = self.db()?;
        let tx = db.transaction_with_str(store).map_err(js_error)?;
        let object_store = tx.object_store(store).map_err(js_error)?;
        let keys: Array = JsFuture::from(request_done(&object_store.get_all_keys().map_err(js_error)?))
            .await
            .map_err(js_error)?
            .unchecked_into();
        // Every get is issued before any is awaited, so the transaction stays active.
        let mut gets = Vec::with_capacity(keys.length() as usize);
        for key in keys.iter() {
            gets.push(object_store.get(&key).map(|request| request_done(&request)).map_err(js_error));
        }
        let mut rows = StoreRows { store, rows: Vec::new(), unreadable: Vec::new() };
        let (read_keys, values) = (Array::new(), Array::new());
        for (key, get) in keys.iter().zip(gets) {
            let value = match get {
                Ok(promise) => JsFuture::from(promise).await.map_err(js_error),
                Err(error) => Err(error),
            };
            progress::report();
            match value {
                Ok(value) => {
                    read_keys.push(&key);
                    values.push(&value);
                }
                Err(error) => rows.unreadable.push((describe(&key), error)),
            }
        }
        push_chunk(&mut rows, &pack_rows(&read_keys, &values))?;
        Ok(rows)
    }

    async fn pause(&self) {
        pause().await
    }

    async fn reconnect(&self) -> Result<()> {
        if let Some(db) = self.db.borrow_mut().take() {
            db.close();
        }
        self.connect().await
    }

    fn close(&self) {
        self.closed.set(true);
        if let Some(db) = self.db.borrow_mut().take() {
            db.close();
        }
        self.handler.borrow_mut().take();
    }
}

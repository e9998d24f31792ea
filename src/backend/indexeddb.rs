//! The IndexedDB backend, on `web-sys`.
//!
//! rexie 0.6.2 was the first choice, but it hides the `IDBTransaction` (so the `QuotaExceededError`
//! Chromium reports as the abort cause of a commit cannot be read), hides the `IDBDatabase` (no
//! `versionchange` handling) and awaits every delete. This module issues requests directly and only
//! awaits the transaction's `complete`/`abort`.

use std::cell::RefCell;

use js_sys::{Array, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, IdbDatabase, IdbFactory, IdbKeyRange, IdbObjectStore, IdbTransactionMode};

use super::{all_stores, Backend, Row, StoreRows, WriteBatch, WriteOp};
use crate::error::{Error, Result};
use crate::model::{Key, KeyPart};

/// The IndexedDB version of the object-store layout (not the envelope schema version).
pub const DB_VERSION: u32 = 1;

#[wasm_bindgen(inline_js = r#"
export function requestDone(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = (event) => { event.preventDefault(); reject(req.error); };
  });
}
export function transactionDone(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error || new DOMException('The transaction was aborted.', 'AbortError'));
  });
}
export function commitTransaction(tx) {
  if (typeof tx.commit === 'function') tx.commit();
}
export function openDatabase(factory, name, version, stores) {
  return new Promise((resolve, reject) => {
    const req = factory.open(name, version);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const store of stores) {
        if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
      }
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = (event) => { event.preventDefault(); reject(req.error); };
  });
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = requestDone)]
    fn request_done(request: &web_sys::IdbRequest) -> Promise;
    #[wasm_bindgen(js_name = transactionDone)]
    fn transaction_done(tx: &web_sys::IdbTransaction) -> Promise;
    #[wasm_bindgen(js_name = commitTransaction)]
    fn commit_transaction(tx: &web_sys::IdbTransaction);
    #[wasm_bindgen(js_name = openDatabase, catch)]
    fn open_database(factory: &IdbFactory, name: &str, version: u32, stores: &Array) -> Result<Promise, JsValue>;
}

/// Maps a thrown or rejected JS value (usually a `DOMException`) to our error enum.
pub fn js_error(value: JsValue) -> Error {
    if let Some(dom) = value.dyn_ref::<DomException>() {
        return Error::from_dom_exception(&dom.name(), &dom.message());
    }
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return Error::from_dom_exception(&String::from(error.name()), &String::from(error.message()));
    }
    Error::Internal(format!("{value:?}"))
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

fn key_from_js(value: &JsValue) -> Option<Key> {
    let array = value.dyn_ref::<Array>()?;
    array
        .iter()
        .map(|part| {
            if let Some(s) = part.as_string() {
                Some(KeyPart::Text(s))
            } else {
                let n = part.as_f64()?;
                (n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n)).then_some(KeyPart::Num(n as u32))
            }
        })
        .collect()
}

/// Adds one row read back, or reports it when its key or value is not ours at all.
fn push_row(rows: &mut StoreRows, key: &JsValue, value: &JsValue) {
    match (key_from_js(key), value.dyn_ref::<Uint8Array>()) {
        (Some(key), Some(bytes)) => rows.rows.push(Row { key, value: bytes.to_vec() }),
        (None, _) => rows.unreadable.push((describe(key), Error::EntryMismatch("key is not a wallet-persist key".into()))),
        (Some(_), None) => rows.unreadable.push((describe(key), Error::BlobDecode("value is not a Uint8Array".into()))),
    }
}

fn describe(value: &JsValue) -> String {
    js_sys::JSON::stringify(value).ok().and_then(|s| s.as_string()).unwrap_or_else(|| format!("{value:?}"))
}

/// An open IndexedDB database with every object store of the layout.
#[derive(Debug)]
pub struct IndexedDbBackend {
    name: String,
    db: RefCell<Option<IdbDatabase>>,
}

impl IndexedDbBackend {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str) -> Result<Self> {
        let factory = factory()?;
        let stores: Array = all_stores().map(JsValue::from_str).collect();
        let promise = open_database(&factory, name, DB_VERSION, &stores).map_err(js_error)?;
        let db: IdbDatabase = JsFuture::from(promise).await.map_err(js_error)?.unchecked_into();
        Ok(IndexedDbBackend { name: name.to_owned(), db: RefCell::new(Some(db)) })
    }

    /// Deletes the database `name` (resolves once no connection holds it).
    pub async fn delete(name: &str) -> Result<()> {
        let request = factory()?.delete_database(name).map_err(js_error)?;
        JsFuture::from(request_done(&request)).await.map_err(js_error)?;
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn db(&self) -> Result<IdbDatabase> {
        self.db.borrow().clone().ok_or(Error::Closed)
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

fn issue(tx: &web_sys::IdbTransaction, batch: &WriteBatch) -> Result<()> {
    let mut stores = Vec::new();
    for op in &batch.ops {
        let store = store_handle(tx, &mut stores, op.store())?;
        let issued = match op {
            WriteOp::Put { key, value, .. } => store.put_with_key(&Uint8Array::from(&value[..]), &key_to_js(key)),
            WriteOp::Delete { key, .. } => store.delete(&key_to_js(key)),
            WriteOp::DeleteWallet { wallet, .. } => {
                // Arrays sort after every other key type, so [id, []] bounds every [id, ...parts].
                let hex = JsValue::from_str(&wallet.to_hex());
                let lower = Array::of1(&hex);
                let upper = Array::of2(&hex, &Array::new());
                let range = IdbKeyRange::bound_with_lower_open_and_upper_open(&lower, &upper, false, true)
                    .map_err(js_error)?;
                store.delete(&range)
            }
        };
        issued.map_err(js_error)?;
    }
    Ok(())
}

impl Backend for IndexedDbBackend {
    async fn write(&self, batch: &WriteBatch) -> Result<()> {
        if batch.ops.is_empty() {
            return Ok(());
        }
        let db = self.db()?;
        let names: Array = batch.stores().into_iter().map(JsValue::from_str).collect();
        let tx = db
            .transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readwrite)
            .map_err(js_error)?;
        let done = transaction_done(&tx);
        if let Err(error) = issue(&tx, batch) {
            let _ = tx.abort();
            let _ = JsFuture::from(done).await;
            return Err(error);
        }
        commit_transaction(&tx);
        JsFuture::from(done).await.map_err(js_error)?;
        Ok(())
    }

    async fn read(&self, stores: &[&'static str]) -> Result<Vec<Result<StoreRows>>> {
        let db = self.db()?;
        let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
        let tx = db.transaction_with_str_sequence(&names).map_err(js_error)?;
        let mut pending = Vec::with_capacity(stores.len());
        for store in stores {
            let object_store = tx.object_store(store).map_err(js_error)?;
            let keys = request_done(&object_store.get_all_keys().map_err(js_error)?);
            let values = request_done(&object_store.get_all().map_err(js_error)?);
            pending.push((*store, keys, values));
        }
        let mut out = Vec::with_capacity(stores.len());
        for (store, keys, values) in pending {
            // Both requests settle even when one fails (a failed request does not abort the
            // readonly transaction, see `requestDone`).
            let keys = JsFuture::from(keys).await;
            let values = JsFuture::from(values).await;
            out.push(match (keys, values) {
                (Ok(keys), Ok(values)) => {
                    let mut rows = StoreRows { store, rows: Vec::new(), unreadable: Vec::new() };
                    let (keys, values): (Array, Array) = (keys.unchecked_into(), values.unchecked_into());
                    for (key, value) in keys.iter().zip(values.iter()) {
                        push_row(&mut rows, &key, &value);
                    }
                    Ok(rows)
                }
                (Err(error), _) | (_, Err(error)) => Err(js_error(error)),
            });
        }
        Ok(out)
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
        for (key, get) in keys.iter().zip(gets) {
            let value = match get {
                Ok(promise) => JsFuture::from(promise).await.map_err(js_error),
                Err(error) => Err(error),
            };
            match value {
                Ok(value) => push_row(&mut rows, &key, &value),
                Err(error) => rows.unreadable.push((describe(&key), error)),
            }
        }
        Ok(rows)
    }

    fn close(&self) {
        if let Some(db) = self.db.borrow_mut().take() {
            db.close();
        }
    }
}

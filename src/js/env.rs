//! What a store needs from its browser context besides IndexedDB: the cross-tab writer lock (Web
//! Locks), change notices to other tabs (BroadcastChannel), the page-lifecycle flush, and
//! `navigator.storage`. Everything is reached through `globalThis`, so a dedicated or service
//! worker works too (it simply has no page lifecycle).

use std::cell::RefCell;
use std::collections::BTreeSet;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
// Resolves a function that releases the lock; `null` when `wait` is false and another instance
// holds it; `undefined` when Web Locks are missing or denied in this context. Waiting longer than timeoutMs rejects TimeoutError.
export function acquireLock(name, wait, timeoutMs) {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (!locks || typeof locks.request !== 'function') return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    let release;
    const held = new Promise((r) => { release = r; });
    const controller = wait ? new AbortController() : null;
    const timer = wait ? setTimeout(() => controller.abort(), timeoutMs) : null;
    const options = wait ? { signal: controller.signal } : { ifAvailable: true };
    const failed = (error) => {
      clearTimeout(timer);
      if (error && error.name === 'SecurityError') resolve(undefined); // denied here: as if missing
      else reject(error && error.name === 'AbortError'
        ? new DOMException(`waited ${timeoutMs} ms for another instance to close ${name}`, 'TimeoutError')
        : error);
    };
    try {
      locks.request(name, options, (lock) => {
        clearTimeout(timer);
        if (!lock) { resolve(null); return undefined; }
        resolve(() => release());
        return held;
      }).catch(failed);
    } catch (error) {
      failed(error);
    }
  });
}
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
// An AbortSignal and the function that aborts it.
export function abortPair() {
  const controller = new AbortController();
  return [controller.signal, () => controller.abort()];
}
// What a rejection or throw says: its message if it is an Error, else its string form.
export function describeFailure(value) {
  return value instanceof Error ? `${value.name}: ${value.message}` : String(value);
}
export function openChannel(name, onMessage) {
  if (typeof globalThis.BroadcastChannel !== 'function') return null;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (event) => onMessage(event.data);
  return channel;
}
export function postChange(channel, walletIds) {
  channel.postMessage({ walletIds });
}
export function closeChannel(channel) {
  channel.close();
}
// Calls onHide(reason) when the page is hidden or being unloaded; returns the unsubscribe
// function, or null outside a page.
export function watchLifecycle(onHide) {
  const doc = globalThis.document;
  if (!doc || typeof globalThis.addEventListener !== 'function') return null;
  const visibility = () => { if (doc.visibilityState === 'hidden') onHide('visibilitychange'); };
  const pagehide = () => onHide('pagehide');
  doc.addEventListener('visibilitychange', visibility);
  globalThis.addEventListener('pagehide', pagehide);
  return () => {
    doc.removeEventListener('visibilitychange', visibility);
    globalThis.removeEventListener('pagehide', pagehide);
  };
}
function storageManager(method) {
  const storage = globalThis.navigator && globalThis.navigator.storage;
  if (!storage || typeof storage[method] !== 'function') {
    throw new DOMException(`navigator.storage.${method} is not available here`, 'NotSupportedError');
  }
  return storage;
}
export async function persistStorage() {
  const storage = storageManager('persist');
  return { persisted: await storage.persist() };
}
export async function estimateStorage() {
  const { usage, quota } = await storageManager('estimate').estimate();
  return { usage: usage ?? 0, quota: quota ?? 0 };
}
"#)]
extern "C" {
    pub fn sleep(ms: u32) -> Promise;
    #[wasm_bindgen(js_name = abortPair)]
    pub fn abort_pair() -> js_sys::Array;
    #[wasm_bindgen(js_name = describeFailure)]
    pub fn describe_failure(value: &JsValue) -> String;
    #[wasm_bindgen(js_name = acquireLock)]
    pub fn acquire_lock(name: &str, wait: bool, timeout_ms: u32) -> Promise;
    #[wasm_bindgen(js_name = openChannel)]
    pub fn open_channel(name: &str, on_message: &Closure<dyn FnMut(JsValue)>) -> JsValue;
    #[wasm_bindgen(js_name = postChange)]
    pub fn post_change(channel: &JsValue, wallet_ids: js_sys::Array);
    #[wasm_bindgen(js_name = closeChannel)]
    pub fn close_channel(channel: &JsValue);
    #[wasm_bindgen(js_name = watchLifecycle)]
    pub fn watch_lifecycle(on_hide: &Closure<dyn FnMut(String)>) -> JsValue;
    #[wasm_bindgen(js_name = persistStorage)]
    pub fn persist_storage() -> Promise;
    #[wasm_bindgen(js_name = estimateStorage)]
    pub fn estimate_storage() -> Promise;
}

thread_local! {
    /// Database names with an open store in this realm (page or worker).
    static OPEN: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

/// Everything a store holds in its context. Dropping it releases all of it: lifecycle listeners,
/// the change channel, the writer lock, and the name in this realm.
pub struct Session {
    name: String,
    pub release_lock: Option<Function>,
    pub channel: Option<JsValue>,
    pub on_message: Option<Closure<dyn FnMut(JsValue)>>,
    pub unwatch: Option<Function>,
    pub on_hide: Option<Closure<dyn FnMut(String)>>,
}

impl Session {
    /// Claims `name` in this realm; `None` if a store of that name is already open here.
    pub fn claim(name: &str) -> Option<Session> {
        let fresh = OPEN.with(|open| open.borrow_mut().insert(name.to_owned()));
        fresh.then(|| Session {
            name: name.to_owned(),
            release_lock: None,
            channel: None,
            on_message: None,
            unwatch: None,
            on_hide: None,
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(unwatch) = self.unwatch.take() {
            let _ = unwatch.call0(&JsValue::UNDEFINED);
        }
        if let Some(channel) = self.channel.take() {
            close_channel(&channel);
        }
        if let Some(release) = self.release_lock.take() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
        OPEN.with(|open| open.borrow_mut().remove(&self.name));
    }
}

/// Browser timers and `spawn_local`.
pub struct BrowserRuntime;

impl crate::tasks::Runtime for BrowserRuntime {
    fn spawn(&self, future: crate::tasks::LocalFuture<()>) {
        wasm_bindgen_futures::spawn_local(future);
    }
    fn sleep(&self, ms: u32) -> crate::tasks::LocalFuture<()> {
        Box::pin(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(sleep(ms)).await;
        })
    }
}

//! What a store needs from its browser context besides IndexedDB: the cross-tab writer lock (Web
//! Locks), change notices to other tabs (BroadcastChannel), the page-lifecycle flush, and
//! `navigator.storage`. Everything is reached through `globalThis`, so a dedicated or service
//! worker works too (it simply has no page lifecycle).

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::session::{Established, Lock};

#[wasm_bindgen(module = "/src/js/env.js")]
extern "C" {
    pub fn sleep(ms: u32) -> Promise;
    #[wasm_bindgen(js_name = abortPair)]
    pub fn abort_pair() -> js_sys::Array;
    #[wasm_bindgen(js_name = describeFailure)]
    pub fn describe_failure(value: &JsValue) -> String;
    #[wasm_bindgen(js_name = acquireLock)]
    pub fn acquire_lock(name: &str, wait: bool, timeout_ms: u32) -> Promise;
    #[wasm_bindgen(js_name = callLogger)]
    pub fn call_logger(logger: &Function, record: &JsValue, message: &str);
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

/// Web Locks, for [`crate::session`].
pub struct BrowserEnv;

impl crate::session::Environment for BrowserEnv {
    type Held = Function;
    async fn acquire_lock(&self, name: &str, wait: bool, timeout_ms: u32) -> crate::Result<Lock<Function>> {
        let lock = wasm_bindgen_futures::JsFuture::from(acquire_lock(name, wait, timeout_ms))
            .await
            .map_err(crate::backend::indexeddb::js_error)?;
        Ok(if lock.is_undefined() {
            Lock::Unsupported
        } else if lock.is_null() {
            Lock::Taken
        } else {
            Lock::Held(lock.unchecked_into())
        })
    }
}

/// Everything a store holds in its context. Dropping it releases all of it: lifecycle listeners,
/// the change channel, the writer lock, and the name in this realm.
pub struct Session {
    established: Established<Function>,
    pub channel: Option<JsValue>,
    pub on_message: Option<Closure<dyn FnMut(JsValue)>>,
    pub unwatch: Option<Function>,
    pub on_hide: Option<Closure<dyn FnMut(String)>>,
}

impl Session {
    /// Holds what [`crate::session::establish`] claimed.
    pub fn new(established: Established<Function>) -> Session {
        Session { established, channel: None, on_message: None, unwatch: None, on_hide: None }
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
        if let Some(release) = self.established.lock.take() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
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

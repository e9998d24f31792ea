//! `store.tasks`: the task registry from JS. A pass is `async (signal: AbortSignal) => …`; the
//! signal aborts when the worker is quiesced or the store closes.

use std::rc::Rc;

use js_sys::{Function, Promise};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::convert::{self, Rejection, Value};
use super::{accept, env, promise, rejected, to_js};
use crate::error::Error;
use crate::tasks::{LocalFuture, PassFn, Signal, TaskRegistry, WorkerSpec};

/// Default drain timeout of `quiesce`, `close` and wallet deletes, in ms.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// The background coordinators of a store.
#[wasm_bindgen]
pub struct Tasks {
    registry: Rc<TaskRegistry>,
}

impl Tasks {
    pub(super) fn new(registry: Rc<TaskRegistry>) -> Tasks {
        Tasks { registry }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartOptions {
    key: String,
    #[serde(default)]
    weight: u32,
    interval_ms: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TimeoutOptions {
    #[serde(default)]
    timeout_ms: Option<u32>,
}

/// `{timeoutMs}` from an optional options object (`undefined` or `null`: the default).
pub(super) fn timeout_ms(options: &JsValue) -> std::result::Result<u32, Rejection> {
    let value = convert::read(options).map_err(|r| Rejection::from_refusal(r, "options"))?;
    if matches!(value, Value::Undefined | Value::Null) {
        return Ok(DEFAULT_TIMEOUT_MS);
    }
    let parsed: TimeoutOptions = convert::from_value(&value).map_err(|r| Rejection::from_refusal(r, "options"))?;
    Ok(parsed.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))
}

/// A worker key argument: a string.
fn key(value: &JsValue) -> std::result::Result<String, Rejection> {
    match convert::read(value) {
        Ok(Value::Text(key)) => Ok(key),
        Ok(_) => Err(Error::InvalidArgument("key must be a string".into()).into()),
        Err(refusal) => Err(Rejection::from_refusal(refusal, "key")),
    }
}

/// Wraps a JS `async (signal) => …` as a pass; a rejection or throw is the pass's failure.
fn js_pass(pass: Function) -> PassFn {
    Rc::new(move |abort: Signal| {
        let pair = env::abort_pair();
        let (signal, abort_js): (JsValue, Function) = (pair.get(0), pair.get(1).unchecked_into());
        abort.on_fire(Box::new(move || {
            let _ = abort_js.call0(&JsValue::UNDEFINED);
        }));
        let called = pass.call1(&JsValue::UNDEFINED, &signal);
        Box::pin(async move {
            let returned = called.map_err(|e| env::describe_failure(&e))?;
            let settled = convert::settle(&returned).map_err(|e| env::describe_failure(&e))?;
            JsFuture::from(settled).await.map(|_| ()).map_err(|e| env::describe_failure(&e))
        }) as LocalFuture<_>
    })
}

#[wasm_bindgen]
impl Tasks {
    /// Starts a worker (or restarts a quiesced one in place): one pass at once, then one every
    /// `intervalMs`. Rejects `closed` (20) once the store is closing, `shutdown_incomplete` (19)
    /// while a wipe holds the worker's clearing latch.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn start(&self, #[wasm_bindgen(unchecked_param_type = "WorkerOptions")] options: JsValue) -> Promise {
        accept!(guard);
        let mut value = accept!(convert::read(&options).map_err(|r| Rejection::from_refusal(r, "worker options")));
        let pass = match value.take("pass") {
            Some(Value::Function(pass)) => pass,
            _ => return rejected(Error::InvalidArgument("worker options: pass must be a function".into())),
        };
        let parsed: StartOptions =
            accept!(convert::from_value(&value).map_err(|r| Rejection::from_refusal(r, "worker options")));
        let started = self.registry.start(WorkerSpec {
            key: parsed.key,
            weight: parsed.weight,
            interval_ms: parsed.interval_ms,
            pass: js_pass(pass),
        });
        promise(async move { started.map(|()| JsValue::UNDEFINED) })
    }

    /// Runs one pass now: `"ran"`, or `"skipped_quiescing"` / `"skipped_busy"`.
    #[wasm_bindgen(js_name = syncNow, unchecked_return_type = "Promise<SyncOutcome>")]
    pub fn sync_now(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        accept!(guard);
        let key = accept!(self::key(&key));
        let registry = self.registry.clone();
        promise(async move { to_js(&registry.sync_now(&key).await?) })
    }

    /// Cancels the worker's loop and returns at once (a running pass continues).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn stop(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        accept!(guard);
        let key = accept!(self::key(&key));
        let stopped = self.registry.stop(&key);
        promise(async move { stopped.map(|()| JsValue::UNDEFINED) })
    }

    /// Stops the worker and waits up to `timeoutMs` for its pass (whose signal is aborted) to end.
    #[wasm_bindgen(unchecked_return_type = "Promise<WorkerStatus>")]
    pub fn quiesce(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "QuiesceOptions")] options: JsValue,
    ) -> Promise {
        accept!(guard);
        let key = accept!(self::key(&key));
        let timeout = accept!(timeout_ms(&options));
        let registry = self.registry.clone();
        promise(async move { to_js(&registry.quiesce(&key, timeout).await?) })
    }
}

//! Observation: the events `onChange` listeners receive, and `setLogger`, which routes log lines
//! (level, message, structured fields) to the app's logger.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;

use super::{env, error};
use crate::error::Error;
use crate::log::{self, Field, Level, Value};

/// Where a change came from: this store (`"local"`) or another tab or worker (`"remote"`).
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    /// A commit, delete or registration of this store.
    Local,
    /// A message from another instance of the database (BroadcastChannel).
    Remote,
}

/// `{walletIds, origin}` for `onChange` listeners.
pub fn change_event(wallet_ids: &JsValue, origin: Origin) -> JsValue {
    let event = Object::new();
    let origin = match origin {
        Origin::Local => "local",
        Origin::Remote => "remote",
    };
    let _ = Reflect::set(&event, &"walletIds".into(), wallet_ids);
    let _ = Reflect::set(&event, &"origin".into(), &origin.into());
    event.into()
}

/// Calls every listener with `value`; a listener that throws is logged, the others still run.
/// The list is copied first, so a listener may unsubscribe (itself or others) while it runs.
pub fn call_all(listeners: &RefCell<Vec<Function>>, value: &JsValue) {
    let snapshot = listeners.borrow().clone();
    for listener in snapshot {
        if let Err(error) = listener.call1(&JsValue::UNDEFINED, value) {
            crate::log::log_at!(Error, "a listener threw: {}", super::env::describe_failure(&error));
        }
    }
}

fn field_value(value: &Value) -> JsValue {
    match value {
        Value::Text(text) => JsValue::from_str(text),
        Value::Number(number) => JsValue::from_f64(*number),
        Value::List(items) => items.iter().map(|item| JsValue::from_str(item)).collect::<Array>().into(),
    }
}

fn record(level: Level, message: &str, fields: &[Field]) -> JsValue {
    let object = Object::new();
    let values = Object::new();
    for (name, value) in fields {
        let _ = Reflect::set(&values, &(*name).into(), &field_value(value));
    }
    let _ = Reflect::set(&object, &"level".into(), &level.name().into());
    let _ = Reflect::set(&object, &"message".into(), &message.into());
    let _ = Reflect::set(&object, &"fields".into(), &values);
    object.into()
}

/// Routes every log line at or above the level of `setLogLevel` to `logger({level, message,
/// fields})` instead of the console (`fields`: structured values such as `walletIds`, `code`,
/// `store`); `null` restores the console. The logger is called in a microtask, never inside a
/// store's call, so it may call the store; if it throws, that line goes to the console.
#[wasm_bindgen(js_name = setLogger)]
pub fn set_logger(
    #[wasm_bindgen(unchecked_param_type = "((record: LogRecord) => void) | null")] logger: JsValue,
) -> Result<(), JsValue> {
    if logger.is_null() || logger.is_undefined() {
        log::set_sink(None);
        return Ok(());
    }
    let logger: Function = logger
        .dyn_into()
        .map_err(|_| error::to_js(&Error::InvalidArgument("setLogger takes a function or null".into())))?;
    log::set_sink(Some(Rc::new(move |level, message, fields| {
        env::call_logger(&logger, &record(level, message, fields), message);
    })));
    Ok(())
}

//! Our errors as JS `Error`s: `name = "WalletPersistError"` plus `code`, `kind`, `retryable`,
//! `walletIds` and `detail`.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::error::Error;

macro_rules! js_error_code {
    ($( $name:ident = $number:literal, $kind:literal, $retryable:literal, $doc:literal; )*) => {
        /// The stable numeric error codes (the `code` of every `WalletPersistError`), from the one
        /// error table in `error.rs`.
        #[wasm_bindgen]
        #[derive(Debug, Clone, Copy)]
        pub enum ErrorCode {
            $( #[doc = $doc] $name = $number, )*
        }
    };
}

crate::error_table!(js_error_code);

fn set(target: &JsValue, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a fresh Error or Object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), &value.into());
}

fn cause_object(cause: &Error) -> Object {
    let c = Object::new();
    set(&c, "code", cause.code());
    set(&c, "kind", cause.kind());
    set(&c, "retryable", cause.is_transient());
    set(&c, "message", cause.to_string());
    c
}

fn detail(error: &Error) -> Option<Object> {
    let detail = Object::new();
    match error {
        Error::FlushRetryable { cause, dropped, .. } if !dropped.is_empty() => {
            set(&detail, "cause", cause_object(cause));
            let ids: Array = dropped.iter().map(|id| JsValue::from_str(&id.to_hex())).collect();
            set(&detail, "dropped", ids);
        }
        Error::FlushRetryable { cause, .. } | Error::FlushFailed { cause, .. } => {
            set(&detail, "cause", cause_object(cause));
        }
        Error::BlobTooLarge { len, limit } => {
            set(&detail, "len", *len as f64);
            set(&detail, "limit", *limit as f64);
        }
        Error::SchemaVersionUnsupported { found, supported } => {
            set(&detail, "found", *found);
            set(&detail, "supported", *supported);
        }
        _ => return None,
    }
    Some(detail)
}

/// Builds the `WalletPersistError` a promise rejects with.
pub fn to_js(error: &Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name("WalletPersistError");
    let value: JsValue = js.into();
    set(&value, "code", error.code());
    set(&value, "kind", error.kind());
    set(&value, "retryable", error.is_transient());
    let wallets = error.wallet_ids();
    if !wallets.is_empty() {
        let ids: Array = wallets.iter().map(|id| JsValue::from_str(&id.to_hex())).collect();
        set(&value, "walletIds", ids);
    }
    if let Some(detail) = detail(error) {
        set(&value, "detail", detail);
    }
    value
}

/// Builds the `WalletPersistError` of `rejection`, with the caller's exception that caused it as
/// `cause` (a throwing getter or Proxy trap of an argument).
pub fn rejection_to_js(rejection: &super::convert::Rejection) -> JsValue {
    let value = to_js(&rejection.error);
    if let Some(cause) = &rejection.cause {
        set(&value, "cause", cause.clone());
    }
    value
}

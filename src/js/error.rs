//! Our errors as JS `WalletPersistError`s (the plain-JS class in `errors.js`, so `instanceof` and
//! `isWalletPersistError` work before and without `init()`): `code`, `kind`, `retryable`,
//! `walletIds`, `detail`, and the standard `cause`. The only place that builds JS errors.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/js/errors.js")]
extern "C" {
    #[wasm_bindgen(js_name = createError)]
    fn create_error(
        message: &str,
        code: u16,
        kind: &str,
        retryable: bool,
        wallet_ids: JsValue,
        detail: JsValue,
        cause: JsValue,
    ) -> JsValue;
}

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

wallet_persist_core::error_table!(js_error_code);

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

/// Builds the `WalletPersistError` a promise rejects with. A flush error's `cause` is the
/// storage error behind it, itself a `WalletPersistError`.
pub fn to_js(error: &Error) -> JsValue {
    let wallets = error.wallet_ids();
    let wallet_ids = if wallets.is_empty() {
        JsValue::UNDEFINED
    } else {
        wallets.iter().map(|id| JsValue::from_str(&id.to_hex())).collect::<Array>().into()
    };
    let cause = match error {
        Error::FlushRetryable { cause, .. } | Error::FlushFailed { cause, .. } => to_js(cause),
        _ => JsValue::UNDEFINED,
    };
    create_error(
        &error.to_string(),
        error.code(),
        error.kind(),
        error.is_transient(),
        wallet_ids,
        detail(error).map_or(JsValue::UNDEFINED, JsValue::from),
        cause,
    )
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

//! Our errors as JS `Error`s: `name = "WalletPersistError"` plus `code`, `kind`, `retryable`,
//! `walletIds` and `detail`.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::error::Error;

/// The stable numeric error codes (the `code` of every `WalletPersistError`).
#[wasm_bindgen]
#[derive(Debug, Clone, Copy)]
pub enum ErrorCode {
    /// Wrong JS type, malformed id or key, unknown field, number out of range; nothing staged.
    InvalidArgument = 1,
    /// The wallet is being deleted (or does not exist).
    WalletNotFound = 2,
    /// `registerWallet`/`storePending` for a wallet that exists or is pending.
    WalletAlreadyExists = 3,
    /// A flush failed transiently; `walletIds` are staged again. Retryable.
    FlushRetryable = 4,
    /// The origin is out of storage. Retryable.
    QuotaExceeded = 5,
    /// No IndexedDB here (private mode, disabled storage, sandboxed frame).
    StorageUnavailable = 6,
    /// The browser closed the database, or another tab upgraded it (`reopen()`). Retryable.
    ConnectionLost = 7,
    /// An upgrade stayed blocked by another tab for `openTimeoutMs`. Retryable.
    UpgradeBlocked = 8,
    /// Data written by a newer wallet-persist; nothing was written.
    SchemaVersionUnsupported = 9,
    /// A value over the byte limit.
    BlobTooLarge = 10,
    /// A stored value is corrupt.
    BlobDecode = 11,
    /// A value names another wallet than the one it is stored under.
    WalletIdMismatch = 12,
    /// A value's own key differs from the key it is stored under.
    EntryMismatch = 13,
    /// A backup failed validation (the message names the first problem).
    BackupInvalid = 14,
    /// `importBackup` into a database with rows, without `overwrite: true`.
    BackupDestinationNotEmpty = 15,
    /// Another instance is the writer of this database (or a write on a read-only follower).
    AlreadyOpen = 16,
    /// `promote` with nothing pending.
    PendingRegistrationMissing = 17,
    /// Open (or `multiTab: "wait"`) took longer than `openTimeoutMs`. Retryable.
    Timeout = 18,
    /// A coordinator did not stop in time for a delete; nothing was deleted. Retryable.
    ShutdownIncomplete = 19,
    /// The store is closed.
    Closed = 20,
    /// IndexedDB aborted the transaction without a more specific cause. Retryable.
    TransactionAborted = 21,
    /// A bug in wallet-persist; please report it.
    Internal = 99,
}

fn set(target: &JsValue, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a fresh Error or Object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), &value.into());
}

fn detail(error: &Error) -> Option<Object> {
    let detail = Object::new();
    match error {
        Error::FlushRetryable { cause, .. } | Error::FlushFailed { cause, .. } => {
            let c = Object::new();
            set(&c, "code", cause.code());
            set(&c, "kind", cause.kind());
            set(&c, "retryable", cause.is_transient());
            set(&c, "message", cause.to_string());
            set(&detail, "cause", c);
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

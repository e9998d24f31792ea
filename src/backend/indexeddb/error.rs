//! Browser failures at the edge: a `DOMException` (or JS `Error`) raised by IndexedDB, by its
//! name and message, mapped to our error enum. Nothing above this module knows browser names.

use crate::error::Error;

/// Classifies a DOMException (or `Error`) name raised by IndexedDB.
///
/// `UnknownError` and `InvalidStateError` are what Chromium raises after the connection closed
/// under us; WebKit says "Connection to Indexed Database server lost" in the message.
pub fn from_dom_exception(name: &str, message: &str) -> Error {
    let text = format!("{name}: {message}");
    if message.contains("Connection to Indexed Database server lost") {
        return Error::ConnectionLost(text);
    }
    match name {
        "QuotaExceededError" => Error::QuotaExceeded(text),
        "UnknownError" | "InvalidStateError" => Error::ConnectionLost(text),
        "AbortError" | "TransactionInactiveError" => Error::TransactionAborted(text),
        "TimeoutError" => Error::Timeout(text),
        "UpgradeBlockedError" => Error::UpgradeBlocked(text),
        "SecurityError" | "NotAllowedError" | "NotSupportedError" => Error::StorageUnavailable(text),
        "NotReadableError" => Error::BlobDecode(text),
        "VersionError" => Error::SchemaVersionUnsupported { found: 0, supported: crate::codec::SCHEMA_VERSION },
        _ => Error::Internal(text),
    }
}

/// Maps a thrown or rejected JS value (usually a `DOMException`) to our error enum.
#[cfg(target_arch = "wasm32")]
pub fn js_error(value: wasm_bindgen::JsValue) -> Error {
    use wasm_bindgen::JsCast;
    use web_sys::DomException;

    if let Some(dom) = value.dyn_ref::<DomException>() {
        return from_dom_exception(&dom.name(), &dom.message());
    }
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return from_dom_exception(&String::from(error.name()), &String::from(error.message()));
    }
    Error::Internal(format!("{value:?}"))
}

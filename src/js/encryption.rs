//! The JS surface of encryption at rest: the `encryption` open option, `isEncrypted`,
//! `encrypt`, `changePassphrase`, and the secrets of sealed backups. The logic is in
//! `crate::crypto` and `crate::backup::sealed`; this file converts and checks.

use js_sys::Promise;
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::convert::{self, Rejection, Value};
use super::{accept, progress_callback, promise, to_js, StoreBackend, WalletStore};
use crate::backend::indexeddb::IndexedDbBackend;
use crate::backend::EncryptedBackend;
use crate::backup::sealed::{self, BackupKey};
use crate::crypto::unlock::{self, Request};
use crate::crypto::{KdfParams, KeyRecord, Secret};
use crate::error::{Error, Result};
use crate::layout::DB_META;
use crate::wallets::Persister;

/// `{ passphrase }` or `{ key }`, with optional Argon2id costs for a database it creates.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct EncryptionOptions {
    #[serde(default)]
    passphrase: Option<String>,
    #[serde(default)]
    key: Option<serde_bytes::ByteBuf>,
    #[serde(default)]
    kdf: Option<KdfOptions>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KdfOptions {
    memory_kib: u32,
    iterations: u32,
}

impl EncryptionOptions {
    /// The request `unlock` and `encrypt` take; exactly one of `passphrase` and `key`.
    pub(super) fn into_request(self) -> Result<Request> {
        let params = match self.kdf {
            None => KdfParams::DEFAULT,
            Some(kdf) => KdfParams { memory_kib: kdf.memory_kib, iterations: kdf.iterations, parallelism: 1 },
        };
        params.check()?;
        let secret = match (self.passphrase, self.key) {
            (Some(passphrase), None) => Secret::passphrase(passphrase)?,
            (None, Some(key)) => {
                let mut key = key.into_vec();
                let secret = Secret::key(&key);
                zeroize::Zeroize::zeroize(&mut key);
                secret?
            }
            _ => return Err(Error::InvalidArgument("encryption: give exactly one of passphrase and key".into())),
        };
        Ok(Request { secret, params })
    }
}

/// A secret given as a string (a passphrase) or as `{ passphrase }` / `{ key }`, read once
/// through [`convert`].
fn request_from_value(value: Value, what: &str) -> Result<Request, Rejection> {
    match value {
        Value::Text(passphrase) => Ok(Request { secret: Secret::passphrase(passphrase)?, params: KdfParams::DEFAULT }),
        Value::Map(_) => {
            let options: EncryptionOptions =
                convert::from_value(&value).map_err(|r| Rejection::from_refusal(r, what))?;
            Ok(options.into_request()?)
        }
        _ => Err(Error::InvalidArgument(format!("{what} must be a passphrase string or {{ passphrase }} / {{ key }}"))
            .into()),
    }
}

fn read(value: &JsValue, what: &str) -> Result<Value, Rejection> {
    convert::read(value).map_err(|r| Rejection::from_refusal(r, what))
}

/// `encrypt`'s options: the secret, and `onProgress`.
fn encrypt_options(options: &JsValue) -> Result<(Request, Option<js_sys::Function>), Rejection> {
    let mut value = read(options, "options")?;
    if !matches!(value, Value::Map(_)) {
        return Err(Error::InvalidArgument("encrypt takes { passphrase } or { key }".into()).into());
    }
    let on_progress = match value.take("onProgress") {
        None | Some(Value::Undefined) => None,
        Some(Value::Function(f)) => Some(f),
        Some(_) => return Err(Error::InvalidArgument("options.onProgress must be a function".into()).into()),
    };
    Ok((request_from_value(value, "options")?, on_progress))
}

/// The encrypting layer under the persister (under the fault injector, when there is one).
pub(super) fn encrypting_layer(persister: &Persister<StoreBackend>) -> &EncryptedBackend<IndexedDbBackend> {
    #[cfg(feature = "fault-injection")]
    return persister.backend().inner();
    #[cfg(not(feature = "fault-injection"))]
    return persister.backend();
}

/// A backup as exported: sealed with `passphrase` when given, else with the store's key (and its
/// key record, so the store's secret opens it in any database) when the store is encrypted, else
/// plain.
pub(super) async fn seal_backup(
    persister: &Persister<StoreBackend>,
    bytes: Vec<u8>,
    passphrase: Option<String>,
) -> Result<Vec<u8>> {
    let passphrase = passphrase.map(zeroize::Zeroizing::new);
    match (passphrase, encrypting_layer(persister).cipher()) {
        (Some(passphrase), _) => sealed::seal(&bytes, BackupKey::Passphrase(&passphrase, KdfParams::DEFAULT)),
        (None, Some(cipher)) => {
            let record = persister
                .db()
                .get(DB_META, &crate::crypto::record::record_key())
                .await?
                .ok_or_else(|| Error::Internal("an encrypted store without its key record".into()))?;
            let record: KeyRecord = crate::codec::decode(&record, crate::codec::MAX_BLOB_BYTES)?;
            sealed::seal(&bytes, BackupKey::Store(&cipher, &record))
        }
        (None, None) => Ok(bytes),
    }
}

/// The plain backup inside `bytes` (checked against its tag before anything reads it), or
/// `bytes` itself when it is not sealed. `secret` opens a backup sealed with its store's key.
pub(super) fn open_backup(secret: Option<&Secret>, bytes: Vec<u8>, passphrase: Option<String>) -> Result<Vec<u8>> {
    let passphrase = passphrase.map(zeroize::Zeroizing::new);
    sealed::open_import(bytes, passphrase.as_deref().map(String::as_str), secret)
}

#[wasm_bindgen]
impl WalletStore {
    /// `true` when this database is encrypted at rest (opened with `encryption`, or `encrypt`ed).
    #[wasm_bindgen(getter, js_name = isEncrypted)]
    pub fn is_encrypted(&self) -> bool {
        encrypting_layer(&self.inner).is_encrypted()
    }

    /// Turns this plain database into an encrypted one locked by `{ passphrase }` or `{ key }`:
    /// every row is sealed, then all rows and the key record are replaced in ONE transaction, so
    /// a page killed at any point leaves the old plain database or the new encrypted one.
    /// Flush staged changes first. `onProgress({phase: "seal" | "write", done, total})`.
    /// Other tabs must reopen with the key. Resolves `{ rows, unreadable }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<EncryptReport>")]
    pub fn encrypt(&self, #[wasm_bindgen(unchecked_param_type = "EncryptOptions")] options: JsValue) -> Promise {
        accept!(guard);
        let (request, on_progress) = accept!(encrypt_options(&options));
        let inner = self.inner.clone();
        promise(async move {
            let mut progress = progress_callback(on_progress);
            let strict = inner.options().strict_durability;
            let work = unlock::encrypt(inner.db(), encrypting_layer(&inner), &request, strict, &mut progress);
            to_js(&inner.exclusive("encrypting the database", work).await?)
        })
    }

    /// Re-wraps the data key: `old` must unlock the database (else `wrong_key`, 23, nothing
    /// written), then the key record alone is replaced in one transaction. Each side is a
    /// passphrase string or `{ passphrase }` / `{ key }`.
    #[wasm_bindgen(js_name = changePassphrase, unchecked_return_type = "Promise<void>")]
    pub fn change_passphrase(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | EncryptionSecret")] old: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | EncryptionSecret")] new: JsValue,
    ) -> Promise {
        accept!(guard);
        let old = accept!(read(&old, "old").and_then(|old| request_from_value(old, "old")));
        let new = accept!(read(&new, "new").and_then(|new| request_from_value(new, "new")));
        let inner = self.inner.clone();
        promise(async move {
            inner.db().check_writable()?;
            let record = unlock::change_secret(inner.db(), &old.secret, &new, true).await?;
            encrypting_layer(&inner).set_record(Some(record), true);
            Ok(JsValue::UNDEFINED)
        })
    }
}

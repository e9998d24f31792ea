//! The JS surface of encryption at rest: the `encryption` open option, `isEncrypted`,
//! `encrypt`, `changePassphrase`, and the secrets of sealed backups. The logic is in
//! `crate::crypto` and `crate::backup::sealed`; this file converts and checks.

use js_sys::{Promise, Reflect};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::{from_js, progress_callback, promise, to_js, StoreBackend, WalletStore};
use crate::backend::indexeddb::IndexedDbBackend;
use crate::backend::EncryptedBackend;
use crate::backup::sealed::{self, BackupKey};
use crate::crypto::unlock::{self, Request};
use crate::crypto::{KdfParams, Secret};
use crate::error::{Error, Result};
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

/// A secret given as a string (a passphrase) or as `{ passphrase }` / `{ key }`.
fn request_from_js(value: JsValue, what: &str) -> Result<Request> {
    match value.as_string() {
        Some(passphrase) => Ok(Request { secret: Secret::passphrase(passphrase)?, params: KdfParams::DEFAULT }),
        None if value.is_object() => from_js::<EncryptionOptions>(value, what)?.into_request(),
        None => {
            Err(Error::InvalidArgument(format!("{what} must be a passphrase string or {{ passphrase }} / {{ key }}")))
        }
    }
}

/// The encrypting layer under the persister (under the fault injector, when there is one).
pub(super) fn encrypting_layer(persister: &Persister<StoreBackend>) -> &EncryptedBackend<IndexedDbBackend> {
    #[cfg(feature = "fault-injection")]
    return persister.backend().inner();
    #[cfg(not(feature = "fault-injection"))]
    return persister.backend();
}

/// The `backupPassphrase` of export and import options, if any.
pub(super) fn backup_passphrase(options: &JsValue) -> Result<Option<String>> {
    if !options.is_object() {
        return Ok(None);
    }
    match Reflect::get(options, &"backupPassphrase".into()) {
        Ok(value) if value.is_undefined() => Ok(None),
        Ok(value) => match value.as_string() {
            Some(p) if !p.is_empty() => Ok(Some(p)),
            _ => Err(Error::InvalidArgument("backupPassphrase must be a non-empty string".into())),
        },
        Err(_) => Ok(None),
    }
}

/// The `encryption` of import options, for opening an encrypted destination.
pub(super) fn import_encryption(options: &JsValue) -> JsValue {
    if options.is_object() {
        Reflect::get(options, &"encryption".into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// A backup as exported: sealed with `passphrase` when given, else with the store's key when
/// the store is encrypted, else plain.
pub(super) fn seal_backup(
    persister: &Persister<StoreBackend>,
    bytes: Vec<u8>,
    passphrase: Option<String>,
) -> Result<Vec<u8>> {
    let passphrase = passphrase.map(zeroize::Zeroizing::new);
    match (passphrase, encrypting_layer(persister).cipher()) {
        (Some(passphrase), _) => sealed::seal(&bytes, BackupKey::Passphrase(&passphrase, KdfParams::DEFAULT)),
        (None, Some(cipher)) => sealed::seal(&bytes, BackupKey::Store(&cipher)),
        (None, None) => Ok(bytes),
    }
}

/// The plain backup inside `bytes` (checked against its tag before anything reads it), or
/// `bytes` itself when it is not sealed.
pub(super) fn open_backup(
    persister: &Persister<StoreBackend>,
    bytes: Vec<u8>,
    passphrase: Option<String>,
) -> Result<Vec<u8>> {
    if !sealed::is_sealed(&bytes) {
        return Ok(bytes);
    }
    let passphrase = passphrase.map(zeroize::Zeroizing::new);
    sealed::open(&bytes, passphrase.as_deref().map(String::as_str), encrypting_layer(persister).cipher().as_deref())
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
        let progress = progress_callback(&options);
        let request = if options.is_object() {
            let copy = js_sys::Object::assign(&js_sys::Object::new(), options.unchecked_ref());
            let _ = Reflect::delete_property(&copy, &"onProgress".into());
            request_from_js(copy.into(), "encrypt options")
        } else {
            Err(Error::InvalidArgument("encrypt takes { passphrase } or { key }".into()))
        };
        let inner = self.inner.clone();
        promise(async move {
            let (request, mut progress) = (request?, progress?);
            let strict = inner.options().strict_durability;
            let work = unlock::encrypt(encrypting_layer(&inner), &request, strict, &mut progress);
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
        let requests = request_from_js(old, "old").and_then(|old| Ok((old, request_from_js(new, "new")?)));
        let inner = self.inner.clone();
        promise(async move {
            let (old, new) = requests?;
            inner.db().check_writable()?;
            unlock::change_secret(encrypting_layer(&inner), &old.secret, &new, true).await?;
            Ok(JsValue::UNDEFINED)
        })
    }
}

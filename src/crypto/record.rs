//! The key record in `db_meta` (key `["encryption"]`, a plain envelope): how the wrapping key is
//! derived (Argon2id parameters and salt, or the salt for an app key), the data key sealed under
//! it, and a key-check value. Unlocking needs only this row, so a wrong secret is refused before
//! anything else is read or written.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::ops::{self, KdfParams, SecretKey, KEY_LEN, SALT_LEN};
use crate::backend::{Backend, WriteOp};
use crate::codec::{self, MAX_BLOB_BYTES};
use crate::error::{Error, Result};
use crate::layout::DB_META;
use crate::model::{Key, KeyPart};

/// What unlocks a database: a passphrase (stretched with Argon2id) or 32 bytes the app keeps.
pub enum Secret {
    /// A passphrase typed by the user; never stored.
    Passphrase(Zeroizing<String>),
    /// A key the app derives from its own secret.
    Key(SecretKey),
}

impl Secret {
    /// A passphrase; the empty one is refused.
    pub fn passphrase(passphrase: String) -> Result<Secret> {
        let passphrase = Zeroizing::new(passphrase);
        if passphrase.is_empty() {
            return Err(Error::InvalidArgument("encryption: the passphrase must not be empty".into()));
        }
        Ok(Secret::Passphrase(passphrase))
    }

    /// An app key: exactly 32 bytes.
    pub fn key(bytes: &[u8]) -> Result<Secret> {
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::InvalidArgument(format!("encryption: key must be 32 bytes, got {}", bytes.len())))?;
        Ok(Secret::Key(Zeroizing::new(key)))
    }
}

/// How the wrapping key is derived from the [`Secret`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Wrapping {
    /// Argon2id(passphrase, salt, params).
    Passphrase {
        /// The cost parameters used.
        params: KdfParams,
        /// A random salt.
        #[serde(with = "serde_bytes")]
        salt: Vec<u8>,
    },
    /// HMAC-SHA-256(app key, label | salt).
    AppKey {
        /// A random salt.
        #[serde(with = "serde_bytes")]
        salt: Vec<u8>,
    },
}

/// The row that locks a database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// How the wrapping key is derived.
    pub wrapping: Wrapping,
    /// The data key sealed under the wrapping key (`nonce | ciphertext | tag`), bound to `wrapping`.
    #[serde(with = "serde_bytes")]
    pub wrapped: Vec<u8>,
    /// HMAC of a fixed label under the data key: proves the unwrapped key is the one the rows use.
    #[serde(with = "serde_bytes")]
    pub check: Vec<u8>,
}

/// The key of the key record in `db_meta`.
pub fn record_key() -> Key {
    vec![KeyPart::Text("encryption".into())]
}

fn wrong_key(what: &str) -> Error {
    Error::WrongKey(format!("{what} does not unlock this database"))
}

impl Wrapping {
    fn fresh(secret: &Secret, params: KdfParams) -> Result<Wrapping> {
        let salt = ops::random::<SALT_LEN>()?.to_vec();
        Ok(match secret {
            Secret::Passphrase(_) => {
                params.check()?;
                Wrapping::Passphrase { params, salt }
            }
            Secret::Key(_) => Wrapping::AppKey { salt },
        })
    }

    fn key(&self, secret: &Secret) -> Result<SecretKey> {
        match (self, secret) {
            (Wrapping::Passphrase { params, salt }, Secret::Passphrase(passphrase)) => {
                ops::argon2id(passphrase.as_bytes(), salt, params)
            }
            (Wrapping::AppKey { salt }, Secret::Key(key)) => {
                Ok(Zeroizing::new(ops::hmac(key.as_ref(), &[b"wallet-persist/app-key/", salt])))
            }
            (Wrapping::Passphrase { .. }, Secret::Key(_)) => {
                Err(Error::WrongKey("this database is locked by a passphrase, not by a key".into()))
            }
            (Wrapping::AppKey { .. }, Secret::Passphrase(_)) => {
                Err(Error::WrongKey("this database is locked by a key, not by a passphrase".into()))
            }
        }
    }

    fn associated_data(&self) -> Result<Vec<u8>> {
        codec::encode(self, MAX_BLOB_BYTES)
    }
}

fn check_value(data_key: &SecretKey) -> Vec<u8> {
    ops::derive(data_key, "key-check").to_vec()
}

impl KeyRecord {
    /// A new random data key locked by `secret`.
    pub fn create(secret: &Secret, params: KdfParams) -> Result<(KeyRecord, SecretKey)> {
        let data_key = ops::random_key()?;
        let record = Self::wrap(&data_key, secret, params)?;
        Ok((record, data_key))
    }

    /// `data_key` locked by `secret` under a fresh salt.
    pub fn wrap(data_key: &SecretKey, secret: &Secret, params: KdfParams) -> Result<KeyRecord> {
        let wrapping = Wrapping::fresh(secret, params)?;
        let wrapping_key = wrapping.key(secret)?;
        let ad = wrapping.associated_data()?;
        let wrapped = ops::seal(&wrapping_key, &[b"wallet-persist/data-key/", &ad], data_key.as_ref())?;
        Ok(KeyRecord { wrapping, wrapped, check: check_value(data_key) })
    }

    /// The data key, or `WrongKey` when `secret` is not the one that locked it.
    pub fn unlock(&self, secret: &Secret) -> Result<SecretKey> {
        let what = match secret {
            Secret::Passphrase(_) => "the passphrase",
            Secret::Key(_) => "the key",
        };
        let wrapping_key = self.wrapping.key(secret)?;
        let ad = self.wrapping.associated_data()?;
        let plain = ops::open(&wrapping_key, &[b"wallet-persist/data-key/", &ad], &self.wrapped)
            .map(Zeroizing::new)
            .ok_or_else(|| wrong_key(what))?;
        let data_key: SecretKey = Zeroizing::new(
            plain.as_slice().try_into().map_err(|_| Error::BlobDecode("key record: data key size".into()))?,
        );
        if check_value(&data_key) != self.check {
            return Err(wrong_key(what));
        }
        Ok(data_key)
    }

    /// The write that stores this record.
    pub fn op(&self) -> Result<WriteOp> {
        Ok(WriteOp::Put { store: DB_META, key: record_key(), value: codec::encode(self, MAX_BLOB_BYTES)? })
    }

    /// The record of the database behind `backend`, if it is encrypted.
    pub async fn read<B: Backend>(backend: &B) -> Result<Option<KeyRecord>> {
        Self::decode(backend.get(DB_META, &record_key()).await?)
    }

    /// The record stored as `bytes` (the `db_meta` row under [`record_key`], if any).
    pub fn decode(bytes: Option<Vec<u8>>) -> Result<Option<KeyRecord>> {
        let Some(bytes) = bytes else { return Ok(None) };
        codec::decode(&bytes, MAX_BLOB_BYTES)
            .map(Some)
            .map_err(|e| Error::BlobDecode(format!("the key record in db_meta is unreadable: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn the_right_secret_unlocks_and_every_other_is_wrong_key() {
        let secret = Secret::passphrase("correct horse".into()).unwrap();
        let (record, data_key) = KeyRecord::create(&secret, FAST).unwrap();
        assert_eq!(*record.unlock(&secret).unwrap(), *data_key);
        let wrong = Secret::passphrase("correct horsf".into()).unwrap();
        assert_eq!(record.unlock(&wrong).unwrap_err().code(), 23);
        assert_eq!(record.unlock(&Secret::key(&[7; 32]).unwrap()).unwrap_err().code(), 23);

        let key = Secret::key(&[9; 32]).unwrap();
        let (record, data_key) = KeyRecord::create(&key, FAST).unwrap();
        assert_eq!(*record.unlock(&key).unwrap(), *data_key);
        assert_eq!(record.unlock(&Secret::key(&[8; 32]).unwrap()).unwrap_err().code(), 23);
    }

    #[test]
    fn weakened_parameters_do_not_unlock() {
        let secret = Secret::passphrase("pw".into()).unwrap();
        let (mut record, _) = KeyRecord::create(&secret, FAST).unwrap();
        if let Wrapping::Passphrase { params, .. } = &mut record.wrapping {
            params.memory_kib = 32;
        }
        assert_eq!(record.unlock(&secret).unwrap_err().code(), 23);
    }

    #[test]
    fn bad_secrets_are_invalid_arguments() {
        assert_eq!(Secret::passphrase(String::new()).err().unwrap().code(), 1);
        assert_eq!(Secret::key(&[1; 31]).err().unwrap().code(), 1);
    }
}

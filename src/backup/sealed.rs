//! Sealed backups: a whole backup file ([`super::format`]) sealed with XChaCha20-Poly1305, so a
//! backup of an encrypted store reveals nothing and any edit is caught before a byte is parsed:
//!
//! ```text
//! "WPBE" | version u8 | key source u8 (0: the store's backup key, 1: a backup passphrase)
//! | store key only: key record length u32, the store's key record (its data key, wrapped)
//! | passphrase only: memory KiB u32, iterations u32, parallelism u32, salt (16)
//! | nonce (24) | ciphertext | tag (16)          associated data: every byte before the nonce
//! ```
//!
//! A store-key backup carries the store's key record, so the secret that locked the store when
//! the backup was made opens it anywhere, a new database included (the data key never leaves
//! the record unwrapped).

use crate::codec::{self, MAX_BLOB_BYTES};
use crate::crypto::ops::{self, KdfParams, SecretKey, NONCE_LEN, SALT_LEN, TAG_LEN};
use crate::crypto::record::Wrapping;
use crate::crypto::{Cipher, KeyRecord, Secret};
use crate::error::{Error, Result};

/// The first four bytes of a sealed backup.
pub const SEALED_MAGIC: [u8; 4] = *b"WPBE";
const VERSION: u8 = 1;
const STORE_KEY: u8 = 0;
const PASSPHRASE: u8 = 1;

/// What a backup is sealed with.
pub enum BackupKey<'a> {
    /// The backup sub-key of the store's data key, with the store's key record (the data key
    /// wrapped by the store's secret): that secret opens the backup.
    Store(&'a Cipher, &'a KeyRecord),
    /// A passphrase of its own (Argon2id with these parameters and a fresh salt).
    Passphrase(&'a str, KdfParams),
}

/// Whether `bytes` is a sealed backup (as opposed to a plain one).
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes[..4] == SEALED_MAGIC
}

fn passphrase_key(passphrase: &str, salt: &[u8], params: &KdfParams) -> Result<SecretKey> {
    let stretched = ops::argon2id(passphrase.as_bytes(), salt, params)?;
    Ok(ops::derive(&stretched, "backup"))
}

/// `plain` (a backup file) sealed under `key`.
pub fn seal(plain: &[u8], key: BackupKey<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 + plain.len() + TAG_LEN);
    out.extend_from_slice(&SEALED_MAGIC);
    out.push(VERSION);
    let derived;
    let key: &[u8; 32] = match key {
        BackupKey::Store(cipher, record) => {
            out.push(STORE_KEY);
            let record = codec::encode(record, MAX_BLOB_BYTES)?;
            out.extend_from_slice(&u32::try_from(record.len()).expect("a key record is small").to_le_bytes());
            out.extend_from_slice(&record);
            cipher.backup_key()
        }
        BackupKey::Passphrase(passphrase, params) => {
            out.push(PASSPHRASE);
            let salt = ops::random::<SALT_LEN>()?;
            for n in [params.memory_kib, params.iterations, params.parallelism] {
                out.extend_from_slice(&n.to_le_bytes());
            }
            out.extend_from_slice(&salt);
            derived = passphrase_key(passphrase, &salt, &params)?;
            &derived
        }
    };
    let header = out.clone();
    out.extend_from_slice(&[0; NONCE_LEN]);
    out.extend_from_slice(plain);
    ops::seal_in_place(key, &[&header], &mut out, header.len() + NONCE_LEN)?;
    Ok(out)
}

fn invalid(message: &str) -> Error {
    Error::BackupInvalid(format!("sealed backup: {message}"))
}

/// Key derivation parameters read from a file are bounded, so an edited file cannot make an
/// import run for minutes (an edit within the bounds fails authentication).
fn check_bounds(params: &KdfParams) -> Result<()> {
    let max = KdfParams::DEFAULT;
    if params.check().is_err() || params.memory_kib > 4 * max.memory_kib || params.iterations > 4 * max.iterations {
        return Err(invalid("key derivation parameters out of bounds"));
    }
    Ok(())
}

/// The plain backup inside a sealed one, after its tag verified (nothing is parsed before).
/// A store-key backup opens with `secret`, the secret of the store it was exported from;
/// a passphrase backup with `passphrase`. `BackupInvalid` (14) for a truncated or edited file or a
/// wrong passphrase or key; `InvalidArgument` when the secret it needs was not given.
pub fn open(bytes: &[u8], passphrase: Option<&str>, secret: Option<&Secret>) -> Result<Vec<u8>> {
    if !is_sealed(bytes) || bytes.len() < 6 {
        return Err(invalid("wrong magic or truncated header"));
    }
    if bytes[4] != VERSION {
        return Err(invalid(&format!("unknown version {}", bytes[4])));
    }
    let n = |at: usize| -> Result<u32> {
        let field = bytes.get(at..at + 4).ok_or_else(|| invalid("truncated header"))?;
        Ok(u32::from_le_bytes(field.try_into().expect("4 bytes")))
    };
    let wrong_secret = || invalid("authentication failed (a wrong passphrase or key, or the file was edited)");
    let derived: SecretKey;
    let header_len = match bytes[5] {
        STORE_KEY => {
            let secret = secret.ok_or_else(|| {
                Error::InvalidArgument(
                    "this backup is sealed with its store's key: pass `encryption` with the passphrase or key that \
                     store had when the backup was made"
                        .into(),
                )
            })?;
            let record_len = n(6)? as usize;
            let header_len = 10usize.checked_add(record_len).filter(|&len| len <= bytes.len());
            let header_len = header_len.ok_or_else(|| invalid("truncated header"))?;
            let record: KeyRecord =
                codec::decode(&bytes[10..header_len], MAX_BLOB_BYTES).map_err(|_| wrong_secret())?;
            if let Wrapping::Passphrase { params, .. } = &record.wrapping {
                check_bounds(params)?;
            }
            let data_key = record.unlock(secret).map_err(|_| wrong_secret())?;
            derived = Cipher::new(&data_key).backup_key().clone();
            header_len
        }
        PASSPHRASE => {
            let passphrase = passphrase.ok_or_else(|| {
                Error::InvalidArgument("this backup is sealed with a passphrase: pass backupPassphrase".into())
            })?;
            let header_len = 6 + 12 + SALT_LEN;
            if bytes.len() < header_len {
                return Err(invalid("truncated header"));
            }
            let params = KdfParams { memory_kib: n(6)?, iterations: n(10)?, parallelism: n(14)? };
            check_bounds(&params)?;
            derived = passphrase_key(passphrase, &bytes[18..header_len], &params)?;
            header_len
        }
        other => return Err(invalid(&format!("unknown key source {other}"))),
    };
    let (header, sealed) = bytes.split_at(header_len);
    ops::open(&derived, &[header], sealed).ok_or_else(wrong_secret)
}

/// The plain backup an import reads from `bytes`: opened by [`open`] when sealed (checked
/// against its tag before anything reads it), else `bytes` itself. A backup passphrase says the
/// backup is sealed with it, so a plain one is refused (`BackupInvalid`): anyone can write a plain
/// backup, and one put in place of a sealed file must not be imported as if it were that file.
pub fn open_import(bytes: Vec<u8>, passphrase: Option<&str>, secret: Option<&Secret>) -> Result<Vec<u8>> {
    if !is_sealed(&bytes) {
        if passphrase.is_some() {
            return Err(invalid("a backupPassphrase was given, but this backup is not sealed"));
        }
        return Ok(bytes);
    }
    open(&bytes, passphrase, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn sealed_backups_open_only_with_their_secret_and_unedited() {
        // An app key locks the store here (no Argon2 cost for the edits below).
        let secret = Secret::key(&[7; 32]).unwrap();
        let (record, data_key) = KeyRecord::create(&secret, FAST).unwrap();
        let cipher = Cipher::new(&data_key);
        let other = Secret::key(&[8; 32]).unwrap();
        let plain = b"WPBK plain backup bytes".to_vec();
        let by_store = seal(&plain, BackupKey::Store(&cipher, &record)).unwrap();
        assert_eq!(open(&by_store, None, Some(&secret)).unwrap(), plain);
        assert_eq!(open(&by_store, None, Some(&other)).unwrap_err().code(), 14);
        assert_eq!(open(&by_store, None, Some(&Secret::passphrase("pw".into()).unwrap())).unwrap_err().code(), 14);
        assert_eq!(open(&by_store, None, None).unwrap_err().code(), 1);
        let by_pass = seal(&plain, BackupKey::Passphrase("backup pw", FAST)).unwrap();
        assert_eq!(open(&by_pass, Some("backup pw"), None).unwrap(), plain);
        assert_eq!(open(&by_pass, Some("backup px"), None).unwrap_err().code(), 14);
        assert_eq!(open(&by_pass, None, Some(&secret)).unwrap_err().code(), 1);
        let mut huge = by_pass.clone();
        huge[13] = 0x10; // iterations 2^24
        assert_eq!(open(&huge, Some("backup pw"), None).unwrap_err().code(), 14);
        for sealed in [&by_store, &by_pass] {
            for i in 0..sealed.len() {
                if sealed == &by_pass && (6..18).contains(&i) {
                    continue; // the KDF costs: edited, they cost up to 16x the default to refuse
                }
                let mut edited = sealed.clone();
                edited[i] ^= 0x10;
                let error = open(&edited, Some("backup pw"), Some(&secret)).unwrap_err();
                assert!(error.code() == 14, "byte {i}: {error}");
            }
            for len in (0..sealed.len()).filter(|len| !(6..18).contains(len)) {
                assert!(open(&sealed[..len], Some("backup pw"), Some(&secret)).is_err(), "truncated to {len}");
            }
        }
    }

    /// A backup imported with a backup passphrase must be sealed: a plain backup put in its place
    /// (an attacker who can replace the file cannot seal one, but can write a plain one with rows
    /// of their choosing) is refused (14), not imported. Without a backup passphrase a plain
    /// backup is still taken as it is, and a sealed one still opens.
    #[test]
    fn a_plain_backup_in_place_of_a_passphrase_sealed_one_is_refused() {
        let plain = b"WPBK plain backup bytes".to_vec();
        let refused = open_import(plain.clone(), Some("backup pw"), None).unwrap_err();
        assert_eq!(refused.code(), 14, "{refused}");
        assert_eq!(open_import(plain.clone(), None, None).unwrap(), plain);
        let secret = Secret::key(&[7; 32]).unwrap();
        assert_eq!(open_import(plain.clone(), None, Some(&secret)).unwrap(), plain);
        let by_pass = seal(&plain, BackupKey::Passphrase("backup pw", FAST)).unwrap();
        assert_eq!(open_import(by_pass, Some("backup pw"), None).unwrap(), plain);
    }

    /// A store locked by a passphrase: its backup opens with that passphrase, in any database.
    #[test]
    fn a_store_key_backup_opens_with_the_store_passphrase() {
        let secret = Secret::passphrase("store pw".into()).unwrap();
        let (record, data_key) = KeyRecord::create(&secret, FAST).unwrap();
        let sealed = seal(b"rows", BackupKey::Store(&Cipher::new(&data_key), &record)).unwrap();
        assert_eq!(open(&sealed, None, Some(&secret)).unwrap(), b"rows");
        let wrong = Secret::passphrase("store px".into()).unwrap();
        assert_eq!(open(&sealed, None, Some(&wrong)).unwrap_err().code(), 14);
    }
}

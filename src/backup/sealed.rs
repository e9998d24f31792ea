//! Sealed backups: a whole backup file ([`super::format`]) sealed with XChaCha20-Poly1305, so a
//! backup of an encrypted store reveals nothing and any edit is caught before a byte is parsed:
//!
//! ```text
//! "WPBE" | version u8 | key source u8 (0: the store's backup key, 1: a backup passphrase)
//! | passphrase only: memory KiB u32, iterations u32, parallelism u32, salt (16)
//! | nonce (24) | ciphertext | tag (16)          associated data: every byte before the nonce
//! ```

use crate::crypto::ops::{self, KdfParams, SecretKey, NONCE_LEN, SALT_LEN, TAG_LEN};
use crate::crypto::Cipher;
use crate::error::{Error, Result};

/// The first four bytes of a sealed backup.
pub const SEALED_MAGIC: [u8; 4] = *b"WPBE";
const VERSION: u8 = 1;
const STORE_KEY: u8 = 0;
const PASSPHRASE: u8 = 1;

/// What a backup is sealed with.
pub enum BackupKey<'a> {
    /// The backup sub-key of the store's data key: only a store with the same data key opens it.
    Store(&'a Cipher),
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
        BackupKey::Store(cipher) => {
            out.push(STORE_KEY);
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

/// Whether `bytes` is a backup sealed with its store's own key (it opens only with that store open).
pub fn needs_store_key(bytes: &[u8]) -> bool {
    is_sealed(bytes) && bytes.len() >= 6 && bytes[5] == STORE_KEY
}

/// The plain backup inside a sealed one, after its tag verified (nothing is parsed before).
/// `BackupInvalid` (14) for a truncated or edited file or a wrong passphrase or key;
/// `InvalidArgument` when the secret it needs was not given.
pub fn open(bytes: &[u8], passphrase: Option<&str>, store: Option<&Cipher>) -> Result<Vec<u8>> {
    if !is_sealed(bytes) || bytes.len() < 6 {
        return Err(invalid("wrong magic or truncated header"));
    }
    if bytes[4] != VERSION {
        return Err(invalid(&format!("unknown version {}", bytes[4])));
    }
    let derived;
    let (key, header_len): (&[u8; 32], usize) = match bytes[5] {
        STORE_KEY => {
            let cipher = store.ok_or_else(|| {
                Error::InvalidArgument(
                    "this backup is sealed with its store's key: import it into that store, opened with its \
                     passphrase or key"
                        .into(),
                )
            })?;
            (cipher.backup_key(), 6)
        }
        PASSPHRASE => {
            let passphrase = passphrase.ok_or_else(|| {
                Error::InvalidArgument("this backup is sealed with a passphrase: pass backupPassphrase".into())
            })?;
            let header_len = 6 + 12 + SALT_LEN;
            if bytes.len() < header_len {
                return Err(invalid("truncated header"));
            }
            let n = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
            let params = KdfParams { memory_kib: n(6), iterations: n(10), parallelism: n(14) };
            // The parameters come from the file: bounded, so an edited file cannot make the
            // import run for minutes (an edit within the bounds fails authentication).
            let max = KdfParams::DEFAULT;
            if params.check().is_err()
                || params.memory_kib > 4 * max.memory_kib
                || params.iterations > 4 * max.iterations
            {
                return Err(invalid("key derivation parameters out of bounds"));
            }
            derived = passphrase_key(passphrase, &bytes[18..header_len], &params)?;
            (&derived, header_len)
        }
        other => return Err(invalid(&format!("unknown key source {other}"))),
    };
    let (header, sealed) = bytes.split_at(header_len);
    ops::open(key, &[header], sealed)
        .ok_or_else(|| invalid("authentication failed (a wrong passphrase or key, or the file was edited)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn sealed_backups_open_only_with_their_secret_and_unedited() {
        let cipher = Cipher::new(&ops::random_key().unwrap());
        let other = Cipher::new(&ops::random_key().unwrap());
        let plain = b"WPBK plain backup bytes".to_vec();
        let by_store = seal(&plain, BackupKey::Store(&cipher)).unwrap();
        assert_eq!(open(&by_store, None, Some(&cipher)).unwrap(), plain);
        assert_eq!(open(&by_store, None, Some(&other)).unwrap_err().code(), 14);
        assert_eq!(open(&by_store, None, None).unwrap_err().code(), 1);
        let by_pass = seal(&plain, BackupKey::Passphrase("backup pw", FAST)).unwrap();
        assert_eq!(open(&by_pass, Some("backup pw"), None).unwrap(), plain);
        assert_eq!(open(&by_pass, Some("backup px"), None).unwrap_err().code(), 14);
        assert_eq!(open(&by_pass, None, Some(&cipher)).unwrap_err().code(), 1);
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
                let error = open(&edited, Some("backup pw"), Some(&cipher)).unwrap_err();
                assert!(error.code() == 14, "byte {i}: {error}");
            }
            for len in (0..sealed.len()).filter(|len| !(6..18).contains(len)) {
                assert!(open(&sealed[..len], Some("backup pw"), Some(&cipher)).is_err(), "truncated to {len}");
            }
        }
    }
}

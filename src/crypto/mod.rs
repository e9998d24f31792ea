//! Encryption at rest: the key hierarchy.
//!
//! A random 32-byte **data key** is made once per database and never leaves memory unsealed. It
//! is stored wrapped (sealed) under a **wrapping key** derived from the user's passphrase with
//! Argon2id, or from a 32-byte key the app keeps ([`record`]). Changing the passphrase re-wraps
//! only the data key. From the data key come labelled sub-keys ([`Cipher`]): one seals values,
//! one hashes key parts, one seals backups. Every key is wiped from memory when dropped.

pub mod ops;
pub mod record;
pub mod unlock;

pub use ops::{KdfParams, SecretKey};
pub use record::{KeyRecord, Secret};

/// The sub-keys of one data key. Dropping it wipes them.
pub struct Cipher {
    seal: SecretKey,
    hash: SecretKey,
    backup: SecretKey,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

impl Cipher {
    /// The sub-keys of `data_key`.
    pub fn new(data_key: &SecretKey) -> Cipher {
        Cipher {
            seal: ops::derive(data_key, "seal-values"),
            hash: ops::derive(data_key, "hash-keys"),
            backup: ops::derive(data_key, "seal-backups"),
        }
    }

    /// The key values are sealed with.
    pub fn seal_key(&self) -> &[u8; ops::KEY_LEN] {
        &self.seal
    }

    /// The key backups are sealed with when no backup passphrase is given.
    pub fn backup_key(&self) -> &SecretKey {
        &self.backup
    }

    /// The stored spelling of a key part that names something: the first 16 bytes of
    /// HMAC-SHA-256 under the hash key, in hex. Equal names hash equally, so key ranges over a
    /// wallet or a channel still work; nothing of the name can be read back.
    pub fn hash_text(&self, text: &str) -> String {
        let mac = ops::hmac(self.hash.as_ref(), &[text.as_bytes()]);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(ops::HASH_LEN * 2);
        for byte in &mac[..ops::HASH_LEN] {
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 15)] as char);
        }
        out
    }
}

//! The primitives, each one call into a RustCrypto crate: randomness, the memory-hard KDF
//! (Argon2id), labelled sub-keys (HMAC-SHA-256), the keyed hash of key parts, and sealing with
//! XChaCha20-Poly1305. Every secret lives in a [`SecretKey`], wiped when dropped.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Bytes of every key (data key, wrapping key, sub-keys, an app's own key).
pub const KEY_LEN: usize = 32;
/// Bytes of an XChaCha20 nonce: random nonces never repeat in practice at this size.
pub const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Bytes of a keyed hash of a key part as stored (of SHA-256's 32): 128 bits, collision-free in
/// practice for any number of rows a browser holds.
pub const HASH_LEN: usize = 16;
/// Bytes of an Argon2id salt.
pub const SALT_LEN: usize = 16;

/// A 32-byte secret, zeroed when dropped.
pub type SecretKey = Zeroizing<[u8; KEY_LEN]>;

type HmacSha256 = Hmac<Sha256>;

/// `N` bytes from the operating system (`crypto.getRandomValues` in the browser).
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(out)
}

/// A fresh random key.
pub fn random_key() -> Result<SecretKey> {
    random::<KEY_LEN>().map(Zeroizing::new)
}

/// HMAC-SHA-256 of `parts` (concatenated) under `key`.
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The sub-key of `key` for one purpose: HMAC-SHA-256(key, label). Labels never repeat, so one
/// sub-key reveals nothing of another or of `key`.
pub fn derive(key: &[u8; KEY_LEN], label: &str) -> SecretKey {
    Zeroizing::new(hmac(key, &[b"wallet-persist/", label.as_bytes()]))
}

/// Argon2id cost parameters, stored with the salt so a database keeps opening after the
/// defaults change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes (1: the browser runs one thread).
    pub parallelism: u32,
}

impl KdfParams {
    /// The defaults, measured in Chromium on the project's 2-core machine (see the README's
    /// "Encryption at rest"): about 0.6 s to unlock.
    pub const DEFAULT: KdfParams = KdfParams { memory_kib: 64 * 1024, iterations: 10, parallelism: 1 };

    /// Refuses parameters Argon2 refuses, and ones too weak to mean anything.
    pub fn check(&self) -> Result<()> {
        if self.memory_kib < 8 || self.iterations < 1 || self.parallelism != 1 || self.memory_kib > 4 * 1024 * 1024 {
            return Err(Error::InvalidArgument(format!(
                "kdf: memoryKib must be 8..=4194304, iterations >= 1 and parallelism 1 (got {self:?})"
            )));
        }
        Ok(())
    }
}

/// The key Argon2id derives from `passphrase` and `salt`.
pub fn argon2id(passphrase: &[u8], salt: &[u8], params: &KdfParams) -> Result<SecretKey> {
    params.check()?;
    let params = argon2::Params::new(params.memory_kib, params.iterations, params.parallelism, Some(KEY_LEN))
        .map_err(|e| Error::InvalidArgument(format!("kdf: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon.hash_password_into(passphrase, salt, out.as_mut()).map_err(|e| Error::Internal(format!("argon2id: {e}")))?;
    Ok(out)
}

/// Seals `buf[start..]` in place under `key`: writes a random nonce at `buf[start - NONCE_LEN..start]`
/// (the caller reserves it) and appends the tag. `ad` is authenticated, not stored.
pub fn seal_in_place(key: &[u8; KEY_LEN], ad: &[&[u8]], buf: &mut Vec<u8>, start: usize) -> Result<()> {
    let nonce = random::<NONCE_LEN>()?;
    buf[start - NONCE_LEN..start].copy_from_slice(&nonce);
    let ad = ad.concat();
    let cipher = XChaCha20Poly1305::new(key.into());
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &ad, &mut buf[start..])
        .map_err(|_| Error::Internal("seal failed".into()))?;
    buf.extend_from_slice(&tag);
    Ok(())
}

/// Opens `nonce | ciphertext | tag` under `key` with associated data `ad`; `None` when the tag does
/// not verify (another key, another `ad`, or any edited byte).
pub fn open(key: &[u8; KEY_LEN], ad: &[&[u8]], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut plain = body.to_vec();
    let ad = ad.concat();
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher.decrypt_in_place_detached(XNonce::from_slice(nonce), &ad, &mut plain, Tag::from_slice(tag)).ok()?;
    Some(plain)
}

/// Seals a short secret (a data key): `nonce | ciphertext | tag`.
pub fn seal(key: &[u8; KEY_LEN], ad: &[&[u8]], plain: &[u8]) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
    buf.extend_from_slice(&[0; NONCE_LEN]);
    buf.extend_from_slice(plain);
    seal_in_place(key, ad, &mut buf, NONCE_LEN)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_refuses_every_edit_and_other_associated_data() {
        let key = random_key().unwrap();
        let sealed = seal(&key, &[b"store", b"key"], b"secret value").unwrap();
        assert_eq!(open(&key, &[b"store", b"key"], &sealed).as_deref(), Some(&b"secret value"[..]));
        assert_eq!(open(&key, &[b"store", b"kez"], &sealed), None);
        let other = random_key().unwrap();
        assert_eq!(open(&other, &[b"store", b"key"], &sealed), None);
        for i in 0..sealed.len() * 8 {
            let mut edited = sealed.clone();
            edited[i / 8] ^= 1 << (i % 8);
            assert_eq!(open(&key, &[b"store", b"key"], &edited), None, "bit {i}");
        }
        assert_eq!(open(&key, &[b"store", b"key"], &sealed[..sealed.len() - 1]), None);
    }

    #[test]
    fn argon2id_is_deterministic_and_salted() {
        let params = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };
        let a = argon2id(b"pass", &[1; SALT_LEN], &params).unwrap();
        assert_eq!(*a, *argon2id(b"pass", &[1; SALT_LEN], &params).unwrap());
        assert_ne!(*a, *argon2id(b"pass", &[2; SALT_LEN], &params).unwrap());
        assert_ne!(*a, *argon2id(b"pasz", &[1; SALT_LEN], &params).unwrap());
        assert!(argon2id(b"pass", &[1; SALT_LEN], &KdfParams { parallelism: 2, ..params }).is_err());
    }

    #[test]
    fn derived_keys_differ_per_label() {
        let key = random_key().unwrap();
        assert_ne!(*derive(&key, "seal"), *derive(&key, "hash"));
        assert_eq!(*derive(&key, "seal"), *derive(&key, "seal"));
    }
}

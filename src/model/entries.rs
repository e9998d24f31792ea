//! The value stored in each area. Every value embeds its own key (`Entry::key`), so a row read back
//! can be checked against the IndexedDB key it was found under.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::ids::{Hash32, WalletId};
use crate::model::keys::{ContactKind, EntryKey, OutPoint};

/// A value of one area, with the key it lives under.
pub trait Entry: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug {
    type Key: EntryKey;
    fn key(&self) -> Self::Key;
    /// The wallet the value names itself, if it names one; it must be the wallet it is stored under.
    fn wallet_id(&self) -> Option<WalletId> {
        None
    }
    /// Records the wallet a loaded value was found under (a no-op for values that name none).
    fn set_wallet_id(&mut self, _wallet: WalletId) {}
}

/// Opaque bytes: a `Uint8Array` in JS, a length-prefixed byte string in bincode.
pub type Bytes = serde_bytes::ByteBuf;

/// The wallet's own record (one per wallet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WalletRecord {
    /// Optional on input, where it must equal the wallet the record is stored under; always set
    /// on load.
    #[serde(default)]
    pub wallet_id: Option<WalletId>,
    pub network: String,
    pub label: String,
    pub birth_height: u32,
    /// Unix milliseconds.
    pub created_at_ms: u64,
    /// Version of the schema the wallet's accounts were registered with.
    pub account_schema: u32,
}

/// A keyless account registration manifest: never seed material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Account {
    pub index: u32,
    /// e.g. `"bip84"`, `"coinjoin"`, `"identity"`.
    pub kind: String,
    /// An xpub or an output descriptor.
    pub descriptor: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressEntry {
    pub address: String,
    pub account: u32,
    pub index: u32,
    pub used: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Utxo {
    pub outpoint: OutPoint,
    pub value: u64,
    pub script: Bytes,
    pub height: Option<u32>,
    pub account: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransactionEntry {
    pub txid: Hash32,
    pub raw: Bytes,
    pub height: Option<u32>,
    /// Unix milliseconds.
    pub timestamp_ms: Option<u64>,
    pub fee: Option<u64>,
}

/// Chain sync progress (one per wallet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncState {
    pub height: u32,
    pub tip_hash: Hash32,
    /// Unix milliseconds.
    pub last_sync_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    pub id: Hash32,
    /// The identity's index in the wallet; `None` for an out-of-wallet identity.
    pub index: Option<u32>,
    pub revision: u64,
    pub balance: u64,
    pub blob: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityKey {
    pub identity: Hash32,
    pub key_id: u32,
    pub purpose: u8,
    pub security_level: u8,
    pub public_key: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Contact {
    pub kind: ContactKind,
    pub contact: Hash32,
    pub request: Bytes,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// Unix milliseconds.
    pub updated_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssetLock {
    pub account: u32,
    pub outpoint: OutPoint,
    /// e.g. `"broadcast"`, `"instantLocked"`, `"chainLocked"`, `"consumed"`.
    pub status: String,
    pub amount: u64,
    pub proof: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenBalance {
    pub identity: Hash32,
    pub token: Hash32,
    pub amount: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformAddress {
    pub address: String,
    pub balance: u64,
    pub nonce: u64,
}

/// The app's own extension area: opaque bytes under `(namespace, key)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    /// Must not contain `:`.
    pub namespace: String,
    pub key: String,
    pub value: Bytes,
}

impl Entry for WalletRecord {
    type Key = ();
    fn key(&self) {}
    fn wallet_id(&self) -> Option<WalletId> {
        self.wallet_id
    }
    fn set_wallet_id(&mut self, wallet: WalletId) {
        self.wallet_id = Some(wallet);
    }
}
impl Entry for SyncState {
    type Key = ();
    fn key(&self) {}
}
impl Entry for Account {
    type Key = u32;
    fn key(&self) -> u32 {
        self.index
    }
}
impl Entry for AddressEntry {
    type Key = String;
    fn key(&self) -> String {
        self.address.clone()
    }
}
impl Entry for Utxo {
    type Key = OutPoint;
    fn key(&self) -> OutPoint {
        self.outpoint
    }
}
impl Entry for TransactionEntry {
    type Key = Hash32;
    fn key(&self) -> Hash32 {
        self.txid
    }
}
impl Entry for Identity {
    type Key = Hash32;
    fn key(&self) -> Hash32 {
        self.id
    }
}
impl Entry for IdentityKey {
    type Key = (Hash32, u32);
    fn key(&self) -> (Hash32, u32) {
        (self.identity, self.key_id)
    }
}
impl Entry for Contact {
    type Key = (ContactKind, Hash32);
    fn key(&self) -> (ContactKind, Hash32) {
        (self.kind, self.contact)
    }
}
impl Entry for AssetLock {
    type Key = (u32, OutPoint);
    fn key(&self) -> (u32, OutPoint) {
        (self.account, self.outpoint)
    }
}
impl Entry for TokenBalance {
    type Key = (Hash32, Hash32);
    fn key(&self) -> (Hash32, Hash32) {
        (self.identity, self.token)
    }
}
impl Entry for PlatformAddress {
    type Key = String;
    fn key(&self) -> String {
        self.address.clone()
    }
}
impl Entry for Record {
    type Key = (String, String);
    fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.key.clone())
    }
}

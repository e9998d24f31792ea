//! The value stored in each area. Every value embeds its own key (`Entry::key`), so a row read back
//! can be checked against the IndexedDB key it was found under.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::ids::{Hash32, WalletId};
use crate::model::keys::{ContactKind, EntryKey, OutPoint};
use crate::payload::{Put, Take};
use crate::payload_struct;

/// A value of one area, with the key it lives under.
pub trait Entry: Serialize + DeserializeOwned + Put + Take + Clone + PartialEq + std::fmt::Debug {
    /// The key the value lives under inside its wallet.
    type Key: EntryKey;
    /// The key this value embeds (checked against the stored key on load).
    fn key(&self) -> Self::Key;
    /// The wallet the value names itself, if it names one; it must be the wallet it is stored under.
    fn wallet_id(&self) -> Option<WalletId> {
        None
    }
    /// Records the wallet a loaded value was found under (a no-op for values that name none).
    fn set_wallet_id(&mut self, _wallet: WalletId) {}
    /// `map.insert(key, value)`. Written in each impl (by `put_here!`), never defaulted: a
    /// non-generic function is compiled in this crate only, so every crate that fills an area's
    /// map shares this crate's one `BTreeMap::insert` per area in the .wasm.
    fn put(map: &mut BTreeMap<Self::Key, Option<Self>>, key: Self::Key, value: Option<Self>) -> Option<Option<Self>>;
}

/// The body of [`Entry::put`] in an impl.
macro_rules! put_here {
    () => {
        fn put(
            map: &mut BTreeMap<Self::Key, Option<Self>>,
            key: Self::Key,
            value: Option<Self>,
        ) -> Option<Option<Self>> {
            map.insert(key, value)
        }
    };
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
    /// The network name, e.g. `"mainnet"`, `"testnet"`.
    pub network: String,
    /// The user's name for the wallet.
    pub label: String,
    /// The first block height that can hold the wallet's transactions.
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
    /// The account index (its key in the `accounts` area).
    pub index: u32,
    /// e.g. `"bip84"`, `"coinjoin"`, `"identity"`.
    pub kind: String,
    /// An xpub or an output descriptor.
    pub descriptor: String,
}

/// A derived address and whether it has been used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressEntry {
    /// The address string (its key in the `addresses` area).
    pub address: String,
    /// The account it was derived from.
    pub account: u32,
    /// The derivation index within the account.
    pub index: u32,
    /// Whether a transaction paid to it.
    pub used: bool,
}

/// An unspent output the wallet controls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Utxo {
    /// txid and vout (its key in the `utxos` area).
    pub outpoint: OutPoint,
    /// The amount in the smallest unit (satoshis, duffs).
    pub value: u64,
    /// The output script.
    pub script: Bytes,
    /// The confirming block height; `None` while unconfirmed.
    pub height: Option<u32>,
    /// The account that owns it.
    pub account: u32,
}

/// A transaction relevant to the wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransactionEntry {
    /// Its id (its key in the `transactions` area).
    pub txid: Hash32,
    /// The serialized transaction.
    pub raw: Bytes,
    /// The confirming block height; `None` while unconfirmed.
    pub height: Option<u32>,
    /// Unix milliseconds.
    pub timestamp_ms: Option<u64>,
    /// The fee paid, when known.
    pub fee: Option<u64>,
}

/// Chain sync progress (one per wallet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncState {
    /// The last synced block height.
    pub height: u32,
    /// The hash of that block.
    pub tip_hash: Hash32,
    /// Unix milliseconds.
    pub last_sync_ms: u64,
}

/// A platform identity the wallet knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    /// The identity id (its key in the `identities` area).
    pub id: Hash32,
    /// The identity's index in the wallet; `None` for an out-of-wallet identity.
    pub index: Option<u32>,
    /// The identity revision.
    pub revision: u64,
    /// The credit balance.
    pub balance: u64,
    /// The serialized identity.
    pub blob: Bytes,
}

/// A public key of an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityKey {
    /// The identity it belongs to.
    pub identity: Hash32,
    /// The key id within the identity.
    pub key_id: u32,
    /// The key purpose (authentication, encryption, …) as the platform numbers it.
    pub purpose: u8,
    /// The security level as the platform numbers it.
    pub security_level: u8,
    /// The public key bytes.
    pub public_key: Bytes,
}

/// A contact request sent, received, or established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Contact {
    /// Sent, received, or established.
    pub kind: ContactKind,
    /// The other party's identity id.
    pub contact: Hash32,
    /// The serialized contact request.
    pub request: Bytes,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// Unix milliseconds.
    pub updated_ms: u64,
}

/// An asset lock (credit funding) transaction and its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssetLock {
    /// The account that funded it.
    pub account: u32,
    /// The locked output.
    pub outpoint: OutPoint,
    /// e.g. `"broadcast"`, `"instantLocked"`, `"chainLocked"`, `"consumed"`.
    pub status: String,
    /// The locked amount.
    pub amount: u64,
    /// The serialized lock proof.
    pub proof: Bytes,
}

/// An identity's balance of one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenBalance {
    /// The identity holding the tokens.
    pub identity: Hash32,
    /// The token id.
    pub token: Hash32,
    /// The balance.
    pub amount: u64,
}

/// A platform address with its balance and nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformAddress {
    /// The address string (its key in the `platform_addresses` area).
    pub address: String,
    /// The credit balance.
    pub balance: u64,
    /// The address nonce.
    pub nonce: u64,
}

/// The app's own extension area: opaque bytes under `(namespace, key)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    /// Must not contain `:`.
    pub namespace: String,
    /// The key within the namespace.
    pub key: String,
    /// The opaque value.
    pub value: Bytes,
}

// Every value's payload: its fields in declaration order (as serde's derive writes them).
payload_struct!(WalletRecord { wallet_id, network, label, birth_height, created_at_ms, account_schema });
payload_struct!(Account { index, kind, descriptor });
payload_struct!(AddressEntry { address, account, index, used });
payload_struct!(Utxo { outpoint, value, script, height, account });
payload_struct!(TransactionEntry { txid, raw, height, timestamp_ms, fee });
payload_struct!(SyncState { height, tip_hash, last_sync_ms });
payload_struct!(Identity { id, index, revision, balance, blob });
payload_struct!(IdentityKey { identity, key_id, purpose, security_level, public_key });
payload_struct!(Contact { kind, contact, request, created_ms, updated_ms });
payload_struct!(AssetLock { account, outpoint, status, amount, proof });
payload_struct!(TokenBalance { identity, token, amount });
payload_struct!(PlatformAddress { address, balance, nonce });
payload_struct!(Record { namespace, key, value });

impl Entry for WalletRecord {
    type Key = ();
    put_here!();
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
    put_here!();
    fn key(&self) {}
}
impl Entry for Account {
    type Key = u32;
    put_here!();
    fn key(&self) -> u32 {
        self.index
    }
}
impl Entry for AddressEntry {
    type Key = String;
    put_here!();
    fn key(&self) -> String {
        self.address.clone()
    }
}
impl Entry for Utxo {
    type Key = OutPoint;
    put_here!();
    fn key(&self) -> OutPoint {
        self.outpoint
    }
}
impl Entry for TransactionEntry {
    type Key = Hash32;
    put_here!();
    fn key(&self) -> Hash32 {
        self.txid
    }
}
impl Entry for Identity {
    type Key = Hash32;
    put_here!();
    fn key(&self) -> Hash32 {
        self.id
    }
}
impl Entry for IdentityKey {
    type Key = (Hash32, u32);
    put_here!();
    fn key(&self) -> (Hash32, u32) {
        (self.identity, self.key_id)
    }
}
impl Entry for Contact {
    type Key = (ContactKind, Hash32);
    put_here!();
    fn key(&self) -> (ContactKind, Hash32) {
        (self.kind, self.contact)
    }
}
impl Entry for AssetLock {
    type Key = (u32, OutPoint);
    put_here!();
    fn key(&self) -> (u32, OutPoint) {
        (self.account, self.outpoint)
    }
}
impl Entry for TokenBalance {
    type Key = (Hash32, Hash32);
    put_here!();
    fn key(&self) -> (Hash32, Hash32) {
        (self.identity, self.token)
    }
}
impl Entry for PlatformAddress {
    type Key = String;
    put_here!();
    fn key(&self) -> String {
        self.address.clone()
    }
}
impl Entry for Record {
    type Key = (String, String);
    put_here!();
    fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.key.clone())
    }
}

//! `WalletChangeSet`: per-area upserts and tombstones, merged last-writer-wins, and its rows.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec;
use crate::error::{Error, Result};
use crate::layout::*;
use crate::model::entries::*;
use crate::model::ids::WalletId;
use crate::model::keys::{EntryKey, Key, KeyPart};
use crate::payload::{Fail, In, Out, Put, Take};

/// Merging a newer value into an older one: per key, the newer wins (tombstones included).
pub trait Merge {
    /// Merges `newer` over `self`: per key, `newer` wins.
    fn merge(&mut self, newer: Self);
    /// Whether there is nothing to write.
    fn is_empty(&self) -> bool;
}

/// One area of a changeset: `Some(value)` upserts, `None` deletes (a tombstone).
#[derive(Debug, Clone, PartialEq)]
pub struct EntryMap<E: Entry>(pub BTreeMap<E::Key, Option<E>>);

impl<E: Entry> Default for EntryMap<E> {
    fn default() -> Self {
        EntryMap(BTreeMap::new())
    }
}

impl<E: Entry> EntryMap<E> {
    /// Stages `value` under its own key.
    pub fn upsert(&mut self, value: E) {
        E::put(&mut self.0, value.key(), Some(value));
    }
    /// Stages the deletion of `key`.
    pub fn tombstone(&mut self, key: E::Key) {
        E::put(&mut self.0, key, None);
    }
}

impl<E: Entry> Merge for EntryMap<E> {
    fn merge(&mut self, newer: Self) {
        self.0.extend(newer.0);
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<E: Entry> Merge for Option<E> {
    fn merge(&mut self, newer: Self) {
        if newer.is_some() {
            *self = newer;
        }
    }
    fn is_empty(&self) -> bool {
        self.is_none()
    }
}

/// Receives one encoded row change: `Some(envelope)` puts, `None` deletes the row.
pub type RowSink<'a> = &'a mut dyn FnMut(&'static str, Key, Option<Vec<u8>>);

/// Where [`WalletChangeSet::encode_store_from`] goes on: from the `entry`-th entry of the area (in
/// key order), until `budget` bytes of values were made (at least one entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// Entries of the area already handed.
    pub entry: usize,
    /// Bytes of values to make at most, unless one entry alone is larger.
    pub budget: usize,
}

/// What the persister needs of each area, whether keyed (`EntryMap`) or a singleton (`Option`).
trait Area {
    type Item: Entry;
    /// Whether the area maps entry keys to values (else it holds one value).
    const KEYED: bool;
    fn len(&self) -> usize;
    /// Whether any entry is an upsert (else every one is a tombstone).
    fn upserts(&self) -> bool;
    fn validate(&self, wallet: &WalletId, store: &str, limit: usize) -> Result<()>;
    /// Hands `sink` the row changes of the entries from the `from`-th on (in key order), each value
    /// encoded, until `budget` bytes of values were made (at least one entry); returns how many
    /// entries it handed (0: none left).
    fn encode_from(
        &self,
        wallet: &WalletId,
        store: &'static str,
        limit: usize,
        from: Resume,
        sink: RowSink<'_>,
    ) -> Result<usize>;
    fn insert_loaded(&mut self, value: Self::Item);
}

/// The IndexedDB key of one entry of one wallet.
pub fn entry_key<K: EntryKey>(wallet: &WalletId, key: &K) -> Key {
    let mut out = Vec::with_capacity(1 + K::ARITY);
    out.push(KeyPart::Text(wallet.to_hex()));
    key.to_parts(&mut out);
    out
}

/// Checks one value before it is staged: it names no other wallet and fits the byte limit.
fn check_value<E: Entry>(wallet: &WalletId, value: &E, limit: usize) -> Result<()> {
    check_wallet(wallet, value)?;
    codec::check_payload_size(&(wallet, value), limit)
}

fn check_wallet<E: Entry>(wallet: &WalletId, value: &E) -> Result<()> {
    match value.wallet_id() {
        Some(found) if found != *wallet => Err(Error::WalletIdMismatch { expected: *wallet, found }),
        _ => Ok(()),
    }
}

fn encode_row<E: Entry>(wallet: &WalletId, value: &E, limit: usize) -> Result<Vec<u8>> {
    codec::encode_payload(&(wallet, value), limit)
}

/// The changeset of `wallet` in a load's state, added empty if absent. One function, not one
/// inlined copy per area arm of `load_row` (each copy holds a whole `WalletChangeSet` default).
#[inline(never)]
fn wallet_changes(state: &mut BTreeMap<WalletId, WalletChangeSet>, wallet: WalletId) -> &mut WalletChangeSet {
    state.entry(wallet).or_default()
}

/// Checks that a row's key starts with the wallet its value names. One function for every area.
#[inline(never)]
fn check_row_wallet(key: &[KeyPart], wallet: &WalletId) -> Result<()> {
    match key.first() {
        Some(KeyPart::Text(hex)) if *hex == wallet.to_hex() => Ok(()),
        Some(KeyPart::Text(hex)) => {
            let found =
                WalletId::from_hex(hex).map_err(|_| Error::EntryMismatch(format!("bad wallet key part {hex:?}")))?;
            Err(Error::WalletIdMismatch { expected: found, found: *wallet })
        }
        _ => Err(Error::EntryMismatch("key does not start with a wallet id".into())),
    }
}

/// Decodes one stored row and checks it against the key it was found under.
pub fn decode_row<E: Entry>(key: &[KeyPart], bytes: &[u8], limit: usize) -> Result<(WalletId, E)> {
    let (wallet, mut value): (WalletId, E) = codec::decode_payload(bytes, limit)?;
    check_row_wallet(key, &wallet)?;
    check_wallet(&wallet, &value)?;
    if entry_key(&wallet, &value.key()) != key {
        return Err(Error::EntryMismatch(format!("value's own key {:?} differs from its row key", value.key())));
    }
    value.set_wallet_id(wallet);
    Ok((wallet, value))
}

impl<E: Entry> Area for EntryMap<E> {
    type Item = E;
    const KEYED: bool = true;
    fn len(&self) -> usize {
        self.0.len()
    }
    fn upserts(&self) -> bool {
        self.0.values().any(Option::is_some)
    }
    fn validate(&self, wallet: &WalletId, store: &str, limit: usize) -> Result<()> {
        for (key, value) in &self.0 {
            if let Some(value) = value {
                check_value(wallet, value, limit)?;
                if value.key() != *key {
                    return Err(Error::EntryMismatch(format!(
                        "{store}: entry under key {:?} carries key {:?}",
                        key.js_key(),
                        value.key().js_key()
                    )));
                }
            }
        }
        Ok(())
    }
    fn encode_from(
        &self,
        wallet: &WalletId,
        store: &'static str,
        limit: usize,
        from: Resume,
        sink: RowSink<'_>,
    ) -> Result<usize> {
        let (mut handed, mut bytes) = (0, 0);
        // A plain loop, not `skip`: the .wasm holds one copy of this per area.
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i < from.entry {
                continue;
            }
            if handed > 0 && bytes >= from.budget {
                break;
            }
            let key = entry_key(wallet, key);
            let value = match value {
                Some(value) => Some(encode_row(wallet, value, limit)?),
                None => None,
            };
            bytes += value.as_ref().map_or(0, Vec::len);
            sink(store, key, value);
            handed += 1;
        }
        Ok(handed)
    }
    fn insert_loaded(&mut self, value: E) {
        self.upsert(value);
    }
}

impl<E: Entry<Key = ()>> Area for Option<E> {
    type Item = E;
    const KEYED: bool = false;
    fn len(&self) -> usize {
        usize::from(self.is_some())
    }
    fn upserts(&self) -> bool {
        self.is_some()
    }
    fn validate(&self, wallet: &WalletId, _store: &str, limit: usize) -> Result<()> {
        match self {
            Some(value) => check_value(wallet, value, limit),
            None => Ok(()),
        }
    }
    fn encode_from(
        &self,
        wallet: &WalletId,
        store: &'static str,
        limit: usize,
        from: Resume,
        sink: RowSink<'_>,
    ) -> Result<usize> {
        match self {
            Some(value) if from.entry == 0 => {
                sink(store, entry_key(wallet, &()), Some(encode_row(wallet, value, limit)?));
                Ok(1)
            }
            _ => Ok(0),
        }
    }
    fn insert_loaded(&mut self, value: E) {
        *self = Some(value);
    }
}

impl<E: Entry> Serialize for EntryMap<E> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(&key.js_key(), value)?;
        }
        map.end()
    }
}

impl<'de, E: Entry> Deserialize<'de> for EntryMap<E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct MapVisitor<E>(PhantomData<E>);
        impl<'de, E: Entry> Visitor<'de> for MapVisitor<E> {
            type Value = EntryMap<E>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping entry keys to values or null")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = access.next_key::<String>()? {
                    let parsed = E::Key::parse_js(&key).map_err(serde::de::Error::custom)?;
                    E::put(&mut out, parsed, access.next_value::<Option<E>>()?);
                }
                Ok(EntryMap(out))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

/// In a payload (a pending registration), as serde writes it: the entry count, then each entry's
/// JS key and `Option` value, in key order.
impl<E: Entry> Put for EntryMap<E> {
    fn encode(&self, out: &mut Out) {
        out.varint(self.0.len() as u64);
        for (key, value) in &self.0 {
            key.js_key().encode(out);
            value.encode(out);
        }
    }
}

/// A key that does not parse is refused; a repeated key keeps its last value.
impl<E: Entry> Take for EntryMap<E> {
    fn decode(input: &mut In<'_>) -> std::result::Result<Self, Fail> {
        let mut map = BTreeMap::new();
        for _ in 0..input.length()? {
            let key = E::Key::parse_js(&String::decode(input)?).map_err(|_| Fail::Invalid("malformed entry key"))?;
            E::put(&mut map, key, Option::<E>::decode(input)?);
        }
        Ok(EntryMap(map))
    }
}

/// Declares the changeset's areas once; every per-area operation below is generated from this list.
///
/// The operations off the hot paths (a pending registration's payload, counts, shapes) are
/// `#[inline]`: compiled in the crate that calls them, the size-optimised root crate, with every
/// area's generic code they reach, not here at opt-level 3 (see core.rs). Loading (`load_row`),
/// encoding (`encode_store_from`), `validate` and `merge` stay here: each `store()`, load or commit
/// runs them.
macro_rules! areas {
    ($( $field:ident : $ty:ty => $store:ident ),* $(,)?) => {
        /// Staged changes of one wallet, area by area.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", default, deny_unknown_fields)]
        pub struct WalletChangeSet {
            $(
                #[doc = concat!("Changes to the `", stringify!($field), "` area.")]
                pub $field: $ty,
            )*
        }

        /// The object store of every area, in declaration order (equal to [`AREA_STORES`]).
        #[cfg(test)]
        const DECLARED_STORES: &[&str] = &[$($store),*];

        /// Every area in declaration order (as serde's derive writes them).
        impl Put for WalletChangeSet {
            #[inline]
            fn encode(&self, out: &mut Out) {
                $( self.$field.encode(out); )*
            }
        }

        impl Take for WalletChangeSet {
            #[inline]
            fn decode(input: &mut In<'_>) -> std::result::Result<Self, Fail> {
                // Struct literal fields are evaluated in the order written: the payload's order.
                Ok(WalletChangeSet { $( $field: Take::decode(input)?, )* })
            }
        }

        impl Merge for WalletChangeSet {
            fn merge(&mut self, newer: Self) {
                $( self.$field.merge(newer.$field); )*
            }
            fn is_empty(&self) -> bool {
                true $( && Merge::is_empty(&self.$field) )*
            }
        }

        /// The shape of one area in JS input: its field name, whether it is keyed, and the field
        /// names its values accept.
        #[derive(Debug, Clone, Copy)]
        pub struct AreaShape {
            /// The changeset field name in JS (camelCase).
            pub js_name: &'static str,
            /// A map of entries (`true`) or a single value (`wallet`, `syncState`).
            pub keyed: bool,
            /// The field names a value accepts.
            pub value_fields: &'static [&'static str],
        }

        impl WalletChangeSet {
            /// Every area's JS shape, in declaration order.
            #[inline]
            pub fn area_shapes() -> Vec<AreaShape> {
                let names = crate::model::introspect::field_names::<WalletChangeSet>();
                let shapes = [$( (<$ty as Area>::KEYED, crate::model::introspect::field_names::<<$ty as Area>::Item>()) ),*];
                names.iter().zip(shapes).map(|(js_name, (keyed, value_fields))| AreaShape { js_name, keyed, value_fields }).collect()
            }

            /// Every area's store, its entries (upserts and tombstones) and whether any of them is
            /// an upsert, in declaration order, empty areas included.
            #[inline]
            pub fn area_counts(&self) -> Vec<(&'static str, usize, bool)> {
                vec![$( ($store, Area::len(&self.$field), self.$field.upserts()) ),*]
            }

            /// Checks that every value carries the key it is stored under and fits the byte limit.
            pub fn validate(&self, wallet: &WalletId, limit: usize) -> Result<()> {
                $( self.$field.validate(wallet, $store, limit)?; )*
                Ok(())
            }

            /// Hands `sink` this wallet's row puts and deletes in `store` from `from` on, every
            /// value encoded (see [`Resume`]); returns how many it handed (0: none left, or not an
            /// area store). So a flush encodes a few rows at a time, never all of them.
            pub fn encode_store_from(
                &self,
                wallet: &WalletId,
                store: &str,
                limit: usize,
                from: Resume,
                sink: RowSink<'_>,
            ) -> Result<usize> {
                match store {
                    $( $store => self.$field.encode_from(wallet, $store, limit, from, sink), )*
                    _ => Ok(0),
                }
            }

            /// Hands this wallet's row puts and deletes to `sink`, every value encoded.
            pub fn encode_into(&self, wallet: &WalletId, limit: usize, sink: RowSink<'_>) -> Result<()> {
                // Through `encode_store_from`, each area's encoding is one function in the .wasm.
                let all = Resume { entry: 0, budget: usize::MAX };
                for store in [$($store),*] {
                    self.encode_store_from(wallet, store, limit, all, &mut *sink)?;
                }
                Ok(())
            }

            /// Decodes one row of `store` and adds it to the changeset of its wallet.
            pub fn load_row(
                state: &mut BTreeMap<WalletId, WalletChangeSet>,
                store: &str,
                key: &[KeyPart],
                bytes: &[u8],
                limit: usize,
            ) -> Result<()> {
                match store {
                    $( $store => {
                        let (wallet, value) = decode_row::<<$ty as Area>::Item>(key, bytes, limit)?;
                        wallet_changes(state, wallet).$field.insert_loaded(value);
                        Ok(())
                    } )*
                    other => Err(Error::Internal(format!("{other} is not an area store"))),
                }
            }
        }
    };
}

areas! {
    wallet: Option<WalletRecord> => WALLETS,
    accounts: EntryMap<Account> => ACCOUNTS,
    addresses: EntryMap<AddressEntry> => ADDRESSES,
    utxos: EntryMap<Utxo> => UTXOS,
    transactions: EntryMap<TransactionEntry> => TRANSACTIONS,
    sync_state: Option<SyncState> => SYNC_STATE,
    identities: EntryMap<Identity> => IDENTITIES,
    identity_keys: EntryMap<IdentityKey> => IDENTITY_KEYS,
    contacts: EntryMap<Contact> => CONTACTS,
    asset_locks: EntryMap<AssetLock> => ASSET_LOCKS,
    token_balances: EntryMap<TokenBalance> => TOKEN_BALANCES,
    platform_addresses: EntryMap<PlatformAddress> => PLATFORM_ADDRESSES,
    records: EntryMap<Record> => RECORDS,
}

impl WalletChangeSet {
    /// Upserts plus tombstones over all areas.
    #[inline]
    pub fn field_count(&self) -> usize {
        self.area_counts().iter().map(|(_, n, _)| n).sum()
    }
}

/// What `load` returns: the durable state of every wallet, grouped by wallet.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientStartState {
    /// Every wallet with at least one loaded row, and its rows (no tombstones).
    pub wallets: BTreeMap<WalletId, WalletChangeSet>,
}

#[cfg(test)]
mod layout_tests {
    use crate::layout::tests::typescript_interface_fields;

    #[test]
    fn areas_are_declared_in_layout_order() {
        assert_eq!(super::DECLARED_STORES, crate::layout::AREA_STORES);
    }

    /// The hand-written TypeScript declarations (src/js/types.rs) name exactly the changeset's
    /// areas, in both `WalletChangeSetOf` and `WalletState`, and each area's value interface
    /// names exactly the fields the Rust value accepts.
    #[test]
    fn typescript_declarations_match_the_rust_types() {
        let shapes = super::WalletChangeSet::area_shapes();
        let areas: Vec<String> = shapes.iter().map(|s| s.js_name.to_owned()).collect();
        assert_eq!(typescript_interface_fields("WalletChangeSetOf"), areas);
        assert_eq!(typescript_interface_fields("WalletState"), areas);
        let types = include_str!("../js/types.rs");
        let body = &types[types.find("export interface WalletChangeSetOf").unwrap()..];
        for shape in shapes {
            let line = body.lines().find(|l| l.trim_start().starts_with(&format!("{}?:", shape.js_name))).unwrap();
            let value_type = line
                .split(|c: char| !(c.is_alphanumeric()))
                .find(|w| w.chars().next().is_some_and(|c| c.is_uppercase()) && *w != "N")
                .unwrap_or_else(|| panic!("value type of {}", shape.js_name));
            let mut declared = typescript_interface_fields(value_type);
            let mut rust: Vec<String> = shape.value_fields.iter().map(|f| f.to_string()).collect();
            declared.sort();
            rust.sort();
            assert_eq!(declared, rust, "TS {value_type} vs the Rust value of {}", shape.js_name);
        }
    }
}

//! The database layout: every object store name, the groups of stores each feature owns, and how
//! keys are spelled in messages. A leaf: it imports nothing of ours, so the backends, the schema
//! and every feature can read it.
//!
//! Keys are arrays. Wallet stores start with the wallet id in hex (`[walletIdHex, ...entryKey]`),
//! so one key range covers one wallet; channel stores start with the channel id (`[channel, ...]`).

/// The wallet record (key `[wallet]`).
pub const WALLETS: &str = "wallets";
/// Account manifests (key `[wallet, account]`).
pub const ACCOUNTS: &str = "accounts";
/// Addresses (key `[wallet, address]`).
pub const ADDRESSES: &str = "addresses";
/// Unspent outputs (key `[wallet, txid, vout]`).
pub const UTXOS: &str = "utxos";
/// Transactions (key `[wallet, txid]`).
pub const TRANSACTIONS: &str = "transactions";
/// The sync checkpoint (key `[wallet]`).
pub const SYNC_STATE: &str = "sync_state";
/// Identities (key `[wallet, identity]`).
pub const IDENTITIES: &str = "identities";
/// Identity keys (key `[wallet, identity, keyId]`).
pub const IDENTITY_KEYS: &str = "identity_keys";
/// Contacts (key `[wallet, kind, contact]`).
pub const CONTACTS: &str = "contacts";
/// Asset locks (key `[wallet, account, txid, vout]`).
pub const ASSET_LOCKS: &str = "asset_locks";
/// Token balances (key `[wallet, identity, token]`).
pub const TOKEN_BALANCES: &str = "token_balances";
/// Platform addresses (key `[wallet, address]`).
pub const PLATFORM_ADDRESSES: &str = "platform_addresses";
/// The app's own records (key `[wallet, namespace, key]`).
pub const RECORDS: &str = "records";

/// The schema stamp and other database-wide rows.
pub const DB_META: &str = "db_meta";
/// Two-phase registration staging (key `[wallet]`).
pub const PENDING: &str = "pending";
/// Channel meta snapshots (key `[channel]`).
pub const CHANNEL_META: &str = "channel_meta";
/// Channel history (key `[channel, seq]`).
pub const CHANNEL_HISTORY: &str = "channel_history";
/// Retrieval hints (key `[channel, messageId]`).
pub const RETRIEVAL_HINTS: &str = "retrieval_hints";

/// The area stores, one per changeset area, in the changeset's declaration order.
pub const AREA_STORES: &[&str] = &[
    WALLETS,
    ACCOUNTS,
    ADDRESSES,
    UTXOS,
    TRANSACTIONS,
    SYNC_STATE,
    IDENTITIES,
    IDENTITY_KEYS,
    CONTACTS,
    ASSET_LOCKS,
    TOKEN_BALANCES,
    PLATFORM_ADDRESSES,
    RECORDS,
];

/// Every store holding rows of a channel.
pub const CHANNEL_STORES: &[&str] = &[CHANNEL_META, CHANNEL_HISTORY, RETRIEVAL_HINTS];

/// Stores outside the wallet areas.
pub const META_STORES: &[&str] = &[DB_META, PENDING, CHANNEL_META, CHANNEL_HISTORY, RETRIEVAL_HINTS];

/// The stores whose keys start with a wallet id: everything `deleteWallet` removes.
pub fn wallet_stores() -> impl Iterator<Item = &'static str> {
    AREA_STORES.iter().copied().chain([PENDING])
}

/// Every object store of the database.
pub fn all_stores() -> impl Iterator<Item = &'static str> {
    AREA_STORES.iter().chain(META_STORES).copied()
}

/// The stores a backup carries: every area and every channel store (not `db_meta`, not `pending`).
pub fn backup_stores() -> impl Iterator<Item = &'static str> {
    AREA_STORES.iter().chain(CHANNEL_STORES).copied()
}

#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod tests {
    #[cfg(test)]
    use super::*;

    /// The string members of the TypeScript union `export type <name> = "a" | "b" …;` in
    /// src/js/types.rs, where the hand-written declarations live.
    pub fn typescript_union(name: &str) -> Vec<&'static str> {
        let types = include_str!("js/types.rs");
        let start = types.find(&format!("export type {name} =")).unwrap_or_else(|| panic!("{name} in types.rs"));
        let end = start + types[start..].find(';').expect("the union ends with ;");
        types[start..end].split('"').skip(1).step_by(2).collect()
    }

    /// The member names of `export interface <name> … { a: …; b?: …; }` in src/js/types.rs.
    pub fn typescript_interface_fields(name: &str) -> Vec<String> {
        let types = include_str!("js/types.rs");
        let start = types
            .find(&format!("export interface {name} "))
            .or_else(|| types.find(&format!("export interface {name}<")));
        let start = start.unwrap_or_else(|| panic!("interface {name} in types.rs"));
        let open = start + types[start..].find('{').expect("interface body");
        let (mut depth, mut end) = (0, open);
        for (i, c) in types[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 1 => {
                    end = open + i;
                    break;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        let body = &types[open + 1..end];
        let mut fields = Vec::new();
        let mut depth = 0;
        let mut member = String::new();
        for c in body.chars() {
            match c {
                '{' | '(' | '<' => depth += 1,
                '}' | ')' | '>' => depth -= 1,
                ';' if depth == 0 => {
                    fields.push(std::mem::take(&mut member));
                    continue;
                }
                _ => {}
            }
            member.push(c);
        }
        fields
            .iter()
            .filter_map(|m| {
                let m: String = m
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("/**") && !l.trim_start().starts_with('*'))
                    .collect();
                let name = m.split(':').next()?.trim().trim_end_matches('?').to_owned();
                (!name.is_empty()).then_some(name)
            })
            .collect()
    }

    #[test]
    fn store_names_are_unique() {
        let mut names: Vec<_> = all_stores().collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert_eq!(n, 18);
    }

    /// The TypeScript `AreaStore` union (src/js/types.rs) lists exactly the area stores, in order.
    #[test]
    fn typescript_area_stores_match_the_layout() {
        assert_eq!(typescript_union("AreaStore"), AREA_STORES);
    }
}

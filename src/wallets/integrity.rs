//! Referential integrity, as the SQLite schema's foreign keys enforced it: every wallet row needs
//! its wallet record; identity keys and token balances need their identity.
//!
//! - A flush that would leave a child without its parent (on disk or in the same flush) is
//!   refused for that wallet with `OrphanRow` (22); the other wallets still commit.
//! - A parent's tombstone cascades: tombstoning an identity deletes its identity keys and token
//!   balances in the same transaction (one key-range delete per child store), and staging it drops
//!   the children staged before it. Changes that tombstone an identity and upsert a child of it (in
//!   one call, or a child after an earlier staged tombstone) are refused before anything is staged.
//! - `load` skips orphan rows on disk (from an older build, or written by hand) and reports
//!   them with the reason `orphan_row`; they never load as a wallet.

use std::collections::{BTreeMap, BTreeSet};

use crate::backend::WriteOp;
use crate::error::{Error, Result};
use crate::layout::{IDENTITY_KEYS, TOKEN_BALANCES, WALLETS};
use crate::model::{
    entry_key, key_to_string, Entry, Hash32, IdentityKey, Key, KeyPart, Merge, TokenBalance, WalletChangeSet, WalletId,
};

/// The parents `changes` needs that it does not bring itself: `(the wallet record, identities)`.
pub fn needed_parents(changes: &WalletChangeSet) -> (bool, Vec<Hash32>) {
    let puts_rows = changes.area_counts().into_iter().any(|(store, _, upserts)| upserts && store != WALLETS);
    let mut identities = child_identities(changes);
    identities.retain(|id| !matches!(changes.identities.0.get(id), Some(Some(_))));
    (changes.wallet.is_none() && puts_rows, identities)
}

/// The identities the changeset's upserted identity keys and token balances belong to, sorted,
/// each once.
fn child_identities(changes: &WalletChangeSet) -> Vec<Hash32> {
    let keys = changes.identity_keys.0.iter().filter(|(_, v)| v.is_some()).map(|((identity, _), _)| *identity);
    let balances = changes.token_balances.0.iter().filter(|(_, v)| v.is_some()).map(|((identity, _), _)| *identity);
    // Both maps are keyed by identity first, so each list comes sorted: merged here, not sorted
    // (a sort of `Hash32`s is ~20 KB in the .wasm) nor put in a set (a B-tree instance of its own).
    let (keys, balances) = (sorted_unique(keys), sorted_unique(balances));
    let mut merged = Vec::with_capacity(keys.len() + balances.len());
    let (mut k, mut b) = (0, 0);
    while k < keys.len() && b < balances.len() {
        let next = keys[k].min(balances[b]);
        k += usize::from(keys[k] == next);
        b += usize::from(balances[b] == next);
        merged.push(next);
    }
    merged.extend_from_slice(&keys[k..]);
    merged.extend_from_slice(&balances[b..]);
    merged
}

/// `ids` (in ascending order) without repeats.
fn sorted_unique(ids: impl Iterator<Item = Hash32>) -> Vec<Hash32> {
    let mut out: Vec<Hash32> = Vec::new();
    for id in ids {
        if out.last() != Some(&id) {
            out.push(id);
        }
    }
    out
}

/// The row key of a wallet record.
pub fn record_key(wallet: &WalletId) -> Key {
    entry_key(wallet, &())
}

/// The row key of an identity.
pub fn identity_key(wallet: &WalletId, identity: &Hash32) -> Key {
    entry_key(wallet, identity)
}

/// Refuses a changeset that would leave an orphan, given which needed parents exist on disk.
pub fn check(wallet: &WalletId, changes: &WalletChangeSet, on_disk: &BTreeSet<Key>) -> Result<()> {
    let (record, identities) = needed_parents(changes);
    let record_on_disk = on_disk.contains(&record_key(wallet));
    if record && !record_on_disk {
        return Err(Error::OrphanRow(format!(
            "wallet {wallet} has no wallet record (store `wallet` with the first changes, or register it)"
        )));
    }
    for identity in identities {
        let tombstoned = matches!(changes.identities.0.get(&identity), Some(None));
        if tombstoned || !on_disk.contains(&identity_key(wallet, &identity)) {
            return Err(Error::OrphanRow(format!(
                "identity keys or token balances of wallet {wallet} belong to identity {identity}, which {}",
                if tombstoned { "the same changes delete" } else { "does not exist" }
            )));
        }
    }
    Ok(())
}

/// Refuses, before anything is staged, changes whose merge with `staged` (the wallet's staged
/// changes) would tombstone an identity and upsert a child of it: within `changes` itself, or a
/// child of an identity that `staged` deletes (store the identity again first).
pub fn check_staging<'a>(
    wallet: &WalletId,
    changes: &WalletChangeSet,
    staged: impl FnOnce() -> Option<&'a WalletChangeSet>,
) -> Result<()> {
    let children = child_identities(changes);
    // Looked up only when needed: most changes upsert no child of an identity.
    let staged = if children.is_empty() { None } else { staged() };
    for identity in children {
        let deleted_here = matches!(changes.identities.0.get(&identity), Some(None));
        let deleted_before = !changes.identities.0.contains_key(&identity)
            && staged.is_some_and(|staged| matches!(staged.identities.0.get(&identity), Some(None)));
        if deleted_here || deleted_before {
            return Err(Error::OrphanRow(format!(
                "identity keys or token balances of wallet {wallet} belong to identity {identity}, which {}",
                if deleted_here { "the same changes delete" } else { "changes staged earlier delete" }
            )));
        }
    }
    Ok(())
}

/// Merges `newer` over `older`, newer wins per key, and an identity tombstone in `newer` also
/// removes `older`'s identity keys and token balances of that identity (the cascade deletes them).
pub fn merge_cascading(older: &mut WalletChangeSet, newer: WalletChangeSet) {
    // In key order, so sorted.
    let deleted: Vec<Hash32> =
        newer.identities.0.iter().filter(|(_, value)| value.is_none()).map(|(identity, _)| *identity).collect();
    if !deleted.is_empty() {
        older.identity_keys.0.retain(|(identity, _), _| deleted.binary_search(identity).is_err());
        older.token_balances.0.retain(|(identity, _), _| deleted.binary_search(identity).is_err());
    }
    older.merge(newer);
}

/// The deletes a changeset's identity tombstones cascade to (issued before its other ops).
pub fn cascade_ops(wallet: &WalletId, changes: &WalletChangeSet) -> Vec<WriteOp> {
    changes
        .identities
        .0
        .iter()
        .filter(|(_, value)| value.is_none())
        .flat_map(|(identity, _)| {
            [IDENTITY_KEYS, TOKEN_BALANCES]
                .map(|store| WriteOp::DeletePrefix { store, prefix: identity_key(wallet, identity) })
        })
        .collect()
}

/// The parent rows a successful write of `changes` leaves on disk (`added`) and removes (`gone`).
pub fn parents_written(wallet: &WalletId, changes: &WalletChangeSet) -> (Vec<Key>, Vec<Key>) {
    let mut added = Vec::new();
    let mut gone = Vec::new();
    if changes.wallet.is_some() {
        added.push(record_key(wallet));
    }
    for (identity, value) in &changes.identities.0 {
        match value {
            Some(_) => added.push(identity_key(wallet, identity)),
            None => gone.push(identity_key(wallet, identity)),
        }
    }
    (added, gone)
}

/// Removes the orphans from loaded state: every wallet without its record, every identity key
/// and token balance without its identity. Returns them as `(store, spelled key, error)`.
pub fn take_orphans(wallets: &mut BTreeMap<WalletId, WalletChangeSet>) -> Vec<(&'static str, String, Error)> {
    let mut orphans = Vec::new();
    let mut push = |wallet: &WalletId, changes: &WalletChangeSet, why: &str| {
        let _ = changes.encode_into(wallet, usize::MAX, &mut |store, key, _| {
            orphans.push((store, key_to_string(&key), Error::OrphanRow(why.to_owned())));
        });
    };
    let recordless: Vec<WalletId> = wallets.iter().filter(|(_, cs)| cs.wallet.is_none()).map(|(w, _)| *w).collect();
    for wallet in recordless {
        let changes = wallets.remove(&wallet).expect("listed above");
        push(&wallet, &changes, &format!("wallet {wallet} has no wallet record"));
    }
    for (wallet, changes) in wallets.iter_mut() {
        let identities = &changes.identities.0;
        let mut orphaned = WalletChangeSet::default();
        changes.identity_keys.0.retain(|key, value| {
            let keep = identities.contains_key(&key.0);
            if !keep {
                IdentityKey::put(&mut orphaned.identity_keys.0, *key, value.take());
            }
            keep
        });
        changes.token_balances.0.retain(|key, value| {
            let keep = identities.contains_key(&key.0);
            if !keep {
                TokenBalance::put(&mut orphaned.token_balances.0, *key, value.take());
            }
            keep
        });
        push(wallet, &orphaned, "its identity does not exist");
    }
    orphans
}

/// Parent rows (wallet records, identities) known to be on disk. Only presence is known: a key
/// that is not here is unknown, to be read before a write that needs it. So a load of some
/// wallets adds what it found for them and says nothing of the others.
#[derive(Debug, Default)]
pub struct KnownParents {
    keys: BTreeSet<Key>,
    /// Bumped by every removal: a read that started before a removal may hold the removed row.
    removals: u64,
    /// The connection (the `Db`'s reconnect count) what is known was found on.
    connection: u64,
}

impl std::ops::Deref for KnownParents {
    type Target = BTreeSet<Key>;
    fn deref(&self) -> &BTreeSet<Key> {
        &self.keys
    }
}

impl KnownParents {
    /// Parents a write or a read under the write lock found on disk.
    pub fn learn(&mut self, keys: impl IntoIterator<Item = Key>) {
        self.keys.extend(keys);
    }

    /// Parents a read outside the write lock found, if nothing was removed since the read began
    /// (`removals` then): otherwise they may be rows a write deleted meanwhile, and are not kept.
    pub fn learn_loaded(&mut self, removals: u64, keys: impl IntoIterator<Item = Key>) {
        if removals == self.removals {
            self.keys.extend(keys);
        }
    }

    /// The stamp to pass to [`KnownParents::learn_loaded`], taken before the read.
    pub fn removals(&self) -> u64 {
        self.removals
    }

    /// Parents a write removed.
    pub fn forget(&mut self, keys: impl IntoIterator<Item = Key>) {
        self.removals += 1;
        for key in keys {
            self.keys.remove(&key);
        }
    }

    /// Every parent of `wallet` (deleted).
    pub fn forget_wallet(&mut self, wallet: &WalletId) {
        self.removals += 1;
        self.keys.retain(|key| !belongs_to(key, wallet));
    }

    /// Forgets everything when `connection` is not the connection it was learnt on: across a
    /// reconnect the database may have been cleared or deleted and created again.
    pub fn follow(&mut self, connection: u64) {
        if connection != self.connection {
            self.forget_all();
            self.connection = connection;
        }
    }

    /// Everything (the stores were replaced).
    pub fn forget_all(&mut self) {
        self.removals += 1;
        self.keys.clear();
    }
}

/// The parent rows of loaded state (to seed what is known on disk).
pub fn loaded_parents(wallets: &BTreeMap<WalletId, WalletChangeSet>) -> Vec<Key> {
    let mut keys = Vec::new();
    for (wallet, changes) in wallets {
        keys.extend(parents_written(wallet, changes).0);
    }
    keys
}

/// Whether `key` is a row of `wallet`.
pub fn belongs_to(key: &Key, wallet: &WalletId) -> bool {
    matches!(key.first(), Some(KeyPart::Text(hex)) if *hex == wallet.to_hex())
}

//! Per-wallet staging of changesets between flushes.

use std::collections::{BTreeMap, BTreeSet};

use super::integrity::merge_cascading;
use crate::model::{Merge, WalletChangeSet, WalletId};

/// Staged, not yet durable changes, one merged changeset per wallet.
///
/// Invariant: a wallet present here has a non-empty changeset.
#[derive(Debug, Default)]
pub struct Buffer {
    staged: BTreeMap<WalletId, WalletChangeSet>,
}

impl Buffer {
    /// Merges `changes` over what is staged for `wallet` (newer wins per key; an identity
    /// tombstone drops the children of that identity staged before it).
    pub fn stage(&mut self, wallet: WalletId, changes: WalletChangeSet) {
        if changes.is_empty() {
            return;
        }
        match self.staged.get_mut(&wallet) {
            Some(existing) => merge_cascading(existing, changes),
            None => {
                self.staged.insert(wallet, changes);
            }
        }
    }

    /// Removes and returns everything staged, except the wallets in `keep` (wallets under
    /// registration: only their promote writes them).
    pub fn take_for_flush(&mut self, keep: &BTreeSet<WalletId>) -> BTreeMap<WalletId, WalletChangeSet> {
        let (kept, taken) = std::mem::take(&mut self.staged).into_iter().partition(|(w, _)| keep.contains(w));
        self.staged = kept;
        taken
    }

    /// Removes and returns what is staged for one wallet.
    pub fn take_wallet(&mut self, wallet: &WalletId) -> Option<WalletChangeSet> {
        self.staged.remove(wallet)
    }

    /// Puts taken changesets back **under** anything staged since: `taken.merge(newer)`, newer wins.
    pub fn restore(&mut self, taken: impl IntoIterator<Item = (WalletId, WalletChangeSet)>) {
        for (wallet, mut older) in taken {
            if let Some(newer) = self.staged.remove(&wallet) {
                merge_cascading(&mut older, newer);
            }
            if !older.is_empty() {
                self.staged.insert(wallet, older);
            }
        }
    }

    /// The wallet's staged changes, if any.
    pub fn get(&self, wallet: &WalletId) -> Option<&WalletChangeSet> {
        self.staged.get(wallet)
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }

    /// Dirty wallets with their staged field counts.
    pub fn summary(&self) -> Vec<(WalletId, usize)> {
        self.staged.iter().map(|(id, cs)| (*id, cs.field_count())).collect()
    }
}

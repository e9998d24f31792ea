//! A wallet changeset as rows: the puts and deletes a flush issues.

use std::borrow::Cow;
use std::collections::{BTreeSet, VecDeque};

use super::integrity;
use crate::backend::{Ops, WriteOp, WriteSource};
use crate::error::Result;
use crate::model::{Resume, WalletChangeSet, WalletId};

/// Every put and delete of `changes` for `wallet`, each value encoded (checked against `limit`).
pub fn changeset_ops(wallet: &WalletId, changes: &WalletChangeSet, limit: usize) -> Result<Vec<WriteOp>> {
    let mut ops = Vec::new();
    changes.encode_into(wallet, limit, &mut |store, key, value| {
        ops.push(match value {
            Some(value) => WriteOp::Put { store, key, value },
            None => WriteOp::Delete { store, key },
        })
    })?;
    Ok(ops)
}

/// The write of a flush: every wallet's changes as rows, each value encoded (checked against
/// `limit`) only when the backend pulls it, so a flush never holds all of its encoded rows at
/// once. Store by store; within a store, wallet by wallet, each wallet's identity cascades (see
/// [`integrity::cascade_ops`]) before its rows.
pub struct FlushSource<'a> {
    wallets: Vec<(WalletId, &'a WalletChangeSet)>,
    limit: usize,
}

impl<'a> FlushSource<'a> {
    /// The flush of `wallets`' changes.
    pub fn new(wallets: impl IntoIterator<Item = (WalletId, &'a WalletChangeSet)>, limit: usize) -> Self {
        FlushSource { wallets: wallets.into_iter().collect(), limit }
    }
}

impl WriteSource for FlushSource<'_> {
    fn stores(&self) -> Vec<&'static str> {
        let mut stores = BTreeSet::new();
        for (wallet, changes) in &self.wallets {
            stores.extend(
                changes.area_counts().into_iter().filter(|(_, entries, _)| *entries > 0).map(|(store, ..)| store),
            );
            stores.extend(integrity::cascade_ops(wallet, changes).iter().map(WriteOp::store));
        }
        stores.into_iter().collect()
    }

    fn strict(&self) -> bool {
        false
    }

    fn stream(&self) -> Ops<'_> {
        Box::new(FlushOps { source: self, stores: self.stores(), store: 0, wallet: 0, entry: 0, made: VecDeque::new() })
    }
}

/// Bytes of values [`FlushOps`] encodes at a time (at least one row).
const ENCODE_BUDGET: usize = 64 << 10;

/// The ops of a [`FlushSource`], made a few rows at a time (up to [`ENCODE_BUDGET`] of values).
struct FlushOps<'a> {
    source: &'a FlushSource<'a>,
    /// What is left of the stores; emptied by a failure, which ends the ops.
    stores: Vec<&'static str>,
    store: usize,
    wallet: usize,
    /// Entries of the current wallet's area in the current store already made.
    entry: usize,
    made: VecDeque<WriteOp>,
}

impl<'a> Iterator for FlushOps<'a> {
    type Item = Result<Cow<'a, WriteOp>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(op) = self.made.pop_front() {
                return Some(Ok(Cow::Owned(op)));
            }
            let store = *self.stores.get(self.store)?;
            let Some((wallet, changes)) = self.source.wallets.get(self.wallet) else {
                (self.store, self.wallet) = (self.store + 1, 0);
                continue;
            };
            if self.entry == 0 {
                let cascades = integrity::cascade_ops(wallet, changes).into_iter();
                self.made.extend(cascades.filter(|op| op.store() == store));
            }
            let made = &mut self.made;
            let from = Resume { entry: self.entry, budget: ENCODE_BUDGET };
            let handed = changes.encode_store_from(wallet, store, self.source.limit, from, &mut |store, key, value| {
                made.push_back(match value {
                    Some(value) => WriteOp::Put { store, key, value },
                    None => WriteOp::Delete { store, key },
                })
            });
            match handed {
                Ok(0) => (self.wallet, self.entry) = (self.wallet + 1, 0),
                Ok(handed) => self.entry += handed,
                Err(error) => {
                    self.stores.clear();
                    self.made.clear();
                    return Some(Err(error));
                }
            }
        }
    }
}

//! A wallet changeset as rows: the puts and deletes a flush issues.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::integrity;
use crate::backend::{Ops, WriteOp, WriteSource};
use crate::error::Result;
use crate::model::{WalletChangeSet, WalletId};

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
            stores.extend(changes.area_writes().into_iter().map(|(store, _)| store));
            stores.extend(integrity::cascade_ops(wallet, changes).iter().map(WriteOp::store));
        }
        stores.into_iter().collect()
    }

    fn strict(&self) -> bool {
        false
    }

    fn stream(&self) -> Ops<'_> {
        Box::new(self.stores().into_iter().flat_map(move |store| {
            self.wallets.iter().flat_map(move |(wallet, changes)| {
                let mut cascades = integrity::cascade_ops(wallet, changes);
                cascades.retain(|op| op.store() == store);
                let rows = changes.store_rows(wallet, store, self.limit).map(move |row| {
                    row.map(|(key, value)| {
                        Cow::Owned(match value {
                            Some(value) => WriteOp::Put { store, key, value },
                            None => WriteOp::Delete { store, key },
                        })
                    })
                });
                cascades.into_iter().map(|op| Ok(Cow::Owned(op))).chain(rows)
            })
        }))
    }
}

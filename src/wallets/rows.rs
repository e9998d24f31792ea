//! A wallet changeset as rows: the puts and deletes a flush issues.

use crate::backend::WriteOp;
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

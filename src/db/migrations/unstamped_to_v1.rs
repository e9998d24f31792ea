//! Unstamped → V1: V1 rows were written before `db_meta` held a stamp, so only the stamp is new.

use crate::backend::{Backend, WriteOp};
use crate::error::Result;

/// No data changes.
pub async fn ops<B: Backend>(_backend: &B) -> Result<Vec<WriteOp>> {
    Ok(Vec::new())
}

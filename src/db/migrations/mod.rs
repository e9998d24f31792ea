//! One file per schema step. Each step returns the data changes that move a database from one
//! version to the next; the gate adds the new stamp and writes both in one transaction.

mod unstamped_to_v1;

use crate::backend::{Backend, WriteOp};
use crate::db::schema::Version;
use crate::error::{Error, Result};

/// The data changes that move a database from `from` to `from.next()`.
pub async fn step<B: Backend>(backend: &B, from: Version) -> Result<Vec<WriteOp>> {
    match from {
        Version::Unstamped => unstamped_to_v1::ops(backend).await,
        Version::V1 => Err(Error::Internal("no migration beyond the current version".into())),
    }
}

//! The schema gate run at open: the database's schema version lives in `db_meta` under the key
//! `["schema"]`, as the schema version in the header of that row's envelope.
//!
//! - newer than this build → refused with `SchemaVersionUnsupported` before anything is written;
//! - older → migrated forward one version at a time, each step in one transaction that also
//!   stamps the new version, so a failed step leaves the database at the previous version and
//!   readable;
//! - the current version → nothing is written.

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, WriteBatch, WriteOp};
use crate::codec::{self, MAX_BLOB_BYTES, SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::log::log_at;
use crate::model::{Key, KeyPart};

pub use crate::layout::DB_META;

/// The key of the schema stamp in `db_meta`.
pub fn stamp_key() -> Key {
    vec![KeyPart::Text("schema".into())]
}

/// Schema versions of the stored data, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// No stamp: a new database, or one written before `db_meta` recorded a version. Its rows
    /// are V1 rows.
    Unstamped = 0,
    /// The first stamped schema: one object store per area, envelopes as values.
    V1 = 1,
}

impl Version {
    /// The version this build writes.
    pub const CURRENT: Version = Version::V1;

    fn from_number(number: u16) -> Option<Version> {
        match number {
            1 => Some(Version::V1),
            _ => None,
        }
    }

    /// The version as stored in `db_meta` and envelope headers.
    pub fn number(self) -> u16 {
        self as u16
    }

    /// The next version, for every version older than `CURRENT`.
    pub(crate) fn next(self) -> Version {
        match self {
            Version::Unstamped => Version::V1,
            Version::V1 => Version::V1,
        }
    }
}

const _: () = assert!(Version::CURRENT as u16 == SCHEMA_VERSION);

/// The payload of the stamp (the version itself is the envelope header's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stamp {
    /// Which build wrote the stamp, for diagnostics.
    writer: String,
}

/// What the gate found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateOutcome {
    /// The version of the database now.
    pub version: Version,
    /// The version found, when the database was migrated.
    pub migrated_from: Option<Version>,
}

/// Reads the stamp: `Unstamped` when absent, an error when newer than this build or unreadable.
pub async fn stored_version<B: Backend>(backend: &B) -> Result<Version> {
    let mut read = backend.read(&[DB_META]).await?;
    let rows = read.pop().ok_or_else(|| Error::Internal("db_meta read returned nothing".into()))??;
    let key = stamp_key();
    let Some(row) = rows.rows.iter().find(|row| row.key == key) else {
        return Ok(Version::Unstamped);
    };
    let number = codec::schema_version(&row.value)?;
    if number > SCHEMA_VERSION {
        return Err(Error::SchemaVersionUnsupported { found: number, supported: SCHEMA_VERSION });
    }
    codec::decode::<Stamp>(&row.value, MAX_BLOB_BYTES)
        .map_err(|e| Error::BlobDecode(format!("the schema stamp in db_meta is unreadable: {e}")))?;
    Version::from_number(number)
        .ok_or_else(|| Error::BlobDecode(format!("the schema stamp in db_meta names unknown version {number}")))
}

fn stamp_op(version: Version) -> Result<WriteOp> {
    let stamp = Stamp { writer: concat!("wallet-persist ", env!("CARGO_PKG_VERSION")).into() };
    let value = codec::encode_as(&stamp, version.number(), MAX_BLOB_BYTES)?;
    Ok(WriteOp::Put { store: DB_META, key: stamp_key(), value })
}

/// Refuses a newer database, migrates an older one forward (unless `read_only`), and leaves a
/// current one untouched.
pub async fn gate<B: Backend>(backend: &B, read_only: bool) -> Result<GateOutcome> {
    let found = stored_version(backend).await?;
    let mut version = found;
    while version < Version::CURRENT && !read_only {
        let next = version.next();
        let mut ops = super::migrations::step(backend, version).await?;
        ops.push(stamp_op(next)?);
        backend.write(&WriteBatch::new(ops)).await?;
        log_at!(Info, "database schema moved from version {} to {}", version.number(), next.number());
        version = next;
    }
    let migrated_from = (found != version).then_some(found);
    Ok(GateOutcome { version, migrated_from })
}

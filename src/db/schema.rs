//! The schema gate run at open: the database's schema version lives in `db_meta` under the key
//! `["schema"]`, as the schema version in the header of that row's envelope.
//!
//! - newer than this build → opened under the rollback floors that database recorded (below), or
//!   refused with `SchemaVersionUnsupported` before anything is written;
//! - older → migrated forward one version at a time, each step in one transaction that also
//!   stamps the new version, so a failed step leaves the database at the previous version and
//!   readable;
//! - the current version → nothing is written.
//!
//! Rollback floors (as SQLite's header keeps a read and a write version): next to the stamp,
//! `db_meta` holds `["floors"]`, the oldest schema version whose builds may still read the database
//! and the oldest that may still write it. A build older than the stamp opens the database
//! read-write when its version is at least the write floor, read-only when it is at least the read
//! floor (every write then rejects `SchemaVersionUnsupported`), and refuses it otherwise, changing
//! nothing; a newer database without floors is refused. The floors row is frozen forever:
//! envelope version 1, payload exactly [`Floors`], so every build can read it. A schema that sets
//! its read floor to R promises that the rows builds of R read are still written so that R decodes
//! them (envelope version at most R); the stamp itself is never lowered by an older build.

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

/// The key of the rollback floors in `db_meta`.
pub fn floors_key() -> Key {
    vec![KeyPart::Text("floors".into())]
}

/// The envelope version of the floors row, frozen forever.
const FLOORS_FORMAT: u16 = 1;

/// The oldest schema versions whose builds may still read and write a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floors {
    /// Builds of this schema version or newer may read the database.
    pub read: u16,
    /// Builds of this schema version or newer may write it.
    pub write: u16,
}

impl Floors {
    /// What the current schema promises: the first schema whose builds can read and write its data.
    pub const CURRENT: Floors = Floors { read: 1, write: 1 };
}

/// What this build may do with an open database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write (a database of this build's schema or older, or a newer one whose write
    /// floor allows it).
    ReadWrite,
    /// Read only: a newer database whose read floor allows this build but whose write floor does not.
    ReadOnly,
}

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
    /// The version of the database now (this build's, for a newer database opened under its floors).
    pub version: Version,
    /// The version found, when the database was migrated.
    pub migrated_from: Option<Version>,
    /// The stamped version, when it is newer than this build's (opened under its rollback floors).
    pub newer: Option<u16>,
    /// What this build may do with the database.
    pub access: Access,
}

impl GateOutcome {
    /// Refuses a write when the database's floors allow this build only to read it.
    pub fn check_writable(&self) -> Result<()> {
        match (self.access, self.newer) {
            (Access::ReadOnly, Some(found)) => {
                Err(Error::SchemaVersionUnsupported { found, supported: SCHEMA_VERSION })
            }
            _ => Ok(()),
        }
    }
}

/// What the stamp says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamped {
    /// A version this build knows (`Unstamped` when there is no stamp).
    Known(Version),
    /// A newer version, with the rollback floors its database recorded (`None`: none recorded).
    Newer {
        /// The stamped version.
        found: u16,
        /// The floors row, if any.
        floors: Option<Floors>,
    },
}

/// Reads the stamp (and, for a newer database, the rollback floors).
pub async fn read_stamp<B: Backend>(backend: &B) -> Result<Stamped> {
    let mut read = backend.read(&[DB_META]).await?;
    let rows = read.pop().ok_or_else(|| Error::Internal("db_meta read returned nothing".into()))??;
    let find = |key: Key| rows.rows.iter().find(|row| row.key == key);
    let Some(row) = find(stamp_key()) else {
        return Ok(Stamped::Known(Version::Unstamped));
    };
    let number = codec::schema_version(&row.value)?;
    if number > SCHEMA_VERSION {
        let floors = match find(floors_key()) {
            Some(row) => Some(
                codec::decode::<Floors>(&row.value, MAX_BLOB_BYTES)
                    .map_err(|e| Error::BlobDecode(format!("the rollback floors in db_meta are unreadable: {e}")))?,
            ),
            None => None,
        };
        return Ok(Stamped::Newer { found: number, floors });
    }
    codec::decode::<Stamp>(&row.value, MAX_BLOB_BYTES)
        .map_err(|e| Error::BlobDecode(format!("the schema stamp in db_meta is unreadable: {e}")))?;
    Version::from_number(number)
        .map(Stamped::Known)
        .ok_or_else(|| Error::BlobDecode(format!("the schema stamp in db_meta names unknown version {number}")))
}

/// Reads the stamp: `Unstamped` when absent, an error when newer than this build or unreadable.
pub async fn stored_version<B: Backend>(backend: &B) -> Result<Version> {
    match read_stamp(backend).await? {
        Stamped::Known(version) => Ok(version),
        Stamped::Newer { found, .. } => Err(Error::SchemaVersionUnsupported { found, supported: SCHEMA_VERSION }),
    }
}

/// The floors row holding `floors`.
pub fn floors_op(floors: Floors) -> Result<WriteOp> {
    let value = codec::encode_as(&floors, FLOORS_FORMAT, MAX_BLOB_BYTES)?;
    Ok(WriteOp::Put { store: DB_META, key: floors_key(), value })
}

/// The stamp of `version` and the current schema's rollback floors, written together.
fn stamp_ops(version: Version) -> Result<[WriteOp; 2]> {
    let stamp = Stamp { writer: concat!("wallet-persist ", env!("CARGO_PKG_VERSION")).into() };
    let value = codec::encode_as(&stamp, version.number(), MAX_BLOB_BYTES)?;
    Ok([WriteOp::Put { store: DB_META, key: stamp_key(), value }, floors_op(Floors::CURRENT)?])
}

/// Whether a build of this schema may open a newer database with `floors`, and how.
fn rollback_access(found: u16, floors: Option<Floors>) -> Result<Access> {
    let refused = Error::SchemaVersionUnsupported { found, supported: SCHEMA_VERSION };
    match floors {
        Some(floors) if floors.write <= SCHEMA_VERSION => Ok(Access::ReadWrite),
        Some(floors) if floors.read <= SCHEMA_VERSION => Ok(Access::ReadOnly),
        _ => Err(refused),
    }
}

/// Refuses with `SchemaVersionUnsupported`, reading only the stamp, a database this build may not
/// write: one stamped by a newer schema whose floors refuse this build or let it only read. A
/// write that runs before the gate (the key record of a new encrypted database) checks this
/// first, so the gate's refusal never finds something written.
pub async fn check_may_write<B: Backend>(backend: &B) -> Result<()> {
    match read_stamp(backend).await? {
        Stamped::Known(_) => Ok(()),
        Stamped::Newer { found, floors } => match rollback_access(found, floors)? {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly => Err(Error::SchemaVersionUnsupported { found, supported: SCHEMA_VERSION }),
        },
    }
}

/// Opens a newer database under its rollback floors (or refuses it, writing nothing), migrates an
/// older one forward (unless `read_only`), and leaves a current one untouched.
pub async fn gate<B: Backend>(backend: &B, read_only: bool) -> Result<GateOutcome> {
    let found = match read_stamp(backend).await? {
        Stamped::Known(version) => version,
        Stamped::Newer { found, floors } => {
            let access = rollback_access(found, floors)?;
            log_at!(
                Warn,
                "database schema {found} is newer than this build's {SCHEMA_VERSION}; its floors allow {}",
                if access == Access::ReadWrite { "reading and writing" } else { "reading only" }
            );
            return Ok(GateOutcome { version: Version::CURRENT, migrated_from: None, newer: Some(found), access });
        }
    };
    let mut version = found;
    while version < Version::CURRENT && !read_only {
        let next = version.next();
        let mut ops = super::migrations::step(backend, version).await?;
        ops.extend(stamp_ops(next)?);
        backend.write(&WriteBatch::new(ops)).await?;
        log_at!(Info, "database schema moved from version {} to {}", version.number(), next.number());
        version = next;
    }
    let migrated_from = (found != version).then_some(found);
    Ok(GateOutcome { version, migrated_from, newer: None, access: Access::ReadWrite })
}

//! The one error enum of wallet-persist, its stable numeric codes and its transient/fatal split.

use std::fmt;

use crate::model::WalletId;

/// Every failure wallet-persist reports. Codes and kinds are stable forever (see [`Error::code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad input from the caller; nothing was staged or written.
    InvalidArgument(String),
    /// The wallet does not exist (code 2).
    WalletNotFound(WalletId),
    /// A write to a wallet whose delete is in progress (code 2: the wallet is going away).
    WalletBeingDeleted(WalletId),
    /// Registration of a wallet that exists or is pending (code 3).
    WalletAlreadyExists(WalletId),
    /// A flush failed transiently; the named wallets' changes are staged again and a retry can land them.
    FlushRetryable {
        /// The wallets staged again.
        wallets: Vec<WalletId>,
        /// The transient storage error behind it.
        cause: Box<Error>,
    },
    /// A flush failed fatally for the named wallets; their taken changesets were dropped.
    FlushFailed {
        /// The wallets whose changes were dropped.
        wallets: Vec<WalletId>,
        /// The fatal error behind it.
        cause: Box<Error>,
    },
    /// The origin is out of storage (code 5, transient: the changes stay staged).
    QuotaExceeded(String),
    /// IndexedDB is missing or refused (private mode, disabled storage, sandboxed frame).
    StorageUnavailable(String),
    /// The browser closed the database under us (code 7, transient; reconnected once).
    ConnectionLost(String),
    /// Another connection upgraded or deleted the database, so ours was closed (code 7);
    /// `reopen` the store to continue. Not reconnected automatically.
    ClosedByUpgrade(String),
    /// An upgrade stayed blocked by another connection past the open timeout (code 8).
    UpgradeBlocked(String),
    /// Data written by a newer schema than this build reads (code 9); nothing was written.
    SchemaVersionUnsupported {
        /// The version found.
        found: u16,
        /// The newest version this build reads.
        supported: u16,
    },
    /// A value over the byte limit (code 10), on write or as a length prefix on read.
    BlobTooLarge {
        /// The (claimed) length in bytes.
        len: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A stored value is corrupt: bad magic, flags, length, trailing bytes, or payload (code 11).
    BlobDecode(String),
    /// A value names another wallet than the one it is stored under (code 12).
    WalletIdMismatch {
        /// The wallet it is stored under.
        expected: WalletId,
        /// The wallet it names.
        found: WalletId,
    },
    /// A value's own key differs from the key it is stored under (code 13).
    EntryMismatch(String),
    /// A backup failed validation; the message names the first problem (code 14).
    BackupInvalid(String),
    /// An import into a database with rows, without `overwrite` (code 15).
    BackupDestinationNotEmpty,
    /// Another instance is the writer of this database (code 16).
    AlreadyOpen(String),
    /// A write on a read-only follower store (code 16: another instance is the writer).
    ReadOnlyFollower(String),
    /// `promote` with nothing pending for the wallet (code 17).
    PendingRegistrationMissing(WalletId),
    /// An open or a wait took longer than allowed (code 18, transient).
    Timeout(String),
    /// A coordinator did not stop in time for a wipe; nothing was deleted (code 19, transient).
    ShutdownIncomplete(String),
    /// The store or registry is closed (code 20).
    Closed,
    /// A transaction aborted without a more specific cause (contention, a browser hiccup).
    TransactionAborted(String),
    /// A bug in wallet-persist or an unexpected browser response.
    Internal(String),
}

/// Whether a failure may succeed on retry (`Transient`) or will fail again (`Fatal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// May succeed on retry; nothing staged was lost.
    Transient,
    /// Will fail again.
    Fatal,
}

impl Error {
    /// The stable numeric code surfaced to JS.
    pub fn code(&self) -> u16 {
        match self {
            Error::InvalidArgument(_) => 1,
            Error::WalletNotFound(_) | Error::WalletBeingDeleted(_) => 2,
            Error::WalletAlreadyExists(_) => 3,
            Error::FlushRetryable { .. } => 4,
            Error::FlushFailed { cause, .. } => cause.code(),
            Error::QuotaExceeded(_) => 5,
            Error::StorageUnavailable(_) => 6,
            Error::ConnectionLost(_) | Error::ClosedByUpgrade(_) => 7,
            Error::UpgradeBlocked(_) => 8,
            Error::SchemaVersionUnsupported { .. } => 9,
            Error::BlobTooLarge { .. } => 10,
            Error::BlobDecode(_) => 11,
            Error::WalletIdMismatch { .. } => 12,
            Error::EntryMismatch(_) => 13,
            Error::BackupInvalid(_) => 14,
            Error::BackupDestinationNotEmpty => 15,
            Error::AlreadyOpen(_) | Error::ReadOnlyFollower(_) => 16,
            Error::PendingRegistrationMissing(_) => 17,
            Error::Timeout(_) => 18,
            Error::ShutdownIncomplete(_) => 19,
            Error::Closed => 20,
            Error::TransactionAborted(_) => 21,
            Error::Internal(_) => 99,
        }
    }

    /// The stable snake_case kind tag surfaced to JS.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "invalid_argument",
            Error::WalletNotFound(_) | Error::WalletBeingDeleted(_) => "wallet_not_found",
            Error::WalletAlreadyExists(_) => "wallet_already_exists",
            Error::FlushRetryable { .. } => "flush_retryable",
            Error::FlushFailed { cause, .. } => cause.kind(),
            Error::QuotaExceeded(_) => "quota_exceeded",
            Error::StorageUnavailable(_) => "storage_unavailable",
            Error::ConnectionLost(_) | Error::ClosedByUpgrade(_) => "connection_lost",
            Error::UpgradeBlocked(_) => "upgrade_blocked",
            Error::SchemaVersionUnsupported { .. } => "schema_version_unsupported",
            Error::BlobTooLarge { .. } => "blob_too_large",
            Error::BlobDecode(_) => "blob_decode",
            Error::WalletIdMismatch { .. } => "wallet_id_mismatch",
            Error::EntryMismatch(_) => "entry_mismatch",
            Error::BackupInvalid(_) => "backup_invalid",
            Error::BackupDestinationNotEmpty => "backup_destination_not_empty",
            Error::AlreadyOpen(_) | Error::ReadOnlyFollower(_) => "already_open",
            Error::PendingRegistrationMissing(_) => "pending_registration_missing",
            Error::Timeout(_) => "timeout",
            Error::ShutdownIncomplete(_) => "shutdown_incomplete",
            Error::Closed => "closed",
            Error::TransactionAborted(_) => "transaction_aborted",
            Error::Internal(_) => "internal",
        }
    }

    /// Transient failures keep the buffer; fatal ones drop what they were about.
    pub fn severity(&self) -> Severity {
        use Severity::*;
        match self {
            Error::FlushRetryable { .. }
            | Error::QuotaExceeded(_)
            | Error::ConnectionLost(_)
            | Error::ClosedByUpgrade(_)
            | Error::UpgradeBlocked(_)
            | Error::Timeout(_)
            | Error::ShutdownIncomplete(_)
            | Error::TransactionAborted(_) => Transient,
            Error::FlushFailed { cause, .. } => cause.severity(),
            Error::InvalidArgument(_)
            | Error::WalletNotFound(_)
            | Error::WalletBeingDeleted(_)
            | Error::WalletAlreadyExists(_)
            | Error::StorageUnavailable(_)
            | Error::SchemaVersionUnsupported { .. }
            | Error::BlobTooLarge { .. }
            | Error::BlobDecode(_)
            | Error::WalletIdMismatch { .. }
            | Error::EntryMismatch(_)
            | Error::BackupInvalid(_)
            | Error::BackupDestinationNotEmpty
            | Error::AlreadyOpen(_)
            | Error::ReadOnlyFollower(_)
            | Error::PendingRegistrationMissing(_)
            | Error::Closed
            | Error::Internal(_) => Fatal,
        }
    }

    /// `true` when a retry may succeed (the JS `retryable` flag).
    pub fn is_transient(&self) -> bool {
        self.severity() == Severity::Transient
    }

    /// The wallets this error is about, when it names any.
    pub fn wallet_ids(&self) -> Vec<WalletId> {
        match self {
            Error::FlushRetryable { wallets, .. } | Error::FlushFailed { wallets, .. } => wallets.clone(),
            Error::WalletNotFound(id)
            | Error::WalletBeingDeleted(id)
            | Error::WalletAlreadyExists(id)
            | Error::PendingRegistrationMissing(id) => vec![*id],
            Error::WalletIdMismatch { expected, .. } => vec![*expected],
            _ => Vec::new(),
        }
    }

    /// Classifies a DOMException (or `Error`) name raised by IndexedDB.
    ///
    /// `UnknownError` and `InvalidStateError` are what Chromium raises after the connection closed
    /// under us; WebKit says "Connection to Indexed Database server lost" in the message.
    pub fn from_dom_exception(name: &str, message: &str) -> Error {
        let text = format!("{name}: {message}");
        if message.contains("Connection to Indexed Database server lost") {
            return Error::ConnectionLost(text);
        }
        match name {
            "QuotaExceededError" => Error::QuotaExceeded(text),
            "UnknownError" | "InvalidStateError" => Error::ConnectionLost(text),
            "AbortError" | "TransactionInactiveError" => Error::TransactionAborted(text),
            "TimeoutError" => Error::Timeout(text),
            "UpgradeBlockedError" => Error::UpgradeBlocked(text),
            "SecurityError" | "NotAllowedError" | "NotSupportedError" => Error::StorageUnavailable(text),
            "NotReadableError" => Error::BlobDecode(text),
            "VersionError" => Error::SchemaVersionUnsupported { found: 0, supported: crate::codec::SCHEMA_VERSION },
            _ => Error::Internal(text),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::WalletNotFound(id) => write!(f, "wallet {id} not found"),
            Error::WalletBeingDeleted(id) => write!(f, "wallet {id} is being deleted; the change was not staged"),
            Error::WalletAlreadyExists(id) => write!(f, "wallet {id} already exists"),
            Error::FlushRetryable { wallets, cause } => {
                write!(f, "flush failed transiently for {} wallet(s), changes kept staged: {cause}", wallets.len())
            }
            Error::FlushFailed { wallets, cause } => {
                write!(f, "flush failed for {} wallet(s), their changes were dropped: {cause}", wallets.len())
            }
            Error::QuotaExceeded(m) => write!(f, "storage quota exceeded: {m}"),
            Error::StorageUnavailable(m) => write!(f, "IndexedDB unavailable: {m}"),
            Error::ConnectionLost(m) => write!(f, "connection to IndexedDB lost: {m}"),
            Error::ClosedByUpgrade(name) => {
                write!(f, "database {name} was closed because another tab upgraded or deleted it; reopen the store")
            }
            Error::UpgradeBlocked(m) => write!(f, "database upgrade blocked by another tab: {m}"),
            Error::SchemaVersionUnsupported { found, supported } => {
                write!(f, "schema version {found} is newer than the supported {supported}")
            }
            Error::BlobTooLarge { len, limit } => write!(f, "blob of {len} bytes exceeds the limit of {limit} bytes"),
            Error::BlobDecode(m) => write!(f, "blob decode failed: {m}"),
            Error::WalletIdMismatch { expected, found } => {
                write!(f, "entry belongs to wallet {found}, not to wallet {expected}")
            }
            Error::EntryMismatch(m) => write!(f, "entry key mismatch: {m}"),
            Error::BackupInvalid(m) => write!(f, "backup invalid: {m}"),
            Error::BackupDestinationNotEmpty => write!(f, "backup destination is not empty"),
            Error::AlreadyOpen(m) => write!(f, "already open: {m}"),
            Error::ReadOnlyFollower(name) => {
                write!(f, "this store is a read-only follower: another instance is the writer of {name}")
            }
            Error::PendingRegistrationMissing(id) => write!(f, "no pending registration for wallet {id}"),
            Error::Timeout(m) => write!(f, "timed out: {m}"),
            Error::ShutdownIncomplete(m) => write!(f, "shutdown incomplete: {m}"),
            Error::Closed => write!(f, "the store is closed"),
            Error::TransactionAborted(m) => write!(f, "transaction aborted: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
        /// Wallets whose changes the same flush dropped after a fatal failure (also in the
        /// commit report's `failed`): a retry does not bring them back.
        dropped: Vec<WalletId>,
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
    /// An open or a wait took longer than allowed, or a backend call made no progress for the
    /// deadline (code 18, transient).
    Timeout(String),
    /// A coordinator did not stop in time for a wipe; nothing was deleted (code 19, transient).
    ShutdownIncomplete(String),
    /// The store or registry is closed (code 20).
    Closed,
    /// A transaction aborted without a more specific cause (contention, a browser hiccup).
    TransactionAborted(String),
    /// A row without its parent: a wallet row without the wallet record, an identity key or token
    /// balance without its identity (code 22). A flush refuses it for that wallet; `load` skips it.
    OrphanRow(String),
    /// The passphrase or key does not unlock this encrypted database, or none was given (code 23);
    /// nothing was read or written.
    WrongKey(String),
    /// A key was given for a database that is not encrypted (code 1: open it without
    /// `encryption`, then `encrypt` it); nothing was written.
    NotEncrypted(String),
    /// A bug in wallet-persist or an unexpected browser response.
    Internal(String),
}

/// THE error table: every stable code once, with its kind tag, whether it is retryable, and what
/// it means to a caller. Expanded by [`Code`] here and by the JS `ErrorCode` enum; the TypeScript
/// `ErrorKind` union is checked against it by a test. Codes are stable forever: add, never renumber.
#[macro_export]
#[doc(hidden)]
macro_rules! error_table {
    ($then:ident) => {
        $then! {
            InvalidArgument = 1, "invalid_argument", false,
                "Wrong JS type, malformed id or key, unknown field, number out of range; nothing staged.";
            WalletNotFound = 2, "wallet_not_found", false,
                "The wallet is being deleted (or does not exist).";
            WalletAlreadyExists = 3, "wallet_already_exists", false,
                "`registerWallet`/`storePending` for a wallet that exists or is pending.";
            FlushRetryable = 4, "flush_retryable", true,
                "A flush failed transiently; `walletIds` are staged again. Retryable.";
            QuotaExceeded = 5, "quota_exceeded", true,
                "The origin is out of storage. Retryable.";
            StorageUnavailable = 6, "storage_unavailable", false,
                "No IndexedDB here (private mode, disabled storage, sandboxed frame).";
            ConnectionLost = 7, "connection_lost", true,
                "The browser closed the database, or another tab upgraded it (`reopen()`). Retryable.";
            UpgradeBlocked = 8, "upgrade_blocked", true,
                "An upgrade stayed blocked by another tab for `openTimeoutMs`. Retryable.";
            SchemaVersionUnsupported = 9, "schema_version_unsupported", false,
                "Data written by a newer wallet-persist; nothing was written.";
            BlobTooLarge = 10, "blob_too_large", false,
                "A value over the byte limit.";
            BlobDecode = 11, "blob_decode", false,
                "A stored value is corrupt.";
            WalletIdMismatch = 12, "wallet_id_mismatch", false,
                "A value names another wallet than the one it is stored under.";
            EntryMismatch = 13, "entry_mismatch", false,
                "A value's own key differs from the key it is stored under.";
            BackupInvalid = 14, "backup_invalid", false,
                "A backup failed validation (the message names the first problem).";
            BackupDestinationNotEmpty = 15, "backup_destination_not_empty", false,
                "`importBackup` into a database with rows, without `overwrite: true`.";
            AlreadyOpen = 16, "already_open", false,
                "Another instance is the writer of this database (or a write on a read-only follower).";
            PendingRegistrationMissing = 17, "pending_registration_missing", false,
                "`promote` with nothing pending.";
            Timeout = 18, "timeout", true,
                "Open (or `multiTab: \"wait\"`) took longer than `openTimeoutMs`, or a write, read or reconnect made no progress for `timeoutMs`. Retryable.";
            ShutdownIncomplete = 19, "shutdown_incomplete", true,
                "A coordinator did not stop in time for a delete; nothing was deleted. Retryable.";
            Closed = 20, "closed", false,
                "The store is closed.";
            TransactionAborted = 21, "transaction_aborted", true,
                "IndexedDB aborted the transaction without a more specific cause. Retryable.";
            OrphanRow = 22, "orphan_row", false,
                "A row without its parent (a wallet row without its wallet record, an identity key or token balance without its identity).";
            WrongKey = 23, "wrong_key", false,
                "The passphrase or key does not unlock this encrypted database (or none was given); nothing was read or written.";
            Internal = 99, "internal", false,
                "A bug in wallet-persist; please report it.";
        }
    };
}

macro_rules! define_code {
    ($( $name:ident = $number:literal, $kind:literal, $retryable:literal, $doc:literal; )*) => {
        /// A stable error code: one row of the error table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( #[doc = $doc] $name = $number, )*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The stable number surfaced to JS.
            pub fn number(self) -> u16 {
                self as u16
            }

            /// The stable snake_case kind tag surfaced to JS.
            pub fn kind(self) -> &'static str {
                match self { $( Code::$name => $kind, )* }
            }

            /// Whether a retry may succeed.
            pub fn retryable(self) -> bool {
                match self { $( Code::$name => $retryable, )* }
            }
        }
    };
}

error_table!(define_code);

/// Whether a failure may succeed on retry (`Transient`) or will fail again (`Fatal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// May succeed on retry; nothing staged was lost.
    Transient,
    /// Will fail again.
    Fatal,
}

impl Error {
    /// The row of the error table this error reports as: one exhaustive match, no wildcard, so a
    /// new variant cannot compile unclassified. A fatal flush reports its cause's code.
    pub fn code_row(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::WalletNotFound(_) | Error::WalletBeingDeleted(_) => Code::WalletNotFound,
            Error::WalletAlreadyExists(_) => Code::WalletAlreadyExists,
            Error::FlushRetryable { .. } => Code::FlushRetryable,
            Error::FlushFailed { cause, .. } => cause.code_row(),
            Error::QuotaExceeded(_) => Code::QuotaExceeded,
            Error::StorageUnavailable(_) => Code::StorageUnavailable,
            Error::ConnectionLost(_) | Error::ClosedByUpgrade(_) => Code::ConnectionLost,
            Error::UpgradeBlocked(_) => Code::UpgradeBlocked,
            Error::SchemaVersionUnsupported { .. } => Code::SchemaVersionUnsupported,
            Error::BlobTooLarge { .. } => Code::BlobTooLarge,
            Error::BlobDecode(_) => Code::BlobDecode,
            Error::WalletIdMismatch { .. } => Code::WalletIdMismatch,
            Error::EntryMismatch(_) => Code::EntryMismatch,
            Error::BackupInvalid(_) => Code::BackupInvalid,
            Error::BackupDestinationNotEmpty => Code::BackupDestinationNotEmpty,
            Error::AlreadyOpen(_) | Error::ReadOnlyFollower(_) => Code::AlreadyOpen,
            Error::PendingRegistrationMissing(_) => Code::PendingRegistrationMissing,
            Error::Timeout(_) => Code::Timeout,
            Error::ShutdownIncomplete(_) => Code::ShutdownIncomplete,
            Error::Closed => Code::Closed,
            Error::TransactionAborted(_) => Code::TransactionAborted,
            Error::OrphanRow(_) => Code::OrphanRow,
            Error::WrongKey(_) => Code::WrongKey,
            Error::NotEncrypted(_) => Code::InvalidArgument,
            Error::Internal(_) => Code::Internal,
        }
    }

    /// The stable numeric code surfaced to JS.
    pub fn code(&self) -> u16 {
        self.code_row().number()
    }

    /// The stable snake_case kind tag surfaced to JS.
    pub fn kind(&self) -> &'static str {
        self.code_row().kind()
    }

    /// Transient failures keep the buffer; fatal ones drop what they were about.
    pub fn severity(&self) -> Severity {
        if self.code_row().retryable() {
            Severity::Transient
        } else {
            Severity::Fatal
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::WalletNotFound(id) => write!(f, "wallet {id} not found"),
            Error::WalletBeingDeleted(id) => write!(f, "wallet {id} is being deleted; the change was not staged"),
            Error::WalletAlreadyExists(id) => write!(f, "wallet {id} already exists"),
            Error::FlushRetryable { wallets, cause, dropped } => {
                write!(f, "flush failed transiently for {} wallet(s), changes kept staged: {cause}", wallets.len())?;
                if !dropped.is_empty() {
                    write!(f, "; {} other wallet(s) failed fatally and their changes were dropped", dropped.len())?;
                }
                Ok(())
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
            Error::OrphanRow(m) => write!(f, "orphan row: {m}"),
            Error::WrongKey(m) => write!(f, "wrong key: {m}"),
            Error::NotEncrypted(m) => write!(f, "not encrypted: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_and_kinds_are_unique() {
        let mut numbers: Vec<u16> = Code::ALL.iter().map(|c| c.number()).collect();
        let mut kinds: Vec<&str> = Code::ALL.iter().map(|c| c.kind()).collect();
        numbers.dedup();
        kinds.sort();
        kinds.dedup();
        assert_eq!(numbers.len(), Code::ALL.len(), "numbers ascend in table order, never repeat");
        assert_eq!(kinds.len(), Code::ALL.len());
    }

    /// The hand-written TypeScript `ErrorKind` union (src/js/types.rs) lists exactly the table's kinds.
    #[test]
    fn typescript_error_kinds_match_the_table() {
        let table: Vec<&str> = Code::ALL.iter().map(|c| c.kind()).collect();
        assert_eq!(crate::layout::tests::typescript_union("ErrorKind"), table);
    }
}

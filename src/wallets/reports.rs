//! What the persister's operations report: per-wallet commit outcomes, load findings, open and
//! delete outcomes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::db::{Access, GateOutcome, Version};
use crate::error::{Error, Result};
use crate::layout::AREA_STORES;
use crate::model::WalletId;

/// Told the wallets a successful write touched (commit or delete).
pub type CommitObserver = Box<dyn Fn(&[WalletId])>;

/// One wallet whose flush failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletFailure {
    /// The wallet whose changes failed.
    pub wallet_id: WalletId,
    /// The stable code of the cause ([`Error::code`]).
    pub code: u16,
    /// The stable kind of the cause ([`Error::kind`]).
    pub kind: &'static str,
    /// Whether the cause is transient.
    pub retryable: bool,
    /// The cause, for people.
    pub message: String,
    /// The cause itself (not serialized to JS).
    #[serde(skip)]
    pub error: Error,
}

impl WalletFailure {
    pub(crate) fn new(wallet_id: WalletId, error: Error) -> Self {
        WalletFailure {
            wallet_id,
            code: error.code(),
            kind: error.kind(),
            retryable: error.is_transient(),
            message: error.to_string(),
            error,
        }
    }
}

/// The outcome of a commit, partitioned per wallet.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitReport {
    /// Durable now.
    pub succeeded: Vec<WalletId>,
    /// Failed fatally: their taken changesets were dropped.
    pub failed: Vec<WalletFailure>,
    /// Failed transiently: staged again (under any newer changes), a retry can land them.
    pub still_pending: Vec<WalletId>,
    /// Why `still_pending` is not empty.
    #[serde(skip)]
    pub retry_cause: Option<Error>,
}

impl CommitReport {
    /// `Ok` when every wallet landed; otherwise the error `flush` rejects with.
    pub fn into_result(self) -> Result<CommitReport> {
        if !self.still_pending.is_empty() {
            let cause = self.retry_cause.clone().unwrap_or_else(|| Error::Internal("no retry cause".into()));
            let dropped = self.failed.iter().map(|f| f.wallet_id).collect();
            return Err(Error::FlushRetryable { wallets: self.still_pending, cause: Box::new(cause), dropped });
        }
        if let Some(first) = self.failed.first() {
            let wallets = self.failed.iter().map(|f| f.wallet_id).collect();
            return Err(Error::FlushFailed { wallets, cause: Box::new(first.error.clone()) });
        }
        Ok(self)
    }
}

/// A row `load` could not use.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedRow {
    /// The object store the row is in.
    pub store: &'static str,
    /// The IndexedDB key, spelled as a JSON array.
    pub key: String,
    /// The stable code of the reason ([`Error::code`]).
    pub code: u16,
    /// The stable kind of the reason ([`Error::kind`]).
    pub kind: &'static str,
    /// Why the row was skipped, for people.
    pub reason: String,
}

impl SkippedRow {
    pub(crate) fn new(store: &'static str, key: String, error: &Error) -> Self {
        SkippedRow { store, key, code: error.code(), kind: error.kind(), reason: error.to_string() }
    }
}

/// What `load` found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    /// Wallets with at least one loaded row.
    pub wallets: u32,
    /// Rows loaded per area store, every area present (zero included).
    pub rows: BTreeMap<&'static str, u32>,
    /// Rows skipped per area store, every area present (zero included).
    pub skipped_rows: BTreeMap<&'static str, u32>,
    /// Rows that failed to decode or check, in store order, then by spelled key.
    pub skipped: Vec<SkippedRow>,
    /// Stores of which a bulk read request failed as a whole, its rows then read one by one (in
    /// the same transaction), so only the unreadable ones are skipped.
    pub scanned_stores: Vec<&'static str>,
    /// A load of chosen wallets: those that loaded nothing (no row on disk, or every row skipped,
    /// then in `skipped`). `None` (not serialized) for a load of every wallet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_found: Option<Vec<WalletId>>,
}

impl LoadReport {
    pub(crate) fn new() -> Self {
        let mut zeros = BTreeMap::new();
        zeros.extend(AREA_STORES.iter().map(|s| (*s, 0)));
        LoadReport { rows: zeros.clone(), skipped_rows: zeros, ..Default::default() }
    }

    pub(crate) fn skip(&mut self, store: &'static str, key: String, error: &Error) {
        *self.skipped_rows.entry(store).or_default() += 1;
        self.skipped.push(SkippedRow::new(store, key, error));
    }

    /// One line: wallets, then loaded/skipped rows per area.
    pub fn summary(&self) -> String {
        let areas: Vec<String> =
            self.rows.iter().map(|(store, n)| format!("{store} {n}/{}", self.skipped_rows[store])).collect();
        format!(
            "loaded {} wallet(s), {} row(s), skipped {} (loaded/skipped per area: {})",
            self.wallets,
            self.rows.values().sum::<u32>(),
            self.skipped.len(),
            areas.join(", ")
        )
    }
}

/// What `open` found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenReport {
    /// The database's schema version after open.
    pub schema_version: u16,
    /// The version the database was moved from, when open migrated or stamped it.
    pub migrated_from: Option<u16>,
    /// Unfinished registrations (stopped between stage and promote) discarded by this open.
    pub discarded_pending: Vec<WalletId>,
    /// `"readWrite"`, or `"readOnly"` for a newer database whose rollback floors let this build
    /// read it but not write it (writes reject `schema_version_unsupported`).
    pub access: &'static str,
}

impl From<GateOutcome> for OpenReport {
    fn from(outcome: GateOutcome) -> Self {
        OpenReport {
            schema_version: outcome.newer.unwrap_or(outcome.version.number()),
            migrated_from: outcome.migrated_from.map(Version::number),
            discarded_pending: Vec::new(),
            access: match outcome.access {
                Access::ReadWrite => "readWrite",
                Access::ReadOnly => "readOnly",
            },
        }
    }
}

/// The outcome of `deleteWallet`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteReport {
    /// The deleted wallet.
    pub wallet_id: WalletId,
    /// Staged (never flushed) fields of the wallet that the delete discarded.
    pub discarded_staged_fields: u32,
}

/// What was staged or queued and not written by `close`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotWritten {
    /// Wallets whose staged changes were dropped (a fatal final flush, or a registration `close`
    /// rolled back).
    pub wallets: Vec<WalletId>,
    /// Channels whose queued history changes could not be written.
    pub channels: Vec<String>,
}

impl NotWritten {
    /// Whether everything staged or queued was written.
    pub fn is_empty(&self) -> bool {
        self.wallets.is_empty() && self.channels.is_empty()
    }
}

/// The outcome of `close`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseReport {
    /// The final flush.
    pub flush: CommitReport,
    /// What was not written; empty when the close lost nothing.
    pub not_written: NotWritten,
    /// Registrations whose `init` was still running: rolled back (no row of them remains).
    pub aborted_registrations: Vec<WalletId>,
}

impl CloseReport {
    /// Whether everything staged or queued was written.
    pub fn is_complete(&self) -> bool {
        self.not_written.is_empty()
    }
}

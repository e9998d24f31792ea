//! The buffered, retry-safe persister, written once over the [`Backend`] trait.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::poll_fn;
use std::task::{Poll, Waker};

use serde::Serialize;

use crate::backend::{Backend, WriteBatch, WriteOp};
use crate::buffer::Buffer;
use crate::codec::MAX_BLOB_BYTES;
use crate::error::{Error, Result};
use crate::log::log_at;
use crate::model::{ClientStartState, Key, KeyPart, WalletChangeSet, WalletId, AREA_STORES};

/// When staged changes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// Changes stay staged until `flush` / `commit` / `close`.
    Manual,
    /// Every `store` flushes that wallet before it resolves.
    Immediate,
}

/// How a persister behaves.
#[derive(Debug, Clone)]
pub struct Options {
    pub flush_mode: FlushMode,
    /// Largest encoded value accepted, at most [`MAX_BLOB_BYTES`].
    pub max_blob_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { flush_mode: FlushMode::Manual, max_blob_bytes: MAX_BLOB_BYTES }
    }
}

/// One wallet whose flush failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletFailure {
    pub wallet_id: WalletId,
    pub code: u16,
    pub kind: &'static str,
    pub retryable: bool,
    pub message: String,
    #[serde(skip)]
    pub error: Error,
}

impl WalletFailure {
    fn new(wallet_id: WalletId, error: Error) -> Self {
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
            return Err(Error::FlushRetryable { wallets: self.still_pending, cause: Box::new(cause) });
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
    pub store: &'static str,
    /// The IndexedDB key, spelled as a JSON array.
    pub key: String,
    pub code: u16,
    pub kind: &'static str,
    pub reason: String,
}

impl SkippedRow {
    fn new(store: &'static str, key: String, error: &Error) -> Self {
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
    /// Rows that failed to decode or check, in store and key order.
    pub skipped: Vec<SkippedRow>,
}

/// Spells a key as a JSON array, e.g. `["ab…", 0]`.
pub fn key_to_string(key: &Key) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|part| match part {
            KeyPart::Num(n) => n.to_string(),
            KeyPart::Text(s) => format!("{s:?}"),
        })
        .collect();
    format!("[{}]", parts.join(","))
}

/// Serialises flushes: a second flush waits for the first, so a failed flush can never restore
/// values older than what a concurrent flush already made durable.
#[derive(Default)]
struct FlushLock {
    locked: Cell<bool>,
    waiters: RefCell<VecDeque<Waker>>,
}

struct FlushGuard<'a>(&'a FlushLock);

impl FlushLock {
    async fn lock(&self) -> FlushGuard<'_> {
        poll_fn(|cx| {
            if self.locked.get() {
                self.waiters.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            } else {
                self.locked.set(true);
                Poll::Ready(())
            }
        })
        .await;
        FlushGuard(self)
    }
}

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        self.0.locked.set(false);
        let waiters = std::mem::take(&mut *self.0.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }
}

/// Stages wallet changesets and writes them durably, never losing a change to a transient failure.
pub struct Persister<B: Backend> {
    backend: B,
    options: Options,
    buffer: RefCell<Buffer>,
    flush_lock: FlushLock,
    /// Set while `close` runs and after it succeeded: `store` is refused.
    closing: Cell<bool>,
    closed: Cell<bool>,
}

impl<B: Backend> Persister<B> {
    pub fn new(backend: B, options: Options) -> Self {
        Persister {
            backend,
            options,
            buffer: RefCell::new(Buffer::default()),
            flush_lock: FlushLock::default(),
            closing: Cell::new(false),
            closed: Cell::new(false),
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Dirty wallets with their staged field counts.
    pub fn staged(&self) -> Vec<(WalletId, usize)> {
        self.buffer.borrow().summary()
    }

    /// What is staged for one wallet.
    pub fn staged_changes(&self, wallet: &WalletId) -> Option<WalletChangeSet> {
        self.buffer.borrow().get(wallet).cloned()
    }

    /// Validates `changes`, then merges them over the wallet's staged changes. Bad input is refused
    /// with nothing staged. In immediate mode, then flushes that wallet (`Some(report)`).
    pub async fn store(&self, wallet: WalletId, changes: WalletChangeSet) -> Result<Option<CommitReport>> {
        self.stage(wallet, changes)?;
        self.flush_if_immediate(wallet).await
    }

    /// The synchronous half of `store`: validate, then merge into the buffer.
    pub fn stage(&self, wallet: WalletId, changes: WalletChangeSet) -> Result<()> {
        if self.closing.get() || self.closed.get() {
            return Err(Error::Closed);
        }
        changes.validate(&wallet, self.options.max_blob_bytes)?;
        self.buffer.borrow_mut().stage(wallet, changes);
        Ok(())
    }

    /// The asynchronous half of `store`: in immediate mode, flushes `wallet`.
    pub async fn flush_if_immediate(&self, wallet: WalletId) -> Result<Option<CommitReport>> {
        match self.options.flush_mode {
            FlushMode::Manual => Ok(None),
            FlushMode::Immediate => self.commit_scope(Some(wallet)).await?.into_result().map(Some),
        }
    }

    /// Writes every staged change in one transaction. Rejects with `FlushRetryable` (changes staged
    /// again) or `FlushFailed` (those wallets' changes dropped) unless every wallet landed.
    pub async fn flush(&self) -> Result<CommitReport> {
        self.commit().await?.into_result()
    }

    /// Writes every staged change and reports per wallet; one wallet's failure never stops the others.
    pub async fn commit(&self) -> Result<CommitReport> {
        self.commit_scope(None).await
    }

    async fn commit_scope(&self, only: Option<WalletId>) -> Result<CommitReport> {
        let _guard = self.flush_lock.lock().await;
        if self.closed.get() {
            return Err(Error::Closed);
        }
        let mut taken = {
            let mut buffer = self.buffer.borrow_mut();
            match only {
                None => buffer.take_for_flush(),
                Some(wallet) => buffer.take_wallet(&wallet).map(|cs| BTreeMap::from([(wallet, cs)])).unwrap_or_default(),
            }
        };
        let mut report = CommitReport::default();
        if taken.is_empty() {
            return Ok(report);
        }

        // Everything is encoded before the transaction opens.
        let mut encoded: Vec<(WalletId, Vec<WriteOp>)> = Vec::with_capacity(taken.len());
        for (wallet, changes) in &taken {
            let mut ops = Vec::new();
            match changes.encode_into(wallet, self.options.max_blob_bytes, &mut ops) {
                Ok(()) => encoded.push((*wallet, ops)),
                Err(error) => report.failed.push(WalletFailure::new(*wallet, error)),
            }
        }
        for failure in &report.failed {
            taken.remove(&failure.wallet_id);
        }

        let batch = WriteBatch { ops: encoded.iter().flat_map(|(_, ops)| ops.iter().cloned()).collect() };
        match self.backend.write(&batch).await {
            Ok(()) => report.succeeded = encoded.iter().map(|(wallet, _)| *wallet).collect(),
            Err(error) if error.is_transient() || encoded.len() == 1 => {
                self.settle_failure(&mut report, &mut taken, encoded.iter().map(|(w, _)| *w).collect(), error);
            }
            Err(error) => {
                log_at!(Warn, "commit of {} wallets failed ({error}); isolating per wallet", encoded.len());
                for (wallet, ops) in encoded {
                    match self.backend.write(&WriteBatch { ops }).await {
                        Ok(()) => report.succeeded.push(wallet),
                        Err(error) => self.settle_failure(&mut report, &mut taken, vec![wallet], error),
                    }
                }
            }
        }
        for failure in &report.failed {
            log_at!(Error, "dropped the staged changes of wallet {} after a fatal error: {}", failure.wallet_id, failure.message);
        }
        if !report.still_pending.is_empty() {
            log_at!(Warn, "{} wallet(s) kept staged after a transient failure", report.still_pending.len());
        }
        Ok(report)
    }

    /// Transient: the wallets' changes go back under newer ones. Fatal: they are dropped.
    fn settle_failure(
        &self,
        report: &mut CommitReport,
        taken: &mut BTreeMap<WalletId, WalletChangeSet>,
        wallets: Vec<WalletId>,
        error: Error,
    ) {
        if error.is_transient() {
            let back = wallets.iter().filter_map(|w| taken.remove_entry(w)).collect();
            self.buffer.borrow_mut().restore(back);
            report.still_pending.extend(wallets);
            report.retry_cause = Some(error);
        } else {
            for wallet in wallets {
                taken.remove(&wallet);
                report.failed.push(WalletFailure::new(wallet, error.clone()));
            }
        }
    }

    /// Reads the durable state of every wallet in one readonly transaction. Rows that fail to decode
    /// or check are skipped and reported; staged (unflushed) changes are not included.
    pub async fn load(&self) -> Result<(ClientStartState, LoadReport)> {
        if self.closed.get() {
            return Err(Error::Closed);
        }
        let stores = self.backend.read(AREA_STORES).await?;
        let mut state = ClientStartState::default();
        let mut report = LoadReport { rows: AREA_STORES.iter().map(|s| (*s, 0)).collect(), ..Default::default() };
        for store_rows in stores {
            for (key, error) in store_rows.unreadable {
                report.skipped.push(SkippedRow::new(store_rows.store, key, &error));
            }
            for row in store_rows.rows {
                let loaded = WalletChangeSet::load_row(
                    &mut state.wallets,
                    store_rows.store,
                    &row.key,
                    &row.value,
                    self.options.max_blob_bytes,
                );
                match loaded {
                    Ok(()) => *report.rows.entry(store_rows.store).or_default() += 1,
                    Err(error) => report.skipped.push(SkippedRow::new(store_rows.store, key_to_string(&row.key), &error)),
                }
            }
        }
        report.wallets = state.wallets.len() as u32;
        let total: u32 = report.rows.values().sum();
        log_at!(Info, "loaded {} wallet(s), {total} row(s), skipped {}", report.wallets, report.skipped.len());
        for skipped in &report.skipped {
            log_at!(Warn, "skipped row {} {}: {}", skipped.store, skipped.key, skipped.reason);
        }
        Ok((state, report))
    }

    /// Final flush, then releases the database. If the flush fails transiently the store stays
    /// open with its changes staged and the error is returned, so nothing is discarded.
    pub async fn close(&self) -> Result<CommitReport> {
        if self.closed.get() {
            return Ok(CommitReport::default());
        }
        self.closing.set(true);
        let report = match self.commit().await {
            Ok(report) if report.still_pending.is_empty() => report,
            Ok(report) => {
                self.closing.set(false);
                self.log_dirty("close failed to flush");
                return report.into_result();
            }
            Err(error) => {
                self.closing.set(false);
                return Err(error);
            }
        };
        self.closed.set(true);
        self.backend.close();
        Ok(report)
    }

    fn log_dirty(&self, context: &str) {
        let dirty = self.buffer.borrow().summary();
        if !dirty.is_empty() {
            let list: Vec<String> = dirty.iter().map(|(id, n)| format!("{id} ({n} fields)")).collect();
            log_at!(Error, "{context}: staged changes not durable for {} wallet(s): {}", dirty.len(), list.join(", "));
        }
    }
}

impl<B: Backend> Drop for Persister<B> {
    fn drop(&mut self) {
        self.log_dirty("store dropped with staged changes");
    }
}

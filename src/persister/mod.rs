//! The buffered, retry-safe persister, written once over the [`Backend`] trait.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use serde::Serialize;

use crate::backend::{wallet_stores, Backend, StoreRows, WriteBatch, WriteOp};
use crate::buffer::Buffer;
use crate::codec::MAX_BLOB_BYTES;
use crate::error::{Error, Result};
use crate::log::log_at;
use crate::model::{ClientStartState, Key, KeyPart, WalletChangeSet, WalletId, AREA_STORES};
use crate::schema::{self, Version};
use crate::snapshot::ChannelRegistry;

mod backup;
mod channels;
mod registration;

pub use backup::{ImportReport, Progress};
pub use channels::{ChannelCommit, Channels, CommitStep, StepFailure};
pub use registration::PENDING;

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
    /// When staged changes are written.
    pub flush_mode: FlushMode,
    /// Largest encoded value accepted, at most [`MAX_BLOB_BYTES`].
    pub max_blob_bytes: usize,
    /// A follower: `load` works, every write is refused with `ReadOnlyFollower`, open never
    /// migrates.
    pub read_only: bool,
    /// Strict durability for the transactions that must survive a power cut once resolved
    /// (`delete_wallet`); flushes keep the browser's default.
    pub strict_durability: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { flush_mode: FlushMode::Manual, max_blob_bytes: MAX_BLOB_BYTES, read_only: false, strict_durability: false }
    }
}

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
    /// Rows skipped per area store, every area present (zero included).
    pub skipped_rows: BTreeMap<&'static str, u32>,
    /// Rows that failed to decode or check, in store order.
    pub skipped: Vec<SkippedRow>,
    /// Stores whose bulk read failed as a whole and were read row by row instead.
    pub scanned_stores: Vec<&'static str>,
}

impl LoadReport {
    fn new() -> Self {
        let zeros: BTreeMap<_, _> = AREA_STORES.iter().map(|s| (*s, 0)).collect();
        LoadReport { rows: zeros.clone(), skipped_rows: zeros, ..Default::default() }
    }

    fn skip(&mut self, store: &'static str, key: String, error: &Error) {
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
}

impl From<schema::GateOutcome> for OpenReport {
    fn from(outcome: schema::GateOutcome) -> Self {
        OpenReport {
            schema_version: outcome.version.number(),
            migrated_from: outcome.migrated_from.map(Version::number),
            discarded_pending: Vec::new(),
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
    /// What the last open or reopen found.
    open_report: RefCell<OpenReport>,
    buffer: RefCell<Buffer>,
    flush_lock: FlushLock,
    /// Wallets whose delete is in progress: `store` for them is refused, so a delete can never be
    /// undone by a write that raced it.
    deleting: Rc<RefCell<BTreeSet<WalletId>>>,
    /// Wallets inside `register_wallet`: a second registration of the same id is refused.
    registering: Rc<RefCell<BTreeSet<WalletId>>>,
    /// Set while `close` runs and after it succeeded: `store` is refused.
    closing: Cell<bool>,
    closed: Cell<bool>,
    observer: RefCell<Option<CommitObserver>>,
    /// Every channel's history index and queue (see [`Channels`]).
    channel_state: RefCell<ChannelRegistry>,
    /// Serialises channel writes (independent of `flush_lock`: they touch other stores).
    channel_lock: FlushLock,
}

/// A wallet marked in one of the persister's sets (being deleted, being registered) until this
/// is dropped, on every path (including a dropped future).
pub struct Claim {
    set: Rc<RefCell<BTreeSet<WalletId>>>,
    wallet: WalletId,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set.borrow_mut().remove(&self.wallet);
    }
}

/// A delete in progress, from [`Persister::begin_delete`].
pub type DeleteClaim = Claim;

impl<B: Backend> Persister<B> {
    /// Runs the schema gate (see [`crate::schema`]): a database written by a newer schema is
    /// refused with `SchemaVersionUnsupported` and left untouched; an older one is migrated.
    /// On failure the backend is closed.
    pub async fn open(backend: B, options: Options) -> Result<Self> {
        let gated = async {
            let mut report = OpenReport::from(schema::gate(&backend, options.read_only).await?);
            if !options.read_only {
                report.discarded_pending = Self::discard_stale_pending(&backend).await?;
            }
            Ok(report)
        };
        let open_report = match gated.await {
            Ok(report) => report,
            Err(error) => {
                log_at!(Error, "open refused: {error}");
                backend.close();
                return Err(error);
            }
        };
        Ok(Persister {
            backend,
            options,
            open_report: RefCell::new(open_report),
            buffer: RefCell::new(Buffer::default()),
            flush_lock: FlushLock::default(),
            deleting: Rc::default(),
            registering: Rc::default(),
            closing: Cell::new(false),
            closed: Cell::new(false),
            observer: RefCell::new(None),
            channel_state: RefCell::new(ChannelRegistry::default()),
            channel_lock: FlushLock::default(),
        })
    }

    /// Sets the callback told which wallets each successful commit or delete touched.
    pub fn on_commit(&self, observer: CommitObserver) {
        *self.observer.borrow_mut() = Some(observer);
    }

    fn notify(&self, wallets: &[WalletId]) {
        if wallets.is_empty() {
            return;
        }
        if let Some(observer) = &*self.observer.borrow() {
            observer(wallets);
        }
    }

    /// Connects again (after the database was closed under us or upgraded by another tab) and
    /// re-runs the schema gate. Staged changes are untouched.
    pub async fn reopen(&self) -> Result<()> {
        if self.closed.get() {
            return Err(Error::Closed);
        }
        self.backend.reconnect().await?;
        let outcome = schema::gate(&self.backend, self.options.read_only).await?;
        *self.open_report.borrow_mut() = OpenReport::from(outcome);
        log_at!(Info, "reconnected to the database");
        Ok(())
    }

    /// Writes `batch`; if the connection was lost, reconnects once and writes it again.
    async fn write(&self, batch: &WriteBatch) -> Result<()> {
        match self.backend.write(batch).await {
            Err(Error::ConnectionLost(cause)) => {
                log_at!(Warn, "connection lost ({cause}); reconnecting once");
                if let Err(error) = self.reopen().await {
                    log_at!(Warn, "reconnect failed: {error}");
                    return Err(Error::ConnectionLost(cause));
                }
                self.backend.write(batch).await
            }
            other => other,
        }
    }

    /// What the last open or reopen found and did.
    pub fn open_report(&self) -> OpenReport {
        self.open_report.borrow().clone()
    }

    /// The backend this persister writes to (tests arm its faults through it).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Whether `close` has completed: every later call fails with [`Error::Closed`].
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

    /// Refuses a write to `wallet`: store closing or closed, read-only, or the wallet being deleted.
    fn check_writable(&self, wallet: WalletId) -> Result<()> {
        if self.closing.get() || self.closed.get() {
            return Err(Error::Closed);
        }
        if self.options.read_only {
            return Err(Error::ReadOnlyFollower(String::from("this database")));
        }
        if self.deleting.borrow().contains(&wallet) {
            return Err(Error::WalletBeingDeleted(wallet));
        }
        Ok(())
    }

    /// The synchronous half of `store`: validate, then merge into the buffer.
    pub fn stage(&self, wallet: WalletId, changes: WalletChangeSet) -> Result<()> {
        self.check_writable(wallet)?;
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

        let batch = WriteBatch::new(encoded.iter().flat_map(|(_, ops)| ops.iter().cloned()).collect());
        match self.write(&batch).await {
            Ok(()) => report.succeeded = encoded.iter().map(|(wallet, _)| *wallet).collect(),
            Err(error) if error.is_transient() || encoded.len() == 1 => {
                self.settle_failure(&mut report, &mut taken, encoded.iter().map(|(w, _)| *w).collect(), error);
            }
            Err(error) => {
                log_at!(Warn, "commit of {} wallets failed ({error}); isolating per wallet", encoded.len());
                for (wallet, ops) in encoded {
                    match self.write(&WriteBatch::new(ops)).await {
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
        self.notify(&report.succeeded);
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

    /// Deletes every row of `wallet` in one transaction (one key-range delete per store) and
    /// discards its staged changes. From the call on, `store` for that wallet is refused with
    /// `WalletBeingDeleted` until the delete ends, so no write can resurrect it. If the delete
    /// fails, nothing was deleted and the staged changes are restored. Deleting a wallet that does
    /// not exist succeeds.
    pub async fn delete_wallet(&self, wallet: WalletId) -> Result<DeleteReport> {
        let claim = self.begin_delete(wallet)?;
        self.finish_delete(claim).await
    }

    /// The synchronous half of `delete_wallet`: from now on `store` for `wallet` is refused.
    pub fn begin_delete(&self, wallet: WalletId) -> Result<DeleteClaim> {
        self.check_writable(wallet)?;
        if !self.deleting.borrow_mut().insert(wallet) {
            return Err(Error::WalletBeingDeleted(wallet));
        }
        Ok(Claim { set: self.deleting.clone(), wallet })
    }

    /// The asynchronous half of `delete_wallet`: waits for any running flush, then deletes.
    pub async fn finish_delete(&self, claim: DeleteClaim) -> Result<DeleteReport> {
        let wallet = claim.wallet;
        let _flush = self.flush_lock.lock().await;
        if self.closed.get() {
            return Err(Error::Closed);
        }
        let taken = self.buffer.borrow_mut().take_wallet(&wallet);
        let ops = wallet_stores().map(|store| WriteOp::DeleteWallet { store, wallet }).collect();
        let batch = WriteBatch { ops, strict: self.options.strict_durability };
        let written = self.write(&batch).await;
        drop(claim);
        match written {
            Ok(()) => {
                self.notify(&[wallet]);
                let discarded = taken.map_or(0, |cs| cs.field_count()) as u32;
                log_at!(Info, "deleted wallet {wallet} (discarded {discarded} staged field(s))");
                Ok(DeleteReport { wallet_id: wallet, discarded_staged_fields: discarded })
            }
            Err(error) => {
                if let Some(changes) = taken {
                    self.buffer.borrow_mut().restore(BTreeMap::from([(wallet, changes)]));
                }
                log_at!(Warn, "delete of wallet {wallet} failed, nothing deleted: {error}");
                Err(error)
            }
        }
    }

    /// Reads the durable state of every wallet in one readonly transaction. Rows that fail to decode
    /// or check are skipped and reported; a store whose bulk read fails as a whole is read again row
    /// by row. Staged (unflushed) changes are not included.
    pub async fn load(&self) -> Result<(ClientStartState, LoadReport)> {
        if self.closed.get() {
            return Err(Error::Closed);
        }
        let reads = match self.backend.read(AREA_STORES).await {
            Err(Error::ConnectionLost(cause)) => {
                log_at!(Warn, "connection lost ({cause}); reconnecting once");
                self.reopen().await.map_err(|_| Error::ConnectionLost(cause))?;
                self.backend.read(AREA_STORES).await?
            }
            other => other?,
        };
        let mut state = ClientStartState::default();
        let mut report = LoadReport::new();
        for (store, read) in AREA_STORES.iter().zip(reads) {
            let store_rows = match read {
                Ok(rows) => rows,
                Err(error) => {
                    log_at!(Warn, "bulk read of {store} failed ({error}); reading it row by row");
                    report.scanned_stores.push(store);
                    self.backend.scan(store).await?
                }
            };
            self.load_rows(&mut state, &mut report, store_rows);
        }
        report.wallets = state.wallets.len() as u32;
        log_at!(Info, "{}", report.summary());
        for skipped in &report.skipped {
            log_at!(Warn, "skipped row {} {}: {}", skipped.store, skipped.key, skipped.reason);
        }
        Ok((state, report))
    }

    fn load_rows(&self, state: &mut ClientStartState, report: &mut LoadReport, store_rows: StoreRows) {
        let store = store_rows.store;
        for (key, error) in store_rows.unreadable {
            report.skip(store, key, &error);
        }
        for row in store_rows.rows {
            match WalletChangeSet::load_row(&mut state.wallets, store, &row.key, &row.value, self.options.max_blob_bytes) {
                Ok(()) => *report.rows.entry(store).or_default() += 1,
                Err(error) => report.skip(store, key_to_string(&row.key), &error),
            }
        }
    }

    /// Final flush, then releases the database. If the flush fails transiently the store stays
    /// open with its changes staged and the error is returned, so nothing is discarded. Queued
    /// channel history changes are written too; a failure there is logged, not returned (channel
    /// writes never fail a foreground call).
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
        self.flush_channel_queues().await;
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
        let channels = self.channel_state.borrow().dirty();
        if !channels.is_empty() {
            let list: Vec<String> = channels.iter().map(|(c, n)| format!("{c:?} ({n} queued)")).collect();
            log_at!(Error, "{context}: history changes not durable for {} channel(s): {}", channels.len(), list.join(", "));
        }
    }
}

impl<B: Backend> Drop for Persister<B> {
    fn drop(&mut self) {
        self.log_dirty("store dropped with staged changes");
    }
}

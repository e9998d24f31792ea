//! The buffered, retry-safe persister of wallet changesets, written once over the [`Db`] core.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::buffer::Buffer;
use super::reports::*;
use super::rows;
use crate::backend::{Backend, StoreRows, WriteBatch, WriteOp};
use crate::backup::{self, ImportReport, Progress};
use crate::channels::ChannelState;
use crate::codec::MAX_BLOB_BYTES;
use crate::db::{Db, State, WriteLock};
use crate::error::{Error, Result};
use crate::layout::{wallet_stores, AREA_STORES};
use crate::log::log_at;
use crate::model::{key_to_string, ClientStartState, WalletChangeSet, WalletId};

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
        Options {
            flush_mode: FlushMode::Manual,
            max_blob_bytes: MAX_BLOB_BYTES,
            read_only: false,
            strict_durability: false,
        }
    }
}

/// Stages wallet changesets and writes them durably, never losing a change to a transient failure.
pub struct Persister<B: Backend> {
    pub(super) db: Db<B>,
    pub(super) options: Options,
    /// Unfinished registrations the last open discarded.
    discarded_pending: Vec<WalletId>,
    pub(super) buffer: RefCell<Buffer>,
    pub(super) flush_lock: WriteLock,
    /// Wallets whose delete is in progress: `store` for them is refused, so a delete can never be
    /// undone by a write that raced it.
    deleting: Rc<RefCell<BTreeSet<WalletId>>>,
    /// Wallets inside `register_wallet`: a second registration of the same id is refused.
    pub(super) registering: Rc<RefCell<BTreeSet<WalletId>>>,
    observer: RefCell<Option<CommitObserver>>,
    /// Every channel's history index and queue, and the lock serialising channel writes.
    channels: ChannelState,
}

/// A wallet marked in one of the persister's sets (being deleted, being registered) until this
/// is dropped, on every path (including a dropped future).
pub struct Claim {
    pub(super) set: Rc<RefCell<BTreeSet<WalletId>>>,
    pub(super) wallet: WalletId,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set.borrow_mut().remove(&self.wallet);
    }
}

/// A delete in progress, from [`Persister::begin_delete`].
pub type DeleteClaim = Claim;

impl<B: Backend> Persister<B> {
    /// Opens the database core (see [`crate::db::schema`]: a newer schema is refused, an older
    /// one migrated), then discards unfinished registrations (unless `read_only`).
    pub async fn open(backend: B, options: Options) -> Result<Self> {
        let db = Db::open(backend, options.read_only).await?;
        let discarded_pending = if options.read_only || db.gate().check_writable().is_err() {
            Vec::new()
        } else {
            match Self::discard_stale_pending(&db).await {
                Ok(discarded) => discarded,
                Err(error) => {
                    log_at!(Error, "open refused: {error}");
                    db.close();
                    return Err(error);
                }
            }
        };
        Ok(Persister {
            db,
            options,
            discarded_pending,
            buffer: RefCell::new(Buffer::default()),
            flush_lock: WriteLock::default(),
            deleting: Rc::default(),
            registering: Rc::default(),
            observer: RefCell::new(None),
            channels: ChannelState::default(),
        })
    }

    /// Sets the callback told which wallets each successful commit or delete touched.
    pub fn on_commit(&self, observer: CommitObserver) {
        *self.observer.borrow_mut() = Some(observer);
    }

    pub(super) fn notify(&self, wallets: &[WalletId]) {
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
        self.db.reopen().await.map(drop)
    }

    /// What the last open or reopen found and did.
    pub fn open_report(&self) -> OpenReport {
        let mut report = OpenReport::from(self.db.gate());
        report.discarded_pending = self.discarded_pending.clone();
        report
    }

    /// The database core this persister writes through.
    pub fn db(&self) -> &Db<B> {
        &self.db
    }

    /// The backend this persister writes to (tests arm its faults through it).
    pub fn backend(&self) -> &B {
        self.db.backend()
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Whether `close` has completed: every later call fails with [`Error::Closed`].
    pub fn is_closed(&self) -> bool {
        self.db.state() == State::Closed
    }

    /// The snapshot contract over this persister's database: `persister.channels()`.
    pub fn channels(&self) -> crate::channels::Channels<'_, B> {
        crate::channels::Channels::new(
            &self.db,
            &self.channels,
            self.options.max_blob_bytes,
            self.options.strict_durability,
        )
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
    pub(super) fn check_writable(&self, wallet: WalletId) -> Result<()> {
        self.db.check_writable()?;
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
        self.db.check_open()?;
        let mut taken = {
            let mut buffer = self.buffer.borrow_mut();
            match only {
                None => buffer.take_for_flush(),
                Some(wallet) => {
                    buffer.take_wallet(&wallet).map(|cs| BTreeMap::from([(wallet, cs)])).unwrap_or_default()
                }
            }
        };
        let mut report = CommitReport::default();
        if taken.is_empty() {
            return Ok(report);
        }

        // Everything is encoded before the transaction opens.
        let mut encoded: Vec<(WalletId, Vec<WriteOp>)> = Vec::with_capacity(taken.len());
        for (wallet, changes) in &taken {
            match rows::changeset_ops(wallet, changes, self.options.max_blob_bytes) {
                Ok(ops) => encoded.push((*wallet, ops)),
                Err(error) => report.failed.push(WalletFailure::new(*wallet, error)),
            }
        }
        for failure in &report.failed {
            taken.remove(&failure.wallet_id);
        }

        let batch = WriteBatch::new(encoded.iter().flat_map(|(_, ops)| ops.iter().cloned()).collect());
        match self.db.write(&batch).await {
            Ok(()) => report.succeeded = encoded.iter().map(|(wallet, _)| *wallet).collect(),
            Err(error) if error.is_transient() || encoded.len() == 1 => {
                self.settle_failure(&mut report, &mut taken, encoded.iter().map(|(w, _)| *w).collect(), error);
            }
            Err(error) => {
                log_at!(Warn, "commit of {} wallets failed ({error}); isolating per wallet", encoded.len());
                for (wallet, ops) in encoded {
                    match self.db.write(&WriteBatch::new(ops)).await {
                        Ok(()) => report.succeeded.push(wallet),
                        Err(error) => self.settle_failure(&mut report, &mut taken, vec![wallet], error),
                    }
                }
            }
        }
        for failure in &report.failed {
            log_at!(
                Error,
                { "walletIds" => vec![failure.wallet_id.to_hex()], "code" => failure.code },
                "dropped the staged changes of wallet {} after a fatal error: {}",
                failure.wallet_id,
                failure.message
            );
        }
        if !report.still_pending.is_empty() {
            log_at!(
                Warn,
                { "walletIds" => report.still_pending.iter().map(|w| w.to_hex()).collect::<Vec<_>>() },
                "{} wallet(s) kept staged after a transient failure",
                report.still_pending.len()
            );
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
        self.db.check_open()?;
        let taken = self.buffer.borrow_mut().take_wallet(&wallet);
        let ops = wallet_stores().map(|store| WriteOp::DeleteWallet { store, wallet }).collect();
        let batch = WriteBatch { ops, strict: self.options.strict_durability };
        let written = self.db.write(&batch).await;
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
                log_at!(
                    Warn,
                    { "walletIds" => vec![wallet.to_hex()], "code" => error.code() },
                    "delete of wallet {wallet} failed, nothing deleted: {error}"
                );
                Err(error)
            }
        }
    }

    /// Reads the durable state of every wallet in one readonly transaction. Rows that fail to decode
    /// or check are skipped and reported; a store whose bulk read fails as a whole is read again row
    /// by row. Staged (unflushed) changes are not included.
    pub async fn load(&self) -> Result<(ClientStartState, LoadReport)> {
        let reads = self.db.read(AREA_STORES, None).await?;
        let mut state = ClientStartState::default();
        let mut report = LoadReport::new();
        report.scanned_stores = reads.scanned;
        for store_rows in reads.stores {
            self.load_rows(&mut state, &mut report, store_rows);
        }
        report.wallets = state.wallets.len() as u32;
        log_at!(Info, "{}", report.summary());
        for skipped in &report.skipped {
            log_at!(
                Warn,
                { "store" => skipped.store, "key" => skipped.key.as_str(), "code" => skipped.code },
                "skipped row {} {}: {}",
                skipped.store,
                skipped.key,
                skipped.reason
            );
        }
        Ok((state, report))
    }

    fn load_rows(&self, state: &mut ClientStartState, report: &mut LoadReport, store_rows: StoreRows) {
        let store = store_rows.store;
        for (key, error) in store_rows.unreadable {
            report.skip(store, key, &error);
        }
        for row in store_rows.rows {
            match WalletChangeSet::load_row(
                &mut state.wallets,
                store,
                &row.key,
                &row.value,
                self.options.max_blob_bytes,
            ) {
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
        if self.is_closed() {
            return Ok(CommitReport::default());
        }
        self.db.set_closing(true);
        let report = match self.commit().await {
            Ok(report) if report.still_pending.is_empty() => report,
            Ok(report) => {
                self.db.set_closing(false);
                self.log_dirty("close failed to flush");
                return report.into_result();
            }
            Err(error) => {
                self.db.set_closing(false);
                return Err(error);
            }
        };
        self.channels().flush_queues().await;
        self.db.close();
        Ok(report)
    }

    /// Every row of every backup store as a validated backup file (see [`crate::backup`]).
    pub async fn export_backup(&self, created_at_ms: u64, progress: Progress<'_>) -> Result<Vec<u8>> {
        self.db.check_open()?;
        backup::export(&self.db, created_at_ms, progress).await
    }

    /// Validates all of `bytes` first (nothing is touched if anything is wrong), then replaces the
    /// backup stores of this database with the backup's rows in one transaction. A database that
    /// holds any row is refused with `BackupDestinationNotEmpty` unless `overwrite`.
    pub async fn import_backup(&self, bytes: &[u8], overwrite: bool, progress: Progress<'_>) -> Result<ImportReport> {
        let backup = backup::decode(bytes, &mut |done, total| progress("validate", done, total))?;
        self.db.check_writable()?;
        if !self.buffer.borrow().is_empty() || !self.channels.dirty().is_empty() {
            return Err(Error::InvalidArgument(
                "flush (or close) staged changes and commit queued channel changes before importing a backup".into(),
            ));
        }
        let _flush = self.flush_lock.lock().await;
        let _channels = self.channels.lock().await;
        let (report, wallets) =
            backup::import(&self.db, backup, overwrite, self.options.strict_durability, progress).await?;
        // The channel stores were replaced: what was known of them is stale.
        self.channels.forget();
        self.notify(&wallets);
        Ok(report)
    }

    /// Channels with queued history changes not yet written, with their queue lengths.
    pub fn queued_channels(&self) -> Vec<(String, usize)> {
        self.channels.dirty()
    }

    fn log_dirty(&self, context: &str) {
        let dirty = self.buffer.borrow().summary();
        if !dirty.is_empty() {
            let list: Vec<String> = dirty.iter().map(|(id, n)| format!("{id} ({n} fields)")).collect();
            log_at!(Error, "{context}: staged changes not durable for {} wallet(s): {}", dirty.len(), list.join(", "));
        }
        let channels = self.channels.dirty();
        if !channels.is_empty() {
            let list: Vec<String> = channels.iter().map(|(c, n)| format!("{c:?} ({n} queued)")).collect();
            log_at!(
                Error,
                "{context}: history changes not durable for {} channel(s): {}",
                channels.len(),
                list.join(", ")
            );
        }
    }
}

impl<B: Backend> Drop for Persister<B> {
    fn drop(&mut self) {
        self.log_dirty("store dropped with staged changes");
    }
}

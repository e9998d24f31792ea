//! The buffered, retry-safe persister of wallet changesets, written once over the [`Db`] core.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::buffer::Buffer;
use super::integrity;
use super::reports::*;
use super::rows::FlushSource;
use crate::backend::{Backend, ReadEvent, StoreRows, WriteBatch, WriteOp, SLICE_ROWS};
use crate::backup::{self, ImportReport, Progress};
use crate::channels::ChannelState;
use crate::codec::MAX_BLOB_BYTES;
use crate::db::{Db, State, WriteLock};
use crate::error::{Error, Result};
use crate::layout::{wallet_stores, AREA_STORES, IDENTITIES, WALLETS};
use crate::log::{log_at, memory_mark};
use crate::model::{key_to_string, ClientStartState, Key, WalletChangeSet, WalletId, WalletRecord};

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
    /// The bound on every backend call (the JS `timeoutMs`, 30 s by default there); `None`:
    /// unbounded.
    pub deadline: Option<crate::db::Deadline>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flush_mode: FlushMode::Manual,
            max_blob_bytes: MAX_BLOB_BYTES,
            read_only: false,
            strict_durability: false,
            deadline: None,
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
    /// Wallets inside `register_wallet`: a second registration of the same id is refused, and no
    /// flush but their promote writes their staged changes.
    pub(super) registering: Rc<RefCell<BTreeSet<WalletId>>>,
    /// Registrations `close` rolled back while their `init` ran: they reject with `Closed`.
    pub(super) aborted: RefCell<BTreeSet<WalletId>>,
    /// Wallets whose rollback could not discard their pending row: a new registration of them
    /// replaces it instead of being refused as existing.
    pub(super) failed_rollbacks: RefCell<BTreeSet<WalletId>>,
    /// Parent rows (wallet records, identities) known to be on disk, for referential integrity:
    /// learnt from `load`, successful writes and reads; forgotten on delete and import.
    pub(super) known_parents: RefCell<integrity::KnownParents>,
    observer: RefCell<Option<CommitObserver>>,
    /// Every channel's history index and queue, and the lock serialising channel writes.
    channels: ChannelState,
    /// What the close that closed this store reported; every later `close` reports the same.
    closed_report: RefCell<Option<CloseReport>>,
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
        let db = Db::open(backend, options.read_only, options.deadline.clone()).await?;
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
            aborted: RefCell::default(),
            closed_report: RefCell::default(),
            failed_rollbacks: RefCell::default(),
            known_parents: RefCell::default(),
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
        let mut buffer = self.buffer.borrow_mut();
        integrity::check_staging(&wallet, &changes, || buffer.get(&wallet))?;
        buffer.stage(wallet, changes);
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
            let registering = self.registering.borrow();
            match only {
                None => buffer.take_for_flush(&registering),
                Some(wallet) if registering.contains(&wallet) => BTreeMap::new(),
                Some(wallet) => {
                    // `extend`, not `collect` or `from`: those sort first, and every element type's
                    // sort is ~20 KB of the .wasm (twiggy); one or a few wallets need no sort.
                    let mut taken = BTreeMap::new();
                    taken.extend(buffer.take_wallet(&wallet).map(|cs| (wallet, cs)));
                    taken
                }
            }
        };
        let mut report = CommitReport::default();
        if taken.is_empty() {
            return Ok(report);
        }
        memory_mark!("commit: taken");

        // Referential integrity: each wallet's parents are on disk or in its own changes, on the
        // connection the write then goes to. A write that finds the store reconnected since its
        // check is not run (the database may have been cleared meanwhile): checked again, once.
        let mut wallets: Vec<WalletId> = taken.keys().copied().collect();
        for attempt in 0..2 {
            let connection = self.db.reconnects();
            match self.learn_parents(&taken).await {
                Ok(unreadable) => {
                    wallets.retain(|wallet| !unreadable.contains_key(wallet));
                    report
                        .failed
                        .extend(unreadable.into_iter().map(|(wallet, error)| WalletFailure::new(wallet, error)));
                }
                Err(error) => {
                    log_at!(Warn, "commit: could not read the parent rows ({error}); every change stays staged");
                    self.buffer.borrow_mut().restore(wallets.iter().filter_map(|w| taken.remove_entry(w)));
                    report.still_pending.extend(wallets);
                    report.retry_cause = Some(error);
                    return Ok(report);
                }
            }
            {
                let known = self.known();
                wallets.retain(|wallet| match integrity::check(wallet, &taken[wallet], &known) {
                    Ok(()) => true,
                    Err(error) => {
                        report.failed.push(WalletFailure::new(*wallet, error));
                        false
                    }
                });
            }
            for failure in &report.failed {
                taken.remove(&failure.wallet_id);
            }
            if wallets.is_empty() {
                self.log_failures(&report);
                return Ok(report);
            }

            // One transaction; every value is encoded as the backend pulls it, chunk by chunk, so the
            // encoded rows are never all held at once. A value that fails to encode fails the write,
            // and then only its own wallet (isolated below).
            let limit = self.options.max_blob_bytes;
            let written = self
                .db
                .write_source_on(
                    &FlushSource::new(wallets.iter().map(|w| (*w, &taken[w])), limit),
                    connection,
                    attempt == 0,
                )
                .await;
            memory_mark!("commit: written");
            match written {
                Ok(()) => report.succeeded = std::mem::take(&mut wallets),
                Err(_) if attempt == 0 && self.db.reconnects() != connection => {
                    log_at!(Info, "commit: the store reconnected before the write; checking the parent rows again");
                    continue;
                }
                Err(error) if error.is_transient() || wallets.len() == 1 => {
                    self.settle_failure(&mut report, &mut taken, std::mem::take(&mut wallets), error);
                }
                Err(error) => {
                    log_at!(Warn, "commit of {} wallets failed ({error}); isolating per wallet", wallets.len());
                    for wallet in std::mem::take(&mut wallets) {
                        let source = FlushSource::new([(wallet, &taken[&wallet])], limit);
                        match self.db.write_source_on(&source, connection, attempt == 0).await {
                            Ok(()) => report.succeeded.push(wallet),
                            Err(error) => self.settle_failure(&mut report, &mut taken, vec![wallet], error),
                        }
                    }
                }
            }
            break;
        }
        for wallet in &report.succeeded {
            if let Some(changes) = taken.get(wallet) {
                self.learn_written(wallet, changes);
            }
        }
        self.log_failures(&report);
        self.notify(&report.succeeded);
        Ok(report)
    }

    fn log_failures(&self, report: &CommitReport) {
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
            const NAMED: usize = 8;
            // Collected before logging: a sink may call back into this persister.
            let mut list: Vec<String> = {
                let buffer = self.buffer.borrow();
                report
                    .still_pending
                    .iter()
                    .take(NAMED)
                    .map(|w| format!("{w} ({} fields)", buffer.get(w).map_or(0, WalletChangeSet::field_count)))
                    .collect()
            };
            if report.still_pending.len() > NAMED {
                list.push(format!("and {} more", report.still_pending.len() - NAMED));
            }
            log_at!(
                Warn,
                { "walletIds" => report.still_pending.iter().map(|w| w.to_hex()).collect::<Vec<_>>() },
                "{} wallet(s) kept staged after a transient failure: {}",
                report.still_pending.len(),
                list.join(", ")
            );
        }
    }

    /// Makes sure `known_parents` says, for every parent the encoded changes need, whether it is
    /// on disk: a few single-row reads, or one bulk read of the parent stores when many are unknown.
    ///
    /// `Err` only for a transient failure (every wallet stays staged). A parent row that cannot be
    /// read for good (corrupt, or failing authentication) fails only the wallets that need it: the
    /// returned map, each with its read error.
    async fn learn_parents(&self, taken: &BTreeMap<WalletId, WalletChangeSet>) -> Result<BTreeMap<WalletId, Error>> {
        let mut wanted = Vec::new();
        for (wallet, changes) in taken {
            let (record, identities) = integrity::needed_parents(changes);
            if record {
                wanted.push((*wallet, WALLETS, integrity::record_key(wallet)));
            }
            wanted.extend(identities.iter().map(|id| (*wallet, IDENTITIES, integrity::identity_key(wallet, id))));
        }
        wanted.retain(|(_, _, key)| !self.known().contains(key));
        if wanted.len() > 8 {
            // Only a shortcut: a store that fails as a whole for good (one value the browser cannot
            // read) leaves its parents to the single-row reads below, so it fails only the wallets
            // whose own parent is unreadable.
            match self.db.read_strict(&[WALLETS, IDENTITIES], None).await {
                Ok(reads) => {
                    for rows in reads {
                        self.known().learn(rows.rows.into_iter().map(|row| row.key));
                    }
                }
                Err(error) if error.is_transient() => return Err(error),
                Err(error) => {
                    log_at!(Warn, "commit: bulk read of the parent rows failed ({error}); reading them one by one")
                }
            }
            wanted.retain(|(_, _, key)| !self.known().contains(key));
        }
        // Each parent still unknown is read on its own, so one that is there but unreadable fails
        // its wallets with the read error, whichever way the others were found.
        let mut unreadable = BTreeMap::new();
        for (wallet, store, key) in wanted {
            match self.db.get(store, &key).await {
                Ok(Some(_)) => {
                    self.known().learn([key]);
                }
                Ok(None) => {}
                Err(error) if error.is_transient() => return Err(error),
                Err(error) => {
                    unreadable.entry(wallet).or_insert(error);
                }
            }
        }
        Ok(unreadable)
    }

    /// What is known of the parent rows on disk, for the current connection: what was learnt
    /// before a reconnect is forgotten (the database may have been cleared or deleted since).
    pub(super) fn known(&self) -> std::cell::RefMut<'_, integrity::KnownParents> {
        let mut known = self.known_parents.borrow_mut();
        known.follow(self.db.reconnects());
        known
    }

    /// Records the parent rows a successful write of `changes` added and removed.
    pub(super) fn learn_written(&self, wallet: &WalletId, changes: &WalletChangeSet) {
        let (added, gone) = integrity::parents_written(wallet, changes);
        let mut known = self.known();
        known.learn(added);
        if !gone.is_empty() {
            known.forget(gone);
        }
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
            self.buffer.borrow_mut().restore(wallets.iter().filter_map(|w| taken.remove_entry(w)));
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
    /// fails, nothing was deleted and the staged changes are restored; after a `Timeout` or a lost
    /// connection the delete may have landed, so the wallet's parent rows are read again first.
    /// Deleting a wallet that does not exist succeeds.
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
        let reconnects = self.db.reconnects();
        let written = self.db.write(&batch).await;
        drop(claim);
        match written {
            Ok(()) => {
                self.known().forget_wallet(&wallet);
                self.notify(&[wallet]);
                let discarded = taken.map_or(0, |cs| cs.field_count()) as u32;
                log_at!(Info, "deleted wallet {wallet} (discarded {discarded} staged field(s))");
                Ok(DeleteReport { wallet_id: wallet, discarded_staged_fields: discarded })
            }
            Err(error) => {
                if let Some(changes) = taken {
                    self.buffer.borrow_mut().restore([(wallet, changes)]);
                }
                // A delete that timed out or lost its connection may have committed all the same:
                // what this store knew of the wallet's parent rows is read again before the next
                // write relies on it (if the delete landed, the restored changes fail with
                // `orphan_row`, reported).
                let may_have_landed = self.db.may_have_landed(&error, reconnects);
                if may_have_landed {
                    self.known().forget_wallet(&wallet);
                }
                log_at!(
                    Warn,
                    { "walletIds" => vec![wallet.to_hex()], "code" => error.code() },
                    "delete of wallet {wallet} failed, {}: {error}",
                    if may_have_landed { "and it may have landed all the same (load() tells)" } else { "nothing deleted" }
                );
                Err(error)
            }
        }
    }

    /// Reads the durable state of every wallet in one readonly transaction. Rows that fail to decode
    /// or check are skipped and reported; a store whose bulk read fails as a whole is read again row
    /// by row. Staged (unflushed) changes are not included.
    pub async fn load(&self) -> Result<(ClientStartState, LoadReport)> {
        let mut state = ClientStartState::default();
        let report = self.load_into(None, &mut state.wallets).await?;
        Ok((state, report))
    }

    /// [`Persister::load`] of `wallets` only: one key range per store and wallet, in one readonly
    /// transaction, so the time is that of their rows. Every check of `load` applies to the rows
    /// read. A wallet that loads nothing (no row on disk, or every row skipped) is absent from the
    /// state and named in `report.not_found`.
    pub async fn load_wallets(&self, wallets: &BTreeSet<WalletId>) -> Result<(ClientStartState, LoadReport)> {
        let mut state = ClientStartState::default();
        let report = self.load_into(Some(wallets), &mut state.wallets).await?;
        Ok((state, report))
    }

    /// [`Persister::load`] (of `only`, when given, as [`Persister::load_wallets`]) handed to `out`
    /// a few wallets at a time, in wallet id order, each wallet whole and checked: rows are decoded
    /// as they arrive, and a wallet is handed over once the read promises no more of its rows
    /// (see [`crate::backend::ReadEvent::Complete`]), so a load need not hold every row at once.
    pub async fn load_into(&self, only: Option<&BTreeSet<WalletId>>, out: &mut dyn LoadSink) -> Result<LoadReport> {
        let report = self.read_wallets(AREA_STORES, only, out).await?;
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
        Ok(report)
    }

    /// Every wallet's record, in wallet id order, from the wallet-record store alone (one bulk
    /// read): the wallets [`Persister::load`] returns, without reading their rows. A record that
    /// fails to decode or check is skipped and reported, as `load` does.
    pub async fn list_wallets(&self) -> Result<(Vec<WalletRecord>, Vec<SkippedRow>)> {
        let mut wallets = BTreeMap::new();
        let report = self.read_wallets(&[WALLETS], None, &mut wallets).await?;
        let records = wallets.into_values().filter_map(|changes| changes.wallet).collect();
        for skipped in &report.skipped {
            log_at!(Warn, "listWallets: skipped row {} {}: {}", skipped.store, skipped.key, skipped.reason);
        }
        Ok((records, report.skipped))
    }

    /// Reads `stores` (of the wallets `only`, when given) into `out` (see [`Persister::load_into`]),
    /// then learns the parents found.
    async fn read_wallets(
        &self,
        stores: &[&'static str],
        only: Option<&BTreeSet<WalletId>>,
        out: &mut dyn LoadSink,
    ) -> Result<LoadReport> {
        // Parents removed by a write that commits while this load reads may still be in what it
        // read: what it learnt is kept only if nothing was removed meanwhile.
        let removals = self.known().removals();
        let hex: Vec<String> = only.into_iter().flatten().map(WalletId::to_hex).collect();
        let groups: Vec<&str> = hex.iter().map(String::as_str).collect();
        let mut loading = Loading::new(out, self.options.max_blob_bytes);
        let scanned =
            self.db.read_stream(stores, only.map(|_| groups.as_slice()), &mut |event| loading.event(event)).await?;
        // The rest, a slice at a time, so handing it over is not one long task.
        let mut rest = std::mem::take(&mut loading.pending);
        loading.ready.append(&mut rest);
        while !loading.ready.is_empty() {
            loading.budget = SLICE_ROWS;
            loading.drain()?;
            if !loading.ready.is_empty() {
                self.db.backend().pause().await;
            }
        }
        let Loading { mut report, parents, found, .. } = loading;
        report.scanned_stores = scanned;
        // Pieces of the stores interleave, and sealed rows come in the order of their hashed keys.
        report.skipped.sort_by(|a, b| {
            let at = |store| AREA_STORES.iter().position(|s| *s == store);
            (at(a.store), &a.key).cmp(&(at(b.store), &b.key))
        });
        self.known().learn_loaded(removals, parents);
        report.not_found = only.map(|wallets| wallets.iter().filter(|w| !found.contains(w)).copied().collect());
        Ok(report)
    }

    /// Final flush, then releases the database. If the flush fails transiently the store stays
    /// open with its changes staged and the error is returned, so nothing is discarded. Otherwise
    /// registrations still running their `init` are rolled back (they reject with `Closed`),
    /// queued channel history changes are written, and the report names everything staged or
    /// queued that was not written (channel writes never fail a foreground call, so a failure
    /// there is reported, not returned).
    ///
    /// A `close` called while another runs waits for its channel and wallet writes (the locks
    /// below) before it releases the connection, and once the store is closed every `close`
    /// resolves with the report of the one that closed it.
    pub async fn close(&self) -> Result<CloseReport> {
        if let Some(report) = self.closed_report.borrow().as_ref() {
            return Ok(report.clone());
        }
        if self.is_closed() {
            return Ok(CloseReport::default());
        }
        self.db.set_closing(true);
        let flush = match self.commit().await {
            Ok(report) if report.still_pending.is_empty() => report,
            Ok(report) => {
                self.db.set_closing(false);
                self.log_dirty("close failed to flush");
                return report.into_result().map(|_| CloseReport::default());
            }
            Err(error) => {
                self.db.set_closing(false);
                return Err(error);
            }
        };
        let aborted_registrations = self.abort_registrations().await;
        self.channels().flush_queues().await;
        // A write that was waiting behind the final flush (a delete, a rollback, a page-hide
        // channel flush) ends before the connection is released, and none starts after: the
        // foreground ones re-check the state once they hold their lock.
        let _flush = self.flush_lock.lock().await;
        let _channels = self.channels.lock().await;
        // Another close ran meanwhile and closed the store: its report is the one.
        if let Some(report) = self.closed_report.borrow().as_ref() {
            return Ok(report.clone());
        }
        let mut wallets: Vec<WalletId> = flush.failed.iter().map(|f| f.wallet_id).collect();
        wallets.extend(&aborted_registrations);
        let not_written =
            NotWritten { wallets, channels: self.channels.dirty().into_iter().map(|(channel, _)| channel).collect() };
        if !not_written.is_empty() {
            log_at!(
                Error,
                "closed with changes not written: wallet(s) {:?}, channel(s) {:?}",
                not_written.wallets.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
                not_written.channels
            );
        }
        self.db.close();
        let report = CloseReport { flush, not_written, aborted_registrations };
        *self.closed_report.borrow_mut() = Some(report.clone());
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
        let backup = backup::validate(bytes, progress)?;
        self.import_validated(backup, overwrite, progress).await
    }

    /// [`Persister::import_backup`] of a backup [`backup::validate`] already checked.
    pub async fn import_validated(
        &self,
        backup: backup::Backup,
        overwrite: bool,
        progress: Progress<'_>,
    ) -> Result<ImportReport> {
        self.check_quiet("importing a backup")?;
        let _flush = self.flush_lock.lock().await;
        let _channels = self.channels.lock().await;
        self.check_quiet("importing a backup")?;
        let reconnects = self.db.reconnects();
        let imported = backup::import(&self.db, backup, overwrite, self.options.strict_durability, progress).await;
        // The stores were replaced, or may have been (a write that timed out or lost its
        // connection can have committed): what was known of them is stale and is read again
        // before it is relied on.
        let replaced = match &imported {
            Ok(_) => true,
            Err(error) => self.db.may_have_landed(error, reconnects),
        };
        if replaced {
            self.channels.forget();
            self.known().forget_all();
        }
        let (report, wallets) = imported?;
        self.notify(&wallets);
        Ok(report)
    }

    /// Runs `work` (a whole-database rewrite, e.g. encrypting it) with every write lock held, after
    /// checking that this is the writer and nothing is staged or queued. `work` is lazy: it starts
    /// only once the locks are held.
    pub async fn exclusive<T>(&self, what: &str, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.check_quiet(what)?;
        let _flush = self.flush_lock.lock().await;
        let _channels = self.channels.lock().await;
        self.check_quiet(what)?;
        work.await
    }

    /// Refuses a whole-database operation while anything is staged, queued or being registered
    /// (checked before waiting for the locks, and again once they are held).
    fn check_quiet(&self, what: &str) -> Result<()> {
        self.db.check_writable()?;
        if !self.buffer.borrow().is_empty()
            || !self.channels.dirty().is_empty()
            || !self.registering.borrow().is_empty()
        {
            return Err(Error::InvalidArgument(format!(
                "flush (or close) staged changes, commit queued channel changes and let registrations finish before {what}"
            )));
        }
        Ok(())
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

/// Where a load's wallets go (see [`Persister::load_into`]).
pub trait LoadSink {
    /// Forgets every wallet handed over so far: the read started over.
    fn restart(&mut self);
    /// Wallets loaded whole, every check applied, in id order, each above every wallet before.
    fn wallets(&mut self, wallets: BTreeMap<WalletId, WalletChangeSet>) -> Result<()>;
}

impl LoadSink for BTreeMap<WalletId, WalletChangeSet> {
    fn restart(&mut self) {
        self.clear();
    }
    fn wallets(&mut self, mut wallets: BTreeMap<WalletId, WalletChangeSet>) -> Result<()> {
        self.append(&mut wallets);
        Ok(())
    }
}

/// A load under way: rows decoded into `pending` as they arrive, wallets moved to `ready` once
/// complete and handed to `out` as fast as rows arrive (so one task decodes a chunk and builds
/// about as many rows, and what waits stays about the rows in flight).
struct Loading<'a> {
    out: &'a mut dyn LoadSink,
    limit: usize,
    /// Wallets with rows still to come.
    pending: BTreeMap<WalletId, WalletChangeSet>,
    /// Wallets complete, not handed over yet.
    ready: BTreeMap<WalletId, WalletChangeSet>,
    /// Rows' worth of wallets that may be handed over before more rows arrive.
    budget: usize,
    report: LoadReport,
    /// Parent rows of the wallets handed over.
    parents: Vec<Key>,
    /// The wallets handed over.
    found: BTreeSet<WalletId>,
}

impl<'a> Loading<'a> {
    fn new(out: &'a mut dyn LoadSink, limit: usize) -> Self {
        Loading {
            out,
            limit,
            pending: BTreeMap::new(),
            ready: BTreeMap::new(),
            budget: 0,
            report: LoadReport::new(),
            parents: Vec::new(),
            found: BTreeSet::new(),
        }
    }

    fn event(&mut self, event: ReadEvent) -> Result<()> {
        match event {
            ReadEvent::Restart => {
                self.pending.clear();
                self.ready.clear();
                self.budget = 0;
                self.report = LoadReport::new();
                self.parents.clear();
                self.found.clear();
                self.out.restart();
                Ok(())
            }
            ReadEvent::Rows(rows) => {
                // Bounded, so rows that arrive while nothing completes do not add up to one long task later.
                self.budget = (self.budget + rows.rows.len()).min(SLICE_ROWS);
                self.decode(rows);
                self.drain()
            }
            ReadEvent::Complete(below) => {
                let next = self.pending.keys().find(|wallet| wallet.to_hex().as_str() >= below.as_str()).copied();
                let mut rest = next.map(|next| self.pending.split_off(&next)).unwrap_or_default();
                std::mem::swap(&mut self.pending, &mut rest);
                self.ready.append(&mut rest);
                self.drain()
            }
            ReadEvent::OneByOne(store, _) => {
                Err(Error::Internal(format!("the row-by-row read of {store} was not taken in")))
            }
        }
    }

    fn decode(&mut self, store_rows: StoreRows) {
        let store = store_rows.store;
        for (key, error) in store_rows.unreadable {
            self.report.skip(store, key, &error);
        }
        for row in store_rows.rows {
            match WalletChangeSet::load_row(&mut self.pending, store, &row.key, &row.value, self.limit) {
                Ok(()) => *self.report.rows.entry(store).or_default() += 1,
                Err(error) => self.report.skip(store, key_to_string(&row.key), &error),
            }
        }
    }

    /// Hands over the first ready wallets, as many rows' worth as the budget allows (at least one
    /// wallet while there is budget).
    fn drain(&mut self) -> Result<()> {
        let mut wallets = BTreeMap::new();
        while self.budget > 0 {
            let Some((wallet, changes)) = self.ready.pop_first() else { break };
            self.budget = self.budget.saturating_sub(changes.field_count().max(1));
            wallets.insert(wallet, changes);
        }
        if wallets.is_empty() {
            return Ok(());
        }
        self.hand(wallets)
    }

    /// Checks `wallets` (their orphans skipped and reported) and hands them over.
    fn hand(&mut self, mut wallets: BTreeMap<WalletId, WalletChangeSet>) -> Result<()> {
        if let (Some(first), Some(last)) = (wallets.keys().next(), self.found.last()) {
            if first <= last {
                return Err(Error::Internal(format!("rows of wallet {first} came after it was loaded")));
            }
        }
        for (store, key, error) in integrity::take_orphans(&mut wallets) {
            if let Some(loaded) = self.report.rows.get_mut(store) {
                *loaded = loaded.saturating_sub(1);
            }
            self.report.skip(store, key, &error);
        }
        self.parents.extend(integrity::loaded_parents(&wallets));
        self.report.wallets += wallets.len() as u32;
        self.found.extend(wallets.keys());
        self.out.wallets(wallets)
    }
}

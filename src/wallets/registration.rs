//! Two-phase wallet registration: stage under `pending` (durable), run the caller's init step,
//! promote pending → live in one transaction. A registration that fails at any step leaves zero
//! rows of the wallet; a pending record left by a page that died in between is discarded at open.

use std::future::Future;

use super::integrity;
use super::rows::changeset_ops;
use super::{Claim, Persister};
use crate::backend::{Backend, WriteBatch, WriteOp};
use crate::codec;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::layout::{wallet_stores, PENDING, WALLETS};
use crate::log::log_at;
use crate::model::{entry_key, KeyPart, Merge, WalletChangeSet, WalletId};

fn pending_key(wallet: &WalletId) -> crate::model::Key {
    entry_key(wallet, &())
}

impl<B: Backend> Persister<B> {
    /// Registers `wallet`: refuses an existing one (`WalletAlreadyExists`), stages `changes`
    /// durably under `pending`, runs `init`, then promotes in one transaction. If `init` fails
    /// (the inner `Err`) or any step fails (the outer `Err`), the pending record and anything
    /// staged for the wallet meanwhile are discarded: no row of the wallet remains, and a retry
    /// with the same id can succeed (even when discarding the pending record failed).
    ///
    /// While `init` runs, changes stored for the wallet stay staged: no flush but the promote
    /// writes them (immediate mode, a coordinator's commit, the page-hide flush and `close` skip
    /// them), and the promote writes them with the registration in one transaction. `close`
    /// during `init` rolls the registration back; it then rejects with `Closed`.
    pub async fn register_wallet<E>(
        &self,
        wallet: WalletId,
        changes: WalletChangeSet,
        init: impl Future<Output = std::result::Result<(), E>>,
    ) -> Result<std::result::Result<(), E>> {
        if !self.registering.borrow_mut().insert(wallet) {
            return Err(Error::WalletAlreadyExists(wallet));
        }
        let _registering = Claim { set: self.registering.clone(), wallet };
        if let Err(error) = self.store_pending(wallet, changes).await {
            // Nothing was staged for the wallet when it began (else it is refused as existing,
            // keeping those changes): what is staged now was stored during this step, is the
            // registration's, and goes with it, unless the wallet turned out to exist.
            if !matches!(error, Error::WalletAlreadyExists(_)) {
                self.buffer.borrow_mut().take_wallet(&wallet);
            }
            return Err(error);
        }
        let outcome = init.await;
        if self.aborted.borrow_mut().remove(&wallet) {
            return Err(Error::Closed);
        }
        if let Err(error) = outcome {
            self.roll_back_registration(wallet, "its init step failed").await;
            return Ok(Err(error));
        }
        if let Err(error) = self.promote_unchecked(wallet).await {
            self.roll_back_registration(wallet, "promote failed").await;
            return Err(error);
        }
        Ok(Ok(()))
    }

    /// Discards what the registration staged and every row of the wallet: its pending row, and
    /// the live rows of a promote that may have landed although it failed (after its deadline,
    /// its check unreadable). The wallet had no live row when the registration began and no
    /// flush writes it meanwhile, so every row of it is the registration's.
    async fn roll_back_registration(&self, wallet: WalletId, why: &str) {
        self.buffer.borrow_mut().take_wallet(&wallet);
        let deleted = async {
            let _flush = self.flush_lock.lock().await;
            self.db.check_open()?;
            let ops = wallet_stores().map(|store| WriteOp::DeleteWallet { store, wallet }).collect();
            self.db.write(&WriteBatch { ops, strict: self.options.strict_durability }).await
        };
        let deleted = deleted.await;
        self.known().forget_wallet(&wallet);
        match deleted {
            Ok(()) => log_at!(Warn, "registration of wallet {wallet} rolled back: {why}"),
            Err(error) => {
                self.failed_rollbacks.borrow_mut().insert(wallet);
                log_at!(
                    Error,
                    "registration of wallet {wallet} failed ({why}) and its pending record could not be discarded ({error}); a retry replaces it, the next open discards it"
                )
            }
        }
    }

    /// Rolls back every registration whose `init` is running (for `close`): drops what was staged
    /// for them and their pending rows; they reject with `Closed` when `init` ends. A pending row
    /// that cannot be deleted is discarded at the next open (it is never a live row).
    pub(super) async fn abort_registrations(&self) -> Vec<WalletId> {
        let wallets: Vec<WalletId> = self.registering.borrow().iter().copied().collect();
        if wallets.is_empty() {
            return wallets;
        }
        for wallet in &wallets {
            self.aborted.borrow_mut().insert(*wallet);
            self.buffer.borrow_mut().take_wallet(wallet);
        }
        if let Err(error) = self.delete_pending_rows(&wallets).await {
            log_at!(Warn, "close: pending registrations not discarded ({error}); the next open discards them");
        }
        log_at!(Warn, "close rolled back {} registration(s) whose init was still running", wallets.len());
        wallets
    }

    /// Deletes the pending rows of `wallets` in one transaction (also while closing).
    async fn delete_pending_rows(&self, wallets: &[WalletId]) -> Result<()> {
        let _flush = self.flush_lock.lock().await;
        self.db.check_open()?;
        let ops = wallets.iter().map(|w| WriteOp::Delete { store: PENDING, key: pending_key(w) }).collect();
        self.db.write(&WriteBatch { ops, strict: self.options.strict_durability }).await
    }

    /// Whether `register_wallet` is running for the wallet (its staged changes are the
    /// registration's until it ends).
    pub fn is_registering(&self, wallet: &WalletId) -> bool {
        self.registering.borrow().contains(wallet)
    }

    /// Whether the wallet has a live record or a pending registration.
    pub async fn wallet_exists(&self, wallet: WalletId) -> Result<bool> {
        let live = self.db.get(WALLETS, &entry_key(&wallet, &())).await?.is_some();
        Ok(live || self.db.get(PENDING, &pending_key(&wallet)).await?.is_some())
    }

    /// Phase one: validates `changes` (which must include the wallet record) and writes them as
    /// one `pending` row. Refuses a wallet that exists, is pending, or has staged changes.
    pub async fn store_pending(&self, wallet: WalletId, changes: WalletChangeSet) -> Result<()> {
        self.check_writable(wallet)?;
        if changes.wallet.is_none() {
            return Err(Error::InvalidArgument("a registration needs the wallet record (changes.wallet)".into()));
        }
        changes.validate(&wallet, self.options.max_blob_bytes)?;
        // Changes staged for the wallet before its registration: it exists in this store already
        // (and a rollback must not discard what the caller staged before it began).
        if self.buffer.borrow().get(&wallet).is_some() {
            return Err(Error::WalletAlreadyExists(wallet));
        }
        // Serialised with every other write (flushes, deletes, a whole-database rewrite).
        let _flush = self.flush_lock.lock().await;
        self.check_writable(wallet)?;
        let live = self.db.get(WALLETS, &entry_key(&wallet, &())).await?.is_some();
        let left_by_failed_rollback = self.failed_rollbacks.borrow().contains(&wallet);
        if live || (!left_by_failed_rollback && self.db.get(PENDING, &pending_key(&wallet)).await?.is_some()) {
            return Err(Error::WalletAlreadyExists(wallet));
        }
        let value = codec::encode_payload(&(wallet, &changes), self.options.max_blob_bytes)?;
        let put = WriteOp::Put { store: PENDING, key: pending_key(&wallet), value };
        let reconnects = self.db.reconnects();
        match self.db.write(&WriteBatch { ops: vec![put], strict: self.options.strict_durability }).await {
            Ok(()) => {
                self.failed_rollbacks.borrow_mut().remove(&wallet);
                Ok(())
            }
            Err(error) => {
                // A write that timed out or lost its connection may have landed all the same: a
                // retry must be free to replace the row.
                if self.db.may_have_landed(&error, reconnects) {
                    self.failed_rollbacks.borrow_mut().insert(wallet);
                }
                Err(error)
            }
        }
    }

    /// Phase two: moves the pending changeset into the live stores and deletes the pending row,
    /// in one transaction. `PendingRegistrationMissing` if there is nothing to promote;
    /// `WalletAlreadyExists` while `register_wallet` runs for the wallet (its steps are its own:
    /// a promote by hand from inside its `init` would outlive the rollback of a failed `init`).
    pub async fn promote(&self, wallet: WalletId) -> Result<()> {
        self.refuse_while_registering(wallet)?;
        self.promote_unchecked(wallet).await
    }

    /// Refuses a registration step by hand for a wallet whose `register_wallet` is running.
    fn refuse_while_registering(&self, wallet: WalletId) -> Result<()> {
        if self.is_registering(&wallet) {
            return Err(Error::WalletAlreadyExists(wallet));
        }
        Ok(())
    }

    /// [`Persister::promote`] for `register_wallet` itself.
    async fn promote_unchecked(&self, wallet: WalletId) -> Result<()> {
        self.check_writable(wallet)?;
        let _flush = self.flush_lock.lock().await;
        let bytes =
            self.db.get(PENDING, &pending_key(&wallet)).await?.ok_or(Error::PendingRegistrationMissing(wallet))?;
        let (stored, mut changes): (WalletId, WalletChangeSet) =
            codec::decode_payload(&bytes, self.options.max_blob_bytes)?;
        if stored != wallet {
            return Err(Error::WalletIdMismatch { expected: wallet, found: stored });
        }
        // What was stored for the wallet since its pending row lands with it, in one transaction.
        let staged = self.buffer.borrow_mut().take_wallet(&wallet);
        if let Some(staged) = &staged {
            changes.merge(staged.clone());
        }
        let mut ops = vec![WriteOp::Delete { store: PENDING, key: pending_key(&wallet) }];
        let written = match changeset_ops(&wallet, &changes, self.options.max_blob_bytes).and_then(|more| {
            integrity::check(&wallet, &changes, &self.known())?;
            Ok(more)
        }) {
            Ok(more) => {
                ops.extend(more);
                let reconnects = self.db.reconnects();
                match self.db.write(&WriteBatch { ops, strict: self.options.strict_durability }).await {
                    // The transaction may have committed all the same (after its deadline, or
                    // before the connection went): its pending row tells.
                    Err(error) if self.db.may_have_landed(&error, reconnects) => {
                        match self.db.get(PENDING, &pending_key(&wallet)).await {
                            Ok(None) => {
                                log_at!(Warn, "the promote of wallet {wallet} failed ({error}) but had committed");
                                Ok(())
                            }
                            Ok(Some(_)) | Err(_) => Err(error),
                        }
                    }
                    other => other,
                }
            }
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            if let Some(staged) = staged {
                self.buffer.borrow_mut().restore([(wallet, staged)]);
            }
            return Err(error);
        }
        self.learn_written(&wallet, &changes);
        log_at!(Info, "registered wallet {wallet}");
        self.notify(&[wallet]);
        Ok(())
    }

    /// Deletes the pending registration of `wallet`, if any (`WalletAlreadyExists` while
    /// `register_wallet` runs for it).
    pub async fn discard_pending(&self, wallet: WalletId) -> Result<()> {
        self.refuse_while_registering(wallet)?;
        self.check_writable(wallet)?;
        let _flush = self.flush_lock.lock().await;
        let delete = WriteOp::Delete { store: PENDING, key: pending_key(&wallet) };
        self.db.write(&WriteBatch { ops: vec![delete], strict: self.options.strict_durability }).await
    }

    /// Discards every pending registration (left by a page that died between stage and promote)
    /// in one transaction; returns the wallets discarded.
    pub(super) async fn discard_stale_pending(db: &Db<B>) -> Result<Vec<WalletId>> {
        let Some(rows) = db.read(&[PENDING]).await?.stores.pop() else {
            return Ok(Vec::new());
        };
        if rows.rows.is_empty() && rows.unreadable.is_empty() {
            return Ok(Vec::new());
        }
        db.write(&WriteBatch::new(vec![WriteOp::Clear { store: PENDING }])).await?;
        let wallets: Vec<WalletId> = rows
            .rows
            .iter()
            .filter_map(|row| match row.key.first() {
                Some(KeyPart::Text(hex)) => WalletId::from_hex(hex).ok(),
                _ => None,
            })
            .collect();
        for wallet in &wallets {
            log_at!(Warn, "discarded the unfinished registration of wallet {wallet} (stopped before promote)");
        }
        Ok(wallets)
    }
}

//! Two-phase wallet registration: stage under `pending` (durable), run the caller's init step,
//! promote pending → live in one transaction. A registration that fails at any step leaves zero
//! rows of the wallet; a pending record left by a page that died in between is discarded at open.

use std::future::Future;

use super::rows::changeset_ops;
use super::{Claim, Persister};
use crate::backend::{Backend, WriteBatch, WriteOp};
use crate::codec;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::layout::{PENDING, WALLETS};
use crate::log::log_at;
use crate::model::{entry_key, KeyPart, WalletChangeSet, WalletId};

fn pending_key(wallet: &WalletId) -> crate::model::Key {
    entry_key(wallet, &())
}

impl<B: Backend> Persister<B> {
    /// Registers `wallet`: refuses an existing one (`WalletAlreadyExists`), stages `changes`
    /// durably under `pending`, runs `init`, then promotes in one transaction. If `init` fails
    /// (the inner `Err`) or any step fails (the outer `Err`), the pending record and anything
    /// staged for the wallet meanwhile are discarded: no row of the wallet remains, and a retry
    /// with the same id can succeed.
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
        self.store_pending(wallet, changes).await?;
        if let Err(error) = init.await {
            self.roll_back_registration(wallet, "its init step failed").await;
            return Ok(Err(error));
        }
        if let Err(error) = self.promote(wallet).await {
            self.roll_back_registration(wallet, "promote failed").await;
            return Err(error);
        }
        Ok(Ok(()))
    }

    async fn roll_back_registration(&self, wallet: WalletId, why: &str) {
        self.buffer.borrow_mut().take_wallet(&wallet);
        match self.discard_pending(wallet).await {
            Ok(()) => log_at!(Warn, "registration of wallet {wallet} rolled back: {why}"),
            Err(error) => log_at!(
                Error,
                "registration of wallet {wallet} failed ({why}) and its pending record could not be discarded ({error}); it is discarded at the next open"
            ),
        }
    }

    /// Whether the wallet has a live record or a pending registration.
    pub async fn wallet_exists(&self, wallet: WalletId) -> Result<bool> {
        let live = self.db.get(WALLETS, &entry_key(&wallet, &())).await?.is_some();
        Ok(live || self.db.get(PENDING, &pending_key(&wallet)).await?.is_some())
    }

    /// Phase one: validates `changes` (which must include the wallet record) and writes them as
    /// one `pending` row. Refuses a wallet that exists or is pending.
    pub async fn store_pending(&self, wallet: WalletId, changes: WalletChangeSet) -> Result<()> {
        self.check_writable(wallet)?;
        if changes.wallet.is_none() {
            return Err(Error::InvalidArgument("a registration needs the wallet record (changes.wallet)".into()));
        }
        changes.validate(&wallet, self.options.max_blob_bytes)?;
        if self.wallet_exists(wallet).await? {
            return Err(Error::WalletAlreadyExists(wallet));
        }
        let value = codec::encode(&(wallet, &changes), self.options.max_blob_bytes)?;
        let put = WriteOp::Put { store: PENDING, key: pending_key(&wallet), value };
        self.db.write(&WriteBatch { ops: vec![put], strict: self.options.strict_durability }).await
    }

    /// Phase two: moves the pending changeset into the live stores and deletes the pending row,
    /// in one transaction. `PendingRegistrationMissing` if there is nothing to promote.
    pub async fn promote(&self, wallet: WalletId) -> Result<()> {
        self.check_writable(wallet)?;
        let _flush = self.flush_lock.lock().await;
        let bytes =
            self.db.get(PENDING, &pending_key(&wallet)).await?.ok_or(Error::PendingRegistrationMissing(wallet))?;
        let (stored, changes): (WalletId, WalletChangeSet) = codec::decode(&bytes, self.options.max_blob_bytes)?;
        if stored != wallet {
            return Err(Error::WalletIdMismatch { expected: wallet, found: stored });
        }
        let mut ops = vec![WriteOp::Delete { store: PENDING, key: pending_key(&wallet) }];
        ops.extend(changeset_ops(&wallet, &changes, self.options.max_blob_bytes)?);
        self.db.write(&WriteBatch { ops, strict: self.options.strict_durability }).await?;
        log_at!(Info, "registered wallet {wallet}");
        self.notify(&[wallet]);
        Ok(())
    }

    /// Deletes the pending registration of `wallet`, if any.
    pub async fn discard_pending(&self, wallet: WalletId) -> Result<()> {
        self.check_writable(wallet)?;
        let delete = WriteOp::Delete { store: PENDING, key: pending_key(&wallet) };
        self.db.write(&WriteBatch { ops: vec![delete], strict: self.options.strict_durability }).await
    }

    /// Discards every pending registration (left by a page that died between stage and promote)
    /// in one transaction; returns the wallets discarded.
    pub(super) async fn discard_stale_pending(db: &Db<B>) -> Result<Vec<WalletId>> {
        let Some(rows) = db.read(&[PENDING], None).await?.stores.pop() else {
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

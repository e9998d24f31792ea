//! Export and import of whole databases (format: [`crate::backup`]).

use serde::Serialize;

use super::Persister;
use crate::backend::{Backend, Row, WriteBatch, WriteOp};
use crate::backup::{self, backup_stores};
use crate::error::{Error, Result};
use crate::log::log_at;
use crate::model::{KeyPart, WalletId};

/// Progress of a long operation: `(phase, rows done, rows in total)`.
pub type Progress<'a> = &'a mut dyn FnMut(&'static str, u64, u64);

/// What `import_backup` wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Rows written, over every store.
    pub rows: u32,
    /// Wallets with a wallet record in the backup.
    pub wallets: u32,
    /// When the backup was taken (unix ms).
    pub created_at_ms: u64,
}

impl<B: Backend> Persister<B> {
    /// Every row of every backup store as a validated backup file. Rows that would fail to load
    /// (corrupt on disk) are left out and logged, so the backup always imports.
    pub async fn export_backup(&self, created_at_ms: u64, progress: Progress<'_>) -> Result<Vec<u8>> {
        if self.closed.get() {
            return Err(Error::Closed);
        }
        let stores: Vec<&'static str> = backup_stores().collect();
        let reads = self.backend.read(&stores).await?;
        let mut dump: Vec<(&'static str, Vec<Row>)> = Vec::with_capacity(stores.len());
        for (store, read) in stores.iter().copied().zip(reads) {
            let rows = match read {
                Ok(rows) => rows,
                Err(_) => self.backend.scan(store).await?,
            };
            for (key, error) in &rows.unreadable {
                log_at!(Error, "export: left out unreadable row {store} {key}: {error}");
            }
            dump.push((store, rows.rows));
        }
        let total: u64 = dump.iter().map(|(_, rows)| rows.len() as u64).sum();
        let mut done = 0u64;
        for (store, rows) in &mut dump {
            rows.retain(|row| {
                done += 1;
                if done % 1_000 == 0 {
                    progress("export", done, total);
                }
                match backup::check_row(store, row) {
                    Ok(()) => true,
                    Err(error) => {
                        log_at!(Error, "export: left out corrupt row {store} {}: {error}", super::key_to_string(&row.key));
                        false
                    }
                }
            });
        }
        progress("export", total, total);
        let bytes = backup::encode(&dump, created_at_ms)?;
        log_at!(Info, "exported {total} row(s), {} bytes", bytes.len());
        Ok(bytes)
    }

    /// Validates all of `bytes` first (nothing is touched if anything is wrong), then replaces the
    /// backup stores of this database with the backup's rows in one transaction. A database that
    /// holds any row is refused with `BackupDestinationNotEmpty` unless `overwrite`.
    pub async fn import_backup(&self, bytes: &[u8], overwrite: bool, progress: Progress<'_>) -> Result<ImportReport> {
        let backup = backup::decode(bytes, &mut |done, total| progress("validate", done, total))?;
        if self.closing.get() || self.closed.get() {
            return Err(Error::Closed);
        }
        if self.options.read_only {
            return Err(Error::ReadOnlyFollower(String::from("this database")));
        }
        if !self.buffer.borrow().is_empty() || !self.channel_state.borrow().dirty().is_empty() {
            return Err(Error::InvalidArgument("flush (or close) staged changes and commit queued channel changes before importing a backup".into()));
        }
        let _flush = self.flush_lock.lock().await;
        let _channels = self.channel_lock.lock().await;
        let stores: Vec<&'static str> = backup_stores().collect();
        if !overwrite {
            for read in self.backend.read(&stores).await? {
                let occupied = match read {
                    Ok(rows) => !rows.rows.is_empty() || !rows.unreadable.is_empty(),
                    Err(_) => true,
                };
                if occupied {
                    return Err(Error::BackupDestinationNotEmpty);
                }
            }
        }
        let total = backup.row_count() as u64;
        let mut ops: Vec<WriteOp> = stores.iter().map(|store| WriteOp::Clear { store }).collect();
        let mut wallets: Vec<WalletId> = Vec::new();
        for (store, rows) in backup.stores {
            for row in rows {
                if store == "wallets" {
                    if let Some(KeyPart::Text(hex)) = row.key.first() {
                        wallets.extend(WalletId::from_hex(hex).ok());
                    }
                }
                ops.push(WriteOp::Put { store, key: row.key, value: row.value });
            }
        }
        progress("write", 0, total);
        self.write(&WriteBatch { ops, strict: self.options.strict_durability }).await?;
        // The channel stores were replaced: what was known of them is stale.
        self.channel_state.borrow_mut().clear();
        progress("write", total, total);
        log_at!(Info, "imported {total} row(s) of {} wallet(s)", wallets.len());
        self.notify(&wallets);
        Ok(ImportReport { rows: total as u32, wallets: wallets.len() as u32, created_at_ms: backup.created_at_ms })
    }
}

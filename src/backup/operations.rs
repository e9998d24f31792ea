//! Export and import of whole databases over the database core (format: [`super::format`]).
//! The caller holds every write lock and has nothing staged.

use serde::Serialize;

use super::format;
use crate::backend::{Backend, Row, WriteBatch, WriteOp};
use crate::channels::HistoryEntry;
use crate::codec::{self, MAX_BLOB_BYTES};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::layout::{backup_stores, CHANNEL_HISTORY, WALLETS};
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

/// Every row of every backup store of `db` as a validated backup file. Rows that would fail to
/// load (corrupt on disk) are left out and logged, so the backup always imports.
pub async fn export<B: Backend>(db: &Db<B>, created_at_ms: u64, progress: Progress<'_>) -> Result<Vec<u8>> {
    let stores: Vec<&'static str> = backup_stores().collect();
    let reads = db.read(&stores).await?;
    let mut dump: Vec<(&'static str, Vec<Row>)> = Vec::with_capacity(stores.len());
    for rows in reads.stores {
        let store = rows.store;
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
            match format::check_row(store, row) {
                Ok(()) => true,
                Err(error) => {
                    log_at!(
                        Error,
                        "export: left out corrupt row {store} {}: {error}",
                        crate::model::key_to_string(&row.key)
                    );
                    false
                }
            }
        });
        if *store == CHANNEL_HISTORY {
            leave_out_repeated_ids(rows);
        }
    }
    progress("export", total, total);
    let bytes = format::encode(&dump, created_at_ms)?;
    log_at!(Info, "exported {total} row(s), {} bytes", bytes.len());
    Ok(bytes)
}

/// Leaves out (logged) each history row whose message id an earlier row of its channel holds
/// (rows in key order: the lowest seq is kept). `loadChannel` and import refuse a channel with an
/// id stored twice, so a backup with one would never import.
fn leave_out_repeated_ids(rows: &mut Vec<Row>) {
    // One `channel length:channel id` spelling per row (`None`: not a history entry, kept), then
    // only looked up: a `HashSet<&str>`, whose instance the .wasm already holds.
    let spelled: Vec<Option<String>> = rows
        .iter()
        .map(|row| {
            let (channel, _, entry): (String, u32, HistoryEntry) = codec::decode(&row.value, MAX_BLOB_BYTES).ok()?;
            Some(format!("{}:{channel}{}", channel.len(), entry.id))
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut spelled = spelled.iter();
    rows.retain(|row| match spelled.next().and_then(Option::as_deref) {
        Some(spelling) if !seen.insert(spelling) => {
            log_at!(
                Error,
                "export: left out {CHANNEL_HISTORY} {}: its message id is stored twice in its channel",
                crate::model::key_to_string(&row.key)
            );
            false
        }
        _ => true,
    });
}

/// Replaces the backup stores of `db` with the rows of `backup` (already validated) in one
/// transaction; returns the report and the wallets the backup holds. A database that holds any
/// row is refused with `BackupDestinationNotEmpty` unless `overwrite`.
pub async fn import<B: Backend>(
    db: &Db<B>,
    backup: format::Backup,
    overwrite: bool,
    strict: bool,
    progress: Progress<'_>,
) -> Result<(ImportReport, Vec<WalletId>)> {
    db.check_writable()?;
    let stores: Vec<&'static str> = backup_stores().collect();
    if !overwrite {
        for read in db.backend().read(&stores).await? {
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
            if store == WALLETS {
                if let Some(KeyPart::Text(hex)) = row.key.first() {
                    wallets.extend(WalletId::from_hex(hex).ok());
                }
            }
            ops.push(WriteOp::Put { store, key: row.key, value: row.value });
        }
    }
    progress("write", 0, total);
    db.write(&WriteBatch { ops, strict }).await?;
    progress("write", total, total);
    log_at!(Info, "imported {total} row(s) of {} wallet(s)", wallets.len());
    let report =
        ImportReport { rows: total as u32, wallets: wallets.len() as u32, created_at_ms: backup.created_at_ms };
    Ok((report, wallets))
}

//! Locking and unlocking a database: at open (before the schema gate, so a refusal writes
//! nothing), turning a plain database into an encrypted one, and changing the secret. Every read
//! and write is bounded by the store's deadline like any other call: at open by the open's own
//! bound (a lost connection fails the open, retryably), later through the [`Db`] (reconnecting
//! once when the connection is lost).

use std::rc::Rc;

use serde::Serialize;

use super::record::record_key;
use super::{Cipher, KdfParams, KeyRecord, Secret};
use crate::backend::{Backend, EncryptedBackend, Row, StoreRows, WriteBatch, WriteOp};
use crate::backup::Progress;
use crate::codec;
use crate::db::{within, Db, Deadline};
use crate::error::{Error, Result};
use crate::layout::{all_stores, DB_META};
use crate::log::log_at;

/// What `open` was asked for: the secret, and the Argon2id cost for a database it creates.
pub struct Request {
    /// The passphrase or key.
    pub secret: Secret,
    /// Argon2id parameters for a new key record (an existing one keeps its own).
    pub params: KdfParams,
}

/// Every store whose rows are sealed (all but `db_meta`).
fn sealed_stores() -> Vec<&'static str> {
    all_stores().filter(|store| *store != DB_META).collect()
}

/// Every row of every sealed store as stored; a store whose bulk read fails is read row by row.
async fn read_all<B: Backend>(backend: &B) -> Result<Vec<StoreRows>> {
    let stores = sealed_stores();
    let mut out = Vec::with_capacity(stores.len());
    for (store, read) in stores.iter().zip(backend.read(&stores).await?) {
        out.push(match read {
            Ok(rows) => rows,
            Err(_) => backend.scan(store).await?,
        });
    }
    Ok(out)
}

/// Refuses (`WrongKey`) rows sealed by an encrypted database found where there is no key record:
/// the record was removed (or lost), so no secret opens them. Taken for a plain database, the
/// advice to open it plain and `encrypt()` it would seal them again, unreadable for good.
fn refuse_sealed_without_record<'a>(mut rows: impl Iterator<Item = &'a Row>) -> Result<()> {
    match rows.find(|row| codec::is_sealed(&row.value)) {
        None => Ok(()),
        Some(_) => Err(Error::WrongKey(
            "this database holds sealed rows but no key record (it was removed or lost): no passphrase or key can \
             open them, and nothing was written; restore the key record (db_meta) or a backup"
                .into(),
        )),
    }
}

/// The key record of the database behind `db`, if it is encrypted.
async fn stored_record<B: Backend>(db: &Db<B>) -> Result<Option<KeyRecord>> {
    KeyRecord::decode(db.get(DB_META, &record_key()).await?)
}

/// Unlocks the database behind `backend` (sets its cipher), or refuses, changing nothing:
/// - encrypted, no request → `WrongKey` (a key is needed);
/// - encrypted, wrong secret → `WrongKey`, detected from the key record alone;
/// - plain with rows, a request → `NotEncrypted` (open it plain, then [`encrypt`]);
/// - empty, a request, `may_create` → a new data key and key record, written in one transaction;
///   refused (`SchemaVersionUnsupported`, nothing written) when the schema stamp does not let
///   this build write the database.
///
/// Each read and write is bounded by `deadline` (the key derivation, CPU work, is not): a stall
/// fails with `Timeout` (the key record of a new database may still land: opening again with the
/// same secret then unlocks it).
pub async fn unlock<B: Backend>(
    backend: &EncryptedBackend<B>,
    request: Option<&Request>,
    may_create: bool,
    deadline: Option<&Deadline>,
) -> Result<()> {
    let stalled = |ms| format!("unlocking the database: IndexedDB made no progress for {ms} ms; open it again");
    let record = within(deadline, KeyRecord::read(backend.inner()), stalled).await?;
    match (record, request) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(Error::WrongKey(
            "this database is encrypted: open it with encryption: { passphrase } or { key }".into(),
        )),
        (Some(record), Some(request)) => {
            let data_key = record.unlock(&request.secret)?;
            backend.set_cipher(Some(Rc::new(Cipher::new(&data_key))));
            backend.set_record(Some(record), may_create);
            Ok(())
        }
        (None, Some(request)) => {
            let stores = within(deadline, read_all(backend.inner()), stalled).await?;
            refuse_sealed_without_record(stores.iter().flat_map(|rows| &rows.rows))?;
            if !stores.iter().all(|r| r.rows.is_empty() && r.unreadable.is_empty()) || !may_create {
                return Err(Error::NotEncrypted(
                    "this database is not encrypted: open it without `encryption`, then call encrypt()".into(),
                ));
            }
            // The key record is written before the schema gate runs: never into a database the
            // gate would refuse, or open read-only.
            within(deadline, crate::db::schema::check_may_write(backend.inner()), stalled).await?;
            let (record, data_key) = KeyRecord::create(&request.secret, request.params)?;
            let batch = WriteBatch { ops: vec![record.op()?], strict: true };
            within(deadline, backend.inner().write(&batch), stalled).await?;
            backend.set_cipher(Some(Rc::new(Cipher::new(&data_key))));
            backend.set_record(Some(record), true);
            log_at!(Info, "created an encrypted database");
            Ok(())
        }
    }
}

/// What [`encrypt`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptReport {
    /// Rows sealed, over every store.
    pub rows: u32,
    /// Rows left out because their value could not be read (already corrupt on disk).
    pub unreadable: u32,
}

/// Turns the plain database behind `db` into an encrypted one: reads every row, seals each under
/// a new data key, then replaces every store and writes the key record in ONE transaction, so a
/// crash leaves the old plain database or the new encrypted one, never a mix. `layer` is the
/// encrypting layer inside `db`'s backend (without a cipher, so `db` reads and writes rows as
/// stored). Every call goes through `db`: bounded by its deadline, reconnecting once when the
/// connection is lost. When the write fails the outcome may be unknown (a timeout: it may land
/// late); the next reconnect then reads the key record and seals from then on if it landed. The
/// caller holds every write lock and has nothing staged.
pub async fn encrypt<B: Backend, E: Backend>(
    db: &Db<B>,
    layer: &EncryptedBackend<E>,
    request: &Request,
    strict: bool,
    progress: Progress<'_>,
) -> Result<EncryptReport> {
    if layer.is_encrypted() || stored_record(db).await?.is_some() {
        return Err(Error::InvalidArgument("this database is already encrypted: use changePassphrase".into()));
    }
    let reads = db.read(&sealed_stores()).await?.stores;
    refuse_sealed_without_record(reads.iter().flat_map(|rows| &rows.rows))?;
    let total: u64 = reads.iter().map(|r| r.rows.len() as u64).sum();
    let mut report = EncryptReport { rows: total as u32, unreadable: 0 };
    let (record, data_key) = KeyRecord::create(&request.secret, request.params)?;
    let cipher = Rc::new(Cipher::new(&data_key));
    let mut plain = Vec::with_capacity(total as usize + reads.len() + 1);
    for rows in reads {
        for (key, error) in &rows.unreadable {
            log_at!(Error, "encrypt: left out unreadable row {} {key}: {error}", rows.store);
        }
        report.unreadable += rows.unreadable.len() as u32;
        plain.push(WriteOp::Clear { store: rows.store });
        plain.extend(rows.rows.into_iter().map(|row| WriteOp::Put {
            store: rows.store,
            key: row.key,
            value: row.value,
        }));
    }
    plain.push(record.op()?);
    let mut sealed = Vec::with_capacity(plain.len());
    let mut done = 0u64;
    for chunk in plain.chunks(1_000) {
        let batch = WriteBatch { ops: chunk.to_vec(), strict };
        sealed.extend(EncryptedBackend::<E>::seal_batch(&cipher, &batch)?.ops);
        done += chunk.iter().filter(|op| matches!(op, WriteOp::Put { store, .. } if *store != DB_META)).count() as u64;
        progress("seal", done, total);
    }
    progress("write", 0, total);
    // Set again after a failure: a reconnect inside the write (a lost connection) settles it.
    layer.set_landing(Some((record.clone(), cipher.clone())));
    layer.set_presealed(true);
    let written = db.write(&WriteBatch { ops: sealed, strict }).await;
    layer.set_presealed(false);
    if let Err(error) = written {
        layer.set_landing(Some((record, cipher)));
        return Err(error);
    }
    layer.set_landing(None);
    layer.set_cipher(Some(cipher));
    layer.set_record(Some(record), true);
    progress("write", total, total);
    log_at!(Info, "encrypted the database: {} row(s) sealed", report.rows);
    Ok(report)
}

/// Re-wraps the data key under `new` (checked first against `old`, `WrongKey` when it does not
/// unlock) and returns the new key record: one write of the key record, so a crash leaves the old
/// secret or the new one working.
/// Goes through `db` like every call (bounded, reconnecting once); after a timeout the write may
/// still land, so either secret may be the one that works.
pub async fn change_secret<B: Backend>(db: &Db<B>, old: &Secret, new: &Request, strict: bool) -> Result<KeyRecord> {
    let record = stored_record(db)
        .await?
        .ok_or_else(|| Error::NotEncrypted("this database is not encrypted: use encrypt()".into()))?;
    let data_key = record.unlock(old)?;
    let rewrapped = KeyRecord::wrap(&data_key, &new.secret, new.params)?;
    db.write(&WriteBatch { ops: vec![rewrapped.op()?], strict }).await.map_err(|error| match error {
        Error::Timeout(cause) => Error::Timeout(format!(
            "{cause} (the new secret may still land: until an open succeeds, try the old one and the new one)"
        )),
        other => other,
    })?;
    log_at!(Info, "the database's key was re-wrapped");
    Ok(rewrapped)
}

#[cfg(test)]
mod tests {
    use crate::layout::tests::{typescript_interface_fields, typescript_union};

    /// The TypeScript `EncryptReport` (src/js/types.rs) names exactly the fields `encrypt` returns.
    #[test]
    fn typescript_encrypt_report_matches() {
        let report = super::EncryptReport { rows: 1, unreadable: 2 };
        let super::EncryptReport { rows: _, unreadable: _ } = report;
        assert_eq!(typescript_interface_fields("EncryptReport"), ["rows", "unreadable"]);
        assert_eq!(typescript_interface_fields("KdfOptions"), ["memoryKib", "iterations"]);
        assert!(typescript_interface_fields("OpenOptions").contains(&"encryption".to_owned()));
        assert!(typescript_interface_fields("ImportOptions").contains(&"encryption".to_owned()));
        assert!(typescript_interface_fields("BackupOptions").contains(&"backupPassphrase".to_owned()));
        assert!(typescript_union("ErrorKind").contains(&"wrong_key"));
    }
}

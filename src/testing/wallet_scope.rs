//! Conformance checks of loading chosen wallets (`load_wallets`) and listing them
//! (`list_wallets`): exactly the requested wallets come back, with every check of a full load
//! applied to their rows and nothing of the other wallets read or reported.

use std::collections::BTreeSet;

use super::conformance::{manual, sample_changeset, wallet_id, Harness};
use crate::backend::{Backend, FaultyBackend, Op, WriteBatch, WriteOp};
use crate::error::Error;
use crate::layout::{RECORDS, UTXOS, WALLETS};
use crate::model::{key_to_string, Bytes, Key, KeyPart, Record, WalletId};
use crate::wallets::Persister;

fn set(wallets: &[WalletId]) -> BTreeSet<WalletId> {
    wallets.iter().copied().collect()
}

/// The key of an app record `name` of `wallet`.
fn record_key(wallet: &WalletId, name: &str) -> Key {
    vec![KeyPart::Text(wallet.to_hex()), KeyPart::Text("app".into()), KeyPart::Text(name.into())]
}

/// A row of `wallet` in `records` whose value is not an envelope (skipped with code 11).
fn garbage(wallet: &WalletId, name: &str) -> WriteOp {
    WriteOp::Put { store: RECORDS, key: record_key(wallet, name), value: vec![1, 2, 3] }
}

/// Three wallets with a row each that fails its checks, a fourth without its wallet record (an
/// orphan), and a wallet record that does not decode: the database of the checks below.
async fn seeded<B: Backend>(persister: &Persister<B>) -> [WalletId; 6] {
    let [a, b, c, orphan, broken, absent] = [41, 42, 43, 44, 45, 46].map(wallet_id);
    for (wallet, seed) in [(a, 41), (b, 42), (c, 43)] {
        persister.store(wallet, sample_changeset(seed)).await.unwrap();
    }
    persister.flush().await.unwrap();
    let value = Record { namespace: "app".into(), key: "o".into(), value: Bytes::from(vec![4u8; 4]) };
    let orphan_row = crate::codec::encode(&(orphan, &value), usize::MAX).unwrap();
    let raw = WriteBatch::new(vec![
        garbage(&a, "bad-a"),
        garbage(&b, "bad-b"),
        garbage(&c, "bad-c"),
        WriteOp::Put { store: RECORDS, key: record_key(&orphan, "o"), value: orphan_row },
        WriteOp::Put { store: WALLETS, key: vec![KeyPart::Text(broken.to_hex())], value: vec![9; 9] },
    ]);
    persister.backend().write(&raw).await.unwrap();
    [a, b, c, orphan, broken, absent]
}

/// `load_wallets` returns exactly the requested wallets, applies every check of `load` to their
/// rows (a corrupt row skipped and reported, an orphan skipped with 22), reports nothing of the
/// other wallets, and names the requested wallets that loaded nothing. `load` is unchanged.
pub async fn load_of_chosen_wallets_returns_exactly_them<H: Harness>(h: &H) {
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    let [a, b, c, orphan, broken, absent] = seeded(&persister).await;
    persister.close().await.unwrap();
    let persister = Persister::open(h.open().await, manual()).await.expect("reopen");

    let (state, report) = persister.load_wallets(&set(&[b])).await.unwrap();
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![b]);
    assert_eq!(state.wallets[&b], sample_changeset(42));
    let skipped: Vec<(&str, String, u16)> = report.skipped.iter().map(|s| (s.store, s.key.clone(), s.code)).collect();
    assert_eq!(skipped, vec![(RECORDS, key_to_string(&record_key(&b, "bad-b")), 11)]);
    assert_eq!(report.wallets, 1);
    assert!(report.rows.values().all(|n| *n == 1), "one row per area: {:?}", report.rows);
    assert_eq!(report.skipped_rows[RECORDS], 1);
    assert_eq!(report.not_found, Some(vec![]));
    assert!(report.scanned_stores.is_empty());

    // Several at once, with one that has only an orphan row, one with a broken record, one unknown.
    let (state, report) = persister.load_wallets(&set(&[absent, c, a, orphan, broken])).await.unwrap();
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![a, c]);
    assert_eq!((&state.wallets[&a], &state.wallets[&c]), (&sample_changeset(41), &sample_changeset(43)));
    let mut skipped: Vec<(&str, String, u16)> =
        report.skipped.iter().map(|s| (s.store, s.key.clone(), s.code)).collect();
    skipped.sort();
    let mut expected = vec![
        (RECORDS, key_to_string(&record_key(&a, "bad-a")), 11),
        (RECORDS, key_to_string(&record_key(&c, "bad-c")), 11),
        (RECORDS, key_to_string(&record_key(&orphan, "o")), 22),
        (WALLETS, key_to_string(&vec![KeyPart::Text(broken.to_hex())]), 11),
    ];
    expected.sort();
    assert_eq!(skipped, expected);
    assert_eq!(report.not_found, Some(vec![orphan, broken, absent]));
    assert_eq!(report.rows[UTXOS], 2);

    // None requested: nothing read, nothing found.
    let (state, report) = persister.load_wallets(&BTreeSet::new()).await.unwrap();
    assert!(state.wallets.is_empty());
    assert_eq!((report.not_found, report.skipped.len()), (Some(vec![]), 0));

    // A full load sees everything, as before.
    let (state, report) = persister.load().await.unwrap();
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![a, b, c]);
    assert_eq!(report.skipped.len(), 5);
    assert_eq!(report.not_found, None);
    persister.close().await.unwrap();
    assert_eq!(persister.load_wallets(&set(&[a])).await.unwrap_err(), Error::Closed);
}

/// `list_wallets` returns the record of every wallet `load` returns, in id order, reading only
/// the wallet-record store; a record that does not decode is skipped and reported.
pub async fn list_wallets_returns_the_records_load_returns<H: Harness>(h: &H) {
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    let empty = persister.list_wallets().await.unwrap();
    assert_eq!((empty.0.len(), empty.1.len()), (0, 0));
    let [a, b, c, _, broken, _] = seeded(&persister).await;
    persister.close().await.unwrap();
    let persister = Persister::open(h.open().await, manual()).await.expect("reopen");
    let (records, skipped) = persister.list_wallets().await.unwrap();
    let expected: Vec<_> = [41, 42, 43].map(|seed| sample_changeset(seed).wallet.unwrap()).into();
    assert_eq!(records, expected);
    assert_eq!(records.iter().map(|r| r.wallet_id).collect::<Vec<_>>(), vec![Some(a), Some(b), Some(c)]);
    let skipped: Vec<(&str, String, u16)> = skipped.iter().map(|s| (s.store, s.key.clone(), s.code)).collect();
    assert_eq!(skipped, vec![(WALLETS, key_to_string(&vec![KeyPart::Text(broken.to_hex())]), 11)]);
    let (state, _) = persister.load().await.unwrap();
    assert_eq!(state.wallets.values().map(|w| w.wallet.clone().unwrap()).collect::<Vec<_>>(), records);
    persister.close().await.unwrap();
    assert_eq!(persister.list_wallets().await.unwrap_err(), Error::Closed);
}

/// A store whose bulk read of the chosen wallets fails as a whole is read row by row: the same
/// wallets load, and the other wallets' rows of that store are left out. The row-by-row read
/// failing too fails the load.
pub async fn load_of_chosen_wallets_falls_back_to_row_by_row<H: Harness>(h: &H) {
    let persister = Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open");
    let [a, b, ..] = seeded(&persister).await;
    let (before, _) = persister.load_wallets(&set(&[b])).await.unwrap();
    persister.backend().fail_store_read(RECORDS, 1, Error::BlobDecode("NotReadableError: injected".into()));
    let (reads, scans) = (persister.backend().calls(Op::Read), persister.backend().calls(Op::Scan));
    let (after, report) = persister.load_wallets(&set(&[b])).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(after.wallets.keys().copied().collect::<Vec<_>>(), vec![b]);
    assert_eq!(report.scanned_stores, vec![RECORDS]);
    assert_eq!(report.rows[RECORDS], 1);
    let skipped: Vec<String> = report.skipped.iter().map(|s| s.key.clone()).collect();
    assert_eq!(skipped, vec![key_to_string(&record_key(&b, "bad-b"))]);
    assert_eq!(persister.backend().calls(Op::Read), reads + 1, "one bulk read for every store");
    assert_eq!(persister.backend().calls(Op::Scan), scans + 1);
    // The whole bulk read failing fails the load; so does the row-by-row read failing.
    persister.backend().fail_next(Op::Read, 1, Error::QuotaExceeded("injected".into()));
    assert_eq!(persister.load_wallets(&set(&[a])).await.unwrap_err().code(), 5);
    persister.backend().fail_store_read(UTXOS, 1, Error::BlobDecode("injected".into()));
    persister.backend().fail_next(Op::Scan, 1, Error::QuotaExceeded("injected".into()));
    assert_eq!(persister.load_wallets(&set(&[a])).await.unwrap_err().code(), 5);
    let (state, _) = persister.load_wallets(&set(&[a])).await.unwrap();
    assert_eq!(state.wallets[&a], sample_changeset(41));
    persister.close().await.unwrap();
}

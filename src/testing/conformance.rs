//! The behaviour suite every backend must pass: run on the host against `MemoryBackend` and in the
//! browser against IndexedDB. Each check asserts the exact state read back after a reopen.

use std::cell::RefCell;

use crate::backend::{Backend, FaultyBackend, Op, WriteBatch, WriteOp};
use crate::error::Error;
use crate::model::changeset::Merge;
use crate::model::*;
use crate::wallets::{FlushMode, Options, Persister};

/// Opens the database under test; calling it again after a close is a restart.
#[allow(async_fn_in_trait)]
pub trait Harness {
    type B: Backend;
    async fn open(&self) -> Self::B;
    /// Opens a second database of this test, distinct from the first (a backup's target).
    async fn open_other(&self) -> Self::B;
}

fn bytes(seed: u8, len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| seed.wrapping_add(i as u8)).collect::<Vec<u8>>())
}

fn hash(seed: u8, tag: u8) -> Hash32 {
    let mut h = [tag; 32];
    h[0] = seed;
    Hash32(h)
}

/// A wallet id derived from a seed.
pub fn wallet_id(seed: u8) -> WalletId {
    let mut id = [0xab; 32];
    id[31] = seed;
    WalletId(id)
}

/// A changeset with one upsert in every area; `seed` varies every value.
pub fn sample_changeset(seed: u8) -> WalletChangeSet {
    let outpoint = OutPoint { txid: hash(seed, 1), vout: u32::from(seed) };
    let mut cs = WalletChangeSet {
        wallet: Some(WalletRecord {
            wallet_id: Some(wallet_id(seed)),
            network: "testnet".into(),
            label: format!("wallet {seed}"),
            birth_height: 100 + u32::from(seed),
            created_at_ms: 1_700_000_000_000 + u64::from(seed),
            account_schema: 1,
        }),
        sync_state: Some(SyncState {
            height: 2_000 + u32::from(seed),
            tip_hash: hash(seed, 2),
            last_sync_ms: 1_700_000_100_000,
        }),
        ..Default::default()
    };
    cs.accounts.upsert(Account {
        index: u32::from(seed),
        kind: "bip84".into(),
        descriptor: format!("wpkh(tpub{seed}/0/*)"),
    });
    cs.addresses.upsert(AddressEntry {
        address: format!("tb1q{seed:04}"),
        account: 0,
        index: u32::from(seed),
        used: seed % 2 == 0,
    });
    cs.utxos.upsert(Utxo {
        outpoint,
        value: u64::MAX - u64::from(seed),
        script: bytes(seed, 22),
        height: Some(7),
        account: 0,
    });
    cs.transactions.upsert(TransactionEntry {
        txid: hash(seed, 1),
        raw: bytes(seed, 300),
        height: None,
        timestamp_ms: Some(1_700_000_000_123),
        fee: Some(141),
    });
    cs.identities.upsert(Identity {
        id: hash(seed, 3),
        index: Some(0),
        revision: 2,
        balance: 1 << 60,
        blob: bytes(seed, 64),
    });
    cs.identity_keys.upsert(IdentityKey {
        identity: hash(seed, 3),
        key_id: 1,
        purpose: 0,
        security_level: 2,
        public_key: bytes(seed, 33),
    });
    cs.contacts.upsert(Contact {
        kind: ContactKind::Established,
        contact: hash(seed, 4),
        request: bytes(seed, 40),
        created_ms: 1,
        updated_ms: 2,
    });
    cs.asset_locks.upsert(AssetLock {
        account: 1,
        outpoint,
        status: "chainLocked".into(),
        amount: 50_000,
        proof: bytes(seed, 80),
    });
    cs.token_balances.upsert(TokenBalance {
        identity: hash(seed, 3),
        token: hash(seed, 5),
        amount: 9_007_199_254_740_993,
    });
    cs.platform_addresses.upsert(PlatformAddress { address: format!("plat{seed}"), balance: 12, nonce: 3 });
    cs.records.upsert(Record { namespace: "app".into(), key: format!("k{seed}"), value: bytes(seed, 10) });
    cs
}

pub(crate) fn manual() -> Options {
    Options { flush_mode: FlushMode::Manual, ..Default::default() }
}

async fn reopen_and_load<H: Harness>(h: &H) -> ClientStartState {
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    let (state, report) = persister.load().await.expect("load");
    assert!(report.skipped.is_empty(), "no row may be skipped: {:?}", report.skipped);
    persister.close().await.expect("close");
    state
}

/// A tombstone for every key of `area`.
fn tombstones<E: Entry>(area: &EntryMap<E>) -> EntryMap<E> {
    EntryMap(area.0.keys().map(|key| (key.clone(), None)).collect())
}

/// Every area round-trips across close and reopen; tombstones delete.
pub async fn round_trip_every_area_with_tombstones<H: Harness>(h: &H) {
    let (a, b) = (wallet_id(1), wallet_id(2));
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    persister.store(a, sample_changeset(1)).await.unwrap();
    persister.store(b, sample_changeset(2)).await.unwrap();
    let report = persister.commit().await.unwrap();
    assert_eq!(report.succeeded, vec![a, b]);
    persister.close().await.unwrap();

    let state = reopen_and_load(h).await;
    assert_eq!(state.wallets.len(), 2);
    assert_eq!(state.wallets[&a], sample_changeset(1));
    assert_eq!(state.wallets[&b], sample_changeset(2));

    // Tombstone one entry of every keyed area of wallet a; overwrite a singleton.
    let full = sample_changeset(1);
    let mut deletes = WalletChangeSet::default();
    deletes.accounts.tombstone(1);
    deletes.addresses.tombstone("tb1q0001".into());
    deletes.utxos = tombstones(&full.utxos);
    deletes.transactions = tombstones(&full.transactions);
    deletes.identities = tombstones(&full.identities);
    deletes.identity_keys = tombstones(&full.identity_keys);
    deletes.contacts = tombstones(&full.contacts);
    deletes.asset_locks = tombstones(&full.asset_locks);
    deletes.token_balances = tombstones(&full.token_balances);
    deletes.platform_addresses.tombstone("plat1".into());
    deletes.records.tombstone(("app".into(), "k1".into()));
    deletes.sync_state = Some(SyncState { height: 9, tip_hash: Hash32([9; 32]), last_sync_ms: 9 });
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    persister.store(a, deletes).await.unwrap();
    persister.flush().await.unwrap();
    persister.close().await.unwrap();

    let state = reopen_and_load(h).await;
    let expected_a = WalletChangeSet {
        wallet: full.wallet.clone(),
        sync_state: Some(SyncState { height: 9, tip_hash: Hash32([9; 32]), last_sync_ms: 9 }),
        ..Default::default()
    };
    assert_eq!(state.wallets[&a], expected_a);
    assert_eq!(state.wallets[&b], sample_changeset(2));
}

/// A transient failure restores the taken changes under a `store` made meanwhile; the retry lands both.
pub async fn transient_failure_restores_buffer_under_newer_writes<H: Harness>(h: &H) {
    let (a, b) = (wallet_id(3), wallet_id(4));
    let persister = Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open");
    persister.store(a, sample_changeset(3)).await.unwrap();
    persister.store(b, sample_changeset(4)).await.unwrap();
    persister.backend().fail_next(Op::Write, 1, Error::QuotaExceeded("injected".into()));

    // The newer label is staged while the failing flush is in flight.
    let newer = WalletChangeSet {
        wallet: Some(WalletRecord { label: "renamed".into(), ..sample_changeset(3).wallet.unwrap() }),
        ..Default::default()
    };
    let flush = persister.flush();
    let store = persister.store(a, newer.clone());
    let (flushed, stored) = join2(flush, store).await;
    stored.unwrap();
    match flushed {
        Err(Error::FlushRetryable { wallets, cause, .. }) => {
            assert_eq!(wallets, vec![a, b]);
            assert_eq!(*cause, Error::QuotaExceeded("injected".into()));
        }
        other => panic!("expected FlushRetryable, got {other:?}"),
    }
    let mut expected_a = sample_changeset(3);
    expected_a.merge(newer);
    assert_eq!(persister.staged_changes(&a), Some(expected_a.clone()));
    assert_eq!(persister.staged_changes(&b), Some(sample_changeset(4)));

    let report = persister.flush().await.unwrap();
    assert_eq!(report.succeeded, vec![a, b]);
    assert!(persister.staged().is_empty());
    persister.close().await.unwrap();

    let state = reopen_and_load(h).await;
    assert_eq!(state.wallets[&a], expected_a);
    assert_eq!(state.wallets[&a].wallet.as_ref().unwrap().label, "renamed");
    assert_eq!(state.wallets[&b], sample_changeset(4));
}

/// A fatal failure of one wallet drops only its changes; the other wallets still commit.
pub async fn fatal_failure_drops_only_that_wallet<H: Harness>(h: &H) {
    let (a, bad, c) = (wallet_id(5), wallet_id(6), wallet_id(7));
    let persister = Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open");
    for (id, seed) in [(a, 5), (bad, 6), (c, 7)] {
        persister.store(id, sample_changeset(seed)).await.unwrap();
    }
    persister.backend().fail_wallet(bad, u32::MAX, Error::Internal("DataError: injected".into()));
    let report = persister.commit().await.unwrap();
    assert_eq!(report.succeeded, vec![a, c]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].wallet_id, bad);
    assert_eq!(report.failed[0].code, 99);
    assert!(report.still_pending.is_empty());
    assert!(persister.staged().is_empty(), "the failed wallet's changes are dropped");
    persister.backend().clear();
    persister.close().await.unwrap();

    let state = reopen_and_load(h).await;
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![a, c]);
    assert_eq!(state.wallets[&a], sample_changeset(5));
    assert_eq!(state.wallets[&c], sample_changeset(7));
}

/// Partitioned report: one wallet fatal, one transient, one fine.
pub async fn commit_report_partitions_wallets<H: Harness>(h: &H) {
    let (ok, fatal, transient) = (wallet_id(8), wallet_id(9), wallet_id(10));
    let persister = Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open");
    for (id, seed) in [(ok, 8), (fatal, 9), (transient, 10)] {
        persister.store(id, sample_changeset(seed)).await.unwrap();
    }
    persister.backend().fail_wallet(fatal, 2, Error::BlobDecode("injected".into()));
    persister.backend().fail_wallet(transient, 1, Error::Timeout("injected".into()));
    let report = persister.commit().await.unwrap();
    assert_eq!(report.succeeded, vec![ok]);
    assert_eq!(report.failed.iter().map(|f| f.wallet_id).collect::<Vec<_>>(), vec![fatal]);
    assert_eq!(report.still_pending, vec![transient]);
    assert_eq!(persister.staged(), vec![(transient, sample_changeset(10).field_count())]);
    let retry = persister.commit().await.unwrap();
    assert_eq!(retry.succeeded, vec![transient]);
    persister.close().await.unwrap();

    let state = reopen_and_load(h).await;
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![ok, transient]);
    assert_eq!(state.wallets[&transient], sample_changeset(10));
}

/// Immediate mode rejects `store` with the retryable error and keeps the change staged.
pub async fn immediate_mode_keeps_data_staged_on_transient_failure<H: Harness>(h: &H) {
    let a = wallet_id(11);
    let options = Options { flush_mode: FlushMode::Immediate, ..Default::default() };
    let persister = Persister::open(FaultyBackend::new(h.open().await), options).await.expect("open");
    persister.backend().fail_next(Op::Write, 1, Error::TransactionAborted("injected".into()));
    let error = persister.store(a, sample_changeset(11)).await.unwrap_err();
    assert_eq!(error.code(), 4);
    assert!(error.is_transient());
    assert_eq!(error.wallet_ids(), vec![a]);
    assert_eq!(persister.staged_changes(&a), Some(sample_changeset(11)));

    let mut more = WalletChangeSet::default();
    more.records.upsert(Record { namespace: "app".into(), key: "later".into(), value: bytes(1, 3) });
    let report = persister.store(a, more.clone()).await.unwrap().expect("immediate mode reports");
    assert_eq!(report.succeeded, vec![a]);
    assert!(persister.staged().is_empty());
    persister.close().await.unwrap();

    let mut expected = sample_changeset(11);
    expected.merge(more);
    assert_eq!(reopen_and_load(h).await.wallets[&a], expected);
}

/// `load` of an empty database: no wallets, every area counted at zero, nothing skipped.
pub async fn load_on_empty_database_is_empty<H: Harness>(h: &H) {
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    let (state, report) = persister.load().await.unwrap();
    assert!(state.wallets.is_empty());
    assert_eq!(report.wallets, 0);
    assert_eq!(report.rows.len(), AREA_STORES.len());
    assert!(report.rows.values().all(|n| *n == 0));
    assert!(report.skipped.is_empty());
    persister.close().await.unwrap();
}

/// Invalid changesets are refused with their code; buffer and disk stay exactly as they were.
pub async fn bad_input_stages_nothing<H: Harness>(h: &H) {
    let (a, other) = (wallet_id(12), wallet_id(13));
    let persister = Persister::open(h.open().await, Options { max_blob_bytes: 512, ..manual() }).await.expect("open");
    persister.store(a, sample_changeset(12)).await.unwrap();
    persister.flush().await.unwrap();
    let mut staged = WalletChangeSet::default();
    staged.platform_addresses.upsert(PlatformAddress { address: "staged".into(), balance: 1, nonce: 1 });
    persister.store(a, staged.clone()).await.unwrap();

    let mut mismatched_key = WalletChangeSet::default();
    mismatched_key.accounts.0.insert(7, Some(Account { index: 8, kind: "bip84".into(), descriptor: "d".into() }));
    let foreign_record = WalletChangeSet {
        wallet: Some(WalletRecord { wallet_id: Some(other), ..sample_changeset(12).wallet.unwrap() }),
        ..Default::default()
    };
    let mut huge = WalletChangeSet::default();
    huge.records.upsert(Record { namespace: "app".into(), key: "big".into(), value: Bytes::from(vec![0u8; 1024]) });
    // A valid entry beside the bad one: nothing of the changeset may be staged.
    huge.accounts.upsert(Account { index: 40, kind: "bip84".into(), descriptor: "ok".into() });

    assert_eq!(persister.store(a, mismatched_key).await.unwrap_err().code(), 13);
    assert_eq!(
        persister.store(a, foreign_record).await.unwrap_err(),
        Error::WalletIdMismatch { expected: a, found: other }
    );
    match persister.store(a, huge).await.unwrap_err() {
        Error::BlobTooLarge { limit: 512, len } => assert!(len > 1024, "{len}"),
        other => panic!("expected BlobTooLarge, got {other:?}"),
    }
    assert_eq!(persister.staged_changes(&a), Some(staged.clone()));
    assert_eq!(persister.staged().len(), 1);
    persister.close().await.unwrap();
    let mut expected = sample_changeset(12);
    expected.merge(staged);
    let state = reopen_and_load(h).await;
    assert_eq!(state.wallets.len(), 1);
    assert_eq!(state.wallets[&a], expected);
}

/// Close flushes what is staged; afterwards every call is refused with `Closed`.
pub async fn close_flushes_and_refuses_later_calls<H: Harness>(h: &H) {
    let a = wallet_id(13);
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    persister.store(a, sample_changeset(13)).await.unwrap();
    let report = persister.close().await.unwrap();
    assert_eq!(report.flush.succeeded, vec![a]);
    assert_eq!(persister.store(a, sample_changeset(13)).await.unwrap_err(), Error::Closed);
    assert_eq!(persister.commit().await.unwrap_err(), Error::Closed);
    assert_eq!(persister.load().await.unwrap_err(), Error::Closed);
    assert_eq!(reopen_and_load(h).await.wallets[&a], sample_changeset(13));
}

/// The envelope of `value` stored for `wallet`, as the persister writes it.
fn row_bytes<E: Entry>(wallet: &WalletId, value: &E) -> Vec<u8> {
    crate::codec::encode(&(wallet, value), usize::MAX).unwrap()
}

/// Hostile rows beside good ones: every good row loads, every bad one is skipped with its reason.
pub async fn corrupt_rows_are_skipped_and_reported<H: Harness>(h: &H) {
    let (a, other) = (wallet_id(14), wallet_id(15));
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    persister.store(a, sample_changeset(14)).await.unwrap();
    persister.flush().await.unwrap();
    let record = |k: &str| Record { namespace: "app".into(), key: k.into(), value: Bytes::from(vec![7u8; 4]) };
    let key = |k: &str| vec![KeyPart::Text(a.to_hex()), KeyPart::Text("app".into()), KeyPart::Text(k.into())];
    let valid = row_bytes(&a, &record("trailing"));
    let mut trailing = valid.clone();
    trailing.push(0);
    let mut truncated = row_bytes(&a, &record("truncated"));
    truncated.truncate(truncated.len() - 2);
    let mut future = row_bytes(&a, &record("future"));
    future[5..7].copy_from_slice(&(crate::codec::SCHEMA_VERSION + 1).to_le_bytes());
    let mut magic = row_bytes(&a, &record("magic"));
    magic[0] = b'X';
    // A payload whose first string (the record's namespace, after the wallet id) claims 2^40 bytes.
    let mut prefix = a.0.to_vec();
    prefix.push(0xfd);
    prefix.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let mut huge_prefix = crate::codec::MAGIC.to_vec();
    huge_prefix.push(0);
    huge_prefix.extend_from_slice(&crate::codec::SCHEMA_VERSION.to_le_bytes());
    huge_prefix.extend_from_slice(&(prefix.len() as u32).to_le_bytes());
    huge_prefix.extend_from_slice(&prefix);
    let shape = row_bytes(&a, &sample_changeset(14).utxos.0.into_values().next().unwrap().unwrap());
    let raw = WriteBatch::new(vec![
        WriteOp::Put { store: "records", key: key("foreign"), value: row_bytes(&other, &record("foreign")) },
        WriteOp::Put { store: "records", key: key("future"), value: future },
        WriteOp::Put { store: "records", key: key("garbage"), value: vec![1, 2, 3] },
        WriteOp::Put { store: "records", key: key("huge"), value: huge_prefix },
        WriteOp::Put { store: "records", key: key("magic"), value: magic },
        WriteOp::Put { store: "records", key: key("moved"), value: row_bytes(&a, &record("elsewhere")) },
        WriteOp::Put { store: "records", key: key("shape"), value: shape },
        WriteOp::Put { store: "records", key: key("trailing"), value: trailing },
        WriteOp::Put { store: "records", key: key("truncated"), value: truncated },
    ]);
    persister.backend().write(&raw).await.unwrap();
    let (state, report) = persister.load().await.unwrap();
    assert_eq!(state.wallets.len(), 1);
    assert_eq!(state.wallets[&a], sample_changeset(14));
    let reasons: Vec<(String, u16)> = report.skipped.iter().map(|s| (s.key.clone(), s.code)).collect();
    let at = |k: &str| format!("[\"{}\",\"app\",\"{k}\"]", a.to_hex());
    assert_eq!(
        reasons,
        vec![
            (at("foreign"), 12),
            (at("future"), 9),
            (at("garbage"), 11),
            (at("huge"), 10),
            (at("magic"), 11),
            (at("moved"), 13),
            (at("shape"), 11),
            (at("trailing"), 11),
            (at("truncated"), 11),
        ]
    );
    assert!(report.skipped.iter().all(|s| s.store == "records"));
    assert!(report.skipped[3].reason.contains(&(1u64 << 40).to_string()), "{}", report.skipped[3].reason);
    assert_eq!(report.rows["records"], 1);
    assert_eq!(report.skipped_rows["records"], 9);
    assert_eq!(report.skipped_rows.len(), AREA_STORES.len());
    assert!(report.skipped_rows.iter().filter(|(s, _)| **s != "records").all(|(_, n)| *n == 0));
    assert!(report.scanned_stores.is_empty());
    persister.close().await.unwrap();
}

/// A store whose bulk read fails as a whole is read row by row: the same state loads.
pub async fn failed_bulk_read_falls_back_to_row_by_row<H: Harness>(h: &H) {
    let (a, b) = (wallet_id(17), wallet_id(18));
    let persister = Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open");
    persister.store(a, sample_changeset(17)).await.unwrap();
    persister.store(b, sample_changeset(18)).await.unwrap();
    persister.flush().await.unwrap();
    let (before, _) = persister.load().await.unwrap();
    persister.backend().fail_store_read("utxos", 1, Error::BlobDecode("NotReadableError: injected".into()));
    let scans = persister.backend().calls(Op::Scan);
    let (after, report) = persister.load().await.unwrap();
    assert_eq!(after, before);
    assert_eq!(report.scanned_stores, vec!["utxos"]);
    assert_eq!(report.rows["utxos"], 2);
    assert!(report.skipped.is_empty());
    assert_eq!(persister.backend().calls(Op::Scan), scans + 1);
    // The row-by-row read failing too fails the load with its error; a lost connection is
    // reconnected and the whole read runs again.
    persister.backend().fail_store_read("utxos", 1, Error::BlobDecode("injected".into()));
    persister.backend().fail_next(Op::Scan, 1, Error::QuotaExceeded("injected".into()));
    assert_eq!(persister.load().await.unwrap_err().code(), 5);
    persister.backend().fail_store_read("utxos", 1, Error::BlobDecode("injected".into()));
    persister.backend().fail_next(Op::Scan, 1, Error::ConnectionLost("injected".into()));
    let reconnects = persister.backend().reconnects();
    assert_eq!(persister.load().await.unwrap().0, before);
    assert_eq!(persister.backend().reconnects(), reconnects + 1);
    persister.close().await.unwrap();
}

/// Every row of the wallet goes, in every wallet store, staged changes included; others stay.
pub async fn delete_wallet_removes_every_row<H: Harness>(h: &H) {
    let (a, b) = (wallet_id(19), wallet_id(20));
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    persister.store(a, sample_changeset(19)).await.unwrap();
    persister.store(b, sample_changeset(20)).await.unwrap();
    persister.flush().await.unwrap();
    let pending = WriteOp::Put { store: "pending", key: vec![KeyPart::Text(a.to_hex())], value: vec![1] };
    persister.backend().write(&WriteBatch::new(vec![pending])).await.unwrap();
    let mut staged = WalletChangeSet::default();
    staged.records.upsert(Record { namespace: "n".into(), key: "k".into(), value: Bytes::from(vec![1]) });
    staged.accounts.tombstone(5);
    persister.store(a, staged).await.unwrap();

    let report = persister.delete_wallet(a).await.unwrap();
    assert_eq!(report, crate::wallets::DeleteReport { wallet_id: a, discarded_staged_fields: 2 });
    assert!(persister.staged().is_empty());
    let hex = KeyPart::Text(a.to_hex());
    let stores: Vec<&'static str> = crate::layout::wallet_stores().collect();
    for read in persister.backend().read(&stores).await.unwrap() {
        let rows = read.unwrap();
        assert!(rows.rows.iter().all(|row| row.key.first() != Some(&hex)), "{} kept a row of the wallet", rows.store);
    }
    // Deleting again (nothing left) succeeds.
    assert_eq!(persister.delete_wallet(a).await.unwrap().discarded_staged_fields, 0);
    persister.close().await.unwrap();
    let state = reopen_and_load(h).await;
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![b]);
    assert_eq!(state.wallets[&b], sample_changeset(20));
}

/// A delete that fails before it commits deletes nothing and keeps the staged changes.
pub async fn failed_delete_keeps_rows_and_buffer<H: Harness>(h: &H) {
    let a = wallet_id(21);
    let persister = Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open");
    persister.store(a, sample_changeset(21)).await.unwrap();
    persister.flush().await.unwrap();
    let mut staged = WalletChangeSet::default();
    staged.accounts.upsert(Account { index: 9, kind: "bip84".into(), descriptor: "later".into() });
    persister.store(a, staged.clone()).await.unwrap();
    persister.backend().fail_next(Op::Write, 1, Error::QuotaExceeded("injected".into()));
    assert_eq!(persister.delete_wallet(a).await.unwrap_err().code(), 5);
    assert_eq!(persister.staged_changes(&a), Some(staged.clone()));
    let (state, _) = persister.load().await.unwrap();
    assert_eq!(state.wallets[&a], sample_changeset(21));
    persister.flush().await.unwrap();
    persister.close().await.unwrap();
    let mut expected = sample_changeset(21);
    expected.merge(staged);
    assert_eq!(reopen_and_load(h).await.wallets[&a], expected);
}

/// `store` for a wallet while its delete runs is refused (code 2), whether the delete is waiting
/// behind a flush or writing; nothing resurrects the wallet. Afterwards the id can be reused.
pub async fn store_racing_delete_cannot_resurrect<H: Harness>(h: &H) {
    let (a, b) = (wallet_id(22), wallet_id(23));
    let persister = Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open");
    persister.store(a, sample_changeset(22)).await.unwrap();
    let backend = persister.backend();
    let wait_paused = || async {
        while !backend.is_paused() {
            crate::backend::faulty::yield_now().await;
        }
    };

    // 1. The delete is requested while a flush of the wallet is writing.
    backend.pause_next(Op::Write);
    let racer = async {
        wait_paused().await;
        let refused = persister.store(a, sample_changeset(22)).await;
        backend.resume();
        refused
    };
    let ((flushed, deleted), refused) = join2(join2(persister.flush(), persister.delete_wallet(a)), racer).await;
    flushed.unwrap();
    deleted.unwrap();
    assert_eq!(refused.unwrap_err(), Error::WalletBeingDeleted(a));

    // 2. The store arrives while the delete itself is writing.
    persister.store(a, sample_changeset(22)).await.unwrap();
    persister.flush().await.unwrap();
    backend.pause_next(Op::Write);
    let racer = async {
        wait_paused().await;
        let refused = persister.store(a, sample_changeset(22)).await;
        let unrelated = persister.store(b, sample_changeset(23)).await;
        backend.resume();
        (refused, unrelated)
    };
    let (deleted, (refused, unrelated)) = join2(persister.delete_wallet(a), racer).await;
    deleted.unwrap();
    assert_eq!(refused.unwrap_err().code(), 2);
    unrelated.unwrap();
    assert_eq!(persister.staged().iter().map(|(w, _)| *w).collect::<Vec<_>>(), vec![b]);
    persister.close().await.unwrap();
    let state = reopen_and_load(h).await;
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![b]);

    // 3. Once the delete ended, the id is free again.
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    persister.store(a, sample_changeset(22)).await.unwrap();
    persister.close().await.unwrap();
    assert_eq!(reopen_and_load(h).await.wallets[&a], sample_changeset(22));
}

/// Every row of every store.
async fn snapshot<B: Backend>(backend: &B) -> Vec<crate::backend::StoreRows> {
    let stores: Vec<&'static str> = crate::layout::all_stores().collect();
    backend.read(&stores).await.unwrap().into_iter().map(|r| r.unwrap()).collect()
}

/// Writes wallet `seed` with this build, then stamps the database as a later build at schema
/// `newer` would, with rollback `floors` (`None`: no floors row, as a build that predates them).
/// Returns every row of the database as stamped.
async fn stamp_as_newer<H: Harness>(
    h: &H,
    seed: u8,
    newer: u16,
    floors: Option<crate::db::schema::Floors>,
) -> Vec<crate::backend::StoreRows> {
    use crate::db::schema;
    // Back to an unstamped database (rows of this build), so this build stamps and writes it.
    let backend = h.open().await;
    let unstamp = [schema::stamp_key(), schema::floors_key()]
        .map(|key| WriteOp::Delete { store: crate::layout::DB_META, key })
        .to_vec();
    backend.write(&WriteBatch::new(unstamp)).await.unwrap();
    backend.close();
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    assert_eq!(persister.open_report().schema_version, crate::codec::SCHEMA_VERSION);
    persister.store(wallet_id(seed), sample_changeset(seed)).await.unwrap();
    persister.close().await.unwrap();
    let stamp = crate::codec::encode_as(&"a later build", newer, usize::MAX).unwrap();
    let backend = h.open().await;
    let mut ops = vec![WriteOp::Put { store: crate::layout::DB_META, key: schema::stamp_key(), value: stamp }];
    ops.push(match floors {
        Some(floors) => schema::floors_op(floors).unwrap(),
        None => WriteOp::Delete { store: crate::layout::DB_META, key: schema::floors_key() },
    });
    backend.write(&WriteBatch::new(ops)).await.unwrap();
    let stamped = snapshot(&backend).await;
    backend.close();
    stamped
}

/// A database stamped by a newer schema whose floors exclude this build (or that records no
/// floors) is refused with code 9 and left byte for byte unchanged.
pub async fn newer_schema_is_refused_and_left_unchanged<H: Harness>(h: &H) {
    use crate::db::schema::Floors;
    let newer = crate::codec::SCHEMA_VERSION + 1;
    for floors in [None, Some(Floors { read: newer, write: newer })] {
        let before = stamp_as_newer(h, 24, newer, floors).await;
        let refused = Persister::open(h.open().await, manual()).await.err().expect("open must be refused");
        assert_eq!(
            refused,
            Error::SchemaVersionUnsupported { found: newer, supported: crate::codec::SCHEMA_VERSION },
            "floors {floors:?}"
        );
        let backend = h.open().await;
        assert_eq!(snapshot(&backend).await, before, "floors {floors:?}: nothing changed");
        backend.close();
    }
}

/// Rolling back to this build after a newer one stamped the database: when the newer schema's
/// read floor allows this build it opens read-only (every write rejects 9 and nothing on disk
/// changes); when its write floor allows it too it opens read-write, and the stamp stays the
/// newer one.
pub async fn newer_schema_opens_under_its_rollback_floors<H: Harness>(h: &H) {
    use crate::db::schema::{self, Floors};
    let current = crate::codec::SCHEMA_VERSION;
    let newer = current + 2;
    let (a, b) = (wallet_id(26), wallet_id(27));
    let refused = Error::SchemaVersionUnsupported { found: newer, supported: current };

    // Read floor = this build, write floor = the newer schema: read-only.
    let before = stamp_as_newer(h, 26, newer, Some(Floors { read: current, write: current + 1 })).await;
    let persister = Persister::open(h.open().await, manual()).await.expect("opens read-only");
    let report = persister.open_report();
    assert_eq!((report.schema_version, report.access), (newer, "readOnly"));
    assert_eq!(persister.load().await.unwrap().0.wallets[&a], sample_changeset(26));
    assert_eq!(persister.store(b, sample_changeset(27)).await.err(), Some(refused.clone()));
    assert_eq!(persister.delete_wallet(a).await.err(), Some(refused.clone()));
    assert_eq!(persister.staged(), vec![], "a refused store stages nothing");
    persister.close().await.unwrap();
    let backend = h.open().await;
    assert_eq!(snapshot(&backend).await, before, "a read-only open changes nothing on disk");
    backend.close();

    // Both floors at or below this build: read-write; the stamp and the floors stay the newer ones.
    let floors = Floors { read: 1, write: current };
    stamp_as_newer(h, 26, newer, Some(floors)).await;
    let persister = Persister::open(h.open().await, manual()).await.expect("opens read-write");
    assert_eq!(persister.open_report().access, "readWrite");
    persister.store(b, sample_changeset(27)).await.unwrap();
    assert_eq!(persister.commit().await.unwrap().succeeded, vec![b]);
    persister.close().await.unwrap();
    let backend = h.open().await;
    assert_eq!(
        schema::read_stamp(&backend).await.unwrap(),
        schema::Stamped::Newer { found: newer, floors: Some(floors) },
        "an older build never lowers the stamp"
    );
    backend.close();
    let state = reopen_and_load(h).await;
    assert_eq!((state.wallets[&a].clone(), state.wallets[&b].clone()), (sample_changeset(26), sample_changeset(27)));
}

/// An unstamped database (rows written before the stamp existed) is stamped at open; a stamp
/// write that fails leaves it unstamped and fully readable.
pub async fn failed_migration_leaves_old_data_readable<H: Harness>(h: &H) {
    let a = wallet_id(25);
    let backend = h.open().await;
    let ops = crate::wallets::rows::changeset_ops(&a, &sample_changeset(25), usize::MAX).unwrap();
    backend.write(&WriteBatch::new(ops)).await.unwrap();
    backend.close();

    let faulty = FaultyBackend::new(h.open().await);
    faulty.fail_next(Op::Write, 1, Error::TransactionAborted("injected".into()));
    let refused = Persister::open(faulty, manual()).await.err().expect("the migration must fail");
    assert_eq!(refused.code(), 21);
    let backend = h.open().await;
    assert_eq!(crate::db::schema::stored_version(&backend).await.unwrap(), crate::db::schema::Version::Unstamped);
    backend.close();

    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    assert_eq!(
        persister.open_report(),
        crate::wallets::OpenReport {
            schema_version: crate::codec::SCHEMA_VERSION,
            migrated_from: Some(0),
            discarded_pending: vec![],
            access: "readWrite",
        }
    );
    assert_eq!(persister.load().await.unwrap().0.wallets[&a], sample_changeset(25));
    persister.close().await.unwrap();
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    assert_eq!(persister.open_report().migrated_from, None);
    persister.close().await.unwrap();
}

/// Two flushes at once: the second waits for the first, so the first's transient failure cannot
/// restore values older than what the second made durable.
pub async fn concurrent_flushes_never_restore_older_values<H: Harness>(h: &H) {
    let a = wallet_id(16);
    let persister = Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open");
    let label = |l: &str| WalletChangeSet {
        wallet: Some(WalletRecord { label: l.into(), ..sample_changeset(16).wallet.unwrap() }),
        ..Default::default()
    };
    persister.store(a, label("old")).await.unwrap();
    persister.backend().fail_next(Op::Write, 1, Error::TransactionAborted("injected".into()));
    let first = persister.flush();
    let second = async {
        persister.store(a, label("new")).await.unwrap();
        persister.flush().await
    };
    let (first, second) = join2(first, second).await;
    assert_eq!(first.unwrap_err().code(), 4);
    second.unwrap();
    assert!(persister.staged().is_empty(), "the retry landed old under new");
    persister.close().await.unwrap();
    let state = reopen_and_load(h).await;
    assert_eq!(state.wallets[&a].wallet.as_ref().unwrap().label, "new");
}

/// A lost connection is reconnected once (schema gate included) and the flush retried; lost again,
/// the flush rejects retryable with everything still staged.
pub async fn lost_connection_reconnects_once<H: Harness>(h: &H) {
    let (a, b) = (wallet_id(26), wallet_id(27));
    let persister = Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open");
    let touched = std::rc::Rc::new(RefCell::new(Vec::new()));
    let seen = touched.clone();
    persister.on_commit(Box::new(move |wallets| seen.borrow_mut().push(wallets.to_vec())));

    persister.store(a, sample_changeset(26)).await.unwrap();
    persister.backend().fail_next(Op::Write, 1, Error::ConnectionLost("injected".into()));
    assert_eq!(persister.flush().await.unwrap().succeeded, vec![a]);
    assert_eq!(persister.backend().reconnects(), 1);

    persister.store(b, sample_changeset(27)).await.unwrap();
    persister.backend().fail_next(Op::Write, 2, Error::ConnectionLost("injected".into()));
    match persister.flush().await.unwrap_err() {
        Error::FlushRetryable { wallets, cause, .. } => {
            assert_eq!(wallets, vec![b]);
            assert_eq!(cause.code(), 7);
        }
        other => panic!("expected FlushRetryable, got {other:?}"),
    }
    assert_eq!(persister.backend().reconnects(), 2);
    assert_eq!(persister.staged_changes(&b), Some(sample_changeset(27)));
    persister.delete_wallet(a).await.unwrap();
    persister.flush().await.unwrap();
    assert_eq!(*touched.borrow(), vec![vec![a], vec![a], vec![b]], "one notice per successful write");
    persister.close().await.unwrap();
    let state = reopen_and_load(h).await;
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![b]);
}

/// A read-only follower loads but refuses every write with code 16, and never migrates.
pub async fn read_only_follower_refuses_writes<H: Harness>(h: &H) {
    let a = wallet_id(28);
    let writer = Persister::open(h.open().await, manual()).await.expect("open");
    writer.store(a, sample_changeset(28)).await.unwrap();
    writer.flush().await.unwrap();
    let follower = Persister::open(h.open().await, Options { read_only: true, ..manual() }).await.expect("open");
    assert_eq!(follower.load().await.unwrap().0.wallets[&a], sample_changeset(28));
    assert_eq!(follower.store(a, sample_changeset(28)).await.unwrap_err().code(), 16);
    assert_eq!(follower.delete_wallet(a).await.unwrap_err().code(), 16);
    assert!(follower.staged().is_empty());
    follower.close().await.unwrap();
    writer.close().await.unwrap();
    assert_eq!(reopen_and_load(h).await.wallets[&a], sample_changeset(28));
}

/// The rows of `wallet` in every wallet store (pending included), as (store, key) pairs.
async fn rows_of<B: Backend>(backend: &B, wallet: WalletId) -> Vec<(&'static str, Key)> {
    let stores: Vec<&'static str> = crate::layout::wallet_stores().collect();
    let hex = KeyPart::Text(wallet.to_hex());
    let mut out = Vec::new();
    for read in backend.read(&stores).await.unwrap() {
        let rows = read.unwrap();
        out.extend(rows.rows.into_iter().filter(|row| row.key.first() == Some(&hex)).map(|row| (rows.store, row.key)));
    }
    out
}

/// A registration that fails at stage, in init or at promote leaves zero rows of the wallet, and
/// retrying it succeeds; an existing wallet is refused (3); promote without pending is 17.
pub async fn registration_is_all_or_nothing<H: Harness>(h: &H) {
    let persister = Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open");
    let backend = persister.backend();
    let ok = || async { Ok::<(), &str>(()) };
    let (a, b, c, d) = (wallet_id(30), wallet_id(31), wallet_id(32), wallet_id(33));

    persister.register_wallet(a, sample_changeset(30), ok()).await.unwrap().unwrap();
    assert_eq!(
        persister.register_wallet(a, sample_changeset(30), ok()).await.unwrap_err(),
        Error::WalletAlreadyExists(a)
    );

    // Stage fails.
    backend.fail_next(Op::Write, 1, Error::QuotaExceeded("injected".into()));
    assert_eq!(persister.register_wallet(b, sample_changeset(31), ok()).await.unwrap_err().code(), 5);
    assert!(rows_of(backend, b).await.is_empty());
    persister.register_wallet(b, sample_changeset(31), ok()).await.unwrap().unwrap();

    // Init fails after staging more changes for the wallet: all of it goes.
    let init = async {
        assert_eq!(rows_of(backend, c).await, vec![(crate::layout::PENDING, vec![KeyPart::Text(c.to_hex())])]);
        persister.stage(c, sample_changeset(32)).unwrap();
        Err::<(), &str>("network probe failed")
    };
    assert_eq!(persister.register_wallet(c, sample_changeset(32), init).await.unwrap(), Err("network probe failed"));
    assert!(rows_of(backend, c).await.is_empty());
    assert!(persister.staged().is_empty());
    persister.register_wallet(c, sample_changeset(32), ok()).await.unwrap().unwrap();

    // Promote fails.
    let init = async {
        backend.fail_next(Op::Write, 1, Error::Timeout("injected".into()));
        Ok::<(), &str>(())
    };
    assert_eq!(persister.register_wallet(d, sample_changeset(33), init).await.unwrap_err().code(), 18);
    assert!(rows_of(backend, d).await.is_empty());
    assert_eq!(persister.promote(d).await.unwrap_err(), Error::PendingRegistrationMissing(d));
    persister.register_wallet(d, sample_changeset(33), ok()).await.unwrap().unwrap();
    persister.close().await.unwrap();

    let state = reopen_and_load(h).await;
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![a, b, c, d]);
    for (id, seed) in [(a, 30), (b, 31), (c, 32), (d, 33)] {
        assert_eq!(state.wallets[&id], sample_changeset(seed));
    }
}

/// A pending registration left by a page that stopped before promote is discarded at the next
/// open, reported, and never loads.
pub async fn stale_pending_is_discarded_at_open<H: Harness>(h: &H) {
    let (a, b) = (wallet_id(34), wallet_id(35));
    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    persister.store(b, sample_changeset(35)).await.unwrap();
    persister.flush().await.unwrap();
    persister.store_pending(a, sample_changeset(34)).await.unwrap();
    assert_eq!(persister.store_pending(a, sample_changeset(34)).await.unwrap_err().code(), 3);
    persister.close().await.unwrap();

    let persister = Persister::open(h.open().await, manual()).await.expect("open");
    assert_eq!(persister.open_report().discarded_pending, vec![a]);
    let (state, _) = persister.load().await.unwrap();
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![b]);
    assert!(rows_of(persister.backend(), a).await.is_empty());
    persister.register_wallet(a, sample_changeset(34), async { Ok::<(), ()>(()) }).await.unwrap().unwrap();
    persister.close().await.unwrap();
    assert_eq!(reopen_and_load(h).await.wallets[&a], sample_changeset(34));
}

/// Rewrites the trailing CRC of a backup after a test changed its content.
fn fix_crc(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crate::backup::crc32(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

/// Export → import into an empty database loads exactly the original; every corruption is refused
/// (14 or 9) with the target untouched; a non-empty target needs `overwrite` (15).
pub async fn backup_round_trip_and_refusals<H: Harness>(h: &H) {
    let source = Persister::open(h.open().await, manual()).await.expect("open");
    for seed in 40..50 {
        source.store(wallet_id(seed), sample_changeset(seed)).await.unwrap();
    }
    source.flush().await.unwrap();
    let (original, _) = source.load().await.unwrap();
    let mut seen = Vec::new();
    let bytes = source
        .export_backup(1_700_000_000_000, &mut |phase, done, total| seen.push((phase, done, total)))
        .await
        .unwrap();
    assert_eq!(seen.last(), Some(&("export", 130, 130)));
    source.close().await.unwrap();

    let target = Persister::open(h.open_other().await, manual()).await.expect("open");
    let other = wallet_id(99);
    target.store(other, sample_changeset(99)).await.unwrap();
    target.flush().await.unwrap();
    let before = snapshot(target.backend()).await;

    let mut corrupt: Vec<(&str, Vec<u8>, u16)> = Vec::new();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    corrupt.push(("flipped byte", flipped, 14));
    corrupt.push(("truncated", bytes[..bytes.len() - 100].to_vec(), 14));
    let mut magic = bytes.clone();
    magic[0] = b'X';
    corrupt.push(("wrong magic", magic, 14));
    let mut future_schema = bytes.clone();
    future_schema[6..8].copy_from_slice(&(crate::codec::SCHEMA_VERSION + 1).to_le_bytes());
    fix_crc(&mut future_schema);
    corrupt.push(("future schema", future_schema, 9));
    let mut future_format = bytes.clone();
    future_format[4..6].copy_from_slice(&(crate::backup::FORMAT_VERSION + 1).to_le_bytes());
    corrupt.push(("future format", future_format, 9));
    // A well-formed backup (checksum right) with one row that does not decode.
    let key = vec![KeyPart::Text(wallet_id(40).to_hex()), KeyPart::Text("app".into()), KeyPart::Text("x".into())];
    let garbage = crate::backend::Row { key, value: vec![1, 2, 3] };
    let bad_row = crate::backup::encode(&[("records", vec![garbage])], 0).unwrap();
    corrupt.push(("bad row", bad_row, 14));
    for (what, bytes, code) in &corrupt {
        for overwrite in [false, true] {
            let error = target.import_backup(bytes, overwrite, &mut |_, _, _| {}).await.unwrap_err();
            assert_eq!(error.code(), *code, "{what}: {error}");
        }
        assert_eq!(snapshot(target.backend()).await, before, "{what}: the target must be untouched");
    }
    assert_eq!(
        target.import_backup(&bytes, false, &mut |_, _, _| {}).await.unwrap_err(),
        Error::BackupDestinationNotEmpty
    );
    assert_eq!(snapshot(target.backend()).await, before);

    let report = target.import_backup(&bytes, true, &mut |_, _, _| {}).await.unwrap();
    assert_eq!((report.rows, report.wallets, report.created_at_ms), (130, 10, 1_700_000_000_000));
    target.close().await.unwrap();
    let target = Persister::open(h.open_other().await, manual()).await.expect("open");
    let (imported, load) = target.load().await.unwrap();
    assert_eq!(imported, original, "the old wallet is replaced and the backup loads exactly");
    assert!(load.skipped.is_empty());
    target.close().await.unwrap();
}

/// Polls two futures concurrently on the current task (both are driven; output of both returned).
pub async fn join2<A: std::future::Future, B: std::future::Future>(a: A, b: B) -> (A::Output, B::Output) {
    use std::task::Poll;
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (ra.unwrap(), rb.unwrap())
}

/// Declares one test per conformance check. `sync`: `#[test]` functions driven by a `block_on`;
/// `async`: async test functions (e.g. `wasm_bindgen_test`). `$harness` takes the test name and
/// returns a fresh `Harness`.
#[macro_export]
macro_rules! conformance_tests {
    (sync, $block_on:path, $harness:path) => {
        $crate::conformance_tests!(@each sync, $block_on, $harness);
    };
    (async, $attr:path, $harness:path) => {
        $crate::conformance_tests!(@each async, $attr, $harness);
    };
    (@each $mode:ident, $with:path, $harness:path) => {
        $crate::conformance_tests!(@one $mode, $with, $harness,
            round_trip_every_area_with_tombstones,
            transient_failure_restores_buffer_under_newer_writes,
            fatal_failure_drops_only_that_wallet,
            commit_report_partitions_wallets,
            immediate_mode_keeps_data_staged_on_transient_failure,
            load_on_empty_database_is_empty,
            bad_input_stages_nothing,
            close_flushes_and_refuses_later_calls,
            corrupt_rows_are_skipped_and_reported,
            failed_bulk_read_falls_back_to_row_by_row,
            load_of_chosen_wallets_returns_exactly_them,
            list_wallets_returns_the_records_load_returns,
            load_of_chosen_wallets_falls_back_to_row_by_row,
            delete_wallet_removes_every_row,
            failed_delete_keeps_rows_and_buffer,
            store_racing_delete_cannot_resurrect,
            newer_schema_is_refused_and_left_unchanged,
            newer_schema_opens_under_its_rollback_floors,
            failed_migration_leaves_old_data_readable,
            lost_connection_reconnects_once,
            read_only_follower_refuses_writes,
            registration_is_all_or_nothing,
            stale_pending_is_discarded_at_open,
            backup_round_trip_and_refusals,
            concurrent_flushes_never_restore_older_values,
            channel_state_survives_restarts_exactly,
            fifo_history_eviction_survives_restarts,
            drop_channel_wipes_everything_in_one_transaction,
            channel_load_and_drop_failures_reject_with_their_codes,
            channel_commit_failures_resolve_and_the_next_commit_lands_both,
            failed_history_writes_drain_in_one_update,
            evict_then_re_add_during_outage_lands_the_re_added_entry,
            idle_commit_flushes_a_failed_queue,
            close_writes_queued_channel_changes,
            newer_channel_rows_are_refused_whole,
            channel_input_is_validated_before_anything_is_written,
            retrieval_hints_round_trip_and_go_with_eviction,
            channels_are_isolated_by_key_range,
            channel_rows_survive_a_backup_round_trip,
            changes_queued_during_a_commit_stay_newest,
        );
    };
    (@one sync, $block_on:path, $harness:path, $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $block_on($crate::testing::$name(&$harness(stringify!($name))));
            }
        )*
    };
    (@one async, $attr:path, $harness:path, $($name:ident,)*) => {
        $(
            #[$attr]
            async fn $name() {
                $crate::testing::$name(&$harness(stringify!($name))).await;
            }
        )*
    };
}

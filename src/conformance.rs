//! The behaviour suite every backend must pass: run on the host against `MemoryBackend` and in the
//! browser against IndexedDB. Each check asserts the exact state read back after a reopen.

use crate::backend::{Backend, FaultyBackend, Op, WriteBatch, WriteOp};
use crate::error::Error;
use crate::model::*;
use crate::persister::{FlushMode, Options, Persister};

/// Opens the database under test; calling it again after a close is a restart.
#[allow(async_fn_in_trait)]
pub trait Harness {
    type B: Backend;
    async fn open(&self) -> Self::B;
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
            network: "testnet".into(),
            label: format!("wallet {seed}"),
            birth_height: 100 + u32::from(seed),
            created_at_ms: 1_700_000_000_000 + u64::from(seed),
            account_schema: 1,
        }),
        sync_state: Some(SyncState { height: 2_000 + u32::from(seed), tip_hash: hash(seed, 2), last_sync_ms: 1_700_000_100_000 }),
        ..Default::default()
    };
    cs.accounts.upsert(Account { index: u32::from(seed), kind: "bip84".into(), descriptor: format!("wpkh(tpub{seed}/0/*)") });
    cs.addresses.upsert(AddressEntry { address: format!("tb1q{seed:04}"), account: 0, index: u32::from(seed), used: seed % 2 == 0 });
    cs.utxos.upsert(Utxo { outpoint, value: u64::MAX - u64::from(seed), script: bytes(seed, 22), height: Some(7), account: 0 });
    cs.transactions.upsert(TransactionEntry {
        txid: hash(seed, 1),
        raw: bytes(seed, 300),
        height: None,
        timestamp_ms: Some(1_700_000_000_123),
        fee: Some(141),
    });
    cs.identities.upsert(Identity { id: hash(seed, 3), index: Some(0), revision: 2, balance: 1 << 60, blob: bytes(seed, 64) });
    cs.identity_keys.upsert(IdentityKey { identity: hash(seed, 3), key_id: 1, purpose: 0, security_level: 2, public_key: bytes(seed, 33) });
    cs.contacts.upsert(Contact {
        kind: ContactKind::Established,
        contact: hash(seed, 4),
        request: bytes(seed, 40),
        created_ms: 1,
        updated_ms: 2,
    });
    cs.asset_locks.upsert(AssetLock { account: 1, outpoint, status: "chainLocked".into(), amount: 50_000, proof: bytes(seed, 80) });
    cs.token_balances.upsert(TokenBalance { identity: hash(seed, 3), token: hash(seed, 5), amount: 9_007_199_254_740_993 });
    cs.platform_addresses.upsert(PlatformAddress { address: format!("plat{seed}"), balance: 12, nonce: 3 });
    cs.records.upsert(Record { namespace: "app".into(), key: format!("k{seed}"), value: bytes(seed, 10) });
    cs
}

fn manual() -> Options {
    Options { flush_mode: FlushMode::Manual, ..Default::default() }
}

async fn reopen_and_load<H: Harness>(h: &H) -> ClientStartState {
    let persister = Persister::new(h.open().await, manual());
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
    let persister = Persister::new(h.open().await, manual());
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
    let persister = Persister::new(h.open().await, manual());
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
    let persister = Persister::new(FaultyBackend::new(h.open().await), manual());
    persister.store(a, sample_changeset(3)).await.unwrap();
    persister.store(b, sample_changeset(4)).await.unwrap();
    persister.backend().fail_next(Op::Write, 1, Error::QuotaExceeded("injected".into()));

    // The newer label is staged while the failing flush is in flight.
    let mut newer = WalletChangeSet::default();
    newer.wallet = Some(WalletRecord { label: "renamed".into(), ..sample_changeset(3).wallet.unwrap() });
    let flush = persister.flush();
    let store = persister.store(a, newer.clone());
    let (flushed, stored) = join2(flush, store).await;
    stored.unwrap();
    match flushed {
        Err(Error::FlushRetryable { wallets, cause }) => {
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
    let persister = Persister::new(FaultyBackend::new(h.open().await), manual());
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
    let persister = Persister::new(FaultyBackend::new(h.open().await), manual());
    for (id, seed) in [(ok, 8), (fatal, 9), (transient, 10)] {
        persister.store(id, sample_changeset(seed)).await.unwrap();
    }
    persister.backend().fail_wallet(fatal, 2, Error::BlobDecode("injected".into()));
    persister.backend().fail_wallet(transient, 1, Error::ConnectionLost("injected".into()));
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
    let persister = Persister::new(FaultyBackend::new(h.open().await), options);
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
    let persister = Persister::new(h.open().await, manual());
    let (state, report) = persister.load().await.unwrap();
    assert!(state.wallets.is_empty());
    assert_eq!(report.wallets, 0);
    assert_eq!(report.rows.len(), AREA_STORES.len());
    assert!(report.rows.values().all(|n| *n == 0));
    assert!(report.skipped.is_empty());
    persister.close().await.unwrap();
}

/// Invalid changesets are refused with their code and stage nothing.
pub async fn bad_input_stages_nothing<H: Harness>(h: &H) {
    let a = wallet_id(12);
    let persister = Persister::new(h.open().await, manual());
    let mut mismatched = WalletChangeSet::default();
    mismatched.accounts.0.insert(7, Some(Account { index: 8, kind: "bip84".into(), descriptor: "d".into() }));
    assert_eq!(persister.store(a, mismatched).await.unwrap_err().code(), 13);
    let mut huge = WalletChangeSet::default();
    huge.records.upsert(Record { namespace: "app".into(), key: "big".into(), value: Bytes::from(vec![0u8; 1024]) });
    let small = Persister::new(h.open().await, Options { max_blob_bytes: 512, ..manual() });
    assert_eq!(small.store(a, huge).await.unwrap_err().code(), 10);
    assert!(persister.staged().is_empty());
    assert!(small.staged().is_empty());
    small.close().await.unwrap();
    persister.close().await.unwrap();
    assert!(reopen_and_load(h).await.wallets.is_empty());
}

/// Close flushes what is staged; afterwards every call is refused with `Closed`.
pub async fn close_flushes_and_refuses_later_calls<H: Harness>(h: &H) {
    let a = wallet_id(13);
    let persister = Persister::new(h.open().await, manual());
    persister.store(a, sample_changeset(13)).await.unwrap();
    let report = persister.close().await.unwrap();
    assert_eq!(report.succeeded, vec![a]);
    assert_eq!(persister.store(a, sample_changeset(13)).await.unwrap_err(), Error::Closed);
    assert_eq!(persister.commit().await.unwrap_err(), Error::Closed);
    assert_eq!(persister.load().await.unwrap_err(), Error::Closed);
    assert_eq!(reopen_and_load(h).await.wallets[&a], sample_changeset(13));
}

/// Rows that fail to decode or check are skipped and reported; the good ones load.
pub async fn corrupt_rows_are_skipped_and_reported<H: Harness>(h: &H) {
    let (a, other) = (wallet_id(14), wallet_id(15));
    let persister = Persister::new(h.open().await, manual());
    persister.store(a, sample_changeset(14)).await.unwrap();
    persister.flush().await.unwrap();
    // A valid row of wallet `other`, filed under wallet `a`'s key.
    let mut foreign = Vec::new();
    sample_changeset(15).encode_into(&other, usize::MAX, &mut foreign).unwrap();
    let WriteOp::Put { value: foreign_value, .. } = foreign.iter().find(|op| op.store() == "records").unwrap().clone() else {
        unreachable!()
    };
    let key = |k: &str| vec![KeyPart::Text(a.to_hex()), KeyPart::Text("app".into()), KeyPart::Text(k.into())];
    let mut trailing = foreign_value.clone();
    trailing.push(0);
    let raw = WriteBatch {
        ops: vec![
            WriteOp::Put { store: "records", key: key("garbage"), value: vec![1, 2, 3] },
            WriteOp::Put { store: "records", key: key("foreign"), value: foreign_value },
            WriteOp::Put { store: "records", key: key("trailing"), value: trailing },
        ],
    };
    persister.backend().write(&raw).await.unwrap();
    let (state, report) = persister.load().await.unwrap();
    assert_eq!(state.wallets.len(), 1);
    assert_eq!(state.wallets[&a], sample_changeset(14));
    let reasons: Vec<(String, u16)> = report.skipped.iter().map(|s| (s.key.clone(), s.code)).collect();
    let hex = a.to_hex();
    assert_eq!(
        reasons,
        vec![
            (format!("[\"{hex}\",\"app\",\"foreign\"]"), 12),
            (format!("[\"{hex}\",\"app\",\"garbage\"]"), 11),
            (format!("[\"{hex}\",\"app\",\"trailing\"]"), 11),
        ]
    );
    assert_eq!(report.rows["records"], 1);
    persister.close().await.unwrap();
}

/// Two flushes at once: the second waits for the first, so the first's transient failure cannot
/// restore values older than what the second made durable.
pub async fn concurrent_flushes_never_restore_older_values<H: Harness>(h: &H) {
    let a = wallet_id(16);
    let persister = Persister::new(FaultyBackend::new(h.open().await), manual());
    let label = |l: &str| WalletChangeSet {
        wallet: Some(WalletRecord { label: l.into(), ..sample_changeset(16).wallet.unwrap() }),
        ..Default::default()
    };
    persister.store(a, label("old")).await.unwrap();
    persister.backend().fail_next(Op::Write, 1, Error::ConnectionLost("injected".into()));
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
            concurrent_flushes_never_restore_older_values,
        );
    };
    (@one sync, $block_on:path, $harness:path, $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $block_on($crate::conformance::$name(&$harness(stringify!($name))));
            }
        )*
    };
    (@one async, $attr:path, $harness:path, $($name:ident,)*) => {
        $(
            #[$attr]
            async fn $name() {
                $crate::conformance::$name(&$harness(stringify!($name))).await;
            }
        )*
    };
}

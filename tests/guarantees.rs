//! The guarantees of issue 15, each proven on the host with the fault-injecting backend and
//! asserting the exact state on disk after a restart: a lost connection never costs data, no call
//! hangs forever, registration is all or nothing, close tells the truth.

use std::cell::Cell;
use std::future::Future;

use wallet_persist::backend::{Backend as _, FaultyBackend, MemoryBackend, Op, Slowness, VirtualClock};
use wallet_persist::layout::all_stores;
use wallet_persist::model::*;
use wallet_persist::testing::{sample_changeset, wallet_id};
use wallet_persist::wallets::{FlushMode, Options, Persister};
use wallet_persist::Error;

/// Drives `future` to completion; whenever it is stuck, lets one virtual second pass on `clock`.
fn run<F: Future>(clock: &VirtualClock, future: F) -> F::Output {
    wallet_persist::testing::block_on_clock(clock, future)
}

const TIMEOUT_MS: u32 = 30_000;

fn options(clock: &VirtualClock, flush_mode: FlushMode) -> Options {
    Options { flush_mode, deadline: Some(clock.deadline(TIMEOUT_MS)), ..Options::default() }
}

struct World {
    disk: MemoryBackend,
    clock: VirtualClock,
}

impl World {
    fn new() -> Self {
        World { disk: MemoryBackend::new(), clock: VirtualClock::default() }
    }

    fn open(&self, mode: FlushMode) -> Persister<FaultyBackend<MemoryBackend>> {
        run(&self.clock, Persister::open(FaultyBackend::new(self.disk.reopen()), options(&self.clock, mode)))
            .expect("open")
    }

    /// A restart: a new persister over the same data loads everything; nothing is skipped.
    fn load_after_restart(&self) -> ClientStartState {
        let persister = self.open(FlushMode::Manual);
        let (state, report) = run(&self.clock, persister.load()).expect("load");
        assert!(report.skipped.is_empty(), "skipped rows: {:?}", report.skipped);
        run(&self.clock, persister.close()).expect("close");
        state
    }

    /// How many rows of `wallet` are in any store (raw, not through load).
    fn rows_of(&self, wallet: &WalletId) -> usize {
        let hex = KeyPart::Text(wallet.to_hex());
        all_stores().map(|store| self.disk.rows(store).iter().filter(|r| r.key.first() == Some(&hex)).count()).sum()
    }
}

/// The rows of `sample_changeset(seed)` that need the wallet record as parent, without it.
fn children_only(seed: u8) -> WalletChangeSet {
    let mut changes = sample_changeset(seed);
    changes.wallet = None;
    changes.identities = EntryMap::default();
    changes.identity_keys = EntryMap::default();
    changes.token_balances = EntryMap::default();
    changes
}

/// A registration changeset: the wallet record of `sample_changeset(seed)` alone.
fn record_only(seed: u8) -> WalletChangeSet {
    WalletChangeSet { wallet: sample_changeset(seed).wallet, ..Default::default() }
}

fn assert_retryable(error: &Error) {
    assert!(
        error.is_transient(),
        "a lost connection must reject with a retryable code, got {error:?} ({})",
        error.code()
    );
    assert_ne!(error.code(), 20, "a store that was not closed must never say closed");
}

/// Site data cleared during a commit and the reconnect refused: the flush rejects with a
/// retryable code, every staged wallet stays staged, the store is not closed, `load` and `store`
/// keep working as "retry later", and once a reconnect succeeds everything lands.
#[test]
fn failed_reconnect_keeps_every_staged_change() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let wallets: Vec<WalletId> = (1..=20).map(wallet_id).collect();
    for (i, wallet) in wallets.iter().enumerate() {
        persister.stage(*wallet, sample_changeset(i as u8 + 1)).unwrap();
    }
    persister.backend().lose_connection();
    persister.backend().fail_reconnects(4);

    let error = run(&world.clock, persister.flush()).unwrap_err();
    assert_retryable(&error);
    assert_eq!(persister.staged().len(), 20, "nothing staged is dropped");
    assert!(!persister.is_closed());

    // Still disconnected: every call is "retry later", nothing is dropped.
    let error = run(&world.clock, persister.flush()).unwrap_err();
    assert_retryable(&error);
    let error = run(&world.clock, persister.load()).unwrap_err();
    assert_retryable(&error);
    persister.stage(wallet_id(99), sample_changeset(99)).expect("store keeps staging while disconnected");
    assert_eq!(persister.staged().len(), 21);
    assert_eq!(world.rows_of(&wallets[0]), 0);

    // The fourth refused reconnect, then one that succeeds: the next flush lands everything.
    let _ = run(&world.clock, persister.flush()).unwrap_err();
    let report = run(&world.clock, persister.flush()).expect("a flush after a successful reconnect");
    assert_eq!(report.succeeded.len(), 21);
    assert!(persister.staged().is_empty());
    run(&world.clock, persister.close()).unwrap();

    let state = world.load_after_restart();
    assert_eq!(state.wallets.len(), 21);
    for (i, wallet) in wallets.iter().enumerate() {
        let mut expected = sample_changeset(i as u8 + 1);
        expected.wallet.as_mut().unwrap().wallet_id = Some(*wallet);
        assert_eq!(state.wallets[wallet].utxos, expected.utxos);
    }
}

/// A write the browser starts and never finishes: the flush rejects `timeout` (18, retryable)
/// after `timeoutMs` with the changes kept; the next flush replaces the wedged connection and lands
/// them.
#[test]
fn a_write_that_never_settles_times_out_and_keeps_the_changes() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
    persister.backend().hang(Op::Write);
    let started = world.clock.now();
    let error = run(&world.clock, persister.flush()).unwrap_err();
    assert!(world.clock.now() - started >= u64::from(TIMEOUT_MS), "rejected only after the deadline");
    match &error {
        Error::FlushRetryable { wallets, cause, .. } => {
            assert_eq!(wallets, &vec![wallet_id(1)]);
            assert_eq!(cause.code(), 18, "the cause is a timeout: {cause:?}");
        }
        other => panic!("expected FlushRetryable(timeout), got {other:?}"),
    }
    assert_eq!(persister.staged(), vec![(wallet_id(1), sample_changeset(1).field_count())]);
    assert!(persister.db().is_disconnected(), "a timed-out connection counts as wedged");

    run(&world.clock, persister.flush()).expect("the next flush reconnects first");
    run(&world.clock, persister.close()).unwrap();
    assert_eq!(world.load_after_restart().wallets.len(), 1);
}

/// `reopen()` recovers a wedged connection; reads are bounded too.
#[test]
fn reopen_recovers_a_wedged_connection() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    persister.backend().hang(Op::Read);
    let error = run(&world.clock, persister.load()).unwrap_err();
    assert_eq!(error.code(), 18);
    run(&world.clock, persister.reopen()).expect("reopen replaces the wedged connection");
    assert!(!persister.db().is_disconnected());
    run(&world.clock, persister.load()).expect("load after reopen");
}

/// Registration is all or nothing whatever flushes while `init` runs: immediate mode, a commit
/// (a coordinator's), the page-hide flush (a plain `flush`) — none writes a row of the wallet;
/// when `init` fails, zero rows of it remain in every store.
#[test]
fn no_flush_writes_a_wallet_under_registration() {
    for mode in [FlushMode::Immediate, FlushMode::Manual] {
        let world = World::new();
        let persister = world.open(mode);
        let wallet = wallet_id(7);
        let record = record_only(7);
        let rows_during_init = Cell::new(usize::MAX);
        let init = async {
            persister.store(wallet, sample_changeset(7)).await.expect("store during init");
            persister.commit().await.expect("a coordinator's commit");
            persister.flush().await.expect("the page-hide flush");
            rows_during_init.set(world.rows_of(&wallet));
            Err::<(), _>("init failed")
        };
        let outcome = run(&world.clock, persister.register_wallet(wallet, record, init)).expect("no storage failure");
        assert_eq!(outcome, Err("init failed"));
        assert_eq!(rows_during_init.get(), 1, "{mode:?}: only the pending row existed during init");
        assert_eq!(world.rows_of(&wallet), 0, "{mode:?}: zero rows remain");
        assert!(persister.staged().is_empty());
        run(&world.clock, persister.close()).unwrap();
        assert!(world.load_after_restart().wallets.is_empty(), "{mode:?}: no ghost wallet");
    }
}

/// What was stored during a successful `init` lands with the promote, in one transaction.
#[test]
fn changes_stored_during_init_land_with_the_promote() {
    let world = World::new();
    let persister = world.open(FlushMode::Immediate);
    let wallet = wallet_id(3);
    let record = record_only(3);
    let writes_before = persister.backend().calls(Op::Write);
    let init = async {
        persister.store(wallet, sample_changeset(3)).await.unwrap();
        Ok::<(), ()>(())
    };
    run(&world.clock, persister.register_wallet(wallet, record, init)).unwrap().unwrap();
    assert_eq!(persister.backend().calls(Op::Write) - writes_before, 2, "the pending row, then the promote");
    run(&world.clock, persister.close()).unwrap();
    let state = world.load_after_restart();
    let mut expected = sample_changeset(3);
    expected.wallet.as_mut().unwrap().wallet_id = Some(wallet);
    assert_eq!(state.wallets[&wallet].utxos, expected.utxos);
    assert_eq!(state.wallets[&wallet].wallet, expected.wallet);
}

/// `close()` during `init` rolls the registration back: the registration rejects `closed` (20),
/// the close report lists it (and says the close is not complete), and zero rows remain.
#[test]
fn close_during_init_aborts_the_registration() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let wallet = wallet_id(5);
    persister.stage(wallet_id(6), sample_changeset(6)).unwrap();
    let record = record_only(5);
    let closed = std::cell::RefCell::new(None);
    let init = async {
        persister.store(wallet, sample_changeset(5)).await.unwrap();
        *closed.borrow_mut() = Some(persister.close().await.expect("close"));
        Ok::<(), ()>(())
    };
    let error = run(&world.clock, persister.register_wallet(wallet, record, init)).unwrap_err();
    assert_eq!(error.code(), 20);
    let report = closed.into_inner().unwrap();
    assert_eq!(report.aborted_registrations, vec![wallet]);
    assert_eq!(report.not_written.wallets, vec![wallet]);
    assert!(!report.is_complete());
    assert_eq!(report.flush.succeeded, vec![wallet_id(6)], "the other wallet was flushed");
    assert_eq!(world.rows_of(&wallet), 0);
    let state = world.load_after_restart();
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![wallet_id(6)]);
}

/// A rollback whose pending-row delete fails does not block a retry: the retry replaces the
/// leftover pending row and succeeds.
#[test]
fn a_retry_after_a_failed_rollback_succeeds() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let wallet = wallet_id(8);
    let record = record_only(8);
    let init = async {
        // The rollback's delete of the pending row fails.
        persister.backend().fail_next(Op::Write, 1, Error::Internal("injected".into()));
        Err::<(), _>(())
    };
    let outcome = run(&world.clock, persister.register_wallet(wallet, record.clone(), init)).unwrap();
    assert_eq!(outcome, Err(()));
    assert_eq!(world.rows_of(&wallet), 1, "the pending row was left behind");
    run(&world.clock, persister.register_wallet(wallet, record, async { Ok::<(), ()>(()) }))
        .expect("the retry is not refused as existing")
        .unwrap();
    run(&world.clock, persister.close()).unwrap();
    let state = world.load_after_restart();
    assert_eq!(state.wallets.len(), 1);
    assert_eq!(world.rows_of(&wallet), 1, "one live wallet row, no pending row");
}

/// A close whose final flush drops a wallet (fatal) or cannot write queued channel history says
/// so: `not_written` names them and the close is not complete.
#[test]
fn close_names_everything_it_did_not_write() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
    persister.stage(wallet_id(2), sample_changeset(2)).unwrap();
    persister.backend().fail_wallet(wallet_id(2), 5, Error::Internal("injected".into()));
    let entry = wallet_persist::channels::HistoryEntry {
        id: "m1".into(),
        bytes: Bytes::from(vec![1, 2, 3]),
        timestamp_ms: None,
    };
    persister.channels().queue_append("chat", entry).unwrap();
    persister.backend().fail_store_write(
        wallet_persist::layout::CHANNEL_HISTORY,
        5,
        Error::QuotaExceeded("injected".into()),
    );
    let report = run(&world.clock, persister.close()).expect("close");
    assert_eq!(report.flush.succeeded, vec![wallet_id(1)]);
    assert_eq!(report.not_written.wallets, vec![wallet_id(2)]);
    assert_eq!(report.not_written.channels, vec!["chat".to_string()]);
    assert!(!report.is_complete());
    assert!(persister.is_closed());
    let state = world.load_after_restart();
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![wallet_id(1)]);
}

/// A close that writes everything is complete.
#[test]
fn a_close_that_wrote_everything_is_complete() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
    let report = run(&world.clock, persister.close()).expect("close");
    assert!(report.is_complete());
    assert!(report.aborted_registrations.is_empty());
}

/// The memory backend answers like a closed IndexedDB connection once closed: the persister
/// never mistakes its own close for a lost connection.
#[test]
fn only_close_makes_a_store_closed() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    persister.backend().inner().close();
    persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
    let report = run(&world.clock, persister.flush()).expect("the reconnect succeeds");
    assert_eq!(report.succeeded, vec![wallet_id(1)]);
    run(&world.clock, persister.close()).unwrap();
    let error = run(&world.clock, persister.flush()).unwrap_err();
    assert_eq!(error.code(), 20, "after close(), closed");
}

/// Rows of `sample_changeset(seed)` without the wallet record.
fn without_record(seed: u8) -> WalletChangeSet {
    WalletChangeSet { wallet: None, ..sample_changeset(seed) }
}

/// A wallet row needs its wallet record, on disk or in the same flush: without it the flush is
/// refused for that wallet with `orphan_row` (22) and the other wallets commit.
#[test]
fn rows_without_their_wallet_record_are_refused() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
    persister.stage(wallet_id(2), without_record(2)).unwrap();
    let report = run(&world.clock, persister.commit()).unwrap();
    assert_eq!(report.succeeded, vec![wallet_id(1)]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        (report.failed[0].wallet_id, report.failed[0].code, report.failed[0].kind),
        (wallet_id(2), 22, "orphan_row")
    );
    assert_eq!(world.rows_of(&wallet_id(2)), 0);

    // With the record on disk (a new session that never loaded: the record is read once), rows
    // without the record in the same changes are accepted.
    run(&world.clock, persister.close()).unwrap();
    let persister = world.open(FlushMode::Manual);
    persister.stage(wallet_id(1), without_record(3)).unwrap();
    let report = run(&world.clock, persister.commit()).unwrap();
    assert_eq!(report.succeeded, vec![wallet_id(1)], "{:?}", report.failed);
    run(&world.clock, persister.close()).unwrap();
    assert_eq!(world.load_after_restart().wallets.len(), 1);
}

/// Identity keys and token balances need their identity; a tombstoned identity takes its keys and
/// balances with it in the same transaction; upserting a child of an identity the same changes
/// delete is refused before anything is staged.
#[test]
fn identity_children_need_their_identity_and_follow_its_tombstone() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let wallet = wallet_id(1);
    let mut orphan = sample_changeset(1);
    orphan.identities = EntryMap::default();
    persister.stage(wallet, orphan).unwrap();
    let report = run(&world.clock, persister.commit()).unwrap();
    assert_eq!(report.failed.iter().map(|f| f.code).collect::<Vec<_>>(), vec![22]);
    assert_eq!(world.rows_of(&wallet), 0);

    persister.stage(wallet, sample_changeset(1)).unwrap();
    run(&world.clock, persister.flush()).unwrap();
    let identity = *sample_changeset(1).identities.0.keys().next().unwrap();
    assert_eq!(world.disk.rows(wallet_persist::layout::IDENTITY_KEYS).len(), 1);
    assert_eq!(world.disk.rows(wallet_persist::layout::TOKEN_BALANCES).len(), 1);

    // A tombstone plus a child upsert of the same identity: refused by `store`, nothing staged.
    let mut both = WalletChangeSet::default();
    both.identities.tombstone(identity);
    both.identity_keys = sample_changeset(1).identity_keys;
    assert_eq!(persister.stage(wallet, both).unwrap_err().code(), 22);
    assert!(persister.staged().is_empty());
    assert_eq!(world.disk.rows(wallet_persist::layout::IDENTITIES).len(), 1);

    // The tombstone alone cascades.
    let mut tombstone = WalletChangeSet::default();
    tombstone.identities.tombstone(identity);
    persister.stage(wallet, tombstone).unwrap();
    run(&world.clock, persister.flush()).unwrap();
    for store in [
        wallet_persist::layout::IDENTITIES,
        wallet_persist::layout::IDENTITY_KEYS,
        wallet_persist::layout::TOKEN_BALANCES,
    ] {
        assert!(world.disk.rows(store).is_empty(), "{store} rows of the identity are gone");
    }
    run(&world.clock, persister.close()).unwrap();
    let state = world.load_after_restart();
    assert!(state.wallets[&wallet].identity_keys.0.is_empty());
    assert!(state.wallets[&wallet].token_balances.0.is_empty());
    assert_eq!(state.wallets[&wallet].utxos, sample_changeset(1).utxos);
}

/// Each call valid on its own: a child staged, then its identity tombstoned. The tombstone drops the
/// staged child (the cascade would delete it), and everything else staged with the child lands. A
/// child staged after the tombstone (without storing the identity again) is refused by `store`.
#[test]
fn an_identity_tombstone_after_a_staged_child_keeps_the_rest_of_the_changes() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let wallet = wallet_id(1);
    persister.stage(wallet, sample_changeset(1)).unwrap();
    run(&world.clock, persister.flush()).unwrap();
    let identity = *sample_changeset(1).identities.0.keys().next().unwrap();

    let mut child_and_more = sample_changeset(2);
    child_and_more.wallet = None;
    child_and_more.identities = EntryMap::default();
    child_and_more.token_balances = EntryMap::default();
    child_and_more.identity_keys = sample_changeset(1).identity_keys;
    persister.stage(wallet, child_and_more.clone()).unwrap();
    let mut tombstone = WalletChangeSet::default();
    tombstone.identities.tombstone(identity);
    persister.stage(wallet, tombstone).unwrap();
    assert!(persister.staged_changes(&wallet).unwrap().identity_keys.0.is_empty(), "the staged child is dropped");

    let late_child = WalletChangeSet { identity_keys: sample_changeset(1).identity_keys, ..Default::default() };
    assert_eq!(persister.stage(wallet, late_child).unwrap_err().code(), 22, "a child of a staged tombstone");

    let report = run(&world.clock, persister.commit()).unwrap();
    assert_eq!((report.succeeded.clone(), report.failed.len()), (vec![wallet], 0), "{:?}", report.failed);
    run(&world.clock, persister.close()).unwrap();
    let state = world.load_after_restart();
    let loaded = &state.wallets[&wallet];
    assert!(loaded.identities.0.is_empty() && loaded.identity_keys.0.is_empty() && loaded.token_balances.0.is_empty());
    for outpoint in child_and_more.utxos.0.keys() {
        assert_eq!(loaded.utxos.0.get(outpoint), child_and_more.utxos.0.get(outpoint), "the other changes landed");
    }
}

/// Orphan rows already on disk (from an older build, or written by hand) are skipped by `load` with
/// the reason `orphan_row`, never loaded as a wallet.
#[test]
fn load_skips_orphan_rows_on_disk() {
    let world = World::new();
    let orphan_wallet = wallet_id(2);
    let limit = wallet_persist::codec::MAX_BLOB_BYTES;
    let mut with_orphan_key = sample_changeset(1);
    with_orphan_key.identity_keys.upsert(IdentityKey {
        identity: Hash32([9; 32]),
        key_id: 4,
        purpose: 0,
        security_level: 1,
        public_key: Bytes::from(vec![2; 33]),
    });
    let mut ops = wallet_persist::wallets::rows::changeset_ops(&wallet_id(1), &with_orphan_key, limit).unwrap();
    ops.extend(wallet_persist::wallets::rows::changeset_ops(&orphan_wallet, &without_record(2), limit).unwrap());
    run(&world.clock, world.disk.write(&wallet_persist::backend::WriteBatch::new(ops))).unwrap();

    let persister = world.open(FlushMode::Manual);
    let (state, report) = run(&world.clock, persister.load()).unwrap();
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![wallet_id(1)]);
    assert_eq!(state.wallets[&wallet_id(1)].identity_keys, sample_changeset(1).identity_keys);
    assert!(report.skipped.iter().all(|s| s.code == 22 && s.kind == "orphan_row"), "{:?}", report.skipped);
    let orphan_rows = without_record(2).field_count() + 1;
    assert_eq!(report.skipped.len(), orphan_rows, "{:?}", report.skipped);
    assert_eq!(report.wallets, 1);
    assert_eq!(report.rows[wallet_persist::layout::IDENTITY_KEYS], 1);
    assert_eq!(report.skipped_rows[wallet_persist::layout::IDENTITY_KEYS], 2);
}

/// An empty flush (nothing staged) writes nothing: no transaction is opened.
#[test]
fn an_empty_flush_writes_nothing() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let writes = persister.backend().calls(Op::Write);
    let report = run(&world.clock, persister.flush()).unwrap();
    assert_eq!(report, wallet_persist::CommitReport::default());
    assert_eq!(persister.backend().calls(Op::Write), writes, "no write for an empty flush");
}

/// A failure inside the replace transaction of `importBackup` leaves the target exactly as it was
/// (rows and load), and the same import then succeeds.
#[test]
fn a_failed_import_replace_leaves_the_target_exactly_as_before() {
    let source = World::new();
    let persister = source.open(FlushMode::Manual);
    persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
    run(&source.clock, persister.flush()).unwrap();
    let backup = run(&source.clock, persister.export_backup(1, &mut |_, _, _| {})).unwrap();

    let target = World::new();
    let persister = target.open(FlushMode::Manual);
    persister.stage(wallet_id(2), sample_changeset(2)).unwrap();
    run(&target.clock, persister.flush()).unwrap();
    let before: Vec<_> = all_stores().map(|s| target.disk.rows(s)).collect();
    persister.backend().fail_next(Op::Write, 1, Error::TransactionAborted("injected".into()));
    let error = run(&target.clock, persister.import_backup(&backup, true, &mut |_, _, _| {})).unwrap_err();
    assert_eq!(error.code(), 21);
    let after: Vec<_> = all_stores().map(|s| target.disk.rows(s)).collect();
    assert_eq!(before, after, "not one row changed");
    run(&target.clock, persister.import_backup(&backup, true, &mut |_, _, _| {})).expect("the retry");
    run(&target.clock, persister.close()).unwrap();
    assert_eq!(target.load_after_restart().wallets.keys().copied().collect::<Vec<_>>(), vec![wallet_id(1)]);
}

/// Found by the browser simulation (tests/e2e/sim.test.mjs, seed 15000079): a registration of a
/// wallet with changes staged before it began would, on failure, discard them with its rollback.
/// Such a wallet exists in this store already: the registration is refused (3) and the staged
/// changes stay.
#[test]
fn registering_a_wallet_with_staged_changes_is_refused_and_keeps_them() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    persister.stage(wallet_id(4), sample_changeset(4)).unwrap();
    let init = async { Err::<(), _>("init failed") };
    let error = run(&world.clock, persister.register_wallet(wallet_id(4), record_only(4), init)).unwrap_err();
    assert_eq!(error.code(), 3);
    assert_eq!(persister.staged(), vec![(wallet_id(4), sample_changeset(4).field_count())]);
    run(&world.clock, persister.close()).unwrap();
    assert_eq!(world.load_after_restart().wallets.len(), 1);
}

// A write that commits and yet fails: it misses its deadline (`ack_late`: `timeout`, 18), or the
// connection goes before its answer and the reconnect is refused (`connection_lost`, 7). Each
// path either learns the outcome or stays able to recover, for both.

/// Arms the next write to land and fail as `name` says, with the code the caller then gets.
type LandsAndFails = (&'static str, fn(&FaultyBackend<MemoryBackend>), u16);
const LANDS_AND_FAILS: [LandsAndFails; 2] = [
    ("landed after its deadline", |backend| backend.ack_late(1), 18),
    (
        "lost its answer",
        |backend| {
            backend.lose_after_commit(1);
            backend.fail_reconnects(1);
        },
        7,
    ),
];

/// The promote landed but failed: `registerWallet` resolves (the pending row is gone, so it
/// committed), the wallet is live, and nothing is rolled back.
#[test]
fn a_promote_that_landed_but_failed_is_a_registration() {
    for (how, arm, _) in LANDS_AND_FAILS {
        let world = World::new();
        let persister = world.open(FlushMode::Manual);
        let wallet = wallet_id(4);
        let init = async {
            arm(persister.backend());
            Ok::<(), ()>(())
        };
        let outcome = run(&world.clock, persister.register_wallet(wallet, record_only(4), init));
        assert!(matches!(outcome, Ok(Ok(()))), "{how}: {:?}", outcome.map_err(|e| e.code()));
        assert!(world.disk.rows(wallet_persist::layout::PENDING).is_empty(), "{how}");
        run(&world.clock, persister.close()).unwrap();
        assert_eq!(world.load_after_restart().wallets[&wallet], record_only(4), "{how}");
    }
}

/// The pending row landed but failed: the registration rejects with the failure's code, and a
/// retry replaces that row and succeeds instead of being refused as an existing registration (3).
#[test]
fn a_pending_row_that_landed_but_failed_does_not_block_the_retry() {
    for (how, arm, code) in LANDS_AND_FAILS {
        let world = World::new();
        let persister = world.open(FlushMode::Manual);
        let wallet = wallet_id(1);
        arm(persister.backend());
        let first = run(&world.clock, persister.register_wallet(wallet, record_only(1), async { Ok::<(), ()>(()) }));
        assert_eq!(first.map(|_| ()).unwrap_err().code(), code, "{how}");
        assert_eq!(world.disk.rows(wallet_persist::layout::PENDING).len(), 1, "{how}: the pending row landed");
        let retry = run(&world.clock, persister.register_wallet(wallet, record_only(1), async { Ok::<(), ()>(()) }));
        assert!(matches!(retry, Ok(Ok(()))), "{how}: {:?}", retry.map_err(|e| e.code()));
        run(&world.clock, persister.close()).unwrap();
        assert_eq!(world.load_after_restart().wallets[&wallet], record_only(1), "{how}");
    }
}

/// The delete landed but failed: `deleteWallet` rejects with the failure's code and restores what
/// was staged, but the next flush reads the wallet record again, so the restored rows are refused
/// as orphans (22, reported) instead of landing as rows of a deleted wallet and loading as nothing.
#[test]
fn a_delete_that_landed_but_failed_never_leaves_silent_orphans() {
    for (how, arm, code) in LANDS_AND_FAILS {
        let world = World::new();
        let persister = world.open(FlushMode::Manual);
        let wallet = wallet_id(2);
        persister.stage(wallet, sample_changeset(2)).unwrap();
        run(&world.clock, persister.flush()).unwrap();
        persister.stage(wallet, children_only(3)).unwrap();
        arm(persister.backend());
        assert_eq!(run(&world.clock, persister.delete_wallet(wallet)).unwrap_err().code(), code, "{how}");
        assert_eq!(world.rows_of(&wallet), 0, "{how}: the delete landed");
        assert_eq!(persister.staged().len(), 1, "{how}: the staged changes were restored");
        commit_refuses_orphans(&world, &persister, wallet);
    }
}

/// The import landed but failed: `importBackup` rejects with the failure's code, but the stores
/// were replaced, so what the store knew of the wallets' parent rows is read again: a change whose
/// parent the backup did not hold is refused as an orphan (22, reported) instead of landing as a
/// row nothing loads.
#[test]
fn an_import_that_landed_but_failed_never_leaves_silent_orphans() {
    for (how, arm, code) in LANDS_AND_FAILS {
        let world = World::new();
        let persister = world.open(FlushMode::Manual);
        let empty = run(&world.clock, persister.export_backup(1, &mut |_, _, _| {})).unwrap();
        let wallet = wallet_id(2);
        persister.stage(wallet, sample_changeset(2)).unwrap();
        run(&world.clock, persister.flush()).unwrap();
        arm(persister.backend());
        let import = run(&world.clock, persister.import_backup(&empty, true, &mut |_, _, _| {}));
        assert_eq!(import.map(|_| ()).unwrap_err().code(), code, "{how}");
        assert_eq!(world.rows_of(&wallet), 0, "{how}: the import landed");
        persister.stage(wallet, children_only(3)).unwrap();
        commit_refuses_orphans(&world, &persister, wallet);
    }
}

/// The staged changes of `wallet` (whose record is not on disk) fail with `orphan_row` (22),
/// reported; no row of it is written and a restart loads no wallet.
fn commit_refuses_orphans(world: &World, persister: &Persister<FaultyBackend<MemoryBackend>>, wallet: WalletId) {
    let report = run(&world.clock, persister.commit()).unwrap();
    assert!(report.succeeded.is_empty(), "{report:?}");
    assert_eq!(report.failed.iter().map(|f| (f.wallet_id, f.code)).collect::<Vec<_>>(), vec![(wallet, 22)]);
    assert_eq!(world.rows_of(&wallet), 0, "no orphan row was written");
    run(&world.clock, persister.close()).unwrap();
    assert!(world.load_after_restart().wallets.is_empty());
}

// `timeoutMs` bounds the time without progress, not a whole call: a commit or a load of many
// chunks, each well inside the deadline, runs to its end however long it takes; one that stalls
// between chunks times out with nothing landed and everything still staged.

/// `sample_changeset(seed)` with `extra` more addresses: about `extra` more rows.
fn with_addresses(seed: u8, extra: u32) -> WalletChangeSet {
    let mut changes = sample_changeset(seed);
    for index in 0..extra {
        changes.addresses.upsert(AddressEntry {
            address: format!("tb1qslow{index:05}"),
            account: 0,
            index,
            used: false,
        });
    }
    changes
}

/// Chunks of 100 ops or rows, each taking two thirds of the deadline.
fn slow(clock: &VirtualClock, stall_at: Option<usize>) -> Slowness {
    Slowness { clock: clock.clone(), chunk_rows: 100, chunk_ms: TIMEOUT_MS * 2 / 3, stall_at }
}

#[test]
fn a_commit_of_many_chunks_longer_than_the_deadline_lands_whole() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let changes = with_addresses(1, 2_000);
    persister.stage(wallet_id(1), changes.clone()).unwrap();
    persister.backend().slow_down(Op::Write, Some(slow(&world.clock, None)));
    let started = world.clock.now();
    let report = run(&world.clock, persister.commit()).expect("commit");
    assert_eq!((report.succeeded, report.failed, report.still_pending), (vec![wallet_id(1)], vec![], vec![]));
    let took = world.clock.now() - started;
    assert!(took >= 10 * u64::from(TIMEOUT_MS), "20 chunks of 20 s: the write took {took} ms");
    assert!(persister.staged().is_empty());
    run(&world.clock, persister.close()).unwrap();

    let mut expected = changes;
    expected.wallet.as_mut().unwrap().wallet_id = Some(wallet_id(1));
    assert_eq!(world.load_after_restart().wallets, [(wallet_id(1), expected)].into());
}

#[test]
fn a_commit_that_stalls_between_chunks_times_out_and_lands_nothing() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let (first, second) = (with_addresses(1, 2_000), sample_changeset(2));
    persister.stage(wallet_id(1), first.clone()).unwrap();
    persister.stage(wallet_id(2), second.clone()).unwrap();
    persister.backend().slow_down(Op::Write, Some(slow(&world.clock, Some(5))));
    let started = world.clock.now();
    let report = run(&world.clock, persister.commit()).expect("a commit reports, it does not reject");
    assert!(report.succeeded.is_empty() && report.failed.is_empty(), "{report:?}");
    assert_eq!(report.still_pending, vec![wallet_id(1), wallet_id(2)]);
    assert_eq!(report.retry_cause.map(|cause| cause.code()), Some(18), "reported as a timeout");
    // Five chunks of progress, then a whole deadline (at most two) without any.
    let since_progress = (world.clock.now() - started).saturating_sub(5 * u64::from(TIMEOUT_MS * 2 / 3));
    assert!(since_progress >= u64::from(TIMEOUT_MS), "gave up {since_progress} ms after the last progress");
    assert_eq!(persister.staged(), vec![(wallet_id(1), first.field_count()), (wallet_id(2), second.field_count())]);
    assert_eq!(persister.staged_changes(&wallet_id(1)), Some(first.clone()));
    assert_eq!((world.rows_of(&wallet_id(1)), world.rows_of(&wallet_id(2))), (0, 0), "nothing landed");

    // Once the database moves again, the retry lands everything exactly.
    persister.backend().slow_down(Op::Write, None);
    let report = run(&world.clock, persister.commit()).expect("retry");
    assert_eq!(report.succeeded, vec![wallet_id(1), wallet_id(2)]);
    run(&world.clock, persister.close()).unwrap();
    let state = world.load_after_restart();
    for (wallet, mut expected) in [(wallet_id(1), first), (wallet_id(2), second)] {
        expected.wallet.as_mut().unwrap().wallet_id = Some(wallet);
        assert_eq!(state.wallets[&wallet], expected);
    }
}

#[test]
fn a_load_of_many_chunks_longer_than_the_deadline_returns_everything() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let changes = with_addresses(1, 2_000);
    persister.stage(wallet_id(1), changes.clone()).unwrap();
    run(&world.clock, persister.commit()).unwrap();
    persister.backend().slow_down(Op::Read, Some(slow(&world.clock, None)));
    let started = world.clock.now();
    let (state, report) = run(&world.clock, persister.load()).expect("load");
    assert!(world.clock.now() - started >= 10 * u64::from(TIMEOUT_MS));
    assert!(report.skipped.is_empty());
    let mut expected = changes;
    expected.wallet.as_mut().unwrap().wallet_id = Some(wallet_id(1));
    assert_eq!(state.wallets, [(wallet_id(1), expected)].into());
}

#[test]
fn a_load_that_stalls_between_chunks_times_out_and_changes_nothing() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    persister.stage(wallet_id(1), with_addresses(1, 2_000)).unwrap();
    run(&world.clock, persister.commit()).unwrap();
    let before: Vec<_> = all_stores().map(|store| world.disk.rows(store)).collect();
    persister.stage(wallet_id(2), sample_changeset(2)).unwrap();
    persister.backend().slow_down(Op::Read, Some(slow(&world.clock, Some(5))));
    let started = world.clock.now();
    let error = run(&world.clock, persister.load()).unwrap_err();
    assert_eq!((error.code(), error.is_transient()), (18, true), "{error:?}");
    let since_progress = (world.clock.now() - started).saturating_sub(5 * u64::from(TIMEOUT_MS * 2 / 3));
    assert!(since_progress >= u64::from(TIMEOUT_MS), "gave up {since_progress} ms after the last progress");
    assert_eq!(all_stores().map(|store| world.disk.rows(store)).collect::<Vec<_>>(), before);
    assert_eq!(persister.staged(), vec![(wallet_id(2), sample_changeset(2).field_count())]);
    persister.backend().slow_down(Op::Read, None);
    let (state, _) = run(&world.clock, persister.load()).expect("the next load reconnects and reads");
    assert_eq!(state.wallets.len(), 1);
}

/// Polls `a` and `b` together on this thread, letting virtual time pass when both are stuck;
/// `between` runs after every round (to resume a paused call once `b` has ended).
fn run_both<A: Future, B: Future>(
    clock: &VirtualClock,
    a: A,
    b: B,
    mut between: impl FnMut(bool),
) -> (A::Output, B::Output) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut out_a, mut out_b) = (None, None);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..100_000 {
        if out_a.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(&mut cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(&mut cx) {
                out_b = Some(v);
            }
        }
        if let (Some(_), Some(_)) = (&out_a, &out_b) {
            return (out_a.unwrap(), out_b.unwrap());
        }
        between(out_b.is_some());
        clock.advance(10);
    }
    panic!("the two futures did not complete");
}

/// Two `close()` calls at once (an unload handler and the app's own shutdown): the second must
/// not release the connection under the first one's queued channel history write. Each close
/// resolves with the truth, and the history lands.
#[test]
fn a_second_close_during_the_first_never_closes_the_database_under_its_writes() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let entry = wallet_persist::channels::HistoryEntry {
        id: "m1".into(),
        bytes: Bytes::from(vec![1, 2, 3]),
        timestamp_ms: None,
    };
    persister.channels().queue_append("chat", entry).unwrap();
    // Nothing is staged: the first write is the queued history's. Hold it in flight.
    persister.backend().pause_next(Op::Write);
    let (first, second) = run_both(&world.clock, persister.close(), persister.close(), |second_done| {
        let backend = persister.backend();
        if backend.is_paused() && (second_done || world.clock.now() > 1_000) {
            backend.resume();
        }
    });
    let (first, second) = (first.expect("first close"), second.expect("second close"));
    assert!(persister.is_closed());
    assert!(first.is_complete(), "the first close lost {:?}", first.not_written);
    assert!(second.is_complete(), "the second close lost {:?}", second.not_written);
    let reopened = world.open(FlushMode::Manual);
    let loaded = run(&world.clock, reopened.channels().load_channel::<u32>("chat")).unwrap();
    assert_eq!(loaded.history.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["m1"]);
}

/// A close after a close that lost something says so again: the store never tells a later
/// caller (a cleanup path closing once more) that everything was written.
#[test]
fn a_close_after_an_incomplete_close_reports_the_same_loss() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
    persister.backend().fail_wallet(wallet_id(1), 5, Error::Internal("injected".into()));
    let first = run(&world.clock, persister.close()).expect("close");
    assert_eq!(first.not_written.wallets, vec![wallet_id(1)]);
    let again = run(&world.clock, persister.close()).expect("close again");
    assert!(!again.is_complete(), "the second close said complete after wallet 1 was dropped");
    assert_eq!(again, first);
}

/// Registration is all or nothing even when `init` drives the registration steps by hand: a
/// `promote` (or `storePending`/`discardPending`) of the wallet from inside its own `init` is
/// refused, so an `init` that then fails leaves zero rows, not a live wallet whose
/// `registerWallet` rejected.
#[test]
fn init_cannot_promote_its_own_registration_by_hand() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let wallet = wallet_id(9);
    let by_hand = std::cell::RefCell::new(Vec::new());
    let init = async {
        let promoted = persister.promote(wallet).await.map_err(|e| e.code());
        let discarded = persister.discard_pending(wallet).await.map_err(|e| e.code());
        by_hand.borrow_mut().extend([promoted, discarded]);
        Err::<(), _>("init failed")
    };
    let outcome =
        run(&world.clock, persister.register_wallet(wallet, record_only(9), init)).expect("no storage failure");
    assert_eq!(outcome, Err("init failed"));
    assert_eq!(world.rows_of(&wallet), 0, "a failed registration left rows of the wallet");
    assert_eq!(by_hand.into_inner(), vec![Err(3), Err(3)], "the steps by hand are refused while registering");
    run(&world.clock, persister.close()).unwrap();
    assert!(world.load_after_restart().wallets.is_empty(), "no ghost wallet");
}

/// Registration is all or nothing when its first step fails: changes stored for the wallet while
/// the pending row was being written (a coordinator that found the wallet) are the
/// registration's, so they are discarded with it, not written by the next commit as a wallet
/// whose `registerWallet` rejected.
#[test]
fn a_failed_pending_write_discards_what_was_stored_for_the_wallet_meanwhile() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let wallet = wallet_id(4);
    // Hold the pending step's existence check, so the store lands while the step runs; then
    // its write fails.
    persister.backend().pause_next(Op::Read);
    let stored = Cell::new(false);
    let (registered, ()) = run_both(
        &world.clock,
        persister.register_wallet(wallet, record_only(4), async { Ok::<(), ()>(()) }),
        async {},
        |_| {
            let backend = persister.backend();
            if backend.is_paused() && !stored.get() {
                persister.stage(wallet, sample_changeset(4)).expect("store during the pending step");
                stored.set(true);
                backend.fail_next(Op::Write, 1, Error::QuotaExceeded("injected".into()));
                backend.resume();
            }
        },
    );
    assert!(stored.get(), "the store ran while the pending step was in flight");
    assert_eq!(registered.map(|_| ()).unwrap_err().code(), 5);
    run(&world.clock, persister.commit()).expect("commit");
    assert_eq!(world.rows_of(&wallet), 0, "a rejected registration left rows of the wallet");
    run(&world.clock, persister.close()).unwrap();
    assert!(world.load_after_restart().wallets.is_empty(), "no ghost wallet");
}

/// A promote that lands after its deadline while its pending row cannot be read back (the
/// reconnect for that check fails too): `registerWallet` rejects, so the wallet must not be left
/// live. The rollback removes every row of the wallet (none existed before it began), so the
/// registration stays all or nothing whichever way the promote went.
#[test]
fn a_late_promote_whose_check_fails_leaves_no_wallet_behind_a_rejection() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let wallet = wallet_id(6);
    let init = async {
        persister.backend().ack_late(1);
        persister.backend().fail_reconnects(1);
        Ok::<(), ()>(())
    };
    let outcome = run(&world.clock, persister.register_wallet(wallet, record_only(6), init));
    match outcome {
        Ok(Ok(())) => assert_eq!(world.load_after_restart().wallets[&wallet], record_only(6)),
        Ok(Err(())) => panic!("init did not fail"),
        Err(error) => {
            assert!(error.is_transient(), "{error:?}");
            assert_eq!(world.rows_of(&wallet), 0, "registerWallet rejected {} but the wallet is live", error.code());
        }
    }
}

/// A channel `commit` whose history write is in flight (its queue taken) when `close()` runs: the
/// close waits for it instead of releasing the connection under it, so the history lands (or,
/// failing, is named in `not_written`), never lost behind a close that said complete.
#[test]
fn close_waits_for_a_channel_commit_in_flight() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let entry = wallet_persist::channels::HistoryEntry {
        id: "m1".into(),
        bytes: Bytes::from(vec![1, 2, 3]),
        timestamp_ms: None,
    };
    persister.channels().queue_append("chat", entry).unwrap();
    // The commit's meta write, then its history: the read of the channel's history index that
    // precedes the history write is held, with the queue already taken.
    persister.backend().pause_next(Op::Read);
    let channels = persister.channels();
    let (committed, closed) = run_both(&world.clock, channels.commit("chat", &7u32), persister.close(), |close_done| {
        let backend = persister.backend();
        if backend.is_paused() && (close_done || world.clock.now() > 1_000) {
            backend.resume();
        }
    });
    let committed = committed.expect("channel commit");
    let closed = closed.expect("close");
    if closed.is_complete() {
        assert!(committed.history_flushed, "close said complete, the commit did not write: {committed:?}");
        let reopened = world.open(FlushMode::Manual);
        let loaded = run(&world.clock, reopened.channels().load_channel::<u32>("chat")).unwrap();
        assert_eq!(loaded.history.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["m1"]);
    } else {
        assert_eq!(closed.not_written.channels, vec!["chat".to_string()]);
    }
}

fn history_entry(id: &str, byte: u8) -> wallet_persist::channels::HistoryEntry {
    wallet_persist::channels::HistoryEntry { id: id.into(), bytes: Bytes::from(vec![byte]), timestamp_ms: None }
}

fn history_ids_after_restart(world: &World, channel: &str) -> Vec<String> {
    let reopened = world.open(FlushMode::Manual);
    let loaded = run(&world.clock, reopened.channels().load_channel::<u32>(channel)).unwrap();
    run(&world.clock, reopened.close()).unwrap();
    loaded.history.into_iter().map(|e| e.id).collect()
}

/// A queued append whose history write lands after its deadline (the commit reports 18 and keeps
/// it queued), then an evict of that id queued over it (latest wins): the evict must remove the
/// row that landed, so after a restart the history does not hold the evicted message.
#[test]
fn an_evict_queued_over_a_history_write_that_landed_late_removes_the_entry() {
    evict_over_a_history_write_that_landed(18, |backend| backend.ack_late(1));
}

/// The same when the history write committed and the connection went before its answer, the
/// reconnect refused (the commit reports 7).
#[test]
fn an_evict_queued_over_a_history_write_that_lost_its_answer_removes_the_entry() {
    evict_over_a_history_write_that_landed(7, |backend| {
        backend.lose_after_commit(1);
        backend.fail_reconnects(1);
    });
}

fn evict_over_a_history_write_that_landed(code: u16, arm: impl FnOnce(&FaultyBackend<MemoryBackend>)) {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let channels = persister.channels();
    channels.queue_append("chat", history_entry("m1", 1)).unwrap();
    assert!(run(&world.clock, channels.commit("chat", &1u32)).unwrap().history_flushed);
    channels.queue_append("chat", history_entry("m2", 2)).unwrap();
    // The meta write fails before reaching the disk; the history write commits and never answers.
    persister.backend().fail_next(Op::Write, 1, Error::TransactionAborted("injected".into()));
    arm(persister.backend());
    let late = run(&world.clock, channels.commit("chat", &2u32)).unwrap();
    assert!(!late.history_flushed, "{late:?}");
    assert_eq!(late.failures.last().map(|f| f.code), Some(code));
    assert_eq!(world.disk.rows(wallet_persist::layout::CHANNEL_HISTORY).len(), 2, "the late write landed");
    channels.queue_evict("chat", "m2").unwrap();
    let report = run(&world.clock, channels.commit("chat", &3u32)).unwrap();
    assert!(report.meta_saved && report.history_flushed && report.pending == 0, "{report:?}");
    run(&world.clock, persister.close()).unwrap();
    assert_eq!(history_ids_after_restart(&world, "chat"), vec!["m1"]);
}

/// The same through `updateHistory`: an append of an id already in the history (a move to the
/// end) lands after its deadline, then the id is evicted: nothing of it may stay behind.
#[test]
fn an_evict_after_a_move_that_landed_late_removes_the_entry() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let channels = persister.channels();
    let append = |ids: &[&str]| wallet_persist::channels::HistoryUpdate {
        append: ids.iter().map(|id| history_entry(id, 7)).collect(),
        evict: Vec::new(),
    };
    run(&world.clock, channels.update_history("chat", &append(&["m1", "m2"]))).unwrap();
    persister.backend().ack_late(1);
    let moved = run(&world.clock, channels.update_history("chat", &append(&["m1"])));
    assert_eq!(moved.unwrap_err().code(), 18);
    let evict = wallet_persist::channels::HistoryUpdate { append: Vec::new(), evict: vec!["m1".into()] };
    run(&world.clock, channels.update_history("chat", &evict)).unwrap();
    run(&world.clock, persister.close()).unwrap();
    assert_eq!(history_ids_after_restart(&world, "chat"), vec!["m2"]);
}

/// Resolves once `ready()` holds (polled by `run_both`, which lets virtual time pass between).
async fn once(ready: impl Fn() -> bool) {
    std::future::poll_fn(|_| if ready() { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }).await
}

/// The page hides while a commit is in flight (its changes taken, nothing staged): the hide flush
/// waits for it, and when it fails transiently writes the changes it put back, so a page killed
/// after the hide loses nothing.
#[test]
fn a_hide_flush_during_a_failing_commit_writes_what_it_put_back() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
    let backend = persister.backend();
    backend.pause_next(Op::Write);
    backend.fail_next(Op::Write, 1, Error::TransactionAborted("injected".into()));
    let hide = async {
        once(|| backend.is_paused()).await;
        wallet_persist::session::flush_on_hide(&persister, "pagehide").await
    };
    let (commit, ()) = run_both(&world.clock, persister.commit(), hide, |_| {
        if backend.is_paused() && world.clock.now() > 1_000 {
            backend.resume();
        }
    });
    assert_eq!(commit.unwrap().still_pending, vec![wallet_id(1)]);
    assert!(persister.staged().is_empty(), "the hide flush left {:?} staged", persister.staged());
    drop(persister); // the page is killed: nothing more is written
    assert_eq!(world.load_after_restart().wallets[&wallet_id(1)], sample_changeset(1));
}

/// The same for a channel: the hide comes while a commit's history write is in flight (the queue
/// taken), and that write fails transiently.
#[test]
fn a_hide_flush_during_a_failing_channel_commit_writes_the_queue_it_put_back() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let channels = persister.channels();
    channels.queue_append("chat", history_entry("m1", 1)).unwrap();
    let backend = persister.backend();
    backend.fail_store_write(wallet_persist::layout::CHANNEL_HISTORY, 1, Error::TransactionAborted("injected".into()));
    // The meta write is held first; once released, the history write is held in its turn.
    backend.pause_next(Op::Write);
    let (history_held, hidden) = (Cell::new(false), Cell::new(false));
    let hide = async {
        once(|| history_held.get() && backend.is_paused()).await;
        hidden.set(true);
        wallet_persist::session::flush_on_hide(&persister, "pagehide").await
    };
    let (commit, ()) = run_both(&world.clock, channels.commit("chat", &1u32), hide, |_| {
        if backend.is_paused() && !history_held.get() {
            history_held.set(true);
            backend.resume();
            backend.pause_next(Op::Write);
        } else if backend.is_paused() && hidden.get() {
            backend.resume();
        }
    });
    let commit = commit.unwrap();
    assert!(commit.meta_saved && !commit.history_flushed, "{commit:?}");
    assert!(persister.channels().pending("chat").is_empty(), "the hide flush left the queue");
    drop(persister); // the page is killed: nothing more is written
    assert_eq!(history_ids_after_restart(&world, "chat"), vec!["m1"]);
}

/// A drop called while a commit of its channel is in flight waits for it (the channel lock); an
/// append queued after the drop's call belongs to the channel as recreated: the drop must not take
/// it with the old queue. The next commit writes it, and only it is on disk after a restart.
#[test]
fn an_append_queued_after_a_drop_was_called_belongs_to_the_recreated_channel() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let channels = persister.channels();
    channels.queue_append("chat", history_entry("m1", 1)).unwrap();
    let backend = persister.backend();
    backend.pause_next(Op::Write);
    let queued_after = Cell::new(false);
    let drop_then_queue = async {
        once(|| backend.is_paused()).await;
        let mut dropped = std::pin::pin!(channels.drop_channel("chat"));
        // Polled once: the drop is called, and waits for the commit's channel lock.
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(dropped.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "the drop waits for the commit in flight");
        channels.queue_append("chat", history_entry("m2", 2)).unwrap();
        queued_after.set(true);
        dropped.await
    };
    let (commit, dropped) = run_both(&world.clock, channels.commit("chat", &1u32), drop_then_queue, |_| {
        if backend.is_paused() && queued_after.get() {
            backend.resume();
        }
    });
    assert!(commit.unwrap().history_flushed);
    dropped.unwrap();
    assert_eq!(channels.pending("chat").len(), 1, "m2 stays queued for the recreated channel");
    let after = run(&world.clock, channels.commit("chat", &2u32)).unwrap();
    assert!(after.history_flushed && after.pending == 0, "{after:?}");
    drop(persister);
    assert_eq!(history_ids_after_restart(&world, "chat"), vec!["m2"]);
}

/// The same from JS: `dropChannel` not awaited, then `queueAppend` (call order is queue order).
#[test]
fn an_append_queued_right_after_a_drop_call_is_not_dropped() {
    let world = World::new();
    let persister = world.open(FlushMode::Manual);
    let channels = persister.channels();
    channels.queue_append("chat", history_entry("m1", 1)).unwrap();
    run(&world.clock, channels.commit("chat", &1u32)).unwrap();
    channels.call_drop("chat").unwrap();
    channels.queue_append("chat", history_entry("m2", 2)).unwrap();
    assert_eq!(persister.queued_channels(), vec![("chat".to_string(), 1)], "m2 is queued, and said to be");
    run(&world.clock, channels.run_drop("chat")).unwrap();
    let after = run(&world.clock, channels.commit("chat", &2u32)).unwrap();
    assert!(after.history_flushed && after.pending == 0, "{after:?}");
    drop(persister);
    assert_eq!(history_ids_after_restart(&world, "chat"), vec!["m2"]);
}

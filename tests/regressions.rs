//! Bugs the simulation (tests/sim.rs) found, each as the shrunk sequence it printed, made into a
//! plain test.

use wallet_persist::backend::{FaultyBackend, MemoryBackend, Op};
use wallet_persist::testing::{block_on, sample_changeset, wallet_id};
use wallet_persist::wallets::{Options, Persister};
use wallet_persist::Error;

/// Shrunk sequence: `Store(1), Store(2); FatalFor(2); Transient; Flush`. The combined write fails
/// fatally, the per-wallet retries drop wallet 2 (fatal) and keep wallet 1 (transient): `flush`
/// rejected `flush_retryable` naming only wallet 1, so the caller never learnt wallet 2's changes
/// were gone. The error now names it in `dropped` (JS `detail.dropped`).
#[test]
fn flush_retryable_names_the_wallets_the_same_flush_dropped() {
    let disk = MemoryBackend::new();
    let persister = block_on(Persister::open(FaultyBackend::new(disk.reopen()), Options::default())).unwrap();
    persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
    persister.stage(wallet_id(2), sample_changeset(2)).unwrap();
    persister.backend().fail_wallet(wallet_id(2), 2, Error::Internal("injected".into()));
    persister.backend().fail_next(Op::Write, 1, Error::QuotaExceeded("injected".into()));
    match block_on(persister.flush()).unwrap_err() {
        Error::FlushRetryable { wallets, dropped, .. } => {
            assert_eq!(wallets, vec![wallet_id(1)]);
            assert_eq!(dropped, vec![wallet_id(2)], "the dropped wallet is named");
        }
        other => panic!("expected flush_retryable, got {other:?}"),
    }
    assert_eq!(persister.staged().iter().map(|(w, _)| *w).collect::<Vec<_>>(), vec![wallet_id(1)]);
}

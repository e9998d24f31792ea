//! Findings of an adversarial review (lost values, tampered rows, interrupted whole-database
//! operations), each proved by a test that failed before its fix.

use wallet_persist::backend::MemoryBackend;
use wallet_persist::layout::WALLETS;
use wallet_persist::model::KeyPart;
use wallet_persist::testing::{block_on, sample_changeset, wallet_id};
use wallet_persist::wallets::Persister;

/// Ten wallets on disk, each with a row in every area.
fn ten_wallets() -> MemoryBackend {
    let disk = MemoryBackend::new();
    let persister = block_on(Persister::open(disk.reopen(), Default::default())).unwrap();
    for seed in 1..=10 {
        persister.stage(wallet_id(seed), sample_changeset(seed)).unwrap();
    }
    block_on(persister.flush()).unwrap();
    block_on(persister.close()).unwrap();
    disk
}

/// A commit that needs more than a few parent rows reads the parent stores in one bulk read. One
/// wallet record the browser cannot read (NotReadableError, a lost value) failed that read as a
/// whole, and with it every commit of nine or more wallets: all of them stayed staged as
/// "retryable" for ever (and `close()` could never succeed), though none of them needs the lost
/// row. Only a wallet that needs an unreadable parent may fail.
#[test]
fn a_lost_wallet_record_fails_only_the_commit_of_its_own_wallet() {
    let disk = ten_wallets();
    let lost = disk
        .rows(WALLETS)
        .into_iter()
        .find(|row| row.key.first() == Some(&KeyPart::Text(wallet_id(10).to_hex())))
        .unwrap();
    disk.lose_value(WALLETS, lost.key.clone());
    let persister = block_on(Persister::open(disk.reopen(), Default::default())).unwrap();
    // Nine wallets whose records are on disk and readable: their changes need them as parents.
    for seed in 1..=9 {
        let mut changes = sample_changeset(seed + 100);
        changes.wallet = None;
        persister.stage(wallet_id(seed), changes).unwrap();
    }
    let report = block_on(persister.commit()).unwrap();
    assert!(report.still_pending.is_empty(), "stuck behind another wallet's lost record: {report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.succeeded, (1..=9).map(wallet_id).collect::<Vec<_>>());
    // The wallet whose record is lost fails alone, with the read error.
    let mut changes = sample_changeset(110);
    changes.wallet = None;
    persister.stage(wallet_id(10), changes).unwrap();
    let report = block_on(persister.commit()).unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].wallet_id, wallet_id(10));
    assert!(block_on(persister.close()).unwrap().not_written.is_empty());
}

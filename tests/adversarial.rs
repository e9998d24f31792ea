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

/// Export leaves out every row that would not load, "so the backup always imports". A channel
/// whose history holds one message id twice (two rows, e.g. a copy restored by hand) passed the
/// export's row-by-row check, but import checks each channel's history as a whole and refused
/// the backup (14): a backup that resolved fine could never be restored. The export now leaves
/// out the later row of an id stored twice (logged), so what it writes imports.
#[test]
fn a_backup_of_a_history_with_an_id_stored_twice_still_imports() {
    use wallet_persist::channels::{history_key, HistoryEntry};
    use wallet_persist::codec::{self, MAX_BLOB_BYTES};
    use wallet_persist::layout::CHANNEL_HISTORY;
    use wallet_persist::model::Bytes;
    let disk = ten_wallets();
    let row = |seq: u32, id: &str| {
        let entry = HistoryEntry { id: id.into(), bytes: Bytes::from(vec![seq as u8]), timestamp_ms: None };
        (history_key("chat", seq), codec::encode(&("chat", seq, &entry), MAX_BLOB_BYTES).unwrap())
    };
    for (seq, id) in [(0, "m0"), (1, "m1"), (2, "m0")] {
        let (key, value) = row(seq, id);
        disk.put_raw(CHANNEL_HISTORY, key, value);
    }
    let persister = block_on(Persister::open(disk.reopen(), Default::default())).unwrap();
    let bytes = block_on(persister.export_backup(1, &mut |_, _, _| {})).unwrap();
    block_on(persister.close()).unwrap();

    let target = MemoryBackend::new();
    let restored = block_on(Persister::open(target.reopen(), Default::default())).unwrap();
    let report = block_on(restored.import_backup(&bytes, false, &mut |_, _, _| {}))
        .unwrap_or_else(|e| panic!("the backup does not import: {e}"));
    assert_eq!(report.wallets, 10);
    let loaded = block_on(restored.channels().load_channel::<()>("chat")).unwrap();
    let ids: Vec<&str> = loaded.history.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["m0", "m1"]);
    block_on(restored.close()).unwrap();
}

/// Nothing limits the length of an entry key (a record's key, an address), and such a row
/// stores, loads and exports fine; but import read every key with a 4,096-byte bincode limit and
/// refused the backup as holding "an unreadable key" (14): the backup of a wallet with one long
/// record key could never be restored.
#[test]
fn a_backup_with_a_long_entry_key_imports() {
    use wallet_persist::model::{Bytes, Record, WalletChangeSet};
    let disk = MemoryBackend::new();
    let persister = block_on(Persister::open(disk.reopen(), Default::default())).unwrap();
    let mut changes: WalletChangeSet = sample_changeset(1);
    let long = "k".repeat(5_000);
    changes.records.upsert(Record { namespace: "app".into(), key: long.clone(), value: Bytes::from(vec![7]) });
    persister.stage(wallet_id(1), changes).unwrap();
    block_on(persister.flush()).unwrap();
    let (state, _) = block_on(persister.load()).unwrap();
    assert!(state.wallets[&wallet_id(1)].records.0.contains_key(&("app".to_string(), long.clone())), "loads");
    let bytes = block_on(persister.export_backup(1, &mut |_, _, _| {})).unwrap();
    block_on(persister.close()).unwrap();

    let restored = block_on(Persister::open(MemoryBackend::new(), Default::default())).unwrap();
    block_on(restored.import_backup(&bytes, false, &mut |_, _, _| {}))
        .unwrap_or_else(|e| panic!("the backup does not import: {e}"));
    let (state, _) = block_on(restored.load()).unwrap();
    assert!(state.wallets[&wallet_id(1)].records.0.contains_key(&("app".to_string(), long)));
    block_on(restored.close()).unwrap();
}

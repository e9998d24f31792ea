//! The streaming load against a store whose bulk read fails part way through (as an IndexedDB
//! `getAll` does at the request that meets an unreadable value): rows of that store handed over
//! before the failure are neither lost nor counted twice, and no wallet is handed over before the
//! row-by-row read of that store gave it its rows.

use std::collections::BTreeSet;

use wallet_persist::backend::{EncryptedBackend, MemoryBackend, Row};
use wallet_persist::crypto::Cipher;
use wallet_persist::layout::{AREA_STORES, UTXOS};
use wallet_persist::model::*;
use wallet_persist::testing::{block_on, sample_changeset, wallet_id};
use wallet_persist::{LoadReport, Persister};

/// Wallets 1..=12 written to a fresh database.
fn twelve_wallets() -> MemoryBackend {
    let disk = MemoryBackend::new();
    block_on(async {
        let writer = Persister::open(disk.reopen(), Default::default()).await.expect("open");
        for n in 1..=12 {
            writer.store(wallet_id(n), sample_changeset(n)).await.unwrap();
        }
        writer.commit().await.unwrap();
    });
    disk
}

/// Rows on disk per area store of the wallets `only` (every wallet when `None`).
fn rows_on_disk(disk: &MemoryBackend, only: Option<&BTreeSet<WalletId>>) -> Vec<(&'static str, u32)> {
    let hex: Option<BTreeSet<String>> = only.map(|w| w.iter().map(WalletId::to_hex).collect());
    AREA_STORES
        .iter()
        .map(|store| {
            let n = disk
                .rows(store)
                .iter()
                .filter(|row| match (&hex, row.key.first()) {
                    (None, _) => true,
                    (Some(hex), Some(KeyPart::Text(first))) => hex.contains(first),
                    _ => false,
                })
                .count();
            (*store, n as u32)
        })
        .collect()
}

/// What a load must return with `lost` unreadable: every wallet of `only` as written, less that
/// row; every row on disk counted once, less that row; that row skipped; its store scanned.
fn check(
    disk: &MemoryBackend,
    only: Option<&BTreeSet<WalletId>>,
    lost: &Row,
    state: &ClientStartState,
    report: &LoadReport,
    at: &str,
) {
    let owner = match lost.key.first() {
        Some(KeyPart::Text(hex)) => WalletId::from_hex(hex).unwrap(),
        _ => unreachable!(),
    };
    let wanted: Vec<u8> = (1..=12).filter(|n| only.is_none_or(|w| w.contains(&wallet_id(*n)))).collect();
    assert_eq!(state.wallets.len(), wanted.len(), "{at}");
    for n in &wanted {
        let mut expected = sample_changeset(*n);
        if wallet_id(*n) == owner {
            let before = expected.utxos.0.len();
            expected.utxos.0.retain(|key, _| entry_key(&owner, key) != lost.key);
            assert_eq!(expected.utxos.0.len(), before - 1, "{at}");
        }
        assert!(state.wallets[&wallet_id(*n)] == expected, "{at}: wallet {n} differs");
    }
    let mut rows = rows_on_disk(disk, only);
    rows.iter_mut().find(|(store, _)| *store == UTXOS).unwrap().1 -= 1;
    assert_eq!(report.rows.len(), rows.len(), "{at}");
    for (store, n) in rows {
        assert_eq!(report.rows[store], n, "{at}: rows of {store}");
        assert_eq!(report.skipped_rows[store], u32::from(store == UTXOS), "{at}: skipped rows of {store}");
    }
    assert_eq!(report.wallets, wanted.len() as u32, "{at}");
    assert_eq!(report.scanned_stores, vec![UTXOS], "{at}");
    assert_eq!(report.skipped.len(), 1, "{at}: {:?}", report.skipped);
    assert_eq!(report.skipped[0].key, key_to_string(&lost.key), "{at}");
    assert_eq!(report.not_found, only.map(|_| Vec::new()), "{at}");
}

/// A whole load, at every chunk size, with a lost utxo of the first, a middle and the last wallet.
#[test]
fn a_store_failing_after_some_chunks_loads_every_row_once() {
    let disk = twelve_wallets();
    let utxos = disk.rows(UTXOS);
    let total: usize = AREA_STORES.iter().map(|s| disk.rows(s).len()).sum();
    for lost in [utxos.first().unwrap(), &utxos[utxos.len() / 2], utxos.last().unwrap()] {
        let disk = twelve_wallets();
        disk.lose_value(UTXOS, lost.key.clone());
        for chunk in 1..=total + 1 {
            disk.set_read_chunk_rows(chunk);
            let persister = block_on(Persister::open(disk.reopen(), Default::default())).expect("open");
            let (state, report) =
                block_on(persister.load()).unwrap_or_else(|e| panic!("chunk {chunk}, lost {:?}: {e}", lost.key));
            check(&disk, None, lost, &state, &report, &format!("chunk {chunk}, lost {:?}", lost.key));
        }
    }
}

/// A load of some wallets reads one key range per store and wallet: one range failing leaves the
/// store's other ranges read, and the row-by-row read of that store must not hand them over again.
#[test]
fn a_load_of_some_wallets_with_a_failing_range_loads_every_row_once() {
    let (a, b, c) = (wallet_id(3), wallet_id(7), wallet_id(11));
    let only: BTreeSet<WalletId> = [a, b, c].into();
    for owner in [a, b, c] {
        let disk = twelve_wallets();
        let lost =
            disk.rows(UTXOS).into_iter().rfind(|row| row.key.first() == Some(&KeyPart::Text(owner.to_hex()))).unwrap();
        disk.lose_value(UTXOS, lost.key.clone());
        for chunk in 1..=40 {
            disk.set_read_chunk_rows(chunk);
            let persister = block_on(Persister::open(disk.reopen(), Default::default())).expect("open");
            let (state, report) = block_on(persister.load_wallets(&only))
                .unwrap_or_else(|e| panic!("chunk {chunk}, lost in {owner}: {e}"));
            check(&disk, Some(&only), &lost, &state, &report, &format!("chunk {chunk}, lost in {owner}"));
        }
    }
}

/// A persister over `disk` sealing with `cipher`.
fn open_sealed(cipher: &std::rc::Rc<Cipher>, disk: &MemoryBackend) -> Persister<EncryptedBackend<MemoryBackend>> {
    let backend = EncryptedBackend::new(disk.reopen());
    backend.set_cipher(Some(cipher.clone()));
    block_on(Persister::open(backend, Default::default())).expect("open")
}

/// Twelve sample wallets committed sealed with `cipher`.
fn sealed_wallets(cipher: &std::rc::Rc<Cipher>) -> MemoryBackend {
    let disk = MemoryBackend::new();
    block_on(async {
        let writer = open_sealed(cipher, &disk);
        for n in 1..=12 {
            writer.store(wallet_id(n), sample_changeset(n)).await.unwrap();
        }
        writer.commit().await.unwrap();
    });
    disk
}

/// Encrypted: sealed keys sort by their hash, so a store's rows come in no wallet order; a sealed
/// store failing after some chunks still loads every row once, as a load that fails at its first
/// chunk does.
#[test]
fn an_encrypted_store_failing_after_some_chunks_loads_every_row_once() {
    let cipher = std::rc::Rc::new(Cipher::new(&wallet_persist::crypto::ops::random_key().unwrap()));
    let open = |disk: &MemoryBackend| open_sealed(&cipher, disk);
    let build = || sealed_wallets(&cipher);
    let sealed = build().rows(UTXOS);
    let utxos = sealed.len() as u32;
    let total: usize = AREA_STORES.iter().map(|s| build().rows(s).len()).sum();
    for at in [0, sealed.len() / 2, sealed.len() - 1] {
        let disk = build();
        let lost = &disk.rows(UTXOS)[at];
        disk.lose_value(UTXOS, lost.key.clone());
        // The bulk read fails at its first chunk: the row-by-row read of the whole store.
        disk.set_read_chunk_rows(usize::MAX);
        let (expected, expected_report) = block_on(open(&disk).load()).unwrap();
        assert_eq!(expected.wallets.len(), 12);
        assert_eq!(expected_report.scanned_stores, vec![UTXOS]);
        assert_eq!((expected_report.rows[UTXOS], expected_report.skipped.len()), (utxos - 1, 1));
        for chunk in 1..=total {
            disk.set_read_chunk_rows(chunk);
            let (state, report) =
                block_on(open(&disk).load()).unwrap_or_else(|e| panic!("chunk {chunk}, lost {:?}: {e}", lost.key));
            assert!(state == expected, "chunk {chunk}, lost {:?}: state differs", lost.key);
            assert_eq!(report, expected_report, "chunk {chunk}, lost {:?}", lost.key);
        }
    }
}

/// Wallets that each leave some stores empty (so a store's read runs ahead of the others), one
/// with no wallet record and one without its identities (their rows orphans, found only with rows
/// of other stores), in a database read at every chunk size: the wallets are handed over in id
/// order, each once, and state and report are those of a load that reads every store in one
/// chunk (where nothing completes before the end).
#[test]
fn sparse_wallets_and_orphans_load_alike_at_every_chunk_size() {
    let source = MemoryBackend::new();
    block_on(async {
        let writer = Persister::open(source.reopen(), Default::default()).await.expect("open");
        for n in 1..=9u8 {
            let mut cs = sample_changeset(n);
            if n % 2 == 0 {
                cs.utxos = Default::default();
                cs.transactions = Default::default();
            }
            if n % 3 == 0 {
                cs.accounts = Default::default();
                cs.records = Default::default();
                cs.contacts = Default::default();
            }
            writer.store(wallet_id(n), cs).await.unwrap();
        }
        writer.commit().await.unwrap();
    });
    // Wallet 4 without its record, wallet 5 without its identities.
    let disk = MemoryBackend::new();
    let dropped = |store: &str, row: &Row| {
        let owner = |n| row.key.first() == Some(&KeyPart::Text(wallet_id(n).to_hex()));
        (store == wallet_persist::layout::WALLETS && owner(4))
            || (store == wallet_persist::layout::IDENTITIES && owner(5))
    };
    for store in AREA_STORES {
        for row in source.rows(store) {
            if !dropped(store, &row) {
                disk.put_raw(store, row.key, row.value);
            }
        }
    }
    let total: usize = AREA_STORES.iter().map(|s| disk.rows(s).len()).sum();
    disk.set_read_chunk_rows(usize::MAX);
    let (expected, expected_report) =
        block_on(block_on(Persister::open(disk.reopen(), Default::default())).unwrap().load()).unwrap();
    assert_eq!(expected.wallets.len(), 8);
    assert!(!expected.wallets.contains_key(&wallet_id(4)));
    assert!(expected.wallets[&wallet_id(5)].identity_keys.0.is_empty());
    assert!(expected_report.skipped.iter().all(|s| s.code == wallet_persist::Error::OrphanRow(String::new()).code()));
    assert!(!expected_report.skipped.is_empty());
    for chunk in 1..=total {
        disk.set_read_chunk_rows(chunk);
        let persister = block_on(Persister::open(disk.reopen(), Default::default())).unwrap();
        let mut handed: Vec<WalletId> = Vec::new();
        struct Order<'a>(&'a mut Vec<WalletId>, std::collections::BTreeMap<WalletId, WalletChangeSet>);
        impl wallet_persist::wallets::LoadSink for Order<'_> {
            fn restart(&mut self) {
                self.0.clear();
                self.1.clear();
            }
            fn wallets(
                &mut self,
                mut wallets: std::collections::BTreeMap<WalletId, WalletChangeSet>,
            ) -> wallet_persist::Result<()> {
                self.0.extend(wallets.keys());
                self.1.append(&mut wallets);
                Ok(())
            }
        }
        let mut sink = Order(&mut handed, Default::default());
        let report = block_on(persister.load_into(None, &mut sink)).unwrap();
        let state = sink.1;
        assert!(state == expected.wallets, "chunk {chunk}: state differs");
        assert_eq!(report, expected_report, "chunk {chunk}");
        let mut sorted = handed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(handed, sorted, "chunk {chunk}: handed over out of order or twice");
    }
}

/// `list_wallets` reads the wallet-record store alone: that store failing after some chunks
/// leaves nothing to stream, and every record is listed once, the lost one skipped.
#[test]
fn list_wallets_with_its_store_failing_after_some_chunks_lists_each_record_once() {
    use wallet_persist::layout::WALLETS;
    let disk = twelve_wallets();
    let records = disk.rows(WALLETS);
    let lost = &records[records.len() - 2];
    disk.lose_value(WALLETS, lost.key.clone());
    for chunk in 1..=records.len() + 1 {
        disk.set_read_chunk_rows(chunk);
        let persister = block_on(Persister::open(disk.reopen(), Default::default())).unwrap();
        let (listed, skipped) = block_on(persister.list_wallets()).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
        let ids: Vec<WalletId> = listed.iter().map(|r| r.wallet_id.unwrap()).collect();
        let expected: Vec<WalletId> = (1..=12).map(wallet_id).filter(|w| w.to_hex() != lost_hex(lost)).collect();
        assert_eq!(ids, expected, "chunk {chunk}");
        assert_eq!(skipped.len(), 1, "chunk {chunk}: {skipped:?}");
        assert_eq!(skipped[0].key, key_to_string(&lost.key), "chunk {chunk}");
    }
}

fn lost_hex(row: &Row) -> String {
    match row.key.first() {
        Some(KeyPart::Text(hex)) => hex.clone(),
        _ => unreachable!(),
    }
}

/// A load of some wallets whose store falls back to the row-by-row read reports the unreadable
/// rows of those wallets only: a row of another wallet, unreadable too, is no part of this load.
#[test]
fn a_load_of_some_wallets_reports_only_their_unreadable_rows() {
    let (wanted, other) = (wallet_id(3), wallet_id(9));
    let only: BTreeSet<WalletId> = [wanted].into();
    let disk = twelve_wallets();
    let owned_by = |owner: WalletId| {
        disk.rows(UTXOS).into_iter().rfind(|row| row.key.first() == Some(&KeyPart::Text(owner.to_hex()))).unwrap()
    };
    let (lost, elsewhere) = (owned_by(wanted), owned_by(other));
    disk.lose_value(UTXOS, lost.key.clone());
    disk.lose_value(UTXOS, elsewhere.key.clone());
    for chunk in [1, 2, 5, usize::MAX] {
        disk.set_read_chunk_rows(chunk);
        let persister = block_on(Persister::open(disk.reopen(), Default::default())).expect("open");
        let (state, report) = block_on(persister.load_wallets(&only)).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
        check(&disk, Some(&only), &lost, &state, &report, &format!("chunk {chunk}"));
    }
}

/// The same, sealed: the row-by-row read of the wanted wallets' hashed ranges reports their
/// unreadable rows (under their stored keys) and nothing of other wallets.
#[test]
fn an_encrypted_load_of_some_wallets_reports_only_their_unreadable_rows() {
    let cipher = std::rc::Rc::new(Cipher::new(&wallet_persist::crypto::ops::random_key().unwrap()));
    let open = |disk: &MemoryBackend| open_sealed(&cipher, disk);
    let disk = sealed_wallets(&cipher);
    let (wanted, other) = (wallet_id(3), wallet_id(9));
    let only: BTreeSet<WalletId> = [wanted].into();
    let sealed_of = |owner: WalletId| {
        let hashed = KeyPart::Text(cipher.hash_text(&owner.to_hex()));
        disk.rows(UTXOS).into_iter().find(|row| row.key.first() == Some(&hashed)).unwrap()
    };
    let (lost, elsewhere) = (sealed_of(wanted), sealed_of(other));
    disk.lose_value(UTXOS, lost.key.clone());
    disk.lose_value(UTXOS, elsewhere.key.clone());
    for chunk in [1, 3, usize::MAX] {
        disk.set_read_chunk_rows(chunk);
        let (state, report) =
            block_on(open(&disk).load_wallets(&only)).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
        assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![wanted], "chunk {chunk}");
        assert_eq!(state.wallets[&wanted].utxos.0.len(), sample_changeset(3).utxos.0.len() - 1, "chunk {chunk}");
        assert_eq!(report.scanned_stores, vec![UTXOS], "chunk {chunk}");
        let skipped: Vec<(&str, &str)> = report.skipped.iter().map(|s| (s.store, s.key.as_str())).collect();
        assert_eq!(skipped, vec![(UTXOS, key_to_string(&lost.key).as_str())], "chunk {chunk}");
        assert_eq!(report.skipped_rows[UTXOS], 1, "chunk {chunk}");
    }
}

/// The memory backend on which a commit lands right after a stream of `utxos` ends and right
/// before a row-by-row read of a store, as another tab's (or this store's own) commit can land between
/// two transactions of one load.
struct CommitsBetweenReads(MemoryBackend, std::cell::RefCell<Option<wallet_persist::backend::WriteBatch>>);

impl wallet_persist::backend::Backend for CommitsBetweenReads {
    async fn write(&self, batch: &wallet_persist::backend::WriteBatch) -> wallet_persist::Result<()> {
        self.0.write(batch).await
    }
    async fn read(&self, stores: &[&'static str]) -> wallet_persist::Result<Vec<wallet_persist::Result<StoreRows>>> {
        self.0.read(stores).await
    }
    async fn read_groups(
        &self,
        stores: &[&'static str],
        groups: &[&str],
    ) -> wallet_persist::Result<Vec<wallet_persist::Result<StoreRows>>> {
        self.0.read_groups(stores, groups).await
    }
    async fn read_stream(
        &self,
        stores: &[&'static str],
        groups: Option<&[&str]>,
        sink: &mut dyn FnMut(wallet_persist::backend::ReadEvent) -> wallet_persist::Result<()>,
    ) -> wallet_persist::Result<()> {
        let read = self.0.read_stream(stores, groups, sink).await;
        let batch = if stores.contains(&UTXOS) { self.1.borrow_mut().take() } else { None };
        if let Some(batch) = batch {
            self.0.write(&batch).await?;
        }
        read
    }
    async fn get(&self, store: &'static str, key: &Key) -> wallet_persist::Result<Option<Vec<u8>>> {
        self.0.get(store, key).await
    }
    async fn scan(&self, store: &'static str) -> wallet_persist::Result<StoreRows> {
        let batch = self.1.borrow_mut().take();
        if let Some(batch) = batch {
            self.0.write(&batch).await?;
        }
        self.0.scan(store).await
    }
    async fn reconnect(&self) -> wallet_persist::Result<()> {
        self.0.reconnect().await
    }
    fn close(&self) {
        self.0.close()
    }
}

use wallet_persist::backend::StoreRows;

/// A store whose bulk read fails is read row by row within the load's one snapshot: a commit
/// deleting a wallet that lands once the stream ended (or before a row-by-row read in a
/// transaction of its own would run) must not leave that wallet loaded without its rows of that
/// store, a state never on disk. The load is that of the moment before the commit, exactly.
#[test]
fn a_commit_landing_before_the_row_by_row_read_never_loads_half_a_wallet() {
    use wallet_persist::backend::{WriteBatch, WriteOp};
    let gone = wallet_id(5);
    for chunk in [1, 7, usize::MAX] {
        let disk = twelve_wallets();
        let lost = disk.rows(UTXOS).into_iter().find(|r| r.key.first() == Some(&KeyPart::Text(wallet_id(3).to_hex())));
        let lost = lost.unwrap().key;
        disk.lose_value(UTXOS, lost.clone());
        disk.set_read_chunk_rows(chunk);
        let delete =
            WriteBatch::new(AREA_STORES.iter().map(|store| WriteOp::DeleteWallet { store, wallet: gone }).collect());
        let backend = CommitsBetweenReads(disk.reopen(), Some(delete).into());
        let persister = block_on(Persister::open(backend, Default::default())).expect("open");
        let (state, report) = block_on(persister.load()).unwrap();
        assert_eq!(report.scanned_stores, vec![UTXOS], "chunk {chunk}");
        assert!(persister.backend().1.borrow().is_none(), "chunk {chunk}: the commit landed");
        let loaded = state.wallets.get(&gone).unwrap_or_else(|| panic!("chunk {chunk}: wallet 5 not loaded"));
        assert!(*loaded == sample_changeset(5), "chunk {chunk}: wallet 5 loaded with {} utxos", loaded.utxos.0.len());
        assert_eq!(state.wallets.len(), 12, "chunk {chunk}");
        let skipped: Vec<(&str, &str)> = report.skipped.iter().map(|s| (s.store, s.key.as_str())).collect();
        assert_eq!(skipped, vec![(UTXOS, key_to_string(&lost).as_str())], "chunk {chunk}");
    }
}

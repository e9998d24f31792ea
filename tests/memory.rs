//! Bounded memory on the host: a commit makes its encoded (and sealed) rows as the backend pulls
//! them, chunk by chunk, so it never holds every encoded row at once; a load hands each wallet over
//! as it completes, so it never holds every row. Measured with an allocator
//! that counts the bytes each thread holds (the tests of this binary run on parallel threads).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wallet_persist::backend::{
    Backend, ChunkSize, EncryptedBackend, MemoryBackend, StoreRows, WriteBatch, WriteOp, WriteSource,
};
use wallet_persist::crypto::Cipher;
use wallet_persist::model::*;
use wallet_persist::testing::{block_on, sample_changeset, wallet_id};
use wallet_persist::wallets::rows::changeset_ops;
use wallet_persist::{Persister, Result};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes this thread holds now; the peak restarts from here.
fn restart_peak() -> isize {
    let live = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(live));
    live
}

fn peak() -> isize {
    PEAK.with(Cell::get)
}

const MIB: usize = 1 << 20;

/// A backend that pulls a write chunk by chunk as IndexedDB does (4 rows or 256 KiB), and keeps
/// on its disk a digest of each value instead of the value, so what it keeps stays small.
/// `check` sees every op as it is pulled.
struct Streaming {
    disk: MemoryBackend,
    check: Box<dyn Fn(&WriteOp)>,
}

/// Length and FNV-1a hash of `bytes`.
fn digest(bytes: &[u8]) -> Vec<u8> {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    [(bytes.len() as u64).to_le_bytes(), hash.to_le_bytes()].concat()
}

fn digested(op: WriteOp) -> WriteOp {
    match op {
        WriteOp::Put { store, key, value } => WriteOp::Put { store, key, value: digest(&value) },
        other => other,
    }
}

impl Backend for Streaming {
    async fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.write_source(batch).await
    }
    async fn write_source(&self, source: &dyn WriteSource) -> Result<()> {
        let mut kept = Vec::new();
        for chunk in (ChunkSize { rows: 4, bytes: 256 << 10 }).chunks(source.stream()) {
            for op in chunk? {
                (self.check)(&op);
                kept.push(digested(op.into_owned()));
            }
        }
        self.disk.write(&WriteBatch { ops: kept, strict: source.strict() }).await
    }
    async fn read(&self, stores: &[&'static str]) -> Result<Vec<Result<StoreRows>>> {
        self.disk.read(stores).await
    }
    async fn read_groups(&self, stores: &[&'static str], groups: &[&str]) -> Result<Vec<Result<StoreRows>>> {
        self.disk.read_groups(stores, groups).await
    }
    async fn get(&self, store: &'static str, key: &Key) -> Result<Option<Vec<u8>>> {
        self.disk.get(store, key).await
    }
    async fn scan(&self, store: &'static str) -> Result<StoreRows> {
        self.disk.scan(store).await
    }
    async fn reconnect(&self) -> Result<()> {
        self.disk.reconnect().await
    }
    fn close(&self) {
        self.disk.close()
    }
}

/// A wallet's changes with one value of 1 MiB, every byte `seed`; wallet 1 also has 3,000
/// addresses (an area made in many pieces).
fn big(seed: u8) -> WalletChangeSet {
    let mut changes = sample_changeset(seed);
    changes.records.upsert(Record { namespace: "app".into(), key: "big".into(), value: Bytes::from(vec![seed; MIB]) });
    if seed == 1 {
        for index in 0..3_000 {
            let address = format!("tb1qmany{index:05}");
            changes.addresses.upsert(AddressEntry { address, account: 0, index, used: index % 2 == 0 });
        }
    }
    changes
}

const WALLETS: u8 = 8;

/// Most bytes a commit of `WALLETS` × 1 MiB may hold on top of the staged changes: a chunk (one
/// 1 MiB value, as it is encoded and sealed), the key hasher's memo, and what the test backend
/// keeps of each of the ~3,100 rows (its key and a digest). Encoding every row first holds 8 MiB
/// more.
const BOUND: usize = 4 * MIB;

/// A row as the test backend keeps it: its key and the digest of its value.
type KeyedValue = (Key, Vec<u8>);

/// Stages `WALLETS` wallets of about 1 MiB each, commits them, and returns the most bytes the
/// commit held on top of what was held before it (the staged changes among them).
fn commit_peak<B: Backend>(persister: &Persister<B>) -> isize {
    for seed in 1..=WALLETS {
        persister.stage(wallet_id(seed), big(seed)).unwrap();
    }
    let before = restart_peak();
    let report = block_on(persister.commit()).unwrap();
    let held = peak() - before;
    assert_eq!(report.succeeded, (1..=WALLETS).map(wallet_id).collect::<Vec<_>>(), "{report:?}");
    held
}

/// A commit of 8 MiB of values holds one chunk of encoded rows at a time (a 1 MiB value is a
/// chunk of its own), never the 8 MiB encoded all at once; and every row lands exactly as
/// `changeset_ops` encodes it, store by store.
#[test]
fn a_commit_encodes_its_rows_chunk_by_chunk() {
    let disk = MemoryBackend::new();
    let persister =
        block_on(Persister::open(Streaming { disk: disk.reopen(), check: Box::new(|_| {}) }, Default::default()))
            .expect("open");
    let held = commit_peak(&persister);
    assert!(held < BOUND as isize, "the commit held {held} bytes on top of the staged changes");

    let mut expected = Vec::new();
    for seed in 1..=WALLETS {
        expected.extend(changeset_ops(&wallet_id(seed), &big(seed), usize::MAX).unwrap().into_iter().map(digested));
    }
    expected.sort_by_key(WriteOp::store);
    let on_disk: Vec<(&str, Vec<KeyedValue>)> = block_on(disk.read(AREA_STORES))
        .unwrap()
        .into_iter()
        .map(|read| {
            let read = read.unwrap();
            (read.store, read.rows.into_iter().map(|row| (row.key, row.value)).collect())
        })
        .collect();
    for (store, rows) in on_disk {
        let mut want: Vec<KeyedValue> = expected
            .iter()
            .filter(|op| op.store() == store)
            .map(|op| match op {
                WriteOp::Put { key, value, .. } => (key.clone(), value.clone()),
                other => panic!("the changes delete nothing: {other:?}"),
            })
            .collect();
        want.sort();
        assert_eq!(rows, want, "{store}");
    }
}

/// Over the encrypting backend, each chunk is sealed as it is pulled: the commit's peak stays one
/// chunk, and no value reaches the disk with the plain bytes in it.
#[test]
fn an_encrypted_commit_seals_its_rows_chunk_by_chunk() {
    let puts = Rc::new(Cell::new(0));
    let plain = Rc::new(RefCell::new(Vec::new()));
    let check = {
        let (puts, plain) = (puts.clone(), plain.clone());
        move |op: &WriteOp| {
            if let WriteOp::Put { store, key, value } = op {
                puts.set(puts.get() + 1);
                let leaked = (1..=WALLETS).any(|seed| value.windows(64).any(|w| w.iter().all(|b| *b == seed)));
                if leaked || matches!(key.first(), Some(KeyPart::Text(hex)) if *hex == wallet_id(1).to_hex()) {
                    plain.borrow_mut().push(format!("{store} {key:?}"));
                }
            }
        }
    };
    let backend = EncryptedBackend::new(Streaming { disk: MemoryBackend::new(), check: Box::new(check) });
    let persister = block_on(Persister::open(backend, Default::default())).expect("open");
    persister.backend().set_cipher(Some(Rc::new(Cipher::new(&wallet_persist::crypto::ops::random_key().unwrap()))));
    let before = puts.get();
    let held = commit_peak(&persister);
    // Each sealed value is also opened once more to check it (`seal_checked`): one more value.
    let bound = BOUND + (1 << 20);
    assert!(held < bound as isize, "the commit held {held} bytes on top of the staged changes");
    let rows: usize =
        (1..=WALLETS).map(|seed| changeset_ops(&wallet_id(seed), &big(seed), usize::MAX).unwrap().len()).sum();
    assert_eq!(puts.get() - before, rows);
    assert!(plain.borrow().is_empty(), "plain on disk: {:?}", plain.borrow());
}

/// Wallets `seed` in `seeds`, each `big(seed)` (no wallet of many small rows: every store moves
/// through the wallets at the same pace), committed to a fresh database read 4 rows at a time.
fn loaded_database(seeds: std::ops::RangeInclusive<u8>) -> MemoryBackend {
    let disk = MemoryBackend::new();
    disk.set_read_chunk_rows(4);
    let persister = block_on(Persister::open(disk.reopen(), Default::default())).expect("open");
    for seed in seeds {
        persister.stage(wallet_id(seed), big(seed)).unwrap();
    }
    block_on(persister.commit()).unwrap();
    disk
}

/// Checks each wallet handed over against what was written, then drops it.
struct Expect {
    seeds: Vec<u8>,
    batches: usize,
}

impl wallet_persist::wallets::LoadSink for Expect {
    /// Before the read (nothing reconnects here).
    fn restart(&mut self) {
        assert_eq!(self.batches, 0, "the read started over");
    }
    fn wallets(&mut self, wallets: std::collections::BTreeMap<WalletId, WalletChangeSet>) -> Result<()> {
        self.batches += usize::from(!wallets.is_empty());
        for (wallet, changes) in wallets {
            let seed = self.seeds.remove(0);
            assert_eq!(wallet, wallet_id(seed));
            assert!(changes == big(seed), "wallet {seed} differs from what was written");
        }
        Ok(())
    }
}

/// A load decodes rows as they arrive and hands each wallet over once every store read past it:
/// it holds a chunk and the wallets not complete yet, never every row. Here a chunk of 4 rows may
/// hold two 1 MiB values and two decoded wallets may wait for the other stores: under 5 MiB, of
/// the 8 MiB of values (a load that keeps every wallet holds more than that: the second half).
#[test]
fn a_load_holds_the_wallets_under_way_not_every_row() {
    let seeds = 2..=9u8;
    let disk = loaded_database(seeds.clone());
    let persister = block_on(Persister::open(disk.reopen(), Default::default())).expect("open");
    let mut sink = Expect { seeds: seeds.clone().collect(), batches: 0 };
    let before = restart_peak();
    let report = block_on(persister.load_into(None, &mut sink)).unwrap();
    let held = peak() - before;
    assert!(sink.seeds.is_empty(), "wallets never handed over: {:?}", sink.seeds);
    assert!(sink.batches > 2, "handed over in {} batch(es): not as they completed", sink.batches);
    assert!(report.skipped.is_empty() && report.wallets == 8, "{report:?}");
    assert!(held < 5 * MIB as isize, "the load held {held} bytes");

    let before = restart_peak();
    let (state, _) = block_on(persister.load()).unwrap();
    let held = peak() - before;
    assert_eq!(state.wallets.len(), 8);
    assert!(held > 8 * MIB as isize, "a load that keeps every wallet held only {held} bytes");
}

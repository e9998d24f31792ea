//! Property test of the row decoder: random and mutated byte strings, decoded as every area's row,
//! never panic and never make an allocation larger than the byte limit. A counting global
//! allocator (this test binary only) records the largest single allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use wallet_persist::codec::{self, MAX_BLOB_BYTES, SCHEMA_VERSION};
use wallet_persist::model::{entry_key, KeyPart, WalletChangeSet, AREA_STORES};
use wallet_persist::testing::{sample_changeset, wallet_id};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// xorshift64*: deterministic, so a failure reproduces from its iteration number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// An envelope header claiming `len` payload bytes.
fn header(len: u32) -> Vec<u8> {
    let mut out = codec::MAGIC.to_vec();
    out.push(0);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out
}

/// A hostile input: pure noise, a valid header over noise, or a real row with a few bytes
/// overwritten, a large varint planted, bytes cut or appended.
fn hostile(rng: &mut Rng, valid: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(5) {
        0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
        1 => {
            let payload: Vec<u8> = (0..rng.below(256)).map(|_| rng.next() as u8).collect();
            let mut out = header(payload.len() as u32);
            out.extend(payload);
            out
        }
        kind => {
            let mut out = valid[rng.below(valid.len())].clone();
            let body = codec::HEADER_LEN..out.len();
            match kind {
                2 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(out.len());
                        out[at] = rng.next() as u8;
                    }
                }
                3 => {
                    // A varint marker for a u32 or u64 with a random, often huge, value.
                    let at = body.start + rng.below(body.len());
                    let (marker, width) = if rng.below(2) == 0 { (0xfc, 4) } else { (0xfd, 8) };
                    let value = rng.next().to_le_bytes();
                    out.splice(at..at, std::iter::once(marker).chain(value[..width].iter().copied()));
                    let len = (out.len() - codec::HEADER_LEN) as u32;
                    out[7..11].copy_from_slice(&len.to_le_bytes());
                }
                _ => {
                    if rng.below(2) == 0 {
                        out.truncate(rng.below(out.len()));
                    } else {
                        out.extend((0..1 + rng.below(8)).map(|_| rng.next() as u8));
                    }
                }
            }
            out
        }
    }
}

#[test]
fn random_bytes_never_panic_or_allocate_past_the_limit() {
    let wallet = wallet_id(1);
    let ops = wallet_persist::wallets::rows::changeset_ops(&wallet, &sample_changeset(1), MAX_BLOB_BYTES).unwrap();
    let rows: Vec<(&str, Vec<KeyPart>, Vec<u8>)> = ops
        .into_iter()
        .map(|op| match op {
            wallet_persist::backend::WriteOp::Put { store, key, value } => (store, key, value),
            other => panic!("unexpected op {other:?}"),
        })
        .collect();
    let valid: Vec<Vec<u8>> = rows.iter().map(|(_, _, value)| value.clone()).collect();
    let other_key = entry_key(&wallet, &());

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes: BTreeMap<u16, u32> = BTreeMap::new();
    let baseline = LARGEST.load(Ordering::Relaxed);
    for iteration in 0..20_000 {
        let bytes = hostile(&mut rng, &valid);
        for store in AREA_STORES {
            let key = rows.iter().find(|(s, _, _)| s == store).map_or(&other_key, |(_, key, _)| key);
            let mut state = BTreeMap::new();
            let outcome = WalletChangeSet::load_row(&mut state, store, key, &bytes, MAX_BLOB_BYTES);
            let code = outcome.err().map_or(0, |e| e.code());
            assert!(matches!(code, 0 | 9 | 10 | 11 | 12 | 13), "iteration {iteration}: unexpected code {code}");
            *outcomes.entry(code).or_default() += 1;
        }
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    println!("outcomes by code: {outcomes:?}; largest allocation {largest} bytes (before: {baseline})");
    assert!(largest <= MAX_BLOB_BYTES, "an allocation of {largest} bytes exceeds the {MAX_BLOB_BYTES}-byte limit");
    // The generator reaches the interesting refusals, not only one kind of garbage.
    for code in [10, 11, 12, 13] {
        assert!(outcomes.get(&code).copied().unwrap_or(0) > 0, "no input produced code {code}: {outcomes:?}");
    }
}

/// The channel rows (a structured meta, a history entry, a retrieval hint) under the same hostile
/// inputs: no panic, no allocation past the limit, only decode refusals. A meta nested 100,000
/// levels deep is refused without recursing.
#[test]
fn hostile_channel_rows_never_panic_or_allocate_past_the_limit() {
    use wallet_persist::backend::Row;
    use wallet_persist::channels::{self as snapshot, HistoryEntry, HistoryIndex, MetaValue, Node};
    use wallet_persist::model::Bytes;

    let meta = MetaValue::from_nodes(vec![
        Node::Map(2),
        Node::Key("lamport".into()),
        Node::BigInt(7),
        Node::Key("buffers".into()),
        Node::List(3),
        Node::Text("m1".into()),
        Node::Bytes(Bytes::from(vec![1, 2, 3])),
        Node::Number(0.25),
    ])
    .unwrap();
    let entry =
        HistoryEntry { id: "m1".into(), bytes: Bytes::from(vec![9; 40]), timestamp_ms: Some(1_732_000_000_123) };
    let valid = vec![
        codec::encode(&("c", &meta), MAX_BLOB_BYTES).unwrap(),
        codec::encode(&("c", 3u32, &entry), MAX_BLOB_BYTES).unwrap(),
        codec::encode(&("c", "m1", Bytes::from(vec![5; 8])), MAX_BLOB_BYTES).unwrap(),
    ];
    let (meta_key, history_key, hint_key) =
        (snapshot::meta_key("c"), snapshot::history_key("c", 3), snapshot::hint_key("c", "m1"));

    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut outcomes: BTreeMap<u16, u32> = BTreeMap::new();
    for iteration in 0..20_000 {
        let bytes = hostile(&mut rng, &valid);
        let codes = [
            snapshot::decode_meta::<MetaValue>(
                "c",
                &Row { key: meta_key.clone(), value: bytes.clone() },
                MAX_BLOB_BYTES,
            )
            .err(),
            HistoryIndex::from_rows("c", &[Row { key: history_key.clone(), value: bytes.clone() }], MAX_BLOB_BYTES)
                .err(),
            snapshot::decode_hint("c", &Row { key: hint_key.clone(), value: bytes }, MAX_BLOB_BYTES).err(),
        ];
        for code in codes.map(|e| e.map_or(0, |e| e.code())) {
            assert!(matches!(code, 0 | 9 | 10 | 11 | 13), "iteration {iteration}: unexpected code {code}");
            *outcomes.entry(code).or_default() += 1;
        }
    }
    println!("channel row outcomes by code: {outcomes:?}");
    assert!(LARGEST.load(Ordering::Relaxed) <= MAX_BLOB_BYTES);
    for code in [10, 11, 13] {
        assert!(outcomes.get(&code).copied().unwrap_or(0) > 0, "no input produced code {code}: {outcomes:?}");
    }

    let mut deep: Vec<Node> = vec![Node::List(1); 100_000];
    deep.push(Node::Null);
    let row = Row { key: meta_key, value: codec::encode(&("c", &deep), MAX_BLOB_BYTES).unwrap() };
    let error = snapshot::decode_meta::<MetaValue>("c", &row, MAX_BLOB_BYTES).unwrap_err();
    assert_eq!(error.code(), 11);
    assert!(error.to_string().contains("nested deeper than 64"), "{error}");
}

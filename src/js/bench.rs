//! Benchmark-only exports (cargo feature `bench`, built into `bench/pkg/`, never published): the
//! payload generator every contender of `make bench` writes, the exact rows a flush of a changeset
//! puts (so raw IndexedDB, Dexie and idb-keyval store the same bytes as we do), the load phases
//! timed one by one, and the codec micro-benchmark (bincode vs serde-wasm-bindgen vs JSON).

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use super::{error, to_js, wallets_to_js};
use crate::backend::indexeddb::IndexedDbBackend;
use crate::backend::{Backend, WriteOp};
use crate::codec::{self, MAX_BLOB_BYTES};
use crate::error::{Error, Result};
use crate::model::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// xorshift64*: a fixed seed gives the same payloads on every run and machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Random (incompressible) bytes: Chromium compresses stored values.
    fn bytes(&mut self, len: usize) -> Bytes {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        Bytes::from(out)
    }
    fn hash(&mut self) -> Hash32 {
        let mut h = [0u8; 32];
        h.copy_from_slice(&self.bytes(32));
        Hash32(h)
    }
    /// The value mix: stored values of about 300 B, 2 KB and 8 KB, weighted 6 : 3 : 1.
    /// Returns the length of the opaque bytes that make a value of that size (the envelope, the
    /// wallet id and the value's other fields take about 80 bytes).
    fn mixed_blob_len(&mut self) -> usize {
        match self.next() % 10 {
            0..=5 => 300 - 80,
            6..=8 => 2048 - 80,
            _ => 8192 - 80,
        }
    }
}

/// Wallet number `n` of a workload.
fn bench_wallet(n: u32) -> WalletId {
    let mut id = [0x5a; 32];
    id[28..].copy_from_slice(&n.to_be_bytes());
    WalletId(id)
}

fn wallet_record(wallet: WalletId, n: u32) -> WalletRecord {
    WalletRecord {
        wallet_id: Some(wallet),
        network: "testnet".into(),
        label: format!("bench wallet {n}"),
        birth_height: 800_000 + n,
        created_at_ms: 1_700_000_000_000 + u64::from(n),
        account_schema: 1,
    }
}

/// One entry in every area (13 rows); every opaque value drawn from the 300 B / 2 KB / 8 KB mix.
fn full(wallet: WalletId, n: u32, rng: &mut Rng) -> WalletChangeSet {
    let mut cs = WalletChangeSet {
        wallet: Some(wallet_record(wallet, n)),
        sync_state: Some(SyncState { height: 850_000 + n, tip_hash: rng.hash(), last_sync_ms: 1_700_000_100_000 }),
        ..Default::default()
    };
    let txid = rng.hash();
    let outpoint = OutPoint { txid, vout: n % 4 };
    let identity = rng.hash();
    cs.accounts.upsert(Account {
        index: 0,
        kind: "bip84".into(),
        descriptor: format!("wpkh(tpubD6NzVbkrYhZ4X{n:08}/0/*)"),
    });
    cs.addresses.upsert(AddressEntry { address: format!("tb1q{n:038}"), account: 0, index: n, used: n % 2 == 0 });
    let len = rng.mixed_blob_len();
    cs.utxos.upsert(Utxo {
        outpoint,
        value: 50_000 + u64::from(n),
        script: rng.bytes(len),
        height: Some(850_001),
        account: 0,
    });
    let len = rng.mixed_blob_len();
    cs.transactions.upsert(TransactionEntry {
        txid,
        raw: rng.bytes(len),
        height: Some(850_001),
        timestamp_ms: Some(1_700_000_000_123),
        fee: Some(141),
    });
    let len = rng.mixed_blob_len();
    cs.identities.upsert(Identity {
        id: identity,
        index: Some(0),
        revision: 2,
        balance: 1 << 60,
        blob: rng.bytes(len),
    });
    cs.identity_keys.upsert(IdentityKey {
        identity,
        key_id: 1,
        purpose: 0,
        security_level: 2,
        public_key: rng.bytes(33),
    });
    let len = rng.mixed_blob_len();
    cs.contacts.upsert(Contact {
        kind: ContactKind::Established,
        contact: rng.hash(),
        request: rng.bytes(len),
        created_ms: 1,
        updated_ms: 2,
    });
    let len = rng.mixed_blob_len();
    cs.asset_locks.upsert(AssetLock {
        account: 1,
        outpoint,
        status: "chainLocked".into(),
        amount: 50_000,
        proof: rng.bytes(len),
    });
    cs.token_balances.upsert(TokenBalance { identity, token: rng.hash(), amount: 9_007_199_254_740_993 });
    cs.platform_addresses.upsert(PlatformAddress { address: format!("dashevo1{n:030}"), balance: 12, nonce: 3 });
    let len = rng.mixed_blob_len();
    cs.records.upsert(Record { namespace: "app".into(), key: format!("k{n}"), value: rng.bytes(len) });
    cs
}

/// A small changeset (4 rows, about 300 B values): round `round` of wallet `n`'s sync.
fn small(n: u32, round: u32, rng: &mut Rng) -> WalletChangeSet {
    let mut cs = WalletChangeSet {
        sync_state: Some(SyncState {
            height: 850_000 + round,
            tip_hash: rng.hash(),
            last_sync_ms: 1_700_000_100_000 + u64::from(round),
        }),
        ..Default::default()
    };
    let txid = rng.hash();
    cs.utxos.upsert(Utxo {
        outpoint: OutPoint { txid, vout: 0 },
        value: u64::from(round),
        script: rng.bytes(220),
        height: Some(850_000 + round),
        account: 0,
    });
    cs.transactions.upsert(TransactionEntry {
        txid,
        raw: rng.bytes(220),
        height: Some(850_000 + round),
        timestamp_ms: None,
        fee: Some(141),
    });
    cs.addresses.upsert(AddressEntry {
        address: format!("tb1q{n:018}{round:020}"),
        account: 0,
        index: round,
        used: true,
    });
    cs
}

/// `rows` rows of one wallet over 5 stores: the wallet record, its sync state, then utxos,
/// transactions and addresses in turn (opaque values from the mix).
fn bulk(wallet: WalletId, n: u32, rows: u32, rng: &mut Rng) -> WalletChangeSet {
    let mut cs = WalletChangeSet {
        wallet: Some(wallet_record(wallet, n)),
        sync_state: Some(SyncState { height: 850_000 + n, tip_hash: rng.hash(), last_sync_ms: 1_700_000_100_000 }),
        ..Default::default()
    };
    for i in 0..rows.saturating_sub(2) {
        match i % 3 {
            0 => {
                let len = rng.mixed_blob_len();
                cs.utxos.upsert(Utxo {
                    outpoint: OutPoint { txid: rng.hash(), vout: i },
                    value: u64::from(i),
                    script: rng.bytes(len),
                    height: Some(850_000),
                    account: 0,
                });
            }
            1 => {
                let len = rng.mixed_blob_len();
                cs.transactions.upsert(TransactionEntry {
                    txid: rng.hash(),
                    raw: rng.bytes(len),
                    height: Some(850_000),
                    timestamp_ms: Some(1_700_000_000_000),
                    fee: Some(141),
                });
            }
            _ => cs.addresses.upsert(AddressEntry {
                address: format!("tb1q{n:018}{i:020}"),
                account: 0,
                index: i,
                used: i % 2 == 0,
            }),
        }
    }
    cs
}

/// One changeset of `kib` KiB: the wallet record plus 8 KiB transactions.
fn big(wallet: WalletId, n: u32, kib: u32, rng: &mut Rng) -> WalletChangeSet {
    let mut cs = WalletChangeSet { wallet: Some(wallet_record(wallet, n)), ..Default::default() };
    for _ in 0..kib.div_ceil(8) {
        cs.transactions.upsert(TransactionEntry {
            txid: rng.hash(),
            raw: rng.bytes(8192),
            height: Some(850_000),
            timestamp_ms: None,
            fee: Some(141),
        });
    }
    cs
}

/// Update number `round` of wallet `n` in the update-heavy workload: a new sync height and a new
/// value for one of the wallet's 20 utxos (`round % 20`), so 100 rounds land on 21 rows.
fn update(n: u32, round: u32) -> WalletChangeSet {
    let mut tip = [0u8; 32];
    tip[..4].copy_from_slice(&n.to_le_bytes());
    tip[4..8].copy_from_slice(&round.to_le_bytes());
    let mut cs = WalletChangeSet {
        sync_state: Some(SyncState {
            height: 850_000 + round,
            tip_hash: Hash32(tip),
            last_sync_ms: 1_700_000_000_000 + u64::from(round),
        }),
        ..Default::default()
    };
    let mut txid = [0x77; 32];
    txid[0] = (round % 20) as u8;
    let script = Bytes::from([0x00, 0x14].into_iter().chain(std::iter::repeat_n(0xab, 20)).collect::<Vec<u8>>());
    let outpoint = OutPoint { txid: Hash32(txid), vout: 0 };
    cs.utxos.upsert(Utxo {
        outpoint,
        value: 10_000 + u64::from(round),
        script,
        height: Some(850_000 + round),
        account: 0,
    });
    cs
}

/// `{ walletId, changes }` of a benchmark changeset, `changes` in the JS form `store` accepts.
/// `shape`: `"full"` (13 rows), `"small"` (4), `"bulk"` (`arg` rows), `"big"` (`arg` KiB),
/// `"update"` (round `arg`); `n` numbers the wallet, `seed` varies the content.
#[wasm_bindgen(js_name = benchChangeset)]
pub fn bench_changeset(shape: &str, n: u32, arg: u32, seed: u32) -> Result<JsValue, JsValue> {
    let wallet = bench_wallet(n);
    let mut rng = Rng::new(u64::from(seed) << 32 | u64::from(n));
    let cs = match shape {
        "full" => full(wallet, n, &mut rng),
        "small" => small(n, arg, &mut rng),
        "bulk" => bulk(wallet, n, arg, &mut rng),
        "big" => big(wallet, n, arg, &mut rng),
        "update" => update(n, arg),
        other => return Err(error::to_js(&Error::InvalidArgument(format!("unknown shape {other:?}")))),
    };
    // A wallet's rows need its wallet record (orphan_row): the first round of a sync brings it.
    let mut cs = cs;
    if matches!(shape, "small" | "update") && arg == 0 {
        cs.wallet = Some(wallet_record(wallet, n));
    }
    let out = Object::new();
    set(&out, "walletId", &wallet.to_hex().into())?;
    set(&out, "changes", &input_form(&cs)?)?;
    Ok(out.into())
}

/// `to_js` spells absent singletons `null` (which `store` refuses) and empty areas `{}`: drop both.
fn input_form(cs: &WalletChangeSet) -> Result<JsValue, JsValue> {
    let value = to_js(cs).map_err(|e| error::to_js(&e))?;
    let object: &Object = value.unchecked_ref();
    for key in Object::keys(object).iter() {
        let area = Reflect::get(object, &key)?;
        if area.is_null() || (area.is_object() && Object::keys(area.unchecked_ref::<Object>()).length() == 0) {
            Reflect::delete_property(object, &key)?;
        }
    }
    Ok(value)
}

fn set(target: &Object, key: &str, value: &JsValue) -> Result<(), JsValue> {
    Reflect::set(target, &key.into(), value).map(|_| ())
}

fn key_to_js(key: &Key) -> JsValue {
    key.iter()
        .map(|part| match part {
            KeyPart::Num(n) => JsValue::from_f64(f64::from(*n)),
            KeyPart::Text(s) => JsValue::from_str(s),
        })
        .collect::<Array>()
        .into()
}

/// The rows a flush of `changes` for `walletId` writes, exactly: `[{ store, key, value }]` with the
/// IndexedDB key array and the envelope bytes (`delete` for a tombstone instead of `value`).
#[wasm_bindgen(js_name = benchRows)]
pub fn bench_rows(wallet: JsValue, changes: JsValue) -> Result<Array, JsValue> {
    let rows = (|| -> Result<Array> {
        let (wallet, changes) = super::parse_changes(&wallet, &changes).map_err(|r| r.error)?;
        changes.validate(&wallet, MAX_BLOB_BYTES)?;
        let ops = crate::wallets::rows::changeset_ops(&wallet, &changes, MAX_BLOB_BYTES)?;
        let rows = Array::new();
        for op in ops {
            let row = Object::new();
            let (store, key, value) = match op {
                WriteOp::Put { store, key, value } => (store, key, Some(value)),
                WriteOp::Delete { store, key } => (store, key, None),
                other => return Err(Error::Internal(format!("unexpected op {other:?}"))),
            };
            let _ = Reflect::set(&row, &"store".into(), &store.into());
            let _ = Reflect::set(&row, &"key".into(), &key_to_js(&key));
            match value {
                Some(bytes) => Reflect::set(&row, &"value".into(), &Uint8Array::from(&bytes[..])),
                None => Reflect::set(&row, &"delete".into(), &true.into()),
            }
            .map_err(|_| Error::Internal("set row".into()))?;
            rows.push(&row);
        }
        Ok(rows)
    })();
    rows.map_err(|e| error::to_js(&e))
}

/// The wasm linear memory marks recorded since the last call (see `log::memory_marks`), as
/// `[[label, bytes], ...]`: where a commit's peak comes from.
#[wasm_bindgen(js_name = memoryMarks)]
pub fn memory_marks() -> Array {
    crate::log::memory_marks::take()
        .into_iter()
        .map(|(label, bytes)| JsValue::from(Array::of2(&label.into(), &(bytes as f64).into())))
        .collect()
}

/// `load` of the database `name` in its phases, each timed: connect (IndexedDB open only: no writer
/// lock, no schema gate), read (one readonly transaction, getAllKeys + getAll per area store, rows
/// copied into wasm), decode (envelope, bincode, key checks, grouping per wallet) and toJs (the
/// result objects `load` resolves). Resolves `{ openMs, readMs, decodeMs, toJsMs, rows, skipped }`.
#[wasm_bindgen(js_name = benchLoadPhases)]
pub async fn bench_load_phases(name: String) -> Result<JsValue, JsValue> {
    let phases = async {
        let t0 = performance_now();
        let backend = IndexedDbBackend::open(&name).await?;
        let t1 = performance_now();
        let reads = backend.read(AREA_STORES).await?;
        let t2 = performance_now();
        let mut wallets = std::collections::BTreeMap::new();
        let (mut rows, mut skipped) = (0u32, 0u32);
        for read in reads {
            let read = read?;
            skipped += read.unreadable.len() as u32;
            for row in read.rows {
                match WalletChangeSet::load_row(&mut wallets, read.store, &row.key, &row.value, MAX_BLOB_BYTES) {
                    Ok(()) => rows += 1,
                    Err(_) => skipped += 1,
                }
            }
        }
        let t3 = performance_now();
        let js = wallets_to_js(wallets)?;
        let t4 = performance_now();
        backend.close();
        drop(js);
        let out = Object::new();
        let _ = Reflect::set(&out, &"openMs".into(), &(t1 - t0).into());
        let _ = Reflect::set(&out, &"readMs".into(), &(t2 - t1).into());
        let _ = Reflect::set(&out, &"decodeMs".into(), &(t3 - t2).into());
        let _ = Reflect::set(&out, &"toJsMs".into(), &(t4 - t3).into());
        let _ = Reflect::set(&out, &"rows".into(), &rows.into());
        let _ = Reflect::set(&out, &"skipped".into(), &skipped.into());
        Ok::<JsValue, Error>(out.into())
    };
    phases.await.map_err(|e| error::to_js(&e))
}

/// The codec micro-benchmark: `count` full changesets, each encoded and decoded whole by one of
/// three codecs. Every method does all of them and returns a byte count (so nothing is optimised
/// away); the page times the calls.
#[wasm_bindgen]
pub struct CodecBench {
    changesets: Vec<(WalletId, WalletChangeSet)>,
    bincode: Vec<Vec<u8>>,
    js: Vec<JsValue>,
    json: Vec<Vec<u8>>,
}

#[wasm_bindgen]
impl CodecBench {
    #[wasm_bindgen(constructor)]
    pub fn new(count: u32, seed: u32) -> CodecBench {
        let changesets = (0..count)
            .map(|n| {
                let wallet = bench_wallet(n);
                (wallet, full(wallet, n, &mut Rng::new(u64::from(seed) << 32 | u64::from(n))))
            })
            .collect();
        CodecBench { changesets, bincode: Vec::new(), js: Vec::new(), json: Vec::new() }
    }

    /// Our codec: the versioned envelope around bincode.
    #[wasm_bindgen(js_name = bincodeEncode)]
    pub fn bincode_encode(&mut self) -> Result<f64, JsValue> {
        self.bincode = self
            .changesets
            .iter()
            .map(|cs| codec::encode_payload(cs, MAX_BLOB_BYTES))
            .collect::<Result<_>>()
            .map_err(|e| error::to_js(&e))?;
        Ok(self.bincode.iter().map(Vec::len).sum::<usize>() as f64)
    }

    #[wasm_bindgen(js_name = bincodeDecode)]
    pub fn bincode_decode(&self) -> Result<f64, JsValue> {
        let mut fields = 0;
        for bytes in &self.bincode {
            let (_, cs): (WalletId, WalletChangeSet) =
                codec::decode_payload(bytes, MAX_BLOB_BYTES).map_err(|e| error::to_js(&e))?;
            fields += cs.field_count();
        }
        Ok(fields as f64)
    }

    /// serde-wasm-bindgen to JS objects (u64 as bigint, bytes as Uint8Array), as `load` returns them.
    #[wasm_bindgen(js_name = swbEncode)]
    pub fn swb_encode(&mut self) -> Result<f64, JsValue> {
        self.js =
            self.changesets.iter().map(|(_, cs)| to_js(cs)).collect::<Result<_>>().map_err(|e| error::to_js(&e))?;
        Ok(self.js.len() as f64)
    }

    #[wasm_bindgen(js_name = swbDecode)]
    pub fn swb_decode(&self) -> Result<f64, JsValue> {
        let mut fields = 0;
        for value in &self.js {
            // serde-wasm-bindgen itself (the contender measured here), on values we built.
            let cs: WalletChangeSet = serde_wasm_bindgen::from_value(value.clone())
                .map_err(|e| error::to_js(&Error::InvalidArgument(e.to_string())))?;
            fields += cs.field_count();
        }
        Ok(fields as f64)
    }

    /// serde_json to UTF-8 bytes inside wasm.
    #[wasm_bindgen(js_name = jsonEncode)]
    pub fn json_encode(&mut self) -> Result<f64, JsValue> {
        self.json = self
            .changesets
            .iter()
            .map(serde_json::to_vec)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| error::to_js(&Error::Internal(e.to_string())))?;
        Ok(self.json.iter().map(Vec::len).sum::<usize>() as f64)
    }

    #[wasm_bindgen(js_name = jsonDecode)]
    pub fn json_decode(&self) -> Result<f64, JsValue> {
        let mut fields = 0;
        for bytes in &self.json {
            let (_, cs): (WalletId, WalletChangeSet) =
                serde_json::from_slice(bytes).map_err(|e| error::to_js(&Error::Internal(e.to_string())))?;
            fields += cs.field_count();
        }
        Ok(fields as f64)
    }
}

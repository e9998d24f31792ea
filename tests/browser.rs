//! Browser tests: the conformance suite and the JS API against real IndexedDB in headless Chromium.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, BigInt, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

use std::rc::Rc;
use wallet_persist::backend::indexeddb::IndexedDbBackend;

use wallet_persist::backend::{Backend, EncryptedBackend, Row};
use wallet_persist::crypto::Cipher;
use wallet_persist::js::WalletStore;
use wallet_persist::testing::{self, Harness};

wasm_bindgen_test_configure!(run_in_browser);

/// A database name no other test uses.
fn unique(name: &str) -> String {
    format!("wp-test-{name}-{}-{}", js_sys::Date::now() as u64, (js_sys::Math::random() * 1e9) as u64)
}

struct Idb(String);

impl Harness for Idb {
    type B = IndexedDbBackend;
    async fn open(&self) -> IndexedDbBackend {
        IndexedDbBackend::open(&self.0).await.expect("open IndexedDB")
    }
    async fn open_other(&self) -> IndexedDbBackend {
        IndexedDbBackend::open(&format!("{}-other", self.0)).await.expect("open IndexedDB")
    }
}

fn idb(name: &str) -> Idb {
    Idb(unique(name))
}

mod conformance_indexeddb {
    use super::idb;
    use wasm_bindgen_test::wasm_bindgen_test;
    wallet_persist::conformance_tests!(async, wasm_bindgen_test, idb);
}

/// IndexedDB read one row per request: every row is the first and the last of its chunk.
struct ChunkedIdb(String, u32);

impl Harness for ChunkedIdb {
    type B = IndexedDbBackend;
    async fn open(&self) -> IndexedDbBackend {
        let backend = IndexedDbBackend::open(&self.0).await.expect("open IndexedDB");
        backend.set_read_chunk_rows(self.1);
        backend
    }
    async fn open_other(&self) -> IndexedDbBackend {
        let backend = IndexedDbBackend::open(&format!("{}-other", self.0)).await.expect("open IndexedDB");
        backend.set_read_chunk_rows(self.1);
        backend
    }
}

fn chunk_1_idb(name: &str) -> ChunkedIdb {
    ChunkedIdb(unique(&format!("chunk-1-{name}")), 1)
}

/// The reads whose rows cross chunk boundaries, at one row per chunk.
mod conformance_indexeddb_chunk_1 {
    use super::chunk_1_idb;
    use wasm_bindgen_test::wasm_bindgen_test;
    wallet_persist::conformance_tests!(@one async, wasm_bindgen_test, chunk_1_idb,
        round_trip_every_area_with_tombstones,
        corrupt_rows_are_skipped_and_reported,
        failed_bulk_read_falls_back_to_row_by_row,
        load_of_chosen_wallets_returns_exactly_them,
        list_wallets_returns_the_records_load_returns,
        delete_wallet_removes_every_row,
        lost_connection_reconnects_once,
        backup_round_trip_and_refusals,
        channel_state_survives_restarts_exactly,
    );
}

/// Many wallets whose rows straddle chunk and piece boundaries, with corrupt rows among them, load
/// exactly as written after a reopen at every chunk and piece size, with the report of one request
/// per store.
#[wasm_bindgen_test]
async fn chunked_load_sees_exactly_what_was_written() {
    use wallet_persist::backend::{WriteBatch, WriteOp};
    use wallet_persist::model::KeyPart;
    let name = unique("chunked-load");
    let wallets: Vec<u8> = (1..=40).collect();
    {
        let persister =
            wallet_persist::Persister::open(IndexedDbBackend::open(&name).await.unwrap(), Default::default())
                .await
                .expect("open");
        for &n in &wallets {
            persister.store(testing::wallet_id(n), testing::sample_changeset(n)).await.unwrap();
        }
        persister.commit().await.unwrap();
        // Corrupt rows whose keys hold a NUL, a surrogate pair and the packing's own separators.
        let key = |n: u8, k: &str| {
            vec![KeyPart::Text(testing::wallet_id(n).to_hex()), KeyPart::Text("app".into()), KeyPart::Text(k.into())]
        };
        let garbage = |n: u8, k: &str| WriteOp::Put { store: "records", key: key(n, k), value: vec![n, 2, 3] };
        // Wallet 30 loses its record: every other row of it is an orphan, mid-way through each store.
        let record = WriteOp::Delete { store: "wallets", key: vec![KeyPart::Text(testing::wallet_id(30).to_hex())] };
        let raw = WriteBatch::new(vec![
            garbage(1, "\u{0}first"),
            garbage(20, "mid-\u{1F600}|s3:x;"),
            garbage(40, "zz-last"),
            record,
        ]);
        persister.backend().write(&raw).await.unwrap();
        persister.close().await.unwrap();
    }
    let mut first = None;
    let default_piece = wallet_persist::backend::indexeddb::DEFAULT_READ_PIECE_ROWS;
    for (chunk, piece) in [(u32::MAX, default_piece), (u32::MAX, 7), (1, 1), (2, 1), (3, 2), (7, 3), (64, 5)] {
        let backend = IndexedDbBackend::open(&name).await.unwrap();
        backend.set_read_chunk_rows(chunk);
        backend.set_read_piece_rows(piece);
        let persister = wallet_persist::Persister::open(backend, Default::default()).await.expect("open");
        let (state, report) = persister.load().await.unwrap();
        assert_eq!(state.wallets.len(), wallets.len() - 1, "chunk {chunk} piece {piece}");
        assert!(
            !state.wallets.contains_key(&testing::wallet_id(30)),
            "chunk {chunk} piece {piece}: the orphaned wallet loaded"
        );
        for &n in wallets.iter().filter(|n| **n != 30) {
            assert_eq!(
                state.wallets[&testing::wallet_id(n)],
                testing::sample_changeset(n),
                "chunk {chunk} piece {piece}, wallet {n}"
            );
        }
        let skipped: Vec<(&str, String, u16)> =
            report.skipped.iter().map(|s| (s.store, s.key.clone(), s.code)).collect();
        let at = |n: u8, k: &str| format!("[\"{}\",\"app\",\"{k}\"]", testing::wallet_id(n).to_hex());
        let mut expected = vec![
            ("records", at(1, "\\0first"), 11),
            ("records", at(20, "mid-\u{1F600}|s3:x;"), 11),
            ("records", at(40, "zz-last"), 11),
        ];
        let orphans = wallet_persist::wallets::rows::changeset_ops(
            &testing::wallet_id(30),
            &testing::sample_changeset(30),
            usize::MAX,
        )
        .unwrap();
        for op in orphans.iter().filter(|op| op.store() != "wallets") {
            let WriteOp::Put { store, key, .. } = op else { panic!("{op:?}") };
            expected.push((store, wallet_persist::model::key_to_string(key), 22));
        }
        expected.sort();
        let mut skipped = skipped;
        skipped.sort();
        assert_eq!(skipped, expected, "chunk {chunk} piece {piece}");
        let (one, one_report) = persister.load_wallets(&[testing::wallet_id(20)].into()).await.unwrap();
        assert_eq!(one.wallets[&testing::wallet_id(20)], testing::sample_changeset(20), "chunk {chunk} piece {piece}");
        assert_eq!(one_report.skipped.len(), 1, "chunk {chunk} piece {piece}");
        match &first {
            None => first = Some((state, report)),
            Some(expected) => assert_eq!(&(state, report), expected, "chunk {chunk} piece {piece}"),
        }
        persister.close().await.unwrap();
    }
    IndexedDbBackend::delete(&name).await.unwrap();
}

/// The same databases through the encrypting backend: every row sealed, every key hashed.
struct SealedIdb(String, Rc<Cipher>, Rc<Cipher>);

impl Harness for SealedIdb {
    type B = EncryptedBackend<IndexedDbBackend>;
    async fn open(&self) -> Self::B {
        let backend = EncryptedBackend::new(IndexedDbBackend::open(&self.0).await.expect("open IndexedDB"));
        backend.set_cipher(Some(self.1.clone()));
        backend
    }
    async fn open_other(&self) -> Self::B {
        let other = format!("{}-other", self.0);
        let backend = EncryptedBackend::new(IndexedDbBackend::open(&other).await.expect("open IndexedDB"));
        backend.set_cipher(Some(self.2.clone()));
        backend
    }
}

fn sealed_idb(name: &str) -> SealedIdb {
    let cipher = || Rc::new(Cipher::new(&wallet_persist::crypto::ops::random_key().expect("randomness")));
    SealedIdb(unique(&format!("sealed-{name}")), cipher(), cipher())
}

mod conformance_encrypted_indexeddb {
    use super::sealed_idb;
    use wasm_bindgen_test::wasm_bindgen_test;
    wallet_persist::conformance_tests!(async, wasm_bindgen_test, sealed_idb);
}

#[wasm_bindgen_test]
async fn wallet_rows_are_keyed_wallet_first_in_indexeddb() {
    let h = idb("layout");
    let db = h.open().await;
    let persister = wallet_persist::Persister::open(db, Default::default()).await.expect("open");
    persister.store(testing::wallet_id(1), testing::sample_changeset(1)).await.unwrap();
    persister.flush().await.unwrap();
    let rows = persister.backend().read(&["utxos"]).await.unwrap();
    let Row { key, value } = rows[0].as_ref().unwrap().rows[0].clone();
    assert_eq!(key.len(), 3, "[walletIdHex, txidHex, vout]");
    assert_eq!(&value[0..4], b"WPST");
    persister.close().await.unwrap();
}

// ---- The JS surface -------------------------------------------------------------------------

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

async fn open_store(name: &str) -> WalletStore {
    WalletStore::open_from_rust(obj(&[("name", name.into())])).await.expect("open")
}

async fn reject(promise: Promise) -> JsValue {
    JsFuture::from(promise).await.expect_err("must reject")
}

fn field(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &key.into()).unwrap()
}

fn assert_code(error: &JsValue, code: u32, kind: &str, retryable: bool) {
    assert_eq!(field(error, "name").as_string().as_deref(), Some("WalletPersistError"));
    assert_eq!(field(error, "code").as_f64(), Some(f64::from(code)), "{:?}", field(error, "message"));
    assert_eq!(field(error, "kind").as_string().as_deref(), Some(kind));
    assert_eq!(field(error, "retryable").as_bool(), Some(retryable));
    assert!(error.is_instance_of::<js_sys::Error>());
}

const WALLET: &str = "ababababababababababababababababababababababababababababababab01";

fn utxo(value: JsValue) -> JsValue {
    let outpoint = format!("{}:0", "11".repeat(32));
    let entry = obj(&[
        ("outpoint", outpoint.clone().into()),
        ("value", value),
        ("script", Uint8Array::from(&[0x51u8][..]).into()),
        ("height", JsValue::NULL),
        ("account", 0.into()),
    ]);
    // With the wallet record: a UTXO without it is an orphan row (22).
    let wallet = obj(&[
        ("network", "testnet".into()),
        ("label", "browser".into()),
        ("birthHeight", 0.into()),
        ("createdAtMs", 0.into()),
        ("accountSchema", 1.into()),
    ]);
    obj(&[("wallet", wallet), ("utxos", obj(&[(outpoint.as_str(), entry)]))])
}

#[wasm_bindgen_test]
async fn js_bad_input_rejects_invalid_argument_and_stages_nothing() {
    let store = open_store(&unique("js-bad-input")).await;
    let cases: Vec<(JsValue, JsValue)> = vec![
        (JsValue::from(42), utxo(BigInt::from(5u32).into())),
        ("not-hex".into(), utxo(BigInt::from(5u32).into())),
        (WALLET.to_uppercase().into(), utxo(BigInt::from(5u32).into())),
        (WALLET.into(), JsValue::from("changes")),
        (WALLET.into(), JsValue::NULL),
        (WALLET.into(), utxo(BigInt::new(&"18446744073709551616".into()).unwrap().into())),
        (WALLET.into(), utxo(JsValue::from(-1))),
        (WALLET.into(), utxo(JsValue::from(2f64.powi(60)))),
        (WALLET.into(), utxo("5000".into())),
        (WALLET.into(), obj(&[("unknownArea", Object::new().into())])),
        (WALLET.into(), obj(&[("wallet", obj(&[("netwrok", "testnet".into())]))])),
        (WALLET.into(), {
            let cs = utxo(BigInt::from(5u32).into());
            let entry = Object::values(field(&cs, "utxos").unchecked_ref::<Object>()).get(0);
            Reflect::set(&entry, &"heigth".into(), &7.into()).unwrap();
            cs
        }),
        (WALLET.into(), Array::new().into()),
    ];
    for (i, (wallet, changes)) in cases.into_iter().enumerate() {
        let error =
            JsFuture::from(store.store(wallet.clone(), changes)).await.expect_err(&format!("case {i} must reject"));
        assert_code(&error, 1, "invalid_argument", false);
    }
    let staged: Array = JsFuture::from(store.staged()).await.unwrap().unchecked_into();
    assert_eq!(staged.length(), 0, "nothing may be staged");

    // The largest u64 is accepted, crosses back as a BigInt, exactly.
    let max = BigInt::new(&"18446744073709551615".into()).unwrap();
    JsFuture::from(store.store(WALLET.into(), utxo(max.clone().into()))).await.unwrap();
    JsFuture::from(store.flush()).await.unwrap();
    let loaded = JsFuture::from(store.load(JsValue::UNDEFINED)).await.unwrap();
    let utxos = field(&field(&field(&loaded, "wallets"), WALLET), "utxos");
    let entry = field(&utxos, &format!("{}:0", "11".repeat(32)));
    let value = field(&entry, "value");
    assert!(value.is_bigint());
    assert_eq!(BigInt::from(value).to_string(10).unwrap(), "18446744073709551615");

    // An entry whose value is `undefined` (a failed lookup) is refused; only `null` deletes.
    let outpoint = format!("{}:0", "11".repeat(32));
    let missing = obj(&[("utxos", obj(&[(outpoint.as_str(), JsValue::UNDEFINED)]))]);
    let error = reject(store.store(WALLET.into(), missing)).await;
    assert_code(&error, 1, "invalid_argument", false);
    let message = field(&error, "message").as_string().unwrap();
    assert!(message.contains(&outpoint) && message.contains("null to delete"), "{message}");
    let staged: Array = JsFuture::from(store.staged()).await.unwrap().unchecked_into();
    assert_eq!(staged.length(), 0, "the refused undefined stages nothing");
    JsFuture::from(store.flush()).await.unwrap();
    let loaded = JsFuture::from(store.load(JsValue::UNDEFINED)).await.unwrap();
    let utxos = field(&field(&field(&loaded, "wallets"), WALLET), "utxos");
    assert!(!field(&utxos, &outpoint).is_undefined(), "the UTXO is still on disk");

    JsFuture::from(store.close(JsValue::UNDEFINED)).await.unwrap();
    let error = reject(store.commit()).await;
    assert_code(&error, 20, "closed", false);
}

#[wasm_bindgen_test]
async fn js_transient_flush_failure_rejects_flush_retryable_naming_wallets() {
    let name = unique("js-transient");
    let store = open_store(&name).await;
    JsFuture::from(store.store(WALLET.into(), utxo(BigInt::from(7u32).into()))).await.unwrap();
    JsFuture::from(store.fail_next("write".into(), 1, "quota_exceeded".into())).await.unwrap();
    let error = reject(store.flush()).await;
    assert_code(&error, 4, "flush_retryable", true);
    let wallets: Array = field(&error, "walletIds").unchecked_into();
    assert_eq!(wallets.to_vec(), vec![JsValue::from(WALLET)]);
    assert_eq!(field(&field(&field(&error, "detail"), "cause"), "code").as_f64(), Some(5.0));
    JsFuture::from(store.flush()).await.unwrap();
    JsFuture::from(store.close(JsValue::UNDEFINED)).await.unwrap();

    let reopened = open_store(&name).await;
    let loaded = JsFuture::from(reopened.load(JsValue::UNDEFINED)).await.unwrap();
    let report = field(&loaded, "report");
    assert_eq!(field(&field(&report, "rows"), "utxos").as_f64(), Some(1.0));
    assert_eq!(field(&report, "wallets").as_f64(), Some(1.0));
    JsFuture::from(reopened.close(JsValue::UNDEFINED)).await.unwrap();
}

/// A JS value built by `source` (a function body), e.g. a Proxy whose traps throw.
fn js(source: &str) -> JsValue {
    js_sys::Function::new_no_args(source).call0(&JsValue::UNDEFINED).unwrap()
}

fn keys(value: &JsValue) -> Vec<String> {
    Object::keys(value.unchecked_ref::<Object>()).iter().map(|k| k.as_string().unwrap()).collect()
}

fn strings(value: &JsValue) -> Vec<String> {
    value.unchecked_ref::<Array>().iter().map(|k| k.as_string().unwrap()).collect()
}

/// Every refusal of the value reader: the path of the refused value, the reason, and the caller's
/// exception as `cause` when one was thrown; nothing is staged.
#[wasm_bindgen_test]
async fn js_refused_values_name_path_reason_and_cause() {
    let store = open_store(&unique("js-refusals")).await;
    let cases: [(&str, &str); 17] = [
        ("({ utxos: { ['a\\uD800']: 1 } })", "changes.utxos: a key: the string is not well-formed UTF-16 (it has a lone surrogate)"),
        ("({ wallet: { label: 'a\\uDC00' } })", "changes.wallet.label: the string is not well-formed UTF-16 (it has a lone surrogate)"),
        ("({ wallet: { label: 'x'.repeat(65 << 20) } })", "changes.wallet.label: the value is larger than 64 MiB"),
        ("({ utxos: { [`k${'x'.repeat(65 << 20)}`]: 1 } })", "changes.utxos: a key: the value is larger than 64 MiB"),
        ("({ wallet: { label: Symbol('s') } })", "changes.wallet.label: a symbol cannot be stored"),
        ("({ utxos: new Map() })", "changes.utxos: a Map is not accepted here: use a plain object, an array, a Uint8Array or a primitive"),
        ("({ utxos: new Uint16Array(2) })", "changes.utxos: a Uint16Array is not accepted here"),
        ("(() => { let v = {}; for (let i = 0; i < 70; i++) v = { v }; return { utxos: v }; })()",
         "changes.utxos.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v: nested deeper than 64 levels (or cyclic)"),
        ("({ [Symbol('k')]: 1 })", "changes: a symbol key cannot be stored"),
        ("({ wallet: { get label() { throw new Error('getter says no'); } } })", "changes.wallet.label: reading it threw"),
        ("({ records: [1, , 2] })", "changes.records: an array with holes, named properties or symbol keys cannot be stored"),
        ("({ records: [1, Symbol('s')] })", "changes.records[1]: a symbol cannot be stored"),
        ("({ wallet: { createdAtMs: 2n ** 130n } })", "changes.wallet.createdAtMs: the bigint 1361129467683753853853498429727072845824 is out of every accepted range"),
        ("({ utxos: { 'a b': { value: Symbol('s') } } })", "changes.utxos[\"a b\"].value: a symbol cannot be stored"),
        ("(() => { const p = Proxy.revocable({}, {}); p.revoke(); return { utxos: p.proxy }; })()", "changes.utxos: the object could not be inspected"),
        ("({ utxos: new Proxy({}, { ownKeys() { throw new Error('trap says no'); } }) })", "changes.utxos: its keys could not be read"),
        ("({ records: new Proxy([], { get() { throw new Error('trap says no'); } }) })", "changes.records: its length could not be read"),
    ];
    for (source, expected) in cases {
        let error = reject(store.store(WALLET.into(), js(&format!("return {source};")))).await;
        assert_code(&error, 1, "invalid_argument", false);
        let message = field(&error, "message").as_string().unwrap();
        assert!(message.contains(expected), "{source}: {message}");
        let cause = field(&error, "cause");
        match expected.split(": ").nth(1) {
            Some("reading it threw") => {
                assert_eq!(field(&cause, "message").as_string().as_deref(), Some("getter says no"))
            }
            Some("its keys could not be read" | "its length could not be read") => {
                assert_eq!(field(&cause, "message").as_string().as_deref(), Some("trap says no"))
            }
            Some("the object could not be inspected") => assert!(cause.is_instance_of::<js_sys::TypeError>()),
            _ => assert!(cause.is_undefined(), "{source}: no cause"),
        }
    }
    let staged: Array = JsFuture::from(store.staged()).await.unwrap().unchecked_into();
    assert_eq!(staged.length(), 0, "nothing may be staged");
    JsFuture::from(store.close(JsValue::UNDEFINED)).await.unwrap();
}

/// Which refusal wins when a changeset has several faults: a bigint outside every range first
/// (wherever it is), then a changeset that is not an object or has a `null` singleton, then the
/// first bad value in property order. Valid input with `undefined` fields still stages.
#[wasm_bindgen_test]
async fn js_changes_with_several_faults_name_the_same_one_every_time() {
    let store = open_store(&unique("js-fault-order")).await;
    let big = "1361129467683753853853498429727072845824";
    let cases = [
        (
            "({ wallet: { label: 5, createdAtMs: 2n ** 130n } })",
            format!("changes.wallet.createdAtMs: the bigint {big} is"),
        ),
        (
            "({ utxos: 5, wallet: { createdAtMs: 2n ** 130n } })",
            format!("changes.wallet.createdAtMs: the bigint {big} is"),
        ),
        (
            "({ wallet: null, records: { k: { value: -(2n ** 130n) } } })",
            format!("changes.records.k.value: the bigint -{big} is"),
        ),
        ("([1, 2n ** 130n])", format!("changes[1]: the bigint {big} is")),
        ("({ utxos: 5, syncState: null, wallet: null })", "wallet cannot be null".to_string()),
        ("({ utxos: 5, syncState: null })", "syncState cannot be null".to_string()),
        ("({ utxos: { k: 1 }, records: 5 })", "changes.utxos: ".to_string()),
        (
            "({ wallet: { label: 5, network: 7 } })",
            "changes.wallet.label: expected a string, got the number 5".to_string(),
        ),
        (
            "({ records: { 'app:k': undefined } })",
            "changes.records[\"app:k\"]: expected a value, or null to delete the entry, got undefined".to_string(),
        ),
    ];
    for (source, expected) in cases {
        let error = reject(store.store(WALLET.into(), js(&format!("return {source};")))).await;
        assert_code(&error, 1, "invalid_argument", false);
        let message = field(&error, "message").as_string().unwrap();
        assert!(message.contains(&expected), "{source}: {message}");
    }
    let staged: Array = JsFuture::from(store.staged()).await.unwrap().unchecked_into();
    assert_eq!(staged.length(), 0, "nothing may be staged");
    let absent = js("return { wallet: { network: 'testnet', label: undefined, birthHeight: 1, createdAtMs: 5n, \
        accountSchema: 1 }, records: { 'app:k': { namespace: 'app', key: 'k', value: new Uint8Array([6]) } } };");
    let error = reject(store.store(WALLET.into(), absent)).await;
    assert!(field(&error, "message").as_string().unwrap().contains("changes.wallet: missing field `label`"));
    let valid = js("return { wallet: { network: 'testnet', label: 'x', birthHeight: 1, createdAtMs: 5n, \
        accountSchema: 1, walletId: undefined }, records: { 'app:k': { namespace: 'app', key: 'k', value: new Uint8Array([6]) } } };");
    JsFuture::from(store.store(WALLET.into(), valid)).await.unwrap();
    let staged: Array = JsFuture::from(store.staged()).await.unwrap().unchecked_into();
    assert_eq!(staged.length(), 1, "the valid changes are staged");
    JsFuture::from(store.close(JsValue::UNDEFINED)).await.unwrap();
}

#[wasm_bindgen_test]
async fn js_load_of_chosen_wallets_refuses_bad_ids_and_returns_exactly_them() {
    let name = unique("js-load-some");
    let store = open_store(&name).await;
    let other = WALLET.replace("ab01", "ab02");
    let unknown = WALLET.replace("ab01", "ab03");
    for wallet in [WALLET, other.as_str()] {
        let changes = utxo(BigInt::from(9u32).into());
        Reflect::set(&field(&changes, "wallet"), &"label".into(), &wallet.into()).unwrap();
        JsFuture::from(store.store(wallet.into(), changes)).await.unwrap();
    }
    JsFuture::from(store.flush()).await.unwrap();
    JsFuture::from(store.close(JsValue::UNDEFINED)).await.unwrap();
    let store = open_store(&name).await;
    let reads = || async { field(&JsFuture::from(store.backend_calls()).await.unwrap(), "read").as_f64().unwrap() };
    let before = reads().await;
    let ids = |items: &[JsValue]| obj(&[("walletIds", items.iter().collect::<Array>().into())]);
    let bad = [
        JsValue::from(3),
        "all".into(),
        Array::new().into(),
        obj(&[("walletIds", WALLET.into())]),
        obj(&[("walletIds", JsValue::NULL)]),
        obj(&[("walletIds", Array::new().into()), ("walletId", WALLET.into())]),
        ids(&[42.into()]),
        ids(&[WALLET.to_uppercase().into()]),
        ids(&[format!("{WALLET}00").into()]),
        ids(&[WALLET.into(), other.clone().into(), WALLET.into()]),
        obj(&[("walletIds", Array::new_with_length(1).into())]),
        js("return { get walletIds() { throw new Error('getter'); } }"),
        js("return new Proxy({}, { ownKeys() { throw new Error('trap'); } })"),
        js(&format!("return {{ walletIds: new Proxy(['{WALLET}'], {{ get() {{ throw new Error('trap'); }} }}) }}")),
        js("const p = Proxy.revocable({}, {}); p.revoke(); return { walletIds: [p.proxy] };"),
    ];
    for (i, options) in bad.into_iter().enumerate() {
        let error = JsFuture::from(store.load(options)).await.expect_err(&format!("case {i} must reject"));
        assert_code(&error, 1, "invalid_argument", false);
    }
    assert_eq!(reads().await, before, "a refused load reads nothing");

    let loaded = JsFuture::from(store.load(ids(&[other.clone().into()]))).await.unwrap();
    assert_eq!(keys(&field(&loaded, "wallets")), vec![other.clone()]);
    let record = field(&field(&field(&loaded, "wallets"), &other), "wallet");
    assert_eq!(field(&record, "walletId").as_string(), Some(other.clone()));
    assert_eq!(field(&record, "label").as_string(), Some(other.clone()));
    assert_eq!(strings(&field(&field(&loaded, "report"), "notFound")), Vec::<String>::new());
    assert_eq!(reads().await, before + 1.0, "one bulk read");

    let loaded = JsFuture::from(store.load(ids(&[unknown.clone().into(), WALLET.into()]))).await.unwrap();
    assert_eq!(keys(&field(&loaded, "wallets")), vec![WALLET.to_string()]);
    assert_eq!(strings(&field(&field(&loaded, "report"), "notFound")), vec![unknown.clone()]);
    let none = JsFuture::from(store.load(ids(&[]))).await.unwrap();
    assert_eq!(keys(&field(&none, "wallets")), Vec::<String>::new());

    for every in [JsValue::UNDEFINED, JsValue::NULL, Object::new().into(), obj(&[("walletIds", JsValue::UNDEFINED)])] {
        let loaded = JsFuture::from(store.load(every)).await.unwrap();
        assert_eq!(keys(&field(&loaded, "wallets")), vec![WALLET.to_string(), other.clone()]);
        assert!(!Reflect::has(&field(&loaded, "report"), &"notFound".into()).unwrap(), "load() reports as before");
    }

    let list = JsFuture::from(store.list_wallets()).await.unwrap();
    let records: Array = field(&list, "wallets").unchecked_into();
    let listed: Vec<String> = records.iter().map(|r| field(&r, "walletId").as_string().unwrap()).collect();
    assert_eq!(listed, vec![WALLET.to_string(), other.clone()]);
    assert!(field(&records.get(0), "createdAtMs").is_bigint());
    assert_eq!(field(&list, "skipped").unchecked_into::<Array>().length(), 0);
    JsFuture::from(store.close(JsValue::UNDEFINED)).await.unwrap();
    assert_code(&reject(store.load(ids(&[WALLET.into()]))).await, 20, "closed", false);
    assert_code(&reject(store.list_wallets()).await, 20, "closed", false);
}

#[wasm_bindgen_test]
async fn js_open_refuses_bad_options() {
    for options in
        [JsValue::from(3), obj(&[("name", "".into())]), obj(&[("name", "x".into()), ("flushMode", "sometimes".into())])]
    {
        let error = reject(WalletStore::open(options)).await;
        assert_code(&error, 1, "invalid_argument", false);
    }
}

// ---- A write issued in chunks, in one transaction ------------------------------------------------

use wallet_persist::backend::{ChunkSize, WriteBatch};
use wallet_persist::layout::AREA_STORES;
use wallet_persist::model::{ClientStartState, WalletId};
use wallet_persist::Persister;

/// Three wallets' sample changesets (parents included): dozens of requests.
fn three_wallets() -> Vec<(WalletId, wallet_persist::model::WalletChangeSet)> {
    (1..=3).map(|seed| (testing::wallet_id(seed), testing::sample_changeset(seed))).collect()
}

/// Every row of the wallet stores, as stored.
async fn rows_on_disk(backend: &IndexedDbBackend) -> usize {
    let reads = backend.read(AREA_STORES).await.expect("read");
    reads.into_iter().map(|rows| rows.expect("bulk read").rows.len()).sum()
}

async fn load_fresh(h: &Idb) -> ClientStartState {
    let persister = Persister::open(h.open().await, Default::default()).await.expect("open");
    let (state, report) = persister.load().await.expect("load");
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    persister.close().await.expect("close");
    state
}

/// A fresh connection loads exactly the wallets of `three_wallets()`.
async fn assert_holds_exactly_three_wallets(h: &Idb) {
    assert_eq!(load_fresh(h).await.wallets, three_wallets().into_iter().collect());
}

#[wasm_bindgen_test]
async fn a_commit_issued_in_many_chunks_lands_every_row() {
    let h = idb("chunks-land");
    let backend = h.open().await;
    backend.set_chunk_size(ChunkSize { rows: 3, bytes: 1 << 20 });
    let persister = Persister::open(backend, Default::default()).await.expect("open");
    for (wallet, changes) in three_wallets() {
        persister.store(wallet, changes).await.unwrap();
    }
    let report = persister.commit().await.unwrap();
    assert_eq!(report.succeeded, three_wallets().into_iter().map(|(w, _)| w).collect::<Vec<_>>());
    let rows = rows_on_disk(persister.backend()).await;
    assert!(rows > 9 * 3, "{rows} rows: the commit must span more than nine chunks of three");
    persister.close().await.unwrap();

    assert_holds_exactly_three_wallets(&h).await;
}

#[wasm_bindgen_test]
async fn an_abort_in_a_middle_chunk_leaves_nothing_of_the_flush_and_restages_everything() {
    let h = idb("chunks-abort");
    let backend = h.open().await;
    backend.set_chunk_size(ChunkSize { rows: 2, bytes: 1 << 20 });
    let persister = Persister::open(backend, Default::default()).await.expect("open");
    for (wallet, changes) in three_wallets() {
        persister.store(wallet, changes).await.unwrap();
    }
    persister.backend().abort_next_write_at_chunk(3);
    let report = persister.commit().await.unwrap();
    assert!(report.succeeded.is_empty() && report.failed.is_empty(), "{report:?}");
    assert_eq!(report.still_pending, three_wallets().into_iter().map(|(w, _)| w).collect::<Vec<_>>());
    for (wallet, changes) in three_wallets() {
        assert_eq!(persister.staged_changes(&wallet), Some(changes));
    }
    assert_eq!(rows_on_disk(persister.backend()).await, 0, "the six rows of chunks 0-2 must not commit");
    // Another connection sees nothing of the flush either.
    assert!(load_fresh(&h).await.wallets.is_empty());

    // The retry lands everything.
    assert_eq!(persister.commit().await.unwrap().succeeded.len(), 3);
    persister.close().await.unwrap();
    assert_holds_exactly_three_wallets(&h).await;
}

/// `count` puts of 3 bytes into one wallet's records.
fn record_puts(count: u32) -> Vec<wallet_persist::backend::WriteOp> {
    (0..count)
        .map(|i| wallet_persist::backend::WriteOp::Put {
            store: "records",
            key: vec![
                wallet_persist::model::KeyPart::Text(testing::wallet_id(1).to_hex()),
                wallet_persist::model::KeyPart::Num(i),
            ],
            value: vec![1, 2, 3],
        })
        .collect()
}

#[wasm_bindgen_test]
async fn a_write_dropped_between_chunks_commits_nothing() {
    let h = idb("chunks-dropped");
    let backend = h.open().await;
    backend.set_chunk_size(ChunkSize { rows: 1, bytes: 1 << 20 });
    let batch = WriteBatch::new(record_puts(8));
    {
        // Polled once: the first chunk is issued, then the write waits for its request and is
        // dropped (as a deadline drops it).
        let write = backend.write(&batch);
        let mut write = std::pin::pin!(write);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(std::future::Future::poll(write.as_mut(), &mut cx).is_pending());
    }
    // A later transaction on the same connection runs after the dropped one settled.
    assert_eq!(rows_on_disk(&backend).await, 0, "a dropped write must abort, not commit its first chunk");
    backend.close();
}

/// A deadline measured by browser timers.
fn timer_deadline(ms: u32) -> wallet_persist::db::Deadline {
    let set_timeout: js_sys::Function =
        js("return (ms) => new Promise((resolve) => setTimeout(resolve, ms))").unchecked_into();
    wallet_persist::db::Deadline {
        ms,
        sleep: Rc::new(move |ms| {
            let timer: Promise = set_timeout.call1(&JsValue::NULL, &ms.into()).expect("setTimeout").unchecked_into();
            Box::pin(async move {
                let _ = JsFuture::from(timer).await;
            })
        }),
    }
}

/// A store whose writes go in chunks of 4 requests, bounded by `timeoutMs` = 400.
async fn slow_store(h: &Idb) -> Persister<IndexedDbBackend> {
    let backend = h.open().await;
    backend.set_chunk_size(ChunkSize { rows: 4, bytes: 1 << 20 });
    let options = wallet_persist::Options { deadline: Some(timer_deadline(400)), ..Default::default() };
    Persister::open(backend, options).await.expect("open")
}

/// Every chunk of the commit waits 150 ms (well inside the 400 ms deadline), the whole takes
/// several deadlines: it lands whole.
#[wasm_bindgen_test]
async fn a_commit_longer_than_the_deadline_lands_whole_while_its_chunks_progress() {
    let h = idb("slow-chunks-land");
    let persister = slow_store(&h).await;
    for (wallet, changes) in three_wallets() {
        persister.store(wallet, changes).await.unwrap();
    }
    persister.backend().slow_next_write(150, None);
    let started = js_sys::Date::now();
    let report = persister.commit().await.unwrap();
    let took = js_sys::Date::now() - started;
    assert_eq!(report.succeeded, three_wallets().into_iter().map(|(w, _)| w).collect::<Vec<_>>(), "{report:?}");
    assert!(took > 1_000.0, "more than nine chunks of 150 ms: {took} ms, over twice the deadline");
    assert!(persister.staged().is_empty());
    persister.close().await.unwrap();

    assert_holds_exactly_three_wallets(&h).await;
}

/// The commit stalls before its fourth chunk (its transaction kept active by reads): it times out
/// after the deadline without progress, nothing of it lands, everything stays staged and reported,
/// and the retry lands it all.
#[wasm_bindgen_test]
async fn a_commit_that_stalls_between_chunks_times_out_and_lands_nothing() {
    let h = idb("slow-chunks-stall");
    let persister = slow_store(&h).await;
    for (wallet, changes) in three_wallets() {
        persister.store(wallet, changes).await.unwrap();
    }
    persister.backend().slow_next_write(150, Some(3));
    let started = js_sys::Date::now();
    let report = persister.commit().await.unwrap();
    let took = js_sys::Date::now() - started;
    assert!(report.succeeded.is_empty() && report.failed.is_empty(), "{report:?}");
    assert_eq!(report.still_pending, three_wallets().into_iter().map(|(w, _)| w).collect::<Vec<_>>());
    assert_eq!(report.retry_cause.map(|cause| cause.code()), Some(18), "reported as a timeout");
    assert!(took >= 2.0 * 150.0 + 400.0, "three chunks, then a whole deadline without progress: {took} ms");
    for (wallet, changes) in three_wallets() {
        assert_eq!(persister.staged_changes(&wallet), Some(changes));
    }
    assert!(load_fresh(&h).await.wallets.is_empty(), "nothing of the stalled commit landed");

    assert_eq!(persister.commit().await.unwrap().succeeded.len(), 3, "the retry reconnects and lands");
    persister.close().await.unwrap();
    assert_holds_exactly_three_wallets(&h).await;
}

/// `encrypt` goes through the bounded path: its one write (many chunks) stalls, the call times
/// out, the transaction is aborted, and IndexedDB still holds exactly the plain database.
#[wasm_bindgen_test]
async fn a_stalled_encrypt_times_out_and_leaves_the_plain_database() {
    use wallet_persist::crypto::unlock::{self, Request};
    use wallet_persist::crypto::{KdfParams, Secret};
    let h = idb("encrypt-stall");
    let backend = h.open().await;
    backend.set_chunk_size(ChunkSize { rows: 4, bytes: 1 << 20 });
    let options = wallet_persist::Options { deadline: Some(timer_deadline(400)), ..Default::default() };
    let persister = Persister::open(EncryptedBackend::new(backend), options).await.expect("open");
    for (wallet, changes) in three_wallets() {
        persister.store(wallet, changes).await.unwrap();
    }
    persister.commit().await.unwrap();

    persister.backend().inner().slow_next_write(0, Some(2));
    let request = Request {
        secret: Secret::passphrase("pw".into()).unwrap(),
        params: KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 },
    };
    let mut progress = |_: &'static str, _: u64, _: u64| {};
    let work = unlock::encrypt(persister.db(), persister.backend(), &request, false, &mut progress);
    let error = persister.exclusive("encrypting", work).await.unwrap_err();
    assert_eq!((error.code(), error.is_transient()), (18, true), "{error:?}");
    assert!(!persister.backend().is_encrypted());
    // The next call reconnects and finds no key record: the store stays plain.
    let (state, _) = persister.load().await.unwrap();
    assert_eq!(state.wallets, three_wallets().into_iter().collect());
    assert!(!persister.backend().is_encrypted());
    persister.close().await.unwrap();
    assert_holds_exactly_three_wallets(&h).await;
}

/// The ops of a write, then one that cannot be made (as a value that fails to encode or seal).
struct FailsAtTheEnd(Vec<wallet_persist::backend::WriteOp>);

impl wallet_persist::backend::WriteSource for FailsAtTheEnd {
    fn stores(&self) -> Vec<&'static str> {
        vec!["records"]
    }
    fn strict(&self) -> bool {
        false
    }
    fn stream(&self) -> wallet_persist::backend::Ops<'_> {
        let fails = wallet_persist::Error::BlobTooLarge { len: 9, limit: 1 };
        Box::new(self.0.iter().map(|op| Ok(std::borrow::Cow::Borrowed(op))).chain([Err(fails)]))
    }
}

/// An op that cannot be made after three chunks were issued fails the write with its error, and
/// nothing of the write commits; the connection goes on working.
#[wasm_bindgen_test]
async fn an_op_failing_after_chunks_were_issued_commits_nothing() {
    let h = idb("chunks-op-fails");
    let backend = h.open().await;
    backend.set_chunk_size(ChunkSize { rows: 2, bytes: 1 << 20 });
    let error = backend.write_source(&FailsAtTheEnd(record_puts(6))).await.unwrap_err();
    assert!(matches!(error, wallet_persist::Error::BlobTooLarge { len: 9, limit: 1 }), "{error:?}");
    assert_eq!(rows_on_disk(&backend).await, 0, "the six rows of chunks 0-2 must not commit");
    backend.write(&WriteBatch::new(record_puts(6))).await.unwrap();
    assert_eq!(rows_on_disk(&backend).await, 6);
    backend.close();
}

/// Encrypted at rest, a commit in many chunks seals each chunk as it is issued: every row lands
/// sealed under a hashed key, and a reopen loads exactly what was committed.
#[wasm_bindgen_test]
async fn an_encrypted_commit_in_many_chunks_lands_every_row_sealed() {
    let h = sealed_idb("chunks-sealed");
    let backend = h.open().await;
    backend.inner().set_chunk_size(ChunkSize { rows: 3, bytes: 1 << 20 });
    let persister = Persister::open(backend, Default::default()).await.expect("open");
    for (wallet, changes) in three_wallets() {
        persister.store(wallet, changes).await.unwrap();
    }
    let report = persister.commit().await.unwrap();
    assert_eq!(report.succeeded, three_wallets().into_iter().map(|(w, _)| w).collect::<Vec<_>>());
    let rows = rows_on_disk(persister.backend().inner()).await;
    assert!(rows > 9 * 3, "{rows} rows: the commit must span more than nine chunks of three");
    let plain: Vec<String> = three_wallets().iter().map(|(wallet, _)| wallet.to_hex()).collect();
    for read in persister.backend().inner().read(AREA_STORES).await.unwrap() {
        for row in read.unwrap().rows {
            assert_eq!(row.value[4], wallet_persist::codec::FLAG_SEALED, "every row sealed");
            let first = match &row.key[0] {
                wallet_persist::model::KeyPart::Text(first) => first.clone(),
                other => panic!("{other:?}"),
            };
            assert!(!plain.contains(&first), "a plain wallet id on disk");
        }
    }
    persister.close().await.unwrap();

    let reopened = Persister::open(h.open().await, Default::default()).await.expect("open");
    let (state, report) = reopened.load().await.expect("load");
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(state.wallets.len(), 3);
    for (wallet, changes) in three_wallets() {
        assert_eq!(state.wallets[&wallet], changes);
    }
    reopened.close().await.unwrap();
}

// ---- The streaming load, adversarially ------------------------------------------------------

/// Puts `rows` (the JS source of an array of `[store, key, value]`) into the database `name` with
/// a connection of its own, closed after.
async fn put_raw_js(name: &str, rows: &str) {
    let body = format!(
        r#"return new Promise((resolve, reject) => {{
            const open = indexedDB.open(name);
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {{
                const db = open.result;
                const rows = {rows};
                const tx = db.transaction([...new Set(rows.map((row) => row[0]))], 'readwrite');
                for (const [store, key, value] of rows) tx.objectStore(store).put(value, key);
                tx.oncomplete = () => {{ db.close(); resolve(); }};
                tx.onabort = () => {{ db.close(); reject(tx.error); }};
            }};
        }});"#
    );
    let put = js_sys::Function::new_with_args("name", &body);
    let done: Promise = put.call1(&JsValue::UNDEFINED, &name.into()).unwrap().unchecked_into();
    JsFuture::from(done).await.expect("raw put");
}

/// Wallets 1..=`n` (sample changesets) written to a fresh database `name`.
async fn write_sample_wallets(name: &str, n: u8) {
    let persister = Persister::open(IndexedDbBackend::open(name).await.unwrap(), Default::default()).await.unwrap();
    for seed in 1..=n {
        persister.store(testing::wallet_id(seed), testing::sample_changeset(seed)).await.unwrap();
    }
    persister.commit().await.unwrap();
    persister.close().await.unwrap();
}

/// The chunk × piece sizes a load is read at: one request per store; one row per request and per
/// piece; and sizes that put boundaries at every phase of a wallet's rows.
const SIZES: [(u32, u32); 6] = [(u32::MAX, 1_000), (u32::MAX, 1), (1, 1), (2, 1), (3, 2), (7, 3)];

/// Rows whose stored key is not ours (a number, a Date, a string with the packing's separators,
/// an array holding an array, text with a lone surrogate) and rows whose key is ours but whose
/// value is not bytes or does not decode (keys of 1 to 4 parts repeating the same text at several
/// positions, non-BMP text with the separators), between good rows of one piece: at every chunk and
/// piece size the report names exactly them, each once, and every good row around them loads.
#[wasm_bindgen_test]
async fn foreign_keys_between_good_rows_are_reported_exactly_and_the_rows_around_them_load() {
    use wallet_persist::Error;
    let name = unique("foreign-keys");
    write_sample_wallets(&name, 4).await;
    let (h2, h3) = (testing::wallet_id(2).to_hex(), testing::wallet_id(3).to_hex());
    let v = "new Uint8Array([1, 2, 3])";
    put_raw_js(
        &name,
        &format!(
            r#"[
            ['records', 5, {v}],
            ['records', new Date(0), {v}],
            ['records', 'plain|s3:x;=', {v}],
            ['records', ['{h2}', ['nested']], {v}],
            ['records', ['{h2}', 'app', '\uD800lone'], {v}],
            ['records', ['{h3}', 'app', 'x\uDC00'], {v}],
            ['records', ['{h3}', 'app', '\uD83D\uDE00=|s1:'], {v}],
            ['records', ['{h3}'], {v}],
            ['records', ['{h3}', 'app'], {v}],
            ['records', ['{h3}', 'app', 'app'], {v}],
            ['records', ['{h3}', 'app', 'app', 'app'], {v}],
            ['records', ['{h3}', 'app', 7], 'not bytes'],
            ['utxos', ['{h2}', '\uD83D\uDE00', 1], {v}],
        ]"#
        ),
    )
    .await;
    let (mismatch, decode) = (Error::EntryMismatch(String::new()).code(), Error::BlobDecode(String::new()).code());
    let foreign: Vec<(&str, String, u16, bool)> = vec![
        // (store, key as reported, code, inside the key ranges of wallets 2 and 3)
        ("records", "5".into(), mismatch, false),
        ("records", "\"1970-01-01T00:00:00.000Z\"".into(), mismatch, false),
        ("records", "\"plain|s3:x;=\"".into(), mismatch, false),
        // Above `[h2, []]`: outside wallet 2's key range.
        ("records", format!("[\"{h2}\",[\"nested\"]]"), mismatch, false),
        ("records", format!("[\"{h2}\",\"app\",\"\\ud800lone\"]"), mismatch, true),
        ("records", format!("[\"{h3}\",\"app\",\"x\\udc00\"]"), mismatch, true),
        ("records", format!("[\"{h3}\",\"app\",\"\u{1F600}=|s1:\"]"), decode, true),
        ("records", format!("[\"{h3}\"]"), decode, true),
        ("records", format!("[\"{h3}\",\"app\"]"), decode, true),
        ("records", format!("[\"{h3}\",\"app\",\"app\"]"), decode, true),
        ("records", format!("[\"{h3}\",\"app\",\"app\",\"app\"]"), decode, true),
        ("records", format!("[\"{h3}\",\"app\",7]"), decode, true),
        ("utxos", format!("[\"{h2}\",\"\u{1F600}\",1]"), decode, true),
    ];
    let sorted = |mut rows: Vec<(&'static str, String, u16)>| {
        rows.sort();
        rows
    };
    let all = sorted(foreign.iter().map(|(s, k, c, _)| (*s, k.clone(), *c)).collect());
    let ranged = sorted(foreign.iter().filter(|f| f.3).map(|(s, k, c, _)| (*s, k.clone(), *c)).collect());
    let mut first = None;
    for (chunk, piece) in SIZES {
        let at = format!("chunk {chunk} piece {piece}");
        let backend = IndexedDbBackend::open(&name).await.unwrap();
        backend.set_read_chunk_rows(chunk);
        backend.set_read_piece_rows(piece);
        let persister = Persister::open(backend, Default::default()).await.expect("open");
        let (state, report) = persister.load().await.unwrap();
        let expected: std::collections::BTreeMap<_, _> =
            (1..=4).map(|n| (testing::wallet_id(n), testing::sample_changeset(n))).collect();
        assert!(state.wallets == expected, "{at}: the wallets differ from what was written");
        let skipped = sorted(report.skipped.iter().map(|s| (s.store, s.key.clone(), s.code)).collect());
        assert_eq!(skipped, all, "{at}");
        assert_eq!(report.wallets, 4, "{at}");
        match &first {
            None => first = Some(report),
            Some(expected) => assert_eq!(&report, expected, "{at}"),
        }
        let some: std::collections::BTreeSet<WalletId> = [testing::wallet_id(2), testing::wallet_id(3)].into();
        let (state, report) = persister.load_wallets(&some).await.unwrap();
        let expected: std::collections::BTreeMap<_, _> =
            [2, 3].into_iter().map(|n| (testing::wallet_id(n), testing::sample_changeset(n))).collect();
        assert!(state.wallets == expected, "{at}: the chosen wallets differ from what was written");
        let skipped = sorted(report.skipped.iter().map(|s| (s.store, s.key.clone(), s.code)).collect());
        assert_eq!(skipped, ranged, "{at}: load of wallets 2 and 3");
        assert_eq!(report.not_found, Some(Vec::new()), "{at}");
        persister.close().await.unwrap();
    }
    IndexedDbBackend::delete(&name).await.unwrap();
}

/// What a stream of every area store handed over, sorted by store and key, checking on the way
/// that each store's rows come in key order and none comes below a `Complete` already sent;
/// `at(n)` runs as the stream hands over its `n`th event (0-based).
async fn stream_rows(
    backend: &IndexedDbBackend,
    mut at: impl FnMut(usize),
) -> (wallet_persist::Result<()>, Vec<(&'static str, Row)>, usize) {
    use wallet_persist::backend::ReadEvent;
    use wallet_persist::model::KeyPart;
    let mut rows: Vec<(&'static str, Row)> = Vec::new();
    let mut complete = String::new();
    let mut events = 0;
    let mut last: std::collections::BTreeMap<&'static str, wallet_persist::model::Key> = Default::default();
    let result = backend
        .read_stream(AREA_STORES, None, &mut |event| {
            at(events);
            events += 1;
            match event {
                ReadEvent::Rows(piece) => {
                    assert!(piece.unreadable.is_empty(), "{:?}", piece.unreadable);
                    for row in piece.rows {
                        let Some(KeyPart::Text(first)) = row.key.first() else { panic!("{:?}", row.key) };
                        assert!(*first >= complete, "{:?} came after Complete({complete})", row.key);
                        if let Some(before) = last.insert(piece.store, row.key.clone()) {
                            assert!(before < row.key, "{}: {before:?} then {:?}", piece.store, row.key);
                        }
                        rows.push((piece.store, row));
                    }
                }
                ReadEvent::Complete(below) => {
                    assert!(below > complete, "Complete({below}) after Complete({complete})");
                    complete = below;
                }
                other => panic!("{other:?}"),
            }
            Ok(())
        })
        .await;
    rows.sort_by(|a, b| (a.0, &a.1.key).cmp(&(b.0, &b.1.key)));
    (result, rows, events)
}

/// Every row of the area stores, sorted by store and key.
async fn snapshot(backend: &IndexedDbBackend) -> Vec<(&'static str, Row)> {
    let mut rows: Vec<(&'static str, Row)> = Vec::new();
    for read in backend.read(AREA_STORES).await.unwrap() {
        let read = read.unwrap();
        rows.extend(read.rows.into_iter().map(|row| (read.store, row)));
    }
    rows.sort_by(|a, b| (a.0, &a.1.key).cmp(&(b.0, &b.1.key)));
    rows
}

/// What a task spawned by a test came to: `None` while it runs.
type Outcome = Rc<std::cell::RefCell<Option<Result<(), String>>>>;

/// Waits (letting the page run) until `outcome` is in, at most 20 s; panics if it is an error.
async fn until_done(outcome: &Outcome, at: &str) {
    let start = js_sys::Date::now();
    loop {
        if let Some(result) = outcome.borrow().clone() {
            return result.unwrap_or_else(|e| panic!("{at}: {e}"));
        }
        assert!(js_sys::Date::now() - start < 20_000.0, "{at}: still running after 20 s");
        // A timer, not a yield: continuations of `scheduler.yield` run ahead of IndexedDB's events.
        let sleep = js_sys::Function::new_no_args("return new Promise((resolve) => setTimeout(resolve, 5))");
        JsFuture::from(sleep.call0(&JsValue::UNDEFINED).unwrap().unchecked_into::<Promise>()).await.unwrap();
    }
}

/// A commit that deletes one wallet's rows and adds another's, started while a load is between two
/// pieces (and landing there when the read's requests are all served): the stream hands over
/// exactly the rows before that commit, each once, in order; the commit lands whole after.
#[wasm_bindgen_test]
async fn a_commit_started_between_pieces_leaves_the_stream_its_snapshot() {
    use wallet_persist::backend::WriteOp;
    use wallet_persist::model::KeyPart;
    let name = unique("stream-commit");
    write_sample_wallets(&name, 5).await;
    let mut landed_mid_stream = Vec::new();
    for ((chunk, piece), yields) in SIZES.into_iter().flat_map(|size| [(size, true), (size, false)]) {
        let at = format!("chunk {chunk} piece {piece}, scheduler.yield {yields}");
        let backend = IndexedDbBackend::open(&name).await.unwrap();
        backend.set_read_chunk_rows(chunk);
        backend.set_read_piece_rows(piece);
        let before = snapshot(&backend).await;
        let writer = Rc::new(IndexedDbBackend::open(&name).await.unwrap());
        let gone = testing::wallet_id(2);
        let added = testing::wallet_id(((chunk % 200) + 10) as u8);
        let mut ops: Vec<WriteOp> =
            AREA_STORES.iter().map(|store| WriteOp::DeleteWallet { store, wallet: gone }).collect();
        ops.extend(
            wallet_persist::wallets::rows::changeset_ops(&added, &testing::sample_changeset(9), usize::MAX).unwrap(),
        );
        let batch = WriteBatch::new(ops);
        let landed = Outcome::default();
        // Without `scheduler.yield` (Firefox, Safari), the pauses between pieces are plain tasks,
        // between which the commit's events run.
        if !yields {
            js("Object.defineProperty(globalThis, 'scheduler', { value: undefined, configurable: true })");
        }
        let (result, rows, events) = stream_rows(&backend, |n| {
            // A slow reader: the stream pauses between its pieces.
            let start = js_sys::Date::now();
            while js_sys::Date::now() - start < 3.0 {}
            if n == 1 {
                let (writer, batch, landed) = (writer.clone(), batch.clone(), landed.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let written = writer.write(&batch).await.map_err(|e| format!("the commit: {e}"));
                    *landed.borrow_mut() = Some(written);
                });
            }
        })
        .await;
        if !yields {
            js("delete globalThis.scheduler");
        }
        result.unwrap_or_else(|e| panic!("{at}: {e}"));
        if landed.borrow().is_some() {
            landed_mid_stream.push(at.clone());
        }
        assert!(events > 2, "{at}: {events} events");
        assert!(rows == before, "{at}: the stream differs from the snapshot before the commit");
        until_done(&landed, &at).await;
        let after = snapshot(&backend).await;
        let owner = |row: &Row, w: WalletId| row.key.first() == Some(&KeyPart::Text(w.to_hex()));
        assert!(after.iter().all(|(_, row)| !owner(row, gone)), "{at}");
        let puts = batch.ops.iter().filter(|op| matches!(op, WriteOp::Put { .. })).count();
        assert_eq!(after.iter().filter(|(_, row)| owner(row, added)).count(), puts, "{at}");
        // Back as it was, for the next size.
        let mut undo: Vec<WriteOp> =
            AREA_STORES.iter().map(|store| WriteOp::DeleteWallet { store, wallet: added }).collect();
        undo.extend(before.iter().filter(|(_, row)| owner(row, gone)).map(|(store, row)| WriteOp::Put {
            store,
            key: row.key.clone(),
            value: row.value.clone(),
        }));
        writer.write(&WriteBatch::new(undo)).await.unwrap();
        assert!(snapshot(&backend).await == before, "{at}: restored");
        writer.close();
        backend.close();
    }
    // The scenario happened: the read's requests were all served (it reads ahead of its reader)
    // and the commit landed while pieces were still to be handed over.
    assert!(!landed_mid_stream.is_empty(), "the commit never landed while the stream was under way");
    IndexedDbBackend::delete(&name).await.unwrap();
}

/// `close()`, a reconnect, or another connection's upgrade (whose `versionchange` closes ours),
/// each while a load is between two pieces: the stream already under way hands over exactly the
/// rows it read, each once, and ends; the connection is then closed, reconnected or superseded as
/// asked.
#[wasm_bindgen_test]
async fn close_reconnect_or_upgrade_between_pieces_ends_the_stream_whole() {
    use wallet_persist::Error;
    let name = unique("stream-close");
    write_sample_wallets(&name, 3).await;
    // Where the reconnect was done, or the upgrade's `versionchange` closed the connection, before
    // the stream ended.
    let mut mid_stream = Vec::new();
    for what in ["close", "reconnect", "upgrade"] {
        for (chunk, piece) in SIZES {
            let at = format!("{what}, chunk {chunk} piece {piece}");
            let backend = Rc::new(IndexedDbBackend::open(&name).await.unwrap());
            backend.set_read_chunk_rows(chunk);
            backend.set_read_piece_rows(piece);
            let before = snapshot(&backend).await;
            let done = Outcome::default();
            let superseded = Rc::new(std::cell::Cell::new(false));
            let flag = superseded.clone();
            backend.on_version_change(Box::new(move |_, _| flag.set(true)));
            let (result, rows, _) = stream_rows(&backend, |n| {
                // A slow reader: the stream pauses between its pieces.
                let start = js_sys::Date::now();
                while js_sys::Date::now() - start < 3.0 {}
                if n != 1 {
                    return;
                }
                let (backend, done, name) = (backend.clone(), done.clone(), name.clone());
                match what {
                    "close" => {
                        backend.close();
                        *done.borrow_mut() = Some(Ok(()));
                    }
                    "reconnect" => wasm_bindgen_futures::spawn_local(async move {
                        *done.borrow_mut() = Some(backend.reconnect().await.map_err(|e| format!("reconnect: {e}")));
                    }),
                    _ => wasm_bindgen_futures::spawn_local(async move {
                        let upgrade = js_sys::Function::new_with_args(
                            "name",
                            "return new Promise((resolve, reject) => { \
                               const check = indexedDB.open(name); \
                               check.onsuccess = () => { const v = check.result.version; check.result.close(); \
                                 const up = indexedDB.open(name, v + 1); \
                                 up.onsuccess = () => { up.result.close(); resolve(); }; \
                                 up.onerror = () => reject(up.error); }; \
                               check.onerror = () => reject(check.error); })",
                        );
                        let promise: Promise =
                            upgrade.call1(&JsValue::UNDEFINED, &name.into()).unwrap().unchecked_into();
                        let upgraded = JsFuture::from(promise).await;
                        *done.borrow_mut() = Some(upgraded.map(|_| ()).map_err(|e| format!("upgrade: {e:?}")));
                    }),
                }
            })
            .await;
            result.unwrap_or_else(|e| panic!("{at}: {e}"));
            if done.borrow().is_some() || superseded.get() {
                mid_stream.push(at.clone());
            }
            assert!(rows == before, "{at}: the stream differs from what was on disk");
            until_done(&done, &at).await;
            let next = backend.read(AREA_STORES).await;
            match what {
                "close" => assert!(matches!(next, Err(Error::Closed)), "{at}: {next:?}"),
                "reconnect" => assert!(next.is_ok(), "{at}: {next:?}"),
                _ => assert!(matches!(next, Err(Error::ClosedByUpgrade(_))), "{at}: {next:?}"),
            }
            backend.close();
        }
    }
    for what in ["reconnect", "upgrade"] {
        assert!(mid_stream.iter().any(|at| at.starts_with(what)), "{what} never mid-stream: {mid_stream:?}");
    }
    IndexedDbBackend::delete(&name).await.unwrap();
}

/// Sealed rows at every chunk and piece size: a wallet's rows, in hashed-key order, straddle
/// pieces and chunks; the load is the one of a single request per store, exactly what was written.
#[wasm_bindgen_test]
async fn an_encrypted_load_with_piece_boundaries_inside_wallets_loads_exactly_what_was_written() {
    let name = unique("sealed-pieces");
    let cipher = Rc::new(Cipher::new(&wallet_persist::crypto::ops::random_key().unwrap()));
    let open = |chunk: u32, piece: u32| {
        let (name, cipher) = (name.clone(), cipher.clone());
        async move {
            let inner = IndexedDbBackend::open(&name).await.unwrap();
            inner.set_read_chunk_rows(chunk);
            inner.set_read_piece_rows(piece);
            let backend = EncryptedBackend::new(inner);
            backend.set_cipher(Some(cipher));
            Persister::open(backend, Default::default()).await.expect("open")
        }
    };
    let writer = open(u32::MAX, 1_000).await;
    for n in 1..=5 {
        writer.store(testing::wallet_id(n), testing::sample_changeset(n)).await.unwrap();
    }
    writer.commit().await.unwrap();
    writer.close().await.unwrap();
    let expected: std::collections::BTreeMap<_, _> =
        (1..=5).map(|n| (testing::wallet_id(n), testing::sample_changeset(n))).collect();
    let mut first = None;
    for (chunk, piece) in SIZES {
        let at = format!("chunk {chunk} piece {piece}");
        let persister = open(chunk, piece).await;
        let (state, report) = persister.load().await.unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(state.wallets == expected, "{at}: the wallets differ from what was written");
        assert!(report.skipped.is_empty(), "{at}: {:?}", report.skipped);
        assert_eq!(report.wallets, 5, "{at}");
        match &first {
            None => first = Some(report),
            Some(expected) => assert_eq!(&report, expected, "{at}"),
        }
        let some: std::collections::BTreeSet<WalletId> = [testing::wallet_id(2), testing::wallet_id(5)].into();
        let (state, _) = persister.load_wallets(&some).await.unwrap();
        assert_eq!(state.wallets.keys().copied().collect::<std::collections::BTreeSet<_>>(), some, "{at}");
        persister.close().await.unwrap();
    }
    IndexedDbBackend::delete(&name).await.unwrap();
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
// Makes chosen values unreadable, as a value whose file the browser lost: a getAll, getAllRecords
// or get request whose result holds one fails, from the real request's success event (so the
// transaction is as active as after a real failure). A get of a lost value fails with the name and
// message it was lost with; a bulk request holding one fails with `bulk` (NotReadableError unless
// `lost_bulk_fails_with` says otherwise).
const INJECTED = ['NotReadableError', 'Data lost due to missing file (injected)'];
const lost = new Map();
let bulk = INJECTED;
let installed = false;
const spell = (bytes) => Array.prototype.join.call(bytes, ',');
const lostAs = (value) => (value instanceof Uint8Array ? lost.get(spell(value)) : undefined);
const isLost = (value) => lostAs(value) !== undefined;
function failing(request, fails) {
  let onsuccess = null;
  let onerror = null;
  let error = null;
  Object.defineProperty(request, 'onsuccess', { configurable: true, get: () => onsuccess, set: (f) => { onsuccess = f; } });
  Object.defineProperty(request, 'onerror', { configurable: true, get: () => onerror, set: (f) => { onerror = f; } });
  Object.defineProperty(request, 'error', { configurable: true, get: () => error });
  request.addEventListener('success', (event) => {
    const failure = fails(request.result);
    if (failure) {
      error = new DOMException(failure[1], failure[0]);
      if (onerror) onerror({ preventDefault() {}, target: request });
    } else if (onsuccess) onsuccess(event);
  });
  return request;
}
export function lose_values(values, name, message) {
  for (const value of values) lost.set(spell(value), name ? [name, message] : INJECTED);
  if (installed) return;
  installed = true;
  const wrap = (name, fails) => {
    const original = IDBObjectStore.prototype[name];
    if (typeof original !== 'function') return;
    IDBObjectStore.prototype[name] = function (...args) { return failing(original.apply(this, args), fails); };
  };
  wrap('getAll', (values) => (values.some(isLost) ? bulk : undefined));
  wrap('getAllRecords', (records) => (records.some((record) => isLost(record.value)) ? bulk : undefined));
  wrap('get', lostAs);
}
export function lost_bulk_fails_with(name, message) { bulk = [name, message]; }
export function find_values() { lost.clear(); bulk = INJECTED; }
"#)]
extern "C" {
    /// `name` "" is NotReadableError.
    fn lose_values(values: &Array, name: &str, message: &str);
    fn lost_bulk_fails_with(name: &str, message: &str);
    fn find_values();
}

/// A request that fails because the connection went away (WebKit: `UnknownError` "Connection to
/// Indexed Database server lost", for every pending request) is no row's fault: the load must not
/// resolve with those rows skipped (they are on disk), but fail the read so the Db reconnects and
/// reads again, or rejects retryably (7). Both the bulk request failing so, and a get of the
/// one-by-one read after a bulk NotReadableError.
#[wasm_bindgen_test]
#[ignore = "finding: chunkReader treats a connection-lost UnknownError as one row's failure (fix: src/backend/indexeddb/idb.js, fail the read on it as on AbortError); the run hung in this environment, not yet verified"]
async fn a_connection_lost_under_a_load_never_skips_rows() {
    let name = unique("lost-under-load");
    write_sample_wallets(&name, 5).await;
    let backend = IndexedDbBackend::open(&name).await.unwrap();
    let reads: Vec<_> = backend.read(&["utxos"]).await.unwrap().into_iter().map(Result::unwrap).collect();
    let value = reads[0].rows.last().unwrap().value.clone();
    backend.close();
    let lost_message = "Connection to Indexed Database server lost. Refresh the page to try again";
    let cases = [
        ("UnknownError", lost_message, "UnknownError", lost_message),
        ("NotReadableError", "Data lost due to missing file (injected)", "UnknownError", lost_message),
        ("NotReadableError", "Data lost due to missing file (injected)", "AbortError", "The transaction was aborted"),
    ];
    for (bulk_name, bulk_message, get_name, get_message) in cases {
        let at = format!("bulk {bulk_name}, get {get_name}");
        lose_values(&[JsValue::from(Uint8Array::from(value.as_slice()))].into_iter().collect(), get_name, get_message);
        lost_bulk_fails_with(bulk_name, bulk_message);
        let persister =
            Persister::open(IndexedDbBackend::open(&name).await.unwrap(), Default::default()).await.unwrap();
        match persister.load().await {
            Ok((_, report)) => panic!("{at}: the load resolved, skipping {:?}", report.skipped),
            Err(error) => assert!(error.is_transient(), "{at}: {error}"),
        }
        find_values();
        persister.close().await.unwrap();
    }
    IndexedDbBackend::delete(&name).await.unwrap();
}

/// Values the browser cannot read (NotReadableError on every request that returns one), in the
/// first, a middle and the last wallet: at every chunk and piece size, on every engine, the load
/// reads the failed requests' rows one by one in its own transaction, skips exactly those rows
/// (code 11, `scannedStores`) and loads exactly what a database without them loads; a load of
/// some wallets reports only theirs.
#[wasm_bindgen_test]
async fn unreadable_values_are_skipped_one_by_one_and_the_rest_loads_exactly() {
    use wallet_persist::backend::WriteOp;
    use wallet_persist::model::KeyPart;
    let name = unique("unreadable-values");
    write_sample_wallets(&name, 5).await;
    let backend = IndexedDbBackend::open(&name).await.unwrap();
    let of = |store: &'static str, wallet: u8, rows: &[Row]| -> (&'static str, Row) {
        let owner = KeyPart::Text(testing::wallet_id(wallet).to_hex());
        (store, rows.iter().find(|row| row.key.first() == Some(&owner)).unwrap().clone())
    };
    let reads: Vec<_> =
        backend.read(&["transactions", "utxos"]).await.unwrap().into_iter().map(Result::unwrap).collect();
    let lost = [of("utxos", 1, &reads[1].rows), of("transactions", 3, &reads[0].rows), of("utxos", 5, &reads[1].rows)];
    // What a database without the lost rows loads (deleted, loaded, put back).
    let rows = |lost: &[(&'static str, Row)]| -> Vec<WriteOp> {
        lost.iter().map(|(store, row)| WriteOp::Put { store, key: row.key.clone(), value: row.value.clone() }).collect()
    };
    let deletes = lost.iter().map(|(store, row)| WriteOp::Delete { store, key: row.key.clone() }).collect();
    backend.write(&WriteBatch::new(deletes)).await.unwrap();
    let persister = Persister::open(IndexedDbBackend::open(&name).await.unwrap(), Default::default()).await.unwrap();
    let (expected, _) = persister.load().await.unwrap();
    let some: std::collections::BTreeSet<WalletId> = [testing::wallet_id(3), testing::wallet_id(4)].into();
    let (expected_some, _) = persister.load_wallets(&some).await.unwrap();
    persister.close().await.unwrap();
    backend.write(&WriteBatch::new(rows(&lost))).await.unwrap();
    backend.close();

    let values: Array = lost.iter().map(|(_, row)| JsValue::from(Uint8Array::from(row.value.as_slice()))).collect();
    lose_values(&values, "", "");
    let spelled = |lost: &[&(&'static str, Row)]| -> Vec<(&'static str, String, u16)> {
        lost.iter().map(|(store, row)| (*store, wallet_persist::model::key_to_string(&row.key), 11)).collect()
    };
    for (chunk, piece) in SIZES {
        let at = format!("chunk {chunk} piece {piece}");
        let backend = IndexedDbBackend::open(&name).await.unwrap();
        backend.set_read_chunk_rows(chunk);
        backend.set_read_piece_rows(piece);
        let persister = Persister::open(backend, Default::default()).await.expect("open");
        let (state, report) = persister.load().await.unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(state == expected, "{at}: the load differs from that of a database without the lost rows");
        assert_eq!(report.scanned_stores, vec!["utxos", "transactions"], "{at}");
        let skipped: Vec<_> = report.skipped.iter().map(|s| (s.store, s.key.clone(), s.code)).collect();
        assert_eq!(skipped, spelled(&[&lost[0], &lost[2], &lost[1]]), "{at}");
        let (state, report) = persister.load_wallets(&some).await.unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(state == expected_some, "{at}: wallets 3 and 4 differ");
        let skipped: Vec<_> = report.skipped.iter().map(|s| (s.store, s.key.clone(), s.code)).collect();
        assert_eq!(skipped, spelled(&[&lost[1]]), "{at}: wallets 3 and 4");
        persister.close().await.unwrap();
    }
    // A get of the row-by-row read aborted with its transaction is no row's fault: the load
    // fails (retryable), it does not skip the rest of the chunk.
    let healthy = of("utxos", 3, &reads[1].rows).1;
    lose_values(
        &[JsValue::from(Uint8Array::from(healthy.value.as_slice()))].into_iter().collect(),
        "AbortError",
        "The transaction was aborted",
    );
    let persister = Persister::open(IndexedDbBackend::open(&name).await.unwrap(), Default::default()).await.unwrap();
    let error = persister.load().await.expect_err("a load whose row-by-row read aborted");
    assert_eq!((error.code(), error.is_transient()), (21, true), "{error}");
    persister.close().await.unwrap();
    find_values();
    IndexedDbBackend::delete(&name).await.unwrap();
}

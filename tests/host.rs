//! Host tests: model, codec, buffer, error classification, and the conformance suite on the
//! in-memory backend.

use wallet_persist::backend::MemoryBackend;
use wallet_persist::codec::{self, HEADER_LEN, MAGIC, SCHEMA_VERSION};
use wallet_persist::model::*;
use wallet_persist::testing::{block_on, sample_changeset, wallet_id, Harness};
use wallet_persist::wallets::buffer::Buffer;
use wallet_persist::Error;

struct Memory(MemoryBackend, MemoryBackend);

impl Harness for Memory {
    type B = MemoryBackend;
    async fn open(&self) -> MemoryBackend {
        self.0.reopen()
    }
    async fn open_other(&self) -> MemoryBackend {
        self.1.reopen()
    }
}

fn memory(_test: &str) -> Memory {
    Memory(MemoryBackend::new(), MemoryBackend::new())
}

mod conformance_memory {
    use super::{block_on, memory};
    wallet_persist::conformance_tests!(sync, block_on, memory);
}

#[test]
fn merge_is_per_key_last_writer_wins_with_tombstones() {
    let mut older = sample_changeset(1);
    let mut newer = WalletChangeSet::default();
    newer.accounts.tombstone(1);
    newer.addresses.upsert(AddressEntry { address: "tb1q0001".into(), account: 0, index: 1, used: true });
    newer.addresses.upsert(AddressEntry { address: "tb1qnew".into(), account: 0, index: 2, used: false });
    older.merge(newer);
    assert_eq!(older.accounts.0.get(&1), Some(&None), "the tombstone wins over the older upsert");
    assert!(older.addresses.0["tb1q0001"].as_ref().unwrap().used, "the newer value wins");
    assert_eq!(older.addresses.0.len(), 2);
    assert_eq!(older.utxos, sample_changeset(1).utxos, "untouched areas are kept");

    // An upsert after a tombstone resurrects the key.
    let mut again = WalletChangeSet::default();
    again.accounts.upsert(Account { index: 1, kind: "bip44".into(), descriptor: "x".into() });
    older.merge(again);
    assert_eq!(older.accounts.0[&1].as_ref().unwrap().kind, "bip44");

    // A singleton is replaced only by a newer `Some`.
    let wallet_before = older.wallet.clone();
    older.merge(WalletChangeSet::default());
    assert_eq!(older.wallet, wallet_before);
}

#[test]
fn codec_round_trips_and_refuses_trailing_bytes_and_oversize() {
    let value = (wallet_id(1), sample_changeset(1).utxos.0.values().next().cloned().unwrap().unwrap());
    let bytes = codec::encode(&value, codec::MAX_BLOB_BYTES).unwrap();
    assert_eq!(bytes[0..4], MAGIC);
    assert_eq!(u16::from_le_bytes([bytes[5], bytes[6]]), SCHEMA_VERSION);
    let back: (WalletId, Utxo) = codec::decode(&bytes, codec::MAX_BLOB_BYTES).unwrap();
    assert_eq!(back, value);

    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(
        matches!(codec::decode::<(WalletId, Utxo)>(&trailing, 1 << 20), Err(Error::BlobDecode(m)) if m.contains("trailing"))
    );
    assert!(
        matches!(codec::decode::<(WalletId, Utxo)>(&bytes[..bytes.len() - 1], 1 << 20), Err(Error::BlobDecode(m)) if m.contains("truncated"))
    );
    assert_eq!(
        codec::decode::<(WalletId, Utxo)>(&bytes, 16).unwrap_err(),
        Error::BlobTooLarge { len: (bytes.len() - HEADER_LEN) as u64, limit: 16 }
    );
    assert!(matches!(codec::encode(&value, 16), Err(Error::BlobTooLarge { limit: 16, .. })));

    let mut future = bytes.clone();
    future[5..7].copy_from_slice(&(SCHEMA_VERSION + 1).to_le_bytes());
    assert_eq!(
        codec::decode::<(WalletId, Utxo)>(&future, 1 << 20).unwrap_err(),
        Error::SchemaVersionUnsupported { found: SCHEMA_VERSION + 1, supported: SCHEMA_VERSION }
    );
    let mut bad_magic = bytes.clone();
    bad_magic[0] ^= 0xff;
    assert_eq!(codec::decode::<(WalletId, Utxo)>(&bad_magic, 1 << 20).unwrap_err().code(), 11);
    let mut flagged = bytes.clone();
    flagged[4] = 1;
    assert_eq!(codec::decode::<(WalletId, Utxo)>(&flagged, 1 << 20).unwrap_err().code(), 11);
}

#[test]
fn codec_inner_length_prefix_cannot_drive_allocation() {
    // A payload whose first byte-string claims 2^40 bytes.
    let mut payload = vec![0xfdu8];
    payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let mut bytes = MAGIC.to_vec();
    bytes.push(0);
    bytes.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&payload);
    let error = codec::decode::<Bytes>(&bytes, codec::MAX_BLOB_BYTES).unwrap_err();
    assert_eq!(error, Error::BlobTooLarge { len: 1 << 40, limit: codec::MAX_BLOB_BYTES as u64 });
}

#[test]
fn buffer_restore_puts_taken_under_newer() {
    let a = wallet_id(1);
    let mut buffer = Buffer::default();
    buffer.stage(a, sample_changeset(1));
    let taken = buffer.take_for_flush(&Default::default());
    assert!(buffer.is_empty());

    let newer = WalletChangeSet {
        wallet: Some(WalletRecord { label: "newer".into(), ..sample_changeset(1).wallet.unwrap() }),
        ..Default::default()
    };
    buffer.stage(a, newer);
    buffer.restore(taken);
    let staged = buffer.get(&a).unwrap();
    assert_eq!(staged.wallet.as_ref().unwrap().label, "newer");
    assert_eq!(staged.utxos, sample_changeset(1).utxos);

    buffer.stage(wallet_id(2), WalletChangeSet::default());
    assert_eq!(buffer.summary().len(), 1, "an empty changeset stages nothing");
}

/// The expected classification of every variant: a `match` with no wildcard arm, so a new variant
/// does not compile until this test says what it means (code, kind, retryable).
fn expected_classification(error: &Error) -> (u16, &'static str, bool) {
    match error {
        Error::InvalidArgument(_) => (1, "invalid_argument", false),
        Error::WalletNotFound(_) => (2, "wallet_not_found", false),
        Error::WalletBeingDeleted(_) => (2, "wallet_not_found", false),
        Error::WalletAlreadyExists(_) => (3, "wallet_already_exists", false),
        Error::FlushRetryable { .. } => (4, "flush_retryable", true),
        Error::FlushFailed { cause, .. } => expected_classification(cause),
        Error::QuotaExceeded(_) => (5, "quota_exceeded", true),
        Error::StorageUnavailable(_) => (6, "storage_unavailable", false),
        Error::ConnectionLost(_) => (7, "connection_lost", true),
        Error::ClosedByUpgrade(_) => (7, "connection_lost", true),
        Error::UpgradeBlocked(_) => (8, "upgrade_blocked", true),
        Error::SchemaVersionUnsupported { .. } => (9, "schema_version_unsupported", false),
        Error::BlobTooLarge { .. } => (10, "blob_too_large", false),
        Error::BlobDecode(_) => (11, "blob_decode", false),
        Error::WalletIdMismatch { .. } => (12, "wallet_id_mismatch", false),
        Error::EntryMismatch(_) => (13, "entry_mismatch", false),
        Error::BackupInvalid(_) => (14, "backup_invalid", false),
        Error::BackupDestinationNotEmpty => (15, "backup_destination_not_empty", false),
        Error::AlreadyOpen(_) => (16, "already_open", false),
        Error::ReadOnlyFollower(_) => (16, "already_open", false),
        Error::PendingRegistrationMissing(_) => (17, "pending_registration_missing", false),
        Error::Timeout(_) => (18, "timeout", true),
        Error::ShutdownIncomplete(_) => (19, "shutdown_incomplete", true),
        Error::Closed => (20, "closed", false),
        Error::TransactionAborted(_) => (21, "transaction_aborted", true),
        Error::OrphanRow(_) => (22, "orphan_row", false),
        Error::WrongKey(_) => (23, "wrong_key", false),
        Error::NotEncrypted(_) => (1, "invalid_argument", false),
        Error::Internal(_) => (99, "internal", false),
    }
}

#[test]
fn every_error_variant_has_its_stable_code_kind_and_retryability() {
    let id = wallet_id(1);
    let x = || String::from("x");
    // One value of every variant (the match above fails to compile without a new variant; the
    // coverage check below fails without a value of it).
    let samples: Vec<Error> = vec![
        Error::InvalidArgument(x()),
        Error::WalletNotFound(id),
        Error::WalletBeingDeleted(id),
        Error::WalletAlreadyExists(id),
        Error::FlushRetryable { wallets: vec![id], cause: Box::new(Error::Timeout(x())), dropped: vec![] },
        Error::FlushFailed { wallets: vec![id], cause: Box::new(Error::BlobDecode(x())) },
        Error::QuotaExceeded(x()),
        Error::StorageUnavailable(x()),
        Error::ConnectionLost(x()),
        Error::ClosedByUpgrade(x()),
        Error::UpgradeBlocked(x()),
        Error::SchemaVersionUnsupported { found: 2, supported: 1 },
        Error::BlobTooLarge { len: 2, limit: 1 },
        Error::BlobDecode(x()),
        Error::WalletIdMismatch { expected: id, found: wallet_id(2) },
        Error::EntryMismatch(x()),
        Error::BackupInvalid(x()),
        Error::BackupDestinationNotEmpty,
        Error::AlreadyOpen(x()),
        Error::ReadOnlyFollower(x()),
        Error::PendingRegistrationMissing(id),
        Error::Timeout(x()),
        Error::ShutdownIncomplete(x()),
        Error::Closed,
        Error::TransactionAborted(x()),
        Error::OrphanRow(x()),
        Error::WrongKey(x()),
        Error::NotEncrypted(x()),
        Error::Internal(x()),
    ];
    let variant = |e: &Error| std::mem::discriminant(e);
    let mut seen = Vec::new();
    for error in &samples {
        assert_eq!((error.code(), error.kind(), error.is_transient()), expected_classification(error), "{error:?}");
        assert!(!error.to_string().is_empty());
        assert!(!seen.contains(&variant(error)), "{error:?} listed twice");
        seen.push(variant(error));
    }
    assert_eq!(seen.len(), 29, "one sample per variant: update the count with a new variant");
    // Every row of the error table is reached by some variant.
    for code in wallet_persist::error::Code::ALL {
        assert!(samples.iter().any(|e| e.code() == code.number()), "no variant reports code {}", code.number());
    }
}

#[test]
fn dom_exception_names_are_classified() {
    let cases = [
        ("QuotaExceededError", "", 5),
        ("UnknownError", "Connection is closing because of: Force close delete origin", 7),
        ("InvalidStateError", "The database connection is closing.", 7),
        ("UnknownError", "Connection to Indexed Database server lost. Refresh the page to try again", 7),
        ("AbortError", "", 21),
        ("TransactionInactiveError", "", 21),
        ("SecurityError", "", 6),
        ("VersionError", "", 9),
        ("DataError", "", 99),
        ("ConstraintError", "", 99),
    ];
    for (name, message, code) in cases {
        assert_eq!(wallet_persist::backend::indexeddb::error::from_dom_exception(name, message).code(), code, "{name}");
    }
}

#[test]
fn entry_keys_round_trip_between_js_and_parts() {
    let op = OutPoint { txid: Hash32([7; 32]), vout: 3 };
    let key = (5u32, op);
    let js = key.js_key();
    assert_eq!(js, format!("5:{}:3", Hash32([7; 32])));
    assert_eq!(<(u32, OutPoint)>::parse_js(&js).unwrap(), key);
    let mut parts = Vec::new();
    key.to_parts(&mut parts);
    assert_eq!(parts.len(), 3);
    assert_eq!(<(u32, OutPoint)>::from_parts(&parts), Some(key));
    for bad in ["007", "00", "+5", "+0", "-0", "", " 5", "4294967296"] {
        assert!(u32::parse_js(bad).is_err(), "non-canonical or out-of-range {bad:?} is refused");
    }
    for (text, n) in [("0", 0), ("10", 10), ("4294967295", u32::MAX)] {
        assert_eq!(u32::parse_js(text).unwrap(), n);
    }
    assert!(WalletId::from_hex(&"AB".repeat(32)).is_err(), "uppercase hex is refused");
    assert!(WalletId::from_hex("abc").is_err());
}

#[test]
fn ids_order_as_their_bytes() {
    let mut ids = Vec::new();
    for at in [0, 7, 8, 15, 16, 31] {
        for value in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut bytes = [0x5a; 32];
            bytes[at] = value;
            ids.push(bytes);
        }
    }
    for a in &ids {
        for b in &ids {
            assert_eq!(WalletId(*a).cmp(&WalletId(*b)), a.cmp(b));
            assert_eq!(Hash32(*a).partial_cmp(&Hash32(*b)), Some(a.cmp(b)));
        }
    }
}

#[test]
fn ids_are_spelled_as_64_lowercase_hex_characters_and_parse_back() {
    let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(0xf0));
    let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let id = WalletId(bytes);
    assert_eq!(id.to_hex(), expected);
    assert_eq!(id.to_string(), expected);
    assert_eq!(WalletId::from_hex(&expected).unwrap(), id);
    assert_eq!(Hash32(bytes).to_hex(), expected);
    assert_eq!(format!("{:?}", Hash32(bytes)), format!("Hash32({expected})"));
    assert_eq!(WalletId([0; 32]).to_hex(), "0".repeat(64));
    assert_eq!(WalletId([0xff; 32]).to_hex(), "f".repeat(64));
}

/// Every byte at every position of a 64-byte id: accepted exactly when it is a lowercase hex
/// digit, and then parsed to its value; a multi-byte character or a wrong length is refused.
#[test]
fn only_64_lowercase_hex_digits_parse_as_an_id() {
    let base: String = (0..64).map(|i| char::from(b"0123456789abcdef"[(i * 7) % 16])).collect();
    for at in 0..64 {
        for byte in 0..=255u8 {
            let mut text = base.clone().into_bytes();
            text[at] = byte;
            let Ok(text) = String::from_utf8(text) else {
                continue;
            };
            let digit = (byte as char).to_digit(16).filter(|_| !byte.is_ascii_uppercase());
            match (WalletId::from_hex(&text), digit) {
                (Ok(id), Some(value)) => {
                    let nibble = if at % 2 == 0 { id.0[at / 2] >> 4 } else { id.0[at / 2] & 0x0f };
                    assert_eq!(u32::from(nibble), value, "{text}");
                    assert_eq!(id.to_hex(), text);
                }
                (Err(_), None) => {}
                (parsed, _) => panic!("{text:?} at {at}: {parsed:?}"),
            }
        }
    }
    for text in ["", "ab", &"a".repeat(63), &"a".repeat(65), &format!("é{}", "a".repeat(62))] {
        assert!(WalletId::from_hex(text).is_err(), "{text:?}");
    }
}

#[test]
fn area_shapes_list_every_area_and_its_value_fields() {
    let shapes = WalletChangeSet::area_shapes();
    let names: Vec<&str> = shapes.iter().map(|s| s.js_name).collect();
    assert_eq!(
        names,
        [
            "wallet",
            "accounts",
            "addresses",
            "utxos",
            "transactions",
            "syncState",
            "identities",
            "identityKeys",
            "contacts",
            "assetLocks",
            "tokenBalances",
            "platformAddresses",
            "records"
        ]
    );
    let utxos = shapes.iter().find(|s| s.js_name == "utxos").unwrap();
    assert!(utxos.keyed);
    assert_eq!(utxos.value_fields, ["outpoint", "value", "script", "height", "account"]);
    assert!(!shapes[0].keyed);
    assert_eq!(shapes[0].value_fields, ["walletId", "network", "label", "birthHeight", "createdAtMs", "accountSchema"]);
}

/// A value the backend can no longer read fails its store's bulk read; `load` reads that store
/// row by row and skips only that row. A load of another wallet does not read it at all.
#[test]
fn unreadable_value_is_skipped_by_the_row_by_row_fallback() {
    use wallet_persist::{Options, Persister};
    let backend = MemoryBackend::new();
    let (a, b) = (wallet_id(1), wallet_id(2));
    block_on(async {
        let persister = Persister::open(backend.reopen(), Options::default()).await.unwrap();
        persister.store(a, sample_changeset(1)).await.unwrap();
        persister.store(b, sample_changeset(2)).await.unwrap();
        persister.flush().await.unwrap();
        let lost = backend.rows("utxos").into_iter().find(|row| row.key[0] == KeyPart::Text(b.to_hex())).unwrap();
        backend.lose_value("utxos", lost.key.clone());

        let (state, report) = persister.load().await.unwrap();
        assert_eq!(state.wallets[&a], sample_changeset(1));
        let mut expected_b = sample_changeset(2);
        expected_b.utxos = Default::default();
        assert_eq!(state.wallets[&b], expected_b);
        assert_eq!(report.scanned_stores, vec!["utxos"]);
        assert_eq!((report.rows["utxos"], report.skipped_rows["utxos"]), (1, 1));
        assert_eq!(report.skipped.len(), 1);
        assert_eq!((report.skipped[0].store, report.skipped[0].code), ("utxos", 11));
        assert_eq!(report.skipped[0].key, wallet_persist::model::key_to_string(&lost.key));

        // A load of wallet `a` reads its key ranges only: `b`'s lost value is not read.
        let (state, report) = persister.load_wallets(&[a].into()).await.unwrap();
        assert_eq!(state.wallets, [(a, sample_changeset(1))].into());
        assert!(report.scanned_stores.is_empty() && report.skipped.is_empty());
    });
}

/// Parents a load read are not learnt when a write removed parents while it read: the load may
/// hold a row the write deleted, and a later commit needing that parent must read it again (and
/// be refused as an orphan), never trust the load.
#[test]
fn a_load_racing_a_parent_delete_learns_nothing_stale() {
    use wallet_persist::backend::{faulty::yield_now, FaultyBackend, Op};
    use wallet_persist::testing::join2;
    use wallet_persist::{Options, Persister};
    let a = wallet_id(7);
    let full = sample_changeset(7);
    let (identity, key) = full.identity_keys.0.iter().next().map(|(k, v)| (k.0, v.clone().unwrap())).unwrap();
    for only in [None, Some([a].into())] {
        block_on(async {
            let persister =
                Persister::open(FaultyBackend::new(MemoryBackend::new()), Options::default()).await.unwrap();
            persister.store(a, full.clone()).await.unwrap();
            persister.flush().await.unwrap();
            let backend = persister.backend();
            // The load reads every store (the identity among them), then reads `utxos` row by row:
            // the write runs while that row-by-row read is held.
            backend.fail_store_read("utxos", 1, Error::BlobDecode("injected".into()));
            backend.pause_next(Op::Scan);
            let mut tombstone = WalletChangeSet::default();
            tombstone.identities.tombstone(identity);
            let racer = async {
                while !backend.is_paused() {
                    yield_now().await;
                }
                persister.store(a, tombstone).await.unwrap();
                let written = persister.flush().await;
                backend.resume();
                written
            };
            let load = async {
                match &only {
                    None => persister.load().await,
                    Some(wallets) => persister.load_wallets(wallets).await,
                }
            };
            let (loaded, written) = join2(load, racer).await;
            written.unwrap();
            assert!(loaded.unwrap().0.wallets[&a].identities.0.contains_key(&identity), "read before the delete");
            let mut child = WalletChangeSet::default();
            child.identity_keys.upsert(key.clone());
            persister.store(a, child).await.unwrap();
            let refused = persister.flush().await.unwrap_err();
            assert_eq!(refused.code(), 22, "{refused}");
            assert!(persister.load().await.unwrap().0.wallets[&a].identity_keys.0.is_empty());
        });
    }
}

#[test]
fn journal_keeps_the_latest_operation_per_id_in_queue_order() {
    use wallet_persist::channels::{Journal, PendingOp::*};
    let mut journal = Journal::default();
    journal.queue("a".into(), Append);
    journal.queue("b".into(), Append);
    journal.queue("a".into(), Evict); // cancels the append of a, and moves it last
    journal.queue("c".into(), Evict);
    journal.queue("c".into(), Append); // cancels the evict of c
    let ops = |j: &Journal| j.iter().map(|(id, op)| (id.to_owned(), op)).collect::<Vec<_>>();
    assert_eq!(ops(&journal), [("b".into(), Append), ("a".into(), Evict), ("c".into(), Append)]);

    let taken = journal.take();
    assert!(journal.is_empty());
    journal.queue("a".into(), Append);
    journal.queue("d".into(), Evict);
    journal.restore(taken);
    assert_eq!(
        ops(&journal),
        [("b".into(), Append), ("c".into(), Append), ("a".into(), Append), ("d".into(), Evict)],
        "taken under newer: the newer append of a wins, untouched taken ids stay ahead"
    );
}

#[test]
fn meta_values_must_be_one_complete_tree_at_most_64_deep() {
    use wallet_persist::channels::{MetaValue, Node::*};
    let ok =
        MetaValue::from_nodes(vec![Map(2), Key("a".into()), List(0), Key("b".into()), Map(1), Key("c".into()), Null]);
    assert!(ok.is_ok());
    let refused = |nodes, why: &str| {
        let error = MetaValue::from_nodes(nodes).unwrap_err();
        assert!(error.contains(why), "{error:?} should say {why:?}");
    };
    refused(vec![], "ends before");
    refused(vec![Null, Null], "second root");
    refused(vec![List(2), Null], "ends before");
    refused(vec![Map(1), Null, Null], "must start with a key");
    refused(vec![Map(1), Key("k".into())], "ends before");
    refused(vec![List(1), Key("k".into())], "key outside a map");
    refused(vec![Key("k".into())], "key outside a map");
    let nested = |depth: usize| {
        let mut nodes = vec![List(1); depth];
        nodes.push(Bool(true));
        MetaValue::from_nodes(nodes)
    };
    assert!(nested(64).is_ok());
    assert!(nested(65).unwrap_err().contains("nested deeper than 64"));
}

#[test]
fn history_plans_write_by_key_and_move_re_appended_ids() {
    use wallet_persist::backend::{Row, WriteOp};
    use wallet_persist::channels::{self as snapshot, HistoryEntry, HistoryIndex, HistoryUpdate};
    let entry = |id: &str| HistoryEntry { id: id.into(), bytes: Bytes::from(vec![1]), timestamp_ms: None };
    let rows: Vec<Row> = [(0u32, "a"), (1, "b"), (5, "c")]
        .into_iter()
        .map(|(seq, id)| Row {
            key: snapshot::history_key("ch", seq),
            value: codec::encode(&("ch", seq, entry(id)), 1024).unwrap(),
        })
        .collect();
    let (mut index, entries) = HistoryIndex::from_rows("ch", &rows, 1024).unwrap();
    assert_eq!(entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    let update = HistoryUpdate { append: vec![entry("a"), entry("d")], evict: vec!["b".into(), "zz".into()] };
    let (ops, change) = index.plan("ch", &update, 1024).unwrap();
    let shape: Vec<(&str, &str, String)> = ops
        .iter()
        .map(|op| match op {
            WriteOp::Put { store, key, .. } => ("put", *store, wallet_persist::model::key_to_string(key)),
            WriteOp::Delete { store, key } => ("delete", *store, wallet_persist::model::key_to_string(key)),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("delete", "channel_history", r#"["ch",1]"#.to_string()),
            ("delete", "retrieval_hints", r#"["ch","b"]"#.to_string()),
            ("delete", "retrieval_hints", r#"["ch","zz"]"#.to_string()),
            ("delete", "channel_history", r#"["ch",0]"#.to_string()),
            ("put", "channel_history", r#"["ch",6]"#.to_string()),
            ("put", "channel_history", r#"["ch",7]"#.to_string()),
        ]
    );
    index.apply(change);
    assert_eq!(index.len(), 3, "c, a, d");
}

/// `setLogger`'s Rust side: with a sink set, enabled lines go to it with their structured fields
/// (here a fatal flush failure: the wallet and the code), and none to the console; `None` restores.
#[test]
fn log_lines_reach_the_sink_with_structured_fields() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use wallet_persist::backend::FaultyBackend;
    use wallet_persist::log::{self, Field, Level, Value};
    use wallet_persist::{Options, Persister};

    type Line = (Level, String, Vec<Field>);
    let lines: Rc<RefCell<Vec<Line>>> = Rc::default();
    let seen = lines.clone();
    log::set_sink(Some(Rc::new(move |level, message: &str, fields: &[Field]| {
        seen.borrow_mut().push((level, message.to_owned(), fields.to_vec()));
    })));
    let a = wallet_id(31);
    let backend = FaultyBackend::new(MemoryBackend::new());
    backend.fail_wallet(a, 1, Error::BlobDecode("injected".into()));
    let persister = block_on(Persister::open(backend, Options::default())).unwrap();
    block_on(persister.store(a, sample_changeset(31))).unwrap();
    let report = block_on(persister.commit()).unwrap();
    assert_eq!(report.failed.len(), 1);
    log::set_sink(None);

    let lines = lines.borrow();
    let dropped = lines
        .iter()
        .find(|(_, message, _)| message.starts_with("dropped the staged changes of wallet"))
        .unwrap_or_else(|| panic!("no line about the dropped wallet in {lines:?}"));
    assert_eq!(dropped.0, Level::Error);
    assert_eq!(dropped.2, vec![("walletIds", Value::List(vec![a.to_hex()])), ("code", Value::Number(11.0))]);
}

/// The memory backend, counting the pauses the persister asks for.
struct Pausing(MemoryBackend, std::cell::Cell<u32>);

impl wallet_persist::backend::Backend for Pausing {
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
    async fn get(&self, store: &'static str, key: &Key) -> wallet_persist::Result<Option<Vec<u8>>> {
        self.0.get(store, key).await
    }
    async fn scan(&self, store: &'static str) -> wallet_persist::Result<StoreRows> {
        self.0.scan(store).await
    }
    async fn pause(&self) {
        self.1.set(self.1.get() + 1);
    }
    async fn reconnect(&self) -> wallet_persist::Result<()> {
        self.0.reconnect().await
    }
    fn close(&self) {
        self.0.close()
    }
}

use wallet_persist::backend::{Backend as _, StoreRows};

/// A load decodes a large store in slices with a pause between two (in the browser, a task of its
/// own each), and still returns exactly what was written.
#[test]
fn a_large_load_pauses_between_slices_of_rows() {
    block_on(async {
        let persister = wallet_persist::Persister::open(Pausing(MemoryBackend::new(), 0.into()), Default::default())
            .await
            .expect("open");
        let wallet = wallet_id(1);
        let mut changes = sample_changeset(1);
        for index in 0..5_000u32 {
            changes.addresses.upsert(AddressEntry {
                address: format!("tb1qslice{index:05}"),
                account: 0,
                index,
                used: false,
            });
        }
        persister.store(wallet, changes.clone()).await.unwrap();
        persister.commit().await.unwrap();
        let rows = persister.backend().read(&["addresses"]).await.unwrap().remove(0).unwrap().rows.len();
        assert!((5_000..6_000).contains(&rows), "{rows}");
        let before = persister.backend().1.get();
        let (state, report) = persister.load().await.unwrap();
        assert_eq!(state.wallets[&wallet], changes);
        assert!(report.skipped.is_empty());
        // A pause after every SLICE_ROWS rows of `addresses`; every other store has few rows.
        assert_eq!((persister.backend().1.get() - before) as usize, rows / wallet_persist::backend::SLICE_ROWS);
    });
}

/// The memory backend whose next streaming read loses the connection after handing over
/// `fail_after` pieces (wallets already complete and handed on among them).
struct LosesConnectionMidRead(MemoryBackend, std::cell::Cell<Option<usize>>);

impl wallet_persist::backend::Backend for LosesConnectionMidRead {
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
        let Some(fail_after) = self.1.take() else { return self.0.read_stream(stores, groups, sink).await };
        let mut handed = 0;
        let mut cut = |event| {
            if handed == fail_after {
                return Err(Error::ConnectionLost("the browser closed the database mid-read".into()));
            }
            handed += 1;
            sink(event)
        };
        self.0.read_stream(stores, groups, &mut cut).await
    }
    async fn get(&self, store: &'static str, key: &Key) -> wallet_persist::Result<Option<Vec<u8>>> {
        self.0.get(store, key).await
    }
    async fn scan(&self, store: &'static str) -> wallet_persist::Result<StoreRows> {
        self.0.scan(store).await
    }
    async fn reconnect(&self) -> wallet_persist::Result<()> {
        self.0.reconnect().await
    }
    fn close(&self) {
        self.0.close()
    }
}

/// A load whose read loses the connection after wallets were already handed over reconnects and
/// reads again from the start: the state and the report are exactly those of an undisturbed load
/// (no wallet twice, no row counted twice), at every point the connection can be lost.
#[test]
fn a_load_that_loses_the_connection_mid_stream_starts_over_exactly() {
    block_on(async {
        let disk = MemoryBackend::new();
        let writer = wallet_persist::Persister::open(disk.reopen(), Default::default()).await.expect("open");
        for n in 1..=12 {
            writer.store(wallet_id(n), sample_changeset(n)).await.unwrap();
        }
        writer.commit().await.unwrap();
        let (expected, expected_report) = writer.load().await.unwrap();
        assert_eq!(expected.wallets.len(), 12);
        let mut pieces = 0;
        disk.read_stream(AREA_STORES, None, &mut |_| {
            pieces += 1;
            Ok(())
        })
        .await
        .unwrap();
        for fail_after in 0..pieces {
            let backend = LosesConnectionMidRead(disk.reopen(), Some(fail_after).into());
            let persister = wallet_persist::Persister::open(backend, Default::default()).await.expect("open");
            persister.backend().1.set(Some(fail_after));
            let (state, report) = persister.load().await.unwrap();
            assert_eq!(state, expected, "lost after {fail_after} of {pieces} pieces");
            assert_eq!(report, expected_report, "lost after {fail_after} of {pieces} pieces");
        }
    });
}

//! Encryption at rest on the host: the conformance suite over the encrypting backend, refusals
//! that change nothing, authentication of every row, rotation, and plain→encrypted conversion
//! interrupted at every step.

use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use wallet_persist::backend::{EncryptedBackend, FaultyBackend, MemoryBackend, Op, Row, VirtualClock};
use wallet_persist::crypto::unlock::{self, Request};
use wallet_persist::crypto::{Cipher, KdfParams, KeyRecord, Secret};
use wallet_persist::db::Db;
use wallet_persist::layout::{all_stores, CHANNEL_META, DB_META, RECORDS};
use wallet_persist::model::*;
use wallet_persist::testing::{block_on, block_on_clock, sample_changeset, wallet_id, Harness};
use wallet_persist::wallets::{FlushMode, Options, Persister};
use wallet_persist::Error;

/// Cheap Argon2id parameters: the tests check the hierarchy, not the cost.
const FAST: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };

fn passphrase(p: &str) -> Request {
    Request { secret: Secret::passphrase(p.into()).unwrap(), params: FAST }
}

fn manual() -> Options {
    Options { flush_mode: FlushMode::Manual, ..Default::default() }
}

/// Two encrypted memory databases, each unlocked with its own data key at every open.
struct Encrypted(MemoryBackend, MemoryBackend, Rc<Cipher>, Rc<Cipher>);

impl Harness for Encrypted {
    type B = EncryptedBackend<MemoryBackend>;
    async fn open(&self) -> Self::B {
        let backend = EncryptedBackend::new(self.0.reopen());
        backend.set_cipher(Some(self.2.clone()));
        backend
    }
    async fn open_other(&self) -> Self::B {
        let backend = EncryptedBackend::new(self.1.reopen());
        backend.set_cipher(Some(self.3.clone()));
        backend
    }
}

fn encrypted(_test: &str) -> Encrypted {
    let cipher = || Rc::new(Cipher::new(&wallet_persist::crypto::ops::random_key().unwrap()));
    Encrypted(MemoryBackend::new(), MemoryBackend::new(), cipher(), cipher())
}

mod conformance_encrypted {
    use super::{block_on, encrypted};
    wallet_persist::conformance_tests!(sync, block_on, encrypted);
}

/// Every row of every store, as stored.
fn snapshot(memory: &MemoryBackend) -> BTreeMap<&'static str, Vec<Row>> {
    all_stores().map(|store| (store, memory.rows(store))).collect()
}

/// Opens `memory` through the encrypting backend with `request` (creating the key when empty).
async fn open(
    memory: &MemoryBackend,
    request: Option<&Request>,
) -> Result<Persister<EncryptedBackend<MemoryBackend>>, Error> {
    let backend = EncryptedBackend::new(memory.reopen());
    unlock::unlock(&backend, request, true, None).await?;
    Persister::open(backend, manual()).await
}

/// A database with two wallets and a channel, encrypted with passphrase `p`.
fn written(p: &str) -> MemoryBackend {
    with_two_wallets_and_a_channel(Some(&passphrase(p)))
}

/// A database with two wallets and a channel, encrypted under `secret` or plain.
fn with_two_wallets_and_a_channel(secret: Option<&Request>) -> MemoryBackend {
    let memory = MemoryBackend::new();
    block_on(async {
        let persister = open(&memory, secret).await.unwrap();
        persister.store(wallet_id(1), sample_changeset(1)).await.unwrap();
        persister.store(wallet_id(2), sample_changeset(2)).await.unwrap();
        persister.commit().await.unwrap();
        persister.channels().save_meta("room-secret-channel", &"meta state".to_string()).await.unwrap();
        persister.close().await.unwrap();
    });
    memory
}

fn load(persister: &Persister<EncryptedBackend<MemoryBackend>>) -> (ClientStartState, wallet_persist::LoadReport) {
    block_on(persister.load()).unwrap()
}

#[test]
fn stored_keys_and_values_reveal_no_name() {
    let memory = written("pw");
    let cs = sample_changeset(1);
    let mut names: Vec<Vec<u8>> = vec![
        wallet_id(1).to_hex().into_bytes(),
        wallet_id(1).0.to_vec(),
        b"tb1q0001".to_vec(),
        b"wallet 1".to_vec(),
        b"wpkh(tpub1/0/*)".to_vec(),
        b"room-secret-channel".to_vec(),
        b"meta state".to_vec(),
        b"plat1".to_vec(),
    ];
    let txid = cs.transactions.0.keys().next().unwrap();
    names.push(txid.to_hex().into_bytes());
    names.push(txid.0.to_vec());
    let mut scanned = 0;
    for (store, rows) in snapshot(&memory) {
        for row in rows {
            scanned += 1;
            let mut bytes = row.value.clone();
            bytes.extend(key_to_string(&row.key).into_bytes());
            for name in &names {
                assert!(!bytes.windows(name.len()).any(|w| w == name.as_slice()), "{store}: a name is readable");
            }
            if store != DB_META {
                assert_eq!(row.value[4], wallet_persist::codec::FLAG_SEALED, "{store}: sealed");
            }
        }
    }
    assert!(scanned > 25, "{scanned} rows scanned");
}

#[test]
fn wrong_passphrase_and_missing_key_are_refused_and_change_nothing() {
    let memory = written("right");
    let before = snapshot(&memory);
    let wrong = block_on(open(&memory, Some(&passphrase("wrong")))).err().unwrap();
    assert_eq!((wrong.code(), wrong.kind()), (23, "wrong_key"));
    let key = Request { secret: Secret::key(&[3; 32]).unwrap(), params: FAST };
    assert_eq!(block_on(open(&memory, Some(&key))).err().unwrap().code(), 23);
    assert_eq!(block_on(open(&memory, None)).err().unwrap().code(), 23, "encrypted, opened without a key");
    assert_eq!(snapshot(&memory), before, "byte for byte unchanged");

    let persister = block_on(open(&memory, Some(&passphrase("right")))).unwrap();
    let (state, report) = load(&persister);
    assert!(report.skipped.is_empty());
    assert_eq!(state.wallets[&wallet_id(1)], sample_changeset(1));
    assert_eq!(state.wallets[&wallet_id(2)], sample_changeset(2));
}

#[test]
fn a_plain_database_opened_with_a_key_is_refused_unchanged() {
    let memory = MemoryBackend::new();
    block_on(async {
        let persister = open(&memory, None).await.unwrap();
        persister.store(wallet_id(5), sample_changeset(5)).await.unwrap();
        persister.close().await.unwrap();
    });
    let before = snapshot(&memory);
    let error = block_on(open(&memory, Some(&passphrase("pw")))).err().unwrap();
    assert!(matches!(error, Error::NotEncrypted(_)), "{error}");
    assert_eq!(error.code(), 1);
    assert_eq!(snapshot(&memory), before);
}

/// Rewrites the one stored row of `store` whose opened key is `key`.
fn stored_row(memory: &MemoryBackend, cipher: &Cipher, store: &'static str, key: &Key) -> Row {
    memory
        .rows(store)
        .into_iter()
        .find(|row| {
            wallet_persist::backend::encrypted::open_value(cipher, store, &row.key, &row.value).map(|r| r.key).as_ref()
                == Ok(key)
        })
        .expect("the row")
}

#[test]
fn edited_truncated_and_moved_rows_are_skipped_and_reported() {
    let memory = written("pw");
    let backend = EncryptedBackend::new(memory.reopen());
    block_on(unlock::unlock(&backend, Some(&passphrase("pw")), false, None)).unwrap();
    let cipher = backend.cipher().unwrap();
    let a = wallet_id(1);
    let cs = sample_changeset(1);
    let record_key = |k: &str| vec![KeyPart::Text(a.to_hex()), KeyPart::Text("app".into()), KeyPart::Text(k.into())];
    let original = stored_row(&memory, &cipher, RECORDS, &record_key("k1"));

    // A bit flip anywhere in a sealed value, one at a time.
    for bit in [0, 8 * 5, 8 * 20, 8 * (original.value.len() - 1) + 7] {
        let mut edited = original.value.clone();
        edited[bit / 8] ^= 1 << (bit % 8);
        memory.put_raw(RECORDS, original.key.clone(), edited);
        let persister = block_on(Persister::open(
            {
                let b = EncryptedBackend::new(memory.reopen());
                b.set_cipher(Some(cipher.clone()));
                b
            },
            manual(),
        ))
        .unwrap();
        let (state, report) = load(&persister);
        assert_eq!(report.skipped.len(), 1, "bit {bit}: {:?}", report.skipped);
        assert_eq!(report.skipped[0].store, RECORDS);
        assert!(state.wallets[&a].records.0.is_empty(), "bit {bit}: the edited record is not loaded");
        assert_eq!(state.wallets[&a].utxos, cs.utxos, "the other rows still load");
    }
    // Truncated by one byte, then by the whole tag.
    for cut in [1, 16] {
        memory.put_raw(RECORDS, original.key.clone(), original.value[..original.value.len() - cut].to_vec());
        let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
        let (_, report) = load(&persister);
        assert_eq!(report.skipped.len(), 1, "cut {cut}");
        assert_eq!(report.skipped[0].code, 11);
    }
    memory.put_raw(RECORDS, original.key.clone(), original.value.clone());

    // The record of wallet 2 copied over wallet 1's record key: same store, another key.
    let theirs = stored_row(&memory, &cipher, RECORDS, &{
        let b = wallet_id(2);
        vec![KeyPart::Text(b.to_hex()), KeyPart::Text("app".into()), KeyPart::Text("k2".into())]
    });
    memory.put_raw(RECORDS, original.key.clone(), theirs.value.clone());
    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    let (state, report) = load(&persister);
    assert_eq!(report.skipped.len(), 1, "moved to another key: {:?}", report.skipped);
    assert!(state.wallets[&a].records.0.is_empty());
    assert_eq!(state.wallets[&wallet_id(2)].records, sample_changeset(2).records, "the original still loads");
    drop(persister);
    memory.put_raw(RECORDS, original.key.clone(), original.value.clone());

    // The same row under the same key in another store.
    memory.put_raw("platform_addresses", original.key.clone(), original.value.clone());
    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    let (state, report) = load(&persister);
    assert_eq!(report.skipped.len(), 1, "moved to another store: {:?}", report.skipped);
    assert_eq!(report.skipped[0].store, "platform_addresses");
    assert_eq!(state.wallets[&a], cs);
}

/// A load of one wallet reads the range of its hashed id: a row sealed for another wallet but
/// stored in that range (only a key holder can write one) is reported, never loaded; a load of
/// the other wallet does not read it.
#[test]
fn a_row_sealed_for_another_wallet_in_a_wallets_range_is_reported() {
    let memory = written("pw");
    let backend = EncryptedBackend::new(memory.reopen());
    block_on(unlock::unlock(&backend, Some(&passphrase("pw")), false, None)).unwrap();
    let cipher = backend.cipher().unwrap();
    let (a, b) = (wallet_id(1), wallet_id(2));
    let real = vec![KeyPart::Text(b.to_hex()), KeyPart::Text("app".into()), KeyPart::Text("k9".into())];
    let stored: Key = [a.to_hex(), "app".into(), "k9".into()].map(|t| KeyPart::Text(cipher.hash_text(&t))).into();
    let record = Record { namespace: "app".into(), key: "k9".into(), value: Bytes::from(vec![9u8]) };
    let envelope = wallet_persist::codec::encode(&(b, &record), usize::MAX).unwrap();
    let sealed = wallet_persist::backend::encrypted::seal_value(&cipher, RECORDS, &real, &stored, &envelope).unwrap();
    memory.put_raw(RECORDS, stored, sealed);

    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    let (state, report) = block_on(persister.load_wallets(&[a].into())).unwrap();
    assert_eq!(state.wallets, [(a, sample_changeset(1))].into());
    let skipped: Vec<_> = report.skipped.iter().map(|s| (s.store, s.key.clone(), s.code)).collect();
    assert_eq!(skipped, vec![(RECORDS, key_to_string(&real), 13)]);
    let (state, report) = block_on(persister.load_wallets(&[b].into())).unwrap();
    assert_eq!(state.wallets, [(b, sample_changeset(2))].into());
    assert!(report.skipped.is_empty());
}

#[test]
fn an_edited_channel_row_fails_load_channel() {
    let memory = written("pw");
    let rows = memory.rows(CHANNEL_META);
    assert_eq!(rows.len(), 1);
    let mut value = rows[0].value.clone();
    let last = value.len() - 1;
    value[last] ^= 0x80;
    memory.put_raw(CHANNEL_META, rows[0].key.clone(), value);
    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    let error = block_on(persister.channels().load_channel::<String>("room-secret-channel")).unwrap_err();
    assert_eq!(error.code(), 11, "{error}");
}

#[test]
fn changing_the_passphrase_rewraps_only_the_key() {
    let memory = written("old");
    let rows_before: Vec<_> = all_stores().filter(|s| *s != DB_META).map(|s| memory.rows(s)).collect();
    let db = block_on(Db::open(EncryptedBackend::new(memory.reopen()), false, None)).unwrap();
    let wrong =
        block_on(unlock::change_secret(&db, &Secret::passphrase("nope".into()).unwrap(), &passphrase("new"), false));
    assert_eq!(wrong.unwrap_err().code(), 23);
    block_on(unlock::change_secret(&db, &Secret::passphrase("old".into()).unwrap(), &passphrase("new"), false))
        .unwrap();
    let rows_after: Vec<_> = all_stores().filter(|s| *s != DB_META).map(|s| memory.rows(s)).collect();
    assert_eq!(rows_before, rows_after, "no sealed row was rewritten");
    assert_eq!(block_on(open(&memory, Some(&passphrase("old")))).err().unwrap().code(), 23);
    let persister = block_on(open(&memory, Some(&passphrase("new")))).unwrap();
    assert_eq!(load(&persister).0.wallets[&wallet_id(1)], sample_changeset(1));

    // From a passphrase to an app key, and the key alone opens it.
    drop(persister);
    let key = Request { secret: Secret::key(&[7; 32]).unwrap(), params: FAST };
    block_on(unlock::change_secret(&db, &Secret::passphrase("new".into()).unwrap(), &key, false)).unwrap();
    assert_eq!(block_on(open(&memory, Some(&passphrase("new")))).err().unwrap().code(), 23);
    let persister = block_on(open(&memory, Some(&key))).unwrap();
    assert_eq!(load(&persister).0.wallets[&wallet_id(2)], sample_changeset(2));
}

/// A plain database with two wallets and a channel.
fn plain() -> MemoryBackend {
    with_two_wallets_and_a_channel(None)
}

#[test]
fn encrypting_a_plain_database_keeps_every_row() {
    let memory = plain();
    let persister = block_on(open(&memory, None)).unwrap();
    let (plain_state, _) = load(&persister);
    let mut phases = Vec::new();
    let report = block_on(persister.exclusive(
        "encrypting",
        unlock::encrypt(persister.db(), persister.backend(), &passphrase("pw"), false, &mut |phase, done, total| {
            phases.push((phase, done, total))
        }),
    ))
    .unwrap();
    assert_eq!(report.unreadable, 0);
    assert_eq!(report.rows as usize, 2 * 13 + 1, "13 area rows per wallet and one channel meta: {report:?}");
    assert_eq!(phases.last(), Some(&("write", report.rows as u64, report.rows as u64)));
    // The open store keeps working, sealed.
    block_on(persister.store(wallet_id(3), sample_changeset(3))).unwrap();
    block_on(persister.commit()).unwrap();
    block_on(persister.close()).unwrap();

    assert_eq!(block_on(open(&memory, None)).err().unwrap().code(), 23);
    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    let (state, report) = load(&persister);
    assert!(report.skipped.is_empty());
    assert_eq!(state.wallets[&wallet_id(1)], plain_state.wallets[&wallet_id(1)]);
    assert_eq!(state.wallets[&wallet_id(2)], plain_state.wallets[&wallet_id(2)]);
    assert_eq!(state.wallets[&wallet_id(3)], sample_changeset(3));
    let meta = block_on(persister.channels().load_channel::<String>("room-secret-channel")).unwrap();
    assert_eq!(meta.meta.as_deref(), Some("meta state"));
    assert!(memory.rows(RECORDS).iter().all(|r| r.value[4] == wallet_persist::codec::FLAG_SEALED));
}

/// How one interruption is armed on the backend under the encrypting one.
type Arm = fn(&FaultyBackend<MemoryBackend>);

#[test]
fn encrypting_interrupted_at_every_step_leaves_the_plain_database() {
    let memory = plain();
    let before = snapshot(&memory);
    // The conversion reads the key record, reads every store (row by row if a bulk read fails),
    // then writes once. Fail each step in turn, and kill it while its write is in flight.
    let steps: [(&str, Arm); 5] = [
        ("key record read", |f| f.fail_next(Op::Read, 1, Error::TransactionAborted("killed".into()))),
        ("bulk read", |f| f.fail_next(Op::Read, 2, Error::TransactionAborted("killed".into()))),
        ("row-by-row fallback", |f| {
            f.fail_store_read(RECORDS, 1, Error::BlobDecode("lost".into()));
            f.fail_next(Op::Scan, 1, Error::TransactionAborted("killed".into()));
        }),
        ("the write", |f| f.fail_next(Op::Write, 1, Error::QuotaExceeded("full".into()))),
        ("killed during the write", |f| f.pause_next(Op::Write)),
    ];
    for (step, arm) in steps {
        let backend = EncryptedBackend::new(FaultyBackend::new(memory.reopen()));
        let persister = block_on(Persister::open(backend, manual())).unwrap();
        arm(persister.backend().inner());
        let mut progress = |_: &'static str, _: u64, _: u64| {};
        let request = passphrase("pw");
        let mut work = Box::pin(persister.exclusive(
            "encrypting",
            unlock::encrypt(persister.db(), persister.backend(), &request, false, &mut progress),
        ));
        let mut cx = Context::from_waker(Waker::noop());
        let mut outcome = None;
        for _ in 0..100 {
            if let Poll::Ready(result) = work.as_mut().poll(&mut cx) {
                outcome = Some(result);
                break;
            }
        }
        match outcome {
            Some(result) => assert!(result.is_err(), "{step}: must fail"),
            None => assert!(persister.backend().inner().is_paused(), "{step}: held in its write"),
        }
        // The page dies here: the future and the store are dropped without running further.
        drop(work);
        assert!(!persister.backend().is_encrypted(), "{step}");
        drop(persister);
        drop(request);
        assert_eq!(snapshot(&memory), before, "{step}: exactly the old state");
        assert_eq!(block_on(open(&memory, Some(&passphrase("pw")))).err().unwrap().code(), 1, "{step}");
        let persister = block_on(open(&memory, None)).unwrap();
        assert_eq!(load(&persister).0.wallets[&wallet_id(1)], sample_changeset(1), "{step}: opens plain");
    }
    let persister = block_on(open(&memory, None)).unwrap();
    block_on(persister.exclusive(
        "encrypting",
        unlock::encrypt(persister.db(), persister.backend(), &passphrase("pw"), false, &mut |_, _, _| {}),
    ))
    .unwrap();
    let again = block_on(persister.exclusive(
        "encrypting",
        unlock::encrypt(persister.db(), persister.backend(), &passphrase("pw"), false, &mut |_, _, _| {}),
    ));
    assert_eq!(again.unwrap_err().code(), 1, "already encrypted");
    assert!(block_on(KeyRecord::read(&memory)).unwrap().is_some());
}

#[test]
fn staged_changes_block_encrypting() {
    let memory = plain();
    let persister = block_on(open(&memory, None)).unwrap();
    persister.stage(wallet_id(9), sample_changeset(9)).unwrap();
    let error = block_on(persister.exclusive(
        "encrypting",
        unlock::encrypt(persister.db(), persister.backend(), &passphrase("pw"), false, &mut |_, _, _| {}),
    ))
    .unwrap_err();
    assert_eq!(error.code(), 1);
    assert!(!persister.backend().is_encrypted());
}

#[test]
fn close_wipes_the_keys() {
    let memory = written("pw");
    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    assert!(persister.backend().is_encrypted());
    block_on(persister.close()).unwrap();
    assert!(!persister.backend().is_encrypted());
}

/// A wallet record that fails authentication fails only the wallets that need it as a parent, with
/// the read error, and for good: the healthy wallet commits, nothing stays staged, close is clean.
#[test]
fn an_unreadable_parent_fails_only_its_wallet() {
    let memory = written("pw");
    let record = memory.rows(wallet_persist::layout::WALLETS)[0].clone();
    let mut edited = record.value.clone();
    *edited.last_mut().unwrap() ^= 1;
    memory.put_raw(wallet_persist::layout::WALLETS, record.key.clone(), edited);

    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    // Neither changeset brings its wallet record: both parents are read from disk.
    for i in [1u8, 2] {
        let mut changes = sample_changeset(i + 10);
        changes.wallet = None;
        changes.identity_keys = Default::default();
        changes.token_balances = Default::default();
        persister.stage(wallet_id(i), changes).unwrap();
    }
    let report = block_on(persister.commit()).unwrap();
    let (healthy, broken): (Vec<_>, Vec<_>) =
        [wallet_id(1), wallet_id(2)].into_iter().partition(|w| report.succeeded.contains(w));
    assert_eq!((healthy.len(), broken.len()), (1, 1), "{report:?}");
    assert_eq!(report.failed.iter().map(|f| (f.wallet_id, f.code)).collect::<Vec<_>>(), vec![(broken[0], 11)]);
    assert!(report.still_pending.is_empty());
    assert!(persister.staged().is_empty(), "the failed wallet is reported, not retried forever");
    let closed = block_on(persister.close()).unwrap();
    assert!(closed.is_complete(), "{closed:?}");
}

/// A refused reconnect (fault injection) keeps the encrypting backend's cipher: once a reconnect
/// succeeds, the staged wallet is written sealed, and no plaintext row reaches the disk.
#[test]
fn a_refused_reconnect_keeps_the_rows_sealed() {
    let memory = MemoryBackend::new();
    let encrypted = EncryptedBackend::new(memory.reopen());
    block_on(unlock::unlock(&encrypted, Some(&passphrase("pw")), true, None)).unwrap();
    let persister = block_on(Persister::open(FaultyBackend::new(encrypted), manual())).unwrap();
    persister.stage(wallet_id(5), sample_changeset(5)).unwrap();
    persister.backend().lose_connection();
    persister.backend().fail_reconnects(1);
    assert_eq!(block_on(persister.flush()).unwrap_err().code(), 4, "the refused reconnect is transient");
    block_on(persister.flush()).unwrap();
    assert!(persister.backend().inner().is_encrypted());
    let plain = KeyPart::Text(wallet_id(5).to_hex());
    for store in all_stores() {
        assert!(memory.rows(store).iter().all(|row| row.key.first() != Some(&plain)), "plaintext key in {store}");
    }
    block_on(persister.close()).unwrap();
    let reopened = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    assert_eq!(load(&reopened).0.wallets[&wallet_id(5)], sample_changeset(5));
}

/// A registration's pending row written while `encrypt()` rewrites the database waits for it, and
/// is then written sealed: nothing of the wallet lands in the clear, and the promote finds it.
#[test]
fn a_pending_registration_waits_for_encrypt() {
    let memory = MemoryBackend::new();
    let persister =
        block_on(Persister::open(EncryptedBackend::new(FaultyBackend::new(memory.reopen())), manual())).unwrap();
    persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
    block_on(persister.flush()).unwrap();
    persister.backend().inner().pause_next(Op::Write);
    let mut progress = |_: &'static str, _: u64, _: u64| {};
    let request = passphrase("pw");
    let mut encrypting =
        Box::pin(persister.exclusive(
            "encrypting",
            unlock::encrypt(persister.db(), persister.backend(), &request, false, &mut progress),
        ));
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..50 {
        assert!(encrypting.as_mut().poll(&mut cx).is_pending());
    }
    assert!(persister.backend().inner().is_paused(), "encrypt is held in its write");

    let record = WalletChangeSet { wallet: sample_changeset(2).wallet, ..Default::default() };
    let mut pending = Box::pin(persister.store_pending(wallet_id(2), record.clone()));
    for _ in 0..50 {
        assert!(pending.as_mut().poll(&mut cx).is_pending(), "the pending row waits for the rewrite");
    }
    persister.backend().inner().resume();
    block_on(encrypting).unwrap();
    block_on(pending).unwrap();
    block_on(persister.promote(wallet_id(2))).unwrap();

    let plain = KeyPart::Text(wallet_id(2).to_hex());
    for store in all_stores() {
        assert!(memory.rows(store).iter().all(|row| row.key.first() != Some(&plain)), "plaintext key in {store}");
    }
    block_on(persister.close()).unwrap();
    let reopened = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    let wallets = load(&reopened).0.wallets;
    assert_eq!(wallets[&wallet_id(2)], record);
    assert_eq!(wallets[&wallet_id(1)], sample_changeset(1));
}

/// A seal that reads back other than what was sealed (an engine miscomputing inside the cipher:
/// seen on WebKitGTK) is made again; the rows on disk are exactly the staged ones after a reopen.
#[test]
fn a_seal_that_reads_back_wrong_is_sealed_again() {
    use wallet_persist::backend::encrypted::faults::miscompute_next_seals;
    let memory = MemoryBackend::new();
    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    persister.stage(wallet_id(3), sample_changeset(3)).unwrap();
    persister.stage(wallet_id(4), sample_changeset(4)).unwrap();
    // Two wrong seals in a row for the first row, so it takes the third attempt.
    miscompute_next_seals(2);
    let report = block_on(persister.commit());
    miscompute_next_seals(0);
    let report = report.unwrap();
    assert_eq!(report.succeeded, vec![wallet_id(3), wallet_id(4)], "{report:?}");
    block_on(persister.close()).unwrap();

    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    let (state, report) = block_on(persister.load()).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(state.wallets.len(), 2);
    assert_eq!(state.wallets[&wallet_id(3)], sample_changeset(3));
    assert_eq!(state.wallets[&wallet_id(4)], sample_changeset(4));
}

/// A seal that keeps reading back wrong fails its wallet's write with `internal` (99), reported:
/// nothing of that wallet reaches the disk, the other wallet lands, and no row is skipped on load.
#[test]
fn a_seal_that_keeps_reading_back_wrong_writes_nothing_of_its_wallet() {
    use wallet_persist::backend::encrypted::faults::miscompute_next_seals;
    let memory = MemoryBackend::new();
    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    persister.stage(wallet_id(3), sample_changeset(3)).unwrap();
    block_on(persister.commit()).unwrap();
    let mut newer = sample_changeset(3);
    newer.wallet.as_mut().unwrap().label = "renamed".into();
    persister.stage(wallet_id(3), newer).unwrap();
    persister.stage(wallet_id(4), sample_changeset(4)).unwrap();
    // Every seal of the batch goes wrong, then every seal of the per-wallet retry of wallet 3.
    miscompute_next_seals(1_000);
    let mut failed = block_on(persister.commit()).unwrap();
    miscompute_next_seals(0);
    // The whole batch failed fatally, so each wallet was retried alone; with the fault still on
    // both fail. Commit wallet 4 again with a working cipher.
    failed.failed.sort_by_key(|f| f.wallet_id);
    assert_eq!(
        failed.failed.iter().map(|f| (f.wallet_id, f.code)).collect::<Vec<_>>(),
        vec![(wallet_id(3), 99), (wallet_id(4), 99)]
    );
    assert!(failed.failed[0].message.contains("sealing read back different bytes 3 times"), "{failed:?}");
    assert!(persister.staged().is_empty(), "a fatal failure drops the changes and says so");
    block_on(persister.close()).unwrap();

    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    let (state, report) = block_on(persister.load()).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(state.wallets.keys().copied().collect::<Vec<_>>(), vec![wallet_id(3)]);
    assert_eq!(state.wallets[&wallet_id(3)], sample_changeset(3), "the first commit's rows, untouched");
}

// `encrypt`, `changePassphrase` and the unlock at open go through the store's guarded path: a
// deadline on time without progress, and (after open) one reconnect when the connection is lost.

const TIMEOUT_MS: u32 = 30_000;

/// A store over `memory` with faults under the encrypting layer, bounded by `clock`.
fn guarded(memory: &MemoryBackend, clock: &VirtualClock) -> Persister<EncryptedBackend<FaultyBackend<MemoryBackend>>> {
    let options = Options { deadline: Some(clock.deadline(TIMEOUT_MS)), ..manual() };
    block_on_clock(clock, Persister::open(EncryptedBackend::new(FaultyBackend::new(memory.reopen())), options)).unwrap()
}

fn encrypt_guarded(
    clock: &VirtualClock,
    persister: &Persister<EncryptedBackend<FaultyBackend<MemoryBackend>>>,
) -> Result<unlock::EncryptReport, Error> {
    let request = passphrase("pw");
    let mut progress = |_: &'static str, _: u64, _: u64| {};
    let work = unlock::encrypt(persister.db(), persister.backend(), &request, false, &mut progress);
    block_on_clock(clock, persister.exclusive("encrypting", work))
}

/// Every wallet of `memory` opened with `secret` (`None`: plain), exactly as `expected`.
fn assert_opens_with(memory: &MemoryBackend, secret: Option<&Request>, expected: &[(WalletId, WalletChangeSet)]) {
    let persister = block_on(open(memory, secret)).unwrap();
    let (state, report) = load(&persister);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(state.wallets, expected.iter().cloned().collect());
}

fn two_wallets() -> Vec<(WalletId, WalletChangeSet)> {
    vec![(wallet_id(1), sample_changeset(1)), (wallet_id(2), sample_changeset(2))]
}

#[test]
fn encrypt_reconnects_when_the_connection_is_lost_during_its_write() {
    let (memory, clock) = (plain(), VirtualClock::default());
    let persister = guarded(&memory, &clock);
    let faults = persister.backend().inner();
    faults.fail_next(Op::Write, 1, Error::ConnectionLost("injected: closed under us".into()));
    let report = encrypt_guarded(&clock, &persister).expect("reconnected once and written");
    assert_eq!((report.rows, faults.reconnects()), (2 * 13 + 1, 1));
    assert!(persister.backend().is_encrypted());
    block_on_clock(&clock, persister.close()).unwrap();
    assert!(memory.rows(RECORDS).iter().all(|r| r.value[4] == wallet_persist::codec::FLAG_SEALED));
    assert_opens_with(&memory, Some(&passphrase("pw")), &two_wallets());
    assert_eq!(block_on(open(&memory, None)).err().unwrap().code(), 23);
}

/// The conversion committed, then the connection went before its answer: the reconnect finds
/// the key record and turns the cipher on, and the write is made again. The retry must write the
/// rows sealed once (as the first attempt did), not seal the sealed rows a second time.
#[test]
fn an_encrypt_that_lands_and_loses_its_connection_seals_every_row_once() {
    let (memory, clock) = (plain(), VirtualClock::default());
    let persister = guarded(&memory, &clock);
    let faults = persister.backend().inner();
    faults.lose_after_commit(1);
    let report = encrypt_guarded(&clock, &persister).expect("reconnected once and written");
    assert_eq!((report.rows, faults.reconnects()), (2 * 13 + 1, 1));
    assert!(persister.backend().is_encrypted());
    persister.stage(wallet_id(3), sample_changeset(3)).unwrap();
    assert_eq!(block_on_clock(&clock, persister.commit()).unwrap().succeeded, vec![wallet_id(3)]);
    block_on_clock(&clock, persister.close()).unwrap();
    let mut expected = two_wallets();
    expected.push((wallet_id(3), sample_changeset(3)));
    assert_opens_with(&memory, Some(&passphrase("pw")), &expected);
}

#[test]
fn a_stalled_encrypt_times_out_and_leaves_the_plain_database() {
    let (memory, clock) = (plain(), VirtualClock::default());
    let before = snapshot(&memory);
    let persister = guarded(&memory, &clock);
    persister.backend().inner().hang(Op::Write);
    let error = encrypt_guarded(&clock, &persister).unwrap_err();
    assert_eq!((error.code(), error.is_transient()), (18, true), "{error:?}");
    assert!(!persister.backend().is_encrypted());
    assert_eq!(snapshot(&memory), before, "exactly the old state");
    // The next call reconnects (the wedged write is gone), finds no key record, stays plain.
    let (state, _) = block_on_clock(&clock, persister.load()).unwrap();
    assert_eq!(state.wallets, two_wallets().into_iter().collect());
    assert!(!persister.backend().is_encrypted());
    block_on_clock(&clock, persister.close()).unwrap();
    assert_eq!(snapshot(&memory), before);
    assert_opens_with(&memory, None, &two_wallets());
}

/// The conversion committed but its answer never came: `encrypt` rejects 18, and the next call's
/// reconnect finds the key record, so what is written from then on is sealed, never plain.
#[test]
fn an_encrypt_that_lands_after_its_deadline_seals_every_later_write() {
    let (memory, clock) = (plain(), VirtualClock::default());
    let persister = guarded(&memory, &clock);
    persister.backend().inner().ack_late(1);
    assert_eq!(encrypt_guarded(&clock, &persister).unwrap_err().code(), 18);
    assert!(block_on(KeyRecord::read(&memory)).unwrap().is_some(), "the conversion landed late");
    persister.stage(wallet_id(3), sample_changeset(3)).unwrap();
    let report = block_on_clock(&clock, persister.commit()).unwrap();
    assert_eq!(report.succeeded, vec![wallet_id(3)]);
    assert!(persister.backend().is_encrypted(), "the reconnect learned that it landed");
    block_on_clock(&clock, persister.close()).unwrap();
    let plain = KeyPart::Text(wallet_id(3).to_hex());
    for store in all_stores() {
        assert!(memory.rows(store).iter().all(|row| row.key.first() != Some(&plain)), "plaintext key in {store}");
    }
    let mut expected = two_wallets();
    expected.push((wallet_id(3), sample_changeset(3)));
    assert_opens_with(&memory, Some(&passphrase("pw")), &expected);
}

#[test]
fn change_passphrase_reconnects_once_and_times_out_on_a_stall() {
    let (memory, clock) = (written("old"), VirtualClock::default());
    let old = || Secret::passphrase("old".into()).unwrap();
    let persister = {
        let options = Options { deadline: Some(clock.deadline(TIMEOUT_MS)), ..manual() };
        let backend = EncryptedBackend::new(FaultyBackend::new(memory.reopen()));
        block_on(unlock::unlock(&backend, Some(&passphrase("old")), false, None)).unwrap();
        block_on_clock(&clock, Persister::open(backend, options)).unwrap()
    };
    let faults = persister.backend().inner();

    // A stall: 18, and the record on disk is the old one.
    let before = snapshot(&memory);
    faults.hang(Op::Write);
    let error =
        block_on_clock(&clock, unlock::change_secret(persister.db(), &old(), &passphrase("new"), false)).unwrap_err();
    assert_eq!((error.code(), error.is_transient()), (18, true), "{error:?}");
    assert_eq!(snapshot(&memory), before);

    // A lost connection: one reconnect (the stalled one's included), then the new secret lands.
    faults.fail_next(Op::Write, 1, Error::ConnectionLost("injected: closed under us".into()));
    let reconnects = faults.reconnects();
    block_on_clock(&clock, unlock::change_secret(persister.db(), &old(), &passphrase("new"), false)).unwrap();
    assert_eq!(faults.reconnects() - reconnects, 2, "the stalled connection's, then the lost one's");
    block_on_clock(&clock, persister.close()).unwrap();
    assert_eq!(block_on(open(&memory, Some(&passphrase("old")))).err().unwrap().code(), 23);
    assert_opens_with(&memory, Some(&passphrase("new")), &two_wallets());
}

#[test]
fn unlock_at_open_is_bounded_and_a_lost_connection_is_retryable() {
    let (memory, clock) = (MemoryBackend::new(), VirtualClock::default());
    let deadline = clock.deadline(TIMEOUT_MS);
    let backend = EncryptedBackend::new(FaultyBackend::new(memory.reopen()));
    backend.inner().hang(Op::Write);
    let error =
        block_on_clock(&clock, unlock::unlock(&backend, Some(&passphrase("pw")), true, Some(&deadline))).unwrap_err();
    assert_eq!((error.code(), error.is_transient()), (18, true), "{error:?}");
    assert!(!backend.is_encrypted());
    assert_eq!(snapshot(&memory), snapshot(&MemoryBackend::new()), "nothing written");

    let backend = EncryptedBackend::new(FaultyBackend::new(memory.reopen()));
    backend.inner().lose_connection();
    let error =
        block_on_clock(&clock, unlock::unlock(&backend, Some(&passphrase("pw")), true, Some(&deadline))).unwrap_err();
    assert_eq!((error.code(), error.is_transient()), (7, true), "{error:?}");
    assert_eq!(snapshot(&memory), snapshot(&MemoryBackend::new()), "nothing written");

    // Opened again, it creates the key.
    let backend = EncryptedBackend::new(FaultyBackend::new(memory.reopen()));
    block_on_clock(&clock, unlock::unlock(&backend, Some(&passphrase("pw")), true, Some(&deadline))).unwrap();
    assert!(block_on(KeyRecord::read(&memory)).unwrap().is_some());
}

/// The same with more parents wanted than are read one by one (they are read in bulk first): the
/// wallet whose record fails authentication fails with the read error (11), as with few, and the
/// nine others commit.
#[test]
fn an_unreadable_parent_among_many_fails_only_its_wallet_with_the_read_error() {
    let memory = MemoryBackend::new();
    let wallets: Vec<WalletId> = (1..=10).map(wallet_id).collect();
    block_on(async {
        let persister = open(&memory, Some(&passphrase("pw"))).await.unwrap();
        for (i, wallet) in wallets.iter().enumerate() {
            persister.store(*wallet, sample_changeset(i as u8 + 1)).await.unwrap();
        }
        persister.commit().await.unwrap();
        persister.close().await.unwrap();
    });
    let records = memory.rows(wallet_persist::layout::WALLETS);
    assert_eq!(records.len(), 10);
    let record = records[0].clone();
    let mut edited = record.value.clone();
    *edited.last_mut().unwrap() ^= 1;
    memory.put_raw(wallet_persist::layout::WALLETS, record.key.clone(), edited);

    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    for (i, wallet) in wallets.iter().enumerate() {
        let mut changes = sample_changeset(i as u8 + 21);
        changes.wallet = None;
        changes.identity_keys = Default::default();
        changes.token_balances = Default::default();
        persister.stage(*wallet, changes).unwrap();
    }
    let report = block_on(persister.commit()).unwrap();
    assert_eq!(report.succeeded.len(), 9, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].code, 11, "{report:?}");
    assert!(!report.succeeded.contains(&report.failed[0].wallet_id));
    assert!(report.still_pending.is_empty());
    assert!(persister.staged().is_empty());
    block_on(persister.close()).unwrap();
}

/// The first history write of a session learns the channel's seqs from one read of its history.
/// A row that failed authentication there (edited, or opened wrong by a miscomputing engine) was
/// left out of what it learnt: with the highest seq, the next append was put at that very seq,
/// over a row this store could not read, and reported written; an evict of its id deleted
/// nothing. As `loadChannel`, the write now refuses (11) and changes nothing.
#[test]
fn a_history_write_never_plans_over_a_row_it_could_not_read() {
    use wallet_persist::channels::{HistoryEntry, HistoryUpdate};
    use wallet_persist::layout::CHANNEL_HISTORY;
    let memory = MemoryBackend::new();
    let entry = |id: &str| HistoryEntry { id: id.into(), bytes: Bytes::from(vec![1, 2, 3]), timestamp_ms: None };
    block_on(async {
        let persister = open(&memory, Some(&passphrase("pw"))).await.unwrap();
        let append = HistoryUpdate { append: vec![entry("m0"), entry("m1")], evict: vec![] };
        persister.channels().update_history("chat", &append).await.unwrap();
        persister.close().await.unwrap();
    });
    let rows = memory.rows(CHANNEL_HISTORY);
    let last = rows.iter().find(|row| row.key.last() == Some(&KeyPart::Num(1))).expect("seq 1").clone();
    let mut edited = last.value.clone();
    *edited.last_mut().unwrap() ^= 1;
    memory.put_raw(CHANNEL_HISTORY, last.key.clone(), edited);
    let before = snapshot(&memory);

    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    let append = HistoryUpdate { append: vec![entry("m2")], evict: vec![] };
    let error = block_on(persister.channels().update_history("chat", &append)).unwrap_err();
    assert_eq!(error.code(), 11, "{error}");
    let evict = HistoryUpdate { append: vec![], evict: vec!["m1".into()] };
    assert!(block_on(persister.channels().update_history("chat", &evict)).is_err());
    assert_eq!(snapshot(&memory), before, "nothing written over the unreadable row");
    block_on(persister.close()).unwrap();
}

/// An empty database stamped by a newer schema, as that build creates it (stamp and `floors`).
fn stamped_newer(floors: Option<wallet_persist::db::schema::Floors>) -> (MemoryBackend, u16) {
    use wallet_persist::backend::{Backend, WriteBatch, WriteOp};
    use wallet_persist::db::schema;
    let newer = wallet_persist::codec::SCHEMA_VERSION + 1;
    let memory = MemoryBackend::new();
    let stamp = wallet_persist::codec::encode_as(&"a later build", newer, usize::MAX).unwrap();
    let mut ops = vec![WriteOp::Put { store: DB_META, key: schema::stamp_key(), value: stamp }];
    ops.extend(floors.map(|floors| schema::floors_op(floors).unwrap()));
    block_on(memory.write(&WriteBatch::new(ops))).unwrap();
    (memory, newer)
}

/// Opening with `encryption` a database this build may not write (a newer schema whose floors
/// refuse it, or allow it only to read) creates no key record in it: the open is refused with
/// code 9 (as without `encryption`) and the database is byte for byte as it was. Before, the key
/// record was written before the schema gate ran, and the gate's refusal then left it behind.
#[test]
fn an_encrypted_open_of_a_newer_database_writes_nothing() {
    use wallet_persist::db::schema::Floors;
    let current = wallet_persist::codec::SCHEMA_VERSION;
    for floors in [
        None,
        Some(Floors { read: current + 1, write: current + 1 }),
        Some(Floors { read: current, write: current + 1 }),
    ] {
        let (memory, newer) = stamped_newer(floors);
        let before = snapshot(&memory);
        let refused = block_on(open(&memory, Some(&passphrase("pw")))).err().expect("refused");
        assert_eq!(refused, Error::SchemaVersionUnsupported { found: newer, supported: current }, "floors {floors:?}");
        assert_eq!(snapshot(&memory), before, "floors {floors:?}: nothing written");
    }
    // Floors that let this build write: the key is created, and the database opens encrypted.
    let (memory, _) = stamped_newer(Some(Floors { read: current, write: current }));
    let persister = block_on(open(&memory, Some(&passphrase("pw")))).unwrap();
    assert!(persister.backend().is_encrypted());
    block_on(persister.close()).unwrap();
    assert!(memory.rows(DB_META).iter().any(|row| row.key == wallet_persist::crypto::record::record_key()));
}

/// Someone who can edit the profile deletes the key record of an encrypted database. Opening it
/// with its secret is refused with `wrong_key` (23: its rows are sealed, no secret can open them
/// without the record), not `invalid_argument` "not encrypted, open it plain and call encrypt()";
/// and `encrypt()` on it, opened plain, is refused the same way: before, it sealed the sealed rows
/// again under a new key (their hashed keys taken for real ones), and the database then opened as
/// an encrypted one holding nothing readable. Either way nothing is written.
#[test]
fn a_removed_key_record_is_not_taken_for_a_plain_database() {
    use wallet_persist::backend::{Backend, WriteBatch, WriteOp};
    let memory = written("pw");
    let strip = WriteOp::Delete { store: DB_META, key: wallet_persist::crypto::record::record_key() };
    block_on(memory.write(&WriteBatch::new(vec![strip]))).unwrap();
    let before = snapshot(&memory);

    let refused = block_on(open(&memory, Some(&passphrase("pw")))).err().expect("refused");
    assert_eq!(refused.code(), 23, "{refused}");
    assert_eq!(snapshot(&memory), before);

    let persister = block_on(open(&memory, None)).unwrap();
    let request = passphrase("new");
    let mut progress = |_: &'static str, _: u64, _: u64| {};
    let work = unlock::encrypt(persister.db(), persister.backend(), &request, false, &mut progress);
    let refused = block_on(persister.exclusive("encrypting", work)).expect_err("encrypt refused");
    assert_eq!(refused.code(), 23, "{refused}");
    block_on(persister.close()).unwrap();
    assert_eq!(snapshot(&memory), before, "nothing written");
}

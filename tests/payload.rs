//! The hand-written row payload (`codec::encode_payload` / `decode_payload`, src/payload.rs)
//! against bincode through serde (`codec::encode` / `decode`, what wrote every row before it):
//! random values of every stored type encode to the same bytes, and random and mutated byte
//! strings decode to the same value or the same refusal.
//!
//! `PAYLOAD_SEED` (default 1) and `PAYLOAD_N` (default 2,000 rounds) choose the run; a failure
//! prints its seed and round.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;
use wallet_persist::codec::{self, HEADER_LEN, MAGIC, MAX_BLOB_BYTES, SCHEMA_VERSION};
use wallet_persist::model::*;
use wallet_persist::payload::{Put, Take};
use wallet_persist::Error;

/// xorshift64*: deterministic, so a failure reproduces from its seed.
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
    fn coin(&mut self) -> bool {
        self.next() & 1 == 0
    }
    /// Often a value at a varint width boundary, else a value of a random bit width.
    fn u64(&mut self) -> u64 {
        const EDGES: [u64; 12] =
            [0, 1, 250, 251, 252, 253, 255, 256, 65_535, 65_536, u32::MAX as u64, u32::MAX as u64 + 1];
        match self.below(4) {
            0 => EDGES[self.below(EDGES.len())],
            1 => u64::MAX - self.below(2) as u64,
            _ => self.next() >> self.below(64),
        }
    }
    fn u32(&mut self) -> u32 {
        match self.below(4) {
            0 => [0, 1, 250, 251, 252, 255, 256, 65_535, 65_536, u32::MAX][self.below(10)],
            _ => (self.next() >> self.below(64)) as u32,
        }
    }
    fn len(&mut self) -> usize {
        match self.below(20) {
            0 => 245 + self.below(12),
            1 => 65_530 + self.below(10),
            _ => self.below(12),
        }
    }
    fn string(&mut self) -> String {
        const PIECES: [&str; 8] = ["a", "Z", "0", ":", "é", "€", "😀", " "];
        let mut out = String::new();
        while out.len() < self.len() {
            out.push_str(PIECES[self.below(PIECES.len())]);
        }
        out
    }
    fn bytes(&mut self) -> Bytes {
        let len = self.len();
        Bytes::from((0..len).map(|_| self.next() as u8).collect::<Vec<u8>>())
    }
    fn hash(&mut self) -> Hash32 {
        Hash32(std::array::from_fn(|_| self.next() as u8))
    }
    fn wallet(&mut self) -> WalletId {
        WalletId(self.hash().0)
    }
    fn opt<T>(&mut self, make: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        if self.coin() {
            Some(make(self))
        } else {
            None
        }
    }
    fn outpoint(&mut self) -> OutPoint {
        OutPoint { txid: self.hash(), vout: self.u32() }
    }
    fn kind(&mut self) -> ContactKind {
        [ContactKind::Sent, ContactKind::Received, ContactKind::Established][self.below(3)]
    }
}

/// A random value of one area.
trait Random: Entry {
    fn random(rng: &mut Rng) -> Self;
}

impl Random for WalletRecord {
    fn random(r: &mut Rng) -> Self {
        WalletRecord {
            wallet_id: r.opt(Rng::wallet),
            network: r.string(),
            label: r.string(),
            birth_height: r.u32(),
            created_at_ms: r.u64(),
            account_schema: r.u32(),
        }
    }
}
impl Random for Account {
    fn random(r: &mut Rng) -> Self {
        Account { index: r.u32(), kind: r.string(), descriptor: r.string() }
    }
}
impl Random for AddressEntry {
    fn random(r: &mut Rng) -> Self {
        AddressEntry { address: r.string(), account: r.u32(), index: r.u32(), used: r.coin() }
    }
}
impl Random for Utxo {
    fn random(r: &mut Rng) -> Self {
        Utxo { outpoint: r.outpoint(), value: r.u64(), script: r.bytes(), height: r.opt(Rng::u32), account: r.u32() }
    }
}
impl Random for TransactionEntry {
    fn random(r: &mut Rng) -> Self {
        TransactionEntry {
            txid: r.hash(),
            raw: r.bytes(),
            height: r.opt(Rng::u32),
            timestamp_ms: r.opt(Rng::u64),
            fee: r.opt(Rng::u64),
        }
    }
}
impl Random for SyncState {
    fn random(r: &mut Rng) -> Self {
        SyncState { height: r.u32(), tip_hash: r.hash(), last_sync_ms: r.u64() }
    }
}
impl Random for Identity {
    fn random(r: &mut Rng) -> Self {
        Identity { id: r.hash(), index: r.opt(Rng::u32), revision: r.u64(), balance: r.u64(), blob: r.bytes() }
    }
}
impl Random for IdentityKey {
    fn random(r: &mut Rng) -> Self {
        IdentityKey {
            identity: r.hash(),
            key_id: r.u32(),
            purpose: r.next() as u8,
            security_level: r.next() as u8,
            public_key: r.bytes(),
        }
    }
}
impl Random for Contact {
    fn random(r: &mut Rng) -> Self {
        Contact { kind: r.kind(), contact: r.hash(), request: r.bytes(), created_ms: r.u64(), updated_ms: r.u64() }
    }
}
impl Random for AssetLock {
    fn random(r: &mut Rng) -> Self {
        AssetLock { account: r.u32(), outpoint: r.outpoint(), status: r.string(), amount: r.u64(), proof: r.bytes() }
    }
}
impl Random for TokenBalance {
    fn random(r: &mut Rng) -> Self {
        TokenBalance { identity: r.hash(), token: r.hash(), amount: r.u64() }
    }
}
impl Random for PlatformAddress {
    fn random(r: &mut Rng) -> Self {
        PlatformAddress { address: r.string(), balance: r.u64(), nonce: r.u64() }
    }
}
impl Random for Record {
    fn random(r: &mut Rng) -> Self {
        Record { namespace: r.string(), key: r.string(), value: r.bytes() }
    }
}

fn entries<E: Random>(r: &mut Rng) -> EntryMap<E> {
    let mut map = EntryMap::default();
    for _ in 0..r.below(4) {
        let value = E::random(r);
        if r.below(4) == 0 {
            map.tombstone(value.key());
        } else {
            map.upsert(value);
        }
    }
    map
}

/// A pending registration's changeset: a few upserts and tombstones in every area.
fn changeset(r: &mut Rng) -> WalletChangeSet {
    WalletChangeSet {
        wallet: r.opt(WalletRecord::random),
        accounts: entries(r),
        addresses: entries(r),
        utxos: entries(r),
        transactions: entries(r),
        sync_state: r.opt(SyncState::random),
        identities: entries(r),
        identity_keys: entries(r),
        contacts: entries(r),
        asset_locks: entries(r),
        token_balances: entries(r),
        platform_addresses: entries(r),
        records: entries(r),
    }
}

/// A valid envelope with a few bytes overwritten, a varint marker planted, bytes cut or appended
/// (the header's length fixed up or not), or noise under a valid header.
fn mutate(r: &mut Rng, valid: &[u8]) -> Vec<u8> {
    let mut out = valid.to_vec();
    let fix_len = |out: &mut Vec<u8>| {
        let len = (out.len().max(HEADER_LEN) - HEADER_LEN) as u32;
        if out.len() >= HEADER_LEN {
            out[7..11].copy_from_slice(&len.to_le_bytes());
        }
    };
    match r.below(6) {
        0 => {
            for _ in 0..1 + r.below(3) {
                let at = HEADER_LEN + r.below(out.len() - HEADER_LEN);
                out[at] = match r.below(3) {
                    0 => [0, 1, 2, 250, 251, 252, 253, 254, 255][r.below(9)],
                    _ => r.next() as u8,
                };
            }
        }
        1 => {
            let at = HEADER_LEN + r.below(out.len() - HEADER_LEN);
            let (marker, width) = [(251u8, 2usize), (252, 4), (253, 8), (254, 16)][r.below(4)];
            let value = r.u64().to_le_bytes();
            let planted: Vec<u8> =
                std::iter::once(marker).chain((0..width).map(|i| value.get(i).copied().unwrap_or(0))).collect();
            out.splice(at..at, planted);
            fix_len(&mut out);
        }
        2 => {
            out.truncate(HEADER_LEN + r.below(out.len() - HEADER_LEN));
            if r.coin() {
                fix_len(&mut out);
            }
        }
        3 => {
            out.extend((0..1 + r.below(8)).map(|_| r.next() as u8));
            if r.coin() {
                fix_len(&mut out);
            }
        }
        4 => {
            let at = HEADER_LEN + r.below(out.len() - HEADER_LEN);
            out.drain(at..(at + 1 + r.below(4)).min(out.len()));
            fix_len(&mut out);
        }
        _ => {
            out.truncate(HEADER_LEN);
            out.extend((0..r.below(200)).map(|_| r.next() as u8));
            fix_len(&mut out);
        }
    }
    out
}

/// Both decoders give the same value, or refusals of the same kind (the same error, for an
/// oversize claim).
fn same_decoding<T: Take + DeserializeOwned + PartialEq + Debug>(bytes: &[u8], limit: usize, context: &str) {
    let ours = codec::decode_payload::<T>(bytes, limit);
    let theirs = codec::decode::<T>(bytes, limit);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{context}: decoded values differ"),
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), b.code(), "{context}: refusals differ: ours {a:?}, bincode {b:?}");
            if matches!(b, Error::BlobTooLarge { .. }) {
                assert_eq!(a, b, "{context}: oversize refusals differ");
            }
        }
        _ => panic!("{context}: ours {ours:?}, bincode {theirs:?}\nbytes {bytes:?}"),
    }
}

/// One value through both encoders, both decoders, and mutated copies through both decoders.
fn check<T>(r: &mut Rng, value: &T, context: &str)
where
    T: Put + Take + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let ours = codec::encode_payload(value, MAX_BLOB_BYTES).unwrap();
    let theirs = codec::encode(value, MAX_BLOB_BYTES).unwrap();
    assert_eq!(ours, theirs, "{context}: encodings differ for {value:?}");
    codec::check_payload_size(value, MAX_BLOB_BYTES).unwrap();
    let limit = ours.len() - HEADER_LEN;
    assert_eq!(
        codec::check_payload_size(value, limit.saturating_sub(1)).err(),
        codec::check_size(value, limit.saturating_sub(1)).err(),
        "{context}: size checks differ"
    );
    assert_eq!(
        codec::encode_payload(value, limit.saturating_sub(1)).err(),
        codec::encode(value, limit.saturating_sub(1)).err(),
        "{context}: size refusals differ"
    );
    // A changeset's keys may not spell back (an empty address, a colon inside a composite key's
    // first part): both refuse it, or both read the same other keys.
    same_decoding::<T>(&ours, MAX_BLOB_BYTES, context);
    for m in 0..8 {
        let bytes = mutate(r, &ours);
        let limit = if r.below(8) == 0 { r.below(bytes.len() + 1) } else { MAX_BLOB_BYTES };
        same_decoding::<T>(&bytes, limit, &format!("{context}, mutation {m}"));
    }
}

fn check_area<E: Random + Put + Take>(r: &mut Rng, context: &str) {
    let value = (r.wallet(), E::random(r));
    check(r, &value, context);
    let bytes = codec::encode_payload(&value, MAX_BLOB_BYTES).unwrap();
    assert_eq!(codec::decode_payload::<(WalletId, E)>(&bytes, MAX_BLOB_BYTES).unwrap(), value, "{context}: round trip");
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn payload_matches_bincode_on_random_and_mutated_values() {
    let seed = env_u64("PAYLOAD_SEED", 1);
    let rounds = env_u64("PAYLOAD_N", 2_000);
    println!("payload equivalence: PAYLOAD_SEED={seed} PAYLOAD_N={rounds}");
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for round in 0..rounds {
        let at = |area: &str| format!("PAYLOAD_SEED={seed} round {round} {area}");
        check_area::<WalletRecord>(&mut r, &at("wallets"));
        check_area::<Account>(&mut r, &at("accounts"));
        check_area::<AddressEntry>(&mut r, &at("addresses"));
        check_area::<Utxo>(&mut r, &at("utxos"));
        check_area::<TransactionEntry>(&mut r, &at("transactions"));
        check_area::<SyncState>(&mut r, &at("sync_state"));
        check_area::<Identity>(&mut r, &at("identities"));
        check_area::<IdentityKey>(&mut r, &at("identity_keys"));
        check_area::<Contact>(&mut r, &at("contacts"));
        check_area::<AssetLock>(&mut r, &at("asset_locks"));
        check_area::<TokenBalance>(&mut r, &at("token_balances"));
        check_area::<PlatformAddress>(&mut r, &at("platform_addresses"));
        check_area::<Record>(&mut r, &at("records"));
        if round % 4 == 0 {
            let pending = (r.wallet(), changeset(&mut r));
            check(&mut r, &pending, &at("pending"));
        }
        // Noise under a valid header, as every area.
        let mut noise = MAGIC.to_vec();
        noise.push(0);
        noise.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
        let payload: Vec<u8> = (0..r.below(120)).map(|_| r.next() as u8).collect();
        noise.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        noise.extend_from_slice(&payload);
        let context = at("noise");
        same_decoding::<(WalletId, WalletRecord)>(&noise, MAX_BLOB_BYTES, &context);
        same_decoding::<(WalletId, Utxo)>(&noise, MAX_BLOB_BYTES, &context);
        same_decoding::<(WalletId, Contact)>(&noise, MAX_BLOB_BYTES, &context);
        same_decoding::<(WalletId, AddressEntry)>(&noise, MAX_BLOB_BYTES, &context);
        same_decoding::<(WalletId, WalletChangeSet)>(&noise, MAX_BLOB_BYTES, &context);
    }
}

/// An envelope around `payload`.
fn envelope(payload: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(0);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// bincode claims bytes against the 16 MiB limit per read (8 for a length, 1 for a tag), not per
/// byte present: a pending changeset of millions of tiny entries is refused as oversize though
/// its payload is smaller. Both decoders refuse it at the same read, with the same length.
#[test]
fn payload_claims_match_bincode_past_the_limit() {
    // A tombstone of account "0": key length (8 claimed), the key (1), the tag (1): 3 bytes.
    let entry = [1u8, b'0', 0];
    for count in [1_677_000usize, 1_677_716, 1_677_717, 1_677_718, 1_677_719, 1_700_000] {
        let mut payload = vec![7u8; 32];
        payload.push(0); // no wallet record
        payload.extend_from_slice(&[253]);
        payload.extend_from_slice(&(count as u64).to_le_bytes());
        for _ in 0..count {
            payload.extend_from_slice(&entry);
        }
        payload.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // empty areas, no sync state
        let bytes = envelope(&payload);
        let ours = codec::decode_payload::<(WalletId, WalletChangeSet)>(&bytes, MAX_BLOB_BYTES);
        let theirs = codec::decode::<(WalletId, WalletChangeSet)>(&bytes, MAX_BLOB_BYTES);
        assert_eq!(ours, theirs, "{count} entries");
    }
    // A Hash32 crossing the limit (the length bincode reports is the last byte read), and one
    // just under it followed by a length that crosses it.
    for count in [1_677_704u64, 1_677_706] {
        let mut payload = vec![7u8; 32];
        payload.push(0);
        payload.extend_from_slice(&[253]);
        payload.extend_from_slice(&count.to_le_bytes());
        for _ in 0..count {
            payload.extend_from_slice(&entry);
        }
        payload.extend_from_slice(&[0, 0, 1]); // addresses, utxos: empty; transactions: one entry
        payload.extend_from_slice(&[64]);
        payload.extend_from_slice(&[b'a'; 64]);
        payload.extend_from_slice(&[1]);
        payload.extend((0..32).map(|i| i as u8 + 100));
        let bytes = envelope(&payload);
        let ours = codec::decode_payload::<(WalletId, WalletChangeSet)>(&bytes, MAX_BLOB_BYTES);
        let theirs = codec::decode::<(WalletId, WalletChangeSet)>(&bytes, MAX_BLOB_BYTES);
        assert!(matches!(theirs, Err(Error::BlobTooLarge { .. })), "{theirs:?}");
        assert_eq!(ours, theirs, "{count} entries");
    }
}

// Shared by the e2e tests of the JS API: fixture wallets, the shapes `load` returns, and a client
// that drives one database of a fixture page (fixtures/persister.html) through `window.wp`.
import assert from 'node:assert/strict';
import { evalInPage, openPage, uniqueName } from './harness.mjs';
import { toWire, fromWire } from './fixtures/wire.mjs';

/** The fixture page on the release build, and on the fault-injection build. */
export const RELEASE_PAGE = '/tests/e2e/fixtures/persister.html';
export const FAULTS_PAGE = '/tests/e2e/fixtures/persister.html?build=fault-injection';

// ---- Fixture data -------------------------------------------------------------------------------

/** A 32-byte id as 64 lowercase hex characters: `tag` (one byte, hex) repeated. */
export const id = (tag) => tag.repeat(32);

export const W1 = id('a1');
export const W2 = id('b2');
export const TX1 = id('01');
export const TX2 = id('02');
export const TX3 = id('03');
export const IDENTITY = id('1d');
export const TOKEN1 = id('70');
export const TOKEN2 = id('71');
export const CONTACT = id('c0');
export const TIP = id('ee');

export const ABOVE_2_53 = 2n ** 53n + 1n; // 9007199254740993: not representable as a JS number
export const U64_MAX = 2n ** 64n - 1n;

export const seq = (n, start = 0) => Uint8Array.from({ length: n }, (_, i) => (start + i * 37) & 0xff);

/** Every area of one wallet, with boundary values (u64 max, > 2^53, empty bytes, nulls, unicode). */
export function richChangeset() {
  return {
    wallet: { network: 'testnet', label: 'Savings ✓ — héllo', birthHeight: 850_000, createdAtMs: 1_732_000_000_123, accountSchema: 2 },
    accounts: {
      0: { index: 0, kind: 'bip84', descriptor: 'wpkh([d34db33f/84h/1h/0h]tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M/0/*)' },
      1: { index: 1, kind: 'coinjoin', descriptor: 'wpkh(tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M/1/*)' },
    },
    addresses: {
      tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx: { address: 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx', account: 0, index: 0, used: true },
      tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7: {
        address: 'tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7',
        account: 1,
        index: 4_294_967_295,
        used: false,
      },
    },
    utxos: {
      [`${TX1}:0`]: { outpoint: `${TX1}:0`, value: 5000n, script: Uint8Array.from([0x00, 0x14, ...seq(20, 9)]), height: 850_001, account: 0 },
      [`${TX2}:3`]: { outpoint: `${TX2}:3`, value: ABOVE_2_53, script: Uint8Array.from([0x51]), height: null, account: 1 },
    },
    transactions: {
      [TX1]: { txid: TX1, raw: seq(256), height: 850_001, timestampMs: 1_732_000_100_000n, fee: 141n },
      [TX2]: { txid: TX2, raw: Uint8Array.from([0, 255, 0, 255]), height: null, timestampMs: null, fee: null },
    },
    syncState: { height: 850_123, tipHash: TIP, lastSyncMs: 1_732_000_200_000 },
    identities: { [IDENTITY]: { id: IDENTITY, index: null, revision: 3n, balance: 2n ** 60n + 7n, blob: seq(64, 5) } },
    identityKeys: { [`${IDENTITY}:7`]: { identity: IDENTITY, keyId: 7, purpose: 0, securityLevel: 2, publicKey: Uint8Array.from([0x02, ...seq(32, 1)]) } },
    contacts: { [`sent:${CONTACT}`]: { kind: 'sent', contact: CONTACT, request: seq(48, 3), createdMs: 1n, updatedMs: 2n } },
    assetLocks: { [`1:${TX2}:3`]: { account: 1, outpoint: `${TX2}:3`, status: 'instantLocked', amount: 100_000n, proof: seq(80, 11) } },
    tokenBalances: {
      [`${IDENTITY}:${TOKEN1}`]: { identity: IDENTITY, token: TOKEN1, amount: ABOVE_2_53 },
      [`${IDENTITY}:${TOKEN2}`]: { identity: IDENTITY, token: TOKEN2, amount: U64_MAX },
    },
    platformAddresses: { dashevo1qq5f6ed5: { address: 'dashevo1qq5f6ed5', balance: 42n, nonce: 0n } },
    records: {
      'app:settings': { namespace: 'app', key: 'settings', value: new TextEncoder().encode('{"fiat":"EUR"}') },
      'app:key:with:colons': { namespace: 'app', key: 'key:with:colons', value: new Uint8Array(0) },
    },
  };
}
/** Entries (upserts + tombstones) in richChangeset(): what staged() counts as `fields`. */
export const RICH_FIELDS = 19;

export function smallChangeset() {
  return {
    wallet: { network: 'mainnet', label: 'Spending', birthHeight: 1, createdAtMs: 0n, accountSchema: 1 },
    utxos: { [`${TX3}:1`]: { outpoint: `${TX3}:1`, value: 0n, script: new Uint8Array(0), height: 0, account: 0 } },
  };
}

/** A wallet's state as load() returns it: every area present, singletons null when absent, the
 *  wallet record naming its wallet. */
export function asLoaded(changeset, walletId) {
  const loaded = {
    wallet: null,
    accounts: {},
    addresses: {},
    utxos: {},
    transactions: {},
    syncState: null,
    identities: {},
    identityKeys: {},
    contacts: {},
    assetLocks: {},
    tokenBalances: {},
    platformAddresses: {},
    records: {},
    ...changeset,
  };
  if (loaded.wallet) loaded.wallet = { ...loaded.wallet, walletId };
  return loaded;
}

/** richChangeset() as load() returns it: u64 fields given as numbers come back as bigints. */
export function richLoaded() {
  const cs = richChangeset();
  return asLoaded(
    {
      ...cs,
      wallet: { ...cs.wallet, createdAtMs: 1_732_000_000_123n },
      syncState: { ...cs.syncState, lastSyncMs: 1_732_000_200_000n },
    },
    W1,
  );
}

export const NO_ROWS = {
  wallets: 0,
  accounts: 0,
  addresses: 0,
  utxos: 0,
  transactions: 0,
  sync_state: 0,
  identities: 0,
  identity_keys: 0,
  contacts: 0,
  asset_locks: 0,
  token_balances: 0,
  platform_addresses: 0,
  records: 0,
};
export const RICH_ROWS = {
  wallets: 1,
  accounts: 2,
  addresses: 2,
  utxos: 2,
  transactions: 2,
  sync_state: 1,
  identities: 1,
  identity_keys: 1,
  contacts: 1,
  asset_locks: 1,
  token_balances: 2,
  platform_addresses: 1,
  records: 2,
};

/** A LoadReport with no skipped rows. */
export const loadReport = (wallets, rows) => ({ wallets, rows, skippedRows: NO_ROWS, skipped: [], scannedStores: [] });

/** What close() resolves with no coordinators: the final flush as the only (heaviest) step. */
export const shutdownReport = (flush) => ({
  clean: true,
  workers: [{ key: 'persister', weight: 4_294_967_295, status: 'stopped' }],
  flush,
  notWritten: { wallets: [], channels: [] },
  abortedRegistrations: [],
});

export const report = (succeeded = [], { failed = [], stillPending = [] } = {}) => ({ succeeded, failed, stillPending });

// ---- Page client ----------------------------------------------------------------------------------

/**
 * Drives one database of one page. `ok(method, ...args)` resolves the wire-form result or fails the
 * test with the rejection; `rejects(method, ...args)` resolves the wire-form error or fails the test.
 */
/** A fresh page of `env` (from `setup()`) on `pathname`, and a client of a fresh, uniquely named
 *  database on it. */
export async function openFresh(env, pathname, prefix) {
  const page = await openPage(env.browser.context, env.server.url(pathname), { ready: true });
  return { page, db: client(page, uniqueName(prefix)) };
}

export function client(page, name) {
  const settle = (method, args) =>
    evalInPage(page, ([n, m, a]) => window.wp.call(n, m, a), [name, method, toWire(args)]);
  const unwrap = (what, outcome) => {
    if (outcome.error) assert.fail(`${what} rejected: ${JSON.stringify(outcome.error)}`);
    return outcome.ok;
  };
  return {
    name,
    async open(options = {}) {
      const outcome = await evalInPage(page, (o) => window.wp.open(o), toWire({ name, flushMode: 'manual', ...options }));
      return unwrap(`open(${name})`, outcome);
    },
    async ok(method, ...args) {
      return unwrap(`${method}()`, await settle(method, args));
    },
    async rejects(method, ...args) {
      const outcome = await settle(method, args);
      if (!('error' in outcome)) assert.fail(`${method}() resolved ${JSON.stringify(outcome.ok)}, expected a rejection`);
      return outcome.error;
    },
  };
}

/** Asserts the shape every rejection of the package has, then the code/kind/retryable triple. */
export function assertPersistError(error, { code, kind, retryable }, what = 'error') {
  assert.equal(error.isError, true, `${what}: instanceof Error`);
  assert.equal(error.name, 'WalletPersistError', `${what}: name`);
  assert.equal(typeof error.message, 'string', `${what}: message`);
  assert.ok(error.message.length > 0, `${what}: message is empty`);
  assert.deepEqual({ code: error.code, kind: error.kind, retryable: error.retryable }, { code, kind, retryable }, `${what}: ${error.message}`);
}


/** Runs `body(api, arg)` in the page, where `api` has the release package (`/pkg/`) and the wire
 *  helpers; `arg` and the result cross in wire form. Resolves `{ok}` or `{error: {code, kind, message}}`. */
export function inPage(page, body, arg) {
  return evalInPage(
    page,
    async ([source, a]) => {
      const wp = await import('/pkg/wallet_persist.js');
      const wire = await import('/tests/e2e/fixtures/wire.mjs');
      const fn = new Function(`return (${source})`)();
      try {
        return { ok: wire.toWire(await fn({ ...wp, ...wire }, wire.fromWire(a))) };
      } catch (error) {
        return { error: { code: error.code, kind: error.kind, message: String(error.message ?? error) } };
      }
    },
    [body.toString(), toWire(arg)],
  ).then((outcome) => ({ ok: outcome.ok === undefined ? undefined : fromWire(outcome.ok), error: outcome.error }));
}

/** `inPage`, failing the test if `body` rejects; resolves its result. */
export async function okInPage(page, body, arg) {
  const outcome = await inPage(page, body, arg);
  if (outcome.error) assert.fail(`rejected: ${JSON.stringify(outcome.error)}`);
  return outcome.ok;
}

/** `window.rawIdb[method](...args)` in the page (fixtures/raw-idb.mjs); the result decoded from wire form. */
export const raw = (page, method, ...args) =>
  evalInPage(page, ([m, a]) => window.rawIdb[m](...a), [method, toWire(args)]).then(fromWire);

/** Rows of `walletId` per store (raw IndexedDB), only the stores that hold any. */
export async function rowsOf(page, name, walletId) {
  const counts = await raw(page, 'countWallet', name, walletId);
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
}

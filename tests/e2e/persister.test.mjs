// The published package, end to end in a real browser: what a wallet developer sees through the
// JS API, checked value by value after a page reload and after a browser restart.
//
// Pages: fixtures/persister.html (release build, /pkg/) and fixtures/persister.html?build=fault-injection
// (fault-injection dev build, /www/pkg/). Both install `window.wp` (fixtures/persister-api.mjs);
// values cross page.evaluate in the type-preserving wire form of fixtures/wire.mjs, so a bigint is
// compared as its decimal string and a Uint8Array as its byte list, each tagged with its type.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, reload, evalInPage, pageErrors, uniqueName, launch, setup } from './harness.mjs';
import { toWire } from './fixtures/wire.mjs';

const RELEASE_PAGE = '/tests/e2e/fixtures/persister.html';
const FAULTS_PAGE = '/tests/e2e/fixtures/persister.html?build=fault-injection';

// ---- Fixture data -------------------------------------------------------------------------------

/** A 32-byte id as 64 lowercase hex characters: `tag` (one byte, hex) repeated. */
const id = (tag) => tag.repeat(32);

const W1 = id('a1');
const W2 = id('b2');
const TX1 = id('01');
const TX2 = id('02');
const TX3 = id('03');
const IDENTITY = id('1d');
const TOKEN1 = id('70');
const TOKEN2 = id('71');
const CONTACT = id('c0');
const TIP = id('ee');

const ABOVE_2_53 = 2n ** 53n + 1n; // 9007199254740993: not representable as a JS number
const U64_MAX = 2n ** 64n - 1n;

const seq = (n, start = 0) => Uint8Array.from({ length: n }, (_, i) => (start + i * 37) & 0xff);

/** Every area of one wallet, with boundary values (u64 max, > 2^53, empty bytes, nulls, unicode). */
function richChangeset() {
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
const RICH_FIELDS = 19;

function smallChangeset() {
  return {
    wallet: { network: 'mainnet', label: 'Spending', birthHeight: 1, createdAtMs: 0n, accountSchema: 1 },
    utxos: { [`${TX3}:1`]: { outpoint: `${TX3}:1`, value: 0n, script: new Uint8Array(0), height: 0, account: 0 } },
  };
}

/** A wallet's state as load() returns it: every area present, singletons null when absent. */
function asLoaded(changeset) {
  return {
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
}

/** richChangeset() as load() returns it: u64 fields given as numbers come back as bigints. */
function richLoaded() {
  const cs = richChangeset();
  return asLoaded({
    ...cs,
    wallet: { ...cs.wallet, createdAtMs: 1_732_000_000_123n },
    syncState: { ...cs.syncState, lastSyncMs: 1_732_000_200_000n },
  });
}

const NO_ROWS = {
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
const RICH_ROWS = {
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

const report = (succeeded = [], { failed = [], stillPending = [] } = {}) => ({ succeeded, failed, stillPending });

// ---- Page client ----------------------------------------------------------------------------------

/**
 * Drives one database of one page. `ok(method, ...args)` resolves the wire-form result or fails the
 * test with the rejection; `rejects(method, ...args)` resolves the wire-form error or fails the test.
 */
function client(page, name) {
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
function assertPersistError(error, { code, kind, retryable }, what = 'error') {
  assert.equal(error.isError, true, `${what}: instanceof Error`);
  assert.equal(error.name, 'WalletPersistError', `${what}: name`);
  assert.equal(typeof error.message, 'string', `${what}: message`);
  assert.ok(error.message.length > 0, `${what}: message is empty`);
  assert.deepEqual({ code: error.code, kind: error.kind, retryable: error.retryable }, { code, kind, retryable }, `${what}: ${error.message}`);
}

// ---- Setup ----------------------------------------------------------------------------------------

let server;
let browser;
let env;

before(async () => {
  env = await setup();
  ({ server, browser } = env);
});

after(async () => {
  await env?.close();
});

/** A fresh page on `pathname` and a client of a fresh, uniquely named database on it. */
async function openFresh(pathname, prefix, context = browser.context) {
  const page = await openPage(context, server.url(pathname), { ready: true });
  return { page, db: client(page, uniqueName(prefix)) };
}

// ---- Tests ----------------------------------------------------------------------------------------

test('every area round-trips exactly through commit and a page reload (release build)', async () => {
  const { page, db } = await openFresh(RELEASE_PAGE, 'roundtrip');
  try {
    assert.equal(await evalInPage(page, () => window.wp.build), 'release');
    assert.deepEqual(await db.open(), { name: db.name });
    assert.equal(await db.ok('store', W1, richChangeset()), null, 'store resolves null in manual mode');
    assert.equal(await db.ok('store', W2, smallChangeset()), null);
    assert.deepEqual(await db.ok('staged'), [
      { walletId: W1, fields: RICH_FIELDS },
      { walletId: W2, fields: 2 },
    ]);
    // Staged changes are not durable yet: load reads only what is on disk.
    assert.deepEqual(await db.ok('load'), { wallets: {}, report: { wallets: 0, rows: NO_ROWS, skipped: [] } });

    const committed = await db.ok('commit');
    assert.deepEqual({ ...committed, succeeded: [...committed.succeeded].sort() }, report([W1, W2]));
    assert.deepEqual(await db.ok('staged'), []);

    await reload(page, { ready: true });
    await db.open();
    const loaded = await db.ok('load');
    assert.deepEqual(Object.keys(loaded.wallets).sort(), [W1, W2]);
    assert.deepEqual(loaded.wallets[W1], toWire(richLoaded()));
    assert.deepEqual(loaded.wallets[W2], toWire(asLoaded(smallChangeset())));
    assert.deepEqual(loaded.report, {
      wallets: 2,
      rows: { ...RICH_ROWS, wallets: 2, utxos: 3 },
      skipped: [],
    });
    assert.deepEqual(await db.ok('staged'), []);
    assert.deepEqual(await db.ok('close'), report());
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('committed data survives a clean browser restart and a SIGKILL of the browser', async () => {
  const own = await launch();
  try {
    const name = uniqueName('restart');
    let page = await openPage(own.context, server.url(RELEASE_PAGE), { ready: true });
    let db = client(page, name);
    await db.open();
    await db.ok('store', W1, richChangeset());
    assert.deepEqual(await db.ok('commit'), report([W1]));

    await own.restart();
    page = await openPage(own.context, server.url(RELEASE_PAGE), { ready: true });
    db = client(page, name);
    await db.open();
    let loaded = await db.ok('load');
    assert.deepEqual(loaded, { wallets: { [W1]: toWire(richLoaded()) }, report: { wallets: 1, rows: RICH_ROWS, skipped: [] } });

    // A commit that resolved is on disk: killing the whole browser right after cannot undo it.
    const utxo = { outpoint: `${TX1}:0`, value: U64_MAX, script: Uint8Array.from([0x6a]), height: 850_002, account: 0 };
    await db.ok('store', W1, { utxos: { [`${TX1}:0`]: utxo } });
    assert.deepEqual(await db.ok('commit'), report([W1]));
    await own.kill();
    await own.restart();
    page = await openPage(own.context, server.url(RELEASE_PAGE), { ready: true });
    db = client(page, name);
    await db.open();
    loaded = await db.ok('load');
    const expected = richLoaded();
    expected.utxos[`${TX1}:0`] = utxo;
    assert.deepEqual(loaded, { wallets: { [W1]: toWire(expected) }, report: { wallets: 1, rows: RICH_ROWS, skipped: [] } });
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await own.close();
  }
});

test('bad input rejects with a typed WalletPersistError and stages nothing; a closed store rejects code 20', async () => {
  const { page, db } = await openFresh(RELEASE_PAGE, 'errors');
  try {
    await db.open();
    assert.deepEqual(
      await evalInPage(page, () => {
        const { InvalidArgument, FlushRetryable, QuotaExceeded, Closed } = window.wp.errorCodes;
        return { InvalidArgument, FlushRetryable, QuotaExceeded, Closed };
      }),
      { InvalidArgument: 1, FlushRetryable: 4, QuotaExceeded: 5, Closed: 20 },
      'exported ErrorCode enum',
    );

    const token = (amount) => ({
      tokenBalances: { [`${IDENTITY}:${TOKEN1}`]: { identity: IDENTITY, token: TOKEN1, amount } },
    });
    const invalid = { code: 1, kind: 'invalid_argument', retryable: false };
    const cases = [
      ['malformed wallet id', 'not-a-wallet-id', richChangeset()],
      ['wallet id of 63 hex characters', W1.slice(1), richChangeset()],
      ['upper-case wallet id', W1.toUpperCase(), richChangeset()],
      ['wallet id that is not a string', 42, richChangeset()],
      ['u64 of 2^64 (bigint)', W1, token(2n ** 64n)],
      ['negative u64 (bigint)', W1, token(-1n)],
      ['u64 above 2^53 as a number', W1, token(2 ** 53 + 2)],
      ['fractional u64', W1, token(1.5)],
      ['unknown area', W1, { utxoz: {} }],
      ['unknown field in a value', W1, { wallet: { ...richChangeset().wallet, colour: 'blue' } }],
      ['missing field in a value', W1, { wallet: { network: 'testnet', label: 'x', birthHeight: 0, createdAtMs: 0 } }],
      ['changes that are not an object', W1, 'utxos'],
    ];
    for (const [what, walletId, changes] of cases) {
      assertPersistError(await db.rejects('store', walletId, changes), invalid, what);
    }
    assert.deepEqual(await db.ok('staged'), [], 'nothing staged after the bad calls');

    // A bad call is all or nothing: its valid parts are not merged into what is staged either.
    const utxo = { outpoint: `${TX1}:0`, value: 1n, script: Uint8Array.from([1]), height: null, account: 0 };
    await db.ok('store', W1, { utxos: { [`${TX1}:0`]: utxo } });
    const mixed = { utxos: { [`${TX2}:0`]: { ...utxo, outpoint: `${TX2}:0` } }, ...token(2n ** 64n) };
    assertPersistError(await db.rejects('store', W1, mixed), invalid, 'valid utxo + invalid token balance');
    assert.deepEqual(await db.ok('staged'), [{ walletId: W1, fields: 1 }]);

    // close() is the final flush; afterwards every call rejects `closed`.
    assert.deepEqual(await db.ok('close'), report([W1]));
    const closed = { code: 20, kind: 'closed', retryable: false };
    assertPersistError(await db.rejects('commit'), closed, 'commit after close');
    assertPersistError(await db.rejects('flush'), closed, 'flush after close');
    assertPersistError(await db.rejects('load'), closed, 'load after close');
    assertPersistError(await db.rejects('store', W1, { utxos: { [`${TX1}:0`]: null } }), closed, 'store after close');
    assertPersistError(await db.rejects('staged'), closed, 'staged after close');

    // The final flush of close() landed.
    await db.open();
    assert.deepEqual((await db.ok('load')).wallets, { [W1]: toWire(asLoaded({ utxos: { [`${TX1}:0`]: utxo } })) });
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('a transient write failure rejects flush_retryable, keeps the wallet staged, and a retry lands it', async () => {
  const { page, db } = await openFresh(FAULTS_PAGE, 'transient');
  try {
    assert.equal(await evalInPage(page, () => window.wp.build), 'fault-injection');
    await db.open();
    await db.ok('store', W1, richChangeset());
    assert.deepEqual(await db.ok('failNext', 'write', 1, 'quota_exceeded'), toWire(undefined));

    const error = await db.rejects('flush');
    assertPersistError(error, { code: 4, kind: 'flush_retryable', retryable: true }, 'flush');
    assert.deepEqual(error.walletIds, [W1]);
    assert.equal(error.detail.cause.code, 5);
    assert.deepEqual(error.detail, {
      cause: { code: 5, kind: 'quota_exceeded', retryable: true, message: error.detail.cause.message },
    });
    assert.match(error.detail.cause.message, /quota/);
    assert.deepEqual(await db.ok('staged'), [{ walletId: W1, fields: RICH_FIELDS }], 'still staged');
    assert.deepEqual((await db.ok('load')).wallets, {}, 'the failed transaction wrote nothing');

    // A change staged after the failure is merged over the restored one: newer wins on retry.
    const newer = { outpoint: `${TX1}:0`, value: 6000n, script: Uint8Array.from([0x51]), height: 850_010, account: 0 };
    await db.ok('store', W1, { utxos: { [`${TX1}:0`]: newer } });
    assert.deepEqual(await db.ok('staged'), [{ walletId: W1, fields: RICH_FIELDS }]);

    assert.deepEqual(await db.ok('flush'), report([W1]));
    assert.deepEqual(await db.ok('staged'), []);

    await reload(page, { ready: true });
    await db.open();
    const expected = richLoaded();
    expected.utxos[`${TX1}:0`] = newer;
    assert.deepEqual(await db.ok('load'), {
      wallets: { [W1]: toWire(expected) },
      report: { wallets: 1, rows: RICH_ROWS, skipped: [] },
    });
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('a null value is a tombstone: the entry is deleted and everything else stays', async () => {
  const { page, db } = await openFresh(RELEASE_PAGE, 'tombstone');
  try {
    await db.open();
    await db.ok('store', W1, richChangeset());
    assert.deepEqual(await db.ok('commit'), report([W1]));

    // Deleting an entry that was never written is not an error.
    await db.ok('store', W1, { utxos: { [`${TX1}:0`]: null }, addresses: { tb1qneverwritten: null } });
    assert.deepEqual(await db.ok('staged'), [{ walletId: W1, fields: 2 }]);
    assert.deepEqual(await db.ok('commit'), report([W1]));

    await reload(page, { ready: true });
    await db.open();
    const expected = richLoaded();
    delete expected.utxos[`${TX1}:0`];
    assert.deepEqual(await db.ok('load'), {
      wallets: { [W1]: toWire(expected) },
      report: { wallets: 1, rows: { ...RICH_ROWS, utxos: 1 }, skipped: [] },
    });
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

// A wallet's record and sync state are removed only with the whole wallet; `null` for them is refused.
test(
  'a null singleton area (wallet, syncState) is refused with invalid_argument and stages nothing',
  async () => {
    const { page, db } = await openFresh(RELEASE_PAGE, 'singleton-null');
    try {
      await db.open();
      await db.ok('store', W1, richChangeset());
      await db.ok('commit');
      const outcome = await evalInPage(page, ([n, w]) => window.wp.call(n, 'store', [w, { wallet: null, syncState: null }]), [db.name, W1]);
      assert.ok(outcome.error, 'a null singleton must be refused');
      assertPersistError(outcome.error, { code: 1, kind: 'invalid_argument', retryable: false }, 'null singleton');
      assert.deepEqual(await db.ok('staged'), [], 'nothing is staged');
    } finally {
      await page.close();
    }
  },
);

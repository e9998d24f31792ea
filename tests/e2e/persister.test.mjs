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
import {
  id,
  W1,
  W2,
  TX1,
  TX2,
  IDENTITY,
  TOKEN1,
  U64_MAX,
  richChangeset,
  RICH_FIELDS,
  smallChangeset,
  asLoaded,
  richLoaded,
  NO_ROWS,
  RICH_ROWS,
  loadReport,
  report,
  shutdownReport,
  client,
  assertPersistError,
  RELEASE_PAGE,
  FAULTS_PAGE,
  openFresh,
} from './client.mjs';


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

// ---- Tests ----------------------------------------------------------------------------------------

test('every area round-trips exactly through commit and a page reload (release build)', async () => {
  const { page, db } = await openFresh(env, RELEASE_PAGE, 'roundtrip');
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
    assert.deepEqual(await db.ok('load'), { wallets: {}, report: loadReport(0, NO_ROWS) });

    const committed = await db.ok('commit');
    assert.deepEqual({ ...committed, succeeded: [...committed.succeeded].sort() }, report([W1, W2]));
    assert.deepEqual(await db.ok('staged'), []);

    await reload(page, { ready: true });
    await db.open();
    const loaded = await db.ok('load');
    assert.deepEqual(Object.keys(loaded.wallets).sort(), [W1, W2]);
    assert.deepEqual(loaded.wallets[W1], toWire(richLoaded()));
    assert.deepEqual(loaded.wallets[W2], toWire(asLoaded(smallChangeset(), W2)));
    assert.deepEqual(loaded.report, loadReport(2, { ...RICH_ROWS, wallets: 2, utxos: 3 }));
    assert.deepEqual(await db.ok('staged'), []);
    assert.deepEqual(await db.ok('close'), shutdownReport(report()));
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
    assert.deepEqual(loaded, { wallets: { [W1]: toWire(richLoaded()) }, report: loadReport(1, RICH_ROWS) });

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
    assert.deepEqual(loaded, { wallets: { [W1]: toWire(expected) }, report: loadReport(1, RICH_ROWS) });
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await own.close();
  }
});

test('bad input rejects with a typed WalletPersistError and stages nothing; a closed store rejects code 20', async () => {
  const { page, db } = await openFresh(env, RELEASE_PAGE, 'errors');
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
    // (With its wallet record: a wallet row without one is refused at flush, orphan_row 22.)
    await db.ok('store', W1, { wallet: smallChangeset().wallet, utxos: { [`${TX1}:0`]: utxo } });
    const mixed = { utxos: { [`${TX2}:0`]: { ...utxo, outpoint: `${TX2}:0` } }, ...token(2n ** 64n) };
    assertPersistError(await db.rejects('store', W1, mixed), invalid, 'valid utxo + invalid token balance');
    assert.deepEqual(await db.ok('staged'), [{ walletId: W1, fields: 2 }]);

    // close() is the final flush; afterwards every call rejects `closed`.
    assert.deepEqual(await db.ok('close'), shutdownReport(report([W1])));
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
  const { page, db } = await openFresh(env, FAULTS_PAGE, 'transient');
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
      report: loadReport(1, RICH_ROWS),
    });
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('a null value is a tombstone: the entry is deleted and everything else stays', async () => {
  const { page, db } = await openFresh(env, RELEASE_PAGE, 'tombstone');
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
      report: loadReport(1, { ...RICH_ROWS, utxos: 1 }),
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
    const { page, db } = await openFresh(env, RELEASE_PAGE, 'singleton-null');
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

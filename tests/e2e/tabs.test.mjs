// Several tabs on one database, upgrades from another tab, connections closed under us, and the
// page-lifecycle flush — each provoked for real in headless Chromium (see BROWSER-FAULTS.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, evalInPage, pageErrors, uniqueName, setup, cdpSession, sleep } from './harness.mjs';
import { toWire, fromWire } from './fixtures/wire.mjs';
import { W1, W2, TX1, RICH_ROWS, richChangeset, smallChangeset, richLoaded, asLoaded, client, assertPersistError, raw, rowsOf } from './client.mjs';

const PAGE = '/tests/e2e/fixtures/persister.html';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

const newPage = () => openPage(env.browser.context, env.server.url(PAGE), { ready: true });
const events = (page, name) => evalInPage(page, (n) => window.wp.events(n), name);
const isWriter = async (page, name) => (await evalInPage(page, ([n]) => window.wp.get(n, 'isWriter'), [name])).ok;
const tryOpen = (page, options) => evalInPage(page, (o) => window.wp.open(o), toWire(options));

/** Polls `check` (async, truthy when done) every 20 ms for up to `ms`. */
async function eventually(check, ms = 5_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) return value;
    await sleep(20);
  }
}

test('one writer per database: refuse, follow (read-only + onChange), wait; both tabs commits land', async () => {
  const name = uniqueName('tabs');
  const [a, b, c] = [await newPage(), await newPage(), await newPage()];
  try {
    const dbA = client(a, name);
    await dbA.open();
    assert.equal(await isWriter(a, name), true);

    // Same page, same name: refused at once.
    const again = await tryOpen(a, { name });
    assertPersistError(again.error, { code: 16, kind: 'already_open', retryable: false }, 'second open in one page');
    assert.match(again.error.message, /already open in this page .*await its close\(\) before opening it again/s);
    assert.doesNotMatch(again.error.message, /another tab/);

    // Another tab, default multiTab "refuse".
    const refused = await tryOpen(b, { name });
    assertPersistError(refused.error, { code: 16, kind: 'already_open', retryable: false }, 'second tab');
    assert.match(refused.error.message, /another tab or worker is the writer/);

    // A follower: loads and hears about commits, refuses writes.
    const dbB = client(b, name);
    await dbB.open({ multiTab: 'follow' });
    assert.equal(await isWriter(b, name), false);
    assertPersistError(await dbB.rejects('store', W2, smallChangeset()), { code: 16, kind: 'already_open', retryable: false }, 'follower store');
    assertPersistError(await dbB.rejects('deleteWallet', W1), { code: 16, kind: 'already_open', retryable: false }, 'follower delete');
    await dbA.ok('store', W1, richChangeset());
    await dbA.ok('commit');
    const heard = await eventually(async () => (await events(b, name)).changes.length > 0 && (await events(b, name)).changes);
    assert.deepEqual(heard, [{ walletIds: [W1], origin: 'remote' }]);
    assert.deepEqual((await dbB.ok('load')).wallets, { [W1]: toWire(richLoaded()) });
    assert.deepEqual((await events(a, name)).changes, [{ walletIds: [W1], origin: 'local' }], 'a store hears its own commits as local');

    // "wait": C waits while A is the writer; a short wait times out (18).
    const timedOut = await tryOpen(c, { name, multiTab: 'wait', openTimeoutMs: 300 });
    assertPersistError(timedOut.error, { code: 18, kind: 'timeout', retryable: true }, 'wait timed out');
    const dbC = client(c, name);
    const waiting = dbC.open({ multiTab: 'wait', openTimeoutMs: 10_000 });
    await sleep(200);
    await dbA.ok('store', W1, { syncState: { height: 7, tipHash: W1, lastSyncMs: 7n } });
    await dbA.ok('close'); // final flush, then releases the writer lock
    await waiting;
    assert.equal(await isWriter(c, name), true);
    await dbC.ok('store', W2, smallChangeset());
    await dbC.ok('commit');

    // Both writers' commits are on disk (raw IndexedDB): the union, nothing lost.
    assert.deepEqual(await rowsOf(c, name, W1), RICH_ROWS);
    assert.deepEqual(await rowsOf(c, name, W2), { wallets: 1, utxos: 1 });
    const loaded = await dbC.ok('load');
    assert.equal(loaded.wallets[W1].syncState.height, 7);
    assert.deepEqual(loaded.wallets[W2], toWire(asLoaded(smallChangeset(), W2)));
    const heardByB = await eventually(async () => (await events(b, name)).changes.length >= 3 && (await events(b, name)).changes);
    assert.deepEqual(heardByB, [W1, W1, W2].map((w) => ({ walletIds: [w], origin: 'remote' })));
    assert.deepEqual((await events(c, name)).changes, [{ walletIds: [W2], origin: 'local' }], 'C heard its own commit only');
    for (const page of [a, b, c]) assert.deepEqual(pageErrors(page), []);
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test('an upgrade from another tab closes our connection cleanly; staged data survives and lands after reopen', async () => {
  const name = uniqueName('versionchange');
  const [a, b] = [await newPage(), await newPage()];
  try {
    const dbA = client(a, name);
    await dbA.open();
    await dbA.ok('store', W1, richChangeset());
    const version = await raw(b, 'version', name);
    // B upgrades: A's connection closes itself, so the upgrade is not blocked.
    assert.equal(await raw(b, 'bumpVersion', name, version + 1), version + 1);
    assert.deepEqual((await events(a, name)).versions, [{ oldVersion: version, newVersion: version + 1 }]);

    const error = await dbA.rejects('flush');
    assertPersistError(error, { code: 4, kind: 'flush_retryable', retryable: true }, 'flush after versionchange');
    assert.equal(error.detail.cause.code, 7);
    assert.match(error.detail.cause.message, /reopen/);
    assert.deepEqual(await dbA.ok('staged'), [{ walletId: W1, fields: 19 }]);
    assert.deepEqual(await rowsOf(b, name, W1), {});

    assert.deepEqual(await dbA.ok('reopen'), { schemaVersion: 1, migratedFrom: null, discardedPending: [], access: 'readWrite' });
    await dbA.ok('flush');
    assert.deepEqual(await rowsOf(b, name, W1), RICH_ROWS);
    assert.equal(await raw(b, 'version', name), version + 1, 'we opened at the newer IndexedDB version');
    assert.deepEqual(pageErrors(a), []);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('an upgrade blocked by an old tab rejects upgrade_blocked (8) after openTimeoutMs, then succeeds once it closes', async () => {
  const name = uniqueName('blocked');
  const [a, b] = [await newPage(), await newPage()];
  try {
    // B is an old tab with the database open at version 1 without our stores and no versionchange handler.
    await raw(b, 'holdOpen', name, 1, ['foreign']);
    const started = Date.now();
    const blocked = await tryOpen(a, { name, openTimeoutMs: 500 });
    assertPersistError(blocked.error, { code: 8, kind: 'upgrade_blocked', retryable: true }, 'blocked open');
    assert.ok(Date.now() - started < 5_000, 'no hang');
    await raw(b, 'release', name);
    const dbA = client(a, name);
    await dbA.open({ openTimeoutMs: 5_000 });
    await dbA.ok('store', W1, smallChangeset());
    await dbA.ok('commit');
    assert.deepEqual(await rowsOf(b, name, W1), { wallets: 1, utxos: 1 });
    assert.deepEqual(pageErrors(a), []);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a connection the browser closes under us (data cleared) is reconnected once and the flush lands', async () => {
  const name = uniqueName('lost');
  const a = await newPage();
  try {
    const dbA = client(a, name);
    await dbA.open();
    await dbA.ok('store', W1, richChangeset());
    await dbA.ok('commit');
    await dbA.ok('store', W2, smallChangeset());
    const cdp = await cdpSession(a);
    await cdp.send('Storage.clearDataForOrigin', { origin: env.server.origin, storageTypes: 'indexeddb' });
    assert.deepEqual(await dbA.ok('flush'), { succeeded: [W2], failed: [], stillPending: [] });
    const loaded = await dbA.ok('load');
    assert.deepEqual(Object.keys(loaded.wallets), [W2], 'W1 went with the cleared data; W2 landed after the reconnect');
    assert.deepEqual(loaded.wallets[W2], toWire(asLoaded(smallChangeset(), W2)));
    assert.deepEqual(pageErrors(a), []);
  } finally {
    await a.close();
  }
});

test('staged changes are flushed on pagehide and on visibilitychange to hidden (opt-out with autoFlush: false)', async () => {
  const name = uniqueName('lifecycle');
  const optedOut = uniqueName('lifecycle-off');
  let a = await newPage();
  const check = await newPage();
  try {
    // pagehide: closing the page flushes what was never committed.
    const dbA = client(a, name);
    await dbA.open();
    await dbA.ok('store', W1, richChangeset());
    const dbOff = client(a, optedOut);
    await dbOff.open({ autoFlush: false });
    await dbOff.ok('store', W1, richChangeset());
    await a.close();
    assert.deepEqual(await eventually(async () => Object.keys(await rowsOf(check, name, W1)).length > 0 && rowsOf(check, name, W1)), RICH_ROWS);
    assert.deepEqual(await rowsOf(check, optedOut, W1), {}, 'autoFlush: false leaves it staged (and lost with the page)');

    // visibilitychange → hidden (synthetic: headless pages never become hidden).
    a = await newPage();
    const dbB = client(a, name);
    await dbB.open();
    await dbB.ok('store', W2, smallChangeset());
    await evalInPage(a, () => {
      Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    assert.deepEqual(await eventually(async () => (await dbB.ok('staged')).length === 0 && []), []);
    assert.deepEqual(await rowsOf(check, name, W2), { wallets: 1, utxos: 1 });
    assert.deepEqual(pageErrors(a), []);
  } finally {
    await a.close();
    await check.close();
  }
});

test('after data cleared under us, a flush that needs the wallet record the clearing took is refused orphan_row (22), not written as an orphan', async () => {
  const name = uniqueName('cleared-orphan');
  const a = await newPage();
  try {
    const dbA = client(a, name);
    await dbA.open();
    await dbA.ok('store', W1, smallChangeset());
    await dbA.ok('commit');
    const cdp = await cdpSession(a);
    await cdp.send('Storage.clearDataForOrigin', { origin: env.server.origin, storageTypes: 'indexeddb' });
    // A UTXO alone: its wallet record went with the cleared data, so this would be an orphan.
    const utxo = { [`${TX1}:9`]: { outpoint: `${TX1}:9`, value: 9n, script: new Uint8Array([0x51]), height: 9, account: 0 } };
    await dbA.ok('store', W1, { utxos: utxo });
    const report = await dbA.ok('commit');
    assert.deepEqual(report.succeeded, [], `the orphan is not reported durable: ${JSON.stringify(report)}`);
    assert.deepEqual(report.failed.map((f) => f.code), [22]);
    assert.deepEqual(await rowsOf(a, name, W1), {}, 'no orphan row on disk');
    assert.deepEqual((await dbA.ok('load')).report.skipped, []);
  } finally {
    await a.close();
  }
});

test('an encrypted store whose database another tab deleted writes its key record again with its rows after reopen: the database still opens with its key', async () => {
  const name = uniqueName('deleted-encrypted');
  const key = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  const [a, b] = [await newPage(), await newPage()];
  try {
    const dbA = client(a, name);
    await dbA.open({ encryption: { key } });
    await dbA.ok('store', W1, smallChangeset());
    await dbA.ok('commit');
    // Another tab deletes the database: our connection closes itself, so the delete goes through.
    await evalInPage(b, (n) => new Promise((resolve, reject) => {
      const request = indexedDB.deleteDatabase(n);
      request.onsuccess = () => resolve(true);
      request.onerror = () => reject(request.error);
    }), name);
    await dbA.ok('store', W2, smallChangeset());
    await dbA.ok('reopen');
    assert.deepEqual(await dbA.ok('flush'), { succeeded: [W2], failed: [], stillPending: [] });
    await dbA.ok('close');
    const again = client(a, name);
    const reopened = await evalInPage(a, (o) => window.wp.open(o), toWire({ name, flushMode: 'manual', encryption: { key } }));
    assert.equal(reopened.error, undefined, `the database opens with its key: ${JSON.stringify(reopened.error)}`);
    const loaded = await again.ok('load');
    assert.deepEqual(Object.keys(loaded.wallets), [W2]);
    assert.deepEqual(loaded.report.skipped, []);
    await again.ok('close');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

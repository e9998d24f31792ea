// The JS end-to-end behaviour tests on every engine — Chromium, Firefox ESR and WebKitGTK — through
// one WebDriver client (./webdriver.mjs, selenium-webdriver). The same tests, the same fixture page
// (the release package, tests/e2e/fixtures/persister.html) and the same assertions on each engine;
// where an engine differs, the test says so and asserts that engine's exact behaviour.
//
// Not here (Chromium only, in tests/e2e/ with playwright-core, because they need CDP): a renderer
// crash or SIGKILL mid-flush, the CDP quota override, data cleared under an open connection, a
// browser-level storage denial. Real storage exhaustion runs here on Firefox (its quota manager's
// fixed-limit preference); WebKitGTK has no such knob (see the README's support table).
//
// `make test-engines`; ENGINES=firefox make test-engines (or scripts/with-xvfb.sh node --test
// tests/engines/behaviour.test.mjs after make pkg) runs a subset. WebKit needs a display (with-xvfb.sh).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, uniqueName, sleep } from '../e2e/harness.mjs';
import { toWire } from '../e2e/fixtures/wire.mjs';
import {
  W1,
  W2,
  TX1,
  RICH_ROWS,
  RICH_FIELDS,
  NO_ROWS,
  richChangeset,
  richLoaded,
  smallChangeset,
  asLoaded,
  loadReport,
  report,
  client,
  assertPersistError,
  raw,
  rowsOf,
  RELEASE_PAGE,
} from '../e2e/client.mjs';
import { launch, engines } from './webdriver.mjs';

const WORKER = '/tests/e2e/fixtures/realities-worker.mjs';
const PAGE_HELPERS = '/tests/e2e/fixtures/realities-page.mjs';
const MiB = 1024 * 1024;

/** Polls `check` (async, truthy when done) every 50 ms for up to `ms`. */
async function eventually(check, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value || Date.now() > end) return value;
    await sleep(50);
  }
}
const events = (page, name) => page.evaluate((n) => window.wp.events(n), name);
const tryOpen = (page, options) => page.evaluate((o) => window.wp.open(o), toWire(options));
const helper = (page, fn, ...args) => page.evaluate(async ([url, f, a]) => (await import(url))[f](...a), [PAGE_HELPERS, fn, args]);

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.close();
});

for (const engine of engines()) {
  describe(engine, () => {
    let browser;
    const figures = [];
    before(async () => {
      browser = await launch(engine);
    });
    after(async () => {
      if (browser) console.log(`[engines] ${engine}: ${browser.version}; ${figures.join('; ')}`);
      await browser?.close();
    });
    const openFresh = async (prefix) => {
      const page = await browser.newPage(server.url(RELEASE_PAGE), { ready: true });
      return { page, db: client(page, uniqueName(`${engine}-${prefix}`)) };
    };

    test('persist and reload: every area round-trips exactly, tombstones delete, on disk row by row', async () => {
      const { page, db } = await openFresh('persist');
      try {
        await db.open();
        await db.ok('store', W1, richChangeset());
        await db.ok('store', W2, smallChangeset());
        const committed = await db.ok('commit');
        assert.deepEqual([...committed.succeeded].sort(), [W1, W2].sort());
        assert.deepEqual({ failed: committed.failed, stillPending: committed.stillPending }, { failed: [], stillPending: [] });
        assert.deepEqual(await rowsOf(page, db.name, W1), RICH_ROWS);

        await page.reload({ ready: true });
        await db.open();
        const loaded = await db.ok('load');
        assert.deepEqual(loaded.wallets, { [W1]: toWire(richLoaded()), [W2]: toWire(asLoaded(smallChangeset(), W2)) });
        const rows = Object.fromEntries(Object.entries(RICH_ROWS).map(([k, n]) => [k, n + (k === 'wallets' || k === 'utxos' ? 1 : 0)]));
        assert.deepEqual(loaded.report, toWire(loadReport(2, rows)));

        // Tombstones: a UTXO spent and a record removed, through another reload.
        await db.ok('store', W1, { utxos: { [`${TX1}:0`]: null }, records: { 'app:settings': null } });
        await db.ok('commit');
        await page.reload({ ready: true });
        await db.open();
        const after = (await db.ok('load')).wallets[W1];
        const expected = richLoaded();
        delete expected.utxos[`${TX1}:0`];
        delete expected.records['app:settings'];
        assert.deepEqual(after, toWire(expected));
        assert.deepEqual(await rowsOf(page, db.name, W1), { ...RICH_ROWS, utxos: 1, records: 1 });
        await db.ok('close');
      } finally {
        await page.close();
      }
    });

    test('typed errors: invalid input (1), a second open (16), closed (20), each a WalletPersistError', async () => {
      const { page, db } = await openFresh('errors');
      try {
        await db.open();
        assertPersistError(await db.rejects('store', 'not-a-wallet-id', {}), { code: 1, kind: 'invalid_argument', retryable: false }, 'bad id');
        assertPersistError(await db.rejects('store', W1, { utxo: {} }), { code: 1, kind: 'invalid_argument', retryable: false }, 'unknown field');
        assert.deepEqual(await db.ok('staged'), [], 'bad input stages nothing');
        const again = await tryOpen(page, { name: db.name });
        assertPersistError(again.error, { code: 16, kind: 'already_open', retryable: false }, 'second open');
        await db.ok('close');
        assertPersistError(await db.rejects('store', W1, smallChangeset()), { code: 20, kind: 'closed', retryable: false }, 'after close');
        const codes = await page.evaluate(() => window.wp.errorCodes);
        assert.equal(codes.QuotaExceeded, 5);
      } finally {
        await page.close();
      }
    });

    test('tabs: one writer per database (Web Locks); a follower reads and hears commits (BroadcastChannel)', async () => {
      const { page: a, db: dbA } = await openFresh('tabs');
      const b = await browser.newPage(server.url(RELEASE_PAGE), { ready: true });
      try {
        assert.equal(await a.evaluate(() => typeof navigator.locks?.request), 'function', 'Web Locks exist');
        await dbA.open();
        const refused = await tryOpen(b, { name: dbA.name });
        assertPersistError(refused.error, { code: 16, kind: 'already_open', retryable: false }, 'second tab');
        const dbB = client(b, dbA.name);
        await dbB.open({ multiTab: 'follow' });
        assert.equal((await b.evaluate((n) => window.wp.get(n, 'isWriter'), dbA.name)).ok, false);
        assertPersistError(await dbB.rejects('store', W2, smallChangeset()), { code: 16, kind: 'already_open', retryable: false }, 'follower store');
        await dbA.ok('store', W1, richChangeset());
        await dbA.ok('commit');
        const heard = await eventually(async () => (await events(b, dbA.name)).changes.length > 0 && (await events(b, dbA.name)).changes);
        assert.deepEqual(heard, [{ walletIds: [W1], origin: 'remote' }]);
        assert.deepEqual((await dbB.ok('load')).wallets, { [W1]: toWire(richLoaded()) });
        await dbA.ok('close');
        await dbB.ok('close');
      } finally {
        await b.close();
        await a.close();
      }
    });

    test('versionchange from another tab: our connection closes itself, writes reject, reopen lands the staged data', async () => {
      const { page: a, db: dbA } = await openFresh('versionchange');
      const b = await browser.newPage(server.url(RELEASE_PAGE), { ready: true });
      try {
        // autoFlush off: in Chromium and Firefox, WebDriver switching to tab B really hides tab A
        // (a trusted visibilitychange), which would flush W1 before the upgrade.
        await dbA.open({ autoFlush: false });
        await dbA.ok('store', W1, richChangeset());
        const version = await raw(b, 'version', dbA.name);
        assert.equal(await raw(b, 'bumpVersion', dbA.name, version + 1), version + 1, 'the upgrade is not blocked by us');
        const versions = await eventually(async () => (await events(a, dbA.name)).versions.length > 0 && (await events(a, dbA.name)).versions);
        assert.deepEqual(versions, [{ oldVersion: version, newVersion: version + 1 }]);
        const error = await dbA.rejects('flush');
        assertPersistError(error, { code: 4, kind: 'flush_retryable', retryable: true }, 'flush after versionchange');
        assert.equal(error.detail.cause.code, 7, `cause: ${JSON.stringify(error.detail.cause)}`);
        assert.deepEqual(await dbA.ok('staged'), [{ walletId: W1, fields: RICH_FIELDS }]);
        assert.deepEqual(await rowsOf(b, dbA.name, W1), {});
        assert.deepEqual(await dbA.ok('reopen'), { schemaVersion: 1, migratedFrom: null, discardedPending: [], access: 'readWrite' });
        await dbA.ok('flush');
        assert.deepEqual(await rowsOf(b, dbA.name, W1), RICH_ROWS);
        await dbA.ok('close');
      } finally {
        await b.close();
        await a.close();
      }
    });

    test('page lifecycle: staged changes are flushed on visibilitychange to hidden and on pagehide', async () => {
      const { page: a, db } = await openFresh('lifecycle');
      const check = await browser.newPage(server.url(RELEASE_PAGE), { ready: true });
      try {
        await db.open({ flushMode: 'manual' });
        // visibilitychange → hidden (synthetic: no engine hides a page under automation).
        await db.ok('store', W2, smallChangeset());
        await a.evaluate(() => {
          Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => 'hidden' });
          document.dispatchEvent(new Event('visibilitychange'));
        });
        assert.deepEqual(await eventually(async () => (await db.ok('staged')).length === 0 && []), []);
        assert.deepEqual(await rowsOf(check, db.name, W2), { wallets: 1, utxos: 1 });

        // pagehide: a real navigation away unloads the page with W1 staged.
        await db.ok('store', W1, richChangeset());
        await a.goto(server.url('/tests/e2e/fixtures/smoke.html?left'));
        const landed = await eventually(async () => {
          const rows = await rowsOf(check, db.name, W1);
          return Object.keys(rows).length > 0 && rows;
        }, engine === 'webkit' ? 3_000 : 10_000);
        if (engine === 'webkit') {
          // WebKit tears the page's IndexedDB connection down with the page: the transaction the
          // pagehide handler started is aborted, so a pagehide-only flush is lost there (atomically:
          // all rows or none). The visibilitychange flush above is what saves data on WebKit.
          assert.deepEqual(await rowsOf(check, db.name, W1), {}, 'WebKit: the pagehide flush did not land (all or nothing)');
          figures.push('pagehide flush on navigation: lost (visibilitychange flush lands)');
        } else {
          assert.deepEqual(landed, RICH_ROWS, 'the pagehide flush landed');
        }
      } finally {
        await check.close();
        await a.close();
      }
    });

    test('a dedicated module worker: open, store, commit, close, reopen, load exactly; the page sees the same', async () => {
      const { page, db } = await openFresh('worker');
      try {
        const result = await page.evaluate(
          ([url, name, walletId, changeset]) =>
            new Promise((resolve) => {
              const worker = new Worker(url, { type: 'module' });
              const timer = setTimeout(() => resolve({ hang: 'no result within 20 s' }), 20_000);
              worker.onerror = (event) => resolve({ workerError: event.message || 'worker failed to load' });
              worker.onmessage = ({ data }) => {
                if (data.ready) return worker.postMessage({ name, walletId, changeset });
                clearTimeout(timer);
                worker.terminate();
                resolve(data);
              };
            }),
          [WORKER, db.name, W1, toWire(richChangeset())],
        );
        assert.ok(result.ok, `worker: ${JSON.stringify(result)}`);
        assert.deepEqual(result.ok.context, { isWorker: true, hasWindow: false });
        assert.deepEqual(result.ok.load.wallets, { [W1]: toWire(richLoaded()) });
        await db.open();
        assert.deepEqual((await db.ok('load')).wallets, { [W1]: toWire(richLoaded()) });
        await db.ok('close');
      } finally {
        await page.close();
      }
    });

    test('backup: export, import into a new database, the same wallets load; a corrupt backup is refused (14)', async () => {
      const { page, db } = await openFresh('backup');
      const target = uniqueName(`${engine}-backup-target`);
      try {
        await db.open();
        await db.ok('store', W1, richChangeset());
        await db.ok('store', W2, smallChangeset());
        await db.ok('commit');
        const exported = (await page.evaluate(([n]) => window.wp.exportBackup(n), [db.name])).ok;
        assert.ok(exported.size > 0);
        const corrupt = await page.evaluate(async ([t]) => {
          const bytes = window.backup.slice();
          bytes[bytes.length - 1] ^= 0xff;
          return window.wp.importBackup(t, { $bytes: Array.from(bytes) });
        }, [target]);
        assertPersistError(corrupt.error, { code: 14, kind: 'backup_invalid', retryable: false }, 'corrupt backup');
        const imported = await page.evaluate(([t]) => window.wp.importBackup(t), [target]);
        assert.ok(imported.ok, JSON.stringify(imported.error));
        const copy = client(page, target);
        await copy.open();
        assert.deepEqual((await copy.ok('load')).wallets, (await db.ok('load')).wallets);
        await copy.ok('close');
        await db.ok('close');
      } finally {
        await page.close();
      }
    });

    test('channels: meta, history and hints survive a reload exactly; dropChannel wipes them', async () => {
      const { page, db } = await openFresh('channels');
      try {
        await db.open();
        const ch = (method, ...args) => page.evaluate(([n, m, a]) => window.wp.channels(n, m, a), [db.name, method, toWire(args)]);
        const meta = { lamport: 3n, outgoing: [{ id: 'm3', payload: new Uint8Array([1, 2, 3]) }], label: 'héllo ✓' };
        await ch('queueAppend', 'chat', { id: 'm1', bytes: new Uint8Array([1]), timestampMs: 1 });
        await ch('queueAppend', 'chat', { id: 'm2', bytes: new Uint8Array([2]) });
        const committed = await ch('commit', 'chat', meta);
        assert.deepEqual(committed.ok, { metaSaved: true, historyFlushed: true, pending: 0, failures: [] });
        await ch('setRetrievalHint', 'chat', 'm2', new Uint8Array([9, 9]));
        await page.reload({ ready: true });
        await db.open();
        const loaded = await ch('loadChannel', 'chat');
        assert.deepEqual(loaded.ok.meta, toWire(meta));
        assert.deepEqual(loaded.ok.history.map((e) => e.id), ['m1', 'm2']);
        assert.deepEqual(loaded.ok.history[0].bytes, { $bytes: [1] });
        assert.deepEqual(loaded.ok.hints, [{ messageId: 'm2', hint: { $bytes: [9, 9] } }]);
        await ch('dropChannel', 'chat');
        assert.deepEqual((await ch('loadChannel', 'chat')).ok, { meta: null, history: [], hints: [] });
        await db.ok('close');
      } finally {
        await page.close();
      }
    });

    test('registration: a failing init leaves zero rows and a retry succeeds', async () => {
      const { page, db } = await openFresh('registration');
      try {
        await db.open();
        const register = (mode) => page.evaluate(([n, w, c, m]) => window.wp.register(n, w, c, m), [db.name, W1, toWire(richChangeset()), mode]);
        const failed = await register('reject');
        assert.equal(failed.error.message, 'init failed');
        assert.deepEqual(await rowsOf(page, db.name, W1), {});
        assert.ok((await register('ok')).ok !== undefined);
        assert.deepEqual(await rowsOf(page, db.name, W1), RICH_ROWS);
        assertPersistError((await register('ok')).error, { code: 3, kind: 'wallet_already_exists', retryable: false }, 'again');
        await db.ok('close');
      } finally {
        await page.close();
      }
    });

    test('read path and storage manager: the bulk read this engine offers loads exactly; persist() and estimate() answer', async () => {
      const { page, db } = await openFresh('readpath');
      try {
        const features = await page.evaluate(() => ({
          getAllRecords: typeof IDBObjectStore.prototype.getAllRecords === 'function',
          persist: typeof navigator.storage?.persist === 'function',
          estimate: typeof navigator.storage?.estimate === 'function',
        }));
        figures.push(`getAllRecords ${features.getAllRecords ? 'yes' : 'no (getAllKeys + getAll)'}`);
        // WebKitGTK has no getAllRecords: the fallback read path runs there, and must load exactly.
        if (engine === 'webkit') assert.equal(features.getAllRecords, false, 'WebKit reads through getAllKeys + getAll');
        if (engine === 'chromium') assert.equal(features.getAllRecords, true);
        await db.open();
        await db.ok('store', W1, richChangeset());
        await db.ok('commit');
        const loaded = await db.ok('load');
        assert.deepEqual(loaded.wallets, { [W1]: toWire(richLoaded()) });
        assert.deepEqual(loaded.report, toWire(loadReport(1, RICH_ROWS)));

        // WebKitGTK has no navigator.storage at all: persist() resolves { persisted: false } (nothing
        // can be asked: an answer, not a failure); estimate() rejects storage_unavailable (6).
        if (features.estimate) {
          const estimate = await db.ok('estimate');
          assert.equal(typeof estimate.usage, 'number');
          assert.ok(estimate.quota > 0, `quota ${estimate.quota}`);
          figures.push(`estimate quota ${(estimate.quota / MiB).toFixed(0)} MiB`);
        } else {
          const error = await db.rejects('estimate');
          assertPersistError(error, { code: 6, kind: 'storage_unavailable', retryable: false }, 'estimate() missing');
          assert.match(error.message, /navigator\.storage\.estimate is not available here/);
          figures.push('no navigator.storage.estimate (estimate() rejects 6)');
        }
        const persisted = await db.ok('persist');
        if (features.persist) {
          assert.equal(typeof persisted.persisted, 'boolean');
          figures.push(`persist() → ${persisted.persisted}`);
        } else {
          assert.deepEqual(persisted, { persisted: false });
          figures.push('no navigator.storage.persist (persist() → false)');
        }
        if (engine === 'webkit') assert.deepEqual({ persist: features.persist, estimate: features.estimate }, { persist: false, estimate: false });
        await db.ok('close');
      } finally {
        await page.close();
      }
    });
  });
}

// Real storage exhaustion on Firefox: its quota manager given a 5 MiB limit by a profile preference.
if (engines().includes('firefox')) {
  describe('firefox, 5 MiB storage limit', () => {
    let browser;
    before(async () => {
      browser = await launch('firefox', {
        prefs: {
          'dom.quotaManager.temporaryStorage.fixedLimit': 5120,
          // As a user's profile is: persist() asks the user (a doorhanger), no automatic answer.
          'dom.storageManager.prompt.testing': false,
          'dom.storageManager.prompt.testing.allow': false,
        },
      });
    });
    after(async () => {
      await browser?.close();
    });

    test('real quota exhaustion: flush rejects 4 (cause 5), the wallet stays staged, and lands once space is freed', async (t) => {
      const page = await browser.newPage(server.url(RELEASE_PAGE), { ready: true });
      const db = client(page, uniqueName('ff-quota'));
      const filler = uniqueName('ff-quota-filler');
      await db.open();
      const { quota } = await db.ok('estimate');
      assert.equal(quota, 5 * MiB, 'the preference sets the quota');
      const fill = await helper(page, 'fillOrigin', filler, { chunk: 64 * 1024 });
      assert.equal(fill.error?.name, 'QuotaExceededError', `filler: ${JSON.stringify(fill)}`);

      const records = await page.evaluate(() => {
        const out = {};
        for (let i = 0; i < 6; i++) {
          const value = new Uint8Array(64 * 1024);
          crypto.getRandomValues(value);
          out[`blob:r${i}`] = { namespace: 'blob', key: `r${i}`, value: { $bytes: Array.from(value) } };
        }
        return out;
      });
      const changeset = { wallet: { network: 'testnet', label: 'quota', birthHeight: 7, createdAtMs: { $bigint: '1700000000000' }, accountSchema: 1 }, records };
      const stage = await page.evaluate(([n, w, c]) => window.wp.call(n, 'store', [w, c]), [db.name, W1, changeset]);
      assert.deepEqual(stage, { ok: null });
      const staged = [{ walletId: W1, fields: 7 }];
      const error = await db.rejects('flush');
      assertPersistError(error, { code: 4, kind: 'flush_retryable', retryable: true }, 'flush on a full origin');
      assert.deepEqual(error.walletIds, [W1]);
      assert.equal(error.detail.cause.code, 5, `cause: ${JSON.stringify(error.detail.cause)}`);
      assert.deepEqual(await db.ok('staged'), staged, 'the buffer is kept');
      assert.deepEqual(await db.ok('commit'), report([], { stillPending: [W1] }));
      assert.deepEqual(await rowsOf(page, db.name, W1), {}, 'not one row reached IndexedDB');

      assert.equal(await helper(page, 'deleteDatabase', filler), true);
      assert.deepEqual(await db.ok('flush'), report([W1]));
      assert.deepEqual(await rowsOf(page, db.name, W1), { wallets: 1, records: 6 });
      await db.ok('close');
      const line = `firefox quota: 5 MiB limit; filler took ${fill.chunks} x 64 KB = ${(fill.bytes / MiB).toFixed(2)} MiB before QuotaExceededError; cause message ${JSON.stringify(error.detail.cause.message)}`;
      t.diagnostic(line);
      console.log(`[figures] ${line}`);
      await page.close();
    });

    test('persist() asks the user on Firefox: unanswered it stays pending (our call does not invent an answer)', async () => {
      const page = await browser.newPage(server.url(RELEASE_PAGE), { ready: true });
      const db = client(page, uniqueName('ff-persist'));
      await db.open();
      const state = await page.evaluate(async (name) => {
        const call = window.wp.call(name, 'persist', []);
        const settled = await Promise.race([call.then(() => 'settled'), new Promise((r) => setTimeout(() => r('pending'), 2_000))]);
        return { settled, persistedNow: await navigator.storage.persisted() };
      }, db.name);
      assert.deepEqual(state, { settled: 'pending', persistedNow: false });
      await page.close();
    });
  });
}

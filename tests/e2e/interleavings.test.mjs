// Issue 15 against real IndexedDB, checked with raw IndexedDB: registration is all or nothing
// whatever flushes while `init` runs (immediate mode, commit, flush), close() during init aborts
// it and says so, close reports what it did not write, and no pass runs after close.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, evalInPage, uniqueName, setup } from './harness.mjs';
import { toWire, fromWire } from './fixtures/wire.mjs';
import { W1, W2, smallChangeset, client, assertPersistError, rowsOf, FAULTS_PAGE } from './client.mjs';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

const newPage = () => openPage(env.browser.context, env.server.url(FAULTS_PAGE), { ready: true });
const register = (page, name, walletId, changes, mode) =>
  evalInPage(page, ([n, w, c, m]) => window.wp.register(n, w, c, m), [name, walletId, toWire(changes), mode]);
const only = (counts) => Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));

test('flushes during init never write a wallet under registration (manual and immediate mode)', async () => {
  for (const flushMode of ['manual', 'immediate']) {
    const page = await newPage();
    const db = client(page, uniqueName(`reg-${flushMode}`));
    try {
      await db.open({ flushMode });
      const outcome = await register(page, db.name, W1, smallChangeset(), 'stage-flush-then-reject');
      assert.equal(outcome.error?.message, 'init failed after flushing', flushMode);
      const during = await evalInPage(page, () => window.__rowsDuringInit);
      assert.deepEqual(only(during), { pending: 1 }, `${flushMode}: only the pending row existed during init`);
      assert.deepEqual(await rowsOf(page, db.name, W1), {}, `${flushMode}: zero rows remain`);
      assert.deepEqual(await db.ok('staged'), []);
      const { wallets } = await db.ok('load');
      assert.deepEqual(wallets, {}, `${flushMode}: no ghost wallet`);
      await db.ok('close');
    } finally {
      await page.close();
    }
  }
});

test('close() during init aborts the registration (closed, 20), lists it, and leaves zero rows', async () => {
  const page = await newPage();
  const db = client(page, uniqueName('reg-close'));
  try {
    await db.open();
    await db.ok('store', W2, smallChangeset());
    const outcome = await register(page, db.name, W1, smallChangeset(), 'close-during-init');
    assertPersistError(outcome.error, { code: 20, kind: 'closed', retryable: false }, 'the aborted registration');
    const report = fromWire(await evalInPage(page, () => window.__closeReport));
    assert.equal(report.clean, false);
    assert.deepEqual(report.abortedRegistrations, [W1]);
    assert.deepEqual(report.notWritten, { wallets: [W1], channels: [] });
    assert.deepEqual(report.flush.succeeded, [W2]);
    assert.deepEqual(await rowsOf(page, db.name, W1), {});
    const again = client(page, db.name);
    await again.open();
    const { wallets } = await again.ok('load');
    assert.deepEqual(Object.keys(wallets), [W2]);
    await again.ok('close');
  } finally {
    await page.close();
  }
});

test('close names the channel history it could not write (clean: false); syncNow after close is refused', async () => {
  const page = await newPage();
  const db = client(page, uniqueName('close-truth'));
  try {
    await db.open();
    const result = await evalInPage(page, async (name) => {
      const store = window.wp.store(name);
      const channels = store.channels;
      await channels.queueAppend('chat', { id: 'm1', bytes: new Uint8Array([1]) });
      await store.failStoreWrite('channel_history', 5, 'quota_exceeded');
      let passes = 0;
      await store.tasks.start({ key: 'sync', weight: 0, intervalMs: 60_000, pass: async () => { passes += 1; } });
      const report = await store.close();
      const before = passes;
      let syncNow;
      try {
        syncNow = { ok: await store.tasks.syncNow('sync') };
      } catch (error) {
        syncNow = { code: error.code, kind: error.kind };
      }
      await new Promise((r) => setTimeout(r, 50));
      return { clean: report.clean, notWritten: report.notWritten, syncNow, passesAfterClose: passes - before };
    }, db.name);
    assert.equal(result.clean, false);
    assert.deepEqual(result.notWritten, { wallets: [], channels: ['chat'] });
    assert.deepEqual(result.syncNow, { code: 20, kind: 'closed' });
    assert.equal(result.passesAfterClose, 0);
  } finally {
    await page.close();
  }
});

test('a JS pass that ignores its abort signal: deleteWallet refuses 19 with the data intact; close reports timedOut, clean false', async () => {
  const page = await newPage();
  const db = client(page, uniqueName('wedged-pass'));
  try {
    await db.open();
    await db.ok('store', W1, smallChangeset());
    await db.ok('commit');
    const before = await rowsOf(page, db.name, W1);
    const result = await evalInPage(page, async (name) => {
      const store = window.wp.store(name);
      // A pass that never ends and ignores its signal.
      await store.tasks.start({ key: 'stuck', weight: 0, intervalMs: 60_000, pass: () => new Promise(() => {}) });
      await new Promise((r) => setTimeout(r, 20));
      let deleted;
      try {
        deleted = { ok: await store.deleteWallet('a1'.repeat(32)) };
      } catch (error) {
        deleted = { code: error.code, kind: error.kind, retryable: error.retryable };
      }
      const report = await store.close({ timeoutMs: 100 });
      return { deleted, clean: report.clean, workers: report.workers.map((w) => [w.key, w.status]) };
    }, db.name);
    assert.deepEqual(result.deleted, { code: 19, kind: 'shutdown_incomplete', retryable: true });
    assert.deepEqual(await rowsOf(page, db.name, W1), before, 'the refused delete left every row');
    assert.equal(result.clean, false);
    // The delete's drain already parked the pass as an orphan: close reports it still running.
    assert.deepEqual(result.workers, [['stuck', 'orphaned'], ['persister', 'stopped']]);
  } finally {
    await page.close();
  }
});

// The task registry from JS: passes get an AbortSignal that aborts on close; close() is the point
// after which no pass runs and nothing new reaches the disk.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, evalInPage, pageErrors, uniqueName, setup, sleep } from './harness.mjs';
import { W1, smallChangeset, client, rowsOf, assertPersistError } from './client.mjs';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

const coordinator = (page, key) => evalInPage(page, (k) => window.coordinator[k], key);

test('coordinators: abort on close, weight-ordered shutdown report, nothing written after close', async () => {
  const page = await openPage(env.browser.context, env.server.url('/tests/e2e/fixtures/persister.html'), { ready: true });
  const db = client(page, uniqueName('tasks'));
  try {
    await db.open();
    await db.ok('store', W1, smallChangeset());
    await db.ok('commit');
    const start = (key, options) => evalInPage(page, ([n, k, w, o]) => window.wp.startCoordinator(n, k, w, o), [db.name, key, W1, options]);
    assert.deepEqual(await start('core-sync', { weight: 0, intervalMs: 20 }), { ok: { $undefined: true } });
    assert.deepEqual(await start('identity-sync', { weight: 5, intervalMs: 1_000, hold: true, txid: '0e'.repeat(32) }), { ok: { $undefined: true } });
    const again = await start('core-sync', {});
    assertPersistError(again.error, { code: 1, kind: 'invalid_argument', retryable: false }, 'same key twice');
    await sleep(150);
    const core = await coordinator(page, 'core-sync');
    assert.ok(core.runs >= 3, `the loop runs every interval: ${JSON.stringify(core)}`);
    assert.equal((await coordinator(page, 'identity-sync')).runs, 1, 'held in its first pass');

    const closed = await db.ok('close');
    assert.equal(closed.clean, true);
    assert.deepEqual(closed.workers.map((w) => [w.key, w.status]), [['core-sync', 'stopped'], ['identity-sync', 'stopped'], ['persister', 'stopped']]);
    assert.deepEqual(closed.flush.succeeded, [W1], 'the final flush landed what the passes staged');
    assert.equal((await coordinator(page, 'identity-sync')).aborted, 1, 'the held pass saw its signal abort');

    // After close: no pass runs, a store rejects `closed`, nothing new is on disk.
    const runs = (await coordinator(page, 'core-sync')).runs;
    const rows = await rowsOf(page, db.name, W1);
    await sleep(120);
    assert.equal((await coordinator(page, 'core-sync')).runs, runs, 'no pass after close');
    assertPersistError(await db.rejects('store', W1, smallChangeset()), { code: 20, kind: 'closed', retryable: false }, 'store after close');
    assert.deepEqual(await rowsOf(page, db.name, W1), rows);
    assert.equal(rows.utxos, 1 + runs + 1, 'every pass run before close is durable, one UTXO each');
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('shutdown latency with 50 coordinators whose passes are in flight', async (t) => {
  const page = await openPage(env.browser.context, env.server.url('/tests/e2e/fixtures/persister.html'), { ready: true });
  const db = client(page, uniqueName('tasks-50'));
  try {
    await db.open();
    // The passes store UTXOs of W1: its wallet record first (orphan_row, 22, otherwise).
    await db.ok('store', W1, smallChangeset());
    await db.ok('commit');
    const startAll = await evalInPage(
      page,
      async ([n]) => {
        for (let i = 0; i < 50; i++) {
          const txid = i.toString(16).padStart(2, '0').repeat(32);
          const outcome = await window.wp.startCoordinator(n, `w${i}`, 'a1'.repeat(32), { weight: i % 5, intervalMs: 1_000, hold: true, txid });
          if (outcome.error) return outcome;
        }
        return { ok: true };
      },
      [db.name],
    );
    assert.deepEqual(startAll, { ok: true });
    await sleep(100);
    const closed = await evalInPage(page, (n) => window.wp.timed(n, 'close'), db.name);
    assert.equal(closed.ok.result.clean, true);
    assert.equal(closed.ok.result.workers.length, 51);
    assert.deepEqual([...new Set(closed.ok.result.workers.map((w) => w.status))], ['stopped']);
    const weights = closed.ok.result.workers.map((w) => w.weight);
    assert.deepEqual(weights, [...weights].sort((a, b) => a - b), 'reported in stop order');
    assert.deepEqual(closed.ok.result.flush.succeeded, ['a1'.repeat(32)]);
    const line = `close() with 50 coordinators in flight (5 weight groups) + final flush of 50 staged UTXOs: ${closed.ok.ms.toFixed(1)} ms`;
    t.diagnostic(line);
    console.log(`[figures] ${line}`);
  } finally {
    await page.close();
  }
});

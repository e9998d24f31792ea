// Real browser faults, provoked for real (shared/BROWSER-FAULTS.md), against the release package:
// a full origin (CDP quota override + random filler), pages killed in the middle of a 5 MB flush,
// no IndexedDB at all (deleted global, sandboxed opaque-origin frame), and a dedicated module worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import nodeCrypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openPage, reload, evalInPage, pageErrors, uniqueName, setup, cdpSession, waitForReady, sleep } from './harness.mjs';
import { toWire, fromWire } from './fixtures/wire.mjs';
import { bulkChangeset, digestForm } from './fixtures/realities-shared.mjs';
import { W1, TX1, id, okInPage, richChangeset, richLoaded, RICH_FIELDS, RICH_ROWS, NO_ROWS, asLoaded, loadReport, report, shutdownReport, client, assertPersistError, RELEASE_PAGE } from './client.mjs';

const PAGE_HELPERS = '/tests/e2e/fixtures/realities-page.mjs';
const SANDBOXED_PAGE = '/tests/e2e/fixtures/realities-sandboxed.html';
const WORKER = '/tests/e2e/fixtures/realities-worker.mjs';
const MiB = 1024 * 1024;

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

/** `window.rawIdb[method](...args)` in the page; results in wire form, decoded. */
const raw = (page, method, ...args) =>
  evalInPage(page, ([m, a]) => window.rawIdb[m](...a), [method, toWire(args)]).then(fromWire);

/** `fn(...args)` exported by fixtures/realities-page.mjs, run in the page (JSON arguments and results). */
const helper = (page, fn, ...args) =>
  evalInPage(page, async ([url, f, a]) => (await import(url))[f](...a), [PAGE_HELPERS, fn, args]);

/** Rejects with "hang: <what>" if `promise` has not settled after `ms`. */
async function withinMs(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`hang: ${what} did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** countWallet() of a wallet with no rows: every area store plus the meta stores (src/backend/mod.rs). */
const ZERO_COUNTS = { ...NO_ROWS, db_meta: 0, pending: 0, channel_meta: 0, channel_history: 0, retrieval_hints: 0 };
const sum = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);
const randomValue = (n) => new Uint8Array(nodeCrypto.randomBytes(n));
const WASM_FAILURE = /RuntimeError|unreachable|panicked/;

// ------------------------------------------------------------------------------------------------
// 1. A full origin

test('real quota exhaustion: flush rejects 4 (cause 5), the wallet stays staged, and lands once space is freed', { timeout: 90_000 }, async (t) => {
  const page = await env.open(RELEASE_PAGE, { ready: true });
  const consoleLines = [];
  page.on('console', (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  const cdp = await cdpSession(page);
  const db = client(page, uniqueName('quota'));
  const filler = uniqueName('quota-filler');
  try {
    // Quota = what the origin already uses (earlier tests, this profile) + 3 MiB, for as long as
    // this CDP session stays attached.
    const { usage } = await cdp.send('Storage.getUsageAndQuota', { origin: env.origin });
    const quotaSize = Math.ceil(usage) + 3 * MiB;
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: env.origin, quotaSize });
    await db.open();

    // Fill the origin with incompressible bytes, 64 KB per transaction, until the quota refuses one.
    const fill = await helper(page, 'fillOrigin', filler, { chunk: 64 * 1024 });
    assert.deepEqual(fill.error, { name: 'QuotaExceededError', code: 22 }, 'the filler ran into the quota');
    assert.ok(fill.bytes >= 2 * MiB && fill.bytes <= 3 * MiB, `the filler took 2..3 MiB of the 3 MiB left before the quota refused it (${fill.chunks} chunks)`);

    // ~384 KB of random bytes in 6 records, plus the wallet record: 7 staged fields.
    const records = {};
    for (let i = 0; i < 6; i++) records[`blob:r${i}`] = { namespace: 'blob', key: `r${i}`, value: randomValue(64 * 1024) };
    const changeset = { wallet: { network: 'testnet', label: 'quota', birthHeight: 7, createdAtMs: 1_700_000_000_000n, accountSchema: 1 }, records };
    assert.equal(await db.ok('store', W1, changeset), null);
    const staged = [{ walletId: W1, fields: 7 }];
    assert.deepEqual(await db.ok('staged'), staged);

    const error = await withinMs(db.rejects('flush'), 20_000, 'flush on a full origin');
    assertPersistError(error, { code: 4, kind: 'flush_retryable', retryable: true }, 'flush on a full origin');
    assert.deepEqual(error.walletIds, [W1]);
    // Chromium 156 aborts the commit with a QuotaExceededError whose message is empty.
    assert.deepEqual(error.detail, { cause: { code: 5, kind: 'quota_exceeded', retryable: true, message: 'storage quota exceeded: QuotaExceededError: ' } });
    assert.equal(error.message, 'flush failed transiently for 1 wallet(s), changes kept staged: storage quota exceeded: QuotaExceededError: ');
    assert.deepEqual(await db.ok('staged'), staged, 'the buffer is kept');

    // commit() on the still-full origin: the wallet is reported still pending, not failed.
    assert.deepEqual(await withinMs(db.ok('commit'), 20_000, 'commit on a full origin'), report([], { stillPending: [W1] }));
    assert.deepEqual(await db.ok('staged'), staged, 'the buffer is still kept');
    const nothing = await db.ok('load');
    assert.deepEqual(nothing.wallets, {}, 'load shows nothing of the failed flush');
    assert.deepEqual(await raw(page, 'countWallet', db.name, W1), ZERO_COUNTS, 'not one row of it reached IndexedDB');

    // Free the space: delete the filler database. The same buffer now lands.
    assert.equal(await helper(page, 'deleteDatabase', filler), true);
    assert.deepEqual(await withinMs(db.ok('flush'), 20_000, 'flush after freeing space'), report([W1]));
    assert.deepEqual(await db.ok('staged'), []);

    await reload(page, { ready: true });
    await db.open();
    const loaded = await db.ok('load');
    assert.deepEqual(loaded.wallets, { [W1]: toWire(asLoaded(changeset, W1)) }, 'exactly the staged data');
    assert.deepEqual(loaded.report, toWire(loadReport(1, { ...NO_ROWS, wallets: 1, records: 6 })));
    await db.ok('close');

    const line = `quota: origin usage before ${usage} B, override ${quotaSize} B; filler took ${fill.chunks} x 64 KB = ${(fill.bytes / MiB).toFixed(2)} MiB before QuotaExceededError`;
    t.diagnostic(line);
    console.log(`[figures] ${line}`);
    assert.deepEqual(pageErrors(page), []);
    assert.deepEqual(consoleLines.filter((l) => WASM_FAILURE.test(l)), []);
  } finally {
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: env.origin }).catch(() => {});
    await cdp.detach().catch(() => {});
    await helper(page, 'deleteDatabase', filler).catch(() => {});
    await page.close();
  }
});

// ------------------------------------------------------------------------------------------------
// 2. Pages killed in the middle of a 5 MB flush

test('atomicity under page death: a page closed or crashed during a 5 MB flush, 20 times, leaves all of it or none', { timeout: 120_000 }, async (t) => {
  const TRIALS = 20;
  const shape = { count: 80, size: 64 * 1024 }; // 80 x 64 KB = 5 MiB, 82 rows with the wallet and marker
  const FULL = { ...ZERO_COUNTS, wallets: 1, records: shape.count + 1 };

  // Calibration: how long a commit of this size takes here (3 commits into one throwaway database).
  const calibration = await env.open(RELEASE_PAGE, { ready: true });
  const calibrationName = uniqueName('atomic-calibration');
  const commitMs = [];
  try {
    for (let i = 0; i < 3; i++) {
      await helper(calibration, 'stageBulk', calibrationName, W1, 900 + i, shape);
      const { ms, report: commitReport } = await helper(calibration, 'timedCommit', calibrationName);
      assert.deepEqual(commitReport, { succeeded: [W1], failed: [], stillPending: [] });
      commitMs.push(ms);
    }
    await helper(calibration, 'closeStore', calibrationName);
    await helper(calibration, 'deleteDatabase', calibrationName);
  } finally {
    await calibration.close();
  }
  const typical = [...commitMs].sort((a, b) => a - b)[1];

  const trials = [];
  for (let k = 0; k < TRIALS; k++) {
    const seed = k + 1;
    const name = uniqueName(`atomic-${k}`);
    const how = k % 4 === 3 ? 'crash' : 'close';
    // Stratified over [0, 1.5 x typical): early kills should lose the flush, late ones keep it.
    const delay = ((k + Math.random()) / TRIALS) * 1.5 * typical;

    const victim = await env.open(RELEASE_PAGE, { ready: true, prefix: `[victim ${k}]` });
    let settled = null;
    let startedAt = null;
    await victim.exposeFunction('__commitStarted', () => {
      startedAt = performance.now();
    });
    await victim.exposeFunction('__commitSettled', (outcome) => {
      settled = outcome;
    });
    const cdp = how === 'crash' ? await cdpSession(victim) : null;
    const stagedNow = await helper(victim, 'stageBulk', name, W1, seed, shape);
    assert.deepEqual(stagedNow, [{ walletId: W1, fields: shape.count + 2 }]);

    assert.equal(await helper(victim, 'fireCommit', name), true);
    const firedAt = performance.now();
    await sleep(delay); // the moment of the kill, not an assertion
    const settledBeforeKill = settled;
    const startedBeforeKill = startedAt !== null;
    const killAt = performance.now() - firedAt;
    if (how === 'crash') {
      const crashed = new Promise((resolve) => victim.once('crash', resolve));
      cdp.send('Page.crash').catch(() => {}); // never answers: the renderer is gone
      await withinMs(crashed, 10_000, 'Page.crash');
    }
    await victim.close();

    const checker = await env.open(RELEASE_PAGE, { ready: true, prefix: `[checker ${k}]` });
    try {
      const counts = await raw(checker, 'countWallet', name, W1);
      const outcome = sum(counts) === 0 ? 'none' : 'all';
      assert.deepEqual(counts, outcome === 'none' ? ZERO_COUNTS : FULL, `trial ${k}: part of the flush landed: ${JSON.stringify(counts)}`);
      if (settledBeforeKill) {
        assert.equal(settledBeforeKill.error, undefined, `trial ${k}: the commit failed before the kill: ${JSON.stringify(settledBeforeKill.error)}`);
        assert.equal(outcome, 'all', `trial ${k}: commit() resolved before the kill, yet the flush is gone`);
      }
      // The API agrees with raw IndexedDB, value for value (compared as SHA-256 of every byte string).
      const loaded = await helper(checker, 'loadDigest', name, W1);
      if (outcome === 'all') {
        assert.deepEqual(loaded.walletIds, [W1]);
        assert.deepEqual(loaded.wallet, await digestForm(asLoaded(bulkChangeset(seed, shape), W1)), `trial ${k}: loaded values`);
        assert.deepEqual(loaded.report, toWire(loadReport(1, { ...NO_ROWS, wallets: 1, records: shape.count + 1 })));
      } else {
        assert.deepEqual(loaded.walletIds, []);
        assert.deepEqual(loaded.report, toWire(loadReport(0, NO_ROWS)));
      }
      assert.equal(await helper(checker, 'deleteDatabase', name), true);
      assert.deepEqual(pageErrors(checker), []);
      trials.push({ k, how, killAt, startedBeforeKill, settledBeforeKill: Boolean(settledBeforeKill), outcome });
    } finally {
      await checker.close();
    }
  }

  const count2 = (outcome) => trials.filter((r) => r.startedBeforeKill && !r.settledBeforeKill && r.outcome === outcome).length;
  const count = (outcome, how) => trials.filter((r) => r.outcome === outcome && (!how || r.how === how)).length;
  const all = count('all');
  const none = count('none');
  const fmt = (ms) => `${ms.toFixed(0)} ms`;
  const lines = [
    `atomicity: ${TRIALS} trials of an 82-row 5 MiB commit killed at random: ${all} all, ${none} none, 0 partial ` +
      `(page.close: ${count('all', 'close')} all / ${count('none', 'close')} none; Page.crash: ${count('all', 'crash')} all / ${count('none', 'crash')} none); ` +
      `calibration commits ${commitMs.map(fmt).join(', ')}; kill delays 0..${fmt(1.5 * typical)}`,
    `atomicity per trial (kill time after fireCommit returned; +started / +resolved: the page had reported commit() started / resolved before the kill): ` +
      trials.map((r) => `${r.k}:${r.how}@${r.killAt.toFixed(0)}ms${r.startedBeforeKill ? '+started' : ''}${r.settledBeforeKill ? '+resolved' : ''}=${r.outcome}`).join(' '),
    `atomicity: commit started but not seen resolved before the kill: ${count2('all')} all, ${count2('none')} none`,
  ];
  const lastNone = Math.max(-1, ...trials.filter((r) => r.outcome === 'none').map((r) => r.killAt));
  const firstAll = Math.min(Infinity, ...trials.filter((r) => r.outcome === 'all').map((r) => r.killAt));
  lines.push(`atomicity: latest kill that lost the flush ${lastNone < 0 ? 'n/a' : fmt(lastNone)}, earliest kill that kept it ${firstAll === Infinity ? 'n/a' : fmt(firstAll)}`);
  if (all === 0 || none === 0) lines.push(`atomicity: every trial ended "${all ? 'all' : 'none'}": the all-or-none check held, but only one outcome was exercised`);
  for (const line of lines) {
    t.diagnostic(line);
    console.log(`[figures] ${line}`);
  }
  assert.equal(all + none, TRIALS);
});

// ------------------------------------------------------------------------------------------------
// 3. No IndexedDB

test('no indexedDB global (deleted by an init script): open rejects code 6 promptly, every time, without a wasm failure', { timeout: 60_000 }, async (t) => {
  const page = await openPage(env.browser.context);
  const consoleLines = [];
  page.on('console', (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  try {
    await page.addInitScript(() => {
      delete globalThis.indexedDB;
    });
    await page.goto(env.url(RELEASE_PAGE), { waitUntil: 'load' });
    await waitForReady(page);
    assert.equal(await evalInPage(page, () => typeof indexedDB), 'undefined');

    const name = uniqueName('no-idb');
    const elapsed = [];
    for (const attempt of [1, 2]) {
      const t0 = performance.now();
      const outcome = await withinMs(evalInPage(page, (o) => window.wp.open(o), { name, flushMode: 'manual' }), 10_000, `open #${attempt} without indexedDB`);
      elapsed.push(performance.now() - t0);
      assert.deepEqual(Object.keys(outcome), ['error']);
      assertPersistError(outcome.error, { code: 6, kind: 'storage_unavailable', retryable: false }, `open #${attempt}`);
      assert.equal(outcome.error.message, 'IndexedDB unavailable: indexedDB is not available in this context');
    }
    const line = `no indexedDB: both opens rejected code 6 in ${elapsed.map((ms) => `${ms.toFixed(1)} ms`).join(' and ')} (round trip from node)`;
    t.diagnostic(line);
    console.log(`[figures] ${line}`);
    assert.deepEqual(pageErrors(page), []);
    assert.deepEqual(consoleLines.filter((l) => WASM_FAILURE.test(l)), []);
  } finally {
    await page.close();
  }
});

test('a sandboxed opaque-origin frame: open rejects code 6 and reports it to the parent, without a wasm failure', { timeout: 60_000 }, async (t) => {
  const page = await env.open(RELEASE_PAGE, { ready: true });
  const consoleLines = [];
  page.on('console', (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  // An opaque origin fetches module scripts and the wasm in CORS mode: serve them as a CDN would.
  await page.route('**/*', async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), 'access-control-allow-origin': '*' } });
  });
  try {
    const name = uniqueName('sandboxed');
    const src = env.url(`${SANDBOXED_PAGE}?name=${encodeURIComponent(name)}`);
    const received = await evalInPage(
      page,
      ([url, ms]) =>
        new Promise((resolve) => {
          const timer = setTimeout(() => resolve({ hang: `no message from the sandboxed frame within ${ms} ms` }), ms);
          addEventListener('message', (event) => {
            if (event.data && event.data.from === 'realities-sandboxed') {
              clearTimeout(timer);
              resolve({ origin: event.origin, data: event.data });
            }
          });
          const frame = document.createElement('iframe');
          frame.setAttribute('sandbox', 'allow-scripts');
          frame.src = url;
          document.body.append(frame);
        }),
      [src, 15_000],
    );
    assert.equal(received.hang, undefined, received.hang);
    assert.equal(received.data.setupError, undefined, received.data.setupError);
    assert.equal(received.origin, 'null', 'the message comes from an opaque origin');
    const { probe, outcome, secondOpen, uncaught } = received.data;
    assert.deepEqual(
      { origin: probe.origin, typeofIndexedDB: probe.typeofIndexedDB, openThrows: probe.openThrows && probe.openThrows.name },
      { origin: 'null', typeofIndexedDB: 'object', openThrows: 'SecurityError' },
      `the frame itself cannot use IndexedDB: ${JSON.stringify(probe)}`,
    );
    for (const [what, result] of [['open', outcome], ['second open', secondOpen]]) {
      assert.deepEqual(Object.keys(result), ['error'], `${what}: ${JSON.stringify(result)}`);
      assertPersistError(result.error, { code: 6, kind: 'storage_unavailable', retryable: false }, what);
      assert.equal(result.error.message, `IndexedDB unavailable: SecurityError: ${probe.openThrows.message}`);
    }
    const line = `sandboxed frame: indexedDB.open throws ${probe.openThrows.name} "${probe.openThrows.message}"; WalletStore.open rejects code ${outcome.error.code} "${outcome.error.message}"`;
    t.diagnostic(line);
    console.log(`[figures] ${line}`);
    assert.deepEqual(uncaught, []);
    assert.deepEqual(pageErrors(page), []);
    assert.deepEqual(consoleLines.filter((l) => WASM_FAILURE.test(l)), []);
  } finally {
    await page.unrouteAll({ behavior: 'ignoreErrors' }).catch(() => {});
    await page.close();
  }
});

// ------------------------------------------------------------------------------------------------
// 4. A dedicated module worker

test('a dedicated module worker: open, store, commit, close, reopen, load exactly; the page then loads the same data', { timeout: 60_000 }, async () => {
  const page = await env.open(RELEASE_PAGE, { ready: true });
  const db = client(page, uniqueName('worker'));
  try {
    const received = await evalInPage(
      page,
      ([url, name, walletId, changeset, ms]) =>
        new Promise((resolve) => {
          const worker = new Worker(url, { type: 'module' });
          const done = (value) => {
            clearTimeout(timer);
            worker.terminate();
            resolve(value);
          };
          const timer = setTimeout(() => done({ hang: `no result from the worker within ${ms} ms` }), ms);
          worker.onerror = (event) => done({ workerError: event.message || 'worker script failed to load' });
          worker.onmessage = ({ data }) => {
            if (data.ready) worker.postMessage({ name, walletId, changeset });
            else done(data);
          };
        }),
      [env.url(WORKER), db.name, W1, toWire(richChangeset()), 20_000],
    );
    assert.deepEqual(Object.keys(received), ['ok'], JSON.stringify(received));
    const result = received.ok;
    assert.deepEqual(result.context, { isWorker: true, hasWindow: false });
    assert.deepEqual(result.steps, ['init', 'open', 'store', 'staged', 'commit', 'staged after commit', 'close', 'reopen', 'load', 'close again']);
    assert.deepEqual(result.staged, [{ walletId: W1, fields: RICH_FIELDS }]);
    assert.deepEqual(result.commit, report([W1]));
    assert.deepEqual(result.stagedAfter, []);
    assert.deepEqual(result.close, shutdownReport(report()));
    assert.deepEqual(result.reopenReport, { schemaVersion: 1, migratedFrom: null, discardedPending: [], access: 'readWrite' });
    assert.deepEqual(result.load.wallets, { [W1]: toWire(richLoaded()) }, 'the worker loads exactly what it stored');
    assert.deepEqual(result.load.report, toWire(loadReport(1, RICH_ROWS)));
    assert.deepEqual(result.closeAgain, shutdownReport(report()));

    // The page, after the worker closed the store and was terminated, sees the same data.
    assert.deepEqual(await raw(page, 'countWallet', db.name, W1), { ...ZERO_COUNTS, ...RICH_ROWS });
    await db.open();
    const loaded = await db.ok('load');
    assert.deepEqual(loaded.wallets, { [W1]: toWire(richLoaded()) }, 'the page loads what the worker wrote');
    assert.deepEqual(loaded.report, toWire(loadReport(1, RICH_ROWS)));
    await db.ok('close');
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

// ------------------------------------------------------------------------------------------------
// 5. A value the browser lost

/** Every file under the profile's IndexedDB blob directories (where Chromium keeps large values). */
function blobFiles(profile) {
  const root = path.join(profile, 'Default', 'IndexedDB');
  const out = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const at = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(at);
      else if (at.includes('.indexeddb.blob')) out.push(at);
    }
  };
  if (fs.existsSync(root)) walk(root);
  return out;
}

test('a value whose file the browser lost: load reads that store row by row in its one snapshot, reports the row (code 11) and loads every other row exactly, with commits racing it', { timeout: 120_000 }, async () => {
  const name = uniqueName('lost-file');
  const W2 = id('b2');
  const outpoints = [0, 1, 2].map((v) => `${TX1}:${v}`);
  // Random bytes: Chromium compresses values, and a large value goes to a file of its own.
  const big = randomValue(300 * 1024);
  const wallets = {
    [W1]: {
      wallet: { network: 'testnet', label: 'one', birthHeight: 1, createdAtMs: 0n, accountSchema: 1 },
      utxos: Object.fromEntries(outpoints.map((outpoint, v) => [outpoint, { outpoint, value: BigInt(v), script: v === 1 ? big : Uint8Array.of(v), height: v, account: 0 }])),
    },
    [W2]: generation(0),
  };
  // W2 as of commit `k`: its record and its UTXOs carry `k`, so a load mixing two commits shows.
  function generation(k) {
    return {
      wallet: { network: 'testnet', label: `gen ${k}`, birthHeight: 1, createdAtMs: 0n, accountSchema: 1 },
      utxos: Object.fromEntries(outpoints.map((outpoint) => [outpoint, { outpoint, value: BigInt(k), script: Uint8Array.of(k), height: k, account: 0 }])),
    };
  }
  const profile = env.browser.userDataDir;
  const before = new Set(blobFiles(profile));
  let page = await env.open(RELEASE_PAGE, { ready: true });
  await okInPage(page, async ({ WalletStore }, { name, wallets }) => {
    const store = await WalletStore.open({ name, flushMode: 'manual' });
    for (const [walletId, changes] of Object.entries(wallets)) await store.store(walletId, changes);
    await store.commit();
    await store.close();
  }, { name, wallets });
  await page.close();
  await env.browser.context.close();
  const lost = blobFiles(profile).filter((file) => !before.has(file));
  assert.equal(lost.length, 1, `one new blob file: ${lost.join(', ')}`);
  fs.rmSync(lost[0]);
  await env.browser.restart();

  page = await env.open(RELEASE_PAGE, { ready: true });
  const out = await okInPage(page, async ({ WalletStore }, { name, W2, rounds }) => {
    const store = await WalletStore.open({ name, flushMode: 'manual' });
    const loads = [await store.load()];
    // Each round stages the next generation of W2, then starts a load and, `delay` ms later, the
    // commit of that generation: the commit lands while the load reads, or before, or after.
    for (const { changes, delay } of rounds) {
      await store.store(W2, changes);
      const loading = store.load();
      await new Promise((resolve) => setTimeout(resolve, delay));
      const [loaded] = await Promise.all([loading, store.commit()]);
      loads.push(loaded);
    }
    loads.push(await store.load());
    await store.close();
    return loads;
  }, { name, W2, rounds: [1, 2, 3, 4, 5, 6].map((k) => ({ changes: generation(k), delay: [0, 0, 1, 2, 4, 8][k - 1] })) });

  const lostKey = JSON.stringify([W1, TX1, 1]);
  const expectedW1 = asLoaded({ ...wallets[W1], utxos: Object.fromEntries(Object.entries(wallets[W1].utxos).filter(([o]) => o !== outpoints[1])) }, W1);
  for (const [i, loaded] of out.entries()) {
    const at = `load ${i}`;
    assert.deepEqual(loaded.report.scannedStores, ['utxos'], at);
    assert.deepEqual(loaded.report.skipped.map((s) => [s.store, s.key, s.code]), [['utxos', lostKey, 11]], at);
    assert.match(loaded.report.skipped[0].reason, /NotReadableError/, at);
    assert.deepEqual(toWire(loaded.wallets[W1]), toWire(expectedW1), `${at}: W1 exactly, but the lost row`);
    // One moment: W2's record and every one of its UTXOs come from the same commit.
    const w2 = loaded.wallets[W2];
    const k = Number(w2.wallet.label.slice('gen '.length));
    assert.deepEqual(toWire(w2), toWire(asLoaded(generation(k), W2)), `${at}: W2 whole, as of commit ${k}`);
  }
  assert.equal(Number(out.at(-1).wallets[W2].wallet.label.slice(4)), 6, 'the last load sees the last commit');
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('values lost in the first and the last of three read chunks (10,000 rows): exactly those two rows are skipped, every other row loads', { timeout: 180_000 }, async () => {
  const name = uniqueName('lost-chunks');
  const WALLETS = 20;
  const PER_WALLET = 500;
  const walletIds = Array.from({ length: WALLETS }, (_, i) => id((16 + i).toString(16)));
  // Rows 1,000, 5,000 and 9,000 of utxos in key order (reads take 4,096 rows a request): each
  // big value is committed on its own, so its file is known; the first and the last are lost.
  const bigAt = [[2, 0], [10, 0], [18, 0]];
  const profile = env.browser.userDataDir;
  let page = await env.open(RELEASE_PAGE, { ready: true });
  const write = ({ WalletStore }, { name, walletIds, perWallet, big, TX1 }) => (async () => {
    const store = await WalletStore.open({ name, flushMode: 'manual' });
    if (big) {
      const [w, vout, bytes] = big;
      const outpoint = `${TX1}:${vout}`;
      await store.store(walletIds[w], { utxos: { [outpoint]: { outpoint, value: BigInt(vout), script: bytes, height: vout, account: 0 } } });
    } else {
      for (const walletId of walletIds) {
        const utxos = {};
        for (let v = 0; v < perWallet; v++) {
          const outpoint = `${TX1}:${v}`;
          utxos[outpoint] = { outpoint, value: BigInt(v), script: Uint8Array.of(v & 255), height: v, account: 0 };
        }
        await store.store(walletId, { wallet: { network: 'testnet', label: walletId.slice(0, 4), birthHeight: 1, createdAtMs: 0, accountSchema: 1 }, utxos });
      }
    }
    const report = await store.commit();
    await store.close();
    return report.succeeded.length;
  })();
  assert.equal(await okInPage(page, write, { name, walletIds, perWallet: PER_WALLET, TX1 }), WALLETS);
  const files = [];
  for (const [w, vout] of bigAt) {
    const before = new Set(blobFiles(profile));
    assert.equal(await okInPage(page, write, { name, walletIds, big: [w, vout, randomValue(300 * 1024)], TX1 }), 1);
    const added = blobFiles(profile).filter((file) => !before.has(file));
    assert.equal(added.length, 1, `one new blob file for row ${w * PER_WALLET + vout}`);
    files.push(added[0]);
  }
  await page.close();
  await env.browser.context.close();
  fs.rmSync(files[0]);
  fs.rmSync(files[2]);
  await env.browser.restart();

  page = await env.open(RELEASE_PAGE, { ready: true });
  const out = await okInPage(page, async ({ WalletStore }, { name, walletIds, perWallet, TX1 }) => {
    const store = await WalletStore.open({ name, flushMode: 'manual' });
    const { wallets, report } = await store.load();
    await store.close();
    // Every UTXO as written (the big ones but for their script), listed by wallet and vout.
    const wrong = [];
    const counts = {};
    for (const walletId of walletIds) {
      const utxos = wallets[walletId]?.utxos ?? {};
      counts[walletId] = Object.keys(utxos).length;
      for (const [outpoint, utxo] of Object.entries(utxos)) {
        const v = Number(outpoint.split(':')[1]);
        const ok = outpoint === `${TX1}:${v}` && utxo.value === BigInt(v) && utxo.height === v && (utxo.script.length > 1 || utxo.script[0] === (v & 255));
        if (!ok) wrong.push(outpoint);
      }
    }
    return { counts, wrong, skipped: report.skipped.map((s) => [s.store, s.key, s.code]), scanned: report.scannedStores, rows: report.rows.utxos, wallets: report.wallets };
  }, { name, walletIds, perWallet: PER_WALLET, TX1 });
  assert.deepEqual(out.scanned, ['utxos']);
  assert.deepEqual(out.skipped, [['utxos', JSON.stringify([walletIds[2], TX1, 0]), 11], ['utxos', JSON.stringify([walletIds[18], TX1, 0]), 11]]);
  assert.equal(out.wallets, WALLETS);
  assert.equal(out.rows, WALLETS * PER_WALLET - 2);
  assert.deepEqual(out.wrong, []);
  const expected = Object.fromEntries(walletIds.map((w, i) => [w, PER_WALLET - (i === 2 || i === 18 ? 1 : 0)]));
  assert.deepEqual(out.counts, expected);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

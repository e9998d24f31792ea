// The benchmark cannot rot: every workload runs end to end at a tiny size through the real runner
// (`node bench/run.mjs --smoke`), which verifies that each contender's database holds exactly the
// expected rows with the same bytes as ours; the result has the format; and `load()` issues
// as many IndexedDB requests for 1,000 wallets as for 1. Part of `make test` (test-bench-smoke).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { evalInPage } from '../tests/e2e/harness.mjs';
import { openBenchPage } from './run.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RUNNER = path.join(HERE, 'run.mjs');

/** `node bench/run.mjs --smoke --only <only> --out <tmp> [extra]`; resolves the result JSON. */
async function smoke(only, extra = []) {
  const out = await fsp.mkdtemp(path.join(os.tmpdir(), 'wallet-persist-bench-smoke-'));
  try {
    const { stderr } = await new Promise((resolve, reject) => {
      execFile(process.execPath, [RUNNER, '--smoke', '--only', only, '--out', out, ...extra], { timeout: 180_000 }, (error, stdout, stderr) =>
        error ? reject(Object.assign(error, { message: `${error.message}\n${stderr}` })) : resolve({ stdout, stderr }),
      );
    });
    const result = JSON.parse(await fsp.readFile(path.join(out, 'latest.json'), 'utf8'));
    const markdown = await fsp.readFile(path.join(out, 'latest.md'), 'utf8');
    const svg = await fsp.readFile(path.join(out, 'latest.svg'), 'utf8');
    return { result, markdown, svg, stderr };
  } finally {
    await fsp.rm(out, { recursive: true, force: true });
  }
}

const CONTENDERS = {
  W1: ['ours', 'raw_idb', 'dexie', 'idb_keyval', 'idb_keyval_setmany', 'ours_encrypted'],
  W2: ['ours', 'raw_idb', 'dexie', 'idb_keyval_setmany'],
  W3: ['ours', 'ours_breakdown', 'ours_encrypted', 'raw_idb', 'dexie', 'idb_keyval'],
  W4: ['ours', 'raw_idb'],
  W5: ['ours', 'raw_idb', 'dexie', 'idb_keyval', 'idb_keyval_setmany'],
  W6: ['ours', 'raw_idb', 'raw_idb_every', 'dexie', 'dexie_bulkput', 'idb_keyval_setmany'],
  W7: ['ours', 'serde_wasm_bindgen', 'json'],
  W8: ['ours', 'raw_idb'],
  W9: ['ours', 'raw_idb'],
};

function assertStats(stats, what) {
  assert.ok(stats, `${what} is missing`);
  for (const key of ['median_ms', 'p10_ms', 'p90_ms']) {
    assert.equal(typeof stats[key], 'number', `${what}.${key}`);
    assert.ok(Number.isFinite(stats[key]) && stats[key] >= 0, `${what}.${key} = ${stats[key]}`);
  }
  assert.ok(stats.p10_ms <= stats.median_ms && stats.median_ms <= stats.p90_ms, `${what}: p10 ≤ median ≤ p90`);
}

for (const [workload, contenders] of Object.entries(CONTENDERS)) {
  test(`smoke: ${workload} runs every contender and stores the same bytes`, async () => {
    const { result } = await smoke(workload);
    const w = result.workloads[workload];
    assert.ok(w, `${workload} missing from the result`);
    assert.ok(w.rows > 0);
    assert.deepEqual(
      Object.keys(w).filter((k) => w[k] && typeof w[k] === 'object' && 'median_ms' in w[k]),
      contenders,
      'the contenders of the workload (a contender that does not apply is omitted)',
    );
    for (const c of contenders) assertStats(w[c], `${workload}.${c}`);
    if (w.raw_idb) {
      assert.equal(typeof w.ratio_vs_raw_idb, 'number');
      const [p10, p90] = w.ratio_spread_vs_raw_idb;
      assert.ok(p10 > 0 && p10 <= p90, `per-round ratio spread ${p10}–${p90}`);
    }
    // Rows written (W6: the merged rows, not every update's).
    if (workload === 'W6') assert.ok(w.rows < 2 * 200, `W6 rows ${w.rows}`);
    if (w.dexie) assert.equal(typeof w.ratio_vs_dexie, 'number');
    if (workload === 'W3') {
      const phases = w.ours_breakdown.phases;
      for (const p of ['open_ms', 'read_ms', 'decode_ms', 'to_js_ms']) assert.ok(phases[p] >= 0, `W3 phase ${p}`);
    }
  });
}

test('smoke: the result has the issue format, with a Markdown table and an SVG chart', async () => {
  const { result, markdown, svg } = await smoke('W5,requests');
  assert.match(result.date, /^\d{4}-\d\d-\d\dT/);
  assert.match(result.browser, /Chrom(e|ium)[ /]\d+\./);
  assert.ok(Number.isInteger(result.machine.cores) && result.machine.cores > 0);
  assert.ok(result.machine.memory_gb > 0);
  assertStats(result.workloads.W5.ours, 'W5.ours');
  assert.equal(result.load_request_count.wallets_1, result.load_request_count.wallets_1000);
  assert.ok(result.targets.some((t) => t.id === 'W5') && result.targets.some((t) => t.id === 'load-requests'));
  assert.match(markdown, /\| \*\*W5\*\* /);
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
});

test('smoke: the scale point measures commit and load time, longest task, wasm memory and JS heap', async () => {
  const { result, markdown } = await smoke('scale');
  const x = result.scale;
  assert.equal(x.rows, 100);
  for (const c of ['ours', 'raw_idb']) {
    for (const k of ['commit_ms', 'load_ms', 'commit_longest_task_ms', 'load_longest_task_ms']) assert.ok(x.contenders[c][k].median >= 0, `${c}.${k}`);
    for (const k of ['commit_wasm_memory_bytes', 'load_wasm_memory_bytes', 'commit_js_heap_bytes', 'load_js_heap_bytes']) {
      assert.ok(x.contenders[c][k].median > 0, `${c}.${k}`);
    }
  }
  // Ours holds its buffer in wasm memory; B0 only the page's (the payload generator's) share.
  assert.ok(x.contenders.ours.commit_wasm_memory_bytes.median >= x.contenders.raw_idb.commit_wasm_memory_bytes.median);
  assert.ok(result.wasm_size === undefined || (result.wasm_size.gzip > 0 && result.wasm_size.gzip < result.wasm_size.raw));
  assert.match(markdown, /\*\*At 100,000 rows\*\*/);
});

test('smoke: W1, W3 and W6 run on Firefox and WebKit, ours and B0, each with its ratio', async () => {
  const { result, markdown } = await smoke('W1,W3,W6', ['--engines', 'firefox,webkit']);
  for (const engine of ['firefox', 'webkit']) {
    const e = result.engines[engine];
    assert.ok(e, `${engine} missing`);
    assert.match(e.browser, /\d/);
    for (const w of ['W1', 'W3', 'W6']) {
      assertStats(e.workloads[w].ours, `${engine} ${w}.ours`);
      assertStats(e.workloads[w].raw_idb, `${engine} ${w}.raw_idb`);
      assert.equal(typeof e.workloads[w].ratio_vs_raw_idb, 'number');
    }
  }
  assert.match(markdown, /\*\*Per engine\*\*/);
});

test('load issues the same number of IndexedDB requests for 1 and 1,000 wallets', async () => {
  const { server, browser, page } = await openBenchPage({ logLine: () => {} });
  try {
    const stores = (await evalInPage(page, () => window.bench.info())).areaStores;
    const one = await evalInPage(page, () => window.bench.countLoadRequests(1));
    const many = await evalInPage(page, () => window.bench.countLoadRequests(1000));
    // The loads really read what was written (the counts are not of an empty database).
    assert.equal(one.wallets, 1);
    assert.equal(one.rows, stores.length);
    assert.equal(many.wallets, 1000);
    assert.equal(many.rows, 1000 * stores.length);
    assert.equal(many.requests, one.requests, `requests: ${JSON.stringify(one.byMethod)} vs ${JSON.stringify(many.byMethod)}`);
    assert.deepEqual(many.byMethod, one.byMethod);
    // One readonly transaction and a bounded number of bulk reads per store.
    assert.equal(one.transactions, 1);
    assert.equal(many.transactions, 1);
    assert.ok(one.requests >= stores.length && one.requests <= 2 * stores.length, `${one.requests} requests for ${stores.length} stores`);
  } finally {
    await browser.close();
    await server.close();
  }
});

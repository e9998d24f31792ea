#!/usr/bin/env node
// The benchmark runner (`make bench`): serves the repo on 127.0.0.1, launches Debian's Chromium as
// a persistent context on a fresh profile, opens bench/index.html and runs every workload there:
// warm-ups, then repetitions in an interleaved (seeded, shuffled per round) contender order, a fresh
// database per repetition. Then W1, W3 and W6 (ours and B0 only) on Firefox ESR and WebKitGTK
// through WebDriver (tests/engines/webdriver.mjs; WebKit needs a display: scripts/with-xvfb.sh).
// Writes bench/results/latest.{json,md,svg} and a dated copy of the JSON.
//
//   node bench/run.mjs                    # the issue's sizes, 15 repetitions, 2 warm-ups
//   node bench/run.mjs --smoke            # tiny sizes, 2 repetitions, 1 warm-up, results to a temp dir
//   options: --only W1,W3,requests,scale  --contenders ours,raw_idb  --reps N  --warmups N  --out DIR
//            --size full|smoke  --pkg pkg-base (another build of ours, e.g. from make bench-ab)
//            --engines chromium,firefox,webkit (default: all three; --smoke: chromium)
//            --engine-reps N (Firefox and WebKit; default 5)  --scale-reps N (default 3)
//            --rows N (W3 only: N rows, N / 100 wallets × 100 rows, instead of the size's)
//
// Every warm-up (every repetition with --smoke) is verified: the database must hold exactly the
// expected rows, with the same digest (store, key, bytes) for every contender of the workload.
import os from 'node:os';
import path from 'node:path';
import fsp from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import zlib from 'node:zlib';
import { startServer, launch, openPage, reload, evalInPage, CHROMIUM_PATH } from '../tests/e2e/harness.mjs';
import { summarize, writeResults, updateReadme } from './report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ALL = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6', 'W7', 'W8', 'W9', 'requests', 'scale'];
export const ENGINES = ['chromium', 'firefox', 'webkit'];
/** What Firefox and WebKit run: these workloads, ours and B0 only. */
const ENGINE_WORKLOADS = ['W1', 'W3', 'W6'];
const ENGINE_CONTENDERS = ['ours', 'raw_idb'];
/** W5 takes ~10 ms against a timer of 0.1 ms and much scheduling noise: three times the rounds. */
const ROUNDS_FACTOR = { W5: 3 };

export function parseArgs(argv) {
  const opts = { smoke: false, only: ALL, pkg: 'pkg', contenders: undefined, reps: undefined, warmups: undefined, out: undefined, size: undefined, engines: undefined, engineReps: undefined, scaleReps: undefined, rows: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--smoke') opts.smoke = true;
    else if (arg === '--only') opts.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (arg === '--contenders') opts.contenders = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (arg === '--reps') opts.reps = Number(value());
    else if (arg === '--pkg') opts.pkg = value();
    else if (arg === '--warmups') opts.warmups = Number(value());
    else if (arg === '--out') opts.out = value();
    else if (arg === '--size') opts.size = value();
    else if (arg === '--engines') opts.engines = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (arg === '--engine-reps') opts.engineReps = Number(value());
    else if (arg === '--scale-reps') opts.scaleReps = Number(value());
    else if (arg === '--rows') opts.rows = Number(value());
    else throw new Error(`unknown argument ${arg}`);
  }
  for (const w of opts.only) if (!ALL.includes(w)) throw new Error(`unknown workload ${w} (expected ${ALL.join(', ')})`);
  opts.size ??= opts.smoke ? 'smoke' : 'full';
  opts.reps ??= opts.smoke ? 2 : 15;
  opts.warmups ??= opts.smoke ? 1 : 2;
  opts.engines ??= opts.smoke ? ['chromium'] : ENGINES;
  for (const e of opts.engines) if (!ENGINES.includes(e)) throw new Error(`unknown engine ${e} (expected ${ENGINES.join(', ')})`);
  opts.engineReps ??= opts.smoke ? 2 : Math.min(opts.reps, 5);
  opts.scaleReps ??= opts.smoke ? 1 : Math.min(opts.reps, 3);
  if (!(opts.reps >= 1) || !(opts.warmups >= 0)) throw new Error('--reps must be ≥ 1 and --warmups ≥ 0');
  if (!(opts.engineReps >= 1) || !(opts.scaleReps >= 1)) throw new Error('--engine-reps and --scale-reps must be ≥ 1');
  if (opts.rows !== undefined && !(Number.isInteger(opts.rows) && opts.rows >= 100 && opts.rows % 100 === 0)) throw new Error('--rows must be a multiple of 100');
  return opts;
}

/** A seeded shuffle (mulberry32), so a run's interleaving is reproducible. */
function shuffled(list, seed) {
  let a = seed >>> 0;
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const log = (line) => process.stderr.write(line + '\n');

/** `Chromium 156.0.8078.79` from `chromium --version` (the product CDP reports says "Chrome"). */
function chromiumVersion() {
  return new Promise((resolve) => {
    execFile(CHROMIUM_PATH, ['--version'], { timeout: 10_000 }, (error, stdout) => {
      const match = !error && /(Chromium|Chrome) ([\d.]+)/.exec(stdout);
      resolve(match ? `${match[1]} ${match[2]}` : null);
    });
  });
}

/** The loopback server, Chromium on a fresh profile (gc() exposed) and the benchmark page. */
export async function openBenchPage({ query = '', logLine = log } = {}) {
  const server = await startServer();
  const browser = await launch({ args: ['--js-flags=--expose-gc', '--enable-precise-memory-info'], log: (line) => logLine(line) });
  try {
    const page = await openPage(browser.context, server.url(`/bench/index.html${query}`), { ready: true, timeout: 120_000 });
    page.setDefaultTimeout(600_000);
    return { server, browser, page };
  } catch (error) {
    await browser.close();
    await server.close();
    throw error;
  }
}

/** What the runner needs of a page, over playwright (Chromium) or WebDriver (every engine). */
export const chromiumApi = (page) => ({
  evaluate: (fn, arg) => evalInPage(page, fn, arg),
  reload: () => reload(page, { ready: true, timeout: 120_000 }),
});
const webdriverApi = (page) => ({ evaluate: (fn, arg) => page.evaluate(fn, arg), reload: () => page.reload({ ready: true }) });

/** Runs the selected workloads on every selected engine; returns the raw samples (see report.mjs
 *  summarize): Chromium's in `workloads` (and `scale`, `load_request_count`), the others' in
 *  `engines`. */
export async function runBench(opts, { logLine = log } = {}) {
  const raw = opts.engines.includes('chromium')
    ? await runChromium(opts, logLine)
    : { date: new Date().toISOString(), machine: machine(), method: { size: opts.size, warmups: opts.warmups, repetitions: opts.reps, build: `bench/${opts.pkg}` }, workloads: {} };
  for (const engine of opts.engines.filter((e) => e !== 'chromium')) {
    raw.engines ??= {};
    raw.engines[engine] = await runEngine(engine, opts, logLine);
  }
  if (opts.only.includes('scale')) raw.wasm_size = await wasmSize(logLine);
  return raw;
}

function machine() {
  return {
    cores: os.cpus().length,
    memory_gb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    cpu: os.cpus()[0]?.model?.trim(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

/** The release package's .wasm (pkg/, `make pkg`): raw, gzip -9 and brotli -11 sizes. */
async function wasmSize(logLine) {
  const file = path.join(HERE, '..', 'pkg', 'wallet_persist_bg.wasm');
  let bytes;
  try {
    bytes = await fsp.readFile(file);
  } catch {
    logLine('warning: pkg/wallet_persist_bg.wasm not found (make pkg): no .wasm size in the results');
    return undefined;
  }
  const brotli = zlib.brotliCompressSync(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } });
  return { file: 'pkg/wallet_persist_bg.wasm', raw: bytes.length, gzip: zlib.gzipSync(bytes, { level: 9 }).length, brotli: brotli.length };
}

/** W1, W3 and W6 (ours and B0) on Firefox or WebKit, through WebDriver. */
async function runEngine(engine, opts, logLine) {
  const { launch: launchEngine } = await import('../tests/engines/webdriver.mjs');
  const server = await startServer();
  const browser = await launchEngine(engine);
  try {
    const page = await browser.newPage(server.url(`/bench/index.html${opts.pkg === 'pkg' ? '' : `?pkg=${opts.pkg}`}`), { ready: true });
    const api = webdriverApi(page);
    const contenders = await api.evaluate(() => window.bench.contenders());
    const info = await api.evaluate(() => window.bench.info());
    const engineOpts = { ...opts, reps: opts.engineReps, warmups: Math.min(opts.warmups, 1) };
    const out = {
      browser: browser.version,
      user_agent: info.userAgent,
      // What this engine offers the scale point's measures (Chromium: both).
      offers: { long_tasks: info.longTasks, js_heap: info.jsHeap, gc: info.gc, entry_types: info.entryTypes },
      method: { warmups: engineOpts.warmups, repetitions: engineOpts.reps },
      workloads: {},
    };
    for (const workload of ENGINE_WORKLOADS.filter((w) => opts.only.includes(w))) {
      const started = Date.now();
      const names = contenders[workload].filter((c) => ENGINE_CONTENDERS.includes(c) && (!opts.contenders || opts.contenders.includes(c)));
      out.workloads[workload] = await runWorkload(api, workload, names, engineOpts, logLine);
      logLine(`[bench] ${engine} ${workload} done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${oneLine(out.workloads[workload])}`);
    }
    return out;
  } finally {
    await browser.close();
    await server.close();
  }
}

/** Every selected workload on Chromium (playwright), the scale point last. */
async function runChromium(opts, logLine) {
  const { server, browser, page } = await openBenchPage({ query: opts.pkg === 'pkg' ? '' : `?pkg=${opts.pkg}`, logLine });
  const api = chromiumApi(page);
  try {
    const cdp = await browser.context.newCDPSession(page);
    const version = await cdp.send('Browser.getVersion');
    await cdp.detach();
    const binary = await chromiumVersion();
    const info = await evalInPage(page, () => window.bench.info());
    if (!info.gc) logLine('warning: gc() is not exposed; GC is not settled before timed runs');
    if (info.pkg !== opts.pkg) throw new Error(`the page loaded bench/${info.pkg}, not bench/${opts.pkg}`);
    const contenders = await evalInPage(page, () => window.bench.contenders());
    const raw = {
      date: new Date().toISOString(),
      browser: binary || version.product,
      browserProduct: version.product,
      userAgent: info.userAgent,
      machine: machine(),
      method: { size: opts.size, warmups: opts.warmups, repetitions: opts.reps, build: `bench/${opts.pkg}` },
      workloads: {},
    };
    for (const workload of opts.only.filter((w) => w !== 'requests' && w !== 'scale')) {
      const started = Date.now();
      const names = contenders[workload].filter((c) => !opts.contenders || opts.contenders.includes(c));
      const run = workload === 'W8' || workload === 'W9' ? runMany : runWorkload;
      raw.workloads[workload] = await run(api, workload, names, opts, logLine);
      logLine(`[bench] ${workload} done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${oneLine(raw.workloads[workload])}`);
    }
    if (opts.only.includes('requests')) {
      const counts = {};
      for (const wallets of [1, 1000]) counts[wallets] = await evalInPage(page, (n) => window.bench.countLoadRequests(n), wallets);
      raw.load_request_count = counts;
      logLine(`[bench] load requests: 1 wallet ${counts[1].requests}, 1000 wallets ${counts[1000].requests}`);
    }
    if (opts.only.includes('scale')) {
      const started = Date.now();
      raw.scale = await runScale(api, opts, info, logLine);
      const m = (c, k) => median(raw.scale.samples[c].map((x) => x[k])).toFixed(0);
      logLine(`[bench] scale done in ${((Date.now() - started) / 1000).toFixed(1)} s: commit ours ${m('ours', 'commit_ms')} ms (staging ${m('ours', 'stage_ms')} ms, longest task ${m('ours', 'stage_longest_task_ms')} ms in staging, ${m('ours', 'commit_longest_task_ms')} ms in commit()), raw_idb ${m('raw_idb', 'commit_ms')} ms (longest task ${m('raw_idb', 'commit_longest_task_ms')} ms); load ours ${m('ours', 'load_ms')} ms, raw_idb ${m('raw_idb', 'load_ms')} ms`);
    }
    return raw;
  } finally {
    await browser.close();
    await server.close();
  }
}

/** The scale point (Chromium): per round, each contender commits the 100,000 rows in one flush on
 *  a freshly loaded page, then loads them cold after a reload; no warm-up (each round starts from
 *  a fresh page, and the wasm memory reading needs one). */
async function runScale(api, opts, info, logLine) {
  const samples = { ours: [], raw_idb: [] };
  let rows;
  let bytes;
  for (let round = 0; round < opts.scaleReps; round++) {
    for (const contender of shuffled(Object.keys(samples), 0x5ca1e + round * 7919)) {
      await api.reload();
      const commit = await api.evaluate(([c, s]) => window.bench.scaleCommit(c, s), [contender, opts.size]);
      if (commit.marks?.length) logLine(`[bench] scale ${contender} wasm memory: ${commit.marks.map(([label, bytes]) => `${label} ${(bytes / 2 ** 20).toFixed(1)} MiB`).join(', ')}`);
      await api.reload();
      const load = await api.evaluate(([c, n]) => window.bench.scaleLoad(c, n), [contender, commit.name]);
      if (load.rows !== commit.rows) throw new Error(`scale ${contender}: loaded ${load.rows} rows, committed ${commit.rows}`);
      ({ rows, bytes } = commit);
      samples[contender].push({ ...commit.measures, ...load.measures });
    }
  }
  const [wallets, perWallet] = opts.size === 'smoke' ? [10, 10] : [1000, 100];
  const notes = [
    info.longTasks ? null : 'This browser has no Long Tasks API: no longest task.',
    info.jsHeap ? null : 'This browser has no performance.memory: no JS heap.',
    'Ours stages with 1,000 store() calls, then commit() after a macrotask: the staging loop is one task of the app (store() settles in microtasks), reported apart from the tasks of commit(); the commit time includes both, as B0 has no staging.',
    'Longest task: the Long Tasks API reports tasks over 50 ms only (0: none). The JS heap after the commit includes the 100,000-row payload both contenders write from.',
  ].filter(Boolean).join(' ');
  return { wallets, rows_per_wallet: perWallet, rows, bytes, samples, notes };
}

/** The size a workload runs at: the named size, or for W3 with --rows, `{ wallets, rows }`. */
const sizeOf = (workload, opts) => (workload === 'W3' && opts.rows ? { wallets: opts.rows / 100, rows: 100 } : opts.size);

async function runWorkload(api, workload, names, opts, logLine) {
  const size = sizeOf(workload, opts);
  const prepared = await api.evaluate(([w, s]) => window.bench.prepare(w, s), [workload, size]);
  const samples = Object.fromEntries(names.map((n) => [n, { ms: [], phases: {} }]));
  let reference = null;
  const rounds = opts.warmups + opts.reps * (opts.smoke ? 1 : ROUNDS_FACTOR[workload] || 1);
  for (let round = 0; round < rounds; round++) {
    const measured = round >= opts.warmups;
    const verify = opts.smoke || !measured;
    for (const contender of shuffled(names, 0x5eed + round * 7919 + workload.charCodeAt(1))) {
      const result = await runOnce(api, workload, contender, size, verify);
      if (verify && result.check) {
        const { check } = result;
        const what = `${workload} ${contender}`;
        if (check.rows !== prepared.expectedRows) throw new Error(`${what}: the database holds ${check.rows} rows, expected ${prepared.expectedRows}`);
        // Sealed rows (random nonces, hashed keys) differ from every other contender's by design:
        // only their count is checked (and W3 checks that they load back).
        if (contender !== 'ours_encrypted') {
          reference ??= { contender, digest: check.digest };
          if (check.digest !== reference.digest) throw new Error(`${what}: stored data differ from ${reference.contender}'s (digest ${check.digest} vs ${reference.digest})`);
        }
      }
      if (workload === 'W3' && result.rows !== prepared.rows) throw new Error(`W3 ${contender} loaded ${result.rows} rows, expected ${prepared.rows}`);
      if (!(result.ms >= 0)) throw new Error(`${workload} ${contender}: no time measured`);
      if (!measured) continue;
      samples[contender].ms.push(result.ms);
      for (const [phase, ms] of Object.entries(result.phases || {})) (samples[contender].phases[phase] ??= []).push(ms);
      if (result.bytes !== undefined) samples[contender].bytes = result.bytes;
    }
  }
  return { rows: prepared.rows, bytes: prepared.bytes, samples };
}

/**
 * W8 / W9: one database of wallets × rows, written once (untimed), the page reloaded, then each
 * round reads it once per contender: W8 one wallet (another one each round), W9 the wallet list.
 * Every read is checked (W8: the wallet's rows, W9: every wallet). `api`: see chromiumApi.
 */
async function runMany(api, workload, names, opts) {
  const { name, ids } = await api.evaluate(([w, s]) => window.bench.populateMany(w, s), [workload, opts.size]);
  await api.reload();
  const { wallets, rows } = await api.evaluate(([w, s]) => window.bench.sizes[w][s], [workload, opts.size]);
  const expected = workload === 'W8' ? rows : wallets;
  const samples = Object.fromEntries(names.map((n) => [n, { ms: [], phases: {} }]));
  for (let round = 0; round < opts.warmups + opts.reps; round++) {
    const walletId = ids[(round * 7919 + 13) % ids.length];
    for (const contender of shuffled(names, 0x5eed + round * 7919 + workload.charCodeAt(1))) {
      const result = await api.evaluate(([w, c, n, id]) => window.bench.readMany(w, c, n, id), [workload, contender, name, walletId]);
      if (result.rows !== expected) throw new Error(`${workload} ${contender} read ${result.rows} rows, expected ${expected}`);
      if (round >= opts.warmups) samples[contender].ms.push(result.ms);
    }
  }
  await api.evaluate((n) => window.bench.drop(n), name);
  return { rows: expected, bytes: undefined, samples };
}

/** One repetition of `contender` in `workload` (W3: populate, reload, cold load); `api`: see
 *  chromiumApi. */
export async function runOnce(api, workload, contender, size, verify) {
  if (workload === 'W7') return api.evaluate(([c, s]) => window.bench.codec(c, s), [contender, size]);
  if (workload === 'W3') {
    const name = await api.evaluate(([c, s]) => window.bench.populate(c, s), [contender, size]);
    await api.reload();
    return api.evaluate(([c, n, v]) => window.bench.load(c, n, { verify: v }), [contender, name, verify]);
  }
  return api.evaluate(([w, c, s, v]) => window.bench.run(w, c, s, { verify: v }), [workload, contender, size, verify]);
}

function oneLine({ samples }) {
  return Object.entries(samples)
    .map(([name, s]) => `${name} ${median(s.ms).toFixed(1)} ms`)
    .join(', ');
}

function median(list) {
  const sorted = [...list].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const out = opts.out ?? (opts.smoke ? await fsp.mkdtemp(path.join(os.tmpdir(), 'wallet-persist-bench-')) : path.join(HERE, 'results'));
  log(`[bench] size ${opts.size}, ${opts.warmups} warm-up(s) + ${opts.reps} repetitions (other engines ${opts.engineReps}, scale ${opts.scaleReps}), workloads ${opts.only.join(' ')}, engines ${opts.engines.join(' ')}; results to ${out}`);
  const started = Date.now();
  const raw = await runBench(opts);
  const results = summarize(raw);
  const files = await writeResults(results, out, { dated: !opts.smoke });
  // A full run into bench/results/ is what the README quotes.
  if (!opts.smoke && opts.size === 'full' && !opts.rows && path.resolve(out) === path.join(HERE, 'results') && (await updateReadme(path.join(HERE, '..', 'README.md'), results))) {
    files.push('README.md (Benchmarks)');
  }
  log(`[bench] done in ${((Date.now() - started) / 1000).toFixed(0)} s; wrote ${files.join(', ')}`);
  for (const target of results.targets) log(`[bench] target ${target.met ? 'met   ' : 'MISSED'} ${target.what}: ${target.value}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    log(`[bench] failed: ${error && error.stack ? error.stack : error}`);
    process.exit(1);
  });
}

// The downstream view of the package: examples/consumer depends on ../../pkg by path (npm ci
// links it), is type-checked with `tsc --noEmit --strict` against pkg/wallet_persist.d.ts, bundled
// with Vite, and the bundle runs end to end in headless Chromium: the first visit registers and
// commits a wallet, the second (after a reload) finds the same bigint balance on disk. The same app
// also runs under Vite's dev server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launch, openPage, reload, pageErrors, startServer, uniqueName, REPO_ROOT } from './harness.mjs';

const APP = path.join(REPO_ROOT, 'examples', 'consumer');
const BIN = path.join(REPO_ROOT, 'node_modules', '.bin');
const DIST = path.join(APP, 'dist');

/** Runs a command in the consumer app; its output goes to the test log; a non-zero exit throws. */
function sh(command, args, { cwd = APP } = {}) {
  const started = Date.now();
  try {
    const output = execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    process.stderr.write(`[consumer] ${path.basename(command)} ${args.join(' ')}: ${Date.now() - started} ms\n`);
    return output;
  } catch (error) {
    throw new Error(`${path.basename(command)} ${args.join(' ')} failed (exit ${error.status}):\n${error.stdout}\n${error.stderr}`);
  }
}

let server;
let browser;

before(async () => {
  assert.ok(fs.existsSync(path.join(REPO_ROOT, 'pkg', 'package.json')), 'pkg/ is built (make pkg)');
  // Only the `file:../../pkg` link: nothing to download, so --offline holds.
  sh('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error']);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('the consumer depends on pkg/ by path, through the package manifest', () => {
  const link = fs.realpathSync(path.join(APP, 'node_modules', 'wallet-persist'));
  assert.equal(link, fs.realpathSync(path.join(REPO_ROOT, 'pkg')));
  const manifest = JSON.parse(fs.readFileSync(path.join(link, 'package.json'), 'utf8'));
  assert.equal(manifest.name, 'wallet-persist');
  assert.deepEqual(manifest.exports['.'], { types: './index.d.ts', default: './index.js' });
  for (const key of ['version', 'description', 'license', 'repository', 'keywords', 'files', 'types']) {
    assert.ok(manifest[key], `pkg/package.json has ${key}`);
  }
  for (const file of manifest.files) assert.ok(fs.existsSync(path.join(link, file)), `${file} listed in files exists`);
  assert.ok(!fs.readFileSync(path.join(link, 'wallet_persist.d.ts'), 'utf8').includes('failNext('), 'the published types have no fault injection');
  assert.ok(!fs.readFileSync(path.join(link, 'wallet_persist.js'), 'utf8').includes('failNext'), 'nor has the published module');
});

test('the consumer type-checks with tsc --noEmit --strict (no any in the API, refusals are type errors)', () => {
  sh(path.join(BIN, 'tsc'), ['-p', '.', '--noEmit', '--strict']);
});

test('a deliberate type error fails the type check (the check can fail)', () => {
  const probe = path.join(APP, 'src', 'zz-probe.ts');
  fs.writeFileSync(probe, "import { WalletStore } from 'wallet-persist';\nexport const p = WalletStore.open({ name: 1 });\n");
  try {
    assert.throws(() => sh(path.join(BIN, 'tsc'), ['-p', '.', '--noEmit']), /zz-probe\.ts.*(TS2322|not assignable)/s);
  } finally {
    fs.rmSync(probe);
  }
});

test('Vite bundles it, and the bundle runs in headless Chromium: register, commit, reload, same balance', async () => {
  fs.rmSync(DIST, { recursive: true, force: true });
  sh(path.join(BIN, 'vite'), ['build', '--logLevel', 'warn']);
  const assets = fs.readdirSync(path.join(DIST, 'assets'));
  assert.ok(assets.some((f) => f.endsWith('.wasm')), `Vite emitted the .wasm: ${assets.join(', ')}`);
  assert.ok(assets.some((f) => f.endsWith('.js')), 'and one JS bundle');
  const wasmBytes = fs.statSync(path.join(DIST, 'assets', assets.find((f) => f.endsWith('.wasm')))).size;
  assert.equal(wasmBytes, fs.statSync(path.join(REPO_ROOT, 'pkg', 'wallet_persist_bg.wasm')).size, 'the release .wasm, unchanged');

  server = await startServer({ root: DIST });
  browser = await launch();
  const db = uniqueName('consumer');
  const page = await openPage(browser.context, server.url(`/?db=${db}`), { ready: true });
  const first = await page.evaluate(() => window.__ready);
  assert.equal(first.firstVisit, true);
  assert.equal(first.balance, String(2n ** 53n + 1n), 'a u64 above 2^53, exact');
  assert.equal(first.valueType, 'bigint');
  assert.deepEqual(first.labels, ['Consumer']);
  assert.deepEqual(first.commit, { succeeded: ['c0'.repeat(32)], failed: [], stillPending: [] });
  assert.deepEqual(first.refusals, [
    { call: 'registerWallet (exists)', code: 3, kind: 'wallet_already_exists', retryable: false },
    { call: 'store (bad id)', code: 1, kind: 'invalid_argument', retryable: false },
    { call: 'load (closed)', code: 20, kind: 'closed', retryable: false },
  ]);
  assert.equal(first.syncHeight, 850_100, 'the coordinator pass was committed');
  assert.ok(first.backup.bytes > 0);
  assert.equal(first.backup.imported.wallets, 1);
  assert.equal(first.backup.copyBalance, first.balance, 'the imported copy has the same balance');
  assert.ok(first.backup.progress.includes('export') && first.backup.progress.includes('write'), JSON.stringify(first.backup.progress));
  assert.equal(first.shutdown.clean, true);
  assert.deepEqual(first.shutdown.workers.map((w) => w.key), ['core-sync', 'persister']);

  await reload(page, { ready: true });
  const second = await page.evaluate(() => window.__ready);
  assert.equal(second.firstVisit, false, 'the wallet was on disk after the reload');
  assert.equal(second.balance, first.balance);
  assert.equal(second.valueType, 'bigint');
  assert.deepEqual(second.labels, ['Consumer']);
  assert.deepEqual(second.refusals, [{ call: 'load (closed)', code: 20, kind: 'closed', retryable: false }]);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('the same app runs under the Vite dev server (the linked pkg/ is served, .wasm included)', async () => {
  const vite = spawn(path.join(BIN, 'vite'), ['--host', '127.0.0.1', '--port', '0', '--clearScreen', 'false'], {
    cwd: APP,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let output = '';
  vite.stdout.on('data', (chunk) => (output += chunk));
  vite.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise((resolve) => vite.once('exit', resolve));
  const dev = await launch();
  try {
    const deadline = Date.now() + 20_000;
    let origin;
    while (!(origin = /http:\/\/127\.0\.0\.1:\d+\//.exec(output)?.[0])) {
      assert.ok(Date.now() < deadline && vite.exitCode === null, `vite dev server did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const page = await openPage(dev.context, `${origin}?db=${uniqueName('consumer-dev')}`, { ready: true });
    const result = await page.evaluate(() => window.__ready);
    assert.equal(result.firstVisit, true);
    assert.equal(result.balance, String(2n ** 53n + 1n));
    assert.equal(result.backup.copyBalance, result.balance);
    assert.equal(result.shutdown.clean, true);
    assert.deepEqual(pageErrors(page), []);
    assert.doesNotMatch(output, /outside of Vite serving allow list/);
    await page.close();
  } finally {
    await dev.close();
    vite.kill();
    await exited;
  }
});

// A Manifest V3 extension (tests/e2e/fixtures/mv3 plus a copy of pkg/) in headless Chromium: its
// module service worker instantiates the release .wasm under the extension CSP
// ('wasm-unsafe-eval'), opens a store, commits, and after the service worker restarts (with the
// browser, on the same profile) loads the same wallet.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launch, REPO_ROOT } from './harness.mjs';

const FIXTURE = path.join(REPO_ROOT, 'tests', 'e2e', 'fixtures', 'mv3');
const PKG = path.join(REPO_ROOT, 'pkg');

let browser;
let extension;
after(async () => {
  await browser?.close();
  if (extension) fs.rmSync(extension, { recursive: true, force: true });
});

/** The extension's service worker in the current context (waits for it to start). */
async function serviceWorker(context) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const worker = context.serviceWorkers().find((w) => w.url().endsWith('/sw.js'));
    if (worker) return worker;
    assert.ok(Date.now() < deadline, 'the extension service worker did not start');
    await context.waitForEvent('serviceworker', { timeout: 5_000 }).catch(() => {});
  }
}

/** Runs globalThis.wallet[method](...args) in the service worker. */
const call = (worker, method, ...args) => worker.evaluate(([m, a]) => globalThis.wallet[m](...a), [method, args]);

test('an MV3 service worker opens a store, commits, and loads it back after the service worker restarts', async () => {
  assert.ok(fs.existsSync(path.join(PKG, 'index.js')), 'pkg/ is built (make pkg)');
  extension = fs.mkdtempSync(path.join(os.tmpdir(), 'wallet-persist-mv3-'));
  fs.cpSync(FIXTURE, extension, { recursive: true });
  fs.cpSync(PKG, path.join(extension, 'wallet-persist'), { recursive: true, filter: (f) => !f.endsWith('.gitignore') });
  browser = await launch({
    args: [`--disable-extensions-except=${extension}`, `--load-extension=${extension}`],
    ignoreDefaultArgs: ['--disable-extensions'],
  });
  let worker = await serviceWorker(browser.context);
  assert.match(worker.url(), /^chrome-extension:\/\//);

  const W = 'e7'.repeat(32);
  const wallet = { wallet: { network: 'testnet', label: 'in the extension', birthHeight: 1, createdAtMs: 1, accountSchema: 1 } };
  const report = await call(worker, 'commit', 'mv3-wallet', W, wallet);
  assert.deepEqual(report, { succeeded: [W], failed: [], stillPending: [] });
  assert.deepEqual(await call(worker, 'refusal', 'mv3-wallet'), { ours: true, code: 1 });

  // The browser restarts on the same profile: the service worker ends with it and a fresh one
  // starts (headless Chromium offers no way to stop only the worker: CDP's
  // ServiceWorker.stopAllWorkers and Target.closeTarget from a page do not reach an extension's
  // worker, and after chrome.runtime.reload() no new worker was reported).
  await browser.restart();
  worker = await serviceWorker(browser.context);
  assert.deepEqual(await call(worker, 'load', 'mv3-wallet'), { [W]: 'in the extension' });
});

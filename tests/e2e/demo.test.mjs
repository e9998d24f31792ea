// The example page (www/), driven like a user would: create a wallet, commit, reload and see the
// same balance; inject a transient failure, see the typed error, retry; close. Saves a
// screenshot of the failed flush in test-results/demo.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { openPage, waitForReady, pageErrors, REPO_ROOT, setup } from './harness.mjs';

const DEMO = '/www/';
const SCREENSHOT = path.join(REPO_ROOT, 'test-results', 'demo.png');

let server;
let browser;
let env;

before(async () => {
  // Its own fresh profile: the demo always uses the database "wallet-persist-demo".
  env = await setup();
  ({ server, browser } = env);
});

after(async () => {
  await env?.close();
});

/** Clicks a button and waits until the page has finished that action. */
async function act(page, id) {
  const before = Number(await page.getAttribute('body', 'data-actions'));
  await page.click(`#${id}`);
  await page.waitForFunction((n) => Number(document.body.dataset.actions) > n && document.body.dataset.busy === '0', before);
}

/** Clicks "Reload page" and waits until the new document has loaded and rendered its state. */
async function reloadViaButton(page) {
  const loaded = page.waitForEvent('load');
  await page.click('#reload');
  await loaded;
  await waitForReady(page);
}

/** The durable-state table: walletId → { balance (decimal string), utxos }. */
async function walletTable(page) {
  return page.$$eval('#wallets tbody tr[data-wallet-id]', (rows) =>
    Object.fromEntries(
      rows.map((tr) => [
        tr.dataset.walletId,
        { balance: tr.querySelector('td.balance').dataset.balance, utxos: Number(tr.querySelector('td.utxo-count').textContent) },
      ]),
    ),
  );
}

const stagedIds = (page) => page.$$eval('#staged tbody tr[data-wallet-id]', (rows) => rows.map((tr) => tr.dataset.walletId));
const rowCounts = (page) =>
  page.$$eval('#rows tbody tr[data-store]', (rows) => Object.fromEntries(rows.map((tr) => [tr.dataset.store, Number(tr.querySelector('td.count').textContent)])));
const errorShown = (page) =>
  page.evaluate(() => {
    const box = document.getElementById('error');
    if (document.getElementById('error-section').hidden) return null;
    return { code: box.dataset.code, kind: box.dataset.kind, retryable: box.dataset.retryable, summary: box.querySelector('#error-summary').textContent };
  });

test('demo page: create, commit, reload, inject a transient failure, retry, close', async () => {
  const page = await openPage(browser.context, server.url(DEMO), { ready: true });

  // A fresh profile: nothing on disk, nothing staged.
  assert.deepEqual(await walletTable(page), {});
  assert.deepEqual(await stagedIds(page), []);
  assert.equal(await page.textContent('#skipped'), 'none');
  assert.equal(await errorShown(page), null);

  // Create: staged only.
  await act(page, 'create');
  const walletId = await page.getAttribute('#result', 'data-wallet-id');
  const createdBalance = await page.getAttribute('#result', 'data-balance');
  assert.match(walletId, /^[0-9a-f]{64}$/);
  assert.match(createdBalance, /^[1-9][0-9]*$/);
  assert.deepEqual(await stagedIds(page), [walletId]);
  assert.deepEqual(await walletTable(page), {}, 'not durable before commit');

  // Commit: the report names the wallet, the durable table shows it with the same total.
  await act(page, 'commit');
  const committed = await page.textContent('#result');
  assert.match(committed, /CommitReport/);
  assert.match(committed, new RegExp(`"succeeded": \\[\\s*"${walletId}"\\s*\\]`));
  assert.match(committed, /"failed": \[\]/);
  assert.match(committed, /"stillPending": \[\]/);
  assert.deepEqual(await stagedIds(page), []);
  const afterCommit = await walletTable(page);
  assert.deepEqual(Object.keys(afterCommit), [walletId]);
  assert.equal(afterCommit[walletId].balance, createdBalance);
  const rowsAfterCommit = await rowCounts(page);
  assert.equal(rowsAfterCommit.wallets, 1);
  assert.equal(rowsAfterCommit.utxos, afterCommit[walletId].utxos);

  // Reload: the page loads on start and shows the same state.
  await reloadViaButton(page);
  assert.deepEqual(await walletTable(page), afterCommit);
  assert.deepEqual(await rowCounts(page), rowsAfterCommit);
  assert.equal(await page.textContent('#skipped'), 'none');
  assert.deepEqual(await stagedIds(page), []);

  // Inject a transient failure: a staged update, a failed flush with code 4, still staged.
  await act(page, 'stage');
  assert.deepEqual(await stagedIds(page), [walletId]);
  assert.equal(await page.isDisabled('#retry'), true);
  await act(page, 'inject');
  const error = await errorShown(page);
  assert.deepEqual({ ...error, summary: undefined }, { code: '4', kind: 'flush_retryable', retryable: 'true', summary: undefined });
  assert.match(error.summary, /code 4 \(flush_retryable\), retryable: true/);
  const details = await page.textContent('#error-details');
  assert.match(details, new RegExp(`"walletIds": \\[\\s*"${walletId}"\\s*\\]`));
  assert.match(details, /"code": 5/);
  assert.match(details, /"kind": "quota_exceeded"/);
  assert.deepEqual(await stagedIds(page), [walletId], 'staged() still lists the wallet');
  assert.match(await page.textContent('#result'), new RegExp(`staged\\(\\) still lists:\\n${walletId}`));
  assert.equal(await page.isDisabled('#retry'), false);

  // The screenshot shows the most telling moment: the typed error and the wallet still staged.
  await fsp.mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // Retry lands it.
  await act(page, 'retry');
  assert.equal(await errorShown(page), null);
  const retried = await page.textContent('#result');
  assert.match(retried, /retry landed/);
  assert.match(retried, new RegExp(`"succeeded": \\[\\s*"${walletId}"\\s*\\]`));
  assert.deepEqual(await stagedIds(page), []);
  assert.equal(await page.isDisabled('#retry'), true);
  const afterRetry = await walletTable(page);
  assert.equal(afterRetry[walletId].utxos, afterCommit[walletId].utxos + 1, 'the update added one UTXO');

  await reloadViaButton(page);
  assert.deepEqual(await walletTable(page), afterRetry);


  // Close: the final report; afterwards calls are refused with `closed` (20), shown as such.
  await act(page, 'close');
  assert.match(await page.textContent("#result"), /close\(\) → ShutdownReport/);
  assert.equal(await page.textContent('#status'), 'closed');
  await act(page, 'load');
  assert.deepEqual({ ...(await errorShown(page)), summary: undefined }, { code: '20', kind: 'closed', retryable: 'false', summary: undefined });

  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

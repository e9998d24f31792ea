// The example page (www/), driven as a person would: pause the sync coordinator, create a wallet
// (two-phase registration, then the coordinator's first scan), commit, reload and find the same
// balances; inject a transient failure and watch the buffer survive and the retry land; export a
// backup, import it into a second database and compare; a failed registration leaves nothing;
// delete a wallet; close and read the shutdown report. Screenshots: test-results/demo-retry.png
// (the typed error, resolved by the retry) and test-results/demo.png (the end state).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { openPage, waitForReady, pageErrors, REPO_ROOT, setup } from './harness.mjs';

const DEMO = '/www/';
const RESULTS = path.join(REPO_ROOT, 'test-results');
const HEX64 = /^[0-9a-f]{64}$/;

let env;

before(async () => {
  // Its own fresh profile: the page always uses the database "wallet-persist-demo".
  env = await setup();
  // Every label the progress bar shows, across reloads (load() at start, export, import).
  await env.browser.context.addInitScript(() => {
    window.__progressSeen = [];
    document.addEventListener('DOMContentLoaded', () => {
      const label = document.getElementById('progress-label');
      // Every text set, even several within one task (records, not the label's final text).
      new MutationObserver((records) => {
        for (const record of records) for (const node of record.addedNodes) window.__progressSeen.push(node.textContent);
      }).observe(label, { childList: true });
    });
  });
});

after(async () => {
  await env?.close();
});

/** Runs a user action (click or submit) and waits until the page has finished it. */
async function act(page, selector, { timeout = 30_000 } = {}) {
  const before = Number(await page.getAttribute('body', 'data-actions'));
  await page.click(selector);
  await page.waitForFunction((n) => Number(document.body.dataset.actions) > n && document.body.dataset.busy === '0', before, { timeout });
}

/** Clicks "Reload page" and waits until the new document has opened the store and loaded. */
async function reloadViaButton(page) {
  const loaded = page.waitForEvent('load');
  await page.click('#reload');
  await loaded;
  await waitForReady(page);
}

/** The wallet table as the user sees it: walletId → balances and counts. */
const walletTable = (page) =>
  page.$$eval('#wallets tbody tr[data-wallet-id]', (rows) =>
    Object.fromEntries(
      rows.map((tr) => [
        tr.dataset.walletId,
        {
          label: tr.querySelector('td.label').firstChild.textContent,
          balance: tr.querySelector('td.balance').dataset.balance,
          credits: tr.querySelector('td.credits').dataset.credits,
          utxos: Number(tr.querySelector('td.utxo-count').textContent),
          txs: Number(tr.querySelector('td.tx-count').textContent),
          tokens: Number(tr.querySelector('td.token-count').textContent),
          height: tr.querySelector('td.height').textContent,
        },
      ]),
    ),
  );

const stagedIds = (page) => page.$$eval('#staged tbody tr[data-wallet-id]', (rows) => rows.map((tr) => tr.dataset.walletId));
const rowCounts = (page) =>
  page.$$eval('#rows tbody tr[data-store]', (rows) => Object.fromEntries(rows.map((tr) => [tr.dataset.store, Number(tr.querySelector('td.count').textContent)])));
const logLines = (page) => page.$$eval('#log li', (items) => items.map((li) => li.textContent));
const latency = (page) => page.$eval('#latency', (svg) => ({ samples: Number(svg.dataset.samples), failed: Number(svg.dataset.failed), bars: svg.querySelectorAll('rect.bar').length }));
const errorShown = (page) =>
  page.evaluate(() => {
    if (document.getElementById('error-section').hidden) return null;
    const box = document.getElementById('error');
    return {
      code: box.dataset.code,
      kind: box.dataset.kind,
      retryable: box.dataset.retryable,
      resolved: box.dataset.resolved === 'true',
      summary: box.querySelector('#error-summary').textContent,
      details: box.querySelector('#error-details').textContent,
    };
  });

test('demo page: create, commit, reload, injected failure and retry, backup round trip, delete, close', async () => {
  const page = await openPage(env.browser.context, env.server.url(DEMO), { ready: true });
  await fsp.mkdir(RESULTS, { recursive: true });

  // A fresh profile: nothing on disk, nothing staged, a load report of zeros, no error.
  assert.deepEqual(await walletTable(page), {});
  assert.deepEqual(await stagedIds(page), []);
  assert.equal(Object.values(await rowCounts(page)).reduce((a, b) => a + b, 0), 0);
  assert.equal(await errorShown(page), null);
  assert.equal(await page.getAttribute('#sync-state', 'data-state'), 'running');
  assert.ok((await page.evaluate(() => window.__progressSeen)).includes('load()'), 'load() showed progress');
  assert.match(await page.textContent('#storage'), /used of/);

  // Pause the coordinator (tasks.quiesce), so that only our clicks change anything.
  await act(page, '#sync-toggle');
  assert.equal(await page.getAttribute('#sync-state', 'data-state'), 'paused');
  assert.ok((await logLines(page)).some((l) => /tasks\.quiesce\('chain-sync'\) → (stopped|notRunning)/.test(l)));

  // Create: registerWallet promotes the record and accounts; the coordinator's first scan is staged.
  await page.fill('#label', 'E2E Savings');
  await act(page, '#create');
  let table = await walletTable(page);
  const [walletId] = Object.keys(table);
  assert.match(walletId, HEX64);
  assert.equal(table[walletId].label, 'E2E Savings');
  assert.ok(BigInt(table[walletId].balance) > 0n, 'the first scan found UTXOs');
  assert.ok(BigInt(table[walletId].credits) > 0n && table[walletId].tokens === 2);
  assert.deepEqual(await stagedIds(page), [walletId], 'the scan is staged, not durable');
  assert.ok((await logLines(page)).some((l) => l.includes('registerWallet(): "E2E Savings" promoted')));

  // Commit: the report names the wallet; nothing staged; one flush in the latency chart.
  await act(page, '#commit');
  assert.equal(await page.getAttribute('#commit-report', 'data-state'), 'ok');
  assert.equal(await page.getAttribute('#commit-report', 'data-succeeded'), walletId);
  assert.deepEqual(await stagedIds(page), []);
  assert.deepEqual(await latency(page), { samples: 1, failed: 0, bars: 1 });
  const committed = await walletTable(page);

  // Reload: the page opens the store again and load() finds the same balances.
  await reloadViaButton(page);
  assert.deepEqual(await walletTable(page), committed, 'same balances, credits, counts and height after the reload');
  const rows = await rowCounts(page);
  assert.equal(rows.wallets, 1);
  assert.equal(rows.utxos, committed[walletId].utxos);
  assert.equal(rows.transactions, committed[walletId].txs);
  assert.equal(rows.token_balances, 2);
  assert.equal(rows.accounts, 2);
  assert.ok(await page.$('#skipped-none'), 'no row skipped');
  assert.match(await page.textContent('#load-summary'), /1 wallet\(s\), \d+ rows in .* 0 skipped/);
  assert.deepEqual(await stagedIds(page), []);
  assert.equal(await page.getAttribute('#sync-state', 'data-state'), 'paused', 'the pause survives the reload');

  // Inject a transient failure: the flush rejects with code 4 (cause: quota_exceeded 5), the wallet
  // stays staged, and the retry lands by itself after the backoff.
  await act(page, '#inject');
  const error = await errorShown(page);
  assert.equal(error.code, '4');
  assert.equal(error.kind, 'flush_retryable');
  assert.equal(error.retryable, 'true');
  assert.match(error.summary, /flush\(\) \(injected failure, attempt 1\) rejected: code 4 \(flush_retryable\), retryable: true/);
  assert.match(error.details, new RegExp(`"walletIds": \\[\\s*"${walletId}"\\s*\\]`));
  assert.match(error.details, /"code": 5/);
  assert.match(error.details, /"kind": "quota_exceeded"/);
  assert.equal(error.resolved, true, 'the error panel says the retry resolved it');
  const lines = await logLines(page);
  assert.ok(lines.some((l) => /Still staged after the failure: E2E Savings \(\d+ fields\)/.test(l)), 'the buffer survived the failure');
  assert.equal(await page.getAttribute('#retry-status', 'data-state'), 'landed');
  assert.match(await page.textContent('#retry-status'), /The retry landed on attempt 2: E2E Savings durable, nothing lost/);
  assert.equal(await page.getAttribute('#commit-report', 'data-succeeded'), walletId);
  assert.deepEqual(await stagedIds(page), []);
  assert.deepEqual(await latency(page), { samples: 3, failed: 1, bars: 3 });
  await page.screenshot({ path: path.join(RESULTS, 'demo-retry.png'), fullPage: true });
  const retried = await walletTable(page);
  assert.notEqual(retried[walletId].height, committed[walletId].height, 'the pass before the failure synced new blocks');

  // What the retry wrote is on disk.
  await reloadViaButton(page);
  assert.deepEqual(await walletTable(page), retried);

  // Backup: export with progress, import into a second database with progress, compare.
  await act(page, '#export');
  assert.ok(Number(await page.getAttribute('#backup-info', 'data-bytes')) > 1_000);
  assert.match(await page.getAttribute('#backup-info', 'data-sha256'), HEX64);
  await act(page, '#import');
  assert.equal(await page.getAttribute('#compare-verdict', 'data-identical'), 'true');
  const compared = await page.$$eval('#compare-table tbody tr', (trs) =>
    trs.map((tr) => ({ id: tr.dataset.walletId, same: tr.dataset.same, here: tr.querySelector('.here').dataset.balance, imported: tr.querySelector('.imported').dataset.balance })),
  );
  assert.deepEqual(compared, [{ id: walletId, same: 'true', here: retried[walletId].balance, imported: retried[walletId].balance }]);
  const progress = await page.evaluate(() => window.__progressSeen);
  for (const label of ['exportBackup(): export', 'importBackup(): validate', 'importBackup(): write']) {
    assert.ok(progress.includes(label), `progress showed ${label}: ${JSON.stringify(progress)}`);
  }

  // A registration whose init step throws leaves nothing behind.
  await page.check('#fail-init');
  await page.fill('#label', 'Doomed');
  await act(page, '#create');
  const failed = await errorShown(page);
  assert.equal(failed.code, '', 'init’s own error, not a WalletPersistError');
  assert.match(failed.summary, /registerWallet\(\) failed: Error \(not a WalletPersistError/);
  assert.match(failed.details, /simulated init failure/);
  assert.ok((await logLines(page)).some((l) => l.includes('Registration rolled back: load() finds no trace of it')));
  assert.deepEqual(Object.keys(await walletTable(page)), [walletId]);
  await page.uncheck('#fail-init');

  // A second wallet, deleted again: its row and staged scan go, the first wallet stays.
  await page.fill('#label', 'Temporary');
  await act(page, '#create');
  const temporary = Object.keys(await walletTable(page)).find((id) => id !== walletId);
  assert.match(temporary, HEX64);
  await act(page, `button.delete[data-wallet-id="${temporary}"]`);
  assert.deepEqual(Object.keys(await walletTable(page)), [walletId]);
  assert.ok((await logLines(page)).some((l) => /deleteWallet\(\): "Temporary" gone .* \d+ staged field\(s\) discarded/.test(l)));
  assert.ok(!(await stagedIds(page)).includes(temporary), 'its staged scan went with it');

  // Close: the shutdown report; afterwards every call is refused with `closed` (20), shown as such.
  await act(page, '#close');
  assert.equal(await page.getAttribute('#shutdown', 'data-clean'), 'true');
  const workers = await page.$$eval('#shutdown-workers tbody tr', (trs) => trs.map((tr) => [tr.dataset.key, tr.dataset.status]));
  assert.deepEqual(workers.map(([key]) => key), ['chain-sync', 'persister']);
  assert.equal(workers[1][1], 'stopped');
  assert.equal(await page.getAttribute('#status', 'data-state'), 'closed');
  await act(page, '#commit');
  const closed = await errorShown(page);
  assert.deepEqual([closed.code, closed.kind, closed.retryable], ['20', 'closed', 'false']);

  await page.screenshot({ path: path.join(RESULTS, 'demo.png'), fullPage: true });
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

/**
 * Every table cell of the page that sticks out of its card, or whose text overflows the cell
 * (clipped or spilling over its neighbour): [{ table, text, why }]. Empty when the layout holds.
 */
const overflowingCells = (page) =>
  page.$$eval('.card table td, .card table th', (cells) =>
    cells.flatMap((cell) => {
      if (!cell.getClientRects().length) return []; // not rendered (a hidden section)
      const card = cell.closest('.card').getBoundingClientRect();
      const box = cell.getBoundingClientRect();
      const where = { table: cell.closest('table').id || cell.closest('table').querySelector('caption')?.textContent || '?', text: cell.textContent.slice(0, 40) };
      const problems = [];
      if (box.left < card.left - 0.5 || box.right > card.right + 0.5) problems.push(`cell ${box.left.toFixed(0)}–${box.right.toFixed(0)} outside its card ${card.left.toFixed(0)}–${card.right.toFixed(0)}`);
      if (cell.scrollWidth > cell.clientWidth + 1) problems.push(`content ${cell.scrollWidth}px wider than the cell ${cell.clientWidth}px`);
      return problems.map((why) => ({ ...where, why }));
    }),
  );

test('demo page layout: no table cell overflows its card at 1366 and 900 px; live header counts; valid bech32 addresses; the shutdown report in view', async () => {
  const { bech32 } = await import(path.join(REPO_ROOT, 'node_modules', '@scure', 'base', 'index.js'));
  const page = await openPage(env.browser.context, env.server.url(`${DEMO}?db=wallet-persist-demo-layout`), { ready: true });
  try {
    await page.setViewportSize({ width: 1366, height: 900 });
    await act(page, '#sync-toggle');
    const count = async () => Number(await page.getAttribute('#status', 'data-wallets'));
    const before = await count();
    await page.fill('#label', 'A rather long wallet label, forty chars');
    await act(page, '#create');
    assert.equal(await count(), before + 1, 'the header counts the new wallet without a reload');
    assert.match(await page.textContent('#status'), new RegExp(`open · ${before + 1} wallet\\(s\\) · 1 with staged changes`));
    const [walletId] = Object.keys(await walletTable(page)).slice(-1);
    await page.click(`#wallets tr[data-wallet-id="${walletId}"]`);
    await page.waitForSelector('#detail table');

    const addresses = await page.$$eval('#detail td.address', (cells) => cells.map((c) => c.textContent));
    assert.ok(addresses.length >= 3, addresses.join(' '));
    for (const address of addresses) {
      const { prefix, words } = bech32.decode(address); // throws on a bad checksum
      assert.equal(prefix, 'tb');
      assert.equal(words[0], 0, 'witness version 0');
      assert.equal(bech32.fromWords(words.slice(1)).length, 20, 'a 20-byte P2WPKH program');
    }

    for (const width of [1366, 900]) {
      await page.setViewportSize({ width, height: 900 });
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
      assert.deepEqual(await overflowingCells(page), [], `at ${width} px`);
      await page.screenshot({ path: path.join(RESULTS, `demo-layout-${width}.png`), fullPage: true });
    }

    await page.setViewportSize({ width: 1366, height: 900 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await act(page, '#close');
    const inView = await page.$eval('#shutdown-section', (section) => {
      const box = section.getBoundingClientRect();
      return box.top >= 0 && box.top < window.innerHeight;
    });
    assert.equal(inView, true, 'the shutdown report is in the viewport after close');
    await page.screenshot({ path: path.join(RESULTS, 'demo-shutdown.png') });
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

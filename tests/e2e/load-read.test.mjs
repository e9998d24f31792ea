// How load() reads IndexedDB: one getAllRecords per store where the browser has it, getAllKeys +
// getAll where it does not (browsers before Chromium 141), with the same result either way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, evalInPage, pageErrors, uniqueName, setup } from './harness.mjs';
import { toWire } from './fixtures/wire.mjs';
import { W1, W2, richChangeset, smallChangeset, richLoaded, asLoaded, RICH_ROWS, loadReport, client, RELEASE_PAGE } from './client.mjs';

const READS = ['getAllRecords', 'getAll', 'getAllKeys', 'get', 'openCursor'];

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

/** Counts the read requests of IDBObjectStore from now on, in the page. */
const countReads = (page) =>
  evalInPage(page, (methods) => {
    window.__reads = {};
    for (const method of methods) {
      const original = IDBObjectStore.prototype[method];
      if (typeof original !== 'function') continue;
      IDBObjectStore.prototype[method] = function (...args) {
        window.__reads[method] = (window.__reads[method] || 0) + 1;
        return original.apply(this, args);
      };
    }
  }, READS);

async function loadOnce(page, name) {
  const db = client(page, name);
  await db.open();
  await countReads(page);
  const loaded = await db.ok('load');
  const reads = await evalInPage(page, () => window.__reads);
  await db.ok('close');
  return { loaded, reads };
}

test('load reads with getAllRecords, or getAllKeys + getAll where it is missing, to the same result', async () => {
  const name = uniqueName('load-read');
  const writer = await openPage(env.browser.context, env.server.url(RELEASE_PAGE), { ready: true });
  const db = client(writer, name);
  await db.open();
  await db.ok('store', W1, richChangeset());
  await db.ok('store', W2, smallChangeset());
  await db.ok('commit');
  await db.ok('close');
  await writer.close();

  const expected = {
    wallets: { [W1]: toWire(richLoaded()), [W2]: toWire(asLoaded(smallChangeset(), W2)) },
    report: loadReport(2, { ...RICH_ROWS, wallets: 2, utxos: 3 }),
  };
  const stores = Object.keys(RICH_ROWS).length;

  const modern = await openPage(env.browser.context, env.server.url(RELEASE_PAGE), { ready: true });
  const hasGetAllRecords = await evalInPage(modern, () => typeof IDBObjectStore.prototype.getAllRecords === 'function');
  const withRecords = await loadOnce(modern, name);
  assert.deepEqual(withRecords.loaded, expected);
  if (hasGetAllRecords) assert.deepEqual(withRecords.reads, { getAllRecords: stores });
  assert.deepEqual(pageErrors(modern), []);
  await modern.close();

  const older = await env.browser.context.newPage();
  await older.addInitScript(() => {
    delete IDBObjectStore.prototype.getAllRecords;
  });
  await older.goto(env.server.url(RELEASE_PAGE));
  await older.waitForFunction(() => window.__ready === true);
  assert.equal(await evalInPage(older, () => 'getAllRecords' in IDBObjectStore.prototype), false);
  const withoutRecords = await loadOnce(older, name);
  assert.deepEqual(withoutRecords.loaded, expected);
  assert.deepEqual(withoutRecords.reads, { getAllKeys: stores, getAll: stores });
  await older.close();
});

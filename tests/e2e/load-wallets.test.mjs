// Loading chosen wallets and listing wallets against real IndexedDB in Chromium, plain and
// encrypted: after a page reload, `load({walletIds})` returns exactly the wallets asked for and
// reads exactly their rows (counted at IDBObjectStore), `listWallets()` reads the wallet records
// alone, and refused options read nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, reload, evalInPage, pageErrors, setup, uniqueName } from './harness.mjs';
import { toWire } from './fixtures/wire.mjs';
import { W1, id, richChangeset, richLoaded, smallChangeset, asLoaded, RICH_ROWS, okInPage, RELEASE_PAGE } from './client.mjs';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

const KDF = { memoryKib: 1024, iterations: 1 };
const [W2, W3, W4, UNKNOWN] = [id('b2'), id('c3'), id('d4'), id('ee')];
const AREA_STORES = Object.keys(RICH_ROWS);

/** A small wallet labelled `label`: its record and one UTXO (two rows). */
const small = (label) => ({ ...smallChangeset(), wallet: { ...smallChangeset().wallet, label } });
const WALLETS = [[W1, richChangeset()], [W2, small('two')], [W3, small('three')], [W4, small('four')]];
const LOADED = { [W1]: richLoaded(), [W2]: asLoaded(small('two'), W2), [W3]: asLoaded(small('three'), W3), [W4]: asLoaded(small('four'), W4) };
const RICH_TOTAL = Object.values(RICH_ROWS).reduce((a, b) => a + b, 0);
const ROWS = { [W1]: RICH_TOTAL, [W2]: 2, [W3]: 2, [W4]: 2 };

const ok = okInPage;

/** From now on, counts per store the read requests of IDBObjectStore and the values they return. */
const countReads = (page) =>
  evalInPage(page, () => {
    window.__reads = { requests: {}, values: 0 };
    for (const method of ['getAllRecords', 'getAll', 'getAllKeys', 'get', 'openCursor', 'count']) {
      const original = IDBObjectStore.prototype[method];
      if (typeof original !== 'function' || original.__counted) continue;
      const counted = function (...args) {
        const request = original.apply(this, args);
        window.__reads.requests[this.name] = (window.__reads.requests[this.name] || 0) + 1;
        if (method === 'getAllRecords' || method === 'getAll') {
          request.addEventListener('success', () => {
            window.__reads.values += request.result.length;
          });
        }
        return request;
      };
      counted.__counted = true;
      IDBObjectStore.prototype[method] = counted;
    }
  });

const write = async ({ WalletStore }, { name, encryption, wallets }) => {
  const store = await WalletStore.open({ name, flushMode: 'manual', encryption });
  for (const [walletId, changes] of wallets) await store.store(walletId, changes);
  const report = await store.commit();
  await store.close();
  return report.succeeded.length;
};

/** listWallets, three loads of chosen wallets and a full load, with what each read. */
const readBack = async ({ WalletStore }, { name, encryption, chosen }) => {
  const store = await WalletStore.open({ name, flushMode: 'manual', encryption });
  const take = () => {
    const reads = window.__reads;
    window.__reads = { requests: {}, values: 0 };
    return reads;
  };
  take();
  const out = { list: await store.listWallets(), listReads: take(), loads: [] };
  for (const walletIds of chosen) out.loads.push({ ...(await store.load({ walletIds })), reads: take() });
  out.all = await store.load();
  out.allReads = take();
  await store.close();
  return out;
};

/** Requests per store of one bulk read of `stores`: one getAllRecords, or getAllKeys + getAll. */
const bulkReads = (stores, perStore) => Object.fromEntries(stores.map((s) => [s, perStore]));

for (const encrypted of [false, true]) {
  test(`after a reload, load({walletIds}) returns exactly those wallets and reads only their rows (${encrypted ? 'encrypted' : 'plain'})`, async () => {
    const name = uniqueName(encrypted ? 'load-some-sealed' : 'load-some');
    const encryption = encrypted ? { passphrase: 'pw', kdf: KDF } : undefined;
    const page = await openPage(env.browser.context, env.server.url(RELEASE_PAGE), { ready: true });
    assert.equal(await ok(page, write, { name, encryption, wallets: WALLETS }), 4);
    await reload(page, { ready: true });

    const perStore = (await evalInPage(page, () => typeof IDBObjectStore.prototype.getAllRecords === 'function')) ? 1 : 2;
    await countReads(page);
    const chosen = [[W2], [UNKNOWN, W3, W1], []];
    const back = await ok(page, readBack, { name, encryption: encryption && { passphrase: 'pw' }, chosen });

    assert.deepEqual(back.list.wallets.map((w) => [w.walletId, w.label]), WALLETS.map(([w, cs]) => [w, cs.wallet.label]));
    assert.deepEqual(toWire(back.list.wallets), toWire(WALLETS.map(([w]) => LOADED[w].wallet)));
    assert.deepEqual(back.list.skipped, []);
    assert.deepEqual(back.listReads, { requests: bulkReads(['wallets'], perStore), values: 4 }, 'listWallets reads the records alone');

    const [one, several, none] = back.loads;
    assert.deepEqual(toWire(one.wallets), toWire({ [W2]: LOADED[W2] }));
    assert.equal(one.report.wallets, 1);
    assert.deepEqual(one.report.notFound, []);
    assert.deepEqual(one.report.skipped, []);
    assert.deepEqual(one.reads, { requests: bulkReads(AREA_STORES, perStore), values: ROWS[W2] }, 'one range per store, the wallet\'s rows only');

    assert.deepEqual(Object.keys(several.wallets), [W1, W3]);
    assert.deepEqual(toWire(several.wallets), toWire({ [W1]: LOADED[W1], [W3]: LOADED[W3] }));
    assert.deepEqual(several.report.notFound, [UNKNOWN]);
    assert.deepEqual(several.reads, { requests: bulkReads(AREA_STORES, 3 * perStore), values: ROWS[W1] + ROWS[W3] });

    assert.deepEqual(none.wallets, {});
    assert.deepEqual(none.reads.values, 0);

    assert.deepEqual(Object.keys(back.all.wallets), [W1, W2, W3, W4]);
    assert.deepEqual(toWire(back.all.wallets), toWire(LOADED));
    assert.equal('notFound' in back.all.report, false, 'load() reports as before');
    assert.equal(back.allReads.values, ROWS[W1] + 3 * 2);
    assert.deepEqual(pageErrors(page), []);
    await page.close();
  });
}

test('invalid walletIds reject code 1 and read nothing', async () => {
  const name = uniqueName('load-some-bad');
  const page = await openPage(env.browser.context, env.server.url(RELEASE_PAGE), { ready: true });
  await ok(page, write, { name, wallets: WALLETS.slice(1) });
  await countReads(page);
  const outcome = await ok(page, async ({ WalletStore }, { name, W2 }) => {
    const store = await WalletStore.open({ name, flushMode: 'manual' });
    window.__reads = { requests: {}, values: 0 };
    const hostile = [
      'W2',
      { walletIds: W2 },
      { walletIds: [W2, W2] },
      { walletIds: [W2.toUpperCase()] },
      { walletIds: [W2.slice(2)] },
      { walletIds: [1] },
      { walletIds: [W2], extra: true },
      { get walletIds() { throw new Error('getter'); } },
      { walletIds: new Proxy([W2], { get() { throw new Error('trap'); } }) },
      new Proxy({ walletIds: [W2] }, { ownKeys() { throw new Error('trap'); } }),
      { walletIds: new Set([W2]) },
    ];
    const codes = [];
    for (const options of hostile) {
      try {
        await store.load(options);
        codes.push('resolved');
      } catch (error) {
        codes.push(error.code);
      }
    }
    const reads = structuredClone(window.__reads);
    const after = await store.load({ walletIds: [W2] });
    await store.close();
    return { codes, reads, loaded: Object.keys(after.wallets) };
  }, { name, W2 });
  assert.deepEqual(outcome.codes, Array(11).fill(1));
  assert.deepEqual(outcome.reads, { requests: {}, values: 0 });
  assert.deepEqual(outcome.loaded, [W2]);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

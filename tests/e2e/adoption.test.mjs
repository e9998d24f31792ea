// What an app developer meets first, in the browser, through the package entry (index.js):
// - a second open of one database in one page says so, and the README's StrictMode / hot-reload
//   pattern (run verbatim from docs/package/README.md) opens once and opens again after a close;
// - onChange hears this store's own commits and deletes (origin "local"), a listener may
//   unsubscribe itself while it runs; setLogger receives structured log lines;
// - rejections are instances of the exported WalletPersistError, with the standard `cause`.
// - a store freed before close() (free(), [Symbol.dispose]) writes nothing and reports what it
//   drops in an error log line; calls on it then throw synchronously (wasm-bindgen's check).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { evalInPage, openPage, pageErrors, setup, uniqueName, REPO_ROOT } from './harness.mjs';

const PAGE = '/tests/e2e/fixtures/adoption.html';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

/** The js block under `## heading` in the package README. */
function readmeBlock(heading) {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'package', 'README.md'), 'utf8');
  const at = readme.indexOf(`## ${heading}`);
  assert.ok(at >= 0, `## ${heading} in docs/package/README.md`);
  return /```js\n([\s\S]*?)```/.exec(readme.slice(at))[1];
}

const open = () => openPage(env.browser.context, env.server.url(PAGE), { ready: true });

test('a second open in one page names this page; the README pattern opens once under StrictMode and again after a hot reload', async () => {
  const page = await open();
  try {
    const result = await evalInPage(
      page,
      async ({ name, pattern }) => {
        const { WalletStore } = window.lib;
        const W = 'a1'.repeat(32);
        const wallet = { wallet: { network: 'testnet', label: 'strict', birthHeight: 1, createdAtMs: 1, accountSchema: 1 } };
        const first = await WalletStore.open({ name });
        const second = await WalletStore.open({ name }).then(
          () => null,
          (e) => ({ code: e.code, kind: e.kind, message: e.message }),
        );
        await first.close();

        const url = URL.createObjectURL(new Blob([pattern], { type: 'text/javascript' }));
        const { openStore, closeStore } = await import(url);
        // StrictMode: the effect runs twice, both ask for the store.
        const [s1, s2] = await Promise.all([openStore(name), openStore(name)]);
        await s1.store(W, wallet);
        await s1.commit();
        // Hot reload: the old module's dispose closes, the new module opens again.
        await closeStore(name);
        const s3 = await openStore(name);
        const loaded = Object.keys((await s3.load()).wallets);
        await closeStore(name);
        return { second, same: s1 === s2, reopened: s3 !== s1, loaded };
      },
      { name: uniqueName('strict'), pattern: readmeBlock('One store per page: React StrictMode and hot reload') },
    );
    assert.equal(result.second.code, 16);
    assert.equal(result.second.kind, 'already_open');
    assert.match(result.second.message, /already open in this page/);
    assert.match(result.second.message, /await its close\(\) before opening it again/);
    assert.doesNotMatch(result.second.message, /another tab/);
    assert.equal(result.same, true, 'both StrictMode runs got the one store');
    assert.equal(result.reopened, true);
    assert.deepEqual(result.loaded, ['a1'.repeat(32)]);
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('onChange hears local commits and deletes; setLogger gets structured lines; errors are WalletPersistError with cause', async () => {
  const page = await open();
  try {
    const result = await evalInPage(
      page,
      async (name) => {
        const lib = window.lib;
        const { WalletStore, WalletPersistError } = lib;
        const [A, B] = ['a1'.repeat(32), 'b2'.repeat(32)];
        const wallet = { wallet: { network: 'testnet', label: 'observed', birthHeight: 1, createdAtMs: 1, accountSchema: 1 } };
        const store = await WalletStore.open({ name });
        const events = [];
        const unsubscribeSelf = store.onChange((event) => {
          events.push(['once', event]);
          unsubscribeSelf();
        });
        store.onChange((event) => events.push(['all', event]));
        await store.store(A, wallet);
        await store.commit();
        await store.deleteWallet(A);

        const records = [];
        lib.setLogger((record) => records.push(record));
        await store.failWallet(B, 1, 'blob_decode');
        await store.store(B, wallet);
        const fatal = await store.commit();
        lib.setLogger(null);

        await store.store(B, wallet);
        await store.failNext('write', 1, 'quota_exceeded');
        const flush = await store.flush().then(
          () => null,
          (e) => ({
            instance: e instanceof WalletPersistError,
            guard: lib.isWalletPersistError(e),
            code: e.code,
            causeInstance: e.cause instanceof WalletPersistError,
            causeCode: e.cause && e.cause.code,
            detailCauseCode: e.detail && e.detail.cause && e.detail.cause.code,
          }),
        );
        await store.commit();
        await store.close();
        const dropped = records.find((r) => r.message.startsWith('dropped the staged changes'));
        return { events, failed: fatal.failed.map((f) => f.walletId), dropped, flush };
      },
      uniqueName('observe'),
    );
    const local = (w) => ({ walletIds: [w], origin: 'local' });
    const [A, B] = ['a1'.repeat(32), 'b2'.repeat(32)];
    assert.deepEqual(result.events, [
      ['once', local(A)],
      ['all', local(A)],
      ['all', local(A)], // the delete
      ['all', local(B)], // the commit after the failed flush
    ]);
    assert.deepEqual(result.failed, [B]);
    assert.deepEqual(result.dropped, {
      level: 'error',
      message: result.dropped.message,
      fields: { walletIds: [B], code: 11 },
    });
    assert.deepEqual(result.flush, { instance: true, guard: true, code: 4, causeInstance: true, causeCode: 5, detailCauseCode: 5 });
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('a logger that calls the store while a flush fails: nothing traps, every change lands', async () => {
  const page = await open();
  try {
    const result = await evalInPage(
      page,
      async (name) => {
        const lib = window.lib;
        const { WalletStore } = lib;
        const [A, C] = ['a1'.repeat(32), 'c3'.repeat(32)];
        const wallet = (label) => ({ wallet: { network: 'testnet', label, birthHeight: 1, createdAtMs: 1, accountSchema: 1 } });
        const store = await WalletStore.open({ name });
        const calls = [];
        // The app's telemetry: every log line stages a row, synchronously, from inside the logger.
        lib.setLogger((record) => calls.push(store.store(C, wallet(record.level)).then(() => 'ok', (e) => e.code)));
        await store.store(A, wallet('a'));
        await store.failNext('write', 1, 'quota_exceeded');
        const flush = await store.flush().then(() => 'resolved', (e) => e.code);
        const staged = await Promise.all(calls);
        lib.setLogger(null);
        const commit = await store.commit();
        const loaded = await store.load();
        await store.close();
        return {
          flush,
          staged,
          succeeded: [...commit.succeeded].sort(),
          labels: Object.fromEntries(Object.entries(loaded.wallets).map(([id, w]) => [id, w.wallet.label])),
        };
      },
      uniqueName('reentrant-logger'),
    );
    const [A, C] = ['a1'.repeat(32), 'c3'.repeat(32)];
    assert.equal(result.flush, 4, 'the injected quota failure rejects flush_retryable');
    assert.ok(result.staged.length >= 1, 'the logger was called');
    assert.deepEqual(new Set(result.staged), new Set(['ok']), 'every store() from the logger resolved');
    assert.deepEqual(result.succeeded, [A, C].sort());
    assert.deepEqual(result.labels, { [A]: 'a', [C]: 'warn' });
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('a store freed before close() (free, Symbol.dispose) reports what it drops in an error log line; a closed one logs nothing', async () => {
  const page = await open();
  try {
    const result = await evalInPage(
      page,
      async (name) => {
        const lib = window.lib;
        const { WalletStore } = lib;
        const A = 'a1'.repeat(32);
        const wallet = (label) => ({ wallet: { network: 'testnet', label, birthHeight: 1, createdAtMs: 1, accountSchema: 1 } });
        const records = [];
        lib.setLogger((record) => records.push(record));
        const lines = async (label, end) => {
          records.length = 0;
          const store = await WalletStore.open({ name, flushMode: 'manual' });
          await store.store(A, wallet(label));
          await end(store);
          return records.filter((r) => r.level === 'error').map((r) => r.message);
        };
        const closed = await lines('closed', async (store) => store.close());
        const freed = await lines('freed', async (store) => store.free());
        const disposed = await lines('disposed', async (store) => store[Symbol.dispose]());
        const reopened = await WalletStore.open({ name, flushMode: 'manual' });
        const onDisk = Object.fromEntries(Object.entries((await reopened.load()).wallets).map(([id, w]) => [id, w.wallet.label]));
        reopened.free();
        let freedCall = 'no throw';
        try {
          reopened.load();
        } catch {
          freedCall = 'throws synchronously';
        }
        lib.setLogger(null);
        return { freed, disposed, closed, onDisk, freedCall };
      },
      uniqueName('freed'),
    );
    const dropped = (lines) => lines.filter((line) => line.startsWith('store dropped with staged changes'));
    assert.equal(dropped(result.freed).length, 1, `free(): ${JSON.stringify(result.freed)}`);
    assert.match(dropped(result.freed)[0], /1 wallet\(s\)/);
    assert.equal(dropped(result.disposed).length, 1, `[Symbol.dispose](): ${JSON.stringify(result.disposed)}`);
    assert.deepEqual(result.closed, [], 'close() wrote what was staged: nothing to report');
    assert.deepEqual(result.onDisk, { ['a1'.repeat(32)]: 'closed' }, 'the freed stores wrote nothing');
    assert.equal(result.freedCall, 'throws synchronously');
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

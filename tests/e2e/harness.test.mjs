// Smoke tests of the e2e harness itself: static server, MIME types, console forwarding, and
// IndexedDB persistence across a reload, a clean browser restart, and a browser SIGKILL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer,
  launch,
  openPage,
  reload,
  evalInPage,
  waitForSelector,
  pageErrors,
  uniqueName,
} from './harness.mjs';

const FIXTURE = '/tests/e2e/fixtures/smoke.html';

let server;
let browser;
const pageLog = [];

before(async () => {
  server = await startServer();
  browser = await launch({
    log: (line) => {
      pageLog.push(line);
      process.stderr.write(line + '\n');
    },
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('static server: MIME types, no-store, 404', async () => {
  const expect = {
    [FIXTURE]: 'text/html; charset=utf-8',
    '/tests/e2e/fixtures/empty.wasm': 'application/wasm',
    '/tests/e2e/harness.mjs': 'text/javascript; charset=utf-8',
    '/package.json': 'application/json; charset=utf-8',
  };
  for (const [pathname, type] of Object.entries(expect)) {
    const res = await fetch(server.url(pathname));
    assert.equal(res.status, 200, pathname);
    assert.equal(res.headers.get('content-type'), type, pathname);
    assert.equal(res.headers.get('cache-control'), 'no-store', pathname);
    await res.arrayBuffer();
  }
  const missing = await fetch(server.url('/no/such/file.js'));
  assert.equal(missing.status, 404);
  await missing.arrayBuffer();
  assert.match(server.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
});

test('IndexedDB value persists across a page reload', async () => {
  const db = uniqueName('smoke-reload');
  const page = await openPage(browser.context, server.url(`${FIXTURE}?db=${db}`), { ready: true });
  try {
    await waitForSelector(page, 'body[data-ready="1"]');
    const value = { balance: 12345n, note: 'héllo', bytes: new Uint8Array([1, 2, 255]) };
    await evalInPage(page, ([k, v]) => window.smoke.put(k, v), ['wallet', { ...value, bytes: [...value.bytes] }]);

    await reload(page, { ready: true, waitFor: '#status' });
    assert.equal(await page.textContent('#status'), 'ready');
    const got = await evalInPage(page, (k) => window.smoke.get(k), 'wallet');
    assert.deepEqual(got, { balance: 12345n, note: 'héllo', bytes: [1, 2, 255] });
    assert.equal(await evalInPage(page, (k) => window.smoke.get(k), 'absent'), undefined);
    assert.deepEqual(pageErrors(page), []);
    assert.ok(pageLog.some((l) => l.includes(`smoke page ready (db ${db})`)), 'console forwarded');
  } finally {
    await page.close();
  }
});

test('IndexedDB value survives a browser restart and a SIGKILL of the browser', async () => {
  const own = await launch({ log: () => {} });
  try {
    const url = server.url(`${FIXTURE}?db=${uniqueName('smoke-restart')}`);
    let page = await own.newPage(url, { ready: true });
    await evalInPage(page, () => window.smoke.put('k', 'after-restart'));

    await own.restart();
    page = await own.newPage(url, { ready: true });
    assert.equal(await evalInPage(page, () => window.smoke.get('k')), 'after-restart');

    // A write whose transaction completed must survive a crash of the whole browser.
    await evalInPage(page, () => window.smoke.put('k', 'after-kill'));
    assert.equal(own.pids().length, 1);
    await own.kill();
    assert.equal(own.pids().length, 0);
    await own.restart();
    page = await own.newPage(url, { ready: true });
    assert.equal(await evalInPage(page, () => window.smoke.get('k')), 'after-kill');
  } finally {
    await own.close();
  }
});

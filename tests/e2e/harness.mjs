// Reusable harness for the JS end-to-end tests (node:test + playwright-core + Debian's Chromium).
//
//   import { startServer, launch, openPage, reload, evalInPage } from './harness.mjs';
//   const server = await startServer();                  // serves the repo root on 127.0.0.1:<ephemeral>
//   const browser = await launch();                      // persistent context in a fresh temp profile
//   const page = await openPage(browser.context, server.url('/www/'), { ready: true });
//   const n = await evalInPage(page, (k) => localStorage.getItem(k), 'key');
//   await reload(page, { ready: true });
//   await browser.restart();                             // close + relaunch on the same profile
//   await browser.kill();  await browser.restart();      // SIGKILL the browser, then relaunch
//   await browser.close(); await server.close();         // close() removes the temp profile
//
// Notes (shared/TOOLCHAIN.md, shared/BROWSER-FAULTS.md):
// - only /usr/bin/chromium is available (no playwright-downloaded browsers);
// - tests on one origin share IndexedDB: give each test its own database name (uniqueName());
// - use launchPersistentContext (done here) whenever reload/restart durability matters.

import http from 'node:http';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// Same flags as webdriver.json (root needs --no-sandbox; the rest keep Chromium off the closed network).
export const CHROMIUM_ARGS = Object.freeze([
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);
export const DEFAULT_TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS || 30_000);

export const MIME_TYPES = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
});

/** A name unique to this process and call, e.g. for IndexedDB database names. */
export function uniqueName(prefix = 'e2e') {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${crypto.randomBytes(4).toString('hex')}`;
}

// ------------------------------------------------------------------------------------------------
// Static HTTP server

/**
 * Serve `root` (default: the repo root) on 127.0.0.1 with an ephemeral port.
 * Returns { origin, port, url(pathname), close(), server }. Responses are `Cache-Control: no-store`
 * so a reload always fetches fresh .js/.wasm.
 */
export async function startServer({ root = REPO_ROOT, host = '127.0.0.1', port = 0 } = {}) {
  const rootAbs = path.resolve(root);
  const server = http.createServer((req, res) => {
    serveStatic(rootAbs, req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err && err.stack ? err.stack : err));
    });
  });
  // Do not let idle keep-alive sockets hold the process open at the end of a test file.
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actualPort = server.address().port;
  const origin = `http://${host}:${actualPort}`;
  return {
    server,
    port: actualPort,
    origin,
    url: (pathname = '/') => new URL(pathname, origin + '/').href,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

async function serveStatic(rootAbs, req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' });
    res.end();
    return;
  }
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  } catch {
    res.writeHead(400);
    res.end();
    return;
  }
  let file = path.resolve(rootAbs, '.' + pathname);
  if (file !== rootAbs && !file.startsWith(rootAbs + path.sep)) {
    res.writeHead(403);
    res.end();
    return;
  }
  let stat = await fsp.stat(file).catch(() => null);
  if (stat && stat.isDirectory()) {
    if (!pathname.endsWith('/')) {
      res.writeHead(301, { location: pathname + '/' });
      res.end();
      return;
    }
    file = path.join(file, 'index.html');
    stat = await fsp.stat(file).catch(() => null);
  }
  if (!stat || !stat.isFile()) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`404 ${pathname}\n`);
    return;
  }
  const type = MIME_TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream';
  res.writeHead(200, {
    'content-type': type,
    'content-length': stat.size,
    'cache-control': 'no-store',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await new Promise((resolve, reject) => {
    const stream = fs.createReadStream(file);
    stream.on('error', reject);
    res.on('finish', resolve);
    res.on('close', resolve);
    stream.pipe(res);
  });
}

// ------------------------------------------------------------------------------------------------
// Browser

/**
 * Launch Chromium as a persistent context (real on-disk profile, so IndexedDB survives reloads and
 * restarts). `userDataDir` defaults to a fresh temp dir that close() removes.
 * `preferences` (object) is written to <profile>/Default/Preferences before launch.
 * Returns a handle { context, userDataDir, newPage(url, opts), restart(), kill(), close() }.
 */
export async function launch({
  userDataDir,
  keepProfile = false,
  args = [],
  preferences,
  log = defaultLog,
  ...options
} = {}) {
  const ownsProfile = !userDataDir;
  const dir = userDataDir || (await fsp.mkdtemp(path.join(os.tmpdir(), 'wallet-persist-e2e-')));
  if (preferences) {
    await fsp.mkdir(path.join(dir, 'Default'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'Default', 'Preferences'), JSON.stringify(preferences));
  }
  const launchOptions = {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    timeout: DEFAULT_TIMEOUT_MS,
    ...options,
  };
  const handle = {
    context: null,
    userDataDir: dir,
    log,
    /** Open a new page (see openPage) in the current context. */
    newPage: (url, opts = {}) => openPage(handle.context, url, opts),
    /** Close the context (if still alive) and relaunch on the same profile. */
    async restart() {
      await closeContextQuietly(handle.context);
      handle.context = await chromium.launchPersistentContext(dir, launchOptions);
      contextLogs.set(handle.context, log);
      return handle.context;
    },
    /** SIGKILL the browser process of this profile (a crash). Call restart() to reopen. */
    async kill() {
      const pids = browserPids(dir);
      if (pids.length === 0) throw new Error(`no browser process found for ${dir}`);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      await waitFor(() => browserPids(dir).length === 0, 10_000, 'browser to die');
      await closeContextQuietly(handle.context);
    },
    /** Browser process ids (main process only) for this profile. */
    pids: () => browserPids(dir),
    /** Close the context and remove the temp profile (unless it was given or keepProfile). */
    async close() {
      await closeContextQuietly(handle.context);
      handle.context = null;
      if (ownsProfile && !keepProfile) await rmrf(dir);
    },
  };
  try {
    handle.context = await chromium.launchPersistentContext(dir, launchOptions);
    contextLogs.set(handle.context, log);
  } catch (err) {
    if (ownsProfile && !keepProfile) await rmrf(dir);
    throw err;
  }
  return handle;
}

async function closeContextQuietly(context) {
  if (!context) return;
  let timer;
  try {
    // Bounded: a context whose browser was killed may never answer. The timer must not keep the
    // test process alive once the close has finished, hence clearTimeout.
    await Promise.race([
      context.close(),
      new Promise((resolve) => {
        timer = setTimeout(resolve, 10_000);
      }),
    ]);
  } catch {
  } finally {
    clearTimeout(timer);
  }
}

async function rmrf(dir) {
  // Chromium may still be flushing for a moment after close; retry a few times.
  await fsp.rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }).catch(() => {});
}

/** Main Chromium process(es) whose command line has --user-data-dir=<dir> and no --type=. */
export function browserPids(userDataDir) {
  const pids = [];
  let entries = [];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (cmdline.includes(`--user-data-dir=${userDataDir}`) && !cmdline.some((a) => a.startsWith('--type='))) {
      // Skip zombies (killed but not yet reaped): they hold no profile.
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (/\) Z /.test(stat)) continue;
      } catch {
        continue;
      }
      pids.push(Number(entry));
    }
  }
  return pids;
}

// ------------------------------------------------------------------------------------------------
// Pages

function defaultLog(line) {
  process.stderr.write(line.endsWith('\n') ? line : line + '\n');
}

const pageErrorLists = new WeakMap();
// The `log` given to launch(), used by openPage() for pages of that context unless told otherwise.
const contextLogs = new WeakMap();

/**
 * Forward the page's console messages and uncaught errors to `log` (default: stderr), prefixed
 * with `prefix`. Uncaught errors are also collected: see pageErrors(page).
 */
export function forwardConsole(page, { log = defaultLog, prefix = '[page]' } = {}) {
  if (pageErrorLists.has(page)) return page;
  const errors = [];
  pageErrorLists.set(page, errors);
  page.on('console', (msg) => log(`${prefix} console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => {
    errors.push(err);
    log(`${prefix} pageerror: ${err && err.stack ? err.stack : err}`);
  });
  page.on('crash', () => log(`${prefix} crashed`));
  return page;
}

/** Uncaught page errors seen so far (after forwardConsole/openPage). */
export function pageErrors(page) {
  return pageErrorLists.get(page) || [];
}

/**
 * Open `url` in a new page of `context`, forwarding console output. Options:
 *   waitFor: CSS selector to wait for;  ready: true to wait for a truthy window.__ready;
 *   timeout (ms);  log, prefix (see forwardConsole).
 */
export async function openPage(context, url, { waitFor: selector, ready = false, timeout = DEFAULT_TIMEOUT_MS, log, prefix } = {}) {
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  forwardConsole(page, { log: log || contextLogs.get(context) || defaultLog, prefix });
  if (url) {
    await page.goto(url, { waitUntil: 'load', timeout });
    await waitForPage(page, { waitFor: selector, ready, timeout });
  }
  return page;
}

/** Reload the page and wait as openPage does. */
export async function reload(page, { waitFor: selector, ready = false, timeout = DEFAULT_TIMEOUT_MS } = {}) {
  await page.reload({ waitUntil: 'load', timeout });
  await waitForPage(page, { waitFor: selector, ready, timeout });
  return page;
}

async function waitForPage(page, { waitFor: selector, ready, timeout }) {
  if (selector) await waitForSelector(page, selector, { timeout });
  if (ready) await waitForReady(page, { timeout });
}

/** Wait until `selector` is attached to the DOM. */
export async function waitForSelector(page, selector, { timeout = DEFAULT_TIMEOUT_MS, state = 'attached' } = {}) {
  return page.waitForSelector(selector, { timeout, state });
}

/**
 * Wait until `window.__ready` is truthy and return its value. If the page sets
 * `window.__readyError` instead, throw it (so a failed page setup fails fast).
 */
export async function waitForReady(page, { timeout = DEFAULT_TIMEOUT_MS } = {}) {
  await page.waitForFunction(() => Boolean(window.__ready) || window.__readyError !== undefined, null, { timeout });
  const { ready, error } = await page.evaluate(() => ({
    ready: window.__ready,
    error: window.__readyError === undefined ? undefined : String(window.__readyError),
  }));
  if (error !== undefined) throw new Error(`page reported __readyError: ${error}`);
  return ready;
}

/**
 * Run `fn(arg)` in the page and return its (awaited, structured-clonable) result. `fn` must be
 * self-contained: it is serialized, so it cannot close over test-side variables.
 */
export async function evalInPage(page, fn, arg) {
  return page.evaluate(fn, arg);
}

/** A CDP session for `page` (e.g. Storage.overrideQuotaForOrigin, Storage.clearDataForOrigin). */
export async function cdpSession(page) {
  return page.context().newCDPSession(page);
}

// ------------------------------------------------------------------------------------------------
// Small utilities

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Convenience for a test file: one server + one browser, torn down together.
 *   const env = await setup();  ...  await env.close();
 */
export async function setup({ serverOptions, launchOptions } = {}) {
  const server = await startServer(serverOptions);
  let browser;
  try {
    browser = await launch(launchOptions);
  } catch (err) {
    await server.close();
    throw err;
  }
  return {
    server,
    browser,
    origin: server.origin,
    url: server.url,
    open: (pathname, opts) => browser.newPage(server.url(pathname), opts),
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

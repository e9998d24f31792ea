// One driver API for the three engines: selenium-webdriver speaking W3C WebDriver to chromedriver
// (Chromium), geckodriver (Firefox ESR) and WebKitWebDriver (WebKitGTK's MiniBrowser). Each engine
// gets its own driver process on a free port and one session; pages are the session's windows.
//
//   import { launch, engines } from './webdriver.mjs';
//   const browser = await launch('firefox', { prefs: { 'dom.quotaManager.temporaryStorage.fixedLimit': 5120 } });
//   const page = await browser.newPage(url, { ready: true });   // waits for window.__ready
//   const n = await page.evaluate((k) => localStorage.getItem(k), 'key');
//   await page.reload({ ready: true });  await page.close();  await browser.close();
//
// `evaluate(fn, arg)` runs `fn` as page code (in the page's own realm, also in Firefox, whose
// WebDriver scripts otherwise run in a sandbox whose objects are not the page's); `arg` and the
// result cross as JSON, so use the wire form of tests/e2e/fixtures/wire.mjs for bigints and bytes.
// WebKit needs a display: run under scripts/with-xvfb.sh (the Makefile does).
// CDP-only tricks (renderer crash, quota override) are not here: they stay in tests/e2e/ (playwright).
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Builder } from 'selenium-webdriver';
import { CHROMIUM_ARGS } from '../e2e/harness.mjs'; // the flags of webdriver.json, once

const MINIBROWSER = process.env.MINIBROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS || 30_000);

/** How each engine is reached: its driver binary and the capabilities of a session. */
export const ENGINES = Object.freeze({
  chromium: {
    driver: process.env.CHROMEDRIVER || '/usr/bin/chromedriver',
    capabilities: () => ({
      browserName: 'chrome',
      'goog:chromeOptions': { binary: process.env.CHROMIUM_PATH || '/usr/bin/chromium', args: CHROMIUM_ARGS },
    }),
  },
  firefox: {
    driver: process.env.GECKODRIVER || `${process.env.HOME}/.cargo/bin/geckodriver`,
    capabilities: ({ prefs = {} } = {}) => ({
      browserName: 'firefox',
      'moz:firefoxOptions': {
        binary: process.env.FIREFOX_PATH || '/usr/bin/firefox-esr',
        args: ['-headless'],
        prefs: {
          // Answer navigator.storage.persist() without a doorhanger (headless has no one to click).
          'dom.storageManager.prompt.testing': true,
          'dom.storageManager.prompt.testing.allow': true,
          ...prefs,
        },
      },
    }),
  },
  webkit: {
    driver: process.env.WEBKITWEBDRIVER || '/usr/bin/WebKitWebDriver',
    capabilities: () => ({
      browserName: 'MiniBrowser',
      'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
    }),
  },
});

/** The engines to run: $ENGINES (comma-separated) or all three. */
export function engines() {
  const wanted = (process.env.ENGINES || 'chromium,firefox,webkit').split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of wanted) if (!ENGINES[name]) throw new Error(`unknown engine ${name} in ENGINES`);
  return wanted;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, child, ms) {
  const end = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`driver exited with ${child.exitCode} before listening`);
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > end) throw new Error(`driver did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `engine`'s driver and one session. Returns the browser handle (see the header). */
export async function launch(engine, options = {}) {
  const spec = ENGINES[engine];
  const port = await freePort();
  const log = [];
  const child = spawn(spec.driver, [`--port=${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => log.push(String(d)));
  child.stderr.on('data', (d) => log.push(String(d)));
  let session;
  try {
    await waitForPort(port, child, 15_000);
    session = await new Builder().usingServer(`http://127.0.0.1:${port}`).withCapabilities(spec.capabilities(options)).build();
    await session.manage().setTimeouts({ script: 120_000, pageLoad: TIMEOUT_MS });
  } catch (error) {
    child.kill('SIGTERM');
    error.message += `\n[${engine} driver log]\n${log.join('').slice(-4000)}`;
    throw error;
  }
  const caps = await session.getCapabilities();
  let current = await session.getWindowHandle();
  let spare = current; // the session's first window, handed to the first newPage
  const focus = async (handle) => {
    if (current !== handle) {
      await session.switchTo().window(handle);
      current = handle;
    }
  };

  const browser = {
    engine,
    session,
    /** "Firefox 153.8.0esr"-style name and version, as the session reports them. */
    version: `${caps.getBrowserName()} ${caps.getBrowserVersion()}`,
    /** A new window (the first call reuses the session's window) on `url`. */
    async newPage(url, opts = {}) {
      let handle;
      if (spare) {
        handle = spare;
        spare = null;
      } else {
        await session.switchTo().newWindow('tab');
        handle = await session.getWindowHandle();
        current = handle;
      }
      const page = makePage(handle);
      if (url) await page.goto(url, opts);
      return page;
    },
    async close() {
      try {
        await session.quit();
      } catch {}
      child.kill('SIGTERM');
      await new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 5_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };

  function makePage(handle) {
    const page = {
      handle,
      closed: false,
      async goto(url, { ready = false } = {}) {
        await focus(handle);
        await session.get(url);
        if (ready) await page.waitReady();
      },
      async reload({ ready = false } = {}) {
        await focus(handle);
        await session.navigate().refresh();
        if (ready) await page.waitReady();
      },
      /** Waits for window.__ready (or throws window.__readyError). */
      async waitReady(ms = TIMEOUT_MS) {
        const end = Date.now() + ms;
        for (;;) {
          const state = await page.evaluate(() => ({ ready: Boolean(window.__ready), error: window.__readyError === undefined ? null : String(window.__readyError) }));
          if (state.error !== null) throw new Error(`page reported __readyError: ${state.error}`);
          if (state.ready) return;
          if (Date.now() > end) throw new Error(`page not ready within ${ms} ms`);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      /** Runs `fn(arg)` in the page's realm; resolves its awaited result (JSON-cloned). */
      async evaluate(fn, arg) {
        await focus(handle);
        const outcome = await session.executeAsyncScript(
          `const done = arguments[arguments.length - 1];
           const w = window.wrappedJSObject || window;
           const run = w.eval('(async (src, json) => { try { const fn = (0, eval)("(" + src + ")"); const v = await fn(json == null ? undefined : JSON.parse(json)); return JSON.stringify({ ok: v === undefined ? null : v }); } catch (e) { return JSON.stringify({ error: String(e && e.stack ? e.stack : e) }); } })');
           run(arguments[0], arguments[1]).then(done, (e) => done(JSON.stringify({ error: String(e) })));`,
          fn.toString(),
          arg === undefined ? null : JSON.stringify(arg),
        );
        const { ok, error } = JSON.parse(outcome);
        if (error !== undefined) throw new Error(`in page (${engine}): ${error}`);
        return ok;
      },
      /** Closes this window (a real pagehide); focus moves to another open window. The session's
       *  last window is not closed (that would end the session): it goes to about:blank and is
       *  handed to the next newPage. */
      async close() {
        if (page.closed) return;
        page.closed = true;
        await focus(handle);
        const all = await session.getAllWindowHandles();
        if (all.length === 1) {
          await session.get('about:blank');
          spare = handle;
          return;
        }
        await session.close();
        current = null;
        await focus(all.find((h) => h !== handle));
      },
    };
    return page;
  }

  return browser;
}

#!/usr/bin/env node
// The CPU cost of staging, between two bench builds (as `make bench-ab` makes them): W6's 10,000
// updates and W1's 1,000 full changesets, each `store()`d in manual mode (the loop W6 and W1 time
// as stage_ms), and the same values through the JS reader (`readTape`) alone. Pages of both builds
// alternate; the minimum of the repetitions (after 3 warm-ups) is the least disturbed by a loaded
// machine, the median is printed beside it.
//
//   node bench/stage-cost.mjs pkg-base pkg [repetitions]
import { startServer, launch, openPage, evalInPage } from '../tests/e2e/harness.mjs';
const [base = 'pkg-base', head = 'pkg', reps = 15] = process.argv.slice(2);
const server = await startServer();
const browser = await launch({ args: ['--js-flags=--expose-gc'], log: () => {} });
const setup = async (pkg) => {
  const page = await openPage(browser.context, server.url(`/bench/index.html?pkg=${pkg}`), { ready: true, timeout: 120000 });
  await evalInPage(page, async (pkg) => {
    const wasm = await import(`/bench/${pkg}/wallet_persist.js`);
    const snip = (await fetch(`/bench/${pkg}/wallet_persist.js`).then((r) => r.text())).match(/snippets\/[^'"]+convert\.js/)[0];
    const { readTape } = await import(`/bench/${pkg}/${snip}`);
    const w6 = Array.from({ length: 10000 }, (_, i) => wasm.benchChangeset('update', i % 100, Math.floor(i / 100), 9));
    const w1 = Array.from({ length: 1000 }, (_, i) => wasm.benchChangeset('full', i, 0, 9));
    let n = 0;
    window.split = async (which) => {
      const list = which === 'W6' ? w6 : w1;
      globalThis.gc?.();
      let t0 = performance.now();
      for (const { changes } of list) readTape(changes, [], 64, 64 << 20);
      const tape = performance.now() - t0;
      const store = await wasm.WalletStore.open({ name: `split-${Date.now()}-${n++}` });
      globalThis.gc?.();
      t0 = performance.now();
      for (const { walletId, changes } of list) await store.store(walletId, changes);
      const staged = performance.now() - t0;
      await store.close();
      return { tape, staged };
    };
  }, pkg);
  return page;
};
try {
  const pages = { [base]: await setup(base), [head]: await setup(head) };
  for (const w of ['W6', 'W1']) {
    const out = { [base]: [], [head]: [] };
    for (let i = 0; i < Number(reps); i++) for (const p of i % 2 ? [base, head] : [head, base]) out[p].push(await evalInPage(pages[p], (w) => window.split(w), w));
    for (const [p, list] of Object.entries(out)) {
      const l = list.slice(3);
      const stat = (k) => { const v = l.map((x) => x[k]).sort((a, b) => a - b); return `min ${v[0].toFixed(1)} median ${v[v.length >> 1].toFixed(1)} ms`; };
      console.log(`${w} ${p.padEnd(9)} readTape alone: ${stat('tape')};  store() loop: ${stat('staged')}`);
    }
  }
} finally {
  await browser.close();
  await server.close();
}

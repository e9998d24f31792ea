#!/usr/bin/env node
// A/B of the load phases between two bench builds (`make bench-ab-load REF=<commit>`): one
// 10,000-row database (W3's payload), read by benchLoadPhases from two pages of one browser, one
// per build, alternating; medians after warm-ups. Both pages only load (a third page fills the
// database), so neither build's page is warmer than the other's.
//
//   node bench/ab-load.mjs pkg-base pkg [--reps 31]
import { startServer, launch, openPage, evalInPage } from '../tests/e2e/harness.mjs';

const [base = 'pkg-base', head = 'pkg'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const repsAt = process.argv.indexOf('--reps');
const reps = repsAt > 0 ? Number(process.argv[repsAt + 1]) : 31;
const WARMUPS = 5;

const server = await startServer();
const browser = await launch({ args: ['--js-flags=--expose-gc'], log: () => {} });
try {
  const open = (pkg) => openPage(browser.context, server.url(`/bench/index.html?pkg=${pkg}`), { ready: true, timeout: 120_000 });
  const filler = await open(head);
  const name = await evalInPage(filler, () => window.bench.populate('ours', 'full'));
  await filler.close();
  const pages = { [base]: await open(base), [head]: await open(head) };
  const samples = { [base]: [], [head]: [] };
  for (let i = 0; i < reps; i++) {
    for (const pkg of i % 2 ? [base, head] : [head, base]) {
      samples[pkg].push(await evalInPage(pages[pkg], async (n) => {
        globalThis.gc?.();
        const { benchLoadPhases } = await import(`/bench/${window.bench.info().pkg}/wallet_persist.js`);
        return benchLoadPhases(n);
      }, name));
    }
  }
  const median = (list) => [...list].sort((a, b) => a - b)[list.length >> 1];
  for (const [pkg, list] of Object.entries(samples)) {
    const m = (p) => median(list.slice(WARMUPS).map((x) => x[p])).toFixed(1).padStart(7);
    console.log(`${pkg.padEnd(12)} rows ${list[0].rows}  read ${m('readMs')} ms  decode ${m('decodeMs')} ms  to JS ${m('toJsMs')} ms  (medians of ${reps - WARMUPS})`);
  }
} finally {
  await browser.close();
  await server.close();
}

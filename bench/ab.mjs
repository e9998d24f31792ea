#!/usr/bin/env node
// A/B of ours between two bench builds (`make bench-ab REF=<commit> W=W3`): two pages of one
// browser, one per build, alternating, medians after warm-ups.
//   W3: one 10,000-row database (W3's payload, filled by a third page so neither build's page is
//       warmer than the other's) read by benchLoadPhases: read, decode, to-JS phases.
//   W1, W2, W4, W5, W6: one repetition of ours in that workload per turn (fresh database each):
//       total, stage and commit.
//
//   node bench/ab.mjs pkg-base pkg [--workload W3] [--reps 31] [--rows N (W3: N / 100 wallets × 100 rows)]
import { startServer, launch, openPage, evalInPage } from '../tests/e2e/harness.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const [base = 'pkg-base', head = 'pkg'] = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
const workload = option('--workload', 'W3');
const reps = Number(option('--reps', workload === 'W3' ? 31 : 21));
const rows = option('--rows', undefined);
const WARMUPS = 5;

const server = await startServer();
const browser = await launch({ args: ['--js-flags=--expose-gc'], log: () => {} });
try {
  const open = (pkg) => openPage(browser.context, server.url(`/bench/index.html?pkg=${pkg}`), { ready: true, timeout: 120_000 });
  let name;
  if (workload === 'W3') {
    const filler = await open(head);
    name = await evalInPage(filler, (r) => window.bench.populate('ours', r ? { wallets: r / 100, rows: 100 } : 'full'), Number(rows || 0));
    await filler.close();
  }
  const pages = { [base]: await open(base), [head]: await open(head) };
  const samples = { [base]: [], [head]: [] };
  const once = (page) =>
    workload === 'W3'
      ? evalInPage(page, async (n) => {
          globalThis.gc?.();
          const { benchLoadPhases } = await import(`/bench/${window.bench.info().pkg}/wallet_persist.js`);
          const p = await benchLoadPhases(n);
          return { read: p.readMs, decode: p.decodeMs, 'to JS': p.toJsMs };
        }, name)
      : evalInPage(page, async (w) => {
          const r = await window.bench.run(w, 'ours', 'full');
          return { total: r.ms, ...(r.phases || {}) };
        }, workload);
  for (let i = 0; i < reps; i++) {
    for (const pkg of i % 2 ? [base, head] : [head, base]) samples[pkg].push(await once(pages[pkg]));
  }
  const quantile = (list, q) => [...list].sort((a, b) => a - b)[Math.round(q * (list.length - 1))];
  console.log(`${workload}, ours, medians [p25–p75] of ${reps - WARMUPS} alternating repetitions after ${WARMUPS} warm-ups:`);
  for (const [pkg, list] of Object.entries(samples)) {
    const cells = Object.keys(list[0]).map((k) => {
      const values = list.slice(WARMUPS).map((x) => x[k]);
      return `${k} ${quantile(values, 0.5).toFixed(1)} ms [${quantile(values, 0.25).toFixed(1)}–${quantile(values, 0.75).toFixed(1)}]`;
    });
    console.log(`  ${pkg.padEnd(12)} ${cells.join('  ')}`);
  }
  // Per alternation pair, head ÷ base of the first column: the ratio without the drift between turns.
  const first = Object.keys(samples[head][0])[0];
  const ratios = samples[head].slice(WARMUPS).map((x, i) => x[first] / samples[base][WARMUPS + i][first]);
  console.log(`  ${head} ÷ ${base} (${first}, per pair): median ${quantile(ratios, 0.5).toFixed(2)} [${quantile(ratios, 0.25).toFixed(2)}–${quantile(ratios, 0.75).toFixed(2)}]`);
} finally {
  await browser.close();
  await server.close();
}

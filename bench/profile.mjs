#!/usr/bin/env node
// Where the time of one contender's workload goes (`make bench-profile W=W3 C=ours`): runs it on
// the profiling build (bench/pkg-profiling: the release code with function names) with the CDP
// sampling profiler, which records only the timed region (console.profile in the page), and prints
// the self time per function and per category (our wasm, its JS glue, the browser's IndexedDB
// bindings and GC, the page).
//
//   node bench/profile.mjs W3 ours [--reps 5] [--size full|smoke]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBenchPage, runOnce, chromiumApi } from './run.mjs';

function parse(argv) {
  const opts = { workload: argv[0], contender: argv[1] || 'ours', reps: 5, size: 'full' };
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--reps') opts.reps = Number(argv[++i]);
    else if (argv[i] === '--size') opts.size = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!/^W[1-7]$/.test(opts.workload || '')) throw new Error('usage: node bench/profile.mjs W1..W7 [contender] [--reps N] [--size full|smoke]');
  return opts;
}

function category({ functionName, url }) {
  if (/^\((garbage collector|program|idle|root)\)$/.test(functionName)) return functionName;
  if (url.endsWith('.wasm') || url.includes('wasm://') || url === '' && /^(wasm-function|<|_ZN|core::|alloc::|wallet_persist|serde|bincode|js_sys|wasm_bindgen)/.test(functionName)) return 'wasm (ours)';
  if (url.includes('/bench/pkg')) return 'JS glue (wasm-bindgen)';
  if (url.includes('/node_modules/')) return 'library JS';
  if (url.includes('/bench/page/')) return 'benchmark page';
  if (url === '') return 'browser built-ins (IndexedDB, structured clone, …)';
  return url;
}

async function main() {
  const opts = parse(process.argv.slice(2));
  const { server, browser, page } = await openBenchPage({ query: '?pkg=pkg-profiling&profile', logLine: () => {} });
  try {
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    const profiles = [];
    cdp.on('Profiler.consoleProfileFinished', ({ profile }) => profiles.push(profile));
    await runOnce(chromiumApi(page), opts.workload, opts.contender, opts.size, false); // warm-up
    profiles.length = 0;
    const times = [];
    for (let i = 0; i < opts.reps; i++) {
      // W3 reloads the page: the session follows the target, but the profiler must be re-armed.
      const result = await runOnce(chromiumApi(page), opts.workload, opts.contender, opts.size, false);
      times.push(result.ms);
      await cdp.send('Profiler.enable');
    }
    await new Promise((r) => setTimeout(r, 200));
    const self = new Map();
    const byCategory = new Map();
    let total = 0;
    const inclusive = new Map();
    const keyOf = (frame) => `${frame.functionName || '(anonymous)'}  ${frame.url ? path.basename(frame.url) + ':' + (frame.lineNumber + 1) : ''}`;
    for (const profile of profiles) {
      const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
      const parent = new Map();
      for (const n of profile.nodes) for (const child of n.children || []) parent.set(child, n.id);
      profile.samples.forEach((id, i) => {
        const dt = (profile.timeDeltas[i] || 0) / 1000;
        const frame = nodes.get(id).callFrame;
        // console.profile() itself is sampled before the timed region starts: not ours.
        if (/^profile(Start|End)$/.test(frame.functionName)) return;
        const key = keyOf(frame);
        self.set(key, (self.get(key) || 0) + dt);
        const onStack = new Set();
        for (let at = id; at !== undefined; at = parent.get(at)) onStack.add(keyOf(nodes.get(at).callFrame));
        for (const k of onStack) inclusive.set(k, (inclusive.get(k) || 0) + dt);
        const cat = category(frame);
        byCategory.set(cat, (byCategory.get(cat) || 0) + dt);
        total += dt;
      });
    }
    const n = profiles.length || 1;
    const pct = (ms) => ((ms / total) * 100).toFixed(1).padStart(5) + '%';
    console.log(`${opts.workload} ${opts.contender}: ${profiles.length} profiled repetitions, median ${median(times).toFixed(1)} ms; per repetition:`);
    console.log('\nby category (self time):');
    for (const [cat, ms] of [...byCategory].sort((a, b) => b[1] - a[1])) console.log(`  ${(ms / n).toFixed(1).padStart(9)} ms ${pct(ms)}  ${cat}`);
    console.log('\ntop functions (self time):');
    for (const [key, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${(ms / n).toFixed(1).padStart(9)} ms ${pct(ms)}  ${key.slice(0, 150)}`);
    console.log('\nour functions, inclusive time (callees included):');
    const ours = [...inclusive].filter(([key]) => /wallet_persist::|wallet_persist\.js/.test(key) && !/^\(/.test(key));
    for (const [key, ms] of ours.sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${(ms / n).toFixed(1).padStart(9)} ms ${pct(ms)}  ${key.slice(0, 150)}`);
  } finally {
    await browser.close();
    await server.close();
  }
}

function median(list) {
  const s = [...list].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : NaN;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error && error.stack ? error.stack : error);
    process.exit(1);
  });
}

#!/usr/bin/env node
// What reading W3's database costs, request style by style, with no decoding: B0's getAll of
// values only, getAllKeys + getAll, getAllRecords (keys and values), and ours' backend read
// (getAllRecords + rows copied into wasm). Alternating, medians after warm-ups, one browser.
//   node bench/read-cost.mjs [--reps 21]
import { startServer, launch, openPage, reload, evalInPage } from '../tests/e2e/harness.mjs';

const args = process.argv.slice(2);
const reps = Number(args.includes('--reps') ? args[args.indexOf('--reps') + 1] : 21);
const WARMUPS = 4;
const STYLES = ['getAll', 'getAllKeys+getAll', 'getAllRecords', 'ours: read into wasm'];

const server = await startServer();
const browser = await launch({ args: ['--js-flags=--expose-gc'], log: () => {} });
try {
  const page = await openPage(browser.context, server.url('/bench/index.html'), { ready: true, timeout: 120_000 });
  const name = await evalInPage(page, () => window.bench.populate('ours', 'full'));
  const samples = Object.fromEntries(STYLES.map((s) => [s, []]));
  for (let i = 0; i < reps; i++) {
    const order = i % 2 ? [...STYLES].reverse() : STYLES;
    for (const style of order) {
      await reload(page, { ready: true, timeout: 120_000 });
      samples[style].push(
        await evalInPage(page, async ([n, s]) => {
          globalThis.gc?.();
          if (s === 'ours: read into wasm') {
            const { benchLoadPhases } = await import(`/bench/${window.bench.info().pkg}/wallet_persist.js`);
            return (await benchLoadPhases(n)).readMs;
          }
          const db = await new Promise((resolve, reject) => {
            const req = indexedDB.open(n);
            req.onsuccess = () => resolve(req.result);
            req.onerror = () => reject(req.error);
          });
          const request = (req) => new Promise((resolve, reject) => ((req.onsuccess = () => resolve(req.result)), (req.onerror = () => reject(req.error))));
          const t0 = performance.now();
          const tx = db.transaction([...db.objectStoreNames], 'readonly');
          await Promise.all([...db.objectStoreNames].map((store) => {
            const os = tx.objectStore(store);
            if (s === 'getAll') return request(os.getAll());
            if (s === 'getAllKeys+getAll') return Promise.all([request(os.getAllKeys()), request(os.getAll())]);
            return request(os.getAllRecords()).then((records) => [records.map((r) => r.primaryKey), records.map((r) => r.value)]);
          }));
          const ms = performance.now() - t0;
          db.close();
          return ms;
        }, [name, style]),
      );
    }
  }
  const median = (list) => [...list].sort((a, b) => a - b)[list.length >> 1];
  console.log(`read of W3's database (10,000 rows), medians of ${reps - WARMUPS} alternating repetitions after ${WARMUPS} warm-ups:`);
  for (const style of STYLES) console.log(`  ${style.padEnd(22)} ${median(samples[style].slice(WARMUPS)).toFixed(1)} ms`);
} finally {
  await browser.close();
  await server.close();
}

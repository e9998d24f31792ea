// The benchmark page: loads our wasm exactly as a wallet does (`init()`, then `WalletStore`), from
// the bench build (bench/pkg: the release profile plus the `bench` exports; `?pkg=pkg-profiling`:
// the same with function names, for bench/profile.mjs; `?pkg=pkg-base`: another commit's build,
// for bench/ab.mjs), and installs `window.bench` for bench/run.mjs.
import { deleteDatabase } from './contenders.mjs';
import { workloads } from './workloads.mjs';

/** The area stores, as our own `load` report lists them (so this page never drifts from src/). */
async function areaStores() {
  const name = `bench-area-stores-${Date.now().toString(36)}`;
  const store = await wasm.WalletStore.open({ name });
  const { report } = await store.load();
  await store.close();
  await deleteDatabase(name);
  return Object.keys(report.rows);
}

const PKG = /^pkg(-[a-z]+)?$/.test(new URLSearchParams(location.search).get('pkg')) ? new URLSearchParams(location.search).get('pkg') : 'pkg';
const wasm = await import(`/bench/${PKG}/wallet_persist.js`);

export async function install() {
  // init() resolves the module's exports: `memory` is its linear memory (the scale point's measure).
  const exports = await wasm.default();
  wasm.setLogLevel('error');
  const stores = await areaStores();
  const bench = workloads(wasm, stores, exports.memory);
  window.bench = {
    ...bench,
    info: () => ({
      userAgent: navigator.userAgent,
      hardwareConcurrency: navigator.hardwareConcurrency,
      deviceMemory: navigator.deviceMemory,
      areaStores: stores,
      gc: typeof globalThis.gc === 'function',
      longTasks: Boolean(PerformanceObserver.supportedEntryTypes?.includes('longtask')),
      jsHeap: Boolean(performance.memory),
      entryTypes: PerformanceObserver.supportedEntryTypes ?? [],
      pkg: PKG,
    }),
  };
}

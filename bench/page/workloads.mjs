// The workloads W1–W7 and the load request count, as the page runs them. One call of `run` is
// one repetition of one contender on a fresh database; only the workload itself is timed (opening
// the database beforehand, closing, verifying and deleting it afterwards are not).
import * as contenders from './contenders.mjs';
import { makeData, range } from './data.mjs';

/** Workload sizes: the ("full") and a tiny one for the test suite ("smoke"). */
export const SIZES = {
  W1: { full: { wallets: 1000 }, smoke: { wallets: 10 } },
  W2: { full: { flushes: 100, wallets: 100 }, smoke: { flushes: 3, wallets: 5 } },
  W3: { full: { wallets: 100, rows: 100 }, smoke: { wallets: 5, rows: 20 } },
  W4: { full: { wallets: 1000 }, smoke: { wallets: 10 } },
  W5: { full: { kib: 256 }, smoke: { kib: 64 } },
  W6: { full: { updates: 10_000, wallets: 100 }, smoke: { updates: 200, wallets: 10 } },
  W7: { full: { changesets: 1000 }, smoke: { changesets: 20 } },
  // The scale point: commit, then (after a reload) load, of 1,000 wallets × 100 rows.
  scale: { full: { wallets: 1000, rows: 100 }, smoke: { wallets: 10, rows: 10 } },
  W8: { full: { wallets: 1000, rows: 100 }, smoke: { wallets: 5, rows: 20 } },
  W9: { full: { wallets: 1000, rows: 100 }, smoke: { wallets: 5, rows: 20 } },
};

const now = () => performance.now();
const gc = () => globalThis.gc?.();
// With ?profile (bench/profile.mjs), every timed region is also a console.profile() that the
// profiler's CDP session receives: the profile holds the timed work only.
const PROFILE = new URLSearchParams(location.search).has('profile');
const profileStart = (label) => PROFILE && console.profile(label);
const profileEnd = (label) => PROFILE && console.profileEnd(label);
let dbCounter = 0;
const freshName = (workload, contender) => `bench-${workload}-${contender}-${Date.now().toString(36)}-${dbCounter++}`;

/** `{ phase: ms }` as ours reports it (Dexie's bulkPut, for one, resolves an array of keys). */
const isPhases = (value) =>
  value !== null && typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'number');

/** Makes the next `IDBTransaction.commit()` abort the transaction instead (a transient failure
 *  after every request was issued, as a lost connection or a full disk would cause). */
function abortNextCommit() {
  const proto = IDBTransaction.prototype;
  const original = proto.commit;
  proto.commit = function () {
    proto.commit = original;
    this.abort();
  };
}

/** The app key of the encrypted contender: fixed, so every repetition does the same work. */
const BENCH_KEY = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);

/** Tracks the main-thread tasks over 50 ms (Long Tasks API) from `start()` to `stop()`, which
 *  resolves the longest; `longestFrom(a, b)` then gives the longest of those that started in
 *  [a, b). `null` where the engine has no 'longtask' entries (Firefox and WebKit today). */
function longestTask() {
  if (!PerformanceObserver.supportedEntryTypes?.includes('longtask')) return { stop: async () => null, longestFrom: () => null };
  const tasks = [];
  const t0 = now();
  const seen = (list) => {
    for (const e of list.getEntries()) if (e.startTime >= t0) tasks.push(e);
  };
  const observer = new PerformanceObserver(seen);
  observer.observe({ type: 'longtask' });
  const longestFrom = (a, b) => tasks.reduce((m, e) => (e.startTime >= a && e.startTime < b ? Math.max(m, e.duration) : m), 0);
  return {
    async stop() {
      // Entries are queued after their task ends: let the queue run, then take what is left.
      await new Promise((resolve) => setTimeout(resolve, 50));
      seen({ getEntries: () => observer.takeRecords() });
      observer.disconnect();
      return longestFrom(-Infinity, Infinity);
    },
    longestFrom,
  };
}

/** Bytes of wasm linear memory, and of the JS heap (Chromium's `performance.memory`, precise
 *  with --enable-precise-memory-info) after a GC where gc() is exposed. */
function memory(wasmMemory) {
  gc();
  return { wasm: wasmMemory ? wasmMemory.buffer.byteLength : null, jsHeap: performance.memory ? performance.memory.usedJSHeapSize : null };
}

export function workloads(wasm, areaStores, wasmMemory) {
  const data = makeData(wasm);
  const c = {
    ours: contenders.ours(wasm),
    ours_breakdown: contenders.oursBreakdown(wasm),
    // Encrypted at rest with an app key (the passphrase's Argon2id unlock is measured apart).
    ours_encrypted: contenders.ours(wasm, { encryption: { key: BENCH_KEY } }),
    raw_idb: contenders.rawIdb(areaStores),
    dexie: contenders.dexie(areaStores),
    idb_keyval: contenders.idbKeyval({ many: false }),
    idb_keyval_setmany: contenders.idbKeyval({ many: true }),
  };
  // Write workloads: contender → [implementation, timed body (impl, handle, payload)].
  const once = (impl) => [impl, (i, h, d) => i.write(h, d)];
  // W2: one flush after the other; phases (if the contender reports any) summed over the flushes.
  const sequence = (impl) => [
    impl,
    async (i, h, list) => {
      const total = {};
      for (const p of list) {
        const phases = await i.write(h, p);
        if (!isPhases(phases)) continue;
        for (const [phase, ms] of Object.entries(phases)) total[phase] = (total[phase] || 0) + ms;
      }
      return total;
    },
  ];
  const everyContenderOnce = { ours: once(c.ours), raw_idb: once(c.raw_idb), dexie: once(c.dexie), idb_keyval: once(c.idb_keyval), idb_keyval_setmany: once(c.idb_keyval_setmany) };
  const writes = {
    W1: {
      payload: (size) => data('flush', SIZES.W1[size]),
      rows: (d) => d.rows.length,
      contenders: { ...everyContenderOnce, ours_encrypted: once(c.ours_encrypted) },
    },
    W2: {
      payload: (size) => data('flushes', SIZES.W2[size]),
      rows: (list) => list.reduce((n, p) => n + p.rows.length, 0),
      contenders: {
        ours: sequence(c.ours),
        raw_idb: sequence(c.raw_idb),
        dexie: sequence(c.dexie),
        // idb-keyval `set` per row is measured in W1 and W5; here (40,000 transactions, about 35 s
        // a repetition on 2 cores) it would dominate the run and show nothing W1 does not.
        idb_keyval_setmany: sequence(c.idb_keyval_setmany),
      },
    },
    W4: {
      payload: (size) => data('flush', SIZES.W4[size]),
      rows: (d) => d.rows.length,
      contenders: {
        ours: [c.ours, (i, h, d) => i.writeRetried(h, d, abortNextCommit)],
        raw_idb: [c.raw_idb, (i, h, d) => i.writeRetried(h, d, abortNextCommit)],
      },
    },
    W5: {
      payload: (size) => data('big', SIZES.W5[size]),
      rows: (d) => d.rows.length,
      contenders: everyContenderOnce,
    },
    W6: {
      payload: (size) => data('updates', SIZES.W6[size]),
      // Rows written: the updates merge into `distinct` rows (rows/s counts only those).
      rows: (u) => u.distinct,
      contenders: {
        ours: [c.ours, (i, h, u) => i.writeEach(h, u)],
        // B0 here merges the updates in a Map first (the same final rows as ours: like for like);
        // raw_idb_every writes every update's rows, all in one transaction.
        raw_idb: [c.raw_idb, (i, h, u) => i.writeMerged(h, u)],
        raw_idb_every: [c.raw_idb, (i, h, u) => i.writeEach(h, u)],
        dexie: [c.dexie, (i, h, u) => i.writeEach(h, u)],
        dexie_bulkput: [c.dexie, (i, h, u) => i.writeBulk(h, u)],
        // idb-keyval `set` per row (20,000 transactions) took 60–140 s a repetition: omitted.
        idb_keyval_setmany: [c.idb_keyval_setmany, (i, h, u) => i.writeEach(h, u)],
      },
    },
  };
  // W3: each contender loads a database its own writer filled (populate, then a page reload).
  // `size`: a named size, or `{ wallets, rows }` (run.mjs --rows).
  const loads = {
    payload: (size, params = typeof size === 'object' ? size : SIZES.W3[size]) => data('bulk', params),
    writers: { ours: c.ours, ours_breakdown: c.ours, ours_encrypted: c.ours_encrypted, raw_idb: c.raw_idb, dexie: c.dexie, idb_keyval: c.idb_keyval_setmany },
  };
  let codec = null;
  // The scale point's contenders. `timeoutMs` bounds the time without progress (each chunk is
  // progress), so the 100,000-row write runs with the default; 10 minutes keeps the run comparable
  // with refs from before that rule, whose deadline bounded the whole write.
  const scale = { ours: contenders.ours(wasm, { timeoutMs: 600_000 }), raw_idb: c.raw_idb };

  /** The rows the database of a write workload must hold afterwards. */
  const expectedRows = (workload, payload) => {
    if (workload === 'W6') return payload.distinct;
    const rows = workload === 'W2' ? payload.flatMap((p) => p.rows) : payload.rows;
    return new Set(rows.map((r) => r.store + '\u0000' + JSON.stringify(r.key))).size;
  };

  return {
    /** Contenders of each workload, in the order the report lists them. */
    contenders: () => ({
      ...Object.fromEntries(Object.entries(writes).map(([w, spec]) => [w, Object.keys(spec.contenders)])),
      W3: Object.keys(loads.writers),
      W7: ['ours', 'serde_wasm_bindgen', 'json'],
      W8: ['ours', 'raw_idb'],
      W9: ['ours', 'raw_idb'],
    }),

    /** The workload sizes. */
    sizes: SIZES,

    /** Builds the payload of `workload` (untimed) and describes it. */
    prepare(workload, size) {
      if (workload === 'W7') return { rows: SIZES.W7[size].changesets };
      const payload = workload === 'W3' ? loads.payload(size) : writes[workload].payload(size);
      const rows = workload === 'W3' ? payload.rows.length : writes[workload].rows(payload);
      const list = Array.isArray(payload) ? payload : [payload];
      const bytes = workload === 'W6' ? payload.rows.reduce((n, r) => n + r.value.length, 0) : list.reduce((n, p) => n + p.bytes, 0);
      return { rows, bytes, expectedRows: workload === 'W3' ? payload.rows.length : expectedRows(workload, payload) };
    },

    /** One timed repetition of a write workload: `{ ms, phases?, check? }`. */
    async run(workload, contender, size, { verify = false } = {}) {
      const spec = writes[workload];
      const [impl, body] = spec.contenders[contender];
      const payload = spec.payload(size);
      const name = freshName(workload, contender);
      const handle = await impl.open(name);
      gc();
      profileStart(`${workload} ${contender}`);
      const t0 = now();
      const returned = await body(impl, handle, payload);
      const ms = now() - t0;
      profileEnd(`${workload} ${contender}`);
      // Only ours and W4 report phases; the baselines' bodies may resolve anything else.
      const phases = isPhases(returned) ? returned : undefined;
      await impl.close(handle);
      const check = verify ? await contenders.digest(name, areaStores) : undefined;
      await contenders.deleteDatabase(name);
      return { ms, phases: phases && Object.keys(phases).length ? phases : undefined, check };
    },

    /** W3, before the reload: fills a fresh database with the contender's own writer. */
    async populate(contender, size) {
      const impl = loads.writers[contender];
      const name = freshName('W3', contender);
      const handle = await impl.open(name);
      await impl.write(handle, loads.payload(size));
      await impl.close(handle);
      return name;
    },

    /** W3, after the reload: the timed cold load, then the database is deleted. */
    async load(contender, name, { verify = false } = {}) {
      gc();
      profileStart(`W3 ${contender}`);
      const t0 = now();
      const { rows, phases } = await c[contender].load(name);
      const ms = now() - t0;
      profileEnd(`W3 ${contender}`);
      const check = verify ? await contenders.digest(name, areaStores) : undefined;
      await contenders.deleteDatabase(name);
      // The breakdown's total is the sum of its phases (its own calls to performance.now()).
      const total = contender === 'ours_breakdown' ? Object.values(phases).reduce((a, b) => a + b, 0) : ms;
      return { ms: total, rows, phases, check };
    },

    /** The scale point, first half: a fresh database filled by `contender`'s writer in one flush
     *  (timed, with its longest task and the memory after it). Resolves the database's name and
     *  the measures; the page is reloaded before `scaleLoad`. */
    async scaleCommit(contender, size) {
      const impl = scale[contender];
      const payload = loads.payload(size, SIZES.scale[size]);
      const { wallets, rows } = SIZES.scale[size];
      if (payload.rows.length !== wallets * rows) throw new Error(`scale: ${payload.rows.length} rows, not ${wallets} × ${rows}`);
      const name = freshName('scale', contender);
      const handle = await impl.open(name);
      wasm.memoryMarks?.();
      const before = memory(wasmMemory);
      // The timed region starts in a task of its own (a long task counts only if it starts after
      // the tracker did): staging would otherwise run in the task of open's continuation and gc().
      const task = longestTask();
      await new Promise((resolve) => setTimeout(resolve, 0));
      const t0 = now();
      // Ours: the app's loop of 1,000 store() calls (their promises settle in microtasks, so the
      // loop is one task of the app's), a macrotask, then commit() in tasks of its own.
      const phases = await impl.write(handle, payload, { yieldBeforeCommit: true });
      const ms = now() - t0;
      const longest = await task.stop();
      // B0 has no staging phase: its longest task is that of its whole write, as ours' commit.
      const split = phases?.stage_ms === undefined ? {} : {
        stage_ms: phases.stage_ms,
        stage_longest_task_ms: task.longestFrom(-Infinity, t0 + phases.stage_ms),
      };
      const commitLongest = split.stage_ms === undefined ? longest : task.longestFrom(t0 + split.stage_ms, Infinity);
      const after = memory(wasmMemory);
      // Bench builds: wasm memory at named points of the commit (where its peak comes from).
      const marks = wasm.memoryMarks?.() ?? [];
      await impl.close(handle);
      return {
        name,
        marks,
        rows: payload.rows.length,
        bytes: payload.bytes,
        measures: {
          commit_ms: ms,
          commit_longest_task_ms: commitLongest,
          ...split,
          baseline_wasm_memory_bytes: before.wasm,
          commit_wasm_memory_bytes: after.wasm,
          commit_js_heap_bytes: after.jsHeap,
        },
      };
    },

    /** The scale point, second half (after a reload): the cold load, the loaded state held while
     *  the memory is measured, then the database is deleted. */
    async scaleLoad(contender, name) {
      gc();
      const task = longestTask();
      const t0 = now();
      const loaded = await scale[contender].load(name, { keep: true });
      const ms = now() - t0;
      const longest = await task.stop();
      const after = memory(wasmMemory);
      const rows = loaded.rows;
      loaded.held = null; // held until here: the heap above includes the loaded state
      await contenders.deleteDatabase(name);
      return { rows, measures: { load_ms: ms, load_longest_task_ms: longest, load_wasm_memory_bytes: after.wasm, load_js_heap_bytes: after.jsHeap } };
    },

    /** W7: encode then decode `changesets` whole changesets with one codec, each half timed. */
    codec(contender, size) {
      const count = SIZES.W7[size].changesets;
      if (!codec || codec.count !== count) codec = { count, bench: new wasm.CodecBench(count, 9) };
      const [encode, decode] = {
        ours: ['bincodeEncode', 'bincodeDecode'],
        serde_wasm_bindgen: ['swbEncode', 'swbDecode'],
        json: ['jsonEncode', 'jsonDecode'],
      }[contender];
      gc();
      profileStart(`W7 ${contender}`);
      const t0 = now();
      const bytes = codec.bench[encode]();
      const t1 = now();
      const fields = codec.bench[decode]();
      const t2 = now();
      profileEnd(`W7 ${contender}`);
      if (fields !== count * 13) throw new Error(`${contender} decoded ${fields} fields, expected ${count * 13}`);
      return { ms: t2 - t0, phases: { encode_ms: t1 - t0, decode_ms: t2 - t1 }, bytes: contender === 'serde_wasm_bindgen' ? undefined : bytes };
    },

    /** W8 / W9, once per run: `wallets` × `rows` rows written by ours (untimed). */
    async populateMany(workload, size) {
      const { wallets, rows } = SIZES[workload][size];
      const name = freshName(workload, 'ours');
      const store = await wasm.WalletStore.open({ name });
      const ids = [];
      for (const n of range(wallets)) {
        const { walletId, changes } = wasm.benchChangeset('bulk', n, rows, 9);
        ids.push(walletId);
        await store.store(walletId, changes);
      }
      const report = await store.commit();
      await store.close();
      if (report.succeeded.length !== wallets) throw new Error(`${workload} populate: ${JSON.stringify(report.failed[0])}`);
      return { name, ids };
    },

    /**
     * W8 / W9, one timed read of the database `populateMany` wrote: W8 the rows of `walletId`
     * (ours: `load({walletIds})`; raw IndexedDB: `getAll` over the wallet's key range in every
     * store, one transaction), W9 the wallet records (ours: `listWallets()`; raw: `getAll` of the
     * wallet-record store). Opening and closing are not timed.
     */
    async readMany(workload, contender, name, walletId) {
      const raw = contender === 'raw_idb';
      const handle = raw ? await new Promise((resolve, reject) => {
        const req = indexedDB.open(name);
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      }) : await wasm.WalletStore.open({ name });
      const getAll = (stores, query) => {
        const tx = handle.transaction(stores, 'readonly');
        return Promise.all(stores.map((s) => new Promise((resolve, reject) => {
          const req = tx.objectStore(s).getAll(query);
          req.onsuccess = () => resolve(req.result.length);
          req.onerror = () => reject(req.error);
        })));
      };
      const sum = (list) => list.reduce((a, b) => a + b, 0);
      gc();
      profileStart(`${workload} ${contender}`);
      const t0 = now();
      let rows;
      if (workload === 'W8' && raw) {
        rows = sum(await getAll(areaStores, IDBKeyRange.bound([walletId], [walletId, []], false, true)));
      } else if (workload === 'W8') {
        const { wallets, report } = await handle.load({ walletIds: [walletId] });
        rows = Object.keys(wallets).length === 1 && report.skipped.length === 0 ? sum(Object.values(report.rows)) : -1;
      } else {
        rows = raw ? sum(await getAll(['wallets'])) : (await handle.listWallets()).wallets.length;
      }
      const ms = now() - t0;
      profileEnd(`${workload} ${contender}`);
      await handle.close();
      return { ms, rows };
    },

    /** Deletes a database of `populateMany`. */
    drop: (name) => contenders.deleteDatabase(name),

    /**
     * The IndexedDB requests one `load()` issues on a database of `wallets` full wallets (13 rows
     * each), counted by wrapping every method of IDBObjectStore and IDBIndex that returns an
     * IDBRequest, and the transactions it opens.
     */
    async countLoadRequests(wallets) {
      const name = freshName('requests', String(wallets));
      const store = await wasm.WalletStore.open({ name });
      for (const n of range(wallets)) {
        const { walletId, changes } = wasm.benchChangeset('full', n, 0, 9);
        await store.store(walletId, changes);
      }
      await store.commit();
      await store.close();
      const reopened = await wasm.WalletStore.open({ name });
      const counted = countRequests();
      let result;
      try {
        result = await reopened.load();
      } finally {
        counted.stop();
      }
      await reopened.close();
      await contenders.deleteDatabase(name);
      const rows = Object.values(result.report.rows).reduce((a, b) => a + b, 0);
      return { wallets: result.report.wallets, rows, requests: counted.requests, transactions: counted.transactions, byMethod: counted.byMethod };
    },
  };
}

/** Counts IndexedDB requests (and transactions) until `stop()`. */
function countRequests() {
  const byMethod = {};
  const restore = [];
  let transactions = 0;
  const wrap = (proto, method, count) => {
    const original = proto[method];
    proto[method] = function (...args) {
      const result = original.apply(this, args);
      if (count) count(method);
      else if (result instanceof IDBRequest) byMethod[method] = (byMethod[method] || 0) + 1;
      return result;
    };
    restore.push(() => (proto[method] = original));
  };
  // Every method of IDBObjectStore and IDBIndex that returns an IDBRequest (get, getAll,
  // getAllKeys, getAllRecords, openCursor, put, delete, …, and any the browser adds) is counted.
  for (const proto of [IDBObjectStore.prototype, IDBIndex.prototype]) {
    for (const method of Object.getOwnPropertyNames(proto)) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, method);
      if (method === 'constructor' || typeof descriptor.value !== 'function') continue;
      wrap(proto, method, null);
    }
  }
  wrap(IDBDatabase.prototype, 'transaction', () => (transactions += 1));
  return {
    get requests() {
      return Object.values(byMethod).reduce((a, b) => a + b, 0);
    },
    get transactions() {
      return transactions;
    },
    byMethod,
    stop: () => restore.forEach((undo) => undo()),
  };
}

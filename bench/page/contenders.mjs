// The contenders, each over its own fresh database: ours (wallet-persist), B0 raw IndexedDB (the
// practical limit), B1 Dexie, B2 idb-keyval. Every contender writes the same rows (payload.rows:
// IndexedDB key arrays and envelope bytes exported from our wasm) into the same 13 area stores
// (idb-keyval: one store, key `[store, ...key]`).
//
// A contender: { open(name) → handle, close(handle), load(name) → phases } plus the write styles
// it supports: `write(handle, payload)` (all rows, one flush / transaction), and for W6
// `writeEach(handle, payloads)` (every update written as it happens).
import Dexie from '/node_modules/dexie/dist/dexie.mjs';
import * as kv from '/node_modules/idb-keyval/dist/index.js';

export const request = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

export const transactionDone = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error || new DOMException('The transaction was aborted.', 'AbortError'));
  });

/** Deletes `name`. A connection closed a moment ago may still be finishing its last transaction
 *  (`blocked` for a few ms): only a delete blocked for seconds is worth a warning. */
export async function deleteDatabase(name) {
  const req = indexedDB.deleteDatabase(name);
  let timer;
  await new Promise((resolve, reject) => {
    req.onsuccess = resolve;
    req.onerror = () => reject(req.error);
    req.onblocked = () => {
      timer = setTimeout(() => console.warn(`deleteDatabase(${name}) blocked for 2 s: a connection is still open`), 2000);
    };
  }).finally(() => clearTimeout(timer));
}

const now = () => performance.now();

// ---- ours ---------------------------------------------------------------------------------------

export function ours(wasm, openOptions = {}) {
  const { WalletStore } = wasm;
  const stage = async (store, changesets) => {
    for (const { walletId, changes } of changesets) await store.store(walletId, changes);
  };
  const commitAll = async (store, expected) => {
    const report = await store.commit();
    if (report.succeeded.length !== expected) throw new Error(`commit: ${JSON.stringify(report)}`);
  };
  return {
    open: (name) => WalletStore.open({ name, ...openOptions }),
    close: (store) => store.close(),
    /** Every changeset `store`d, then one `commit` (one transaction). `yieldBeforeCommit`: a
     *  macrotask in between, so the staging loop's task and commit()'s tasks are told apart. */
    async write(store, payload, { yieldBeforeCommit = false } = {}) {
      const t0 = now();
      await stage(store, payload.changesets);
      const t1 = now();
      if (yieldBeforeCommit) await new Promise((resolve) => setTimeout(resolve, 0));
      await commitAll(store, payload.changesets.length);
      return { stage_ms: t1 - t0, commit_ms: now() - t1 };
    },
    /** W6: every update `store`d (merged in the buffer, per key newer wins), then one commit. */
    async writeEach(store, updates) {
      const t0 = now();
      for (const payload of updates.list) await stage(store, payload.changesets);
      const t1 = now();
      await commitAll(store, new Set(updates.list.map((p) => p.changesets[0].walletId)).size);
      return { stage_ms: t1 - t0, commit_ms: now() - t1 };
    },
    /** W4: the commit's transaction is aborted (transient): the changes go back to the buffer and
     *  the second commit lands them. */
    async writeRetried(store, payload, abortNextCommit) {
      await stage(store, payload.changesets);
      abortNextCommit();
      const t0 = now();
      const first = await store.commit();
      const t1 = now();
      if (first.stillPending.length !== payload.changesets.length) throw new Error(`first attempt: ${JSON.stringify(first)}`);
      await commitAll(store, payload.changesets.length);
      return { first_attempt_ms: t1 - t0, retry_ms: now() - t1 };
    },
    /** W3: the public API, cold: open, then load (read + decode + JS objects). `keep`: the
     *  loaded state is returned as `held` (the scale point measures the heap holding it). */
    async load(name, { keep = false } = {}) {
      const t0 = now();
      const store = await WalletStore.open({ name, ...openOptions });
      const t1 = now();
      const loaded = await store.load();
      const t2 = now();
      await store.close();
      const { report } = loaded;
      const rows = Object.values(report.rows).reduce((a, b) => a + b, 0);
      if (report.skipped.length) throw new Error(`load skipped rows: ${JSON.stringify(report.skipped[0])}`);
      return { rows, phases: { open_ms: t1 - t0, load_ms: t2 - t1 }, held: keep ? loaded : undefined };
    },
  };
}

/** W3 in its phases (bench export): connect, read, decode, JS objects. */
export function oursBreakdown(wasm) {
  return {
    async load(name) {
      const p = await wasm.benchLoadPhases(name);
      if (p.skipped) throw new Error(`${p.skipped} rows skipped`);
      return { rows: p.rows, phases: { open_ms: p.openMs, read_ms: p.readMs, decode_ms: p.decodeMs, to_js_ms: p.toJsMs } };
    },
  };
}

// ---- B0 raw IndexedDB ---------------------------------------------------------------------------

export function rawIdb(areaStores) {
  const open = (name) => {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => areaStores.forEach((s) => req.result.createObjectStore(s));
    return request(req);
  };
  /** One transaction over all stores, puts without per-request handlers, commit(), await complete. */
  const write = (db, payload) => {
    const tx = db.transaction(areaStores, 'readwrite');
    const done = transactionDone(tx);
    for (const { store, keys, values } of payload.byStore) {
      const os = tx.objectStore(store);
      for (let i = 0; i < keys.length; i++) os.put(values[i], keys[i]);
    }
    tx.commit();
    return done;
  };
  return {
    open,
    close: (db) => db.close(),
    write,
    /** W6: every update written, all in one transaction (the limit for writing every update). */
    writeEach: (db, updates) => write(db, updates),
    /** W6, the like-for-like limit: the updates merged in a JS Map (per store and key the last
     *  update wins, as our buffer merges them), then the final rows in one transaction. Key parts
     *  are numbers or strings with a fixed type per position, so joining them is unambiguous. */
    writeMerged(db, updates) {
      const merged = new Map();
      for (const payload of updates.list) {
        for (const { store, key, value } of payload.rows) merged.set(store + '\u0000' + key.join('\u0000'), [store, key, value]);
      }
      const tx = db.transaction(areaStores, 'readwrite');
      const done = transactionDone(tx);
      for (const [store, key, value] of merged.values()) tx.objectStore(store).put(value, key);
      tx.commit();
      return done;
    },
    /** W4: the first transaction is aborted at commit; the rows are written again. */
    async writeRetried(db, payload, abortNextCommit) {
      abortNextCommit();
      const t0 = now();
      const failed = await write(db, payload).then(() => false, () => true);
      const t1 = now();
      if (!failed) throw new Error('the first transaction was not aborted');
      await write(db, payload);
      return { first_attempt_ms: t1 - t0, retry_ms: now() - t1 };
    },
    /** Cold load: open, then one readonly transaction with getAll per store. */
    async load(name, { keep = false } = {}) {
      const t0 = now();
      const db = await open(name);
      const t1 = now();
      const tx = db.transaction(areaStores, 'readonly');
      const values = await Promise.all(areaStores.map((s) => request(tx.objectStore(s).getAll())));
      const t2 = now();
      db.close();
      return { rows: values.reduce((n, v) => n + v.length, 0), phases: { open_ms: t1 - t0, read_ms: t2 - t1 }, held: keep ? values : undefined };
    },
  };
}

// ---- B1 Dexie -----------------------------------------------------------------------------------

export function dexie(areaStores) {
  const open = async (name) => {
    const db = new Dexie(name);
    // '' = out-of-line keys, no auto-increment: the same layout as ours and B0.
    db.version(1).stores(Object.fromEntries(areaStores.map((s) => [s, ''])));
    await db.open();
    return db;
  };
  /** bulkPut per table inside one db.transaction('rw', …). */
  const write = (db, payload) =>
    db.transaction('rw', areaStores, () =>
      Promise.all(payload.byStore.map(({ store, keys, values }) => db.table(store).bulkPut(values, keys))),
    );
  return {
    open,
    close: (db) => db.close(),
    write,
    /** W6 "Dexie writing every update": one rw transaction per update, each awaited before the
     *  next update (write-through persistence). */
    async writeEach(db, updates) {
      for (const payload of updates.list) await write(db, payload);
    },
    /** W6 "Dexie bulkPut of every update": all updates' rows in one bulkPut transaction. */
    writeBulk: (db, updates) => write(db, updates),
    async load(name) {
      const t0 = now();
      const db = await open(name);
      const t1 = now();
      const tables = areaStores.map((s) => db.table(s));
      const values = await db.transaction('r', tables, () => Promise.all(tables.map((t) => t.toArray())));
      const t2 = now();
      db.close();
      return { rows: values.reduce((n, v) => n + v.length, 0), phases: { open_ms: t1 - t0, read_ms: t2 - t1 } };
    },
  };
}

// ---- B2 idb-keyval ------------------------------------------------------------------------------

/** The connection behind an idb-keyval store (it never closes it itself). */
const closeKv = (store) => store('readonly', (os) => os.transaction.db.close());

export function idbKeyval({ many }) {
  const open = async (name) => {
    const store = kv.createStore(name, 'keyval');
    await kv.get('warm-up', store); // idb-keyval opens lazily: open before the timed region
    return store;
  };
  const write = many
    ? (store, payload) => kv.setMany(payload.kvEntries, store)
    : (store, payload) => Promise.all(payload.kvEntries.map(([key, value]) => kv.set(key, value, store)));
  return {
    open,
    close: closeKv,
    write,
    writeEach: write,
    async load(name) {
      const t0 = now();
      const store = kv.createStore(name, 'keyval');
      const rows = await kv.entries(store);
      const t1 = now();
      await closeKv(store);
      return { rows: rows.length, phases: { read_ms: t1 - t0 } };
    },
  };
}

// ---- What is on disk ----------------------------------------------------------------------------

/**
 * Every (store, key, value) of the area stores of database `name` (idb-keyval's single store
 * unfolded), as `{ rows, bytes, digest }`: an order-independent FNV-1a digest, so two contenders
 * that wrote the same data have the same digest whatever their layout.
 */
export async function digest(name, areaStores) {
  const db = await request(indexedDB.open(name));
  try {
    const names = [...db.objectStoreNames].filter((s) => s === 'keyval' || areaStores.includes(s));
    const tx = db.transaction(names, 'readonly');
    const finished = transactionDone(tx);
    let rows = 0;
    let bytes = 0;
    let sum = 0;
    let xor = 0;
    for (const s of names) {
      const os = tx.objectStore(s);
      const [keys, values] = await Promise.all([request(os.getAllKeys()), request(os.getAll())]);
      keys.forEach((key, i) => {
        const [store, parts] = s === 'keyval' ? [key[0], key.slice(1)] : [s, key];
        const value = values[i];
        let h = fnv(new TextEncoder().encode(store + '\u0000' + JSON.stringify(parts)), 0x811c9dc5);
        h = fnv(value, h);
        sum = (sum + h) >>> 0;
        xor = (xor ^ h) >>> 0;
        rows += 1;
        bytes += value.length;
      });
    }
    await finished; // a connection closes only once its transactions have finished
    return { rows, bytes, digest: `${sum.toString(16)}-${xor.toString(16)}` };
  } finally {
    db.close();
  }
}

function fnv(bytes, h) {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

// The IndexedDB request and transaction promise wrappers, written once; the Rust side
// (mod.rs) issues every request and awaits only these.
export function requestDone(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = (event) => { event.preventDefault(); reject(req.error); };
  });
}
export function transactionDone(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error || new DOMException('The transaction was aborted.', 'AbortError'));
  });
}
// One request for up to `count` rows of `store` in `range` (an IDBKeyRange or undefined), in key
// order, as `{ length, key(i), value(i) }`: one getAllRecords where the browser has it (Chromium
// 141+; a 10,000-row load reads ~8% faster than with getAllKeys + getAll), whose records turn a
// key or value into JS only when it is asked for, else both, which read the same rows because they
// run in one readonly transaction.
function readSome(store, range, count) {
  if (typeof store.getAllRecords === 'function') {
    return requestDone(store.getAllRecords({ query: range, count }))
      .then((records) => ({ length: records.length, key: (i) => records[i].primaryKey, value: (i) => records[i].value }));
  }
  return Promise.all([requestDone(store.getAllKeys(range, count)), requestDone(store.getAll(range, count))])
    .then(([keys, values]) => rowsOf(keys, values));
}
function rowsOf(keys, values) {
  return { length: keys.length, key: (i) => keys[i], value: (i) => values[i] };
}
// The rows after `last` in `range`.
function after(range, last) {
  return range === undefined ? IDBKeyRange.lowerBound(last, true) : IDBKeyRange.bound(last, range.upper, true, range.upperOpen);
}
// The first part of `key` when it is an array that starts with text, else undefined.
function firstText(key) {
  return Array.isArray(key) && typeof key[0] === 'string' ? key[0] : undefined;
}
// Whether a request's failure is no row's fault: the request was aborted with its transaction, or
// the connection went away (WebKit fails every pending request with UnknownError "Connection to
// Indexed Database server lost"; error.rs's from_dom_exception reads that message the same way).
function notTheRows(error) {
  if (!error) return false;
  if (['AbortError', 'InvalidStateError', 'TransactionInactiveError'].includes(error.name)) return true;
  return String(error.message).includes('Connection to Indexed Database server lost');
}
// Up to `count` rows of `range`, one request per row (the keys first), for a range whose bulk read
// failed as a whole: a value the browser cannot read fails only its own request, and stands as an
// `Unreadable` in the rows. Every request is issued from the callback of the one before, so the
// transaction that failed the bulk read reads these too. A failure that is no row's fault
// (`notTheRows`) fails them all: the rows are on disk, the read is to be made again.
function oneByOne(store, range, count) {
  const unreadable = (error) => {
    if (notTheRows(error)) throw error;
    return new Unreadable(error);
  };
  return requestDone(store.getAllKeys(range, count)).then((keys) => Promise.all(
    keys.map((key) => requestDone(store.get(key)).catch(unreadable)),
  ).then((values) => rowsOf(keys, values)));
}
class Unreadable {
  constructor(error) {
    this.error = error;
  }
}
// Reads `reads` ([store name, IDBKeyRange or undefined] each) in chunks of up to `count` rows,
// inside `tx`. `next()` gives the promise of the next chunk, or undefined after the last:
// `{ read, more, last, length, pack(from, to), fellBack }` (`read` the index in `reads`; `more`
// whether the read goes on; `last` the first part of its last key when text; `pack` rows
// [from, to) of its `length` as packRows packs them, so a chunk can be handed over in pieces;
// `fellBack` the error of the chunk's bulk request when `oneByOne` is set and that request failed,
// the chunk then read one row at a time), `{ read, error }` when that read failed as a whole, or
// `{ read, fatal }` when a request could not be issued. Every read's first request is issued at
// once (IndexedDB serves them back to back); a read's next request is issued when its chunk
// arrives, before anyone handles that chunk, so the transaction always has a request pending while
// a read goes on, and a read's chunks come in key order, all of one snapshot. Chunks come in the
// order their first requests were issued.
export function chunkReader(tx, reads, count, oneByOneOnFailure) {
  const queue = [];
  const arrived = (i, rows, fellBack) => {
    const more = rows.length === count;
    const lastKey = rows.length > 0 ? rows.key(rows.length - 1) : undefined;
    if (more) issue(i, after(reads[i][1], lastKey));
    return { read: i, more, last: firstText(lastKey), length: rows.length, fellBack, pack: (from, to) => packSlice(rows, from, to) };
  };
  const issue = (i, range) => {
    let store;
    let chunk;
    try {
      store = tx.objectStore(reads[i][0]);
      chunk = readSome(store, range, count);
    } catch (fatal) {
      queue.push(Promise.resolve({ read: i, fatal }));
      return false;
    }
    const failed = (error) => ({ read: i, error });
    queue.push(chunk.then((rows) => arrived(i, rows, undefined), (bulk) => {
      if (!oneByOneOnFailure || notTheRows(bulk)) return failed(bulk);
      try {
        return oneByOne(store, range, count).then((rows) => arrived(i, rows, bulk), failed);
      } catch (fatal) {
        return { read: i, fatal };
      }
    }));
    return true;
  };
  for (let i = 0; i < reads.length && issue(i, reads[i][1]); i++);
  return { next: () => queue.shift() };
}
const MAX_U32 = 4294967295;
// Rows as one piece Rust copies at once: `keys`, one string of every key that is ours (an array of
// well-formed strings and u32s), each part `s<UTF-16 length>:<text>`, `=` (the same text as the
// part at that position of the key before it) or `n<number>;`, each key ended by `|`;
// `copyValues(into)` copies every value (a Uint8Array) end to end into `into` (a view of wasm
// memory of `size` bytes), `ends[i]` the end of row i's; `bad`, the rows whose key or value is not
// ours, as [JSON key, 0 (key) or 1 (value)], or could not be read, as [JSON key, 2, the error].
export function packRows(keys, values) {
  return packSlice(rowsOf(keys, values), 0, keys.length);
}
// packRows of rows [from, to) of `rows` (as readSome gives them).
function packSlice(rows, from, to) {
  let text = '';
  let size = 0;
  const good = [];
  const bad = [];
  let previous = [];
  for (let i = from; i < to; i++) {
    const key = rows.key(i);
    const value = rows.value(i);
    let spelled = Array.isArray(key) ? '' : null;
    for (let j = 0; spelled !== null && j < key.length; j++) {
      const part = key[j];
      if (typeof part === 'string') {
        if (part === previous[j]) spelled += '=';
        else spelled = wellFormed(part) ? `${spelled}s${part.length}:${part}` : null;
      } else if (Number.isInteger(part) && part >= 0 && part <= MAX_U32) spelled += `n${part};`;
      else spelled = null;
    }
    if (spelled === null) bad.push([spell(key), 0]);
    else if (value instanceof Unreadable) bad.push([spell(key), 2, value.error]);
    else if (!(value instanceof Uint8Array)) bad.push([spell(key), 1]);
    else {
      text += `${spelled}|`;
      size += value.length;
      good.push(value);
      previous = key;
    }
  }
  const ends = new Uint32Array(good.length);
  let at = 0;
  for (let i = 0; i < good.length; i++) {
    at += good[i].length;
    ends[i] = at;
  }
  const copyValues = (into) => {
    for (let i = 0; i < good.length; i++) into.set(good[i], i === 0 ? 0 : ends[i - 1]);
  };
  return { keys: text, size, copyValues, ends, bad };
}
// Text with a lone surrogate is not ours: it would reach Rust as U+FFFD, the spelling of another key.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
function wellFormed(text) {
  return typeof text.isWellFormed === 'function' ? text.isWellFormed() : !LONE_SURROGATE.test(text);
}
function spell(key) {
  try {
    const json = JSON.stringify(key);
    if (json !== undefined) return json;
  } catch (_) { /* spelled below */ }
  return String(key);
}
// Resolves in a later task (scheduler.yield where the browser has it: the page's pending input
// runs first), so a long job lets the page run between two of its parts.
export function nextTask() {
  const scheduler = globalThis.scheduler;
  if (scheduler && typeof scheduler.yield === 'function') return scheduler.yield();
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
// Resolves true once a write request succeeded, false once it failed. It never cancels the error
// event, so a failed request still aborts its transaction (whose `transactionDone` says why).
export function requestSettled(req) {
  return new Promise((resolve) => {
    req.addEventListener('success', () => resolve(true));
    req.addEventListener('error', () => resolve(false));
  });
}
// A transaction that already aborted cannot commit: its `transactionDone` rejects with the cause.
export function commitTransaction(tx) {
  try {
    if (typeof tx.commit === 'function') tx.commit();
  } catch {}
}
export function writeTransaction(db, names, strict) {
  return strict ? db.transaction(names, 'readwrite', { durability: 'strict' }) : db.transaction(names, 'readwrite');
}
// One open request. Creates missing stores when an upgrade runs. Settles within timeoutMs: a request
// still `blocked` by another connection then rejects UpgradeBlockedError, any other TimeoutError; a
// connection that arrives after that is closed at once.
function openOnce(factory, name, version, stores, timeoutMs) {
  return new Promise((resolve, reject) => {
    let settled = false;
    let blocked = false;
    const req = version === undefined ? factory.open(name) : factory.open(name, version);
    const timer = setTimeout(() => {
      settled = true;
      reject(blocked
        ? new DOMException(`the upgrade of ${name} is blocked by a connection in another tab`, 'UpgradeBlockedError')
        : new DOMException(`opening ${name} took longer than ${timeoutMs} ms`, 'TimeoutError'));
    }, timeoutMs);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const store of stores) {
        if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
      }
    };
    req.onblocked = () => { blocked = true; };
    req.onsuccess = () => {
      if (settled) { req.result.close(); return; }
      settled = true;
      clearTimeout(timer);
      resolve(req.result);
    };
    req.onerror = (event) => {
      event.preventDefault();
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(req.error);
    };
  });
}
// Opens `name` at whatever version it has; if a store is missing, upgrades by one version to add
// it. A VersionError (another tab upgraded in between) is retried, at most three attempts.
export async function openDatabase(factory, name, stores, timeoutMs) {
  for (let attempt = 1; ; attempt++) {
    try {
      const db = await openOnce(factory, name, undefined, stores, timeoutMs);
      if (stores.every((s) => db.objectStoreNames.contains(s))) return db;
      const version = db.version + 1;
      db.close();
      return await openOnce(factory, name, version, stores, timeoutMs);
    } catch (error) {
      if (error && error.name === 'VersionError' && attempt < 3) continue;
      throw error;
    }
  }
}
// On `versionchange` (another connection wants to upgrade or delete): close at once, so it is not
// blocked, then report.
export function watchVersionChange(db, onChange) {
  db.onversionchange = (event) => {
    db.close();
    onChange(event.oldVersion, event.newVersion === null ? -1 : event.newVersion);
  };
}

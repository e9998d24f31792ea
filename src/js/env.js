// What a store needs of its browser context besides IndexedDB: Web Locks, BroadcastChannel,
// the page lifecycle, navigator.storage, timers. Reached through globalThis, so workers work too.
// Resolves a function that releases the lock; `null` when `wait` is false and another instance
// holds it; `undefined` when Web Locks are missing or denied in this context. Waiting longer than timeoutMs rejects TimeoutError.
export function acquireLock(name, wait, timeoutMs) {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (!locks || typeof locks.request !== 'function') return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    let release;
    const held = new Promise((r) => { release = r; });
    const controller = wait ? new AbortController() : null;
    const timer = wait ? setTimeout(() => controller.abort(), timeoutMs) : null;
    const options = wait ? { signal: controller.signal } : { ifAvailable: true };
    const failed = (error) => {
      clearTimeout(timer);
      if (error && error.name === 'SecurityError') resolve(undefined); // denied here: as if missing
      else reject(error && error.name === 'AbortError'
        ? new DOMException(`waited ${timeoutMs} ms for another instance to close ${name}`, 'TimeoutError')
        : error);
    };
    try {
      locks.request(name, options, (lock) => {
        clearTimeout(timer);
        if (!lock) { resolve(null); return undefined; }
        resolve(() => release());
        return held;
      }).catch(failed);
    } catch (error) {
      failed(error);
    }
  });
}
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
// An AbortSignal and the function that aborts it.
export function abortPair() {
  const controller = new AbortController();
  return [controller.signal, () => controller.abort()];
}
// What a rejection or throw says: its message if it is an Error, else its string form.
// Never throws, whatever the caller threw (a Proxy, an object whose toString throws).
export function describeFailure(value) {
  try {
    return value instanceof Error ? `${value.name}: ${value.message}` : String(value);
  } catch {
    return `a ${typeof value} that cannot be described`;
  }
}
// Calls the app's logger in a microtask of its own: app code never runs while a store is in the
// middle of a call (a logger may call the store again). A throwing logger costs only its line.
export function callLogger(logger, record, message) {
  queueMicrotask(() => {
    try {
      logger(record);
    } catch (thrown) {
      console.error('[wallet-persist] the logger set with setLogger threw', thrown, `; the line was: ${message}`);
    }
  });
}
export function openChannel(name, onMessage) {
  if (typeof globalThis.BroadcastChannel !== 'function') return null;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (event) => onMessage(event.data);
  return channel;
}
export function postChange(channel, walletIds) {
  channel.postMessage({ walletIds });
}
export function closeChannel(channel) {
  channel.close();
}
// Calls onHide(reason) when the page is hidden or being unloaded; returns the unsubscribe
// function, or null outside a page.
export function watchLifecycle(onHide) {
  const doc = globalThis.document;
  if (!doc || typeof globalThis.addEventListener !== 'function') return null;
  const visibility = () => { if (doc.visibilityState === 'hidden') onHide('visibilitychange'); };
  const pagehide = () => onHide('pagehide');
  doc.addEventListener('visibilitychange', visibility);
  globalThis.addEventListener('pagehide', pagehide);
  return () => {
    doc.removeEventListener('visibilitychange', visibility);
    globalThis.removeEventListener('pagehide', pagehide);
  };
}
function storageManager(method) {
  const storage = globalThis.navigator && globalThis.navigator.storage;
  if (!storage || typeof storage[method] !== 'function') {
    throw new DOMException(`navigator.storage.${method} is not available here`, 'NotSupportedError');
  }
  return storage;
}
// WebKitGTK (2.50, MiniBrowser) has no navigator.storage at all and some Safari builds lack
// persist(): nothing can be asked, so the origin is not persisted. That is an answer, not a
// failure (storage works), so persist() resolves { persisted: false } there instead of rejecting.
export async function persistStorage() {
  const storage = globalThis.navigator && globalThis.navigator.storage;
  if (!storage || typeof storage.persist !== 'function') return { persisted: false };
  return { persisted: await storage.persist() };
}
export async function estimateStorage() {
  const { usage, quota } = await storageManager('estimate').estimate();
  return { usage: usage ?? 0, quota: quota ?? 0 };
}

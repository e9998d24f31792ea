// One regression per finding of issue 14 (hostile callers at the JS boundary), each against the
// release package in headless Chromium unless it needs a test hook. Each failed before the fix.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, openPage, evalInPage, uniqueName } from './harness.mjs';
import { okInPage } from './client.mjs';

const PAGE = '/tests/e2e/fixtures/persister.html?api=hostile';
const FAULTS = '/tests/e2e/fixtures/persister.html?api=hostile&build=fault-injection';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

/** A fresh page on `path` with one open store, and the console lines that look like a trap. */
async function fresh(path = PAGE) {
  const page = await openPage(env.browser.context, env.server.url(path), { ready: true });
  const traps = [];
  const watch = (text) => /RuntimeError|panicked|unreachable|out of bounds/.test(text) && traps.push(text);
  page.on('console', (msg) => watch(msg.text()));
  page.on('pageerror', (error) => watch(String(error)));
  const name = uniqueName('boundary');
  await evalInPage(page, (n) => window.hx.open(n), name);
  return { page, name, traps };
}

const invalid = (outcome, what) => {
  assert.equal(outcome.outcome, 'rejected', `${what}: ${JSON.stringify(outcome)}`);
  assert.equal(outcome.error.name, 'WalletPersistError', `${what}: ${JSON.stringify(outcome)}`);
  assert.equal(outcome.error.code, 1, `${what}: ${outcome.error.message}`);
};

test('a throwing getter or Proxy trap in the caller data rejects code 1 naming the path, with the original as cause', async () => {
  const { page, name, traps } = await fresh();
  const [getter, proxy, meta] = await evalInPage(page, async (n) => {
    const { hx } = window;
    const store = hx.store(n);
    const TX = '11'.repeat(32);
    const utxo = { outpoint: `${TX}:0`, script: new Uint8Array([1]), height: null, account: 0 };
    Object.defineProperty(utxo, 'value', { get() { throw new Error('getter says no'); }, enumerable: true });
    const getter = await hx.settle(() => store.store(hx.WALLET, { utxos: { [`${TX}:0`]: utxo } }));
    const proxy = await hx.settle(() => store.store(hx.WALLET, new Proxy({}, { ownKeys() { throw new Error('trap says no'); } })));
    const meta = await hx.settle(() => store.channels.saveMeta('c', { a: new Proxy([], { get() { throw new Error('meta trap'); } }) }));
    return [getter, proxy, meta];
  }, name);
  invalid(getter, 'throwing getter');
  assert.match(getter.error.message, /utxos\["1{64}:0"\]\.value/);
  assert.equal(getter.error.cause, 'getter says no');
  invalid(proxy, 'throwing ownKeys trap');
  assert.equal(proxy.error.cause, 'trap says no');
  invalid(meta, 'throwing trap in a meta');
  assert.equal(meta.error.cause, 'meta trap');
  assert.deepEqual(traps, []);
});

test('10,000 hostile calls in one page: the same store still stores, commits and loads exactly', { timeout: 10 * 60_000 }, async () => {
  const { page, name, traps } = await fresh();
  const result = await evalInPage(page, async (n) => {
    const { hx } = window;
    const store = hx.store(n);
    const TX = '22'.repeat(32);
    const hostile = [
      () => store.store(hx.WALLET, { utxos: { [`${TX}:0`]: Object.defineProperty({}, 'value', { get() { throw new Error('g'); }, enumerable: true }) } }),
      () => store.store(hx.WALLET, new Proxy({}, { ownKeys() { throw new Error('k'); } })),
      () => store.store(hx.WALLET, new Proxy({ utxos: {} }, { getPrototypeOf() { throw new Error('p'); } })),
      () => store.channels.saveMeta('c', Object.defineProperty({}, 'x', { get() { throw new Error('m'); }, enumerable: true })),
      () => store.channels.queueAppend('c', new Proxy({}, { get() { throw new Error('q'); } })),
      () => window.hx.pkg.WalletStore.importBackup(5, new Uint8Array(1)),
      () => store.registerWallet(hx.WALLET, {}, 5),
      () => store.store(new Proxy({}, { get() { throw new Error('w'); } }), {}),
    ];
    const outcomes = {};
    for (let i = 0; i < 10_000; i++) {
      const r = await hx.settle(hostile[i % hostile.length]);
      const key = `${r.outcome}:${r.error?.code}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    const outpoint = `${TX}:1`;
    const utxo = { outpoint, value: 2n ** 60n, script: new Uint8Array([0x51, 0x52]), height: 7, account: 3 };
    await store.store(hx.WALLET, { wallet: hx.RECORD, utxos: { [outpoint]: utxo } });
    const report = await store.commit();
    const { wallets } = await store.load();
    const loaded = wallets[hx.WALLET].utxos[outpoint];
    return {
      outcomes,
      succeeded: report.succeeded,
      loaded: { ...loaded, value: String(loaded.value), script: Array.from(loaded.script) },
    };
  }, name);
  assert.deepEqual(result.outcomes, { 'rejected:1': 10_000 });
  assert.deepEqual(result.succeeded, ['f0'.repeat(32)]);
  assert.deepEqual(result.loaded, { outpoint: `${'22'.repeat(32)}:1`, value: String(2n ** 60n), script: [0x51, 0x52], height: 7, account: 3 });
  assert.deepEqual(traps, []);
});

test('importBackup: a non-string name (5, new String) is code 1; a refused import creates no database', async () => {
  const { page, traps } = await fresh();
  const target = uniqueName('boundary-import');
  const result = await evalInPage(page, async (t) => {
    const { hx } = window;
    const { WalletStore } = hx.pkg;
    const five = await hx.settle(() => WalletStore.importBackup(5, new Uint8Array([1, 2, 3])));
    const boxed = await hx.settle(() => WalletStore.importBackup(new String('x'), new Uint8Array([1, 2, 3])));
    const garbage = await hx.settle(() => WalletStore.importBackup(t, new Uint8Array([1, 2, 3])));
    const names = (await indexedDB.databases()).map((d) => d.name);
    return { five, boxed, garbage, created: names.includes(t) };
  }, target);
  invalid(result.five, 'importBackup(5)');
  invalid(result.boxed, 'importBackup(new String)');
  assert.equal(result.garbage.error.code, 14, result.garbage.error.message);
  assert.equal(result.created, false, 'a refused import left a database behind');
  assert.deepEqual(traps, []);
});

test('Map, Set, Date, class instances and boxed primitives are refused wherever an object is expected', async () => {
  const { page, name } = await fresh();
  const outcomes = await evalInPage(page, async (n) => {
    const { hx } = window;
    const store = hx.store(n);
    const TX = '33'.repeat(32);
    const utxo = { outpoint: `${TX}:0`, value: 1n, script: new Uint8Array(0), height: null, account: 0 };
    class Changes {
      constructor() {
        this.utxos = { [`${TX}:0`]: utxo };
      }
    }
    const calls = {
      mapArea: () => store.store(hx.WALLET, { utxos: new Map([[`${TX}:0`, { ...utxo, typo: 1 }]]) }),
      mapChangeset: () => store.store(hx.WALLET, new Map([['utxos', {}]])),
      classChangeset: () => store.store(hx.WALLET, new Changes()),
      dateValue: () => store.store(hx.WALLET, { utxos: { [`${TX}:0`]: { ...utxo, value: new Date(1) } } }),
      boxedValue: () => store.store(hx.WALLET, { utxos: { [`${TX}:0`]: { ...utxo, value: new Number(1) } } }),
      setMeta: () => store.channels.saveMeta('c', { s: new Set([1]) }),
    };
    const out = {};
    for (const [k, call] of Object.entries(calls)) out[k] = await hx.settle(call);
    out.staged = await store.staged();
    return out;
  }, name);
  const { staged, ...calls } = outcomes;
  for (const [what, outcome] of Object.entries(calls)) invalid(outcome, what);
  assert.deepEqual(staged, [], 'nothing was staged');
});

test('keys special in JS (__proto__, constructor, toString) round-trip through load() as own keys', async () => {
  const { page, name } = await fresh();
  const result = await evalInPage(page, async (n) => {
    const { hx } = window;
    const store = hx.store(n);
    const addresses = {};
    for (const key of ['__proto__', 'constructor', 'toString']) {
      Object.defineProperty(addresses, key, { value: { address: key, account: 0, index: 1, used: true }, enumerable: true });
    }
    await store.store(hx.WALLET, { wallet: hx.RECORD, addresses });
    await store.commit();
    const { wallets } = await store.load();
    const loaded = wallets[hx.WALLET].addresses;
    return {
      keys: Object.keys(loaded).sort(),
      proto: Object.getPrototypeOf(loaded) === Object.prototype,
      values: ['__proto__', 'constructor', 'toString'].map((k) => Object.getOwnPropertyDescriptor(loaded, k)?.value?.address),
    };
  }, name);
  assert.deepEqual(result.keys, ['__proto__', 'constructor', 'toString']);
  assert.equal(result.proto, true, 'the prototype was not replaced');
  assert.deepEqual(result.values, ['__proto__', 'constructor', 'toString']);
});

test('lone surrogates in ids, keys and labels are refused, never replaced (no two ids collide)', async () => {
  const { page, name } = await fresh();
  const outcomes = await evalInPage(page, async (n) => {
    const { hx } = window;
    const store = hx.store(n);
    const entry = (address) => ({ address, account: 0, index: 0, used: false });
    const out = {
      key: await hx.settle(() => store.store(hx.WALLET, { addresses: { 'a\uD800': entry('a\uD800') } })),
      label: await hx.settle(() =>
        store.store(hx.WALLET, { wallet: { network: 'x', label: 'l\uDC00', birthHeight: 0, createdAtMs: 0, accountSchema: 1 } })),
      channel: await hx.settle(() => store.channels.saveMeta('c\uD800', { a: 1 })),
      metaString: await hx.settle(() => store.channels.saveMeta('c', { a: 'x\uDBFF' })),
      historyId: await hx.settle(() => store.channels.queueAppend('c', { id: 'm\uD800', bytes: new Uint8Array(1) })),
    };
    out.staged = await store.staged();
    return out;
  }, name);
  const { staged, ...calls } = outcomes;
  for (const [what, outcome] of Object.entries(calls)) invalid(outcome, what);
  assert.deepEqual(staged, []);
});

test('registerWallet with an init that is not a function rejects code 1', async () => {
  const { page, name } = await fresh();
  const outcome = await evalInPage(page, async (n) => {
    const { hx } = window;
    const wallet = { network: 'x', label: 'l', birthHeight: 0, createdAtMs: 0, accountSchema: 1 };
    return hx.settle(() => hx.store(n).registerWallet(hx.WALLET, { wallet }, 5));
  }, name);
  invalid(outcome, 'registerWallet(…, 5)');
});

test('channel meta with symbol keys or named properties on arrays is refused', async () => {
  const { page, name } = await fresh();
  const outcomes = await evalInPage(page, async (n) => {
    const { hx } = window;
    const channels = hx.store(n).channels;
    return {
      symbol: await hx.settle(() => channels.saveMeta('c', { a: 1, [Symbol('s')]: 2 })),
      named: await hx.settle(() => channels.saveMeta('c', { list: Object.assign([1, 2], { extra: 3 }) })),
      loaded: (await channels.loadChannel('c')).meta,
    };
  }, name);
  invalid(outcomes.symbol, 'symbol key');
  invalid(outcomes.named, 'named array property');
  assert.equal(outcomes.loaded, null, 'nothing was saved');
});

test('a number above 2^53 where a u64 is expected is refused naming the field', async () => {
  const { page, name } = await fresh();
  const outcome = await evalInPage(page, async (n) => {
    const { hx } = window;
    const TX = '44'.repeat(32);
    const utxo = { outpoint: `${TX}:0`, value: 2 ** 53 + 2, script: new Uint8Array(0), height: null, account: 0 };
    return hx.settle(() => hx.store(n).store(hx.WALLET, { utxos: { [`${TX}:0`]: utxo } }));
  }, name);
  invalid(outcome, 'value 2^53 + 2');
  assert.match(outcome.error.message, /utxos\["4{64}:0"\]\.value/);
  assert.match(outcome.error.message, /bigint/);
});

test('a Uint8Array from another realm (an iframe) is accepted as bytes and loads back', async () => {
  const { page, name } = await fresh();
  const result = await evalInPage(page, async (n) => {
    const { hx } = window;
    const frame = document.createElement('iframe');
    document.body.append(frame);
    const Foreign = frame.contentWindow.Uint8Array;
    const ForeignObject = frame.contentWindow.Object;
    const TX = '55'.repeat(32);
    const utxo = new ForeignObject();
    Object.assign(utxo, { outpoint: `${TX}:0`, value: 9n, script: new Foreign([7, 8]), height: null, account: 0 });
    const store = hx.store(n);
    const stored = await hx.settle(() => store.store(hx.WALLET, { wallet: hx.RECORD, utxos: { [`${TX}:0`]: utxo } }));
    await store.commit();
    const { wallets } = await store.load();
    return { stored, script: Array.from(wallets[hx.WALLET]?.utxos[`${TX}:0`]?.script ?? []) };
  }, name);
  assert.equal(result.stored.outcome, 'resolved', JSON.stringify(result.stored));
  assert.deepEqual(result.script, [7, 8]);
});

test('a backup whose channel row was edited (checksum recomputed) is refused whole (14)', async () => {
  const { page, name } = await fresh();
  const target = uniqueName('boundary-edited');
  const outcome = await evalInPage(page, async ([n, t]) => {
    const { hx } = window;
    const store = hx.store(n);
    await store.channels.saveMeta('zq-channel', { a: 1 });
    const bytes = await store.exportBackup();
    // The first occurrence of the channel id is the meta row's key (it precedes its value).
    const needle = new TextEncoder().encode('zq-channel');
    const at = bytes.findIndex((_, i) => needle.every((b, j) => bytes[i + j] === b));
    const edited = Uint8Array.from(bytes);
    edited[at] = 'y'.charCodeAt(0);
    // CRC-32 (IEEE) of everything before the last four bytes.
    let crc = ~0;
    for (let i = 0; i < edited.length - 4; i++) {
      crc ^= edited[i];
      for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
    }
    new DataView(edited.buffer).setUint32(edited.length - 4, ~crc >>> 0, true);
    const imported = await hx.settle(() => hx.pkg.WalletStore.importBackup(t, edited));
    const created = (await indexedDB.databases()).some((d) => d.name === t);
    return { at, imported, created };
  }, [name, target]);
  assert.ok(outcome.at > 0);
  assert.equal(outcome.imported.outcome, 'rejected', JSON.stringify(outcome.imported));
  assert.equal(outcome.imported.error.code, 14, outcome.imported.error.message);
  assert.match(outcome.imported.error.message, /channel_meta/);
  assert.equal(outcome.created, false);
});

test('after a panic every later call rejects internal (99) with a clear message, other stores too', async () => {
  const { page, name } = await fresh(FAULTS);
  const other = uniqueName('boundary-other');
  await evalInPage(page, (o) => window.hx.open(o), other);
  const result = await evalInPage(page, async ([n, o]) => {
    const { hx } = window;
    let panicked;
    try {
      hx.pkg.panicForTest();
    } catch (error) {
      panicked = error.name;
    }
    const wallet = { network: 'x', label: 'l', birthHeight: 0, createdAtMs: 0, accountSchema: 1 };
    return {
      panicked,
      store: await hx.settle(() => hx.store(n).store(hx.WALLET, { wallet })),
      other: await hx.settle(() => hx.store(o).load()),
      open: await hx.settle(() => hx.pkg.WalletStore.open({ name: 'after-panic' })),
      channel: await hx.settle(() => hx.store(o).channels.pending('c')),
    };
  }, [name, other]);
  assert.equal(result.panicked, 'RuntimeError');
  for (const what of ['store', 'other', 'open', 'channel']) {
    const outcome = result[what];
    assert.equal(outcome.outcome, 'rejected', `${what}: ${JSON.stringify(outcome)}`);
    assert.equal(outcome.error.code, 99, `${what}: ${outcome.error.message}`);
    assert.match(outcome.error.message, /stopped after an internal failure \(a panic\)/);
  }
});

test('load() builds exactly the values stored: every area, BigInt u64, null, fresh Uint8Arrays, BOM and non-ASCII text, field order', async () => {
  const { page, name, traps } = await fresh();
  const diffs = await evalInPage(page, async (n) => {
    const { hx } = window;
    const store = hx.store(n);
    const h = (b) => b.repeat(32);
    const bytes = (len) => Uint8Array.from({ length: len }, (_, i) => i & 0xff);
    const long = 'ü'.repeat(40) + 'x'.repeat(100);
    const outpoint = `${h('11')}:4294967295`;
    const changes = {
      wallet: { walletId: hx.WALLET, network: '\ufefftestnet', label: 'wallet ☃ 🦀 \u0000', birthHeight: 0, createdAtMs: 18446744073709551615n, accountSchema: 4294967295 },
      accounts: { 3: { index: 3, kind: 'bip84', descriptor: long } },
      addresses: { 'tb1q☃': { address: 'tb1q☃', account: 0, index: 1, used: true } },
      utxos: { [outpoint]: { outpoint, value: 1n << 60n, script: bytes(0), height: null, account: 2 } },
      transactions: { [h('22')]: { txid: h('22'), raw: bytes(300), height: 9, timestampMs: null, fee: 0n } },
      syncState: { height: 7, tipHash: h('fe'), lastSyncMs: 0n },
      identities: { [h('33')]: { id: h('33'), index: null, revision: 1n, balance: 2n, blob: bytes(1) } },
      identityKeys: { [`${h('33')}:5`]: { identity: h('33'), keyId: 5, purpose: 255, securityLevel: 0, publicKey: bytes(33) } },
      contacts: { [`established:${h('44')}`]: { kind: 'established', contact: h('44'), request: bytes(64), createdMs: 1n, updatedMs: 2n } },
      assetLocks: { [`1:${outpoint}`]: { account: 1, outpoint, status: 'instantLocked', amount: 3n, proof: bytes(2) } },
      tokenBalances: { [`${h('33')}:${h('55')}`]: { identity: h('33'), token: h('55'), amount: 18446744073709551615n } },
      platformAddresses: { [long]: { address: long, balance: 0n, nonce: 1n } },
      records: {
        'app:10': { namespace: 'app', key: '10', value: bytes(5) },
        'app:2': { namespace: 'app', key: '2', value: bytes(4000) },
      },
    };
    await store.store(hx.WALLET, changes);
    await store.commit();
    const { wallets } = await store.load();
    const diffs = [];
    const same = (a, b, path) => {
      if (typeof a !== typeof b) return diffs.push(`${path}: ${typeof a} vs ${typeof b}`);
      if (typeof a !== 'object' || a === null || b === null) return Object.is(a, b) || diffs.push(`${path}: ${String(a)} vs ${String(b)}`);
      if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return diffs.push(`${path}: prototypes differ`);
      if (a instanceof Uint8Array) {
        const fresh = a.byteOffset === 0 && a.buffer.byteLength === a.length;
        return (fresh && a.length === b.length && a.every((x, i) => x === b[i])) || diffs.push(`${path}: bytes differ or share a buffer`);
      }
      const [ka, kb] = [Reflect.ownKeys(a), Reflect.ownKeys(b)];
      if (ka.join('\u0001') !== kb.join('\u0001')) return diffs.push(`${path}: keys ${ka} vs ${kb}`);
      for (const k of ka) same(a[k], b[k], `${path}.${String(k)}`);
    };
    same(Object.keys(wallets), [hx.WALLET], 'wallets');
    same(wallets[hx.WALLET], changes, 'wallet');
    return diffs;
  }, name);
  assert.deepEqual(diffs, []);
  assert.deepEqual(traps, []);
});

test('a getter that calls store() (growing wasm memory) while store() reads its changes: both land exactly, nothing traps', async () => {
  const { page, name, traps } = await fresh();
  const out = await okInPage(page, async ({ WalletStore }, { name }) => {
    const store = await WalletStore.open({ name: `${name}-reentrant`, flushMode: 'manual' });
    const [W1, W2, TX] = ['a1'.repeat(32), 'b2'.repeat(32), '01'.repeat(32)];
    const wallet = (label) => ({ network: 'testnet', label, birthHeight: 1, createdAtMs: 0n, accountSchema: 1 });
    // 12 MiB crossing in the inner call: wasm memory grows under the outer call's walk.
    const big = new Uint8Array(12 << 20).fill(7);
    const inner = [];
    const outer = {
      wallet: wallet('outer'),
      get utxos() {
        inner.push(store.store(W2, { wallet: wallet('inner'), transactions: { [TX]: { txid: TX, raw: big, height: null, timestampMs: null, fee: null } } }));
        inner.push(store.store(W2, { utxos: { [`${TX}:9`]: { outpoint: `${TX}:9`, value: 9n, script: Uint8Array.of(9), height: 9, account: 0 } } }));
        return { [`${TX}:0`]: { outpoint: `${TX}:0`, value: 5n, script: Uint8Array.of(1, 2, 3), height: 1, account: 0 } };
      },
    };
    await store.store(W1, outer);
    await Promise.all(inner);
    await store.commit();
    const { wallets } = await store.load();
    await store.close();
    const raw = wallets[W2]?.transactions?.[TX]?.raw;
    return {
      labels: [wallets[W1]?.wallet?.label, wallets[W2]?.wallet?.label],
      outerUtxos: Object.keys(wallets[W1]?.utxos ?? {}),
      outerValue: String(wallets[W1]?.utxos?.[`${TX}:0`]?.value),
      innerUtxos: Object.keys(wallets[W2]?.utxos ?? {}),
      raw: raw ? [raw.length, raw.every((b) => b === 7)] : null,
    };
  }, { name });
  const TX = '01'.repeat(32);
  assert.deepEqual(out.labels, ['outer', 'inner']);
  assert.deepEqual(out.outerUtxos, [`${TX}:0`]);
  assert.equal(out.outerValue, '5');
  assert.deepEqual(out.innerUtxos, [`${TX}:9`]);
  assert.deepEqual(out.raw, [12 << 20, true]);
  assert.deepEqual(traps, []);
  await page.close();
});

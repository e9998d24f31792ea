// The channels API (`store.channels`, the snapshot contract) end to end in a real browser: exact
// values back after a page reload, typed rejections, commits that resolve through storage failures
// and drain their queue in one write, and figures for a 1,000-entry history.
//
// Pages: fixtures/persister.html (release build, /pkg/) and ?build=fault-injection (/www/pkg/,
// with failNext / failStoreWrite / backendCalls). Values cross page.evaluate in the wire form of
// fixtures/wire.mjs: a bigint is compared as its decimal string, a Uint8Array as its byte list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { reload, evalInPage, pageErrors, setup } from './harness.mjs';
import { toWire, fromWire } from './fixtures/wire.mjs';
import { client, assertPersistError, raw, RELEASE_PAGE, FAULTS_PAGE, openFresh } from './client.mjs';

const T0 = 1_732_000_000_123n;

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

/** `store.channels[method](...args)` of database `name` in `page`: `ok` resolves the wire-form
 *  result (or fails the test), `rejects` the wire-form error. */
function channels(page, name) {
  const settle = (method, args) =>
    evalInPage(page, ([n, m, a]) => window.wp.channels(n, m, a), [name, method, toWire(args)]);
  return {
    async ok(method, ...args) {
      const outcome = await settle(method, args);
      if (outcome.error) assert.fail(`channels.${method}() rejected: ${JSON.stringify(outcome.error)}`);
      return outcome.ok;
    },
    async rejects(method, ...args) {
      const outcome = await settle(method, args);
      if (!('error' in outcome)) assert.fail(`channels.${method}() resolved ${JSON.stringify(outcome.ok)}, expected a rejection`);
      return outcome.error;
    },
  };
}

/** The protocol's meta: lamport clock, outgoing buffer, incoming with missing deps, repairs. */
const protocolMeta = () => ({
  lamport: 7n,
  outgoing: [
    { id: 'm6', lamport: 6n, payload: Uint8Array.from([6, 0, 255]) },
    { id: 'm7', lamport: 7n, payload: new Uint8Array(0) },
  ],
  incoming: [{ id: 'p9', missingDeps: ['p7', 'p8'] }],
  repairs: [
    { id: 'p7', deadlineMs: T0 + 30_000n },
    { id: 'p8', deadlineMs: T0 + 30_001n },
  ],
  ratio: 0.1,
  retries: 3,
  paused: false,
  note: 'héllo ✓ — 🔁',
  cursor: null,
  nested: [[[]], {}],
  extreme: [-(2n ** 63n), 2n ** 63n - 1n, Number.MAX_SAFE_INTEGER, -0.5],
});

const entry = (id, byte, timestampMs) => ({ id, bytes: Uint8Array.from([byte, byte, byte]), timestampMs });
/** An entry as loadChannel returns it: timestampMs a bigint or null. */
const loadedEntry = (id, byte, timestampMs) => ({
  id,
  bytes: Uint8Array.from([byte, byte, byte]),
  timestampMs: timestampMs === undefined || timestampMs === null ? null : BigInt(timestampMs),
});
const EMPTY = { meta: null, history: [], hints: [] };
const OK = { metaSaved: true, historyFlushed: true, pending: 0, failures: [] };
/** A promise that resolved `undefined`, in wire form. */
const VOID = toWire(undefined);

test('the channels API round-trips exact values through a page reload (release build)', async () => {
  const { page, db } = await openFresh(env, RELEASE_PAGE, 'channels-roundtrip');
  try {
    await db.open();
    let ch = channels(page, db.name);
    assert.deepEqual(await ch.ok('loadChannel', 'chat'), toWire(EMPTY), 'a channel never written loads empty');

    // A FIFO history of capacity 4 through the journal: m1..m5 appended, m1 evicted.
    for (const [i, ts] of [[1, T0 + 1n], [2, Number(T0) + 2], [3, null], [4, undefined], [5, T0 + 5n]]) {
      assert.deepEqual(await ch.ok('queueAppend', 'chat', entry(`m${i}`, i, ts)), VOID);
    }
    assert.deepEqual(await ch.ok('queueEvict', 'chat', 'm1'), VOID);
    assert.deepEqual(await ch.ok('pending', 'chat'), [
      { id: 'm2', op: 'append' },
      { id: 'm3', op: 'append' },
      { id: 'm4', op: 'append' },
      { id: 'm5', op: 'append' },
      { id: 'm1', op: 'evict' },
    ]);
    assert.deepEqual(await ch.ok('commit', 'chat', protocolMeta()), OK);
    assert.deepEqual(await ch.ok('pending', 'chat'), []);
    await ch.ok('setRetrievalHint', 'chat', 'm2', Uint8Array.from([0xaa, 0xbb]));
    // App bytes as meta, and the direct history update.
    await ch.ok('saveMeta', 'raw', Uint8Array.from([1, 2, 3, 254]));
    await ch.ok('updateHistory', 'raw', { append: [entry('r1', 9), entry('r2', 8, 0)] });
    await ch.ok('updateHistory', 'raw', { evict: ['r1'] });

    await reload(page, { ready: true });
    await db.open();
    ch = channels(page, db.name);
    const chat = {
      meta: protocolMeta(),
      history: [loadedEntry('m2', 2, T0 + 2n), loadedEntry('m3', 3, null), loadedEntry('m4', 4), loadedEntry('m5', 5, T0 + 5n)],
      hints: [{ messageId: 'm2', hint: Uint8Array.from([0xaa, 0xbb]) }],
    };
    assert.deepEqual(await ch.ok('loadChannel', 'chat'), toWire(chat));
    const rawChannel = { meta: Uint8Array.from([1, 2, 3, 254]), history: [loadedEntry('r2', 8, 0n)], hints: [] };
    assert.deepEqual(await ch.ok('loadChannel', 'raw'), toWire(rawChannel));

    // Keys the wire form cannot carry: an own "__proto__" key, integer-like keys, -0.
    const exotic = await evalInPage(
      page,
      async (name) => {
        const meta = JSON.parse('{"__proto__": {"x": 1}, "b": 1, "2": "two", "a": [-0]}');
        const handle = window.wp.channelsOf(name);
        await handle.saveMeta('exotic', meta);
        const back = (await handle.loadChannel('exotic')).meta;
        return {
          ownProto: Object.prototype.hasOwnProperty.call(back, '__proto__'),
          protoIsObjectPrototype: Object.getPrototypeOf(back) === Object.prototype,
          keys: Object.keys(back),
          protoValue: back['__proto__'].x,
          negativeZero: Object.is(back.a[0], -0),
        };
      },
      db.name,
    );
    assert.deepEqual(exotic, { ownProto: true, protoIsObjectPrototype: true, keys: ['2', '__proto__', 'b', 'a'], protoValue: 1, negativeZero: true });

    // Drop: one call wipes meta, history and hints; the recreated channel starts at lamport 0.
    assert.deepEqual(await ch.ok('dropChannel', 'chat'), VOID);
    assert.deepEqual(await ch.ok('loadChannel', 'chat'), toWire(EMPTY));
    await ch.ok('queueAppend', 'chat', entry('n1', 1, T0));
    assert.deepEqual(await ch.ok('commit', 'chat', { lamport: 0n, outgoing: [] }), OK);
    await db.ok('close');
    await reload(page, { ready: true });
    await db.open();
    ch = channels(page, db.name);
    assert.deepEqual(await ch.ok('loadChannel', 'chat'), toWire({ meta: { lamport: 0n, outgoing: [] }, history: [loadedEntry('n1', 1, T0)], hints: [] }));
    assert.deepEqual(await ch.ok('loadChannel', 'raw'), toWire(rawChannel), 'the other channel is untouched');
    await db.ok('close');
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('typed rejections: bad input (1), a meta from a newer schema (9), failed load (7) and drop (5)', async () => {
  const { page, db } = await openFresh(env, FAULTS_PAGE, 'channels-rejections');
  try {
    await db.open();
    const ch = channels(page, db.name);
    const invalid = { code: 1, kind: 'invalid_argument', retryable: false };
    const cases = [
      ['saveMeta', '', { a: 1 }],
      ['saveMeta', 'c', null],
      ['saveMeta', 'c', { a: undefined }],
      ['saveMeta', 'c', { t: 2n ** 63n }],
      ['saveMeta', 42, { a: 1 }],
      ['commit', 'c', undefined],
      ['queueAppend', 'c', { id: 'x', bytes: [1, 2] }],
      ['queueAppend', 'c', { id: 'x', bytes: Uint8Array.from([1]), extra: 1 }],
      ['queueAppend', 'c', { id: '', bytes: Uint8Array.from([1]) }],
      ['queueAppend', 'c', { id: 'x'.repeat(257), bytes: Uint8Array.from([1]) }],
      ['queueEvict', 'c', 7],
      ['updateHistory', 'c', { append: [entry('a', 1)], evict: ['a'] }],
      ['updateHistory', 'c', { apend: [] }],
      ['setRetrievalHint', 'c', 'm', 'not bytes'],
      ['loadChannel', ''],
      ['dropChannel', null],
    ];
    for (const [method, ...args] of cases) {
      assertPersistError(await ch.rejects(method, ...args), invalid, `${method}(${JSON.stringify(toWire(args))})`);
    }
    const undef = await ch.rejects('saveMeta', 'c', { outer: [1, { inner: undefined }] });
    assert.match(undef.message, /meta\["outer"\]\[1\]\["inner"\]: undefined \(use null\) cannot be stored/);
    assert.deepEqual(await ch.ok('pending', 'c'), [], 'nothing was queued');
    assert.deepEqual(await ch.ok('loadChannel', 'c'), toWire(EMPTY), 'nothing was written');

    await ch.ok('saveMeta', 'c', { lamport: 1n });
    await ch.ok('updateHistory', 'c', { append: [entry('m1', 1, 5)] });
    // Failed reads and writes reject loadChannel / dropChannel with their codes; nothing is lost.
    // A lost connection is reconnected once; lost again (during the reconnect), the load rejects.
    await db.ok('failNext', 'read', 2, 'connection_lost');
    assertPersistError(await ch.rejects('loadChannel', 'c'), { code: 7, kind: 'connection_lost', retryable: true });
    await db.ok('failNext', 'write', 1, 'quota_exceeded');
    assertPersistError(await ch.rejects('dropChannel', 'c'), { code: 5, kind: 'quota_exceeded', retryable: true });
    const kept = { meta: { lamport: 1n }, history: [loadedEntry('m1', 1, 5)], hints: [] };
    assert.deepEqual(await ch.ok('loadChannel', 'c'), toWire(kept));
    await db.ok('close');

    // A meta row stamped with a newer schema: refused whole, never half-read.
    const [row] = (await raw(page, 'rows', db.name, 'channel_meta')).filter((r) => r.key[0] === 'c');
    const newer = Uint8Array.from(row.value);
    newer[5] = 2;
    await raw(page, 'put', db.name, [{ store: 'channel_meta', key: ['c'], value: newer }]);
    await db.open();
    const refused = await ch.rejects('loadChannel', 'c');
    assertPersistError(refused, { code: 9, kind: 'schema_version_unsupported', retryable: false });
    assert.deepEqual(refused.detail, { found: 2, supported: 1 });
    // Saving a meta of this schema over it makes the channel readable again.
    await ch.ok('saveMeta', 'c', { lamport: 2n });
    assert.deepEqual(await ch.ok('loadChannel', 'c'), toWire({ ...kept, meta: { lamport: 2n } }));
    await db.ok('close');
    assertPersistError(await ch.rejects('loadChannel', 'c'), { code: 20, kind: 'closed', retryable: false });
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('commit resolves through storage failures; two failed history writes drain in one write; exact after reload', async () => {
  const { page, db } = await openFresh(env, FAULTS_PAGE, 'channels-commit');
  try {
    await db.open();
    const ch = channels(page, db.name);
    const calls = () => db.ok('backendCalls');
    const failure = (step, code, kind) => ({ step, code, kind, retryable: true });
    const shape = (report) => ({ ...report, failures: report.failures.map(({ message, ...rest }) => (assert.ok(message.length > 0), rest)) });

    await ch.ok('queueAppend', 'c', entry('a', 1, 1));
    await db.ok('failStoreWrite', 'channel_history', 1, 'quota_exceeded');
    assert.deepEqual(shape(await ch.ok('commit', 'c', { lamport: 1n })), {
      metaSaved: true,
      historyFlushed: false,
      pending: 1,
      failures: [failure('history', 5, 'quota_exceeded')],
    });
    await ch.ok('queueAppend', 'c', entry('b', 2, 2));
    await db.ok('failStoreWrite', 'channel_history', 1, 'transaction_aborted');
    assert.deepEqual(shape(await ch.ok('commit', 'c', { lamport: 2n })), {
      metaSaved: true,
      historyFlushed: false,
      pending: 2,
      failures: [failure('history', 21, 'transaction_aborted')],
    });
    assert.deepEqual(await ch.ok('pending', 'c'), [{ id: 'a', op: 'append' }, { id: 'b', op: 'append' }]);
    // Evict then re-add during the outage: the re-added entry lands.
    await ch.ok('queueEvict', 'c', 'a');
    await ch.ok('queueAppend', 'c', entry('a', 3, 3));
    assert.deepEqual(await ch.ok('pending', 'c'), [{ id: 'b', op: 'append' }, { id: 'a', op: 'append' }]);
    // On disk: the meta of the last commit, no history yet.
    assert.deepEqual(await ch.ok('loadChannel', 'c'), toWire({ meta: { lamport: 2n }, history: [], hints: [] }));

    // The meta save fails now, and the whole queue drains with one history write. (Not a timeout:
    // after one, the next call reconnects first and re-reads the schema stamp.)
    await db.ok('failStoreWrite', 'channel_meta', 1, 'transaction_aborted');
    const before = await calls();
    assert.deepEqual(shape(await ch.ok('commit', 'c', { lamport: 3n })), {
      metaSaved: false,
      historyFlushed: true,
      pending: 0,
      failures: [failure('meta', 21, 'transaction_aborted')],
    });
    const afterCalls = await calls();
    assert.deepEqual({ write: afterCalls.write - before.write, read: afterCalls.read - before.read }, { write: 2, read: 0 });
    // An idle commit (nothing queued) lands the meta: one write.
    assert.deepEqual(await ch.ok('commit', 'c', { lamport: 4n }), OK);
    assert.equal((await calls()).write - afterCalls.write, 1);

    await reload(page, { ready: true });
    await db.open();
    const reloaded = channels(page, db.name);
    assert.deepEqual(
      await reloaded.ok('loadChannel', 'c'),
      toWire({ meta: { lamport: 4n }, history: [loadedEntry('b', 2, 2), loadedEntry('a', 3, 3)], hints: [] }),
    );
    await db.ok('close');
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('figures: backend calls per commit and commit latency with a 1,000-entry history', async (t) => {
  const figures = async (pathname, prefix) => {
    const { page, db } = await openFresh(env, pathname, prefix);
    await db.open();
    const outcome = await evalInPage(page, ([n]) => window.wp.channelFigures(n, 'bench', 1000, 100), [db.name]);
    if (outcome.error) assert.fail(JSON.stringify(outcome.error));
    const result = fromWire(outcome.ok);
    assert.deepEqual(result.built, OK);
    assert.deepEqual(result.history, { length: 1000, first: 'm100', last: 'm1099' }, 'FIFO: 100 appended, 100 evicted');
    assert.equal(result.lamport, 1101n);
    // The first commit of a session that did not load the channel reads its history index once.
    await db.ok('close');
    await reload(page, { ready: true });
    await db.open();
    const first = await evalInPage(page, ([n]) => window.wp.firstCommit(n, 'bench', 'fresh'), [db.name]);
    if (first.error) assert.fail(JSON.stringify(first.error));
    assert.deepEqual(first.ok.report, OK);
    await db.ok('close');
    await page.close();
    return { ...result, first: first.ok };
  };
  const release = await figures(RELEASE_PAGE, 'channels-figures');
  const dev = await figures(FAULTS_PAGE, 'channels-figures-dev');
  assert.deepEqual(dev.calls, { steady: { write: 2, read: 0 }, idle: { write: 1, read: 0 } });
  assert.deepEqual(dev.first.calls, { write: 2, read: 1 });
  const ms = (x) => `${x.toFixed(1)} ms`;
  const lines = [
    'channels: backend calls per commit = 2 writes (meta, then the whole queue as one history write), ' +
      '1 write with nothing queued, +1 key-range read of the history on the first commit of a session that did not loadChannel',
    `channels, 1,000-entry history, release build: commit (meta + 1 append + 1 evict) p50 ${ms(release.p50)}, ` +
      `p95 ${ms(release.p95)}, max ${ms(release.max)} over 100 commits; idle commit ${ms(release.idleMs)}; ` +
      `first commit of a session (reads the 1,000-entry index) ${ms(release.first.ms)}; ` +
      `loadChannel ${ms(release.loadMs)}; building it (1,000 appends in one commit) ${ms(release.buildMs)}`,
    `channels, 1,000-entry history, dev build: commit p50 ${ms(dev.p50)}, p95 ${ms(dev.p95)}; ` +
      `first commit of a session ${ms(dev.first.ms)}; loadChannel ${ms(dev.loadMs)}`,
  ];
  for (const line of lines) {
    t.diagnostic(line);
    console.log(`[figures] ${line}`);
  }
});

test('queued channel history is written when the page is hidden (autoFlush)', async () => {
  const { page, db } = await openFresh(env, RELEASE_PAGE, 'channels-hidden');
  try {
    await db.open();
    const ch = channels(page, db.name);
    await ch.ok('queueAppend', 'c', entry('q1', 1, 1));
    await ch.ok('queueAppend', 'c', entry('q2', 2, 2));
    // visibilitychange → hidden (synthetic: headless pages never become hidden).
    await evalInPage(page, () => {
      Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    for (let i = 0; i < 100 && (await ch.ok('pending', 'c')).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await ch.ok('pending', 'c'), []);
    await reload(page, { ready: true });
    await db.open();
    assert.deepEqual(
      await channels(page, db.name).ok('loadChannel', 'c'),
      toWire({ meta: null, history: [loadedEntry('q1', 1, 1), loadedEntry('q2', 2, 2)], hints: [] }),
    );
    await db.ok('close');
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

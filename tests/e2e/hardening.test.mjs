// Defensive paths against real IndexedDB: hostile rows written with raw IndexedDB, schema gates,
// wallet deletion checked row by row with raw IndexedDB, and load figures at 10,000 rows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, reload, evalInPage, pageErrors, setup } from './harness.mjs';
import { toWire, fromWire } from './fixtures/wire.mjs';
import {
  W1,
  W2,
  TX1,
  TX3,
  richChangeset,
  smallChangeset,
  asLoaded,
  richLoaded,
  RICH_ROWS,
  NO_ROWS,
  client,
  assertPersistError,
  raw,
  rowsOf,
  RELEASE_PAGE,
  FAULTS_PAGE,
  openFresh,
} from './client.mjs';


let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});


const hexBytes = (hex) => Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16));

/** An envelope header (magic WPST, flags 0, schema 1) for a payload of `len` bytes. */
function header(len) {
  const out = new Uint8Array(11);
  out.set([0x57, 0x50, 0x53, 0x54, 0, 1, 0]);
  new DataView(out.buffer).setUint32(7, len, true);
  return out;
}

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

test('hostile rows written with raw IndexedDB are skipped and reported; every good row loads', async () => {
  const { page, db } = await openFresh(env, RELEASE_PAGE, 'hostile');
  const consoleLines = [];
  page.on('console', (msg) => consoleLines.push(msg.text()));
  try {
    await db.open();
    await db.ok('store', W1, richChangeset());
    await db.ok('store', W2, smallChangeset());
    await db.ok('commit');
    await db.ok('close');

    const records = await raw(page, 'rows', db.name, 'records');
    const settings = records.find((r) => r.key[0] === W1 && r.key[2] === 'settings').value;
    const utxo = (await raw(page, 'rows', db.name, 'utxos')).find((r) => r.key[0] === W1).value;
    const future = Uint8Array.from(settings);
    future[5] = 2;
    const magic = Uint8Array.from(settings);
    magic[0] = 0x58;
    // After the 32-byte wallet id, the record's first string claims 2^40 bytes.
    const claim = concat(hexBytes(W1), Uint8Array.from([0xfd, 0, 0, 0, 0, 0, 1, 0, 0]));
    const hostile = [
      ['records', [W1, 'app', 'zz-random'], Uint8Array.from({ length: 40 }, (_, i) => (i * 97 + 13) & 0xff), 11],
      ['records', [W1, 'app', 'zz-huge'], concat(header(claim.length), claim), 10],
      ['records', [W1, 'app', 'zz-trailing'], concat(settings, Uint8Array.from([0])), 11],
      ['records', [W1, 'app', 'zz-future'], future, 9],
      ['records', [W1, 'app', 'zz-magic'], magic, 11],
      ['records', [W1, 'app', 'zz-truncated'], settings.slice(0, settings.length - 3), 11],
      ['records', [W1, 'app', 'zz-moved'], settings, 13],
      ['records', [W1, 'app', 'zz-shape'], utxo, 11],
      ['records', [W1, 'app', 'zz-string'], 'not bytes', 11],
      ['records', 'stray-key', settings, 13],
      ['records', [W2, 'app', 'settings'], settings, 12],
      ['utxos', [W1, TX3, 9], utxo, 13],
    ];
    await raw(page, 'put', db.name, hostile.map(([store, key, value]) => ({ store, key, value })));

    await reload(page, { ready: true });
    await evalInPage(page, () => window.wp.setLogLevel('info'));
    await db.open();
    const loaded = await db.ok('load');
    assert.deepEqual(loaded.wallets[W1], toWire(richLoaded()), 'every good row of W1');
    assert.deepEqual(loaded.wallets[W2], toWire(asLoaded(smallChangeset(), W2)), 'every good row of W2');
    assert.deepEqual(Object.keys(loaded.wallets).sort(), [W1, W2]);

    const spell = (key) => JSON.stringify(key);
    const expected = hostile.map(([store, key, , code]) => ({ store, key: spell(key), code })).sort((a, b) => (a.key < b.key ? -1 : 1));
    const got = loaded.report.skipped
      .map(({ store, key, code }) => ({ store, key, code }))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    assert.deepEqual(got, expected);
    for (const row of loaded.report.skipped) {
      assert.equal(typeof row.reason, 'string');
      assert.ok(row.reason.length > 0);
    }
    const huge = loaded.report.skipped.find((r) => r.key.includes('zz-huge'));
    assert.equal(huge.kind, 'blob_too_large');
    assert.match(huge.reason, /1099511627776/, 'the reason names the claimed length');
    assert.deepEqual(loaded.report.rows, { ...RICH_ROWS, wallets: 2, utxos: 3 });
    assert.deepEqual(loaded.report.skippedRows, { ...NO_ROWS, records: 11, utxos: 1 });
    assert.deepEqual(loaded.report.scannedStores, []);
    assert.equal(loaded.report.wallets, 2);
    const summary = consoleLines.find((line) => line.includes('loaded 2 wallet(s)'));
    assert.ok(summary, `an info summary line: ${consoleLines.join('\n')}`);
    assert.match(summary, /skipped 12/);
    assert.match(summary, /records 2\/11/);
    assert.match(summary, /utxos 3\/1/);
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

/** The rollback floors row as a newer build writes it: envelope version 1, payload [read, write]. */
const floorsRow = (read, write) => ({ store: 'db_meta', key: ['floors'], value: concat(header(2), Uint8Array.of(read, write)) });

test('a database stamped by a newer schema opens under its rollback floors: refused (9, unchanged), read-only, or read-write', async () => {
  const { page, db } = await openFresh(env, RELEASE_PAGE, 'schema');
  try {
    await db.open();
    assert.deepEqual(await evalInPage(page, (n) => window.wp.get(n, 'openReport'), db.name), {
      ok: { schemaVersion: 1, migratedFrom: 0, discardedPending: [], access: 'readWrite' },
    });
    await db.ok('store', W1, richChangeset());
    await db.ok('close');
    await db.open();
    assert.deepEqual((await evalInPage(page, (n) => window.wp.get(n, 'openReport'), db.name)).ok, { schemaVersion: 1, migratedFrom: null, discardedPending: [], access: 'readWrite' });
    await db.ok('close');

    const meta = await raw(page, 'rows', db.name, 'db_meta');
    assert.deepEqual(meta.map((r) => r.key), [['floors'], ['schema']], 'this build writes its floors with the stamp');
    assert.deepEqual([...meta[0].value], [...header(2), 1, 1], 'floors: read 1, write 1');
    const stamp = meta[1];
    const newer = Uint8Array.from(stamp.value);
    newer[5] = 2;
    // Schema 2 that this build may neither read nor write.
    await raw(page, 'put', db.name, [{ store: 'db_meta', key: ['schema'], value: newer }, floorsRow(2, 2)]);
    let before = await raw(page, 'snapshot', db.name);

    const outcome = await evalInPage(page, (o) => window.wp.open(o), { name: db.name });
    assertPersistError(outcome.error, { code: 9, kind: 'schema_version_unsupported', retryable: false }, 'open');
    assert.deepEqual(outcome.error.detail, { found: 2, supported: 1 });
    assert.deepEqual(await raw(page, 'snapshot', db.name), before, 'nothing was written');

    // A newer build that only raised the IndexedDB version (say, to add a store) does not lock this
    // build out: compatibility is decided by the stamp alone.
    await raw(page, 'bumpVersion', db.name, 7);
    const refused = await evalInPage(page, (o) => window.wp.open(o), { name: db.name });
    assertPersistError(refused.error, { code: 9, kind: 'schema_version_unsupported', retryable: false }, 'stamp 2 at IndexedDB version 7');

    // Schema 2 readable by schema 1 builds, writable only by 2: read-only, every write 9, nothing changes.
    await raw(page, 'put', db.name, [floorsRow(1, 2)]);
    before = await raw(page, 'snapshot', db.name);
    await db.open();
    assert.deepEqual((await evalInPage(page, (n) => window.wp.get(n, 'openReport'), db.name)).ok, { schemaVersion: 2, migratedFrom: null, discardedPending: [], access: 'readOnly' });
    assert.deepEqual((await db.ok('load')).wallets, { [W1]: toWire(richLoaded()) });
    assertPersistError(await db.rejects('store', W2, smallChangeset()), { code: 9, kind: 'schema_version_unsupported', retryable: false }, 'store on read-only');
    assertPersistError(await db.rejects('deleteWallet', W1), { code: 9, kind: 'schema_version_unsupported', retryable: false }, 'delete on read-only');
    await db.ok('close');
    assert.deepEqual(await raw(page, 'snapshot', db.name), before, 'a read-only open writes nothing');

    // Schema 2 writable by schema 1 builds: read-write, and the stamp stays 2.
    await raw(page, 'put', db.name, [floorsRow(1, 1)]);
    await db.open();
    assert.equal((await evalInPage(page, (n) => window.wp.get(n, 'openReport'), db.name)).ok.access, 'readWrite');
    await db.ok('store', W2, smallChangeset());
    await db.ok('commit');
    await db.ok('close');
    const after = await raw(page, 'rows', db.name, 'db_meta');
    assert.deepEqual(after.find((r) => r.key[0] === 'schema').value[5], 2, 'an older build never lowers the stamp');
    assert.equal(await raw(page, 'version', db.name), 7);
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('deleteWallet removes every row of the wallet (raw IndexedDB count), keeps everything on failure, and refuses a racing store', async () => {
  const { page, db } = await openFresh(env, FAULTS_PAGE, 'delete');
  try {
    await db.open();
    await db.ok('store', W1, richChangeset());
    await db.ok('store', W2, smallChangeset());
    await db.ok('commit');
    const countsBefore = await raw(page, 'countWallet', db.name, W1);
    assert.deepEqual(
      Object.fromEntries(Object.entries(countsBefore).filter(([, n]) => n > 0)),
      { ...RICH_ROWS },
      'W1 has its rows before the delete',
    );
    const staged = { outpoint: `${TX1}:0`, value: 1n, script: Uint8Array.from([1]), height: null, account: 0 };
    await db.ok('store', W1, { utxos: { [`${TX1}:0`]: staged } });

    // A failure before the commit deletes nothing and keeps what is staged.
    await db.ok('failNext', 'write', 1, 'quota_exceeded');
    assertPersistError(await db.rejects('deleteWallet', W1), { code: 5, kind: 'quota_exceeded', retryable: true }, 'failed delete');
    assert.deepEqual(await raw(page, 'countWallet', db.name, W1), countsBefore);
    assert.deepEqual(await db.ok('staged'), [{ walletId: W1, fields: 1 }]);

    // A store issued in the same tick as the delete is refused: nothing can resurrect the wallet.
    const [deleted, racing, other] = await evalInPage(
      page,
      ([n, calls]) => window.wp.together(n, calls),
      [db.name, toWire([['deleteWallet', [W1]], ['store', [W1, { utxos: { [`${TX1}:0`]: staged } }]], ['store', [W2, { syncState: { height: 5, tipHash: W2, lastSyncMs: 5n } }]]])],
    );
    assert.deepEqual(deleted, { ok: { walletId: W1, discardedStagedFields: 1 } });
    assertPersistError(racing.error, { code: 2, kind: 'wallet_not_found', retryable: false }, 'store racing the delete');
    assert.deepEqual(racing.error.walletIds, [W1]);
    assert.deepEqual(other, { ok: null }, 'another wallet is unaffected');
    const countsAfter = await raw(page, 'countWallet', db.name, W1);
    assert.ok(Object.keys(countsAfter).length >= 18, 'every store was counted');
    assert.deepEqual(Object.values(countsAfter).filter((n) => n !== 0), [], JSON.stringify(countsAfter));
    assert.deepEqual(await db.ok('staged'), [{ walletId: W2, fields: 1 }]);
    await db.ok('commit');

    await reload(page, { ready: true });
    await db.open();
    const loaded = await db.ok('load');
    assert.deepEqual(Object.keys(loaded.wallets), [W2]);
    assert.equal(loaded.wallets[W2].syncState.height, 5);
    // The id is free again once the delete settled.
    assert.equal(await db.ok('store', W1, smallChangeset()), null);
    await db.ok('commit');
    assert.deepEqual((await db.ok('load')).wallets[W1], toWire(asLoaded(smallChangeset(), W1)));
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('load figures: 10,000 rows with 1% hostile rows, and the row-by-row fallback', async (t) => {
  const { page, db } = await openFresh(env, RELEASE_PAGE, 'load-10k');
  let faults;
  try {
    await db.open();
    // 100 wallets x (1 wallet record + 99 UTXOs) = 10,000 rows.
    const wallets = Array.from({ length: 100 }, (_, i) => (i + 1).toString(16).padStart(2, '0').repeat(32));
    for (const walletId of wallets) {
      const utxos = {};
      for (let v = 0; v < 99; v++) {
        const outpoint = `${TX1}:${v}`;
        utxos[outpoint] = { outpoint, value: BigInt(v * 1000), script: Uint8Array.from({ length: 22 }, (_, i) => i), height: v, account: 0 };
      }
      await db.ok('store', walletId, { wallet: { network: 'testnet', label: walletId.slice(0, 8), birthHeight: 1, createdAtMs: 0, accountSchema: 1 }, utxos });
    }
    await db.ok('commit');
    const timedLoad = async (on, name) => {
      const outcome = await evalInPage(on, (n) => window.wp.timed(n, 'load'), name);
      if (outcome.error) assert.fail(JSON.stringify(outcome.error));
      return { ms: outcome.ok.ms, report: outcome.ok.result.report };
    };
    await timedLoad(page, db.name); // warm-up
    const clean = await timedLoad(page, db.name);
    assert.equal(clean.report.wallets, 100);
    assert.equal(clean.report.rows.utxos + clean.report.rows.wallets, 10_000);

    // Overwrite 100 UTXO rows (one per wallet) with garbage: 1%.
    const garbage = Uint8Array.from({ length: 60 }, (_, i) => i);
    await raw(page, 'put', db.name, wallets.map((w, i) => ({ store: 'utxos', key: [w, TX1, i % 99], value: garbage })));
    const dirty = await timedLoad(page, db.name);
    assert.equal(dirty.report.rows.utxos, 9_800);
    assert.equal(dirty.report.rows.wallets, 100);
    assert.equal(dirty.report.skippedRows.utxos, 100);
    assert.equal(dirty.report.skipped.length, 100);
    await db.ok('close');

    // The bulk read of utxos fails as a whole (injected, so on the fault-injection dev build):
    // the store is read row by row and the same rows load.
    faults = await openPage(env.browser.context, env.server.url(FAULTS_PAGE), { ready: true });
    const other = client(faults, db.name);
    await other.open();
    const devBulk = await timedLoad(faults, db.name);
    await other.ok('failStoreRead', 'utxos', 1, 'blob_decode');
    const scanned = await timedLoad(faults, db.name);
    assert.deepEqual(scanned.report.scannedStores, ['utxos']);
    assert.deepEqual(scanned.report.rows, dirty.report.rows);
    assert.equal(scanned.report.skipped.length, 100);

    const fmt = (ms) => `${ms.toFixed(1)} ms`;
    const line =
      `load of 10,000 rows: release build clean ${fmt(clean.ms)}, 1% bad ${fmt(dirty.ms)}; ` +
      `dev build bulk ${fmt(devBulk.ms)}, bulk read failed -> row by row ${fmt(scanned.ms)}`;
    t.diagnostic(line);
    console.log(`[figures] ${line}`);
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await faults?.close();
    await page.close();
  }
});

test('dropping a store with staged changes logs an error naming the dirty wallets and their field counts', async () => {
  const { page, db } = await openFresh(env, RELEASE_PAGE, 'dirty-drop');
  const errors = [];
  page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
  try {
    await db.open();
    await db.ok('store', W1, richChangeset());
    await db.ok('store', W2, smallChangeset());
    await db.ok('free');
    const line = errors.find((e) => e.includes('store dropped with staged changes'));
    assert.ok(line, errors.join('\n'));
    assert.ok(line.includes(`${W1} (19 fields)`), line);
    assert.ok(line.includes(`${W2} (2 fields)`), line);
  } finally {
    await page.close();
  }
});

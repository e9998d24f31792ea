// Two-phase registration and verified backups against real IndexedDB, checked with raw IndexedDB.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, reload, evalInPage, pageErrors, uniqueName, setup } from './harness.mjs';
import { toWire, fromWire } from './fixtures/wire.mjs';
import { W1, W2, TX1, RICH_ROWS, richChangeset, smallChangeset, richLoaded, client, assertPersistError, raw, rowsOf, RELEASE_PAGE, FAULTS_PAGE } from './client.mjs';


let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

const newPage = (path = FAULTS_PAGE) => openPage(env.browser.context, env.server.url(path), { ready: true });
const register = (page, name, walletId, changes, mode) =>
  evalInPage(page, ([n, w, c, m]) => window.wp.register(n, w, c, m), [name, walletId, toWire(changes), mode]);

test('registration is all or nothing at every step, and a retry succeeds', async () => {
  const page = await newPage();
  const db = client(page, uniqueName('register'));
  try {
    await db.open();
    assert.deepEqual(await register(page, db.name, W1, richChangeset(), 'ok'), { ok: { $undefined: true } });
    assert.deepEqual(await rowsOf(page, db.name, W1), RICH_ROWS);
    const exists = await register(page, db.name, W1, richChangeset(), 'ok');
    assertPersistError(exists.error, { code: 3, kind: 'wallet_already_exists', retryable: false }, 'existing wallet');

    // Stage fails (a transient write failure on the pending row).
    await db.ok('failNext', 'write', 1, 'quota_exceeded');
    const staged = await register(page, db.name, W2, smallChangeset(), 'ok');
    assertPersistError(staged.error, { code: 5, kind: 'quota_exceeded', retryable: true }, 'stage failed');
    assert.deepEqual(await rowsOf(page, db.name, W2), {});

    // Init rejects, throws, or rejects after staging more for the wallet: the caller's own error.
    for (const [mode, message] of [['reject', 'init failed'], ['throw', 'init threw'], ['stage-then-reject', 'init failed after staging']]) {
      const outcome = await register(page, db.name, W2, smallChangeset(), mode);
      assert.equal(outcome.error?.message, message, mode);
      assert.equal(outcome.error.code, undefined, `${mode}: init's error passes through untouched`);
      assert.deepEqual(await rowsOf(page, db.name, W2), {}, mode);
      assert.deepEqual(await db.ok('staged'), [], mode);
    }

    // Promote fails.
    const promote = await register(page, db.name, W2, smallChangeset(), 'fail-promote');
    assertPersistError(promote.error, { code: 18, kind: 'timeout', retryable: true }, 'promote failed');
    assert.deepEqual(await rowsOf(page, db.name, W2), {});
    assertPersistError(await db.rejects('promote', W2), { code: 17, kind: 'pending_registration_missing', retryable: false }, 'promote without pending');

    // The retry lands, and only then does the wallet load.
    assert.deepEqual(await register(page, db.name, W2, smallChangeset(), 'ok'), { ok: { $undefined: true } });
    assert.deepEqual(await rowsOf(page, db.name, W2), { wallets: 1, utxos: 1 });
    await reload(page, { ready: true });
    await db.open();
    assert.deepEqual(Object.keys((await db.ok('load')).wallets).sort(), [W1, W2]);
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('a registration interrupted between stage and promote is discarded at the next open and reported', async () => {
  const page = await newPage();
  const db = client(page, uniqueName('stale-pending'));
  try {
    await db.open();
    await db.ok('storePending', W1, richChangeset());
    assert.deepEqual(await rowsOf(page, db.name, W1), { pending: 1 });
    await reload(page, { ready: true }); // the page dies before promote
    await db.open();
    const report = await evalInPage(page, (n) => window.wp.get(n, 'openReport'), db.name);
    assert.deepEqual(report.ok.discardedPending, [W1]);
    assert.deepEqual(await rowsOf(page, db.name, W1), {});
    assert.deepEqual((await db.ok('load')).wallets, {});
    assert.deepEqual(await register(page, db.name, W1, richChangeset(), 'ok'), { ok: { $undefined: true } });
    assert.deepEqual((await db.ok('load')).wallets[W1], toWire(richLoaded()));
  } finally {
    await page.close();
  }
});

/** CRC-32 (IEEE), to re-seal a backup after changing its content. */
function crc32(bytes) {
  let crc = ~0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return ~crc >>> 0;
}
const reseal = (bytes) => {
  const out = Uint8Array.from(bytes);
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
};

/** 100 wallets with every area (richChangeset under 100 ids). */
const hundredWallets = () => Array.from({ length: 100 }, (_, i) => (i + 1).toString(16).padStart(2, '0').repeat(32));

test('backup: 100 wallets round-trip exactly; every corruption is refused (14 or 9) with the target untouched', async () => {
  const page = await newPage(RELEASE_PAGE);
  const source = client(page, uniqueName('backup-src'));
  const target = client(page, uniqueName('backup-dst'));
  try {
    await source.open();
    for (const walletId of hundredWallets()) await source.ok('store', walletId, richChangeset());
    await source.ok('commit');
    const original = await source.ok('load');
    const exported = await evalInPage(page, (n) => window.wp.exportBackup(n, true), source.name);
    const bytes = fromWire(exported.ok.bytes);
    assert.equal(exported.ok.progress.at(-1).done, 1_900);
    assert.ok(exported.ok.progress.length >= 2, 'progress at least every 1,000 rows');

    const fresh = client(page, uniqueName('backup-fresh'));
    const into = await evalInPage(page, ([n, b]) => window.wp.importBackup(n, b), [fresh.name, toWire(bytes)]);
    assert.deepEqual(into.ok.report, { rows: 1_900, wallets: 100, createdAtMs: into.ok.report.createdAtMs });
    await fresh.open();
    const roundTrip = await fresh.ok('load');
    assert.deepEqual(roundTrip.wallets, original.wallets, 'import into a fresh database loads exactly the original');
    assert.deepEqual(roundTrip.report, original.report);

    // The target holds another wallet: corruptions must leave it exactly as it is.
    await target.open();
    await target.ok('store', W2, smallChangeset());
    await target.ok('close');
    const before = await raw(page, 'snapshot', target.name);
    const flipped = Uint8Array.from(bytes);
    flipped[Math.floor(bytes.length / 2)] ^= 1;
    const futureSchema = Uint8Array.from(bytes);
    futureSchema[6] = 2;
    const futureFormat = Uint8Array.from(bytes);
    futureFormat[4] = 2;
    const magic = Uint8Array.from(bytes);
    magic[0] = 0x58;
    // A row whose envelope magic is broken, the checksum re-sealed so only the row check can catch it.
    const badRow = Uint8Array.from(bytes);
    const at = Buffer.from(badRow).indexOf('WPST');
    badRow[at] = 0x58;
    const cases = [
      ['flipped byte', flipped, 14],
      ['truncated', bytes.subarray(0, bytes.length - 1000), 14],
      ['future schema', reseal(futureSchema), 9],
      ['future format', futureFormat, 9],
      ['wrong magic', magic, 14],
      ['bad row', reseal(badRow), 14],
    ];
    for (const [what, corrupt, code] of cases) {
      for (const overwrite of [false, true]) {
        const outcome = await evalInPage(page, ([n, b, o]) => window.wp.importBackup(n, b, o), [target.name, toWire(corrupt), overwrite]);
        assert.equal(outcome.error?.code, code, `${what}: ${JSON.stringify(outcome)}`);
        assert.equal(outcome.error.kind, code === 14 ? 'backup_invalid' : 'schema_version_unsupported');
      }
      assert.deepEqual(await raw(page, 'snapshot', target.name), before, `${what}: the target is untouched`);
    }
    const notEmpty = await evalInPage(page, ([n, b]) => window.wp.importBackup(n, b), [target.name, toWire(bytes)]);
    assertPersistError(notEmpty.error, { code: 15, kind: 'backup_destination_not_empty', retryable: false }, 'non-empty target');
    assert.deepEqual(await raw(page, 'snapshot', target.name), before);

    const replaced = await evalInPage(page, ([n, b]) => window.wp.importBackup(n, b, true), [target.name, toWire(bytes)]);
    assert.equal(replaced.ok.report.rows, 1_900);
    await target.open();
    const imported = await target.ok('load');
    assert.deepEqual(imported.wallets, original.wallets, 'the backup loads exactly; the old wallet is gone');
    assert.deepEqual(imported.report.skipped, []);
    assert.deepEqual(pageErrors(page), []);
  } finally {
    await page.close();
  }
});

test('backup throughput: export and import of 10,000 rows, with progress', async (t) => {
  const page = await newPage(RELEASE_PAGE);
  const source = client(page, uniqueName('backup-10k'));
  try {
    await source.open();
    for (const walletId of hundredWallets()) {
      const utxos = {};
      for (let v = 0; v < 99; v++) {
        const outpoint = `${TX1}:${v}`;
        utxos[outpoint] = { outpoint, value: BigInt(v), script: Uint8Array.from({ length: 22 }, (_, i) => i), height: v, account: 0 };
      }
      await source.ok('store', walletId, { wallet: { network: 'testnet', label: 'w', birthHeight: 1, createdAtMs: 0, accountSchema: 1 }, utxos });
    }
    await source.ok('commit');
    const exported = (await evalInPage(page, (n) => window.wp.exportBackup(n), source.name)).ok;
    const imported = (await evalInPage(page, (n) => window.wp.importBackup(n), uniqueName('backup-10k-dst'))).ok;
    assert.equal(imported.report.rows, 10_000);
    assert.ok(exported.progress.filter((e) => e.phase === 'export').length >= 10, 'export progress every 1,000 rows');
    assert.ok(imported.progress.filter((e) => e.phase === 'validate').length >= 10, 'validation progress every 1,000 rows');
    const line = `backup of 10,000 rows (${(exported.size / 1024).toFixed(0)} KiB): export ${exported.ms.toFixed(0)} ms, import ${imported.ms.toFixed(0)} ms (validate + one transaction)`;
    t.diagnostic(line);
    console.log(`[figures] ${line}`);
  } finally {
    await page.close();
  }
});

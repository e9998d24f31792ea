// Encryption at rest against real IndexedDB in Chromium: nothing readable in any store, typed
// refusals that change nothing, tampered rows, sealed backups, and killed pages in the middle of
// changePassphrase and encrypt (each leaves exactly the old or the new state).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { openPage, setup, uniqueName } from './harness.mjs';
import { W1, W2, TX1, TX2, IDENTITY, CONTACT, TOKEN1, richChangeset, smallChangeset, raw, inPage, okInPage, RELEASE_PAGE } from './client.mjs';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

/** Cheap Argon2id for the tests that open many times (the defaults are measured separately). */
const KDF = { memoryKib: 1024, iterations: 1 };
/** For the rotation kills: an unlock + wrap long enough to be killed in. */
const ROTATE_KDF = { memoryKib: 8192, iterations: 2 };
const CHANNEL = 'room:secret-channel-7f3a';
const MESSAGE = 'msg-9c1d-unique-message-id';

const ok = okInPage;

/** Writes two rich wallets and a channel with history and a hint into `name`. */
const writeRealistic = async ({ WalletStore }, { name, encryption, wallets }) => {
  const store = await WalletStore.open({ name, flushMode: 'manual', encryption, multiTab: 'wait' });
  for (const [id, cs] of wallets) await store.store(id, cs);
  await store.commit();
  const channels = store.channels;
  await channels.saveMeta('room:secret-channel-7f3a', { cursor: 'meta-cursor-secret', n: 3 });
  await channels.updateHistory('room:secret-channel-7f3a', {
    append: [{ id: 'msg-9c1d-unique-message-id', bytes: new TextEncoder().encode('hello secret body') }],
  });
  await channels.setRetrievalHint('room:secret-channel-7f3a', 'msg-9c1d-unique-message-id', new Uint8Array([1, 2, 3]));
  const encrypted = store.isEncrypted;
  await store.close();
  return encrypted;
};

/** The state a reader sees: every wallet, the channel, and the load report. */
const readAll = async ({ WalletStore }, { name, encryption }) => {
  const store = await WalletStore.open({ name, flushMode: 'manual', encryption, multiTab: 'wait' });
  try {
    const loaded = await store.load();
    const channel = await store.channels.loadChannel('room:secret-channel-7f3a');
    return { wallets: loaded.wallets, skipped: loaded.report.skipped, channel, encrypted: store.isEncrypted };
  } finally {
    await store.close();
  }
};

/** JSON with bigints spelled `123n`, for assertion messages. */
const show = (value) => JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
const fromHex = (h) => Uint8Array.from(h.match(/../g), (b) => parseInt(b, 16));

/** Every way a name could sit in a row: UTF-8, UTF-16 (both byte orders), and for hex ids their
 *  raw bytes and upper-case hex. */
function needleForms(names) {
  const forms = [];
  for (const name of names) {
    const utf8 = [...new TextEncoder().encode(name)];
    const utf16le = [...name].flatMap((c) => [c.charCodeAt(0) & 0xff, c.charCodeAt(0) >> 8]);
    const utf16be = [...name].flatMap((c) => [c.charCodeAt(0) >> 8, c.charCodeAt(0) & 0xff]);
    forms.push({ name, form: 'utf8', bytes: utf8 }, { name, form: 'utf16le', bytes: utf16le }, { name, form: 'utf16be', bytes: utf16be });
    if (/^[0-9a-f]{64}$/.test(name)) {
      forms.push({ name, form: 'bytes', bytes: [...fromHex(name)] });
      forms.push({ name, form: 'HEX', bytes: [...new TextEncoder().encode(name.toUpperCase())] });
    } else {
      forms.push({ name, form: 'hex', bytes: [...new TextEncoder().encode(hex(new TextEncoder().encode(name)))] });
    }
  }
  return forms;
}

/** Searches every raw key and value of every store of `name` for any form of any name. */
const scanRaw = async (_api, { name, forms }) => {
  const db = await new Promise((resolve, reject) => {
    const req = indexedDB.open(name);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const found = [];
  let rows = 0;
  const stores = [...db.objectStoreNames];
  const contains = (hay, needle) => {
    outer: for (let i = 0; i + needle.length <= hay.length; i++) {
      for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  };
  const keyBytes = (key) => {
    const text = JSON.stringify(key);
    const out = [...new TextEncoder().encode(text)];
    for (const c of text) out.push(c.charCodeAt(0) & 0xff, c.charCodeAt(0) >> 8);
    return out;
  };
  for (const store of stores) {
    const tx = db.transaction(store, 'readonly');
    const os = tx.objectStore(store);
    const get = (req) => new Promise((resolve, reject) => { req.onsuccess = () => resolve(req.result); req.onerror = () => reject(req.error); });
    const [keys, values] = await Promise.all([get(os.getAllKeys()), get(os.getAll())]);
    for (let i = 0; i < keys.length; i++) {
      rows++;
      const hay = [...keyBytes(keys[i]), ...(values[i] instanceof Uint8Array ? values[i] : keyBytes(values[i]))];
      for (const { name: n, form, bytes } of forms) if (contains(hay, bytes)) found.push(`${store} ${JSON.stringify(keys[i])}: ${n} as ${form}`);
    }
  }
  db.close();
  return { found, rows, stores: stores.length };
};

const rich2 = () => {
  const cs = richChangeset();
  return { ...cs, wallet: { ...cs.wallet, label: 'Cold storage ☃ label' } };
};

test('an encrypted database reveals none of the names it holds, in any store, in any form', async () => {
  const page = await env.open(RELEASE_PAGE, { ready: true });
  const name = uniqueName('enc-scan');
  const cs = richChangeset();
  const names = [
    W1, W2, TX1, TX2, IDENTITY, CONTACT, TOKEN1,
    ...Object.keys(cs.addresses),
    'dashevo1qq5f6ed5',
    cs.wallet.label, 'Cold storage ☃ label',
    ...Object.values(cs.accounts).map((a) => a.descriptor),
    'tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M',
    CHANNEL, MESSAGE, 'meta-cursor-secret', 'hello secret body', 'key:with:colons', '{"fiat":"EUR"}',
  ];
  const forms = needleForms(names);
  // The scan can fail: the same database written plain shows every name.
  const plainName = `${name}-plain`;
  await ok(page, writeRealistic, { name: plainName, wallets: [[W1, cs], [W2, rich2()]] });
  const plain = await ok(page, scanRaw, { name: plainName, forms });
  for (const needle of [W1, TX1, CHANNEL, MESSAGE, cs.wallet.label]) {
    assert.ok(plain.found.some((f) => f.includes(`: ${needle} as`)), `the plain scan finds ${needle}`);
  }

  const encrypted = await ok(page, writeRealistic, {
    name, encryption: { passphrase: 'correct horse battery staple', kdf: KDF }, wallets: [[W1, cs], [W2, rich2()]],
  });
  assert.equal(encrypted, true);
  const scan = await ok(page, scanRaw, { name, forms });
  assert.ok(scan.rows >= 30, `rows scanned: ${scan.rows}`);
  assert.equal(scan.stores, 18);
  assert.deepEqual(scan.found, [], 'no name is readable');

  const back = await ok(page, readAll, { name, encryption: { passphrase: 'correct horse battery staple' } });
  const plainBack = await ok(page, readAll, { name: plainName });
  assert.deepEqual(back.skipped, []);
  assert.deepEqual(back.wallets, plainBack.wallets, 'the encrypted store loads what the plain one does');
  assert.deepEqual(back.channel, plainBack.channel);
  await page.close();
});

test('a wrong passphrase, a missing key and a key for a plain database are refused, byte for byte unchanged', async () => {
  const page = await env.open(RELEASE_PAGE, { ready: true });
  const name = uniqueName('enc-refuse');
  await ok(page, writeRealistic, { name, encryption: { passphrase: 'right', kdf: KDF }, wallets: [[W1, smallChangeset()]] });
  const before = await raw(page, 'snapshot', name);
  const tryOpen = ({ WalletStore }, options) => WalletStore.open(options).then(async (s) => { await s.close(); return 'opened'; });
  for (const encryption of [{ passphrase: 'wrong' }, { key: new Uint8Array(32).fill(7) }, undefined]) {
    const outcome = await inPage(page, tryOpen, { name, encryption });
    assert.equal(outcome.error?.code, 23, JSON.stringify(outcome));
    assert.equal(outcome.error?.kind, 'wrong_key');
  }
  assert.deepEqual(await raw(page, 'snapshot', name), before, 'byte for byte unchanged');

  const plainName = `${name}-plain`;
  await ok(page, writeRealistic, { name: plainName, wallets: [[W1, smallChangeset()]] });
  const plainBefore = await raw(page, 'snapshot', plainName);
  const outcome = await inPage(page, tryOpen, { name: plainName, encryption: { passphrase: 'x', kdf: KDF } });
  assert.equal(outcome.error?.code, 1, JSON.stringify(outcome));
  assert.match(outcome.error.message, /not encrypted/);
  assert.deepEqual(await raw(page, 'snapshot', plainName), plainBefore);
  await page.close();
});

test('a bit flip, a truncation and a row moved to another key are skipped and reported; loadChannel refuses', async () => {
  const page = await env.open(RELEASE_PAGE, { ready: true });
  const name = uniqueName('enc-tamper');
  const encryption = { passphrase: 'pw', kdf: KDF };
  await ok(page, writeRealistic, { name, encryption, wallets: [[W1, richChangeset()], [W2, rich2()]] });
  const records = await raw(page, 'rows', name, 'records');
  assert.equal(records.length, 4);
  const [a, b] = records;
  const flipped = Uint8Array.from(a.value);
  flipped[40] ^= 0x01;
  const truncated = b.value.slice(0, b.value.length - 1);
  await raw(page, 'put', name, [
    { store: 'records', key: a.key, value: flipped },
    { store: 'records', key: b.key, value: truncated },
    { store: 'records', key: records[2].key, value: records[3].value },
  ]);
  const meta = await raw(page, 'rows', name, 'channel_meta');
  const editedMeta = Uint8Array.from(meta[0].value);
  editedMeta[editedMeta.length - 1] ^= 0x80;
  await raw(page, 'put', name, [{ store: 'channel_meta', key: meta[0].key, value: editedMeta }]);

  const outcome = await ok(page, async ({ WalletStore }, { name, encryption }) => {
    const store = await WalletStore.open({ name, flushMode: 'manual', encryption });
    const loaded = await store.load();
    const channel = await store.channels.loadChannel('room:secret-channel-7f3a').then(() => null, (e) => ({ code: e.code, kind: e.kind }));
    await store.close();
    return { report: loaded.report, channel, records: Object.values(loaded.wallets).map((w) => Object.keys(w.records).length) };
  }, { name, encryption });
  assert.equal(outcome.report.skipped.length, 3, JSON.stringify(outcome.report.skipped));
  assert.ok(outcome.report.skipped.every((s) => s.store === 'records' && s.code === 11 && /authentication|truncated/.test(s.reason)), JSON.stringify(outcome.report.skipped));
  assert.equal(outcome.report.skippedRows.records, 3);
  assert.equal(outcome.records.reduce((x, y) => x + y, 0), 1, 'only the untouched record loads');
  assert.deepEqual(outcome.channel, { code: 11, kind: 'blob_decode' });
  await page.close();
});

test('sealed backups: round trip with the store key and with a backup passphrase; tampering is code 14', async () => {
  const page = await env.open(RELEASE_PAGE, { ready: true });
  const name = uniqueName('enc-backup');
  const encryption = { passphrase: 'pw', kdf: KDF };
  await ok(page, writeRealistic, { name, encryption, wallets: [[W1, richChangeset()]] });
  const result = await ok(page, async ({ WalletStore }, { name, encryption }) => {
    const store = await WalletStore.open({ name, flushMode: 'manual', encryption });
    const byStore = await store.exportBackup();
    const byPass = await store.exportBackup({ backupPassphrase: 'backup secret' });
    const before = await store.load();
    await store.close();
    const magic = (b) => new TextDecoder().decode(b.slice(0, 4));
    const attempt = (p) => p.then((r) => ({ ok: r }), (e) => ({ code: e.code, message: e.message }));
    const out = { magics: [magic(byStore), magic(byPass)] };
    const needle = new TextEncoder().encode('tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx');
    const has = (hay) => hay.some((_, i) => needle.every((c, j) => hay[i + j] === c));
    out.readable = [has(byStore), has(byPass)];
    // Store-key backup back into the same store; passphrase backup into a new plain database.
    out.sameStore = await attempt(WalletStore.importBackup(name, byStore, { overwrite: true, encryption }));
    out.newPlain = await attempt(WalletStore.importBackup(`${name}-copy`, byPass, { backupPassphrase: 'backup secret' }));
    const copy = await WalletStore.open({ name: `${name}-copy`, flushMode: 'manual' });
    out.copyEqual = JSON.stringify((await copy.load()).wallets, (k, v) => (typeof v === 'bigint' ? `${v}n` : v)) ===
      JSON.stringify(before.wallets, (k, v) => (typeof v === 'bigint' ? `${v}n` : v));
    await copy.close();
    // Every tamper is refused before anything is read: a flipped byte in each region, a cut.
    out.tampered = [];
    for (const [bytes, opts] of [[byStore, { encryption }], [byPass, { encryption, backupPassphrase: 'backup secret' }]]) {
      for (const at of [5, 30, bytes.length >> 1, bytes.length - 1]) {
        const edited = bytes.slice();
        edited[at] ^= 0x04;
        out.tampered.push((await attempt(WalletStore.importBackup(name, edited, { overwrite: true, ...opts }))).code);
      }
      out.tampered.push((await attempt(WalletStore.importBackup(name, bytes.slice(0, -3), { overwrite: true, ...opts }))).code);
    }
    out.wrongPass = (await attempt(WalletStore.importBackup(`${name}-x`, byPass, { backupPassphrase: 'nope' }))).code;
    out.noKey = (await attempt(WalletStore.importBackup(`${name}-y`, byStore, {}))).code;
    out.wrongStoreSecret = (await attempt(WalletStore.importBackup(`${name}-z`, byStore, { encryption: { passphrase: 'nope', kdf: encryption.kdf } }))).code;
    const names = (await indexedDB.databases()).map((d) => d.name);
    out.refusedCreatedNothing = [`${name}-x`, `${name}-y`, `${name}-z`].filter((n) => names.includes(n));
    // The disaster case (the store's database lost): its store-key backup restores into a new
    // database opened with the same secret, exactly.
    out.restored = await attempt(WalletStore.importBackup(`${name}-restored`, byStore, { encryption }));
    const restored = await WalletStore.open({ name: `${name}-restored`, flushMode: 'manual', encryption });
    out.restoredEqual = JSON.stringify((await restored.load()).wallets, (k, v) => (typeof v === 'bigint' ? `${v}n` : v)) ===
      JSON.stringify(before.wallets, (k, v) => (typeof v === 'bigint' ? `${v}n` : v));
    await restored.close();
    const after = await WalletStore.open({ name, flushMode: 'manual', encryption });
    out.unchanged = (await after.load()).report.skipped.length === 0;
    await after.close();
    return out;
  }, { name, encryption });
  assert.deepEqual(result.magics, ['WPBE', 'WPBE']);
  assert.deepEqual(result.readable, [false, false]);
  assert.ok(result.sameStore.ok, show(result.sameStore));
  assert.ok(result.newPlain.ok, show(result.newPlain));
  assert.equal(result.copyEqual, true);
  assert.deepEqual(result.tampered, Array(10).fill(14));
  assert.equal(result.wrongPass, 14);
  assert.equal(result.noKey, 1);
  assert.equal(result.wrongStoreSecret, 14);
  assert.deepEqual(result.refusedCreatedNothing, [], 'a refused import creates no database');
  assert.ok(result.restored.ok, show(result.restored));
  assert.equal(result.restoredEqual, true, 'the store-key backup restores into a new database');
  assert.equal(result.unchanged, true);
  await page.close();
});

test('a second tab follows an encrypted writer with the same secret; a wrong one is refused', async () => {
  const writer = await env.open(RELEASE_PAGE, { ready: true });
  const follower = await env.open(RELEASE_PAGE, { ready: true });
  const name = uniqueName('enc-tabs');
  const encryption = { passphrase: 'shared', kdf: KDF };
  await ok(writer, async ({ WalletStore }, { name, encryption, cs }) => {
    window.__writer = await WalletStore.open({ name, flushMode: 'manual', encryption });
    await window.__writer.store('a1'.repeat(32), cs);
    await window.__writer.commit();
  }, { name, encryption, cs: smallChangeset() });
  const followed = await ok(follower, async ({ WalletStore }, { name }) => {
    const wrong = await WalletStore.open({ name, multiTab: 'follow', encryption: { passphrase: 'other' } }).then(
      () => null,
      (e) => e.code,
    );
    const store = await WalletStore.open({ name, multiTab: 'follow', encryption: { passphrase: 'shared' } });
    const loaded = await store.load();
    const out = { wrong, isWriter: store.isWriter, isEncrypted: store.isEncrypted, wallets: Object.keys(loaded.wallets), skipped: loaded.report.skipped.length };
    await store.close();
    return out;
  }, { name });
  assert.deepEqual(followed, { wrong: 23, isWriter: false, isEncrypted: true, wallets: [W1], skipped: 0 });
  await ok(writer, async () => window.__writer.close());
  await writer.close();
  await follower.close();
});

/** Crashes the page's renderer (a killed tab) while `operation` runs; resolves once it is dead. */
async function crashDuring(page, start, arg, delayMs) {
  const cdp = await page.context().newCDPSession(page);
  await page.evaluate(start, arg);
  // The delay counts from the moment the store is open and the operation starts (`__armed`).
  await page.waitForFunction(() => window.__armed === true, null, { polling: 1, timeout: 15_000 });
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  const within = (promise, ms) => Promise.race([promise, new Promise((resolve) => setTimeout(resolve, ms))]);
  const crashed = new Promise((resolve) => page.once('crash', resolve));
  // Page.crash never answers: the renderer is gone before it could.
  cdp.send('Page.crash').catch(() => {});
  await within(crashed, 5_000);
  await within(page.close().catch(() => {}), 5_000);
}

/** Seeds for the random kill points, printed so a failure can be replayed. */
const SEED = Number(process.env.ENC_SEED || Date.now() % 100_000);
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

test('changePassphrase interrupted by a killed page (>= 20 kills): exactly the old or the new passphrase opens', async () => {
  console.log(`changePassphrase kills: seed ${SEED}`);
  const random = rng(SEED);
  const name = uniqueName('enc-rotate');
  let page = await env.open(RELEASE_PAGE, { ready: true });
  // Argon2id costly enough (unlock of the old, wrap under the new) that kills land before, during and
  // after the one write.
  await ok(page, writeRealistic, { name, encryption: { passphrase: 'pass-0', kdf: ROTATE_KDF }, wallets: [[W1, richChangeset()]] });
  const expected = await ok(page, readAll, { name, encryption: { passphrase: 'pass-0' } });
  // How long one rotation takes here, so the kills land before, during and after it.
  const timed = await ok(page, async ({ WalletStore }, { name, kdf }) => {
    const store = await WalletStore.open({ name, flushMode: 'manual', encryption: { passphrase: 'pass-0' } });
    const t0 = performance.now();
    await store.changePassphrase('pass-0', { passphrase: 'pass-0', kdf });
    const ms = performance.now() - t0;
    await store.close();
    return ms;
  }, { name, kdf: ROTATE_KDF });
  await page.close();
  let current = 'pass-0';
  const outcomes = { old: 0, new: 0 };
  for (let kill = 1; kill <= 20; kill++) {
    page = await env.open(RELEASE_PAGE, { ready: true });
    const next = `pass-${kill}`;
    const delay = Math.floor(random() * (timed * 1.5 + 5));
    await crashDuring(page, ([name, old, next, kdf]) => {
      window.__rotation = (async () => {
        const { WalletStore } = await import('/pkg/wallet_persist.js');
        const store = await WalletStore.open({ name, flushMode: 'manual', encryption: { passphrase: old }, multiTab: 'wait' });
        window.__armed = true;
        await store.changePassphrase(old, { passphrase: next, kdf });
      })();
    }, [name, current, next, ROTATE_KDF], delay).catch(() => {});
    page = await env.open(RELEASE_PAGE, { ready: true });
    const withOld = await inPage(page, readAll, { name, encryption: { passphrase: current } });
    const withNew = await inPage(page, readAll, { name, encryption: { passphrase: next } });
    const opened = [withOld, withNew].filter((o) => o.ok);
    assert.equal(opened.length, 1, `kill ${kill} (seed ${SEED}, ${delay} ms): exactly one passphrase opens: ${JSON.stringify([withOld.error, withNew.error])}`);
    for (const failed of [withOld, withNew].filter((o) => o.error)) assert.equal(failed.error.code, 23);
    assert.deepEqual(opened[0].ok, expected, `kill ${kill}: the data is exactly as written`);
    if (withNew.ok) {
      current = next;
      outcomes.new++;
    } else outcomes.old++;
    await page.close();
  }
  console.log(`changePassphrase kills: ${JSON.stringify(outcomes)} (one rotation: ${timed.toFixed(1)} ms)`);
});

test('encrypt interrupted by a killed page (>= 20 kills): the plain database or the encrypted one, never a mix', async () => {
  console.log(`encrypt kills: seed ${SEED}`);
  const random = rng(SEED + 1);
  const outcomes = { plain: 0, encrypted: 0 };
  let page = await env.open(RELEASE_PAGE, { ready: true });
  const probe = uniqueName('enc-convert-probe');
  await ok(page, writeRealistic, { name: probe, wallets: [[W1, richChangeset()], [W2, rich2()]] });
  const expected = await ok(page, readAll, { name: probe });
  const timed = await ok(page, async ({ WalletStore }, { name }) => {
    const store = await WalletStore.open({ name, flushMode: 'manual' });
    const t0 = performance.now();
    const phases = [];
    const report = await store.encrypt({ passphrase: 'pw', kdf: { memoryKib: 1024, iterations: 1 }, onProgress: (e) => phases.push(e.phase) });
    const ms = performance.now() - t0;
    await store.close();
    return { ms, report, phases: [...new Set(phases)] };
  }, { name: probe });
  assert.deepEqual(timed.phases, ['seal', 'write']);
  assert.equal(timed.report.unreadable, 0);
  assert.deepEqual(await ok(page, readAll, { name: probe, encryption: { passphrase: 'pw' } }), { ...expected, encrypted: true });
  await page.close();
  for (let kill = 1; kill <= 20; kill++) {
    const name = uniqueName(`enc-convert-${kill}`);
    page = await env.open(RELEASE_PAGE, { ready: true });
    await ok(page, writeRealistic, { name, wallets: [[W1, richChangeset()], [W2, rich2()]] });
    const delay = Math.floor(random() * (timed.ms * 1.5 + 5));
    await crashDuring(page, ([name]) => {
      window.__conversion = (async () => {
        const { WalletStore } = await import('/pkg/wallet_persist.js');
        const store = await WalletStore.open({ name, flushMode: 'manual', multiTab: 'wait' });
        window.__armed = true;
        await store.encrypt({ passphrase: 'pw', kdf: { memoryKib: 1024, iterations: 1 } });
      })();
    }, [name], delay).catch(() => {});
    page = await env.open(RELEASE_PAGE, { ready: true });
    const asPlain = await inPage(page, readAll, { name });
    const asEncrypted = await inPage(page, readAll, { name, encryption: { passphrase: 'pw' } });
    const opened = [asPlain, asEncrypted].filter((o) => o.ok);
    assert.equal(opened.length, 1, `kill ${kill} (seed ${SEED}, ${delay} ms): exactly one way opens: ${JSON.stringify([asPlain.error, asEncrypted.error])}`);
    if (asPlain.ok) {
      assert.equal(asEncrypted.error.code, 1);
      assert.deepEqual(asPlain.ok, expected, `kill ${kill}: the old state exactly`);
      outcomes.plain++;
    } else {
      assert.equal(asPlain.error.code, 23);
      assert.deepEqual(asEncrypted.ok, { ...expected, encrypted: true }, `kill ${kill}: the new state exactly`);
      outcomes.encrypted++;
    }
    await page.close();
  }
  console.log(`encrypt kills: ${JSON.stringify(outcomes)} (one conversion: ${timed.ms.toFixed(1)} ms)`);
});

test('unlock time with the default Argon2id parameters (64 MiB, 10 passes) is reported', async () => {
  const page = await env.open(RELEASE_PAGE, { ready: true });
  const name = uniqueName('enc-unlock');
  const times = await ok(page, async ({ WalletStore }, { name }) => {
    const t0 = performance.now();
    const created = await WalletStore.open({ name, encryption: { passphrase: 'a passphrase of some length' } });
    const t1 = performance.now();
    await created.close();
    const unlocks = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const store = await WalletStore.open({ name, encryption: { passphrase: 'a passphrase of some length' } });
      unlocks.push(performance.now() - t);
      await store.close();
    }
    const app = performance.now();
    const keyed = await WalletStore.open({ name: `${name}-key`, encryption: { key: new Uint8Array(32).fill(1) } });
    const keyMs = performance.now() - app;
    await keyed.close();
    return { createMs: t1 - t0, unlocks, keyMs };
  }, { name });
  const median = [...times.unlocks].sort((a, b) => a - b)[1];
  // The machine's load is printed with it: on a shared 2-core machine the figure scales with it.
  console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`unlock (Argon2id 64 MiB x 10): create ${times.createMs.toFixed(0)} ms, unlock ${times.unlocks.map((t) => t.toFixed(0)).join(' / ')} ms (median ${median.toFixed(0)}); app key: ${times.keyMs.toFixed(1)} ms`);
  // Loose bounds: the parameters are stored, the figure is what matters (README).
  assert.ok(median > 50 && median < 30_000, `median unlock ${median} ms`);
  await page.close();
});

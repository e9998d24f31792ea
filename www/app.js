// wallet-persist demo: create wallets, stage changes, commit, load, survive a reload, and recover
// from an injected transient failure. Plain DOM, no framework, no network beyond this origin.
import init, { WalletStore, setLogLevel } from './pkg/wallet_persist.js';

const DB_NAME = 'wallet-persist-demo';

const $ = (id) => document.getElementById(id);
const buttons = ['create', 'stage', 'commit', 'load', 'reload', 'inject', 'retry', 'close'];

/** The open store (stays set after close(), so later calls show the `closed` error). */
let store;
/** What this page knows of each wallet (durable state from load() plus what it staged since). */
const known = new Map();
/** True between a failed injected flush and a successful retry. */
let retryArmed = false;

// ---- Random demo data ---------------------------------------------------------------------------

const randomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));
const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const randomHex32 = () => toHex(randomBytes(32));
const randomInt = (min, max) => min + Math.floor(Math.random() * (max - min + 1));
/** A uniformly random u64 as a bigint (often above 2^53, which a JS number cannot hold). */
const randomU64 = () => crypto.getRandomValues(new BigUint64Array(1))[0];
/** A random bigint in [min, max]. */
const randomBigInt = (min, max) => min + (randomU64() % (max - min + 1n));

const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const randomAddress = () => 'tb1q' + Array.from(randomBytes(38), (b) => BECH32[b & 31]).join('');
/** A pay-to-witness-pubkey-hash script: OP_0 PUSH20 <20 bytes>. */
const p2wpkhScript = () => Uint8Array.from([0x00, 0x14, ...randomBytes(20)]);

function randomUtxo(txid, vout, account, height) {
  const outpoint = `${txid}:${vout}`;
  return { outpoint, value: randomBigInt(10_000n, 50_000_000n), script: p2wpkhScript(), height, account };
}

/** A complete demo wallet changeset: accounts, addresses, transactions, UTXOs, tokens, sync state. */
function demoWallet(label) {
  const tip = randomInt(850_000, 900_000);
  const tpub = 'tpubD6NzVbkrYhZ4' + toHex(randomBytes(20));
  const cs = {
    wallet: { network: 'testnet', label, birthHeight: tip - 1_000, createdAtMs: BigInt(Date.now()), accountSchema: 1 },
    accounts: {
      0: { index: 0, kind: 'bip84', descriptor: `wpkh(${tpub}/0/*)` },
      1: { index: 1, kind: 'coinjoin', descriptor: `wpkh(${tpub}/1/*)` },
    },
    addresses: {},
    transactions: {},
    utxos: {},
    tokenBalances: {},
    syncState: { height: tip, tipHash: randomHex32(), lastSyncMs: BigInt(Date.now()) },
  };
  for (let index = 0; index < 5; index++) {
    const address = randomAddress();
    cs.addresses[address] = { address, account: 0, index, used: index < 3 };
  }
  for (let t = 0; t < 3; t++) {
    const txid = randomHex32();
    const height = tip - randomInt(1, 900);
    cs.transactions[txid] = {
      txid,
      raw: randomBytes(randomInt(120, 250)),
      height,
      timestampMs: BigInt(Date.now() - randomInt(1, 90) * 86_400_000),
      fee: randomBigInt(141n, 5_000n),
    };
    for (let vout = 0; vout < randomInt(1, 2); vout++) {
      const utxo = randomUtxo(txid, vout, t === 2 ? 1 : 0, height);
      cs.utxos[utxo.outpoint] = utxo;
    }
  }
  const identity = randomHex32();
  for (let i = 0; i < 2; i++) {
    const token = randomHex32();
    cs.tokenBalances[`${identity}:${token}`] = { identity, token, amount: randomU64() };
  }
  return cs;
}

// ---- Formatting ---------------------------------------------------------------------------------

const short = (hex) => `${hex.slice(0, 8)}…${hex.slice(-4)}`;
const sats = (n) => n.toLocaleString('en-US');

/** JSON for people: bigints as `123n`, bytes as `Uint8Array(20) 0014ab…`. */
function pretty(value) {
  return JSON.stringify(
    value,
    (_key, v) => {
      if (typeof v === 'bigint') return `${v}n`;
      if (v instanceof Uint8Array) return `Uint8Array(${v.length}) ${toHex(v.subarray(0, 8))}${v.length > 8 ? '…' : ''}`;
      return v;
    },
    2,
  );
}

const sumUtxos = (utxos) => Object.values(utxos).reduce((total, utxo) => total + utxo.value, 0n);

function showResult(title, value) {
  $('result').textContent = value === undefined ? title : `${title}\n${typeof value === 'string' ? value : pretty(value)}`;
}

function setStatus(text) {
  $('status').textContent = text;
}

function clearError() {
  $('error-section').hidden = true;
  const box = $('error');
  box.replaceChildren();
  for (const key of ['code', 'kind', 'retryable']) delete box.dataset[key];
}

/** Shows any rejection; a WalletPersistError with its code, kind and retryable flag. */
function showError(action, error) {
  const box = $('error');
  const typed = error && error.name === 'WalletPersistError';
  const summary = document.createElement('p');
  summary.id = 'error-summary';
  summary.textContent = typed
    ? `${action} rejected: code ${error.code} (${error.kind}), retryable: ${error.retryable}`
    : `${action} failed: ${error && error.name ? error.name : 'error'}`;
  const details = document.createElement('pre');
  details.id = 'error-details';
  const fields = { message: String(error && error.message !== undefined ? error.message : error) };
  if (typed && error.walletIds) fields.walletIds = error.walletIds;
  if (typed && error.detail) fields.detail = error.detail;
  details.textContent = pretty(fields);
  box.replaceChildren(summary, details);
  box.dataset.code = typed ? String(error.code) : '';
  box.dataset.kind = typed ? error.kind : '';
  box.dataset.retryable = typed ? String(error.retryable) : '';
  $('error-section').hidden = false;
  console.warn(`[demo] ${summary.textContent}`);
}

// ---- Rendering ----------------------------------------------------------------------------------

function cell(text, attrs = {}) {
  const td = document.createElement('td');
  td.textContent = text;
  for (const [key, value] of Object.entries(attrs)) td.setAttribute(key, value);
  return td;
}

function row(cells, attrs = {}) {
  const tr = document.createElement('tr');
  for (const [key, value] of Object.entries(attrs)) tr.setAttribute(key, value);
  tr.append(...cells);
  return tr;
}

async function renderStaged() {
  const body = $('staged').tBodies[0];
  let staged;
  try {
    staged = await store.staged();
  } catch (error) {
    showError('staged()', error);
    return;
  }
  body.replaceChildren(
    ...(staged.length === 0
      ? [row([cell('Nothing staged', { colspan: '2' })], { class: 'empty' })]
      : staged.map(({ walletId, fields }) =>
          row([cell(short(walletId), { title: walletId }), cell(String(fields), { class: 'fields' })], { 'data-wallet-id': walletId }),
        )),
  );
}

/** load() and render the durable state; returns the LoadResult. */
async function refreshDurable() {
  const { wallets, report } = await store.load();
  for (const [walletId, state] of Object.entries(wallets)) {
    known.set(walletId, { label: state.wallet ? state.wallet.label : '', utxos: { ...state.utxos }, tokenBalances: { ...state.tokenBalances } });
  }

  const walletRows = Object.entries(wallets).map(([walletId, state]) => {
    const total = sumUtxos(state.utxos);
    return row(
      [
        cell(short(walletId), { title: walletId }),
        cell(state.wallet ? state.wallet.label : '(no wallet record)'),
        cell(state.wallet ? state.wallet.network : ''),
        cell(String(Object.keys(state.utxos).length), { class: 'utxo-count' }),
        cell(sats(total), { class: 'balance', 'data-balance': total.toString() }),
        cell(String(Object.keys(state.tokenBalances).length)),
      ],
      { 'data-wallet-id': walletId },
    );
  });
  $('wallets').tBodies[0].replaceChildren(
    ...(walletRows.length ? walletRows : [row([cell('No wallets on disk yet', { colspan: '6' })], { class: 'empty' })]),
  );

  $('rows').tBodies[0].replaceChildren(
    ...Object.entries(report.rows).map(([storeName, n]) =>
      row([cell(storeName), cell(String(n), { class: 'count' })], { 'data-store': storeName }),
    ),
  );
  $('skipped').textContent = report.skipped.length === 0 ? 'none' : pretty(report.skipped);
  $('loaded-at').textContent = `Loaded at ${new Date().toLocaleTimeString('en-US')}: ${report.wallets} wallet(s).`;
  return { wallets, report };
}

// ---- Actions ------------------------------------------------------------------------------------

function setBusy(busy) {
  document.body.dataset.busy = busy ? '1' : '0';
  $('main').setAttribute('aria-busy', String(busy));
  for (const id of buttons) $(id).disabled = busy || (id === 'retry' && !retryArmed);
}

/** Runs one button's action: errors are shown, staged() is re-rendered afterwards. */
async function run(name, call, work) {
  setBusy(true);
  clearError();
  try {
    await work();
  } catch (error) {
    showError(call, error);
  } finally {
    if (store) await renderStaged();
    setBusy(false);
    document.body.dataset.actions = String(Number(document.body.dataset.actions) + 1);
    document.body.dataset.lastAction = name;
  }
}

/** The wallet to stage updates for: the most recently created or loaded one. */
function targetWallet() {
  const ids = [...known.keys()];
  return ids.length ? ids[ids.length - 1] : null;
}

/** Stages a new value for one UTXO, a new UTXO and a new token balance. Returns what was staged. */
async function stageBalanceUpdate(walletId) {
  const mine = known.get(walletId);
  const changes = { utxos: {}, tokenBalances: {} };
  const outpoints = Object.keys(mine.utxos);
  if (outpoints.length) {
    const outpoint = outpoints[randomInt(0, outpoints.length - 1)];
    changes.utxos[outpoint] = { ...mine.utxos[outpoint], value: randomBigInt(10_000n, 50_000_000n) };
  }
  const fresh = randomUtxo(randomHex32(), 0, 0, null);
  changes.utxos[fresh.outpoint] = fresh;
  const tokens = Object.keys(mine.tokenBalances);
  if (tokens.length) {
    const key = tokens[randomInt(0, tokens.length - 1)];
    changes.tokenBalances[key] = { ...mine.tokenBalances[key], amount: randomU64() };
  }
  await store.store(walletId, changes);
  Object.assign(mine.utxos, changes.utxos);
  Object.assign(mine.tokenBalances, changes.tokenBalances);
  return changes;
}

let created = 0;

const actions = {
  async create() {
    const walletId = randomHex32();
    const label = `Demo wallet ${new Date().toLocaleTimeString('en-US')}${created++ ? ` #${created}` : ''}`;
    const changes = demoWallet(label);
    await store.store(walletId, changes);
    known.set(walletId, { label, utxos: { ...changes.utxos }, tokenBalances: { ...changes.tokenBalances } });
    showResult('store(): staged a new wallet (not durable until Commit)', {
      walletId,
      label,
      utxos: Object.keys(changes.utxos).length,
      totalUtxoBalance: sumUtxos(changes.utxos),
      addresses: Object.keys(changes.addresses).length,
      transactions: Object.keys(changes.transactions).length,
      tokenBalances: Object.keys(changes.tokenBalances).length,
    });
    $('result').dataset.walletId = walletId;
    $('result').dataset.balance = sumUtxos(changes.utxos).toString();
  },

  async stage() {
    const walletId = targetWallet();
    if (!walletId) {
      showResult('Create a wallet first.');
      return;
    }
    const changes = await stageBalanceUpdate(walletId);
    showResult(`store(): staged a balance update for ${short(walletId)}`, changes);
  },

  async commit() {
    const report = await store.commit();
    showResult('commit() → CommitReport', report);
    await refreshDurable();
  },

  async load() {
    const { report } = await refreshDurable();
    const rows = Object.values(report.rows).reduce((a, b) => a + b, 0);
    showResult(`load(): ${report.wallets} wallet(s), ${rows} row(s), ${report.skipped.length} skipped`);
  },

  async reload() {
    setStatus('reloading…');
    location.reload();
  },

  async inject() {
    let walletId = targetWallet();
    if (!walletId) {
      showResult('Create a wallet first.');
      return;
    }
    if ((await store.staged()).length === 0) await stageBalanceUpdate(walletId);
    await store.failNext('write', 1, 'quota_exceeded');
    let report;
    try {
      report = await store.flush();
    } catch (error) {
      retryArmed = true;
      const staged = await store.staged();
      showResult(
        'failNext("write", 1, "quota_exceeded"), then flush() rejected.\nstaged() still lists:',
        staged.map(({ walletId: id, fields }) => `${id} (${fields} entries)`).join('\n'),
      );
      throw error;
    }
    showResult('flush() unexpectedly succeeded despite the injected failure', report);
  },

  async retry() {
    const report = await store.flush();
    retryArmed = false;
    showResult('flush() → CommitReport (the retry landed)', report);
    await refreshDurable();
  },

  async close() {
    const report = await store.close();
    retryArmed = false;
    showResult('close() → ShutdownReport: coordinators stopped, then the final flush. The store is closed: reload the page to reopen it.', report);
    setStatus('closed');
  },
};

/** The API call each button makes, as named in its error message. */
const calls = { create: 'store()', stage: 'store()', commit: 'commit()', load: 'load()', reload: 'reload', inject: 'flush()', retry: 'flush()', close: 'close()' };
for (const [id, action] of Object.entries(actions)) {
  $(id).addEventListener('click', () => run(id, calls[id], action));
}

// ---- Start --------------------------------------------------------------------------------------

async function start() {
  $('db-name').textContent = DB_NAME;
  try {
    await init();
    setLogLevel('info');
    store = await WalletStore.open({ name: DB_NAME, flushMode: 'manual' });
    const { report } = await refreshDurable();
    await renderStaged();
    setStatus(`open; ${report.wallets} wallet(s) loaded from IndexedDB`);
    showResult(`load() on start: ${report.wallets} wallet(s) rehydrated`);
    setBusy(false);
    window.__ready = true;
  } catch (error) {
    setStatus('failed to start');
    showError('WalletStore.open() / load()', error);
    window.__readyError = `${error && error.name}: ${error && error.message}`;
  }
}

start();

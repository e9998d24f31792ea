// wallet-persist demo: a small watch-only wallet dashboard. Wallets are registered in two phases,
// a simulated sync coordinator (running in the store's task registry) discovers their addresses,
// transactions, UTXOs, identities and token balances, and the live panel shows what is staged,
// what each commit and load did, storage use and flush latency. Plain DOM, no framework, nothing
// fetched beyond this origin.
import init, { WalletStore, isWalletPersistError, setLogLevel } from './pkg/index.js';
// bech32 (BIP 173) from @scure/base, mapped by the import map in index.html to node_modules.
import { bech32 } from '@scure/base';

const params = new URLSearchParams(location.search);
const DB_NAME = params.get('db') || 'wallet-persist-demo';
const RESTORE_NAME = `${DB_NAME}-restored`;
const SYNC_KEY = 'chain-sync';
const SYNC_INTERVAL_MS = 4_000;
/** Backoff before each retry of a transiently failed commit. */
const RETRY_DELAYS_MS = [1_500, 3_000, 6_000];
const AREAS = ['accounts', 'addresses', 'utxos', 'transactions', 'identities', 'identityKeys', 'contacts', 'assetLocks', 'tokenBalances', 'platformAddresses', 'records'];

const $ = (id) => document.getElementById(id);
const prefs = {
  get syncPaused() { return localStorage.getItem(`${DB_NAME}:sync`) === 'paused'; },
  set syncPaused(v) { localStorage.setItem(`${DB_NAME}:sync`, v ? 'paused' : 'running'); },
  get autoCommit() { return localStorage.getItem(`${DB_NAME}:auto-commit`) === '1'; },
  set autoCommit(v) { localStorage.setItem(`${DB_NAME}:auto-commit`, v ? '1' : '0'); },
  get logLevel() { return localStorage.getItem(`${DB_NAME}:log-level`) || 'warn'; },
  set logLevel(v) { localStorage.setItem(`${DB_NAME}:log-level`, v); },
};

/** The open store; stays set after close() so later calls show the `closed` error. */
let store;
/** What this page knows of each wallet: its durable state from load() plus everything staged since. */
const wallets = new Map();
let selected = null;
/** The last exported backup: { bytes, sha256, ms, at }. */
let lastBackup = null;
/** One entry per flush attempt: { ms, ok, attempt, at }; kept for this tab across reloads. */
const latencies = (() => {
  try {
    return JSON.parse(sessionStorage.getItem(`${DB_NAME}:latency`) || '[]').map((s) => ({ ...s, at: new Date(s.at) }));
  } catch {
    return [];
  }
})();
function recordLatency(sample) {
  latencies.push(sample);
  latencies.splice(0, Math.max(0, latencies.length - 200));
  sessionStorage.setItem(`${DB_NAME}:latency`, JSON.stringify(latencies));
  renderLatency();
}
const sync = { state: 'starting', passes: 0, lastPassMs: null, lastAt: null, lastError: null, manual: false };
/** Commits run one after another (the sync coordinator may commit too). */
let commitChain = Promise.resolve();

// ---- Simulated chain data -----------------------------------------------------------------------

const randomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));
const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const randomHex32 = () => toHex(randomBytes(32));
const randomInt = (min, max) => min + Math.floor(Math.random() * (max - min + 1));
const pick = (list) => list[randomInt(0, list.length - 1)];
/** A random bigint in [min, max]. */
const randomBig = (min, max) => min + (crypto.getRandomValues(new BigUint64Array(1))[0] % (max - min + 1n));
const HRP = { testnet: 'tb', regtest: 'bcrt', mainnet: 'bc' };
/** A P2WPKH address (witness v0, a random 20-byte program) with a valid BIP 173 checksum, and its script. */
function newAddress(network) {
  const program = randomBytes(20);
  const address = bech32.encode(HRP[network], [0, ...bech32.toWords(program)]);
  /** OP_0 PUSH20 <program>: the script an output paying this address carries. */
  return { address, script: Uint8Array.from([0x00, 0x14, ...program]) };
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function emptyModel(id) {
  const model = { id, wallet: null, syncState: null };
  for (const area of AREAS) model[area] = {};
  return model;
}

/** Applies a changeset to the page's model the way the store merges it: per key, newer wins, null deletes. */
function applyChanges(model, changes) {
  for (const [area, value] of Object.entries(changes)) {
    if (area === 'wallet' || area === 'syncState') {
      model[area] = value;
      continue;
    }
    for (const [key, entry] of Object.entries(value)) {
      if (entry === null) delete model[area][key];
      else model[area][key] = entry;
    }
  }
}

/** A fresh address of `account` at the wallet's next derivation index. */
function deriveAddress(model, account, changes) {
  const taken = [...Object.values(model.addresses), ...Object.values(changes.addresses)].filter((a) => a && a.account === account);
  const { address, script } = newAddress(model.wallet.network);
  changes.addresses[address] = { address, account, index: taken.length, used: false };
  return { address, script };
}

/** A transaction paying `value` to one of the wallet's addresses: the tx, its UTXO, the address marked used. */
function receive(model, changes, { height, account = 0, value = randomBig(20_000n, 80_000_000n) }) {
  const txid = randomHex32();
  const { address, script } = deriveAddress(model, account, changes);
  changes.addresses[address].used = true;
  changes.transactions[txid] = { txid, raw: randomBytes(randomInt(150, 260)), height, timestampMs: BigInt(Date.now()), fee: null };
  const outpoint = `${txid}:${randomInt(0, 1)}`;
  changes.utxos[outpoint] = { outpoint, value, script, height, account };
}

const blankChanges = () => ({ addresses: {}, transactions: {}, utxos: {}, identities: {}, identityKeys: {}, tokenBalances: {} });

/** The coordinator's first pass over a new wallet: everything its xpubs lead to. */
function initialScan(model) {
  const tip = chainTip();
  const changes = blankChanges();
  for (let i = 0; i < 4; i++) receive(model, changes, { height: tip - randomInt(10, 900) });
  receive(model, changes, { height: tip - randomInt(1, 9), account: 1 });
  for (let i = 0; i < 3; i++) deriveAddress(model, 0, changes); // the gap: unused receive addresses
  const identity = randomHex32();
  changes.identities[identity] = { id: identity, index: 0, revision: 1n, balance: randomBig(10n ** 10n, 10n ** 17n), blob: randomBytes(48) };
  changes.identityKeys[`${identity}:0`] = { identity, keyId: 0, purpose: 0, securityLevel: 0, publicKey: Uint8Array.from([0x02, ...randomBytes(32)]) };
  for (let i = 0; i < 2; i++) {
    const token = randomHex32();
    changes.tokenBalances[`${identity}:${token}`] = { identity, token, amount: randomBig(1n, 2n ** 64n - 1n) };
  }
  changes.syncState = { height: tip, tipHash: randomHex32(), lastSyncMs: BigInt(Date.now()) };
  return changes;
}

/** A later pass: a few new blocks, maybe a payment in or out, token and credit balances moving. */
function nextBlocks(model) {
  const height = Math.max(model.syncState.height, chainTip()) + randomInt(1, 3);
  const changes = blankChanges();
  if (Math.random() < 0.6) receive(model, changes, { height });
  const spendable = Object.values(model.utxos);
  if (spendable.length >= 2 && Math.random() < 0.35) {
    const spent = pick(spendable);
    const fee = randomBig(150n, 3_000n);
    if (spent.value > fee + 1_000n) {
      changes.utxos[spent.outpoint] = null; // tombstone: spent
      receive(model, changes, { height, account: 1, value: (spent.value - fee) / 2n });
      const [txid] = Object.keys(changes.transactions).slice(-1);
      changes.transactions[txid].fee = fee;
    }
  }
  const tokens = Object.values(model.tokenBalances);
  if (tokens.length) {
    const token = pick(tokens);
    changes.tokenBalances[`${token.identity}:${token.token}`] = { ...token, amount: randomBig(1n, 2n ** 64n - 1n) };
  }
  for (const identity of Object.values(model.identities)) {
    changes.identities[identity.id] = { ...identity, revision: identity.revision + 1n, balance: identity.balance + randomBig(0n, 10n ** 12n) };
  }
  changes.syncState = { height, tipHash: randomHex32(), lastSyncMs: BigInt(Date.now()) };
  return changes;
}

let simulatedTip = 870_000 + randomInt(0, 5_000);
function chainTip() {
  for (const model of wallets.values()) if (model.syncState && model.syncState.height > simulatedTip) simulatedTip = model.syncState.height;
  return simulatedTip;
}

// ---- Formatting ---------------------------------------------------------------------------------

const short = (hex) => `${hex.slice(0, 8)}…${hex.slice(-4)}`;
const UNIT = { testnet: 'tBTC', regtest: 'rBTC', mainnet: 'BTC' };
function btc(sats, network = 'testnet') {
  const whole = sats / 100_000_000n;
  const frac = (sats % 100_000_000n).toString().padStart(8, '0');
  return `${whole.toLocaleString('en-US')}.${frac} ${UNIT[network] || 'BTC'}`;
}
const big = (n) => BigInt(n).toLocaleString('en-US');
const ms = (n) => (n < 10 ? n.toFixed(1) : Math.round(n).toString()) + ' ms';
function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}
const timeOf = (date = new Date()) => date.toLocaleTimeString('en-GB');

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

/** A stable text form of a wallet's state, for comparing two databases. */
function canonical(value) {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return `0x${toHex(value)}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const sum = (values) => values.reduce((total, v) => total + v, 0n);
const balanceOf = (model) => sum(Object.values(model.utxos).map((u) => u.value));
const creditsOf = (model) => sum(Object.values(model.identities).map((i) => i.balance));

// ---- DOM helpers --------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key.startsWith('data-')) node.setAttribute(key, String(value));
    else if (value === false) continue;
    else if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false).map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
}
const td = (text, attrs = {}) => el('td', attrs, text);
const num = (text, attrs = {}) => el('td', { class: 'num', ...attrs }, text);

function log(kind, text) {
  const list = $('log');
  list.prepend(el('li', { class: kind, 'data-kind': kind }, el('time', {}, timeOf()), ' ', text));
  while (list.children.length > 60) list.lastChild.remove();
}

function setStatus(text, state = text) {
  $('status').textContent = text;
  $('status').dataset.state = state;
}

/** While the store is open, the header counts what the page holds now (not what open() loaded). */
function renderHeader() {
  if ($('status').dataset.state !== 'open') return;
  const staged = [...stagedFields.values()].filter((n) => n > 0).length;
  $('status').textContent = `open · ${wallets.size} wallet(s)${staged ? ` · ${staged} with staged changes` : ''}`;
  $('status').dataset.wallets = String(wallets.size);
}

// ---- Errors -------------------------------------------------------------------------------------

function clearError() {
  $('error-section').hidden = true;
  $('error').replaceChildren();
  for (const key of ['code', 'kind', 'retryable', 'resolved']) delete $('error').dataset[key];
}

/** The error the panel shows (so an action's own handler and `act` do not show it twice). */
let shownError;

/** Shows any rejection: a WalletPersistError with its code, kind, retryable flag, wallets and detail. */
function showError(call, error) {
  shownError = error;
  const box = $('error');
  const typed = isWalletPersistError(error);
  const summary = typed
    ? `${call} rejected: code ${error.code} (${error.kind}), retryable: ${error.retryable}`
    : `${call} failed: ${error && error.name ? error.name : 'error'} (not a WalletPersistError: thrown by the app's own code)`;
  const fields = { message: String(error && error.message !== undefined ? error.message : error) };
  if (typed && error.walletIds) fields.walletIds = error.walletIds;
  if (typed && error.detail) fields.detail = error.detail;
  box.replaceChildren(
    el('p', { id: 'error-summary' }, summary),
    typed
      ? el('dl', { class: 'error-fields' },
          el('dt', {}, 'code'), el('dd', { id: 'error-code' }, String(error.code)),
          el('dt', {}, 'kind'), el('dd', { id: 'error-kind' }, error.kind),
          el('dt', {}, 'retryable'), el('dd', { id: 'error-retryable' }, String(error.retryable)))
      : null,
    el('pre', { id: 'error-details' }, pretty(fields)),
    el('p', { id: 'error-resolution', hidden: true }),
  );
  box.dataset.code = typed ? String(error.code) : '';
  box.dataset.kind = typed ? error.kind : '';
  box.dataset.retryable = typed ? String(error.retryable) : '';
  delete box.dataset.resolved;
  $('error-section').hidden = false;
  log('error', summary);
  console.warn(`[demo] ${summary}`);
}

function markErrorResolved(text) {
  const note = $('error-resolution');
  if (!note) return;
  note.hidden = false;
  note.textContent = text;
  $('error').dataset.resolved = 'true';
}

// ---- Progress -----------------------------------------------------------------------------------

/** Shows progress of a long operation; `fraction` null means indeterminate. */
function showProgress(label, fraction, text = '') {
  $('progress').hidden = false;
  $('progress-label').textContent = label;
  const bar = $('progress-bar');
  if (fraction === null) bar.removeAttribute('value');
  else bar.value = Math.min(1, Math.max(0, fraction));
  $('progress-text').textContent = text;
  $('progress').dataset.label = label;
}
function hideProgress() {
  $('progress').hidden = true;
}
/** An `onProgress` callback that drives the progress bar. */
const progressTo = (call) => ({ phase, done, total }) =>
  showProgress(`${call}: ${phase}`, total ? done / total : null, `${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} rows`);

// ---- Rendering ----------------------------------------------------------------------------------

let stagedFields = new Map();

async function renderStaged() {
  let staged = [];
  try {
    staged = await store.staged();
  } catch (error) {
    if (!(isWalletPersistError(error) && error.kind === 'closed')) showError('staged()', error);
  }
  stagedFields = new Map(staged.map(({ walletId, fields }) => [walletId, fields]));
  renderHeader();
  $('staged').tBodies[0].replaceChildren(
    ...(staged.length === 0
      ? [el('tr', { class: 'empty' }, td('Nothing staged: everything is durable', { colspan: 2 }))]
      : staged.map(({ walletId, fields }) =>
          el('tr', { 'data-wallet-id': walletId }, td(`${labelOf(walletId)} · ${short(walletId)}`, { title: walletId }), num(String(fields), { class: 'num fields' })),
        )),
  );
  renderWallets();
}

const labelOf = (id) => (wallets.get(id) && wallets.get(id).wallet ? wallets.get(id).wallet.label : short(id));

function renderWallets() {
  const rows = [...wallets.values()]
    .sort((a, b) => Number((a.wallet ? a.wallet.createdAtMs : 0n) - (b.wallet ? b.wallet.createdAtMs : 0n)))
    .map((model) => {
      const network = model.wallet ? model.wallet.network : 'testnet';
      const balance = balanceOf(model);
      const credits = creditsOf(model);
      const fields = stagedFields.get(model.id) || 0;
      return el(
        'tr',
        { 'data-wallet-id': model.id, class: model.id === selected ? 'selected' : '', onclick: () => select(model.id) },
        td([model.wallet ? model.wallet.label : '(no wallet record)', el('small', { class: 'mono' }, short(model.id))], { class: 'label', title: model.id }),
        num(btc(balance, network), { class: 'num balance', 'data-balance': balance.toString() }),
        num(String(Object.keys(model.utxos).length), { class: 'num utxo-count' }),
        num(String(Object.keys(model.transactions).length), { class: 'num tx-count' }),
        num(big(credits), { class: 'num credits', 'data-credits': credits.toString() }),
        num(String(Object.keys(model.tokenBalances).length), { class: 'num token-count' }),
        num(model.syncState ? model.syncState.height.toLocaleString('en-US') : '—', { class: 'num height' }),
        td(fields ? el('span', { class: 'badge' }, `${fields} staged`) : el('span', { class: 'muted' }, 'durable'), { class: 'staged' }),
        td(el('button', { type: 'button', class: 'small danger delete', 'data-wallet-id': model.id, disabled: document.body.dataset.busy === '1', onclick: (event) => { event.stopPropagation(); act('delete', () => deleteWallet(model.id)); } }, 'Delete')),
      );
    });
  $('wallets').tBodies[0].replaceChildren(
    ...(rows.length ? rows : [el('tr', { class: 'empty' }, td('No wallets yet: create one above.', { colspan: 9 }))]),
  );
  renderHeader();
}

function select(id) {
  selected = id;
  renderWallets();
  renderDetail();
}

function renderDetail() {
  const model = selected && wallets.get(selected);
  if (!model) {
    $('detail').replaceChildren(el('p', { class: 'muted' }, 'Select a wallet.'));
    return;
  }
  const network = model.wallet ? model.wallet.network : 'testnet';
  const table = (caption, head, rows, limit = 6) =>
    el('table', { class: 'data compact' },
      el('caption', {}, `${caption} (${rows.length})`),
      el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.slice(0, limit), rows.length > limit ? el('tr', { class: 'empty' }, td(`+ ${rows.length - limit} more`, { colspan: head.length })) : null));
  $('detail').replaceChildren(
    el('p', {}, el('strong', {}, model.wallet ? model.wallet.label : '(no wallet record)'), ` · ${network} · `, el('code', {}, model.id),
      model.syncState ? ` · synced to ${model.syncState.height.toLocaleString('en-US')}` : ' · not synced yet'),
    el('div', { class: 'tables' },
      table('Accounts (keyless manifests)', ['#', 'kind', 'descriptor'], Object.values(model.accounts).map((a) =>
        el('tr', {}, td(a.index), td(a.kind), td(`${a.descriptor.slice(0, 28)}…`, { class: 'mono', title: a.descriptor })))),
      table('Addresses', ['address', 'acct/index', 'used'], Object.values(model.addresses).map((a) =>
        el('tr', {}, td(a.address, { class: 'mono address' }), td(`${a.account}/${a.index}`), td(a.used ? 'yes' : 'no')))),
      table('UTXOs', ['outpoint', 'value', 'height'], Object.values(model.utxos).map((u) =>
        el('tr', {}, td(`${short(u.outpoint)}`, { class: 'mono', title: u.outpoint }), num(btc(u.value, network)), num(u.height ?? 'mempool')))),
      table('Transactions', ['txid', 'height', 'fee'], Object.values(model.transactions).map((t) =>
        el('tr', {}, td(short(t.txid), { class: 'mono', title: t.txid }), num(t.height ?? 'mempool'), num(t.fee === null ? '—' : `${t.fee} sat`)))),
      table('Identities', ['id', 'credits', 'rev'], Object.values(model.identities).map((i) =>
        el('tr', {}, td(short(i.id), { class: 'mono', title: i.id }), num(big(i.balance)), num(String(i.revision))))),
      table('Token balances (u64)', ['token', 'amount'], Object.values(model.tokenBalances).map((t) =>
        el('tr', {}, td(short(t.token), { class: 'mono', title: t.token }), num(big(t.amount))))),
    ),
  );
}

function renderCommitReport(report, took, attempt, reason) {
  const line = (title, ids, cls) =>
    el('li', { class: cls }, `${title}: `, ids.length ? ids.map((id) => labelOf(id)).join(', ') : el('span', { class: 'muted' }, 'none'));
  $('commit-report').dataset.state = report.failed.length ? 'failed' : report.stillPending.length ? 'pending' : 'ok';
  $('commit-report').dataset.succeeded = report.succeeded.join(',');
  $('commit-report').replaceChildren(
    el('p', {}, `${timeOf()} · ${reason} · ${ms(took)}${attempt > 1 ? ` · attempt ${attempt}` : ''}`),
    el('ul', { class: 'report' },
      line('succeeded', report.succeeded, 'ok'),
      el('li', { class: report.failed.length ? 'bad' : '' }, 'failed: ', report.failed.length
        ? report.failed.map((f) => `${labelOf(f.walletId)} (code ${f.code} ${f.kind})`).join(', ')
        : el('span', { class: 'muted' }, 'none')),
      line('still pending', report.stillPending, report.stillPending.length ? 'warn' : '')),
    el('details', {}, el('summary', {}, 'CommitReport'), el('pre', { id: 'commit-json' }, pretty(report))),
  );
}

function renderLatency() {
  const svg = $('latency');
  const W = 320;
  const H = 120;
  const pad = { left: 34, right: 6, top: 8, bottom: 16 };
  const shown = latencies.slice(-40);
  const max = Math.max(5, ...shown.map((s) => s.ms));
  const scale = (v) => H - pad.bottom - (v / max) * (H - pad.top - pad.bottom);
  const ns = 'http://www.w3.org/2000/svg';
  const svgEl = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const slot = (W - pad.left - pad.right) / 40;
  const children = [
    svgEl('line', { x1: pad.left, y1: H - pad.bottom, x2: W - pad.right, y2: H - pad.bottom, class: 'axis' }),
    svgEl('line', { x1: pad.left, y1: pad.top, x2: pad.left, y2: H - pad.bottom, class: 'axis' }),
    svgEl('text', { x: pad.left - 4, y: pad.top + 8, class: 'tick', 'text-anchor': 'end' }, `${Math.ceil(max)} ms`),
    svgEl('text', { x: pad.left - 4, y: H - pad.bottom, class: 'tick', 'text-anchor': 'end' }, '0'),
    svgEl('text', { x: W - pad.right, y: H - 3, class: 'tick', 'text-anchor': 'end' }, 'flushes, oldest → newest'),
  ];
  shown.forEach((sample, i) => {
    const y = scale(sample.ms);
    const bar = svgEl('rect', {
      x: pad.left + 1 + i * slot, y, width: Math.max(2, slot - 2), height: Math.max(1, H - pad.bottom - y),
      class: sample.ok ? 'bar ok' : 'bar failed', 'data-ok': sample.ok,
    });
    bar.append(svgEl('title', {}, `${timeOf(sample.at)} · ${ms(sample.ms)} · ${sample.ok ? 'ok' : 'failed'}${sample.attempt > 1 ? ` (attempt ${sample.attempt})` : ''}`));
    children.push(bar);
  });
  svg.replaceChildren(...children);
  svg.dataset.samples = String(latencies.length);
  svg.dataset.failed = String(latencies.filter((s) => !s.ok).length);
  if (latencies.length) {
    const ok = latencies.filter((s) => s.ok).map((s) => s.ms).sort((a, b) => a - b);
    const median = ok.length ? ok[Math.floor(ok.length / 2)] : 0;
    const last = latencies[latencies.length - 1];
    $('latency-summary').textContent = `${latencies.length} flush(es), ${latencies.length - ok.length} failed · last ${ms(last.ms)} · median ${ms(median)}`;
  }
}

function renderLoadReport(report, took) {
  $('load-summary').textContent = `${timeOf()} · ${report.wallets} wallet(s), ${Object.values(report.rows).reduce((a, b) => a + b, 0)} rows in ${ms(took)} · ${report.skipped.length} skipped${report.scannedStores.length ? ` · read row by row: ${report.scannedStores.join(', ')}` : ''}`;
  $('load-summary').classList.remove('muted');
  $('rows').tBodies[0].replaceChildren(
    ...Object.entries(report.rows).map(([name, n]) =>
      el('tr', { 'data-store': name, class: report.skippedRows[name] ? 'bad' : '' }, td(name), num(String(n), { class: 'num count' }), num(String(report.skippedRows[name]), { class: 'num skipped' }))),
  );
  $('skipped').replaceChildren(
    report.skipped.length
      ? el('ul', { class: 'skipped' }, report.skipped.map((s) => el('li', {}, `${s.store} ${s.key}: code ${s.code} (${s.kind}) ${s.reason}`)))
      : el('p', { class: 'muted', id: 'skipped-none' }, 'No row skipped.'),
  );
}

async function renderStorage() {
  try {
    const { usage, quota } = await store.estimate();
    $('storage-meter').max = quota || 1;
    $('storage-meter').value = usage;
    $('storage').textContent = `${bytes(usage)} used of ${bytes(quota)} (${quota ? ((usage / quota) * 100).toFixed(3) : 0} %)`;
    $('storage').dataset.usage = String(usage);
  } catch (error) {
    $('storage').textContent = isWalletPersistError(error) ? `estimate() rejected: code ${error.code} (${error.kind})` : String(error);
  }
}

function renderSync() {
  const state = $('sync-state');
  state.dataset.state = sync.state;
  const parts = [{ running: `running every ${SYNC_INTERVAL_MS / 1000} s`, paused: 'paused', closed: 'stopped (store closed)', starting: 'starting…' }[sync.state] || sync.state];
  parts.push(`${sync.passes} pass(es)`);
  if (sync.lastAt) parts.push(`last ${timeOf(sync.lastAt)} (${ms(sync.lastPassMs)})`);
  if (sync.lastError) parts.push(`last error: ${sync.lastError}`);
  state.textContent = parts.join(' · ');
  $('sync-toggle').textContent = sync.state === 'paused' ? 'Resume sync' : 'Pause sync';
}

function renderAll() {
  renderWallets();
  renderDetail();
  renderSync();
}

// ---- The sync coordinator -----------------------------------------------------------------------

/** One pass of the coordinator: new data for every wallet, staged with store(); committed if asked. */
async function syncPass(signal) {
  if (sync.state === 'paused' && !sync.manual) return; // the first pass of a paused page
  const started = performance.now();
  let stagedWallets = 0;
  try {
    for (const model of [...wallets.values()]) {
      if (signal.aborted) return;
      if (model.deleting || !model.wallet) continue;
      const changes = model.syncState ? nextBlocks(model) : initialScan(model);
      try {
        await store.store(model.id, changes);
      } catch (error) {
        if (isWalletPersistError(error) && error.kind === 'wallet_not_found') continue; // deleted meanwhile
        throw error;
      }
      applyChanges(model, changes);
      stagedWallets++;
    }
    sync.lastError = null;
  } catch (error) {
    sync.lastError = isWalletPersistError(error) ? `code ${error.code} (${error.kind})` : String(error);
    throw error; // reported by the registry as a failed pass; the worker keeps running
  } finally {
    sync.passes++;
    sync.lastPassMs = performance.now() - started;
    sync.lastAt = new Date();
    renderAll();
    await renderStaged();
  }
  if (stagedWallets && prefs.autoCommit && !signal.aborted) await commitWithRetry('after a sync pass', signal).catch(() => {});
}

const workerSpec = () => ({ key: SYNC_KEY, weight: 0, intervalMs: SYNC_INTERVAL_MS, pass: syncPass });

async function startSync() {
  sync.state = 'running';
  await store.tasks.start(workerSpec());
  renderSync();
}

async function pauseSync() {
  sync.state = 'paused';
  renderSync();
  const status = await store.tasks.quiesce(SYNC_KEY, { timeoutMs: 5_000 });
  log('info', `tasks.quiesce('${SYNC_KEY}') → ${status}: no pass runs until you resume`);
}

async function syncNow() {
  if (wallets.size === 0) {
    log('info', 'Nothing to sync: create a wallet first.');
    return;
  }
  sync.manual = true;
  try {
    const outcome = await store.tasks.syncNow(SYNC_KEY);
    log(outcome === 'ran' ? 'ok' : 'info', `tasks.syncNow('${SYNC_KEY}') → ${outcome}`);
  } finally {
    sync.manual = false;
  }
}

// ---- Commit with retry --------------------------------------------------------------------------

function setRetry(state, text) {
  $('retry-status').dataset.state = state;
  $('retry-status').textContent = text;
}

/** Commits everything staged (store.flush()); a transient failure is retried with backoff. */
function commitWithRetry(reason, signal) {
  const run = commitChain.then(() => flushWithRetry(reason, signal));
  commitChain = run.catch(() => {});
  return run;
}

async function flushWithRetry(reason, signal) {
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    try {
      const report = await store.flush();
      const took = performance.now() - started;
      recordLatency({ ms: took, ok: true, attempt, at: new Date() });
      renderCommitReport(report, took, attempt, reason);
      if (attempt > 1) {
        const text = `The retry landed on attempt ${attempt}: ${report.succeeded.map(labelOf).join(', ') || 'nothing'} durable, nothing lost.`;
        setRetry('landed', text);
        markErrorResolved(`Resolved: ${text}`);
        log('ok', text);
      } else {
        setRetry('idle', '');
        log('ok', `flush() (${reason}): ${report.succeeded.length} wallet(s) durable in ${ms(took)}`);
      }
      await renderStaged();
      renderStorage();
      return report;
    } catch (error) {
      recordLatency({ ms: performance.now() - started, ok: false, attempt, at: new Date() });
      showError(`flush() (${reason}, attempt ${attempt})`, error);
      await renderStaged();
      const kept = [...stagedFields].map(([id, n]) => `${labelOf(id)} (${n} fields)`).join(', ');
      if (kept) log('warn', `Still staged after the failure: ${kept}`);
      if (!isWalletPersistError(error) || !error.retryable || attempt > RETRY_DELAYS_MS.length || (signal && signal.aborted)) {
        setRetry('gave-up', `Not retried: ${isWalletPersistError(error) && error.retryable ? 'too many attempts' : 'the error is not retryable'}.`);
        throw error;
      }
      const delay = RETRY_DELAYS_MS[attempt - 1];
      for (let left = delay; left > 0; left -= 250) {
        setRetry('waiting', `Retry ${attempt} of ${RETRY_DELAYS_MS.length} in ${(left / 1000).toFixed(1)} s · the staged changes are kept in the buffer`);
        await sleep(Math.min(250, left));
        if (signal && signal.aborted) break;
      }
      setRetry('retrying', `Retrying (attempt ${attempt + 1})…`);
    }
  }
}

// ---- Actions ------------------------------------------------------------------------------------

const actionControls = ['commit', 'reload', 'inject', 'export', 'import', 'import-file', 'close', 'create', 'sync-toggle', 'sync-now'];

function setBusy(busy) {
  document.body.dataset.busy = busy ? '1' : '0';
  for (const id of actionControls) $(id).disabled = busy || (id === 'import' && !lastBackup);
  for (const button of document.querySelectorAll('button.delete')) button.disabled = busy;
}

/** Runs one user action: errors are shown with code, kind and retryable; the panels refresh after. */
async function act(name, work) {
  if (document.body.dataset.busy === '1') return;
  setBusy(true);
  clearError();
  try {
    await work();
  } catch (error) {
    if (error !== shownError) showError(name, error);
  } finally {
    hideProgress();
    if (store) await renderStaged();
    renderAll();
    setBusy(false);
    document.body.dataset.lastAction = name;
    document.body.dataset.actions = String(Number(document.body.dataset.actions) + 1);
  }
}

async function createWallet() {
  const label = $('label').value.trim() || 'Wallet';
  const network = $('network').value;
  const failInit = $('fail-init').checked;
  const id = randomHex32();
  const xpub = `tpubD6NzVbkrYhZ4${toHex(randomBytes(24))}`;
  const changes = {
    wallet: { network, label, birthHeight: chainTip() - 1_000, createdAtMs: BigInt(Date.now()), accountSchema: 1 },
    accounts: {
      0: { index: 0, kind: 'bip84', descriptor: `wpkh([${toHex(randomBytes(4))}/84h/1h/0h]${xpub}/0/*)` },
      1: { index: 1, kind: 'bip84-change', descriptor: `wpkh([${toHex(randomBytes(4))}/84h/1h/0h]${xpub}/1/*)` },
    },
  };
  log('info', `registerWallet(${short(id)}): staging "${label}" under pending…`);
  try {
    await store.registerWallet(id, changes, async () => {
      // The app's own step between stage and promote, e.g. subscribing the xpubs at a sync server.
      showProgress('registerWallet(): init step', null, 'subscribing the account descriptors…');
      await sleep(300);
      if (failInit) throw new Error('simulated init failure: the sync server rejected the descriptors');
    });
  } catch (error) {
    showError('registerWallet()', error);
    const { wallets: onDisk } = await store.load();
    log('warn', `Registration rolled back: load() finds ${onDisk[id] ? 'the wallet (unexpected!)' : 'no trace of it'}; retrying with the same id would succeed.`);
    return;
  }
  const model = emptyModel(id);
  applyChanges(model, changes);
  model.wallet = { ...changes.wallet, walletId: id };
  wallets.set(id, model);
  selected = id;
  log('ok', `registerWallet(): "${label}" promoted (wallet record and ${Object.keys(changes.accounts).length} accounts durable).`);
  renderAll();
  await syncNow(); // its first scan; staged until you commit
}

async function deleteWallet(id) {
  const label = labelOf(id);
  const model = wallets.get(id);
  if (model) model.deleting = true;
  try {
    const report = await store.deleteWallet(id);
    wallets.delete(id);
    if (selected === id) selected = null;
    log('ok', `deleteWallet(): "${label}" gone (every row, one transaction); ${report.discardedStagedFields} staged field(s) discarded.`);
    renderStorage();
  } catch (error) {
    if (model) model.deleting = false;
    throw error;
  }
}

async function injectFailure() {
  if ((await store.staged()).length === 0) {
    if (wallets.size === 0) {
      log('info', 'Create a wallet first: a failure needs something staged to flush.');
      return;
    }
    await syncNow(); // something to flush
  }
  await store.failNext('write', 1, 'quota_exceeded');
  log('warn', "store.failNext('write', 1, 'quota_exceeded'): the next IndexedDB write fails as if the disk were full.");
  await commitWithRetry('injected failure');
}

async function exportBackup() {
  const staged = await store.staged();
  if (staged.length) log('warn', `${staged.length} wallet(s) have staged changes: a backup holds durable rows only (commit first to include them).`);
  showProgress('exportBackup()', 0);
  const started = performance.now();
  const data = await store.exportBackup({ onProgress: progressTo('exportBackup()') });
  const took = performance.now() - started;
  const sha256 = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', data)));
  if (lastBackup && lastBackup.url) URL.revokeObjectURL(lastBackup.url);
  const url = URL.createObjectURL(new Blob([data], { type: 'application/octet-stream' }));
  lastBackup = { bytes: data, sha256, ms: took, at: new Date(), url };
  $('compare-section').hidden = false;
  $('compare').replaceChildren(
    el('p', { id: 'backup-info', 'data-bytes': data.length, 'data-sha256': sha256 },
      `Backup: ${bytes(data.length)} exported in ${ms(took)} · SHA-256 ${sha256.slice(0, 16)}… · `,
      el('a', { href: url, download: `${DB_NAME}-${Date.now()}.wpbackup` }, 'download')),
  );
  log('ok', `exportBackup(): ${bytes(data.length)} in ${ms(took)}`);
}

/** Imports `data` into the second database (replacing it) and compares it with this one. */
async function importAndCompare(data, source) {
  showProgress('importBackup()', 0);
  const started = performance.now();
  const report = await WalletStore.importBackup(RESTORE_NAME, data, { overwrite: true, onProgress: progressTo('importBackup()') });
  const took = performance.now() - started;
  log('ok', `importBackup('${RESTORE_NAME}'): ${report.rows} rows, ${report.wallets} wallet(s) from a backup taken ${new Date(Number(report.createdAtMs)).toLocaleString('en-GB')} in ${ms(took)}`);

  showProgress('load() of both databases', null);
  const copy = await WalletStore.open({ name: RESTORE_NAME, autoFlush: false });
  let restored;
  try {
    restored = await copy.load();
  } finally {
    await copy.close();
  }
  const original = await store.load();
  const ids = [...new Set([...Object.keys(original.wallets), ...Object.keys(restored.wallets)])];
  const rows = ids.map((id) => {
    const a = original.wallets[id];
    const b = restored.wallets[id];
    const same = Boolean(a && b) && canonical(a) === canonical(b);
    const label = (a || b).wallet ? (a || b).wallet.label : short(id);
    const network = (a || b).wallet ? (a || b).wallet.network : 'testnet';
    return { id, label, same, a: a ? balanceOf(a) : null, b: b ? balanceOf(b) : null, network };
  });
  const sameRows = canonical(original.report.rows) === canonical(restored.report.rows);
  const identical = rows.every((r) => r.same) && sameRows;
  $('compare-section').hidden = false;
  $('compare').replaceChildren(
    ...(source === 'export' && $('backup-info') ? [$('backup-info')] : []),
    el('p', { id: 'compare-verdict', class: identical ? 'ok' : 'bad', 'data-identical': identical },
      identical
        ? `Identical: every row of ${ids.length} wallet(s) in "${RESTORE_NAME}" equals this database (${source === 'file' ? 'from a file' : 'from the last export'}).`
        : `Different: see the rows marked ✗ (the imported database is "${RESTORE_NAME}").`),
    el('table', { class: 'data compact', id: 'compare-table' },
      el('thead', {}, el('tr', {}, ['Wallet', 'Balance here', 'Balance imported', 'Same rows'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.map((r) =>
        el('tr', { 'data-wallet-id': r.id, 'data-same': r.same },
          td(r.label), num(r.a === null ? '—' : btc(r.a, r.network), { class: 'num here', 'data-balance': r.a ?? '' }),
          num(r.b === null ? '—' : btc(r.b, r.network), { class: 'num imported', 'data-balance': r.b ?? '' }), td(r.same ? '✓' : '✗'))))),
  );
  renderStorage();
}

async function importFile(file) {
  const data = new Uint8Array(await file.arrayBuffer());
  log('info', `Importing ${file.name} (${bytes(data.length)})…`);
  await importAndCompare(data, 'file');
}

async function closeStore() {
  const report = await store.close();
  sync.state = 'closed';
  setStatus('closed: reload the page to open it again', 'closed');
  $('shutdown-section').hidden = false;
  $('shutdown').dataset.clean = String(report.clean);
  $('shutdown').replaceChildren(
    el('p', { id: 'shutdown-clean', class: report.clean ? 'ok' : 'bad' }, report.clean ? 'clean: nothing left running, the final flush landed' : 'NOT clean: see the workers below'),
    el('table', { class: 'data compact', id: 'shutdown-workers' },
      el('thead', {}, el('tr', {}, ['Worker (stop order)', 'Weight', 'Status'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, report.workers.map((w) => el('tr', { 'data-key': w.key, 'data-status': w.status }, td(w.key), num(w.key === 'persister' ? 'last' : String(w.weight)), td(w.error ? `${w.status}: ${w.error}` : w.status))))),
    el('p', {}, `final flush: ${report.flush.succeeded.length} wallet(s) written, ${report.flush.failed.length} failed, ${report.flush.stillPending.length} pending`),
  );
  $('shutdown-section').scrollIntoView({ block: 'nearest' });
  log('ok', `close() → ShutdownReport: clean ${report.clean}; ${report.workers.map((w) => `${w.key} ${w.status}`).join(', ')}. Every call now rejects with code 20 (closed).`);
}

// ---- Wiring -------------------------------------------------------------------------------------

$('commit').addEventListener('click', () => act('commit', () => commitWithRetry('Commit button')));
$('reload').addEventListener('click', () => {
  setStatus('reloading…');
  location.reload();
});
$('inject').addEventListener('click', () => act('inject', injectFailure));
$('export').addEventListener('click', () => act('export', exportBackup));
$('import').addEventListener('click', () => act('import', () => importAndCompare(lastBackup.bytes, 'export')));
$('import-file').addEventListener('change', (event) => {
  const [file] = event.target.files;
  event.target.value = '';
  if (file) act('import-file', () => importFile(file));
});
$('close').addEventListener('click', () => act('close', closeStore));
$('create-form').addEventListener('submit', (event) => {
  event.preventDefault();
  act('create', createWallet);
});
$('sync-toggle').addEventListener('click', () =>
  act('sync-toggle', async () => {
    if (sync.state === 'paused') {
      prefs.syncPaused = false;
      await startSync();
      log('info', `tasks.start('${SYNC_KEY}'): a pass now, then every ${SYNC_INTERVAL_MS / 1000} s`);
    } else {
      prefs.syncPaused = true;
      await pauseSync();
    }
  }),
);
$('sync-now').addEventListener('click', () => act('sync-now', syncNow));
$('auto-commit').addEventListener('change', (event) => {
  prefs.autoCommit = event.target.checked;
});
$('log-level').addEventListener('change', (event) => {
  setLogLevel(event.target.value);
  prefs.logLevel = event.target.value;
  log('info', `setLogLevel('${event.target.value}')`);
});

// ---- Start --------------------------------------------------------------------------------------

async function start() {
  $('db-name').textContent = DB_NAME;
  $('auto-commit').checked = prefs.autoCommit;
  $('log-level').value = prefs.logLevel;
  try {
    await init();
    setLogLevel(prefs.logLevel);
    store = await WalletStore.open({ name: DB_NAME, flushMode: 'manual' });
    const { schemaVersion, migratedFrom, discardedPending } = store.openReport;
    log('info', `WalletStore.open('${DB_NAME}'): schema ${schemaVersion}${migratedFrom !== null ? `, migrated from ${migratedFrom}` : ''}${discardedPending.length ? `, ${discardedPending.length} unfinished registration(s) discarded` : ''}`);

    showProgress('load()', null, 'reading every area store…');
    const started = performance.now();
    const { wallets: states, report } = await store.load();
    const took = performance.now() - started;
    for (const [id, state] of Object.entries(states)) wallets.set(id, { id, ...state });
    selected = Object.keys(states)[0] || null;
    renderLoadReport(report, took);
    hideProgress();
    log('ok', `load(): ${report.wallets} wallet(s) rehydrated in ${ms(took)}`);

    if (prefs.syncPaused) {
      // Registered (so that "Sync now" works) but paused: its first pass is a no-op, no loop.
      sync.state = 'paused';
      await store.tasks.start(workerSpec());
      await store.tasks.stop(SYNC_KEY);
    } else {
      await startSync(); // one pass at once, then every interval
    }
    store.onChange(({ walletIds, origin }) => {
      // Our own commits and deletes are "local" and already in the page; another tab's are not.
      if (origin === 'remote') log('info', `Another tab committed ${walletIds.length} wallet(s): reload to see them.`);
    });
    await renderStaged();
    renderAll();
    renderStorage();
    renderLatency();
    setStatus(`open · ${report.wallets} wallet(s) loaded`, 'open');
    renderHeader();
    setBusy(false);
    window.__ready = true;
  } catch (error) {
    hideProgress();
    setStatus('failed to start', 'failed');
    showError('WalletStore.open() / load()', error);
    window.__readyError = `${error && error.name}: ${error && error.message}`;
  }
}

start();

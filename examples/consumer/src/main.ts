// A tiny watch-only wallet that uses wallet-persist as a downstream app would: the package comes
// from `wallet-persist` (../../pkg by path), the code is type-checked with `tsc --strict`, and Vite
// bundles it together with the .wasm. tests/e2e/consumer.test.mjs builds it, serves dist/, and
// runs it twice in headless Chromium: the first visit registers and commits a wallet, the second
// (after a reload) finds the same balance on disk.
import init, {
  ErrorCode,
  WalletPersistError,
  WalletStore,
  isWalletPersistError,
  setLogLevel,
  type CommitReport,
  type Hex32,
  type ImportReport,
  type ProgressEvent,
  type ShutdownReport,
  type WalletChangeSet,
  type WalletState,
} from 'wallet-persist';

const WALLET: Hex32 = 'c0'.repeat(32);
const TXID: Hex32 = '7a'.repeat(32);
const OUTPOINT = `${TXID}:1`;
/** Above Number.MAX_SAFE_INTEGER: u64 amounts cross as `bigint`, exactly. */
const BIG_VALUE = 2n ** 53n + 1n;

/** A wallet as a sync coordinator would first describe it. */
function registration(label: string): WalletChangeSet {
  return {
    wallet: { network: 'testnet', label, birthHeight: 850_000, createdAtMs: BigInt(Date.now()), accountSchema: 1 },
    accounts: { 0: { index: 0, kind: 'bip84', descriptor: 'wpkh(tpubD6NzVbkrYhZ4WaWSyoBvQwbpLkojyoTZPRsgXELWz3Popb3qkjcJyJUGLnL4qHHoQvao8ESaAstxYSnhyswJ76uZPStJRJCTKvosUCJZL5B/0/*)' } },
  };
}

/** The balance of one wallet's UTXOs. */
function balance(state: WalletState): bigint {
  return Object.values(state.utxos).reduce((sum, utxo) => sum + utxo.value, 0n);
}

interface Refusal {
  call: string;
  code: ErrorCode;
  kind: string;
  retryable: boolean;
}

/** Runs `call` expecting a rejection; returns the typed error's code, kind and retryable flag. */
async function refusal(call: string, run: () => Promise<unknown>): Promise<Refusal> {
  try {
    await run();
  } catch (error: unknown) {
    if (!isWalletPersistError(error)) throw error;
    // `error` is a WalletPersistError here: code, kind, retryable, walletIds?, detail? are typed.
    return { call, code: error.code, kind: error.kind, retryable: error.retryable };
  }
  throw new Error(`${call} resolved, expected a WalletPersistError`);
}

interface Summary {
  firstVisit: boolean;
  balance: string;
  valueType: string;
  labels: string[];
  commit: CommitReport | null;
  refusals: Refusal[];
  syncHeight: number | null;
  backup: { bytes: number; progress: ProgressEvent['phase'][]; imported: ImportReport; copyBalance: string } | null;
  shutdown: ShutdownReport;
  /** Whether a rejection is an instance of the exported WalletPersistError class. */
  errorClass: boolean;
}

async function run(db: string): Promise<Summary> {
  await init();
  setLogLevel('warn');
  const store = await WalletStore.open({ name: db, flushMode: 'manual' });
  const firstVisit = !((await store.load()).wallets[WALLET]);
  let commit: CommitReport | null = null;
  const refusals: Refusal[] = [];

  if (firstVisit) {
    // Two-phase registration: staged under `pending`, `init` runs, then promoted atomically.
    await store.registerWallet(WALLET, registration('Consumer'), async () => {
      /* e.g. derive the first addresses, subscribe to the wallet's scripts */
    });
    await store.store(WALLET, {
      utxos: { [OUTPOINT]: { outpoint: OUTPOINT, value: BIG_VALUE, script: new Uint8Array([0x51]), height: 850_010, account: 0 } },
    });
    commit = await store.commit();
    refusals.push(await refusal('registerWallet (exists)', () => store.registerWallet(WALLET, registration('again'), () => {})));
    refusals.push(await refusal('store (bad id)', () => store.store('not-a-wallet-id', {})));
  }

  // A coordinator: one pass at once (it stages a sync checkpoint); close() stops it before the final flush.
  await store.tasks.start({
    key: 'core-sync',
    weight: 0,
    intervalMs: 60_000,
    pass: async (signal) => {
      if (signal.aborted) return;
      await store.store(WALLET, { syncState: { height: 850_100, tipHash: 'ee'.repeat(32), lastSyncMs: Date.now() } });
    },
  });
  await store.tasks.quiesce('core-sync', { timeoutMs: 5_000 });
  await store.commit();

  const { wallets } = await store.load();
  const mine = wallets[WALLET];
  if (!mine) throw new Error('the wallet is not on disk');
  const utxo = mine.utxos[OUTPOINT];

  let backup: Summary['backup'] = null;
  if (firstVisit) {
    const progress: ProgressEvent['phase'][] = [];
    const onProgress = (event: ProgressEvent): void => {
      if (!progress.includes(event.phase)) progress.push(event.phase);
    };
    const bytes = await store.exportBackup({ onProgress });
    const imported = await WalletStore.importBackup(`${db}-copy`, bytes, { overwrite: true, onProgress });
    const copy = await WalletStore.open({ name: `${db}-copy` });
    const copied = (await copy.load()).wallets[WALLET];
    await copy.close();
    backup = { bytes: bytes.length, progress, imported, copyBalance: copied ? balance(copied).toString() : 'missing' };
  }

  const shutdown = await store.close({ timeoutMs: 5_000 });
  refusals.push(await refusal('load (closed)', () => store.load()));
  const errorClass = await store.load().then(
    () => false,
    (error: unknown) => error instanceof WalletPersistError && error.code === ErrorCode.Closed,
  );

  return {
    firstVisit,
    balance: balance(mine).toString(),
    valueType: typeof utxo?.value,
    labels: Object.values(wallets).map((state) => state.wallet?.label ?? '(none)'),
    commit,
    refusals,
    syncHeight: mine.syncState ? mine.syncState.height : null,
    backup,
    shutdown,
    errorClass,
  };
}

declare global {
  interface Window {
    __ready?: unknown;
    __readyError?: string;
  }
}

const status = document.getElementById('status');
const out = document.getElementById('out');
const db = new URLSearchParams(location.search).get('db') ?? 'wallet-persist-consumer';
run(db).then(
  (summary) => {
    const json = JSON.stringify(summary, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2);
    if (out) out.textContent = json;
    if (status) status.textContent = summary.firstVisit ? 'registered and committed' : 'rehydrated';
    window.__ready = JSON.parse(json);
  },
  (error: unknown) => {
    // isWalletPersistError is plain JS: safe even when this is init() failing (the .wasm not served).
    const message = isWalletPersistError(error)
      ? `WalletPersistError ${error.code} (${error.kind}): ${error.message}`
      : error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    if (status) status.textContent = `failed: ${message}`;
    window.__readyError = message;
  },
);

//! Precise TypeScript definitions for everything the JS API accepts and returns.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** 64 lowercase hex characters. */
export type Hex32 = string;
/** `"<txid hex>:<vout>"`. */
export type OutPointString = string;
export type LogLevel = "error" | "warn" | "info" | "debug";
export type FlushMode = "manual" | "immediate";

export interface OpenOptions {
  /** The IndexedDB database name. */
  name: string;
  /** `"manual"` (default): changes stay staged until `flush`/`commit`/`close`.
   *  `"immediate"`: every `store` flushes its wallet before it resolves. */
  flushMode?: FlushMode;
  /** Largest encoded value accepted, 1..=16 MiB (default 16 MiB). */
  maxBlobBytes?: number;
  /** When another tab or worker already has this database open as the writer:
   *  `"refuse"` (default): reject `already_open` (16); `"wait"`: wait until it closes, up to
   *  `openTimeoutMs` (then `timeout`, 18); `"follow"`: open a read-only follower (`isWriter` false:
   *  `load` and `onChange` work, writes reject 16). */
  multiTab?: "refuse" | "wait" | "follow";
  /** Upper bound for opening the database and for `multiTab: "wait"` (default 10000). An upgrade
   *  still blocked by another tab then rejects `upgrade_blocked` (8), anything else `timeout` (18). */
  openTimeoutMs?: number;
  /** Upper bound on the time every IndexedDB write, read and reconnect may go without progress
   *  (default 30000): each chunk of a write or a load is progress, so a large commit or load runs
   *  to its end however long it takes. A call with no progress for this long rejects `timeout`
   *  (18, retryable) with its changes kept staged; the next call (or `reopen()`) replaces the
   *  wedged connection. */
  timeoutMs?: number;
  /** Flush staged changes, and write queued channel history, when the page is hidden or unloaded
   *  (`visibilitychange`, `pagehide`). Default `true`. */
  autoFlush?: boolean;
  /** Strict IndexedDB durability for deletes (resolved = on disk even after a power cut).
   *  Default `false` (the browser's relaxed default). */
  strictDurability?: boolean;
  /** Encryption at rest: every value sealed, every key hashed (see the README). A new, empty
   *  database is created encrypted. An encrypted one needs its secret (`wrong_key`, 23, when
   *  missing or wrong, nothing read or written). A plain one with rows is refused
   *  (`invalid_argument`, 1): open it plain, then `encrypt()`. */
  encryption?: EncryptionOptions;
}
/** A passphrase (stretched with Argon2id) or a 32-byte key the app keeps. */
export type EncryptionSecret = { passphrase: string; key?: never } | { key: Uint8Array; passphrase?: never };
/** Argon2id cost for a new key record: KiB of memory and passes (default 65536 KiB, 10 passes). */
export interface KdfOptions { memoryKib: number; iterations: number; }
export type EncryptionOptions = EncryptionSecret & { kdf?: KdfOptions };
/** `store.encrypt(...)`: the secret, and progress (`phase` "seal" then "write"). */
export type EncryptOptions = EncryptionOptions & { onProgress?: (event: ProgressEvent) => void };
/** What `encrypt` did. */
export interface EncryptReport {
  /** Rows sealed over every store. */
  rows: number;
  /** Rows left out because their value could not be read (corrupt before the conversion). */
  unreadable: number;
}
/** Another tab or worker committed or deleted these wallets. */
/** `close({timeoutMs})`: how long each coordinator may take to drain (default 10000). */
export interface CloseOptions { timeoutMs?: number; }
/** `tasks.quiesce(key, {timeoutMs})`: how long the pass may take to drain (default 10000). */
export interface QuiesceOptions { timeoutMs?: number; }
/** What `tasks.syncNow` did: ran a pass, or skipped it (the worker is quiescing, or in a pass). */
export type SyncOutcome = "ran" | "skipped_quiescing" | "skipped_busy";
/** `navigator.storage.estimate()` for this origin, in bytes (0 when the browser does not say). */
export interface StorageEstimate { usage: number; quota: number; }
/** `navigator.storage.persist()`: whether the browser granted persistent storage (`false` where it cannot be asked). */
export interface PersistResult { persisted: boolean; }
/**
 * Wallets a commit, delete or registration made durable: by this store (`origin: "local"`) or by
 * another tab or worker of the same database (`"remote"`).
 */
export interface ChangeEvent { walletIds: Hex32[]; origin: "local" | "remote"; }
/** One log line, as `setLogger`'s logger receives it. */
export interface LogRecord {
  level: LogLevel;
  message: string;
  /** Structured values of the line, e.g. `walletIds`, `code`, `store`, `key`. */
  fields: Record<string, string | number | string[]>;
}
/** Another connection upgraded (or deleted: `newVersion` null) the database. */
export interface VersionChangeEvent { oldVersion: number; newVersion: number | null; }

/** On input, u64 fields accept a `bigint` or a safe-integer `number`; on output they are `bigint`. */
export type U64 = bigint;
export type U64Input = bigint | number;

/** `walletId` is optional in `store` (when given it must be the wallet's own id, else code 12)
 *  and always set by `load`. */
export interface WalletRecord<N = U64> { walletId?: Hex32 | null; network: string; label: string; birthHeight: number; createdAtMs: N; accountSchema: number; }
export interface Account { index: number; kind: string; descriptor: string; }
export interface AddressEntry { address: string; account: number; index: number; used: boolean; }
export interface Utxo<N = U64> { outpoint: OutPointString; value: N; script: Uint8Array; height: number | null; account: number; }
export interface TransactionEntry<N = U64> { txid: Hex32; raw: Uint8Array; height: number | null; timestampMs: N | null; fee: N | null; }
export interface SyncState<N = U64> { height: number; tipHash: Hex32; lastSyncMs: N; }
export interface Identity<N = U64> { id: Hex32; index: number | null; revision: N; balance: N; blob: Uint8Array; }
export interface IdentityKey { identity: Hex32; keyId: number; purpose: number; securityLevel: number; publicKey: Uint8Array; }
export type ContactKind = "sent" | "received" | "established";
export interface Contact<N = U64> { kind: ContactKind; contact: Hex32; request: Uint8Array; createdMs: N; updatedMs: N; }
export interface AssetLock<N = U64> { account: number; outpoint: OutPointString; status: string; amount: N; proof: Uint8Array; }
export interface TokenBalance<N = U64> { identity: Hex32; token: Hex32; amount: N; }
export interface PlatformAddress<N = U64> { address: string; balance: N; nonce: N; }
export interface AppRecord { namespace: string; key: string; value: Uint8Array; }

/** Per area: entry key → value (upsert) or `null` (tombstone: delete). Every value repeats its key:
 *  `accounts` `"<index>"`, `addresses`/`platformAddresses` the address, `utxos` `"<txid>:<vout>"`,
 *  `transactions` txid, `identities` id, `identityKeys` `"<identity>:<keyId>"`,
 *  `contacts` `"<kind>:<contact>"`, `assetLocks` `"<account>:<txid>:<vout>"`,
 *  `tokenBalances` `"<identity>:<token>"`, `records` `"<namespace>:<key>"`. */
export interface WalletChangeSetOf<N> {
  /** Upsert only: a wallet's record is removed with the whole wallet. */
  wallet?: WalletRecord<N>;
  accounts?: { [index: string]: Account | null };
  addresses?: { [address: string]: AddressEntry | null };
  utxos?: { [outpoint: string]: Utxo<N> | null };
  transactions?: { [txid: string]: TransactionEntry<N> | null };
  /** Upsert only. */
  syncState?: SyncState<N>;
  identities?: { [id: string]: Identity<N> | null };
  identityKeys?: { [key: string]: IdentityKey | null };
  contacts?: { [key: string]: Contact<N> | null };
  assetLocks?: { [key: string]: AssetLock<N> | null };
  tokenBalances?: { [key: string]: TokenBalance<N> | null };
  platformAddresses?: { [address: string]: PlatformAddress<N> | null };
  records?: { [key: string]: AppRecord | null };
}
/** What `store` accepts. */
export type WalletChangeSet = WalletChangeSetOf<U64Input>;
/** A wallet record as `load` and `listWallets` return it: `walletId` always set, u64 as `bigint`. */
export type LoadedWalletRecord = WalletRecord<U64> & { walletId: Hex32 };
/** A wallet's durable state as `load` returns it: every area present (empty when it has no rows),
 *  no tombstones, u64 amounts as `bigint`, `wallet.walletId` always set. `wallet`/`syncState` are
 *  `null` when the wallet has rows but no such record. */
export interface WalletState {
  wallet: LoadedWalletRecord | null;
  accounts: { [index: string]: Account };
  addresses: { [address: string]: AddressEntry };
  utxos: { [outpoint: string]: Utxo<U64> };
  transactions: { [txid: string]: TransactionEntry<U64> };
  syncState: SyncState<U64> | null;
  identities: { [id: string]: Identity<U64> };
  identityKeys: { [key: string]: IdentityKey };
  contacts: { [key: string]: Contact<U64> };
  assetLocks: { [key: string]: AssetLock<U64> };
  tokenBalances: { [key: string]: TokenBalance<U64> };
  platformAddresses: { [address: string]: PlatformAddress<U64> };
  records: { [key: string]: AppRecord };
}

export interface WalletFailure { walletId: Hex32; code: ErrorCode; kind: ErrorKind; retryable: boolean; message: string; }
export interface CommitReport {
  /** Durable now. (All three lists are sorted by wallet id.) */
  succeeded: Hex32[];
  /** Failed fatally: their staged changes were dropped. */
  failed: WalletFailure[];
  /** Failed transiently: staged again under any newer changes; the next flush retries them. */
  stillPending: Hex32[];
}
export type AreaStore = "wallets" | "accounts" | "addresses" | "utxos" | "transactions" | "sync_state"
  | "identities" | "identity_keys" | "contacts" | "asset_locks" | "token_balances" | "platform_addresses" | "records";
export interface SkippedRow { store: AreaStore; key: string; code: ErrorCode; kind: ErrorKind; reason: string; }
export interface LoadReport {
  /** Wallets with at least one loaded row. */
  wallets: number;
  /** Rows loaded per area store; every area present. */
  rows: { [store in AreaStore]: number };
  /** Rows skipped per area store; every area present. */
  skippedRows: { [store in AreaStore]: number };
  /** Every skipped row with the reason, in store order. */
  skipped: SkippedRow[];
  /** Stores of which a bulk read request failed as a whole (e.g. a value whose file the browser lost); its rows were then read one by one in the same transaction, so only the unreadable ones are in `skipped`. */
  scannedStores: AreaStore[];
  /** Only for `load({walletIds})`: the requested wallets absent from `wallets`, in id order: no
   *  row of them on disk, or every row skipped (then listed in `skipped`). */
  notFound?: Hex32[];
}
export interface OpenReport {
  /** The database's schema version. */
  schemaVersion: number;
  /** The version `open` migrated the database from (`0`: it had no version stamp), or `null`. */
  migratedFrom: number | null;
  /** Unfinished registrations (stopped between `storePending` and `promote`) this open discarded. */
  discardedPending: Hex32[];
  /**
   * `"readOnly"` when a newer wallet-persist wrote the database and its rollback floors let this
   * build read it but not write it (every write rejects `schema_version_unsupported`, 9).
   */
  access: "readWrite" | "readOnly";
}
export interface WorkerOptions {
  /** Unique per store. */
  key: string;
  /** Shutdown stops lighter workers first (default 0); the final flush runs after all of them. */
  weight?: number;
  /** Pause between passes, in ms. */
  intervalMs: number;
  /** One pass. `signal` aborts when the worker is quiesced or the store closes; a rejection or
   *  throw is reported as `failed` and the worker keeps running. */
  pass: (signal: AbortSignal) => Promise<void> | void;
}
/** `notRunning`: nothing ran; `stopped`: drained; `timedOut`: its pass did not drain in time and
 *  lives on as an orphan (reaped when it ends); `orphaned`: an earlier orphan still runs;
 *  `failed`: its last pass rejected or threw (`error`). */
export type WorkerStatus = "notRunning" | "stopped" | "timedOut" | "orphaned" | "failed";
export interface WorkerReport { key: string; weight: number; status: WorkerStatus; error?: string; }
/** What `close` did not write. */
export interface NotWritten {
  /** Wallets whose staged changes were dropped (a fatal final flush, or a registration rolled back). */
  wallets: Hex32[];
  /** Channels whose queued history changes could not be written. */
  channels: string[];
}
export interface ShutdownReport {
  /** Nothing is left running (no `timedOut`/`orphaned`), the final flush succeeded and nothing
   *  staged or queued was left unwritten (`notWritten` empty). */
  clean: boolean;
  /** In stop order: ascending weight, then `{key: "persister"}`, the final flush. */
  workers: WorkerReport[];
  /** The final flush. */
  flush: CommitReport;
  /** Everything staged or queued that was not written. */
  notWritten: NotWritten;
  /** Registrations whose `init` was still running: rolled back (no row of them remains); their
   *  `registerWallet` rejects `closed` (20). */
  abortedRegistrations: Hex32[];
}
/** Progress of a long operation (export, import validation and write). */
export interface ProgressEvent { phase: "export" | "validate" | "write" | "seal"; done: number; total: number; }
export interface BackupOptions {
  /** Seal the backup with this passphrase (Argon2id). Without it, a backup of an encrypted store
   *  is sealed with the store's own key and imports only into a store opened with that key. */
  backupPassphrase?: string;
  onProgress?: (event: ProgressEvent) => void;
}
export interface ImportOptions extends BackupOptions {
  /** Replace a database that already holds rows (default false: reject code 15). */
  overwrite?: boolean;
  /** The secret of the destination database (created encrypted when new). */
  encryption?: EncryptionOptions;
}
export interface ImportReport {
  /** Rows written over every store. */
  rows: number;
  /** Wallets in the backup. */
  wallets: number;
  /** When the backup was taken (unix ms). */
  createdAtMs: bigint;
}
export interface DeleteReport {
  walletId: Hex32;
  /** Staged, never flushed fields of the wallet that the delete discarded. */
  discardedStagedFields: number;
}
export interface LoadResult { wallets: { [walletId: Hex32]: WalletState }; report: LoadReport; }
/** `load(options)`: without `walletIds` (or with no options) every wallet is read. */
export interface LoadOptions {
  /** Read only these wallets: one key range per store and wallet, so the time is that of their
   *  rows. Distinct wallet ids (64 lowercase hex characters); anything else rejects
   *  `invalid_argument` (1) and reads nothing. An id with nothing on disk is simply absent from
   *  `wallets` and named in `report.notFound`. Each id is one request per store: to read most
   *  of the wallets, `load()` (one request per store in all) is faster. */
  walletIds?: Hex32[];
}
/** What `listWallets` returns: every wallet `load()` would return, without reading its rows. */
export interface WalletList {
  /** Each wallet's record, in wallet id order. */
  wallets: LoadedWalletRecord[];
  /** Wallet records that failed their checks (skipped, as `load` skips them). */
  skipped: SkippedRow[];
}
export interface StagedWallet { walletId: Hex32; fields: number; }

/** A channel's meta as `loadChannel` returns it: exactly what was saved (numbers stay numbers,
 *  bigints bigints, `Uint8Array`s `Uint8Array`s, object keys keep their order). */
export type MetaValue = null | boolean | number | bigint | string | Uint8Array | MetaValue[] | { [key: string]: MetaValue };
/** What `saveMeta` and `commit` accept: app bytes (`Uint8Array`) or a structured value of `null`,
 *  booleans, numbers, bigints within int64 (e.g. unix milliseconds), strings, `Uint8Array`s, arrays
 *  and plain objects, nested at most 64 deep; not `null` itself. `undefined` anywhere, class
 *  instances (`Date`, `Map`, ...), functions and symbols are refused (code 1). */
export type ChannelMeta = Exclude<MetaValue, null>;
/** A history entry as `queueAppend` / `updateHistory` accept it. Ids: 1..=256 UTF-8 bytes. */
export interface HistoryEntryInput { id: string; bytes: Uint8Array; /** Unix ms (int64). */ timestampMs?: bigint | number | null; }
/** A history entry as `loadChannel` returns it. */
export interface HistoryEntry { id: string; bytes: Uint8Array; timestampMs: bigint | null; }
/** One history write: `append` in order, after every entry already there; `evict` by id. An id
 *  appears at most once per update. */
export interface HistoryUpdate { append?: HistoryEntryInput[]; evict?: string[]; }
export interface RetrievalHint { messageId: string; hint: Uint8Array; }
/** The durable state of one channel. `meta` is `null` when none was saved. */
export interface LoadedChannel {
  meta: MetaValue | null;
  /** In append order. */
  history: HistoryEntry[];
  /** In message id order. */
  hints: RetrievalHint[];
}
/** A queued history change (latest per id). */
export interface PendingHistoryChange { id: string; op: "append" | "evict"; }
export interface ChannelStepFailure { step: "meta" | "history"; code: ErrorCode; kind: ErrorKind; retryable: boolean; message: string; }
/** What `channels.commit` did; storage failures are reported here, never thrown. */
export interface ChannelCommitReport {
  /** The meta of this commit is on disk. */
  metaSaved: boolean;
  /** The queue this commit took is on disk (`true` when nothing was queued). */
  historyFlushed: boolean;
  /** History changes still queued: what failed (retried by the next commit) and anything queued meanwhile. */
  pending: number;
  failures: ChannelStepFailure[];
}

export type ErrorKind = "invalid_argument" | "wallet_not_found" | "wallet_already_exists" | "flush_retryable"
  | "quota_exceeded" | "storage_unavailable" | "connection_lost" | "upgrade_blocked" | "schema_version_unsupported"
  | "blob_too_large" | "blob_decode" | "wallet_id_mismatch" | "entry_mismatch" | "backup_invalid"
  | "backup_destination_not_empty" | "already_open" | "pending_registration_missing" | "timeout"
  | "shutdown_incomplete" | "closed" | "transaction_aborted" | "orphan_row" | "wrong_key" | "internal";
  
/** Fault-injection builds only: the backend operation `failNext` arms a failure for. */
export type InjectableOp = "write" | "read" | "scan";
/** Fault-injection builds only: the error kinds `failNext`, `failWallet` and `failStoreRead` can inject. */
export type InjectableErrorKind = "quota_exceeded" | "connection_lost" | "transaction_aborted" | "timeout" | "blob_decode" | "internal";

/**
 * What every error of this package carries. The package entry exports the class
 * `WalletPersistError` (instances have exactly these fields) and `isWalletPersistError`.
 */
export interface WalletPersistErrorInfo extends Error {
  name: "WalletPersistError";
  code: ErrorCode;
  kind: ErrorKind;
  /** `true` when retrying may succeed (nothing staged was lost). */
  retryable: boolean;
  /** The wallets the error is about, when it names any. */
  walletIds?: Hex32[];
  /** `cause` for flush errors; `len`/`limit` for blob_too_large; `found`/`supported` for schema versions. */
  detail?: ErrorDetail;
  /** The error behind this one (a flush error's storage error, itself a `WalletPersistError`), when there is one. */
  cause?: unknown;
}
/** An error this package rejected with (see `WalletPersistErrorInfo`). */
export type WalletPersistError = WalletPersistErrorInfo;
/** The underlying error of a flush failure (`detail.cause`). */
export interface ErrorCause { code: ErrorCode; kind: ErrorKind; retryable: boolean; message: string; }
export interface ErrorDetail {
  /** flush_retryable (4) and fatal flush failures: the storage error behind them. */
  cause?: ErrorCause;
  /** flush_retryable (4): wallets the same flush dropped after a fatal failure (not staged again). */
  dropped?: Hex32[];
  /** blob_too_large (10): the value's (claimed) length and the limit, in bytes. */
  len?: number;
  limit?: number;
  /** schema_version_unsupported (9): the version found and the newest this build reads. */
  found?: number;
  supported?: number;
}
"#;

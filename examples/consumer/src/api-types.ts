// Compile-time checks of the package's TypeScript definitions, run by `tsc --noEmit --strict`
// (never bundled: main.ts does not import this file).
// 1. No `any` anywhere in the API: every parameter, result and option of every class, method and
//    function below, followed through Promises, callbacks and nested objects.
// 2. The types refuse what the library refuses (`@ts-expect-error` fails the build if a line
//    below stops being an error).
import {
  ErrorCode,
  WalletStore,
  isWalletPersistError,
  setLogLevel,
  type Tasks,
  type Channels,
  type CommitReport,
  type LoadResult,
  type OpenOptions,
  type ShutdownReport,
  type WalletChangeSet,
  type WalletPersistError,
  type WalletState,
} from 'wallet-persist';

type Depth = [never, 0, 1, 2, 3, 4, 5, 6];
/** Leaves: platform types whose own declarations are not ours to check. */
type Leaf = string | number | bigint | boolean | symbol | null | undefined | void | Uint8Array | AbortSignal | Error;
/** `true` if `any` occurs in T (to depth D), else `never`. */
type AnyIn<T, D extends number = 6> = [D] extends [never]
  ? never
  : 0 extends 1 & T
    ? true
    : T extends Leaf
      ? never
      : T extends Promise<infer P>
        ? AnyIn<P, Depth[D]>
        : T extends readonly (infer E)[]
          ? AnyIn<E, Depth[D]>
          : T extends (...args: infer A) => infer R
            ? AnyIn<A[number], Depth[D]> | AnyIn<R, Depth[D]>
            : T extends object
              ? { [K in keyof T]-?: AnyIn<T[K], Depth[D]> }[keyof T]
              : never;
type NoAny<T> = [AnyIn<T>] extends [never] ? true : false;
type Assert<T extends true> = T;

export type Checks = [
  Assert<NoAny<WalletStore>>,
  Assert<NoAny<Omit<typeof WalletStore, 'prototype'>>>,
  Assert<NoAny<Tasks>>,
  Assert<NoAny<Channels>>,
  Assert<NoAny<typeof setLogLevel>>,
  Assert<NoAny<typeof isWalletPersistError>>,
  Assert<NoAny<WalletPersistError>>,
  Assert<NoAny<typeof ErrorCode>>,
  // The checker itself can fail:
  // @ts-expect-error `any` is found
  Assert<NoAny<{ a: { b: Promise<(x: any) => void> } }>>,
];

// What load() returns is precise: bigint amounts, no tombstones, walletId set.
export function readBack(result: LoadResult, walletId: string, outpoint: string): bigint {
  const state: WalletState | undefined = result.wallets[walletId];
  const utxo = state?.utxos[outpoint];
  const id: string | undefined = state?.wallet?.walletId;
  const rows: number = result.report.rows.utxos + result.report.skippedRows.token_balances;
  // @ts-expect-error u64 amounts come back as bigint, not number
  const asNumber: number | undefined = utxo?.value;
  return (utxo?.value ?? 0n) + BigInt(rows) + BigInt(id === undefined ? 0 : 1) + BigInt(asNumber ?? 0);
}

export async function refusedByTheTypes(store: WalletStore, walletId: string): Promise<void> {
  // @ts-expect-error flushMode is "manual" | "immediate"
  await WalletStore.open({ name: 'x', flushMode: 'later' });
  // @ts-expect-error unknown option (the library refuses it too: code 1)
  await WalletStore.open({ name: 'x', flushmode: 'manual' } satisfies OpenOptions);
  // @ts-expect-error name is required
  await WalletStore.open({});
  // @ts-expect-error a UTXO value is a bigint or number, not a string
  await store.store(walletId, { utxos: { k: { outpoint: 'k', value: '5', script: new Uint8Array(), height: 1, account: 0 } } });
  // @ts-expect-error unknown area (the library refuses it too: code 1)
  await store.store(walletId, { utxo: {} } satisfies WalletChangeSet);
  // @ts-expect-error wallet and syncState are upsert-only: null is refused
  await store.store(walletId, { wallet: null });
  // @ts-expect-error importBackup takes bytes, not a string
  await WalletStore.importBackup('x', 'backup');
  // @ts-expect-error log levels are a closed set
  setLogLevel('verbose');
  await store.store(walletId, { utxos: { k: null } }); // a tombstone is fine
}

export async function resultsAreTyped(store: WalletStore): Promise<number> {
  const commit: CommitReport = await store.commit();
  const shutdown: ShutdownReport = await store.close();
  const code: ErrorCode | undefined = commit.failed[0]?.code;
  const status: 'notRunning' | 'stopped' | 'timedOut' | 'orphaned' | 'failed' | undefined = shutdown.workers[0]?.status;
  const outcome: 'ran' | 'skipped_quiescing' | 'skipped_busy' = await store.tasks.syncNow('k');
  const { usage, quota } = await store.estimate();
  return usage + quota + (code ?? 0) + (status ? 1 : 0) + outcome.length;
}

export function narrowing(error: unknown): string {
  if (isWalletPersistError(error)) {
    const retry: boolean = error.retryable;
    const cause = error.detail?.cause?.kind;
    return `${error.code === ErrorCode.QuotaExceeded} ${retry} ${cause ?? ''} ${error.walletIds?.join(',') ?? ''}`;
  }
  // @ts-expect-error without the guard, `error` is unknown
  return error.code;
}

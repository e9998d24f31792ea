// The error class of wallet-persist, in plain JS: importing it needs no wasm, so an app can catch
// and classify errors before `init()` resolved, or when it failed (a `.wasm` refused with a 403).
// The wasm module builds every rejection through `createError` below (from src/js/error.rs), and
// the package entry re-exports `WalletPersistError` and `isWalletPersistError` from this very file,
// so `instanceof` holds for every error the package rejects with.

/** Every promise of this package rejects with one of these. */
export class WalletPersistError extends Error {
  /**
   * @param {string} message what happened and, where it helps, what to do
   * @param {{code: number, kind: string, retryable: boolean, walletIds?: string[], detail?: object, cause?: unknown}} fields
   */
  constructor(message, fields) {
    const { code, kind, retryable, walletIds, detail, cause } = fields ?? {};
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.kind = kind;
    this.retryable = retryable === true;
    if (walletIds !== undefined) this.walletIds = walletIds;
    if (detail !== undefined) this.detail = detail;
  }
}
Object.defineProperty(WalletPersistError.prototype, 'name', {
  value: 'WalletPersistError',
  writable: true,
  configurable: true,
  enumerable: false,
});

/**
 * `true` for an error of this package: an instance of `WalletPersistError`, or one that looks like
 * it (`name === "WalletPersistError"` and a numeric `code`), e.g. from another copy of the package.
 * Needs no `init()`.
 */
export function isWalletPersistError(value) {
  if (value instanceof WalletPersistError) return true;
  return typeof value === 'object' && value !== null && value.name === 'WalletPersistError' && typeof value.code === 'number';
}

// Called by the wasm module (src/js/error.rs); not part of the package's API.
export function createError(message, code, kind, retryable, walletIds, detail, cause) {
  return new WalletPersistError(message, {
    code,
    kind,
    retryable,
    walletIds: walletIds ?? undefined,
    detail: detail ?? undefined,
    cause: cause ?? undefined,
  });
}

// Types of errors.js. scripts/pkg-manifest.mjs copies this file beside the copy of errors.js that
// wasm-bindgen writes into pkg/snippets/<crate>-<hash>/src/js/, four levels below the package root.
import type { ErrorCode, ErrorDetail, ErrorKind, Hex32 } from "../../../../wallet_persist.js";

/** The fields of a `WalletPersistError` besides its message. */
export interface WalletPersistErrorFields {
  code: ErrorCode;
  kind: ErrorKind;
  retryable: boolean;
  walletIds?: Hex32[];
  detail?: ErrorDetail;
  cause?: unknown;
}

/**
 * Every promise of this package rejects with one of these. A plain JS class: importing it, and
 * `instanceof WalletPersistError`, work before (and without) `init()`.
 */
export declare class WalletPersistError extends Error {
  constructor(message: string, fields: WalletPersistErrorFields);
  name: "WalletPersistError";
  /** The stable numeric code (see `ErrorCode`). */
  code: ErrorCode;
  /** The stable kind tag of `code`. */
  kind: ErrorKind;
  /** `true` when retrying may succeed (nothing staged was lost). */
  retryable: boolean;
  /** The wallets the error is about, when it names any. */
  walletIds?: Hex32[];
  /** `cause` for flush errors; `len`/`limit` for blob_too_large; `found`/`supported` and the build's read/write floors for schema versions. */
  detail?: ErrorDetail;
  /** The error behind this one (a flush error's storage error), when there is one. */
  cause?: unknown;
}

/**
 * `true` for an error of this package (an instance of `WalletPersistError`, or one shaped like it:
 * `name === "WalletPersistError"` and a numeric `code`). Narrows `unknown`. Needs no `init()`.
 */
export declare function isWalletPersistError(value: unknown): value is WalletPersistError;

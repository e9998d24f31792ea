// Types of errors.js. scripts/pkg-manifest.mjs copies this file beside the copy of errors.js that
// wasm-bindgen writes into pkg/snippets/<crate>-<hash>/src/js/, four levels below the package root.
// The fields are declared once, by `WalletPersistErrorInfo` in wallet_persist.d.ts; the class is
// declared as lib.d.ts declares `Error`: a constructor value and an instance type.
import type { WalletPersistErrorInfo } from "../../../../wallet_persist.js";

/** The fields of a `WalletPersistError` besides its message (what the constructor takes). */
export type WalletPersistErrorFields = Pick<WalletPersistErrorInfo, "code" | "kind" | "retryable" | "walletIds" | "detail" | "cause">;

/** Every promise of this package rejects with one of these (`code`, `kind`, `retryable`, `walletIds`, `detail`, `cause`). */
export type WalletPersistError = WalletPersistErrorInfo;

/** The `WalletPersistError` class: `new WalletPersistError(message, fields)`, `error instanceof WalletPersistError`. */
export interface WalletPersistErrorConstructor {
  new (message: string, fields: WalletPersistErrorFields): WalletPersistError;
  readonly prototype: WalletPersistError;
}

/**
 * Every promise of this package rejects with an instance of this class. Plain JS: importing it,
 * and `instanceof WalletPersistError`, work before (and without) `init()`.
 */
export declare const WalletPersistError: WalletPersistErrorConstructor;

/**
 * `true` for an error of this package (an instance of `WalletPersistError`, or one shaped like it:
 * `name === "WalletPersistError"` and a numeric `code`). Narrows `unknown`. Needs no `init()`.
 */
export declare function isWalletPersistError(value: unknown): value is WalletPersistError;

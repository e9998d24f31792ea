//! wallet-persist: durable, crash-safe, retry-safe wallet state in IndexedDB.
//!
//! One room per feature over a small database core; data flows top to bottom, nothing imports a
//! module above it:
//!
//! - `js`: the wasm-bindgen surface (conversion only), over [`session`] (multi-tab policy)
//! - features: [`wallets`] (buffer, rows, persister, registration), [`channels`] (the snapshot
//!   contract), [`backup`] (format and export/import), [`tasks`] (the cooperative task registry)
//! - [`db`]: the connection and its state, the reconnect-once rule, bulk reads with fallback,
//!   the schema and its migrations
//! - [`backend`]: the storage contract; IndexedDB (wasm), memory, fault injection
//! - [`model`] (pure domain types), [`codec`] (the envelope), [`layout`] (store names),
//!   [`error`] (the one error table), [`log`]
//!
//! Everything but `js` and `backend::indexeddb` is plain Rust, tested on the host against
//! [`backend::MemoryBackend`].
//!
//! JS users: the package in `pkg/` (`make pkg`) and its README are the entry point; the
//! wasm-bindgen surface is the `js` module (`WalletStore`, `Tasks`, `Channels`, `ErrorCode`,
//! `setLogLevel`, `setLogger`; the package entry adds the plain-JS `WalletPersistError` and
//! `isWalletPersistError`), documented here when built for `wasm32-unknown-unknown`
//! (`make doc`).
#![warn(missing_docs)]

pub use wallet_persist_core::{codec, error, layout, model, payload};

pub mod backend;
pub mod backup;
pub mod channels;
pub mod crypto;
pub mod db;
pub mod log;
pub mod session;
pub mod tasks;
pub mod wallets;

#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

#[cfg(target_arch = "wasm32")]
pub mod js;

pub use error::{Error, Result};
pub use wallets::{CommitReport, DeleteClaim, DeleteReport, FlushMode, LoadReport, OpenReport, Options, Persister};

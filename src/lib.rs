//! wallet-persist: durable, crash-safe, retry-safe wallet state in IndexedDB.
//!
//! Layers, top to bottom: `js` (wasm-bindgen surface) → [`persister`] (wallets, and channels over
//! [`snapshot`]) → [`buffer`], [`model`], [`codec`] → [`backend`] (IndexedDB, memory, fault
//! injection). Everything but `js` and `backend::indexeddb` is plain Rust, tested on the host
//! against [`backend::MemoryBackend`].
//!
//! JS users: the package in `pkg/` (`make pkg`) and its README are the entry point; the
//! wasm-bindgen surface is the `js` module (`WalletStore`, `Tasks`, `Channels`, `ErrorCode`,
//! `setLogLevel`, `isWalletPersistError`), documented here when built for `wasm32-unknown-unknown`
//! (`make doc`).
#![warn(missing_docs)]

pub mod backend;
pub mod backup;
pub mod buffer;
pub mod codec;
pub mod error;
pub mod log;
pub mod model;
pub mod persister;
pub mod schema;
pub mod snapshot;
pub mod tasks;
#[doc(hidden)]
pub mod conformance;

#[cfg(target_arch = "wasm32")]
pub mod js;

pub use error::{Error, Result};
pub use persister::{CommitReport, DeleteClaim, DeleteReport, FlushMode, LoadReport, OpenReport, Options, Persister};

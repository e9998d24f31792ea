//! wallet-persist's pure core: the domain types ([`model`]), the stored-value envelope
//! ([`codec`]) and the rows' hand-written payload format ([`payload`]), the store names
//! ([`layout`]), the one error table ([`error`]) and the reader of caller values ([`input`]).
//!
//! A crate of its own so the release build can optimise it for speed while the rest of
//! wallet-persist is optimised for size (Cargo.toml, `[profile.release]`): every row a load
//! decodes and every row a commit encodes runs here, and the tape cursor every changeset
//! `store()` reads goes through.
#![warn(missing_docs)]

pub mod codec;
pub mod error;
pub mod input;
pub mod layout;
pub mod model;
pub mod payload;

//! Test utilities (the `testing` cargo feature; never in the published package): the one
//! behaviour suite every backend and the persister must pass, run on the host against
//! `MemoryBackend` and in the browser against IndexedDB, with its fixtures.

mod channels;
mod conformance;
mod wallet_scope;

pub use channels::*;
pub use conformance::*;
pub use wallet_scope::*;

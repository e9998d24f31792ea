//! The IndexedDB backend, on `web-sys` (wasm only), and the mapping of browser failures to our
//! errors (plain Rust, host-tested).

#[cfg(target_arch = "wasm32")]
mod backend;
pub mod error;

#[cfg(target_arch = "wasm32")]
pub use backend::*;
#[cfg(target_arch = "wasm32")]
pub use error::js_error;

//! Test utilities (the `testing` cargo feature; never in the published package): the one
//! behaviour suite every backend and the persister must pass, run on the host against
//! `MemoryBackend` and in the browser against IndexedDB, with its fixtures.

mod channels;
mod conformance;
mod wallet_scope;

pub use channels::*;
pub use conformance::*;
pub use wallet_scope::*;

use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Drives a future to completion on this thread. Host backends (memory, faulty, encrypted over
/// memory) never wait on I/O, so a future that is still pending after 10,000 polls is stuck.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("future did not complete");
}

/// Drives a future to completion on this thread, letting one virtual second pass on `clock`
/// whenever it is stuck (for code bounded by a deadline of `clock`).
pub fn block_on_clock<F: Future>(clock: &crate::backend::VirtualClock, future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000 {
        for _ in 0..100 {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
        clock.advance(1_000);
    }
    panic!("future did not complete within 10,000 virtual seconds");
}

//! The bound on every backend call: a call that does not settle within the deadline is dropped
//! and reported as a retryable `Timeout`, so no call of ours can hang forever.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

/// A timer future of the environment (a browser timer, or a test's virtual clock).
pub type Sleep = Rc<dyn Fn(u32) -> Pin<Box<dyn Future<Output = ()>>>>;

/// The longest a backend call (a write, a read, a reconnect) may take by default.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

/// How long a backend call may take, measured by `sleep`.
#[derive(Clone)]
pub struct Deadline {
    /// The bound, in milliseconds.
    pub ms: u32,
    /// The timer that measures it.
    pub sleep: Sleep,
}

impl std::fmt::Debug for Deadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline").field("ms", &self.ms).finish_non_exhaustive()
    }
}

impl Deadline {
    /// `work`'s output, or `None` when the deadline passed first (`work` is dropped).
    pub async fn bound<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        let mut timer = (self.sleep)(self.ms);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }
}

//! The bound on every backend call: a call that makes no progress for a whole deadline is dropped
//! and reported as a retryable `Timeout`, so no call of ours can hang forever, while a long call
//! that keeps progressing (a write or a load of many chunks, see [`crate::backend::progress`])
//! runs to its end however long it takes.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use crate::backend::progress::Steps;
use crate::error::{Error, Result};

/// A timer future of the environment (a browser timer, or a test's virtual clock).
pub type Sleep = Rc<dyn Fn(u32) -> Pin<Box<dyn Future<Output = ()>>>>;

/// The longest a backend call (a write, a read, a reconnect) may go without progress by default.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

/// How long a backend call may go without progress, measured by `sleep`.
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
    /// `work`'s output, or `None` (`work` dropped) once a whole window of `ms` passed in which
    /// `work` reported no progress. One timer per window: when it fires after progress, a new
    /// window starts, so a stalled call is given up between `ms` and `2 × ms` after its last
    /// progress, and never sooner than `ms` after it. A call that reports no progress is bounded
    /// as a whole, by `ms`.
    pub async fn bound<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        let mut window = Window::new(self);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = window.steps.watch(|| work.as_mut().poll(cx)) {
                return Poll::Ready(Some(out));
            }
            if window.expired(cx) {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }
}

/// The current window of a bounded call: its timer, and the steps counted when it started. Its
/// methods stay out of line: `bound` is instantiated once per kind of call, and inlining them
/// into each cost about 2 KB of the gzipped .wasm.
struct Window<'a> {
    deadline: &'a Deadline,
    steps: Steps,
    at_start: u64,
    timer: Pin<Box<dyn Future<Output = ()>>>,
}

impl<'a> Window<'a> {
    #[inline(never)]
    fn new(deadline: &'a Deadline) -> Self {
        Window { deadline, steps: Steps::new(), at_start: 0, timer: (deadline.sleep)(deadline.ms) }
    }

    /// Whether a whole window passed without a step; a window that saw steps is followed by a
    /// new one.
    #[inline(never)]
    fn expired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            if self.steps.count() == self.at_start {
                return true;
            }
            self.at_start = self.steps.count();
            self.timer = (self.deadline.sleep)(self.deadline.ms);
        }
        false
    }
}

/// `work` bounded by `deadline` as [`Deadline::bound`] bounds it (unbounded when `None`); a stall
/// fails with a retryable `Timeout` whose message `timeout` spells from the deadline's `ms`.
pub async fn within<T>(
    deadline: Option<&Deadline>,
    work: impl Future<Output = Result<T>>,
    timeout: impl FnOnce(u32) -> String,
) -> Result<T> {
    match deadline {
        None => work.await,
        Some(deadline) => deadline.bound(work).await.unwrap_or_else(|| Err(Error::Timeout(timeout(deadline.ms)))),
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::progress;
    use crate::backend::VirtualClock;
    use crate::testing::block_on_clock;

    /// `steps` steps of `step_ms` each, reporting each, then stalling at `stall_at` if given.
    async fn steps(clock: &VirtualClock, steps: u32, step_ms: u32, stall_at: Option<u32>) -> u32 {
        for step in 0..steps {
            if stall_at == Some(step) {
                std::future::pending::<()>().await;
            }
            clock.sleep(step_ms).await;
            progress::report();
        }
        steps
    }

    #[test]
    fn a_call_that_keeps_progressing_runs_past_the_deadline() {
        let clock = VirtualClock::default();
        let out = block_on_clock(&clock, clock.deadline(30_000).bound(steps(&clock, 10, 29_000, None)));
        assert_eq!(out, Some(10));
        assert_eq!(clock.now(), 290_000);
    }

    #[test]
    fn a_stalled_call_is_given_up_within_one_to_two_deadlines_of_its_last_progress() {
        let clock = VirtualClock::default();
        let out = block_on_clock(&clock, clock.deadline(30_000).bound(steps(&clock, 10, 29_000, Some(3))));
        assert_eq!(out, None);
        let since_progress = clock.now() - 3 * 29_000;
        assert!((30_000..=60_000).contains(&since_progress), "{since_progress}");
    }

    #[test]
    fn a_call_without_progress_is_bounded_as_a_whole() {
        let clock = VirtualClock::default();
        let out = block_on_clock(&clock, clock.deadline(30_000).bound(clock.sleep(31_000)));
        assert_eq!(out, None);
        assert_eq!(clock.now(), 30_000);
        let out = block_on_clock(&clock, clock.deadline(30_000).bound(clock.sleep(29_000)));
        assert_eq!(out, Some(()));
    }
}

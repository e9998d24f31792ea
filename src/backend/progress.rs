//! Progress of the backend call being polled. A backend that works in steps (IndexedDB issues a
//! write and reads a load chunk by chunk) calls [`report`] after each step; whoever bounds the call
//! in time (the deadline of `crate::db`) counts the steps with [`Steps::watch`], so it can bound
//! the time between two steps instead of the whole call. A backend that never waits (memory) never
//! needs to report.
//!
//! Invariant: a step reported while a watched future is being polled counts for that future and
//! for every watched future polling it, and for nothing else (single-threaded: one poll at a time).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

thread_local! {
    /// The counters of the watched futures being polled, outermost first.
    static WATCHING: RefCell<Vec<Rc<Cell<u64>>>> = const { RefCell::new(Vec::new()) };
}

/// Reports one step of progress to the calls being polled (none when no one watches).
#[inline(never)]
pub fn report() {
    WATCHING.with(|watching| {
        for steps in watching.borrow().iter() {
            steps.set(steps.get() + 1);
        }
    });
}

/// The steps reported while one future was polled through [`Steps::watch`].
#[derive(Debug, Default)]
pub struct Steps(Rc<Cell<u64>>);

impl Steps {
    /// A counter at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Steps reported so far.
    pub fn count(&self) -> u64 {
        self.0.get()
    }

    /// Runs `poll` (one poll of the watched future), counting the steps it reports.
    pub fn watch<T>(&self, poll: impl FnOnce() -> T) -> T {
        let _watching = self.enter();
        poll()
    }

    /// Counts the steps reported until the guard drops (on every path, a panic included).
    #[inline(never)]
    fn enter(&self) -> Watching {
        WATCHING.with(|watching| watching.borrow_mut().push(self.0.clone()));
        Watching
    }
}

/// Stops the innermost watch when dropped.
struct Watching;

impl Drop for Watching {
    #[inline(never)]
    fn drop(&mut self) {
        WATCHING.with(|watching| watching.borrow_mut().pop());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_count_for_the_watched_poll_and_its_watchers_only() {
        let (outer, inner) = (Steps::new(), Steps::new());
        report();
        outer.watch(|| {
            report();
            inner.watch(report);
            report();
        });
        report();
        assert_eq!((outer.count(), inner.count()), (3, 1));
    }
}

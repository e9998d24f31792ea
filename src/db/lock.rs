//! An async mutex for a single-threaded executor: writers of one kind take turns.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Serialises writes of one kind: a second writer waits for the first, so a failed write can
/// never restore values older than what a concurrent write already made durable.
#[derive(Default)]
pub struct WriteLock {
    locked: Cell<bool>,
    waiters: RefCell<VecDeque<Waker>>,
}

/// Holds a [`WriteLock`] until dropped (on every path, including a dropped future).
pub struct WriteGuard<'a>(&'a WriteLock);

impl WriteLock {
    /// Waits until the lock is free, then takes it.
    pub async fn lock(&self) -> WriteGuard<'_> {
        poll_fn(|cx| {
            if self.locked.get() {
                self.waiters.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            } else {
                self.locked.set(true);
                Poll::Ready(())
            }
        })
        .await;
        WriteGuard(self)
    }

    /// Whether a writer holds the lock.
    pub fn is_locked(&self) -> bool {
        self.locked.get()
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.0.locked.set(false);
        let waiters = std::mem::take(&mut *self.0.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }
}

//! A wrapper over any backend that fails chosen calls, for tests and the example page.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Backend, StoreRows, WriteBatch};
use crate::error::{Error, Result};
use crate::model::WalletId;

/// A backend operation that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write,
    Read,
}

impl Op {
    /// Parses `"write"` or `"read"`.
    pub fn parse(name: &str) -> Result<Op> {
        match name {
            "write" => Ok(Op::Write),
            "read" => Ok(Op::Read),
            _ => Err(Error::InvalidArgument(format!("unknown backend operation {name:?} (write | read)"))),
        }
    }
}

#[derive(Debug, Clone)]
struct Fault {
    op: Op,
    remaining: u32,
    error: Error,
    /// Only writes touching this wallet fail.
    wallet: Option<WalletId>,
}

/// Fails the next N calls of an operation with a chosen error, then behaves like the inner backend.
#[derive(Debug)]
pub struct FaultyBackend<B> {
    inner: B,
    faults: RefCell<Vec<Fault>>,
    calls: RefCell<[u32; 2]>,
}

impl<B> FaultyBackend<B> {
    pub fn new(inner: B) -> Self {
        FaultyBackend { inner, faults: RefCell::new(Vec::new()), calls: RefCell::new([0; 2]) }
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The next `count` calls of `op` fail with `error`.
    pub fn fail_next(&self, op: Op, count: u32, error: Error) {
        self.faults.borrow_mut().push(Fault { op, remaining: count, error, wallet: None });
    }

    /// The next `count` writes that touch `wallet` fail with `error`.
    pub fn fail_wallet(&self, wallet: WalletId, count: u32, error: Error) {
        self.faults.borrow_mut().push(Fault { op: Op::Write, remaining: count, error, wallet: Some(wallet) });
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        self.faults.borrow_mut().clear();
    }

    /// How many times `op` was called (failed calls included).
    pub fn calls(&self, op: Op) -> u32 {
        self.calls.borrow()[op as usize]
    }

    fn take_fault(&self, op: Op, batch: Option<&WriteBatch>) -> Option<Error> {
        self.calls.borrow_mut()[op as usize] += 1;
        let mut faults = self.faults.borrow_mut();
        let index = faults.iter().position(|f| {
            f.op == op
                && f.remaining > 0
                && match (&f.wallet, batch) {
                    (Some(wallet), Some(batch)) => {
                        let hex = wallet.to_hex();
                        batch.ops.iter().any(|op| op.wallet_hex().as_deref() == Some(hex.as_str()))
                    }
                    (Some(_), None) => false,
                    (None, _) => true,
                }
        })?;
        let fault = &mut faults[index];
        fault.remaining -= 1;
        let error = fault.error.clone();
        faults.retain(|f| f.remaining > 0);
        Some(error)
    }
}

/// Returns `Pending` once, so an injected failure resolves asynchronously like a real one.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl<B: Backend> Backend for FaultyBackend<B> {
    async fn write(&self, batch: &WriteBatch) -> Result<()> {
        if let Some(error) = self.take_fault(Op::Write, Some(batch)) {
            YieldNow(false).await;
            return Err(error);
        }
        self.inner.write(batch).await
    }

    async fn read(&self, stores: &[&'static str]) -> Result<Vec<StoreRows>> {
        if let Some(error) = self.take_fault(Op::Read, None) {
            YieldNow(false).await;
            return Err(error);
        }
        self.inner.read(stores).await
    }

    fn close(&self) {
        self.inner.close()
    }
}

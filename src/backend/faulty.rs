//! A wrapper over any backend that fails chosen calls, for tests and the example page.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::{progress, Backend, ReadEvent, StoreRows, WriteBatch};
use crate::error::{Error, Result};
use crate::model::{Key, WalletId};

/// A backend operation that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A write batch (`write`).
    Write,
    /// A bulk read of stores (`read`, `read_groups`) or one row (`get`).
    Read,
    /// A row-by-row read (the cursor fallback of `load`).
    Scan,
}

impl Op {
    /// Parses `"write"` or `"read"`.
    pub fn parse(name: &str) -> Result<Op> {
        match name {
            "write" => Ok(Op::Write),
            "read" => Ok(Op::Read),
            "scan" => Ok(Op::Scan),
            _ => Err(Error::InvalidArgument(format!("unknown backend operation {name:?} (write | read | scan)"))),
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
    /// Reads: only this store's part of a bulk read fails; the other stores are read.
    /// Writes: only batches touching this store fail.
    store: Option<&'static str>,
}

/// Fails the next N calls of an operation with a chosen error, then behaves like the inner backend.
#[derive(Debug)]
pub struct FaultyBackend<B> {
    inner: B,
    faults: RefCell<Vec<Fault>>,
    calls: RefCell<[u32; 3]>,
    reconnects: Cell<u32>,
    /// The operation whose next call is held until `resume`.
    pause_armed: Cell<Option<Op>>,
    /// The waker of the held call, `Some` while one is held.
    paused: RefCell<Option<Waker>>,
    /// The connection is lost: every call fails with `ConnectionLost` until a reconnect succeeds.
    lost: Cell<bool>,
    /// How many of the next reconnects fail; a failed reconnect leaves the inner backend without a
    /// connection (it answers `Closed`, as IndexedDB did after a failed reopen).
    failing_reconnects: Cell<u32>,
    /// Calls of these operations never settle until a reconnect (a wedged connection).
    hanging: RefCell<Vec<Op>>,
    /// How many of the next writes commit and then never answer.
    late_acks: Cell<u32>,
    /// How many of the next writes commit and then fail with `ConnectionLost`, the connection gone.
    lost_acks: Cell<u32>,
    /// How slow calls of each operation are (indexed by `Op`).
    slow: RefCell<[Option<Slowness>; 3]>,
}

/// How long calls of one operation take in virtual time, chunk by chunk as IndexedDB works: a
/// write of N ops is `ceil(N / chunk_rows)` chunks, a read one chunk per `chunk_rows` rows of each
/// store (at least one). Each chunk takes `chunk_ms` and is then reported as progress; the chunk
/// `stall_at` (0-based) and every later one never end. A write reaches the inner backend only
/// after its last chunk (all or nothing: dropped before, nothing lands); a read returns after its
/// last chunk.
#[derive(Debug, Clone)]
pub struct Slowness {
    /// The clock the chunks take their time on.
    pub clock: VirtualClock,
    /// Ops or rows per chunk (at least 1).
    pub chunk_rows: usize,
    /// Virtual time per chunk.
    pub chunk_ms: u32,
    /// The first chunk that never ends, if any.
    pub stall_at: Option<usize>,
}

impl Slowness {
    /// Takes the time of `chunks` chunks, reporting each as progress.
    async fn take(&self, chunks: usize) {
        for chunk in 0..chunks {
            if self.stall_at.is_some_and(|at| chunk >= at) {
                std::future::pending::<()>().await;
            }
            self.clock.sleep(self.chunk_ms).await;
            progress::report();
        }
    }

    fn chunks(&self, rows: usize) -> usize {
        rows.div_ceil(self.chunk_rows.max(1)).max(1)
    }
}

impl<B> FaultyBackend<B> {
    /// Wraps `inner` with no fault armed.
    pub fn new(inner: B) -> Self {
        FaultyBackend {
            inner,
            faults: RefCell::new(Vec::new()),
            calls: RefCell::new([0; 3]),
            reconnects: Cell::new(0),
            pause_armed: Cell::new(None),
            paused: RefCell::new(None),
            lost: Cell::new(false),
            failing_reconnects: Cell::new(0),
            hanging: RefCell::new(Vec::new()),
            late_acks: Cell::new(0),
            lost_acks: Cell::new(0),
            slow: RefCell::new([None, None, None]),
        }
    }

    /// Every later call of `op` takes time as `slowness` says (`None`: no time, the default).
    pub fn slow_down(&self, op: Op, slowness: Option<Slowness>) {
        self.slow.borrow_mut()[op as usize] = slowness;
    }

    fn slowness(&self, op: Op) -> Option<Slowness> {
        self.slow.borrow()[op as usize].clone()
    }

    /// The browser closes the connection under us (site data cleared): every call fails with
    /// `ConnectionLost` until a reconnect succeeds.
    pub fn lose_connection(&self) {
        self.lost.set(true);
    }

    /// The next `count` reconnects fail, each leaving no connection behind.
    pub fn fail_reconnects(&self, count: u32) {
        self.failing_reconnects.set(count);
    }

    /// Every later call of `op` never settles (as a write the browser started and never finished),
    /// until a reconnect replaces the wedged connection.
    pub fn hang(&self, op: Op) {
        self.hanging.borrow_mut().push(op);
    }

    /// The next `count` writes reach the inner backend (they commit) and then never answer, as a
    /// transaction that completes after its caller's deadline: the caller cannot know it landed.
    pub fn ack_late(&self, count: u32) {
        self.late_acks.set(count);
    }

    /// The next `count` writes reach the inner backend (they commit) and then fail with
    /// `ConnectionLost`, the connection gone (a browser that closes the connection between the
    /// commit and its `complete` event): the caller reconnects and cannot know it landed.
    pub fn lose_after_commit(&self, count: u32) {
        self.lost_acks.set(count);
    }

    /// Whether calls of `op` hang.
    pub fn is_hanging(&self, op: Op) -> bool {
        self.hanging.borrow().contains(&op)
    }

    /// A call's common prelude: counted, held if paused, hung if wedged, failed if the connection
    /// is lost or a fault is armed.
    async fn enter(&self, op: Op, batch: Option<&WriteBatch>) -> Result<()> {
        self.count(op);
        self.hold_if_paused(op).await;
        if self.is_hanging(op) {
            std::future::pending::<()>().await;
        }
        let fault = if self.lost.get() {
            Some(Error::ConnectionLost("injected: the connection was closed under us".into()))
        } else {
            self.take_fault(op, batch, None)
        };
        match fault {
            Some(error) => {
                YieldNow(false).await;
                Err(error)
            }
            None => Ok(()),
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The next `count` calls of `op` fail with `error`.
    pub fn fail_next(&self, op: Op, count: u32, error: Error) {
        self.faults.borrow_mut().push(Fault { op, remaining: count, error, wallet: None, store: None });
    }

    /// The next `count` writes that touch `wallet` fail with `error`.
    pub fn fail_wallet(&self, wallet: WalletId, count: u32, error: Error) {
        self.faults.borrow_mut().push(Fault {
            op: Op::Write,
            remaining: count,
            error,
            wallet: Some(wallet),
            store: None,
        });
    }

    /// The next `count` bulk reads that include `store` fail for that store only, as when one of
    /// its values cannot be read; `scan` is not affected.
    pub fn fail_store_read(&self, store: &'static str, count: u32, error: Error) {
        self.faults.borrow_mut().push(Fault {
            op: Op::Read,
            remaining: count,
            error,
            wallet: None,
            store: Some(store),
        });
    }

    /// The next `count` writes whose batch touches `store` fail with `error`.
    pub fn fail_store_write(&self, store: &'static str, count: u32, error: Error) {
        self.faults.borrow_mut().push(Fault {
            op: Op::Write,
            remaining: count,
            error,
            wallet: None,
            store: Some(store),
        });
    }

    /// Holds the next call of `op` before it reaches the inner backend until [`Self::resume`], so a
    /// test can act while that call is in flight.
    pub fn pause_next(&self, op: Op) {
        self.pause_armed.set(Some(op));
    }

    /// How many times `reconnect` was called.
    pub fn reconnects(&self) -> u32 {
        self.reconnects.get()
    }

    /// Whether a call is being held.
    pub fn is_paused(&self) -> bool {
        self.paused.borrow().is_some()
    }

    /// Lets the held call proceed.
    pub fn resume(&self) {
        if let Some(waker) = self.paused.borrow_mut().take() {
            waker.wake();
        }
    }

    async fn hold_if_paused(&self, op: Op) {
        if self.pause_armed.get() != Some(op) {
            return;
        }
        self.pause_armed.set(None);
        let mut held = false;
        std::future::poll_fn(|cx| {
            if !held {
                held = true;
                *self.paused.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            match &mut *self.paused.borrow_mut() {
                Some(waker) => {
                    waker.clone_from(cx.waker());
                    Poll::Pending
                }
                None => Poll::Ready(()),
            }
        })
        .await
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        self.faults.borrow_mut().clear();
        self.late_acks.set(0);
        self.lost_acks.set(0);
    }

    /// How many times `op` was called (failed calls included).
    pub fn calls(&self, op: Op) -> u32 {
        self.calls.borrow()[op as usize]
    }

    fn take_fault(&self, op: Op, batch: Option<&WriteBatch>, store: Option<&str>) -> Option<Error> {
        let mut faults = self.faults.borrow_mut();
        let index = faults.iter().position(|f| {
            f.op == op
                && f.remaining > 0
                && match (f.store, batch) {
                    (Some(scope), Some(batch)) => batch.ops.iter().any(|op| op.store() == scope),
                    (None, Some(_)) => true,
                    (scope, None) => scope == store,
                }
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

    fn count(&self, op: Op) {
        self.calls.borrow_mut()[op as usize] += 1;
    }
}

/// Yields to the executor once.
pub async fn yield_now() {
    YieldNow(false).await
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

impl<B: Backend> FaultyBackend<B> {
    /// `read` (`groups` `None`) or `read_groups`, counted as one `Read` and subject to its faults.
    async fn faulty_read(&self, stores: &[&'static str], groups: Option<&[&str]>) -> Result<Vec<Result<StoreRows>>> {
        self.enter(Op::Read, None).await?;
        let failed: Vec<Option<Error>> = stores.iter().map(|s| self.take_fault(Op::Read, None, Some(s))).collect();
        let mut read = match groups {
            None => self.inner.read(stores).await?,
            Some(groups) => self.inner.read_groups(stores, groups).await?,
        };
        for (slot, error) in read.iter_mut().zip(failed) {
            if let Some(error) = error {
                *slot = Err(error);
            }
        }
        if let Some(slow) = self.slowness(Op::Read) {
            let rows = |read: &Result<StoreRows>| read.as_ref().map_or(0, |rows| rows.rows.len());
            slow.take(read.iter().map(|read| slow.chunks(rows(read))).sum()).await;
        }
        Ok(read)
    }
}

impl<B: Backend> Backend for FaultyBackend<B> {
    async fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.enter(Op::Write, Some(batch)).await?;
        if let Some(slow) = self.slowness(Op::Write) {
            slow.take(slow.chunks(batch.ops.len())).await;
        }
        self.inner.write(batch).await?;
        if self.late_acks.get() > 0 {
            self.late_acks.set(self.late_acks.get() - 1);
            std::future::pending::<()>().await;
        }
        if self.lost_acks.get() > 0 {
            self.lost_acks.set(self.lost_acks.get() - 1);
            self.lost.set(true);
            return Err(Error::ConnectionLost("injected: the connection closed after the commit".into()));
        }
        Ok(())
    }

    async fn read(&self, stores: &[&'static str]) -> Result<Vec<Result<StoreRows>>> {
        self.faulty_read(stores, None).await
    }

    async fn read_groups(&self, stores: &[&'static str], groups: &[&str]) -> Result<Vec<Result<StoreRows>>> {
        self.faulty_read(stores, Some(groups)).await
    }

    /// The inner backend's stream (its `Complete`s included), unless a fault of one store's read
    /// or slowness is set for it: then the whole read with its faults (see [`super::read_whole`]).
    async fn read_stream(
        &self,
        stores: &[&'static str],
        groups: Option<&[&str]>,
        sink: &mut dyn FnMut(ReadEvent) -> Result<()>,
    ) -> Result<()> {
        let store_fault =
            self.faults.borrow().iter().any(|f| f.op == Op::Read && f.store.is_some_and(|s| stores.contains(&s)));
        if store_fault || self.slowness(Op::Read).is_some() {
            return super::read_whole(self, stores, groups, sink).await;
        }
        self.enter(Op::Read, None).await?;
        self.inner.read_stream(stores, groups, sink).await
    }

    async fn get(&self, store: &'static str, key: &Key) -> Result<Option<Vec<u8>>> {
        self.enter(Op::Read, None).await?;
        self.inner.get(store, key).await
    }

    async fn scan(&self, store: &'static str) -> Result<StoreRows> {
        self.enter(Op::Scan, None).await?;
        self.inner.scan(store).await
    }

    async fn scan_groups(&self, store: &'static str, groups: &[&str]) -> Result<StoreRows> {
        self.enter(Op::Scan, None).await?;
        self.inner.scan_groups(store, groups).await
    }

    async fn pause(&self) {
        self.inner.pause().await
    }

    async fn reconnect(&self) -> Result<()> {
        self.reconnects.set(self.reconnects.get() + 1);
        let failing = self.failing_reconnects.get();
        if failing > 0 {
            self.failing_reconnects.set(failing - 1);
            // Still no connection; the inner backend is kept as it is (closing it would drop
            // state a real reconnect keeps, such as an encrypting backend's cipher).
            self.lost.set(true);
            YieldNow(false).await;
            return Err(Error::ConnectionLost("injected: the reconnect was refused".into()));
        }
        self.lost.set(false);
        self.hanging.borrow_mut().clear();
        self.inner.reconnect().await
    }

    fn close(&self) {
        self.inner.close()
    }
}

/// A virtual clock for deadlines in host tests: `sleep(ms)` resolves once [`VirtualClock::advance`]
/// moved the time past it. Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    now: std::rc::Rc<Cell<u64>>,
}

impl VirtualClock {
    /// The current virtual time in milliseconds.
    pub fn now(&self) -> u64 {
        self.now.get()
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }

    /// Resolves once the time moved `ms` past now (polled again by the test's executor: it
    /// registers no waker).
    pub fn sleep(&self, ms: u32) -> impl Future<Output = ()> + 'static {
        let (now, until) = (self.now.clone(), self.now() + u64::from(ms));
        std::future::poll_fn(move |_| if now.get() >= until { Poll::Ready(()) } else { Poll::Pending })
    }

    /// A deadline of `ms` measured by this clock (for `Options::deadline`).
    pub fn deadline(&self, ms: u32) -> crate::db::Deadline {
        let clock = self.clone();
        crate::db::Deadline { ms, sleep: std::rc::Rc::new(move |ms| Box::pin(clock.sleep(ms))) }
    }
}

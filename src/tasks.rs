//! The cooperative task registry: background coordinators (sync loops) that write into the store,
//! with a shutdown that cannot race them. Single-threaded: passes are futures spawned on a
//! [`Runtime`] (`spawn_local` and browser timers in wasm); nothing blocks.
//!
//! Invariants:
//! - a pass starts only through `begin_pass`, which refuses while the worker's gate is raised or a
//!   pass is in flight; the gate is a refcount whose every hold ([`GateHold`]) lowers only itself,
//!   on drop — including when the future holding it is dropped mid-await;
//! - once `shutdown` closed the latch no worker starts; every gate stays raised until the report
//!   is built, so no pass (not even `sync_now`) runs during the teardown or the final flush;
//! - a pass that outlives its drain timeout is an orphan: reported, and reaped when it ends.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::log::log_at;

/// A boxed future that need not be `Send` (everything runs on one thread).
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Where passes run and how time passes.
pub trait Runtime {
    /// Runs `future` in the background (`spawn_local` in the browser).
    fn spawn(&self, future: LocalFuture<()>);
    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u32) -> LocalFuture<()>;
}

/// A one-shot signal: fired once, observed by polling (`fired()`) or callbacks (`on_fire`).
#[derive(Clone, Default)]
pub struct Signal(Rc<SignalState>);

#[derive(Default)]
struct SignalState {
    fired: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
    callbacks: RefCell<Vec<Box<dyn FnOnce()>>>,
}

impl Signal {
    /// Fires the signal (once; later calls do nothing), waking every waiter and running every callback.
    pub fn fire(&self) {
        if self.0.fired.replace(true) {
            return;
        }
        for waker in self.0.wakers.take() {
            waker.wake();
        }
        for callback in self.0.callbacks.take() {
            callback();
        }
    }

    /// Whether it has fired.
    pub fn is_fired(&self) -> bool {
        self.0.fired.get()
    }

    /// Runs `callback` when fired (at once if already fired).
    pub fn on_fire(&self, callback: Box<dyn FnOnce()>) {
        if self.is_fired() {
            callback();
        } else {
            self.0.callbacks.borrow_mut().push(callback);
        }
    }

    /// Resolves once fired.
    pub fn fired(&self) -> impl Future<Output = ()> {
        let signal = self.clone();
        std::future::poll_fn(move |cx| {
            if signal.is_fired() {
                Poll::Ready(())
            } else {
                signal.0.wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

/// A refcounted flag: raised while anyone holds it.
#[derive(Debug, Default)]
pub struct Gate {
    holds: Cell<u32>,
}

/// One hold of a gate; dropping it lowers exactly this hold.
pub struct GateHold(Rc<Gate>);

impl Gate {
    /// Raises the gate by one hold; dropping the returned hold lowers it again.
    pub fn hold(self: &Rc<Self>) -> GateHold {
        self.holds.set(self.holds.get() + 1);
        GateHold(self.clone())
    }
    /// Whether anyone holds the gate.
    pub fn is_raised(&self) -> bool {
        self.holds.get() > 0
    }
    /// How many holds are outstanding.
    pub fn holds(&self) -> u32 {
        self.holds.get()
    }
}

impl Drop for GateHold {
    fn drop(&mut self) {
        self.0.holds.set(self.0.holds.get() - 1);
    }
}

/// Whichever of two futures finishes first (`true`: the first).
async fn first<A: Future<Output = ()>, B: Future<Output = ()>>(a: A, b: B) -> bool {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx: &mut Context<'_>| {
        if a.as_mut().poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        if b.as_mut().poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        Poll::Pending
    })
    .await
}

/// One pass of a worker: given the signal that fires when it should stop early.
pub type PassFn = Rc<dyn Fn(Signal) -> LocalFuture<std::result::Result<(), String>>>;

/// What to run in the background.
#[derive(Clone)]
pub struct WorkerSpec {
    /// Unique per registry.
    pub key: String,
    /// Shutdown stops lighter workers first.
    pub weight: u32,
    /// Pause between passes.
    pub interval_ms: u32,
    /// One pass; its signal fires when the worker is quiesced or shut down.
    pub pass: PassFn,
}

/// How a worker ended up, in `quiesce` and in the shutdown report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WorkerStatus {
    /// No loop and no pass were running.
    NotRunning,
    /// Stopped and drained.
    Stopped,
    /// Its pass did not drain within the timeout; it lives on as an orphan.
    TimedOut,
    /// An orphan from an earlier timeout is still running.
    Orphaned,
    /// Its last pass failed (rejected, threw or panicked).
    Failed,
}

impl WorkerStatus {
    fn is_clean(&self) -> bool {
        matches!(self, WorkerStatus::NotRunning | WorkerStatus::Stopped | WorkerStatus::Failed)
    }
}

/// What `sync_now` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// A pass ran to its end.
    Ran,
    /// Skipped: the worker's gate is raised.
    SkippedQuiescing,
    /// Skipped: a pass is already running.
    SkippedBusy,
}

/// One line of the shutdown report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerReport {
    /// The worker's key (`persister` for the final flush).
    pub key: String,
    /// Its weight (stop order).
    pub weight: u32,
    /// How it ended up.
    pub status: WorkerStatus,
    /// The failure message when `status` is `Failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of `shutdown`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShutdownReport {
    /// Every worker drained (failed passes count as drained) and the final step succeeded.
    pub clean: bool,
    /// In stop order: ascending weight, the final step last.
    pub workers: Vec<WorkerReport>,
}

struct Worker {
    spec: RefCell<WorkerSpec>,
    gate: Rc<Gate>,
    /// The `is_syncing` slot: set by `begin_pass`, cleared when the pass ends.
    syncing: Cell<bool>,
    /// Fires to cancel the running loop; `None` when no loop runs.
    loop_stop: RefCell<Option<Signal>>,
    /// The in-flight pass's abort signal and completion signal.
    pass_abort: RefCell<Signal>,
    pass_done: RefCell<Signal>,
    orphan: Cell<bool>,
    last_error: RefCell<Option<String>>,
}

/// The in-flight pass; dropping it (however the pass ended) frees the slot and reaps an orphan.
struct PassGuard(Rc<Worker>);

impl Drop for PassGuard {
    fn drop(&mut self) {
        let worker = &self.0;
        worker.syncing.set(false);
        if worker.orphan.replace(false) {
            log_at!(Warn, "worker {} reaped: its orphaned pass finally ended", worker.spec.borrow().key);
        }
        worker.pass_done.borrow().fire();
    }
}

impl Worker {
    fn begin_pass(self: &Rc<Self>) -> std::result::Result<PassGuard, SyncOutcome> {
        if self.gate.is_raised() {
            return Err(SyncOutcome::SkippedQuiescing);
        }
        if self.syncing.replace(true) {
            return Err(SyncOutcome::SkippedBusy);
        }
        *self.pass_abort.borrow_mut() = Signal::default();
        *self.pass_done.borrow_mut() = Signal::default();
        Ok(PassGuard(self.clone()))
    }

    /// Runs one pass that `begin_pass` admitted; failures (rejections, panics on the host) are
    /// recorded, never propagated.
    async fn run(self: Rc<Self>, guard: PassGuard) {
        let (key, pass) = {
            let spec = self.spec.borrow();
            (spec.key.clone(), spec.pass.clone())
        };
        let abort = self.pass_abort.borrow().clone();
        let outcome = CatchUnwind(pass(abort)).await;
        match outcome {
            Ok(()) => *self.last_error.borrow_mut() = None,
            Err(message) => {
                log_at!(Error, "worker {key}: pass failed: {message}");
                *self.last_error.borrow_mut() = Some(message);
            }
        }
        drop(guard);
    }

    fn status_after_drain(&self) -> WorkerStatus {
        if self.last_error.borrow().is_some() {
            WorkerStatus::Failed
        } else {
            WorkerStatus::Stopped
        }
    }
}

/// Turns a panic inside a pass into an error (host only: wasm32 aborts on panic).
struct CatchUnwind(LocalFuture<std::result::Result<(), String>>);

impl Future for CatchUnwind {
    type Output = std::result::Result<(), String>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a pass panicked".into());
                Poll::Ready(Err(format!("panicked: {message}")))
            }
        }
    }
}

/// A clearing latch on one key; dropping it releases only this hold. The latches are only looked
/// up, never listed: a `HashMap`, whose instance the .wasm already holds (channel rows), not a
/// B-tree instance of its own.
pub struct ClearingHold {
    latches: Rc<RefCell<HashMap<String, u32>>>,
    key: String,
}

impl Drop for ClearingHold {
    fn drop(&mut self) {
        let mut latches = self.latches.borrow_mut();
        if let Some(count) = latches.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                latches.remove(&self.key);
            }
        }
    }
}

/// The background coordinators of one store.
pub struct TaskRegistry {
    runtime: Rc<dyn Runtime>,
    workers: RefCell<BTreeMap<String, Rc<Worker>>>,
    /// The shutdown latch: once set, `start` is refused for good.
    closed: Cell<bool>,
    /// Set when `shutdown` ended (or the store was abandoned): `sync_now` is refused for good.
    shut_down: Cell<bool>,
    clearing: Rc<RefCell<HashMap<String, u32>>>,
}

impl TaskRegistry {
    /// An empty, open registry on `runtime`.
    pub fn new(runtime: Rc<dyn Runtime>) -> Self {
        TaskRegistry {
            runtime,
            workers: RefCell::default(),
            closed: Cell::new(false),
            shut_down: Cell::new(false),
            clearing: Rc::default(),
        }
    }

    fn worker(&self, key: &str) -> Result<Rc<Worker>> {
        self.workers.borrow().get(key).cloned().ok_or_else(|| Error::InvalidArgument(format!("no worker {key:?}")))
    }

    /// Starts (or restarts in place) a worker's loop: a pass at once, then one every interval.
    pub fn start(&self, spec: WorkerSpec) -> Result<()> {
        if self.closed.get() {
            return Err(Error::Closed);
        }
        if spec.key.is_empty() {
            return Err(Error::InvalidArgument("a worker needs a key".into()));
        }
        if self.clearing.borrow().contains_key(&spec.key) {
            return Err(Error::ShutdownIncomplete(format!(
                "worker {} cannot start while its data is being cleared",
                spec.key
            )));
        }
        let existing = self.workers.borrow().get(&spec.key).cloned();
        let worker = match existing {
            Some(worker) => {
                if worker.loop_stop.borrow().is_some() {
                    return Err(Error::InvalidArgument(format!("worker {} is already running", spec.key)));
                }
                *worker.spec.borrow_mut() = spec;
                worker
            }
            None => {
                let worker = Rc::new(Worker {
                    spec: RefCell::new(spec.clone()),
                    gate: Rc::default(),
                    syncing: Cell::new(false),
                    loop_stop: RefCell::new(None),
                    pass_abort: RefCell::default(),
                    pass_done: RefCell::default(),
                    orphan: Cell::new(false),
                    last_error: RefCell::new(None),
                });
                self.workers.borrow_mut().insert(spec.key.clone(), worker.clone());
                worker
            }
        };
        let stop = Signal::default();
        *worker.loop_stop.borrow_mut() = Some(stop.clone());
        let runtime = self.runtime.clone();
        self.runtime.spawn(Box::pin(async move {
            while !stop.is_fired() {
                if let Ok(guard) = worker.begin_pass() {
                    worker.clone().run(guard).await;
                }
                let interval = worker.spec.borrow().interval_ms;
                first(stop.fired(), runtime.sleep(interval)).await;
            }
        }));
        Ok(())
    }

    /// Runs one pass now, unless the worker is quiescing or already in a pass. Refused with
    /// `Closed` once `shutdown` ended (during it, every gate is held: skipped): no pass runs
    /// after `close`.
    pub async fn sync_now(&self, key: &str) -> Result<SyncOutcome> {
        if self.shut_down.get() {
            return Err(Error::Closed);
        }
        let worker = self.worker(key)?;
        match worker.begin_pass() {
            Ok(guard) => {
                worker.run(guard).await;
                Ok(SyncOutcome::Ran)
            }
            Err(skipped) => Ok(skipped),
        }
    }

    /// Cancels the worker's loop and returns at once; an in-flight pass runs on (see `quiesce`).
    pub fn stop(&self, key: &str) -> Result<()> {
        if let Some(stop) = self.worker(key)?.loop_stop.borrow_mut().take() {
            stop.fire();
        }
        Ok(())
    }

    /// Raises the worker's gate, cancels its loop, aborts and waits for its in-flight pass up to
    /// `timeout_ms`. The gate is lowered when this returns or is dropped.
    pub async fn quiesce(&self, key: &str, timeout_ms: u32) -> Result<WorkerStatus> {
        let worker = self.worker(key)?;
        let _hold = worker.gate.hold();
        Ok(self.drain(&worker, timeout_ms).await)
    }

    /// Quiesces a worker whose gate the caller holds.
    async fn drain(&self, worker: &Rc<Worker>, timeout_ms: u32) -> WorkerStatus {
        let had_loop = match worker.loop_stop.borrow_mut().take() {
            Some(stop) => {
                stop.fire();
                true
            }
            None => false,
        };
        if !worker.syncing.get() {
            return if had_loop { worker.status_after_drain() } else { WorkerStatus::NotRunning };
        }
        if worker.orphan.get() {
            return WorkerStatus::Orphaned;
        }
        worker.pass_abort.borrow().fire();
        let done = worker.pass_done.borrow().clone();
        if first(done.fired(), self.runtime.sleep(timeout_ms)).await {
            return worker.status_after_drain();
        }
        worker.orphan.set(true);
        log_at!(
            Warn,
            "worker {}: pass did not drain within {timeout_ms} ms; parked as an orphan",
            worker.spec.borrow().key
        );
        WorkerStatus::TimedOut
    }

    /// Quiesces every worker in ascending weight (equal weights concurrently) with every gate held
    /// for the whole teardown, then runs `final_step` (the store's final flush) as the heaviest
    /// worker, `final_key`. Afterwards `start` is refused for good.
    pub async fn shutdown(
        &self,
        timeout_ms: u32,
        final_key: &str,
        final_step: impl Future<Output = Result<()>>,
    ) -> ShutdownReport {
        self.closed.set(true);
        let workers: Vec<Rc<Worker>> = self.workers.borrow().values().cloned().collect();
        let _holds: Vec<GateHold> = workers.iter().map(|w| w.gate.hold()).collect();
        let mut by_weight: BTreeMap<u32, Vec<Rc<Worker>>> = BTreeMap::new();
        for worker in workers {
            let weight = worker.spec.borrow().weight;
            by_weight.entry(weight).or_default().push(worker);
        }
        let mut report = Vec::new();
        for (weight, group) in by_weight {
            let statuses = join_all(group.iter().map(|w| self.drain(w, timeout_ms))).await;
            for (worker, status) in group.iter().zip(statuses) {
                let error = (status == WorkerStatus::Failed).then(|| worker.last_error.borrow().clone()).flatten();
                report.push(WorkerReport { key: worker.spec.borrow().key.clone(), weight, status, error });
            }
        }
        let (status, error) = match final_step.await {
            Ok(()) => (WorkerStatus::Stopped, None),
            Err(error) => (WorkerStatus::Failed, Some(error.to_string())),
        };
        report.push(WorkerReport { key: final_key.to_owned(), weight: u32::MAX, status, error });
        let clean = report.iter().all(|w| w.status.is_clean()) && report.last().is_some_and(|w| w.error.is_none());
        log_at!(Info, "shutdown {}: {} worker(s)", if clean { "clean" } else { "incomplete" }, report.len());
        self.shut_down.set(true);
        ShutdownReport { clean, workers: report }
    }

    /// Holds the clearing latch of `key`: `start(key)` is refused until every hold is dropped.
    pub fn hold_clearing(&self, key: &str) -> ClearingHold {
        *self.clearing.borrow_mut().entry(key.to_owned()).or_default() += 1;
        ClearingHold { latches: self.clearing.clone(), key: key.to_owned() }
    }

    /// Runs `wipe` with every running worker stopped: holds their clearing latches and gates,
    /// quiesces them, and refuses with `ShutdownIncomplete` (nothing wiped) if any did not drain.
    /// The loops that ran before are restarted afterwards.
    pub async fn while_quiesced<T>(&self, timeout_ms: u32, wipe: impl Future<Output = Result<T>>) -> Result<T> {
        let workers: Vec<Rc<Worker>> = self.workers.borrow().values().cloned().collect();
        let running: Vec<Rc<Worker>> =
            workers.iter().filter(|w| w.loop_stop.borrow().is_some() || w.syncing.get()).cloned().collect();
        let restart: Vec<WorkerSpec> =
            running.iter().filter(|w| w.loop_stop.borrow().is_some()).map(|w| w.spec.borrow().clone()).collect();
        let outcome = {
            let _latches: Vec<ClearingHold> =
                running.iter().map(|w| self.hold_clearing(&w.spec.borrow().key)).collect();
            let _holds: Vec<GateHold> = running.iter().map(|w| w.gate.hold()).collect();
            let statuses = join_all(running.iter().map(|w| self.drain(w, timeout_ms))).await;
            let stuck: Vec<String> = running
                .iter()
                .zip(&statuses)
                .filter(|(_, s)| !s.is_clean())
                .map(|(w, _)| w.spec.borrow().key.clone())
                .collect();
            if stuck.is_empty() {
                wipe.await
            } else {
                Err(Error::ShutdownIncomplete(format!(
                    "worker(s) {} did not stop within {timeout_ms} ms; nothing was deleted — retry, and keep your own copy until it succeeds",
                    stuck.join(", ")
                )))
            }
        };
        if !self.closed.get() {
            for spec in restart {
                let _ = self.start(spec);
            }
        }
        outcome
    }

    /// Closes the latch, cancels every loop and aborts every pass without waiting (the store is
    /// being dropped without `close`).
    pub fn abandon(&self) {
        self.closed.set(true);
        self.shut_down.set(true);
        for worker in self.workers.borrow().values() {
            if let Some(stop) = worker.loop_stop.borrow_mut().take() {
                stop.fire();
            }
            worker.pass_abort.borrow().fire();
        }
    }

    /// The gate refcount of a worker (for tests and diagnostics).
    pub fn gate_holds(&self, key: &str) -> Result<u32> {
        Ok(self.worker(key)?.gate.holds())
    }

    /// Whether a worker's pass is in flight.
    pub fn is_syncing(&self, key: &str) -> Result<bool> {
        Ok(self.worker(key)?.syncing.get())
    }

    /// Whether `shutdown` has closed the latch (no new `start`).
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }
}

/// Polls every future concurrently on the current task; outputs in input order.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                if let Poll::Ready(value) = future.as_mut().poll(cx) {
                    *output = Some(value);
                }
            }
        }
        if outputs.iter().all(Option::is_some) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("all ready")).collect()
}

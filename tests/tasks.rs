//! The task registry on a single-threaded executor with virtual time: every race of the shutdown
//! protocol, deterministic.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use wallet_persist::backend::MemoryBackend;
use wallet_persist::tasks::*;
use wallet_persist::testing::{sample_changeset, wallet_id};
use wallet_persist::wallets::{Options, Persister};
use wallet_persist::Error;

/// Spawned tasks plus a virtual clock that advances 1 ms whenever a round of polls is done.
#[derive(Default)]
struct Executor {
    now: Cell<u64>,
    tasks: RefCell<Vec<LocalFuture<()>>>,
    spawned: RefCell<Vec<LocalFuture<()>>>,
}

struct Rt(Rc<Executor>);

impl Runtime for Rt {
    fn spawn(&self, future: LocalFuture<()>) {
        self.0.spawned.borrow_mut().push(future);
    }
    fn sleep(&self, ms: u32) -> LocalFuture<()> {
        let executor = self.0.clone();
        let deadline = executor.now.get() + u64::from(ms);
        Box::pin(std::future::poll_fn(
            move |_| if executor.now.get() >= deadline { Poll::Ready(()) } else { Poll::Pending },
        ))
    }
}

impl Executor {
    fn now(&self) -> u64 {
        self.now.get()
    }

    /// Drives `main` and every spawned task until `main` completes (at most 10 virtual minutes).
    fn run<T>(&self, main: impl Future<Output = T>) -> T {
        let mut main = std::pin::pin!(main);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..600_000 {
            if let Poll::Ready(out) = main.as_mut().poll(&mut cx) {
                return out;
            }
            self.tick(&mut cx);
        }
        panic!("main did not complete within 10 virtual minutes");
    }

    /// Polls the spawned tasks once, then advances the clock by 1 ms.
    fn tick(&self, cx: &mut Context<'_>) {
        let new = std::mem::take(&mut *self.spawned.borrow_mut());
        self.tasks.borrow_mut().extend(new);
        let mut tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        tasks.retain_mut(|task| task.as_mut().poll(cx).is_pending());
        self.tasks.borrow_mut().extend(tasks);
        self.now.set(self.now.get() + 1);
    }

    /// Lets `ms` virtual milliseconds pass.
    async fn idle(self: &Rc<Self>, ms: u64) {
        let until = self.now() + ms;
        let executor = self.clone();
        std::future::poll_fn(move |_| if executor.now() >= until { Poll::Ready(()) } else { Poll::Pending }).await
    }
}

fn setup() -> (Rc<Executor>, TaskRegistry) {
    let executor = Rc::new(Executor::default());
    let registry = TaskRegistry::new(Rc::new(Rt(executor.clone())));
    (executor, registry)
}

/// A pass that records when it starts and ends, takes `ms` virtual milliseconds (or until its
/// abort signal fires, if `abortable`), and logs into `log`.
fn timed_pass(executor: &Rc<Executor>, log: &Rc<RefCell<Vec<String>>>, name: &str, ms: u64, abortable: bool) -> PassFn {
    let (executor, log, name) = (executor.clone(), log.clone(), name.to_owned());
    Rc::new(move |abort: Signal| {
        let (executor, log, name) = (executor.clone(), log.clone(), name.clone());
        Box::pin(async move {
            log.borrow_mut().push(format!("{name} start @{}", executor.now()));
            let until = executor.now() + ms;
            std::future::poll_fn(|_| {
                if executor.now() >= until || (abortable && abort.is_fired()) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            log.borrow_mut().push(format!("{name} end @{}", executor.now()));
            Ok(())
        }) as LocalFuture<_>
    })
}

/// A pass that waits until `release` fires, ignoring its abort signal (a wedged pass).
fn wedged_pass(release: &Signal, ran: &Rc<Cell<u32>>) -> PassFn {
    let (release, ran) = (release.clone(), ran.clone());
    Rc::new(move |_abort: Signal| {
        let (release, ran) = (release.clone(), ran.clone());
        Box::pin(async move {
            ran.set(ran.get() + 1);
            release.fired().await;
            Ok(())
        }) as LocalFuture<_>
    })
}

fn spec(key: &str, weight: u32, interval_ms: u32, pass: PassFn) -> WorkerSpec {
    WorkerSpec { key: key.into(), weight, interval_ms, pass }
}

fn statuses(report: &ShutdownReport) -> Vec<(&str, WorkerStatus)> {
    report.workers.iter().map(|w| (w.key.as_str(), w.status.clone())).collect()
}

#[test]
fn shutdown_waits_for_an_in_flight_pass_holds_every_gate_through_the_final_step_and_releases_them() {
    let (ex, registry) = setup();
    let log = Rc::new(RefCell::new(Vec::new()));
    registry.start(spec("core", 0, 1_000, timed_pass(&ex, &log, "core", 50, false))).unwrap();
    registry.start(spec("identity", 1, 1_000, timed_pass(&ex, &log, "identity", 5, false))).unwrap();
    let report = ex.run(async {
        ex.idle(10).await; // core's first pass is in flight (50 ms, ignores abort)
        assert!(registry.is_syncing("core").unwrap());
        let final_step = async {
            // During the final flush every gate is still raised: syncNow does no work.
            assert_eq!(registry.sync_now("core").await.unwrap(), SyncOutcome::SkippedQuiescing);
            assert_eq!(registry.sync_now("identity").await.unwrap(), SyncOutcome::SkippedQuiescing);
            assert_eq!(registry.gate_holds("core").unwrap(), 1);
            log.borrow_mut().push(format!("final @{}", ex.now()));
            Ok(())
        };
        registry.shutdown(1_000, "persister", final_step).await
    });
    assert!(report.clean, "{report:?}");
    assert_eq!(
        statuses(&report),
        vec![
            ("core", WorkerStatus::Stopped),
            ("identity", WorkerStatus::Stopped),
            ("persister", WorkerStatus::Stopped)
        ]
    );
    let log = log.borrow();
    let core_end = log.iter().position(|l| l.starts_with("core end")).expect("core drained");
    let final_at = log.iter().position(|l| l.starts_with("final")).unwrap();
    assert!(core_end < final_at, "the in-flight pass drained before the final step: {log:?}");
    assert_eq!(log.iter().filter(|l| l.contains("start")).count(), 2, "no pass started during the teardown: {log:?}");
    assert_eq!((registry.gate_holds("core").unwrap(), registry.gate_holds("identity").unwrap()), (0, 0));
    assert_eq!(
        registry.start(spec("late", 0, 10, timed_pass(&ex, &Rc::default(), "late", 1, true))).unwrap_err(),
        Error::Closed
    );
}

#[test]
fn a_quiesce_dropped_mid_drain_leaves_the_gate_refcount_at_zero() {
    let (ex, registry) = setup();
    let release = Signal::default();
    let ran = Rc::new(Cell::new(0));
    registry.start(spec("core", 0, 1_000, wedged_pass(&release, &ran))).unwrap();
    ex.run(async {
        ex.idle(1).await;
        {
            let quiesce = registry.quiesce("core", 10_000);
            let mut quiesce = std::pin::pin!(quiesce);
            let mut cx = Context::from_waker(Waker::noop());
            assert!(quiesce.as_mut().poll(&mut cx).is_pending(), "draining a wedged pass");
            assert_eq!(registry.gate_holds("core").unwrap(), 1);
            // The future is dropped here, mid-drain.
        }
        assert_eq!(registry.gate_holds("core").unwrap(), 0, "dropping the quiesce lowered its hold");
        // Nested holders compose: two quiesces, the first finishing does not lower the second.
        release.fire();
        ex.idle(1).await;
    });
    assert_eq!(registry.gate_holds("core").unwrap(), 0);
}

#[test]
fn nested_clearing_holds_compose_and_start_stays_refused_until_the_outer_drops() {
    let (ex, registry) = setup();
    let pass = timed_pass(&ex, &Rc::default(), "sync", 1, true);
    let outer = registry.hold_clearing("sync");
    let inner = registry.hold_clearing("sync");
    drop(inner);
    assert_eq!(registry.start(spec("sync", 0, 100, pass.clone())).unwrap_err().code(), 19);
    drop(outer);
    registry.start(spec("sync", 0, 100, pass)).unwrap();
}

#[test]
fn a_wedged_pass_becomes_an_orphan_is_reported_and_reaped_and_a_wipe_meanwhile_refuses_19_with_data_intact() {
    let (ex, registry) = setup();
    let release = Signal::default();
    let ran = Rc::new(Cell::new(0));
    let backend = MemoryBackend::new();
    let persister = ex.run(Persister::open(backend.reopen(), Options::default())).unwrap();
    let a = wallet_id(1);
    ex.run(async {
        persister.store(a, sample_changeset(1)).await.unwrap();
        persister.flush().await.unwrap();
    });
    registry.start(spec("wedged", 0, 1_000, wedged_pass(&release, &ran))).unwrap();
    ex.run(async {
        ex.idle(1).await;
        assert_eq!(registry.quiesce("wedged", 100).await.unwrap(), WorkerStatus::TimedOut);
        // The loop stopped; the orphan still holds the slot.
        assert!(registry.is_syncing("wedged").unwrap());
        assert_eq!(registry.sync_now("wedged").await.unwrap(), SyncOutcome::SkippedBusy);
        // Restart in place while the orphan lives: its loop finds the slot busy.
        registry.start(spec("wedged", 0, 1_000, wedged_pass(&release, &ran))).unwrap();
        let wiped = registry.while_quiesced(100, persister.delete_wallet(a)).await;
        assert_eq!(wiped.unwrap_err().code(), 19);
    });
    let (state, _) = ex.run(persister.load()).unwrap();
    assert_eq!(state.wallets[&a], sample_changeset(1), "the refused wipe deleted nothing");
    release.fire();
    let report = ex.run(async {
        ex.idle(2).await;
        assert!(!registry.is_syncing("wedged").unwrap(), "the orphan was reaped when it ended");
        registry.while_quiesced(100, persister.delete_wallet(a)).await.unwrap();
        registry.shutdown(100, "persister", async { Ok(()) }).await
    });
    assert_eq!(ran.get(), 2, "the restarted loop ran once the orphan was gone");
    assert!(ex.run(persister.load()).unwrap().0.wallets.is_empty());
    assert!(report.clean);
}

#[test]
fn stop_returns_while_a_pass_is_parked_and_shutdown_is_what_waits_for_it() {
    let (ex, registry) = setup();
    let release = Signal::default();
    let ran = Rc::new(Cell::new(0));
    registry.start(spec("slow", 0, 1_000, wedged_pass(&release, &ran))).unwrap();
    let report = ex.run(async {
        ex.idle(1).await;
        registry.stop("slow").unwrap();
        assert!(registry.is_syncing("slow").unwrap(), "stop did not wait");
        let (release, clock) = (release.clone(), ex.clone());
        let releaser = async move {
            clock.idle(30).await;
            release.fire();
        };
        let (report, ()) =
            wallet_persist::testing::join2(registry.shutdown(1_000, "persister", async { Ok(()) }), releaser).await;
        assert!(ex.now() >= 30, "shutdown waited for the pass");
        report
    });
    assert_eq!(statuses(&report)[0], ("slow", WorkerStatus::Stopped));
    assert_eq!(ran.get(), 1);
}

#[test]
fn shutdown_stops_workers_in_ascending_weight_and_equal_weights_concurrently() {
    let (ex, registry) = setup();
    let log = Rc::new(RefCell::new(Vec::new()));
    for (key, weight) in [("heavy", 9), ("light-a", 1), ("light-b", 1), ("middle", 5)] {
        registry.start(spec(key, weight, 1_000, timed_pass(&ex, &log, key, 500, true))).unwrap();
    }
    let report = ex.run(async {
        ex.idle(1).await; // every first pass is in flight; each ends when aborted
        log.borrow_mut().clear();
        registry.shutdown(1_000, "persister", async { Ok(()) }).await
    });
    let order: Vec<&str> = report.workers.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(order, ["light-a", "light-b", "middle", "heavy", "persister"]);
    let ends: Vec<(String, u64)> = log
        .borrow()
        .iter()
        .filter_map(|l| l.split_once(" end @").map(|(k, t)| (k.to_string(), t.parse().unwrap())))
        .collect();
    let at = |key: &str| ends.iter().find(|(k, _)| k == key).unwrap().1;
    assert_eq!(at("light-a"), at("light-b"), "equal weights drain together: {ends:?}");
    assert!(at("light-b") < at("middle") && at("middle") < at("heavy"), "lighter first: {ends:?}");
    assert!(at("heavy") < 100, "every pass was aborted, none ran its 500 ms: {ends:?}");
}

#[test]
fn a_worker_started_just_before_shutdown_keeps_its_live_status_and_failed_passes_are_reported() {
    let (ex, registry) = setup();
    let failing: PassFn = Rc::new(|_| Box::pin(async { Err("server said no".to_string()) }) as LocalFuture<_>);
    let panicking: PassFn = Rc::new(|_| {
        Box::pin(async {
            if true {
                panic!("boom");
            }
            Ok(())
        }) as LocalFuture<_>
    });
    registry.start(spec("failing", 0, 10, failing)).unwrap();
    registry.start(spec("panicking", 0, 10, panicking)).unwrap();
    let report = ex.run(async {
        ex.idle(25).await; // both failed several times; the registry keeps running
        registry.start(spec("fresh", 3, 10, timed_pass(&ex, &Rc::default(), "fresh", 5, false))).unwrap();
        registry.shutdown(100, "persister", async { Err(Error::QuotaExceeded("disk full".into())) }).await
    });
    assert_eq!(
        statuses(&report),
        vec![
            ("failing", WorkerStatus::Failed),
            ("panicking", WorkerStatus::Failed),
            ("fresh", WorkerStatus::Stopped),
            ("persister", WorkerStatus::Failed)
        ]
    );
    assert_eq!(report.workers[0].error.as_deref(), Some("server said no"));
    assert!(report.workers[1].error.as_deref().unwrap().contains("boom"));
    assert!(report.workers[3].error.as_deref().unwrap().contains("disk full"));
    assert!(!report.clean);
}

#[test]
fn fifty_workers_shut_down_in_one_pass_of_the_teardown() {
    let (ex, registry) = setup();
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..50 {
        registry
            .start(spec(&format!("w{i:02}"), i % 5, 100, timed_pass(&ex, &log, &format!("w{i:02}"), 3, true)))
            .unwrap();
    }
    let started = ex.now();
    let report = ex.run(async {
        ex.idle(1).await;
        registry.shutdown(1_000, "persister", async { Ok(()) }).await
    });
    assert!(report.clean);
    assert_eq!(report.workers.len(), 51);
    // Abortable passes drain at once: the teardown takes a handful of virtual milliseconds.
    assert!(ex.now() - started < 20, "{} ms", ex.now() - started);
}

/// After `shutdown` resolved, `sync_now` is refused with `Closed` and runs no pass (issue 15: a
/// pass used to run after `close()` resolved).
#[test]
fn sync_now_after_shutdown_is_refused_and_runs_no_pass() {
    let (ex, registry) = setup();
    let log = Rc::new(RefCell::new(Vec::new()));
    registry.start(spec("core", 0, 60_000, timed_pass(&ex, &log, "core", 1, true))).unwrap();
    ex.run(async {
        ex.idle(5).await;
        registry.shutdown(1_000, "persister", async { Ok(()) }).await;
        let passes = log.borrow().len();
        assert_eq!(registry.sync_now("core").await.unwrap_err(), Error::Closed);
        ex.idle(5).await;
        assert_eq!(log.borrow().len(), passes, "no pass ran after shutdown: {:?}", log.borrow());
    });
}

/// A public `quiesce` during a wipe: it drains nothing (the wipe holds the worker), starts nothing,
/// and leaves no gate hold behind; the loop restarts after the wipe.
#[test]
fn a_quiesce_during_a_wipe_leaves_no_hold_and_the_loop_restarts() {
    let (ex, registry) = setup();
    let log = Rc::new(RefCell::new(Vec::new()));
    registry.start(spec("core", 0, 100, timed_pass(&ex, &log, "core", 1, true))).unwrap();
    let status = ex.run(async {
        ex.idle(5).await;
        registry
            .while_quiesced(1_000, async {
                let status = registry.quiesce("core", 1_000).await.unwrap();
                assert_eq!(registry.gate_holds("core").unwrap(), 1, "only the wipe's hold remains");
                let refused = registry.start(spec("core", 0, 100, timed_pass(&ex, &log, "core", 1, true))).unwrap_err();
                assert_eq!(refused.code(), 19, "start is refused while the wipe runs");
                Ok(status)
            })
            .await
            .unwrap()
    });
    assert_eq!(status, WorkerStatus::NotRunning);
    assert_eq!(registry.gate_holds("core").unwrap(), 0);
    let passes = log.borrow().iter().filter(|l| l.contains("start")).count();
    ex.run(async { ex.idle(300).await });
    assert!(log.borrow().iter().filter(|l| l.contains("start")).count() > passes, "the loop restarted after the wipe");
}

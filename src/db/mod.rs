//! The database core every feature shares: one connection over a [`Backend`] with its
//! open/closing/closed state, the schema gate, the one reconnect rule, the deadline on every call
//! and the one bulk-read-with-fallback.

mod deadline;
mod lock;
pub mod migrations;
pub mod schema;

use std::cell::{Cell, RefCell};

use crate::backend::{Backend, ReadEvent, StoreRows, WriteBatch, WriteSource};
use crate::error::{Error, Result};
use crate::log::log_at;

pub use deadline::{within, Deadline, Sleep, DEFAULT_TIMEOUT_MS};
pub use lock::{WriteGuard, WriteLock};
pub use schema::{Access, GateOutcome, Version};

/// Where a connection is in its life. Only `close` moves it forward; a lost connection is
/// still `Open` but disconnected (see [`Db::is_disconnected`]): calls fail with a retryable
/// error until a reconnect succeeds, and nothing staged is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Reads and writes are allowed.
    Open,
    /// `close` is running: reads are allowed, new writes are refused.
    Closing,
    /// Everything is refused with [`Error::Closed`].
    Closed,
}

/// A gated connection: the schema was checked (and migrated) before anything else ran.
pub struct Db<B: Backend> {
    backend: B,
    read_only: bool,
    state: Cell<State>,
    gate: RefCell<GateOutcome>,
    /// Set when the connection was lost and the reconnect failed, or a call timed out (the
    /// connection may be wedged): the next call reconnects first.
    disconnected: Cell<bool>,
    /// Successful reconnects so far: what was learnt of the rows on one connection may not hold
    /// on the next (the database may have been cleared or deleted and created again meanwhile),
    /// and a write that failed across one may have landed before it.
    reconnects: Cell<u64>,
    /// The bound on every backend call; `None`: unbounded (host tests without a clock).
    deadline: Option<Deadline>,
}

/// The rows of a read, store by store, and the stores that were read row by row because their
/// bulk read failed as a whole.
pub struct Reads {
    /// One entry per requested store, in request order.
    pub stores: Vec<StoreRows>,
    /// The stores read row by row.
    pub scanned: Vec<&'static str>,
}

impl<B: Backend> Db<B> {
    /// Runs the schema gate (see [`schema`]): a database written by a newer schema is refused
    /// with `SchemaVersionUnsupported` and left untouched; an older one is migrated. On failure
    /// the backend is closed.
    /// The gate is bounded by `deadline` like every later call.
    pub async fn open(backend: B, read_only: bool, deadline: Option<Deadline>) -> Result<Self> {
        let gate = within(deadline.as_ref(), schema::gate(&backend, read_only), |ms| {
            format!("the schema check at open made no progress for {ms} ms")
        })
        .await;
        match gate {
            Ok(gate) => Ok(Db {
                backend,
                read_only,
                state: Cell::new(State::Open),
                gate: RefCell::new(gate),
                disconnected: Cell::new(false),
                reconnects: Cell::new(0),
                deadline,
            }),
            Err(error) => {
                log_at!(Error, "open refused: {error}");
                backend.close();
                Err(error)
            }
        }
    }

    /// The backend (tests arm its faults through it).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Whether this connection only reads (a follower).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// What the last open or reopen's schema gate found and did.
    pub fn gate(&self) -> GateOutcome {
        *self.gate.borrow()
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.state.get()
    }

    /// How many times the store reconnected: rows read or checked before a reconnect may be gone
    /// after it (data cleared, the database deleted by another tab and created again).
    pub fn reconnects(&self) -> u64 {
        self.reconnects.get()
    }

    /// Whether the connection is lost (a reconnect failed, or a call timed out): calls fail with a
    /// retryable error until a reconnect succeeds. Never the same as closed.
    pub fn is_disconnected(&self) -> bool {
        self.disconnected.get()
    }

    /// Refuses every call once closed.
    pub fn check_open(&self) -> Result<()> {
        match self.state.get() {
            State::Closed => Err(Error::Closed),
            State::Open | State::Closing => Ok(()),
        }
    }

    /// Refuses a new write: closing or closed, or a read-only follower.
    pub fn check_writable(&self) -> Result<()> {
        if self.state.get() != State::Open {
            return Err(Error::Closed);
        }
        if self.read_only {
            return Err(Error::ReadOnlyFollower(String::from("this database")));
        }
        self.gate.borrow().check_writable()
    }

    /// Marks the connection closing (`true`) or open again after a failed close (`false`).
    pub fn set_closing(&self, closing: bool) {
        if self.state.get() != State::Closed {
            self.state.set(if closing { State::Closing } else { State::Open });
        }
    }

    /// Releases the connection for good.
    pub fn close(&self) {
        self.state.set(State::Closed);
        self.backend.close();
    }

    /// Whether a write that failed with `error` may have committed all the same, given
    /// [`Db::reconnects`] as read before it: it timed out (a commit can land after its deadline),
    /// lost its connection (a commit can land before its answer), or was retried on a new
    /// connection (the first attempt may have landed before the old one went).
    pub fn may_have_landed(&self, error: &Error, reconnects_before: u64) -> bool {
        matches!(error, Error::Timeout(_) | Error::ConnectionLost(_)) || self.reconnects() != reconnects_before
    }

    /// Connects again (after the database was closed under us, upgraded by another tab, or wedged
    /// by a call that never settled) and re-runs the schema gate, within the deadline. On failure
    /// the store stays open and disconnected: later calls try again.
    pub async fn reopen(&self) -> Result<GateOutcome> {
        self.check_open()?;
        let reconnected = self
            .bounded(async {
                self.backend.reconnect().await?;
                schema::gate(&self.backend, self.read_only).await
            })
            .await;
        match reconnected {
            Ok(gate) => {
                *self.gate.borrow_mut() = gate;
                self.disconnected.set(false);
                self.reconnects.set(self.reconnects.get() + 1);
                log_at!(Info, "reconnected to the database");
                Ok(gate)
            }
            Err(error) => {
                self.disconnected.set(true);
                Err(error)
            }
        }
    }

    /// `work` within the deadline: a retryable `Timeout` once it made no progress for the deadline's
    /// `ms` (the connection then counted as wedged); a call that keeps progressing runs to its end. A backend that says `Closed` while we are not closed lost its connection: that is
    /// a retryable `ConnectionLost`, never a reason to drop anything.
    async fn bounded<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let outcome = within(self.deadline.as_ref(), work, |ms| {
            format!("IndexedDB made no progress for {ms} ms; the changes are kept and the next call reconnects")
        })
        .await;
        match outcome {
            Err(Error::Closed) if self.state.get() != State::Closed => {
                self.disconnected.set(true);
                Err(Error::ConnectionLost("the connection is gone (a reconnect failed); retry later".into()))
            }
            Err(error @ Error::Timeout(_)) => {
                self.disconnected.set(true);
                Err(error)
            }
            other => other,
        }
    }

    /// Runs `op` within the deadline. A disconnected store reconnects first; if the connection is
    /// lost during `op`, reconnects once and runs it again. A failed reconnect reports a retryable
    /// `ConnectionLost` and leaves the store disconnected, never `Closed`.
    async fn with_reconnect<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.with_reconnect_on(None, true, op).await
    }

    /// [`Db::with_reconnect`]; with `Some(reconnects)`, `op` runs only on that connection: after
    /// any other reconnect (its own included) it is not run and the call fails with a retryable
    /// `ConnectionLost`. Without `reconnect`, a connection lost during `op` is left for the next
    /// call to reconnect.
    async fn with_reconnect_on<T, F, Fut>(&self, connection: Option<u64>, reconnect: bool, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.check_open()?;
        let run = || async {
            match connection {
                Some(connection) if connection != self.reconnects.get() => Err(Error::ConnectionLost(
                    "the store reconnected since this write was checked against the database".into(),
                )),
                _ => self.bounded(op()).await,
            }
        };
        if self.disconnected.get() {
            if let Err(error) = self.reopen().await {
                log_at!(Warn, "still disconnected: {error}");
                return Err(Error::ConnectionLost(format!("disconnected; the reconnect failed: {error}")));
            }
        }
        match run().await {
            Err(Error::ConnectionLost(cause)) if reconnect && connection.is_none_or(|c| c == self.reconnects.get()) => {
                log_at!(Warn, "connection lost ({cause}); reconnecting once");
                if let Err(error) = self.reopen().await {
                    log_at!(Warn, "reconnect failed: {error}");
                    return Err(Error::ConnectionLost(cause));
                }
                run().await
            }
            other => other,
        }
    }

    /// Writes `batch` in one transaction (reconnecting once if the connection was lost).
    pub async fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.write_source(batch).await
    }

    /// Writes the ops of `source` in one transaction, pulled as they are issued (reconnecting once
    /// if the connection was lost: the retry pulls them again).
    pub async fn write_source(&self, source: &dyn WriteSource) -> Result<()> {
        self.check_open()?;
        self.with_reconnect(|| self.backend.write_source(source)).await
    }

    /// [`Db::write_source`] on the connection `connection` ([`Db::reconnects`] when the write was
    /// checked) only: after a reconnect it is not run (the database may have been replaced, so
    /// what the checks relied on may be gone) and fails with a retryable `ConnectionLost`. With
    /// `reconnect`, a connection lost during the write is reconnected (for the caller to check
    /// and write again), else left for the next call.
    pub async fn write_source_on(&self, source: &dyn WriteSource, connection: u64, reconnect: bool) -> Result<()> {
        self.check_open()?;
        self.with_reconnect_on(Some(connection), reconnect, || self.backend.write_source(source)).await
    }

    /// Reads one row.
    pub async fn get(&self, store: &'static str, key: &crate::model::Key) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        self.with_reconnect(|| self.backend.get(store, key)).await
    }

    /// Reads every row of `stores`, store by store, as one snapshot: [`Db::read_stream`], collected
    /// (a store whose bulk read fails as a whole is read row by row within it).
    pub async fn read(&self, stores: &[&'static str]) -> Result<Reads> {
        let empty =
            || stores.iter().map(|store| StoreRows { store, rows: Vec::new(), unreadable: Vec::new() }).collect();
        let mut out: Vec<StoreRows> = empty();
        let scanned = self
            .read_stream(stores, None, &mut |event| {
                match event {
                    ReadEvent::Restart => out = empty(),
                    ReadEvent::Rows(rows) => {
                        let slot = out
                            .iter_mut()
                            .find(|slot| slot.store == rows.store)
                            .ok_or_else(|| Error::Internal(format!("rows of {} were not asked for", rows.store)))?;
                        slot.rows.extend(rows.rows);
                        slot.unreadable.extend(rows.unreadable);
                    }
                    ReadEvent::Complete(_) | ReadEvent::OneByOne(..) => {}
                }
                Ok(())
            })
            .await?;
        Ok(Reads { stores: out, scanned })
    }

    /// Reads every row of `stores` (only those whose key starts with one of `groups`, when given:
    /// one key range per group) with one bulk read per store in one transaction, all or nothing:
    /// a store whose bulk read fails fails the read.
    pub async fn read_strict(&self, stores: &[&'static str], groups: Option<&[&str]>) -> Result<Vec<StoreRows>> {
        self.check_open()?;
        let reads = self
            .with_reconnect(|| async {
                match groups {
                    None => self.backend.read(stores).await,
                    Some(groups) => self.backend.read_groups(stores, groups).await,
                }
            })
            .await?;
        reads.into_iter().collect()
    }

    /// [`Db::read`] handed to `sink` piece by piece as it arrives (see [`Backend::read_stream`]),
    /// each attempt announced by [`ReadEvent::Restart`] (the read runs again after a reconnect).
    /// The whole read is one snapshot: a store whose bulk read fails is read row by row within it.
    /// Returns the stores read row by row, in the order of `stores`.
    pub async fn read_stream(
        &self,
        stores: &[&'static str],
        groups: Option<&[&str]>,
        sink: &mut dyn FnMut(ReadEvent) -> Result<()>,
    ) -> Result<Vec<&'static str>> {
        self.check_open()?;
        // (IndexedDB refuses a transaction over no store.)
        if stores.is_empty() {
            return Ok(Vec::new());
        }
        let sink = RefCell::new(sink);
        let one_by_one: RefCell<Vec<&'static str>> = RefCell::new(Vec::new());
        self.with_reconnect(|| async {
            one_by_one.borrow_mut().clear();
            (sink.borrow_mut())(ReadEvent::Restart)?;
            let mut pass = |event| match event {
                ReadEvent::OneByOne(store, error) => {
                    log_at!(Warn, "bulk read of {store} failed ({error}); reading it row by row");
                    if !one_by_one.borrow().contains(&store) {
                        one_by_one.borrow_mut().push(store);
                    }
                    Ok(())
                }
                other => (sink.borrow_mut())(other),
            };
            self.backend.read_stream(stores, groups, &mut pass).await
        })
        .await?;
        let one_by_one = one_by_one.into_inner();
        Ok(stores.iter().copied().filter(|store| one_by_one.contains(store)).collect())
    }
}

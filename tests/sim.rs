//! Deterministic simulation (as FoundationDB and TigerBeetle test theirs): seeded random sequences
//! of persister operations, run as tasks on a single-threaded executor that polls them in seeded
//! order over the memory backend behind the fault-injecting one, with faults armed at random
//! (transient, fatal, lost connection, refused reconnects, failed reads, writes that never
//! settle, writes that commit and then never answer). After every step a reference model is checked:
//!
//! - every acknowledged store is durable or still staged (nothing is lost to a transient failure),
//!   unless a report named the wallet as dropped (a fatal failure, a close that says so); then its
//!   rows on disk are those of the last check or those with every change the model has for it
//!   (one wallet's write is all or nothing), never anything between;
//! - a write that timed out stays staged (it may have landed: the retry writes it again); a delete
//!   or a channel meta that timed out is on disk as before or as asked, never anything else;
//! - a deleted wallet never reappears; a failed registration leaves zero rows, a successful one
//!   everything it stored;
//! - `load` after a restart equals the model; channel meta and history equal the model;
//! - the close report is honest: what it does not name was written.
//!
//! `SIM_SEED` (default 15) and `SIM_N` (default 5,000) choose the run; `make soak SEED=… N=…` runs
//! it long in release. A failure prints its seed and a shrunk sequence.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use wallet_persist::backend::{FaultyBackend, MemoryBackend, Op as BackendOp, VirtualClock};
use wallet_persist::channels::HistoryEntry;
use wallet_persist::layout::{AREA_STORES, PENDING};
use wallet_persist::model::*;
use wallet_persist::wallets::{FlushMode, Options, Persister};
use wallet_persist::Error;

type P = Persister<FaultyBackend<MemoryBackend>>;
type Task = Pin<Box<dyn Future<Output = ()>>>;

/// splitmix64: small, seedable, good enough for choosing operations.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How a registration's `init` behaves.
#[derive(Debug, Clone, Copy)]
enum Init {
    Ok,
    Throws,
    StoresThenOk,
    StoresThenThrows,
    CommitsThenOk,
    WaitsThenOk,
    /// Arms a late ack for the next write (the promote, unless another task writes first).
    AcksLateThenOk,
}

/// One step of a sequence. Steps in one `Concurrent` group run as tasks interleaved in seeded
/// order; the others run alone.
#[derive(Debug, Clone)]
enum Step {
    Concurrent(Vec<Action>),
    Export,
    Import,
    Close,
    Restart,
    Fault(Fault),
}

#[derive(Debug, Clone)]
enum Action {
    /// Stages a UTXO upsert (`Some`) or tombstone (`None`) under `vout` with the wallet record.
    Store {
        wallet: u8,
        vout: u32,
        upsert: bool,
    },
    Commit,
    Flush,
    Delete {
        wallet: u8,
    },
    Register {
        wallet: u8,
        init: Init,
    },
    Append {
        channel: u8,
    },
    ChannelCommit {
        channel: u8,
    },
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Transient,
    FatalFor(u8),
    LoseConnection,
    RefuseReconnects(u32),
    FailRead,
    Hang,
    /// The next N writes commit and then never answer.
    LateAck(u32),
}

const WALLETS: u8 = 4; // ids 1..=4 are stored to; 11..=13 are registered
const REGISTERED: [u8; 3] = [11, 12, 13];
const CHANNELS: u8 = 2;

fn gen_sequence(rng: &mut Rng) -> Vec<Step> {
    let len = 8 + rng.below(25) as usize;
    (0..len)
        .map(|_| match rng.below(100) {
            0..=59 => Step::Concurrent((0..1 + rng.below(3)).map(|_| gen_action(rng)).collect()),
            60..=63 => Step::Export,
            64..=66 => Step::Import,
            67..=71 => Step::Close,
            72..=75 => Step::Restart,
            _ => Step::Fault(match rng.below(7) {
                0 => Fault::Transient,
                1 => Fault::FatalFor(1 + rng.below(u64::from(WALLETS)) as u8),
                2 => Fault::LoseConnection,
                3 => Fault::RefuseReconnects(1 + rng.below(3) as u32),
                4 => Fault::FailRead,
                5 => Fault::LateAck(1 + rng.below(2) as u32),
                _ => Fault::Hang,
            }),
        })
        .collect()
}

fn gen_action(rng: &mut Rng) -> Action {
    let wallet = 1 + rng.below(u64::from(WALLETS)) as u8;
    match rng.below(100) {
        0..=39 => Action::Store { wallet, vout: rng.below(3) as u32, upsert: rng.below(4) != 0 },
        40..=51 => Action::Commit,
        52..=59 => Action::Flush,
        60..=67 => {
            Action::Delete { wallet: if rng.below(3) == 0 { REGISTERED[rng.below(3) as usize] } else { wallet } }
        }
        68..=83 => Action::Register {
            wallet: REGISTERED[rng.below(3) as usize],
            init: match rng.below(7) {
                0 => Init::Ok,
                1 => Init::Throws,
                2 => Init::StoresThenOk,
                3 => Init::StoresThenThrows,
                4 => Init::CommitsThenOk,
                5 => Init::AcksLateThenOk,
                _ => Init::WaitsThenOk,
            },
        },
        84..=93 => Action::Append { channel: rng.below(u64::from(CHANNELS)) as u8 },
        _ => Action::ChannelCommit { channel: rng.below(u64::from(CHANNELS)) as u8 },
    }
}

fn id(n: u8) -> WalletId {
    let mut id = [0x5a; 32];
    id[31] = n;
    WalletId(id)
}

fn record(n: u8) -> WalletRecord {
    WalletRecord {
        wallet_id: None,
        network: "regtest".into(),
        label: format!("w{n}"),
        birth_height: 1,
        created_at_ms: 1,
        account_schema: 1,
    }
}

fn utxo(vout: u32, value: u64) -> Utxo {
    Utxo {
        outpoint: OutPoint { txid: Hash32([7; 32]), vout },
        value,
        script: Bytes::from(vec![0x51]),
        height: None,
        account: 0,
    }
}

fn outpoint(vout: u32) -> OutPoint {
    OutPoint { txid: Hash32([7; 32]), vout }
}

/// What a wallet must look like (durable, overlaid by what is staged).
#[derive(Debug, Clone, Default, PartialEq)]
struct WalletModel {
    exists: bool,
    utxos: BTreeMap<u32, u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct ChannelModel {
    meta: Option<u64>,
    /// Ids appended: on disk or still queued.
    history: BTreeSet<String>,
    /// Metas of commits that failed: each may have landed (a write that timed out after it committed).
    maybe_meta: BTreeSet<u64>,
}

#[derive(Debug, Clone, Default)]
struct Model {
    wallets: BTreeMap<WalletId, WalletModel>,
    channels: BTreeMap<String, ChannelModel>,
    /// Wallets a report named as dropped: at the next check their rows must be those of the last
    /// check or the model's (all or nothing); the model then takes disk overlaid by what is staged.
    resync: BTreeSet<WalletId>,
    /// Channels whose queue a crash or a close report dropped: the same for their history.
    channel_resync: BTreeSet<String>,
    /// Per wallet and vout, the values (`None`: a tombstone) staged late since the last check. A
    /// commit that started before them and dropped the wallet dropped only what it had taken, so
    /// a later commit may have landed these alone.
    late: BTreeMap<WalletId, BTreeMap<u32, BTreeSet<Option<u64>>>>,
}

/// What finished tasks report, in completion order (the linearisation the model follows).
/// `DeletedLate`: a delete that timed out landed (no row of the wallet is left), so the wallet is
/// what the delete restored to staging, over nothing. `MaybeMeta`: a channel commit failed, its
/// meta may have landed. `Violation`: a guarantee a task saw broken right when its call returned.
enum Event {
    /// `late`: staged after a commit of its group started (which may have taken the wallet's
    /// earlier changes already).
    Staged {
        wallet: WalletId,
        vout: u32,
        value: Option<u64>,
        late: bool,
    },
    Dropped(Vec<WalletId>),
    Deleted(WalletId),
    DeletedLate {
        wallet: WalletId,
        restored: WalletModel,
    },
    MaybeMeta {
        channel: String,
        meta: u64,
    },
    Violation(String),
    Registered {
        wallet: WalletId,
        utxos: BTreeMap<u32, u64>,
    },
    ChannelMeta {
        channel: String,
        meta: u64,
    },
    Appended {
        channel: String,
        id: String,
    },
}

/// What is on disk: wallets, and per channel `(meta, history ids)`.
struct Durable {
    state: ClientStartState,
    channels: BTreeMap<String, (Option<u64>, BTreeSet<String>)>,
}

struct Sim {
    disk: MemoryBackend,
    clock: VirtualClock,
    rng: RefCell<Rng>,
    persister: RefCell<Rc<P>>,
    model: RefCell<Model>,
    events: Rc<RefCell<Vec<Event>>>,
    counter: Rc<Cell<u64>>,
    export: RefCell<Option<(Vec<u8>, Model)>>,
    trace: RefCell<Vec<String>>,
    /// Each wallet's rows at the last check (the disk alone, nothing staged).
    last_disk: RefCell<BTreeMap<WalletId, WalletModel>>,
    violations: RefCell<Vec<String>>,
    /// How many commits (or registrations, whose `init` may commit) of the running group started.
    commits_started: Rc<Cell<u32>>,
}

fn options(clock: &VirtualClock) -> Options {
    Options { flush_mode: FlushMode::Manual, deadline: Some(clock.deadline(30_000)), ..Options::default() }
}

impl Sim {
    fn new(seed: u64) -> Result<Sim, String> {
        let disk = MemoryBackend::new();
        let clock = VirtualClock::default();
        let persister = Rc::new(
            block(&clock, Persister::open(FaultyBackend::new(disk.reopen()), options(&clock)))
                .map_err(|e| format!("open: {e}"))?,
        );
        Ok(Sim {
            disk,
            clock,
            rng: RefCell::new(Rng(seed ^ 0x5eed)),
            persister: RefCell::new(persister),
            model: RefCell::default(),
            events: Rc::default(),
            counter: Rc::new(Cell::new(1)),
            export: RefCell::new(None),
            trace: RefCell::default(),
            last_disk: RefCell::default(),
            violations: RefCell::default(),
            commits_started: Rc::default(),
        })
    }

    fn p(&self) -> Rc<P> {
        self.persister.borrow().clone()
    }

    /// Polls every task in a seeded order until all are done; when a round leaves some pending,
    /// lets virtual time pass (deadlines and `init` waits run on it).
    fn run_tasks(&self, mut tasks: Vec<Task>) -> Result<(), String> {
        let mut cx = Context::from_waker(Waker::noop());
        for round in 0..20_000 {
            if tasks.is_empty() {
                return Ok(());
            }
            let mut order: Vec<usize> = (0..tasks.len()).collect();
            for i in (1..order.len()).rev() {
                let j = self.rng.borrow_mut().below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
            let mut done = vec![false; tasks.len()];
            for i in order {
                done[i] = tasks[i].as_mut().poll(&mut cx).is_ready();
            }
            let mut i = 0;
            tasks.retain(|_| {
                i += 1;
                !done[i - 1]
            });
            if round % 4 == 3 {
                self.clock.advance(500 + self.rng.borrow_mut().below(3_000));
            }
        }
        Err(format!("tasks still pending after 20,000 rounds ({} s virtual): a call hangs", self.clock.now() / 1000))
    }

    fn apply_events(&self) {
        let mut model = self.model.borrow_mut();
        for event in self.events.borrow_mut().drain(..) {
            match event {
                Event::Staged { wallet, vout, value, late } => {
                    if late {
                        model.late.entry(wallet).or_default().entry(vout).or_default().insert(value);
                    }
                    let w = model.wallets.entry(wallet).or_default();
                    w.exists = true;
                    match value {
                        Some(v) => w.utxos.insert(vout, v),
                        None => w.utxos.remove(&vout),
                    };
                }
                Event::Dropped(wallets) => model.resync.extend(wallets),
                Event::Deleted(wallet) => {
                    model.wallets.remove(&wallet);
                    model.resync.remove(&wallet);
                }
                Event::DeletedLate { wallet, restored } => {
                    model.wallets.insert(wallet, restored);
                }
                Event::MaybeMeta { channel, meta } => {
                    model.channels.entry(channel).or_default().maybe_meta.insert(meta);
                }
                Event::Violation(what) => self.violations.borrow_mut().push(what),
                Event::Registered { wallet, utxos } => {
                    model.wallets.insert(wallet, WalletModel { exists: true, utxos });
                }
                Event::ChannelMeta { channel, meta } => model.channels.entry(channel).or_default().meta = Some(meta),
                Event::Appended { channel, id } => {
                    model.channels.entry(channel).or_default().history.insert(id);
                }
            }
        }
    }

    /// A seeded number (0..=3) of polls to wait before a synchronous action runs inside its group.
    fn polls(&self) -> impl Future<Output = ()> + 'static {
        let mut left = self.rng.borrow_mut().below(4);
        std::future::poll_fn(move |_| {
            if left == 0 {
                return Poll::Ready(());
            }
            left -= 1;
            Poll::Pending
        })
    }

    fn action_task(&self, action: &Action) -> Option<Task> {
        let commits_started = self.commits_started.clone();
        let p = self.p();
        let events = self.events.clone();
        let counter = self.counter.clone();
        let clock = self.clock.clone();
        let disk = self.disk.clone();
        let next = move || {
            counter.set(counter.get() + 1);
            counter.get()
        };
        match *action {
            Action::Store { wallet, vout, upsert } => {
                // Staged (or refused) synchronously at a seeded point of the schedule: before the
                // other tasks start, or while a commit of the same group is in flight (its
                // changes taken: a failure must put them back under this newer one).
                let wait = self.polls();
                Some(Box::pin(async move {
                    wait.await;
                    let late = commits_started.get() > 0;
                    let value = upsert.then(&next);
                    let mut cs = WalletChangeSet { wallet: Some(record(wallet)), ..Default::default() };
                    match value {
                        Some(v) => cs.utxos.upsert(utxo(vout, v)),
                        None => cs.utxos.tombstone(outpoint(vout)),
                    }
                    if p.stage(id(wallet), cs).is_ok() {
                        events.borrow_mut().push(Event::Staged { wallet: id(wallet), vout, value, late });
                    }
                }))
            }
            Action::Commit | Action::Flush => {
                let flush = matches!(action, Action::Flush);
                Some(Box::pin(async move {
                    commits_started.set(commits_started.get() + 1);
                    let outcome = if flush { p.flush().await } else { p.commit().await };
                    // What failed transiently (a timeout included: it may have landed) is staged
                    // again, at once.
                    let retry = match &outcome {
                        Ok(report) => report.still_pending.clone(),
                        Err(Error::FlushRetryable { wallets, .. }) => wallets.clone(),
                        Err(_) => Vec::new(),
                    };
                    let staged: BTreeSet<WalletId> = p.staged().into_iter().map(|(w, _)| w).collect();
                    if let Some(lost) = retry.iter().find(|w| !staged.contains(w)) {
                        events.borrow_mut().push(Event::Violation(format!(
                            "a commit reported {lost} as still pending but it is not staged"
                        )));
                    }
                    let dropped = match outcome {
                        Ok(report) => report.failed.iter().map(|f| f.wallet_id).collect(),
                        Err(Error::FlushFailed { wallets, .. }) => wallets,
                        Err(Error::FlushRetryable { dropped, .. }) => dropped,
                        Err(_) => Vec::new(),
                    };
                    events.borrow_mut().push(Event::Dropped(dropped));
                }))
            }
            Action::Delete { wallet } => {
                let claim = p.begin_delete(id(wallet)).ok()?;
                Some(Box::pin(async move {
                    match p.finish_delete(claim).await {
                        Ok(_) => events.borrow_mut().push(Event::Deleted(id(wallet))),
                        // Landed after its deadline or not at all: a delete is one transaction,
                        // so no row left means it landed (read before any other task runs).
                        Err(Error::Timeout(_)) if rows_of(&disk, &id(wallet)) == 0 => {
                            let mut restored = WalletModel::default();
                            if let Some(cs) = p.staged_changes(&id(wallet)) {
                                overlay(&mut restored, &cs);
                            }
                            events.borrow_mut().push(Event::DeletedLate { wallet: id(wallet), restored });
                        }
                        Err(_) => {}
                    }
                }))
            }
            Action::Register { wallet, init } => Some(Box::pin(async move {
                commits_started.set(commits_started.get() + 1);
                let wallet_id = id(wallet);
                let stored = RefCell::new(BTreeMap::new());
                let body = async {
                    if matches!(init, Init::StoresThenOk | Init::StoresThenThrows) {
                        let value = next();
                        let mut cs = WalletChangeSet::default();
                        cs.utxos.upsert(utxo(0, value));
                        if p.stage(wallet_id, cs).is_ok() {
                            stored.borrow_mut().insert(0, value);
                        }
                    }
                    if matches!(init, Init::CommitsThenOk) {
                        if let Ok(report) = p.commit().await {
                            events
                                .borrow_mut()
                                .push(Event::Dropped(report.failed.iter().map(|f| f.wallet_id).collect()));
                        }
                    }
                    if matches!(init, Init::WaitsThenOk) {
                        let until = clock.now() + 2_000;
                        let clock = clock.clone();
                        std::future::poll_fn(
                            move |_| if clock.now() >= until { Poll::Ready(()) } else { Poll::Pending },
                        )
                        .await;
                    }
                    if matches!(init, Init::AcksLateThenOk) {
                        p.backend().ack_late(1);
                    }
                    match init {
                        Init::Throws | Init::StoresThenThrows => Err(()),
                        _ => Ok(()),
                    }
                };
                let registration = WalletChangeSet { wallet: Some(record(wallet)), ..Default::default() };
                if let Ok(Ok(())) = p.register_wallet(wallet_id, registration, body).await {
                    events.borrow_mut().push(Event::Registered { wallet: wallet_id, utxos: stored.into_inner() });
                }
            })),
            Action::Append { channel } => {
                // Queued at a seeded point, as a store is: possibly while a channel commit of the
                // same group has taken the queue.
                let wait = self.polls();
                Some(Box::pin(async move {
                    wait.await;
                    let name = format!("c{channel}");
                    let entry =
                        HistoryEntry { id: format!("m{}", next()), bytes: Bytes::from(vec![1]), timestamp_ms: None };
                    let id = entry.id.clone();
                    if p.channels().queue_append(&name, entry).is_ok() {
                        events.borrow_mut().push(Event::Appended { channel: name, id });
                    }
                }))
            }
            Action::ChannelCommit { channel } => {
                let name = format!("c{channel}");
                let meta = next();
                Some(Box::pin(async move {
                    match p.channels().commit(&name, &meta).await {
                        Ok(commit) if commit.meta_saved => {
                            events.borrow_mut().push(Event::ChannelMeta { channel: name, meta })
                        }
                        _ => events.borrow_mut().push(Event::MaybeMeta { channel: name, meta }),
                    }
                }))
            }
        }
    }

    /// The durable state (wallets, then each channel's meta and history ids), read through one
    /// read-only persister (no fault, no write).
    fn durable(&self) -> Result<Durable, String> {
        let reader = Persister::open(self.disk.reopen(), Options { read_only: true, ..Options::default() });
        let reader = block(&self.clock, reader).map_err(|e| format!("oracle open: {e}"))?;
        let (state, report) = block(&self.clock, reader.load()).map_err(|e| format!("oracle load: {e}"))?;
        if !report.skipped.is_empty() {
            return Err(format!("rows skipped on disk: {:?}", report.skipped));
        }
        let mut channels = BTreeMap::new();
        for c in 0..CHANNELS {
            let name = format!("c{c}");
            let loaded = block(&self.clock, reader.channels().load_channel::<u64>(&name))
                .map_err(|e| format!("oracle load_channel: {e}"))?;
            channels.insert(name, (loaded.meta, loaded.history.into_iter().map(|e| e.id).collect()));
        }
        Ok(Durable { state, channels })
    }

    /// Each wallet's rows on disk.
    fn on_disk(durable: &ClientStartState) -> BTreeMap<WalletId, WalletModel> {
        let mut out: BTreeMap<WalletId, WalletModel> = BTreeMap::new();
        for (wallet, cs) in &durable.wallets {
            let w = out.entry(*wallet).or_default();
            w.exists = cs.wallet.is_some();
            for (op, value) in &cs.utxos.0 {
                if let Some(u) = value {
                    w.utxos.insert(op.vout, u.value);
                }
            }
        }
        out.retain(|_, w| w.exists || !w.utxos.is_empty());
        out
    }

    /// What the persister would end with if every staged change landed: disk overlaid by staging.
    fn effective(&self, durable: &ClientStartState) -> BTreeMap<WalletId, WalletModel> {
        let mut out = Self::on_disk(durable);
        let p = self.p();
        for (wallet, _) in p.staged() {
            if p.is_registering(&wallet) {
                continue; // under registration: not the model's until it ends
            }
            overlay(out.entry(wallet).or_default(), &p.staged_changes(&wallet).unwrap());
        }
        out.retain(|_, w| w.exists || !w.utxos.is_empty());
        out
    }

    /// The model check after a step (no task is running).
    fn check(&self, context: &str) -> Result<(), String> {
        self.apply_events();
        if let Some(broken) = self.violations.borrow_mut().drain(..).next() {
            return Err(format!("{context}: {broken}"));
        }
        let durable = self.durable()?;
        let effective = self.effective(&durable.state);
        let disk = Self::on_disk(&durable.state);
        let last_disk = std::mem::replace(&mut *self.last_disk.borrow_mut(), disk.clone());
        let mut model = self.model.borrow_mut();
        model.wallets.retain(|_, w| w.exists || !w.utxos.is_empty());
        // A dropped wallet's write was all or nothing: its rows are those of the last check or
        // the model's (every change it was told about landed), nothing in between. Changes
        // staged late (after a commit of their group started) may have landed without the
        // dropped ones: then each row is as before or one of those late values.
        let late = std::mem::take(&mut model.late);
        for wallet in std::mem::take(&mut model.resync) {
            let now = disk.get(&wallet);
            let before = last_disk.get(&wallet);
            let late_only = late.get(&wallet).is_some_and(|late| {
                let (now, before) = (now.cloned().unwrap_or_default(), before.cloned().unwrap_or_default());
                let vouts: BTreeSet<u32> = now.utxos.keys().chain(before.utxos.keys()).copied().collect();
                vouts.iter().all(|vout| {
                    let value = now.utxos.get(vout).copied();
                    value == before.utxos.get(vout).copied() || late.get(vout).is_some_and(|v| v.contains(&value))
                })
            });
            if now != before && now != model.wallets.get(&wallet) && !late_only {
                return Err(format!(
                    "{context}: dropped wallet {wallet} has rows that are neither those before nor those with every change\n  on disk: {now:?}\n  before:  {:?}\n  changed: {:?}",
                    last_disk.get(&wallet),
                    model.wallets.get(&wallet)
                ));
            }
            match effective.get(&wallet) {
                Some(w) => model.wallets.insert(wallet, w.clone()),
                None => model.wallets.remove(&wallet),
            };
        }
        if effective != model.wallets {
            return Err(format!(
                "{context}: durable+staged state differs from the model\n  model:    {:?}\n  effective: {:?}",
                model.wallets, effective
            ));
        }
        // A wallet the model does not have has no row at all on disk (registration all or
        // nothing, deletes stay deleted), pending rows aside while a registration may be running.
        for n in (1..=WALLETS).chain(REGISTERED) {
            let wallet = id(n);
            if model.wallets.contains_key(&wallet) {
                continue;
            }
            let rows = rows_of(&self.disk, &wallet);
            if rows != 0 {
                return Err(format!("{context}: wallet {n} is not in the model but has {rows} row(s) on disk"));
            }
        }
        let p = self.p();
        for c in 0..CHANNELS {
            let name = format!("c{c}");
            let (meta, mut history) = durable.channels[&name].clone();
            history.extend(p.channels().pending(&name).into_iter().map(|(id, _)| id));
            let resync = model.channel_resync.remove(&name);
            let expected = model.channels.entry(name.clone()).or_default();
            if resync {
                expected.history = history.clone();
            }
            if expected.history != history {
                return Err(format!(
                    "{context}: channel {name} history (durable + queued) {history:?} != model {:?}",
                    expected.history
                ));
            }
            // A commit that failed may have landed its meta after all: then it is the last saved.
            let maybe = std::mem::take(&mut expected.maybe_meta);
            if let Some(landed) = meta.filter(|m| maybe.contains(m)) {
                expected.meta = Some(landed);
            }
            if let Some(saved) = expected.meta {
                if meta != Some(saved) {
                    return Err(format!("{context}: channel {name} meta on disk {meta:?}, last acknowledged {saved}"));
                }
            }
        }
        Ok(())
    }

    /// A new persister over the same data, after the old one was closed or dropped (a crash: its
    /// staged changes are gone). `load` must equal the model exactly.
    fn restart(&self, crashed: bool) -> Result<(), String> {
        self.apply_events();
        let old = self.p();
        let staged: Vec<WalletId> = old.staged().into_iter().map(|(w, _)| w).collect();
        drop(old);
        let persister =
            block(&self.clock, Persister::open(FaultyBackend::new(self.disk.reopen()), options(&self.clock)))
                .map_err(|e| format!("reopen: {e}"))?;
        *self.persister.borrow_mut() = Rc::new(persister);
        if !self.disk.rows(PENDING).is_empty() {
            return Err("open left pending registrations behind".into());
        }
        let mut model = self.model.borrow_mut();
        if crashed {
            // Staged changes and queued history die with the page: resync them to what is durable.
            model.resync.extend(staged);
            model.channel_resync.extend((0..CHANNELS).map(|c| format!("c{c}")));
        }
        drop(model);
        let (state, report) = block(&self.clock, self.p().load()).map_err(|e| format!("load after restart: {e}"))?;
        if !report.skipped.is_empty() {
            return Err(format!("load after restart skipped rows: {:?}", report.skipped));
        }
        self.check(if crashed { "after a crash" } else { "after a restart" })?;
        let loaded = self.effective(&state);
        if loaded != self.model.borrow().wallets {
            return Err(format!("load after restart {loaded:?} != model {:?}", self.model.borrow().wallets));
        }
        Ok(())
    }

    fn step(&self, step: &Step) -> Result<(), String> {
        let p = self.p();
        match step {
            Step::Concurrent(actions) => {
                self.commits_started.set(0);
                let tasks: Vec<Task> = actions.iter().filter_map(|a| self.action_task(a)).collect();
                self.run_tasks(tasks)?;
                self.check("after concurrent actions")
            }
            Step::Fault(fault) => {
                let backend = p.backend();
                match *fault {
                    Fault::Transient => backend.fail_next(BackendOp::Write, 1, Error::QuotaExceeded("sim".into())),
                    Fault::FatalFor(n) => backend.fail_wallet(id(n), 2, Error::Internal("sim".into())),
                    Fault::LoseConnection => backend.lose_connection(),
                    Fault::RefuseReconnects(n) => {
                        backend.lose_connection();
                        backend.fail_reconnects(n);
                    }
                    Fault::FailRead => backend.fail_next(BackendOp::Read, 1, Error::TransactionAborted("sim".into())),
                    Fault::Hang => backend.hang(BackendOp::Write),
                    Fault::LateAck(n) => backend.ack_late(n),
                }
                Ok(())
            }
            Step::Export => {
                self.apply_events();
                if let Ok(bytes) = block(&self.clock, p.export_backup(1, &mut |_, _, _| {})) {
                    // The backup holds what is durable now: that is the model after an import.
                    let durable = self.durable()?;
                    let mut model = Model::default();
                    for (wallet, cs) in &durable.state.wallets {
                        let w = model.wallets.entry(*wallet).or_default();
                        w.exists = cs.wallet.is_some();
                        w.utxos = cs.utxos.0.values().flatten().map(|u| (u.outpoint.vout, u.value)).collect();
                    }
                    for (name, (meta, history)) in durable.channels {
                        model.channels.insert(name, ChannelModel { meta, history, ..Default::default() });
                    }
                    *self.export.borrow_mut() = Some((bytes, model));
                }
                self.check("after export")
            }
            Step::Import => {
                self.apply_events();
                let Some((bytes, snapshot)) = self.export.borrow().clone() else { return Ok(()) };
                match block(&self.clock, p.import_backup(&bytes, true, &mut |_, _, _| {})) {
                    Ok(_) => *self.model.borrow_mut() = snapshot,
                    // One transaction that may have landed after its deadline: the disk is the
                    // backup's or untouched (the check holds it to the model kept).
                    Err(Error::Timeout(_)) => {
                        let durable = self.durable()?;
                        let channels_imported = snapshot
                            .channels
                            .iter()
                            .all(|(name, c)| durable.channels.get(name) == Some(&(c.meta, c.history.clone())));
                        if Self::on_disk(&durable.state) == snapshot.wallets && channels_imported {
                            *self.model.borrow_mut() = snapshot;
                        }
                    }
                    Err(_) => {}
                }
                self.check("after import")
            }
            Step::Close => {
                self.apply_events();
                match block(&self.clock, p.close()) {
                    Ok(report) => {
                        if !p.staged().is_empty() {
                            return Err(format!("close resolved with changes still staged: {:?}", p.staged()));
                        }
                        // Honest: whatever it does not name was written (checked by the restart).
                        let mut model = self.model.borrow_mut();
                        model.resync.extend(report.not_written.wallets.iter().copied());
                        model.channel_resync.extend(report.not_written.channels.iter().cloned());
                        drop(model);
                        let unnamed: Vec<String> = (0..CHANNELS)
                            .map(|c| format!("c{c}"))
                            .filter(|c| !report.not_written.channels.contains(c) && !p.channels().pending(c).is_empty())
                            .collect();
                        if !unnamed.is_empty() {
                            return Err(format!("close left channel history queued without naming it: {unnamed:?}"));
                        }
                        if report.is_complete()
                            != (report.not_written.wallets.is_empty() && report.not_written.channels.is_empty())
                        {
                            return Err("close report: complete but names unwritten changes".into());
                        }
                        self.restart(false)
                    }
                    Err(error) => {
                        if !error.is_transient() {
                            return Err(format!("close failed fatally: {error}"));
                        }
                        if p.is_closed() {
                            return Err("a close that failed transiently closed the store".into());
                        }
                        if let Error::FlushRetryable { dropped, .. } = &error {
                            self.model.borrow_mut().resync.extend(dropped.iter().copied());
                        }
                        self.check("after a failed close")
                    }
                }
            }
            Step::Restart => self.restart(true),
        }
    }
}

/// How many rows `wallet` has on disk, in every store.
fn rows_of(disk: &MemoryBackend, wallet: &WalletId) -> usize {
    let hex = KeyPart::Text(wallet.to_hex());
    AREA_STORES.iter().map(|s| disk.rows(s).iter().filter(|r| r.key.first() == Some(&hex)).count()).sum()
}

/// `w` with the staged changes `cs` applied.
fn overlay(w: &mut WalletModel, cs: &WalletChangeSet) {
    w.exists |= cs.wallet.is_some();
    for (op, value) in &cs.utxos.0 {
        match value {
            Some(u) => w.utxos.insert(op.vout, u.value),
            None => w.utxos.remove(&op.vout),
        };
    }
}

/// Drives one future alone, letting virtual time pass when it is stuck.
fn block<F: Future>(clock: &VirtualClock, future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000 {
        for _ in 0..10 {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
        }
        clock.advance(1_000);
    }
    panic!("a call did not settle within 10,000 virtual seconds");
}

fn run_sequence(seed: u64, steps: &[Step]) -> Result<(), String> {
    let sim = Sim::new(seed)?;
    for (i, step) in steps.iter().enumerate() {
        sim.trace.borrow_mut().push(format!("{i}: {step:?}"));
        sim.step(step).map_err(|e| format!("step {i} {step:?}: {e}"))?;
    }
    // The end: a restart after a clean close, every fault disarmed.
    sim.p().backend().clear();
    sim.step(&Step::Close).map_err(|e| format!("final close: {e}"))
}

fn run_caught(seed: u64, steps: &[Step]) -> Result<(), String> {
    let steps = steps.to_vec();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_sequence(seed, &steps))).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panicked: {message}"))
    })
}

/// Removes steps (and actions inside steps) while the sequence still fails.
fn shrink(seed: u64, mut steps: Vec<Step>) -> Vec<Step> {
    let mut progress = true;
    while progress {
        progress = false;
        let mut i = 0;
        while i < steps.len() {
            let mut fewer = steps.clone();
            fewer.remove(i);
            if run_caught(seed, &fewer).is_err() {
                steps = fewer;
                progress = true;
                continue;
            }
            if let Step::Concurrent(actions) = &steps[i] {
                for j in 0..actions.len() {
                    if actions.len() < 2 {
                        break;
                    }
                    let mut fewer = steps.clone();
                    if let Step::Concurrent(a) = &mut fewer[i] {
                        a.remove(j);
                    }
                    if run_caught(seed, &fewer).is_err() {
                        steps = fewer;
                        progress = true;
                        break;
                    }
                }
            }
            i += 1;
        }
    }
    steps
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn simulation_keeps_every_guarantee() {
    wallet_persist::log::set_level(wallet_persist::log::Level::Error);
    let base = env_u64("SIM_SEED", 15);
    let n = env_u64("SIM_N", 5_000);
    let started = std::time::Instant::now();
    let mut steps_run = 0usize;
    for i in 0..n {
        let seed = base.wrapping_mul(1_000_003).wrapping_add(i);
        let steps = gen_sequence(&mut Rng(seed));
        steps_run += steps.len();
        if let Err(error) = run_caught(seed, &steps) {
            let shrunk = shrink(seed, steps.clone());
            let listing: Vec<String> = shrunk.iter().map(|s| format!("  {s:?}")).collect();
            panic!(
                "simulation failed: seed {seed} (SIM_SEED={base}, sequence {i})\n{error}\nshrunk to {} step(s):\n{}\nrerun: SIM_SEED={base} SIM_N={} cargo test --features testing --test sim",
                shrunk.len(),
                listing.join("\n"),
                i + 1
            );
        }
    }
    println!("simulation: {n} sequences, {steps_run} steps, seed {base}, {:?}", started.elapsed());
}

//! Conformance checks of the snapshot contract (channels), with a small fixture that plays the
//! message-reliability protocol: a lamport clock, an outgoing buffer, an incoming buffer with
//! missing dependencies, repair requests with absolute deadlines, and a FIFO history of capacity
//! N. Every check asserts the exact state loaded back after a restart (close, then open again).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::conformance::{manual, Harness};
use crate::backend::{Backend, FaultyBackend, Op, WriteBatch, WriteOp};
use crate::channels::{
    ChannelCommit, CommitStep, HistoryEntry, HistoryUpdate, LoadedChannel, MetaValue, Node, PendingOp, RetrievalHint,
};
use crate::error::Error;
use crate::layout::{CHANNEL_HISTORY, CHANNEL_META, CHANNEL_STORES};
use crate::model::{Bytes, KeyPart};
use crate::wallets::{Options, Persister};

/// 2024-11-19T07:06:40.123Z: deadlines are offsets from here, to the millisecond.
const T0: i64 = 1_732_000_000_123;

/// What the protocol keeps of a channel besides its history: the meta snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProtocolState {
    pub lamport: u64,
    /// Sent, not yet acknowledged.
    pub outgoing: Vec<Outgoing>,
    /// Received, waiting for dependencies not seen yet.
    pub incoming: Vec<Incoming>,
    /// Repair requests, each with an absolute deadline (unix ms).
    pub repairs: Vec<Repair>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub id: String,
    pub lamport: u64,
    pub payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incoming {
    pub id: String,
    pub missing_deps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repair {
    pub id: String,
    pub deadline_ms: i64,
}

/// One peer of a channel: protocol state in memory, a FIFO history of at most `capacity` ids,
/// and every history change queued in the channel journal as it happens.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub channel: String,
    pub capacity: usize,
    pub state: ProtocolState,
    pub history: VecDeque<HistoryEntry>,
}

/// The payload of message `id` (deterministic, so expectations can be rebuilt).
fn payload(id: &str) -> Bytes {
    Bytes::from(id.bytes().cycle().take(24 + id.len()).collect::<Vec<u8>>())
}

impl Peer {
    pub fn new(channel: &str, capacity: usize) -> Peer {
        Peer { channel: channel.into(), capacity, state: ProtocolState::default(), history: VecDeque::new() }
    }

    /// The peer as a restart finds it: its channel loaded from disk.
    pub fn restore(channel: &str, capacity: usize, loaded: LoadedChannel<ProtocolState>) -> Peer {
        Peer {
            channel: channel.into(),
            capacity,
            state: loaded.meta.unwrap_or_default(),
            history: loaded.history.into_iter().collect(),
        }
    }

    /// Appends `entry` to the history, evicting the oldest beyond capacity; queues both changes.
    fn remember<B: Backend>(&mut self, persister: &Persister<B>, entry: HistoryEntry) {
        persister.channels().queue_append(&self.channel, entry.clone()).unwrap();
        self.history.push_back(entry);
        while self.history.len() > self.capacity {
            let oldest = self.history.pop_front().unwrap();
            persister.channels().queue_evict(&self.channel, &oldest.id).unwrap();
        }
    }

    /// Sends a message: ticks the clock, buffers it until acknowledged, adds it to the history.
    pub fn send<B: Backend>(&mut self, persister: &Persister<B>) -> String {
        self.state.lamport += 1;
        let id = format!("{}-m{}", self.channel, self.state.lamport);
        self.state.outgoing.push(Outgoing { id: id.clone(), lamport: self.state.lamport, payload: payload(&id) });
        let entry =
            HistoryEntry { id: id.clone(), bytes: payload(&id), timestamp_ms: Some(T0 + self.state.lamport as i64) };
        self.remember(persister, entry);
        id
    }

    /// Receives `id` whose dependencies `missing` are not seen yet: it waits in the incoming
    /// buffer and a repair is requested for each dependency, due `after_ms` from T0.
    pub fn receive_waiting(&mut self, id: &str, missing: &[&str], after_ms: i64) {
        self.state.lamport += 1;
        self.state
            .incoming
            .push(Incoming { id: id.into(), missing_deps: missing.iter().map(|d| d.to_string()).collect() });
        for (i, dep) in missing.iter().enumerate() {
            self.state.repairs.push(Repair { id: dep.to_string(), deadline_ms: T0 + after_ms + i as i64 });
        }
    }

    /// Receives a message whose dependencies are all present: it joins the history.
    pub fn deliver<B: Backend>(&mut self, persister: &Persister<B>, id: &str, lamport: u64) {
        self.state.lamport = self.state.lamport.max(lamport) + 1;
        let entry = HistoryEntry { id: id.into(), bytes: payload(id), timestamp_ms: Some(T0 - 1) };
        self.remember(persister, entry);
    }

    /// An acknowledgement: the message leaves the outgoing buffer.
    pub fn ack(&mut self, id: &str) {
        self.state.outgoing.retain(|o| o.id != id);
    }

    /// A repaired dependency arrived: its repair is done and nothing waits on it any more.
    pub fn repaired(&mut self, dep: &str) {
        self.state.repairs.retain(|r| r.id != dep);
        for incoming in &mut self.state.incoming {
            incoming.missing_deps.retain(|d| d != dep);
        }
        self.state.incoming.retain(|i| !i.missing_deps.is_empty());
    }

    /// Saves the meta snapshot and the queued history changes.
    pub async fn commit<B: Backend>(&self, persister: &Persister<B>) -> ChannelCommit {
        persister.channels().commit(&self.channel, &self.state).await.expect("commit never rejects for storage")
    }

    /// What loading the channel must return once everything is durable.
    pub fn expected(&self) -> LoadedChannel<ProtocolState> {
        LoadedChannel {
            meta: Some(self.state.clone()),
            history: self.history.iter().cloned().collect(),
            hints: Vec::new(),
        }
    }

    pub fn ids(&self) -> Vec<String> {
        self.history.iter().map(|e| e.id.clone()).collect()
    }
}

fn ok() -> ChannelCommit {
    ChannelCommit { meta_saved: true, history_flushed: true, pending: 0, failures: Vec::new() }
}

fn injected(code: u16) -> Error {
    match code {
        5 => Error::QuotaExceeded("injected".into()),
        7 => Error::ConnectionLost("injected".into()),
        18 => Error::Timeout("injected".into()),
        21 => Error::TransactionAborted("injected".into()),
        _ => Error::Internal("injected".into()),
    }
}

/// `(meta_saved, history_flushed, pending, [(step, code)])` of a commit.
fn summary(c: &ChannelCommit) -> (bool, bool, u32, Vec<(CommitStep, u16)>) {
    (c.meta_saved, c.history_flushed, c.pending, c.failures.iter().map(|f| (f.step, f.code)).collect())
}

async fn open<H: Harness>(h: &H) -> Persister<FaultyBackend<H::B>> {
    Persister::open(FaultyBackend::new(h.open().await), manual()).await.expect("open")
}

/// A restart: opens the database again, loads `channel`, closes.
async fn reload<H: Harness>(h: &H, channel: &str) -> LoadedChannel<ProtocolState> {
    let persister = open(h).await;
    let loaded = persister.channels().load_channel(channel).await.expect("load_channel");
    persister.close().await.unwrap();
    loaded
}

/// Every row of the channel stores.
async fn channel_rows<B: Backend>(backend: &B) -> Vec<crate::backend::StoreRows> {
    backend.read(CHANNEL_STORES).await.unwrap().into_iter().map(|r| r.unwrap()).collect()
}

/// Outgoing buffer, lamport clock, incoming entries with their missing dependencies and repair
/// deadlines survive restarts exactly; three restart cycles accumulate; the clock never goes back.
pub async fn channel_state_survives_restarts_exactly<H: Harness>(h: &H) {
    let mut peer = Peer::new("chat", 10);
    let mut clocks = Vec::new();
    for cycle in 0..3i64 {
        let persister = open(h).await;
        let loaded = persister.channels().load_channel::<ProtocolState>("chat").await.unwrap();
        if cycle == 0 {
            assert_eq!(loaded, LoadedChannel { meta: None, history: vec![], hints: vec![] });
        } else {
            assert_eq!(loaded, peer.expected(), "cycle {cycle}: the restart found what was committed");
            peer = Peer::restore("chat", 10, loaded);
        }
        clocks.push(peer.state.lamport);
        let first = peer.send(&persister);
        let second = peer.send(&persister);
        peer.receive_waiting(
            &format!("peer-x{cycle}"),
            &[&format!("dep-a{cycle}"), &format!("dep-b{cycle}")],
            30_000 * (cycle + 1),
        );
        peer.deliver(&persister, &format!("peer-y{cycle}"), 40 + cycle as u64);
        peer.ack(&first);
        if cycle > 0 {
            peer.repaired(&format!("dep-a{}", cycle - 1));
        }
        assert_eq!(peer.commit(&persister).await, ok());
        assert!(peer.state.outgoing.iter().any(|o| o.id == second));
        persister.close().await.unwrap();
    }
    let loaded = reload(h, "chat").await;
    assert_eq!(loaded, peer.expected());
    let state = loaded.meta.unwrap();
    clocks.push(state.lamport);
    assert!(clocks.windows(2).all(|w| w[0] < w[1]), "the lamport clock is monotonic across restarts: {clocks:?}");
    assert_eq!(state.outgoing.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["chat-m2", "chat-m43", "chat-m47"]);
    assert_eq!(
        state.incoming,
        vec![
            Incoming { id: "peer-x0".into(), missing_deps: vec!["dep-b0".into()] },
            Incoming { id: "peer-x1".into(), missing_deps: vec!["dep-b1".into()] },
            Incoming { id: "peer-x2".into(), missing_deps: vec!["dep-a2".into(), "dep-b2".into()] },
        ]
    );
    assert_eq!(
        state.repairs.iter().map(|r| (r.id.as_str(), r.deadline_ms)).collect::<Vec<_>>(),
        [
            ("dep-b0", 1_732_000_030_124),
            ("dep-b1", 1_732_000_060_124),
            ("dep-a2", 1_732_000_090_123),
            ("dep-b2", 1_732_000_090_124)
        ]
    );
    assert_eq!(loaded.history.len(), 9);
}

/// FIFO eviction across restarts: evicted ids never come back, survivors keep their order, and
/// eviction goes on correctly after each restart.
pub async fn fifo_history_eviction_survives_restarts<H: Harness>(h: &H) {
    let mut peer = Peer::new("fifo", 4);
    let persister = open(h).await;
    for _ in 0..6 {
        peer.send(&persister);
        assert_eq!(peer.commit(&persister).await, ok());
    }
    // m1 and m2 were committed, then evicted; the last four remain.
    assert_eq!(peer.ids(), ["fifo-m3", "fifo-m4", "fifo-m5", "fifo-m6"]);
    persister.close().await.unwrap();
    let loaded = reload(h, "fifo").await;
    assert_eq!(loaded, peer.expected());

    let persister = open(h).await;
    let mut peer = Peer::restore("fifo", 4, persister.channels().load_channel("fifo").await.unwrap());
    for _ in 0..3 {
        peer.send(&persister);
    }
    // Three sends queued in one journal, committed together: three appends, three evictions.
    assert_eq!(persister.channels().pending("fifo").len(), 6);
    assert_eq!(peer.commit(&persister).await, ok());
    persister.close().await.unwrap();
    let loaded = reload(h, "fifo").await;
    assert_eq!(loaded, peer.expected());
    assert_eq!(peer.ids(), ["fifo-m6", "fifo-m7", "fifo-m8", "fifo-m9"]);

    // One more cycle where evictions and appends are interleaved with restarts.
    let persister = open(h).await;
    let mut peer = Peer::restore("fifo", 4, persister.channels().load_channel("fifo").await.unwrap());
    peer.send(&persister);
    assert_eq!(peer.commit(&persister).await, ok());
    persister.close().await.unwrap();
    let loaded = reload(h, "fifo").await;
    let ids: Vec<&str> = loaded.history.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["fifo-m7", "fifo-m8", "fifo-m9", "fifo-m10"]);
    assert_eq!(loaded, peer.expected());
    let backend = h.open().await;
    let rows = channel_rows(&backend).await;
    assert_eq!(rows[1].rows.len(), 4, "evicted rows are gone from disk, not hidden");
    backend.close();
}

/// `drop_channel` wipes meta, history and hints of that channel in one write, discards its queue,
/// leaves other channels alone; the channel recreated with the same id starts at lamport 0.
pub async fn drop_channel_wipes_everything_in_one_transaction<H: Harness>(h: &H) {
    let persister = open(h).await;
    let (mut a, mut b) = (Peer::new("room-a", 8), Peer::new("room-b", 8));
    for _ in 0..3 {
        a.send(&persister);
        b.send(&persister);
    }
    a.receive_waiting("x", &["y"], 5);
    assert_eq!(a.commit(&persister).await, ok());
    assert_eq!(b.commit(&persister).await, ok());
    persister.channels().set_retrieval_hint("room-a", "room-a-m1", b"hint-a").await.unwrap();
    persister.channels().set_retrieval_hint("room-b", "room-b-m1", b"hint-b").await.unwrap();
    a.send(&persister); // queued, never committed: the drop discards it

    let writes = persister.backend().calls(Op::Write);
    persister.channels().drop_channel("room-a").await.unwrap();
    assert_eq!(persister.backend().calls(Op::Write), writes + 1, "one transaction");
    assert!(persister.channels().pending("room-a").is_empty());
    let empty = LoadedChannel { meta: None, history: vec![], hints: vec![] };
    assert_eq!(persister.channels().load_channel::<ProtocolState>("room-a").await.unwrap(), empty);
    persister.close().await.unwrap();
    assert_eq!(reload(h, "room-a").await, empty);
    let mut expected_b = b.expected();
    expected_b.hints = vec![RetrievalHint { message_id: "room-b-m1".into(), hint: Bytes::from(b"hint-b".to_vec()) }];
    assert_eq!(reload(h, "room-b").await, expected_b);

    // Recreated: lamport 0, an empty history, nothing of the old channel.
    let persister = open(h).await;
    let mut again = Peer::new("room-a", 8);
    assert_eq!(again.commit(&persister).await, ok());
    persister.close().await.unwrap();
    let loaded = reload(h, "room-a").await;
    assert_eq!(loaded.meta.as_ref().map(|m| m.lamport), Some(0));
    assert_eq!(loaded, again.expected());
    let persister = open(h).await;
    again.send(&persister);
    assert_eq!(again.commit(&persister).await, ok());
    persister.close().await.unwrap();
    let loaded = reload(h, "room-a").await;
    assert_eq!(loaded, again.expected());
    assert_eq!(again.ids(), ["room-a-m1"], "only the new m1; the dropped m2..m4 are gone");
}

/// `load_channel` and `drop_channel` are durability-intent operations: a failure rejects with its
/// code, and a failed drop deletes nothing and keeps the queue.
pub async fn channel_load_and_drop_failures_reject_with_their_codes<H: Harness>(h: &H) {
    let persister = open(h).await;
    let backend = persister.backend();
    let mut peer = Peer::new("durable", 5);
    peer.send(&persister);
    assert_eq!(peer.commit(&persister).await, ok());
    persister.channels().set_retrieval_hint("durable", "durable-m1", &[1, 2, 3]).await.unwrap();
    let mut expected = peer.expected();
    expected.hints = vec![RetrievalHint { message_id: "durable-m1".into(), hint: Bytes::from(vec![1, 2, 3]) }];

    // A lost connection is reconnected once; lost again (the reconnect's schema check), it rejects.
    backend.fail_next(Op::Read, 1, injected(7));
    assert_eq!(persister.channels().load_channel::<ProtocolState>("durable").await.unwrap(), expected);
    assert_eq!(backend.reconnects(), 1);
    backend.fail_next(Op::Read, 2, injected(7));
    assert_eq!(persister.channels().load_channel::<ProtocolState>("durable").await.unwrap_err().code(), 7);
    assert_eq!(backend.reconnects(), 2);
    backend.fail_store_read(CHANNEL_HISTORY, 1, Error::BlobDecode("NotReadableError: injected".into()));
    assert_eq!(persister.channels().load_channel::<ProtocolState>("durable").await.unwrap_err().code(), 11);
    assert_eq!(persister.channels().load_channel::<ProtocolState>("durable").await.unwrap(), expected);

    peer.send(&persister);
    let queued = persister.channels().pending("durable");
    backend.fail_next(Op::Write, 1, injected(5));
    assert_eq!(persister.channels().drop_channel("durable").await.unwrap_err(), injected(5));
    assert_eq!(persister.channels().pending("durable"), queued, "a failed drop keeps the queue");
    assert_eq!(
        persister.channels().load_channel::<ProtocolState>("durable").await.unwrap(),
        expected,
        "nothing deleted"
    );
    assert_eq!(peer.commit(&persister).await, ok());
    persister.close().await.unwrap();
    expected.meta = Some(peer.state.clone());
    expected.history = peer.history.iter().cloned().collect();
    assert_eq!(reload(h, "durable").await, expected);
}

/// A failed meta save and a failed history write during `commit` resolve (never reject), report
/// which half failed with its code, keep the queue exactly, and the next commit lands both.
pub async fn channel_commit_failures_resolve_and_the_next_commit_lands_both<H: Harness>(h: &H) {
    let persister = open(h).await;
    let backend = persister.backend();
    let mut peer = Peer::new("flaky", 6);
    peer.send(&persister);
    assert_eq!(peer.commit(&persister).await, ok());
    let durable = peer.expected();

    // The meta save fails; the history lands.
    peer.send(&persister);
    backend.fail_store_write(CHANNEL_META, 1, injected(5));
    assert_eq!(summary(&peer.commit(&persister).await), (false, true, 0, vec![(CommitStep::Meta, 5)]));
    // The history write fails; the meta lands.
    let m3 = peer.send(&persister);
    backend.fail_store_write(CHANNEL_HISTORY, 1, injected(21));
    assert_eq!(summary(&peer.commit(&persister).await), (true, false, 1, vec![(CommitStep::History, 21)]));
    assert_eq!(persister.channels().pending("flaky"), vec![(m3.clone(), PendingOp::Append)]);
    // Both fail.
    peer.ack("flaky-m1");
    let m4 = peer.send(&persister);
    backend.fail_next(Op::Write, 2, injected(18));
    let failed = peer.commit(&persister).await;
    assert_eq!(summary(&failed), (false, false, 2, vec![(CommitStep::Meta, 18), (CommitStep::History, 18)]));
    assert!(failed.failures.iter().all(|f| f.retryable && f.kind == "timeout"));
    assert_eq!(persister.channels().pending("flaky"), vec![(m3, PendingOp::Append), (m4, PendingOp::Append)]);
    assert_eq!(peer.ids(), ["flaky-m1", "flaky-m2", "flaky-m3", "flaky-m4"], "memory is the source of truth");

    // Disk still has the meta of the second commit (lamport 3) and m1, m2.
    let on_disk = persister.channels().load_channel::<ProtocolState>("flaky").await.unwrap();
    assert_eq!(on_disk.meta.as_ref().map(|m| m.lamport), Some(3));
    assert_eq!(on_disk.history, peer.history.iter().take(2).cloned().collect::<Vec<_>>());
    assert_ne!(on_disk, durable);

    assert_eq!(peer.commit(&persister).await, ok());
    persister.close().await.unwrap();
    assert_eq!(reload(h, "flaky").await, peer.expected());
}

/// Two failed history writes leave both appends queued; the next successful commit drains the
/// whole queue with one history write (two backend writes in all: the meta, then the history).
pub async fn failed_history_writes_drain_in_one_update<H: Harness>(h: &H) {
    let persister = open(h).await;
    let backend = persister.backend();
    let mut peer = Peer::new("drain", 10);
    let m1 = peer.send(&persister);
    backend.fail_store_write(CHANNEL_HISTORY, 1, injected(5));
    assert_eq!(summary(&peer.commit(&persister).await), (true, false, 1, vec![(CommitStep::History, 5)]));
    let m2 = peer.send(&persister);
    backend.fail_store_write(CHANNEL_HISTORY, 1, injected(5));
    assert_eq!(summary(&peer.commit(&persister).await), (true, false, 2, vec![(CommitStep::History, 5)]));
    assert_eq!(persister.channels().pending("drain"), vec![(m1, PendingOp::Append), (m2, PendingOp::Append)]);

    let (writes, reads) = (backend.calls(Op::Write), backend.calls(Op::Read));
    assert_eq!(peer.commit(&persister).await, ok());
    assert_eq!(backend.calls(Op::Write) - writes, 2, "one meta write + one history write for the whole queue");
    assert_eq!(backend.calls(Op::Read) - reads, 0, "the history index was read once, by the first commit");
    // With nothing queued, a commit is one write.
    let writes = backend.calls(Op::Write);
    assert_eq!(peer.commit(&persister).await, ok());
    assert_eq!(backend.calls(Op::Write) - writes, 1);
    persister.close().await.unwrap();
    assert_eq!(reload(h, "drain").await, peer.expected());
}

/// Evict, then re-add the same id while history writes fail: after recovery the re-added entry
/// is on disk exactly once, at the end, with its new payload — whether or not the evicted one had
/// reached the disk.
pub async fn evict_then_re_add_during_outage_lands_the_re_added_entry<H: Harness>(h: &H) {
    let persister = open(h).await;
    let backend = persister.backend();
    let channels = persister.channels();
    let entry = |id: &str, b: u8| HistoryEntry {
        id: id.into(),
        bytes: Bytes::from(vec![b; 3]),
        timestamp_ms: Some(T0 + i64::from(b)),
    };
    for (id, b) in [("a", 1), ("m", 2), ("z", 3)] {
        channels.queue_append("outage", entry(id, b)).unwrap();
    }
    assert_eq!(channels.commit("outage", &0u8).await.unwrap(), ok());

    backend.fail_store_write(CHANNEL_HISTORY, 3, injected(5));
    channels.queue_evict("outage", "m").unwrap();
    assert_eq!(summary(&channels.commit("outage", &1u8).await.unwrap()).2, 1);
    channels.queue_append("outage", entry("m", 9)).unwrap();
    channels.queue_append("outage", entry("n", 4)).unwrap();
    channels.queue_evict("outage", "n").unwrap();
    channels.queue_append("outage", entry("n", 5)).unwrap(); // never on disk: appended, evicted, re-added
    assert_eq!(summary(&channels.commit("outage", &2u8).await.unwrap()).2, 2);
    assert_eq!(channels.pending("outage"), vec![("m".into(), PendingOp::Append), ("n".into(), PendingOp::Append)]);
    assert_eq!(summary(&channels.commit("outage", &3u8).await.unwrap()).2, 2);

    assert_eq!(channels.commit("outage", &4u8).await.unwrap(), ok());
    persister.close().await.unwrap();
    let persister = open(h).await;
    let loaded = persister.channels().load_channel::<u8>("outage").await.unwrap();
    assert_eq!(loaded.meta, Some(4));
    assert_eq!(loaded.history, vec![entry("a", 1), entry("z", 3), entry("m", 9), entry("n", 5)]);
    assert_eq!(channel_rows(persister.backend()).await[1].rows.len(), 4, "no stale row of m is left");
    persister.close().await.unwrap();
}

/// A commit with no history change of its own still writes a queue a failed commit left.
pub async fn idle_commit_flushes_a_failed_queue<H: Harness>(h: &H) {
    let persister = open(h).await;
    let mut peer = Peer::new("idle", 3);
    peer.send(&persister);
    peer.send(&persister);
    persister.backend().fail_store_write(CHANNEL_HISTORY, 1, injected(18));
    assert_eq!(summary(&peer.commit(&persister).await), (true, false, 2, vec![(CommitStep::History, 18)]));
    persister.close().await.unwrap_or_else(|e| panic!("{e}"));
    // The close wrote the queue (see close_writes_queued_channel_changes); do the same without it.
    let persister = open(h).await;
    let mut peer = Peer::restore("idle", 3, persister.channels().load_channel("idle").await.unwrap());
    peer.send(&persister);
    persister.backend().fail_store_write(CHANNEL_HISTORY, 1, injected(18));
    assert!(!peer.commit(&persister).await.history_flushed);
    let writes = persister.backend().calls(Op::Write);
    assert_eq!(peer.commit(&persister).await, ok(), "no new history change, the queue is written");
    assert_eq!(persister.backend().calls(Op::Write) - writes, 2);
    assert!(persister.channels().pending("idle").is_empty());
    let before_close = persister.channels().load_channel::<ProtocolState>("idle").await.unwrap();
    assert_eq!(before_close, peer.expected());
    persister.close().await.unwrap();
    assert_eq!(reload(h, "idle").await, peer.expected());
}

/// Closing writes queued history changes that a failed commit left.
pub async fn close_writes_queued_channel_changes<H: Harness>(h: &H) {
    let persister = open(h).await;
    let mut peer = Peer::new("closing", 3);
    peer.send(&persister);
    persister.backend().fail_store_write(CHANNEL_HISTORY, 1, injected(5));
    assert!(!peer.commit(&persister).await.history_flushed);
    persister.close().await.unwrap();
    assert_eq!(reload(h, "closing").await, peer.expected());
}

/// A row written by a newer schema refuses the whole load with code 9 (never half-read); a row
/// whose embedded key differs from its row key refuses it with 13. Nothing in memory changes.
pub async fn newer_channel_rows_are_refused_whole<H: Harness>(h: &H) {
    let persister = open(h).await;
    let mut peer = Peer::new("newer", 5);
    peer.send(&persister);
    assert_eq!(peer.commit(&persister).await, ok());
    let newer = crate::codec::SCHEMA_VERSION + 1;
    let supported = crate::codec::SCHEMA_VERSION;
    let future_meta = crate::codec::encode_as(&("newer", &peer.state), newer, usize::MAX).unwrap();
    let key = vec![KeyPart::Text("newer".into())];
    let raw = |store, key, value| WriteBatch::new(vec![WriteOp::Put { store, key, value }]);
    persister.backend().write(&raw(CHANNEL_META, key.clone(), future_meta)).await.unwrap();
    let refused = persister.channels().load_channel::<ProtocolState>("newer").await.unwrap_err();
    assert_eq!(refused, Error::SchemaVersionUnsupported { found: newer, supported });
    // A meta of this schema again, and a history row from the future.
    assert_eq!(peer.commit(&persister).await, ok());
    let entry = HistoryEntry { id: "future".into(), bytes: Bytes::from(vec![1]), timestamp_ms: None };
    let future_row = crate::codec::encode_as(&("newer", 7u32, &entry), newer, usize::MAX).unwrap();
    let history_key = vec![KeyPart::Text("newer".into()), KeyPart::Num(7)];
    persister.backend().write(&raw(CHANNEL_HISTORY, history_key.clone(), future_row)).await.unwrap();
    assert_eq!(persister.channels().load_channel::<ProtocolState>("newer").await.unwrap_err().code(), 9);
    // A row stored under another seq than its own.
    let moved = crate::codec::encode(&("newer", 8u32, &entry), usize::MAX).unwrap();
    persister.backend().write(&raw(CHANNEL_HISTORY, history_key.clone(), moved)).await.unwrap();
    assert_eq!(persister.channels().load_channel::<ProtocolState>("newer").await.unwrap_err().code(), 13);
    // A meta of another channel stored under this one.
    let foreign = crate::codec::encode(&("other", &peer.state), usize::MAX).unwrap();
    persister.backend().write(&raw(CHANNEL_META, key, foreign)).await.unwrap();
    persister
        .backend()
        .write(&WriteBatch::new(vec![WriteOp::Delete { store: CHANNEL_HISTORY, key: history_key }]))
        .await
        .unwrap();
    assert_eq!(persister.channels().load_channel::<ProtocolState>("newer").await.unwrap_err().code(), 13);
    assert!(persister.channels().pending("newer").is_empty());
    assert_eq!(peer.commit(&persister).await, ok());
    persister.close().await.unwrap();
    assert_eq!(reload(h, "newer").await, peer.expected());
}

/// Bad input is refused with its code before anything is written or queued; a closed store
/// refuses with 20, a read-only follower refuses writes with 16 and still loads.
pub async fn channel_input_is_validated_before_anything_is_written<H: Harness>(h: &H) {
    let options = Options { max_blob_bytes: 512, ..manual() };
    let persister = Persister::open(FaultyBackend::new(h.open().await), options).await.expect("open");
    let channels = persister.channels();
    let entry =
        |id: &str, len: usize| HistoryEntry { id: id.into(), bytes: Bytes::from(vec![7; len]), timestamp_ms: None };
    let long = "x".repeat(crate::channels::MAX_ID_BYTES + 1);
    let code = |r: crate::Result<()>| r.unwrap_err().code();
    assert_eq!(code(channels.save_meta("", &1u8).await), 1);
    assert_eq!(code(channels.save_meta(&long, &1u8).await), 1);
    assert_eq!(code(channels.save_meta("c", &vec![0u8; 1024]).await), 10);
    assert_eq!(code(channels.queue_append("c", entry("", 1))), 1);
    assert_eq!(code(channels.queue_append("c", entry("big", 1024))), 10);
    assert_eq!(code(channels.queue_evict("c", &long)), 1);
    assert_eq!(code(channels.set_retrieval_hint("c", "", b"h").await), 1);
    assert_eq!(code(channels.set_retrieval_hint("c", "m", &[0; 1024]).await), 10);
    let twice = HistoryUpdate { append: vec![entry("m", 1)], evict: vec!["m".into()] };
    assert_eq!(code(channels.update_history("c", &twice).await), 1);
    let big = HistoryUpdate { append: vec![entry("ok", 1), entry("big", 1024)], evict: vec![] };
    assert_eq!(code(channels.update_history("c", &big).await), 10);
    assert_eq!(channels.commit("", &1u8).await.unwrap_err().code(), 1);
    assert_eq!(channels.commit("c", &vec![0u8; 1024]).await.unwrap_err().code(), 10);
    assert_eq!(code(channels.drop_channel("").await), 1);
    assert_eq!(channels.load_channel::<u8>(&long).await.unwrap_err().code(), 1);
    assert!(channels.pending("c").is_empty());
    assert!(channel_rows(persister.backend()).await.iter().all(|s| s.rows.is_empty()), "nothing written");

    channels.queue_append("c", entry("m", 1)).unwrap();
    assert_eq!(channels.commit("c", &1u8).await.unwrap(), ok());
    let follower = Persister::open(h.open().await, Options { read_only: true, ..manual() }).await.expect("open");
    assert_eq!(follower.channels().load_channel::<u8>("c").await.unwrap().history, vec![entry("m", 1)]);
    assert_eq!(code(follower.channels().save_meta("c", &2u8).await), 16);
    assert_eq!(code(follower.channels().queue_append("c", entry("n", 1))), 16);
    assert_eq!(follower.channels().commit("c", &2u8).await.unwrap_err().code(), 16);
    assert_eq!(code(follower.channels().drop_channel("c").await), 16);
    follower.close().await.unwrap();

    persister.close().await.unwrap();
    let channels = persister.channels();
    assert_eq!(code(channels.save_meta("c", &1u8).await), 20);
    assert_eq!(code(channels.queue_evict("c", "m")), 20);
    assert_eq!(channels.commit("c", &1u8).await.unwrap_err(), Error::Closed);
    assert_eq!(channels.load_channel::<u8>("c").await.unwrap_err(), Error::Closed);
    assert_eq!(code(channels.drop_channel("c").await), 20);
}

/// Retrieval hints round-trip in message id order; evicting a message deletes its hint by key.
pub async fn retrieval_hints_round_trip_and_go_with_eviction<H: Harness>(h: &H) {
    let persister = open(h).await;
    let mut peer = Peer::new("hints", 3);
    let ids: Vec<String> = (0..3).map(|_| peer.send(&persister)).collect();
    assert_eq!(peer.commit(&persister).await, ok());
    for (i, id) in ids.iter().enumerate().rev() {
        persister.channels().set_retrieval_hint("hints", id, format!("waku:{i}").as_bytes()).await.unwrap();
    }
    persister.channels().set_retrieval_hint("hints", &ids[1], b"waku:1b").await.unwrap();
    persister.close().await.unwrap();
    let hint = |id: &str, h: &str| RetrievalHint { message_id: id.into(), hint: Bytes::from(h.as_bytes().to_vec()) };
    let mut expected = peer.expected();
    expected.hints = vec![hint(&ids[0], "waku:0"), hint(&ids[1], "waku:1b"), hint(&ids[2], "waku:2")];
    assert_eq!(reload(h, "hints").await, expected);

    let persister = open(h).await;
    let mut peer = Peer::restore("hints", 3, persister.channels().load_channel("hints").await.unwrap());
    peer.send(&persister); // evicts ids[0]
    assert_eq!(peer.commit(&persister).await, ok());
    persister.close().await.unwrap();
    let mut expected = peer.expected();
    expected.hints = vec![hint(&ids[1], "waku:1b"), hint(&ids[2], "waku:2")];
    assert_eq!(reload(h, "hints").await, expected);
}

/// Channels whose ids share a prefix ("a", "ab", "a/b") are separate key ranges: loading and
/// dropping one never touches another. The direct `update_history` keeps append order.
pub async fn channels_are_isolated_by_key_range<H: Harness>(h: &H) {
    let persister = open(h).await;
    let channels = persister.channels();
    let entry =
        |id: &str| HistoryEntry { id: id.into(), bytes: Bytes::from(id.as_bytes().to_vec()), timestamp_ms: Some(-1) };
    for channel in ["a", "ab", "a/b", "b"] {
        channels.save_meta(channel, &format!("meta of {channel}")).await.unwrap();
        let update =
            HistoryUpdate { append: vec![entry(&format!("{channel}1")), entry(&format!("{channel}2"))], evict: vec![] };
        channels.update_history(channel, &update).await.unwrap();
        channels.set_retrieval_hint(channel, &format!("{channel}1"), channel.as_bytes()).await.unwrap();
    }
    channels.update_history("a", &HistoryUpdate { append: vec![entry("a3")], evict: vec!["a1".into()] }).await.unwrap();
    channels.drop_channel("ab").await.unwrap();
    persister.close().await.unwrap();

    let persister = open(h).await;
    let channels = persister.channels();
    let load = |c: &'static str| channels.load_channel::<String>(c);
    let a = load("a").await.unwrap();
    assert_eq!(a.meta.as_deref(), Some("meta of a"));
    assert_eq!(a.history, vec![entry("a2"), entry("a3")]);
    assert!(a.hints.is_empty(), "a1's hint went with a1");
    assert_eq!(load("ab").await.unwrap(), LoadedChannel { meta: None, history: vec![], hints: vec![] });
    for channel in ["a/b", "b"] {
        let loaded = channels.load_channel::<String>(channel).await.unwrap();
        assert_eq!(loaded.meta, Some(format!("meta of {channel}")));
        assert_eq!(loaded.history, vec![entry(&format!("{channel}1")), entry(&format!("{channel}2"))]);
        assert_eq!(
            loaded.hints,
            vec![RetrievalHint { message_id: format!("{channel}1"), hint: Bytes::from(channel.as_bytes().to_vec()) }]
        );
    }
    persister.close().await.unwrap();
}

/// A structured meta (as the JS API stores it) round-trips exactly, and a backup of the database
/// carries every channel row: imported elsewhere, the channel loads exactly.
pub async fn channel_rows_survive_a_backup_round_trip<H: Harness>(h: &H) {
    let persister = open(h).await;
    let mut peer = Peer::new("backed-up", 4);
    for _ in 0..6 {
        peer.send(&persister);
    }
    peer.receive_waiting("w", &["d1", "d2"], 1);
    assert_eq!(peer.commit(&persister).await, ok());
    persister.channels().set_retrieval_hint("backed-up", "backed-up-m6", b"hint").await.unwrap();
    let structured = MetaValue::from_nodes(vec![
        Node::Map(3),
        Node::Key("lamport".into()),
        Node::BigInt(i64::MAX),
        Node::Key("deadlines".into()),
        Node::List(2),
        Node::Number(-0.5),
        Node::BigInt(T0),
        Node::Key("raw".into()),
        Node::Bytes(Bytes::from(vec![0, 255])),
    ])
    .unwrap();
    persister.channels().save_meta("js", &structured).await.unwrap();
    let bytes = persister.export_backup(1, &mut |_, _, _| {}).await.unwrap();
    persister.close().await.unwrap();

    let target = Persister::open(h.open_other().await, manual()).await.expect("open");
    target.import_backup(&bytes, false, &mut |_, _, _| {}).await.unwrap();
    target.close().await.unwrap();
    let target = Persister::open(h.open_other().await, manual()).await.expect("open");
    let mut expected = peer.expected();
    expected.hints = vec![RetrievalHint { message_id: "backed-up-m6".into(), hint: Bytes::from(b"hint".to_vec()) }];
    assert_eq!(target.channels().load_channel::<ProtocolState>("backed-up").await.unwrap(), expected);
    assert_eq!(target.channels().load_channel::<MetaValue>("js").await.unwrap().meta, Some(structured));
    target.close().await.unwrap();
}

async fn wait_paused<B: Backend>(backend: &FaultyBackend<B>) {
    while !backend.is_paused() {
        crate::backend::faulty::yield_now().await;
    }
}

/// With the next write armed to pause: lets a commit's meta write go on, holds its history write
/// while `during` runs, then lets that go too. The meta write must fail by injection, and not with
/// a timeout (after which the history write reconnects first): waiting here spins without yielding
/// to the browser's event loop, so no real IndexedDB request may be awaited meanwhile.
async fn during_history_write<B: Backend>(backend: &FaultyBackend<B>, during: impl FnOnce()) {
    wait_paused(backend).await;
    backend.pause_next(Op::Write);
    backend.resume();
    wait_paused(backend).await;
    during();
    backend.resume();
}

/// Changes queued while a commit's history write is in flight are newer than what it took: if the
/// write fails they win over the taken ones; if it succeeds they are written by the next commit.
pub async fn changes_queued_during_a_commit_stay_newest<H: Harness>(h: &H) {
    let persister = open(h).await;
    let backend = persister.backend();
    let channels = persister.channels();
    let entry = |id: &str, b: u8| HistoryEntry { id: id.into(), bytes: Bytes::from(vec![b; 2]), timestamp_ms: None };
    channels.queue_append("race", entry("m", 1)).unwrap();
    assert_eq!(channels.commit("race", &0u8).await.unwrap(), ok());

    // The history write fails: the evict of x and the append of y, queued meanwhile, win.
    channels.queue_append("race", entry("x", 1)).unwrap();
    backend.fail_store_write(CHANNEL_META, 1, injected(5));
    backend.fail_store_write(CHANNEL_HISTORY, 1, injected(5));
    backend.pause_next(Op::Write);
    let queue_more = || {
        channels.queue_evict("race", "x").unwrap();
        channels.queue_append("race", entry("y", 1)).unwrap();
    };
    let (committed, ()) = super::join2(channels.commit("race", &1u8), during_history_write(backend, queue_more)).await;
    assert_eq!(summary(&committed.unwrap()), (false, false, 2, vec![(CommitStep::Meta, 5), (CommitStep::History, 5)]));
    assert_eq!(channels.pending("race"), vec![("x".into(), PendingOp::Evict), ("y".into(), PendingOp::Append)]);

    // The history write succeeds: x (payload 2) lands, and its re-append (payload 3), queued
    // meanwhile, is written by the next commit.
    channels.queue_append("race", entry("x", 2)).unwrap();
    // Not a timeout (18): after one the next call reconnects first, a real wait.
    backend.fail_store_write(CHANNEL_META, 1, injected(21));
    backend.pause_next(Op::Write);
    let re_append = || channels.queue_append("race", entry("x", 3)).unwrap();
    let (committed, ()) = super::join2(channels.commit("race", &2u8), during_history_write(backend, re_append)).await;
    assert_eq!(summary(&committed.unwrap()), (false, true, 1, vec![(CommitStep::Meta, 21)]));
    assert_eq!(
        channels.load_channel::<u8>("race").await.unwrap().history,
        vec![entry("m", 1), entry("y", 1), entry("x", 2)]
    );
    assert_eq!(channels.commit("race", &3u8).await.unwrap(), ok());
    persister.close().await.unwrap();

    let persister = open(h).await;
    let loaded = persister.channels().load_channel::<u8>("race").await.unwrap();
    assert_eq!(loaded.meta, Some(3));
    assert_eq!(loaded.history, vec![entry("m", 1), entry("y", 1), entry("x", 3)]);
    persister.close().await.unwrap();
}

//! The in-memory side of every channel: what is known to be on disk of its history, its queue of
//! pending history changes, and the payloads those changes will write.

use std::collections::{HashMap, VecDeque};

use super::{HistoryEntry, HistoryIndex, HistoryUpdate, IndexChange, Journal, PendingOp};

/// One channel in memory.
#[derive(Debug, Default)]
struct ChannelState {
    /// What is on disk; `None` until read (by a load or the first history write).
    index: Option<HistoryIndex>,
    /// History changes not yet written: message ids, latest operation per id.
    queue: Journal,
    /// The entry of every id queued as an append, as last queued: the payload is read from here
    /// when the queue is written. Invariant: exactly the ids `queue` holds as `Append`.
    entries: HashMap<String, HistoryEntry>,
}

impl ChannelState {
    /// Restores the invariant of `entries` after queues were merged.
    fn prune_entries(&mut self) {
        let queue = &self.queue;
        self.entries.retain(|id, _| queue.get(id) == Some(PendingOp::Append));
    }
}

/// A channel's queue taken for a write, and the update it writes.
#[derive(Debug)]
pub struct TakenQueue {
    queue: Journal,
    /// The history write the queue amounts to.
    pub update: HistoryUpdate,
}

/// A dropped channel's state, kept until the drop committed (see [`ChannelRegistry::take_channel`]).
#[derive(Debug)]
pub struct TakenChannel(ChannelState);

/// Every channel this instance has touched, by id.
#[derive(Debug, Default)]
pub struct ChannelRegistry {
    channels: HashMap<String, ChannelState>,
    /// Per channel, one state per drop called and not yet holding the channel, oldest first: what
    /// was queued after that drop's call (and before the next one's), which belongs to the channel
    /// as recreated by that drop. Invariant: no empty list.
    after_drops: HashMap<String, VecDeque<ChannelState>>,
}

impl ChannelRegistry {
    fn state(&mut self, channel: &str) -> &mut ChannelState {
        self.channels.entry(channel.to_owned()).or_default()
    }

    /// Where a change queued now goes: after the last drop called, if one is still to run.
    fn queued_state(&mut self, channel: &str) -> &mut ChannelState {
        match self.after_drops.get_mut(channel).and_then(VecDeque::back_mut) {
            Some(state) => state,
            None => self.channels.entry(channel.to_owned()).or_default(),
        }
    }

    /// Every state of `channel` with queued changes, oldest first.
    fn states<'a>(&'a self, channel: &str) -> impl Iterator<Item = &'a ChannelState> + 'a {
        self.channels.get(channel).into_iter().chain(self.after_drops.get(channel).into_iter().flatten())
    }

    /// Queues `entry` to be appended (latest wins over anything queued for its id).
    pub fn queue_append(&mut self, channel: &str, entry: HistoryEntry) {
        let state = self.queued_state(channel);
        state.queue.queue(entry.id.clone(), PendingOp::Append);
        state.entries.insert(entry.id.clone(), entry);
    }

    /// Queues `id` to be evicted (latest wins over anything queued for it).
    pub fn queue_evict(&mut self, channel: &str, id: String) {
        let state = self.queued_state(channel);
        state.entries.remove(&id);
        state.queue.queue(id, PendingOp::Evict);
    }

    /// The queued `(id, op)` of `channel`, oldest first (those queued after a drop that is still
    /// to run last).
    pub fn pending(&self, channel: &str) -> Vec<(String, PendingOp)> {
        self.states(channel).flat_map(|state| state.queue.iter().map(|(id, op)| (id.to_owned(), op))).collect()
    }

    /// How many ids are queued for `channel`.
    pub fn pending_len(&self, channel: &str) -> usize {
        self.states(channel).map(|state| state.queue.len()).sum()
    }

    /// The channels with queued changes.
    pub fn dirty(&self) -> Vec<(String, usize)> {
        let names: std::collections::BTreeSet<&String> = self.channels.keys().chain(self.after_drops.keys()).collect();
        names
            .into_iter()
            .map(|channel| (channel.clone(), self.pending_len(channel)))
            .filter(|(_, queued)| *queued > 0)
            .collect()
    }

    /// Takes the whole queue of `channel` (`None` if empty) with the one update that writes it:
    /// evictions, then appends in queue order with the payloads as last queued.
    pub fn take_queue(&mut self, channel: &str) -> Option<TakenQueue> {
        let state = self.channels.get_mut(channel)?;
        if state.queue.is_empty() {
            return None;
        }
        let queue = state.queue.take();
        let mut update = HistoryUpdate::default();
        for (id, op) in queue.iter() {
            match op {
                PendingOp::Evict => update.evict.push(id.to_owned()),
                // Always present (the invariant of `entries`).
                PendingOp::Append => update.append.extend(state.entries.get(id).cloned()),
            }
        }
        Some(TakenQueue { queue, update })
    }

    /// The taken queue was written: drops the payloads nothing queued since still needs.
    pub fn settle_queue(&mut self, channel: &str, _taken: TakenQueue) {
        if let Some(state) = self.channels.get_mut(channel) {
            state.prune_entries();
        }
    }

    /// The taken queue was not written: puts it back under anything queued since (newer wins).
    pub fn restore_queue(&mut self, channel: &str, taken: TakenQueue) {
        let state = self.state(channel);
        state.queue.restore(taken.queue);
        state.prune_entries();
    }

    /// The history index of `channel`, if known.
    pub fn index(&self, channel: &str) -> Option<&HistoryIndex> {
        self.channels.get(channel)?.index.as_ref()
    }

    /// Records what is on disk of `channel`'s history (read from it, or known after a drop).
    pub fn set_index(&mut self, channel: &str, index: HistoryIndex) {
        self.state(channel).index = Some(index);
    }

    /// Forgets what is known of `channel`'s history on disk (a write that failed may have landed):
    /// the next history write reads it again.
    pub fn forget_index(&mut self, channel: &str) {
        if let Some(state) = self.channels.get_mut(channel) {
            state.index = None;
        }
    }

    /// Records a history write of `channel` that committed.
    pub fn apply(&mut self, channel: &str, change: IndexChange) {
        if let Some(index) = self.state(channel).index.as_mut() {
            index.apply(change);
        }
    }

    /// A drop of `channel` was called: changes queued from now on belong to the channel as that
    /// drop recreates it (see [`ChannelRegistry::take_channel`]).
    pub fn call_drop(&mut self, channel: &str) {
        self.after_drops.entry(channel.to_owned()).or_default().push_back(ChannelState::default());
    }

    /// The oldest drop called of `channel` holds it now: removes the channel's state while the
    /// drop is written, and puts in its place what was queued after that drop's call.
    pub fn take_channel(&mut self, channel: &str) -> TakenChannel {
        let taken = TakenChannel(self.channels.remove(channel).unwrap_or_default());
        if let Some(states) = self.after_drops.get_mut(channel) {
            if let Some(after) = states.pop_front() {
                self.channels.insert(channel.to_owned(), after);
            }
            if states.is_empty() {
                self.after_drops.remove(channel);
            }
        }
        taken
    }

    /// The drop committed: nothing of the old channel is on disk.
    pub fn settle_drop(&mut self, channel: &str, _taken: TakenChannel) {
        self.set_index(channel, HistoryIndex::default());
    }

    /// The drop failed, so nothing was deleted: the old state comes back, under anything queued
    /// since.
    pub fn restore_drop(&mut self, channel: &str, taken: TakenChannel) {
        let TakenChannel(mut old) = taken;
        if let Some(newer) = self.channels.remove(channel) {
            let mut queue = newer.queue;
            queue.restore(std::mem::take(&mut old.queue));
            old.queue = queue;
            old.entries.extend(newer.entries);
            old.prune_entries();
        }
        self.channels.insert(channel.to_owned(), old);
    }

    /// Forgets every channel (after the stores were replaced underneath, e.g. by a backup import).
    pub fn clear(&mut self) {
        self.channels.clear();
        self.after_drops.clear();
    }
}

//! A channel's queue of history changes not yet written: message ids, each with the latest
//! operation queued for it.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// What is queued for one message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PendingOp {
    /// The entry is to be appended (or moved to the end).
    Append,
    /// The entry is to be evicted.
    Evict,
}

/// Pending history changes in queue order, one per id, latest wins: queuing an id again replaces
/// what was queued for it and moves it to the end, so an append cancels a pending evict of the
/// same id and vice versa, and appends keep the order in which they were last queued.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Journal {
    /// Queue position → id.
    order: BTreeMap<u64, String>,
    /// Id → its queue position and operation. Invariant: the same ids as `order`.
    ops: HashMap<String, (u64, PendingOp)>,
    next_position: u64,
}

impl Journal {
    /// Queues `op` for `id`, replacing whatever was queued for it.
    pub fn queue(&mut self, id: String, op: PendingOp) {
        if let Some((position, _)) = self.ops.remove(&id) {
            self.order.remove(&position);
        }
        let position = self.next_position;
        self.next_position += 1;
        self.order.insert(position, id.clone());
        self.ops.insert(id, (position, op));
    }

    /// What is queued for `id`.
    pub fn get(&self, id: &str) -> Option<PendingOp> {
        self.ops.get(id).map(|(_, op)| *op)
    }

    /// How many ids are queued.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every queued `(id, op)`, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, PendingOp)> + '_ {
        self.order.values().map(|id| (id.as_str(), self.ops[id].1))
    }

    /// Removes and returns everything queued.
    pub fn take(&mut self) -> Journal {
        std::mem::take(self)
    }

    /// Puts `taken` (an earlier [`Journal::take`]) back **under** what was queued since: the taken
    /// operations are queued again first, then the newer ones over them, so per id the newer
    /// operation wins and the taken ids nothing newer replaced keep their order, ahead.
    pub fn restore(&mut self, taken: Journal) {
        let newer = std::mem::replace(self, taken);
        for (id, op) in newer.iter() {
            self.queue(id.to_owned(), op);
        }
    }
}

//! The snapshot contract over the database core (rows: [`super::rows`]; bookkeeping:
//! [`super::registry`]).
//!
//! Five operations, each `Result`-returning: `save_meta`, `update_history`, `load_channel`,
//! `drop_channel`, `set_retrieval_hint`. On top, a per-channel journal: `queue_append` /
//! `queue_evict` queue history changes in memory (latest wins per id), and `commit` writes the
//! meta, then the whole queue as one history update. `commit` never fails for a storage failure:
//! it reports, logs, and keeps what did not land queued for the next commit.
//!
//! Every channel write holds the channel lock, so writes are serialised and the in-memory history
//! index always matches the disk. Queuing is synchronous and never waits.

use serde::de::DeserializeOwned;
use serde::Serialize;

use std::cell::RefCell;

use super::registry::ChannelRegistry;
use super::rows::{self, check_id, HistoryEntry, HistoryIndex, HistoryUpdate, LoadedChannel};
use super::PendingOp;
use crate::backend::{Backend, StoreRows, WriteBatch, WriteOp};
use crate::db::{Db, WriteLock};
use crate::error::{Error, Result};
use crate::layout::{CHANNEL_HISTORY, CHANNEL_META, CHANNEL_STORES, RETRIEVAL_HINTS};
use crate::log::log_at;
use crate::model::key_to_string;

/// What a database keeps of its channels between calls: every channel's history index and
/// queue, and the lock that serialises channel writes (independent of wallet flushes: they touch
/// other stores).
#[derive(Default)]
pub struct ChannelState {
    registry: RefCell<ChannelRegistry>,
    lock: WriteLock,
}

impl ChannelState {
    /// The channels with queued history changes, and how many each.
    pub fn dirty(&self) -> Vec<(String, usize)> {
        self.registry.borrow().dirty()
    }

    /// Takes the channel write lock (e.g. for a backup import that replaces the channel stores).
    pub async fn lock(&self) -> crate::db::WriteGuard<'_> {
        self.lock.lock().await
    }

    /// Forgets every channel's history index and queue (their stores were replaced).
    pub fn forget(&self) {
        self.registry.borrow_mut().clear();
    }
}

/// The snapshot contract over one database: `persister.channels()`.
pub struct Channels<'a, B: Backend> {
    db: &'a Db<B>,
    state: &'a ChannelState,
    limit: usize,
    strict: bool,
}

/// Which half of a `commit` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CommitStep {
    /// The `saveMeta` half.
    Meta,
    /// The queued history write.
    History,
}

/// One failed half of a `commit`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepFailure {
    /// Which half failed.
    pub step: CommitStep,
    /// The stable code of the cause ([`crate::Error::code`]).
    pub code: u16,
    /// The stable kind of the cause.
    pub kind: &'static str,
    /// Whether the cause is transient.
    pub retryable: bool,
    /// The cause, for people.
    pub message: String,
}

impl StepFailure {
    fn new(step: CommitStep, error: &Error) -> Self {
        StepFailure {
            step,
            code: error.code(),
            kind: error.kind(),
            retryable: error.is_transient(),
            message: error.to_string(),
        }
    }
}

/// What a `commit` did. A storage failure is reported here, never raised.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelCommit {
    /// The meta of this commit is on disk.
    pub meta_saved: bool,
    /// The queue taken by this commit is on disk (`true` when nothing was queued).
    pub history_flushed: bool,
    /// History changes queued after this commit: what failed, and anything queued meanwhile.
    pub pending: u32,
    /// Why `meta_saved` or `history_flushed` is `false`.
    pub failures: Vec<StepFailure>,
}

impl<'a, B: Backend> Channels<'a, B> {
    /// The contract over `db`, with `state` kept by the caller between calls; values are limited
    /// to `limit` bytes, drops ask for strict durability when `strict`.
    pub fn new(db: &'a Db<B>, state: &'a ChannelState, limit: usize, strict: bool) -> Self {
        Channels { db, state, limit, strict }
    }

    /// Writes every channel's queue, one history write per channel (at close, on page hide):
    /// failures are logged, and what failed stays queued. The channel lock is taken first, even
    /// with nothing queued: a channel write in flight (a `commit` holds its queue taken) ends
    /// before this returns, its failure queued again and written here, so a close that follows
    /// never releases the connection under it.
    pub async fn flush_queues(&self) {
        if self.db.check_open().is_err() {
            return;
        }
        let _lock = self.state.lock.lock().await;
        for (channel, _) in self.state.dirty() {
            if let Err(error) = self.flush_queue(&channel).await {
                log_at!(Error, "history changes of channel {channel:?} not durable: {error}");
            }
        }
    }
}

impl<B: Backend> Channels<'_, B> {
    /// Writes the meta snapshot of `channel` (one transaction; it replaces the previous one).
    pub async fn save_meta<T: Serialize + ?Sized>(&self, channel: &str, meta: &T) -> Result<()> {
        check_id("channel id", channel)?;
        self.db.check_writable()?;
        let op = rows::meta_op(channel, meta, self.limit)?;
        let _lock = self.state.lock.lock().await;
        self.db.check_writable()?;
        self.db.write(&WriteBatch::new(vec![op])).await
    }

    /// Appends `update.append` (in order, after every entry already there) and evicts
    /// `update.evict` from the history of `channel`, in one transaction, by key: no history row is
    /// read, except once per channel and session to learn what is on disk when no load did.
    /// Evicting an id also deletes its retrieval hint; appending an id already in the history moves
    /// it to the end. Independent of the journal.
    pub async fn update_history(&self, channel: &str, update: &HistoryUpdate) -> Result<()> {
        check_id("channel id", channel)?;
        update.check()?;
        self.db.check_writable()?;
        let _lock = self.state.lock.lock().await;
        self.db.check_writable()?;
        self.write_history(channel, update).await
    }

    /// Writes the retrieval hint of one message (replacing any earlier one).
    pub async fn set_retrieval_hint(&self, channel: &str, message_id: &str, hint: &[u8]) -> Result<()> {
        check_id("channel id", channel)?;
        check_id("message id", message_id)?;
        self.db.check_writable()?;
        let op = rows::hint_op(channel, message_id, hint, self.limit)?;
        let _lock = self.state.lock.lock().await;
        self.db.check_writable()?;
        self.db.write(&WriteBatch::new(vec![op])).await
    }

    /// Reads the durable state of `channel` in one readonly transaction (one key range per store):
    /// meta, history in append order, hints. All or nothing: any row that does not decode or check
    /// (a meta of a newer schema: `SchemaVersionUnsupported`) fails the load with its error.
    /// Queued, unwritten changes are not included. A channel never written loads empty.
    pub async fn load_channel<T: DeserializeOwned>(&self, channel: &str) -> Result<LoadedChannel<T>> {
        check_id("channel id", channel)?;
        self.db.check_open()?;
        let _lock = self.state.lock.lock().await;
        self.db.check_open()?;
        let mut reads = self.read_channel(CHANNEL_STORES, channel).await?.into_iter();
        let mut next = |store: &str| -> Result<Vec<crate::backend::Row>> {
            let rows = reads.next().ok_or_else(|| Error::Internal(format!("no read of {store}")))?;
            if let Some((key, error)) = rows.unreadable.into_iter().next() {
                log_at!(Warn, "channel {channel:?}: unreadable row {store} {key}");
                return Err(error);
            }
            Ok(rows.rows)
        };
        let (meta_rows, history_rows, hint_rows) =
            (next(CHANNEL_META)?, next(CHANNEL_HISTORY)?, next(RETRIEVAL_HINTS)?);
        let limit = self.limit;
        let loaded = (|| {
            let meta = match meta_rows.as_slice() {
                [] => None,
                [row] => Some(rows::decode_meta::<T>(channel, row, limit)?),
                [_, row, ..] => {
                    return Err(Error::EntryMismatch(format!(
                        "channel_meta {}: a second meta row",
                        key_to_string(&row.key)
                    )))
                }
            };
            let (index, history) = HistoryIndex::from_rows(channel, &history_rows, limit)?;
            let hints =
                hint_rows.iter().map(|row| rows::decode_hint(channel, row, limit)).collect::<Result<Vec<_>>>()?;
            Ok((index, LoadedChannel { meta, history, hints }))
        })();
        match loaded {
            Ok((index, loaded)) => {
                self.state.registry.borrow_mut().set_index(channel, index);
                Ok(loaded)
            }
            Err(error) => {
                log_at!(Error, "channel {channel:?} not loaded: {error}");
                Err(error)
            }
        }
    }

    /// Deletes the meta, history and hints of `channel` in one transaction (one key-range delete per
    /// store), and discards its queued changes. If the delete fails, nothing was deleted and the
    /// queue is kept. A channel recreated afterwards starts empty.
    pub async fn drop_channel(&self, channel: &str) -> Result<()> {
        self.call_drop(channel)?;
        self.run_drop(channel).await
    }

    /// The synchronous half of [`Channels::drop_channel`], at the call: changes queued from now on
    /// belong to the channel as recreated, also while the drop waits for a write in flight.
    pub fn call_drop(&self, channel: &str) -> Result<()> {
        check_id("channel id", channel)?;
        self.db.check_writable()?;
        self.state.registry.borrow_mut().call_drop(channel);
        Ok(())
    }

    /// The asynchronous half of [`Channels::drop_channel`], after [`Channels::call_drop`].
    pub async fn run_drop(&self, channel: &str) -> Result<()> {
        let _lock = self.state.lock.lock().await;
        let taken = self.state.registry.borrow_mut().take_channel(channel);
        if let Err(error) = self.db.check_writable() {
            self.state.registry.borrow_mut().restore_drop(channel, taken);
            return Err(error);
        }
        let ops =
            CHANNEL_STORES.iter().map(|store| WriteOp::DeleteGroup { store, group: channel.to_owned() }).collect();
        let batch = WriteBatch { ops, strict: self.strict };
        match self.db.write(&batch).await {
            Ok(()) => {
                self.state.registry.borrow_mut().settle_drop(channel, taken);
                log_at!(Info, "dropped channel {channel:?}");
                Ok(())
            }
            Err(error) => {
                self.state.registry.borrow_mut().restore_drop(channel, taken);
                log_at!(Warn, "drop of channel {channel:?} failed, nothing deleted: {error}");
                Err(error)
            }
        }
    }

    /// Queues `entry` to be appended by the next `commit` (replacing anything queued for its id).
    pub fn queue_append(&self, channel: &str, entry: HistoryEntry) -> Result<()> {
        check_id("channel id", channel)?;
        check_id("message id", &entry.id)?;
        self.db.check_writable()?;
        crate::codec::check_size(&(channel, u32::MAX, &entry), self.limit)?;
        self.state.registry.borrow_mut().queue_append(channel, entry);
        Ok(())
    }

    /// Queues `id` to be evicted by the next `commit` (replacing anything queued for it).
    pub fn queue_evict(&self, channel: &str, id: &str) -> Result<()> {
        check_id("channel id", channel)?;
        check_id("message id", id)?;
        self.db.check_writable()?;
        self.state.registry.borrow_mut().queue_evict(channel, id.to_owned());
        Ok(())
    }

    /// The queued history changes of `channel`, oldest first.
    pub fn pending(&self, channel: &str) -> Vec<(String, PendingOp)> {
        self.state.registry.borrow().pending(channel)
    }

    /// Saves `meta`, then writes the whole queue of `channel` as one history update, back to back
    /// (two transactions; one when nothing is queued). Rejects only bad input (`InvalidArgument`,
    /// `BlobTooLarge`) or a closed or read-only store, before anything is written. A storage failure
    /// is reported in the result and logged: a failed history write stays queued, under anything
    /// queued meanwhile, for the next commit (which retries it even with nothing new queued).
    pub async fn commit<T: Serialize + ?Sized>(&self, channel: &str, meta: &T) -> Result<ChannelCommit> {
        check_id("channel id", channel)?;
        self.db.check_writable()?;
        let meta_op = rows::meta_op(channel, meta, self.limit)?;
        let _lock = self.state.lock.lock().await;
        self.db.check_writable()?;
        let mut outcome = ChannelCommit::default();
        match self.db.write(&WriteBatch::new(vec![meta_op])).await {
            Ok(()) => outcome.meta_saved = true,
            Err(error) => {
                log_at!(Warn, "commit of channel {channel:?}: meta not saved ({error}); the next commit saves its own");
                outcome.failures.push(StepFailure::new(CommitStep::Meta, &error));
            }
        }
        match self.flush_queue(channel).await {
            Ok(()) => outcome.history_flushed = true,
            Err(error) => {
                log_at!(
                    Warn,
                    "commit of channel {channel:?}: history not written ({error}); kept queued for the next commit"
                );
                outcome.failures.push(StepFailure::new(CommitStep::History, &error));
            }
        }
        outcome.pending = self.state.registry.borrow().pending_len(channel) as u32;
        Ok(outcome)
    }

    /// With the channel lock held: writes the whole queue of `channel` as one history update. On
    /// failure the queue goes back under anything queued meanwhile.
    async fn flush_queue(&self, channel: &str) -> Result<()> {
        let Some(taken) = self.state.registry.borrow_mut().take_queue(channel) else {
            return Ok(());
        };
        match self.write_history(channel, &taken.update).await {
            Ok(()) => {
                self.state.registry.borrow_mut().settle_queue(channel, taken);
                Ok(())
            }
            Err(error) => {
                self.state.registry.borrow_mut().restore_queue(channel, taken);
                Err(error)
            }
        }
    }

    /// Every row of `channel` in `stores` (one key range per store, one transaction); all or
    /// nothing.
    async fn read_channel(&self, stores: &[&'static str], channel: &str) -> Result<Vec<StoreRows>> {
        self.db.read_strict(stores, Some(&[channel])).await
    }

    /// With the channel lock held: plans `update` against what is on disk (read once if unknown),
    /// writes it in one transaction, and records it once committed.
    async fn write_history(&self, channel: &str, update: &HistoryUpdate) -> Result<()> {
        if update.is_empty() {
            return Ok(());
        }
        if self.state.registry.borrow().index(channel).is_none() {
            let mut reads = self.read_channel(&[CHANNEL_HISTORY], channel).await?;
            let rows = reads.pop().ok_or_else(|| Error::Internal("no read of channel_history".into()))?;
            // A row it cannot read holds a seq and an id the index would not know: a write planned
            // without it could put a new entry over it. All or nothing, as `load_channel`.
            if let Some((key, error)) = rows.unreadable.into_iter().next() {
                log_at!(Warn, "channel {channel:?}: unreadable row {CHANNEL_HISTORY} {key}; history not written");
                return Err(error);
            }
            let (index, _) = HistoryIndex::from_rows(channel, &rows.rows, self.limit)?;
            self.state.registry.borrow_mut().set_index(channel, index);
        }
        let (ops, change) = {
            let state = self.state.registry.borrow();
            let index = state.index(channel).ok_or_else(|| Error::Internal("history index missing".into()))?;
            index.plan(channel, update, self.limit)?
        };
        let reconnects = self.db.reconnects();
        if let Err(error) = self.db.write(&WriteBatch::new(ops)).await {
            // A write that timed out, lost its connection or was retried on a new one may have
            // landed: the index no longer knows the disk, and one missing a landed row would
            // leave that row behind a later evict. The next write reads the history again.
            if self.db.may_have_landed(&error, reconnects) {
                self.state.registry.borrow_mut().forget_index(channel);
            }
            return Err(error);
        }
        self.state.registry.borrow_mut().apply(channel, change);
        Ok(())
    }
}

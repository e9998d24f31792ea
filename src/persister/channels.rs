//! The snapshot contract over the backend (rows and bookkeeping: [`crate::snapshot`]).
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

use super::Persister;
use crate::backend::{Backend, WriteBatch, WriteOp};
use crate::error::{Error, Result};
use crate::log::log_at;
use crate::snapshot::{
    self, check_id, HistoryEntry, HistoryIndex, HistoryUpdate, LoadedChannel, PendingOp, CHANNEL_HISTORY,
    CHANNEL_META, CHANNEL_STORES, RETRIEVAL_HINTS,
};

/// The snapshot contract of one persister: `persister.channels()`.
pub struct Channels<'a, B: Backend> {
    persister: &'a Persister<B>,
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
        StepFailure { step, code: error.code(), kind: error.kind(), retryable: error.is_transient(), message: error.to_string() }
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

impl<B: Backend> Persister<B> {
    /// The snapshot contract for protocol state (channels), over this persister's database.
    pub fn channels(&self) -> Channels<'_, B> {
        Channels { persister: self }
    }

    /// The channels with queued history changes, and how many each.
    pub fn queued_channels(&self) -> Vec<(String, usize)> {
        self.channel_state.borrow().dirty()
    }

    /// Writes every channel's queue, one history write per channel (at close, on page hide):
    /// failures are logged, and what failed stays queued.
    pub async fn flush_channel_queues(&self) {
        if self.closed.get() {
            return;
        }
        let dirty = self.channel_state.borrow().dirty();
        let channels = self.channels();
        for (channel, _) in dirty {
            let _lock = self.channel_lock.lock().await;
            if let Err(error) = channels.flush_queue(&channel).await {
                log_at!(Error, "history changes of channel {channel:?} not durable at close: {error}");
            }
        }
    }
}

impl<B: Backend> Channels<'_, B> {
    fn limit(&self) -> usize {
        self.persister.options.max_blob_bytes
    }

    /// Refuses when the store is closed.
    fn check_open(&self) -> Result<()> {
        if self.persister.closed.get() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Refuses a write: store closing or closed, or read-only.
    fn check_writable(&self) -> Result<()> {
        if self.persister.closing.get() || self.persister.closed.get() {
            return Err(Error::Closed);
        }
        if self.persister.options.read_only {
            return Err(Error::ReadOnlyFollower(String::from("this database")));
        }
        Ok(())
    }

    /// Writes the meta snapshot of `channel` (one transaction; it replaces the previous one).
    pub async fn save_meta<T: Serialize + ?Sized>(&self, channel: &str, meta: &T) -> Result<()> {
        check_id("channel id", channel)?;
        self.check_writable()?;
        let op = snapshot::meta_op(channel, meta, self.limit())?;
        let _lock = self.persister.channel_lock.lock().await;
        self.check_writable()?;
        self.persister.write(&WriteBatch::new(vec![op])).await
    }

    /// Appends `update.append` (in order, after every entry already there) and evicts
    /// `update.evict` from the history of `channel`, in one transaction, by key: no history row is
    /// read, except once per channel and session to learn what is on disk when no load did.
    /// Evicting an id also deletes its retrieval hint; appending an id already in the history moves
    /// it to the end. Independent of the journal.
    pub async fn update_history(&self, channel: &str, update: &HistoryUpdate) -> Result<()> {
        check_id("channel id", channel)?;
        update.check()?;
        self.check_writable()?;
        let _lock = self.persister.channel_lock.lock().await;
        self.check_writable()?;
        self.write_history(channel, update).await
    }

    /// Writes the retrieval hint of one message (replacing any earlier one).
    pub async fn set_retrieval_hint(&self, channel: &str, message_id: &str, hint: &[u8]) -> Result<()> {
        check_id("channel id", channel)?;
        check_id("message id", message_id)?;
        self.check_writable()?;
        let op = snapshot::hint_op(channel, message_id, hint, self.limit())?;
        let _lock = self.persister.channel_lock.lock().await;
        self.check_writable()?;
        self.persister.write(&WriteBatch::new(vec![op])).await
    }

    /// Reads the durable state of `channel` in one readonly transaction (one key range per store):
    /// meta, history in append order, hints. All or nothing: any row that does not decode or check
    /// (a meta of a newer schema: `SchemaVersionUnsupported`) fails the load with its error.
    /// Queued, unwritten changes are not included. A channel never written loads empty.
    pub async fn load_channel<T: DeserializeOwned>(&self, channel: &str) -> Result<LoadedChannel<T>> {
        check_id("channel id", channel)?;
        self.check_open()?;
        let _lock = self.persister.channel_lock.lock().await;
        self.check_open()?;
        let mut reads = self.read_channel(&CHANNEL_STORES, channel).await?.into_iter();
        let mut next = |store: &str| -> Result<Vec<crate::backend::Row>> {
            let rows = reads.next().ok_or_else(|| Error::Internal(format!("no read of {store}")))??;
            if let Some((key, error)) = rows.unreadable.into_iter().next() {
                log_at!(Warn, "channel {channel:?}: unreadable row {store} {key}");
                return Err(error);
            }
            Ok(rows.rows)
        };
        let (meta_rows, history_rows, hint_rows) = (next(CHANNEL_META)?, next(CHANNEL_HISTORY)?, next(RETRIEVAL_HINTS)?);
        let limit = self.limit();
        let loaded = (|| {
            let meta = match meta_rows.as_slice() {
                [] => None,
                [row] => Some(snapshot::decode_meta::<T>(channel, row, limit)?),
                [_, row, ..] => return Err(Error::EntryMismatch(format!("channel_meta {}: a second meta row", super::key_to_string(&row.key)))),
            };
            let (index, history) = HistoryIndex::from_rows(channel, &history_rows, limit)?;
            let hints = hint_rows.iter().map(|row| snapshot::decode_hint(channel, row, limit)).collect::<Result<Vec<_>>>()?;
            Ok((index, LoadedChannel { meta, history, hints }))
        })();
        match loaded {
            Ok((index, loaded)) => {
                self.persister.channel_state.borrow_mut().set_index(channel, index);
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
        check_id("channel id", channel)?;
        self.check_writable()?;
        let _lock = self.persister.channel_lock.lock().await;
        self.check_writable()?;
        let taken = self.persister.channel_state.borrow_mut().take_channel(channel);
        let ops = CHANNEL_STORES.iter().map(|store| WriteOp::DeleteGroup { store, group: channel.to_owned() }).collect();
        let batch = WriteBatch { ops, strict: self.persister.options.strict_durability };
        match self.persister.write(&batch).await {
            Ok(()) => {
                self.persister.channel_state.borrow_mut().settle_drop(channel, taken);
                log_at!(Info, "dropped channel {channel:?}");
                Ok(())
            }
            Err(error) => {
                self.persister.channel_state.borrow_mut().restore_drop(channel, taken);
                log_at!(Warn, "drop of channel {channel:?} failed, nothing deleted: {error}");
                Err(error)
            }
        }
    }

    /// Queues `entry` to be appended by the next `commit` (replacing anything queued for its id).
    pub fn queue_append(&self, channel: &str, entry: HistoryEntry) -> Result<()> {
        check_id("channel id", channel)?;
        check_id("message id", &entry.id)?;
        self.check_writable()?;
        crate::codec::check_size(&(channel, u32::MAX, &entry), self.limit())?;
        self.persister.channel_state.borrow_mut().queue_append(channel, entry);
        Ok(())
    }

    /// Queues `id` to be evicted by the next `commit` (replacing anything queued for it).
    pub fn queue_evict(&self, channel: &str, id: &str) -> Result<()> {
        check_id("channel id", channel)?;
        check_id("message id", id)?;
        self.check_writable()?;
        self.persister.channel_state.borrow_mut().queue_evict(channel, id.to_owned());
        Ok(())
    }

    /// The queued history changes of `channel`, oldest first.
    pub fn pending(&self, channel: &str) -> Vec<(String, PendingOp)> {
        self.persister.channel_state.borrow().pending(channel)
    }

    /// Saves `meta`, then writes the whole queue of `channel` as one history update, back to back
    /// (two transactions; one when nothing is queued). Rejects only bad input (`InvalidArgument`,
    /// `BlobTooLarge`) or a closed or read-only store, before anything is written. A storage failure
    /// is reported in the result and logged: a failed history write stays queued, under anything
    /// queued meanwhile, for the next commit (which retries it even with nothing new queued).
    pub async fn commit<T: Serialize + ?Sized>(&self, channel: &str, meta: &T) -> Result<ChannelCommit> {
        check_id("channel id", channel)?;
        self.check_writable()?;
        let meta_op = snapshot::meta_op(channel, meta, self.limit())?;
        let _lock = self.persister.channel_lock.lock().await;
        self.check_writable()?;
        let mut outcome = ChannelCommit::default();
        match self.persister.write(&WriteBatch::new(vec![meta_op])).await {
            Ok(()) => outcome.meta_saved = true,
            Err(error) => {
                log_at!(Warn, "commit of channel {channel:?}: meta not saved ({error}); the next commit saves its own");
                outcome.failures.push(StepFailure::new(CommitStep::Meta, &error));
            }
        }
        match self.flush_queue(channel).await {
            Ok(()) => outcome.history_flushed = true,
            Err(error) => {
                log_at!(Warn, "commit of channel {channel:?}: history not written ({error}); kept queued for the next commit");
                outcome.failures.push(StepFailure::new(CommitStep::History, &error));
            }
        }
        outcome.pending = self.persister.channel_state.borrow().pending_len(channel) as u32;
        Ok(outcome)
    }

    /// With the channel lock held: writes the whole queue of `channel` as one history update. On
    /// failure the queue goes back under anything queued meanwhile.
    async fn flush_queue(&self, channel: &str) -> Result<()> {
        let Some(taken) = self.persister.channel_state.borrow_mut().take_queue(channel) else {
            return Ok(());
        };
        match self.write_history(channel, &taken.update).await {
            Ok(()) => {
                self.persister.channel_state.borrow_mut().settle_queue(channel, taken);
                Ok(())
            }
            Err(error) => {
                self.persister.channel_state.borrow_mut().restore_queue(channel, taken);
                Err(error)
            }
        }
    }

    /// `read_group` of `channel`; if the connection was lost, reconnects once and reads again (as
    /// wallet `load` does).
    async fn read_channel(&self, stores: &[&'static str], channel: &str) -> Result<Vec<Result<crate::backend::StoreRows>>> {
        match self.persister.backend.read_group(stores, channel).await {
            Err(Error::ConnectionLost(cause)) => {
                log_at!(Warn, "connection lost ({cause}); reconnecting once");
                self.persister.reopen().await.map_err(|_| Error::ConnectionLost(cause))?;
                self.persister.backend.read_group(stores, channel).await
            }
            other => other,
        }
    }

    /// With the channel lock held: plans `update` against what is on disk (read once if unknown),
    /// writes it in one transaction, and records it once committed.
    async fn write_history(&self, channel: &str, update: &HistoryUpdate) -> Result<()> {
        if update.is_empty() {
            return Ok(());
        }
        if self.persister.channel_state.borrow().index(channel).is_none() {
            let mut reads = self.read_channel(&[CHANNEL_HISTORY], channel).await?;
            let rows = reads.pop().ok_or_else(|| Error::Internal("no read of channel_history".into()))??;
            let (index, _) = HistoryIndex::from_rows(channel, &rows.rows, self.limit())?;
            self.persister.channel_state.borrow_mut().set_index(channel, index);
        }
        let (ops, change) = {
            let state = self.persister.channel_state.borrow();
            let index = state.index(channel).ok_or_else(|| Error::Internal("history index missing".into()))?;
            index.plan(channel, update, self.limit())?
        };
        self.persister.write(&WriteBatch::new(ops)).await?;
        self.persister.channel_state.borrow_mut().apply(channel, change);
        Ok(())
    }
}

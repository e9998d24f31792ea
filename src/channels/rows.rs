//! The snapshot contract's rows: protocol state (message-reliability channels, sync checkpoints)
//! kept per channel as an atomic meta snapshot, an append-ordered history log and retrieval hints.
//!
//! Rows (every value an envelope that embeds its own key, checked on load):
//! - `channel_meta`    `[channel]`            → `(channel, meta)`
//! - `channel_history` `[channel, seq]`       → `(channel, seq, HistoryEntry)`; `seq` is the
//!   channel's append counter, so one key range reads the history in append order
//! - `retrieval_hints` `[channel, messageId]` → `(channel, messageId, hint)`
//!
//! One key range `[channel]..[channel, []]` per store covers a whole channel (load and drop).
//! This module holds rows and keys only; the operations are [`super::Channels`].

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::backend::{Row, WriteOp};
use crate::codec;
use crate::error::{Error, Result};
use crate::model::{Bytes, Key, KeyPart};

use crate::layout::{CHANNEL_HISTORY, CHANNEL_META, RETRIEVAL_HINTS};

/// The longest channel or message id, in UTF-8 bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Refuses an empty id or one longer than [`MAX_ID_BYTES`]; `what` names it in the message.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Error::InvalidArgument(format!(
            "{what} is {} bytes long; at most {MAX_ID_BYTES} are allowed",
            id.len()
        )));
    }
    Ok(())
}

/// One message of a channel's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryEntry {
    /// The message id, unique within the channel's history.
    pub id: String,
    /// The message's bytes.
    pub bytes: Bytes,
    /// Unix milliseconds, if the app keeps a time per message.
    #[serde(default)]
    pub timestamp_ms: Option<i64>,
}

/// `updateHistory`'s argument: entries to append, in order, and ids to evict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryUpdate {
    /// Entries to append after everything already there, in order.
    #[serde(default)]
    pub append: Vec<HistoryEntry>,
    /// Ids to evict (their retrieval hints go too).
    #[serde(default)]
    pub evict: Vec<String>,
}

impl HistoryUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.append.is_empty() && self.evict.is_empty()
    }

    /// Every id is valid and named once over `append` and `evict` (an update has no order
    /// between its appends and its evicts, so naming an id twice would be ambiguous).
    pub fn check(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        let ids = self.append.iter().map(|e| e.id.as_str()).chain(self.evict.iter().map(String::as_str));
        for id in ids {
            check_id("message id", id)?;
            if !seen.insert(id) {
                return Err(Error::InvalidArgument(format!(
                    "message id {id:?} appears more than once in one history update"
                )));
            }
        }
        Ok(())
    }
}

/// The retrieval hint of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetrievalHint {
    /// The message it is for.
    pub message_id: String,
    /// Where or how to retrieve the message (app bytes).
    pub hint: Bytes,
}

/// The durable state of one channel, as `loadChannel` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedChannel<T> {
    /// `None` when no meta was ever saved (or the channel was dropped).
    pub meta: Option<T>,
    /// In append order.
    pub history: Vec<HistoryEntry>,
    /// In message id order.
    pub hints: Vec<RetrievalHint>,
}

/// The key of `channel`'s meta row.
pub fn meta_key(channel: &str) -> Key {
    vec![KeyPart::Text(channel.to_owned())]
}

/// The key of the history row `seq` of `channel`.
pub fn history_key(channel: &str, seq: u32) -> Key {
    vec![KeyPart::Text(channel.to_owned()), KeyPart::Num(seq)]
}

/// The key of the retrieval hint of `message_id` in `channel`.
pub fn hint_key(channel: &str, message_id: &str) -> Key {
    vec![KeyPart::Text(channel.to_owned()), KeyPart::Text(message_id.to_owned())]
}

/// The write of a channel's meta (encoded now, refused over `limit` with `BlobTooLarge`).
pub fn meta_op<T: Serialize + ?Sized>(channel: &str, meta: &T, limit: usize) -> Result<WriteOp> {
    let value = codec::encode(&(channel, meta), limit)?;
    Ok(WriteOp::Put { store: CHANNEL_META, key: meta_key(channel), value })
}

/// The write of one retrieval hint.
pub fn hint_op(channel: &str, message_id: &str, hint: &[u8], limit: usize) -> Result<WriteOp> {
    let value = codec::encode(&(channel, message_id, serde_bytes::Bytes::new(hint)), limit)?;
    Ok(WriteOp::Put { store: RETRIEVAL_HINTS, key: hint_key(channel, message_id), value })
}

fn mismatch(store: &str, key: &Key, what: &str) -> Error {
    Error::EntryMismatch(format!("{store} {}: {what}", crate::model::key_to_string(key)))
}

/// Decodes the meta row of `channel`; its key and embedded channel must both be `channel`.
pub fn decode_meta<T: DeserializeOwned>(channel: &str, row: &Row, limit: usize) -> Result<T> {
    if row.key != meta_key(channel) {
        return Err(mismatch(CHANNEL_META, &row.key, "not the key of this channel's meta"));
    }
    let (found, meta): (String, T) = codec::decode(&row.value, limit)?;
    if found != channel {
        return Err(mismatch(CHANNEL_META, &row.key, &format!("the value belongs to channel {found:?}")));
    }
    Ok(meta)
}

/// Decodes one retrieval hint row of `channel`.
pub fn decode_hint(channel: &str, row: &Row, limit: usize) -> Result<RetrievalHint> {
    let (found, message_id, hint): (String, String, Bytes) = codec::decode(&row.value, limit)?;
    if found != channel || row.key != hint_key(channel, &message_id) {
        return Err(mismatch(RETRIEVAL_HINTS, &row.key, "the value's own key differs from its row key"));
    }
    Ok(RetrievalHint { message_id, hint })
}

/// Checks one row of a channel store as `loadChannel` reads it: the channel id is one
/// `loadChannel` accepts, the value decodes and names the channel and key it is stored under. A
/// meta's own payload is the app's type (a [`crate::channels::MetaValue`] from JS, any serde type
/// from Rust): its envelope and channel are checked, not its type. (Ids stored twice in one
/// channel's history are caught by [`HistoryIndex::from_rows`] over the whole channel.)
pub fn check_row(store: &str, row: &Row, limit: usize) -> Result<()> {
    let channel = match row.key.first() {
        Some(KeyPart::Text(channel)) => channel,
        _ => return Err(mismatch(store, &row.key, "the key does not start with a channel id")),
    };
    check_id("channel id", channel).map_err(|e| mismatch(store, &row.key, &e.to_string()))?;
    match store {
        CHANNEL_META => {
            let found: String = codec::decode_prefix(&row.value, limit)?;
            if row.key != meta_key(channel) || found != *channel {
                return Err(mismatch(CHANNEL_META, &row.key, &format!("the value belongs to channel {found:?}")));
            }
            Ok(())
        }
        CHANNEL_HISTORY => HistoryIndex::from_rows(channel, std::slice::from_ref(row), limit).map(drop),
        RETRIEVAL_HINTS => decode_hint(channel, row, limit).map(drop),
        other => Err(Error::Internal(format!("{other} is not a channel store"))),
    }
}

/// What is on disk of one channel's history, as this instance (its only writer) knows it: the
/// seq of every id, and the next seq to hand out (greater than every seq on disk).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryIndex {
    seqs: HashMap<String, u32>,
    /// A `u64` so that running past `u32::MAX` is detected, not wrapped.
    next_seq: u64,
}

/// How an index changes once a planned write committed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexChange {
    removed: Vec<String>,
    added: Vec<(String, u32)>,
    next_seq: u64,
}

impl HistoryIndex {
    /// Decodes the history rows of `channel` (in key order, as one key-range read returns them)
    /// into the index and the entries in append order. Any bad row fails the whole call.
    pub fn from_rows(channel: &str, rows: &[Row], limit: usize) -> Result<(HistoryIndex, Vec<HistoryEntry>)> {
        let mut index = HistoryIndex::default();
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let (found, seq, entry): (String, u32, HistoryEntry) = codec::decode(&row.value, limit)?;
            if found != channel || row.key != history_key(channel, seq) {
                return Err(mismatch(CHANNEL_HISTORY, &row.key, "the value's own key differs from its row key"));
            }
            if index.seqs.insert(entry.id.clone(), seq).is_some() {
                return Err(mismatch(CHANNEL_HISTORY, &row.key, &format!("message id {:?} is stored twice", entry.id)));
            }
            index.next_seq = index.next_seq.max(u64::from(seq) + 1);
            entries.push(entry);
        }
        Ok((index, entries))
    }

    /// The number of entries on disk.
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    /// Whether the channel has no history on disk.
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// The write of `update` over this index, by key only (no row is read): an evicted id's row
    /// and its retrieval hint are deleted; every appended entry is put at the next seq, and an
    /// appended id already on disk moves there (its old row is deleted). Everything is encoded
    /// now; nothing changes until [`HistoryIndex::apply`] is called after the write committed.
    pub fn plan(&self, channel: &str, update: &HistoryUpdate, limit: usize) -> Result<(Vec<WriteOp>, IndexChange)> {
        let mut ops = Vec::with_capacity(update.evict.len() * 2 + update.append.len());
        let mut change = IndexChange::default();
        for id in &update.evict {
            if let Some(seq) = self.seqs.get(id) {
                ops.push(WriteOp::Delete { store: CHANNEL_HISTORY, key: history_key(channel, *seq) });
                change.removed.push(id.clone());
            }
            ops.push(WriteOp::Delete { store: RETRIEVAL_HINTS, key: hint_key(channel, id) });
        }
        let mut next = self.next_seq;
        for entry in &update.append {
            if let Some(seq) = self.seqs.get(&entry.id) {
                ops.push(WriteOp::Delete { store: CHANNEL_HISTORY, key: history_key(channel, *seq) });
                change.removed.push(entry.id.clone());
            }
            let seq = u32::try_from(next).map_err(|_| {
                Error::InvalidArgument(format!(
                    "channel {channel:?} has used all {} history positions; drop it to start again",
                    u32::MAX
                ))
            })?;
            let value = codec::encode(&(channel, seq, entry), limit)?;
            ops.push(WriteOp::Put { store: CHANNEL_HISTORY, key: history_key(channel, seq), value });
            change.added.push((entry.id.clone(), seq));
            next += 1;
        }
        change.next_seq = next;
        Ok((ops, change))
    }

    /// Records a planned write that committed.
    pub fn apply(&mut self, change: IndexChange) {
        for id in change.removed {
            self.seqs.remove(&id);
        }
        self.seqs.extend(change.added);
        self.next_seq = change.next_seq;
    }
}

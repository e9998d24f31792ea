//! Channels: the snapshot contract for protocol state that must survive restarts. Per channel an
//! atomic meta snapshot ([`meta`]), an append/evict history with a latest-wins pending queue
//! ([`journal`], [`ChannelRegistry`]) and retrieval hints, stored as [`rows`] and operated by
//! [`Channels`].

pub mod journal;
pub mod meta;
mod registry;
pub mod rows;
mod store;

pub use journal::{Journal, PendingOp};
pub use meta::{MetaValue, Node};
pub use registry::{ChannelRegistry, TakenQueue};
pub use rows::{
    check_id, decode_hint, decode_meta, hint_key, hint_op, history_key, meta_key, meta_op, HistoryEntry, HistoryIndex,
    HistoryUpdate, IndexChange, LoadedChannel, RetrievalHint, MAX_ID_BYTES,
};
pub use store::{ChannelCommit, ChannelState, Channels, CommitStep, StepFailure};

//! The wallet data model: ids, entry keys, per-area values and the mergeable changeset.

pub mod changeset;
pub mod entries;
pub mod ids;
pub mod introspect;
pub mod keys;

pub use crate::layout::AREA_STORES;
pub use changeset::{entry_key, ClientStartState, EntryMap, Merge, Resume, RowSink, WalletChangeSet};
pub use entries::*;
pub use ids::{Hash32, WalletId};
pub use keys::{key_to_string, ContactKind, EntryKey, Key, KeyPart, OutPoint};

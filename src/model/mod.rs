//! The wallet data model: ids, entry keys, per-area values and the mergeable changeset.

pub mod changeset;
pub mod entries;
pub mod ids;
pub mod introspect;
pub mod keys;

pub use changeset::{entry_key, ClientStartState, EntryMap, Merge, WalletChangeSet, AREA_STORES};
pub use entries::*;
pub use ids::{Hash32, WalletId};
pub use keys::{ContactKind, EntryKey, Key, KeyPart, OutPoint};

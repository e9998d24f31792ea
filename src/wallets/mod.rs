//! Wallets: the buffer of staged changesets, their rows, the persister that flushes and loads
//! them, two-phase registration, and what each operation reports.

pub mod buffer;
pub mod integrity;
mod persister;
mod registration;
mod reports;
pub mod rows;

pub use persister::{Claim, DeleteClaim, FlushMode, LoadSink, Options, Persister};
pub use reports::{
    CloseReport, CommitObserver, CommitReport, DeleteReport, LoadReport, NotWritten, OpenReport, SkippedRow,
    WalletFailure,
};

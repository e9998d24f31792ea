//! Backups: the versioned, checksummed file format ([`mod@format`]) and export/import over the
//! database core ([`export`], [`import`]), and sealed backups of encrypted stores ([`sealed`]).

pub mod format;
mod operations;
pub mod sealed;

pub use format::{check_row, crc32, decode, encode, Backup, FORMAT_VERSION, MAGIC};
pub use operations::{export, import, ImportReport, Progress};

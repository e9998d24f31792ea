//! Backups: the versioned, checksummed file format ([`mod@format`]) and export/import over the
//! database core ([`export`], [`import`]), and sealed backups of encrypted stores ([`sealed`]).

pub mod format;
mod operations;
pub mod sealed;

pub use format::{check_row, crc32, decode, encode, Backup, FORMAT_VERSION, MAGIC};
pub use operations::{export, import, ImportReport, Progress};

/// Decodes and checks every byte and row of a backup (see [`decode`]), reporting progress as the
/// `"validate"` phase; nothing is opened or written.
pub fn validate(bytes: &[u8], progress: Progress<'_>) -> crate::error::Result<Backup> {
    decode(bytes, &mut |done, total| progress("validate", done, total))
}

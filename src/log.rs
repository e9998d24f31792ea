//! One logger with levels. Off below `warn` by default; switchable at runtime.

use std::sync::atomic::{AtomicU8, Ordering};

/// Log levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Something failed and nothing will retry it.
    Error = 1,
    /// Something failed or looks wrong but was handled (the default level).
    Warn = 2,
    /// Lifecycle events: open, migrations, reconnects, lifecycle flushes.
    Info = 3,
    /// Per-operation detail.
    Debug = 4,
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

/// Messages above `level` are dropped.
pub fn set_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// The current level.
pub fn level() -> Level {
    match MAX_LEVEL.load(Ordering::Relaxed) {
        1 => Level::Error,
        2 => Level::Warn,
        3 => Level::Info,
        _ => Level::Debug,
    }
}

impl Level {
    /// Parses `"error" | "warn" | "info" | "debug"`.
    pub fn parse(name: &str) -> Option<Level> {
        match name {
            "error" => Some(Level::Error),
            "warn" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }
}

/// Whether messages at `level` are written.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Writes one line prefixed with `[wallet-persist]` to the console (stderr on the host).
pub fn write(level: Level, message: &str) {
    if !enabled(level) {
        return;
    }
    let line = format!("[wallet-persist] {message}");
    #[cfg(target_arch = "wasm32")]
    {
        let value = wasm_bindgen::JsValue::from_str(&line);
        match level {
            Level::Error => web_sys::console::error_1(&value),
            Level::Warn => web_sys::console::warn_1(&value),
            Level::Info => web_sys::console::info_1(&value),
            Level::Debug => web_sys::console::debug_1(&value),
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{level:?} {line}");
}

macro_rules! log_at {
    ($level:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::write($crate::log::Level::$level, &format!($($arg)*));
        }
    };
}
pub(crate) use log_at;

//! One logger with levels. Off below `warn` by default; switchable at runtime. Lines go to the
//! console (stderr on the host), or to the app's logger once one is set ([`set_sink`]): level,
//! message and structured fields (`walletIds`, `code`, `store`, ...).

use std::cell::RefCell;
use std::rc::Rc;
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

impl Level {
    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// The value of one structured field of a log line.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (an id, a store name, a message).
    Text(String),
    /// A number (a code, a count, a version).
    Number(f64),
    /// A list of strings (wallet ids).
    List(Vec<String>),
}

macro_rules! value_from {
    ($($from:ty => |$v:ident| $to:expr;)*) => {
        $(impl From<$from> for Value {
            fn from($v: $from) -> Value {
                $to
            }
        })*
    };
}
value_from! {
    String => |v| Value::Text(v);
    &str => |v| Value::Text(v.to_owned());
    u16 => |v| Value::Number(v.into());
    u32 => |v| Value::Number(v.into());
    usize => |v| Value::Number(v as f64);
    Vec<String> => |v| Value::List(v);
}

/// One structured field: its name and value.
pub type Field = (&'static str, Value);

/// Where log lines go instead of the console: the app's logger.
pub type Sink = Rc<dyn Fn(Level, &str, &[Field])>;

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Routes every enabled line to `sink` (`None`: back to the console).
pub fn set_sink(sink: Option<Sink>) {
    SINK.with(|current| *current.borrow_mut() = sink);
}

/// Writes one line: to the sink if one is set, else to the console prefixed with
/// `[wallet-persist]` (stderr on the host).
pub fn write(level: Level, message: &str) {
    write_fields(level, message, &[]);
}

/// [`write()`] with structured fields.
pub fn write_fields(level: Level, message: &str, fields: &[Field]) {
    if !enabled(level) {
        return;
    }
    // Cloned out, so a sink that logs (or swaps the sink) does not find the cell borrowed.
    if let Some(sink) = SINK.with(|sink| sink.borrow().clone()) {
        sink(level, message, fields);
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

/// `log_at!(Warn, "format", args)`, or with structured fields:
/// `log_at!(Warn, { "walletIds" => ids, "code" => code }, "format", args)`.
macro_rules! log_at {
    ($level:ident, { $($key:literal => $value:expr),* $(,)? }, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::write_fields(
                $crate::log::Level::$level,
                &format!($($arg)*),
                &[$(($key, $crate::log::Value::from($value))),*],
            );
        }
    };
    ($level:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::write($crate::log::Level::$level, &format!($($arg)*));
        }
    };
}
pub(crate) use log_at;

/// Bench builds on wasm: the size of wasm linear memory at named points of a commit, read (and
/// cleared) by the bench package's `memoryMarks()`. Linear memory only grows, so each mark is the
/// peak up to that point.
#[cfg(all(feature = "bench", target_arch = "wasm32"))]
pub mod memory_marks {
    use std::cell::RefCell;

    thread_local! {
        static MARKS: RefCell<Vec<(&'static str, usize)>> = const { RefCell::new(Vec::new()) };
    }

    /// Records the current size of linear memory under `label`.
    pub fn mark(label: &'static str) {
        let bytes = core::arch::wasm32::memory_size(0) * 65_536;
        MARKS.with(|marks| marks.borrow_mut().push((label, bytes)));
    }

    /// Every mark since the last call, in order.
    pub fn take() -> Vec<(&'static str, usize)> {
        MARKS.with(|marks| std::mem::take(&mut *marks.borrow_mut()))
    }
}

/// `memory_mark!("label")`: a [`memory_marks`] mark in bench builds on wasm; nothing elsewhere.
macro_rules! memory_mark {
    ($label:expr) => {
        #[cfg(all(feature = "bench", target_arch = "wasm32"))]
        $crate::log::memory_marks::mark($label);
    };
}
pub(crate) use memory_mark;

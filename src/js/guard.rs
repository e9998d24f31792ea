//! The instance's health. A panic aborts (`unreachable`) in the middle of a call and leaves the
//! instance's state half-updated; so does a JS exception that unwound through wasm (it leaks the
//! shadow stack, see [`super::convert`]). Either way every later call rejects `internal` (99)
//! with a message that says so, instead of running on, or trapping in, a broken instance.

use std::cell::Cell;

use crate::error::Error;

thread_local! {
    /// Why the instance stopped, once it did.
    static BROKEN: Cell<Option<&'static str>> = const { Cell::new(None) };
    /// The shadow-stack position of the first entry (nothing of ours below it on the stack).
    static STACK_TOP: Cell<usize> = const { Cell::new(0) };
}

/// How far below its first position the shadow stack may be at an entry point: calls nested
/// through JS callbacks go a few frames deeper; leaked frames (about 4 KiB per unwound call)
/// add up past this long before the 1 MiB stack runs out.
const STACK_SLACK: usize = 256 * 1024;

/// Installs the panic hook: it marks the instance broken, then logs the panic to the console.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        BROKEN.with(|b| b.set(Some("a panic")));
        console_error_panic_hook::hook(info);
    }));
    STACK_TOP.with(|top| top.set(stack_position()));
}

#[inline(never)]
fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// `Ok` while the instance is healthy; else the `internal` error every call rejects with.
pub fn check() -> Result<(), Error> {
    let top = STACK_TOP.with(Cell::get);
    if top != 0 && top.saturating_sub(stack_position()) > STACK_SLACK {
        BROKEN.with(|b| b.set(Some("a JS exception that unwound through wasm (leaked shadow stack)")));
    }
    match BROKEN.with(Cell::get) {
        None => Ok(()),
        Some(why) => Err(Error::Internal(format!(
            "wallet-persist stopped after an internal failure ({why}) earlier in this page: every call \
             now rejects; changes not yet committed are lost. Reload the page and please report this"
        ))),
    }
}

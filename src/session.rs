//! The multi-tab session policy of one open store, in plain Rust over a small [`Environment`]:
//! one store per database name in a realm (page or worker), one writer per database across
//! realms (a Web Lock), what `multiTab` does when another instance is the writer, and the flush
//! when the page is hidden. The JS binding supplies the browser environment; host tests a fake.

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::log::log_at;
use crate::wallets::Persister;

/// What `open` does when another instance (another tab, a worker) is the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiTab {
    /// Reject with `already_open` (16).
    Refuse,
    /// Wait for the writer to close, up to the open timeout (then `timeout`, 18).
    Wait,
    /// Open as a read-only follower.
    Follow,
}

impl MultiTab {
    /// Parses the JS spelling (`undefined` is `Refuse`).
    pub fn parse(value: Option<&str>) -> Result<MultiTab> {
        match value {
            None | Some("refuse") => Ok(MultiTab::Refuse),
            Some("wait") => Ok(MultiTab::Wait),
            Some("follow") => Ok(MultiTab::Follow),
            Some(other) => Err(Error::InvalidArgument(format!(
                "multiTab must be \"refuse\", \"wait\" or \"follow\", got {other:?}"
            ))),
        }
    }
}

/// What asking for the writer lock gave.
#[derive(Debug)]
pub enum Lock<H> {
    /// We hold it until `H` is released.
    Held(H),
    /// Another instance holds it (only when not waiting).
    Taken,
    /// Locks do not exist or are denied in this context.
    Unsupported,
}

/// The browser services a session needs.
#[allow(async_fn_in_trait)]
pub trait Environment {
    /// A held writer lock; dropping or releasing it is the environment's business.
    type Held;
    /// Asks for the lock `name`: waits up to `timeout_ms` when `wait` (then `Timeout`), else
    /// answers at once.
    async fn acquire_lock(&self, name: &str, wait: bool, timeout_ms: u32) -> Result<Lock<Self::Held>>;
}

/// The role an open store plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The one instance that writes this database.
    Writer,
    /// A read-only follower: loads work, writes are refused.
    Follower,
}

thread_local! {
    /// Database names with an open store in this realm.
    static OPEN: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

/// A database name claimed in this realm, released on drop.
#[derive(Debug)]
pub struct RealmClaim(String);

impl RealmClaim {
    /// Claims `name` in this realm; `AlreadyOpen` if a store of that name is open here.
    pub fn claim(name: &str) -> Result<RealmClaim> {
        if OPEN.with(|open| open.borrow_mut().insert(name.to_owned())) {
            Ok(RealmClaim(name.to_owned()))
        } else {
            Err(Error::AlreadyOpen(format!(
                "database {name:?} is already open in this page (or worker): a WalletStore of this name was \
                 opened here and is not closed yet. Use that store, or await its close() before opening it \
                 again; for React StrictMode and hot reload, keep one open promise per name (README: \
                 \"One store per page\")"
            )))
        }
    }
}

impl Drop for RealmClaim {
    fn drop(&mut self) {
        OPEN.with(|open| open.borrow_mut().remove(&self.0));
    }
}

/// The Web Lock (and BroadcastChannel) name of database `name`.
pub fn lock_name(name: &str) -> String {
    format!("wallet-persist:{name}")
}

/// What a store holds for its session: its realm claim and, as the writer, its lock.
#[derive(Debug)]
pub struct Established<H> {
    /// Writer or follower.
    pub role: Role,
    /// The realm claim (released when this is dropped).
    pub claim: RealmClaim,
    /// The writer lock, when one was taken.
    pub lock: Option<H>,
}

/// Claims `name` in this realm, then the writer lock, and decides the role by `multi_tab`.
/// Without Web Locks the store is the writer (and says so in the log).
pub async fn establish<E: Environment>(
    env: &E,
    name: &str,
    multi_tab: MultiTab,
    timeout_ms: u32,
) -> Result<Established<E::Held>> {
    let claim = RealmClaim::claim(name)?;
    let lock = env.acquire_lock(&lock_name(name), multi_tab == MultiTab::Wait, timeout_ms).await?;
    let (role, lock) = match lock {
        Lock::Held(held) => (Role::Writer, Some(held)),
        Lock::Unsupported => {
            log_at!(Warn, "Web Locks are not available: {name} cannot be protected against a second writer");
            (Role::Writer, None)
        }
        Lock::Taken => match multi_tab {
            MultiTab::Follow => (Role::Follower, None),
            MultiTab::Refuse | MultiTab::Wait => {
                return Err(Error::AlreadyOpen(format!("another tab or worker is the writer of database {name}")))
            }
        },
    };
    Ok(Established { role, claim, lock })
}

/// The page is being hidden or unloaded (`reason`): writes what is staged and what channel
/// history is queued, as the browser may end the page next. Failures are logged: the changes
/// stay staged (a transient failure) for the next flush. Both writes run even with nothing staged
/// or queued now: a commit in flight holds its changes taken, and if it fails they come back
/// after it; each write waits for the one in flight and then writes what it put back.
pub async fn flush_on_hide<B: Backend>(persister: &Persister<B>, reason: &str) {
    if persister.is_closed() || persister.options().read_only {
        return;
    }
    if !persister.staged().is_empty() || !persister.queued_channels().is_empty() {
        log_at!(Info, "{reason}: flushing staged changes and queued channel history");
    }
    if let Err(error) = persister.commit().await {
        log_at!(Error, "{reason} flush failed: {error}");
    }
    persister.channels().flush_queues().await;
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::backend::MemoryBackend;
    use crate::channels::HistoryEntry;
    use crate::testing::{block_on, sample_changeset, wallet_id};
    use crate::wallets::Options;

    /// Locks by name; `held` names are taken by "another tab".
    #[derive(Default)]
    struct FakeEnv {
        taken: RefCell<BTreeSet<String>>,
        unsupported: bool,
        asked: RefCell<Vec<(String, bool, u32)>>,
    }

    impl Environment for FakeEnv {
        type Held = String;
        async fn acquire_lock(&self, name: &str, wait: bool, timeout_ms: u32) -> Result<Lock<String>> {
            self.asked.borrow_mut().push((name.to_owned(), wait, timeout_ms));
            if self.unsupported {
                return Ok(Lock::Unsupported);
            }
            if self.taken.borrow().contains(name) {
                return if wait { Err(Error::Timeout(format!("waited {timeout_ms} ms"))) } else { Ok(Lock::Taken) };
            }
            self.taken.borrow_mut().insert(name.to_owned());
            Ok(Lock::Held(name.to_owned()))
        }
    }

    #[test]
    fn first_instance_is_the_writer_and_holds_the_lock() {
        let env = FakeEnv::default();
        let session = block_on(establish(&env, "s-first", MultiTab::Refuse, 50)).unwrap();
        assert_eq!(session.role, Role::Writer);
        assert_eq!(session.lock.as_deref(), Some("wallet-persist:s-first"));
        assert_eq!(*env.asked.borrow(), vec![("wallet-persist:s-first".to_owned(), false, 50)]);
    }

    #[test]
    fn second_instance_is_refused_followed_or_times_out_by_multi_tab() {
        let env = FakeEnv::default();
        env.taken.borrow_mut().insert(lock_name("s-second"));
        let refused = block_on(establish(&env, "s-second", MultiTab::Refuse, 50)).unwrap_err();
        assert_eq!(refused.code(), 16);
        let follower = block_on(establish(&env, "s-second", MultiTab::Follow, 50)).unwrap();
        assert_eq!((follower.role, follower.lock), (Role::Follower, None));
        drop(follower.claim);
        let waited = block_on(establish(&env, "s-second", MultiTab::Wait, 70)).unwrap_err();
        assert_eq!(waited.code(), 18);
        assert_eq!(env.asked.borrow().last(), Some(&("wallet-persist:s-second".to_owned(), true, 70)));
    }

    #[test]
    fn without_locks_the_store_writes_unprotected() {
        let env = FakeEnv { unsupported: true, ..FakeEnv::default() };
        let session = block_on(establish(&env, "s-nolocks", MultiTab::Refuse, 50)).unwrap();
        assert_eq!((session.role, session.lock), (Role::Writer, None));
    }

    #[test]
    fn one_store_per_name_per_realm_until_the_claim_is_dropped() {
        let env = FakeEnv { unsupported: true, ..FakeEnv::default() };
        let first = block_on(establish(&env, "s-realm", MultiTab::Follow, 50)).unwrap();
        let again = block_on(establish(&env, "s-realm", MultiTab::Follow, 50)).unwrap_err();
        assert_eq!(again.code(), 16);
        assert!(env.asked.borrow().len() == 1, "the lock is not asked for once the realm refused");
        drop(first);
        assert!(block_on(establish(&env, "s-realm", MultiTab::Follow, 50)).is_ok());
    }

    #[test]
    fn multi_tab_parses_only_its_three_spellings() {
        assert_eq!(MultiTab::parse(None).unwrap(), MultiTab::Refuse);
        assert_eq!(MultiTab::parse(Some("follow")).unwrap(), MultiTab::Follow);
        assert_eq!(MultiTab::parse(Some("Wait")).unwrap_err().code(), 1);
    }

    #[test]
    fn hiding_the_page_writes_staged_changes_and_queued_history() {
        block_on(async {
            let backend = MemoryBackend::new();
            let persister = Persister::open(backend.clone(), Options::default()).await.unwrap();
            persister.stage(wallet_id(1), sample_changeset(1)).unwrap();
            let entry = HistoryEntry { id: "m1".into(), bytes: vec![1].into(), timestamp_ms: None };
            persister.channels().queue_append("c", entry.clone()).unwrap();
            flush_on_hide(&persister, "pagehide").await;
            assert!(persister.staged().is_empty());
            assert!(persister.queued_channels().is_empty());
            drop(persister);
            let reopened = Persister::open(backend, Options::default()).await.unwrap();
            let (state, _) = reopened.load().await.unwrap();
            assert_eq!(state.wallets[&wallet_id(1)], sample_changeset(1));
            let channel = reopened.channels().load_channel::<()>("c").await.unwrap();
            assert_eq!(channel.history, vec![entry]);
        });
    }

    #[test]
    fn hiding_a_closed_store_writes_nothing() {
        block_on(async {
            let backend = MemoryBackend::new();
            let persister = Persister::open(backend.clone(), Options::default()).await.unwrap();
            persister.close().await.unwrap();
            flush_on_hide(&persister, "visibilitychange").await;
            assert!(persister.is_closed());
        });
    }
}

//! The wasm-bindgen surface: converts and checks JS input, calls the persister, converts results.
//! Every method returns a Promise; every failure rejects with a `WalletPersistError`.

#[cfg(feature = "bench")]
mod bench;
mod channels;
mod convert;
mod encryption;
mod env;
mod error;
mod guard;
mod observe;
mod tape;
mod tasks;
mod types;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Object, Promise, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::backend::indexeddb::IndexedDbBackend;
use crate::backend::Backend as _;
use crate::error::{Error, Result};
use crate::log::{self, log_at, Level};
use crate::model::{WalletChangeSet, WalletId};
use crate::session::{self, MultiTab, Role};
use crate::wallets::{FlushMode, Options, Persister};

use observe::call_all;

pub use channels::Channels;
use convert::{Rejection, Value};
pub use error::ErrorCode;
pub use observe::set_logger;

#[cfg(feature = "fault-injection")]
type StoreBackend = crate::backend::FaultyBackend<crate::backend::EncryptedBackend<IndexedDbBackend>>;
#[cfg(not(feature = "fault-injection"))]
type StoreBackend = crate::backend::EncryptedBackend<IndexedDbBackend>;

/// Installs the panic hook once the module is instantiated (a private start function: not exported).
#[wasm_bindgen(start, private)]
fn start() {
    guard::install();
}

/// Sets the console log level: `"error" | "warn" | "info" | "debug"` (default `"warn"`). Throws a
/// `WalletPersistError` (1) for anything else.
#[wasm_bindgen(js_name = setLogLevel)]
pub fn set_log_level(#[wasm_bindgen(unchecked_param_type = "LogLevel")] level: JsValue) -> Result<(), JsValue> {
    guard::check().map_err(|e| error::to_js(&e))?;
    // Never formats `level` itself: Debug of a caller's object would run its traps.
    let name = level.as_string();
    let level = name.as_deref().and_then(Level::parse).ok_or_else(|| {
        let got = name.map_or_else(|| "a value that is not a string".to_string(), |n| format!("{n:?}"));
        error::to_js(&Error::InvalidArgument(format!(
            "unknown log level {got}: use \"error\", \"warn\", \"info\" or \"debug\""
        )))
    })?;
    log::set_level(level);
    Ok(())
}

/// Test hook: panics inside wasm, to check that every later call then rejects `internal` (99).
#[cfg(feature = "fault-injection")]
#[wasm_bindgen(js_name = panicForTest)]
pub fn panic_for_test() {
    panic!("panicForTest: a deliberate panic (fault-injection builds only)");
}

fn serializer() -> serde_wasm_bindgen::Serializer {
    serde_wasm_bindgen::Serializer::new()
        .serialize_large_number_types_as_bigints(true)
        .serialize_maps_as_objects(true)
        .serialize_missing_as_null(true)
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue> {
    value.serialize(&serializer()).map_err(|e| Error::Internal(format!("result conversion: {e}")))
}

/// `load`'s wallets as they are handed over: an object with one own property per wallet
/// (`"__proto__"` would be one too), in wallet id order, each wallet's changeset built from one
/// tape (see [`tape`]): its areas are objects of own properties, its values what [`to_js`] would
/// build. A wallet at a time, so the tape holds one wallet's values, and nothing of a wallet is
/// kept in wasm once it is built.
struct JsWallets {
    out: Object,
    writer: tape::TapeWriter,
}

impl JsWallets {
    fn new() -> Self {
        JsWallets { out: Object::new(), writer: tape::TapeWriter::new() }
    }
}

impl crate::wallets::LoadSink for JsWallets {
    fn restart(&mut self) {
        self.out = Object::new();
    }

    fn wallets(&mut self, wallets: std::collections::BTreeMap<WalletId, WalletChangeSet>) -> Result<()> {
        for (wallet, changes) in &wallets {
            convert::set_own(&self.out, &wallet.to_hex(), &self.writer.build(changes)?);
        }
        Ok(())
    }
}

/// [`JsWallets`] of `wallets`, all at once.
#[cfg(feature = "bench")]
fn wallets_to_js(wallets: std::collections::BTreeMap<WalletId, WalletChangeSet>) -> Result<JsValue> {
    let mut built = JsWallets::new();
    crate::wallets::LoadSink::wallets(&mut built, wallets)?;
    Ok(built.out.into())
}

fn wallet_id(value: &JsValue) -> Result<WalletId> {
    wallet_id_text(value.as_string().as_deref())
}

/// The wallet id a walletId argument spells (`None`: not a string).
fn wallet_id_text(text: Option<&str>) -> Result<WalletId> {
    let hex =
        text.ok_or_else(|| Error::InvalidArgument("walletId must be a string of 64 lowercase hex characters".into()))?;
    WalletId::from_hex(hex)
}

/// Runs `work` as a Promise; its error rejects as a `WalletPersistError`. A broken instance
/// (see [`guard`]) rejects `internal` (99) without running it.
fn promise<F: Future<Output = Result<JsValue>> + 'static>(work: F) -> Promise {
    if let Err(error) = guard::check() {
        return Promise::reject(&error::to_js(&error));
    }
    settle_boxed(Box::pin(async move { work.await.map_err(|e| error::to_js(&e)) }))
}

/// The one `future_to_promise` instance: every entry point's work arrives boxed, so the code that
/// moves a future into a Promise and settles it exists once in the .wasm, not once per export.
fn settle_boxed(work: Pin<Box<dyn Future<Output = std::result::Result<JsValue, JsValue>>>>) -> Promise {
    wasm_bindgen_futures::future_to_promise(work)
}

/// A promise rejected now with `rejection` (a refused argument, or a broken instance).
fn rejected(rejection: impl Into<Rejection>) -> Promise {
    Promise::reject(&error::rejection_to_js(&rejection.into()))
}

/// The first line of every entry point that returns a Promise: `accept!(guard)` returns a
/// rejected promise when the instance is broken; `accept!(input)` unwraps a converted argument
/// or returns its rejection. Nothing is thrown: every refusal is a rejected promise.
macro_rules! accept {
    (guard) => {
        if let Err(error) = $crate::js::guard::check() {
            return $crate::js::rejected(error);
        }
    };
    ($input:expr) => {
        match $input {
            Ok(value) => value,
            Err(rejection) => return $crate::js::rejected(rejection),
        }
    };
}
pub(crate) use accept;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OpenOptions {
    name: String,
    #[serde(default)]
    flush_mode: Option<String>,
    #[serde(default)]
    max_blob_bytes: Option<u32>,
    #[serde(default)]
    multi_tab: Option<String>,
    #[serde(default)]
    open_timeout_ms: Option<u32>,
    #[serde(default)]
    timeout_ms: Option<u32>,
    #[serde(default)]
    auto_flush: Option<bool>,
    #[serde(default)]
    strict_durability: Option<bool>,
    #[serde(default)]
    encryption: Option<encryption::EncryptionOptions>,
}

impl OpenOptions {
    /// The options of the connection `importBackup` opens.
    fn named(name: String) -> OpenOptions {
        OpenOptions { name, ..OpenOptions::default() }
    }
}

struct Parsed {
    name: String,
    options: Options,
    multi_tab: MultiTab,
    open_timeout_ms: u32,
    auto_flush: bool,
    encryption: Option<crate::crypto::unlock::Request>,
}

fn parse_options(value: &JsValue) -> Result<Parsed, Rejection> {
    let raw: OpenOptions = convert::parse(value, "open options")?;
    Ok(check_options(raw)?)
}

fn check_options(raw: OpenOptions) -> Result<Parsed> {
    if raw.name.is_empty() {
        return Err(Error::InvalidArgument("name must not be empty".into()));
    }
    let flush_mode = match raw.flush_mode.as_deref() {
        None | Some("manual") => FlushMode::Manual,
        Some("immediate") => FlushMode::Immediate,
        Some(other) => {
            return Err(Error::InvalidArgument(format!("flushMode must be \"manual\" or \"immediate\", got {other:?}")))
        }
    };
    let multi_tab = MultiTab::parse(raw.multi_tab.as_deref())?;
    let open_timeout_ms = raw.open_timeout_ms.unwrap_or(crate::backend::indexeddb::DEFAULT_OPEN_TIMEOUT_MS);
    if open_timeout_ms == 0 {
        return Err(Error::InvalidArgument("openTimeoutMs must be at least 1".into()));
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(crate::db::DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 {
        return Err(Error::InvalidArgument("timeoutMs must be at least 1".into()));
    }
    let deadline = crate::db::Deadline {
        ms: timeout_ms,
        sleep: Rc::new(|ms| crate::tasks::Runtime::sleep(&env::BrowserRuntime, ms)),
    };
    let mut options = Options {
        flush_mode,
        strict_durability: raw.strict_durability.unwrap_or(false),
        deadline: Some(deadline),
        ..Options::default()
    };
    if let Some(limit) = raw.max_blob_bytes {
        if limit == 0 || limit as usize > crate::codec::MAX_BLOB_BYTES {
            return Err(Error::InvalidArgument(format!("maxBlobBytes must be 1..={}", crate::codec::MAX_BLOB_BYTES)));
        }
        options.max_blob_bytes = limit as usize;
    }
    let encryption = raw.encryption.map(encryption::EncryptionOptions::into_request).transpose()?;
    let auto_flush = raw.auto_flush.unwrap_or(true);
    Ok(Parsed { name: raw.name, options, multi_tab, open_timeout_ms, auto_flush, encryption })
}

/// The `walletId` and changeset arguments of `store` and friends, read once through
/// [`convert`] (so later mutation of the caller's object cannot change what is staged) and
/// checked: a plain object of known areas, unknown fields refused at every level.
fn parse_changes(wallet: &JsValue, changes: &JsValue) -> Result<(WalletId, WalletChangeSet), Rejection> {
    convert::read_store_args(wallet, changes, "changes", wallet_id_text, checked_changes)
}

/// The changeset on `tape`, or why it is refused. In order: a bigint out of every range (the
/// first), not an object, a `null` singleton, anything else (the first refused value).
fn checked_changes(tape: convert::TapeView<'_>) -> Result<WalletChangeSet, Rejection> {
    const SINGLETONS: [&str; 2] = ["wallet", "syncState"];
    let refused = |r| Rejection::from_refusal(r, "changes");
    let misshapen = |message: String| -> Result<WalletChangeSet, Rejection> {
        tape.check_bigints().map_err(refused)?;
        Err(Error::InvalidArgument(message).into())
    };
    let null = |singleton: &str| {
        format!("{singleton} cannot be null: a wallet's {singleton} is removed only with the whole wallet")
    };
    if !tape.is_object() {
        return misshapen("changes must be an object".to_string());
    }
    match tape.deserialize_noting_nulls::<WalletChangeSet>() {
        // Every property was read, so the null ones are all known.
        Ok((changes, nulls)) => match SINGLETONS.into_iter().find(|key| nulls.contains(key)) {
            None => Ok(changes),
            Some(singleton) => misshapen(null(singleton)),
        },
        Err(refusal) => match tape.null_property(&SINGLETONS) {
            Some(singleton) => misshapen(null(singleton)),
            None => Err(refused(refusal)),
        },
    }
}

/// `load`'s options, read once through [`convert`]: `undefined`, `null` or `{}` for every
/// wallet; `{walletIds}` for those wallets only (an array of distinct wallet ids). Anything else
/// is refused.
fn load_options(options: &JsValue) -> Result<Option<std::collections::BTreeSet<WalletId>>, Rejection> {
    let invalid = |m: String| Rejection::from(Error::InvalidArgument(m));
    let mut value = convert::read(options).map_err(|r| Rejection::from_refusal(r, "options"))?;
    if matches!(value, Value::Undefined | Value::Null) {
        return Ok(None);
    }
    if !matches!(value, Value::Map(_)) {
        return Err(invalid("options must be an object".into()));
    }
    let ids = match value.take("walletIds") {
        None | Some(Value::Undefined) => None,
        Some(Value::List(items)) => Some(items),
        Some(_) => return Err(invalid("options.walletIds must be an array of wallet ids".into())),
    };
    if let Value::Map(rest) = &value {
        if let Some((key, _)) = rest.first() {
            return Err(invalid(format!("options: unknown field {key:?}")));
        }
    }
    let Some(items) = ids else { return Ok(None) };
    let mut wallets = std::collections::BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let id = match item {
            Value::Text(hex) => WalletId::from_hex(hex),
            _ => Err(Error::InvalidArgument("not a string".into())),
        }
        .map_err(|_| invalid(format!("options.walletIds[{i}] must be a wallet id: 64 lowercase hex characters")))?;
        if !wallets.insert(id) {
            return Err(invalid(format!("options.walletIds[{i}]: wallet {id} is listed twice")));
        }
    }
    Ok(Some(wallets))
}

/// `options` of `exportBackup` / `importBackup`, read once through [`convert`].
#[derive(Default)]
struct BackupOptions {
    on_progress: Option<Function>,
    /// Import only: replace a database that holds rows.
    overwrite: bool,
    /// Seal (export) or open (import) the backup with this passphrase.
    backup_passphrase: Option<String>,
    /// Import only: the secret of an encrypted destination.
    encryption: Option<encryption::EncryptionOptions>,
}

/// `{onProgress?, backupPassphrase?}`, plus `overwrite?` and `encryption?` where `import`;
/// anything else is refused.
fn backup_options(options: &JsValue, import: bool) -> Result<BackupOptions, Rejection> {
    let refused = |r| Rejection::from_refusal(r, "options");
    let invalid = |m: &str| Rejection::from(Error::InvalidArgument(m.into()));
    let mut value = convert::read(options).map_err(refused)?;
    if matches!(value, Value::Undefined | Value::Null) {
        return Ok(BackupOptions::default());
    }
    if !matches!(value, Value::Map(_)) {
        return Err(invalid("options must be an object"));
    }
    let on_progress = match value.take("onProgress") {
        None | Some(Value::Undefined) => None,
        Some(Value::Function(f)) => Some(f),
        Some(_) => return Err(invalid("options.onProgress must be a function")),
    };
    let backup_passphrase = match value.take("backupPassphrase") {
        None | Some(Value::Undefined) => None,
        Some(Value::Text(p)) if !p.is_empty() => Some(p),
        Some(_) => return Err(invalid("options.backupPassphrase must be a non-empty string")),
    };
    let mut parsed = BackupOptions { on_progress, backup_passphrase, ..BackupOptions::default() };
    if import {
        parsed.overwrite = match value.take("overwrite") {
            None | Some(Value::Undefined) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => return Err(invalid("options.overwrite must be a boolean")),
        };
        parsed.encryption = match value.take("encryption") {
            None | Some(Value::Undefined) => None,
            Some(secret) => {
                Some(convert::from_value(&secret).map_err(|r| Rejection::from_refusal(r, "options.encryption"))?)
            }
        };
    }
    if let Value::Map(rest) = &value {
        if let Some((key, _)) = rest.first() {
            return Err(invalid(&format!("options: unknown field {key:?}")));
        }
    }
    Ok(parsed)
}

/// `onProgress` as a progress callback: `onProgress({phase, done, total})`.
fn progress_callback(callback: Option<Function>) -> impl FnMut(&'static str, u64, u64) {
    move |phase: &'static str, done: u64, total: u64| {
        if let Some(callback) = &callback {
            let event = Object::new();
            let _ = Reflect::set(&event, &"phase".into(), &phase.into());
            let _ = Reflect::set(&event, &"done".into(), &(done as f64).into());
            let _ = Reflect::set(&event, &"total".into(), &(total as f64).into());
            if let Err(error) = callback.call1(&JsValue::UNDEFINED, &event) {
                log_at!(Warn, "onProgress threw: {}", env::describe_failure(&error));
            }
        }
    }
}

/// A listener argument: a function, else a thrown `WalletPersistError` (1).
fn listener_fn(listener: JsValue) -> Result<Function, JsValue> {
    guard::check().map_err(|e| error::to_js(&e))?;
    if !listener.is_function() {
        return Err(error::to_js(&Error::InvalidArgument("listener must be a function".into())));
    }
    Ok(listener.unchecked_into())
}

/// Adds `listener` and returns the function that removes it again.
fn subscribe(listeners: &Rc<RefCell<Vec<Function>>>, listener: Function) -> JsValue {
    listeners.borrow_mut().push(listener.clone());
    let listeners = Rc::downgrade(listeners);
    Closure::once_into_js(move || {
        if let Some(listeners) = listeners.upgrade() {
            listeners.borrow_mut().retain(|l| !Object::is(l, &listener));
        }
    })
}

/// A wallet-persist database: stage wallet changes, flush them atomically, load them back.
#[wasm_bindgen]
pub struct WalletStore {
    inner: Rc<Persister<StoreBackend>>,
    name: String,
    writer: bool,
    change_listeners: Rc<RefCell<Vec<Function>>>,
    version_listeners: Rc<RefCell<Vec<Function>>>,
    registry: Rc<crate::tasks::TaskRegistry>,
    /// The lock, channel and listeners this store holds; `None` once closed.
    session: Rc<RefCell<Option<env::Session>>>,
}

impl Drop for WalletStore {
    fn drop(&mut self) {
        self.registry.abandon();
    }
}

impl WalletStore {
    async fn connect(parsed: Parsed) -> Result<WalletStore> {
        let Parsed { name, mut options, multi_tab, open_timeout_ms, auto_flush, encryption } = parsed;
        let established = session::establish(&env::BrowserEnv, &name, multi_tab, open_timeout_ms).await?;
        let writer = established.role == Role::Writer;
        let mut session = env::Session::new(established);
        options.read_only = !writer;

        let backend = IndexedDbBackend::open_with(&name, open_timeout_ms).await?;
        let version_listeners: Rc<RefCell<Vec<Function>>> = Rc::default();
        let listeners = Rc::downgrade(&version_listeners);
        backend.on_version_change(Box::new(move |old, new| {
            if let Some(listeners) = listeners.upgrade() {
                let event = Object::new();
                let _ = Reflect::set(&event, &"oldVersion".into(), &old.into());
                let _ = Reflect::set(&event, &"newVersion".into(), &if new < 0.0 { JsValue::NULL } else { new.into() });
                call_all(&listeners, &event);
            }
        }));
        let backend = crate::backend::EncryptedBackend::new(backend);
        // Before the schema gate: a wrong or missing key is refused with nothing written.
        if let Err(error) =
            crate::crypto::unlock::unlock(&backend, encryption.as_ref(), writer, options.deadline.as_ref()).await
        {
            backend.close();
            return Err(error);
        }
        drop(encryption);
        #[cfg(feature = "fault-injection")]
        let backend = crate::backend::FaultyBackend::new(backend);
        let inner = Rc::new(Persister::open(backend, options).await?);

        // onChange: this store's own commits and deletes ("local"), and other instances' ("remote").
        let change_listeners: Rc<RefCell<Vec<Function>>> = Rc::default();
        let listeners = Rc::downgrade(&change_listeners);
        let on_message = Closure::new(move |data: JsValue| {
            if let Some(listeners) = listeners.upgrade() {
                let ids = Reflect::get(&data, &"walletIds".into()).unwrap_or(JsValue::UNDEFINED);
                call_all(&listeners, &observe::change_event(&ids, observe::Origin::Remote));
            }
        });
        let channel = env::open_channel(&session::lock_name(&name), &on_message);
        let post_to = (!channel.is_null()).then(|| channel.clone());
        let listeners = Rc::downgrade(&change_listeners);
        inner.on_commit(Box::new(move |wallets| {
            let ids: Array = wallets.iter().map(|w| JsValue::from_str(&w.to_hex())).collect();
            if let Some(listeners) = listeners.upgrade() {
                call_all(&listeners, &observe::change_event(&ids, observe::Origin::Local));
            }
            if let Some(channel) = &post_to {
                env::post_change(channel, ids);
            }
        }));
        if !channel.is_null() {
            session.channel = Some(channel);
            session.on_message = Some(on_message);
        }
        if auto_flush && writer {
            let persister: Weak<Persister<StoreBackend>> = Rc::downgrade(&inner);
            let on_hide = Closure::new(move |reason: String| {
                let Some(persister) = persister.upgrade() else { return };
                wasm_bindgen_futures::spawn_local(async move { session::flush_on_hide(&persister, &reason).await });
            });
            let unwatch = env::watch_lifecycle(&on_hide);
            if !unwatch.is_null() {
                session.unwatch = Some(unwatch.unchecked_into());
                session.on_hide = Some(on_hide);
            }
        }
        let registry = Rc::new(crate::tasks::TaskRegistry::new(Rc::new(env::BrowserRuntime)));
        Ok(WalletStore {
            inner,
            name,
            writer,
            change_listeners,
            version_listeners,
            registry,
            session: Rc::new(RefCell::new(Some(session))),
        })
    }

    /// `open` for Rust callers (tests): the same checks, without crossing through JS.
    #[doc(hidden)]
    pub async fn open_from_rust(options: JsValue) -> Result<WalletStore, JsValue> {
        let parsed = parse_options(&options).map_err(|r| error::rejection_to_js(&r))?;
        Self::connect(parsed).await.map_err(|e| error::to_js(&e))
    }
}

#[wasm_bindgen]
impl WalletStore {
    /// Opens (creating if needed) the database `options.name`.
    #[wasm_bindgen(unchecked_return_type = "Promise<WalletStore>")]
    pub fn open(#[wasm_bindgen(unchecked_param_type = "OpenOptions")] options: JsValue) -> Promise {
        accept!(guard);
        let parsed = accept!(parse_options(&options));
        promise(async move { Self::connect(parsed).await.map(JsValue::from) })
    }

    /// The database name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// `false` for a read-only follower (`multiTab: "follow"` while another instance is the writer).
    #[wasm_bindgen(getter, js_name = isWriter)]
    pub fn is_writer(&self) -> bool {
        self.writer
    }

    /// The snapshot contract for protocol state (message-reliability channels, sync checkpoints)
    /// in this store's database: `saveMeta`, `updateHistory`, `loadChannel`, `dropChannel`,
    /// `setRetrievalHint`, and the journal `queueAppend` / `queueEvict` / `commit`. Every access
    /// returns a new handle on the same state.
    #[wasm_bindgen(getter)]
    pub fn channels(&self) -> Channels {
        Channels::new(self.inner.clone())
    }

    /// Calls `listener({walletIds, origin})` whenever wallets of this database were committed,
    /// deleted or registered: by this store (`origin: "local"`, before the call's promise settles)
    /// or by another tab or worker (`"remote"`). Returns a function that unsubscribes; a listener
    /// may unsubscribe while it runs.
    #[wasm_bindgen(js_name = onChange, unchecked_return_type = "() => void")]
    pub fn on_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: ChangeEvent) => void")] listener: JsValue,
    ) -> Result<JsValue, JsValue> {
        Ok(subscribe(&self.change_listeners, listener_fn(listener)?))
    }

    /// Calls `listener({oldVersion, newVersion})` when another connection upgrades (or deletes,
    /// `newVersion: null`) the database. The store has then closed its connection: writes reject
    /// `connection_lost` (7, retryable) with everything kept staged until `reopen()`.
    #[wasm_bindgen(js_name = onVersionChange, unchecked_return_type = "() => void")]
    pub fn on_version_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: VersionChangeEvent) => void")] listener: JsValue,
    ) -> Result<JsValue, JsValue> {
        Ok(subscribe(&self.version_listeners, listener_fn(listener)?))
    }

    /// Connects to the database again (after a `versionchange`), re-running the schema gate;
    /// staged changes are kept and land with the next flush.
    #[wasm_bindgen(unchecked_return_type = "Promise<OpenReport>")]
    pub fn reopen(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.reopen().await?;
            to_js(&inner.open_report())
        })
    }

    /// Asks the browser to make this origin's storage persistent (`navigator.storage.persist()`),
    /// so it is not evicted under storage pressure. Where the browser has no `persist()`
    /// (WebKitGTK, some Safari builds) it resolves `{persisted: false}`: nothing was granted.
    #[wasm_bindgen(unchecked_return_type = "Promise<PersistResult>")]
    pub fn persist(&self) -> Promise {
        promise(async { JsFuture::from(env::persist_storage()).await.map_err(crate::backend::indexeddb::js_error) })
    }

    /// The origin's storage usage and quota in bytes (`navigator.storage.estimate()`).
    #[wasm_bindgen(unchecked_return_type = "Promise<StorageEstimate>")]
    pub fn estimate(&self) -> Promise {
        promise(async { JsFuture::from(env::estimate_storage()).await.map_err(crate::backend::indexeddb::js_error) })
    }

    /// What `open` found and did: the schema version, and the version it migrated from if any.
    #[wasm_bindgen(getter, js_name = openReport, unchecked_return_type = "OpenReport")]
    pub fn open_report(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.open_report()).map_err(|e| error::to_js(&e))
    }

    /// Stages `changes` for `walletId` (merged over what is staged, newer wins). Invalid input
    /// rejects with `invalid_argument` and stages nothing. Resolves `null` in manual mode; in
    /// immediate mode flushes that wallet and resolves its `CommitReport`.
    #[wasm_bindgen(unchecked_return_type = "Promise<CommitReport | null>")]
    pub fn store(
        &self,
        #[wasm_bindgen(js_name = walletId, unchecked_param_type = "string")] wallet: JsValue,
        #[wasm_bindgen(unchecked_param_type = "WalletChangeSet")] changes: JsValue,
    ) -> Promise {
        accept!(guard);
        // Converted now, so that later mutation of the caller's object cannot change what is staged.
        let (id, changes) = accept!(parse_changes(&wallet, &changes));
        accept!(self.inner.stage(id, changes));
        // In manual mode nothing waits: settled now, without a future per call.
        if self.inner.options().flush_mode == FlushMode::Manual {
            return Promise::resolve(&JsValue::NULL);
        }
        let inner = self.inner.clone();
        promise(async move {
            match inner.flush_if_immediate(id).await? {
                Some(report) => to_js(&report),
                None => Ok(JsValue::NULL),
            }
        })
    }

    /// Writes every staged change in one transaction. Rejects with `flush_retryable` (4, changes
    /// staged again) or the fatal cause's code (changes of `walletIds` dropped).
    #[wasm_bindgen(unchecked_return_type = "Promise<CommitReport>")]
    pub fn flush(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move { to_js(&inner.flush().await?) })
    }

    /// Writes every staged change and resolves a per-wallet `CommitReport`.
    #[wasm_bindgen(unchecked_return_type = "Promise<CommitReport>")]
    pub fn commit(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move { to_js(&inner.commit().await?) })
    }

    /// Reads every wallet's durable state and a `LoadReport` of what was loaded and skipped; with
    /// `{walletIds}`, only those wallets (one key range per store and wallet), the ones that
    /// loaded nothing named in `report.notFound`. Invalid options reject `invalid_argument` (1).
    #[wasm_bindgen(unchecked_return_type = "Promise<LoadResult>")]
    pub fn load(&self, #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: JsValue) -> Promise {
        accept!(guard);
        let only = accept!(load_options(&options));
        let inner = self.inner.clone();
        promise(async move {
            let mut wallets = JsWallets::new();
            let report = inner.load_into(only.as_ref(), &mut wallets).await?;
            let result = Object::new();
            Reflect::set(&result, &"wallets".into(), &wallets.out)
                .map_err(|_| Error::Internal("set wallets".into()))?;
            Reflect::set(&result, &"report".into(), &to_js(&report)?)
                .map_err(|_| Error::Internal("set report".into()))?;
            Ok(result.into())
        })
    }

    /// Every wallet's record (the wallets `load()` returns), in wallet id order, read from the
    /// wallet-record store alone; records that fail their checks are skipped and reported.
    #[wasm_bindgen(js_name = listWallets, unchecked_return_type = "Promise<WalletList>")]
    pub fn list_wallets(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let (records, skipped) = inner.list_wallets().await?;
            let result = Object::new();
            Reflect::set(&result, &"wallets".into(), &to_js(&records)?)
                .map_err(|_| Error::Internal("set wallets".into()))?;
            Reflect::set(&result, &"skipped".into(), &to_js(&skipped)?)
                .map_err(|_| Error::Internal("set skipped".into()))?;
            Ok(result.into())
        })
    }

    /// Two-phase registration: refuses an existing wallet (`wallet_already_exists`, 3), stages
    /// `changes` (which must include `wallet`) durably under `pending`, awaits `init()`, then
    /// promotes pending → live in one transaction. If `init` rejects or throws, or a step fails,
    /// nothing of the wallet remains (changes staged for it meanwhile included) and the promise
    /// rejects with the cause — `init`'s own error as thrown. A retry with the same id can succeed.
    #[wasm_bindgen(js_name = registerWallet, unchecked_return_type = "Promise<void>")]
    pub fn register_wallet(
        &self,
        #[wasm_bindgen(js_name = walletId, unchecked_param_type = "string")] wallet: JsValue,
        #[wasm_bindgen(unchecked_param_type = "WalletChangeSet")] changes: JsValue,
        #[wasm_bindgen(unchecked_param_type = "() => Promise<void> | void")] init: JsValue,
    ) -> Promise {
        accept!(guard);
        let (wallet, changes) = accept!(parse_changes(&wallet, &changes));
        if !init.is_function() {
            return rejected(Error::InvalidArgument("init must be a function".into()));
        }
        let init: Function = init.unchecked_into();
        let inner = self.inner.clone();
        settle_boxed(Box::pin(async move {
            let run_init = async move {
                let returned = init.call0(&JsValue::UNDEFINED)?;
                JsFuture::from(convert::settle(&returned)?).await.map(|_| ())
            };
            match inner.register_wallet(wallet, changes, run_init).await {
                Ok(Ok(())) => Ok(JsValue::UNDEFINED),
                Ok(Err(init_error)) => Err(init_error),
                Err(error) => Err(error::to_js(&error)),
            }
        }))
    }

    /// Phase one of a registration by hand: stages `changes` under `pending` (see `registerWallet`).
    #[wasm_bindgen(js_name = storePending, unchecked_return_type = "Promise<void>")]
    pub fn store_pending(
        &self,
        #[wasm_bindgen(js_name = walletId, unchecked_param_type = "string")] wallet: JsValue,
        #[wasm_bindgen(unchecked_param_type = "WalletChangeSet")] changes: JsValue,
    ) -> Promise {
        accept!(guard);
        let (wallet, changes) = accept!(parse_changes(&wallet, &changes));
        let inner = self.inner.clone();
        promise(async move {
            inner.store_pending(wallet, changes).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Phase two: moves the pending changes live in one transaction; rejects
    /// `pending_registration_missing` (17) when nothing is pending, `wallet_already_exists` (3)
    /// while `registerWallet` runs for the wallet.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn promote(
        &self,
        #[wasm_bindgen(js_name = walletId, unchecked_param_type = "string")] wallet: JsValue,
    ) -> Promise {
        let wallet = wallet_id(&wallet);
        let inner = self.inner.clone();
        promise(async move {
            inner.promote(wallet?).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Deletes the pending registration of `walletId`, if any.
    #[wasm_bindgen(js_name = discardPending, unchecked_return_type = "Promise<void>")]
    pub fn discard_pending(
        &self,
        #[wasm_bindgen(js_name = walletId, unchecked_param_type = "string")] wallet: JsValue,
    ) -> Promise {
        let wallet = wallet_id(&wallet);
        let inner = self.inner.clone();
        promise(async move {
            inner.discard_pending(wallet?).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Every wallet and channel row as a versioned, checksummed backup (staged changes are not
    /// included: flush first). `onProgress({phase, done, total})` fires at least every 1,000 rows.
    #[wasm_bindgen(js_name = exportBackup, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn export_backup(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "BackupOptions")] options: JsValue,
    ) -> Promise {
        accept!(guard);
        let options = accept!(backup_options(&options, false));
        let inner = self.inner.clone();
        promise(async move {
            let mut report = progress_callback(options.on_progress);
            let bytes = inner.export_backup(js_sys::Date::now() as u64, &mut report).await?;
            let bytes = encryption::seal_backup(&inner, bytes, options.backup_passphrase).await?;
            Ok(js_sys::Uint8Array::from(&bytes[..]).into())
        })
    }

    /// Validates all of `bytes` (magic, format and schema version, checksum, every row) before it
    /// touches the database `name`, then replaces its contents in one transaction. Rejects
    /// `backup_invalid` (14) naming the first problem, `schema_version_unsupported` (9) for a
    /// newer backup, `backup_destination_not_empty` (15) unless `overwrite: true`.
    #[wasm_bindgen(js_name = importBackup, unchecked_return_type = "Promise<ImportReport>")]
    pub fn import_backup(
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ImportOptions")] options: JsValue,
    ) -> Promise {
        accept!(guard);
        let name = match convert::read(&name) {
            Ok(Value::Text(name)) => name,
            Ok(_) => return rejected(Error::InvalidArgument("name must be a string".into())),
            Err(refusal) => return rejected(Rejection::from_refusal(refusal, "name")),
        };
        let bytes = match convert::read(&bytes) {
            Ok(Value::Bytes(bytes)) => bytes,
            Ok(_) => return rejected(Error::InvalidArgument("bytes must be a Uint8Array".into())),
            Err(refusal) => return rejected(Rejection::from_refusal(refusal, "bytes")),
        };
        let options = accept!(backup_options(&options, true));
        let open = OpenOptions { encryption: options.encryption, ..OpenOptions::named(name) };
        let parsed = accept!(check_options(open));
        let (overwrite, passphrase) = (options.overwrite, options.backup_passphrase);
        promise(async move {
            let mut progress = progress_callback(options.on_progress);
            // Every row is checked before the database is opened: a refused backup creates
            // nothing. A backup sealed with its store's key opens with `encryption`'s secret.
            let secret = parsed.encryption.as_ref().map(|request| &request.secret);
            let plain = encryption::open_backup(secret, bytes, passphrase)?;
            let backup = crate::backup::validate(&plain, &mut progress)?;
            let store = Self::connect(parsed).await?;
            let imported = store.inner.import_validated(backup, overwrite, &mut progress).await;
            store.inner.close().await?;
            store.session.borrow_mut().take();
            to_js(&imported?)
        })
    }

    /// Deletes every row of `walletId` in one transaction and discards its staged changes. From
    /// this call until the promise settles, `store` for that wallet rejects with `wallet_not_found`
    /// (2) and stages nothing; if the delete fails, nothing was deleted and the staged changes are
    /// kept. Deleting an unknown wallet resolves.
    #[wasm_bindgen(js_name = deleteWallet, unchecked_return_type = "Promise<DeleteReport>")]
    pub fn delete_wallet(
        &self,
        #[wasm_bindgen(js_name = walletId, unchecked_param_type = "string")] wallet: JsValue,
    ) -> Promise {
        accept!(guard);
        // Claimed now, so a `store` called right after this returns is already refused.
        let claim = wallet_id(&wallet).and_then(|id| self.inner.begin_delete(id));
        let inner = self.inner.clone();
        let registry = self.registry.clone();
        promise(async move {
            let claim = claim?;
            // Running coordinators are stopped for the delete and restarted after it; one that
            // does not stop in time refuses the delete (shutdown_incomplete, 19), deleting nothing.
            to_js(&registry.while_quiesced(tasks::DEFAULT_TIMEOUT_MS, inner.finish_delete(claim)).await?)
        })
    }

    /// The wallets with staged, not yet durable changes, and their field counts.
    #[wasm_bindgen(unchecked_return_type = "Promise<StagedWallet[]>")]
    pub fn staged(&self) -> Promise {
        accept!(guard);
        if self.inner.is_closed() {
            return promise(async { Err(Error::Closed) });
        }
        let list: Array = self
            .inner
            .staged()
            .into_iter()
            .map(|(id, fields)| {
                let entry = Object::new();
                let _ = Reflect::set(&entry, &"walletId".into(), &id.to_hex().into());
                let _ = Reflect::set(&entry, &"fields".into(), &(fields as f64).into());
                JsValue::from(entry)
            })
            .collect();
        let list: JsValue = list.into();
        Promise::resolve(&list)
    }

    /// The background coordinators of this store (`store.tasks.start({key, weight, intervalMs, pass})`).
    #[wasm_bindgen(getter)]
    pub fn tasks(&self) -> tasks::Tasks {
        tasks::Tasks::new(self.registry.clone())
    }

    /// Shuts the coordinators down (lightest first, each pass's signal aborted, waiting up to
    /// `timeoutMs` for each to drain), flushes what is staged as the last step, then closes the
    /// database. Resolves `ShutdownReport {clean, workers, flush}`; afterwards no pass runs and
    /// every other call rejects `closed` (20). If the final flush fails transiently, the promise
    /// rejects and the store stays open with its changes staged (coordinators stay stopped).
    #[wasm_bindgen(unchecked_return_type = "Promise<ShutdownReport>")]
    pub fn close(&self, #[wasm_bindgen(unchecked_optional_param_type = "CloseOptions")] options: JsValue) -> Promise {
        accept!(guard);
        let timeout = accept!(tasks::timeout_ms(&options));
        let inner = self.inner.clone();
        let registry = self.registry.clone();
        let session = self.session.clone();
        promise(async move {
            let flushed = RefCell::new(None);
            let final_step = async {
                let outcome = inner.close().await;
                let result = outcome.as_ref().map(|_| ()).map_err(Clone::clone);
                *flushed.borrow_mut() = Some(outcome);
                result
            };
            let report = registry.shutdown(timeout, "persister", final_step).await;
            let closed =
                flushed.into_inner().unwrap_or_else(|| Err(Error::Internal("the final flush did not run".into())))?;
            session.borrow_mut().take();
            let result = Object::new();
            let clean = report.clean && closed.is_complete();
            let _ = Reflect::set(&result, &"clean".into(), &clean.into());
            let _ = Reflect::set(&result, &"workers".into(), &to_js(&report.workers)?);
            let _ = Reflect::set(&result, &"flush".into(), &to_js(&closed.flush)?);
            let _ = Reflect::set(&result, &"notWritten".into(), &to_js(&closed.not_written)?);
            let _ = Reflect::set(&result, &"abortedRegistrations".into(), &to_js(&closed.aborted_registrations)?);
            Ok(result.into())
        })
    }

    /// Test hook: the next `count` calls of `op` (`"write"` | `"read"` | `"scan"`) fail with error `kind`.
    #[cfg(feature = "fault-injection")]
    #[wasm_bindgen(js_name = failNext, unchecked_return_type = "Promise<void>")]
    pub fn fail_next(
        &self,
        #[wasm_bindgen(unchecked_param_type = "InjectableOp")] op: String,
        count: u32,
        #[wasm_bindgen(unchecked_param_type = "InjectableErrorKind")] kind: String,
    ) -> Promise {
        let armed = crate::backend::Op::parse(&op)
            .and_then(|op| injected(&kind).map(|e| self.inner.backend().fail_next(op, count, e)));
        promise(async move { armed.map(|()| JsValue::UNDEFINED) })
    }

    /// Test hook: the next `count` bulk reads of area store `store` fail for that store only (as
    /// when one of its values cannot be read), so `load` reads it row by row.
    #[cfg(feature = "fault-injection")]
    #[wasm_bindgen(js_name = failStoreRead, unchecked_return_type = "Promise<void>")]
    pub fn fail_store_read(
        &self,
        #[wasm_bindgen(unchecked_param_type = "AreaStore")] store: String,
        count: u32,
        #[wasm_bindgen(unchecked_param_type = "InjectableErrorKind")] kind: String,
    ) -> Promise {
        let armed = crate::model::AREA_STORES
            .iter()
            .find(|s| **s == store)
            .ok_or_else(|| Error::InvalidArgument(format!("{store:?} is not an area store")))
            .and_then(|store| injected(&kind).map(|e| self.inner.backend().fail_store_read(store, count, e)));
        promise(async move { armed.map(|()| JsValue::UNDEFINED) })
    }

    /// Test hook: the next `count` writes whose transaction touches object store `store` fail with
    /// error `kind` (e.g. `"channel_history"`: a channel commit's history write, not its meta).
    #[cfg(feature = "fault-injection")]
    #[wasm_bindgen(js_name = failStoreWrite, unchecked_return_type = "Promise<void>")]
    pub fn fail_store_write(
        &self,
        store: String,
        count: u32,
        #[wasm_bindgen(unchecked_param_type = "InjectableErrorKind")] kind: String,
    ) -> Promise {
        let armed = crate::layout::all_stores()
            .find(|s| **s == store)
            .ok_or_else(|| Error::InvalidArgument(format!("{store:?} is not an object store")))
            .and_then(|store| injected(&kind).map(|e| self.inner.backend().fail_store_write(store, count, e)));
        promise(async move { armed.map(|()| JsValue::UNDEFINED) })
    }

    /// Test hook: how many backend calls this store made so far, per operation.
    #[cfg(feature = "fault-injection")]
    #[wasm_bindgen(js_name = backendCalls, unchecked_return_type = "Promise<{ write: number; read: number; scan: number }>")]
    pub fn backend_calls(&self) -> Promise {
        use crate::backend::Op;
        let backend = self.inner.backend();
        let calls = Object::new();
        for (name, op) in [("write", Op::Write), ("read", Op::Read), ("scan", Op::Scan)] {
            let _ = Reflect::set(&calls, &name.into(), &backend.calls(op).into());
        }
        Promise::resolve(&JsValue::from(calls))
    }

    /// Test hook: the next `count` writes touching `walletId` fail with error `kind`.
    #[cfg(feature = "fault-injection")]
    #[wasm_bindgen(js_name = failWallet, unchecked_return_type = "Promise<void>")]
    pub fn fail_wallet(
        &self,
        #[wasm_bindgen(js_name = walletId, unchecked_param_type = "string")] wallet: JsValue,
        count: u32,
        #[wasm_bindgen(unchecked_param_type = "InjectableErrorKind")] kind: String,
    ) -> Promise {
        let armed =
            wallet_id(&wallet).and_then(|id| injected(&kind).map(|e| self.inner.backend().fail_wallet(id, count, e)));
        promise(async move { armed.map(|()| JsValue::UNDEFINED) })
    }
}

#[cfg(feature = "fault-injection")]
fn injected(kind: &str) -> Result<Error> {
    let message = || "injected fault".to_string();
    Ok(match kind {
        "quota_exceeded" => Error::QuotaExceeded(message()),
        "connection_lost" => Error::ConnectionLost(message()),
        "transaction_aborted" => Error::TransactionAborted(message()),
        "timeout" => Error::Timeout(message()),
        "blob_decode" => Error::BlobDecode(message()),
        "internal" => Error::Internal(message()),
        other => return Err(Error::InvalidArgument(format!("cannot inject error kind {other:?}"))),
    })
}

//! `store.channels`: the snapshot contract for protocol state, a thin surface over
//! [`crate::channels::Channels`]. A JS meta is a [`MetaValue`]; everything else crosses with serde.

use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::convert::{self, Rejection, Value};
use super::{accept, promise, rejected, to_js, StoreBackend};
#[cfg(doc)]
use crate::channels::meta::MAX_DEPTH;
use crate::channels::{HistoryEntry, HistoryUpdate, LoadedChannel, MetaValue, Node, PendingOp};
use crate::error::{Error, Result};
use crate::model::Bytes;
use crate::wallets::Persister;

/// The snapshot contract of one store (`store.channels`): per channel an atomic meta snapshot, an
/// append-ordered history and retrieval hints, plus a journal of pending history changes.
#[wasm_bindgen]
pub struct Channels {
    inner: Rc<Persister<StoreBackend>>,
}

impl Channels {
    pub(super) fn new(inner: Rc<Persister<StoreBackend>>) -> Channels {
        Channels { inner }
    }
}

/// A promise settled now with `outcome` (rejected `internal` on a broken instance).
fn settled(outcome: std::result::Result<JsValue, Rejection>) -> Promise {
    accept!(guard);
    match outcome {
        Ok(value) => Promise::resolve(&value),
        Err(rejection) => rejected(rejection),
    }
}

/// A string argument (well-formed: a lone surrogate is refused, never replaced).
fn string(value: &JsValue, what: &str) -> std::result::Result<String, Rejection> {
    match convert::read(value) {
        Ok(Value::Text(text)) => Ok(text),
        Ok(_) => Err(Error::InvalidArgument(format!("{what} must be a string")).into()),
        Err(refusal) => Err(Rejection::from_refusal(refusal, what)),
    }
}

/// An argument read through [`convert`] and deserialized (unknown fields refused).
fn parse<T: serde::de::DeserializeOwned>(value: &JsValue, what: &str) -> std::result::Result<T, Rejection> {
    convert::parse(value, what)
}

/// Converts a JS meta into a [`MetaValue`]: `null`, booleans, numbers, bigints within int64,
/// strings, `Uint8Array`s, arrays and plain objects, nested at most [`MAX_DEPTH`] deep. The
/// value itself must not be `null`. The error names the path of the first value refused.
fn meta_from_js(value: &JsValue) -> std::result::Result<MetaValue, Rejection> {
    let value = convert::read(value).map_err(|r| Rejection::from_refusal(r, "meta"))?;
    if matches!(value, Value::Null | Value::Undefined) {
        return Err(Error::InvalidArgument("meta must not be null or undefined".into()).into());
    }
    let mut nodes = Vec::new();
    push_nodes(&value, &mut nodes).map_err(|(path, why)| Error::InvalidArgument(format!("meta{path}: {why}")))?;
    Ok(MetaValue::from_nodes(nodes).map_err(|why| Error::Internal(format!("meta conversion: {why}")))?)
}

/// `(path below this value, why)` of a value that cannot be stored.
type Refusal = (String, String);

fn push_nodes(value: &Value, out: &mut Vec<Node>) -> std::result::Result<(), Refusal> {
    let refuse = |kind: &str| {
        Err((
            String::new(),
            format!(
                "{kind} cannot be stored; use null, boolean, number, bigint, string, Uint8Array, array or plain object"
            ),
        ))
    };
    match value {
        Value::Null => out.push(Node::Null),
        Value::Bool(b) => out.push(Node::Bool(*b)),
        Value::Number(n) => out.push(Node::Number(*n)),
        Value::BigInt(n) => {
            let n = i64::try_from(*n).map_err(|_| (String::new(), format!("bigint {n} is outside int64")))?;
            out.push(Node::BigInt(n));
        }
        Value::Text(s) => out.push(Node::Text(s.clone())),
        Value::Bytes(bytes) => out.push(Node::Bytes(Bytes::from(bytes.clone()))),
        Value::List(items) => {
            out.push(Node::List(items.len() as u32));
            for (i, item) in items.iter().enumerate() {
                push_nodes(item, out).map_err(|(path, why)| (format!("[{i}]{path}"), why))?;
            }
        }
        Value::Map(entries) => {
            out.push(Node::Map(entries.len() as u32));
            for (key, item) in entries {
                out.push(Node::Key(key.clone()));
                push_nodes(item, out).map_err(|(path, why)| (format!("[{key:?}]{path}"), why))?;
            }
        }
        Value::Undefined => return refuse("undefined (use null)"),
        Value::Function(_) => return refuse("a function"),
    }
    Ok(())
}

/// Builds the JS value of `meta` (nodes well-formed and at most [`MAX_DEPTH`] deep).
fn meta_to_js(meta: &MetaValue) -> JsValue {
    let mut at = 0;
    node_to_js(meta.nodes(), &mut at)
}

fn node_to_js(nodes: &[Node], at: &mut usize) -> JsValue {
    let node = &nodes[*at];
    *at += 1;
    match node {
        Node::Null => JsValue::NULL,
        Node::Bool(b) => JsValue::from_bool(*b),
        Node::Number(n) => JsValue::from_f64(*n),
        Node::BigInt(n) => js_sys::BigInt::from(*n).into(),
        Node::Text(s) => JsValue::from_str(s),
        Node::Bytes(bytes) => Uint8Array::from(&bytes[..]).into(),
        Node::List(n) => {
            let array = Array::new();
            for _ in 0..*n {
                array.push(&node_to_js(nodes, at));
            }
            array.into()
        }
        Node::Map(n) => {
            let object = Object::new();
            for _ in 0..*n {
                let key = match &nodes[*at] {
                    Node::Key(key) => key.clone(),
                    _ => String::new(), // a well-formed value has a key here
                };
                *at += 1;
                convert::set_own(&object, &key, &node_to_js(nodes, at));
            }
            object.into()
        }
        Node::Key(_) => JsValue::UNDEFINED, // never a value in a well-formed value
    }
}

fn loaded_to_js(loaded: &LoadedChannel<MetaValue>) -> Result<JsValue> {
    let result = Object::new();
    let meta = loaded.meta.as_ref().map_or(JsValue::NULL, meta_to_js);
    let set = |key: &str, value: &JsValue| {
        Reflect::set(&result, &key.into(), value).map_err(|_| Error::Internal(format!("set {key}")))
    };
    set("meta", &meta)?;
    set("history", &to_js(&loaded.history)?)?;
    set("hints", &to_js(&loaded.hints)?)?;
    Ok(result.into())
}

#[derive(Serialize)]
struct Pending {
    id: String,
    op: PendingOp,
}

#[wasm_bindgen]
impl Channels {
    /// Writes the meta snapshot of `channel` in one transaction, replacing the previous one.
    /// `meta` is a `Uint8Array` or a structured value (see `ChannelMeta`); rejects
    /// `invalid_argument` (1) for anything else and `blob_too_large` (10) over the byte limit.
    #[wasm_bindgen(js_name = saveMeta, unchecked_return_type = "Promise<void>")]
    pub fn save_meta(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ChannelMeta")] meta: JsValue,
    ) -> Promise {
        accept!(guard);
        let channel = accept!(string(&channel, "channel"));
        let meta = accept!(meta_from_js(&meta));
        let inner = self.inner.clone();
        promise(async move {
            inner.channels().save_meta(&channel, &meta).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Appends `update.append` (in order) and evicts `update.evict` in one transaction, by key.
    /// Evicting an id also deletes its retrieval hint; appending an id already in the history moves
    /// it to the end. An id may appear once per update. Independent of the journal.
    #[wasm_bindgen(js_name = updateHistory, unchecked_return_type = "Promise<void>")]
    pub fn update_history(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue,
        #[wasm_bindgen(unchecked_param_type = "HistoryUpdate")] update: JsValue,
    ) -> Promise {
        accept!(guard);
        let channel = accept!(string(&channel, "channel"));
        let update: HistoryUpdate = accept!(parse(&update, "history update"));
        let inner = self.inner.clone();
        promise(async move {
            inner.channels().update_history(&channel, &update).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The durable state of `channel` (one readonly transaction): `{meta, history, hints}`,
    /// history in append order; `meta` is `null` if none was saved. All or nothing: a row written
    /// by a newer schema rejects `schema_version_unsupported` (9), a corrupt one 10, 11 or 13, a
    /// failed read with its code. Queued, uncommitted changes are not included.
    #[wasm_bindgen(js_name = loadChannel, unchecked_return_type = "Promise<LoadedChannel>")]
    pub fn load_channel(&self, #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue) -> Promise {
        accept!(guard);
        let channel = accept!(string(&channel, "channel"));
        let inner = self.inner.clone();
        promise(async move {
            let loaded = inner.channels().load_channel::<MetaValue>(&channel).await?;
            loaded_to_js(&loaded)
        })
    }

    /// Deletes the meta, history and hints of `channel` in one transaction and discards its queued
    /// changes; rejects with the failure's code, and then nothing was deleted. A channel recreated
    /// with the same id starts empty.
    #[wasm_bindgen(js_name = dropChannel, unchecked_return_type = "Promise<void>")]
    pub fn drop_channel(&self, #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue) -> Promise {
        accept!(guard);
        let channel = accept!(string(&channel, "channel"));
        accept!(self.inner.channels().call_drop(&channel));
        let inner = self.inner.clone();
        promise(async move {
            inner.channels().run_drop(&channel).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Writes the retrieval hint of one message (replacing an earlier one).
    #[wasm_bindgen(js_name = setRetrievalHint, unchecked_return_type = "Promise<void>")]
    pub fn set_retrieval_hint(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue,
        #[wasm_bindgen(js_name = messageId, unchecked_param_type = "string")] message_id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] hint: JsValue,
    ) -> Promise {
        accept!(guard);
        let channel = accept!(string(&channel, "channel"));
        let message_id = accept!(string(&message_id, "messageId"));
        let hint = match convert::read(&hint) {
            Ok(Value::Bytes(hint)) => hint,
            Ok(_) => return rejected(Error::InvalidArgument("hint must be a Uint8Array".into())),
            Err(refusal) => return rejected(Rejection::from_refusal(refusal, "hint")),
        };
        let inner = self.inner.clone();
        promise(async move {
            inner.channels().set_retrieval_hint(&channel, &message_id, &hint).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Queues `entry` to be appended by the next `commit` of `channel`, at once (call order is
    /// queue order): an append cancels a pending evict of the same id, and a later append of the
    /// same id replaces it. Resolves when queued.
    #[wasm_bindgen(js_name = queueAppend, unchecked_return_type = "Promise<void>")]
    pub fn queue_append(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue,
        #[wasm_bindgen(unchecked_param_type = "HistoryEntryInput")] entry: JsValue,
    ) -> Promise {
        let queued = string(&channel, "channel").and_then(|channel| {
            let entry: HistoryEntry = parse(&entry, "history entry")?;
            Ok(self.inner.channels().queue_append(&channel, entry)?)
        });
        settled(queued.map(|()| JsValue::UNDEFINED))
    }

    /// Queues `id` to be evicted by the next `commit` of `channel`, at once: an evict cancels a
    /// pending append of the same id. Resolves when queued.
    #[wasm_bindgen(js_name = queueEvict, unchecked_return_type = "Promise<void>")]
    pub fn queue_evict(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Promise {
        let queued = string(&channel, "channel")
            .and_then(|channel| Ok(self.inner.channels().queue_evict(&channel, &string(&id, "id")?)?));
        settled(queued.map(|()| JsValue::UNDEFINED))
    }

    /// The queued history changes of `channel`, oldest first: `[{id, op: "append" | "evict"}]`.
    #[wasm_bindgen(unchecked_return_type = "Promise<PendingHistoryChange[]>")]
    pub fn pending(&self, #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue) -> Promise {
        let list = string(&channel, "channel").and_then(|channel| {
            let pending: Vec<Pending> =
                self.inner.channels().pending(&channel).into_iter().map(|(id, op)| Pending { id, op }).collect();
            Ok(to_js(&pending)?)
        });
        settled(list)
    }

    /// Saves `meta`, then writes the whole queue of `channel` as one history update, back to back.
    /// Rejects only bad input (1, 10) or a closed (20) or read-only (16) store. A storage failure
    /// never rejects: it resolves `{metaSaved, historyFlushed, pending, failures}` and is logged;
    /// what failed to write stays queued for the next commit, even one with nothing new queued.
    #[wasm_bindgen(unchecked_return_type = "Promise<ChannelCommitReport>")]
    pub fn commit(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ChannelMeta")] meta: JsValue,
    ) -> Promise {
        accept!(guard);
        let channel = accept!(string(&channel, "channel"));
        let meta = accept!(meta_from_js(&meta));
        let inner = self.inner.clone();
        promise(async move { to_js(&inner.channels().commit(&channel, &meta).await?) })
    }
}

//! `store.channels`: the snapshot contract for protocol state, a thin surface over
//! [`crate::channels::Channels`]. A JS meta is a [`MetaValue`]; everything else crosses with serde.

use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{error, from_js, promise, to_js, StoreBackend};
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

/// A promise settled now with `outcome`.
fn settled(outcome: Result<JsValue>) -> Promise {
    match outcome {
        Ok(value) => Promise::resolve(&value),
        Err(error) => Promise::reject(&error::to_js(&error)),
    }
}

fn string(value: &JsValue, what: &str) -> Result<String> {
    value.as_string().ok_or_else(|| Error::InvalidArgument(format!("{what} must be a string")))
}

/// Refuses an argument that is not a plain object, or has keys other than `allowed`
/// (serde-wasm-bindgen would drop a misspelt key silently).
fn check_object(value: &JsValue, what: &str, allowed: &[&str]) -> Result<()> {
    if !value.is_object() || Array::is_array(value) {
        return Err(Error::InvalidArgument(format!("{what} must be an object")));
    }
    for key in Object::keys(value.unchecked_ref::<Object>()).iter().filter_map(|k| k.as_string()) {
        if !allowed.contains(&key.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "{what}: unknown field {key:?} (expected one of {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn history_entry(value: &JsValue) -> Result<HistoryEntry> {
    check_object(value, "history entry", &["id", "bytes", "timestampMs"])?;
    if !Reflect::get(value, &"bytes".into()).is_ok_and(|b| b.is_instance_of::<Uint8Array>()) {
        return Err(Error::InvalidArgument("history entry: bytes must be a Uint8Array".into()));
    }
    from_js(value.clone(), "history entry")
}

fn history_update(value: &JsValue) -> Result<HistoryUpdate> {
    check_object(value, "history update", &["append", "evict"])?;
    let list = |key: &str| -> Result<Vec<JsValue>> {
        match Reflect::get(value, &key.into()) {
            Ok(v) if v.is_undefined() => Ok(Vec::new()),
            Ok(v) if Array::is_array(&v) => Ok(v.unchecked_into::<Array>().to_vec()),
            _ => Err(Error::InvalidArgument(format!("history update: {key} must be an array"))),
        }
    };
    let append = list("append")?.iter().map(history_entry).collect::<Result<_>>()?;
    let evict =
        list("evict")?.iter().map(|id| string(id, "history update: every evicted id")).collect::<Result<_>>()?;
    Ok(HistoryUpdate { append, evict })
}

/// Converts a JS meta into a [`MetaValue`]: `null`, booleans, numbers, bigints within int64,
/// strings, `Uint8Array`s, arrays and plain objects, nested at most [`MAX_DEPTH`] deep. The
/// value itself must not be `null`. The error names the path of the first value refused.
fn meta_from_js(value: &JsValue) -> Result<MetaValue> {
    if value.is_null() || value.is_undefined() {
        return Err(Error::InvalidArgument("meta must not be null or undefined".into()));
    }
    let mut nodes = Vec::new();
    push_nodes(value, 0, &mut nodes).map_err(|(path, why)| Error::InvalidArgument(format!("meta{path}: {why}")))?;
    MetaValue::from_nodes(nodes).map_err(|why| Error::Internal(format!("meta conversion: {why}")))
}

/// `(path below this value, why)` of a value that cannot be stored.
type Refusal = (String, String);

fn push_nodes(value: &JsValue, depth: usize, out: &mut Vec<Node>) -> std::result::Result<(), Refusal> {
    let container = Array::is_array(value) || is_plain_object(value);
    if container && depth >= MAX_DEPTH {
        return Err((String::new(), format!("nested deeper than {MAX_DEPTH} levels (or cyclic)")));
    }
    if value.is_null() {
        out.push(Node::Null);
    } else if let Some(b) = value.as_bool() {
        out.push(Node::Bool(b));
    } else if let Some(n) = value.as_f64() {
        out.push(Node::Number(n));
    } else if value.is_bigint() {
        let text = String::from(value.unchecked_ref::<js_sys::BigInt>().to_string(10).unwrap_or_default());
        let n = text.parse::<i64>().map_err(|_| (String::new(), format!("bigint {text} is outside int64")))?;
        out.push(Node::BigInt(n));
    } else if let Some(s) = value.as_string() {
        out.push(Node::Text(s));
    } else if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        out.push(Node::Bytes(Bytes::from(bytes.to_vec())));
    } else if Array::is_array(value) {
        let array: &Array = value.unchecked_ref();
        out.push(Node::List(array.length()));
        for (i, item) in array.iter().enumerate() {
            push_nodes(&item, depth + 1, out).map_err(|(path, why)| (format!("[{i}]{path}"), why))?;
        }
    } else if container {
        let keys = Object::keys(value.unchecked_ref::<Object>());
        out.push(Node::Map(keys.length()));
        for key in keys.iter().filter_map(|k| k.as_string()) {
            let item = Reflect::get(value, &JsValue::from_str(&key)).unwrap_or(JsValue::UNDEFINED);
            out.push(Node::Key(key.clone()));
            push_nodes(&item, depth + 1, out).map_err(|(path, why)| (format!("[{key:?}]{path}"), why))?;
        }
    } else {
        let kind = if value.is_undefined() {
            "undefined (use null)".to_string()
        } else {
            let name = Reflect::get(value, &"constructor".into())
                .ok()
                .and_then(|c| Reflect::get(&c, &"name".into()).ok())
                .and_then(|n| n.as_string());
            match name {
                Some(name) if value.is_object() => format!("a {name}"),
                _ => format!("a {}", value.js_typeof().as_string().unwrap_or_default()),
            }
        };
        return Err((
            String::new(),
            format!(
                "{kind} cannot be stored; use null, boolean, number, bigint, string, Uint8Array, array or plain object"
            ),
        ));
    }
    Ok(())
}

/// An object whose prototype is `Object.prototype` or `null`.
fn is_plain_object(value: &JsValue) -> bool {
    if !value.is_object() || Array::is_array(value) {
        return false;
    }
    let proto = Object::get_prototype_of(value);
    proto.is_null() || Object::is(&proto, &Object::get_prototype_of(&Object::new()))
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
                set_own(&object, &key, &node_to_js(nodes, at));
            }
            object.into()
        }
        Node::Key(_) => JsValue::UNDEFINED, // never a value in a well-formed value
    }
}

/// Sets an own enumerable property, also for `"__proto__"` (which plain assignment would treat
/// as the prototype).
fn set_own(object: &Object, key: &str, value: &JsValue) {
    if key == "__proto__" {
        let descriptor = Object::new();
        for (field, flag) in [("writable", true), ("enumerable", true), ("configurable", true)] {
            let _ = Reflect::set(&descriptor, &field.into(), &flag.into());
        }
        let _ = Reflect::set(&descriptor, &"value".into(), value);
        let _ = Reflect::define_property(object, &key.into(), &descriptor);
    } else {
        let _ = Reflect::set(object, &key.into(), value);
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
        let input = string(&channel, "channel").and_then(|c| Ok((c, meta_from_js(&meta)?)));
        let inner = self.inner.clone();
        promise(async move {
            let (channel, meta) = input?;
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
        let input = string(&channel, "channel").and_then(|c| Ok((c, history_update(&update)?)));
        let inner = self.inner.clone();
        promise(async move {
            let (channel, update) = input?;
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
        let channel = string(&channel, "channel");
        let inner = self.inner.clone();
        promise(async move {
            let loaded = inner.channels().load_channel::<MetaValue>(&channel?).await?;
            loaded_to_js(&loaded)
        })
    }

    /// Deletes the meta, history and hints of `channel` in one transaction and discards its queued
    /// changes; rejects with the failure's code, and then nothing was deleted. A channel recreated
    /// with the same id starts empty.
    #[wasm_bindgen(js_name = dropChannel, unchecked_return_type = "Promise<void>")]
    pub fn drop_channel(&self, #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue) -> Promise {
        let channel = string(&channel, "channel");
        let inner = self.inner.clone();
        promise(async move {
            inner.channels().drop_channel(&channel?).await?;
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
        let input = (|| {
            let hint = hint
                .dyn_ref::<Uint8Array>()
                .ok_or_else(|| Error::InvalidArgument("hint must be a Uint8Array".into()))?
                .to_vec();
            Ok::<_, Error>((string(&channel, "channel")?, string(&message_id, "messageId")?, hint))
        })();
        let inner = self.inner.clone();
        promise(async move {
            let (channel, message_id, hint) = input?;
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
        let queued = string(&channel, "channel")
            .and_then(|channel| self.inner.channels().queue_append(&channel, history_entry(&entry)?));
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
            .and_then(|channel| self.inner.channels().queue_evict(&channel, &string(&id, "id")?));
        settled(queued.map(|()| JsValue::UNDEFINED))
    }

    /// The queued history changes of `channel`, oldest first: `[{id, op: "append" | "evict"}]`.
    #[wasm_bindgen(unchecked_return_type = "Promise<PendingHistoryChange[]>")]
    pub fn pending(&self, #[wasm_bindgen(unchecked_param_type = "string")] channel: JsValue) -> Promise {
        let list = string(&channel, "channel").and_then(|channel| {
            let pending: Vec<Pending> =
                self.inner.channels().pending(&channel).into_iter().map(|(id, op)| Pending { id, op }).collect();
            to_js(&pending)
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
        let input = string(&channel, "channel").and_then(|c| Ok((c, meta_from_js(&meta)?)));
        let inner = self.inner.clone();
        promise(async move {
            let (channel, meta) = input?;
            to_js(&inner.channels().commit(&channel, &meta).await?)
        })
    }
}

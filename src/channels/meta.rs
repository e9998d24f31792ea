//! [`MetaValue`]: a structured value (what a JS app hands `saveMeta`) stored as its nodes in
//! pre-order, so that decoding never recurses however deep or hostile the stored bytes are.

use serde::{Deserialize, Serialize};

use crate::model::Bytes;

/// How deep containers may nest in a meta value.
pub const MAX_DEPTH: usize = 64;

/// One node of a value in pre-order. A container gives its length and its children follow:
/// a list's elements, or per map entry a [`Node::Key`] then the entry's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Node {
    /// JS `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A JS number (any f64, stored exactly).
    Number(f64),
    /// A JS bigint within int64, e.g. unix milliseconds.
    BigInt(i64),
    /// A string.
    Text(String),
    /// A `Uint8Array`.
    Bytes(Bytes),
    /// An array of this many elements (they follow).
    List(u32),
    /// A plain object of this many entries (each a `Key` then its value, in order).
    Map(u32),
    /// The key of the map entry whose value follows.
    Key(String),
}

/// A well-formed value: exactly one root, every container complete, keys only where a map
/// expects one, nesting at most [`MAX_DEPTH`]. Decoding checks all of it (`BlobDecode` if not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Node>", into = "Vec<Node>")]
pub struct MetaValue(Vec<Node>);

/// An open container while checking: entries still expected, and for a map whether its next
/// node is a value (a key was just read).
struct Open {
    remaining: u32,
    map: bool,
    awaiting_value: bool,
}

impl MetaValue {
    /// Checks `nodes` (see [`MetaValue`]); the error says what is wrong.
    pub fn from_nodes(nodes: Vec<Node>) -> Result<MetaValue, String> {
        let mut open: Vec<Open> = Vec::new();
        let mut roots = 0;
        for (at, node) in nodes.iter().enumerate() {
            match open.last_mut() {
                None if roots == 1 => return Err(format!("node {at}: a second root value")),
                None => roots += 1,
                Some(top) if top.map && !top.awaiting_value => {
                    if !matches!(node, Node::Key(_)) {
                        return Err(format!("node {at}: a map entry must start with a key"));
                    }
                    top.awaiting_value = true;
                    continue;
                }
                Some(top) => {
                    top.awaiting_value = false;
                    top.remaining -= 1;
                }
            }
            match node {
                Node::Key(_) => return Err(format!("node {at}: a key outside a map")),
                Node::List(n) | Node::Map(n) if *n > 0 => {
                    open.push(Open { remaining: *n, map: matches!(node, Node::Map(_)), awaiting_value: false });
                    if open.len() > MAX_DEPTH {
                        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
                    }
                }
                _ => {}
            }
            while open.last().is_some_and(|top| top.remaining == 0) {
                open.pop();
            }
        }
        if roots == 0 || !open.is_empty() {
            return Err("the value ends before it is complete".into());
        }
        Ok(MetaValue(nodes))
    }

    /// The value `bytes` (what `saveMeta` stores for a `Uint8Array`).
    pub fn bytes(bytes: Vec<u8>) -> MetaValue {
        MetaValue(vec![Node::Bytes(Bytes::from(bytes))])
    }

    /// The nodes in pre-order.
    pub fn nodes(&self) -> &[Node] {
        &self.0
    }
}

impl TryFrom<Vec<Node>> for MetaValue {
    type Error = String;
    fn try_from(nodes: Vec<Node>) -> Result<Self, String> {
        MetaValue::from_nodes(nodes)
    }
}

impl From<MetaValue> for Vec<Node> {
    fn from(value: MetaValue) -> Self {
        value.0
    }
}

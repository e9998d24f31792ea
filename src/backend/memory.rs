//! An in-memory backend for host tests. Clones share the same data, so dropping one persister and
//! opening another over a clone is a restart.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::{Backend, Frontier, ReadEvent, Row, StoreRows, WriteBatch, WriteOp};
use crate::error::{Error, Result};
use crate::layout::all_stores;
use crate::model::{Key, KeyPart};

type Tables = BTreeMap<&'static str, BTreeMap<Key, Vec<u8>>>;

/// How many rows of one store a streaming read hands over at once by default: few, so every
/// load in the host tests completes wallets on the way.
pub const DEFAULT_READ_CHUNK_ROWS: usize = 5;

/// In-memory storage with IndexedDB's ordering and all-or-nothing batches.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    tables: Rc<RefCell<Tables>>,
    /// Rows whose value cannot be read back, like a row whose blob file the browser lost: they fail
    /// a bulk read of their store as a whole and only themselves in a `scan`.
    lost: Rc<RefCell<BTreeSet<(&'static str, Key)>>>,
    closed: Rc<Cell<bool>>,
    /// The most rows of one store [`Backend::read_stream`] hands over at once.
    read_chunk_rows: Rc<Cell<usize>>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    /// An empty database with every object store.
    pub fn new() -> Self {
        let tables = all_stores().map(|s| (s, BTreeMap::new())).collect();
        MemoryBackend {
            tables: Rc::new(RefCell::new(tables)),
            lost: Rc::default(),
            closed: Rc::new(Cell::new(false)),
            read_chunk_rows: Rc::new(Cell::new(DEFAULT_READ_CHUNK_ROWS)),
        }
    }

    /// A new handle on the same data, as if the database were opened again.
    pub fn reopen(&self) -> Self {
        MemoryBackend {
            tables: self.tables.clone(),
            lost: self.lost.clone(),
            closed: Rc::new(Cell::new(false)),
            read_chunk_rows: self.read_chunk_rows.clone(),
        }
    }

    /// Sets the most rows of one store a streaming read hands over at once (at least 1; default
    /// [`DEFAULT_READ_CHUNK_ROWS`]).
    pub fn set_read_chunk_rows(&self, rows: usize) {
        self.read_chunk_rows.set(rows.max(1));
    }

    /// Every row of one store, for assertions.
    pub fn rows(&self, store: &str) -> Vec<Row> {
        self.tables.borrow().get(store).map_or_else(Vec::new, |t| {
            t.iter().map(|(key, value)| Row { key: key.clone(), value: value.clone() }).collect()
        })
    }

    /// Writes a raw row, bypassing every check (for corruption tests).
    pub fn put_raw(&self, store: &'static str, key: Key, value: Vec<u8>) {
        self.tables.borrow_mut().entry(store).or_default().insert(key, value);
    }

    /// Makes the value of an existing row unreadable (see the `lost` field).
    pub fn lose_value(&self, store: &'static str, key: Key) {
        self.lost.borrow_mut().insert((store, key));
    }

    fn lost_error() -> Error {
        Error::BlobDecode("NotReadableError: the value of a row could not be read".into())
    }

    /// One bulk read per store of the rows `pick` chooses; a store fails as a whole when one of
    /// them is lost, as an IndexedDB `getAll` does.
    fn read_where(
        &self,
        stores: &[&'static str],
        pick: impl for<'t> Fn(&'t BTreeMap<Key, Vec<u8>>) -> Vec<(&'t Key, &'t Vec<u8>)>,
    ) -> Result<Vec<Result<StoreRows>>> {
        self.check_open()?;
        let tables = self.tables.borrow();
        let lost = self.lost.borrow();
        stores
            .iter()
            .map(|store| {
                let table = tables.get(store).ok_or_else(|| Error::Internal(format!("no object store {store}")))?;
                let picked = pick(table);
                if picked.iter().any(|(key, _)| lost.contains(&(*store, (*key).clone()))) {
                    return Ok(Err(Self::lost_error()));
                }
                let rows =
                    picked.into_iter().map(|(key, value)| Row { key: key.clone(), value: value.clone() }).collect();
                Ok(Ok(StoreRows { store, rows, unreadable: Vec::new() }))
            })
            .collect()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.get() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

impl Backend for MemoryBackend {
    async fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.check_open()?;
        let mut tables = self.tables.borrow_mut();
        if let Some(missing) = batch.stores().into_iter().find(|s| !tables.contains_key(s)) {
            return Err(Error::Internal(format!("NotFoundError: no object store {missing}")));
        }
        let mut lost = self.lost.borrow_mut();
        for op in &batch.ops {
            let table = tables.get_mut(op.store()).expect("checked above");
            match op {
                WriteOp::Put { store, key, value } => {
                    lost.remove(&(*store, key.clone()));
                    table.insert(key.clone(), value.clone());
                }
                WriteOp::Delete { store, key } => {
                    lost.remove(&(*store, key.clone()));
                    table.remove(key);
                }
                WriteOp::DeleteWallet { wallet, .. } => {
                    let hex = KeyPart::Text(wallet.to_hex());
                    table.retain(|key, _| key.first() != Some(&hex));
                }
                WriteOp::DeleteGroup { group, .. } => {
                    let first = KeyPart::Text(group.clone());
                    table.retain(|key, _| key.first() != Some(&first));
                }
                WriteOp::DeletePrefix { prefix, .. } => table.retain(|key, _| !key.starts_with(prefix)),
                WriteOp::Clear { .. } => table.clear(),
            }
        }
        Ok(())
    }

    async fn read(&self, stores: &[&'static str]) -> Result<Vec<Result<StoreRows>>> {
        self.read_where(stores, |table| table.iter().collect())
    }

    async fn read_groups(&self, stores: &[&'static str], groups: &[&str]) -> Result<Vec<Result<StoreRows>>> {
        self.read_where(stores, |table| {
            let mut rows = Vec::new();
            for group in groups {
                let first = KeyPart::Text((*group).to_owned());
                // `[group]` sorts before every longer key that starts with it.
                rows.extend(table.range(vec![first.clone()]..).take_while(|(key, _)| key.first() == Some(&first)));
            }
            rows
        })
    }

    /// As IndexedDB reads: one read per store (or per store and group, one key range each), chunk
    /// by chunk, one chunk of each read in turn, each chunk copied when handed over, all of one
    /// snapshot; the bulk request of a chunk holding a lost row fails, so that chunk is read one
    /// row at a time ([`ReadEvent::OneByOne`]), its lost rows reported as unreadable.
    /// [`ReadEvent::Complete`]s only when reading every row.
    async fn read_stream(
        &self,
        stores: &[&'static str],
        groups: Option<&[&str]>,
        sink: &mut dyn FnMut(ReadEvent) -> Result<()>,
    ) -> Result<()> {
        self.check_open()?;
        let limit = self.read_chunk_rows.get();
        let ranges: Vec<Option<&str>> = match groups {
            None => vec![None],
            Some(groups) => groups.iter().copied().map(Some).collect(),
        };
        let reads: Vec<(&'static str, Option<&str>)> =
            stores.iter().flat_map(|store| ranges.iter().map(move |group| (*store, *group))).collect();
        let mut frontier = Frontier::new(reads.len());
        // Per read: `None` once done, else the key its next chunk starts after.
        let mut after: Vec<Option<Option<Key>>> = vec![Some(None); reads.len()];
        while after.iter().any(Option::is_some) {
            for (read, &(store, group)) in reads.iter().enumerate() {
                let Some(from) = after[read].take() else { continue };
                let chunk = {
                    let tables = self.tables.borrow();
                    let table = tables.get(store).ok_or_else(|| Error::Internal(format!("no object store {store}")))?;
                    let lower = match (from, group) {
                        (Some(key), _) => std::ops::Bound::Excluded(key),
                        (None, Some(group)) => std::ops::Bound::Included(vec![KeyPart::Text(group.to_owned())]),
                        (None, None) => std::ops::Bound::Unbounded,
                    };
                    let in_range = |key: &Key| match group {
                        None => true,
                        Some(group) => matches!(key.first(), Some(KeyPart::Text(first)) if first == group),
                    };
                    table
                        .range::<Key, _>((lower, std::ops::Bound::Unbounded))
                        .take_while(|(key, _)| in_range(key))
                        .take(limit)
                        .map(|(key, value)| Row { key: key.clone(), value: value.clone() })
                        .collect::<Vec<_>>()
                };
                let more = chunk.len() == limit;
                let last = chunk.last().map(|row| row.key.clone());
                let first_text = match last.as_ref().and_then(|key| key.first()) {
                    Some(KeyPart::Text(text)) => Some(text.clone()),
                    _ => None,
                };
                let is_lost = |row: &Row| self.lost.borrow().contains(&(store, row.key.clone()));
                let mut rows = StoreRows { store, rows: chunk, unreadable: Vec::new() };
                if rows.rows.iter().any(is_lost) {
                    sink(ReadEvent::OneByOne(store, Self::lost_error()))?;
                    let (lost, kept): (Vec<Row>, Vec<Row>) = rows.rows.into_iter().partition(is_lost);
                    rows.rows = kept;
                    rows.unreadable =
                        lost.iter().map(|row| (crate::model::key_to_string(&row.key), Self::lost_error())).collect();
                }
                sink(ReadEvent::Rows(rows))?;
                if more {
                    after[read] = Some(last);
                }
                match frontier.chunk(read, more, first_text) {
                    Some(complete) if groups.is_none() => sink(complete)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    async fn get(&self, store: &'static str, key: &Key) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        if self.lost.borrow().contains(&(store, key.clone())) {
            return Err(Self::lost_error());
        }
        let tables = self.tables.borrow();
        let table = tables.get(store).ok_or_else(|| Error::Internal(format!("no object store {store}")))?;
        Ok(table.get(key).cloned())
    }

    async fn scan(&self, store: &'static str) -> Result<StoreRows> {
        self.check_open()?;
        let tables = self.tables.borrow();
        let lost = self.lost.borrow();
        let table = tables.get(store).ok_or_else(|| Error::Internal(format!("no object store {store}")))?;
        let mut out = StoreRows { store, rows: Vec::new(), unreadable: Vec::new() };
        for (key, value) in table {
            if lost.contains(&(store, key.clone())) {
                out.unreadable.push((crate::model::key_to_string(key), Self::lost_error()));
            } else {
                out.rows.push(Row { key: key.clone(), value: value.clone() });
            }
        }
        Ok(out)
    }

    async fn reconnect(&self) -> Result<()> {
        self.closed.set(false);
        Ok(())
    }

    fn close(&self) {
        self.closed.set(true);
    }
}

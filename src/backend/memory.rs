//! An in-memory backend for host tests. Clones share the same data, so dropping one persister and
//! opening another over a clone is a restart.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use super::{all_stores, Backend, Row, StoreRows, WriteBatch, WriteOp};
use crate::error::{Error, Result};
use crate::model::{Key, KeyPart};

type Tables = BTreeMap<&'static str, BTreeMap<Key, Vec<u8>>>;

/// In-memory storage with IndexedDB's ordering and all-or-nothing batches.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    tables: Rc<RefCell<Tables>>,
    closed: Rc<Cell<bool>>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    pub fn new() -> Self {
        let tables = all_stores().map(|s| (s, BTreeMap::new())).collect();
        MemoryBackend { tables: Rc::new(RefCell::new(tables)), closed: Rc::new(Cell::new(false)) }
    }

    /// A new handle on the same data, as if the database were opened again.
    pub fn reopen(&self) -> Self {
        MemoryBackend { tables: self.tables.clone(), closed: Rc::new(Cell::new(false)) }
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
        for op in &batch.ops {
            let table = tables.get_mut(op.store()).expect("checked above");
            match op {
                WriteOp::Put { key, value, .. } => {
                    table.insert(key.clone(), value.clone());
                }
                WriteOp::Delete { key, .. } => {
                    table.remove(key);
                }
                WriteOp::DeleteWallet { wallet, .. } => {
                    let hex = wallet.to_hex();
                    table.retain(|key, _| key.first() != Some(&KeyPart::Text(hex.clone())));
                }
            }
        }
        Ok(())
    }

    async fn read(&self, stores: &[&'static str]) -> Result<Vec<StoreRows>> {
        self.check_open()?;
        let tables = self.tables.borrow();
        stores
            .iter()
            .map(|store| {
                let table = tables.get(store).ok_or_else(|| Error::Internal(format!("no object store {store}")))?;
                let rows = table.iter().map(|(key, value)| Row { key: key.clone(), value: value.clone() }).collect();
                Ok(StoreRows { store, rows, unreadable: Vec::new() })
            })
            .collect()
    }

    fn close(&self) {
        self.closed.set(true);
    }
}

//! [`KeyValue`] over `wasi:keyvalue` (store + atomics), the interfaces every
//! Spin 3.x/4.x host, SpinKube and our own `host/` provide.

use crate::same_bytes::same_bytes;
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};
use spinpresso_domain::kv::{KeyValue, KvError, KvResult};
use std::cell::RefCell;

/// The store every component declares in `spin.toml`.
pub const DEFAULT_STORE: &str = "default";

pub struct SpinKv {
    bucket: store::Bucket,
    /// The CAS handle of the last `get_for_update`, with the key and the
    /// value it read: the swap that usually follows needs no second read.
    prepared: RefCell<Option<Prepared>>,
}

struct Prepared {
    key: String,
    seen: Option<Vec<u8>>,
    cas: atomics::Cas,
}

impl SpinKv {
    pub fn open(label: &str) -> KvResult<Self> {
        Ok(Self { bucket: store::open(label).map_err(store_error)?, prepared: RefCell::new(None) })
    }

    pub fn open_default() -> KvResult<Self> {
        Self::open(DEFAULT_STORE)
    }
}

fn store_error(e: store::Error) -> KvError {
    KvError::Store(match e {
        store::Error::NoSuchStore => "no such key-value store".to_string(),
        store::Error::AccessDenied => "access to the key-value store denied".to_string(),
        store::Error::Other(message) => message,
    })
}

impl KeyValue for SpinKv {
    fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.bucket.get(key).map_err(store_error)
    }

    fn set(&self, key: &str, value: &[u8]) -> KvResult<()> {
        self.bucket.set(key, value).map_err(store_error)
    }

    fn delete(&self, key: &str) -> KvResult<()> {
        self.bucket.delete(key).map_err(store_error)
    }

    fn list_prefix(&self, prefix: &str) -> KvResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.bucket.list_keys(cursor.as_deref()).map_err(store_error)?;
            keys.extend(page.keys.into_iter().filter(|k| k.starts_with(prefix)));
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn get_for_update(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        let cas = atomics::Cas::new(&self.bucket, key).map_err(store_error)?;
        let seen = cas.current().map_err(store_error)?;
        *self.prepared.borrow_mut() = Some(Prepared { key: key.to_string(), seen: seen.clone(), cas });
        Ok(seen)
    }

    fn get_many(&self, keys: &[String]) -> KvResult<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let found: std::collections::HashMap<String, Vec<u8>> = batch::get_many(&self.bucket, keys)
            .map_err(store_error)?
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v)))
            .collect();
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> KvResult<()> {
        match entries {
            [] => Ok(()),
            [(key, value)] => self.set(key, value),
            _ => batch::set_many(&self.bucket, entries).map_err(store_error),
        }
    }

    fn delete_many(&self, keys: &[String]) -> KvResult<()> {
        match keys {
            [] => Ok(()),
            [key] => self.delete(key),
            _ => batch::delete_many(&self.bucket, keys).map_err(store_error),
        }
    }

    fn increment(&self, key: &str, delta: i64) -> KvResult<i64> {
        atomics::increment(&self.bucket, key, delta).map_err(store_error)
    }

    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> KvResult<bool> {
        let prepared = self
            .prepared
            .borrow_mut()
            .take()
            .filter(|p| p.key == key && p.seen.as_deref().is_some_and(|seen| same_bytes(seen, expected)));
        let cas = match prepared {
            Some(prepared) => prepared.cas,
            None => {
                let cas = atomics::Cas::new(&self.bucket, key).map_err(store_error)?;
                // Only existing keys are swapped: Spin's SQLite store upserts absent ones.
                match cas.current().map_err(store_error)? {
                    Some(current) if current == expected => {}
                    _ => return Ok(false),
                }
                cas
            }
        };
        match atomics::swap(cas, new) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(store_error(e)),
        }
    }
}

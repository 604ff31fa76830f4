//! [`KeyValue`] over `wasi:keyvalue` (store + atomics), the interfaces every
//! Spin 3.x/4.x host, SpinKube and our own `host/` provide.

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

/// `a == b`, eight bytes at a time: a slice comparison compiles to a
/// byte-by-byte loop in WebAssembly, and the values compared here (the
/// record a swap expects) run to several kilobytes.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails_equal = a_words.remainder() == b_words.remainder();
    tails_equal
        && a_words.zip(b_words).all(|(x, y)| {
            u64::from_ne_bytes(x.try_into().expect("chunks of 8"))
                == u64::from_ne_bytes(y.try_into().expect("chunks of 8"))
        })
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    #[test]
    fn same_bytes_is_slice_equality() {
        let a: Vec<u8> = (0..100u8).collect();
        for len in [0, 1, 7, 8, 9, 16, 63, 100] {
            assert!(same_bytes(&a[..len], &a[..len]));
            if len > 0 {
                let mut b = a[..len].to_vec();
                for at in [0, len / 2, len - 1] {
                    b[at] ^= 1;
                    assert!(!same_bytes(&a[..len], &b), "differs at {at} of {len}");
                    b[at] ^= 1;
                }
            }
        }
        assert!(!same_bytes(&a[..8], &a[..9]));
    }
}

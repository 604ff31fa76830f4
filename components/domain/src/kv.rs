//! The key-value operations the domain needs, and an in-memory store for tests.
//!
//! Real hosts implement [`KeyValue`] over `wasi:keyvalue` (see the `adapter`
//! crate). Rules from Spin's providers that every caller follows:
//! - a key used with [`KeyValue::increment`] is only ever read with
//!   `increment(key, 0)`, never with `get`/`set`;
//! - [`KeyValue::compare_and_swap`] is used only on keys that already exist
//!   (Spin's SQLite store treats a swap on an absent key as a plain upsert);
//! - listing keys is a full scan, so it never happens on a hot path.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The store refused or failed the operation.
    Store(String),
    /// A stored value could not be decoded: the data is not what this code wrote.
    Corrupt { key: String, reason: String },
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(m) => write!(f, "{m}"),
            Self::Corrupt { key, reason } => write!(f, "value of `{key}` is unreadable: {reason}"),
        }
    }
}

impl std::error::Error for KvError {}

pub type KvResult<T> = Result<T, KvError>;

pub trait KeyValue {
    fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>>;
    fn set(&self, key: &str, value: &[u8]) -> KvResult<()>;
    fn delete(&self, key: &str) -> KvResult<()>;
    /// Every key starting with `prefix`, sorted. A full scan: never on a hot path.
    fn list_prefix(&self, prefix: &str) -> KvResult<Vec<String>>;
    /// Atomically adds `delta` to the counter at `key` (absent = 0) and returns the new value.
    fn increment(&self, key: &str, delta: i64) -> KvResult<i64>;
    /// Atomically replaces the value of an existing `key` with `new` if it still
    /// equals `expected`. `Ok(false)` means someone else changed it first.
    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> KvResult<bool>;

    /// Reads `key` to change it with [`KeyValue::compare_and_swap`] next. A
    /// store that can keep what it read for that swap does (one read, not two).
    fn get_for_update(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.get(key)
    }

    /// Reads many keys in one go, in the order given (`None` where absent).
    fn get_many(&self, keys: &[String]) -> KvResult<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|key| self.get(key)).collect()
    }

    /// Writes many keys in one go. Real stores write them all or none;
    /// this default (for test stores) writes them one by one.
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> KvResult<()> {
        entries.iter().try_for_each(|(key, value)| self.set(key, value))
    }

    /// Deletes many keys in one go (absent ones are no error).
    fn delete_many(&self, keys: &[String]) -> KvResult<()> {
        keys.iter().try_for_each(|key| self.delete(key))
    }

    /// Reads a JSON value.
    fn get_json<T: DeserializeOwned>(&self, key: &str) -> KvResult<Option<T>>
    where
        Self: Sized,
    {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| KvError::Corrupt { key: key.to_string(), reason: e.to_string() }),
        }
    }

    /// Writes a JSON value.
    fn set_json<T: Serialize>(&self, key: &str, value: &T) -> KvResult<()>
    where
        Self: Sized,
    {
        self.set(key, &to_json(value))
    }

    /// Reads a counter without changing it.
    fn counter(&self, key: &str) -> KvResult<i64> {
        self.increment(key, 0)
    }
}

/// Serializes a value the domain wrote itself; its types always serialize.
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("domain values always serialize to JSON")
}

/// In-memory store with the same semantics as the real ones; for unit tests.
#[derive(Default)]
pub struct MemoryKv {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryKv {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panicking test thread must not hide the data from the others.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KeyValue for MemoryKv {
    fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        Ok(self.lock().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> KvResult<()> {
        self.lock().insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> KvResult<()> {
        self.lock().remove(key);
        Ok(())
    }

    fn list_prefix(&self, prefix: &str) -> KvResult<Vec<String>> {
        Ok(self.lock().keys().filter(|k| k.starts_with(prefix)).cloned().collect())
    }

    fn increment(&self, key: &str, delta: i64) -> KvResult<i64> {
        let mut entries = self.lock();
        let current = match entries.get(key) {
            None => 0,
            Some(bytes) => decode_counter(key, bytes)?,
        };
        let next = current.checked_add(delta).ok_or_else(|| KvError::Store(format!("counter `{key}` overflows")))?;
        entries.insert(key.to_string(), next.to_le_bytes().to_vec());
        Ok(next)
    }

    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> KvResult<bool> {
        let mut entries = self.lock();
        match entries.get_mut(key) {
            Some(current) if current.as_slice() == expected => {
                *current = new.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Counters are stored as 8 little-endian bytes, as Spin's providers do.
pub fn decode_counter(key: &str, bytes: &[u8]) -> KvResult<i64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| KvError::Corrupt {
        key: key.to_string(),
        reason: format!("a counter is 8 bytes, found {}", bytes.len()),
    })?;
    Ok(i64::from_le_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_absent_counter_starts_at_zero_and_is_stored_as_eight_le_bytes() {
        let kv = MemoryKv::new();
        assert_eq!(kv.counter("c").unwrap(), 0);
        assert_eq!(kv.increment("c", 5).unwrap(), 5);
        assert_eq!(kv.increment("c", -2).unwrap(), 3);
        assert_eq!(kv.get("c").unwrap().unwrap(), 3i64.to_le_bytes().to_vec());
    }

    #[test]
    fn incrementing_a_non_counter_value_is_an_error_not_a_panic() {
        let kv = MemoryKv::new();
        kv.set("k", b"hello").unwrap();
        assert!(matches!(kv.increment("k", 1), Err(KvError::Corrupt { .. })));
    }

    #[test]
    fn compare_and_swap_only_replaces_the_expected_value_of_an_existing_key() {
        let kv = MemoryKv::new();
        assert!(!kv.compare_and_swap("k", b"", b"x").unwrap(), "absent keys are never swapped");
        assert_eq!(kv.get("k").unwrap(), None);
        kv.set("k", b"a").unwrap();
        assert!(!kv.compare_and_swap("k", b"b", b"c").unwrap());
        assert_eq!(kv.get("k").unwrap().unwrap(), b"a");
        assert!(kv.compare_and_swap("k", b"a", b"c").unwrap());
        assert_eq!(kv.get("k").unwrap().unwrap(), b"c");
    }

    #[test]
    fn list_prefix_returns_sorted_matching_keys_only() {
        let kv = MemoryKv::new();
        for k in ["shop/b/x", "shop/a/x", "other", "shop/a/y"] {
            kv.set(k, b"1").unwrap();
        }
        assert_eq!(kv.list_prefix("shop/a/").unwrap(), vec!["shop/a/x", "shop/a/y"]);
        kv.delete("shop/a/x").unwrap();
        assert_eq!(kv.list_prefix("shop/").unwrap(), vec!["shop/a/y", "shop/b/x"]);
    }

    #[test]
    fn concurrent_increments_lose_nothing() {
        let kv = Arc::new(MemoryKv::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        kv.increment("n", 1).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(kv.counter("n").unwrap(), 800);
    }

    #[test]
    fn json_values_round_trip_and_garbage_is_reported_as_corrupt() {
        let kv = MemoryKv::new();
        kv.set_json("j", &vec![1, 2, 3]).unwrap();
        assert_eq!(kv.get_json::<Vec<i32>>("j").unwrap(), Some(vec![1, 2, 3]));
        kv.set("j", b"{not json").unwrap();
        assert!(matches!(kv.get_json::<Vec<i32>>("j"), Err(KvError::Corrupt { .. })));
    }
}

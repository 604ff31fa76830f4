//! The one shape of every state change: read a record, decide with a pure
//! function, compare-and-swap, retry a bounded number of times.
//!
//! Every CAS-guarded record carries a write id (`rev` plus the writer's
//! request id): Spin's Redis provider has been seen to store the new value
//! and still report a failed swap, so a retry that finds its own write
//! answers success instead of deciding again.

use crate::error::DomainError;
use crate::kv::{to_json, KeyValue, KvError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Tries before a contended update gives up (each try is one read and one CAS).
pub const MAX_TRIES: usize = 400;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned<T> {
    pub rev: u64,
    /// `{writer}#{rev}`: who wrote this revision.
    pub write: String,
    pub data: T,
}

impl<T: Serialize> Versioned<T> {
    pub fn first(data: T) -> Self {
        Self { rev: 1, write: "init#1".into(), data }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// What a decision function wants done.
pub enum Decision<T, R> {
    /// Store the new value, then answer `R`.
    Write(T, R),
    /// Change nothing and answer `R`.
    Keep(R),
}

/// A record as read, with the exact bytes a compare-and-swap must expect.
pub type Snapshot<T> = (Versioned<T>, Vec<u8>);

/// Reads a versioned record.
pub fn read<T: DeserializeOwned>(kv: &impl KeyValue, key: &str) -> Result<Option<Snapshot<T>>, DomainError> {
    parse(key, kv.get(key)?)
}

/// Reads many records in one go (see [`KeyValue::get_many`]), in the order of `keys`.
pub fn read_many<T: DeserializeOwned>(
    kv: &impl KeyValue,
    keys: &[String],
) -> Result<Vec<Option<Snapshot<T>>>, DomainError> {
    let values = kv.get_many(keys)?;
    keys.iter().zip(values).map(|(key, value)| parse(key, value)).collect()
}

fn parse<T: DeserializeOwned>(key: &str, value: Option<Vec<u8>>) -> Result<Option<Snapshot<T>>, DomainError> {
    match value {
        None => Ok(None),
        Some(bytes) => Ok(Some((decode(key, &bytes)?, bytes))),
    }
}

/// The record stored at `key`, from its bytes.
pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<Versioned<T>, DomainError> {
    Ok(serde_json::from_slice(bytes).map_err(|e| KvError::Corrupt { key: key.to_string(), reason: e.to_string() })?)
}

/// Reads a versioned record to change it next with [`update_from_rev`] (the
/// store may keep what it read for that swap: see [`KeyValue::get_for_update`]).
pub fn read_for_update<T: DeserializeOwned>(kv: &impl KeyValue, key: &str) -> Result<Option<Snapshot<T>>, DomainError> {
    parse(key, kv.get_for_update(key)?)
}

/// Applies `decide` to the record at `key` atomically. `missing` is the error
/// when the key does not exist (CAS never creates keys).
pub fn update<T, R>(
    kv: &impl KeyValue,
    key: &str,
    writer: &str,
    missing: impl Fn() -> DomainError,
    decide: impl FnMut(&T) -> Result<Decision<T, R>, DomainError>,
) -> Result<R, DomainError>
where
    T: Serialize + DeserializeOwned,
{
    update_keeping(kv, key, writer, None, missing, decide).map(|(answer, _, _)| answer)
}

/// [`update`], deciding first on a snapshot the caller has just read (from
/// [`read_for_update`]): a record read to check something before changing
/// it is not read twice. A stale snapshot only costs one failed swap. Also
/// tells the revision of the record the answer is about (the one written,
/// or the one kept): copies of a record kept elsewhere use it to tell a
/// newer copy from an older one.
pub fn update_from_rev<T, R>(
    kv: &impl KeyValue,
    key: &str,
    writer: &str,
    first: Option<Snapshot<T>>,
    missing: impl Fn() -> DomainError,
    decide: impl FnMut(&T) -> Result<Decision<T, R>, DomainError>,
) -> Result<(R, u64), DomainError>
where
    T: Serialize + DeserializeOwned,
{
    update_keeping(kv, key, writer, first, missing, decide).map(|(answer, rev, _)| (answer, rev))
}

/// [`update_from_rev`], also handing back the record as this call wrote it
/// (`None` when it kept the record), to change it again without reading it
/// back. Should anyone change it in between, that costs one failed swap,
/// and the retry reads it.
pub fn update_keeping<T, R>(
    kv: &impl KeyValue,
    key: &str,
    writer: &str,
    mut first: Option<Snapshot<T>>,
    missing: impl Fn() -> DomainError,
    mut decide: impl FnMut(&T) -> Result<Decision<T, R>, DomainError>,
) -> Result<(R, u64, Option<Snapshot<T>>), DomainError>
where
    T: Serialize + DeserializeOwned,
{
    // The write we attempted last and the answer it carried.
    let mut pending: Option<(String, R)> = None;
    for _ in 0..MAX_TRIES {
        let snapshot = match first.take() {
            Some(snapshot) => Some(snapshot),
            None => parse::<T>(key, kv.get_for_update(key)?)?,
        };
        let Some((current, bytes)) = snapshot else {
            return Err(missing());
        };
        if let Some((write, answer)) = pending.take() {
            if current.write == write {
                // The swap landed although it was reported as failed.
                let rev = current.rev;
                return Ok((answer, rev, Some((current, bytes))));
            }
        }
        match decide(&current.data)? {
            Decision::Keep(answer) => return Ok((answer, current.rev, None)),
            Decision::Write(next, answer) => {
                let rev = current.rev + 1;
                let write = format!("{writer}#{rev}");
                let record = Versioned { rev, write: write.clone(), data: next };
                let new = record.to_bytes();
                if kv.compare_and_swap(key, &bytes, &new)? {
                    return Ok((answer, rev, Some((record, new))));
                }
                pending = Some((write, answer));
            }
        }
    }
    Err(DomainError::refused("busy", 503, "too many simultaneous changes; try again"))
}

/// [`update`] on the record's stored JSON instead of its parsed value, for
/// hot paths that change a small part of a large record without parsing the
/// rest. `decide` gets the JSON of `data` as stored and answers the new
/// `data` JSON; it answers `None` for a record in a shape it does not handle,
/// and so does this function (also for a record not written by
/// [`crate::kv::to_json`]): the caller then uses [`update`]. The same swap,
/// retry and write-id rules as [`update_from_rev`].
pub fn update_raw<R>(
    kv: &impl KeyValue,
    key: &str,
    writer: &str,
    missing: impl Fn() -> DomainError,
    mut decide: impl FnMut(&[u8]) -> Option<Decision<Vec<u8>, R>>,
) -> Result<Option<R>, DomainError> {
    let mut pending: Option<(String, R)> = None;
    for _ in 0..MAX_TRIES {
        let bytes = kv.get_for_update(key)?.ok_or_else(&missing)?;
        let Some(current) = crate::json_bytes::split_versioned(&bytes) else { return Ok(None) };
        if let Some((write, answer)) = pending.take() {
            if current.write == write {
                return Ok(Some(answer)); // the swap landed although it was reported as failed
            }
        }
        match decide(current.data) {
            None => return Ok(None),
            Some(Decision::Keep(answer)) => return Ok(Some(answer)),
            Some(Decision::Write(data, answer)) => {
                let rev = current.rev + 1;
                let write = format!("{writer}#{rev}");
                if kv.compare_and_swap(key, &bytes, &versioned_bytes(rev, &write, &data))? {
                    return Ok(Some(answer));
                }
                pending = Some((write, answer));
            }
        }
    }
    Err(DomainError::refused("busy", 503, "too many simultaneous changes; try again"))
}

/// What [`Versioned::to_bytes`] writes for a record whose `data` is the JSON `data`.
pub fn versioned_bytes(rev: u64, write: &str, data: &[u8]) -> Vec<u8> {
    let write = to_json(&write);
    let mut out = Vec::with_capacity(data.len() + write.len() + 40);
    out.extend_from_slice(br#"{"rev":"#);
    out.extend_from_slice(rev.to_string().as_bytes());
    out.extend_from_slice(br#","write":"#);
    out.extend_from_slice(&write);
    out.extend_from_slice(br#","data":"#);
    out.extend_from_slice(data);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;
    use std::sync::Arc;

    fn missing() -> DomainError {
        DomainError::not_found("missing", "no record")
    }

    #[test]
    fn concurrent_updates_each_apply_exactly_once() {
        let kv = Arc::new(MemoryKv::new());
        kv.set("n", &Versioned::first(0u32).to_bytes()).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let writer = format!("w{t}-{i}");
                        update(&*kv, "n", &writer, missing, |n: &u32| Ok(Decision::Write(n + 1, ()))).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let (record, _) = read::<u32>(&*kv, "n").unwrap().unwrap();
        assert_eq!((record.data, record.rev), (400, 401));
    }

    #[test]
    fn a_stale_snapshot_costs_one_failed_swap_not_a_lost_update() {
        let kv = MemoryKv::new();
        kv.set("n", &Versioned::first(1u32).to_bytes()).unwrap();
        let stale = read_for_update::<u32>(&kv, "n").unwrap();
        update(&kv, "n", "other", missing, |n: &u32| Ok(Decision::Write(n + 10, ()))).unwrap();
        let (seen, _) =
            update_from_rev(&kv, "n", "me", stale, missing, |n: &u32| Ok(Decision::Write(n * 2, *n))).unwrap();
        assert_eq!(seen, 11, "decided again on the current value");
        let (record, _) = read::<u32>(&kv, "n").unwrap().unwrap();
        assert_eq!((record.data, record.rev), (22, 3));
    }

    #[test]
    fn a_refusing_decision_changes_nothing() {
        let kv = MemoryKv::new();
        kv.set("n", &Versioned::first(5u32).to_bytes()).unwrap();
        let err = update(&kv, "n", "w", missing, |_: &u32| -> Result<Decision<u32, ()>, _> {
            Err(DomainError::conflict("nope", "no"))
        })
        .unwrap_err();
        assert_eq!(err.code(), "nope");
        assert_eq!(read::<u32>(&kv, "n").unwrap().unwrap().0.rev, 1);
    }

    #[test]
    fn a_missing_record_is_the_callers_error() {
        let kv = MemoryKv::new();
        let err = update(&kv, "n", "w", missing, |n: &u32| Ok(Decision::Write(n + 1, ()))).unwrap_err();
        assert_eq!(err.code(), "missing");
    }

    /// A store that stores the swap but reports failure once, like Spin's Redis provider can.
    struct LyingKv(MemoryKv, std::sync::atomic::AtomicBool);

    impl KeyValue for LyingKv {
        fn get(&self, key: &str) -> crate::kv::KvResult<Option<Vec<u8>>> {
            self.0.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> crate::kv::KvResult<()> {
            self.0.set(key, value)
        }
        fn delete(&self, key: &str) -> crate::kv::KvResult<()> {
            self.0.delete(key)
        }
        fn list_prefix(&self, prefix: &str) -> crate::kv::KvResult<Vec<String>> {
            self.0.list_prefix(prefix)
        }
        fn increment(&self, key: &str, delta: i64) -> crate::kv::KvResult<i64> {
            self.0.increment(key, delta)
        }
        fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> crate::kv::KvResult<bool> {
            let swapped = self.0.compare_and_swap(key, expected, new)?;
            Ok(swapped && !self.1.swap(false, std::sync::atomic::Ordering::SeqCst))
        }
    }

    #[test]
    fn raw_records_are_written_as_serde_writes_them() {
        let record = Versioned { rev: 3, write: "a\"b#3".into(), data: vec![1, 2] };
        assert_eq!(versioned_bytes(3, "a\"b#3", b"[1,2]"), record.to_bytes());
    }

    #[test]
    fn raw_updates_change_the_stored_json_and_leave_other_shapes_to_serde() {
        let kv = MemoryKv::new();
        kv.set("n", &Versioned::first(vec![1u32]).to_bytes()).unwrap();
        let appended = update_raw(&kv, "n", "w", missing, |data| {
            let inner = data.strip_suffix(b"]")?;
            Some(Decision::Write([inner, b",2]"].concat(), "appended"))
        });
        assert_eq!(appended.unwrap(), Some("appended"));
        let (record, _) = read::<Vec<u32>>(&kv, "n").unwrap().unwrap();
        assert_eq!((record.data, record.rev, record.write.as_str()), (vec![1, 2], 2, "w#2"));
        // A shape the decision does not handle, and a record serde must read.
        assert_eq!(update_raw(&kv, "n", "w", missing, |_| None::<Decision<Vec<u8>, ()>>).unwrap(), None);
        kv.set("m", br#"{"write":"x#1","rev":1,"data":[]}"#).unwrap();
        let never = update_raw(&kv, "m", "w", missing, |_| -> Option<Decision<Vec<u8>, ()>> { panic!("not called") });
        assert_eq!(never.unwrap(), None);
    }

    #[test]
    fn a_raw_swap_that_landed_but_reported_failure_is_recognised_not_repeated() {
        let kv = LyingKv(MemoryKv::new(), true.into());
        kv.set("n", &Versioned::first(vec![1u32]).to_bytes()).unwrap();
        let mut decided = 0;
        let answer = update_raw(&kv, "n", "req-1", missing, |data| {
            decided += 1;
            let inner = data.strip_suffix(b"]")?;
            Some(Decision::Write([inner, b",2]"].concat(), ()))
        });
        assert_eq!((answer.unwrap(), decided), (Some(()), 1), "decided once");
        assert_eq!(read::<Vec<u32>>(&kv, "n").unwrap().unwrap().0.data, vec![1, 2]);
    }

    #[test]
    fn a_swap_that_landed_but_reported_failure_is_recognised_not_repeated() {
        let kv = LyingKv(MemoryKv::new(), true.into());
        kv.set("order", &Versioned::first("queued".to_string()).to_bytes()).unwrap();
        // A claim: only valid from `queued`; a second decision would refuse with 409.
        let answer = update(&kv, "order", "req-1", missing, |state: &String| match state.as_str() {
            "queued" => Ok(Decision::Write("in_progress".to_string(), "claimed")),
            _ => Err(DomainError::conflict("invalid_transition", "no")),
        })
        .unwrap();
        assert_eq!(answer, "claimed");
        let (record, _) = read::<String>(&kv, "order").unwrap().unwrap();
        assert_eq!((record.data.as_str(), record.rev), ("in_progress", 2));
    }

    #[test]
    fn an_update_hands_back_the_record_as_it_wrote_it() {
        for lying in [false, true] {
            let kv = LyingKv(MemoryKv::new(), lying.into());
            kv.set("n", &Versioned::first(1u32).to_bytes()).unwrap();
            let (_, rev, wrote) =
                update_keeping(&kv, "n", "w", None, missing, |n: &u32| Ok(Decision::Write(n + 1, ()))).unwrap();
            let (record, bytes) = wrote.expect("written");
            assert_eq!(Some(bytes.clone()), kv.get("n").unwrap(), "lying: {lying}");
            assert_eq!((record.data, record.rev, rev), (2, 2, 2));
            // Changing it again from that snapshot needs no read and loses nothing.
            let again = update_from_rev(&kv, "n", "w2", Some((record, bytes)), missing, |n: &u32| {
                Ok(Decision::Write(n * 10, *n))
            });
            assert_eq!(again.unwrap().0, 2);
            assert_eq!(read::<u32>(&kv, "n").unwrap().unwrap().0.data, 20);
        }
        let kv = MemoryKv::new();
        kv.set("n", &Versioned::first(1u32).to_bytes()).unwrap();
        let kept = update_keeping(&kv, "n", "w", None, missing, |_: &u32| Ok(Decision::<u32, ()>::Keep(()))).unwrap();
        assert!(kept.2.is_none());
    }
}

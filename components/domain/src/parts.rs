//! Records kept in numbered parts, so that creating a record needs no
//! election, no writer ever waits for another, and one that dies half-way
//! stalls no one.
//!
//! "Create if absent" cannot be a compare-and-swap (Spin's SQLite store
//! upserts absent keys), and electing a creator with `increment` leaves
//! everyone else waiting, forever if the creator dies before it writes. Here
//! a writer that finds no part to change takes a part number with
//! `increment` instead: that number's key is its alone to create, with a
//! plain `set` of its first value (its own change already applied). Every
//! later change is a compare-and-swap on a part that exists. A writer that
//! dies after taking a number leaves a hole that readers skip and later
//! writers go past.
//!
//! Keys, for a record at `{key}`:
//! - `{key}`          part 1 (where earlier versions kept the whole record)
//! - `{key}/{n}`      part n, for n ≥ 2
//! - `{key}/parts`    counter: the part numbers taken

use crate::atomic::{read, update, Decision, Versioned};
use crate::error::DomainError;
use crate::kv::KeyValue;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The numbered parts of the record at one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    key: String,
}

const ABSENT: &str = "part_absent";

fn absent() -> DomainError {
    DomainError::not_found(ABSENT, "no such part")
}

impl Parts {
    pub fn new(key: impl Into<String>) -> Self {
        Self { key: key.into() }
    }

    /// The key of part `n` (from 1).
    pub fn key(&self, n: u64) -> String {
        if n <= 1 {
            self.key.clone()
        } else {
            format!("{}/{n}", self.key)
        }
    }

    /// The counter of part numbers taken.
    pub fn counter_key(&self) -> String {
        format!("{}/parts", self.key)
    }

    /// The highest part number that may exist (at least 1: part 1 may have
    /// been written by an earlier version, which kept no counter). Reading
    /// a counter stores it (as 0) if it was absent: callers read it only for
    /// records that exist or are about to.
    pub fn highest(&self, kv: &impl KeyValue) -> Result<u64, DomainError> {
        Ok(kv.counter(&self.counter_key())?.max(1) as u64)
    }

    /// `decide` on part `n`: its answer, `None` when the part is absent or
    /// `decide` passes it over (answers `None`).
    fn try_part<T, R>(
        &self,
        kv: &impl KeyValue,
        n: u64,
        writer: &str,
        decide: &mut impl FnMut(&T) -> Result<Option<Decision<T, R>>, DomainError>,
    ) -> Result<Option<R>, DomainError>
    where
        T: Serialize + DeserializeOwned,
    {
        let tried = update(kv, &self.key(n), writer, absent, |part: &T| {
            Ok(match decide(part)? {
                Some(Decision::Write(next, answer)) => Decision::Write(next, Some(answer)),
                Some(Decision::Keep(answer)) => Decision::Keep(Some(answer)),
                None => Decision::Keep(None),
            })
        });
        match tried {
            Err(e) if e.code() == ABSENT => Ok(None),
            other => other,
        }
    }

    /// Creates a new part holding `value`: the number taken is this call's
    /// alone, so a plain `set` creates it and no one else writes it before.
    fn create<T: Serialize>(&self, kv: &impl KeyValue, value: T) -> Result<(), DomainError> {
        let n = kv.increment(&self.counter_key(), 1)?.max(1) as u64;
        kv.set(&self.key(n), &Versioned::first(value).to_bytes())?;
        Ok(())
    }

    /// Changes one part, for records whose parts add up (each is a share of
    /// the whole): part 1 first (the usual one, one read and one swap), then
    /// the others, newest first; `decide` answers `None` for a part that
    /// cannot take the change (full). When none exists or takes it, a new
    /// part is created with `create`'s value.
    pub fn update_any<T, R>(
        &self,
        kv: &impl KeyValue,
        writer: &str,
        mut decide: impl FnMut(&T) -> Result<Option<Decision<T, R>>, DomainError>,
        create: impl FnOnce() -> Result<(T, R), DomainError>,
    ) -> Result<R, DomainError>
    where
        T: Serialize + DeserializeOwned,
    {
        if let Some(answer) = self.try_part(kv, 1, writer, &mut decide)? {
            return Ok(answer);
        }
        for n in (2..=self.highest(kv)?).rev() {
            if let Some(answer) = self.try_part(kv, n, writer, &mut decide)? {
                return Ok(answer);
            }
        }
        let (value, answer) = create()?;
        self.create(kv, value)?;
        Ok(answer)
    }

    /// Every part that exists, in number order (part 1 and the counter are
    /// read first, then the others in one batch).
    pub fn read_all<T: DeserializeOwned>(&self, kv: &impl KeyValue) -> Result<Vec<T>, DomainError> {
        let mut parts: Vec<T> = read::<T>(kv, &self.key(1))?.map(|(part, _)| part.data).into_iter().collect();
        parts.extend(self.read_rest(kv)?);
        Ok(parts)
    }

    /// The parts after part 1 that exist.
    pub fn read_rest<T: DeserializeOwned>(&self, kv: &impl KeyValue) -> Result<Vec<T>, DomainError> {
        let keys: Vec<String> = (2..=self.highest(kv)?).map(|n| self.key(n)).collect();
        let found = crate::atomic::read_many::<T>(kv, &keys)?;
        Ok(found.into_iter().flatten().map(|(part, _)| part.data).collect())
    }

    /// For a record that is one value (not a sum): the newest part that
    /// exists is the record, and the older ones are left behind. Changes it
    /// with `decide`; when there is none, creates it with the value and the
    /// answer of `create` if given, else answers `None`.
    pub fn update_newest<T, R>(
        &self,
        kv: &impl KeyValue,
        writer: &str,
        mut decide: impl FnMut(&T) -> Result<Decision<T, R>, DomainError>,
        create: Option<(T, R)>,
    ) -> Result<Option<R>, DomainError>
    where
        T: Serialize + DeserializeOwned,
    {
        let mut decide = |part: &T| decide(part).map(Some);
        for n in (1..=self.highest(kv)?).rev() {
            if let Some(answer) = self.try_part(kv, n, writer, &mut decide)? {
                return Ok(Some(answer));
            }
        }
        let Some((value, answer)) = create else { return Ok(None) };
        self.create(kv, value)?;
        Ok(Some(answer))
    }

    /// The newest part that exists (see [`Parts::update_newest`]).
    pub fn read_newest<T: DeserializeOwned>(&self, kv: &impl KeyValue) -> Result<Option<T>, DomainError> {
        for n in (1..=self.highest(kv)?).rev() {
            if let Some((part, _)) = read::<T>(kv, &self.key(n))? {
                return Ok(Some(part.data));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;
    use std::sync::Arc;

    fn add(n: u32) -> impl FnMut(&u32) -> Result<Option<Decision<u32, ()>>, DomainError> {
        move |sum: &u32| Ok(Some(Decision::Write(sum + n, ())))
    }

    fn total(kv: &impl KeyValue, parts: &Parts) -> u32 {
        parts.read_all::<u32>(kv).unwrap().iter().sum()
    }

    #[test]
    fn the_first_writer_creates_part_one_and_the_others_change_it() {
        let kv = MemoryKv::new();
        let parts = Parts::new("r");
        for i in 0..5 {
            parts.update_any(&kv, &format!("w{i}"), add(2), || Ok((2, ()))).unwrap();
        }
        assert_eq!(kv.list_prefix("").unwrap(), ["r", "r/parts"]);
        assert_eq!(total(&kv, &parts), 10);
    }

    #[test]
    fn a_creator_that_dies_after_taking_its_number_stalls_no_one() {
        let kv = MemoryKv::new();
        let parts = Parts::new("r");
        // A writer took part 1 and died before writing it.
        kv.increment(&parts.counter_key(), 1).unwrap();
        parts.update_any(&kv, "w1", add(3), || Ok((3, ()))).unwrap();
        parts.update_any(&kv, "w2", add(4), || Ok((4, ()))).unwrap();
        assert_eq!(kv.list_prefix("").unwrap(), ["r/2", "r/parts"], "the hole is skipped");
        assert_eq!(total(&kv, &parts), 7);
        // Should it wake up and write part 1 after all, nothing is lost: the parts add up.
        kv.set("r", &Versioned::first(5u32).to_bytes()).unwrap();
        assert_eq!(total(&kv, &parts), 12);
    }

    #[test]
    fn a_part_that_is_full_is_passed_over() {
        let kv = MemoryKv::new();
        let parts = Parts::new("r");
        let below_ten = |n: u32| move |sum: &u32| Ok((sum + n <= 10).then(|| Decision::Write(sum + n, ())));
        for _ in 0..4 {
            parts.update_any(&kv, "w", below_ten(4), || Ok((4, ()))).unwrap();
        }
        let each: Vec<u32> = parts.read_all(&kv).unwrap();
        assert_eq!(each, [8, 8]);
    }

    #[test]
    fn parallel_first_writers_lose_nothing() {
        let kv = Arc::new(MemoryKv::new());
        let parts = Parts::new("r");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (kv, parts) = (kv.clone(), parts.clone());
                std::thread::spawn(move || {
                    for i in 0..50 {
                        parts.update_any(&*kv, &format!("w{t}-{i}"), add(1), || Ok((1, ()))).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(total(&*kv, &parts), 400);
    }

    #[test]
    fn a_single_record_is_its_newest_part() {
        let kv = MemoryKv::new();
        let parts = Parts::new("r");
        let set = |v: u32| move |_: &u32| Ok(Decision::Write(v, v));
        let none = None::<(u32, u32)>;
        assert_eq!(parts.update_newest(&kv, "w", set(1), none).unwrap(), None, "nothing to change, nothing made");
        assert_eq!(kv.list_prefix("").unwrap(), ["r/parts"], "only the counter, read");
        // Its creator died after taking part 1: the next one to create it takes part 2.
        kv.increment(&parts.counter_key(), 1).unwrap();
        assert_eq!(parts.update_newest(&kv, "w", set(2), Some((2, 2))).unwrap(), Some(2));
        assert_eq!(parts.update_newest(&kv, "w", set(3), none).unwrap(), Some(3));
        // Part 1 written late is older than the record, and left behind.
        kv.set("r", &Versioned::first(9u32).to_bytes()).unwrap();
        assert_eq!(parts.read_newest::<u32>(&kv).unwrap(), Some(3));
        assert_eq!((parts.key(1), parts.key(2), parts.counter_key()), ("r".into(), "r/2".into(), "r/parts".into()));
    }

    #[test]
    fn a_record_written_by_an_earlier_version_is_part_one() {
        let kv = MemoryKv::new();
        kv.set("r", &Versioned::first(5u32).to_bytes()).unwrap();
        let parts = Parts::new("r");
        assert_eq!(parts.read_newest::<u32>(&kv).unwrap(), Some(5));
        parts.update_any(&kv, "w", add(1), || Ok((1, ()))).unwrap();
        assert_eq!(parts.read_all::<u32>(&kv).unwrap(), [6]);
    }
}

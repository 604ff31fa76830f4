//! A shop's open orders (`shop/{shop}/open`): the capacity gate, the
//! barista queue's index and, per order, its queue facts.
//!
//! Every redemption, submission, claim and ending rewrites this record, so
//! each entry is stored as a JSON array rather than an object:
//! `[id, check_after_ms, rev, state, number, drink, barista]` (or
//! `[id, check_after_ms]` without queue facts). That is about 40 % fewer
//! bytes to parse and write than named fields. Entries as objects
//! (`{"id", "check_after_ms", "queue"?}`, as earlier versions wrote them)
//! are still read.

use crate::order::{OrderState, QueueNote};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenSet {
    pub orders: Vec<OpenEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpenEntry {
    pub id: String,
    /// No deadline of the order can pass before this: only entries past it
    /// need their order read to check for a timeout. Noted with `queue`, it
    /// is the order's deadline at that revision (deadlines only move later).
    pub check_after_ms: i64,
    /// The order's queue facts as of its last change. The order is the
    /// truth; this copy is noted right after each change (a request that dies
    /// in between leaves it behind until the sweeper's next look), so that a
    /// queue position needs no order reads. Absent in entries written before
    /// it was kept: those orders are read.
    pub queue: Option<QueueNote>,
}

/// An open set's JSON as `kv::to_json` writes it, read without parsing:
/// the entries' array and each entry's JSON. `None` for another shape, or
/// when an entry is stored as an object (earlier versions): serde reads those.
pub fn raw_entries(data: &[u8]) -> Option<(&[u8], Vec<&[u8]>)> {
    let array = data.strip_prefix(br#"{"orders":"#)?.strip_suffix(b"}")?;
    let entries = crate::json_bytes::elements(array)?;
    entries.iter().all(|e| e.starts_with(b"[")).then_some((array, entries))
}

/// How the stored JSON of order `id`'s entry starts (`["<id>",`).
pub fn entry_prefix(id: &str) -> Vec<u8> {
    [&b"["[..], &crate::kv::to_json(&id), b","].concat()
}

impl Serialize for OpenEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(if self.queue.is_some() { 7 } else { 2 }))?;
        seq.serialize_element(&self.id)?;
        seq.serialize_element(&self.check_after_ms)?;
        if let Some(q) = &self.queue {
            seq.serialize_element(&q.rev)?;
            seq.serialize_element(&q.state)?;
            seq.serialize_element(&q.number)?;
            seq.serialize_element(&q.drink)?;
            seq.serialize_element(&q.barista)?;
        }
        seq.end()
    }
}

/// An entry as an object, the way earlier versions stored it.
#[derive(Deserialize)]
struct EntryObject {
    id: String,
    check_after_ms: i64,
    #[serde(default)]
    queue: Option<QueueNote>,
}

impl<'de> Deserialize<'de> for OpenEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = OpenEntry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an open order entry: [id, check_after_ms, …] or an object")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OpenEntry, A::Error> {
        let missing = |what: &str| de::Error::custom(format!("an open order entry without its {what}"));
        let id: String = seq.next_element()?.ok_or_else(|| missing("id"))?;
        let check_after_ms: i64 = seq.next_element()?.ok_or_else(|| missing("check_after_ms"))?;
        let queue = match seq.next_element::<u64>()? {
            None => None,
            Some(rev) => {
                let state: OrderState = seq.next_element()?.ok_or_else(|| missing("state"))?;
                let number: Option<u32> = seq.next_element()?.ok_or_else(|| missing("number"))?;
                let drink: Option<String> = seq.next_element()?.ok_or_else(|| missing("drink"))?;
                let barista: Option<String> = seq.next_element()?.ok_or_else(|| missing("barista"))?;
                Some(QueueNote { rev, state, number, drink, barista })
            }
        };
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("an open order entry with more than 7 fields"));
        }
        Ok(OpenEntry { id, check_after_ms, queue })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OpenEntry, A::Error> {
        let old = EntryObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(OpenEntry { id: old.id, check_after_ms: old.check_after_ms, queue: old.queue })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued() -> QueueNote {
        QueueNote {
            rev: 3,
            state: OrderState::Queued,
            number: Some(12),
            drink: Some("flat-white".into()),
            barista: None,
        }
    }

    #[test]
    fn entries_are_stored_as_arrays_and_read_back() {
        let set = OpenSet {
            orders: vec![
                OpenEntry { id: "a".into(), check_after_ms: 5, queue: Some(queued()) },
                OpenEntry { id: "b".into(), check_after_ms: 6, queue: None },
            ],
        };
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"{"orders":[["a",5,3,"queued",12,"flat-white",null],["b",6]]}"#);
        assert_eq!(serde_json::from_str::<OpenSet>(&json).unwrap(), set);
    }

    #[test]
    fn entries_stored_as_objects_are_still_read() {
        let json = r#"{"orders":[{"id":"a","check_after_ms":5},
            {"id":"b","check_after_ms":6,"queue":{"rev":3,"state":"queued","number":12,"drink":"flat-white"}}]}"#;
        let set: OpenSet = serde_json::from_str(json).unwrap();
        assert_eq!(set.orders[0], OpenEntry { id: "a".into(), check_after_ms: 5, queue: None });
        assert_eq!(set.orders[1], OpenEntry { id: "b".into(), check_after_ms: 6, queue: Some(queued()) });
    }

    #[test]
    fn malformed_entries_are_errors() {
        for bad in [r#"[["a"]]"#, r#"[["a",5,3,"queued"]]"#, r#"[["a",5,3,"queued",1,null,null,"x"]]"#, r#"["a"]"#] {
            assert!(serde_json::from_str::<Vec<OpenEntry>>(bad).is_err(), "{bad}");
        }
    }
}

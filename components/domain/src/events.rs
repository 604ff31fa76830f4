//! The shop's event log: every change appends one event, numbered by an
//! atomic counter and stored in a ring of [`KEPT`] keys, one event per key
//! (slot `id % KEPT`). The request that took an id is the only one to write
//! that event, so an append is one `increment` and one plain write: no read,
//! no swap, and the write replaces the event `KEPT` ids older, so the log
//! keeps the newest `KEPT` events in a fixed number of keys.
//!
//! Readers check each slot's id: an older one is an event not written yet
//! (or lost, see `LOST_AFTER_MS`), a newer one means the reader was lapped
//! and must reload. A writer stalled between its two calls while `KEPT`
//! other events are appended would overwrite a newer event, which readers
//! then treat as lost; no request stays that long between two calls.
//!
//! Keys owned here:
//! - `shop/{shop}/events/seq`          counter: the id of the newest event
//! - `shop/{shop}/events/{0..255}`     JSON `Event`: the event whose id % 256 is the slot

use crate::error::DomainError;
use crate::kv::{to_json, KeyValue, KvError};
use crate::shop::ShopId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// How many of the newest events are kept; a reader further back is told
/// to reload instead (`reset`).
pub const KEPT: u64 = 256;
/// A missing event this much older than a later one was lost by a writer that
/// died between numbering and storing it; readers go past it.
const LOST_AFTER_MS: i64 = 5_000;

pub mod kind {
    pub const NEW_ORDER: &str = "Validator.NewOrder";
    pub const SHOP_UNAVAILABLE: &str = "OrderProcessor.ShopUnavailable";
    pub const WORKFLOW_STARTED: &str = "OrderProcessor.WorkflowStarted";
    pub const WAITING_COMPLETION: &str = "OrderManager.WaitingCompletion";
    pub const MAKE_ORDER: &str = "OrderManager.MakeOrder";
    pub const ORDER_COMPLETED: &str = "OrderManager.OrderCompleted";
    pub const ORDER_CANCELLED: &str = "OrderManager.OrderCancelled";
    pub const ORDER_TIMEOUT: &str = "OrderProcessor.OrderTimeOut";
    pub const ORDER_FINISHED: &str = "OrderProcessor.orderFinished";
    pub const CONFIG_CHANGED: &str = "ConfigService.ConfigChanged";
    pub const DRINK_AVERAGE_TIME: &str = "OrderManager.DrinkAverageTime";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339 UTC.
    pub time: String,
    /// Milliseconds since the epoch (for ordering and gap detection).
    pub time_ms: i64,
    pub shop_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The customer an event concerns; never shown on the public board.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    pub data: Value,
}

fn seq_key(shop: &ShopId) -> String {
    format!("shop/{shop}/events/seq")
}

fn event_key(shop: &ShopId, id: u64) -> String {
    format!("shop/{shop}/events/{}", id % KEPT)
}

/// The keys of the log as earlier builds kept it (64 pages of 8 events),
/// for the sweeper to delete once.
pub fn legacy_keys(shop: &ShopId) -> Vec<String> {
    (0..64).map(|page| format!("shop/{shop}/events/page/{page}")).collect()
}

pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub order_id: Option<&'a str>,
    pub customer_id: Option<&'a str>,
    /// The event's `data`, as JSON already (see [`data`]).
    pub data: Box<RawValue>,
}

/// An event's `data` from any serializable value. Writers pass typed
/// values, not `serde_json::Value` trees: an order view becomes JSON in one
/// pass instead of a map of its fields first.
pub fn data(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("event data always serializes to JSON")
}

/// An event as a writer stores it (the same JSON as [`Event`]).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredEvent<'a> {
    id: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    time: &'a str,
    time_ms: i64,
    shop_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<&'a str>,
    data: &'a RawValue,
}

/// Appends one event; its id.
pub fn append(kv: &impl KeyValue, shop: &ShopId, now_ms: i64, new: NewEvent) -> Result<u64, DomainError> {
    let mut appended = append_all(kv, shop, now_ms, vec![new])?;
    Ok(appended.pop().expect("one event in, one out"))
}

/// Appends the events one change causes, in order: one `increment` takes
/// all their ids, one write stores them all (or none). Their ids.
pub fn append_all(kv: &impl KeyValue, shop: &ShopId, now_ms: i64, new: Vec<NewEvent>) -> Result<Vec<u64>, DomainError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let first = take_ids(kv, shop, new.len())?;
    // Each id is this request's alone: its slot holds an older event, no one else's new one.
    kv.set_many(&stored(shop, now_ms, first, &new))?;
    Ok((first..first + new.len() as u64).collect())
}

/// Stores `record` (a change's own new key and value) and the events the
/// change causes in one write, which saves the busiest flow a call. The
/// record is stored even if the events cannot be numbered: a lost event
/// must not lose the change (it is logged instead).
pub fn store_with(
    kv: &impl KeyValue,
    shop: &ShopId,
    now_ms: i64,
    record: (String, Vec<u8>),
    new: Vec<NewEvent>,
) -> Result<(), DomainError> {
    if new.is_empty() {
        return Ok(kv.set(&record.0, &record.1)?);
    }
    let first = match take_ids(kv, shop, new.len()) {
        Ok(first) => first,
        Err(e) => {
            eprintln!("events of shop {shop} lost: {e}");
            kv.set(&record.0, &record.1)?;
            return Ok(());
        }
    };
    let mut entries = vec![record];
    entries.extend(stored(shop, now_ms, first, &new));
    kv.set_many(&entries)?;
    Ok(())
}

/// Numbers `count` new events: the first one's id.
fn take_ids(kv: &impl KeyValue, shop: &ShopId, count: usize) -> Result<u64, DomainError> {
    let last = kv.increment(&seq_key(shop), count as i64)? as u64;
    Ok(last + 1 - count as u64)
}

/// The keys and values of events numbered from `first`.
fn stored(shop: &ShopId, now_ms: i64, first: u64, new: &[NewEvent]) -> Vec<(String, Vec<u8>)> {
    let time = crate::time::rfc3339(now_ms);
    new.iter()
        .zip(first..)
        .map(|(new, id)| {
            let stored = StoredEvent {
                id,
                kind: new.kind,
                time: &time,
                time_ms: now_ms,
                shop_id: shop.as_str(),
                order_id: new.order_id,
                customer_id: new.customer_id,
                data: &new.data,
            };
            (event_key(shop, id), to_json(&stored))
        })
        .collect()
}

/// The newest event id (0 before the first event). One small read.
pub fn head(kv: &impl KeyValue, shop: &ShopId) -> Result<u64, DomainError> {
    Ok(kv.counter(&seq_key(shop))?.max(0) as u64)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventBatch {
    pub events: Vec<Event>,
    /// Where to continue from (`after` for the next call).
    pub next: u64,
    /// The newest event id when read.
    pub head: u64,
    /// Events after `after` were trimmed: reload state, then continue from `next`.
    pub reset: bool,
}

/// Events with id > `after`, in order and without holes, at most `limit`
/// (one read of the counter, one of the events).
pub fn read_after(
    kv: &impl KeyValue,
    shop: &ShopId,
    after: u64,
    limit: usize,
    now_ms: i64,
) -> Result<EventBatch, DomainError> {
    let head = head(kv, shop)?;
    let mut batch = EventBatch { events: Vec::new(), next: after, head, reset: false };
    if after > head {
        // A position this log never reached (another store's, or one from
        // before the store was reset): the reader must reload, then follow from the head.
        batch.reset = true;
        batch.next = head;
        return Ok(batch);
    }
    if after == head || limit == 0 {
        return Ok(batch);
    }
    if head - after > KEPT {
        batch.reset = true;
        batch.next = head;
        return Ok(batch);
    }
    let ids: Vec<u64> = (after + 1..=head.min(after + limit as u64)).collect();
    let keys: Vec<String> = ids.iter().map(|id| event_key(shop, *id)).collect();
    let mut expected = after + 1;
    for ((id, key), value) in ids.into_iter().zip(&keys).zip(kv.get_many(&keys)?) {
        let Some(bytes) = value else { continue };
        let event: Event =
            serde_json::from_slice(&bytes).map_err(|e| KvError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        if event.id > id {
            // Lapped while we read: the reader must reload.
            return Ok(EventBatch { events: Vec::new(), next: head.max(event.id), head, reset: true });
        }
        if event.id < id {
            continue; // not written yet (or lost): a hole, decided on when a later event is found
        }
        if id != expected && now_ms - event.time_ms < LOST_AFTER_MS {
            break; // a hole that may still be filled: wait for it
        }
        expected = id + 1;
        batch.events.push(event);
    }
    batch.next = batch.events.last().map(|e| e.id).unwrap_or(after);
    Ok(batch)
}

/// The newest [`KEPT`] events.
pub fn read_newest(kv: &impl KeyValue, shop: &ShopId, now_ms: i64) -> Result<EventBatch, DomainError> {
    let after = head(kv, shop)?.saturating_sub(KEPT);
    read_after(kv, shop, after, KEPT as usize, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;
    use serde_json::json;

    fn setup() -> (MemoryKv, ShopId) {
        (MemoryKv::new(), ShopId::main())
    }

    fn add(kv: &MemoryKv, shop: &ShopId, n: u64, now_ms: i64) {
        for i in 0..n {
            let new = NewEvent {
                kind: kind::MAKE_ORDER,
                order_id: Some("o"),
                customer_id: None,
                data: data(&json!({ "i": i })),
            };
            append(kv, shop, now_ms, new).unwrap();
        }
    }

    fn ids(batch: &EventBatch) -> Vec<u64> {
        batch.events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn events_are_read_in_order_from_any_position() {
        let (kv, shop) = setup();
        add(&kv, &shop, 70, 1_000);
        let all = read_after(&kv, &shop, 0, 1000, 1_000).unwrap();
        assert_eq!(ids(&all), (1..=70).collect::<Vec<_>>());
        assert_eq!((all.next, all.head, all.reset), (70, 70, false));
        let tail = read_after(&kv, &shop, 50, 10, 1_000).unwrap();
        assert_eq!(ids(&tail), (51..=60).collect::<Vec<_>>());
        assert_eq!(tail.next, 60);
        assert!(read_after(&kv, &shop, 70, 10, 1_000).unwrap().events.is_empty());
        let event = &all.events[6];
        assert_eq!(
            (event.kind.as_str(), event.order_id.as_deref(), &event.data),
            (kind::MAKE_ORDER, Some("o"), &json!({ "i": 6 }))
        );
        assert_eq!(
            (event.time.as_str(), event.time_ms, event.shop_id.as_str()),
            ("1970-01-01T00:00:01.000Z", 1_000, "main")
        );
    }

    #[test]
    fn a_reader_further_back_than_the_kept_events_is_told_to_reload() {
        let (kv, shop) = setup();
        add(&kv, &shop, 600, 1_000);
        let old = read_after(&kv, &shop, 600 - KEPT - 1, 100, 1_000).unwrap();
        assert!(old.reset && old.events.is_empty());
        assert_eq!(old.next, 600);
        let kept = read_after(&kv, &shop, 600 - KEPT, 1000, 1_000).unwrap();
        assert!(!kept.reset);
        assert_eq!(ids(&kept), (600 - KEPT + 1..=600).collect::<Vec<_>>());
        let newest = read_newest(&kv, &shop, 1_000).unwrap();
        assert_eq!(ids(&newest), ids(&kept));
    }

    #[test]
    fn a_reader_ahead_of_the_log_is_told_to_reload_from_the_head() {
        let (kv, shop) = setup();
        add(&kv, &shop, 5, 1_000);
        let ahead = read_after(&kv, &shop, 9, 100, 1_000).unwrap();
        assert!(ahead.reset && ahead.events.is_empty(), "{ahead:?}");
        assert_eq!((ahead.next, ahead.head), (5, 5));
        // From the head it was sent to, it follows the log again.
        add(&kv, &shop, 1, 1_000);
        assert_eq!(ids(&read_after(&kv, &shop, ahead.next, 100, 1_000).unwrap()), [6]);
        let empty = MemoryKv::new();
        let fresh = read_after(&empty, &shop, 3, 100, 1_000).unwrap();
        assert_eq!((fresh.reset, fresh.next), (true, 0), "an empty log too");
        assert!(!read_after(&kv, &shop, 6, 100, 1_000).unwrap().reset, "at the head: nothing to say");
    }

    #[test]
    fn the_log_keeps_the_newest_events_in_a_fixed_number_of_keys() {
        let (kv, shop) = setup();
        add(&kv, &shop, 2 * KEPT + 276, 1_000);
        assert_eq!(kv.len() as u64, KEPT + 1, "the slots and the counter, however many events");
        let newest = read_newest(&kv, &shop, 1_000).unwrap();
        assert_eq!(ids(&newest), (KEPT + 277..=2 * KEPT + 276).collect::<Vec<_>>());
    }

    /// An event as a writer stores it, for tests that put one in a slot by hand.
    fn stored(shop: &ShopId, id: u64, now_ms: i64) -> Vec<u8> {
        let data = data(&json!({}));
        let time = crate::time::rfc3339(now_ms);
        to_json(&StoredEvent {
            id,
            kind: kind::MAKE_ORDER,
            time: &time,
            time_ms: now_ms,
            shop_id: shop.as_str(),
            order_id: None,
            customer_id: None,
            data: &data,
        })
    }

    #[test]
    fn a_reader_lapped_while_reading_is_told_to_reload() {
        let (kv, shop) = setup();
        add(&kv, &shop, 10, 1_000);
        // Between the reader's look at the counter and its read, KEPT more events landed.
        kv.set(&event_key(&shop, 5), &stored(&shop, 5 + KEPT, 1_000)).unwrap();
        let read = read_after(&kv, &shop, 0, 100, 1_000).unwrap();
        assert!(read.reset && read.events.is_empty());
        assert_eq!(read.next, 5 + KEPT);
    }

    #[test]
    fn a_slot_still_holding_the_older_event_is_a_hole() {
        let (kv, shop) = setup();
        add(&kv, &shop, KEPT + 2, 1_000);
        // Event KEPT + 3 is numbered, its writer dies before storing it; then one more lands.
        kv.increment("shop/main/events/seq", 1).unwrap();
        add(&kv, &shop, 1, 1_100);
        assert_eq!(ids(&read_after(&kv, &shop, KEPT, 10, 1_200).unwrap()), [KEPT + 1, KEPT + 2]);
        let later = read_after(&kv, &shop, KEPT + 2, 10, 1_100 + LOST_AFTER_MS).unwrap();
        assert_eq!(ids(&later), [KEPT + 4]);
    }

    #[test]
    fn a_hole_is_waited_for_then_skipped_once_it_is_old() {
        let (kv, shop) = setup();
        add(&kv, &shop, 2, 1_000);
        // A writer takes id 3 and dies before storing it.
        kv.increment("shop/main/events/seq", 1).unwrap();
        add(&kv, &shop, 1, 1_100);
        let waiting = read_after(&kv, &shop, 0, 10, 1_200).unwrap();
        assert_eq!(ids(&waiting), [1, 2]);
        assert_eq!(waiting.next, 2);
        let later = read_after(&kv, &shop, 2, 10, 1_100 + LOST_AFTER_MS).unwrap();
        assert_eq!(ids(&later), [4]);
    }

    #[test]
    fn events_of_one_change_get_consecutive_ids_and_are_written_together() {
        let (kv, shop) = setup();
        add(&kv, &shop, 3, 1_000);
        let new = |i: u64| NewEvent {
            kind: kind::ORDER_FINISHED,
            order_id: None,
            customer_id: None,
            data: data(&json!({ "i": i })),
        };
        let appended = append_all(&kv, &shop, 1_000, (0..3).map(new).collect()).unwrap();
        assert_eq!(appended, [4, 5, 6]);
        let read = read_after(&kv, &shop, 3, 10, 1_000).unwrap();
        assert_eq!(read.events.iter().map(|e| e.data["i"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn concurrent_appends_lose_no_event() {
        let (kv, shop) = setup();
        let kv = std::sync::Arc::new(kv);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (kv, shop) = (kv.clone(), shop.clone());
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let new = NewEvent {
                            kind: kind::NEW_ORDER,
                            order_id: None,
                            customer_id: None,
                            data: data(&json!({})),
                        };
                        append(&*kv, &shop, 1_000, new).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let all = read_after(&*kv, &shop, 0, 1000, 1_000).unwrap();
        assert_eq!(ids(&all), (1..=200).collect::<Vec<_>>());
    }

    #[test]
    fn an_unreadable_event_is_reported_not_skipped() {
        let (kv, shop) = setup();
        add(&kv, &shop, 2, 1_000);
        kv.set(&event_key(&shop, 2), b"{not json").unwrap();
        let err = read_after(&kv, &shop, 0, 10, 1_000).unwrap_err();
        assert!(err.to_string().contains("shop/main/events/2"), "{err}");
    }
}

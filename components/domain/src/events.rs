//! The shop's event log: every change appends one event, numbered by an
//! atomic counter. Events are packed 8 to a page in a ring of 64 page keys,
//! so the newest 504–512 events are kept in 64 keys, a reader at position p
//! reads one small counter and then only the page(s) after p.
//!
//! Keys owned here:
//! - `shop/{shop}/events/seq`         counter: the id of the newest event
//! - `shop/{shop}/events/page/{0..63}` JSON `Versioned<Page>`: events with id / 8 = page

use crate::atomic::{read, update, update_raw, Decision, Versioned};
use crate::error::DomainError;
use crate::json_bytes::split_at_byte;
use crate::kv::KeyValue;
use crate::shop::ShopId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Small pages keep an append cheap: it rewrites one page, about 8 KB at most.
pub const PAGE_SIZE: u64 = 8;
pub const PAGES: u64 = 64;
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// Which page of the log this ring slot holds now.
    pub page: i64,
    pub events: Vec<Event>,
}

fn seq_key(shop: &ShopId) -> String {
    format!("shop/{shop}/events/seq")
}

fn page_key(shop: &ShopId, page: u64) -> String {
    format!("shop/{shop}/events/page/{}", page % PAGES)
}

/// Creates the ring's keys for a new shop (compare-and-swap never creates keys).
/// Slot i starts as page i − PAGES, a lap that never held events.
pub fn create_log(kv: &impl KeyValue, shop: &ShopId) -> Result<(), DomainError> {
    for slot in 0..PAGES {
        let empty = Page { page: slot as i64 - PAGES as i64, events: Vec::new() };
        kv.set(&page_key(shop, slot), &Versioned::first(empty).to_bytes())?;
    }
    Ok(())
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

/// Appends one event: one `increment` numbers it, one CAS stores it in its
/// page. Its id.
pub fn append(kv: &impl KeyValue, shop: &ShopId, writer: &str, now_ms: i64, new: NewEvent) -> Result<u64, DomainError> {
    let mut appended = append_all(kv, shop, writer, now_ms, vec![new])?;
    Ok(appended.pop().expect("one event in, one out"))
}

/// Appends events that one change causes, in order: one `increment` takes
/// all their ids, and each page they land on is written once.
pub fn append_all(
    kv: &impl KeyValue,
    shop: &ShopId,
    writer: &str,
    now_ms: i64,
    new: Vec<NewEvent>,
) -> Result<Vec<u64>, DomainError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let last = kv.increment(&seq_key(shop), new.len() as i64)? as u64;
    let first = last + 1 - new.len() as u64;
    let time = crate::time::rfc3339(now_ms);
    let events: Vec<(u64, Box<RawValue>)> = new
        .iter()
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
            (id, data(&stored))
        })
        .collect();
    for page in first / PAGE_SIZE..=last / PAGE_SIZE {
        let on_page: Vec<(u64, Box<RawValue>)> =
            events.iter().filter(|(id, _)| id / PAGE_SIZE == page).cloned().collect();
        write_to_page(kv, shop, writer, page, on_page)?;
    }
    Ok(events.into_iter().map(|(id, _)| id).collect())
}

/// A page as the writer sees it: the events stay raw JSON and their ids are
/// listed beside them, so an append neither parses nor rebuilds the others.
#[derive(Serialize, Deserialize)]
struct RawPage {
    page: i64,
    /// The events' ids in order (readers ignore it; absent from pages written before it existed).
    #[serde(default)]
    ids: Vec<u64>,
    events: Vec<Box<RawValue>>,
}

impl RawPage {
    fn new(page: i64, events: Vec<(u64, Box<RawValue>)>) -> Self {
        let (ids, events) = events.into_iter().unzip();
        Self { page, ids, events }
    }

    fn ids(&self) -> Vec<u64> {
        if self.ids.len() == self.events.len() {
            self.ids.clone()
        } else {
            self.events.iter().map(|e| id_of(e)).collect()
        }
    }
}

#[derive(Deserialize)]
struct EventId {
    id: u64,
}

fn id_of(event: &RawValue) -> u64 {
    serde_json::from_str::<EventId>(event.get()).map(|e| e.id).unwrap_or(0)
}

fn write_to_page(
    kv: &impl KeyValue,
    shop: &ShopId,
    writer: &str,
    page: u64,
    raw: Vec<(u64, Box<RawValue>)>,
) -> Result<(), DomainError> {
    let key = page_key(shop, page);
    let page = page as i64;
    let missing = || DomainError::refused("shop_not_ready", 503, "the shop's event log is not set up yet; try again");
    if append_in_place(kv, &key, writer, page, &raw, missing)? {
        return Ok(());
    }
    update(kv, &key, writer, missing, |current: &RawPage| {
        Ok(if current.page == page {
            let stored = current.ids();
            let fresh: Vec<&(u64, Box<RawValue>)> = raw.iter().filter(|(id, _)| !stored.contains(id)).collect();
            if fresh.is_empty() {
                Decision::Keep(())
            } else {
                let mut merged: Vec<(u64, Box<RawValue>)> =
                    stored.into_iter().zip(current.events.iter().cloned()).collect();
                merged.extend(fresh.into_iter().cloned());
                merged.sort_by_key(|(id, _)| *id);
                Decision::Write(RawPage::new(page, merged), ())
            }
        } else if current.page < page {
            // The ring comes round: this slot's old page is dropped (trimmed).
            Decision::Write(RawPage::new(page, raw.clone()), ())
        } else {
            // Our page was already overwritten: 512 newer events exist. Nothing to keep.
            Decision::Keep(())
        })
    })
}

/// The usual append — events newer than every stored one, or the first of a
/// page whose ring slot still holds an older page — done on the stored JSON
/// ([`update_raw`]): the stored events are copied, never parsed (they are
/// most of what an append used to cost). False when the page is not in the
/// usual shape or the change is not the usual one: then the caller parses
/// the page.
fn append_in_place(
    kv: &impl KeyValue,
    key: &str,
    writer: &str,
    page: i64,
    raw: &[(u64, Box<RawValue>)],
    missing: impl Fn() -> DomainError,
) -> Result<bool, DomainError> {
    let appended = update_raw(kv, key, writer, missing, |data| {
        let stored = PageData::read(data)?;
        let newer = raw.iter().all(|(id, _)| stored.ids.last().is_none_or(|last| id > last));
        let kept = match stored.page.cmp(&page) {
            std::cmp::Ordering::Equal if newer => Some(&stored),
            std::cmp::Ordering::Less => None, // the ring comes round: the old page is dropped
            _ => return None,
        };
        Some(Decision::Write(page_data(page, kept, raw), ()))
    })?;
    Ok(appended.is_some())
}

/// A page's data as [`crate::kv::to_json`] writes a `RawPage`:
/// `{"page":P,"ids":[…],"events":[…]}`, read without parsing the events.
struct PageData<'a> {
    page: i64,
    ids: Vec<u64>,
    /// The events' JSON between the brackets.
    events: &'a [u8],
}

impl<'a> PageData<'a> {
    /// `None` for any other shape (such as pages written before ids were listed).
    fn read(data: &'a [u8]) -> Option<Self> {
        let rest = data.strip_prefix(br#"{"page":"#)?;
        let (page, rest) = split_at_byte(rest, b',')?;
        let rest = rest.strip_prefix(br#""ids":["#)?;
        let (ids, rest) = split_at_byte(rest, b']')?;
        let events = rest.strip_prefix(br#","events":["#)?.strip_suffix(b"]}")?;
        let ids: Vec<u64> = match ids {
            b"" => Vec::new(),
            ids => {
                ids.split(|b| *b == b',').map(|id| std::str::from_utf8(id).ok()?.parse().ok()).collect::<Option<_>>()?
            }
        };
        if ids.is_empty() != events.is_empty() {
            return None;
        }
        let page = std::str::from_utf8(page).ok()?.parse().ok()?;
        Some(Self { page, ids, events })
    }
}

/// The JSON [`crate::kv::to_json`] writes for a `RawPage` of page `page`
/// holding the events `kept` already had, then `added`.
fn page_data(page: i64, kept: Option<&PageData>, added: &[(u64, Box<RawValue>)]) -> Vec<u8> {
    let kept_events = kept.map_or(&b""[..], |k| k.events);
    let size = kept_events.len() + added.iter().map(|(_, e)| e.get().len() + 24).sum::<usize>() + 64;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(br#"{"page":"#);
    out.extend_from_slice(page.to_string().as_bytes());
    out.extend_from_slice(br#","ids":["#);
    let ids = kept.map_or(&[][..], |k| k.ids.as_slice()).iter().chain(added.iter().map(|(id, _)| id));
    for (n, id) in ids.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(id.to_string().as_bytes());
    }
    out.extend_from_slice(br#"],"events":["#);
    out.extend_from_slice(kept_events);
    for (n, (_, event)) in added.iter().enumerate() {
        if n > 0 || !kept_events.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(event.get().as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
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

/// Events with id > `after`, in order and without holes, at most `limit`.
pub fn read_after(
    kv: &impl KeyValue,
    shop: &ShopId,
    after: u64,
    limit: usize,
    now_ms: i64,
) -> Result<EventBatch, DomainError> {
    let head = head(kv, shop)?;
    let mut batch = EventBatch { events: Vec::new(), next: after, head, reset: false };
    if after >= head {
        return Ok(batch);
    }
    let oldest_page_kept = (head / PAGE_SIZE).saturating_sub(PAGES - 1);
    if (after + 1) / PAGE_SIZE < oldest_page_kept {
        batch.reset = true;
        batch.next = head;
        return Ok(batch);
    }
    let mut expected = after + 1;
    'pages: for page in (after + 1) / PAGE_SIZE..=head / PAGE_SIZE {
        let Some((record, _)) = read::<Page>(kv, &page_key(shop, page))? else { break };
        if record.data.page > page as i64 {
            // Lapped while we read: the reader must reload.
            batch.reset = true;
            batch.next = head;
            batch.events.clear();
            return Ok(batch);
        }
        if record.data.page < page as i64 {
            break; // not written yet
        }
        for event in record.data.events {
            if event.id < expected {
                continue;
            }
            if event.id != expected && now_ms - event.time_ms < LOST_AFTER_MS {
                break 'pages; // a hole that may still be filled: wait for it
            }
            expected = event.id + 1;
            batch.events.push(event);
            if batch.events.len() >= limit {
                break 'pages;
            }
        }
    }
    batch.next = batch.events.last().map(|e| e.id).unwrap_or(after);
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;
    use serde_json::json;

    fn setup() -> (MemoryKv, ShopId) {
        let kv = MemoryKv::new();
        let shop = ShopId::main();
        create_log(&kv, &shop).unwrap();
        (kv, shop)
    }

    fn add(kv: &MemoryKv, shop: &ShopId, n: u64, now_ms: i64) {
        for i in 0..n {
            let new = NewEvent {
                kind: kind::MAKE_ORDER,
                order_id: Some("o"),
                customer_id: None,
                data: data(&json!({ "i": i })),
            };
            append(kv, shop, "w", now_ms, new).unwrap();
        }
    }

    #[test]
    fn events_are_read_in_order_from_any_position() {
        let (kv, shop) = setup();
        add(&kv, &shop, 70, 1_000);
        let all = read_after(&kv, &shop, 0, 1000, 1_000).unwrap();
        assert_eq!(all.events.iter().map(|e| e.id).collect::<Vec<_>>(), (1..=70).collect::<Vec<_>>());
        assert_eq!((all.next, all.head, all.reset), (70, 70, false));
        let tail = read_after(&kv, &shop, 50, 10, 1_000).unwrap();
        assert_eq!(tail.events.iter().map(|e| e.id).collect::<Vec<_>>(), (51..=60).collect::<Vec<_>>());
        assert_eq!(tail.next, 60);
        assert!(read_after(&kv, &shop, 70, 10, 1_000).unwrap().events.is_empty());
    }

    #[test]
    fn only_the_newest_pages_are_kept_and_older_positions_get_reset() {
        let (kv, shop) = setup();
        add(&kv, &shop, 600, 1_000);
        assert_eq!(kv.len() as u64, PAGES + 1, "the pages and the counter, however many events");
        let old = read_after(&kv, &shop, 10, 100, 1_000).unwrap();
        assert!(old.reset);
        assert_eq!(old.next, 600);
        let kept = read_after(&kv, &shop, 600 - 400, 1000, 1_000).unwrap();
        assert!(!kept.reset);
        assert_eq!(kept.events.len(), 400);
    }

    #[test]
    fn a_hole_is_waited_for_then_skipped_once_it_is_old() {
        let (kv, shop) = setup();
        add(&kv, &shop, 2, 1_000);
        // A writer takes id 3 and dies before storing it.
        kv.increment("shop/main/events/seq", 1).unwrap();
        add(&kv, &shop, 1, 1_100);
        let waiting = read_after(&kv, &shop, 0, 10, 1_200).unwrap();
        assert_eq!(waiting.events.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
        let later = read_after(&kv, &shop, 2, 10, 1_100 + LOST_AFTER_MS).unwrap();
        assert_eq!(later.events.iter().map(|e| e.id).collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn events_of_one_change_get_consecutive_ids_even_across_a_page_boundary() {
        let (kv, shop) = setup();
        add(&kv, &shop, PAGE_SIZE - 2, 1_000);
        let new = |i: u64| NewEvent {
            kind: kind::ORDER_FINISHED,
            order_id: None,
            customer_id: None,
            data: data(&json!({ "i": i })),
        };
        let appended = append_all(&kv, &shop, "w", 1_000, (0..3).map(new).collect()).unwrap();
        assert_eq!(appended, [PAGE_SIZE - 1, PAGE_SIZE, PAGE_SIZE + 1]);
        let read = read_after(&kv, &shop, PAGE_SIZE - 2, 10, 1_000).unwrap();
        assert_eq!(read.events.iter().map(|e| e.data["i"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn concurrent_appends_lose_no_event() {
        let (kv, shop) = setup();
        let kv = std::sync::Arc::new(kv);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (kv, shop) = (kv.clone(), shop.clone());
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let new = NewEvent {
                            kind: kind::NEW_ORDER,
                            order_id: None,
                            customer_id: None,
                            data: data(&json!({})),
                        };
                        append(&*kv, &shop, &format!("w{t}"), 1_000, new).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let all = read_after(&*kv, &shop, 0, 1000, 1_000).unwrap();
        assert_eq!(all.events.iter().map(|e| e.id).collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>());
    }

    #[test]
    fn a_page_lists_its_event_ids_and_one_written_without_them_is_still_appended_to() {
        let (kv, shop) = setup();
        add(&kv, &shop, 2, 1_000);
        let key = page_key(&shop, 0);
        let (page, _) = read::<RawPage>(&kv, &key).unwrap().unwrap();
        assert_eq!(page.data.ids, [1, 2]);

        // A page as builds before the id list wrote it.
        let events: Vec<Event> = read::<Page>(&kv, &key).unwrap().unwrap().0.data.events;
        kv.set(&key, &Versioned::first(Page { page: 0, events }).to_bytes()).unwrap();
        add(&kv, &shop, 1, 1_000);
        let (page, _) = read::<RawPage>(&kv, &key).unwrap().unwrap();
        assert_eq!(page.data.ids, [1, 2, 3]);
        let all = read_after(&kv, &shop, 0, 10, 1_000).unwrap();
        assert_eq!(all.events.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn an_append_in_place_writes_exactly_what_serde_would() {
        let added = |ids: &[u64]| ids.iter().map(|id| (*id, data(&json!({ "id": id, "i": id })))).collect::<Vec<_>>();
        let page_json = |page: i64, ids: &[u64]| crate::kv::to_json(&RawPage::new(page, added(ids)));
        // Onto a page with events, onto an empty one, and over an older page in the ring slot.
        let stored = page_json(3, &[24, 25]);
        let read = PageData::read(&stored).unwrap();
        assert_eq!((read.page, read.ids.as_slice()), (3, &[24, 25][..]));
        assert_eq!(page_data(3, Some(&read), &added(&[26, 27])), page_json(3, &[24, 25, 26, 27]));
        let empty = page_json(3, &[]);
        let read = PageData::read(&empty).unwrap();
        assert_eq!(page_data(3, Some(&read), &added(&[24])), page_json(3, &[24]));
        assert_eq!(page_data(67, None, &added(&[536])), page_json(67, &[536]));
    }

    #[test]
    fn pages_of_another_shape_are_parsed_instead() {
        let (kv, shop) = setup();
        let data_of = |bytes: Vec<u8>| crate::json_bytes::split_versioned(&bytes).map(|r| r.data.to_vec());
        // A slot as the log's creation left it (no id list).
        let created = data_of(kv.get(&page_key(&shop, 0)).unwrap().unwrap()).unwrap();
        assert!(PageData::read(&created).is_none());
        assert!(PageData::read(b"{}").is_none());
        add(&kv, &shop, 3, 1_000);
        let written = data_of(kv.get(&page_key(&shop, 0)).unwrap().unwrap()).unwrap();
        assert!(PageData::read(&written).is_some(), "written in the usual shape");
    }

    /// A store that stores a swap but reports it failed once, like Spin's Redis provider can.
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
    fn an_append_that_landed_but_was_reported_failed_is_not_repeated() {
        let (kv, shop) = setup();
        add(&kv, &shop, 2, 1_000);
        let lying = LyingKv(kv, true.into());
        let new = NewEvent { kind: kind::MAKE_ORDER, order_id: None, customer_id: None, data: data(&json!({})) };
        append(&lying, &shop, "w", 1_000, new).unwrap();
        let (page, _) = read::<RawPage>(&lying.0, &page_key(&shop, 0)).unwrap().unwrap();
        assert_eq!(page.data.ids, [1, 2, 3], "stored once");
    }
}

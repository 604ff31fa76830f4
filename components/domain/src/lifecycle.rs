//! The order flows: redeem a code, choose a drink, barista actions, cancel,
//! timeouts, reads, and the sweep. Each decision that two requests could race
//! on is one `increment` or one compare-and-swap on one key.
//!
//! Keys owned here:
//! - `order/{id}`                        JSON `Versioned<Order>`
//! - `shop/{shop}/open`                  JSON `Versioned<OpenSet>`: the open orders (capacity) and their queue facts (see `open_set`)
//! - `shop/{shop}/customers/{0..15}`     JSON `Versioned<CustomerShard>`: per-customer open orders, today's count, codes used
//! - `shop/{shop}/finished`              JSON `Versioned<FinishedSet>`: orders finished in the last 15 minutes
//! - `shop/{shop}/board`                 JSON `CachedBoard`: the board as computed at an event head (derived; plain `set`)
//! - `shop/{shop}/day/{day}/number`      counter: the day's last order number
//! - `shop/{shop}/archive/{day}`         JSON `Versioned<[Order]>`: the day's finished orders (part 1)
//! - `shop/{shop}/archive/{day}/{n}`     JSON `Versioned<[Order]>`: part n ≥ 2 (see `parts`)
//! - `shop/{shop}/archive/{day}/parts`   counter: the archive's part numbers taken
//! - `shop/{shop}/archive/{day}/init`    counter of earlier versions (deleted with the day)
//! - `shop/{shop}/refusals/{minute}`     counter: refusal events logged in that minute

use crate::atomic::{
    decode, read, read_for_update, read_many, update, update_from_rev, update_keeping, update_raw, Decision, Snapshot,
    Versioned,
};
use crate::auth::keyed_digest;
use crate::error::DomainError;
use crate::events::{self, kind, NewEvent};
use crate::kv::KeyValue;
use crate::metrics;
pub use crate::open_set::{OpenEntry, OpenSet};
use crate::order::{
    format_order_id, order_home, resolve_choice, Canceller, DrinkChoice, Order, OrderHome, OrderState, OrderView,
    QueueFacts, QueueNote, Shown, ID_HASH_CHARS,
};
use crate::parts::Parts;
use crate::qr;
use crate::shop::{list_shops, load_ready_config, load_ready_drink, load_ready_shop, ShopConfig, ShopId};
use crate::time::business_day;
use data_encoding::BASE32_NOPAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

pub const CUSTOMER_SHARDS: u64 = 16;
/// Finished orders stay readable as their own key this long, then move to the day's archive.
pub const ARCHIVE_AFTER_MS: i64 = 15 * 60 * 1000;
/// Archives older than this many days are deleted by the sweeper.
pub const ARCHIVE_DAYS_KEPT: i64 = 7;

/// What every flow needs from the outside world.
pub struct Ctx<'a, K> {
    pub kv: &'a K,
    pub now_ms: i64,
    /// This request's id: marks its writes (see `atomic`).
    pub writer: &'a str,
    pub signing_key: &'a [u8],
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerShard {
    pub customers: BTreeMap<String, CustomerEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerEntry {
    pub open: Vec<String>,
    pub day: String,
    pub today: u32,
    /// Today's redeemed code slots and the order each made (idempotent redemption).
    pub codes: BTreeMap<u64, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinishedSet {
    pub orders: Vec<FinishedEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedEntry {
    pub id: String,
    pub finished_ms: i64,
    pub day: String,
}

fn order_key(id: &str) -> String {
    format!("order/{id}")
}

fn shard_key(shop: &ShopId, customer: &str) -> String {
    let digest = keyed_digest(b"shard", &[customer]);
    format!("shop/{shop}/customers/{}", digest[0] as u64 % CUSTOMER_SHARDS)
}

fn number_key(shop: &ShopId, day: &str) -> String {
    format!("shop/{shop}/day/{day}/number")
}

fn archive_key(shop: &ShopId, day: &str) -> String {
    format!("shop/{shop}/archive/{day}")
}

/// A day's archive, in parts (see [`crate::parts`]): part 1 at [`archive_key`].
fn archive_parts(shop: &ShopId, day: &str) -> Parts {
    Parts::new(archive_key(shop, day))
}

/// A part of a day's archive takes orders up to about this size, then
/// another part does (Fermyon Cloud stores values of at most 1 MB; a day
/// of 1,000 orders fits in one part).
const ARCHIVE_PART_BYTES: usize = 768 * 1024;

/// Every order in a day's archive (an order archived twice, by a sweep that
/// died before it deleted the order's own key, is listed once).
fn archived_orders<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, day: &str) -> Result<Vec<Order>, DomainError> {
    let mut seen = std::collections::BTreeSet::new();
    let parts = archive_parts(shop, day).read_all::<Vec<Order>>(ctx.kv)?;
    Ok(parts.into_iter().flatten().filter(|o| seen.insert(o.id.clone())).collect())
}

/// The keys a shop's queue needs before its first order.
pub fn create_queue(kv: &impl KeyValue, shop: &ShopId) -> Result<(), DomainError> {
    kv.set(&shop.key("open"), &Versioned::first(OpenSet::default()).to_bytes())?;
    kv.set(&shop.key("finished"), &Versioned::first(FinishedSet::default()).to_bytes())?;
    for shard in 0..CUSTOMER_SHARDS {
        kv.set(&format!("shop/{shop}/customers/{shard}"), &Versioned::first(CustomerShard::default()).to_bytes())?;
    }
    Ok(())
}

fn shop_missing(shop: &ShopId) -> impl Fn() -> DomainError + '_ {
    move || DomainError::refused("shop_not_ready", 503, format!("shop `{shop}` is not set up; try again"))
}

fn order_not_found() -> DomainError {
    DomainError::not_found("order_not_found", "there is no such order")
}

/// Order ids: `{shop}.{yyyymmdd}.{hash}` (see [`crate::order::order_home`]),
/// the hash being 26 base32 characters (130 bits) of HMAC(shop, slot,
/// customer), so a customer redeeming the same code twice names the same
/// order. The shop and the business day it was started in say where the
/// order is: a lookup reads its own key and, once it is finished, that day's
/// archive of that shop, and nothing else.
pub fn order_id(signing_key: &[u8], shop: &ShopId, day: &str, slot: u64, customer: &str) -> String {
    let digest = keyed_digest(signing_key, &["order", shop.as_str(), &slot.to_string(), customer]);
    let hash = BASE32_NOPAD.encode(&digest)[..ID_HASH_CHARS].to_ascii_lowercase();
    format_order_id(shop, day, &hash)
}

/// The day whose archive keeps a finished order: the day its id names (the
/// one it was started in), else (ids of earlier versions) its own day.
fn archive_day(order: &Order) -> String {
    match order_home(&order.id) {
        Some(OrderHome::Shop { day, .. }) => day,
        _ => order.day.clone(),
    }
}

fn today(config: &ShopConfig, now_ms: i64) -> String {
    let start = crate::shop::parse_day_start(&config.day_starts_at).unwrap_or(300);
    business_day(now_ms, config.utc_offset_minutes, start)
}

fn emit<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, kind: &str, order: Option<&Order>, data: Box<RawValue>) {
    emit_all(ctx, shop, vec![(kind, order, data)]);
}

/// The `data` of the events orders cause, as typed values (see [`events::data`]);
/// fields in alphabetical order, as JSON objects have always listed them here.
mod event_data {
    use crate::order::{Canceller, TimeoutCause};
    use serde::Serialize;
    use serde_json::value::RawValue;

    #[derive(Serialize)]
    pub struct Order<'a> {
        pub order: &'a RawValue,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct NewOrder<'a> {
        pub order: &'a RawValue,
        /// The code's time slot: the count is that code's, not necessarily the one on screen now.
        pub slot: u64,
        pub tokens_left: u32,
    }

    #[derive(Serialize)]
    pub struct Started<'a> {
        pub deadline: Option<&'a str>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Made<'a> {
        /// `null` when the barista released the order.
        pub barista_id: Option<&'a str>,
        pub order: &'a RawValue,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Cancelled<'a> {
        pub cancelled_by: Option<Canceller>,
        pub order: &'a RawValue,
    }

    #[derive(Serialize)]
    pub struct TimedOut<'a> {
        pub cause: Option<TimeoutCause>,
        pub order: &'a RawValue,
    }

    #[derive(Serialize)]
    pub struct Finished<'a> {
        pub state: &'a str,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct DrinkAverage<'a> {
        pub average_seconds: u64,
        pub drink: &'a str,
        pub drink_id: &'a str,
    }

    #[derive(Serialize)]
    pub struct Refusal<'a> {
        pub reason: &'a str,
    }
}

/// The events one change causes, appended together (one id range, one page write).
fn emit_all<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, events: Vec<(&str, Option<&Order>, Box<RawValue>)>) {
    let new = events
        .into_iter()
        .map(|(kind, order, data)| NewEvent {
            kind,
            order_id: order.map(|o| o.id.as_str()),
            customer_id: order.map(|o| o.customer_id.as_str()),
            data,
        })
        .collect();
    // The change itself is already stored; a lost event must not undo it or fail the request.
    let _ = events::append_all(ctx.kv, shop, ctx.now_ms, new);
}

/// Counts a change in the day's metrics; the figures after it. The change
/// itself is stored already: a metrics failure is logged, not turned into a
/// failed request.
fn count<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, day: &str, what: metrics::Happened) -> Option<metrics::DayMetrics> {
    metrics::record(ctx.kv, shop, day, ctx.writer, what)
        .map_err(|e| eprintln!("metrics of shop {shop} not updated: {e}"))
        .ok()
}

/// Refusal events a shop logs in one minute at most. The log keeps the
/// newest [`events::KEPT`] events: without a limit, a client asking again
/// and again to be refused would push the shop's real events out of it.
pub const REFUSAL_EVENTS_PER_MINUTE: i64 = 10;

/// The counter of refusal events logged in one minute (`minute` since the epoch).
fn refusals_key(shop: &ShopId, minute: i64) -> String {
    format!("shop/{shop}/refusals/{minute}")
}

/// A refusal concerns one customer (their stream shows it) but no order.
/// Only the first [`REFUSAL_EVENTS_PER_MINUTE`] of a minute are logged (one
/// `increment` decides, so parallel refusals cannot log more); the refused
/// request is told why all the same.
fn emit_refusal<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, customer: &str, reason: &str) {
    match ctx.kv.increment(&refusals_key(shop, ctx.now_ms.div_euclid(60_000)), 1) {
        Ok(n) if n <= REFUSAL_EVENTS_PER_MINUTE => {}
        Ok(_) => return,
        Err(e) => {
            eprintln!("refusal in shop {shop} not logged: {e}");
            return;
        }
    }
    let data = events::data(&event_data::Refusal { reason });
    append_event(
        ctx,
        shop,
        NewEvent { kind: kind::SHOP_UNAVAILABLE, order_id: None, customer_id: Some(customer), data },
    );
}

fn append_event<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, new: NewEvent) {
    // The change itself is already stored; a lost event must not undo it or fail the request.
    let _ = events::append(ctx.kv, shop, ctx.now_ms, new);
}

pub fn read_order<K: KeyValue>(ctx: &Ctx<K>, id: &str) -> Result<Option<Order>, DomainError> {
    Ok(read::<Order>(ctx.kv, &order_key(id))?.map(|(record, _)| record.data))
}

/// An order read to be changed next (see [`update_from_rev`]). Something
/// that is not an order id names no order: nothing is read for it.
fn read_order_for_update<K: KeyValue>(ctx: &Ctx<K>, id: &str) -> Result<Snapshot<Order>, DomainError> {
    order_home(id).ok_or_else(order_not_found)?;
    read_for_update::<Order>(ctx.kv, &order_key(id))?.ok_or_else(order_not_found)
}

// ---------------------------------------------------------------- redeem

#[derive(Debug, Clone, PartialEq)]
pub struct Redeemed {
    pub order: Shown,
    /// False when the same customer redeemed the same code before.
    pub created: bool,
    pub tokens_left: Option<u32>,
}

enum ShardOutcome {
    Reserved,
    /// The customer redeemed this code before: the order it made.
    Existing(String),
    /// The shop is closed (a repeat is still answered: it is `Existing`).
    Closed,
}

/// Redeems a QR code for a customer: every gate of DESIGN §3, atomically
/// with taking the code's token, the capacity slot and the customer's slot.
pub fn redeem<K: KeyValue>(
    ctx: &Ctx<K>,
    shop: &ShopId,
    customer: &str,
    code: &str,
    display_name: Option<String>,
    robot: bool,
) -> Result<Redeemed, DomainError> {
    let config = &load_ready_config(ctx.kv, shop)?;
    let slot = qr::redeemable_slot(ctx.signing_key, shop, config, code, ctx.now_ms / 1000)?;
    let day = today(config, ctx.now_ms);
    let id = order_id(ctx.signing_key, shop, &day, slot, customer);
    // The customer's shard knows every code they redeemed that is still
    // redeemable: a repeat is answered from it, without a read of its own.
    match reserve_customer(ctx, shop, config, customer, &id, slot, &day)? {
        ShardOutcome::Existing(existing) => return redeemed_before(ctx, &existing),
        ShardOutcome::Closed => {
            emit_refusal(ctx, shop, customer, "shop_closed");
            return Err(DomainError::refused("shop_closed", 409, "the shop is closed right now; come back soon"));
        }
        ShardOutcome::Reserved => {}
    }
    let tokens_left = match qr::take_token(ctx.kv, shop, slot, config.drinks_per_code) {
        Ok(left) => left,
        Err(e) => {
            release_customer(ctx, shop, customer, &id, Some(slot))?;
            return Err(e);
        }
    };
    if let Err(e) = take_capacity(ctx, shop, config, &id) {
        qr::return_token(ctx.kv, shop, slot)?;
        release_customer(ctx, shop, customer, &id, Some(slot))?;
        if e.code() == "shop_full" {
            emit_refusal(ctx, shop, customer, "shop_full");
        }
        return Err(e);
    }

    let order = Order {
        id: id.clone(),
        shop_id: shop.to_string(),
        customer_id: customer.to_string(),
        display_name,
        day,
        slot,
        number: None,
        state: OrderState::AwaitingDrink,
        drink: None,
        created_ms: ctx.now_ms,
        submitted_ms: None,
        claimed_ms: None,
        finished_ms: None,
        deadline_ms: Some(ctx.now_ms + config.customer_timeout_seconds as i64 * 1000),
        barista_id: None,
        cancelled_by: None,
        timeout_cause: None,
        robot,
    };
    let view = Shown::new(order.view(ctx.now_ms, None));
    let new_event =
        |kind, data| NewEvent { kind, order_id: Some(&order.id), customer_id: Some(&order.customer_id), data };
    let events = vec![
        new_event(kind::NEW_ORDER, events::data(&event_data::NewOrder { order: &view.json, slot, tokens_left })),
        // The order itself is in the event before; this one says until when the customer may choose.
        new_event(kind::WORKFLOW_STARTED, events::data(&event_data::Started { deadline: view.deadline.as_deref() })),
    ];
    // The id was elected in the customer's shard: no one else writes this key now.
    let record = (order_key(&id), Versioned::first(&order).to_bytes());
    events::store_with(ctx.kv, shop, ctx.now_ms, record, events)?;
    if let Err(e) = metrics::started(ctx.kv, shop, &order.day) {
        eprintln!("metrics of shop {shop} not updated: {e}");
    }
    Ok(Redeemed { order: view, created: true, tokens_left: Some(tokens_left) })
}

/// A repeated redemption: the order the first one made (or is making).
fn redeemed_before<K: KeyValue>(ctx: &Ctx<K>, id: &str) -> Result<Redeemed, DomainError> {
    match read_order(ctx, id)? {
        Some(order) => Ok(Redeemed { order: Shown::new(view_of(ctx, &order)?), created: false, tokens_left: None }),
        None => Err(DomainError::conflict("redemption_in_progress", "this code is being redeemed already; try again")),
    }
}

fn reserve_customer<K: KeyValue>(
    ctx: &Ctx<K>,
    shop: &ShopId,
    config: &ShopConfig,
    customer: &str,
    id: &str,
    slot: u64,
    day: &str,
) -> Result<ShardOutcome, DomainError> {
    let live_from = qr::oldest_redeemable(config, ctx.now_ms / 1000);
    for attempt in 0..2 {
        let outcome =
            update(ctx.kv, &shard_key(shop, customer), ctx.writer, shop_missing(shop), |shard: &CustomerShard| {
                let mut next = shard.clone();
                prune_shard(&mut next, day, live_from);
                let entry = next
                    .customers
                    .entry(customer.to_string())
                    .or_insert_with(|| CustomerEntry { day: day.to_string(), ..CustomerEntry::default() });
                if let Some(existing) = entry.codes.get(&slot) {
                    return Ok(Decision::Keep(Ok(ShardOutcome::Existing(existing.clone()))));
                }
                if !config.open {
                    return Ok(Decision::Keep(Ok(ShardOutcome::Closed)));
                }
                if entry.open.len() >= config.max_open_orders_per_customer as usize {
                    return Ok(Decision::Keep(Err(entry.open.clone())));
                }
                if config.max_drinks_per_customer_per_day > 0 && entry.today >= config.max_drinks_per_customer_per_day {
                    return Err(DomainError::refused(
                        "daily_limit",
                        409,
                        format!("you have had {} drinks today, the most this shop serves one person", entry.today),
                    ));
                }
                entry.open.push(id.to_string());
                entry.today += 1;
                entry.codes.insert(slot, id.to_string());
                Ok(Decision::Write(next, Ok(ShardOutcome::Reserved)))
            })?;
        match outcome {
            Ok(outcome) => return Ok(outcome),
            // Orders listed as open may have ended unseen (a timeout no one has written yet):
            // settle them, then decide once more.
            Err(open) if attempt == 0 => {
                let mut freed = false;
                for other in &open {
                    freed |= settle_if_done(ctx, shop, other)?;
                }
                if !freed {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Err(DomainError::refused(
        "customer_limit",
        409,
        format!("you already have {} open order(s): wait for it to be ready", config.max_open_orders_per_customer),
    ))
}

/// Starts a new day for the customers of a shard whose day is over: their
/// count restarts, and their codes are forgotten except those still
/// redeemable (slot `live_from` or later), so that a code redeemed just
/// before the day changed still answers its order, not a second one with
/// the same id. Customers left with nothing are dropped.
fn prune_shard(shard: &mut CustomerShard, day: &str, live_from: qr::Slot) {
    for entry in shard.customers.values_mut() {
        if entry.day != day {
            entry.day = day.to_string();
            entry.today = 0;
            entry.codes.retain(|slot, _| *slot >= live_from);
        }
    }
    shard.customers.retain(|_, e| !e.open.is_empty() || e.today > 0 || !e.codes.is_empty());
}

/// Undoes the customer's reservation (a later gate refused) or drops a finished order.
fn release_customer<K: KeyValue>(
    ctx: &Ctx<K>,
    shop: &ShopId,
    customer: &str,
    id: &str,
    refused_slot: Option<u64>,
) -> Result<(), DomainError> {
    update(ctx.kv, &shard_key(shop, customer), ctx.writer, shop_missing(shop), |shard: &CustomerShard| {
        let Some(entry) = shard.customers.get(customer) else { return Ok(Decision::Keep(())) };
        let listed = entry.open.iter().any(|o| o == id);
        let reserved = refused_slot.is_some_and(|s| entry.codes.get(&s).is_some_and(|o| o == id));
        if !listed && !reserved {
            return Ok(Decision::Keep(()));
        }
        let mut next = shard.clone();
        let entry = next.customers.get_mut(customer).expect("checked above");
        entry.open.retain(|o| o != id);
        if reserved {
            // Refused: the drink was never had and the code may be tried again.
            entry.codes.remove(&refused_slot.unwrap_or_default());
            entry.today = entry.today.saturating_sub(1);
        }
        Ok(Decision::Write(next, ()))
    })
}

fn take_capacity<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, config: &ShopConfig, id: &str) -> Result<(), DomainError> {
    let max = config.max_open_orders as usize;
    let check_after_ms = ctx.now_ms + config.customer_timeout_seconds as i64 * 1000;
    // The order is written next, as its first revision.
    let queue = QueueNote { rev: 1, state: OrderState::AwaitingDrink, number: None, drink: None, barista: None };
    let entry = OpenEntry { id: id.to_string(), check_after_ms, queue: Some(queue) };
    if add_open_entry(ctx, shop, &entry, max)? {
        return Ok(());
    }
    let mut open_now = 0;
    for attempt in 0..2 {
        // Full: the entries whose order may have timed out, to settle before one more try.
        let outcome = update(ctx.kv, &shop.key("open"), ctx.writer, shop_missing(shop), |set: &OpenSet| {
            if set.orders.iter().any(|e| e.id == id) {
                return Ok(Decision::Keep(Ok(())));
            }
            if set.orders.len() >= max {
                let due = set.orders.iter().filter(|e| e.check_after_ms <= ctx.now_ms).map(|e| e.id.clone());
                return Ok(Decision::Keep(Err((set.orders.len(), due.collect::<Vec<_>>()))));
            }
            let mut next = set.clone();
            next.orders.push(entry.clone());
            Ok(Decision::Write(next, Ok(())))
        })?;
        let (open, due) = match outcome {
            Ok(()) => return Ok(()),
            Err(full) => full,
        };
        open_now = open;
        if attempt > 0 || due.is_empty() {
            break;
        }
        for other in &due {
            settle_if_done(ctx, shop, other)?;
        }
    }
    Err(DomainError::refused(
        "shop_full",
        409,
        format!("the baristas have {open_now} orders to make: try again in a few minutes"),
    ))
}

/// The usual capacity decision — room left, the order not listed yet — on
/// the stored JSON ([`update_raw`]): the new entry is added after the others,
/// which are counted and searched by their bytes, not parsed. True when the
/// entry is listed (added now, or before); false when the set is full (or
/// not in the usual shape): then the caller parses it.
fn add_open_entry<K: KeyValue>(
    ctx: &Ctx<K>,
    shop: &ShopId,
    entry: &OpenEntry,
    max: usize,
) -> Result<bool, DomainError> {
    let listed = crate::open_set::entry_prefix(&entry.id);
    let added = update_raw(ctx.kv, &shop.key("open"), ctx.writer, shop_missing(shop), |data| {
        let (array, entries) = crate::open_set::raw_entries(data)?;
        if entries.iter().any(|e| e.starts_with(&listed)) {
            return Some(Decision::Keep(()));
        }
        if entries.len() >= max {
            return None;
        }
        let inner = &array[1..array.len() - 1];
        let comma = if inner.is_empty() { &b""[..] } else { b"," };
        let next = [&br#"{"orders":["#[..], inner, comma, &crate::kv::to_json(entry), b"]}"].concat();
        Some(Decision::Write(next, ()))
    })?;
    Ok(added.is_some())
}

// ---------------------------------------------------------------- drink

/// The customer chooses their drink: the order joins the queue with the
/// day's next number. Repeating the same request answers the same order.
pub fn submit_drink<K: KeyValue>(
    ctx: &Ctx<K>,
    id: &str,
    customer: &str,
    choice: &DrinkChoice,
) -> Result<Shown, DomainError> {
    let snapshot = read_order_for_update(ctx, id)?;
    own(&snapshot.0.data, customer)?;
    let shop = ShopId::parse(&snapshot.0.data.shop_id)?;
    let (config, on_menu) = load_ready_drink(ctx.kv, &shop, &choice.drink_id)?;
    let drink = resolve_choice(on_menu.as_slice(), choice)?;
    let barista_timeout = config.barista_timeout_seconds;
    let day = today(&config, ctx.now_ms);
    let (config_day_start, utc_offset) = (config.day_starts_at.clone(), config.utc_offset_minutes);

    // Step 1: the transition, without a number yet (exactly one request wins it).
    let (_, _, wrote) =
        update_keeping(ctx.kv, &order_key(id), ctx.writer, Some(snapshot), order_not_found, |o: &Order| {
            if o.state == OrderState::Queued && o.drink.as_ref() == Some(&drink) && o.number.is_some() {
                return Ok(Decision::Keep(())); // a retry of a submission that landed
            }
            let next = o.submit(drink.clone(), 0, ctx.now_ms, barista_timeout)?;
            Ok(Decision::Write(Order { number: None, day: day.clone(), ..next }, ()))
        })?;
    let Some(wrote) = wrote else {
        return Ok(Shown::new(view_of(ctx, &read_order(ctx, id)?.ok_or_else(order_not_found)?)?));
    };
    // Step 2: the number, starting from the record step 1 wrote. Only the
    // winner of step 1 takes one, so numbers have no gaps.
    let number = ctx.kv.increment(&number_key(&shop, &day), 1)? as u32;
    let (numbered, rev) =
        update_from_rev(ctx.kv, &order_key(id), ctx.writer, Some(wrote), order_not_found, |o: &Order| {
            Ok(if o.number.is_some() {
                Decision::Keep(o.clone())
            } else {
                Decision::Write(o.keep_number(number), o.keep_number(number))
            })
        })?;
    let open = note(ctx, &shop, &numbered, rev)?;
    let start = crate::shop::parse_day_start(&config_day_start).unwrap_or(300);
    let hour = crate::time::business_hour(ctx.now_ms, utc_offset, start);
    let recent = metrics::record_submitted(ctx.kv, &shop, &numbered.day, ctx.writer, &numbered, hour)
        .map_err(|e| eprintln!("metrics of shop {shop} not updated: {e}"))
        .ok();
    let view = Shown::new(view_in(ctx, &numbered, &open, recent)?);
    emit(ctx, &shop, kind::WAITING_COMPLETION, Some(&numbered), events::data(&event_data::Order { order: &view.json }));
    Ok(view)
}

fn own(order: &Order, customer: &str) -> Result<(), DomainError> {
    if order.customer_id == customer {
        Ok(())
    } else {
        Err(DomainError::Forbidden { code: "not_your_order", message: "this order belongs to someone else".into() })
    }
}

// ---------------------------------------------------------------- barista and cancel

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffAction {
    Claim,
    Release,
    Complete,
    Cancel,
}

impl StaffAction {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "claim" => Some(Self::Claim),
            "release" => Some(Self::Release),
            "complete" => Some(Self::Complete),
            "cancel" => Some(Self::Cancel),
            _ => None,
        }
    }
}

/// A barista (or admin) acts on an order. Two baristas racing: one CAS wins,
/// the other gets 409 and nothing changes.
pub fn staff_action<K: KeyValue>(
    ctx: &Ctx<K>,
    id: &str,
    action: StaffAction,
    staff_id: &str,
    is_admin: bool,
) -> Result<Shown, DomainError> {
    let first = read_settled_for_update(ctx, id, None)?;
    let canceller = if is_admin { Canceller::Admin } else { Canceller::Barista };
    let (next, rev) = update_from_rev(ctx.kv, &order_key(id), ctx.writer, first, order_not_found, |o: &Order| {
        let next = match action {
            StaffAction::Claim => o.claim(staff_id, ctx.now_ms)?,
            StaffAction::Release => o.release(staff_id, is_admin, ctx.now_ms)?,
            StaffAction::Complete => o.complete(staff_id, is_admin, ctx.now_ms)?,
            StaffAction::Cancel => o.cancel(canceller, ctx.now_ms)?,
        };
        Ok(Decision::Write(next.clone(), next))
    })?;
    after_change(ctx, &next, rev)
}

/// The customer cancels their own order.
pub fn cancel_by_customer<K: KeyValue>(ctx: &Ctx<K>, id: &str, customer: &str) -> Result<Shown, DomainError> {
    let first = read_settled_for_update(ctx, id, Some(customer))?;
    let (next, rev) = update_from_rev(ctx.kv, &order_key(id), ctx.writer, first, order_not_found, |o: &Order| {
        let next = o.cancel(Canceller::Customer, ctx.now_ms)?;
        Ok(Decision::Write(next.clone(), next))
    })?;
    after_change(ctx, &next, rev)
}

/// Reads an order to act on it (checking its owner, if given), first settling
/// it if it has ended unseen. The snapshot to decide on, unless settling
/// changed the order.
fn read_settled_for_update<K: KeyValue>(
    ctx: &Ctx<K>,
    id: &str,
    owner: Option<&str>,
) -> Result<Option<Snapshot<Order>>, DomainError> {
    let snapshot = read_order_for_update(ctx, id)?;
    if let Some(customer) = owner {
        own(&snapshot.0.data, customer)?;
    }
    let order = &snapshot.0.data;
    if order.state.is_open() && order.expired(ctx.now_ms).is_none() {
        return Ok(Some(snapshot));
    }
    settle_if_done(ctx, &ShopId::parse(&order.shop_id)?, id)?;
    Ok(None)
}

/// Events and bookkeeping after a transition this request won (`rev` is
/// the order's revision it wrote).
fn after_change<K: KeyValue>(ctx: &Ctx<K>, order: &Order, rev: u64) -> Result<Shown, DomainError> {
    let shop = ShopId::parse(&order.shop_id)?;
    let view = Shown::new(if order.state.is_open() {
        let open = note(ctx, &shop, order, rev)?;
        view_in(ctx, order, &open, None)?
    } else {
        order.view(ctx.now_ms, None)
    });
    match order.state {
        OrderState::InProgress => {
            let data = event_data::Made { barista_id: order.barista_id.as_deref(), order: &view.json };
            emit(ctx, &shop, kind::MAKE_ORDER, Some(order), events::data(&data))
        }
        OrderState::Queued => {
            let data = event_data::Made { barista_id: None, order: &view.json };
            emit(ctx, &shop, kind::MAKE_ORDER, Some(order), events::data(&data))
        }
        OrderState::Completed | OrderState::Cancelled | OrderState::TimedOut => {
            finish(ctx, &shop, order)?;
            let figures = count(ctx, &shop, &order.day, metrics::Happened::Finished(order));
            let (ended, data) = match order.state {
                OrderState::Completed => {
                    (kind::ORDER_COMPLETED, events::data(&event_data::Order { order: &view.json }))
                }
                OrderState::Cancelled => {
                    let data = event_data::Cancelled { cancelled_by: order.cancelled_by, order: &view.json };
                    (kind::ORDER_CANCELLED, events::data(&data))
                }
                _ => {
                    let data = event_data::TimedOut { cause: order.timeout_cause, order: &view.json };
                    (kind::ORDER_TIMEOUT, events::data(&data))
                }
            };
            let mut appended = vec![
                (ended, Some(order), data),
                (
                    kind::ORDER_FINISHED,
                    Some(order),
                    events::data(&event_data::Finished { state: order.state.as_str() }),
                ),
            ];
            if let (OrderState::Completed, Some(drink), Some(figures)) = (order.state, &order.drink, figures) {
                if let Some(average) = metrics::drink_average(&figures, &drink.id) {
                    let data =
                        event_data::DrinkAverage { average_seconds: average, drink: &drink.name, drink_id: &drink.id };
                    appended.push((kind::DRINK_AVERAGE_TIME, None, events::data(&data)));
                }
            }
            emit_all(ctx, &shop, appended);
        }
        OrderState::AwaitingDrink => {}
    }
    Ok(view)
}

/// Frees what a finished order held: its capacity slot and its customer's
/// slot; lists it as recently finished. Each step is idempotent, so the sweeper
/// can repeat it for an order whose finisher died half-way.
fn finish<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, order: &Order) -> Result<(), DomainError> {
    update(ctx.kv, &shop.key("open"), ctx.writer, shop_missing(shop), |set: &OpenSet| {
        Ok(if set.orders.iter().any(|e| e.id == order.id) {
            let mut next = set.clone();
            next.orders.retain(|e| e.id != order.id);
            Decision::Write(next, ())
        } else {
            Decision::Keep(())
        })
    })?;
    release_customer(ctx, shop, &order.customer_id, &order.id, None)?;
    update(ctx.kv, &shop.key("finished"), ctx.writer, shop_missing(shop), |set: &FinishedSet| {
        Ok(if set.orders.iter().any(|e| e.id == order.id) {
            Decision::Keep(())
        } else {
            let mut next = set.clone();
            next.orders.push(FinishedEntry {
                id: order.id.clone(),
                finished_ms: order.finished_ms.unwrap_or(ctx.now_ms),
                day: order.day.clone(),
            });
            Decision::Write(next, ())
        })
    })
}

/// If the order has ended unseen (its deadline passed), writes the timeout
/// down with its events; if it ended but was not cleaned up, cleans up.
/// Returns whether the order is over.
pub fn settle_if_done<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, id: &str) -> Result<bool, DomainError> {
    let Some(order) = read_order(ctx, id)? else { return Ok(true) };
    if order.state.is_open() && order.expired(ctx.now_ms).is_none() {
        return Ok(false);
    }
    let (expired, rev) = update_from_rev(ctx.kv, &order_key(id), ctx.writer, None, order_not_found, |o: &Order| {
        Ok(match o.expire(ctx.now_ms) {
            Some(next) => Decision::Write(next.clone(), Some(next)),
            None => Decision::Keep(None),
        })
    })?;
    match expired {
        Some(timed_out) => {
            after_change(ctx, &timed_out, rev)?;
        }
        None => {
            if let Some(current) = read_order(ctx, id)? {
                if current.state.is_open() {
                    return Ok(false);
                }
                finish(ctx, shop, &current)?;
            }
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------- reads

/// One order as a customer or barista sees it, timeouts applied. Finding
/// it reads its own key, then (once it is finished) the archive of the shop
/// and day its id names; an id of an earlier version, its own key only;
/// something that is not an order id, nothing.
pub fn get_order<K: KeyValue>(ctx: &Ctx<K>, id: &str, customer: Option<&str>) -> Result<OrderView, DomainError> {
    let home = order_home(id).ok_or_else(order_not_found)?;
    let order = match (read_order(ctx, id)?, home) {
        (Some(order), _) => order,
        (None, OrderHome::Shop { shop, day }) => find_archived(ctx, &shop, &day, id)?.ok_or_else(order_not_found)?,
        (None, OrderHome::Unknown) => return Err(order_not_found()),
    };
    if let Some(customer) = customer {
        own(&order, customer)?;
    }
    if order.expired(ctx.now_ms).is_some() {
        settle_if_done(ctx, &ShopId::parse(&order.shop_id)?, id)?;
        return view_of(ctx, &read_order(ctx, id)?.unwrap_or(order));
    }
    view_of(ctx, &order)
}

/// The view of an order with its place in the queue.
fn view_of<K: KeyValue>(ctx: &Ctx<K>, order: &Order) -> Result<OrderView, DomainError> {
    if order.at(ctx.now_ms).state != OrderState::Queued {
        return Ok(order.at(ctx.now_ms).view(ctx.now_ms, None));
    }
    let open = open_queue(ctx, &ShopId::parse(&order.shop_id)?)?;
    view_in(ctx, order, &open, None)
}

/// [`view_of`] in a queue the caller has already (`open`: the shop's open
/// orders), with the day's figures if it has those too.
fn view_in<K: KeyValue>(
    ctx: &Ctx<K>,
    order: &Order,
    open: &[QueueFacts],
    recent: Option<metrics::RecentByDrink>,
) -> Result<OrderView, DomainError> {
    let current = order.at(ctx.now_ms);
    if current.state != OrderState::Queued {
        return Ok(current.view(ctx.now_ms, None));
    }
    let shop = ShopId::parse(&order.shop_id)?;
    let ahead: Vec<&QueueFacts> = open
        .iter()
        .filter(|o| o.state_at(ctx.now_ms) == OrderState::Queued && o.number.is_some() && o.number < order.number)
        .collect();
    let recent = match recent {
        Some(recent) => recent,
        None => metrics::recent_by_drink(ctx.kv, &shop, &order.day)?,
    };
    let pace = Pace::of(recent, open, ctx.now_ms);
    let mine = current.drink.as_ref().map(|d| d.id.as_str());
    let work: u64 = ahead.iter().map(|o| pace.seconds_for(o.drink_id())).sum::<u64>() + pace.seconds_for(mine);
    let mut view = current.view(ctx.now_ms, Some(ahead.len() as u32 + 1));
    view.estimated_wait_seconds = Some(pace.spread(work));
    Ok(view)
}

/// How fast the baristas are going: per drink, from the day's recent completions.
struct Pace {
    recent: metrics::RecentByDrink,
    /// Baristas making drinks now (at least one).
    baristas: u64,
}

impl Pace {
    fn of(recent: metrics::RecentByDrink, open: &[QueueFacts], now_ms: i64) -> Self {
        let mut making: Vec<&str> = open
            .iter()
            .filter(|o| o.state_at(now_ms) == OrderState::InProgress)
            .filter_map(|o| o.barista_id.as_deref())
            .collect();
        making.sort_unstable();
        making.dedup();
        Self { recent, baristas: making.len().max(1) as u64 }
    }

    /// Seconds of barista work an order needs: its drink's recent average, else
    /// the average over all drinks, else a default.
    fn seconds_for(&self, drink: Option<&str>) -> u64 {
        drink
            .and_then(|d| metrics::recent_average(&self.recent, d))
            .or_else(|| self.overall())
            .unwrap_or((DEFAULT_SERVICE_MS / 1000) as u64)
    }

    fn overall(&self) -> Option<u64> {
        let all: Vec<u64> = self.recent.values().flatten().copied().collect();
        (!all.is_empty()).then(|| all.iter().sum::<u64>() / all.len() as u64)
    }

    /// Work shared by the baristas at the counter.
    fn spread(&self, work_seconds: u64) -> u32 {
        (work_seconds / self.baristas) as u32
    }
}

/// Every order of a business day (archived, recently finished and open), by number then creation.
pub fn day_orders<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, day: &str) -> Result<Vec<Order>, DomainError> {
    let mut found: BTreeMap<String, Order> = BTreeMap::new();
    // An order started the day before and submitted on this day is in the day before's archive.
    for archived in [previous_day(day), Some(day.to_string())].into_iter().flatten() {
        let orders = archived_orders(ctx, shop, &archived)?;
        found.extend(orders.into_iter().filter(|o| o.day == day).map(|o| (o.id.clone(), o)));
    }
    let (open, _) = read::<OpenSet>(ctx.kv, &shop.key("open"))?.ok_or_else(shop_missing(shop))?;
    let (finished, _) = read::<FinishedSet>(ctx.kv, &shop.key("finished"))?.ok_or_else(shop_missing(shop))?;
    let live = open.data.orders.into_iter().map(|e| e.id).chain(finished.data.orders.into_iter().map(|e| e.id));
    for order in read_orders(ctx, live)? {
        if order.day == day {
            found.insert(order.id.clone(), order.at(ctx.now_ms));
        }
    }
    let mut orders: Vec<Order> = found.into_values().collect();
    orders.sort_by_key(|o| (o.number.is_none(), o.number, o.created_ms));
    Ok(orders)
}

/// The number of orders open in a shop now (the Prometheus gauge).
pub fn open_count<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId) -> Result<u64, DomainError> {
    Ok(open_queue(ctx, shop)?.iter().filter(|o| o.state_at(ctx.now_ms).is_open()).count() as u64)
}

/// The business day of a shop now.
pub fn current_day<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId) -> Result<String, DomainError> {
    Ok(today(&load_ready_config(ctx.kv, shop)?, ctx.now_ms))
}

/// Orders by id, read in one batch (ids without a record are skipped).
fn read_orders<K: KeyValue>(ctx: &Ctx<K>, ids: impl Iterator<Item = String>) -> Result<Vec<Order>, DomainError> {
    let keys: Vec<String> = ids.map(|id| order_key(&id)).collect();
    Ok(read_many::<Order>(ctx.kv, &keys)?.into_iter().flatten().map(|(record, _)| record.data).collect())
}

/// What the queue needs of the shop's open orders.
fn open_queue<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId) -> Result<Vec<QueueFacts>, DomainError> {
    let (open, _) = read::<OpenSet>(ctx.kv, &shop.key("open"))?.ok_or_else(shop_missing(shop))?;
    queue_facts(ctx, &open.data)
}

/// The queue facts of every entry of `open`: as noted in the entry, or read
/// from the order for an entry without a note (one batch).
fn queue_facts<K: KeyValue>(ctx: &Ctx<K>, open: &OpenSet) -> Result<Vec<QueueFacts>, DomainError> {
    let mut facts = Vec::with_capacity(open.orders.len());
    let mut unnoted = Vec::new();
    for entry in &open.orders {
        match &entry.queue {
            Some(note) => facts.push(QueueFacts::noted(note, entry.check_after_ms)),
            None => unnoted.push(order_key(&entry.id)),
        }
    }
    facts.extend(read_many::<QueueFacts>(ctx.kv, &unnoted)?.into_iter().flatten().map(|(record, _)| record.data));
    Ok(facts)
}

/// Notes an open order's queue facts (and deadline) in its entry, right
/// after a change wrote revision `rev` of it; a note of an older revision
/// than the entry's is dropped. The shop's queue as it stands after.
fn note<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, order: &Order, rev: u64) -> Result<Vec<QueueFacts>, DomainError> {
    let noted = |entry: &OpenEntry| {
        let newer = entry.queue.as_ref().is_none_or(|q| q.rev < rev);
        newer.then(|| OpenEntry {
            id: order.id.clone(),
            check_after_ms: order.deadline_ms.unwrap_or(entry.check_after_ms),
            queue: Some(QueueNote::of(order, rev)),
        })
    };
    // Usually on the stored JSON: only this order's entry is parsed and replaced.
    let listed = crate::open_set::entry_prefix(&order.id);
    let in_place = update_raw(ctx.kv, &shop.key("open"), ctx.writer, shop_missing(shop), |data| {
        let (_, entries) = crate::open_set::raw_entries(data)?;
        let Some(mine) = entries.iter().find(|e| e.starts_with(&listed)) else {
            return Some(Decision::Keep(data.to_vec())); // finished meanwhile
        };
        let entry: OpenEntry = serde_json::from_slice(mine).ok()?;
        let Some(next) = noted(&entry) else { return Some(Decision::Keep(data.to_vec())) };
        let at = mine.as_ptr() as usize - data.as_ptr() as usize;
        let next = [&data[..at], &crate::kv::to_json(&next), &data[at + mine.len()..]].concat();
        Some(Decision::Write(next.clone(), next))
    })?;
    let open: OpenSet = match in_place {
        Some(data) => serde_json::from_slice(&data)
            .map_err(|e| crate::kv::KvError::Corrupt { key: shop.key("open"), reason: e.to_string() })?,
        None => update(ctx.kv, &shop.key("open"), ctx.writer, shop_missing(shop), |set: &OpenSet| {
            let Some(at) = set.orders.iter().position(|e| e.id == order.id) else {
                return Ok(Decision::Keep(set.clone())); // finished meanwhile
            };
            let Some(next) = noted(&set.orders[at]) else { return Ok(Decision::Keep(set.clone())) };
            let mut set = set.clone();
            set.orders[at] = next;
            Ok(Decision::Write(set.clone(), set))
        })?,
    };
    queue_facts(ctx, &open)
}

/// A shop's orders in the given states as they stand now, oldest first.
/// Timeouts found on the way are written down (lazy enforcement).
fn shop_orders<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, states: &[OrderState]) -> Result<Vec<Order>, DomainError> {
    let keys = [shop.key("open"), shop.key("finished")];
    let mut sets = ctx.kv.get_many(&keys)?.into_iter();
    let (Some(Some(open)), Some(Some(finished))) = (sets.next(), sets.next()) else {
        // Not a shop (404), one still being set up (503), or `main` seeded
        // just now by this read: a shop that is ready but was not a moment
        // ago has no orders yet.
        load_ready_shop(ctx.kv, shop)?;
        return Ok(Vec::new());
    };
    let mut open: Versioned<OpenSet> = decode(&keys[0], &open)?;
    let due: Vec<&str> =
        open.data.orders.iter().filter(|e| e.check_after_ms <= ctx.now_ms).map(|e| e.id.as_str()).collect();
    if !due.is_empty() {
        for id in due {
            settle_if_done(ctx, shop, id)?;
        }
        open = read::<OpenSet>(ctx.kv, &keys[0])?.ok_or_else(shop_missing(shop))?.0;
    }
    let mut ids: Vec<String> = open.data.orders.into_iter().map(|e| e.id).collect();
    if states.iter().any(|s| !s.is_open()) {
        let finished: Versioned<FinishedSet> = decode(&keys[1], &finished)?;
        ids.extend(finished.data.orders.into_iter().map(|e| e.id));
    }
    let mut orders: Vec<Order> = read_orders(ctx, ids.into_iter())?.into_iter().map(|o| o.at(ctx.now_ms)).collect();
    orders.retain(|o| states.contains(&o.state));
    orders.sort_by_key(|o| (o.submitted_ms.unwrap_or(o.created_ms), o.created_ms));
    Ok(orders)
}

/// A shop's orders in the given states, oldest first, with queue positions.
/// Timeouts found on the way are written down (lazy enforcement).
pub fn list_orders<K: KeyValue>(
    ctx: &Ctx<K>,
    shop: &ShopId,
    states: &[OrderState],
) -> Result<Vec<OrderView>, DomainError> {
    let mut position = 0;
    Ok(shop_orders(ctx, shop, states)?
        .iter()
        .map(|o| {
            let queued = o.state == OrderState::Queued;
            position += queued as u32;
            o.view(ctx.now_ms, queued.then_some(position))
        })
        .collect())
}

/// A customer's orders of today and yesterday in every shop, newest first.
pub fn my_orders<K: KeyValue>(ctx: &Ctx<K>, customer: &str) -> Result<Vec<OrderView>, DomainError> {
    let mut found: BTreeMap<String, Order> = BTreeMap::new();
    for shop in list_shops(ctx.kv)? {
        let Some((shard, _)) = read::<CustomerShard>(ctx.kv, &shard_key(&shop, customer))? else { continue };
        if let Some(entry) = shard.data.customers.get(customer) {
            for id in entry.open.iter().chain(entry.codes.values()) {
                if let Some(order) = read_order(ctx, id)? {
                    found.insert(order.id.clone(), order);
                }
            }
        }
        for day in recent_days(ctx.now_ms, 2) {
            for order in archived_orders(ctx, &shop, &day)?.into_iter().filter(|o| o.customer_id == customer) {
                found.entry(order.id.clone()).or_insert(order);
            }
        }
    }
    let mut orders: Vec<Order> = found.into_values().collect();
    orders.sort_by_key(|o| std::cmp::Reverse(o.created_ms));
    orders.iter().map(|o| view_of(ctx, o)).collect()
}

/// UTC dates of the last `n` days (archives are keyed by business day, which
/// is within a day of the UTC date).
fn recent_days(now_ms: i64, n: i64) -> Vec<String> {
    (-1..n).map(|back| business_day(now_ms - back * 86_400_000, 0, 0)).collect()
}

/// The day before a `YYYY-MM-DD` day.
fn previous_day(day: &str) -> Option<String> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(date.pred_opt()?.format("%Y-%m-%d").to_string())
}

/// A finished order in the archive of the shop and day its id names: part 1,
/// then (not there) the counter of parts and the other parts, if any.
///
/// Reading a counter creates it (`increment(key, 0)`), so the counter is
/// read only for a day that has an archive (part 1), or else for a day
/// archives may still be kept for, of a shop that exists (its config, one
/// read): ids anyone can make up never make keys of their own.
fn find_archived<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, day: &str, id: &str) -> Result<Option<Order>, DomainError> {
    let parts = archive_parts(shop, day);
    match read::<Vec<Order>>(ctx.kv, &parts.key(1))? {
        Some((first, _)) => {
            if let Some(order) = first.data.into_iter().find(|o| o.id == id) {
                return Ok(Some(order));
            }
        }
        // No part 1: most likely no archive at all (its writer may also have died before writing it).
        None => {
            let kept_from = business_day(ctx.now_ms - (ARCHIVE_DAYS_KEPT + 3) * 86_400_000, 0, 0);
            let kept_to = business_day(ctx.now_ms + 2 * 86_400_000, 0, 0);
            if day < kept_from.as_str() || day > kept_to.as_str() || ctx.kv.get(&shop.key("config"))?.is_none() {
                return Ok(None);
            }
        }
    }
    Ok(parts.read_rest::<Vec<Order>>(ctx.kv)?.into_iter().flatten().find(|o| o.id == id))
}

// ---------------------------------------------------------------- journey

/// One step of an order's journey.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JourneyStep {
    /// The event's id in the shop's log; `None` for a step rebuilt from the
    /// order's timestamps because its event was already trimmed from the log.
    pub id: Option<u64>,
    #[serde(rename = "type")]
    pub kind: String,
    pub time: String,
    pub data: serde_json::Value,
}

/// `GET /api/orders/:id/journey`: every event of the order, in order.
pub fn journey<K: KeyValue>(ctx: &Ctx<K>, id: &str, customer: Option<&str>) -> Result<Vec<JourneyStep>, DomainError> {
    let order = get_order(ctx, id, customer)?;
    let shop = ShopId::parse(&order.shop_id)?;
    let logged = events::read_newest(ctx.kv, &shop, ctx.now_ms)?;
    let mut steps: Vec<JourneyStep> = logged
        .events
        .into_iter()
        .filter(|e| e.order_id.as_deref() == Some(id))
        .map(|e| JourneyStep { id: Some(e.id), kind: e.kind, time: e.time, data: e.data })
        .collect();
    if steps.first().is_none_or(|s| s.kind != kind::NEW_ORDER) {
        // The start was trimmed from the log: rebuild the steps the order's own timestamps prove.
        let rebuilt = [
            (Some(&order.created_at), kind::NEW_ORDER),
            (order.submitted_at.as_ref(), kind::WAITING_COMPLETION),
            (order.claimed_at.as_ref(), kind::MAKE_ORDER),
            (
                order.finished_at.as_ref(),
                match order.state {
                    OrderState::Completed => kind::ORDER_COMPLETED,
                    OrderState::Cancelled => kind::ORDER_CANCELLED,
                    _ => kind::ORDER_TIMEOUT,
                },
            ),
        ];
        let known: Vec<String> = steps.iter().map(|s| s.kind.clone()).collect();
        let mut missing: Vec<JourneyStep> = rebuilt
            .into_iter()
            .filter_map(|(time, kind)| time.map(|t| (t.clone(), kind)))
            .filter(|(_, kind)| !known.iter().any(|k| k == kind))
            .map(|(time, kind)| JourneyStep {
                id: None,
                kind: kind.to_string(),
                time,
                data: json!({ "rebuilt": true }),
            })
            .collect();
        missing.append(&mut steps);
        missing.sort_by(|a, b| a.time.cmp(&b.time));
        steps = missing;
    }
    Ok(steps)
}

// ---------------------------------------------------------------- board and wait

/// Ready orders stay on the public board this long.
pub const READY_ON_BOARD_MS: i64 = 10 * 60 * 1000;
/// Assumed minutes of barista work per order before any order was completed.
const DEFAULT_SERVICE_MS: i64 = 90_000;

/// One line of the public board: no customer id, no code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardItem {
    pub number: Option<u32>,
    pub drink: Option<String>,
    pub display_name: Option<String>,
    pub state: OrderState,
    /// When the order entered this state's column.
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Board {
    pub preparing: Vec<BoardItem>,
    pub ready: Vec<BoardItem>,
}

/// The board as computed at an event head (`shop/{shop}/board`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CachedBoard {
    head: u64,
    valid_until_ms: i64,
    board: Board,
}

/// A [`CachedBoard`] as read back: the board stays JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CachedBoardRaw<'a> {
    head: u64,
    valid_until_ms: i64,
    #[serde(borrow)]
    board: &'a RawValue,
}

/// The longest a computed board is served without recomputing (so that a
/// change whose event was lost still shows within this time).
const BOARD_CACHE_MS: i64 = 30_000;

/// `GET /api/shops/:shop/board`: what the big screen shows.
///
/// Every change the board shows appends an event, so a board computed at
/// event head `h` stays right while the head is still `h` and no deadline
/// or ready-time has passed. Screens and phones read the board far more
/// often than it changes: a read is then one counter and one small value
/// instead of every order, and the cached board's JSON is answered as it is
/// stored (not parsed). The cached value is derived, so a plain `set` (last
/// writer wins) is safe: readers check the head before using it.
pub fn board_json<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId) -> Result<Vec<u8>, DomainError> {
    let (head, cached) = cached_board(ctx.kv, shop, ctx.now_ms)?;
    if let Some(board) = cached {
        return Ok(board);
    }
    let (board, valid_until_ms) = compute_board(ctx, shop)?;
    let cached = CachedBoard { head, valid_until_ms, board };
    if let Err(e) = ctx.kv.set(&shop.key("board"), &crate::kv::to_json(&cached)) {
        eprintln!("board of shop {shop} not cached: {e}");
    }
    Ok(crate::kv::to_json(&cached.board))
}

/// The event head, and the cached board's JSON if it is still right then
/// (see [`board_json`]): what a board read costs when nothing changed, with
/// no writer id, signing key or parsing needed.
pub fn cached_board(kv: &impl KeyValue, shop: &ShopId, now_ms: i64) -> Result<(u64, Option<Vec<u8>>), DomainError> {
    let head = events::head(kv, shop)?;
    let Some(bytes) = kv.get(&shop.key("board"))? else { return Ok((head, None)) };
    let right = |(at, until, board): (u64, i64, &[u8])| (at == head && now_ms < until).then(|| board.to_vec());
    let cached = match split_cached_board(&bytes) {
        Some(parts) => right(parts),
        None => serde_json::from_slice::<CachedBoardRaw>(&bytes)
            .ok()
            .and_then(|c| right((c.head, c.valid_until_ms, c.board.get().as_bytes()))),
    };
    Ok((head, cached))
}

/// `{"head":H,"validUntilMs":V,"board":…}` as `to_json` writes a
/// [`CachedBoard`]: its head, its end of validity and the board's JSON.
fn split_cached_board(bytes: &[u8]) -> Option<(u64, i64, &[u8])> {
    use crate::json_bytes::split_at_byte;
    let rest = bytes.strip_prefix(br#"{"head":"#)?;
    let (head, rest) = split_at_byte(rest, b',')?;
    let rest = rest.strip_prefix(br#""validUntilMs":"#)?;
    let (until, rest) = split_at_byte(rest, b',')?;
    let board = rest.strip_prefix(br#""board":"#)?.strip_suffix(b"}")?;
    let head = std::str::from_utf8(head).ok()?.parse().ok()?;
    let until = std::str::from_utf8(until).ok()?.parse().ok()?;
    Some((head, until, board))
}

/// The board as [`board_json`] answers it, parsed (for tests).
#[cfg(test)]
pub fn board<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId) -> Result<Board, DomainError> {
    let raw = board_json(ctx, shop)?;
    Ok(serde_json::from_slice(&raw).expect("a board read back as written"))
}

/// The board from the orders themselves, and until when it holds if no event comes.
fn compute_board<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId) -> Result<(Board, i64), DomainError> {
    let mut valid_until_ms = ctx.now_ms + BOARD_CACHE_MS;
    let item = |o: &Order, since_ms: i64| BoardItem {
        number: o.number,
        drink: o.drink.as_ref().map(|d| d.name.clone()),
        display_name: o.display_name.clone(),
        state: o.state,
        since: crate::time::rfc3339(since_ms),
    };
    let orders = shop_orders(ctx, shop, &[OrderState::Queued, OrderState::InProgress, OrderState::Completed])?;
    let mut board = Board { preparing: Vec::new(), ready: Vec::new() };
    for order in orders {
        match order.state {
            OrderState::Queued | OrderState::InProgress => {
                // At its deadline it times out and leaves the board.
                valid_until_ms = valid_until_ms.min(order.deadline_ms.unwrap_or(i64::MAX));
                board.preparing.push(item(&order, order.submitted_ms.unwrap_or(order.created_ms)))
            }
            OrderState::Completed => {
                let done = order.finished_ms.unwrap_or(ctx.now_ms);
                if ctx.now_ms - done < READY_ON_BOARD_MS {
                    valid_until_ms = valid_until_ms.min(done + READY_ON_BOARD_MS);
                    board.ready.push(item(&order, done));
                }
            }
            _ => {}
        }
    }
    board.ready.sort_by(|a, b| b.since.cmp(&a.since));
    Ok((board, valid_until_ms))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitEstimate {
    /// Orders waiting for or being made by a barista.
    pub queued: u32,
    /// How long a new order would wait, from the recent pace of the baristas.
    pub estimated_wait_seconds: u32,
    /// Average barista time per order (claim to completion) over the day's recent completions.
    pub seconds_per_order: u32,
}

/// `GET /api/shops/:shop/wait`: the queue and the wait a new order can expect,
/// from the recent pace per drink of the orders already waiting.
pub fn wait_estimate<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId) -> Result<WaitEstimate, DomainError> {
    let view = load_ready_shop(ctx.kv, shop)?;
    let open = open_queue(ctx, shop)?;
    let waiting: Vec<&QueueFacts> =
        open.iter().filter(|o| matches!(o.state_at(ctx.now_ms), OrderState::Queued | OrderState::InProgress)).collect();
    let recent = metrics::recent_by_drink(ctx.kv, shop, &today(&view.config, ctx.now_ms))?;
    let pace = Pace::of(recent, &open, ctx.now_ms);
    let per_order = pace.overall().unwrap_or((DEFAULT_SERVICE_MS / 1000) as u64);
    let work: u64 = waiting.iter().map(|o| pace.seconds_for(o.drink_id())).sum::<u64>() + per_order;
    Ok(WaitEstimate {
        queued: waiting.len() as u32,
        estimated_wait_seconds: pace.spread(work),
        seconds_per_order: per_order as u32,
    })
}

// ---------------------------------------------------------------- sweep

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub timed_out: u32,
    pub trimmed: u32,
    /// Shops (and `auth`, for the sign-in keys) a step of this sweep failed
    /// for; logged, and tried again by the next sweep.
    pub failed: Vec<String>,
}

/// Persists timeouts, repairs half-finished orders, folds old finished orders
/// into the day's archive and deletes what the key budget has no room for.
///
/// A sweep's cost follows what is due, not what is stored: it reads only the
/// open orders whose entry says a deadline may have passed (every open order
/// when `full`), and the cleanups of past slots and days run once per slot
/// and per day.
///
/// Shops are swept independently, and so are the steps of one shop: a step
/// that fails (a store error, a record that cannot be read) is logged and
/// listed in the report's `failed`, and the others go on. Every step is
/// idempotent and needs nothing a failed one left half-done, so the next
/// sweep finishes it.
pub fn sweep<K: KeyValue>(ctx: &Ctx<K>, full: bool) -> Result<SweepReport, DomainError> {
    let mut report = SweepReport::default();
    for shop in list_shops(ctx.kv)? {
        if !sweep_shop(ctx, &shop, full, &mut report) {
            report.failed.push(shop.to_string());
        }
    }
    match crate::auth::sweep(ctx.kv, ctx.now_ms / 1000) {
        Ok(trimmed) => report.trimmed += trimmed,
        Err(e) => {
            eprintln!("sweep of the sign-in keys failed: {e}");
            report.failed.push("auth".into());
        }
    }
    Ok(report)
}

/// One shop's sweep, each step on its own; false if any step failed.
fn sweep_shop<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, full: bool, report: &mut SweepReport) -> bool {
    let mut ok = true;
    let mut failed = |step: &str, e: DomainError| {
        eprintln!("sweep of shop {shop}: {step} failed: {e}");
        ok = false;
    };
    let config = match load_ready_config(ctx.kv, shop) {
        Ok(config) => config,
        // Being set up (or listed before it was): nothing to sweep yet.
        Err(e) if matches!(e.code(), "shop_not_ready" | "shop_not_found") => return true,
        Err(e) => {
            failed("reading its config", e);
            return false;
        }
    };
    match read::<OpenSet>(ctx.kv, &shop.key("open")) {
        Ok(Some((open, _))) => {
            for entry in open.data.orders.iter().filter(|e| full || e.check_after_ms <= ctx.now_ms) {
                match check_due(ctx, shop, entry) {
                    Ok(timed_out) => report.timed_out += timed_out as u32,
                    Err(e) => failed(&format!("checking order {}", entry.id), e),
                }
            }
        }
        Ok(None) => {}
        Err(e) => failed("reading its open orders", e),
    }
    match archive_finished(ctx, shop) {
        Ok(trimmed) => report.trimmed += trimmed,
        Err(e) => failed("archiving finished orders", e),
    }
    match drop_old_keys(ctx, shop, &config) {
        Ok(trimmed) => report.trimmed += trimmed,
        Err(e) => failed("deleting old keys", e),
    }
    ok
}

/// An open order whose entry is due: writes down its timeout (true), or
/// cleans up after a finisher that died half-way, or repairs what a
/// submitter that died half-way left (no number yet), and notes its queue
/// facts and deadline anew (so it is not due again before its deadline).
fn check_due<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, entry: &OpenEntry) -> Result<bool, DomainError> {
    let Some((before, _)) = read::<Order>(ctx.kv, &order_key(&entry.id))? else { return Ok(false) };
    let was_open = before.data.state.is_open();
    if settle_if_done(ctx, shop, &entry.id)? {
        return Ok(was_open);
    }
    let order = before.data;
    if order.submitted_ms.is_some() && order.number.is_none() {
        return number_orphan(ctx, shop, &order);
    }
    let stale =
        entry.queue.as_ref().is_none_or(|q| q.rev < before.rev) || order.deadline_ms > Some(entry.check_after_ms);
    if stale {
        note(ctx, shop, &order, before.rev)?;
    }
    Ok(false)
}

/// A submission whose request died between its two steps gets its number now.
fn number_orphan<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, order: &Order) -> Result<bool, DomainError> {
    let number = ctx.kv.increment(&number_key(shop, &order.day), 1)? as u32;
    let (numbered, rev) =
        update_from_rev(ctx.kv, &order_key(&order.id), ctx.writer, None, order_not_found, |o: &Order| {
            Ok(if o.number.is_some() {
                Decision::Keep(None)
            } else {
                Decision::Write(o.keep_number(number), Some(o.keep_number(number)))
            })
        })?;
    if let Some(order) = numbered {
        let open = note(ctx, shop, &order, rev)?;
        let view = Shown::new(view_in(ctx, &order, &open, None)?);
        emit(ctx, shop, kind::WAITING_COMPLETION, Some(&order), events::data(&event_data::Order { order: &view.json }));
    }
    Ok(false)
}

fn archive_finished<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId) -> Result<u32, DomainError> {
    let Some((finished, _)) = read::<FinishedSet>(ctx.kv, &shop.key("finished"))? else { return Ok(0) };
    let due: Vec<&FinishedEntry> =
        finished.data.orders.iter().filter(|e| ctx.now_ms - e.finished_ms >= ARCHIVE_AFTER_MS).collect();
    if due.is_empty() {
        return Ok(0);
    }
    let mut by_day: BTreeMap<String, Vec<Order>> = BTreeMap::new();
    for entry in &due {
        if let Some(order) = read_order(ctx, &entry.id)? {
            by_day.entry(archive_day(&order)).or_default().push(order);
        }
    }
    for (day, orders) in &by_day {
        // The day's first batch creates the archive (a part of its own: no election, no wait).
        let append = |archive: &Vec<Order>| {
            let fresh: Vec<&Order> = orders.iter().filter(|o| !archive.iter().any(|a| a.id == o.id)).collect();
            if fresh.is_empty() {
                return Ok(Some(Decision::Keep(())));
            }
            let mut next = archive.clone();
            next.extend(fresh.into_iter().cloned());
            if !archive.is_empty() && crate::kv::to_json(&next).len() > ARCHIVE_PART_BYTES {
                return Ok(None); // full: another part takes them
            }
            Ok(Some(Decision::Write(next, ())))
        };
        archive_parts(shop, day).update_any(ctx.kv, ctx.writer, append, || Ok((orders.clone(), ())))?;
    }
    // Archived first, deleted after: a crash in between leaves an order in both, never in neither.
    let ids: Vec<String> = due.iter().map(|e| e.id.clone()).collect();
    for id in &ids {
        ctx.kv.delete(&order_key(id))?;
    }
    update(ctx.kv, &shop.key("finished"), ctx.writer, shop_missing(shop), |set: &FinishedSet| {
        let mut next = set.clone();
        next.orders.retain(|e| !ids.contains(&e.id));
        Ok(if next.orders.len() == set.orders.len() { Decision::Keep(()) } else { Decision::Write(next, ()) })
    })?;
    Ok(ids.len() as u32)
}

/// What the last sweep of a shop cleaned up to (`shop/{shop}/swept`): the
/// keys of past slots and days are deleted once, when the slot or the day
/// changes, not at every sweep. A derived value (plain `set`): a lost or
/// stale one only makes a sweep clean up again.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Swept {
    slot: u64,
    day: String,
    /// The minute (since the epoch) of the last cleanup; 0 in marks of earlier versions.
    #[serde(default)]
    minute: i64,
}

/// How many past minutes' refusal counters one cleanup deletes at most
/// (a sweeper that was stopped longer leaves the older ones).
const REFUSAL_MINUTES_SWEPT: i64 = 1440;

/// QR quota counters of past slots, and archives, day counters and metrics older than a week.
fn drop_old_keys<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, config: &ShopConfig) -> Result<u32, DomainError> {
    let key = shop.key("swept");
    let last: Swept = ctx.kv.get(&key)?.and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
    let now = Swept {
        slot: qr::slot_at(ctx.now_ms / 1000, config.code_rotation_seconds),
        day: business_day(ctx.now_ms, 0, 0),
        minute: ctx.now_ms.div_euclid(60_000),
    };
    if last == now {
        return Ok(0);
    }
    if last.minute != now.minute {
        // Refusal counters of the minutes since the last cleanup, but the current and the previous one.
        let from = if last.minute > 0 { last.minute - 1 } else { now.minute - 60 };
        let old: Vec<String> = (from.max(now.minute - REFUSAL_MINUTES_SWEPT)..now.minute - 1)
            .map(|minute| refusals_key(shop, minute))
            .collect();
        ctx.kv.delete_many(&old)?;
    }
    if last.slot != now.slot {
        for back in 2..14 {
            if let Some(slot) = now.slot.checked_sub(back) {
                ctx.kv.delete(&qr::used_key(shop, slot))?;
            }
        }
    }
    let mut dropped = 0;
    if last.day != now.day {
        // The event log's keys as earlier versions kept it.
        ctx.kv.delete_many(&events::legacy_keys(shop))?;
        for back in ARCHIVE_DAYS_KEPT..ARCHIVE_DAYS_KEPT + 3 {
            let day = business_day(ctx.now_ms - back * 86_400_000, 0, 0);
            // Counters are never read with `get` (see kv-schema): they are deleted unseen.
            let mut counters = vec![
                // Elections of earlier versions.
                format!("{}/init", archive_key(shop, &day)),
                format!("shop/{shop}/metrics/{day}/init"),
                number_key(shop, &day),
                metrics::started_key(shop, &day),
            ];
            let mut records = Vec::new();
            for parts in [archive_parts(shop, &day), metrics::parts(shop, &day)] {
                records.extend((1..=parts.highest(ctx.kv)?).map(|n| parts.key(n)));
                counters.push(parts.counter_key());
            }
            dropped += ctx.kv.get_many(&records)?.iter().filter(|r| r.is_some()).count() as u32;
            ctx.kv.delete_many(&records)?;
            ctx.kv.delete_many(&counters)?;
        }
    }
    ctx.kv.set(&key, &crate::kv::to_json(&now))?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;
    use crate::shop::change_config;
    use std::sync::Arc;

    const KEY: &[u8] = b"signing-key";
    /// 2026-11-22T10:00:00Z, at the start of a 5-minute slot.
    const T0: i64 = 1_795_860_000_000;

    /// Every call is its own request, with its own writer id, as in production.
    fn ctx(kv: &MemoryKv, now_ms: i64) -> Ctx<'_, MemoryKv> {
        static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ctx { kv, now_ms, writer: Box::leak(format!("request-{n}").into_boxed_str()), signing_key: KEY }
    }

    fn open_shop(kv: &MemoryKv, change: impl Fn(&mut ShopConfig)) {
        change_config(kv, &ShopId::main(), "setup", |c| {
            let mut next = ShopConfig { open: true, ..c.clone() };
            change(&mut next);
            Ok(next)
        })
        .unwrap();
    }

    fn code_at(now_ms: i64) -> String {
        qr::code_for(KEY, &ShopId::main(), qr::slot_at(now_ms / 1000, 300))
    }

    fn latte() -> DrinkChoice {
        serde_json::from_str(r#"{"drinkId":"latte","options":{"milk":"oat","size":"regular"}}"#).unwrap()
    }

    fn redeem_as(kv: &MemoryKv, now: i64, customer: &str) -> Result<Redeemed, DomainError> {
        redeem(&ctx(kv, now), &ShopId::main(), customer, &code_at(now), None, false)
    }

    fn event_kinds(kv: &MemoryKv) -> Vec<String> {
        events::read_after(kv, &ShopId::main(), 0, 1000, T0 + 86_400_000)
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    #[test]
    fn the_cached_board_follows_every_change_and_every_deadline() {
        let kv = MemoryKv::new();
        // A deadline sooner than the cache's own 30-second limit.
        open_shop(&kv, |c| c.barista_timeout_seconds = 10);
        let shop = ShopId::main();
        let id = redeem_as(&kv, T0, "alice").unwrap().order.view.id;
        assert!(board(&ctx(&kv, T0), &shop).unwrap().preparing.is_empty());
        submit_drink(&ctx(&kv, T0 + 1_000), &id, "alice", &latte()).unwrap();
        let queued = board(&ctx(&kv, T0 + 1_000), &shop).unwrap();
        assert_eq!(queued.preparing.len(), 1, "a new event makes the cached board stale");
        assert_eq!(board(&ctx(&kv, T0 + 2_000), &shop).unwrap(), queued, "no change: the same board");
        assert!(kv.get("shop/main/board").unwrap().is_some());

        staff_action(&ctx(&kv, T0 + 3_000), &id, StaffAction::Claim, "b", false).unwrap();
        assert_eq!(board(&ctx(&kv, T0 + 3_000), &shop).unwrap().preparing[0].state, OrderState::InProgress);
        // No event at all, yet the barista deadline passes: the board must not keep the order.
        let deadline = read_order(&ctx(&kv, T0), &id).unwrap().unwrap().deadline_ms.unwrap();
        assert!(deadline < T0 + 3_000 + BOARD_CACHE_MS);
        let after = board(&ctx(&kv, deadline + 1), &shop).unwrap();
        assert!(after.preparing.is_empty() && after.ready.is_empty(), "{after:?}");
    }

    #[test]
    fn the_happy_path_from_code_to_pickup() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        let redeemed = redeem_as(&kv, T0, "alice").unwrap();
        assert!(redeemed.created);
        assert_eq!(redeemed.tokens_left, Some(9));
        assert_eq!(redeemed.order.state, OrderState::AwaitingDrink);
        let id = redeemed.order.view.id.clone();

        let queued = submit_drink(&ctx(&kv, T0 + 20_000), &id, "alice", &latte()).unwrap();
        assert_eq!((queued.state, queued.number, queued.queue_position), (OrderState::Queued, Some(1), Some(1)));
        let drink = queued.drink.clone().unwrap();
        assert_eq!(drink.options.iter().map(|o| o.option_id.as_str()).collect::<Vec<_>>(), ["regular", "oat"]);

        let making = staff_action(&ctx(&kv, T0 + 30_000), &id, StaffAction::Claim, "barista-1", false).unwrap();
        assert_eq!((making.state, making.barista_id.as_deref()), (OrderState::InProgress, Some("barista-1")));
        let done = staff_action(&ctx(&kv, T0 + 90_000), &id, StaffAction::Complete, "barista-1", false).unwrap();
        assert_eq!(done.state, OrderState::Completed);

        assert_eq!(
            event_kinds(&kv),
            [
                kind::NEW_ORDER,
                kind::WORKFLOW_STARTED,
                kind::WAITING_COMPLETION,
                kind::MAKE_ORDER,
                kind::ORDER_COMPLETED,
                kind::ORDER_FINISHED,
                kind::DRINK_AVERAGE_TIME
            ]
        );
        // Capacity and the customer's slot are free again.
        let open: OpenSet = read(&kv, "shop/main/open").unwrap().unwrap().0.data;
        assert!(open.orders.is_empty());
        assert!(redeem(&ctx(&kv, T0 + 300_000), &ShopId::main(), "alice", &code_at(T0 + 300_000), None, false).is_ok());
    }

    #[test]
    fn the_board_shows_numbers_and_drinks_but_no_customer() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        let a = redeem(&ctx(&kv, T0), &ShopId::main(), "alice", &code_at(T0), Some("Ana".into()), false).unwrap();
        let b = redeem_as(&kv, T0, "bob").unwrap().order.view.id;
        submit_drink(&ctx(&kv, T0 + 1_000), &a.order.view.id, "alice", &latte()).unwrap();
        submit_drink(&ctx(&kv, T0 + 2_000), &b, "bob", &latte()).unwrap();
        staff_action(&ctx(&kv, T0 + 3_000), &b, StaffAction::Claim, "x", false).unwrap();
        staff_action(&ctx(&kv, T0 + 63_000), &b, StaffAction::Complete, "x", false).unwrap();
        let board = board(&ctx(&kv, T0 + 64_000), &ShopId::main()).unwrap();
        assert_eq!(board.preparing.len(), 1);
        assert_eq!((board.preparing[0].number, board.preparing[0].display_name.as_deref()), (Some(1), Some("Ana")));
        assert_eq!(board.ready[0].number, Some(2));
        let json = serde_json::to_string(&board).unwrap();
        assert!(!json.contains("alice") && !json.contains(&code_at(T0)), "{json}");
        let later = super::board(&ctx(&kv, T0 + 63_000 + READY_ON_BOARD_MS), &ShopId::main()).unwrap();
        assert!(later.ready.is_empty(), "ready orders leave the board after 10 minutes");
        let wait = wait_estimate(&ctx(&kv, T0 + 64_000), &ShopId::main()).unwrap();
        assert_eq!((wait.queued, wait.seconds_per_order, wait.estimated_wait_seconds), (1, 60, 120));
        // The queued latte's own estimate: one latte at the recent latte pace.
        let mine = get_order(&ctx(&kv, T0 + 64_000), &a.order.view.id, Some("alice")).unwrap();
        assert_eq!((mine.queue_position, mine.estimated_wait_seconds), (Some(1), Some(60)));
    }

    #[test]
    fn metrics_follow_a_scripted_day_exactly() {
        let kv = MemoryKv::new();
        open_shop(&kv, |c| {
            c.drinks_per_code = 100;
            c.max_open_orders = 100;
            c.customer_timeout_seconds = 10;
        });
        let mut ids = Vec::new();
        for i in 0..12 {
            let id = redeem_as(&kv, T0, &format!("c{i}")).unwrap().order.view.id;
            if i < 10 {
                let drink =
                    if i % 2 == 0 { latte() } else { serde_json::from_str(r#"{"drinkId":"espresso"}"#).unwrap() };
                submit_drink(&ctx(&kv, T0 + 1_000), &id, &format!("c{i}"), &drink).unwrap();
            }
            ids.push(id);
        }
        for (i, id) in ids.iter().enumerate().take(6) {
            staff_action(&ctx(&kv, T0 + 2_000), id, StaffAction::Claim, &format!("b{}", i % 2), false).unwrap();
            staff_action(&ctx(&kv, T0 + 62_000), id, StaffAction::Complete, &format!("b{}", i % 2), false).unwrap();
        }
        cancel_by_customer(&ctx(&kv, T0 + 3_000), &ids[6], "c6").unwrap();
        staff_action(&ctx(&kv, T0 + 3_000), &ids[7], StaffAction::Cancel, "b0", false).unwrap();
        sweep(&ctx(&kv, T0 + 20_000), false).unwrap(); // c10 and c11 never chose: customer timeouts
        let day = business_day(T0, 0, 300);
        let m = metrics::day_metrics(&kv, &ShopId::main(), &day).unwrap();
        assert_eq!((m.started, m.submitted, m.completed), (12, 10, 6));
        assert_eq!((m.cancelled_customer, m.cancelled_barista, m.timed_out_customer), (1, 1, 2));
        assert_eq!(m.drinks.get("latte"), Some(&5));
        assert_eq!(m.drinks.get("espresso"), Some(&5));
        assert_eq!(m.options.get("milk.oat"), Some(&5));
        assert_eq!(m.baristas.get("b0"), Some(&3));
        assert_eq!(m.per_hour.iter().sum::<u64>(), 10);
        assert_eq!((m.wait.count, m.wait.max, m.claim_to_complete.max), (6, 61, 60));
        assert_eq!(metrics::drink_average(&m, "latte"), Some(60));
        assert!(event_kinds(&kv).contains(&kind::DRINK_AVERAGE_TIME.to_string()));
    }

    #[test]
    fn the_journey_lists_every_event_of_an_order_in_order() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        let id = redeem_as(&kv, T0, "j").unwrap().order.view.id;
        let other = redeem_as(&kv, T0, "k").unwrap().order.view.id;
        submit_drink(&ctx(&kv, T0 + 1_000), &id, "j", &latte()).unwrap();
        cancel_by_customer(&ctx(&kv, T0 + 1_500), &other, "k").unwrap();
        staff_action(&ctx(&kv, T0 + 2_000), &id, StaffAction::Claim, "b", false).unwrap();
        staff_action(&ctx(&kv, T0 + 3_000), &id, StaffAction::Complete, "b", false).unwrap();
        let steps = journey(&ctx(&kv, T0 + 4_000), &id, Some("j")).unwrap();
        let kinds: Vec<&str> = steps.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                kind::NEW_ORDER,
                kind::WORKFLOW_STARTED,
                kind::WAITING_COMPLETION,
                kind::MAKE_ORDER,
                kind::ORDER_COMPLETED,
                kind::ORDER_FINISHED
            ]
        );
        assert!(steps.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(journey(&ctx(&kv, T0 + 4_000), &id, Some("k")).unwrap_err().code(), "not_your_order");
    }

    #[test]
    fn redeeming_the_same_code_twice_returns_the_same_order_and_one_token() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        let first = redeem_as(&kv, T0, "bob").unwrap();
        let again = redeem_as(&kv, T0 + 1_000, "bob").unwrap();
        assert_eq!((again.created, again.order.view.id.clone()), (false, first.order.view.id));
        assert_eq!(qr::tokens_left(&kv, &ShopId::main(), qr::slot_at(T0 / 1000, 300), 10).unwrap(), 9);
    }

    #[test]
    fn a_code_redeemed_again_after_the_day_changed_answers_its_order() {
        // Two-hour codes: the 04:00–06:00 slot spans the 05:00 start of the business day.
        let kv = MemoryKv::new();
        open_shop(&kv, |c| c.code_rotation_seconds = 7_200);
        let before = T0 - 5 * 3_600_000 - 120_000; // 04:58
        let after = before + 180_000; // 05:01, the next business day
        let code = qr::code_for(KEY, &ShopId::main(), qr::slot_at(before / 1000, 7_200));
        let first = redeem(&ctx(&kv, before), &ShopId::main(), "e", &code, None, false).unwrap();
        let queued = submit_drink(&ctx(&kv, before + 60_000), &first.order.view.id, "e", &latte()).unwrap();

        let again = redeem(&ctx(&kv, after), &ShopId::main(), "e", &code, None, false).unwrap();
        assert_eq!((again.created, &again.order.view.id), (false, &first.order.view.id));
        assert_eq!((again.order.state, again.order.number), (OrderState::Queued, queued.number), "not replaced");
        let slot = qr::slot_at(before / 1000, 7_200);
        assert_eq!(qr::tokens_left(&kv, &ShopId::main(), slot, 10).unwrap(), 9);
    }

    #[test]
    fn a_repeated_redemption_is_answered_while_the_shop_is_closed() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        let first = redeem_as(&kv, T0, "f").unwrap();
        change_config(&kv, &ShopId::main(), "close", |c| Ok(ShopConfig { open: false, ..c.clone() })).unwrap();
        let again = redeem_as(&kv, T0 + 1_000, "f").unwrap();
        assert_eq!((again.created, again.order.view.id), (false, first.order.view.id));
        assert_eq!(redeem_as(&kv, T0 + 1_000, "g").unwrap_err().code(), "shop_closed");
    }

    #[test]
    fn each_gate_refuses_with_its_own_code() {
        let kv = MemoryKv::new();
        let closed = redeem_as(&kv, T0, "c").unwrap_err();
        assert_eq!((closed.code(), closed.status()), ("shop_closed", 409));
        assert!(event_kinds(&kv).contains(&kind::SHOP_UNAVAILABLE.to_string()));

        open_shop(&kv, |c| {
            c.drinks_per_code = 2;
            c.max_open_orders = 3;
            c.customer_timeout_seconds = 900;
        });
        let bogus = redeem(&ctx(&kv, T0), &ShopId::main(), "c", "NOTACODE00", None, false).unwrap_err();
        assert_eq!(bogus.code(), "code_invalid");
        let stale = redeem(&ctx(&kv, T0 + 340_000), &ShopId::main(), "c", &code_at(T0), None, false).unwrap_err();
        assert_eq!(stale.code(), "code_expired");

        redeem_as(&kv, T0, "c1").unwrap();
        let limit =
            redeem(&ctx(&kv, T0 + 300_000), &ShopId::main(), "c1", &code_at(T0 + 300_000), None, false).unwrap_err();
        assert_eq!(limit.code(), "customer_limit");
        redeem_as(&kv, T0, "c2").unwrap();
        let used_up = redeem_as(&kv, T0, "c3").unwrap_err();
        assert_eq!((used_up.code(), used_up.status()), ("code_used_up", 409));
        let next_slot = T0 + 300_000;
        redeem_as(&kv, next_slot, "c3").unwrap();
        let full = redeem_as(&kv, next_slot, "c4").unwrap_err();
        assert_eq!(full.code(), "shop_full");
        // The refused redemption gave its token back.
        assert_eq!(qr::tokens_left(&kv, &ShopId::main(), qr::slot_at(next_slot / 1000, 300), 2).unwrap(), 1);
    }

    #[test]
    fn the_new_order_event_counts_the_tokens_of_the_code_redeemed_not_of_the_one_on_screen() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {}); // 300 s slots, 30 s of grace
        let shown_now = T0 + 310_000;
        let old = qr::slot_at(T0 / 1000, 300);
        assert_eq!(qr::slot_at(shown_now / 1000, 300), old + 1, "the screen shows the next code by now");
        redeem(&ctx(&kv, shown_now), &ShopId::main(), "late", &code_at(T0), None, false).unwrap();
        let logged = events::read_after(&kv, &ShopId::main(), 0, 10, shown_now).unwrap().events;
        let new_order = logged.iter().find(|e| e.kind == kind::NEW_ORDER).unwrap();
        assert_eq!((new_order.data["slot"].as_u64(), new_order.data["tokensLeft"].as_u64()), (Some(old), Some(9)));
    }

    #[test]
    fn the_daily_limit_counts_drinks_per_business_day() {
        let kv = MemoryKv::new();
        open_shop(&kv, |c| c.max_drinks_per_customer_per_day = 1);
        let first = redeem_as(&kv, T0, "d").unwrap();
        cancel_by_customer(&ctx(&kv, T0 + 1_000), &first.order.view.id, "d").unwrap();
        let later = T0 + 600_000;
        assert_eq!(redeem_as(&kv, later, "d").unwrap_err().code(), "daily_limit");
        let tomorrow = T0 + 86_400_000;
        assert!(redeem_as(&kv, tomorrow, "d").is_ok());
    }

    #[test]
    fn a_customer_touches_only_their_own_orders() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        let id = redeem_as(&kv, T0, "owner").unwrap().order.view.id;
        let c = ctx(&kv, T0 + 1_000);
        assert_eq!(submit_drink(&c, &id, "mallory", &latte()).unwrap_err().code(), "not_your_order");
        assert_eq!(cancel_by_customer(&c, &id, "mallory").unwrap_err().code(), "not_your_order");
        assert_eq!(get_order(&c, &id, Some("mallory")).unwrap_err().status(), 403);
        assert_eq!(get_order(&c, &id, Some("owner")).unwrap().id, id);
    }

    #[test]
    fn timeouts_are_enforced_on_read_and_written_down_once() {
        let kv = MemoryKv::new();
        open_shop(&kv, |c| {
            c.customer_timeout_seconds = 10;
            c.barista_timeout_seconds = 10;
        });
        let waiting = redeem_as(&kv, T0, "slow").unwrap().order.view.id;
        let seen = get_order(&ctx(&kv, T0 + 10_000), &waiting, Some("slow")).unwrap();
        assert_eq!(
            (seen.state, seen.timeout_cause),
            (OrderState::TimedOut, Some(crate::order::TimeoutCause::Customer))
        );
        assert_eq!(read_order(&ctx(&kv, T0), &waiting).unwrap().unwrap().state, OrderState::TimedOut, "persisted");

        let queued = redeem_as(&kv, T0 + 11_000, "quick").unwrap().order.view.id;
        submit_drink(&ctx(&kv, T0 + 12_000), &queued, "quick", &latte()).unwrap();
        let report = sweep(&ctx(&kv, T0 + 22_000), false).unwrap();
        assert_eq!(report.timed_out, 1);
        let swept = get_order(&ctx(&kv, T0 + 23_000), &queued, None).unwrap();
        assert_eq!(swept.timeout_cause, Some(crate::order::TimeoutCause::Barista));
        let kinds = event_kinds(&kv);
        assert_eq!(kinds.iter().filter(|k| *k == kind::ORDER_TIMEOUT).count(), 2, "one event per timeout: {kinds:?}");
        let open: OpenSet = read(&kv, "shop/main/open").unwrap().unwrap().0.data;
        assert!(open.orders.is_empty(), "both slots are free");
    }

    #[test]
    fn a_full_shop_frees_slots_of_orders_that_timed_out_unseen() {
        let kv = MemoryKv::new();
        open_shop(&kv, |c| {
            c.max_open_orders = 1;
            c.customer_timeout_seconds = 10;
        });
        redeem_as(&kv, T0, "first").unwrap();
        assert_eq!(redeem_as(&kv, T0 + 5_000, "second").unwrap_err().code(), "shop_full");
        assert!(redeem_as(&kv, T0 + 10_000, "second").is_ok(), "no sweeper ran: the gate settled the timeout");
    }

    #[test]
    fn finished_orders_move_to_the_archive_and_stay_readable() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        let id = redeem_as(&kv, T0, "e").unwrap().order.view.id;
        submit_drink(&ctx(&kv, T0 + 1_000), &id, "e", &latte()).unwrap();
        staff_action(&ctx(&kv, T0 + 2_000), &id, StaffAction::Complete, "b", false).unwrap();
        let report = sweep(&ctx(&kv, T0 + 2_000 + ARCHIVE_AFTER_MS), false).unwrap();
        assert_eq!(report.trimmed, 1);
        assert!(kv.get(&order_key(&id)).unwrap().is_none());
        let later = ctx(&kv, T0 + ARCHIVE_AFTER_MS + 5_000);
        assert_eq!(get_order(&later, &id, Some("e")).unwrap().state, OrderState::Completed);
        assert_eq!(my_orders(&later, "e").unwrap().len(), 1);
    }

    fn in_parallel<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
        let f = Arc::new(f);
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let f = f.clone();
                std::thread::spawn(move || f(i))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    }

    #[test]
    fn a_ten_drink_code_admits_exactly_ten_of_a_hundred_customers() {
        let kv = Arc::new(MemoryKv::new());
        open_shop(&kv, |c| c.max_open_orders = 1000);
        let shared = kv.clone();
        let results = in_parallel(100, move |i| redeem_as(&shared, T0, &format!("c{i}")).map(|r| r.order.view.id));
        let admitted = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(admitted, 10);
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| e.code() == "code_used_up"));
    }

    #[test]
    fn sixty_simultaneous_submissions_get_numbers_one_to_sixty() {
        let kv = Arc::new(MemoryKv::new());
        open_shop(&kv, |c| {
            c.max_open_orders = 100;
            c.drinks_per_code = 100;
        });
        let ids: Vec<String> = (0..60).map(|i| redeem_as(&kv, T0, &format!("c{i}")).unwrap().order.view.id).collect();
        let shared = kv.clone();
        let mut numbers: Vec<u32> = in_parallel(60, move |i| {
            let ids = &ids;
            submit_drink(&ctx(&shared, T0 + 1_000), &ids[i], &format!("c{i}"), &latte()).unwrap().number.unwrap()
        });
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=60).collect::<Vec<_>>());
    }

    #[test]
    fn of_two_baristas_claiming_at_once_exactly_one_wins() {
        let kv = Arc::new(MemoryKv::new());
        open_shop(&kv, |_| {});
        let id = redeem_as(&kv, T0, "f").unwrap().order.view.id;
        submit_drink(&ctx(&kv, T0 + 1_000), &id, "f", &latte()).unwrap();
        let shared = kv.clone();
        let results = in_parallel(2, move |i| {
            staff_action(&ctx(&shared, T0 + 2_000), &id, StaffAction::Claim, &format!("b{i}"), false)
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert_eq!(results.iter().find_map(|r| r.as_ref().err()).unwrap().code(), "already_claimed");
    }

    #[test]
    fn capacity_is_never_exceeded_under_concurrency() {
        let kv = Arc::new(MemoryKv::new());
        open_shop(&kv, |c| c.drinks_per_code = 100);
        let shared = kv.clone();
        let results = in_parallel(30, move |i| redeem_as(&shared, T0, &format!("c{i}")).map(|r| r.order.view.id));
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 20);
        let open: OpenSet = read(&*kv, "shop/main/open").unwrap().unwrap().0.data;
        assert_eq!(open.orders.len(), 20);
    }

    /// A store that records the keys read and deleted, to check what a flow touches.
    #[derive(Default)]
    struct Watched {
        kv: MemoryKv,
        reads: std::sync::Mutex<Vec<String>>,
        deletes: std::sync::Mutex<Vec<String>>,
        /// Every call as a store sees it (a batch is one call): `"{method} {first key}"`.
        calls: std::sync::Mutex<Vec<String>>,
    }

    impl Watched {
        fn call(&self, method: &str, key: &str) {
            self.calls.lock().unwrap().push(format!("{method} {key}"));
        }
        fn take_calls(&self) -> Vec<String> {
            std::mem::take(&mut *self.calls.lock().unwrap())
        }
        fn take_reads(&self) -> Vec<String> {
            std::mem::take(&mut *self.reads.lock().unwrap())
        }
        fn take_deletes(&self) -> Vec<String> {
            std::mem::take(&mut *self.deletes.lock().unwrap())
        }
    }

    impl KeyValue for Watched {
        fn get(&self, key: &str) -> crate::kv::KvResult<Option<Vec<u8>>> {
            self.call("get", key);
            self.reads.lock().unwrap().push(key.to_string());
            self.kv.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> crate::kv::KvResult<()> {
            self.call("set", key);
            self.kv.set(key, value)
        }
        fn delete(&self, key: &str) -> crate::kv::KvResult<()> {
            self.call("delete", key);
            self.deletes.lock().unwrap().push(key.to_string());
            self.kv.delete(key)
        }
        fn list_prefix(&self, prefix: &str) -> crate::kv::KvResult<Vec<String>> {
            self.call("list", prefix);
            self.kv.list_prefix(prefix)
        }
        fn increment(&self, key: &str, delta: i64) -> crate::kv::KvResult<i64> {
            self.call("increment", key);
            if delta == 0 {
                self.reads.lock().unwrap().push(key.to_string()); // a counter read
            }
            self.kv.increment(key, delta)
        }
        fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> crate::kv::KvResult<bool> {
            self.call("swap", key);
            self.kv.compare_and_swap(key, expected, new)
        }
        fn get_many(&self, keys: &[String]) -> crate::kv::KvResult<Vec<Option<Vec<u8>>>> {
            if let Some(first) = keys.first() {
                self.call("get_many", first); // none: no call, as in the Spin adapter
            }
            self.reads.lock().unwrap().extend(keys.iter().cloned());
            self.kv.get_many(keys)
        }
        fn set_many(&self, entries: &[(String, Vec<u8>)]) -> crate::kv::KvResult<()> {
            if let Some((first, _)) = entries.first() {
                self.call("set_many", first);
            }
            self.kv.set_many(entries)
        }
    }

    fn wctx(kv: &Watched, now_ms: i64) -> Ctx<'_, Watched> {
        Ctx { kv, now_ms, writer: "watched", signing_key: KEY }
    }

    fn order_reads(reads: &[String]) -> Vec<&String> {
        reads.iter().filter(|k| k.starts_with("order/")).collect()
    }

    fn open_entry(kv: &impl KeyValue, id: &str) -> OpenEntry {
        let open: OpenSet = read(kv, "shop/main/open").unwrap().unwrap().0.data;
        open.orders.into_iter().find(|e| e.id == id).unwrap()
    }

    /// Redeems and submits a latte for each customer; their order ids.
    fn queue_lattes(kv: &Watched, customers: &[&str]) -> Vec<String> {
        customers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let now = T0 + i as i64 * 1_000;
                let id = redeem(&wctx(kv, now), &ShopId::main(), c, &code_at(now), None, false).unwrap().order.view.id;
                submit_drink(&wctx(kv, now + 500), &id, c, &latte()).unwrap();
                id
            })
            .collect()
    }

    /// Three shops with a week of archives each, and one archived order of `main`.
    fn shops_with_archives(kv: &Watched) -> String {
        open_shop(&kv.kv, |_| {});
        for booth in ["booth-1", "booth-2"] {
            crate::shop::create_shop(&kv.kv, &ShopId::parse(booth).unwrap(), booth, "setup").unwrap();
        }
        for shop in crate::shop::list_shops(&kv.kv).unwrap() {
            for back in 0..7 {
                let day = business_day(T0 - back * 86_400_000, 0, 300);
                kv.kv.set(&archive_key(&shop, &day), &Versioned::first(Vec::<Order>::new()).to_bytes()).unwrap();
            }
        }
        let id = queue_lattes(kv, &["a"]).remove(0);
        staff_action(&wctx(kv, T0 + 2_000), &id, StaffAction::Complete, "b", false).unwrap();
        sweep(&wctx(kv, T0 + 2_000 + ARCHIVE_AFTER_MS), false).unwrap();
        assert!(kv.kv.get(&order_key(&id)).unwrap().is_none(), "archived");
        id
    }

    #[test]
    fn looking_up_an_unknown_order_reads_only_where_its_id_says_it_would_be() {
        let kv = Watched::default();
        let archived = shops_with_archives(&kv);
        let later = T0 + 3_000 + ARCHIVE_AFTER_MS;
        let day = business_day(T0, 0, 300);
        assert!(archived.starts_with(&format!("main.{}.", day.replace('-', ""))), "{archived}");

        // An unknown id of the new form: its own key, then its shop's archive of its day.
        let booth = ShopId::parse("booth-1").unwrap();
        let id_of = |shop: &str, day: &str| format!("{shop}.{}.{}", day.replace('-', ""), "q".repeat(26));
        let lookup = |id: &str| {
            kv.take_reads();
            assert_eq!(get_order(&wctx(&kv, later), id, None).unwrap_err().code(), "order_not_found");
            let reads = kv.take_reads();
            assert!(reads.len() <= 4, "{id}: {reads:?}");
            reads
        };
        let unknown = id_of("booth-1", &day);
        let parts = archive_parts(&booth, &day);
        assert_eq!(lookup(&unknown), [order_key(&unknown), parts.key(1), parts.counter_key()]);
        // A day without an archive yet: the shop's config says the shop exists.
        let tomorrow = business_day(later + 86_400_000, 0, 300);
        let early = id_of("booth-1", &tomorrow);
        let parts = archive_parts(&booth, &tomorrow);
        let expected = [order_key(&early), parts.key(1), booth.key("config"), parts.counter_key()];
        assert_eq!(lookup(&early), expected);
        // A shop that does not exist, a day no archive is kept for: no counter is read (made).
        let nowhere = id_of("nowhere", &day);
        let parts = archive_parts(&ShopId::parse("nowhere").unwrap(), &day);
        assert_eq!(lookup(&nowhere), [order_key(&nowhere), parts.key(1), "shop/nowhere/config".to_string()]);
        let long_ago = id_of("booth-1", "2001-01-01");
        assert_eq!(lookup(&long_ago), [order_key(&long_ago), archive_key(&booth, "2001-01-01")]);
        assert!(kv.kv.list_prefix("shop/nowhere/").unwrap().is_empty());
        assert!(kv.kv.list_prefix("shop/booth-1/archive/2001").unwrap().is_empty());

        // The archived order is found the same way.
        assert_eq!(get_order(&wctx(&kv, later), &archived, Some("a")).unwrap().state, OrderState::Completed);
        let reads = kv.take_reads();
        assert_eq!(reads, [order_key(&archived), archive_key(&ShopId::main(), &day)]);

        // An id of an earlier version: its own key only.
        let legacy = "q".repeat(26);
        assert_eq!(get_order(&wctx(&kv, later), &legacy, None).unwrap_err().code(), "order_not_found");
        assert_eq!(kv.take_reads(), [order_key(&legacy)]);

        // Not an order id at all: nothing is read, whatever is asked of it.
        for bad in ["nope", "../shops", "main.2026.x", "main.20261122.QQQQQQQQQQQQQQQQQQQQQQQQQQ"] {
            let c = wctx(&kv, later);
            kv.take_calls();
            assert_eq!(get_order(&c, bad, None).unwrap_err().code(), "order_not_found");
            assert_eq!(journey(&c, bad, None).unwrap_err().code(), "order_not_found");
            assert_eq!(submit_drink(&c, bad, "a", &latte()).unwrap_err().code(), "order_not_found");
            assert_eq!(cancel_by_customer(&c, bad, "a").unwrap_err().code(), "order_not_found");
            let claim = staff_action(&c, bad, StaffAction::Claim, "b", false).unwrap_err();
            assert_eq!((claim.code(), claim.status()), ("order_not_found", 404));
            assert_eq!(kv.take_calls(), Vec::<String>::new(), "{bad}");
        }
    }

    #[test]
    fn an_order_started_before_the_day_changed_is_found_in_the_archive_of_its_ids_day() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        let before = T0 - 5 * 3_600_000 - 60_000; // 04:59: the day before's business day
        let id = redeem_as(&kv, before, "late").unwrap().order.view.id;
        let after = before + 120_000; // 05:01
        let queued = submit_drink(&ctx(&kv, after), &id, "late", &latte()).unwrap();
        assert_eq!(queued.number, Some(1), "numbered in the new day");
        staff_action(&ctx(&kv, after + 1_000), &id, StaffAction::Complete, "b", false).unwrap();
        sweep(&ctx(&kv, after + 1_000 + ARCHIVE_AFTER_MS), false).unwrap();
        let (started_on, numbered_on) = (business_day(before, 0, 300), business_day(after, 0, 300));
        assert_ne!(started_on, numbered_on);
        let archive: Vec<Order> = read(&kv, &archive_key(&ShopId::main(), &started_on)).unwrap().unwrap().0.data;
        assert_eq!(archive.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
        let c = ctx(&kv, after + 2_000 + ARCHIVE_AFTER_MS);
        assert_eq!(get_order(&c, &id, Some("late")).unwrap().number, Some(1));
        let numbered_day = day_orders(&c, &ShopId::main(), &numbered_on).unwrap();
        assert_eq!(numbered_day.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [id.as_str()], "its day's export");
        assert!(day_orders(&c, &ShopId::main(), &started_on).unwrap().is_empty());
    }

    /// A store whose writes fail for the keys containing `needle`, while `failing`.
    struct Failing {
        kv: MemoryKv,
        needle: &'static str,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Failing {
        fn check(&self, key: &str) -> crate::kv::KvResult<()> {
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) && key.contains(self.needle) {
                return Err(crate::kv::KvError::Store(format!("`{key}` cannot be written now")));
            }
            Ok(())
        }
    }

    impl KeyValue for Failing {
        fn get(&self, key: &str) -> crate::kv::KvResult<Option<Vec<u8>>> {
            self.kv.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> crate::kv::KvResult<()> {
            self.check(key)?;
            self.kv.set(key, value)
        }
        fn delete(&self, key: &str) -> crate::kv::KvResult<()> {
            self.check(key)?;
            self.kv.delete(key)
        }
        fn list_prefix(&self, prefix: &str) -> crate::kv::KvResult<Vec<String>> {
            self.kv.list_prefix(prefix)
        }
        fn increment(&self, key: &str, delta: i64) -> crate::kv::KvResult<i64> {
            if delta != 0 {
                self.check(key)?;
            }
            self.kv.increment(key, delta)
        }
        fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> crate::kv::KvResult<bool> {
            self.check(key)?;
            self.kv.compare_and_swap(key, expected, new)
        }
    }

    #[test]
    fn a_shop_whose_sweep_fails_does_not_stop_the_other_shops_sweeps() {
        let kv = Failing { kv: MemoryKv::new(), needle: "booth", failing: false.into() };
        let c = |now_ms| Ctx { kv: &kv, now_ms, writer: "w", signing_key: KEY };
        let booth = ShopId::parse("booth").unwrap();
        crate::shop::create_shop(&kv, &booth, "Booth", "setup").unwrap();
        for shop in [ShopId::main(), booth.clone()] {
            change_config(&kv, &shop, "setup", |c| {
                Ok(ShopConfig { open: true, customer_timeout_seconds: 10, ..c.clone() })
            })
            .unwrap();
        }
        // In each shop: one order that will time out, one completed to be archived.
        let mut ids = BTreeMap::new();
        for shop in [ShopId::main(), booth.clone()] {
            let code = qr::code_for(KEY, &shop, qr::slot_at(T0 / 1000, 300));
            let late = redeem(&c(T0), &shop, "late", &code, None, false).unwrap().order.view.id;
            let done = redeem(&c(T0), &shop, "done", &code, None, false).unwrap().order.view.id;
            submit_drink(&c(T0 + 1_000), &done, "done", &latte()).unwrap();
            staff_action(&c(T0 + 2_000), &done, StaffAction::Complete, "b", false).unwrap();
            ids.insert(shop.to_string(), (late, done));
        }
        let later = T0 + 2_000 + ARCHIVE_AFTER_MS;
        kv.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        let report = sweep(&c(later), false).unwrap();
        assert_eq!(report.failed, ["booth"]);
        assert_eq!((report.timed_out, report.trimmed >= 1), (1, true), "{report:?}");
        let (late, done) = &ids["main"];
        assert_eq!(read_order(&c(later), late).unwrap().unwrap().state, OrderState::TimedOut, "written down");
        assert!(read_order(&c(later), done).unwrap().is_none(), "archived");
        let (booth_late, booth_done) = &ids["booth"];
        assert_eq!(read_order(&c(later), booth_late).unwrap().unwrap().state, OrderState::AwaitingDrink);
        assert!(read_order(&c(later), booth_done).unwrap().is_some());

        // The next sweep finishes what the failed one could not.
        kv.failing.store(false, std::sync::atomic::Ordering::SeqCst);
        let report = sweep(&c(later + 5_000), false).unwrap();
        assert!(report.failed.is_empty() && report.timed_out == 1, "{report:?}");
        assert_eq!(read_order(&c(later), booth_late).unwrap().unwrap().state, OrderState::TimedOut);
        assert!(read_order(&c(later), booth_done).unwrap().is_none());
        let found = get_order(&c(later + 6_000), booth_done, Some("done")).unwrap();
        assert_eq!(found.state, OrderState::Completed);
    }

    #[test]
    fn a_writer_that_died_creating_a_days_records_stalls_no_one() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        let shop = ShopId::main();
        let day = business_day(T0, 0, 300);
        // Earlier versions' elections, won by writers that died before writing…
        kv.increment(&format!("shop/main/metrics/{day}/init"), 1).unwrap();
        kv.increment(&format!("{}/init", archive_key(&shop, &day)), 1).unwrap();
        kv.increment("shop/main/robot/init", 1).unwrap();
        // …and part 1 of each record taken by writers that died before writing it.
        for parts in [metrics::parts(&shop, &day), archive_parts(&shop, &day), Parts::new("shop/main/robot")] {
            kv.increment(&parts.counter_key(), 1).unwrap();
        }
        let ids = ["a", "b"].map(|customer| {
            let id = redeem_as(&kv, T0, customer).unwrap().order.view.id;
            submit_drink(&ctx(&kv, T0 + 1_000), &id, customer, &latte()).unwrap();
            staff_action(&ctx(&kv, T0 + 2_000), &id, StaffAction::Claim, "b", false).unwrap();
            staff_action(&ctx(&kv, T0 + 62_000), &id, StaffAction::Complete, "b", false).unwrap();
            id
        });
        let m = metrics::day_metrics(&kv, &shop, &day).unwrap();
        assert_eq!((m.started, m.submitted, m.completed, m.wait.count), (2, 2, 2, 2));
        assert_eq!(metrics::drink_average(&m, "latte"), Some(60));

        let report = sweep(&ctx(&kv, T0 + 62_000 + ARCHIVE_AFTER_MS), false).unwrap();
        assert_eq!((report.trimmed, report.failed.len()), (2, 0), "{report:?}");
        let later = T0 + 63_000 + ARCHIVE_AFTER_MS;
        for (id, customer) in ids.iter().zip(["a", "b"]) {
            assert_eq!(get_order(&ctx(&kv, later), id, Some(customer)).unwrap().state, OrderState::Completed);
        }
        assert_eq!(day_orders(&ctx(&kv, later), &shop, &day).unwrap().len(), 2);
        assert_eq!(my_orders(&ctx(&kv, later), "a").unwrap().len(), 1);

        let settings = crate::robot::RobotSettings {
            orders_per_minute: 1,
            duration_seconds: 60,
            barista_delay_seconds: [1, 2],
            cancel_probability: 0.0,
        };
        assert!(crate::robot::start(&ctx(&kv, later), &shop, &settings).unwrap().running);
        assert!(crate::robot::status(&kv, &shop).unwrap().running);
        assert!(!crate::robot::stop(&ctx(&kv, later + 1_000), &shop).unwrap().running);
        assert!(!crate::robot::status(&kv, &shop).unwrap().running);
    }

    #[test]
    fn a_days_records_are_deleted_with_all_their_parts() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        let shop = ShopId::main();
        let day = business_day(T0, 0, 300);
        kv.increment(&metrics::parts(&shop, &day).counter_key(), 1).unwrap(); // part 1 never written
        let id = redeem_as(&kv, T0, "a").unwrap().order.view.id;
        submit_drink(&ctx(&kv, T0 + 1_000), &id, "a", &latte()).unwrap();
        staff_action(&ctx(&kv, T0 + 2_000), &id, StaffAction::Complete, "b", false).unwrap();
        sweep(&ctx(&kv, T0 + 2_000 + ARCHIVE_AFTER_MS), false).unwrap();
        let of_the_day = |kv: &MemoryKv| {
            let mut keys = kv.list_prefix(&format!("shop/main/metrics/{day}")).unwrap();
            keys.extend(kv.list_prefix(&archive_key(&shop, &day)).unwrap());
            keys
        };
        assert!(of_the_day(&kv).iter().any(|k| k.ends_with("/2")), "{:?}", of_the_day(&kv));
        sweep(&ctx(&kv, T0 + (ARCHIVE_DAYS_KEPT + 1) * 86_400_000), false).unwrap();
        assert_eq!(of_the_day(&kv), Vec::<String>::new());
    }

    #[test]
    fn queue_positions_come_from_the_open_set_without_reading_other_orders() {
        let kv = Watched::default();
        open_shop(&kv.kv, |_| {});
        let ids = queue_lattes(&kv, &["a", "b"]);
        let id = redeem(&wctx(&kv, T0 + 5_000), &ShopId::main(), "c", &code_at(T0 + 5_000), None, false)
            .unwrap()
            .order
            .view
            .id;
        kv.take_reads();
        let third = submit_drink(&wctx(&kv, T0 + 6_000), &id, "c", &latte()).unwrap();
        assert_eq!((third.number, third.queue_position), (Some(3), Some(3)));
        let reads = kv.take_reads();
        assert!(order_reads(&reads).iter().all(|k| **k == order_key(&id)), "only its own order is read: {reads:?}");

        // A claim is noted: the claimed order is no longer ahead, and its barista is at work.
        staff_action(&wctx(&kv, T0 + 7_000), &ids[0], StaffAction::Claim, "barista-1", false).unwrap();
        let note = open_entry(&kv, &ids[0]).queue.unwrap();
        assert_eq!((note.state, note.barista.as_deref()), (OrderState::InProgress, Some("barista-1")));
        kv.take_reads();
        assert_eq!(get_order(&wctx(&kv, T0 + 8_000), &id, Some("c")).unwrap().queue_position, Some(2));
        assert_eq!(order_reads(&kv.take_reads()), vec![&order_key(&id)], "only its own order is read");

        // A release puts it back ahead; completing it takes its entry away.
        staff_action(&wctx(&kv, T0 + 9_000), &ids[0], StaffAction::Release, "barista-1", false).unwrap();
        assert_eq!(get_order(&wctx(&kv, T0 + 9_500), &id, Some("c")).unwrap().queue_position, Some(3));
        staff_action(&wctx(&kv, T0 + 10_000), &ids[0], StaffAction::Complete, "barista-1", false).unwrap();
        assert_eq!(get_order(&wctx(&kv, T0 + 10_500), &id, Some("c")).unwrap().queue_position, Some(2));
        let entry = open_entry(&kv, &id);
        let order: Order = read(&kv, &order_key(&id)).unwrap().unwrap().0.data;
        assert_eq!(Some(entry.check_after_ms), order.deadline_ms, "a noted entry is due at the order's deadline");
    }

    #[test]
    fn open_entries_added_in_place_are_stored_as_serde_stores_them() {
        let kv = MemoryKv::new();
        open_shop(&kv, |_| {});
        for customer in ["a", "b", "c"] {
            redeem_as(&kv, T0, customer).unwrap();
        }
        let stored = kv.get("shop/main/open").unwrap().unwrap();
        let (record, _) = read::<OpenSet>(&kv, "shop/main/open").unwrap().unwrap();
        assert_eq!(record.data.orders.len(), 3);
        assert_eq!(stored, record.to_bytes(), "the bytes serde writes");
        // A redemption retried after it took its slot does not take a second one.
        let first = record.data.orders[0].clone();
        assert!(add_open_entry(&ctx(&kv, T0), &ShopId::main(), &first, 20).unwrap());
        assert_eq!(read::<OpenSet>(&kv, "shop/main/open").unwrap().unwrap().0.data.orders.len(), 3);
    }

    #[test]
    fn a_cached_board_is_read_without_parsing_it() {
        let board = Board { preparing: Vec::new(), ready: Vec::new() };
        let stored = crate::kv::to_json(&CachedBoard { head: 42, valid_until_ms: T0, board: board.clone() });
        let (head, until, json) = split_cached_board(&stored).expect("the shape to_json writes");
        assert_eq!((head, until, json), (42, T0, &crate::kv::to_json(&board)[..]));
        assert!(split_cached_board(br#"{"validUntilMs":1,"head":2,"board":{}}"#).is_none(), "parsed instead");
    }

    #[test]
    fn a_redemption_counts_its_start_without_touching_the_days_record() {
        let kv = Watched::default();
        open_shop(&kv.kv, |_| {});
        let day = business_day(T0, 0, 300);
        kv.take_reads();
        redeem(&wctx(&kv, T0), &ShopId::main(), "a", &code_at(T0), None, false).unwrap();
        let reads = kv.take_reads();
        assert!(!reads.iter().any(|k| k.contains("/metrics/")), "{reads:?}");
        let figures = metrics::day_metrics(&kv, &ShopId::main(), &day).unwrap();
        assert_eq!((figures.started, figures.submitted), (1, 0));
    }

    #[test]
    fn the_customer_flow_makes_few_store_calls() {
        // Each call is a host round trip and most are writes: the flow's
        // speed is mostly their number (see docs/performance.md).
        let kv = Watched::default();
        open_shop(&kv.kv, |_| {});
        queue_lattes(&kv, &["a"]);
        kv.take_calls();
        let id = redeem(&wctx(&kv, T0 + 5_000), &ShopId::main(), "b", &code_at(T0 + 5_000), None, false)
            .unwrap()
            .order
            .view
            .id;
        let redeeming = kv.take_calls();
        submit_drink(&wctx(&kv, T0 + 6_000), &id, "b", &latte()).unwrap();
        let submitting = kv.take_calls();
        let shard = shard_key(&ShopId::main(), "b");
        assert_eq!(
            redeeming,
            [
                "get shop/main/config".to_string(),
                format!("get {shard}"),
                format!("swap {shard}"),
                format!("increment {}", qr::used_key(&ShopId::main(), qr::slot_at(T0 / 1000, 300))),
                "get shop/main/open".into(),
                "swap shop/main/open".into(),
                "increment shop/main/events/seq".into(),
                format!("set_many {}", order_key(&id)),
                format!("increment {}", metrics::started_key(&ShopId::main(), &business_day(T0, 0, 300))),
            ]
        );
        let order = order_key(&id);
        assert_eq!(
            submitting.iter().map(|c| c.split(' ').next().unwrap()).collect::<Vec<_>>(),
            ["get", "get_many", "swap", "increment", "swap", "get", "swap", "get", "swap", "increment", "set_many"],
            "{submitting:#?}"
        );
        assert_eq!(submitting.iter().filter(|c| **c == format!("get {order}")).count(), 1, "the order is read once");
    }

    #[test]
    fn a_late_note_never_replaces_a_newer_one() {
        let kv = Watched::default();
        open_shop(&kv.kv, |_| {});
        let id = queue_lattes(&kv, &["a"]).remove(0);
        let (queued, queued_rev) = read::<Order>(&kv, &order_key(&id)).unwrap().map(|(r, _)| (r.data, r.rev)).unwrap();
        staff_action(&wctx(&kv, T0 + 2_000), &id, StaffAction::Claim, "b", false).unwrap();
        // The submission's note comes in after the claim's.
        note(&wctx(&kv, T0 + 2_500), &ShopId::main(), &queued, queued_rev).unwrap();
        let note = open_entry(&kv, &id).queue.unwrap();
        assert_eq!((note.state, note.rev), (OrderState::InProgress, queued_rev + 1));
    }

    #[test]
    fn entries_written_before_notes_were_kept_are_read_from_their_orders() {
        let kv = Watched::default();
        open_shop(&kv.kv, |_| {});
        let ids = queue_lattes(&kv, &["a", "b", "c"]);
        // The open set as an earlier version wrote it: ids and customer deadlines only.
        let (open, bytes) = read::<OpenSet>(&kv, "shop/main/open").unwrap().unwrap();
        let old = OpenSet {
            orders: open
                .data
                .orders
                .iter()
                .map(|e| OpenEntry { id: e.id.clone(), check_after_ms: T0 + 300_000, queue: None })
                .collect(),
        };
        let record = Versioned { rev: open.rev + 1, write: "old#1".into(), data: old };
        assert!(kv.compare_and_swap("shop/main/open", &bytes, &record.to_bytes()).unwrap());
        staff_action(&wctx(&kv, T0 + 5_000), &ids[0], StaffAction::Claim, "b", false).unwrap();
        kv.take_reads();
        assert_eq!(get_order(&wctx(&kv, T0 + 6_000), &ids[2], Some("c")).unwrap().queue_position, Some(2));
        assert_eq!(order_reads(&kv.take_reads()).len(), 3, "its own and the two entries without a note");
    }

    #[test]
    fn a_sweep_reads_only_due_orders_and_repairs_what_a_dead_submitter_left() {
        let kv = Watched::default();
        open_shop(&kv.kv, |_| {});
        let ids = queue_lattes(&kv, &["a", "b"]);
        // A submitter died after step 1 (queued, no number) and one after step 2
        // (numbered, but not noted): both entries still say "awaiting drink".
        let died = |customer: &str, numbered: bool| {
            let now = T0 + 3_000;
            let id =
                redeem(&wctx(&kv, now), &ShopId::main(), customer, &code_at(now), None, false).unwrap().order.view.id;
            update(&kv, &order_key(&id), "dead", order_not_found, |o: &Order| {
                let drink = crate::order::OrderedDrink {
                    id: "latte".into(),
                    name: "Latte".into(),
                    icon: String::new(),
                    options: Vec::new(),
                };
                let next = o.submit(drink, 0, now + 500, 900)?;
                let number = if numbered { kv.increment(&number_key(&ShopId::main(), &o.day), 1)? as u32 } else { 0 };
                Ok(Decision::Write(Order { number: numbered.then_some(number), ..next }, ()))
            })
            .unwrap();
            id
        };
        let orphan = died("c", false);
        let unnoted = died("d", true);
        kv.take_reads();
        sweep(&wctx(&kv, T0 + 60_000), false).unwrap();
        let reads = kv.take_reads();
        assert!(order_reads(&reads).is_empty(), "nothing is due before the customer deadline: {reads:?}");
        // An operator's full sweep looks at every open order at once.
        let full = Watched { kv: MemoryKv::new(), ..Watched::default() };
        for (key, value) in kv.kv.list_prefix("").unwrap().into_iter().map(|k| (k.clone(), kv.kv.get(&k).unwrap())) {
            full.kv.set(&key, &value.unwrap()).unwrap();
        }
        sweep(&wctx(&full, T0 + 60_000), true).unwrap();
        let repaired: Order = read(&full, &order_key(&orphan)).unwrap().unwrap().0.data;
        assert_eq!(repaired.number, Some(4), "numbered by the full sweep");

        sweep(&wctx(&kv, T0 + 3_000 + 300_000), false).unwrap();
        let mut read_now = order_reads(&kv.take_reads()).into_iter().cloned().collect::<Vec<_>>();
        read_now.dedup();
        assert!(!read_now.iter().any(|k| k == &order_key(&ids[0]) || k == &order_key(&ids[1])), "{read_now:?}");
        let orphan_order: Order = read(&kv, &order_key(&orphan)).unwrap().unwrap().0.data;
        assert_eq!((orphan_order.state, orphan_order.number), (OrderState::Queued, Some(4)));
        for id in [&orphan, &unnoted] {
            let entry = open_entry(&kv, id);
            let order: Order = read(&kv, &order_key(id)).unwrap().unwrap().0.data;
            assert_eq!(entry.queue.map(|q| (q.state, q.number)), Some((OrderState::Queued, order.number)));
            assert_eq!(Some(entry.check_after_ms), order.deadline_ms, "not due again before its deadline");
        }
    }

    #[test]
    fn cleanups_of_past_slots_and_days_run_once_per_slot_and_day() {
        let kv = Watched::default();
        open_shop(&kv.kv, |_| {});
        sweep(&wctx(&kv, T0), false).unwrap();
        let first = kv.take_deletes();
        assert!(first.iter().any(|k| k.contains("/qr/")) && first.iter().any(|k| k.contains("/day/")), "{first:?}");
        sweep(&wctx(&kv, T0 + 5_000), false).unwrap();
        assert!(kv.take_deletes().is_empty(), "same slot, same day: nothing to clean");
        // Refusal counters are cleaned up once a minute (see the next test).
        let take = || kv.take_deletes().into_iter().filter(|k| !k.contains("/refusals/")).collect::<Vec<_>>();
        sweep(&wctx(&kv, T0 + 300_000), false).unwrap();
        let next_slot = take();
        assert!(next_slot.iter().all(|k| k.contains("/qr/")) && !next_slot.is_empty(), "{next_slot:?}");
        let old_window = format!("auth/pin/client/10.0.0.1/{}", (T0 + 300_000) / 60_000 - 2);
        kv.increment(&old_window, 1).unwrap();
        sweep(&wctx(&kv, T0 + 305_000), false).unwrap();
        assert!(kv.take_deletes().is_empty(), "wrong-PIN counters are looked for once a minute");
        sweep(&wctx(&kv, T0 + 360_000), false).unwrap();
        assert_eq!(take(), vec![old_window]);
    }

    fn shop_unavailable_events(kv: &impl KeyValue) -> usize {
        let logged = events::read_after(kv, &ShopId::main(), 0, 1000, T0 + 86_400_000).unwrap().events;
        logged.iter().filter(|e| e.kind == kind::SHOP_UNAVAILABLE).count()
    }

    #[test]
    fn a_client_hammering_refusals_cannot_push_real_events_out_of_the_log() {
        let kv = Arc::new(MemoryKv::new());
        open_shop(&kv, |c| {
            c.max_open_orders = 1;
            c.drinks_per_code = 1000;
        });
        let first = redeem_as(&kv, T0, "first").unwrap().order.view.id;
        // 300 refusals from many requests at once, within one minute.
        let shared = kv.clone();
        let refused = in_parallel(300, move |i| redeem_as(&shared, T0 + 1_000 + i as i64 * 100, &format!("x{i}")));
        assert!(refused.iter().all(|r| r.as_ref().is_err_and(|e| e.code() == "shop_full")), "each is told why");
        assert_eq!(shop_unavailable_events(&*kv), REFUSAL_EVENTS_PER_MINUTE as usize, "logged up to the limit");
        let logged = events::read_newest(&*kv, &ShopId::main(), T0 + 60_000).unwrap().events;
        assert!(logged.iter().any(|e| e.kind == kind::NEW_ORDER && e.order_id.as_deref() == Some(first.as_str())));
        assert!(logged.len() < 20, "{} events", logged.len());
        // A new minute logs again; closed-shop refusals share the same limit.
        change_config(&*kv, &ShopId::main(), "close", |c| Ok(ShopConfig { open: false, ..c.clone() })).unwrap();
        for i in 0..30 {
            assert_eq!(redeem_as(&kv, T0 + 60_000 + i * 10, &format!("y{i}")).unwrap_err().code(), "shop_closed");
        }
        assert_eq!(shop_unavailable_events(&*kv), 2 * REFUSAL_EVENTS_PER_MINUTE as usize);
    }

    #[test]
    fn refusal_counters_of_past_minutes_are_deleted_by_the_sweep() {
        let kv = MemoryKv::new();
        let counters = |kv: &MemoryKv| kv.list_prefix("shop/main/refusals/").unwrap();
        assert!(redeem_as(&kv, T0, "a").is_err(), "closed");
        open_shop(&kv, |_| {});
        sweep(&ctx(&kv, T0 + 1_000), false).unwrap();
        assert_eq!(counters(&kv).len(), 1, "this minute's is kept");
        change_config(&kv, &ShopId::main(), "close", |c| Ok(ShopConfig { open: false, ..c.clone() })).unwrap();
        assert!(redeem_as(&kv, T0 + 61_000, "b").is_err());
        sweep(&ctx(&kv, T0 + 62_000), false).unwrap();
        assert_eq!(counters(&kv).len(), 2, "and the previous minute's");
        assert!(redeem_as(&kv, T0 + 10 * 60_000, "c").is_err());
        sweep(&ctx(&kv, T0 + 10 * 60_000 + 1_000), false).unwrap();
        assert_eq!(counters(&kv), [format!("shop/main/refusals/{}", (T0 + 10 * 60_000) / 60_000)]);
    }
}

#[cfg(test)]
mod key_budget {
    use super::*;
    use crate::kv::MemoryKv;
    use crate::shop::change_config;

    const KEY: &[u8] = b"signing-key";
    /// Fermyon Cloud's limit of keys per store.
    const KEY_LIMIT: usize = 1024;

    /// Two event days at 1,000 drinks a day, with the sweeper every minute:
    /// the store never holds more than Fermyon Cloud's 1,024 keys, and the
    /// history, metrics and board stay right.
    #[test]
    fn a_two_day_event_at_a_thousand_drinks_a_day_stays_within_the_key_budget() {
        let kv = MemoryKv::new();
        let shop = ShopId::main();
        change_config(&kv, &shop, "setup", |c| Ok(ShopConfig { open: true, ..c.clone() })).unwrap();
        let mut n = 0u64;
        let mut ctx = |now_ms: i64| {
            n += 1;
            Ctx { kv: &kv, now_ms, writer: Box::leak(format!("w{n}").into_boxed_str()), signing_key: KEY }
        };
        let latte: DrinkChoice =
            serde_json::from_str(r#"{"drinkId":"latte","options":{"milk":"oat","size":"regular"}}"#).unwrap();
        // Day 1 opens at 07:00 UTC (the business day starts at 05:00).
        let day_start = 1_795_849_200_000;
        let mut most_keys = 0;
        let mut last_customer_of_day = Vec::new();
        for day in 0..2i64 {
            let opening = day_start + day * 86_400_000;
            let mut pending: Vec<(i64, String, String)> = Vec::new(); // (complete at, id, customer)
            let mut next_sweep = opening;
            for i in 0..1000i64 {
                // One order every 36 s for 10 hours; each is made 3 minutes after it is ordered.
                let now = opening + i * 36_000;
                while next_sweep <= now {
                    sweep(&ctx(next_sweep), false).unwrap();
                    next_sweep += 60_000;
                }
                pending.retain(|(at, id, _)| {
                    if *at <= now {
                        staff_action(&ctx(*at), id, StaffAction::Complete, "barista-1", false).unwrap();
                        false
                    } else {
                        true
                    }
                });
                let customer = format!("d{day}-c{i}");
                let slot = qr::slot_at(now / 1000, 300);
                let code = qr::code_for(KEY, &shop, slot);
                let order = redeem(&ctx(now), &shop, &customer, &code, None, false).unwrap().order.view;
                submit_drink(&ctx(now + 20_000), &order.id, &customer, &latte).unwrap();
                pending.push((now + 200_000, order.id, customer.clone()));
                most_keys = most_keys.max(kv.len());
                if i == 999 {
                    last_customer_of_day.push(customer);
                }
            }
            // The rest of the day: finish what is left, sweep until evening.
            for (at, id, _) in pending.drain(..) {
                staff_action(&ctx(at), &id, StaffAction::Complete, "barista-1", false).unwrap();
            }
            let evening = opening + 14 * 3_600_000;
            while next_sweep <= evening {
                sweep(&ctx(next_sweep), false).unwrap();
                most_keys = most_keys.max(kv.len());
                next_sweep += 60_000;
            }
        }
        assert!(most_keys < KEY_LIMIT, "the store held {most_keys} keys at its fullest");
        for day in [business_day(day_start, 0, 300), business_day(day_start + 86_400_000, 0, 300)] {
            let archive = kv.get(&archive_key(&shop, &day)).unwrap().unwrap();
            assert!(archive.len() < ARCHIVE_PART_BYTES, "{day}: {} bytes", archive.len());
            assert!(kv.get(&archive_parts(&shop, &day).key(2)).unwrap().is_none(), "a day of 1,000 orders is one part");
            println!("archive of {day}: {} bytes in one part", archive.len());
        }
        let end = day_start + 86_400_000 + 14 * 3_600_000;
        let check = ctx(end);
        // Metrics of each day are exact.
        for day in [business_day(day_start, 0, 300), business_day(day_start + 86_400_000, 0, 300)] {
            let m = metrics::day_metrics(&kv, &shop, &day).unwrap();
            assert_eq!((m.started, m.submitted, m.completed), (1000, 1000, 1000), "{day}");
        }
        // History still finds the last customer's order of day 2 (archived by now).
        let history = my_orders(&check, &last_customer_of_day[1]).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!((history[0].state, history[0].number), (OrderState::Completed, Some(1000)));
        // The board is empty at the end of the day: nothing preparing, nothing ready for long.
        let board = board(&check, &shop).unwrap();
        assert!(board.preparing.is_empty() && board.ready.is_empty());
        println!("key budget: at most {most_keys} keys over a two-day event of 2,000 drinks (limit {KEY_LIMIT})");
    }
}

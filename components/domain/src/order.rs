//! An order and its state machine (DESIGN §3). Pure: every transition is a
//! function from the order (and the time) to the next order or a refusal.

use crate::error::DomainError;
use crate::menu::Drink;
use crate::shop::ShopId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

pub const MAX_DISPLAY_NAME_CHARS: usize = 24;

/// The random-looking part of an order id: base32 characters (lowercase) of an HMAC.
pub const ID_HASH_CHARS: usize = 26;
/// Separates the parts of an order id; shop ids (slugs: `a-z`, `0-9`, `-`) never contain it.
pub const ID_SEPARATOR: char = '.';

/// Where an order id says its order lives, read off the id alone (no store access).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderHome {
    /// `{shop}.{yyyymmdd}.{hash}`: the shop, and the business day (`YYYY-MM-DD`) the
    /// order was started in, whose archive keeps it once it is finished.
    Shop { shop: ShopId, day: String },
    /// A bare `{hash}`, as earlier versions made ids: only the order's own key names it.
    Unknown,
}

/// An order id from its parts: `{shop}.{yyyymmdd}.{hash}` (`day` is `YYYY-MM-DD`).
pub fn format_order_id(shop: &ShopId, day: &str, hash: &str) -> String {
    let compact: String = day.chars().filter(char::is_ascii_digit).collect();
    format!("{shop}{ID_SEPARATOR}{compact}{ID_SEPARATOR}{hash}")
}

fn is_id_hash(raw: &str) -> bool {
    raw.len() == ID_HASH_CHARS && raw.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// What an order id says about its order; `None` when it is not an order id
/// at all (it cannot name an order, so nothing needs to be read to say so).
pub fn order_home(id: &str) -> Option<OrderHome> {
    if is_id_hash(id) {
        return Some(OrderHome::Unknown);
    }
    let mut parts = id.split(ID_SEPARATOR);
    let (shop, day, hash) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_id_hash(hash) || day.len() != 8 || !day.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = chrono::NaiveDate::parse_from_str(day, "%Y%m%d").ok()?;
    let shop = ShopId::parse(shop).ok()?;
    Some(OrderHome::Shop { shop, day: date.format("%Y-%m-%d").to_string() })
}

/// The shop an order id names (`None` for ids of earlier versions and for
/// anything that is not an order id): what authorization checks a token's
/// shop against, before anything is read.
pub fn order_shop(id: &str) -> Option<ShopId> {
    match order_home(id)? {
        OrderHome::Shop { shop, .. } => Some(shop),
        OrderHome::Unknown => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    AwaitingDrink,
    Queued,
    InProgress,
    Completed,
    Cancelled,
    TimedOut,
}

impl OrderState {
    pub fn is_open(self) -> bool {
        matches!(self, Self::AwaitingDrink | Self::Queued | Self::InProgress)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingDrink => "awaiting_drink",
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        [Self::AwaitingDrink, Self::Queued, Self::InProgress, Self::Completed, Self::Cancelled, Self::TimedOut]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| DomainError::invalid("invalid_state", format!("`{raw}` is not an order state")))
    }
}

/// Who ended an order early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Canceller {
    Customer,
    Barista,
    Admin,
}

/// Whose time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeoutCause {
    Customer,
    Barista,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChosenOption {
    pub group_id: String,
    pub option_id: String,
    pub name: String,
}

/// The drink as ordered: ids and names copied at submission, so later menu
/// edits never change an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderedDrink {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub icon: String,
    pub options: Vec<ChosenOption>,
}

/// What the customer sends to choose a drink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrinkChoice {
    pub drink_id: String,
    #[serde(default, deserialize_with = "one_option_per_group")]
    pub options: BTreeMap<String, String>,
}

/// `{"milk": "oat", "milk": "soy"}` is two options from one group: refuse it
/// by name instead of silently keeping the last.
fn one_option_per_group<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Options;
    impl<'de> serde::de::Visitor<'de> for Options {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of option group id to option id")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut options = BTreeMap::new();
            while let Some((group, option)) = map.next_entry::<String, String>()? {
                if options.insert(group.clone(), option).is_some() {
                    return Err(serde::de::Error::custom(format!("two options chosen for group `{group}`: pick one")));
                }
            }
            Ok(options)
        }
    }
    d.deserialize_map(Options)
}

/// Checks a choice against the menu: the drink and every option must exist
/// and be available, one option per group, every required group chosen.
pub fn resolve_choice(menu: &[Drink], choice: &DrinkChoice) -> Result<OrderedDrink, DomainError> {
    let bad = |message: String| DomainError::invalid("invalid_drink", message);
    let drink = menu
        .iter()
        .find(|d| d.id == choice.drink_id)
        .ok_or_else(|| bad(format!("there is no drink `{}` on the menu", choice.drink_id)))?;
    if !drink.available {
        return Err(bad(format!("{} is not available right now", drink.name)));
    }
    let mut options = Vec::new();
    for (group_id, option_id) in &choice.options {
        let group = drink
            .modifier_groups
            .iter()
            .find(|g| &g.id == group_id)
            .ok_or_else(|| bad(format!("{} has no option group `{group_id}`", drink.name)))?;
        let option = group
            .options
            .iter()
            .find(|o| &o.id == option_id)
            .ok_or_else(|| bad(format!("{} has no option `{option_id}`", group.name)))?;
        if !option.available {
            return Err(bad(format!("{} is not available right now", option.name)));
        }
        options.push(ChosenOption {
            group_id: group.id.clone(),
            option_id: option.id.clone(),
            name: option.name.clone(),
        });
    }
    // One option per group holds by construction (a map has one value per key).
    if let Some(group) = drink.modifier_groups.iter().find(|g| g.required && !choice.options.contains_key(&g.id)) {
        return Err(bad(format!("choose a {} for your {}", group.name.to_lowercase(), drink.name)));
    }
    // Keep the menu's group order, not the alphabetical order of the request.
    options.sort_by_key(|o| drink.modifier_groups.iter().position(|g| g.id == o.group_id));
    Ok(OrderedDrink { id: drink.id.clone(), name: drink.name.clone(), icon: drink.icon.clone(), options })
}

/// Trims a display name and drops invisible formatting characters (see
/// [`crate::text`]); refuses one that is too long or has control characters.
pub fn clean_display_name(raw: Option<&str>) -> Result<Option<String>, DomainError> {
    let visible = raw.map(crate::text::strip_invisible);
    let Some(name) = visible.as_deref().map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(DomainError::invalid(
            "invalid_display_name",
            format!("a display name has at most {MAX_DISPLAY_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::invalid("invalid_display_name", "a display name cannot contain control characters"));
    }
    Ok(Some(name.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub shop_id: String,
    pub customer_id: String,
    pub display_name: Option<String>,
    /// The business day the order was started in (numbers restart daily).
    pub day: String,
    /// The QR slot the order was redeemed on.
    pub slot: u64,
    pub number: Option<u32>,
    pub state: OrderState,
    pub drink: Option<OrderedDrink>,
    pub created_ms: i64,
    pub submitted_ms: Option<i64>,
    pub claimed_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub deadline_ms: Option<i64>,
    pub barista_id: Option<String>,
    pub cancelled_by: Option<Canceller>,
    pub timeout_cause: Option<TimeoutCause>,
    #[serde(default)]
    pub robot: bool,
}

/// Whose time ran out, if an order in `state` with `deadline_ms` is open and past it.
fn expired(state: OrderState, deadline_ms: Option<i64>, now_ms: i64) -> Option<TimeoutCause> {
    if !state.is_open() || deadline_ms.is_none_or(|d| now_ms < d) {
        return None;
    }
    Some(if state == OrderState::AwaitingDrink { TimeoutCause::Customer } else { TimeoutCause::Barista })
}

/// What an order's place in the queue depends on: read instead of the whole
/// order where many are read at once (the rest of each record is skipped).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueFacts {
    pub number: Option<u32>,
    state: OrderState,
    drink: Option<DrinkId>,
    deadline_ms: Option<i64>,
    pub barista_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct DrinkId {
    id: String,
}

/// An open order's queue facts as its entry in the shop's open set keeps
/// them (`lifecycle::OpenEntry`): noted at each change of the order, so that
/// queue positions and wait estimates need no order reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueNote {
    /// The order's revision these facts come from: a late note never replaces a newer one.
    pub rev: u64,
    pub state: OrderState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// The drink's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drink: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barista: Option<String>,
}

impl QueueNote {
    /// The facts of `order` as stored at revision `rev`.
    pub fn of(order: &Order, rev: u64) -> Self {
        Self {
            rev,
            state: order.state,
            number: order.number,
            drink: order.drink.as_ref().map(|d| d.id.clone()),
            barista: order.barista_id.clone(),
        }
    }
}

impl QueueFacts {
    /// The facts a note keeps, with the order's deadline (kept beside it).
    pub fn noted(note: &QueueNote, deadline_ms: i64) -> Self {
        Self {
            number: note.number,
            state: note.state,
            drink: note.drink.clone().map(|id| DrinkId { id }),
            deadline_ms: Some(deadline_ms),
            barista_id: note.barista.clone(),
        }
    }

    /// The state at `now` (see [`Order::at`]).
    pub fn state_at(&self, now_ms: i64) -> OrderState {
        match expired(self.state, self.deadline_ms, now_ms) {
            Some(_) => OrderState::TimedOut,
            None => self.state,
        }
    }

    pub fn drink_id(&self) -> Option<&str> {
        self.drink.as_ref().map(|d| d.id.as_str())
    }
}

fn invalid_transition(order: &Order, action: &str) -> DomainError {
    DomainError::conflict(
        "invalid_transition",
        format!("cannot {action} an order that is {}", order.state.as_str().replace('_', " ")),
    )
}

impl Order {
    /// The order as it stands at `now`: an open order past its deadline has timed out,
    /// whether or not anyone has written that down yet.
    pub fn at(&self, now_ms: i64) -> Order {
        match self.expired(now_ms) {
            Some(cause) => self.timed_out(cause, self.deadline_ms.unwrap_or(now_ms)),
            None => self.clone(),
        }
    }

    /// Whose time ran out, if the order is open and past its deadline.
    pub fn expired(&self, now_ms: i64) -> Option<TimeoutCause> {
        expired(self.state, self.deadline_ms, now_ms)
    }

    fn timed_out(&self, cause: TimeoutCause, at_ms: i64) -> Order {
        Order {
            state: OrderState::TimedOut,
            timeout_cause: Some(cause),
            finished_ms: Some(at_ms),
            deadline_ms: None,
            ..self.clone()
        }
    }

    /// Persists a timeout (the sweeper, or any reader that finds one).
    pub fn expire(&self, now_ms: i64) -> Option<Order> {
        self.expired(now_ms).map(|cause| self.timed_out(cause, self.deadline_ms.unwrap_or(now_ms)))
    }

    pub fn submit(
        &self,
        drink: OrderedDrink,
        number: u32,
        now_ms: i64,
        barista_timeout_s: u32,
    ) -> Result<Order, DomainError> {
        let current = self.at(now_ms);
        if current.state != OrderState::AwaitingDrink {
            return Err(invalid_transition(&current, "choose a drink for"));
        }
        Ok(Order {
            state: OrderState::Queued,
            drink: Some(drink),
            number: Some(number),
            submitted_ms: Some(now_ms),
            deadline_ms: Some(now_ms + barista_timeout_s as i64 * 1000),
            ..self.clone()
        })
    }

    /// A number taken for an order that can no longer be submitted stays with
    /// that order, so the day's numbers have no gaps.
    pub fn keep_number(&self, number: u32) -> Order {
        Order { number: self.number.or(Some(number)), ..self.clone() }
    }

    pub fn claim(&self, barista: &str, now_ms: i64) -> Result<Order, DomainError> {
        let current = self.at(now_ms);
        match current.state {
            OrderState::Queued => Ok(Order {
                state: OrderState::InProgress,
                barista_id: Some(barista.to_string()),
                claimed_ms: Some(now_ms),
                ..self.clone()
            }),
            OrderState::InProgress => Err(DomainError::conflict(
                "already_claimed",
                if current.barista_id.as_deref() == Some(barista) {
                    "you are already making this order".to_string()
                } else {
                    "another barista is already making this order".to_string()
                },
            )),
            _ => Err(invalid_transition(&current, "claim")),
        }
    }

    pub fn release(&self, barista: &str, is_admin: bool, now_ms: i64) -> Result<Order, DomainError> {
        let current = self.at(now_ms);
        if current.state != OrderState::InProgress {
            return Err(invalid_transition(&current, "release"));
        }
        if current.barista_id.as_deref() != Some(barista) && !is_admin {
            return Err(DomainError::conflict("claimed_by_other", "only the barista making this order can release it"));
        }
        Ok(Order { state: OrderState::Queued, barista_id: None, claimed_ms: None, ..self.clone() })
    }

    pub fn complete(&self, barista: &str, is_admin: bool, now_ms: i64) -> Result<Order, DomainError> {
        let current = self.at(now_ms);
        match current.state {
            OrderState::Queued | OrderState::InProgress => {}
            _ => return Err(invalid_transition(&current, "complete")),
        }
        if current.state == OrderState::InProgress && current.barista_id.as_deref() != Some(barista) && !is_admin {
            return Err(DomainError::conflict("claimed_by_other", "another barista is making this order"));
        }
        Ok(Order {
            state: OrderState::Completed,
            barista_id: self.barista_id.clone().or_else(|| Some(barista.to_string())),
            finished_ms: Some(now_ms),
            deadline_ms: None,
            ..self.clone()
        })
    }

    pub fn cancel(&self, by: Canceller, now_ms: i64) -> Result<Order, DomainError> {
        let current = self.at(now_ms);
        if !current.state.is_open() {
            return Err(invalid_transition(&current, "cancel"));
        }
        Ok(Order {
            state: OrderState::Cancelled,
            cancelled_by: Some(by),
            finished_ms: Some(now_ms),
            deadline_ms: None,
            ..self.clone()
        })
    }

    /// The JSON every API answers with.
    pub fn view(&self, now_ms: i64, queue_position: Option<u32>) -> OrderView {
        use crate::time::rfc3339;
        let order = self.at(now_ms);
        OrderView {
            queue_position: if order.state == OrderState::Queued { queue_position } else { None },
            estimated_wait_seconds: None,
            id: order.id,
            shop_id: order.shop_id,
            number: order.number,
            state: order.state,
            drink: order.drink,
            display_name: order.display_name,
            created_at: rfc3339(order.created_ms),
            submitted_at: order.submitted_ms.map(rfc3339),
            claimed_at: order.claimed_ms.map(rfc3339),
            finished_at: order.finished_ms.map(rfc3339),
            deadline: order.deadline_ms.map(rfc3339),
            barista_id: order.barista_id,
            cancelled_by: order.cancelled_by,
            timeout_cause: order.timeout_cause,
            robot: order.robot,
            age_seconds: ((now_ms - order.submitted_ms.unwrap_or(order.created_ms)) / 1000).max(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub id: String,
    pub shop_id: String,
    pub number: Option<u32>,
    pub state: OrderState,
    pub drink: Option<OrderedDrink>,
    pub display_name: Option<String>,
    pub created_at: String,
    pub submitted_at: Option<String>,
    pub claimed_at: Option<String>,
    pub finished_at: Option<String>,
    pub deadline: Option<String>,
    pub barista_id: Option<String>,
    pub cancelled_by: Option<Canceller>,
    pub timeout_cause: Option<TimeoutCause>,
    pub queue_position: Option<u32>,
    /// While queued: how long until the drink is likely ready, from the recent
    /// pace per drink of the orders ahead (and this one).
    pub estimated_wait_seconds: Option<u32>,
    pub robot: bool,
    /// Seconds since submission (or creation, before submission).
    pub age_seconds: i64,
}

/// An order's view with its JSON, serialized once: a request's answer and
/// the event that announces the change carry the same bytes.
#[derive(Debug, Clone)]
pub struct Shown {
    pub view: OrderView,
    pub json: Box<RawValue>,
}

impl Shown {
    pub fn new(view: OrderView) -> Self {
        let json = serde_json::value::to_raw_value(&view).expect("an order view always serializes to JSON");
        Self { view, json }
    }

    /// The view's JSON object with one more field at its end (`value` is JSON).
    pub fn json_with(&self, name: &str, value: &str) -> Vec<u8> {
        let object = self.json.get().as_bytes();
        let open = object.strip_suffix(b"}").unwrap_or(object);
        [open, b",\"", name.as_bytes(), b"\":", value.as_bytes(), b"}"].concat()
    }
}

/// The JSON is made from the view, so the views decide.
impl PartialEq for Shown {
    fn eq(&self, other: &Self) -> bool {
        self.view == other.view
    }
}

impl std::ops::Deref for Shown {
    type Target = OrderView;

    fn deref(&self) -> &OrderView {
        &self.view
    }
}

impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::default_menu;

    fn order() -> Order {
        Order {
            id: "o1".into(),
            shop_id: "main".into(),
            customer_id: "c1".into(),
            display_name: None,
            day: "2026-11-22".into(),
            slot: 1,
            number: None,
            state: OrderState::AwaitingDrink,
            drink: None,
            created_ms: 0,
            submitted_ms: None,
            claimed_ms: None,
            finished_ms: None,
            deadline_ms: Some(300_000),
            barista_id: None,
            cancelled_by: None,
            timeout_cause: None,
            robot: false,
        }
    }

    fn latte() -> OrderedDrink {
        let choice = DrinkChoice {
            drink_id: "latte".into(),
            options: [("size".to_string(), "large".to_string()), ("milk".to_string(), "oat".to_string())].into(),
        };
        resolve_choice(&default_menu(), &choice).unwrap()
    }

    fn queued() -> Order {
        order().submit(latte(), 7, 1_000, 900).unwrap()
    }

    #[test]
    fn order_ids_name_their_shop_and_day_and_nothing_else_is_an_order_id() {
        let hash = "abcdefghijklmnopqrstuvwxyz";
        let booth = ShopId::parse("booth-7").unwrap();
        let id = format_order_id(&booth, "2026-11-22", hash);
        assert_eq!(id, "booth-7.20261122.abcdefghijklmnopqrstuvwxyz");
        assert_eq!(order_home(&id), Some(OrderHome::Shop { shop: booth.clone(), day: "2026-11-22".into() }));
        assert_eq!(order_shop(&id), Some(booth));
        let legacy = "a2b3c4d5e6f7g2h3i4j5k6l7m2";
        assert_eq!((order_home(legacy), order_shop(legacy)), (Some(OrderHome::Unknown), None));
        for bad in [
            "",
            "o1",
            "../etc/passwd",
            "main.20261122",
            "main.20261122.abcdefghijklmnopqrstuvwxy",   // 25 characters
            "main.20261122.abcdefghijklmnopqrstuvwxyz1", // a 1 is not base32
            "main.20261122.ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "main.20261322.abcdefghijklmnopqrstuvwxyz", // month 13
            "main.2026112.abcdefghijklmnopqrstuvwxyz",
            "main.+2026112.abcdefghijklmnopqrstuvwxyz",
            "Main.20261122.abcdefghijklmnopqrstuvwxyz",
            "-main.20261122.abcdefghijklmnopqrstuvwxyz",
            "a.b.20261122.abcdefghijklmnopqrstuvwxyz",
            ".20261122.abcdefghijklmnopqrstuvwxyz",
            "main.20261122.abcdefghijklmnopqrstuvwxyz.",
            "abcdefghijklmnopqrstuvwxy0",
        ] {
            assert_eq!(order_home(bad), None, "{bad}");
            assert_eq!(order_shop(bad), None, "{bad}");
        }
    }

    #[test]
    fn queue_facts_read_from_a_stored_order_agree_with_the_order() {
        let making = queued().claim("barista-a", 2_000).unwrap();
        for order in [order(), queued(), making] {
            let facts: QueueFacts = serde_json::from_slice(&crate::kv::to_json(&order)).unwrap();
            assert_eq!((facts.number, facts.barista_id.as_deref()), (order.number, order.barista_id.as_deref()));
            assert_eq!(facts.drink_id(), order.drink.as_ref().map(|d| d.id.as_str()));
            for now in [1_500, 299_999, 300_000, 901_000, 2_000_000] {
                assert_eq!(facts.state_at(now), order.at(now).state, "{:?} at {now}", order.state);
            }
        }
    }

    #[test]
    fn the_happy_path_goes_awaiting_queued_in_progress_completed() {
        let q = queued();
        assert_eq!((q.state, q.number, q.deadline_ms), (OrderState::Queued, Some(7), Some(901_000)));
        let making = q.claim("barista-a", 2_000).unwrap();
        assert_eq!((making.state, making.barista_id.as_deref()), (OrderState::InProgress, Some("barista-a")));
        let done = making.complete("barista-a", false, 3_000).unwrap();
        assert_eq!((done.state, done.finished_ms, done.deadline_ms), (OrderState::Completed, Some(3_000), None));
    }

    #[test]
    fn every_transition_outside_the_table_is_invalid() {
        let completed = queued().complete("b", false, 2_000).unwrap();
        let cancelled = queued().cancel(Canceller::Customer, 2_000).unwrap();
        for done in [&completed, &cancelled] {
            assert_eq!(done.claim("b", 3_000).unwrap_err().code(), "invalid_transition");
            assert_eq!(done.complete("b", true, 3_000).unwrap_err().code(), "invalid_transition");
            assert_eq!(done.cancel(Canceller::Admin, 3_000).unwrap_err().code(), "invalid_transition");
            assert_eq!(done.release("b", true, 3_000).unwrap_err().code(), "invalid_transition");
        }
        assert_eq!(order().claim("b", 1).unwrap_err().code(), "invalid_transition");
        assert_eq!(order().complete("b", false, 1).unwrap_err().code(), "invalid_transition");
        assert_eq!(queued().release("b", false, 2_000).unwrap_err().code(), "invalid_transition");
        assert_eq!(queued().submit(latte(), 8, 2_000, 900).unwrap_err().code(), "invalid_transition");
        assert_eq!(
            queued().complete("b", false, 2_000).unwrap().state,
            OrderState::Completed,
            "pickup straight from the queue"
        );
    }

    #[test]
    fn a_claimed_order_belongs_to_its_barista() {
        let making = queued().claim("a", 2_000).unwrap();
        assert_eq!(making.claim("b", 2_500).unwrap_err().code(), "already_claimed");
        assert_eq!(making.release("b", false, 2_500).unwrap_err().code(), "claimed_by_other");
        assert_eq!(making.complete("b", false, 2_500).unwrap_err().code(), "claimed_by_other");
        assert_eq!(making.release("b", true, 2_500).unwrap().state, OrderState::Queued, "an admin may release");
        let released = making.release("a", false, 2_500).unwrap();
        assert_eq!((released.state, released.barista_id), (OrderState::Queued, None));
    }

    #[test]
    fn deadlines_time_orders_out_with_the_right_cause() {
        let waiting = order();
        assert_eq!(waiting.at(299_999).state, OrderState::AwaitingDrink);
        let late = waiting.at(300_000);
        assert_eq!((late.state, late.timeout_cause), (OrderState::TimedOut, Some(TimeoutCause::Customer)));
        assert_eq!(waiting.submit(latte(), 1, 300_000, 900).unwrap_err().code(), "invalid_transition");
        let q = queued();
        assert_eq!(q.expire(900_999), None);
        let expired = q.expire(901_000).unwrap();
        assert_eq!((expired.state, expired.timeout_cause), (OrderState::TimedOut, Some(TimeoutCause::Barista)));
        assert_eq!(q.claim("b", 901_000).unwrap_err().code(), "invalid_transition");
        assert_eq!(q.cancel(Canceller::Customer, 901_000).unwrap_err().code(), "invalid_transition");
    }

    #[test]
    fn drink_choices_are_checked_against_the_menu() {
        let menu = default_menu();
        let choose = |drink: &str, options: &[(&str, &str)]| {
            let choice = DrinkChoice {
                drink_id: drink.into(),
                options: options.iter().map(|(g, o)| (g.to_string(), o.to_string())).collect(),
            };
            resolve_choice(&menu, &choice)
        };
        let ok = choose("cappuccino", &[("milk", "oat"), ("size", "small")]).unwrap();
        assert_eq!(ok.options.iter().map(|o| o.option_id.as_str()).collect::<Vec<_>>(), ["small", "oat"]);
        let cases = [
            (choose("frappuccino", &[]), "no drink `frappuccino`"),
            (choose("cappuccino", &[("size", "small")]), "choose a milk"),
            (choose("cappuccino", &[("milk", "oat"), ("size", "huge")]), "no option `huge`"),
            (choose("cappuccino", &[("milk", "oat"), ("size", "small"), ("syrup", "x")]), "no option group `syrup`"),
            (choose("espresso", &[("milk", "oat")]), "no option group `milk`"),
        ];
        for (result, expected) in cases {
            let message = result.unwrap_err().message();
            assert!(message.contains(expected), "`{message}` should mention `{expected}`");
        }
        let mut closed = menu.clone();
        closed[4].available = false;
        closed[5].modifier_groups[1].options[1].available = false;
        let choice = |d: &str, m: &str| DrinkChoice {
            drink_id: d.into(),
            options: [("size".to_string(), "small".to_string()), ("milk".to_string(), m.to_string())].into(),
        };
        assert!(resolve_choice(&closed, &choice("cappuccino", "oat")).unwrap_err().message().contains("not available"));
        assert!(resolve_choice(&closed, &choice("latte", "oat"))
            .unwrap_err()
            .message()
            .contains("Oat milk is not available"));
        let twice = serde_json::from_str::<DrinkChoice>(r#"{"drinkId":"latte","options":{"milk":"oat","milk":"soy"}}"#);
        assert!(twice.unwrap_err().to_string().contains("two options chosen for group `milk`"));
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(clean_display_name(Some("  Ana ")).unwrap(), Some("Ana".to_string()));
        assert_eq!(clean_display_name(Some("   ")).unwrap(), None);
        assert!(clean_display_name(Some(&"x".repeat(25))).is_err());
        assert!(clean_display_name(Some("a\u{7}b")).is_err());
        // Nothing invisible reaches the public board.
        assert_eq!(clean_display_name(Some("\u{202E}ana\u{200B}")).unwrap(), Some("ana".to_string()));
        assert_eq!(clean_display_name(Some("\u{2066}\u{2069}")).unwrap(), None);
    }

    #[test]
    fn the_view_shows_lazy_timeouts_and_queue_positions_only_when_queued() {
        let v = queued().view(2_000, Some(3));
        assert_eq!((v.queue_position, v.number, v.age_seconds), (Some(3), Some(7), 1));
        let v = queued().view(901_000, Some(3));
        assert_eq!((v.state, v.queue_position), (OrderState::TimedOut, None));
        let json = serde_json::to_value(queued().view(2_000, None)).unwrap();
        assert_eq!(json["state"], "queued");
        assert_eq!(json["drink"]["options"][1]["groupId"], "milk");
        assert_eq!(json["submittedAt"], "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn a_shown_view_is_its_json_and_takes_one_more_field() {
        let view = queued().view(2_000, Some(3));
        let shown = Shown::new(view.clone());
        assert_eq!(serde_json::to_string(&shown).unwrap(), serde_json::to_string(&view).unwrap());
        assert_eq!(shown.number, Some(7));
        let with: serde_json::Value = serde_json::from_slice(&shown.json_with("tokensLeft", "4")).unwrap();
        let mut expected = serde_json::to_value(&view).unwrap();
        expected["tokensLeft"] = 4.into();
        assert_eq!(with, expected);
    }
}

//! Server-sent event streams: who sees which event, and how it is framed.
//! Each audience gets its own projection of the shop's log:
//! - staff: every event as logged;
//! - a customer: events about their own orders, config changes, and their own refusals;
//! - the public board: order numbers, drinks, display names and states; how
//!   many drinks a code's slot has left; the public part of config changes —
//!   never customer ids, order ids or QR codes.

use crate::events::{kind, Event};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Staff,
    Customer(String),
    Board,
}

/// How long one response streams before ending cleanly (hosted Spin platforms stop requests at 30 s).
pub const STREAM_SECONDS: u64 = 25;
/// A comment this often keeps proxies from closing an idle stream.
pub const KEEPALIVE_SECONDS: u64 = 15;
/// The reconnect delay the browser is asked to use.
pub const RETRY_MS: u64 = 1000;

/// The event as this audience may see it, or `None`.
pub fn project(event: &Event, audience: &Audience) -> Option<Event> {
    match audience {
        Audience::Staff => Some(event.clone()),
        Audience::Customer(me) => {
            let mine = event.customer_id.as_deref() == Some(me.as_str());
            (mine || event.kind == kind::CONFIG_CHANGED).then(|| event.clone())
        }
        Audience::Board => board_projection(event),
    }
}

/// The config fields a public screen needs (name, open or closed, the code's
/// quota and rotation); the rest of a config change stays off the board.
pub const BOARD_CONFIG_FIELDS: [&str; 4] = ["name", "open", "drinksPerCode", "codeRotationSeconds"];

fn board_projection(event: &Event) -> Option<Event> {
    let data = match event.kind.as_str() {
        kind::WAITING_COMPLETION
        | kind::MAKE_ORDER
        | kind::ORDER_COMPLETED
        | kind::ORDER_CANCELLED
        | kind::ORDER_TIMEOUT => {
            let order = &event.data["order"];
            json!({
                "number": order["number"],
                "drink": order["drink"]["name"],
                "displayName": order["displayName"],
                "state": order["state"],
                "since": board_since(order, &event.time),
            })
        }
        // The display counts down the code on screen: which slot, how many left. Not the code.
        kind::NEW_ORDER => {
            let (slot, left) = (&event.data["slot"], &event.data["tokensLeft"]);
            if !slot.is_u64() || !left.is_u64() {
                return None;
            }
            json!({ "slot": slot, "tokensLeft": left })
        }
        kind::CONFIG_CHANGED => {
            let public = BOARD_CONFIG_FIELDS
                .iter()
                .filter_map(|field| event.data.get(*field).map(|value| (field.to_string(), value.clone())));
            Value::Object(public.collect())
        }
        _ => return None,
    };
    Some(Event { order_id: None, customer_id: None, data, ..event.clone() })
}

/// When the order entered the column it is shown in, as `GET /board` has it:
/// its submission while it is being prepared, its end once it is ready.
fn board_since(order: &Value, event_time: &str) -> Value {
    let field = match order["state"].as_str() {
        Some("queued" | "in_progress") => "submittedAt",
        _ => "finishedAt",
    };
    match &order[field] {
        Value::String(time) => Value::String(time.clone()),
        _ => Value::String(event_time.to_string()),
    }
}

/// Whether an event moves the queue (someone else's position may change).
pub fn moves_queue(event: &Event) -> bool {
    matches!(
        event.kind.as_str(),
        kind::WAITING_COMPLETION
            | kind::MAKE_ORDER
            | kind::ORDER_COMPLETED
            | kind::ORDER_CANCELLED
            | kind::ORDER_TIMEOUT
    )
}

/// One SSE frame: `id`, `event` (the type) and `data` (JSON on one line).
pub fn frame(id: u64, kind: &str, data: &Value) -> String {
    format!("id: {id}\nevent: {kind}\ndata: {data}\n\n")
}

pub fn event_frame(event: &Event) -> String {
    frame(event.id, &event.kind, &serde_json::to_value(event).unwrap_or_default())
}

/// Where a (re)connecting client resumes: the `Last-Event-ID` header, else the
/// `lastEventId` query parameter (first connects cannot set headers).
pub fn resume_position(header: Option<&str>, query: Option<&str>) -> Option<u64> {
    header.or(query).and_then(|raw| raw.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, customer: Option<&str>) -> Event {
        Event {
            id: 7,
            kind: kind.into(),
            time: "2026-11-22T10:00:00.000Z".into(),
            time_ms: 0,
            shop_id: "main".into(),
            order_id: Some("order-1".into()),
            customer_id: customer.map(str::to_string),
            data: json!({ "order": { "number": 3, "drink": { "name": "Latte" }, "displayName": "Ana", "state": "queued",
                           "id": "order-1" }, "tokensLeft": 4 }),
        }
    }

    #[test]
    fn customers_see_their_own_orders_and_config_changes_only() {
        let me = Audience::Customer("c-me".into());
        assert!(project(&event(kind::WAITING_COMPLETION, Some("c-me")), &me).is_some());
        assert!(project(&event(kind::WAITING_COMPLETION, Some("c-other")), &me).is_none());
        assert!(project(&event(kind::SHOP_UNAVAILABLE, Some("c-other")), &me).is_none());
        assert!(project(&event(kind::CONFIG_CHANGED, None), &me).is_some());
        assert!(project(&event(kind::NEW_ORDER, None), &me).is_none());
    }

    #[test]
    fn the_board_gets_numbers_and_drinks_but_no_ids_or_codes() {
        let projected = project(&event(kind::WAITING_COMPLETION, Some("c-me")), &Audience::Board).unwrap();
        assert_eq!(
            projected.data,
            json!({ "number": 3, "drink": "Latte", "displayName": "Ana", "state": "queued",
                                            "since": "2026-11-22T10:00:00.000Z" })
        );
        let text = serde_json::to_string(&projected).unwrap();
        assert!(!text.contains("c-me") && !text.contains("order-1"), "{text}");
        for private in [kind::SHOP_UNAVAILABLE, kind::WORKFLOW_STARTED, kind::ORDER_FINISHED, kind::DRINK_AVERAGE_TIME]
        {
            assert!(project(&event(private, None), &Audience::Board).is_none(), "{private}");
        }
    }

    #[test]
    fn a_board_item_is_as_old_as_its_column_like_the_board_read() {
        let mut claimed = event(kind::MAKE_ORDER, Some("c-me"));
        claimed.data["order"]["state"] = json!("in_progress");
        claimed.data["order"]["submittedAt"] = json!("2026-11-22T09:58:00.000Z");
        let projected = project(&claimed, &Audience::Board).unwrap();
        assert_eq!(projected.data["since"], "2026-11-22T09:58:00.000Z", "claiming does not reset the age");
        let mut done = event(kind::ORDER_COMPLETED, Some("c-me"));
        done.data["order"]["state"] = json!("completed");
        done.data["order"]["submittedAt"] = json!("2026-11-22T09:58:00.000Z");
        done.data["order"]["finishedAt"] = json!("2026-11-22T10:01:00.000Z");
        assert_eq!(project(&done, &Audience::Board).unwrap().data["since"], "2026-11-22T10:01:00.000Z");
    }

    #[test]
    fn the_board_learns_a_slots_drinks_left_but_not_the_order_customer_or_code() {
        let mut redeemed = event(kind::NEW_ORDER, Some("c-me"));
        redeemed.data = json!({ "order": { "id": "order-1", "customerId": "c-me", "code": "K7Q2M9XW3A" },
                                "slot": 5_893_412, "tokensLeft": 4 });
        let projected = project(&redeemed, &Audience::Board).unwrap();
        assert_eq!(projected.data, json!({ "slot": 5_893_412, "tokensLeft": 4 }));
        assert_eq!((&projected.order_id, &projected.customer_id), (&None, &None));
        let text = serde_json::to_string(&projected).unwrap();
        for private in ["order-1", "c-me", "K7Q2M9XW3A"] {
            assert!(!text.contains(private), "{text}");
        }
        // An event without a slot (written by an older build) tells the board nothing it can use.
        assert!(project(&event(kind::NEW_ORDER, None), &Audience::Board).is_none());
    }

    #[test]
    fn the_board_gets_only_the_public_part_of_a_config_change() {
        let mut changed = event(kind::CONFIG_CHANGED, None);
        changed.order_id = None;
        changed.data = json!({ "shopId": "main", "name": "Main bar", "open": true, "drinksPerCode": 10,
                               "codeRotationSeconds": 300, "codeGraceSeconds": 30, "maxOpenOrders": 20,
                               "maxOpenOrdersPerCustomer": 1, "customerTimeoutSeconds": 300,
                               "menu": [{ "id": "latte" }] });
        let projected = project(&changed, &Audience::Board).unwrap();
        assert_eq!(
            projected.data,
            json!({ "name": "Main bar", "open": true, "drinksPerCode": 10, "codeRotationSeconds": 300 })
        );
        // A partial config still projects what it has.
        changed.data = json!({ "open": false, "maxOpenOrders": 3 });
        assert_eq!(project(&changed, &Audience::Board).unwrap().data, json!({ "open": false }));
    }

    #[test]
    fn staff_see_everything() {
        let e = event(kind::NEW_ORDER, Some("c"));
        assert_eq!(project(&e, &Audience::Staff), Some(e));
    }

    #[test]
    fn frames_follow_the_sse_format_and_resume_positions_parse() {
        assert_eq!(frame(5, "reset", &json!({ "next": 9 })), "id: 5\nevent: reset\ndata: {\"next\":9}\n\n");
        assert_eq!(resume_position(Some("12"), Some("3")), Some(12));
        assert_eq!(resume_position(None, Some("3")), Some(3));
        assert_eq!(resume_position(Some("x"), None), None);
        assert_eq!(resume_position(None, None), None);
    }
}

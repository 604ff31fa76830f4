//! Server-sent event streams: who sees which event, and how it is framed.
//! Each audience gets its own projection of the shop's log:
//! - staff: every event as logged;
//! - a customer: events about their own orders, config changes, and their own refusals;
//! - the public board: order numbers, drinks, display names and states only —
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
                "since": event.time,
            })
        }
        kind::CONFIG_CHANGED => json!({ "open": event.data["open"], "name": event.data["name"] }),
        _ => return None,
    };
    Some(Event { order_id: None, customer_id: None, data, ..event.clone() })
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
        for private in [kind::NEW_ORDER, kind::SHOP_UNAVAILABLE, kind::WORKFLOW_STARTED, kind::ORDER_FINISHED] {
            assert!(project(&event(private, None), &Audience::Board).is_none(), "{private}");
        }
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

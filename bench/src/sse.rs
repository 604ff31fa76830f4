//! Many displays on the board stream while orders move: does every client
//! get every change, and how long after the change was made?

use crate::api::{self, ADMIN_PIN, BARISTA_PIN, DISPLAY_PIN};
use crate::client::{self, Conn};
use crate::load::histogram;
use anyhow::{anyhow, Result};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

const SHOP: &str = "live";

pub struct SseResult {
    pub clients: usize,
    pub changes: usize,
    /// Clients that received every change.
    pub complete_clients: usize,
    pub delivered: u64,
    pub latencies: Histogram<u64>,
    /// Reconnections (streams end by design every 25 s; clients resume with Last-Event-ID).
    pub reconnects: u64,
    pub connect_failures: u64,
}

/// A change as the board shows it: the event type and the order number.
type Key = (String, u64);

/// What each client saw: key → when it arrived.
type Seen = Rc<RefCell<HashMap<Key, Instant>>>;

pub async fn measure(addr: SocketAddr, clients: usize, changes: usize, pace: Duration) -> Result<SseResult> {
    let mut conn = Conn::new(addr);
    let admin = api::staff_token(&mut conn, ADMIN_PIN).await?;
    let display = api::staff_token(&mut conn, DISPLAY_PIN).await?;
    let barista = api::staff_token(&mut conn, BARISTA_PIN).await?;
    api::open_shop(&mut conn, &admin, SHOP, &json!({ "maxOpenOrders": 1000, "drinksPerCode": 1000 })).await?;
    let code = api::current_code(&mut conn, &display, SHOP).await?;

    // Each order makes up to three changes: queued, making, completed.
    let orders = changes.div_ceil(3);
    let customers = api::customer_tokens(addr, orders as u64).await?;
    let mut redeemed = Vec::new();
    for customer in &customers {
        let path = format!("/api/shops/{SHOP}/orders");
        let order = conn.expect(201, Method::POST, &path, Some(customer), Some(&json!({ "code": code }))).await?;
        redeemed.push((customer.clone(), order["id"].as_str().unwrap_or_default().to_string()));
    }

    let done = Rc::new(Cell::new(false));
    let connected = Rc::new(Cell::new(0usize));
    let reconnects = Rc::new(Cell::new(0u64));
    let failures = Rc::new(Cell::new(0u64));
    let mut seen_by_client = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let seen: Seen = Rc::default();
        seen_by_client.push(seen.clone());
        let (done, connected, reconnects, failures) =
            (done.clone(), connected.clone(), reconnects.clone(), failures.clone());
        tasks.push(tokio::task::spawn_local(async move {
            follow_board(addr, seen, done, connected, reconnects, failures).await;
        }));
        // Connect in waves so the accept queue never overflows.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let waiting = Instant::now();
    while connected.get() < clients {
        if waiting.elapsed() > Duration::from_secs(30) {
            return Err(anyhow!("only {} of {clients} board streams opened", connected.get()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The changes, one every `pace`, each timed from just before its request.
    let mut sent: HashMap<Key, Instant> = HashMap::new();
    let mut numbers = Vec::new();
    let mut plan: Vec<(&str, usize)> = (0..orders).map(|o| ("submit", o)).collect();
    plan.extend((0..orders).flat_map(|o| [("claim", o), ("complete", o)]));
    plan.truncate(changes);
    for (action, o) in plan {
        let started = Instant::now();
        let (customer, id) = &redeemed[o];
        let (kind, reply) = match action {
            "submit" => ("OrderManager.WaitingCompletion", api::submit(&mut conn, customer, id).await?),
            "claim" => (
                "OrderManager.MakeOrder",
                conn.expect(200, Method::POST, &format!("/api/orders/{id}/claim"), Some(&barista), Some(&json!({})))
                    .await?,
            ),
            _ => (
                "OrderManager.OrderCompleted",
                conn.expect(200, Method::POST, &format!("/api/orders/{id}/complete"), Some(&barista), Some(&json!({})))
                    .await?,
            ),
        };
        if action == "submit" {
            numbers.push(reply["number"].as_u64().unwrap_or_default());
        }
        sent.insert((kind.to_string(), numbers[o]), started);
        tokio::time::sleep(pace.saturating_sub(started.elapsed())).await;
    }

    // Everyone should have everything within a few seconds.
    let waiting = Instant::now();
    let everything = |seen: &Seen| sent.keys().all(|k| seen.borrow().contains_key(k));
    while waiting.elapsed() < Duration::from_secs(30) && !seen_by_client.iter().all(everything) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done.set(true);
    for task in tasks {
        task.abort();
    }

    let mut latencies = histogram();
    let mut delivered = 0;
    for seen in &seen_by_client {
        for (key, at) in seen.borrow().iter() {
            if let Some(sent_at) = sent.get(key) {
                delivered += 1;
                let _ = latencies.record((at.saturating_duration_since(*sent_at).as_micros() as u64).max(1));
            }
        }
    }
    Ok(SseResult {
        clients,
        changes: sent.len(),
        complete_clients: seen_by_client.iter().filter(|s| everything(s)).count(),
        delivered,
        latencies,
        reconnects: reconnects.get(),
        connect_failures: failures.get(),
    })
}

/// One display: reads the board stream, resuming after the last id it saw
/// whenever the stream ends, as `EventSource` does.
async fn follow_board(
    addr: SocketAddr,
    seen: Seen,
    done: Rc<Cell<bool>>,
    connected: Rc<Cell<usize>>,
    reconnects: Rc<Cell<u64>>,
    failures: Rc<Cell<u64>>,
) {
    let mut last_id: Option<u64> = None;
    // Counted as connected once, at its first successful open.
    let mut counted = false;
    while !done.get() {
        let result = stream_once(addr, &seen, &mut last_id, &connected, &mut counted).await;
        if done.get() {
            break;
        }
        match result {
            // The stream ended by design (25 s): resume after the last id.
            Ok(()) => reconnects.set(reconnects.get() + 1),
            Err(_) => {
                failures.set(failures.get() + 1);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn stream_once(
    addr: SocketAddr,
    seen: &Seen,
    last_id: &mut Option<u64>,
    connected: &Rc<Cell<usize>>,
    counted: &mut bool,
) -> Result<()> {
    let mut sender = client::connect(addr).await?;
    let mut request = client::request(Method::GET, &format!("/api/shops/{SHOP}/events/board"), None, None);
    if let Some(id) = last_id {
        request.headers_mut().insert("last-event-id", id.to_string().parse()?);
    }
    let response = sender.send_request(request).await?;
    if response.status() != 200 {
        return Err(anyhow!("board stream answered {}", response.status()));
    }
    if !*counted {
        connected.set(connected.get() + 1);
        *counted = true;
    }
    let mut body = response.into_body();
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let event = buffer.split_to(end + 2);
            let arrived = Instant::now();
            if let Some((id, key)) = parse_event(&String::from_utf8_lossy(&event)) {
                *last_id = Some(id);
                if let Some(key) = key {
                    seen.borrow_mut().entry(key).or_insert(arrived);
                }
            }
        }
    }
    Ok(())
}

/// An event's id and, for order changes, its key; `None` for comments.
fn parse_event(text: &str) -> Option<(u64, Option<Key>)> {
    let (mut id, mut kind, mut data) = (None, None, None);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.trim().parse::<u64>().ok();
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = serde_json::from_str::<Value>(v).ok();
        }
    }
    let number = data.as_ref().and_then(|d| d["data"]["number"].as_u64().or_else(|| d["number"].as_u64()));
    Some((id?, kind.zip(number)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_keyed_by_type_and_order_number() {
        let frame = "id: 7\nevent: OrderManager.MakeOrder\ndata: {\"data\":{\"number\":3,\"state\":\"making\"}}\n\n";
        assert_eq!(parse_event(frame), Some((7, Some(("OrderManager.MakeOrder".to_string(), 3)))));
        assert_eq!(parse_event(": keep-alive\n\n"), None);
        assert_eq!(parse_event("id: 8\nevent: ConfigService.ConfigChanged\ndata: {\"data\":{}}\n\n"), Some((8, None)));
    }
}

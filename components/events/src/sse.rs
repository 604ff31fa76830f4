//! The raw `wasi:http` side of streaming: building the response by hand so the
//! body can be written (and flushed) event by event while the instance polls.

use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, Response, ResponseOutparam};
use spinpresso_adapter::incoming::Request;
use spinpresso_domain::events::{self, Event};
use spinpresso_domain::lifecycle;
use spinpresso_domain::order::OrderState;
use spinpresso_domain::streams::{self, moves_queue, project, Audience, KEEPALIVE_SECONDS, RETRY_MS, STREAM_SECONDS};
use std::collections::BTreeSet;
use wasi::clocks::monotonic_clock;
use wasi::io::streams::OutputStream;

use crate::Subscription;

/// How often a stream looks for new events: well inside the 0.5 s delivery target.
const POLL_NS: u64 = 100_000_000;
const SECOND_NS: u64 = 1_000_000_000;

/// The incoming request as the adapter's helpers know it (streams have no body).
pub fn to_request(incoming: &IncomingRequest) -> Request {
    Request::head_of(incoming)
}

/// Sends a complete (non-streaming) response.
pub fn send(out: ResponseOutparam, response: Response) {
    let headers: Vec<(String, Vec<u8>)> =
        response.headers().map(|(name, value)| (name.to_string(), value.as_bytes().to_vec())).collect();
    let Ok(fields) = Fields::from_list(&headers) else { return };
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(*response.status());
    let Ok(body) = outgoing.body() else { return };
    out.set(outgoing);
    if let Ok(stream) = body.write() {
        let _ = write_all(&stream, response.body());
        drop(stream);
    }
    let _ = spin_sdk::http::OutgoingBody::finish(body, None);
}

/// Writes everything, in the chunks the stream accepts; `Err` when the client is gone.
fn write_all(stream: &OutputStream, bytes: &[u8]) -> Result<(), ()> {
    for chunk in bytes.chunks(4096) {
        stream.blocking_write_and_flush(chunk).map_err(|_| ())?;
    }
    Ok(())
}

fn now_ns() -> u64 {
    monotonic_clock::now()
}

/// Streams the shop's events to one client until the time limit or until it goes away.
pub fn serve(out: ResponseOutparam, mut sub: Subscription) {
    let headers: Vec<(String, Vec<u8>)> = [
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache, no-transform"),
        ("x-accel-buffering", "no"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
    .collect();
    let Ok(fields) = Fields::from_list(&headers) else { return };
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(200);
    let Ok(body) = outgoing.body() else { return };
    out.set(outgoing);
    let Ok(stream) = body.write() else { return };

    let mut queue = QueueWatch::start(&sub);
    let started = now_ns();
    let mut gone = false;
    let mut last_write = started;
    let mut first = format!("retry: {RETRY_MS}\n: connected\n\n");
    // Nothing may be lost between connecting and the first poll: catch up at once.
    let mut next_poll = started;
    while now_ns() - started < STREAM_SECONDS * SECOND_NS {
        if now_ns() >= next_poll {
            next_poll = now_ns() + POLL_NS;
            sub.env.now_ms = spinpresso_adapter::request::now_ms();
            let mut frames = std::mem::take(&mut first);
            match poll(&mut sub, &mut queue, &mut frames) {
                Ok(()) => {}
                Err(e) => {
                    eprintln!("event stream of {}: {e}", sub.shop);
                }
            }
            if !frames.is_empty() {
                if write_all(&stream, frames.as_bytes()).is_err() {
                    gone = true; // the client went away
                    break;
                }
                last_write = now_ns();
            } else if now_ns() - last_write >= KEEPALIVE_SECONDS * SECOND_NS {
                if write_all(&stream, b": keep-alive\n\n").is_err() {
                    gone = true;
                    break;
                }
                last_write = now_ns();
            } else if stream.check_write().is_err() {
                gone = true; // closed: end the instance now rather than at the next event
                break;
            }
        }
        monotonic_clock::subscribe_duration(next_poll.saturating_sub(now_ns()).max(1)).block();
    }
    drop(stream);
    let _ = spin_sdk::http::OutgoingBody::finish(body, None);
    let seconds = (now_ns() - started) as f64 / SECOND_NS as f64;
    let why = if gone { "the client left" } else { "time limit" };
    println!("event stream of shop {} ended after {seconds:.1} s ({why})", sub.shop);
}

/// One small read of the event counter; the new events only when there are some.
fn poll(
    sub: &mut Subscription,
    queue: &mut QueueWatch,
    frames: &mut String,
) -> Result<(), spinpresso_domain::DomainError> {
    let head = events::head(&sub.env.kv, &sub.shop)?;
    // A client ahead of the head (an id this log never reached) is told to reload, like one too far behind.
    while head != sub.after {
        let batch = events::read_after(&sub.env.kv, &sub.shop, sub.after, 200, sub.env.now_ms)?;
        if batch.reset {
            // What the client missed was trimmed: it must reload its state.
            frames.push_str(&streams::frame(batch.next, "reset", &serde_json::json!({ "next": batch.next })));
            sub.after = batch.next;
            queue.refresh(sub, None, frames);
            break;
        }
        if batch.events.is_empty() {
            break; // a hole being filled: next poll
        }
        for event in &batch.events {
            if let Some(visible) = project(event, &sub.audience) {
                frames.push_str(&streams::event_frame(&visible));
            }
            queue.observe(sub, event, frames);
        }
        sub.after = batch.next;
    }
    Ok(())
}

/// A customer's queued orders: when the queue moves, their new positions are
/// sent as `queue` events, so the phone never polls for them.
struct QueueWatch {
    customer: Option<String>,
    queued: BTreeSet<String>,
}

impl QueueWatch {
    fn start(sub: &Subscription) -> Self {
        let customer = match &sub.audience {
            Audience::Customer(me) => Some(me.clone()),
            _ => None,
        };
        let mut watch = Self { customer, queued: BTreeSet::new() };
        if let Some(me) = &watch.customer {
            if let Ok(orders) = lifecycle::my_orders(&sub.env.ctx(), me) {
                watch.queued = orders.into_iter().filter(|o| o.state == OrderState::Queued).map(|o| o.id).collect();
            }
        }
        watch
    }

    fn observe(&mut self, sub: &Subscription, event: &Event, frames: &mut String) {
        let Some(me) = &self.customer else { return };
        if event.customer_id.as_deref() == Some(me.as_str()) {
            if let Some(id) = &event.order_id {
                match event.data["order"]["state"].as_str() {
                    Some("queued") => drop(self.queued.insert(id.clone())),
                    Some(_) => drop(self.queued.remove(id)),
                    None => {}
                }
            }
        } else if moves_queue(event) {
            self.refresh(sub, Some(event.id), frames);
        }
    }

    fn refresh(&mut self, sub: &Subscription, id: Option<u64>, frames: &mut String) {
        let Some(me) = &self.customer else { return };
        for order_id in self.queued.clone() {
            match lifecycle::get_order(&sub.env.ctx(), &order_id, Some(me)) {
                Ok(order) if order.state == OrderState::Queued => {
                    let data = serde_json::json!({
                        "orderId": order.id,
                        "queuePosition": order.queue_position,
                        "estimatedWaitSeconds": order.estimated_wait_seconds,
                    });
                    frames.push_str(&streams::frame(id.unwrap_or(sub.after), "queue", &data));
                }
                _ => drop(self.queued.remove(&order_id)),
            }
        }
    }
}

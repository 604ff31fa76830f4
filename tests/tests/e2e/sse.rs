//! Live updates over server-sent events (DESIGN §4): who sees what, resume
//! after a disconnect, bounded stream lifetime, and delivery latency.

use spinpresso_e2e::*;
use std::time::Duration;

fn open_shop(host: &Host) -> Caller {
    let admin = Caller::staff(host, ADMIN_PIN);
    assert_eq!(
        admin.put("/api/shops/main/config", json!({ "maxOpenOrders": 1000, "drinksPerCode": 1000 })).status,
        200
    );
    assert_eq!(admin.post("/api/shops/main/open", json!({})).status, 200);
    admin
}

fn code(host: &Host) -> String {
    Caller::staff(host, DISPLAY_PIN).get("/api/shops/main/qr").json()["code"].as_str().unwrap().to_string()
}

fn bearer(caller: &Caller) -> String {
    format!("Bearer {}", caller.token.clone().unwrap())
}

/// A customer orders an espresso; returns the order id.
fn order_espresso(host: &Host, customer: &Caller, code: &str) -> String {
    let order = customer.post("/api/shops/main/orders", json!({ "code": code, "displayName": "Zé" }));
    assert_eq!(order.status, 201, "{}", order.text());
    let id = order.json()["id"].as_str().unwrap().to_string();
    assert_eq!(customer.put(&format!("/api/orders/{id}/drink"), json!({ "drinkId": "espresso" })).status, 200);
    let _ = host;
    id
}

#[test]
fn each_stream_carries_exactly_what_its_audience_may_see() {
    let scratch = Scratch::new("sse-visibility");
    let host = Host::start(&HostOptions::new("spin.toml", &scratch));
    let admin = open_shop(&host);
    let code = code(&host);
    let alice = Caller::customer(&host);
    let bob = Caller::customer(&host);

    let unauthorized = request(&host.url("/api/shops/main/events/staff"), "GET", &[], None);
    assert_eq!((unauthorized.status, error_code(&unauthorized).as_str()), (401, "unauthenticated"));
    let staff = SseStream::connect(&host.url("/api/shops/main/events/staff"), &[("authorization", &bearer(&admin))]);
    assert_eq!(staff.status, 200);
    assert_eq!(staff.headers.iter().find(|(n, _)| n == "content-type").unwrap().1, "text/event-stream; charset=utf-8");
    assert!(staff.headers.iter().any(|(n, v)| n == "cache-control" && v == "no-cache, no-transform"));
    assert!(staff.headers.iter().any(|(n, v)| n == "x-accel-buffering" && v == "no"));
    let alice_stream =
        SseStream::connect(&host.url("/api/shops/main/events/me"), &[("authorization", &bearer(&alice))]);
    let board = SseStream::connect(&host.url("/api/shops/main/events/board"), &[]);

    let alice_order = order_espresso(&host, &alice, &code);
    let bob_order = order_espresso(&host, &bob, &code);
    let barista = Caller::staff(&host, BARISTA_PIN);
    barista.post(&format!("/api/orders/{bob_order}/complete"), json!({}));
    assert_eq!(admin.put("/api/shops/main/config", json!({ "name": "Stand B" })).status, 200);

    let wait = Duration::from_secs(5);
    let staff_events = staff.collect(12, wait, |e| e.kind != "end");
    let kinds: Vec<&str> = staff_events.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"Validator.NewOrder") && kinds.contains(&"OrderManager.OrderCompleted"), "{kinds:?}");

    let alice_events = alice_stream.collect(20, Duration::from_secs(3), |e| e.kind != "end");
    assert!(alice_events.iter().any(|e| e.data["orderId"] == alice_order.as_str()), "alice sees her order");
    for event in &alice_events {
        assert!(!event.data.to_string().contains(&bob_order), "alice never sees bob's order: {:?}", event);
    }
    assert!(
        alice_events.iter().any(|e| e.kind == "queue" && e.data["orderId"] == alice_order.as_str()),
        "bob's completion moved alice's queue position: {alice_events:?}"
    );

    let board_events = board.collect(20, Duration::from_secs(3), |e| e.kind != "end");
    assert!(board_events
        .iter()
        .any(|e| e.kind == "OrderManager.WaitingCompletion" && e.data["data"]["drink"] == "Espresso"));
    for event in &board_events {
        let text = event.data.to_string();
        assert!(!text.contains("\"c-") && !text.contains("customerId"), "no customer ids on the board: {text}");
        assert!(!text.contains(&code) && !text.contains(&alice_order), "no codes or order ids on the board: {text}");
    }
    // What a display needs without the staff stream: each code slot's drinks left, and whether the shop is open.
    let redeemed: Vec<_> = board_events.iter().filter(|e| e.kind == "Validator.NewOrder").collect();
    assert_eq!(redeemed.len(), 2, "{board_events:?}");
    for event in &redeemed {
        let mut fields: Vec<&str> = event.data["data"].as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort();
        assert_eq!(fields, ["slot", "tokensLeft"], "{event:?}");
    }
    assert_eq!(redeemed[1].data["data"]["tokensLeft"], 998);
    let changed = board_events.iter().find(|e| e.kind == "ConfigService.ConfigChanged").expect("the config change");
    assert_eq!(
        changed.data["data"],
        json!({ "name": "Stand B", "open": true, "drinksPerCode": 1000, "codeRotationSeconds": 300 })
    );
}

#[test]
fn a_client_that_reconnects_gets_exactly_what_it_missed() {
    let scratch = Scratch::new("sse-resume");
    let host = Host::start(&HostOptions::new("spin.toml", &scratch));
    let admin = open_shop(&host);
    let code = code(&host);
    let url = host.url("/api/shops/main/events/staff");
    let auth = bearer(&admin);
    let first = SseStream::connect(&url, &[("authorization", &auth)]);
    let warmup = Caller::customer(&host);
    order_espresso(&host, &warmup, &code);
    let seen = first.collect(3, Duration::from_secs(5), |e| e.id.is_some());
    let last = seen.last().unwrap().id.unwrap();
    drop(first);
    // Let the rest of the warm-up order's events land before counting.
    std::thread::sleep(Duration::from_millis(300));
    let head = admin.get("/api/shops/main/events?after=0").json()["head"].as_u64().unwrap();

    // 20 events while disconnected: 10 customers each redeem (NewOrder + WorkflowStarted).
    for _ in 0..10 {
        let customer = Caller::customer(&host);
        assert_eq!(customer.post("/api/shops/main/orders", json!({ "code": code })).status, 201);
    }
    let resumed = SseStream::connect(&url, &[("authorization", &auth), ("last-event-id", &head.to_string())]);
    let events = resumed.collect(20, Duration::from_secs(5), |e| e.id.is_some());
    let ids: Vec<u64> = events.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(ids, (head + 1..=head + 20).collect::<Vec<_>>(), "exactly the 20 missed, in order");
    assert!(resumed.next(Duration::from_millis(500)).is_none_or(|e| e.id.is_none()), "and nothing more");
    assert!(last <= head);

    // The query parameter works for a first connect, too.
    let by_query = SseStream::connect(&format!("{url}?lastEventId={}", head + 18), &[("authorization", &auth)]);
    let tail: Vec<u64> =
        by_query.collect(2, Duration::from_secs(5), |e| e.id.is_some()).iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(tail, [head + 19, head + 20]);
}

#[test]
fn a_client_ahead_of_the_log_is_told_to_reload_then_follows_live_events() {
    let scratch = Scratch::new("sse-ahead");
    let host = Host::start(&HostOptions::new("spin.toml", &scratch));
    let admin = open_shop(&host);
    let code = code(&host);
    let url = host.url("/api/shops/main/events/staff");
    let auth = bearer(&admin);
    let head = admin.get("/api/shops/main/events?after=0").json()["head"].as_u64().unwrap();
    let page = admin.get(&format!("/api/shops/main/events?after={}", head + 1000)).json();
    assert_eq!((page["reset"].as_bool(), page["next"].as_u64()), (Some(true), Some(head)), "{page}");

    // An id from another store (or one reset since): header and query alike.
    let by_header = SseStream::connect(&url, &[("authorization", &auth), ("last-event-id", &(head + 500).to_string())]);
    let by_query = SseStream::connect(&format!("{url}?lastEventId={}", head + 7), &[("authorization", &auth)]);
    for stream in [&by_header, &by_query] {
        let reset = stream.collect(1, Duration::from_secs(5), |e| e.id.is_some());
        assert_eq!(reset.len(), 1, "a reset instead of silence");
        assert_eq!(
            (reset[0].kind.as_str(), reset[0].id, reset[0].data["next"].as_u64()),
            ("reset", Some(head), Some(head))
        );
    }
    // From the head it was sent to, the stream carries the next events.
    let customer = Caller::customer(&host);
    assert_eq!(customer.post("/api/shops/main/orders", json!({ "code": code })).status, 201);
    for stream in [&by_header, &by_query] {
        let live = stream.collect(2, Duration::from_secs(5), |e| e.id.is_some());
        let ids: Vec<u64> = live.iter().map(|e| e.id.unwrap()).collect();
        assert_eq!(ids, [head + 1, head + 2]);
        assert_eq!(live[0].kind, "Validator.NewOrder");
    }
}

/// A new customer orders on `code` (from a thread: plain requests, no `Caller`).
fn new_order(host_url: &str, code: &str) {
    let session =
        request(&format!("{host_url}/api/session"), "POST", &[("content-type", "application/json")], Some("{}"));
    let token = format!("Bearer {}", session.json()["token"].as_str().unwrap());
    let order = request(
        &format!("{host_url}/api/shops/main/orders"),
        "POST",
        &[("content-type", "application/json"), ("authorization", &token)],
        Some(&json!({ "code": code }).to_string()),
    );
    assert_eq!(order.status, 201, "{}", order.text());
}

#[test]
fn a_stream_ends_by_itself_and_the_client_resumes_without_loss() {
    let scratch = Scratch::new("sse-lifetime");
    let host = Host::start(&HostOptions::new("spin.toml", &scratch));
    let admin = open_shop(&host);
    let code = code(&host);
    let url = host.url("/api/shops/main/events/staff");
    let auth = bearer(&admin);
    let started = std::time::Instant::now();
    let stream = SseStream::connect(&url, &[("authorization", &auth)]);
    let mut last = None;
    // Events keep happening while the stream is open; it must end near 25 s.
    let stream_over = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (host_url, code, stream_over) = (host.url(""), code.clone(), stream_over.clone());
        std::thread::spawn(move || {
            for second in 1..=30 {
                std::thread::sleep(Duration::from_secs(1));
                if stream_over.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if second % 5 == 0 {
                    new_order(&host_url, &code);
                }
            }
        })
    };
    let mut ended = false;
    while let Some(event) = stream.next(Duration::from_secs(30)) {
        if event.kind == "end" {
            ended = true;
            break;
        }
        if event.id.is_some() {
            last = event.id;
        }
    }
    let lifetime = started.elapsed();
    stream_over.store(true, std::sync::atomic::Ordering::Relaxed);
    producer.join().unwrap();
    assert!(ended, "the server ended the stream");
    assert!(lifetime >= Duration::from_secs(24) && lifetime < Duration::from_secs(28), "lifetime {lifetime:?}");
    new_order(&host.url(""), &self::code(&host)); // while the client is away, on a fresh code
                                                  // Resuming from the last id seen gets every later event.
    let head = admin.get("/api/shops/main/events?after=0").json()["head"].as_u64().unwrap();
    let resumed = SseStream::connect(&url, &[("authorization", &auth), ("last-event-id", &last.unwrap().to_string())]);
    let missed = head - last.unwrap();
    let got: Vec<u64> = resumed
        .collect(missed as usize, Duration::from_secs(5), |e| e.id.is_some())
        .iter()
        .map(|e| e.id.unwrap())
        .collect();
    assert_eq!(got, (last.unwrap() + 1..=head).collect::<Vec<_>>());
}

#[test]
fn stopping_the_host_ends_its_event_streams_at_once_and_completely() {
    let scratch = Scratch::new("sse-stop");
    let options = HostOptions::new("spin.toml", &scratch);
    let host = Host::start(&options);
    let admin = open_shop(&host);
    new_order(&host.url(""), &code(&host));
    let stream = SseStream::connect(&host.url("/api/shops/main/events/staff"), &[("authorization", &bearer(&admin))]);
    assert_eq!(stream.status, 200);
    new_order(&host.url(""), &code(&host));
    assert_eq!(stream.collect(1, Duration::from_secs(5), |e| e.id.is_some()).len(), 1, "the stream is live");

    let stopping = std::time::Instant::now();
    assert!(host.stop().success());
    // In-flight requests get up to 10 s; a stream, which would last 25 s, ends at once.
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(5), "the host waited {took:?} for an open stream");
    let end = stream.collect(1, Duration::from_secs(1), |e| ["end", "broken"].contains(&e.kind.as_str())).pop();
    let end = end.expect("the stream ended");
    assert_eq!(end.kind, "end", "a complete response, which the client resumes from its last id");
    let log = std::fs::read_to_string(&options.log_file).unwrap();
    assert!(!log.contains("did not finish in time"), "{log}");
}

#[test]
fn two_hundred_clients_receive_every_event_and_the_p99_latency_is_printed() {
    let _heavy = one_heavy_at_a_time();
    let scratch = Scratch::new("sse-fanout");
    let host = Host::start(&HostOptions::new("spin.toml", &scratch));
    let admin = open_shop(&host);
    let code = code(&host);
    let auth = bearer(&admin);
    let staff_url = host.url("/api/shops/main/events/staff");
    let board_url = host.url("/api/shops/main/events/board");
    let streams: Vec<(bool, SseStream)> = (0..200)
        .map(|i| {
            if i % 2 == 0 {
                (true, SseStream::connect(&staff_url, &[("authorization", &auth)]))
            } else {
                (false, SseStream::connect(&board_url, &[]))
            }
        })
        .collect();
    assert!(streams.iter().all(|(_, s)| s.status == 200));
    std::thread::sleep(Duration::from_millis(300));

    // 50 order changes: 25 submissions (WaitingCompletion) and 25 completions.
    let barista = Caller::staff(&host, BARISTA_PIN);
    for _ in 0..25 {
        let customer = Caller::customer(&host);
        let id = order_espresso(&host, &customer, &code);
        barista.post(&format!("/api/orders/{id}/complete"), json!({}));
    }
    let board_kinds = ["OrderManager.WaitingCompletion", "OrderManager.OrderCompleted"];
    let mut latencies: Vec<i64> = Vec::new();
    for (staff, stream) in streams.iter() {
        let wanted = |e: &SseEvent| board_kinds.contains(&e.kind.as_str());
        let got = stream.collect(50, Duration::from_secs(20), wanted);
        assert_eq!(got.len(), 50, "every client receives every order change (staff: {staff})");
        let ids: Vec<u64> = got.iter().map(|e| e.id.unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order");
        for event in &got {
            let sent = event.data["timeMs"].as_i64();
            if let Some(sent) = sent {
                latencies.push(event.received_ms - sent);
            }
        }
    }
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "SSE delivery over 200 clients × 50 order changes ({} deliveries): p50 {} ms, p99 {} ms, max {} ms",
        latencies.len(),
        pick(0.5),
        pick(0.99),
        latencies.last().unwrap()
    );
    assert_eq!(latencies.len(), 200 * 50);
}

#[test]
fn beyond_its_instance_limit_the_host_answers_busy_instead_of_failing() {
    let scratch = Scratch::new("sse-busy");
    let options = HostOptions::new("spin.toml", &scratch).args(&[
        "--sweep-every",
        "0",
        "--max-instances",
        "2",
        "--reserved-for-requests",
        "0",
    ]);
    let host = Host::start(&options);
    // Each open stream holds an instance for as long as it lasts.
    let url = host.url("/api/shops/main/events/board");
    let streams: Vec<SseStream> = (0..2).map(|_| SseStream::connect(&url, &[])).collect();
    assert!(streams.iter().all(|s| s.status == 200));
    let reply = host.get("/api/shops/main/config");
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(error_code(&reply), "busy");
    assert!(host.log().contains("every instance slot is busy"), "{}", host.log());
}

//! Scale-out: three host processes share one Redis store. The concurrency
//! rules hold across processes and every host's event stream sees every event.

use spinpresso_e2e::redis::{runtime_config, Redis};
use spinpresso_e2e::*;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn three_hosts_on_one_redis_keep_every_rule_and_see_every_event() {
    let _heavy = one_heavy_at_a_time();
    let redis = Redis::start();
    let scratch = Scratch::new("scale-out");
    let runtime_config = runtime_config(scratch.path(), &redis.url());
    let hosts: Vec<Host> = (0..3)
        .map(|i| {
            let mut options = HostOptions::new("spin.toml", &scratch).args(&[
                "--sweep-every",
                "1",
                "--runtime-config-file",
                runtime_config.to_str().unwrap(),
            ]);
            options.log_file = scratch.path().join(format!("host-{i}.log"));
            options.kv_file = scratch.path().join(format!("unused-{i}.db"));
            Host::start(&options)
        })
        .collect();
    let admin = Caller::staff(&hosts[0], ADMIN_PIN);
    assert_eq!(admin.put("/api/shops/main/config", json!({ "maxOpenOrders": 1000 })).status, 200);
    assert_eq!(admin.post("/api/shops/main/open", json!({})).status, 200);
    let auth = format!("Bearer {}", admin.token.clone().unwrap());
    let streams: Vec<SseStream> = hosts
        .iter()
        .map(|h| {
            SseStream::connect(
                &h.url("/api/shops/main/events/staff"),
                &[("authorization", &auth), ("last-event-id", "0")],
            )
        })
        .collect();
    let bases: Arc<Vec<String>> = Arc::new(hosts.iter().map(|h| h.url("")).collect());
    let on = |i: usize, caller: &Caller| Caller { base: bases[i % 3].clone(), token: caller.token.clone() };

    // 1. 100 customers, spread over the three hosts, on one 10-drink code.
    let code =
        Caller::staff(&hosts[1], DISPLAY_PIN).get("/api/shops/main/qr").json()["code"].as_str().unwrap().to_string();
    let customers: Arc<Vec<Caller>> = Arc::new((0..100).map(|i| on(i, &Caller::customer(&hosts[i % 3]))).collect());
    let (shared, c) = (customers.clone(), code.clone());
    let redeemed = in_parallel(100, move |i| {
        let reply = shared[i].post("/api/shops/main/orders", json!({ "code": c }));
        (reply.status == 201).then(|| reply.json()["id"].as_str().unwrap().to_string())
    });
    let quota: Vec<(usize, String)> =
        redeemed.into_iter().enumerate().filter_map(|(i, id)| id.map(|id| (i, id))).collect();
    assert_eq!(quota.len(), 10, "exactly the code's quota, across processes");

    // 2. 60 more customers; all 70 submit at once, on different hosts: numbers 1..=70.
    assert_eq!(admin.put("/api/shops/main/config", json!({ "drinksPerCode": 1000 })).status, 200);
    let more: Vec<(Caller, String)> = (0..60)
        .map(|i| {
            let customer = on(i, &Caller::customer(&hosts[i % 3]));
            let id = customer.redeem("main", &code);
            (customer, id)
        })
        .collect();
    let mut all: Vec<(Caller, String)> = quota.iter().map(|(i, id)| (customers[*i].clone(), id.clone())).collect();
    all.extend(more);
    let all = Arc::new(all);
    let shared = all.clone();
    let mut numbers = in_parallel(70, move |i| {
        let (customer, id) = &shared[i];
        let customer = Caller { base: shared[(i + 1) % shared.len()].0.base.clone(), token: customer.token.clone() };
        let reply = customer.put(&format!("/api/orders/{id}/drink"), json!({ "drinkId": "espresso" }));
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["number"].as_u64().unwrap()
    });
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=70).collect::<Vec<_>>());

    // 3. Two baristas on two hosts claim one order: one wins.
    let target = all[0].1.clone();
    let baristas = Arc::new([Caller::staff(&hosts[1], BARISTA_PIN), Caller::staff(&hosts[2], BARISTA_PIN)]);
    let claims = in_parallel(2, move |i| baristas[i].post(&format!("/api/orders/{target}/claim"), json!({})).status);
    assert_eq!(claims.iter().filter(|s| **s == 200).count(), 1);
    assert_eq!(claims.iter().filter(|s| **s == 409).count(), 1);

    // 4. Capacity in another shop: 140 customers over three hosts, capacity 20.
    assert_eq!(admin.post("/api/shops", json!({ "shopId": "booth", "name": "Booth" })).status, 201);
    assert_eq!(admin.put("/api/shops/booth/config", json!({ "drinksPerCode": 1000, "maxOpenOrders": 20 })).status, 200);
    assert_eq!(admin.post("/api/shops/booth/open", json!({})).status, 200);
    let booth_code =
        Caller::staff(&hosts[2], DISPLAY_PIN).get("/api/shops/booth/qr").json()["code"].as_str().unwrap().to_string();
    let crowd: Arc<Vec<Caller>> = Arc::new((0..140).map(|i| on(i, &Caller::customer(&hosts[i % 3]))).collect());
    let statuses =
        in_parallel(140, move |i| crowd[i].post("/api/shops/booth/orders", json!({ "code": booth_code })).status);
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 20);
    let open = admin.get("/api/shops/booth/orders").json()["orders"].as_array().unwrap().len();
    assert_eq!(open, 20);

    // 5. Every host's stream delivered every event of `main`, in order.
    let head = admin.get("/api/shops/main/events?after=0&limit=1").json()["head"].as_u64().unwrap();
    for (i, stream) in streams.iter().enumerate() {
        let got: Vec<u64> = stream
            .collect(head as usize, Duration::from_secs(15), |e| e.id.is_some())
            .iter()
            .map(|e| e.id.unwrap())
            .collect();
        let from = got.first().copied().unwrap_or(1);
        assert_eq!(got, (from..=head).collect::<Vec<_>>(), "host {i} saw every event after it connected");
        assert!(from <= 2, "host {i} started at the beginning");
    }
}

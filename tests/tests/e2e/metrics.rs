//! Business metrics end to end: a scripted day, Prometheus text read by a
//! real parser, and the CSV export read back.

use spinpresso_e2e::*;

struct Day {
    host: Host,
    admin: Caller,
    ids: Vec<(Caller, String)>,
}

/// 12 orders: 10 choose a drink (5 lattes with oat milk, 5 espressos), 6 are
/// completed, 1 cancelled by its customer, 1 by a barista, 2 never choose and time out.
fn scripted_day(scratch: &Scratch) -> Day {
    let host = Host::start(&HostOptions::new("spin.toml", scratch).args(&["--sweep-every", "1"]));
    let admin = Caller::staff(&host, ADMIN_PIN);
    let config = json!({ "drinksPerCode": 100, "maxOpenOrders": 100, "customerTimeoutSeconds": 10 });
    assert_eq!(admin.put("/api/shops/main/config", config).status, 200);
    admin.post("/api/shops/main/open", json!({}));
    let code = Caller::staff(&host, DISPLAY_PIN).get("/api/shops/main/qr").json()["code"].as_str().unwrap().to_string();
    let barista = Caller::staff(&host, BARISTA_PIN);
    let mut ids = Vec::new();
    for i in 0..12 {
        let customer = Caller::customer(&host);
        let id = customer.redeem("main", &code);
        if i < 10 {
            let drink = if i % 2 == 0 {
                json!({ "drinkId": "latte", "options": { "milk": "oat", "size": "large" } })
            } else {
                json!({ "drinkId": "espresso" })
            };
            assert_eq!(customer.put(&format!("/api/orders/{id}/drink"), drink).status, 200);
        }
        ids.push((customer, id));
    }
    for (_, id) in ids.iter().take(6) {
        assert_eq!(barista.post(&format!("/api/orders/{id}/claim"), json!({})).status, 200);
        assert_eq!(barista.post(&format!("/api/orders/{id}/complete"), json!({})).status, 200);
    }
    let (customer, id) = &ids[6];
    assert_eq!(customer.post(&format!("/api/orders/{id}/cancel"), json!({})).status, 200);
    assert_eq!(barista.post(&format!("/api/orders/{}/cancel", ids[7].1), json!({})).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(12_500)); // the last two time out; the sweeper writes it down
    Day { host, admin, ids }
}

#[test]
fn metrics_csv_and_prometheus_match_a_scripted_day() {
    let scratch = Scratch::new("metrics");
    let day = scripted_day(&scratch);
    let m = day.admin.get("/api/shops/main/metrics").json();
    let orders = &m["orders"];
    assert_eq!(
        (orders["started"].as_u64(), orders["submitted"].as_u64(), orders["completed"].as_u64()),
        (Some(12), Some(10), Some(6))
    );
    assert_eq!(orders["cancelled"], json!({ "customer": 1, "barista": 1, "admin": 0 }));
    assert_eq!(orders["timedOut"], json!({ "customer": 2, "barista": 0 }));
    assert_eq!(m["drinks"], json!({ "espresso": 5, "latte": 5 }));
    assert_eq!(m["options"]["milk.oat"], 5);
    assert_eq!(m["perHour"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), 10);
    assert_eq!(m["waitSeconds"]["count"], 6);
    assert_eq!(m["baristas"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>(), 6);
    let bad_day = day.admin.get("/api/shops/main/metrics?day=yesterday");
    assert_eq!((bad_day.status, error_code(&bad_day).as_str()), (400, "invalid_day"));
    assert_eq!(Caller::staff(&day.host, BARISTA_PIN).get("/api/shops/main/metrics").status, 403);

    // Prometheus: a real parser reads it, and the figures agree.
    let anonymous = request(&day.host.url("/metrics"), "GET", &[], None);
    assert_eq!(anonymous.status, 401);
    let sweeper = format!("Bearer {SWEEPER_TOKEN}");
    let refused = request(&day.host.url("/metrics"), "GET", &[("authorization", &sweeper)], None);
    assert_eq!(refused.status, 401, "the sweeper's token is not a metrics credential");
    let scraper = format!("Bearer {METRICS_TOKEN}");
    let text = request(&day.host.url("/metrics"), "GET", &[("authorization", &scraper)], None).text();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let sample = |name: &str, label: &str, value: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get(label) == Some(value) && s.labels.get("shop") == Some("main"))
            .unwrap_or_else(|| panic!("{name}{{{label}={value}}} missing in:\n{text}"))
            .value
            .clone()
    };
    assert!(
        matches!(sample("spinpresso_orders_total", "outcome", "completed"), prometheus_parse::Value::Counter(v) if v == 6.0)
    );
    assert!(
        matches!(sample("spinpresso_orders_total", "outcome", "timed_out_customer"), prometheus_parse::Value::Counter(v) if v == 2.0)
    );
    assert!(
        matches!(sample("spinpresso_drinks_total", "drink", "latte"), prometheus_parse::Value::Counter(v) if v == 5.0)
    );
    let histogram = scrape.samples.iter().find(|s| s.metric == "spinpresso_wait_seconds").expect("the wait histogram");
    match &histogram.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(buckets.last().unwrap().count, 6.0, "+Inf holds every completion");
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert!(matches!(sample("spinpresso_open_orders", "shop", "main"), prometheus_parse::Value::Gauge(v) if v == 2.0));

    // CSV: read back with a CSV parser, one row per order with what the API says.
    let csv_reply = day.admin.get("/api/shops/main/orders.csv");
    assert_eq!(csv_reply.header("content-type"), Some("text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(csv_reply.body.as_slice());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 12);
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for (customer, id) in &day.ids {
        let order = customer.get(&format!("/api/orders/{id}")).json();
        let row = rows.iter().find(|r| &r[column("id")] == id.as_str()).expect("every order has a row");
        assert_eq!(&row[column("state")], order["state"].as_str().unwrap());
        assert_eq!(row[column("number")].parse::<u64>().ok(), order["number"].as_u64());
        assert_eq!(&row[column("drink")], order["drink"]["name"].as_str().unwrap_or(""));
        assert_eq!(&row[column("createdAt")], order["createdAt"].as_str().unwrap());
    }
}

#[test]
fn the_robot_runs_at_its_rate_stops_by_itself_and_leaves_consistent_metrics() {
    let scratch = Scratch::new("robot");
    let host = Host::start(&HostOptions::new("spin.toml", &scratch).args(&["--sweep-every", "1"]));
    let admin = Caller::staff(&host, ADMIN_PIN);
    assert_eq!(
        admin.put("/api/shops/main/config", json!({ "drinksPerCode": 1000, "maxOpenOrders": 1000 })).status,
        200
    );
    admin.post("/api/shops/main/open", json!({}));
    let bad = admin.post("/api/shops/main/robot", json!({ "ordersPerMinute": 0, "durationSeconds": 20 }));
    assert_eq!((bad.status, error_code(&bad).as_str()), (400, "invalid_robot"));
    let settings = json!({ "ordersPerMinute": 120, "durationSeconds": 20, "baristaDelaySeconds": [1, 2], "cancelProbability": 0.2 });
    let started = admin.post("/api/shops/main/robot", settings);
    assert_eq!(started.status, 200, "{}", started.text());
    assert_eq!(started.json()["running"], true);

    std::thread::sleep(std::time::Duration::from_secs(21));
    let robot = admin.get("/api/shops/main/robot").json();
    assert_eq!(robot["running"], false, "it stopped by itself: {robot}");
    let ordered = robot["startedOrders"].as_u64().unwrap();
    assert!((35..=41).contains(&ordered), "about 120 a minute for 20 s: {ordered}");

    // Its last orders finish within a few sweeps; none is left in a state it cannot leave.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let open = admin.get("/api/shops/main/orders").json()["orders"].as_array().unwrap().len();
        if open == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{open} robot orders never finished");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let m = admin.get("/api/shops/main/metrics").json();
    let o = &m["orders"];
    let (started, submitted, completed) =
        (o["started"].as_u64().unwrap(), o["submitted"].as_u64().unwrap(), o["completed"].as_u64().unwrap());
    let cancelled = o["cancelled"]["customer"].as_u64().unwrap();
    assert_eq!(started, ordered, "every robot order went through the same flow: {m}");
    assert_eq!(submitted + cancelled, started, "{m}");
    assert_eq!(completed, submitted, "{m}");
    assert_eq!(m["drinks"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>(), submitted);
    let done = admin.get("/api/shops/main/orders?state=completed").json();
    assert!(done["orders"].as_array().unwrap().iter().all(|o| o["robot"] == true));
}

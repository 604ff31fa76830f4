//! The order lifecycle end to end: real host, real components (DESIGN §3, §5, §6).

use spinpresso_e2e::*;
use std::sync::Arc;

fn start(scratch: &Scratch) -> Host {
    Host::start(&HostOptions::new("spin.toml", scratch))
}

/// Opens `main` with config changes; returns the admin.
fn open_shop(host: &Host, config: Value) -> Caller {
    let admin = Caller::staff(host, ADMIN_PIN);
    assert_eq!(admin.put("/api/shops/main/config", config).status, 200);
    assert_eq!(admin.post("/api/shops/main/open", json!({})).status, 200);
    admin
}

fn current_code(host: &Host) -> String {
    let display = Caller::staff(host, DISPLAY_PIN);
    display.get("/api/shops/main/qr").json()["code"].as_str().unwrap().to_string()
}

/// The display's QR code with at least `seconds` left in its slot (the default 5-minute
/// rotation), waiting for the next slot when less is left: its count must not move on mid-test.
fn qr_with_seconds_left(display: &Caller, seconds: i64) -> Value {
    let rotation_ms = 300_000;
    let qr = display.get("/api/shops/main/qr").json();
    let ends_ms = (qr["slot"].as_i64().unwrap() + 1) * rotation_ms;
    let left_ms = ends_ms - now_ms();
    if left_ms >= seconds * 1000 {
        return qr;
    }
    std::thread::sleep(std::time::Duration::from_millis(left_ms.max(0) as u64 + 500));
    display.get("/api/shops/main/qr").json()
}

fn event_types(admin: &Caller) -> Vec<String> {
    let page = admin.get("/api/shops/main/events?after=0").json();
    page["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_happy_path_from_open_shop_to_pickup() {
    let scratch = Scratch::new("happy");
    let host = Host::start(&HostOptions::new("spin.toml", &scratch).args(&["--sweep-every", "0", "--log-requests"]));
    let admin = open_shop(&host, json!({}));
    let display = Caller::staff(&host, DISPLAY_PIN);
    let qr = qr_with_seconds_left(&display, 10);
    assert_eq!(qr["tokensLeft"], 10);
    let code = qr["code"].as_str().unwrap().to_string();
    assert!(qr["url"].as_str().unwrap().ends_with(&format!("/order/?shop=main&code={code}")));
    let svg = display.get("/api/shops/main/qr.svg");
    assert_eq!((svg.status, svg.header("content-type")), (200, Some("image/svg+xml")));
    assert!(svg.text().contains("<svg"));

    let customer = Caller::customer(&host);
    let redeemed = customer.post("/api/shops/main/orders", json!({ "code": code, "displayName": "Ana" }));
    assert_eq!(redeemed.status, 201, "{}", redeemed.text());
    let order = redeemed.json();
    assert_eq!((order["state"].as_str(), order["tokensLeft"].as_u64()), (Some("awaiting_drink"), Some(9)));
    assert_eq!(order["displayName"], "Ana");
    let id = order["id"].as_str().unwrap().to_string();
    assert!(id.len() >= 20);
    assert_eq!(display.get("/api/shops/main/qr").json()["tokensLeft"], 9);

    let latte = json!({ "drinkId": "latte", "options": { "milk": "oat", "size": "regular" } });
    let queued = customer.put(&format!("/api/orders/{id}/drink"), latte).json();
    assert_eq!((queued["state"].as_str(), queued["number"].as_u64()), (Some("queued"), Some(1)));
    assert_eq!(queued["queuePosition"], 1);
    assert_eq!(queued["drink"]["name"], "Latte");
    assert_eq!(queued["drink"]["options"][1]["optionId"], "oat");

    let barista = Caller::staff(&host, BARISTA_PIN);
    let list = barista.get("/api/shops/main/orders?state=queued").json();
    assert_eq!(list["orders"].as_array().unwrap().len(), 1);
    let making = barista.post(&format!("/api/orders/{id}/claim"), json!({})).json();
    assert_eq!(making["state"], "in_progress");
    assert!(making["baristaId"].as_str().unwrap().starts_with("barista-"));
    let done = barista.post(&format!("/api/orders/{id}/complete"), json!({})).json();
    assert_eq!(done["state"], "completed");
    assert!(done["finishedAt"].is_string());

    let mine = customer.get(&format!("/api/orders/{id}")).json();
    assert_eq!((mine["state"].as_str(), mine["number"].as_u64()), (Some("completed"), Some(1)));
    assert_eq!(customer.get("/api/me/orders").json()["orders"][0]["id"], id.as_str());
    let journey = customer.get(&format!("/api/orders/{id}/journey")).json();
    let steps: Vec<&str> = journey["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(steps.first(), Some(&"Validator.NewOrder"));
    assert_eq!(steps.len(), 6, "every event of the order: {steps:?}");
    assert_eq!(Caller::customer(&host).get(&format!("/api/orders/{id}/journey")).status, 403);

    // One structured log line per request; no tokens, PINs or codes in the log.
    let log = host.log();
    let redeem_line = log
        .lines()
        .filter_map(|l| l.strip_prefix("[orders] "))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["route"] == "/api/shops/:shop/orders" && l["method"] == "POST")
        .expect("the redemption is logged");
    assert_eq!((redeem_line["status"].as_u64(), redeem_line["shop"].as_str()), (Some(201), Some("main")));
    assert!(redeem_line["ms"].is_i64());
    let claim_line = log.lines().find(|l| l.contains("/api/orders/:id/claim")).unwrap();
    assert!(claim_line.contains(&id), "order ids are logged: {claim_line}");
    for secret in [customer.token.clone().unwrap(), barista.token.clone().unwrap(), code.clone()] {
        assert!(!log.contains(&secret), "a token or code leaked into the log");
    }
    assert!(!log.contains("\"pin\""), "no PIN in the log");
    let types = event_types(&admin);
    let lifecycle: Vec<&str> =
        types.iter().map(String::as_str).filter(|t| *t != "ConfigService.ConfigChanged").collect();
    assert_eq!(
        lifecycle,
        [
            "Validator.NewOrder",
            "OrderProcessor.WorkflowStarted",
            "OrderManager.WaitingCompletion",
            "OrderManager.MakeOrder",
            "OrderManager.OrderCompleted",
            "OrderProcessor.orderFinished",
            "OrderManager.DrinkAverageTime"
        ]
    );
}

#[test]
fn each_refusal_has_its_own_code_and_status() {
    let scratch = Scratch::new("refusals");
    let host = start(&scratch);
    let code = current_code(&host);
    let customer = Caller::customer(&host);
    let closed = customer.post("/api/shops/main/orders", json!({ "code": code }));
    assert_eq!((closed.status, error_code(&closed).as_str()), (409, "shop_closed"));

    let admin = open_shop(&host, json!({ "drinksPerCode": 2, "maxOpenOrders": 3 }));
    let bogus = customer.post("/api/shops/main/orders", json!({ "code": "AAAAAAAAAA" }));
    assert_eq!((bogus.status, error_code(&bogus).as_str()), (400, "code_invalid"));
    let first = customer.post("/api/shops/main/orders", json!({ "code": code }));
    assert_eq!(first.status, 201);
    let again = customer.post("/api/shops/main/orders", json!({ "code": code }));
    assert_eq!((again.status, again.json()["id"].clone()), (200, first.json()["id"].clone()), "idempotent");
    let second = Caller::customer(&host);
    assert_eq!(second.post("/api/shops/main/orders", json!({ "code": code })).status, 201);
    let third = Caller::customer(&host);
    let used_up = third.post("/api/shops/main/orders", json!({ "code": code }));
    assert_eq!((used_up.status, error_code(&used_up).as_str()), (409, "code_used_up"));

    // Bad drinks name the problem.
    let id = first.json()["id"].as_str().unwrap().to_string();
    let cases = [
        (json!({ "drinkId": "frappe" }), "no drink `frappe`"),
        (json!({ "drinkId": "latte", "options": { "size": "large" } }), "choose a milk"),
        (json!({ "drinkId": "latte", "options": { "size": "large", "milk": "goat" } }), "no option `goat`"),
        (
            json!({ "drinkId": "latte", "options": { "size": "large", "milk": "oat", "syrup": "x" } }),
            "no option group `syrup`",
        ),
    ];
    for (body, expected) in cases {
        let reply = customer.put(&format!("/api/orders/{id}/drink"), body);
        assert_eq!((reply.status, error_code(&reply).as_str()), (400, "invalid_drink"));
        assert!(reply.json()["error"]["message"].as_str().unwrap().contains(expected), "{}", reply.text());
    }
    let twice = customer.call("PUT", &format!("/api/orders/{id}/drink"), None);
    assert_eq!(twice.status, 415, "a mutation without a JSON body is refused");
    let raw = request(
        &host.url(&format!("/api/orders/{id}/drink")),
        "PUT",
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {}", customer.token.clone().unwrap())),
        ],
        Some(r#"{"drinkId":"latte","options":{"milk":"oat","milk":"soy","size":"large"}}"#),
    );
    assert_eq!(raw.status, 400);
    assert!(raw.text().contains("two options chosen for group `milk`"), "{}", raw.text());

    // Capacity: three open orders at most.
    assert_eq!(admin.put("/api/shops/main/config", json!({ "drinksPerCode": 10 })).status, 200);
    assert_eq!(Caller::customer(&host).post("/api/shops/main/orders", json!({ "code": code })).status, 201);
    let fourth = Caller::customer(&host);
    let full = fourth.post("/api/shops/main/orders", json!({ "code": code }));
    assert_eq!((full.status, error_code(&full).as_str()), (409, "shop_full"));
    assert!(event_types(&admin).iter().any(|t| t == "OrderProcessor.ShopUnavailable"));
}

#[test]
fn a_customer_with_an_open_order_cannot_start_another() {
    let scratch = Scratch::new("customer-limit");
    let host = start(&scratch);
    let admin = open_shop(&host, json!({ "codeRotationSeconds": 30, "codeGraceSeconds": 0 }));
    let customer = Caller::customer(&host);
    let display = Caller::staff(&host, DISPLAY_PIN);
    let first = display.get("/api/shops/main/qr").json();
    assert_eq!(customer.post("/api/shops/main/orders", json!({ "code": first["code"] })).status, 201);
    // Wait for the next code (30-second slots).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    let next = loop {
        let qr = display.get("/api/shops/main/qr").json();
        if qr["code"] != first["code"] {
            break qr;
        }
        assert!(std::time::Instant::now() < deadline, "the code rotates");
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    let limit = customer.post("/api/shops/main/orders", json!({ "code": next["code"] }));
    assert_eq!((limit.status, error_code(&limit).as_str()), (409, "customer_limit"));
    let stale = Caller::customer(&host).post("/api/shops/main/orders", json!({ "code": first["code"] }));
    assert_eq!((stale.status, error_code(&stale).as_str()), (410, "code_expired"));
    drop(admin);
}

#[test]
fn roles_are_checked_on_every_staff_and_admin_route() {
    let scratch = Scratch::new("roles");
    let host = start(&scratch);
    let admin = open_shop(&host, json!({}));
    let code = current_code(&host);
    let customer = Caller::customer(&host);
    let id = customer.redeem("main", &code);
    let anonymous = Caller::anonymous(&host);
    let display = Caller::staff(&host, DISPLAY_PIN);
    let barista = Caller::staff(&host, BARISTA_PIN);

    // (method, path, body, the least role that may call it)
    let routes: Vec<(&str, String, Option<Value>, &str)> = vec![
        ("GET", "/api/shops/main/qr".into(), None, "display"),
        ("GET", "/api/shops/main/qr.svg".into(), None, "display"),
        ("GET", "/api/shops/main/events?after=0".into(), None, "barista"),
        ("GET", "/api/shops/main/events/staff".into(), None, "barista"),
        ("GET", "/api/shops/main/orders".into(), None, "barista"),
        ("POST", format!("/api/orders/{id}/claim"), Some(json!({})), "barista"),
        ("POST", format!("/api/orders/{id}/release"), Some(json!({})), "barista"),
        ("POST", format!("/api/orders/{id}/complete"), Some(json!({})), "barista"),
        ("POST", "/api/shops/main/close".into(), Some(json!({})), "barista"),
        ("GET", "/api/shops".into(), None, "admin"),
        ("POST", "/api/shops".into(), Some(json!({ "shopId": "x", "name": "X" })), "admin"),
        ("PUT", "/api/shops/main/config".into(), Some(json!({})), "admin"),
        ("PUT", "/api/shops/main/menu".into(), Some(json!({ "menu": [] })), "admin"),
    ];
    let ranks = ["customer", "display", "barista", "admin"];
    for (method, path, body, least) in &routes {
        let needed = ranks.iter().position(|r| r == least).unwrap();
        let none = anonymous.call(method, path, body.clone());
        assert_eq!(none.status, 401, "{method} {path} without a token: {}", none.text());
        for (rank, caller) in [(0, &customer), (1, &display), (2, &barista)] {
            if rank < needed {
                let reply = caller.call(method, path, body.clone());
                assert_eq!(reply.status, 403, "{method} {path} as {}: {}", ranks[rank], reply.text());
                assert_eq!(error_code(&reply), "forbidden");
            }
        }
    }
    // The customer's own routes refuse staff tokens and anonymous callers.
    assert_eq!(anonymous.post("/api/shops/main/orders", json!({ "code": code })).status, 401);
    assert_eq!(anonymous.get("/api/me/orders").status, 401);
    drop(admin);
}

#[test]
fn a_customer_cannot_touch_someone_elses_order() {
    let scratch = Scratch::new("ownership");
    let host = start(&scratch);
    open_shop(&host, json!({}));
    let code = current_code(&host);
    let owner = Caller::customer(&host);
    let id = owner.redeem("main", &code);
    let other = Caller::customer(&host);
    for reply in [
        other.get(&format!("/api/orders/{id}")),
        other.post(&format!("/api/orders/{id}/cancel"), json!({})),
        other.put(&format!("/api/orders/{id}/drink"), json!({ "drinkId": "espresso" })),
    ] {
        assert_eq!((reply.status, error_code(&reply).as_str()), (403, "not_your_order"));
    }
    assert!(other.get("/api/me/orders").json()["orders"].as_array().unwrap().is_empty());
    let cancelled = owner.post(&format!("/api/orders/{id}/cancel"), json!({})).json();
    assert_eq!((cancelled["state"].as_str(), cancelled["cancelledBy"].as_str()), (Some("cancelled"), Some("customer")));
}

#[test]
fn a_hundred_customers_on_one_ten_drink_code_make_exactly_ten_orders() {
    let scratch = Scratch::new("quota");
    let host = start(&scratch);
    open_shop(&host, json!({ "maxOpenOrders": 1000 }));
    let code = current_code(&host);
    let customers: Vec<Caller> = (0..100).map(|_| Caller::customer(&host)).collect();
    let customers = Arc::new(customers);
    let statuses = in_parallel(100, move |i| {
        let reply = customers[i].post("/api/shops/main/orders", json!({ "code": code }));
        (reply.status, if reply.status == 201 { String::new() } else { error_code(&reply) })
    });
    assert_eq!(statuses.iter().filter(|(s, _)| *s == 201).count(), 10);
    assert!(statuses.iter().filter(|(s, _)| *s != 201).all(|(s, c)| (*s, c.as_str()) == (409, "code_used_up")));
}

#[test]
fn sixty_simultaneous_submissions_are_numbered_one_to_sixty() {
    let scratch = Scratch::new("numbers");
    let host = start(&scratch);
    open_shop(&host, json!({ "maxOpenOrders": 100, "drinksPerCode": 100 }));
    let code = current_code(&host);
    let orders: Vec<(Caller, String)> = (0..60)
        .map(|_| {
            let customer = Caller::customer(&host);
            let id = customer.redeem("main", &code);
            (customer, id)
        })
        .collect();
    let orders = Arc::new(orders);
    let mut numbers = in_parallel(60, move |i| {
        let (customer, id) = &orders[i];
        let reply = customer.put(&format!("/api/orders/{id}/drink"), json!({ "drinkId": "espresso" }));
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["number"].as_u64().unwrap()
    });
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=60).collect::<Vec<_>>());
}

#[test]
fn of_two_baristas_claiming_one_order_exactly_one_wins() {
    let scratch = Scratch::new("double-claim");
    let host = start(&scratch);
    open_shop(&host, json!({}));
    let code = current_code(&host);
    let customer = Caller::customer(&host);
    let id = customer.redeem("main", &code);
    customer.put(&format!("/api/orders/{id}/drink"), json!({ "drinkId": "espresso" }));
    let baristas = Arc::new([Caller::staff(&host, BARISTA_PIN), Caller::staff(&host, BARISTA_PIN)]);
    let replies = in_parallel(2, move |i| baristas[i].post(&format!("/api/orders/{id}/claim"), json!({})));
    let wins = replies.iter().filter(|r| r.status == 200).count();
    let losses: Vec<_> = replies.iter().filter(|r| r.status == 409).map(error_code).collect();
    assert_eq!((wins, losses), (1, vec!["already_claimed".to_string()]));
}

#[test]
fn thirty_customers_never_hold_more_than_twenty_open_orders() {
    let scratch = Scratch::new("capacity");
    let host = start(&scratch);
    let admin = open_shop(&host, json!({ "drinksPerCode": 100 }));
    let code = current_code(&host);
    let customers = Arc::new((0..30).map(|_| Caller::customer(&host)).collect::<Vec<_>>());
    let statuses =
        in_parallel(30, move |i| customers[i].post("/api/shops/main/orders", json!({ "code": code })).status);
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 20);
    let open = admin.get("/api/shops/main/orders").json()["orders"].as_array().unwrap().len();
    assert_eq!(open, 20);
}

fn time_out_an_order(sweeper_on: bool) {
    let scratch = Scratch::new(if sweeper_on { "timeout-swept" } else { "timeout-lazy" });
    let every = if sweeper_on { "1" } else { "0" };
    let host = Host::start(&HostOptions::new("spin.toml", &scratch).args(&["--sweep-every", every]));
    let admin =
        open_shop(&host, json!({ "customerTimeoutSeconds": 10, "baristaTimeoutSeconds": 10, "maxOpenOrders": 1 }));
    let code = current_code(&host);
    let customer = Caller::customer(&host);
    let id = customer.redeem("main", &code);
    let other = Caller::customer(&host);
    assert_eq!(error_code(&other.post("/api/shops/main/orders", json!({ "code": code }))), "shop_full");
    std::thread::sleep(std::time::Duration::from_millis(11_500));
    if sweeper_on {
        // The sweeper has written the timeout down before anyone reads the order.
        assert!(event_types(&admin).iter().any(|t| t == "OrderProcessor.OrderTimeOut"), "swept");
    }
    let order = customer.get(&format!("/api/orders/{id}")).json();
    assert_eq!((order["state"].as_str(), order["timeoutCause"].as_str()), (Some("timed_out"), Some("customer")));
    assert!(event_types(&admin).iter().any(|t| t == "OrderProcessor.OrderTimeOut"));
    let freed = other.post("/api/shops/main/orders", json!({ "code": current_code(&host) }));
    assert_eq!(freed.status, 201, "the slot is free again: {}", freed.text());
}

#[test]
fn an_order_left_alone_times_out_with_the_sweeper_running() {
    time_out_an_order(true);
}

#[test]
fn an_order_left_alone_times_out_with_the_sweeper_off() {
    time_out_an_order(false);
}

#[test]
fn acknowledged_orders_survive_a_restart() {
    let scratch = Scratch::new("restart-orders");
    let options = HostOptions::new("spin.toml", &scratch);
    let host = Host::start(&options);
    open_shop(&host, json!({}));
    let code = current_code(&host);
    let customers: Vec<Caller> = (0..3).map(|_| Caller::customer(&host)).collect();
    let ids: Vec<String> = customers.iter().map(|c| c.redeem("main", &code)).collect();
    customers[1].put(&format!("/api/orders/{}/drink", ids[1]), json!({ "drinkId": "espresso" }));
    customers[2].put(&format!("/api/orders/{}/drink", ids[2]), json!({ "drinkId": "espresso" }));
    let barista = Caller::staff(&host, BARISTA_PIN);
    barista.post(&format!("/api/orders/{}/claim", ids[2]), json!({}));
    assert!(host.stop().success());

    let host = Host::start(&options);
    let expected = ["awaiting_drink", "queued", "in_progress"];
    for ((customer, id), state) in customers.iter().zip(&ids).zip(expected) {
        let customer = Caller { base: host.url(""), token: customer.token.clone() };
        let order = customer.get(&format!("/api/orders/{id}")).json();
        assert_eq!(order["state"], state, "{order}");
    }
    let barista = Caller::staff(&host, BARISTA_PIN);
    assert_eq!(barista.get("/api/shops/main/orders").json()["orders"].as_array().unwrap().len(), 3);
}

#[test]
fn admins_create_shops_and_edit_config_and_menu_with_validation() {
    let scratch = Scratch::new("admin");
    let host = start(&scratch);
    let admin = Caller::staff(&host, ADMIN_PIN);
    let created = admin.post("/api/shops", json!({ "shopId": "booth-7", "name": "Booth 7" }));
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(error_code(&admin.post("/api/shops", json!({ "shopId": "booth-7", "name": "Again" }))), "shop_exists");
    let shops = admin.get("/api/shops").json();
    assert_eq!(shops["shops"].as_array().unwrap().len(), 2);
    assert_eq!(Caller::anonymous(&host).get("/api/shops/booth-7/config").json()["name"], "Booth 7");

    let bad_configs = [
        (json!({ "colour": "red" }), "unknown field `colour`"),
        (json!({ "name": "" }), "`name` must not be empty"),
        (json!({ "maxOpenOrders": -1 }), "`maxOpenOrders` must be between"),
        (json!({ "customerTimeoutSeconds": 5 }), "`customerTimeoutSeconds` must be between 10"),
    ];
    for (body, expected) in bad_configs {
        let reply = admin.put("/api/shops/booth-7/config", body);
        assert_eq!(reply.status, 400);
        assert!(reply.text().contains(expected), "{}", reply.text());
    }
    let menu = json!({ "menu": [
        { "id": "tea", "name": "Tea", "modifierGroups": [] },
        { "id": "tea", "name": "Other tea" }
    ] });
    let reply = admin.put("/api/shops/booth-7/menu", menu);
    assert_eq!((reply.status, error_code(&reply).as_str()), (400, "invalid_menu"));
    assert!(reply.text().contains("duplicate drink id"));
    let empty_name = admin.put("/api/shops/booth-7/menu", json!({ "menu": [{ "id": "tea", "name": " " }] }));
    assert!(empty_name.text().contains("must not be empty"));
    let ok = admin.put("/api/shops/booth-7/menu", json!({ "menu": [{ "id": "tea", "name": "Tea" }] }));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["menu"][0]["id"], "tea");
    // Shops are separate: booth-7 has its own open state.
    assert_eq!(admin.post("/api/shops/booth-7/open", json!({})).json()["open"], true);
    assert_eq!(Caller::anonymous(&host).get("/api/shops/main/config").json()["open"], false);
}

#[test]
fn malformed_requests_get_clear_4xx_errors() {
    let scratch = Scratch::new("malformed");
    let host = start(&scratch);
    let admin = Caller::staff(&host, ADMIN_PIN);
    let auth = format!("Bearer {}", admin.token.clone().unwrap());
    let send = |method: &str, path: &str, content_type: Option<&str>, body: &str| {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        request(&host.url(path), method, &headers, Some(body))
    };
    let too_big = send(
        "PUT",
        "/api/shops/main/config",
        Some("application/json"),
        &format!("{{\"name\":\"{}\"}}", "x".repeat(17_000)),
    );
    assert_eq!((too_big.status, error_code(&too_big).as_str()), (413, "payload_too_large"));
    let form = send("PUT", "/api/shops/main/config", Some("application/x-www-form-urlencoded"), "name=x");
    assert_eq!((form.status, error_code(&form).as_str()), (415, "unsupported_media_type"));
    let broken = send("PUT", "/api/shops/main/config", Some("application/json"), "{\"name\": ");
    assert_eq!((broken.status, error_code(&broken).as_str()), (400, "invalid_json"));
    let wrong_method = send("DELETE", "/api/shops/main/config", Some("application/json"), "{}");
    assert_eq!((wrong_method.status, error_code(&wrong_method).as_str()), (405, "method_not_allowed"));
    let unknown = admin.get("/api/orders/nonexistent-order");
    assert_eq!((unknown.status, error_code(&unknown).as_str()), (404, "order_not_found"));
    let bad_state = admin.get("/api/shops/main/orders?state=brewing");
    assert_eq!((bad_state.status, error_code(&bad_state).as_str()), (400, "invalid_state"));
    let bad_after = admin.get("/api/shops/main/events?after=abc");
    assert_eq!(bad_after.status, 400);
    let wrong_pin = Caller::anonymous(&host).post("/api/staff/login", json!({ "pin": "0001" }));
    assert_eq!((wrong_pin.status, error_code(&wrong_pin).as_str()), (401, "wrong_pin"));
}

#[test]
fn wrong_pins_are_rate_limited() {
    let scratch = Scratch::new("pin-limit");
    let host = start(&scratch);
    let anonymous = Caller::anonymous(&host);
    for _ in 0..5 {
        assert_eq!(anonymous.post("/api/staff/login", json!({ "pin": "11111111" })).status, 401);
    }
    let limited = anonymous.post("/api/staff/login", json!({ "pin": BARISTA_PIN }));
    assert_eq!((limited.status, error_code(&limited).as_str()), (429, "too_many_attempts"));
}

#[test]
fn sessions_and_staff_tokens_work_as_cookies() {
    let scratch = Scratch::new("cookies");
    let host = start(&scratch);
    let session = request(&host.url("/api/session"), "POST", &[("content-type", "application/json")], Some("{}"));
    let cookie = session.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let mine = request(&host.url("/api/me/orders"), "GET", &[("cookie", &pair)], None);
    assert_eq!(mine.status, 200, "{}", mine.text());
    let sweep = request(&host.url("/internal/sweep"), "POST", &[("content-type", "application/json")], Some("{}"));
    assert_eq!(sweep.status, 401);
    let swept = sweep_with(&host, SWEEPER_TOKEN);
    assert_eq!(swept.status, 200, "{}", swept.text());
}

#[test]
fn the_public_board_and_wait_show_the_queue_without_private_data() {
    let scratch = Scratch::new("board");
    let host = start(&scratch);
    open_shop(&host, json!({}));
    let code = current_code(&host);
    let customer = Caller::customer(&host);
    let order = customer.post("/api/shops/main/orders", json!({ "code": code, "displayName": "Bia" })).json();
    let id = order["id"].as_str().unwrap();
    customer.put(&format!("/api/orders/{id}/drink"), json!({ "drinkId": "espresso" }));
    let public = Caller::anonymous(&host);
    let board = public.get("/api/shops/main/board");
    assert_eq!(board.status, 200);
    let board_json = board.json();
    assert_eq!(board_json["preparing"][0]["number"], 1);
    assert_eq!(board_json["preparing"][0]["displayName"], "Bia");
    assert_eq!(board_json["preparing"][0]["drink"], "Espresso");
    let customer_id = customer.get("/api/me/orders").json()["orders"][0]["id"].clone();
    assert!(!board.text().contains(&code) && !board.text().contains("\"c-"), "{}", board.text());
    assert!(!board.text().contains(customer_id.as_str().unwrap()), "order ids stay private too");
    let wait = public.get("/api/shops/main/wait").json();
    assert_eq!(wait["queued"], 1);
    assert!(wait["estimatedWaitSeconds"].as_u64().unwrap() > 0);
}

#[test]
fn unknown_api_routes_are_json_404s() {
    let scratch = Scratch::new("unknown-api");
    let host = start(&scratch);
    let reply = Caller::anonymous(&host).get("/api/nothing/here");
    assert_eq!((reply.status, error_code(&reply).as_str()), (404, "not_found"));
}

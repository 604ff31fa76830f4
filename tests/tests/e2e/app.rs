//! The application as `spin.toml` wires it: config API, health, static files.

use spinpresso_e2e::*;

fn start(scratch: &Scratch) -> Host {
    Host::start(&HostOptions::new("spin.toml", scratch))
}

#[test]
fn the_main_shop_config_is_served_with_the_default_menu() {
    let scratch = Scratch::new("config");
    let host = start(&scratch);
    let reply = host.get("/api/shops/main/config");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let config = reply.json();
    assert_eq!(config["shopId"], "main");
    assert_eq!(config["open"], false);
    assert_eq!(config["drinksPerCode"], 10);
    assert_eq!(config["maxOpenOrders"], 20);
    assert_eq!(config["customerTimeoutSeconds"], 300);
    assert_eq!(config["baristaTimeoutSeconds"], 900);
    let drinks: Vec<&str> = config["menu"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert!(drinks.contains(&"cappuccino") && drinks.contains(&"chai-latte"), "{drinks:?}");
    let cappuccino = config["menu"].as_array().unwrap().iter().find(|d| d["id"] == "cappuccino").unwrap();
    let milk = cappuccino["modifierGroups"].as_array().unwrap().iter().find(|g| g["id"] == "milk").unwrap();
    assert!(milk["options"].as_array().unwrap().iter().any(|o| o["id"] == "oat"));
    // The second read comes from the store and is the same.
    assert_eq!(host.get("/api/shops/main/config").json(), config);
}

#[test]
fn unknown_and_malformed_shops_get_json_errors() {
    let scratch = Scratch::new("config-errors");
    let host = start(&scratch);
    let reply = host.get("/api/shops/elsewhere/config");
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "shop_not_found");
    let reply = host.get("/api/shops/Bad%20Shop/config");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], "invalid_shop_id");
    let reply = host.post("/api/shops/main/config", "{}");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()["error"]["code"], "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, PUT"));
}

#[test]
fn health_says_ok_when_the_store_answers() {
    let scratch = Scratch::new("health");
    let host = start(&scratch);
    let reply = host.get("/healthz");
    assert_eq!((reply.status, reply.json()), (200, json!({ "status": "ok" })));
}

#[test]
fn the_landing_page_links_every_app() {
    let scratch = Scratch::new("landing");
    let host = start(&scratch);
    let reply = host.get("/");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    let page = reply.text();
    for app in ["/display/", "/barista/", "/order/", "/admin/"] {
        assert!(page.contains(&format!("href=\"{app}\"")), "missing link to {app}");
    }
    assert_eq!(host.get("/index.html").text(), page);
}

#[test]
fn static_files_revalidate_with_etags() {
    let scratch = Scratch::new("etag");
    let host = start(&scratch);
    let first = host.get("/");
    let etag = first.header("etag").expect("an ETag").to_string();
    let again = request(&host.url("/"), "GET", &[("if-none-match", &etag)], None);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let other = request(&host.url("/"), "GET", &[("if-none-match", "\"something-else\"")], None);
    assert_eq!(other.status, 200);
    let head = request(&host.url("/"), "HEAD", &[], None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("etag"), Some(etag.as_str()));
}

#[test]
fn missing_files_are_404_and_traversal_never_leaves_static() {
    let scratch = Scratch::new("static-errors");
    let host = start(&scratch);
    assert_eq!(host.get("/nope.html").status, 404);
    assert_eq!(host.get("/nope/").status, 404);
    for sneaky in
        ["/../Cargo.toml", "/%2e%2e/Cargo.toml", "/%2e%2e%2fCargo.toml", "/..%5cCargo.toml", "/static/../spin.toml"]
    {
        let reply = host.get(sneaky);
        assert!(matches!(reply.status, 400 | 404), "{sneaky}: {}", reply.status);
        assert!(!reply.text().contains("[workspace]") && !reply.text().contains("spin_manifest_version"), "{sneaky}");
    }
    let reply = host.post("/", "{}");
    assert_eq!(reply.status, 405);
}

#[test]
fn a_directory_without_its_slash_is_redirected() {
    let scratch = Scratch::new("redirect");
    let host = start(&scratch);
    let reply = host.get("/display");
    assert_eq!((reply.status, reply.header("location")), (301, Some("/display/")));
    let page = host.get("/display/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<title>Spinpresso display</title>"), "{}", page.text());
}

#[test]
fn requests_outside_the_api_contract_get_the_4xx_it_documents() {
    let scratch = Scratch::new("contract-edges");
    let host = start(&scratch);
    let admin = Caller::staff(&host, ADMIN_PIN);
    let code = |reply: &Reply| (reply.status, reply.json()["error"]["code"].as_str().unwrap_or_default().to_string());
    assert_eq!(code(&admin.get("/api/shops/nowhere/orders.csv")), (404, "shop_not_found".into()));
    assert_eq!(code(&admin.get("/api/shops/nowhere/metrics")), (404, "shop_not_found".into()));
    assert_eq!(code(&admin.get("/api/shops/main/events?limit=500")), (400, "invalid_query".into()));
    assert_eq!(code(&admin.get("/api/shops/main/events/staff?lastEventId=-1")), (400, "invalid_query".into()));
    // A body that is JSON but not an object is refused, and whole numbers may carry a zero fraction.
    assert_eq!(code(&Caller::anonymous(&host).post("/api/session", json!([]))), (400, "invalid_json".into()));
    let changed = admin.put("/api/shops/main/config", json!({ "maxOpenOrders": 25.0 }));
    assert_eq!((changed.status, changed.json()["maxOpenOrders"].clone()), (200, json!(25)));
    assert_eq!(code(&admin.put("/api/shops/main/config", json!({ "maxOpenOrders": 25.5 }))).0, 400);
    // A bodyless action still says it sends JSON (a cross-site form cannot).
    let bare = request(
        &host.url("/api/shops/main/open"),
        "POST",
        &[("authorization", &format!("Bearer {}", admin.token.clone().unwrap()))],
        None,
    );
    assert_eq!(bare.status, 415);
}

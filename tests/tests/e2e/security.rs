//! The attacks a stranger could try on a fresh install, each shown to fail:
//! published secrets, guessed PINs, tokens that outlive their sign-out or
//! their shop, a display reading orders, formulas in the day's export,
//! text that flips the public board, redirects off-site, missing headers.

use spinpresso_domain::auth::{self, Claims, Role};
use spinpresso_e2e::*;

fn start(scratch: &Scratch) -> Host {
    Host::start(&HostOptions::new("spin.toml", scratch))
}

/// A staff token signed with `key`, as someone who knows that key would make it.
fn forged_admin(key: &str) -> String {
    let claims =
        Claims { role: Role::Admin, sub: "admin-x".into(), shop: None, exp: now_ms() / 1000 + 3600, sid: None };
    auth::sign(&claims, key.as_bytes())
}

fn with_token(host: &Host, token: &str) -> Caller {
    Caller { base: host.url(""), token: Some(token.to_string()) }
}

fn login(host: &Host, body: Value) -> Reply {
    Caller::anonymous(host).post("/api/staff/login", body)
}

fn current_code(host: &Host) -> String {
    Caller::staff(host, DISPLAY_PIN).get("/api/shops/main/qr").json()["code"].as_str().unwrap().to_string()
}

fn open_main(host: &Host) -> Caller {
    let admin = Caller::staff(host, ADMIN_PIN);
    assert_eq!(admin.post("/api/shops/main/open", json!({})).status, 200);
    admin
}

/// The signing key, staff PINs and sweeper token this repository once
/// shipped as `spin.toml` defaults: public knowledge since.
const ONCE_PUBLISHED_KEY: &str = "dev-signing-key-change-me";
const ONCE_PUBLISHED_PINS: [&str; 3] = ["9999", "1234", "0000"];
const ONCE_PUBLISHED_TOKEN: &str = "dev-sweeper-token";

/// Every attack with once-published values fails on `host`.
fn published_values_open_nothing(host: &Host) {
    let forged = with_token(host, &forged_admin(ONCE_PUBLISHED_KEY));
    let change = forged.put("/api/shops/main/config", json!({ "name": "pwned" }));
    assert!(matches!(change.status, 401 | 503), "a token signed with the published key: {}", change.text());
    // Each try from an address of its own, so no answer is only the per-client limit's 429.
    let mut from = (100..).map(|n| std::net::Ipv4Addr::new(127, 0, 0, n));
    for pin in ONCE_PUBLISHED_PINS.into_iter().chain([""]) {
        for role in ["admin", "barista", "display"] {
            let body = json!({ "pin": pin, "role": role }).to_string();
            let reply = raw::send_from(
                from.next().unwrap(),
                host.addr,
                &format!(
                    "POST /api/staff/login HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
                     content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                ),
            );
            assert!(matches!(reply.status, 401 | 503), "PIN {pin:?} as {role}: {}", reply.text());
        }
    }
    let bearer = format!("Bearer {ONCE_PUBLISHED_TOKEN}");
    let scrape = request(&host.url("/metrics"), "GET", &[("authorization", &bearer)], None);
    assert!(matches!(scrape.status, 401 | 503), "/metrics with the published sweeper token: {}", scrape.text());
    let sweep = sweep_with(host, ONCE_PUBLISHED_TOKEN);
    assert!(matches!(sweep.status, 401 | 503), "a sweep with the published token: {}", sweep.text());
}

#[test]
fn spin_toml_publishes_no_secret() {
    let manifest: toml::Table = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap().parse().unwrap();
    let variables = manifest["variables"].as_table().unwrap();
    for (name, variable) in variables {
        let secret = variable.get("secret").and_then(|s| s.as_bool()) == Some(true);
        if secret || name.ends_with("_pin") || name.ends_with("_token") || name.ends_with("_key") {
            assert!(secret, "`{name}` must be marked secret");
            let default = variable.get("default").and_then(|d| d.as_str());
            assert!(matches!(default, None | Some("")), "`{name}` publishes a default: {default:?}");
        }
    }
}

#[test]
fn nothing_published_opens_a_deployment_with_its_secrets_unset() {
    // As `spin up` runs it with nothing configured: every secret is what
    // spin.toml publishes (empty), so everything they guard is off.
    let scratch = Scratch::new("published-spin");
    let mut options = HostOptions::new("spin.toml", &scratch);
    for (name, _) in TEST_SECRETS {
        options = options.env(name, "");
    }
    let host = Host::start(&options);
    published_values_open_nothing(&host);
    let sweep = sweep_with(&host, ONCE_PUBLISHED_TOKEN);
    assert_eq!((sweep.status, error_code(&sweep).as_str()), (503, "not_configured"));
    assert_eq!(Caller::anonymous(&host).get("/api/shops/main/board").status, 200, "the public board still answers");
}

#[test]
fn nothing_published_opens_a_local_host_started_with_no_configuration() {
    // README command 1 on a fresh machine: the host makes up every secret.
    let scratch = Scratch::new("published-local");
    let mut options = HostOptions::new("spin.toml", &scratch);
    for (name, _) in TEST_SECRETS {
        options = options.without_env(name);
    }
    let host = Host::start(&options);
    published_values_open_nothing(&host);
    // What it made up works, and is nothing published.
    let made_up: toml::Table = std::fs::read_to_string(&options.secrets_file).unwrap().parse().unwrap();
    let admin_pin = made_up["admin_pin"].as_str().unwrap();
    assert!(admin_pin.len() >= 6 && !ONCE_PUBLISHED_PINS.contains(&admin_pin), "{admin_pin}");
    let admin = Caller::staff(&host, admin_pin);
    assert_eq!(admin.put("/api/shops/main/config", json!({ "name": "Main bar" })).status, 200);
}

#[test]
fn empty_secrets_switch_off_what_they_guard_with_a_clear_message() {
    let scratch = Scratch::new("empty-secrets");
    let mut options = HostOptions::new("spin.toml", &scratch);
    for name in ["SPIN_VARIABLE_ADMIN_PIN", "SPIN_VARIABLE_SWEEPER_TOKEN", "SPIN_VARIABLE_METRICS_TOKEN"] {
        options = options.env(name, "");
    }
    options = options.env("SPIN_VARIABLE_DISPLAY_PIN", "0000"); // too short to be a PIN: ignored
    let host = Host::start(&options);
    let admin = login(&host, json!({ "pin": "", "role": "admin" }));
    assert_eq!((admin.status, error_code(&admin).as_str()), (503, "sign_in_disabled"));
    assert!(admin.json()["error"]["message"].as_str().unwrap().contains("admin_pin"), "{}", admin.text());
    for pin in ["", "0000"] {
        assert_eq!(login(&host, json!({ "pin": pin })).status, 401, "PIN {pin:?}");
    }
    // A display PIN too short to be one is ignored: the display app then takes only a barista's or admin's.
    let display = login(&host, json!({ "pin": "0000", "role": "display" }));
    assert_eq!((display.status, error_code(&display).as_str()), (401, "wrong_pin"));
    // The barista PIN still works; without an admin nobody is admin.
    let barista = Caller::staff(&host, BARISTA_PIN);
    assert_eq!(barista.get("/api/shops/main/orders").status, 200);
    let sweep = sweep_with(&host, "");
    assert_eq!((sweep.status, error_code(&sweep).as_str()), (503, "not_configured"));
    assert_eq!(request(&host.url("/metrics"), "GET", &[("authorization", "Bearer ")], None).status, 401);
}

#[test]
fn without_a_signing_key_nothing_is_signed_or_trusted() {
    let scratch = Scratch::new("no-key");
    let host = Host::start(&HostOptions::new("spin.toml", &scratch).env("SPIN_VARIABLE_SIGNING_KEY", ""));
    let session = Caller::anonymous(&host).post("/api/session", json!({}));
    assert_eq!((session.status, error_code(&session).as_str()), (503, "not_configured"));
    assert_eq!(login(&host, json!({ "pin": ADMIN_PIN })).status, 503);
    let forged = with_token(&host, &forged_admin(""));
    assert_eq!(forged.put("/api/shops/main/config", json!({ "name": "x" })).status, 503);
    // Public reads still work: the board needs no secret.
    assert_eq!(Caller::anonymous(&host).get("/api/shops/main/board").status, 200);
}

#[test]
fn parallel_wrong_pins_from_one_address_get_at_most_five_tries() {
    let scratch = Scratch::new("pin-race");
    let host = start(&scratch);
    let url = host.url("/api/staff/login");
    let statuses = in_parallel(40, move |_| {
        let reply = request(&url, "POST", &[("content-type", "application/json")], Some(r#"{"pin":"10101010"}"#));
        (reply.status, reply.header("retry-after").map(str::to_string))
    });
    let tried = statuses.iter().filter(|(s, _)| *s == 401).count();
    assert_eq!(tried, 5, "{statuses:?}");
    assert!(
        statuses.iter().filter(|(s, _)| *s == 429).all(|(_, retry)| retry.as_deref() == Some("60")),
        "{statuses:?}"
    );
    assert_eq!(tried + statuses.iter().filter(|(s, _)| *s == 429).count(), 40);
}

/// A sign-in with `pin` through a proxy that sent `x-forwarded-for: forwarded`.
fn login_forwarded(host: &Host, forwarded: &str, pin: &str) -> Reply {
    let headers = [("content-type", "application/json"), ("x-forwarded-for", forwarded)];
    request(&host.url("/api/staff/login"), "POST", &headers, Some(&json!({ "pin": pin }).to_string()))
}

#[test]
fn behind_a_named_proxy_header_wrong_pins_count_per_client_the_proxy_saw() {
    let scratch = Scratch::new("pin-proxy");
    let host =
        Host::start(&HostOptions::new("spin.toml", &scratch).env("SPIN_VARIABLE_CLIENT_IP_HEADER", "X-Forwarded-For"));
    for n in 0..5 {
        // What the client put first is its own claim; the proxy added the last address.
        let reply = login_forwarded(&host, &format!("198.51.100.{n}, 203.0.113.5"), "10101010");
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
    assert_eq!(login_forwarded(&host, "198.51.100.9, 203.0.113.5", "10101010").status, 429);
    // Staff elsewhere behind the same proxy still sign in.
    assert_eq!(login_forwarded(&host, "203.0.113.77", ADMIN_PIN).status, 200);
}

#[test]
fn without_a_named_proxy_header_a_forwarded_address_changes_nothing() {
    let scratch = Scratch::new("pin-no-proxy");
    let host = start(&scratch);
    for n in 0..5 {
        assert_eq!(login_forwarded(&host, &format!("203.0.113.{n}"), "10101010").status, 401);
    }
    let reply = login_forwarded(&host, "203.0.113.99", "10101010");
    assert_eq!((reply.status, error_code(&reply).as_str()), (429, "too_many_attempts"));
}

#[test]
fn signing_out_revokes_the_token_everywhere_and_clears_the_cookie() {
    let scratch = Scratch::new("logout");
    let host = start(&scratch);
    let signed_in = login(&host, json!({ "pin": BARISTA_PIN, "role": "barista" }));
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
    let token = signed_in.json()["token"].as_str().unwrap().to_string();
    let cookie = signed_in.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let other = Caller::staff(&host, BARISTA_PIN);
    let barista = with_token(&host, &token);
    assert_eq!(barista.get("/api/shops/main/orders").status, 200);

    // Sign out with the cookie, as the tablet does.
    let out = request(
        &host.url("/api/staff/logout"),
        "POST",
        &[("content-type", "application/json"), ("cookie", &cookie)],
        Some("{}"),
    );
    assert_eq!((out.status, out.json()["signedOut"].as_bool()), (200, Some(true)), "{}", out.text());
    let cleared = out.header("set-cookie").unwrap();
    assert!(cleared.starts_with("sp_staff=;") && cleared.contains("Max-Age=0"), "{cleared}");

    // The same token, by bearer or cookie, is refused from now on; another sign-in is not.
    let refused = barista.get("/api/shops/main/orders");
    assert_eq!((refused.status, error_code(&refused).as_str()), (401, "signed_out"));
    let by_cookie = request(&host.url("/api/shops/main/orders"), "GET", &[("cookie", &cookie)], None);
    assert_eq!(by_cookie.status, 401);
    // On an admin route too: signed out (401) comes before the wrong role (403).
    let admin_route = barista.get("/api/shops/main/metrics");
    assert_eq!((admin_route.status, error_code(&admin_route).as_str()), (401, "signed_out"));
    assert_eq!(other.get("/api/shops/main/orders").status, 200);
    // Signing out again, or with nothing, is fine.
    assert_eq!(barista.post("/api/staff/logout", json!({})).status, 200);
    assert_eq!(Caller::anonymous(&host).post("/api/staff/logout", json!({})).json()["signedOut"], false);
}

#[test]
fn a_token_limited_to_a_shop_acts_on_that_shop_only() {
    let scratch = Scratch::new("scoped");
    let host = start(&scratch);
    let admin = Caller::staff(&host, ADMIN_PIN);
    assert_eq!(admin.post("/api/shops", json!({ "shopId": "booth", "name": "Booth" })).status, 201);
    let scoped = login(&host, json!({ "pin": ADMIN_PIN, "shop": "main" }));
    assert_eq!((scoped.status, scoped.json()["shop"].as_str()), (200, Some("main")), "{}", scoped.text());
    let scoped = with_token(&host, scoped.json()["token"].as_str().unwrap());
    assert_eq!(scoped.get("/api/shops/main/orders").status, 200);
    assert_eq!(scoped.put("/api/shops/main/config", json!({ "name": "Main bar" })).status, 200);
    assert_eq!(scoped.get("/api/shops/booth/orders").status, 403);
    assert_eq!(scoped.put("/api/shops/booth/config", json!({ "name": "Mine" })).status, 403);
    assert_eq!(scoped.get("/api/shops").status, 403, "not every shop");
    assert_eq!(scoped.post("/api/shops", json!({ "shopId": "other", "name": "Other" })).status, 403);
    assert_eq!(login(&host, json!({ "pin": ADMIN_PIN, "shop": "nowhere" })).status, 404);
}

#[test]
fn a_token_limited_to_a_shop_acts_only_on_orders_of_that_shop() {
    let scratch = Scratch::new("scoped-orders");
    let host = start(&scratch);
    let admin = open_main(&host);
    assert_eq!(admin.post("/api/shops", json!({ "shopId": "booth", "name": "Booth" })).status, 201);
    assert_eq!(admin.post("/api/shops/booth/open", json!({})).status, 200);
    let booth_code =
        Caller::staff(&host, DISPLAY_PIN).get("/api/shops/booth/qr").json()["code"].as_str().unwrap().to_string();
    let customer = Caller::customer(&host);
    let at_main = customer.redeem("main", &current_code(&host));
    let other = Caller::customer(&host);
    let at_booth = other.redeem("booth", &booth_code);
    assert!(at_main.starts_with("main.") && at_booth.starts_with("booth."), "{at_main} {at_booth}");
    for (id, who) in [(&at_main, &customer), (&at_booth, &other)] {
        assert_eq!(who.put(&format!("/api/orders/{id}/drink"), json!({ "drinkId": "espresso" })).status, 200);
    }

    for role_pin in [ADMIN_PIN, BARISTA_PIN] {
        let scoped = login(&host, json!({ "pin": role_pin, "shop": "main" }));
        let scoped = with_token(&host, scoped.json()["token"].as_str().unwrap());
        // Nothing of another shop's order: not read, not changed.
        for (method, action) in
            [("GET", ""), ("GET", "/journey"), ("POST", "/claim"), ("POST", "/complete"), ("POST", "/cancel")]
        {
            let path = format!("/api/orders/{at_booth}{action}");
            let reply = scoped.call(method, &path, (method == "POST").then(|| json!({})));
            assert_eq!((reply.status, error_code(&reply).as_str()), (403, "forbidden"), "{method} {path}");
        }
        assert_eq!(scoped.get(&format!("/api/orders/{at_main}")).status, 200);
    }
    let booth_order = admin.get(&format!("/api/orders/{at_booth}")).json();
    assert_eq!((booth_order["state"].as_str(), booth_order["baristaId"].as_str()), (Some("queued"), None));

    // Its own shop's orders, it acts on.
    let scoped = login(&host, json!({ "pin": BARISTA_PIN, "shop": "main" }));
    let scoped = with_token(&host, scoped.json()["token"].as_str().unwrap());
    assert_eq!(scoped.post(&format!("/api/orders/{at_main}/claim"), json!({})).status, 200);
    assert_eq!(scoped.post(&format!("/api/orders/{at_main}/complete"), json!({})).status, 200);
    // A token for every shop acts on both.
    let barista = Caller::staff(&host, BARISTA_PIN);
    assert_eq!(barista.post(&format!("/api/orders/{at_booth}/claim"), json!({})).status, 200);
    // A token of the booth, on the booth's order.
    let booth = login(&host, json!({ "pin": BARISTA_PIN, "shop": "booth" }));
    let booth = with_token(&host, booth.json()["token"].as_str().unwrap());
    assert_eq!(booth.get(&format!("/api/orders/{at_booth}")).status, 200);
    assert_eq!(booth.post(&format!("/api/orders/{at_main}/cancel"), json!({})).status, 403);

    // Ids that name no order are not found, and cost no lookup.
    for bad in ["nope", "booth.20261399.aaaaaaaaaaaaaaaaaaaaaaaaaa", "main.20261122.AAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let reply = barista.get(&format!("/api/orders/{bad}"));
        assert_eq!((reply.status, error_code(&reply).as_str()), (404, "order_not_found"), "{bad}");
    }
}

#[test]
fn a_display_reads_the_code_and_the_board_but_no_orders() {
    let scratch = Scratch::new("display");
    let host = start(&scratch);
    open_main(&host);
    let customer = Caller::customer(&host);
    let id = customer.redeem("main", &current_code(&host));
    let display = Caller::staff(&host, DISPLAY_PIN);
    assert_eq!(display.get("/api/shops/main/qr").status, 200);
    assert_eq!(display.get("/api/shops/main/qr.svg").status, 200);
    assert_eq!(display.get("/api/shops/main/board").status, 200);
    for path in [
        format!("/api/orders/{id}"),
        format!("/api/orders/{id}/journey"),
        "/api/shops/main/orders".to_string(),
        "/api/shops/main/events?after=0".to_string(),
        "/api/shops/main/events/staff".to_string(),
    ] {
        let reply = display.get(&path);
        assert_eq!((reply.status, error_code(&reply).as_str()), (403, "forbidden"), "{path}");
    }
    let board = SseStream::connect(&host.url("/api/shops/main/events/board"), &[]);
    assert_eq!(board.status, 200);
}

#[test]
fn names_reach_the_export_as_text_and_the_board_without_invisible_controls() {
    let scratch = Scratch::new("names");
    let host = start(&scratch);
    let admin = open_main(&host);
    let code = current_code(&host);
    let names = ["=1+2", "@SUM(A1)", "Ana\u{202E}lanigiro\u{200B}"];
    for name in names {
        let customer = Caller::customer(&host);
        let order = customer.post("/api/shops/main/orders", json!({ "code": code, "displayName": name }));
        assert_eq!(order.status, 201, "{}", order.text());
        let id = order.json()["id"].as_str().unwrap().to_string();
        let drink = customer.put(&format!("/api/orders/{id}/drink"), json!({ "drinkId": "espresso" }));
        assert_eq!(drink.status, 200, "{}", drink.text());
        // The public board shows the name as typed, less its invisible controls.
        let board = Caller::anonymous(&host).get("/api/shops/main/board").json();
        let shown: Vec<&str> =
            board["preparing"].as_array().unwrap().iter().filter_map(|i| i["displayName"].as_str()).collect();
        assert!(shown.iter().all(|n| !n.contains(['\u{202E}', '\u{200B}'])), "{shown:?}");
        let expected = name.replace(['\u{202E}', '\u{200B}'], "");
        assert!(shown.contains(&expected.as_str()), "{expected:?} on the board: {shown:?}");
        assert_eq!(customer.post(&format!("/api/orders/{id}/cancel"), json!({})).status, 200);
        let _ = admin.get("/api/shops/main/orders"); // keep the admin's sign-in in use
    }
    let csv = admin.get("/api/shops/main/orders.csv");
    assert_eq!(csv.status, 200, "{}", csv.text());
    let mut reader = csv::Reader::from_reader(csv.body.as_slice());
    let column = reader.headers().unwrap().iter().position(|h| h == "displayName").unwrap();
    let cells: Vec<String> = reader.records().map(|r| r.unwrap()[column].to_string()).collect();
    assert!(cells.contains(&"'=1+2".to_string()) && cells.contains(&"'@SUM(A1)".to_string()), "{cells:?}");
    assert!(cells.contains(&"Analanigiro".to_string()), "{cells:?}");
    assert!(!csv.text().contains('\u{202E}'));
}

#[test]
fn a_double_slash_path_is_redirected_on_this_site() {
    let scratch = Scratch::new("redirect");
    let host = start(&scratch);
    for path in ["//admin", "///admin", "/admin"] {
        let reply = request(&host.url(path), "GET", &[], None);
        assert_eq!((reply.status, reply.header("location")), (301, Some("/admin/")), "{path}");
    }
}

#[test]
fn pages_and_answers_carry_the_headers_a_browser_needs() {
    let scratch = Scratch::new("headers");
    let host = start(&scratch);
    let page = request(&host.url("/barista/"), "GET", &[], None);
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("strict-transport-security"), None, "not over plain http");
    let json = Caller::anonymous(&host).get("/api/shops/main/config");
    assert_eq!(json.header("x-content-type-options"), Some("nosniff"));
    let error = Caller::anonymous(&host).get("/api/shops/nowhere/config");
    assert_eq!((error.status, error.header("x-content-type-options")), (404, Some("nosniff")));
    let session = Caller::anonymous(&host).post("/api/session", json!({}));
    assert!(!session.header("set-cookie").unwrap().contains("Secure"));
}

#[test]
fn behind_https_cookies_are_secure_and_browsers_stay_on_https() {
    let scratch = Scratch::new("https");
    let options =
        HostOptions::new("spin.toml", &scratch).env("SPIN_VARIABLE_PUBLIC_BASE_URL", "https://coffee.example.org");
    let host = Host::start(&options);
    let session = Caller::anonymous(&host).post("/api/session", json!({}));
    assert!(session.header("set-cookie").unwrap().contains("; Secure"), "{:?}", session.header("set-cookie"));
    let staff = login(&host, json!({ "pin": BARISTA_PIN }));
    assert!(staff.header("set-cookie").unwrap().contains("; Secure"));
    assert!(staff.header("strict-transport-security").is_some_and(|h| h.starts_with("max-age=")));
    let page = request(&host.url("/order/"), "GET", &[], None);
    assert!(page.header("strict-transport-security").is_some_and(|h| h.starts_with("max-age=")));
}

//! The host itself, probed through the test-only `kvtest` component:
//! key-value semantics under concurrency, store scoping, persistence,
//! variables, guest output, traps, routing headers, the sweeper timer.

use spinpresso_e2e::*;
use std::sync::{Arc, Barrier};

const FIXTURE: &str = "tests/fixtures/kvtest.toml";

fn options(scratch: &Scratch) -> HostOptions {
    HostOptions::new(FIXTURE, scratch).env("SPIN_VARIABLE_SECRET_PIN", "1234")
}

/// Runs `threads` clients at once, each sending `each` requests; returns every reply.
fn hammer(host: &Host, threads: usize, each: usize, method: &'static str, path: &str) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(threads));
    let url = host.url(path);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (barrier, url) = (barrier.clone(), url.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..each).map(|_| request(&url, method, &[], Some("mine"))).collect::<Vec<_>>()
            })
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
}

/// The guest's error variant, e.g. `AccessDenied` (from its Debug form `Error::AccessDenied`).
fn error_of(reply: Reply) -> String {
    let text = reply.json()["error"].as_str().expect("an error").to_string();
    text.trim_start_matches("Error::").to_string()
}

#[test]
fn concurrent_increments_lose_nothing() {
    let scratch = Scratch::new("increments");
    let host = Host::start(&options(&scratch));
    let replies = hammer(&host, 8, 50, "POST", "/_test/increment/counter");
    assert!(replies.iter().all(|r| r.status == 200), "every increment succeeds");
    let mut seen: Vec<i64> = replies.iter().map(|r| r.json()["value"].as_i64().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=400).collect::<Vec<_>>(), "each increment saw its own distinct value");
    let last = request(&host.url("/_test/increment/counter"), "POST", &[], None).json();
    assert_eq!(last["value"], 401);
}

#[test]
fn exactly_one_of_twenty_concurrent_creates_wins() {
    let scratch = Scratch::new("creates");
    let host = Host::start(&options(&scratch));
    let replies = hammer(&host, 20, 1, "POST", "/_test/create/elected");
    let winners = replies.iter().filter(|r| r.status == 200 && r.json()["won"] == true).count();
    let losers = replies.iter().filter(|r| r.status == 409 && r.json()["won"] == false).count();
    assert_eq!((winners, losers), (1, 19));
}

#[test]
fn stores_are_scoped_by_the_components_key_value_stores() {
    let scratch = Scratch::new("scoping");
    let host = Host::start(&options(&scratch));
    // Declared and present.
    assert_eq!(host.get("/_test/open/default").status, 200);
    // Declared, but no such store on this host.
    assert_eq!(error_of(host.get("/_test/open/elsewhere")), "NoSuchStore");
    // Not declared: refused, through both key-value interfaces.
    assert_eq!(error_of(host.get("/_test/open/secrets")), "AccessDenied");
    assert_eq!(error_of(host.get("/_test/legacy-open/secrets")), "AccessDenied");
    assert_eq!(host.get("/_test/legacy-open/default").status, 200);
    // A component with no stores at all cannot open the default one.
    assert_eq!(error_of(host.get("/_other/x/open/default")), "AccessDenied");
}

#[test]
fn data_survives_a_clean_stop_and_a_kill_in_spins_own_schema() {
    let scratch = Scratch::new("persistence");
    let options = options(&scratch);
    let host = Host::start(&options);
    assert_eq!(host.post("/_test/set/greeting", "hello").status, 200);
    assert!(host.stop().success(), "SIGTERM stops the host cleanly");

    let host = Host::start(&options);
    assert_eq!(host.get("/_test/get/greeting").json()["value"], "hello");
    assert_eq!(host.post("/_test/set/after-kill", "still here").status, 200);
    host.kill();

    let host = Host::start(&options);
    assert_eq!(host.get("/_test/get/after-kill").json()["value"], "still here");
    drop(host);

    let db = rusqlite::Connection::open(&options.kv_file).unwrap();
    let value: Vec<u8> = db
        .query_row("SELECT value FROM spin_key_value WHERE store = 'default' AND key = 'greeting'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(value, b"hello");
}

#[test]
fn counters_are_stored_as_eight_little_endian_bytes() {
    let scratch = Scratch::new("counter-format");
    let options = options(&scratch);
    let host = Host::start(&options);
    for _ in 0..3 {
        host.post("/_test/increment/n", "");
    }
    drop(host);
    let db = rusqlite::Connection::open(&options.kv_file).unwrap();
    let value: Vec<u8> = db.query_row("SELECT value FROM spin_key_value WHERE key = 'n'", [], |r| r.get(0)).unwrap();
    assert_eq!(value, 3i64.to_le_bytes());
}

#[test]
fn variables_come_from_defaults_and_environment_through_component_templates() {
    let scratch = Scratch::new("variables");
    let host = Host::start(&options(&scratch));
    assert_eq!(host.get("/_test/variable/greeting").json()["value"], "hello, world");
    assert_eq!(host.get("/_test/variable/pin").json()["value"], "1234");
    let undefined = error_of(host.get("/_test/variable/nothing"));
    assert!(undefined.starts_with("Undefined"), "{undefined}");
    drop(host);

    let host = Host::start(&options(&scratch).env("SPIN_VARIABLE_GREETING", "olá"));
    assert_eq!(host.get("/_test/variable/greeting").json()["value"], "olá, world");
}

#[test]
fn a_required_variable_without_a_value_stops_the_start_with_a_clear_message() {
    let scratch = Scratch::new("required");
    let (status, output) = Host::start_failing(&HostOptions::new(FIXTURE, &scratch));
    assert!(!status.success());
    assert!(output.contains("`secret_pin`") && output.contains("SPIN_VARIABLE_SECRET_PIN"), "{output}");
}

#[test]
fn an_invalid_manifest_is_refused_naming_the_field() {
    let scratch = Scratch::new("bad-manifest");
    let path = scratch.path().join("spin.toml");
    let text = std::fs::read_to_string(repo_root().join(FIXTURE))
        .unwrap()
        .replace("component = \"kvtest\"", "component = \"ghost\"");
    std::fs::write(&path, text).unwrap();
    let (status, output) = Host::start_failing(&HostOptions::new(&path, &scratch));
    assert!(!status.success());
    assert!(output.contains("`trigger.http[0].component` names `ghost`"), "{output}");
}

#[test]
fn a_trapping_guest_gets_a_500_and_the_host_keeps_serving() {
    let scratch = Scratch::new("trap");
    let host = Host::start(&options(&scratch));
    assert_eq!(host.get("/_test/trap").status, 500);
    assert_eq!(host.post("/_test/increment/alive", "").status, 200);
    let log = host.log();
    assert!(log.contains("component `kvtest` failed"), "{log}");
    assert!(log.contains("[kvtest]") && log.contains("asked to trap"), "the guest's panic message is logged: {log}");
}

#[test]
fn guest_output_is_logged_with_the_component_id() {
    let scratch = Scratch::new("stdio");
    let host = Host::start(&options(&scratch).args(&["--sweep-every", "0", "--log-requests"]));
    host.get("/_test/print/marker-42");
    let log = host.log_once_it_has("[kvtest] to stderr: marker-42");
    assert!(log.contains("[kvtest] to stdout: marker-42"), "{log}");
    assert!(log.contains("[kvtest] to stderr: marker-42"), "{log}");
}

#[test]
fn without_request_logs_only_the_guests_standard_error_is_shown() {
    let scratch = Scratch::new("stdio-quiet");
    let host = Host::start(&options(&scratch));
    host.get("/_test/print/marker-43");
    let log = host.log_once_it_has("[kvtest] to stderr: marker-43");
    assert!(log.contains("[kvtest] to stderr: marker-43"), "{log}");
    assert!(!log.contains("to stdout: marker-43") && !log.contains("/_test/print"), "{log}");
}

#[test]
fn requests_carry_spins_routing_headers() {
    let scratch = Scratch::new("headers");
    let host = Host::start(&options(&scratch));
    let headers =
        request(&host.url("/_other/shop-7/headers?x=1"), "GET", &[("spin-path-info", "/forged")], None).json();
    assert_eq!(headers["spin-full-url"], format!("http://{}/_other/shop-7/headers?x=1", host.addr));
    assert_eq!(headers["spin-path-info"], "/headers");
    assert_eq!(headers["spin-matched-route"], "/_other/:name/...");
    assert_eq!(headers["spin-raw-component-route"], "/_other/:name/...");
    assert_eq!(headers["spin-component-route"], "/_other/:name");
    assert_eq!(headers["spin-base-path"], "/");
    assert_eq!(headers["spin-path-match-name"], "shop-7");
    assert!(headers["spin-client-addr"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[test]
fn unrouted_paths_are_404() {
    let scratch = Scratch::new("unrouted");
    let host = Host::start(&options(&scratch));
    assert_eq!(host.get("/").status, 404);
    assert_eq!(host.get("/api/shops/main/config").status, 404);
}

#[test]
fn the_sweeper_timer_calls_the_sweep_route_with_the_token() {
    let scratch = Scratch::new("sweeper");
    let options = options(&scratch).args(&["--sweep-every", "1"]);
    let mut text = std::fs::read_to_string(&options.manifest).unwrap();
    text = text.replace("[variables]", "[variables]\nsweeper_token = { default = \"\", secret = true }");
    let manifest = repo_root().join("tests/fixtures").join(format!("sweeper-{}.toml", std::process::id()));
    std::fs::write(&manifest, text).unwrap();
    let host = Host::start(&HostOptions { manifest: manifest.clone(), ..options });
    std::fs::remove_file(&manifest).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut sweeps = 0;
    while sweeps < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        sweeps = host.get("/_test/count/sweeps").json()["value"].as_i64().unwrap();
    }
    assert!(sweeps >= 2, "the timer calls the sweep route every second, got {sweeps} calls");
    assert_eq!(host.get("/_test/get/sweep-auth").json()["value"], format!("Bearer {SWEEPER_TOKEN}"));
}

//! A first run with nothing configured, as a newcomer makes it: the host
//! makes up the secrets, keeps them, says where the apps and the PINs are,
//! and stays quiet unless asked for request logs.

use spinpresso_e2e::*;
use std::time::Duration;

/// Options with none of the test secrets: only what the host makes up.
fn unconfigured(scratch: &Scratch) -> HostOptions {
    TEST_SECRETS.iter().fold(HostOptions::new("spin.toml", scratch), |options, (name, _)| options.without_env(name))
}

/// The PIN the banner prints for `name` (e.g. `admin_pin 12345678`).
fn printed_pin(log: &str, name: &str) -> String {
    let line = log.lines().find(|l| l.contains("staff PINs")).unwrap_or_else(|| panic!("no PIN line:\n{log}"));
    let after = line.split(&format!("{name} ")).nth(1).unwrap_or_else(|| panic!("no {name} in {line}"));
    after.chars().take_while(char::is_ascii_digit).collect()
}

#[test]
fn a_first_run_makes_up_pins_keeps_them_and_prints_where_to_go() {
    let scratch = Scratch::new("first-run");
    let options = unconfigured(&scratch);
    let host = Host::start(&options);
    let log = host.log();
    for app in ["admin", "barista", "display", "order"] {
        assert!(log.contains(&host.url(&format!("/{app}/"))), "the banner names the {app} app:\n{log}");
    }
    assert!(log.contains(&options.secrets_file.display().to_string()), "the banner says where the PINs are:\n{log}");
    let pins: Vec<String> = ["admin_pin", "barista_pin", "display_pin"].iter().map(|n| printed_pin(&log, n)).collect();
    for pin in &pins {
        assert_eq!(pin.len(), 8, "{log}");
    }
    let barista = Caller::staff(&host, &pins[1]);
    assert_eq!(barista.get("/api/shops/main/orders").status, 200);
    let sweep = sweep_with(&host, "");
    assert_eq!(sweep.status, 401, "the made-up sweeper token is not empty");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&options.secrets_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner reads the secrets file");
    }
    let token = barista.token.clone().unwrap();
    host.stop();

    let again = Host::start(&options);
    let log = again.log();
    assert_eq!(printed_pin(&log, "admin_pin"), pins[0], "the next start keeps the PINs");
    assert!(!log.contains("made up"), "nothing new is made up:\n{log}");
    let session = Caller { base: again.url(""), token: Some(token) };
    assert_eq!(session.get("/api/shops/main/orders").status, 200, "sign-ins survive a restart (same signing key)");
}

#[test]
fn two_installs_never_share_their_made_up_pins() {
    let (a, b) = (Scratch::new("install-a"), Scratch::new("install-b"));
    let first = Host::start(&unconfigured(&a));
    let second = Host::start(&unconfigured(&b));
    let pin = printed_pin(&first.log(), "admin_pin");
    assert_ne!(pin, printed_pin(&second.log(), "admin_pin"));
    let elsewhere = Caller::anonymous(&second).post("/api/staff/login", json!({ "pin": pin }));
    assert_eq!(elsewhere.status, 401);
}

#[test]
fn the_log_is_quiet_unless_request_logs_are_asked_for() {
    let scratch = Scratch::new("quiet");
    let quiet = Host::start(&HostOptions::new("spin.toml", &scratch).args(&["--sweep-every", "1"]));
    Caller::customer(&quiet).get("/api/shops/main/board");
    std::thread::sleep(Duration::from_millis(2500)); // two sweeps
    let log = quiet.log();
    assert!(!log.contains("/api/shops/main/board"), "no line per request by default:\n{log}");
    assert!(!log.contains("/internal/sweep"), "no line per sweep:\n{log}");
    drop(quiet);

    let scratch = Scratch::new("loud");
    let options = HostOptions::new("spin.toml", &scratch).args(&["--sweep-every", "1", "--log-requests"]);
    let loud = Host::start(&options);
    Caller::customer(&loud).get("/api/shops/main/board");
    std::thread::sleep(Duration::from_millis(2500));
    let log = loud.log();
    assert!(log.contains("[host] GET /api/shops/main/board 200"), "the host's request line:\n{log}");
    assert!(log.contains(r#""route":"/api/shops/:shop/board""#), "the component's access log:\n{log}");
    assert!(!log.contains("/internal/sweep"), "a sweep with nothing to do is not logged:\n{log}");
}

//! The host on a Redis store that stops answering, and over TLS: a frozen
//! Redis makes requests answer 503 within seconds instead of hanging the
//! host, and the host recovers by itself once Redis answers again.

use spinpresso_e2e::redis::{runtime_config, Redis};
use spinpresso_e2e::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn on_redis(scratch: &Scratch, url: &str) -> HostOptions {
    let config = runtime_config(scratch.path(), url);
    HostOptions::new("spin.toml", scratch).args(&[
        "--sweep-every",
        "0",
        "--redis-timeout",
        "1",
        "--runtime-config-file",
        config.to_str().unwrap(),
    ])
}

/// `call` and how long it took.
fn timed<T>(call: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = call();
    (out, started.elapsed())
}

#[test]
fn a_frozen_redis_makes_requests_answer_503_quickly_and_the_host_recovers_by_itself() {
    let redis = Redis::start();
    let scratch = Scratch::new("redis-frozen");
    let host = Host::start(&on_redis(&scratch, &redis.url()));
    assert_eq!(host.get("/healthz").status, 200);
    assert_eq!(Caller::anonymous(&host).post("/api/session", json!({})).status, 200);

    redis.freeze();
    let base = host.url("");
    let (replies, took) = timed(|| {
        in_parallel(20, move |i| {
            let path = ["/healthz", "/api/shops/main/config", "/api/shops/main/board"][i % 3];
            let (reply, took) = timed(|| request(&format!("{base}{path}"), "GET", &[], None));
            (path, reply, took)
        })
    });
    for (path, reply, took) in &replies {
        assert_eq!(reply.status, 503, "{path}: {}", reply.text());
        assert_eq!(error_code(reply), "store_unavailable", "{path}");
        assert!(*took < Duration::from_secs(4), "{path} answered in {took:?}");
    }
    println!("with Redis frozen, 20 requests at once all answered 503 within {took:?}");
    // Now the store fails fast, and what needs no store is served as ever.
    let (health, took) = timed(|| host.get("/healthz"));
    assert_eq!(health.status, 503);
    assert!(took < Duration::from_millis(500), "fails fast: {took:?}");
    println!("with Redis frozen, a later /healthz answered 503 in {took:?}");
    let (page, took) = timed(|| host.get("/order/"));
    assert_eq!(page.status, 200);
    assert!(took < Duration::from_millis(500), "static files: {took:?}");

    redis.thaw();
    let thawed = Instant::now();
    while host.get("/healthz").status != 200 {
        assert!(thawed.elapsed() < Duration::from_secs(10), "the host did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("after Redis was let go on, /healthz answered 200 again within {:?}", thawed.elapsed());
    assert_eq!(Caller::anonymous(&host).post("/api/session", json!({})).status, 200);
    let log = host.log();
    assert!(log.contains("Redis failed") && log.contains("Redis answers again"), "{log}");
}

/// A test CA (`ca.pem`) and a certificate it signed for 127.0.0.1
/// (`cert.pem`, `key.pem`), in `dir`.
fn certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let made = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed (scripts/test.sh installs it)");
        assert!(made.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&made.stderr));
    };
    let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[&["req", "-x509", "-days", "1", "-subj", "/CN=Test CA", "-keyout", "ca.key", "-out", "ca.pem"], &key[..]]
            .concat(),
    );
    openssl(&[&["req", "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "server.csr"], &key[..]].concat());
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
        .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ]);
}

#[test]
fn a_rediss_url_connects_over_tls_and_checks_the_servers_certificate() {
    let scratch = Scratch::new("redis-tls");
    certificates(scratch.path());
    let redis = Redis::start_tls(scratch.path());
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let ca = scratch.path().join("ca.pem");

    // Trusting the server's CA: the app runs on it.
    let host = Host::start(&on_redis(&scratch, &url).env("SSL_CERT_FILE", ca.to_str().unwrap()));
    assert_eq!(host.get("/healthz").status, 200);
    let admin = Caller::staff(&host, ADMIN_PIN);
    assert_eq!(admin.post("/api/shops/main/open", json!({})).status, 200);
    assert_eq!(Caller::anonymous(&host).get("/api/shops/main/config").json()["open"], true);
    drop(host);

    // Not trusting it: the start fails, saying why.
    let empty = scratch.path().join("no-roots.pem");
    std::fs::write(&empty, "").unwrap();
    let (status, output) = Host::start_failing(&on_redis(&scratch, &url).env("SSL_CERT_FILE", empty.to_str().unwrap()));
    assert!(!status.success());
    assert!(output.contains("cannot connect to Redis"), "{output}");
}

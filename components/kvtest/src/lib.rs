//! Test-only component (mounted by `tests/fixtures/kvtest.toml`, never by
//! `spin.toml`): small probes of what the host gives a guest, so the
//! end-to-end tests can check key-value atomicity, store scoping, variables,
//! guest output, traps and slow answers through real Wasm.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::keyvalue::{atomics, store};

#[http_component]
fn handle(req: Request) -> Response {
    if req.header("spin-component-route").and_then(|v| v.as_str()) == Some("/internal/sweep") {
        return record_sweep(&req);
    }
    let info = req.header("spin-path-info").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let parts: Vec<&str> = info.trim_start_matches('/').splitn(2, '/').collect();
    let arg = parts.get(1).copied().unwrap_or_default();
    match parts[0] {
        "increment" => with_bucket("default", |b| match atomics::increment(b, arg, 1) {
            Ok(n) => reply(200, serde_json::json!({ "value": n })),
            Err(e) => store_error(e),
        }),
        "count" => with_bucket("default", |b| match atomics::increment(b, arg, 0) {
            Ok(n) => reply(200, serde_json::json!({ "value": n })),
            Err(e) => store_error(e),
        }),
        // "Create if absent" through compare-and-swap: exactly one racer may win.
        "create" => with_bucket("default", |b| {
            let cas = match atomics::Cas::new(b, arg) {
                Ok(cas) => cas,
                Err(e) => return store_error(e),
            };
            match cas.current() {
                Ok(None) => {}
                Ok(Some(_)) => return reply(409, serde_json::json!({ "won": false })),
                Err(e) => return store_error(e),
            }
            match atomics::swap(cas, req.body()) {
                Ok(()) => reply(200, serde_json::json!({ "won": true })),
                Err(atomics::CasError::CasFailed(_)) => reply(409, serde_json::json!({ "won": false })),
                Err(atomics::CasError::StoreError(e)) => store_error(e),
            }
        }),
        "get" => with_bucket("default", |b| match b.get(arg) {
            Ok(v) => reply(200, serde_json::json!({ "value": v.map(|v| String::from_utf8_lossy(&v).into_owned()) })),
            Err(e) => store_error(e),
        }),
        "set" => with_bucket("default", |b| match b.set(arg, req.body()) {
            Ok(()) => reply(200, serde_json::json!({})),
            Err(e) => store_error(e),
        }),
        "open" => with_bucket(arg, |_| reply(200, serde_json::json!({ "opened": arg }))),
        "legacy-open" => match spin_sdk::key_value::Store::open(arg) {
            Ok(_) => reply(200, serde_json::json!({ "opened": arg })),
            Err(e) => reply(400, serde_json::json!({ "error": format!("{e:?}") })),
        },
        "variable" => match spin_sdk::variables::get(arg) {
            Ok(v) => reply(200, serde_json::json!({ "value": v })),
            Err(e) => reply(400, serde_json::json!({ "error": format!("{e:?}") })),
        },
        "print" => {
            println!("to stdout: {arg}");
            eprintln!("to stderr: {arg}");
            reply(200, serde_json::json!({}))
        }
        "trap" => panic!("asked to trap"),
        // A slow component: answers after `?ms=` milliseconds.
        "busy" => {
            let ms = req.query().split('&').find_map(|p| p.strip_prefix("ms=")).and_then(|v| v.parse().ok());
            std::thread::sleep(std::time::Duration::from_millis(ms.unwrap_or(1000)));
            reply(200, serde_json::json!({ "slept": ms.unwrap_or(1000) }))
        }
        // A large answer: `?bytes=` of them (for clients that stop reading).
        "big" => {
            let bytes = req.query().split('&').find_map(|p| p.strip_prefix("bytes=")).and_then(|v| v.parse().ok());
            let body = vec![b'x'; bytes.unwrap_or(1 << 20)];
            Response::builder().status(200).header("content-type", "application/octet-stream").body(body).build()
        }
        // Echoes how many body bytes arrived.
        "size" => reply(200, serde_json::json!({ "bytes": req.body().len() })),
        "headers" => {
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .filter(|(name, _)| name.starts_with("spin-"))
                .map(|(name, value)| (name.to_string(), value.as_str().unwrap_or_default().into()))
                .collect();
            reply(200, serde_json::Value::Object(headers))
        }
        _ => reply(404, serde_json::json!({ "error": "unknown probe" })),
    }
}

/// Stands in for the sweeper: counts the host's timer calls and keeps the credentials they carried.
fn record_sweep(req: &Request) -> Response {
    let auth = req.header("authorization").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    with_bucket("default", |b| {
        let counted = atomics::increment(b, "sweeps", 1).and_then(|_| b.set("sweep-auth", auth.as_bytes()));
        match counted {
            Ok(()) => reply(200, serde_json::json!({ "timedOut": 0, "trimmed": 0 })),
            Err(e) => store_error(e),
        }
    })
}

fn with_bucket(label: &str, f: impl FnOnce(&store::Bucket) -> Response) -> Response {
    match store::open(label) {
        Ok(bucket) => f(&bucket),
        Err(e) => store_error(e),
    }
}

fn store_error(e: store::Error) -> Response {
    reply(400, serde_json::json!({ "error": format!("{e:?}") }))
}

fn reply(status: u16, body: serde_json::Value) -> Response {
    Response::builder().status(status).header("content-type", "application/json").body(body.to_string()).build()
}

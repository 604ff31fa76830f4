//! Benchmark-only component (mounted by the manifest `bench/` generates,
//! never by `spin.toml`). Both routes go through one component so that the
//! only difference between them is the key-value write:
//! - `/_bench/noop`: answers at once, the host's own ceiling;
//! - `/_bench/increment`: one atomic `increment`, the host's write path.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::keyvalue::{atomics, store};

#[http_component]
fn handle(req: Request) -> Response {
    match req.header("spin-path-info").and_then(|v| v.as_str()).unwrap_or_default() {
        "/noop" => text(200, "ok".into()),
        "/increment" => match store::open("default").and_then(|bucket| atomics::increment(&bucket, "bench/counter", 1))
        {
            Ok(value) => text(200, value.to_string()),
            Err(e) => text(500, format!("{e:?}")),
        },
        _ => text(404, "unknown probe".into()),
    }
}

fn text(status: u16, body: String) -> Response {
    Response::builder().status(status).header("content-type", "text/plain").body(body).build()
}

//! HTTP helpers: JSON responses, the one error shape, Spin's routing headers.

use crate::error_reply::{error_body, error_reply, JSON_HEADERS};
use crate::incoming::Request;
use serde::Serialize;
use spin_sdk::http::{Method, Response};
use spinpresso_domain::DomainError;

/// Largest request body a mutation accepts, but for a menu.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest menu body: a full menu (100 drinks with their options) is bigger than 16 KiB.
pub const MAX_MENU_BODY_BYTES: usize = 256 * 1024;

pub fn json<T: Serialize>(status: u16, value: &T) -> Response {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// [`json`] for a body that is JSON already.
pub fn json_bytes(status: u16, body: Vec<u8>) -> Response {
    let mut builder = Response::builder();
    builder.status(status);
    for (name, value) in JSON_HEADERS {
        builder.header(name, value);
    }
    builder.body(body).build()
}

/// `{"error": {"code", "message"}}` — the shape of every error the API returns.
pub fn error(status: u16, code: &str, message: &str) -> Response {
    json(status, &error_body(code, message))
}

/// The answer to an error (see [`error_reply`]).
pub fn domain_error(e: &DomainError) -> Response {
    let reply = error_reply(e);
    let mut response = json(reply.status, &reply.body);
    if let Some(seconds) = reply.retry_after {
        response.set_header("retry-after", seconds);
    }
    response
}

/// Tells browsers to use only https from now on, when the app is served over it.
pub fn strict_transport(response: &mut Response, https: bool) {
    if https {
        response.set_header("strict-transport-security", "max-age=31536000");
    }
}

pub fn not_found() -> Response {
    error(404, "not_found", "no such resource")
}

pub fn method_not_allowed(allowed: &[Method]) -> Response {
    let allow: Vec<String> = allowed.iter().map(|m| m.to_string()).collect();
    let mut response = error(405, "method_not_allowed", &format!("use {}", allow.join(" or ")));
    response.set_header("allow", allow.join(", "));
    response
}

/// A `:name` segment of the matched route, as Spin passes it.
pub fn path_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(&format!("spin-path-match-{name}"))
}

/// The route pattern that matched (without a trailing `/...`), e.g. `/api/shops/:shop/config`.
pub fn component_route(req: &Request) -> &str {
    req.header("spin-component-route").unwrap_or_else(|| req.path())
}

/// The path below the matched route: for `/static/...` and `/static/a.css`, `/a.css`.
pub fn path_info(req: &Request) -> &str {
    req.header("spin-path-info").unwrap_or_else(|| req.path())
}

/// Maps a handler's outcome to a response: errors become their JSON shape.
pub fn respond(outcome: Result<Response, DomainError>) -> Response {
    outcome.unwrap_or_else(|e| domain_error(&e))
}

/// A route table entry's answer when the method does not fit.
pub fn route_methods(allowed: &[Method]) -> Result<Response, DomainError> {
    Ok(method_not_allowed(allowed))
}

/// One structured log line per request (method, route, status, latency, shop,
/// order id). Never tokens, PINs or codes: none of those are in these fields.
pub fn logged(req: &Request, response: Response, started_ms: i64) -> Response {
    let method = req.method().to_string();
    let line = LogLine {
        method: &method,
        ms: crate::request::now_ms() - started_ms,
        order: path_param(req, "id"),
        route: component_route(req),
        shop: path_param(req, "shop"),
        status: *response.status(),
    };
    if let Ok(line) = serde_json::to_vec(&line) {
        write_line(line);
    }
    response
}

/// Writes a line to the component's standard output with one host call per
/// 4 KiB (`blocking-write-and-flush`, which takes at most that): `println!`
/// makes three per line (check, write, flush), and this is on every request.
fn write_line(mut line: Vec<u8>) {
    line.push(b'\n');
    let stdout = wasi::cli::stdout::get_stdout();
    for chunk in line.chunks(4096) {
        if stdout.blocking_write_and_flush(chunk).is_err() {
            break; // a log line is not worth failing a request for
        }
    }
}

/// The fields of a request's log line (in alphabetical order, as they have always been printed).
#[derive(Serialize)]
struct LogLine<'a> {
    method: &'a str,
    ms: i64,
    order: Option<&'a str>,
    route: &'a str,
    shop: Option<&'a str>,
    status: u16,
}

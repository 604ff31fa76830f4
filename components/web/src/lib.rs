//! The `web` component: serves the files mounted at `/` (the `static/`
//! folder, through `files` in spin.toml) with content types, directory
//! indexes, revalidation (`ETag` / `If-None-Match`), no path traversal, and
//! the headers that keep the pages from being framed, leaking their URL
//! (QR codes are in it) or running anything but their own scripts.

use spin_sdk::http::{Method, Response, ResponseBuilder};
use spin_sdk::http_component;
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::request::{is_https, Secrets};
use spinpresso_adapter::static_files::{etag_matches, resolve, Resolved};

/// Where spin.toml mounts `static/` inside the component.
const ROOT: &str = "/";

/// The pages load only their own scripts, styles, images (the QR code is an
/// SVG from the API; icons may be data: URLs) and API; nothing may frame them.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; media-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[http_component]
fn handle(req: Request) -> Response {
    let mut response = serve(&req);
    response.set_header("content-security-policy", CONTENT_SECURITY_POLICY);
    response.set_header("referrer-policy", "no-referrer");
    response.set_header("x-frame-options", "DENY");
    response.set_header("x-content-type-options", "nosniff");
    if is_https(&req, &Secrets::none()) {
        response.set_header("strict-transport-security", "max-age=31536000");
    }
    response
}

fn serve(req: &Request) -> Response {
    if !matches!(req.method(), Method::Get | Method::Head) {
        return text(405, "method not allowed").header("allow", "GET, HEAD").build();
    }
    let path = req.header("spin-path-info").unwrap_or_else(|| req.path());
    let resolved = resolve(std::path::Path::new(ROOT), path);
    let if_none_match = req.header("if-none-match");
    let head = *req.method() == Method::Head;
    match resolved {
        Resolved::File(file) => {
            let mut response = Response::builder();
            response
                .header("content-type", file.content_type)
                .header("cache-control", file.cache_control)
                .header("etag", file.etag.as_str());
            if if_none_match.is_some_and(|tags| etag_matches(tags, &file.etag)) {
                return response.status(304).build();
            }
            response.header("content-length", file.body.len().to_string());
            response.status(200).body(if head { Vec::new() } else { file.body }).build()
        }
        Resolved::RedirectToDirectory { path } => {
            // The mount's own path on this host (`/` unless the app has a base).
            let base = req.header("spin-base-path").unwrap_or("/").trim_end_matches('/');
            text(301, "moved permanently").header("location", format!("{base}{path}")).build()
        }
        Resolved::Invalid => text(400, "bad path").build(),
        // The API's unknown routes answer in the API's error shape.
        Resolved::NotFound if path.starts_with("/api/") || path.starts_with("/internal/") => Response::builder()
            .status(404)
            .header("content-type", "application/json")
            .body(r#"{"error":{"code":"not_found","message":"no such API route"}}"#)
            .build(),
        Resolved::NotFound => text(404, "not found").build(),
    }
}

fn text(status: u16, body: &str) -> ResponseBuilder {
    let mut builder = Response::builder();
    builder
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .header("cache-control", "no-store")
        .body(body.to_string());
    builder
}

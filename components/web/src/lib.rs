//! The `web` component: serves the files mounted at `/` (the `static/`
//! folder, through `files` in spin.toml) with content types, directory
//! indexes, revalidation (`ETag` / `If-None-Match`) and no path traversal.

use spin_sdk::http::{Method, Response};
use spin_sdk::http_component;
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::static_files::{etag_matches, resolve, Resolved};

/// Where spin.toml mounts `static/` inside the component.
const ROOT: &str = "/";

#[http_component]
fn handle(req: Request) -> Response {
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
                .header("etag", file.etag.as_str())
                .header("x-content-type-options", "nosniff");
            if if_none_match.is_some_and(|tags| etag_matches(tags, &file.etag)) {
                return response.status(304).build();
            }
            response.header("content-length", file.body.len().to_string());
            response.status(200).body(if head { Vec::new() } else { file.body }).build()
        }
        Resolved::RedirectToDirectory => {
            let location = format!("{}/", req.path());
            text(301, "moved permanently").header("location", location).build()
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

fn text(status: u16, body: &str) -> spin_sdk::http::ResponseBuilder {
    let mut builder = Response::builder();
    builder
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .header("cache-control", "no-store")
        .body(body.to_string());
    builder
}

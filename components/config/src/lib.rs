//! The `config` component: a shop's public config and menu, and `/healthz`.

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;
use spinpresso_adapter::http::{self, component_route, path_param};
use spinpresso_adapter::kv::SpinKv;
use spinpresso_domain::kv::KeyValue;
use spinpresso_domain::shop::{load_shop, ShopId};
use spinpresso_domain::DomainError;

#[http_component]
fn handle(req: Request) -> Response {
    match component_route(&req) {
        "/api/shops/:shop/config" => match req.method() {
            Method::Get => get_config(&req).unwrap_or_else(|e| http::domain_error(&e)),
            _ => http::method_not_allowed(&[Method::Get]),
        },
        "/healthz" => match req.method() {
            Method::Get => health(),
            _ => http::method_not_allowed(&[Method::Get]),
        },
        _ => http::not_found(),
    }
}

fn get_config(req: &Request) -> Result<Response, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    let kv = SpinKv::open_default()?;
    Ok(http::json(200, &load_shop(&kv, &shop)?))
}

/// Healthy means the key-value store answers.
fn health() -> Response {
    match SpinKv::open_default().and_then(|kv| kv.get("healthz")) {
        Ok(_) => http::json(200, &serde_json::json!({ "status": "ok" })),
        Err(e) => http::error(503, "store_unavailable", &format!("the key-value store is unavailable: {e}")),
    }
}

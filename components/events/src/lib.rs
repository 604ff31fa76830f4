//! The `events` component: a shop's event log, page by page (staff only).

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;
use spinpresso_adapter::flows::Env;
use spinpresso_adapter::http::{self, component_route, path_param};
use spinpresso_adapter::request;
use spinpresso_domain::auth::Role;
use spinpresso_domain::events;
use spinpresso_domain::shop::{load_shop, ShopId};
use spinpresso_domain::DomainError;

/// Most events one page answers with.
const PAGE_LIMIT: usize = 200;

#[http_component]
fn handle(req: Request) -> Response {
    http::respond(match (component_route(&req), req.method()) {
        ("/api/shops/:shop/events", Method::Get) => page(&req),
        ("/api/shops/:shop/events", _) => http::route_methods(&[Method::Get]),
        _ => Ok(http::not_found()),
    })
}

/// `GET /api/shops/:shop/events?after=<id>&limit=<n>`: the events after `after`, in order.
fn page(req: &Request) -> Result<Response, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    let number = |name: &str, default: u64| -> Result<u64, DomainError> {
        match request::query_param(req, name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|_| {
                DomainError::invalid("invalid_query", format!("`{name}` must be a whole number, got `{raw}`"))
            }),
        }
    };
    let after = number("after", 0)?;
    let limit = number("limit", PAGE_LIMIT as u64)?.clamp(1, PAGE_LIMIT as u64) as usize;
    let env = Env::open()?;
    request::authorize(req, &env.secrets, Role::Display, Some(shop.as_str()), env.now_ms)?;
    load_shop(&env.kv, &shop)?;
    Ok(http::json(200, &events::read_after(&env.kv, &shop, after, limit, env.now_ms)?))
}

//! The `barista` component: a barista's actions on an order (claim, release,
//! complete). Two baristas racing for one order: one wins, the other gets 409.

use spin_sdk::http::{Method, Response};
use spin_sdk::http_component;
use spinpresso_adapter::flows::Env;
use spinpresso_adapter::http::{self, component_route, path_param};
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::request;
use spinpresso_domain::auth::Role;
use spinpresso_domain::lifecycle::{self, StaffAction};
use spinpresso_domain::order::order_shop;
use spinpresso_domain::shop::ShopId;
use spinpresso_domain::DomainError;

#[http_component]
fn handle(req: Request) -> Response {
    let started = spinpresso_adapter::request::now_ms();
    let response = http::respond(match (component_route(&req), req.method()) {
        ("/api/orders/:id/claim", Method::Post) => act(&req, StaffAction::Claim),
        ("/api/orders/:id/release", Method::Post) => act(&req, StaffAction::Release),
        ("/api/orders/:id/complete", Method::Post) => act(&req, StaffAction::Complete),
        ("/api/orders/:id/claim" | "/api/orders/:id/release" | "/api/orders/:id/complete", _) => {
            http::route_methods(&[Method::Post])
        }
        _ => Ok(http::not_found()),
    });
    http::logged(&req, response, started)
}

/// `POST /api/orders/:id/claim|release|complete`.
fn act(req: &Request, action: StaffAction) -> Result<Response, DomainError> {
    let id = path_param(req, "id").unwrap_or_default().to_string();
    request::no_fields(req)?;
    let env = Env::open()?;
    // A token limited to one shop acts only on orders whose id names that shop.
    let staff = env.authorize(req, Role::Barista, order_shop(&id).as_ref().map(ShopId::as_str))?;
    let order = lifecycle::staff_action(&env.ctx(), &id, action, &staff.sub, staff.role == Role::Admin)?;
    Ok(http::json(200, &order))
}

//! The `orders` component: what customers do — redeem a code, choose a
//! drink, cancel, read their orders (staff may read and cancel any order),
//! and the shop's queue for baristas.

use serde::Deserialize;
use spin_sdk::http::{Method, Response};
use spin_sdk::http_component;
use spinpresso_adapter::flows::Env;
use spinpresso_adapter::http::{self, component_route, path_param};
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::kv::SpinKv;
use spinpresso_adapter::request;
use spinpresso_domain::auth::Role;
use spinpresso_domain::lifecycle::{self, StaffAction};
use spinpresso_domain::order::{clean_display_name, order_shop, DrinkChoice, OrderState};
use spinpresso_domain::shop::ShopId;
use spinpresso_domain::DomainError;

#[http_component]
fn handle(req: Request) -> Response {
    let started = spinpresso_adapter::request::now_ms();
    let response = http::respond(match (component_route(&req), req.method()) {
        ("/api/shops/:shop/orders", Method::Post) => redeem(&req),
        ("/api/shops/:shop/orders", Method::Get) => list(&req),
        ("/api/shops/:shop/orders", _) => http::route_methods(&[Method::Get, Method::Post]),
        ("/api/orders/:id/drink", Method::Put) => choose_drink(&req),
        ("/api/orders/:id/drink", _) => http::route_methods(&[Method::Put]),
        ("/api/orders/:id/cancel", Method::Post) => cancel(&req),
        ("/api/orders/:id/cancel", _) => http::route_methods(&[Method::Post]),
        ("/api/orders/:id", Method::Get) => get_one(&req),
        ("/api/orders/:id/journey", Method::Get) => journey(&req),
        ("/api/orders/:id/journey", _) => http::route_methods(&[Method::Get]),
        ("/api/orders/:id", _) => http::route_methods(&[Method::Get]),
        ("/api/shops/:shop/board", Method::Get) => board(&req),
        ("/api/shops/:shop/wait", Method::Get) => wait(&req),
        ("/api/shops/:shop/board" | "/api/shops/:shop/wait", _) => http::route_methods(&[Method::Get]),
        ("/api/me/orders", Method::Get) => mine(&req),
        ("/api/me/orders", _) => http::route_methods(&[Method::Get]),
        _ => Ok(http::not_found()),
    });
    http::logged(&req, response, started)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Redeem {
    code: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// `POST /api/shops/:shop/orders` `{code, displayName?}`: 201 with a new order,
/// 200 with the same order when the customer redeems the same code again.
fn redeem(req: &Request) -> Result<Response, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    let body: Redeem = request::json_body(req)?;
    let display_name = clean_display_name(body.display_name.as_deref())?;
    let env = Env::open()?;
    let customer = env.authorize(req, Role::Customer, None)?;
    let redeemed = lifecycle::redeem(&env.ctx(), &shop, &customer.sub, &body.code, display_name, false)?;
    // The order, and the drinks left on the code (`null` when redeemed before).
    let tokens_left = redeemed.tokens_left.map_or_else(|| "null".to_string(), |left| left.to_string());
    let body = redeemed.order.json_with("tokensLeft", &tokens_left);
    Ok(http::json_bytes(if redeemed.created { 201 } else { 200 }, body))
}

/// `GET /api/shops/:shop/orders?state=queued,in_progress`: oldest first (default: every open order).
fn list(req: &Request) -> Result<Response, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    let env = Env::open()?;
    env.authorize(req, Role::Barista, Some(shop.as_str()))?;
    let states = match request::query_param(req, "state").filter(|s| !s.is_empty()) {
        Some(list) => list.split(',').map(|s| OrderState::parse(s.trim())).collect::<Result<Vec<_>, _>>()?,
        None => vec![OrderState::AwaitingDrink, OrderState::Queued, OrderState::InProgress],
    };
    let orders = lifecycle::list_orders(&env.ctx(), &shop, &states)?;
    Ok(http::json(200, &serde_json::json!({ "orders": orders })))
}

/// `PUT /api/orders/:id/drink` `{drinkId, options}`: the order joins the queue with its number.
fn choose_drink(req: &Request) -> Result<Response, DomainError> {
    let id = path_param(req, "id").unwrap_or_default().to_string();
    let choice: DrinkChoice = request::json_body(req)?;
    let env = Env::open()?;
    let customer = env.authorize(req, Role::Customer, order_shop(&id).as_ref().map(ShopId::as_str))?;
    Ok(http::json(200, &lifecycle::submit_drink(&env.ctx(), &id, &customer.sub, &choice)?))
}

/// `POST /api/orders/:id/cancel`: the owner, or a barista or admin (of the
/// shop the order's id names, for a token limited to one shop).
fn cancel(req: &Request) -> Result<Response, DomainError> {
    let id = path_param(req, "id").unwrap_or_default().to_string();
    request::no_fields(req)?;
    let env = Env::open()?;
    let caller = env.customer_or_staff(req, order_shop(&id).as_ref().map(ShopId::as_str))?;
    let order = if caller.role == Role::Customer {
        lifecycle::cancel_by_customer(&env.ctx(), &id, &caller.sub)?
    } else {
        lifecycle::staff_action(&env.ctx(), &id, StaffAction::Cancel, &caller.sub, caller.role == Role::Admin)?
    };
    Ok(http::json(200, &order))
}

/// `GET /api/orders/:id`: the owner or any staff member.
fn get_one(req: &Request) -> Result<Response, DomainError> {
    let id = path_param(req, "id").unwrap_or_default().to_string();
    let env = Env::open()?;
    let caller = env.customer_or_staff(req, order_shop(&id).as_ref().map(ShopId::as_str))?;
    let owner = (caller.role == Role::Customer).then_some(caller.sub.as_str());
    Ok(http::json(200, &lifecycle::get_order(&env.ctx(), &id, owner)?))
}

/// `GET /api/orders/:id/journey`: the order's events in order (its customer or any staff member).
fn journey(req: &Request) -> Result<Response, DomainError> {
    let id = path_param(req, "id").unwrap_or_default().to_string();
    let env = Env::open()?;
    let caller = env.customer_or_staff(req, order_shop(&id).as_ref().map(ShopId::as_str))?;
    let owner = (caller.role == Role::Customer).then_some(caller.sub.as_str());
    let steps = lifecycle::journey(&env.ctx(), &id, owner)?;
    Ok(http::json(200, &serde_json::json!({ "orderId": id, "events": steps })))
}

/// `GET /api/me/orders`: the customer's orders of today and yesterday, newest first.
fn mine(req: &Request) -> Result<Response, DomainError> {
    let env = Env::open()?;
    let customer = env.authorize(req, Role::Customer, None)?;
    Ok(http::json(200, &serde_json::json!({ "orders": lifecycle::my_orders(&env.ctx(), &customer.sub)? })))
}

/// `GET /api/shops/:shop/board` (public): numbers, drinks, display names — never customer ids or codes.
fn board(req: &Request) -> Result<Response, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    // Displays poll this: while nothing changed it is one counter and one value.
    let kv = SpinKv::open_default()?;
    if let (_, Some(board)) = lifecycle::cached_board(&kv, &shop, request::now_ms())? {
        return Ok(http::json_bytes(200, board));
    }
    let env = Env::open_public()?;
    Ok(http::json_bytes(200, lifecycle::board_json(&env.ctx(), &shop)?))
}

/// `GET /api/shops/:shop/wait` (public): the queue's length and the wait a new order can expect.
fn wait(req: &Request) -> Result<Response, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    let env = Env::open_public()?;
    Ok(http::json(200, &lifecycle::wait_estimate(&env.ctx(), &shop)?))
}

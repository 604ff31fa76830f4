//! The `config` component: shops, their config and menu, opening and closing,
//! and `/healthz`.

use serde::Deserialize;
use spin_sdk::http::{Method, Response};
use spin_sdk::http_component;
use spinpresso_adapter::flows::Env;
use spinpresso_adapter::http::{self, component_route, path_param};
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::kv::SpinKv;
use spinpresso_adapter::request;
use spinpresso_domain::auth::Role;
use spinpresso_domain::events::{self, kind, NewEvent};
use spinpresso_domain::kv::KeyValue;
use spinpresso_domain::menu::Drink;
use spinpresso_domain::robot;
use spinpresso_domain::shop::{self, load_shop, ConfigUpdate, ShopConfig, ShopId};
use spinpresso_domain::DomainError;

#[http_component]
fn handle(req: Request) -> Response {
    let started = spinpresso_adapter::request::now_ms();
    let response = http::respond(match (component_route(&req), req.method()) {
        ("/api/shops/:shop/config", Method::Get) => get_config(&req),
        ("/api/shops/:shop/config", Method::Put) => put_config(&req),
        ("/api/shops/:shop/config", _) => http::route_methods(&[Method::Get, Method::Put]),
        ("/api/shops/:shop/menu", Method::Put) => put_menu(&req),
        ("/api/shops/:shop/menu", _) => http::route_methods(&[Method::Put]),
        ("/api/shops/:shop/open", Method::Post) => set_open(&req, true),
        ("/api/shops/:shop/close", Method::Post) => set_open(&req, false),
        ("/api/shops/:shop/open" | "/api/shops/:shop/close", _) => http::route_methods(&[Method::Post]),
        ("/api/shops/:shop/robot", Method::Get) => robot_status(&req),
        ("/api/shops/:shop/robot", Method::Post) => robot_start(&req),
        ("/api/shops/:shop/robot", Method::Delete) => robot_stop(&req),
        ("/api/shops/:shop/robot", _) => http::route_methods(&[Method::Get, Method::Post, Method::Delete]),
        ("/api/shops", Method::Get) => list_shops(&req),
        ("/api/shops", Method::Post) => create_shop(&req),
        ("/api/shops", _) => http::route_methods(&[Method::Get, Method::Post]),
        ("/healthz", Method::Get) => Ok(health()),
        ("/healthz", _) => http::route_methods(&[Method::Get]),
        _ => Ok(http::not_found()),
    });
    http::logged(&req, response, started)
}

fn shop_of(req: &Request) -> Result<ShopId, DomainError> {
    ShopId::parse(path_param(req, "shop").unwrap_or_default())
}

/// `GET /api/shops/:shop/config`: public.
fn get_config(req: &Request) -> Result<Response, DomainError> {
    let shop = shop_of(req)?;
    let kv = SpinKv::open_default()?;
    Ok(http::json(200, &load_shop(&kv, &shop)?))
}

/// Publishes the new public config to every stream (`ConfigService.ConfigChanged`).
fn config_changed(env: &Env, shop: &ShopId) -> Result<Response, DomainError> {
    let view = load_shop(&env.kv, shop)?;
    let new = NewEvent { kind: kind::CONFIG_CHANGED, order_id: None, customer_id: None, data: events::data(&view) };
    // The change is stored; a lost event must not turn it into an error.
    let _ = events::append(&env.kv, shop, env.now_ms, new);
    Ok(http::json(200, &view))
}

/// `PUT /api/shops/:shop/config` (admin): a partial update, every field checked.
fn put_config(req: &Request) -> Result<Response, DomainError> {
    let shop = shop_of(req)?;
    let update: ConfigUpdate = request::json_body(req)?;
    let env = Env::open()?;
    env.authorize(req, Role::Admin, Some(shop.as_str()))?;
    shop::change_config(&env.kv, &shop, &env.writer, |config| config.apply(&update))?;
    config_changed(&env, &shop)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MenuBody {
    menu: Vec<Drink>,
}

/// `PUT /api/shops/:shop/menu` (admin) `{menu}`: replaces the menu after validating it.
fn put_menu(req: &Request) -> Result<Response, DomainError> {
    let shop = shop_of(req)?;
    let body: MenuBody = request::json_body_up_to(req, spinpresso_adapter::http::MAX_MENU_BODY_BYTES)?;
    let env = Env::open()?;
    env.authorize(req, Role::Admin, Some(shop.as_str()))?;
    shop::replace_menu(&env.kv, &shop, &env.writer, body.menu)?;
    config_changed(&env, &shop)
}

/// `POST /api/shops/:shop/open|close` (barista: the tablet has the switch).
fn set_open(req: &Request, open: bool) -> Result<Response, DomainError> {
    let shop = shop_of(req)?;
    request::no_fields(req)?;
    let env = Env::open()?;
    env.authorize(req, Role::Barista, Some(shop.as_str()))?;
    shop::change_config(&env.kv, &shop, &env.writer, |config| Ok(ShopConfig { open, ..config.clone() }))?;
    config_changed(&env, &shop)
}

/// `GET /api/shops/:shop/robot` (admin): whether the robot runs, and its settings.
fn robot_status(req: &Request) -> Result<Response, DomainError> {
    let shop = shop_of(req)?;
    let env = Env::open()?;
    env.authorize(req, Role::Admin, Some(shop.as_str()))?;
    Ok(http::json(200, &robot::status(&env.kv, &shop)?))
}

/// `POST /api/shops/:shop/robot` (admin) `{ordersPerMinute, durationSeconds, baristaDelaySeconds?, cancelProbability?}`.
fn robot_start(req: &Request) -> Result<Response, DomainError> {
    let shop = shop_of(req)?;
    let settings: robot::RobotSettings = request::json_body(req)?;
    let env = Env::open()?;
    env.authorize(req, Role::Admin, Some(shop.as_str()))?;
    Ok(http::json(200, &robot::start(&env.ctx(), &shop, &settings)?))
}

/// `DELETE /api/shops/:shop/robot` (admin): no new robot orders; its open ones are still finished.
fn robot_stop(req: &Request) -> Result<Response, DomainError> {
    let shop = shop_of(req)?;
    let env = Env::open()?;
    env.authorize(req, Role::Admin, Some(shop.as_str()))?;
    Ok(http::json(200, &robot::stop(&env.ctx(), &shop)?))
}

/// `GET /api/shops` (admin): every shop with its name and whether it is open.
fn list_shops(req: &Request) -> Result<Response, DomainError> {
    let env = Env::open()?;
    env.authorize(req, Role::Admin, None)?;
    let mut shops = Vec::new();
    for id in shop::list_shops(&env.kv)? {
        let view = load_shop(&env.kv, &id)?;
        shops.push(serde_json::json!({ "shopId": id, "name": view.config.name, "open": view.config.open }));
    }
    Ok(http::json(200, &serde_json::json!({ "shops": shops })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewShop {
    shop_id: String,
    name: String,
}

/// `POST /api/shops` (admin) `{shopId, name}`: 201 with the new shop (closed, default menu).
fn create_shop(req: &Request) -> Result<Response, DomainError> {
    let body: NewShop = request::json_body(req)?;
    let shop = ShopId::parse(&body.shop_id)?;
    let env = Env::open()?;
    env.authorize(req, Role::Admin, None)?;
    let view = shop::create_shop(&env.kv, &shop, &body.name, &env.writer)?;
    Ok(http::json(201, &view))
}

/// Healthy means the key-value store answers.
fn health() -> Response {
    match SpinKv::open_default().and_then(|kv| kv.get("healthz")) {
        Ok(_) => http::json(200, &serde_json::json!({ "status": "ok" })),
        Err(e) => http::domain_error(&e.into()),
    }
}

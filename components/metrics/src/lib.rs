//! The `metrics` component: a shop's figures per business day (JSON, admin),
//! every shop's figures for Prometheus (`/metrics`), and a day's orders as CSV.

use spin_sdk::http::{Method, Response};
use spin_sdk::http_component;
use spinpresso_adapter::flows::Env;
use spinpresso_adapter::http::{self, component_route, path_param};
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::request;
use spinpresso_domain::auth::Role;
use spinpresso_domain::lifecycle;
use spinpresso_domain::metrics;
use spinpresso_domain::order::Order;
use spinpresso_domain::shop::{list_shops, load_shop, ShopId};
use spinpresso_domain::text::spreadsheet_safe;
use spinpresso_domain::time::{self, rfc3339};
use spinpresso_domain::DomainError;

#[http_component]
fn handle(req: Request) -> Response {
    let started = spinpresso_adapter::request::now_ms();
    let response = http::respond(match (component_route(&req), req.method()) {
        ("/api/shops/:shop/metrics", Method::Get) => day_metrics(&req),
        ("/api/shops/:shop/orders.csv", Method::Get) => orders_csv(&req),
        ("/metrics", Method::Get) => prometheus(&req),
        ("/api/shops/:shop/metrics" | "/api/shops/:shop/orders.csv" | "/metrics", _) => {
            http::route_methods(&[Method::Get])
        }
        _ => Ok(http::not_found()),
    });
    http::logged(&req, response, started)
}

/// The `day` query parameter, checked; default: the shop's current business day.
fn day_of(req: &Request, env: &Env, shop: &ShopId) -> Result<String, DomainError> {
    load_shop(&env.kv, shop)?; // an unknown shop is 404, whichever day is asked for
    match request::query_param(req, "day") {
        Some(day) => time::parse_day(&day),
        None => lifecycle::current_day(&env.ctx(), shop),
    }
}

/// `GET /api/shops/:shop/metrics?day=YYYY-MM-DD` (admin).
fn day_metrics(req: &Request) -> Result<Response, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    let env = Env::open()?;
    env.authorize(req, Role::Admin, Some(shop.as_str()))?;
    let day = day_of(req, &env, &shop)?;
    let figures = metrics::day_metrics(&env.kv, &shop, &day)?;
    Ok(http::json(200, &metrics::view(&shop, &day, &figures)))
}

/// `GET /metrics`: Prometheus text for every shop's current day. Scrapers
/// authenticate with the `metrics_token` (a read-only machine credential) or an admin token.
fn prometheus(req: &Request) -> Result<Response, DomainError> {
    let env = Env::open()?;
    if !request::bearer_is(req, env.secrets.metrics_token().as_deref()) {
        env.authorize(req, Role::Admin, None)?;
    }
    let mut shops = Vec::new();
    for shop in list_shops(&env.kv)? {
        let day = lifecycle::current_day(&env.ctx(), &shop)?;
        let figures = metrics::day_metrics(&env.kv, &shop, &day)?;
        let open = lifecycle::open_count(&env.ctx(), &shop)?;
        shops.push((shop, figures, open));
    }
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .header("cache-control", "no-store")
        .body(metrics::prometheus(&shops))
        .build())
}

/// `GET /api/shops/:shop/orders.csv?day=YYYY-MM-DD` (admin): one row per order.
fn orders_csv(req: &Request) -> Result<Response, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    let env = Env::open()?;
    env.authorize(req, Role::Admin, Some(shop.as_str()))?;
    let day = day_of(req, &env, &shop)?;
    let orders = lifecycle::day_orders(&env.ctx(), &shop, &day)?;
    // Writing to memory fails only on a bug; the details are logged, not sent.
    let body = to_csv(&orders).map_err(|e| {
        eprintln!("orders.csv of shop {shop}: {e}");
        DomainError::invalid("csv", "the export could not be written")
    })?;
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/csv; charset=utf-8")
        .header("content-disposition", format!("attachment; filename=\"spinpresso-{shop}-{day}.csv\""))
        .header("cache-control", "no-store")
        .body(body)
        .build())
}

const COLUMNS: [&str; 14] = [
    "number",
    "id",
    "state",
    "drink",
    "options",
    "displayName",
    "createdAt",
    "submittedAt",
    "claimedAt",
    "finishedAt",
    "baristaId",
    "cancelledBy",
    "timeoutCause",
    "robot",
];

fn to_csv(orders: &[Order]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(COLUMNS)?;
    let text = |v: Option<String>| v.unwrap_or_default();
    for o in orders {
        let options =
            o.drink.as_ref().map(|d| d.options.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join("; "));
        let row = [
            text(o.number.map(|n| n.to_string())),
            o.id.clone(),
            o.state.as_str().to_string(),
            text(o.drink.as_ref().map(|d| d.name.clone())),
            text(options),
            text(o.display_name.clone()),
            rfc3339(o.created_ms),
            text(o.submitted_ms.map(rfc3339)),
            text(o.claimed_ms.map(rfc3339)),
            text(o.finished_ms.map(rfc3339)),
            text(o.barista_id.clone()),
            text(o.cancelled_by.map(|c| format!("{c:?}").to_lowercase())),
            text(o.timeout_cause.map(|c| format!("{c:?}").to_lowercase())),
            o.robot.to_string(),
        ];
        // Names come from customers and admins: a spreadsheet must show them, not run them.
        writer.write_record(row.iter().map(|cell| spreadsheet_safe(cell).into_owned()))?;
    }
    writer.into_inner().map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

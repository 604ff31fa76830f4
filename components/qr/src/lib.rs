//! The `qr` component: the shop's current code, for displays only (never
//! public, so nobody can order without standing in front of the screen).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use spin_sdk::http::{Method, Response};
use spin_sdk::http_component;
use spinpresso_adapter::flows::Env;
use spinpresso_adapter::http::{self, component_route, path_param};
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::request;
use spinpresso_domain::auth::Role;
use spinpresso_domain::qr::{self, CodeView};
use spinpresso_domain::shop::{load_shop, ShopId};
use spinpresso_domain::time::rfc3339;
use spinpresso_domain::DomainError;

#[http_component]
fn handle(req: Request) -> Response {
    let started = spinpresso_adapter::request::now_ms();
    let response = http::respond(match (component_route(&req), req.method()) {
        ("/api/shops/:shop/qr", Method::Get) => current_code(&req).map(|code| http::json(200, &code)),
        ("/api/shops/:shop/qr.svg", Method::Get) => current_code(&req).map(|code| svg_response(&code.url)),
        ("/api/shops/:shop/qr" | "/api/shops/:shop/qr.svg", _) => http::route_methods(&[Method::Get]),
        _ => Ok(http::not_found()),
    });
    http::logged(&req, response, started)
}

fn current_code(req: &Request) -> Result<CodeView, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    let env = Env::open()?;
    env.authorize(req, Role::Display, Some(shop.as_str()))?;
    let (kv, secrets, now) = (&env.kv, &env.secrets, env.now_ms);
    let config = load_shop(kv, &shop)?.config;
    let slot = qr::slot_at(now / 1000, config.code_rotation_seconds);
    let code = qr::code_for(&secrets.signing_key, &shop, slot);
    Ok(CodeView {
        url: qr::order_url(&request::base_url(req, secrets), &shop, &code),
        code,
        slot,
        slot_ends_at: rfc3339(qr::slot_ends_at(slot, config.code_rotation_seconds) * 1000),
        tokens_left: qr::tokens_left(kv, &shop, slot, config.drinks_per_code)?,
        drinks_per_code: config.drinks_per_code,
    })
}

fn svg_response(url: &str) -> Response {
    match QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M) {
        Ok(code) => {
            let image = code.render::<svg::Color>().min_dimensions(256, 256).quiet_zone(true).build();
            Response::builder()
                .status(200)
                .header("content-type", "image/svg+xml")
                .header("cache-control", "no-store")
                .body(image)
                .build()
        }
        Err(e) => http::error(400, "code_too_long", &format!("the order URL cannot be encoded: {e}")),
    }
}

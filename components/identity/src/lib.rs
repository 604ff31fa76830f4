//! The `identity` component: anonymous customer sessions and staff sign-in.

use serde::Deserialize;
use spin_sdk::http::{Method, Response};
use spin_sdk::http_component;
use spinpresso_adapter::http::{self, component_route};
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::kv::SpinKv;
use spinpresso_adapter::request::{self, Secrets, CUSTOMER_COOKIE, STAFF_COOKIE};
use spinpresso_domain::auth::{self, CUSTOMER_TOKEN_SECONDS, STAFF_TOKEN_SECONDS};
use spinpresso_domain::time::rfc3339;
use spinpresso_domain::DomainError;

#[http_component]
fn handle(req: Request) -> Response {
    let started = spinpresso_adapter::request::now_ms();
    let response = http::respond(match (component_route(&req), req.method()) {
        ("/api/session", Method::Post) => start_session(&req),
        ("/api/session", _) => http::route_methods(&[Method::Post]),
        ("/api/staff/login", Method::Post) => staff_login(&req),
        ("/api/staff/login", _) => http::route_methods(&[Method::Post]),
        _ => Ok(http::not_found()),
    });
    http::logged(&req, response, started)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// `POST /api/session`: a new anonymous customer (or the same one, when a valid session is sent).
fn start_session(req: &Request) -> Result<Response, DomainError> {
    let _: NoFields = request::json_body(req)?;
    let secrets = Secrets::load();
    let now = request::now_ms();
    let claims = match request::caller(req, &secrets, auth::Role::Customer, now) {
        Some(existing) if existing.role == auth::Role::Customer => existing,
        _ => auth::new_customer(request::random_bytes(), now / 1000),
    };
    let token = auth::sign(&claims, &secrets.signing_key);
    let mut response = http::json(
        200,
        &serde_json::json!({ "token": token, "customerId": claims.sub, "expiresAt": rfc3339(claims.exp * 1000) }),
    );
    response.set_header("set-cookie", request::token_cookie(req, CUSTOMER_COOKIE, &token, CUSTOMER_TOKEN_SECONDS));
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    pin: String,
}

/// `POST /api/staff/login` `{pin}`: the role whose PIN matches; 5 wrong PINs a minute, then 429.
fn staff_login(req: &Request) -> Result<Response, DomainError> {
    let login: Login = request::json_body(req)?;
    let secrets = Secrets::load();
    secrets.warn_if_dev();
    let now = request::now_ms();
    let kv = SpinKv::open_default()?;
    let suffix: String = request::random_bytes::<3>().iter().map(|b| format!("{b:02x}")).collect();
    let (role, claims) =
        auth::staff_login(&kv, &secrets.pins(), &login.pin, &request::client_addr(req), now / 1000, &suffix)?;
    let token = auth::sign(&claims, &secrets.signing_key);
    let mut response = http::json(
        200,
        &serde_json::json!({
            "token": token,
            "role": role,
            "staffId": claims.sub,
            "expiresAt": rfc3339(claims.exp * 1000),
        }),
    );
    response.set_header("set-cookie", request::token_cookie(req, STAFF_COOKIE, &token, STAFF_TOKEN_SECONDS));
    Ok(response)
}

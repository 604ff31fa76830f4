//! The `identity` component: anonymous customer sessions, staff sign-in and sign-out.

use serde::Deserialize;
use spin_sdk::http::{Method, Response};
use spin_sdk::http_component;
use spinpresso_adapter::http::{self, component_route};
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::kv::SpinKv;
use spinpresso_adapter::request::{self, Secrets, CUSTOMER_COOKIE, STAFF_COOKIE};
use spinpresso_domain::auth::{self, Role, SignIn, CUSTOMER_TOKEN_SECONDS, STAFF_TOKEN_SECONDS};
use spinpresso_domain::shop::ShopId;
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
        ("/api/staff/logout", Method::Post) => staff_logout(&req),
        ("/api/staff/logout", _) => http::route_methods(&[Method::Post]),
        _ => Ok(http::not_found()),
    });
    http::logged(&req, response, started)
}

/// A response that sets (or clears) a cookie, and asks for https only when served over it.
fn with_cookie(req: &Request, secrets: &Secrets, mut response: Response, cookie: String) -> Response {
    response.set_header("set-cookie", cookie);
    http::strict_transport(&mut response, request::is_https(req, secrets));
    response
}

/// `POST /api/session`: a new anonymous customer (or the same one, when a valid session is sent).
fn start_session(req: &Request) -> Result<Response, DomainError> {
    request::no_fields(req)?;
    let secrets = Secrets::load()?;
    let now = request::now_ms();
    let claims = match request::caller(req, &secrets, Role::Customer, now) {
        Some(existing) if existing.role == Role::Customer => existing,
        _ => auth::new_customer(request::random_bytes(), now / 1000),
    };
    let token = auth::sign(&claims, &secrets.signing_key);
    let response = http::json(
        200,
        &serde_json::json!({ "token": token, "customerId": claims.sub, "expiresAt": rfc3339(claims.exp * 1000) }),
    );
    let cookie = request::token_cookie(req, &secrets, CUSTOMER_COOKIE, &token, CUSTOMER_TOKEN_SECONDS);
    Ok(with_cookie(req, &secrets, response, cookie))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    pin: String,
    /// The role the app signs in for (its PIN or a higher role's is accepted).
    #[serde(default)]
    role: Option<Role>,
    /// Limit the token to this shop.
    #[serde(default)]
    shop: Option<String>,
}

/// `POST /api/staff/login` `{pin, role?, shop?}`: a token for the role whose
/// PIN matches; wrong PINs are limited per address and per role (429).
fn staff_login(req: &Request) -> Result<Response, DomainError> {
    let login: Login = request::json_body(req)?;
    let shop = login.shop.as_deref().map(ShopId::parse).transpose()?;
    let secrets = Secrets::load()?;
    let now = request::now_ms();
    let kv = SpinKv::open_default()?;
    let client = request::client_addr(req);
    let attempt = SignIn { pin: &login.pin, role: login.role, shop, client: &client };
    let (role, claims) = auth::staff_login(&kv, &secrets.pins(), &attempt, now / 1000, request::random_bytes())?;
    let token = auth::sign(&claims, &secrets.signing_key);
    let response = http::json(
        200,
        &serde_json::json!({
            "token": token,
            "role": role,
            "staffId": claims.sub,
            "shop": claims.shop,
            "expiresAt": rfc3339(claims.exp * 1000),
        }),
    );
    let cookie = request::token_cookie(req, &secrets, STAFF_COOKIE, &token, STAFF_TOKEN_SECONDS);
    Ok(with_cookie(req, &secrets, response, cookie))
}

/// `POST /api/staff/logout`: the staff token sent (bearer or cookie) is
/// revoked for good and the cookie cleared. Signing out twice, or without a
/// valid token, is no error: the caller is signed out either way.
fn staff_logout(req: &Request) -> Result<Response, DomainError> {
    request::no_fields(req)?;
    let secrets = Secrets::load()?;
    let now = request::now_ms();
    let signed_out = match request::caller(req, &secrets, Role::Barista, now).filter(|c| c.role.is_staff()) {
        Some(claims) => {
            auth::sign_out(&SpinKv::open_default()?, &claims)?;
            true
        }
        None => false,
    };
    let response = http::json(200, &serde_json::json!({ "signedOut": signed_out }));
    let cleared = request::token_cookie(req, &secrets, STAFF_COOKIE, "", 0);
    Ok(with_cookie(req, &secrets, response, cleared))
}

//! What every handler needs from a request and its surroundings: the time,
//! randomness, the secrets, the caller's identity, and a checked JSON body.

use crate::body;
use crate::incoming::Request;
use serde::de::DeserializeOwned;
use spin_sdk::http::Method;
use spinpresso_domain::auth::{self, Claims, Role, StaffPins};
use spinpresso_domain::kv::KeyValue;
use spinpresso_domain::sign_in_limits;
use spinpresso_domain::DomainError;

use crate::http::MAX_BODY_BYTES;

/// Cookie of a customer's session token.
pub const CUSTOMER_COOKIE: &str = "sp_session";
/// Cookie of a staff member's token.
pub const STAFF_COOKIE: &str = "sp_staff";

pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since_epoch.as_millis() as i64
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // WASI random does not fail on a working host; without it ids would be
    // guessable, so stopping (a 500 for this one request) is the safe answer.
    getrandom::fill(&mut bytes).expect("the host provides randomness");
    bytes
}

/// A fresh id for this request: marks its writes in the store.
pub fn request_id() -> String {
    data_encoding::HEXLOWER.encode(&random_bytes::<8>())
}

/// The secrets and settings from Spin variables. None has a fallback: an
/// unset or empty secret disables what it guards (fail closed).
/// Each variable is a host call: a request reads only the ones it uses (the
/// signing key nearly always, the others on the few routes that need them).
pub struct Secrets {
    pub signing_key: Vec<u8>,
}

/// A variable's value, trimmed; `None` when unset, empty or not this component's.
fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Shortest machine token (sweeper, metrics scraper) accepted.
const MIN_TOKEN_CHARS: usize = 16;

/// A machine token, if one long enough is configured.
fn machine_token(name: &str) -> Option<String> {
    let token = variable(name)?;
    if token.len() < MIN_TOKEN_CHARS {
        eprintln!("`{name}` is ignored: it must be at least {MIN_TOKEN_CHARS} characters");
        return None;
    }
    Some(token)
}

fn not_configured(what: &str) -> DomainError {
    DomainError::refused("not_configured", 503, format!("this deployment is not set up yet: {what}"))
}

impl Secrets {
    /// The signing key, or `not_configured` (503) when it is unset or too
    /// short to be a secret: nothing is then signed or trusted.
    pub fn load() -> Result<Self, DomainError> {
        match variable("signing_key") {
            Some(key) if key.len() >= auth::MIN_SIGNING_KEY_BYTES => Ok(Self { signing_key: key.into_bytes() }),
            Some(_) => {
                eprintln!("`signing_key` is too short: it must be at least {} bytes", auth::MIN_SIGNING_KEY_BYTES);
                Err(not_configured("the signing key is too short"))
            }
            None => {
                eprintln!("`signing_key` is not set: sessions, sign-ins and QR codes are off until it is");
                Err(not_configured("the signing key is not set"))
            }
        }
    }

    /// No secrets: for flows that never sign or check (tokens never verify
    /// against an empty key).
    pub fn none() -> Self {
        Self { signing_key: Vec::new() }
    }

    /// The staff PINs; an unset one turns its role's sign-in off, an
    /// unusable or shared one too (logged).
    pub fn pins(&self) -> StaffPins {
        let value = |name: &str| variable(name).unwrap_or_default();
        let (pins, problems) = StaffPins::configured(&value("admin_pin"), &value("barista_pin"), &value("display_pin"));
        for problem in problems {
            eprintln!("{problem}");
        }
        pins
    }

    /// The sweeper's bearer token; without one, nothing may sweep.
    pub fn sweeper_token(&self) -> Option<String> {
        machine_token("sweeper_token")
    }

    /// The Prometheus scraper's bearer token; without one, only admins read `/metrics`.
    pub fn metrics_token(&self) -> Option<String> {
        machine_token("metrics_token")
    }

    pub fn public_base_url(&self) -> Option<String> {
        variable("public_base_url")
    }
}

/// Whether the bearer token of `req` is the machine token `expected`
/// (compared in constant time; no token configured matches nothing).
pub fn bearer_is(req: &Request, expected: Option<&str>) -> bool {
    let sent = bearer(req).unwrap_or_default();
    expected.is_some_and(|expected| auth::constant_time_eq(sent.as_bytes(), expected.as_bytes()))
}

fn bearer(req: &Request) -> Option<&str> {
    header(req, "authorization").and_then(|h| h.strip_prefix("Bearer ")).map(str::trim)
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name)
}

/// The client's address: the one Spin reports, or, when the operator names
/// the header its reverse proxy sets (`client_ip_header`, e.g.
/// `x-forwarded-for`), the address the proxy added to it last. Behind a
/// proxy every connection comes from the proxy, so without this all clients
/// would share one sign-in limit.
pub fn client_addr(req: &Request) -> String {
    let forwarded = variable("client_ip_header")
        .and_then(|name| header(req, &name.to_ascii_lowercase()).and_then(sign_in_limits::last_forwarded));
    forwarded.unwrap_or_else(|| header(req, "spin-client-addr").unwrap_or("unknown").to_string())
}

fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    header(req, "cookie")?.split(';').filter_map(|c| c.trim().split_once('=')).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// The caller's verified claims: a bearer token, else the cookie for the role
/// wanted. An invalid or expired token counts as none (401, then sign in again).
pub fn caller(req: &Request, secrets: &Secrets, wanted: Role, now_ms: i64) -> Option<Claims> {
    let from_cookie = || cookie(req, if wanted == Role::Customer { CUSTOMER_COOKIE } else { STAFF_COOKIE });
    let token = bearer(req).or_else(from_cookie)?;
    auth::verify(token, &secrets.signing_key, now_ms / 1000).ok()
}

/// Checks the caller has `role` (for `shop`, when the route names one) and,
/// for staff, has not signed out.
pub fn authorize(
    req: &Request,
    secrets: &Secrets,
    kv: &impl KeyValue,
    role: Role,
    shop: Option<&str>,
    now_ms: i64,
) -> Result<Claims, DomainError> {
    let claims = caller(req, secrets, role, now_ms);
    // A signed-out token is 401 on every route, before its role is weighed (403).
    if let Some(c) = claims.as_ref().filter(|c| c.role.is_staff()) {
        auth::check_signed_in(kv, c)?;
    }
    auth::require(claims.as_ref(), role, shop)?;
    Ok(claims.expect("require checked it"))
}

/// The caller as either a customer or a barista or admin (routes on one
/// order: its owner or the staff who make it; displays read no orders).
pub fn customer_or_staff(
    req: &Request,
    secrets: &Secrets,
    kv: &impl KeyValue,
    shop: Option<&str>,
    now_ms: i64,
) -> Result<Claims, DomainError> {
    match caller(req, secrets, Role::Barista, now_ms).filter(|c| c.role.is_staff()) {
        Some(_) => authorize(req, secrets, kv, Role::Barista, shop, now_ms),
        None => caller(req, secrets, Role::Customer, now_ms).ok_or_else(|| DomainError::Unauthorized {
            code: "unauthenticated",
            message: "start a session (POST /api/session) or sign in as staff".into(),
        }),
    }
}

/// Whether the app is served over https (`public_base_url`, else the request's URL):
/// cookies are then `Secure` and browsers are told to stay on https (HSTS).
pub fn is_https(req: &Request, secrets: &Secrets) -> bool {
    base_url(req, secrets).starts_with("https://")
}

/// A `Set-Cookie` value for a token: HttpOnly, SameSite=Strict, Secure over https.
pub fn token_cookie(req: &Request, secrets: &Secrets, name: &str, token: &str, max_age_s: i64) -> String {
    format!(
        "{name}={token}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{}",
        if is_https(req, secrets) { "; Secure" } else { "" }
    )
}

/// Mutations must say they send JSON: it blocks cross-site form posts.
pub fn require_json(req: &Request) -> Result<(), DomainError> {
    require_json_up_to(req, MAX_BODY_BYTES)
}

fn require_json_up_to(req: &Request, max_bytes: usize) -> Result<(), DomainError> {
    body::check_json(header(req, "content-type"), req.body().len(), max_bytes)
}

/// The JSON body of a mutation (see [`body::parse_object`]).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, DomainError> {
    json_body_up_to(req, MAX_BODY_BYTES)
}

/// [`json_body`] with a body limit of its own (a menu's).
pub fn json_body_up_to<T: DeserializeOwned>(req: &Request, max_bytes: usize) -> Result<T, DomainError> {
    require_json_up_to(req, max_bytes)?;
    body::parse_object(req.body())
}

/// A mutation that takes no fields: an empty body or `{}`, still sent as
/// `Content-Type: application/json` (which a cross-site form cannot send).
pub fn no_fields(req: &Request) -> Result<(), DomainError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoFields {}
    json_body::<NoFields>(req).map(|_: NoFields| ())
}

/// A query-string parameter, percent-decoded.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query()
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| percent_encoding::percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned())
}

pub fn is_mutation(method: &Method) -> bool {
    matches!(method, Method::Post | Method::Put | Method::Patch | Method::Delete)
}

/// Where the app is reachable: the `public_base_url` variable, else the
/// scheme and host this request came in on.
pub fn base_url(req: &Request, secrets: &Secrets) -> String {
    if let Some(base) = secrets.public_base_url() {
        return base.trim_end_matches('/').to_string();
    }
    let full = header(req, "spin-full-url").unwrap_or("http://localhost/");
    let after_scheme = full.find("://").map(|i| i + 3).unwrap_or(0);
    let end = full[after_scheme..].find('/').map(|i| i + after_scheme).unwrap_or(full.len());
    full[..end].to_string()
}

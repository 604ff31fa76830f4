//! What every handler needs from a request and its surroundings: the time,
//! randomness, the secrets, the caller's identity, and a checked JSON body.

use crate::incoming::Request;
use serde::de::DeserializeOwned;
use spin_sdk::http::Method;
use spinpresso_domain::auth::{self, Claims, Role, StaffPins};
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

/// The secrets and settings from Spin variables, with development fallbacks.
/// Each variable is a host call: a request reads only the ones it uses (the
/// signing key nearly always, the others on the few routes that need them).
pub struct Secrets {
    pub signing_key: Vec<u8>,
}

/// A variable's value; `Err(())` when this component does not have the variable at all.
fn variable(name: &str) -> Result<Option<String>, ()> {
    match spin_sdk::variables::get(name) {
        Ok(value) => Ok(Some(value.trim().to_string()).filter(|v| !v.is_empty())),
        Err(spin_sdk::variables::Error::Undefined(_)) => Err(()),
        Err(_) => Ok(None),
    }
}

/// A secret's variable name and its development default.
type SecretName = (&'static str, &'static str);

const SIGNING_KEY: SecretName = ("signing_key", auth::DEV_SIGNING_KEY);
const ADMIN_PIN: SecretName = ("admin_pin", auth::DEV_ADMIN_PIN);
const BARISTA_PIN: SecretName = ("barista_pin", auth::DEV_BARISTA_PIN);
const DISPLAY_PIN: SecretName = ("display_pin", auth::DEV_DISPLAY_PIN);
const SWEEPER_TOKEN: SecretName = ("sweeper_token", "dev-sweeper-token");

/// A secret's value, and whether it is the development default.
fn secret((name, dev): SecretName) -> (String, bool) {
    match variable(name) {
        Ok(Some(value)) if value != dev => (value, false),
        Ok(_) => (dev.to_string(), true),
        // Not this component's secret: the fallback is never used for anything.
        Err(()) => (dev.to_string(), false),
    }
}

impl Secrets {
    pub fn load() -> Self {
        Self { signing_key: secret(SIGNING_KEY).0.into_bytes() }
    }

    /// No secrets: for flows that never sign or check (an empty key signs
    /// nothing anyone else could check).
    pub fn none() -> Self {
        Self { signing_key: Vec::new() }
    }

    pub fn pins(&self) -> StaffPins {
        StaffPins { admin: secret(ADMIN_PIN).0, barista: secret(BARISTA_PIN).0, display: secret(DISPLAY_PIN).0 }
    }

    pub fn sweeper_token(&self) -> String {
        secret(SWEEPER_TOKEN).0
    }

    pub fn public_base_url(&self) -> Option<String> {
        variable("public_base_url").ok().flatten()
    }

    /// Logs that development values are in use (staff sign-in calls it; it reads every secret).
    pub fn warn_if_dev(&self) {
        let all = [SIGNING_KEY, ADMIN_PIN, BARISTA_PIN, DISPLAY_PIN, SWEEPER_TOKEN];
        let dev: Vec<&str> = all.into_iter().filter(|&s| secret(s).1).map(|(name, _)| name).collect();
        if !dev.is_empty() {
            eprintln!(
                "WARNING: development defaults in use for {}; set the Spin variables for any real event",
                dev.join(", ")
            );
        }
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name)
}

/// The client's address as Spin reports it.
pub fn client_addr(req: &Request) -> String {
    header(req, "spin-client-addr").unwrap_or("unknown").to_string()
}

fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    header(req, "cookie")?.split(';').filter_map(|c| c.trim().split_once('=')).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// The caller's verified claims: a bearer token, else the cookie for the role
/// wanted. An invalid or expired token counts as none (401, then sign in again).
pub fn caller(req: &Request, secrets: &Secrets, wanted: Role, now_ms: i64) -> Option<Claims> {
    let bearer = header(req, "authorization").and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
    let from_cookie = || cookie(req, if wanted == Role::Customer { CUSTOMER_COOKIE } else { STAFF_COOKIE });
    let token = bearer.or_else(from_cookie)?;
    auth::verify(token, &secrets.signing_key, now_ms / 1000).ok()
}

/// Checks the caller has `role` (for `shop`, when the route names one).
pub fn authorize(
    req: &Request,
    secrets: &Secrets,
    role: Role,
    shop: Option<&str>,
    now_ms: i64,
) -> Result<Claims, DomainError> {
    let claims = caller(req, secrets, role, now_ms);
    auth::require(claims.as_ref(), role, shop)?;
    Ok(claims.expect("require checked it"))
}

/// The caller as either a customer or staff member (routes both may use).
pub fn customer_or_staff(req: &Request, secrets: &Secrets, now_ms: i64) -> Result<Claims, DomainError> {
    caller(req, secrets, Role::Barista, now_ms)
        .filter(|c| c.role.is_staff())
        .or_else(|| caller(req, secrets, Role::Customer, now_ms))
        .ok_or_else(|| DomainError::Unauthorized {
            code: "unauthenticated",
            message: "start a session (POST /api/session) or sign in as staff".into(),
        })
}

/// A `Set-Cookie` value for a token: HttpOnly, SameSite=Strict, Secure over https.
pub fn token_cookie(req: &Request, name: &str, token: &str, max_age_s: i64) -> String {
    let secure = header(req, "spin-full-url").is_some_and(|u| u.starts_with("https://"));
    format!(
        "{name}={token}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Mutations must say they send JSON: it blocks cross-site form posts.
pub fn require_json(req: &Request) -> Result<(), DomainError> {
    let content_type = header(req, "content-type").unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(DomainError::refused(
            "unsupported_media_type",
            415,
            "send the request body as JSON with `Content-Type: application/json`",
        ));
    }
    if req.body().len() > MAX_BODY_BYTES {
        return Err(DomainError::refused(
            "payload_too_large",
            413,
            format!("request bodies are limited to {} KiB", MAX_BODY_BYTES / 1024),
        ));
    }
    Ok(())
}

/// The JSON body of a mutation (an empty body reads as `{}`); unknown fields are refused
/// by the target type.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, DomainError> {
    require_json(req)?;
    let body = if req.body().iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { req.body() };
    serde_json::from_slice(body)
        .map_err(|e| DomainError::invalid("invalid_json", format!("the request body is not valid: {e}")))
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

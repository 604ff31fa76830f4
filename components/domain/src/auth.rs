//! Identities: signed tokens for anonymous customers and PIN-signed-in staff.
//!
//! A token is `base64url(json claims) "." base64url(HMAC-SHA256(signing_key, payload))`.
//! Roles nest: admin ⊃ barista ⊃ display; customers are a separate kind.
//!
//! Keys owned here:
//! - `auth/fail/{client}/{minute}` counter: wrong PINs from one client in one minute

use crate::error::DomainError;
use crate::kv::KeyValue;
use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const CUSTOMER_TOKEN_SECONDS: i64 = 90 * 24 * 3600;
pub const STAFF_TOKEN_SECONDS: i64 = 12 * 3600;
/// Wrong PINs allowed per client per minute before sign-in answers 429.
pub const MAX_PIN_FAILURES_PER_MINUTE: i64 = 5;

/// Values used only when no secret is configured; components warn when they are in use.
pub const DEV_SIGNING_KEY: &str = "dev-signing-key-change-me";
pub const DEV_ADMIN_PIN: &str = "9999";
pub const DEV_BARISTA_PIN: &str = "1234";
pub const DEV_DISPLAY_PIN: &str = "0000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Display,
    Barista,
    Admin,
}

impl Role {
    pub fn is_staff(self) -> bool {
        self != Role::Customer
    }

    /// Whether a holder of `self` may act as `needed` (admin ⊃ barista ⊃ display).
    pub fn grants(self, needed: Role) -> bool {
        match needed {
            Role::Customer => self == Role::Customer,
            staff => self.is_staff() && self >= staff,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Display => "display",
            Role::Barista => "barista",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub role: Role,
    /// Customer id, or a staff member's id (`barista-3f2a…`), unique per sign-in.
    pub sub: String,
    /// The shop a token is limited to; `None` = every shop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
}

pub fn sign(claims: &Claims, key: &[u8]) -> String {
    let payload = BASE64URL_NOPAD.encode(&crate::kv::to_json(claims));
    let signature = BASE64URL_NOPAD.encode(&mac(key, payload.as_bytes()));
    format!("{payload}.{signature}")
}

pub fn verify(token: &str, key: &[u8], now_secs: i64) -> Result<Claims, TokenError> {
    let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let signature = BASE64URL_NOPAD.decode(signature.as_bytes()).map_err(|_| TokenError::Malformed)?;
    let mut check = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    check.update(payload.as_bytes());
    check.verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;
    let json = BASE64URL_NOPAD.decode(payload.as_bytes()).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.exp <= now_secs {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA256 of `parts` joined by NUL bytes: used for QR codes and order ids.
pub fn keyed_digest(key: &[u8], parts: &[&str]) -> Vec<u8> {
    mac(key, parts.join("\0").as_bytes())
}

/// Compares secrets in constant time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// The configured PINs of the staff roles.
#[derive(Debug, Clone)]
pub struct StaffPins {
    pub admin: String,
    pub barista: String,
    pub display: String,
}

/// The role whose PIN matches, highest first. Every comparison runs, in
/// constant time, so timing tells nothing about which PIN was close.
pub fn role_for_pin(pins: &StaffPins, pin: &str) -> Option<Role> {
    let matches =
        |expected: &str| -> bool { !expected.is_empty() && bool::from(pin.as_bytes().ct_eq(expected.as_bytes())) };
    let (admin, barista, display) = (matches(&pins.admin), matches(&pins.barista), matches(&pins.display));
    if admin {
        Some(Role::Admin)
    } else if barista {
        Some(Role::Barista)
    } else if display {
        Some(Role::Display)
    } else {
        None
    }
}

/// A staff sign-in attempt: the PIN is checked only while the client is under
/// its failure budget; each wrong PIN spends one `increment` of that budget.
pub fn staff_login(
    kv: &impl KeyValue,
    pins: &StaffPins,
    pin: &str,
    client: &str,
    now_secs: i64,
    staff_id_suffix: &str,
) -> Result<(Role, Claims), DomainError> {
    let failures_key = format!("auth/fail/{}/{}", sanitize_client(client), now_secs / 60);
    if kv.counter(&failures_key)? >= MAX_PIN_FAILURES_PER_MINUTE {
        return Err(too_many_tries());
    }
    match role_for_pin(pins, pin) {
        Some(role) => Ok((
            role,
            Claims {
                role,
                sub: format!("{}-{staff_id_suffix}", role.as_str()),
                shop: None,
                exp: now_secs + STAFF_TOKEN_SECONDS,
            },
        )),
        None => {
            let failures = kv.increment(&failures_key, 1)?;
            if failures > MAX_PIN_FAILURES_PER_MINUTE {
                Err(too_many_tries())
            } else {
                Err(DomainError::Unauthorized { code: "wrong_pin", message: "that PIN is not valid".into() })
            }
        }
    }
}

fn too_many_tries() -> DomainError {
    DomainError::TooManyRequests {
        code: "too_many_attempts",
        message: format!("more than {MAX_PIN_FAILURES_PER_MINUTE} wrong PINs in a minute: wait a minute and try again"),
    }
}

/// Client addresses become key segments: keep them short and separator-free.
fn sanitize_client(client: &str) -> String {
    // The port changes per connection; the address is the client.
    let host = client.rsplit_once(':').map(|(h, _)| h).unwrap_or(client);
    host.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']')).take(64).collect()
}

/// A new anonymous customer: a random id from 16 random bytes.
pub fn new_customer(random: [u8; 16], now_secs: i64) -> Claims {
    Claims {
        role: Role::Customer,
        sub: format!("c-{}", data_encoding::BASE32_NOPAD.encode(&random).to_ascii_lowercase()),
        shop: None,
        exp: now_secs + CUSTOMER_TOKEN_SECONDS,
    }
}

/// What a route needs from the caller.
pub fn require(claims: Option<&Claims>, needed: Role, shop: Option<&str>) -> Result<(), DomainError> {
    let Some(claims) = claims else {
        return Err(DomainError::Unauthorized {
            code: "unauthenticated",
            message: match needed {
                Role::Customer => "start a session first (POST /api/session)".into(),
                _ => "sign in with a staff PIN first (POST /api/staff/login)".into(),
            },
        });
    };
    if !claims.role.grants(needed) {
        return Err(DomainError::Forbidden {
            code: "forbidden",
            message: format!("this needs the {} role; you are signed in as {}", needed.as_str(), claims.role.as_str()),
        });
    }
    if let (Some(limited), Some(shop)) = (&claims.shop, shop) {
        if limited != shop {
            return Err(DomainError::Forbidden {
                code: "forbidden",
                message: format!("this token is for shop `{limited}`"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    const KEY: &[u8] = b"test-key";

    fn pins() -> StaffPins {
        StaffPins { admin: "9999".into(), barista: "1234".into(), display: "0000".into() }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let claims = new_customer([7; 16], 1_000);
        let token = sign(&claims, KEY);
        assert_eq!(verify(&token, KEY, 1_001).unwrap(), claims);
        assert_eq!(verify(&token, KEY, 1_000 + CUSTOMER_TOKEN_SECONDS), Err(TokenError::Expired));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let token = sign(&new_customer([1; 16], 0), KEY);
        assert_eq!(verify(&token, b"other-key", 1), Err(TokenError::BadSignature));
        let (payload, signature) = token.split_once('.').unwrap();
        let admin = BASE64URL_NOPAD.encode(br#"{"role":"admin","sub":"x","exp":99999999999}"#);
        assert_eq!(verify(&format!("{admin}.{signature}"), KEY, 1), Err(TokenError::BadSignature));
        assert_eq!(verify(payload, KEY, 1), Err(TokenError::Malformed));
        assert_eq!(verify("a.b!", KEY, 1), Err(TokenError::Malformed));
    }

    #[test]
    fn roles_nest_admin_over_barista_over_display_and_customers_apart() {
        use Role::*;
        let table = [
            (Admin, Barista, true),
            (Admin, Display, true),
            (Barista, Display, true),
            (Barista, Admin, false),
            (Display, Barista, false),
            (Customer, Display, false),
            (Admin, Customer, false),
            (Customer, Customer, true),
        ];
        for (have, need, ok) in table {
            assert_eq!(have.grants(need), ok, "{have:?} → {need:?}");
        }
    }

    #[test]
    fn the_pin_picks_its_role() {
        assert_eq!(role_for_pin(&pins(), "9999"), Some(Role::Admin));
        assert_eq!(role_for_pin(&pins(), "1234"), Some(Role::Barista));
        assert_eq!(role_for_pin(&pins(), "0000"), Some(Role::Display));
        assert_eq!(role_for_pin(&pins(), "1235"), None);
        assert_eq!(role_for_pin(&pins(), ""), None);
    }

    #[test]
    fn five_wrong_pins_a_minute_then_429_even_for_the_right_pin() {
        let kv = MemoryKv::new();
        let now = 600;
        for _ in 0..5 {
            let e = staff_login(&kv, &pins(), "0001", "10.0.0.1:5000", now, "a").unwrap_err();
            assert_eq!(e.status(), 401);
        }
        let e = staff_login(&kv, &pins(), "1234", "10.0.0.1:5001", now + 30, "a").unwrap_err();
        assert_eq!((e.status(), e.code()), (429, "too_many_attempts"));
        // Another client is unaffected; the next minute starts afresh.
        assert!(staff_login(&kv, &pins(), "1234", "10.0.0.2:1", now, "a").is_ok());
        let (role, claims) = staff_login(&kv, &pins(), "1234", "10.0.0.1:5002", now + 60, "b").unwrap();
        assert_eq!(
            (role, claims.sub.as_str(), claims.exp),
            (Role::Barista, "barista-b", now + 60 + STAFF_TOKEN_SECONDS)
        );
    }

    #[test]
    fn require_distinguishes_missing_wrong_role_and_wrong_shop() {
        let barista = Claims { role: Role::Barista, sub: "b".into(), shop: None, exp: 1 };
        assert_eq!(require(None, Role::Barista, None).unwrap_err().status(), 401);
        assert_eq!(require(Some(&barista), Role::Admin, None).unwrap_err().status(), 403);
        assert!(require(Some(&barista), Role::Display, Some("main")).is_ok());
        let limited = Claims { shop: Some("booth".into()), ..barista };
        assert_eq!(require(Some(&limited), Role::Barista, Some("main")).unwrap_err().status(), 403);
    }
}

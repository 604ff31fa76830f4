//! Identities: signed tokens for anonymous customers and PIN-signed-in staff.
//!
//! A token is `base64url(json claims) "." base64url(HMAC-SHA256(signing_key, payload))`.
//! Roles nest: admin ⊃ barista ⊃ display; customers are a separate kind.
//!
//! Staff tokens carry a session id (`sid`); signing out stores it as
//! revoked until the token would have expired.
//!
//! Keys owned here (and by [`sign_in_limits`]):
//! - `auth/revoked/{sid}`  JSON expiry (seconds): a signed-out staff token
//! - `auth/swept`          JSON minute: when these keys were last cleaned up

use crate::error::DomainError;
use crate::kv::KeyValue;
use crate::shop::ShopId;
use crate::sign_in_limits::{self as limits, Window};
use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const CUSTOMER_TOKEN_SECONDS: i64 = 90 * 24 * 3600;
pub const STAFF_TOKEN_SECONDS: i64 = 12 * 3600;
/// The shortest signing key accepted: a shorter one signs nothing (fail closed).
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

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
    /// A staff sign-in's session id (what signing out revokes); customers have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
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
    if key.len() < MIN_SIGNING_KEY_BYTES {
        // No usable key: no token is trusted (an empty key would be anyone's).
        return Err(TokenError::BadSignature);
    }
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

/// The shortest staff PIN accepted; a shorter one leaves its role's sign-in off.
pub const MIN_PIN_DIGITS: usize = 6;
/// Longer PINs are refused unread (they cannot be anyone's).
const MAX_PIN_CHARS: usize = 64;

/// A configured PIN, checked: `Ok(None)` when it is unset or empty (that
/// role's sign-in is off), `Err` with the reason when it is unusable (also off).
pub fn checked_pin(raw: &str) -> Result<Option<String>, String> {
    let pin = raw.trim();
    if pin.is_empty() {
        return Ok(None);
    }
    if pin.len() < MIN_PIN_DIGITS || pin.len() > MAX_PIN_CHARS || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("a staff PIN must be {MIN_PIN_DIGITS} to {MAX_PIN_CHARS} digits"));
    }
    Ok(Some(pin.to_string()))
}

/// The configured PINs of the staff roles; `None` = that role cannot sign in.
#[derive(Debug, Clone, Default)]
pub struct StaffPins {
    pub admin: Option<String>,
    pub barista: Option<String>,
    pub display: Option<String>,
}

impl StaffPins {
    /// The PINs from their configured values (`admin_pin`, `barista_pin`,
    /// `display_pin`), each checked with [`checked_pin`]. Two roles given the
    /// same PIN are both turned off: whoever typed it would otherwise get the
    /// higher role. Also returns why each turned-off PIN was refused.
    pub fn configured(admin: &str, barista: &str, display: &str) -> (Self, Vec<String>) {
        let mut problems = Vec::new();
        let mut check = |role: Role, raw: &str| {
            checked_pin(raw).unwrap_or_else(|why| {
                problems.push(format!("`{}_pin` is ignored, so that sign-in is off: {why}", role.as_str()));
                None
            })
        };
        let mut pins = Self {
            admin: check(Role::Admin, admin),
            barista: check(Role::Barista, barista),
            display: check(Role::Display, display),
        };
        let same = |a: Role, b: Role| pins.of(a).is_some() && pins.of(a) == pins.of(b);
        let mut shared = Vec::new();
        for (i, &first) in STAFF_ROLES.iter().enumerate() {
            for &second in &STAFF_ROLES[i + 1..] {
                if same(first, second) {
                    problems.push(format!(
                        "`{}_pin` and `{}_pin` are the same, so both sign-ins are off: give each role its own PIN",
                        first.as_str(),
                        second.as_str()
                    ));
                    shared.extend([first, second]);
                }
            }
        }
        for role in shared {
            if let Some(pin) = pins.slot(role) {
                *pin = None;
            }
        }
        (pins, problems)
    }

    fn slot(&mut self, role: Role) -> Option<&mut Option<String>> {
        match role {
            Role::Admin => Some(&mut self.admin),
            Role::Barista => Some(&mut self.barista),
            Role::Display => Some(&mut self.display),
            Role::Customer => None,
        }
    }

    fn of(&self, role: Role) -> Option<&str> {
        match role {
            Role::Admin => self.admin.as_deref(),
            Role::Barista => self.barista.as_deref(),
            Role::Display => self.display.as_deref(),
            Role::Customer => None,
        }
    }
}

/// The staff roles, highest first.
const STAFF_ROLES: [Role; 3] = [Role::Admin, Role::Barista, Role::Display];

/// The role among `candidates` whose PIN matches, highest first. Every
/// comparison runs, in constant time, so timing tells nothing about which
/// PIN was close.
pub fn role_for_pin(pins: &StaffPins, pin: &str, candidates: &[Role]) -> Option<Role> {
    let mut found = None;
    for &role in STAFF_ROLES.iter().rev() {
        let matches = candidates.contains(&role)
            && pins.of(role).is_some_and(|expected| bool::from(pin.as_bytes().ct_eq(expected.as_bytes())));
        if matches {
            found = Some(role);
        }
    }
    found
}

/// What a sign-in asks for.
#[derive(Debug, Clone)]
pub struct SignIn<'a> {
    pub pin: &'a str,
    /// The role the app needs (its PIN, or a higher role's, signs in);
    /// `None` = any staff role.
    pub role: Option<Role>,
    /// Limit the token to this shop.
    pub shop: Option<ShopId>,
    /// `spin-client-addr` of the request.
    pub client: &'a str,
}

/// A staff sign-in: the roles the PIN may be for are each checked within
/// their limits (see [`sign_in_limits`]); a right PIN gets a token for the
/// highest matching role, `random` makes its staff id and session id.
pub fn staff_login(
    kv: &impl KeyValue,
    pins: &StaffPins,
    attempt: &SignIn<'_>,
    now_secs: i64,
    random: [u8; 16],
) -> Result<(Role, Claims), DomainError> {
    let needed = attempt.role.unwrap_or(Role::Display);
    if !needed.is_staff() {
        return Err(DomainError::invalid("invalid_role", "sign in as display, barista or admin"));
    }
    if attempt.pin.chars().count() > MAX_PIN_CHARS {
        return Err(DomainError::invalid("invalid_pin", format!("a PIN has at most {MAX_PIN_CHARS} characters")));
    }
    let candidates: Vec<Role> = STAFF_ROLES.into_iter().filter(|r| r.grants(needed) && pins.of(*r).is_some()).collect();
    if candidates.is_empty() {
        return Err(DomainError::refused(
            "sign_in_disabled",
            503,
            format!(
                "no PIN is set for the {} role: the operator sets the `{}_pin` variable ({MIN_PIN_DIGITS}+ digits, not another role's PIN)",
                needed.as_str(),
                needed.as_str()
            ),
        ));
    }
    if let Some(shop) = &attempt.shop {
        crate::shop::load_shop(kv, shop)?;
    }
    let Some(client) = limits::reserve(kv, &Window::Client(limits::client_key(attempt.client)), now_secs)? else {
        return Err(too_many_tries(format!(
            "more than {} wrong PINs from this address in a minute: wait a minute and try again",
            limits::PER_CLIENT
        )));
    };
    let mut reserved = vec![client];
    let mut open = Vec::new();
    let mut paused = Vec::new();
    for role in candidates {
        match limits::reserve(kv, &Window::Role(role), now_secs)? {
            Some(reservation) => {
                reserved.push(reservation);
                open.push(role);
            }
            None => paused.push(role.as_str()),
        }
    }
    match role_for_pin(pins, attempt.pin, &open) {
        Some(role) => {
            // Only wrong PINs count.
            for reservation in reserved {
                reservation.release(kv)?;
            }
            let suffix: String = random[..3].iter().map(|b| format!("{b:02x}")).collect();
            let session = data_encoding::BASE32_NOPAD.encode(&random).to_ascii_lowercase();
            Ok((
                role,
                Claims {
                    role,
                    sub: format!("{}-{suffix}", role.as_str()),
                    shop: attempt.shop.as_ref().map(|s| s.to_string()),
                    exp: now_secs + STAFF_TOKEN_SECONDS,
                    sid: Some(session),
                },
            ))
        }
        None if !paused.is_empty() => Err(too_many_tries(format!(
            "sign-in for {} is paused after too many wrong PINs in the last minute: try again in a minute",
            paused.join(", ")
        ))),
        None => Err(DomainError::Unauthorized { code: "wrong_pin", message: "that PIN is not valid".into() }),
    }
}

fn too_many_tries(message: String) -> DomainError {
    DomainError::TooManyRequests { code: "too_many_attempts", message }
}

fn revoked_key(session: &str) -> String {
    format!("{REVOKED_PREFIX}{session}")
}

const REVOKED_PREFIX: &str = "auth/revoked/";

/// Signs a staff token out for good: it is refused from now on, wherever it
/// is sent (a plain `set`: revoking twice is revoking once).
pub fn sign_out(kv: &impl KeyValue, claims: &Claims) -> Result<(), DomainError> {
    if let Some(session) = &claims.sid {
        kv.set(&revoked_key(session), &crate::kv::to_json(&claims.exp))?;
    }
    Ok(())
}

/// A staff token that was signed out counts as none (one read per staff request).
pub fn check_signed_in(kv: &impl KeyValue, claims: &Claims) -> Result<(), DomainError> {
    match &claims.sid {
        Some(session) if kv.get(&revoked_key(session))?.is_some() => Err(DomainError::Unauthorized {
            code: "signed_out",
            message: "this sign-in has ended: sign in again".into(),
        }),
        _ => Ok(()),
    }
}

/// The minute the sign-in keys were last cleaned up in (see [`sweep`]).
const SWEPT_KEY: &str = "auth/swept";

/// Deletes wrong-PIN counters of past minutes and sign-outs of tokens that
/// have expired. Finding them is a scan of every key, so it runs once a
/// minute however often it is called.
pub fn sweep(kv: &impl KeyValue, now_secs: i64) -> Result<u32, DomainError> {
    let minute = now_secs.div_euclid(60);
    let last: Option<i64> = kv.get(SWEPT_KEY)?.and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if last == Some(minute) {
        return Ok(0);
    }
    let mut dropped = limits::sweep_old_windows(kv, now_secs)?;
    for key in kv.list_prefix(REVOKED_PREFIX)? {
        let expiry: Option<i64> = kv.get(&key)?.and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if expiry.is_none_or(|exp| exp <= now_secs) {
            kv.delete(&key)?;
            dropped += 1;
        }
    }
    // Wrong-PIN counters as earlier versions kept them.
    for key in kv.list_prefix("auth/fail/")? {
        kv.delete(&key)?;
        dropped += 1;
    }
    kv.set(SWEPT_KEY, &crate::kv::to_json(&minute))?;
    Ok(dropped)
}

/// A new anonymous customer: a random id from 16 random bytes.
pub fn new_customer(random: [u8; 16], now_secs: i64) -> Claims {
    Claims {
        role: Role::Customer,
        sub: format!("c-{}", data_encoding::BASE32_NOPAD.encode(&random).to_ascii_lowercase()),
        shop: None,
        exp: now_secs + CUSTOMER_TOKEN_SECONDS,
        sid: None,
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
    // A token limited to one shop acts on that shop only, never on all shops.
    match (&claims.shop, shop) {
        (Some(limited), Some(shop)) if limited != shop => {
            Err(DomainError::Forbidden { code: "forbidden", message: format!("this token is for shop `{limited}`") })
        }
        (Some(limited), None) => Err(DomainError::Forbidden {
            code: "forbidden",
            message: format!("this token is for shop `{limited}` only, not for every shop"),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    const KEY: &[u8] = b"test-signing-key-of-thirty-two-bytes";

    fn pins() -> StaffPins {
        StaffPins { admin: Some("99999999".into()), barista: Some("12341234".into()), display: Some("00000000".into()) }
    }

    fn attempt<'a>(pin: &'a str, client: &'a str) -> SignIn<'a> {
        SignIn { pin, role: None, shop: None, client }
    }

    fn login(kv: &MemoryKv, pins: &StaffPins, attempt: &SignIn<'_>, now: i64) -> Result<(Role, Claims), DomainError> {
        staff_login(kv, pins, attempt, now, [7; 16])
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
        assert_eq!(verify(&token, b"another-signing-key-thirty-two-bytes", 1), Err(TokenError::BadSignature));
        let (payload, signature) = token.split_once('.').unwrap();
        let admin = BASE64URL_NOPAD.encode(br#"{"role":"admin","sub":"x","exp":99999999999}"#);
        assert_eq!(verify(&format!("{admin}.{signature}"), KEY, 1), Err(TokenError::BadSignature));
        assert_eq!(verify(payload, KEY, 1), Err(TokenError::Malformed));
        assert_eq!(verify("a.b!", KEY, 1), Err(TokenError::Malformed));
    }

    #[test]
    fn no_token_verifies_against_a_missing_or_short_key() {
        for key in [&b""[..], b"dev-signing-key-change-me"] {
            let token = sign(&new_customer([1; 16], 0), key);
            assert_eq!(verify(&token, key, 1), Err(TokenError::BadSignature), "{key:?}");
        }
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
    fn configured_pins_are_six_or_more_digits_and_anything_else_turns_the_role_off() {
        assert_eq!(checked_pin(" 123456 "), Ok(Some("123456".into())));
        assert_eq!(checked_pin(""), Ok(None));
        assert_eq!(checked_pin("   "), Ok(None));
        for bad in ["9999", "12345", "12345a", "１２３４５６", "123 456"] {
            assert!(checked_pin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_sharing_a_pin_are_both_turned_off_and_said_why() {
        let (pins, problems) = StaffPins::configured("12345678", "12345678", "87654321");
        assert_eq!((pins.admin, pins.barista, pins.display.as_deref()), (None, None, Some("87654321")));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`admin_pin` and `barista_pin`"), "{problems:?}");

        let (pins, problems) = StaffPins::configured(" 24681357 ", "9999", "");
        assert_eq!((pins.admin.as_deref(), pins.barista, pins.display), (Some("24681357"), None, None));
        assert!(problems.len() == 1 && problems[0].starts_with("`barista_pin` is ignored"), "{problems:?}");

        // A barista typing the shared PIN must never become admin: nobody signs in with it.
        let (pins, _) = StaffPins::configured("11223344", "55667788", "11223344");
        let all = [Role::Admin, Role::Barista, Role::Display];
        assert_eq!(role_for_pin(&pins, "11223344", &all), None);
        assert_eq!(role_for_pin(&pins, "55667788", &all), Some(Role::Barista));
    }

    #[test]
    fn the_pin_picks_its_role_among_the_candidates() {
        let all = STAFF_ROLES;
        assert_eq!(role_for_pin(&pins(), "99999999", &all), Some(Role::Admin));
        assert_eq!(role_for_pin(&pins(), "12341234", &all), Some(Role::Barista));
        assert_eq!(role_for_pin(&pins(), "00000000", &all), Some(Role::Display));
        assert_eq!(role_for_pin(&pins(), "99999999", &[Role::Barista]), None);
        assert_eq!(role_for_pin(&pins(), "12341235", &all), None);
        assert_eq!(role_for_pin(&pins(), "", &all), None);
        assert_eq!(role_for_pin(&StaffPins::default(), "", &all), None, "an unset PIN never matches");
    }

    #[test]
    fn five_wrong_pins_a_minute_then_429_even_for_the_right_pin() {
        let kv = MemoryKv::new();
        let now = 600;
        for _ in 0..5 {
            let e = login(&kv, &pins(), &attempt("00000001", "10.0.0.1:5000"), now).unwrap_err();
            assert_eq!(e.status(), 401);
        }
        let e = login(&kv, &pins(), &attempt("12341234", "10.0.0.1:5001"), now + 30).unwrap_err();
        assert_eq!((e.status(), e.code()), (429, "too_many_attempts"));
        // Another client is unaffected; once the window has slid past, the client may try again.
        assert!(login(&kv, &pins(), &attempt("12341234", "10.0.0.2:1"), now).is_ok());
        let later = now + 120;
        let (role, claims) = login(&kv, &pins(), &attempt("12341234", "10.0.0.1:5002"), later).unwrap();
        assert_eq!(
            (role, claims.sub.as_str(), claims.exp),
            (Role::Barista, "barista-070707", later + STAFF_TOKEN_SECONDS)
        );
        assert!(claims.sid.is_some(), "staff tokens carry a session id");
    }

    #[test]
    fn right_pins_do_not_count_towards_the_limit() {
        let kv = MemoryKv::new();
        for _ in 0..50 {
            assert!(login(&kv, &pins(), &attempt("12341234", "10.0.0.1:1"), 600).is_ok());
        }
    }

    #[test]
    fn one_ipv6_network_is_one_client() {
        let kv = MemoryKv::new();
        for i in 0..5 {
            let addr = format!("[2001:db8:0:1::{i:x}]:443");
            assert_eq!(login(&kv, &pins(), &attempt("00000001", &addr), 600).unwrap_err().status(), 401);
        }
        let e = login(&kv, &pins(), &attempt("12341234", "[2001:db8:0:1:ffff::1]:1"), 600).unwrap_err();
        assert_eq!(e.status(), 429);
        assert!(login(&kv, &pins(), &attempt("12341234", "[2001:db8:0:2::1]:1"), 600).is_ok());
    }

    #[test]
    fn many_addresses_guessing_pause_the_roles_they_guess_but_not_the_others() {
        let kv = MemoryKv::new();
        fn admin_only<'a>(pin: &'a str, client: &'a str) -> SignIn<'a> {
            SignIn { pin, role: Some(Role::Admin), shop: None, client }
        }
        for i in 0..limits::PER_ROLE {
            let client = format!("10.1.0.{i}:1");
            assert_eq!(login(&kv, &pins(), &admin_only("00000001", &client), 600).unwrap_err().status(), 401);
        }
        // The admin PIN is now paused everywhere, even typed right, from a new address …
        let e = login(&kv, &pins(), &admin_only("99999999", "10.2.0.1:1"), 600).unwrap_err();
        assert_eq!((e.status(), e.code()), (429, "too_many_attempts"));
        // … while baristas and displays still sign in.
        assert_eq!(login(&kv, &pins(), &attempt("12341234", "10.2.0.1:1"), 600).unwrap().0, Role::Barista);
        assert_eq!(login(&kv, &pins(), &attempt("00000000", "10.2.0.2:1"), 600).unwrap().0, Role::Display);
    }

    #[test]
    fn one_address_alone_cannot_lock_staff_out_elsewhere() {
        let kv = MemoryKv::new();
        for _ in 0..100 {
            let _ = login(&kv, &pins(), &attempt("00000001", "10.0.0.66:1"), 600);
        }
        for role_pin in ["99999999", "12341234", "00000000"] {
            assert!(login(&kv, &pins(), &attempt(role_pin, "10.0.0.7:1"), 600).is_ok(), "{role_pin}");
        }
    }

    #[test]
    fn parallel_wrong_pins_get_at_most_the_limit_of_answers() {
        let kv = std::sync::Arc::new(MemoryKv::new());
        let threads: Vec<_> = (0..40)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    login(&kv, &pins(), &attempt("00000001", "10.0.0.5:1"), 600).unwrap_err().status()
                })
            })
            .collect();
        let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 401).count() as i64, limits::PER_CLIENT);
        assert!(statuses.iter().all(|s| *s == 401 || *s == 429));
    }

    #[test]
    fn an_app_asking_for_a_role_accepts_that_roles_pin_or_a_higher_ones() {
        let kv = MemoryKv::new();
        let as_barista = |pin| SignIn { pin, role: Some(Role::Barista), shop: None, client: "10.0.0.1:1" };
        assert_eq!(login(&kv, &pins(), &as_barista("12341234"), 600).unwrap().0, Role::Barista);
        assert_eq!(login(&kv, &pins(), &as_barista("99999999"), 600).unwrap().0, Role::Admin);
        assert_eq!(login(&kv, &pins(), &as_barista("00000000"), 600).unwrap_err().code(), "wrong_pin");
    }

    #[test]
    fn a_role_without_a_pin_cannot_sign_in_and_says_why() {
        let kv = MemoryKv::new();
        let pins = StaffPins { admin: None, ..pins() };
        let e = login(&kv, &pins, &SignIn { role: Some(Role::Admin), ..attempt("", "10.0.0.1:1") }, 600).unwrap_err();
        assert_eq!((e.status(), e.code()), (503, "sign_in_disabled"));
        assert!(e.message().contains("admin_pin"), "{}", e.message());
        let none = StaffPins::default();
        assert_eq!(login(&kv, &none, &attempt("", "10.0.0.1:1"), 600).unwrap_err().code(), "sign_in_disabled");
        // An empty PIN typed never matches a role that is off.
        assert_eq!(login(&kv, &pins, &attempt("", "10.0.0.1:1"), 600).unwrap_err().code(), "wrong_pin");
    }

    #[test]
    fn a_sign_in_can_be_limited_to_one_existing_shop() {
        let kv = MemoryKv::new();
        let main = SignIn { shop: Some(ShopId::main()), ..attempt("12341234", "10.0.0.1:1") };
        assert_eq!(login(&kv, &pins(), &main, 600).unwrap().1.shop.as_deref(), Some("main"));
        let unknown = SignIn { shop: Some(ShopId::parse("nowhere").unwrap()), ..attempt("12341234", "10.0.0.1:1") };
        assert_eq!(login(&kv, &pins(), &unknown, 600).unwrap_err().code(), "shop_not_found");
    }

    #[test]
    fn a_signed_out_token_is_refused_until_the_sweep_forgets_it_after_expiry() {
        let kv = MemoryKv::new();
        let (_, claims) = login(&kv, &pins(), &attempt("12341234", "10.0.0.1:1"), 600).unwrap();
        assert!(check_signed_in(&kv, &claims).is_ok());
        sign_out(&kv, &claims).unwrap();
        sign_out(&kv, &claims).unwrap();
        assert_eq!(check_signed_in(&kv, &claims).unwrap_err().code(), "signed_out");
        let (_, other) = staff_login(&kv, &pins(), &attempt("12341234", "10.0.0.1:1"), 600, [8; 16]).unwrap();
        assert!(check_signed_in(&kv, &other).is_ok(), "another sign-in stays valid");
        sweep(&kv, 700).unwrap();
        assert_eq!(kv.list_prefix(REVOKED_PREFIX).unwrap().len(), 1, "kept while the token could still be used");
        sweep(&kv, claims.exp + 60).unwrap();
        assert!(kv.list_prefix(REVOKED_PREFIX).unwrap().is_empty());
        assert!(kv.list_prefix("auth/pin/").unwrap().is_empty(), "old wrong-PIN windows go too");
    }

    #[test]
    fn require_distinguishes_missing_wrong_role_and_wrong_shop() {
        let barista = Claims { role: Role::Barista, sub: "b".into(), shop: None, exp: 1, sid: None };
        assert_eq!(require(None, Role::Barista, None).unwrap_err().status(), 401);
        assert_eq!(require(Some(&barista), Role::Admin, None).unwrap_err().status(), 403);
        assert!(require(Some(&barista), Role::Display, Some("main")).is_ok());
        let limited = Claims { shop: Some("booth".into()), ..barista };
        assert_eq!(require(Some(&limited), Role::Barista, Some("main")).unwrap_err().status(), 403);
        assert!(require(Some(&limited), Role::Barista, Some("booth")).is_ok());
        assert_eq!(require(Some(&limited), Role::Barista, None).unwrap_err().status(), 403, "not every shop");
    }
}

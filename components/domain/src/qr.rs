//! QR codes: one per shop and time slot, computed (never stored) from the
//! signing key, so every display shows the same unguessable code and a code
//! needs no write to exist. Its quota is a counter per slot.
//!
//! Keys owned here:
//! - `shop/{shop}/qr/{slot}/used` counter: drinks taken on that slot's code

use crate::auth::keyed_digest;
use crate::error::DomainError;
use crate::kv::KeyValue;
use crate::shop::{ShopConfig, ShopId};
use data_encoding::BASE32_NOPAD;
use serde::Serialize;

/// Length of a code: 10 base32 characters = 50 bits, far beyond guessing
/// within a 5-minute slot, and short enough to type from the screen.
pub const CODE_LEN: usize = 10;
/// How many slots back a code is recognised as expired (rather than invalid).
const EXPIRED_LOOKBACK: u64 = 288;

pub type Slot = u64;

pub fn slot_at(now_secs: i64, rotation_seconds: u32) -> Slot {
    (now_secs.max(0) as u64) / rotation_seconds.max(1) as u64
}

pub fn slot_ends_at(slot: Slot, rotation_seconds: u32) -> i64 {
    ((slot + 1) * rotation_seconds as u64) as i64
}

pub fn code_for(signing_key: &[u8], shop: &ShopId, slot: Slot) -> String {
    let digest = keyed_digest(signing_key, &["qr", shop.as_str(), &slot.to_string()]);
    BASE32_NOPAD.encode(&digest)[..CODE_LEN].to_string()
}

/// Which slot a code belongs to, if it may still be redeemed now: the current
/// slot, or the previous one within the grace period after it ended.
pub fn redeemable_slot(
    signing_key: &[u8],
    shop: &ShopId,
    config: &ShopConfig,
    code: &str,
    now_secs: i64,
) -> Result<Slot, DomainError> {
    let code = code.trim().to_ascii_uppercase();
    let current = slot_at(now_secs, config.code_rotation_seconds);
    if code == code_for(signing_key, shop, current) {
        return Ok(current);
    }
    if current > 0 && code == code_for(signing_key, shop, current - 1) {
        let ended = slot_ends_at(current - 1, config.code_rotation_seconds);
        if now_secs < ended + config.code_grace_seconds as i64 {
            return Ok(current - 1);
        }
        return Err(expired());
    }
    let recent_past =
        (2..=EXPIRED_LOOKBACK.min(current)).any(|back| code == code_for(signing_key, shop, current - back));
    if recent_past {
        Err(expired())
    } else {
        Err(DomainError::refused(
            "code_invalid",
            400,
            "this code is not valid for this shop: scan the code on the screen",
        ))
    }
}

/// The oldest slot whose code may still be redeemed at `now_secs` (see
/// [`redeemable_slot`]): the current one or, in its grace period, the one before.
pub fn oldest_redeemable(config: &ShopConfig, now_secs: i64) -> Slot {
    slot_at(now_secs, config.code_rotation_seconds).saturating_sub(1)
}

fn expired() -> DomainError {
    DomainError::refused("code_expired", 410, "this code has expired: scan the new code on the screen")
}

pub fn used_key(shop: &ShopId, slot: Slot) -> String {
    format!("shop/{shop}/qr/{slot}/used")
}

/// Takes one drink from a slot's quota, atomically; over quota is undone and refused.
pub fn take_token(kv: &impl KeyValue, shop: &ShopId, slot: Slot, drinks_per_code: u32) -> Result<u32, DomainError> {
    let key = used_key(shop, slot);
    let used = kv.increment(&key, 1)?;
    if used > drinks_per_code as i64 {
        kv.increment(&key, -1)?;
        return Err(DomainError::refused(
            "code_used_up",
            409,
            "this code has been used up: a new code appears on the screen soon",
        ));
    }
    Ok((drinks_per_code as i64 - used) as u32)
}

/// Gives a token back (a redemption refused by a later gate).
pub fn return_token(kv: &impl KeyValue, shop: &ShopId, slot: Slot) -> Result<(), DomainError> {
    kv.increment(&used_key(shop, slot), -1)?;
    Ok(())
}

pub fn tokens_left(kv: &impl KeyValue, shop: &ShopId, slot: Slot, drinks_per_code: u32) -> Result<u32, DomainError> {
    let used = kv.counter(&used_key(shop, slot))?;
    Ok((drinks_per_code as i64 - used).max(0) as u32)
}

/// What a display shows (never sent to customers or the public board).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeView {
    pub code: String,
    pub url: String,
    pub slot: Slot,
    pub slot_ends_at: String,
    pub tokens_left: u32,
    pub drinks_per_code: u32,
}

/// The URL a code encodes: the order app with the shop and the code.
pub fn order_url(base_url: &str, shop: &ShopId, code: &str) -> String {
    format!("{}/order/?shop={shop}&code={code}", base_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    const KEY: &[u8] = b"k";

    fn config() -> ShopConfig {
        ShopConfig::with_name("Shop")
    }

    #[test]
    fn codes_are_deterministic_per_shop_and_slot_and_differ_otherwise() {
        let main = ShopId::main();
        let other = ShopId::parse("booth").unwrap();
        assert_eq!(code_for(KEY, &main, 7), code_for(KEY, &main, 7));
        assert_eq!(code_for(KEY, &main, 7).len(), CODE_LEN);
        assert_ne!(code_for(KEY, &main, 7), code_for(KEY, &main, 8));
        assert_ne!(code_for(KEY, &main, 7), code_for(KEY, &other, 7));
        assert_ne!(code_for(KEY, &main, 7), code_for(b"other key", &main, 7));
    }

    #[test]
    fn a_code_is_redeemable_in_its_slot_and_the_grace_period_after() {
        let shop = ShopId::main();
        let c = config(); // 300 s slots, 30 s grace
        let slot = 1000;
        let start = (slot * 300) as i64;
        let code = code_for(KEY, &shop, slot);
        assert_eq!(redeemable_slot(KEY, &shop, &c, &code, start).unwrap(), slot);
        assert_eq!(redeemable_slot(KEY, &shop, &c, &code.to_lowercase(), start + 299).unwrap(), slot);
        assert_eq!(redeemable_slot(KEY, &shop, &c, &code, start + 300 + 29).unwrap(), slot);
        let late = redeemable_slot(KEY, &shop, &c, &code, start + 300 + 30).unwrap_err();
        assert_eq!((late.code(), late.status()), ("code_expired", 410));
        let old = redeemable_slot(KEY, &shop, &c, &code, start + 3000).unwrap_err();
        assert_eq!(old.code(), "code_expired");
        let bogus = redeemable_slot(KEY, &shop, &c, "AAAAAAAAAA", start).unwrap_err();
        assert_eq!((bogus.code(), bogus.status()), ("code_invalid", 400));
        let future = redeemable_slot(KEY, &shop, &c, &code_for(KEY, &shop, slot + 1), start).unwrap_err();
        assert_eq!(future.code(), "code_invalid");
    }

    #[test]
    fn a_code_admits_exactly_its_quota_under_concurrency() {
        let kv = std::sync::Arc::new(MemoryKv::new());
        let threads: Vec<_> = (0..100)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || take_token(&*kv, &ShopId::main(), 5, 10).is_ok())
            })
            .collect();
        let admitted = threads.into_iter().map(|t| t.join().unwrap()).filter(|ok| *ok).count();
        assert_eq!(admitted, 10);
        assert_eq!(tokens_left(&*kv, &ShopId::main(), 5, 10).unwrap(), 0);
        let refused = take_token(&*kv, &ShopId::main(), 5, 10).unwrap_err();
        assert_eq!((refused.code(), refused.status()), ("code_used_up", 409));
    }

    #[test]
    fn the_order_url_carries_shop_and_code() {
        assert_eq!(
            order_url("https://coffee.example/", &ShopId::main(), "ABC"),
            "https://coffee.example/order/?shop=main&code=ABC"
        );
    }
}

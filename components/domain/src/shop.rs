//! Shops: their id, their config, and the config and menu records in the store.
//!
//! Keys owned here (see `kv-schema/README.md`):
//! - `shops`               JSON `Versioned<[shopId]>`: every shop
//! - `shop/{shop}/config`  JSON `Versioned<ShopConfig>`
//! - `shop/{shop}/menu`    JSON `Versioned<[Drink]>`
//! - `shop/{shop}/seeded`  counter: elects the one request that creates a shop

use crate::atomic::{update, Decision, Versioned};
use crate::error::DomainError;
use crate::kv::KeyValue;
use crate::menu::{default_menu, is_slug, Drink};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// The shop every deployment has from the start.
pub const MAIN_SHOP: &str = "main";
pub const SUPPORTED_LANGUAGES: [&str; 2] = ["en", "pt-BR"];

/// A shop's id: a slug, the only way in is [`ShopId::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ShopId(String);

impl ShopId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if is_slug(raw, 32) {
            Ok(Self(raw.to_string()))
        } else {
            Err(DomainError::invalid(
                "invalid_shop_id",
                format!("`{raw}` is not a valid shop id: use 1-32 lowercase letters, digits and dashes"),
            ))
        }
    }

    pub fn main() -> Self {
        Self(MAIN_SHOP.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self, what: &str) -> String {
        format!("shop/{}/{what}", self.0)
    }
}

impl fmt::Display for ShopId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything an admin can set about a shop. All of it is public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShopConfig {
    pub name: String,
    pub open: bool,
    pub drinks_per_code: u32,
    pub code_rotation_seconds: u32,
    /// A code stays redeemable this long after its slot ends.
    pub code_grace_seconds: u32,
    pub max_open_orders: u32,
    pub max_open_orders_per_customer: u32,
    /// 0 means no limit.
    pub max_drinks_per_customer_per_day: u32,
    pub customer_timeout_seconds: u32,
    pub barista_timeout_seconds: u32,
    pub utc_offset_minutes: i32,
    /// Local time ("HH:MM") at which the business day starts: order numbers restart, metrics roll over.
    pub day_starts_at: String,
    pub languages: Vec<String>,
}

impl ShopConfig {
    pub fn with_name(name: &str) -> Self {
        Self {
            name: name.to_string(),
            open: false,
            drinks_per_code: 10,
            code_rotation_seconds: 300,
            code_grace_seconds: 30,
            max_open_orders: 20,
            max_open_orders_per_customer: 1,
            max_drinks_per_customer_per_day: 0,
            customer_timeout_seconds: 300,
            barista_timeout_seconds: 900,
            utc_offset_minutes: 0,
            day_starts_at: "05:00".to_string(),
            languages: SUPPORTED_LANGUAGES.iter().map(|l| l.to_string()).collect(),
        }
    }

    /// Applies a partial update after checking every field it sets.
    pub fn apply(&self, update: &ConfigUpdate) -> Result<Self, DomainError> {
        let mut next = self.clone();
        if let Some(name) = &update.name {
            next.name = checked_name(name)?;
        }
        let limits: [(&str, Option<i64>, i64, i64, &mut u32); 8] = [
            ("drinksPerCode", update.drinks_per_code, 1, 1000, &mut next.drinks_per_code),
            ("codeRotationSeconds", update.code_rotation_seconds, 30, 86_400, &mut next.code_rotation_seconds),
            ("codeGraceSeconds", update.code_grace_seconds, 0, 600, &mut next.code_grace_seconds),
            ("maxOpenOrders", update.max_open_orders, 1, 1000, &mut next.max_open_orders),
            (
                "maxOpenOrdersPerCustomer",
                update.max_open_orders_per_customer,
                1,
                20,
                &mut next.max_open_orders_per_customer,
            ),
            (
                "maxDrinksPerCustomerPerDay",
                update.max_drinks_per_customer_per_day,
                0,
                1000,
                &mut next.max_drinks_per_customer_per_day,
            ),
            ("customerTimeoutSeconds", update.customer_timeout_seconds, 10, 86_400, &mut next.customer_timeout_seconds),
            ("baristaTimeoutSeconds", update.barista_timeout_seconds, 10, 86_400, &mut next.barista_timeout_seconds),
        ];
        for (field, value, min, max, target) in limits {
            if let Some(value) = value {
                *target = in_range(field, value, min, max)? as u32;
            }
        }
        if let Some(offset) = update.utc_offset_minutes {
            next.utc_offset_minutes = in_range("utcOffsetMinutes", offset, -720, 840)? as i32;
        }
        if let Some(start) = &update.day_starts_at {
            parse_day_start(start)?;
            next.day_starts_at = start.clone();
        }
        if let Some(languages) = &update.languages {
            next.languages = checked_languages(languages)?;
        }
        Ok(next)
    }
}

/// A partial config update from an admin. Numbers are wide here so that a
/// negative or huge value gets a message naming its field, not a parse error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigUpdate {
    pub name: Option<String>,
    pub drinks_per_code: Option<i64>,
    pub code_rotation_seconds: Option<i64>,
    pub code_grace_seconds: Option<i64>,
    pub max_open_orders: Option<i64>,
    pub max_open_orders_per_customer: Option<i64>,
    pub max_drinks_per_customer_per_day: Option<i64>,
    pub customer_timeout_seconds: Option<i64>,
    pub barista_timeout_seconds: Option<i64>,
    pub utc_offset_minutes: Option<i64>,
    pub day_starts_at: Option<String>,
    pub languages: Option<Vec<String>>,
}

fn in_range(field: &str, value: i64, min: i64, max: i64) -> Result<i64, DomainError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(DomainError::invalid("invalid_config", format!("`{field}` must be between {min} and {max}, got {value}")))
    }
}

fn checked_name(name: &str) -> Result<String, DomainError> {
    let visible = crate::text::strip_invisible(name);
    let name = visible.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("invalid_config", "`name` must not be empty"));
    }
    if name.chars().count() > 60 {
        return Err(DomainError::invalid("invalid_config", "`name` must be at most 60 characters"));
    }
    Ok(name.to_string())
}

fn checked_languages(languages: &[String]) -> Result<Vec<String>, DomainError> {
    if languages.is_empty() {
        return Err(DomainError::invalid("invalid_config", "`languages` needs at least one language"));
    }
    let mut out: Vec<String> = Vec::new();
    for language in languages {
        if !SUPPORTED_LANGUAGES.contains(&language.as_str()) {
            return Err(DomainError::invalid(
                "invalid_config",
                format!("`languages`: `{language}` is not supported (supported: {})", SUPPORTED_LANGUAGES.join(", ")),
            ));
        }
        if !out.contains(language) {
            out.push(language.clone());
        }
    }
    Ok(out)
}

/// Parses "HH:MM" into minutes after midnight.
pub fn parse_day_start(raw: &str) -> Result<u32, DomainError> {
    let bad = || {
        DomainError::invalid("invalid_config", format!("`dayStartsAt` must be a time like \"05:00\", got \"{raw}\""))
    };
    let (h, m) = raw.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// What `GET /api/shops/:shop/config` answers: the config and the menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopView {
    pub shop_id: ShopId,
    #[serde(flatten)]
    pub config: ShopConfig,
    pub menu: Vec<Drink>,
}

/// The index of every shop: `shops`, JSON `Versioned<[shopId]>`, written when `main` is seeded.
pub const SHOPS_KEY: &str = "shops";

fn not_found(shop: &ShopId) -> DomainError {
    DomainError::not_found("shop_not_found", format!("there is no shop `{shop}`"))
}

/// Reads a shop's config and menu. The `main` shop is seeded with the
/// defaults on its first read; any other unknown shop is `shop_not_found`.
pub fn load_shop(kv: &impl KeyValue, shop: &ShopId) -> Result<ShopView, DomainError> {
    match read_shop(kv, shop)? {
        Some(view) => Ok(view),
        None if shop.as_str() == MAIN_SHOP => seed_main(kv),
        None => Err(not_found(shop)),
    }
}

/// Like [`load_shop`], for flows that write: a shop still being set up by a
/// concurrent first request answers 503 (retry), never a half-made shop.
pub fn load_ready_shop(kv: &impl KeyValue, shop: &ShopId) -> Result<ShopView, DomainError> {
    if let Some(view) = read_shop(kv, shop)? {
        return Ok(view);
    }
    let view = load_shop(kv, shop)?;
    if kv.get(&shop.key("config"))?.is_none() {
        return Err(DomainError::refused("shop_not_ready", 503, "the shop is being set up; try again in a moment"));
    }
    Ok(view)
}

/// Only the config of a ready shop (flows that never look at the menu).
/// The config is the last key a new shop gets, so its presence means ready.
pub fn load_ready_config(kv: &impl KeyValue, shop: &ShopId) -> Result<ShopConfig, DomainError> {
    let key = shop.key("config");
    match kv.get(&key)? {
        Some(bytes) => Ok(parse::<Versioned<ShopConfig>>(&key, &bytes)?.data),
        None => Ok(load_ready_shop(kv, shop)?.config),
    }
}

/// A ready shop's config and the drink `drink_id` of its menu, if there is
/// one: a submission parses that one drink, not the whole menu (~5 KB).
pub fn load_ready_drink(
    kv: &impl KeyValue,
    shop: &ShopId,
    drink_id: &str,
) -> Result<(ShopConfig, Option<Drink>), DomainError> {
    let keys = [shop.key("config"), shop.key("menu")];
    let mut values = kv.get_many(&keys)?.into_iter();
    let (Some(Some(config)), Some(Some(menu))) = (values.next(), values.next()) else {
        // Not stored yet: `main` is seeded, others are not found or not ready.
        let view = load_ready_shop(kv, shop)?;
        return Ok((view.config, view.menu.into_iter().find(|d| d.id == drink_id)));
    };
    let config: Versioned<ShopConfig> = parse(&keys[0], &config)?;
    // Drinks are stored with their id first: the one asked for is found by
    // its first bytes, and only it is parsed.
    let start = [&br#"{"id":"#[..], &crate::kv::to_json(&drink_id), b","].concat();
    let found = crate::json_bytes::split_versioned(&menu).and_then(|m| crate::json_bytes::find_element(m.data, &start));
    if let Some(found) = found {
        let drink = found.map(|bytes| parse(&keys[1], bytes)).transpose()?;
        return Ok((config.data, drink));
    }
    let drinks: Versioned<Vec<&RawValue>> = parse_borrowed(&keys[1], &menu)?;
    for raw in drinks.data {
        if id_of(&keys[1], raw)? == drink_id {
            return Ok((config.data, Some(parse(&keys[1], raw.get().as_bytes())?)));
        }
    }
    Ok((config.data, None))
}

#[derive(Deserialize)]
struct IdOf<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
}

/// A stored drink's id (for a menu in another shape than `to_json` writes).
/// Drinks are stored with their id first (`{"id":"latte",…`) and ids are
/// slugs, so it is read off the front; anything else is parsed.
fn id_of<'a>(key: &str, drink: &'a RawValue) -> Result<std::borrow::Cow<'a, str>, DomainError> {
    let front = drink.get().strip_prefix(r#"{"id":""#).and_then(|rest| rest.split_once('"'));
    match front {
        Some((id, _)) if !id.contains('\\') => Ok(std::borrow::Cow::Borrowed(id)),
        _ => Ok(parse_borrowed::<IdOf>(key, drink.get().as_bytes())?.id),
    }
}

/// The shop's config and menu, read together; `None` unless both are stored.
fn read_shop(kv: &impl KeyValue, shop: &ShopId) -> Result<Option<ShopView>, DomainError> {
    let keys = [shop.key("config"), shop.key("menu")];
    let mut values = kv.get_many(&keys)?.into_iter();
    let (Some(Some(config)), Some(Some(menu))) = (values.next(), values.next()) else { return Ok(None) };
    let config: Versioned<ShopConfig> = parse(&keys[0], &config)?;
    let menu: Versioned<Vec<Drink>> = parse(&keys[1], &menu)?;
    Ok(Some(ShopView { shop_id: shop.clone(), config: config.data, menu: menu.data }))
}

fn parse<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, DomainError> {
    parse_borrowed(key, bytes)
}

fn parse_borrowed<'a, T: Deserialize<'a>>(key: &str, bytes: &'a [u8]) -> Result<T, DomainError> {
    serde_json::from_slice(bytes)
        .map_err(|e| crate::kv::KvError::Corrupt { key: key.to_string(), reason: e.to_string() }.into())
}

/// Writes the default config and menu of `main`. "Create if absent" is not
/// atomic on every Spin store, so one `increment` elects the single writer;
/// every other racer answers with the same (deterministic) defaults unwritten.
fn seed_main(kv: &impl KeyValue) -> Result<ShopView, DomainError> {
    let shop = ShopId::main();
    let view = ShopView { shop_id: shop.clone(), config: ShopConfig::with_name("Spinpresso"), menu: default_menu() };
    if kv.increment(&shop.key("seeded"), 1)? == 1 {
        kv.set(SHOPS_KEY, &Versioned::first(vec![MAIN_SHOP.to_string()]).to_bytes())?;
        write_shop_keys(kv, &shop, &view.config, &view.menu)?;
    }
    Ok(view)
}

/// Every key a shop needs before its first order (CAS never creates keys);
/// the config is written last: its presence marks a complete shop.
fn write_shop_keys(kv: &impl KeyValue, shop: &ShopId, config: &ShopConfig, menu: &[Drink]) -> Result<(), DomainError> {
    crate::lifecycle::create_queue(kv, shop)?;
    kv.set(&shop.key("menu"), &Versioned::first(menu.to_vec()).to_bytes())?;
    kv.set(&shop.key("config"), &Versioned::first(config.clone()).to_bytes())?;
    Ok(())
}

/// `POST /api/shops`: a new shop with the default config and menu, closed.
pub fn create_shop(kv: &impl KeyValue, shop: &ShopId, name: &str, writer: &str) -> Result<ShopView, DomainError> {
    load_ready_shop(kv, &ShopId::main())?; // the shop index exists from here on
    let config = ShopConfig::with_name(&checked_name(name)?);
    if kv.increment(&shop.key("seeded"), 1)? != 1 {
        return Err(DomainError::conflict("shop_exists", format!("shop `{shop}` already exists")));
    }
    let menu = default_menu();
    write_shop_keys(kv, shop, &config, &menu)?;
    update(
        kv,
        SHOPS_KEY,
        writer,
        || not_found(&ShopId::main()),
        |shops: &Vec<String>| {
            Ok(if shops.iter().any(|s| s == shop.as_str()) {
                Decision::Keep(())
            } else {
                let mut next = shops.clone();
                next.push(shop.to_string());
                Decision::Write(next, ())
            })
        },
    )?;
    Ok(ShopView { shop_id: shop.clone(), config, menu })
}

/// Every shop's id.
pub fn list_shops(kv: &impl KeyValue) -> Result<Vec<ShopId>, DomainError> {
    load_shop(kv, &ShopId::main())?;
    let shops: Option<Versioned<Vec<String>>> = kv.get_json(SHOPS_KEY)?;
    Ok(shops
        .map(|s| s.data)
        .unwrap_or_else(|| vec![MAIN_SHOP.to_string()])
        .iter()
        .filter_map(|s| ShopId::parse(s).ok())
        .collect())
}

/// Changes a shop's config atomically; returns the new config.
pub fn change_config(
    kv: &impl KeyValue,
    shop: &ShopId,
    writer: &str,
    change: impl Fn(&ShopConfig) -> Result<ShopConfig, DomainError>,
) -> Result<ShopConfig, DomainError> {
    load_ready_shop(kv, shop)?;
    update(
        kv,
        &shop.key("config"),
        writer,
        || not_found(shop),
        |config: &ShopConfig| {
            let next = change(config)?;
            Ok(if &next == config { Decision::Keep(next) } else { Decision::Write(next.clone(), next) })
        },
    )
}

/// Replaces a shop's menu after validating it.
pub fn replace_menu(
    kv: &impl KeyValue,
    shop: &ShopId,
    writer: &str,
    menu: Vec<Drink>,
) -> Result<Vec<Drink>, DomainError> {
    let menu = crate::menu::cleaned(menu);
    crate::menu::validate_menu(&menu)?;
    load_ready_shop(kv, shop)?;
    update(
        kv,
        &shop.key("menu"),
        writer,
        || not_found(shop),
        |_: &Vec<Drink>| Ok(Decision::Write(menu.clone(), menu.clone())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    #[test]
    fn the_main_shop_is_seeded_with_the_defaults_of_the_design_on_first_read() {
        let kv = MemoryKv::new();
        let view = load_shop(&kv, &ShopId::main()).unwrap();
        let c = &view.config;
        assert!(!c.open);
        assert_eq!(
            (c.drinks_per_code, c.code_rotation_seconds, c.code_grace_seconds, c.max_open_orders),
            (10, 300, 30, 20)
        );
        assert_eq!((c.max_open_orders_per_customer, c.max_drinks_per_customer_per_day), (1, 0));
        assert_eq!((c.customer_timeout_seconds, c.barista_timeout_seconds), (300, 900));
        assert_eq!((c.utc_offset_minutes, c.day_starts_at.as_str()), (0, "05:00"));
        assert_eq!(c.languages, ["en", "pt-BR"]);
        assert_eq!(view.menu, default_menu());
        assert!(kv.get("shop/main/config").unwrap().is_some(), "the defaults are persisted");
        assert_eq!(list_shops(&kv).unwrap(), [ShopId::main()]);
        assert_eq!(load_shop(&kv, &ShopId::main()).unwrap(), view);
    }

    #[test]
    fn seeding_never_overwrites_a_config_written_after_it() {
        let kv = MemoryKv::new();
        load_shop(&kv, &ShopId::main()).unwrap();
        let changed = change_config(&kv, &ShopId::main(), "w", |c| Ok(ShopConfig { open: true, ..c.clone() })).unwrap();
        // A second seeding attempt (a late racer) loses the election and writes nothing.
        seed_main(&kv).unwrap();
        assert_eq!(load_shop(&kv, &ShopId::main()).unwrap().config, changed);
    }

    #[test]
    fn one_drink_is_read_from_the_menu_as_the_whole_menu_has_it() {
        let kv = MemoryKv::new();
        let shop = ShopId::main();
        // Before `main` is seeded, then from the stored menu.
        let (config, latte) = load_ready_drink(&kv, &shop, "latte").unwrap();
        assert_eq!(config, load_shop(&kv, &shop).unwrap().config);
        for id in ["latte", "espresso", "flat-white"] {
            let expected = load_shop(&kv, &shop).unwrap().menu.into_iter().find(|d| d.id == id);
            assert!(expected.is_some());
            assert_eq!(load_ready_drink(&kv, &shop, id).unwrap().1, expected, "{id}");
        }
        assert_eq!(latte.map(|d| d.id), Some("latte".to_string()));
        assert_eq!(load_ready_drink(&kv, &shop, "tea").unwrap().1, None);
        let missing = load_ready_drink(&kv, &ShopId::parse("nowhere").unwrap(), "latte").unwrap_err();
        assert_eq!(missing.code(), "shop_not_found");
    }

    #[test]
    fn a_drinks_id_is_read_off_its_front_or_parsed() {
        let raw = |json: &str| serde_json::value::RawValue::from_string(json.to_string()).unwrap();
        assert_eq!(id_of("k", &raw(r#"{"id":"latte","name":"Latte"}"#)).unwrap(), "latte");
        assert_eq!(id_of("k", &raw(r#"{"name":"Latte","id":"latte"}"#)).unwrap(), "latte", "another field order");
        assert_eq!(id_of("k", &raw(r#"{"id":"l\u0061tte"}"#)).unwrap(), "latte", "an escaped id");
        assert!(id_of("k", &raw(r#"{"name":"no id"}"#)).is_err());
    }

    #[test]
    fn an_unknown_shop_is_not_found_and_nothing_is_written() {
        let kv = MemoryKv::new();
        let err = load_shop(&kv, &ShopId::parse("elsewhere").unwrap()).unwrap_err();
        assert_eq!((err.code(), err.status()), ("shop_not_found", 404));
        assert!(kv.is_empty());
    }

    #[test]
    fn admins_create_shops_once_and_they_are_listed() {
        let kv = MemoryKv::new();
        let booth = ShopId::parse("booth-7").unwrap();
        let view = create_shop(&kv, &booth, " Booth 7 ", "w").unwrap();
        assert_eq!((view.config.name.as_str(), view.config.open), ("Booth 7", false));
        assert_eq!(create_shop(&kv, &booth, "Again", "w").unwrap_err().code(), "shop_exists");
        assert_eq!(list_shops(&kv).unwrap(), [ShopId::main(), booth.clone()]);
        assert_eq!(load_shop(&kv, &booth).unwrap(), view);
        assert_eq!(create_shop(&kv, &ShopId::parse("x").unwrap(), " ", "w").unwrap_err().code(), "invalid_config");
    }

    #[test]
    fn menus_are_validated_before_they_replace_the_old_one() {
        let kv = MemoryKv::new();
        let mut menu = default_menu();
        menu[1].id = menu[0].id.clone();
        assert_eq!(replace_menu(&kv, &ShopId::main(), "w", menu).unwrap_err().code(), "invalid_menu");
        let short = default_menu()[..2].to_vec();
        replace_menu(&kv, &ShopId::main(), "w", short.clone()).unwrap();
        assert_eq!(load_shop(&kv, &ShopId::main()).unwrap().menu, short);
    }

    #[test]
    fn names_shown_to_customers_lose_invisible_formatting_characters() {
        let kv = MemoryKv::new();
        let mut menu = default_menu();
        menu[0].name = "\u{202E}Latte\u{200B} ".into();
        menu[0].modifier_groups[0].options[0].name = "O\u{2066}at".into();
        let stored = replace_menu(&kv, &ShopId::main(), "w", menu).unwrap();
        assert_eq!((stored[0].name.as_str(), stored[0].modifier_groups[0].options[0].name.as_str()), ("Latte", "Oat"));
        let blank = vec![Drink { name: "\u{200B}".into(), ..default_menu()[0].clone() }];
        assert_eq!(replace_menu(&kv, &ShopId::main(), "w", blank).unwrap_err().code(), "invalid_menu");
        assert_eq!(checked_name(" \u{202E}Booth 2").unwrap(), "Booth 2");
    }

    #[test]
    fn shop_ids_are_slugs() {
        assert!(ShopId::parse("main").is_ok());
        let err = ShopId::parse("../etc").unwrap_err();
        assert_eq!((err.code(), err.status()), ("invalid_shop_id", 400));
    }

    #[test]
    fn the_public_view_is_camel_case_with_the_menu_inline() {
        let kv = MemoryKv::new();
        let json = serde_json::to_value(load_shop(&kv, &ShopId::main()).unwrap()).unwrap();
        assert_eq!(json["shopId"], "main");
        assert_eq!(json["drinksPerCode"], 10);
        assert_eq!(json["maxOpenOrders"], 20);
        assert_eq!(json["menu"][0]["modifierGroups"][0]["id"], "caffeine");
    }

    fn update(json: &str) -> Result<ShopConfig, DomainError> {
        let update: ConfigUpdate =
            serde_json::from_str(json).map_err(|e| DomainError::invalid("bad_json", e.to_string()))?;
        ShopConfig::with_name("Shop").apply(&update)
    }

    #[test]
    fn a_partial_update_changes_only_the_fields_it_names() {
        let next = update(r#"{"drinksPerCode": 5, "name": "  Booth 7 ", "utcOffsetMinutes": -180}"#).unwrap();
        assert_eq!((next.drinks_per_code, next.name.as_str(), next.utc_offset_minutes), (5, "Booth 7", -180));
        assert_eq!(next.max_open_orders, 20);
    }

    #[test]
    fn bad_config_updates_are_refused_with_a_message_naming_the_field() {
        let cases = [
            (r#"{"name": " "}"#, "`name` must not be empty"),
            (r#"{"drinksPerCode": -1}"#, "`drinksPerCode` must be between 1 and 1000, got -1"),
            (r#"{"maxOpenOrders": 0}"#, "`maxOpenOrders` must be between 1"),
            (r#"{"maxDrinksPerCustomerPerDay": -3}"#, "`maxDrinksPerCustomerPerDay` must be between 0"),
            (r#"{"customerTimeoutSeconds": 9}"#, "`customerTimeoutSeconds` must be between 10"),
            (r#"{"baristaTimeoutSeconds": 5}"#, "`baristaTimeoutSeconds` must be between 10"),
            (r#"{"utcOffsetMinutes": 900}"#, "`utcOffsetMinutes` must be between -720 and 840"),
            (r#"{"dayStartsAt": "25:00"}"#, "`dayStartsAt` must be a time"),
            (r#"{"dayStartsAt": "5:00"}"#, "`dayStartsAt` must be a time"),
            (r#"{"languages": ["fr"]}"#, "`fr` is not supported"),
            (r#"{"languages": []}"#, "at least one language"),
            (r#"{"open": true}"#, "unknown field `open`"),
            (r#"{"colour": "red"}"#, "unknown field `colour`"),
        ];
        for (json, expected) in cases {
            let message = update(json).unwrap_err().message();
            assert!(message.contains(expected), "{json}: got `{message}`");
        }
    }

    #[test]
    fn day_start_parses_to_minutes_after_midnight() {
        assert_eq!(parse_day_start("05:00").unwrap(), 300);
        assert_eq!(parse_day_start("23:59").unwrap(), 1439);
        assert!(parse_day_start("24:00").is_err());
        assert!(parse_day_start("ab:cd").is_err());
    }
}

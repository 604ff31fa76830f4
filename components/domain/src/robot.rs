//! The order robot: simulated customers and baristas for demos and load
//! tests. Robot orders go through the same flows and rules as people's (they
//! take QR tokens, capacity and numbers) and are flagged `robot`. The robot
//! acts on each sweep: it starts the orders its rate calls for and moves its
//! own open orders along (drink, claim, complete, or cancel).
//!
//! The robot's record is created by the shop's first start, as a part of
//! its own (see [`crate::parts`]): the newest part is the record, so a
//! start whose writer died half-way blocks no later start.
//!
//! Keys owned here:
//! - `shop/{shop}/robot`        JSON `Versioned<RobotState>`: part 1 of the record
//! - `shop/{shop}/robot/{n}`    JSON `Versioned<RobotState>`: part n ≥ 2 (the newest is the record)
//! - `shop/{shop}/robot/parts`  counter: the part numbers taken

use crate::atomic::Decision;
use crate::error::DomainError;
use crate::kv::KeyValue;
use crate::lifecycle::{self, Ctx, StaffAction};
use crate::order::{DrinkChoice, OrderState};
use crate::parts::Parts;
use crate::qr;
use crate::shop::{load_ready_shop, ShopId};
use serde::{Deserialize, Serialize};

/// At most this many robot orders are started by one sweep (a long pause is not made up in one burst).
const MAX_STARTS_PER_SWEEP: u64 = 50;
const ROBOT_BARISTA: &str = "robot-barista";

/// What an admin sends to start the robot.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RobotSettings {
    pub orders_per_minute: u32,
    pub duration_seconds: u32,
    /// Seconds a robot barista takes per step (claim, then complete): `[min, max]`.
    #[serde(default = "default_delay")]
    pub barista_delay_seconds: [u32; 2],
    /// Chance (0–1) that a robot customer cancels instead of choosing a drink.
    #[serde(default)]
    pub cancel_probability: f64,
}

fn default_delay() -> [u32; 2] {
    [5, 20]
}

impl RobotSettings {
    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |m: &str| DomainError::invalid("invalid_robot", m.to_string());
        if !(1..=600).contains(&self.orders_per_minute) {
            return Err(bad("`ordersPerMinute` must be between 1 and 600"));
        }
        if !(1..=86_400).contains(&self.duration_seconds) {
            return Err(bad("`durationSeconds` must be between 1 and 86400"));
        }
        let [min, max] = self.barista_delay_seconds;
        if min > max || max > 3_600 {
            return Err(bad("`baristaDelaySeconds` is `[min, max]` with min ≤ max ≤ 3600"));
        }
        if !(0.0..=1.0).contains(&self.cancel_probability) {
            return Err(bad("`cancelProbability` must be between 0 and 1"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RobotState {
    pub running: bool,
    pub orders_per_minute: u32,
    pub barista_delay_seconds: [u32; 2],
    pub cancel_probability: f64,
    pub started_ms: i64,
    pub until_ms: i64,
    /// Orders started so far in this run.
    pub started_orders: u64,
}

impl RobotState {
    /// Orders the rate calls for by `now` (the run's schedule, not sweep timing).
    fn due(&self, now_ms: i64) -> u64 {
        let elapsed = (now_ms.min(self.until_ms) - self.started_ms).max(0) as u64;
        elapsed * self.orders_per_minute as u64 / 60_000
    }
}

fn record(shop: &ShopId) -> Parts {
    Parts::new(format!("shop/{shop}/robot"))
}

/// `POST /api/shops/:shop/robot`: (re)starts the robot.
pub fn start<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, settings: &RobotSettings) -> Result<RobotState, DomainError> {
    settings.validate()?;
    load_ready_shop(ctx.kv, shop)?;
    let state = RobotState {
        running: true,
        orders_per_minute: settings.orders_per_minute,
        barista_delay_seconds: settings.barista_delay_seconds,
        cancel_probability: settings.cancel_probability,
        started_ms: ctx.now_ms,
        until_ms: ctx.now_ms + settings.duration_seconds as i64 * 1000,
        started_orders: 0,
    };
    let started = record(shop).update_newest(
        ctx.kv,
        ctx.writer,
        |_: &RobotState| Ok(Decision::Write(state.clone(), state.clone())),
        Some((state.clone(), state.clone())),
    )?;
    Ok(started.unwrap_or(state))
}

/// `DELETE /api/shops/:shop/robot`: stops starting orders (its open ones are still finished).
pub fn stop<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId) -> Result<RobotState, DomainError> {
    load_ready_shop(ctx.kv, shop)?;
    let stopped = record(shop).update_newest(
        ctx.kv,
        ctx.writer,
        |s: &RobotState| {
            let next = RobotState { running: false, until_ms: s.until_ms.min(ctx.now_ms), ..s.clone() };
            Ok(Decision::Write(next.clone(), next))
        },
        None, // never started: nothing to stop
    )?;
    Ok(stopped.unwrap_or_default())
}

pub fn status(kv: &impl KeyValue, shop: &ShopId) -> Result<RobotState, DomainError> {
    crate::shop::load_shop(kv, shop)?; // an unknown shop is 404, like every other shop route
    Ok(record(shop).read_newest::<RobotState>(kv)?.unwrap_or_default())
}

/// One sweep's work for the robot of a shop; `random` gives uniform u64s.
/// Returns how many orders it started.
pub fn act<K: KeyValue>(ctx: &Ctx<K>, shop: &ShopId, random: &mut dyn FnMut() -> u64) -> Result<u64, DomainError> {
    let Some(state) = record(shop).read_newest::<RobotState>(ctx.kv)? else { return Ok(0) };
    let started = if state.running { start_due_orders(ctx, shop, &state, random)? } else { 0 };
    advance_robot_orders(ctx, shop, &state, random)?;
    Ok(started)
}

fn start_due_orders<K: KeyValue>(
    ctx: &Ctx<K>,
    shop: &ShopId,
    state: &RobotState,
    random: &mut dyn FnMut() -> u64,
) -> Result<u64, DomainError> {
    let still_running = ctx.now_ms < state.until_ms;
    // Claim the batch first (one CAS), so two sweepers never start the same orders.
    let claim = |s: &RobotState| {
        let due = s.due(ctx.now_ms).saturating_sub(s.started_orders).min(MAX_STARTS_PER_SWEEP);
        let next =
            RobotState { started_orders: s.started_orders + due, running: s.running && still_running, ..s.clone() };
        Ok(if next == *s { Decision::Keep(0) } else { Decision::Write(next, due) })
    };
    let batch = record(shop).update_newest(ctx.kv, ctx.writer, claim, None)?.unwrap_or(0);
    let config = load_ready_shop(ctx.kv, shop)?.config;
    let code = qr::code_for(ctx.signing_key, shop, qr::slot_at(ctx.now_ms / 1000, config.code_rotation_seconds));
    let mut started = 0;
    for _ in 0..batch {
        let customer = format!("robot-{:016x}", random());
        // Refusals (code used up, shop full or closed) are the rules working: the robot just waits.
        if lifecycle::redeem(ctx, shop, &customer, &code, Some("ROBOT".into()), true).is_ok() {
            started += 1;
        }
    }
    Ok(started)
}

/// Moves each open robot order one step when its time has come.
fn advance_robot_orders<K: KeyValue>(
    ctx: &Ctx<K>,
    shop: &ShopId,
    state: &RobotState,
    random: &mut dyn FnMut() -> u64,
) -> Result<(), DomainError> {
    let view = load_ready_shop(ctx.kv, shop)?;
    let orders =
        lifecycle::list_orders(ctx, shop, &[OrderState::AwaitingDrink, OrderState::Queued, OrderState::InProgress])?;
    let [min, max] = state.barista_delay_seconds;
    for order in orders.into_iter().filter(|o| o.robot) {
        // A per-order delay, fixed by its id, so every sweep agrees on it.
        let spread = (max - min) as u64 + 1;
        let delay_ms = (min as u64 + order.id.bytes().map(u64::from).sum::<u64>() % spread) as i64 * 1000;
        let since = |at: &Option<String>| {
            at.as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| ctx.now_ms - t.timestamp_millis())
                .unwrap_or(0)
        };
        let customer = lifecycle::read_order(ctx, &order.id)?.map(|o| o.customer_id).unwrap_or_default();
        let outcome = match order.state {
            OrderState::AwaitingDrink => {
                let cancel = (random() % 10_000) as f64 / 10_000.0 < state.cancel_probability;
                if cancel {
                    lifecycle::cancel_by_customer(ctx, &order.id, &customer).map(drop)
                } else {
                    let available: Vec<_> = view.menu.iter().filter(|d| d.available).collect();
                    let Some(drink) = available.get((random() % available.len().max(1) as u64) as usize) else {
                        continue;
                    };
                    let mut choice = DrinkChoice { drink_id: drink.id.clone(), options: Default::default() };
                    for group in drink.modifier_groups.iter().filter(|g| g.required) {
                        if let Some(option) = group.options.iter().find(|o| o.available) {
                            choice.options.insert(group.id.clone(), option.id.clone());
                        }
                    }
                    lifecycle::submit_drink(ctx, &order.id, &customer, &choice).map(drop)
                }
            }
            OrderState::Queued if since(&order.submitted_at) >= delay_ms => {
                lifecycle::staff_action(ctx, &order.id, StaffAction::Claim, ROBOT_BARISTA, false).map(drop)
            }
            OrderState::InProgress if since(&order.claimed_at) >= delay_ms => {
                lifecycle::staff_action(ctx, &order.id, StaffAction::Complete, ROBOT_BARISTA, true).map(drop)
            }
            _ => Ok(()),
        };
        // A lost race with a person (a barista took it) is fine: next sweep sees the new state.
        if let Err(e) = outcome {
            if e.status() >= 500 {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;
    use crate::shop::{change_config, ShopConfig};

    const KEY: &[u8] = b"k";

    #[test]
    fn a_shop_that_does_not_exist_has_no_robot() {
        let e = status(&MemoryKv::new(), &ShopId::parse("nowhere").unwrap()).unwrap_err();
        assert_eq!((e.code(), e.status()), ("shop_not_found", 404));
    }

    const T0: i64 = 1_795_860_000_000;

    fn ctx(kv: &MemoryKv, now_ms: i64, n: u64) -> Ctx<'_, MemoryKv> {
        Ctx { kv, now_ms, writer: Box::leak(format!("robot-test-{n}").into_boxed_str()), signing_key: KEY }
    }

    #[test]
    fn the_robot_orders_at_its_rate_finishes_its_orders_and_stops_by_itself() {
        let kv = MemoryKv::new();
        change_config(&kv, &ShopId::main(), "setup", |c| {
            Ok(ShopConfig { open: true, drinks_per_code: 1000, max_open_orders: 1000, ..c.clone() })
        })
        .unwrap();
        let settings = RobotSettings {
            orders_per_minute: 120,
            duration_seconds: 20,
            barista_delay_seconds: [1, 2],
            cancel_probability: 0.2,
        };
        start(&ctx(&kv, T0, 0), &ShopId::main(), &settings).unwrap();
        let mut seed = 7u64;
        let mut random = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 11
        };
        let mut total = 0;
        for tick in 1..=40 {
            total += act(&ctx(&kv, T0 + tick * 1_000, tick as u64), &ShopId::main(), &mut random).unwrap();
        }
        assert_eq!(total, 40, "120 a minute for 20 seconds");
        assert!(!status(&kv, &ShopId::main()).unwrap().running, "stopped by itself");
        let open = lifecycle::list_orders(
            &ctx(&kv, T0 + 41_000, 99),
            &ShopId::main(),
            &[OrderState::AwaitingDrink, OrderState::Queued, OrderState::InProgress],
        )
        .unwrap();
        assert!(open.is_empty(), "every robot order was finished: {open:?}");
        let done = lifecycle::list_orders(
            &ctx(&kv, T0 + 41_000, 100),
            &ShopId::main(),
            &[OrderState::Completed, OrderState::Cancelled],
        )
        .unwrap();
        assert_eq!(done.len(), 40);
        assert!(done.iter().all(|o| o.robot));
    }

    #[test]
    fn bad_robot_settings_are_refused() {
        let ok = RobotSettings {
            orders_per_minute: 10,
            duration_seconds: 60,
            barista_delay_seconds: [1, 2],
            cancel_probability: 0.0,
        };
        assert!(ok.validate().is_ok());
        for bad in [
            RobotSettings { orders_per_minute: 0, ..ok.clone() },
            RobotSettings { duration_seconds: 0, ..ok.clone() },
            RobotSettings { barista_delay_seconds: [5, 1], ..ok.clone() },
            RobotSettings { cancel_probability: 1.5, ..ok.clone() },
        ] {
            assert_eq!(bad.validate().unwrap_err().code(), "invalid_robot");
        }
    }
}

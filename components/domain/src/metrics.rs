//! Business metrics per shop and business day, kept in one record per day and
//! updated atomically (compare-and-swap) as each order moves — no scans.
//! The day's record is created by its first change, in numbered parts (see
//! [`crate::parts`]) that add up: writers never wait for one another to
//! create it, and usually there is one part.
//!
//! Keys owned here:
//! - `shop/{shop}/metrics/{day}`         JSON `Versioned<DayMetrics>`: part 1 of the day's record
//! - `shop/{shop}/metrics/{day}/{n}`     JSON `Versioned<DayMetrics>`: part n ≥ 2
//! - `shop/{shop}/metrics/{day}/parts`   counter: the part numbers taken
//! - `shop/{shop}/metrics/{day}/started` counter: orders started (redeemed) that day
//! - `shop/{shop}/metrics/{day}/init`    counter of earlier versions (deleted with the day)

use crate::atomic::{update_raw, Decision};
use crate::error::DomainError;
use crate::kv::KeyValue;
use crate::order::{Canceller, Order, TimeoutCause};
use crate::parts::Parts;
use crate::shop::ShopId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Upper bounds (seconds) of the wait-time histogram buckets; the last bucket is unbounded.
pub const BUCKETS: [u32; 14] = [15, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800];
/// Completions per drink kept for its rolling average (the reference averages the last 10).
pub const RECENT_PER_DRINK: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Histogram {
    /// Observations per bucket of [`BUCKETS`], plus one for "more".
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum: u64,
    pub max: u64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: u64) {
        if self.buckets.len() != BUCKETS.len() + 1 {
            self.buckets = vec![0; BUCKETS.len() + 1];
        }
        let at = BUCKETS.iter().position(|b| seconds <= *b as u64).unwrap_or(BUCKETS.len());
        self.buckets[at] += 1;
        self.count += 1;
        self.sum += seconds;
        self.max = self.max.max(seconds);
    }

    /// The upper bound of the bucket holding quantile `q` (capped by the maximum seen).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = (q * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return BUCKETS.get(i).map(|b| (*b as u64).min(self.max)).unwrap_or(self.max);
            }
        }
        self.max
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DayMetrics {
    pub started: u64,
    pub submitted: u64,
    pub completed: u64,
    pub cancelled_customer: u64,
    pub cancelled_barista: u64,
    pub cancelled_admin: u64,
    pub timed_out_customer: u64,
    pub timed_out_barista: u64,
    pub drinks: BTreeMap<String, u64>,
    /// `group.option` → count.
    pub options: BTreeMap<String, u64>,
    /// Submissions per hour of the business day (index 0 = the hour the day starts).
    pub per_hour: Vec<u64>,
    pub baristas: BTreeMap<String, u64>,
    /// Submission to completion.
    pub wait: Histogram,
    /// Claim to completion.
    pub claim_to_complete: Histogram,
    /// The last completions' claim-to-complete seconds per drink, newest last.
    pub recent_by_drink: BTreeMap<String, Vec<u64>>,
}

/// The last completions' claim-to-complete seconds per drink (what wait estimates use).
pub type RecentByDrink = BTreeMap<String, Vec<u64>>;

/// What happened to an order, for the day's record (a start is counted by [`started`]).
pub enum Happened<'a> {
    Submitted { order: &'a Order, hour: usize },
    Finished(&'a Order),
}

fn key(shop: &ShopId, day: &str) -> String {
    format!("shop/{shop}/metrics/{day}")
}

/// The parts of the day's record.
pub fn parts(shop: &ShopId, day: &str) -> Parts {
    Parts::new(key(shop, day))
}

/// The day's started orders: a counter of its own, so that a redemption (the
/// busiest write) costs one `increment` instead of a swap of the whole record.
pub fn started_key(shop: &ShopId, day: &str) -> String {
    format!("shop/{shop}/metrics/{day}/started")
}

/// Counts an order started (redeemed).
pub fn started(kv: &impl KeyValue, shop: &ShopId, day: &str) -> Result<(), DomainError> {
    kv.increment(&started_key(shop, day), 1)?;
    Ok(())
}

/// Applies one change to the day's record, creating it on first use (a new
/// part: see [`crate::parts`]); the figures of the part changed after it
/// (the whole day's, but in the rare day whose record has several parts).
pub fn record(
    kv: &impl KeyValue,
    shop: &ShopId,
    day: &str,
    writer: &str,
    what: Happened,
) -> Result<DayMetrics, DomainError> {
    let apply_to = |m: &DayMetrics| {
        let mut next = m.clone();
        apply(&mut next, &what);
        Ok(Some(Decision::Write(next.clone(), next)))
    };
    let first = || {
        let mut first = DayMetrics::default();
        apply(&mut first, &what);
        Ok((first.clone(), first))
    };
    parts(shop, day).update_any(kv, writer, apply_to, first)
}

const ABSENT: &str = "metrics_absent";

fn absent() -> DomainError {
    DomainError::not_found(ABSENT, "no record yet")
}

/// The day's record with only the figures a submission changes parsed; the
/// others stay the stored JSON and are copied back as they are. Fields in
/// the order of [`DayMetrics`], so it writes the same JSON.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubmittedFigures<'a> {
    #[serde(borrow)]
    started: &'a RawValue,
    submitted: u64,
    #[serde(borrow)]
    completed: &'a RawValue,
    #[serde(borrow)]
    cancelled_customer: &'a RawValue,
    #[serde(borrow)]
    cancelled_barista: &'a RawValue,
    #[serde(borrow)]
    cancelled_admin: &'a RawValue,
    #[serde(borrow)]
    timed_out_customer: &'a RawValue,
    #[serde(borrow)]
    timed_out_barista: &'a RawValue,
    drinks: BTreeMap<String, u64>,
    options: BTreeMap<String, u64>,
    per_hour: Vec<u64>,
    #[serde(borrow)]
    baristas: &'a RawValue,
    #[serde(borrow)]
    wait: &'a RawValue,
    #[serde(borrow)]
    claim_to_complete: &'a RawValue,
    #[serde(borrow)]
    recent_by_drink: &'a RawValue,
}

/// Counts a submission ([`record`] of [`Happened::Submitted`]) parsing and
/// writing back only the figures it changes: the busiest change of the
/// record no longer reads its histograms and per-drink lists into maps and
/// back. The day's recent completion times per drink, after it.
pub fn record_submitted(
    kv: &impl KeyValue,
    shop: &ShopId,
    day: &str,
    writer: &str,
    order: &Order,
    hour: usize,
) -> Result<RecentByDrink, DomainError> {
    let counted = update_raw(kv, &key(shop, day), writer, absent, |data| {
        let mut figures: SubmittedFigures = serde_json::from_slice(data).ok()?;
        let f = &mut figures;
        count_submission(&mut f.submitted, &mut f.drinks, &mut f.options, &mut f.per_hour, order, hour);
        let recent = serde_json::from_str(figures.recent_by_drink.get()).ok()?;
        Some(Decision::Write(crate::kv::to_json(&figures), recent))
    });
    match counted {
        Ok(Some(recent)) => Ok(recent),
        // The day's first change (no record yet), or a record in another shape: the whole record.
        Ok(None) => Ok(record(kv, shop, day, writer, Happened::Submitted { order, hour })?.recent_by_drink),
        Err(e) if e.code() == ABSENT => {
            Ok(record(kv, shop, day, writer, Happened::Submitted { order, hour })?.recent_by_drink)
        }
        Err(e) => Err(e),
    }
}

/// How a submission moves the figures (shared by [`apply`] and [`record_submitted`]).
fn count_submission(
    submitted: &mut u64,
    drinks: &mut BTreeMap<String, u64>,
    options: &mut BTreeMap<String, u64>,
    per_hour: &mut Vec<u64>,
    order: &Order,
    hour: usize,
) {
    *submitted += 1;
    if let Some(drink) = &order.drink {
        *drinks.entry(drink.id.clone()).or_default() += 1;
        for option in &drink.options {
            *options.entry(format!("{}.{}", option.group_id, option.option_id)).or_default() += 1;
        }
    }
    if per_hour.len() != 24 {
        *per_hour = vec![0; 24];
    }
    per_hour[hour % 24] += 1;
}

/// The pure part: how one change moves the figures.
pub fn apply(m: &mut DayMetrics, what: &Happened) {
    match what {
        Happened::Submitted { order, hour } => {
            count_submission(&mut m.submitted, &mut m.drinks, &mut m.options, &mut m.per_hour, order, *hour)
        }
        Happened::Finished(order) => match order.state {
            crate::order::OrderState::Completed => {
                m.completed += 1;
                if let Some(barista) = &order.barista_id {
                    *m.baristas.entry(barista.clone()).or_default() += 1;
                }
                let done = order.finished_ms.unwrap_or_default();
                if let Some(submitted) = order.submitted_ms {
                    m.wait.observe(((done - submitted).max(0) / 1000) as u64);
                }
                if let Some(claimed) = order.claimed_ms {
                    let seconds = ((done - claimed).max(0) / 1000) as u64;
                    m.claim_to_complete.observe(seconds);
                    if let Some(drink) = &order.drink {
                        let recent = m.recent_by_drink.entry(drink.id.clone()).or_default();
                        recent.push(seconds);
                        if recent.len() > RECENT_PER_DRINK {
                            recent.remove(0);
                        }
                    }
                }
            }
            crate::order::OrderState::Cancelled => match order.cancelled_by {
                Some(Canceller::Customer) => m.cancelled_customer += 1,
                Some(Canceller::Barista) => m.cancelled_barista += 1,
                Some(Canceller::Admin) | None => m.cancelled_admin += 1,
            },
            crate::order::OrderState::TimedOut => match order.timeout_cause {
                Some(TimeoutCause::Customer) => m.timed_out_customer += 1,
                _ => m.timed_out_barista += 1,
            },
            _ => {}
        },
    }
}

/// The rolling average (seconds) of a drink's last completions, if any.
pub fn drink_average(m: &DayMetrics, drink: &str) -> Option<u64> {
    recent_average(&m.recent_by_drink, drink)
}

/// [`drink_average`] from the recent completions alone.
pub fn recent_average(recent: &RecentByDrink, drink: &str) -> Option<u64> {
    let recent = recent.get(drink).filter(|r| !r.is_empty())?;
    Some(recent.iter().sum::<u64>() / recent.len() as u64)
}

impl Histogram {
    /// Adds the observations of `other`.
    fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if self.buckets.len() != BUCKETS.len() + 1 {
            self.buckets = vec![0; BUCKETS.len() + 1];
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }
}

impl DayMetrics {
    /// Adds the figures of another part of the day's record.
    pub fn merge(&mut self, other: &DayMetrics) {
        for (mine, theirs) in [
            (&mut self.started, other.started),
            (&mut self.submitted, other.submitted),
            (&mut self.completed, other.completed),
            (&mut self.cancelled_customer, other.cancelled_customer),
            (&mut self.cancelled_barista, other.cancelled_barista),
            (&mut self.cancelled_admin, other.cancelled_admin),
            (&mut self.timed_out_customer, other.timed_out_customer),
            (&mut self.timed_out_barista, other.timed_out_barista),
        ] {
            *mine += theirs;
        }
        for (mine, theirs) in [(&mut self.drinks, &other.drinks), (&mut self.options, &other.options)] {
            for (name, n) in theirs {
                *mine.entry(name.clone()).or_default() += n;
            }
        }
        for (barista, n) in &other.baristas {
            *self.baristas.entry(barista.clone()).or_default() += n;
        }
        if !other.per_hour.is_empty() {
            if self.per_hour.len() != 24 {
                self.per_hour = vec![0; 24];
            }
            for (mine, theirs) in self.per_hour.iter_mut().zip(&other.per_hour) {
                *mine += theirs;
            }
        }
        self.wait.merge(&other.wait);
        self.claim_to_complete.merge(&other.claim_to_complete);
        for (drink, recent) in &other.recent_by_drink {
            let mine = self.recent_by_drink.entry(drink.clone()).or_default();
            mine.extend(recent);
            let extra = mine.len().saturating_sub(RECENT_PER_DRINK);
            mine.drain(..extra);
        }
    }
}

/// The day's figures (zeros for a day without orders).
pub fn day_metrics(kv: &impl KeyValue, shop: &ShopId, day: &str) -> Result<DayMetrics, DomainError> {
    let mut figures = day_record(kv, shop, day)?;
    // Records written before starts had a counter of their own hold the earlier ones.
    figures.started += kv.counter(&started_key(shop, day))?.max(0) as u64;
    Ok(figures)
}

/// The day's record alone, every part of it: every figure but `started`.
pub fn day_record(kv: &impl KeyValue, shop: &ShopId, day: &str) -> Result<DayMetrics, DomainError> {
    let mut figures = DayMetrics::default();
    for part in parts(shop, day).read_all::<DayMetrics>(kv)? {
        figures.merge(&part);
    }
    Ok(figures)
}

/// The day's recent completion times per drink, for wait estimates (on
/// routes phones read often): part 1 of the day's record when it exists
/// (one read; any other part only holds the changes of writers that found
/// none when they came), else every part.
pub fn recent_by_drink(kv: &impl KeyValue, shop: &ShopId, day: &str) -> Result<RecentByDrink, DomainError> {
    match crate::atomic::read::<DayMetrics>(kv, &key(shop, day))? {
        Some((first, _)) => Ok(first.data.recent_by_drink),
        None => Ok(day_record(kv, shop, day)?.recent_by_drink),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub max: u64,
}

fn summary(h: &Histogram) -> Summary {
    Summary { count: h.count, p50: h.quantile(0.5), p90: h.quantile(0.9), max: h.max }
}

/// `GET /api/shops/:shop/metrics` (DESIGN §6).
pub fn view(shop: &ShopId, day: &str, m: &DayMetrics) -> serde_json::Value {
    let per_hour = if m.per_hour.len() == 24 { m.per_hour.clone() } else { vec![0; 24] };
    let averages: BTreeMap<&String, u64> =
        m.recent_by_drink.keys().filter_map(|d| drink_average(m, d).map(|a| (d, a))).collect();
    serde_json::json!({
        "shopId": shop,
        "day": day,
        "orders": {
            "started": m.started,
            "submitted": m.submitted,
            "completed": m.completed,
            "cancelled": { "customer": m.cancelled_customer, "barista": m.cancelled_barista, "admin": m.cancelled_admin },
            "timedOut": { "customer": m.timed_out_customer, "barista": m.timed_out_barista },
        },
        "drinks": m.drinks,
        "options": m.options,
        "perHour": per_hour,
        "baristas": m.baristas,
        "waitSeconds": summary(&m.wait),
        "claimToCompleteSeconds": summary(&m.claim_to_complete),
        "drinkAverageSeconds": averages,
    })
}

/// Prometheus text exposition of the given shops' figures for their current day.
pub fn prometheus(shops: &[(ShopId, DayMetrics, u64)]) -> String {
    let mut out = String::new();
    out.push_str("# HELP spinpresso_orders_total Orders of the current business day by outcome.\n");
    out.push_str("# TYPE spinpresso_orders_total counter\n");
    for (shop, m, _) in shops {
        let outcomes = [
            ("started", m.started),
            ("submitted", m.submitted),
            ("completed", m.completed),
            ("cancelled_customer", m.cancelled_customer),
            ("cancelled_barista", m.cancelled_barista),
            ("cancelled_admin", m.cancelled_admin),
            ("timed_out_customer", m.timed_out_customer),
            ("timed_out_barista", m.timed_out_barista),
        ];
        for (outcome, n) in outcomes {
            out.push_str(&format!("spinpresso_orders_total{{shop=\"{shop}\",outcome=\"{outcome}\"}} {n}\n"));
        }
    }
    out.push_str("# HELP spinpresso_drinks_total Drinks submitted in the current business day by drink.\n");
    out.push_str("# TYPE spinpresso_drinks_total counter\n");
    for (shop, m, _) in shops {
        for (drink, n) in &m.drinks {
            out.push_str(&format!("spinpresso_drinks_total{{shop=\"{shop}\",drink=\"{drink}\"}} {n}\n"));
        }
    }
    out.push_str("# HELP spinpresso_wait_seconds Time from submission to completion.\n");
    out.push_str("# TYPE spinpresso_wait_seconds histogram\n");
    for (shop, m, _) in shops {
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += m.wait.buckets.get(i).copied().unwrap_or(0);
            out.push_str(&format!("spinpresso_wait_seconds_bucket{{shop=\"{shop}\",le=\"{bound}\"}} {cumulative}\n"));
        }
        out.push_str(&format!("spinpresso_wait_seconds_bucket{{shop=\"{shop}\",le=\"+Inf\"}} {}\n", m.wait.count));
        out.push_str(&format!("spinpresso_wait_seconds_sum{{shop=\"{shop}\"}} {}\n", m.wait.sum));
        out.push_str(&format!("spinpresso_wait_seconds_count{{shop=\"{shop}\"}} {}\n", m.wait.count));
    }
    out.push_str("# HELP spinpresso_open_orders Orders open now.\n");
    out.push_str("# TYPE spinpresso_open_orders gauge\n");
    for (shop, _, open) in shops {
        out.push_str(&format!("spinpresso_open_orders{{shop=\"{shop}\"}} {open}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_come_from_the_buckets() {
        let mut h = Histogram::default();
        for s in [10, 20, 40, 50, 100, 100, 200, 200, 250, 1000] {
            h.observe(s);
        }
        assert_eq!((h.count, h.sum, h.max), (10, 1970, 1000));
        assert_eq!(h.quantile(0.5), 120);
        assert_eq!(h.quantile(0.9), 300);
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn the_rolling_average_keeps_the_last_ten() {
        let mut m = DayMetrics::default();
        m.recent_by_drink.insert("latte".into(), vec![]);
        for s in 1..=12 {
            let recent = m.recent_by_drink.get_mut("latte").unwrap();
            recent.push(s * 10);
            if recent.len() > RECENT_PER_DRINK {
                recent.remove(0);
            }
        }
        assert_eq!(drink_average(&m, "latte"), Some(75));
        assert_eq!(drink_average(&m, "mocha"), None);
    }

    #[test]
    fn prometheus_text_has_help_type_and_labels() {
        let mut m = DayMetrics { started: 3, completed: 2, ..Default::default() };
        m.drinks.insert("latte".into(), 2);
        m.wait.observe(70);
        let text = prometheus(&[(ShopId::main(), m, 1)]);
        assert!(text.contains("# TYPE spinpresso_orders_total counter\n"));
        assert!(text.contains("spinpresso_orders_total{shop=\"main\",outcome=\"completed\"} 2\n"));
        assert!(text.contains("spinpresso_drinks_total{shop=\"main\",drink=\"latte\"} 2\n"));
        assert!(text.contains("spinpresso_wait_seconds_bucket{shop=\"main\",le=\"60\"} 0\n"));
        assert!(text.contains("spinpresso_wait_seconds_bucket{shop=\"main\",le=\"90\"} 1\n"));
        assert!(text.contains("spinpresso_open_orders{shop=\"main\"} 1\n"));
    }

    fn submitted(drink: &str, options: &[(&str, &str)]) -> Order {
        let chosen = |(group, option): &(&str, &str)| crate::order::ChosenOption {
            group_id: group.to_string(),
            option_id: option.to_string(),
            name: option.to_string(),
        };
        Order {
            id: format!("o-{drink}"),
            shop_id: "main".into(),
            customer_id: "c".into(),
            display_name: None,
            day: "2026-11-30".into(),
            slot: 1,
            number: Some(1),
            state: crate::order::OrderState::Queued,
            drink: Some(crate::order::OrderedDrink {
                id: drink.into(),
                name: drink.into(),
                icon: String::new(),
                options: options.iter().map(chosen).collect(),
            }),
            created_ms: 0,
            submitted_ms: Some(1_000),
            claimed_ms: Some(61_000),
            finished_ms: Some(121_000),
            deadline_ms: None,
            barista_id: Some("b1".into()),
            cancelled_by: None,
            timeout_cause: None,
            robot: false,
        }
    }

    #[test]
    fn a_submission_counted_on_the_stored_json_writes_what_the_whole_record_would() {
        let (kv, shop, day) = (crate::kv::MemoryKv::new(), ShopId::main(), "2026-11-30");
        let (whole, partial) = (crate::kv::MemoryKv::new(), &kv);
        // The day's first change creates the record (the whole-record path).
        let latte = submitted("latte", &[("milk", "oat"), ("size", "large")]);
        let recent = record_submitted(partial, &shop, day, "w1", &latte, 2).unwrap();
        assert!(recent.is_empty());
        record(&whole, &shop, day, "w1", Happened::Submitted { order: &latte, hour: 2 }).unwrap();
        let mut completed = latte.clone();
        completed.state = crate::order::OrderState::Completed;
        for kv in [partial, &whole] {
            record(kv, &shop, day, "w2", Happened::Finished(&completed)).unwrap();
        }
        // Then submissions on a record with histograms, baristas and recent times.
        for (n, order) in
            [submitted("mocha", &[]), latte.clone(), submitted("latte", &[("milk", "soy")])].iter().enumerate()
        {
            let writer = format!("w{}", n + 3);
            let recent = record_submitted(partial, &shop, day, &writer, order, 5 + n).unwrap();
            assert_eq!(recent, BTreeMap::from([("latte".to_string(), vec![60])]));
            record(&whole, &shop, day, &writer, Happened::Submitted { order, hour: 5 + n }).unwrap();
        }
        let stored = |kv: &crate::kv::MemoryKv| kv.get(&key(&shop, day)).unwrap().unwrap();
        assert_eq!(String::from_utf8(stored(partial)).unwrap(), String::from_utf8(stored(&whole)).unwrap());
        // The stored JSON is in the shape the partial path reads (it would not fall back).
        let bytes = stored(partial);
        let data = crate::json_bytes::split_versioned(&bytes).unwrap().data;
        let figures: SubmittedFigures = serde_json::from_slice(data).unwrap();
        assert_eq!(crate::kv::to_json(&figures), data);
        let figures = day_record(partial, &shop, day).unwrap();
        assert_eq!((figures.submitted, figures.completed), (4, 1));
        assert_eq!(figures.drinks, BTreeMap::from([("latte".into(), 3), ("mocha".into(), 1)]));
        assert_eq!(figures.options["milk.oat"], 2);
        assert_eq!((figures.per_hour[2], figures.per_hour[5], figures.per_hour[7]), (1, 1, 1));
    }

    #[test]
    fn concurrent_submissions_and_completions_are_all_counted() {
        let kv = std::sync::Arc::new(crate::kv::MemoryKv::new());
        let (shop, day) = (ShopId::main(), "2026-11-30");
        record_submitted(&*kv, &shop, day, "first", &submitted("latte", &[]), 0).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (kv, shop) = (kv.clone(), shop.clone());
                std::thread::spawn(move || {
                    let mut done = submitted("latte", &[]);
                    done.state = crate::order::OrderState::Completed;
                    for i in 0..25 {
                        let writer = format!("t{t}-{i}");
                        if t % 2 == 0 {
                            record_submitted(&*kv, &shop, day, &writer, &submitted("mocha", &[]), 1).unwrap();
                        } else {
                            record(&*kv, &shop, day, &writer, Happened::Finished(&done)).unwrap();
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let figures = day_record(&*kv, &shop, day).unwrap();
        assert_eq!((figures.submitted, figures.completed, figures.drinks["mocha"]), (101, 100, 100));
        assert_eq!(figures.per_hour[1], 100);
    }
}

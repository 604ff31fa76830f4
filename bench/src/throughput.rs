//! Requests per second and latency of single endpoints and of the two
//! order flows, at each client count, next to the no-op component's ceiling.

use crate::api::{self, ADMIN_PIN, BARISTA_PIN, DISPLAY_PIN};
use crate::client::Conn;
use crate::load::{self, Stats, Work};
use anyhow::Result;
use hyper::Method;
use serde_json::json;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// A shop never holds more open orders than the default capacity, so flows
/// are spread over as many shops as they need (each one a pop-up bar).
const ORDERS_PER_SHOP: u64 = 20;

pub struct Row {
    pub scenario: &'static str,
    /// What one iteration is, e.g. "redeem + submit".
    pub unit: &'static str,
    pub stats: Stats,
    /// This row's requests/s over the no-op's at the same client count.
    pub vs_noop: f64,
}

pub struct Settings {
    pub clients: Vec<usize>,
    pub seconds: f64,
    pub flows_per_client: u64,
    pub min_flows: u64,
}

pub async fn measure(addr: SocketAddr, settings: &Settings) -> Result<Vec<Row>> {
    let mut conn = Conn::new(addr);
    let admin = api::staff_token(&mut conn, ADMIN_PIN).await?;
    let display = api::staff_token(&mut conn, DISPLAY_PIN).await?;
    let barista = Rc::new(api::staff_token(&mut conn, BARISTA_PIN).await?);

    // The board a display shows: a shop with a full queue.
    let bar = json!({ "drinksPerCode": 1000, "codeRotationSeconds": 86400 });
    api::open_shop(&mut conn, &admin, "board", &bar).await?;
    let code = api::current_code(&mut conn, &display, "board").await?;
    for customer in api::customer_tokens(addr, ORDERS_PER_SHOP).await? {
        api::order_espresso(&mut conn, &customer, "board", &code).await?;
    }

    // Warm-up: every route once through, then the host's path for a second.
    let _ = fixed(addr, 16, 1.0, "/_bench/noop", Method::GET).await;

    let run_for = settings.seconds;
    let mut rows = Vec::new();
    for &clients in &settings.clients {
        // The machine's speed drifts (shared cores): each row is measured
        // between two slices of the no-op, and compared with those two.
        let mut ceiling = Ceiling::start(addr, clients, run_for / 2.0).await;
        let group = rows.len();
        let increment = fixed(addr, clients, run_for, "/_bench/increment", Method::POST).await;
        rows.push(ceiling.row("key-value increment", "POST, one increment", increment).await);
        let config = fixed(addr, clients, run_for, "/api/shops/main/config", Method::GET).await;
        rows.push(ceiling.row("config read", "GET", config).await);
        let board = fixed(addr, clients, run_for, "/api/shops/board/board", Method::GET).await;
        rows.push(ceiling.row("board read", "GET, 20 orders", board).await);

        let flows = (settings.flows_per_client * clients as u64).max(settings.min_flows);
        let (customer, orders) = customer_flow(&mut conn, addr, &admin, &display, clients, flows).await?;
        rows.push(ceiling.row("customer flow", "redeem + submit", customer).await);
        let barista = barista_flow(addr, barista.clone(), clients, orders).await;
        rows.push(ceiling.row("barista flow", "claim + complete", barista).await);

        let noop = ceiling.later.into_iter().fold(ceiling.first, Stats::merged);
        rows.insert(group, Row { scenario: "no-op component", unit: "GET", stats: noop, vs_noop: 1.0 });
    }
    Ok(rows)
}

/// Slices of the no-op component's load, run between the other rows.
struct Ceiling {
    addr: SocketAddr,
    clients: usize,
    seconds: f64,
    /// The slice just before the row being measured.
    last: (u64, Duration),
    /// Every slice: together, the no-op's own row.
    first: Stats,
    later: Vec<Stats>,
}

impl Ceiling {
    async fn start(addr: SocketAddr, clients: usize, seconds: f64) -> Self {
        let first = fixed(addr, clients, seconds, "/_bench/noop", Method::GET).await;
        Self { addr, clients, seconds, last: (first.requests, first.elapsed), first, later: Vec::new() }
    }

    /// The row for `stats`, against the no-op slices just before and just after it.
    async fn row(&mut self, scenario: &'static str, unit: &'static str, stats: Stats) -> Row {
        let next = fixed(self.addr, self.clients, self.seconds, "/_bench/noop", Method::GET).await;
        let (requests, elapsed) = (self.last.0 + next.requests, self.last.1 + next.elapsed);
        let ceiling = requests as f64 / elapsed.as_secs_f64();
        self.last = (next.requests, next.elapsed);
        self.later.push(next);
        Row { scenario, unit, vs_noop: stats.rps() / ceiling, stats }
    }
}

/// One request over and over for `seconds` (after a short unmeasured warm-up).
async fn fixed(addr: SocketAddr, clients: usize, seconds: f64, path: &'static str, method: Method) -> Stats {
    let step = move |_, mut client: load::Client| {
        let method = method.clone();
        async move {
            client.call(&[200], method, path, None, None).await;
            client
        }
    };
    load::run(addr, clients, Work::For(Duration::from_millis(200)), step.clone()).await;
    load::run(addr, clients, Work::For(Duration::from_secs_f64(seconds)), step).await
}

/// `flows` customers each redeem a code and submit a drink, spread over
/// fresh shops; returns the stats and the orders, queued for the baristas.
async fn customer_flow(
    conn: &mut Conn,
    addr: SocketAddr,
    admin: &str,
    display: &str,
    clients: usize,
    flows: u64,
) -> Result<(Stats, Vec<String>)> {
    let shop_count = flows.div_ceil(ORDERS_PER_SHOP);
    let mut shops = Vec::new();
    for k in 0..shop_count {
        let shop = format!("flow-{clients}-{k}");
        let config = json!({ "drinksPerCode": 1000, "codeRotationSeconds": 86400 });
        api::open_shop(conn, admin, &shop, &config).await?;
        let code = api::current_code(conn, display, &shop).await?;
        shops.push((shop, json!({ "code": code })));
    }
    let customers = Rc::new(api::customer_tokens(addr, flows).await?);
    let shops = Rc::new(shops);
    let orders = Rc::new(RefCell::new(Vec::with_capacity(flows as usize)));
    let placed = orders.clone();
    let stats = load::run(addr, clients, Work::Count(flows), move |i, mut client| {
        let (customers, shops, placed) = (customers.clone(), shops.clone(), placed.clone());
        async move {
            let (shop, code) = &shops[(i % shops.len() as u64) as usize];
            let customer = Some(customers[i as usize].as_str());
            let path = format!("/api/shops/{shop}/orders");
            let Some(order) = client.call(&[201], Method::POST, &path, customer, Some(code)).await else {
                return client;
            };
            let id = order.json()["id"].as_str().unwrap_or_default().to_string();
            let path = format!("/api/orders/{id}/drink");
            if client.call(&[200], Method::PUT, &path, customer, Some(&api::espresso())).await.is_some() {
                placed.borrow_mut().push(id);
            }
            client
        }
    })
    .await;
    let orders = std::mem::take(&mut *orders.borrow_mut());
    Ok((stats, orders))
}

/// Baristas claim and complete each order once.
async fn barista_flow(addr: SocketAddr, barista: Rc<String>, clients: usize, orders: Vec<String>) -> Stats {
    let orders = Rc::new(orders);
    let count = orders.len() as u64;
    load::run(addr, clients, Work::Count(count), move |i, mut client| {
        let (orders, barista) = (orders.clone(), barista.clone());
        async move {
            let id = &orders[i as usize];
            let token = Some(barista.as_str());
            let path = format!("/api/orders/{id}/claim");
            if client.call(&[200], Method::POST, &path, token, Some(&json!({}))).await.is_some() {
                let path = format!("/api/orders/{id}/complete");
                client.call(&[200], Method::POST, &path, token, Some(&json!({}))).await;
            }
            client
        }
    })
    .await
}

//! A conference rush: a crowd of customers all want a drink at once, the shop
//! takes 20 open orders at a time, a few baristas work through the queue.
//! Customers refused with `shop_full` wait a moment and try again.

use crate::api::{self, ADMIN_PIN, BARISTA_PIN, DISPLAY_PIN};
use crate::client::Conn;
use crate::host::{Host, Usage};
use crate::load::{histogram, Client};
use anyhow::Result;
use hdrhistogram::Histogram;
use hyper::Method;
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

const SHOP: &str = "rush";
/// How long a refused customer waits before trying again.
const RETRY_AFTER: Duration = Duration::from_millis(20);

pub struct RushResult {
    pub orders: u64,
    pub completed: u64,
    pub customers_at_once: usize,
    pub baristas: usize,
    pub wall: Duration,
    pub capacity_refusals: u64,
    pub errors: u64,
    pub samples: Vec<String>,
    pub latencies: Histogram<u64>,
    pub usage: Usage,
}

#[derive(Default)]
struct Shared {
    queue: RefCell<VecDeque<String>>,
    completed: Cell<u64>,
    /// Orders that will never reach the queue (their customer gave up on an error).
    lost: Cell<u64>,
    refusals: Cell<u64>,
}

pub async fn measure(host: &Host, orders: u64, customers_at_once: usize, baristas: usize) -> Result<RushResult> {
    let addr = host.addr;
    let mut conn = Conn::new(addr);
    let admin = api::staff_token(&mut conn, ADMIN_PIN).await?;
    let display = api::staff_token(&mut conn, DISPLAY_PIN).await?;
    let barista = Rc::new(api::staff_token(&mut conn, BARISTA_PIN).await?);
    // Default capacity (20 open orders, one per customer); one code for the whole rush.
    api::open_shop(&mut conn, &admin, SHOP, &json!({ "drinksPerCode": 1000, "codeRotationSeconds": 86400 })).await?;
    let code = Rc::new(json!({ "code": api::current_code(&mut conn, &display, SHOP).await? }));
    let customers = Rc::new(api::customer_tokens(addr, orders).await?);

    let before = host.usage()?;
    let started = Instant::now();
    let shared = Rc::new(Shared::default());
    let next_customer = Rc::new(Cell::new(0u64));
    let mut tasks = Vec::new();
    for _ in 0..customers_at_once {
        let (shared, next, customers, code) = (shared.clone(), next_customer.clone(), customers.clone(), code.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut client = Client::new(addr);
            while next.get() < orders {
                let customer = Some(customers[next.get() as usize].as_str());
                next.set(next.get() + 1);
                if let Some(id) = order_when_there_is_room(&mut client, &shared, customer, &code).await {
                    let path = format!("/api/orders/{id}/drink");
                    if client.call(&[200], Method::PUT, &path, customer, Some(&api::espresso())).await.is_some() {
                        shared.queue.borrow_mut().push_back(id);
                        continue;
                    }
                }
                shared.lost.set(shared.lost.get() + 1);
            }
            client
        }));
    }
    for _ in 0..baristas {
        let (shared, barista) = (shared.clone(), barista.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut client = Client::new(addr);
            let token = Some(barista.as_str());
            while shared.completed.get() + shared.lost.get() < orders {
                let Some(id) = shared.queue.borrow_mut().pop_front() else {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                };
                let empty = json!({});
                let (claim, complete) = (format!("/api/orders/{id}/claim"), format!("/api/orders/{id}/complete"));
                if client.call(&[200], Method::POST, &claim, token, Some(&empty)).await.is_some()
                    && client.call(&[200], Method::POST, &complete, token, Some(&empty)).await.is_some()
                {
                    shared.completed.set(shared.completed.get() + 1);
                    continue;
                }
                shared.lost.set(shared.lost.get() + 1);
            }
            client
        }));
    }
    let mut latencies = histogram();
    let (mut errors, mut samples) = (0, Vec::new());
    for task in tasks {
        let client = task.await?;
        latencies.add(&client.latencies)?;
        errors += client.errors;
        samples.extend(client.samples);
    }
    let wall = started.elapsed();
    let after = host.usage()?;
    samples.truncate(3);
    Ok(RushResult {
        orders,
        completed: shared.completed.get(),
        customers_at_once,
        baristas,
        wall,
        capacity_refusals: shared.refusals.get(),
        errors,
        samples,
        latencies,
        usage: Usage { cpu_seconds: after.cpu_seconds - before.cpu_seconds, peak_rss_mib: after.peak_rss_mib },
    })
}

/// Redeems the code, waiting and retrying while the shop is full.
async fn order_when_there_is_room(
    client: &mut Client,
    shared: &Shared,
    customer: Option<&str>,
    code: &serde_json::Value,
) -> Option<String> {
    let path = format!("/api/shops/{SHOP}/orders");
    loop {
        let reply = client.call(&[201, 409], Method::POST, &path, customer, Some(code)).await?;
        if reply.status == 201 {
            return reply.json()["id"].as_str().map(str::to_string);
        }
        if reply.error_code() != "shop_full" {
            client.error(format!("redeem refused: {}", reply.text()));
            return None;
        }
        shared.refusals.set(shared.refusals.get() + 1);
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

//! The app's API as the benchmark uses it to set things up (untimed).

use crate::client::Conn;
use crate::load::{self, Work};
use anyhow::{anyhow, Result};
use hyper::Method;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

/// The staff PINs of the benchmark's host (see [`SECRETS`]).
pub const ADMIN_PIN: &str = "42424242";
pub const BARISTA_PIN: &str = "31313131";
pub const DISPLAY_PIN: &str = "20202020";

/// The secrets the benchmark's host runs with (spin.toml publishes none).
pub const SECRETS: [(&str, &str); 5] = [
    ("SPIN_VARIABLE_SIGNING_KEY", "bench-signing-key-0f6a2c9d41e87b53a6c0d9e2f1b47a8c"),
    ("SPIN_VARIABLE_ADMIN_PIN", ADMIN_PIN),
    ("SPIN_VARIABLE_BARISTA_PIN", BARISTA_PIN),
    ("SPIN_VARIABLE_DISPLAY_PIN", DISPLAY_PIN),
    ("SPIN_VARIABLE_SWEEPER_TOKEN", "bench-sweeper-token-6d1e0b9a"),
];

pub async fn staff_token(conn: &mut Conn, pin: &str) -> Result<String> {
    let reply = conn.expect(200, Method::POST, "/api/staff/login", None, Some(&json!({ "pin": pin }))).await?;
    token_of(&reply)
}

fn token_of(reply: &Value) -> Result<String> {
    reply["token"].as_str().map(str::to_string).ok_or_else(|| anyhow!("no token in {reply}"))
}

/// `count` customer sessions, made on 16 connections at once.
pub async fn customer_tokens(addr: SocketAddr, count: u64) -> Result<Vec<String>> {
    let tokens = Rc::new(RefCell::new(Vec::with_capacity(count as usize)));
    let collected = tokens.clone();
    let stats = load::run(addr, 16, Work::Count(count), move |_, mut client| {
        let tokens = collected.clone();
        async move {
            if let Some(reply) = client.call(&[200], Method::POST, "/api/session", None, Some(&json!({}))).await {
                if let Ok(token) = token_of(&reply.json()) {
                    tokens.borrow_mut().push(token);
                }
            }
            client
        }
    })
    .await;
    let tokens = std::mem::take(&mut *tokens.borrow_mut());
    if stats.errors > 0 || tokens.len() as u64 != count {
        return Err(anyhow!("creating customer sessions failed: {:?}", stats.samples));
    }
    Ok(tokens)
}

/// Creates an open shop with the default menu and `config` on top of the defaults.
pub async fn open_shop(conn: &mut Conn, admin: &str, shop: &str, config: &Value) -> Result<()> {
    let created = json!({ "shopId": shop, "name": format!("Bench {shop}") });
    conn.expect(201, Method::POST, "/api/shops", Some(admin), Some(&created)).await?;
    conn.expect(200, Method::PUT, &format!("/api/shops/{shop}/config"), Some(admin), Some(config)).await?;
    conn.expect(200, Method::POST, &format!("/api/shops/{shop}/open"), Some(admin), Some(&json!({}))).await?;
    Ok(())
}

/// The code the shop's display shows now.
pub async fn current_code(conn: &mut Conn, display: &str, shop: &str) -> Result<String> {
    let qr = conn.expect(200, Method::GET, &format!("/api/shops/{shop}/qr"), Some(display), None).await?;
    qr["code"].as_str().map(str::to_string).ok_or_else(|| anyhow!("no code in {qr}"))
}

/// Redeems `code` and asks for an espresso; the order's id and number.
pub async fn order_espresso(conn: &mut Conn, customer: &str, shop: &str, code: &str) -> Result<(String, u64)> {
    let path = format!("/api/shops/{shop}/orders");
    let order = conn.expect(201, Method::POST, &path, Some(customer), Some(&json!({ "code": code }))).await?;
    let id = order["id"].as_str().ok_or_else(|| anyhow!("no order id in {order}"))?.to_string();
    let queued = submit(conn, customer, &id).await?;
    Ok((id, queued["number"].as_u64().unwrap_or_default()))
}

pub async fn submit(conn: &mut Conn, customer: &str, id: &str) -> Result<Value> {
    conn.expect(200, Method::PUT, &format!("/api/orders/{id}/drink"), Some(customer), Some(&espresso())).await
}

pub fn espresso() -> Value {
    json!({ "drinkId": "espresso" })
}

//! One keep-alive HTTP/1.1 connection per simulated client, as a phone or a
//! tablet would hold; requests on it go one after another.

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use tokio::net::TcpStream;

pub struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The `error.code` of a JSON error reply, or "" for anything else.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_string()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

pub fn request(method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path).header("host", "127.0.0.1");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).expect("a well-formed request")
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// Opens the connection, unless it is open already.
    pub async fn connect(&mut self) -> Result<()> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(connect(self.addr).await?);
        }
        Ok(())
    }

    /// Sends one request, reconnecting first if the server closed the connection.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply> {
        self.connect().await?;
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await.map_err(|e| anyhow!("connection not ready: {e}"))?;
        let response = match sender.send_request(request(method, path, token, body)).await {
            Ok(response) => response,
            Err(e) => {
                self.sender = None;
                return Err(anyhow!("{path}: {e}"));
            }
        };
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| anyhow!("{path}: {e}"))?.to_bytes();
        Ok(Reply { status, body })
    }

    /// Like [`Conn::call`], but anything but `expected` is an error naming the reply.
    pub async fn expect(
        &mut self,
        expected: u16,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value> {
        let reply = self.call(method.clone(), path, token, body).await?;
        if reply.status != expected {
            return Err(anyhow!("{method} {path}: expected {expected}, got {}: {}", reply.status, reply.text()));
        }
        Ok(reply.json())
    }
}

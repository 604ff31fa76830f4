//! The request a handler gets: method, path, headers and body, read once
//! from the host.
//!
//! spin-sdk's `Request` parses the URL, lower-cases every header name into
//! a hashed map and lower-cases every name looked up: about a tenth of the
//! guest's work on a board read. Handlers here need a few headers by name
//! (Spin's routing headers, auth, content type), so the headers stay as the
//! host sent them, in a list.

use crate::request_head;
use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Response};

pub struct Request {
    method: Method,
    /// The path and query, e.g. `/api/shops/main/orders?state=queued`.
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Request {
    /// The head of a request from the host, without reading its body (event streams).
    pub fn head_of(incoming: &IncomingRequest) -> Self {
        let target = incoming.path_with_query().unwrap_or_else(|| "/".to_string());
        Self { method: incoming.method(), target, headers: incoming.headers().entries(), body: Vec::new() }
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// A header's value (names compare without case); `None` when absent or not UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        request_head::header(&self.headers, name)
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        request_head::split_target(&self.target).0
    }

    /// The query string (without `?`), or "".
    pub fn query(&self) -> &str {
        request_head::split_target(&self.target).1
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// The host's request body could not be read.
pub struct UnreadableBody(String);

impl IntoResponse for UnreadableBody {
    fn into_response(self) -> Response {
        eprintln!("request body unreadable: {}", self.0);
        crate::http::error(400, "unreadable_body", "the request body could not be read")
    }
}

#[async_trait::async_trait]
impl TryFromIncomingRequest for Request {
    type Error = UnreadableBody;

    async fn try_from_incoming_request(incoming: IncomingRequest) -> Result<Self, Self::Error> {
        let mut request = Self::head_of(&incoming);
        request.body = incoming.into_body().await.map_err(|e| UnreadableBody(e.to_debug_string()))?;
        Ok(request)
    }
}

//! The request a handler gets: method, path, headers and body, read once
//! from the host.
//!
//! spin-sdk's `Request` parses the URL, lower-cases every header name into
//! a hashed map and lower-cases every name looked up: about a tenth of the
//! guest's work on a board read. Handlers here need a few headers by name
//! (Spin's routing headers, auth, content type), so the headers stay as the
//! host sent them, in a list.

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
    /// A request without a body, from its head (event streams, tests).
    pub fn from_head(method: Method, target: impl Into<String>, headers: Vec<(String, Vec<u8>)>) -> Self {
        Self { method, target: target.into(), headers, body: Vec::new() }
    }

    /// The head of a request from the host, without reading its body.
    pub fn head_of(incoming: &IncomingRequest) -> Self {
        let target = incoming.path_with_query().unwrap_or_else(|| "/".to_string());
        Self::from_head(incoming.method(), target, incoming.headers().entries())
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// A header's value (names compare without case); `None` when absent or not UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        let (_, value) = self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        std::str::from_utf8(value).ok()
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(path, _)| path)
    }

    /// The query string (without `?`), or "".
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, query)| query)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_paths_and_queries_read_as_spin_sends_them() {
        let headers = vec![
            ("spin-path-match-shop".to_string(), b"main".to_vec()),
            ("content-type".to_string(), b"application/json".to_vec()),
            ("x-bytes".to_string(), vec![0xff]),
        ];
        let req = Request::from_head(Method::Get, "/api/shops/main/orders?state=queued&x=1", headers);
        assert_eq!(req.header("Content-Type"), Some("application/json"));
        assert_eq!(req.header("spin-path-match-shop"), Some("main"));
        assert_eq!((req.header("x-bytes"), req.header("absent")), (None, None));
        assert_eq!((req.path(), req.query()), ("/api/shops/main/orders", "state=queued&x=1"));
        let bare = Request::from_head(Method::Post, "/api/session", Vec::new());
        assert_eq!((bare.path(), bare.query(), bare.body()), ("/api/session", "", &[][..]));
    }
}

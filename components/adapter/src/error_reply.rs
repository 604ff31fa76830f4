//! What an error answers: its status, the one error shape of the API
//! (`{"error": {"code", "message"}}`), and when to come back.

use spinpresso_domain::DomainError;

/// The headers of every JSON answer: never cached, never sniffed as another type.
pub const JSON_HEADERS: [(&str, &str); 3] =
    [("content-type", "application/json"), ("cache-control", "no-store"), ("x-content-type-options", "nosniff")];

pub struct ErrorReply {
    pub status: u16,
    pub body: serde_json::Value,
    /// The `retry-after` header, in seconds.
    pub retry_after: Option<&'static str>,
}

pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code, "message": message } })
}

/// The answer to an error. What went wrong inside (a store's message, a
/// corrupt record) is logged, never sent: the client learns only that the
/// store is unavailable.
pub fn error_reply(e: &DomainError) -> ErrorReply {
    let body = match e {
        DomainError::Store(inner) => {
            eprintln!("key-value store error: {inner}");
            error_body(e.code(), "the key-value store is unavailable right now; try again in a moment")
        }
        _ => error_body(e.code(), &e.message()),
    };
    // Sign-in limits slide over a minute; a store or a shop being set up is back in seconds.
    let retry_after = match e.status() {
        429 => Some("60"),
        503 => Some("5"),
        _ => None,
    };
    ErrorReply { status: e.status(), body, retry_after }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spinpresso_domain::kv::KvError;

    #[test]
    fn store_failures_are_answered_without_their_inner_details() {
        let inner = KvError::Store("redis: connection refused to 10.1.2.3:6379 (password=hunter2)".into());
        let reply = error_reply(&DomainError::Store(inner));
        assert_eq!((reply.status, reply.retry_after), (503, Some("5")));
        let text = reply.body.to_string();
        assert!(!text.contains("10.1.2.3") && !text.contains("hunter2"), "{text}");
        assert_eq!(reply.body["error"]["code"], "store_unavailable");
        let corrupt = DomainError::Store(KvError::Corrupt { key: "order/x".into(), reason: "expected value".into() });
        assert!(!error_reply(&corrupt).body.to_string().contains("order/x"));
    }

    #[test]
    fn json_answers_are_never_sniffed_and_refusals_say_when_to_come_back() {
        let limited = error_reply(&DomainError::TooManyRequests { code: "too_many_attempts", message: "wait".into() });
        assert_eq!((limited.status, limited.retry_after), (429, Some("60")));
        assert_eq!(limited.body["error"], serde_json::json!({ "code": "too_many_attempts", "message": "wait" }));
        let invalid = error_reply(&DomainError::invalid("invalid_json", "no"));
        assert_eq!((invalid.status, invalid.retry_after), (400, None));
        assert!(JSON_HEADERS.contains(&("x-content-type-options", "nosniff")));
    }
}

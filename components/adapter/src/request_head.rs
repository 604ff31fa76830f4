//! A request's head as the host sent it: headers found by name, the target
//! split into path and query.

/// A header's value (names compare without case); `None` when absent or not UTF-8.
pub fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    let (_, value) = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    std::str::from_utf8(value).ok()
}

/// The path and the query (without `?`, "" when there is none) of a target such as
/// `/api/shops/main/orders?state=queued`.
pub fn split_target(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
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
        assert_eq!(header(&headers, "Content-Type"), Some("application/json"));
        assert_eq!(header(&headers, "spin-path-match-shop"), Some("main"));
        assert_eq!((header(&headers, "x-bytes"), header(&headers, "absent")), (None, None));
        assert_eq!(
            split_target("/api/shops/main/orders?state=queued&x=1"),
            ("/api/shops/main/orders", "state=queued&x=1")
        );
        assert_eq!(split_target("/api/session"), ("/api/session", ""));
        assert_eq!(split_target("/a?"), ("/a", ""));
    }
}

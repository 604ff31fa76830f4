//! What a mutation's body must be: sent as JSON (a cross-site form cannot
//! say so), within its size limit, and a JSON object.

use serde::de::DeserializeOwned;
use spinpresso_domain::DomainError;

/// The body is declared JSON (`Content-Type`, parameters aside) and at most `max_bytes` long.
pub fn check_json(content_type: Option<&str>, body_len: usize, max_bytes: usize) -> Result<(), DomainError> {
    let media = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(DomainError::refused(
            "unsupported_media_type",
            415,
            "send the request body as JSON with `Content-Type: application/json`",
        ));
    }
    if body_len > max_bytes {
        return Err(DomainError::refused(
            "payload_too_large",
            413,
            format!("this request's body is limited to {} KiB", max_bytes / 1024),
        ));
    }
    Ok(())
}

/// The body as `T` (an empty body reads as `{}`); unknown fields are refused
/// by the target type. The body must be an object, and a whole number may be
/// written with a fraction of zero (`5.0`), as JSON Schema's `integer` allows.
pub fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, DomainError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { body };
    let invalid =
        |e: serde_json::Error| DomainError::invalid("invalid_json", format!("the request body is not valid: {e}"));
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(DomainError::invalid("invalid_json", "the request body must be a JSON object"));
    }
    // Straight into the type first: it also refuses duplicate fields, which a `Value` would merge.
    let refused = match serde_json::from_slice(body) {
        Ok(parsed) => return Ok(parsed),
        Err(refused) => refused,
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return Err(invalid(refused)) };
    let whole = whole_numbers(value.clone());
    if whole == value {
        return Err(invalid(refused));
    }
    serde_json::from_value(whole).map_err(invalid)
}

/// `5.0` → `5`, everywhere in `value` (integers stay exact up to 2^53 as floats).
fn whole_numbers(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() <= EXACT => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(whole_numbers).collect()),
        Value::Object(fields) => Value::Object(fields.into_iter().map(|(k, v)| (k, whole_numbers(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Limit {
        max: Option<u32>,
    }

    #[test]
    fn whole_numbers_with_a_zero_fraction_become_integers_and_others_stay() {
        let value = json!({ "a": 144.0, "b": [2.0, 2.5], "c": { "d": -3.0 }, "e": 1e300, "f": 7 });
        assert_eq!(whole_numbers(value), json!({ "a": 144, "b": [2, 2.5], "c": { "d": -3 }, "e": 1e300, "f": 7 }));
    }

    #[test]
    fn only_json_within_the_limit_is_read() {
        let code = |r: Result<(), DomainError>| r.map_err(|e| (e.status(), e.code()));
        assert_eq!(code(check_json(Some("application/json; charset=utf-8"), 10, 10)), Ok(()));
        assert_eq!(code(check_json(Some("Application/JSON"), 0, 10)), Ok(()));
        assert_eq!(code(check_json(Some("text/plain"), 0, 10)), Err((415, "unsupported_media_type")));
        assert_eq!(code(check_json(None, 0, 10)), Err((415, "unsupported_media_type")));
        assert_eq!(code(check_json(Some("application/json"), 11, 10)), Err((413, "payload_too_large")));
    }

    #[test]
    fn a_body_is_one_object_with_known_fields() {
        let parse = |body: &str| parse_object::<Limit>(body.as_bytes()).map_err(|e| e.code());
        assert_eq!(parse(""), Ok(Limit { max: None }));
        assert_eq!(parse(" {\"max\": 5.0} "), Ok(Limit { max: Some(5) }));
        assert_eq!(parse("[]"), Err("invalid_json"));
        assert_eq!(parse("{\"max\": 5.5}"), Err("invalid_json"));
        assert_eq!(parse("{\"other\": 1}"), Err("invalid_json"));
        assert_eq!(parse("{\"max\": 1, \"max\": 2}"), Err("invalid_json"));
    }
}

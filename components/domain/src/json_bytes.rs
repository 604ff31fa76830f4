//! Reading the records this crate writes without parsing all of them.
//!
//! Hot paths that need a small part of a record: a submission (one drink of
//! a ~5 KB menu), a capacity decision and a queue note (one entry of the
//! open set), a board answered from its cache. They know the exact shape
//! `kv::to_json` writes, read that shape from the bytes, and parse with serde
//! whatever else they find (every function here returns `None` when the
//! bytes are not in the expected shape).

/// A `Versioned` record as `to_json` writes it: `{"rev":R,"write":"W","data":…}`.
pub struct Envelope<'a> {
    pub rev: u64,
    pub write: &'a str,
    /// The JSON of `data`.
    pub data: &'a [u8],
}

/// The envelope of a stored record; `None` for another shape (or a write id
/// with escapes, which serde must read).
pub fn split_versioned(bytes: &[u8]) -> Option<Envelope<'_>> {
    let rest = bytes.strip_prefix(br#"{"rev":"#)?;
    let (rev, rest) = split_at_byte(rest, b',')?;
    let rest = rest.strip_prefix(br#""write":""#)?;
    let (write, rest) = split_at_byte(rest, b'"')?;
    let data = rest.strip_prefix(br#","data":"#)?.strip_suffix(b"}")?;
    let write = std::str::from_utf8(write).ok().filter(|w| !w.contains('\\'))?;
    Some(Envelope { rev: std::str::from_utf8(rev).ok()?.parse().ok()?, write, data })
}

/// The bytes before and after the first `end`.
pub fn split_at_byte(bytes: &[u8], end: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|b| *b == end)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

/// The first element of the JSON array `array` whose text starts with
/// `prefix`: `Some(None)` when no element does, `None` when `array` is not a
/// well-formed array of objects and arrays. Elements are found by their
/// brackets (strings and escapes skipped), not parsed.
pub fn find_element<'a>(array: &'a [u8], prefix: &[u8]) -> Option<Option<&'a [u8]>> {
    let mut found = None;
    walk_elements(array, |element| {
        let hit = element.starts_with(prefix);
        if hit {
            found = Some(element);
        }
        !hit
    })?;
    Some(found)
}

/// The elements of the JSON array `array` (objects and arrays only), found
/// by their brackets; `None` when it is not such an array.
pub fn elements(array: &[u8]) -> Option<Vec<&[u8]>> {
    let mut found = Vec::new();
    walk_elements(array, |element| {
        found.push(element);
        true
    })?;
    Some(found)
}

/// Hands each element of `array` to `visit` in order, while it answers true;
/// `None` when the part walked is not a well-formed array of objects and arrays.
fn walk_elements<'a>(array: &'a [u8], mut visit: impl FnMut(&'a [u8]) -> bool) -> Option<()> {
    let mut rest = array.strip_prefix(b"[")?;
    if rest == b"]" {
        return Some(());
    }
    loop {
        let end = value_end(rest)?;
        if !visit(&rest[..end]) {
            return Some(());
        }
        rest = match rest[end..].split_first()? {
            (b',', next) => next,
            (b']', []) => return Some(()),
            _ => return None,
        };
    }
}

/// The length of the object or array that `bytes` starts with.
fn value_end(bytes: &[u8]) -> Option<usize> {
    if !matches!(bytes.first(), Some(b'{' | b'[')) {
        return None;
    }
    let (mut depth, mut at) = (0usize, 0);
    while let Some(byte) = bytes.get(at) {
        match byte {
            b'"' => at = string_end(bytes, at + 1)?,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(at + 1);
                }
            }
            _ => {}
        }
        at += 1;
    }
    None
}

/// Where the string whose text starts at `from` ends (its closing quote):
/// a search for the next quote or backslash, not a look at every byte's state.
fn string_end(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let next = from + bytes.get(from..)?.iter().position(|b| matches!(b, b'"' | b'\\'))?;
        if bytes[next] == b'"' {
            return Some(next);
        }
        from = next + 2; // past the escaped character
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic::Versioned;
    use serde_json::json;

    #[test]
    fn the_envelope_is_read_as_to_json_writes_it() {
        let bytes = Versioned { rev: 7, write: "req-1#7".into(), data: json!({"a": [1, 2]}) }.to_bytes();
        let envelope = split_versioned(&bytes).unwrap();
        assert_eq!((envelope.rev, envelope.write, envelope.data), (7, "req-1#7", &br#"{"a":[1,2]}"#[..]));
        let escaped = Versioned { rev: 1, write: "a\"b#1".into(), data: 0 }.to_bytes();
        assert!(split_versioned(&escaped).is_none(), "serde reads escapes");
        assert!(split_versioned(br#"{"write":"w#1","rev":1,"data":0}"#).is_none(), "another order");
    }

    #[test]
    fn elements_are_found_by_their_start_whatever_their_strings_hold() {
        let array = serde_json::to_vec(&json!([
            {"id": "a", "note": "a } and a ] and a \"quoted {\" and a \\"},
            {"id": "b", "nested": [{"id": "c"}, [1, [2]]]},
            {"id": "c"}
        ]))
        .unwrap();
        let found = |prefix: &str| find_element(&array, prefix.as_bytes()).unwrap().map(|e| e.to_vec());
        let element = |value: serde_json::Value| Some(serde_json::to_vec(&value).unwrap());
        assert_eq!(found(r#"{"id":"b""#), element(json!({"id": "b", "nested": [{"id": "c"}, [1, [2]]]})));
        assert_eq!(found(r#"{"id":"c""#), element(json!({"id": "c"})), "only top-level elements");
        assert_eq!(found(r#"{"id":"a""#).map(|e| e.len()), element(json!(array_first(&array))).map(|e| e.len()));
        assert_eq!(found(r#"{"id":"z""#), None);
        assert_eq!(elements(&array).unwrap().len(), 3);
        assert_eq!(elements(b"[]").unwrap().len(), 0);
        assert!(elements(b"[1]").is_none() && elements(b"[{}").is_none());
        assert_eq!(find_element(b"[]", b"{").unwrap(), None);
        for bad in [&b"{}"[..], b"[1,2]", b"[{}", b"[{}x{}]", b"[{\"a\":\"}]"] {
            assert!(find_element(bad, b"{\"id\"").is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    fn array_first(array: &[u8]) -> serde_json::Value {
        serde_json::from_slice::<Vec<serde_json::Value>>(array).unwrap().remove(0)
    }
}

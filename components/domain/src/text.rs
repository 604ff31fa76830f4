//! Text people type that others see or open: names on the public board and
//! in the admin's day export.

use std::borrow::Cow;

/// Characters that change how the text around them is shown without being
/// seen themselves: bidirectional controls (one could turn a name on the
/// board, and what follows it, right to left) and zero-width characters
/// (names that look alike but differ, or look empty).
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                  // soft hyphen
        | '\u{061C}'                // Arabic letter mark
        | '\u{180E}'                // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}'   // zero-width space, non-joiner, joiner; LRM, RLM
        | '\u{202A}'..='\u{202E}'   // LRE, RLE, PDF, LRO, RLO
        | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'   // LRI, RLI, FSI, PDI
        | '\u{FEFF}'                // zero-width no-break space (BOM)
    )
}

/// `text` without [`is_invisible_format`] characters.
pub fn strip_invisible(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_invisible_format) {
        Cow::Owned(text.chars().filter(|c| !is_invisible_format(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// A CSV cell a spreadsheet shows as text: one starting like a formula
/// (`=`, `+`, `-`, `@`, or a tab or carriage return before one) gets a
/// leading `'`, so opening the export never runs what a customer typed.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_and_zero_width_characters_are_stripped() {
        assert_eq!(strip_invisible("Ana\u{202E}lanigiro"), "Analanigiro");
        assert_eq!(strip_invisible("\u{200B}\u{2066}Bo\u{200D}b\u{2069}\u{FEFF}"), "Bob");
        assert_eq!(strip_invisible("João ☕ 李"), "João ☕ 李");
        assert!(matches!(strip_invisible("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn cells_that_look_like_formulas_are_made_text() {
        for formula in ["=1+2", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(\"x\")"] {
            assert_eq!(spreadsheet_safe(formula), format!("'{formula}"), "{formula:?}");
        }
        for plain in ["Ana", "12", "2026-11-22T10:00:00Z", "", " =1", "a=b"] {
            assert_eq!(spreadsheet_safe(plain), plain, "{plain:?}");
        }
    }
}

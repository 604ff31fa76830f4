//! Comparing stored values: the swap's check that the record it expects is the one it read.

/// `a == b`, eight bytes at a time: a slice comparison compiles to a
/// byte-by-byte loop in WebAssembly, and the values compared here (the
/// record a swap expects) run to several kilobytes.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails_equal = a_words.remainder() == b_words.remainder();
    tails_equal
        && a_words.zip(b_words).all(|(x, y)| {
            u64::from_ne_bytes(x.try_into().expect("chunks of 8"))
                == u64::from_ne_bytes(y.try_into().expect("chunks of 8"))
        })
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    #[test]
    fn same_bytes_is_slice_equality() {
        let a: Vec<u8> = (0..100u8).collect();
        for len in [0, 1, 7, 8, 9, 16, 63, 100] {
            assert!(same_bytes(&a[..len], &a[..len]));
            if len > 0 {
                let mut b = a[..len].to_vec();
                for at in [0, len / 2, len - 1] {
                    b[at] ^= 1;
                    assert!(!same_bytes(&a[..len], &b), "differs at {at} of {len}");
                    b[at] ^= 1;
                }
            }
        }
        assert!(!same_bytes(&a[..8], &a[..9]));
    }
}

//! Randomness from the OS CSPRNG, for ids, tokens and codes.

/// Fills `buf` from the OS CSPRNG.
///
/// Panics if the OS has no randomness to give: there is no safe way to go on.
pub(crate) fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS CSPRNG is available");
}

/// A uniform integer in `0..n` (rejection sampling, no modulo bias). `n` ≤ 65,536.
pub(crate) fn below(n: usize) -> usize {
    assert!(n > 0 && n <= 1 << 16, "below() takes 1..=65536");
    let zone = (1usize << 16) - (1usize << 16) % n;
    loop {
        let mut two = [0u8; 2];
        fill(&mut two);
        let value = usize::from(u16::from_le_bytes(two));
        if value < zone {
            return value % n;
        }
    }
}

/// `bytes` random bytes as lowercase hex: used for every name the server picks.
pub(crate) fn hex_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill(&mut buf);
    hex(&buf)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// A uniform integer in `lo..=hi` (rejection sampling, no modulo bias).
pub(crate) fn between(lo: u64, hi: u64) -> u64 {
    assert!(lo <= hi, "between() takes lo <= hi");
    let draw = || {
        let mut eight = [0u8; 8];
        fill(&mut eight);
        u64::from_le_bytes(eight)
    };
    let Some(n) = (hi - lo).checked_add(1) else {
        return draw();
    };
    // 2^64 mod n values at the top would favour small results: drawn again.
    let rest = (u64::MAX % n + 1) % n;
    loop {
        let value = draw();
        if rest == 0 || value < 0u64.wrapping_sub(rest) {
            return lo + value % n;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn between_stays_in_its_bounds_and_reaches_both() {
        let (mut low, mut high) = (false, false);
        for _ in 0..2000 {
            let v = super::between(5, 9);
            assert!((5..=9).contains(&v));
            low |= v == 5;
            high |= v == 9;
        }
        assert!(low && high);
        assert_eq!(super::between(7, 7), 7);
        let _ = super::between(0, u64::MAX);
    }
}

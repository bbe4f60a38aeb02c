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

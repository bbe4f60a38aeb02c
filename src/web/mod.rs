//! HTTP: the source site ([`source`]) and the journalist API ([`journalist`]), each on
//! its own listener.

pub mod csrf;
pub mod journalist;
mod pages;
mod session;
pub mod source;

use http::HeaderMap;

/// The value of cookie `name` if it is exactly `hex_len` hex digits: anything else is
/// ignored, so cookie contents never reach further than this check.
fn hex_cookie(headers: &HeaderMap, name: &str, hex_len: usize) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
        .find(|value| value.len() == hex_len && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

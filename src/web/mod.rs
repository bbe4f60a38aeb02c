//! HTTP: the source site ([`source`]) and the journalist API ([`journalist`]), each on
//! its own listener.

pub mod csrf;
pub mod journalist;
pub(crate) mod language;
mod pages;
mod session;
pub mod source;

use http::{header, HeaderMap, HeaderValue};

/// Headers every HTML answer of ours carries, on the source site and the desk alike:
/// no sniffing, no framing, no caching, no sharing with other origins, no device
/// access. Each site adds its own CSP and referrer policy.
pub(crate) fn strict_headers(headers: &mut HeaderMap) {
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), interest-cohort=()",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.remove(header::SERVER);
}

/// Every value the request's cookies give `name`, in the order sent.
fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The value of cookie `name` if it is exactly `hex_len` hex digits: anything else is
/// ignored, so cookie contents never reach further than this check.
fn hex_cookie(headers: &HeaderMap, name: &str, hex_len: usize) -> Option<String> {
    cookie_values(headers, name)
        .find(|value| value.len() == hex_len && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

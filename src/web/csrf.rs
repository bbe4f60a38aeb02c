//! CSRF tokens for the source site's forms, without server-side state.
//!
//! A client first GETs a page with a form: it gets a random nonce in a `SameSite=Strict`
//! cookie, and the form carries `HMAC(key, nonce)` in its hidden `csrf` field. A POST is
//! accepted only if the field matches the cookie's nonce. The key is derived from the
//! instance secret, so tokens survive a restart; nothing expires while an upload runs,
//! because the token is checked when the upload begins.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::random;

/// The cookie that carries the nonce.
pub const COOKIE: &str = "agedrop_csrf";
const NONCE_BYTES: usize = 16;

/// The key that signs nonces. No `Debug`.
pub struct CsrfKey(Zeroizing<[u8; 32]>);

impl CsrfKey {
    /// Derives the CSRF key from the instance secret (HKDF-SHA256, its own label).
    pub fn derive(instance_secret: &[u8; 32]) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(None, instance_secret)
            .expand(b"agedrop v1 csrf", &mut key[..])
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        CsrfKey(key)
    }

    fn mac(&self, nonce: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0[..]).expect("HMAC takes keys of any length");
        mac.update(nonce.as_bytes());
        mac
    }

    /// The token for the form, and the nonce to set as a cookie if the request had none.
    pub fn issue(&self, headers: &HeaderMap) -> (String, Option<String>) {
        match nonce_from(headers) {
            Some(nonce) => (random::hex(&self.mac(&nonce).finalize().into_bytes()), None),
            None => {
                let nonce = new_nonce();
                let token = random::hex(&self.mac(&nonce).finalize().into_bytes());
                (token, Some(nonce))
            }
        }
    }

    /// True if `token` is the one issued for the nonce in the request's cookie. Compared
    /// in constant time.
    pub fn verify(&self, headers: &HeaderMap, token: &[u8]) -> bool {
        let (Some(nonce), Some(tag)) = (nonce_from(headers), from_hex(token)) else {
            return false;
        };
        self.mac(&nonce).verify_slice(&tag).is_ok()
    }
}

/// A new random nonce, for a cookie that replaces the client's (at logout).
pub fn new_nonce() -> String {
    random::hex_id(NONCE_BYTES)
}

/// The `Set-Cookie` value for a new nonce.
pub fn cookie(nonce: &str) -> String {
    format!("{COOKIE}={nonce}; Path=/; HttpOnly; SameSite=Strict")
}

/// The nonce from the request's cookies, if well-formed.
fn nonce_from(headers: &HeaderMap) -> Option<String> {
    super::hex_cookie(headers, COOKIE, NONCE_BYTES * 2)
}

fn from_hex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let digits = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(digits, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_only_with_their_cookie() {
        let key = CsrfKey::derive(&[7; 32]);
        let (token, nonce) = key.issue(&HeaderMap::new());
        let nonce = nonce.expect("new nonce without a cookie");
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            format!("x=1; {COOKIE}={nonce}").parse().unwrap(),
        );
        assert!(key.verify(&headers, token.as_bytes()));
        assert!(!key.verify(&HeaderMap::new(), token.as_bytes()));
        assert!(!key.verify(&headers, b"00"));
        let other = CsrfKey::derive(&[8; 32]);
        assert!(!other.verify(&headers, token.as_bytes()));
        let (again, new_nonce) = key.issue(&headers);
        assert_eq!(again, token);
        assert!(new_nonce.is_none());
    }
}

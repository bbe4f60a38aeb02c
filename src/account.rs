//! Journalist accounts and their API tokens.
//!
//! A token is `agedrop-<account id>-<secret>`: the id (8 hex digits) names the account
//! so failed attempts can be counted per account; the secret is 256 random bits. The
//! database keeps the id and the SHA-256 of the secret, compared in constant time. A
//! fast hash is enough: the secret has nothing to guess (SECURITY.md, "Journalist
//! tokens").

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::random;

const PREFIX: &str = "agedrop-";
const ID_HEX: usize = 8;
const SECRET_HEX: usize = 64;

/// A token as issued: shown once, never stored. No `Debug`.
pub struct Token {
    /// The account id part.
    pub id: String,
    text: Zeroizing<String>,
}

impl Token {
    /// A new token for a new account.
    pub fn generate() -> Self {
        let id = random::hex_id(ID_HEX / 2);
        let secret = Zeroizing::new(random::hex_id(SECRET_HEX / 2));
        let text = Zeroizing::new(format!("{PREFIX}{id}-{}", &*secret));
        Token { id, text }
    }

    /// The whole token, to give to the journalist.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The hash the database keeps.
    pub fn secret_hash(&self) -> [u8; 32] {
        let (_, secret) = split(&self.text).expect("a generated token is well-formed");
        hash(secret)
    }
}

/// Splits a presented token into (account id, secret hash); `None` if malformed.
pub fn parse(presented: &str) -> Option<(String, [u8; 32])> {
    let (id, secret) = split(presented.trim())?;
    Some((id.to_owned(), hash(secret)))
}

fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('-')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, ID_HEX) && hex(secret, SECRET_HEX)).then_some((id, secret))
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time equality of two hashes (`subtle`, which keeps the compiler from
/// turning the comparison into an early exit).
pub fn same_hash(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// True for names `agedrop journalist add` accepts: 1–64 of `a-z 0-9 . _ -`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_back_to_their_hash() {
        let token = Token::generate();
        let (id, hash) = parse(token.expose()).expect("parses");
        assert_eq!(id, token.id);
        assert!(same_hash(&hash, &token.secret_hash()));
        assert!(parse("agedrop-zz-00").is_none());
        assert!(parse(&token.expose()[..token.expose().len() - 1]).is_none());
        let other = Token::generate();
        assert!(!same_hash(&other.secret_hash(), &token.secret_hash()));
    }
}

//! Source-code normalisation (what a returning source types). Checks: no panic; a code
//! that normalises is 8 known lowercase words joined by single spaces, and normalising
//! it again gives the same code.
#![no_main]

use agedrop::code::{SourceCode, CODE_WORDS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    if let Some(code) = SourceCode::normalise(&text) {
        let words: Vec<&str> = code.expose().split(' ').collect();
        assert_eq!(words.len(), CODE_WORDS);
        assert!(words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())));
        let again = SourceCode::normalise(code.expose()).expect("a normal code normalises");
        assert_eq!(again.expose(), code.expose());
    }
});

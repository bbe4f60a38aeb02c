//! Source codes: 8 words from the EFF large wordlist, drawn from the OS CSPRNG.
//!
//! A code is shown to the source once and never stored or logged; see SECURITY.md,
//! "Source codes". The four hyphenated words of the EFF list (drop-down, felt-tip,
//! t-shirt, yo-yo) are left out so that hyphens can separate words on input without
//! ambiguity: 7,772 words, 8 × log2(7772) ≈ 103.4 bits.

use std::sync::OnceLock;

use zeroize::Zeroizing;

use crate::random;

/// Words in a code.
pub const CODE_WORDS: usize = 8;

const WORDLIST: &str = include_str!("code/eff_large_wordlist.txt");

/// The wordlist, sorted (the file is in dice order, which is alphabetical).
fn words() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let words: Vec<&'static str> = WORDLIST
            .lines()
            .map(|line| line.split('\t').nth(1).unwrap_or(line))
            .collect();
        debug_assert!(words.windows(2).all(|w| w[0] < w[1]));
        words
    })
}

/// How many words the list has.
pub fn wordlist_len() -> usize {
    words().len()
}

/// A source's code in canonical form (lowercase words, single spaces). No `Debug` or
/// `Display`: it must never reach a log. Wiped on drop.
pub struct SourceCode(Zeroizing<String>);

impl SourceCode {
    /// A new code of [`CODE_WORDS`] words, each drawn uniformly from the list.
    pub fn generate() -> Self {
        let list = words();
        let mut code = Zeroizing::new(String::with_capacity(CODE_WORDS * 10));
        for i in 0..CODE_WORDS {
            if i > 0 {
                code.push(' ');
            }
            code.push_str(list[random::below(list.len())]);
        }
        SourceCode(code)
    }

    /// Reads a code as a source typed it: case, spaces, hyphens and dots between
    /// words do not matter. `None` unless it is exactly [`CODE_WORDS`] list words.
    pub fn normalise(input: &str) -> Option<Self> {
        let list = words();
        let mut code = Zeroizing::new(String::with_capacity(CODE_WORDS * 10));
        let mut count = 0;
        let lowered = Zeroizing::new(input.to_lowercase());
        for word in lowered
            .split(|c: char| c.is_whitespace() || c == '-' || c == '.' || c == ',')
            .filter(|w| !w.is_empty())
        {
            count += 1;
            if count > CODE_WORDS || list.binary_search(&word).is_err() {
                return None;
            }
            if count > 1 {
                code.push(' ');
            }
            code.push_str(word);
        }
        (count == CODE_WORDS).then_some(SourceCode(code))
    }

    /// The code's text, to be shown to its source once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_the_eff_large_list_without_hyphenated_words() {
        assert_eq!(wordlist_len(), 7772);
        assert_eq!(words()[0], "abacus");
        assert_eq!(words()[words().len() - 1], "zoom");
        assert!(words()
            .iter()
            .all(|w| w.bytes().all(|b| b.is_ascii_lowercase())));
    }

    #[test]
    fn generated_codes_normalise_to_themselves() {
        for _ in 0..100 {
            let code = SourceCode::generate();
            assert_eq!(code.expose().split(' ').count(), CODE_WORDS);
            let messy = format!("  {}. ", code.expose().to_uppercase().replace(' ', " -\t"));
            let back = SourceCode::normalise(&messy).expect("normalises");
            assert_eq!(back.expose(), code.expose());
        }
    }

    #[test]
    fn rejects_wrong_counts_and_unknown_words() {
        assert!(SourceCode::normalise("abacus zoom").is_none());
        assert!(SourceCode::normalise(&"abacus ".repeat(9)).is_none());
        assert!(SourceCode::normalise(&format!("{}qwerty", "abacus ".repeat(7))).is_none());
        assert!(SourceCode::normalise(&"abacus ".repeat(8)).is_some());
    }
}

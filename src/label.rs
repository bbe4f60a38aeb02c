//! Journalist-facing source labels: a random adjective-noun pair such as
//! `amber-falcon`, not derived from anything the source knows.

use std::sync::OnceLock;

use crate::random;

const ADJECTIVES: &str = include_str!("code/label_adjectives.txt");
const NOUNS: &str = include_str!("code/label_nouns.txt");

fn list(text: &'static str, cell: &'static OnceLock<Vec<&'static str>>) -> &'static [&'static str] {
    cell.get_or_init(|| {
        text.lines()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect()
    })
}

/// A random label, `adjective-noun`.
pub fn random() -> String {
    static ADJ: OnceLock<Vec<&'static str>> = OnceLock::new();
    static NOUN: OnceLock<Vec<&'static str>> = OnceLock::new();
    let adjectives = list(ADJECTIVES, &ADJ);
    let nouns = list(NOUNS, &NOUN);
    format!(
        "{}-{}",
        adjectives[random::below(adjectives.len())],
        nouns[random::below(nouns.len())]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_two_safe_words() {
        for _ in 0..50 {
            let label = super::random();
            let (a, n) = label.split_once('-').expect("adjective-noun");
            assert!(
                a.bytes().chain(n.bytes()).all(|b| b.is_ascii_lowercase()),
                "{label}"
            );
        }
    }
}

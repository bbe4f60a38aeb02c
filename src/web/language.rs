//! The source site in the source's language. Every sentence a source reads is a Fluent
//! message in `src/web/language/TAG.ftl`, compiled into the binary; a request's language
//! is chosen by `?l=`, then the `lang` cookie, then `Accept-Language`, then the
//! configured default (docs/ARCHITECTURE.md, "Languages").

use std::borrow::Cow;
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// A language the site can be shown in.
pub struct Language {
    /// Its tag in `?l=`, the cookie and the config: `en`, `zh`, `en-XA`.
    pub tag: &'static str,
    /// Its `lang` attribute: `zh-Hans` for the Simplified Chinese of `zh`.
    pub html_lang: &'static str,
    /// Its name, written in itself.
    pub name: &'static str,
    /// Written right to left.
    pub rtl: bool,
    bundle: FluentBundle<FluentResource>,
    group: String,
    decimal: String,
}

/// A value for a message's variable.
#[derive(Clone, Copy)]
pub enum Arg<'a> {
    /// A count, for plural choices (`{ $days -> [one] … }`) and shown as digits.
    Count(u64),
    /// Text already written for this language: a grouped number, a size, a day.
    Text(&'a str),
}

/// The tag of the pseudo-language: English with accented, lengthened words, for
/// checking that every page survives longer translations. Offered only when the
/// config lists it in `site.languages`.
pub const PSEUDO: &str = "en-XA";

/// The tag of the language every other follows.
pub const ENGLISH: &str = "en";

struct Shipped {
    tag: &'static str,
    html_lang: &'static str,
    name: &'static str,
    ftl: &'static str,
}

/// The shipped languages, in the order the site lists them.
const SHIPPED: [Shipped; 7] = [
    Shipped {
        tag: "en",
        html_lang: "en",
        name: "English",
        ftl: include_str!("language/en.ftl"),
    },
    Shipped {
        tag: "es",
        html_lang: "es",
        name: "Español",
        ftl: include_str!("language/es.ftl"),
    },
    Shipped {
        tag: "fr",
        html_lang: "fr",
        name: "Français",
        ftl: include_str!("language/fr.ftl"),
    },
    Shipped {
        tag: "ar",
        html_lang: "ar",
        name: "العربية",
        ftl: include_str!("language/ar.ftl"),
    },
    Shipped {
        tag: "ru",
        html_lang: "ru",
        name: "Русский",
        ftl: include_str!("language/ru.ftl"),
    },
    Shipped {
        tag: "zh",
        html_lang: "zh-Hans",
        name: "简体中文",
        ftl: include_str!("language/zh.ftl"),
    },
    Shipped {
        tag: "fa",
        html_lang: "fa",
        name: "فارسی",
        ftl: include_str!("language/fa.ftl"),
    },
];

static ALL: LazyLock<Vec<Language>> = LazyLock::new(|| {
    let mut all: Vec<Language> = SHIPPED
        .iter()
        .map(|s| Language::build(s.tag, s.html_lang, s.name, s.ftl, None))
        .collect();
    all.push(Language::build(
        PSEUDO,
        PSEUDO,
        "Ëñğļíšħ (pšéüðö)",
        SHIPPED[0].ftl,
        Some(pseudo),
    ));
    all
});

/// Every language the binary has: the shipped ones, then the pseudo-language.
pub fn all() -> &'static [Language] {
    &ALL
}

/// The tags of the shipped languages (not the pseudo-language).
pub fn shipped_tags() -> impl Iterator<Item = &'static str> {
    SHIPPED.iter().map(|s| s.tag)
}

/// The language with this tag, if the binary has it.
pub fn find(tag: &str) -> Option<&'static Language> {
    all().iter().find(|l| l.tag == tag)
}

/// English: the fallback for a message a translation lacks (the tests forbid that).
pub fn english() -> &'static Language {
    &all()[0]
}

/// The best of `offered` for an `Accept-Language` header, by weight then order
/// (`q=0` means "not this one"), matched on the primary language subtag.
pub fn from_accept_language(
    header: &str,
    offered: &[&'static Language],
) -> Option<&'static Language> {
    let mut wanted: Vec<(u16, &str)> = header
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let tag = parts.next()?;
            let weight = parts
                .find_map(|p| p.strip_prefix("q="))
                .map_or(Some(1000), |q| {
                    q.parse::<f32>().ok().map(|q| (q * 1000.0) as u16)
                })?;
            (weight > 0 && !tag.is_empty()).then_some((weight, tag))
        })
        .collect();
    // Stable: equal weights keep the header's order.
    wanted.sort_by_key(|w| std::cmp::Reverse(w.0));
    wanted.iter().find_map(|(_, tag)| {
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        offered
            .iter()
            .copied()
            .find(|l| l.tag.eq_ignore_ascii_case(primary))
    })
}

impl Language {
    fn build(
        tag: &'static str,
        html_lang: &'static str,
        name: &'static str,
        ftl: &'static str,
        transform: Option<fn(&str) -> Cow<'_, str>>,
    ) -> Language {
        let id: LanguageIdentifier = match tag {
            PSEUDO => "en".parse(),
            _ => tag.parse(),
        }
        .expect("shipped tags are valid");
        let rtl = matches!(tag, "ar" | "fa");
        let resource = FluentResource::try_new(ftl.to_owned())
            .unwrap_or_else(|(_, errors)| panic!("{tag}.ftl does not parse: {errors:?}"));
        let mut bundle = FluentBundle::new_concurrent(vec![id]);
        // Isolation marks keep a left-to-right value (a day, a size) in its place in
        // right-to-left text; in left-to-right text they would only be noise.
        bundle.set_use_isolating(rtl);
        bundle.set_transform(transform);
        bundle
            .add_resource(resource)
            .unwrap_or_else(|errors| panic!("{tag}.ftl repeats a message: {errors:?}"));
        let mut language = Language {
            tag,
            html_lang,
            name,
            rtl,
            bundle,
            group: String::new(),
            decimal: String::new(),
        };
        language.group = language.text("number-group");
        language.decimal = language.text("number-decimal");
        language
    }

    /// Its `dir` attribute.
    pub fn dir(&self) -> &'static str {
        if self.rtl {
            "rtl"
        } else {
            "ltr"
        }
    }

    /// The message `id`, without variables.
    pub fn text(&self, id: &str) -> String {
        self.text_with(id, &[])
    }

    /// The message `id` with its variables.
    pub fn text_with(&self, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        let Some(pattern) = self.bundle.get_message(id).and_then(|m| m.value()) else {
            // A missing message is a test failure (tests/languages.rs); in a build
            // that slipped through, English is better than nothing.
            return match self.tag {
                ENGLISH => id.to_owned(),
                _ => english().text_with(id, args),
            };
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            match value {
                Arg::Count(n) => fluent_args.set(*name, FluentValue::from(*n)),
                Arg::Text(text) => fluent_args.set(*name, FluentValue::from(*text)),
            }
        }
        let mut errors = Vec::new();
        self.bundle
            .format_pattern(pattern, Some(&fluent_args), &mut errors)
            .into_owned()
    }

    /// `n` with this language's digit groups: 100,000 or 100 000.
    pub fn number(&self, n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push_str(&self.group);
            }
            out.push(c);
        }
        out
    }

    /// A byte count as people read it: "2 GB", "1.5 MB", "20 KB" (units of 1024, as
    /// file managers show them, whole where exact, else one decimal).
    pub fn size(&self, bytes: u64) -> String {
        const UNITS: [&str; 4] = ["size-kb", "size-mb", "size-gb", "size-tb"];
        if bytes < 1024 {
            let n = bytes.to_string();
            return self.text_with("size-bytes", &[("n", Arg::Text(&n))]);
        }
        let mut value = bytes as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        let written = if (value - value.round()).abs() < 0.05 {
            self.number(value.round() as u64)
        } else {
            let tenths = (value * 10.0).round() as u64;
            format!(
                "{}{}{}",
                self.number(tenths / 10),
                self.decimal,
                tenths % 10
            )
        };
        self.text_with(UNITS[unit], &[("n", Arg::Text(&written))])
    }
}

/// The pseudo-language's words: every letter accented and every vowel doubled, so
/// a page built for English shows where longer words would not fit.
fn pseudo(text: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        let accented = match c {
            'a' => 'á',
            'e' => 'é',
            'i' => 'í',
            'o' => 'ö',
            'u' => 'ü',
            'y' => 'ý',
            'c' => 'ç',
            'n' => 'ñ',
            's' => 'š',
            'A' => 'Å',
            'E' => 'É',
            'I' => 'Î',
            'O' => 'Ø',
            'U' => 'Û',
            other => other,
        };
        out.push(accented);
        if "aeiouyAEIOU".contains(c) {
            out.push(accented);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_numbers_and_sizes_read_as_people_read_them() {
        let en = english();
        assert_eq!(en.size(2 * 1024 * 1024 * 1024), "2 GB");
        assert_eq!(en.size(500 * 1024 * 1024), "500 MB");
        assert_eq!(en.size(1536 * 1024), "1.5 MB");
        assert_eq!(en.size(20 * 1024), "20 KB");
        assert_eq!(en.size(999), "999 bytes");
        assert_eq!(en.number(100_000), "100,000");
        assert_eq!(en.number(999), "999");
        assert_eq!(
            en.text_with(
                "files-limit",
                &[("count", Arg::Count(1)), ("size", Arg::Text("2 GB"))]
            ),
            "Up to 1 file, 2 GB in all."
        );
        assert_eq!(
            en.text_with(
                "files-limit",
                &[("count", Arg::Count(20)), ("size", Arg::Text("2 GB"))]
            ),
            "Up to 20 files, 2 GB in all."
        );
    }

    #[test]
    fn the_pseudo_language_lengthens_words_but_not_variables() {
        let pseudo = find(PSEUDO).unwrap();
        let text = pseudo.text_with("message-limit", &[("chars", Arg::Text("100,000"))]);
        assert!(text.starts_with("ÛÛp töö"), "{text}");
        assert!(text.contains("100,000"), "{text}");
        // A fifth longer at least, as many translations are.
        assert!(text.chars().count() * 5 >= "Up to 100,000 characters.".len() * 6);
    }

    #[test]
    fn accept_language_picks_the_first_offered_language() {
        let offered: Vec<&'static Language> = all().iter().take(7).collect();
        let pick = |header| from_accept_language(header, &offered).map(|l| l.tag);
        assert_eq!(pick("de-DE,de;q=0.9,es;q=0.8"), Some("es"));
        assert_eq!(pick("zh-CN,zh;q=0.9"), Some("zh"));
        assert_eq!(pick("fa-IR"), Some("fa"));
        assert_eq!(pick("de"), None);
        assert_eq!(pick(""), None);
        assert_eq!(pick("fr;q=0.5, ru"), Some("ru"));
        assert_eq!(pick("es;q=0, fr;q=0.1"), Some("fr"));
    }
}

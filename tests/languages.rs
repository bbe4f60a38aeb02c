//! The source site in the source's language: every shipped .ftl file has exactly the
//! English messages with the same variables, and the site chooses the language from
//! the `?l=` links, then the cookie they set, then Accept-Language, then the config.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;
use fluent_syntax::ast::{Entry, Expression, InlineExpression, Pattern, PatternElement};

/// The shipped languages: tag, `lang` attribute, direction.
const SHIPPED: [(&str, &str, &str); 7] = [
    ("en", "en", "ltr"),
    ("es", "es", "ltr"),
    ("fr", "fr", "ltr"),
    ("ar", "ar", "rtl"),
    ("ru", "ru", "ltr"),
    ("zh", "zh-Hans", "ltr"),
    ("fa", "fa", "rtl"),
];

/// Each message of a .ftl file: its variables, and its text when it has no
/// placeable (what a page shows verbatim).
struct Messages(BTreeMap<String, (BTreeSet<String>, Option<String>)>);

fn variables_in(pattern: &Pattern<&str>, into: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let PatternElement::Placeable { expression } = element {
            variables_in_expression(expression, into);
        }
    }
}

fn variables_in_expression(expression: &Expression<&str>, into: &mut BTreeSet<String>) {
    let inline = |e: &InlineExpression<&str>, into: &mut BTreeSet<String>| match e {
        InlineExpression::VariableReference { id } => {
            into.insert(id.name.to_owned());
        }
        InlineExpression::Placeable { expression } => variables_in_expression(expression, into),
        _ => {}
    };
    match expression {
        Expression::Inline(e) => inline(e, into),
        Expression::Select { selector, variants } => {
            inline(selector, into);
            for variant in variants {
                variables_in(&variant.value, into);
            }
        }
    }
}

fn messages(tag: &str) -> Messages {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/web/language/{tag}.ftl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{tag}.ftl: {e}"));
    let resource = fluent_syntax::parser::parse(text.as_str())
        .unwrap_or_else(|(_, errors)| panic!("{tag}.ftl does not parse: {errors:?}"));
    let mut out = BTreeMap::new();
    for entry in resource.body {
        match entry {
            Entry::Message(message) => {
                let id = message.id.name.to_owned();
                let pattern = message
                    .value
                    .unwrap_or_else(|| panic!("{tag}.ftl: {id} has no value"));
                let mut variables = BTreeSet::new();
                variables_in(&pattern, &mut variables);
                let plain = pattern
                    .elements
                    .iter()
                    .map(|e| match e {
                        PatternElement::TextElement { value } => Some(*value),
                        PatternElement::Placeable { .. } => None,
                    })
                    .collect::<Option<String>>();
                assert!(
                    out.insert(id.clone(), (variables, plain)).is_none(),
                    "{tag}.ftl has {id} twice"
                );
            }
            Entry::Junk { content } => panic!("{tag}.ftl has junk: {content}"),
            Entry::Term(term) => panic!("{tag}.ftl has a term, -{}", term.id.name),
            _ => {}
        }
    }
    Messages(out)
}

#[test]
fn every_language_has_every_english_message_with_the_same_variables() {
    let english = messages("en");
    assert!(english.0.len() > 90, "{} messages", english.0.len());
    for (tag, _, _) in &SHIPPED[1..] {
        let other = messages(tag);
        let missing: Vec<_> = english
            .0
            .keys()
            .filter(|k| !other.0.contains_key(*k))
            .collect();
        let extra: Vec<_> = other
            .0
            .keys()
            .filter(|k| !english.0.contains_key(*k))
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{tag}.ftl: missing {missing:?}, extra {extra:?}"
        );
        for (id, (variables, plain)) in &english.0 {
            let (their_variables, their_plain) = &other.0[id];
            assert_eq!(variables, their_variables, "{tag}.ftl: {id}'s variables");
            // A sentence left in English is a translation not done (numbers' separators
            // and units may well be the same).
            if !id.starts_with("number-") && !id.starts_with("size-") {
                if let (Some(en), Some(theirs)) = (plain, their_plain) {
                    assert_ne!(en.trim(), theirs.trim(), "{tag}.ftl: {id} is still English");
                }
            }
        }
    }
}

/// The `lang` and `dir` of a page's `<html>`.
fn html_lang(page: &Response) -> (String, String) {
    let at = page.body.find("<html").expect("an html element");
    let tag = &page.body[at..at + page.body[at..].find('>').unwrap()];
    let attribute = |name: &str| {
        let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        tag[start..start + tag[start..].find('"').unwrap()].to_owned()
    };
    (attribute("lang"), attribute("dir"))
}

fn get_with(server: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    request(server.addr, "GET", path, headers, b"")
}

#[test]
fn every_page_is_written_in_the_chosen_language() {
    let server = Server::start();
    for (tag, lang, dir) in SHIPPED {
        let words = messages(tag);
        let plain = |id: &str| {
            let text = words.0[id].1.clone().expect("a message without variables");
            maud::html! { (text) }.into_string()
        };
        for (path, status, title) in [
            ("/", 200, "landing-title"),
            ("/submit", 200, "submit-title"),
            ("/login", 200, "login-title"),
            ("/no-such-page", 404, "not-found-title"),
        ] {
            let page = get_with(&server, &format!("{path}?l={tag}"), &[]);
            assert_eq!(page.status, status, "{tag} {path}");
            assert_eq!(
                html_lang(&page),
                (lang.to_owned(), dir.to_owned()),
                "{tag} {path}"
            );
            assert!(
                page.body.contains(&format!("<h1>{}</h1>", plain(title))),
                "{tag} {path}: {}",
                page.body
            );
        }
        // Each language is listed in its own name, marked with its own language.
        let landing = get_with(&server, "/", &[]);
        assert!(
            landing
                .body
                .contains(&format!("href=\"?l={tag}\" lang=\"{lang}\""))
                || tag == "en",
            "{tag}: {}",
            landing.body
        );
    }
}

#[test]
fn the_language_comes_from_the_link_then_the_cookie_then_the_browser_then_the_config() {
    let server = Server::start();
    let lang = |page: &Response| html_lang(page).0;

    // Nothing asked: the configured default, English.
    assert_eq!(lang(&get_with(&server, "/", &[])), "en");
    // The browser's languages, by weight; ones the site lacks are passed over.
    let accept = |value: &str| lang(&get_with(&server, "/", &[("Accept-Language", value)]));
    assert_eq!(accept("de-DE,de;q=0.9,fr;q=0.8"), "fr");
    assert_eq!(accept("es;q=0.2,ru;q=0.7"), "ru");
    assert_eq!(accept("zh-CN"), "zh-Hans");
    assert_eq!(accept("de"), "en");

    // A link: that language, remembered in a cookie that holds the tag alone.
    let chosen = get_with(&server, "/login?l=ar", &[("Accept-Language", "es")]);
    assert_eq!(html_lang(&chosen), ("ar".to_owned(), "rtl".to_owned()));
    let cookies = &chosen.headers["set-cookie"];
    assert!(
        cookies.contains(&"lang=ar; Path=/; HttpOnly; SameSite=Strict".to_owned()),
        "the choice is remembered: {cookies:?}"
    );
    // The cookie outranks the browser; a link outranks the cookie.
    assert_eq!(
        lang(&get_with(
            &server,
            "/submit",
            &[("Cookie", "lang=ar"), ("Accept-Language", "es")]
        )),
        "ar"
    );
    assert_eq!(
        lang(&get_with(&server, "/?l=fa", &[("Cookie", "lang=ar")])),
        "fa"
    );
    // An unknown tag is ignored and sets nothing; a forged internal header changes nothing.
    let unknown = get_with(&server, "/?l=xx", &[("Accept-Language", "ru")]);
    assert_eq!(lang(&unknown), "ru");
    assert!(!unknown
        .headers
        .get("set-cookie")
        .into_iter()
        .flatten()
        .any(|c| c.starts_with("lang=")));
    assert_eq!(lang(&get_with(&server, "/?l=%3Cscript", &[])), "en");
    assert_eq!(
        lang(&get_with(&server, "/", &[("agedrop-language", "fa")])),
        "en"
    );

    // The choice survives logging in: the browser keeps the cookie.
    let mut browser = Browser::new(server.addr);
    browser.get("/submit?l=es");
    let first = browser.submit(vec![Part::text("message", b"hola")]);
    assert_eq!(html_lang(&first).0, "es");
    let code = code_from(&first);
    browser.cookies.remove("agedrop_session");
    let inbox = {
        browser.login(&code);
        browser.get("/inbox")
    };
    assert_eq!(inbox.status, 200);
    assert_eq!(html_lang(&inbox).0, "es");
    // The code page shows no language links: a link would leave the only page with the code.
    assert!(!first.body.contains("?l="), "{}", first.body);
    assert!(inbox.body.contains("?l=fr"));
}

#[test]
fn the_config_chooses_the_languages_offered_and_the_default() {
    let options = Options {
        site: vec![
            ("languages", r#"["es", "fa", "en-XA"]"#.into()),
            ("default_language", r#""fa""#.into()),
        ],
        ..Default::default()
    };
    let server = Server::with(options);
    let landing = get_with(&server, "/", &[("Accept-Language", "en-US,en;q=0.9")]);
    assert_eq!(html_lang(&landing), ("fa".to_owned(), "rtl".to_owned()));
    // Only the languages offered are listed, and a link to another is ignored.
    assert!(landing.body.contains("?l=es") && landing.body.contains("?l=en-XA"));
    assert!(!landing.body.contains("?l=en\"") && !landing.body.contains("?l=ar"));
    assert_eq!(html_lang(&get_with(&server, "/?l=ar", &[])).0, "fa");
    // The pseudo-language: English, accented and lengthened, for layout checks.
    let pseudo = get_with(&server, "/?l=en-XA", &[]);
    assert_eq!(html_lang(&pseudo).0, "en-XA");
    assert!(pseudo.body.contains("Sééñd üüš"), "{}", pseudo.body);

    for (site, key, problem) in [
        (
            vec![("languages", r#"["en", "de"]"#)],
            "site.languages[1]",
            "`de` is not a language agedrop has",
        ),
        (
            vec![("languages", r#"["en", "en"]"#)],
            "site.languages[1]",
            "`en` is listed twice",
        ),
        (
            vec![("languages", "[]")],
            "site.languages",
            "must list at least one of",
        ),
        (
            vec![("languages", r#"["es"]"#), ("default_language", r#""en""#)],
            "site.default_language",
            "`en` is not one of site.languages (es)",
        ),
    ] {
        let options = Options {
            site: site.into_iter().map(|(k, v)| (k, v.to_owned())).collect(),
            ..Default::default()
        };
        let refused = Server::prepare(options).refused();
        let stderr = stderr(&refused);
        assert!(
            stderr.contains(&format!("config key `{key}`: {problem}")),
            "{key}: {stderr}"
        );
    }
}

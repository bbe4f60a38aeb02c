//! A real browser with JavaScript disabled (Debian's chromium + chromedriver, driven
//! over the W3C WebDriver protocol): first submission with a file → code → log in →
//! inbox → follow-up. Screenshots are kept as test artefacts.

mod common;

use common::*;
use serde_json::json;

#[test]
fn a_source_without_javascript_submits_logs_in_and_follows_up() {
    let server = Server::start();
    let driver = Driver::start();
    let site = format!("http://{}", server.addr);

    // JavaScript really is off in this browser.
    driver.go("data:text/html,<title>before</title><script>document.title='js ran'</script>");
    assert_eq!(driver.session("GET", "/title", None), json!("before"));

    driver.go(&format!("{site}/"));
    driver.screenshot("1-landing");
    driver.click("a.button");
    assert!(driver.url().ends_with("/submit"));
    let upload = server.dir.path().join("leak.pdf");
    std::fs::write(&upload, noise(300_000, 42)).unwrap();
    driver.type_into("#message", "Documents about the programme.");
    driver.type_into("#files", upload.to_str().unwrap());
    driver.screenshot("2-form");
    driver.click("button[type=submit]");
    driver.wait_for("#code");
    let code = driver.text("#code");
    assert_eq!(code.split(' ').count(), 8, "{code}");
    driver.screenshot("3-code");

    // A later visit: no cookies, log in with the code.
    driver.session("DELETE", "/cookie", None);
    driver.go(&format!("{site}/login"));
    driver.type_into("#code", &code.to_uppercase());
    driver.screenshot("4-login");
    driver.click("button[type=submit]");
    // The inbox is the only page with a logout form.
    driver.wait_for("form[action='/logout']");
    assert!(driver.url().ends_with("/inbox"), "{}", driver.url());
    assert_eq!(driver.count(".reply"), 0);
    driver.screenshot("5-inbox");

    // The follow-up form on the inbox.
    let second = server.dir.path().join("more.txt");
    std::fs::write(&second, "page 4").unwrap();
    driver.type_into("#message", "Here is page 4.");
    driver.type_into("#files", second.to_str().unwrap());
    driver.click("form[action='/submit'] button[type=submit]");
    eventually("the follow-up is stored", SOON, || {
        server.items().len() == 4
    });
    driver.wait_for("form[action='/logout']");
    assert!(driver.url().ends_with("/inbox"), "{}", driver.url());
    // The inbox says what just arrived, so the source does not send it again.
    let receipt = driver.text("#receipt");
    assert!(
        receipt.contains(": 1 message and 1 file.")
            && receipt.contains("you do not need to send it again"),
        "{receipt}"
    );
    driver.screenshot("6-after-follow-up");

    assert_eq!(server.sources(), 1, "the follow-up joined the same source");
    let items = server.items();
    assert_eq!(items.len(), 4);
    let (plain, meta) = server.open_item(&items[1]);
    assert_eq!(meta["filename"], "leak.pdf");
    assert!(
        plain == noise(300_000, 42),
        "the browser's upload decrypts to the file"
    );
    let (plain, _) = server.open_item(&items[3]);
    assert_eq!(plain, b"page 4");
}

#[test]
fn an_over_long_message_and_a_closed_conversation_get_pages_that_say_so() {
    let mut options = Options::default();
    options.limits.push(("max_message_chars", "40".into()));
    let server = Server::with(options);
    let token = server.add_journalist("editor");
    let driver = Driver::start();
    let site = format!("http://{}", server.addr);

    // The form states the limit in words and does not cut the text silently.
    driver.go(&format!("{site}/submit"));
    assert_eq!(driver.text("#message-limit"), "Up to 40 characters.");
    assert_eq!(
        driver.session(
            "GET",
            &format!("/element/{}/attribute/maxlength", driver.find("#message")),
            None
        ),
        json!(null),
        "no maxlength: an over-long message is refused with a page, not cut"
    );
    driver.type_into("#message", &"a".repeat(41));
    driver.click("button[type=submit]");
    // The refusal's own element: the form page also has an h1.
    driver.wait_for("#message-error");
    assert_eq!(driver.text("h1"), "Message too long");
    assert!(driver.text("main").contains("at most 40 characters"));
    assert!(server.items().is_empty());
    driver.screenshot("7-message-too-long");

    // A source the newsroom deleted sees that the conversation is closed.
    driver.go(&format!("{site}/submit"));
    driver.type_into("#message", "short enough");
    driver.click("button[type=submit]");
    driver.wait_for("#code");
    let source_id = server.items()[0].source_id.clone();
    assert_eq!(server.delete_source(&token, &source_id), 204);
    driver.go(&format!("{site}/inbox"));
    driver.wait_for("h1");
    assert_eq!(driver.text("h1"), "Conversation closed");
    assert!(driver.text("main").contains("Your code no longer works"));
    driver.screenshot("8-conversation-closed");
}

/// The `lang` and `dir` of the page the browser shows.
fn language_of(driver: &Driver) -> (String, String) {
    (
        driver.attribute("html", "lang").unwrap_or_default(),
        driver.attribute("html", "dir").unwrap_or_default(),
    )
}

#[test]
fn a_source_uses_the_site_in_spanish_and_in_arabic_and_the_choice_persists() {
    let server = Server::start();
    let site = format!("http://{}", server.addr);
    for (tag, dir) in [("es", "ltr"), ("ar", "rtl")] {
        let driver = Driver::start();
        let expect = |what: &str| {
            assert_eq!(
                language_of(&driver),
                (tag.to_owned(), dir.to_owned()),
                "{what}"
            );
        };
        driver.go(&format!("{site}/"));
        assert_eq!(language_of(&driver).0, "en");
        // The visible list of languages, each in its own name.
        driver.click(&format!("nav a[hreflang='{tag}']"));
        eventually("the page is in the chosen language", SOON, || {
            language_of(&driver).0 == tag
        });
        expect("landing");
        // The layout follows the direction (checked by the browser, not by our HTML).
        assert_eq!(
            driver.execute(
                "return getComputedStyle(document.body).direction",
                json!([])
            ),
            json!(dir)
        );
        driver.screenshot(&format!("{tag}-1-landing"));
        driver.click("a.button");
        driver.wait_for("#message");
        expect("submit form");
        driver.screenshot(&format!("{tag}-2-form"));
        driver.type_into("#message", "Documentos sobre el programa. وثائق");
        driver.click("button[type=submit]");
        driver.wait_for("#code");
        expect("code page");
        let code = driver.text("#code");
        // The code's words stay English whatever the page's language.
        assert_eq!(code.split(' ').count(), 8, "{code}");
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b' '),
            "{code}"
        );
        assert_eq!(driver.attribute("#code", "lang").as_deref(), Some("en"));
        driver.screenshot(&format!("{tag}-3-code"));

        // A later visit in the same browser session: the session is gone, the language
        // cookie is not.
        driver.session("DELETE", "/cookie/agedrop_session", None);
        driver.go(&format!("{site}/login"));
        expect("login");
        driver.type_into("#code", &code);
        driver.click("button[type=submit]");
        driver.wait_for("form[action='/logout']");
        assert!(driver.url().ends_with("/inbox"), "{}", driver.url());
        expect("inbox after login");
        driver.screenshot(&format!("{tag}-4-inbox"));
    }
    assert_eq!(server.sources(), 2);
}

/// Every kind of source page, reached as a source would: landing, form, code, inbox,
/// login, a refused field, a failed login, a page that does not exist. Calls `check`
/// on each with its name.
fn visit_every_page(driver: &Driver, site: &str, language: &str, mut check: impl FnMut(&str)) {
    driver.session("DELETE", "/cookie", None);
    driver.go(&format!("{site}/?l={language}"));
    check("landing");
    driver.go(&format!("{site}/submit"));
    check("submit");
    driver.type_into("#message", &"a".repeat(41));
    driver.click("button[type=submit]");
    driver.wait_for("#message-error");
    check("refused-field");
    driver.type_into("#message", "short enough");
    driver.click("button[type=submit]");
    driver.wait_for("#code");
    check("code");
    driver.click("main a");
    driver.wait_for("form[action='/logout']");
    check("inbox");
    driver.session("DELETE", "/cookie/agedrop_session", None);
    driver.go(&format!("{site}/login"));
    check("login");
    driver.type_into("#code", "wrong words that open nothing at all here");
    driver.click("button[type=submit]");
    driver.wait_for("#code-error");
    check("login-failed");
    driver.go(&format!("{site}/no-such-page"));
    check("not-found");
}

/// Options for a site that also offers the pseudo-language, with a short message
/// limit so a refusal is easy to reach.
fn site_with_pseudo_language() -> Options {
    let mut options = Options::default();
    options.limits.push(("max_message_chars", "40".into()));
    options.site = vec![(
        "languages",
        r#"["en", "es", "fr", "ar", "ru", "zh", "fa", "en-XA"]"#.into(),
    )];
    options
}

#[test]
fn every_page_fits_a_narrow_window_in_the_lengthened_pseudo_language() {
    let server = Server::with(site_with_pseudo_language());
    let driver = Driver::start();
    // A narrow window: a letterboxed Tor Browser, or a 1280-pixel one at 200 % zoom.
    driver.window(480, 900);
    let width = driver.execute("return document.documentElement.clientWidth", json!([]));
    assert!(width.as_u64().unwrap() <= 480, "{width}");
    let site = format!("http://{}", server.addr);
    visit_every_page(&driver, &site, "en-XA", |page| {
        assert_eq!(language_of(&driver).0, "en-XA", "{page}");
        // Nothing wider than the window: no horizontal scrolling, no element sticking out.
        let overflow = driver.execute(
            "const width = document.documentElement.clientWidth;\
             const out = [...document.querySelectorAll('body *')]\
               .filter(e => { const r = e.getBoundingClientRect(); return r.right > width + 1 || r.left < -1; })\
               .map(e => e.tagName + '#' + e.id + '.' + e.className);\
             if (document.documentElement.scrollWidth > width) out.push('document ' + document.documentElement.scrollWidth);\
             return out;",
            json!([]),
        );
        assert_eq!(
            overflow,
            json!([]),
            "{page} overflows a {width}-pixel window"
        );
        driver.screenshot(&format!("pseudo-{page}"));
    });
}

#[test]
fn every_source_page_passes_an_axe_core_wcag_2_2_aa_audit_left_to_right_and_right_to_left() {
    let axe_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/node_modules/axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&axe_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `npm ci` in tests/interop (scripts/test does)",
            axe_path.display()
        )
    });
    for language in ["en", "ar"] {
        let server = Server::with(site_with_pseudo_language());
        let driver = Driver::with_javascript();
        let site = format!("http://{}", server.addr);
        let mut audited = 0;
        visit_every_page(&driver, &site, language, |page| {
            assert_eq!(language_of(&driver).0, language, "{page}");
            // axe runs as the test's script, injected by the WebDriver; the page itself
            // still runs none.
            driver.execute(
                &format!("{axe}\n;window.axe = axe; return true;"),
                json!([]),
            );
            let violations = driver.execute_async(
                "const done = arguments[arguments.length - 1];\
                 setTimeout(() => done(['axe did not finish in 20 s']), 20000);\
                 axe.run(document, {runOnly: {type: 'tag', values:\
                   ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},\
                   resultTypes: ['violations']})\
                 .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help\
                   + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))))\
                 .catch(e => done(['axe failed: ' + e]));",
                json!([]),
            );
            assert_eq!(violations, json!([]), "{language} {page}");
            audited += 1;
        });
        assert_eq!(audited, 8);
    }
}

/// Presses `key` (a WebDriver key code, e.g. Tab) once, through the input device
/// actions a person's keyboard produces.
fn press(driver: &Driver, key: &str) {
    driver.session(
        "POST",
        "/actions",
        Some(
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}
            ]}]}),
        ),
    );
}

/// Presses Tab until the focused element matches `css` (at most 40 times), as a person
/// moving through the page with the keyboard.
fn tab_to(driver: &Driver, css: &str) {
    const TAB: &str = "\u{E004}";
    let wanted = driver.find(css);
    for _ in 0..40 {
        press(driver, TAB);
        let active = driver.session("GET", "/element/active", None);
        if active.as_object().and_then(|o| o.values().next()) == Some(&json!(wanted)) {
            return;
        }
    }
    panic!("Tab never reached {css}");
}

#[test]
fn the_whole_source_flow_works_with_the_keyboard_alone() {
    const ENTER: &str = "\u{E007}";
    let server = Server::start();
    let driver = Driver::start();
    let site = format!("http://{}", server.addr);
    driver.go(&format!("{site}/"));
    // Choose a language, start, write, send: Tab and Enter only.
    tab_to(&driver, "nav a[hreflang='fr']");
    press(&driver, ENTER);
    eventually("the page is in French", SOON, || {
        language_of(&driver).0 == "fr"
    });
    tab_to(&driver, "a.button");
    press(&driver, ENTER);
    driver.wait_for("#message");
    tab_to(&driver, "#message");
    for key in "Par le clavier".chars() {
        press(&driver, &key.to_string());
    }
    tab_to(&driver, "form[action='/submit'] button[type=submit]");
    press(&driver, ENTER);
    driver.wait_for("#code");
    let code = driver.text("#code");
    tab_to(&driver, "main a[href='/inbox']");
    press(&driver, ENTER);
    driver.wait_for("form[action='/logout']");
    // Log out and back in with the code, still by keyboard.
    tab_to(&driver, "form[action='/logout'] button");
    press(&driver, ENTER);
    driver.wait_for("a.button");
    driver.go(&format!("{site}/login"));
    tab_to(&driver, "#code");
    for key in code.chars() {
        press(&driver, &key.to_string());
    }
    press(&driver, ENTER);
    driver.wait_for("form[action='/logout']");
    assert!(driver.url().ends_with("/inbox"), "{}", driver.url());
    assert_eq!(language_of(&driver).0, "fr");
    let items = server.items();
    assert_eq!(items.len(), 1, "the message");
    let (plain, _) = server.open_item(&items[0]);
    assert_eq!(plain, b"Par le clavier");
}

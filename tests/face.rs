//! The newsroom's face on the source site (`[site]`): name, logo, introduction,
//! instructions and contact line, per language, escaped, from the site's own origin;
//! and refusals told beside the form field they are about.

mod common;

use common::*;

/// A 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82";

#[test]
fn the_newsroom_name_logo_and_words_are_shown_escaped_in_the_sources_language() {
    let mut options = Options::default();
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, PNG).unwrap();
    options.site =
        vec![
        ("name", r#""The <b>Daily</b> & Co""#.into()),
        ("logo", format!("{:?}", logo.to_str().unwrap())),
        (
            "intro",
            r#"{ en = "We investigate <power>.\n\nWrite to us.", es = "Investigamos el poder." }"#
                .into(),
        ),
        ("instructions", r#""Send originals if you can.""#.into()),
        ("contact", r#"{ en = "Signal: +1 555 0100", fr = "Signal : +1 555 0100" }"#.into()),
    ];
    let server = Server::with(options);

    let landing = get(server.addr, "/");
    let body = &landing.body;
    // Escaped everywhere: the title, the header, the logo's text alternative.
    assert!(
        body.contains(
            "<title>Send us documents, safely — The &lt;b&gt;Daily&lt;/b&gt; &amp; Co</title>"
        ),
        "{body}"
    );
    assert!(
        body.contains(r#"<img src="/logo.png" alt="The &lt;b&gt;Daily&lt;/b&gt; &amp; Co">"#),
        "{body}"
    );
    assert!(!body.contains("<b>Daily"));
    // The introduction replaces the default one, a paragraph per blank-line block.
    assert!(
        body.contains("<p>We investigate &lt;power&gt;.</p><p>Write to us.</p>"),
        "{body}"
    );
    assert!(!body.contains("This is a secure drop."));
    assert!(
        body.contains("<h2>Before you send</h2><p>Send originals if you can.</p>"),
        "{body}"
    );
    assert!(
        body.contains("<footer><p>Contact: Signal: +1 555 0100</p></footer>"),
        "{body}"
    );

    // In Spanish: the Spanish introduction; the text for every language; a contact line
    // written only in other languages falls back to the default's, marked as English.
    let spanish = get(server.addr, "/?l=es").body;
    assert!(
        spanish.contains("<p>Investigamos el poder.</p>"),
        "{spanish}"
    );
    assert!(spanish.contains("<p>Send originals if you can.</p>"));
    assert!(
        spanish.contains(r#"<span lang="en" dir="ltr">Signal: +1 555 0100</span>"#),
        "{spanish}"
    );
    let french = get(server.addr, "/login?l=fr").body;
    assert!(
        french.contains("Signal : +1 555 0100</p></footer>"),
        "{french}"
    );
    // Arabic has no introduction of its own: the default language's, marked as such.
    let arabic = get(server.addr, "/?l=ar").body;
    assert!(
        arabic.contains(r#"<p lang="en" dir="ltr">We investigate &lt;power&gt;.</p>"#),
        "{arabic}"
    );

    // The logo comes from the site itself, as it was given, with the strict headers.
    let served = get(server.addr, "/logo.png");
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("image/png"));
    assert_eq!(served.bytes, PNG);
    assert!(served
        .header("content-security-policy")
        .unwrap()
        .contains("sandbox"));
    assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(get(server.addr, "/logo.svg").status, 404);
}

#[test]
fn without_a_site_section_the_face_is_neutral() {
    let server = Server::start();
    let landing = get(server.addr, "/");
    assert!(landing
        .body
        .contains("<title>Send us documents, safely — Secure drop</title>"));
    assert!(landing.body.contains("This is a secure drop."));
    assert!(!landing.body.contains("<img") && !landing.body.contains("<footer>"));
    assert_eq!(get(server.addr, "/logo.png").status, 404);
}

#[test]
fn a_plain_svg_logo_is_served_and_an_active_or_large_one_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("logo.svg");
    std::fs::write(
        &svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 10"><rect width="40" height="10" fill="#14532d"/><text x="2" y="8" fill="#fff">News</text></svg>"##,
    )
    .unwrap();
    let options = Options {
        site: vec![
            ("name", r#""Example News""#.into()),
            ("logo", format!("{:?}", svg.to_str().unwrap())),
        ],
        ..Default::default()
    };
    let server = Server::with(options);
    let served = get(server.addr, "/logo.svg");
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("image/svg+xml"));
    assert_eq!(
        served.header("content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'; sandbox")
    );
    assert!(get(server.addr, "/")
        .body
        .contains(r#"<img src="/logo.svg" alt="Example News">"#));

    let refusals: [(&str, Vec<u8>, &str); 6] = [
        (
            "script.svg",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec(),
            "the element <script> is not allowed",
        ),
        (
            "remote.svg",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><rect fill="url(http://example.org/x)"/></svg>"#.to_vec(),
            "a url() points outside the file",
        ),
        (
            "handler.svg",
            br#"<svg xmlns="http://www.w3.org/2000/svg" onload="x()"/>"#.to_vec(),
            "the attribute onload is not allowed",
        ),
        ("big.png", [PNG, &vec![0u8; 70 * 1024]].concat(), "a logo may be at most 65536"),
        ("page.html", b"<html><body>hi</body></html>".to_vec(), "the root element is not <svg>"),
        ("text.svg", b"<svg".to_vec(), "not well-formed XML"),
    ];
    for (name, bytes, problem) in refusals {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let options = Options {
            site: vec![("logo", format!("{:?}", path.to_str().unwrap()))],
            ..Default::default()
        };
        let out = Server::prepare(options).refused();
        let said = stderr(&out);
        assert!(said.contains("config key `site.logo`: "), "{name}: {said}");
        assert!(said.contains(problem), "{name}: {said}");
    }
    // A device named by mistake is refused at once, not read until memory runs out.
    let options = Options {
        site: vec![("logo", r#""/dev/zero""#.into())],
        ..Default::default()
    };
    let said = stderr(&Server::prepare(options).refused());
    assert!(
        said.contains("config key `site.logo`: /dev/zero is not a regular file"),
        "{said}"
    );
    let options = Options {
        site: vec![("name", format!("{:?}", "N".repeat(81)))],
        ..Default::default()
    };
    let said = stderr(&Server::prepare(options).refused());
    assert!(
        said.contains("config key `site.name`: must be 1 to 80 characters"),
        "{said}"
    );
    let options = Options {
        site: vec![("intro", r#"{ de = "Hallo" }"#.into())],
        ..Default::default()
    };
    let said = stderr(&Server::prepare(options).refused());
    assert!(
        said.contains("config key `site.intro.de`: `de` is not one of site.languages"),
        "{said}"
    );
}

#[test]
fn a_refusal_about_a_field_is_told_beside_it_and_tied_to_it() {
    let mut options = Options::default();
    options.limits.push(("max_message_chars", "40".into()));
    let server = Server::with(options);

    let mut browser = Browser::new(server.addr);
    browser.get("/submit");
    let long = browser.submit(vec![Part::text("message", &[b'x'; 41])]);
    assert_eq!(long.status, 400);
    let body = &long.body;
    assert!(body.contains("<h1>Message too long</h1>"), "{body}");
    assert!(body.contains(r#"<p class="field-error" id="message-error"><strong>Error:</strong> A message can be at most 40 characters long."#), "{body}");
    assert!(
        body.contains(r#"aria-invalid="true" aria-describedby="message-error message-limit""#),
        "{body}"
    );
    assert!(body.contains("Nothing from this attempt was kept."));
    // The form is there again, with a fresh token that works.
    let again = browser.submit(vec![Part::text("message", b"short enough")]);
    assert_eq!(again.status, 200, "{}", again.body);

    let mut browser = Browser::new(server.addr);
    browser.get("/submit");
    let empty = browser.submit(vec![Part::text("message", b"")]);
    assert_eq!(empty.status, 400);
    assert!(
        empty.body.contains(r#"id="message-error""#),
        "{}",
        empty.body
    );

    // A code that opens nothing: the login form again, the error tied to the code field.
    let mut browser = Browser::new(server.addr);
    let failed = browser.login("not a real code at all");
    assert_eq!(failed.status, 403);
    assert!(
        failed.body.contains("<h1>That did not work</h1>"),
        "{}",
        failed.body
    );
    assert!(
        failed
            .body
            .contains(r#"aria-invalid="true" aria-describedby="code-error code-hint""#),
        "{}",
        failed.body
    );
    assert!(failed
        .body
        .contains(r#"<p class="field-error" id="code-error">"#));

    // In Spanish, the same refusal is Spanish.
    let mut browser = Browser::new(server.addr);
    browser.get("/submit?l=es");
    let spanish = browser.submit(vec![Part::text("message", &[b'x'; 41])]);
    assert!(
        spanish.body.starts_with("<!DOCTYPE html><html lang=\"es\""),
        "{}",
        spanish.body
    );
    assert!(!spanish.body.contains("Message too long"));
}

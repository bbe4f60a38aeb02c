//! The source site's pages and headers: strict headers on every response, no script,
//! nothing from another origin, fixed error pages; idle uploads are dropped. (The
//! free-space floor: tests/reliability.rs.)

mod common;

use std::io::Write;

use common::*;

fn assert_strict_headers(response: &Response, what: &str) {
    let csp = response
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: CSP"));
    assert!(csp.starts_with("default-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(
        response.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(
        response.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(response.header("cache-control"), Some("no-store"), "{what}");
    assert!(
        response.header("server").is_none(),
        "{what}: no Server header"
    );
}

fn assert_self_contained(body: &str, what: &str) {
    let lower = body.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{what}: no script");
    assert!(
        !lower.contains("http://") && !lower.contains("https://"),
        "{what}: no other origin"
    );
    assert!(
        !lower.contains("src=\"//") && !lower.contains("href=\"//"),
        "{what}: no other origin"
    );
}

#[test]
fn every_response_has_strict_headers_and_no_script() {
    let server = Server::start();
    let form = form(server.addr);
    let mut responses = vec![
        ("landing", get(server.addr, "/")),
        ("form", get(server.addr, "/submit")),
        ("css", get(server.addr, "/static/style.css")),
        ("404", get(server.addr, "/no/such/page")),
        ("405", request(server.addr, "DELETE", "/submit", &[], b"")),
        (
            "403",
            post_submit(
                server.addr,
                &form,
                &multipart(&[Part::text("message", b"x")]),
            ),
        ),
        ("400", post_submit(server.addr, &form, b"garbage")),
    ];
    responses.push((
        "code page",
        submit(server.addr, vec![Part::text("message", b"hello")]),
    ));
    for (what, response) in &responses {
        assert_strict_headers(response, what);
        assert_self_contained(&response.body, what);
    }
    assert_eq!(responses[0].1.status, 200);
    assert!(responses[0].1.body.contains("Tor Browser"));
    assert_eq!(responses[3].1.status, 404);
    assert_eq!(responses[4].1.status, 405);
    assert_eq!(responses[5].1.status, 403);
    assert_eq!(responses[6].1.status, 400);
    assert_eq!(responses[7].1.status, 200);
    assert!(responses[2]
        .1
        .header("content-type")
        .unwrap()
        .starts_with("text/css"));
}

#[test]
fn submit_form_matches_the_interface() {
    let server = Server::start();
    let page = get(server.addr, "/submit");
    let body = &page.body;
    assert!(
        body.contains(r#"<form method="post" action="/submit" enctype="multipart/form-data">"#),
        "{body}"
    );
    assert!(body.contains(r#"<textarea id="message" name="message""#));
    assert!(body.contains(r#"type="file" name="files" multiple"#));
    // csrf comes first in the form, so browsers send it first.
    let csrf = body.find(r#"name="csrf""#).unwrap();
    assert!(csrf < body.find(r#"name="message""#).unwrap());
    let cookie = page.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

#[test]
fn a_silent_upload_is_dropped_after_the_idle_timeout() {
    let server = Server::with(Options {
        limits: vec![
            ("min_free_bytes", "0".into()),
            ("idle_body_timeout_secs", "2".into()),
        ],
        ..Options::default()
    });
    let form = form(server.addr);
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("slow.bin", noise(1024 * 1024, 9))],
    ));
    let mut stream = partial_submit(server.addr, &form, &body, body.len() / 2);
    eventually("the upload is streaming", SOON, || server.temp_files() > 0);
    // Silence: the server gives up, answers and removes the temp file.
    eventually("the idle upload is dropped", SOON, || {
        server.temp_files() == 0
    });
    let _ = stream.write_all(b"late");
    let response = read_response(&mut stream);
    assert_eq!(response.status, 400);
    assert!(
        response
            .body
            .contains("The upload could not be read completely. Please try again."),
        "{}",
        response.body
    );
    assert!(response
        .body
        .contains("Nothing from this attempt was kept."));
    assert!(server.items().is_empty());
    assert_eq!(get(server.addr, "/").status, 200);
}

#[test]
fn every_source_page_weighs_at_most_20_kb_with_its_stylesheet_in_every_language() {
    let server = Server::start();
    let css = get(server.addr, "/static/style.css");
    assert_eq!(css.status, 200);
    assert!(
        css.body.contains(":focus-visible{outline:3px solid"),
        "focus stays visible for keyboard users"
    );
    for language in ["en", "es", "fr", "ar", "ru", "zh", "fa"] {
        let mut source = Browser::new(server.addr);
        let mut pages = vec![
            ("landing", source.get(&format!("/?l={language}"))),
            ("submit", source.get("/submit")),
            ("login", source.get("/login")),
        ];
        let code = source.submit(vec![Part::text("message", b"hello")]);
        pages.push(("code", code));
        pages.push(("inbox", source.get("/inbox")));
        for (name, page) in &pages {
            assert_eq!(page.status, 200, "{language} {name}");
            assert!(
                page.body.contains(&format!("<html lang=\"{language}")),
                "{language} {name}"
            );
            let weight = page.bytes.len() + css.bytes.len();
            assert!(
                weight <= 20 * 1024,
                "{language} {name}: {weight} bytes with the stylesheet"
            );
        }
    }
}

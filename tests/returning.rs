//! The returning source through HTTP: codes, login, sessions, inbox, replies,
//! follow-ups, rotating codes, the Argon2 limit.

mod common;

use std::time::Duration;

use common::*;

fn first_submission(_server: &Server, browser: &mut Browser, message: &str) -> String {
    browser.get("/submit");
    let page = browser.submit(vec![Part::text("message", message.as_bytes())]);
    assert_eq!(page.status, 200, "{}", page.body);
    code_from(&page)
}

#[test]
fn code_logs_in_and_follow_ups_join_the_same_source() {
    let server = Server::start();
    let mut first = Browser::new(server.addr);
    let code = first_submission(&server, &mut first, "first message");

    // A new visit (no cookies), with the code typed untidily.
    let mut source = Browser::new(server.addr);
    let messy = format!(
        "  {} ",
        code.to_uppercase()
            .replacen(' ', "  -  ", 3)
            .replace(' ', "..")
    );
    let messy = messy.replace("....", " ");
    let login = source.login(&messy);
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(login.header("location"), Some("/inbox"));
    let cookie = login.header("set-cookie").unwrap();
    assert!(cookie.starts_with("agedrop_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/")
    );
    let session_id = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert_eq!(session_id.len(), 64, "256-bit session id");

    let inbox = source.get("/inbox");
    assert_eq!(inbox.status, 200);
    assert!(inbox.body.contains("No replies yet"));
    assert!(inbox.body.contains(r#"action="/submit""#), "follow-up form");

    let follow_up = source.submit(vec![
        Part::text("message", b"second message"),
        Part::file("more.txt", b"more".to_vec()),
    ]);
    assert_eq!(follow_up.status, 303);
    assert_eq!(follow_up.header("location"), Some("/inbox"));

    assert_eq!(server.sources(), 1, "the follow-up joined the same source");
    let items = server.items();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i.source_id == items[0].source_id));
    assert_eq!(
        items.iter().map(|i| i.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let (plain, _) = server.open_item(&items[1]);
    assert_eq!(plain, b"second message");

    // The source has a label and a recipient; the code appears nowhere on disk.
    let rows = server.source_rows();
    assert!(rows[0].1.contains('-'), "label {}", rows[0].1);
    assert!(rows[0].2.starts_with("age1"));
    for file in files_under(&server.data()) {
        assert!(!contains(&std::fs::read(&file).unwrap(), code.as_bytes()));
    }
}

#[test]
fn wrong_codes_get_one_generic_page_and_no_session() {
    let server = Server::start();
    let mut first = Browser::new(server.addr);
    let code = first_submission(&server, &mut first, "hello");
    let mut words: Vec<&str> = code.split(' ').collect();
    words.swap(0, 1);
    let wrong = words.join(" ");
    let mut pages = Vec::new();
    for attempt in [wrong.as_str(), "not a code", "", &format!("{code} abacus")] {
        let mut browser = Browser::new(server.addr);
        let page = browser.login(attempt);
        assert_eq!(page.status, 403, "{attempt:?}");
        assert!(
            page.header("set-cookie").is_none(),
            "no session for {attempt:?}"
        );
        assert!(page.body.contains("did not open anything"));
        assert_eq!(
            browser.get("/inbox").status,
            303,
            "no inbox without a session"
        );
        // The login form comes back with the error beside the code field; only its
        // csrf token (this browser's) may differ.
        let token = browser.csrf.clone().expect("the form again, with a token");
        assert!(page.body.contains(&token));
        pages.push(page.body.replace(&token, "TOKEN"));
    }
    assert!(
        pages.windows(2).all(|w| w[0] == w[1]),
        "identical pages for every failure"
    );
}

#[test]
fn logout_ends_the_session() {
    let server = Server::start();
    let mut source = Browser::new(server.addr);
    let code = first_submission(&server, &mut source, "hello");
    // The first submission logs the source in.
    assert_eq!(source.get("/inbox").status, 200);
    let stolen = source.cookies.clone();
    let page = source.post_form("/logout", &[]);
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), Some("/"));
    assert!(!source.cookies.contains_key("agedrop_session"));
    // The old cookie opens nothing any more.
    let mut replay = Browser::new(server.addr);
    replay.cookies = stolen;
    let page = replay.get("/inbox");
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), Some("/login"));
    // Logging in again works.
    assert_eq!(Browser::new(server.addr).login(&code).status, 303);
}

#[test]
fn replies_show_decrypted_in_their_sources_inbox_only_and_delete_for_real() {
    let server = Server::start();
    let mut alice = Browser::new(server.addr);
    first_submission(&server, &mut alice, "from alice");
    let mut bob = Browser::new(server.addr);
    first_submission(&server, &mut bob, "from bob");
    let rows = server.source_rows();
    let (alice_id, _, alice_recipient) = &rows[0];

    let reply = encrypt_to(
        &[alice_recipient, &server.newsroom.recipient],
        "Thank you. <b>Can you</b> send the second file?".as_bytes(),
    );
    let reply_id = server.store_reply(alice_id, &reply);
    // The newsroom can read its own reply too.
    assert_eq!(
        server.newsroom.decrypt(&reply),
        "Thank you. <b>Can you</b> send the second file?".as_bytes()
    );

    let inbox = alice.get("/inbox");
    assert_eq!(inbox.status, 200);
    assert_eq!(inbox.body.matches(r#"class="reply""#).count(), 1);
    assert!(
        inbox
            .body
            .contains("Thank you. &lt;b&gt;Can you&lt;/b&gt; send the second file?"),
        "{}",
        inbox.body
    );
    let bob_inbox = bob.get("/inbox");
    assert_eq!(bob_inbox.body.matches(r#"class="reply""#).count(), 0);
    assert!(!bob_inbox.body.contains("Thank you"));

    // Bob cannot delete Alice's reply.
    let page = bob.post_form(&format!("/replies/{reply_id}/delete"), &[]);
    assert_eq!(page.status, 404);
    // Alice can.
    let page = alice.post_form(&format!("/replies/{reply_id}/delete"), &[]);
    assert_eq!(page.status, 303);
    let inbox = alice.get("/inbox");
    assert_eq!(inbox.body.matches(r#"class="reply""#).count(), 0);
    assert!(!server
        .data()
        .join("blobs")
        .join(format!("{reply_id}.reply.age"))
        .exists());
    // Deleting needs the csrf token.
    let page = alice.request(
        "POST",
        &format!("/replies/{reply_id}/delete"),
        Some("application/x-www-form-urlencoded"),
        b"csrf=00",
    );
    assert_eq!(page.status, 403);
}

#[test]
fn rotating_codes_replace_the_code_at_each_login() {
    let mut options = Options::default();
    options.source.push(("rotate_codes", "true".into()));
    let server = Server::with(options);
    let mut first = Browser::new(server.addr);
    let old = first_submission(&server, &mut first, "hello");
    let (source_id, _, recipient) = server.source_rows().remove(0);
    server.store_reply(
        &source_id,
        &encrypt_to(&[&recipient], b"a reply before rotation"),
    );

    let mut source = Browser::new(server.addr);
    assert_eq!(source.login(&old).status, 303);
    let inbox = source.get("/inbox");
    let new = code_from(&inbox);
    assert_ne!(new, old);
    assert_eq!(new.split(' ').count(), 8);
    assert!(
        inbox.body.contains("a reply before rotation"),
        "replies survive rotation"
    );
    // Shown until the source confirms it; the old code still works meanwhile.
    assert!(source.get("/inbox").body.contains(&new));
    // A new login with the old code (this one's page was lost, say) replaces the first
    // session and shows the same pending code, not yet another.
    let mut source = Browser::new(server.addr);
    assert_eq!(source.login(&old).status, 303);
    assert_eq!(code_from(&source.get("/inbox")), new);
    let confirmed = source.post_form("/code/confirm", &[]);
    assert_eq!(confirmed.status, 303);
    assert_eq!(confirmed.header("location"), Some("/inbox"));
    assert!(!source.get("/inbox").body.contains(&new), "no longer shown");

    assert_eq!(
        Browser::new(server.addr).login(&old).status,
        403,
        "the old code is consumed once the new one is confirmed"
    );
    let mut again = Browser::new(server.addr);
    assert_eq!(again.login(&new).status, 303, "the new code works");
    assert_eq!(server.sources(), 1);
}

#[test]
fn concurrent_logins_never_exceed_the_argon2_limit() {
    let mut options = Options {
        log: "agedrop=debug",
        ..Options::default()
    };
    options
        .limits
        .push(("max_concurrent_derivations", "2".into()));
    options.limits.push(("derivation_queue", "3".into()));
    options.source = vec![
        ("argon2_memory_kib", "16384".into()),
        ("argon2_passes", "4".into()),
    ];
    let mut server = Server::with(options);
    let mut first = Browser::new(server.addr);
    let code = first_submission(&server, &mut first, "hello");
    let mut browsers: Vec<Browser> = (0..20)
        .map(|_| {
            let mut b = Browser::new(server.addr);
            b.get("/login");
            b
        })
        .collect();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = browsers
            .iter_mut()
            .enumerate()
            .map(|(i, browser)| {
                let attempt = if i == 0 {
                    code.clone()
                } else {
                    format!("{code}x")
                };
                let attempt = if i % 2 == 1 {
                    "abacus ".repeat(8)
                } else {
                    attempt
                };
                scope.spawn(move || browser.post_form("/login", &[("code", &attempt)]).status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        statuses.iter().all(|s| [303, 403, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "a queue of 3 turns some of 20 away: {statuses:?}"
    );
    assert!(statuses.iter().filter(|s| **s == 403).count() >= 1);
    let busy = Browser::new(server.addr).get("/login");
    assert_eq!(busy.status, 200, "the site still answers");
    // Stopped, so every derivation it was going to log is in the file.
    server.stop();
    let log = server.log();
    let running: Vec<usize> = log
        .lines()
        .filter_map(|l| l.split("running=").nth(1))
        .map(|n| n.trim().parse().unwrap())
        .collect();
    assert!(running.len() >= 3, "derivations were logged: {log}");
    assert!(
        running.iter().all(|n| *n <= 2),
        "never more than 2 at once: {running:?}"
    );
}

#[test]
fn a_session_never_expires_while_its_upload_streams() {
    let mut options = Options::default();
    options.limits.push(("session_idle_secs", "2".into()));
    let server = Server::with(options);
    let mut source = Browser::new(server.addr);
    first_submission(&server, &mut source, "hello");
    source.get("/inbox");
    let cookies = source
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let form = Form {
        cookie: cookies,
        token: source.csrf.clone().unwrap(),
    };
    // A follow-up trickling for ~4 s, longer than the 2 s idle timeout.
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("slow.bin", noise(40 * 1024, 3))],
    ));
    let mut stream = partial_submit(server.addr, &form, &body, 0);
    for chunk in body.chunks(body.len() / 8 + 1) {
        std::io::Write::write_all(&mut stream, chunk).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    let page = read_response(&mut stream);
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.header("location"), Some("/inbox"));
    assert_eq!(server.sources(), 1);
    assert_eq!(server.items().len(), 2);
    // Right after the upload the session is fresh; idle past the timeout, it is gone.
    assert_eq!(source.get("/inbox").status, 200);
    // Idle on purpose, and longer than the 2 s timeout (any request would touch the
    // session): a lower bound, so a slow machine only makes it more true.
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(source.get("/inbox").status, 303);
}

#[test]
fn pages_for_returning_sources_have_no_script_and_stay_on_site() {
    let server = Server::start();
    let mut source = Browser::new(server.addr);
    first_submission(&server, &mut source, "hello");
    let (source_id, _, recipient) = server.source_rows().remove(0);
    server.store_reply(
        &source_id,
        &encrypt_to(
            &[&recipient],
            b"<script>alert(1)</script> https://evil.example",
        ),
    );
    for path in ["/", "/login", "/inbox", "/submit"] {
        let page = source.get(path);
        assert_eq!(page.status, 200, "{path}");
        let body = page.body.to_ascii_lowercase();
        assert!(!body.contains("<script"), "{path}");
        assert!(
            !body.contains("href=\"http")
                && !body.contains("src=\"http")
                && !body.contains("action=\"http"),
            "{path}"
        );
        assert!(page
            .header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'none'"));
    }
    // Every form on the inbox has a csrf field.
    let inbox = source.get("/inbox");
    assert_eq!(
        inbox.body.matches("<form").count(),
        inbox.body.matches(r#"name="csrf""#).count()
    );
}

#[test]
fn the_not_on_the_onion_notice_follows_the_host() {
    let server = Server::start();
    let mut clearnet = Browser::new(server.addr);
    assert!(clearnet
        .get("/")
        .body
        .contains("not using this site's onion address"));
    let mut onion = Browser::new(server.addr);
    onion.host = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion".into();
    assert!(!onion
        .get("/")
        .body
        .contains("not using this site's onion address"));

    let mut options = Options::default();
    options.source.push(("onion_notice", "false".into()));
    let quiet = Server::with(options);
    assert!(!Browser::new(quiet.addr)
        .get("/")
        .body
        .contains("onion address"));
}

#[test]
fn a_follow_up_after_the_session_ended_is_refused_not_turned_into_a_new_source() {
    let server = Server::start();
    let mut source = Browser::new(server.addr);
    first_submission(&server, &mut source, "hello");
    source.get("/inbox");
    let old = source.cookies.clone();
    let csrf = source.csrf.clone();
    source.post_form("/logout", &[]);
    // An old inbox tab posts its follow-up form after the session is gone.
    let mut stale = Browser::new(server.addr);
    stale.cookies = old;
    stale.csrf = csrf;
    let page = stale.submit(vec![Part::text("message", b"more")]);
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("Log in again"));
    assert_eq!(
        server.sources(),
        1,
        "no new source behind the source's back"
    );
    assert_eq!(server.items().len(), 1);
}

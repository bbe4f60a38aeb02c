//! Ingest through a real server on 127.0.0.1: round trips, limits, bad input, aborts,
//! crashes. Every test checks what is (not) left in the data directory.

mod common;

use std::collections::HashMap;

use common::*;

#[test]
fn message_and_three_files_round_trip_through_age_crate_and_cli() {
    let server = Server::start();
    let big = noise(32 * 1024 * 1024 + 12_345, 1);
    let small = b"small file\n".to_vec();
    let empty = Vec::new();
    let message = "Hello newsroom — ünïcödé ✓\nsecond line"
        .as_bytes()
        .to_vec();
    let page = submit(
        server.addr,
        vec![
            Part::text("message", &message),
            Part::file("big.bin", big.clone()),
            Part::file("notes.txt", small.clone()),
            Part::file("empty.dat", empty.clone()),
        ],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let code = code_from(&page);
    assert_eq!(code.split(' ').count(), 8, "an 8-word code: {code}");

    let items = server.items();
    assert_eq!(items.len(), 4);
    assert_eq!(server.sources(), 1);
    let expected: HashMap<&str, (&str, &[u8])> = HashMap::from([
        ("message", ("message", message.as_slice())),
        ("big.bin", ("file", big.as_slice())),
        ("notes.txt", ("file", small.as_slice())),
        ("empty.dat", ("file", empty.as_slice())),
    ]);
    let mut seen = Vec::new();
    for item in &items {
        let (plain, meta) = server.open_item(item);
        let name = meta["filename"].as_str().unwrap_or("message");
        let (kind, bytes) = expected[name];
        assert_eq!(item.kind, kind);
        assert_eq!(meta["kind"], kind);
        assert!(plain == bytes, "{name}: decrypted bytes differ");
        assert_eq!(meta["plaintext_size"], bytes.len() as u64);
        assert_eq!(item.day.len(), 10, "coarse date YYYY-MM-DD");
        let meta_path = server
            .data()
            .join("blobs")
            .join(format!("{}.meta.age", item.id));
        let record = server.newsroom.decrypt(&std::fs::read(meta_path).unwrap());
        assert_eq!(
            record.len(),
            1024,
            "metadata is padded so its size hides the filename's"
        );
        // Stock age gives back the same bytes.
        let path = server.data().join("blobs").join(format!("{}.age", item.id));
        assert!(
            server.newsroom.decrypt_with_cli(&path) == bytes,
            "{name}: age CLI differs"
        );
        seen.push(item.seq);
    }
    seen.sort();
    assert_eq!(seen, vec![1, 2, 3, 4], "order within the source");
    assert_eq!(server.temp_files(), 0);
}

#[test]
fn markers_never_reach_disk_logs_or_headers() {
    let mut options = Options {
        log: "trace",
        ..Options::default()
    };
    options
        .limits
        .push(("max_submission_bytes", (1024 * 1024).to_string()));
    let mut server = Server::with(options);
    let marker = format!("CANARY{}", std::process::id());
    let mut headers_seen = Vec::new();
    let mut codes = Vec::new();

    // A first submission with the marker in the message, a filename, a content type
    // and a file body.
    let mut source = Browser::new(server.addr);
    source.get("/submit");
    let mut file = Part::file(
        format!("{marker}.txt"),
        format!("body {marker} ").repeat(1000).into_bytes(),
    );
    file.content_type = format!("text/x-{marker}");
    let page = source.submit(vec![
        Part::text("message", format!("message {marker}").as_bytes()),
        file,
    ]);
    assert_eq!(page.status, 200);
    codes.push(code_from(&page));
    headers_seen.push(page.headers.clone());

    // Log in again with the code, follow up, and fail in several ways, all carrying
    // the marker.
    let mut back = Browser::new(server.addr);
    let page = back.login(&codes[0]);
    assert_eq!(page.status, 303);
    headers_seen.push(page.headers.clone());
    back.get("/inbox");
    let page = back.submit(vec![Part::file(
        format!("{marker}-2.txt"),
        marker.clone().into_bytes(),
    )]);
    assert_eq!(page.status, 303);
    let page = back.submit(vec![Part::file(
        format!("{marker}-big.bin"),
        noise(2 * 1024 * 1024, 1),
    )]);
    assert_eq!(page.status, 413);
    let mut bad_text = format!("{marker}\u{0}").into_bytes();
    bad_text.push(0xff);
    let page = back.submit(vec![Part::text("message", &bad_text)]);
    assert_eq!(page.status, 400, "not UTF-8");
    let page = back.submit(vec![Part::text(&marker, b"x")]);
    assert_eq!(page.status, 400);
    headers_seen.push(page.headers.clone());
    let page = Browser::new(server.addr).login(&format!("{marker} {marker}"));
    assert_eq!(page.status, 403);

    // Stopped, so every line it was going to log is in the file.
    server.stop();
    let log = server.log();
    assert!(log.contains("submission stored"), "trace log was captured");
    assert!(!log.contains(&marker), "marker in the log");
    for code in &codes {
        assert!(!log.contains(code.as_str()), "code in the log");
        for headers in &headers_seen {
            for (name, values) in headers {
                assert!(
                    values
                        .iter()
                        .all(|v| !v.contains(code.as_str()) && !v.contains(&marker)),
                    "{name}"
                );
            }
        }
    }
    for file in files_under(server.dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, marker.as_bytes()),
            "marker in {}",
            file.display()
        );
        for code in &codes {
            assert!(
                !contains(&bytes, code.as_bytes()),
                "code in {}",
                file.display()
            );
        }
        assert!(!file.to_string_lossy().contains(&marker));
    }
}

fn assert_nothing_kept(server: &Server) {
    eventually("temp files are removed", SOON, || server.temp_files() == 0);
    assert_eq!(server.items().len(), 0, "no item was stored");
    assert_eq!(server.sources(), 0, "no source was created");
    assert!(server.blobs().is_empty(), "no blob was written");
    assert_eq!(
        get(server.addr, "/").status,
        200,
        "the server keeps serving"
    );
}

#[test]
fn oversize_submission_gets_413_stating_the_limit() {
    let server = Server::with(Options {
        limits: vec![
            ("min_free_bytes", "0".into()),
            ("max_submission_bytes", (1024 * 1024).to_string()),
        ],
        ..Options::default()
    });
    // Announced by Content-Length: refused before the body is read.
    let page = submit(
        server.addr,
        vec![Part::file("a.bin", noise(3 * 1024 * 1024, 2))],
    );
    assert_eq!(page.status, 413);
    assert!(
        page.body.contains("larger than the limit of 1 MB."),
        "{}",
        page.body
    );
    assert_nothing_kept(&server);

    // Hidden by chunked transfer encoding: refused while streaming.
    let page = submit_chunked(
        server.addr,
        vec![Part::file("a.bin", noise(3 * 1024 * 1024, 3))],
    );
    assert_eq!(page.status, 413);
    assert!(page.body.contains("larger than the limit of 1 MB."));
    assert_nothing_kept(&server);

    // Just under the limit is fine.
    let page = submit(
        server.addr,
        vec![Part::file("a.bin", noise(1024 * 1024 - 10, 4))],
    );
    assert_eq!(page.status, 200);
}

#[test]
fn csrf_is_required_first_and_must_match_the_cookie() {
    let server = Server::start();
    let form = form(server.addr);
    let file = || Part::file("x.txt", b"data".to_vec());
    // No csrf field at all.
    let page = post_submit(server.addr, &form, &multipart(&[file()]));
    assert_eq!(page.status, 403);
    // A wrong token.
    let bad = Form {
        token: "00".repeat(32),
        ..form.clone()
    };
    let page = post_submit(
        server.addr,
        &bad,
        &multipart(&with_csrf(&bad, vec![file()])),
    );
    assert_eq!(page.status, 403);
    // The right token without its cookie.
    let no_cookie = Form {
        cookie: "other=1".into(),
        ..form.clone()
    };
    let page = post_submit(
        server.addr,
        &no_cookie,
        &multipart(&with_csrf(&form, vec![file()])),
    );
    assert_eq!(page.status, 403);
    // Another client's cookie.
    let other = common::form(server.addr);
    let mixed = Form {
        cookie: other.cookie,
        ..form.clone()
    };
    let page = post_submit(
        server.addr,
        &mixed,
        &multipart(&with_csrf(&form, vec![file()])),
    );
    assert_eq!(page.status, 403);
    // csrf after a file part.
    let mut parts = vec![file()];
    parts.push(Part::text("csrf", form.token.as_bytes()));
    let page = post_submit(server.addr, &form, &multipart(&parts));
    assert_eq!(page.status, 403);
    assert_nothing_kept(&server);
    // And the right one works.
    let page = post_submit(
        server.addr,
        &form,
        &multipart(&with_csrf(&form, vec![file()])),
    );
    assert_eq!(page.status, 200);
}

#[test]
fn bad_input_gets_a_clear_400_and_nothing_is_kept() {
    let server = Server::with(Options {
        limits: vec![
            ("min_free_bytes", "0".into()),
            ("max_files", "3".into()),
            ("max_message_chars", "10".into()),
        ],
        ..Options::default()
    });
    let files = (0..4)
        .map(|i| Part::file(format!("{i}.txt"), vec![b'x'; 10]))
        .collect();
    let page = submit(server.addr, files);
    assert_eq!(page.status, 400);
    assert!(page.body.contains("at most 3 files"), "{}", page.body);

    let page = submit(
        server.addr,
        vec![Part::text("message", "ééééééééééé".as_bytes())],
    );
    assert_eq!(page.status, 400);
    assert!(page.body.contains("at most 10 characters"));
    // Ten characters of two bytes each are fine (the limit is in characters).
    let page = submit(
        server.addr,
        vec![Part::text("message", "éééééééééé".as_bytes())],
    );
    assert_eq!(page.status, 200);
    let stored = server.items().len();

    let page = submit(
        server.addr,
        vec![Part::text("message", b"bad \xff\xfe utf8")],
    );
    assert_eq!(page.status, 400);
    assert!(page.body.contains("could not be read as text"));

    let page = submit(
        server.addr,
        vec![Part::text("message", b""), Part::text("files", b"")],
    );
    assert_eq!(page.status, 400, "an empty form is refused");

    let page = submit(server.addr, vec![Part::text("surprise", b"x")]);
    assert_eq!(page.status, 400, "unknown field");

    let page = submit(
        server.addr,
        vec![Part::text("message", b"a"), Part::text("message", b"b")],
    );
    assert_eq!(page.status, 400, "two messages");

    let form = form(server.addr);
    let page = post_submit(server.addr, &form, b"this is not multipart at all");
    assert_eq!(page.status, 400, "garbage body");
    let mut truncated = multipart(&with_csrf(
        &form,
        vec![Part::file("t.txt", vec![b'y'; 5000])],
    ));
    truncated.truncate(truncated.len() - 100);
    let page = post_submit(server.addr, &form, &truncated);
    assert_eq!(page.status, 400, "unterminated part");
    let page = request(
        server.addr,
        "POST",
        "/submit",
        &[("Cookie", &form.cookie), ("Content-Type", "text/plain")],
        b"x",
    );
    assert_eq!(page.status, 400, "not multipart");

    eventually("temp files are removed", SOON, || server.temp_files() == 0);
    assert_eq!(server.items().len(), stored, "nothing more was stored");
    assert_eq!(server.blobs().len(), stored * 2);
}

#[test]
fn part_headers_cannot_grow_without_bound() {
    let server = Server::start();
    let form = form(server.addr);
    let mut body = Part::text("csrf", form.token.as_bytes()).encode();
    body.extend(Part::file("a", Vec::new()).head());
    body.extend_from_slice(b"X-Pad: ");
    body.extend(std::iter::repeat_n(b'a', 3 * 1024 * 1024));
    body.extend_from_slice(b"\r\n\r\ndata\r\n");
    body.extend(multipart_end());
    let page = post_submit(server.addr, &form, &body);
    assert_eq!(page.status, 400);
    assert_nothing_kept(&server);
}

#[test]
fn client_abort_mid_upload_leaves_nothing() {
    let server = Server::start();
    let form = form(server.addr);
    let body = multipart(&with_csrf(
        &form,
        vec![
            Part::text("message", b"a message that completes"),
            Part::file("big.bin", noise(8 * 1024 * 1024, 5)),
        ],
    ));
    let stream = partial_submit(server.addr, &form, &body, body.len() / 2);
    eventually("the upload is streaming to a temp file", SOON, || {
        server.temp_files() > 0
    });
    drop(stream);
    assert_nothing_kept(&server);
}

#[test]
fn kill_9_mid_upload_then_restart_keeps_whole_items_only() {
    let mut server = Server::start();
    let done = submit(
        server.addr,
        vec![Part::file("done.bin", noise(2 * 1024 * 1024, 6))],
    );
    assert_eq!(done.status, 200);
    let form = form(server.addr);
    let body = multipart(&with_csrf(
        &form,
        vec![
            Part::text("message", b"never finished"),
            Part::file("partial.bin", noise(16 * 1024 * 1024, 7)),
        ],
    ));
    let _stream = partial_submit(server.addr, &form, &body, body.len() - 1000);
    eventually("the upload has written a temp file", SOON, || {
        server.temp_files() > 0
    });
    server.kill9();
    assert!(server.temp_files() > 0, "the crash left temp files behind");

    server.restart();
    assert_eq!(server.temp_files(), 0, "start-up removed the temp files");
    let items = server.items();
    assert_eq!(items.len(), 1, "only the completed submission is an item");
    assert_eq!(server.blobs().len(), 2, "rows and blobs agree");
    let (plain, meta) = server.open_item(&items[0]);
    assert!(plain == noise(2 * 1024 * 1024, 6));
    assert_eq!(meta["filename"], "done.bin");
    let removed: usize = server
        .log()
        .split("temp_files_removed=")
        .nth(2)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the second start-up logs how many temp files it removed");
    assert!(removed >= 1, "removed {removed}");
    assert_eq!(get(server.addr, "/").status, 200);
}

#[test]
fn restart_reconciles_rows_and_blobs() {
    let mut server = Server::start();
    for i in 0..3 {
        let page = submit(server.addr, vec![Part::file("f.bin", noise(1000, i))]);
        assert_eq!(page.status, 200);
    }
    server.kill9();
    let items = server.items();
    // A row whose blob vanished, and a blob no row refers to.
    std::fs::remove_file(
        server
            .data()
            .join("blobs")
            .join(format!("{}.age", items[0].id)),
    )
    .unwrap();
    std::fs::write(
        server
            .data()
            .join("blobs")
            .join("0123456789abcdef0123456789abcdef.age"),
        b"x",
    )
    .unwrap();
    server.restart();
    assert_eq!(server.items().len(), 2);
    assert_eq!(server.blobs().len(), 4);
    // Nothing is deleted on a guess: the stray blob and the lone metadata record are
    // kept aside.
    let orphans = files_under(&server.data().join("orphans"));
    assert_eq!(orphans.len(), 2, "{orphans:?}");
    let log = server.log();
    assert!(log.contains("rows_without_blobs=1"), "{log}");
    assert!(log.contains("blobs_without_rows=1"), "{log}");
    for item in server.items() {
        server.open_item(&item);
    }
}

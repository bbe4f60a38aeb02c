//! The journalist's desk through the real binary: `open --desk` imports (idempotent,
//! order-free, atomic, refusing conflicts by name), `agedrop desk` (its guards, and a
//! real browser without JavaScript reading a thread and writing a reply), and
//! `push --outbox` delivering that reply to the source.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

fn pull(server: &Server, token: &Path, out: &Path) {
    ok(&server.pull(token, out));
}

fn import(server: &Server, desk: &Path, bundles: &[&Path]) -> Output {
    let mut args = vec!["open".to_owned()];
    args.extend(bundles.iter().map(|b| b.to_str().unwrap().to_owned()));
    args.extend([
        "--desk".to_owned(),
        desk.to_str().unwrap().to_owned(),
        "-i".to_owned(),
        server.newsroom.identity_file.to_str().unwrap().to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    agedrop(&args, server.dir.path())
}

/// `agedrop reply` (to the source and the newsroom) and `agedrop push`.
fn reply_and_push(server: &Server, token: &Path, bundle: &Path, label: &str, text: &str) {
    let reply = server.write_reply(bundle, label, text, server.dir.path());
    ok(&server.with_token(token, "push", &[reply.to_str().unwrap()]));
}

/// Every file under the desk with its bytes, but the index (compared by its rows).
fn snapshot(desk: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = files_under(desk)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with("desk.sqlite") && name != "lock"
        })
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The index's rows, as text, for comparing before and after.
fn rows(desk: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(desk.join("desk.sqlite")).unwrap();
    let mut out = Vec::new();
    for table in ["sources", "entries", "outbox"] {
        let mut stmt = db
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .unwrap();
        let columns = stmt.column_count();
        let mut query = stmt.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let values: Vec<String> = (0..columns)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect();
            out.push(format!("{table}: {}", values.join(" | ")));
        }
    }
    out
}

/// A source that submitted a message and a file; returns (browser, code).
fn source_submits(server: &Server, message: &str, file: (&str, Vec<u8>)) -> (Browser, String) {
    let mut source = Browser::new(server.addr);
    source.get("/submit");
    let page = source.submit(vec![
        Part::text("message", message.as_bytes()),
        Part::file(file.0, file.1),
    ]);
    assert_eq!(page.status, 200, "{}", page.body);
    let code = code_from(&page);
    (source, code)
}

/// `agedrop desk` on a free port: the child (killed on drop) and its URL.
struct DeskProcess {
    _child: KillOnDrop,
    url: String,
    port: u16,
}

impl DeskProcess {
    fn start(desk: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["desk", desk.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let child = KillOnDrop(child);
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        let port = url["http://127.0.0.1:".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        DeskProcess {
            _child: child,
            url,
            port,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }

    /// The path part of the URL: `/SECRET/`.
    fn prefix(&self) -> String {
        self.url[format!("http://127.0.0.1:{}", self.port).len()..].to_owned()
    }
}

fn manifest_of(bundle: &Path) -> Value {
    let entries = untar(&std::fs::read(bundle).unwrap());
    assert_eq!(entries[0].0, "manifest.json");
    serde_json::from_slice(&entries[0].1).unwrap()
}

/// The bundle with its manifest changed by `edit`.
fn with_manifest(bundle: &Path, out: &Path, edit: impl FnOnce(&mut Value)) {
    let mut entries = untar(&std::fs::read(bundle).unwrap());
    let mut manifest: Value = serde_json::from_slice(&entries[0].1).unwrap();
    edit(&mut manifest);
    entries[0].1 = serde_json::to_vec(&manifest).unwrap();
    let borrowed: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    std::fs::write(out, tar(&borrowed)).unwrap();
}

#[test]
fn a_journalist_reads_a_thread_and_replies_in_a_browser_without_javascript() {
    let server = Server::start();
    let token = server.add_journalist_file("alice");
    let work = server.dir.path();
    let desk = work.join("desk");
    let (mut source, code) = source_submits(
        &server,
        "Documents about the programme.\nSecond line.",
        ("evil\u{202e}fdp.exe", noise(5000, 3)),
    );

    // An earlier reply, written with `agedrop reply` and pushed, travels back in the
    // next bundle: the desk shows it in the thread.
    let first = work.join("b1.tar");
    pull(&server, &token, &first);
    let label = manifest_of(&first)["sources"][0]["label"]
        .as_str()
        .unwrap()
        .to_owned();
    reply_and_push(&server, &token, &first, &label, "We got it. Thank you.");
    let second = work.join("b2.tar");
    pull(&server, &token, &second);
    let out = ok(&import(&server, &desk, &[&first, &second]));
    assert!(out.contains("b1.tar: 2 new"), "{out}");
    assert!(out.contains("b2.tar: 1 new"), "{out}");

    let files = dir_names(&desk.join("sources").join(&label));
    assert!(files.contains(&"0001-message.txt".to_owned()), "{files:?}");
    assert!(
        files.contains(&"0002-evilfdp.exe".to_owned()),
        "no bidi override in names: {files:?}"
    );
    assert!(files.contains(&"0003-reply.txt".to_owned()), "{files:?}");

    let process = DeskProcess::start(&desk);
    let driver = Driver::start();
    driver.go(&process.url);
    driver.wait_for("tr.source");
    assert_eq!(driver.count("tr.source"), 1);
    assert_eq!(driver.text("tr.source td.unread-count"), "2");
    driver.screenshot("desk-1-sources");

    driver.click("tr.source a");
    driver.wait_for("section.entry");
    assert_eq!(driver.count("section.entry"), 3);
    assert!(driver.text("#e1 pre").contains("Second line."));
    let file_line = driver.text("#e2");
    assert!(
        file_line.contains("evilfdp.exe") && !file_line.contains('\u{202e}'),
        "the bidi override is gone from the name: {file_line}"
    );
    assert!(driver.text("#e3 pre").contains("We got it. Thank you."));
    driver.screenshot("desk-2-thread");

    driver.click("form[action$='/read'] button");
    driver.wait_for("form[action$='/read'] input[value=no]");
    driver.type_into("#message", "Can you send the 2024 budget too?");
    driver.click("form[action$='/reply'] button");
    driver.wait_for("section.pending");
    assert!(driver.text("section.pending pre").contains("2024 budget"));
    driver.screenshot("desk-3-reply-waiting");
    driver.go(&process.url);
    driver.wait_for("tr.source");
    assert_eq!(driver.text("tr.source td.unread-count"), "0");

    // The outbox → push --outbox → the source reads it.
    let outbox = desk.join("outbox");
    let waiting: Vec<PathBuf> = files_under(&outbox)
        .into_iter()
        .filter(|p| p.parent() == Some(outbox.as_path()))
        .collect();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    ok(&agedrop(
        &[
            "push",
            "--outbox",
            desk.to_str().unwrap(),
            "--server",
            &format!("http://{}", server.journalist),
            "--token-file",
            token.to_str().unwrap(),
        ],
        work,
    ));
    assert!(!waiting[0].exists());
    assert!(outbox
        .join("sent")
        .join(waiting[0].file_name().unwrap())
        .exists());
    source.login(&code);
    let inbox = source.get("/inbox");
    assert!(
        inbox.body.contains("Can you send the 2024 budget too?"),
        "{}",
        inbox.body
    );

    // The next bundle brings the reply back: no longer waiting, now in the thread.
    let third = work.join("b3.tar");
    pull(&server, &token, &third);
    let out = ok(&import(&server, &desk, &[&third]));
    assert!(out.contains("b3.tar: 1 new"), "{out}");
    driver.go(&format!("{}outbox", process.url));
    driver.wait_for("main p");
    assert_eq!(driver.count("section.pending"), 0);
    driver.go(&process.url);
    driver.click("tr.source a");
    driver.wait_for("section.entry");
    assert_eq!(driver.count("section.entry.reply"), 2);
    assert_eq!(driver.count("section.pending"), 0);
    driver.go(&format!("{}imports", process.url));
    driver.wait_for("tbody tr");
    assert_eq!(driver.count("tbody tr"), 3);
    driver.screenshot("desk-4-imports");
}

#[test]
fn imports_are_idempotent_order_free_and_all_or_nothing() {
    let server = Server::start();
    let token = server.add_journalist_file("alice");
    let work = server.dir.path();
    source_submits(&server, "first", ("a.txt", b"alpha".to_vec()));
    let first = work.join("b1.tar");
    pull(&server, &token, &first);
    source_submits(&server, "second source", ("b.txt", noise(200_000, 9)));
    let second = work.join("b2.tar");
    pull(&server, &token, &second);

    // Newest first, then oldest, then both again: the same archive as in order.
    let desk = work.join("desk");
    assert!(ok(&import(&server, &desk, &[&second])).contains("2 new, 0 already"));
    assert!(ok(&import(&server, &desk, &[&first])).contains("2 new, 0 already"));
    let out = ok(&import(&server, &desk, &[&first, &second]));
    assert!(out.contains("b1.tar: 0 new, 2 already"), "{out}");
    assert!(out.contains("b2.tar: 0 new, 2 already"), "{out}");
    let in_order = work.join("in-order");
    ok(&import(&server, &in_order, &[&first, &second]));
    let shape = |d: &Path| -> Vec<(String, Vec<u8>)> {
        snapshot(d)
            .into_iter()
            .map(|(p, b)| (p.strip_prefix(d).unwrap().display().to_string(), b))
            .filter(|(p, _)| p.starts_with("sources/"))
            .collect()
    };
    assert_eq!(shape(&desk), shape(&in_order));
    assert_eq!(shape(&desk).len(), 4);
    let before = (snapshot(&desk), rows(&desk));

    // A truncated bundle and a tampered one: refused, the archive as it was.
    source_submits(&server, "third", ("c.bin", noise(300_000, 4)));
    let third = work.join("b3.tar");
    pull(&server, &token, &third);
    let bytes = std::fs::read(&third).unwrap();
    let cut = work.join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() - 150_000]).unwrap();
    let out = import(&server, &desk, &[&cut]);
    assert_import_refused(
        &out,
        &cut,
        "bundle refused: it is truncated (its last entry ends early); nothing of it was imported",
    );
    let manifest = manifest_of(&third);
    let file_id = manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "file")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut entries = untar(&bytes);
    let blob = entries
        .iter_mut()
        .find(|(n, _)| *n == format!("items/{file_id}.age"))
        .unwrap();
    let middle = blob.1.len() / 2;
    blob.1[middle] ^= 1;
    let borrowed: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let tampered = work.join("tampered.tar");
    std::fs::write(&tampered, tar(&borrowed)).unwrap();
    let out = import(&server, &desk, &[&tampered]);
    assert_import_refused(
        &out,
        &tampered,
        &format!("bundle refused: item {file_id}: cannot decrypt; nothing of it was imported"),
    );
    assert_eq!(
        (snapshot(&desk), rows(&desk)),
        before,
        "nothing of either was kept"
    );
    assert!(ok(&import(&server, &desk, &[&third])).contains("2 new, 0 already"));
}

#[test]
fn bundles_that_reuse_a_label_or_change_a_key_are_refused_by_name() {
    let server = Server::start();
    let token = server.add_journalist_file("alice");
    let work = server.dir.path();
    source_submits(&server, "hello", ("a.txt", b"alpha".to_vec()));
    let bundle = work.join("b1.tar");
    pull(&server, &token, &bundle);
    let desk = work.join("desk");
    ok(&import(&server, &desk, &[&bundle]));
    let before = (snapshot(&desk), rows(&desk));
    let manifest = manifest_of(&bundle);
    let id = manifest["sources"][0]["id"].as_str().unwrap().to_owned();

    std::fs::create_dir(work.join("other")).unwrap();
    let other_key = Newsroom::new(&work.join("other")).recipient;
    let rekeyed = work.join("rekeyed.tar");
    with_manifest(&bundle, &rekeyed, |m| {
        m["sources"][0]["recipient"] = other_key.clone().into();
    });
    assert_import_refused(
        &import(&server, &desk, &[&rekeyed]),
        &rekeyed,
        &format!(
            "bundle refused: it gives source {id} another reply key than the archive has; \
             nothing of it was imported (a server that changes a source's key could read \
             replies meant for the source)"
        ),
    );

    let new_id = "f".repeat(32);
    let relabelled = work.join("reused-label.tar");
    with_manifest(&bundle, &relabelled, |m| {
        m["sources"][0]["id"] = new_id.clone().into();
        for item in m["items"].as_array_mut().unwrap() {
            item["source_id"] = new_id.clone().into();
        }
    });
    assert_import_refused(
        &import(&server, &desk, &[&relabelled]),
        &relabelled,
        &format!(
            "bundle refused: its new source {new_id} has the label of source {id} in the \
             archive; nothing of it was imported"
        ),
    );

    let renamed = work.join("renamed.tar");
    with_manifest(&bundle, &renamed, |m| {
        m["sources"][0]["label"] = "other-name".into();
    });
    assert_import_refused(
        &import(&server, &desk, &[&renamed]),
        &renamed,
        &format!(
            "bundle refused: it gives source {id} another label than the archive's {:?}; \
             nothing of it was imported",
            manifest["sources"][0]["label"].as_str().unwrap()
        ),
    );

    let newer = work.join("newer.tar");
    with_manifest(&bundle, &newer, |m| m["version"] = 3.into());
    assert_import_refused(
        &import(&server, &desk, &[&newer]),
        &newer,
        "bundle refused: the bundle's format version is 3; this agedrop reads versions 1 to 2 \
         (update agedrop on this machine)",
    );
    assert_eq!((snapshot(&desk), rows(&desk)), before);
}

#[test]
fn an_import_killed_halfway_leaves_the_archive_as_it_was_and_can_be_run_again() {
    let server = Server::start();
    let token = server.add_journalist_file("alice");
    let work = server.dir.path();
    let big = noise(96 * 1024 * 1024, 5);
    source_submits(&server, "the big one", ("big.bin", big.clone()));
    let bundle = work.join("b1.tar");
    pull(&server, &token, &bundle);
    let desk = work.join("desk");

    let mut child = KillOnDrop(
        Command::new(BIN)
            .args([
                "open",
                bundle.to_str().unwrap(),
                "--desk",
                desk.to_str().unwrap(),
                "-i",
            ])
            .arg(&server.newsroom.identity_file)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let staging = desk.join("staging");
    eventually("the import stages a file", SOON, || {
        std::fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some())
    });
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(
        files_under(&desk.join("sources")).is_empty(),
        "nothing placed before the commit"
    );

    let out = ok(&import(&server, &desk, &[&bundle]));
    assert!(out.contains("2 new, 0 already"), "{out}");
    assert!(
        std::fs::read_dir(&staging).unwrap().next().is_none(),
        "staging emptied"
    );
    let label = manifest_of(&bundle)["sources"][0]["label"]
        .as_str()
        .unwrap()
        .to_owned();
    let placed = std::fs::read(desk.join("sources").join(&label).join("0002-big.bin")).unwrap();
    assert!(placed == big, "the whole file, once");
}

#[test]
fn the_desk_refuses_requests_without_its_secret_from_elsewhere_or_without_csrf() {
    let server = Server::start();
    let token = server.add_journalist_file("alice");
    let work = server.dir.path();
    source_submits(
        &server,
        "hello",
        ("rép<o>rt.html", b"<script>alert(1)</script>".to_vec()),
    );
    let bundle = work.join("b1.tar");
    pull(&server, &token, &bundle);
    let desk = work.join("desk");
    ok(&import(&server, &desk, &[&bundle]));
    let manifest = manifest_of(&bundle);
    let id = manifest["sources"][0]["id"].as_str().unwrap().to_owned();
    let file_id = manifest["items"][1]["id"].as_str().unwrap().to_owned();
    let process = DeskProcess::start(&desk);
    let addr = process.addr();
    let prefix = process.prefix();
    let host = format!("127.0.0.1:{}", process.port);

    let page = request_with_host(addr, "GET", &prefix, &[("Host", &host)], b"");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script"),
        "{csp}"
    );
    let csrf = page_csrf(&request_with_host(
        addr,
        "GET",
        &format!("{prefix}sources/{id}"),
        &[("Host", &host)],
        b"",
    ));

    let without_secret = request_with_host(addr, "GET", "/", &[("Host", &host)], b"");
    assert_eq!(without_secret.status, 404);
    let wrong_secret = format!("/{}/", "0".repeat(64));
    assert_eq!(
        request_with_host(addr, "GET", &wrong_secret, &[("Host", &host)], b"").status,
        404
    );
    let rebound = request_with_host(addr, "GET", &prefix, &[("Host", "evil.example:80")], b"");
    assert_eq!(rebound.status, 421);
    assert!(
        !rebound.body.contains("sources/"),
        "nothing of the desk shown"
    );

    let star = format!("{prefix}sources/{id}/star");
    let form = "application/x-www-form-urlencoded";
    let post = |headers: &[(&str, &str)], body: &str| {
        let mut all = vec![("Host", host.as_str()), ("Content-Type", form)];
        all.extend_from_slice(headers);
        request_with_host(addr, "POST", &star, &all, body.as_bytes())
    };
    assert_eq!(
        post(&[], "star=yes").status,
        422,
        "a form without csrf is not accepted"
    );
    assert_eq!(post(&[], "csrf=00&star=yes").status, 403);
    let good = format!("csrf={csrf}&star=yes");
    assert_eq!(
        post(&[("Origin", "http://evil.example")], &good).status,
        403
    );
    assert_eq!(post(&[("Sec-Fetch-Site", "cross-site")], &good).status, 403);
    let starred_rows = |d: &Path| -> i64 {
        rusqlite::Connection::open(d.join("desk.sqlite"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM sources WHERE starred = 1", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    assert_eq!(starred_rows(&desk), 0, "no refused form changed anything");
    let origin = format!("http://{host}");
    assert_eq!(post(&[("Origin", &origin)], &good).status, 303);
    assert_eq!(starred_rows(&desk), 1);

    // A source's file is only ever a download, sandboxed, under a safe name.
    let saved = request_with_host(
        addr,
        "GET",
        &format!("{prefix}items/{file_id}/save"),
        &[("Host", &host)],
        b"",
    );
    assert_eq!(saved.status, 200);
    assert_eq!(
        saved.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(saved.header("x-content-type-options"), Some("nosniff"));
    assert!(saved
        .header("content-security-policy")
        .unwrap()
        .starts_with("sandbox"));
    assert_eq!(
        saved.header("content-disposition"),
        Some("attachment; filename=\"r_p_o_rt.html\"; filename*=UTF-8''r%C3%A9p%3Co%3Ert.html")
    );
    assert_eq!(saved.body, "<script>alert(1)</script>");
}

/// `open --desk` refused this one bundle with exactly `message`.
fn assert_import_refused(out: &Output, bundle: &Path, message: &str) {
    assert!(!out.status.success(), "refused");
    assert_eq!(
        stderr(out),
        format!(
            "agedrop: {}: {message}\nagedrop: error: 1 of 1 bundle(s) refused; see above\n",
            bundle.display()
        )
    );
}

/// The csrf token in a desk page's forms.
fn page_csrf(page: &Response) -> String {
    let after = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .expect("a form");
    after.split('"').next().unwrap().to_owned()
}

#[test]
fn a_reply_the_source_deleted_is_shown_as_deleted_in_any_import_order() {
    let server = Server::start();
    let token = server.add_journalist_file("alice");
    let work = server.dir.path();
    let (mut source, _code) = source_submits(&server, "hello", ("a.txt", b"alpha".to_vec()));
    let first = work.join("b1.tar");
    pull(&server, &token, &first);
    let manifest = manifest_of(&first);
    let label = manifest["sources"][0]["label"].as_str().unwrap().to_owned();
    let source_id = manifest["sources"][0]["id"].as_str().unwrap().to_owned();
    reply_and_push(&server, &token, &first, &label, "Please call us.");
    let with_reply = work.join("b2.tar");
    pull(&server, &token, &with_reply);

    // The source deletes it; the next bundle carries only the fact.
    let reply_id = server.reply_ids().remove(0);
    assert_eq!(source.get("/inbox").status, 200);
    let deleted = source.post_form(&format!("/replies/{reply_id}/delete"), &[]);
    assert_eq!(deleted.status, 303);
    let after = work.join("b3.tar");
    pull(&server, &token, &after);
    let deletions = manifest_of(&after)["deleted_replies"].clone();
    assert_eq!(
        deletions,
        serde_json::json!([{"source_id": source_id, "order": 3}])
    );

    // In order: the reply is read, then its text removed.
    let desk = work.join("desk");
    ok(&import(&server, &desk, &[&first, &with_reply]));
    let reply_file = desk.join("sources").join(&label).join("0003-reply.txt");
    assert_eq!(
        std::fs::read_to_string(&reply_file).unwrap(),
        "Please call us."
    );
    ok(&import(&server, &desk, &[&after]));
    assert!(
        !reply_file.exists(),
        "the desk drops the text the source deleted"
    );
    // Out of order: the deletion first, then the bundle with the reply adds nothing.
    let other = work.join("desk-2");
    ok(&import(&server, &other, &[&after, &first, &with_reply]));
    assert!(!other
        .join("sources")
        .join(&label)
        .join("0003-reply.txt")
        .exists());

    for desk in [&desk, &other] {
        let process = DeskProcess::start(desk);
        let host = format!("127.0.0.1:{}", process.port);
        let thread = request_with_host(
            process.addr(),
            "GET",
            &format!("{}sources/{source_id}", process.prefix()),
            &[("Host", &host)],
            b"",
        );
        assert_eq!(thread.status, 200);
        assert!(thread
            .body
            .contains("A reply from the newsroom, deleted by the source."));
        assert!(!thread.body.contains("Please call us."), "{}", thread.body);
    }
}

#[test]
fn items_that_stock_go_age_encrypted_import_whole() {
    let server = Server::start();
    let token = server.add_journalist_file("alice");
    let work = server.dir.path();
    source_submits(&server, "hello", ("doc.bin", b"placeholder".to_vec()));
    let bundle = work.join("b1.tar");
    pull(&server, &token, &bundle);

    // The file item replaced by one Go age made (multi-chunk, two recipients, one of
    // them the newsroom), its size in the manifest to match.
    let plain = noise(5 * 1024 * 1024 + 3, 21);
    let plain_path = work.join("plain.bin");
    std::fs::write(&plain_path, &plain).unwrap();
    std::fs::create_dir(work.join("other")).unwrap();
    let other = Newsroom::new(&work.join("other")).recipient;
    let sealed_path = work.join("sealed.age");
    let status = Command::new(require_tool("age"))
        .args(["-r", &other, "-r", &server.newsroom.recipient, "-o"])
        .arg(&sealed_path)
        .arg(&plain_path)
        .status()
        .unwrap();
    assert!(status.success());
    let sealed = std::fs::read(&sealed_path).unwrap();
    let go_bundle = work.join("go.tar");
    let manifest = replace_file_item(&bundle, sealed, &go_bundle);

    let desk = work.join("desk");
    ok(&import(&server, &desk, &[&go_bundle]));
    let label = manifest["sources"][0]["label"].as_str().unwrap();
    let imported = std::fs::read(desk.join("sources").join(label).join("0002-doc.bin")).unwrap();
    assert!(
        imported == plain,
        "Go age's ciphertext opens to the exact bytes"
    );
}

//! The journalist side through the real binaries: accounts, pull, open, reply, push,
//! delete; authentication, mutual TLS, and hostile bundles.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use agedrop::bundle::tar_header;
use common::*;

fn url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}")
}

fn open(server: &Server, bundle: &Path, out: &Path) -> Output {
    server.open_bundle(bundle, out)
}

fn push(server: &Server, token: &Path, reply: &Path) -> Output {
    server.with_token(token, "push", &[reply.to_str().unwrap()])
}

/// A pulled bundle: its manifest, and the names of the entries after it.
fn pulled(bundle: &Path) -> (serde_json::Value, Vec<String>) {
    let entries = untar(&std::fs::read(bundle).unwrap());
    assert_eq!(entries[0].0, "manifest.json");
    let manifest = serde_json::from_slice(&entries[0].1).unwrap();
    let names = entries[1..].iter().map(|(name, _)| name.clone()).collect();
    (manifest, names)
}

fn label_dirs(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn submission_to_pull_open_reply_push_and_delete() {
    let server = Server::start();
    let token = server.add_journalist_file("alice");
    let work = server.dir.path();
    let big = noise(3 * 1024 * 1024 + 7, 11);

    let mut source = Browser::new(server.addr);
    source.get("/submit");
    let page = source.submit(vec![
        Part::text("message", "Here are the files — ünïcode".as_bytes()),
        Part::file("../../report.pdf", big.clone()),
        Part::file("notes.txt", b"notes".to_vec()),
    ]);
    assert_eq!(page.status, 200);

    // pull → open: the exact bytes, under safe names, with an index.
    let bundle = work.join("b1.tar");
    ok(&server.pull(&token, &bundle));
    let out = work.join("decrypted");
    ok(&open(&server, &bundle, &out));
    let dirs = label_dirs(&out);
    assert_eq!(dirs.len(), 1);
    let dir = &dirs[0];
    let label = dir.file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(label, server.source_rows()[0].1);
    assert_eq!(
        std::fs::read(dir.join("001-message.txt")).unwrap(),
        "Here are the files — ünïcode".as_bytes()
    );
    assert!(std::fs::read(dir.join("002-report.pdf")).unwrap() == big);
    assert_eq!(std::fs::read(dir.join("003-notes.txt")).unwrap(), b"notes");
    let index = std::fs::read_to_string(dir.join("index.txt")).unwrap();
    assert!(
        index.contains("002-report.pdf") && index.contains(&label),
        "{index}"
    );
    assert!(files_under(&out).iter().all(|p| !p
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with(".incoming")));

    // The exported blobs are standard age files: stock age opens them.
    let extracted = work.join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&bundle)
        .arg("-C")
        .arg(&extracted)
        .status()
        .unwrap();
    assert!(status.success());
    let blobs: Vec<PathBuf> = files_under(&extracted.join("items"))
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".meta.age"))
        .collect();
    assert_eq!(blobs.len(), 3);
    let mut plain: Vec<Vec<u8>> = blobs
        .iter()
        .map(|b| server.newsroom.decrypt_with_cli(b))
        .collect();
    plain.sort();
    assert!(plain.contains(&big) && plain.contains(&b"notes".to_vec()));

    // reply → push → the source reads it in the inbox.
    let reply = server.write_reply(&bundle, &label, "Thank you. Please send page 4.", work);
    let server_args = [
        "--server",
        &url(server.journalist),
        "--token-file",
        token.to_str().unwrap(),
    ];
    let mut push = vec!["push"];
    push.extend_from_slice(&server_args);
    push.push(reply.to_str().unwrap());
    ok(&agedrop(&push, work));
    let inbox = source.get("/inbox");
    assert!(
        inbox.body.contains("Thank you. Please send page 4."),
        "{}",
        inbox.body
    );

    // A second pull brings only what is new: the reply, which took order 4.
    let second = work.join("b2.tar");
    ok(&server.pull(&token, &second));
    assert!(ok(&open(&server, &second, &work.join("second"))).contains("0 item(s)"));
    assert_eq!(
        std::fs::read(work.join("second").join(&label).join("004-reply.txt")).unwrap(),
        b"Thank you. Please send page 4."
    );
    source.get("/inbox");
    let follow_up = source.submit(vec![Part::text("message", b"page 4")]);
    assert_eq!(follow_up.status, 303);
    let third = work.join("b3.tar");
    ok(&server.pull(&token, &third));
    let third_out = work.join("third");
    assert!(ok(&open(&server, &third, &third_out)).contains("1 item(s)"));
    assert_eq!(
        std::fs::read(third_out.join(&label).join("005-message.txt")).unwrap(),
        b"page 4"
    );

    // Delete one item, then the whole source: blobs and rows go.
    let items = server.items();
    let mut delete = vec!["delete"];
    delete.extend_from_slice(&server_args);
    let mut one = delete.clone();
    one.extend_from_slice(&["--item", &items[0].id]);
    ok(&agedrop(&one, work));
    assert_eq!(server.items().len(), 3);
    assert!(!server
        .data()
        .join("blobs")
        .join(format!("{}.age", items[0].id))
        .exists());
    let mut all = delete.clone();
    all.extend_from_slice(&["--source", &items[0].source_id]);
    ok(&agedrop(&all, work));
    assert_eq!(server.items().len(), 0);
    assert_eq!(server.sources(), 0);
    assert!(
        server.blobs().is_empty(),
        "every blob, replies included, is gone"
    );
    let closed = source.get("/inbox");
    assert_eq!(
        closed.status, 410,
        "the inbox says the conversation is closed"
    );
    assert!(
        closed.body.contains("Conversation closed"),
        "{}",
        closed.body
    );
    let gone = source.submit(vec![Part::text("message", b"hello?")]);
    assert_eq!(
        gone.status, 410,
        "a deleted source's follow-up is refused clearly"
    );
}

#[test]
fn tokens_are_required_and_listeners_are_separate() {
    let server = Server::start();
    let token = server.add_journalist_file("bob");
    let bearer = format!("Bearer {}", std::fs::read_to_string(&token).unwrap().trim());
    let export = |auth: Option<&str>| {
        let headers: Vec<(&str, &str)> =
            auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
        request(server.journalist, "GET", "/api/v1/export", &headers, b"")
    };
    assert_eq!(export(Some(&bearer)).status, 200);
    let none = export(None);
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let mut wrong = bearer.clone();
    wrong.pop();
    wrong.push(if bearer.ends_with('0') { '1' } else { '0' });
    let wrong_response = export(Some(&wrong));
    assert_eq!(wrong_response.status, 401);
    assert_eq!(
        wrong_response.body, none.body,
        "no hint which part was wrong"
    );

    // The source site does not serve the API; the API does not serve the source site.
    assert_eq!(
        request(
            server.addr,
            "GET",
            "/api/v1/export",
            &[("Authorization", &bearer)],
            b""
        )
        .status,
        404
    );
    assert_eq!(
        request(
            server.journalist,
            "GET",
            "/submit",
            &[("Authorization", &bearer)],
            b""
        )
        .status,
        404
    );

    // A removed account's token stops working at once.
    let list = agedrop(
        &[
            "journalist",
            "list",
            "--config",
            server.config.to_str().unwrap(),
        ],
        server.dir.path(),
    );
    assert!(String::from_utf8_lossy(&list.stdout).contains("bob"));
    ok(&agedrop(
        &[
            "journalist",
            "remove",
            "bob",
            "--config",
            server.config.to_str().unwrap(),
        ],
        server.dir.path(),
    ));
    assert_eq!(export(Some(&bearer)).status, 401);
}

#[test]
fn failed_attempts_are_rate_limited_without_locking_out_valid_tokens() {
    let server = Server::start();
    let token = server.add_journalist_file("carol");
    let good = std::fs::read_to_string(&token).unwrap().trim().to_owned();
    let mut bad = good.clone();
    bad.replace_range(bad.len() - 4.., "ffff");
    if bad == good {
        bad.replace_range(bad.len() - 4.., "0000");
    }
    let statuses: Vec<u16> = (0..12)
        .map(|_| {
            request(
                server.journalist,
                "GET",
                "/api/v1/export",
                &[("Authorization", &format!("Bearer {bad}"))],
                b"",
            )
            .status
        })
        .collect();
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(statuses[11], 429, "{statuses:?}");
    // The right token is never locked out (that would hand attackers a denial of
    // service), nor is another account.
    assert_eq!(
        request(
            server.journalist,
            "GET",
            "/api/v1/export",
            &[("Authorization", &format!("Bearer {good}"))],
            b""
        )
        .status,
        200
    );
    let other = server.add_journalist_file("dave");
    let other = std::fs::read_to_string(other).unwrap();
    assert_eq!(
        request(
            server.journalist,
            "GET",
            "/api/v1/export",
            &[("Authorization", &format!("Bearer {}", other.trim()))],
            b""
        )
        .status,
        200
    );
}

#[test]
fn replies_are_checked_before_anything_is_stored() {
    let server = Server::start();
    let token = server.add_journalist_file("erin");
    let bearer = format!("Bearer {}", std::fs::read_to_string(&token).unwrap().trim());
    let mut source = Browser::new(server.addr);
    source.get("/submit");
    source.submit(vec![Part::text("message", b"hi")]);
    let (source_id, _, recipient) = server.source_rows().remove(0);
    let post = |body: &[u8]| {
        request(
            server.journalist,
            "POST",
            "/api/v1/replies",
            &[("Authorization", &bearer)],
            body,
        )
    };
    let manifest = |source: &str| reply_manifest(&[(source, "replies/1.age")]);
    let age_reply = encrypt_to(&[&recipient], b"reply");

    let unknown = post(&tar(&[
        ("reply-manifest.json", manifest(&"0".repeat(32)).as_bytes()),
        ("replies/1.age", &age_reply),
    ]));
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.body,
        r#"{"error":"a reply names a source that does not exist"}"#
    );
    let not_age = post(&tar(&[
        ("reply-manifest.json", manifest(&source_id).as_bytes()),
        ("replies/1.age", b"plain text"),
    ]));
    assert_eq!(not_age.status, 400);
    assert_eq!(not_age.body, r#"{"error":"a reply is not an age file"}"#);
    let garbage = post(b"garbage");
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.body, r#"{"error":"archive is truncated"}"#);
    let extra = post(&tar(&[
        ("reply-manifest.json", manifest(&source_id).as_bytes()),
        ("replies/1.age", &age_reply),
        ("replies/2.age", &age_reply),
    ]));
    assert_eq!(extra.status, 400);
    assert_eq!(
        extra.body,
        r#"{"error":"the bundle holds an entry its manifest does not list"}"#
    );
    assert!(
        source.get("/inbox").body.contains("No replies yet"),
        "nothing was stored"
    );
    let fine = post(&tar(&[
        ("reply-manifest.json", manifest(&source_id).as_bytes()),
        ("replies/1.age", &age_reply),
    ]));
    assert_eq!(fine.status, 201, "{}", fine.body);
    assert_eq!(
        source
            .get("/inbox")
            .body
            .matches(r#"class="reply""#)
            .count(),
        1
    );
}

/// A header of any type and name, with a valid checksum.
fn raw_header(name: &str, size: u64, kind: u8) -> Vec<u8> {
    let mut h = tar_header("x", size);
    h[..100].fill(0);
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[156] = kind;
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h.to_vec()
}

#[test]
fn hostile_bundles_are_refused_and_nothing_lands_outside_the_output() {
    let server = Server::start();
    let token = server.add_journalist_file("frank");
    let mut source = Browser::new(server.addr);
    source.get("/submit");
    source.submit(vec![
        Part::file("a.txt", b"aaaa".to_vec()),
        Part::file("b.txt", noise(200_000, 3)),
    ]);
    let work = server.dir.path();
    let good = work.join("good.tar");
    ok(&server.pull(&token, &good));
    let bytes = std::fs::read(&good).unwrap();
    let (manifest_name, manifest) = untar(&bytes).remove(0);
    assert_eq!(manifest_name, "manifest.json");
    let manifest = manifest.as_slice();

    let sandbox = work.join("sandbox");
    std::fs::create_dir(&sandbox).unwrap();
    let check = |name: &str, bundle: Vec<u8>, expect: &str| {
        let path = sandbox.join(format!("{name}.tar"));
        std::fs::write(&path, bundle).unwrap();
        let out = sandbox.join(format!("{name}-out"));
        let before: Vec<PathBuf> = files_under(work);
        let result = open(&server, &path, &out);
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        assert_eq!(result.status.code(), Some(1), "{name}: open must fail");
        assert!(
            stderr.contains(expect),
            "{name}: expected {expect:?} in {stderr}"
        );
        let after: Vec<PathBuf> = files_under(work);
        for path in after.iter().filter(|p| !before.contains(p)) {
            assert!(
                path.starts_with(&out),
                "{name}: wrote {} outside the output",
                path.display()
            );
            assert!(
                !path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".incoming"),
                "{name}: partial file left"
            );
        }
    };

    let mut traversal = raw_header("../evil.txt", 4, b'0');
    traversal.extend_from_slice(&[b'x'; 512]);
    check("traversal-first", traversal, "unsafe entry name");
    let mut with_manifest = tar(&[("manifest.json", manifest)]);
    with_manifest.truncate(with_manifest.len() - 1024);
    let mut abs = with_manifest.clone();
    abs.extend(raw_header("/tmp/evil", 4, b'0'));
    abs.extend_from_slice(&[b'x'; 512]);
    check("absolute", abs, "unsafe entry name");
    let mut link = with_manifest.clone();
    link.extend(raw_header("items/link.age", 0, b'2'));
    check("symlink", link, "links are not allowed");
    let mut device = with_manifest.clone();
    device.extend(raw_header("items/dev", 0, b'3'));
    check("device", device, "devices");
    let mut huge = raw_header("manifest.json", 64 * 1024 * 1024, b'0');
    huge.extend_from_slice(&[b' '; 512]);
    check("oversized-manifest", huge, "larger than allowed");
    check(
        "not-first",
        tar(&[("items/x.age", b"x"), ("manifest.json", manifest)]),
        "first entry must be manifest.json",
    );

    // Tampered and truncated ciphertext: skipped, reported, never half-written.
    let mut tampered = bytes.clone();
    let last_blob = bytes.len() - 1024 - 512 * 4; // inside the last entries' data
    tampered[last_blob] ^= 0x55;
    check("tampered", tampered, "skipped");
    let truncated = bytes[..bytes.len() - 1024 - 3000].to_vec();
    check("truncated", truncated, "skipped");

    // The good bundle still opens.
    ok(&open(&server, &good, &sandbox.join("fine")));
}

#[test]
fn passphrase_protected_identities_open_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    // A stand-in pinentry that answers with the test's passphrase.
    let pinentry = work.join("pinentry");
    std::fs::write(
        &pinentry,
        "#!/bin/sh\necho 'OK ready'\nwhile read -r line; do case \"$line\" in GETPIN*) echo \"D $TEST_PASSPHRASE\"; echo OK;; BYE*) echo OK; exit 0;; *) echo OK;; esac; done\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &pinentry,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let with_pinentry = |args: &[&str], passphrase: &str| {
        agedrop_command(args, work)
            .env("PINENTRY_PROGRAM", &pinentry)
            .env("TEST_PASSPHRASE", passphrase)
            .output()
            .unwrap()
    };
    let passphrase = "correct horse battery staple";
    let keygen = with_pinentry(
        &["keygen", "-o", "protected.age", "--passphrase"],
        passphrase,
    );
    ok(&keygen);
    let recipient = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();
    let text = std::fs::read_to_string(work.join("protected.age")).unwrap();
    assert!(
        text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"),
        "the identity is encrypted"
    );
    assert!(!text.contains("AGE-SECRET-KEY"));

    // A server whose newsroom key is the protected identity.
    let server = Server::with(Options {
        recipients: Some(vec![recipient]),
        ..Options::default()
    });
    let token = server.add_journalist_file("gina");
    let (addr, journalist) = (server.addr, server.journalist);
    let mut source = Browser::new(addr);
    source.get("/submit");
    assert_eq!(
        source
            .submit(vec![Part::file("s.txt", b"secret".to_vec())])
            .status,
        200
    );
    let bundle = work.join("p.tar");
    ok(&agedrop(
        &[
            "pull",
            "--server",
            &url(journalist),
            "--token-file",
            token.to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
        ],
        work,
    ));
    let opened = with_pinentry(
        &[
            "open",
            bundle.to_str().unwrap(),
            "-i",
            "protected.age",
            "-o",
            "protected-out",
        ],
        passphrase,
    );
    ok(&opened);
    let files = files_under(&work.join("protected-out"));
    assert!(files.iter().any(|f| std::fs::read(f).unwrap() == b"secret"));
    // A wrong passphrase opens nothing.
    let wrong = with_pinentry(
        &[
            "open",
            bundle.to_str().unwrap(),
            "-i",
            "protected.age",
            "-o",
            "wrong-out",
        ],
        "wrong",
    );
    let item = &server.items()[0].id;
    assert_eq!(wrong.status.code(), Some(1));
    assert_eq!(
        stderr(&wrong),
        format!(
            "agedrop: skipped: item {item}: cannot decrypt\nagedrop: skipped: item {item}: metadata cannot decrypt\n0 item(s) and 0 reply(ies) written under wrong-out.\nagedrop: error: 2 problem(s) with this bundle; see above\n"
        )
    );
    let written = work.join("wrong-out");
    assert!(!written.exists() || files_under(&written).is_empty());
}

#[test]
fn mutual_tls_admits_only_clients_with_a_certificate_from_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let server_ca = test_ca(work, "server-ca");
    let client_ca = test_ca(work, "client-ca");
    let rogue_ca = test_ca(work, "rogue-ca");
    let (server_cert, server_key) = test_cert(work, "server", &["127.0.0.1"], &server_ca);
    let (client_cert, client_key) = test_cert(work, "client", &["journalist"], &client_ca);
    let (rogue_cert, rogue_key) = test_cert(work, "rogue", &["journalist"], &rogue_ca);

    let server = Server::with(Options::default().journalist_tls(
        &server_cert,
        &server_key,
        Some(&work.join("client-ca.pem")),
    ));
    let token = server.add_journalist_file("tls");
    let (addr, journalist) = (server.addr, server.journalist);
    assert!(
        server
            .listening
            .as_ref()
            .unwrap()
            .journalist
            .starts_with("https://"),
        "the API says it listens over TLS"
    );
    let mut source = Browser::new(addr);
    source.get("/submit");
    assert_eq!(
        source
            .submit(vec![Part::text("message", b"over tls")])
            .status,
        200
    );

    let server_url = format!("https://{journalist}");
    let pull = |bundle: &str, cert: Option<(&Path, &Path)>| {
        let mut args = vec![
            "pull".to_owned(),
            "--server".into(),
            server_url.clone(),
            "--token-file".into(),
            token.display().to_string(),
            "--ca-cert".into(),
            work.join("server-ca.pem").display().to_string(),
            "-o".into(),
            bundle.into(),
        ];
        if let Some((c, k)) = cert {
            args.extend([
                "--client-cert".into(),
                c.display().to_string(),
                "--client-key".into(),
                k.display().to_string(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        agedrop(&args, work)
    };
    let without = pull("none.tar", None);
    assert_refused(
        &without,
        "the server requires a client certificate (mutual TLS): pass --client-cert and \
         --client-key with the certificate and key the drop's admin made for you",
    );
    assert!(!work.join("none.tar").exists());
    let rogue = pull("rogue.tar", Some((&rogue_cert, &rogue_key)));
    // rcgen gives both CAs the same (empty) name, so the server finds "its" CA and the
    // signature check fails: DecryptError rather than UnknownCA.
    assert_refused(
        &rogue,
        "the server refused the client certificate (TLS alert: DecryptError): it must be \
         signed by the CA the server trusts (journalist.client_ca), unexpired, and made for \
         client authentication (extendedKeyUsage clientAuth): ask the drop's admin for a \
         new one (docs/admin.md, \"Journalist API over TLS\")",
    );
    assert!(!work.join("rogue.tar").exists());
    // Plain HTTP to the TLS port gets no page either.
    let mut plain = std::net::TcpStream::connect(journalist).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    std::io::Write::write_all(
        &mut plain,
        b"GET /api/v1/export HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut answer);
    // One TLS record: a fatal alert (2), decode_error (50). No HTTP at all.
    assert_eq!(answer, [21, 3, 3, 0, 2, 2, 50]);

    ok(&pull("good.tar", Some((&client_cert, &client_key))));
    let opened = agedrop(
        &[
            "open",
            "good.tar",
            "-i",
            server.newsroom.identity_file.to_str().unwrap(),
            "-o",
            "tls-out",
        ],
        work,
    );
    ok(&opened);
    assert!(files_under(&work.join("tls-out"))
        .iter()
        .any(|f| std::fs::read(f).unwrap() == b"over tls"));
}

#[test]
fn a_pull_after_deleting_the_newest_item_still_gets_the_next_one() {
    let server = Server::start();
    let token = server.add_journalist_file("hana");
    let work = server.dir.path();
    let mut source = Browser::new(server.addr);
    source.get("/submit");
    assert_eq!(
        source.submit(vec![Part::text("message", b"first")]).status,
        200
    );
    ok(&server.pull(&token, &work.join("p1.tar")));
    let first = server.items().remove(0);
    // The newest item goes; the next one must not inherit its export position.
    let out = agedrop(
        &[
            "delete",
            "--server",
            &url(server.journalist),
            "--token-file",
            token.to_str().unwrap(),
            "--item",
            &first.id,
        ],
        work,
    );
    ok(&out);
    source.get("/inbox");
    assert_eq!(
        source.submit(vec![Part::text("message", b"second")]).status,
        303
    );
    ok(&server.pull(&token, &work.join("p2.tar")));
    let opened = work.join("p2-out");
    assert!(ok(&open(&server, &work.join("p2.tar"), &opened)).contains("1 item(s)"));
    let files = files_under(&opened);
    assert!(files.iter().any(|f| std::fs::read(f).unwrap() == b"second"));
    let index = files.iter().find(|f| f.ends_with("index.txt")).unwrap();
    let second = server.items().remove(0);
    assert!(
        std::fs::read_to_string(index).unwrap().contains(&second.id),
        "the index names item ids for `delete`"
    );
}

/// Issue 4, leak canaries: a whole flow (submit with markers in message, filename,
/// content type and body; log in with the code; a journalist pulls, opens and replies
/// with a marked reply; the source reads it and follows up) with the server logging at
/// trace level. No marker and no code may appear in the server's log, anywhere in its
/// directory outside ciphertext, or in any response header.
#[test]
fn canaries_never_leak_through_submit_login_reply_and_follow_up() {
    let mut server = Server::with(Options {
        log: "trace",
        ..Options::default()
    });
    let token = server.add_journalist_file("carol");
    // The journalist's files (bundles, plaintext) live apart from the server's.
    let desk = tempfile::tempdir().unwrap();
    let work = desk.path();
    let marker = format!("CANARY{}X", std::process::id());
    let mut headers_seen = Vec::new();

    let mut source = Browser::new(server.addr);
    headers_seen.push(source.get("/submit").headers);
    let mut file = Part::file(
        format!("{marker}.pdf"),
        format!("body {marker} ").repeat(5000).into_bytes(),
    );
    file.content_type = format!("application/x-{marker}");
    let page = source.submit(vec![
        Part::text("message", format!("message {marker}").as_bytes()),
        file,
    ]);
    assert_eq!(page.status, 200);
    let code = code_from(&page);
    headers_seen.push(page.headers);

    let mut back = Browser::new(server.addr);
    let page = back.login(&code);
    assert_eq!(page.status, 303);
    headers_seen.push(page.headers);

    let bundle = work.join("bundle.tar");
    ok(&server.pull(&token, &bundle));
    let label = server.source_rows()[0].1.clone();
    let reply = server.write_reply(&bundle, &label, &format!("reply {marker}"), work);
    ok(&agedrop(
        &[
            "push",
            "--server",
            &url(server.journalist),
            "--token-file",
            token.to_str().unwrap(),
            reply.to_str().unwrap(),
        ],
        work,
    ));

    let inbox = back.get("/inbox");
    assert!(
        inbox.body.contains(&format!("reply {marker}")),
        "the reply arrived"
    );
    headers_seen.push(inbox.headers);
    let page = back.submit(vec![
        Part::text("message", format!("follow-up {marker}").as_bytes()),
        Part::file(format!("{marker}-2.txt"), marker.clone().into_bytes()),
    ]);
    assert_eq!(page.status, 303);
    headers_seen.push(page.headers);
    headers_seen.push(back.get("/inbox").headers);
    let page = back.post_form("/logout", &[]);
    headers_seen.push(page.headers);

    // Stopped, so every line it was going to log is in the file.
    server.stop();
    let log = server.log();
    assert!(log.contains("DEBUG"), "the log was written at trace level");
    assert!(
        log.contains("submission stored"),
        "the whole flow was logged"
    );
    // The code as shown, and as a login form carries it (url-encoded).
    let code_plus = code.replace(' ', "+");
    let code_encoded = code.replace(' ', "%20");
    let secrets = [
        marker.as_str(),
        code.as_str(),
        code_plus.as_str(),
        code_encoded.as_str(),
    ];
    for secret in secrets {
        assert!(!log.contains(secret), "a marker or the code is in the log");
        for headers in &headers_seen {
            for (name, values) in headers {
                assert!(values.iter().all(|v| !v.contains(secret)), "header {name}");
            }
        }
    }
    for file in files_under(server.dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in secrets {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "a marker or the code is in {}",
                file.display()
            );
        }
        assert!(!file.to_string_lossy().contains(&marker));
    }
}

/// A newsroom key that was replaced on the server (SECURITY.md, "Changed newsroom
/// keys") shows when each identity is used on its own: `open` with an identity the
/// items were not encrypted to reports every item as skipped, writes none of them and
/// exits 1.
#[test]
fn open_with_an_identity_the_items_were_not_encrypted_to_reports_each_item() {
    let server = Server::start();
    let token = server.add_journalist_file("hana");
    let work = server.dir.path();
    let page = submit(
        server.addr,
        vec![Part::text("message", b"for the newsroom only")],
    );
    assert_eq!(page.status, 200);
    let item = server.items().remove(0);
    ok(&server.pull(&token, &work.join("b.tar")));
    let stranger_dir = work.join("stranger");
    std::fs::create_dir(&stranger_dir).unwrap();
    let stranger = Newsroom::new(&stranger_dir);
    let out = work.join("opened");
    let opened = agedrop(
        &[
            "open",
            work.join("b.tar").to_str().unwrap(),
            "-i",
            stranger.identity_file.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        work,
    );
    assert_eq!(opened.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&opened.stderr);
    assert!(
        stderr.contains(&format!("skipped: item {}: cannot decrypt", item.id)),
        "{stderr}"
    );
    for file in files_under(&out) {
        assert!(
            !contains(&std::fs::read(&file).unwrap(), b"for the newsroom only"),
            "{} holds the plaintext",
            file.display()
        );
    }
}

/// The server gives a deleted source's label to new sources. A later bundle whose
/// source has an old label but another id opens into `LABEL-ID…`, never into the old
/// source's directory; one manifest with two sources of one label is refused.
#[test]
fn a_reused_label_never_merges_two_sources_offline() {
    let server = Server::start();
    let token = server.add_journalist_file("ines");
    let page = submit(server.addr, vec![Part::text("message", b"from the first")]);
    assert_eq!(page.status, 200);
    let work = server.dir.path();
    let first = work.join("first.tar");
    ok(&server.pull(&token, &first));
    let entries = untar(&std::fs::read(&first).unwrap());
    let manifest: serde_json::Value = serde_json::from_slice(&entries[0].1).unwrap();
    let old_id = manifest["sources"][0]["id"].as_str().unwrap().to_owned();
    let label = manifest["sources"][0]["label"].as_str().unwrap().to_owned();
    let out = work.join("desk");
    ok(&open(&server, &first, &out));

    // The same label for another source, as after a deletion.
    let new_id = "f".repeat(32);
    let relabelled = |manifest: &serde_json::Value| {
        let text = serde_json::to_string(manifest)
            .unwrap()
            .replace(&old_id, &new_id);
        let mut parts: Vec<(&str, &[u8])> = vec![("manifest.json", text.as_bytes())];
        for (name, data) in &entries[1..] {
            parts.push((name, data));
        }
        tar(&parts)
    };
    let second = work.join("second.tar");
    std::fs::write(&second, relabelled(&manifest)).unwrap();
    ok(&open(&server, &second, &out));
    let old_dir = out.join(&label);
    let new_dir = out.join(format!("{label}-{}", &new_id[..12]));
    let old_index = std::fs::read_to_string(old_dir.join("index.txt")).unwrap();
    assert!(
        old_index.contains(&old_id) && !old_index.contains(&new_id),
        "{old_index}"
    );
    let new_index = std::fs::read_to_string(new_dir.join("index.txt")).unwrap();
    assert!(
        new_index.starts_with(&format!("Source {label}  (id {new_id})")),
        "{new_index}"
    );

    // Two sources of one label in one manifest: refused before anything is written.
    let mut twice = manifest.clone();
    let mut other = twice["sources"][0].clone();
    other["id"] = serde_json::Value::from("e".repeat(32));
    twice["sources"].as_array_mut().unwrap().push(other);
    let text = serde_json::to_string(&twice).unwrap();
    let mut parts: Vec<(&str, &[u8])> = vec![("manifest.json", text.as_bytes())];
    for (name, data) in &entries[1..] {
        parts.push((name, data));
    }
    let bad = work.join("twice.tar");
    std::fs::write(&bad, tar(&parts)).unwrap();
    let refused = open(&server, &bad, &work.join("twice-out"));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("two sources share an id or a label"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// Export format 2: the newsroom's reply comes back in the next pull, after the item it
/// answers in its source's order; stock age opens it with the newsroom's identity and
/// `open` writes it as `NNN-reply.txt`. Once the source deletes it, the next pull (and
/// `pull --all`) says only which source and which order: no entry, no id.
#[test]
fn replies_and_their_deletions_travel_in_export_bundles() {
    let server = Server::start();
    let token = server.add_journalist_file("rosa");
    let work = server.dir.path();
    let mut source = Browser::new(server.addr);
    source.get("/submit");
    let page = source.submit(vec![Part::text("message", b"first message")]);
    assert_eq!(page.status, 200);
    let code = code_from(&page);
    let (source_id, label, recipient) = server.source_rows().remove(0);
    let listed_source = serde_json::json!([
        { "id": source_id, "label": label, "recipient": recipient, "desk": "newsroom" }
    ]);
    let first = work.join("b1.tar");
    ok(&server.pull(&token, &first));
    let (manifest, _) = pulled(&first);
    assert_eq!(manifest["items"][0]["order"], 1);
    assert_eq!(manifest["replies"], serde_json::json!([]));

    let text = "We read it. Can you call?";
    ok(&push(
        &server,
        &token,
        &server.write_reply(&first, &label, text, work),
    ));
    let second = work.join("b2.tar");
    ok(&server.pull(&token, &second));
    let (manifest, names) = pulled(&second);
    assert_eq!(manifest["version"], 2);
    assert_eq!(manifest["items"], serde_json::json!([]));
    assert_eq!(manifest["sources"], listed_source);
    assert_eq!(manifest["deleted_replies"], serde_json::json!([]));
    let reply_id = manifest["replies"][0]["id"].as_str().unwrap().to_owned();
    let entry = format!("replies/{reply_id}.age");
    assert_eq!(names, std::slice::from_ref(&entry));
    let ciphertext = untar(&std::fs::read(&second).unwrap()).remove(1).1;
    let day = manifest["replies"][0]["day"].as_str().unwrap().to_owned();
    assert_eq!(
        manifest["replies"],
        serde_json::json!([{
            "id": reply_id,
            "source_id": source_id,
            "order": 2,
            "day": day,
            "size": ciphertext.len(),
            "blob": entry,
        }])
    );
    let extracted = work.join("reply.age");
    std::fs::write(&extracted, &ciphertext).unwrap();
    assert_eq!(
        server.newsroom.decrypt_with_cli(&extracted),
        text.as_bytes()
    );

    let out = work.join("desk");
    ok(&open(&server, &first, &out));
    ok(&open(&server, &second, &out));
    let dir = out.join(&label);
    assert_eq!(
        std::fs::read(dir.join("002-reply.txt")).unwrap(),
        text.as_bytes()
    );
    let index = std::fs::read_to_string(dir.join("index.txt")).unwrap();
    let reply_line = format!(
        "   2  {day}  reply              25 bytes  002-reply.txt  (reply from the newsroom, id {reply_id})"
    );
    assert!(index.lines().any(|line| line == reply_line), "{index}");

    // The source deletes it from its inbox.
    let mut returning = Browser::new(server.addr);
    assert_eq!(returning.login(&code).status, 303);
    assert!(returning.get("/inbox").body.contains(text));
    let deleted = returning.post_form(&format!("/replies/{reply_id}/delete"), &[]);
    assert_eq!(deleted.status, 303);
    let third = work.join("b3.tar");
    ok(&server.pull(&token, &third));
    let (manifest, names) = pulled(&third);
    assert_eq!(
        names,
        Vec::<String>::new(),
        "no entry for the deleted reply"
    );
    assert_eq!(manifest["items"], serde_json::json!([]));
    assert_eq!(manifest["replies"], serde_json::json!([]));
    assert_eq!(manifest["sources"], listed_source);
    assert_eq!(
        manifest["deleted_replies"],
        serde_json::json!([{ "source_id": source_id, "order": 2 }])
    );
    assert!(!contains(
        &std::fs::read(&third).unwrap(),
        reply_id.as_bytes()
    ));
    ok(&open(&server, &third, &out));
    let index = std::fs::read_to_string(dir.join("index.txt")).unwrap();
    assert_eq!(
        index.lines().last(),
        Some("   2  reply 002 deleted by the source"),
        "{index}"
    );

    // Numbers only grow: the next item is 3. From the start, the deletion is listed
    // in the reply's place, and the reply is not.
    returning.get("/inbox");
    assert_eq!(
        returning
            .submit(vec![Part::text("message", b"second message")])
            .status,
        303
    );
    let all = work.join("all.tar");
    ok(&server.with_token(&token, "pull", &["--all", "-o", all.to_str().unwrap()]));
    let (manifest, names) = pulled(&all);
    let orders: Vec<&serde_json::Value> = manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item["order"])
        .collect();
    assert_eq!(orders, [1, 3]);
    assert_eq!(manifest["replies"], serde_json::json!([]));
    assert_eq!(
        manifest["deleted_replies"],
        serde_json::json!([{ "source_id": source_id, "order": 2 }])
    );
    assert!(
        names.iter().all(|name| name.starts_with("items/")),
        "{names:?}"
    );
    assert_eq!(names.len(), 4);
}

/// A reply the newsroom's identity cannot open (here one encrypted to the source
/// alone) is reported like such an item: skipped with its id, nothing written.
#[test]
fn a_reply_the_identity_cannot_decrypt_is_reported_and_nothing_is_written() {
    let server = Server::start();
    let token = server.add_journalist_file("rosa");
    let work = server.dir.path();
    let page = submit(server.addr, vec![Part::text("message", b"hello")]);
    assert_eq!(page.status, 200);
    let api_token = server.add_journalist("tom");
    assert_eq!(server.push_reply(&api_token, b"for the source only"), 201);
    let bundle = work.join("b.tar");
    ok(&server.pull(&token, &bundle));
    let (manifest, _) = pulled(&bundle);
    let reply_id = manifest["replies"][0]["id"].as_str().unwrap().to_owned();
    let out = work.join("desk");
    let opened = open(&server, &bundle, &out);
    assert_eq!(opened.status.code(), Some(1));
    assert_eq!(
        stderr(&opened),
        format!(
            "agedrop: skipped: reply {reply_id}: cannot decrypt\n1 item(s) and 0 reply(ies) written under {}.\nagedrop: error: 1 problem(s) with this bundle; see above\n",
            out.display()
        )
    );
    let mut names: Vec<String> = files_under(&out)
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["001-message.txt", "index.txt"]);
}

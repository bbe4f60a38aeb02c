//! Findings of two outside reviews, each through the public surface: no trace of old
//! keys on disk, no lock-outs, no 500s, nothing dropped on a guess, no access times.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::*;

fn first_submission(browser: &mut Browser, message: &str) -> String {
    browser.get("/submit");
    let page = browser.submit(vec![Part::text("message", message.as_bytes())]);
    assert_eq!(page.status, 200, "{}", page.body);
    code_from(&page)
}

/// The one source's lookup id and wrapped key, as the database holds them.
fn source_keys(server: &Server) -> (String, Vec<u8>, Vec<u8>) {
    let db = rusqlite::Connection::open(server.data().join("agedrop.sqlite")).unwrap();
    db.query_row("SELECT id, lookup_id, wrapped_key FROM sources", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
}

/// A copy of the data directory as a seizure would take it (the server keeps running).
fn seize(server: &Server, name: &str) -> PathBuf {
    let copy = server.dir.path().join(name);
    let out = Command::new("cp")
        .arg("-a")
        .arg(server.data())
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    copy
}

/// Which of `needles` occur in any file under `dir`, by name.
fn found_in(dir: &Path, needles: &[(&str, &[u8])]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        for (name, needle) in needles {
            if contains(&bytes, needle) {
                found.push(format!("{name} in {}", file.display()));
            }
        }
    }
    found
}

/// Finding 1: after a code rotation and after each kind of deletion, nothing of the
/// old record is left in any file of the data directory (WAL included).
#[test]
fn rotation_and_deletions_leave_nothing_of_the_old_record_on_disk() {
    if sqlite_only(
        "it searches the data directory's files (agedrop.sqlite and its WAL) for deleted \
         rows; PostgreSQL keeps them elsewhere, and keeps dead rows until VACUUM \
         (SECURITY.md, \"What a database operator can learn\")",
    ) {
        return;
    }
    let mut options = Options::default();
    options.source.push(("rotate_codes", "true".into()));
    let server = Server::with(options);
    let token = server.add_journalist("ana");
    let mut first = Browser::new(server.addr);
    let old = first_submission(&mut first, "hello");
    let (source_id, old_lookup, old_wrapped) = source_keys(&server);
    assert!(
        !found_in(&seize(&server, "before"), &[("lookup id", &old_lookup)]).is_empty(),
        "the search finds what is stored (the lookup id is in the WAL or the database)"
    );

    let mut source = Browser::new(server.addr);
    assert_eq!(source.login(&old).status, 303);
    assert!(source.get("/inbox").body.contains("id=\"code\""));
    assert_eq!(source.post_form("/code/confirm", &[]).status, 303);
    let (_, new_lookup, new_wrapped) = source_keys(&server);
    assert_ne!(new_lookup, old_lookup);
    let seized = seize(&server, "after-rotation");
    assert_eq!(
        found_in(
            &seized,
            &[
                ("old lookup id", &old_lookup),
                ("old wrapped key", &old_wrapped)
            ]
        ),
        Vec::<String>::new()
    );
    assert!(!found_in(&seized, &[("new lookup id", &new_lookup)]).is_empty());

    // A reply, deleted by the source.
    assert_eq!(server.push_reply(&token, b"a reply"), 201);
    let reply_id = server.reply_ids().remove(0);
    assert_eq!(source.get("/inbox").status, 200);
    let deleted = source.post_form(&format!("/replies/{reply_id}/delete"), &[]);
    assert_eq!(deleted.status, 303);
    assert_eq!(
        found_in(
            &seize(&server, "after-reply-delete"),
            &[("reply id", reply_id.as_bytes())]
        ),
        Vec::<String>::new()
    );

    // An item, deleted by a journalist.
    let item = server.items().remove(0);
    assert_eq!(server.delete_item(&token, &item.id), 204);
    assert_eq!(
        found_in(
            &seize(&server, "after-item-delete"),
            &[("item id", item.id.as_bytes())]
        ),
        Vec::<String>::new()
    );

    // The whole source.
    assert_eq!(server.delete_source(&token, &source_id), 204);
    assert_eq!(
        found_in(
            &seize(&server, "after-source-delete"),
            &[
                ("source id", source_id.as_bytes()),
                ("lookup id", &new_lookup),
                ("wrapped key", &new_wrapped),
            ]
        ),
        Vec::<String>::new()
    );
}

/// Finding 2: one code logged in ten times the session cap cannot keep others out; a
/// source has one session (the newest), and at the cap the idlest session gives way.
#[test]
fn one_code_logging_in_again_and_again_cannot_fill_the_session_table() {
    let mut options = Options::default();
    options.limits.push(("max_sessions", "3".into()));
    let server = Server::with(options);
    let flooder_code = first_submission(&mut Browser::new(server.addr), "flooder");
    let other_code = first_submission(&mut Browser::new(server.addr), "other");

    let mut earliest = Browser::new(server.addr);
    assert_eq!(earliest.login(&flooder_code).status, 303);
    let mut latest = Browser::new(server.addr);
    for _ in 0..30 {
        latest = Browser::new(server.addr);
        assert_eq!(latest.login(&flooder_code).status, 303);
    }
    assert_eq!(
        earliest.get("/inbox").header("location"),
        Some("/login"),
        "a new login replaced the source's older session"
    );
    assert_eq!(latest.get("/inbox").status, 200);

    let mut other = Browser::new(server.addr);
    let login = other.login(&other_code);
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(other.get("/inbox").status, 200);

    // Three more sources fill the table; the idlest session (the flooder's) gives way.
    for n in 0..2 {
        let code = first_submission(&mut Browser::new(server.addr), &format!("s{n}"));
        let mut browser = Browser::new(server.addr);
        assert_eq!(browser.login(&code).status, 303);
    }
    assert_eq!(
        other.get("/inbox").status,
        200,
        "touched, so not the idlest"
    );
    let code = first_submission(&mut Browser::new(server.addr), "last");
    let mut last = Browser::new(server.addr);
    assert_eq!(last.login(&code).status, 303);
    assert_eq!(last.get("/inbox").status, 200);
}

/// Finding 3: with rotating codes, a login whose page never arrived, two logins at
/// once and a restart all keep the old code working and show the same new code, until
/// the source confirms it or logs in with it.
#[test]
fn a_lost_code_page_or_a_double_login_never_locks_the_source_out() {
    let mut options = Options::default();
    options.source.push(("rotate_codes", "true".into()));
    let mut server = Server::with(options);
    let old = first_submission(&mut Browser::new(server.addr), "hello");

    // The answer to this login is lost: the browser never shows the inbox.
    assert_eq!(Browser::new(server.addr).login(&old).status, 303);
    // A double-submitted login form: two posts at once.
    let addr = server.addr;
    let posts: Vec<_> = (0..2)
        .map(|_| {
            let old = old.clone();
            std::thread::spawn(move || Browser::new(addr).login(&old).status)
        })
        .collect();
    for post in posts {
        assert_eq!(post.join().unwrap(), 303);
    }
    let mut source = Browser::new(server.addr);
    assert_eq!(source.login(&old).status, 303);
    let new = code_from(&source.get("/inbox"));
    assert_ne!(new, old);

    // The pending code is on disk (sealed to the source), not only in memory.
    server.restart();
    let mut source = Browser::new(server.addr);
    assert_eq!(source.login(&old).status, 303, "the old code still works");
    assert_eq!(
        code_from(&source.get("/inbox")),
        new,
        "the same new code again"
    );

    // Logging in with the new code proves the source has it: the old one goes.
    let mut source = Browser::new(server.addr);
    assert_eq!(source.login(&new).status, 303);
    assert_eq!(source.get("/inbox").status, 200);
    assert_eq!(Browser::new(server.addr).login(&old).status, 403);
    assert_eq!(server.sources(), 1);
}

/// Finding 6: logging out replaces the csrf cookie, which would otherwise link the
/// next session in the same browser to this one.
#[test]
fn logout_replaces_the_csrf_cookie() {
    let server = Server::start();
    let mut source = Browser::new(server.addr);
    let code = first_submission(&mut source, "hello");
    let mut source = Browser::new(server.addr);
    assert_eq!(source.login(&code).status, 303);
    source.get("/inbox");
    let before = source.cookies["agedrop_csrf"].clone();
    let out = source.post_form("/logout", &[]);
    assert_eq!(out.status, 303);
    let after = source
        .cookies
        .get("agedrop_csrf")
        .expect("logout sets a new csrf cookie")
        .clone();
    assert_ne!(after, before);
    assert_eq!(after.len(), before.len());
    // The new cookie works for the next form.
    assert_eq!(source.login(&code).status, 303);
}

/// Finding 6: start-up never drops item rows because `blobs/` looks empty (an
/// unmounted volume): it refuses to start, says why, and changes nothing.
#[test]
fn start_up_refuses_when_blobs_are_missing_instead_of_dropping_rows() {
    let mut server = Server::start();
    for n in 0..3 {
        let page = submit(
            server.addr,
            vec![Part::text("message", format!("m{n}").as_bytes())],
        );
        assert_eq!(page.status, 200);
    }
    let away = server.hide_blobs();
    server.assert_refuses_missing_blobs(3);
    assert_eq!(server.items().len(), 3, "no row was dropped");
    let blobs = server.data().join("blobs");
    std::fs::remove_dir(&blobs).unwrap();
    std::fs::rename(&away, &blobs).unwrap();
    server.restart();
    assert_eq!(server.items().len(), 3);
}

/// The same when only replies are stored (every item pulled and deleted, the usual
/// state of a drop): the replies' rows must not be dropped either.
#[test]
fn start_up_refuses_an_empty_blobs_directory_when_only_replies_are_stored() {
    let mut server = Server::start();
    let token = server.add_journalist("ana");
    let page = submit(server.addr, vec![Part::text("message", b"m")]);
    assert_eq!(page.status, 200);
    assert_eq!(server.push_reply(&token, b"a reply"), 201);
    let item = server.items().remove(0);
    assert_eq!(server.delete_item(&token, &item.id), 204);
    server.hide_blobs();
    server.assert_refuses_missing_blobs(1);
    let replies = server.db().value("SELECT COUNT(*) FROM replies").int();
    assert_eq!(replies, 1, "the reply's row was kept");
}

/// Finding 6: the metadata record is one size whatever the filename, even one made
/// of characters that JSON escapes.
#[test]
fn metadata_records_have_one_size_even_for_names_full_of_escapes() {
    let server = Server::start();
    let mut plain = Part::file("a.txt", b"x".to_vec());
    plain.content_type = "text/plain".into();
    // Ends in a letter: multer would read a final backslash as escaping the quote.
    let mut escaped = Part::file(format!("{}x", "\\".repeat(254)), b"y".to_vec());
    escaped.content_type = format!("text/plain; x=\"{}\"", "\\\\".repeat(120));
    let mut tabs = Part::file("\t".repeat(255), b"z".to_vec());
    tabs.content_type = "text/plain".into();
    for part in [plain, escaped, tabs] {
        let page = submit(server.addr, vec![part]);
        assert_eq!(page.status, 200, "{}", page.body);
    }
    let items = server.items();
    assert_eq!(items.len(), 3);
    // The padded plaintext must not vary, and so neither does the ciphertext (agedrop's
    // encoder adds no random "grease" stanza).
    let sizes: Vec<(usize, usize)> = items
        .iter()
        .map(|item| {
            let meta = server
                .data()
                .join("blobs")
                .join(format!("{}.meta.age", item.id));
            let sealed = std::fs::read(meta).unwrap();
            (sealed.len(), server.newsroom.decrypt(&sealed).len())
        })
        .collect();
    assert!(sizes.iter().all(|&size| size == sizes[0]), "{sizes:?}");
    assert_eq!(sizes[0].1, 1024);
    let mut kept_escapes = false;
    for item in &items {
        let (data, meta) = server.open_item(item);
        let name = meta["filename"].as_str().unwrap_or_default();
        assert!(name.len() <= 255);
        if data == b"y" {
            // The record really held a name and a type full of escapes, cut to fit.
            let kind = meta["content_type"].as_str().unwrap_or_default();
            assert!(
                name.len() > 200 && name.trim_end_matches('x').bytes().all(|b| b == b'\\'),
                "{meta}"
            );
            assert!(kind.starts_with("text/plain; x=\"\\"), "{kind}");
            kept_escapes = true;
        }
    }
    assert!(kept_escapes);
}

/// Finding 7: many tiny items exhaust inodes while bytes are free. Uploads are refused
/// first (507), a reply still gets in, and the server restarts.
#[test]
fn running_out_of_inodes_refuses_uploads_but_keeps_replies_and_restarts_working() {
    let mut options = Options {
        data_tmpfs: Some(64 * 1024 * 1024),
        tmpfs_options: "nr_inodes=400",
        ..Options::default()
    };
    options.limits.push(("min_free_inodes", "150".into()));
    options.limits.push(("max_files", "2".into()));
    options
        .limits
        .push(("max_submissions_per_minute", "100000".into()));
    let mut server = Server::with(options);
    let token = server.add_journalist("ana");
    let mut refused = None;
    for n in 0..400 {
        let page = submit(server.addr, vec![Part::text("message", b"tiny")]);
        match page.status {
            200 => {}
            507 => {
                refused = Some((n, page));
                break;
            }
            other => panic!("upload {n}: {other} {}", page.body),
        }
    }
    let (accepted, page) = refused.expect("uploads are refused before the inodes run out");
    assert!(accepted > 50, "only {accepted} uploads fit");
    assert!(
        page.body.contains("no room for new uploads"),
        "{}",
        page.body
    );
    let stat = rustix::fs::statvfs(server.data()).unwrap();
    assert!(stat.f_favail >= 150, "{} inodes left", stat.f_favail);

    assert_eq!(server.push_reply(&token, b"reply"), 201);
    server.restart();
    assert_eq!(get(server.addr, "/").status, 200);
}

/// Finding 8: reading a reply for the inbox, or a blob for an export, leaves the
/// file's access time as it was (it would date the login or the pull).
#[test]
fn inbox_and_export_reads_leave_access_times_alone() {
    let server = Server::with(Options {
        data_tmpfs: Some(32 * 1024 * 1024),
        tmpfs_options: "strictatime",
        ..Options::default()
    });
    let token = server.add_journalist("ana");
    let code = first_submission(&mut Browser::new(server.addr), "hello");
    assert_eq!(server.push_reply(&token, b"reply-canary-text"), 201);
    let blobs = server.blobs();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for blob in &blobs {
        let file = std::fs::File::options().write(true).open(blob).unwrap();
        file.set_times(std::fs::FileTimes::new().set_accessed(old))
            .unwrap();
    }
    let atimes = |blobs: &[PathBuf]| -> Vec<SystemTime> {
        blobs
            .iter()
            .map(|b| std::fs::metadata(b).unwrap().accessed().unwrap())
            .collect()
    };
    assert!(atimes(&blobs).iter().all(|&t| t == old));

    let mut source = Browser::new(server.addr);
    assert_eq!(source.login(&code).status, 303);
    assert!(source.get("/inbox").body.contains("reply-canary-text"));
    let (status, bundle) = server.api("GET", "/api/v1/export", &token, b"");
    assert_eq!(status, 200);
    assert_eq!(untar(&bundle).len(), 4, "manifest, item, metadata, reply");
    assert!(
        atimes(&blobs).iter().all(|&t| t == old),
        "a read moved an access time"
    );
}

/// Finding 9: an admin command committing beside the server never turns an upload
/// into a 500 ("database is locked").
#[test]
fn admin_commands_beside_the_server_never_make_uploads_fail() {
    let mut options = Options::default();
    options
        .limits
        .push(("max_submissions_per_minute", "100000".into()));
    let server = Server::with(options);
    let config = server.config.to_str().unwrap().to_owned();
    let dir = server.dir.path().to_owned();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let admin = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for action in ["add", "remove"] {
                    let name = format!("j{}", n % 3);
                    ok(&agedrop(
                        &["journalist", action, &name, "--config", &config],
                        &dir,
                    ));
                }
                n += 1;
            }
            n
        })
    };
    let mut statuses = Vec::new();
    for n in 0..48 {
        let page = submit(
            server.addr,
            vec![Part::text("message", format!("m{n}").as_bytes())],
        );
        statuses.push(page.status);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rounds = admin.join().unwrap();
    assert!(rounds > 0);
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(server.items().len(), 48);
}

/// Finding 10: item numbers only grow, so a deleted newest item never hands its
/// number to the next one.
#[test]
fn item_numbers_are_never_reused_after_a_deletion() {
    let server = Server::start();
    let token = server.add_journalist("ana");
    let mut source = Browser::new(server.addr);
    first_submission(&mut source, "one");
    source.get("/inbox");
    assert_eq!(
        source.submit(vec![Part::text("message", b"two")]).status,
        303
    );
    let newest = server.items().into_iter().max_by_key(|i| i.seq).unwrap();
    assert_eq!(newest.seq, 2);
    assert_eq!(server.delete_item(&token, &newest.id), 204);
    source.get("/inbox");
    assert_eq!(
        source.submit(vec![Part::text("message", b"three")]).status,
        303
    );
    let seqs: Vec<i64> = server.items().iter().map(|i| i.seq).collect();
    assert_eq!(seqs, vec![1, 3]);
}

/// Four 8 MiB items from new sources: an export is still streaming them a while after
/// its first bytes.
fn submit_big_items(server: &Server) {
    for n in 0..4 {
        let page = submit(
            server.addr,
            vec![Part::file("big.bin", noise(8 * 1024 * 1024, n))],
        );
        assert_eq!(page.status, 200);
    }
}

/// Finding 11: a deletion while an export streams never cuts the bundle short; the
/// deleted item's files are gone once the export ends.
#[test]
fn a_deletion_during_an_export_never_cuts_the_bundle_short() {
    let server = Server::start();
    let token = server.add_journalist("ana");
    submit_big_items(&server);
    let items = server.items();
    let export = ExportInProgress::begin(&server, &token);
    for item in &items {
        assert_eq!(server.delete_item(&token, &item.id), 204);
    }
    assert!(server.items().is_empty());
    export.finish_with(&items);
    eventually("the deleted blobs are removed", SOON, || {
        server.blobs().is_empty() && server.temp_files() == 0
    });
}

/// The same for a reply its source deletes while an export streams it: the bundle
/// still holds it whole, the deletion is exported next time, and its blob is gone once
/// the export ends.
#[test]
fn a_reply_deleted_during_an_export_still_arrives_whole() {
    let server = Server::start();
    let token = server.add_journalist("ana");
    let mut source = Browser::new(server.addr);
    first_submission(&mut source, "hello");
    // The items come before the reply in the export.
    submit_big_items(&server);
    assert_eq!(server.push_reply(&token, b"a reply"), 201);
    let (reply_id, reply_size) = {
        let row = server.db().rows("SELECT id, size FROM replies").remove(0);
        (row[0].text(), row[1].int())
    };
    let export = ExportInProgress::begin(&server, &token);
    assert_eq!(source.get("/inbox").status, 200);
    let deleted = source.post_form(&format!("/replies/{reply_id}/delete"), &[]);
    assert_eq!(deleted.status, 303);
    let reply_blob = server
        .data()
        .join("blobs")
        .join(format!("{reply_id}.reply.age"));
    assert!(!reply_blob.exists(), "the blob left blobs/ at once");
    let entries = export.finish();
    assert_eq!(entries.len(), 1 + 2 * 5 + 1, "the whole bundle arrived");
    let (name, data) = entries.last().unwrap();
    assert_eq!(name, &format!("replies/{reply_id}.age"));
    assert_eq!(data.len() as i64, reply_size);
    eventually("the deleted reply's blob is removed", SOON, || {
        server.temp_files() == 0
    });
    assert_eq!(server.blobs().len(), 2 * 5, "the items' blobs, no reply");

    // The next export says the reply was deleted, and holds nothing of it.
    let manifest = untar(&server.api("GET", "/api/v1/export", &token, b"").1).remove(0);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.1).unwrap();
    assert_eq!(manifest["replies"], serde_json::json!([]));
    assert_eq!(manifest["deleted_replies"][0]["order"], 2);
}

/// Finding 14: `serve` as root is refused unless asked for, and a source site on a
/// non-loopback address gets a warning.
#[test]
fn serving_as_root_is_refused_and_a_public_source_address_is_warned_about() {
    let is_root = rustix::process::geteuid().is_root();
    assert!(
        is_root,
        "this test checks the root refusal and must run as root"
    );
    let server = Server::prepare(Options {
        source_listen: "0.0.0.0:0".into(),
        allow_root: false,
        ..Options::default()
    });
    let data = server.data();
    assert_refused(
        &server.refused(),
        &format!(
            "refusing to serve as root: files made in {} would belong to root. Run agedrop as its own user (the systemd unit does: User=agedrop), or pass --allow-root if root is meant to own the data",
            data.display()
        ),
    );
    // A data directory that belongs to another user is refused even with the flag.
    let mut allowed = Server::prepare(Options {
        source_listen: "0.0.0.0:0".into(),
        ..Options::default()
    });
    std::os::unix::fs::chown(allowed.data(), Some(65534), Some(65534)).unwrap();
    assert_refused(
        &allowed.refused(),
        &format!(
            "refusing to serve as root: {} belongs to uid 65534, and files made as root there would be unreadable to it. Run agedrop as that user (the systemd unit does: User=agedrop), e.g. `sudo -u agedrop agedrop serve`",
            allowed.data().display()
        ),
    );
    std::os::unix::fs::chown(allowed.data(), Some(0), Some(0)).unwrap();

    // With the flag and its own data directory, it serves, and warns about the
    // non-loopback source address.
    allowed.serve();
    assert!(allowed.addr.ip().is_unspecified() && allowed.addr.port() != 0);
    eventually("the log warns about the public address", SOON, || {
        allowed
            .log()
            .contains("the source site listens on a non-loopback address")
    });
}

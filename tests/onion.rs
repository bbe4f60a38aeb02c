//! Deployment behind Tor: Unix sockets, onion-aware pages, process hardening, and
//! timeouts that let slow uploads live (silent ones die: tests/pages.rs).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;

/// A real v3 onion address (its checksum is checked at start-up); nothing connects to it.
const ONION: &str = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion";

#[test]
fn unix_sockets_serve_with_private_modes_and_stale_sockets_are_replaced() {
    let sockets = tempfile::tempdir().unwrap();
    let (source, journalist) = (
        sockets.path().join("source.sock"),
        sockets.path().join("journalist.sock"),
    );
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut options = Options::default().unix_sockets(&source, &journalist);
    if root {
        options.source.push(("socket_group", "\"nogroup\"".into()));
    }
    let mut server = Server::with(options);
    assert_eq!(server.source_socket(), Some(source.clone()));
    assert_eq!(server.journalist_socket(), Some(journalist.clone()));

    let meta = std::fs::metadata(&source).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o660,
        "owner and group only"
    );
    if root {
        let nogroup = std::fs::read_to_string("/etc/group")
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("nogroup:x:")
                    .and_then(|r| r.split(':').next())
                    .map(|g| g.parse::<u32>().unwrap())
            })
            .expect("Debian has a nogroup group");
        assert_eq!(meta.gid(), nogroup, "the socket belongs to socket_group");
    }
    let page = request_unix(&source, ONION, "GET", "/");
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("not using this site's onion address"),
        "reached by its onion name"
    );
    assert_eq!(
        request_unix(&journalist, ONION, "GET", "/api/v1/export").status,
        401
    );

    // kill -9 leaves the socket file behind; the next start replaces it.
    server.kill9();
    assert!(source.exists(), "a killed server leaves its socket");
    server.serve();
    assert_eq!(request_unix(&source, ONION, "GET", "/").status, 200);
    server.kill9();

    // A path that is not a socket, or cannot be made, is a clear error.
    std::fs::remove_file(&source).unwrap();
    std::fs::write(&source, b"a regular file").unwrap();
    assert_refused(
        &server.refused(),
        &format!(
            "config key `source.listen`: cannot listen on unix:{}: the path exists and is not a socket",
            source.display()
        ),
    );
    assert_eq!(
        std::fs::read(&source).unwrap(),
        b"a regular file",
        "never removed"
    );
    let nowhere = sockets.path().join("no/such/dir.sock");
    let text = std::fs::read_to_string(&server.config).unwrap().replace(
        &format!("unix:{}", source.display()),
        &format!("unix:{}", nowhere.display()),
    );
    std::fs::write(&server.config, text).unwrap();
    assert_refused(
        &server.refused(),
        &format!(
            "config key `source.listen`: cannot listen on unix:{}: No such file or directory (os error 2)",
            nowhere.display()
        ),
    );
}

#[test]
fn core_dumps_are_off_and_the_log_says_so() {
    let server = Server::start();
    let pid = PathBuf::from(format!("/proc/{}", server.pid()));
    let limits = std::fs::read_to_string(pid.join("limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], &["0", "0"], "{core}");
    assert!(
        server.log().contains("process hardening active"),
        "{}",
        server.log()
    );
    assert!(server.log().contains("core_dumps=\"off\"") || server.log().contains("core_dumps=off"));
}

#[test]
fn a_clearnet_landing_points_to_the_onion_and_never_redirects_off_it() {
    let mut options = Options::default();
    options
        .source
        .push(("onion_address", format!("\"{ONION}\"")));
    let server = Server::with(options);
    let mut clearnet = Browser::new(server.addr);
    clearnet.host = "drop.example.org".into();
    let page = clearnet.get("/submit");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("onion-location"),
        Some(format!("http://{ONION}/submit").as_str())
    );
    assert!(page.body.contains("not using this site's onion address") && page.body.contains(ONION));
    assert!(
        !page.body.contains(&format!("href=\"http://{ONION}")),
        "named, never linked"
    );
    let mut onion = Browser::new(server.addr);
    onion.host = ONION.into();
    let page = onion.get("/");
    assert!(page.header("onion-location").is_none());
    assert!(!page.body.contains("not using this site's onion address"));
    // Every redirect stays on the site: a relative path.
    onion.get("/submit");
    let sent = onion.submit(vec![Part::text("message", b"hi")]);
    assert_eq!(sent.status, 200);
    let follow = onion.submit(vec![Part::text("message", b"more")]);
    assert_eq!(follow.status, 303);
    assert!(follow.header("location").unwrap().starts_with('/'));

    // A malformed onion address is refused at start-up.
    let mut bad = Options::default();
    bad.source
        .push(("onion_address", "\"example.onion\"".into()));
    assert_refused(
        &Server::prepare(bad).refused(),
        "config key `source.onion_address`: expected a v3 onion address: 56 base32 characters followed by .onion",
    );
}

#[test]
fn a_slow_live_upload_outlives_the_idle_timeout() {
    let mut options = Options::default();
    options.limits.push(("idle_body_timeout_secs", "3".into()));
    let server = Server::with(options);

    // 32 KiB every second for 30 s: slow, but never idle for 3 s.
    let form = form(server.addr);
    let data = noise(30 * 32 * 1024, 77);
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("slow.bin", data.clone())],
    ));
    let mut stream = partial_submit(server.addr, &form, &body, 0);
    for chunk in body.chunks(32 * 1024) {
        std::io::Write::write_all(&mut stream, chunk).unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    let page = read_response(&mut stream);
    assert_eq!(page.status, 200, "{}", page.body);
    let items = server.items();
    assert_eq!(items.len(), 1);
    assert!(server.open_item(&items[0]).0 == data, "decrypts whole");

    // A silent upload is dropped: tests/pages.rs,
    // a_silent_upload_is_dropped_after_the_idle_timeout.
}

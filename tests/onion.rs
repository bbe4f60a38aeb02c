//! Deployment behind Tor: Unix sockets, onion-aware pages, process hardening, and
//! timeouts that let slow uploads live while silent ones die.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const ONION: &str = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion";

/// A server from a config text (after `init`); returns the child and its stdout lines
/// up to both "listening" lines.
fn serve(dir: &Path, config: &str) -> (Child, Vec<String>) {
    std::fs::write(dir.join("agedrop.toml"), config).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--allow-root", "--config", "agedrop.toml"])
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|l: &&String| l.contains("listening on"))
        .count()
        < 2
    {
        match lines.next() {
            Some(Ok(line)) => seen.push(line),
            _ => panic!(
                "server exited: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap()
            ),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, seen)
}

fn unix_config(recipient: &str, source: &Path, journalist: &Path, extra_source: &str) -> String {
    format!(
        "data_dir = \"data\"\n[source]\nlisten = \"unix:{}\"\nargon2_memory_kib = 8192\nargon2_passes = 1\n{extra_source}[journalist]\nlisten = \"unix:{}\"\n[newsroom]\nrecipients = [\"{recipient}\"]\n[limits]\nmin_free_bytes = 0\n",
        source.display(),
        journalist.display()
    )
}

fn get_unix(socket: &Path, path: &str) -> Response {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    exchange(&mut stream, "GET", path, &[("Host", ONION)], b"")
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn unix_sockets_serve_with_private_modes_and_stale_sockets_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let newsroom = Newsroom::new(dir.path());
    init_data_dir(dir.path(), &newsroom.recipient);
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let (source, journalist) = (run.join("source.sock"), run.join("journalist.sock"));
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let group = if root {
        "socket_group = \"nogroup\"\n"
    } else {
        ""
    };
    let config = unix_config(&newsroom.recipient, &source, &journalist, group);
    let (child, lines) = serve(dir.path(), &config);
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&format!("unix:{}", source.display()))),
        "{lines:?}"
    );

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
    let page = get_unix(&source, "/");
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("not using this site's onion address"),
        "reached by its onion name"
    );
    assert_eq!(get_unix(&journalist, "/api/v1/export").status, 401);

    // kill -9 leaves the socket file behind; the next start replaces it.
    stop(child);
    assert!(source.exists(), "a killed server leaves its socket");
    let (child, _) = serve(dir.path(), &config);
    assert_eq!(get_unix(&source, "/").status, 200);
    stop(child);

    // A path that is not a socket, or cannot be made, is a clear error.
    std::fs::remove_file(&source).unwrap();
    std::fs::write(&source, b"a regular file").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--allow-root", "--config", "agedrop.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("source.listen") && stderr.contains("not a socket"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&source).unwrap(),
        b"a regular file",
        "never removed"
    );
    let missing = unix_config(
        &newsroom.recipient,
        &dir.path().join("no/such/dir.sock"),
        &journalist,
        "",
    );
    std::fs::write(dir.path().join("agedrop.toml"), missing).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--allow-root", "--config", "agedrop.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("config key `source.listen`"));
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
    let dir = tempfile::tempdir().unwrap();
    let newsroom = Newsroom::new(dir.path());
    let mut bad = Options::default();
    bad.source
        .push(("onion_address", "\"example.onion\"".into()));
    let config = write_config(dir.path(), &newsroom.recipient, &bad);
    let out = Command::new(BIN)
        .args(["serve", "--allow-root"])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("source.onion_address"));
}

#[test]
fn a_slow_live_upload_completes_and_a_silent_one_is_dropped() {
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

    // Silent for 4 s mid-body: dropped, nothing kept.
    let form = common::form(server.addr);
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("stalled.bin", noise(256 * 1024, 78))],
    ));
    let mut stalled = partial_submit(server.addr, &form, &body, body.len() / 2);
    std::thread::sleep(Duration::from_secs(4));
    server.eventually("the silent upload's temp file is gone", || {
        server.temp_files() == 0
    });
    let _ = std::io::Write::write_all(&mut stalled, &body[body.len() / 2..]);
    let answer = read_response(&mut stalled);
    assert_ne!(answer.status, 200);
    assert_eq!(
        server.items().len(),
        1,
        "nothing of the silent upload was kept"
    );
}

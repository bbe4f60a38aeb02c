//! The journalist commands (`pull`, `push`, `delete`, `open`) against a hostile server
//! and hostile local files, through the real binary: what a server says is never
//! printed raw nor pasted into a request, an onion name never reaches the system
//! resolver, and no file is written through a planted link or removed unless this run
//! made it.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;

/// A well-formed token (the fake servers do not check it).
const TOKEN: &str =
    "agedrop-0123abcd-00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A fake journalist API on 127.0.0.1: answers every request with one canned response
/// and keeps each request's head. [`FakeServer::stop`] is called after the CLI has
/// exited, so any connection it made is already answered or queued: the count is exact.
struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn answering(response: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, requests) = (Arc::clone(&stop), Arc::clone(&requests));
            std::thread::spawn(move || loop {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(10)))
                            .unwrap();
                        let head = read_head(&mut stream);
                        requests.lock().unwrap().push(head);
                        let _ = stream.write_all(&response);
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(err) => panic!("fake server: {err}"),
                }
            })
        };
        FakeServer {
            addr,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops after answering what is queued; returns every request head received.
    fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The request head, up to the blank line (at most 64 KiB).
fn read_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn http_response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A bundle with no items whose manifest says `since` and `next_cursor`.
fn empty_bundle(since: &str, next_cursor: &str) -> Vec<u8> {
    let manifest = serde_json::json!({
        "format": "agedrop-export",
        "version": 1,
        "since": since,
        "next_cursor": next_cursor,
        "sources": [],
        "items": [],
    });
    tar(&[("manifest.json", manifest.to_string().as_bytes())])
}

/// A journalist's desk: a temp dir with a token file.
struct Desk {
    dir: tempfile::TempDir,
    token: PathBuf,
}

impl Desk {
    fn new() -> Self {
        Desk::with_token(format!("{TOKEN}\n").as_bytes())
    }

    fn with_token(token: &[u8]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.token");
        std::fs::write(&path, token).unwrap();
        Desk { dir, token: path }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cursor(&self) -> PathBuf {
        self.path("alice.token.cursor")
    }

    /// `agedrop pull --server URL --token-file T -o OUT` plus `extra`.
    fn pull(&self, url: &str, out: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "pull",
            "--server",
            url,
            "--token-file",
            self.token.to_str().unwrap(),
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        agedrop(&args, self.dir.path())
    }

    /// Every name in the desk directory, sorted.
    fn names(&self) -> Vec<String> {
        dir_names(self.dir.path())
    }
}

#[test]
fn server_error_text_reaches_the_terminal_without_escape_sequences() {
    let desk = Desk::new();
    let json = "{\"error\":\"\\u001b[2J\\u001b]0;owned\\u0007gone\\r\\nagedrop: Deleted.\\u202e\"}";
    let cases = [
        (
            http_response(
                "500 Internal Server Error",
                "application/json",
                json.as_bytes(),
            ),
            "the server answered 500: ?[2J?]0;owned?gone??agedrop: Deleted.?",
        ),
        (
            http_response(
                "403 Forbidden",
                "text/plain",
                "\u{1b}[31mred\u{1b}[0m\u{1b}P+q\u{1b}\\ \u{9b}6n".as_bytes(),
            ),
            "the server answered 403: ?[31mred?[0m?P+q?\\ ?6n",
        ),
    ];
    for (response, expected) in cases {
        let server = FakeServer::answering(response);
        let out = desk.pull(&server.url(), "b.tar", &[]);
        assert_eq!(server.stop().len(), 1);
        assert!(
            !out.stderr
                .iter()
                .any(|&b| b == 0x1b || b == 0x07 || b == b'\r'),
            "no escape sequence reaches the terminal: {:?}",
            stderr(&out)
        );
        assert_refused(&out, expected);
        assert_eq!(desk.names(), ["alice.token"], "no bundle, no partial file");
    }
}

#[test]
fn a_manifest_cursor_that_is_not_a_number_is_refused_and_never_saved() {
    let desk = Desk::new();
    for (since, next) in [
        ("0", "1\r\nGET /api/v1/export?since=0 HTTP/1.1\r\nHost: x"),
        ("0", "-1"),
        ("0", "1 "),
        ("x", "5"),
    ] {
        let server = FakeServer::answering(http_response(
            "200 OK",
            "application/x-tar",
            &empty_bundle(since, next),
        ));
        let out = desk.pull(&server.url(), "b.tar", &[]);
        let requests = server.stop();
        assert_eq!(requests.len(), 1);
        assert!(
            requests[0].starts_with("GET /api/v1/export?since=0 HTTP/1.1\r\n"),
            "{:?}",
            requests[0]
        );
        assert_refused(
            &out,
            "bundle refused: the manifest's since or next_cursor is not a cursor (a non-negative integer)",
        );
        assert_eq!(
            desk.names(),
            ["alice.token"],
            "no cursor file, no bundle, no partial file"
        );
    }
}

#[test]
fn a_cursor_file_that_is_not_a_number_is_refused_before_connecting() {
    let desk = Desk::new();
    let bundle = http_response("200 OK", "application/x-tar", &empty_bundle("0", "7"));
    for planted in [
        "1\r\nGET /x HTTP/1.1\r\nHost: evil\r\n\r\n",
        "1 2",
        "-3",
        "",
    ] {
        std::fs::write(desk.cursor(), planted).unwrap();
        let server = FakeServer::answering(bundle.clone());
        let out = desk.pull(&server.url(), "b.tar", &[]);
        assert!(server.stop().is_empty(), "nothing was sent for {planted:?}");
        assert_refused(
            &out,
            &format!(
                "{} does not hold a cursor (a non-negative integer); remove it, or pull with --all",
                desk.cursor().display()
            ),
        );
        assert_eq!(std::fs::read_to_string(desk.cursor()).unwrap(), planted);
    }
    // --all does not read it, and replaces it.
    let server = FakeServer::answering(bundle);
    ok(&desk.pull(&server.url(), "b.tar", &["--all"]));
    let requests = server.stop();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].starts_with("GET /api/v1/export?since=0 HTTP/1.1\r\n"));
    assert_eq!(std::fs::read_to_string(desk.cursor()).unwrap(), "7\n");
    // And the next pull sends the saved number.
    let server = FakeServer::answering(http_response(
        "200 OK",
        "application/x-tar",
        &empty_bundle("7", "7"),
    ));
    ok(&desk.pull(&server.url(), "c.tar", &[]));
    let requests = server.stop();
    assert!(requests[0].starts_with("GET /api/v1/export?since=7 HTTP/1.1\r\n"));
}

#[test]
fn a_token_file_with_line_breaks_or_control_characters_is_refused_before_connecting() {
    for token in [
        format!("{TOKEN}\r\nX-Smuggled: 1\r\n"),
        format!("{TOKEN}\nGET /api/v1/export HTTP/1.1\n"),
        format!("{TOKEN}\u{1b}[2J"),
        format!("agedrop-0123abcd {TOKEN}"),
        "\n\n".to_owned(),
    ] {
        let desk = Desk::with_token(token.as_bytes());
        let server = FakeServer::answering(http_response("204 No Content", "text/plain", b""));
        for command in [
            vec!["pull", "-o", "b.tar"],
            vec!["delete", "--item", "0123456789abcdef0123456789abcdef"],
        ] {
            let mut args = command.clone();
            let url = server.url();
            args.extend(["--server", &url, "--token-file", "alice.token"]);
            let out = agedrop(&args, desk.dir.path());
            assert_refused(
                &out,
                "alice.token does not hold a token: it should hold only the token from \
                 `agedrop journalist add`, with no spaces, line breaks or control characters \
                 inside it",
            );
        }
        assert!(server.stop().is_empty(), "nothing was sent for {token:?}");
    }
    // Whitespace around the token is fine, and the token goes out as it is.
    let desk = Desk::with_token(format!("  {TOKEN}\r\n\n").as_bytes());
    let server = FakeServer::answering(http_response(
        "200 OK",
        "application/x-tar",
        &empty_bundle("0", "0"),
    ));
    ok(&desk.pull(&server.url(), "b.tar", &[]));
    let requests = server.stop();
    assert!(
        requests[0]
            .to_ascii_lowercase()
            .contains(&format!("\r\nauthorization: bearer {TOKEN}\r\n")),
        "{:?}",
        requests[0]
    );
}

#[test]
fn tls_options_with_plain_http_are_refused_before_connecting() {
    let desk = Desk::new();
    std::fs::write(desk.path("ca.pem"), "unused").unwrap();
    let server = FakeServer::answering(http_response(
        "200 OK",
        "application/x-tar",
        &empty_bundle("0", "1"),
    ));
    for tls in [
        vec!["--ca-cert", "ca.pem"],
        vec!["--client-cert", "ca.pem", "--client-key", "ca.pem"],
    ] {
        let out = desk.pull(&server.url(), "b.tar", &tls);
        assert_refused(
            &out,
            "--ca-cert, --client-cert and --client-key need an https:// server; \
             refusing to send the token over plain http://",
        );
    }
    assert!(
        server.stop().is_empty(),
        "the token never went out in clear"
    );
    assert_eq!(desk.names(), ["alice.token", "ca.pem"]);
}

/// Plain `http://` is for onion services (Tor encrypts the path) and this machine
/// only: to any other server the token would cross the network in clear.
#[test]
fn plain_http_to_a_server_elsewhere_is_refused_before_connecting() {
    let desk = Desk::new();
    for server in [
        "http://drop.example.org",
        "http://192.0.2.7:8081",
        "http://[2001:db8::1]:8081",
    ] {
        let out = desk.pull(server, "b.tar", &[]);
        assert_refused(
            &out,
            "refusing to send the token over plain http:// to a server that is neither \
             an .onion address nor on this machine; use https:// (with --ca-cert) or the \
             journalist API's onion address",
        );
    }
    assert_eq!(desk.names(), ["alice.token"]);
}

/// A DNS server stand-in: `agedrop` runs in its own mount namespace whose
/// /etc/resolv.conf names 127.84.0.1, where this socket listens, so a name lookup is
/// seen here and never reaches a real resolver. Needs root (as the tmpfs tests do).
struct ResolverProbe {
    socket: UdpSocket,
    resolv_conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl ResolverProbe {
    fn new() -> Self {
        require_tool("unshare");
        let socket = UdpSocket::bind("127.84.0.1:53").expect(
            "this test listens on 127.84.0.1:53 as the resolver of a mount namespace: needs root",
        );
        socket.set_nonblocking(true).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let resolv_conf = dir.path().join("resolv.conf");
        std::fs::write(
            &resolv_conf,
            "nameserver 127.84.0.1\noptions timeout:1 attempts:1\n",
        )
        .unwrap();
        ResolverProbe {
            socket,
            resolv_conf,
            _dir: dir,
        }
    }

    /// Runs `agedrop ARGS` with this resolver.
    fn agedrop(&self, args: &[&str], dir: &Path) -> Output {
        let out = Command::new("unshare")
            .args(["--mount", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
            .arg(&self.resolv_conf)
            .arg(BIN)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            !stderr(&out).contains("unshare:") && !stderr(&out).contains("mount:"),
            "the namespace could not be set up (needs root): {}",
            stderr(&out)
        );
        out
    }

    /// The queries that arrived since the last call.
    fn queries(&self) -> Vec<Vec<u8>> {
        let mut queries = Vec::new();
        let mut buf = [0u8; 1500];
        while let Ok(n) = self.socket.recv(&mut buf) {
            queries.push(buf[..n].to_vec());
        }
        queries
    }
}

#[test]
fn onion_names_need_the_proxy_however_they_are_spelt_and_are_never_resolved() {
    let probe = ResolverProbe::new();
    let desk = Desk::new();
    // The probe sees a lookup: a plain name without --proxy is resolved locally.
    test_ca(desk.dir.path(), "probe-ca");
    let out = probe.agedrop(
        &[
            "pull",
            "--server",
            "https://leak-probe.example:8081",
            "--ca-cert",
            "probe-ca.pem",
            "--token-file",
            "alice.token",
            "-o",
            "b.tar",
        ],
        desk.dir.path(),
    );
    assert_refused(
        &out,
        "the request failed: io: failed to lookup address information: Temporary failure in name resolution",
    );
    let seen = probe.queries();
    assert!(
        seen.iter().any(|q| contains(q, b"leak-probe")),
        "the probe sees lookups: {seen:?}"
    );

    for server in [
        "http://abcdefghijklmnop.onion",
        "http://ABCDEFGHIJKLMNOP.ONION",
        "http://abcdefghijklmnop.onion.",
        "http://AbCdEfGhIjKlMnOp.OnIoN.:8081/drop",
    ] {
        for command in [
            vec!["pull", "-o", "b.tar"],
            vec!["delete", "--source", "0123456789abcdef0123456789abcdef"],
        ] {
            let mut args = command.clone();
            args.extend(["--server", server, "--token-file", "alice.token"]);
            let out = probe.agedrop(&args, desk.dir.path());
            assert_refused(
                &out,
                "an .onion server needs --proxy socks5h://127.0.0.1:9050 (Tor's SOCKS port)",
            );
            assert_eq!(
                probe.queries(),
                Vec::<Vec<u8>>::new(),
                "{server}: no lookup"
            );
        }
    }
    assert_eq!(desk.names(), ["alice.token", "probe-ca.pem"]);
}

#[test]
fn pull_never_removes_or_writes_through_a_partial_file_it_did_not_make() {
    let desk = Desk::new();
    let bundle = http_response("200 OK", "application/x-tar", &empty_bundle("0", "3"));
    std::fs::write(desk.path("b.partial"), "someone else's").unwrap();
    std::fs::write(desk.path("victim"), "victim").unwrap();
    std::os::unix::fs::symlink(desk.path("victim"), desk.path("c.partial")).unwrap();
    for (out, partial) in [("b.tar", "b.partial"), ("c.tar", "c.partial")] {
        let server = FakeServer::answering(bundle.clone());
        let result = desk.pull(&server.url(), out, &[]);
        assert!(
            server.stop().is_empty(),
            "refused before anything is fetched"
        );
        assert_refused(
            &result,
            &format!(
                "{partial} exists already; not overwriting it (remove it if an interrupted pull left it)"
            ),
        );
    }
    assert_eq!(
        std::fs::read_to_string(desk.path("b.partial")).unwrap(),
        "someone else's"
    );
    assert_eq!(
        std::fs::read_to_string(desk.path("victim")).unwrap(),
        "victim"
    );
    assert!(std::fs::symlink_metadata(desk.path("c.partial"))
        .unwrap()
        .file_type()
        .is_symlink());

    // A failed pull removes the partial file it made, and only that.
    let server = FakeServer::answering(http_response(
        "503 Service Unavailable",
        "text/plain",
        b"busy",
    ));
    assert_refused(
        &desk.pull(&server.url(), "d.tar", &[]),
        "the server answered 503: busy",
    );
    server.stop();
    assert_eq!(
        desk.names(),
        ["alice.token", "b.partial", "c.partial", "victim"]
    );
}

#[test]
fn pull_writes_its_cursor_file_privately_and_never_through_a_link() {
    let desk = Desk::new();
    let bundle = http_response("200 OK", "application/x-tar", &empty_bundle("0", "7"));
    std::fs::write(desk.path("victim"), "victim").unwrap();
    // The temp name older versions used, planted as a link.
    std::os::unix::fs::symlink(desk.path("victim"), desk.path("alice.token.cursor.tmp")).unwrap();
    let server = FakeServer::answering(bundle.clone());
    ok(&desk.pull(&server.url(), "b.tar", &[]));
    server.stop();
    assert_eq!(
        std::fs::read_to_string(desk.path("victim")).unwrap(),
        "victim"
    );
    let meta = std::fs::symlink_metadata(desk.cursor()).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "private, like the token"
    );
    assert_eq!(std::fs::read_to_string(desk.cursor()).unwrap(), "7\n");
    assert_eq!(
        desk.names(),
        [
            "alice.token",
            "alice.token.cursor",
            "alice.token.cursor.tmp",
            "b.tar",
            "victim"
        ],
        "no temp file left"
    );

    // A link at the cursor file itself: not read through, and replaced (not followed)
    // when --all writes a new cursor.
    std::fs::write(desk.path("victim"), "5").unwrap();
    std::fs::remove_file(desk.cursor()).unwrap();
    std::os::unix::fs::symlink(desk.path("victim"), desk.cursor()).unwrap();
    let server = FakeServer::answering(bundle);
    assert_refused(
        &desk.pull(&server.url(), "c.tar", &[]),
        &format!(
            "{} is a symbolic link; pull does not follow links for its cursor file",
            desk.cursor().display()
        ),
    );
    ok(&desk.pull(&server.url(), "d.tar", &["--all"]));
    assert_eq!(server.stop().len(), 1);
    assert_eq!(std::fs::read_to_string(desk.path("victim")).unwrap(), "5");
    assert!(std::fs::symlink_metadata(desk.cursor())
        .unwrap()
        .file_type()
        .is_file());
    assert_eq!(std::fs::read_to_string(desk.cursor()).unwrap(), "7\n");
}

/// A server with one message from a source, and a desk that pulled it into `b.tar`.
struct Pulled {
    server: Server,
    desk: Desk,
    /// The source's label: the name of its directory under `open`'s output.
    label: String,
}

impl Pulled {
    fn new() -> Self {
        let server = Server::start();
        let mut source = Browser::new(server.addr);
        source.get("/submit");
        assert_eq!(
            source
                .submit(vec![Part::text("message", b"for the desk")])
                .status,
            200
        );
        let label = server.source_rows()[0].1.clone();
        let added = agedrop(
            &[
                "journalist",
                "add",
                "ida",
                "--config",
                server.config.to_str().unwrap(),
            ],
            server.dir.path(),
        );
        ok(&added);
        let desk = Desk::with_token(&added.stdout);
        ok(&desk.pull(&format!("http://{}", server.journalist), "b.tar", &[]));
        Pulled {
            server,
            desk,
            label,
        }
    }

    /// `agedrop open b.tar -i NEWSROOM -o OUT`.
    fn open(&self, out: &Path) -> Output {
        agedrop(
            &[
                "open",
                "b.tar",
                "-i",
                self.server.newsroom.identity_file.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            self.desk.dir.path(),
        )
    }
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn open_writes_only_into_a_directory_of_ones_own_that_others_cannot_write() {
    let pulled = Pulled::new();
    let desk = &pulled.desk;
    for mode in [0o777, 0o770, 0o702, 0o1777] {
        let dir = desk.path(&format!("shared-{mode:o}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_refused(
            &pulled.open(&dir),
            &format!(
                "{} can be written by other users (mode {mode:04o}); open writes only into a \
                 directory only you can write to",
                dir.display()
            ),
        );
        assert!(is_empty(&dir));
    }

    // A directory of another user. As root the test makes one; otherwise / is one.
    let me = std::fs::metadata(desk.dir.path()).unwrap().uid();
    let theirs = if me == 0 {
        let dir = desk.path("theirs");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        dir
    } else {
        PathBuf::from("/")
    };
    assert_refused(
        &pulled.open(&theirs),
        &format!(
            "{} belongs to another user; open writes only into a directory of your own",
            theirs.display()
        ),
    );
    if me == 0 {
        assert!(is_empty(&theirs));
    }

    // A private directory of one's own is fine, new (made 0700) or existing.
    let fresh = desk.path("fresh");
    ok(&pulled.open(&fresh));
    assert_eq!(
        std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
        0o700
    );
    ok(&pulled.open(&fresh));
    let dir = fresh.join(&pulled.label);
    assert_eq!(
        std::fs::read(dir.join("001-message.txt")).unwrap(),
        b"for the desk"
    );
    assert_eq!(
        std::fs::read(dir.join("001-message (2).txt")).unwrap(),
        b"for the desk"
    );
}

#[test]
fn open_never_follows_a_link_planted_at_a_source_directory() {
    let pulled = Pulled::new();
    let out = pulled.desk.path("out");
    let elsewhere = pulled.desk.path("elsewhere");
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join(&pulled.label)).unwrap();
    assert_refused(
        &pulled.open(&out),
        &format!(
            "{} is a symbolic link; open does not follow links in its output",
            out.join(&pulled.label).display()
        ),
    );
    assert!(is_empty(&elsewhere), "nothing lands where the link leads");
}

#[test]
fn open_never_follows_a_link_planted_at_a_file_name() {
    let pulled = Pulled::new();
    let desk = &pulled.desk;
    let out = desk.path("out");
    let dir = out.join(&pulled.label);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(desk.path("victim-index"), "index victim").unwrap();
    std::fs::write(desk.path("victim-message"), "message victim").unwrap();
    std::os::unix::fs::symlink(desk.path("victim-index"), dir.join("index.txt")).unwrap();
    std::os::unix::fs::symlink(desk.path("victim-message"), dir.join("001-message.txt")).unwrap();
    // The item takes the next free name; the index is refused.
    assert_refused(
        &pulled.open(&out),
        &format!(
            "{} is a symbolic link; open does not follow links in its output",
            dir.join("index.txt").display()
        ),
    );
    assert_eq!(
        std::fs::read_to_string(desk.path("victim-index")).unwrap(),
        "index victim"
    );
    assert_eq!(
        std::fs::read_to_string(desk.path("victim-message")).unwrap(),
        "message victim"
    );
    assert_eq!(
        std::fs::read(dir.join("001-message (2).txt")).unwrap(),
        b"for the desk"
    );
}

/// A one-connection SOCKS5 proxy: records the CONNECT request's address type, host
/// and port, then answers HTTP on the tunnel with `response`.
fn fake_socks5(response: Vec<u8>) -> (SocketAddr, JoinHandle<(u8, String, u16, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut greeting = [0u8; 2];
        stream.read_exact(&mut greeting).unwrap();
        assert_eq!(greeting[0], 5, "SOCKS version 5");
        let mut methods = vec![0u8; usize::from(greeting[1])];
        stream.read_exact(&mut methods).unwrap();
        assert!(methods.contains(&0), "offers no authentication");
        stream.write_all(&[5, 0]).unwrap();
        let mut request = [0u8; 4];
        stream.read_exact(&mut request).unwrap();
        assert_eq!(&request[..3], &[5, 1, 0], "CONNECT");
        let host = match request[3] {
            3 => {
                let mut len = [0u8; 1];
                stream.read_exact(&mut len).unwrap();
                let mut name = vec![0u8; usize::from(len[0])];
                stream.read_exact(&mut name).unwrap();
                String::from_utf8(name).unwrap()
            }
            1 => {
                let mut ip = [0u8; 4];
                stream.read_exact(&mut ip).unwrap();
                std::net::Ipv4Addr::from(ip).to_string()
            }
            other => panic!("address type {other}"),
        };
        let mut port = [0u8; 2];
        stream.read_exact(&mut port).unwrap();
        stream.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
        let head = read_head(&mut stream);
        stream.write_all(&response).unwrap();
        (request[3], host, u16::from_be_bytes(port), head)
    });
    (addr, thread)
}

#[test]
fn the_proxy_resolves_the_onion_name_and_the_environment_picks_no_proxy() {
    let desk = Desk::new();
    let bundle = http_response("200 OK", "application/x-tar", &empty_bundle("0", "4"));
    let (proxy, socks) = fake_socks5(bundle.clone());
    let out = desk.pull(
        "http://abcdefghijklmnop.onion:8081/drop",
        "b.tar",
        &["--proxy", &format!("socks5h://{proxy}")],
    );
    ok(&out);
    let (address_type, host, port, head) = socks.join().unwrap();
    assert_eq!(
        (address_type, host.as_str(), port),
        (3, "abcdefghijklmnop.onion", 8081),
        "the name goes to the proxy as a name (socks5h), never resolved here"
    );
    assert!(
        head.starts_with("GET /drop/api/v1/export?since=0 HTTP/1.1\r\n"),
        "{head:?}"
    );
    assert_eq!(std::fs::read_to_string(desk.cursor()).unwrap(), "4\n");

    // Proxy variables in the environment are not used: the request goes straight to
    // the server, and the would-be proxy sees nothing.
    let trap = FakeServer::answering(http_response("502 Bad Gateway", "text/plain", b""));
    let trap_url = format!("socks5h://{}", trap.addr);
    let server = FakeServer::answering(bundle);
    let server_url = server.url();
    let out = agedrop_command(
        &[
            "pull",
            "--server",
            &server_url,
            "--token-file",
            desk.token.to_str().unwrap(),
            "-o",
            "c.tar",
            "--all",
        ],
        desk.dir.path(),
    )
    .env("ALL_PROXY", &trap_url)
    .env("all_proxy", &trap_url)
    .env("HTTPS_PROXY", &trap_url)
    .env("HTTP_PROXY", trap.url())
    .env("http_proxy", trap.url())
    .output()
    .unwrap();
    ok(&out);
    assert_eq!(server.stop().len(), 1);
    assert!(trap.stop().is_empty(), "no proxy from the environment");
}

/// Peak resident memory of a live process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn pull_streams_a_large_bundle_to_disk_without_holding_it_in_memory() {
    const SIZE: usize = 160 * 1024 * 1024;
    const CHUNK: usize = 1024 * 1024;
    let desk = Desk::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (almost, measured) = (
        std::sync::mpsc::channel::<()>(),
        std::sync::mpsc::channel::<()>(),
    );
    let (almost_tx, almost_rx) = almost;
    let (measured_tx, measured_rx) = measured;
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_head(&mut stream);
        stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: {SIZE}\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
        let zeros = vec![0u8; CHUNK];
        for _ in 0..SIZE / CHUNK - 1 {
            stream.write_all(&zeros).unwrap();
        }
        // All but the last MiB is sent: the client has had it all to hold.
        almost_tx.send(()).unwrap();
        measured_rx.recv().unwrap();
        stream.write_all(&zeros).unwrap();
    });
    let mut child = KillOnDrop(
        agedrop_command(
            &[
                "pull",
                "--server",
                &url,
                "--token-file",
                desk.token.to_str().unwrap(),
                "-o",
                "big.tar",
            ],
            desk.dir.path(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    almost_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the body is sent");
    // The last writes may still sit in socket buffers: wait (bounded) until the partial
    // file holds nearly all that was sent, then look at the peak.
    let partial = desk.path("big.partial");
    eventually(
        "the bundle reaches the disk as it arrives",
        Duration::from_secs(60),
        || std::fs::metadata(&partial).map_or(0, |m| m.len()) >= (SIZE - 8 * CHUNK) as u64,
    );
    let peak = peak_rss_kib(child.0.id());
    measured_tx.send(()).unwrap();
    server.join().unwrap();
    let status = child.0.wait().unwrap();
    let mut error = Vec::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut error)
        .unwrap();
    let out = Output {
        status,
        stdout: Vec::new(),
        stderr: error,
    };
    assert!(
        peak < 48 * 1024,
        "peak memory {peak} KiB for a {} MiB bundle",
        SIZE / CHUNK
    );
    // Zeros are no bundle: refused whole, and the partial file goes.
    assert_refused(&out, "bundle refused: the bundle is empty");
    assert_eq!(desk.names(), ["alice.token"]);
}

#[test]
fn https_trusts_only_the_ca_given_and_says_clearly_when_it_has_none() {
    let desk = Desk::new();
    let server_ca = test_ca(desk.dir.path(), "server-ca");
    test_ca(desk.dir.path(), "other-ca");
    let (cert, key) = test_cert(desk.dir.path(), "server", &["127.0.0.1"], &server_ca);
    std::fs::write(desk.path("empty.pem"), "").unwrap();
    let server = Server::with(Options::default().journalist_tls(&cert, &key, None));
    std::fs::write(&desk.token, server.add_journalist("tls")).unwrap();
    let journalist = server.journalist;
    let url = format!("https://{journalist}");

    let other = desk.pull(&url, "other.tar", &["--ca-cert", "other-ca.pem", "--all"]);
    assert_refused(
        &other,
        "the request failed: io: invalid peer certificate: BadSignature",
    );
    assert!(!desk.path("other.tar").exists());
    assert_refused(
        &desk.pull(&url, "empty.tar", &["--ca-cert", "empty.pem"]),
        "TLS: empty.pem: no certificate in it",
    );
    ok(&desk.pull(&url, "good.tar", &["--ca-cert", "server-ca.pem"]));
    assert!(desk.path("good.tar").is_file());
}

#[test]
fn a_bundle_cut_short_in_transit_is_refused_and_nothing_is_kept() {
    let desk = Desk::new();
    // A whole, valid bundle: only the transfer framing says more was to come.
    let bundle = empty_bundle("0", "9");
    let mut short_length = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bundle.len() + 512
    )
    .into_bytes();
    short_length.extend_from_slice(&bundle);
    let mut unfinished_chunks = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    unfinished_chunks.extend_from_slice(format!("{:x}\r\n", bundle.len()).as_bytes());
    unfinished_chunks.extend_from_slice(&bundle);
    unfinished_chunks.extend_from_slice(b"\r\n");
    for response in [short_length, unfinished_chunks] {
        let server = FakeServer::answering(response);
        let out = desk.pull(&server.url(), "b.tar", &[]);
        assert_eq!(server.stop().len(), 1);
        assert_refused(&out, "the response was cut short");
        assert_eq!(desk.names(), ["alice.token"], "no bundle, no cursor");
    }
}

/// ureq's trace output would print the whole request, the bearer token included: it
/// stays off whatever `RUST_LOG` asks for.
#[test]
fn the_token_never_reaches_the_log_even_at_trace_level() {
    let desk = Desk::new();
    let server = FakeServer::answering(http_response(
        "200 OK",
        "application/x-tar",
        &empty_bundle("0", "1"),
    ));
    let out = agedrop_command(
        &[
            "pull",
            "--server",
            &server.url(),
            "--token-file",
            "alice.token",
            "-o",
            "b.tar",
        ],
        desk.dir.path(),
    )
    .env("RUST_LOG", "trace")
    .output()
    .unwrap();
    let requests = server.stop();
    assert!(
        requests
            .iter()
            .any(|r| contains(r.as_bytes(), TOKEN.as_bytes())),
        "the request carried the token: {requests:?}"
    );
    let secret = TOKEN.rsplit('-').next().unwrap();
    assert!(
        !contains(&out.stderr, secret.as_bytes()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A hex dump shows 16 bytes a row, wherever they fall: no 8 digits of it in a row.
    for piece in secret.as_bytes().windows(8) {
        assert!(
            !contains(&out.stderr, piece),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `push` sends only a reply bundle: a mistyped path (a decrypted document, the token
/// file) never leaves the machine.
#[test]
fn push_sends_nothing_but_a_reply_bundle() {
    let desk = Desk::new();
    std::fs::write(desk.path("document.pdf"), b"%PDF-1.7 a source's document").unwrap();
    let server = FakeServer::answering(http_response("201 Created", "application/json", b"{}"));
    for file in ["document.pdf", "alice.token"] {
        let out = agedrop(
            &[
                "push",
                "--server",
                &server.url(),
                "--token-file",
                "alice.token",
                file,
            ],
            desk.dir.path(),
        );
        assert_refused(
            &out,
            &format!("{file} is not a reply bundle made by `agedrop reply`; nothing was sent"),
        );
    }
    assert!(server.stop().is_empty(), "nothing reached the server");
}

/// `pull` keeps a bundle only if it holds exactly what its manifest lists, each entry
/// once and of the listed size, and ends with the tar end marker: a bundle cut at an
/// entry's boundary, or with an entry renamed, resized, doubled or missing, is refused
/// with its reason, and neither it nor a cursor is kept.
#[test]
fn pull_refuses_a_bundle_whose_entries_are_not_exactly_its_manifests() {
    let (source, item, reply) = ("a".repeat(32), "b".repeat(32), "c".repeat(32));
    let manifest = serde_json::json!({
        "format": "agedrop-export",
        "version": 2,
        "since": "0",
        "next_cursor": "3",
        "sources": [{ "id": source, "label": "amber-falcon", "recipient": "age1x" }],
        "items": [{
            "id": item, "source_id": source, "kind": "message", "order": 1,
            "day": "2026-11-28", "size": 600, "meta_size": 100,
            "blob": format!("items/{item}.age"), "meta": format!("items/{item}.meta.age"),
        }],
        "replies": [{
            "id": reply, "source_id": source, "order": 2, "day": "2026-11-29",
            "size": 50, "blob": format!("replies/{reply}.age"),
        }],
        "deleted_replies": [{ "source_id": source, "order": 3 }],
    })
    .to_string();
    let blob = format!("items/{item}.age");
    let meta = format!("items/{item}.meta.age");
    let reply_blob = format!("replies/{reply}.age");
    let bundle = |entries: &[(&str, &[u8])]| {
        let mut all: Vec<(&str, &[u8])> = vec![("manifest.json", manifest.as_bytes())];
        all.extend_from_slice(entries);
        tar(&all)
    };
    let whole = [
        (blob.as_str(), &[1u8; 600][..]),
        (meta.as_str(), &[2u8; 100][..]),
        (reply_blob.as_str(), &[3u8; 50][..]),
    ];
    let renamed = format!("replies/{}.age", "d".repeat(32));
    let good = bundle(&whole);
    let end = good.len() - agedrop::bundle::TAR_END.len();
    let after_first = bundle(&whole[..1]);
    let after_first = after_first[..after_first.len() - agedrop::bundle::TAR_END.len()].to_vec();
    let no_end = "bundle refused: the archive has no end marker: it was cut short";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..end].to_vec(), no_end),
        (good[..end + 512].to_vec(), no_end),
        (after_first, no_end),
        (
            bundle(&[whole[0], whole[1], (&renamed, &[3u8; 50])]),
            "bundle refused: the bundle holds an entry its manifest does not list",
        ),
        (
            bundle(&[whole[0], whole[1], (&reply_blob, &[3u8; 51])]),
            "bundle refused: an entry's size differs from the manifest's",
        ),
        (
            bundle(&[whole[0], whole[1], whole[2], whole[1]]),
            "bundle refused: an entry appears twice",
        ),
        (
            bundle(&whole[..2]),
            "bundle refused: an entry the manifest lists is missing",
        ),
        (
            [good.clone(), vec![0u8; 512]].concat(),
            "bundle refused: data follows the archive's end marker",
        ),
    ];
    let desk = Desk::new();
    for (body, refusal) in cases {
        let server = FakeServer::answering(http_response("200 OK", "application/x-tar", &body));
        let out = desk.pull(&server.url(), "b.tar", &[]);
        assert_eq!(server.stop().len(), 1);
        assert_refused(&out, refusal);
        assert_eq!(
            desk.names(),
            ["alice.token"],
            "no bundle, no partial file, no cursor"
        );
    }
    // The whole bundle is kept, with its cursor.
    let server = FakeServer::answering(http_response("200 OK", "application/x-tar", &good));
    ok(&desk.pull(&server.url(), "b.tar", &[]));
    server.stop();
    assert_eq!(std::fs::read(desk.path("b.tar")).unwrap(), good);
    assert_eq!(std::fs::read_to_string(desk.cursor()).unwrap().trim(), "3");
}

#[test]
fn commands_name_the_proxy_when_tor_is_not_running() {
    let desk = Desk::new();
    // A port nothing listens on: Tor is not running.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = format!("socks5h://{closed}");
    let out = desk.pull(
        "http://abcdefghijklmnop.onion:8081",
        "b.tar",
        &["--proxy", &proxy],
    );
    assert_refusal_starts(
        &out,
        &format!("cannot reach the server through the proxy {proxy} (is Tor running?): "),
    );
    assert!(!desk.dir.path().join("b.tar").exists());
}

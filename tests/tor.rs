//! The whole source flow through a real v3 onion service on a private Tor network
//! (tests/tor/tornet: authorities, relays, an onion service and a client, all on
//! 127.0.0.1, never the public network): landing → first submission with a file →
//! code → login → inbox → follow-up, over TCP and over the Unix socket.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::*;

/// The Tor network; `down` stops every tor it started, by PID, even if the test fails.
struct TorNet {
    dir: PathBuf,
    script: PathBuf,
}

impl Drop for TorNet {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("down")
            .arg(&self.dir)
            .status();
    }
}

fn source_flow(socks: SocketAddr, onion: &str, port: u16, label: &str) -> (f64, usize) {
    let mut source = Browser::through_socks(socks, onion, port);
    let landing = source.get("/");
    assert_eq!(landing.status, 200, "{label}: landing");
    assert!(
        !landing.body.contains("not using this site's onion address"),
        "{label}: reached as an onion"
    );
    source.get("/submit");
    let file = noise(2 * 1024 * 1024, 5);
    let started = Instant::now();
    let page = source.submit(vec![
        Part::text("message", b"through tor"),
        Part::file("doc.pdf", file.clone()),
    ]);
    let upload_secs = started.elapsed().as_secs_f64();
    assert_eq!(page.status, 200, "{label}: first submission");
    let code = code_from(&page);

    let mut back = Browser::through_socks(socks, onion, port);
    let login = back.login(&code);
    assert_eq!(login.status, 303, "{label}: login");
    let inbox = back.get("/inbox");
    assert_eq!(inbox.status, 200, "{label}: inbox");
    let follow_up = back.submit(vec![Part::text("message", b"follow-up through tor")]);
    assert_eq!(follow_up.status, 303, "{label}: follow-up");
    (upload_secs, file.len())
}

#[test]
fn the_source_flow_works_through_a_real_onion_service() {
    require_tool("tor");
    require_tool("tor-gencert");
    require_tool("curl");
    let work = tempfile::tempdir().unwrap();
    let newsroom = Newsroom::new(work.path());

    // One agedrop on TCP, one on a Unix socket, both behind the same onion.
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, journalist_port) = (free_port(), free_port());
    let socket = work.path().join("source.sock");
    let tcp = Server::with(Options {
        identity: Some(newsroom.identity_file.clone()),
        source_listen: format!("127.0.0.1:{port}"),
        journalist_listen: format!("127.0.0.1:{journalist_port}"),
        ..Options::default()
    });
    let _unix = Server::with(Options {
        identity: Some(newsroom.identity_file.clone()),
        source_listen: format!("unix:{}", socket.display()),
        ..Options::default()
    });

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tor/tornet");
    let net_dir = work.path().join("tornet");
    let net = TorNet {
        dir: net_dir.clone(),
        script: script.clone(),
    };
    let started = Instant::now();
    let up = Command::new(&script)
        .arg("up")
        .arg(&net_dir)
        .arg(format!("80=127.0.0.1:{port}"))
        .arg(format!("81=unix:{}", socket.display()))
        .arg(format!("82=127.0.0.1:{journalist_port}"))
        .output()
        .unwrap();
    let onion_secs = started.elapsed().as_secs_f64();
    assert!(
        up.status.success(),
        "tornet up failed:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let env = String::from_utf8(up.stdout).unwrap();
    let value = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("tornet printed no {key}"))
            .to_owned()
    };
    let onion = value("ONION");
    let socks: SocketAddr = format!("127.0.0.1:{}", value("SOCKS_PORT"))
        .parse()
        .unwrap();

    let (tcp_secs, bytes) = source_flow(socks, &onion, 80, "tcp");
    let (unix_secs, _) = source_flow(socks, &onion, 81, "unix socket");
    eprintln!(
        "tor: onion reachable after {onion_secs:.1} s; {} KiB upload through the onion: {tcp_secs:.2} s over TCP ({:.0} KiB/s), {unix_secs:.2} s over the Unix socket ({:.0} KiB/s)",
        bytes / 1024,
        bytes as f64 / 1024.0 / tcp_secs,
        bytes as f64 / 1024.0 / unix_secs
    );

    // The journalist side through Tor too: pull over the SOCKS port (socks5h, so the
    // onion name is resolved by Tor), then open offline.
    let token = tcp.add_journalist_file("tor");
    let bundle = work.path().join("via-tor.tar");
    let onion_url = format!("http://{onion}:82");
    let proxy = format!("socks5h://{socks}");
    ok(&agedrop(
        &[
            "pull",
            "--server",
            &onion_url,
            "--proxy",
            &proxy,
            "--token-file",
            token.to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
        ],
        work.path(),
    ));
    let out = work.path().join("via-tor");
    ok(&agedrop(
        &[
            "open",
            bundle.to_str().unwrap(),
            "-i",
            newsroom.identity_file.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        work.path(),
    ));
    let files = files_under(&out);
    assert!(files
        .iter()
        .any(|f| std::fs::read(f).unwrap() == noise(2 * 1024 * 1024, 5)));
    assert!(files
        .iter()
        .any(|f| std::fs::read(f).unwrap() == b"follow-up through tor"));

    drop(net);
    // Every tor the harness started is gone.
    let pids = std::fs::read_to_string(net_dir.join("pids")).unwrap_or_default();
    for pid in pids.lines() {
        let alive = Path::new(&format!("/proc/{pid}/cmdline")).exists()
            && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains(net_dir.to_str().unwrap()));
        assert!(!alive, "tor {pid} still runs");
    }
}

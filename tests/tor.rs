//! The whole source flow through a real v3 onion service on a private Tor network
//! (tests/tor/tornet: authorities, relays, an onion service and a client, all on
//! 127.0.0.1, never the public network): landing → first submission with a file →
//! code → login → inbox → follow-up, over TCP and over the Unix socket.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

fn serve(dir: &Path, config: &str) -> Child {
    std::fs::write(dir.join("agedrop.toml"), config).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--allow-root", "--config", "agedrop.toml"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut listening = 0;
    while listening < 2 {
        let line = lines.next().expect("server output").unwrap();
        listening += usize::from(line.contains("listening on"));
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    let tcp_dir = work.path().join("tcp");
    let unix_dir = work.path().join("unix");
    for dir in [&tcp_dir, &unix_dir] {
        std::fs::create_dir(dir).unwrap();
        init_data_dir(dir, &newsroom.recipient);
    }
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, journalist_port) = (free_port(), free_port());
    let config = |source: String, journalist: String| {
        format!(
            "data_dir = \"data\"\n[source]\nlisten = \"{source}\"\nargon2_memory_kib = 8192\nargon2_passes = 1\n[journalist]\nlisten = \"{journalist}\"\n[newsroom]\nrecipients = [\"{}\"]\n[limits]\nmin_free_bytes = 0\n",
            newsroom.recipient
        )
    };
    let socket = unix_dir.join("source.sock");
    let _tcp = Stop(serve(
        &tcp_dir,
        &config(
            format!("127.0.0.1:{port}"),
            format!("127.0.0.1:{journalist_port}"),
        ),
    ));
    let _unix = Stop(serve(
        &unix_dir,
        &config(format!("unix:{}", socket.display()), "127.0.0.1:0".into()),
    ));

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
    let added = Command::new(BIN)
        .args(["journalist", "add", "tor", "--config", "agedrop.toml"])
        .current_dir(&tcp_dir)
        .output()
        .unwrap();
    assert!(added.status.success());
    let token = work.path().join("tor.token");
    std::fs::write(&token, added.stdout).unwrap();
    let bundle = work.path().join("via-tor.tar");
    let pulled = Command::new(BIN)
        .arg("pull")
        .arg("--server")
        .arg(format!("http://{onion}:82"))
        .arg("--proxy")
        .arg(format!("socks5h://{socks}"))
        .arg("--token-file")
        .arg(&token)
        .arg("-o")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        pulled.status.success(),
        "pull through tor: {}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let out = work.path().join("via-tor");
    let opened = Command::new(BIN)
        .arg("open")
        .arg(&bundle)
        .arg("-i")
        .arg(&newsroom.identity_file)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
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

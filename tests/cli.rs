//! The command line through the real binary: config errors, keygen, init, demo.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

const KEY: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

fn agedrop(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn config(data_dir: &str, source: &str, journalist: &str, recipients: &str, extra: &str) -> String {
    format!(
        "data_dir = \"{data_dir}\"\n[source]\nlisten = \"{source}\"\n[journalist]\nlisten = \"{journalist}\"\n[newsroom]\nrecipients = [{recipients}]\n{extra}"
    )
}

/// `serve` must exit non-zero with a message naming `key` and saying `problem`.
fn assert_refused(text: &str, key: &str, problem: &str) {
    let dir = tempfile::tempdir().unwrap();
    init_data_dir(dir.path(), KEY);
    std::fs::write(dir.path().join("agedrop.toml"), text).unwrap();
    let out = agedrop(
        &["serve", "--allow-root", "--config", "agedrop.toml"],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started with a bad {key}");
    assert!(stderr.contains(key), "error names `{key}`: {stderr}");
    assert!(stderr.contains(problem), "error says `{problem}`: {stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

#[test]
fn serve_refuses_bad_config_with_a_clear_message() {
    let ok = format!("\"{KEY}\"");
    let local = "127.0.0.1:0";
    assert_refused(
        &config("data", local, local, "\"age1notakey\"", ""),
        "newsroom.recipients[0]",
        "not a usable age recipient",
    );
    assert_refused(
        &config(
            "data",
            local,
            local,
            &format!("{ok}, \"AGE-SECRET-KEY-1XYZ\""),
            "",
        ),
        "newsroom.recipients[1]",
        "not a usable age recipient",
    );
    assert_refused(
        &config("data", local, local, "", ""),
        "newsroom.recipients",
        "no recipients",
    );
    assert_refused(
        &config("data", "localhost", local, &ok, ""),
        "source.listen",
        "host:port",
    );
    assert_refused(
        &config("data", local, "unix:relative.sock", &ok, ""),
        "journalist.listen",
        "absolute",
    );
    assert_refused(
        &config("data", "127.0.0.1:8999", "127.0.0.1:8999", &ok, ""),
        "journalist.listen",
        "must differ",
    );
    assert_refused(
        &config("data", local, local, &ok, "[limits]\nmax_files = 0\n"),
        "limits.max_files",
        "greater than 0",
    );
    assert_refused(
        &config("data", local, local, &ok, "[limits]\nmax_fils = 3\n"),
        "max_fils",
        "unknown field",
    );
    assert_refused(
        &config("data", local, local, &ok, "[limits]\nmax_files = \"x\"\n"),
        "max_files",
        "invalid type",
    );

    // A listen address that can't be bound: taken by another socket.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    assert_refused(
        &config("data", &taken, local, &ok, ""),
        "source.listen",
        "cannot listen",
    );
    assert_refused(
        &config("data", local, &taken, &ok, ""),
        "journalist.listen",
        "cannot listen",
    );

    // A data dir that isn't one: a regular file, a missing directory (perhaps an
    // unmounted volume), a place nobody may write.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let not_one = "not an agedrop data directory";
    assert_refused(
        &config(file.to_str().unwrap(), local, local, &ok, ""),
        "data_dir",
        not_one,
    );
    assert_refused(
        &config("/proc/agedrop-test", local, local, &ok, ""),
        "data_dir",
        not_one,
    );
    let missing = dir.path().join("not-mounted");
    assert_refused(
        &config(missing.to_str().unwrap(), local, local, &ok, ""),
        "data_dir",
        not_one,
    );
    assert!(!missing.exists(), "serve never creates a data directory");
}

/// Makes `dir` unwritable even for root (the immutable flag), or by mode otherwise.
fn freeze(dir: &Path, frozen: bool) {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if root {
        let flag = if frozen { "+i" } else { "-i" };
        let status = Command::new("chattr").arg(flag).arg(dir).status().unwrap();
        assert!(
            status.success(),
            "chattr {flag} works on the test filesystem"
        );
    } else {
        let mode = if frozen { 0o500 } else { 0o700 };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[test]
fn serve_refuses_an_unwritable_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    init_data_dir(dir.path(), KEY);
    let text = config(
        "data",
        "127.0.0.1:0",
        "127.0.0.1:0",
        &format!("\"{KEY}\""),
        "",
    );
    std::fs::write(dir.path().join("agedrop.toml"), text).unwrap();
    let tmp = dir.path().join("data/tmp");
    freeze(&tmp, true);
    let out = agedrop(
        &["serve", "--allow-root", "--config", "agedrop.toml"],
        dir.path(),
    );
    freeze(&tmp, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("config key `data_dir`") && stderr.contains("cannot write"),
        "{stderr}"
    );
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let server = Server::start();
    let second = server.dir.path().join("second.toml");
    std::fs::write(&second, std::fs::read_to_string(&server.config).unwrap()).unwrap();
    let out = agedrop(
        &["serve", "--allow-root", "--config", "second.toml"],
        server.dir.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another agedrop process"),
        "{stderr}"
    );
    // The running server lost nothing and still works.
    let page = submit(server.addr, vec![Part::text("message", b"still here")]);
    assert_eq!(page.status, 200);
}

#[test]
fn serve_without_a_config_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = agedrop(
        &["serve", "--allow-root", "--config", "missing.toml"],
        dir.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read config file missing.toml"),
        "{stderr}"
    );
}

#[test]
fn keygen_writes_a_private_identity_that_stock_age_reads() {
    let age_keygen = require_tool("age-keygen");
    let dir = tempfile::tempdir().unwrap();
    let out = agedrop(&["keygen", "-o", "id.txt"], dir.path());
    assert!(out.status.success());
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let path = dir.path().join("id.txt");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let derived = Command::new(age_keygen)
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(derived.stdout).unwrap().trim(), recipient);
    // Never overwrites an identity.
    let again = agedrop(&["keygen", "-o", "id.txt"], dir.path());
    assert!(!again.status.success());
    assert_eq!(
        String::from_utf8(
            Command::new("age-keygen")
                .arg("-y")
                .arg(&path)
                .output()
                .unwrap()
                .stdout
        )
        .unwrap()
        .trim(),
        recipient
    );
}

#[test]
fn init_writes_a_config_that_serve_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = agedrop(&["init", "--recipient", KEY, "--dir", "site"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let site = dir.path().join("site");
    let text = std::fs::read_to_string(site.join("agedrop.toml")).unwrap();
    assert!(text.contains(KEY));
    assert!(site.join("data").join("instance-secret").is_file());
    assert_eq!(
        std::fs::metadata(site.join("data"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(site.join("data/instance-secret"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // Refuses to overwrite, and refuses bad recipients.
    assert!(
        !agedrop(&["init", "--recipient", KEY, "--dir", "site"], dir.path())
            .status
            .success()
    );
    let bad = agedrop(
        &["init", "--recipient", "age1bad", "--dir", "other"],
        dir.path(),
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("newsroom.recipients[0]"));
    assert!(
        !dir.path().join("other/agedrop.toml").exists(),
        "nothing half-written"
    );
}

#[test]
fn demo_serves_with_a_throwaway_identity_and_token() {
    require_tool("age");
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["demo", "--dir", "demo", "--port", "0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "agedrop=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("demo.log")).unwrap())
        .spawn()
        .unwrap();
    let (addr, journalist) = read_addresses(&mut child);
    let mut child = KillOnDrop(child);
    let demo = dir.path().join("demo");
    let identity = std::fs::read_to_string(demo.join("newsroom-identity.txt")).unwrap();
    assert!(identity
        .lines()
        .next()
        .unwrap()
        .contains("DEMO ONLY — NEVER USE FOR REAL SOURCES"));
    let token = std::fs::read_to_string(demo.join("journalist-token.txt")).unwrap();
    let token = token.trim();
    assert!(token.starts_with("agedrop-"), "{token}");
    assert_eq!(
        token.len(),
        "agedrop-".len() + 8 + 1 + 64,
        "account id and 256-bit secret"
    );
    for name in ["newsroom-identity.txt", "journalist-token.txt"] {
        assert_eq!(
            std::fs::metadata(demo.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }

    // The journalist listener accepts the demo token and nothing else.
    let bearer = format!("Bearer {token}");
    let with = request(
        journalist,
        "GET",
        "/api/v1/export",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(with.status, 200);
    let without = request(journalist, "GET", "/api/v1/nothing-here", &[], b"");
    assert_eq!(without.status, 401);
    let wrong = request(
        journalist,
        "GET",
        "/",
        &[("Authorization", &format!("Bearer {}", "0".repeat(64)))],
        b"",
    );
    assert_eq!(wrong.status, 401);
    // The journalist listener does not serve the source site.
    assert_ne!(get(journalist, "/submit").status, 200);

    // A submission decrypts with the demo identity and stock age.
    let form = form(addr);
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("demo.txt", b"demo bytes".to_vec())],
    ));
    let mut stream = partial_submit(addr, &form, &body, body.len());
    let page = try_read_response(&mut stream).unwrap_or_else(|| {
        std::thread::sleep(std::time::Duration::from_millis(500));
        panic!(
            "the demo closed the connection without an answer (process: {:?}); its log:\n{}",
            child.0.try_wait(),
            std::fs::read_to_string(dir.path().join("demo.log")).unwrap()
        )
    });
    assert_eq!(page.status, 200, "{}", page.body);
    let blobs: Vec<_> = files_under(&demo.join("data/blobs"))
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".meta.age"))
        .collect();
    assert_eq!(blobs.len(), 1);
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(demo.join("newsroom-identity.txt"))
        .arg(&blobs[0])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"demo bytes");
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let newsroom = Newsroom::new(dir.path());
    let config = write_config(dir.path(), &newsroom.recipient, &Options::default());
    let mut child = Command::new(BIN)
        .arg("--log-format")
        .arg("json")
        .args(["serve", "--allow-root"])
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _) = read_addresses(&mut child);
    assert_eq!(get(addr, "/").status, 200);
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(log.lines().count() >= 2, "{log}");
    for line in log.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        assert!(value.get("level").is_some());
    }
}

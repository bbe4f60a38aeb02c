//! The command line through the real binary: config errors, keygen, init, demo.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;

const KEY: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

fn config(data_dir: &str, source: &str, journalist: &str, recipients: &str, extra: &str) -> String {
    format!(
        "data_dir = \"{data_dir}\"\n[source]\nlisten = \"{source}\"\n[journalist]\nlisten = \"{journalist}\"\n[newsroom]\nrecipients = [{recipients}]\n{extra}"
    )
}

/// `serve` with this config text (beside a data directory `init` made) refuses to
/// start: exit status 1 and exactly `message`.
fn assert_serve_refuses(text: &str, message: &str) {
    assert_refused(&with_config(text).refused(), message);
}

/// A server that is not started yet, with this config text.
fn with_config(text: &str) -> Server {
    Server::prepare(Options {
        config_text: Some(text.to_owned()),
        ..Options::default()
    })
}

#[test]
fn serve_refuses_bad_config_with_a_clear_message() {
    let ok = format!("\"{KEY}\"");
    let local = "127.0.0.1:0";
    assert_serve_refuses(
        &config("data", local, local, "\"age1notakey\"", ""),
        "config key `newsroom.recipients[0]`: not a usable age recipient: invalid Bech32 encoding",
    );
    assert_serve_refuses(
        &config(
            "data",
            local,
            local,
            &format!("{ok}, \"AGE-SECRET-KEY-1XYZ\""),
            "",
        ),
        "config key `newsroom.recipients[1]`: not a usable age recipient: invalid Bech32 encoding",
    );
    assert_serve_refuses(
        &config("data", local, local, "", ""),
        "config key `newsroom.recipients`: no recipients: add at least one age1… public key (from `agedrop keygen` on the offline machine)",
    );
    assert_serve_refuses(
        &config("data", "localhost", local, &ok, ""),
        "config key `source.listen`: expected host:port (e.g. 127.0.0.1:8080, [::1]:8080) or unix:/path",
    );
    assert_serve_refuses(
        &config("data", local, "unix:relative.sock", &ok, ""),
        "config key `journalist.listen`: a unix socket path must be absolute (unix:/path)",
    );
    assert_serve_refuses(
        &config("data", "127.0.0.1:8999", "127.0.0.1:8999", &ok, ""),
        "config key `journalist.listen`: must differ from source.listen: the journalist API never shares the source site's port",
    );
    assert_serve_refuses(
        &config("data", local, local, &ok, "[limits]\nmax_files = 0\n"),
        "config key `limits.max_files`: must be greater than 0",
    );
    // A TOML error points at the line; the list of known keys after it is left out,
    // so that a new limit does not change this test.
    let server = with_config(&config(
        "data",
        local,
        local,
        &ok,
        "[limits]\nmax_fils = 3\n",
    ));
    assert_refusal_starts(
        &server.refused(),
        &format!(
            "config file {}: TOML parse error at line 9, column 1\n  |\n9 | max_fils = 3\n  | ^^^^^^^^\nunknown field `max_fils`, expected one of `max_submission_bytes`, ",
            server.config.display()
        ),
    );
    let server = with_config(&config(
        "data",
        local,
        local,
        &ok,
        "[limits]\nmax_files = \"x\"\n",
    ));
    assert_refused(
        &server.refused(),
        &format!(
            "config file {}: TOML parse error at line 9, column 13\n  |\n9 | max_files = \"x\"\n  |             ^^^\ninvalid type: string \"x\", expected usize",
            server.config.display()
        ),
    );

    // A listen address that can't be bound: taken by another socket.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    assert_serve_refuses(
        &config("data", &taken, local, &ok, ""),
        &format!("config key `source.listen`: cannot listen on {taken}: Address already in use (os error 98)"),
    );
    assert_serve_refuses(
        &config("data", local, &taken, &ok, ""),
        &format!("config key `journalist.listen`: cannot listen on {taken}: Address already in use (os error 98)"),
    );

    // A data dir that isn't one: a regular file, a missing directory (perhaps an
    // unmounted volume), a place nobody may write.
    let dir = tempfile::tempdir().unwrap();
    let not_one = |path: &Path| {
        format!(
            "config key `data_dir`: {} is not an agedrop data directory (no database or instance secret); create one with `agedrop init`, or check that its volume is mounted",
            path.display()
        )
    };
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    assert_serve_refuses(
        &config(file.to_str().unwrap(), local, local, &ok, ""),
        &not_one(&file),
    );
    let proc = Path::new("/proc/agedrop-test");
    assert_serve_refuses(
        &config(proc.to_str().unwrap(), local, local, &ok, ""),
        &not_one(proc),
    );
    let missing = dir.path().join("not-mounted");
    assert_serve_refuses(
        &config(missing.to_str().unwrap(), local, local, &ok, ""),
        &not_one(&missing),
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
    let server = Server::prepare(Options::default());
    let tmp = server.data().join("tmp");
    freeze(&tmp, true);
    let out = server.refused();
    freeze(&tmp, false);
    assert_refused(
        &out,
        &format!(
            "config key `data_dir`: cannot write in the data directory ({}): Operation not permitted (os error 1)",
            tmp.display()
        ),
    );
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let server = Server::start();
    // The same config again, beside the running server.
    assert_refused(
        &server.refused(),
        &format!(
            "config key `data_dir`: {} is in use by another agedrop process; stop it first",
            server.data().display()
        ),
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
    assert_refused(
        &out,
        "cannot read config file missing.toml: No such file or directory (os error 2)",
    );
}

#[test]
fn keygen_writes_a_private_identity_that_stock_age_reads() {
    let age_keygen = require_tool("age-keygen");
    let dir = tempfile::tempdir().unwrap();
    let out = agedrop(&["keygen", "-o", "id.txt"], dir.path());
    ok(&out);
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let path = dir.path().join("id.txt");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let derived = || {
        let out = Command::new(&age_keygen)
            .arg("-y")
            .arg(&path)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(derived(), recipient);
    // Never overwrites an identity.
    let again = agedrop(&["keygen", "-o", "id.txt"], dir.path());
    assert_refused(&again, "cannot create id.txt: File exists (os error 17)");
    assert_eq!(derived(), recipient);
}

#[test]
fn init_writes_a_config_that_serve_accepts() {
    let dir = tempfile::tempdir().unwrap();
    ok(&agedrop(
        &["init", "--recipient", KEY, "--dir", "site"],
        dir.path(),
    ));
    let site = dir.path().join("site");
    let text = std::fs::read_to_string(site.join("agedrop.toml")).unwrap();
    assert!(text.contains(KEY));
    assert!(site.join("data").join("instance-secret").is_file());
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&site.join("data")), 0o700);
    assert_eq!(mode(&site.join("data/instance-secret")), 0o600);
    // Refuses to overwrite, and refuses bad recipients.
    assert_refused(
        &agedrop(&["init", "--recipient", KEY, "--dir", "site"], dir.path()),
        "site/agedrop.toml exists already; not overwriting it",
    );
    let bad = agedrop(
        &["init", "--recipient", "age1bad", "--dir", "other"],
        dir.path(),
    );
    assert_refused(
        &bad,
        "config key `newsroom.recipients[0]`: not a usable age recipient: invalid Bech32 encoding",
    );
    assert!(
        !dir.path().join("other/agedrop.toml").exists(),
        "nothing half-written"
    );
}

#[test]
fn init_as_root_gives_the_data_directory_to_the_service_user() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    // The service user must be able to reach the config through the test's directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = agedrop(
        &[
            "init",
            "--recipient",
            KEY,
            "--dir",
            "etc",
            "--data-dir",
            "../lib/data",
            "--owner",
            "nobody",
        ],
        dir.path(),
    );
    ok(&out);
    let told = String::from_utf8(out.stdout).unwrap();
    assert!(
        told.contains("runuser -u nobody -- agedrop journalist add NAME --config etc/agedrop.toml"),
        "{told}"
    );
    let data = dir.path().join("lib/data");
    let nobody = std::fs::metadata(&data).unwrap().uid();
    assert_ne!(nobody, 0);
    for path in everything_under(&data) {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            meta.uid(),
            nobody,
            "{} belongs to the service user",
            path.display()
        );
    }
    let config = std::fs::metadata(dir.path().join("etc/agedrop.toml")).unwrap();
    assert_eq!((config.uid(), config.mode() & 0o777), (0, 0o640));
    std::fs::set_permissions(
        dir.path().join("lib"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(
        dir.path().join("etc"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    // As that user, the health check finds nothing wrong with what init made.
    let check = std::process::Command::new("runuser")
        .args([
            "-u",
            "nobody",
            "--",
            BIN,
            "check",
            "--config",
            "etc/agedrop.toml",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        stderr(&check)
    );

    // Unknown users are refused before anything is written.
    assert_refused(
        &agedrop(
            &[
                "init",
                "--recipient",
                KEY,
                "--dir",
                "other",
                "--owner",
                "no-such-user",
            ],
            dir.path(),
        ),
        "no user \"no-such-user\": create it first, e.g. `useradd --system --home-dir \
         /var/lib/agedrop --shell /usr/sbin/nologin no-such-user`",
    );
    assert!(!dir.path().join("other").exists());
}

/// A directory and everything under it, directories included.
fn everything_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![dir.to_owned()];
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            all.push(path);
        }
    }
    all
}

#[test]
fn demo_serves_with_a_throwaway_identity_and_token() {
    require_tool("age");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.log");
    let (mut child, listening) = spawn_listening(
        agedrop_command(&["demo", "--dir", "demo", "--port", "0"], dir.path())
            .env("RUST_LOG", "agedrop=debug"),
        &log,
    );
    let addr = Listening::tcp(&listening.source);
    let journalist = Listening::tcp(&listening.journalist);
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
    assert_eq!(get(journalist, "/submit").status, 401);

    // A submission decrypts with the demo identity and stock age.
    let form = form(addr);
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("demo.txt", b"demo bytes".to_vec())],
    ));
    let mut stream = partial_submit(addr, &form, &body, body.len());
    let page = try_read_response(&mut stream).unwrap_or_else(|| {
        panic!(
            "the demo closed the connection without an answer (process: {:?}); its log:\n{}",
            child.0.try_wait(),
            std::fs::read_to_string(&log).unwrap()
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

    // Run again with another --port: the saved demo is reused, and it says the port
    // did not change.
    drop(child);
    let mut again = KillOnDrop(
        agedrop_command(&["demo", "--dir", "demo", "--port", "9"], dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(again.0.stdout.take().unwrap()));
    assert_eq!(lines.next().unwrap().unwrap(), "Reusing the demo in demo.");
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "Note: this demo was made with port 0; --port 9 does not change it (remove demo to \
         start a new demo on another port)."
    );
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let mut server = Server::with(Options {
        global_args: vec!["--log-format", "json"],
        ..Options::default()
    });
    assert_eq!(get(server.addr, "/").status, 200);
    // Stopped first, so no line is read half-written.
    server.kill9();
    let log = server.log();
    assert!(log.lines().count() >= 2, "{log}");
    for line in log.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        assert!(value.get("level").is_some());
    }
}

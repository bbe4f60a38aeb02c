//! Operating a drop, through the real binary: `GET /api/v1/status` and `agedrop watch`
//! (notifications that carry only a count), and `agedrop check` (the health of a
//! config, its data directory, its sockets and tor's onion services).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

/// One first submission of a message (to `desk`, on a drop with desks).
fn send(server: &Server, desk: Option<&str>, text: &str) {
    let mut parts = Vec::new();
    if let Some(desk) = desk {
        parts.push(Part::text("desk", desk.as_bytes()));
    }
    parts.push(Part::text("message", text.as_bytes()));
    let page = submit(server.addr, parts);
    // A first submission answers with the source's new code.
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Keep this code"), "{}", page.body);
}

/// `GET /api/v1/status` with the token in `token_file`: the status and the body.
fn status(server: &Server, token_file: &Path) -> (u16, String) {
    let token = std::fs::read_to_string(token_file).unwrap();
    let (code, body) = server.api("GET", "/api/v1/status", token.trim(), b"");
    (code, String::from_utf8(body).unwrap())
}

/// The answer for `n` new items: exactly this, nothing else.
fn new_items(n: u64) -> (u16, String) {
    (200, format!("{{\"new_items\":{n}}}"))
}

/// `agedrop pull` into a new file in the server's directory.
fn pull(server: &Server, token_file: &Path, name: &str) {
    ok(&server.pull(token_file, &server.dir.path().join(name)));
}

#[test]
fn status_counts_the_items_since_the_accounts_last_pull_and_nothing_else() {
    let server = Server::start();
    let ana = server.add_journalist_file("ana");
    let ben = server.add_journalist_file("ben");
    assert_eq!(status(&server, &ana), new_items(0));

    send(&server, None, "first");
    send(&server, None, "second");
    assert_eq!(status(&server, &ana), new_items(2));

    // A pull brings the pulling account to 0, and no other.
    pull(&server, &ana, "1.tar");
    assert_eq!(status(&server, &ana), new_items(0));
    assert_eq!(status(&server, &ben), new_items(2));

    let before: Vec<String> = server.items().into_iter().map(|i| i.id).collect();
    send(&server, None, "third");
    assert_eq!(status(&server, &ana), new_items(1));
    assert_eq!(status(&server, &ben), new_items(3));

    // An item deleted before the pull is not counted.
    let newest = server
        .items()
        .into_iter()
        .find(|i| !before.contains(&i.id))
        .unwrap();
    let token = std::fs::read_to_string(&ana).unwrap();
    assert_eq!(server.delete_item(token.trim(), &newest.id), 204);
    assert_eq!(status(&server, &ana), new_items(0));

    // A pull that asks for a cursor beyond everything cannot hide what comes later.
    let (code, _) = server.api("GET", "/api/v1/export?since=999999", token.trim(), b"");
    assert_eq!(code, 200);
    send(&server, None, "fourth");
    assert_eq!(status(&server, &ana), new_items(1));
}

#[test]
fn an_export_cut_short_does_not_count_as_a_pull() {
    let server = Server::start();
    let ana = server.add_journalist_file("ana");
    send(&server, None, "first");
    send(&server, None, "second");
    // One blob longer than its row: the export stops there, without the end blocks.
    let item = &server.items()[1];
    let blob = server.data().join("blobs").join(format!("{}.age", item.id));
    let mut longer = std::fs::read(&blob).unwrap();
    longer.push(0);
    std::fs::write(&blob, longer).unwrap();
    let out = server.pull(&ana, &server.dir.path().join("cut.tar"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(status(&server, &ana), new_items(2));
}

#[test]
fn status_needs_a_token() {
    let server = Server::start();
    let response = request(server.journalist, "GET", "/api/v1/status", &[], b"");
    assert_eq!(response.status, 401);
    let (code, _) = server.api("GET", "/api/v1/status", "agedrop-not-a-token", b"");
    assert_eq!(code, 401);
}

#[test]
fn status_counts_only_the_accounts_desks() {
    let keys = tempfile::tempdir().unwrap();
    let newsroom = |name: &str| {
        let dir = keys.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        Newsroom::new(&dir).recipient
    };
    let server = Server::with(Options {
        desks: vec![
            ("investigations", "Investigations", vec![newsroom("inv")]),
            ("local", "Local news", vec![newsroom("local")]),
        ],
        ..Options::default()
    });
    let config = server.config.to_str().unwrap().to_owned();
    let out = agedrop(
        &[
            "journalist",
            "add",
            "ivy",
            "--desk",
            "investigations",
            "--config",
            &config,
        ],
        server.dir.path(),
    );
    ok(&out);
    let ivy = server.dir.path().join("ivy.token");
    std::fs::write(&ivy, &out.stdout).unwrap();
    let all = server.add_journalist_file("all");

    send(&server, Some("investigations"), "for investigations");
    send(&server, Some("local"), "for local news");
    send(&server, Some("local"), "more local news");
    assert_eq!(status(&server, &ivy), new_items(1));
    assert_eq!(status(&server, &all), new_items(3));

    pull(&server, &ivy, "ivy.tar");
    assert_eq!(status(&server, &ivy), new_items(0));
    assert_eq!(status(&server, &all), new_items(3));
    send(&server, Some("local"), "still local");
    assert_eq!(status(&server, &ivy), new_items(0));
    assert_eq!(status(&server, &all), new_items(4));
}

/// A fake notification command: appends its arguments, one call per line, to
/// `calls`, then exits with `code`.
fn fake_command(dir: &Path, code: i32) -> (PathBuf, PathBuf) {
    let script = dir.join(format!("notify-{code}.sh"));
    let calls = dir.join(format!("calls-{code}.txt"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexit {code}\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, calls)
}

fn calls(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap_or_default()
}

#[test]
fn watch_once_runs_the_command_with_the_count_only() {
    let server = Server::start();
    let ana = server.add_journalist_file("ana");
    let (script, record) = fake_command(server.dir.path(), 0);
    let exec = script.to_str().unwrap();

    // Nothing new: the command does not run.
    let out = server.with_token(&ana, "watch", &["--exec", exec, "--once"]);
    assert_eq!(
        ok(&out),
        "agedrop: watch: no new items since the last pull\n"
    );
    assert!(!record.exists());

    for n in 0..3 {
        send(&server, None, &format!("message {n}"));
    }
    let out = server.with_token(&ana, "watch", &["--exec", exec, "--once"]);
    assert_eq!(
        ok(&out),
        format!("agedrop: watch: 3 new item(s) since the last pull; ran {exec}\n")
    );
    assert_eq!(calls(&record), "3\n");

    // Fixed arguments come first; the count is always the last.
    let with_args = format!("{exec} agedrop new");
    ok(&server.with_token(&ana, "watch", &["--exec", &with_args, "--once"]));
    assert_eq!(calls(&record), "3\nagedrop new 3\n");
}

#[test]
fn a_failing_command_is_reported_and_watching_goes_on() {
    let server = Server::start();
    let ana = server.add_journalist_file("ana");
    send(&server, None, "news");
    let (script, record) = fake_command(server.dir.path(), 3);
    let exec = script.to_str().unwrap();

    let out = server.with_token(&ana, "watch", &["--exec", exec, "--once"]);
    assert_refused(&out, &format!("{exec}: failed (exit status: 3)"));
    assert_eq!(calls(&record), "1\n");

    // Watching: each poll (every second here) tries the command again, and the
    // process stays up.
    let log = server.dir.path().join("watch.log");
    let url = format!("http://{}", server.journalist);
    let child = agedrop_command(
        &[
            "watch",
            "--server",
            &url,
            "--token-file",
            ana.to_str().unwrap(),
            "--exec",
            exec,
            "--interval-min",
            "1",
            "--interval-max",
            "1",
        ],
        server.dir.path(),
    )
    .stderr(std::fs::File::create(&log).unwrap())
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let mut child = KillOnDrop(child);
    eventually("watch runs the failing command twice more", SOON, || {
        calls(&record).lines().count() >= 3
    });
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "watch is still running"
    );
    let report = std::fs::read_to_string(&log).unwrap();
    assert!(
        report.contains(&format!(
            "agedrop: watch: {exec}: failed (exit status: 3); trying again at the next poll\n"
        )),
        "{report}"
    );
}

#[test]
fn watch_says_clearly_when_it_cannot_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "agedrop-0000\n").unwrap();
    let (script, record) = fake_command(dir.path(), 0);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // `watch` against that port with `--exec EXEC` and `extra`.
    let watch = |exec: &str, extra: &[&str]| {
        let server = format!("http://127.0.0.1:{port}");
        let mut args = vec![
            "watch",
            "--server",
            &server,
            "--token-file",
            token.to_str().unwrap(),
            "--exec",
            exec,
        ];
        args.extend_from_slice(extra);
        agedrop(&args, dir.path())
    };
    let exec = script.to_str().unwrap();
    assert_refusal_starts(
        &watch(exec, &["--once"]),
        "cannot reach the server: the request failed: ",
    );
    let proxy = format!("socks5h://127.0.0.1:{port}");
    assert_refusal_starts(
        &watch(exec, &["--once", "--proxy", &proxy]),
        &format!(
            "cannot reach the server through the proxy {proxy} (is Tor running?): the request failed: "
        ),
    );
    assert!(!record.exists());

    // Mistakes are refused before any connection.
    assert_refused(
        &watch("no-such-notifier", &["--once"]),
        "--exec: no program \"no-such-notifier\": give a path to an executable file or the name of one on PATH",
    );
    assert_refused(
        &watch(exec, &["--interval-min", "60", "--interval-max", "10"]),
        "--interval-min must be at least 1 and at most --interval-max, which must be at most 86400 (seconds)",
    );
}

#[test]
fn watch_stops_on_a_refused_token() {
    let server = Server::start();
    let token = server.dir.path().join("wrong.token");
    std::fs::write(&token, "agedrop-not-a-token\n").unwrap();
    let (script, _) = fake_command(server.dir.path(), 0);
    let out = server.with_token(
        &token,
        "watch",
        &[
            "--exec",
            script.to_str().unwrap(),
            "--interval-min",
            "1",
            "--interval-max",
            "1",
        ],
    );
    // No retry: waiting does not make a token valid.
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "Watching: polling every 1 to 1 s at random; {} runs when items come.\n\
             agedrop: error: the server answered 401: unauthorized\n",
            script.display()
        )
    );
}

/// `agedrop check --config CONFIG ARGS…`: its standard output and its exit status.
fn check(server: &Server, args: &[&str]) -> (String, Option<i32>, String) {
    let mut all = vec!["check", "--config", server.config.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = agedrop(&all, server.dir.path());
    (
        String::from_utf8(out.stdout.clone()).unwrap(),
        out.status.code(),
        stderr(&out),
    )
}

/// Asserts `check` found exactly `problems` (lines without their `problem: `), besides
/// information lines, and failed.
fn assert_problems(server: &Server, args: &[&str], problems: &[String]) {
    let (out, code, err) = check(server, args);
    let found: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("problem: "))
        .collect();
    assert_eq!(found, problems, "{out}");
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        err,
        format!("agedrop: error: {} problem(s); see above\n", problems.len())
    );
}

#[test]
fn check_passes_a_good_drop_and_says_whether_it_runs() {
    let mut server = Server::prepare(Options::default());
    let data = server.data();
    let (out, code, _) = check(&server, &[]);
    assert_eq!(
        out,
        format!("info: no server is running on {}\nok\n", data.display())
    );
    assert_eq!(code, Some(0));

    server.serve();
    let (out, code, _) = check(&server, &[]);
    assert_eq!(
        out,
        format!(
            "info: a server is running on {} (it holds the lock)\nok\n",
            data.display()
        )
    );
    assert_eq!(code, Some(0));
}

#[test]
fn check_names_each_problem_of_the_data_directory() {
    let server = Server::prepare(Options::default());
    let data = server.data();
    let d = data.display();

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_problems(
        &server,
        &[],
        &[format!(
            "data directory {d} has mode 0755: group and others must have no access; chmod 0700 {d}"
        )],
    );
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();

    let secret = data.join("instance-secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_problems(
        &server,
        &[],
        &[format!(
            "instance secret {} has mode 0644: group and others must have no access; chmod 0600 {}",
            secret.display(),
            secret.display()
        )],
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A database from a newer agedrop.
    let db = rusqlite::Connection::open(data.join("agedrop.sqlite")).unwrap();
    db.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(db);
    assert_problems(
        &server,
        &[],
        &[format!(
            "the database has schema version 99, newer than this agedrop's ({}): run the agedrop that made it",
            agedrop::store::SCHEMA_VERSION
        )],
    );
    let db = rusqlite::Connection::open(data.join("agedrop.sqlite")).unwrap();
    db.execute_batch(&format!(
        "PRAGMA user_version = {}",
        agedrop::store::SCHEMA_VERSION
    ))
    .unwrap();
    drop(db);

    let away = server.dir.path().join("elsewhere");
    std::fs::rename(&data, &away).unwrap();
    assert_problems(
        &server,
        &[],
        &[format!(
            "data directory {d} does not exist: make it with `agedrop init`, or mount its volume"
        )],
    );
}

#[test]
fn check_reports_too_little_free_space() {
    let server = Server::prepare(Options {
        limits: vec![("min_free_bytes", (1u64 << 60).to_string())],
        ..Options::default()
    });
    let (out, code, _) = check(&server, &[]);
    let prefix = format!("problem: {}: ", server.data().display());
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.ends_with(
            " MiB free, below limits.min_free_bytes (1099511627776 MiB): uploads are refused; free space or lower the limit"
        ),
        "{line}"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn check_reads_an_older_schema_as_a_migration_to_come() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v4");
    let server = Server::prepare(Options {
        data_from: Some(fixture.join("data")),
        identity: Some(fixture.join("newsroom-key.txt")),
        ..Options::default()
    });
    let (out, _, _) = check(&server, &[]);
    assert!(
        out.contains(&format!(
            "info: the database has schema version 4; it will be migrated to {} at start\n",
            agedrop::store::SCHEMA_VERSION
        )),
        "{out}"
    );
    // Read, not migrated.
    let db = rusqlite::Connection::open(server.data().join("agedrop.sqlite")).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
}

/// A drop whose listeners are Unix sockets in `sockets`, with `socket_group` set.
fn socket_drop(sockets: &Path, group: &str) -> Server {
    let mut options = Options::default().unix_sockets(
        &sockets.join("source.sock"),
        &sockets.join("journalist.sock"),
    );
    options
        .source
        .push(("socket_group", format!("\"{group}\"")));
    Server::prepare(options)
}

#[test]
fn check_finds_missing_socket_directories_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("run-agedrop");
    let server = socket_drop(&missing, "no-such-group");
    assert_problems(
        &server,
        &[],
        &[
            format!(
                "source.listen: the directory {} for unix:{}/source.sock does not exist (the systemd unit makes /run/agedrop with RuntimeDirectory=agedrop)",
                missing.display(),
                missing.display()
            ),
            "source.socket_group: no group \"no-such-group\" in /etc/group".to_string(),
            format!(
                "journalist.listen: the directory {} for unix:{}/journalist.sock does not exist (the systemd unit makes /run/agedrop with RuntimeDirectory=agedrop)",
                missing.display(),
                missing.display()
            ),
        ],
    );
}

#[test]
fn check_compares_the_torrc_with_the_listeners() {
    let sockets = tempfile::tempdir().unwrap();
    let s = sockets.path().display();
    let server = socket_drop(sockets.path(), "root");
    let torrc = server.dir.path().join("torrc");
    let t = torrc.display();
    let torrc_arg = torrc.to_str().unwrap();

    std::fs::write(
        &torrc,
        format!(
            "# agedrop\nHiddenServiceDir /var/lib/tor/agedrop-source/\nHiddenServicePort 80 unix:{s}/source.sock\n\
             HiddenServiceDir /var/lib/tor/agedrop-journalist/\nhiddenserviceport 80 \"unix:{s}/journalist.sock\"\n"
        ),
    )
    .unwrap();
    let (out, code, _) = check(&server, &["--torrc", torrc_arg]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.ends_with("\nok\n"), "{out}");

    // Pointing elsewhere: each line named, and the source site found nowhere.
    std::fs::write(
        &torrc,
        format!(
            "HiddenServiceDir /var/lib/tor/agedrop-source/\nHiddenServicePort 80 127.0.0.1:8080\n\
             HiddenServiceDir /var/lib/tor/agedrop-journalist/\nHiddenServicePort 80 unix:{s}/journalist.sock\n"
        ),
    )
    .unwrap();
    assert_problems(
        &server,
        &["--torrc", torrc_arg],
        &[
            format!(
                "{t} line 2: HiddenServicePort 80 points at 127.0.0.1:8080, which is neither source.listen (unix:{s}/source.sock) nor journalist.listen (unix:{s}/journalist.sock)"
            ),
            format!("{t}: no HiddenServicePort points at source.listen (unix:{s}/source.sock)"),
        ],
    );

    // One onion service for both: the journalist API would be one address away.
    std::fs::write(
        &torrc,
        format!(
            "HiddenServiceDir /var/lib/tor/agedrop/\nHiddenServicePort 80 unix:{s}/source.sock\nHiddenServicePort 81 unix:{s}/journalist.sock\n"
        ),
    )
    .unwrap();
    assert_problems(
        &server,
        &["--torrc", torrc_arg],
        &[format!(
            "{t} line 3: the onion service /var/lib/tor/agedrop/ leads to both source.listen and journalist.listen: give the journalist API its own HiddenServiceDir"
        )],
    );
}

#[test]
fn check_reports_a_config_it_cannot_use() {
    let server = Server::prepare(Options {
        limits: vec![("max_filez", "3".into())],
        ..Options::default()
    });
    let (out, code, _) = check(&server, &[]);
    // One line starts the problem; the parser's pointer at the key follows, indented.
    let problems: Vec<&str> = out.lines().filter(|l| !l.starts_with("    ")).collect();
    assert_eq!(problems.len(), 1, "{out}");
    assert!(
        problems[0].starts_with(&format!(
            "problem: config file {}: ",
            server.config.display()
        )),
        "{out}"
    );
    assert!(out.contains("unknown field `max_filez`"), "{out}");
    assert_eq!(code, Some(1));
}

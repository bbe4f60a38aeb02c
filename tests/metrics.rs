//! The optional metrics listener (`[metrics]`), through the real binary: exact counts
//! after accepted and refused submissions, output that parses as Prometheus text with
//! HELP and TYPE for every family and no timestamps, and the refusal of any address but
//! loopback TCP or a Unix socket.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use common::*;

/// A server with `[metrics] listen = LISTEN` (and these options), started.
fn with_metrics(options: Options, listen: &str) -> Server {
    let mut server = Server::prepare(options);
    append_metrics(&server.config, listen);
    server.serve();
    server
}

fn append_metrics(config: &Path, listen: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(config)
        .unwrap();
    write!(file, "[metrics]\nlisten = \"{listen}\"\n").unwrap();
}

/// One scrape, checked against the text format (version 0.0.4) as strictly as a
/// scraper reads it: every family has one HELP and one TYPE line before its samples,
/// every sample belongs to the family above it, names and labels are well formed,
/// counters end in `_total`, values are whole numbers, and no sample has a timestamp.
/// Returns each sample (name with labels) and its value.
fn parse_exposition(text: &str) -> BTreeMap<String, u64> {
    let name_ok = |name: &str| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut samples = BTreeMap::new();
    let mut families = Vec::new();
    let mut lines = text.lines().peekable();
    assert!(
        text.ends_with('\n'),
        "the exposition ends with a line break"
    );
    while let Some(line) = lines.next() {
        let help: Vec<&str> = line.splitn(4, ' ').collect();
        assert!(
            help.len() == 4 && help[..2] == ["#", "HELP"] && name_ok(help[2]),
            "expected a HELP line, got {line:?}"
        );
        let family = help[2];
        assert!(!families.contains(&family), "{family} given twice");
        families.push(family);
        let kind = lines
            .next()
            .and_then(|l| l.strip_prefix(&format!("# TYPE {family} ")));
        let kind = kind.unwrap_or_else(|| panic!("no TYPE line after HELP for {family}"));
        assert!(
            ["counter", "gauge"].contains(&kind),
            "{family}: type {kind}"
        );
        if kind == "counter" {
            assert!(
                family.ends_with("_total"),
                "counter {family} must end in _total"
            );
        }
        let mut any = false;
        while let Some(sample) = lines.next_if(|l| !l.starts_with('#')) {
            let (series, value) = sample
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("a sample: {sample:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, Some(rest.strip_suffix('}').expect("labels close"))),
                None => (series, None),
            };
            assert_eq!(name, family, "sample {sample:?} under family {family}");
            assert!(
                !series.contains(' '),
                "a timestamp or a space in {sample:?}"
            );
            for label in labels.into_iter().flat_map(|l| l.split(',')) {
                let (key, quoted) = label.split_once('=').expect("label=\"value\"");
                assert!(name_ok(key), "label name {key:?}");
                let value = quoted.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                let value = value.unwrap_or_else(|| panic!("a quoted label value: {label}"));
                assert!(!value.contains(['"', '\\', '\n']), "{label}");
            }
            let value: u64 = value
                .parse()
                .unwrap_or_else(|_| panic!("a whole number: {sample:?}"));
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "{series} twice"
            );
            any = true;
        }
        assert!(any, "{family} has no samples");
    }
    samples
}

fn scrape_unix(socket: &Path) -> BTreeMap<String, u64> {
    let response = request_unix(socket, "localhost", "GET", "/metrics");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_exposition(&response.body)
}

const CAUSES: [&str; 18] = [
    "csrf",
    "too_large",
    "too_many_files",
    "message_too_long",
    "message_not_text",
    "unexpected_field",
    "malformed",
    "empty",
    "idle",
    "disconnected",
    "busy",
    "rate_limited",
    "no_space",
    "store_error",
    "source_gone",
    "no_desk",
    "unknown_desk",
    "desk_closed",
];

#[test]
fn metrics_count_submissions_refusals_bytes_sessions_and_api_answers() {
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("metrics.sock");
    let options = Options {
        limits: vec![("min_free_bytes", "0".into()), ("max_files", "1".into())],
        ..Options::default()
    };
    let server = with_metrics(options, &format!("unix:{}", socket.display()));

    // Before anything: every family, every cause, all counts 0.
    let start = scrape_unix(&socket);
    let mut expected: BTreeMap<String, u64> = CAUSES
        .iter()
        .map(|cause| {
            (
                format!("agedrop_submissions_refused_total{{cause=\"{cause}\"}}"),
                0,
            )
        })
        .collect();
    for name in [
        "agedrop_submissions_accepted_total",
        "agedrop_ciphertext_received_bytes_total",
        "agedrop_source_sessions",
        "agedrop_derivations_running",
        "agedrop_derivations_queued",
    ] {
        expected.insert(name.into(), 0);
    }
    for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
        expected.insert(
            format!("agedrop_journalist_requests_total{{class=\"{class}\"}}"),
            0,
        );
    }
    let free = start["agedrop_data_dir_free_bytes"];
    assert!(free > 0);
    let without_free = |mut samples: BTreeMap<String, u64>| {
        samples
            .remove("agedrop_data_dir_free_bytes")
            .expect("a free-space gauge");
        samples
    };
    assert_eq!(without_free(start), expected);

    // Two accepted (each a new source, logged in), three refused for three causes.
    for text in ["first", "second"] {
        let page = submit(server.addr, vec![Part::text("message", text.as_bytes())]);
        assert_eq!(page.status, 200, "{}", page.body);
    }
    let page = submit(server.addr, vec![]);
    assert_eq!(page.status, 400, "empty: {}", page.body);
    let page = submit(
        server.addr,
        vec![
            Part::file("a.txt", b"a".to_vec()),
            Part::file("b.txt", b"b".to_vec()),
        ],
    );
    assert_eq!(page.status, 400, "too many files: {}", page.body);
    let form = form(server.addr);
    let forged = Form {
        token: "not-the-token".into(),
        ..form
    };
    let body = multipart(&with_csrf(&forged, vec![Part::text("message", b"x")]));
    assert_eq!(post_submit(server.addr, &forged, &body).status, 403);

    // Journalist API: one 401, two 200.
    let token = server.add_journalist("ana");
    assert_eq!(
        server.api("GET", "/api/v1/status", "agedrop-wrong", b"").0,
        401
    );
    assert_eq!(server.api("GET", "/api/v1/status", &token, b"").0, 200);
    assert_eq!(server.api("GET", "/api/v1/status", &token, b"").0, 200);

    // Ciphertext bytes: exactly what the blobs directory holds (items and records).
    let stored: u64 = files_under(&server.data().join("blobs"))
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(stored > 0);
    for (name, value) in [
        ("agedrop_submissions_accepted_total", 2),
        ("agedrop_ciphertext_received_bytes_total", stored),
        ("agedrop_source_sessions", 2),
        ("agedrop_submissions_refused_total{cause=\"empty\"}", 1),
        (
            "agedrop_submissions_refused_total{cause=\"too_many_files\"}",
            1,
        ),
        ("agedrop_submissions_refused_total{cause=\"csrf\"}", 1),
        ("agedrop_journalist_requests_total{class=\"2xx\"}", 2),
        ("agedrop_journalist_requests_total{class=\"4xx\"}", 1),
    ] {
        expected.insert(name.into(), value);
    }
    // A refused first submission has already started its source's Argon2 derivation,
    // which runs to its end in the background: wait for those to finish.
    eventually("the refused uploads' derivations end", SOON, || {
        without_free(scrape_unix(&socket))["agedrop_derivations_running"] == 0
    });
    assert_eq!(without_free(scrape_unix(&socket)), expected);

    // Only GET /metrics answers; the log never names a scrape.
    assert_eq!(request_unix(&socket, "localhost", "GET", "/").status, 404);
    assert!(!server.log().contains("metrics"), "{}", server.log());
}

#[test]
fn metrics_listen_on_loopback_tcp() {
    // A port that was free a moment ago: the listen line for port 0 is not read by the
    // harness, which stops at the source and journalist lines.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = with_metrics(Options::default(), &format!("127.0.0.1:{port}"));
    let page = get(format!("127.0.0.1:{port}").parse().unwrap(), "/metrics");
    assert_eq!(page.status, 200);
    assert_eq!(
        parse_exposition(&page.body)["agedrop_submissions_accepted_total"],
        0
    );
    drop(server);
}

#[test]
fn metrics_refuse_every_address_but_loopback_and_unix_sockets() {
    for listen in [
        "0.0.0.0:9464",
        "192.0.2.1:9464",
        "[::]:9464",
        "[2001:db8::1]:9464",
    ] {
        let server = Server::prepare(Options::default());
        append_metrics(&server.config, listen);
        let message = "config key `metrics.listen`: must be a loopback address (127.0.0.1:PORT \
                       or [::1]:PORT) or unix:/path: metrics are for this machine only, never \
                       the network";
        assert_refused(&server.refused(), message);
        // `check` reads the config the same way, and says so in one line.
        let out = agedrop(
            &["check", "--config", server.config.to_str().unwrap()],
            server.dir.path(),
        );
        assert_refused(&out, "1 problem(s); see above");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("problem: {message}\n")
        );
    }
    let server = Server::prepare(Options::default());
    append_metrics(&server.config, "metrics.example.org:9464");
    assert_refusal_starts(
        &server.refused(),
        "config key `metrics.listen`: expected host:port",
    );
}

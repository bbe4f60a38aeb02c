//! The certificate recipe of docs/admin.md, "Journalist API over TLS": the commands the
//! doc quotes are those of deploy/journalist-tls.sh, the script makes a CA, a server
//! certificate and a client certificate with stock `openssl`, and a real `agedrop pull`
//! with them gets through `serve` with `client_ca` set. Without a certificate, with one
//! from another CA, or with an X.509 version 1 certificate, the journalist is told what
//! is wrong and what to do.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/journalist-tls.sh");
const ADMIN_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/admin.md");

/// `deploy/journalist-tls.sh ARGS`, which must succeed.
fn recipe(args: &[&str]) {
    require_tool("openssl");
    let out = Command::new("sh").arg(SCRIPT).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "journalist-tls.sh {args:?}: {}",
        stderr(&out)
    );
}

/// The `openssl` command lines of a text, each joined with its `\` continuations.
fn openssl_commands(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if !line.starts_with("openssl ") || line.starts_with("openssl rand") {
            continue;
        }
        let mut command = line.to_owned();
        while command.ends_with('\\') {
            command.pop();
            command.push_str(lines.next().expect("a continued line"));
        }
        commands.push(command.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    commands
}

#[test]
fn the_doc_quotes_the_scripts_openssl_commands_exactly() {
    let doc = std::fs::read_to_string(ADMIN_MD).unwrap();
    let section = doc
        .split("\n## Journalist API over TLS\n")
        .nth(1)
        .expect("admin.md has the section")
        .split("\n## ")
        .next()
        .unwrap();
    let script = std::fs::read_to_string(SCRIPT).unwrap();
    let quoted = openssl_commands(section);
    assert_eq!(quoted.len(), 5, "{quoted:#?}");
    assert_eq!(quoted, openssl_commands(&script));
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The recipe's CA, a server certificate for 127.0.0.1 and a client certificate for
/// `alice`; a second CA with a client certificate for `mallory`; and `alice`'s key
/// again in a version 1 certificate from the first CA (`openssl x509 -req` without
/// `-extfile`).
fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let other = dir.path().join("other");
    std::fs::create_dir(&ca).unwrap();
    std::fs::create_dir(&other).unwrap();
    let ca_arg = ca.to_str().unwrap();
    recipe(&["ca", ca_arg]);
    recipe(&["server", ca_arg, "127.0.0.1"]);
    recipe(&["client", ca_arg, "alice"]);
    let other_arg = other.to_str().unwrap();
    recipe(&["ca", other_arg]);
    recipe(&["client", other_arg, "mallory"]);

    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&ca)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    openssl(&[
        "req",
        "-new",
        "-key",
        "alice-key.pem",
        "-subj",
        "/CN=alice",
        "-out",
        "v1.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "v1.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "7",
        "-days",
        "30",
        "-out",
        "v1-cert.pem",
    ]);
    let text = openssl(&["x509", "-in", "v1-cert.pem", "-noout", "-text"]);
    assert!(
        text.contains("Version: 1 (0x0)"),
        "a version 1 certificate:\n{text}"
    );
    Pki { dir }
}

#[test]
fn the_recipes_certificates_pull_over_mutual_tls_and_wrong_ones_are_explained() {
    let pki = pki();
    let ca = pki.path("ca");
    let server = Server::with(Options::default().journalist_tls(
        &ca.join("journalist-cert.pem"),
        &ca.join("journalist-key.pem"),
        Some(&ca.join("ca.pem")),
    ));
    let token = server.add_journalist_file("alice");
    let page = submit(server.addr, vec![Part::text("message", b"over mutual tls")]);
    assert_eq!(page.status, 200, "{}", page.body);

    let url = format!("https://{}", server.journalist);
    let pull = |bundle: &str, client: Option<(&Path, &str)>| {
        let out = pki.path(bundle);
        let mut command = agedrop_command(&["pull", "--server", &url, "--ca-cert"], pki.dir.path());
        command
            .arg(ca.join("ca.pem"))
            .arg("--token-file")
            .arg(&token);
        command.arg("-o").arg(&out);
        if let Some((dir, name)) = client {
            command
                .arg("--client-cert")
                .arg(dir.join(format!("{name}-cert.pem")))
                .arg("--client-key")
                .arg(dir.join(format!("{name}-key.pem")));
        }
        let result = command.output().unwrap();
        (result, out)
    };

    let (out, bundle) = pull("none.tar", None);
    assert_refused(
        &out,
        "the server requires a client certificate (mutual TLS): pass --client-cert and \
         --client-key with the certificate and key the drop's admin made for you",
    );
    assert!(!bundle.exists());

    let (out, bundle) = pull("mallory.tar", Some((&pki.path("other"), "mallory")));
    assert_refused(
        &out,
        "the server refused the client certificate (TLS alert: UnknownCA): it must be \
         signed by the CA the server trusts (journalist.client_ca), unexpired, and made for \
         client authentication (extendedKeyUsage clientAuth): ask the drop's admin for a \
         new one (docs/admin.md, \"Journalist API over TLS\")",
    );
    assert!(!bundle.exists());

    let v1 = ca.join("v1-cert.pem");
    let (out, bundle) = pull("v1.tar", Some((&ca, "v1")));
    assert_refused(
        &out,
        &format!(
            "TLS: {}: an X.509 version 1 certificate, which TLS (rustls) refuses: ask the \
             drop's admin for a version 3 certificate with extensions \
             (deploy/journalist-tls.sh client DIR NAME)",
            v1.display()
        ),
    );
    assert!(!bundle.exists());

    let (out, bundle) = pull("alice.tar", Some((&ca, "alice")));
    ok(&out);
    let opened = agedrop(
        &[
            "open",
            bundle.to_str().unwrap(),
            "-i",
            server.newsroom.identity_file.to_str().unwrap(),
            "-o",
            "opened",
        ],
        pki.dir.path(),
    );
    ok(&opened);
    assert!(files_under(&pki.path("opened"))
        .iter()
        .any(|f| std::fs::read(f).unwrap() == b"over mutual tls"));
}

#[test]
fn serve_refuses_a_version_1_certificate_and_says_what_to_do() {
    let pki = pki();
    let ca = pki.path("ca");
    let v1 = ca.join("v1-cert.pem");
    let server = Server::prepare(Options::default().journalist_tls(
        &v1,
        &ca.join("alice-key.pem"),
        Some(&ca.join("ca.pem")),
    ));
    assert_refused(
        &server.refused(),
        &format!(
            "config key `journalist.tls_cert`: {}: an X.509 version 1 certificate, which TLS \
             (rustls) refuses: make a version 3 certificate with extensions \
             (deploy/journalist-tls.sh server DIR HOST)",
            v1.display()
        ),
    );
}

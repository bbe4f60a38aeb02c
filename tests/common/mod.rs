//! The one test harness: a real `agedrop serve` (TCP, Unix sockets, TLS, any config
//! text) killed when its handle drops ([`server`]); a small HTTP/1.1 client over std
//! streams that can stream, trickle, abort and write malformed requests ([`http`]);
//! the CLI through the real binary; bounded waits.
#![allow(dead_code)]

mod database;
mod driver;
mod garage;
mod haproxy;
mod http;
mod server;

#[allow(unused_imports)]
pub use database::{cluster, on_postgres, sqlite_only, Inspector, Value};
#[allow(unused_imports)]
pub use driver::Driver;
#[allow(unused_imports)]
pub use garage::Garage;
#[allow(unused_imports)]
pub use haproxy::HaProxy;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use server::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;

pub const BIN: &str = env!("CARGO_BIN_EXE_agedrop");

/// How long a test waits for something the server does by itself (a temp file
/// removed, a log line written): far longer than it takes, so the wait never flakes.
pub const SOON: Duration = Duration::from_secs(10);

/// Waits until `cond` holds, checking every 20 ms; fails naming `what` once `limit`
/// has passed. Use it wherever a test would sleep and then assert.
pub fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fails loudly when an external tool is missing: tests never skip silently.
pub fn require_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "this test needs `{name}` (Debian package installed by scripts/test); run scripts/test"
        )
    })
}

/// tests/interop: independent age implementations (TypeScript `age-encryption`, the
/// C2SP vectors in `cctv-age`) run under Node by small scripts.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// `node tests/interop/SCRIPT ARGS` with `input` on standard input, to completion;
/// fails loudly when Node or the pinned packages are missing.
pub fn node(script: &str, args: &[&str], input: &[u8]) -> Output {
    let node = require_tool("node");
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/age-encryption").is_dir()
            && dir.join("node_modules/cctv-age").is_dir(),
        "tests/interop/node_modules is missing: run scripts/test (or `npm ci` in tests/interop)"
    );
    let mut child = Command::new(node)
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Like [`node`], asserting success; its standard output.
pub fn node_ok(script: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let out = node(script, args, input);
    assert!(
        out.status.success(),
        "node {script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `agedrop ARGS` in `dir` with no standard input, ready for `.env(..)` or `.spawn()`.
pub fn agedrop_command(args: &[&str], dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(dir).stdin(Stdio::null());
    command
}

/// `agedrop ARGS` in `dir`, to completion.
pub fn agedrop(args: &[&str], dir: &Path) -> Output {
    agedrop_command(args, dir).output().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the command succeeded; returns its standard error (the human report).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        stderr(out),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr(out)
}

/// Asserts the command was refused: exit status 1, and its standard error is exactly
/// the one line `agedrop: error: MESSAGE`.
pub fn assert_refused(out: &Output, message: &str) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(1), "must be refused: {text}");
    assert_eq!(text, format!("agedrop: error: {message}\n"));
}

/// Like [`assert_refused`], for an error whose end is left open: it starts with
/// exactly `agedrop: error: PREFIX`.
pub fn assert_refusal_starts(out: &Output, prefix: &str) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(1), "must be refused: {text}");
    assert!(
        text.starts_with(&format!("agedrop: error: {prefix}")),
        "expected an error starting {prefix:?}, got:\n{text}"
    );
}

/// A child process that is killed and reaped when the guard drops, so a failing assert
/// never leaves a process running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A newsroom key pair made with the age crate, with its identity file on disk.
pub struct Newsroom {
    pub identity: age::x25519::Identity,
    pub recipient: String,
    pub identity_file: PathBuf,
}

impl Newsroom {
    /// The newsroom of an existing identity file.
    pub fn load(identity_file: &Path) -> Self {
        let text = std::fs::read_to_string(identity_file).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .expect("an age identity");
        let identity: age::x25519::Identity = line.parse().unwrap();
        Newsroom {
            recipient: identity.to_public().to_string(),
            identity,
            identity_file: identity_file.to_owned(),
        }
    }

    pub fn new(dir: &Path) -> Self {
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        let identity_file = dir.join("newsroom-key.txt");
        std::fs::write(
            &identity_file,
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
        Newsroom {
            identity,
            recipient,
            identity_file,
        }
    }

    /// Decrypts with the age crate; panics if the file is not whole and authentic.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Vec<u8> {
        age::decrypt(&self.identity, ciphertext).expect("decrypts with the age crate")
    }

    /// Decrypts with Debian's `age` binary.
    pub fn decrypt_with_cli(&self, path: &Path) -> Vec<u8> {
        let age = require_tool("age");
        let out = Command::new(age)
            .arg("-d")
            .arg("-i")
            .arg(&self.identity_file)
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age -d failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

/// Encrypts `text` to the given recipients with the age crate.
pub fn encrypt_to(recipients: &[&str], text: &[u8]) -> Vec<u8> {
    let parsed: Vec<age::x25519::Recipient> =
        recipients.iter().map(|r| r.parse().unwrap()).collect();
    let encryptor =
        age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    writer.write_all(text).unwrap();
    writer.finish().unwrap();
    out
}

/// Deterministic pseudo-random bytes (xorshift), so large bodies need no fixtures.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Mounts a tmpfs with these options on `dir` (needs root): a small filesystem the
/// test can fill. The caller unmounts it.
pub fn mount_tmpfs(dir: &Path, options: &str) {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "this test mounts a small tmpfs and needs root: {}",
        stderr(&out)
    );
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The names in a directory (not recursive), sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A tar of regular files, made with the crate's own writer.
pub fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = agedrop::bundle::TarWriter::new(Vec::new());
    for (name, data) in entries {
        tar.entry(name, data).unwrap();
    }
    tar.finish().unwrap()
}

/// The entries of a bundle (name, data), read with the crate's own strict reader;
/// panics if the bundle is cut short (no end blocks).
pub fn untar(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert!(
        data.ends_with(&agedrop::bundle::TAR_END),
        "the bundle has no end blocks: cut short"
    );
    let mut tar = agedrop::bundle::TarReader::new(data);
    let mut out = Vec::new();
    while let Some(entry) = tar.next_entry().unwrap() {
        let bytes = agedrop::bundle::read_small(&mut tar, &entry, u64::MAX).unwrap();
        out.push((entry.name, bytes));
    }
    out
}

/// Writes to `out` the bundle `bundle` with its file item's ciphertext replaced by
/// `sealed` (its size in the manifest to match): for items another age made. Returns
/// the new manifest.
pub fn replace_file_item(bundle: &Path, sealed: Vec<u8>, out: &Path) -> serde_json::Value {
    let mut entries = untar(&std::fs::read(bundle).unwrap());
    let mut manifest: serde_json::Value = serde_json::from_slice(&entries[0].1).unwrap();
    let item = manifest["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["kind"] == "file")
        .unwrap();
    item["size"] = sealed.len().into();
    let blob = item["blob"].as_str().unwrap().to_owned();
    entries[0].1 = serde_json::to_vec(&manifest).unwrap();
    entries.iter_mut().find(|(n, _)| *n == blob).unwrap().1 = sealed;
    let borrowed: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    std::fs::write(out, tar(&borrowed)).unwrap();
    manifest
}

/// The manifest of a reply bundle: one reply per (source id, file name in the bundle).
pub fn reply_manifest(replies: &[(&str, &str)]) -> String {
    serde_json::json!({
        "format": agedrop::bundle::REPLY_FORMAT,
        "version": agedrop::bundle::REPLY_VERSION,
        "replies": replies.iter().map(|(source, file)| {
            serde_json::json!({ "source_id": source, "file": file })
        }).collect::<Vec<_>>(),
    })
    .to_string()
}

/// A reply bundle as `agedrop reply` makes it: one reply per (source id, ciphertext).
pub fn reply_bundle(replies: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let names: Vec<String> = (0..replies.len())
        .map(|n| format!("replies/{n}.age"))
        .collect();
    let listed: Vec<(&str, &str)> = replies
        .iter()
        .zip(&names)
        .map(|((source, _), name)| (*source, name.as_str()))
        .collect();
    let manifest = reply_manifest(&listed);
    let mut entries: Vec<(&str, &[u8])> =
        vec![(agedrop::bundle::REPLY_MANIFEST, manifest.as_bytes())];
    for (name, (_, data)) in names.iter().zip(replies) {
        entries.push((name, data));
    }
    tar(&entries)
}

/// A certificate authority for TLS tests; its certificate is written to `DIR/NAME.pem`.
pub fn test_ca(dir: &Path, name: &str) -> rcgen::Issuer<'static, rcgen::KeyPair> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    Issuer::new(params, key)
}

/// A certificate for `names` signed by `issuer`: (`DIR/NAME.pem`, `DIR/NAME.key`).
pub fn test_cert(
    dir: &Path,
    name: &str,
    names: &[&str],
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, issuer)
        .unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

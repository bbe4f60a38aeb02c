//! agedrop's own age encoder (src/crypto/seal.rs), through the public surface
//! (`Recipients::seal`, `Recipients::seal_bytes`), against three independent decoders:
//! the `age` crate, the Go `age` CLI (Debian's `age`, X25519 only: version 1.1 has no
//! post-quantum type) and the TypeScript `age-encryption` (tests/interop), for X25519
//! and post-quantum recipients, at the payload's chunk boundaries and the encoder's
//! batch boundaries (a file starts with a one-chunk batch and grows it to sixteen
//! chunks); and every one of them refuses a file whose last chunk was cut off.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use agedrop::crypto::{Identities, NewsroomIdentity, OpenError, Recipients};
use common::*;

const CHUNK: usize = 64 * 1024;
const KIB: usize = 1024;

/// Around one chunk, around the encoder's batches (the first of one chunk, grown to
/// sixteen once the file outgrows it: written out at every sixteenth chunk), and a
/// few MiB and odd bytes.
const SIZES: [usize; 14] = [
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    2 * CHUNK,
    2 * CHUNK + 1,
    3 * CHUNK + 1,
    16 * CHUNK - 1,
    16 * CHUNK,
    16 * CHUNK + 1,
    32 * CHUNK + 1,
    2 * 1024 * KIB + 7,
    3 * 1024 * KIB + 12_345,
];

/// `plain` sealed as a stream, in writes that straddle chunks, and in one piece.
fn both_ways(recipients: &Recipients, plain: &[u8]) -> [Vec<u8>; 2] {
    let mut sealer = recipients.seal(Vec::new()).unwrap();
    for piece in plain.chunks(40_000) {
        sealer.write_all(piece).unwrap();
    }
    [
        sealer.finish().unwrap(),
        recipients.seal_bytes(plain).unwrap(),
    ]
}

/// `age -d -i KEY` of `sealed`.
fn age_cli(key: &Path, sealed: &[u8], dir: &Path) -> std::process::Output {
    let file = dir.join("sealed.age");
    std::fs::write(&file, sealed).unwrap();
    Command::new(require_tool("age"))
        .arg("-d")
        .arg("-i")
        .arg(key)
        .arg(&file)
        .output()
        .unwrap()
}

fn written(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A newsroom with an X25519 identity file (the age crate's), in a temporary directory.
fn x25519_newsroom() -> (tempfile::TempDir, Newsroom, Recipients) {
    let dir = tempfile::tempdir().unwrap();
    let newsroom = Newsroom::new(dir.path());
    let recipients = Recipients::parse(&[&newsroom.recipient]).unwrap();
    (dir, newsroom, recipients)
}

#[test]
fn x25519_files_open_in_the_age_crate_the_go_cli_and_age_encryption() {
    let (dir, newsroom, recipients) = x25519_newsroom();
    let key = newsroom.identity_file.to_str().unwrap();
    for size in SIZES {
        let plain = noise(size, size as u64);
        for sealed in both_ways(&recipients, &plain) {
            assert!(newsroom.decrypt(&sealed) == plain, "age crate, size {size}");
            let cli = age_cli(&newsroom.identity_file, &sealed, dir.path());
            assert!(
                cli.status.success(),
                "age CLI, size {size}: {}",
                stderr(&cli)
            );
            assert!(cli.stdout == plain, "age CLI, size {size}");
            assert!(
                node_ok("decrypt.mjs", &[key], &sealed) == plain,
                "age-encryption, size {size}"
            );
        }
    }
}

#[test]
fn post_quantum_files_open_in_the_age_crate_and_age_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let newsroom = NewsroomIdentity::generate_pq();
    let key = written(
        dir.path(),
        "pq-key.txt",
        &newsroom.to_identity_file(&["test"]),
    );
    let recipients = Recipients::parse(&[newsroom.recipient()]).unwrap();
    // The age crate's decryptor, with agedrop's mlkem768x25519 identity.
    let identities = Identities::read(std::slice::from_ref(&key)).unwrap();
    for size in SIZES {
        let plain = noise(size, size as u64 + 1);
        for sealed in both_ways(&recipients, &plain) {
            let mut opened = Vec::new();
            identities
                .decrypt(&sealed[..], &mut opened, u64::MAX)
                .unwrap();
            assert!(opened == plain, "age crate, size {size}");
            assert!(
                node_ok("decrypt.mjs", &[key.to_str().unwrap()], &sealed) == plain,
                "age-encryption, size {size}"
            );
        }
    }
}

/// Where the payload starts: after the MAC line and the 16-byte nonce.
fn payload_start(sealed: &[u8]) -> usize {
    let mac = sealed.windows(4).position(|w| w == b"--- ").unwrap();
    mac + sealed[mac..].iter().position(|&b| b == b'\n').unwrap() + 1 + 16
}

#[test]
fn a_file_whose_last_chunk_is_cut_off_is_refused_by_every_decoder() {
    let (dir, newsroom, recipients) = x25519_newsroom();
    let key = newsroom.identity_file.to_str().unwrap();
    // Ten chunks, the last of 5 bytes. Cut off the last, or everything after the
    // first four: the file then ends on a full chunk not marked last.
    let plain = noise(9 * CHUNK + 5, 9);
    let [sealed, _] = both_ways(&recipients, &plain);
    let start = payload_start(&sealed);
    assert_eq!(sealed.len(), start + 9 * (CHUNK + 16) + 5 + 16);
    for cut in [sealed.len() - (5 + 16), start + 4 * (CHUNK + 16)] {
        let short = &sealed[..cut];
        let crate_error = age::decrypt(&newsroom.identity, short).unwrap_err();
        assert_eq!(
            crate_error.to_string(),
            "age file is truncated",
            "age crate, cut at {cut}"
        );
        let cli = age_cli(&newsroom.identity_file, short, dir.path());
        assert_eq!(cli.status.code(), Some(1));
        assert!(
            stderr(&cli).starts_with("age: error: unexpected EOF\n"),
            "age CLI: {}",
            stderr(&cli)
        );
        let ts = node("decrypt.mjs", &[key], short);
        assert!(!ts.status.success());
        assert!(
            String::from_utf8_lossy(&ts.stderr).contains("\nError: invalid tag\n"),
            "age-encryption: {}",
            String::from_utf8_lossy(&ts.stderr)
        );
    }
    // agedrop's own reader refuses it too.
    let identities = Identities::read(std::slice::from_ref(&newsroom.identity_file)).unwrap();
    let short = &sealed[..sealed.len() - (5 + 16)];
    assert!(matches!(
        identities.decrypt_on_two_cores(short, &mut Vec::new(), u64::MAX),
        Err(OpenError::Undecryptable)
    ));
}

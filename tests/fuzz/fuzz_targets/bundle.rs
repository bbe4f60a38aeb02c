//! `agedrop open` on a hostile bundle: the strict tar reader, the manifest and the
//! decryption of each entry, into a fresh output directory. Checks: no panic, and no
//! half-written file (`.incoming…`) is left whatever the bundle holds.
#![no_main]

use std::path::{Path, PathBuf};

use agedrop::crypto::Identities;
use agedrop::offline;
use libfuzzer_sys::fuzz_target;

/// The identity the seed corpus was encrypted to (tests/fuzz/corpus/README.md), so
/// that mutated bundles reach the decrypting code, not only the tar reader.
const IDENTITY: &str = "AGE-SECRET-KEY-1QC5MTKU2RE6T34V09Y5RQGLYQ6G3CYTC2E3LMGVZKUY4NEPZMRSS7ZJJK3";

struct Harness {
    dir: tempfile::TempDir,
    identities: Identities,
}

thread_local! {
    // Identities are not Sync; libFuzzer runs inputs on one thread.
    static HARNESS: Harness = Harness::new();
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("agedrop-fuzz-")
            .tempdir_in(if Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "/tmp"
            })
            .unwrap();
        let key = dir.path().join("key.txt");
        std::fs::write(&key, format!("{IDENTITY}\n")).unwrap();
        let identities = Identities::read(&[key]).unwrap();
        Harness { dir, identities }
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fuzz_target!(|input: &[u8]| HARNESS.with(|harness| run(harness, input)));

fn run(harness: &Harness, input: &[u8]) {
    let bundle = harness.dir.path().join("bundle.tar");
    let out = harness.dir.path().join("out");
    std::fs::write(&bundle, input).unwrap();
    let _ = offline::check_whole(&bundle);
    let _ = offline::open(&bundle, &harness.identities, &out);
    let mut written = Vec::new();
    files(&out, &mut written);
    for file in &written {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            !name.starts_with(".incoming"),
            "a half-written file was left: {name}"
        );
        assert!(file.starts_with(&out));
    }
    let _ = std::fs::remove_dir_all(&out);
}

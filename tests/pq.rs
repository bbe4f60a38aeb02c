//! Post-quantum recipients (`age1pq1…`, src/crypto/pq.rs) proven against independent
//! implementations: the C2SP age test vectors (npm `cctv-age`) and the TypeScript age
//! (`age-encryption`), both pinned in tests/interop/package-lock.json and run under
//! Node by the small scripts there (scripts/test runs `npm ci` first). Also: the
//! hardware-key types age-encryption encrypts to, and the refusal of lists that mix
//! post-quantum and classical keys.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use agedrop::crypto::{Identities, Recipients, Refusal};
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// One C2SP vector: its header lines and the age file after them.
struct Vector {
    name: String,
    expect: String,
    payload: Option<String>,
    identities: Vec<String>,
    armored: bool,
    file: Vec<u8>,
}

fn read_vectors(dir: &Path) -> Vec<Vector> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let split = data
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("a blank line after the header");
        let header = std::str::from_utf8(&data[..split]).unwrap();
        let mut fields: HashMap<&str, Vec<&str>> = HashMap::new();
        for line in header.lines() {
            let (key, value) = line.split_once(": ").expect("key: value");
            fields.entry(key).or_default().push(value);
        }
        let one = |key: &str| fields.get(key).map(|v| v[0].to_owned());
        out.push(Vector {
            name: path.file_name().unwrap().to_str().unwrap().to_owned(),
            expect: one("expect").expect("an expect line"),
            payload: one("payload"),
            identities: fields
                .get("identity")
                .map(|v| v.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
            armored: one("armored").as_deref() == Some("yes"),
            file: data[split + 2..].to_vec(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Vectors the `age` crate's header parser opens on purpose: it still reads legacy
/// stanzas without a short final body line (its own testkit test says so). Neither is
/// a post-quantum vector; if the crate changes, this test notices.
const AGE_CRATE_LEGACY: [&str; 2] = ["stanza_missing_body", "stanza_missing_final_line"];

/// Every X25519 and `mlkem768x25519` vector of the C2SP suite that is a binary age
/// file (agedrop reads no armor: items and bundles are binary) opens or fails exactly
/// as its `expect` line says, through an identity file read by `Identities::read`:
/// the streaming decryptor, the two-core one (src/crypto/payload.rs), and the failure
/// category (`Identities::refusal`); plaintext, and for a payload failure the
/// plaintext released before it, must match the vector's hash.
#[test]
fn every_x25519_and_hybrid_c2sp_vector_opens_or_fails_as_it_expects() {
    let dir = tempfile::tempdir().unwrap();
    let vectors_dir = dir.path().join("vectors");
    let written = node_ok("vectors.mjs", &[vectors_dir.to_str().unwrap()], b"");
    let vectors = read_vectors(&vectors_dir);
    assert_eq!(
        String::from_utf8_lossy(&written).trim(),
        vectors.len().to_string()
    );

    let mut checked = 0;
    let mut hybrid = 0;
    let mut skipped_armored = Vec::new();
    for v in &vectors {
        if v.identities.is_empty() {
            continue; // scrypt-only vectors: agedrop never decrypts with a passphrase.
        }
        if v.armored {
            skipped_armored.push(v.name.clone());
            continue;
        }
        let key = dir.path().join(format!("{}.key", v.name));
        std::fs::write(&key, v.identities.join("\n") + "\n").unwrap();
        let identities = Identities::read(&[key]).unwrap_or_else(|e| panic!("{}: {e}", v.name));

        if AGE_CRATE_LEGACY.contains(&v.name.as_str()) {
            assert_eq!(v.expect, "header failure");
            assert_eq!(identities.refusal(&v.file[..]), None, "{}", v.name);
            checked += 1;
            continue;
        }
        let expected = match v.expect.as_str() {
            "success" => None,
            "no match" => Some(Refusal::NoMatch),
            "HMAC failure" => Some(Refusal::HeaderMac),
            "header failure" => Some(Refusal::Header),
            "payload failure" => Some(Refusal::Payload),
            other => panic!("{}: unknown expect {other:?}", v.name),
        };
        assert_eq!(
            identities.refusal(&v.file[..]),
            expected,
            "{}: expect {}",
            v.name,
            v.expect
        );

        let mut streamed = Vec::new();
        let result = identities.decrypt(&v.file[..], &mut streamed, u64::MAX);
        let mut two_cores = Vec::new();
        let result2 = identities.decrypt_on_two_cores(&v.file[..], &mut two_cores, u64::MAX);
        if expected.is_none() {
            let hash = v
                .payload
                .as_deref()
                .expect("a success vector has a payload hash");
            assert!(result.is_ok(), "{}: {:?}", v.name, result.err());
            assert!(result2.is_ok(), "{}: {:?}", v.name, result2.err());
            assert_eq!(sha256_hex(&streamed), hash, "{}", v.name);
            assert_eq!(sha256_hex(&two_cores), hash, "{} (two cores)", v.name);
        } else {
            assert!(result.is_err(), "{}: opened, expect {}", v.name, v.expect);
            assert!(result2.is_err(), "{}: opened on two cores", v.name);
            if let (Some(Refusal::Payload), Some(hash)) = (expected, &v.payload) {
                assert_eq!(
                    &sha256_hex(&streamed),
                    hash,
                    "{}: released plaintext",
                    v.name
                );
            }
        }
        checked += 1;
        if v.identities
            .iter()
            .any(|i| i.starts_with("AGE-SECRET-KEY-PQ-"))
        {
            hybrid += 1;
        }
    }
    // The suite as pinned (cctv-age 0.2.0): 18 binary hybrid vectors, 85 binary ones in
    // all with an identity; the armored ones test ASCII armor, which agedrop never reads.
    assert_eq!(hybrid, 18, "hybrid vectors checked");
    assert_eq!(checked, 85, "vectors checked");
    assert_eq!(skipped_armored.len(), 31, "{skipped_armored:?}");
}

/// `agedrop keygen --pq -o FILE`: a 0600 identity file in keygen's style; the
/// recipient on standard output.
fn keygen_pq(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("pq-key.txt");
    let out = agedrop(&["keygen", "--pq", "-o", key.to_str().unwrap()], dir);
    ok(&out);
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(recipient.starts_with("age1pq1"), "{recipient}");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&key).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "# agedrop newsroom identity: keep it on the offline machine"
    );
    assert_eq!(lines[1], format!("# public key: {recipient}"));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-PQ-1"));
    assert_eq!(lines.len(), 3);
    (key, recipient)
}

/// A server whose only recipient is a `keygen --pq` one.
fn pq_server() -> (Server, PathBuf, String) {
    let keys = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen_pq(keys.path());
    let server = Server::with(Options {
        recipients: Some(vec![recipient.clone()]),
        ..Options::default()
    });
    let kept = server.dir.path().join("pq-key.txt");
    std::fs::copy(&key, &kept).unwrap();
    (server, kept, recipient)
}

/// A source sends a message and a file; the journalist pulls a bundle.
fn submit_and_pull(server: &Server, message: &str, file: Vec<u8>) -> PathBuf {
    let mut source = Browser::new(server.addr);
    source.get("/submit");
    let page = source.submit(vec![
        Part::text("message", message.as_bytes()),
        Part::file("doc.bin", file),
    ]);
    assert_eq!(page.status, 200, "{}", page.body);
    let token = server.add_journalist_file("alice");
    let bundle = server.dir.path().join("b1.tar");
    ok(&server.pull(&token, &bundle));
    bundle
}

/// Every regular file under `dir`, with its contents.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let data = std::fs::read(&path).unwrap();
            out.push((path, data));
        }
    }
    out
}

/// `agedrop open BUNDLE -i KEY` then `where` (`-o DIR` or `--desk DIR`).
fn open_bundle(server: &Server, bundle: &Path, key: &Path, target: [&str; 2]) {
    let mut args = vec![
        "open",
        bundle.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
    ];
    args.extend(target);
    ok(&agedrop(&args, server.dir.path()));
}

/// A real server with an `age1pq1…` recipient: every blob it stored (items and their
/// metadata) opens in age-encryption with the `keygen --pq` identity file, and
/// carries only `mlkem768x25519` stanzas; `open -o` and the desk open the bundle.
#[test]
fn what_a_pq_server_stores_opens_in_age_encryption_and_in_agedrop() {
    let (server, key, _) = pq_server();
    let file = noise(3 * 1024 * 1024 + 5, 77);
    let bundle = submit_and_pull(&server, "a message under PQ", file.clone());

    let blobs = server.blobs();
    assert_eq!(blobs.len(), 4, "two items and their metadata");
    let mut opened = Vec::new();
    for blob in &blobs {
        let sealed = std::fs::read(blob).unwrap();
        let header_end = sealed.windows(4).position(|w| w == b"\n---").unwrap();
        let header = String::from_utf8_lossy(&sealed[..header_end]);
        // Only the recipient's stanza: agedrop's encoder adds no "grease" stanza.
        let stanzas: Vec<&str> = header.lines().filter(|l| l.starts_with("-> ")).collect();
        assert_eq!(stanzas.len(), 1, "{header}");
        assert!(stanzas[0].starts_with("-> mlkem768x25519 "), "{header}");
        opened.push(node_ok("decrypt.mjs", &[key.to_str().unwrap()], &sealed));
    }
    assert!(
        opened.contains(&file),
        "the file opens whole in age-encryption"
    );
    assert!(opened.iter().any(|p| p == b"a message under PQ"));
    let metadata: Vec<Value> = opened
        .iter()
        .filter_map(|p| serde_json::from_slice(p.trim_ascii_end()).ok())
        .collect();
    assert_eq!(metadata.len(), 2, "both metadata records are JSON");

    let out = server.dir.path().join("opened");
    open_bundle(&server, &bundle, &key, ["-o", out.to_str().unwrap()]);
    let written = files_under(&out);
    assert!(
        written.iter().any(|(_, d)| *d == file),
        "open -o writes the file"
    );
    let desk = server.dir.path().join("desk");
    open_bundle(&server, &bundle, &key, ["--desk", desk.to_str().unwrap()]);
    assert!(files_under(&desk.join("sources"))
        .iter()
        .any(|(_, d)| *d == file));
}

/// A file age-encryption encrypted to a `keygen --pq` recipient (multi-chunk, put in
/// a real bundle in place of the item the server sealed) opens to the exact bytes in
/// `open -o` and in the desk's import, both through the two-core payload path.
#[test]
fn a_file_age_encryption_sealed_to_a_keygen_pq_recipient_opens_in_agedrop() {
    let (server, key, recipient) = pq_server();
    let bundle = submit_and_pull(&server, "hello", b"placeholder".to_vec());

    let plain = noise(5 * 1024 * 1024 + 3, 31);
    let sealed = node_ok("encrypt.mjs", &[&recipient], &plain);
    assert!(contains(&sealed, b"\n-> mlkem768x25519 "));
    let ts_bundle = server.dir.path().join("ts.tar");
    let manifest = replace_file_item(&bundle, sealed, &ts_bundle);

    let out = server.dir.path().join("opened");
    open_bundle(&server, &ts_bundle, &key, ["-o", out.to_str().unwrap()]);
    assert!(
        files_under(&out).iter().any(|(_, d)| *d == plain),
        "open -o writes age-encryption's plaintext exactly"
    );
    let desk = server.dir.path().join("desk");
    open_bundle(
        &server,
        &ts_bundle,
        &key,
        ["--desk", desk.to_str().unwrap()],
    );
    let label = manifest["sources"][0]["label"].as_str().unwrap();
    let imported = std::fs::read(desk.join("sources").join(label).join("0002-doc.bin")).unwrap();
    assert!(
        imported == plain,
        "the desk imports age-encryption's plaintext exactly"
    );
}

/// The exact refusal for a list that mixes post-quantum and classical recipients.
const MIXED: &str = "post-quantum (age1pq1…, age1tagpq1…) and classical (age1…, age1tag1…) recipients cannot be mixed: a file encrypted to both is no safer than its classical key; use only one kind";

#[test]
fn a_config_mixing_post_quantum_and_classical_recipients_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let (_, pq) = keygen_pq(keys.path());
    let classical = Newsroom::new(keys.path()).recipient;
    let server = Server::prepare(Options {
        recipients: Some(vec![classical, pq]),
        ..Options::default()
    });
    assert_refused(
        &server.refused(),
        &format!("config key `newsroom.recipients[1]`: not a usable age recipient: {MIXED}"),
    );
}

/// A post-quantum newsroom cannot yet reply to a source whose key is X25519 (the
/// server still gives sources X25519 keys): `agedrop reply` says why, exactly.
#[test]
fn a_pq_newsroom_replying_to_an_x25519_source_is_refused_with_the_reason() {
    // A source from before the newsroom switched to post-quantum keys has an X25519
    // reply key; a reply with the newsroom's new PQ identity would mix the two.
    let server = Server::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = keygen_pq(keys.path());
    let bundle = submit_and_pull(&server, "hello", b"x".to_vec());
    let entries = untar(&std::fs::read(&bundle).unwrap());
    let manifest: Value = serde_json::from_slice(&entries[0].1).unwrap();
    let label = manifest["sources"][0]["label"].as_str().unwrap();
    let message = server.dir.path().join("reply.txt");
    std::fs::write(&message, "thanks").unwrap();
    let out = agedrop(
        &[
            "reply",
            bundle.to_str().unwrap(),
            "-i",
            key.to_str().unwrap(),
            "--source",
            label,
            "--message",
            message.to_str().unwrap(),
            "-o",
            server.dir.path().join("reply.tar").to_str().unwrap(),
        ],
        server.dir.path(),
    );
    assert_refusal_starts(&out, "");
    assert!(
        stderr(&out).contains(&format!("recipient 1 is not usable: {MIXED}")),
        "{}",
        stderr(&out)
    );
}

/// The stanza lines of an age file's header: (type, arguments, body length).
fn stanzas(sealed: &[u8]) -> Vec<(String, Vec<String>, usize)> {
    use base64::Engine;
    let end = sealed.windows(4).position(|w| w == b"\n---").unwrap();
    let header = std::str::from_utf8(&sealed[..end]).unwrap();
    let mut out = Vec::new();
    for block in header.split("\n-> ").skip(1) {
        let mut lines = block.lines();
        let mut args = lines.next().unwrap().split(' ').map(str::to_owned);
        let kind = args.next().unwrap();
        let body: String = lines.collect();
        let body = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .unwrap();
        out.push((kind, args.collect(), body.len()));
    }
    out
}

fn b64_len(arg: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(arg)
        .unwrap()
        .len()
}

/// `age1tag1…`/`age1tagpq1…`: age-encryption has no software identity for them (they
/// are for hardware plugins), so what is proven here is that its recipient encodings
/// parse in `Recipients::parse`; that the stanzas agedrop (through the age crate)
/// writes for them have the type, argument count, argument and body lengths of the
/// stanzas age-encryption writes for the same recipient; and that their tags are the
/// spec's HKDF-Extract formula as computed independently by node:crypto.
#[test]
fn hardware_tag_recipients_from_age_encryption_parse_and_get_matching_stanzas() {
    let made: Value = serde_json::from_slice(&node_ok("tag.mjs", &["recipients"], b"")).unwrap();
    assert_eq!(
        made["software_identity"],
        "refused: unrecognized identity type"
    );
    for (name, kind, enc_len) in [("tag", "p256tag", 65), ("tagpq", "mlkem768p256tag", 1153)] {
        let recipient = made[name]["recipient"].as_str().unwrap();
        let theirs = &made[name]["stanzas"][0];
        assert_eq!(theirs["type"], kind);
        let their_args: Vec<&str> = theirs["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            their_args.iter().map(|a| b64_len(a)).collect::<Vec<_>>(),
            [4, enc_len]
        );

        let recipients = Recipients::parse(&[recipient]).unwrap();
        assert_eq!(recipients.to_strings(), [recipient]);
        assert_eq!(recipients.is_post_quantum(), name == "tagpq");
        let ours = stanzas(&recipients.seal_bytes(b"x").unwrap());
        assert_eq!(ours.len(), 1);
        let (our_kind, our_args, body) = &ours[0];
        assert_eq!(our_kind, kind);
        assert_eq!(
            our_args.iter().map(|a| b64_len(a)).collect::<Vec<_>>(),
            [4, enc_len]
        );
        assert_eq!(*body as u64, theirs["body_len"].as_u64().unwrap());
        assert_eq!(*body, 32);

        let input = serde_json::json!([[our_kind, our_args[0], our_args[1]]]).to_string();
        let tags: Vec<String> =
            serde_json::from_slice(&node_ok("tag.mjs", &["tags", recipient], input.as_bytes()))
                .unwrap();
        assert_eq!(tags, [our_args[0].clone()], "{kind}: the spec's tag");
    }
}

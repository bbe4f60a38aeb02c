//! Property tests of the parsers agedrop owns, in the normal suite (issue 4): the
//! multipart upload path under any network split, code normalisation, the config
//! parser and the bundle tar reader. The same parsers have fuzz targets in tests/fuzz/.

mod common;

use std::sync::Arc;

use agedrop::bundle::TarReader;
use agedrop::code::{SourceCode, CODE_WORDS};
use agedrop::config::Limits;
use agedrop::desks::Desks;
use agedrop::submission::{Intake, SubmissionError};
use agedrop::{Config, Recipients, Store};
use bytes::Bytes;
use common::{eventually, tar};
use proptest::prelude::*;

const BOUNDARY: &str = "XyZboundary";

/// A part of a generated upload.
#[derive(Clone, Debug)]
enum Part {
    Message(String),
    File { name: String, data: Vec<u8> },
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        "\\PC{1,300}".prop_map(Part::Message),
        (
            // Control characters are refused in part headers (see tests/hostile.rs).
            "[^\"\\\\\\p{Cc}]{1,40}",
            proptest::collection::vec(any::<u8>(), 0..3000)
        )
            .prop_map(|(name, data)| Part::File { name, data }),
    ]
}

/// A piece of a multipart body: framing that parses, or bytes that may not.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(format!("--{BOUNDARY}\r\n").into_bytes()),
        Just(format!("--{BOUNDARY}--\r\n").into_bytes()),
        Just(b"\r\n".to_vec()),
        Just(b"Content-Disposition: form-data; name=\"message\"\r\n\r\n".to_vec()),
        Just(
            b"Content-Disposition: form-data; name=\"files\"; filename=\"f.txt\"\r\n\r\n".to_vec()
        ),
        Just(b"Content-Disposition: form-data; name=\"files\"; filename=\"\"\r\n\r\n".to_vec()),
        Just(b"Content-Type: text/plain\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..200),
        "\\PC{0,100}".prop_map(String::into_bytes),
    ]
}

/// A form body: csrf first, then the parts (at most one message, as the form has).
fn body(token: &str, parts: &[Part]) -> Vec<u8> {
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n")
            .into_bytes();
    for part in parts {
        match part {
            Part::Message(text) => {
                body.extend_from_slice(
                    format!(
                        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(text.as_bytes());
            }
            Part::File { name, data } => {
                body.extend_from_slice(
                    format!(
                        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(data);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

struct Upload {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    intake: Intake,
    identity: age::x25519::Identity,
    runtime: tokio::runtime::Runtime,
    /// Whether the upload got past the checks that refuse it up front.
    started: std::cell::Cell<bool>,
}

impl Upload {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::create(
                &dir.path().join("data"),
                &agedrop::config::Storage::Local,
                &agedrop::config::Database::Sqlite,
            )
            .unwrap(),
        );
        let identity = age::x25519::Identity::generate();
        let recipients = Recipients::parse(&[identity.to_public().to_string()]).unwrap();
        let limits = Limits {
            max_files: 4,
            min_free_bytes: 0,
            max_submissions_per_minute: u32::MAX,
            ..Limits::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        Upload {
            intake: Intake::new(Arc::clone(&store), Desks::newsroom(recipients), limits),
            _dir: dir,
            store,
            identity,
            runtime,
            started: std::cell::Cell::new(false),
        }
    }

    /// Runs `body` through the intake in reads of the given sizes (cycled). On success,
    /// returns what the sealed temp files decrypt to: (items' plaintexts, metadata).
    #[allow(clippy::type_complexity)]
    fn receive(
        &self,
        body: &[u8],
        reads: &[usize],
    ) -> Result<(Vec<Vec<u8>>, Vec<serde_json::Value>), SubmissionError> {
        let mut chunks = Vec::new();
        let mut rest = body;
        for &size in reads.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let take = size.clamp(1, rest.len());
            chunks.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(
                &rest[..take],
            )));
            rest = &rest[take..];
        }
        let received = self.runtime.block_on(self.intake.receive(
            futures_util::stream::iter(chunks),
            BOUNDARY.to_owned(),
            |token| token == b"token",
            None,
            |_| self.started.set(true),
        ));
        let tmp = self.store.dir().join("tmp");
        let outcome = received.map(|received| {
            let items = received.items;
            let mut plain = Vec::new();
            let mut metas = Vec::new();
            for entry in std::fs::read_dir(&tmp).unwrap() {
                let ciphertext = std::fs::read(entry.unwrap().path()).unwrap();
                let text = age::decrypt(&self.identity, &ciphertext).expect("decrypts");
                match serde_json::from_slice::<serde_json::Value>(&text) {
                    Ok(meta) if meta.get("version").is_some() => metas.push(meta),
                    _ => plain.push(text),
                }
            }
            assert_eq!(plain.len(), items.len());
            drop(items);
            (plain, metas)
        });
        // A failed upload's temp files are unlinked on the blocking pool, a moment after
        // receive returns: give them a little while, then insist.
        eventually(
            "nothing is left in tmp/ once the items are dropped",
            std::time::Duration::from_secs(5),
            || std::fs::read_dir(&tmp).unwrap().count() == 0,
        );
        outcome
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every part arrives whole and exact, with its name in the encrypted metadata,
    /// however the body is cut into reads.
    #[test]
    fn uploads_survive_any_network_split(
        message in proptest::option::of("\\PC{1,300}"),
        files in proptest::collection::vec(part(), 0..4),
        reads in proptest::collection::vec(1usize..700, 1..8),
    ) {
        let mut parts: Vec<Part> = message.into_iter().map(Part::Message).collect();
        parts.extend(files.into_iter().filter(|p| matches!(p, Part::File { .. })));
        prop_assume!(!parts.is_empty());
        let upload = Upload::new();
        let (mut plain, metas) = upload
            .receive(&body("token", &parts), &reads)
            .expect("a well-formed upload is accepted");
        let mut sent: Vec<Vec<u8>> = parts
            .iter()
            .map(|p| match p {
                Part::Message(text) => text.clone().into_bytes(),
                Part::File { data, .. } => data.clone(),
            })
            .collect();
        plain.sort();
        sent.sort();
        prop_assert_eq!(plain, sent);
        for part in &parts {
            if let Part::File { name, .. } = part {
                prop_assert!(metas.iter().any(|m| m["filename"] == name.as_str()));
            }
        }
    }

    /// After a valid csrf field, any sequence of boundaries, part headers, line ends and
    /// random bytes: never a panic, never a temp file left, and whatever is accepted
    /// decrypts.
    #[test]
    fn arbitrary_bodies_never_panic_or_leave_files(
        fragments in proptest::collection::vec(fragment(), 0..40),
        reads in proptest::collection::vec(1usize..300, 1..4),
    ) {
        let upload = Upload::new();
        let mut raw = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntoken\r\n"
        )
        .into_bytes();
        for fragment in &fragments {
            raw.extend_from_slice(fragment);
        }
        let _ = upload.receive(&raw, &reads);
    }

    /// A wrong token stores nothing, whatever follows.
    #[test]
    fn a_wrong_token_is_refused_before_anything_is_sealed(
        token in "[a-z]{0,20}",
        parts in proptest::collection::vec(part(), 1..3),
    ) {
        prop_assume!(token != "token");
        let upload = Upload::new();
        let result = upload.receive(&body(&token, &parts), &[4096]);
        prop_assert!(matches!(result, Err(SubmissionError::Csrf)));
        prop_assert!(!upload.started.get(), "nothing was started for a forged upload");
    }

    /// A code typed with any case, separators and stray punctuation around it normalises
    /// to the code.
    #[test]
    fn codes_normalise_whatever_the_typing(
        separators in proptest::collection::vec(prop_oneof![
            Just(" "), Just("  "), Just("-"), Just(" - "), Just("\t"), Just("\n"), Just(", ")
        ], CODE_WORDS - 1),
        upper in proptest::collection::vec(any::<bool>(), 64),
        lead in "[ \t]{0,3}",
        trail in "[ .\t]{0,3}",
    ) {
        let code = SourceCode::generate();
        let mut typed = lead.clone();
        for (i, word) in code.expose().split(' ').enumerate() {
            if i > 0 {
                typed.push_str(separators[i - 1]);
            }
            for (j, c) in word.chars().enumerate() {
                if upper[(i * 8 + j) % upper.len()] {
                    typed.push(c.to_ascii_uppercase());
                } else {
                    typed.push(c);
                }
            }
        }
        typed.push_str(&trail);
        let back = SourceCode::normalise(&typed);
        prop_assert!(back.is_some(), "{typed:?} normalises");
        let back = back.unwrap();
        prop_assert_eq!(back.expose(), code.expose());
    }

    /// Any text: no panic; what normalises is 8 lowercase words and stays as it is.
    #[test]
    fn code_normalisation_is_total_and_idempotent(text in "\\PC{0,120}") {
        if let Some(code) = SourceCode::normalise(&text) {
            prop_assert_eq!(code.expose().split(' ').count(), CODE_WORDS);
            let again = SourceCode::normalise(code.expose()).unwrap();
            prop_assert_eq!(again.expose(), code.expose());
        }
    }

    /// Limits in any range: accepted as given, or refused with an error that names the
    /// key.
    #[test]
    fn config_limits_are_taken_or_refused_by_name(
        key in prop_oneof![
            Just("max_submission_bytes"), Just("max_files"), Just("max_message_chars"),
            Just("max_connections"), Just("max_concurrent_uploads"),
            Just("header_read_timeout_secs"), Just("max_submissions_per_minute"),
            Just("max_reply_bytes"), Just("derivation_queue"),
        ],
        value in prop_oneof![Just(0u64), 1u64..100, 1u64..u64::from(u32::MAX), any::<u64>()],
    ) {
        let text = format!(
            "data_dir = \"data\"\n[source]\nlisten = \"127.0.0.1:0\"\n[journalist]\nlisten = \"127.0.0.1:0\"\n[newsroom]\nrecipients = [\"age1r8alvv47qqa4j8lwkstrmqxjjeuecvvzm9pm9nevszvkgglv0v4qv005jk\"]\n[limits]\n{key} = {value}\n"
        );
        match Config::parse(&text, std::path::Path::new("/etc/agedrop")) {
            Ok(config) => {
                let rendered = serde_json::to_value(&config.limits).unwrap();
                prop_assert_eq!(rendered[key].as_u64(), Some(value));
            }
            Err(err) => {
                let message = err.to_string();
                prop_assert!(
                    message.contains(key) || message.contains("TOML"),
                    "{message}"
                );
            }
        }
    }

    /// Arbitrary TOML-ish text: the parser answers, never panics.
    #[test]
    fn config_parser_is_total(text in "(\\PC|\n){0,400}") {
        let _ = Config::parse(&text, std::path::Path::new("/etc/agedrop"));
    }

    /// What our writer makes, our reader reads back exactly.
    #[test]
    fn tar_entries_round_trip(
        entries in proptest::collection::vec(
            ("[a-z0-9]{1,20}(\\.[a-z]{1,4})?", proptest::collection::vec(any::<u8>(), 0..2000)),
            0..6,
        ),
    ) {
        let named: Vec<(&str, &[u8])> =
            entries.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        let archive = tar(&named);
        let mut reader = TarReader::new(&archive[..]);
        for (name, data) in &entries {
            let entry = reader.next_entry().unwrap().expect("an entry");
            prop_assert_eq!(&entry.name, name);
            let mut read = Vec::new();
            std::io::Read::read_to_end(&mut reader.entry(), &mut read).unwrap();
            prop_assert_eq!(&read, data);
        }
        prop_assert!(reader.next_entry().unwrap().is_none());
    }

    /// A valid archive with any byte changed or cut short: an error or a clean read,
    /// never a panic, and never more data than the archive holds.
    #[test]
    fn damaged_tar_is_read_safely(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut archive = tar(&[("items/a.age", data.as_slice()), ("b", b"bb")]);
        let i = at.index(archive.len());
        archive[i] = byte;
        archive.truncate(cut.index(archive.len() + 1).max(1));
        let mut reader = TarReader::new(&archive[..]);
        let mut total = 0usize;
        while let Ok(Some(_)) = reader.next_entry() {
            let mut read = Vec::new();
            if std::io::Read::read_to_end(&mut reader.entry(), &mut read).is_err() {
                break;
            }
            total += read.len();
        }
        prop_assert!(total <= archive.len());
    }
}

/// The identity the fuzz corpus bundles are encrypted to is a valid age key (the
/// bundle fuzz target reads it at start-up).
#[test]
fn fuzz_identity_matches_its_documented_recipient() {
    let source = include_str!("fuzz/fuzz_targets/bundle.rs");
    let secret = source
        .split('"')
        .find(|s| s.starts_with("AGE-SECRET-KEY-1"))
        .unwrap();
    let identity: age::x25519::Identity = secret.parse().unwrap();
    assert_eq!(
        identity.to_public().to_string(),
        "age1r8alvv47qqa4j8lwkstrmqxjjeuecvvzm9pm9nevszvkgglv0v4qv005jk"
    );
}

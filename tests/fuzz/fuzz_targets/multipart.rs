//! The upload path as the server runs it: a multipart body, split into network reads
//! at fuzzer-chosen points, through `Intake::receive` into sealed temp files. Checks:
//! no panic, at most `max_files` files plus one message, and nothing left in `tmp/`
//! once the result is dropped (a failed or abandoned upload leaves no file behind).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use agedrop::config::Limits;
use agedrop::desks::Desks;
use agedrop::submission::Intake;
use agedrop::{Recipients, Store};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const BOUNDARY: &str = "B";
const TOKEN: &[u8] = b"t";
/// A fixed X25519 recipient: the fuzzer never decrypts, it only checks the sealing.
const RECIPIENT: &str = "age1r8alvv47qqa4j8lwkstrmqxjjeuecvvzm9pm9nevszvkgglv0v4qv005jk";

struct Harness {
    intake: Intake,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // tmpfs where there is one: every sealed item is fsynced.
        let dir = tempfile::Builder::new()
            .prefix("agedrop-fuzz-")
            .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "/tmp"
            })
            .unwrap();
        let store = Arc::new(Store::create(&dir.path().join("data"), &agedrop::config::Storage::Local, &agedrop::config::Database::Sqlite).unwrap());
        let limits = Limits {
            max_submission_bytes: 256 * 1024,
            max_files: 4,
            max_message_chars: 1000,
            min_free_bytes: 0,
            max_submissions_per_minute: u32::MAX,
            ..Limits::default()
        };
        let recipients = Recipients::parse(&[RECIPIENT]).unwrap();
        let intake = Intake::new(Arc::clone(&store), Desks::newsroom(recipients), limits);
        Harness {
            intake,
            store,
            _dir: dir,
        }
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&split_seed, body)) = input.split_first() else {
        return;
    };
    let harness = harness();
    // Network reads of 1..=64 bytes, sizes drawn from the first input byte.
    let mut chunks = Vec::new();
    let mut state = u32::from(split_seed) | 1;
    let mut rest = body;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let take = ((state >> 16) as usize % 64 + 1).min(rest.len());
        chunks.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(
            &rest[..take],
        )));
        rest = &rest[take..];
    }
    let stream = futures_util::stream::iter(chunks);
    // A runtime per input, shut down at the end: the sealing threads of a failed upload
    // finish after receive returns, and must not outlive the input (LeakSanitizer
    // would see their memory as leaked while they exit).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let result = runtime.block_on(
        harness
            .intake
            .receive(
                stream,
                BOUNDARY.to_owned(),
                |token| token == TOKEN,
                None,
                |_| (),
            ),
    );
    if let Ok(received) = &result {
        let items = &received.items;
        assert!(!items.is_empty());
        assert!(
            items.len() <= 4 + 1,
            "at most max_files files and one message"
        );
    }
    drop(result);
    // Temp files of a failed upload are unlinked on the runtime's blocking pool, a
    // moment after receive returns: give them a little while, then insist.
    let tmp = harness.store.dir().join("tmp");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(&tmp).unwrap().count() > 0 {
        assert!(
            Instant::now() < deadline,
            "an upload left temp files behind"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    runtime.shutdown_timeout(Duration::from_secs(10));
});

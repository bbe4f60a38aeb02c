//! Issue 4: faults survived and load held. kill -9 at random points of many uploads, a
//! full disk, floods of idle connections and slow uploads, the global submission rate.
//! Each test prints its figures (run with `--nocapture`); docs/RELIABILITY.md has them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use common::*;

/// A small xorshift generator: the crash test prints its seed so a failure can be
/// replayed with `AGEDROP_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// POSTs a multipart body in `piece`-byte writes with `pause` between them. `None` if
/// the connection failed before a whole response came back.
fn send_slowly(
    addr: SocketAddr,
    form: &Form,
    body: &[u8],
    piece: usize,
    pause: Duration,
) -> Option<Response> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    stream
        .write_all(&form.submit_head(addr, Framing::Length(body.len())))
        .ok()?;
    for chunk in body.chunks(piece) {
        stream.write_all(chunk).ok()?;
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    try_read_response(&mut stream)
}

/// One upload of the crash test: a message naming it, and a file of `size` bytes of
/// noise seeded with its number (none if `size` is `None`).
#[derive(Clone, Debug)]
struct Upload {
    n: u64,
    size: Option<usize>,
}

impl Upload {
    fn message(&self) -> Vec<u8> {
        format!("upload {}", self.n).into_bytes()
    }

    fn file_name(&self) -> String {
        format!("u{}.bin", self.n)
    }

    fn file(&self) -> Option<Vec<u8>> {
        self.size.map(|size| noise(size, self.n))
    }

    /// Sends it at about 64 MiB/s, so that a kill can land anywhere in it. True if the
    /// server answered 200 (the source was told it is stored).
    fn send(&self, addr: SocketAddr) -> bool {
        let Some(form) = try_form(addr) else {
            return false;
        };
        let mut parts = vec![Part::text("message", &self.message())];
        if let Some(file) = self.file() {
            parts.push(Part::file(self.file_name(), file));
        }
        let body = multipart(&with_csrf(&form, parts));
        send_slowly(addr, &form, &body, 64 * 1024, Duration::from_millis(1))
            .is_some_and(|page| page.status == 200)
    }
}

/// What the crash test found of each upload so far.
#[derive(Default)]
struct Found {
    /// Item ids already decrypted and matched.
    verified: BTreeSet<String>,
    /// Per upload number: (message found, file found).
    uploads: BTreeMap<u64, (bool, bool)>,
}

/// Checks the data directory after a restart: no temp files, rows and blobs agree,
/// every new item decrypts to exactly what one upload sent, no upload is partly
/// stored, and every acknowledged upload is there.
fn check_after_restart(
    server: &Server,
    sent: &BTreeMap<u64, Upload>,
    acknowledged: &BTreeSet<u64>,
    found: &mut Found,
) {
    assert_eq!(server.temp_files(), 0, "temp files are gone after start-up");
    let rows = server.items();
    let row_ids: BTreeSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut blob_ids = BTreeSet::new();
    let mut meta_ids = BTreeSet::new();
    for blob in server.blobs() {
        let name = blob.file_name().unwrap().to_str().unwrap().to_owned();
        if let Some(id) = name.strip_suffix(".meta.age") {
            meta_ids.insert(id.to_owned());
        } else if let Some(id) = name.strip_suffix(".age") {
            blob_ids.insert(id.to_owned());
        }
    }
    assert_eq!(
        row_ids, blob_ids,
        "every row has its blob and every blob its row"
    );
    assert_eq!(
        row_ids, meta_ids,
        "every row has its metadata blob, and only rows"
    );

    for row in &rows {
        if found.verified.contains(&row.id) {
            continue;
        }
        let (plain, meta) = server.open_item(row);
        if meta["kind"] == "message" {
            let text = String::from_utf8(plain).expect("a message is text");
            let n: u64 = text
                .strip_prefix("upload ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("an item that no upload sent: {text:?}"));
            assert_eq!(text.into_bytes(), sent[&n].message());
            found.uploads.entry(n).or_default().0 = true;
        } else {
            let name = meta["filename"].as_str().unwrap();
            let n: u64 = name
                .strip_prefix('u')
                .and_then(|n| n.strip_suffix(".bin"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a file that no upload sent: {name}"));
            assert!(
                Some(plain) == sent[&n].file(),
                "upload {n}'s file is stored whole and exact"
            );
            found.uploads.entry(n).or_default().1 = true;
        }
        found.verified.insert(row.id.clone());
    }
    for (n, (message, file)) in &found.uploads {
        assert!(
            *message,
            "upload {n}: its file was stored without its message"
        );
        assert_eq!(
            *file,
            sent[n].size.is_some(),
            "upload {n} is stored whole or not at all"
        );
    }
    for n in acknowledged {
        assert!(
            found.uploads.contains_key(n),
            "upload {n} was acknowledged but is missing after the restart"
        );
    }
}

/// Upload numbers of round r's back-to-back tiny uploads start at HAMMER_BASE × (r + 1).
const HAMMER_BASE: u64 = 1_000_000;

#[test]
fn kill_9_at_random_points_of_concurrent_uploads_loses_and_half_keeps_nothing() {
    const KILLS: usize = 50;
    let seed = std::env::var("AGEDROP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test: seed {seed} (replay with AGEDROP_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let mut options = Options::default();
    options
        .limits
        .push(("max_submission_bytes", (16 * 1024 * 1024).to_string()));
    options
        .limits
        .push(("max_submissions_per_minute", "100000".into()));
    let mut server = Server::with(options);
    let sizes = [
        None,
        Some(0),
        Some(1),
        Some(1000),
        Some(100_000),
        Some(1 << 20),
        Some(3 << 20),
        Some(8 << 20),
    ];

    let mut sent = BTreeMap::new();
    let mut acknowledged = BTreeSet::new();
    let mut found = Found::default();
    let mut restart_times = Vec::new();
    let mut next = 1;
    for round in 0..KILLS {
        let uploads: Vec<Upload> = (0..1 + rng.below(4))
            .map(|_| {
                let n = next;
                next += 1;
                let size = sizes[rng.below(sizes.len() as u64) as usize]
                    .map(|s| s + rng.below(4096) as usize);
                let upload = Upload { n, size };
                sent.insert(n, upload.clone());
                upload
            })
            .collect();
        let addr = server.addr;
        let threads: Vec<_> = uploads
            .into_iter()
            .map(|upload| std::thread::spawn(move || (upload.n, upload.send(addr))))
            .collect();
        // Besides, tiny uploads back to back until the server dies: most of their time
        // is the commit (fsyncs, rename, transaction), so kills land inside it too.
        let first = HAMMER_BASE * (round as u64 + 1);
        let hammer = std::thread::spawn(move || {
            let mut done = Vec::new();
            for n in first.. {
                let upload = Upload { n, size: None };
                let stored = upload.send(addr);
                done.push((upload, stored));
                if !stored {
                    break;
                }
            }
            done
        });
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        server.kill9();
        for thread in threads {
            let (n, stored) = thread.join().unwrap();
            if stored {
                acknowledged.insert(n);
            }
        }
        for (upload, stored) in hammer.join().unwrap() {
            if stored {
                acknowledged.insert(upload.n);
            }
            sent.insert(upload.n, upload);
        }
        let started = Instant::now();
        server.restart();
        restart_times.push(started.elapsed());
        check_after_restart(&server, &sent, &acknowledged, &mut found);
    }
    // The server still takes uploads after all that.
    let last = Upload {
        n: next,
        size: Some(12345),
    };
    sent.insert(last.n, last.clone());
    assert!(last.send(server.addr), "an upload after the last restart");
    acknowledged.insert(last.n);
    server.restart();
    check_after_restart(&server, &sent, &acknowledged, &mut found);

    let orphans = std::fs::read_dir(server.data().join("orphans"))
        .map(|dir| dir.count())
        .unwrap_or(0);
    let unacknowledged_but_stored = found
        .uploads
        .keys()
        .filter(|n| !acknowledged.contains(n))
        .count();
    restart_times.sort();
    eprintln!(
        "crash test: {KILLS} kills survived; {} uploads started, {} acknowledged and all \
         present, {} stored but cut off before the answer (whole), {} items verified, {} \
         orphaned blob files kept aside; restart (kill to listening) median {:?}, max {:?}",
        sent.len(),
        acknowledged.len(),
        unacknowledged_but_stored,
        found.verified.len(),
        orphans,
        restart_times[restart_times.len() / 2],
        restart_times.last().unwrap()
    );
    assert!(
        acknowledged.len() > KILLS / 4,
        "enough uploads completed between kills for the test to mean something"
    );
    assert!(
        acknowledged.len() + 10 < sent.len(),
        "enough uploads were cut off for the test to mean something"
    );
}

/// Free bytes on the filesystem holding `dir`.
fn free_bytes(dir: &std::path::Path) -> u64 {
    let stat = rustix::fs::statvfs(dir).unwrap();
    stat.f_bavail * stat.f_frsize
}

#[test]
fn a_full_disk_refuses_cleanly_keeps_earlier_items_and_recovers() {
    const DISK: u64 = 48 * 1024 * 1024;
    let server = Server::with(Options {
        data_tmpfs: Some(DISK),
        ..Options::default()
    });
    let data = server.data();
    let first = noise(300_000, 1);
    let page = submit(
        server.addr,
        vec![
            Part::text("message", b"before the disk filled"),
            Part::file("before.bin", first.clone()),
        ],
    );
    assert_eq!(page.status, 200);

    // Something else fills the disk until only ~12 MiB are left.
    let filler = data.join("filler");
    let leave = 12 * 1024 * 1024;
    let fill = free_bytes(&data) - leave;
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();

    // 24 MiB do not fit: the write fails with ENOSPC mid-upload, past the first 8 MiB,
    // where a large blob is written direct by its own thread (src/store/direct.rs).
    let page = submit_chunked(
        server.addr,
        vec![
            Part::text("message", b"does not fit"),
            Part::file("big.bin", noise(24 * 1024 * 1024, 2)),
        ],
    );
    assert_eq!(page.status, 507, "{}", page.body);
    assert!(
        page.body.contains("no room for new uploads"),
        "the page says why: {}",
        page.body
    );
    eventually("the temp files are removed", SOON, || {
        server.temp_files() == 0
    });
    let items = server.items();
    assert_eq!(items.len(), 2, "only the earlier submission is stored");
    for item in &items {
        let (plain, meta) = server.open_item(item);
        if meta["kind"] == "file" {
            assert!(plain == first, "the earlier file is intact");
        }
    }
    assert_eq!(
        get(server.addr, "/").status,
        200,
        "the server keeps serving"
    );
    assert_eq!(
        get(server.addr, "/submit").status,
        200,
        "and hands out forms"
    );

    // Space is freed: uploads work again.
    std::fs::remove_file(&filler).unwrap();
    let again = noise(16 * 1024 * 1024, 3);
    let page = submit_chunked(
        server.addr,
        vec![
            Part::text("message", b"after space was freed"),
            Part::file("again.bin", again.clone()),
        ],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let items = server.items();
    assert_eq!(items.len(), 4);
    assert!(items.iter().any(|item| server.open_item(item).0 == again));
}

#[test]
fn the_free_space_floor_refuses_uploads_before_the_disk_is_full() {
    const DISK: u64 = 48 * 1024 * 1024;
    const FLOOR: u64 = 16 * 1024 * 1024;
    let server = Server::with(Options {
        data_tmpfs: Some(DISK),
        limits: vec![("min_free_bytes", FLOOR.to_string())],
        ..Options::default()
    });
    let data = server.data();
    let page = submit(server.addr, vec![Part::text("message", b"plenty of room")]);
    assert_eq!(page.status, 200);

    // Leave 20 MiB: above the floor, but a 8 MiB upload would cross it.
    let filler = data.join("filler");
    let fill = free_bytes(&data) - 20 * 1024 * 1024;
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();
    let page = submit(
        server.addr,
        vec![Part::file("crosses.bin", noise(8 * 1024 * 1024, 4))],
    );
    assert_eq!(page.status, 507, "refused by the announced size");
    assert!(page.body.contains("no room for new uploads"));
    // Streamed without a length, the upload is refused at the first space check.
    let page = submit_chunked(
        server.addr,
        vec![Part::file("streams.bin", noise(24 * 1024 * 1024, 5))],
    );
    assert_eq!(page.status, 507);
    eventually("the temp files are removed", SOON, || {
        server.temp_files() == 0
    });
    assert_eq!(server.items().len(), 1);

    // A small upload that stays above the floor is still taken.
    let page = submit(server.addr, vec![Part::text("message", b"small")]);
    assert_eq!(page.status, 200);
    // Below the floor nothing is taken, however small.
    let fill_more = free_bytes(&data) - (FLOOR - 1024 * 1024);
    std::fs::write(data.join("filler2"), vec![0u8; fill_more as usize]).unwrap();
    let page = submit(server.addr, vec![Part::text("message", b"tiny")]);
    assert_eq!(page.status, 507);
    assert!(
        page.body.contains("no room for new uploads"),
        "{}",
        page.body
    );
    assert_eq!(server.items().len(), 2);
    assert_eq!(get(server.addr, "/").status, 200, "pages still work");
    std::fs::remove_file(data.join("filler2")).unwrap();
    let page = submit(server.addr, vec![Part::text("message", b"room again")]);
    assert_eq!(page.status, 200);
}

#[test]
fn submissions_per_minute_are_limited_for_the_whole_site() {
    let mut options = Options::default();
    options
        .limits
        .push(("max_submissions_per_minute", "3".into()));
    let server = Server::with(options);
    for i in 0..3 {
        let page = submit(
            server.addr,
            vec![Part::text("message", format!("number {i}").as_bytes())],
        );
        assert_eq!(page.status, 200, "submission {i} is within the budget");
    }
    let page = submit(
        server.addr,
        vec![Part::file("fourth.txt", b"over the budget".to_vec())],
    );
    assert_eq!(page.status, 503);
    assert!(
        page.body.contains("receiving many submissions"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Nothing was stored"));
    assert_eq!(page.header("retry-after"), Some("60"));
    eventually("the temp files are removed", SOON, || {
        server.temp_files() == 0
    });
    assert_eq!(
        server.items().len(),
        3,
        "the refused submission left nothing"
    );
    assert_eq!(server.sources(), 3);
    // Reading pages is not limited.
    assert_eq!(get(server.addr, "/").status, 200);
    assert_eq!(get(server.addr, "/submit").status, 200);
}

/// Peak and current resident memory of a process, in KiB, from /proc.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Raises this process's open-file limit: the flood holds over a thousand sockets.
fn allow_many_sockets() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).unwrap();
}

#[test]
fn floods_of_idle_connections_slow_uploads_and_slowloris_leave_the_site_answering() {
    const IDLE: usize = 1000;
    const SLOW_UPLOADS: usize = 200;
    /// The landing page answers within this during the flood (the test's bound; the
    /// measured p99 with a load tool is in docs/RELIABILITY.md).
    const BOUND: Duration = Duration::from_secs(2);
    allow_many_sockets();
    let mut options = Options::default();
    options.limits.extend([
        ("max_concurrent_uploads", "256".to_owned()),
        ("max_submissions_per_minute", "100000".to_owned()),
        ("header_read_timeout_secs", "60".to_owned()),
    ]);
    let server = Server::with(options);
    let addr = server.addr;
    let (_, baseline) = memory_kib(server.pid());

    // 200 uploads that send 1 KiB every 200 ms: slow but live.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let forms: Vec<Form> = (0..SLOW_UPLOADS).map(|_| form(addr)).collect();
    let uploads: Vec<_> = forms
        .into_iter()
        .enumerate()
        .map(|(i, form)| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let file = noise(64 * 1024, i as u64 + 1);
                let body = multipart(&with_csrf(&form, vec![Part::file("slow.bin", file)]));
                let mut stream = partial_submit(addr, &form, &body, 0);
                stream
                    .set_read_timeout(Some(Duration::from_secs(120)))
                    .unwrap();
                let mut chunks = body.chunks(1024);
                for chunk in chunks.by_ref() {
                    stream.write_all(chunk).unwrap();
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                for chunk in chunks {
                    stream.write_all(chunk).unwrap();
                }
                try_read_response(&mut stream).map(|page| page.status)
            })
        })
        .collect();

    // A slowloris: request headers one byte at a time.
    let slowloris = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sent = 0;
            let mut stream = TcpStream::connect(addr).unwrap();
            let head = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
            for byte in head.bytes().chain(std::iter::repeat(b'a')) {
                if stop.load(std::sync::atomic::Ordering::Relaxed)
                    || stream.write_all(&[byte]).is_err()
                {
                    break;
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            sent
        })
    };

    // Every upload is past its headers and streaming (so its request is in flight)
    // before the idle flood arrives.
    eventually(
        "the slow uploads all stream",
        Duration::from_secs(60),
        || server.temp_files() >= SLOW_UPLOADS,
    );

    // 1,000 connections that send nothing. The server takes them in (closing the
    // oldest idle ones at its connection cap) until none waits to be accepted.
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    eventually(
        "the server has taken in the idle flood",
        Duration::from_secs(60),
        || server.accept_queue() == 0,
    );

    let mut latencies = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        let page = get(addr, "/");
        latencies.push(started.elapsed());
        assert_eq!(page.status, 200);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (rss, _) = memory_kib(server.pid());
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = *latencies.last().unwrap();

    // Idle connections gave their slots to the landing page requests; count them.
    let mut closed = 0;
    for stream in &mut idle {
        stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        if matches!(stream.read(&mut [0u8; 1]), Ok(0)) {
            closed += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses: Vec<Option<u16>> = uploads.into_iter().map(|t| t.join().unwrap()).collect();
    let header_bytes = slowloris.join().unwrap();
    let (_, peak) = memory_kib(server.pid());
    eprintln!(
        "flood: {IDLE} idle connections ({closed} closed to make room), {SLOW_UPLOADS} slow \
         uploads, slowloris ({header_bytes} header bytes sent); landing page p50 {p50:?} \
         p99 {p99:?} max {max:?} over {} requests; server RSS {} KiB during the flood \
         (baseline peak {} KiB), peak {} KiB",
        latencies.len(),
        rss,
        baseline,
        peak
    );
    // A wall-clock bound on purpose (latency under load is what this test measures);
    // the measured p99 is milliseconds, so 2 s holds on a loaded CI machine too.
    assert!(p99 <= BOUND, "landing page p99 {p99:?} is over {BOUND:?}");
    assert!(
        statuses.iter().all(|s| *s == Some(200)),
        "every slow upload completed and was stored: {statuses:?}"
    );
    assert_eq!(server.items().len(), SLOW_UPLOADS);
    // Two derivations of 8 MiB (the test's Argon2 setting) are part of it.
    assert!(
        peak < 128 * 1024,
        "memory stays bounded: peak {peak} KiB with {IDLE} idle connections and {SLOW_UPLOADS} uploads"
    );
    assert!(
        closed > 0,
        "the cap was reached and idle connections made room"
    );
    drop(idle);
    assert_eq!(get(addr, "/").status, 200);
}

//! Connection-level limits through a real listener: upload slots, header deadline,
//! connection cap, and connections whose client stops reading.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// Everything the server sends until it closes the connection; fails if it is left
/// open for 10 s instead (the read then ends in a timeout, not an end or a reset).
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut all = Vec::new();
    let read = stream.read_to_end(&mut all);
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the server closed the connection instead of leaving it open: {read:?}"
    );
    all
}

#[test]
fn upload_slots_are_capped_and_freed() {
    let mut options = Options::default();
    options.limits.push(("max_concurrent_uploads", "1".into()));
    let server = Server::with(options);
    let form = form(server.addr);
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("a.bin", noise(4 * 1024 * 1024, 1))],
    ));
    let mut holder = partial_submit(server.addr, &form, &body, body.len() / 2);
    eventually("the first upload streams", SOON, || server.temp_files() > 0);

    let page = submit(server.addr, vec![Part::text("message", b"second")]);
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("try again"));
    assert!(page.header("content-security-policy").is_some());

    holder.write_all(&body[body.len() / 2..]).unwrap();
    assert_eq!(read_response(&mut holder).status, 200);
    let page = submit(server.addr, vec![Part::text("message", b"third")]);
    assert_eq!(page.status, 200, "the slot was given back");
}

#[test]
fn slow_headers_are_cut_off() {
    let mut options = Options::default();
    options
        .limits
        .push(("header_read_timeout_secs", "1".into()));
    let server = Server::with(options);
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    // One byte every 400 ms: the whole head would take 3.6 s, past the 1 s deadline.
    for b in b"st: x\r\n\r\n" {
        std::thread::sleep(Duration::from_millis(400));
        if slow.write_all(&[*b]).is_err() {
            break;
        }
    }
    let rest = read_until_closed(&mut slow);
    assert_eq!(String::from_utf8_lossy(&rest), "", "cut off without a page");
    assert_eq!(
        get(server.addr, "/").status,
        200,
        "others are served meanwhile"
    );
}

#[test]
fn open_connections_are_capped_and_idle_ones_make_room() {
    let mut options = Options::default();
    options.limits.push(("max_connections", "2".into()));
    // Without making room, a new request would wait for an idle connection's header
    // deadline: 60 s, far beyond the bound asserted below.
    options
        .limits
        .push(("header_read_timeout_secs", "60".into()));
    let server = Server::with(options);
    let form = form(server.addr);
    let idle_sockets = server.settled_sockets();
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("slow.bin", noise(64 * 1024, 9))],
    ));
    // Two uploads in flight hold both slots: a third connection waits.
    let mut busy: Vec<TcpStream> = (0..2)
        .map(|_| partial_submit(server.addr, &form, &body, 100))
        .collect();
    eventually("the server holds both uploads", SOON, || {
        server.sockets() == idle_sockets + 2
    });
    let mut third = TcpStream::connect(server.addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    // Nothing can show that an answer will never come; 800 ms without one, while a
    // free slot would answer in a few, is the evidence.
    assert!(
        third.read(&mut buf).is_err(),
        "a third connection waits while two uploads are in flight"
    );
    // An upload that finishes gives its slot to the waiting connection.
    busy[0].write_all(&body[100..]).unwrap();
    assert_eq!(
        read_response(&mut busy[0]).status,
        200,
        "the upload is stored"
    );
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let response = read_response(&mut third);
    assert_eq!(response.status, 200, "served once a slot is free");
    drop(busy);
    eventually("the finished connections are closed", SOON, || {
        server.sockets() == idle_sockets
    });

    // Connections without a request in flight give way: the oldest is closed. They
    // connect one after the other, so which is oldest is certain.
    let mut idle: Vec<TcpStream> = Vec::new();
    for n in 1..=2 {
        idle.push(TcpStream::connect(server.addr).unwrap());
        eventually("the idle connection is accepted", SOON, || {
            server.sockets() == idle_sockets + n
        });
    }
    let started = Instant::now();
    assert_eq!(get(server.addr, "/").status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a new request does not wait for an idle connection's 60 s header deadline"
    );
    idle[0]
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert!(
        matches!(idle[0].read(&mut buf), Ok(0)),
        "the oldest idle connection was closed to make room"
    );
    // Only as many as needed: the younger one is still open and can be used.
    idle[1]
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    idle[1]
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(read_response(&mut idle[1]).status, 200);
}

#[test]
fn a_client_that_never_reads_is_dropped_after_the_idle_timeout() {
    let mut options = Options::default();
    options.limits.push(("idle_body_timeout_secs", "2".into()));
    let server = Server::with(options);
    let idle_sockets = server.settled_sockets();
    let mut greedy = TcpStream::connect(server.addr).unwrap();
    greedy
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = b"GET /submit HTTP/1.1\r\nHost: x\r\n\r\n";
    let count = 20_000;
    let mut sent = 0;
    for _ in 0..count {
        if greedy.write_all(request).is_err() {
            break;
        }
        sent += 1;
    }
    eventually(
        "the server drops the connection that stopped reading",
        SOON,
        || server.sockets() == idle_sockets,
    );
    // Bounds the read: had the socket been left open, it would end in a timeout.
    let all = read_until_closed(&mut greedy);
    let answered = String::from_utf8_lossy(&all)
        .matches("HTTP/1.1 200")
        .count();
    assert!(
        answered < sent,
        "the stalled connection was dropped ({answered} of {sent} answered)"
    );
    assert_eq!(get(server.addr, "/").status, 200);
}

#[test]
fn a_small_form_that_trickles_is_cut_off_at_the_header_deadline() {
    let mut options = Options::default();
    options
        .limits
        .push(("header_read_timeout_secs", "2".into()));
    let server = Server::with(options);
    let mut browser = Browser::new(server.addr);
    browser.get("/login");
    let csrf = browser.csrf.clone().unwrap();
    let body = form_body(&csrf, &[("code", &"a".repeat(300))]);
    let mut slow = connect(server.addr);
    slow.write_all(&request_head(
        "POST",
        "/login",
        &[
            ("Host", "x"),
            ("Cookie", &browser.cookie_header()),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", &body.len().to_string()),
        ],
    ))
    .unwrap();
    // One byte every 200 ms: the whole form would take a minute.
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let mut slow = slow.try_clone().unwrap();
        let sent = Arc::clone(&sent);
        std::thread::spawn(move || {
            for byte in body.bytes() {
                if slow.write_all(&[byte]).is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let answer = read_response(&mut slow);
    assert_eq!(answer.status, 408, "{}", answer.body);
    assert!(answer.body.contains("took too long"));
    // No clock needed: the answer came while the form was still trickling.
    let sent_then = sent.load(Ordering::SeqCst);
    assert!(
        sent_then < 100,
        "cut off at the header deadline, not after the body: {sent_then} bytes sent"
    );
    drop(slow);
    sender.join().unwrap();
}

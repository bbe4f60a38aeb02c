//! Retention through the real binary: `[retention]` rules, the site telling sources,
//! and `agedrop retention --as-of DAY` (the clock the test controls) deleting what is
//! due, the way a journalist's delete does.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;

/// The UTC day `offset` days from today, `YYYY-MM-DD`.
fn day(offset: u64) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + offset * 86_400;
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn sweep(server: &Server, as_of: &str) -> String {
    let config = server.dir.path().join("agedrop.toml");
    let out = agedrop(
        &[
            "retention",
            "--config",
            config.to_str().unwrap(),
            "--as-of",
            as_of,
        ],
        server.dir.path(),
    );
    ok(&out);
    String::from_utf8(out.stdout).unwrap()
}

fn deleted(pulled: usize, old: usize, sources: usize) -> String {
    format!(
        "Deleted {pulled} item(s) pulled by every account of their desk, {old} old item(s), \
         {sources} inactive source(s).\n"
    )
}

#[test]
fn retention_deletes_what_is_due_as_of_the_day_it_is_run_and_says_so_to_sources() {
    let server = Server::with(Options {
        retention: vec![
            ("pulled_items_after_days", "7".into()),
            ("items_after_days", "30".into()),
            ("inactive_sources_after_days", "90".into()),
        ],
        ..Options::default()
    });
    let landing = get(server.addr, "/");
    for words in [
        "What you send is deleted from this server 30 days after it arrives.",
        "What you send is deleted from this server 7 days after the newsroom has downloaded it.",
        "If you do not log in for 90 days, your conversation is deleted",
    ] {
        assert!(landing.body.contains(words), "{words}\n{}", landing.body);
    }

    let alice = server.add_journalist_file("alice");
    let bob = server.add_journalist_file("bob");
    let work = server.dir.path();
    let first = submit(server.addr, vec![Part::text("message", b"first")]);
    assert_eq!(first.status, 200);
    ok(&server.pull(&alice, &work.join("a1.tar")));
    assert_eq!(sweep(&server, &day(1)), deleted(0, 0, 0));
    assert_eq!(server.items().len(), 1, "bob has not pulled it yet");

    // Pulled by every account: counted from the first sweep that sees it (day 2).
    ok(&server.pull(&bob, &work.join("b1.tar")));
    assert_eq!(sweep(&server, &day(2)), deleted(0, 0, 0));
    let second = submit(server.addr, vec![Part::text("message", b"second")]);
    assert_eq!(second.status, 200);
    assert_eq!(
        sweep(&server, &day(9)),
        deleted(0, 0, 0),
        "7 days, not yet more"
    );
    let kept = server.items();
    assert_eq!(kept.len(), 2);
    assert_eq!(sweep(&server, &day(10)), deleted(1, 0, 0));
    let left = server.items();
    assert_eq!(left.len(), 1);
    assert_eq!(
        std::fs::read(
            server
                .data()
                .join("blobs")
                .join(format!("{}.age", left[0].id))
        )
        .map(|b| server.newsroom.decrypt(&b))
        .unwrap(),
        b"second",
        "the one nobody pulled twice stays"
    );
    assert_eq!(
        server.blobs().len(),
        2,
        "the deleted item's two blobs are gone"
    );

    // Whatever happened, 30 days after arrival.
    assert_eq!(sweep(&server, &day(31)), deleted(0, 1, 0));
    assert!(server.items().is_empty());
    assert_eq!(server.sources(), 2);

    // Sources that have not logged in for 90 days (counted from the first sweep that
    // knew the rule: day 1 for the first, day 9 for the second) go, with their keys.
    assert_eq!(sweep(&server, &day(95)), deleted(0, 0, 1));
    assert_eq!(sweep(&server, &day(101)), deleted(0, 0, 1));
    assert_eq!(server.sources(), 0);
    let code = code_from(&first);
    let mut source = Browser::new(server.addr);
    let login = source.login(&code);
    assert!(login.body.contains("That did not work"), "{}", login.body);
}

#[test]
fn retention_values_of_zero_or_below_are_refused_by_name() {
    let zero = Server::prepare(Options {
        retention: vec![("items_after_days", "0".into())],
        ..Options::default()
    });
    assert_refused(
        &zero.refused(),
        "config key `retention.items_after_days`: must be at least 1 day; leave the key out to keep forever",
    );
    let negative = Server::prepare(Options {
        retention: vec![("inactive_sources_after_days", "-5".into())],
        ..Options::default()
    });
    let out = negative.refused();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("inactive_sources_after_days"),
        "{}",
        stderr(&out)
    );
    let off = Server::start();
    let config = off.dir.path().join("agedrop.toml");
    let out = agedrop(
        &["retention", "--config", config.to_str().unwrap()],
        off.dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("sets no [retention] rule: nothing is ever deleted by the server itself"),
        "{}",
        stderr(&out)
    );
    assert!(!get(off.addr, "/")
        .body
        .contains("How long this site keeps things"));
}

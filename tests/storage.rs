//! Blobs on an S3-compatible object store (`[storage] kind = "s3"`), against a real
//! Garage started by the test (tests/common/garage.rs) and looked at from outside with
//! curl's SigV4 signing: the whole source → journalist flow, uploads cut short, a crash
//! mid-upload, the store going away and coming back, and the config's refusals.

mod common;

use common::*;

/// A server whose blobs live in `garage`.
fn server_on(garage: &Garage) -> Server {
    Server::with(Options {
        storage: garage.storage_keys(),
        ..Options::default()
    })
}

/// The bucket's keys under `blobs/`.
fn blob_keys(garage: &Garage) -> Vec<String> {
    garage
        .keys()
        .into_iter()
        .filter(|key| key.starts_with("blobs/"))
        .collect()
}

/// Nothing of an upload in progress is left: no unfinished multipart upload and no
/// marker naming one.
fn assert_no_upload_left(garage: &Garage) {
    assert_eq!(garage.unfinished_uploads(), Vec::<String>::new());
    assert!(
        garage.keys().iter().all(|key| !key.starts_with("uploads/")),
        "{:?}",
        garage.keys()
    );
}

#[test]
fn the_whole_flow_keeps_only_ciphertext_in_the_bucket() {
    let garage = Garage::start();
    let server = server_on(&garage);
    let token = server.add_journalist_file("alice");
    let work = server.dir.path();
    // Three parts of a multipart upload (8 MiB each) and an odd tail.
    let big = noise(20 * 1024 * 1024 + 11, 21);

    let mut source = Browser::new(server.addr);
    source.get("/submit");
    let page = source.submit(vec![
        Part::text("message", "Documents attached — ünïcode".as_bytes()),
        Part::file("ledger.pdf", big.clone()),
    ]);
    assert_eq!(page.status, 200, "{}", page.body);
    let code = code_from(&page);

    // The data directory keeps metadata only; the bucket holds each item and its
    // metadata record as stock age files, under the ids the database names.
    assert_eq!(server.blobs(), Vec::<std::path::PathBuf>::new());
    let items = server.items();
    assert_eq!(items.len(), 2);
    let mut expected: Vec<String> = items
        .iter()
        .flat_map(|item| {
            [
                format!("blobs/{}.age", item.id),
                format!("blobs/{}.meta.age", item.id),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(blob_keys(&garage), expected);
    assert_no_upload_left(&garage);
    for item in &items {
        let blob = garage.get(&format!("blobs/{}.age", item.id));
        assert_eq!(blob.len() as i64, item.size);
        assert!(!contains(&blob, b"ledger") && !contains(&blob, b"Documents"));
        let path = work.join(format!("{}.age", item.id));
        std::fs::write(&path, &blob).unwrap();
        let plain = server.newsroom.decrypt_with_cli(&path);
        match item.kind.as_str() {
            "file" => assert!(plain == big, "the file comes back byte for byte"),
            _ => assert_eq!(plain, "Documents attached — ünïcode".as_bytes()),
        }
        let meta = garage.get(&format!("blobs/{}.meta.age", item.id));
        assert_eq!(meta.len() as i64, item.meta_size);
    }

    // pull streams from the bucket; open gives the exact bytes.
    let bundle = work.join("b1.tar");
    ok(&server.pull(&token, &bundle));
    let out = work.join("opened");
    assert!(ok(&server.open_bundle(&bundle, &out)).contains("2 item(s)"));
    let label = server.source_rows()[0].1.clone();
    assert!(std::fs::read(out.join(&label).join("002-ledger.pdf")).unwrap() == big);

    // A reply is stored in the bucket and read from it by the source's inbox, after a
    // fresh login.
    let reply = server.write_reply(&bundle, &label, "Received, thank you.", work);
    ok(&server.with_token(&token, "push", &[reply.to_str().unwrap()]));
    let replies = server.reply_ids();
    assert_eq!(replies.len(), 1);
    assert!(blob_keys(&garage).contains(&format!("blobs/{}.reply.age", replies[0])));
    let mut back = Browser::new(server.addr);
    assert_eq!(back.login(&code).status, 303);
    let inbox = back.get("/inbox");
    assert!(
        inbox.body.contains("Received, thank you."),
        "{}",
        inbox.body
    );

    // `agedrop backup` copies a data directory with its blobs; with the blobs in a
    // bucket it refuses rather than write an archive without them.
    let archive = work.join("backup.tar");
    let refused = agedrop(
        &[
            "backup",
            "--config",
            server.config.to_str().unwrap(),
            "-o",
            archive.to_str().unwrap(),
        ],
        work,
    );
    assert_refusal_starts(
        &refused,
        "the blobs are in an object store ([storage] kind = \"s3\"), which `agedrop backup` does not copy",
    );
    assert!(!archive.exists());

    // Deleting an item removes its objects; deleting the source removes the rest.
    let file = items.iter().find(|i| i.kind == "file").unwrap();
    ok(&server.with_token(&token, "delete", &["--item", &file.id]));
    assert!(!blob_keys(&garage).iter().any(|key| key.contains(&file.id)));
    ok(&server.with_token(&token, "delete", &["--source", &file.source_id]));
    assert_eq!(blob_keys(&garage), Vec::<String>::new());
    assert_no_upload_left(&garage);
}

#[test]
fn an_upload_cut_short_leaves_nothing_in_the_bucket() {
    let garage = Garage::start();
    let server = server_on(&garage);
    let form = form(server.addr);
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("cut.bin", noise(40 * 1024 * 1024, 22))],
    ));
    let stream = partial_submit(server.addr, &form, &body, 30 * 1024 * 1024);
    eventually("parts of the upload reach the bucket", SOON, || {
        !garage.unfinished_uploads().is_empty()
    });
    drop(stream);
    eventually("the unfinished upload is aborted", SOON, || {
        garage.unfinished_uploads().is_empty() && garage.keys() == ["instance"]
    });
    assert_eq!(server.items().len(), 0);
    assert_eq!(get(server.addr, "/").status, 200);
}

#[test]
fn a_crash_mid_upload_is_cleaned_up_when_the_server_starts_again() {
    let garage = Garage::start();
    let mut server = server_on(&garage);
    let done = submit(
        server.addr,
        vec![Part::file("done.bin", noise(9 * 1024 * 1024, 23))],
    );
    assert_eq!(done.status, 200);
    let kept = blob_keys(&garage);
    assert_eq!(kept.len(), 2);

    let form = form(server.addr);
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("partial.bin", noise(30 * 1024 * 1024, 24))],
    ));
    let _stream = partial_submit(server.addr, &form, &body, body.len() - 1000);
    eventually("parts of the upload reach the bucket", SOON, || {
        !garage.unfinished_uploads().is_empty()
    });
    server.kill9();
    assert_eq!(garage.unfinished_uploads().len(), 1, "the crash left it");
    assert!(garage.keys().iter().any(|key| key.starts_with("uploads/")));

    server.restart();
    assert_no_upload_left(&garage);
    assert_eq!(
        blob_keys(&garage),
        kept,
        "the whole item stays; nothing else"
    );
    assert!(
        server.log().contains("temp_files_removed=1"),
        "start-up counts the aborted upload: {}",
        server.log()
    );
    let items = server.items();
    assert_eq!(items.len(), 1);
    let path = server.dir.path().join("done.age");
    std::fs::write(&path, garage.get(&format!("blobs/{}.age", items[0].id))).unwrap();
    assert!(server.newsroom.decrypt_with_cli(&path) == noise(9 * 1024 * 1024, 23));
}

#[test]
fn the_store_going_away_mid_upload_fails_clearly_and_uploads_work_once_it_is_back() {
    let mut garage = Garage::start();
    let server = server_on(&garage);
    let mut source = Browser::new(server.addr);
    source.get("/submit");
    assert_eq!(
        source.submit(vec![Part::text("message", b"first")]).status,
        200
    );
    source.get("/submit");
    let form = source.form();
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("lost.bin", noise(40 * 1024 * 1024, 25))],
    ));
    let mut stream = partial_submit(server.addr, &form, &body, 20 * 1024 * 1024);
    eventually("parts of the upload reach the bucket", SOON, || {
        !garage.unfinished_uploads().is_empty()
    });
    garage.kill();
    use std::io::Write;
    // The server may answer (and stop reading) before the rest is sent.
    let _ = stream.write_all(&body[20 * 1024 * 1024..]);
    let failed = try_read_response(&mut stream).expect("the server answers");
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert!(
        failed.body.contains("Nothing from this attempt was kept"),
        "{}",
        failed.body
    );
    assert_eq!(server.items().len(), 1, "nothing partial became an item");
    assert_eq!(
        get(server.addr, "/").status,
        200,
        "the server keeps serving"
    );

    garage.resume();
    eventually(
        "the given-up upload is aborted once the store is back",
        SOON * 3,
        || garage.unfinished_uploads().is_empty(),
    );
    assert_no_upload_left(&garage);
    source.get("/submit");
    let again = source.submit(vec![Part::file("again.bin", noise(9 * 1024 * 1024, 26))]);
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(server.items().len(), 2);
    assert_eq!(blob_keys(&garage).len(), 4);
}

#[test]
fn storage_settings_are_checked_before_serving() {
    let garage = Garage::start();
    let refusal = |storage: Vec<(&'static str, String)>| -> String {
        let server = Server::prepare(Options {
            storage,
            ..Options::default()
        });
        stderr(&server.refused())
    };
    let with = |key: &'static str, value: &str| {
        let mut keys: Vec<_> = garage
            .storage_keys()
            .into_iter()
            .filter(|(k, _)| *k != key)
            .collect();
        if !value.is_empty() {
            keys.push((key, value.to_owned()));
        }
        keys
    };
    let cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (with("kind", "\"ftp\""), "config key `storage.kind`: must be \"local\" or \"s3\""),
        (with("bucket", ""), "config key `storage.bucket`: is required for kind = \"s3\""),
        (
            with("endpoint", "\"http://192.0.2.7:3900\""),
            "config key `storage.endpoint`: plain http:// only to a loopback address",
        ),
        (
            with("endpoint", "\"https://s3.example/path\""),
            "config key `storage.endpoint`: expected https://HOST[:PORT], without a path",
        ),
        (
            vec![("kind", "\"local\"".into()), ("bucket", "\"agedrop\"".into())],
            "config key `storage.bucket`: is for kind = \"s3\"",
        ),
        (
            with("secret_access_key_file", "\"/nonexistent/secret\""),
            "config key `storage`: cannot read storage.secret_access_key_file (/nonexistent/secret)",
        ),
        (
            with("access_key_id", "\"GK000000000000000000000000\""),
            "config key `storage`: cannot reach the bucket (http://127.0.0.1:",
        ),
        (
            with("bucket", "\"no-such-bucket\""),
            "/no-such-bucket): ",
        ),
    ];
    for (storage, expected) in cases {
        let said = refusal(storage);
        assert!(said.contains(expected), "expected {expected:?} in: {said}");
    }
}

/// A deletion while an export streams from the bucket never cuts the bundle short; the
/// objects go once the export ends, and no deletion marker is left.
#[test]
fn a_deletion_during_an_export_from_the_bucket_waits_for_the_export() {
    let garage = Garage::start();
    let server = server_on(&garage);
    let token = server.add_journalist("ana");
    for n in 0..3 {
        let page = submit(
            server.addr,
            vec![Part::file("big.bin", noise(9 * 1024 * 1024, 30 + n))],
        );
        assert_eq!(page.status, 200);
    }
    let items = server.items();
    let export = ExportInProgress::begin(&server, &token);
    for item in &items {
        assert_eq!(server.delete_item(&token, &item.id), 204);
    }
    assert!(server.items().is_empty());
    assert!(
        garage.keys().iter().any(|key| key.starts_with("deleting/")),
        "the deletions wait, marked: {:?}",
        garage.keys()
    );
    export.finish_with(&items);
    eventually("the deleted objects and their markers go", SOON, || {
        garage.keys() == ["instance"]
    });
}

/// Two nodes may share one bucket: a node's start-up aborts only the uploads it left
/// itself, and leaves alone blobs without a row while they are young (another node may
/// be about to commit them), so restarting one node never breaks the other's uploads.
#[test]
fn a_node_starting_leaves_another_nodes_uploads_and_fresh_blobs_alone() {
    let garage = Garage::start();
    let (first, mut second) = Server::two_nodes(|| Options {
        storage: garage.storage_keys(),
        ..Options::default()
    });

    // An upload in progress on the first node, and a stray young blob (as a node
    // between its upload's completion and its commit leaves one).
    let form = form(first.addr);
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("slow.bin", noise(20 * 1024 * 1024, 40))],
    ));
    let mut stream = partial_submit(first.addr, &form, &body, body.len() - 1000);
    eventually("parts of the upload reach the bucket", SOON, || {
        !garage.unfinished_uploads().is_empty()
    });
    let stray = "blobs/00112233445566778899aabbccddeeff.age";
    garage.put(stray, b"ciphertext of another node");

    second.restart();
    assert_eq!(
        garage.unfinished_uploads().len(),
        1,
        "the other node's upload goes on"
    );
    assert!(
        garage.keys().contains(&stray.to_owned()),
        "{:?}",
        garage.keys()
    );
    assert!(!garage.keys().iter().any(|key| key.starts_with("orphans/")));

    use std::io::Write;
    stream.write_all(&body[body.len() - 1000..]).unwrap();
    let done = read_response(&mut stream);
    assert_eq!(done.status, 200, "{}", done.body);
    assert_no_upload_left(&garage);
    let item = first.items().remove(0);
    let path = first.dir.path().join("slow.age");
    std::fs::write(&path, garage.get(&format!("blobs/{}.age", item.id))).unwrap();
    assert!(first.newsroom.decrypt_with_cli(&path) == noise(20 * 1024 * 1024, 40));
}

/// A bucket belongs to one drop: a server whose instance secret differs from the one
/// that first used the bucket (another drop, or a node not given the shared secret) is
/// refused before it touches anything there.
#[test]
fn a_bucket_is_refused_to_another_instance() {
    let garage = Garage::start();
    let first = server_on(&garage);
    assert_eq!(
        submit(first.addr, vec![Part::text("message", b"mine")]).status,
        200
    );
    let keys = garage.keys();
    assert!(keys.contains(&"instance".to_owned()), "{keys:?}");

    let other = Server::prepare(Options {
        storage: garage.storage_keys(),
        ..Options::default()
    });
    let said = stderr(&other.refused());
    assert!(
        said.contains("config key `storage`: cannot use the bucket (http://127.0.0.1:")
            && said.contains("it belongs to another agedrop instance"),
        "{said}"
    );
    assert_eq!(garage.keys(), keys, "nothing in the bucket changed");
}

/// `agedrop check` reaches the bucket too: it says that the bucket answers and is this
/// drop's, and reports a problem (exit 1) when the store is down.
#[test]
fn check_says_whether_the_bucket_answers_and_belongs_to_this_drop() {
    let mut garage = Garage::start();
    let server = server_on(&garage);
    let check = || {
        agedrop(
            &["check", "--config", server.config.to_str().unwrap()],
            server.dir.path(),
        )
    };
    let out = check();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    assert!(
        said.contains(&format!(
            "the bucket {}/agedrop answers and belongs to this drop",
            garage.endpoint
        )),
        "{said}"
    );
    garage.kill();
    let out = check();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "problem: storage: cannot reach the bucket ({}/agedrop)",
            garage.endpoint
        )),
        "{said}"
    );
}

/// Only `init --config` and `serve` make the node id: an admin command beside the server
/// (often run as root) leaves no file the service user could not read at its next start.
#[test]
fn admin_commands_make_no_node_id() {
    let garage = Garage::start();
    let mut server = Server::prepare(Options {
        storage: garage.storage_keys(),
        ..Options::default()
    });
    let node_id = server.data().join("node-id");
    server.add_journalist("ana");
    assert!(!node_id.exists(), "journalist add made no node id");
    server.serve();
    let id = std::fs::read_to_string(&node_id).unwrap();
    assert_eq!(id.trim().len(), 16, "{id:?}");
}

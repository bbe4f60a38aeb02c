//! `agedrop backup` beside a running server and `agedrop restore` into a new data
//! directory, through the real binary: what was acknowledged comes back byte-exact,
//! sources keep their codes, and bad input leaves nothing half-written.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn backup(server: &Server, out: &Path) -> std::process::Output {
    agedrop(
        &[
            "backup",
            "--config",
            server.dir.path().join("agedrop.toml").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        server.dir.path(),
    )
}

fn restore(archive: &Path, data_dir: &Path) -> std::process::Output {
    agedrop(
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        archive.parent().unwrap(),
    )
}

/// A first submission from a new source: its code.
fn new_source(server: &Server, parts: Vec<Part>) -> String {
    let mut browser = Browser::new(server.addr);
    browser.get("/submit");
    let page = browser.submit(parts);
    assert_eq!(page.status, 200, "{}", page.body);
    code_from(&page)
}

/// Serves a restored data directory with the original newsroom and pulls everything
/// with the original journalist's token: the plaintexts of its items.
fn serve_and_pull(original: &Server, data: &Path, token: &Path) -> (Server, BTreeSet<Vec<u8>>) {
    let server = Server::with(Options {
        data_from: Some(data.to_owned()),
        identity: Some(original.newsroom.identity_file.clone()),
        ..Options::default()
    });
    let bundle = server.dir.path().join("all.tar");
    ok(&server.with_token(token, "pull", &["--all", "-o", bundle.to_str().unwrap()]));
    let plaintexts = untar(&std::fs::read(&bundle).unwrap())
        .into_iter()
        .filter(|(name, _)| name.starts_with("items/") && !name.ends_with(".meta.age"))
        .map(|(_, data)| server.newsroom.decrypt(&data))
        .collect();
    (server, plaintexts)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_backup_taken_during_uploads_restores_everything_acknowledged() {
    let server = Server::start();
    let token = server.add_journalist_file("ana");
    let work = tempfile::tempdir().unwrap();

    // Several sources, large and small items, a reply.
    let mut sent: BTreeSet<Vec<u8>> = BTreeSet::new();
    let big = noise(3 * 1024 * 1024 + 17, 1);
    let code_a = new_source(
        &server,
        vec![
            Part::text("message", b"source A writes"),
            Part::file("big.bin", big.clone()),
        ],
    );
    sent.extend([b"source A writes".to_vec(), big]);
    let bigger = noise(5 * 1024 * 1024, 2);
    let code_b = new_source(&server, vec![Part::file("bigger.bin", bigger.clone())]);
    sent.insert(bigger);
    let small = noise(1000, 3);
    new_source(
        &server,
        vec![
            Part::file("small.bin", small.clone()),
            Part::text("message", b"source C writes"),
        ],
    );
    sent.extend([small, b"source C writes".to_vec()]);
    let api_token = std::fs::read_to_string(&token).unwrap();
    assert_eq!(
        server.push_reply(api_token.trim(), b"a reply from the newsroom"),
        201
    );

    // An upload in progress during the first backup: never acknowledged, not in it.
    let form = form(server.addr);
    let body = multipart(&with_csrf(
        &form,
        vec![Part::file("unfinished.bin", noise(4 * 1024 * 1024, 4))],
    ));
    let upload = partial_submit(server.addr, &form, &body, body.len() / 2);
    eventually("the upload is streaming to a temp file", SOON, || {
        server.temp_files() > 0
    });
    let first = work.path().join("first.tar");
    let report = ok(&backup(&server, &first));
    assert!(report.contains("Backed up 11 blobs"), "{report}");
    assert_eq!(mode(&first), 0o600);
    drop(upload);
    let sent_before_first = sent.clone();

    // More arrive, and go on arriving while the second backup runs.
    let later = noise(2 * 1024 * 1024, 5);
    new_source(&server, vec![Part::file("later.bin", later.clone())]);
    sent.insert(later);
    let acknowledged = sent.clone();
    let addr = server.addr;
    let during = std::thread::spawn(move || {
        (0..5u8)
            .map(|i| {
                let text = format!("sent during the backup {i}").into_bytes();
                assert_eq!(submit(addr, vec![Part::text("message", &text)]).status, 200);
                text
            })
            .collect::<Vec<_>>()
    });
    let second = work.path().join("second.tar");
    ok(&backup(&server, &second));
    let sent_during = during.join().unwrap();
    assert_eq!(dir_names(work.path()), ["first.tar", "second.tar"]);

    // The first backup: everything acknowledged before it, nothing after.
    let restored_first = work.path().join("first-data");
    ok(&restore(&first, &restored_first));
    let (_, plaintexts) = serve_and_pull(&server, &restored_first, &token);
    assert_eq!(plaintexts, sent_before_first);

    // The second: everything acknowledged before it, and of what came during it only
    // whole items.
    let restored = work.path().join("restored");
    let out = ok(&restore(&second, &restored));
    assert_eq!(out, "");
    assert_eq!(mode(&restored), 0o700);
    assert_eq!(mode(&restored.join("instance-secret")), 0o600);
    assert_eq!(mode(&restored.join("agedrop.sqlite")), 0o600);
    assert_eq!(
        std::fs::read(restored.join("instance-secret")).unwrap(),
        std::fs::read(server.data().join("instance-secret")).unwrap()
    );
    let (copy, plaintexts) = serve_and_pull(&server, &restored, &token);
    assert!(
        plaintexts.is_superset(&acknowledged),
        "an acknowledged item is missing"
    );
    let extra: BTreeSet<Vec<u8>> = plaintexts.difference(&acknowledged).cloned().collect();
    assert!(
        extra.iter().all(|text| sent_during.contains(text)),
        "the restored drop holds only what was sent"
    );
    assert_eq!(copy.reply_ids(), server.reply_ids());

    // Sources log in with their codes (the instance secret came along) and read the
    // newsroom's reply (their wrapped keys did too).
    let mut source_a = Browser::new(copy.addr);
    assert_eq!(source_a.login(&code_a).status, 303);
    assert!(source_a
        .get("/inbox")
        .body
        .contains("a reply from the newsroom"));
    let mut source_b = Browser::new(copy.addr);
    assert_eq!(source_b.login(&code_b).status, 303);
}

#[test]
fn restore_refuses_a_non_empty_or_live_directory_and_a_cut_backup() {
    let server = Server::start();
    new_source(
        &server,
        vec![Part::file("doc.bin", noise(2 * 1024 * 1024, 9))],
    );
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("backup.tar");
    ok(&backup(&server, &archive));

    // A backup never overwrites.
    let before = std::fs::read(&archive).unwrap();
    assert_refused(
        &backup(&server, &archive),
        &format!("{} exists already; not overwriting it", archive.display()),
    );
    assert_eq!(std::fs::read(&archive).unwrap(), before);

    // Not over a directory that holds anything.
    let full = work.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), b"mine").unwrap();
    assert_refused(
        &restore(&archive, &full),
        &format!(
            "{} exists and is not empty; restore into a new or empty directory",
            full.display()
        ),
    );
    assert_eq!(dir_names(&full), ["keep.txt"]);

    // Not over a running server's data directory.
    assert_refused(
        &restore(&archive, &server.data()),
        &format!(
            "{} is in use by a running agedrop; stop it, and restore into a new directory",
            server.data().display()
        ),
    );

    // A backup cut short (in the middle of a blob, or right after the database) is
    // refused, and nothing is left behind.
    let entries = untar(&before);
    let database_end = {
        // Header and padded data of every entry up to and including the database.
        let mut end = 0;
        for (name, data) in &entries {
            end += 512 + data.len().div_ceil(512) * 512;
            if name == "agedrop.sqlite" {
                break;
            }
        }
        end
    };
    for (cut, why) in [
        (before.len() / 3, "the archive was cut short"),
        (
            database_end,
            "the archive has no end marker: it was cut short",
        ),
        (
            before.len() - 512,
            "the archive has no end marker: it was cut short",
        ),
    ] {
        let cut_file = work.path().join("cut.tar");
        std::fs::write(&cut_file, &before[..cut]).unwrap();
        let target = work.path().join("restored");
        assert_refused(
            &restore(&cut_file, &target),
            &format!("not a whole agedrop backup: {why}"),
        );
        assert!(!target.exists());
        assert_eq!(dir_names(work.path()), ["backup.tar", "cut.tar", "full"]);
    }

    // `-o -` writes the same archive to stdout (for `| age -r …`).
    let config = server.dir.path().join("agedrop.toml");
    let piped = agedrop(
        &["backup", "--config", config.to_str().unwrap(), "-o", "-"],
        server.dir.path(),
    );
    ok(&piped);
    let piped_file = work.path().join("piped.tar");
    std::fs::write(&piped_file, &piped.stdout).unwrap();
    let from_pipe = work.path().join("from-pipe");
    ok(&restore(&piped_file, &from_pipe));
    assert_eq!(
        dir_names(&from_pipe.join("blobs")),
        dir_names(&server.data().join("blobs"))
    );

    // An empty directory is fine: the restore takes its place.
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    ok(&restore(&archive, &empty));
    assert_eq!(
        dir_names(&empty),
        ["agedrop.sqlite", "blobs", "instance-secret", "lock", "tmp"]
    );
}

/// Unmounts a tmpfs the test mounted, whatever assert fails first.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_backup_onto_a_full_disk_fails_and_leaves_no_partial_file() {
    let server = Server::start();
    new_source(
        &server,
        vec![Part::file("doc.bin", noise(3 * 1024 * 1024, 11))],
    );
    let work = tempfile::tempdir().unwrap();
    let small = work.path().join("small");
    std::fs::create_dir(&small).unwrap();
    mount_tmpfs(&small, "size=1m,mode=0700");
    let _mounted = Mounted(small.clone());
    let archive = small.join("backup.tar");
    let out = backup(&server, &archive);
    assert_refusal_starts(&out, "cannot write the backup");
    assert!(stderr(&out).contains("the disk is full, nothing was kept"));
    assert_eq!(dir_names(&small), Vec::<String>::new());
    // The snapshot's temp file is gone from the data directory too.
    assert_eq!(server.temp_files(), 0);
}

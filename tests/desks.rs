//! Several desks on one drop, through the real binary: the source's choice, items
//! encrypted only to their desk's keys, follow-ups staying with the desk, journalist
//! accounts scoped to desks (export, replies, deletes), and a desk removed from the
//! config.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Two desks, each with its own newsroom key; the server's own newsroom is unused.
struct TwoDesks {
    server: Server,
    investigations: Newsroom,
    local: Newsroom,
    _keys: tempfile::TempDir,
}

fn two_desks() -> TwoDesks {
    let keys = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let dir = keys.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    };
    let investigations = Newsroom::new(&dir("investigations"));
    let local = Newsroom::new(&dir("local"));
    let options = Options {
        desks: vec![
            (
                "investigations",
                "Investigations",
                vec![investigations.recipient.clone()],
            ),
            ("local", "Local news", vec![local.recipient.clone()]),
        ],
        ..Options::default()
    };
    TwoDesks {
        server: Server::with(options),
        investigations,
        local,
        _keys: keys,
    }
}

/// A first submission to `desk` (`None`: no choice sent): the page.
fn submit_to(server: &Server, desk: Option<&str>, message: &str) -> (Browser, Response) {
    let mut source = Browser::new(server.addr);
    source.get("/submit");
    let mut parts = Vec::new();
    if let Some(desk) = desk {
        parts.push(Part::text("desk", desk.as_bytes()));
    }
    parts.push(Part::text("message", message.as_bytes()));
    let page = source.submit(parts);
    (source, page)
}

fn blob(server: &Server, item: &Item) -> Vec<u8> {
    std::fs::read(server.data().join("blobs").join(format!("{}.age", item.id))).unwrap()
}

fn token_for(server: &Server, name: &str, desks: &[&str]) -> PathBuf {
    let config = server.dir.path().join("agedrop.toml");
    let mut args = vec![
        "journalist",
        "add",
        name,
        "--config",
        config.to_str().unwrap(),
    ];
    for desk in desks {
        args.extend(["--desk", desk]);
    }
    let out = agedrop(&args, server.dir.path());
    ok(&out);
    let path = server.dir.path().join(format!("{name}.token"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn manifest(server: &Server, token: &Path, name: &str) -> Value {
    let bundle = server.dir.path().join(name);
    ok(&server.pull(token, &bundle));
    let entries = untar(&std::fs::read(&bundle).unwrap());
    serde_json::from_slice(&entries[0].1).unwrap()
}

#[test]
fn a_source_chooses_a_desk_and_only_that_desk_can_read() {
    let desks = two_desks();
    let server = &desks.server;

    let form = get(server.addr, "/submit");
    assert_eq!(form.body.matches("type=\"radio\" name=\"desk\"").count(), 2);
    assert!(form.body.contains("value=\"investigations\""));
    assert!(form.body.contains("Local news"));

    // No choice, or a desk that does not exist: a clear page, nothing stored.
    let (_, none) = submit_to(server, None, "where does this go?");
    assert_eq!(none.status, 400);
    assert!(
        none.body.contains("Choose who receives it"),
        "{}",
        none.body
    );
    let (_, unknown) = submit_to(server, Some("sports"), "and this?");
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("Unknown desk"), "{}", unknown.body);
    assert!(server.items().is_empty());
    assert_eq!(server.temp_files(), 0);

    let (mut source, page) = submit_to(server, Some("local"), "about the council");
    assert_eq!(page.status, 200);
    let items = server.items();
    assert_eq!(items.len(), 1);
    let sealed = blob(server, &items[0]);
    assert_eq!(desks.local.decrypt(&sealed), b"about the council");
    assert!(
        age::decrypt(&desks.investigations.identity, &sealed).is_err(),
        "the other desk's key cannot open it"
    );
    assert!(
        age::decrypt(&server.newsroom.identity, &sealed).is_err(),
        "nor any key outside the desk"
    );

    // The follow-up stays with the desk, whatever the form says.
    let inbox = source.get("/inbox");
    assert!(
        inbox
            .body
            .contains("You are talking to: <strong>Local news</strong>"),
        "{}",
        inbox.body
    );
    assert!(
        !inbox.body.contains("type=\"radio\""),
        "no choice after the first submission"
    );
    let follow_up = source.submit(vec![Part::text("message", b"more")]);
    assert_eq!(follow_up.status, 303);
    let items = server.items();
    assert_eq!(items.len(), 2);
    assert_eq!(desks.local.decrypt(&blob(server, &items[1])), b"more");
}

#[test]
fn journalist_accounts_see_and_touch_only_their_desks() {
    let desks = two_desks();
    let server = &desks.server;
    submit_to(server, Some("investigations"), "agency files");
    submit_to(server, Some("local"), "council files");
    let rows = server.source_rows();
    let source_of = |desk: &Newsroom| -> String {
        server
            .items()
            .into_iter()
            .find(|item| age::decrypt(&desk.identity, &blob(server, item)).is_ok())
            .unwrap()
            .source_id
    };
    let investigations_source = source_of(&desks.investigations);
    let local_source = source_of(&desks.local);
    assert_eq!(rows.len(), 2);

    let refused = agedrop(
        &[
            "journalist",
            "add",
            "x",
            "--desk",
            "sports",
            "--config",
            server.dir.path().join("agedrop.toml").to_str().unwrap(),
        ],
        server.dir.path(),
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("no desk \"sports\" in")
            && stderr(&refused).contains("its desks are: investigations, local"),
        "{}",
        stderr(&refused)
    );

    let ana = token_for(server, "ana", &["investigations"]);
    let lee = token_for(server, "lee", &["local"]);
    let editor = token_for(server, "editor", &[]);
    let list = agedrop(
        &[
            "journalist",
            "list",
            "--config",
            server.dir.path().join("agedrop.toml").to_str().unwrap(),
        ],
        server.dir.path(),
    );
    ok(&list);
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(
        listed.contains("ana\t") && listed.contains("\tinvestigations"),
        "{listed}"
    );
    assert!(listed.contains("\tevery desk"), "{listed}");

    let sources = |m: &Value| -> Vec<(String, String)> {
        m["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_owned(),
                    s["desk"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let of_ana = manifest(server, &ana, "ana.tar");
    assert_eq!(
        sources(&of_ana),
        vec![(investigations_source.clone(), "investigations".to_owned())]
    );
    assert_eq!(of_ana["items"].as_array().unwrap().len(), 1);
    let of_lee = manifest(server, &lee, "lee.tar");
    assert_eq!(
        sources(&of_lee),
        vec![(local_source.clone(), "local".to_owned())]
    );
    let of_editor = manifest(server, &editor, "editor.tar");
    assert_eq!(sources(&of_editor).len(), 2);
    // The offline tools say which desk a source wrote to.
    let out = server.dir.path().join("opened");
    ok(&agedrop(
        &[
            "open",
            server.dir.path().join("lee.tar").to_str().unwrap(),
            "-i",
            desks.local.identity_file.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        server.dir.path(),
    ));
    let label = &of_lee["sources"][0]["label"];
    let index =
        std::fs::read_to_string(out.join(label.as_str().unwrap()).join("index.txt")).unwrap();
    assert!(index.contains("\nDesk: local\n"), "{index}");

    // Replies and deletes across desks are refused; within, they work.
    let bearer = |token: &Path| std::fs::read_to_string(token).unwrap().trim().to_owned();
    let recipient_of = |id: &str| {
        rows.iter()
            .find(|(source, _, _)| source == id)
            .unwrap()
            .2
            .clone()
    };
    let reply_to = |id: &str| reply_bundle(&[(id, encrypt_to(&[&recipient_of(id)], b"hello"))]);
    let (status, body) = server.api(
        "POST",
        "/api/v1/replies",
        &bearer(&ana),
        &reply_to(&local_source),
    );
    assert_eq!(status, 403);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"error":"that source belongs to a desk this account is not for"}"#
    );
    let (status, _) = server.api(
        "POST",
        "/api/v1/replies",
        &bearer(&lee),
        &reply_to(&local_source),
    );
    assert_eq!(status, 201);
    let local_item = server
        .items()
        .into_iter()
        .find(|i| i.source_id == local_source)
        .unwrap();
    assert_eq!(server.delete_item(&bearer(&ana), &local_item.id), 403);
    assert_eq!(server.delete_source(&bearer(&ana), &local_source), 403);
    assert_eq!(server.sources(), 2, "nothing deleted across desks");
    assert_eq!(server.delete_item(&bearer(&lee), &local_item.id), 204);
}

#[test]
fn a_desk_removed_from_the_config_is_refused_until_retired_and_then_takes_nothing() {
    let mut desks = two_desks();
    let (_, page) = submit_to(&desks.server, Some("local"), "before the change");
    assert_eq!(page.status, 200);
    let code = code_from(&page);
    let config = desks.server.dir.path().join("agedrop.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let local_block = format!(
        "[[desk]]\nid = \"local\"\nname = \"Local news\"\nrecipients = [\"{}\"]\n",
        desks.local.recipient
    );
    assert!(text.contains(&local_block), "{text}");
    let without_local = text.replace(&local_block, "");
    assert!(without_local.contains("[limits]"), "{without_local}");
    std::fs::write(&config, &without_local).unwrap();
    desks.server.stop();
    let refused = desks.server.refused();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(
            "desk \"local\" has 1 source(s) but is not in the config: put its [[desk]] entry \
             back, or add it to retired_desks = [\"local\"]"
        ),
        "{}",
        stderr(&refused)
    );

    std::fs::write(
        &config,
        format!("retired_desks = [\"local\"]\n{without_local}"),
    )
    .unwrap();
    desks.server.restart();
    let server = &desks.server;
    let mut source = Browser::new(server.addr);
    let login = source.login(&code);
    assert_eq!(login.status, 303, "a retired desk's source still logs in");
    let inbox = source.get("/inbox");
    assert_eq!(inbox.status, 200);
    let refused = source.submit(vec![Part::text("message", b"after")]);
    assert_eq!(refused.status, 410);
    assert!(refused.body.contains("Desk closed"), "{}", refused.body);
    assert_eq!(server.items().len(), 1);
}

/// `agedrop keygen --pq -o DIR/pq-key.txt`: the identity file and its `age1pq1…`.
fn pq_key(dir: &Path) -> (PathBuf, String) {
    let file = dir.join("pq-key.txt");
    let out = agedrop(&["keygen", "--pq", "-o", file.to_str().unwrap()], dir);
    ok(&out);
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(recipient.starts_with("age1pq1"), "{recipient}");
    (file, recipient)
}

#[test]
fn a_post_quantum_desk_gives_its_sources_post_quantum_reply_keys() {
    let keys = tempfile::tempdir().unwrap();
    let (pq_identity, pq_recipient) = pq_key(keys.path());
    let classic = Newsroom::new(keys.path());
    let options = Options {
        desks: vec![
            ("quantum", "Quantum-safe desk", vec![pq_recipient.clone()]),
            ("classic", "Classic desk", vec![classic.recipient.clone()]),
        ],
        ..Options::default()
    };
    let server = Server::with(options);
    let (mut source, page) = submit_to(&server, Some("quantum"), "harvest this later, if you can");
    assert_eq!(page.status, 200);
    let code = code_from(&page);
    submit_to(&server, Some("classic"), "an ordinary one");

    let editor = token_for(&server, "editor", &[]);
    let bundle = server.dir.path().join("all.tar");
    ok(&server.pull(&editor, &bundle));
    let manifest: Value =
        serde_json::from_slice(&untar(&std::fs::read(&bundle).unwrap())[0].1).unwrap();
    let of = |desk: &str| {
        manifest["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["desk"] == desk)
            .unwrap()
            .clone()
    };
    let quantum = of("quantum");
    assert!(
        quantum["recipient"]
            .as_str()
            .unwrap()
            .starts_with("age1pq1"),
        "a post-quantum desk's source gets a post-quantum reply key: {quantum}"
    );
    let ordinary = of("classic")["recipient"].as_str().unwrap().to_owned();
    assert!(ordinary.starts_with("age1") && !ordinary.starts_with("age1pq1"));

    // The desk answers with its post-quantum identity; the source reads it.
    let work = server.dir.path();
    let message = work.join("reply.txt");
    std::fs::write(&message, "Received. We will be careful.").unwrap();
    let reply = work.join("reply.tar");
    ok(&agedrop(
        &[
            "reply",
            bundle.to_str().unwrap(),
            "-i",
            pq_identity.to_str().unwrap(),
            "--source",
            quantum["label"].as_str().unwrap(),
            "--message",
            message.to_str().unwrap(),
            "-o",
            reply.to_str().unwrap(),
        ],
        work,
    ));
    ok(&server.with_token(&editor, "push", &[reply.to_str().unwrap()]));
    source.login(&code);
    let inbox = source.get("/inbox");
    assert!(
        inbox.body.contains("Received. We will be careful."),
        "{}",
        inbox.body
    );
}

#[test]
fn a_desk_that_mixes_post_quantum_and_classical_keys_is_refused_by_name() {
    let keys = tempfile::tempdir().unwrap();
    let (_, pq_recipient) = pq_key(keys.path());
    let classic = Newsroom::new(keys.path());
    let options = Options {
        desks: vec![(
            "mixed",
            "Mixed desk",
            vec![classic.recipient.clone(), pq_recipient],
        )],
        ..Options::default()
    };
    let refused = Server::prepare(options).refused();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(
            "config key `desk[0].recipients[1]`: not a usable age recipient (desk \"mixed\"): \
             post-quantum (age1pq1…, age1tagpq1…) and classical (age1…, age1tag1…) recipients \
             cannot be mixed"
        ),
        "{}",
        stderr(&refused)
    );
}

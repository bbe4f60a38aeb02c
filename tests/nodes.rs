//! Several agedrop nodes behind HAProxy, configured by deploy/haproxy.cfg (with only its
//! addresses changed): a source's session lives in one node's memory, so the balancer
//! must keep a logged-in source on that node; with the metadata in one PostgreSQL
//! database and the blobs in one bucket, the nodes serve one drop, and losing a node
//! loses no acknowledged upload.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::*;

/// Two nodes on one bucket with one instance secret (and, with `database`, one
/// metadata database), and HAProxy in front of them.
fn two_nodes(garage: &Garage, database: Option<String>) -> (Server, Server, HaProxy) {
    let (first, second) = Server::two_nodes(|| Options {
        storage: garage.storage_keys(),
        database: database.clone(),
        // The TLS URLs the tests give are checked against the test cluster's CA.
        database_ca: database.as_ref().map(|_| cluster().ca_file.clone()),
        ..Options::default()
    });
    let proxy = HaProxy::start([
        (first.addr, first.journalist),
        (second.addr, second.journalist),
    ]);
    (first, second, proxy)
}

#[test]
fn a_logged_in_source_stays_on_the_node_that_holds_its_session() {
    let garage = Garage::start();
    let (first, second, proxy) = two_nodes(&garage, None);
    // Requests without a session go to either node, in turn.
    let mut source = Browser::new(proxy.source);
    source.get("/submit");
    let page = source.submit(vec![Part::text("message", b"through the balancer")]);
    assert_eq!(page.status, 200, "{}", page.body);
    let holder = match (first.items().len(), second.items().len()) {
        (1, 0) => &first,
        (0, 1) => &second,
        counts => panic!("one node stored the submission: {counts:?}"),
    };
    // Round robin alone would send every other request to the node without the
    // session; the stick table keeps them all on the one with it.
    for _ in 0..12 {
        let inbox = source.get("/inbox");
        assert_eq!(inbox.status, 200, "{}", inbox.body);
        assert!(inbox.body.contains("Your inbox"), "{}", inbox.body);
    }
    source.get("/submit");
    let follow_up = source.submit(vec![Part::text("message", b"and again")]);
    assert_eq!(follow_up.status, 303, "{}", follow_up.body);
    assert_eq!(
        holder.items().len(),
        2,
        "the follow-up went to the same node"
    );
    // Another source, without a session, may land on either node; both answer.
    for _ in 0..4 {
        assert_eq!(Browser::new(proxy.source).get("/").status, 200);
    }
}

/// A browser with `source`'s cookies that talks to `node` directly, bypassing the
/// balancer: to ask which node holds its session.
fn at(source: &Browser, node: SocketAddr) -> Browser {
    let mut direct = Browser::new(node);
    direct.cookies = source.cookies.clone();
    direct
}

/// `agedrop pull --all` through `server`'s journalist address: the bundle's path.
fn pull_all(work: &Path, journalist: SocketAddr, token: &Path, name: &str) -> std::path::PathBuf {
    let bundle = work.join(name);
    ok(&agedrop(
        &[
            "pull",
            "--server",
            &format!("http://{journalist}"),
            "--token-file",
            token.to_str().unwrap(),
            "--all",
            "-o",
            bundle.to_str().unwrap(),
        ],
        work,
    ));
    bundle
}

#[test]
fn two_nodes_serve_one_drop_and_losing_one_loses_no_acknowledged_upload() {
    let garage = Garage::start();
    let cluster = cluster();
    // Over TLS, as nodes on other machines than the database's would reach it.
    let url = format!(
        "postgres://postgres@localhost:{}/{}?sslmode=require",
        cluster.port,
        cluster.create_database()
    );
    let (mut first, second, proxy) = two_nodes(&garage, Some(url));
    let work = first.dir.path().to_owned();

    // Sources arrive through the balancer; round robin spreads them over both nodes.
    let mut sources = Vec::new();
    for n in 0..6u64 {
        let file = noise(3 * 1024 * 1024 + n as usize, 50 + n);
        let mut source = Browser::new(proxy.source);
        if n % 2 == 1 {
            // A form and its POST are two requests, which round robin alone would send
            // to alternate nodes in lockstep: a landing page first shifts every other
            // source's submission to the other node.
            source.get("/");
        }
        source.get("/submit");
        let page = source.submit(vec![Part::file(format!("doc-{n}.bin"), file.clone())]);
        assert_eq!(page.status, 200, "{}", page.body);
        let on_first = at(&source, first.addr).get("/inbox").status == 200;
        sources.push((source, code_from(&page), file, on_first));
    }
    let held_by_first = sources.iter().filter(|s| s.3).count();
    assert!(
        (1..6).contains(&held_by_first),
        "both nodes took sources: {held_by_first} of 6 on the first"
    );

    // One database: either node's journalist API exports every item.
    let token = first.add_journalist_file("ana");
    for (node, name) in [(first.journalist, "a.tar"), (second.journalist, "b.tar")] {
        let bundle = pull_all(&work, node, &token, name);
        let out = work.join(format!("{name}.out"));
        assert!(ok(&first.open_bundle(&bundle, &out)).contains("6 item(s)"));
    }

    // Uploads in flight on both nodes; then the first node dies.
    let dying = {
        let form = form(first.addr);
        let body = multipart(&with_csrf(
            &form,
            vec![Part::file("lost.bin", noise(20 * 1024 * 1024, 60))],
        ));
        (
            partial_submit(first.addr, &form, &body, body.len() - 100),
            body,
        )
    };
    let surviving_form = form(second.addr);
    let surviving_file = noise(20 * 1024 * 1024, 61);
    let body = multipart(&with_csrf(
        &surviving_form,
        vec![Part::file("kept.bin", surviving_file.clone())],
    ));
    let mut surviving = partial_submit(second.addr, &surviving_form, &body, body.len() - 100);
    eventually("both uploads are streaming into the bucket", SOON, || {
        garage.unfinished_uploads().len() == 2
    });
    first.kill9();
    drop(dying);
    use std::io::Write;
    surviving.write_all(&body[body.len() - 100..]).unwrap();
    let kept = read_response(&mut surviving);
    assert_eq!(
        kept.status, 200,
        "the other node's upload completes: {}",
        kept.body
    );

    // The balancer keeps serving, from the node that is left.
    for _ in 0..6 {
        assert_eq!(Browser::new(proxy.source).get("/").status, 200);
    }
    // Sources whose session died with the first node log in again with their code on
    // the second; the others carry on.
    for (source, code, _, on_first) in &mut sources {
        let inbox = source.get("/inbox");
        if *on_first {
            // No session here: the inbox sends the source to the login page.
            assert_eq!(inbox.status, 303, "{}", inbox.body);
            assert_eq!(inbox.header("location"), Some("/login"));
            assert_eq!(source.login(code).status, 303);
        }
        assert_eq!(source.get("/inbox").status, 200);
        source.get("/submit");
        let again = source.submit(vec![Part::text("message", b"still here")]);
        assert_eq!(again.status, 303, "{}", again.body);
    }

    // Every acknowledged upload is there, byte for byte; the lost one is not.
    let bundle = pull_all(&work, proxy.journalist, &token, "after.tar");
    let out = work.join("after");
    assert!(ok(&first.open_bundle(&bundle, &out)).contains("13 item(s)"));
    let mut files: Vec<Vec<u8>> = files_under(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".bin"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<Vec<u8>> = sources.iter().map(|s| s.2.clone()).collect();
    expected.push(surviving_file);
    expected.sort();
    assert!(files == expected, "each acknowledged file, exactly");

    // The dead node's unfinished upload is aborted when it comes back.
    assert_eq!(garage.unfinished_uploads().len(), 1);
    first.serve();
    assert_eq!(garage.unfinished_uploads(), Vec::<String>::new());
}

/// `agedrop init --config` makes a node's data directory from an existing config: the
/// first node's creates the shared state (the schema, the bucket's claim); another
/// node's is refused until it is given the first node's instance secret, and leaves
/// nothing behind when refused.
#[test]
fn init_with_a_config_creates_the_shared_state_once_and_other_nodes_join_it() {
    let garage = Garage::start();
    let cluster = cluster();
    let database = cluster.create_database();
    let url = cluster.url(&database);
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let newsroom = Newsroom::new(work);
    let storage: String = garage
        .storage_keys()
        .iter()
        .map(|(key, value)| format!("{key} = {value}\n"))
        .collect();
    let config = |node: &str| {
        let path = work.join(format!("{node}.toml"));
        std::fs::write(
            &path,
            format!(
                "data_dir = \"{node}-data\"\n[source]\nlisten = \"127.0.0.1:0\"\n\
                 [journalist]\nlisten = \"127.0.0.1:0\"\n[newsroom]\nrecipients = [\"{}\"]\n\
                 [storage]\n{storage}[database]\nurl = \"{url}\"\n",
                newsroom.recipient
            ),
        )
        .unwrap();
        path
    };
    let (first, second) = (config("first"), config("second"));
    let init = |config: &Path, extra: &[&str]| {
        let mut args = vec!["init", "--config", config.to_str().unwrap()];
        args.extend_from_slice(extra);
        agedrop(&args, work)
    };

    let made = init(&first, &[]);
    ok(&made);
    let said = String::from_utf8_lossy(&made.stdout);
    assert!(said.contains("Made the data directory"), "{said}");
    assert!(work.join("first-data/instance-secret").is_file());
    assert!(garage.keys().contains(&"instance".to_owned()));
    let version: i64 = cluster
        .connect(&database)
        .query_one("SELECT version FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert!(version > 0, "the schema is made");

    let refused = init(&second, &[]);
    assert_refusal_starts(&refused, "config key `storage`: cannot use the bucket (");
    assert!(stderr(&refused).contains("copied from the first node"));
    assert!(!work.join("second-data").exists(), "nothing is left behind");

    let secret = work.join("first-data/instance-secret");
    ok(&init(
        &second,
        &["--instance-secret", secret.to_str().unwrap()],
    ));
    assert_eq!(
        std::fs::read(work.join("second-data/instance-secret")).unwrap(),
        std::fs::read(&secret).unwrap()
    );
    assert_refusal_starts(
        &init(&second, &[]),
        &format!("{} exists already", work.join("second-data").display()),
    );
}

/// A node pointed at an empty database while the bucket already holds its drop (a
/// mistyped `database.url`) is refused rather than starting the drop empty, and the
/// empty database is left as it was.
#[test]
fn an_empty_database_beside_a_claimed_bucket_is_refused() {
    let garage = Garage::start();
    let cluster = cluster();
    let (first, _) = Server::two_nodes(|| Options {
        storage: garage.storage_keys(),
        database: Some(cluster.url(&cluster.create_database())),
        ..Options::default()
    });
    assert_eq!(
        submit(first.addr, vec![Part::text("message", b"kept")]).status,
        200
    );

    let empty = cluster.create_database();
    let wrong = Server::prepare(Options {
        storage: garage.storage_keys(),
        database: Some(cluster.url(&empty)),
        identity: Some(first.newsroom.identity_file.clone()),
        ..Options::default()
    });
    std::fs::copy(
        first.data().join("instance-secret"),
        wrong.data().join("instance-secret"),
    )
    .unwrap();
    let said = stderr(&wrong.refused());
    assert!(
        said.contains(
            "config key `database`: the database holds no agedrop schema, but the bucket \
             already belongs to this drop"
        ),
        "{said}"
    );
    let tables: i64 = cluster
        .connect(&empty)
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "nothing was made in the empty database");
}

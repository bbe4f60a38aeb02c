//! Metadata in PostgreSQL (`[database] url`): what the config refuses, a database a
//! newer agedrop made, and two `agedrop serve` processes committing to one database at
//! once. The rest of the store's behaviour on PostgreSQL is the other tests', run a
//! second time with `AGEDROP_TEST_DATABASE=postgres` (scripts/test).

mod common;

use std::collections::BTreeMap;

use common::*;

/// A server prepared (not started) with this `[database] url`.
fn with_url(url: &str) -> Server {
    Server::prepare(Options {
        database: Some(url.to_owned()),
        ..Options::default()
    })
}

#[test]
fn database_urls_are_checked_before_serving_and_never_shown_with_their_password() {
    let refused = |url: &str, message: &str| {
        let out = with_url(url).refused();
        assert_refused(&out, message);
        assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    };
    refused(
        "postgres://agedrop:hunter2@db.example.org:5432/agedrop",
        "config key `database.url`: a host other than loopback (localhost, 127.0.0.1, [::1]) or \
         a Unix socket directory needs ?sslmode=require: metadata would otherwise cross the \
         network in clear",
    );
    refused(
        "postgres://agedrop:hunter2@127.0.0.1:5432,10.0.0.7:5432/agedrop",
        "config key `database.url`: a host other than loopback (localhost, 127.0.0.1, [::1]) or \
         a Unix socket directory needs ?sslmode=require: metadata would otherwise cross the \
         network in clear",
    );
    refused(
        "mysql://agedrop:hunter2@127.0.0.1/agedrop",
        "config key `database.url`: expected postgres://USER@HOST:PORT/DATABASE",
    );
    refused(
        "postgres://agedrop:hunter2@%2Frun%2Fpostgresql/agedrop?sslmode=require",
        "config key `database.url`: sslmode=require is for a TCP host: a Unix socket needs no TLS",
    );
    refused(
        "postgres://agedrop:hunter2@127.0.0.1:5432/agedrop?flavour=strawberry",
        "config key `database.url`: expected postgres://USER@HOST:PORT/DATABASE: invalid \
         connection string",
    );
    // A database that is not there: the store names what it was doing, not the URL.
    let cluster = cluster();
    let out = with_url(&format!(
        "postgres://postgres:hunter2@127.0.0.1:{}/no_such_database",
        cluster.port
    ))
    .refused();
    assert_refusal_starts(
        &out,
        "config key `database`: cannot connect to the database (PostgreSQL): db error: database \"no_such_database\" does not exist",
    );
    assert!(!stderr(&out).contains("hunter2"));
}

#[test]
fn a_database_a_newer_agedrop_made_is_refused_and_left_alone() {
    let cluster = cluster();
    let name = cluster.create_database();
    let mut server = with_url(&cluster.url(&name));
    server.serve();
    let page = submit(server.addr, vec![Part::text("message", b"kept")]);
    assert_eq!(page.status, 200);
    server.stop();
    let mut db = cluster.connect(&name);
    assert_eq!(
        db.query_one("SELECT version FROM schema_version", &[])
            .unwrap()
            .get::<_, i64>(0),
        agedrop::store::SCHEMA_VERSION
    );
    db.batch_execute("UPDATE schema_version SET version = 99")
        .unwrap();
    assert_refused(
        &server.refused(),
        "config key `database`: the database has schema version 99, which this agedrop does not \
         know; use a newer agedrop",
    );
    let version: i64 = db
        .query_one("SELECT version FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 99, "nothing was migrated");
    assert_eq!(server.items().len(), 1, "nothing was dropped");
}

/// Two processes, each with its own data directory, one database: every commit takes
/// the writers' lock, so each source's items are numbered 1..n and export positions
/// are 1..N, each once, however the commits interleave. (Both start before anything is
/// stored: each keeps its blobs in its own directory here, and a start-up reconciles
/// the database's rows with the blobs it can see; sharing one bucket is what makes two
/// nodes one drop.)
#[test]
fn two_servers_on_one_database_number_items_without_gaps_or_repeats() {
    let cluster = cluster();
    let url = cluster.url(&cluster.create_database());
    let servers = [with_url(&url), with_url(&url)].map(|mut server| {
        server.serve();
        server
    });
    const PER_THREAD: usize = 4;
    const THREADS: usize = 6;
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let addr = servers[thread % 2].addr;
            scope.spawn(move || {
                for n in 0..PER_THREAD {
                    let page = submit(
                        addr,
                        vec![
                            Part::text("message", format!("{thread}/{n}").as_bytes()),
                            Part::file("a.txt", b"a".to_vec()),
                            Part::file("b.txt", b"b".to_vec()),
                        ],
                    );
                    assert_eq!(page.status, 200, "{}", page.body);
                }
            });
        }
    });

    let mut db = servers[0].db();
    let rows = db.rows("SELECT source_id, seq, position FROM items");
    let mut seqs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut positions: Vec<i64> = Vec::new();
    for row in &rows {
        seqs.entry(row[0].text()).or_default().push(row[1].int());
        positions.push(row[2].int());
    }
    assert_eq!(
        seqs.len(),
        THREADS * PER_THREAD,
        "one source per submission"
    );
    for (source, mut numbers) in seqs {
        numbers.sort_unstable();
        assert_eq!(numbers, [1, 2, 3], "source {source}");
    }
    positions.sort_unstable();
    let expected: Vec<i64> = (1..=rows.len() as i64).collect();
    assert_eq!(positions, expected, "positions 1..N, each once");
    let counter = db.value("SELECT value FROM counters WHERE name = 'export'");
    assert_eq!(counter.int(), rows.len() as i64);
}

#[test]
fn backup_refuses_a_database_in_postgresql() {
    let cluster = cluster();
    let server = with_url(&cluster.url(&cluster.create_database()));
    let out = agedrop(
        &[
            "backup",
            "--config",
            server.config.to_str().unwrap(),
            "-o",
            server.dir.path().join("b.tar").to_str().unwrap(),
        ],
        server.dir.path(),
    );
    assert_refused(
        &out,
        "the metadata is in PostgreSQL ([database] url), which `agedrop backup` does not copy: \
         back up the database with pg_dump, together with the data directory (docs/admin.md, \
         \"Scaling out\")",
    );
    assert!(!server.dir.path().join("b.tar").exists());
}

/// With `sslmode=require` agedrop speaks TLS to PostgreSQL (rustls) and checks the
/// server's certificate against `database.ca_file` (or the system's CAs) and the URL's
/// host name; `ca_file` without TLS is refused.
#[test]
fn postgresql_over_tls_checks_the_servers_certificate() {
    let cluster = cluster();
    let name = cluster.create_database();
    let url = format!(
        "postgres://postgres:hunter2@localhost:{}/{name}?sslmode=require",
        cluster.port
    );
    let mut server = Server::prepare(Options {
        database: Some(url.clone()),
        database_ca: Some(cluster.ca_file.clone()),
        ..Options::default()
    });
    server.serve();
    assert_eq!(
        submit(server.addr, vec![Part::text("message", b"over TLS")]).status,
        200
    );
    // Every connection of that database is encrypted (the harness's own is not).
    let encrypted: Vec<bool> = cluster
        .connect(&name)
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
             WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
            &[&name],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        !encrypted.is_empty() && encrypted.iter().all(|&tls| tls),
        "{encrypted:?}"
    );

    // The system's CAs do not know the test CA: refused, without the password.
    let out = Server::prepare(Options {
        database: Some(url.clone()),
        ..Options::default()
    })
    .refused();
    assert_refusal_starts(
        &out,
        "config key `database`: cannot connect to the database (PostgreSQL): error performing TLS handshake",
    );
    assert!(!stderr(&out).contains("hunter2"));

    // A name the certificate does not carry: refused too.
    let out = Server::prepare(Options {
        database: Some(format!(
            "postgres://postgres:hunter2@db.example.org:{}/{name}?sslmode=require&hostaddr=127.0.0.1",
            cluster.port
        )),
        database_ca: Some(cluster.ca_file.clone()),
        ..Options::default()
    })
    .refused();
    assert!(
        stderr(&out).contains("cannot connect to the database"),
        "{}",
        stderr(&out)
    );

    let out = Server::prepare(Options {
        database: Some(cluster.url(&name)),
        database_ca: Some(cluster.ca_file.clone()),
        ..Options::default()
    })
    .refused();
    assert_refused(
        &out,
        "config key `database.ca_file`: needs ?sslmode=require in database.url: without TLS there \
         is no certificate to check",
    );
}

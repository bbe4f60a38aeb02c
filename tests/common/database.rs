//! A throwaway PostgreSQL cluster on loopback for the tests that run against
//! PostgreSQL (`AGEDROP_TEST_DATABASE=postgres`, set by scripts/test's second run):
//! one cluster per test process, started on first use, each server a fresh database
//! in it. And [`Inspector`], the tests' own look into a server's metadata, whichever
//! database holds it.
//!
//! initdb refuses root, so the cluster belongs to the `postgres` user (Debian's
//! postgresql package), in a temp directory given to that user. A watcher shell, whose
//! standard input is a pipe this process holds open, stops the cluster and removes the
//! directory once the pipe closes: when the test process exits, however it exits.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::{eventually, SOON};

/// Debian's PostgreSQL binaries (initdb is not on PATH).
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// Whether this run's servers keep their metadata in PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("AGEDROP_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// For a test about SQLite's own files (the WAL, `secure_delete`, the file a seizure
/// copies): true, after saying so, when this run is against PostgreSQL, where the test
/// has nothing to look at. The test returns at once then.
pub fn sqlite_only(why: &str) -> bool {
    if on_postgres() {
        eprintln!("not run against PostgreSQL: {why}");
    }
    on_postgres()
}

pub struct Cluster {
    pub port: u16,
    /// The CA that signed the cluster's TLS certificate (for `localhost` and
    /// 127.0.0.1): connections with `sslmode=require` check against it.
    pub ca_file: std::path::PathBuf,
    /// The watcher, whose standard input stays open (never written) until this
    /// process exits; it is never waited for, since it outlives the process.
    _watcher: Child,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// This process's cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start)
}

impl Cluster {
    fn start() -> Cluster {
        let initdb = Path::new(BIN).join("initdb");
        assert!(
            initdb.is_file(),
            "this test needs PostgreSQL 15 ({BIN}; Debian package postgresql, installed by scripts/test)"
        );
        let dir = tempfile::Builder::new()
            .prefix("agedrop-pg-")
            .tempdir()
            .unwrap()
            .keep();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let as_postgres = |args: &[&str]| {
            let out = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let chown = Command::new("chown")
            .arg("postgres:")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(chown.success());
        let data = dir.join("data");
        let (data_s, dir_s) = (data.to_str().unwrap(), dir.to_str().unwrap());
        // TLS on, for the tests that ask for it (sslmode=require); plain otherwise.
        let ca = super::test_ca(&dir, "pg-ca");
        let (cert, key) = super::test_cert(&dir, "pg-server", &["localhost", "127.0.0.1"], &ca);
        for file in [&cert, &key] {
            let owned = Command::new("chown")
                .arg("postgres:")
                .arg(file)
                .status()
                .unwrap();
            assert!(owned.success());
        }
        std::fs::set_permissions(
            &key,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
        )
        .unwrap();
        // No fsync anywhere: a test cluster need not survive a power cut.
        as_postgres(&[
            initdb.to_str().unwrap(),
            "-D",
            data_s,
            "-A",
            "trust",
            "-U",
            "postgres",
            "-N",
            "--no-instructions",
        ]);
        let options = format!(
            "-p {port} -k {dir_s} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
             -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            cert.display(),
            key.display()
        );
        let pg_ctl = Path::new(BIN).join("pg_ctl");
        let log = dir.join("postgres.log");
        as_postgres(&[
            pg_ctl.to_str().unwrap(),
            "-D",
            data_s,
            "-o",
            &options,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ]);
        let script = format!(
            "read _ignored; runuser -u postgres -- {pg_ctl} -D {data_s} -m immediate -w stop; rm -rf {dir_s}",
            pg_ctl = pg_ctl.display()
        );
        let watcher = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let cluster = Cluster {
            port,
            ca_file: dir.join("pg-ca.pem"),
            _watcher: watcher,
        };
        eventually("PostgreSQL accepts connections", SOON, || {
            postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls).is_ok()
        });
        cluster
    }

    /// The URL of database `name` as agedrop's `[database] url` takes it.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A connection to database `name`.
    pub fn connect(&self, name: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(name), postgres::NoTls).unwrap()
    }

    /// A new, empty database: its name.
    pub fn create_database(&self) -> String {
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::SeqCst)
        );
        self.connect("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        name
    }
}

/// A value of a row, as the tests read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    pub fn text(&self) -> String {
        match self {
            Value::Text(text) => text.clone(),
            other => panic!("not text: {other:?}"),
        }
    }
    pub fn int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Value::Bytes(bytes) => bytes.clone(),
            other => panic!("not bytes: {other:?}"),
        }
    }
}

/// A look into a server's metadata from outside agedrop: its `agedrop.sqlite`, or its
/// PostgreSQL database. The SQL is the tests' own, with values written into it (ids
/// and numbers the server made).
pub enum Inspector {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl Inspector {
    /// Every row `sql` returns.
    pub fn rows(&mut self, sql: &str) -> Vec<Vec<Value>> {
        match self {
            Inspector::Sqlite(db) => {
                let mut stmt = db.prepare(sql).unwrap();
                let columns = stmt.column_count();
                stmt.query_map([], |row| {
                    (0..columns)
                        .map(|i| {
                            Ok(match row.get_ref(i)? {
                                rusqlite::types::ValueRef::Null => Value::Null,
                                rusqlite::types::ValueRef::Integer(n) => Value::Int(n),
                                rusqlite::types::ValueRef::Text(t) => {
                                    Value::Text(String::from_utf8(t.to_vec()).unwrap())
                                }
                                rusqlite::types::ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
                                rusqlite::types::ValueRef::Real(_) => panic!("no REAL columns"),
                            })
                        })
                        .collect()
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            }
            Inspector::Postgres(db) => {
                use postgres::types::Type;
                let rows = db.query(sql, &[]).unwrap();
                rows.iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| {
                                let ty = row.columns()[i].type_().clone();
                                let value = match ty {
                                    Type::INT8 => row.get::<_, Option<i64>>(i).map(Value::Int),
                                    Type::INT4 => {
                                        row.get::<_, Option<i32>>(i).map(|n| Value::Int(n.into()))
                                    }
                                    Type::BYTEA => {
                                        row.get::<_, Option<Vec<u8>>>(i).map(Value::Bytes)
                                    }
                                    _ => row.get::<_, Option<String>>(i).map(Value::Text),
                                };
                                value.unwrap_or(Value::Null)
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    }

    /// The one value of a one-row, one-column query.
    pub fn value(&mut self, sql: &str) -> Value {
        let mut rows = self.rows(sql);
        assert_eq!(rows.len(), 1, "one row from {sql}");
        rows.remove(0).remove(0)
    }

    /// Runs statements that return nothing, in one transaction that waits for the
    /// server's writers as its own would.
    pub fn write(&mut self, sql: &str) {
        match self {
            Inspector::Sqlite(db) => db
                .execute_batch(&format!("BEGIN IMMEDIATE; {sql} COMMIT;"))
                .unwrap(),
            Inspector::Postgres(db) => db
                .batch_execute(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK}); {sql} COMMIT;"
                ))
                .unwrap(),
        }
    }

    /// `ORDER BY` words that list sources in the order they were made: SQLite's rowid;
    /// PostgreSQL has none, so the position of each source's first item.
    pub fn sources_in_order(&self) -> &'static str {
        match self {
            Inspector::Sqlite(_) => "ORDER BY rowid",
            Inspector::Postgres(_) => {
                "ORDER BY (SELECT MIN(position) FROM items WHERE items.source_id = sources.id)"
            }
        }
    }
}

/// The advisory lock agedrop's writers take on PostgreSQL ("agedrop" in ASCII), so that
/// the harness's own writes wait for them as SQLite's `BEGIN IMMEDIATE` does.
const WRITER_LOCK: i64 = 0x0061_6765_6472_6f70;

//! A real `agedrop serve`: every test that needs a server starts it here, and the
//! process dies with its [`Server`] handle, whatever assert fails first.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::*;

/// What a test server looks like. `Options::default()` is a server on 127.0.0.1:0 (both
/// listeners) with cheap Argon2, made by `agedrop init` for a new test newsroom.
#[derive(Clone)]
pub struct Options {
    pub limits: Vec<(&'static str, String)>,
    /// Keys of `[source]` besides `listen` (TOML values).
    pub source: Vec<(&'static str, String)>,
    /// Keys of `[journalist]` besides `listen` (TOML values): see [`Options::journalist_tls`].
    pub journalist: Vec<(&'static str, String)>,
    /// `source.listen`: `127.0.0.1:0`, a fixed address, or `unix:/path`.
    pub source_listen: String,
    /// `journalist.listen`, likewise.
    pub journalist_listen: String,
    /// The whole config text instead of one made from the fields above (the data
    /// directory is still made by `init`, or copied from `data_from`).
    pub config_text: Option<String>,
    /// The newsroom whose identity is in this file, instead of a new one.
    pub identity: Option<PathBuf>,
    /// `newsroom.recipients` instead of the test newsroom's: for a newsroom key the
    /// harness cannot hold, such as one behind a passphrase.
    pub recipients: Option<Vec<String>>,
    /// Serve a copy of this existing data directory (made by an older agedrop, say)
    /// instead of one `agedrop init` makes.
    pub data_from: Option<PathBuf>,
    /// Put the data directory on a tmpfs of this many bytes (needs root): a small
    /// filesystem the test can fill.
    pub data_tmpfs: Option<u64>,
    /// With `data_tmpfs`: mount options added after the size (e.g. `nr_inodes=300`,
    /// `strictatime`).
    pub tmpfs_options: &'static str,
    /// `RUST_LOG` for the server; its log is [`Server::log`].
    pub log: &'static str,
    /// Arguments before `serve` (e.g. `--log-format json`).
    pub global_args: Vec<&'static str>,
    /// Pass `--allow-root`: tests run as root, so only the root refusal test clears it.
    pub allow_root: bool,
    /// `[[desk]]` entries (id, name, recipients) instead of `[newsroom] recipients`.
    pub desks: Vec<(&'static str, &'static str, Vec<String>)>,
    /// Top-level keys (TOML values), e.g. `retired_desks`.
    pub top: Vec<(&'static str, String)>,
    /// Keys of `[retention]` (TOML values); none: no such section.
    pub retention: Vec<(&'static str, String)>,
    /// Keys of `[site]` (TOML values); none: no such section.
    pub site: Vec<(&'static str, String)>,
    /// Keys of `[storage]` (TOML values); none: no such section (blobs on the disk).
    pub storage: Vec<(&'static str, String)>,
    /// `[database] url`: none for SQLite in the data directory. [`Server::prepare`]
    /// sets it to a new database of the test cluster when the run is against
    /// PostgreSQL ([`on_postgres`]).
    pub database: Option<String>,
    /// `[database] ca_file`, with `database`.
    pub database_ca: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: vec![("min_free_bytes", "0".into())],
            // Cheap Argon2 so debug builds stay quick; the real cost is benchmarked.
            source: vec![
                ("argon2_memory_kib", "8192".into()),
                ("argon2_passes", "1".into()),
            ],
            journalist: Vec::new(),
            source_listen: "127.0.0.1:0".into(),
            journalist_listen: "127.0.0.1:0".into(),
            config_text: None,
            identity: None,
            recipients: None,
            data_from: None,
            data_tmpfs: None,
            tmpfs_options: "",
            log: "info",
            global_args: Vec::new(),
            allow_root: true,
            desks: Vec::new(),
            top: Vec::new(),
            retention: Vec::new(),
            site: Vec::new(),
            storage: Vec::new(),
            database: None,
            database_ca: None,
        }
    }
}

impl Options {
    /// The journalist API over TLS with this certificate and key; with `client_ca`,
    /// only clients holding a certificate it issued get in (mutual TLS).
    pub fn journalist_tls(mut self, cert: &Path, key: &Path, client_ca: Option<&Path>) -> Self {
        let quoted = |path: &Path| format!("\"{}\"", path.display());
        self.journalist.push(("tls_cert", quoted(cert)));
        self.journalist.push(("tls_key", quoted(key)));
        if let Some(ca) = client_ca {
            self.journalist.push(("client_ca", quoted(ca)));
        }
        self
    }

    /// Both listeners on Unix sockets at these paths.
    pub fn unix_sockets(mut self, source: &Path, journalist: &Path) -> Self {
        self.source_listen = format!("unix:{}", source.display());
        self.journalist_listen = format!("unix:{}", journalist.display());
        self
    }

    /// The config file these options describe.
    fn config_text(&self, recipients: &[String]) -> String {
        let database = match (&self.database, &self.database_ca) {
            (Some(url), None) => format!("[database]\nurl = \"{url}\"\n"),
            (Some(url), Some(ca)) => format!(
                "[database]\nurl = \"{url}\"\nca_file = \"{}\"\n",
                ca.display()
            ),
            (None, _) => String::new(),
        };
        if let Some(text) = &self.config_text {
            return format!("{text}\n{database}");
        }
        let keys = |keys: &[(&str, String)]| -> String {
            keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
        };
        let quoted = |list: &[String]| -> String {
            list.iter()
                .map(|r| format!("\"{r}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let desks = if self.desks.is_empty() {
            format!("[newsroom]\nrecipients = [{}]\n", quoted(recipients))
        } else {
            self.desks
                .iter()
                .map(|(id, name, keys)| {
                    format!(
                        "[[desk]]\nid = \"{id}\"\nname = \"{name}\"\nrecipients = [{}]\n",
                        quoted(keys)
                    )
                })
                .collect()
        };
        let retention = if self.retention.is_empty() {
            String::new()
        } else {
            format!("[retention]\n{}", keys(&self.retention))
        };
        let site = if self.site.is_empty() {
            String::new()
        } else {
            format!("[site]\n{}", keys(&self.site))
        };
        let storage = if self.storage.is_empty() {
            String::new()
        } else {
            format!("[storage]\n{}", keys(&self.storage))
        };
        format!(
            "{}data_dir = \"data\"\n[source]\nlisten = \"{}\"\n{}[journalist]\nlisten = \"{}\"\n{}{desks}[limits]\n{}{retention}{site}{storage}{database}",
            keys(&self.top),
            self.source_listen,
            keys(&self.source),
            self.journalist_listen,
            keys(&self.journalist),
            keys(&self.limits),
        )
    }
}

/// Makes `dir/data` the way an admin does, with `agedrop init`, and removes the
/// config `init` wrote so the test can write its own.
pub fn init_data_dir(dir: &Path, recipient: &str) {
    let dir_arg = dir.to_str().unwrap();
    ok(&agedrop(
        &["init", "--recipient", recipient, "--dir", dir_arg],
        dir,
    ));
    std::fs::remove_file(dir.join("agedrop.toml")).unwrap();
}

/// Where a server said it listens: each side's "listening on" text (`http://ADDR/`,
/// `https://ADDR/` or `unix:/path`).
#[derive(Clone, Debug)]
pub struct Listening {
    pub source: String,
    pub journalist: String,
}

impl Listening {
    /// Reads a server's stdout up to both "listening on" lines, then keeps draining it
    /// so the server never blocks on a full pipe. `None` if it exited first.
    pub fn read(child: &mut Child) -> Option<Self> {
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let (mut source, mut journalist) = (None, None);
        while source.is_none() || journalist.is_none() {
            let line = lines.next()?.ok()?;
            if let Some(rest) = line.strip_prefix("agedrop: source site listening on ") {
                source = Some(rest.to_owned());
            } else if let Some(rest) = line.strip_prefix("agedrop: journalist API listening on ") {
                journalist = Some(rest.to_owned());
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Some(Listening {
            source: source?,
            journalist: journalist?,
        })
    }

    /// A side's TCP address (unspecified for a Unix socket).
    pub fn tcp(place: &str) -> SocketAddr {
        if place.starts_with("unix:") {
            return "0.0.0.0:0".parse().unwrap();
        }
        place
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| panic!("a listening address: {place}"))
    }

    /// A side's Unix socket, if it listens on one.
    pub fn socket(place: &str) -> Option<PathBuf> {
        place.strip_prefix("unix:").map(PathBuf::from)
    }
}

/// Spawns a long-running `agedrop` command (serve, demo) with stderr to `log` and waits
/// until it listens; panics with the log if it exits first.
pub fn spawn_listening(command: &mut Command, log: &Path) -> (KillOnDrop, Listening) {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let listening = Listening::read(&mut child.0).unwrap_or_else(|| {
        let status = child.0.wait().unwrap();
        panic!(
            "the server exited ({status}) before it listened; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    (child, listening)
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub newsroom: Newsroom,
    pub config: PathBuf,
    /// The source site's TCP address (unspecified when it is on a Unix socket).
    pub addr: SocketAddr,
    /// The journalist API's TCP address (unspecified when it is on a Unix socket).
    pub journalist: SocketAddr,
    /// Where each side said it listens.
    pub listening: Option<Listening>,
    pub log_file: PathBuf,
    options: Options,
    child: Option<KillOnDrop>,
    mounted: Option<PathBuf>,
}

impl Server {
    pub fn start() -> Self {
        Self::with(Options::default())
    }

    /// A running server as `options` describe it.
    pub fn with(options: Options) -> Self {
        let mut server = Self::prepare(options);
        server.serve();
        server
    }

    /// Everything but the process: the directory, the newsroom, the data directory
    /// and the config. [`Server::serve`] starts it, [`Server::refused`] sees it refuse.
    pub fn prepare(mut options: Options) -> Self {
        if on_postgres() && options.database.is_none() {
            let cluster = cluster();
            options.database = Some(cluster.url(&cluster.create_database()));
        }
        let dir = tempfile::tempdir().unwrap();
        let newsroom = match &options.identity {
            Some(identity) => Newsroom::load(identity),
            None => Newsroom::new(dir.path()),
        };
        let data = dir.path().join("data");
        let mounted = options.data_tmpfs.map(|size| {
            std::fs::create_dir(&data).unwrap();
            let extra = match options.tmpfs_options {
                "" => String::new(),
                more => format!(",{more}"),
            };
            mount_tmpfs(&data, &format!("size={size},mode=0700{extra}"));
            data.clone()
        });
        match &options.data_from {
            None => init_data_dir(dir.path(), &newsroom.recipient),
            Some(from) => {
                let out = Command::new("cp")
                    .arg("-r")
                    .arg(from)
                    .arg(&data)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", stderr(&out));
                let _ = std::fs::create_dir(data.join("tmp"));
            }
        }
        let recipients = options
            .recipients
            .clone()
            .unwrap_or_else(|| vec![newsroom.recipient.clone()]);
        let config = dir.path().join("agedrop.toml");
        std::fs::write(&config, options.config_text(&recipients)).unwrap();
        let log_file = dir.path().join("server.log");
        let unspecified = "0.0.0.0:0".parse().unwrap();
        Server {
            dir,
            newsroom,
            config,
            addr: unspecified,
            journalist: unspecified,
            listening: None,
            log_file,
            options,
            child: None,
            mounted,
        }
    }

    /// Two nodes of one drop: servers made with `options` (twice), the second given the
    /// first's newsroom key, instance secret and PostgreSQL database, both serving.
    pub fn two_nodes(options: impl Fn() -> Options) -> (Server, Server) {
        let mut first = Server::prepare(options());
        let mut second = Server::prepare(Options {
            identity: Some(first.newsroom.identity_file.clone()),
            // One drop, one database (when it is PostgreSQL).
            database: first.options.database.clone(),
            ..options()
        });
        std::fs::copy(
            first.data().join("instance-secret"),
            second.data().join("instance-secret"),
        )
        .unwrap();
        first.serve();
        second.serve();
        (first, second)
    }

    /// `agedrop serve` with this server's config, as options say.
    fn serve_command(&self) -> Command {
        let mut args = self.options.global_args.clone();
        args.push("serve");
        if self.options.allow_root {
            args.push("--allow-root");
        }
        args.push("--config");
        let mut command = agedrop_command(&args, self.dir.path());
        command.arg(&self.config).env("RUST_LOG", self.options.log);
        command
    }

    /// Starts the server and waits until both sides listen.
    pub fn serve(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let (child, listening) = spawn_listening(&mut self.serve_command(), &self.log_file);
        self.addr = Listening::tcp(&listening.source);
        self.journalist = Listening::tcp(&listening.journalist);
        self.listening = Some(listening);
        self.child = Some(child);
    }

    /// Runs `serve` expecting a refusal at start-up: its output once it exits. Fails if
    /// it is still running after [`SOON`] (it started instead).
    pub fn refused(&self) -> Output {
        // No log lines: the refusal is then the whole of stderr.
        let child = self
            .serve_command()
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        eventually("serve exits, refusing to start", SOON, || {
            child.0.try_wait().unwrap().is_some()
        });
        let mut out = Output {
            status: child.0.wait().unwrap(),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        use std::io::Read;
        child
            .0
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut out.stdout)
            .unwrap();
        child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut out.stderr)
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "a refused server never says it listens"
        );
        out
    }

    /// The source site's Unix socket, when it listens on one.
    pub fn source_socket(&self) -> Option<PathBuf> {
        Listening::socket(&self.listening.as_ref()?.source)
    }

    /// The journalist API's Unix socket, when it listens on one.
    pub fn journalist_socket(&self) -> Option<PathBuf> {
        Listening::socket(&self.listening.as_ref()?.journalist)
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").0.id()
    }

    /// How many sockets the server process holds open (listeners included): a test
    /// takes a baseline, then waits for connections to be accepted or closed.
    pub fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// The baseline of [`Server::sockets`]: the count once it has stayed the same for
    /// half a second (bounded), so connections of earlier requests that the server is
    /// still closing are not counted in it.
    pub fn settled_sockets(&self) -> usize {
        let deadline = std::time::Instant::now() + SOON;
        let mut last = self.sockets();
        let mut since = std::time::Instant::now();
        while std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.sockets();
            if now != last {
                last = now;
                since = std::time::Instant::now();
            } else if since.elapsed() >= Duration::from_millis(500) {
                break;
            }
        }
        last
    }

    /// Connections waiting in the source listener's accept queue (the kernel's
    /// count, from /proc/net/tcp).
    pub fn accept_queue(&self) -> usize {
        let port = format!(":{:04X}", self.addr.port());
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        table
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            // local address, state LISTEN (0A), tx_queue:rx_queue.
            .find(|fields| fields[1].ends_with(&port) && fields[3] == "0A")
            .map(|fields| {
                let rx = fields[4].split(':').nth(1).unwrap();
                usize::from_str_radix(rx, 16).unwrap()
            })
            .expect("the source site listens on TCP")
    }

    /// SIGKILL: no cleanup of any kind runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.0.kill().unwrap();
            child.0.wait().unwrap();
        }
    }

    /// SIGTERM, then waits until the process has exited: everything it was going to
    /// log is in [`Server::log`]. (The server gives open connections 10 s.)
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&child.0);
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
            eventually(
                "the server exits after SIGTERM",
                Duration::from_secs(30),
                || child.0.try_wait().unwrap().is_some(),
            );
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.serve();
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap()
    }

    /// Every file in the blob directory, sorted.
    pub fn blobs(&self) -> Vec<PathBuf> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.data().join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
    }

    pub fn temp_files(&self) -> usize {
        std::fs::read_dir(self.data().join("tmp")).unwrap().count()
    }

    /// The server's metadata, looked at from outside: `agedrop.sqlite`, or its
    /// PostgreSQL database.
    pub fn db(&self) -> Inspector {
        match &self.options.database {
            Some(url) => {
                Inspector::Postgres(postgres::Client::connect(url, postgres::NoTls).unwrap())
            }
            None => Inspector::Sqlite(
                rusqlite::Connection::open(self.data().join("agedrop.sqlite")).unwrap(),
            ),
        }
    }

    /// Rows of the items table.
    pub fn items(&self) -> Vec<Item> {
        self.db()
            .rows("SELECT id, source_id, kind, seq, day, size, meta_size FROM items ORDER BY source_id, seq")
            .into_iter()
            .map(|r| Item {
                id: r[0].text(),
                source_id: r[1].text(),
                kind: r[2].text(),
                seq: r[3].int(),
                day: r[4].text(),
                size: r[5].int(),
                meta_size: r[6].int(),
            })
            .collect()
    }

    pub fn sources(&self) -> usize {
        self.db().value("SELECT COUNT(*) FROM sources").int() as usize
    }

    /// The sources table: (id, label, recipient), oldest first.
    pub fn source_rows(&self) -> Vec<(String, String, String)> {
        let mut db = self.db();
        let sql = format!(
            "SELECT id, label, recipient FROM sources {}",
            db.sources_in_order()
        );
        db.rows(&sql)
            .into_iter()
            .map(|r| (r[0].text(), r[1].text(), r[2].text()))
            .collect()
    }

    /// Decrypts an item and its metadata (age crate), checking the blob sizes.
    pub fn open_item(&self, item: &Item) -> (Vec<u8>, serde_json::Value) {
        let blobs = self.data().join("blobs");
        let blob = std::fs::read(blobs.join(format!("{}.age", item.id))).unwrap();
        assert_eq!(blob.len() as i64, item.size);
        let meta = std::fs::read(blobs.join(format!("{}.meta.age", item.id))).unwrap();
        assert_eq!(meta.len() as i64, item.meta_size);
        let meta = self.newsroom.decrypt(&meta);
        let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
        (self.newsroom.decrypt(&blob), meta)
    }

    /// Stores a reply the way the journalist side does, bypassing the API: a blob and
    /// a row (the server reads both per request).
    pub fn store_reply(&self, source_id: &str, ciphertext: &[u8]) -> String {
        let id = hex(&noise(
            16,
            ciphertext.len() as u64 ^ 0x5eed ^ std::process::id() as u64,
        ));
        std::fs::write(
            self.data().join("blobs").join(format!("{id}.reply.age")),
            ciphertext,
        )
        .unwrap();
        // The source's next order and the next export position, as the server takes
        // them (the ids are the server's hex, safe to write into the SQL).
        assert!(source_id.bytes().all(|b| b.is_ascii_hexdigit()));
        self.db().write(&format!(
            "UPDATE sources SET next_seq = next_seq + 1 WHERE id = '{source_id}';
             UPDATE counters SET value = value + 1 WHERE name = 'export';
             INSERT INTO replies (id, source_id, day, size, seq, position)
             VALUES ('{id}', '{source_id}', '2026-01-01', {size},
                     (SELECT next_seq FROM sources WHERE id = '{source_id}'),
                     (SELECT value FROM counters WHERE name = 'export'));",
            size = ciphertext.len()
        ));
        id
    }

    /// `agedrop journalist add NAME` beside the running server: the token.
    pub fn add_journalist(&self, name: &str) -> String {
        let out = agedrop(
            &[
                "journalist",
                "add",
                name,
                "--config",
                self.config.to_str().unwrap(),
            ],
            self.dir.path(),
        );
        ok(&out);
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Like [`Server::add_journalist`], with the token written to `DIR/NAME.token`:
    /// the token file, as the journalist commands take it.
    pub fn add_journalist_file(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.token"));
        std::fs::write(&path, format!("{}\n", self.add_journalist(name))).unwrap();
        path
    }

    /// `DELETE /api/v1/items/ID` with a bearer token: the status.
    pub fn delete_item(&self, token: &str, id: &str) -> u16 {
        self.api("DELETE", &format!("/api/v1/items/{id}"), token, b"")
            .0
    }

    /// Stops the server (SIGKILL) and swaps `blobs/` for an empty directory, as an
    /// unmounted volume looks: the directory with the blobs, to put back.
    pub fn hide_blobs(&mut self) -> PathBuf {
        self.kill9();
        let blobs = self.data().join("blobs");
        let away = self.dir.path().join("blobs-on-the-unmounted-volume");
        std::fs::rename(&blobs, &away).unwrap();
        std::fs::create_dir(&blobs).unwrap();
        away
    }

    /// The refusal `serve` gives when `blobs/` holds none of `rows` stored rows.
    pub fn assert_refuses_missing_blobs(&self, rows: usize) {
        assert_refused(
            &self.refused(),
            &format!(
                "config key `data_dir`: {} holds none of the blobs of the {rows} stored items and replies: is its volume mounted (or, for an object store, is this the right bucket)? Refusing to start, so that no item is dropped; nothing was changed",
                self.data().join("blobs").display()
            ),
        );
    }

    /// One journalist API request with a bearer token: status and raw body.
    pub fn api(&self, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let bearer = format!("Bearer {token}");
        let response = request(
            self.journalist,
            method,
            path,
            &[("Authorization", &bearer)],
            body,
        );
        (response.status, response.bytes)
    }

    /// `agedrop COMMAND --server URL --token-file TOKEN ARGS…` against this server's
    /// journalist API, run in its directory, to completion.
    pub fn with_token(&self, token: &Path, command: &str, args: &[&str]) -> Output {
        let url = format!("http://{}", self.journalist);
        let mut all = vec![command, "--server", &url, "--token-file"];
        all.push(token.to_str().unwrap());
        all.extend_from_slice(args);
        agedrop(&all, self.dir.path())
    }

    /// `agedrop open BUNDLE -i NEWSROOM_IDENTITY -o OUT` in this server's directory.
    pub fn open_bundle(&self, bundle: &Path, out: &Path) -> Output {
        agedrop(
            &[
                "open",
                bundle.to_str().unwrap(),
                "-i",
                self.newsroom.identity_file.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            self.dir.path(),
        )
    }

    /// `agedrop pull -o OUT` with `token`.
    pub fn pull(&self, token: &Path, out: &Path) -> Output {
        self.with_token(token, "pull", &["-o", out.to_str().unwrap()])
    }

    /// `agedrop reply` with `text` for the source labelled `label` in `bundle`, to the
    /// source and the newsroom: the reply bundle's path (`work/reply.tar`, replaced).
    pub fn write_reply(&self, bundle: &Path, label: &str, text: &str, work: &Path) -> PathBuf {
        let message = work.join("reply.txt");
        std::fs::write(&message, text).unwrap();
        let reply = work.join("reply.tar");
        let _ = std::fs::remove_file(&reply);
        ok(&agedrop(
            &[
                "reply",
                bundle.to_str().unwrap(),
                "-i",
                self.newsroom.identity_file.to_str().unwrap(),
                "--source",
                label,
                "--message",
                message.to_str().unwrap(),
                "-o",
                reply.to_str().unwrap(),
            ],
            work,
        ));
        reply
    }

    /// The ids of the stored replies, oldest first.
    pub fn reply_ids(&self) -> Vec<String> {
        self.db()
            .rows("SELECT id FROM replies ORDER BY position")
            .into_iter()
            .map(|r| r[0].text())
            .collect()
    }

    /// `DELETE /api/v1/sources/ID` with a bearer token: the status.
    pub fn delete_source(&self, token: &str, id: &str) -> u16 {
        self.api("DELETE", &format!("/api/v1/sources/{id}"), token, b"")
            .0
    }

    /// Pushes one reply to the first source through the journalist API, encrypted to
    /// its recipient: the status.
    pub fn push_reply(&self, token: &str, text: &[u8]) -> u16 {
        let (source_id, _, recipient) = self.source_rows().remove(0);
        let bundle = reply_bundle(&[(&source_id, encrypt_to(&[&recipient], text))]);
        let (status, body) = self.api("POST", "/api/v1/replies", token, &bundle);
        assert!(
            status == 201 || status >= 400,
            "{status} {}",
            String::from_utf8_lossy(&body)
        );
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The process goes first: a tmpfs in use cannot be unmounted.
        self.child.take();
        if let Some(mount) = self.mounted.take() {
            let _ = Command::new("umount").arg(&mount).status();
        }
    }
}

/// An export whose response has begun: the head and a little have been read (the
/// manifest has gone out, the blobs have not).
pub struct ExportInProgress {
    stream: std::net::TcpStream,
    first: Vec<u8>,
}

impl ExportInProgress {
    pub fn begin(server: &Server, token: &str) -> Self {
        let mut stream = connect(server.journalist);
        let bearer = format!("Bearer {token}");
        std::io::Write::write_all(
            &mut stream,
            &request_head(
                "GET",
                "/api/v1/export",
                &[("Host", "x"), ("Authorization", &bearer)],
            ),
        )
        .unwrap();
        let mut first = vec![0u8; 4096];
        let n = std::io::Read::read(&mut stream, &mut first).unwrap();
        assert!(n > 0);
        first.truncate(n);
        ExportInProgress { stream, first }
    }

    /// Reads the rest and checks that the bundle holds every one of `items` whole (the
    /// manifest, then each item's ciphertext and metadata record).
    pub fn finish_with(self, items: &[Item]) {
        let entries = self.finish();
        assert_eq!(
            entries.len(),
            1 + 2 * items.len(),
            "the whole bundle arrived"
        );
        for item in items {
            let (_, blob) = entries
                .iter()
                .find(|(name, _)| name == &format!("items/{}.age", item.id))
                .expect("every listed item is in the bundle");
            assert_eq!(blob.len() as i64, item.size);
        }
    }

    /// Reads the rest: the bundle's entries, which must be whole (end blocks).
    pub fn finish(mut self) -> Vec<(String, Vec<u8>)> {
        let mut raw = self.first;
        std::io::Read::read_to_end(&mut self.stream, &mut raw).unwrap();
        // A chunked body must end with its last chunk, or parsing fails.
        let response = parse_response(&raw);
        assert_eq!(response.status, 200, "{}", response.body);
        untar(&response.bytes)
    }
}

#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub source_id: String,
    pub kind: String,
    pub seq: i64,
    pub day: String,
    pub size: i64,
    pub meta_size: i64,
}

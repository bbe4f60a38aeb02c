//! Test harness: a real `agedrop` process on 127.0.0.1:0, and a small HTTP/1.1 client
//! over std TcpStream that can stream, trickle and abort request bodies.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;

pub const BIN: &str = env!("CARGO_BIN_EXE_agedrop");

/// Fails loudly when an external tool is missing: tests never skip silently.
pub fn require_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "this test needs `{name}` (Debian package installed by scripts/test); run scripts/test"
        )
    })
}

/// A newsroom key pair made with the age crate, with its identity file on disk.
pub struct Newsroom {
    pub identity: age::x25519::Identity,
    pub recipient: String,
    pub identity_file: PathBuf,
}

impl Newsroom {
    /// The newsroom of an existing identity file.
    pub fn load(identity_file: &Path) -> Self {
        let text = std::fs::read_to_string(identity_file).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .expect("an age identity");
        let identity: age::x25519::Identity = line.parse().unwrap();
        Newsroom {
            recipient: identity.to_public().to_string(),
            identity,
            identity_file: identity_file.to_owned(),
        }
    }

    pub fn new(dir: &Path) -> Self {
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        let identity_file = dir.join("newsroom-key.txt");
        std::fs::write(
            &identity_file,
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
        Newsroom {
            identity,
            recipient,
            identity_file,
        }
    }

    /// Decrypts with the age crate; panics if the file is not whole and authentic.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Vec<u8> {
        age::decrypt(&self.identity, ciphertext).expect("decrypts with the age crate")
    }

    /// Decrypts with Debian's `age` binary.
    pub fn decrypt_with_cli(&self, path: &Path) -> Vec<u8> {
        let age = require_tool("age");
        let out = Command::new(age)
            .arg("-d")
            .arg("-i")
            .arg(&self.identity_file)
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age -d failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

/// Options for a test server's config.
#[derive(Clone)]
pub struct Options {
    pub limits: Vec<(&'static str, String)>,
    pub source: Vec<(&'static str, String)>,
    pub log: &'static str,
    /// Put the data directory on a tmpfs of this many bytes (needs root): a small
    /// filesystem the test can fill.
    pub data_tmpfs: Option<u64>,
    /// With `data_tmpfs`: mount options added after the size (e.g. `nr_inodes=300`,
    /// `strictatime`).
    pub tmpfs_options: &'static str,
    /// Serve a copy of this existing data directory (made by an older agedrop, say)
    /// with the newsroom identity in `.1`, instead of one `agedrop init` makes.
    pub data_from: Option<(PathBuf, PathBuf)>,
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
            log: "info",
            data_tmpfs: None,
            tmpfs_options: "",
            data_from: None,
        }
    }
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub newsroom: Newsroom,
    pub config: PathBuf,
    pub addr: SocketAddr,
    pub journalist: SocketAddr,
    pub log_file: PathBuf,
    options: Options,
    child: Option<Child>,
    mounted: Option<PathBuf>,
}

/// Makes `dir/data` the way an admin does, with `agedrop init`, and removes the
/// config `init` wrote so the test can write its own.
pub fn init_data_dir(dir: &Path, recipient: &str) {
    let out = Command::new(BIN)
        .args(["init", "--recipient", recipient, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(dir.join("agedrop.toml")).unwrap();
}

/// `agedrop init` in `dir`, then a test config on 127.0.0.1:0.
pub fn write_config(dir: &Path, recipient: &str, options: &Options) -> PathBuf {
    match &options.data_from {
        None => init_data_dir(dir, recipient),
        Some((data, _)) => {
            let out = Command::new("cp")
                .arg("-r")
                .arg(data)
                .arg(dir.join("data"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = std::fs::create_dir(dir.join("data/tmp"));
        }
    }
    let mut limits = String::new();
    for (key, value) in &options.limits {
        limits.push_str(&format!("{key} = {value}\n"));
    }
    let mut source = String::new();
    for (key, value) in &options.source {
        source.push_str(&format!("{key} = {value}\n"));
    }
    let config = dir.join("agedrop.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[source]\nlisten = \"127.0.0.1:0\"\n{source}[journalist]\nlisten = \"127.0.0.1:0\"\n[newsroom]\nrecipients = [\"{recipient}\"]\n[limits]\n{limits}"
        ),
    )
    .unwrap();
    config
}

/// Reads the two "listening on" lines a server prints on stdout.
pub fn read_addresses(child: &mut Child) -> (SocketAddr, SocketAddr) {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut source = None;
    let mut journalist = None;
    while source.is_none() || journalist.is_none() {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => panic!("server exited before it listened"),
        };
        let addr = |line: &str| {
            let url = line.rsplit(' ').next().unwrap();
            SocketAddr::from_str(
                url.trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .trim_end_matches('/'),
            )
            .unwrap()
        };
        if line.starts_with("agedrop: source site listening on ") {
            source = Some(addr(&line));
        } else if line.starts_with("agedrop: journalist API listening on ") {
            journalist = Some(addr(&line));
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (source.unwrap(), journalist.unwrap())
}

impl Server {
    pub fn start() -> Self {
        Self::with(Options::default())
    }

    pub fn with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let newsroom = match &options.data_from {
            Some((_, identity)) => Newsroom::load(identity),
            None => Newsroom::new(dir.path()),
        };
        let mounted = options.data_tmpfs.map(|size| {
            let data = dir.path().join("data");
            std::fs::create_dir(&data).unwrap();
            let out = Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!(
                        "size={size},mode=0700{}{}",
                        if options.tmpfs_options.is_empty() {
                            ""
                        } else {
                            ","
                        },
                        options.tmpfs_options
                    ),
                    "tmpfs",
                ])
                .arg(&data)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "this test mounts a small tmpfs and needs root: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            data
        });
        let config = write_config(dir.path(), &newsroom.recipient, &options);
        let log_file = dir.path().join("server.log");
        let mut server = Server {
            dir,
            newsroom,
            config,
            addr: "0.0.0.0:0".parse().unwrap(),
            journalist: "0.0.0.0:0".parse().unwrap(),
            log_file,
            options,
            child: None,
            mounted,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--allow-root"])
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", self.options.log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let (addr, journalist) = read_addresses(&mut child);
        self.addr = addr;
        self.journalist = journalist;
        self.child = Some(child);
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// SIGKILL: no cleanup of any kind runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap()
    }

    /// The stored items as (blob path, metadata path) pairs, from the blob directory.
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

    /// Rows of the items table: (id, source_id, kind, seq, day, size).
    pub fn items(&self) -> Vec<Item> {
        let db = rusqlite::Connection::open(self.data().join("agedrop.sqlite")).unwrap();
        let mut stmt = db
            .prepare("SELECT id, source_id, kind, seq, day, size, meta_size FROM items ORDER BY source_id, seq")
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok(Item {
                    id: r.get(0)?,
                    source_id: r.get(1)?,
                    kind: r.get(2)?,
                    seq: r.get(3)?,
                    day: r.get(4)?,
                    size: r.get(5)?,
                    meta_size: r.get(6)?,
                })
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows
    }

    pub fn sources(&self) -> usize {
        let db = rusqlite::Connection::open(self.data().join("agedrop.sqlite")).unwrap();
        db.query_row("SELECT COUNT(*) FROM sources", [], |r| r.get::<_, i64>(0))
            .unwrap() as usize
    }

    /// Decrypts an item and its metadata (age crate), checking the blob sizes.
    pub fn open_item(&self, item: &Item) -> (Vec<u8>, serde_json::Value) {
        let blob =
            std::fs::read(self.data().join("blobs").join(format!("{}.age", item.id))).unwrap();
        assert_eq!(blob.len() as i64, item.size);
        let meta = std::fs::read(
            self.data()
                .join("blobs")
                .join(format!("{}.meta.age", item.id)),
        )
        .unwrap();
        assert_eq!(meta.len() as i64, item.meta_size);
        let meta = self.newsroom.decrypt(&meta);
        let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
        (self.newsroom.decrypt(&blob), meta)
    }

    /// Waits (bounded) until `check` holds.
    pub fn eventually(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mount) = self.mounted.take() {
            let _ = Command::new("umount").arg(&mount).status();
        }
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

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
}

/// Reads a whole HTTP/1.1 response: up to Content-Length when the server sends one
/// (some servers keep the connection open despite `Connection: close`), else to EOF.
pub fn read_response(stream: &mut impl Read) -> Response {
    parse_response(&read_raw_response(stream))
}

/// Reads a response like [`read_response`], but returns `None` instead of panicking
/// when the connection ends before a whole head arrived (the server was killed).
pub fn try_read_response(stream: &mut impl Read) -> Option<Response> {
    let raw = read_raw_response(stream);
    raw.windows(4)
        .any(|w| w == b"\r\n\r\n")
        .then(|| parse_response(&raw))
}

/// The bytes of one response, as far as they came.
fn read_raw_response(stream: &mut impl Read) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|length| raw.len() >= split + 4 + length) {
                break;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("reading a response: {e} after {} bytes", raw.len());
                break;
            }
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    raw
}

pub fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers
            .entry(name.trim().to_ascii_lowercase())
            .or_default()
            .push(value.trim().to_owned());
    }
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.iter().any(|v| v.contains("chunked")))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
}

pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let host = addr.to_string();
    let mut all = vec![("Host", host.as_str())];
    all.extend_from_slice(headers);
    request_with_host(addr, method, path, &all, body)
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

/// A form session: the csrf cookie and token from `GET /submit`.
#[derive(Clone, Debug)]
pub struct Form {
    pub cookie: String,
    pub token: String,
}

pub fn form(addr: SocketAddr) -> Form {
    let page = get(addr, "/submit");
    assert_eq!(page.status, 200);
    let cookie = page
        .header("set-cookie")
        .expect("GET /submit sets the csrf cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .expect("the form has a hidden csrf input")
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    Form { cookie, token }
}

/// One multipart part.
#[derive(Clone)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub data: Vec<u8>,
}

impl Part {
    pub fn text(name: &str, value: &[u8]) -> Self {
        Part {
            name: name.into(),
            filename: None,
            content_type: "application/octet-stream".into(),
            data: value.to_vec(),
        }
    }

    pub fn file(filename: &str, data: Vec<u8>) -> Self {
        Part {
            name: "files".into(),
            filename: Some(filename.into()),
            content_type: "application/octet-stream".into(),
            data,
        }
    }
}

pub const BOUNDARY: &str = "----agedroptestboundary7MA4YWxkTrZu0gW";

pub fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match &part.filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{f}\"\r\nContent-Type: {}\r\n\r\n",
                    part.name, part.content_type
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", part.name).as_bytes(),
            ),
        }
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The csrf part followed by `parts`.
pub fn with_csrf(form: &Form, parts: Vec<Part>) -> Vec<Part> {
    let mut all = vec![Part::text("csrf", form.token.as_bytes())];
    all.extend(parts);
    all
}

/// POSTs a multipart body to /submit with the form's cookie.
pub fn post_submit(addr: SocketAddr, form: &Form, body: &[u8]) -> Response {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    request(
        addr,
        "POST",
        "/submit",
        &[("Cookie", &form.cookie), ("Content-Type", &content_type)],
        body,
    )
}

/// Fetches a form and submits `parts` with it.
pub fn submit(addr: SocketAddr, parts: Vec<Part>) -> Response {
    let form = form(addr);
    post_submit(addr, &form, &multipart(&with_csrf(&form, parts)))
}

/// Starts a POST /submit and sends only the first `sent` bytes of `body`, leaving the
/// connection open: the caller drops or keeps the stream.
pub fn partial_submit(addr: SocketAddr, form: &Form, body: &[u8], sent: usize) -> TcpStream {
    let mut stream = connect(addr);
    let head = format!(
        "POST /submit HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        form.cookie,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..sent]).unwrap();
    stream.flush().unwrap();
    stream
}

/// Deterministic pseudo-random bytes (xorshift), so large bodies need no fixtures.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The code shown on the page after a first submission.
pub fn code_from(page: &Response) -> String {
    page.body
        .split("id=\"code\">")
        .nth(1)
        .expect("the page shows a code")
        .split('<')
        .next()
        .unwrap()
        .to_owned()
}

/// A client that keeps cookies and the last csrf token, like a browser without
/// JavaScript.
pub struct Browser {
    pub addr: SocketAddr,
    pub cookies: BTreeMap<String, String>,
    pub csrf: Option<String>,
    pub host: String,
    /// When set, every request goes through this SOCKS5 proxy to `host:port`.
    pub socks: Option<(SocketAddr, u16)>,
}

impl Browser {
    pub fn new(addr: SocketAddr) -> Self {
        Browser {
            addr,
            cookies: BTreeMap::new(),
            csrf: None,
            host: addr.to_string(),
            socks: None,
        }
    }

    /// A browser that reaches `host:port` through a SOCKS5 proxy (Tor's SOCKS port),
    /// letting the proxy resolve the name.
    pub fn through_socks(proxy: SocketAddr, host: &str, port: u16) -> Self {
        let mut browser = Browser::new(proxy);
        browser.host = host.to_owned();
        browser.socks = Some((proxy, port));
        browser
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, response: &Response) {
        for cookie in response.headers.get("set-cookie").into_iter().flatten() {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        if let Some(token) = response.body.split("name=\"csrf\" value=\"").nth(1) {
            self.csrf = Some(token.split('"').next().unwrap().to_owned());
        }
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Response {
        let cookies = self.cookie_header();
        let host = self.host.clone();
        let mut headers = vec![("Host", host.as_str())];
        if !cookies.is_empty() {
            headers.push(("Cookie", cookies.as_str()));
        }
        if let Some(content_type) = content_type {
            headers.push(("Content-Type", content_type));
        }
        let response = match self.socks {
            None => request_with_host(self.addr, method, path, &headers, body),
            Some((proxy, port)) => {
                let mut stream = socks5(proxy, &self.host, port);
                exchange(&mut stream, method, path, &headers, body)
            }
        };
        self.absorb(&response);
        response
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, None, b"")
    }

    /// POSTs a url-encoded form with the current csrf token first.
    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.csrf.clone().expect("GET a page with a form first");
        let mut body = format!("csrf={}", urlencode(&csrf));
        for (name, value) in fields {
            body.push_str(&format!("&{}={}", urlencode(name), urlencode(value)));
        }
        self.request(
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
        )
    }

    /// POSTs `parts` to /submit as multipart, csrf first.
    pub fn submit(&mut self, parts: Vec<Part>) -> Response {
        let csrf = self.csrf.clone().expect("GET a page with a form first");
        let mut all = vec![Part::text("csrf", csrf.as_bytes())];
        all.extend(parts);
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        self.request("POST", "/submit", Some(&content_type), &multipart(&all))
    }

    pub fn login(&mut self, code: &str) -> Response {
        self.get("/login");
        self.post_form("/login", &[("code", code)])
    }
}

pub fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Like [`request`], but the caller supplies the Host header.
pub fn request_with_host(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    exchange(&mut connect(addr), method, path, headers, body)
}

/// One request and its response over any stream (TCP, Unix socket, SOCKS tunnel).
pub fn exchange(
    stream: &mut (impl Read + Write),
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    read_response(stream)
}

impl Server {
    /// The sources table: (id, label, recipient).
    pub fn source_rows(&self) -> Vec<(String, String, String)> {
        let db = rusqlite::Connection::open(self.data().join("agedrop.sqlite")).unwrap();
        let mut stmt = db
            .prepare("SELECT id, label, recipient FROM sources ORDER BY rowid")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows
    }
}

impl Server {
    /// Stores a reply the way the journalist side will: a blob and a row. (Until
    /// `agedrop push` exists this is the only way in; the server reads both per request.)
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
        let db = rusqlite::Connection::open(self.data().join("agedrop.sqlite")).unwrap();
        db.execute(
            "INSERT INTO replies (id, source_id, day, size) VALUES (?1, ?2, '2026-01-01', ?3)",
            rusqlite::params![id, source_id, ciphertext.len() as i64],
        )
        .unwrap();
        id
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Encrypts `text` to the given recipients with the age crate.
pub fn encrypt_to(recipients: &[&str], text: &[u8]) -> Vec<u8> {
    let parsed: Vec<age::x25519::Recipient> =
        recipients.iter().map(|r| r.parse().unwrap()).collect();
    let encryptor =
        age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    writer.write_all(text).unwrap();
    writer.finish().unwrap();
    out
}

/// Opens a TCP stream to `host:port` through a SOCKS5 proxy (RFC 1928, name resolved
/// by the proxy).
pub fn socks5(proxy: SocketAddr, host: &str, port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(proxy).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    stream.write_all(&[5, 1, 0]).unwrap();
    let mut reply = [0u8; 2];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply, [5, 0], "SOCKS5 without authentication");
    let mut request = vec![5, 1, 0, 3, host.len() as u8];
    request.extend_from_slice(host.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).unwrap();
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(
        head[1], 0,
        "SOCKS5 connect to {host}:{port} failed with code {}",
        head[1]
    );
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        _ => {
            let mut n = [0u8; 1];
            stream.read_exact(&mut n).unwrap();
            usize::from(n[0])
        }
    };
    let mut rest = vec![0u8; skip + 2];
    stream.read_exact(&mut rest).unwrap();
    stream
}

/// A tar of regular files, made with the crate's own header writer.
pub fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        out.extend_from_slice(&agedrop::bundle::tar_header(name, data.len() as u64));
        out.extend_from_slice(data);
        out.extend(std::iter::repeat_n(
            0u8,
            agedrop::bundle::tar_padding(data.len() as u64),
        ));
    }
    out.extend_from_slice(&agedrop::bundle::TAR_END);
    out
}

impl Server {
    /// `agedrop journalist add NAME` beside the running server: the token.
    pub fn add_journalist(&self, name: &str) -> String {
        let out = Command::new(BIN)
            .args(["journalist", "add", name, "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "journalist add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// One journalist API request with a bearer token: status and raw body.
    pub fn api(&self, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut stream = connect(self.journalist);
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            self.journalist,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let raw = read_raw_to_end(&mut stream);
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let response = parse_response(&raw[..split + 4]);
        let mut body = raw[split + 4..].to_vec();
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        (response.status, body)
    }
}

/// Every byte until the server closes the connection.
fn read_raw_to_end(stream: &mut impl Read) -> Vec<u8> {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    raw
}

/// The entries of an export bundle (name, data), read with the crate's own strict
/// reader; panics if the bundle is cut short (no end blocks).
pub fn untar(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert!(
        data.ends_with(&agedrop::bundle::TAR_END),
        "the bundle has no end blocks: cut short"
    );
    let mut tar = agedrop::bundle::TarReader::new(data);
    let mut out = Vec::new();
    while let Some(entry) = tar.next_entry().unwrap() {
        let bytes = agedrop::bundle::read_small(&mut tar, &entry, u64::MAX).unwrap();
        out.push((entry.name, bytes));
    }
    out
}

/// A reply bundle as `agedrop reply` makes it: one reply per (source id, ciphertext).
pub fn reply_bundle(replies: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let manifest = serde_json::json!({
        "format": agedrop::bundle::REPLY_FORMAT,
        "version": agedrop::bundle::VERSION,
        "replies": replies.iter().enumerate().map(|(n, (source, _))| {
            serde_json::json!({ "source_id": source, "file": format!("replies/{n}.age") })
        }).collect::<Vec<_>>(),
    })
    .to_string();
    let names: Vec<String> = (0..replies.len())
        .map(|n| format!("replies/{n}.age"))
        .collect();
    let mut entries: Vec<(&str, &[u8])> =
        vec![(agedrop::bundle::REPLY_MANIFEST, manifest.as_bytes())];
    for (name, (_, data)) in names.iter().zip(replies) {
        entries.push((name, data));
    }
    tar(&entries)
}

impl Server {
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

/// A child process that is killed and reaped when the guard drops, so a failing assert
/// never leaves a server running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

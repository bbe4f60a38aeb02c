//! A real browser with JavaScript disabled: Debian's chromium driven by chromedriver
//! over the W3C WebDriver protocol.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::{eventually, request, require_tool};

/// chromedriver plus one browser session; both stopped on drop, even on failure.
pub struct Driver {
    addr: SocketAddr,
    pub session: String,
    child: Child,
    _profile: tempfile::TempDir,
}

impl Driver {
    /// A browser with JavaScript off, as a source's Tor Browser at "Safest".
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// A browser with JavaScript on, for tools the test injects that need timers (an
    /// accessibility audit); the pages themselves carry no script and their CSP
    /// forbids one.
    pub fn with_javascript() -> Self {
        Self::launch(true)
    }

    fn launch(javascript: bool) -> Self {
        let chromium = require_tool("chromium");
        let chromedriver = require_tool("chromedriver");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        eventually("chromedriver listens", Duration::from_secs(30), || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        let profile = tempfile::tempdir().unwrap();
        let mut driver = Driver {
            addr,
            session: String::new(),
            child,
            _profile: profile,
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=900,1300",
                    format!("--user-data-dir={}", driver._profile.path().display()),
                ],
                // JavaScript off, as in Tor Browser at "Safest" (1: allowed).
                "prefs": {"profile.managed_default_content_settings.javascript": if javascript { 1 } else { 2 }}
            }
        }}});
        let created = driver.call("POST", "/session", Some(capabilities));
        driver.session = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        driver
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![];
        if method == "POST" {
            headers.push(("Content-Type", "application/json"));
        }
        let response = request(self.addr, method, path, &headers, body.as_bytes());
        let value: Value = serde_json::from_str(&response.body).unwrap_or_else(|_| {
            panic!("webdriver answered {}: {}", response.status, response.body)
        });
        assert_eq!(response.status, 200, "webdriver {method} {path}: {value}");
        value["value"].clone()
    }

    pub fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn go(&self, url: &str) {
        self.session("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn find(&self, css: &str) -> String {
        let found = self.session(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    pub fn count(&self, css: &str) -> usize {
        self.session(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .map_or(0, Vec::len)
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.session(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.session(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    pub fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.session("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits (bounded) until an element matching `css` is on the page: a click on a
    /// form button returns before the browser has loaded the answer.
    pub fn wait_for(&self, css: &str) {
        eventually(
            &format!("{css} is on the page"),
            Duration::from_secs(20),
            || self.count(css) > 0,
        );
    }

    /// The value of attribute `name` of the first element matching `css`.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css);
        self.session("GET", &format!("/element/{element}/attribute/{name}"), None)
            .as_str()
            .map(str::to_owned)
    }

    /// Runs `script` as a function body in the page with `args`, as the WebDriver does
    /// (the page's own JavaScript stays off: this is the test's, not the page's).
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Like [`Driver::execute`], for a script that ends by calling its last argument.
    pub fn execute_async(&self, script: &str, args: Value) -> Value {
        self.session(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Sets the window's outer size.
    pub fn window(&self, width: u32, height: u32) {
        self.session(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        );
    }

    pub fn url(&self) -> String {
        self.session("GET", "/url", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.session("GET", "/screenshot", None);
        let png = base64_decode(data.as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = request(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                b"",
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64"),
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= u32::from(value(c)) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

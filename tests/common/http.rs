//! A small HTTP/1.1 client over std streams (TCP, Unix socket, SOCKS5 tunnel), and the
//! one place each request shape is written: raw request heads, chunk framing,
//! multipart parts and bodies, the source site's forms.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body as text (lossy), for pages.
    pub body: String,
    /// The body as sent (de-chunked), for bundles.
    pub bytes: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
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
/// when the connection ends before a whole head arrived (the server was killed, or
/// closed without an answer).
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

/// Parses a whole response; a chunked body must be whole (up to its last chunk).
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
    let mut bytes = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.iter().any(|v| v.contains("chunked")))
    {
        bytes = dechunk(&bytes);
    }
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).to_string(),
        bytes,
    }
}

/// The data of a chunked body; panics if it ends before its last (empty) chunk.
pub fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("the chunked body is cut short");
        let size_text = std::str::from_utf8(&data[..end]).unwrap().trim();
        let size = usize::from_str_radix(size_text, 16).unwrap();
        if size == 0 {
            return out;
        }
        assert!(
            data.len() >= end + 4 + size,
            "the chunked body is cut short"
        );
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
}

/// One chunk of a chunked body.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat()
}

/// The end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The head of an HTTP/1.1 request that closes its connection: the request line,
/// `Connection: close`, `headers` in order, the blank line.
pub fn request_head(method: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// A whole request: [`request_head`] with a `Content-Length` (for any body, and for
/// every POST), then the body.
pub fn raw_request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let length = body.len().to_string();
    let mut all = headers.to_vec();
    if !body.is_empty() || method == "POST" {
        all.push(("Content-Length", &length));
    }
    let mut request = request_head(method, path, &all);
    request.extend_from_slice(body);
    request
}

/// One request and its response over any stream (TCP, Unix socket, SOCKS tunnel).
pub fn exchange(
    stream: &mut (impl Read + Write),
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    // The server may answer and close before reading a body it refuses.
    let _ = stream.write_all(&raw_request(method, path, headers, body));
    read_response(stream)
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

/// One request to `addr` with `Host: ADDR`.
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

/// One request over a Unix socket, with `host` as the Host header.
pub fn request_unix(socket: &Path, host: &str, method: &str, path: &str) -> Response {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    exchange(&mut stream, method, path, &[("Host", host)], b"")
}

/// Sends raw bytes, half-closes if asked, and reads whatever comes back (`None` if the
/// server closed without a whole answer).
pub fn send_raw(addr: SocketAddr, request: &[u8], hang_up: bool) -> Option<Response> {
    let mut stream = connect(addr);
    // The server may answer and close before reading everything: that is fine.
    let _ = stream.write_all(request);
    if hang_up {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    try_read_response(&mut stream)
}

/// A form session: the csrf cookie and token from `GET /submit` (or any page with a
/// form, for a logged-in browser).
#[derive(Clone, Debug)]
pub struct Form {
    pub cookie: String,
    pub token: String,
}

/// How a raw POST says where its body ends.
#[derive(Clone, Copy)]
pub enum Framing {
    Length(usize),
    Chunked,
}

impl Form {
    /// The head of a POST to `path` on `addr` with this form's cookie.
    pub fn post_head(
        &self,
        addr: SocketAddr,
        path: &str,
        content_type: &str,
        framing: Framing,
    ) -> Vec<u8> {
        let host = addr.to_string();
        let length;
        let framing = match framing {
            Framing::Length(n) => {
                length = n.to_string();
                ("Content-Length", length.as_str())
            }
            Framing::Chunked => ("Transfer-Encoding", "chunked"),
        };
        request_head(
            "POST",
            path,
            &[
                ("Host", &host),
                ("Cookie", &self.cookie),
                ("Content-Type", content_type),
                framing,
            ],
        )
    }

    /// A whole POST to `path` on `addr` with this form's cookie, as raw bytes.
    pub fn post(&self, addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
        let mut request = self.post_head(addr, path, content_type, Framing::Length(body.len()));
        request.extend_from_slice(body);
        request
    }

    /// The head of a multipart POST /submit.
    pub fn submit_head(&self, addr: SocketAddr, framing: Framing) -> Vec<u8> {
        self.post_head(addr, "/submit", &multipart_type(), framing)
    }
}

/// GET /submit without panicking: the form's cookie and token, if the server answered
/// with a form (`None` if it is down, say).
pub fn try_form(addr: SocketAddr) -> Option<Form> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let host = addr.to_string();
    stream
        .write_all(&request_head("GET", "/submit", &[("Host", &host)]))
        .ok()?;
    let page = try_read_response(&mut stream)?;
    if page.status != 200 {
        return None;
    }
    let cookie = page.header("set-cookie")?.split(';').next()?.to_owned();
    let token = csrf_token(&page.body)?;
    Some(Form { cookie, token })
}

/// The hidden csrf input's value on a page.
fn csrf_token(page: &str) -> Option<String> {
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)?
        .split('"')
        .next()?;
    Some(token.to_owned())
}

/// GET /submit: a fresh form session.
pub fn form(addr: SocketAddr) -> Form {
    try_form(addr).expect("GET /submit answers 200 with the csrf cookie and a hidden csrf input")
}

/// One multipart part.
#[derive(Clone)]
pub struct Part {
    pub name: String,
    /// Raw bytes: tests send names that are not UTF-8 or hold a NUL.
    pub filename: Option<Vec<u8>>,
    pub content_type: String,
    pub data: Vec<u8>,
}

pub const BOUNDARY: &str = "----agedroptestboundary7MA4YWxkTrZu0gW";

pub fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// The closing boundary of a multipart body.
pub fn multipart_end() -> Vec<u8> {
    format!("--{BOUNDARY}--\r\n").into_bytes()
}

impl Part {
    /// A form field.
    pub fn text(name: &str, value: &[u8]) -> Self {
        Part {
            name: name.into(),
            filename: None,
            content_type: "application/octet-stream".into(),
            data: value.to_vec(),
        }
    }

    /// A file of the form's `files` input.
    pub fn file(filename: impl AsRef<[u8]>, data: Vec<u8>) -> Self {
        Part {
            name: "files".into(),
            filename: Some(filename.as_ref().to_vec()),
            content_type: "application/octet-stream".into(),
            data,
        }
    }

    /// The boundary line and the part's header lines, without the blank line that ends
    /// them: hostile tests add their own headers after it.
    pub fn head(&self) -> Vec<u8> {
        let mut head = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"",
            self.name
        )
        .into_bytes();
        if let Some(filename) = &self.filename {
            head.extend_from_slice(b"; filename=\"");
            head.extend_from_slice(filename);
            head.extend_from_slice(b"\"\r\nContent-Type: ");
            head.extend_from_slice(self.content_type.as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    /// The whole part: head, blank line, data, line break.
    pub fn encode(&self) -> Vec<u8> {
        [self.head().as_slice(), b"\r\n", &self.data, b"\r\n"].concat()
    }
}

pub fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut body: Vec<u8> = parts.iter().flat_map(Part::encode).collect();
    body.extend_from_slice(&multipart_end());
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
    let mut stream = connect(addr);
    let _ = stream.write_all(&form.post(addr, "/submit", &multipart_type(), body));
    read_response(&mut stream)
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
    stream
        .write_all(&form.submit_head(addr, Framing::Length(body.len())))
        .unwrap();
    stream.write_all(&body[..sent]).unwrap();
    stream.flush().unwrap();
    stream
}

/// Submits `parts` with a chunked body (no Content-Length), so the server cannot
/// refuse it up front and must notice while streaming.
pub fn submit_chunked(addr: SocketAddr, parts: Vec<Part>) -> Response {
    let form = form(addr);
    let body = multipart(&with_csrf(&form, parts));
    let mut stream = connect(addr);
    stream
        .write_all(&form.submit_head(addr, Framing::Chunked))
        .unwrap();
    for piece in body.chunks(256 * 1024) {
        // The server may answer (and stop reading) before the body is all sent.
        if stream.write_all(&chunk(piece)).is_err() {
            break;
        }
    }
    let _ = stream.write_all(LAST_CHUNK);
    try_read_response(&mut stream).expect("the server answers a chunked upload")
}

/// The code shown on the page after a first submission.
pub fn code_from(page: &Response) -> String {
    let element = page
        .body
        .split("id=\"code\"")
        .nth(1)
        .expect("the page shows a code");
    element[element.find('>').unwrap() + 1..]
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

    /// The Cookie header's value.
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// This browser's cookies and csrf token as a form session, for raw requests.
    pub fn form(&self) -> Form {
        Form {
            cookie: self.cookie_header(),
            token: self.csrf.clone().expect("GET a page with a form first"),
        }
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
        if let Some(token) = csrf_token(&response.body) {
            self.csrf = Some(token);
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
                through_tor(proxy, &self.host, port, method, path, &headers, body)
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
        self.request(
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            form_body(&csrf, fields).as_bytes(),
        )
    }

    /// POSTs `parts` to /submit as multipart, csrf first.
    pub fn submit(&mut self, parts: Vec<Part>) -> Response {
        let body = multipart(&with_csrf(&self.form(), parts));
        self.request("POST", "/submit", Some(&multipart_type()), &body)
    }

    pub fn login(&mut self, code: &str) -> Response {
        self.get("/login");
        self.post_form("/login", &[("code", code)])
    }
}

/// A url-encoded form body, csrf first.
pub fn form_body(csrf: &str, fields: &[(&str, &str)]) -> String {
    let mut body = format!("csrf={}", urlencode(csrf));
    for (name, value) in fields {
        body.push_str(&format!("&{}={}", urlencode(name), urlencode(value)));
    }
    body
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

/// One request to `host:port` through Tor's SOCKS port, the way Tor Browser reaches an
/// onion service: a kept HTTP client (ureq, as `agedrop pull` uses) with a `socks5h`
/// proxy, so Tor resolves the name. Redirects are not followed; the page is returned.
fn through_tor(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let proxy = ureq::Proxy::builder(ureq::ProxyProtocol::Socks5h)
        .host(&proxy.ip().to_string())
        .port(proxy.port())
        .resolve_target(false)
        .build()
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(Some(proxy))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{host}:{port}{path}"));
    for (name, value) in headers {
        // ureq writes Host from the URL.
        if !name.eq_ignore_ascii_case("host") {
            request = request.header(*name, *value);
        }
    }
    let mut answer = agent.run(request.body(body.to_vec()).unwrap()).unwrap();
    let mut response = Response {
        status: answer.status().as_u16(),
        headers: Default::default(),
        body: String::new(),
        bytes: Vec::new(),
    };
    for (name, value) in answer.headers() {
        response
            .headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(value.to_str().unwrap_or_default().to_owned());
    }
    response.bytes = answer.body_mut().read_to_vec().unwrap();
    response.body = String::from_utf8_lossy(&response.bytes).into_owned();
    response
}

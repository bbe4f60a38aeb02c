//! A small HTTP/1.1 client for `pull`, `push` and `delete`: plain TCP or Tor's SOCKS
//! port (`socks5h`, so the onion name is resolved by Tor, never locally), optionally
//! TLS with a pinned CA and a client certificate. Only these commands use it; the
//! offline commands never open a socket.
//!
//! Everything that goes into a request is checked or typed first: the host and path
//! of `--server`, the token (visible ASCII only), the cursor (a number), ids (hex). A
//! string from a server, a proxy or a file never reaches a request line or a header as
//! it came (SECURITY.md, "Network use of the commands").

use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv6Addr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use zeroize::Zeroizing;

use crate::bundle;
use crate::cursor::Cursor;

/// Why a request failed, or could not be made.
#[derive(Debug)]
pub enum ClientError {
    /// The URL or proxy is not one we can use.
    BadAddress(String),
    /// An `.onion` server without `--proxy`: its name would go to the system resolver.
    OnionWithoutProxy,
    /// TLS options with an `http://` server: they would not be used, and the token
    /// would travel without the TLS the user asked for.
    TlsOptionsWithoutHttps,
    /// The token file could not be read.
    TokenUnreadable(PathBuf, io::Error),
    /// The token file holds more than one line of visible characters.
    TokenMalformed(PathBuf),
    /// An item or source id that is not 32 lowercase hex digits.
    NotAnId,
    /// Network or file trouble.
    Io(io::Error),
    /// The SOCKS proxy refused.
    Proxy(String),
    /// TLS set-up failed (certificates).
    Tls(String),
    /// The server's answer is not HTTP we understand.
    BadResponse(&'static str),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::BadAddress(why) => write!(f, "{why}"),
            ClientError::OnionWithoutProxy => write!(
                f,
                "an .onion server needs --proxy socks5h://127.0.0.1:9050 (Tor's SOCKS port)"
            ),
            ClientError::TlsOptionsWithoutHttps => write!(
                f,
                "--ca-cert, --client-cert and --client-key need an https:// server; \
                 refusing to send the token over plain http://"
            ),
            ClientError::TokenUnreadable(path, err) => {
                write!(f, "cannot read {}: {err}", path.display())
            }
            ClientError::TokenMalformed(path) => write!(
                f,
                "{} does not hold a token: it should hold only the token from `agedrop \
                 journalist add`, with no spaces, line breaks or control characters inside it",
                path.display()
            ),
            ClientError::NotAnId => write!(
                f,
                "an id is 32 lowercase hex digits, as in the bundle's manifest"
            ),
            ClientError::Io(err) => write!(f, "{err}"),
            ClientError::Proxy(why) => write!(f, "SOCKS proxy: {why}"),
            ClientError::Tls(why) => write!(f, "TLS: {why}"),
            ClientError::BadResponse(why) => write!(f, "bad response from the server: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(err: io::Error) -> Self {
        ClientError::Io(err)
    }
}

/// Longest token file read; a token is under 100 bytes.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// A journalist's API token, as read from the token file: visible ASCII only, so it
/// can go into a header as it is. No `Debug`; wiped on drop.
pub struct ApiToken(Zeroizing<String>);

impl ApiToken {
    /// Reads the token file. Whitespace around the token is ignored; anything else
    /// that is not visible ASCII (a line break inside it, say) is refused.
    pub fn read(path: &Path) -> Result<ApiToken, ClientError> {
        let unreadable = |err| ClientError::TokenUnreadable(path.to_owned(), err);
        let file = fs::File::open(path).map_err(unreadable)?;
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_TOKEN_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        let token = bytes.trim_ascii();
        if token.is_empty()
            || bytes.len() as u64 > MAX_TOKEN_FILE_BYTES
            || !token.iter().all(u8::is_ascii_graphic)
        {
            return Err(ClientError::TokenMalformed(path.to_owned()));
        }
        let token = std::str::from_utf8(token).expect("visible ASCII is UTF-8");
        Ok(ApiToken(Zeroizing::new(token.to_owned())))
    }
}

/// What `delete` removes: an item, or a source with everything it sent.
#[derive(Clone, Copy, Debug)]
pub enum Deletion<'a> {
    /// An item, by id.
    Item(&'a str),
    /// A source, by id.
    Source(&'a str),
}

/// Certificates for an `https://` server.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// PEM file of the CA that signed the server's certificate (required for https).
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate, for servers that require one (mutual TLS).
    pub client_cert: Option<PathBuf>,
    /// Its PEM private key.
    pub client_key: Option<PathBuf>,
}

/// A journalist API server.
pub struct Client {
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    host: String,
    port: u16,
    base: String,
    proxy: Option<(String, u16)>,
    token: ApiToken,
}

/// A response whose body is read as it arrives.
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Box<dyn Read>,
}

impl Response {
    /// The body as text (for error messages), at most 64 KiB.
    pub fn text(mut self) -> String {
        let mut text = Vec::new();
        let _ = (&mut self.body).take(64 * 1024).read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    }
}

impl Client {
    /// A client for `url` (`http://host[:port][/path]` or `https://…`), optionally
    /// through `proxy` (`socks5h://host:port`), sending `token`.
    pub fn new(
        url: &str,
        proxy: Option<&str>,
        tls: &TlsFiles,
        token: ApiToken,
    ) -> Result<Self, ClientError> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(ClientError::BadAddress(
                "--server must start with http:// or https://".into(),
            ));
        };
        let (authority, base) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let (host, port) = split_host_port(authority, if https { 443 } else { 80 })?;
        if !valid_host(&host) {
            return Err(ClientError::BadAddress(
                "--server must name a host (letters, digits, '.', '-') or an IP address".into(),
            ));
        }
        if !base.bytes().all(is_path_byte) {
            return Err(ClientError::BadAddress(
                "the path in --server may hold only URL path characters (no query, no spaces)"
                    .into(),
            ));
        }
        let proxy = match proxy {
            None => None,
            Some(p) => {
                let rest = p.strip_prefix("socks5h://").ok_or_else(|| {
                    ClientError::BadAddress(
                        "--proxy must be socks5h://HOST:PORT (Tor's SOCKS port)".into(),
                    )
                })?;
                Some(split_host_port(rest.trim_end_matches('/'), 9050)?)
            }
        };
        if proxy.is_none() && is_onion(&host) {
            // Without Tor the name would go to the system resolver: a leak, and useless.
            return Err(ClientError::OnionWithoutProxy);
        }
        let tls_options =
            tls.ca_cert.is_some() || tls.client_cert.is_some() || tls.client_key.is_some();
        if !https && tls_options {
            return Err(ClientError::TlsOptionsWithoutHttps);
        }
        let tls = if https {
            let config = tls_config(tls)?;
            let name = ServerName::try_from(host.clone()).map_err(|_| {
                ClientError::BadAddress("the server name is not valid for TLS".into())
            })?;
            Some((config, name))
        } else {
            None
        };
        Ok(Client {
            tls,
            host,
            port,
            base: base.trim_end_matches('/').to_owned(),
            proxy,
            token,
        })
    }

    /// `GET /api/v1/export?since=CURSOR`: a bundle of what came after `since`.
    pub fn export(&self, since: Cursor) -> Result<Response, ClientError> {
        self.request("GET", &format!("/api/v1/export?since={since}"), None)
    }

    /// `POST /api/v1/replies` with the `len` bytes of a reply bundle from `bundle`.
    pub fn push_reply(&self, bundle: &mut dyn Read, len: u64) -> Result<Response, ClientError> {
        self.request("POST", "/api/v1/replies", Some((bundle, len)))
    }

    /// `DELETE /api/v1/items/ID` or `/api/v1/sources/ID`.
    pub fn delete(&self, what: Deletion<'_>) -> Result<Response, ClientError> {
        let path = match what {
            Deletion::Item(id) if bundle::is_id(id) => format!("/api/v1/items/{id}"),
            Deletion::Source(id) if bundle::is_id(id) => format!("/api/v1/sources/{id}"),
            _ => return Err(ClientError::NotAnId),
        };
        self.request("DELETE", &path, None)
    }

    /// Sends a request with an optional body of `len` bytes from `body`. `path` is made
    /// by the methods above from checked parts only.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&mut dyn Read, u64)>,
    ) -> Result<Response, ClientError> {
        let target = if self.base.is_empty() {
            path.to_owned()
        } else {
            format!("/{}{path}", self.base)
        };
        if !target.bytes().all(|b| is_path_byte(b) || b == b'?') {
            return Err(ClientError::BadAddress(
                "refusing to build a request from unchecked text".into(),
            ));
        }
        let tcp = match &self.proxy {
            Some((host, port)) => socks5_connect(host, *port, &self.host, self.port)?,
            None => {
                let addr = (self.host.as_str(), self.port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| {
                        ClientError::BadAddress("the server name does not resolve".into())
                    })?;
                TcpStream::connect_timeout(&addr, Duration::from_secs(60))?
            }
        };
        tcp.set_read_timeout(Some(Duration::from_secs(600)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(600)))?;
        let mut stream: Box<dyn ReadWrite> = match &self.tls {
            Some((config, name)) => {
                let conn = rustls::ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(|e| ClientError::Tls(e.to_string()))?;
                Box::new(rustls::StreamOwned::new(conn, tcp))
            }
            None => Box::new(tcp),
        };
        let mut head = Zeroizing::new(format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\nUser-Agent: agedrop\r\n",
            self.host,
            &*self.token.0
        ));
        if let Some((_, len)) = &body {
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        if let Some((reader, len)) = body {
            let copied = io::copy(&mut reader.take(len), &mut stream)?;
            if copied != len {
                return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        stream.flush()?;
        read_response(BufReader::with_capacity(256 * 1024, stream))
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// True for a name that ends in `.onion`, however it is spelt: `X.ONION` and the
/// fully qualified `x.onion.` are the same name to a resolver.
fn is_onion(host: &str) -> bool {
    host.trim_end_matches('.')
        .to_ascii_lowercase()
        .ends_with(".onion")
}

/// A DNS name (letters, digits, `.`, `-`, `_`) or an IP address: nothing that could
/// end a header line or change the request's meaning.
fn valid_host(host: &str) -> bool {
    let name = !host.is_empty()
        && host.len() <= 254
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    name || host.parse::<Ipv6Addr>().is_ok()
}

/// A byte that may stand in a URL path as it is (RFC 3986 `pchar` and `/`).
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b)
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), ClientError> {
    let bad = || ClientError::BadAddress(format!("not a host[:port]: {authority}"));
    if authority.is_empty() {
        return Err(bad());
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => default_port,
        };
        return Ok((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_owned(), port.parse().map_err(|_| bad())?)),
        None => Ok((authority.to_owned(), default_port)),
    }
}

fn read_pem_file(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|e| ClientError::Tls(format!("cannot read {}: {e}", path.display())))
}

fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let ca = files.ca_cert.as_ref().ok_or_else(|| {
        ClientError::Tls(
            "an https:// server needs --ca-cert (the CA that signed its certificate)".into(),
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read_pem_file(ca)?) {
        let cert = cert.map_err(|e| ClientError::Tls(format!("{}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| ClientError::Tls(format!("{}: {e}", ca.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&files.client_cert, &files.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&read_pem_file(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ClientError::Tls(format!("{}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_slice(&read_pem_file(key)?)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ClientError::Tls(e.to_string()))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(ClientError::Tls(
                "--client-cert and --client-key go together".into(),
            ))
        }
    };
    Ok(Arc::new(config))
}

/// Connects through a SOCKS5 proxy, letting it resolve `host` (RFC 1928, `socks5h`).
fn socks5_connect(
    proxy_host: &str,
    proxy_port: u16,
    host: &str,
    port: u16,
) -> Result<TcpStream, ClientError> {
    let mut tcp = TcpStream::connect((proxy_host, proxy_port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
    tcp.write_all(&[5, 1, 0])?;
    let mut reply = [0u8; 2];
    tcp.read_exact(&mut reply)?;
    if reply != [5, 0] {
        return Err(ClientError::Proxy(
            "it wants authentication we do not offer".into(),
        ));
    }
    let name = host.as_bytes();
    let len = u8::try_from(name.len())
        .map_err(|_| ClientError::BadAddress("host name too long".into()))?;
    let mut request = vec![5, 1, 0, 3, len];
    request.extend_from_slice(name);
    request.extend_from_slice(&port.to_be_bytes());
    tcp.write_all(&request)?;
    let mut head = [0u8; 4];
    tcp.read_exact(&mut head)?;
    if head[1] != 0 {
        return Err(ClientError::Proxy(format!(
            "connection refused (SOCKS reply {})",
            head[1]
        )));
    }
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut n = [0u8; 1];
            tcp.read_exact(&mut n)?;
            usize::from(n[0])
        }
        _ => return Err(ClientError::Proxy("malformed reply".into())),
    };
    let mut rest = vec![0u8; skip + 2];
    tcp.read_exact(&mut rest)?;
    Ok(tcp)
}

fn read_response<R: BufRead + 'static>(mut reader: R) -> Result<Response, ClientError> {
    let mut head_bytes = 0usize;
    let mut line = String::new();
    let mut next_line = |reader: &mut R, line: &mut String| -> Result<(), ClientError> {
        line.clear();
        let n = (&mut *reader).take(8 * 1024).read_line(line)?;
        head_bytes += n;
        if n == 0 || head_bytes > 64 * 1024 {
            return Err(ClientError::BadResponse("headers missing or too long"));
        }
        Ok(())
    };
    next_line(&mut reader, &mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(ClientError::BadResponse("no status line"))?;
    let mut chunked = false;
    let mut length: Option<u64> = None;
    loop {
        next_line(&mut reader, &mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "content-length" => length = value.parse().ok(),
                _ => {}
            }
        }
    }
    let body: Box<dyn Read> = if chunked {
        Box::new(Chunked {
            inner: reader,
            left: 0,
            done: false,
        })
    } else if let Some(len) = length {
        Box::new(Exact {
            inner: reader.take(len),
            left: len,
        })
    } else {
        Box::new(reader)
    };
    Ok(Response { status, body })
}

/// A Content-Length body: fewer bytes than announced is an error, not an EOF.
struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the response was cut short",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A chunked body; a body cut before its last chunk is an error.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            (&mut self.inner).take(1024).read_line(&mut line)?;
            if line.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the response was cut short",
                ));
            }
            let size = line.trim_end().split(';').next().unwrap_or("");
            let size = u64::from_str_radix(size.trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers, then the blank line.
                loop {
                    line.clear();
                    (&mut self.inner).take(8 * 1024).read_line(&mut line)?;
                    if line.trim_end().is_empty() {
                        break;
                    }
                }
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the response was cut short",
            ));
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_and_truncation_is_an_error() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let mut response = read_response(BufReader::new(&raw[..])).unwrap();
        let mut body = String::new();
        response.body.read_to_string(&mut body).unwrap();
        assert_eq!(body, "hello world");

        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n wo";
        let mut response = read_response(BufReader::new(&cut[..])).unwrap();
        assert!(response.body.read_to_end(&mut Vec::new()).is_err());

        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        let mut response = read_response(BufReader::new(&short[..])).unwrap();
        assert!(response.body.read_to_end(&mut Vec::new()).is_err());
    }

    fn token() -> ApiToken {
        ApiToken(Zeroizing::new("t".into()))
    }

    #[test]
    fn urls_and_proxies_parse() {
        let c = Client::new(
            "http://abc.onion/",
            Some("socks5h://127.0.0.1:9050"),
            &TlsFiles::default(),
            token(),
        )
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("abc.onion", 80));
        assert_eq!(c.proxy, Some(("127.0.0.1".into(), 9050)));
        let refused = |url: &str, proxy: Option<&str>| {
            Client::new(url, proxy, &TlsFiles::default(), token()).is_err()
        };
        assert!(refused("ftp://x", None));
        for onion in [
            "http://abc.onion/",
            "http://ABC.ONION",
            "http://abc.onion.:80",
        ] {
            assert!(
                refused(onion, None),
                "an onion name never goes to the system resolver: {onion}"
            );
        }
        assert!(refused("http://x", Some("socks5://x:1")));
        assert!(refused("https://x", None), "https needs a CA");
        assert!(refused("http://x\r\nX-Injected: 1/", None));
        assert!(refused("http://x/a b", None));
        assert!(refused("http://x/a?b", None));
        assert!(!refused("http://[::1]:8081/drop", None));
    }
}

//! The journalist API client for `pull`, `push`, `delete` and `watch`: plain TCP or Tor's SOCKS
//! port (`socks5h`, so the onion name is resolved by Tor, never locally), optionally
//! TLS with a pinned CA and a client certificate. Only these commands use it; the
//! offline commands never open a socket.
//!
//! Everything that goes into a request is checked or typed first: the host and path
//! of `--server`, the token (visible ASCII only), the cursor (a number), ids (hex). A
//! string from a server, a proxy or a file never reaches a request line or a header as
//! it came (SECURITY.md, "Network use of the commands").
//!
//! Why `ureq` 3: each command makes one blocking request whose body streams through
//! `Read`, which is ureq's whole model; it speaks SOCKS5 itself, uses rustls 0.23 with
//! the crypto provider we hand it (ring, as the server does: no aws-lc, no second TLS
//! stack), and brings three small MIT/Apache crates. hyper with tokio-socks and
//! tokio-rustls would need a runtime per command and more glue of our own. What we rely
//! on, read in ureq 3.5.2's source (hence the exact pin in Cargo.toml):
//!
//! - `socks5h`: for `ProxyProtocol::Socks5h` `resolve_target` is false, so `run()` does
//!   no local lookup and the SOCKS connector sends the host as a domain name (ATYP 3)
//!   for Tor to resolve. We also set `resolve_target(false)` ourselves. (`Socks5`
//!   resolves locally first; we never build one.)
//! - No proxy from the environment: `Config::default()` reads `ALL_PROXY`,
//!   `HTTPS_PROXY` and `HTTP_PROXY`; we always overwrite that with `--proxy` or `None`.
//! - The CA pin: `RootCerts::Specific` is an empty root store plus our CA. Neither the
//!   webpki-roots nor the platform-verifier feature is compiled in.
//! - Timeouts: `timeout_connect` bounds connecting, the SOCKS exchange and the TLS
//!   handshake; `timeout_per_read` and `timeout_per_write` end a silent transfer, and
//!   nothing bounds a live one (a bundle over Tor can take hours).
//! - A response body cut short (Content-Length or chunked) is an `UnexpectedEof` error,
//!   never a clean end; `pull` also checks the bundle whole before keeping it.
//! - ureq's debug logs redact `Authorization`; we mark the header sensitive too.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::http::HeaderValue;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
use ureq::{Agent, Proxy, ProxyProtocol, SendBody};
use zeroize::Zeroizing;

use crate::bundle;
use crate::cursor::Cursor;

/// Connecting, with the SOCKS exchange and the TLS handshake: an onion service's first
/// circuit can take a while.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// A transfer that moves no byte for this long is given up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

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
    /// `http://` to a server that is neither an onion service (Tor encrypts that path)
    /// nor on this machine: the token would cross the network in clear.
    PlainHttpOverNetwork,
    /// The token file could not be read.
    TokenUnreadable(PathBuf, io::Error),
    /// The token file holds more than one line of visible characters.
    TokenMalformed(PathBuf),
    /// An item or source id that is not 32 lowercase hex digits.
    NotAnId,
    /// TLS set-up failed (certificates).
    Tls(String),
    /// The server requires a client certificate (mutual TLS) and none was given.
    ClientCertRequired,
    /// The server refused the client certificate, with this TLS alert.
    ClientCertRefused(rustls::AlertDescription),
    /// The request failed: connecting, the proxy, TLS, or the server's answer.
    Request(ureq::Error),
}

impl ClientError {
    /// Whether no connection could be made at all (refused, or the proxy failed):
    /// through a SOCKS proxy, most likely Tor is not running.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ClientError::Request(ureq::Error::Io(err)) => matches!(
                err.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
            ),
            ClientError::Request(
                ureq::Error::ConnectionFailed | ureq::Error::ConnectProxyFailed(_),
            ) => true,
            _ => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::BadAddress(why) => write!(f, "{why}"),
            ClientError::OnionWithoutProxy => write!(
                f,
                "an .onion server needs --proxy socks5h://127.0.0.1:9050 (Tor's SOCKS port)"
            ),
            ClientError::PlainHttpOverNetwork => write!(
                f,
                "refusing to send the token over plain http:// to a server that is neither \
                 an .onion address nor on this machine; use https:// (with --ca-cert) or \
                 the journalist API's onion address"
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
            ClientError::Tls(why) => write!(f, "TLS: {why}"),
            ClientError::ClientCertRequired => write!(
                f,
                "the server requires a client certificate (mutual TLS): pass --client-cert \
                 and --client-key with the certificate and key the drop's admin made for you"
            ),
            ClientError::ClientCertRefused(alert) => write!(
                f,
                "the server refused the client certificate (TLS alert: {alert:?}): it must be \
                 signed by the CA the server trusts (journalist.client_ca), unexpired, and \
                 made for client authentication (extendedKeyUsage clientAuth): ask the \
                 drop's admin for a new one (docs/admin.md, \"Journalist API over TLS\")"
            ),
            ClientError::Request(err) => write!(f, "the request failed: {err}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<ureq::Error> for ClientError {
    fn from(err: ureq::Error) -> Self {
        use rustls::AlertDescription as Alert;
        // rustls's alerts arrive as an io::Error around a rustls::Error. The server
        // checks nothing of ours but the client certificate, so these alerts are about
        // it; said plainly, since "received fatal alert" reads as the server's fault.
        let alert = match &err {
            ureq::Error::Io(io) => io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .and_then(|tls| match tls {
                    rustls::Error::AlertReceived(alert) => Some(*alert),
                    _ => None,
                }),
            _ => None,
        };
        match alert {
            Some(Alert::CertificateRequired) => ClientError::ClientCertRequired,
            Some(
                alert @ (Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA
                | Alert::AccessDenied
                | Alert::DecryptError),
            ) => ClientError::ClientCertRefused(alert),
            _ => ClientError::Request(err),
        }
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
    agent: Agent,
    /// `scheme://host:port[/base]`, from checked parts.
    origin: String,
    token: ApiToken,
}

/// A response whose body is read as it arrives.
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body, as it streams in (never buffered whole).
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
        let default_port = if https { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port)?;
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
                let (proxy_host, proxy_port) = split_host_port(rest.trim_end_matches('/'), 9050)?;
                if !valid_host(&proxy_host) {
                    return Err(ClientError::BadAddress(
                        "--proxy must name a host or an IP address".into(),
                    ));
                }
                // Socks5h and resolve_target(false): the proxy resolves the server's
                // name (see the top of this file).
                Some(
                    Proxy::builder(ProxyProtocol::Socks5h)
                        .host(&uri_host(&proxy_host))
                        .port(proxy_port)
                        .resolve_target(false)
                        .build()?,
                )
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
        if !https && !is_onion(&host) && !is_this_machine(&host) {
            return Err(ClientError::PlainHttpOverNetwork);
        }
        let config = Agent::config_builder()
            // Always set: the default would come from ALL_PROXY and friends.
            .proxy(proxy)
            .tls_config(tls_config(tls, https)?)
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent("agedrop")
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(IDLE_TIMEOUT))
            .timeout_per_write(Some(IDLE_TIMEOUT))
            .max_idle_connections(0)
            .build();
        // Rebuilt from the checked parts, not copied from `url`.
        let scheme = if https { "https" } else { "http" };
        let mut origin = format!("{scheme}://{}", uri_host(&host));
        if port != default_port {
            origin.push_str(&format!(":{port}"));
        }
        let base = base.trim_end_matches('/');
        if !base.is_empty() {
            origin.push_str(&format!("/{base}"));
        }
        Ok(Client {
            agent: Agent::new_with_config(config),
            origin,
            token,
        })
    }

    /// `GET /api/v1/export?since=CURSOR`: a bundle of what came after `since`.
    pub fn export(&self, since: Cursor) -> Result<Response, ClientError> {
        self.get(&format!("/api/v1/export?since={since}"))
    }

    /// `GET /api/v1/status`: how many items came after this account's last pull.
    pub fn status(&self) -> Result<Response, ClientError> {
        self.get("/api/v1/status")
    }

    /// `GET PATH` with the token.
    fn get(&self, path: &str) -> Result<Response, ClientError> {
        let url = self.url(path)?;
        let response = self
            .agent
            .get(url)
            .header("authorization", self.authorization())
            .call()?;
        Ok(into_response(response))
    }

    /// `POST /api/v1/replies` with the `len` bytes of a reply bundle from `bundle`.
    pub fn push_reply(&self, bundle: &mut dyn Read, len: u64) -> Result<Response, ClientError> {
        let url = self.url("/api/v1/replies")?;
        let mut body = ExactLength {
            inner: bundle.take(len),
            left: len,
        };
        let response = self
            .agent
            .post(url)
            .header("authorization", self.authorization())
            .header("content-length", len)
            .send(SendBody::from_reader(&mut body))?;
        Ok(into_response(response))
    }

    /// `DELETE /api/v1/items/ID` or `/api/v1/sources/ID`.
    pub fn delete(&self, what: Deletion<'_>) -> Result<Response, ClientError> {
        let path = match what {
            Deletion::Item(id) if bundle::is_id(id) => format!("/api/v1/items/{id}"),
            Deletion::Source(id) if bundle::is_id(id) => format!("/api/v1/sources/{id}"),
            _ => return Err(ClientError::NotAnId),
        };
        let url = self.url(&path)?;
        let response = self
            .agent
            .delete(url)
            .header("authorization", self.authorization())
            .call()?;
        Ok(into_response(response))
    }

    /// The origin and `path`, which the methods above make from checked parts only.
    fn url(&self, path: &str) -> Result<String, ClientError> {
        if !path.bytes().all(|b| is_path_byte(b) || b == b'?') {
            return Err(ClientError::BadAddress(
                "refusing to build a request from unchecked text".into(),
            ));
        }
        Ok(format!("{}{path}", self.origin))
    }

    /// `Bearer TOKEN`, marked sensitive. The header's own copy lives in ureq's request
    /// and is not wiped; ours is.
    fn authorization(&self) -> HeaderValue {
        let text = Zeroizing::new(format!("Bearer {}", &*self.token.0));
        let mut value = HeaderValue::from_str(&text)
            .expect("an ApiToken is visible ASCII, which a header value may hold");
        value.set_sensitive(true);
        value
    }
}

fn into_response(response: ureq::http::Response<ureq::Body>) -> Response {
    Response {
        status: response.status().as_u16(),
        body: Box::new(ResponseBody(response.into_body().into_reader())),
    }
}

/// A response body as it streams in. One that ends before its framing said it would is
/// an error in ureq (`UnexpectedEof`, "Peer disconnected"); this says what that means.
struct ResponseBody<R>(R);

impl<R: Read> Read for ResponseBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|err| match err.kind() {
            io::ErrorKind::UnexpectedEof => {
                io::Error::new(io::ErrorKind::UnexpectedEof, "the response was cut short")
            }
            _ => err,
        })
    }
}

/// Exactly `left` bytes: a source that ends sooner is an error, so a request never
/// announces more than it sends (ureq would wait for the rest).
struct ExactLength<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Read for ExactLength<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than when it was measured",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// True for a name that ends in `.onion`, however it is spelt: `X.ONION` and the
/// fully qualified `x.onion.` are the same name to a resolver.
/// `localhost` or a loopback address: a connection that never leaves the machine.
fn is_this_machine(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

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

/// A host as a URI writes it: an IPv6 address in brackets.
fn uri_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
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
            None if after.is_empty() => default_port,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_owned(), port.parse().map_err(|_| bad())?)),
        None => Ok((authority.to_owned(), default_port)),
    }
}

fn read_pem_file(path: &Path) -> Result<Vec<u8>, ClientError> {
    fs::read(path).map_err(|e| ClientError::Tls(format!("cannot read {}: {e}", path.display())))
}

/// ureq's TLS settings: ring, and for https only the CA in `--ca-cert` (and the client
/// certificate, if given). Everything is parsed and tried here, so a bad file is a
/// clear error now rather than a panic or a silently empty trust store later.
fn tls_config(files: &TlsFiles, https: bool) -> Result<TlsConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::clone(&provider));
    if !https {
        // Never used; and if it were, it would trust nothing.
        return Ok(builder
            .root_certs(RootCerts::Specific(Arc::new(Vec::new())))
            .build());
    }
    let ca = files.ca_cert.as_ref().ok_or_else(|| {
        ClientError::Tls(
            "an https:// server needs --ca-cert (the CA that signed its certificate)".into(),
        )
    })?;
    let ca_certs = CertificateDer::pem_slice_iter(&read_pem_file(ca)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Tls(format!("{}: {e}", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in &ca_certs {
        roots
            .add(cert.clone())
            .map_err(|e| ClientError::Tls(format!("{}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Tls(format!(
            "{}: no certificate in it",
            ca.display()
        )));
    }
    let client_cert = match (&files.client_cert, &files.client_key) {
        (Some(cert), Some(key_path)) => {
            let chain = CertificateDer::pem_slice_iter(&read_pem_file(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ClientError::Tls(format!("{}: {e}", cert.display())))?;
            if chain.first().is_some_and(crate::x509::is_version_1) {
                return Err(ClientError::Tls(format!(
                    "{}: {}: ask the drop's admin for a version 3 certificate with \
                     extensions (deploy/journalist-tls.sh client DIR NAME)",
                    cert.display(),
                    crate::x509::VERSION_1
                )));
            }
            let key_pem = Zeroizing::new(read_pem_file(key_path)?);
            let key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", key_path.display())))?;
            // The same check ureq makes (with an `expect`) when it first connects.
            rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .map_err(|e| ClientError::Tls(e.to_string()))?
                .with_root_certificates(roots)
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| ClientError::Tls(e.to_string()))?;
            let chain: Vec<Certificate<'static>> = chain
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            // The first key in the file, as PrivateKeyDer::from_pem_slice took above.
            let key = PrivateKey::from_pem(&key_pem)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", key_path.display())))?
                .to_owned();
            Some(ClientCert::new_with_certs(&chain, key))
        }
        (None, None) => None,
        _ => {
            return Err(ClientError::Tls(
                "--client-cert and --client-key go together".into(),
            ))
        }
    };
    let ca_certs: Vec<Certificate<'static>> = ca_certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    Ok(builder
        .root_certs(RootCerts::Specific(Arc::new(ca_certs)))
        .client_cert(client_cert)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.origin, "http://abc.onion");
        let proxy = c.agent.config().proxy().expect("the --proxy given");
        assert_eq!(proxy.protocol(), ProxyProtocol::Socks5h);
        assert!(!proxy.resolve_target(), "the proxy resolves the name");
        let c = Client::new(
            "http://[::1]:8081/drop/",
            None,
            &TlsFiles::default(),
            token(),
        )
        .unwrap();
        assert_eq!(c.origin, "http://[::1]:8081/drop");
        assert!(c.agent.config().proxy().is_none());
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
        assert!(refused("http://[::1]x/", None));
    }
}

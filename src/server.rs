//! Listeners and connections: the accept loop both HTTP interfaces run on.
//!
//! Our own loop rather than `axum::serve`, so that each listener caps its open
//! connections, every connection has a header-read deadline, Unix sockets work like TCP,
//! and no peer address is ever looked at (SECURITY.md, "Logs").

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::config::{Config, JournalistTls, Limits, Listen};
use crate::store::{Store, StoreError};
use crate::submission::Intake;
use crate::web::{self, source::SourceSite};

/// How long open connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// hyper's read buffer per connection: large enough for fast uploads, small enough
/// that many connections stay cheap.
const READ_BUFFER: usize = 256 * 1024;

/// Why the server could not start.
#[derive(Debug)]
pub enum ServerError {
    /// The data directory cannot be used.
    DataDir(StoreError),
    /// The journalist TLS files cannot be used.
    Tls {
        /// The config key.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A listen address cannot be bound.
    Bind {
        /// The config key (`source.listen`, `journalist.listen`).
        key: &'static str,
        /// The address.
        listen: Listen,
        /// The OS error.
        source: io::Error,
    },
    /// Sources belong to a desk the config no longer has, and `retired_desks` does not
    /// say it was removed on purpose.
    DeskRemoved {
        /// The desk's id.
        desk: String,
        /// How many sources it has.
        sources: i64,
    },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::DataDir(err) => write!(f, "config key `{}`: {err}", err.config_key()),
            ServerError::Tls { key, problem } => write!(f, "config key `{key}`: {problem}"),
            ServerError::Bind {
                key,
                listen,
                source,
            } => write!(f, "config key `{key}`: cannot listen on {listen}: {source}"),
            ServerError::DeskRemoved { desk, sources } => write!(
                f,
                "desk {desk:?} has {sources} source(s) but is not in the config: put its \
                 [[desk]] entry back, or add it to retired_desks = [\"{desk}\"] to keep \
                 its sources readable (and exportable) while it takes no new submissions"
            ),
        }
    }
}

impl std::error::Error for ServerError {}

/// A bound listener, TCP or Unix.
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix socket listener and its path (removed on drop of the server).
    Unix(UnixListener, PathBuf),
}

trait Connection: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Connection for T {}

impl Listener {
    /// Binds `listen`. A stale Unix socket (a socket file nobody listens on) is
    /// replaced; any other existing file is an error. A Unix socket gets mode 0660 and,
    /// with `group`, that group (so e.g. only `debian-tor` can connect).
    pub async fn bind(listen: &Listen, group: Option<&str>) -> io::Result<Self> {
        match listen {
            Listen::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await?)),
            Listen::Unix(path) => {
                use std::os::unix::fs::{FileTypeExt, PermissionsExt};
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    if !meta.file_type().is_socket() {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "the path exists and is not a socket",
                        ));
                    }
                    if tokio::net::UnixStream::connect(path).await.is_ok() {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            "another process is listening on this socket",
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                let listener = UnixListener::bind(path)?;
                let listener = Listener::Unix(listener, path.clone());
                // Only the owner and its group (e.g. debian-tor) may connect.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
                if let Some(group) = group {
                    let gid = group_id(group)?;
                    rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(
                        |e| {
                            io::Error::new(
                                io::Error::from(e).kind(),
                                format!("cannot give the socket to group {group}: {e}"),
                            )
                        },
                    )?;
                }
                Ok(listener)
            }
        }
    }

    /// Where it listens, as a URL for TCP (`http://127.0.0.1:8080/`) or `unix:/path`.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(addr) => format!("http://{addr}/"),
                Err(_) => "tcp (address unknown)".into(),
            },
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    async fn accept(&self) -> io::Result<Box<dyn Connection>> {
        // The peer address is dropped unread: we never know who connects.
        match self {
            Listener::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
            Listener::Unix(l, _) => Ok(Box::new(l.accept().await?.0)),
        }
    }
}

/// The id of group `name`, from /etc/group.
fn group_id(name: &str) -> io::Result<u32> {
    let groups = std::fs::read_to_string("/etc/group")?;
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let group = fields.next()?;
            let gid = fields.nth(1)?.parse().ok()?;
            (group == name).then_some(gid)
        })
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no group named {name}")))
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Builds the journalist listener's TLS acceptor: rustls (ring), TLS 1.2+, and client
/// certificates required when `client_ca` is set.
pub fn tls_acceptor(tls: &JournalistTls) -> Result<TlsAcceptor, ServerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |key: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| ServerError::Tls {
            key,
            problem: format!("cannot read {}: {e}", path.display()),
        })
    };
    let bad = |key: &'static str| {
        move |e: rustls::pki_types::pem::Error| ServerError::Tls {
            key,
            problem: format!("not a PEM certificate or key: {e}"),
        }
    };
    let chain = CertificateDer::pem_slice_iter(&read("journalist.tls_cert", &tls.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad("journalist.tls_cert"))?;
    if chain.is_empty() {
        return Err(ServerError::Tls {
            key: "journalist.tls_cert",
            problem: "no certificate in the file".into(),
        });
    }
    if crate::x509::is_version_1(&chain[0]) {
        return Err(ServerError::Tls {
            key: "journalist.tls_cert",
            problem: format!(
                "{}: {}: make a version 3 certificate with extensions \
                 (deploy/journalist-tls.sh server DIR HOST)",
                tls.cert.display(),
                crate::x509::VERSION_1
            ),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read("journalist.tls_key", &tls.key)?)
        .map_err(bad("journalist.tls_key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls {
            key: "journalist.tls_cert",
            problem: e.to_string(),
        })?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&read("journalist.client_ca", ca)?) {
                let cert = cert.map_err(bad("journalist.client_ca"))?;
                roots.add(cert).map_err(|e| ServerError::Tls {
                    key: "journalist.client_ca",
                    problem: e.to_string(),
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| ServerError::Tls {
                key: "journalist.client_ca",
                problem: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| ServerError::Tls {
            key: "journalist.tls_key",
            problem: e.to_string(),
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `shutdown` turns true, then lets open connections
/// finish for a short grace period. With `tls`, each connection first completes a TLS
/// handshake (within the header deadline).
///
/// At most `limits.max_connections` connections are open. When all are taken and a new
/// one arrives, the oldest connection with no request in flight (idle keep-alive, or
/// still sending its headers) is closed to make room: idle connections cannot lock the
/// site up, while requests being answered and uploads are never cut.
pub async fn serve(
    listener: Listener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open = Arc::new(OpenConnections::default());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut shutdown) => break,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = tokio::select! {
            permit = make_room(&slots, &open) => permit,
            _ = stopped(&mut shutdown) => break,
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        let limits = limits.clone();
        let tls = tls.clone();
        let tracked = open.add();
        let open = Arc::clone(&open);
        tokio::spawn(async move {
            let _registered = Registered {
                open: &open,
                id: tracked.id,
            };
            let stream: Box<dyn Connection> = match tls {
                None => stream,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout(), acceptor.accept(stream));
                    tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(tls_stream)) => Box::new(tls_stream),
                            // A failed handshake (no client certificate, say) is the
                            // client's business: nothing to log about it.
                            _ => return,
                        },
                        // Told to make room mid-handshake: nothing is lost by going.
                        () = tracked.state.evict.notified() => return,
                    }
                }
            };
            connection(stream, app, limits, &tracked, shutdown).await;
            drop(permit);
        });
    }
    let all = u32::try_from(limits.max_connections).expect("max_connections is validated");
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await;
}

/// A connection slot: a free one at once, else one freed by closing the oldest idle
/// connection; if every connection is busy with a request, the first one to end.
async fn make_room(slots: &Arc<Semaphore>, open: &OpenConnections) -> OwnedSemaphorePermit {
    loop {
        if let Ok(permit) = Arc::clone(slots).try_acquire_owned() {
            return permit;
        }
        open.evict_oldest_idle();
        // An evicted connection gives its slot back within moments; one that took a
        // request just before it was told to go keeps it, so look again soon.
        if let Ok(permit) =
            tokio::time::timeout(EVICTION_RETRY, Arc::clone(slots).acquire_owned()).await
        {
            return permit.expect("the slot semaphore is never closed");
        }
    }
}

/// How long the accept loop waits for an evicted connection's slot before it picks
/// another.
const EVICTION_RETRY: Duration = Duration::from_millis(100);

/// A listener's open connections by age, and whether each has a request in flight.
#[derive(Default)]
struct OpenConnections {
    next_id: AtomicU64,
    by_age: Mutex<BTreeMap<u64, Arc<ConnectionState>>>,
}

/// What the accept loop knows of one connection.
#[derive(Default)]
struct ConnectionState {
    /// Requests whose response hyper has not taken in full.
    in_flight: AtomicUsize,
    /// Already told to close: not picked again.
    evicting: AtomicBool,
    /// Told when the connection should close to make room.
    evict: Notify,
}

/// A connection's entry in [`OpenConnections`].
struct Tracked {
    id: u64,
    state: Arc<ConnectionState>,
}

impl OpenConnections {
    fn add(&self) -> Tracked {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState::default());
        self.lock().insert(id, Arc::clone(&state));
        Tracked { id, state }
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Tells the oldest connection without a request in flight, if any, to close; one
    /// told already is not picked again.
    fn evict_oldest_idle(&self) {
        let open = self.lock();
        let idle = open.values().find(|state| {
            state.in_flight.load(Ordering::Acquire) == 0 && !state.evicting.load(Ordering::Acquire)
        });
        if let Some(state) = idle {
            state.evicting.store(true, Ordering::Release);
            state.evict.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnectionState>>> {
        self.by_age.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes a connection out of [`OpenConnections`] when its task ends, however it ends.
struct Registered<'a> {
    open: &'a OpenConnections,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.open.remove(self.id);
    }
}

/// Counts a request as in flight until its response body is dropped (sent or
/// abandoned).
struct InFlight(Arc<ConnectionState>);

impl InFlight {
    fn enter(state: &Arc<ConnectionState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(state))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight while it is sent.
struct HeldBody {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

async fn connection(
    stream: Box<dyn Connection>,
    app: Router,
    limits: Limits,
    tracked: &Tracked,
    mut shutdown: watch::Receiver<bool>,
) {
    let header_timeout = limits.header_read_timeout();
    // Twice the body's idle timeout, so an idle upload is answered (with its error page)
    // by the handler before the connection itself is cut.
    let idle = limits.idle_body_timeout().saturating_mul(2);
    let stream = Watched::new(stream);
    let progress = stream.progress();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        // No Date header: the server's clock is nobody's business.
        .auto_date_header(false)
        .max_buf_size(READ_BUFFER);
    let state = Arc::clone(&tracked.state);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let in_flight = InFlight::enter(&state);
        let call = app.clone().oneshot(request);
        async move {
            let response = call.await?;
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(HeldBody {
                    body,
                    _in_flight: in_flight,
                })
            }))
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // Connection errors (resets, timeouts) are the client's business: nothing to log
    // that would not describe the client. `biased`: a connection whose request is ready
    // serves it before an eviction is looked at.
    tokio::select! {
        biased;
        _ = conn.as_mut() => {}
        // A connection that moves no byte either way for the idle timeout is dropped:
        // hyper arms no timer while its writes are stuck on a client that never reads.
        () = progress.stalled(idle) => {}
        // Told to make room: a graceful close ends an idle connection at once, and lets
        // one that took a request meanwhile, or still writes a response hyper has
        // queued, finish it first.
        // A request that arrived meanwhile may be an upload: no deadline then but the
        // stall watchdog, as for any upload.
        () = tracked.state.evict.notified() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                () = progress.stalled(idle) => {}
            }
        }
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

/// When a connection last moved a byte.
#[derive(Clone)]
struct Progress {
    started: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Progress {
    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `idle`.
    async fn stalled(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = self.started.elapsed().saturating_sub(last);
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    }
}

/// A connection that records progress on every successful read or write.
struct Watched {
    inner: Box<dyn Connection>,
    progress: Progress,
}

impl Watched {
    fn new(inner: Box<dyn Connection>) -> Self {
        Watched {
            inner,
            progress: Progress {
                started: Instant::now(),
                last_ms: Arc::new(AtomicU64::new(0)),
            },
        }
    }

    fn progress(&self) -> Progress {
        self.progress.clone()
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.progress.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.progress.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.progress.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Opens the store, binds both listeners, prints where they are, and serves until
/// `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    crate::hardening::apply(config.lock_memory);
    raise_open_file_limit(&config.limits);
    let data_dir = config.data_dir.clone();
    let storage = config.storage.clone();
    let database = config.database.clone();
    let (store, reconciled) =
        tokio::task::spawn_blocking(move || Store::open(&data_dir, &storage, &database))
            .await
            .expect("Store::open does not panic")
            .map_err(ServerError::DataDir)?;
    info!(
        temp_files_removed = reconciled.temp_files_removed,
        rows_without_blobs = reconciled.rows_without_blobs,
        blobs_without_rows = reconciled.blobs_without_rows,
        "store opened and reconciled"
    );
    let store = Arc::new(store);
    let in_use = {
        let store = Arc::clone(&store);
        tokio::task::spawn_blocking(move || store.desks_in_use())
            .await
            .expect("desks_in_use does not panic")
            .map_err(ServerError::DataDir)?
    };
    for (desk, sources) in in_use {
        if config.desks.get(&desk).is_none() && !config.desks.is_retired(&desk) {
            return Err(ServerError::DeskRemoved { desk, sources });
        }
    }

    let bind = |key: &'static str, listen: Listen, group: Option<String>| async move {
        Listener::bind(&listen, group.as_deref())
            .await
            .map_err(|source| ServerError::Bind {
                key,
                listen,
                source,
            })
    };
    let journalist_tls = config
        .journalist_tls
        .as_ref()
        .map(tls_acceptor)
        .transpose()?;
    let source_listener = bind(
        "source.listen",
        config.source_listen.clone(),
        config.source_socket_group.clone(),
    )
    .await?;
    let journalist_listener = bind(
        "journalist.listen",
        config.journalist_listen.clone(),
        config.journalist_socket_group.clone(),
    )
    .await?;

    let metrics_listener = match &config.metrics {
        Some(m) => Some(bind("metrics.listen", m.listen.clone(), m.socket_group.clone()).await?),
        None => None,
    };

    let intake = Intake::new(
        Arc::clone(&store),
        config.desks.clone(),
        config.limits.clone(),
    );
    let metrics = Arc::clone(intake.metrics());
    let site = Arc::new(SourceSite::new(
        Arc::clone(&store),
        intake,
        config.source.clone(),
        config.limits.clone(),
    ));
    let sweeper = tokio::spawn(Arc::clone(&site).housekeeping());
    let metrics_app = {
        let site = Arc::clone(&site);
        crate::metrics::router(Arc::new(crate::metrics::Scrape {
            metrics: Arc::clone(&metrics),
            site: Box::new(move || site.gauges()),
            store: Arc::clone(&store),
        }))
    };
    let source_app = web::source::router(site);
    let journalist_app = web::journalist::router(Arc::clone(&store), config.limits.clone()).layer(
        axum::middleware::map_response(move |response: axum::response::Response| {
            let metrics = Arc::clone(&metrics);
            async move {
                metrics.journalist_answered(response.status());
                response
            }
        }),
    );

    // Tests and scripts read these lines to find the ports.
    println!(
        "agedrop: source site listening on {}",
        source_listener.describe()
    );
    let journalist_where = journalist_listener.describe();
    let journalist_where = match (&journalist_tls, journalist_where.strip_prefix("http://")) {
        (Some(_), Some(rest)) => format!("https://{rest}"),
        _ => journalist_where,
    };
    println!("agedrop: journalist API listening on {journalist_where}");
    if let Some(listener) = &metrics_listener {
        println!("agedrop: metrics listening on {}", listener.describe());
    }
    info!(desks = config.desks.len(), "serving");
    if let Listen::Tcp(addr) = &config.source_listen {
        if !addr.ip().is_loopback() {
            // SECURITY.md: the source site is meant to be reached only as an onion
            // service; on a public address, sources' IPs reach the server.
            warn!(
                listen = %addr,
                "the source site listens on a non-loopback address; it should be reached only \
                 through Tor (listen on 127.0.0.1 or a unix socket behind the onion service)"
            );
        }
    }

    let (stop, stopped) = watch::channel(false);
    let stopped_metrics = stopped.clone();
    let source_task = tokio::spawn(serve(
        source_listener,
        source_app,
        config.limits.clone(),
        None,
        stopped.clone(),
    ));
    let journalist_task = tokio::spawn(serve(
        journalist_listener,
        journalist_app,
        config.limits.clone(),
        journalist_tls,
        stopped,
    ));
    let metrics_task = metrics_listener.map(|listener| {
        tokio::spawn(serve(
            listener,
            metrics_app,
            config.limits.clone(),
            None,
            stopped_metrics,
        ))
    });
    shutdown.await;
    info!("shutting down");
    let _ = stop.send(true);
    let (source_done, journalist_done) = tokio::join!(source_task, journalist_task);
    let metrics_done = match metrics_task {
        Some(task) => task.await,
        None => Ok(()),
    };
    sweeper.abort();
    for done in [source_done, journalist_done, metrics_done] {
        if let Err(err) = done {
            warn!(error = %err, "a listener task failed");
        }
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit: both listeners may hold
/// `max_connections` sockets each, plus files of the store. Warns if even the hard
/// limit is too low for that (connections past it would fail to be accepted).
fn raise_open_file_limit(limits: &Limits) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let needed = (limits.max_connections as u64)
        .saturating_mul(2)
        .saturating_add(limits.max_concurrent_uploads as u64 * 4)
        .saturating_add(256);
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < needed) {
        limit.current = limit.maximum.map(|max| max.min(needed.max(8192)));
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    if let Some(current) = limit.current.filter(|&current| current < needed) {
        warn!(
            open_files = current,
            needed,
            "the open-file limit is below what the connection limits need; raise LimitNOFILE"
        );
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler works in a normal process");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Completes once the shutdown flag is set (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

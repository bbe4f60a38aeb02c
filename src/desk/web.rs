//! `agedrop desk`: the local inbox, on 127.0.0.1 only. Every request must carry the
//! per-run secret as its first path segment and name this listener in `Host` (so a
//! web page elsewhere cannot reach it through DNS rebinding); every form carries a
//! per-run CSRF token and must come from this origin. No JavaScript, a strict CSP,
//! files only ever offered as downloads (SECURITY.md, "The desk").

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tracing::warn;

use super::index::{self, Entry, EntryKind, Filter};
use super::pages::{self, Content, Ctx};
use super::{outbox, Desk, DeskError};
use crate::random;

/// The longest message or reply the thread page shows inline (bytes); the file holds
/// the rest.
const SHOWN_TEXT_BYTES: u64 = 256 * 1024;
/// Largest form body (a reply of 100,000 characters, percent-encoded).
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// CSP of the pages: our stylesheet only.
const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// A running desk: its address and the URL to open.
pub struct DeskServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The URL to open, with the per-run secret.
    pub url: String,
    router: Router,
    listener: tokio::net::TcpListener,
}

struct Site {
    desk: Desk,
    prefix: String,
    secret: String,
    csrf: String,
    hosts: [String; 2],
    origins: [String; 2],
}

/// Binds `127.0.0.1:port` (0: any free port) for the desk at `desk`.
pub async fn serve(desk: Desk, port: u16) -> Result<DeskServer, DeskError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(super::io_error(
            "listen on 127.0.0.1",
            Path::new("127.0.0.1"),
        ))?;
    let addr = listener.local_addr().map_err(super::io_error(
        "listen on 127.0.0.1",
        Path::new("127.0.0.1"),
    ))?;
    let secret = random::hex_id(32);
    let site = Arc::new(Site {
        desk,
        prefix: format!("/{secret}"),
        secret: secret.clone(),
        csrf: random::hex_id(32),
        hosts: [
            format!("127.0.0.1:{}", addr.port()),
            format!("localhost:{}", addr.port()),
        ],
        origins: [
            format!("http://127.0.0.1:{}", addr.port()),
            format!("http://localhost:{}", addr.port()),
        ],
    });
    let p = site.prefix.clone();
    let router = Router::new()
        .route(&format!("{p}/"), get(list))
        .route(&format!("{p}/style.css"), get(css))
        .route(&format!("{p}/sources/{{id}}"), get(thread))
        .route(&format!("{p}/sources/{{id}}/read"), post(set_read))
        .route(&format!("{p}/sources/{{id}}/star"), post(set_star))
        .route(&format!("{p}/sources/{{id}}/note"), post(set_note))
        .route(&format!("{p}/sources/{{id}}/reply"), post(reply))
        .route(&format!("{p}/items/{{id}}/save"), get(save))
        .route(&format!("{p}/outbox"), get(outbox_page))
        .route(&format!("{p}/imports"), get(imports_page))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn_with_state(Arc::clone(&site), guard))
        .with_state(site);
    Ok(DeskServer {
        addr,
        url: format!("http://127.0.0.1:{}/{secret}/", addr.port()),
        router,
        listener,
    })
}

impl DeskServer {
    /// Serves until `shutdown` completes.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Err(err) = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            warn!(error = %err, "the desk stopped");
        }
    }
}

/// Refuses what is not for us, before any routing: a foreign `Host`, a path without
/// the secret, a form from another origin. Adds the strict headers to every answer.
async fn guard(State(site): State<Arc<Site>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(|h| site.hosts.iter().any(|ok| ok == h)) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "This desk answers only to its own address.",
        );
    }
    let path = request.uri().path();
    let first = path
        .strip_prefix('/')
        .map(|p| p.split('/').next().unwrap_or(""))
        .unwrap_or("");
    let secret_ok: bool = first.len() == site.secret.len()
        && bool::from(first.as_bytes().ct_eq(site.secret.as_bytes()));
    if !secret_ok {
        return refuse(
            StatusCode::NOT_FOUND,
            "Not found. Open the address `agedrop desk` printed.",
        );
    }
    if request.method() == Method::POST && !same_origin(&site, headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Forms are accepted only from this desk.",
        );
    }
    protect(next.run(request).await)
}

/// A form's `Origin` (when sent) must be this desk, and the browser must not call it
/// cross-site.
fn same_origin(site: &Site, headers: &HeaderMap) -> bool {
    let origin_ok = match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None => true,
        Some(Ok(origin)) => site.origins.iter().any(|ok| ok == origin),
        Some(Err(_)) => false,
    };
    let fetch_ok = match headers.get("sec-fetch-site").map(|v| v.to_str()) {
        None => true,
        Some(Ok(kind)) => kind == "same-origin" || kind == "none",
        Some(Err(_)) => false,
    };
    origin_ok && fetch_ok
}

/// `Referrer-Policy: same-origin`, not `no-referrer`: with no referrer at all, browsers
/// send `Origin: null` on form posts, and the origin check could not tell ours from a
/// sandboxed page's. The referrer (which holds the secret) never leaves the desk.
fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    crate::web::strict_headers(headers);
    response
}

fn refuse(status: StatusCode, why: &str) -> Response {
    protect((status, html(pages::refusal(why))).into_response())
}

fn html(markup: Markup) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
}

async fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "Not found.")
}

impl Site {
    fn ctx(&self) -> Ctx<'_> {
        let pending = index::outbox(&self.desk.db(), None).map_or(0, |p| p.len());
        Ctx {
            prefix: &self.prefix,
            csrf: &self.csrf,
            pending,
        }
    }

    fn csrf_ok(&self, token: &str) -> bool {
        token.len() == self.csrf.len() && bool::from(token.as_bytes().ct_eq(self.csrf.as_bytes()))
    }

    fn error(&self, status: StatusCode, title: &str, why: &str) -> Response {
        (status, html(pages::error(&self.ctx(), title, why))).into_response()
    }

    fn failed(&self, err: &DeskError) -> Response {
        match err {
            DeskError::UnknownSource => self.error(
                StatusCode::NOT_FOUND,
                "No such source",
                "No source with that id is on this desk.",
            ),
            DeskError::NoNewsroomKeys => self.error(
                StatusCode::CONFLICT,
                "Cannot encrypt the reply",
                pages::text::NO_KEYS,
            ),
            other => {
                warn!(error = %other, "desk request failed");
                self.error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The desk could not do that; the terminal running `agedrop desk` says why.",
                )
            }
        }
    }

    fn thread_url(&self, id: &str) -> String {
        format!("{}/sources/{id}", self.prefix)
    }
}

#[derive(Deserialize)]
struct ListQuery {
    show: Option<String>,
}

async fn list(State(site): State<Arc<Site>>, Query(query): Query<ListQuery>) -> Response {
    let filter = match query.show.as_deref() {
        Some("unread") => Filter::Unread,
        Some("starred") => Filter::Starred,
        _ => Filter::All,
    };
    let sources = index::sources(&site.desk.db(), filter);
    match sources {
        Ok(sources) => html(pages::sources(&site.ctx(), filter, &sources)).into_response(),
        Err(err) => site.failed(&err),
    }
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css")], pages::CSS).into_response()
}

async fn thread(State(site): State<Arc<Site>>, UrlPath(id): UrlPath<String>) -> Response {
    // Reads every message's file: blocking work, off the runtime.
    let page = Arc::clone(&site);
    let shown = tokio::task::spawn_blocking(move || thread_page(&page, &id)).await;
    match shown {
        Ok(Ok(page)) => page,
        Ok(Err(err)) => site.failed(&err),
        Err(_) => site.failed(&DeskError::Io {
            action: "render a thread",
            path: site.desk.dir.clone(),
            source: std::io::Error::other("the renderer panicked"),
        }),
    }
}

fn thread_page(site: &Site, id: &str) -> Result<Response, DeskError> {
    let db = site.desk.db();
    let source = index::summary(&db, id)?.ok_or(DeskError::UnknownSource)?;
    let known = index::source(&db, id)?.ok_or(DeskError::UnknownSource)?;
    let entries = index::thread(&db, id)?;
    let pending = index::outbox(&db, Some(id))?;
    let can_reply = !index::newsroom(&db)?.is_empty();
    drop(db);
    let dir = site.desk.source_dir(&known.dir);
    let entries: Vec<(Entry, Content)> = entries
        .into_iter()
        .map(|entry| {
            let content = content(&dir, &entry);
            (entry, content)
        })
        .collect();
    Ok(html(pages::thread(
        &site.ctx(),
        &source,
        &entries,
        &pending,
        can_reply,
    ))
    .into_response())
}

/// What the thread shows of an entry: text read from its file (bounded), or that the
/// file is there to save, or that it is missing.
fn content(dir: &Path, entry: &Entry) -> Content {
    let Some(file) = &entry.file else {
        return Content::None;
    };
    let path = dir.join(file);
    let meta = std::fs::symlink_metadata(&path);
    let intact = meta
        .as_ref()
        .is_ok_and(|m| m.is_file() && entry.size.is_none_or(|s| s == m.len()));
    if !intact {
        return Content::Missing;
    }
    match entry.kind {
        EntryKind::File => Content::File,
        EntryKind::Message | EntryKind::Reply => {
            let mut bytes = Vec::new();
            let read = std::fs::File::open(&path)
                .and_then(|f| f.take(SHOWN_TEXT_BYTES + 1).read_to_end(&mut bytes));
            if read.is_err() {
                return Content::Missing;
            }
            let cut = bytes.len() as u64 > SHOWN_TEXT_BYTES;
            bytes.truncate(SHOWN_TEXT_BYTES as usize);
            let text = String::from_utf8_lossy(&bytes);
            Content::Text(pages::shown(&text), cut)
        }
    }
}

#[derive(Deserialize)]
struct ReadForm {
    csrf: String,
    read: String,
}

#[derive(Deserialize)]
struct StarForm {
    csrf: String,
    star: String,
}

#[derive(Deserialize)]
struct NoteForm {
    csrf: String,
    note: String,
}

#[derive(Deserialize)]
struct ReplyForm {
    csrf: String,
    message: String,
}

/// Checks the form's CSRF token, runs `change`, and sends the browser back to the
/// thread.
fn change(
    site: &Site,
    id: &str,
    csrf: &str,
    change: impl FnOnce() -> Result<bool, DeskError>,
) -> Response {
    if !site.csrf_ok(csrf) {
        return site.error(
            StatusCode::FORBIDDEN,
            "Form refused",
            "This form did not come from this run of the desk. Reload the page and try again.",
        );
    }
    match change() {
        Ok(true) => Redirect::to(&site.thread_url(id)).into_response(),
        Ok(false) => site.failed(&DeskError::UnknownSource),
        Err(err) => site.failed(&err),
    }
}

async fn set_read(
    State(site): State<Arc<Site>>,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<ReadForm>,
) -> Response {
    change(&site, &id, &form.csrf, || {
        index::set_read(&site.desk.db(), &id, form.read == "yes")
    })
}

async fn set_star(
    State(site): State<Arc<Site>>,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<StarForm>,
) -> Response {
    change(&site, &id, &form.csrf, || {
        index::set_starred(&site.desk.db(), &id, form.star == "yes")
    })
}

async fn set_note(
    State(site): State<Arc<Site>>,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<NoteForm>,
) -> Response {
    let note: String = form.note.chars().take(500).collect();
    change(&site, &id, &form.csrf, || {
        index::set_note(&site.desk.db(), &id, note.trim())
    })
}

async fn reply(
    State(site): State<Arc<Site>>,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<ReplyForm>,
) -> Response {
    if !site.csrf_ok(&form.csrf) {
        return change(&site, &id, &form.csrf, || Ok(false));
    }
    let text = form.message.replace("\r\n", "\n");
    if text.trim().is_empty() {
        return site.error(
            StatusCode::BAD_REQUEST,
            "Empty reply",
            "Write something first; nothing was put in the outbox.",
        );
    }
    if text.chars().count() > outbox::MAX_REPLY_CHARS {
        return site.error(
            StatusCode::BAD_REQUEST,
            "Reply too long",
            "A reply can be at most 100,000 characters; nothing was put in the outbox.",
        );
    }
    let desk_site = Arc::clone(&site);
    let source = id.clone();
    // Encrypting and fsyncing are blocking work.
    let written =
        tokio::task::spawn_blocking(move || desk_site.desk.write_reply(&source, &text)).await;
    change(&site, &id, &form.csrf, || match written {
        Ok(result) => result.map(|()| true),
        Err(_) => Err(DeskError::Io {
            action: "write the reply",
            path: site.desk.dir.join(super::OUTBOX),
            source: std::io::Error::other("the writer panicked"),
        }),
    })
}

/// A source's file, as a download: never rendered (the sandbox CSP and nosniff stop
/// a browser that would), under a name made safe again.
async fn save(State(site): State<Arc<Site>>, UrlPath(id): UrlPath<String>) -> Response {
    let found = index::item_file(&site.desk.db(), &id);
    let (dir, file, filename) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return site.failed(&DeskError::UnknownSource),
        Err(err) => return site.failed(&err),
    };
    let path = site.desk.source_dir(&dir).join(&file);
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(crate::nofollow::flag())
        .open(&path);
    let (file_handle, len) = match opened.and_then(|f| f.metadata().map(|m| (f, m.len()))) {
        Ok(opened) => opened,
        Err(_) => {
            return site.error(
                StatusCode::NOT_FOUND,
                "File missing",
                pages::text::FILE_MISSING,
            )
        }
    };
    let name = crate::offline::safe_file_name(filename.as_deref().unwrap_or(&file));
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encode(&name)
    );
    let stream = futures_util::stream::unfold(
        tokio::fs::File::from_std(file_handle),
        |mut file| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file))
                }
                Err(err) => Some((Err(err), file)),
            }
        },
    );
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// RFC 5987 percent-encoding of a UTF-8 file name.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn outbox_page(State(site): State<Arc<Site>>) -> Response {
    let pending = index::outbox(&site.desk.db(), None);
    match pending {
        Ok(pending) => html(pages::outbox(&site.ctx(), &pending)).into_response(),
        Err(err) => site.failed(&err),
    }
}

async fn imports_page(State(site): State<Arc<Site>>) -> Response {
    let imports = index::imports(&site.desk.db());
    match imports {
        Ok(imports) => html(pages::imports(&site.ctx(), &imports)).into_response(),
        Err(err) => site.failed(&err),
    }
}

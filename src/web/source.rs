//! The source site: server-rendered pages, no JavaScript, strict headers on every
//! response. Handlers log no client data (`skip_all`); see SECURITY.md, "Logs".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;
use serde::Deserialize;
use tracing::{debug, info, instrument, warn};
use zeroize::Zeroizing;

use super::csrf::{self, CsrfKey};
use super::language::{self, Arg, Language};
use super::pages::{self, Context, DeskChoice, Field, FieldError, FormLimits, ShownReply};
use super::session::{self, Receipt, Session, Sessions};
use crate::code::{Deriver, SourceCode};
use crate::config::{Limits, SourceOptions};
use crate::desks::Desk;
use crate::sources::{LoginError, NewSource, Sources};
use crate::store::{ItemKind, Owner, Store, StoreError};
use crate::submission::{Intake, Received, SubmissionError};

/// What the source site's handlers share.
pub struct SourceSite {
    store: Arc<Store>,
    intake: Intake,
    csrf: CsrfKey,
    sessions: Sessions,
    deriver: Arc<Deriver>,
    sources: Sources,
    options: SourceOptions,
    limits: Limits,
    incidents: Incidents,
    /// The languages offered, in the order the config lists them.
    offered: Vec<&'static Language>,
}

/// Failures during sources' requests, logged in aggregate: a log line per failure would
/// timestamp a source action (SECURITY.md, "Logs"), yet the admin must learn of a full
/// disk or a failing store.
#[derive(Default)]
struct Incidents {
    store_errors: AtomicU64,
    no_space: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

impl Incidents {
    fn store_error(&self, err: &StoreError) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        // StoreError carries server paths and OS errors only, never source data.
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some(err.to_string());
    }

    fn no_space(&self) {
        self.no_space.fetch_add(1, Ordering::Relaxed);
    }

    fn report(&self) {
        let store_errors = self.store_errors.swap(0, Ordering::Relaxed);
        let no_space = self.no_space.swap(0, Ordering::Relaxed);
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        if store_errors > 0 {
            warn!(store_errors, last_error = %last, "store errors in the last 10 minutes");
        }
        if no_space > 0 {
            warn!(
                no_space,
                "uploads refused for lack of disk space in the last 10 minutes"
            );
        }
    }
}

impl SourceSite {
    /// A site over `store`, encrypting uploads through `intake`.
    pub fn new(store: Arc<Store>, intake: Intake, options: SourceOptions, limits: Limits) -> Self {
        let secret = store.instance_secret().expose();
        let deriver = Arc::new(Deriver::new(
            secret,
            limits.max_concurrent_derivations,
            limits.derivation_queue,
        ));
        SourceSite {
            csrf: CsrfKey::derive(secret),
            sources: Sources::new(
                Arc::clone(&store),
                Arc::clone(&deriver),
                options.kdf,
                options.rotate_codes,
                options.retention,
            ),
            deriver,
            sessions: Sessions::new(limits.session_idle(), limits.max_sessions),
            offered: options
                .face
                .languages
                .iter()
                .filter_map(|tag| language::find(tag))
                .collect(),
            store,
            intake,
            options,
            limits,
            incidents: Incidents::default(),
        }
    }

    /// Live sessions and derivations, for the metrics listener: counts only.
    pub fn gauges(&self) -> crate::metrics::SiteGauges {
        let (derivations_running, derivations_queued) = self.deriver.load();
        crate::metrics::SiteGauges {
            sessions: self.sessions.count(),
            derivations_running,
            derivations_queued,
        }
    }

    /// Once a minute, drops idle sessions and Argon2 memory unused for a minute; every
    /// ten minutes, logs the failures sources
    /// ran into (counts, never one line per source action). Runs as long as the site.
    pub async fn housekeeping(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        for minute in 1u64.. {
            tick.tick().await;
            if minute % 10 == 0 {
                self.incidents.report();
            }
            self.sessions.sweep();
            self.deriver.release_idle_memory(Duration::from_secs(60));
            let store = Arc::clone(&self.store);
            blocking(move || store.retry_scrub()).await;
            if minute % 60 == 1 {
                self.apply_retention().await;
            }
        }
    }

    /// Deletes what `[retention]` says is due, as of today; logs counts only.
    async fn apply_retention(&self) {
        let policy = self.options.retention;
        if policy.is_off() {
            return;
        }
        let store = Arc::clone(&self.store);
        let today = crate::time::start_of_day(std::time::SystemTime::now());
        match blocking(move || store.sweep(&policy, today)).await {
            Ok(swept) => info!(
                pulled_items = swept.pulled_items,
                old_items = swept.old_items,
                inactive_sources = swept.inactive_sources,
                "retention"
            ),
            Err(err) => warn!(error = %err, "retention failed; retried in an hour"),
        }
    }

    fn context(&self, headers: &HeaderMap) -> Context<'_> {
        Context {
            not_onion: self.options.onion_notice && !reached_by_onion(headers),
            onion: self.options.onion_address.as_deref(),
            retention: self.options.retention,
            lang: self.language(headers),
            offered: &self.offered,
            face: &self.options.face,
        }
    }

    /// The request's language, as [`protect`] chose it.
    fn language(&self, headers: &HeaderMap) -> &'static Language {
        headers
            .get(CHOSEN_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|tag| self.offered_language(tag))
            .unwrap_or_else(|| self.default_language())
    }

    fn offered_language(&self, tag: &str) -> Option<&'static Language> {
        self.offered.iter().copied().find(|l| l.tag == tag)
    }

    fn default_language(&self) -> &'static Language {
        self.offered_language(self.options.face.default_language)
            .unwrap_or_else(language::english)
    }

    /// `?l=TAG` (a link on every page), else the `lang` cookie it set, else the
    /// browser's `Accept-Language` (Tor Browser usually sends en-US whatever its
    /// user reads, hence the links), else the configured default. `true` when the
    /// choice came from the link, so the answer remembers it.
    fn choose_language(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> (&'static Language, bool) {
        let asked = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter_map(|pair| pair.strip_prefix("l="))
            .find_map(|tag| self.offered_language(tag));
        if let Some(asked) = asked {
            return (asked, true);
        }
        let remembered = super::cookie_values(headers, LANGUAGE_COOKIE)
            .find_map(|tag| self.offered_language(tag));
        if let Some(remembered) = remembered {
            return (remembered, false);
        }
        let accepted = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| language::from_accept_language(v, &self.offered));
        (accepted.unwrap_or_else(|| self.default_language()), false)
    }

    fn form_limits(&self) -> FormLimits {
        FormLimits {
            max_bytes: self.limits.max_submission_bytes,
            max_files: self.limits.max_files,
            max_chars: self.limits.max_message_chars,
        }
    }
}

/// Bytes of a url-encoded form (login, delete, logout): a code is well under 200.
const SMALL_FORM_BYTES: usize = 4 * 1024;

/// The source site's routes.
pub fn router(site: Arc<SourceSite>) -> Router {
    let small_forms = Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/code/confirm", post(confirm_code))
        .route("/replies/{id}/delete", post(delete_reply))
        .layer(DefaultBodyLimit::max(SMALL_FORM_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&site),
            small_body_in_time,
        ));
    Router::new()
        .route("/", get(landing))
        .route("/submit", get(submit_form).post(submit))
        .route("/inbox", get(inbox))
        .route("/static/style.css", get(stylesheet))
        .route("/logo.png", get(logo))
        .route("/logo.svg", get(logo))
        .merge(small_forms)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&site),
            protect,
        ))
        .with_state(site)
}

/// The cookie that remembers a language chosen from the list of links: the tag alone,
/// for this browser session only, sent to this site only (SECURITY.md, "Languages
/// and the newsroom's face").
const LANGUAGE_COOKIE: &str = "lang";

/// The request header through which [`protect`] hands the chosen language to the
/// handlers; whatever a client sends under this name is replaced.
const CHOSEN_LANGUAGE: &str = "agedrop-language";

/// Content-Security-Policy: nothing but our own stylesheet; no scripts, frames or
/// foreign forms.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// True when the Host header names a `.onion` address.
fn reached_by_onion(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    name.ends_with(".onion")
}

/// Reads a small form's body within the header deadline. Without it, a form of a few
/// hundred bytes sent a byte at a time would keep its request in flight, and so its
/// connection slot, for as long as it kept trickling (SECURITY.md, "Floods").
async fn small_body_in_time(
    State(site): State<Arc<SourceSite>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        site.limits.header_read_timeout(),
        axum::body::to_bytes(body, SMALL_FORM_BYTES),
    );
    match read.await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => bad_form(&site, &parts.headers),
        Err(_) => error(
            &site,
            &parts.headers,
            StatusCode::REQUEST_TIMEOUT,
            "too-slow-title",
            "too-slow",
        ),
    }
}

/// Strict headers on every response, and, when the site is reached by another name
/// and knows its onion address, `Onion-Location` (Tor Browser offers the onion).
async fn protect(
    State(site): State<Arc<SourceSite>>,
    mut request: Request,
    next: Next,
) -> Response {
    let onion_location = match &site.options.onion_address {
        Some(onion) if !reached_by_onion(request.headers()) => {
            HeaderValue::from_str(&format!("http://{onion}{}", request.uri().path())).ok()
        }
        _ => None,
    };
    let (lang, from_link) = site.choose_language(request.uri().query(), request.headers());
    request
        .headers_mut()
        .insert(CHOSEN_LANGUAGE, HeaderValue::from_static(lang.tag));
    let mut response = security_headers(next.run(request).await);
    if from_link {
        let cookie = format!(
            "{LANGUAGE_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            lang.tag
        );
        response = with_cookie(response, &cookie);
    }
    if let Some(location) = onion_location {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("onion-location"), location);
    }
    response
}

fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // A handler's own, stricter policy (the logo's) stays.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    super::strict_headers(headers);
    response
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// 303 See Other to a path on this site (never another origin).
fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    let value = HeaderValue::from_str(cookie).expect("cookies are hex ids and fixed words");
    response.headers_mut().append(header::SET_COOKIE, value);
    response
}

/// A page with a form: issues the csrf token, setting its cookie if the client has none.
fn form_page(
    site: &SourceSite,
    headers: &HeaderMap,
    render: impl FnOnce(&str) -> Markup,
) -> Response {
    form_page_with(site, headers, StatusCode::OK, render)
}

/// [`form_page`] with another status: a refusal that shows the form again.
fn form_page_with(
    site: &SourceSite,
    headers: &HeaderMap,
    status: StatusCode,
    render: impl FnOnce(&str) -> Markup,
) -> Response {
    let (token, new_nonce) = site.csrf.issue(headers);
    let response = page(status, render(&token));
    match new_nonce {
        Some(nonce) => with_cookie(response, &csrf::cookie(&nonce)),
        None => response,
    }
}

/// An error page whose title and explanation are the messages `title` and `text`.
fn error(
    site: &SourceSite,
    headers: &HeaderMap,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    let ctx = site.context(headers);
    let (title, text) = (ctx.lang.text(title), ctx.lang.text(text));
    page(status, pages::error(ctx, &title, &text, false))
}

#[instrument(skip_all)]
async fn landing(State(site): State<Arc<SourceSite>>, headers: HeaderMap) -> Response {
    page(StatusCode::OK, pages::landing(site.context(&headers)))
}

#[instrument(skip_all)]
async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::CSS,
    )
        .into_response()
}

/// The newsroom's logo, checked when the config was loaded (src/face.rs); an SVG gets
/// a policy that lets it run and load nothing, even opened on its own.
#[instrument(skip_all)]
async fn logo(
    State(site): State<Arc<SourceSite>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    match &site.options.face.logo {
        Some(logo) if logo.kind.path() == uri.path() => (
            [
                (header::CONTENT_TYPE, logo.kind.content_type()),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; sandbox",
                ),
            ],
            Body::from(bytes::Bytes::from_owner(Arc::clone(&logo.bytes))),
        )
            .into_response(),
        _ => not_found(State(site), headers).await,
    }
}

#[instrument(skip_all)]
async fn not_found(State(site): State<Arc<SourceSite>>, headers: HeaderMap) -> Response {
    error(
        &site,
        &headers,
        StatusCode::NOT_FOUND,
        "not-found-title",
        "not-found",
    )
}

#[instrument(skip_all)]
async fn method_not_allowed(State(site): State<Arc<SourceSite>>, headers: HeaderMap) -> Response {
    error(
        &site,
        &headers,
        StatusCode::METHOD_NOT_ALLOWED,
        "not-allowed-title",
        "not-allowed",
    )
}

fn csrf_failed(site: &SourceSite, headers: &HeaderMap) -> Response {
    error(
        site,
        headers,
        StatusCode::FORBIDDEN,
        "form-expired-title",
        "form-expired",
    )
}

fn busy(site: &SourceSite, headers: &HeaderMap) -> Response {
    retry_later(error(
        site,
        headers,
        StatusCode::SERVICE_UNAVAILABLE,
        "busy-title",
        "busy-server",
    ))
}

/// Every "Busy" page (503) asks the browser to wait a minute.
fn retry_later(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

fn server_error(site: &SourceSite, headers: &HeaderMap, err: &StoreError) -> Response {
    if err.is_disk_full() {
        site.incidents.no_space();
        return error(
            site,
            headers,
            StatusCode::INSUFFICIENT_STORAGE,
            "no-space-title",
            "no-space-server",
        );
    }
    site.incidents.store_error(err);
    error(
        site,
        headers,
        StatusCode::INTERNAL_SERVER_ERROR,
        "server-error-title",
        "server-error",
    )
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("store calls do not panic")
}

impl SourceSite {
    /// The desks a first submission can choose from.
    fn desk_choices(&self) -> Vec<DeskChoice<'_>> {
        self.intake
            .desks()
            .iter()
            .map(|d| DeskChoice {
                id: &d.id,
                name: &d.name,
                description: d.description.as_deref(),
            })
            .collect()
    }
}

#[instrument(skip_all)]
async fn submit_form(State(site): State<Arc<SourceSite>>, headers: HeaderMap) -> Response {
    let ctx = site.context(&headers);
    let limits = site.form_limits();
    let desks = site.desk_choices();
    form_page(&site, &headers, |token| {
        pages::submit_form(ctx, token, limits, &desks)
    })
}

#[instrument(skip_all)]
async fn submit(State(site): State<Arc<SourceSite>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let result = match site.sessions.get(&headers) {
        Some(session) => follow_up(&site, &headers, body, session)
            .await
            .map(|()| None),
        // A session cookie that no longer opens a session (expired, or the server
        // restarted): never turn a follow-up into a new source behind the source's back.
        None if session::has_cookie(&headers) => {
            drain(body).await;
            return with_cookie(
                error(
                    &site,
                    &headers,
                    StatusCode::UNAUTHORIZED,
                    "session-ended-title",
                    "session-ended",
                ),
                &session::clear_cookie(),
            );
        }
        None => first_submission(&site, &headers, body).await.map(Some),
    };
    match result {
        // debug, not info: a log line's timestamp would be the exact time of a source
        // action (SECURITY.md, "Logs").
        Ok(None) => {
            debug!("follow-up stored");
            redirect("/inbox")
        }
        Ok(Some((code, session_id))) => {
            debug!("submission stored");
            let response = page(
                StatusCode::OK,
                pages::code(site.context(&headers), code.expose()),
            );
            match session_id {
                Some(id) => with_cookie(response, &session::cookie(&id)),
                None => response,
            }
        }
        Err(err) => submission_error(&site, &headers, err),
    }
}

/// Reads and discards a little of a refused upload before answering, so the browser
/// (still sending) is more likely to show our page than a reset connection. Bounded:
/// a refused upload must not cost much.
async fn drain(body: Body) {
    use futures_util::StreamExt;
    const MAX_BYTES: usize = 16 * 1024 * 1024;
    let mut stream = body.into_data_stream();
    let mut seen = 0;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen >= MAX_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Receives the upload into sealed items in tmp/, for `desk` (a follow-up's) or the
/// desk the form chose (a first submission). `on_started` runs with the desk once the
/// upload passed the csrf, desk, slot and rate checks, before any file is read.
async fn receive_items(
    site: &SourceSite,
    headers: &HeaderMap,
    body: Body,
    desk: Option<&str>,
    on_started: impl FnOnce(&Desk),
) -> Result<Received, SubmissionError> {
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or(SubmissionError::Malformed)?;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Err(refused) = site.intake.check_announced(announced).await {
        drain(body).await;
        return Err(refused);
    }
    let csrf_ok = |token: &[u8]| site.csrf.verify(headers, token);
    site.intake
        .receive(body.into_data_stream(), boundary, csrf_ok, desk, on_started)
        .await
}

async fn follow_up(
    site: &SourceSite,
    headers: &HeaderMap,
    body: Body,
    session: Session,
) -> Result<(), SubmissionError> {
    // The session must outlive the upload, however long it takes (SecureDrop #6763).
    let _uploading = session.upload();
    let store = Arc::clone(&site.store);
    let source_id = session.source_id.clone();
    let desk = tokio::task::spawn_blocking(move || store.source_desk(&source_id))
        .await
        .expect("source_desk does not panic")?
        .ok_or(SubmissionError::SourceGone)?;
    let received = receive_items(site, headers, body, Some(&desk), |_| ()).await?;
    let messages = received
        .items
        .iter()
        .filter(|item| item.kind == ItemKind::Message)
        .count();
    let receipt = Receipt {
        messages,
        files: received.items.len() - messages,
        day: crate::time::day(std::time::SystemTime::now()),
    };
    site.intake
        .commit(Owner::Source(session.source_id.clone()), received.items)
        .await?;
    // Shown once on the inbox, so a source whose upload seemed to hang knows it
    // arrived and does not send it again.
    site.sessions.set_receipt(headers, receipt);
    // Stored already: failing to note the day must not turn it into an error page.
    if let Err(err) = site.sources.saw(&session.source_id).await {
        site.incidents.store_error(&err);
    }
    Ok(())
}

/// A new source: the code is made first and its keys derived while the upload
/// streams; the source is logged in once it is stored.
async fn first_submission(
    site: &SourceSite,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Arc<SourceCode>, Option<String>), SubmissionError> {
    let mut source: NewSource = site.sources.new_source();
    let received = receive_items(site, headers, body, None, |desk| {
        source.start(desk.recipients.is_post_quantum())
    })
    .await?;
    let (code, identity, keys) = source.finish().await;
    let owner = Owner::NewSource {
        keys,
        desk: received.desk,
    };
    let source_id = site.intake.commit(owner, received.items).await?;
    let session = site.sessions.create(source_id, identity);
    Ok((code, session))
}

/// What a source is told about a refused submission (its fixed name for the log and
/// the metrics is [`SubmissionError::kind`]).
struct Refusal {
    status: StatusCode,
    /// The title's message.
    title: &'static str,
    explanation: String,
    /// The form field at fault, when there is one: the form is shown again with the
    /// explanation beside it.
    field: Option<Field>,
}

/// The one table from a failed submission to its page, status and logged cause.
fn refusal(err: &SubmissionError, limits: &Limits, lang: &Language) -> Refusal {
    use StatusCode as S;
    use SubmissionError as E;
    let text = |id: &str| lang.text(id);
    let (status, title, explanation, field) = match err {
        E::Csrf => (
            S::FORBIDDEN,
            "form-expired-title",
            text("form-expired"),
            None,
        ),
        E::TooLarge { .. } => (
            S::PAYLOAD_TOO_LARGE,
            "too-large-title",
            lang.text_with(
                "too-large",
                &[("limit", Arg::Text(&lang.size(limits.max_submission_bytes)))],
            ),
            Some(Field::Files),
        ),
        E::TooManyFiles { limit } => (
            S::BAD_REQUEST,
            "too-many-files-title",
            lang.text_with("too-many-files", &[("count", Arg::Count(*limit as u64))]),
            Some(Field::Files),
        ),
        E::MessageTooLong { limit } => (
            S::BAD_REQUEST,
            "message-too-long-title",
            lang.text_with(
                "message-too-long",
                &[("chars", Arg::Text(&lang.number(*limit as u64)))],
            ),
            Some(Field::Message),
        ),
        E::MessageNotText => (
            S::BAD_REQUEST,
            "message-not-text-title",
            text("message-not-text"),
            Some(Field::Message),
        ),
        E::Empty => (
            S::BAD_REQUEST,
            "empty-title",
            text("empty"),
            Some(Field::Message),
        ),
        E::UnexpectedField | E::Malformed | E::Idle | E::Disconnected => (
            S::BAD_REQUEST,
            "upload-failed-title",
            text("upload-failed"),
            None,
        ),
        E::Busy => (
            S::SERVICE_UNAVAILABLE,
            "busy-title",
            text("busy-uploads"),
            None,
        ),
        E::RateLimited => (
            S::SERVICE_UNAVAILABLE,
            "busy-title",
            text("busy-rate"),
            None,
        ),
        E::NoSpace => (
            S::INSUFFICIENT_STORAGE,
            "no-space-title",
            text("no-space-uploads"),
            None,
        ),
        E::SourceGone => (S::GONE, "gone-title", text("gone"), None),
        E::NoDesk => (
            S::BAD_REQUEST,
            "no-desk-title",
            text("no-desk"),
            Some(Field::Desk),
        ),
        E::UnknownDesk => (
            S::BAD_REQUEST,
            "unknown-desk-title",
            text("unknown-desk"),
            Some(Field::Desk),
        ),
        E::DeskClosed => (S::GONE, "desk-closed-title", text("desk-closed"), None),
        E::Store(_) => (
            S::INTERNAL_SERVER_ERROR,
            "server-error-title",
            text("server-error"),
            None,
        ),
    };
    Refusal {
        status,
        title,
        explanation,
        field,
    }
}

/// Answers a failed submission with its page; the log gets the cause's name (store
/// failures and full disks are counted for the ten-minute summary instead).
fn submission_error(site: &SourceSite, headers: &HeaderMap, err: SubmissionError) -> Response {
    let ctx = site.context(headers);
    let refusal = refusal(&err, &site.limits, ctx.lang);
    site.intake.metrics().refused(&err);
    match &err {
        SubmissionError::Store(cause) => site.incidents.store_error(cause),
        SubmissionError::NoSpace => site.incidents.no_space(),
        _ => debug!(cause = err.kind(), "submission refused"),
    }
    let title = ctx.lang.text(refusal.title);
    let response = match refusal.field {
        Some(field) => {
            // A follow-up (the session is live) chooses no desk: its desk is fixed.
            let desks = match site.sessions.get(headers) {
                Some(_) => Vec::new(),
                None => site.desk_choices(),
            };
            let error = FieldError {
                field,
                text: refusal.explanation,
            };
            let limits = site.form_limits();
            form_page_with(site, headers, refusal.status, |token| {
                pages::refused_submission(ctx, &title, &error, token, limits, &desks)
            })
        }
        None => page(
            refusal.status,
            pages::error(ctx, &title, &refusal.explanation, true),
        ),
    };
    if refusal.status == StatusCode::SERVICE_UNAVAILABLE {
        retry_later(response)
    } else {
        response
    }
}

#[instrument(skip_all)]
async fn login_form(State(site): State<Arc<SourceSite>>, headers: HeaderMap) -> Response {
    let ctx = site.context(&headers);
    form_page(&site, &headers, |token| pages::login(ctx, token, false))
}

#[derive(Deserialize)]
struct LoginFields {
    code: Zeroizing<String>,
    csrf: String,
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

/// A url-encoded form with a hidden `csrf` field.
trait CsrfForm {
    fn csrf(&self) -> &str;
}

impl CsrfForm for LoginFields {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfForm for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The form's fields if it parsed and its csrf token matches; else the page to send.
fn checked<T: CsrfForm>(
    site: &SourceSite,
    headers: &HeaderMap,
    form: Result<Form<T>, FormRejection>,
) -> Result<T, Box<Response>> {
    let Ok(Form(fields)) = form else {
        return Err(Box::new(bad_form(site, headers)));
    };
    if !site.csrf.verify(headers, fields.csrf().as_bytes()) {
        return Err(Box::new(csrf_failed(site, headers)));
    }
    Ok(fields)
}

/// A csrf-only form posted from a live session: the session, or the page to send
/// (the csrf refusal, or the login page when the session has ended).
fn session_form(
    site: &SourceSite,
    headers: &HeaderMap,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Session, Box<Response>> {
    checked(site, headers, form)?;
    site.sessions
        .get(headers)
        .ok_or_else(|| Box::new(redirect("/login")))
}

fn bad_form(site: &SourceSite, headers: &HeaderMap) -> Response {
    error(
        site,
        headers,
        StatusCode::BAD_REQUEST,
        "form-unreadable-title",
        "form-unreadable",
    )
}

#[instrument(skip_all)]
async fn login(
    State(site): State<Arc<SourceSite>>,
    headers: HeaderMap,
    form: Result<Form<LoginFields>, FormRejection>,
) -> Response {
    let fields = match checked(&site, &headers, form) {
        Ok(fields) => fields,
        Err(page) => return *page,
    };
    let failed = || {
        // One page for every failure: a malformed code, an unknown one, a deleted source.
        let ctx = site.context(&headers);
        form_page_with(&site, &headers, StatusCode::FORBIDDEN, |token| {
            pages::login(ctx, token, true)
        })
    };
    let Some(code) = SourceCode::normalise(&fields.code) else {
        return failed();
    };
    let logged_in = match site.sources.log_in(code).await {
        Ok(Some(logged_in)) => logged_in,
        Ok(None) => return failed(),
        Err(LoginError::Busy) => return busy(&site, &headers),
        Err(LoginError::Store(err)) => return server_error(&site, &headers, &err),
    };
    let Some(session_id) = site
        .sessions
        .create(logged_in.source_id, logged_in.identity)
    else {
        return busy(&site, &headers);
    };
    if let Some(rotation) = logged_in.rotation {
        site.sessions.set_rotation(&session_id, rotation);
    }
    if let Some(err) = &logged_in.deferred {
        site.incidents.store_error(err);
    }
    debug!("source logged in");
    with_cookie(redirect("/inbox"), &session::cookie(&session_id))
}

/// `POST /code/confirm`: the source wrote the new code down; the old one stops working.
#[instrument(skip_all)]
async fn confirm_code(
    State(site): State<Arc<SourceSite>>,
    headers: HeaderMap,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let session = match session_form(&site, &headers, form) {
        Ok(session) => session,
        Err(page) => return *page,
    };
    if let Some(lookup_id) = site.sessions.rotation_lookup(&headers) {
        // Forgotten only once stored: on failure the inbox keeps showing the new code.
        if let Err(err) = site
            .sources
            .confirm_rotation(&session.source_id, lookup_id)
            .await
        {
            return server_error(&site, &headers, &err);
        }
        site.sessions.clear_rotation(&headers);
    }
    redirect("/inbox")
}

#[instrument(skip_all)]
async fn inbox(State(site): State<Arc<SourceSite>>, headers: HeaderMap) -> Response {
    let Some(session) = site.sessions.get(&headers) else {
        return redirect("/login");
    };
    let store = Arc::clone(&site.store);
    let max = site.limits.max_reply_bytes;
    let identity = Arc::clone(&session.identity);
    let source_id = session.source_id.clone();
    let shown = blocking(
        move || -> Result<Option<(Vec<ShownReply>, String)>, StoreError> {
            // The newsroom may have deleted the source while it was logged in.
            let Some(desk) = store.source_desk(&source_id)? else {
                return Ok(None);
            };
            let mut shown = Vec::new();
            for reply in store.replies(&source_id)? {
                // Decrypted per request, never cached; the text is dropped with the page.
                let text = store
                    .read_reply(&reply.id, max)
                    .ok()
                    .and_then(|bytes| identity.open_reply(&bytes, max as usize).ok())
                    .map(|plain| String::from_utf8_lossy(&plain).into_owned());
                shown.push(ShownReply {
                    id: reply.id,
                    day: reply.day,
                    text,
                });
            }
            Ok(Some((shown, desk)))
        },
    )
    .await;
    let (mut replies, desk) = match shown {
        Ok(Some(shown)) => shown,
        // The session stays, so a form still open in another tab gets the same answer
        // rather than starting a new conversation unasked.
        Ok(None) => return error(&site, &headers, StatusCode::GONE, "closed-title", "closed"),
        Err(err) => return server_error(&site, &headers, &err),
    };
    // Named only when there are several desks; a retired or removed one by its id.
    let desk_name = (site.intake.desks().len() > 1).then(|| match site.intake.desks().get(&desk) {
        Some(known) => known.name.clone(),
        None => desk,
    });
    let receipt = site.sessions.take_receipt(&headers);
    let new_code = site.sessions.pending_code(&headers);
    let ctx = site.context(&headers);
    let limits = site.form_limits();
    let response = form_page(&site, &headers, |token| {
        pages::inbox(
            ctx,
            token,
            &replies,
            new_code.as_ref().map(|c| c.as_str()),
            limits,
            desk_name.as_deref(),
            receipt.as_ref(),
        )
    });
    for reply in &mut replies {
        if let Some(text) = reply.text.as_mut() {
            zeroize::Zeroize::zeroize(text);
        }
    }
    response
}

#[instrument(skip_all)]
async fn delete_reply(
    State(site): State<Arc<SourceSite>>,
    Path(reply_id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let session = match session_form(&site, &headers, form) {
        Ok(session) => session,
        Err(page) => return *page,
    };
    let well_formed = reply_id.len() == 32 && reply_id.bytes().all(|b| b.is_ascii_hexdigit());
    let store = Arc::clone(&site.store);
    let deleted = if well_formed {
        blocking(move || store.delete_reply(&session.source_id, &reply_id)).await
    } else {
        Ok(false)
    };
    match deleted {
        Ok(true) => redirect("/inbox"),
        Ok(false) => error(
            &site,
            &headers,
            StatusCode::NOT_FOUND,
            "no-reply-title",
            "no-reply",
        ),
        Err(err) => server_error(&site, &headers, &err),
    }
}

#[instrument(skip_all)]
async fn logout(
    State(site): State<Arc<SourceSite>>,
    headers: HeaderMap,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    if let Err(page) = checked(&site, &headers, form) {
        return *page;
    }
    site.sessions.remove(&headers);
    // A fresh csrf nonce too: the old one would link the next session to this one.
    let response = with_cookie(redirect("/"), &session::clear_cookie());
    with_cookie(response, &csrf::cookie(&csrf::new_nonce()))
}

//! The source site: server-rendered pages, no JavaScript, strict headers on every
//! response. Handlers log no client data (`skip_all`); see SECURITY.md, "Logs".

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::Markup;
use tracing::{debug, instrument, warn};

use super::csrf::{self, CsrfKey};
use super::pages;
use crate::code::SourceCode;
use crate::store::Owner;
use crate::submission::{Intake, SubmissionError};

/// What the source site's handlers share.
pub struct SourceSite {
    intake: Intake,
    csrf: CsrfKey,
}

impl SourceSite {
    /// A site that ingests through `intake` and signs forms with `csrf`.
    pub fn new(intake: Intake, csrf: CsrfKey) -> Self {
        SourceSite { intake, csrf }
    }
}

/// The source site's routes.
pub fn router(site: Arc<SourceSite>) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/submit", get(submit_form).post(submit))
        .route("/static/style.css", get(stylesheet))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(site)
        .layer(axum::middleware::map_response(security_headers))
}

/// Content-Security-Policy: nothing but our own stylesheet; no scripts, frames or
/// foreign forms.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), interest-cohort=()",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.remove(header::SERVER);
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

#[instrument(skip_all)]
async fn landing() -> Response {
    page(StatusCode::OK, pages::landing())
}

#[instrument(skip_all)]
async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::CSS,
    )
        .into_response()
}

#[instrument(skip_all)]
async fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::error("Page not found", "There is no page at this address.", false),
    )
}

#[instrument(skip_all)]
async fn method_not_allowed() -> Response {
    page(
        StatusCode::METHOD_NOT_ALLOWED,
        pages::error("Not allowed", "This page cannot be used that way.", false),
    )
}

#[instrument(skip_all)]
async fn submit_form(State(site): State<Arc<SourceSite>>, headers: HeaderMap) -> Response {
    let (token, new_nonce) = site.csrf.issue(&headers);
    let limits = site.intake.limits();
    let mut response = page(
        StatusCode::OK,
        pages::submit_form(
            &token,
            limits.max_submission_bytes / (1024 * 1024),
            limits.max_files,
            limits.max_message_chars,
        ),
    );
    if let Some(nonce) = new_nonce {
        let cookie = HeaderValue::from_str(&csrf::cookie(&nonce))
            .expect("a hex nonce makes a valid header value");
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[instrument(skip_all)]
async fn submit(State(site): State<Arc<SourceSite>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match receive(&site, &parts.headers, body).await {
        Ok(code) => {
            // debug, not info: a log line's timestamp would be the exact time of a
            // source action (SECURITY.md, "Logs").
            debug!("submission stored");
            page(StatusCode::OK, pages::code(code.expose()))
        }
        Err(err) => error_page(&site, err),
    }
}

async fn receive(
    site: &SourceSite,
    headers: &HeaderMap,
    body: Body,
) -> Result<SourceCode, SubmissionError> {
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or(SubmissionError::Malformed)?;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let _slot = site.intake.admit(announced).await?;
    let csrf_ok = |token: &[u8]| site.csrf.verify(headers, token);
    site.intake
        .receive(body.into_data_stream(), boundary, csrf_ok, Owner::NewSource)
        .await?;
    // Until login lands (issue 6) the code identifies nothing; it is never stored.
    Ok(SourceCode::generate())
}

/// Maps a failed submission to a page with fixed words; the log gets the cause's name.
fn error_page(site: &SourceSite, err: SubmissionError) -> Response {
    use SubmissionError as E;
    let limits = site.intake.limits();
    let (status, title, explanation) = match &err {
        E::Csrf => (
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form was not sent from this site, or it has expired. Go back, reload the page and try again.".to_owned(),
        ),
        E::TooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            format!(
                "Your submission is larger than the limit of {} MiB. Send fewer or smaller files, or several submissions.",
                limits.max_submission_bytes / (1024 * 1024)
            ),
        ),
        E::TooManyFiles { limit } => (
            StatusCode::BAD_REQUEST,
            "Too many files",
            format!("You can send at most {limit} files at once. Send the rest in another submission."),
        ),
        E::MessageTooLong { limit } => (
            StatusCode::BAD_REQUEST,
            "Message too long",
            format!("A message can be at most {limit} characters long. Put longer text in a file."),
        ),
        E::MessageNotText => (
            StatusCode::BAD_REQUEST,
            "Message not readable",
            "The message could not be read as text. Put it in a file instead.".to_owned(),
        ),
        E::Empty => (
            StatusCode::BAD_REQUEST,
            "Nothing to send",
            "Write a message or choose at least one file.".to_owned(),
        ),
        E::UnexpectedField | E::Malformed | E::Idle | E::Disconnected => (
            StatusCode::BAD_REQUEST,
            "Upload failed",
            "The upload could not be read completely. Please try again.".to_owned(),
        ),
        E::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "Many uploads are running right now. Please try again in a few minutes.".to_owned(),
        ),
        E::NoSpace => (
            StatusCode::INSUFFICIENT_STORAGE,
            "Out of space",
            "The server has no room for new uploads right now. Please try again later.".to_owned(),
        ),
        E::Store(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server error",
            "Something went wrong on our side. Please try again later.".to_owned(),
        ),
    };
    match &err {
        E::Store(cause) => warn!(error = %cause, "submission failed: store error"),
        other => debug!(cause = cause_name(other), "submission refused"),
    }
    page(status, pages::error(title, &explanation, true))
}

/// A fixed name per cause, for the log (no client data, no sizes).
fn cause_name(err: &SubmissionError) -> &'static str {
    use SubmissionError as E;
    match err {
        E::Csrf => "csrf",
        E::TooLarge { .. } => "too large",
        E::TooManyFiles { .. } => "too many files",
        E::MessageTooLong { .. } => "message too long",
        E::MessageNotText => "message not utf-8",
        E::UnexpectedField => "unexpected field",
        E::Malformed => "malformed multipart",
        E::Empty => "empty",
        E::Idle => "idle body",
        E::Disconnected => "client disconnected",
        E::Busy => "busy",
        E::NoSpace => "no space",
        E::Store(_) => "store",
    }
}

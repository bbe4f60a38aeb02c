//! The journalist API: a separate listener, bearer tokens, JSON errors.
//!
//! This version authenticates every request; the export, reply and delete routes of
//! DESIGN.md §6 are added by the journalist-side work (issue 3).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use sha2::{Digest, Sha256};
use tracing::{instrument, warn};

use crate::store::Store;

/// The SHA-256 under which a token is stored. Tokens carry 256 random bits, so a fast
/// hash is enough: there is nothing to guess (SECURITY.md, "Journalist tokens").
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// The journalist API's routes.
pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(store, authenticate))
}

fn json_error(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"error\":\"{message}\"}}"),
    )
        .into_response()
}

#[instrument(skip_all)]
async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such route")
}

/// Lets a request through only with a valid `Authorization: Bearer` token; every
/// failure looks the same.
async fn authenticate(State(store): State<Arc<Store>>, request: Request, next: Next) -> Response {
    let hash = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(token_hash);
    let Some(hash) = hash else {
        return unauthorized();
    };
    let found = tokio::task::spawn_blocking(move || store.journalist_for(&hash))
        .await
        .expect("journalist lookup does not panic");
    match found {
        Ok(Some(_name)) => next.run(request).await,
        Ok(None) => unauthorized(),
        Err(err) => {
            warn!(error = %err, "token lookup failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "server error")
        }
    }
}

fn unauthorized() -> Response {
    let mut response = json_error(StatusCode::UNAUTHORIZED, "unauthorized");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

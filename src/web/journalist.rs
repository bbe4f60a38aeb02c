//! The journalist API: a separate listener, bearer tokens, JSON errors, streamed
//! export bundles (docs/protocol.md). Only ciphertext ever leaves or enters here.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{info, instrument, warn};

use crate::account;
use crate::bundle::{
    self, Manifest, ManifestDeletedReply, ManifestItem, ManifestReply, ManifestSource,
    ReplyManifest, TarReader, TarWriter,
};
use crate::config::Limits;
use crate::crypto;
use crate::rate::TokenBucket;
use crate::store::{BlobReader, Export, ItemBlob, Store, StoreError};

/// The desks the authenticated account may see (`None`: every desk), put in the
/// request by [`authenticate`].
#[derive(Clone)]
struct Scope(Option<Vec<String>>);

impl Scope {
    fn sees(&self, desk: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id == desk))
    }
}

/// The account id of the authenticated token, put in the request by [`authenticate`]
/// beside its [`Scope`]: what `status` counts for and a whole export is recorded for.
#[derive(Clone)]
struct AccountId(String);

/// The refusal for a source outside the account's desks.
fn outside_scope() -> Response {
    json_error(
        StatusCode::FORBIDDEN,
        "that source belongs to a desk this account is not for",
    )
}

/// Most items one export bundle holds; the manifest's `next_cursor` continues.
pub const EXPORT_BATCH: usize = 10_000;
/// Most replies in one reply bundle.
const MAX_REPLIES: usize = 100;

struct Api {
    store: Arc<Store>,
    limits: Limits,
    failures: Mutex<Failures>,
}

/// The journalist API's routes.
pub fn router(store: Arc<Store>, limits: Limits) -> Router {
    let reply_body = usize::try_from(limits.max_reply_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(4096)
        .saturating_mul(MAX_REPLIES)
        .min(512 * 1024 * 1024);
    let api = Arc::new(Api {
        store,
        limits,
        failures: Mutex::new(Failures::default()),
    });
    Router::new()
        .route("/api/v1/export", get(export))
        .route("/api/v1/status", get(status))
        .route(
            "/api/v1/replies",
            post(replies).layer(DefaultBodyLimit::max(reply_body)),
        )
        .route("/api/v1/items/{id}", delete(delete_item))
        .route("/api/v1/sources/{id}", delete(delete_source))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&api),
            authenticate,
        ))
        .with_state(api)
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn store_failed(err: &StoreError) -> Response {
    warn!(error = %err, "journalist API: store error");
    if err.is_disk_full() {
        return json_error(
            StatusCode::INSUFFICIENT_STORAGE,
            "the server's disk is (nearly) full or out of inodes; the admin must free space",
        );
    }
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "server error")
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("store calls do not panic")
}

#[instrument(skip_all)]
async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such route")
}

/// Failed attempts, per account and in all: each failure spends a token, and a bucket
/// with none left means "over the limit" until it refills.
struct Failures {
    accounts: HashMap<String, TokenBucket>,
    global: TokenBucket,
}

impl Default for Failures {
    fn default() -> Self {
        Failures {
            accounts: HashMap::new(),
            global: TokenBucket::full(GLOBAL_BURST, GLOBAL_RATE),
        }
    }
}

/// Per account: 10 failures, then one more every 6 s. In all: 100, then 10 per second.
const ACCOUNT_BURST: f64 = 10.0;
const ACCOUNT_RATE: f64 = 1.0 / 6.0;
const GLOBAL_BURST: f64 = 100.0;
const GLOBAL_RATE: f64 = 10.0;

impl Failures {
    fn blocked(&mut self, account: Option<&str>) -> bool {
        if self.global.is_empty() {
            return true;
        }
        account.is_some_and(|id| self.accounts.get_mut(id).is_some_and(TokenBucket::is_empty))
    }

    fn failed(&mut self, account: Option<&str>) {
        self.global.spend();
        if let Some(id) = account {
            self.accounts
                .entry(id.to_owned())
                .or_insert_with(|| TokenBucket::full(ACCOUNT_BURST, ACCOUNT_RATE))
                .spend();
        }
        // Forget accounts whose buckets have refilled, so the map stays small.
        if self.accounts.len() > 10_000 {
            self.accounts.retain(|_, b| !b.is_full());
        }
    }
}

/// Lets a request through only with a valid `Authorization: Bearer` token. Every
/// failure gets the same 401; past the failure limits (per account, and in all) a
/// failure gets a delayed 429 instead. A valid token is never locked out: with 256-bit
/// secrets the limits are defence in depth, and must not hand attackers a way to shut
/// journalists out.
async fn authenticate(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(account::parse);
    let account = presented.as_ref().map(|(id, _)| id.clone());
    let valid = match presented {
        Some((id, hash)) => {
            let store = Arc::clone(&api.store);
            let lookup = id.clone();
            match blocking(move || store.journalist(&lookup)).await {
                Ok(Some(journalist)) if account::same_hash(&journalist.token_hash, &hash) => {
                    Some((Scope(journalist.desks), AccountId(id)))
                }
                Ok(_) => None,
                Err(err) => return store_failed(&err),
            }
        }
        None => None,
    };
    if let Some((scope, id)) = valid {
        let mut request = request;
        request.extensions_mut().insert(scope);
        request.extensions_mut().insert(id);
        return next.run(request).await;
    }
    let over_limit = {
        let mut failures = api.failures.lock().unwrap_or_else(|p| p.into_inner());
        let over = failures.blocked(account.as_deref());
        failures.failed(account.as_deref());
        if !over && failures.blocked(account.as_deref()) {
            // Once per crossing, not per attempt: a flood must not flood the log.
            warn!(
                account = account.as_deref().unwrap_or("-"),
                "too many failed journalist token attempts"
            );
        }
        over
    };
    if over_limit {
        tokio::time::sleep(FAILURE_DELAY).await;
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed attempts; wait a minute",
        );
    }
    let mut response = json_error(StatusCode::UNAUTHORIZED, "unauthorized");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// How long a failure past the limits waits before its 429.
const FAILURE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Deserialize)]
struct ExportQuery {
    since: Option<String>,
}

/// Streams a bundle: the manifest, then each item's blobs, then each reply's, exactly
/// as stored. A
/// blocking thread reads files in 256 KiB chunks into a channel of 4, so a bundle of
/// any size costs the same memory.
#[instrument(skip_all)]
async fn export(
    State(api): State<Arc<Api>>,
    Extension(scope): Extension<Scope>,
    Extension(account): Extension<AccountId>,
    Query(query): Query<ExportQuery>,
) -> Response {
    let since = match query.since.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(n)) if n >= 0 => n,
        Some(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "since must be a cursor from a manifest",
            )
        }
    };
    let store = Arc::clone(&api.store);
    let export = match blocking(move || store.export(since, EXPORT_BATCH, scope.0.as_deref())).await
    {
        Ok(export) => export,
        Err(err) => return store_failed(&err),
    };
    let manifest = Manifest {
        format: bundle::EXPORT_FORMAT.into(),
        version: bundle::EXPORT_VERSION,
        since: since.to_string(),
        next_cursor: export.next_cursor.to_string(),
        sources: export
            .sources
            .iter()
            .map(|s| ManifestSource {
                id: s.id.clone(),
                label: s.label.clone(),
                recipient: s.recipient.clone(),
                desk: Some(s.desk.clone()),
            })
            .collect(),
        items: export
            .items
            .iter()
            .map(|i| ManifestItem {
                id: i.id.clone(),
                source_id: i.source_id.clone(),
                kind: i.kind,
                order: i.seq,
                day: i.day.clone(),
                size: i.size,
                meta_size: i.meta_size,
                blob: bundle::item_entry(&i.id),
                meta: bundle::meta_entry(&i.id),
            })
            .collect(),
        replies: export
            .replies
            .iter()
            .map(|r| ManifestReply {
                id: r.id.clone(),
                source_id: r.source_id.clone(),
                order: r.seq,
                day: r.day.clone(),
                size: r.size,
                blob: bundle::reply_entry(&r.id),
            })
            .collect(),
        deleted_replies: export
            .deleted_replies
            .iter()
            .map(|d| ManifestDeletedReply {
                source_id: d.source_id.clone(),
                order: d.seq,
            })
            .collect(),
    };
    info!(
        items = manifest.items.len(),
        replies = manifest.replies.len(),
        deleted_replies = manifest.deleted_replies.len(),
        "export"
    );
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let whole = Arc::new(AtomicBool::new(false));
    let written = Arc::clone(&whole);
    let next_cursor = export.next_cursor;
    tokio::task::spawn_blocking(move || {
        // `export` keeps every listed item readable until it is dropped here.
        match write_bundle(&export, &manifest, &manifest_json, &tx) {
            Ok(()) => written.store(true, Ordering::Release),
            Err(err) => {
                // The client sees a truncated body (no tar end blocks): `pull` refuses it.
                warn!(error = %err, "export stopped");
                let _ = tx.blocking_send(Err(err));
            }
        }
    });
    // The account's last pull (what `status` counts from) is recorded only once the
    // body has handed its last chunk to the connection, never when it starts: a
    // transfer cut short must not make `status` say there is nothing new while the
    // journalist lacks those items. Recorded before the chunked body's end goes out, so
    // a client that has read the body to its end finds it recorded. The channel ends
    // (None) only after the writer is gone, so `whole` is final by then.
    let record = PullRecord {
        store: Arc::clone(&api.store),
        account,
        next_cursor,
        whole,
    };
    let stream = futures_util::stream::unfold((rx, record), |(mut rx, record)| async move {
        match rx.recv().await {
            Some(item) => Some((item, (rx, record))),
            None => {
                record.finish().await;
                None
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "application/x-tar"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// What an export records once its bundle has gone out whole.
struct PullRecord {
    store: Arc<Store>,
    account: AccountId,
    next_cursor: i64,
    /// Set by the writer when it has written the whole bundle.
    whole: Arc<AtomicBool>,
}

impl PullRecord {
    async fn finish(self) {
        if !self.whole.load(Ordering::Acquire) {
            return;
        }
        let PullRecord {
            store,
            account,
            next_cursor,
            ..
        } = self;
        if let Err(err) = blocking(move || store.record_pull(&account.0, next_cursor)).await {
            // The bundle went out; only `status` counts too much until the next pull.
            warn!(error = %err, "could not record the pull for status");
        }
    }
}

/// `{"new_items": N}`: how many items of the account's desks came after its last
/// whole export, counted up to [`bundle::STATUS_CAP`]. Nothing else: no ids, days or
/// sizes (SECURITY.md, "Notifications"). Not logged: polls come every few minutes
/// and say nothing about sources.
#[instrument(skip_all)]
async fn status(
    State(api): State<Arc<Api>>,
    Extension(scope): Extension<Scope>,
    Extension(account): Extension<AccountId>,
) -> Response {
    let store = Arc::clone(&api.store);
    let counted =
        blocking(move || store.new_items(&account.0, scope.0.as_deref(), bundle::STATUS_CAP)).await;
    match counted {
        Ok(new_items) => {
            let body = serde_json::to_string(&bundle::Status { new_items })
                .expect("the status serialises");
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
                .into_response()
        }
        Err(err) => store_failed(&err),
    }
}

fn write_bundle(
    export: &Export,
    manifest: &Manifest,
    manifest_json: &[u8],
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> std::io::Result<()> {
    // 256 KiB per message on a channel of 4: a bundle of any size costs the same memory.
    let mut tar = TarWriter::new(BufWriter::with_capacity(256 * 1024, ToChannel(tx)));
    tar.entry(bundle::MANIFEST, manifest_json)?;
    let mut copy = |name: &str, size: u64, blob: std::io::Result<BlobReader>| {
        let mut blob = blob?;
        if blob.len()? != size {
            return Err(std::io::Error::other("a blob's size differs from its row"));
        }
        tar.entry_from(name, size, &mut blob)
    };
    for item in &manifest.items {
        copy(
            &item.blob,
            item.size,
            export.open(&item.id, ItemBlob::Content),
        )?;
        copy(
            &item.meta,
            item.meta_size,
            export.open(&item.id, ItemBlob::Meta),
        )?;
    }
    for reply in &manifest.replies {
        copy(&reply.blob, reply.size, export.open_reply(&reply.id))?;
    }
    tar.finish()?.flush()
}

/// Bytes written here go to the response body's channel.
struct ToChannel<'a>(&'a mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ToChannel<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stores a reply bundle made by `agedrop reply`: all its replies or none.
#[instrument(skip_all)]
async fn replies(
    State(api): State<Arc<Api>>,
    Extension(scope): Extension<Scope>,
    body: Bytes,
) -> Response {
    let max_reply = api.limits.max_reply_bytes;
    let parsed = match parse_replies(&body, max_reply) {
        Ok(parsed) => parsed,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, &why),
    };
    // Every reply's source must be in the account's desks, or none is stored.
    let store = Arc::clone(&api.store);
    let ids: Vec<String> = parsed.iter().map(|(id, _)| id.clone()).collect();
    let desks = blocking(move || {
        ids.iter()
            .map(|id| store.source_desk(id))
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    match desks {
        Ok(desks) if desks.iter().flatten().all(|desk| scope.sees(desk)) => {}
        Ok(_) => return outside_scope(),
        Err(err) => return store_failed(&err),
    }
    let store = Arc::clone(&api.store);
    let result = blocking(move || {
        let replies: Vec<(&str, &[u8])> = parsed
            .iter()
            .map(|(source_id, ciphertext)| (source_id.as_str(), ciphertext.as_slice()))
            .collect();
        // All or none: a reply naming a deleted source stores none of them.
        store.add_replies(&replies)
    })
    .await;
    match result {
        Ok(ids) => {
            info!(replies = ids.len(), "replies stored");
            let body = serde_json::json!({ "stored": ids.len() }).to_string();
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Err(StoreError::UnknownSource) => json_error(
            StatusCode::BAD_REQUEST,
            "a reply names a source that does not exist",
        ),
        Err(err) => store_failed(&err),
    }
}

/// Reads and checks a reply bundle: (source id, ciphertext) per reply.
fn parse_replies(body: &[u8], max_reply: u64) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut tar = TarReader::new(body);
    let first = tar
        .next_entry()
        .map_err(|e| e.to_string())?
        .ok_or("empty reply bundle")?;
    if first.name != bundle::REPLY_MANIFEST {
        return Err("the first entry must be reply-manifest.json".into());
    }
    let json = bundle::read_small(&mut tar, &first, 1024 * 1024).map_err(|e| e.to_string())?;
    let manifest: ReplyManifest = serde_json::from_slice(&json)
        .map_err(|_| "reply-manifest.json is not valid".to_string())?;
    if manifest.format != bundle::REPLY_FORMAT || manifest.version != bundle::REPLY_VERSION {
        return Err("not an agedrop reply bundle (format or version)".into());
    }
    if manifest.replies.is_empty() || manifest.replies.len() > MAX_REPLIES {
        return Err(format!("a reply bundle holds 1 to {MAX_REPLIES} replies"));
    }
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    while let Some(entry) = tar.next_entry().map_err(|e| e.to_string())? {
        if !manifest.replies.iter().any(|r| r.file == entry.name) || files.contains_key(&entry.name)
        {
            return Err("the bundle holds an entry its manifest does not list".into());
        }
        let data = bundle::read_small(&mut tar, &entry, max_reply)
            .map_err(|_| format!("a reply is larger than the limit of {max_reply} bytes"))?;
        if !crypto::looks_like_age(&data) {
            return Err("a reply is not an age file".into());
        }
        files.insert(entry.name, data);
    }
    manifest
        .replies
        .iter()
        .map(|r| {
            if !bundle::is_id(&r.source_id) {
                return Err("a reply's source id is malformed".to_string());
            }
            let data = files
                .remove(&r.file)
                .ok_or("a reply listed in the manifest is missing")?;
            Ok((r.source_id.clone(), data))
        })
        .collect()
}

#[instrument(skip_all)]
async fn delete_item(
    State(api): State<Arc<Api>>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> Response {
    deletion(
        &api,
        scope,
        id,
        |store, id| store.item_desk(id),
        |store, id| store.delete_item(id),
    )
    .await
}

#[instrument(skip_all)]
async fn delete_source(
    State(api): State<Arc<Api>>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> Response {
    deletion(
        &api,
        scope,
        id,
        |store, id| store.source_desk(id),
        |store, id| store.delete_source(id),
    )
    .await
}

/// Deletes what `id` names if it exists and its source is in the account's desks.
async fn deletion(
    api: &Api,
    scope: Scope,
    id: String,
    desk_of: impl FnOnce(&Store, &str) -> Result<Option<String>, StoreError> + Send + 'static,
    delete: impl FnOnce(&Store, &str) -> Result<bool, StoreError> + Send + 'static,
) -> Response {
    if !bundle::is_id(&id) {
        return json_error(StatusCode::NOT_FOUND, "no such id");
    }
    let store = Arc::clone(&api.store);
    let result = blocking(move || match desk_of(&store, &id)? {
        Some(desk) if !scope.sees(&desk) => Ok(None),
        _ => delete(&store, &id).map(Some),
    })
    .await;
    match result {
        Ok(Some(true)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(false)) => json_error(StatusCode::NOT_FOUND, "no such id"),
        Ok(None) => outside_scope(),
        Err(err) => store_failed(&err),
    }
}

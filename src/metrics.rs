//! Optional metrics in Prometheus's text format (version 0.0.4), on a listener of their
//! own: loopback TCP or a Unix socket, never the network (`[metrics]`, off by default).
//!
//! Counts only, for the whole drop: submissions accepted, refused by cause (a fixed
//! label set), ciphertext bytes stored, free space, live sessions, derivations, and
//! journalist API answers by status class. Nothing per source, no timestamps: a value
//! changes at most once per scrape for its reader (SECURITY.md, "Metrics"). Plain
//! atomics and a hand-written exposition: the format is a few lines of text, and a
//! metrics crate would bring a registry, labels of any cardinality and timestamps we
//! must never emit.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::{header, StatusCode};

use crate::store::Store;
use crate::submission::SubmissionError;

/// The journalist API's status classes, `1xx` to `5xx`.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The counters, kept whether or not a metrics listener is configured (they cost a few
/// relaxed atomic adds).
#[derive(Default)]
pub struct Metrics {
    accepted: AtomicU64,
    ciphertext_bytes: AtomicU64,
    refused: [AtomicU64; SubmissionError::KINDS.len()],
    journalist: [AtomicU64; CLASSES.len()],
}

impl Metrics {
    /// A submission was stored, `bytes` of ciphertext (items and their records).
    pub fn accepted(&self, bytes: u64) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.ciphertext_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A submission was refused.
    pub fn refused(&self, err: &SubmissionError) {
        self.refused[err.kind_index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The journalist API answered with `status`.
    pub fn journalist_answered(&self, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.journalist[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// What the source site holds right now.
pub struct SiteGauges {
    /// Live source sessions.
    pub sessions: usize,
    /// Argon2 derivations running.
    pub derivations_running: usize,
    /// Derivations waiting for a free slot.
    pub derivations_queued: usize,
}

/// What a scrape reads: the counters, the site's gauges and the store's free space.
pub struct Scrape {
    /// The counters.
    pub metrics: Arc<Metrics>,
    /// The site's gauges, read at each scrape.
    pub site: Box<dyn Fn() -> SiteGauges + Send + Sync>,
    /// The data directory, for its free space.
    pub store: Arc<Store>,
}

/// The metrics listener's router: `GET /metrics`, nothing else.
pub fn router(scrape: Arc<Scrape>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(scrape)
}

async fn metrics(State(scrape): State<Arc<Scrape>>) -> Response {
    let store = Arc::clone(&scrape.store);
    let free = tokio::task::spawn_blocking(move || store.free_space())
        .await
        .expect("free_space does not panic")
        // The one figure that can fail; its absence says so without failing the scrape.
        .ok()
        .map(|free| free.bytes);
    let text = render(&scrape.metrics, &(scrape.site)(), free);
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(Body::from(text))
        .expect("a static header is valid")
}

/// The exposition: HELP and TYPE before each family, no timestamps.
fn render(metrics: &Metrics, site: &SiteGauges, free_bytes: Option<u64>) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    family(
        "agedrop_submissions_accepted_total",
        "counter",
        "Submissions stored (first ones and follow-ups).",
        &[(String::new(), load(&metrics.accepted))],
    );
    let refused: Vec<(String, u64)> = SubmissionError::KINDS
        .iter()
        .zip(&metrics.refused)
        .map(|(cause, count)| (format!("{{cause=\"{cause}\"}}"), load(count)))
        .collect();
    family(
        "agedrop_submissions_refused_total",
        "counter",
        "Submissions refused, by cause; nothing of them was kept.",
        &refused,
    );
    family(
        "agedrop_ciphertext_received_bytes_total",
        "counter",
        "Ciphertext bytes of stored submissions (items and their metadata records).",
        &[(String::new(), load(&metrics.ciphertext_bytes))],
    );
    if let Some(free) = free_bytes {
        family(
            "agedrop_data_dir_free_bytes",
            "gauge",
            "Bytes available to agedrop on the data directory's filesystem.",
            &[(String::new(), free)],
        );
    }
    let gauge = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    family(
        "agedrop_source_sessions",
        "gauge",
        "Live source sessions.",
        &[(String::new(), gauge(site.sessions))],
    );
    family(
        "agedrop_derivations_running",
        "gauge",
        "Argon2 derivations of source codes running.",
        &[(String::new(), gauge(site.derivations_running))],
    );
    family(
        "agedrop_derivations_queued",
        "gauge",
        "Argon2 derivations waiting for a slot.",
        &[(String::new(), gauge(site.derivations_queued))],
    );
    let classes: Vec<(String, u64)> = CLASSES
        .iter()
        .zip(&metrics.journalist)
        .map(|(class, counter)| (format!("{{class=\"{class}\"}}"), load(counter)))
        .collect();
    family(
        "agedrop_journalist_requests_total",
        "counter",
        "Journalist API responses, by status class.",
        &classes,
    );
    out
}

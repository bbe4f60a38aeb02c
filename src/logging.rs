//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as text or
//! JSON lines. What may be logged is decided where events are written: no IP, user
//! agent, filename, message text, code, exact size or exact time of a source action,
//! at any level (SECURITY.md, "Logs").

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Timestamps are left out: the journal or the log
/// collector adds its own, and we need not write exact times of source actions.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        // ureq's trace output dumps whole requests, the journalist's token included:
        // never, at any level (SECURITY.md, "Logs").
        .add_directive("ureq_proto=off".parse().expect("a valid directive"))
        .add_directive("ureq=warn".parse().expect("a valid directive"))
        // The object store's client and hyper name the objects (item ids) and the
        // headers of requests below `info`; their retries at `info` name neither.
        .add_directive("object_store=info".parse().expect("a valid directive"))
        .add_directive("hyper=info".parse().expect("a valid directive"))
        .add_directive("hyper_util=info".parse().expect("a valid directive"))
        .add_directive("hyper_rustls=info".parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time();
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

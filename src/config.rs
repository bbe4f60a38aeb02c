//! `agedrop.toml`: loading, defaults and validation.
//!
//! Every error names the key it is about and says what is wrong, so an admin can fix
//! the file without reading code. The server refuses to start on any of them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::code::KdfParams;
use crate::crypto::{Recipients, RecipientsError};
use crate::desks::{self, Desk, Desks};
use crate::face::{Face, RawSite};

/// Where a listener accepts connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address, `host:port` (port 0 picks a free port).
    Tcp(SocketAddr),
    /// A Unix socket path, written `unix:/path`.
    Unix(PathBuf),
}

/// Why a `listen` value cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenError {
    /// `unix:` followed by a relative path.
    RelativeSocketPath,
    /// Neither `host:port` nor `unix:/path`.
    NotAnAddress,
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenError::RelativeSocketPath => "a unix socket path must be absolute (unix:/path)",
            ListenError::NotAnAddress => {
                "expected host:port (e.g. 127.0.0.1:8080, [::1]:8080) or unix:/path"
            }
        })
    }
}

impl std::error::Error for ListenError {}

impl Listen {
    /// Parses `host:port` or `unix:/path`.
    pub fn parse(text: &str) -> Result<Self, ListenError> {
        if let Some(path) = text.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(ListenError::RelativeSocketPath);
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        text.parse::<SocketAddr>()
            .map(Listen::Tcp)
            .map_err(|_| ListenError::NotAnAddress)
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp(addr) => write!(f, "{addr}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The config file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key or a value of the wrong type.
    Syntax {
        /// The config file, when the text came from one.
        path: Option<PathBuf>,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A key holds a value that cannot be used.
    Invalid {
        /// The key, e.g. `newsroom.recipients[1]`.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            ConfigError::Syntax {
                path: Some(path),
                message,
            } => write!(f, "config file {}: {message}", path.display()),
            ConfigError::Syntax {
                path: None,
                message,
            } => write!(f, "config: {message}"),
            ConfigError::Invalid { key, problem } => write!(f, "config key `{key}`: {problem}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The file as written: strings and numbers, before validation.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: PathBuf,
    #[serde(default)]
    lock_memory: bool,
    source: RawSource,
    journalist: RawJournalist,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    newsroom: Option<RawNewsroom>,
    /// `[[desk]]` entries.
    #[serde(default, rename = "desk", skip_serializing_if = "Vec::is_empty")]
    desks: Vec<RawDesk>,
    /// Desk ids removed from the config on purpose while their sources remain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retired_desks: Vec<String>,
    #[serde(default)]
    limits: Limits,
    #[serde(default, skip_serializing_if = "Retention::is_off")]
    retention: Retention,
    /// The newsroom's face on the source site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    site: Option<RawSite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metrics: Option<RawMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    storage: Option<RawStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database: Option<RawDatabase>,
}

/// `[database]` as written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_file: Option<PathBuf>,
}

/// Where the metadata (sources, items, replies, accounts) lives: `[database]`.
#[derive(Clone, Debug, Default)]
pub enum Database {
    /// `agedrop.sqlite` in `data_dir` (the default).
    #[default]
    Sqlite,
    /// A PostgreSQL database on this machine; docs/admin.md, "Scaling out".
    Postgres(PostgresDatabase),
}

/// A PostgreSQL database (`[database] url`), its URL parsed and checked. Its `Debug`
/// leaves out the password the URL may hold.
#[derive(Clone, Debug)]
pub struct PostgresDatabase {
    settings: Box<postgres::Config>,
    tls: Option<DatabaseTls>,
}

/// TLS to PostgreSQL (`sslmode=require`): the server's certificate is checked against
/// these CAs and the URL's host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseTls {
    /// `database.ca_file`; the system's CAs when `None`.
    pub ca_file: Option<PathBuf>,
}

impl PostgresDatabase {
    /// The connection settings, for the store.
    pub fn settings(&self) -> &postgres::Config {
        &self.settings
    }

    /// TLS, when the URL asks for it (`sslmode=require`); `None`: plain, on this machine.
    pub fn tls(&self) -> Option<&DatabaseTls> {
        self.tls.as_ref()
    }
}

impl RawDatabase {
    fn validate(&self, base: &Path) -> Result<Database, ConfigError> {
        let key = "database.url";
        let expected = "expected postgres://USER@HOST:PORT/DATABASE";
        if !["postgres://", "postgresql://"]
            .iter()
            .any(|scheme| self.url.starts_with(scheme))
        {
            return Err(ConfigError::invalid(key, expected));
        }
        // The parser's errors name an option, never a value: the password stays out.
        let settings: postgres::Config = self
            .url
            .parse()
            .map_err(|err| ConfigError::invalid(key, format!("{expected}: {err}")))?;
        if settings.get_hosts().is_empty() {
            return Err(ConfigError::invalid(
                key,
                format!("{expected}: the URL names no host"),
            ));
        }
        if settings.get_dbname().is_none() {
            return Err(ConfigError::invalid(
                key,
                format!("{expected}: the URL names no database"),
            ));
        }
        // Without TLS only on this machine: every row would otherwise cross the network
        // in clear (SECURITY.md, "What a database operator can learn"). With
        // sslmode=require agedrop speaks TLS (rustls) and checks the server's
        // certificate and name, wherever it is.
        let tls = settings.get_ssl_mode() == postgres::config::SslMode::Require;
        let local = settings.get_hosts().iter().all(|host| match host {
            postgres::config::Host::Tcp(name) => is_loopback_name(name),
            postgres::config::Host::Unix(_) => true,
        }) && settings.get_hostaddrs().iter().all(|ip| ip.is_loopback());
        if !local && !tls {
            return Err(ConfigError::invalid(
                key,
                "a host other than loopback (localhost, 127.0.0.1, [::1]) or a Unix socket \
                 directory needs ?sslmode=require: metadata would otherwise cross the network in clear",
            ));
        }
        if tls
            && settings
                .get_hosts()
                .iter()
                .any(|host| matches!(host, postgres::config::Host::Unix(_)))
        {
            return Err(ConfigError::invalid(
                key,
                "sslmode=require is for a TCP host: a Unix socket needs no TLS",
            ));
        }
        if self.ca_file.is_some() && !tls {
            return Err(ConfigError::invalid(
                "database.ca_file",
                "needs ?sslmode=require in database.url: without TLS there is no certificate to check",
            ));
        }
        let tls = tls.then(|| DatabaseTls {
            ca_file: self.ca_file.as_ref().map(|ca| base.join(ca)),
        });
        Ok(Database::Postgres(PostgresDatabase {
            settings: Box::new(settings),
            tls,
        }))
    }
}

/// `localhost` or a loopback address (`[::1]` with or without brackets).
fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `[storage]` as written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    kind: String,
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

/// Where the blobs (ciphertext) live: `[storage]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Storage {
    /// Under `data_dir/blobs` (the default).
    #[default]
    Local,
    /// In an S3-compatible object store.
    S3(S3Storage),
}

/// An S3-compatible bucket (`[storage] kind = "s3"`); docs/admin.md, "Scaling out".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Storage {
    /// `https://HOST[:PORT]`, or `http://` to a loopback address.
    pub endpoint: String,
    /// The bucket's name.
    pub bucket: String,
    /// The region the signatures name (Garage's default is `garage`).
    pub region: String,
    /// The access key's id.
    pub access_key_id: String,
    /// A file holding the secret key (read at start-up, never copied into the config).
    pub secret_access_key_file: PathBuf,
    /// CA certificates for an `https://` endpoint; the system's when left out.
    pub ca_file: Option<PathBuf>,
}

impl RawStorage {
    fn validate(&self, base: &Path) -> Result<Storage, ConfigError> {
        match self.kind.as_str() {
            "local" => {
                let set = [
                    ("endpoint", self.endpoint.is_some()),
                    ("bucket", self.bucket.is_some()),
                    ("region", self.region.is_some()),
                    ("access_key_id", self.access_key_id.is_some()),
                    (
                        "secret_access_key_file",
                        self.secret_access_key_file.is_some(),
                    ),
                    ("ca_file", self.ca_file.is_some()),
                ];
                match set.iter().find(|(_, is_set)| *is_set) {
                    Some((key, _)) => Err(ConfigError::invalid(
                        format!("storage.{key}"),
                        "is for kind = \"s3\"; local storage keeps blobs under data_dir",
                    )),
                    None => Ok(Storage::Local),
                }
            }
            "s3" => {
                let required = |key: &str, value: &Option<String>| {
                    value
                        .as_deref()
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            ConfigError::invalid(
                                format!("storage.{key}"),
                                "is required for kind = \"s3\"",
                            )
                        })
                };
                let endpoint = required("endpoint", &self.endpoint)?;
                check_endpoint(&endpoint)?;
                let bucket = required("bucket", &self.bucket)?;
                let bucket_ok = (3..=63).contains(&bucket.len())
                    && bucket.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b)
                    });
                if !bucket_ok {
                    return Err(ConfigError::invalid(
                        "storage.bucket",
                        "not a bucket name (3 to 63 lowercase letters, digits, '-' and '.')",
                    ));
                }
                let secret = self.secret_access_key_file.as_ref().ok_or_else(|| {
                    ConfigError::invalid(
                        "storage.secret_access_key_file",
                        "is required for kind = \"s3\" (a file holding the secret key, mode 0600)",
                    )
                })?;
                Ok(Storage::S3(S3Storage {
                    endpoint,
                    bucket,
                    region: required("region", &self.region)?,
                    access_key_id: required("access_key_id", &self.access_key_id)?,
                    secret_access_key_file: base.join(secret),
                    ca_file: self.ca_file.as_ref().map(|ca| base.join(ca)),
                }))
            }
            _ => Err(ConfigError::invalid(
                "storage.kind",
                "must be \"local\" or \"s3\"",
            )),
        }
    }
}

/// An object store is reached over HTTPS, or over plain HTTP on this machine only:
/// requests are signed, not encrypted, and an observer on the network would see every
/// blob's size and time.
fn check_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    let key = "storage.endpoint";
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| ConfigError::invalid(key, "expected https://HOST[:PORT]"))?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(ConfigError::invalid(
            key,
            "expected https://HOST[:PORT], without a path, user or query",
        ));
    }
    match scheme {
        "https" => Ok(()),
        "http" => {
            let host = match authority.rsplit_once(':') {
                Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
                _ => authority,
            };
            if is_loopback_name(host) {
                Ok(())
            } else {
                Err(ConfigError::invalid(
                    key,
                    "plain http:// only to a loopback address; use https:// for an object store on another machine",
                ))
            }
        }
        _ => Err(ConfigError::invalid(key, "expected https://HOST[:PORT]")),
    }
}

/// What the server deletes by itself (`[retention]`), off by default. Each rule is a
/// number of days; leave a key out to keep forever. SECURITY.md, "Retention".
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Delete an item this many days after every account of its desk has pulled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_items_after_days: Option<u32>,
    /// Delete an item this many days after it arrived, whatever happened to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_after_days: Option<u32>,
    /// Delete a source (its items, replies and keys) that has not logged in for this
    /// many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_sources_after_days: Option<u32>,
}

impl Retention {
    /// No rule set: nothing is ever deleted by the server itself.
    pub fn is_off(&self) -> bool {
        *self == Retention::default()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, days) in [
            (
                "retention.pulled_items_after_days",
                self.pulled_items_after_days,
            ),
            ("retention.items_after_days", self.items_after_days),
            (
                "retention.inactive_sources_after_days",
                self.inactive_sources_after_days,
            ),
        ] {
            match days {
                Some(0) => {
                    return Err(ConfigError::invalid(
                        key,
                        "must be at least 1 day; leave the key out to keep forever",
                    ))
                }
                Some(n) if n > 36_500 => {
                    return Err(ConfigError::invalid(
                        key,
                        "at most 36500 days; leave the key out to keep forever",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawDesk {
    id: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    recipients: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawJournalist {
    listen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    socket_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ca: Option<PathBuf>,
}

/// TLS for the journalist listener (PEM files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalistTls {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    listen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    socket_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    onion_address: Option<String>,
    #[serde(default = "yes")]
    onion_notice: bool,
    #[serde(default)]
    rotate_codes: bool,
    #[serde(default = "default_argon2_memory_kib")]
    argon2_memory_kib: u32,
    #[serde(default = "default_argon2_passes")]
    argon2_passes: u32,
    #[serde(default = "default_argon2_lanes")]
    argon2_lanes: u32,
}

fn yes() -> bool {
    true
}

/// 64 MiB: the floor the design asks for (SECURITY.md, "Source codes").
fn default_argon2_memory_kib() -> u32 {
    64 * 1024
}

fn default_argon2_passes() -> u32 {
    3
}

fn default_argon2_lanes() -> u32 {
    1
}

/// Options of the source site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceOptions {
    /// The site's own onion address (`….onion`): named on the "not on the onion"
    /// notice and sent as `Onion-Location` when the site is reached another way.
    pub onion_address: Option<String>,
    /// Show a notice when the site is reached by a name that is not `.onion`.
    pub onion_notice: bool,
    /// Each login consumes the code and shows a new one.
    pub rotate_codes: bool,
    /// Argon2id cost for deriving keys from codes (new sources).
    pub kdf: KdfParams,
    /// What the server deletes by itself; the site tells sources.
    pub retention: Retention,
    /// The newsroom's name, logo, words and languages.
    pub face: Face,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            onion_address: None,
            onion_notice: true,
            rotate_codes: false,
            kdf: KdfParams {
                memory_kib: default_argon2_memory_kib(),
                passes: default_argon2_passes(),
                lanes: default_argon2_lanes(),
            },
            retention: Retention::default(),
            face: Face::default(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawNewsroom {
    recipients: Vec<String>,
}

/// Limits on what clients may send and hold (SECURITY.md, "Limits"). Every one is a config key
/// under `[limits]`; the reasons for the defaults are in SECURITY.md.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Total bytes of one submission (message plus files).
    pub max_submission_bytes: u64,
    /// Files in one submission.
    pub max_files: usize,
    /// Characters (Unicode scalar values) in one message.
    pub max_message_chars: usize,
    /// New uploads are refused while the data directory's filesystem has less free.
    pub min_free_bytes: u64,
    /// New uploads are refused while the data directory's filesystem has fewer free
    /// inodes (files). Keeps room for replies, the database and a restart.
    pub min_free_inodes: u64,
    /// Open connections per listener; further connections wait in the OS backlog.
    pub max_connections: usize,
    /// Uploads streaming at once; further uploads get a "busy" page.
    pub max_concurrent_uploads: usize,
    /// Seconds allowed to receive a request's headers.
    pub header_read_timeout_secs: u64,
    /// Seconds an upload may go without a single byte before it is dropped.
    pub idle_body_timeout_secs: u64,
    /// Argon2 derivations running at once (each holds `source.argon2_memory_kib`).
    pub max_concurrent_derivations: usize,
    /// Logins that may wait for a derivation; past it a login gets a "busy" page.
    pub derivation_queue: usize,
    /// Source sessions held in memory at once.
    pub max_sessions: usize,
    /// Seconds a source session lives without a request (never while it uploads).
    pub session_idle_secs: u64,
    /// Bytes of one reply's ciphertext.
    pub max_reply_bytes: u64,
    /// Submissions (first ones and follow-ups together) the whole site accepts per
    /// minute; past it a source gets a "busy" page. Global, since every Tor client looks
    /// like the same local address.
    pub max_submissions_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_submission_bytes: 2 * 1024 * 1024 * 1024,
            max_files: 20,
            max_message_chars: 100_000,
            min_free_bytes: 1024 * 1024 * 1024,
            min_free_inodes: 10_000,
            max_connections: 1024,
            max_concurrent_uploads: 64,
            header_read_timeout_secs: 30,
            idle_body_timeout_secs: 300,
            max_concurrent_derivations: 2,
            derivation_queue: 8,
            max_sessions: 10_000,
            session_idle_secs: 2 * 60 * 60,
            max_reply_bytes: 1024 * 1024,
            max_submissions_per_minute: 60,
        }
    }
}

impl Limits {
    /// [`Limits::header_read_timeout_secs`] as a duration.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    /// [`Limits::session_idle_secs`] as a duration.
    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_secs)
    }

    /// [`Limits::idle_body_timeout_secs`] as a duration.
    pub fn idle_body_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_body_timeout_secs)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_submission_bytes", self.max_submission_bytes),
            ("max_files", self.max_files as u64),
            ("max_message_chars", self.max_message_chars as u64),
            ("max_connections", self.max_connections as u64),
            ("max_concurrent_uploads", self.max_concurrent_uploads as u64),
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("idle_body_timeout_secs", self.idle_body_timeout_secs),
            (
                "max_concurrent_derivations",
                self.max_concurrent_derivations as u64,
            ),
            ("max_sessions", self.max_sessions as u64),
            ("session_idle_secs", self.session_idle_secs),
            ("max_reply_bytes", self.max_reply_bytes),
            (
                "max_submissions_per_minute",
                u64::from(self.max_submissions_per_minute),
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::invalid(
                    format!("limits.{key}"),
                    "must be greater than 0",
                ));
            }
        }
        // tokio's semaphores hold at most usize::MAX >> 3 permits.
        // A stored item must fit one ustar entry of an export bundle (8 GiB - 1), age's
        // overhead included: 8e9 bytes leaves room for it.
        if self.max_submission_bytes > 8_000_000_000 {
            return Err(ConfigError::invalid(
                "limits.max_submission_bytes",
                "must be at most 8000000000 (an item must fit an export bundle entry)",
            ));
        }
        if self.max_reply_bytes > 64 * 1024 * 1024 {
            return Err(ConfigError::invalid(
                "limits.max_reply_bytes",
                "must be at most 67108864",
            ));
        }
        let caps = [
            ("max_files", self.max_files, 10_000),
            ("max_message_chars", self.max_message_chars, 100_000_000),
        ];
        for (key, value, cap) in caps {
            if value > cap {
                return Err(ConfigError::invalid(
                    format!("limits.{key}"),
                    format!("must be at most {cap}"),
                ));
            }
        }
        for (key, value) in [
            ("max_connections", self.max_connections),
            ("max_concurrent_uploads", self.max_concurrent_uploads),
            (
                "max_concurrent_derivations",
                self.max_concurrent_derivations,
            ),
            ("derivation_queue", self.derivation_queue),
        ] {
            if value > 1 << 20 {
                return Err(ConfigError::invalid(
                    format!("limits.{key}"),
                    "must be at most 1048576",
                ));
            }
        }
        Ok(())
    }
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory (database, instance secret, ciphertext blobs).
    pub data_dir: PathBuf,
    /// Where the source site listens.
    pub source_listen: Listen,
    /// Options of the source site.
    pub source: SourceOptions,
    /// Where the journalist API listens (never the same as the source site).
    pub journalist_listen: Listen,
    /// Optional TLS (and mutual TLS) for the journalist API.
    pub journalist_tls: Option<JournalistTls>,
    /// The desks: each item is encrypted to all the recipients of its source's desk,
    /// and to no one else.
    pub desks: Desks,
    /// Limits on clients.
    pub limits: Limits,
    /// Group given to the source site's Unix socket (e.g. `debian-tor`).
    pub source_socket_group: Option<String>,
    /// Group given to the journalist API's Unix socket.
    pub journalist_socket_group: Option<String>,
    /// Lock all memory (mlockall) so nothing is swapped out.
    pub lock_memory: bool,
    /// The optional metrics listener (`[metrics]`), off unless set.
    pub metrics: Option<MetricsListen>,
    /// Where the blobs live (`[storage]`).
    pub storage: Storage,
    /// Where the metadata lives (`[database]`).
    pub database: Database,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    socket_group: Option<String>,
}

/// Where the metrics listener accepts scrapes: loopback TCP or a Unix socket only
/// (SECURITY.md, "Metrics").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsListen {
    /// The address; never a non-loopback TCP address.
    pub listen: Listen,
    /// Group given to its Unix socket (mode 0660).
    pub socket_group: Option<String>,
}

impl RawMetrics {
    fn validate(&self, others: [&Listen; 2]) -> Result<MetricsListen, ConfigError> {
        let key = "metrics.listen";
        let listen = Listen::parse(&self.listen)
            .map_err(|problem| ConfigError::invalid(key, problem.to_string()))?;
        if let Listen::Tcp(addr) = &listen {
            if !addr.ip().is_loopback() {
                return Err(ConfigError::invalid(
                    key,
                    "must be a loopback address (127.0.0.1:PORT or [::1]:PORT) or \
                     unix:/path: metrics are for this machine only, never the network",
                ));
            }
        }
        let clash = others.iter().any(|other| match (&listen, other) {
            (Listen::Tcp(a), Listen::Tcp(b)) => a == b && a.port() != 0,
            (a, b) => a == *b,
        });
        if clash {
            return Err(ConfigError::invalid(
                key,
                "must differ from source.listen and journalist.listen",
            ));
        }
        Ok(MetricsListen {
            listen,
            socket_group: self.socket_group.clone(),
        })
    }
}

impl Config {
    /// Reads and validates a config file. Relative `data_dir` and socket paths are
    /// taken relative to the file's directory, so a config means the same wherever
    /// the server is started from.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|err| match err {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: Some(path.to_owned()),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates config text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Syntax {
            path: None,
            message: err.to_string().trim_end().to_owned(),
        })?;
        if raw.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "must not be empty"));
        }
        let data_dir = base.join(&raw.data_dir);
        let source_listen = Listen::parse(&raw.source.listen)
            .map_err(|problem| ConfigError::invalid("source.listen", problem.to_string()))?;
        let journalist_listen = Listen::parse(&raw.journalist.listen)
            .map_err(|problem| ConfigError::invalid("journalist.listen", problem.to_string()))?;
        if let (Listen::Tcp(a), Listen::Tcp(b)) = (&source_listen, &journalist_listen) {
            if a == b && a.port() != 0 {
                return Err(ConfigError::invalid(
                    "journalist.listen",
                    "must differ from source.listen: the journalist API never shares the source site's port",
                ));
            }
        }
        if source_listen == journalist_listen && matches!(source_listen, Listen::Unix(_)) {
            return Err(ConfigError::invalid(
                "journalist.listen",
                "must differ from source.listen: the journalist API never shares the source site's socket",
            ));
        }
        let desks = parse_desks(&raw)?;
        let face = match &raw.site {
            Some(site) => Face::from_raw(site, base)?,
            None => Face::default(),
        };
        raw.limits.validate()?;
        raw.retention.validate()?;
        let journalist_tls = match (&raw.journalist.tls_cert, &raw.journalist.tls_key) {
            (Some(cert), Some(key)) => Some(JournalistTls {
                cert: base.join(cert),
                key: base.join(key),
                client_ca: raw.journalist.client_ca.as_ref().map(|ca| base.join(ca)),
            }),
            (None, None) if raw.journalist.client_ca.is_some() => {
                return Err(ConfigError::invalid(
                    "journalist.client_ca",
                    "needs journalist.tls_cert and journalist.tls_key: client certificates need TLS",
                ))
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::invalid(
                    "journalist.tls_cert",
                    "tls_cert and tls_key go together",
                ))
            }
        };
        let kdf = KdfParams {
            memory_kib: raw.source.argon2_memory_kib,
            passes: raw.source.argon2_passes,
            lanes: raw.source.argon2_lanes,
        };
        kdf.validate().map_err(|problem| {
            ConfigError::invalid(
                "source.argon2_memory_kib",
                format!("Argon2 refuses these parameters (memory, passes, lanes): {problem}"),
            )
        })?;
        let onion_address = raw.source.onion_address.as_deref().map(|a| {
            a.trim()
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_ascii_lowercase()
        });
        if let Some(address) = &onion_address {
            let host = address.strip_suffix(".onion").unwrap_or("");
            let v3 = host.len() == 56
                && host
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
            if !v3 {
                return Err(ConfigError::invalid(
                    "source.onion_address",
                    "expected a v3 onion address: 56 base32 characters followed by .onion",
                ));
            }
            // A typo must never show sources a wrong address.
            if !onion_v3_checksum_ok(host) {
                return Err(ConfigError::invalid(
                    "source.onion_address",
                    "not a valid v3 onion address (its checksum or version is wrong): copy it \
                     again from tor's hostname file, e.g. /var/lib/tor/agedrop-source/hostname",
                ));
            }
        }
        let metrics = raw
            .metrics
            .as_ref()
            .map(|m| m.validate([&source_listen, &journalist_listen]))
            .transpose()?;
        let storage = match &raw.storage {
            Some(storage) => storage.validate(base)?,
            None => Storage::Local,
        };
        let database = match &raw.database {
            Some(database) => database.validate(base)?,
            None => Database::Sqlite,
        };
        let metrics_group = raw.metrics.as_ref().and_then(|m| m.socket_group.clone());
        for (key, group) in [
            ("source.socket_group", &raw.source.socket_group),
            ("journalist.socket_group", &raw.journalist.socket_group),
            ("metrics.socket_group", &metrics_group),
        ] {
            if let Some(group) = group {
                let ok = !group.is_empty()
                    && group.len() <= 32
                    && group
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
                if !ok {
                    return Err(ConfigError::invalid(key, "not a group name"));
                }
            }
        }
        Ok(Config {
            data_dir,
            source_listen,
            source_socket_group: raw.source.socket_group.clone(),
            journalist_socket_group: raw.journalist.socket_group.clone(),
            lock_memory: raw.lock_memory,
            metrics,
            storage,
            database,
            source: SourceOptions {
                onion_address,
                onion_notice: raw.source.onion_notice,
                rotate_codes: raw.source.rotate_codes,
                kdf,
                retention: raw.retention,
                face,
            },
            journalist_listen,
            journalist_tls,
            desks,
            limits: raw.limits,
        })
    }

    /// The text of a new config file, as `agedrop init` and `agedrop demo` write it.
    pub fn render(
        data_dir: &Path,
        source: &Listen,
        journalist: &Listen,
        recipients: &[String],
        limits: &Limits,
    ) -> String {
        let options = SourceOptions::default();
        let raw = RawConfig {
            data_dir: data_dir.to_owned(),
            lock_memory: false,
            source: RawSource {
                listen: source.to_string(),
                socket_group: None,
                onion_address: None,
                onion_notice: options.onion_notice,
                rotate_codes: options.rotate_codes,
                argon2_memory_kib: options.kdf.memory_kib,
                argon2_passes: options.kdf.passes,
                argon2_lanes: options.kdf.lanes,
            },
            journalist: RawJournalist {
                listen: journalist.to_string(),
                socket_group: None,
                tls_cert: None,
                tls_key: None,
                client_ca: None,
            },
            newsroom: Some(RawNewsroom {
                recipients: recipients.to_vec(),
            }),
            desks: Vec::new(),
            retired_desks: Vec::new(),
            limits: limits.clone(),
            retention: Retention::default(),
            site: None,
            metrics: None,
            storage: None,
            database: None,
        };
        let body = toml::to_string(&raw).expect("the config structure always serialises");
        format!(
            "# agedrop configuration. Keys are explained in deploy/agedrop.toml and docs/admin.md.\n\
             # Only public age1… recipients belong here: private keys stay on the offline machine.\n\n{body}"
        )
    }
}

/// Whether a v3 onion host (56 base32 characters) decodes to a public key, a checksum
/// and version 3, with the checksum `SHA3-256(".onion checksum" | key | 3)[..2]` (Tor's
/// rend-spec-v3, "Encoding onion addresses").
fn onion_v3_checksum_ok(host: &str) -> bool {
    let mut bytes = Vec::with_capacity(35);
    let (mut bits, mut held) = (0u32, 0u32);
    for c in host.bytes() {
        let value = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return false,
        };
        bits = (bits << 5) | u32::from(value);
        held += 5;
        if held >= 8 {
            held -= 8;
            bytes.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    if bytes.len() != 35 || bytes[34] != 3 {
        return false;
    }
    use sha3::Digest;
    let mut hash = sha3::Sha3_256::new();
    hash.update(b".onion checksum");
    hash.update(&bytes[..32]);
    hash.update([3u8]);
    hash.finalize()[..2] == bytes[32..34]
}

/// The desks of a config: its `[[desk]]` entries, or the implicit desk of `[newsroom]
/// recipients`; one or the other, never both.
fn parse_desks(raw: &RawConfig) -> Result<Desks, ConfigError> {
    let recipients_of = |key: String, list: &[String], what: &str| {
        if let Some(index) = list.iter().position(|r| r.contains('…')) {
            return Err(ConfigError::invalid(
                format!("{key}[{index}]"),
                format!(
                    "still the sample's placeholder{what}: replace it with the newsroom's age1… \
                     public key, printed by `agedrop keygen` on the offline machine"
                ),
            ));
        }
        Recipients::parse(list).map_err(|err| match err {
            RecipientsError::Empty => ConfigError::invalid(
                key.clone(),
                format!(
                    "no recipients{what}: add at least one age1… public key (from `agedrop keygen` on the offline machine)"
                ),
            ),
            RecipientsError::Invalid { index, reason } => ConfigError::invalid(
                format!("{key}[{index}]"),
                format!("not a usable age recipient{what}: {reason}"),
            ),
            #[allow(unreachable_patterns)]
            other => ConfigError::invalid(key.clone(), format!("{other}{what}")),
        })
    };
    let desks = match (&raw.newsroom, raw.desks.as_slice()) {
        (Some(_), [_, ..]) => return Err(ConfigError::invalid(
            "newsroom.recipients",
            "give the recipients either in [newsroom] (one desk) or in [[desk]] entries, not both",
        )),
        (None, []) => {
            return Err(ConfigError::invalid(
                "newsroom.recipients",
                "missing: add [newsroom] recipients = [\"age1…\"], or [[desk]] entries",
            ))
        }
        (Some(newsroom), []) => {
            if let Some(id) = raw.retired_desks.first() {
                return Err(ConfigError::invalid(
                    "retired_desks[0]",
                    format!("{id:?}: retiring a desk needs the remaining ones as [[desk]] entries"),
                ));
            }
            let recipients = recipients_of("newsroom.recipients".into(), &newsroom.recipients, "")?;
            return Ok(Desks::newsroom(recipients));
        }
        (None, entries) => {
            let mut desks: Vec<Desk> = Vec::with_capacity(entries.len());
            for (n, entry) in entries.iter().enumerate() {
                let key = |field: &str| format!("desk[{n}].{field}");
                if !desks::is_id(&entry.id) {
                    return Err(ConfigError::invalid(
                        key("id"),
                        format!(
                            "{:?} is not a desk id: 1 to {} of a-z, 0-9 and -, not starting with -",
                            entry.id,
                            desks::MAX_ID
                        ),
                    ));
                }
                if desks.iter().any(|d| d.id == entry.id) {
                    return Err(ConfigError::invalid(
                        key("id"),
                        format!("desk {:?} is defined twice", entry.id),
                    ));
                }
                let name = entry.name.trim();
                if name.is_empty() || name.chars().count() > desks::MAX_NAME {
                    return Err(ConfigError::invalid(
                        key("name"),
                        format!("1 to {} characters", desks::MAX_NAME),
                    ));
                }
                let description = entry
                    .description
                    .as_deref()
                    .map(str::trim)
                    .filter(|d| !d.is_empty());
                if description.is_some_and(|d| d.chars().count() > desks::MAX_DESCRIPTION) {
                    return Err(ConfigError::invalid(
                        key("description"),
                        format!("at most {} characters", desks::MAX_DESCRIPTION),
                    ));
                }
                let what = format!(" (desk {:?})", entry.id);
                desks.push(Desk {
                    id: entry.id.clone(),
                    name: name.to_owned(),
                    description: description.map(str::to_owned),
                    recipients: recipients_of(key("recipients"), &entry.recipients, &what)?,
                });
            }
            desks
        }
    };
    for (n, id) in raw.retired_desks.iter().enumerate() {
        if !desks::is_id(id) || desks.iter().any(|d| &d.id == id) {
            return Err(ConfigError::invalid(
                format!("retired_desks[{n}]"),
                format!("{id:?} must be the id of a desk no longer in the config"),
            ));
        }
    }
    Ok(Desks::new(desks, raw.retired_desks.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/agedrop"))
    }

    fn minimal(extra: &str) -> String {
        format!(
            "data_dir = \"data\"\n[source]\nlisten = \"127.0.0.1:8080\"\n[journalist]\nlisten = \"unix:/run/j.sock\"\n[newsroom]\nrecipients = [\"{KEY}\"]\n{extra}"
        )
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse(&minimal("")).expect("valid config");
        assert_eq!(config.data_dir, Path::new("/etc/agedrop/data"));
        assert_eq!(config.journalist_listen, Listen::Unix("/run/j.sock".into()));
        assert_eq!(config.limits, Limits::default());
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse(&minimal("[limits]\nmax_files = 0\n")).unwrap_err();
        assert!(err.to_string().contains("limits.max_files"), "{err}");
        let err = parse(&minimal("[limits]\nmax_filez = 3\n")).unwrap_err();
        assert!(err.to_string().contains("max_filez"), "{err}");
        let err = parse(&minimal("").replace(KEY, "age1nope")).unwrap_err();
        assert!(err.to_string().contains("newsroom.recipients[0]"), "{err}");
    }

    #[test]
    fn rendered_config_parses_back() {
        let text = Config::render(
            Path::new("/srv/x"),
            &Listen::Tcp("127.0.0.1:9000".parse().unwrap()),
            &Listen::Unix("/run/x.sock".into()),
            &[KEY.to_owned()],
            &Limits::default(),
        );
        let config = parse(&text).expect("round trip");
        assert_eq!(config.data_dir, Path::new("/srv/x"));
        let only = config.desks.only().expect("one implicit desk");
        assert_eq!(only.id, crate::desks::IMPLICIT);
        assert_eq!(only.recipients.len(), 1);
    }

    const OTHER: &str = "age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg";

    fn with_desks(desks: &str) -> String {
        format!(
            "data_dir = \"data\"\n[source]\nlisten = \"127.0.0.1:8080\"\n[journalist]\nlisten = \"127.0.0.1:8081\"\n{desks}"
        )
    }

    #[test]
    fn the_sample_placeholder_recipient_says_to_replace_it() {
        let err = parse(&minimal("").replace(KEY, "age1…replace…")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config key `newsroom.recipients[0]`: still the sample's placeholder: replace it \
             with the newsroom's age1… public key, printed by `agedrop keygen` on the offline \
             machine"
        );
    }

    #[test]
    fn the_samples_site_section_parses_once_uncommented() {
        let sample = include_str!("../deploy/agedrop.toml");
        let site: String = sample[sample.find("# [site]").expect("a [site] sample")..]
            .lines()
            // The logo needs a file; tests/face.rs covers it.
            .filter(|line| !line.starts_with("# logo"))
            .filter_map(|line| line.strip_prefix("# ").or(line.strip_prefix("#")))
            .filter(|line| !line.starts_with("Per language") && !line.starts_with("a blank line"))
            .map(|line| format!("{line}\n"))
            .collect();
        let config = parse(&format!("{}{site}", minimal(""))).expect("the sample parses");
        let face = &config.source.face;
        assert_eq!(face.name.as_deref(), Some("The Example Times"));
        assert_eq!(face.languages.len(), 7);
    }

    #[test]
    fn the_samples_storage_section_parses_once_uncommented() {
        let sample = include_str!("../deploy/agedrop.toml");
        let start = sample.find("# [storage]").expect("a [storage] sample");
        let storage: String = sample[start..]
            .lines()
            .take_while(|line| !line.is_empty())
            .filter_map(|line| line.strip_prefix("# "))
            .map(|line| format!("{line}\n"))
            .collect();
        let config = parse(&format!("{}{storage}", minimal(""))).expect("the sample parses");
        let Storage::S3(s3) = &config.storage else {
            panic!("the sample is an S3 bucket");
        };
        assert_eq!(s3.endpoint, "https://s3.example.org");
        assert_eq!(s3.bucket, "agedrop");
        assert_eq!(
            s3.secret_access_key_file,
            Path::new("/etc/agedrop/s3-secret")
        );
        assert_eq!(
            s3.ca_file.as_deref(),
            Some(Path::new("/etc/agedrop/s3-ca.pem"))
        );
    }

    #[test]
    fn storage_endpoints_are_https_or_loopback() {
        for good in [
            "https://s3.example.org",
            "https://s3.example.org:8443/",
            "http://127.0.0.1:3900",
            "http://[::1]:3900",
            "http://localhost:3900",
        ] {
            assert!(check_endpoint(good).is_ok(), "{good}");
        }
        for bad in [
            "http://10.0.0.5:3900",
            "http://s3.example.org",
            "ftp://127.0.0.1",
            "https://user@s3.example.org",
            "https://s3.example.org/bucket",
            "s3.example.org",
            "https://",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_samples_database_section_parses_once_uncommented() {
        let sample = include_str!("../deploy/agedrop.toml");
        let start = sample.find("# [database]").expect("a [database] sample");
        let section: String = sample[start..]
            .lines()
            .take_while(|line| line.starts_with("# "))
            .filter_map(|line| line.strip_prefix("# "))
            .map(|line| format!("{line}\n"))
            .collect();
        let config = parse(&format!("{}{section}", minimal(""))).expect("the sample parses");
        let Database::Postgres(database) = config.database else {
            panic!("the sample names PostgreSQL");
        };
        assert_eq!(database.settings().get_dbname(), Some("agedrop"));
        assert_eq!(
            database.settings().get_hosts(),
            [postgres::config::Host::Unix("/run/postgresql".into())]
        );
    }

    #[test]
    fn database_urls_name_a_local_postgresql() {
        let refused = |url: &str| {
            parse(&minimal(&format!("[database]\nurl = \"{url}\"\n")))
                .unwrap_err()
                .to_string()
        };
        for url in [
            "postgres://a@10.1.2.3/db",
            "postgres://a@db.example.org/db",
            "postgres://a@localhost,db.example.org/db",
            "postgres://a@localhost/db?hostaddr=10.1.2.3",
        ] {
            assert!(refused(url).contains("needs ?sslmode=require"), "{url}");
        }
        assert!(refused("postgres://a@localhost").contains("names no database"));
        for url in [
            "postgres://a@localhost/db",
            "postgresql://a:pw@127.0.0.1:5433/db",
            "postgres://a@[::1]/db",
        ] {
            let config = parse(&minimal(&format!("[database]\nurl = \"{url}\"\n")));
            assert!(config.is_ok(), "{url}");
        }
        let config = parse(&minimal(
            "[database]\nurl = \"postgresql://a:pw@127.0.0.1:5433/db\"\n",
        ))
        .unwrap();
        assert!(
            !format!("{config:?}").contains("pw@"),
            "the password stays out of Debug"
        );
    }

    #[test]
    fn onion_addresses_need_a_valid_checksum() {
        // A real v3 address, and the same with one character changed.
        let good = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad";
        assert!(onion_v3_checksum_ok(good));
        assert!(!onion_v3_checksum_ok(&good.replace("duck", "duce")));
        assert!(!onion_v3_checksum_ok(
            "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx"
        ));
        let typo = good.replace("duck", "duce");
        let text = minimal("").replace(
            "listen = \"127.0.0.1:8080\"\n",
            &format!("listen = \"127.0.0.1:8080\"\nonion_address = \"{typo}.onion\"\n"),
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("its checksum or version is wrong"), "{err}");
    }

    #[test]
    fn desks_are_parsed_and_checked() {
        let text = with_desks(&format!(
            "[[desk]]\nid = \"investigations\"\nname = \"Investigations\"\ndescription = \"Leaks about agencies\"\nrecipients = [\"{KEY}\"]\n\
             [[desk]]\nid = \"local-news\"\nname = \"Local news\"\nrecipients = [\"{OTHER}\", \"{KEY}\"]\n"
        ));
        let config = parse(&text).expect("two desks");
        assert_eq!(config.desks.len(), 2);
        assert!(config.desks.only().is_none());
        let local = config.desks.get("local-news").unwrap();
        assert_eq!(local.name, "Local news");
        assert_eq!(local.recipients.len(), 2);
        assert_eq!(
            config
                .desks
                .get("investigations")
                .unwrap()
                .description
                .as_deref(),
            Some("Leaks about agencies")
        );

        let refused = |text: String| parse(&text).unwrap_err().to_string();
        let desk = |id: &str, recipients: &str| {
            format!("[[desk]]\nid = \"{id}\"\nname = \"A desk\"\nrecipients = [{recipients}]\n")
        };
        let key = format!("\"{KEY}\"");
        assert_eq!(
            refused(with_desks(&format!(
                "{}{}",
                desk("a", &key),
                desk("a", &key)
            ))),
            "config key `desk[1].id`: desk \"a\" is defined twice"
        );
        assert_eq!(
            refused(with_desks(&desk("Big Desk", &key))),
            "config key `desk[0].id`: \"Big Desk\" is not a desk id: 1 to 32 of a-z, 0-9 and -, not starting with -"
        );
        assert!(refused(with_desks(&desk("a", "\"age1nope\""))).starts_with(
            "config key `desk[0].recipients[0]`: not a usable age recipient (desk \"a\"): "
        ));
        assert!(refused(with_desks(&desk("a", "")))
            .starts_with("config key `desk[0].recipients`: no recipients (desk \"a\")"));
        assert_eq!(
            refused(with_desks(&format!("[newsroom]\nrecipients = [{key}]\n{}", desk("a", &key)))),
            "config key `newsroom.recipients`: give the recipients either in [newsroom] (one desk) or in [[desk]] entries, not both"
        );
        assert_eq!(
            refused(format!(
                "retired_desks = [\"a\"]\n{}",
                with_desks(&desk("a", &key))
            )),
            "config key `retired_desks[0]`: \"a\" must be the id of a desk no longer in the config"
        );
    }
}

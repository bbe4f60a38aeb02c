//! `agedrop check`: what an admin (or cron) asks before a start or at any time: is
//! this config usable, is its data directory whole, private and roomy enough, can its
//! sockets be made, does tor point at them. It reads and changes nothing of the data
//! (the database is opened read-only, nothing is migrated or created) and never prints
//! anything of a source: paths, modes, counts of bytes, versions (docs/admin.md,
//! "Monitoring").

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, Listen};
use crate::store::{self, Inspection, SCHEMA_VERSION};

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Something that stops the server or weakens it: the check fails.
    Problem(String),
    /// Worth knowing, not wrong (a running server, a migration to come).
    Info(String),
}

/// Where `/etc/group` is: `socket_group` must name a group there.
const GROUP_FILE: &str = "/etc/group";

/// Everything checked for the config at `config_path` and, if given, tor's `torrc`.
pub fn run(config_path: &Path, torrc: Option<&Path>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(err) => {
            findings.push(Finding::Problem(err.to_string()));
            return findings;
        }
    };
    recipients(&config, &mut findings);
    data_dir(&config, &mut findings);
    sockets(&config, &mut findings);
    if let Some(torrc) = torrc {
        match fs::read_to_string(torrc) {
            Ok(text) => tor(&config, torrc, &text, &mut findings),
            Err(err) => findings.push(Finding::Problem(format!(
                "cannot read {}: {err}",
                torrc.display()
            ))),
        }
    }
    findings
}

/// Each desk's recipients take a trial encryption (in memory), as every item will.
fn recipients(config: &Config, findings: &mut Vec<Finding>) {
    for desk in config.desks.iter() {
        if let Err(err) = desk.recipients.seal_bytes(b"agedrop check") {
            findings.push(Finding::Problem(format!(
                "desk {:?}: cannot encrypt to its recipients: {err}",
                desk.id
            )));
        }
    }
}

fn data_dir(config: &Config, findings: &mut Vec<Finding>) {
    let dir = &config.data_dir;
    let shown = dir.display();
    let meta = match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => {
            findings.push(Finding::Problem(format!(
                "data directory {shown} is not a directory"
            )));
            return;
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            findings.push(Finding::Problem(format!(
                "data directory {shown} does not exist: make it with `agedrop init`, or mount its volume"
            )));
            return;
        }
        Err(err) => {
            findings.push(Finding::Problem(format!("data directory {shown}: {err}")));
            return;
        }
    };
    private(dir, &meta, "data directory", "0700", findings);
    let inspection = Inspection::new(dir, &config.database);
    if let Err(err) = inspection.initialised() {
        findings.push(Finding::Problem(err.to_string()));
        return;
    }
    let secret = inspection.instance_secret();
    match fs::metadata(&secret) {
        Ok(meta) => private(&secret, &meta, "instance secret", "0600", findings),
        Err(err) => findings.push(Finding::Problem(format!(
            "instance secret {}: {err}",
            secret.display()
        ))),
    }
    room(config, findings);
    match inspection.in_use() {
        Ok(true) => findings.push(Finding::Info(format!(
            "a server is running on {shown} (it holds the lock)"
        ))),
        Ok(false) => findings.push(Finding::Info(format!("no server is running on {shown}"))),
        Err(err) => findings.push(Finding::Problem(err.to_string())),
    }
    match inspection.schema_version() {
        Ok(version) if version > SCHEMA_VERSION => findings.push(Finding::Problem(format!(
            "the database has schema version {version}, newer than this agedrop's ({SCHEMA_VERSION}): run the agedrop that made it"
        ))),
        Ok(version) if version < SCHEMA_VERSION => findings.push(Finding::Info(format!(
            "the database has schema version {version}; it will be migrated to {SCHEMA_VERSION} at start"
        ))),
        Ok(_) => {}
        Err(err) => findings.push(Finding::Problem(format!(
            "cannot read the database's schema version: {err}"
        ))),
    }
    match inspection.bucket(&config.storage) {
        Ok(None) => {}
        Ok(Some((place, true))) => findings.push(Finding::Info(format!(
            "the bucket {} answers and belongs to this drop",
            place.display()
        ))),
        Ok(Some((place, false))) => findings.push(Finding::Info(format!(
            "the bucket {} answers and belongs to no drop yet: the first `serve` or \
             `init --config` claims it",
            place.display()
        ))),
        Err(err) => findings.push(Finding::Problem(format!("storage: {err}"))),
    }
}

/// `path` must belong to the user running the check (the service user) and be closed
/// to group and others.
fn private(path: &Path, meta: &fs::Metadata, what: &str, mode: &str, findings: &mut Vec<Finding>) {
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        findings.push(Finding::Problem(format!(
            "{what} {} belongs to uid {}, not to uid {me} running this check: run the check as the service user (sudo -u agedrop agedrop check …), or chown it",
            path.display(),
            meta.uid()
        )));
    }
    let actual = meta.mode() & 0o7777;
    if actual & 0o077 != 0 {
        findings.push(Finding::Problem(format!(
            "{what} {} has mode {actual:04o}: group and others must have no access; chmod {mode} {}",
            path.display(),
            path.display()
        )));
    }
}

/// Free bytes and inodes against the limits below which uploads are refused. Bytes
/// are shown in whole MiB: the report may be mailed, and exact free space taken twice
/// would give the exact size of what came in between.
fn room(config: &Config, findings: &mut Vec<Finding>) {
    let free = match store::free_space(&config.data_dir) {
        Ok(free) => free,
        Err(err) => {
            findings.push(Finding::Problem(err.to_string()));
            return;
        }
    };
    let limits = &config.limits;
    if free.bytes < limits.min_free_bytes {
        findings.push(Finding::Problem(format!(
            "{}: {} MiB free, below limits.min_free_bytes ({} MiB): uploads are refused; free space or lower the limit",
            config.data_dir.display(),
            free.bytes / (1024 * 1024),
            limits.min_free_bytes / (1024 * 1024)
        )));
    }
    if free.inodes < limits.min_free_inodes {
        findings.push(Finding::Problem(format!(
            "{}: {} inodes free, below limits.min_free_inodes ({}): uploads are refused",
            config.data_dir.display(),
            free.inodes,
            limits.min_free_inodes
        )));
    }
}

/// For Unix socket listeners: the directory the socket goes in, and its group.
fn sockets(config: &Config, findings: &mut Vec<Finding>) {
    let groups = fs::read_to_string(GROUP_FILE);
    let sides = [
        ("source", &config.source_listen, &config.source_socket_group),
        (
            "journalist",
            &config.journalist_listen,
            &config.journalist_socket_group,
        ),
    ];
    for (side, listen, group) in sides {
        let Listen::Unix(path) = listen else {
            continue;
        };
        let parent = path.parent().unwrap_or(Path::new("/"));
        if !parent.is_dir() {
            findings.push(Finding::Problem(format!(
                "{side}.listen: the directory {} for unix:{} does not exist (the systemd unit makes /run/agedrop with RuntimeDirectory=agedrop)",
                parent.display(),
                path.display()
            )));
        }
        let Some(group) = group else {
            continue;
        };
        match &groups {
            Ok(text) if has_group(text, group) => {}
            Ok(_) => findings.push(Finding::Problem(format!(
                "{side}.socket_group: no group {group:?} in {GROUP_FILE}"
            ))),
            Err(err) => findings.push(Finding::Problem(format!(
                "{side}.socket_group: cannot read {GROUP_FILE}: {err}"
            ))),
        }
    }
}

/// Whether `/etc/group` text (`name:x:gid:members` lines) names `group`.
fn has_group(text: &str, group: &str) -> bool {
    text.lines()
        .any(|line| line.split(':').next() == Some(group))
}

/// Where a `HiddenServicePort` line sends connections.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Target {
    /// `HiddenServicePort VIRTPORT [TARGET]`'s arguments; tor's default target is
    /// 127.0.0.1:VIRTPORT. `None` for what tor would not take either.
    fn parse(virtual_port: &str, target: Option<&str>) -> Option<Target> {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let Some(target) = target else {
            return Some(Target::Tcp(SocketAddr::new(
                loopback,
                virtual_port.parse().ok()?,
            )));
        };
        let target = target.trim_matches('"');
        if let Some(path) = target.strip_prefix("unix:") {
            return Some(Target::Unix(PathBuf::from(path.trim_matches('"'))));
        }
        if let Ok(port) = target.parse::<u16>() {
            return Some(Target::Tcp(SocketAddr::new(loopback, port)));
        }
        if let Some(port) = target.strip_prefix("localhost:") {
            return Some(Target::Tcp(SocketAddr::new(loopback, port.parse().ok()?)));
        }
        target.parse().ok().map(Target::Tcp)
    }

    /// Whether connections sent here reach `listen`.
    fn reaches(&self, listen: &Listen) -> bool {
        match (self, listen) {
            (Target::Unix(path), Listen::Unix(socket)) => path == socket,
            (Target::Tcp(addr), Listen::Tcp(bound)) => {
                addr.port() == bound.port()
                    && (addr.ip() == bound.ip() || bound.ip().is_unspecified())
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(addr) => write!(f, "{addr}"),
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Tor's onion services must send connections to agedrop's listeners: the source
/// site's for sure, the journalist API's if it is an onion service, and never both
/// from one service (its address would lead sources to the journalist API).
fn tor(config: &Config, torrc: &Path, text: &str, findings: &mut Vec<Finding>) {
    let file = torrc.display();
    let (source, journalist) = (&config.source_listen, &config.journalist_listen);
    // The current HiddenServiceDir, and which sides its ports reach.
    let mut service: Option<String> = None;
    let mut sides = (false, false);
    let (mut any_source, mut any_journalist, mut any_port) = (false, false, false);
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        let line = line.split('#').next().unwrap_or("").trim();
        let (keyword, rest) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(k, rest)| (k, rest.trim()));
        if keyword.is_empty() {
            continue;
        }
        if keyword.eq_ignore_ascii_case("HiddenServiceDir") {
            service = Some(rest.to_owned());
            sides = (false, false);
            continue;
        }
        if keyword.eq_ignore_ascii_case("%include") {
            findings.push(Finding::Info(format!(
                "{file} line {number}: %include is not followed; check the included file with --torrc too"
            )));
            continue;
        }
        if !keyword.eq_ignore_ascii_case("HiddenServicePort") {
            continue;
        }
        any_port = true;
        // The target is the rest of the line: a quoted socket path may hold spaces.
        let (virtual_port, target) = rest
            .split_once(char::is_whitespace)
            .map_or((rest, None), |(port, target)| (port, Some(target.trim())));
        let Some(target) = Target::parse(virtual_port, target) else {
            findings.push(Finding::Problem(format!(
                "{file} line {number}: HiddenServicePort {virtual_port}: cannot read its target"
            )));
            continue;
        };
        let (to_source, to_journalist) = (target.reaches(source), target.reaches(journalist));
        any_source |= to_source;
        any_journalist |= to_journalist;
        sides.0 |= to_source;
        sides.1 |= to_journalist;
        if !to_source && !to_journalist {
            findings.push(Finding::Problem(format!(
                "{file} line {number}: HiddenServicePort {virtual_port} points at {target}, which is neither source.listen ({source}) nor journalist.listen ({journalist})"
            )));
        } else if sides == (true, true) {
            findings.push(Finding::Problem(format!(
                "{file} line {number}: the onion service {} leads to both source.listen and journalist.listen: give the journalist API its own HiddenServiceDir",
                service.as_deref().unwrap_or("(no HiddenServiceDir)")
            )));
        }
    }
    if !any_port {
        findings.push(Finding::Problem(format!(
            "{file}: no HiddenServicePort line: the source site is not an onion service"
        )));
    } else if !any_source {
        findings.push(Finding::Problem(format!(
            "{file}: no HiddenServicePort points at source.listen ({source})"
        )));
    }
    if !any_journalist {
        findings.push(Finding::Info(format!(
            "{file}: no onion service leads to journalist.listen ({journalist}); journalists reach the API another way"
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_tor_reads_them() {
        let tcp = |s: &str| Target::Tcp(s.parse().unwrap());
        assert_eq!(Target::parse("80", None), Some(tcp("127.0.0.1:80")));
        assert_eq!(
            Target::parse("80", Some("8080")),
            Some(tcp("127.0.0.1:8080"))
        );
        assert_eq!(
            Target::parse("80", Some("localhost:8081")),
            Some(tcp("127.0.0.1:8081"))
        );
        assert_eq!(
            Target::parse("80", Some("[::1]:8081")),
            Some(tcp("[::1]:8081"))
        );
        assert_eq!(
            Target::parse("80", Some("\"unix:/run/a b.sock\"")),
            Some(Target::Unix("/run/a b.sock".into()))
        );
        assert_eq!(Target::parse("x", None), None);
        let any = Listen::parse("0.0.0.0:8080").unwrap();
        assert!(tcp("127.0.0.1:8080").reaches(&any));
        assert!(!tcp("127.0.0.1:8081").reaches(&any));
    }

    #[test]
    fn groups_are_matched_by_whole_name() {
        let text = "root:x:0:\ndebian-tor:x:110:agedrop\n";
        assert!(has_group(text, "debian-tor"));
        assert!(!has_group(text, "debian"));
        assert!(!has_group(text, "110"));
    }
}

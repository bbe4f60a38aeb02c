//! Claiming a data directory before opening it: the `flock` that keeps a second server
//! off it, and the checks that it is one `init` made and that it can be written.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{io_error, StoreError};
use super::{BLOBS, DATABASE, INSTANCE_SECRET, LOCK, TMP};
use crate::config::Database;
use crate::random;

/// How a process holds the data directory.
#[derive(Clone, Copy)]
pub(super) enum Lock {
    /// One server alone (and `init` or `demo` making the directory).
    Exclusive,
    /// A running server and admin commands beside it.
    Shared,
}

/// Takes the lock on `DATA_DIR/lock` without waiting: [`StoreError::InUse`] if
/// another process holds it in a way that excludes `kind`.
pub(super) fn acquire(dir: &Path, kind: Lock) -> Result<File, StoreError> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_error("open the data directory lock", &path))?;
    let operation = match kind {
        Lock::Exclusive => rustix::fs::FlockOperation::NonBlockingLockExclusive,
        Lock::Shared => rustix::fs::FlockOperation::NonBlockingLockShared,
    };
    match rustix::fs::flock(&file, operation) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StoreError::InUse(dir.to_owned())),
        Err(e) => Err(io_error("lock the data directory", &path)(e.into())),
    }
}

/// Turns the exclusive lock [`acquire`] gave into a shared one, so admin commands can
/// run beside the server.
pub(super) fn downgrade(lock: &File, dir: &Path) -> Result<(), StoreError> {
    rustix::fs::flock(lock, rustix::fs::FlockOperation::NonBlockingLockShared).map_err(|e| {
        StoreError::Io {
            action: "downgrade the data directory lock",
            path: dir.join(LOCK),
            source: e.into(),
        }
    })
}

/// Whether another process holds the lock (a server does, shared, while it runs).
/// Tries for the exclusive lock and lets it go at once: a server starting in that
/// instant is refused as "in use" (systemd starts it again); one already running is
/// never disturbed. A missing lock file means no server has run here.
pub(super) fn held(dir: &Path) -> Result<bool, StoreError> {
    let path = dir.join(LOCK);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error("open the data directory lock", &path)(e)),
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        // Closing the file releases it.
        Ok(()) => Ok(false),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(true),
        Err(e) => Err(io_error("lock the data directory", &path)(e.into())),
    }
}

/// Whether `init` made `dir`: its instance secret, `blobs/`, `tmp/` and, unless the
/// metadata is in PostgreSQL, its database.
pub(super) fn require_initialised(dir: &Path, database: &Database) -> Result<(), StoreError> {
    let sqlite = matches!(database, Database::Sqlite);
    let names = [INSTANCE_SECRET, BLOBS, TMP]
        .into_iter()
        .chain(sqlite.then_some(DATABASE));
    for name in names {
        if !dir.join(name).exists() {
            return Err(StoreError::NotInitialised(dir.to_owned()));
        }
    }
    Ok(())
}

pub(super) fn probe_writable(dir: &Path) -> Result<(), StoreError> {
    let probe = dir.join(format!(".probe-{}", random::hex_id(8)));
    File::create(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(io_error("write in the data directory", dir))
}

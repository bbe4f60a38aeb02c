//! The journalist's desk, on the offline machine: one persistent archive of everything
//! the newsroom pulled (`agedrop open BUNDLE... --desk DIR`) and a local web inbox over
//! it (`agedrop desk DIR`) where journalists read threads and write replies.
//!
//! ```text
//! DIR/                     0700, the journalist's own
//!   desk.sqlite            the index: sources, items, replies, read state, stars,
//!                          notes, imports, the outbox (no bundle is trusted for it)
//!   lock                   flock: one import (or start-up repair) at a time
//!   sources/LABEL/         a source's decrypted items and the newsroom's replies:
//!                          0001-message.txt, 0002-report.pdf, 0003-reply.txt, …
//!   staging/ID             an import in progress: decrypted, not yet placed
//!   outbox/ID.agedrop-reply reply bundles waiting to be carried to the online machine
//!   outbox/sent/           where `push --outbox` moves what it delivered
//! ```
//!
//! An import decrypts everything new into `staging/`, then commits one database
//! transaction, then moves the staged files into place. A crash before the commit
//! leaves the archive as it was (start-up empties `staging/`); a crash after it leaves
//! staged files that start-up moves into place, because the database already names
//! them. The bundle stays the durable copy: the decrypted files are not fsynced (that
//! would double `open`'s time), and a file a power cut damaged is written again by the
//! next import of its bundle. See docs/journalist.md and SECURITY.md, "The desk".

mod import;
mod index;
mod outbox;
mod pages;
mod web;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use crate::bundle::BundleError;
use crate::crypto::OpenError;
use crate::offline::{self, OfflineError};

pub use import::{import, ImportReport};
pub use outbox::{mark_sent, pending_replies, MAX_REPLY_CHARS, OUTBOX_SUFFIX};
pub use web::{serve, DeskServer};

/// The index's file name.
const DATABASE: &str = "desk.sqlite";
/// The lock's file name.
const LOCK: &str = "lock";
/// Where sources' directories are.
const SOURCES: &str = "sources";
/// Where an import stages what it decrypted.
const STAGING: &str = "staging";
/// Where reply bundles wait.
pub const OUTBOX: &str = "outbox";
/// Where `push --outbox` moves what it delivered, inside the outbox.
pub const SENT: &str = "sent";

/// The desk directory when none is given: `~/agedrop-desk`.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join("agedrop-desk"))
}

/// The newsroom recipients the desk encrypts replies to (recorded by imports).
pub fn newsroom_keys(desk: &Desk) -> Result<Vec<String>, DeskError> {
    index::newsroom(&desk.db())
}

/// Why a desk command failed. Nothing of a refused bundle is written.
#[derive(Debug)]
pub enum DeskError {
    /// The bundle is not one we accept (or an offline check failed).
    Offline(OfflineError),
    /// The index could not be read or written.
    Database(rusqlite::Error),
    /// A file could not be read or written: what was being done, and where.
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A bundle gives a source the archive knows another label.
    LabelChanged {
        /// The source's id.
        id: String,
        /// Its label in the archive.
        known: String,
    },
    /// A bundle gives a source the archive knows another reply key.
    RecipientChanged {
        /// The source's id.
        id: String,
    },
    /// A bundle puts a source the archive knows in another desk.
    DeskChanged {
        /// The source's id.
        id: String,
        /// Its desk in the archive.
        known: String,
    },
    /// A bundle gives a new source a label (or directory) the archive has for another.
    LabelInUse {
        /// The new source's id.
        id: String,
        /// The id of the source the archive has under that label.
        holder: String,
    },
    /// A bundle puts an item where the archive already has another one.
    OrderTaken {
        /// The source's id.
        source_id: String,
        /// The order.
        order: i64,
    },
    /// An item or reply of the bundle could not be decrypted: the bundle is refused.
    Item {
        /// The item's (or reply's) id.
        id: String,
        /// Why.
        cause: OpenError,
    },
    /// The index was made by a newer agedrop.
    UnknownSchema(i64),
    /// Another import runs on this desk.
    Busy(PathBuf),
    /// No source with that id in the archive.
    UnknownSource,
    /// The desk has no newsroom recipients to encrypt replies to.
    NoNewsroomKeys,
}

impl fmt::Display for DeskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeskError::Offline(err) => write!(f, "{err}"),
            DeskError::Database(err) => write!(f, "the desk's index: {err}"),
            DeskError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} ({}): {source}", path.display()),
            DeskError::LabelChanged { id, known } => write!(
                f,
                "bundle refused: it gives source {id} another label than the archive's {:?}; \
                 nothing of it was imported",
                offline::printable(known)
            ),
            DeskError::RecipientChanged { id } => write!(
                f,
                "bundle refused: it gives source {id} another reply key than the archive \
                 has; nothing of it was imported (a server that changes a source's key \
                 could read replies meant for the source)"
            ),
            DeskError::DeskChanged { id, known } => write!(
                f,
                "bundle refused: it puts source {id} in another desk than the archive's \
                 {known:?}; nothing of it was imported"
            ),
            DeskError::LabelInUse { id, holder } => write!(
                f,
                "bundle refused: its new source {id} has the label of source {holder} in \
                 the archive; nothing of it was imported"
            ),
            DeskError::OrderTaken { source_id, order } => write!(
                f,
                "bundle refused: it puts a different entry at order {order} of source \
                 {source_id}; nothing of it was imported"
            ),
            DeskError::Item { id, cause } => write!(
                f,
                "bundle refused: item {id}: {cause}; nothing of it was imported"
            ),
            DeskError::UnknownSchema(version) => write!(
                f,
                "the desk's index has version {version}, newer than this agedrop knows"
            ),
            DeskError::Busy(dir) => write!(
                f,
                "another agedrop is importing into {}; wait for it to finish",
                dir.display()
            ),
            DeskError::UnknownSource => write!(f, "no such source on this desk"),
            DeskError::NoNewsroomKeys => write!(
                f,
                "the desk does not know the newsroom's public keys: import a bundle with \
                 a plain identity file (-i), or with --recipient age1…"
            ),
        }
    }
}

impl std::error::Error for DeskError {}

impl From<rusqlite::Error> for DeskError {
    fn from(err: rusqlite::Error) -> Self {
        DeskError::Database(err)
    }
}

impl From<OfflineError> for DeskError {
    fn from(err: OfflineError) -> Self {
        DeskError::Offline(err)
    }
}

impl From<BundleError> for DeskError {
    fn from(err: BundleError) -> Self {
        DeskError::Offline(OfflineError::Bundle(err))
    }
}

/// `map_err` for an I/O step at `path`.
fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DeskError + 'a {
    move |source| DeskError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// An open desk directory.
pub struct Desk {
    dir: PathBuf,
    db: Mutex<Connection>,
}

impl Desk {
    /// Opens the desk at `dir`, making it (mode 0700) if missing. The directory must be
    /// the user's own and writable by nobody else. Finishes an import a crash cut
    /// short (see the module's docs).
    pub fn open(dir: &Path) -> Result<Desk, DeskError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error("make the desk directory", dir))?;
        let meta = fs::metadata(dir).map_err(io_error("read the desk directory", dir))?;
        offline::check_private_dir(dir, &meta)?;
        for sub in [SOURCES, STAGING, OUTBOX] {
            private_subdir(&dir.join(sub))?;
        }
        private_subdir(&dir.join(OUTBOX).join(SENT))?;
        let db = index::open(&dir.join(DATABASE))?;
        let desk = Desk {
            dir: dir.to_owned(),
            db: Mutex::new(db),
        };
        let lock = desk.lock()?;
        desk.finish_staged()?;
        drop(lock);
        Ok(desk)
    }

    /// The desk directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the desk's lock without waiting.
    fn lock(&self) -> Result<File, DeskError> {
        let path = self.dir.join(LOCK);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(crate::nofollow::flag())
            .open(&path)
            .map_err(io_error("open the desk's lock", &path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(DeskError::Busy(self.dir.clone())),
            Err(err) => Err(io_error("lock the desk", &path)(err.into())),
        }
    }

    fn source_dir(&self, dir_name: &str) -> PathBuf {
        self.dir.join(SOURCES).join(dir_name)
    }

    fn staged(&self, id: &str) -> PathBuf {
        self.dir.join(STAGING).join(id)
    }

    /// Moves staged files the index already names into place, and removes the rest
    /// (an import that never committed).
    fn finish_staged(&self) -> Result<(), DeskError> {
        let staging = self.dir.join(STAGING);
        let entries =
            fs::read_dir(&staging).map_err(io_error("read the staging area", &staging))?;
        for entry in entries {
            let entry = entry.map_err(io_error("read the staging area", &staging))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let placed = match self.placement(&name)? {
                Some((dir_name, file)) => {
                    let dir = self.source_dir(&dir_name);
                    private_subdir(&dir)?;
                    let target = dir.join(&file);
                    // A damaged file the import wrote again replaces the old one.
                    fs::rename(&path, &target).is_ok()
                }
                None => false,
            };
            if !placed {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// Where the index puts the entry with this id: its source's directory and file.
    fn placement(&self, id: &str) -> Result<Option<(String, String)>, DeskError> {
        index::placement(&self.db(), id)
    }
}

/// Makes a directory of the desk (0700) or checks the one there: a link or a
/// directory others can write to is refused.
fn private_subdir(dir: &Path) -> Result<(), DeskError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dir).map_err(io_error("read", dir))?;
            offline::check_private_dir(dir, &meta).map_err(DeskError::from)
        }
        Err(err) => Err(io_error("make a directory", dir)(err)),
    }
}

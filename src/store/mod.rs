//! The data directory: an SQLite database (WAL) for metadata and ciphertext blobs under
//! random names.
//!
//! ```text
//! DATA_DIR/            0700
//!   agedrop.sqlite     sources, items, journalists (no plaintext, no exact times)
//!   instance-secret    32 random bytes, 0600: keys the CSRF tokens and source codes
//!   node-id            with blobs in a bucket: this node's id for its markers there
//!   blobs/ID.age       an item: age ciphertext, exactly as exported
//!   blobs/ID.meta.age  its metadata (filename, type, exact time): age ciphertext
//!   tmp/               uploads in progress; emptied at start-up
//!   orphans/           blobs start-up found without a row (kept, never deleted)
//!   lock               flock: one server per directory
//! ```
//!
//! Writes are atomic: a blob is written to `tmp/`, fsynced, renamed into `blobs/`, the
//! directory fsynced, and only then does a database transaction make it an item. A crash
//! at any point leaves either a whole item or nothing once [`Store::open`] has
//! reconciled the two. The server-visible metadata of an item is its random id, source
//! id, kind, order within the source, day and ciphertext size; nothing else.
//!
//! The metadata may instead be in PostgreSQL (`[database] url`): `db` runs the same
//! statements on either, and only the data directory's other files stay here.
//!
//! This file holds [`Store`] itself (opening, the WAL scrub, free space), the names in
//! the data directory and [`StoreError`]. The rest is split by concern: `db` (the one
//! query layer over SQLite and PostgreSQL), `schema` (the database and its
//! migrations, one list per database), `lock` and `secret` (what start-up claims and loads
//! before the database), `blobs` (the files), `reconcile` (start-up's repair), and the
//! queries by what they are about: `items`, `export`, `sources`, `replies`,
//! `journalists`.

mod blobs;
mod bucket;
mod db;
mod direct;
mod export;
mod items;
mod journalists;
mod lock;
mod reconcile;
mod replies;
mod retention;
mod schema;
mod secret;
mod snapshot;
mod sources;
mod tls;

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;
use tracing::warn;

pub use blobs::{BlobReader, BlobWriter, ItemBlob, NewBlob, SealedItem, TempBlob, FLUSH_EVERY};
pub use export::{Export, ExportDeletedReply, ExportItem, ExportReply, ExportSource};
pub use items::Owner;
pub use journalists::Journalist;
pub use reconcile::Reconciled;
pub use replies::{ReplyRecord, RESERVED_BYTES, RESERVED_INODES};
pub use retention::Swept;
pub use schema::SCHEMA_VERSION;
pub use secret::InstanceSecret;
pub use snapshot::{is_blob_name, BlobOwner, Layout, Snapshot, SnapshotBlob};
pub use sources::{FoundSource, PendingRotation, SourceKeyRecord};

use blobs::Blobs;
use bucket::Bucket;
use db::{Db, Sql};
use export::Exports;
use lock::Lock;

use crate::config::{Database, Storage};

const DATABASE: &str = "agedrop.sqlite";
const INSTANCE_SECRET: &str = "instance-secret";
/// This node's id, for what it leaves in a shared object store (`secret::node_id`).
const NODE_ID: &str = "node-id";
const LOCK: &str = "lock";
/// Where start-up moves blobs no row refers to: ciphertext is never deleted on a guess.
const ORPHANS: &str = "orphans";
const BLOBS: &str = "blobs";
const TMP: &str = "tmp";
const ITEM_SUFFIX: &str = ".age";
const META_SUFFIX: &str = ".meta.age";
const REPLY_SUFFIX: &str = ".reply.age";
/// Bytes in a random id (item, source): 128 bits, as 32 hex characters.
const ID_BYTES: usize = 16;

/// Why the store failed. Variants name the cause; none carries source data.
#[derive(Debug)]
pub enum StoreError {
    /// The data directory (or a file in it) cannot be created, read or written.
    Io {
        /// What we were doing, e.g. "create the data directory".
        action: &'static str,
        /// The path involved (server-chosen, never a client's name).
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The object store holding the blobs (`[storage] kind = "s3"`) failed or refused,
    /// or its settings could not be used.
    Bucket {
        /// What we were doing, e.g. "reach the bucket".
        action: &'static str,
        /// The endpoint and bucket (or the secret key's file), never an object's name.
        place: PathBuf,
        /// What went wrong, without object names.
        source: io::Error,
    },
    /// Encrypting something the store is to keep failed: a source's key wrapped to its
    /// code, a new code sealed to its source, an item's metadata record.
    Encrypt {
        /// What we were doing, e.g. "wrap a source key".
        action: &'static str,
        /// The encryption's error.
        source: io::Error,
    },
    /// The database failed.
    Database(rusqlite::Error),
    /// PostgreSQL failed (`[database] url`).
    Postgres {
        /// What we were doing, e.g. "connect to the database" or "update sources"
        /// (a statement's verb and table, never its values).
        action: String,
        /// The driver's error.
        source: postgres::Error,
    },
    /// A statement that returns one row (a counter, a count) returned none.
    NoRow {
        /// The statement's verb and table.
        action: String,
    },
    /// What was asked exists only for a database in the data directory (SQLite).
    NotSqlite {
        /// What was asked, e.g. "snapshot the database".
        action: &'static str,
    },
    /// The database was made by a newer agedrop.
    UnknownSchema(i64),
    /// The PostgreSQL database was made by a newer agedrop.
    UnknownPostgresSchema(i64),
    /// The PostgreSQL database holds no schema, but the bucket belongs to this drop
    /// already: probably the wrong database.
    EmptyPostgres,
    /// The source the caller named does not exist (it was deleted).
    UnknownSource,
    /// A journalist account with that name exists already.
    JournalistExists,
    /// Another agedrop process holds the data directory.
    InUse(PathBuf),
    /// The directory is not an agedrop data directory (no database or secret).
    NotInitialised(PathBuf),
    /// Too little space or too few inodes are left for this write; what is stored
    /// stays readable.
    NoRoom,
    /// Start-up found item rows but none of their blobs: `blobs/` is probably on a
    /// volume that is not mounted. Nothing was changed.
    BlobsMissing {
        /// The blob directory.
        dir: PathBuf,
        /// Item and reply rows, none of whose blobs are there.
        rows: usize,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} ({}): {source}", path.display()),
            StoreError::Bucket {
                action,
                place,
                source,
            } => write!(f, "cannot {action} ({}): {source}", place.display()),
            StoreError::Encrypt { action, source } => write!(f, "cannot {action}: {source}"),
            StoreError::Database(err) => write!(f, "database: {err}"),
            StoreError::Postgres { action, source } => {
                // The error's own text, and a server error's code and message, but not
                // its DETAIL, which may quote a row's values.
                write!(f, "cannot {action} (PostgreSQL): {source}")?;
                if let Some(db) = source.as_db_error() {
                    write!(f, ": {} ({})", db.message(), db.code().code())?;
                } else if let Some(cause) = std::error::Error::source(source) {
                    write!(f, ": {cause}")?;
                }
                Ok(())
            }
            StoreError::NoRow { action } => {
                write!(f, "database: cannot {action}: no row where one was expected")
            }
            StoreError::NotSqlite { action } => write!(
                f,
                "cannot {action}: this is done only for the SQLite database in the data directory, \
                 not for PostgreSQL ([database] url)"
            ),
            StoreError::UnknownSchema(v) | StoreError::UnknownPostgresSchema(v) => write!(
                f,
                "the database has schema version {v}, which this agedrop does not know; use a newer agedrop"
            ),
            StoreError::EmptyPostgres => write!(
                f,
                "the database holds no agedrop schema, but the bucket already belongs to this \
                 drop: is this the drop's database? Refusing to start, so that the drop does \
                 not start empty; nothing was changed"
            ),
            StoreError::UnknownSource => write!(f, "no such source"),
            StoreError::JournalistExists => write!(f, "a journalist with that name exists"),
            StoreError::InUse(dir) => write!(
                f,
                "{} is in use by another agedrop process; stop it first",
                dir.display()
            ),
            StoreError::NotInitialised(dir) => write!(
                f,
                "{} is not an agedrop data directory (no database or instance secret); \
                 create one with `agedrop init`, or check that its volume is mounted",
                dir.display()
            ),
            StoreError::NoRoom => write!(f, "too little disk space or too few inodes left"),
            StoreError::BlobsMissing { dir, rows } => write!(
                f,
                "{} holds none of the blobs of the {rows} stored items and replies: is its volume mounted \
                 (or, for an object store, is this the right bucket)? \
                 Refusing to start, so that no item is dropped; nothing was changed",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// The config key an admin would look at first for this error: `storage` for the
    /// object store, `database` for PostgreSQL, `data_dir` for everything else.
    pub fn config_key(&self) -> &'static str {
        match self {
            StoreError::Bucket { .. } => "storage",
            StoreError::Postgres { .. }
            | StoreError::UnknownPostgresSchema(_)
            | StoreError::EmptyPostgres
            | StoreError::NotSqlite { .. } => "database",
            _ => "data_dir",
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Database(err)
    }
}

impl StoreError {
    /// True when a unique constraint refused a row.
    fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
            }
            StoreError::Postgres { source, .. } => {
                source.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }

    /// True when the cause is a full disk (ENOSPC or EDQUOT), which the web layer
    /// reports as "no space" rather than a server fault.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::NoRoom => true,
            StoreError::Io { source, .. } => is_disk_full(source),
            StoreError::Database(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            _ => false,
        }
    }
}

/// True for "no space left" and "quota exceeded".
pub fn is_disk_full(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(28) | Some(122))
}

/// For `map_err`: `action` on `path` failed.
pub(crate) fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// For `map_err`: encrypting for `action` failed.
pub(crate) fn encrypt_error(action: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Encrypt { action, source }
}

impl FreeSpace {
    /// From `statvfs`: available blocks and their size, total and available inodes.
    /// A filesystem without a fixed inode table (btrfs, and overlayfs on it) reports 0
    /// inodes in all; it never runs out of them, so it counts as unlimited.
    pub fn from_statvfs(blocks: u64, block_size: u64, files: u64, free_files: u64) -> Self {
        FreeSpace {
            bytes: blocks.saturating_mul(block_size),
            inodes: if files == 0 { u64::MAX } else { free_files },
        }
    }
}

/// Free space on the data directory's filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeSpace {
    /// Bytes available to unprivileged users.
    pub bytes: u64,
    /// Inodes (files) available to unprivileged users.
    pub inodes: u64,
}

pub use crate::bundle::ItemKind;

/// The data directory, open.
pub struct Store {
    dir: PathBuf,
    blobs: Blobs,
    tmp: PathBuf,
    db: Mutex<Db>,
    exports: Mutex<Exports>,
    /// A deletion's WAL scrub could not finish; [`Store::retry_scrub`] tries again.
    scrub_pending: AtomicBool,
    secret: InstanceSecret,
    /// flock on `DATA_DIR/lock`, held for the store's life.
    lock: File,
}

impl Store {
    /// Makes a new data directory (directories 0700, files 0600) with its instance
    /// secret and database, or opens one `init` made before. For `init` and `demo`.
    pub fn create(dir: &Path, storage: &Storage, database: &Database) -> Result<Store, StoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error("create the data directory", dir))?;
        for sub in [BLOBS, TMP] {
            let sub = dir.join(sub);
            match fs::DirBuilder::new().mode(0o700).create(&sub) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && sub.is_dir() => {}
                Err(e) => return Err(io_error("create a data subdirectory", &sub)(e)),
            }
        }
        let lock = lock::acquire(dir, Lock::Exclusive)?;
        let secret = secret::load_or_create(&dir.join(INSTANCE_SECRET))?;
        Self::assemble(dir, storage, database, secret, lock, true)
    }

    /// Opens an existing data directory for serving: takes the exclusive lock (a second
    /// server on the same directory is refused), removes leftover temp files,
    /// reconciles rows with blobs, then holds a shared lock so admin commands can run
    /// beside it. A directory `init` did not make is refused rather than created: it
    /// may be a volume that failed to mount.
    pub fn open(
        dir: &Path,
        storage: &Storage,
        database: &Database,
    ) -> Result<(Store, Reconciled), StoreError> {
        lock::require_initialised(dir, database)?;
        let lock = lock::acquire(dir, Lock::Exclusive)?;
        lock::probe_writable(&dir.join(TMP))?;
        let secret = secret::load(&dir.join(INSTANCE_SECRET))?;
        let store = Self::assemble(dir, storage, database, secret, lock, true)?;
        let reconciled = store.reconcile()?;
        lock::downgrade(&store.lock, dir)?;
        Ok((store, reconciled))
    }

    /// Opens an existing data directory beside a running server (admin commands): a
    /// shared lock, no clean-up.
    pub fn open_shared(
        dir: &Path,
        storage: &Storage,
        database: &Database,
    ) -> Result<Store, StoreError> {
        lock::require_initialised(dir, database)?;
        let lock = lock::acquire(dir, Lock::Shared)?;
        let secret = secret::load(&dir.join(INSTANCE_SECRET))?;
        Self::assemble(dir, storage, database, secret, lock, false)
    }

    fn assemble(
        dir: &Path,
        storage: &Storage,
        database: &Database,
        secret: InstanceSecret,
        lock: File,
        make_node_id: bool,
    ) -> Result<Store, StoreError> {
        // Only `init` and `serve` (the exclusive lock) make the node id: an admin command
        // run as root beside the server would otherwise leave a root-owned file the
        // service user cannot read at its next start.
        let blobs = match storage {
            Storage::Local => Blobs::Local {
                dir: dir.join(BLOBS),
            },
            Storage::S3(config) => {
                let node = secret::node_id(&dir.join(NODE_ID), make_node_id)?;
                Blobs::Bucket(Bucket::connect(config, &node)?)
            }
        };
        // A bucket this drop claimed already holds its blobs: then an empty database is
        // the wrong one (a mistyped URL), and making a schema there would start the
        // drop empty. The bucket is claimed only once the database is open, so a
        // failure leaves no claim behind.
        let fingerprint = secret.fingerprint();
        let existing_drop = match &blobs {
            Blobs::Bucket(bucket) => bucket.claimed(&fingerprint)?,
            Blobs::Local { .. } => false,
        };
        let db = schema::open(database, &dir.join(DATABASE), !existing_drop)?;
        if let Blobs::Bucket(bucket) = &blobs {
            bucket.claim(&fingerprint)?;
        }
        Ok(Store {
            dir: dir.to_owned(),
            blobs,
            tmp: dir.join(TMP),
            db: Mutex::new(db),
            exports: Mutex::new(Exports::default()),
            scrub_pending: AtomicBool::new(false),
            secret,
            lock,
        })
    }

    /// Leaves no copy of deleted or replaced rows in any file of the data directory:
    /// the WAL still holds the page images from before a deletion or a code rotation,
    /// so it is checkpointed into the database (where `secure_delete` has zeroed the
    /// old cells) and truncated. If that cannot finish now, the deletion stands and
    /// [`Store::retry_scrub`] tries again. See SECURITY.md, "What a seized disk does
    /// not give".
    ///
    /// On PostgreSQL there is nothing the store can scrub, so this does nothing: a
    /// deleted or updated row stays in its table's file as a dead tuple until VACUUM
    /// reuses the space (and even then is not overwritten at once), and PostgreSQL's
    /// own WAL and its archives keep the old row images. SECURITY.md, "What a database
    /// operator can learn".
    fn scrub(&self, db: &Db) {
        let Some(db) = db.sqlite() else {
            return;
        };
        let done = checkpoint_and_truncate(db).unwrap_or_else(|err| {
            warn!(error = %err, "WAL checkpoint failed");
            false
        });
        if !done {
            warn!("could not truncate the WAL after a deletion; retrying within a minute");
        }
        self.scrub_pending.store(!done, Ordering::SeqCst);
    }

    /// Scrubs the WAL if an earlier scrub could not finish. Called once a minute.
    pub fn retry_scrub(&self) {
        if self.scrub_pending.load(Ordering::SeqCst) {
            let db = self.db();
            self.scrub(&db);
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the blobs are in the data directory (not in an object store).
    pub fn blobs_are_local(&self) -> bool {
        matches!(self.blobs, Blobs::Local { .. })
    }

    /// The instance secret.
    pub fn instance_secret(&self) -> &InstanceSecret {
        &self.secret
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        // A panic while holding the lock cannot leave the database inconsistent (an
        // open transaction rolls back when it drops), so a poisoned lock is still safe
        // to use.
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes and inodes free for unprivileged users on the data directory's
    /// filesystem.
    pub fn free_space(&self) -> Result<FreeSpace, StoreError> {
        free_space(&self.dir)
    }
}

/// Bytes and inodes free for unprivileged users on the filesystem of `dir`.
pub fn free_space(dir: &Path) -> Result<FreeSpace, StoreError> {
    let stat = rustix::fs::statvfs(dir).map_err(|e| StoreError::Io {
        action: "read free space",
        path: dir.to_owned(),
        source: e.into(),
    })?;
    Ok(FreeSpace::from_statvfs(
        stat.f_bavail,
        stat.f_frsize,
        stat.f_files,
        stat.f_favail,
    ))
}

/// A data directory (and its database) as `agedrop check` looks at it: without
/// opening, migrating or creating anything in it.
pub struct Inspection<'a> {
    dir: &'a Path,
    database: &'a Database,
}

impl<'a> Inspection<'a> {
    /// The data directory `dir`, whose metadata is in `database`.
    pub fn new(dir: &'a Path, database: &'a Database) -> Self {
        Inspection { dir, database }
    }

    /// For blobs in a bucket: whether the bucket answers with the configured key, and
    /// whether this drop claimed it already (`Ok(true)`) or nobody has yet (`Ok(false)`);
    /// a bucket another instance claimed is an error. Reads only: nothing is claimed,
    /// cleaned up or made. `Ok(None)` for blobs in the data directory.
    pub fn bucket(&self, storage: &Storage) -> Result<Option<(PathBuf, bool)>, StoreError> {
        let Storage::S3(config) = storage else {
            return Ok(None);
        };
        let secret = secret::load(&self.dir.join(INSTANCE_SECRET))?;
        // No node's markers are touched; the id only names a prefix never listed here.
        let bucket = Bucket::connect(config, "check")?;
        let ours = bucket.claimed(&secret.fingerprint())?;
        Ok(Some((bucket.place().to_owned(), ours)))
    }

    /// Where its instance secret is.
    pub fn instance_secret(&self) -> PathBuf {
        self.dir.join(INSTANCE_SECRET)
    }

    /// Whether `init` made it (database, secret, `blobs/`, `tmp/`).
    pub fn initialised(&self) -> Result<(), StoreError> {
        lock::require_initialised(self.dir, self.database)
    }

    /// The schema version of its database (see [`SCHEMA_VERSION`]); 0 for a
    /// PostgreSQL database no agedrop has used yet.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        match self.database {
            Database::Sqlite => schema::stored_version(&self.dir.join(DATABASE)),
            Database::Postgres(settings) => {
                let mut db = Db::Postgres(Box::new(db::Postgres::connect(settings)?));
                schema::postgres_version(&mut db)
            }
        }
    }

    /// Whether a process holds its lock, as a running server does.
    pub fn in_use(&self) -> Result<bool, StoreError> {
        lock::held(self.dir)
    }
}

/// Whether the source `id` has a row (on a connection or in a transaction).
fn source_row(db: &mut impl Sql, id: &str) -> Result<bool, StoreError> {
    db.exists("SELECT 1 FROM sources WHERE id = ?1", &[&id])
}

/// The next export position, from the counter every exported row (item, reply, deleted
/// reply) shares: numbers only grow, so a deletion never hands its position on and
/// `pull` never skips a row (schema versions 4 and 6).
fn next_position(db: &mut impl Sql) -> Result<i64, StoreError> {
    db.value(
        "UPDATE counters SET value = value + 1 WHERE name = 'export' RETURNING value",
        &[],
    )
}

/// The next order within a source (shared by its items and the newsroom's replies) and
/// the next export position. Call inside a write transaction ([`Db::write`]).
fn next_order(db: &mut impl Sql, source_id: &str) -> Result<(i64, i64), StoreError> {
    // Numbers only grow: a deleted newest item or reply never hands its number on.
    let seq = db.value(
        "UPDATE sources SET next_seq = next_seq + 1 WHERE id = ?1 RETURNING next_seq",
        &[&source_id],
    )?;
    Ok((seq, next_position(db)?))
}

/// Checkpoints the WAL into the database and truncates it to zero bytes. `Ok(false)`
/// when a reader in another process (an admin command) held it back past the busy
/// timeout.
fn checkpoint_and_truncate(db: &Connection) -> Result<bool, StoreError> {
    let busy: i64 = db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}

#[cfg(test)]
mod tests {
    use super::FreeSpace;

    #[test]
    fn a_filesystem_without_an_inode_table_never_runs_out_of_inodes() {
        let btrfs = FreeSpace::from_statvfs(10, 4096, 0, 0);
        assert_eq!(btrfs.inodes, u64::MAX);
        assert_eq!(btrfs.bytes, 40960);
        let ext4 = FreeSpace::from_statvfs(10, 4096, 65536, 12);
        assert_eq!(ext4.inodes, 12);
    }
}

//! The data directory: an SQLite database (WAL) for metadata and ciphertext blobs under
//! random names.
//!
//! ```text
//! DATA_DIR/            0700
//!   agedrop.sqlite     sources, items, journalists (no plaintext, no exact times)
//!   instance-secret    32 random bytes, 0600: keys the CSRF tokens and source codes
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

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tracing::warn;
use zeroize::Zeroizing;

use crate::{label, random, time};

const DATABASE: &str = "agedrop.sqlite";
const INSTANCE_SECRET: &str = "instance-secret";
const LOCK: &str = "lock";
/// Where start-up moves blobs no row refers to: ciphertext is never deleted on a guess.
const ORPHANS: &str = "orphans";
const BLOBS: &str = "blobs";
const TMP: &str = "tmp";
const ITEM_SUFFIX: &str = ".age";
const META_SUFFIX: &str = ".meta.age";
const REPLY_SUFFIX: &str = ".reply.age";
/// Inodes and bytes no reply may take: what the WAL, a temp file and a restart need
/// when uploads have already been refused for want of space (SECURITY.md, "Limits").
pub const RESERVED_INODES: u64 = 64;
/// See [`RESERVED_INODES`].
pub const RESERVED_BYTES: u64 = 8 * 1024 * 1024;
/// Bytes in a random id (item, source): 128 bits, as 32 hex characters.
const ID_BYTES: usize = 16;

const SCHEMA: &str = "
CREATE TABLE sources (
    id      TEXT PRIMARY KEY,
    day     TEXT NOT NULL
);
CREATE TABLE items (
    id        TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('message', 'file', 'reply')),
    seq       INTEGER NOT NULL,
    day       TEXT NOT NULL,
    size      INTEGER NOT NULL,
    meta_size INTEGER NOT NULL,
    UNIQUE (source_id, seq)
);
CREATE TABLE journalists (
    name       TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    day        TEXT NOT NULL
);
PRAGMA user_version = 1;
";

/// Version 2: source keys (lookup id, wrapped identity, recipient), labels, replies.
const SCHEMA_V2: &str = "
ALTER TABLE sources ADD COLUMN label TEXT;
ALTER TABLE sources ADD COLUMN lookup_id BLOB;
ALTER TABLE sources ADD COLUMN kdf TEXT;
ALTER TABLE sources ADD COLUMN recipient TEXT;
ALTER TABLE sources ADD COLUMN wrapped_key BLOB;
CREATE UNIQUE INDEX sources_label ON sources (label);
CREATE UNIQUE INDEX sources_lookup ON sources (lookup_id);
CREATE TABLE replies (
    id        TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    day       TEXT NOT NULL,
    size      INTEGER NOT NULL
);
PRAGMA user_version = 2;
";

/// Version 3: tokens name their account (per-account rate limits). Tokens made before
/// cannot be matched to an account and are dropped: make new ones.
const SCHEMA_V3: &str = "
DELETE FROM journalists;
ALTER TABLE journalists ADD COLUMN account_id TEXT;
CREATE UNIQUE INDEX journalists_account ON journalists (account_id);
PRAGMA user_version = 3;
";

/// Version 4: an export position per item from a counter that never goes back, so a
/// deleted newest item cannot hand its position to the next one (rowids can be reused,
/// which would make `pull` skip an item).
const SCHEMA_V4: &str = "
ALTER TABLE items ADD COLUMN position INTEGER;
UPDATE items SET position = rowid;
CREATE UNIQUE INDEX items_position ON items (position);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters (name, value) SELECT 'export', COALESCE(MAX(position), 0) FROM items;
PRAGMA user_version = 4;
";

/// Version 5: rows marked `deleting` before their blobs are unlinked (so start-up
/// tells a deletion cut short from a volume that is missing), item numbers from a
/// per-source counter that only grows (a deleted newest
/// item never hands its number to the next one), and a pending code rotation: the new
/// code's keys wait beside the old ones until the source has seen the new code, and the
/// new code itself, encrypted to the source's own recipient, so a login with the old
/// code can show it again.
const SCHEMA_V5: &str = "
ALTER TABLE sources ADD COLUMN next_seq INTEGER NOT NULL DEFAULT 0;
UPDATE sources SET next_seq =
    (SELECT COALESCE(MAX(seq), 0) FROM items WHERE items.source_id = sources.id);
ALTER TABLE sources ADD COLUMN pending_lookup_id BLOB;
ALTER TABLE sources ADD COLUMN pending_kdf TEXT;
ALTER TABLE sources ADD COLUMN pending_wrapped_key BLOB;
ALTER TABLE sources ADD COLUMN pending_code BLOB;
CREATE UNIQUE INDEX sources_pending_lookup ON sources (pending_lookup_id);
ALTER TABLE items ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replies ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 5;
";

/// Every schema change in order: a database at `user_version` N gets
/// `MIGRATIONS[N..]`, each in its own transaction.
const MIGRATIONS: &[&str] = &[SCHEMA, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5];

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
    /// The database failed.
    Database(rusqlite::Error),
    /// The database was made by a newer agedrop.
    UnknownSchema(i64),
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
        /// Item rows whose blobs are absent.
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
            StoreError::Database(err) => write!(f, "database: {err}"),
            StoreError::UnknownSchema(v) => write!(
                f,
                "the database has schema version {v}, which this agedrop does not know; use a newer agedrop"
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
                "{} holds none of the blobs of the {rows} stored items: is its volume mounted? \
                 Refusing to start, so that no item is dropped; nothing was changed",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Database(err)
    }
}

impl StoreError {
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

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
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

/// What an item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// A source's message.
    Message,
    /// A file a source uploaded.
    File,
    /// A journalist's reply.
    Reply,
}

impl ItemKind {
    /// The name stored in the database and the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Message => "message",
            ItemKind::File => "file",
            ItemKind::Reply => "reply",
        }
    }
}

/// What start-up found and repaired (counts only: see SECURITY.md on logging).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Temp files of interrupted uploads, removed.
    pub temp_files_removed: usize,
    /// Item rows whose blobs were missing, removed.
    pub rows_without_blobs: usize,
    /// Blobs no row refers to (a crash between rename and commit, or a database
    /// restored from an older backup), moved to `orphans/`.
    pub blobs_without_rows: usize,
}

/// The instance secret: 32 random bytes made once per data directory. No `Debug`.
pub struct InstanceSecret(Zeroizing<[u8; 32]>);

impl InstanceSecret {
    /// The secret's bytes, for key derivation.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A file being written in `tmp/`. Removed on drop unless it was committed, so an
/// aborted upload leaves nothing behind.
pub struct TempBlob {
    path: PathBuf,
    file: Option<File>,
}

impl TempBlob {
    /// The open file, for writing.
    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("a TempBlob's file is open until it is sealed")
    }

    /// A writer for large blobs that has the kernel write back every
    /// [`FLUSH_EVERY`] bytes on a helper thread while writing goes on, so the fsync in
    /// [`TempBlob::seal`] finds little left to do. You **MUST** call
    /// [`BlobWriter::finish`]: it reports a failed background flush, which the final
    /// fsync would not see again (an fsync error is reported once per open file).
    pub fn writer(&mut self) -> BlobWriter<'_> {
        let file = self.file();
        let flusher = file.try_clone().ok().map(|clone| {
            let (tick, ticks) = std::sync::mpsc::sync_channel::<()>(1);
            let thread = std::thread::spawn(move || -> io::Result<()> {
                for () in ticks {
                    clone.sync_data()?;
                }
                Ok(())
            });
            (tick, thread)
        });
        BlobWriter {
            file,
            unflushed: 0,
            flusher,
        }
    }

    /// Finishes the file: coarse times (so the filesystem does not keep the exact upload
    /// time), fsync, close. Returns its size.
    pub fn seal(&mut self) -> Result<u64, StoreError> {
        let file = self.file.take().expect("a TempBlob is sealed at most once");
        let day = time::start_of_day(SystemTime::now());
        file.set_times(FileTimes::new().set_accessed(day).set_modified(day))
            .map_err(io_error("set the times of a blob", &self.path))?;
        file.sync_all()
            .map_err(io_error("fsync a blob", &self.path))?;
        let size = file
            .metadata()
            .map_err(io_error("stat a blob", &self.path))?
            .len();
        Ok(size)
    }
}

/// Bytes written between background flushes of a large blob.
pub const FLUSH_EVERY: u64 = 64 * 1024 * 1024;

/// See [`TempBlob::writer`].
pub struct BlobWriter<'a> {
    file: &'a mut File,
    unflushed: u64,
    flusher: Option<(
        std::sync::mpsc::SyncSender<()>,
        std::thread::JoinHandle<io::Result<()>>,
    )>,
}

impl BlobWriter<'_> {
    /// Waits for the background flushes; fails if any failed.
    pub fn finish(mut self) -> io::Result<()> {
        match self.flusher.take() {
            Some((tick, thread)) => {
                drop(tick);
                thread
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("the flush thread panicked")))
            }
            None => Ok(()),
        }
    }
}

impl io::Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unflushed += n as u64;
        if self.unflushed >= FLUSH_EVERY {
            self.unflushed = 0;
            if let Some((tick, _)) = &self.flusher {
                // If the last flush is still running, skip this one: it catches up.
                let _ = tick.try_send(());
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if let Some((tick, thread)) = self.flusher.take() {
            drop(tick);
            let _ = thread.join();
        }
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        self.file = None;
        if self.path.as_os_str().is_empty() {
            return; // committed: the file lives on under its final name
        }
        let path = std::mem::take(&mut self.path);
        // Unlinking a large file can take a while: never on an async worker. A temp
        // file that can't be removed now is removed at the next start-up.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || fs::remove_file(path));
            }
            Err(_) => {
                let _ = fs::remove_file(path);
            }
        }
    }
}

/// An item whose ciphertext and encrypted metadata are whole and fsynced in `tmp/`,
/// waiting for [`Store::commit`].
pub struct SealedItem {
    /// What it is.
    pub kind: ItemKind,
    /// The item's ciphertext.
    pub blob: TempBlob,
    /// Ciphertext bytes of `blob`.
    pub size: u64,
    /// The encrypted metadata record.
    pub meta: TempBlob,
    /// Ciphertext bytes of `meta`.
    pub meta_size: u64,
}

/// What the database keeps of a source's keys: nothing that opens anything without
/// the source's code.
pub struct SourceKeyRecord {
    /// `HKDF(Argon2id(code, instance secret))`, the lookup label.
    pub lookup_id: [u8; 32],
    /// The Argon2 parameters used, as [`crate::code::KdfParams::id`].
    pub kdf: String,
    /// The source's `age1…` recipient, for replies.
    pub recipient: String,
    /// The source's identity, age-encrypted to its code key.
    pub wrapped_key: Vec<u8>,
}

/// A code rotation waiting for the source's confirmation.
pub struct PendingRotation {
    /// The new code, sealed to the source's own recipient.
    pub sealed_code: Vec<u8>,
    /// The new code's lookup id.
    pub lookup_id: [u8; 32],
}

/// A source a code opened.
pub struct FoundSource {
    /// Its id.
    pub id: String,
    /// Its identity, wrapped under the key of the code that matched.
    pub wrapped_key: Vec<u8>,
    /// The code matched a pending rotation (the new code), not the current one.
    pub pending: bool,
}

/// Whose items these are.
pub enum Owner {
    /// A first submission: the commit creates the source with these keys.
    NewSource(SourceKeyRecord),
    /// A source that exists (a follow-up).
    Source(String),
}

/// One item in an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportItem {
    /// Its position in the export order (the cursor after it).
    pub position: i64,
    /// Random id.
    pub id: String,
    /// The source's id.
    pub source_id: String,
    /// `message` or `file`.
    pub kind: String,
    /// Order within the source, from 1.
    pub seq: i64,
    /// UTC day stored.
    pub day: String,
    /// Ciphertext bytes.
    pub size: u64,
    /// Metadata ciphertext bytes.
    pub meta_size: u64,
}

/// A source in an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSource {
    /// Random id.
    pub id: String,
    /// Journalist-facing label.
    pub label: String,
    /// `age1…` recipient for replies.
    pub recipient: String,
}

/// What an export holds. While it lives, its items can be read even if a journalist
/// deletes them meanwhile (their blobs are removed when the last export ends).
pub struct Export {
    /// Items, oldest first.
    pub items: Vec<ExportItem>,
    /// Their sources.
    pub sources: Vec<ExportSource>,
    /// The cursor that asks for what comes after these.
    pub next_cursor: i64,
    store: Arc<Store>,
}

/// Which blob of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemBlob {
    /// The item's ciphertext.
    Content,
    /// Its encrypted metadata record.
    Meta,
}

impl Export {
    /// Opens a blob of one of this export's items for reading, without touching its
    /// access time.
    pub fn open(&self, item_id: &str, which: ItemBlob) -> io::Result<File> {
        let exports = self.store.exports.lock().unwrap_or_else(|p| p.into_inner());
        let index = match which {
            ItemBlob::Content => 0,
            ItemBlob::Meta => 1,
        };
        // Looked up and opened under the lock that deletion moves blobs under.
        let path = match exports.parked.get(item_id) {
            Some(parked) => parked[index]
                .clone()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?,
            None => {
                let (item, meta) = self.store.item_paths(item_id);
                [item, meta][index].clone()
            }
        };
        open_for_reading(&path)
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let mut exports = self.store.exports.lock().unwrap_or_else(|p| p.into_inner());
        let mut done = Vec::new();
        for item in &self.items {
            if let Some(count) = exports.streaming.get_mut(&item.id) {
                *count -= 1;
                if *count == 0 {
                    exports.streaming.remove(&item.id);
                    if let Some(parked) = exports.parked.remove(&item.id) {
                        done.extend(parked.into_iter().flatten());
                    }
                }
            }
        }
        drop(exports);
        for path in done {
            // A file left here is in tmp/, which start-up empties.
            let _ = fs::remove_file(path);
        }
    }
}

/// Items exports are streaming, and blobs of those deleted meanwhile.
#[derive(Default)]
struct Exports {
    /// Item id → how many running exports hold it.
    streaming: HashMap<String, usize>,
    /// Item id → its (content, metadata) blobs, moved into `tmp/` by a deletion.
    parked: HashMap<String, [Option<PathBuf>; 2]>,
}

/// A reply as the inbox lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyRecord {
    /// Random id.
    pub id: String,
    /// UTC day it was stored.
    pub day: String,
}

/// The data directory, open.
pub struct Store {
    dir: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
    db: Mutex<Connection>,
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
    pub fn create(dir: &Path) -> Result<Store, StoreError> {
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
        let lock = lock(dir, Lock::Exclusive)?;
        let secret = load_or_create_secret(&dir.join(INSTANCE_SECRET))?;
        Self::assemble(dir, secret, lock)
    }

    /// Opens an existing data directory for serving: takes the exclusive lock (a second
    /// server on the same directory is refused), removes leftover temp files,
    /// reconciles rows with blobs, then holds a shared lock so admin commands can run
    /// beside it. A directory `init` did not make is refused rather than created: it
    /// may be a volume that failed to mount.
    pub fn open(dir: &Path) -> Result<(Store, Reconciled), StoreError> {
        require_initialised(dir)?;
        let lock = lock(dir, Lock::Exclusive)?;
        probe_writable(&dir.join(TMP))?;
        let secret = load_secret(&dir.join(INSTANCE_SECRET))?;
        let store = Self::assemble(dir, secret, lock)?;
        let reconciled = store.reconcile()?;
        rustix::fs::flock(
            &store.lock,
            rustix::fs::FlockOperation::NonBlockingLockShared,
        )
        .map_err(|e| StoreError::Io {
            action: "downgrade the data directory lock",
            path: dir.join(LOCK),
            source: e.into(),
        })?;
        Ok((store, reconciled))
    }

    /// Opens an existing data directory beside a running server (admin commands): a
    /// shared lock, no clean-up.
    pub fn open_shared(dir: &Path) -> Result<Store, StoreError> {
        require_initialised(dir)?;
        let lock = lock(dir, Lock::Shared)?;
        let secret = load_secret(&dir.join(INSTANCE_SECRET))?;
        Self::assemble(dir, secret, lock)
    }

    fn assemble(dir: &Path, secret: InstanceSecret, lock: File) -> Result<Store, StoreError> {
        let db = open_database(&dir.join(DATABASE))?;
        Ok(Store {
            dir: dir.to_owned(),
            blobs: dir.join(BLOBS),
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
    fn scrub(&self, db: &Connection) {
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

    /// The instance secret.
    pub fn instance_secret(&self) -> &InstanceSecret {
        &self.secret
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (it rolls
        // back), so a poisoned lock is still safe to use.
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes and inodes free for unprivileged users on the data directory's
    /// filesystem.
    pub fn free_space(&self) -> Result<FreeSpace, StoreError> {
        let stat = rustix::fs::statvfs(&self.dir).map_err(|e| StoreError::Io {
            action: "read free space",
            path: self.dir.clone(),
            source: e.into(),
        })?;
        Ok(FreeSpace {
            bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
            inodes: stat.f_favail,
        })
    }

    /// Refuses with [`StoreError::NoRoom`] unless a reply still leaves
    /// [`RESERVED_INODES`] inodes and [`RESERVED_BYTES`] bytes free: uploads stop well
    /// before that (`limits.min_free_*`), so replies, the WAL and a restart keep working.
    fn check_room_for_reply(&self, size: u64) -> Result<(), StoreError> {
        let free = self.free_space()?;
        if free.inodes < RESERVED_INODES || free.bytes < RESERVED_BYTES.saturating_add(size) {
            return Err(StoreError::NoRoom);
        }
        Ok(())
    }

    /// A new, empty temp file (0600) under a random name in `tmp/`.
    pub fn temp_blob(&self) -> Result<TempBlob, StoreError> {
        let path = self.tmp.join(format!("{}.tmp", random::hex_id(ID_BYTES)));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error("create a temp file", &path))?;
        Ok(TempBlob {
            path,
            file: Some(file),
        })
    }

    /// Makes sealed items permanent, all or none: renames them into `blobs/`, fsyncs the
    /// directory, then records them (and, for [`Owner::NewSource`], the new source) in
    /// one transaction. Returns the source id.
    pub fn commit(&self, owner: Owner, items: Vec<SealedItem>) -> Result<String, StoreError> {
        let mut placed: Vec<PathBuf> = Vec::with_capacity(items.len() * 2);
        let result = self.place_and_record(owner, items, &mut placed);
        if result.is_err() {
            for path in &placed {
                let _ = fs::remove_file(path);
            }
        }
        result
    }

    fn place_and_record(
        &self,
        owner: Owner,
        items: Vec<SealedItem>,
        placed: &mut Vec<PathBuf>,
    ) -> Result<String, StoreError> {
        let mut rows = Vec::with_capacity(items.len());
        for mut item in items {
            let id = random::hex_id(ID_BYTES);
            for (blob, suffix) in [(&mut item.blob, ITEM_SUFFIX), (&mut item.meta, META_SUFFIX)] {
                let target = self.blobs.join(format!("{id}{suffix}"));
                fs::rename(&blob.path, &target)
                    .map_err(io_error("move a blob into place", &target))?;
                placed.push(target.clone());
                // The TempBlob now names the placed file: it must survive its drop.
                blob.path = PathBuf::new();
            }
            rows.push((id, item.kind, item.size, item.meta_size));
        }
        sync_dir(&self.blobs)?;

        let day = time::day(SystemTime::now());
        let mut db = self.db();
        // IMMEDIATE: this transaction reads before it writes, and a deferred one would
        // fail at once (not wait) if another process committed in between.
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let source_id = match owner {
            Owner::NewSource(keys) => {
                let id = random::hex_id(ID_BYTES);
                let label = unused_label(&tx)?;
                tx.execute(
                    "INSERT INTO sources (id, day, label, lookup_id, kdf, recipient, wrapped_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        id,
                        day,
                        label,
                        &keys.lookup_id[..],
                        keys.kdf,
                        keys.recipient,
                        keys.wrapped_key
                    ],
                )?;
                id
            }
            Owner::Source(id) => {
                let exists: Option<i64> = tx
                    .query_row("SELECT 1 FROM sources WHERE id = ?1", [&id], |r| r.get(0))
                    .optional()?;
                if exists.is_none() {
                    return Err(StoreError::UnknownSource);
                }
                id
            }
        };
        for (id, kind, size, meta_size) in rows {
            // Numbers only grow: a deleted newest item never hands its number on.
            let seq: i64 = tx.query_row(
                "UPDATE sources SET next_seq = next_seq + 1 WHERE id = ?1 RETURNING next_seq",
                [&source_id],
                |r| r.get(0),
            )?;
            let position: i64 = tx.query_row(
                "UPDATE counters SET value = value + 1 WHERE name = 'export' RETURNING value",
                [],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO items (id, source_id, kind, seq, day, size, meta_size, position)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    source_id,
                    kind.as_str(),
                    seq,
                    day,
                    size as i64,
                    meta_size as i64,
                    position
                ],
            )?;
        }
        tx.commit()?;
        Ok(source_id)
    }

    /// Records a journalist account: its token's account id and secret hash.
    pub fn add_journalist(
        &self,
        name: &str,
        account_id: &str,
        secret_hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        let day = time::day(SystemTime::now());
        let result = self.db().execute(
            "INSERT INTO journalists (name, account_id, token_hash, day) VALUES (?1, ?2, ?3, ?4)",
            params![name, account_id, &secret_hash[..], day],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::JournalistExists)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account with this id: its name and secret hash.
    pub fn journalist(&self, account_id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT name, token_hash FROM journalists WHERE account_id = ?1",
                [account_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Every account: (name, day created).
    pub fn journalists(&self) -> Result<Vec<(String, String)>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT name, day FROM journalists ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Removes an account; its token stops working at once. Returns whether it existed.
    pub fn remove_journalist(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .db()
            .execute("DELETE FROM journalists WHERE name = ?1", [name])?
            > 0)
    }

    /// Items after `cursor` (an export position, 0 for all), at most `limit`, oldest
    /// first, with the sources they belong to. Until the returned [`Export`] is
    /// dropped, its items stay readable through [`Export::open`] even if they are
    /// deleted meanwhile.
    pub fn export(self: &Arc<Self>, cursor: i64, limit: usize) -> Result<Export, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT position, id, source_id, kind, seq, day, size, meta_size FROM items
             WHERE position > ?1 AND deleting = 0 ORDER BY position LIMIT ?2",
        )?;
        let items = stmt
            .query_map(params![cursor, limit as i64], |r| {
                Ok(ExportItem {
                    position: r.get(0)?,
                    id: r.get(1)?,
                    source_id: r.get(2)?,
                    kind: r.get(3)?,
                    seq: r.get(4)?,
                    day: r.get(5)?,
                    size: r.get::<_, i64>(6)? as u64,
                    meta_size: r.get::<_, i64>(7)? as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut sources = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stmt = db.prepare("SELECT id, label, recipient FROM sources WHERE id = ?1")?;
        for item in &items {
            if seen.insert(item.source_id.clone()) {
                if let Some(source) = stmt
                    .query_row([&item.source_id], |r| {
                        Ok(ExportSource {
                            id: r.get(0)?,
                            label: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                            recipient: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        })
                    })
                    .optional()?
                {
                    sources.push(source);
                }
            }
        }
        // Registered while the database lock is held, so no deletion slips in between
        // listing an item and protecting it.
        let mut exports = self.exports.lock().unwrap_or_else(|p| p.into_inner());
        for item in &items {
            *exports.streaming.entry(item.id.clone()).or_default() += 1;
        }
        drop(exports);
        let next_cursor = items.last().map_or(cursor, |i| i.position);
        Ok(Export {
            items,
            sources,
            next_cursor,
            store: Arc::clone(self),
        })
    }

    /// The paths of an item's ciphertext and metadata blobs.
    pub fn item_paths(&self, item_id: &str) -> (PathBuf, PathBuf) {
        (
            self.blobs.join(format!("{item_id}{ITEM_SUFFIX}")),
            self.blobs.join(format!("{item_id}{META_SUFFIX}")),
        )
    }

    /// Whether a source exists.
    pub fn source_exists(&self, source_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .db()
            .query_row("SELECT 1 FROM sources WHERE id = ?1", [source_id], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    /// Deletes an item: marks its row, removes its blobs, then the row, and scrubs the
    /// WAL. A crash in between leaves a marked row without blobs, which start-up
    /// removes. Returns whether it existed.
    pub fn delete_item(&self, item_id: &str) -> Result<bool, StoreError> {
        // The database lock is held throughout, so no commit or export in this process
        // interleaves with the deletion.
        let db = self.db();
        let marked = db.execute("UPDATE items SET deleting = 1 WHERE id = ?1", [item_id])?;
        if marked == 0 {
            return Ok(false);
        }
        self.remove_item_blobs(&[item_id.to_owned()], &[])?;
        db.execute("DELETE FROM items WHERE id = ?1", [item_id])?;
        self.scrub(&db);
        Ok(true)
    }

    /// Deletes a source with its items, replies, label and keys. The database lock is
    /// held throughout: a follow-up or reply committed meanwhile either came before
    /// (and is deleted with the rest) or finds the source gone (and removes its files).
    pub fn delete_source(&self, source_id: &str) -> Result<bool, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row("SELECT 1 FROM sources WHERE id = ?1", [source_id], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if !exists {
            return Ok(false);
        }
        tx.execute(
            "UPDATE items SET deleting = 1 WHERE source_id = ?1",
            [source_id],
        )?;
        tx.execute(
            "UPDATE replies SET deleting = 1 WHERE source_id = ?1",
            [source_id],
        )?;
        let items: Vec<String> = tx
            .prepare("SELECT id FROM items WHERE source_id = ?1")?
            .query_map([source_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let replies: Vec<String> = tx
            .prepare("SELECT id FROM replies WHERE source_id = ?1")?
            .query_map([source_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        tx.commit()?;
        self.remove_item_blobs(&items, &replies)?;
        // ON DELETE CASCADE takes the item and reply rows with it.
        db.execute("DELETE FROM sources WHERE id = ?1", [source_id])?;
        self.scrub(&db);
        Ok(true)
    }

    /// Removes the blobs of these items and replies. An item that an export is
    /// streaming is moved to `tmp/` instead and removed when that export ends, so a
    /// bundle is never cut short (start-up empties `tmp/` after a crash).
    fn remove_item_blobs(&self, items: &[String], replies: &[String]) -> Result<(), StoreError> {
        let mut exports = self.exports.lock().unwrap_or_else(|p| p.into_inner());
        for id in items {
            let (item, meta) = self.item_paths(id);
            if exports.streaming.contains_key(id) {
                let mut moved = [None, None];
                for (slot, path) in moved.iter_mut().zip([item, meta]) {
                    let parked = self.tmp.join(format!("{}.tmp", random::hex_id(ID_BYTES)));
                    match fs::rename(&path, &parked) {
                        Ok(()) => *slot = Some(parked),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_error("move a deleted blob aside", &path)(e)),
                    }
                }
                exports.parked.insert(id.clone(), moved);
            } else {
                unlink(&item)?;
                unlink(&meta)?;
            }
        }
        drop(exports);
        for id in replies {
            unlink(&self.reply_path(id))?;
        }
        sync_dir(&self.blobs)
    }

    fn reply_path(&self, reply_id: &str) -> PathBuf {
        self.blobs.join(format!("{reply_id}{REPLY_SUFFIX}"))
    }

    /// The source a code opens: the one whose current lookup id (derived with `kdf`)
    /// is `lookup_id`, or whose pending rotation has it.
    pub fn find_source(
        &self,
        kdf: &str,
        lookup_id: &[u8; 32],
    ) -> Result<Option<FoundSource>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, wrapped_key, 0 FROM sources WHERE lookup_id = ?1 AND kdf = ?2
                 UNION ALL
                 SELECT id, pending_wrapped_key, 1 FROM sources
                 WHERE pending_lookup_id = ?1 AND pending_kdf = ?2",
                params![&lookup_id[..], kdf],
                |r| {
                    Ok(FoundSource {
                        id: r.get(0)?,
                        wrapped_key: r.get(1)?,
                        pending: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// The distinct Argon2 parameter sets of current and pending codes.
    pub fn kdfs_in_use(&self) -> Result<Vec<String>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT kdf FROM sources WHERE kdf IS NOT NULL
             UNION SELECT pending_kdf FROM sources WHERE pending_kdf IS NOT NULL",
        )?;
        let kdfs = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(kdfs)
    }

    /// Starts a code rotation: stores the new code's keys beside the current ones, and
    /// the new code itself sealed to the source's own recipient (so a login with the
    /// old code can show it again). Both codes open the source until
    /// [`Store::finish_rotation`]. Only if the source still has `current_lookup_id` and
    /// no rotation pending: of two logins racing, one wins. Returns whether it did.
    pub fn begin_rotation(
        &self,
        source_id: &str,
        current_lookup_id: &[u8; 32],
        keys: &SourceKeyRecord,
        sealed_code: &[u8],
    ) -> Result<bool, StoreError> {
        let changed = self.db().execute(
            "UPDATE sources SET pending_lookup_id = ?1, pending_kdf = ?2,
                 pending_wrapped_key = ?3, pending_code = ?4
             WHERE id = ?5 AND lookup_id = ?6 AND pending_lookup_id IS NULL",
            params![
                &keys.lookup_id[..],
                keys.kdf,
                keys.wrapped_key,
                sealed_code,
                source_id,
                &current_lookup_id[..]
            ],
        )?;
        Ok(changed > 0)
    }

    /// The pending rotation of a source, if any.
    pub fn pending_rotation(&self, source_id: &str) -> Result<Option<PendingRotation>, StoreError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .db()
            .query_row(
                "SELECT pending_code, pending_lookup_id FROM sources
                 WHERE id = ?1 AND pending_lookup_id IS NOT NULL AND pending_code IS NOT NULL",
                [source_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(sealed_code, lookup)| {
            Some(PendingRotation {
                sealed_code,
                lookup_id: lookup.try_into().ok()?,
            })
        }))
    }

    /// Ends a rotation once the source has seen its new code: the new keys replace the
    /// old ones, and nothing of the old code's lookup id or wrapping is left in any
    /// file (see `Store::scrub`). Only if `pending_lookup_id` is still the pending one.
    /// Returns whether it changed anything.
    pub fn finish_rotation(
        &self,
        source_id: &str,
        pending_lookup_id: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let db = self.db();
        let changed = db.execute(
            "UPDATE sources SET lookup_id = pending_lookup_id, kdf = pending_kdf,
                 wrapped_key = pending_wrapped_key, pending_lookup_id = NULL,
                 pending_kdf = NULL, pending_wrapped_key = NULL, pending_code = NULL
             WHERE id = ?1 AND pending_lookup_id = ?2",
            params![source_id, &pending_lookup_id[..]],
        )?;
        if changed > 0 {
            self.scrub(&db);
        }
        Ok(changed > 0)
    }

    /// Stores a reply's ciphertext for a source, atomically. Returns its id.
    pub fn add_reply(&self, source_id: &str, ciphertext: &[u8]) -> Result<String, StoreError> {
        self.check_room_for_reply(ciphertext.len() as u64)?;
        let mut blob = self.temp_blob()?;
        io::Write::write_all(blob.file(), ciphertext)
            .map_err(io_error("write a reply", &self.tmp))?;
        let size = blob.seal()?;
        let id = random::hex_id(ID_BYTES);
        let target = self.blobs.join(format!("{id}{REPLY_SUFFIX}"));
        fs::rename(&blob.path, &target).map_err(io_error("move a blob into place", &target))?;
        blob.path = PathBuf::new();
        let recorded = sync_dir(&self.blobs).and_then(|()| {
            let db = self.db();
            let exists: Option<i64> = db
                .query_row("SELECT 1 FROM sources WHERE id = ?1", [source_id], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::UnknownSource);
            }
            db.execute(
                "INSERT INTO replies (id, source_id, day, size) VALUES (?1, ?2, ?3, ?4)",
                params![id, source_id, time::day(SystemTime::now()), size as i64],
            )?;
            Ok(())
        });
        if let Err(err) = recorded {
            let _ = fs::remove_file(&target);
            return Err(err);
        }
        Ok(id)
    }

    /// A source's replies, newest first.
    pub fn replies(&self, source_id: &str) -> Result<Vec<ReplyRecord>, StoreError> {
        let db = self.db();
        let mut stmt =
            db.prepare("SELECT id, day FROM replies WHERE source_id = ?1 ORDER BY rowid DESC")?;
        let replies = stmt
            .query_map([source_id], |r| {
                Ok(ReplyRecord {
                    id: r.get(0)?,
                    day: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(replies)
    }

    /// A reply's ciphertext, if it is at most `max` bytes. Read without touching the
    /// file's access time, which would record when the source logged in.
    pub fn read_reply(&self, reply_id: &str, max: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.reply_path(reply_id);
        let file = open_for_reading(&path).map_err(io_error("open a reply", &path))?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, max), &mut bytes)
            .map_err(io_error("read a reply", &path))?;
        Ok(bytes)
    }

    /// Deletes a reply if it belongs to `source_id`: marks the row, removes the blob,
    /// removes the row, scrubs the WAL. Returns whether it did.
    pub fn delete_reply(&self, source_id: &str, reply_id: &str) -> Result<bool, StoreError> {
        let db = self.db();
        let marked = db.execute(
            "UPDATE replies SET deleting = 1 WHERE id = ?1 AND source_id = ?2",
            params![reply_id, source_id],
        )?;
        if marked == 0 {
            return Ok(false);
        }
        self.remove_item_blobs(&[], &[reply_id.to_owned()])?;
        db.execute("DELETE FROM replies WHERE id = ?1", [reply_id])?;
        self.scrub(&db);
        Ok(true)
    }

    /// Removes leftover temp files, item rows without blobs and blobs without rows.
    fn reconcile(&self) -> Result<Reconciled, StoreError> {
        let mut report = Reconciled::default();
        for entry in fs::read_dir(&self.tmp).map_err(io_error("list tmp/", &self.tmp))? {
            let entry = entry.map_err(io_error("list tmp/", &self.tmp))?;
            fs::remove_file(entry.path()).map_err(io_error("remove a temp file", &self.tmp))?;
            report.temp_files_removed += 1;
        }

        let mut on_disk = std::collections::HashSet::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_error("list blobs/", &self.blobs))? {
            let entry = entry.map_err(io_error("list blobs/", &self.blobs))?;
            if let Some(name) = entry.file_name().to_str() {
                on_disk.insert(name.to_owned());
            }
        }

        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Deletions a crash cut short are finished first: their blobs go, not to orphans/.
        let unfinished: Vec<String> = tx
            .prepare("SELECT id FROM items WHERE deleting = 1")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let unfinished_replies: Vec<String> = tx
            .prepare("SELECT id FROM replies WHERE deleting = 1")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &unfinished {
            let (item, meta) = self.item_paths(id);
            unlink(&item)?;
            unlink(&meta)?;
            on_disk.remove(&format!("{id}{ITEM_SUFFIX}"));
            on_disk.remove(&format!("{id}{META_SUFFIX}"));
            tx.execute("DELETE FROM items WHERE id = ?1", [id])?;
        }
        for id in &unfinished_replies {
            unlink(&self.reply_path(id))?;
            on_disk.remove(&format!("{id}{REPLY_SUFFIX}"));
            tx.execute("DELETE FROM replies WHERE id = ?1", [id])?;
        }
        let mut dropped = !unfinished.is_empty() || !unfinished_replies.is_empty();
        let ids: Vec<String> = tx
            .prepare("SELECT id FROM items")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let whole = ids
            .iter()
            .filter(|id| on_disk.contains(&format!("{id}{ITEM_SUFFIX}")))
            .count();
        if !ids.is_empty() && whole == 0 {
            // A crash drops at most the rows of deletions in progress, never all of
            // them: an empty blobs/ is an unmounted or lost volume, not a crash.
            return Err(StoreError::BlobsMissing {
                dir: self.blobs.clone(),
                rows: ids.len(),
            });
        }
        for id in ids {
            let item = format!("{id}{ITEM_SUFFIX}");
            let meta = format!("{id}{META_SUFFIX}");
            let has_item = on_disk.contains(&item);
            let has_meta = on_disk.contains(&meta);
            if has_item && has_meta {
                on_disk.remove(&item);
                on_disk.remove(&meta);
            } else {
                // The row goes; whichever blob is left is kept in orphans/ below.
                tx.execute("DELETE FROM items WHERE id = ?1", [&id])?;
                report.rows_without_blobs += 1;
                dropped = true;
            }
        }
        let replies: Vec<String> = tx
            .prepare("SELECT id FROM replies")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in replies {
            if !on_disk.remove(&format!("{id}{REPLY_SUFFIX}")) {
                tx.execute("DELETE FROM replies WHERE id = ?1", [&id])?;
                report.rows_without_blobs += 1;
                dropped = true;
            }
        }
        tx.commit()?;
        if dropped {
            self.scrub(&db);
        }
        drop(db);

        if !on_disk.is_empty() {
            let orphans = self.dir.join(ORPHANS);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&orphans)
                .map_err(io_error("create orphans/", &orphans))?;
            for name in on_disk {
                let path = self.blobs.join(&name);
                fs::rename(&path, orphans.join(&name))
                    .map_err(io_error("move an orphaned blob to orphans/", &path))?;
                if name.ends_with(META_SUFFIX) || !name.ends_with(ITEM_SUFFIX) {
                    continue; // count items and replies, not metadata records or strays
                }
                report.blobs_without_rows += 1;
            }
        }
        Ok(report)
    }
}

/// A random label no source has yet.
fn unused_label(tx: &rusqlite::Transaction<'_>) -> Result<String, StoreError> {
    let taken = |label: &str| -> Result<bool, StoreError> {
        Ok(tx
            .query_row(
                "SELECT 1 FROM sources WHERE label = ?1",
                [label],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    };
    for _ in 0..32 {
        let label = label::random();
        if !taken(&label)? {
            return Ok(label);
        }
    }
    // 65,536 two-word labels run out eventually: add a random suffix.
    loop {
        let label = format!("{}-{}", label::random(), random::hex_id(2));
        if !taken(&label)? {
            return Ok(label);
        }
    }
}

fn probe_writable(dir: &Path) -> Result<(), StoreError> {
    let probe = dir.join(format!(".probe-{}", random::hex_id(8)));
    File::create(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(io_error("write in the data directory", dir))
}

#[derive(Clone, Copy)]
enum Lock {
    Exclusive,
    Shared,
}

fn lock(dir: &Path, kind: Lock) -> Result<File, StoreError> {
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

fn require_initialised(dir: &Path) -> Result<(), StoreError> {
    for name in [INSTANCE_SECRET, DATABASE, BLOBS, TMP] {
        if !dir.join(name).exists() {
            return Err(StoreError::NotInitialised(dir.to_owned()));
        }
    }
    Ok(())
}

/// Reads the instance secret, making sure it is private (a backup restored with
/// looser permissions would let local users guess codes offline).
fn load_secret(path: &Path) -> Result<InstanceSecret, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let bytes = Zeroizing::new(fs::read(path).map_err(io_error("read the instance secret", path))?);
    if bytes.len() != 32 {
        return Err(StoreError::Io {
            action: "read the instance secret (it must be exactly 32 bytes)",
            path: path.to_owned(),
            source: io::ErrorKind::InvalidData.into(),
        });
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(io_error("restrict the instance secret's permissions", path))?;
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&bytes);
    Ok(InstanceSecret(secret))
}

fn load_or_create_secret(path: &Path) -> Result<InstanceSecret, StoreError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    match fs::symlink_metadata(path) {
        Ok(_) => return load_secret(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            random::fill(&mut secret[..]);
            let tmp = path.with_extension("tmp");
            let write = || -> io::Result<()> {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                io::Write::write_all(&mut file, &secret[..])?;
                file.sync_all()?;
                fs::rename(&tmp, path)?;
                File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
            };
            write().map_err(io_error("create the instance secret", path))?;
        }
        Err(e) => return Err(io_error("read the instance secret", path)(e)),
    }
    Ok(InstanceSecret(secret))
}

fn open_database(path: &Path) -> Result<Connection, StoreError> {
    let db = Connection::open(path)?;
    // WAL for concurrent readers; FULL so a committed item survives power loss;
    // secure_delete so deleted rows are overwritten, not left in free pages;
    // journal_size_limit 0 so the WAL shrinks to nothing whenever it is reset rather
    // than keeping old page images past its end (see `scrub`).
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA journal_size_limit = 0;",
    )?;
    db.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = usize::try_from(version)
        .ok()
        .filter(|&v| v <= MIGRATIONS.len())
        .ok_or(StoreError::UnknownSchema(version))?;
    for migration in &MIGRATIONS[applied..] {
        db.execute_batch(&format!("BEGIN IMMEDIATE; {migration} COMMIT;"))?;
    }
    // The database files hold metadata only, but keep them private all the same.
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600))
                .map_err(io_error("restrict the database's permissions", &file))?;
        }
    }
    Ok(db)
}

/// Checkpoints the WAL into the database and truncates it to zero bytes. `Ok(false)`
/// when a reader in another process (an admin command) held it back past the busy
/// timeout.
fn checkpoint_and_truncate(db: &Connection) -> Result<bool, StoreError> {
    let busy: i64 = db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}

/// Removes a file; one that is already gone is fine.
fn unlink(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove a blob", path)(e)),
    }
}

/// fsyncs a directory, so renames and unlinks in it survive a power loss.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync a directory", dir))
}

/// Opens a blob for reading with `O_NOATIME`, so reading it (an inbox, an export)
/// leaves no access time on disk that dates a login or a pull. The kernel allows the
/// flag only to the file's owner (agedrop made it) or root; otherwise the file is
/// opened plainly, and docs/admin.md asks for a `noatime` mount as well.
pub(crate) fn open_for_reading(path: &Path) -> io::Result<File> {
    let noatime = rustix::fs::OFlags::NOATIME.bits() as i32;
    match OpenOptions::new()
        .read(true)
        .custom_flags(noatime)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => {
            File::open(path)
        }
        other => other,
    }
}

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

use std::fmt;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use rusqlite::{params, Connection, OptionalExtension};
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

/// Version 3: tokens name their account (per-account rate limits). Tokens made before
/// cannot be matched to an account and are dropped: make new ones.
const SCHEMA_V3: &str = "
DELETE FROM journalists;
ALTER TABLE journalists ADD COLUMN account_id TEXT;
CREATE UNIQUE INDEX journalists_account ON journalists (account_id);
PRAGMA user_version = 3;
";

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

/// What an export holds.
#[derive(Clone, Debug)]
pub struct Export {
    /// Items, oldest first.
    pub items: Vec<ExportItem>,
    /// Their sources.
    pub sources: Vec<ExportSource>,
    /// The cursor that asks for what comes after these.
    pub next_cursor: i64,
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
            secret,
            lock,
        })
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

    /// Bytes free for unprivileged users on the data directory's filesystem.
    pub fn free_bytes(&self) -> Result<u64, StoreError> {
        let stat = rustix::fs::statvfs(&self.dir).map_err(|e| StoreError::Io {
            action: "read free space",
            path: self.dir.clone(),
            source: e.into(),
        })?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
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
        File::open(&self.blobs)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("fsync the blob directory", &self.blobs))?;

        let day = time::day(SystemTime::now());
        let mut db = self.db();
        let tx = db.transaction()?;
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
        let mut seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM items WHERE source_id = ?1",
            [&source_id],
            |r| r.get(0),
        )?;
        for (id, kind, size, meta_size) in rows {
            seq += 1;
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
    /// first, with the sources they belong to.
    pub fn export(&self, cursor: i64, limit: usize) -> Result<Export, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT position, id, source_id, kind, seq, day, size, meta_size FROM items
             WHERE position > ?1 ORDER BY position LIMIT ?2",
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
        let next_cursor = items.last().map_or(cursor, |i| i.position);
        Ok(Export {
            items,
            sources,
            next_cursor,
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

    /// Deletes an item: blobs first, then the row (a crash in between leaves a row
    /// without blobs, which start-up removes). Returns whether it existed.
    pub fn delete_item(&self, item_id: &str) -> Result<bool, StoreError> {
        // The database lock is held throughout, so no commit or export in this process
        // interleaves with the deletion.
        let db = self.db();
        let exists = db
            .query_row("SELECT 1 FROM items WHERE id = ?1", [item_id], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Ok(false);
        }
        let (item, meta) = self.item_paths(item_id);
        self.unlink_all(&[item, meta])?;
        db.execute("DELETE FROM items WHERE id = ?1", [item_id])?;
        Ok(true)
    }

    /// Deletes a source with its items, replies, label and keys. The database lock is
    /// held throughout: a follow-up or reply committed meanwhile either came before
    /// (and is deleted with the rest) or finds the source gone (and removes its files).
    pub fn delete_source(&self, source_id: &str) -> Result<bool, StoreError> {
        let db = self.db();
        let exists = db
            .query_row("SELECT 1 FROM sources WHERE id = ?1", [source_id], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if !exists {
            return Ok(false);
        }
        let items: Vec<String> = db
            .prepare("SELECT id FROM items WHERE source_id = ?1")?
            .query_map([source_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let replies: Vec<String> = db
            .prepare("SELECT id FROM replies WHERE source_id = ?1")?
            .query_map([source_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut paths = Vec::new();
        for id in &items {
            let (item, meta) = self.item_paths(id);
            paths.push(item);
            paths.push(meta);
        }
        for id in &replies {
            paths.push(self.blobs.join(format!("{id}{REPLY_SUFFIX}")));
        }
        self.unlink_all(&paths)?;
        // ON DELETE CASCADE takes the item and reply rows with it.
        db.execute("DELETE FROM sources WHERE id = ?1", [source_id])?;
        Ok(true)
    }

    fn unlink_all(&self, paths: &[PathBuf]) -> Result<(), StoreError> {
        for path in paths {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("remove a blob", path)(e)),
            }
        }
        File::open(&self.blobs)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("fsync the blob directory", &self.blobs))
    }

    /// The source whose lookup id (derived with `kdf`) is `lookup_id`: its id and
    /// wrapped identity.
    pub fn find_source(
        &self,
        kdf: &str,
        lookup_id: &[u8; 32],
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, wrapped_key FROM sources WHERE lookup_id = ?1 AND kdf = ?2",
                params![&lookup_id[..], kdf],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The distinct Argon2 parameter sets sources were created with.
    pub fn kdfs_in_use(&self) -> Result<Vec<String>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT DISTINCT kdf FROM sources WHERE kdf IS NOT NULL")?;
        let kdfs = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(kdfs)
    }

    /// Replaces a source's lookup id and wrapped identity (a rotated code). The
    /// recipient stays: replies already sent remain readable.
    ///
    /// Only if the source still has `old_lookup_id`: of two logins racing to rotate,
    /// one wins and the other changes nothing. Returns whether it changed the keys.
    pub fn rekey_source(
        &self,
        source_id: &str,
        old_lookup_id: &[u8; 32],
        keys: &SourceKeyRecord,
    ) -> Result<bool, StoreError> {
        let changed = self.db().execute(
            "UPDATE sources SET lookup_id = ?1, kdf = ?2, wrapped_key = ?3
             WHERE id = ?4 AND lookup_id = ?5",
            params![
                &keys.lookup_id[..],
                keys.kdf,
                keys.wrapped_key,
                source_id,
                &old_lookup_id[..]
            ],
        )?;
        Ok(changed > 0)
    }

    /// Stores a reply's ciphertext for a source, atomically. Returns its id.
    pub fn add_reply(&self, source_id: &str, ciphertext: &[u8]) -> Result<String, StoreError> {
        let mut blob = self.temp_blob()?;
        io::Write::write_all(blob.file(), ciphertext)
            .map_err(io_error("write a reply", &self.tmp))?;
        let size = blob.seal()?;
        let id = random::hex_id(ID_BYTES);
        let target = self.blobs.join(format!("{id}{REPLY_SUFFIX}"));
        fs::rename(&blob.path, &target).map_err(io_error("move a blob into place", &target))?;
        blob.path = PathBuf::new();
        let recorded = File::open(&self.blobs)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("fsync the blob directory", &self.blobs))
            .and_then(|()| {
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

    /// A reply's ciphertext, if it is at most `max` bytes.
    pub fn read_reply(&self, reply_id: &str, max: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.blobs.join(format!("{reply_id}{REPLY_SUFFIX}"));
        let file = File::open(&path).map_err(io_error("open a reply", &path))?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, max), &mut bytes)
            .map_err(io_error("read a reply", &path))?;
        Ok(bytes)
    }

    /// Deletes a reply if it belongs to `source_id`. Returns whether it did.
    pub fn delete_reply(&self, source_id: &str, reply_id: &str) -> Result<bool, StoreError> {
        let deleted = self.db().execute(
            "DELETE FROM replies WHERE id = ?1 AND source_id = ?2",
            params![reply_id, source_id],
        )?;
        if deleted == 0 {
            return Ok(false);
        }
        let path = self.blobs.join(format!("{reply_id}{REPLY_SUFFIX}"));
        fs::remove_file(&path).map_err(io_error("remove a reply", &path))?;
        File::open(&self.blobs)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("fsync the blob directory", &self.blobs))?;
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
        let tx = db.transaction()?;
        let ids: Vec<String> = tx
            .prepare("SELECT id FROM items")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
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
            }
        }
        tx.commit()?;
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
    // secure_delete so deleted rows are overwritten, not left in free pages.
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;",
    )?;
    db.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        0 => db.execute_batch(&format!(
            "BEGIN; {SCHEMA} {SCHEMA_V2} {SCHEMA_V3} {SCHEMA_V4} COMMIT;"
        ))?,
        1 => db.execute_batch(&format!(
            "BEGIN; {SCHEMA_V2} {SCHEMA_V3} {SCHEMA_V4} COMMIT;"
        ))?,
        2 => db.execute_batch(&format!("BEGIN; {SCHEMA_V3} {SCHEMA_V4} COMMIT;"))?,
        3 => db.execute_batch(&format!("BEGIN; {SCHEMA_V4} COMMIT;"))?,
        4 => {}
        other => return Err(StoreError::UnknownSchema(other)),
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

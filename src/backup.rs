//! `agedrop backup` and `agedrop restore` (docs/admin.md, "Backups").
//!
//! A backup is a tar archive written by [`TarWriter`], in this order:
//!
//! ```text
//! blobs/ID.age, blobs/ID.meta.age, blobs/ID.reply.age   every blob the snapshot's rows name
//! agedrop.sqlite                                        the database snapshot
//! instance-secret                                       the 32 bytes that salt the codes
//! backup-manifest.json                                  BackupManifest: last, once all is known
//! ```
//!
//! The database is copied first, as of one moment, with SQLite's online backup while
//! the server runs (under the data directory's shared lock, as the admin commands
//! take it); then the blobs its rows name are streamed into the archive. A blob
//! deleted between the snapshot and its copy (a journalist's or a source's delete) is
//! skipped and its row dropped from the snapshot, since the row is gone on the server
//! as well: the archive never names a blob it lacks, and the manifest counts the
//! skipped ones. That is why the manifest comes last.
//!
//! A restore builds the data directory in a temp sibling and renames it into place only
//! once every file is written, fsynced and checked against the manifest and the
//! database: all or nothing. What a stolen backup reveals: SECURITY.md, "Backups".

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bundle::{self, BundleError, TarReader, TarWriter, MAX_ENTRY_BYTES};
use crate::config::{Database, Storage};
use crate::store::{self, is_blob_name, Layout, Store, StoreError, SCHEMA_VERSION};
use crate::{fsync, random};

/// The manifest's `format`.
pub const FORMAT: &str = "agedrop-backup";
/// The manifest's `version`: this agedrop writes and reads this one.
pub const VERSION: u32 = 1;
const MANIFEST: &str = "backup-manifest.json";
const DATABASE: &str = "agedrop.sqlite";
const SECRET: &str = "instance-secret";
const BLOB_DIR: &str = "blobs/";
const SECRET_BYTES: u64 = 32;
/// A manifest lists every blob (about 60 bytes each): this bounds it at about a
/// million blobs, so a hostile archive cannot make a restore allocate without limit.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// What a backup holds, written last in the archive.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The database's schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// Bytes of the database snapshot.
    pub database_size: u64,
    /// Every blob in the archive, in archive order.
    pub blobs: Vec<BackupBlob>,
    /// Blobs the snapshot named that were deleted before they could be copied; their
    /// rows were dropped from the snapshot.
    pub skipped: u64,
}

/// One blob of a backup.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackupBlob {
    /// Its file name in `blobs/`.
    pub name: String,
    /// Its bytes.
    pub size: u64,
}

/// What a finished backup holds (counts only).
#[derive(Debug)]
pub struct BackupSummary {
    /// Blobs in the archive.
    pub blobs: usize,
    /// Blobs deleted on the server before they could be copied.
    pub skipped: u64,
}

/// Why a backup or a restore failed. Nothing half-written is left behind.
#[derive(Debug)]
pub enum BackupError {
    /// The data directory (source of a backup, or one a restore made) failed.
    Store(StoreError),
    /// A file could not be read or written.
    Io {
        /// What we were doing.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The backup's output file exists already.
    OutputExists(PathBuf),
    /// A restore's target exists and is not empty.
    NotEmpty(PathBuf),
    /// A restore's target is a data directory a process holds (a running server).
    InUse(PathBuf),
    /// The archive is not a whole backup this agedrop can restore, and why.
    Refused(String),
    /// The blobs are in an object store, which a backup of the data directory would
    /// leave out.
    BlobsInObjectStore,
    /// The metadata is in PostgreSQL, which a backup of the data directory would leave
    /// out.
    DatabaseInPostgres,
}

impl fmt::Display for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupError::Store(err) => write!(f, "{err}"),
            BackupError::Io {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} ({}): {source}", path.display())?;
                if store::is_disk_full(source) {
                    write!(f, "; the disk is full, nothing was kept")?;
                }
                Ok(())
            }
            BackupError::OutputExists(path) => {
                write!(f, "{} exists already; not overwriting it", path.display())
            }
            BackupError::NotEmpty(path) => write!(
                f,
                "{} exists and is not empty; restore into a new or empty directory",
                path.display()
            ),
            BackupError::InUse(path) => write!(
                f,
                "{} is in use by a running agedrop; stop it, and restore into a new directory",
                path.display()
            ),
            BackupError::Refused(why) => write!(f, "not a whole agedrop backup: {why}"),
            BackupError::BlobsInObjectStore => write!(
                f,
                "the blobs are in an object store ([storage] kind = \"s3\"), which `agedrop backup` \
                 does not copy: back up the bucket with the object store's own tools, together with \
                 the data directory (docs/admin.md, \"Scaling out\")"
            ),
            BackupError::DatabaseInPostgres => write!(
                f,
                "the metadata is in PostgreSQL ([database] url), which `agedrop backup` does not \
                 copy: back up the database with pg_dump, together with the data directory \
                 (docs/admin.md, \"Scaling out\")"
            ),
        }
    }
}

impl std::error::Error for BackupError {}

impl From<StoreError> for BackupError {
    fn from(err: StoreError) -> Self {
        BackupError::Store(err)
    }
}

impl From<BundleError> for BackupError {
    fn from(err: BundleError) -> Self {
        match err {
            BundleError::Refused(why) => BackupError::Refused(why),
            BundleError::Io(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                BackupError::Refused("the archive was cut short".into())
            }
            BundleError::Io(source) => BackupError::Io {
                action: "read the backup",
                path: PathBuf::new(),
                source,
            },
        }
    }
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn refused(why: impl Into<String>) -> BackupError {
    BackupError::Refused(why.into())
}

/// Removes a file or a directory tree on drop unless [`Leftover::keep`] was called:
/// an error anywhere leaves nothing behind.
struct Leftover(Option<PathBuf>);

impl Leftover {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Leftover {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

/// Backs up the data directory `data_dir` (served or not) into a new file `out`, or
/// to stdout if `out` is `-`. The file is written as `OUT.partial` (0600), fsynced and
/// renamed to `out` without replacing anything.
pub fn backup(
    data_dir: &Path,
    storage: &Storage,
    database: &Database,
    out: &Path,
) -> Result<BackupSummary, BackupError> {
    if *storage != Storage::Local {
        // Without its blobs an archive would restore items that are not there.
        return Err(BackupError::BlobsInObjectStore);
    }
    if let Database::Postgres(_) = database {
        // The archive's database is a snapshot of agedrop.sqlite.
        return Err(BackupError::DatabaseInPostgres);
    }
    let store = Store::open_shared(data_dir, storage, database)?;
    if out == Path::new("-") {
        let mut stdout = BufWriter::with_capacity(1024 * 1024, io::stdout().lock());
        let summary = write_archive(&store, &mut stdout)?;
        stdout
            .flush()
            .map_err(io_error("write the backup", Path::new("stdout")))?;
        return Ok(summary);
    }
    if out.symlink_metadata().is_ok() {
        return Err(BackupError::OutputExists(out.to_owned()));
    }
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => BackupError::OutputExists(partial.clone()),
            _ => io_error("create the backup", &partial)(e),
        })?;
    let leftover = Leftover(Some(partial.clone()));
    let mut writer = BufWriter::with_capacity(1024 * 1024, file);
    let summary = write_archive(&store, &mut writer)?;
    let file = writer
        .into_inner()
        .map_err(|e| io_error("write the backup", &partial)(e.into_error()))?;
    file.sync_all()
        .map_err(io_error("fsync the backup", &partial))?;
    drop(file);
    rename_no_replace(&partial, out)?;
    leftover.keep();
    fsync::sync_parent(out).map_err(io_error("fsync the backup's directory", out))?;
    Ok(summary)
}

/// Renames `from` to `to`, refusing if `to` exists (atomically where the filesystem
/// supports it).
fn rename_no_replace(from: &Path, to: &Path) -> Result<(), BackupError> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(BackupError::OutputExists(to.to_owned())),
        // A filesystem without RENAME_NOREPLACE (some FUSE or FAT drives): check, then
        // rename; only another process racing us for the same name could slip in.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            if to.symlink_metadata().is_ok() {
                return Err(BackupError::OutputExists(to.to_owned()));
            }
            fs::rename(from, to).map_err(io_error("rename the backup into place", to))
        }
        Err(e) => Err(io_error("rename the backup into place", to)(e.into())),
    }
}

fn write_archive(store: &Store, out: &mut impl Write) -> Result<BackupSummary, BackupError> {
    let mut tar = TarWriter::new(out);
    // The snapshot is a temp file in the data directory's tmp/ (removed on drop, and
    // by the server's next start-up if we are killed): metadata only, kept private.
    let temp = store.temp_blob()?;
    let snapshot_path = temp.path().to_owned();
    let snapshot = store.snapshot(&snapshot_path)?;
    let schema_version = snapshot.schema_version()?;

    let written = |e| io_error("write the backup", Path::new(""))(e);
    let blob_dir = store.dir().join("blobs");
    let mut blobs = Vec::new();
    let mut gone = Vec::new();
    let listed = snapshot.blobs()?;
    // An item's blobs come together: both are opened before either is copied, and an
    // open file stays readable after a delete unlinks it, so an item goes into the
    // archive whole or not at all.
    for group in listed.chunk_by(|a, b| a.owner == b.owner) {
        let mut files = Vec::with_capacity(group.len());
        for blob in group {
            match store.open_blob(&blob.name) {
                Ok(file) => files.push((blob, file)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => return Err(io_error("read a blob", &blob_dir)(e)),
            }
        }
        if files.len() < group.len() {
            gone.push(group[0].owner.clone());
            continue;
        }
        for (blob, mut file) in files {
            let size = file.len().map_err(io_error("stat a blob", &blob_dir))?;
            if size > MAX_ENTRY_BYTES {
                return Err(refused("a blob is larger than an archive entry may be"));
            }
            let name = format!("{BLOB_DIR}{}", blob.name);
            tar.entry_from(&name, size, &mut file).map_err(written)?;
            blobs.push(BackupBlob {
                name: blob.name.clone(),
                size,
            });
        }
    }
    snapshot.drop_rows(&gone)?;
    snapshot.close()?;

    let mut database =
        File::open(&snapshot_path).map_err(io_error("read the snapshot", &snapshot_path))?;
    let database_size = database
        .metadata()
        .map_err(io_error("read the snapshot", &snapshot_path))?
        .len();
    if database_size > MAX_ENTRY_BYTES {
        return Err(refused(
            "the database is larger than an archive entry may be",
        ));
    }
    tar.entry_from(DATABASE, database_size, &mut database)
        .map_err(written)?;
    drop(database);
    drop(temp);
    tar.entry(SECRET, store.instance_secret().expose())
        .map_err(written)?;

    let manifest = BackupManifest {
        format: FORMAT.into(),
        version: VERSION,
        schema_version,
        database_size,
        blobs,
        skipped: gone.len() as u64,
    };
    let json = serde_json::to_vec(&manifest).expect("a manifest of strings and numbers serialises");
    tar.entry(MANIFEST, &json).map_err(written)?;
    tar.finish().map_err(written)?;
    Ok(BackupSummary {
        blobs: manifest.blobs.len(),
        skipped: manifest.skipped,
    })
}

/// Rebuilds a data directory at `dir` from the backup `archive`: refused if `dir` is
/// in use or not empty; written into a temp sibling, checked, then renamed into place.
pub fn restore(archive: &Path, dir: &Path) -> Result<BackupSummary, BackupError> {
    refuse_target(dir)?;
    let file = File::open(archive).map_err(io_error("open the backup", archive))?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .ok_or_else(|| refused("the target directory needs a name"))?;
    let temp = parent.join(format!(
        ".{}.restore-{}",
        name.to_string_lossy(),
        random::hex_id(8)
    ));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&temp)
        .map_err(io_error("create the temp directory", &temp))?;
    let leftover = Leftover(Some(temp.clone()));
    let summary = unpack(BufReader::with_capacity(1024 * 1024, file), &temp)?;
    // The store itself opens what was written (the secret's length, the database and
    // its migrations to this agedrop's schema) and adds tmp/ and the lock, with the
    // modes `init` gives.
    drop(Store::create(&temp, &Storage::Local, &Database::Sqlite)?);
    for synced in [temp.join("blobs"), temp.clone()] {
        fsync::sync_dir(&synced).map_err(io_error("fsync the restored directory", &synced))?;
    }
    // rename(2) replaces an empty directory and refuses a non-empty one, so a target
    // filled meanwhile is never overwritten.
    fs::rename(&temp, dir).map_err(|e| match e.raw_os_error() {
        Some(code) if code == rustix::io::Errno::NOTEMPTY.raw_os_error() => {
            BackupError::NotEmpty(dir.to_owned())
        }
        _ => io_error("move the restored directory into place", dir)(e),
    })?;
    leftover.keep();
    fsync::sync_dir(parent).map_err(io_error("fsync the restored directory's parent", parent))?;
    Ok(summary)
}

/// A restore's target must be new or an empty directory, and not held by a server.
fn refuse_target(dir: &Path) -> Result<(), BackupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error("read the target directory", dir)(e)),
    };
    if store::Inspection::new(dir, &Database::Sqlite).in_use()? {
        return Err(BackupError::InUse(dir.to_owned()));
    }
    if entries.count() > 0 {
        return Err(BackupError::NotEmpty(dir.to_owned()));
    }
    Ok(())
}

/// Writes the archive's files into `temp` and checks them against its manifest and
/// database.
fn unpack(input: impl Read, temp: &Path) -> Result<BackupSummary, BackupError> {
    let layout = Layout::new(temp);
    let blob_dir = layout.blobs();
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&blob_dir)
        .map_err(io_error("create blobs/", &blob_dir))?;
    let mut tar = TarReader::new(input);
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    let mut database = None;
    let mut secret = false;
    let mut manifest = None;
    while let Some(entry) = tar.next_entry()? {
        if manifest.is_some() {
            return Err(refused("an entry follows the manifest"));
        }
        let target = match entry.name.as_str() {
            MANIFEST => {
                let json = bundle::read_small(&mut tar, &entry, MAX_MANIFEST_BYTES)?;
                let parsed: BackupManifest = serde_json::from_slice(&json)
                    .map_err(|_| refused("the manifest is not a backup manifest"))?;
                manifest = Some(parsed);
                continue;
            }
            DATABASE if database.is_none() => {
                database = Some(entry.size);
                layout.database()
            }
            SECRET if !secret => {
                if entry.size != SECRET_BYTES {
                    return Err(refused("the instance secret is not 32 bytes"));
                }
                secret = true;
                layout.instance_secret()
            }
            name => match name.strip_prefix(BLOB_DIR) {
                Some(blob) if is_blob_name(blob) && !found.contains_key(blob) => {
                    found.insert(blob.to_owned(), entry.size);
                    blob_dir.join(blob)
                }
                _ => return Err(refused("an entry that is not part of a backup, or twice")),
            },
        };
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .map_err(io_error("write a restored file", &target))?;
        io::copy(&mut tar.entry(), &mut out).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => refused("the archive was cut short"),
            _ => io_error("write a restored file", &target)(e),
        })?;
        out.sync_all()
            .map_err(io_error("fsync a restored file", &target))?;
    }
    tar.finish()?;

    let manifest = manifest.ok_or_else(|| refused("it has no manifest (cut short?)"))?;
    if manifest.format != FORMAT {
        return Err(refused("the manifest's format is not agedrop-backup"));
    }
    if manifest.version != VERSION {
        return Err(refused(format!(
            "backup version {} is not {VERSION}, the one this agedrop reads",
            manifest.version
        )));
    }
    if manifest.schema_version > SCHEMA_VERSION {
        return Err(StoreError::UnknownSchema(manifest.schema_version).into());
    }
    if database != Some(manifest.database_size) {
        return Err(refused(
            "the database is missing or not the size the manifest says",
        ));
    }
    if !secret {
        return Err(refused("the instance secret is missing"));
    }
    let listed: BTreeMap<String, u64> = manifest
        .blobs
        .iter()
        .map(|b| (b.name.clone(), b.size))
        .collect();
    if listed.len() != manifest.blobs.len() {
        return Err(refused("the manifest lists a blob twice"));
    }
    if listed != found {
        return Err(refused(
            "its blobs are not the ones (or not the sizes) the manifest lists",
        ));
    }
    // The database must name no blob the archive lacks.
    for blob in layout.referenced_blobs()? {
        if !found.contains_key(&blob.name) {
            return Err(refused("the database names a blob the archive lacks"));
        }
    }
    Ok(BackupSummary {
        blobs: found.len(),
        skipped: manifest.skipped,
    })
}

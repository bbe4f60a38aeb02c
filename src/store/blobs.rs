//! The blobs and the files being written: temp files in `tmp/` ([`TempBlob`]), new
//! blobs on their way to their place ([`NewBlob`], [`BlobWriter`]), sealed items
//! waiting for their commit ([`SealedItem`]), and [`Blobs`], where the blobs live — the
//! data directory's `blobs/` or an S3 bucket (`bucket`) — and how they are placed, read,
//! removed, listed and made durable there.

use std::collections::HashSet;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::bucket::{self, Bucket};
use super::direct::{Direct, ALIGN, DIRECT_AFTER};
use super::{io_error, ItemKind, Store, StoreError};
use super::{ID_BYTES, ITEM_SUFFIX, META_SUFFIX, REPLY_SUFFIX};
use crate::{fsync, random, time};

/// A file being written in `tmp/`. Removed on drop unless it was committed, so an
/// aborted upload leaves nothing behind.
pub struct TempBlob {
    path: PathBuf,
    file: Option<File>,
}

impl TempBlob {
    /// Where the file is, for errors (empty once it is placed into `blobs/`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for writing.
    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("a TempBlob's file is open until it is sealed")
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

    /// Renames the sealed file to `target` in `blobs/`. The caller fsyncs the
    /// directory (once for all it places) and removes the file if its commit fails.
    pub(super) fn place(&mut self, target: &Path) -> Result<(), StoreError> {
        fs::rename(&self.path, target).map_err(io_error("move a blob into place", target))?;
        // The TempBlob now names the placed file: it must survive its drop.
        self.path = PathBuf::new();
        Ok(())
    }
}

/// Bytes written between background flushes of a large blob.
pub const FLUSH_EVERY: u64 = 64 * 1024 * 1024;

/// A blob being written to where it will live: a temp file in `tmp/` that is renamed
/// into `blobs/` when placed, or an upload into the bucket under its final name (S3
/// has no rename; the object counts only once a commit records it). Removed on drop
/// unless placed, so an aborted upload leaves nothing behind.
pub struct NewBlob {
    name: String,
    inner: New,
}

enum New {
    Local(TempBlob),
    Bucket(bucket::Upload),
}

impl NewBlob {
    /// Where it is being written, for errors: the temp file, or the bucket.
    pub fn location(&self) -> &Path {
        match &self.inner {
            New::Local(temp) => temp.path(),
            New::Bucket(upload) => upload.place(),
        }
    }

    /// A writer for large blobs. On a local disk it has the kernel write back every
    /// [`FLUSH_EVERY`] bytes on a helper thread while writing goes on, so the fsync in
    /// [`NewBlob::seal`] finds little left to do, and past a few MiB it may write the
    /// rest past the page cache on a thread of its own (src/store/direct.rs). You
    /// **MUST** call [`BlobWriter::finish`]: it writes what is staged and reports a
    /// failed background flush, which the final fsync would not see again (an fsync
    /// error is reported once per open file).
    pub fn writer(&mut self) -> BlobWriter<'_> {
        match &mut self.inner {
            New::Local(temp) => {
                let file = temp.file();
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
                BlobWriter(Writer::File {
                    file,
                    written: 0,
                    unflushed: 0,
                    flusher,
                    direct: DirectWrites::NotYet,
                })
            }
            New::Bucket(upload) => BlobWriter(Writer::Upload(upload)),
        }
    }

    /// Finishes the blob: on a local disk coarse times (so the filesystem does not keep
    /// the exact upload time), fsync and close; in a bucket the last part. Returns its
    /// size. Once this returns, the blob's bytes are durable where they will live.
    pub fn seal(&mut self) -> Result<u64, StoreError> {
        match &mut self.inner {
            New::Local(temp) => temp.seal(),
            New::Bucket(upload) => upload.seal().map_err(|source| StoreError::Bucket {
                action: "store a blob in the bucket",
                place: upload.place().to_owned(),
                source,
            }),
        }
    }

    /// Puts the sealed blob in its place under its name: a rename into `blobs/` (the
    /// caller syncs the directory once for all it places) or, in a bucket, nothing
    /// more than keeping it. The caller removes it again if its commit fails.
    pub(super) fn place(&mut self, blobs: &Blobs) -> Result<(), StoreError> {
        match (&mut self.inner, blobs) {
            (New::Local(temp), Blobs::Local { dir }) => temp.place(&dir.join(&self.name)),
            (New::Bucket(upload), Blobs::Bucket(_)) => {
                upload.keep();
                Ok(())
            }
            _ => unreachable!("a new blob is made by the blobs it is placed in"),
        }
    }

    /// Its name in `blobs/`.
    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

impl Write for NewBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            New::Local(temp) => temp.file().write(buf),
            New::Bucket(upload) => upload.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// See [`NewBlob::writer`].
pub struct BlobWriter<'a>(Writer<'a>);

enum Writer<'a> {
    File {
        file: &'a mut File,
        /// Bytes written through the page cache.
        written: u64,
        unflushed: u64,
        flusher: Option<(
            std::sync::mpsc::SyncSender<()>,
            std::thread::JoinHandle<io::Result<()>>,
        )>,
        direct: DirectWrites,
    },
    Upload(&'a mut bucket::Upload),
}

/// Whether a local blob writes past the page cache (src/store/direct.rs).
enum DirectWrites {
    /// Not yet past [`DIRECT_AFTER`] and at a block boundary.
    NotYet,
    /// Tried once and refused (no free slot, or a filesystem without `O_DIRECT`).
    Refused,
    On(Direct),
}

impl BlobWriter<'_> {
    /// Writes what is staged for direct writes and waits for the background flushes;
    /// fails if any of that failed.
    pub fn finish(mut self) -> io::Result<()> {
        match &mut self.0 {
            Writer::File {
                file,
                flusher,
                direct,
                ..
            } => {
                let staged = match std::mem::replace(direct, DirectWrites::Refused) {
                    DirectWrites::On(direct) => direct.finish(file),
                    DirectWrites::NotYet | DirectWrites::Refused => Ok(()),
                };
                let flushed = match flusher.take() {
                    Some((tick, thread)) => {
                        drop(tick);
                        thread
                            .join()
                            .unwrap_or_else(|_| Err(io::Error::other("the flush thread panicked")))
                    }
                    None => Ok(()),
                };
                staged.and(flushed)
            }
            Writer::Upload(_) => Ok(()),
        }
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Writer::File {
                file,
                written,
                unflushed,
                flusher,
                direct,
            } => {
                // Past DIRECT_AFTER, stop at the next block so the switch is aligned.
                let mut take = buf.len();
                if matches!(direct, DirectWrites::NotYet) && *written >= DIRECT_AFTER {
                    match *written % ALIGN as u64 {
                        0 => {
                            *direct =
                                Direct::start(file).map_or(DirectWrites::Refused, DirectWrites::On);
                        }
                        into_block => take = take.min(ALIGN - into_block as usize),
                    }
                }
                if let DirectWrites::On(direct) = direct {
                    return direct.write(buf);
                }
                let n = file.write(&buf[..take])?;
                *written += n as u64;
                *unflushed += n as u64;
                if *unflushed >= FLUSH_EVERY {
                    *unflushed = 0;
                    if let Some((tick, _)) = flusher {
                        // If the last flush is still running, skip this one: it catches up.
                        let _ = tick.try_send(());
                    }
                }
                Ok(n)
            }
            Writer::Upload(upload) => upload.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Writer::File { file, .. } => file.flush(),
            Writer::Upload(_) => Ok(()),
        }
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if let Writer::File { flusher, .. } = &mut self.0 {
            if let Some((tick, thread)) = flusher.take() {
                drop(tick);
                let _ = thread.join();
            }
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

/// An item whose ciphertext and encrypted metadata are whole and durable (a local
/// disk's `tmp/`, or the bucket), waiting for [`Store::commit`].
pub struct SealedItem {
    /// The item's id, which its blobs were made for ([`Store::new_item_id`]).
    pub id: String,
    /// What it is.
    pub kind: ItemKind,
    /// The item's ciphertext.
    pub blob: NewBlob,
    /// Ciphertext bytes of `blob`.
    pub size: u64,
    /// The encrypted metadata record.
    pub meta: NewBlob,
    /// Ciphertext bytes of `meta`.
    pub meta_size: u64,
}

/// Which blob of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemBlob {
    /// The item's ciphertext.
    Content,
    /// Its encrypted metadata record.
    Meta,
}

impl Store {
    /// A new, empty temp file (0600) under a random name in `tmp/`, on this machine
    /// whatever the storage (a backup's database snapshot is one).
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

    /// A new random item id, for [`Store::new_item_blob`].
    pub fn new_item_id(&self) -> String {
        random::hex_id(ID_BYTES)
    }

    /// A new, empty blob of item `item_id`.
    pub fn new_item_blob(&self, item_id: &str, which: ItemBlob) -> Result<NewBlob, StoreError> {
        let (content, meta) = item_names(item_id);
        self.new_blob(match which {
            ItemBlob::Content => content,
            ItemBlob::Meta => meta,
        })
    }

    pub(super) fn new_blob(&self, name: String) -> Result<NewBlob, StoreError> {
        let inner = match &self.blobs {
            Blobs::Local { .. } => New::Local(self.temp_blob()?),
            Blobs::Bucket(bucket) => New::Bucket(bucket.upload(&name)),
        };
        Ok(NewBlob { name, inner })
    }
}

/// The names of an item's ciphertext and metadata blobs.
pub(super) fn item_names(item_id: &str) -> (String, String) {
    (
        format!("{item_id}{ITEM_SUFFIX}"),
        format!("{item_id}{META_SUFFIX}"),
    )
}

/// The name of a reply's blob.
pub(super) fn reply_name(reply_id: &str) -> String {
    format!("{reply_id}{REPLY_SUFFIX}")
}

/// Every blob of these items (ciphertext and metadata) and replies.
pub(super) fn blob_names<'a>(
    items: impl IntoIterator<Item = &'a str> + 'a,
    replies: impl IntoIterator<Item = &'a str> + 'a,
) -> impl Iterator<Item = String> + 'a {
    items
        .into_iter()
        .flat_map(|id| {
            let (item, meta) = item_names(id);
            [item, meta]
        })
        .chain(replies.into_iter().map(reply_name))
}

/// Where the blobs live.
pub(super) enum Blobs {
    /// `DATA_DIR/blobs`, written through `DATA_DIR/tmp`.
    Local {
        /// `DATA_DIR/blobs`.
        dir: PathBuf,
    },
    /// An S3 bucket (`[storage] kind = "s3"`).
    Bucket(Bucket),
}

/// A blob a deletion could not remove because an export is streaming it.
pub(super) enum Parked {
    /// Moved to this file in `tmp/` (still open for the export; start-up empties tmp/).
    Moved(PathBuf),
    /// Left in the bucket under a `deleting/` marker; deleted when the last export
    /// holding it ends, or by the next start-up.
    Deferred,
}

impl Blobs {
    /// Where they are: the directory, or the bucket's endpoint and name.
    pub(super) fn place(&self) -> &Path {
        match self {
            Blobs::Local { dir } => dir,
            Blobs::Bucket(bucket) => bucket.place(),
        }
    }

    /// Opens blob `name` for reading (from `parked` instead if a deletion moved it
    /// there). `NotFound` if it is gone.
    pub(super) fn open(&self, name: &str, parked: Option<&Parked>) -> io::Result<BlobReader> {
        match (self, parked) {
            (Blobs::Local { .. }, Some(Parked::Moved(path))) => {
                open_for_reading(path).map(BlobReader::File)
            }
            (Blobs::Local { dir }, _) => open_for_reading(&dir.join(name)).map(BlobReader::File),
            (Blobs::Bucket(bucket), _) => bucket.open(name).map(BlobReader::Bucket),
        }
    }

    /// Removes blob `name`; one that is already gone is fine.
    pub(super) fn remove(&self, name: &str) -> Result<(), StoreError> {
        match self {
            Blobs::Local { dir } => unlink(&dir.join(name)),
            Blobs::Bucket(bucket) => bucket.remove(name),
        }
    }

    /// Takes blob `name` out of `blobs/` without destroying it, for an export that is
    /// streaming it; `None` if it is gone already.
    pub(super) fn park(&self, name: &str, tmp: &Path) -> Result<Option<Parked>, StoreError> {
        match self {
            Blobs::Local { dir } => {
                let path = dir.join(name);
                let parked = tmp.join(format!("{}.tmp", random::hex_id(ID_BYTES)));
                match fs::rename(&path, &parked) {
                    Ok(()) => Ok(Some(Parked::Moved(parked))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_error("move a deleted blob aside", &path)(e)),
                }
            }
            Blobs::Bucket(bucket) => {
                bucket.defer_removal(name)?;
                Ok(Some(Parked::Deferred))
            }
        }
    }

    /// Removes a parked blob once no export holds it. Best effort: a file left in
    /// `tmp/` goes at the next start-up.
    pub(super) fn remove_parked(&self, name: &str, parked: Parked) {
        match parked {
            Parked::Moved(path) => {
                let _ = fs::remove_file(path);
            }
            Parked::Deferred => {
                if let Blobs::Bucket(bucket) = self {
                    bucket.finish_removal_in_background(name);
                }
            }
        }
    }

    /// Makes placements and removals durable: fsyncs `blobs/` (a bucket's are, once
    /// its requests return).
    pub(super) fn sync(&self) -> Result<(), StoreError> {
        match self {
            Blobs::Local { dir } => sync_dir(dir),
            Blobs::Bucket(_) => Ok(()),
        }
    }

    /// The names of every blob, and of those that another node may be about to commit
    /// (in a shared bucket: written less than `bucket::ORPHAN_AFTER` ago; on a local
    /// disk, which one server holds, none).
    pub(super) fn list(&self) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
        match self {
            Blobs::Local { dir } => {
                let mut names = HashSet::new();
                for entry in fs::read_dir(dir).map_err(io_error("list blobs/", dir))? {
                    let entry = entry.map_err(io_error("list blobs/", dir))?;
                    if let Some(name) = entry.file_name().to_str() {
                        names.insert(name.to_owned());
                    }
                }
                Ok((names, HashSet::new()))
            }
            Blobs::Bucket(bucket) => bucket.list(),
        }
    }

    /// Moves blob `name`, which no row refers to, to `orphans/` (`DATA_DIR/orphans`,
    /// or the bucket's `orphans/`): ciphertext is never deleted on a guess.
    pub(super) fn orphan(&self, name: &str, orphans: &Path) -> Result<(), StoreError> {
        match self {
            Blobs::Local { dir } => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(orphans)
                    .map_err(io_error("create orphans/", orphans))?;
                let path = dir.join(name);
                fs::rename(&path, orphans.join(name))
                    .map_err(io_error("move an orphaned blob to orphans/", &path))
            }
            Blobs::Bucket(bucket) => bucket.orphan(name),
        }
    }

    /// What a crash left in the bucket: uploads it gives up, and removals an export
    /// had deferred, which it finishes. Returns how many uploads it aborted.
    pub(super) fn clean_up_bucket(&self) -> Result<usize, StoreError> {
        match self {
            Blobs::Local { .. } => Ok(0),
            Blobs::Bucket(bucket) => {
                bucket.finish_deferred_removals()?;
                bucket.abort_unfinished()
            }
        }
    }
}

/// A blob open for reading.
pub enum BlobReader {
    /// From the data directory.
    File(File),
    /// From the bucket, as it arrives.
    Bucket(bucket::Reader),
}

impl BlobReader {
    /// The blob's size in bytes.
    pub fn len(&self) -> io::Result<u64> {
        match self {
            BlobReader::File(file) => Ok(file.metadata()?.len()),
            BlobReader::Bucket(reader) => Ok(reader.len()),
        }
    }

    /// Whether the blob is empty (none of ours is).
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BlobReader::File(file) => file.read(buf),
            BlobReader::Bucket(reader) => reader.read(buf),
        }
    }
}

/// Runs `place`, which places blobs and records each name in the list it is given;
/// if it fails, those blobs are removed again, so a commit that did not happen leaves
/// no blob behind.
pub(super) fn placing<T>(
    blobs: &Blobs,
    place: impl FnOnce(&mut Vec<String>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut placed = Vec::new();
    let result = place(&mut placed);
    if result.is_err() {
        for name in &placed {
            let _ = blobs.remove(name);
        }
    }
    result
}

/// Removes a file; one that is already gone is fine.
pub(super) fn unlink(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove a blob", path)(e)),
    }
}

/// [`fsync::sync_dir`], failing with the store's error.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fsync::sync_dir(dir).map_err(io_error("fsync a directory", dir))
}

/// Opens a file for reading with `O_NOATIME`, so reading a blob (an inbox, an export)
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

//! The files of the data directory: temp files being written in `tmp/` ([`TempBlob`],
//! [`BlobWriter`]), sealed items waiting for their commit ([`SealedItem`]), where an
//! item's or reply's blobs live in `blobs/`, and how blobs are read, removed and made
//! durable.

use std::fs::{self, File, FileTimes, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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

impl Store {
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

    /// The paths of an item's ciphertext and metadata blobs.
    pub fn item_paths(&self, item_id: &str) -> (PathBuf, PathBuf) {
        (
            self.blobs.join(format!("{item_id}{ITEM_SUFFIX}")),
            self.blobs.join(format!("{item_id}{META_SUFFIX}")),
        )
    }

    pub(super) fn reply_path(&self, reply_id: &str) -> PathBuf {
        self.blobs.join(format!("{reply_id}{REPLY_SUFFIX}"))
    }

    /// Every blob of these items (ciphertext and metadata) and replies.
    pub(super) fn blob_paths<'a>(
        &'a self,
        items: impl IntoIterator<Item = &'a str> + 'a,
        replies: impl IntoIterator<Item = &'a str> + 'a,
    ) -> impl Iterator<Item = PathBuf> + 'a {
        items
            .into_iter()
            .flat_map(|id| {
                let (item, meta) = self.item_paths(id);
                [item, meta]
            })
            .chain(replies.into_iter().map(|id| self.reply_path(id)))
    }
}

/// Runs `place`, which renames files into `blobs/` and records each in the list it is
/// given; if it fails, those files are removed again, so a commit that did not happen
/// leaves no blob behind.
pub(super) fn placing<T>(
    place: impl FnOnce(&mut Vec<PathBuf>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut placed = Vec::new();
    let result = place(&mut placed);
    if result.is_err() {
        for path in &placed {
            let _ = fs::remove_file(path);
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

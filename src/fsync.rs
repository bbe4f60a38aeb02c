//! Making a rename or an unlink durable: the file's own fsync does not cover its
//! directory entry, so the directory is fsynced too, or a power loss can undo the
//! change. The one helper for that in the crate.

use std::fs::File;
use std::io;
use std::path::Path;

/// fsyncs a directory, so renames and unlinks in it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// fsyncs the directory that holds `path` (the current directory for a bare name),
/// after `path` was renamed into place.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sync_dir(parent)
}

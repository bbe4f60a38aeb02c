//! Opening files without following symbolic links (`O_NOFOLLOW`): for the files the
//! journalist commands write beside the token and inside `open`'s output, where a link
//! planted at the name must be refused, not written through.

use std::io;
use std::path::Path;

/// `O_NOFOLLOW`, for `OpenOptionsExt::custom_flags`.
pub(crate) fn flag() -> i32 {
    i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).expect("O_NOFOLLOW fits in a C int")
}

/// Renames `from` to `to` unless something exists at `to` (then `AlreadyExists`): a
/// file, or a link planted there, that appeared after a check is never replaced. Uses
/// `RENAME_NOREPLACE`; where the filesystem lacks it, a hard link (which never
/// replaces either) and an unlink; where it has no hard links either (a FAT stick
/// carried to the offline machine), a check just before a plain rename.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(Errno::INVAL | Errno::NOSYS) => {}
        Err(err) => return Err(err.into()),
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => return std::fs::remove_file(from),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Err(err),
        Err(_) => {}
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    std::fs::rename(from, to)
}

/// True for the error an `O_NOFOLLOW` open gives on a symbolic link (`ELOOP`).
pub(crate) fn refused(err: &io::Error) -> bool {
    err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

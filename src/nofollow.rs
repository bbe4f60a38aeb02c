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
/// replaces either) and an unlink.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            std::fs::hard_link(from, to)?;
            std::fs::remove_file(from)
        }
        Err(err) => Err(err.into()),
    }
}

/// True for the error an `O_NOFOLLOW` open gives on a symbolic link (`ELOOP`).
pub(crate) fn refused(err: &io::Error) -> bool {
    err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

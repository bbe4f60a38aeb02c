//! Opening files without following symbolic links (`O_NOFOLLOW`): for the files the
//! journalist commands write beside the token and inside `open`'s output, where a link
//! planted at the name must be refused, not written through.

use std::io;

/// `O_NOFOLLOW`, for `OpenOptionsExt::custom_flags`.
pub(crate) fn flag() -> i32 {
    i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).expect("O_NOFOLLOW fits in a C int")
}

/// True for the error an `O_NOFOLLOW` open gives on a symbolic link (`ELOOP`).
pub(crate) fn refused(err: &io::Error) -> bool {
    err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

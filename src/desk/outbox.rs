//! The outbox: reply bundles the desk wrote, waiting to be carried to the online
//! machine and sent with `agedrop push --outbox`. A reply is encrypted to the source's
//! key as the archive first recorded it and to the newsroom keys of the identities
//! used for imports, never to anything a later bundle names (SECURITY.md, "The desk").

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::index;
use super::{io_error, Desk, DeskError, OUTBOX};
use crate::crypto::Recipients;
use crate::{offline, random};

/// How a reply bundle in the outbox is named: `ID.agedrop-reply`.
pub const OUTBOX_SUFFIX: &str = ".agedrop-reply";
/// Longest reply the desk writes (characters), as the source site shows messages.
pub const MAX_REPLY_CHARS: usize = 100_000;

impl Desk {
    /// Writes a reply to the source `source_id` into the outbox and records it.
    pub fn write_reply(&self, source_id: &str, text: &str) -> Result<(), DeskError> {
        let (source, newsroom) = {
            let db = self.db();
            let source = index::source(&db, source_id)?.ok_or(DeskError::UnknownSource)?;
            (source, index::newsroom(&db)?)
        };
        if newsroom.is_empty() {
            return Err(DeskError::NoNewsroomKeys);
        }
        let newsroom = Recipients::parse(&newsroom).map_err(|_| DeskError::NoNewsroomKeys)?;
        let name = format!("{}{OUTBOX_SUFFIX}", random::hex_id(16));
        let path = self.dir.join(OUTBOX).join(&name);
        let digest = offline::write_reply_bundle(
            &source.id,
            &source.recipient,
            text.as_bytes(),
            &newsroom,
            &path,
        )?;
        let recorded = index::add_outbox(
            &self.db(),
            &source.id,
            &name,
            &crate::time::rfc3339(SystemTime::now()),
            text,
            &digest,
        );
        if let Err(err) = recorded {
            let _ = fs::remove_file(&path);
            return Err(err);
        }
        Ok(())
    }
}

/// The reply bundles waiting in `dir` — a desk directory (its `outbox/`) or an outbox
/// carried on its own — oldest name first; and the directory they are in.
pub fn pending_replies(dir: &Path) -> Result<(PathBuf, Vec<PathBuf>), DeskError> {
    let outbox = if dir.join(OUTBOX).is_dir() && dir.join(super::DATABASE).exists() {
        dir.join(OUTBOX)
    } else {
        dir.to_owned()
    };
    let read = fs::read_dir(&outbox).map_err(io_error("read the outbox", &outbox))?;
    let mut pending = Vec::new();
    for entry in read {
        let entry = entry.map_err(io_error("read the outbox", &outbox))?;
        let name = entry.file_name();
        let is_reply = name.to_str().is_some_and(|n| n.ends_with(OUTBOX_SUFFIX));
        // Never a link: the file's type as the directory lists it.
        if is_reply && entry.file_type().is_ok_and(|t| t.is_file()) {
            pending.push(entry.path());
        }
    }
    pending.sort();
    Ok((outbox, pending))
}

/// Moves a delivered reply bundle into `outbox/sent/` (made, 0700, if missing), never
/// over anything.
pub fn mark_sent(outbox: &Path, reply: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let sent = outbox.join(super::SENT);
    match fs::DirBuilder::new().mode(0o700).create(&sent) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    let name = reply
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let target = sent.join(name);
    crate::nofollow::rename_noreplace(reply, &target)?;
    crate::fsync::sync_dir(outbox)?;
    Ok(target)
}

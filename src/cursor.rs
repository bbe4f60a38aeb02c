//! The export cursor: where a journalist's next `pull` continues. A manifest names it
//! (`next_cursor`), `pull` keeps it in a file beside the token and sends it back as
//! `?since=`. It is parsed into a number at every one of these steps and printed from
//! that number, never pasted: a string from a server or a file never reaches a request
//! line (SECURITY.md, "Network use of the commands").

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::{nofollow, random};

/// A position in the export order: a non-negative integer the server's counter can
/// hold (at most `i64::MAX`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor(u64);

impl Cursor {
    /// The beginning: everything still on the server.
    pub const START: Cursor = Cursor(0);

    /// Parses a cursor: 1 to 19 ASCII digits, at most `i64::MAX`. No sign, no spaces,
    /// nothing else.
    pub fn parse(text: &str) -> Option<Cursor> {
        if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u64 = text.parse().ok()?;
        (i64::try_from(value).is_ok()).then_some(Cursor(value))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why the cursor file could not be read or written.
#[derive(Debug)]
pub enum CursorFileError {
    /// The file holds something other than a cursor.
    NotACursor(PathBuf),
    /// The file is a symbolic link, which `pull` does not follow.
    Symlink(PathBuf),
    /// Reading failed.
    Read(PathBuf, io::Error),
    /// Writing the new cursor failed.
    Write(PathBuf, io::Error),
}

impl fmt::Display for CursorFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CursorFileError::NotACursor(path) => write!(
                f,
                "{} does not hold a cursor (a non-negative integer); remove it, or pull with --all",
                path.display()
            ),
            CursorFileError::Symlink(path) => write!(
                f,
                "{} is a symbolic link; pull does not follow links for its cursor file",
                path.display()
            ),
            CursorFileError::Read(path, err) => write!(f, "cannot read {}: {err}", path.display()),
            CursorFileError::Write(path, err) => {
                write!(f, "cannot write {}: {err}", path.display())
            }
        }
    }
}

impl std::error::Error for CursorFileError {}

/// Longest cursor file we read: a cursor and a newline, with room to spare.
const MAX_FILE_BYTES: u64 = 64;

/// The file where `pull` keeps its cursor (mode 0600, like the token beside it).
pub struct CursorFile {
    path: PathBuf,
}

impl CursorFile {
    /// The cursor file at `path`.
    pub fn new(path: PathBuf) -> Self {
        CursorFile { path }
    }

    /// The saved cursor; [`Cursor::START`] if there is no file yet. A symbolic link or
    /// anything but a cursor is refused, never guessed around.
    pub fn read(&self) -> Result<Cursor, CursorFileError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nofollow::flag())
            .open(&self.path);
        let mut file = match file {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Cursor::START),
            Err(err) if nofollow::refused(&err) => {
                return Err(CursorFileError::Symlink(self.path.clone()))
            }
            Err(err) => return Err(CursorFileError::Read(self.path.clone(), err)),
        };
        let mut text = String::new();
        (&mut file)
            .take(MAX_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(|err| match err.kind() {
                io::ErrorKind::InvalidData => CursorFileError::NotACursor(self.path.clone()),
                _ => CursorFileError::Read(self.path.clone(), err),
            })?;
        // Whitespace around the digits is forgiven (an editor's newline); the number
        // parsed is what is used, so nothing else can ride along.
        Cursor::parse(text.trim_matches(|c: char| c.is_ascii_whitespace()))
            .ok_or_else(|| CursorFileError::NotACursor(self.path.clone()))
    }

    /// Saves `cursor`: written to a new file of a random name beside it (created, never
    /// opened if something is there, never through a link), synced, then renamed over
    /// the old one. A link planted at the cursor's path is replaced, not followed.
    pub fn write(&self, cursor: Cursor) -> Result<(), CursorFileError> {
        let failed = |err| CursorFileError::Write(self.path.clone(), err);
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".{}.tmp", random::hex_id(8)));
        let tmp = self.path.with_file_name(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nofollow::flag())
            .open(&tmp)
            .map_err(failed)?;
        let written = file
            .write_all(format!("{cursor}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&tmp, &self.path))
            .and_then(|()| crate::fsync::sync_parent(&self.path));
        if let Err(err) = written {
            // Ours alone: made above with create_new.
            let _ = fs::remove_file(&tmp);
            return Err(failed(err));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_non_negative_integers_are_cursors() {
        assert_eq!(Cursor::parse("0"), Some(Cursor::START));
        assert_eq!(
            Cursor::parse("42").map(|c| c.to_string()),
            Some("42".into())
        );
        assert!(Cursor::parse(&i64::MAX.to_string()).is_some());
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1\r\nGET /x HTTP/1.1",
            "0x10",
            "9223372036854775808",
            "99999999999999999999",
            "１",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }
}

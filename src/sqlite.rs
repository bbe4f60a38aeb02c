//! What the server's store and the desk's index share about SQLite: opening a
//! database with the settings both rely on, bringing it up to its schema through an
//! ordered list of migrations, and keeping its files private.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// Why a database could not be opened.
#[derive(Debug)]
pub(crate) enum OpenDbError {
    /// SQLite refused.
    Sqlite(rusqlite::Error),
    /// The database's `user_version` is newer than the migrations know.
    UnknownSchema(i64),
    /// A database file's mode could not be set to 0600.
    Restrict(PathBuf, io::Error),
}

impl From<rusqlite::Error> for OpenDbError {
    fn from(err: rusqlite::Error) -> Self {
        OpenDbError::Sqlite(err)
    }
}

/// Opens (or creates) the database at `path`: WAL for concurrent readers, FULL
/// synchronous so a commit survives power loss, foreign keys, `secure_delete` so
/// deleted rows are overwritten rather than left in free pages, then `pragmas`. Applies
/// `migrations[user_version..]`, each in its own IMMEDIATE transaction (each migration
/// sets `user_version`), and makes the files mode 0600.
pub(crate) fn open(
    path: &Path,
    pragmas: &str,
    migrations: &[&str],
) -> Result<Connection, OpenDbError> {
    let db = Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;",
    )?;
    db.execute_batch(pragmas)?;
    db.busy_timeout(Duration::from_secs(10))?;
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = usize::try_from(version)
        .ok()
        .filter(|&v| v <= migrations.len())
        .ok_or(OpenDbError::UnknownSchema(version))?;
    for migration in &migrations[applied..] {
        db.execute_batch(&format!("BEGIN IMMEDIATE; {migration} COMMIT;"))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600))
                .map_err(|e| OpenDbError::Restrict(file.clone(), e))?;
        }
    }
    Ok(db)
}

//! What `agedrop backup` and `restore` need of the data directory: a copy of the
//! database as of one moment (SQLite's online backup, beside a running server; SQLite
//! only: `backup` refuses a PostgreSQL database before it gets here), the
//! blobs that copy's rows name, and the names of the files a restore writes. The
//! archive format itself is `crate::backup`'s.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;

use super::blobs::BlobReader;
use super::{Store, StoreError};
use super::{BLOBS, DATABASE, INSTANCE_SECRET, ITEM_SUFFIX, META_SUFFIX, REPLY_SUFFIX};

/// How long a snapshot waits, in all, for a server's write to finish.
const BUSY_LIMIT: Duration = Duration::from_secs(30);

/// The row a blob belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobOwner {
    /// An item (its ciphertext or its metadata record).
    Item(String),
    /// A newsroom reply.
    Reply(String),
}

/// A blob a snapshot's rows name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotBlob {
    /// Its file name in `blobs/` (server-made: an id and a suffix).
    pub name: String,
    /// Its row.
    pub owner: BlobOwner,
}

/// A copy of the database made by [`Store::snapshot`], open for [`crate::backup`] to
/// list its blobs and drop the rows of blobs deleted before they were copied.
pub struct Snapshot {
    db: Connection,
}

impl Store {
    /// Copies the database, as of one moment, into `dest` (a new, empty file) with
    /// SQLite's online backup: one step, under one read transaction, so the copy is
    /// consistent while the server goes on writing. Rows marked for deletion are
    /// dropped from the copy (their deletion was decided; a backup must not bring them
    /// back), and the copy uses a rollback journal so it is one file.
    pub fn snapshot(&self, dest: &Path) -> Result<Snapshot, StoreError> {
        let db = self.db();
        let db = db.sqlite().ok_or(StoreError::NotSqlite {
            action: "snapshot the database",
        })?;
        let mut copy = Connection::open(dest)?;
        {
            let backup = Backup::new(db, &mut copy)?;
            let mut waited = Duration::ZERO;
            loop {
                match backup.step(-1)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    _ if waited >= BUSY_LIMIT => {
                        return Err(StoreError::Database(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some("the database stayed busy during the snapshot".into()),
                        )))
                    }
                    _ => {
                        std::thread::sleep(Duration::from_millis(50));
                        waited += Duration::from_millis(50);
                    }
                }
            }
        }
        copy.execute_batch(
            "PRAGMA journal_mode = DELETE;
             PRAGMA secure_delete = ON;
             DELETE FROM items WHERE deleting = 1;
             DELETE FROM replies WHERE deleting = 1;",
        )?;
        Ok(Snapshot { db: copy })
    }

    /// Opens a blob by its name for reading, without touching its access time.
    /// `NotFound` if it was deleted.
    pub fn open_blob(&self, name: &str) -> io::Result<BlobReader> {
        self.blobs.open(name, None)
    }
}

impl Snapshot {
    /// The schema version of the copy.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self.db.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Every blob the copy's rows name: each item's ciphertext and metadata record,
    /// each reply's ciphertext.
    pub fn blobs(&self) -> Result<Vec<SnapshotBlob>, StoreError> {
        referenced_blobs(&self.db)
    }

    /// Drops the rows of these blobs from the copy (their blobs were deleted after the
    /// snapshot, so the rows are gone on the server too), so the copy names no blob
    /// the archive lacks.
    pub fn drop_rows(&self, owners: &[BlobOwner]) -> Result<(), StoreError> {
        for owner in owners {
            match owner {
                BlobOwner::Item(id) => self.db.execute("DELETE FROM items WHERE id = ?1", [id])?,
                BlobOwner::Reply(id) => {
                    self.db.execute("DELETE FROM replies WHERE id = ?1", [id])?
                }
            };
        }
        Ok(())
    }

    /// Closes the copy, so its file is whole on disk.
    pub fn close(self) -> Result<(), StoreError> {
        self.db
            .close()
            .map_err(|(_, err)| StoreError::Database(err))
    }
}

/// Every blob the rows of `db` name (see [`Snapshot::blobs`]).
fn referenced_blobs(db: &Connection) -> Result<Vec<SnapshotBlob>, StoreError> {
    let mut blobs = Vec::new();
    let items = query_ids(db, "SELECT id FROM items ORDER BY position")?;
    for id in items {
        for suffix in [ITEM_SUFFIX, META_SUFFIX] {
            blobs.push(SnapshotBlob {
                name: format!("{id}{suffix}"),
                owner: BlobOwner::Item(id.clone()),
            });
        }
    }
    let replies = query_ids(db, "SELECT id FROM replies ORDER BY position")?;
    for id in replies {
        blobs.push(SnapshotBlob {
            name: format!("{id}{REPLY_SUFFIX}"),
            owner: BlobOwner::Reply(id),
        });
    }
    Ok(blobs)
}

/// The `id` column of every row a query selects.
fn query_ids(db: &Connection, sql: &str) -> Result<Vec<String>, StoreError> {
    Ok(db
        .prepare(sql)?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// The names of a data directory's files, for a restore that writes them before any
/// [`Store`] can open it.
pub struct Layout<'a>(&'a Path);

impl<'a> Layout<'a> {
    /// The data directory (or the one being built) at `dir`.
    pub fn new(dir: &'a Path) -> Self {
        Layout(dir)
    }

    /// `agedrop.sqlite`.
    pub fn database(&self) -> PathBuf {
        self.0.join(DATABASE)
    }

    /// `instance-secret`.
    pub fn instance_secret(&self) -> PathBuf {
        self.0.join(INSTANCE_SECRET)
    }

    /// `blobs/`.
    pub fn blobs(&self) -> PathBuf {
        self.0.join(BLOBS)
    }

    /// The blobs the database's rows name, read without migrating or writing: a
    /// restore checks that each is there.
    pub fn referenced_blobs(&self) -> Result<Vec<SnapshotBlob>, StoreError> {
        let db = Connection::open_with_flags(
            self.database(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        referenced_blobs(&db)
    }
}

/// Whether `name` is one the store gives a blob: a 32-hex id and a blob suffix.
pub fn is_blob_name(name: &str) -> bool {
    // META_SUFFIX ends in ITEM_SUFFIX: try the longer ones first.
    [META_SUFFIX, REPLY_SUFFIX, ITEM_SUFFIX]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .is_some_and(crate::bundle::is_id)
}

#[cfg(test)]
mod tests {
    use super::is_blob_name;

    #[test]
    fn blob_names_are_an_id_and_a_suffix() {
        let id = "0123456789abcdef0123456789abcdef";
        for suffix in [".age", ".meta.age", ".reply.age"] {
            assert!(is_blob_name(&format!("{id}{suffix}")), "{suffix}");
        }
        for bad in [
            format!("{id}.tmp"),
            format!("../{id}.age"),
            format!("{}.age", &id[1..]),
            format!("{}.age", id.to_uppercase()),
            "lock".to_owned(),
        ] {
            assert!(!is_blob_name(&bad), "{bad}");
        }
    }
}

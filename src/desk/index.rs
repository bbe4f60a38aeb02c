//! The desk's index (`desk.sqlite`): its schema and every query the import and the
//! inbox make. Decrypted content lives in files; the index holds what a journalist
//! sorts and searches by, and what they add (read state, stars, notes, the outbox).

use std::path::Path;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};

use super::DeskError;
use crate::bundle::ItemKind;
use crate::sqlite::OpenDbError;

const SCHEMA: &str = "
CREATE TABLE newsroom (
    recipient TEXT PRIMARY KEY
);
CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    bundle      TEXT NOT NULL,
    since       TEXT NOT NULL,
    next_cursor TEXT NOT NULL,
    new_entries INTEGER NOT NULL,
    known       INTEGER NOT NULL
);
CREATE TABLE sources (
    id        TEXT PRIMARY KEY,
    label     TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    dir       TEXT NOT NULL UNIQUE,
    desk      TEXT,
    starred   INTEGER NOT NULL DEFAULT 0,
    note      TEXT NOT NULL DEFAULT ''
);
CREATE TABLE entries (
    source_id    TEXT NOT NULL REFERENCES sources(id),
    seq          INTEGER NOT NULL,
    id           TEXT UNIQUE,
    kind         TEXT NOT NULL CHECK (kind IN ('message', 'file', 'reply')),
    day          TEXT,
    file         TEXT,
    filename     TEXT,
    content_type TEXT,
    received     TEXT,
    size         INTEGER,
    deleted      INTEGER NOT NULL DEFAULT 0,
    read         INTEGER NOT NULL DEFAULT 0,
    digest       BLOB,
    import_id    INTEGER NOT NULL REFERENCES imports(id),
    PRIMARY KEY (source_id, seq)
);
CREATE INDEX entries_digest ON entries (digest);
CREATE TABLE outbox (
    id        INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id),
    file      TEXT NOT NULL UNIQUE,
    written   TEXT NOT NULL,
    text      TEXT NOT NULL,
    digest    BLOB NOT NULL UNIQUE,
    delivered INTEGER NOT NULL DEFAULT 0
);
PRAGMA user_version = 1;
";

/// Schema changes in order (see `store::schema` for the pattern).
const MIGRATIONS: &[&str] = &[SCHEMA];

/// Opens (or creates) the index.
pub(super) fn open(path: &Path) -> Result<Connection, DeskError> {
    crate::sqlite::open(path, "", MIGRATIONS).map_err(|err| match err {
        OpenDbError::Sqlite(err) => DeskError::Database(err),
        OpenDbError::UnknownSchema(version) => DeskError::UnknownSchema(version),
        OpenDbError::Restrict(file, err) => {
            super::io_error("restrict the index's permissions", &file)(err)
        }
    })
}

/// What an entry of a thread is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A source's message.
    Message,
    /// A source's file.
    File,
    /// The newsroom's reply.
    Reply,
}

impl From<ItemKind> for EntryKind {
    fn from(kind: ItemKind) -> Self {
        match kind {
            ItemKind::Message => EntryKind::Message,
            ItemKind::File => EntryKind::File,
        }
    }
}

impl ToSql for EntryKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(match self {
            EntryKind::Message => "message",
            EntryKind::File => "file",
            EntryKind::Reply => "reply",
        }))
    }
}

impl FromSql for EntryKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "message" => Ok(EntryKind::Message),
            "file" => Ok(EntryKind::File),
            "reply" => Ok(EntryKind::Reply),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// A source as the archive knows it.
#[derive(Clone, Debug)]
pub struct KnownSource {
    /// Random id.
    pub id: String,
    /// Label.
    pub label: String,
    /// Reply key.
    pub recipient: String,
    /// Directory name under `sources/`.
    pub dir: String,
    /// The desk the bundles named, if any.
    pub desk: Option<String>,
}

/// A source as the list shows it.
#[derive(Clone, Debug)]
pub struct SourceSummary {
    /// Random id.
    pub id: String,
    /// Label.
    pub label: String,
    /// The desk (newsroom team) if the bundle named one.
    pub desk: Option<String>,
    /// Starred by a journalist.
    pub starred: bool,
    /// A journalist's private note.
    pub note: String,
    /// The day of its latest entry.
    pub last_day: Option<String>,
    /// Its items nobody marked read.
    pub unread: i64,
    /// All its items (not replies).
    pub items: i64,
}

/// One entry of a thread.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Order in the thread.
    pub seq: i64,
    /// Item or reply id (none for a reply known only as deleted).
    pub id: Option<String>,
    /// What it is.
    pub kind: EntryKind,
    /// UTC day stored on the server.
    pub day: Option<String>,
    /// File name in the source's directory (none once deleted).
    pub file: Option<String>,
    /// The name the source's browser sent (made safe).
    pub filename: Option<String>,
    /// The type the source's browser sent.
    pub content_type: Option<String>,
    /// When it arrived (RFC 3339, from the encrypted metadata).
    pub received: Option<String>,
    /// Plaintext bytes.
    pub size: Option<u64>,
    /// A reply the source deleted.
    pub deleted: bool,
    /// Marked read.
    pub read: bool,
}

/// A reply the desk wrote into the outbox.
#[derive(Clone, Debug)]
pub struct OutboxReply {
    /// The source it is for.
    pub source_id: String,
    /// The source's label.
    pub label: String,
    /// Its bundle's file name in the outbox.
    pub file: String,
    /// When it was written (RFC 3339 UTC).
    pub written: String,
    /// What it says.
    pub text: String,
}

/// One import.
#[derive(Clone, Debug)]
pub struct ImportRecord {
    /// When (RFC 3339 UTC).
    pub at: String,
    /// The bundle's file name (made printable).
    pub bundle: String,
    /// Its cursor range.
    pub since: String,
    /// See `since`.
    pub next_cursor: String,
    /// Entries it added.
    pub new_entries: i64,
    /// Entries the archive had already.
    pub known: i64,
}

pub(super) fn placement(db: &Connection, id: &str) -> Result<Option<(String, String)>, DeskError> {
    Ok(db
        .query_row(
            "SELECT s.dir, e.file FROM entries e JOIN sources s ON s.id = e.source_id
             WHERE e.id = ?1 AND e.file IS NOT NULL",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

pub(super) fn source(db: &Connection, id: &str) -> Result<Option<KnownSource>, DeskError> {
    Ok(db
        .query_row(
            "SELECT id, label, recipient, dir, desk FROM sources WHERE id = ?1",
            [id],
            known_source,
        )
        .optional()?)
}

pub(super) fn source_by_label_or_dir(
    db: &Connection,
    label: &str,
    dir: &str,
) -> Result<Option<KnownSource>, DeskError> {
    Ok(db
        .query_row(
            "SELECT id, label, recipient, dir, desk FROM sources WHERE label = ?1 OR dir = ?2",
            [label, dir],
            known_source,
        )
        .optional()?)
}

fn known_source(r: &rusqlite::Row<'_>) -> rusqlite::Result<KnownSource> {
    Ok(KnownSource {
        id: r.get(0)?,
        label: r.get(1)?,
        recipient: r.get(2)?,
        dir: r.get(3)?,
        desk: r.get(4)?,
    })
}

/// The entry at (source, seq): its id, kind, whether deleted, its file and size.
pub(super) struct Slot {
    pub id: Option<String>,
    pub deleted: bool,
    pub file: Option<String>,
    pub size: Option<u64>,
}

pub(super) fn slot(db: &Connection, source_id: &str, seq: i64) -> Result<Option<Slot>, DeskError> {
    Ok(db
        .query_row(
            "SELECT id, deleted, file, size FROM entries WHERE source_id = ?1 AND seq = ?2",
            params![source_id, seq],
            |r| {
                Ok(Slot {
                    id: r.get(0)?,
                    deleted: r.get(1)?,
                    file: r.get(2)?,
                    size: r.get::<_, Option<i64>>(3)?.map(|s| s as u64),
                })
            },
        )
        .optional()?)
}

/// The newsroom's recipients, as imports recorded them from the identities used.
pub fn newsroom(db: &Connection) -> Result<Vec<String>, DeskError> {
    let mut stmt = db.prepare("SELECT recipient FROM newsroom ORDER BY recipient")?;
    let rows = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(rows)
}

/// Every source, most recent activity first; `filter` keeps only those with unread
/// items or only starred ones.
pub fn sources(db: &Connection, filter: Filter) -> Result<Vec<SourceSummary>, DeskError> {
    summaries(db, filter, None)
}

/// One source's summary.
pub fn summary(db: &Connection, source_id: &str) -> Result<Option<SourceSummary>, DeskError> {
    Ok(summaries(db, Filter::All, Some(source_id))?.pop())
}

fn summaries(
    db: &Connection,
    filter: Filter,
    only: Option<&str>,
) -> Result<Vec<SourceSummary>, DeskError> {
    let having = match filter {
        Filter::All => "",
        Filter::Unread => "HAVING unread > 0",
        Filter::Starred => "HAVING s.starred = 1",
    };
    let mut stmt = db.prepare(&format!(
        "SELECT s.id, s.label, s.desk, s.starred, s.note, MAX(e.day),
                COALESCE(SUM(e.kind != 'reply' AND e.read = 0), 0) AS unread,
                COALESCE(SUM(e.kind != 'reply'), 0)
         FROM sources s LEFT JOIN entries e ON e.source_id = s.id
         WHERE ?1 IS NULL OR s.id = ?1
         GROUP BY s.id {having}
         ORDER BY MAX(e.day) DESC, s.label"
    ))?;
    let rows = stmt
        .query_map([only], |r| {
            Ok(SourceSummary {
                id: r.get(0)?,
                label: r.get(1)?,
                desk: r.get(2)?,
                starred: r.get(3)?,
                note: r.get(4)?,
                last_day: r.get(5)?,
                unread: r.get(6)?,
                items: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Which sources the list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Filter {
    /// All.
    #[default]
    All,
    /// Those with unread items.
    Unread,
    /// Starred ones.
    Starred,
}

/// A source's thread, in order.
pub fn thread(db: &Connection, source_id: &str) -> Result<Vec<Entry>, DeskError> {
    let mut stmt = db.prepare(
        "SELECT seq, id, kind, day, file, filename, content_type, received, size, deleted, read
         FROM entries WHERE source_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt
        .query_map([source_id], |r| {
            Ok(Entry {
                seq: r.get(0)?,
                id: r.get(1)?,
                kind: r.get(2)?,
                day: r.get(3)?,
                file: r.get(4)?,
                filename: r.get(5)?,
                content_type: r.get(6)?,
                received: r.get(7)?,
                size: r.get::<_, Option<i64>>(8)?.map(|s| s as u64),
                deleted: r.get(9)?,
                read: r.get(10)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// An item's file: (source directory, file name, the name to save it as, its type).
pub fn item_file(
    db: &Connection,
    item_id: &str,
) -> Result<Option<(String, String, Option<String>)>, DeskError> {
    Ok(db
        .query_row(
            "SELECT s.dir, e.file, e.filename FROM entries e JOIN sources s ON s.id = e.source_id
             WHERE e.id = ?1 AND e.file IS NOT NULL AND e.kind != 'reply'",
            [item_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

/// Marks every item of a source read or unread. False if there is no such source.
pub fn set_read(db: &Connection, source_id: &str, read: bool) -> Result<bool, DeskError> {
    if source(db, source_id)?.is_none() {
        return Ok(false);
    }
    db.execute(
        "UPDATE entries SET read = ?2 WHERE source_id = ?1 AND kind != 'reply'",
        params![source_id, read],
    )?;
    Ok(true)
}

/// Stars or unstars a source. False if there is no such source.
pub fn set_starred(db: &Connection, source_id: &str, starred: bool) -> Result<bool, DeskError> {
    Ok(db.execute(
        "UPDATE sources SET starred = ?2 WHERE id = ?1",
        params![source_id, starred],
    )? == 1)
}

/// Sets a source's private note. False if there is no such source.
pub fn set_note(db: &Connection, source_id: &str, note: &str) -> Result<bool, DeskError> {
    Ok(db.execute(
        "UPDATE sources SET note = ?2 WHERE id = ?1",
        params![source_id, note],
    )? == 1)
}

/// Replies waiting in the outbox (not yet seen back in an export), oldest first; of
/// one source, or of all.
pub fn outbox(db: &Connection, source_id: Option<&str>) -> Result<Vec<OutboxReply>, DeskError> {
    let mut stmt = db.prepare(
        "SELECT o.source_id, s.label, o.file, o.written, o.text
         FROM outbox o JOIN sources s ON s.id = o.source_id
         WHERE o.delivered = 0 AND (?1 IS NULL OR o.source_id = ?1) ORDER BY o.id",
    )?;
    let rows = stmt
        .query_map([source_id], |r| {
            Ok(OutboxReply {
                source_id: r.get(0)?,
                label: r.get(1)?,
                file: r.get(2)?,
                written: r.get(3)?,
                text: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Records a reply written into the outbox.
pub(super) fn add_outbox(
    db: &Connection,
    source_id: &str,
    file: &str,
    written: &str,
    text: &str,
    digest: &[u8; 32],
) -> Result<(), DeskError> {
    db.execute(
        "INSERT INTO outbox (source_id, file, written, text, digest) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![source_id, file, written, text, &digest[..]],
    )?;
    Ok(())
}

/// Imports, newest first.
pub fn imports(db: &Connection) -> Result<Vec<ImportRecord>, DeskError> {
    let mut stmt = db.prepare(
        "SELECT at, bundle, since, next_cursor, new_entries, known FROM imports ORDER BY id DESC",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(ImportRecord {
                at: r.get(0)?,
                bundle: r.get(1)?,
                since: r.get(2)?,
                next_cursor: r.get(3)?,
                new_entries: r.get(4)?,
                known: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

//! The database: its schema, as the ordered list of migrations every database is
//! brought up to, and how it is opened (journal, durability and deletion settings).
//! SQLite (`agedrop.sqlite`, `user_version`) and PostgreSQL (`[database] url`, a
//! `schema_version` table) each have their own list; both lists end in the same tables,
//! columns, constraints and version number.

use std::path::Path;

use rusqlite::Connection;

use super::db::{Db, Postgres, Sql};
use super::{io_error, StoreError};
use crate::config::Database;
use crate::sqlite::OpenDbError;

const SCHEMA: &str = "
CREATE TABLE sources (
    id      TEXT PRIMARY KEY,
    day     TEXT NOT NULL
);
CREATE TABLE items (
    id        TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('message', 'file', 'reply')),
    seq       INTEGER NOT NULL,
    day       TEXT NOT NULL,
    size      INTEGER NOT NULL,
    meta_size INTEGER NOT NULL,
    UNIQUE (source_id, seq)
);
CREATE TABLE journalists (
    name       TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    day        TEXT NOT NULL
);
PRAGMA user_version = 1;
";

/// Version 2: source keys (lookup id, wrapped identity, recipient), labels, replies.
const SCHEMA_V2: &str = "
ALTER TABLE sources ADD COLUMN label TEXT;
ALTER TABLE sources ADD COLUMN lookup_id BLOB;
ALTER TABLE sources ADD COLUMN kdf TEXT;
ALTER TABLE sources ADD COLUMN recipient TEXT;
ALTER TABLE sources ADD COLUMN wrapped_key BLOB;
CREATE UNIQUE INDEX sources_label ON sources (label);
CREATE UNIQUE INDEX sources_lookup ON sources (lookup_id);
CREATE TABLE replies (
    id        TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    day       TEXT NOT NULL,
    size      INTEGER NOT NULL
);
PRAGMA user_version = 2;
";

/// Version 3: tokens name their account (per-account rate limits). Tokens made before
/// cannot be matched to an account and are dropped: make new ones.
const SCHEMA_V3: &str = "
DELETE FROM journalists;
ALTER TABLE journalists ADD COLUMN account_id TEXT;
CREATE UNIQUE INDEX journalists_account ON journalists (account_id);
PRAGMA user_version = 3;
";

/// Version 4: an export position per item from a counter that never goes back, so a
/// deleted newest item cannot hand its position to the next one (rowids can be reused,
/// which would make `pull` skip an item).
const SCHEMA_V4: &str = "
ALTER TABLE items ADD COLUMN position INTEGER;
UPDATE items SET position = rowid;
CREATE UNIQUE INDEX items_position ON items (position);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters (name, value) SELECT 'export', COALESCE(MAX(position), 0) FROM items;
PRAGMA user_version = 4;
";

/// Version 5: rows marked `deleting` before their blobs are unlinked (so start-up
/// tells a deletion cut short from a volume that is missing), item numbers from a
/// per-source counter that only grows (a deleted newest
/// item never hands its number to the next one), and a pending code rotation: the new
/// code's keys wait beside the old ones until the source has seen the new code, and the
/// new code itself, encrypted to the source's own recipient, so a login with the old
/// code can show it again.
const SCHEMA_V5: &str = "
ALTER TABLE sources ADD COLUMN next_seq INTEGER NOT NULL DEFAULT 0;
UPDATE sources SET next_seq =
    (SELECT COALESCE(MAX(seq), 0) FROM items WHERE items.source_id = sources.id);
ALTER TABLE sources ADD COLUMN pending_lookup_id BLOB;
ALTER TABLE sources ADD COLUMN pending_kdf TEXT;
ALTER TABLE sources ADD COLUMN pending_wrapped_key BLOB;
ALTER TABLE sources ADD COLUMN pending_code BLOB;
CREATE UNIQUE INDEX sources_pending_lookup ON sources (pending_lookup_id);
ALTER TABLE items ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replies ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 5;
";

/// Version 6: replies take their order from the source's counter (`next_seq`, shared
/// with items, so a thread reads in the order things happened) and an export position
/// from the same counter as items, so `pull` exports them. Replies stored before get
/// both in the order they were stored, after their source's items; the table is rebuilt
/// so that both columns are NOT NULL. A reply its source deletes leaves a row in
/// `deleted_replies` with only its source, its order and a new export position, so the
/// newsroom learns of the deletion: no id, day or size (SECURITY.md, "What a seized
/// disk does not give").
const SCHEMA_V6: &str = "
CREATE TABLE replies_v6 (
    id        TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    day       TEXT NOT NULL,
    size      INTEGER NOT NULL,
    deleting  INTEGER NOT NULL DEFAULT 0,
    seq       INTEGER NOT NULL,
    position  INTEGER NOT NULL UNIQUE,
    UNIQUE (source_id, seq)
);
INSERT INTO replies_v6 (rowid, id, source_id, day, size, deleting, seq, position)
SELECT rowid, id, source_id, day, size, deleting,
       (SELECT next_seq FROM sources WHERE sources.id = replies.source_id)
           + ROW_NUMBER() OVER (PARTITION BY source_id ORDER BY rowid),
       (SELECT value FROM counters WHERE name = 'export')
           + ROW_NUMBER() OVER (ORDER BY rowid)
FROM replies;
DROP TABLE replies;
ALTER TABLE replies_v6 RENAME TO replies;
UPDATE sources SET next_seq = next_seq
    + (SELECT COUNT(*) FROM replies WHERE replies.source_id = sources.id);
UPDATE counters SET value = value + (SELECT COUNT(*) FROM replies) WHERE name = 'export';
CREATE TABLE deleted_replies (
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    position  INTEGER NOT NULL UNIQUE,
    UNIQUE (source_id, seq)
);
PRAGMA user_version = 6;
";

/// Version 7: desks. Each source belongs to the desk of its first submission (the
/// sources of a drop from before desks belong to the implicit one, `newsroom`), and an
/// account may be limited to some desks: `desks` holds their ids between commas
/// (`,a,b,`), NULL for every desk (as every account before).
const SCHEMA_V7: &str = "
ALTER TABLE sources ADD COLUMN desk TEXT NOT NULL DEFAULT 'newsroom';
CREATE INDEX sources_desk ON sources (desk);
ALTER TABLE journalists ADD COLUMN desks TEXT;
PRAGMA user_version = 7;
";

/// Version 8: each account's export position as of its last pull (the `next_cursor`
/// of the last export bundle the server handed over whole), so `GET /api/v1/status`
/// can count what came after it. 0 for accounts from before: their first status
/// counts every item of their desks until they pull once (too many rather than none).
const SCHEMA_V8: &str = "
ALTER TABLE journalists ADD COLUMN pulled INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 8;
";

/// Version 9: retention. `items.pulled_day` is the UTC day an item was first found
/// pulled by every account of its desk; `sources.seen_day` the UTC day a source last
/// logged in or sent something, recorded only while `retention.inactive_sources_after_days`
/// is set (SECURITY.md, "Retention").
const SCHEMA_V9: &str = "
ALTER TABLE items ADD COLUMN pulled_day TEXT;
ALTER TABLE sources ADD COLUMN seen_day TEXT;
PRAGMA user_version = 9;
";

/// Every schema change in order: a database at `user_version` N gets
/// `MIGRATIONS[N..]`, each in its own transaction.
const MIGRATIONS: &[&str] = &[
    SCHEMA, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8, SCHEMA_V9,
];

/// The schema version this agedrop brings every database up to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// PostgreSQL's schema, written at once as SQLite's stands after all of its
/// migrations: the same tables, columns, constraints and defaults, with PostgreSQL's
/// types (BYTEA for BLOB, BIGINT for the integers the store passes as parameters).
/// SQLite's `instr`, which the desk scope and the retention sweep use, is defined here
/// so that each statement is written once (`db.rs`). `items.position` is NOT NULL
/// here; in SQLite it is NOT NULL in practice (every insert sets it) and only lacks
/// the constraint because version 4 added it to an existing table.
const POSTGRES_V9: &str = "
CREATE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER
    LANGUAGE SQL IMMUTABLE STRICT AS 'SELECT strpos(haystack, needle)';
CREATE TABLE sources (
    id                  TEXT PRIMARY KEY,
    day                 TEXT NOT NULL,
    label               TEXT,
    lookup_id           BYTEA,
    kdf                 TEXT,
    recipient           TEXT,
    wrapped_key         BYTEA,
    next_seq            BIGINT NOT NULL DEFAULT 0,
    pending_lookup_id   BYTEA,
    pending_kdf         TEXT,
    pending_wrapped_key BYTEA,
    pending_code        BYTEA,
    desk                TEXT NOT NULL DEFAULT 'newsroom',
    seen_day            TEXT
);
CREATE UNIQUE INDEX sources_label ON sources (label);
CREATE UNIQUE INDEX sources_lookup ON sources (lookup_id);
CREATE UNIQUE INDEX sources_pending_lookup ON sources (pending_lookup_id);
CREATE INDEX sources_desk ON sources (desk);
CREATE TABLE items (
    id         TEXT PRIMARY KEY,
    source_id  TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('message', 'file', 'reply')),
    seq        BIGINT NOT NULL,
    day        TEXT NOT NULL,
    size       BIGINT NOT NULL,
    meta_size  BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    deleting   INTEGER NOT NULL DEFAULT 0,
    pulled_day TEXT,
    UNIQUE (source_id, seq)
);
CREATE UNIQUE INDEX items_position ON items (position);
CREATE TABLE journalists (
    name       TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    day        TEXT NOT NULL,
    account_id TEXT,
    desks      TEXT,
    pulled     BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX journalists_account ON journalists (account_id);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('export', 0);
CREATE TABLE replies (
    id        TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    day       TEXT NOT NULL,
    size      BIGINT NOT NULL,
    deleting  INTEGER NOT NULL DEFAULT 0,
    seq       BIGINT NOT NULL,
    position  BIGINT NOT NULL UNIQUE,
    UNIQUE (source_id, seq)
);
CREATE TABLE deleted_replies (
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    seq       BIGINT NOT NULL,
    position  BIGINT NOT NULL UNIQUE,
    UNIQUE (source_id, seq)
);
";

/// PostgreSQL's schema changes in order, each with the version it brings a database
/// to: the first makes an empty database what SQLite's first nine make. A schema
/// change appends one entry here and one to [`MIGRATIONS`], with the same number.
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[(9, POSTGRES_V9)];

/// The schema version of the database at `path`, read without changing anything (no
/// migration, no pragma that writes): for `agedrop check`.
pub(super) fn stored_version(path: &Path) -> Result<i64, StoreError> {
    let db = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(db.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Opens the database `database` names (SQLite: `sqlite_path`, created if missing)
/// and brings its schema up to date.
/// With `create` false, a PostgreSQL database without a schema is refused
/// ([`StoreError::EmptyPostgres`]) instead of given one.
pub(super) fn open(
    database: &Database,
    sqlite_path: &Path,
    create: bool,
) -> Result<Db, StoreError> {
    match database {
        Database::Sqlite => Ok(Db::Sqlite(open_database(sqlite_path)?)),
        Database::Postgres(settings) => {
            let mut db = Db::Postgres(Box::new(Postgres::connect(settings)?));
            migrate_postgres(&mut db, create)?;
            Ok(db)
        }
    }
}

/// Brings a PostgreSQL database up to [`POSTGRES_MIGRATIONS`], all in one write
/// transaction: two agedrop processes starting at once migrate it once (the second
/// waits on the writers' lock, then finds it done). Refuses a newer version, as SQLite
/// does.
fn migrate_postgres(db: &mut Db, create: bool) -> Result<(), StoreError> {
    db.write(|tx| {
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
            &[],
        )?;
        let version: i64 = tx
            .optional("SELECT version FROM schema_version", &[], |r| r.get(0))?
            .unwrap_or(0);
        let newest = POSTGRES_MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if version > newest {
            return Err(StoreError::UnknownPostgresSchema(version));
        }
        if version == 0 && !create {
            return Err(StoreError::EmptyPostgres);
        }
        for (to, migration) in POSTGRES_MIGRATIONS.iter().filter(|(v, _)| *v > version) {
            tx.batch(migration, "migrate the schema")?;
            tx.execute("DELETE FROM schema_version", &[])?;
            tx.execute("INSERT INTO schema_version (version) VALUES (?1)", &[to])?;
        }
        Ok(())
    })
}

/// The schema version of a PostgreSQL database (0: none yet), read without changing
/// anything: for `agedrop check`.
pub(super) fn postgres_version(db: &mut Db) -> Result<i64, StoreError> {
    let made: i64 = db.value(
        "SELECT COUNT(*) FROM information_schema.tables
         WHERE table_name = 'schema_version' AND table_schema = current_schema()",
        &[],
    )?;
    if made == 0 {
        return Ok(0);
    }
    Ok(db
        .optional("SELECT version FROM schema_version", &[], |r| r.get(0))?
        .unwrap_or(0))
}

/// Opens (or creates) the database and brings its schema up to date.
fn open_database(path: &Path) -> Result<Connection, StoreError> {
    // journal_size_limit 0 so the WAL shrinks to nothing whenever it is reset rather
    // than keeping old page images past its end (see `scrub`). The database files hold
    // metadata only, but are kept private all the same.
    crate::sqlite::open(path, "PRAGMA journal_size_limit = 0;", MIGRATIONS).map_err(|err| match err
    {
        OpenDbError::Sqlite(err) => StoreError::from(err),
        OpenDbError::UnknownSchema(version) => StoreError::UnknownSchema(version),
        OpenDbError::Restrict(file, err) => {
            io_error("restrict the database's permissions", &file)(err)
        }
    })
}

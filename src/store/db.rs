//! The one query layer under the store: the same statements run on SQLite in the data
//! directory (the default) or on PostgreSQL (`[database] url`).
//!
//! Every statement is written once, in SQL both accept, with `?N` placeholders (turned
//! into PostgreSQL's `$N` here). Where the two differ, the difference is settled in
//! one place: the PostgreSQL schema defines SQLite's `instr` (`schema.rs`), integers
//! read through [`Column`] whatever their width, and SQLite's pragmas stay in
//! `crate::sqlite`. Callers see [`Db`] (a connection), [`Tx`] (a write transaction or
//! a read snapshot) and [`Row`], all through the [`Sql`] methods.
//!
//! Write transactions are serialised the same way on both: SQLite's `BEGIN IMMEDIATE`
//! takes its one writer lock, and on PostgreSQL every write transaction first takes
//! one transaction-level advisory lock, so counters read and bumped inside it (order
//! numbers, export positions) stay gapless and in commit order with several agedrop
//! processes on one database.

use std::collections::HashMap;

use postgres::types::{FromSql, ToSql, Type};
use postgres::{GenericClient, IsolationLevel, NoTls, Statement};
use rusqlite::TransactionBehavior;

use super::{ItemKind, StoreError};
use crate::config::PostgresDatabase;

/// The key of the advisory lock every PostgreSQL write transaction takes: "agedrop" in
/// ASCII. Advisory locks are per database, so other databases of the cluster never
/// contend for it.
const WRITER_LOCK: i64 = 0x0061_6765_6472_6f70;

/// A value a statement takes as a parameter: anything both drivers can send.
pub(super) trait Param {
    fn sqlite(&self) -> &dyn rusqlite::ToSql;
    fn postgres(&self) -> &(dyn ToSql + Sync);
}

impl<T: rusqlite::ToSql + ToSql + Sync> Param for T {
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        self
    }
    fn postgres(&self) -> &(dyn ToSql + Sync) {
        self
    }
}

/// An open database.
pub(super) enum Db {
    /// `agedrop.sqlite`, opened by `schema::open_database`.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL database (boxed: its connection is several times SQLite's).
    Postgres(Box<Postgres>),
}

/// A PostgreSQL connection, made again if the server closed it (a restart), with the
/// statements prepared on it.
pub(super) struct Postgres {
    /// `None` only while being dropped.
    client: Option<postgres::Client>,
    statements: Statements,
    database: PostgresDatabase,
}

/// Statements prepared on one connection, by their text as written (`?N`).
type Statements = HashMap<&'static str, Statement>;

impl Postgres {
    /// Connects: over TLS (rustls, the server's certificate checked against the CAs and
    /// the URL's host name) when the URL says `sslmode=require`, else in clear, which
    /// `config` allows on this machine only.
    pub(super) fn connect(database: &PostgresDatabase) -> Result<Postgres, StoreError> {
        let settings = database.settings();
        let client = match database.tls() {
            None => settings.connect(NoTls),
            Some(tls) => {
                let config =
                    super::tls::client_config(tls.ca_file.as_deref(), "read database.ca_file")?;
                settings.connect(tokio_postgres_rustls::MakeRustlsConnect::new(config))
            }
        }
        .map_err(postgres_error("connect to the database"))?;
        Ok(Postgres {
            client: Some(client),
            statements: Statements::new(),
            database: database.clone(),
        })
    }

    /// The connection and its statements, connecting again first if it was lost.
    fn parts(&mut self) -> Result<(&mut postgres::Client, &mut Statements), StoreError> {
        let lost = self.client.as_ref().is_none_or(postgres::Client::is_closed);
        if lost {
            *self = Self::connect(&self.database)?;
        }
        let client = self
            .client
            .as_mut()
            .expect("the client is only taken while dropping");
        Ok((client, &mut self.statements))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // The driver closes its connection by blocking on a runtime of its own, which
        // panics on a thread that drives async tasks (the server's last `Arc<Store>`
        // may go there): close it on a thread of its own then.
        if let Some(client) = self.client.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(client));
            }
        }
    }
}

/// A transaction of [`Db::write`] or [`Db::snapshot`].
pub(super) enum Tx<'t> {
    Sqlite(rusqlite::Transaction<'t>),
    Postgres {
        tx: postgres::Transaction<'t>,
        statements: &'t mut Statements,
    },
}

/// What a statement runs on, borrowed for one call.
pub(super) enum Handle<'h> {
    Sqlite(&'h rusqlite::Connection),
    Postgres {
        client: &'h mut dyn PgClient,
        statements: &'h mut Statements,
    },
}

/// The part of `postgres::GenericClient` the store uses, object-safe, so a plain
/// connection and a transaction go through the same code.
pub(super) trait PgClient {
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error>;
    fn execute(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error>;
    fn query(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, postgres::Error>;
}

impl<C: GenericClient> PgClient for C {
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        GenericClient::prepare(self, sql)
    }
    fn execute(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        GenericClient::execute(self, statement, params)
    }
    fn query(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        GenericClient::query(self, statement, params)
    }
}

/// One row of a result.
pub(super) enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `index` (from 0) as a `T`.
    pub(super) fn get<T: Column>(&self, index: usize) -> Result<T, StoreError> {
        match self {
            Row::Sqlite(row) => Ok(T::from_sqlite(row, index)?),
            Row::Postgres(row) => {
                T::from_postgres(row, index).map_err(postgres_error("read a column"))
            }
        }
    }
}

/// A type a column is read as.
pub(super) trait Column: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self>;
    fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error>;
}

macro_rules! same_in_both {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
                row.get(index)
            }
            fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
                row.try_get(index)
            }
        }
    )*};
}
same_in_both!(String, Option<String>, Vec<u8>, Option<Vec<u8>>, ItemKind);

/// A PostgreSQL integer of any width: a literal `1` is an `integer`, `COUNT(*)` a
/// `bigint`; SQLite has one integer type.
struct AnyInt(i64);

impl<'a> FromSql<'a> for AnyInt {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(AnyInt(match *ty {
            Type::INT2 => i16::from_sql(ty, raw)?.into(),
            Type::INT4 => i32::from_sql(ty, raw)?.into(),
            _ => i64::from_sql(ty, raw)?,
        }))
    }
    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8)
    }
}

impl Column for i64 {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
        row.get(index)
    }
    fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        Ok(row.try_get::<_, AnyInt>(index)?.0)
    }
}

/// A flag column (`deleting`) or literal: 0 or 1.
impl Column for bool {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
        Ok(i64::from_sqlite(row, index)? != 0)
    }
    fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        Ok(i64::from_postgres(row, index)? != 0)
    }
}

/// The `kind` column, whose CHECK constraint allows nothing else.
impl rusqlite::types::FromSql for ItemKind {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        item_kind(value.as_str()?).ok_or(rusqlite::types::FromSqlError::InvalidType)
    }
}

/// The `kind` column, as for SQLite.
impl<'a> FromSql<'a> for ItemKind {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        item_kind(<&str>::from_sql(ty, raw)?).ok_or_else(|| "not an item kind".into())
    }
    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

fn item_kind(text: &str) -> Option<ItemKind> {
    match text {
        "message" => Some(ItemKind::Message),
        "file" => Some(ItemKind::File),
        _ => None,
    }
}

/// The statements the store runs, on a connection or in a transaction.
pub(super) trait Sql {
    /// What the next statement runs on.
    #[doc(hidden)]
    fn handle(&mut self) -> Result<Handle<'_>, StoreError>;

    /// Runs a statement that returns no rows: how many rows it changed.
    fn execute(&mut self, sql: &'static str, params: &[&dyn Param]) -> Result<usize, StoreError> {
        match self.handle()? {
            Handle::Sqlite(db) => {
                let mut statement = db.prepare_cached(sql)?;
                Ok(statement.execute(sqlite_params(params).as_slice())?)
            }
            Handle::Postgres { client, statements } => {
                let statement = prepared(client, statements, sql)?;
                let changed = client
                    .execute(&statement, &postgres_params(params))
                    .map_err(postgres_error(action(sql)))?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
        }
    }

    /// Every row a query returns, as `row` makes it.
    fn rows<T>(
        &mut self,
        sql: &'static str,
        params: &[&dyn Param],
        mut row: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        match self.handle()? {
            Handle::Sqlite(db) => {
                let mut statement = db.prepare_cached(sql)?;
                let mut rows = statement.query(sqlite_params(params).as_slice())?;
                while let Some(next) = rows.next()? {
                    out.push(row(&Row::Sqlite(next))?);
                }
            }
            Handle::Postgres { client, statements } => {
                let statement = prepared(client, statements, sql)?;
                let rows = client
                    .query(&statement, &postgres_params(params))
                    .map_err(postgres_error(action(sql)))?;
                for next in &rows {
                    out.push(row(&Row::Postgres(next))?);
                }
            }
        }
        Ok(out)
    }

    /// The first row a query returns, if any.
    fn optional<T>(
        &mut self,
        sql: &'static str,
        params: &[&dyn Param],
        row: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.rows(sql, params, row)?.into_iter().next())
    }

    /// The first column of the one row a query returns (an aggregate, a `RETURNING`).
    fn value<T: Column>(
        &mut self,
        sql: &'static str,
        params: &[&dyn Param],
    ) -> Result<T, StoreError> {
        self.optional(sql, params, |r| r.get(0))?
            .ok_or(StoreError::NoRow {
                action: action(sql),
            })
    }

    /// Whether a query returns any row.
    fn exists(&mut self, sql: &'static str, params: &[&dyn Param]) -> Result<bool, StoreError> {
        Ok(self.optional(sql, params, |_| Ok(()))?.is_some())
    }

    /// The first column of every row a query returns, as text (ids).
    fn ids(&mut self, sql: &'static str, params: &[&dyn Param]) -> Result<Vec<String>, StoreError> {
        self.rows(sql, params, |r| r.get(0))
    }
}

impl Sql for Db {
    fn handle(&mut self) -> Result<Handle<'_>, StoreError> {
        match self {
            Db::Sqlite(db) => Ok(Handle::Sqlite(db)),
            Db::Postgres(pg) => {
                let (client, statements) = pg.parts()?;
                Ok(Handle::Postgres { client, statements })
            }
        }
    }
}

impl Sql for Tx<'_> {
    fn handle(&mut self) -> Result<Handle<'_>, StoreError> {
        match self {
            Tx::Sqlite(tx) => Ok(Handle::Sqlite(tx)),
            Tx::Postgres { tx, statements } => Ok(Handle::Postgres {
                client: tx,
                statements,
            }),
        }
    }
}

impl Db {
    /// Runs `work` in a write transaction and commits it if `work` succeeds (rolls it
    /// back otherwise). Writers wait for each other, in this process and in others:
    /// SQLite's `BEGIN IMMEDIATE`, PostgreSQL's advisory lock [`WRITER_LOCK`].
    pub(super) fn write<T>(
        &mut self,
        work: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self {
            Db::Sqlite(db) => {
                // IMMEDIATE: a transaction that reads before it writes would otherwise
                // fail at once (not wait) if another process committed in between.
                let mut tx =
                    Tx::Sqlite(db.transaction_with_behavior(TransactionBehavior::Immediate)?);
                let out = work(&mut tx)?;
                tx.commit()?;
                Ok(out)
            }
            Db::Postgres(pg) => {
                let (client, statements) = pg.parts()?;
                let mut tx = client
                    .transaction()
                    .map_err(postgres_error("begin a write transaction"))?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITER_LOCK])
                    .map_err(postgres_error("wait for the other writers"))?;
                let mut tx = Tx::Postgres { tx, statements };
                let out = work(&mut tx)?;
                tx.commit()?;
                Ok(out)
            }
        }
    }

    /// Runs `work`'s reads on one snapshot of the database, so that several queries
    /// see the same commits: SQLite's deferred (read) transaction, PostgreSQL's
    /// REPEATABLE READ. Writers commit in the order of the export positions they took
    /// (see [`Db::write`]), so a snapshot holds every position up to its newest.
    pub(super) fn snapshot<T>(
        &mut self,
        work: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tx = match self {
            Db::Sqlite(db) => {
                Tx::Sqlite(db.transaction_with_behavior(TransactionBehavior::Deferred)?)
            }
            Db::Postgres(pg) => {
                let (client, statements) = pg.parts()?;
                let tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .map_err(postgres_error("begin a read transaction"))?;
                Tx::Postgres { tx, statements }
            }
        };
        let out = work(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// The SQLite connection, for what only SQLite has (the WAL, the online backup).
    pub(super) fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Db::Sqlite(db) => Some(db),
            Db::Postgres(_) => None,
        }
    }
}

impl Tx<'_> {
    /// Runs several statements without parameters (a migration).
    pub(super) fn batch(&mut self, sql: &str, action: &'static str) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            Tx::Postgres { tx, .. } => tx.batch_execute(sql).map_err(postgres_error(action)),
        }
    }

    fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.commit()?),
            Tx::Postgres { tx, .. } => tx.commit().map_err(postgres_error("commit a transaction")),
        }
    }
}

/// `sql`'s statement on this connection, prepared once.
fn prepared(
    client: &mut dyn PgClient,
    statements: &mut Statements,
    sql: &'static str,
) -> Result<Statement, StoreError> {
    if let Some(statement) = statements.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client
        .prepare(&dollar_placeholders(sql))
        .map_err(postgres_error(action(sql)))?;
    statements.insert(sql, statement.clone());
    Ok(statement)
}

fn sqlite_params<'p>(params: &[&'p dyn Param]) -> Vec<&'p dyn rusqlite::ToSql> {
    params.iter().map(|p| p.sqlite()).collect()
}

fn postgres_params<'p>(params: &[&'p dyn Param]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| p.postgres()).collect()
}

/// `?N` placeholders as PostgreSQL writes them, `$N`. The store's SQL has no `?` in a
/// string literal; quoted text is copied as it is all the same.
pub(super) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// What a statement does, for an error: its verb and its first table ("update
/// sources"), never its parameters.
fn action(sql: &str) -> String {
    let words: Vec<&str> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    let verb = words.first().copied().unwrap_or("run").to_ascii_lowercase();
    let after = match verb.as_str() {
        "update" => "UPDATE",
        "insert" => "INTO",
        _ => "FROM",
    };
    let table = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case(after))
        .and_then(|i| words.get(i + 1));
    match table {
        Some(table) if verb == "select" => format!("read {table}"),
        Some(table) if verb == "update" => format!("update {table}"),
        Some(table) => format!("{verb} {table}"),
        None => format!("run a {verb}"),
    }
}

/// For `map_err`: a PostgreSQL failure while doing `action`.
pub(super) fn postgres_error(
    action: impl Into<String>,
) -> impl FnOnce(postgres::Error) -> StoreError {
    move |source| StoreError::Postgres {
        action: action.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::{action, dollar_placeholders};

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            dollar_placeholders("SELECT ?1, '?2' FROM t WHERE a = ?12 OR b = ?"),
            "SELECT $1, '?2' FROM t WHERE a = $12 OR b = ?"
        );
    }

    #[test]
    fn an_action_names_the_verb_and_table_only() {
        assert_eq!(
            action("UPDATE sources SET next_seq = next_seq + 1 WHERE id = ?1"),
            "update sources"
        );
        assert_eq!(action("INSERT INTO items (id) VALUES (?1)"), "insert items");
        assert_eq!(action("SELECT id FROM replies WHERE x"), "read replies");
        assert_eq!(action("DELETE FROM items WHERE id = ?1"), "delete items");
    }
}

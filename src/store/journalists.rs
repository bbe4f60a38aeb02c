//! Journalist accounts: a name, the account id a token names, and the token secret's
//! hash.

use std::time::SystemTime;

use super::db::{Row, Sql};
use super::export::{desk_scope, in_scope};
use super::{Store, StoreError};
use crate::time;

/// A journalist account as stored.
pub struct Journalist {
    /// Its name.
    pub name: String,
    /// SHA-256 of its token's secret.
    pub token_hash: Vec<u8>,
    /// The UTC day it was made.
    pub day: String,
    /// The desks it may see; `None`: every desk.
    pub desks: Option<Vec<String>>,
}

impl Journalist {
    /// Whether this account may see sources of desk `desk`.
    pub fn sees(&self, desk: &str) -> bool {
        self.desks
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id == desk))
    }
}

fn journalist_row(r: &Row<'_>) -> Result<Journalist, StoreError> {
    let desks: Option<String> = r.get(3)?;
    Ok(Journalist {
        name: r.get(0)?,
        token_hash: r.get(1)?,
        day: r.get(2)?,
        desks: desks.map(|list| {
            list.split(',')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        }),
    })
}

impl Store {
    /// Records a journalist account: its token's account id and secret hash, and the
    /// desks it may see (`None`: every desk).
    pub fn add_journalist(
        &self,
        name: &str,
        account_id: &str,
        secret_hash: &[u8; 32],
        desks: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let day = time::day(SystemTime::now());
        let desks = desk_scope(desks);
        let result = self.db().execute(
            "INSERT INTO journalists (name, account_id, token_hash, day, desks)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &[&name, &account_id, &&secret_hash[..], &day, &desks],
        );
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_unique_violation() => Err(StoreError::JournalistExists),
            Err(e) => Err(e),
        }
    }

    /// The account with this id.
    pub fn journalist(&self, account_id: &str) -> Result<Option<Journalist>, StoreError> {
        self.db().optional(
            "SELECT name, token_hash, day, desks FROM journalists WHERE account_id = ?1",
            &[&account_id],
            journalist_row,
        )
    }

    /// Every account, by name.
    pub fn journalists(&self) -> Result<Vec<Journalist>, StoreError> {
        let mut rows = self.db().rows(
            "SELECT name, token_hash, day, desks FROM journalists",
            &[],
            journalist_row,
        )?;
        // Sorted here, by bytes: the two databases' collations may order text apart.
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    /// Removes an account; its token stops working at once. Returns whether it existed.
    pub fn remove_journalist(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .db()
            .execute("DELETE FROM journalists WHERE name = ?1", &[&name])?
            > 0)
    }

    /// Remembers that the account `account_id` now has everything up to export
    /// position `cursor` (an export's `next_cursor`), for [`Store::new_items`]. A cursor
    /// past the newest position (a client may ask for any `since`) is taken as the
    /// newest, so a wrong cursor can never hide later items.
    pub fn record_pull(&self, account_id: &str, cursor: i64) -> Result<(), StoreError> {
        // CASE rather than SQLite's two-argument MIN, which PostgreSQL calls LEAST.
        self.db().execute(
            "UPDATE journalists
             SET pulled = CASE WHEN ?2 < (SELECT value FROM counters WHERE name = 'export')
                 THEN ?2 ELSE (SELECT value FROM counters WHERE name = 'export') END
             WHERE account_id = ?1",
            &[&account_id, &cursor],
        )?;
        Ok(())
    }

    /// How many items of the desks `desks` (`None`: every desk) came after the
    /// account's last pull, counting at most `cap`: a range of the position index,
    /// whatever the size of the drop. Items being deleted are not counted.
    pub fn new_items(
        &self,
        account_id: &str,
        desks: Option<&[String]>,
        cap: u64,
    ) -> Result<u64, StoreError> {
        let count: i64 = self.db().value(
            concat!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM items
                 WHERE position > (SELECT pulled FROM journalists WHERE account_id = ?1)
                 AND deleting = 0 AND ",
                in_scope!(),
                " LIMIT ?2) AS counted"
            ),
            &[
                &account_id,
                &i64::try_from(cap).unwrap_or(i64::MAX),
                &desk_scope(desks),
            ],
        )?;
        Ok(count.unsigned_abs())
    }
}

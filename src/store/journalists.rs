//! Journalist accounts: a name, the account id a token names, and the token secret's
//! hash.

use std::time::SystemTime;

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};
use crate::time;

impl Store {
    /// Records a journalist account: its token's account id and secret hash.
    pub fn add_journalist(
        &self,
        name: &str,
        account_id: &str,
        secret_hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        let day = time::day(SystemTime::now());
        let result = self.db().execute(
            "INSERT INTO journalists (name, account_id, token_hash, day) VALUES (?1, ?2, ?3, ?4)",
            params![name, account_id, &secret_hash[..], day],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::JournalistExists)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account with this id: its name and secret hash.
    pub fn journalist(&self, account_id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT name, token_hash FROM journalists WHERE account_id = ?1",
                [account_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Every account: (name, day created).
    pub fn journalists(&self) -> Result<Vec<(String, String)>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT name, day FROM journalists ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Removes an account; its token stops working at once. Returns whether it existed.
    pub fn remove_journalist(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .db()
            .execute("DELETE FROM journalists WHERE name = ?1", [name])?
            > 0)
    }
}

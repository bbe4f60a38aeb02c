//! Retention: what the server deletes by itself (`[retention]`, off by default), each
//! deletion done as a journalist's is (marks, blobs, rows, WAL scrub). Days are UTC
//! days, compared as `YYYY-MM-DD` strings; `today` is passed in, so the sweep can be
//! run as of any day (`agedrop retention --as-of`). SECURITY.md, "Retention".

use std::time::SystemTime;

use super::db::Sql;
use super::{Store, StoreError};
use crate::config::Retention;
use crate::time;

/// What one sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Items deleted because every account of their desk pulled them long enough ago.
    pub pulled_items: usize,
    /// Items deleted because they arrived long enough ago.
    pub old_items: usize,
    /// Sources deleted (with their items and replies) for not logging in.
    pub inactive_sources: usize,
}

impl Store {
    /// Records that a source was active today (a login, a follow-up), when the policy
    /// deletes inactive sources; otherwise records nothing (the day of a login is
    /// metadata the server keeps only when it must).
    pub fn saw_source(&self, source_id: &str, policy: &Retention) -> Result<(), StoreError> {
        if policy.inactive_sources_after_days.is_none() {
            return Ok(());
        }
        self.db().execute(
            "UPDATE sources SET seen_day = ?2 WHERE id = ?1 AND seen_day IS DISTINCT FROM ?2",
            &[&source_id, &time::day(SystemTime::now())],
        )?;
        Ok(())
    }

    /// Applies `policy` as of `today` (the start of a UTC day): marks items every
    /// account of their desk has now pulled, then deletes what the rules say.
    pub fn sweep(&self, policy: &Retention, today: SystemTime) -> Result<Swept, StoreError> {
        let day = time::day(today);
        let mut swept = Swept::default();
        if policy.is_off() {
            return Ok(swept);
        }
        {
            let mut db = self.db();
            // Pulled by every account that sees the item's desk: its position is at
            // or below each such account's last whole pull. A desk no account sees is
            // never "pulled by every account".
            db.execute(
                "UPDATE items SET pulled_day = ?1
                 WHERE pulled_day IS NULL AND deleting = 0 AND position <= (
                     SELECT MIN(j.pulled) FROM journalists j, sources s
                     WHERE s.id = items.source_id
                       AND (j.desks IS NULL OR instr(j.desks, ',' || s.desk || ',') > 0))",
                &[&day],
            )?;
            if policy.inactive_sources_after_days.is_some() {
                // Sources never seen since the rule was set count from today.
                db.execute(
                    "UPDATE sources SET seen_day = ?1 WHERE seen_day IS NULL",
                    &[&day],
                )?;
            }
        }
        let due = |days: Option<u32>, sql: &'static str| -> Result<Vec<String>, StoreError> {
            match days {
                Some(days) => self.db().ids(sql, &[&time::days_before(today, days)]),
                None => Ok(Vec::new()),
            }
        };
        let sources = due(
            policy.inactive_sources_after_days,
            "SELECT id FROM sources WHERE seen_day < ?1",
        )?;
        swept.inactive_sources = self.delete_each(&sources, Store::delete_source)?;
        let old = due(
            policy.items_after_days,
            "SELECT id FROM items WHERE day < ?1 AND deleting = 0",
        )?;
        swept.old_items = self.delete_each(&old, Store::delete_item)?;
        let pulled = due(
            policy.pulled_items_after_days,
            "SELECT id FROM items WHERE pulled_day < ?1 AND deleting = 0",
        )?;
        swept.pulled_items = self.delete_each(&pulled, Store::delete_item)?;
        Ok(swept)
    }

    /// Deletes each of `ids` with `delete`; how many were there to delete.
    fn delete_each(
        &self,
        ids: &[String],
        delete: fn(&Store, &str) -> Result<bool, StoreError>,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for id in ids {
            if delete(self, id)? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

//! Start-up's repair: a crash leaves temp files, rows whose blobs never arrived or
//! whose deletion was cut short, and blobs no row refers to. [`Store::open`] runs
//! this before serving.

use std::fs;

use super::blobs::{item_names, reply_name};
use super::db::Sql;
use super::{io_error, Store, StoreError, ITEM_SUFFIX, META_SUFFIX, ORPHANS, REPLY_SUFFIX};

/// What start-up found and repaired (counts only: see SECURITY.md on logging).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Temp files of interrupted uploads, removed (in a bucket: unfinished uploads,
    /// aborted).
    pub temp_files_removed: usize,
    /// Item rows whose blobs were missing, removed.
    pub rows_without_blobs: usize,
    /// Blobs no row refers to (a crash between rename and commit, or a database
    /// restored from an older backup), moved to `orphans/`.
    pub blobs_without_rows: usize,
}

impl Store {
    /// Removes leftover temp files, item rows without blobs and blobs without rows.
    pub(super) fn reconcile(&self) -> Result<Reconciled, StoreError> {
        let mut report = Reconciled::default();
        for entry in fs::read_dir(&self.tmp).map_err(io_error("list tmp/", &self.tmp))? {
            let entry = entry.map_err(io_error("list tmp/", &self.tmp))?;
            fs::remove_file(entry.path()).map_err(io_error("remove a temp file", &self.tmp))?;
            report.temp_files_removed += 1;
        }
        report.temp_files_removed += self.blobs.clean_up_bucket()?;

        let (mut on_disk, settling) = self.blobs.list()?;

        let mut db = self.db();
        let dropped = db.write(|tx| {
            // Deletions a crash cut short are finished first: their blobs go, not to orphans/.
            let unfinished = tx.ids("SELECT id FROM items WHERE deleting = 1", &[])?;
            let unfinished_replies = tx.ids("SELECT id FROM replies WHERE deleting = 1", &[])?;
            for id in &unfinished {
                let (item, meta) = item_names(id);
                for name in [item, meta] {
                    self.blobs.remove(&name)?;
                    on_disk.remove(&name);
                }
                tx.execute("DELETE FROM items WHERE id = ?1", &[id])?;
            }
            for id in &unfinished_replies {
                let name = reply_name(id);
                self.blobs.remove(&name)?;
                on_disk.remove(&name);
                tx.execute("DELETE FROM replies WHERE id = ?1", &[id])?;
            }
            let mut dropped = !unfinished.is_empty() || !unfinished_replies.is_empty();
            let ids = tx.ids("SELECT id FROM items", &[])?;
            let replies = tx.ids("SELECT id FROM replies", &[])?;
            let present = ids
                .iter()
                .filter(|id| on_disk.contains(&format!("{id}{ITEM_SUFFIX}")))
                .chain(
                    replies
                        .iter()
                        .filter(|id| on_disk.contains(&format!("{id}{REPLY_SUFFIX}"))),
                )
                .count();
            let rows = ids.len() + replies.len();
            if rows > 0 && present == 0 {
                // A crash drops at most the rows of deletions in progress, never all of
                // them: an empty blobs/ is an unmounted or lost volume, not a crash.
                return Err(StoreError::BlobsMissing {
                    dir: self.blobs.place().to_owned(),
                    rows,
                });
            }
            for id in ids {
                let item = format!("{id}{ITEM_SUFFIX}");
                let meta = format!("{id}{META_SUFFIX}");
                let has_item = on_disk.contains(&item);
                let has_meta = on_disk.contains(&meta);
                if has_item && has_meta {
                    on_disk.remove(&item);
                    on_disk.remove(&meta);
                } else {
                    // The row goes; whichever blob is left is kept in orphans/ below.
                    tx.execute("DELETE FROM items WHERE id = ?1", &[&id])?;
                    report.rows_without_blobs += 1;
                    dropped = true;
                }
            }
            for id in replies {
                if !on_disk.remove(&format!("{id}{REPLY_SUFFIX}")) {
                    tx.execute("DELETE FROM replies WHERE id = ?1", &[&id])?;
                    report.rows_without_blobs += 1;
                    dropped = true;
                }
            }
            Ok(dropped)
        })?;
        if dropped {
            self.scrub(&db);
        }
        drop(db);

        let orphans = self.dir.join(ORPHANS);
        for name in on_disk {
            if settling.contains(&name) {
                continue; // another node's upload, about to be committed
            }
            self.blobs.orphan(&name, &orphans)?;
            if name.ends_with(META_SUFFIX) || !name.ends_with(ITEM_SUFFIX) {
                continue; // count items and replies, not metadata records or strays
            }
            report.blobs_without_rows += 1;
        }
        Ok(report)
    }
}

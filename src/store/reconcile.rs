//! Start-up's repair: a crash leaves temp files, rows whose blobs never arrived or
//! whose deletion was cut short, and blobs no row refers to. [`Store::open`] runs
//! this before serving.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::DirBuilderExt;

use rusqlite::TransactionBehavior;

use super::blobs::unlink;
use super::{
    io_error, query_ids, Store, StoreError, ITEM_SUFFIX, META_SUFFIX, ORPHANS, REPLY_SUFFIX,
};

/// What start-up found and repaired (counts only: see SECURITY.md on logging).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Temp files of interrupted uploads, removed.
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

        let mut on_disk = HashSet::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_error("list blobs/", &self.blobs))? {
            let entry = entry.map_err(io_error("list blobs/", &self.blobs))?;
            if let Some(name) = entry.file_name().to_str() {
                on_disk.insert(name.to_owned());
            }
        }

        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Deletions a crash cut short are finished first: their blobs go, not to orphans/.
        let unfinished = query_ids(&tx, "SELECT id FROM items WHERE deleting = 1")?;
        let unfinished_replies = query_ids(&tx, "SELECT id FROM replies WHERE deleting = 1")?;
        for id in &unfinished {
            let (item, meta) = self.item_paths(id);
            unlink(&item)?;
            unlink(&meta)?;
            on_disk.remove(&format!("{id}{ITEM_SUFFIX}"));
            on_disk.remove(&format!("{id}{META_SUFFIX}"));
            tx.execute("DELETE FROM items WHERE id = ?1", [id])?;
        }
        for id in &unfinished_replies {
            unlink(&self.reply_path(id))?;
            on_disk.remove(&format!("{id}{REPLY_SUFFIX}"));
            tx.execute("DELETE FROM replies WHERE id = ?1", [id])?;
        }
        let mut dropped = !unfinished.is_empty() || !unfinished_replies.is_empty();
        let ids = query_ids(&tx, "SELECT id FROM items")?;
        let replies = query_ids(&tx, "SELECT id FROM replies")?;
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
                dir: self.blobs.clone(),
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
                tx.execute("DELETE FROM items WHERE id = ?1", [&id])?;
                report.rows_without_blobs += 1;
                dropped = true;
            }
        }
        for id in replies {
            if !on_disk.remove(&format!("{id}{REPLY_SUFFIX}")) {
                tx.execute("DELETE FROM replies WHERE id = ?1", [&id])?;
                report.rows_without_blobs += 1;
                dropped = true;
            }
        }
        tx.commit()?;
        if dropped {
            self.scrub(&db);
        }
        drop(db);

        if !on_disk.is_empty() {
            let orphans = self.dir.join(ORPHANS);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&orphans)
                .map_err(io_error("create orphans/", &orphans))?;
            for name in on_disk {
                let path = self.blobs.join(&name);
                fs::rename(&path, orphans.join(&name))
                    .map_err(io_error("move an orphaned blob to orphans/", &path))?;
                if name.ends_with(META_SUFFIX) || !name.ends_with(ITEM_SUFFIX) {
                    continue; // count items and replies, not metadata records or strays
                }
                report.blobs_without_rows += 1;
            }
        }
        Ok(report)
    }
}

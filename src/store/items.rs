//! Items: committing sealed items (and the source a first submission creates) and
//! deleting them.

use std::collections::hash_map::Entry;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use rusqlite::{params, TransactionBehavior};

use super::blobs::{placing, sync_dir, unlink, SealedItem};
use super::sources::{unused_label, SourceKeyRecord};
use super::{io_error, next_order, source_row, Store, StoreError};
use super::{ID_BYTES, ITEM_SUFFIX, META_SUFFIX};
use crate::{random, time};

/// Whose items these are.
pub enum Owner {
    /// A first submission: the commit creates the source with these keys, in this desk.
    NewSource {
        /// The source's keys.
        keys: SourceKeyRecord,
        /// The id of the desk it chose (or the only one).
        desk: String,
    },
    /// A source that exists (a follow-up).
    Source(String),
}

impl Store {
    /// Makes sealed items permanent, all or none: renames them into `blobs/`, fsyncs the
    /// directory, then records them (and, for [`Owner::NewSource`], the new source) in
    /// one transaction. Returns the source id.
    pub fn commit(&self, owner: Owner, items: Vec<SealedItem>) -> Result<String, StoreError> {
        placing(|placed| self.place_and_record(owner, items, placed))
    }

    fn place_and_record(
        &self,
        owner: Owner,
        items: Vec<SealedItem>,
        placed: &mut Vec<PathBuf>,
    ) -> Result<String, StoreError> {
        let mut rows = Vec::with_capacity(items.len());
        for mut item in items {
            let id = random::hex_id(ID_BYTES);
            for (blob, suffix) in [(&mut item.blob, ITEM_SUFFIX), (&mut item.meta, META_SUFFIX)] {
                let target = self.blobs.join(format!("{id}{suffix}"));
                blob.place(&target)?;
                placed.push(target);
            }
            rows.push((id, item.kind, item.size, item.meta_size));
        }
        sync_dir(&self.blobs)?;

        let day = time::day(SystemTime::now());
        let mut db = self.db();
        // IMMEDIATE: this transaction reads before it writes, and a deferred one would
        // fail at once (not wait) if another process committed in between.
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let source_id = match owner {
            Owner::NewSource { keys, desk } => {
                let id = random::hex_id(ID_BYTES);
                let label = unused_label(&tx)?;
                tx.execute(
                    "INSERT INTO sources (id, day, label, lookup_id, kdf, recipient, wrapped_key, desk)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        id,
                        day,
                        label,
                        &keys.lookup_id[..],
                        keys.kdf,
                        keys.recipient,
                        keys.wrapped_key,
                        desk
                    ],
                )?;
                id
            }
            Owner::Source(id) => {
                if !source_row(&tx, &id)? {
                    return Err(StoreError::UnknownSource);
                }
                id
            }
        };
        for (id, kind, size, meta_size) in rows {
            let (seq, position) = next_order(&tx, &source_id)?;
            tx.execute(
                "INSERT INTO items (id, source_id, kind, seq, day, size, meta_size, position)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    source_id,
                    kind.as_str(),
                    seq,
                    day,
                    size as i64,
                    meta_size as i64,
                    position
                ],
            )?;
        }
        tx.commit()?;
        Ok(source_id)
    }

    /// Deletes an item: marks its row, removes its blobs, then the row, and scrubs the
    /// WAL. A crash in between leaves a marked row without blobs, which start-up
    /// removes. Returns whether it existed.
    pub fn delete_item(&self, item_id: &str) -> Result<bool, StoreError> {
        // The database lock is held throughout, so no commit or export in this process
        // interleaves with the deletion.
        let db = self.db();
        let marked = db.execute("UPDATE items SET deleting = 1 WHERE id = ?1", [item_id])?;
        if marked == 0 {
            return Ok(false);
        }
        self.remove_item_blobs(&[item_id.to_owned()], &[])?;
        db.execute("DELETE FROM items WHERE id = ?1", [item_id])?;
        self.scrub(&db);
        Ok(true)
    }

    /// Removes the blobs of these items and replies. A blob that an export is
    /// streaming is moved to `tmp/` instead and removed when that export ends, so a
    /// bundle is never cut short (start-up empties `tmp/` after a crash).
    pub(super) fn remove_item_blobs(
        &self,
        items: &[String],
        replies: &[String],
    ) -> Result<(), StoreError> {
        let blobs = self.blob_paths(
            items.iter().map(String::as_str),
            replies.iter().map(String::as_str),
        );
        let mut exports = self.exports.lock().unwrap_or_else(|p| p.into_inner());
        for path in blobs {
            if !exports.streaming.contains_key(&path) {
                unlink(&path)?;
                continue;
            }
            // Recorded as each blob moves, so a failure half-way (or a retried
            // deletion) never hides a moved blob from the export.
            if let Entry::Vacant(slot) = exports.parked.entry(path) {
                let parked = self.tmp.join(format!("{}.tmp", random::hex_id(ID_BYTES)));
                match fs::rename(slot.key(), &parked) {
                    Ok(()) => {
                        slot.insert(parked);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("move a deleted blob aside", slot.key())(e)),
                }
            }
        }
        drop(exports);
        sync_dir(&self.blobs)
    }
}

//! Items: committing sealed items (and the source a first submission creates) and
//! deleting them.

use std::collections::hash_map::Entry;
use std::time::SystemTime;

use super::blobs::{blob_names, placing, SealedItem};
use super::db::Sql;
use super::sources::{unused_label, SourceKeyRecord};
use super::{next_order, source_row, Store, StoreError, ID_BYTES};
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
    /// Makes sealed items permanent, all or none: puts their blobs in place (renamed
    /// into `blobs/`, the directory fsynced; in a bucket they are there already), then
    /// records them (and, for [`Owner::NewSource`], the new source) in one transaction.
    /// Returns the source id.
    pub fn commit(&self, owner: Owner, items: Vec<SealedItem>) -> Result<String, StoreError> {
        placing(&self.blobs, |placed| {
            self.place_and_record(owner, items, placed)
        })
    }

    fn place_and_record(
        &self,
        owner: Owner,
        items: Vec<SealedItem>,
        placed: &mut Vec<String>,
    ) -> Result<String, StoreError> {
        let mut rows = Vec::with_capacity(items.len());
        for mut item in items {
            for blob in [&mut item.blob, &mut item.meta] {
                blob.place(&self.blobs)?;
                placed.push(blob.name().to_owned());
            }
            rows.push((item.id, item.kind, item.size, item.meta_size));
        }
        self.blobs.sync()?;

        let day = time::day(SystemTime::now());
        self.db().write(|tx| {
            let source_id = match owner {
                Owner::NewSource { keys, desk } => {
                    let id = random::hex_id(ID_BYTES);
                    let label = unused_label(tx)?;
                    tx.execute(
                        "INSERT INTO sources (id, day, label, lookup_id, kdf, recipient, wrapped_key, desk)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        &[
                            &id,
                            &day,
                            &label,
                            &&keys.lookup_id[..],
                            &keys.kdf,
                            &keys.recipient,
                            &keys.wrapped_key,
                            &desk,
                        ],
                    )?;
                    id
                }
                Owner::Source(id) => {
                    if !source_row(tx, &id)? {
                        return Err(StoreError::UnknownSource);
                    }
                    id
                }
            };
            for (id, kind, size, meta_size) in &rows {
                let (seq, position) = next_order(tx, &source_id)?;
                tx.execute(
                    "INSERT INTO items (id, source_id, kind, seq, day, size, meta_size, position)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    &[
                        id,
                        &source_id,
                        &kind.as_str(),
                        &seq,
                        &day,
                        &(*size as i64),
                        &(*meta_size as i64),
                        &position,
                    ],
                )?;
            }
            Ok(source_id)
        })
    }

    /// Deletes an item: marks its row, removes its blobs, then the row, and scrubs the
    /// WAL. A crash in between leaves a marked row without blobs, which start-up
    /// removes. Returns whether it existed.
    pub fn delete_item(&self, item_id: &str) -> Result<bool, StoreError> {
        // The database lock is held throughout, so no commit or export in this process
        // interleaves with the deletion.
        let mut db = self.db();
        let marked = db.execute("UPDATE items SET deleting = 1 WHERE id = ?1", &[&item_id])?;
        if marked == 0 {
            return Ok(false);
        }
        self.remove_item_blobs(&[item_id.to_owned()], &[])?;
        db.execute("DELETE FROM items WHERE id = ?1", &[&item_id])?;
        self.scrub(&db);
        Ok(true)
    }

    /// Removes the blobs of these items and replies. A blob that an export is
    /// streaming is parked instead (moved to `tmp/`, or left in the bucket with a
    /// marker) and removed when that export ends, so a bundle is never cut short
    /// (after a crash, start-up empties `tmp/` and removes the bucket's marked blobs).
    pub(super) fn remove_item_blobs(
        &self,
        items: &[String],
        replies: &[String],
    ) -> Result<(), StoreError> {
        let names = blob_names(
            items.iter().map(String::as_str),
            replies.iter().map(String::as_str),
        );
        let mut exports = self.exports.lock().unwrap_or_else(|p| p.into_inner());
        for name in names {
            if !exports.streaming.contains_key(&name) {
                self.blobs.remove(&name)?;
                continue;
            }
            // Recorded as each blob moves, so a failure half-way (or a retried
            // deletion) never hides a moved blob from the export.
            if let Entry::Vacant(slot) = exports.parked.entry(name) {
                if let Some(parked) = self.blobs.park(slot.key(), &self.tmp)? {
                    slot.insert(parked);
                }
            }
        }
        drop(exports);
        self.blobs.sync()
    }
}

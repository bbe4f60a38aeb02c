//! Replies: a journalist's ciphertext for a source, stored atomically like items (and
//! numbered and exported with them), and listed, read and deleted by the source's own
//! session.

use std::io;
use std::time::SystemTime;

use super::blobs::{placing, reply_name};
use super::db::Sql;
use super::{io_error, next_order, next_position, source_row, Store, StoreError, ID_BYTES};
use crate::{random, time};

/// Inodes and bytes no reply may take: what the WAL, a temp file and a restart need
/// when uploads have already been refused for want of space (SECURITY.md, "Limits").
pub const RESERVED_INODES: u64 = 64;
/// See [`RESERVED_INODES`].
pub const RESERVED_BYTES: u64 = 8 * 1024 * 1024;

/// A reply as the inbox lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyRecord {
    /// Random id.
    pub id: String,
    /// UTC day it was stored.
    pub day: String,
}

impl Store {
    /// Refuses with [`StoreError::NoRoom`] unless a reply still leaves
    /// [`RESERVED_INODES`] inodes and [`RESERVED_BYTES`] bytes free: uploads stop well
    /// before that (`limits.min_free_*`), so replies, the WAL and a restart keep working.
    fn check_room_for_reply(&self, size: u64) -> Result<(), StoreError> {
        let free = self.free_space()?;
        if free.inodes < RESERVED_INODES || free.bytes < RESERVED_BYTES.saturating_add(size) {
            return Err(StoreError::NoRoom);
        }
        Ok(())
    }

    /// Stores a reply's ciphertext for a source, atomically. Returns its id.
    pub fn add_reply(&self, source_id: &str, ciphertext: &[u8]) -> Result<String, StoreError> {
        let mut ids = self.add_replies(&[(source_id, ciphertext)])?;
        Ok(ids.remove(0))
    }

    /// Stores replies (source id, ciphertext), all or none: each is written to `tmp/`
    /// and fsynced, all are renamed into `blobs/` and the directory fsynced, then one
    /// transaction records them, each with its source's next order (shared with the
    /// source's items) and the next export position. Returns their ids, in order.
    pub fn add_replies(&self, replies: &[(&str, &[u8])]) -> Result<Vec<String>, StoreError> {
        let total = replies
            .iter()
            .map(|(_, ciphertext)| ciphertext.len() as u64)
            .fold(0, u64::saturating_add);
        self.check_room_for_reply(total)?;
        placing(&self.blobs, |placed| {
            let mut rows = Vec::with_capacity(replies.len());
            for &(source_id, ciphertext) in replies {
                let id = random::hex_id(ID_BYTES);
                let mut blob = self.new_blob(reply_name(&id))?;
                io::Write::write_all(&mut blob, ciphertext)
                    .map_err(io_error("write a reply", blob.location()))?;
                let size = blob.seal()?;
                blob.place(&self.blobs)?;
                placed.push(blob.name().to_owned());
                rows.push((id, source_id, size));
            }
            self.blobs.sync()?;

            let day = time::day(SystemTime::now());
            // A write transaction, as for items: it reads the counters before it
            // writes them.
            self.db().write(|tx| {
                for (id, source_id, size) in &rows {
                    if !source_row(tx, source_id)? {
                        return Err(StoreError::UnknownSource);
                    }
                    let (seq, position) = next_order(tx, source_id)?;
                    tx.execute(
                        "INSERT INTO replies (id, source_id, day, size, seq, position)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        &[id, source_id, &day, &(*size as i64), &seq, &position],
                    )?;
                }
                Ok(())
            })?;
            Ok(rows.into_iter().map(|(id, _, _)| id).collect())
        })
    }

    /// A source's replies, newest first.
    pub fn replies(&self, source_id: &str) -> Result<Vec<ReplyRecord>, StoreError> {
        // Positions grow with each reply stored, as SQLite's rowids did before.
        self.db().rows(
            "SELECT id, day FROM replies WHERE source_id = ?1 AND deleting = 0 ORDER BY position DESC",
            &[&source_id],
            |r| {
                Ok(ReplyRecord {
                    id: r.get(0)?,
                    day: r.get(1)?,
                })
            },
        )
    }

    /// A reply's ciphertext, if it is at most `max` bytes. Read without touching the
    /// file's access time, which would record when the source logged in.
    pub fn read_reply(&self, reply_id: &str, max: u64) -> Result<Vec<u8>, StoreError> {
        let place = self.blobs.place();
        let reader = self
            .blobs
            .open(&reply_name(reply_id), None)
            .map_err(io_error("open a reply", place))?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(reader, max), &mut bytes)
            .map_err(io_error("read a reply", place))?;
        Ok(bytes)
    }

    /// Deletes a reply if it belongs to `source_id` (the source deleting it from its
    /// inbox). One transaction marks the row and records the deletion for the next
    /// export: the source, the reply's order and a new export position, nothing else
    /// (SECURITY.md, "What a seized disk does not give"). Then the blob goes (or waits
    /// in `tmp/` for an export streaming it), the row goes and the WAL is scrubbed.
    /// The record is made with the mark, not with the row's removal: from the mark on
    /// the deletion happens even if a crash cuts it short (start-up finishes it), so the
    /// newsroom must hear of it either way. Returns whether it did.
    pub fn delete_reply(&self, source_id: &str, reply_id: &str) -> Result<bool, StoreError> {
        let mut db = self.db();
        let found = db.write(|tx| {
            let row: Option<(i64, bool)> = tx.optional(
                "SELECT seq, deleting FROM replies WHERE id = ?1 AND source_id = ?2",
                &[&reply_id, &source_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let Some((seq, marked)) = row else {
                return Ok(false);
            };
            if !marked {
                // A deletion retried after a failure is recorded once.
                tx.execute(
                    "UPDATE replies SET deleting = 1 WHERE id = ?1",
                    &[&reply_id],
                )?;
                let position = next_position(tx)?;
                tx.execute(
                    "INSERT INTO deleted_replies (source_id, seq, position) VALUES (?1, ?2, ?3)",
                    &[&source_id, &seq, &position],
                )?;
            }
            Ok(true)
        })?;
        if !found {
            return Ok(false);
        }
        self.remove_item_blobs(&[], &[reply_id.to_owned()])?;
        db.execute("DELETE FROM replies WHERE id = ?1", &[&reply_id])?;
        self.scrub(&db);
        Ok(true)
    }
}

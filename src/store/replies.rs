//! Replies: a journalist's ciphertext for a source, stored atomically like items, and
//! listed, read and deleted by the source's own session.

use std::fs;
use std::io;
use std::time::SystemTime;

use rusqlite::params;

use super::blobs::{open_for_reading, sync_dir};
use super::{io_error, source_row, Store, StoreError, ID_BYTES};
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
        self.check_room_for_reply(ciphertext.len() as u64)?;
        let mut blob = self.temp_blob()?;
        io::Write::write_all(blob.file(), ciphertext)
            .map_err(io_error("write a reply", &self.tmp))?;
        let size = blob.seal()?;
        let id = random::hex_id(ID_BYTES);
        let target = self.reply_path(&id);
        blob.place(&target)?;
        let recorded = sync_dir(&self.blobs).and_then(|()| {
            let db = self.db();
            if !source_row(&db, source_id)? {
                return Err(StoreError::UnknownSource);
            }
            db.execute(
                "INSERT INTO replies (id, source_id, day, size) VALUES (?1, ?2, ?3, ?4)",
                params![id, source_id, time::day(SystemTime::now()), size as i64],
            )?;
            Ok(())
        });
        if let Err(err) = recorded {
            let _ = fs::remove_file(&target);
            return Err(err);
        }
        Ok(id)
    }

    /// A source's replies, newest first.
    pub fn replies(&self, source_id: &str) -> Result<Vec<ReplyRecord>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id, day FROM replies WHERE source_id = ?1 AND deleting = 0 ORDER BY rowid DESC",
        )?;
        let replies = stmt
            .query_map([source_id], |r| {
                Ok(ReplyRecord {
                    id: r.get(0)?,
                    day: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(replies)
    }

    /// A reply's ciphertext, if it is at most `max` bytes. Read without touching the
    /// file's access time, which would record when the source logged in.
    pub fn read_reply(&self, reply_id: &str, max: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.reply_path(reply_id);
        let file = open_for_reading(&path).map_err(io_error("open a reply", &path))?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, max), &mut bytes)
            .map_err(io_error("read a reply", &path))?;
        Ok(bytes)
    }

    /// Deletes a reply if it belongs to `source_id`: marks the row, removes the blob,
    /// removes the row, scrubs the WAL. Returns whether it did.
    pub fn delete_reply(&self, source_id: &str, reply_id: &str) -> Result<bool, StoreError> {
        let db = self.db();
        let marked = db.execute(
            "UPDATE replies SET deleting = 1 WHERE id = ?1 AND source_id = ?2",
            params![reply_id, source_id],
        )?;
        if marked == 0 {
            return Ok(false);
        }
        self.remove_item_blobs(&[], &[reply_id.to_owned()])?;
        db.execute("DELETE FROM replies WHERE id = ?1", [reply_id])?;
        self.scrub(&db);
        Ok(true)
    }
}

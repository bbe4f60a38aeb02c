//! Sources: their keys and labels, finding the source a code opens, code rotation, and
//! deleting a source with everything it has.

use super::db::{Sql, Tx};
use super::{source_row, Store, StoreError};
use crate::{label, random};

/// What the database keeps of a source's keys: nothing that opens anything without
/// the source's code.
pub struct SourceKeyRecord {
    /// `HKDF(Argon2id(code, instance secret))`, the lookup label.
    pub lookup_id: [u8; 32],
    /// The Argon2 parameters used, as [`crate::code::KdfParams::id`].
    pub kdf: String,
    /// The source's `age1…` recipient, for replies.
    pub recipient: String,
    /// The source's identity, age-encrypted to its code key.
    pub wrapped_key: Vec<u8>,
}

/// A code rotation waiting for the source's confirmation.
pub struct PendingRotation {
    /// The new code, sealed to the source's own recipient.
    pub sealed_code: Vec<u8>,
    /// The new code's lookup id.
    pub lookup_id: [u8; 32],
}

/// A source a code opened.
pub struct FoundSource {
    /// Its id.
    pub id: String,
    /// Its identity, wrapped under the key of the code that matched.
    pub wrapped_key: Vec<u8>,
    /// The code matched a pending rotation (the new code), not the current one.
    pub pending: bool,
}

impl Store {
    /// Whether a source exists.
    pub fn source_exists(&self, source_id: &str) -> Result<bool, StoreError> {
        source_row(&mut *self.db(), source_id)
    }

    /// The source a code opens: the one whose current lookup id (derived with `kdf`)
    /// is `lookup_id`, or whose pending rotation has it.
    pub fn find_source(
        &self,
        kdf: &str,
        lookup_id: &[u8; 32],
    ) -> Result<Option<FoundSource>, StoreError> {
        self.db().optional(
            "SELECT id, wrapped_key, 0 FROM sources WHERE lookup_id = ?1 AND kdf = ?2
             UNION ALL
             SELECT id, pending_wrapped_key, 1 FROM sources
             WHERE pending_lookup_id = ?1 AND pending_kdf = ?2",
            &[&&lookup_id[..], &kdf],
            |r| {
                Ok(FoundSource {
                    id: r.get(0)?,
                    wrapped_key: r.get(1)?,
                    pending: r.get(2)?,
                })
            },
        )
    }

    /// The distinct Argon2 parameter sets of current and pending codes.
    pub fn kdfs_in_use(&self) -> Result<Vec<String>, StoreError> {
        self.db().ids(
            "SELECT kdf FROM sources WHERE kdf IS NOT NULL
             UNION SELECT pending_kdf FROM sources WHERE pending_kdf IS NOT NULL",
            &[],
        )
    }

    /// Starts a code rotation: stores the new code's keys beside the current ones, and
    /// the new code itself sealed to the source's own recipient (so a login with the
    /// old code can show it again). Both codes open the source until
    /// [`Store::finish_rotation`]. Only if the source still has `current_lookup_id` and
    /// no rotation pending: of two logins racing, one wins. Returns whether it did.
    pub fn begin_rotation(
        &self,
        source_id: &str,
        current_lookup_id: &[u8; 32],
        keys: &SourceKeyRecord,
        sealed_code: &[u8],
    ) -> Result<bool, StoreError> {
        let changed = self.db().execute(
            "UPDATE sources SET pending_lookup_id = ?1, pending_kdf = ?2,
                 pending_wrapped_key = ?3, pending_code = ?4
             WHERE id = ?5 AND lookup_id = ?6 AND pending_lookup_id IS NULL",
            &[
                &&keys.lookup_id[..],
                &keys.kdf,
                &keys.wrapped_key,
                &sealed_code,
                &source_id,
                &&current_lookup_id[..],
            ],
        )?;
        Ok(changed > 0)
    }

    /// The pending rotation of a source, if any.
    pub fn pending_rotation(&self, source_id: &str) -> Result<Option<PendingRotation>, StoreError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self.db().optional(
            "SELECT pending_code, pending_lookup_id FROM sources
             WHERE id = ?1 AND pending_lookup_id IS NOT NULL AND pending_code IS NOT NULL",
            &[&source_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(row.and_then(|(sealed_code, lookup)| {
            Some(PendingRotation {
                sealed_code,
                lookup_id: lookup.try_into().ok()?,
            })
        }))
    }

    /// Ends a rotation once the source has seen its new code: the new keys replace the
    /// old ones, and nothing of the old code's lookup id or wrapping is left in any
    /// file (see `Store::scrub`). Only if `pending_lookup_id` is still the pending one.
    /// Returns whether it changed anything.
    pub fn finish_rotation(
        &self,
        source_id: &str,
        pending_lookup_id: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let mut db = self.db();
        let changed = db.execute(
            "UPDATE sources SET lookup_id = pending_lookup_id, kdf = pending_kdf,
                 wrapped_key = pending_wrapped_key, pending_lookup_id = NULL,
                 pending_kdf = NULL, pending_wrapped_key = NULL, pending_code = NULL
             WHERE id = ?1 AND pending_lookup_id = ?2",
            &[&source_id, &&pending_lookup_id[..]],
        )?;
        if changed > 0 {
            self.scrub(&db);
        }
        Ok(changed > 0)
    }

    /// Deletes a source with its items, replies, label and keys. The database lock is
    /// held throughout: a follow-up or reply committed meanwhile either came before
    /// (and is deleted with the rest) or finds the source gone (and removes its files).
    pub fn delete_source(&self, source_id: &str) -> Result<bool, StoreError> {
        let mut db = self.db();
        let marked = db.write(|tx| {
            if !source_row(tx, source_id)? {
                return Ok(None);
            }
            tx.execute(
                "UPDATE items SET deleting = 1 WHERE source_id = ?1",
                &[&source_id],
            )?;
            tx.execute(
                "UPDATE replies SET deleting = 1 WHERE source_id = ?1",
                &[&source_id],
            )?;
            let items = tx.ids("SELECT id FROM items WHERE source_id = ?1", &[&source_id])?;
            let replies = tx.ids("SELECT id FROM replies WHERE source_id = ?1", &[&source_id])?;
            Ok(Some((items, replies)))
        })?;
        let Some((items, replies)) = marked else {
            return Ok(false);
        };
        self.remove_item_blobs(&items, &replies)?;
        // ON DELETE CASCADE takes the item and reply rows with it.
        db.execute("DELETE FROM sources WHERE id = ?1", &[&source_id])?;
        self.scrub(&db);
        Ok(true)
    }
}

/// A random label no source has yet.
pub(super) fn unused_label(tx: &mut Tx<'_>) -> Result<String, StoreError> {
    let mut taken = |label: &str| tx.exists("SELECT 1 FROM sources WHERE label = ?1", &[&label]);
    for _ in 0..32 {
        let label = label::random();
        if !taken(&label)? {
            return Ok(label);
        }
    }
    // 65,536 two-word labels run out eventually: add a random suffix.
    loop {
        let label = format!("{}-{}", label::random(), random::hex_id(2));
        if !taken(&label)? {
            return Ok(label);
        }
    }
}

impl Store {
    /// The desk a source belongs to; `None` if there is no such source.
    pub fn source_desk(&self, source_id: &str) -> Result<Option<String>, StoreError> {
        self.db().optional(
            "SELECT desk FROM sources WHERE id = ?1",
            &[&source_id],
            |r| r.get(0),
        )
    }

    /// The desk of an item's source; `None` if there is no such item.
    pub fn item_desk(&self, item_id: &str) -> Result<Option<String>, StoreError> {
        self.db().optional(
            "SELECT s.desk FROM items i JOIN sources s ON s.id = i.source_id WHERE i.id = ?1",
            &[&item_id],
            |r| r.get(0),
        )
    }

    /// Every desk that has sources, with how many.
    pub fn desks_in_use(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut rows = self.db().rows(
            "SELECT desk, COUNT(*) FROM sources GROUP BY desk",
            &[],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        // Sorted here, by bytes: the two databases' collations may order text apart.
        rows.sort();
        Ok(rows)
    }
}

//! Exports: the items, replies and deletions of replies after a cursor with their
//! sources, for `pull`, and the bookkeeping that keeps an export's blobs readable while
//! they are deleted.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;

use super::blobs::{blob_names, item_names, reply_name, BlobReader, ItemBlob, Parked};
use super::db::Sql;
use super::ItemKind;
use super::{Store, StoreError};

/// The SQL condition "the row's source is in the account's desks", for a query whose
/// parameter `?3` is [`desk_scope`]'s text (NULL: every desk). PostgreSQL's schema
/// defines `instr` as SQLite has it; the CAST tells PostgreSQL the parameter's type
/// where `IS NULL` alone does not.
macro_rules! in_scope {
    () => {
        "source_id IN (SELECT id FROM sources
         WHERE CAST(?3 AS TEXT) IS NULL OR instr(?3, ',' || desk || ',') > 0)"
    };
}
pub(super) use in_scope;

/// One item in an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportItem {
    /// Its position in the export order (the cursor after it).
    pub position: i64,
    /// Random id.
    pub id: String,
    /// The source's id.
    pub source_id: String,
    /// `message` or `file`.
    pub kind: ItemKind,
    /// Order within the source, from 1.
    pub seq: i64,
    /// UTC day stored.
    pub day: String,
    /// Ciphertext bytes.
    pub size: u64,
    /// Metadata ciphertext bytes.
    pub meta_size: u64,
}

/// A source in an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSource {
    /// Random id.
    pub id: String,
    /// Journalist-facing label.
    pub label: String,
    /// `age1…` recipient for replies.
    pub recipient: String,
    /// The desk it belongs to.
    pub desk: String,
}

/// A reply the newsroom sent, in an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReply {
    /// Its position in the export order.
    pub position: i64,
    /// Random id.
    pub id: String,
    /// The source it was sent to.
    pub source_id: String,
    /// Order within the source, shared with the source's items.
    pub seq: i64,
    /// UTC day stored.
    pub day: String,
    /// Ciphertext bytes.
    pub size: u64,
}

/// A reply its source deleted, in an export: all the server keeps of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportDeletedReply {
    /// The position of the deletion in the export order.
    pub position: i64,
    /// The source that deleted it.
    pub source_id: String,
    /// The reply's order within the source.
    pub seq: i64,
}

/// What an export holds. While it lives, its items and replies can be read even if
/// they are deleted meanwhile (their blobs are removed when the last export ends).
pub struct Export {
    /// Items, oldest first.
    pub items: Vec<ExportItem>,
    /// The newsroom's replies, oldest first.
    pub replies: Vec<ExportReply>,
    /// Replies their sources deleted, oldest first.
    pub deleted_replies: Vec<ExportDeletedReply>,
    /// The sources of all of them.
    pub sources: Vec<ExportSource>,
    /// The cursor that asks for what comes after these.
    pub next_cursor: i64,
    /// The blobs this export registered in [`Exports::streaming`].
    held: Vec<String>,
    store: Arc<Store>,
}

impl Export {
    /// Opens a blob of one of this export's items for reading, without touching its
    /// access time.
    pub fn open(&self, item_id: &str, which: ItemBlob) -> io::Result<BlobReader> {
        let (item, meta) = item_names(item_id);
        self.open_blob(match which {
            ItemBlob::Content => item,
            ItemBlob::Meta => meta,
        })
    }

    /// Opens the ciphertext of one of this export's replies, like [`Export::open`].
    pub fn open_reply(&self, reply_id: &str) -> io::Result<BlobReader> {
        self.open_blob(reply_name(reply_id))
    }

    fn open_blob(&self, name: String) -> io::Result<BlobReader> {
        // Looked up and opened under the lock that deletion moves blobs under.
        let exports = self.store.exports.lock().unwrap_or_else(|p| p.into_inner());
        self.store.blobs.open(&name, exports.parked.get(&name))
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let mut exports = self.store.exports.lock().unwrap_or_else(|p| p.into_inner());
        let mut done = Vec::new();
        for name in &self.held {
            if let Some(count) = exports.streaming.get_mut(name) {
                *count -= 1;
                if *count == 0 {
                    exports.streaming.remove(name);
                    if let Some(parked) = exports.parked.remove(name) {
                        done.push((name, parked));
                    }
                }
            }
        }
        drop(exports);
        for (name, parked) in done {
            self.store.blobs.remove_parked(name, parked);
        }
    }
}

/// Blobs exports are streaming, and those deleted meanwhile. Keyed by the blob's name
/// in `blobs/`, so items and replies share one mechanism.
#[derive(Default)]
pub(super) struct Exports {
    /// Blob → how many running exports hold it.
    pub(super) streaming: HashMap<String, usize>,
    /// Blob → where a deletion parked it.
    pub(super) parked: HashMap<String, Parked>,
}

impl Store {
    /// What came after `cursor` (an export position, 0 for all): items, replies and
    /// deletions of replies, at most `limit` of them together, oldest first, with the
    /// sources they belong to. Until the returned [`Export`] is dropped, its items and
    /// replies stay readable through [`Export::open`] and [`Export::open_reply`] even
    /// if they are deleted meanwhile.
    ///
    /// `desks` limits the export to sources of those desks (`None`: every desk): what a
    /// journalist account scoped to desks sees. The cursor stays the one export order,
    /// so positions of other desks are passed over, never handed out.
    pub fn export(
        self: &Arc<Self>,
        cursor: i64,
        limit: usize,
        desks: Option<&[String]>,
    ) -> Result<Export, StoreError> {
        let mut db = self.db();
        let scope = desk_scope(desks);
        let limit_rows = limit as i64;
        let after: [&dyn super::db::Param; 3] = [&cursor, &limit_rows, &scope];
        // One snapshot for all the queries: with several processes writing, a row
        // committed between two of them could otherwise be passed over by the cursor.
        let (items, replies, deleted_replies, sources, next_cursor) = db.snapshot(|tx| {
            let mut items = tx.rows(
                concat!(
                    "SELECT position, id, source_id, kind, seq, day, size, meta_size FROM items
                     WHERE position > ?1 AND deleting = 0 AND ",
                    in_scope!(),
                    " ORDER BY position LIMIT ?2"
                ),
                &after,
                |r| {
                    Ok(ExportItem {
                        position: r.get(0)?,
                        id: r.get(1)?,
                        source_id: r.get(2)?,
                        kind: r.get(3)?,
                        seq: r.get(4)?,
                        day: r.get(5)?,
                        size: r.get::<i64>(6)? as u64,
                        meta_size: r.get::<i64>(7)? as u64,
                    })
                },
            )?;
            let mut replies = tx.rows(
                concat!(
                    "SELECT position, id, source_id, seq, day, size FROM replies
                     WHERE position > ?1 AND deleting = 0 AND ",
                    in_scope!(),
                    " ORDER BY position LIMIT ?2"
                ),
                &after,
                |r| {
                    Ok(ExportReply {
                        position: r.get(0)?,
                        id: r.get(1)?,
                        source_id: r.get(2)?,
                        seq: r.get(3)?,
                        day: r.get(4)?,
                        size: r.get::<i64>(5)? as u64,
                    })
                },
            )?;
            let mut deleted_replies = tx.rows(
                concat!(
                    "SELECT position, source_id, seq FROM deleted_replies WHERE position > ?1 AND ",
                    in_scope!(),
                    " ORDER BY position LIMIT ?2"
                ),
                &after,
                |r| {
                    Ok(ExportDeletedReply {
                        position: r.get(0)?,
                        source_id: r.get(1)?,
                        seq: r.get(2)?,
                    })
                },
            )?;
            // The `limit` oldest of the three together: each list is sorted, so everything
            // up to the limit-th smallest position, and nothing after it.
            let mut positions: Vec<i64> = items
                .iter()
                .map(|i| i.position)
                .chain(replies.iter().map(|r| r.position))
                .chain(deleted_replies.iter().map(|d| d.position))
                .collect();
            positions.sort_unstable();
            let last = match limit.checked_sub(1) {
                None => cursor,
                Some(index) => positions.get(index).copied().unwrap_or(i64::MAX),
            };
            items.retain(|i| i.position <= last);
            replies.retain(|r| r.position <= last);
            deleted_replies.retain(|d| d.position <= last);
            let next_cursor = positions
                .into_iter()
                .take_while(|&p| p <= last)
                .last()
                .unwrap_or(cursor);
            let mut sources = Vec::new();
            let mut seen = HashSet::new();
            let source_ids = items
                .iter()
                .map(|i| &i.source_id)
                .chain(replies.iter().map(|r| &r.source_id))
                .chain(deleted_replies.iter().map(|d| &d.source_id));
            for source_id in source_ids {
                if seen.insert(source_id.clone()) {
                    let source = tx.optional(
                        "SELECT id, label, recipient, desk FROM sources WHERE id = ?1",
                        &[source_id],
                        |r| {
                            Ok(ExportSource {
                                id: r.get(0)?,
                                label: r.get::<Option<String>>(1)?.unwrap_or_default(),
                                recipient: r.get::<Option<String>>(2)?.unwrap_or_default(),
                                desk: r.get(3)?,
                            })
                        },
                    )?;
                    sources.extend(source);
                }
            }
            Ok((items, replies, deleted_replies, sources, next_cursor))
        })?;

        // Registered while the database lock is held, so no deletion slips in between
        // listing a blob and protecting it.
        let held: Vec<String> = blob_names(
            items.iter().map(|i| i.id.as_str()),
            replies.iter().map(|r| r.id.as_str()),
        )
        .collect();
        let mut exports = self.exports.lock().unwrap_or_else(|p| p.into_inner());
        for path in &held {
            *exports.streaming.entry(path.clone()).or_default() += 1;
        }
        drop(exports);
        Ok(Export {
            items,
            replies,
            deleted_replies,
            sources,
            next_cursor,
            held,
            store: Arc::clone(self),
        })
    }
}

/// The desks an account may see as the one SQL parameter [`in_scope!`] takes: their
/// ids between commas (`,a,b,`), as the `journalists.desks` column holds them; `None`
/// for every desk.
pub(super) fn desk_scope(desks: Option<&[String]>) -> Option<String> {
    desks.map(|ids| format!(",{},", ids.join(",")))
}

//! Exports: the items after a cursor with their sources, for `pull`, and the
//! bookkeeping that keeps an export's blobs readable while a journalist deletes them.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use super::blobs::open_for_reading;
use super::ItemKind;
use super::{Store, StoreError};

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
}

/// What an export holds. While it lives, its items can be read even if a journalist
/// deletes them meanwhile (their blobs are removed when the last export ends).
pub struct Export {
    /// Items, oldest first.
    pub items: Vec<ExportItem>,
    /// Their sources.
    pub sources: Vec<ExportSource>,
    /// The cursor that asks for what comes after these.
    pub next_cursor: i64,
    store: Arc<Store>,
}

/// Which blob of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemBlob {
    /// The item's ciphertext.
    Content,
    /// Its encrypted metadata record.
    Meta,
}

impl Export {
    /// Opens a blob of one of this export's items for reading, without touching its
    /// access time.
    pub fn open(&self, item_id: &str, which: ItemBlob) -> io::Result<File> {
        let exports = self.store.exports.lock().unwrap_or_else(|p| p.into_inner());
        let index = match which {
            ItemBlob::Content => 0,
            ItemBlob::Meta => 1,
        };
        // Looked up and opened under the lock that deletion moves blobs under.
        let path = match exports.parked.get(item_id) {
            Some(parked) => parked[index]
                .clone()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?,
            None => {
                let (item, meta) = self.store.item_paths(item_id);
                [item, meta][index].clone()
            }
        };
        open_for_reading(&path)
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let mut exports = self.store.exports.lock().unwrap_or_else(|p| p.into_inner());
        let mut done = Vec::new();
        for item in &self.items {
            if let Some(count) = exports.streaming.get_mut(&item.id) {
                *count -= 1;
                if *count == 0 {
                    exports.streaming.remove(&item.id);
                    if let Some(parked) = exports.parked.remove(&item.id) {
                        done.extend(parked.into_iter().flatten());
                    }
                }
            }
        }
        drop(exports);
        for path in done {
            // A file left here is in tmp/, which start-up empties.
            let _ = fs::remove_file(path);
        }
    }
}

/// Items exports are streaming, and blobs of those deleted meanwhile.
#[derive(Default)]
pub(super) struct Exports {
    /// Item id → how many running exports hold it.
    pub(super) streaming: HashMap<String, usize>,
    /// Item id → its (content, metadata) blobs, moved into `tmp/` by a deletion.
    pub(super) parked: HashMap<String, [Option<PathBuf>; 2]>,
}

impl Store {
    /// Items after `cursor` (an export position, 0 for all), at most `limit`, oldest
    /// first, with the sources they belong to. Until the returned [`Export`] is
    /// dropped, its items stay readable through [`Export::open`] even if they are
    /// deleted meanwhile.
    pub fn export(self: &Arc<Self>, cursor: i64, limit: usize) -> Result<Export, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT position, id, source_id, kind, seq, day, size, meta_size FROM items
             WHERE position > ?1 AND deleting = 0 ORDER BY position LIMIT ?2",
        )?;
        let items = stmt
            .query_map(params![cursor, limit as i64], |r| {
                Ok(ExportItem {
                    position: r.get(0)?,
                    id: r.get(1)?,
                    source_id: r.get(2)?,
                    kind: r.get(3)?,
                    seq: r.get(4)?,
                    day: r.get(5)?,
                    size: r.get::<_, i64>(6)? as u64,
                    meta_size: r.get::<_, i64>(7)? as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut sources = Vec::new();
        let mut seen = HashSet::new();
        let mut stmt = db.prepare("SELECT id, label, recipient FROM sources WHERE id = ?1")?;
        for item in &items {
            if seen.insert(item.source_id.clone()) {
                if let Some(source) = stmt
                    .query_row([&item.source_id], |r| {
                        Ok(ExportSource {
                            id: r.get(0)?,
                            label: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                            recipient: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        })
                    })
                    .optional()?
                {
                    sources.push(source);
                }
            }
        }
        // Registered while the database lock is held, so no deletion slips in between
        // listing an item and protecting it.
        let mut exports = self.exports.lock().unwrap_or_else(|p| p.into_inner());
        for item in &items {
            *exports.streaming.entry(item.id.clone()).or_default() += 1;
        }
        drop(exports);
        let next_cursor = items.last().map_or(cursor, |i| i.position);
        Ok(Export {
            items,
            sources,
            next_cursor,
            store: Arc::clone(self),
        })
    }
}

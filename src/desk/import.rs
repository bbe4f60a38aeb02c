//! Importing export bundles into the desk: idempotent (an entry the archive has is
//! skipped), order-free (replies and their deletions are keyed by their place in the
//! thread), atomic per bundle (staged, then one transaction, then moved into place),
//! and keyed by source id, never by label. The bundle is hostile (SECURITY.md, "The
//! desk"): every check that can refuse it runs before anything is written.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::index::{self, EntryKind};
use super::{io_error, Desk, DeskError};
use crate::bundle::{
    self, BundleError, ItemKind, ItemRecord, Manifest, ManifestItem, ManifestReply, TarReader,
};
use crate::crypto::{Identities, OpenError, Recipients};
use crate::offline;

/// Metadata records are padded to 1 KiB; anything much larger is not ours.
const MAX_META_BYTES: u64 = 64 * 1024;

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Entries (items, replies, deletions) the archive did not have.
    pub new_entries: usize,
    /// Entries it had already (skipped).
    pub known: usize,
    /// Files of known items that were missing or damaged and were written again.
    pub repaired: usize,
    /// Sources it did not know.
    pub new_sources: usize,
    /// Replies the identities used could not decrypt (recorded as unreadable).
    pub unreadable_replies: usize,
}

/// What an import will do with one manifest entry.
enum Plan {
    /// The archive has it whole.
    Known,
    /// New: decrypt and record it.
    New,
    /// Known, but its file is missing or has the wrong size: decrypt it again.
    Repair,
}

/// Staged files of an import that has not committed: removed on drop.
struct Staged {
    paths: Vec<PathBuf>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = fs::remove_file(path);
        }
    }
}

/// An item decrypted into the staging area.
#[derive(Default)]
struct StagedItem {
    record: Option<ItemRecord>,
    size: Option<u64>,
}

/// What an import decrypted, by item or reply id.
#[derive(Default)]
struct Decrypted<'a> {
    items: HashMap<&'a str, StagedItem>,
    replies: HashMap<&'a str, StagedReply>,
}

impl<'a> Decrypted<'a> {
    fn item(&mut self, id: &'a str) -> &mut StagedItem {
        self.items.entry(id).or_default()
    }
}

/// A reply as the import found it.
struct StagedReply {
    digest: [u8; 32],
    readable: bool,
}

/// Imports one bundle into `desk`, decrypting with `identities`; `newsroom` (the
/// identities' public keys, when they could be read) is remembered for replies.
pub fn import(
    desk: &Desk,
    bundle_path: &Path,
    identities: &Identities,
    newsroom: Option<&Recipients>,
) -> Result<ImportReport, DeskError> {
    let _lock = desk.lock()?;
    desk.finish_staged()?;
    let file = File::open(bundle_path).map_err(io_error("open the bundle", bundle_path))?;
    let mut tar = TarReader::new(BufReader::with_capacity(256 * 1024, file));
    let manifest = offline::read_manifest(&mut tar)?;
    let mut report = ImportReport::default();

    // Every refusal that depends on the archive comes first.
    let plans = plan(desk, &manifest, &mut report)?;

    let mut staged = Staged { paths: Vec::new() };
    let mut decrypted = Decrypted::default();
    let expected: HashMap<&str, u64> = manifest.entries().collect();
    let by_entry: HashMap<String, Target<'_>> = manifest
        .items
        .iter()
        .flat_map(|i| {
            [
                (i.blob.clone(), Target::Item(i)),
                (i.meta.clone(), Target::Meta(i)),
            ]
        })
        .chain(
            manifest
                .replies
                .iter()
                .map(|r| (r.blob.clone(), Target::Reply(r))),
        )
        .collect();
    let mut seen = HashSet::new();
    while let Some(entry) = tar.next_entry()? {
        let Some(&size) = expected.get(entry.name.as_str()) else {
            return Err(refused("it holds an entry its manifest does not list"));
        };
        if !seen.insert(entry.name.clone()) {
            return Err(refused("an entry appears twice"));
        }
        if entry.size != size {
            return Err(refused("an entry's size is not the one its manifest lists"));
        }
        match by_entry[entry.name.as_str()] {
            Target::Meta(item) if wanted(&plans.by_id, &item.id) => {
                let record = decrypt_meta(&mut tar, identities, item)?;
                decrypted.item(&item.id).record = Some(record);
            }
            Target::Item(item) if wanted(&plans.by_id, &item.id) => {
                let path = desk.staged(&item.id);
                staged.paths.push(path.clone());
                let size = decrypt_to(&mut tar, identities, &path, item.size)
                    .map_err(|cause| item_error(&mut tar, &item.id, cause))?;
                decrypted.item(&item.id).size = Some(size);
            }
            Target::Reply(reply) if wanted(&plans.by_id, &reply.id) => {
                let ciphertext = bundle::read_small(&mut tar, &entry, bundle::MAX_REPLY_BYTES)?;
                let digest: [u8; 32] = Sha256::digest(&ciphertext).into();
                let mut plain = Zeroizing::new(Vec::new());
                let readable = identities
                    .decrypt(&ciphertext[..], &mut *plain, bundle::MAX_REPLY_BYTES)
                    .is_ok();
                if readable {
                    let path = desk.staged(&reply.id);
                    staged.paths.push(path.clone());
                    write_new(&path, &plain).map_err(io_error("stage a reply", &path))?;
                }
                decrypted
                    .replies
                    .insert(&reply.id, StagedReply { digest, readable });
            }
            _ => {} // known: skipped unread
        }
    }
    for (id, plan) in &plans.by_id {
        if matches!(plan, Plan::Known) {
            continue;
        }
        let whole = match decrypted.items.get(id.as_str()) {
            Some(item) => item.size.is_some() && item.record.is_some(),
            None => decrypted.replies.contains_key(id.as_str()),
        };
        if !whole {
            return Err(refused(
                "it is incomplete (an entry its manifest lists is missing)",
            ));
        }
    }

    let bundle_name = bundle_path
        .file_name()
        .map(|n| offline::printable(&n.to_string_lossy()))
        .unwrap_or_default();
    let committed = commit(
        desk,
        &manifest,
        &bundle_name,
        &plans,
        &decrypted,
        newsroom,
        &mut report,
    )?;
    // Committed: the index names every staged file, so from here on they are moved
    // into place, now or by the next start-up if this process dies.
    staged.paths.clear();
    for placement in committed.placed {
        let dir = desk.source_dir(&placement.dir);
        super::private_subdir(&dir)?;
        let from = desk.staged(&placement.id);
        let to = dir.join(&placement.name);
        // The error names the source's directory, never the file: its name is the
        // source's (SECURITY.md, "Logs").
        fs::rename(&from, &to).map_err(io_error("move a decrypted file into place", &dir))?;
    }
    for path in committed.removed {
        let _ = fs::remove_file(desk.dir.join(path));
    }
    Ok(report)
}

enum Target<'a> {
    Item(&'a ManifestItem),
    Meta(&'a ManifestItem),
    Reply(&'a ManifestReply),
}

fn wanted(plans: &HashMap<String, Plan>, id: &str) -> bool {
    plans.get(id).is_some_and(|p| !matches!(p, Plan::Known))
}

fn refused(why: &str) -> DeskError {
    DeskError::from(BundleError::Refused(format!(
        "{why}; nothing of it was imported"
    )))
}

/// What an import will do: the sources to add (id → directory name) and, per item and
/// reply id, its [`Plan`].
struct Plans {
    new_sources: HashMap<String, String>,
    by_id: HashMap<String, Plan>,
}

/// A staged file the commit named: move `staging/ID` to `sources/DIR/NAME`.
struct Placement {
    id: String,
    dir: String,
    name: String,
}

/// What a committed import leaves to do on disk.
struct Committed {
    placed: Vec<Placement>,
    /// Files to remove, relative to the desk (replies their source deleted).
    removed: Vec<PathBuf>,
}

/// Checks the bundle against the archive and decides, per item and reply, what to do.
fn plan(desk: &Desk, manifest: &Manifest, report: &mut ImportReport) -> Result<Plans, DeskError> {
    let db = desk.db();
    let mut new_sources = HashMap::new();
    let mut dirs = HashSet::new();
    for source in &manifest.sources {
        match index::source(&db, &source.id)? {
            Some(known) => {
                if known.label != source.label {
                    return Err(DeskError::LabelChanged {
                        id: source.id.clone(),
                        known: known.label,
                    });
                }
                if known.recipient != source.recipient {
                    return Err(DeskError::RecipientChanged {
                        id: source.id.clone(),
                    });
                }
                if let (Some(known), Some(named)) = (&known.desk, &source.desk) {
                    if known != named {
                        return Err(DeskError::DeskChanged {
                            id: source.id.clone(),
                            known: known.clone(),
                        });
                    }
                }
            }
            None => {
                let dir = offline::safe_label(&source.label, &source.id);
                if let Some(holder) = index::source_by_label_or_dir(&db, &source.label, &dir)? {
                    return Err(DeskError::LabelInUse {
                        id: source.id.clone(),
                        holder: holder.id,
                    });
                }
                // The recipient must be usable before anything depends on it.
                Recipients::parse(&[&source.recipient])
                    .map_err(|_| refused("a source's reply key is not an age recipient"))?;
                if !dirs.insert(dir.clone()) {
                    return Err(refused("two of its sources would share a directory"));
                }
                new_sources.insert(source.id.clone(), dir);
            }
        }
    }
    report.new_sources = new_sources.len();

    let mut plans = HashMap::new();
    for item in &manifest.items {
        let plan = match index::slot(&db, &item.source_id, item.order)? {
            Some(slot) if slot.id.as_deref() == Some(&item.id) => {
                let dir = index::source(&db, &item.source_id)?
                    .map(|s| s.dir)
                    .unwrap_or_default();
                let intact = slot.file.as_ref().is_some_and(|file| {
                    fs::symlink_metadata(desk.source_dir(&dir).join(file))
                        .is_ok_and(|m| m.is_file() && Some(m.len()) == slot.size)
                });
                if intact {
                    Plan::Known
                } else {
                    Plan::Repair
                }
            }
            Some(_) => {
                return Err(DeskError::OrderTaken {
                    source_id: item.source_id.clone(),
                    order: item.order,
                })
            }
            None if index::placement(&db, &item.id)?.is_some() => {
                return Err(refused("an item id the archive has sits elsewhere in it"))
            }
            None => Plan::New,
        };
        plans.insert(item.id.clone(), plan);
    }
    for reply in &manifest.replies {
        let plan = match index::slot(&db, &reply.source_id, reply.order)? {
            // Known, or deleted by the source since (a later bundle came first).
            Some(slot)
                if slot.id.as_deref() == Some(&reply.id) || (slot.deleted && slot.id.is_none()) =>
            {
                Plan::Known
            }
            Some(_) => {
                return Err(DeskError::OrderTaken {
                    source_id: reply.source_id.clone(),
                    order: reply.order,
                })
            }
            None => Plan::New,
        };
        plans.insert(reply.id.clone(), plan);
    }
    for deleted in &manifest.deleted_replies {
        let kind: Option<EntryKind> = db
            .query_row(
                "SELECT kind FROM entries WHERE source_id = ?1 AND seq = ?2",
                params![deleted.source_id, deleted.order],
                |r| r.get(0),
            )
            .optional()?;
        if kind.is_some_and(|k| k != EntryKind::Reply) {
            return Err(DeskError::OrderTaken {
                source_id: deleted.source_id.clone(),
                order: deleted.order,
            });
        }
    }
    Ok(Plans {
        new_sources,
        by_id: plans,
    })
}

/// The error for an entry that failed to decrypt: the bundle is truncated if the
/// entry's data ends early, else the item is named.
fn item_error<R: Read>(tar: &mut TarReader<R>, id: &str, cause: OpenError) -> DeskError {
    match io::copy(&mut tar.entry(), &mut io::sink()) {
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
            refused("it is truncated (its last entry ends early)")
        }
        _ => DeskError::Item {
            id: id.to_owned(),
            cause,
        },
    }
}

/// Decrypts an item's metadata record (small, in memory).
fn decrypt_meta<R: Read>(
    tar: &mut TarReader<R>,
    identities: &Identities,
    item: &ManifestItem,
) -> Result<ItemRecord, DeskError> {
    let mut plain = Zeroizing::new(Vec::new());
    identities
        .decrypt(tar.entry(), &mut *plain, MAX_META_BYTES)
        .map_err(|cause| item_error(tar, &item.id, cause))?;
    serde_json::from_slice::<ItemRecord>(&plain).map_err(|_| DeskError::Item {
        id: item.id.clone(),
        cause: OpenError::Undecryptable,
    })
}

/// Decrypts the current entry into a new file at `path` (0600).
fn decrypt_to<R: Read>(
    tar: &mut TarReader<R>,
    identities: &Identities,
    path: &Path,
    size: u64,
) -> Result<u64, OpenError> {
    let _ = fs::remove_file(path);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(crate::nofollow::flag())
        .open(path)
        .map_err(|_| OpenError::Write)?;
    offline::decrypt_into(tar, identities, file, size)
}

fn write_new(path: &Path, data: &[u8]) -> io::Result<()> {
    let _ = fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(crate::nofollow::flag())
        .open(path)?;
    io::Write::write_all(&mut file, data)
}

/// The file name of an entry in its source's directory.
fn file_name(order: i64, kind: EntryKind, filename: Option<&str>) -> String {
    match (kind, filename) {
        (EntryKind::Message, _) => format!("{order:04}-message.txt"),
        (EntryKind::Reply, _) => format!("{order:04}-reply.txt"),
        (EntryKind::File, Some(name)) => format!("{order:04}-{}", offline::safe_file_name(name)),
        (EntryKind::File, None) => format!("{order:04}-file.bin"),
    }
}

/// Records the import in one transaction. Returns the staged files to move (id,
/// source directory, name) and the files to remove (paths under the desk).
fn commit(
    desk: &Desk,
    manifest: &Manifest,
    bundle_name: &str,
    plans: &Plans,
    decrypted: &Decrypted<'_>,
    newsroom: Option<&Recipients>,
    report: &mut ImportReport,
) -> Result<Committed, DeskError> {
    let mut db = desk.db();
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut placed = Vec::new();
    let mut removed = Vec::new();
    tx.execute(
        "INSERT INTO imports (at, bundle, since, next_cursor, new_entries, known)
         VALUES (?1, ?2, ?3, ?4, 0, 0)",
        params![
            crate::time::rfc3339(SystemTime::now()),
            bundle_name,
            manifest.since,
            manifest.next_cursor
        ],
    )?;
    let import_id = tx.last_insert_rowid();
    if let Some(newsroom) = newsroom {
        for recipient in newsroom.to_strings() {
            tx.execute(
                "INSERT OR IGNORE INTO newsroom (recipient) VALUES (?1)",
                [recipient],
            )?;
        }
    }
    for source in &manifest.sources {
        if let Some(dir) = plans.new_sources.get(&source.id) {
            tx.execute(
                "INSERT INTO sources (id, label, recipient, dir, desk) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![source.id, source.label, source.recipient, dir, source.desk],
            )?;
        } else if let Some(desk) = &source.desk {
            // Bundles from before desks named none: the first that does, tells.
            tx.execute(
                "UPDATE sources SET desk = ?2 WHERE id = ?1 AND desk IS NULL",
                params![source.id, desk],
            )?;
        }
    }
    let dir_of = |source_id: &str| -> Result<String, DeskError> {
        Ok(
            tx.query_row("SELECT dir FROM sources WHERE id = ?1", [source_id], |r| {
                r.get(0)
            })?,
        )
    };
    for item in &manifest.items {
        match plans.by_id[&item.id] {
            Plan::Known => report.known += 1,
            Plan::Repair => {
                let dir = dir_of(&item.source_id)?;
                let file: String =
                    tx.query_row("SELECT file FROM entries WHERE id = ?1", [&item.id], |r| {
                        r.get(0)
                    })?;
                placed.push(Placement {
                    id: item.id.clone(),
                    dir,
                    name: file,
                });
                report.repaired += 1;
                report.known += 1;
            }
            Plan::New => {
                let staged = &decrypted.items[item.id.as_str()];
                let record = staged
                    .record
                    .as_ref()
                    .expect("a new item's record was checked present");
                let kind = EntryKind::from(item.kind);
                let filename = record.filename.as_deref().map(offline::safe_file_name);
                let file = file_name(item.order, kind, record.filename.as_deref());
                tx.execute(
                    "INSERT INTO entries (source_id, seq, id, kind, day, file, filename,
                         content_type, received, size, import_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        item.source_id,
                        item.order,
                        item.id,
                        kind,
                        item.day,
                        file,
                        filename.filter(|_| item.kind == ItemKind::File),
                        record.content_type.as_deref().map(offline::printable),
                        offline::printable(&record.received),
                        staged.size.map(|s| s as i64),
                        import_id
                    ],
                )?;
                placed.push(Placement {
                    id: item.id.clone(),
                    dir: dir_of(&item.source_id)?,
                    name: file,
                });
                report.new_entries += 1;
            }
        }
    }
    for reply in &manifest.replies {
        if !matches!(plans.by_id[&reply.id], Plan::New) {
            report.known += 1;
            continue;
        }
        let staged = &decrypted.replies[reply.id.as_str()];
        let file = staged
            .readable
            .then(|| file_name(reply.order, EntryKind::Reply, None));
        tx.execute(
            "INSERT INTO entries (source_id, seq, id, kind, day, file, digest, read, import_id)
             VALUES (?1, ?2, ?3, 'reply', ?4, ?5, ?6, 1, ?7)",
            params![
                reply.source_id,
                reply.order,
                reply.id,
                reply.day,
                file,
                &staged.digest[..],
                import_id
            ],
        )?;
        tx.execute(
            "UPDATE outbox SET delivered = 1 WHERE digest = ?1",
            [&staged.digest[..]],
        )?;
        match file {
            Some(file) => placed.push(Placement {
                id: reply.id.clone(),
                dir: dir_of(&reply.source_id)?,
                name: file,
            }),
            None => report.unreadable_replies += 1,
        }
        report.new_entries += 1;
    }
    for deleted in &manifest.deleted_replies {
        let known: Option<(Option<String>, bool, Option<Vec<u8>>)> = tx
            .query_row(
                "SELECT file, deleted, digest FROM entries WHERE source_id = ?1 AND seq = ?2",
                params![deleted.source_id, deleted.order],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match known {
            Some((_, true, _)) => report.known += 1,
            Some((file, false, digest)) => {
                // The source deleted it: the desk keeps only the fact, like the server.
                tx.execute(
                    "UPDATE entries SET deleted = 1, file = NULL, digest = NULL
                     WHERE source_id = ?1 AND seq = ?2",
                    params![deleted.source_id, deleted.order],
                )?;
                if let Some(digest) = digest {
                    tx.execute(
                        "UPDATE outbox SET text = '', delivered = 1 WHERE digest = ?1",
                        [digest],
                    )?;
                }
                if let Some(file) = file {
                    removed.push(
                        PathBuf::from(super::SOURCES)
                            .join(dir_of(&deleted.source_id)?)
                            .join(file),
                    );
                }
                report.new_entries += 1;
            }
            None => {
                tx.execute(
                    "INSERT INTO entries (source_id, seq, kind, deleted, read, import_id)
                     VALUES (?1, ?2, 'reply', 1, 1, ?3)",
                    params![deleted.source_id, deleted.order, import_id],
                )?;
                report.new_entries += 1;
            }
        }
    }
    tx.execute(
        "UPDATE imports SET new_entries = ?2, known = ?3 WHERE id = ?1",
        params![import_id, report.new_entries as i64, report.known as i64],
    )?;
    tx.commit()?;
    Ok(Committed { placed, removed })
}

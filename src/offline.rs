//! The offline commands, for the air-gapped machine: `open` decrypts an export
//! bundle into a directory, `reply` makes a reply bundle. Neither opens a network
//! connection. Every bundle is treated as hostile (SECURITY.md, "Hostile bundles"): it was carried over
//! from a machine that may be compromised.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

use crate::bundle::{
    self, BundleError, ItemKind, ItemRecord, Manifest, ManifestItem, ManifestReply, ReplyEntry,
    ReplyManifest, TarReader, TarWriter,
};
use crate::crypto::{Identities, OpenError, Recipients};
use crate::cursor::Cursor;
use crate::nofollow;

/// Metadata records are padded to 1 KiB; anything much larger is not ours.
const MAX_META_BYTES: u64 = 64 * 1024;
/// Longest name written for a file (bytes), before the order prefix.
const MAX_NAME_BYTES: usize = 150;
/// Items at least this large get a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 32 * 1024 * 1024;

/// Why an offline command failed as a whole.
#[derive(Debug)]
pub enum OfflineError {
    /// The bundle is not one we accept.
    Bundle(BundleError),
    /// Files could not be read or written.
    Io(io::Error),
    /// No source in the bundle has that label.
    UnknownSource(String),
    /// The output exists already.
    OutputExists(PathBuf),
    /// The reply could not be encrypted.
    Encrypt(io::Error),
    /// The output directory belongs to another user.
    OutputNotOwned(PathBuf),
    /// The output directory can be written by group or others (its mode).
    OutputWritableByOthers(PathBuf, u32),
    /// A symbolic link where `open` would write; links are never followed.
    LinkInOutput(PathBuf),
    /// Something other than a directory where `open` needs one.
    NotADirectory(PathBuf),
}

impl fmt::Display for OfflineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfflineError::Bundle(err) => write!(f, "bundle {err}"),
            OfflineError::Io(err) => write!(f, "{err}"),
            OfflineError::UnknownSource(label) => {
                write!(f, "no source labelled {label:?} in this bundle")
            }
            OfflineError::OutputExists(path) => {
                write!(f, "{} exists already; not overwriting it", path.display())
            }
            OfflineError::Encrypt(err) => write!(f, "cannot encrypt the reply: {err}"),
            OfflineError::OutputNotOwned(path) => write!(
                f,
                "{} belongs to another user; open writes only into a directory of your own",
                path.display()
            ),
            OfflineError::OutputWritableByOthers(path, mode) => write!(
                f,
                "{} can be written by other users (mode {mode:04o}); open writes only into a \
                 directory only you can write to",
                path.display()
            ),
            OfflineError::LinkInOutput(path) => write!(
                f,
                "{} is a symbolic link; open does not follow links in its output",
                path.display()
            ),
            OfflineError::NotADirectory(path) => {
                write!(f, "{} is not a directory", path.display())
            }
        }
    }
}

impl std::error::Error for OfflineError {}

impl From<BundleError> for OfflineError {
    fn from(err: BundleError) -> Self {
        OfflineError::Bundle(err)
    }
}

impl From<io::Error> for OfflineError {
    fn from(err: io::Error) -> Self {
        OfflineError::Io(err)
    }
}

/// What `open` did.
#[derive(Debug, Default)]
pub struct OpenReport {
    /// Items written whole.
    pub written: usize,
    /// The newsroom's replies written whole (`NNN-reply.txt`).
    pub replies: usize,
    /// What was skipped, and why (one line each; no item content).
    pub skipped: Vec<String>,
}

/// What the manifest says an entry of the bundle is.
#[derive(Clone, Copy)]
enum Listed<'a> {
    /// An item's ciphertext.
    Item(&'a ManifestItem),
    /// An item's encrypted metadata record.
    Meta(&'a ManifestItem),
    /// A reply's ciphertext.
    Reply(&'a ManifestReply),
}

/// Reads the manifest, which must be the first entry.
pub(crate) fn read_manifest<R: Read>(tar: &mut TarReader<R>) -> Result<Manifest, OfflineError> {
    let first = tar
        .next_entry()?
        .ok_or_else(|| BundleError::Refused("the bundle is empty".into()))?;
    if first.name != bundle::MANIFEST {
        return Err(BundleError::Refused("the first entry must be manifest.json".into()).into());
    }
    let json = bundle::read_small(tar, &first, bundle::MAX_MANIFEST_BYTES)?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|_| BundleError::Refused("manifest.json is not a valid manifest".into()))?;
    manifest.validate()?;
    Ok(manifest)
}

/// Decrypts every item and reply of `bundle` into `out/<source label>/` (a reply as
/// `NNN-reply.txt`), with an `index.txt` per source that also lists the replies the
/// source deleted. Nothing is written outside `out`; an item that fails to decrypt or
/// authenticate is reported and never left half-written.
///
/// `out` must be a directory of the user's own that nobody else can write to (it is
/// made, mode 0700, if missing): in a directory others can write to, they could swap a
/// name for a link between our check and our write. Inside it no link is followed.
pub fn open(
    bundle_path: &Path,
    identities: &Identities,
    out: &Path,
) -> Result<OpenReport, OfflineError> {
    let file = File::open(bundle_path)?;
    let mut tar = TarReader::new(BufReader::with_capacity(256 * 1024, file));
    let manifest = read_manifest(&mut tar)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out)?;
    // `out` itself may be a link the user made; what it leads to is checked.
    check_private_dir(out, &fs::metadata(out)?)?;

    let mut report = OpenReport::default();
    let by_entry: HashMap<&str, Listed> = manifest
        .items
        .iter()
        .flat_map(|i| {
            [
                (i.blob.as_str(), Listed::Item(i)),
                (i.meta.as_str(), Listed::Meta(i)),
            ]
        })
        .chain(
            manifest
                .replies
                .iter()
                .map(|r| (r.blob.as_str(), Listed::Reply(r))),
        )
        .collect();
    let dirs: HashMap<&str, PathBuf> = manifest
        .sources
        .iter()
        .map(|s| (s.id.as_str(), source_dir_path(out, &s.label, &s.id)))
        .collect();
    let mut seen = HashSet::new();
    let mut metas: HashMap<String, ItemRecord> = HashMap::new();
    let mut bodies: HashMap<String, Decrypted> = HashMap::new();
    let mut replies: HashMap<&str, Decrypted> = HashMap::new();
    // Reply entries already reported as skipped, so a reply gets one line.
    let mut replies_reported: HashSet<&str> = HashSet::new();

    loop {
        let entry = match tar.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(err) => {
                report
                    .skipped
                    .push(format!("stopped reading the bundle: {err}"));
                break;
            }
        };
        let Some(&listed) = by_entry.get(entry.name.as_str()) else {
            report.skipped.push(format!(
                "entry {} is not in the manifest: ignored",
                entry.name
            ));
            continue;
        };
        if !seen.insert(entry.name.clone()) {
            report
                .skipped
                .push(format!("entry {} appears twice: ignored", entry.name));
            continue;
        }
        // The manifest bounds a reply's size by `bundle::MAX_REPLY_BYTES` (`validate`),
        // so an entry of the listed size is bounded too.
        let (item, expected) = match listed {
            Listed::Item(item) => (item, item.size),
            Listed::Meta(item) => (item, item.meta_size),
            Listed::Reply(reply) => {
                let result = if entry.size == reply.size {
                    let dir = &dirs[reply.source_id.as_str()];
                    source_dir(dir)?;
                    decrypt_item(&mut tar, identities, dir, &reply.id, reply.size)
                        .map_err(|err| format!("reply {}: {err}", reply.id))
                } else {
                    Err(format!("entry {} has the wrong size: ignored", entry.name))
                };
                match result {
                    Ok(decrypted) => {
                        replies.insert(reply.id.as_str(), decrypted);
                    }
                    Err(line) => {
                        report.skipped.push(line);
                        replies_reported.insert(reply.id.as_str());
                    }
                }
                continue;
            }
        };
        if entry.size != expected {
            report
                .skipped
                .push(format!("entry {} has the wrong size: ignored", entry.name));
            continue;
        }
        if matches!(listed, Listed::Meta(_)) {
            let mut plain = Vec::new();
            match identities.decrypt(tar.entry(), &mut plain, MAX_META_BYTES) {
                Ok(_) => match serde_json::from_slice::<ItemRecord>(&plain) {
                    Ok(meta) => {
                        metas.insert(item.id.clone(), meta);
                    }
                    Err(_) => report
                        .skipped
                        .push(format!("item {}: its metadata is not valid", item.id)),
                },
                Err(err) => report
                    .skipped
                    .push(format!("item {}: metadata {err}", item.id)),
            }
            plain.zeroize();
        } else {
            let dir = &dirs[item.source_id.as_str()];
            source_dir(dir)?;
            match decrypt_item(&mut tar, identities, dir, &item.id, item.size) {
                Ok(decrypted) => {
                    bodies.insert(item.id.clone(), decrypted);
                }
                Err(err) => report.skipped.push(format!("item {}: {err}", item.id)),
            }
        }
    }

    // Per source: (order, line), sorted by order before they are written.
    let mut indexes: HashMap<&str, Vec<(i64, String)>> = HashMap::new();
    let mut skipped_ids: HashSet<String> = report
        .skipped
        .iter()
        .filter_map(|line| line.strip_prefix("item "))
        .filter_map(|rest| rest.split(':').next())
        .map(str::to_owned)
        .collect();
    for item in &manifest.items {
        let Some(mut body) = bodies.remove(&item.id) else {
            if !report.skipped.iter().any(|s| s.contains(&item.id)) {
                report
                    .skipped
                    .push(format!("item {}: missing from the bundle", item.id));
            }
            continue;
        };
        let meta = metas.get(&item.id);
        let dir = &dirs[item.source_id.as_str()];
        let wanted = match (item.kind, meta.and_then(|m| m.filename.as_deref())) {
            (ItemKind::Message, _) => format!("{:03}-message.txt", item.order),
            (_, Some(name)) => format!("{:03}-{}", item.order, safe_file_name(name)),
            (_, None) => format!("{:03}-file-{}.bin", item.order, &item.id[..8]),
        };
        // A name the output filesystem refuses (a FAT stick and `:`, say) falls back
        // to a plain one; if even that fails the item is skipped, not the whole run.
        let plain = format!("{:03}-file-{}.bin", item.order, &item.id[..8]);
        let name = match body
            .place(dir, &wanted)
            .or_else(|_| body.place(dir, &plain))
        {
            Ok(name) => name,
            Err(err) => {
                report
                    .skipped
                    .push(format!("item {}: cannot write it: {err}", item.id));
                skipped_ids.insert(item.id.clone());
                continue;
            }
        };
        let size = body.size;
        let line = match meta {
            Some(meta) => format!(
                "{:>4}  {}  {:<8} {:>12} bytes  {}  (received {}, type {}, id {})",
                item.order,
                item.day,
                meta.kind,
                meta.plaintext_size,
                name,
                printable(&meta.received),
                printable(meta.content_type.as_deref().unwrap_or("-")),
                item.id
            ),
            None => format!(
                "{:>4}  {}  {:<8} {:>12} bytes  {}  (metadata unreadable)",
                item.order, item.day, item.kind, size, name
            ),
        };
        indexes
            .entry(item.source_id.as_str())
            .or_default()
            .push((item.order, line));
        report.written += 1;
    }
    for reply in &manifest.replies {
        let Some(mut body) = replies.remove(reply.id.as_str()) else {
            if !replies_reported.contains(reply.id.as_str()) {
                report
                    .skipped
                    .push(format!("reply {}: missing from the bundle", reply.id));
            }
            continue;
        };
        let dir = &dirs[reply.source_id.as_str()];
        let name = match body.place(dir, &format!("{:03}-reply.txt", reply.order)) {
            Ok(name) => name,
            Err(err) => {
                report
                    .skipped
                    .push(format!("reply {}: cannot write it: {err}", reply.id));
                continue;
            }
        };
        let line = format!(
            "{:>4}  {}  {:<8} {:>12} bytes  {}  (reply from the newsroom, id {})",
            reply.order, reply.day, "reply", body.size, name, reply.id
        );
        indexes
            .entry(reply.source_id.as_str())
            .or_default()
            .push((reply.order, line));
        report.replies += 1;
    }
    for deleted in &manifest.deleted_replies {
        let line = format!(
            "{:>4}  reply {:03} deleted by the source",
            deleted.order, deleted.order
        );
        indexes
            .entry(deleted.source_id.as_str())
            .or_default()
            .push((deleted.order, line));
    }
    for source in &manifest.sources {
        let Some(lines) = indexes.get_mut(source.id.as_str()) else {
            continue;
        };
        lines.sort_by_key(|(order, _)| *order);
        let dir = &dirs[source.id.as_str()];
        // A source with only a deleted reply in this bundle has no directory yet.
        source_dir(dir)?;
        let path = dir.join("index.txt");
        let opened = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(nofollow::flag())
            .open(&path);
        let mut index = match opened {
            Err(err) if nofollow::refused(&err) => return Err(OfflineError::LinkInOutput(path)),
            opened => opened?,
        };
        if index.metadata()?.len() == 0 {
            writeln!(
                index,
                "Source {}  (id {})\nReply recipient: {}",
                printable(&source.label),
                source.id,
                printable(&source.recipient)
            )?;
            match &source.desk {
                Some(desk) => writeln!(index, "Desk: {desk}\n")?,
                None => writeln!(index)?,
            }
        }
        writeln!(
            index,
            "# bundle: cursor {} to {}",
            printable(&manifest.since),
            printable(&manifest.next_cursor)
        )?;
        for (_, line) in lines.iter() {
            writeln!(index, "{line}")?;
        }
        index.sync_all()?;
    }
    Ok(report)
}

/// Refuses a directory that is a link, not a directory, not the user's, or writable by
/// group or others.
pub(crate) fn check_private_dir(dir: &Path, meta: &fs::Metadata) -> Result<(), OfflineError> {
    if meta.file_type().is_symlink() {
        return Err(OfflineError::LinkInOutput(dir.to_owned()));
    }
    if !meta.is_dir() {
        return Err(OfflineError::NotADirectory(dir.to_owned()));
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(OfflineError::OutputNotOwned(dir.to_owned()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(OfflineError::OutputWritableByOthers(
            dir.to_owned(),
            meta.mode() & 0o7777,
        ));
    }
    Ok(())
}

/// Makes a source's directory (mode 0700), or checks the one there: a link planted at
/// its name is refused, never followed.
fn source_dir(dir: &Path) -> Result<(), OfflineError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            check_private_dir(dir, &fs::symlink_metadata(dir)?)
        }
        Err(err) => Err(err.into()),
    }
}

/// A decrypted item in a hidden temp file; removed on drop unless kept.
struct Decrypted {
    path: PathBuf,
    size: u64,
    kept: bool,
}

impl Decrypted {
    /// Moves the file into `dir` as `name`, or the next free numbered name (see
    /// [`place_new`]), and keeps it there: the name it got.
    fn place(&mut self, dir: &Path, name: &str) -> io::Result<String> {
        let target = place_new(&self.path, dir, name)?;
        self.kept = true;
        Ok(target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default())
    }
}

impl Drop for Decrypted {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Decrypts the current entry (an item's or a reply's ciphertext of `size` bytes)
/// into a hidden temp file in `dir`.
fn decrypt_item<R: Read>(
    tar: &mut TarReader<R>,
    identities: &Identities,
    dir: &Path,
    id: &str,
    size: u64,
) -> Result<Decrypted, OpenError> {
    let path = dir.join(format!(".incoming-{id}"));
    // A run that was interrupted may have left this temp file: a plain file of ours is
    // removed (never followed if it is anything else).
    if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
        fs::remove_file(&path).map_err(|_| OpenError::Write)?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|_| OpenError::Write)?;
    let mut decrypted = Decrypted {
        path,
        size: 0,
        kept: false,
    };
    let size = decrypt_into(tar, identities, file, size)?;
    // No fsync: the bundle stays the durable copy. A crash or power loss during `open`
    // can leave a hidden .incoming file or a recently renamed file incomplete: run
    // `open` again into a fresh directory. Skipping it keeps `open` as fast as age.
    decrypted.size = size;
    Ok(decrypted)
}

/// Decrypts the tar's current entry (an item of `size` bytes of ciphertext) into
/// `file`, on two cores (crypto::payload), with a progress bar for large items when
/// stderr is a terminal. What was written before an error is not authenticated as a
/// whole: the caller removes the file.
pub(crate) fn decrypt_into<R: Read>(
    tar: &mut TarReader<R>,
    identities: &Identities,
    mut file: File,
    size: u64,
) -> Result<u64, OpenError> {
    if size >= PROGRESS_FROM && io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(size);
        let written =
            identities.decrypt_on_two_cores(bar.wrap_read(tar.entry()), &mut file, u64::MAX)?;
        bar.finish_and_clear();
        Ok(written)
    } else {
        identities.decrypt_on_two_cores(tar.entry(), &mut file, u64::MAX)
    }
}

/// Text from a bundle as it may go into the index: control characters (terminal escape
/// sequences, say) replaced, length bounded.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| {
            if c.is_control() || is_invisible(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Characters that show nothing but can hide or reorder what is shown: every format
/// character (Unicode category Cf: zero-width and joiner marks, bidirectional
/// controls, the soft hyphen, the byte-order mark, tags, the interlinear annotation
/// marks…), the line and paragraph separators (Zl, Zp) and the blank Hangul fillers.
/// Removed from names and replaced in printed text; control characters (Cc) are
/// handled beside this by `char::is_control`.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}'
        | '\u{0600}'..='\u{0605}'
        | '\u{061c}'
        | '\u{06dd}'
        | '\u{070f}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08e2}'
        | '\u{115f}'..='\u{1160}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}'
        | '\u{3164}'
        | '\u{feff}'
        | '\u{ffa0}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{110bd}'
        | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0001}'
        | '\u{e0020}'..='\u{e007f}')
}

/// A directory name for a source: its label if it looks like one we make, else its id.
/// Where a source's files go: `OUT/LABEL`, unless a directory of that name already
/// holds another source (the server gives a deleted source's label to new ones), then
/// `OUT/LABEL-ID` with the first 12 digits of the id. Whose a directory is, its
/// `index.txt` says on its first line.
fn source_dir_path(out: &Path, label: &str, id: &str) -> PathBuf {
    let name = safe_label(label, id);
    let plain = out.join(&name);
    let index = plain.join("index.txt");
    let ours = match fs::symlink_metadata(&index) {
        Err(_) => true,
        // Not a plain file (a planted link, say): `open` refuses it there, loudly.
        Ok(meta) if !meta.file_type().is_file() => true,
        Ok(_) => {
            let mut head = Vec::new();
            let read = fs::OpenOptions::new()
                .read(true)
                .custom_flags(nofollow::flag())
                .open(&index)
                .and_then(|f| f.take(512).read_to_end(&mut head));
            let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
            read.is_ok() && contains(first, format!("(id {id})").as_bytes())
        }
    };
    if ours {
        plain
    } else {
        out.join(format!("{name}-{}", &id[..12]))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn safe_label(label: &str, id: &str) -> String {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-');
    if ok {
        label.to_owned()
    } else {
        format!("source-{}", &id[..12])
    }
}

/// A file name from a source's filename: the last path component, no control
/// characters, no separators, no leading dots or spaces, at most `MAX_NAME_BYTES`.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|&c| !c.is_control() && !is_invisible(c))
        .collect();
    let trimmed = cleaned.trim().trim_start_matches(['.', ' ']);
    let mut end = trimmed.len().min(MAX_NAME_BYTES);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    let result = trimmed[..end].trim_end().to_owned();
    if result.is_empty() {
        "file".to_owned()
    } else {
        result
    }
}

/// `dir/name`, or `dir/stem (2).ext` and so on if taken.
/// Moves `from` into `dir` as `name`, or `stem (2).ext` and so on if taken, never
/// over anything (another run's file, a link planted meanwhile). Returns where.
fn place_new(from: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    let candidates = std::iter::once(dir.join(name))
        .chain((2..).map(|n| dir.join(format!("{stem} ({n}){ext}"))));
    for target in candidates {
        match nofollow::rename_noreplace(from, &target) {
            Ok(()) => return Ok(target),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    unreachable!("the numbered names never run out")
}

/// Writes a reply bundle: `message` encrypted to the source labelled `source` in
/// `bundle_path` and to `newsroom` (never to anything the bundle names besides the
/// source: a compromised server must not be able to add itself as a reader).
pub fn reply(
    bundle_path: &Path,
    source: &str,
    message: &[u8],
    newsroom: &Recipients,
    out: &Path,
) -> Result<(), OfflineError> {
    if fs::symlink_metadata(out).is_ok() {
        return Err(OfflineError::OutputExists(out.to_owned()));
    }
    let file = File::open(bundle_path)?;
    let mut tar = TarReader::new(BufReader::new(file));
    let manifest = read_manifest(&mut tar)?;
    let target = manifest
        .sources
        .iter()
        .find(|s| s.label == source || s.id == source)
        .ok_or_else(|| OfflineError::UnknownSource(source.to_owned()))?;
    write_reply_bundle(&target.id, &target.recipient, message, newsroom, out)?;
    Ok(())
}

/// Writes a reply bundle for the source `source_id` whose key is `source_recipient`:
/// `message` encrypted to that key and to `newsroom`, written to a temp file, fsynced
/// and renamed to `out` (never over anything). Returns the SHA-256 of the reply's
/// ciphertext, by which the desk recognises it when an export brings it back.
pub(crate) fn write_reply_bundle(
    source_id: &str,
    source_recipient: &str,
    message: &[u8],
    newsroom: &Recipients,
    out: &Path,
) -> Result<[u8; 32], OfflineError> {
    let mut to = newsroom.to_strings();
    to.push(source_recipient.to_owned());
    let recipients = Recipients::parse(&to).map_err(|e| {
        OfflineError::Bundle(BundleError::Refused(format!(
            "the source's recipient is not usable: {e}"
        )))
    })?;
    let ciphertext = recipients
        .seal_bytes(message)
        .map_err(OfflineError::Encrypt)?;
    let entry_name = "replies/1.age";
    let manifest = ReplyManifest {
        format: bundle::REPLY_FORMAT.into(),
        version: bundle::REPLY_VERSION,
        replies: vec![ReplyEntry {
            source_id: source_id.to_owned(),
            file: entry_name.into(),
        }],
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("the reply manifest serialises");
    let tmp = out.with_extension("partial");
    let mut writer = BufWriter::new(
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?,
    );
    let write = |w: &mut BufWriter<File>| -> io::Result<()> {
        let mut tar = TarWriter::new(&mut *w);
        tar.entry(bundle::REPLY_MANIFEST, &json)?;
        tar.entry(entry_name, &ciphertext)?;
        tar.finish()?;
        w.flush()?;
        w.get_ref().sync_all()
    };
    if let Err(err) = write(&mut writer).and_then(|()| nofollow::rename_noreplace(&tmp, out)) {
        // Ours (create_new) and not yet renamed: never over a file that appeared at
        // `out` meanwhile.
        let _ = fs::remove_file(&tmp);
        return Err(err.into());
    }
    crate::fsync::sync_parent(out)?;
    Ok(sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&ciphertext)).into())
}

/// What [`check_whole`] found in a whole bundle.
#[derive(Debug)]
pub struct CheckedBundle {
    /// How many items it holds.
    pub items: usize,
    /// How many of the newsroom's replies it holds.
    pub replies: usize,
    /// The cursor it continues from (its manifest's `next_cursor`), for the next `pull`.
    pub next_cursor: Cursor,
}

/// Checks that a downloaded bundle is whole: a valid manifest (its cursors numbers),
/// then exactly the entries it lists (each once, each of the size it lists, nothing
/// else), then the end marker. `pull` keeps only bundles that pass.
pub fn check_whole(bundle_path: &Path) -> Result<CheckedBundle, OfflineError> {
    let file = File::open(bundle_path)?;
    let mut tar = TarReader::new(BufReader::new(file));
    let manifest = read_manifest(&mut tar)?;
    let mut missing: HashMap<&str, u64> = manifest.entries().collect();
    let mut seen = HashSet::new();
    while let Some(entry) = tar.next_entry()? {
        let refusal = match missing.remove(entry.name.as_str()) {
            Some(size) if size == entry.size => None,
            Some(_) => Some("an entry's size differs from the manifest's"),
            None if seen.contains(&entry.name) => Some("an entry appears twice"),
            None => Some("the bundle holds an entry its manifest does not list"),
        };
        if let Some(why) = refusal {
            return Err(BundleError::Refused(why.into()).into());
        }
        io::copy(&mut tar.entry(), &mut io::sink())?;
        seen.insert(entry.name);
    }
    // An archive cut between entries reads as one that ended there: only the end
    // marker tells them apart.
    tar.finish()?;
    if !missing.is_empty() {
        return Err(BundleError::Refused("an entry the manifest lists is missing".into()).into());
    }
    Ok(CheckedBundle {
        items: manifest.items.len(),
        replies: manifest.replies.len(),
        next_cursor: manifest.next_cursor()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        assert_eq!(safe_file_name("a\u{0}b\nc"), "abc");
        assert_eq!(safe_file_name("evil\u{202e}fdp.exe"), "evilfdp.exe");
        for hidden in [
            '\u{61c}',
            '\u{ad}',
            '\u{2060}',
            '\u{2064}',
            '\u{206a}',
            '\u{feff}',
            '\u{fffb}',
            '\u{600}',
            '\u{2028}',
            '\u{2029}',
            '\u{e0041}',
            '\u{1d173}',
            '\u{3164}',
        ] {
            assert_eq!(safe_file_name(&format!("a{hidden}b.txt")), "ab.txt");
            assert_eq!(printable(&format!("a{hidden}b")), "a?b");
        }
        assert_eq!(safe_file_name(""), "file");
        assert_eq!(safe_file_name("..."), "file");
        assert!(safe_file_name(&"é".repeat(500)).len() <= MAX_NAME_BYTES);
        assert_eq!(
            safe_label("amber-falcon", "0123456789abcdef"),
            "amber-falcon"
        );
        assert_eq!(
            safe_label("../x", "0123456789abcdef0000"),
            "source-0123456789ab"
        );
    }
}

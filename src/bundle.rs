//! Bundles: what the journalist API exports and what `agedrop reply` makes.
//!
//! Both are plain ustar archives whose first entry is a JSON manifest:
//!
//! ```text
//! export bundle                       reply bundle
//!   manifest.json                       reply-manifest.json
//!   items/ID.age       (item)           replies/N.age
//!   items/ID.meta.age  (its metadata)
//!   replies/ID.age     (the newsroom's replies, version 2)
//! ```
//!
//! The writer here is used by the server; the reader is used by the offline machine
//! and the server, and treats every archive as hostile: only regular files, only names
//! of the expected shape, checksums verified, sizes bounded by the caller. See
//! docs/protocol.md, "Bundle format".

use std::fmt;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::cursor::Cursor;

/// The export manifest's entry name.
pub const MANIFEST: &str = "manifest.json";
/// The reply manifest's entry name.
pub const REPLY_MANIFEST: &str = "reply-manifest.json";
/// `format` of an export manifest.
pub const EXPORT_FORMAT: &str = "agedrop-export";
/// `format` of a reply manifest.
pub const REPLY_FORMAT: &str = "agedrop-reply";
/// The export format's version this agedrop writes: 2 added the newsroom's replies.
pub const EXPORT_VERSION: u32 = 2;
/// The oldest export format version this agedrop still reads.
pub const OLDEST_EXPORT_VERSION: u32 = 1;
/// The reply format's version (the only one so far).
pub const REPLY_VERSION: u32 = 1;
/// Largest reply entry a reader accepts (the server's `max_reply_bytes` is capped
/// at this).
pub const MAX_REPLY_BYTES: u64 = 64 * 1024 * 1024;
/// Largest entry an octal ustar size field can state (11 digits): 8 GiB - 1.
pub const MAX_ENTRY_BYTES: u64 = 8 * 1024 * 1024 * 1024 - 1;
/// Largest manifest a reader accepts.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;
/// Most items (or replies) one manifest may list.
pub const MAX_ENTRIES: usize = 100_000;

/// The manifest of an export bundle.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// [`OLDEST_EXPORT_VERSION`] to [`EXPORT_VERSION`].
    pub version: u32,
    /// The cursor this export started after (`0`: from the beginning).
    pub since: String,
    /// The cursor to ask for what comes next (`?since=`).
    pub next_cursor: String,
    /// The sources of the items in this bundle.
    pub sources: Vec<ManifestSource>,
    /// The items, oldest first.
    pub items: Vec<ManifestItem>,
    /// The newsroom's replies stored since `since` (version 2; absent in 1).
    #[serde(default)]
    pub replies: Vec<ManifestReply>,
    /// Replies their source deleted since `since` (version 2; absent in 1).
    #[serde(default)]
    pub deleted_replies: Vec<ManifestDeletedReply>,
}

/// A source as the manifest names it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestSource {
    /// Random id (32 hex digits).
    pub id: String,
    /// Journalist-facing label, e.g. `amber-falcon`.
    pub label: String,
    /// The `age1…` recipient replies are encrypted to.
    pub recipient: String,
    /// The desk the source chose (absent from bundles made before desks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desk: Option<String>,
}

/// What an item is. Stored, exported and read back as `message` or `file`, and
/// nothing else parses.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// A source's message.
    Message,
    /// A file a source uploaded.
    File,
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl ItemKind {
    /// The name in the database, the manifest and the metadata record.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Message => "message",
            ItemKind::File => "file",
        }
    }
}

/// An item's metadata record: everything about it the server must not keep in the
/// clear. The server writes it (JSON, padded with spaces to 1024 bytes, age-encrypted)
/// as `items/ID.meta.age`; `open` reads it back. Strings are wiped on drop.
#[derive(Serialize, Deserialize)]
pub struct ItemRecord {
    /// Always 1.
    pub version: u32,
    /// What the item is.
    pub kind: ItemKind,
    /// The filename the source's browser sent, cut to fit the record.
    pub filename: Option<String>,
    /// The content type the source's browser sent, cut to fit the record.
    pub content_type: Option<String>,
    /// When it arrived, RFC 3339 UTC.
    pub received: String,
    /// The submission it came with (random id; items sent together share it).
    pub submission: String,
    /// Bytes of plaintext.
    pub plaintext_size: u64,
}

impl Drop for ItemRecord {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(name) = self.filename.as_mut() {
            name.zeroize();
        }
        if let Some(kind) = self.content_type.as_mut() {
            kind.zeroize();
        }
        self.received.zeroize();
    }
}

/// An item as the manifest names it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestItem {
    /// Random id (32 hex digits).
    pub id: String,
    /// The source's id.
    pub source_id: String,
    /// `message` or `file`.
    pub kind: ItemKind,
    /// Order within the source, from 1.
    pub order: i64,
    /// The UTC day it was stored.
    pub day: String,
    /// Bytes of the ciphertext entry.
    pub size: u64,
    /// Bytes of the metadata entry.
    pub meta_size: u64,
    /// Entry name of the ciphertext: `items/ID.age`.
    pub blob: String,
    /// Entry name of the encrypted metadata: `items/ID.meta.age`.
    pub meta: String,
}

/// A reply the newsroom sent a source, as an export lists it. Replies share the
/// source's order with its items, so a thread reads in the order things happened.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestReply {
    /// Random id (32 hex digits).
    pub id: String,
    /// The source it was sent to.
    pub source_id: String,
    /// Order within the source, from 1 (shared with the source's items).
    pub order: i64,
    /// The UTC day it was stored.
    pub day: String,
    /// Bytes of the ciphertext entry.
    pub size: u64,
    /// Entry name of the ciphertext: `replies/ID.age`.
    pub blob: String,
}

/// The fact that a source deleted a reply: where it stood in the thread, nothing else
/// (the server keeps no id, day or content of a deleted reply; SECURITY.md).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestDeletedReply {
    /// The source that deleted it.
    pub source_id: String,
    /// The reply's order within the source.
    pub order: i64,
}

/// The answer of `GET /api/v1/status`: how many items of the account's desks came
/// after its last pull, and nothing else (no ids, days or sizes). At most
/// [`STATUS_CAP`]: more reads as that many.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// Items stored since the account's last pull.
    pub new_items: u64,
}

/// The most `GET /api/v1/status` counts, so the count stays cheap on any drop.
pub const STATUS_CAP: u64 = 10_000;

/// The manifest of a reply bundle.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReplyManifest {
    /// Always [`REPLY_FORMAT`].
    pub format: String,
    /// Always [`REPLY_VERSION`].
    pub version: u32,
    /// The replies.
    pub replies: Vec<ReplyEntry>,
}

/// One reply in a reply bundle.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReplyEntry {
    /// The source it is for.
    pub source_id: String,
    /// Entry name of its age ciphertext: `replies/N.age`.
    pub file: String,
}

/// Entry name of an item's ciphertext.
pub fn item_entry(id: &str) -> String {
    format!("items/{id}.age")
}

/// Entry name of a reply's ciphertext in an export.
pub fn reply_entry(id: &str) -> String {
    format!("replies/{id}.age")
}

/// Entry name of an item's metadata.
pub fn meta_entry(id: &str) -> String {
    format!("items/{id}.meta.age")
}

/// True for a server-made id: 32 lowercase hex digits.
pub fn is_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Manifest {
    /// Checks what a reader relies on: format, version, cursors that are numbers,
    /// bounded counts, ids and entry names of the expected shape, every item's source
    /// listed.
    pub fn validate(&self) -> Result<(), BundleError> {
        if self.format != EXPORT_FORMAT {
            return Err(BundleError::Refused("not an agedrop export".into()));
        }
        if !(OLDEST_EXPORT_VERSION..=EXPORT_VERSION).contains(&self.version) {
            return Err(BundleError::Refused(format!(
                "the bundle's format version is {}; this agedrop reads versions \
                 {OLDEST_EXPORT_VERSION} to {EXPORT_VERSION} (update agedrop on this machine)",
                self.version
            )));
        }
        if self.version < 2 && !(self.replies.is_empty() && self.deleted_replies.is_empty()) {
            return Err(BundleError::Refused(
                "a version 1 bundle cannot hold replies".into(),
            ));
        }
        // `pull` sends next_cursor back to the server: only a number may come through.
        if Cursor::parse(&self.since).is_none() {
            return Err(not_a_cursor());
        }
        self.next_cursor()?;
        if self.items.len() > MAX_ENTRIES
            || self.sources.len() > MAX_ENTRIES
            || self.replies.len() > MAX_ENTRIES
            || self.deleted_replies.len() > MAX_ENTRIES
        {
            return Err(BundleError::Refused(
                "too many entries in the manifest".into(),
            ));
        }
        let mut sources = std::collections::HashSet::new();
        let mut labels = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        let mut orders = std::collections::HashSet::new();
        for source in &self.sources {
            if !is_id(&source.id) {
                return Err(BundleError::Refused("a source id is malformed".into()));
            }
            if source
                .desk
                .as_deref()
                .is_some_and(|d| !crate::desks::is_id(d))
            {
                return Err(BundleError::Refused("a source's desk is malformed".into()));
            }
            // Two sources under one name would share a directory offline.
            if !sources.insert(source.id.as_str()) || !labels.insert(source.label.as_str()) {
                return Err(BundleError::Refused(
                    "two sources share an id or a label".into(),
                ));
            }
        }
        for item in &self.items {
            if !is_id(&item.id)
                || item.blob != item_entry(&item.id)
                || item.meta != meta_entry(&item.id)
            {
                return Err(BundleError::Refused(
                    "an item id or entry name is malformed".into(),
                ));
            }
            if !sources.contains(item.source_id.as_str()) {
                return Err(BundleError::Refused(
                    "an item names a source the manifest lacks".into(),
                ));
            }
            if !is_day(&item.day) || item.order < 1 {
                return Err(BundleError::Refused(
                    "an item's day or order is malformed".into(),
                ));
            }
            if !ids.insert(item.id.as_str()) {
                return Err(BundleError::Refused("two entries share an id".into()));
            }
            if !orders.insert((item.source_id.as_str(), item.order)) {
                return Err(BundleError::Refused(
                    "two entries share an order within one source".into(),
                ));
            }
        }
        for reply in &self.replies {
            if !is_id(&reply.id)
                || reply.blob != reply_entry(&reply.id)
                || reply.size > MAX_REPLY_BYTES
            {
                return Err(BundleError::Refused(
                    "a reply id or entry name is malformed".into(),
                ));
            }
            if !is_day(&reply.day) {
                return Err(BundleError::Refused("a reply's day is malformed".into()));
            }
            if !ids.insert(reply.id.as_str()) {
                return Err(BundleError::Refused("two entries share an id".into()));
            }
        }
        let orders_of_replies = self
            .replies
            .iter()
            .map(|r| (r.source_id.as_str(), r.order))
            .chain(
                self.deleted_replies
                    .iter()
                    .map(|d| (d.source_id.as_str(), d.order)),
            );
        for (source_id, order) in orders_of_replies {
            if !sources.contains(source_id) {
                return Err(BundleError::Refused(
                    "a reply names a source the manifest lacks".into(),
                ));
            }
            if order < 1 {
                return Err(BundleError::Refused("a reply's order is malformed".into()));
            }
            if !orders.insert((source_id, order)) {
                return Err(BundleError::Refused(
                    "two entries share an order within one source".into(),
                ));
            }
        }
        Ok(())
    }

    /// Every entry name the manifest lists with the size it must have, in no order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, u64)> {
        let items = self
            .items
            .iter()
            .flat_map(|i| [(i.blob.as_str(), i.size), (i.meta.as_str(), i.meta_size)]);
        let replies = self.replies.iter().map(|r| (r.blob.as_str(), r.size));
        items.chain(replies)
    }

    /// The cursor to pull from next.
    pub fn next_cursor(&self) -> Result<Cursor, BundleError> {
        Cursor::parse(&self.next_cursor).ok_or_else(not_a_cursor)
    }
}

/// `YYYY-MM-DD` and nothing else: days reach what the journalist reads, so no room
/// for escape sequences.
fn is_day(day: &str) -> bool {
    day.len() == 10
        && day.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

fn not_a_cursor() -> BundleError {
    BundleError::Refused(
        "the manifest's since or next_cursor is not a cursor (a non-negative integer)".into(),
    )
}

/// Why a bundle cannot be read or written.
#[derive(Debug)]
pub enum BundleError {
    /// Reading or writing failed.
    Io(io::Error),
    /// The archive is not one we accept, and why (fixed words; no bundle content).
    Refused(String),
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Io(err) => write!(f, "{err}"),
            BundleError::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl std::error::Error for BundleError {}

impl From<io::Error> for BundleError {
    fn from(err: io::Error) -> Self {
        BundleError::Io(err)
    }
}

const BLOCK: usize = 512;

/// A ustar header for a regular file `name` (≤ 100 bytes) of `size` bytes. Mode 0600,
/// owner 0, mtime 0: the archive says nothing the manifest does not.
pub fn tar_header(name: &str, size: u64) -> [u8; BLOCK] {
    assert!(name.len() <= 100, "entry names are short and server-made");
    assert!(
        size <= MAX_ENTRY_BYTES,
        "entry sizes are bounded by the config"
    );
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000600");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

/// Zero bytes that pad an entry of `size` bytes to a whole block.
pub fn tar_padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// The two zero blocks that end an archive.
pub const TAR_END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// The one writer of bundles: ustar entries of regular files, then the end blocks.
pub struct TarWriter<W: Write> {
    inner: W,
}

impl<W: Write> TarWriter<W> {
    /// A writer into `inner`.
    pub fn new(inner: W) -> Self {
        TarWriter { inner }
    }

    /// An entry holding `data`.
    pub fn entry(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.entry_from(name, data.len() as u64, &mut &data[..])
    }

    /// An entry of exactly `size` bytes copied from `data`; fewer is an error (the
    /// archive would be corrupt).
    pub fn entry_from(&mut self, name: &str, size: u64, data: &mut impl Read) -> io::Result<()> {
        self.inner.write_all(&tar_header(name, size))?;
        let copied = io::copy(&mut data.take(size), &mut self.inner)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "an entry's data ended before its size",
            ));
        }
        self.inner.write_all(&[0u8; BLOCK][..tar_padding(size)])
    }

    /// Writes the end blocks and hands back the inner writer (not flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&TAR_END)?;
        Ok(self.inner)
    }
}

/// A strict reader of ustar archives from an untrusted source.
pub struct TarReader<R: Read> {
    inner: R,
    /// Bytes of the current entry not yet read, then its padding.
    left: u64,
    padding: usize,
    /// The first end block was read (not just the end of the input).
    end_block: bool,
}

/// An entry's header, as far as we accept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Its name (ASCII, relative, no `..`).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

impl<R: Read> TarReader<R> {
    /// A reader over `inner`.
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            left: 0,
            padding: 0,
            end_block: false,
        }
    }

    /// The next entry's header; `None` at the end of the archive. Anything but a plain
    /// regular file with a safe name is refused.
    pub fn next_entry(&mut self) -> Result<Option<TarEntry>, BundleError> {
        self.skip_rest()?;
        let mut header = [0u8; BLOCK];
        if !read_block(&mut self.inner, &mut header)? {
            return Ok(None); // EOF without end blocks: accept as the end
        }
        if header.iter().all(|&b| b == 0) {
            self.end_block = true;
            return Ok(None);
        }
        let stored =
            parse_octal(&header[148..156]).ok_or_else(|| refused("bad header checksum"))?;
        let mut sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
        sum -= header[148..156].iter().map(|&b| u64::from(b)).sum::<u64>();
        sum += 8 * u64::from(b' ');
        if sum != stored {
            return Err(refused("bad header checksum"));
        }
        match header[156] {
            b'0' | 0 => {}
            b'1' | b'2' => return Err(refused("links are not allowed")),
            b'3' | b'4' | b'6' => return Err(refused("devices and fifos are not allowed")),
            b'5' => return Err(refused("directories are not allowed")),
            _ => return Err(refused("unsupported entry type")),
        }
        if header[345..500].iter().any(|&b| b != 0) {
            return Err(refused("long names are not allowed"));
        }
        let end = header[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name =
            std::str::from_utf8(&header[..end]).map_err(|_| refused("entry name is not UTF-8"))?;
        if !safe_name(name) {
            return Err(refused("unsafe entry name"));
        }
        let size = parse_octal(&header[124..136]).ok_or_else(|| refused("bad entry size"))?;
        self.left = size;
        self.padding = tar_padding(size);
        Ok(Some(TarEntry {
            name: name.to_owned(),
            size,
        }))
    }

    /// Once [`TarReader::next_entry`] has returned `None`: checks that the archive
    /// ended with its two zero blocks and nothing follows them. `next_entry` takes the
    /// end of the input for the end of the archive, so an archive cut at an entry's
    /// boundary passes it; a reader that must know it has it all calls this.
    pub fn finish(mut self) -> Result<(), BundleError> {
        let cut_short = || refused("the archive has no end marker: it was cut short");
        if !self.end_block {
            return Err(cut_short());
        }
        let mut second = [0u8; BLOCK];
        match read_block(&mut self.inner, &mut second) {
            Ok(true) if second.iter().all(|&b| b == 0) => {}
            Ok(true) => return Err(refused("the archive's end marker is malformed")),
            Ok(false) => return Err(cut_short()),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Err(cut_short()),
            Err(err) => return Err(err.into()),
        }
        let mut more = [0u8; 1];
        if self.inner.read(&mut more)? != 0 {
            return Err(refused("data follows the archive's end marker"));
        }
        Ok(())
    }

    /// Reads the current entry's data (up to its size).
    pub fn entry(&mut self) -> EntryReader<'_, R> {
        EntryReader { tar: self }
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        let skip = self.left + self.padding as u64;
        let copied = io::copy(&mut (&mut self.inner).take(skip), &mut io::sink())?;
        self.left = 0;
        self.padding = 0;
        if copied < skip {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive is truncated",
            ));
        }
        Ok(())
    }
}

/// The data of one entry.
pub struct EntryReader<'a, R: Read> {
    tar: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tar.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.tar.left).unwrap_or(usize::MAX));
        let n = self.tar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive is truncated",
            ));
        }
        self.tar.left -= n as u64;
        Ok(n)
    }
}

fn refused(why: &str) -> BundleError {
    BundleError::Refused(why.into())
}

/// Relative, ASCII, no `.`/`..` components, no empty components, no backslashes.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.is_ascii()
        && !name.starts_with('/')
        && !name.contains('\\')
        && name.bytes().all(|b| b.is_ascii_graphic())
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() || digits.len() > 11 {
        return None;
    }
    u64::from_str_radix(digits, 8).ok()
}

/// Fills `block`; false at a clean EOF before its first byte.
fn read_block(reader: &mut impl Read, block: &mut [u8; BLOCK]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < BLOCK {
        let n = reader.read(&mut block[filled..])?;
        if n == 0 {
            return if filled == 0 {
                Ok(false)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "archive is truncated",
                ))
            };
        }
        filled += n;
    }
    Ok(true)
}

/// Reads a whole entry of at most `max` bytes.
pub fn read_small<R: Read>(
    tar: &mut TarReader<R>,
    entry: &TarEntry,
    max: u64,
) -> Result<Vec<u8>, BundleError> {
    if entry.size > max {
        return Err(refused("entry is larger than allowed"));
    }
    let mut data = Vec::with_capacity(entry.size as usize);
    tar.entry().read_to_end(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = TarWriter::new(Vec::new());
        for (name, data) in entries {
            tar.entry(name, data).unwrap();
        }
        tar.finish().unwrap()
    }

    #[test]
    fn manifests_with_odd_fields_are_refused() {
        let id = "0123456789abcdef0123456789abcdef".to_owned();
        let good = Manifest {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            since: "0".into(),
            next_cursor: "1".into(),
            sources: vec![ManifestSource {
                id: id.clone(),
                label: "amber-falcon".into(),
                recipient: "age1x".into(),
                desk: Some("investigations".into()),
            }],
            items: vec![ManifestItem {
                id: id.clone(),
                source_id: id.clone(),
                kind: ItemKind::File,
                order: 1,
                day: "2026-11-28".into(),
                size: 1,
                meta_size: 1,
                blob: item_entry(&id),
                meta: meta_entry(&id),
            }],
            replies: Vec::new(),
            deleted_replies: Vec::new(),
        };
        assert!(good.validate().is_ok());
        let mut bad = good.clone();
        bad.items[0].day = "2026-11-2\u{1b}".into();
        assert!(bad.validate().is_err(), "escape sequences in the day");
        let mut forged = serde_json::to_value(&good).unwrap();
        forged["items"][0]["kind"] = "\nforged".into();
        assert!(
            serde_json::from_value::<Manifest>(forged).is_err(),
            "an unknown kind"
        );
        let mut bad = good.clone();
        bad.items[0].source_id = "f".repeat(32);
        assert!(bad.validate().is_err(), "unknown source");
        let mut bad = good.clone();
        bad.items[0].blob = "items/../x.age".into();
        assert!(bad.validate().is_err());

        // Repeats: a label, a source id, an item id, an order within a source.
        let other = "fedcba9876543210fedcba9876543210".to_owned();
        let mut twice = good.clone();
        twice.sources.push(ManifestSource {
            id: other.clone(),
            ..good.sources[0].clone()
        });
        assert!(refusal(&twice).contains("share an id or a label"));
        let mut twice = good.clone();
        twice.sources.push(ManifestSource {
            label: "other-label".into(),
            ..good.sources[0].clone()
        });
        assert!(refusal(&twice).contains("share an id or a label"));
        let mut twice = good.clone();
        twice.items.push(ManifestItem {
            order: 2,
            ..good.items[0].clone()
        });
        assert_eq!(refusal(&twice), "refused: two entries share an id");
        let mut twice = good.clone();
        twice.replies.push(ManifestReply {
            id: other.clone(),
            source_id: id.clone(),
            order: 1,
            day: "2026-11-28".into(),
            size: 10,
            blob: reply_entry(&other),
        });
        assert_eq!(
            refusal(&twice),
            "refused: two entries share an order within one source"
        );
        let mut deleted_twice = good.clone();
        deleted_twice.deleted_replies.push(ManifestDeletedReply {
            source_id: id.clone(),
            order: 1,
        });
        assert_eq!(
            refusal(&deleted_twice),
            "refused: two entries share an order within one source"
        );

        // Versions: 1 without replies is read; 1 with replies, and 3, are refused.
        let mut old = good.clone();
        old.version = 1;
        assert!(old.validate().is_ok());
        old.deleted_replies = deleted_twice.deleted_replies.clone();
        old.deleted_replies[0].order = 2;
        assert_eq!(
            refusal(&old),
            "refused: a version 1 bundle cannot hold replies"
        );
        let mut newer = good;
        newer.version = 3;
        assert_eq!(
            refusal(&newer),
            "refused: the bundle's format version is 3; this agedrop reads versions 1 to 2 \
             (update agedrop on this machine)"
        );
    }

    fn refusal(manifest: &Manifest) -> String {
        manifest.validate().unwrap_err().to_string()
    }

    #[test]
    fn round_trip_and_refusals() {
        let bytes = archive(&[("manifest.json", b"{}"), ("items/a.age", &[7u8; 1000])]);
        let mut tar = TarReader::new(&bytes[..]);
        let first = tar.next_entry().unwrap().unwrap();
        assert_eq!(first.name, "manifest.json");
        assert_eq!(read_small(&mut tar, &first, 10).unwrap(), b"{}");
        let second = tar.next_entry().unwrap().unwrap();
        assert_eq!(second.size, 1000);
        // Skipping an unread entry works.
        assert!(tar.next_entry().unwrap().is_none());

        for bad in ["../x", "/etc/passwd", "a/../../b", "a//b", "a\\b", "./x"] {
            let mut header = tar_header("placeholder", 0);
            header[..100].fill(0);
            header[..bad.len()].copy_from_slice(bad.as_bytes());
            header[148..156].copy_from_slice(b"        ");
            let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
            header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
            let mut tar = TarReader::new(&header[..]);
            assert!(
                matches!(tar.next_entry(), Err(BundleError::Refused(_))),
                "{bad}"
            );
        }

        let mut symlink = tar_header("link", 0);
        symlink[156] = b'2';
        symlink[148..156].copy_from_slice(b"        ");
        let sum: u32 = symlink.iter().map(|&b| u32::from(b)).sum();
        symlink[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert!(matches!(
            TarReader::new(&symlink[..]).next_entry(),
            Err(BundleError::Refused(_))
        ));

        let mut corrupt = tar_header("x", 0);
        corrupt[0] = b'y';
        assert!(matches!(
            TarReader::new(&corrupt[..]).next_entry(),
            Err(BundleError::Refused(_))
        ));

        let whole = archive(&[("a", &[1u8; 600])]);
        let finish = |bytes: &[u8]| {
            let mut tar = TarReader::new(bytes);
            while tar.next_entry().unwrap().is_some() {}
            tar.finish()
        };
        assert!(finish(&whole).is_ok());
        let entries_end = whole.len() - TAR_END.len();
        for (cut, why) in [
            (
                &whole[..entries_end],
                "the archive has no end marker: it was cut short",
            ),
            (
                &whole[..entries_end + 512],
                "the archive has no end marker: it was cut short",
            ),
            (
                &whole[..entries_end + 700],
                "the archive has no end marker: it was cut short",
            ),
        ] {
            assert_eq!(
                finish(cut).unwrap_err().to_string(),
                format!("refused: {why}")
            );
        }
        let mut trailing = whole.clone();
        trailing.push(0);
        assert_eq!(
            finish(&trailing).unwrap_err().to_string(),
            "refused: data follows the archive's end marker"
        );

        let truncated = &archive(&[("a", &[1u8; 600])])[..700];
        let mut tar = TarReader::new(truncated);
        tar.next_entry().unwrap();
        assert!(tar.next_entry().is_err());
    }
}

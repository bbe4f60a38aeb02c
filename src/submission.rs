//! A source's upload, from multipart body to sealed items.
//!
//! Each part is streamed **as it arrives** into an age encryptor running on a blocking
//! thread, which writes ciphertext to a temp file; the receiving task parses the next
//! bytes while that thread encrypts (docs/PERFORMANCE.md: overlap is what makes the speed).
//! A bounded channel between the two keeps memory flat whatever the upload's size.
//! Nothing becomes an item until every part is whole: any failure drops the temp files.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, Semaphore};
use zeroize::{Zeroize, Zeroizing};

use crate::bundle::ItemRecord;
use crate::config::Limits;
use crate::crypto::Recipients;
use crate::desks::{Desk, Desks};
use crate::metrics::Metrics;
use crate::rate::TokenBucket;
use crate::store::{
    encrypt_error, io_error, ItemBlob, ItemKind, Owner, SealedItem, Store, StoreError,
};
use crate::{random, time};

/// Field names of the submit form (docs/protocol.md).
pub const FIELD_CSRF: &str = "csrf";
/// The message textarea.
pub const FIELD_MESSAGE: &str = "message";
/// The file input (`multiple`).
pub const FIELD_FILES: &str = "files";
/// The desk a first submission is for (radio buttons; only with several desks). It
/// must come right after `csrf`: items are encrypted to its recipients as they arrive.
pub const FIELD_DESK: &str = "desk";

/// Plaintext chunks waiting between the receiving task and one encrypting thread.
/// One: a network read may pass through whole (up to about 500 KiB), so one waiting
/// while one is sealed keeps the encrypting thread busy, and more would only hold
/// memory (64 concurrent uploads must stay within 128 MiB, docs/PERFORMANCE.md).
const CHANNEL_CHUNKS: usize = 1;
/// While at most this many items are being encrypted server-wide, large network
/// reads pass to the encrypting thread whole (no copy, one hand-off per read); beyond
/// it, every item gathers copies of [`BATCH`] bytes, so that each read's buffer is
/// freed at once: two whole reads held by each of 64 uploads would take them past
/// their memory target.
const PASS_THROUGH_ITEMS: usize = 4;
/// Items being encrypted now, server-wide.
static ITEMS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Bytes the multipart parser may hold beyond what it has handed us (part headers,
/// boundaries, one network read). Caps memory against parts with endless headers.
const MAX_PARSER_LAG: u64 = 1024 * 1024;
/// How often (in received bytes) an upload re-checks the free-space floor.
const SPACE_CHECK_EVERY: u64 = 4 * 1024 * 1024;
/// Stored filenames and content types are cut to this many bytes.
const MAX_NAME_BYTES: usize = 255;
/// The metadata record is padded to a multiple of this, so its size does not tell the
/// filename's length. See SECURITY.md.
const META_PAD: usize = 1024;
/// Most bytes a stored filename may take in the metadata record's JSON, escapes
/// included.
const MAX_NAME_JSON: usize = 520;
/// Most bytes a stored content type may take in the record's JSON, escapes included.
const MAX_TYPE_JSON: usize = 200;
/// Capacity of the metadata buffer: more than any record can need, so it never moves.
const META_CAPACITY: usize = 16 * 1024;

/// Why a submission was not stored. Nothing of it was kept in any case.
#[derive(Debug)]
pub enum SubmissionError {
    /// The csrf field was missing, not first, or wrong.
    Csrf,
    /// More than `limit` bytes.
    TooLarge {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// More than `limit` files.
    TooManyFiles {
        /// The configured limit.
        limit: usize,
    },
    /// A message longer than `limit` characters.
    MessageTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// The message is not UTF-8.
    MessageNotText,
    /// A field the form does not have, or one given twice.
    UnexpectedField,
    /// The body is not multipart/form-data we can read.
    Malformed,
    /// Neither a message nor a file.
    Empty,
    /// The client sent nothing for the idle timeout.
    Idle,
    /// The client went away mid-upload.
    Disconnected,
    /// Too many uploads at once.
    Busy,
    /// The site took `limits.max_submissions_per_minute` submissions in the last minute.
    RateLimited,
    /// The disk is (nearly) full.
    NoSpace,
    /// The store failed.
    Store(StoreError),
    /// The follow-up's source was deleted meanwhile.
    SourceGone,
    /// Several desks, and the form chose none.
    NoDesk,
    /// The form chose a desk this drop does not have.
    UnknownDesk,
    /// The source's desk takes no more submissions (retired or removed from the config).
    DeskClosed,
}

impl SubmissionError {
    /// Every refusal's fixed name, in the order of [`SubmissionError::kind`]'s arms: the
    /// cause in the debug log line and the label of the metrics counter. Never anything
    /// the client sent.
    pub const KINDS: [&'static str; 18] = [
        "csrf",
        "too_large",
        "too_many_files",
        "message_too_long",
        "message_not_text",
        "unexpected_field",
        "malformed",
        "empty",
        "idle",
        "disconnected",
        "busy",
        "rate_limited",
        "no_space",
        "store_error",
        "source_gone",
        "no_desk",
        "unknown_desk",
        "desk_closed",
    ];

    /// This refusal's place in [`SubmissionError::KINDS`].
    pub fn kind_index(&self) -> usize {
        use SubmissionError as E;
        match self {
            E::Csrf => 0,
            E::TooLarge { .. } => 1,
            E::TooManyFiles { .. } => 2,
            E::MessageTooLong { .. } => 3,
            E::MessageNotText => 4,
            E::UnexpectedField => 5,
            E::Malformed => 6,
            E::Empty => 7,
            E::Idle => 8,
            E::Disconnected => 9,
            E::Busy => 10,
            E::RateLimited => 11,
            E::NoSpace => 12,
            E::Store(_) => 13,
            E::SourceGone => 14,
            E::NoDesk => 15,
            E::UnknownDesk => 16,
            E::DeskClosed => 17,
        }
    }

    /// This refusal's fixed name.
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }
}

impl From<StoreError> for SubmissionError {
    fn from(err: StoreError) -> Self {
        if err.is_disk_full() {
            SubmissionError::NoSpace
        } else if matches!(err, StoreError::UnknownSource) {
            SubmissionError::SourceGone
        } else {
            SubmissionError::Store(err)
        }
    }
}

/// What [`Intake::receive`] sealed, and for which desk.
pub struct Received {
    /// The sealed items, in `tmp/` until committed.
    pub items: Vec<SealedItem>,
    /// The desk they are encrypted for.
    pub desk: String,
}

/// Ingests submissions into a store, each to its desk's recipients, within limits.
pub struct Intake {
    store: Arc<Store>,
    desks: Desks,
    limits: Limits,
    uploads: Arc<Semaphore>,
    /// `max_submissions_per_minute` at once at most, refilled evenly over a minute;
    /// one for the whole site (SECURITY.md, "Floods").
    rate: std::sync::Mutex<TokenBucket>,
    /// Submissions accepted and refused, for the metrics listener.
    metrics: Arc<Metrics>,
}

impl Intake {
    /// An intake writing to `store`, encrypting to the recipients of each submission's
    /// desk.
    pub fn new(store: Arc<Store>, desks: Desks, limits: Limits) -> Self {
        let uploads = Arc::new(Semaphore::new(limits.max_concurrent_uploads));
        let per_minute = f64::from(limits.max_submissions_per_minute);
        let rate = std::sync::Mutex::new(TokenBucket::full(per_minute, per_minute / 60.0));
        Intake {
            store,
            desks,
            limits,
            uploads,
            rate,
            metrics: Arc::default(),
        }
    }

    /// The counters of submissions accepted and refused.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The desks submissions go to.
    pub fn desks(&self) -> &Desks {
        &self.desks
    }

    /// Checks, before reading a body, that an upload of `announced` bytes (from
    /// Content-Length, if any) may start: within the size limit, and leaving the
    /// free-space floor intact.
    pub async fn check_announced(&self, announced: Option<u64>) -> Result<(), SubmissionError> {
        let limit = self.limits.max_submission_bytes;
        // Multipart framing adds a little per part; allow for it before refusing.
        if announced.is_some_and(|n| n > limit.saturating_add(framing_allowance(&self.limits))) {
            return Err(SubmissionError::TooLarge { limit });
        }
        self.check_space(announced.unwrap_or(0)).await
    }

    /// Refuses with [`SubmissionError::NoSpace`] unless `more` bytes still leave
    /// `min_free_bytes` free, and the files this submission may create (two per item,
    /// at most `max_files` + 1 items) still leave `min_free_inodes` free: many tiny
    /// items exhaust inodes long before bytes.
    async fn check_space(&self, more: u64) -> Result<(), SubmissionError> {
        let store = Arc::clone(&self.store);
        let free = tokio::task::spawn_blocking(move || store.free_space())
            .await
            .expect("free_space does not panic")?;
        let inodes_needed = 2 * (self.limits.max_files as u64 + 1);
        if free.bytes < self.limits.min_free_bytes.saturating_add(more)
            || free.inodes < self.limits.min_free_inodes.saturating_add(inodes_needed)
        {
            return Err(SubmissionError::NoSpace);
        }
        Ok(())
    }

    /// Reads a multipart body whose first field must be `csrf` (checked by
    /// `csrf_ok`) and streams every part into sealed items in `tmp/`, encrypted to the
    /// recipients of `desk` (a follow-up's source's desk) or, for a first submission
    /// (`None`), of the desk the form chose (or the only one). They become items only
    /// through [`Intake::commit`]; dropped, they leave nothing. `started` runs with the
    /// desk once the upload has passed every check that refuses it up front (csrf,
    /// desk, upload slot, submission rate), so work it starts is never wasted on those.
    pub async fn receive<S, E>(
        &self,
        body: S,
        boundary: String,
        csrf_ok: impl FnOnce(&[u8]) -> bool,
        desk: Option<&str>,
        started: impl FnOnce(&Desk),
    ) -> Result<Received, SubmissionError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let lag = Arc::new(ParserLag::default());
        let body = guard_body(body, self.limits.idle_body_timeout(), Arc::clone(&lag));
        let whole = self
            .limits
            .max_submission_bytes
            .saturating_add(framing_allowance(&self.limits));
        let constraints = multer::Constraints::new()
            .allowed_fields(vec![FIELD_CSRF, FIELD_DESK, FIELD_MESSAGE, FIELD_FILES])
            .size_limit(multer::SizeLimit::new().whole_stream(whole));
        let boundary_len = boundary.len();
        let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);

        let submission_id = random::hex_id(16);
        let mut total: u64 = 0;
        let mut items: Vec<SealedItem> = Vec::new();
        let mut files = 0usize;
        let mut seen_message = false;

        // The csrf field comes first (the form puts it first), so nothing is encrypted
        // for a forged request, and it must come as fast as headers do: an upload slot
        // is taken only once it has been checked.
        let token = tokio::time::timeout(
            self.limits.header_read_timeout(),
            read_csrf(&mut multipart, &lag, boundary_len),
        )
        .await
        .map_err(|_| SubmissionError::Idle)??;
        if !csrf_ok(&token) {
            return Err(SubmissionError::Csrf);
        }
        let desk = match desk {
            Some(id) => self.desks.get(id).ok_or(SubmissionError::DeskClosed)?,
            None => match self.desks.only() {
                Some(only) => only,
                None => {
                    let chosen = tokio::time::timeout(
                        self.limits.header_read_timeout(),
                        read_small_field(&mut multipart, &lag, boundary_len, FIELD_DESK),
                    )
                    .await
                    .map_err(|_| SubmissionError::Idle)??
                    .ok_or(SubmissionError::NoDesk)?;
                    std::str::from_utf8(&chosen)
                        .ok()
                        .and_then(|id| self.desks.get(id))
                        .ok_or(SubmissionError::UnknownDesk)?
                }
            },
        };
        let _slot = Arc::clone(&self.uploads)
            .try_acquire_owned()
            .map_err(|_| SubmissionError::Busy)?;
        // Counted once a real upload starts (csrf checked, slot free), so forged or
        // refused requests do not use up the site's budget.
        if !self
            .rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_take()
        {
            return Err(SubmissionError::RateLimited);
        }
        started(desk);
        let mut next_space_check = SPACE_CHECK_EVERY;

        // The part being encrypted, if any. On failure its sealing thread is waited for,
        // so that when this returns no thread of this upload is still writing.
        let mut current: Option<ItemWriter> = None;
        let outcome: Result<(), SubmissionError> = async {
            // The form has a message and one file input; a browser sends one empty part for
            // an empty file input. More parts than files allowed plus a few is not a form.
            let max_parts = self.limits.max_files.saturating_add(4);
            let mut parts = 0usize;
            while let Some(mut field) = multipart.next_field().await.map_err(map_multer)? {
                lag.consumed(part_framing(&field, boundary_len));
                parts += 1;
                if parts > max_parts {
                    return Err(SubmissionError::TooManyFiles {
                        limit: self.limits.max_files,
                    });
                }
                let kind = match field.name() {
                    // The only desk named although nobody asked: it must be that one.
                    Some(FIELD_DESK) if parts == 1 && self.desks.only().is_some() => {
                        let mut named = Vec::new();
                        while let Some(chunk) = field.chunk().await.map_err(map_multer)? {
                            lag.consumed(chunk.len());
                            named.extend_from_slice(&chunk);
                            if named.len() > crate::desks::MAX_ID {
                                return Err(SubmissionError::UnknownDesk);
                            }
                        }
                        if named != desk.id.as_bytes() {
                            return Err(SubmissionError::UnknownDesk);
                        }
                        continue;
                    }
                    Some(FIELD_MESSAGE) if !seen_message => {
                        seen_message = true;
                        ItemKind::Message
                    }
                    Some(FIELD_FILES) => ItemKind::File,
                    _ => return Err(SubmissionError::UnexpectedField),
                };
                let filename = field
                    .file_name()
                    .map(|n| truncate_escaped(n, MAX_NAME_BYTES, MAX_NAME_JSON));
                let content_type = field
                    .content_type()
                    .map(|m| truncate_escaped(m.as_ref(), MAX_NAME_BYTES, MAX_TYPE_JSON));
                let mut text = (kind == ItemKind::Message)
                    .then(|| TextCheck::new(self.limits.max_message_chars));
                let mut size: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(map_multer)? {
                    lag.consumed(chunk.len());
                    if chunk.is_empty() {
                        continue;
                    }
                    total += chunk.len() as u64;
                    size += chunk.len() as u64;
                    if total > self.limits.max_submission_bytes {
                        return Err(SubmissionError::TooLarge {
                            limit: self.limits.max_submission_bytes,
                        });
                    }
                    if total >= next_space_check {
                        // Other uploads fill the disk too: look again as this one grows.
                        self.check_space(0).await?;
                        next_space_check += SPACE_CHECK_EVERY;
                    }
                    if let Some(text) = text.as_mut() {
                        text.feed(&chunk)?;
                    }
                    if current.is_none() {
                        if kind == ItemKind::File {
                            files += 1;
                            if files > self.limits.max_files {
                                return Err(SubmissionError::TooManyFiles {
                                    limit: self.limits.max_files,
                                });
                            }
                        }
                        current = Some(self.start_item(desk));
                    }
                    if let Some(writer) = current.as_mut() {
                        writer.write(chunk).await?;
                    }
                }
                if let Some(text) = text.as_ref() {
                    text.finish()?;
                }
                let named_empty_file =
                    kind == ItemKind::File && filename.as_deref().is_some_and(|n| !n.is_empty());
                let writer = match current.take() {
                    Some(writer) => writer,
                    // A browser sends an empty, unnamed part when no file was chosen, and
                    // an empty message when the textarea was left blank: not items.
                    None if !named_empty_file => continue,
                    None => {
                        files += 1;
                        if files > self.limits.max_files {
                            return Err(SubmissionError::TooManyFiles {
                                limit: self.limits.max_files,
                            });
                        }
                        self.start_item(desk)
                    }
                };
                let meta = ItemRecord {
                    version: 1,
                    kind,
                    filename,
                    content_type,
                    received: time::rfc3339(SystemTime::now()),
                    submission: submission_id.clone(),
                    plaintext_size: size,
                };
                items.push(writer.finish(meta).await?);
            }
            Ok(())
        }
        .await;
        if let Err(err) = outcome {
            if let Some(writer) = current.take() {
                writer.abandon().await;
            }
            return Err(err);
        }
        if items.is_empty() {
            return Err(SubmissionError::Empty);
        }
        Ok(Received {
            items,
            desk: desk.id.clone(),
        })
    }

    /// Makes received items permanent for `owner`, all or none. Returns the source id.
    pub async fn commit(
        &self,
        owner: Owner,
        items: Vec<SealedItem>,
    ) -> Result<String, SubmissionError> {
        let bytes = items.iter().map(|i| i.size + i.meta_size).sum();
        let store = Arc::clone(&self.store);
        let source_id = tokio::task::spawn_blocking(move || store.commit(owner, items))
            .await
            .expect("Store::commit does not panic")?;
        self.metrics.accepted(bytes);
        Ok(source_id)
    }

    fn start_item(&self, desk: &Desk) -> ItemWriter {
        ItemWriter::spawn(Arc::clone(&self.store), desk.recipients.clone())
    }
}

/// Reads the first field, which must be `csrf` and short.
async fn read_csrf<'r>(
    multipart: &mut multer::Multipart<'r>,
    lag: &ParserLag,
    boundary_len: usize,
) -> Result<Vec<u8>, SubmissionError> {
    match read_small_field(multipart, lag, boundary_len, FIELD_CSRF).await {
        Ok(Some(token)) => Ok(token),
        Ok(None) | Err(SubmissionError::UnexpectedField) => Err(SubmissionError::Csrf),
        Err(err) => Err(err),
    }
}

/// Reads the next field, which must be `name` (else `None`), whole: at most 256 bytes
/// (else [`SubmissionError::UnexpectedField`]).
async fn read_small_field<'r>(
    multipart: &mut multer::Multipart<'r>,
    lag: &ParserLag,
    boundary_len: usize,
    name: &str,
) -> Result<Option<Vec<u8>>, SubmissionError> {
    let mut field = multipart
        .next_field()
        .await
        .map_err(map_multer)?
        .ok_or(SubmissionError::Malformed)?;
    lag.consumed(part_framing(&field, boundary_len));
    if field.name() != Some(name) {
        return Ok(None);
    }
    let mut value = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(map_multer)? {
        lag.consumed(chunk.len());
        if value.len() + chunk.len() > 256 {
            return Err(SubmissionError::UnexpectedField);
        }
        value.extend_from_slice(&chunk);
    }
    // multer yields the next field only once this one is dropped.
    Ok(Some(value))
}

/// The fewest bytes a part's boundary line and headers can have taken in the body
/// (`--boundary` and each `name:value` line with its CRLF). The parser has dealt with
/// them once it yields the part, so they no longer count as held. A lower bound, so no
/// body can earn credit it did not send.
fn part_framing(field: &multer::Field<'_>, boundary_len: usize) -> usize {
    let headers: usize = field
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 3)
        .sum();
    boundary_len + 4 + headers
}

/// Room for multipart framing (boundaries, part headers) on top of the content limit.
fn framing_allowance(limits: &Limits) -> u64 {
    (limits.max_files as u64)
        .saturating_add(4)
        .saturating_mul(16 * 1024)
}

fn map_multer(err: multer::Error) -> SubmissionError {
    match err {
        multer::Error::StreamSizeExceeded { limit }
        | multer::Error::FieldSizeExceeded { limit, .. } => SubmissionError::TooLarge { limit },
        multer::Error::UnknownField { .. } => SubmissionError::UnexpectedField,
        multer::Error::StreamReadFailed(cause) => match cause.downcast::<BodyError>() {
            Ok(body_error) => match *body_error {
                BodyError::Idle => SubmissionError::Idle,
                BodyError::ParserLag => SubmissionError::Malformed,
                BodyError::Read => SubmissionError::Disconnected,
            },
            Err(_) => SubmissionError::Disconnected,
        },
        _ => SubmissionError::Malformed,
    }
}

/// What went wrong with the request body itself.
#[derive(Debug)]
enum BodyError {
    /// No byte for the idle timeout.
    Idle,
    /// The multipart parser buffered too much without yielding part data.
    ParserLag,
    /// The connection failed.
    Read,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BodyError::Idle => "request body idle",
            BodyError::ParserLag => "multipart headers too large",
            BodyError::Read => "request body read failed",
        })
    }
}

impl std::error::Error for BodyError {}

/// Bytes handed to the multipart parser versus part bytes it has handed back.
#[derive(Default)]
struct ParserLag {
    delivered: AtomicU64,
    consumed: AtomicU64,
}

impl ParserLag {
    fn consumed(&self, n: usize) {
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The body as the parser sees it: each read must come within `idle`, and the parser
/// may not run more than [`MAX_PARSER_LAG`] ahead of the part data it yields.
fn guard_body<S, E>(
    body: S,
    idle: Duration,
    lag: Arc<ParserLag>,
) -> impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
{
    futures_util::stream::unfold(Some(Box::pin(body)), move |state| {
        let lag = Arc::clone(&lag);
        async move {
            let mut body = state?;
            let held = lag.delivered.load(Ordering::Relaxed)
                - lag
                    .consumed
                    .load(Ordering::Relaxed)
                    .min(lag.delivered.load(Ordering::Relaxed));
            if held > MAX_PARSER_LAG {
                return Some((Err(BodyError::ParserLag), None));
            }
            match tokio::time::timeout(idle, body.next()).await {
                Err(_) => Some((Err(BodyError::Idle), None)),
                Ok(None) => None,
                Ok(Some(Err(_))) => Some((Err(BodyError::Read), None)),
                Ok(Some(Ok(bytes))) => {
                    lag.delivered
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    Some((Ok(bytes), Some(body)))
                }
            }
        }
    })
}

/// Incremental UTF-8 and length check of a streamed message.
struct TextCheck {
    max_chars: usize,
    chars: usize,
    /// An incomplete UTF-8 sequence at the end of the last chunk (≤ 3 bytes).
    carry: Zeroizing<Vec<u8>>,
}

impl TextCheck {
    fn new(max_chars: usize) -> Self {
        TextCheck {
            max_chars,
            chars: 0,
            carry: Zeroizing::new(Vec::with_capacity(4)),
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), SubmissionError> {
        // Messages are small (the limit is in characters), so joining the carried bytes
        // with the chunk costs little; the copy is wiped on drop.
        let mut joined = Zeroizing::new(Vec::with_capacity(self.carry.len() + chunk.len()));
        joined.extend_from_slice(&self.carry);
        joined.extend_from_slice(chunk);
        self.carry.clear();
        let valid = match std::str::from_utf8(&joined) {
            Ok(_) => joined.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => return Err(SubmissionError::MessageNotText),
        };
        // In valid UTF-8, every byte that is not a continuation byte starts a character.
        self.chars += joined[..valid]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count();
        self.carry.extend_from_slice(&joined[valid..]);
        if self.chars > self.max_chars {
            return Err(SubmissionError::MessageTooLong {
                limit: self.max_chars,
            });
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), SubmissionError> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(SubmissionError::MessageNotText)
        }
    }
}

/// `text` cut to at most `max` bytes and to at most `max_json` bytes once escaped as
/// a JSON string (quotes, backslashes and control characters take 2 to 6 bytes), on a
/// character boundary. With [`MAX_NAME_JSON`] and [`MAX_TYPE_JSON`] this keeps every
/// metadata record within one [`META_PAD`], so its size tells nothing of the name.
fn truncate_escaped(text: &str, max: usize, max_json: usize) -> String {
    let mut out = String::new();
    let mut escaped = 2; // the quotes
    for c in text.chars() {
        let cost = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if out.len() + c.len_utf8() > max || escaped + cost > max_json {
            break;
        }
        out.push(c);
        escaped += cost;
    }
    out
}

enum Piece {
    Data(Bytes),
    End(ItemRecord),
}

/// One item being encrypted on a blocking thread.
struct ItemWriter {
    tx: mpsc::Sender<Piece>,
    /// The sealing thread, until it has been waited for (a JoinHandle must not be
    /// polled again once it has answered).
    thread: Option<tokio::task::JoinHandle<Result<SealedItem, SubmissionError>>>,
    /// Small chunks gathered into [`BATCH`] bytes, so a body of tiny chunks does not
    /// cost a thread wake-up per chunk. Never grows past its capacity (no unwiped
    /// copies); wiped here or by the sealing thread.
    pending: Vec<u8>,
    _in_flight: InFlight,
}

/// One of [`ITEMS_IN_FLIGHT`], until dropped.
struct InFlight;

impl InFlight {
    fn count() -> Self {
        ITEMS_IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        ITEMS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Plaintext handed to the sealing thread at once: age's chunk size.
const BATCH: usize = 64 * 1024;
/// Chunks at least this large go to the sealing thread as they are (no copy) while
/// few items are encrypted at once ([`PASS_THROUGH_ITEMS`]); only smaller ones are
/// gathered. Network reads are rarely smaller unless a client sends tiny chunks on
/// purpose.
const PASS_THROUGH: usize = 8 * 1024;

impl ItemWriter {
    fn spawn(store: Arc<Store>, recipients: Recipients) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let thread = tokio::task::spawn_blocking(move || seal_item(&store, &recipients, rx));
        ItemWriter {
            tx,
            thread: Some(thread),
            pending: Vec::with_capacity(BATCH),
            _in_flight: InFlight::count(),
        }
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), SubmissionError> {
        if chunk.len() >= PASS_THROUGH
            && ITEMS_IN_FLIGHT.load(Ordering::Acquire) <= PASS_THROUGH_ITEMS
        {
            // Large reads go through as they are (no copy), after what was gathered
            // before them: one small read must not send every later one through the
            // gathering copy, 64 KiB and one thread wake-up at a time.
            self.flush().await?;
            return self.send(chunk).await;
        }
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let take = (BATCH - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == BATCH {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SubmissionError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH));
        self.send(Bytes::from(full)).await
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), SubmissionError> {
        if self.tx.send(Piece::Data(chunk)).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// Waits for the sealing thread's result; `None` if it was waited for already.
    async fn join(&mut self) -> Option<Result<SealedItem, SubmissionError>> {
        let thread = self.thread.take()?;
        match thread.await {
            Ok(result) => Some(result),
            Err(join) => panic!("the encrypting thread panicked: {join}"),
        }
    }

    async fn failure(&mut self) -> SubmissionError {
        match self.join().await {
            Some(Err(err)) => err,
            Some(Ok(_)) | None => SubmissionError::Malformed,
        }
    }

    /// Stops the item: the sealing thread sees the channel close, removes its temp file
    /// and ends; this waits for that.
    async fn abandon(mut self) {
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, closed));
        let _ = self.join().await;
    }

    async fn finish(mut self, meta: ItemRecord) -> Result<SealedItem, SubmissionError> {
        self.flush().await?;
        if self.tx.send(Piece::End(meta)).await.is_err() {
            return Err(self.failure().await);
        }
        self.join().await.unwrap_or(Err(SubmissionError::Malformed))
    }
}

impl Drop for ItemWriter {
    fn drop(&mut self) {
        self.pending.zeroize();
    }
}

/// The blocking side: plaintext in, ciphertext to the temp file, then the metadata
/// record. Returns without an item (and the temp files are removed) if the channel
/// closes before `End`.
fn seal_item(
    store: &Store,
    recipients: &Recipients,
    mut rx: mpsc::Receiver<Piece>,
) -> Result<SealedItem, SubmissionError> {
    let id = store.new_item_id();
    let mut blob = store.new_item_blob(&id, ItemBlob::Content)?;
    let path = blob.location().to_owned();
    let mut writer = blob.writer();
    let mut sealer = recipients
        .seal(&mut writer)
        .map_err(io_error("start an item", &path))?;
    let meta = loop {
        match rx.blocking_recv() {
            Some(Piece::Data(chunk)) => {
                sealer
                    .write_all(&chunk)
                    .map_err(io_error("write an item", &path))?;
                wipe(chunk);
            }
            Some(Piece::End(meta)) => break meta,
            None => return Err(SubmissionError::Disconnected),
        }
    };
    sealer.finish().map_err(io_error("finish an item", &path))?;
    writer.finish().map_err(io_error("flush an item", &path))?;
    let size = blob.seal()?;

    let kind = meta.kind;
    // Room for the largest record (every string is cut to MAX_NAME_BYTES, and JSON
    // escaping at most sextuples it), so the buffer never reallocates and leaves an
    // unwiped copy behind.
    let mut record = Zeroizing::new(Vec::with_capacity(META_CAPACITY));
    serde_json::to_writer(&mut *record, &meta).expect("metadata serialises");
    // Within one pad unit by construction (see `truncate_escaped`); rounding up stays
    // as a backstop, never the rule.
    let padded = record.len().div_ceil(META_PAD).max(1) * META_PAD;
    record.resize(padded, b' ');
    let sealed_meta = recipients
        .seal_bytes(&record)
        .map_err(encrypt_error("encrypt an item's metadata"))?;
    let mut meta_blob = store.new_item_blob(&id, ItemBlob::Meta)?;
    meta_blob
        .write_all(&sealed_meta)
        .map_err(io_error("write metadata", &path))?;
    let meta_size = meta_blob.seal()?;
    Ok(SealedItem {
        id,
        kind,
        blob,
        size,
        meta: meta_blob,
        meta_size,
    })
}

/// Overwrites a plaintext chunk if we hold the only reference to its memory. Chunks
/// that share a buffer with the HTTP stack cannot be reached; SECURITY.md says so.
fn wipe(chunk: Bytes) {
    if let Ok(mut owned) = chunk.try_into_mut() {
        owned.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(chunks: &[&[u8]], max: usize) -> Result<usize, SubmissionError> {
        let mut t = TextCheck::new(max);
        for c in chunks {
            t.feed(c)?;
        }
        t.finish()?;
        Ok(t.chars)
    }

    #[test]
    fn text_check_counts_across_split_sequences() {
        let text = "añ€😀z".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let n = check(&[&text[..i], &text[i..j], &text[j..]], 10)
                    .unwrap_or_else(|e| panic!("split {i}/{j}: {e:?}"));
                assert_eq!(n, 5, "split {i}/{j}");
            }
        }
    }

    #[test]
    fn text_check_rejects_bad_utf8_and_long_text() {
        assert!(matches!(
            check(&[b"ab\xff"], 10),
            Err(SubmissionError::MessageNotText)
        ));
        assert!(matches!(
            check(&[b"ab\xe2\x82"], 10),
            Err(SubmissionError::MessageNotText)
        ));
        assert!(matches!(
            check(&[b"abc", b"def"], 5),
            Err(SubmissionError::MessageTooLong { limit: 5 })
        ));
        assert_eq!(check(&[b"abcde"], 5).unwrap(), 5);
    }

    #[test]
    fn truncate_keeps_char_boundaries_and_the_escaped_budget() {
        assert_eq!(truncate_escaped("aé", 2, 100), "a");
        assert_eq!(truncate_escaped("abc", 10, 100), "abc");
        let slashes = "\\".repeat(300);
        let cut = truncate_escaped(&slashes, 255, 520);
        assert_eq!(cut.len(), 255);
        assert!(serde_json::to_string(&cut).unwrap().len() <= 520);
        let cut = truncate_escaped(&slashes, 255, 200);
        assert_eq!(serde_json::to_string(&cut).unwrap().len(), 200);
        let controls = "\u{1}".repeat(255);
        let cut = truncate_escaped(&controls, 255, 520);
        assert!(serde_json::to_string(&cut).unwrap().len() <= 520);
    }
}

//! Blobs in an S3-compatible object store (`[storage] kind = "s3"`; docs/ARCHITECTURE.md,
//! "Storage backends"). The store sees what a local disk would: ciphertext under random
//! names, its size and the time it was written; SECURITY.md, "Scaling out", says what
//! that lets the store's operator learn.
//!
//! Keys in the bucket mirror the data directory: `blobs/NAME` for an item, its metadata
//! record or a reply, `orphans/NAME` for a blob start-up found without a row,
//! `uploads/NODE/NAME` for a marker that holds the id of a multipart upload in
//! progress, and `deleting/NODE/NAME` for a blob whose row is deleted while an export
//! still streams it; `instance` names the drop the bucket belongs to (a fingerprint
//! of its instance secret). NODE is the data directory's node id: several agedrop processes
//! may share one bucket, and each start-up cleans up only its own markers; it leaves
//! blobs without a row alone while they are younger than [`ORPHAN_AFTER`], since another
//! node may be about to commit them.
//!
//! A blob is written as it is encrypted: small ones (metadata records, replies, short
//! messages) with one PUT when they are sealed, large ones as a multipart upload of
//! [`PART`]-byte parts, one part in flight while the next fills. Before the first part
//! a marker is stored under `uploads/`; an upload that is given up is aborted, and
//! start-up aborts every upload whose marker is left (a crash), so the store keeps no
//! unfinished upload of ours. An object is complete only when its upload completes,
//! and an item exists only when the database commit after that says so; a blob whose
//! commit never came is moved to `orphans/` by start-up, as on a local disk.
//!
//! Why `object_store` (Apache Arrow): it is kept by a large project, speaks S3 with
//! SigV4 signing (ring) and multipart uploads with their ids exposed
//! ([`MultipartStore`]), and lets us hand it the HTTP client: hyper, which the server
//! already runs, with rustls and ring, so agedrop keeps one TLS stack and no HTTP
//! proxy is ever read from the environment.
//!
//! All calls are blocking: the store is used from blocking threads (ingest, export)
//! and admin commands alike, so the bucket runs its own small tokio runtime and waits
//! for it. Memory: part buffers of all uploads together are held to [`PART_BUDGET`]
//! bytes; an upload that would need more waits for a part to finish.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService,
};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, MultipartId, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use super::StoreError;
use crate::config::S3Storage;

/// Bytes in each part of a multipart upload but the last. S3 wants at least 5 MiB and
/// at most 10,000 parts, so one blob may be up to 10,000 × 8 MiB (78 GiB), well above
/// the largest `limits.max_submission_bytes` the config accepts (8 GB).
pub const PART: usize = 8 * 1024 * 1024;
/// Part buffers of all uploads together, in bytes: 12 parts (96 MiB). One upload holds
/// at most two (the one in flight and the one filling), so one upload's growth stays
/// under 16 MiB whatever its size.
pub const PART_BUDGET: usize = 12 * PART;
/// The unit in which buffer memory is reserved from the budget.
const PERMIT_BYTES: usize = 1024 * 1024;

/// How long a request may take until its response starts (a part's body is sent
/// within it: 8 MiB in two minutes is 70 KiB/s).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an upload that was given up keeps trying to abort while the store fails.
const ABORT_RETRIES_FOR: Duration = Duration::from_secs(3600);

/// How old a blob without a row must be before start-up moves it to `orphans/`: far
/// longer than the time between an upload's completion and its commit.
pub const ORPHAN_AFTER: Duration = Duration::from_secs(3600);

const BLOBS: &str = "blobs";
const ORPHANS: &str = "orphans";
const UPLOADS: &str = "uploads";
const DELETING: &str = "deleting";
/// The object naming the instance the bucket belongs to ([`Bucket::claim`]).
const INSTANCE: &str = "instance";

/// An S3 bucket holding the blobs. Cheap to clone.
#[derive(Clone)]
pub(super) struct Bucket(Arc<Inner>);

struct Inner {
    s3: AmazonS3,
    /// This node's id: its markers live under `uploads/NODE/` and `deleting/NODE/`.
    node: String,
    /// Where the bucket is, for errors: the endpoint and the bucket's name.
    place: PathBuf,
    runtime: Option<Runtime>,
    parts: Arc<Semaphore>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle may go on an async worker, where a runtime must not block.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Bucket {
    /// Connects to the bucket `config` names and checks that it answers with these
    /// credentials.
    pub(super) fn connect(config: &S3Storage, node: &str) -> Result<Bucket, StoreError> {
        let place = PathBuf::from(format!(
            "{}/{}",
            config.endpoint.trim_end_matches('/'),
            config.bucket
        ));
        let secret = read_secret(&config.secret_access_key_file)?;
        let tls = super::tls::client_config(config.ca_file.as_deref(), "read storage.ca_file")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("agedrop-s3")
            .enable_all()
            .build()
            .map_err(io_error("start the object store's runtime", &place))?;
        let s3 = AmazonS3Builder::new()
            .with_endpoint(config.endpoint.trim_end_matches('/'))
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(secret.as_str())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            // The body's SHA-256 is not part of the signature (UNSIGNED-PAYLOAD): hashing
            // every byte twice (here and in the store) cost more than the upload itself
            // on two cores (docs/PERFORMANCE.md). What it guarded, a body changed on
            // the way, TLS guards (plain HTTP is loopback only), and age's own tags
            // guard every chunk of what the journalist finally opens.
            .with_unsigned_payload(true)
            .with_retry(RetryConfig {
                // A few quick retries for a dropped connection; an object store that is
                // down fails the upload within seconds rather than minutes.
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(15),
            })
            .with_http_connector(Connector {
                tls,
                handle: runtime.handle().clone(),
            })
            .build()
            .map_err(s3_error("connect to the object store", &place))?;
        let bucket = Bucket(Arc::new(Inner {
            s3,
            node: node.to_owned(),
            place,
            runtime: Some(runtime),
            parts: Arc::new(Semaphore::new(PART_BUDGET / PERMIT_BYTES)),
        }));
        bucket
            .run(async {
                bucket
                    .0
                    .s3
                    .list_with_delimiter(Some(&Key::from(format!("{UPLOADS}/{node}"))))
                    .await
            })
            .map_err(s3_error("reach the bucket", bucket.place()))?;
        Ok(bucket)
    }

    /// Whether the bucket is claimed by this instance already (`Ok(true)`), by none yet
    /// (`Ok(false)`), or by another (refused). The first node to use a bucket stores
    /// its instance secret's fingerprint as the object `instance` ([`Bucket::claim`]);
    /// a bucket of another drop (whose blobs start-up would take for orphans), or a
    /// node given another instance secret (its codes and CSRF tokens would not match
    /// the other nodes'), is refused.
    pub(super) fn claimed(&self, fingerprint: &str) -> Result<bool, StoreError> {
        let key = Key::from(INSTANCE);
        match self.run(async { self.0.s3.get(&key).await?.bytes().await }) {
            Ok(stored) if stored[..] == *claim_text(fingerprint).as_bytes() => Ok(true),
            Ok(_) => Err(StoreError::Bucket {
                action: "use the bucket",
                place: self.place().to_owned(),
                source: io::Error::other(
                    "it belongs to another agedrop instance (its `instance` object names \
                     another instance secret): give every node of one drop the same \
                     data_dir/instance-secret, copied from the first node, and every drop a \
                     bucket of its own",
                ),
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(s3_error("read the bucket's claim", self.place())(e)),
        }
    }

    /// Claims an unclaimed bucket for this instance, then checks the claim (another
    /// node may have claimed it meanwhile).
    pub(super) fn claim(&self, fingerprint: &str) -> Result<(), StoreError> {
        if self.claimed(fingerprint)? {
            return Ok(());
        }
        let payload = PutPayload::from(claim_text(fingerprint).into_bytes());
        self.run(async { self.0.s3.put(&Key::from(INSTANCE), payload).await })
            .map_err(s3_error("claim the bucket", self.place()))?;
        match self.claimed(fingerprint)? {
            true => Ok(()),
            false => Err(s3_error("claim the bucket", self.place())(
                object_store::Error::NotFound {
                    path: INSTANCE.into(),
                    source: "the claim was not there after it was written".into(),
                },
            )),
        }
    }

    /// The endpoint and bucket, for errors and messages.
    pub(super) fn place(&self) -> &Path {
        &self.0.place
    }

    fn handle(&self) -> &Handle {
        self.0
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the bucket")
            .handle()
    }

    /// Runs `future` on the bucket's runtime and waits for it. Called from blocking
    /// threads and plain threads, never from an async task.
    fn run<F: std::future::Future + Send>(&self, future: F) -> F::Output
    where
        F::Output: Send,
    {
        self.handle().block_on(future)
    }

    /// A new blob that will be `blobs/NAME` once sealed.
    pub(super) fn upload(&self, name: &str) -> Upload {
        Upload {
            bucket: self.clone(),
            name: name.to_owned(),
            buffer: Vec::new(),
            permits: None,
            multipart: None,
            size: 0,
            state: UploadState::Writing,
        }
    }

    /// Opens `blobs/NAME` for reading; a missing object is `NotFound`.
    pub(super) fn open(&self, name: &str) -> io::Result<Reader> {
        let key = blob_key(name);
        let (size, stream) = self
            .run(async {
                let got = self.0.s3.get(&key).await?;
                Ok::<_, object_store::Error>((got.meta.size, got.into_stream()))
            })
            .map_err(into_io)?;
        Ok(Reader {
            bucket: self.clone(),
            size,
            stream,
            current: Bytes::new(),
        })
    }

    /// Deletes `blobs/NAME`; one that is gone already is fine.
    pub(super) fn remove(&self, name: &str) -> Result<(), StoreError> {
        let key = blob_key(name);
        match self.run(async { self.0.s3.delete(&key).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3_error("delete a blob", self.place())(e)),
        }
    }

    /// Deletes `blobs/NAME` later, on the bucket's runtime, without waiting: for drops.
    fn remove_in_background(&self, name: &str) {
        let bucket = self.clone();
        let key = blob_key(name);
        self.handle().spawn(async move {
            let _ = bucket.0.s3.delete(&key).await;
        });
    }

    /// Marks `blobs/NAME` for removal once the exports streaming it end (or at the next
    /// start-up, if the process dies first).
    pub(super) fn defer_removal(&self, name: &str) -> Result<(), StoreError> {
        let marker = self.marker(DELETING, name);
        self.run(async { self.0.s3.put(&marker, PutPayload::new()).await })
            .map(drop)
            .map_err(s3_error("mark a deleted blob", self.place()))
    }

    /// [`Bucket::finish_removal`] on the bucket's runtime, without waiting: for an
    /// export's drop. If it fails, the marker stays for start-up.
    pub(super) fn finish_removal_in_background(&self, name: &str) {
        let bucket = self.clone();
        let key = blob_key(name);
        let marker = self.marker(DELETING, name);
        self.handle().spawn(async move {
            match bucket.0.s3.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    let _ = bucket.0.s3.delete(&marker).await;
                }
                Err(_) => {}
            }
        });
    }

    /// Removes a blob [`Bucket::defer_removal`] marked, then its marker.
    pub(super) fn finish_removal(&self, name: &str) -> Result<(), StoreError> {
        self.remove(name)?;
        let marker = self.marker(DELETING, name);
        self.run(async { self.0.s3.delete(&marker).await })
            .map_err(s3_error("remove a deletion marker", self.place()))
    }

    /// Finishes every removal a marker under `deleting/` names.
    pub(super) fn finish_deferred_removals(&self) -> Result<(), StoreError> {
        for name in self.own_markers(DELETING)? {
            self.finish_removal(&name)?;
        }
        Ok(())
    }

    /// The names under `blobs/`, and those of them written less than
    /// [`ORPHAN_AFTER`] ago.
    pub(super) fn list(&self) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
        let listed = self.listing(BLOBS)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let settled = now.saturating_sub(ORPHAN_AFTER.as_secs());
        let recent = listed
            .iter()
            .filter(|(_, modified)| *modified > settled as i64)
            .map(|(name, _)| name.clone())
            .collect();
        Ok((listed.into_iter().map(|(name, _)| name).collect(), recent))
    }

    /// The names under `PREFIX/NODE/` for this node.
    fn own_markers(&self, prefix: &str) -> Result<HashSet<String>, StoreError> {
        Ok(self
            .listing(&format!("{prefix}/{}", self.0.node))?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Names under `prefix` with the time each was written (seconds since the epoch).
    fn listing(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let prefix = Key::from(prefix);
        let listed: Vec<_> = self
            .run(async { self.0.s3.list(Some(&prefix)).try_collect().await })
            .map_err(s3_error("list the bucket", self.place()))?;
        Ok(listed
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.to_owned();
                Some((name, meta.last_modified.timestamp()))
            })
            .collect())
    }

    /// The key of this node's marker for blob `name` under `prefix`.
    fn marker(&self, prefix: &str, name: &str) -> Key {
        Key::from(format!("{prefix}/{}/{name}", self.0.node))
    }

    /// Moves `blobs/NAME` to `orphans/NAME` (a copy, then a delete: S3 has no rename).
    pub(super) fn orphan(&self, name: &str) -> Result<(), StoreError> {
        let from = blob_key(name);
        let to = Key::from(format!("{ORPHANS}/{name}"));
        self.run(async { self.0.s3.copy(&from, &to).await })
            .map_err(s3_error("copy an orphaned blob to orphans/", self.place()))?;
        self.remove(name)
    }

    /// Aborts every multipart upload a marker under `uploads/` names (left by a crash)
    /// and removes the markers. Returns how many there were.
    pub(super) fn abort_unfinished(&self) -> Result<usize, StoreError> {
        let markers = self.own_markers(UPLOADS)?;
        for name in &markers {
            let marker = self.marker(UPLOADS, name);
            let id = self
                .run(async { self.0.s3.get(&marker).await?.bytes().await })
                .map_err(s3_error("read an upload marker", self.place()))?;
            let id = String::from_utf8_lossy(&id).into_owned();
            let key = blob_key(name);
            match self.run(async { self.0.s3.abort_multipart(&key, &id).await }) {
                // Completed before the crash (the blob is then an orphan), or gone.
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(s3_error("abort an unfinished upload", self.place())(e)),
            }
            self.run(async { self.0.s3.delete(&marker).await })
                .map_err(s3_error("remove an upload marker", self.place()))?;
        }
        Ok(markers.len())
    }
}

/// The content of the `instance` object for an instance secret's fingerprint.
fn claim_text(fingerprint: &str) -> String {
    format!("agedrop instance {fingerprint}\n")
}

fn blob_key(name: &str) -> Key {
    Key::from(format!("{BLOBS}/{name}"))
}

/// A blob being written to the bucket. Removed (the upload aborted, or the object
/// deleted) on drop unless [`Upload::keep`] was called.
pub(super) struct Upload {
    bucket: Bucket,
    name: String,
    /// The part being filled.
    buffer: Vec<u8>,
    /// The budget `buffer`'s capacity holds.
    permits: Option<OwnedSemaphorePermit>,
    multipart: Option<Multipart>,
    size: u64,
    state: UploadState,
}

struct Multipart {
    id: MultipartId,
    done: Vec<PartId>,
    in_flight: Option<JoinHandle<object_store::Result<PartId>>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum UploadState {
    Writing,
    /// The object is whole in the bucket; not yet kept.
    Stored,
    Kept,
}

impl Upload {
    /// Where it is being stored (the endpoint and bucket), for errors.
    pub(super) fn place(&self) -> &Path {
        self.bucket.place()
    }

    /// Finishes the object (the last part, or the one PUT of a small blob). Returns its
    /// size. Once this returns, the object is whole in the bucket.
    pub(super) fn seal(&mut self) -> io::Result<u64> {
        assert!(
            self.state == UploadState::Writing,
            "an upload is sealed at most once"
        );
        let bucket = self.bucket.clone();
        let key = blob_key(&self.name);
        if self.multipart.is_none() {
            let payload = PutPayload::from(Bytes::from(std::mem::take(&mut self.buffer)));
            bucket
                .run(async { bucket.0.s3.put(&key, payload).await })
                .map_err(into_io)?;
            self.permits = None;
        } else {
            if !self.buffer.is_empty() {
                self.send_part()?;
            }
            self.wait_in_flight()?;
            let multipart = self.multipart.as_mut().expect("checked above");
            let parts = std::mem::take(&mut multipart.done);
            let id = multipart.id.clone();
            bucket
                .run(async { bucket.0.s3.complete_multipart(&key, &id, parts).await })
                .map_err(into_io)?;
            self.multipart = None;
            let marker = bucket.marker(UPLOADS, &self.name);
            bucket
                .run(async { bucket.0.s3.delete(&marker).await })
                .map_err(into_io)?;
        }
        self.state = UploadState::Stored;
        Ok(self.size)
    }

    /// The blob stays: a commit recorded it.
    pub(super) fn keep(&mut self) {
        self.state = UploadState::Kept;
    }

    /// Grows the buffer's reservation from the budget to cover `needed` bytes.
    fn reserve(&mut self, needed: usize) {
        let held = self.permits.as_ref().map_or(0, |p| p.num_permits());
        let wanted = needed.div_ceil(PERMIT_BYTES);
        if wanted <= held {
            return;
        }
        let semaphore = self.bucket.0.parts.clone();
        let more = self
            .bucket
            .run(async move { semaphore.acquire_many_owned((wanted - held) as u32).await })
            .expect("the part budget is never closed");
        match &mut self.permits {
            Some(permits) => permits.merge(more),
            None => self.permits = Some(more),
        }
    }

    /// Sends the full buffer as the next part; waits for the part before it first, so
    /// at most one is in flight.
    fn send_part(&mut self) -> io::Result<()> {
        if self.multipart.is_none() {
            self.start_multipart()?;
        }
        self.wait_in_flight()?;
        let bucket = self.bucket.clone();
        let key = blob_key(&self.name);
        let multipart = self.multipart.as_mut().expect("started above");
        let index = multipart.done.len();
        let id = multipart.id.clone();
        let payload = PutPayload::from(Bytes::from(std::mem::take(&mut self.buffer)));
        let permits = self.permits.take();
        multipart.in_flight = Some(self.bucket.handle().spawn(async move {
            let part = bucket.0.s3.put_part(&key, &id, index, payload).await;
            drop(permits); // the part's memory is free once it is sent
            part
        }));
        Ok(())
    }

    fn wait_in_flight(&mut self) -> io::Result<()> {
        let Some(multipart) = self.multipart.as_mut() else {
            return Ok(());
        };
        if let Some(task) = multipart.in_flight.take() {
            let part = self
                .bucket
                .run(task)
                .map_err(|_| io::Error::other("an upload task failed"))?
                .map_err(into_io)?;
            multipart.done.push(part);
        }
        Ok(())
    }

    fn start_multipart(&mut self) -> io::Result<()> {
        let bucket = self.bucket.clone();
        let key = blob_key(&self.name);
        let id = bucket
            .run(async { bucket.0.s3.create_multipart(&key).await })
            .map_err(into_io)?;
        // The marker first: if we die after it, start-up aborts the upload.
        let marker = bucket.marker(UPLOADS, &self.name);
        let recorded = bucket.run(async {
            bucket
                .0
                .s3
                .put(&marker, PutPayload::from(id.clone().into_bytes()))
                .await
        });
        if let Err(e) = recorded {
            let _ = bucket.run(async { bucket.0.s3.abort_multipart(&key, &id).await });
            return Err(into_io(e));
        }
        self.multipart = Some(Multipart {
            id,
            done: Vec::new(),
            in_flight: None,
        });
        Ok(())
    }
}

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.buffer.len() == PART {
            self.send_part()?;
        }
        let n = buf.len().min(PART - self.buffer.len());
        if self.buffer.capacity() < self.buffer.len() + n {
            // A small blob (a metadata record, a reply, a message) takes one budget
            // unit; one that outgrows it is large, and takes a whole part at once, so
            // the buffer is copied at most once per part as it grows.
            let large = self.multipart.is_some() || self.buffer.len() + n > PERMIT_BYTES;
            let capacity = if large { PART } else { PERMIT_BYTES };
            self.reserve(capacity);
            self.buffer.reserve_exact(capacity - self.buffer.len());
        }
        self.buffer.extend_from_slice(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        match self.state {
            UploadState::Kept => {}
            UploadState::Stored => self.bucket.remove_in_background(&self.name),
            UploadState::Writing => {
                let Some(multipart) = self.multipart.take() else {
                    return; // nothing reached the bucket
                };
                let bucket = self.bucket.clone();
                let key = blob_key(&self.name);
                let marker = self.bucket.marker(UPLOADS, &self.name);
                self.bucket.handle().spawn(async move {
                    if let Some(task) = multipart.in_flight {
                        let _ = task.await;
                    }
                    // The store may be what failed: try again, more slowly each time,
                    // for as long as a restart would take to come (which aborts it too).
                    let mut wait = Duration::from_secs(1);
                    let give_up = tokio::time::Instant::now() + ABORT_RETRIES_FOR;
                    loop {
                        match bucket.0.s3.abort_multipart(&key, &multipart.id).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                                let _ = bucket.0.s3.delete(&marker).await;
                                return;
                            }
                            Err(_) if tokio::time::Instant::now() + wait < give_up => {
                                tokio::time::sleep(wait).await;
                                wait = (wait * 2).min(Duration::from_secs(30));
                            }
                            Err(_) => return, // the marker stays for start-up
                        }
                    }
                });
            }
        }
    }
}

/// A blob being read from the bucket, as it arrives.
pub struct Reader {
    bucket: Bucket,
    size: u64,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
}

impl Reader {
    /// The object's size, as the store reported it.
    pub(super) fn len(&self) -> u64 {
        self.size
    }
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            let stream = &mut self.stream;
            match self.bucket.run(stream.next()) {
                Some(chunk) => self.current = chunk.map_err(into_io)?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

fn read_secret(path: &Path) -> Result<Zeroizing<String>, StoreError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(io_error("read storage.secret_access_key_file", path))?,
    );
    let secret = text.trim();
    if secret.is_empty() {
        return Err(io_error("read storage.secret_access_key_file", path)(
            io::Error::new(io::ErrorKind::InvalidData, "the file is empty"),
        ));
    }
    Ok(Zeroizing::new(secret.to_owned()))
}

/// Hands object_store our HTTP client.
struct Connector {
    tls: rustls::ClientConfig,
    handle: Handle,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connector")
    }
}

impl HttpConnector for Connector {
    fn connect(&self, _: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        tcp.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let _runtime = self.handle.enter();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(HttpClient::new(Hyper(client)))
    }
}

struct Hyper(Client<hyper_rustls::HttpsConnector<TcpConnector>, HttpRequestBody>);

impl fmt::Debug for Hyper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hyper")
    }
}

#[async_trait]
impl HttpService for Hyper {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let response = tokio::time::timeout(RESPONSE_TIMEOUT, self.0.request(request))
            .await
            .map_err(|elapsed| HttpError::new(HttpErrorKind::Timeout, elapsed))?
            .map_err(|e| {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, e)
            })?;
        Ok(response.map(|body| {
            HttpResponseBody::new(body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e)))
        }))
    }
}

/// The error as an `io::Error`, its text without object names: an error is logged
/// with its time, and an item's id beside an exact time would undo the day-only dates
/// the database keeps (SECURITY.md, "Logs").
fn into_io(e: object_store::Error) -> io::Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, without_ids(&e.to_string()))
}

/// `text` with every run of 32 or more hex digits (our ids) replaced by `ID`.
fn without_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        if run.len() >= 32 {
            out.push_str("ID");
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

fn s3_error<'a>(
    action: &'static str,
    place: &'a Path,
) -> impl FnOnce(object_store::Error) -> StoreError + 'a {
    move |e| StoreError::Bucket {
        action,
        place: place.to_owned(),
        source: into_io(e),
    }
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Bucket {
        action,
        place: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::without_ids;

    #[test]
    fn errors_name_no_object() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            without_ids(&format!("PUT http://s3/b/blobs/{id}.age: 503, part 12")),
            "PUT http://s3/b/blobs/ID.age: 503, part 12"
        );
        assert_eq!(without_ids("deadbeef ok"), "deadbeef ok");
    }
}

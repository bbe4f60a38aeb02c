//! Writing age v1 files, on two cores once a file is large: the one encoder agedrop
//! seals everything with (items, metadata records, replies, wrapped source keys).
//!
//! Why not the `age` crate's `StreamWriter`: it seals the STREAM payload on one thread,
//! at about 1.7 times Go age's CPU per byte (docs/PERFORMANCE.md), and it keeps the
//! payload key to itself. So the header and the payload are written here, as the age
//! specification (C2SP age.md) says, while the stanzas still come from the recipients
//! themselves (`Recipient::wrap_file_key`, the crate's "one joint"), under the crate's
//! rule on their labels (all recipients of a file give the same labels, so
//! post-quantum and classical keys never share one).
//!
//! What is written: `age-encryption.org/v1`; each stanza as `-> TAG ARGS…` and its body
//! in canonical unpadded base64, 64 columns a line, ending with a shorter line
//! (possibly empty); `---` and the base64 HMAC-SHA-256 of everything before it under
//! HKDF(file key, "header"); a random 16-byte nonce; then the plaintext in 64 KiB
//! chunks, each ChaCha20-Poly1305-sealed under HKDF(file key, nonce, "payload") with
//! its counter and the last-chunk flag, the last chunk empty only if the whole
//! plaintext is. The file key is 16 bytes from the OS CSPRNG, wiped after use. Unlike
//! the crate, no random "grease" stanza is added (the format does not ask for one; Go
//! age adds none), so a header's size depends only on the recipients.
//!
//! Checked against three independent decoders: the `age` crate, the Go `age` CLI and
//! the TypeScript `age-encryption` (tests/seal.rs), for X25519 and post-quantum keys.

use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use age_core::format::{is_arbitrary_string, FileKey, Stanza};
use base64::Engine;
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::ChaCha20Poly1305;
use hmac::Mac;

use super::format::{self, Half, BODY_COLUMNS, CHUNK, INTRO, MAC_START, NONCE_BYTES};
use super::format::{SEALED_CHUNK, STANZA_START, TAG_BYTES};

// How the payload is sealed on two cores, and what it costs.
//
// Plaintext is copied once, into a batch of two halves of CHUNKS_PER_HALF chunks,
// laid out as the sealed chunks will be (each chunk's tag right after its data): each
// chunk is sealed in place, which overwrites its plaintext, and a half goes to the
// file in one write. The first half of a batch goes to the worker thread as soon as
// the second half receives its first byte (its last chunk is then known not to be the
// file's last), so the worker wakes up while the second half fills; the writing
// thread seals the second half, takes the first back sealed, and writes both. If the
// worker has not begun on it by then (both cores busy), the writing thread seals it
// itself: it never waits for a worker that has not started, and an overloaded server
// does not pay for hand-offs that cannot help.
//
// The worker is one long-lived thread per Sealer, started only once a file outgrows
// its first batch (metadata records, most messages and replies start none) and ended
// when the Sealer is finished or dropped; nothing is allocated per batch.
//
// Memory: the two halves, 2 x 64 KiB (+ tags), allocated once and reused: what the
// crate's writer held (a 64 KiB chunk and a new 64 KiB ciphertext per chunk), plus the
// worker's stack. One chunk per half, because every upload pays for its batch: 64
// concurrent uploads must fit in 128 MiB (docs/PERFORMANCE.md), and sealing 64 files
// at once took 11 MiB more than the crate with two chunks per half, about 1 MiB more
// with one. The price is a hand-off per 64 KiB a thread (about 60 µs of work): as
// much CPU as the crate when the cores are busy, some futex calls more when one is
// free, which is then spent on the second core's share.

/// Chunks in each half of a batch.
const CHUNKS_PER_HALF: usize = 1;
const HALF_BYTES: usize = CHUNKS_PER_HALF * SEALED_CHUNK;

/// An age file being written. Plaintext goes in through [`Write`]; ciphertext goes to
/// the wrapped writer in 64 KiB chunks, sealed on two threads once the file is large
/// (src/crypto/seal.rs says how).
///
/// You **MUST** call [`Sealer::finish`]: without it the file is truncated and will not
/// decrypt (which is what we want for an aborted upload, and nothing else).
pub struct Sealer<W: Write> {
    output: W,
    cipher: ChaCha20Poly1305,
    /// The number of the batch's first chunk.
    counter: u64,
    /// The batch's first half; `None` while the worker has it.
    first: Option<Half>,
    /// The batch's second half, once the file has outgrown the first.
    second: Option<Half>,
    /// Started when the file outgrows its first batch.
    worker: Option<Worker>,
    /// Set while a batch is sealed and written, and left set if that failed: the
    /// halves may then hold ciphertext, which must never be sealed again (sealing it
    /// again under the same nonces would give back the plaintext).
    failed: bool,
}

impl<W: Write> Sealer<W> {
    /// Writes the header for `recipients` (and the payload nonce) to `output`. With
    /// the plaintext's size `expected`, a small file gets a buffer of its size (more
    /// may still be written: it then grows once).
    pub(super) fn new<'a>(
        recipients: impl Iterator<Item = &'a dyn age::Recipient>,
        mut output: W,
        expected: Option<usize>,
    ) -> io::Result<Self> {
        let file_key = FileKey::init_with_mut(|key| crate::random::fill(key));
        let mut start = header(recipients, &file_key)?;
        let mut nonce = [0u8; NONCE_BYTES];
        crate::random::fill(&mut nonce);
        start.extend_from_slice(&nonce);
        output.write_all(&start)?;
        Ok(Sealer {
            output,
            cipher: format::payload_cipher(&file_key, &nonce),
            counter: 0,
            first: Some(Half::new(
                expected.map_or(HALF_BYTES, |plain| sealed_size(plain).min(HALF_BYTES)),
            )),
            second: None,
            worker: None,
            failed: false,
        })
    }

    /// Writes the last chunk and returns the inner writer (not yet flushed to disk).
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_batch(true)?;
        Ok(self.output)
    }

    /// Seals the batch and writes it out; `last` if the file ends with it. Called
    /// with `last` false only once the next plaintext byte is at hand, so the last
    /// chunk is empty only if the whole file is.
    fn seal_batch(&mut self, last: bool) -> io::Result<()> {
        if self.failed {
            return Err(earlier_failure());
        }
        self.failed = true;
        let Some(second) = self.second.as_mut().filter(|half| half.len > 0) else {
            // Only the first half holds plaintext, so it was never handed over.
            let first = self.first.as_mut().expect("the first half is home");
            seal(&self.cipher, first, self.counter, last);
            self.output.write_all(&first.buffer[..first.len])?;
            self.counter += first.len.div_ceil(SEALED_CHUNK) as u64;
            first.len = 0;
            self.failed = false;
            return Ok(());
        };
        // The first half is full, with the worker or still here.
        if !last && self.worker.is_none() {
            let worker = Worker::start(self.cipher.clone())?;
            let first = self.first.take().expect("the first half is home");
            worker.give(first, self.counter);
            self.worker = Some(worker);
        }
        seal(
            &self.cipher,
            second,
            self.counter + CHUNKS_PER_HALF as u64,
            last,
        );
        let first = match self.first.take() {
            Some(mut first) => {
                seal(&self.cipher, &mut first, self.counter, false);
                first
            }
            None => self
                .worker
                .as_ref()
                .expect("only the worker takes the first half")
                .take(&self.cipher)?,
        };
        let first = self.first.insert(first);
        self.output.write_all(&first.buffer[..first.len])?;
        self.output.write_all(&second.buffer[..second.len])?;
        self.counter += (CHUNKS_PER_HALF + second.len.div_ceil(SEALED_CHUNK)) as u64;
        first.len = 0;
        second.len = 0;
        self.failed = false;
        Ok(())
    }
}

impl<W: Write> Write for Sealer<W> {
    /// Takes plaintext up to the end of the current chunk.
    fn write(&mut self, plain: &[u8]) -> io::Result<usize> {
        if plain.is_empty() {
            return Ok(0);
        }
        if self.failed {
            return Err(earlier_failure());
        }
        if let Some(first) = &mut self.first {
            if first.room() == 0 && first.buffer.len() < HALF_BYTES {
                *first = first.grown();
            }
            if first.room() > 0 {
                return Ok(first.put(plain));
            }
        }
        // The first half is full.
        if self.second.as_ref().is_some_and(|half| half.room() == 0) {
            self.seal_batch(false)?;
            let first = self
                .first
                .as_mut()
                .expect("a sealed batch's first half is home");
            return Ok(first.put(plain));
        }
        let second = self.second.get_or_insert_with(|| Half::new(HALF_BYTES));
        if second.len == 0 {
            if let Some(worker) = &self.worker {
                let first = self
                    .first
                    .take()
                    .expect("the first half is home until the second holds plaintext");
                worker.give(first, self.counter);
            }
        }
        Ok(second.put(plain))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }
}

fn earlier_failure() -> io::Error {
    io::Error::other("an earlier write of this age file failed")
}

/// Encrypts a small plaintext in memory.
pub(super) fn seal_bytes<'a>(
    recipients: impl Iterator<Item = &'a dyn age::Recipient>,
    plaintext: &[u8],
) -> io::Result<Vec<u8>> {
    let output = Vec::with_capacity(sealed_size(plaintext.len()) + 2048);
    let mut sealer = Sealer::new(recipients, output, Some(plaintext.len()))?;
    sealer.write_all(plaintext)?;
    sealer.finish()
}

/// The payload's size (without its nonce) for `plain` bytes of plaintext.
fn sealed_size(plain: usize) -> usize {
    plain + TAG_BYTES * plain.div_ceil(CHUNK).max(1)
}

/// The header, from the version line to the MAC line: each recipient's stanzas for
/// `file_key`.
fn header<'a>(
    recipients: impl Iterator<Item = &'a dyn age::Recipient>,
    file_key: &FileKey,
) -> io::Result<Vec<u8>> {
    let mut header = Vec::with_capacity(2048);
    header.extend_from_slice(INTRO);
    let mut labels = None;
    for recipient in recipients {
        let (stanzas, theirs) = recipient
            .wrap_file_key(file_key)
            .map_err(|err| io::Error::other(format!("age: {err}")))?;
        check_labels(&mut labels, theirs)?;
        for stanza in &stanzas {
            write_stanza(&mut header, stanza)?;
        }
    }
    if labels.is_none() {
        return Err(io::Error::other("age: no recipients"));
    }
    let covered = MAC_START.len() - 1; // `---`, not the space after it
    header.extend_from_slice(&MAC_START[..covered]);
    let mac = format::header_mac(file_key)
        .chain_update(&header)
        .finalize()
        .into_bytes();
    header.push(b' ');
    header.extend_from_slice(BASE64.encode(mac).as_bytes());
    header.push(b'\n');
    Ok(header)
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// The `age` crate's rule for the recipients of one file: the first one's labels are
/// all arbitrary strings, and every other one gives the same set, so recipients that
/// must not be mixed (`postquantum` and not) never are.
fn check_labels(first: &mut Option<HashSet<String>>, labels: HashSet<String>) -> io::Result<()> {
    match first {
        None if labels.iter().all(is_arbitrary_string) => {
            *first = Some(labels);
            Ok(())
        }
        None => Err(io::Error::other("age: a recipient gave invalid labels")),
        Some(first) if *first == labels => Ok(()),
        Some(_) => Err(io::Error::other(
            "age: these recipients cannot share a file (their labels differ: post-quantum and classical keys, for one)",
        )),
    }
}

/// One stanza: `-> TAG ARGS…`, then the body in canonical base64 wrapped at 64
/// columns, ending with a shorter line (empty if need be).
fn write_stanza(header: &mut Vec<u8>, stanza: &Stanza) -> io::Result<()> {
    if !is_arbitrary_string(&stanza.tag) || !stanza.args.iter().all(is_arbitrary_string) {
        return Err(io::Error::other("age: a recipient made a malformed stanza"));
    }
    header.extend_from_slice(STANZA_START);
    header.extend_from_slice(stanza.tag.as_bytes());
    for arg in &stanza.args {
        header.push(b' ');
        header.extend_from_slice(arg.as_bytes());
    }
    header.push(b'\n');
    let body = BASE64.encode(&stanza.body);
    for line in body.as_bytes().chunks(BODY_COLUMNS) {
        header.extend_from_slice(line);
        header.push(b'\n');
    }
    if body.len() % BODY_COLUMNS == 0 {
        header.push(b'\n');
    }
    Ok(())
}

/// Seals the chunks of `half` in place, numbered from `counter`, the last of them the
/// file's last if `last`; `len` then covers their tags.
fn seal(cipher: &ChaCha20Poly1305, half: &mut Half, counter: u64, last: bool) {
    half.len += TAG_BYTES;
    for (nonce, data, tag) in format::chunks(&mut half.buffer[..half.len], counter, last) {
        let sealed = cipher
            .encrypt_in_place_detached(&nonce, b"", data)
            .expect("a 64 KiB chunk is far below ChaCha20-Poly1305's limit");
        tag.copy_from_slice(&sealed);
    }
}

/// Filling a half with plaintext, laid out as its sealed chunks will be: chunk `i`'s
/// data from `i` x [`SEALED_CHUNK`], its tag right after. `len` runs to the end of the
/// plaintext so far (the last chunk's tag is counted once [`seal`]ed).
impl Half {
    /// Where the next plaintext byte goes (past the tag of a full chunk).
    fn next(&self) -> usize {
        if self.len % SEALED_CHUNK == CHUNK {
            self.len + TAG_BYTES
        } else {
            self.len
        }
    }

    /// How many plaintext bytes fit from [`Half::next`] in its chunk, leaving room
    /// for the tag.
    fn room(&self) -> usize {
        let at = self.next();
        let in_chunk = CHUNK - at % SEALED_CHUNK;
        in_chunk.min(self.buffer.len().saturating_sub(at + TAG_BYTES))
    }

    /// Copies as much of `plain` as fits in the current chunk; returns how much.
    fn put(&mut self, plain: &[u8]) -> usize {
        let taken = self.room().min(plain.len());
        if taken > 0 {
            let at = self.next();
            self.buffer[at..at + taken].copy_from_slice(&plain[..taken]);
            self.len = at + taken;
        }
        taken
    }

    /// The same plaintext in a full-size half; this one is wiped as it drops.
    fn grown(&self) -> Half {
        let mut grown = Half::new(HALF_BYTES);
        grown.buffer[..self.len].copy_from_slice(&self.buffer[..self.len]);
        grown.len = self.len;
        grown
    }
}

/// The second core: one thread per large file, sealing the first half of each batch.
/// Dropping it stops the thread and waits for it.
struct Worker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    job: Mutex<Job>,
    changed: Condvar,
}

/// The first half of a batch, between the writing thread and the worker.
enum Job {
    /// Nothing handed over.
    Idle,
    /// Full and not yet sealed, with its first chunk's number: whichever thread comes
    /// to it first seals it.
    Waiting(Half, u64),
    /// The worker is sealing it.
    Sealing,
    /// Sealed, for the writing thread.
    Sealed(Half),
    /// The file is finished or abandoned, or the worker stopped: no more work.
    Stop,
}

impl Worker {
    fn start(cipher: ChaCha20Poly1305) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            job: Mutex::new(Job::Idle),
            changed: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("agedrop-seal".to_owned())
            .spawn(move || theirs.work(&cipher))?;
        Ok(Worker {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands over a full first half whose chunks are numbered from `counter`.
    fn give(&self, half: Half, counter: u64) {
        *self.shared.job() = Job::Waiting(half, counter);
        self.shared.changed.notify_one();
    }

    /// The half given last, sealed: by the worker, or here if it has not begun.
    fn take(&self, cipher: &ChaCha20Poly1305) -> io::Result<Half> {
        let mut job = self.shared.job();
        loop {
            match std::mem::replace(&mut *job, Job::Idle) {
                Job::Waiting(mut half, counter) => {
                    drop(job);
                    seal(cipher, &mut half, counter, false);
                    return Ok(half);
                }
                Job::Sealed(half) => return Ok(half),
                Job::Sealing => {
                    *job = Job::Sealing;
                    job = self.shared.wait(job);
                }
                Job::Stop => {
                    *job = Job::Stop;
                    return Err(io::Error::other("the sealing thread stopped"));
                }
                Job::Idle => unreachable!("a half is taken only after it was given"),
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A half still handed over is dropped, and so wiped.
        *self.shared.job() = Job::Stop;
        self.shared.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic there was reported as it happened, and left nothing to undo.
            let _ = thread.join();
        }
    }
}

impl Shared {
    /// The job; a lock poisoned by a panic elsewhere still holds a consistent one
    /// (nothing panics while holding it).
    fn job(&self) -> MutexGuard<'_, Job> {
        self.job.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, job: MutexGuard<'a, Job>) -> MutexGuard<'a, Job> {
        self.changed
            .wait(job)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The worker thread: seals each half it is given, until told to stop.
    fn work(&self, cipher: &ChaCha20Poly1305) {
        // However this ends, even by a panic, the writing thread is not left waiting.
        let _stop = StopOnExit(self);
        loop {
            let (mut half, counter) = {
                let mut job = self.job();
                loop {
                    match std::mem::replace(&mut *job, Job::Sealing) {
                        Job::Waiting(half, counter) => break (half, counter),
                        Job::Stop => return,
                        other => {
                            *job = other;
                            job = self.wait(job);
                        }
                    }
                }
            };
            seal(cipher, &mut half, counter, false);
            let mut job = self.job();
            if matches!(*job, Job::Stop) {
                return;
            }
            *job = Job::Sealed(half);
            self.changed.notify_one();
        }
    }
}

struct StopOnExit<'a>(&'a Shared);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        *self.0.job() = Job::Stop;
        self.0.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pq;
    use chacha20poly1305::aead::KeyInit;

    const BATCH: usize = 2 * CHUNKS_PER_HALF * CHUNK;

    /// Bytes that differ from one chunk to the next.
    fn plain(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i % 251 + i / 4093) as u8).collect()
    }

    /// `plain` sealed to `recipient`, written `piece` bytes at a time.
    fn sealed(recipient: &dyn age::Recipient, plain: &[u8], piece: usize) -> Vec<u8> {
        let mut sealer = Sealer::new(std::iter::once(recipient), Vec::new(), None).unwrap();
        for part in plain.chunks(piece) {
            sealer.write_all(part).unwrap();
        }
        sealer.finish().unwrap()
    }

    /// Where the payload starts: after the MAC line and the nonce.
    fn payload_start(sealed: &[u8]) -> usize {
        let mac = sealed.windows(4).position(|w| w == MAC_START).unwrap();
        mac + sealed[mac..].iter().position(|&b| b == b'\n').unwrap() + 1 + NONCE_BYTES
    }

    #[test]
    fn round_trips_through_the_age_crate_at_every_chunk_and_batch_boundary() {
        let key = age::x25519::Identity::generate();
        let sizes = [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            2 * CHUNK + 1,
            BATCH - 1,
            BATCH,
            BATCH + 1,
            BATCH + 2 * CHUNK + 1,
            3 * BATCH,
            3 * 1024 * 1024 + 7,
        ];
        for size in sizes {
            let plain = plain(size);
            for piece in [usize::MAX, 1000, 3 * CHUNK + 5] {
                let sealed = sealed(&key.to_public(), &plain, piece);
                let opened = age::decrypt(&key, &sealed).unwrap();
                assert!(opened == plain, "size {size}, written {piece} at a time");
                // Exactly the chunks the plaintext needs: none empty but an empty file's.
                let start = payload_start(&sealed);
                assert_eq!(sealed.len() - start, sealed_size(size), "size {size}");
            }
        }
    }

    #[test]
    fn post_quantum_recipients_round_trip_through_the_age_crate() {
        let key = pq::Identity::generate();
        for size in [0, 1, CHUNK, BATCH + 1, 3 * 1024 * 1024 + 7] {
            let plain = plain(size);
            let sealed = sealed(&key.to_public(), &plain, 5000);
            assert!(age::decrypt(&key, &sealed).unwrap() == plain, "size {size}");
        }
    }

    #[test]
    fn several_recipients_each_open_the_file() {
        let keys = [
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
        ];
        let publics = keys.each_ref().map(|key| key.to_public());
        let plain = plain(BATCH + 3);
        let sealed = seal_bytes(publics.iter().map(|r| r as &dyn age::Recipient), &plain).unwrap();
        for key in &keys {
            assert!(age::decrypt(key, &sealed).unwrap() == plain);
        }
        let header = String::from_utf8_lossy(&sealed[..payload_start(&sealed)]);
        assert_eq!(header.matches("\n-> ").count(), 2, "no stanza but theirs");
    }

    #[test]
    fn the_worker_starts_only_once_a_file_outgrows_one_batch() {
        let key = age::x25519::Identity::generate();
        let plain = plain(2 * BATCH);
        let recipient = key.to_public();
        let mut sealer = Sealer::new(std::iter::once(&recipient as _), Vec::new(), None).unwrap();
        sealer.write_all(&plain[..BATCH]).unwrap();
        assert!(sealer.worker.is_none());
        sealer.write_all(&plain[BATCH..BATCH + 1]).unwrap();
        assert!(sealer.worker.is_some());
        sealer.write_all(&plain[BATCH + 1..]).unwrap();
        let sealed = sealer.finish().unwrap();
        assert!(age::decrypt(&key, &sealed).unwrap() == plain);

        // A buffer sized for less than is written grows, and stays one thread's.
        let mut small =
            Sealer::new(std::iter::once(&recipient as _), Vec::new(), Some(10)).unwrap();
        assert_eq!(small.first.as_ref().unwrap().buffer.len(), 10 + TAG_BYTES);
        small.write_all(&plain[..BATCH]).unwrap();
        assert!(small.worker.is_none());
        assert!(age::decrypt(&key, &small.finish().unwrap()).unwrap() == plain[..BATCH]);
    }

    /// A full half of chunks numbered from 5, sealed here.
    fn half_and_sealed(cipher: &ChaCha20Poly1305) -> (Half, Vec<u8>) {
        let mut half = Half::new(HALF_BYTES);
        let data = plain(CHUNKS_PER_HALF * CHUNK);
        let mut rest = &data[..];
        while !rest.is_empty() {
            rest = &rest[half.put(rest)..];
        }
        assert_eq!(half.room(), 0);
        let mut copy = Half::new(HALF_BYTES);
        copy.buffer.copy_from_slice(&half.buffer);
        copy.len = half.len;
        seal(cipher, &mut copy, 5, false);
        (half, copy.buffer.to_vec())
    }

    #[test]
    fn a_half_is_sealed_alike_by_the_worker_or_taken_back_unsealed() {
        let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
        // No thread: the half is still waiting when taken, so the taker seals it.
        let idle = Worker {
            shared: Arc::new(Shared {
                job: Mutex::new(Job::Idle),
                changed: Condvar::new(),
            }),
            thread: None,
        };
        let (half, expected) = half_and_sealed(&cipher);
        idle.give(half, 5);
        let back = idle.take(&cipher).unwrap();
        assert!(back.buffer[..] == expected[..] && back.len == HALF_BYTES);

        // The worker seals it, and the taker waits for that.
        let worker = Worker::start(cipher.clone()).unwrap();
        let (half, expected) = half_and_sealed(&cipher);
        worker.give(half, 5);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !matches!(*worker.shared.job(), Job::Sealed(_)) {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker sealed nothing"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let back = worker.take(&cipher).unwrap();
        assert!(back.buffer[..] == expected[..] && back.len == HALF_BYTES);
        // A half left with a worker that is dropped: the thread ends, the half is wiped.
        worker.give(back, 9);
        drop(worker);
    }

    #[test]
    fn stanzas_are_wrapped_at_64_columns_and_read_back_by_age_core() {
        for body_len in [0, 1, 31, 32, 47, 48, 49, 95, 96, 97, 1120] {
            let stanza = Stanza {
                tag: "X25519".to_owned(),
                args: vec!["abc".to_owned(), "d+/e".to_owned()],
                body: (0..body_len).map(|i| i as u8).collect(),
            };
            let mut text = Vec::new();
            write_stanza(&mut text, &stanza).unwrap();
            let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
            assert_eq!(lines[0], b"-> X25519 abc d+/e\n");
            let (last, full) = lines[1..].split_last().unwrap();
            assert!(full.iter().all(|line| line.len() == BODY_COLUMNS + 1));
            assert!(last.len() <= BODY_COLUMNS && last.ends_with(b"\n"));
            let (rest, read) = age_core::format::read::age_stanza(&text).unwrap();
            assert!(rest.is_empty(), "body of {body_len}");
            assert_eq!(Stanza::from(read), stanza);
        }
        for bad in ["", "two words", "line\nbreak", "é"] {
            let stanza = Stanza {
                tag: "X25519".to_owned(),
                args: vec![bad.to_owned()],
                body: Vec::new(),
            };
            let refused = write_stanza(&mut Vec::new(), &stanza).unwrap_err();
            assert_eq!(
                refused.to_string(),
                "age: a recipient made a malformed stanza"
            );
        }
    }

    /// A recipient that wraps nothing and gives these labels.
    struct Labelled(&'static str);

    impl age::Recipient for Labelled {
        fn wrap_file_key(
            &self,
            _: &FileKey,
        ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
            Ok((Vec::new(), HashSet::from([self.0.to_owned()])))
        }
    }

    fn refusal(recipients: &[&dyn age::Recipient]) -> String {
        match Sealer::new(recipients.iter().copied(), Vec::new(), None) {
            Ok(_) => panic!("sealed to a list the crate refuses"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn recipients_whose_labels_differ_never_share_a_file() {
        let classic = age::x25519::Identity::generate().to_public();
        let quantum = pq::Identity::generate().to_public();
        let differ = "age: these recipients cannot share a file (their labels differ: post-quantum and classical keys, for one)";
        assert_eq!(refusal(&[&classic, &quantum]), differ);
        assert_eq!(refusal(&[&quantum, &classic]), differ);
        assert_eq!(refusal(&[&quantum, &Labelled("other")]), differ);
        assert_eq!(
            refusal(&[&Labelled("two words")]),
            "age: a recipient gave invalid labels"
        );
        assert_eq!(refusal(&[]), "age: no recipients");
        let same: [&dyn age::Recipient; 2] = [&quantum, &Labelled("postquantum")];
        assert!(seal_bytes(same.into_iter(), b"x").is_ok());
    }

    /// Takes every write but the `fail_at`-th (counting from 1).
    struct Flaky<'a> {
        written: &'a mut Vec<u8>,
        calls: usize,
        fail_at: usize,
    }

    impl Write for Flaky<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls == self.fail_at {
                return Err(io::Error::other("disk full"));
            }
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn after_a_failed_write_nothing_more_is_sealed_or_written() {
        let recipient = age::x25519::Identity::generate().to_public();
        let plain = vec![0x5a; 3 * BATCH + 3];
        // The header, then each half of each batch, is one write.
        for fail_at in 2..=5 {
            let mut written = Vec::new();
            let output = Flaky {
                written: &mut written,
                calls: 0,
                fail_at,
            };
            let mut sealer = Sealer::new(std::iter::once(&recipient as _), output, None).unwrap();
            assert_eq!(
                sealer.write_all(&plain).unwrap_err().to_string(),
                "disk full"
            );
            let again = sealer.write_all(&plain).unwrap_err();
            assert_eq!(
                again.to_string(),
                "an earlier write of this age file failed"
            );
            let finished = sealer.finish().err().unwrap();
            assert_eq!(
                finished.to_string(),
                "an earlier write of this age file failed"
            );
            // Sealing a sealed half again would have given back the plaintext.
            assert!(!written.windows(64).any(|w| w.iter().all(|&b| b == 0x5a)));
        }
    }

    #[test]
    fn a_file_cut_short_or_never_finished_does_not_open() {
        let key = age::x25519::Identity::generate();
        let recipient = key.to_public();
        for size in [1, CHUNK + 1, BATCH + 1, 3 * BATCH + 5] {
            let plain = plain(size);
            let mut unfinished = Vec::new();
            let mut sealer =
                Sealer::new(std::iter::once(&recipient as _), &mut unfinished, None).unwrap();
            sealer.write_all(&plain).unwrap();
            drop(sealer);
            assert!(age::decrypt(&key, &unfinished).is_err(), "size {size}");

            let whole = sealed(&recipient, &plain, usize::MAX);
            let last_chunk = (whole.len() - payload_start(&whole) - 1) / SEALED_CHUNK;
            let cut = payload_start(&whole) + last_chunk * SEALED_CHUNK;
            assert!(age::decrypt(&key, &whole[..cut]).is_err(), "size {size}");
        }
    }
}

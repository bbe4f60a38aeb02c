//! Writing age v1 files: the one encoder agedrop seals everything with (items,
//! metadata records, replies, wrapped source keys).
//!
//! Why not the `age` crate's `StreamWriter`: its ChaCha20-Poly1305 (RustCrypto) takes
//! about 2.2 times the CPU per byte of ring's, which is used here (src/crypto/format.rs
//! says why), it writes every 64 KiB chunk on its own, and it keeps the payload key to
//! itself. So the header and the payload are written here, as the age
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

use age_core::format::{is_arbitrary_string, FileKey, Stanza};
use base64::Engine;
use hmac::Mac;

use crate::budget::{Budget, Claim};

use super::format::{self, Half, PayloadKey, BODY_COLUMNS, CHUNK, INTRO, MAC_START, NONCE_BYTES};
use super::format::{SEALED_CHUNK, STANZA_START, TAG_BYTES};

// How the payload is sealed, and what it costs.
//
// Plaintext is copied once, into a batch laid out as its sealed chunks will be (each
// chunk's tag right after its data); each chunk is sealed in place, which overwrites
// its plaintext, and the batch goes to the output in one write. One thread: with
// ring's ChaCha20-Poly1305, sealing 1 GiB takes about 0.4 s of one core, less than
// receiving it and writing it to the page cache; a second sealing thread (the design
// before) saved no time and cost a thread wake-up per chunk.
//
// A batch starts at one chunk (64 KiB and its tag; a small file's own size when it is
// known) and a file that outgrows it takes, once, up to MAX_BATCH_CHUNKS chunks from a
// budget that all files being sealed share (BATCH_BUDGET): the kernel's page cache
// takes 1 GiB in 1 MiB writes in about 0.18 s of system time, in 64 KiB + 16 B writes
// in 0.31–0.34 s (docs/PERFORMANCE.md). The budget (two full batches) keeps many
// concurrent uploads within their memory target (64 x 16 MiB in 128 MiB): the first
// large files get large batches, the others one chunk, which costs them little since
// they share the cores anyway. Nothing is allocated per batch.

/// Most chunks in one batch, i.e. in one write to the output: 1 MiB of plaintext.
const MAX_BATCH_CHUNKS: usize = 16;
/// Bytes of batch beyond each file's first chunk, for all files being sealed at once.
const BATCH_BUDGET: usize = 2 * 1024 * 1024;
static BATCHES: Budget = Budget::new(BATCH_BUDGET);

/// An age file being written. Plaintext goes in through [`Write`]; ciphertext goes to
/// the wrapped writer a batch of 64 KiB chunks at a time (src/crypto/seal.rs says how).
///
/// You **MUST** call [`Sealer::finish`]: without it the file is truncated and will not
/// decrypt (which is what we want for an aborted upload, and nothing else).
pub struct Sealer<W: Write> {
    output: W,
    cipher: PayloadKey,
    /// The number of the batch's first chunk.
    counter: u64,
    batch: Half,
    /// What the batch took from [`BATCH_BUDGET`]; `None` until it outgrows its start.
    claim: Option<Claim<'static>>,
    /// Set while a batch is sealed and written, and left set if that failed: the
    /// batch may then hold ciphertext, which must never be sealed again (sealing it
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
            cipher: format::payload_key(&file_key, &nonce),
            counter: 0,
            batch: Half::new(
                expected.map_or(SEALED_CHUNK, |plain| sealed_size(plain).min(SEALED_CHUNK)),
            ),
            claim: None,
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
        let batch = &mut self.batch;
        seal(&self.cipher, batch, self.counter, last);
        self.output.write_all(&batch.buffer[..batch.len])?;
        self.counter += batch.len.div_ceil(SEALED_CHUNK) as u64;
        batch.len = 0;
        self.failed = false;
        Ok(())
    }

    /// The first time the batch is full: it grows to a whole chunk (if it was sized
    /// for a small file) and by what the budget gives.
    fn grow(&mut self) {
        if self.claim.is_some() {
            return;
        }
        let claim = BATCHES.take((MAX_BATCH_CHUNKS - 1) * SEALED_CHUNK, SEALED_CHUNK);
        let size = SEALED_CHUNK + claim.units();
        if size > self.batch.buffer.len() {
            self.batch = self.batch.grown(size);
        }
        self.claim = Some(claim);
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
        if self.batch.room() == 0 {
            self.grow();
        }
        if self.batch.room() == 0 {
            self.seal_batch(false)?;
        }
        Ok(self.batch.put(plain))
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
fn seal(cipher: &PayloadKey, half: &mut Half, counter: u64, last: bool) {
    half.len += TAG_BYTES;
    for (nonce, data, tag) in format::chunks(&mut half.buffer[..half.len], counter, last) {
        tag.copy_from_slice(&cipher.seal(nonce, data));
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

    /// The same plaintext in a buffer of `bytes`; this one is wiped as it drops.
    fn grown(&self, bytes: usize) -> Half {
        let mut grown = Half::new(bytes);
        grown.buffer[..self.len].copy_from_slice(&self.buffer[..self.len]);
        grown.len = self.len;
        grown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pq;

    /// The plaintext of a largest batch.
    const BATCH: usize = MAX_BATCH_CHUNKS * CHUNK;

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
    fn a_batch_grows_once_a_file_outgrows_its_first_chunk() {
        let key = age::x25519::Identity::generate();
        let recipient = key.to_public();
        let plain = plain(3 * BATCH);
        let mut sealer = Sealer::new(std::iter::once(&recipient as _), Vec::new(), None).unwrap();
        sealer.write_all(&plain[..CHUNK]).unwrap();
        assert_eq!(sealer.batch.buffer.len(), SEALED_CHUNK);
        assert!(sealer.claim.is_none());
        sealer.write_all(&plain[CHUNK..CHUNK + 1]).unwrap();
        // Other tests seal at the same time, so the budget may have given less.
        let taken = sealer.claim.as_ref().unwrap().units();
        assert!(taken <= (MAX_BATCH_CHUNKS - 1) * SEALED_CHUNK && taken % SEALED_CHUNK == 0);
        assert_eq!(sealer.batch.buffer.len(), SEALED_CHUNK + taken);
        sealer.write_all(&plain[CHUNK + 1..]).unwrap();
        let sealed = sealer.finish().unwrap();
        assert!(age::decrypt(&key, &sealed).unwrap() == plain);

        // A buffer sized for less than is written grows too.
        let mut small =
            Sealer::new(std::iter::once(&recipient as _), Vec::new(), Some(10)).unwrap();
        assert_eq!(small.batch.buffer.len(), 10 + TAG_BYTES);
        small.write_all(&plain[..BATCH]).unwrap();
        assert!(small.batch.buffer.len() >= SEALED_CHUNK);
        assert!(age::decrypt(&key, &small.finish().unwrap()).unwrap() == plain[..BATCH]);
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
        // The header, then each batch, is one write; the last 3 bytes wait for finish.
        for fail_at in 2..=4 {
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

//! Decrypting a whole age v1 file on two cores, for the large items the offline machine
//! imports. The `age` crate decrypts the STREAM payload on one thread, at about 1.7
//! times Go age's CPU per byte (docs/PERFORMANCE.md); its chunks are independent once
//! the payload key is known, so here the header is read and authenticated as the age
//! specification (C2SP age.md) says, the file key is unwrapped by the `age` identities
//! themselves (`Identity::unwrap_stanzas`, the crate's own "one joint"), and the
//! chunks are opened in batches split across two threads.
//!
//! What is checked, as `age` checks it: the version line; every stanza in canonical
//! form (age-core's own parser); the header MAC (HMAC-SHA-256 under
//! HKDF(file key, "header")) before any payload byte is used; each chunk's
//! ChaCha20-Poly1305 tag under HKDF(file key, nonce, "payload") with its counter and the
//! last-chunk flag, so a truncated, extended or reordered payload fails; an empty last
//! chunk only when it is the only one; nothing after the last chunk. Plaintext of a
//! failed file may already have been written: callers discard it (as with
//! [`super::Identities::decrypt`]). Interop is tested against the `age` crate's encoder
//! and the stock Go `age` CLI. The format's constants, keys and chunk nonces are
//! shared with agedrop's encoder (src/crypto/format.rs, src/crypto/seal.rs).

use std::io::{self, Read, Write};
use std::sync::mpsc;

use age_core::format::{FileKey, Stanza};
use base64::Engine;
use hmac::Mac;
use zeroize::Zeroize;

use super::format::{
    self, Half, PayloadKey, BODY_COLUMNS, INTRO, MAC_START, SEALED_CHUNK, STANZA_START,
};
use super::format::{NONCE_BYTES, TAG_BYTES};
use super::OpenError;

/// A header larger than this is not one of ours (post-quantum stanzas are ~1.5 KiB).
const MAX_HEADER: usize = 1024 * 1024;
/// Chunks per thread per batch: a batch is 2 x 16 sealed chunks, about 2 MiB.
const CHUNKS_PER_THREAD: usize = 16;

/// Decrypts the age file in `input` with the first of `identities` that unwraps its
/// file key, writing the plaintext to `output`; at most `max` plaintext bytes.
pub(super) fn decrypt(
    identities: &[Box<dyn age::Identity>],
    mut input: impl Read,
    output: &mut (impl Write + Send),
    max: u64,
) -> Result<u64, OpenError> {
    let header = read_header(&mut input)?;
    let file_key = identities
        .iter()
        .find_map(|identity| identity.unwrap_stanzas(&header.stanzas))
        .ok_or(OpenError::Undecryptable)?
        .map_err(|_| OpenError::Undecryptable)?;
    verify_mac(&file_key, &header)?;
    let mut nonce = [0u8; NONCE_BYTES];
    input
        .read_exact(&mut nonce)
        .map_err(|_| OpenError::Undecryptable)?;
    let cipher = format::payload_key(&file_key, &nonce);
    drop(file_key);
    open_payload(&cipher, input, output, max)
}

/// The header as read: its stanzas, the bytes the MAC covers, and the MAC.
struct Header {
    stanzas: Vec<Stanza>,
    /// From the version line up to and including `---`.
    covered: Vec<u8>,
    mac: [u8; 32],
}

/// Reads the header line by line (it is small; the payload follows directly).
fn read_header(input: &mut impl Read) -> Result<Header, OpenError> {
    let mut covered = Vec::with_capacity(1024);
    let mut line = Vec::with_capacity(128);
    read_line(input, &mut line, MAX_HEADER)?;
    if line != INTRO {
        return Err(OpenError::Undecryptable);
    }
    covered.extend_from_slice(&line);
    let mut stanzas = Vec::new();
    loop {
        read_line(input, &mut line, MAX_HEADER - covered.len())?;
        if let Some(encoded) = line.strip_prefix(MAC_START) {
            covered.extend_from_slice(&MAC_START[..3]);
            let encoded = encoded
                .strip_suffix(b"\n")
                .ok_or(OpenError::Undecryptable)?;
            let mut mac = [0u8; 32];
            let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode_slice(encoded, &mut mac)
                .map_err(|_| OpenError::Undecryptable)?;
            if decoded != mac.len() {
                return Err(OpenError::Undecryptable);
            }
            return Ok(Header {
                stanzas,
                covered,
                mac,
            });
        }
        if !line.starts_with(STANZA_START) {
            return Err(OpenError::Undecryptable);
        }
        // A stanza: its first line, then body lines of 64 columns ending with a
        // shorter one (possibly empty).
        let start = covered.len();
        covered.extend_from_slice(&line);
        loop {
            read_line(input, &mut line, MAX_HEADER - covered.len())?;
            covered.extend_from_slice(&line);
            if line.len() < BODY_COLUMNS + 1 {
                break;
            }
        }
        let (rest, stanza) = age_core::format::read::age_stanza(&covered[start..])
            .map_err(|_| OpenError::Undecryptable)?;
        if !rest.is_empty() {
            return Err(OpenError::Undecryptable);
        }
        stanzas.push(Stanza::from(stanza));
    }
}

/// Reads one line, `\n` included, into `line` (cleared first); at most `max` bytes.
fn read_line(input: &mut impl Read, line: &mut Vec<u8>, max: usize) -> Result<(), OpenError> {
    line.clear();
    let mut byte = [0u8; 1];
    loop {
        input
            .read_exact(&mut byte)
            .map_err(|_| OpenError::Undecryptable)?;
        line.push(byte[0]);
        if byte[0] == b'\n' {
            return Ok(());
        }
        if line.len() >= max {
            return Err(OpenError::Undecryptable);
        }
    }
}

fn verify_mac(file_key: &FileKey, header: &Header) -> Result<(), OpenError> {
    let mut mac = format::header_mac(file_key);
    mac.update(&header.covered);
    mac.verify_slice(&header.mac)
        .map_err(|_| OpenError::Undecryptable)
}

/// Batches in flight: one being read and opened, one being written, one spare.
const POOL: usize = 3;

/// One half of a batch: up to [`CHUNKS_PER_THREAD`] sealed chunks.
fn new_half() -> Half {
    Half::new(CHUNKS_PER_THREAD * SEALED_CHUNK)
}

/// Work for the second opener: a half, the counter of its first chunk, and whether
/// its last chunk is the file's last.
type Job = (Half, u64, bool);

/// Opens the STREAM payload on three long-lived threads: this one reads a batch (two
/// halves, from a pool of reused buffers) and opens its first half while a second
/// thread opens the other; a writer thread writes the plaintext, wipes the buffers and
/// hands them back. Nothing is allocated per batch, and plaintext is copied only into
/// the kernel.
fn open_payload<W: Write + Send>(
    cipher: &PayloadKey,
    mut input: impl Read,
    output: &mut W,
    max: u64,
) -> Result<u64, OpenError> {
    let (to_writer, batches) = mpsc::sync_channel::<[Half; 2]>(POOL);
    let (to_pool, pool) = mpsc::channel::<[Half; 2]>();
    for _ in 0..POOL {
        to_pool
            .send([new_half(), new_half()])
            .expect("the pool's receiver is alive here");
    }
    let (to_opener, jobs) = mpsc::sync_channel::<Job>(1);
    let (opened_tx, opened) = mpsc::sync_channel::<(Half, Result<(), OpenError>)>(1);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for (mut half, counter, last) in jobs {
                let result = open_chunks(cipher, &mut half.buffer[..half.len], counter, last);
                if opened_tx.send((half, result)).is_err() {
                    return;
                }
            }
        });
        let writer = scope.spawn(move || -> Result<(), OpenError> {
            for mut batch in batches {
                let mut written = Ok(());
                for half in &mut batch {
                    let plain = compact(&mut half.buffer[..half.len]);
                    if written.is_ok() {
                        written = output.write_all(&half.buffer[..plain]);
                    }
                    half.buffer[..half.len].zeroize();
                }
                // The reader may have stopped already: then the buffers are dropped.
                let _ = to_pool.send(batch);
                written.map_err(|_| OpenError::Write)?;
            }
            Ok(())
        });
        let read = read_batches(
            cipher, &mut input, max, &pool, &to_opener, &opened, &to_writer,
        );
        drop(to_opener);
        drop(to_writer);
        let written = writer.join().unwrap_or(Err(OpenError::Write));
        let total = read?;
        written?;
        Ok(total)
    })
}

/// The reading side of [`open_payload`]: fills batches from the pool, opens them
/// (the second half on the opener thread), and sends them to the writer in order.
/// Returns the plaintext length.
fn read_batches(
    cipher: &PayloadKey,
    input: &mut impl Read,
    max: u64,
    pool: &mpsc::Receiver<[Half; 2]>,
    to_opener: &mpsc::SyncSender<Job>,
    opened: &mpsc::Receiver<(Half, Result<(), OpenError>)>,
    to_writer: &mpsc::SyncSender<[Half; 2]>,
) -> Result<u64, OpenError> {
    // One byte past each batch tells whether its last chunk is the file's last; that
    // byte then starts the next batch.
    let mut carried: Option<u8> = None;
    let mut counter = 0u64;
    let mut total = 0u64;
    loop {
        // Only a writer that stopped (a write failed) returns no buffers.
        let [mut first, mut second] = pool.recv().map_err(|_| OpenError::Write)?;
        let start = match carried {
            Some(byte) => {
                first.buffer[0] = byte;
                1
            }
            None => 0,
        };
        first.len = start + fill(input, &mut first.buffer[start..])?;
        second.len = if first.len == first.buffer.len() {
            fill(input, &mut second.buffer[..])?
        } else {
            0
        };
        let mut next = [0u8; 1];
        let last = second.len < second.buffer.len() || fill(input, &mut next)? == 0;
        let sealed = first.len + second.len;
        if last {
            // The last chunk must hold a tag, and be empty only if it is the only one.
            let tail_ok = match sealed % SEALED_CHUNK {
                0 => sealed > 0,
                TAG_BYTES => counter == 0 && sealed == TAG_BYTES,
                n => n > TAG_BYTES,
            };
            if !tail_ok {
                return Err(OpenError::Undecryptable);
            }
        }
        // Halves hold whole chunks, so a chunk never spans two.
        let first_chunks = first.len.div_ceil(SEALED_CHUNK) as u64;
        let second_chunks = second.len.div_ceil(SEALED_CHUNK) as u64;
        let second = if second.len > 0 {
            to_opener
                .send((second, counter + first_chunks, last))
                .map_err(|_| OpenError::Undecryptable)?;
            let opening = open_chunks(cipher, &mut first.buffer[..first.len], counter, false);
            let (second, result) = opened.recv().map_err(|_| OpenError::Undecryptable)?;
            opening.and(result)?;
            second
        } else {
            open_chunks(cipher, &mut first.buffer[..first.len], counter, last)?;
            second
        };
        total += (sealed as u64) - (first_chunks + second_chunks) * TAG_BYTES as u64;
        if total > max {
            return Err(OpenError::TooLarge);
        }
        counter += first_chunks + second_chunks;
        to_writer
            .send([first, second])
            .map_err(|_| OpenError::Write)?;
        if last {
            return Ok(total);
        }
        carried = Some(next[0]);
    }
}

/// Moves each opened chunk's plaintext down over the tags before it, so the batch's
/// plaintext is one run from the start. Returns its length.
fn compact(opened: &mut [u8]) -> usize {
    let mut plain = 0;
    let mut at = 0;
    while at < opened.len() {
        let len = (opened.len() - at).min(SEALED_CHUNK) - TAG_BYTES;
        opened.copy_within(at..at + len, plain);
        plain += len;
        at += SEALED_CHUNK;
    }
    plain
}

/// Opens `sealed` chunks in place, numbered from `counter`; the last of them is the
/// file's last if `last`.
fn open_chunks(
    cipher: &PayloadKey,
    sealed: &mut [u8],
    counter: u64,
    last: bool,
) -> Result<(), OpenError> {
    for (nonce, data, tag) in format::chunks(sealed, counter, last) {
        cipher
            .open(nonce, data, tag)
            .map_err(|_| OpenError::Undecryptable)?;
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, OpenError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(OpenError::Undecryptable),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::format::CHUNK;

    fn identity() -> (Vec<Box<dyn age::Identity>>, age::x25519::Recipient) {
        let key = age::x25519::Identity::generate();
        let recipient = key.to_public();
        (vec![Box::new(key)], recipient)
    }

    fn seal(recipient: &age::x25519::Recipient, plain: &[u8]) -> Vec<u8> {
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                .unwrap();
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).unwrap();
        writer.write_all(plain).unwrap();
        writer.finish().unwrap();
        out
    }

    fn open(identities: &[Box<dyn age::Identity>], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut out = Vec::new();
        decrypt(identities, sealed, &mut out, u64::MAX).map(|n| {
            assert_eq!(n as usize, out.len());
            out
        })
    }

    #[test]
    fn opens_what_the_age_crate_seals_at_every_chunk_boundary() {
        let (identities, recipient) = identity();
        let sizes = [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            31 * CHUNK,
            32 * CHUNK,
            32 * CHUNK + 1,
            33 * CHUNK,
            64 * CHUNK,
            70 * CHUNK + 123,
        ];
        for size in sizes {
            let plain: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
            let sealed = seal(&recipient, &plain);
            assert!(open(&identities, &sealed).unwrap() == plain, "size {size}");
        }
    }

    #[test]
    fn refuses_tampering_truncation_extension_and_other_keys() {
        let (identities, recipient) = identity();
        let plain = vec![9u8; 40 * CHUNK + 5];
        let sealed = seal(&recipient, &plain);
        let header_end = sealed.windows(4).position(|w| w == b"--- ").unwrap() + 48;
        let refused =
            |bytes: &[u8]| matches!(open(&identities, bytes), Err(OpenError::Undecryptable));
        // Any flipped byte: in the header, the MAC, the nonce, a chunk, a tag.
        for at in [
            5,
            30,
            header_end - 10,
            header_end + 3,
            header_end + 20,
            sealed.len() / 2,
            sealed.len() - 1,
        ] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(refused(&bad), "flipped byte {at}");
        }
        // Cut at a chunk boundary (the last flag is missing), mid-chunk, or after the
        // header; extended by a byte or by a chunk.
        let first_chunk = header_end + 16;
        for cut in [
            first_chunk + SEALED_CHUNK,
            first_chunk + 32 * SEALED_CHUNK,
            sealed.len() - 1,
            first_chunk,
        ] {
            assert!(refused(&sealed[..cut]), "cut at {cut}");
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(refused(&longer));
        let mut doubled = sealed.clone();
        doubled.extend_from_slice(&sealed[first_chunk..first_chunk + SEALED_CHUNK]);
        assert!(refused(&doubled));
        // Two chunks swapped.
        let mut swapped = sealed.clone();
        let (a, b) = (first_chunk, first_chunk + SEALED_CHUNK);
        let chunk_a = sealed[a..b].to_vec();
        swapped.copy_within(b..b + SEALED_CHUNK, a);
        swapped[b..b + SEALED_CHUNK].copy_from_slice(&chunk_a);
        assert!(refused(&swapped));
        let (others, _) = identity();
        assert!(matches!(
            open(&others, &sealed),
            Err(OpenError::Undecryptable)
        ));
        // An empty last chunk after a full one is not canonical.
        let empty = seal(&recipient, &[]);
        assert!(open(&identities, &empty).unwrap().is_empty());
        let mut bound = Vec::new();
        assert!(matches!(
            decrypt(&identities, &sealed[..], &mut bound, 10 * CHUNK as u64),
            Err(OpenError::TooLarge)
        ));
    }

    #[test]
    fn several_recipients_and_the_right_identity_among_several() {
        let a = age::x25519::Identity::generate();
        let b = age::x25519::Identity::generate();
        let encryptor = age::Encryptor::with_recipients(
            [&a.to_public() as &dyn age::Recipient, &b.to_public()].into_iter(),
        )
        .unwrap();
        let mut sealed = Vec::new();
        let mut writer = encryptor.wrap_output(&mut sealed).unwrap();
        writer.write_all(&[3u8; 3 * CHUNK]).unwrap();
        writer.finish().unwrap();
        let other = age::x25519::Identity::generate();
        let identities: Vec<Box<dyn age::Identity>> = vec![Box::new(other), Box::new(b)];
        assert_eq!(open(&identities, &sealed).unwrap(), vec![3u8; 3 * CHUNK]);
    }
}

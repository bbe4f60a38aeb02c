//! What agedrop's reader (payload.rs) and writer (seal.rs) of age v1 files share: the
//! header's fixed strings, the keys derived from the file key, the STREAM chunk layout
//! and nonces, and the buffers chunks are processed in (C2SP age.md).

use age::secrecy::ExposeSecret;
use age_core::format::FileKey;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
use sha2::Sha256;
use zeroize::Zeroizing;

pub(super) const INTRO: &[u8] = b"age-encryption.org/v1\n";
pub(super) const STANZA_START: &[u8] = b"-> ";
/// The MAC line's start; the MAC covers the header up to and including `---`.
pub(super) const MAC_START: &[u8] = b"--- ";
/// A stanza body's full lines have this many base64 columns; its last line fewer.
pub(super) const BODY_COLUMNS: usize = 64;
/// The payload nonce, after the header.
pub(super) const NONCE_BYTES: usize = 16;
/// Plaintext per chunk.
pub(super) const CHUNK: usize = 64 * 1024;
pub(super) const TAG_BYTES: usize = 16;
pub(super) const SEALED_CHUNK: usize = CHUNK + TAG_BYTES;

/// HMAC-SHA-256 keyed with HKDF-SHA-256(file key, salt empty, "header"): fed the
/// header up to and including `---`, it gives the header's MAC.
pub(super) fn header_mac(file_key: &FileKey) -> Hmac<Sha256> {
    let key = derive(None, file_key, b"header");
    <Hmac<Sha256> as Mac>::new_from_slice(&*key).expect("HMAC takes a key of any length")
}

/// The payload's AEAD under HKDF-SHA-256(file key, salt = nonce, "payload").
pub(super) fn payload_key(file_key: &FileKey, nonce: &[u8; NONCE_BYTES]) -> PayloadKey {
    let key = derive(Some(nonce), file_key, b"payload");
    PayloadKey::new(&key)
}

/// A payload key: ChaCha20-Poly1305 as `ring` implements it, wiped when dropped.
///
/// Why ring and not the RustCrypto `chacha20poly1305` crate the `age` crate uses:
/// ring's is the assembly of BoringSSL/OpenSSL (ChaCha20 and Poly1305 interleaved,
/// AVX2), 2.2 times faster here (1 GiB in 64 KiB chunks: 0.38 s against 0.83 s on one
/// core; docs/PERFORMANCE.md), and ring is already in the tree as rustls's crypto. The
/// chunk layout, nonces and tags are the format's; the three interop tests
/// (tests/seal.rs) hold the two together.
///
/// ring does not wipe its keys; the key lives in its own heap box, which is
/// overwritten with an all-zero key before it is freed (see [`Drop`] below), as the
/// RustCrypto type did with `zeroize`.
pub(super) struct PayloadKey(Box<LessSafeKey>);

/// Why a sealed chunk was refused: its tag does not match (wrong key, altered or
/// reordered chunk, or a last-chunk flag that does not fit).
#[derive(Debug)]
pub(super) struct Forged;

impl PayloadKey {
    pub(super) fn new(key: &[u8; 32]) -> Self {
        PayloadKey(Box::new(chacha20_poly1305(key)))
    }

    /// Seals `data` in place under `nonce`; returns its tag.
    pub(super) fn seal(&self, nonce: [u8; 12], data: &mut [u8]) -> [u8; TAG_BYTES] {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), data)
            .expect("a 64 KiB chunk is far below ChaCha20-Poly1305's limit");
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Opens `data` in place under `nonce` if `tag` is its tag; on [`Forged`] what
    /// `data` holds is not to be used.
    pub(super) fn open(&self, nonce: [u8; 12], data: &mut [u8], tag: &[u8]) -> Result<(), Forged> {
        let tag = Tag::try_from(tag).map_err(|_| Forged)?;
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                tag,
                data,
                0..,
            )
            .map(|_| ())
            .map_err(|_| Forged)
    }
}

impl Drop for PayloadKey {
    fn drop(&mut self) {
        // Assigning in place writes the zero key over the old one's bytes in the box;
        // `black_box` keeps the compiler from dropping that store as dead before the
        // box is freed.
        *self.0 = chacha20_poly1305(&[0u8; 32]);
        std::hint::black_box(&*self.0);
    }
}

fn chacha20_poly1305(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, key).expect("ChaCha20-Poly1305 takes a 32-byte key"),
    )
}

fn derive(salt: Option<&[u8]>, file_key: &FileKey, info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(salt, file_key.expose_secret())
        .expand(info, &mut *key)
        .expect("32 bytes is a valid HKDF-SHA-256 output length");
    key
}

/// The sealed chunks in `sealed` (each [`SEALED_CHUNK`] bytes but the last, which
/// holds at least its tag), numbered from `counter`, each with its AEAD nonce (the
/// 11-byte big-endian counter, then 1 on the file's last chunk) and split into data
/// and tag. The last of them is the file's last if `last`.
pub(super) fn chunks(
    sealed: &mut [u8],
    counter: u64,
    last: bool,
) -> impl Iterator<Item = ([u8; 12], &mut [u8], &mut [u8])> {
    let count = sealed.len().div_ceil(SEALED_CHUNK);
    sealed
        .chunks_mut(SEALED_CHUNK)
        .enumerate()
        .map(move |(i, chunk)| {
            let mut nonce = [0u8; 12];
            nonce[3..11].copy_from_slice(&(counter + i as u64).to_be_bytes());
            nonce[11] = u8::from(last && i + 1 == count);
            let (data, tag) = chunk.split_at_mut(chunk.len() - TAG_BYTES);
            (nonce, data, tag)
        })
}

/// A buffer of whole sealed chunks, processed by one thread at a time and handed
/// between threads without copying; wiped when dropped. `len` is how many bytes of
/// it are in use.
pub(super) struct Half {
    pub(super) buffer: Zeroizing<Vec<u8>>,
    pub(super) len: usize,
}

impl Half {
    /// An empty half of `bytes` bytes.
    pub(super) fn new(bytes: usize) -> Self {
        Half {
            buffer: Zeroizing::new(vec![0u8; bytes]),
            len: 0,
        }
    }
}

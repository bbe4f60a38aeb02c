//! What agedrop's reader (payload.rs) and writer (seal.rs) of age v1 files share: the
//! header's fixed strings, the keys derived from the file key, the STREAM chunk layout
//! and nonces, and the buffers chunks are processed in (C2SP age.md).

use age::secrecy::ExposeSecret;
use age_core::format::FileKey;
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
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

/// The payload's AEAD under HKDF-SHA-256(file key, salt = nonce, "payload"); it wipes
/// its key when dropped.
pub(super) fn payload_cipher(file_key: &FileKey, nonce: &[u8; NONCE_BYTES]) -> ChaCha20Poly1305 {
    let key = derive(Some(nonce), file_key, b"payload");
    ChaCha20Poly1305::new(Key::from_slice(&*key))
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
) -> impl Iterator<Item = (Nonce, &mut [u8], &mut [u8])> {
    let count = sealed.len().div_ceil(SEALED_CHUNK);
    sealed
        .chunks_mut(SEALED_CHUNK)
        .enumerate()
        .map(move |(i, chunk)| {
            let mut nonce = Nonce::default();
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

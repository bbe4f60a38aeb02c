//! age's hybrid post-quantum recipient type, `mlkem768x25519` (C2SP age.md, "The
//! MLKEM768-X25519 (i.e. X-Wing) hybrid post-quantum recipient type"): recipients
//! `age1pq1…`, identities `AGE-SECRET-KEY-PQ-1…`.
//!
//! The `age` crate 0.12 implements the hardware-tag types (`age1tag1…`,
//! `age1tagpq1…`) but not this one, and `hpke` 0.12 has no MLKEM768-X25519 KEM. So the
//! KEM is written here, exactly as draft-connolly-cfrg-xwing-kem (the KEM the spec's
//! hpke-pq reference calls MLKEM768-X25519) defines it, on RustCrypto's `ml-kem`,
//! `x25519-dalek` and `sha3`; HPKE itself (SealBase/OpenBase with HKDF-SHA256 and
//! ChaCha20Poly1305) is the `hpke` crate's, through age-core's own helpers, as for
//! age's native tag types. tests/pq.rs checks it against the C2SP test vectors and the
//! TypeScript `age-encryption`; SECURITY.md ("Cryptography") says what it protects.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use age_core::primitives::{bech32_decode, bech32_encode, hpke_open, hpke_seal};
use base64::prelude::{Engine, BASE64_STANDARD_NO_PAD};
use hpke::generic_array::typenum::{self, Unsigned, U32};
use hpke::rand_core::{CryptoRng, RngCore};
use hpke::{Deserializable, HpkeError, Serializable};
use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{EncodedSizeUser, KemCore, MlKem768};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Shake256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// The stanza's first argument.
pub(super) const STANZA_TAG: &str = "mlkem768x25519";
/// HPKE `info` for this stanza.
const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
const RECIPIENT_HRP: &str = "age1pq";
const IDENTITY_HRP: &str = "AGE-SECRET-KEY-PQ-";
/// The label the age crate's own post-quantum recipient (`tagpq`) declares: its
/// Encryptor, and agedrop's encoder (seal.rs) by the same rule, refuse to put
/// recipients with different labels in one file, so a file is never both post-quantum
/// and classical.
const LABEL: &str = "postquantum";

/// X-Wing's HPKE KEM id (25722 = 25519 + 203), as in its draft and hpke-pq.
const KEM_ID: u16 = 0x647a;
/// X-Wing's combiner label, `\./` `/^\`.
const XWING_LABEL: &[u8; 6] = b"\\.//^\\";

type EkM = <MlKem768 as KemCore>::EncapsulationKey;
type DkM = <MlKem768 as KemCore>::DecapsulationKey;
type EkMSize = <EkM as EncodedSizeUser>::EncodedSize;
type CtMSize = <MlKem768 as KemCore>::CiphertextSize;
const EK_M: usize = <EkMSize as Unsigned>::USIZE;
const CT_M: usize = <CtMSize as Unsigned>::USIZE;
/// Public key: ML-KEM-768 encapsulation key || X25519 public key (1216 bytes).
const PK_BYTES: usize = EK_M + 32;
/// Encapsulated key `enc`: ML-KEM-768 ciphertext || X25519 ephemeral share (1120 bytes).
const ENC_BYTES: usize = CT_M + 32;
/// A file key (16 bytes) sealed with ChaCha20-Poly1305 (16-byte tag).
const SEALED_FILE_KEY: usize = 32;

/// The OS CSPRNG in the `rand_core` 0.6 traits that `hpke`, `ml-kem` and
/// `x25519-dalek` take.
struct OsCsprng;

impl RngCore for OsCsprng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        crate::random::fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        crate::random::fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        crate::random::fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), hpke::rand_core::Error> {
        crate::random::fill(dest);
        Ok(())
    }
}

impl CryptoRng for OsCsprng {}

/// The X-Wing KEM (MLKEM768-X25519), for `hpke`.
struct XWing;

/// An X-Wing encapsulation key, checked: the ML-KEM part passes FIPS 203's modulus
/// check and the X25519 part is not a low-order point.
#[derive(Clone, PartialEq)]
struct PublicKey {
    ek_m: EkM,
    pk_x: [u8; 32],
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("X-Wing public key")
    }
}

impl Serializable for PublicKey {
    type OutputSize = typenum::Sum<EkMSize, U32>;

    fn write_exact(&self, buf: &mut [u8]) {
        buf[..EK_M].copy_from_slice(&self.ek_m.as_bytes());
        buf[EK_M..].copy_from_slice(&self.pk_x);
    }
}

impl Deserializable for PublicKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        if encoded.len() != PK_BYTES {
            return Err(HpkeError::IncorrectInputLength(PK_BYTES, encoded.len()));
        }
        let (m, x) = encoded.split_at(EK_M);
        let m = ml_kem::Encoded::<EkM>::try_from(m).map_err(|_| HpkeError::ValidationError)?;
        let ek_m = EkM::from_bytes(&m);
        // FIPS 203 §7.2's encapsulation key check: decoding reduces every coefficient
        // mod q, so a key that does not re-encode to the same bytes is not canonical.
        if ek_m.as_bytes() != m {
            return Err(HpkeError::ValidationError);
        }
        let pk_x: [u8; 32] = x.try_into().expect("32 bytes remain after the ML-KEM key");
        // A low-order point would make the X25519 share all zero for every sender.
        let probe = x25519_dalek::StaticSecret::from([1u8; 32]);
        if !probe
            .diffie_hellman(&x25519_dalek::PublicKey::from(pk_x))
            .was_contributory()
        {
            return Err(HpkeError::ValidationError);
        }
        Ok(PublicKey { ek_m, pk_x })
    }
}

/// An X-Wing decapsulation key: the 32-byte seed and what it expands to. No `Debug`;
/// the seed, the ML-KEM key and the X25519 key are wiped on drop.
#[derive(Clone)]
struct PrivateKey {
    seed: Zeroizing<[u8; 32]>,
    dk_m: DkM,
    sk_x: x25519_dalek::StaticSecret,
    pk: PublicKey,
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.seed.ct_eq(&*other.seed).into()
    }
}

impl Eq for PrivateKey {}

impl Serializable for PrivateKey {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.seed[..]);
    }
}

impl Deserializable for PrivateKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let seed: &[u8; 32] = encoded
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(32, encoded.len()))?;
        Ok(PrivateKey::expand(seed))
    }
}

impl PrivateKey {
    /// X-Wing's expandDecapsulationKey: SHAKE256(seed, 96 bytes) gives ML-KEM-768's
    /// (d, z) and the X25519 secret.
    fn expand(seed: &[u8; 32]) -> Self {
        let mut expanded = Zeroizing::new([0u8; 96]);
        let mut xof = Shake256::default();
        xof.update(seed);
        xof.finalize_xof().read(&mut expanded[..]);
        let d = ml_kem::B32::try_from(&expanded[..32]).expect("32 bytes");
        let z = ml_kem::B32::try_from(&expanded[32..64]).expect("32 bytes");
        let (dk_m, ek_m) = MlKem768::generate_deterministic(&d, &z);
        let mut x = [0u8; 32];
        x.copy_from_slice(&expanded[64..]);
        let sk_x = x25519_dalek::StaticSecret::from(x);
        x.zeroize();
        let pk_x = x25519_dalek::PublicKey::from(&sk_x).to_bytes();
        PrivateKey {
            seed: Zeroizing::new(*seed),
            dk_m,
            sk_x,
            pk: PublicKey { ek_m, pk_x },
        }
    }
}

/// `enc`: the ML-KEM-768 ciphertext and the X25519 ephemeral share.
#[derive(Clone)]
struct EncappedKey(Box<[u8; ENC_BYTES]>);

impl Serializable for EncappedKey {
    type OutputSize = typenum::Sum<CtMSize, U32>;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0[..]);
    }
}

impl Deserializable for EncappedKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let bytes: [u8; ENC_BYTES] = encoded
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(ENC_BYTES, encoded.len()))?;
        Ok(EncappedKey(Box::new(bytes)))
    }
}

/// X-Wing's combiner: SHA3-256(ss_M || ss_X || ct_X || pk_X || XWingLabel).
fn combine(
    ss_m: &[u8],
    ss_x: &[u8; 32],
    ct_x: &[u8; 32],
    pk_x: &[u8; 32],
) -> hpke::kem::SharedSecret<XWing> {
    let mut h = Sha3_256::new();
    Digest::update(&mut h, ss_m);
    Digest::update(&mut h, ss_x);
    Digest::update(&mut h, ct_x);
    Digest::update(&mut h, pk_x);
    Digest::update(&mut h, XWING_LABEL);
    let mut ss = hpke::kem::SharedSecret::<XWing>::default();
    ss.0.copy_from_slice(&h.finalize());
    ss
}

impl hpke::Kem for XWing {
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;
    type EncappedKey = EncappedKey;
    type NSecret = U32;
    const KEM_ID: u16 = KEM_ID;

    fn sk_to_pk(sk: &PrivateKey) -> PublicKey {
        sk.pk.clone()
    }

    /// X-Wing's DeriveKeyPair for HPKE: the seed is SHAKE256(ikm, 32 bytes). (agedrop
    /// makes keys from 32 bytes of the OS CSPRNG and never calls this.)
    fn derive_keypair(ikm: &[u8]) -> (PrivateKey, PublicKey) {
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut xof = Shake256::default();
        xof.update(ikm);
        xof.finalize_xof().read(&mut seed[..]);
        let sk = PrivateKey::expand(&seed);
        let pk = sk.pk.clone();
        (sk, pk)
    }

    fn decap(
        sk: &PrivateKey,
        pk_sender_id: Option<&PublicKey>,
        enc: &EncappedKey,
    ) -> Result<hpke::kem::SharedSecret<Self>, HpkeError> {
        // X-Wing is not an authenticated KEM; age uses HPKE's base mode only.
        if pk_sender_id.is_some() {
            return Err(HpkeError::DecapError);
        }
        let ct_m = ml_kem::Ciphertext::<MlKem768>::try_from(&enc.0[..CT_M])
            .expect("enc holds an ML-KEM-768 ciphertext");
        let ct_x: [u8; 32] = enc.0[CT_M..]
            .try_into()
            .expect("enc ends with a 32-byte X25519 share");
        let mut ss_m = sk
            .dk_m
            .decapsulate(&ct_m)
            .map_err(|()| HpkeError::DecapError)?;
        let ss_x = sk.sk_x.diffie_hellman(&x25519_dalek::PublicKey::from(ct_x));
        // An all-zero X25519 output (a low-order share) is refused, as age's X25519
        // stanza and the C2SP vectors require.
        let contributory = ss_x.was_contributory();
        let ss = combine(&ss_m, ss_x.as_bytes(), &ct_x, &sk.pk.pk_x);
        ss_m.as_mut_slice().zeroize();
        if !contributory {
            return Err(HpkeError::DecapError);
        }
        Ok(ss)
    }

    fn encap<R: CryptoRng + RngCore>(
        pk: &PublicKey,
        sender_id_keypair: Option<(&PrivateKey, &PublicKey)>,
        csprng: &mut R,
    ) -> Result<(hpke::kem::SharedSecret<Self>, EncappedKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        let (ct_m, mut ss_m) = pk
            .ek_m
            .encapsulate(csprng)
            .map_err(|()| HpkeError::EncapError)?;
        let ek_x = x25519_dalek::EphemeralSecret::random_from_rng(&mut *csprng);
        let ct_x = x25519_dalek::PublicKey::from(&ek_x).to_bytes();
        let ss_x = ek_x.diffie_hellman(&x25519_dalek::PublicKey::from(pk.pk_x));
        let contributory = ss_x.was_contributory();
        let ss = combine(&ss_m, ss_x.as_bytes(), &ct_x, &pk.pk_x);
        ss_m.as_mut_slice().zeroize();
        if !contributory {
            return Err(HpkeError::EncapError);
        }
        let mut enc = Box::new([0u8; ENC_BYTES]);
        enc[..CT_M].copy_from_slice(&ct_m);
        enc[CT_M..].copy_from_slice(&ct_x);
        Ok((ss, EncappedKey(enc)))
    }
}

/// An `age1pq1…` recipient: files encrypted to it open only with its
/// `AGE-SECRET-KEY-PQ-1…` identity, and stay safe against a future quantum computer
/// as long as ML-KEM-768 or X25519 holds.
#[derive(Clone)]
pub struct Recipient(PublicKey);

impl FromStr for Recipient {
    type Err = &'static str;

    /// Parses `age1pq1…` (lowercase, as age writes recipients).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode(s, RECIPIENT_HRP, "not an age1pq1… recipient")?;
        if bytes.len() != PK_BYTES {
            return Err("an age1pq1… recipient holds 1216 bytes");
        }
        PublicKey::from_bytes(&bytes)
            .map(Recipient)
            .map_err(|_| "invalid post-quantum public key")
    }
}

/// The bytes of Bech32 text whose HRP is exactly `hrp` (so of that case), without BIP
/// 173's 90-character limit, as the spec says. In a buffer wiped on drop: it may be
/// a secret key.
fn decode(s: &str, hrp: &str, wrong_hrp: &'static str) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    bech32_decode(
        s,
        |_| "invalid Bech32 encoding",
        |found| (found.as_str() == hrp).then_some(()).ok_or(wrong_hrp),
        |_, bytes| {
            let mut out = Zeroizing::new(Vec::with_capacity(PK_BYTES));
            out.extend(bytes);
            Ok(out)
        },
    )
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32_encode(
            bech32::Hrp::parse_unchecked(RECIPIENT_HRP),
            &self.0.to_bytes(),
        ))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl age::Recipient for Recipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        // Cannot fail: parsing checked both halves of the key (ML-KEM's modulus check,
        // a contributory X25519 point), the only ways X-Wing encapsulation fails.
        let (enc, body) =
            hpke_seal::<XWing, _>(&self.0, INFO, file_key.expose_secret(), &mut OsCsprng);
        let stanza = Stanza {
            tag: STANZA_TAG.to_owned(),
            args: vec![BASE64_STANDARD_NO_PAD.encode(enc.to_bytes())],
            body,
        };
        Ok((vec![stanza], HashSet::from([LABEL.to_owned()])))
    }
}

/// An `AGE-SECRET-KEY-PQ-1…` identity. No `Debug`, no `Display`: its text comes out
/// only through [`Identity::to_secret_string`], wiped on drop.
pub struct Identity(PrivateKey);

impl Identity {
    /// A new identity from 32 bytes of the OS CSPRNG.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        crate::random::fill(&mut seed[..]);
        Identity(PrivateKey::expand(&seed))
    }

    /// The identity for a 32-byte seed (the spec's `identity`).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Identity(PrivateKey::expand(seed))
    }

    /// Its `age1pq1…` recipient.
    pub fn to_public(&self) -> Recipient {
        Recipient(self.0.pk.clone())
    }

    /// `AGE-SECRET-KEY-PQ-1…`, uppercase, as identity files hold it.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let lower = Zeroizing::new(bech32_encode(
            bech32::Hrp::parse_unchecked(IDENTITY_HRP),
            &self.0.seed[..],
        ));
        Zeroizing::new(lower.to_ascii_uppercase())
    }
}

impl FromStr for Identity {
    type Err = &'static str;

    /// Parses `AGE-SECRET-KEY-PQ-1…` (uppercase, as the spec writes identities).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode(s, IDENTITY_HRP, "not an AGE-SECRET-KEY-PQ-1… identity")?;
        let seed: &[u8; 32] = bytes[..]
            .try_into()
            .map_err(|_| "an AGE-SECRET-KEY-PQ-1… identity holds 32 bytes")?;
        Ok(Identity::from_seed(seed))
    }
}

impl age::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        // The spec's MUSTs: exactly one more argument, the canonical base64 of 1120
        // bytes, and a 32-byte body checked before any decryption.
        let invalid = Some(Err(age::DecryptError::InvalidHeader));
        let [arg] = &stanza.args[..] else {
            return invalid;
        };
        let Ok(enc) = BASE64_STANDARD_NO_PAD.decode(arg) else {
            return invalid;
        };
        let Ok(enc) = EncappedKey::from_bytes(&enc) else {
            return invalid;
        };
        if stanza.body.len() != SEALED_FILE_KEY {
            return invalid;
        }
        match hpke_open::<XWing>(&enc, &self.0, INFO, &stanza.body) {
            Ok(plain) => {
                let plain = Zeroizing::new(plain);
                Some(FileKey::try_init_with_mut(|key| {
                    if plain.len() != key.len() {
                        return Err(age::DecryptError::InvalidHeader);
                    }
                    key.copy_from_slice(&plain);
                    Ok(())
                }))
            }
            // A low-order X25519 share: a malformed stanza, not someone else's.
            Err(HpkeError::DecapError) => invalid,
            // Sealed to another key (ML-KEM rejects implicitly, so a stanza for someone
            // else fails here, at the AEAD).
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's examples (C2SP age.md): the identity's recipient is the recipient.
    const SPEC_IDENTITY: &str =
        "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR";

    #[test]
    fn encodings_round_trip_and_refuse_the_wrong_case_and_type() {
        let identity = Identity::from_str(SPEC_IDENTITY).unwrap();
        assert_eq!(&identity.to_secret_string()[..], SPEC_IDENTITY);
        let recipient = identity.to_public().to_string();
        assert!(recipient.starts_with("age1pq1"));
        assert_eq!(
            Recipient::from_str(&recipient).unwrap().to_string(),
            recipient
        );
        assert!(Identity::from_str(&SPEC_IDENTITY.to_lowercase()).is_err());
        assert!(Recipient::from_str(&recipient.to_uppercase()).is_err());
        assert!(Recipient::from_str(
            "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
        )
        .is_err());
        assert!(Identity::from_str(
            "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
        )
        .is_err());
    }

    #[test]
    fn a_low_order_x25519_half_is_refused() {
        let mut bytes = Identity::generate().to_public().0.to_bytes().to_vec();
        bytes[EK_M..].fill(0);
        assert!(PublicKey::from_bytes(&bytes).is_err());
    }

    #[test]
    fn a_non_canonical_ml_kem_half_is_refused() {
        let mut bytes = Identity::generate().to_public().0.to_bytes().to_vec();
        // The first coefficient (12 bits) set to 4095, which is not below q = 3329.
        bytes[0] = 0xff;
        bytes[1] |= 0x0f;
        assert!(PublicKey::from_bytes(&bytes).is_err());
    }

    fn stanza(recipient: &Recipient) -> Stanza {
        let file_key = FileKey::new(Box::new([7; 16]));
        let (mut stanzas, labels) = age::Recipient::wrap_file_key(recipient, &file_key).unwrap();
        assert_eq!(labels, HashSet::from([LABEL.to_owned()]));
        stanzas.remove(0)
    }

    #[test]
    fn stanzas_unwrap_with_their_identity_only() {
        let identity = Identity::generate();
        let s = stanza(&identity.to_public());
        assert_eq!(s.tag, STANZA_TAG);
        assert_eq!(s.args.len(), 1);
        assert_eq!(
            BASE64_STANDARD_NO_PAD.decode(&s.args[0]).unwrap().len(),
            ENC_BYTES
        );
        assert_eq!(s.body.len(), SEALED_FILE_KEY);
        let key = age::Identity::unwrap_stanza(&identity, &s)
            .unwrap()
            .unwrap();
        assert_eq!(key.expose_secret(), &[7; 16]);
        assert!(age::Identity::unwrap_stanza(&Identity::generate(), &s).is_none());
    }

    #[test]
    fn malformed_stanzas_are_header_errors() {
        let identity = Identity::generate();
        let good = stanza(&identity.to_public());
        let copy = |s: &Stanza| Stanza {
            tag: s.tag.clone(),
            args: s.args.clone(),
            body: s.body.clone(),
        };
        let header_error = |s: &Stanza| {
            matches!(
                age::Identity::unwrap_stanza(&identity, s),
                Some(Err(age::DecryptError::InvalidHeader))
            )
        };
        let mut extra = copy(&good);
        extra.args.push("x".into());
        assert!(header_error(&extra));
        let mut short_body = copy(&good);
        short_body.body.pop();
        assert!(header_error(&short_body));
        let mut short_enc = copy(&good);
        let enc = BASE64_STANDARD_NO_PAD.decode(&good.args[0]).unwrap();
        short_enc.args[0] = BASE64_STANDARD_NO_PAD.encode(&enc[..ENC_BYTES - 1]);
        assert!(header_error(&short_enc));
        let mut low_order = copy(&good);
        let mut enc = enc.clone();
        enc[CT_M..].fill(0);
        low_order.args[0] = BASE64_STANDARD_NO_PAD.encode(&enc);
        assert!(header_error(&low_order));
        let mut other = good;
        other.tag = "X25519".into();
        assert!(age::Identity::unwrap_stanza(&identity, &other).is_none());
    }
}

//! Everything that touches `age`: sealing items to the newsroom's recipients and
//! making newsroom identities. No other module names an `age` type.
//!
//! Every stored item is a standard age v1 file, so stock `age -d` can open it.

mod format;
mod payload;
mod pq;
mod seal;

pub use seal::Sealer;

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use zeroize::Zeroizing;

/// The newsroom's public keys. Every item is encrypted to all of them. Either all
/// post-quantum or all classical (SECURITY.md, "Cryptography").
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<RecipientKey>,
}

/// One recipient, of a type age defines natively.
#[derive(Clone)]
enum RecipientKey {
    /// `age1…`: X25519, classical.
    X25519(age::x25519::Recipient),
    /// `age1pq1…`: ML-KEM-768 + X25519 (src/crypto/pq.rs), post-quantum.
    Pq(pq::Recipient),
    /// `age1tag1…`: P-256 on a hardware key, classical.
    Tag(age::tag::Recipient),
    /// `age1tagpq1…`: ML-KEM-768 + P-256 on a hardware key, post-quantum.
    TagPq(age::tagpq::Recipient),
}

impl RecipientKey {
    fn parse(text: &str) -> Result<Self, String> {
        // A Bech32 separator is the last `1` and the data part never holds a `1`, so
        // the prefix names the type.
        let key = if text.starts_with("age1pq1") {
            RecipientKey::Pq(pq::Recipient::from_str(text)?)
        } else if text.starts_with("age1tagpq1") {
            RecipientKey::TagPq(age::tagpq::Recipient::from_str(text)?)
        } else if text.starts_with("age1tag1") {
            RecipientKey::Tag(age::tag::Recipient::from_str(text)?)
        } else {
            RecipientKey::X25519(age::x25519::Recipient::from_str(text).map_err(|reason| {
                if text.starts_with("age1") && text.len() > 62 {
                    "plugin recipients are not supported; use an age1… (X25519), age1pq1… (post-quantum), age1tag1… or age1tagpq1… (hardware) key".to_owned()
                } else {
                    reason.to_owned()
                }
            })?)
        };
        Ok(key)
    }

    /// Whether the type resists a quantum computer (ML-KEM-768 hybrids).
    fn is_post_quantum(&self) -> bool {
        matches!(self, RecipientKey::Pq(_) | RecipientKey::TagPq(_))
    }

    fn as_age(&self) -> &dyn age::Recipient {
        match self {
            RecipientKey::X25519(key) => key,
            RecipientKey::Pq(key) => key,
            RecipientKey::Tag(key) => key,
            RecipientKey::TagPq(key) => key,
        }
    }
}

impl fmt::Display for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipientKey::X25519(key) => key.fmt(f),
            RecipientKey::Pq(key) => key.fmt(f),
            RecipientKey::Tag(key) => key.fmt(f),
            RecipientKey::TagPq(key) => key.fmt(f),
        }
    }
}

impl fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why post-quantum and classical recipients are never mixed: a file encrypted to
/// both is only as safe as its classical stanza (age.md: "SHOULD NOT").
const MIXED: &str = "post-quantum (age1pq1…, age1tagpq1…) and classical (age1…, age1tag1…) recipients cannot be mixed: a file encrypted to both is no safer than its classical key; use only one kind";

/// Why a recipient list cannot be used.
#[derive(Debug)]
pub enum RecipientsError {
    /// The list is empty: nobody could ever read what sources send.
    Empty,
    /// One entry is not a recipient agedrop accepts, or is of the other kind
    /// (post-quantum or classical) than the first.
    Invalid {
        /// Position in the list, from 0.
        index: usize,
        /// What the parser said.
        reason: String,
    },
}

impl fmt::Display for RecipientsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipientsError::Empty => write!(f, "no recipients"),
            RecipientsError::Invalid { index, reason } => {
                write!(f, "recipient {index} is not usable: {reason}")
            }
        }
    }
}

impl std::error::Error for RecipientsError {}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.keys).finish()
    }
}

impl Recipients {
    /// Parses recipients of the types age defines natively: `age1…` (X25519),
    /// `age1pq1…` (ML-KEM-768 + X25519), `age1tag1…` and `age1tagpq1…` (hardware
    /// keys). No plugins: the server would run a plugin program for every item. A list
    /// is all post-quantum or all classical, never both.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, RecipientsError> {
        if list.is_empty() {
            return Err(RecipientsError::Empty);
        }
        let keys = list
            .iter()
            .enumerate()
            .map(|(index, text)| {
                RecipientKey::parse(text.as_ref().trim())
                    .map_err(|reason| RecipientsError::Invalid { index, reason })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_keys(keys)
    }

    /// The list, refused if it mixes post-quantum and classical keys.
    fn from_keys(keys: Vec<RecipientKey>) -> Result<Self, RecipientsError> {
        let first = keys.first().map(RecipientKey::is_post_quantum);
        if let Some(index) = keys
            .iter()
            .position(|key| Some(key.is_post_quantum()) != first)
        {
            return Err(RecipientsError::Invalid {
                index,
                reason: MIXED.to_owned(),
            });
        }
        Ok(Recipients { keys })
    }

    /// Whether these are post-quantum recipients (then all of them are).
    pub fn is_post_quantum(&self) -> bool {
        self.keys.iter().all(RecipientKey::is_post_quantum)
    }

    /// How many recipients there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a parsed list holds at least one recipient.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The recipients in `age1…` form.
    pub fn to_strings(&self) -> Vec<String> {
        self.keys.iter().map(ToString::to_string).collect()
    }

    /// Starts an age file on `output` encrypted to every recipient; the header is
    /// written at once. Large files are written a batch of chunks at a time
    /// (src/crypto/seal.rs).
    pub fn seal<W: Write>(&self, output: W) -> io::Result<Sealer<W>> {
        Sealer::new(self.keys.iter().map(RecipientKey::as_age), output, None)
    }

    /// Encrypts a small plaintext (item metadata, a reply) in memory.
    pub fn seal_bytes(&self, plaintext: &[u8]) -> io::Result<Vec<u8>> {
        seal::seal_bytes(self.keys.iter().map(RecipientKey::as_age), plaintext)
    }
}

/// A newsroom identity (X25519 or post-quantum secret key) for the offline machine. No
/// `Debug`, no `Display`; the key is wiped on drop.
pub struct NewsroomIdentity(NewsroomKey);

enum NewsroomKey {
    X25519(age::x25519::Identity),
    Pq(Box<pq::Identity>),
}

impl NewsroomIdentity {
    /// A new random X25519 identity from the OS CSPRNG.
    pub fn generate() -> Self {
        NewsroomIdentity(NewsroomKey::X25519(age::x25519::Identity::generate()))
    }

    /// A new random post-quantum (`mlkem768x25519`) identity from the OS CSPRNG.
    pub fn generate_pq() -> Self {
        NewsroomIdentity(NewsroomKey::Pq(Box::new(pq::Identity::generate())))
    }

    /// The public `age1…` (or `age1pq1…`) recipient that goes into the server's config.
    pub fn recipient(&self) -> String {
        match &self.0 {
            NewsroomKey::X25519(key) => key.to_public().to_string(),
            NewsroomKey::Pq(key) => key.to_public().to_string(),
        }
    }

    /// The identity file as stock `age` reads it: `comment_lines` (each written with a
    /// leading `# `), the public key, then the secret key.
    pub fn to_identity_file(&self, comment_lines: &[&str]) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::new());
        for line in comment_lines {
            text.push_str("# ");
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("# public key: ");
        text.push_str(&self.recipient());
        text.push('\n');
        match &self.0 {
            NewsroomKey::X25519(key) => text.push_str(key.to_string().expose_secret()),
            NewsroomKey::Pq(key) => text.push_str(&key.to_secret_string()),
        }
        text.push('\n');
        text
    }
}

/// An X25519 age identity built from 32 secret bytes.
fn identity_from_bytes(secret: &[u8; 32]) -> age::x25519::Identity {
    let hrp =
        bech32::Hrp::parse("age-secret-key-").expect("the age secret key prefix is a valid HRP");
    let encoded = Zeroizing::new(
        bech32::encode_upper::<bech32::Bech32>(hrp, secret)
            .expect("32 bytes always fit in a Bech32 string"),
    );
    age::x25519::Identity::from_str(&encoded).expect("a Bech32 age secret key parses")
}

/// Why a source key, a reply or an item could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Not an age file for these keys, truncated, or tampered with.
    Undecryptable,
    /// The plaintext is larger than the caller allows.
    TooLarge,
    /// The plaintext could not be written out.
    Write,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Undecryptable => write!(f, "cannot decrypt"),
            OpenError::TooLarge => write!(f, "plaintext too large"),
            OpenError::Write => write!(f, "cannot write the plaintext"),
        }
    }
}

impl std::error::Error for OpenError {}

fn decrypt_bounded(
    identity: &dyn age::Identity,
    ciphertext: &[u8],
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let decryptor =
        age::Decryptor::new_buffered(ciphertext).map_err(|_| OpenError::Undecryptable)?;
    let reader = decryptor
        .decrypt(std::iter::once(identity))
        .map_err(|_| OpenError::Undecryptable)?;
    let mut plain = Zeroizing::new(Vec::new());
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|_| OpenError::Undecryptable)?;
    if plain.len() > max {
        return Err(OpenError::TooLarge);
    }
    Ok(plain)
}

/// A small age file encrypted to one native recipient, in memory.
fn seal_small(recipient: &dyn age::Recipient, plaintext: &[u8]) -> Vec<u8> {
    seal::seal_bytes(std::iter::once(recipient), plaintext)
        .expect("age encryption to one native recipient into memory cannot fail")
}

/// The key a source's code derives (see [`crate::code`]): it wraps the source's own
/// identity, so a rotated code can re-wrap the same identity. No `Debug`.
pub struct CodeKey(age::x25519::Identity);

impl CodeKey {
    /// The key for 32 bytes derived from a code.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        CodeKey(identity_from_bytes(secret))
    }
}

/// A source's age identity: replies are encrypted to its recipient. The server keeps it
/// only wrapped under the source's code key, and unwrapped only in an in-memory
/// session. No `Debug`; wiped on drop (x25519-dalek zeroizes its secret, the
/// post-quantum identity its seed and keys).
pub struct SourceIdentity(SourceKey);

enum SourceKey {
    /// `age1…`; wrapped as its 32 secret bytes.
    X25519 {
        identity: age::x25519::Identity,
        secret: Zeroizing<[u8; 32]>,
    },
    /// `age1pq1…`; wrapped as its `AGE-SECRET-KEY-PQ-1…` text, whose length (77 bytes)
    /// tells it from an X25519 secret.
    Pq(Box<pq::Identity>),
}

/// The longest wrapped source key: an `AGE-SECRET-KEY-PQ-1…` line.
const MAX_WRAPPED_SOURCE_KEY: usize = 128;

impl SourceIdentity {
    /// A new random X25519 identity for a new source.
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        crate::random::fill(&mut secret[..]);
        SourceIdentity(SourceKey::X25519 {
            identity: identity_from_bytes(&secret),
            secret,
        })
    }

    /// A new random post-quantum (`age1pq1…`) identity for a new source: replies to it
    /// resist a future quantum computer. Wrapped, unwrapped and used like
    /// [`SourceIdentity::generate`]'s.
    pub fn generate_pq() -> Self {
        SourceIdentity(SourceKey::Pq(Box::new(pq::Identity::generate())))
    }

    fn identity(&self) -> &dyn age::Identity {
        match &self.0 {
            SourceKey::X25519 { identity, .. } => identity,
            SourceKey::Pq(identity) => identity.as_ref(),
        }
    }

    /// Whether this is a post-quantum identity.
    pub fn is_post_quantum(&self) -> bool {
        matches!(self.0, SourceKey::Pq(_))
    }

    /// The `age1…` (or `age1pq1…`) recipient journalists encrypt replies to.
    pub fn recipient(&self) -> String {
        match &self.0 {
            SourceKey::X25519 { identity, .. } => identity.to_public().to_string(),
            SourceKey::Pq(identity) => identity.to_public().to_string(),
        }
    }

    /// The identity encrypted to `key` (an age file), for storage.
    pub fn wrap(&self, key: &CodeKey) -> Vec<u8> {
        let to = key.0.to_public();
        match &self.0 {
            SourceKey::X25519 { secret, .. } => seal_small(&to, &secret[..]),
            SourceKey::Pq(identity) => seal_small(&to, identity.to_secret_string().as_bytes()),
        }
    }

    /// Opens a wrapped identity with the code key that wrapped it.
    pub fn unwrap(key: &CodeKey, wrapped: &[u8]) -> Result<Self, OpenError> {
        let plain = decrypt_bounded(&key.0, wrapped, MAX_WRAPPED_SOURCE_KEY)?;
        if let Ok(secret) = <[u8; 32]>::try_from(&plain[..]) {
            let secret = Zeroizing::new(secret);
            return Ok(SourceIdentity(SourceKey::X25519 {
                identity: identity_from_bytes(&secret),
                secret,
            }));
        }
        let text = std::str::from_utf8(&plain).map_err(|_| OpenError::Undecryptable)?;
        let identity = pq::Identity::from_str(text).map_err(|_| OpenError::Undecryptable)?;
        Ok(SourceIdentity(SourceKey::Pq(Box::new(identity))))
    }

    /// Encrypts a short secret to this identity's own recipient: a pending new code,
    /// which only the source (holding either code) can read back.
    pub fn seal_to_self(&self, plaintext: &[u8]) -> Vec<u8> {
        match &self.0 {
            SourceKey::X25519 { identity, .. } => seal_small(&identity.to_public(), plaintext),
            SourceKey::Pq(identity) => seal_small(&identity.to_public(), plaintext),
        }
    }

    /// Opens what [`SourceIdentity::seal_to_self`] sealed, up to `max` bytes.
    pub fn open_sealed(
        &self,
        ciphertext: &[u8],
        max: usize,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        decrypt_bounded(self.identity(), ciphertext, max)
    }

    /// Decrypts a reply addressed to this source, refusing plaintexts over `max` bytes.
    pub fn open_reply(
        &self,
        ciphertext: &[u8],
        max: usize,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        decrypt_bounded(self.identity(), ciphertext, max)
    }
}

/// Identities for the offline machine: plain age identity files, passphrase-protected
/// ones (the passphrase is asked on the terminal, or through pinentry), several at
/// once. No `Debug`.
pub struct Identities(Vec<Box<dyn age::Identity>>);

impl Identities {
    /// Reads identity files the way stock `age -i` does, and `AGE-SECRET-KEY-PQ-1…`
    /// lines too, which age 0.12's reader does not know: a plain file holding one is
    /// read here (its other lines by age's parser); every other file (passphrase-
    /// protected ones included) by age's reader.
    pub fn read(files: &[std::path::PathBuf]) -> Result<Self, IdentityFileError> {
        let mut identities: Vec<Box<dyn age::Identity>> = Vec::new();
        let mut for_age = Vec::new();
        for file in files {
            match read_post_quantum_file(file)? {
                Some(found) => identities.extend(found),
                None => for_age.push(file.display().to_string()),
            }
        }
        if !for_age.is_empty() || identities.is_empty() {
            let mut guard = age::cli_common::StdinGuard::new(false);
            let found = age::cli_common::read_identities(for_age, None, &mut guard)
                .map_err(|e| IdentityFileError::Age(e.to_string()))?;
            identities.extend(found);
        }
        Ok(Identities(identities))
    }

    /// As [`Identities::decrypt`], but opens the payload on two threads
    /// (src/crypto/payload.rs says how and what it checks): for large items.
    pub fn decrypt_on_two_cores(
        &self,
        input: impl Read,
        output: &mut (impl Write + Send),
        max: u64,
    ) -> Result<u64, OpenError> {
        payload::decrypt(&self.0, input, output, max)
    }

    /// Reads the age file in `input` through to its end, as [`Identities::decrypt`]
    /// does, and says why it does not open (`None`: it opens); the plaintext is
    /// discarded. For telling a malformed file from one meant for other keys.
    pub fn refusal(&self, input: impl Read) -> Option<Refusal> {
        let Ok(decryptor) = age::Decryptor::new(input) else {
            return Some(Refusal::Header);
        };
        let mut reader =
            match decryptor.decrypt(self.0.iter().map(|i| i.as_ref() as &dyn age::Identity)) {
                Ok(reader) => reader,
                Err(age::DecryptError::NoMatchingKeys) => return Some(Refusal::NoMatch),
                Err(age::DecryptError::InvalidMac) => return Some(Refusal::HeaderMac),
                Err(_) => return Some(Refusal::Header),
            };
        match io::copy(&mut reader, &mut io::sink()) {
            Ok(_) => None,
            Err(_) => Some(Refusal::Payload),
        }
    }

    /// Decrypts an age file from `input` to `output`, streaming; stops with
    /// [`OpenError::TooLarge`] past `max` plaintext bytes. What was written before an
    /// error must be discarded by the caller: it is not authenticated as a whole.
    pub fn decrypt(
        &self,
        input: impl Read,
        output: &mut impl Write,
        max: u64,
    ) -> Result<u64, OpenError> {
        let decryptor = age::Decryptor::new(input).map_err(|_| OpenError::Undecryptable)?;
        let mut reader = decryptor
            .decrypt(self.0.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|_| OpenError::Undecryptable)?;
        let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
        let mut total = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|_| OpenError::Undecryptable)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            if total > max {
                return Err(OpenError::TooLarge);
            }
            output.write_all(&buf[..n]).map_err(|_| OpenError::Write)?;
        }
    }
}

/// The identities of a plain identity file that holds an `AGE-SECRET-KEY-PQ-1…` line;
/// `None` for any other file (age's reader reports what is wrong with it).
fn read_post_quantum_file(
    file: &std::path::Path,
) -> Result<Option<Vec<Box<dyn age::Identity>>>, IdentityFileError> {
    let Ok(bytes) = std::fs::read(file).map(Zeroizing::new) else {
        return Ok(None);
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(None);
    };
    if !text.lines().any(is_post_quantum_identity) {
        return Ok(None);
    }
    let mut identities: Vec<Box<dyn age::Identity>> = Vec::new();
    let mut rest = Zeroizing::new(String::new());
    for line in text.lines() {
        if is_post_quantum_identity(line) {
            let identity = pq::Identity::from_str(line.trim())
                .map_err(|why| IdentityFileError::Invalid(file.to_owned(), why.to_owned()))?;
            identities.push(Box::new(identity));
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    let others = age::IdentityFile::from_buffer(rest.as_bytes())
        .map_err(|e| IdentityFileError::Invalid(file.to_owned(), e.to_string()))?
        .into_identities()
        .map_err(|e| IdentityFileError::Invalid(file.to_owned(), e.to_string()))?;
    identities.extend(
        others
            .into_iter()
            .map(|identity| identity as Box<dyn age::Identity>),
    );
    Ok(Some(identities))
}

fn is_post_quantum_identity(line: &str) -> bool {
    line.trim_start().starts_with("AGE-SECRET-KEY-PQ-1")
}

/// Why an age file did not open, in the categories of the C2SP age test vectors
/// (their `expect` lines): see [`Identities::refusal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The header is malformed, or a stanza addressed to one of the identities is.
    Header,
    /// The header is well formed but no identity unwraps the file key.
    NoMatch,
    /// A file key was unwrapped but the header's MAC does not match.
    HeaderMac,
    /// The payload does not decrypt all the way to its end.
    Payload,
}

/// Why identity files cannot be used.
#[derive(Debug)]
pub enum IdentityFileError {
    /// age could not read them (its own words: a missing file, a bad key, a wrong
    /// passphrase).
    Age(String),
    /// The file cannot be read.
    Unreadable(std::path::PathBuf, io::Error),
    /// The file is passphrase-protected, so its recipients cannot be read without it.
    PassphraseProtected(std::path::PathBuf),
    /// A line looks like an identity but is not one.
    Invalid(std::path::PathBuf, String),
    /// No X25519 or post-quantum identity in any of the files.
    NoX25519,
    /// The files hold both post-quantum and classical identities, whose recipients
    /// cannot be used together.
    Mixed(RecipientsError),
}

impl fmt::Display for IdentityFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityFileError::Age(why) => f.write_str(why),
            IdentityFileError::Unreadable(file, err) => {
                write!(f, "cannot read {}: {err}", file.display())
            }
            IdentityFileError::PassphraseProtected(file) => write!(
                f,
                "{} is passphrase-protected: give the newsroom's recipients with --recipient instead",
                file.display()
            ),
            IdentityFileError::Invalid(file, why) => write!(f, "{}: {why}", file.display()),
            IdentityFileError::NoX25519 => f.write_str(
                "no X25519 or post-quantum identity found: give the newsroom's recipients with --recipient",
            ),
            IdentityFileError::Mixed(err) => write!(f, "the identities' recipients: {err}"),
        }
    }
}

impl std::error::Error for IdentityFileError {}

/// The X25519 or post-quantum recipients of plain (unencrypted) identity files: the
/// newsroom's own keys, which every reply is also encrypted to.
pub fn recipients_of_identity_files(
    files: &[std::path::PathBuf],
) -> Result<Recipients, IdentityFileError> {
    let mut keys = Vec::new();
    for file in files {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .map_err(|e| IdentityFileError::Unreadable(file.clone(), e))?,
        );
        if text.starts_with("age-encryption.org/")
            || text.starts_with("-----BEGIN AGE ENCRYPTED FILE")
        {
            return Err(IdentityFileError::PassphraseProtected(file.clone()));
        }
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        {
            let invalid = |why: &str| IdentityFileError::Invalid(file.clone(), why.to_owned());
            let key = if is_post_quantum_identity(line) {
                RecipientKey::Pq(pq::Identity::from_str(line).map_err(invalid)?.to_public())
            } else {
                RecipientKey::X25519(
                    age::x25519::Identity::from_str(line)
                        .map_err(invalid)?
                        .to_public(),
                )
            };
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(IdentityFileError::NoX25519);
    }
    Recipients::from_keys(keys).map_err(IdentityFileError::Mixed)
}

/// Encrypts `plaintext` with a passphrase (age's scrypt recipient), ASCII-armored: how
/// a passphrase-protected identity file is stored. Stock `age -d` opens it.
pub fn seal_with_passphrase(
    plaintext: &[u8],
    passphrase: age::secrecy::SecretString,
) -> io::Result<Vec<u8>> {
    let encryptor = age::Encryptor::with_user_passphrase(passphrase);
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)?;
    let mut writer = encryptor.wrap_output(armor)?;
    writer.write_all(plaintext)?;
    writer.finish()?.finish()?;
    Ok(out)
}

/// Checks that `bytes` begin like an age v1 file (the header's first line), so clearly
/// foreign data is refused before it is stored.
pub fn looks_like_age(bytes: &[u8]) -> bool {
    age::Decryptor::new_buffered(bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_with_the_identity() {
        let identity = NewsroomIdentity::generate();
        let recipients = Recipients::parse(&[identity.recipient()]).unwrap();
        let sealed = recipients.seal_bytes(b"hello").unwrap();
        let key = age::x25519::Identity::from_str(
            identity
                .to_identity_file(&[])
                .lines()
                .last()
                .expect("secret key line"),
        )
        .unwrap();
        let plain = age::decrypt(&key, &sealed).unwrap();
        assert_eq!(plain, b"hello");
    }

    #[test]
    fn wrapped_source_identity_opens_only_with_its_code_key() {
        let source = SourceIdentity::generate();
        let key = CodeKey::from_bytes(&[1; 32]);
        let wrapped = source.wrap(&key);
        let back = SourceIdentity::unwrap(&key, &wrapped).expect("unwraps");
        assert_eq!(back.recipient(), source.recipient());
        assert!(SourceIdentity::unwrap(&CodeKey::from_bytes(&[2; 32]), &wrapped).is_err());

        let reply_to = Recipients::parse(&[source.recipient()]).unwrap();
        let sealed = reply_to.seal_bytes(b"a reply").unwrap();
        assert_eq!(&back.open_reply(&sealed, 100).unwrap()[..], b"a reply");
        assert!(matches!(
            back.open_reply(&sealed, 3),
            Err(OpenError::TooLarge)
        ));
        assert!(looks_like_age(&sealed));
        assert!(!looks_like_age(b"not age"));
    }

    #[test]
    fn post_quantum_source_identities_wrap_unwrap_and_open_replies() {
        let source = SourceIdentity::generate_pq();
        assert!(source.is_post_quantum());
        assert!(source.recipient().starts_with("age1pq1"));
        let key = CodeKey::from_bytes(&[3; 32]);
        let wrapped = source.wrap(&key);
        let back = SourceIdentity::unwrap(&key, &wrapped).expect("unwraps");
        assert!(back.is_post_quantum());
        assert_eq!(back.recipient(), source.recipient());
        assert!(SourceIdentity::unwrap(&CodeKey::from_bytes(&[4; 32]), &wrapped).is_err());
        // An X25519 source key still unwraps as one.
        let classic = SourceIdentity::generate();
        let back_classic = SourceIdentity::unwrap(&key, &classic.wrap(&key)).unwrap();
        assert!(!back_classic.is_post_quantum());
        assert_eq!(back_classic.recipient(), classic.recipient());

        let reply_to = Recipients::parse(&[source.recipient()]).unwrap();
        assert!(reply_to.is_post_quantum());
        let sealed = reply_to.seal_bytes(b"a reply").unwrap();
        assert!(contains(&sealed, b"\n-> mlkem768x25519 "));
        assert_eq!(&back.open_reply(&sealed, 100).unwrap()[..], b"a reply");
        assert!(matches!(
            back.open_reply(&sealed, 3),
            Err(OpenError::TooLarge)
        ));
        assert!(classic.open_reply(&sealed, 100).is_err());
        let pending = back.seal_to_self(b"new code");
        assert_eq!(&source.open_sealed(&pending, 8).unwrap()[..], b"new code");
        assert!(classic.open_sealed(&pending, 8).is_err());
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// age.md's example hardware recipients.
    const TAG: &str = "age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e";

    #[test]
    fn each_native_type_parses_and_kinds_never_mix() {
        let pq = NewsroomIdentity::generate_pq().recipient();
        let classic = NewsroomIdentity::generate().recipient();
        // age.md's example; tests/pq.rs parses ones age-encryption encrypts to.
        let tagpq = TAGPQ.to_owned();
        let all_pq = Recipients::parse(&[&pq, &tagpq]).unwrap();
        assert!(all_pq.is_post_quantum());
        assert_eq!(all_pq.to_strings(), vec![pq.clone(), tagpq.clone()]);
        let all_classic = Recipients::parse(&[&classic, TAG]).unwrap();
        assert!(!all_classic.is_post_quantum());
        for (list, index) in [
            (vec![&pq, &classic], 1),
            (vec![&classic, &pq], 1),
            (vec![&tagpq, &TAG.to_owned()], 1),
            (vec![&classic, &classic, &tagpq], 2),
        ] {
            match Recipients::parse(&list) {
                Err(RecipientsError::Invalid { index: i, reason }) => {
                    assert_eq!(i, index);
                    assert_eq!(reason, MIXED);
                }
                other => panic!("mixed list accepted: {:?}", other.map(|r| r.len())),
            }
        }
        let sealed = all_pq.seal_bytes(b"x").unwrap();
        assert!(contains(&sealed, b"\n-> mlkem768x25519 "));
        assert!(contains(&sealed, b"\n-> mlkem768p256tag "));
        let sealed = all_classic.seal_bytes(b"x").unwrap();
        assert!(contains(&sealed, b"\n-> X25519 "));
        assert!(contains(&sealed, b"\n-> p256tag "));
    }

    const TAGPQ: &str = "age1tagpq1m3e4wvp6hzcrn9exhy0ae3xfx2sjymp594k3tg7j4dpmj922we65vtnmrt2pyallax8669zqkr2pmfchptr4n38kug2xmcmp3adk2lnjqu00x5kxz5pvhmrltvfh9wuq973pcx35cnq8syn9qd3tzpehgztl4xpzr3tpd67g8af9trnjpc05gh7wu536aq4qt2y8zhsm4tvrfpsfl36qs5fpzysnk3sp9w77qzeg49357xex40v4s2lvt620swyys7u8yxdcnu4rkkwxdmt55gsuc3h5c5swahnegjgqwc60hn085ec3sjztwm45l44y3j2at9t6v9zra4ek3kek6waecqm98yaxl37w0d2zra626nz63jdm5sg59w7lyptw83zm6fntd8d0x03a9z6h9prfgpygzar6zrxjcrt4cdctk2mhf95s4a6v4zklfd49xhpsaeujm57thx2x3e3hwzc86ftfhmq5mkxxz3d6r8ws24xj4qfn73eyezg2wy094e3why592pghz27ruq3vkyegrv80eftnw9wqzwgvnwyseaus0yt84fylzrpzp6x2fguxuqjmgudr8xd33qm30evdpxd3jvjg8qh4q60kyq80jgff369k7nrepdc38grd2dava520excqp0ey0x39khx8ry03yffcatgv84fsx5j49djpapedsy693zute5xv5g2ewzrlj5se7akvkc4g4vmzhputpq8eyj9wz5dz6qtn7g3cfpd95nahw4ytspan0feyye04dcylv24ege7zkaj004gjwcxqxfqu2quawa83sx452jqjn8t48czp0xspwgnmvjyhttzzy6nhq8xzkdwnvsfefkwva6asrqc93zjn4rly5gnlv93xy3uzmr39szvjnf63426qzyeyvguc4vdcquwgsxgq236afcpqz866ny4tn7ckc0umefj242rt5vtvwqzzrvfev2mpvqcufp9pqvefyv4ftyuhgausfzuaadsczeykmft5wv3frzgrcp9ztr93h478ke4t86spp2uhyjkj73mp9g92ddk2fpv7v3njzsqgwhq3789sqrgkskehn0zjscckhwftyq4vet7vrlx2hs5kd9cwnq6t0djffhh3zquh4j3p0yaj9z2rc9wykg0usqw7983rrgur9jg8rnnqypwcz2lyclnnc705fc5g3an93ps60q6mxqp85u0ewtxdjlqcks84yduft0a0g6e7naew3v9u2d08knarvajn8q3gq9pgxde3s7nx94lus48wwvw2xjm7k82tvylec2393jdsuvch2xpe77w8hpv9nvsxfsrs270njpmfvpmgyk2cffl9tjp3qqcc4dfkf5rme2dg0x7ew8g39www5smm705q5da4eqvnqwrkavtq6xje9ss38hnkglz4eddz8f5qruvqmq2ff9l22gwkv8h432rdkysy0grkul8e2fedvkyyapfxt760udcgu92m54wl9yavmj4ga3ph9r5n99cjrq6wj5v33x33fe5vkjvfwnnt40wuv2hyexc9f4ylyqv9ldqq9epd4yuv8vrsfx2qy2kqz08kqhnzspy6s0x8fa5c2xkg5y2q0rvz4vnk7rp0acg6eksc3t7cxnn8y7glkjsqja3p56uz6vvhcw55d3ysad0hvsqxpjnc7svenf2gc5xn5kyr0et2vvyruxlnpqcdpqh9pzplumy5yzjxftyzh9ujfw0jq7ee60zx2x23p0jzyh9dvmly8p9h9ysptlqu7kwnejd65dnr75a0np2fvke8xen38r57w6z3wz3mycjmmn267wwxndfh9jdps7uxtct2wwfgamkpa5ap8s96lhfjztpwcm6fguhphu38yunu2v4vz3syzrvgwtqpemkewzp766nyu6texxvjlaemnhyyqutkcy6a42vqfsz49rw5wr4gt70r4vdaasehqjg46fnyts4sthrxadfllha3avu49wsj2c4jx";

    #[test]
    fn rejects_bad_and_empty_lists() {
        assert!(matches!(
            Recipients::parse::<&str>(&[]),
            Err(RecipientsError::Empty)
        ));
        assert!(matches!(
            Recipients::parse(&["age1xyz"]),
            Err(RecipientsError::Invalid { index: 0, .. })
        ));
        assert!(matches!(
            Recipients::parse(&["AGE-SECRET-KEY-1QQQ"]),
            Err(RecipientsError::Invalid { .. })
        ));
    }
}

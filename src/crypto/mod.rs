//! Everything that touches `age`: sealing items to the newsroom's recipients and
//! making newsroom identities. No other module names an `age` type.
//!
//! Every stored item is a standard age v1 file, so stock `age -d` can open it.

mod payload;

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use zeroize::Zeroizing;

/// The newsroom's public keys. Every item is encrypted to all of them.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<age::x25519::Recipient>,
}

/// Why a recipient list cannot be used.
#[derive(Debug)]
pub enum RecipientsError {
    /// The list is empty: nobody could ever read what sources send.
    Empty,
    /// One entry is not an `age1…` X25519 recipient.
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
                write!(f, "recipient {index} is not an age1… key: {reason}")
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
    /// Parses `age1…` strings. Only native X25519 recipients are accepted: they are
    /// what stock `age` and every plugin-less offline machine can decrypt.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, RecipientsError> {
        if list.is_empty() {
            return Err(RecipientsError::Empty);
        }
        let keys = list
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let text = text.as_ref().trim();
                age::x25519::Recipient::from_str(text).map_err(|reason| {
                    let reason = if text.starts_with("age1") && text.len() > 62 {
                        "plugin and post-quantum recipients are not supported yet; use an X25519 age1… key".to_owned()
                    } else {
                        reason.to_owned()
                    };
                    RecipientsError::Invalid { index, reason }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Recipients { keys })
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
    /// written at once.
    pub fn seal<W: Write>(&self, output: W) -> io::Result<Sealer<W>> {
        let encryptor =
            age::Encryptor::with_recipients(self.keys.iter().map(|k| k as &dyn age::Recipient))
                .map_err(|err| io::Error::other(format!("age: {err}")))?;
        Ok(Sealer(encryptor.wrap_output(output)?))
    }

    /// Encrypts a small plaintext (item metadata) in memory.
    pub fn seal_bytes(&self, plaintext: &[u8]) -> io::Result<Vec<u8>> {
        let mut sealer = self.seal(Vec::with_capacity(plaintext.len() + 512))?;
        sealer.write_all(plaintext)?;
        sealer.finish()
    }
}

/// An age file being written. Plaintext goes in through [`Write`]; ciphertext goes to
/// the wrapped writer in 64 KiB chunks.
///
/// You **MUST** call [`Sealer::finish`]: without it the file is truncated and will not
/// decrypt (which is what we want for an aborted upload, and nothing else).
pub struct Sealer<W: Write>(age::stream::StreamWriter<W>);

impl<W: Write> Sealer<W> {
    /// Writes the last chunk and returns the inner writer (not yet flushed to disk).
    pub fn finish(self) -> io::Result<W> {
        self.0.finish()
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A newsroom identity (X25519 secret key) for the offline machine. No `Debug`, no
/// `Display`; the key is wiped on drop by `age`.
pub struct NewsroomIdentity(age::x25519::Identity);

impl NewsroomIdentity {
    /// A new random identity from the OS CSPRNG.
    pub fn generate() -> Self {
        NewsroomIdentity(age::x25519::Identity::generate())
    }

    /// The public `age1…` recipient that goes into the server's config.
    pub fn recipient(&self) -> String {
        self.0.to_public().to_string()
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
        text.push_str(self.0.to_string().expose_secret());
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
    identity: &age::x25519::Identity,
    ciphertext: &[u8],
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let decryptor =
        age::Decryptor::new_buffered(ciphertext).map_err(|_| OpenError::Undecryptable)?;
    let reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
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

/// A small age file encrypted to one X25519 recipient, in memory.
fn seal_small(recipient: &age::x25519::Recipient, plaintext: &[u8]) -> Vec<u8> {
    const INVARIANT: &str = "age encryption to one X25519 recipient into memory cannot fail";
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .expect(INVARIANT);
    let mut out = Vec::with_capacity(256);
    let mut writer = encryptor.wrap_output(&mut out).expect(INVARIANT);
    writer.write_all(plaintext).expect(INVARIANT);
    writer.finish().expect(INVARIANT);
    out
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
/// session. No `Debug`; wiped on drop (x25519-dalek zeroizes its secret).
pub struct SourceIdentity {
    identity: age::x25519::Identity,
    secret: Zeroizing<[u8; 32]>,
}

impl SourceIdentity {
    /// A new random identity for a new source.
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        crate::random::fill(&mut secret[..]);
        SourceIdentity {
            identity: identity_from_bytes(&secret),
            secret,
        }
    }

    /// The `age1…` recipient journalists encrypt replies to.
    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    /// The identity encrypted to `key` (an age file), for storage.
    pub fn wrap(&self, key: &CodeKey) -> Vec<u8> {
        seal_small(&key.0.to_public(), &self.secret[..])
    }

    /// Opens a wrapped identity with the code key that wrapped it.
    pub fn unwrap(key: &CodeKey, wrapped: &[u8]) -> Result<Self, OpenError> {
        let plain = decrypt_bounded(&key.0, wrapped, 32)?;
        let secret: [u8; 32] = plain[..].try_into().map_err(|_| OpenError::Undecryptable)?;
        let secret = Zeroizing::new(secret);
        Ok(SourceIdentity {
            identity: identity_from_bytes(&secret),
            secret,
        })
    }

    /// Encrypts a short secret to this identity's own recipient: a pending new code,
    /// which only the source (holding either code) can read back.
    pub fn seal_to_self(&self, plaintext: &[u8]) -> Vec<u8> {
        seal_small(&self.identity.to_public(), plaintext)
    }

    /// Opens what [`SourceIdentity::seal_to_self`] sealed, up to `max` bytes.
    pub fn open_sealed(
        &self,
        ciphertext: &[u8],
        max: usize,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        decrypt_bounded(&self.identity, ciphertext, max)
    }

    /// Decrypts a reply addressed to this source, refusing plaintexts over `max` bytes.
    pub fn open_reply(
        &self,
        ciphertext: &[u8],
        max: usize,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        decrypt_bounded(&self.identity, ciphertext, max)
    }
}

/// Identities for the offline machine: plain age identity files, passphrase-protected
/// ones (the passphrase is asked on the terminal, or through pinentry), several at
/// once. No `Debug`.
pub struct Identities(Vec<Box<dyn age::Identity>>);

impl Identities {
    /// Reads identity files the way stock `age -i` does.
    pub fn read(files: &[std::path::PathBuf]) -> Result<Self, IdentityFileError> {
        let names = files.iter().map(|p| p.display().to_string()).collect();
        let mut guard = age::cli_common::StdinGuard::new(false);
        age::cli_common::read_identities(names, None, &mut guard)
            .map(Identities)
            .map_err(|e| IdentityFileError::Age(e.to_string()))
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
    /// No X25519 identity in any of the files.
    NoX25519,
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
                "no X25519 identity found: give the newsroom's recipients with --recipient",
            ),
        }
    }
}

impl std::error::Error for IdentityFileError {}

/// The X25519 recipients of plain (unencrypted) identity files: the newsroom's own
/// keys, which every reply is also encrypted to.
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
            let identity = age::x25519::Identity::from_str(line)
                .map_err(|e| IdentityFileError::Invalid(file.clone(), e.to_string()))?;
            keys.push(identity.to_public());
        }
    }
    if keys.is_empty() {
        return Err(IdentityFileError::NoX25519);
    }
    Ok(Recipients { keys })
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

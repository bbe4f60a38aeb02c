//! Source codes: 8 words from the EFF large wordlist, drawn from the OS CSPRNG.
//!
//! A code is shown to the source once and never stored or logged; see SECURITY.md,
//! "Source codes". The four hyphenated words of the EFF list (drop-down, felt-tip,
//! t-shirt, yo-yo) are left out so that hyphens can separate words on input without
//! ambiguity: 7,772 words, 8 × log2(7772) ≈ 103.4 bits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::Sha256;
use tokio::sync::Semaphore;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::CodeKey;
use crate::random;

/// Words in a code.
pub const CODE_WORDS: usize = 8;

const WORDLIST: &str = include_str!("code/eff_large_wordlist.txt");

/// The wordlist, sorted (the file is in dice order, which is alphabetical).
fn words() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let words: Vec<&'static str> = WORDLIST
            .lines()
            .map(|line| line.split('\t').nth(1).unwrap_or(line))
            .collect();
        debug_assert!(words.windows(2).all(|w| w[0] < w[1]));
        words
    })
}

/// How many words the list has.
pub fn wordlist_len() -> usize {
    words().len()
}

/// A source's code in canonical form (lowercase words, single spaces). No `Debug` or
/// `Display`: it must never reach a log. Wiped on drop.
pub struct SourceCode(Zeroizing<String>);

impl SourceCode {
    /// A new code of [`CODE_WORDS`] words, each drawn uniformly from the list.
    pub fn generate() -> Self {
        let list = words();
        let mut code = Zeroizing::new(String::with_capacity(CODE_WORDS * 10));
        for i in 0..CODE_WORDS {
            if i > 0 {
                code.push(' ');
            }
            code.push_str(list[random::below(list.len())]);
        }
        SourceCode(code)
    }

    /// Reads a code as a source typed it: case, spaces, hyphens and dots between
    /// words do not matter. `None` unless it is exactly [`CODE_WORDS`] list words.
    pub fn normalise(input: &str) -> Option<Self> {
        let list = words();
        let mut code = Zeroizing::new(String::with_capacity(CODE_WORDS * 10));
        let mut count = 0;
        let lowered = Zeroizing::new(input.to_lowercase());
        for word in lowered
            .split(|c: char| c.is_whitespace() || c == '-' || c == '.' || c == ',')
            .filter(|w| !w.is_empty())
        {
            count += 1;
            if count > CODE_WORDS || list.binary_search(&word).is_err() {
                return None;
            }
            if count > 1 {
                code.push(' ');
            }
            code.push_str(word);
        }
        (count == CODE_WORDS).then_some(SourceCode(code))
    }

    /// The code's text, to be shown to its source once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Argon2id cost parameters. Recorded with each source (as [`KdfParams::id`]) so a
/// later change of the defaults can still open old sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub passes: u32,
    /// Parallel lanes.
    pub lanes: u32,
}

impl KdfParams {
    /// How the parameters are recorded: `argon2id-v19-m65536-t3-p1`.
    pub fn id(&self) -> String {
        format!(
            "argon2id-v19-m{}-t{}-p{}",
            self.memory_kib, self.passes, self.lanes
        )
    }

    /// Reads a recorded [`KdfParams::id`].
    pub fn parse(id: &str) -> Option<Self> {
        let rest = id.strip_prefix("argon2id-v19-m")?;
        let (m, rest) = rest.split_once("-t")?;
        let (t, p) = rest.split_once("-p")?;
        Some(KdfParams {
            memory_kib: m.parse().ok()?,
            passes: t.parse().ok()?,
            lanes: p.parse().ok()?,
        })
    }

    /// Checks that Argon2 accepts these parameters; the error says why not.
    pub fn validate(&self) -> Result<(), argon2::Error> {
        Params::new(self.memory_kib, self.passes, self.lanes, Some(32)).map(|_| ())
    }
}

/// What a code derives: the id the database looks the source up by, and the key that
/// unwraps the source's identity. No `Debug`.
pub struct SourceKeys {
    /// Stored in the database; reveals nothing about the code without the instance
    /// secret and an Argon2 run per guess.
    pub lookup_id: [u8; 32],
    /// Unwraps the source's stored identity.
    pub code_key: CodeKey,
}

/// `Argon2id(code, salt = instance secret)`, then HKDF-SHA256 with one label per use.
/// Slow on purpose (about a quarter second at the defaults); call it off the runtime.
pub fn derive_keys(
    code: &SourceCode,
    instance_secret: &[u8; 32],
    params: &KdfParams,
) -> SourceKeys {
    derive_keys_in(code, instance_secret, params, &mut Vec::new())
}

/// [`derive_keys`] in the given Argon2 working memory, grown as needed and wiped
/// before this returns (argon2 itself leaves it as it is).
fn derive_keys_in(
    code: &SourceCode,
    instance_secret: &[u8; 32],
    params: &KdfParams,
    memory: &mut Vec<Block>,
) -> SourceKeys {
    let argon_params = Params::new(params.memory_kib, params.passes, params.lanes, Some(32))
        .expect("parameters are validated when the config is loaded");
    let blocks = argon_params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut master = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into_with_memory(
            code.expose().as_bytes(),
            instance_secret,
            &mut master[..],
            &mut memory[..],
        )
        .expect("a 32-byte salt and output are within Argon2's limits");
    // Only what this run used: the rest was wiped by the run that last used it.
    memory[..blocks].iter_mut().for_each(Zeroize::zeroize);
    let hkdf = hkdf::Hkdf::<Sha256>::new(None, &master[..]);
    let mut lookup_id = [0u8; 32];
    hkdf.expand(b"agedrop v1 source lookup id", &mut lookup_id)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf.expand(b"agedrop v1 source code key", &mut key[..])
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SourceKeys {
        lookup_id,
        code_key: CodeKey::from_bytes(&key),
    }
}

/// Runs derivations off the async runtime, at most `limit` at once, so a login flood
/// cannot exhaust memory (each run holds `memory_kib`).
///
/// The working memory is kept between derivations (at most `limit` buffers) and let go
/// after a quiet spell ([`Deriver::release_idle_memory`]). Allocating it afresh for
/// each run let the C allocator keep every freed buffer of less than 32 MiB in a
/// per-thread arena: a flood of first submissions grew the server past 1 GiB
/// (docs/RELIABILITY.md).
pub struct Deriver {
    running: Arc<Semaphore>,
    /// Logins allowed to run or wait; past it a login is refused at once.
    admitted: Arc<Semaphore>,
    secret: Arc<Zeroizing<[u8; 32]>>,
    in_flight: Arc<AtomicUsize>,
    /// Derivations waiting for a free slot (a count for metrics).
    waiting: Arc<AtomicUsize>,
    /// Wiped Argon2 working memory, ready for the next run.
    spare: Arc<Mutex<Vec<Vec<Block>>>>,
    /// When the last derivation ended.
    last_used: Arc<Mutex<Instant>>,
}

/// Too many derivations are running and waiting: try later.
#[derive(Debug)]
pub struct Busy;

impl Deriver {
    /// A deriver keyed by the instance secret.
    pub fn new(instance_secret: &[u8; 32], limit: usize, queue: usize) -> Self {
        Deriver {
            running: Arc::new(Semaphore::new(limit)),
            admitted: Arc::new(Semaphore::new(limit + queue)),
            secret: Arc::new(Zeroizing::new(*instance_secret)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            waiting: Arc::new(AtomicUsize::new(0)),
            spare: Arc::new(Mutex::new(Vec::new())),
            last_used: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Derivations running and derivations waiting for a slot, right now.
    pub fn load(&self) -> (usize, usize) {
        (
            self.in_flight.load(Ordering::SeqCst),
            self.waiting.load(Ordering::SeqCst),
        )
    }

    /// Frees the kept working memory if no derivation ran for `idle`.
    pub fn release_idle_memory(&self, idle: Duration) {
        let quiet = lock(&self.last_used).elapsed() >= idle;
        if quiet && self.in_flight.load(Ordering::SeqCst) == 0 {
            lock(&self.spare).clear();
        }
    }

    /// For a login: refused with [`Busy`] when `limit` run and `queue` wait already.
    pub async fn derive_for_login(
        &self,
        code: Arc<SourceCode>,
        params: KdfParams,
    ) -> Result<SourceKeys, Busy> {
        let _admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        Ok(self.derive(code, params).await)
    }

    /// For a new source whose upload is already stored in tmp/: waits for its turn,
    /// never refuses (uploads are capped separately), so no submission is lost.
    pub async fn derive(&self, code: Arc<SourceCode>, params: KdfParams) -> SourceKeys {
        let waiting = Waiting::start(&self.waiting);
        let permit = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .expect("the derivation semaphore is never closed");
        drop(waiting);
        let secret = Arc::clone(&self.secret);
        let in_flight = Arc::clone(&self.in_flight);
        let spare = Arc::clone(&self.spare);
        let last_used = Arc::clone(&self.last_used);
        tokio::task::spawn_blocking(move || {
            // A count, never anything about the code: lets tests and admins see the cap
            // hold (debug level, like every event a source causes).
            let running = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            tracing::debug!(running, "argon2 derivation started");
            let mut memory = lock(&spare).pop().unwrap_or_default();
            let keys = derive_keys_in(&code, &secret, &params, &mut memory);
            lock(&spare).push(memory);
            *lock(&last_used) = Instant::now();
            in_flight.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            keys
        })
        .await
        .expect("key derivation does not panic")
    }
}

/// One derivation counted as waiting until dropped, also when its login is given up
/// while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_the_eff_large_list_without_hyphenated_words() {
        assert_eq!(wordlist_len(), 7772);
        // normalise() binary-searches the list.
        assert!(words().windows(2).all(|w| w[0] < w[1]), "sorted");
        assert_eq!(words()[0], "abacus");
        assert_eq!(words()[words().len() - 1], "zoom");
        assert!(words()
            .iter()
            .all(|w| w.bytes().all(|b| b.is_ascii_lowercase())));
    }

    #[test]
    fn generated_codes_normalise_to_themselves() {
        for _ in 0..100 {
            let code = SourceCode::generate();
            assert_eq!(code.expose().split(' ').count(), CODE_WORDS);
            let messy = format!("  {}. ", code.expose().to_uppercase().replace(' ', " -\t"));
            let back = SourceCode::normalise(&messy).expect("normalises");
            assert_eq!(back.expose(), code.expose());
        }
    }

    #[test]
    fn derivation_is_deterministic_and_keyed_by_the_instance_secret() {
        let params = KdfParams {
            memory_kib: 8,
            passes: 1,
            lanes: 1,
        };
        let code = SourceCode::generate();
        let again = SourceCode::normalise(code.expose()).unwrap();
        let a = derive_keys(&code, &[1; 32], &params);
        let b = derive_keys(&again, &[1; 32], &params);
        let c = derive_keys(&code, &[2; 32], &params);
        assert_eq!(a.lookup_id, b.lookup_id);
        assert_ne!(a.lookup_id, c.lookup_id);
        assert_eq!(KdfParams::parse(&params.id()), Some(params));
        assert_eq!(KdfParams::parse("argon2id-v19-m1-t2"), None);
    }

    #[test]
    fn rejects_wrong_counts_and_unknown_words() {
        assert!(SourceCode::normalise("abacus zoom").is_none());
        assert!(SourceCode::normalise(&"abacus ".repeat(9)).is_none());
        assert!(SourceCode::normalise(&format!("{}qwerty", "abacus ".repeat(7))).is_none());
        assert!(SourceCode::normalise(&"abacus ".repeat(8)).is_some());
    }
}

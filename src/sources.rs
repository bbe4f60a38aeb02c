//! The source flows: the keys of a new source (derived while its first upload
//! streams), logging in with a code, and code rotation that keeps the old code until
//! the source has confirmed the new one. The HTTP handlers in [`crate::web`] call these
//! and only turn their results into pages. See SECURITY.md, "Source codes", and
//! docs/ARCHITECTURE.md.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::code::{Busy, Deriver, KdfParams, SourceCode, SourceKeys};
use crate::config::Retention;
use crate::crypto::SourceIdentity;
use crate::store::{SourceKeyRecord, Store, StoreError};

/// Most bytes of a sealed pending code once opened: a code is well under 200.
const MAX_CODE_BYTES: usize = 256;

/// What the source flows need: the store, the Argon2 pool and the code settings.
pub struct Sources {
    store: Arc<Store>,
    deriver: Arc<Deriver>,
    kdf: KdfParams,
    rotate_codes: bool,
    retention: Retention,
}

/// Why a login did not finish. A wrong code is not an error: see [`Sources::log_in`].
#[derive(Debug)]
pub enum LoginError {
    /// Every Argon2 slot and the queue behind them are taken.
    Busy,
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for LoginError {
    fn from(err: StoreError) -> Self {
        LoginError::Store(err)
    }
}

/// A source a code opened.
pub struct LoggedIn {
    /// The source's id.
    pub source_id: String,
    /// Its identity, for reading replies in the session.
    pub identity: SourceIdentity,
    /// With `rotate_codes`: the new code to show until the source confirms it.
    pub rotation: Option<PendingCode>,
    /// A code change the store could not take; the login stands without it.
    pub deferred: Option<StoreError>,
}

/// A new code waiting for the source to confirm they wrote it down.
pub struct PendingCode {
    /// The new code.
    pub code: SourceCode,
    /// Its lookup id, which [`Sources::confirm_rotation`] makes current.
    pub lookup_id: [u8; 32],
}

/// A new source: its code, made before the upload is read, and the derivation of its
/// keys, which starts once the upload has passed every up-front check
/// ([`NewSource::start`]) and runs while the files stream. Dropped, it cancels the
/// derivation.
pub struct NewSource {
    code: Arc<SourceCode>,
    kdf: KdfParams,
    /// The source's desk is post-quantum: its reply key is too.
    post_quantum: bool,
    start: Option<oneshot::Sender<()>>,
    keys: JoinHandle<Option<SourceKeys>>,
}

impl NewSource {
    /// Lets the derivation run: the upload passed its csrf, desk, slot and rate checks,
    /// so forged or refused posts never keep the Argon2 slots busy. `post_quantum`: the
    /// chosen desk's recipients are post-quantum, so the source's own reply key will be
    /// too (SECURITY.md, "Cryptography").
    pub fn start(&mut self, post_quantum: bool) {
        self.post_quantum = post_quantum;
        if let Some(start) = self.start.take() {
            let _ = start.send(());
        }
    }

    /// Waits for the keys and makes the source's identity: the code to show and what
    /// the store keeps. **MUST** be called only after [`NewSource::start`].
    pub async fn finish(mut self) -> (Arc<SourceCode>, SourceIdentity, SourceKeyRecord) {
        let keys = (&mut self.keys)
            .await
            .expect("key derivation does not panic")
            .expect("finish is called only after start let the derivation run");
        let identity = if self.post_quantum {
            SourceIdentity::generate_pq()
        } else {
            SourceIdentity::generate()
        };
        let record = SourceKeyRecord {
            lookup_id: keys.lookup_id,
            kdf: self.kdf.id(),
            recipient: identity.recipient(),
            wrapped_key: identity.wrap(&keys.code_key),
        };
        (Arc::clone(&self.code), identity, record)
    }
}

impl Drop for NewSource {
    fn drop(&mut self) {
        self.keys.abort();
    }
}

impl Sources {
    /// The flows over `store`, deriving with `deriver` and `kdf`.
    pub fn new(
        store: Arc<Store>,
        deriver: Arc<Deriver>,
        kdf: KdfParams,
        rotate_codes: bool,
        retention: Retention,
    ) -> Self {
        Sources {
            store,
            deriver,
            kdf,
            rotate_codes,
            retention,
        }
    }

    /// Records that the source was active today, if the retention policy needs it.
    pub async fn saw(&self, source_id: &str) -> Result<(), StoreError> {
        let store = Arc::clone(&self.store);
        let id = source_id.to_owned();
        let policy = self.retention;
        blocking(move || store.saw_source(&id, &policy)).await
    }

    /// A code for a new source, with its derivation waiting for [`NewSource::start`].
    pub fn new_source(&self) -> NewSource {
        let code = Arc::new(SourceCode::generate());
        let (start, started) = oneshot::channel::<()>();
        let deriver = Arc::clone(&self.deriver);
        let derive_code = Arc::clone(&code);
        let kdf = self.kdf;
        let keys = tokio::spawn(async move {
            started.await.ok()?;
            Some(deriver.derive(derive_code, kdf).await)
        });
        NewSource {
            code,
            kdf,
            post_quantum: false,
            start: Some(start),
            keys,
        }
    }

    /// Logs in with a code: `Ok(None)` when it opens no source (malformed codes are
    /// turned away before this). A code that is a rotation's pending new code
    /// completes that rotation, since the source evidently has it. With
    /// `rotate_codes`, a rotation is started or, if one is pending, shown again.
    pub async fn log_in(&self, code: SourceCode) -> Result<Option<LoggedIn>, LoginError> {
        let Some(opened) = self.open(Arc::new(code)).await? else {
            return Ok(None);
        };
        // Code changes are written, but reading an inbox needs no write: if the store
        // cannot take them now (a full disk, say), the login stands, both codes keep
        // working, and the failure is handed back for the incident count.
        let mut deferred = None;
        if opened.pending {
            let store = Arc::clone(&self.store);
            let id = opened.source_id.clone();
            let lookup = opened.lookup_id;
            if let Err(err) = blocking(move || store.finish_rotation(&id, &lookup)).await {
                deferred = Some(err);
            }
        }
        if let Err(err) = self.saw(&opened.source_id).await {
            deferred.get_or_insert(err);
        }
        let mut rotation = None;
        if self.rotate_codes && deferred.is_none() {
            match self
                .rotation_to_show(&opened.source_id, &opened.identity, &opened.lookup_id)
                .await
            {
                Ok(shown) => rotation = shown,
                Err(err) => deferred = Some(err),
            }
        }
        Ok(Some(LoggedIn {
            source_id: opened.source_id,
            identity: opened.identity,
            rotation,
            deferred,
        }))
    }

    /// The source confirmed the new code: it replaces the old one, whose keys are
    /// scrubbed from the disk.
    pub async fn confirm_rotation(
        &self,
        source_id: &str,
        lookup_id: [u8; 32],
    ) -> Result<(), StoreError> {
        let store = Arc::clone(&self.store);
        let id = source_id.to_owned();
        blocking(move || store.finish_rotation(&id, &lookup_id)).await?;
        Ok(())
    }

    /// Finds the source a code opens, trying every Argon2 parameter set in use (the
    /// configured one first), and unwraps its identity.
    async fn open(&self, code: Arc<SourceCode>) -> Result<Option<Opened>, LoginError> {
        let store = Arc::clone(&self.store);
        let in_use = blocking(move || store.kdfs_in_use()).await?;
        let mut kdfs = vec![self.kdf];
        kdfs.extend(
            in_use
                .iter()
                .filter_map(|id| KdfParams::parse(id))
                .filter(|kdf| *kdf != self.kdf),
        );
        for kdf in kdfs {
            let keys = self
                .deriver
                .derive_for_login(Arc::clone(&code), kdf)
                .await
                .map_err(|Busy| LoginError::Busy)?;
            let store = Arc::clone(&self.store);
            let lookup = keys.lookup_id;
            let found = blocking(move || store.find_source(&kdf.id(), &lookup)).await?;
            if let Some(found) = found {
                // A wrapped key that does not open is treated like an unknown code.
                return Ok(SourceIdentity::unwrap(&keys.code_key, &found.wrapped_key)
                    .ok()
                    .map(|identity| Opened {
                        source_id: found.id,
                        identity,
                        lookup_id: lookup,
                        pending: found.pending,
                    }));
            }
        }
        Ok(None)
    }

    /// The new code this login shows. A rotation already pending (a login whose page
    /// was lost, or a double-submitted form) is shown again; otherwise a new one
    /// starts. The old code keeps working until the source confirms the new one, so a
    /// lost response never locks a source out.
    async fn rotation_to_show(
        &self,
        source_id: &str,
        identity: &SourceIdentity,
        current_lookup_id: &[u8; 32],
    ) -> Result<Option<PendingCode>, StoreError> {
        if let Some(pending) = self.pending_code(source_id, identity).await? {
            return Ok(Some(pending));
        }
        let code = Arc::new(SourceCode::generate());
        let keys = self.deriver.derive(Arc::clone(&code), self.kdf).await;
        let record = SourceKeyRecord {
            lookup_id: keys.lookup_id,
            kdf: self.kdf.id(),
            recipient: identity.recipient(),
            wrapped_key: identity.wrap(&keys.code_key),
        };
        let sealed = identity.seal_to_self(code.expose().as_bytes());
        let store = Arc::clone(&self.store);
        let id = source_id.to_owned();
        let current = *current_lookup_id;
        blocking(move || store.begin_rotation(&id, &current, &record, &sealed)).await?;
        // Whether this login or a concurrent one started it, show what is stored.
        self.pending_code(source_id, identity).await
    }

    /// The source's pending new code, opened with its identity.
    async fn pending_code(
        &self,
        source_id: &str,
        identity: &SourceIdentity,
    ) -> Result<Option<PendingCode>, StoreError> {
        let store = Arc::clone(&self.store);
        let id = source_id.to_owned();
        let Some(pending) = blocking(move || store.pending_rotation(&id)).await? else {
            return Ok(None);
        };
        let code = identity
            .open_sealed(&pending.sealed_code, MAX_CODE_BYTES)
            .ok()
            .and_then(|plain| {
                std::str::from_utf8(&plain)
                    .ok()
                    .and_then(SourceCode::normalise)
            });
        Ok(code.map(|code| PendingCode {
            code,
            lookup_id: pending.lookup_id,
        }))
    }
}

/// A source a code opened, before the rotation policy is applied.
struct Opened {
    source_id: String,
    identity: SourceIdentity,
    /// The lookup id the code derived.
    lookup_id: [u8; 32],
    /// The code is a rotation's pending new code.
    pending: bool,
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("store calls do not panic")
}

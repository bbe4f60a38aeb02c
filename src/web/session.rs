//! Source sessions: in memory only, never on disk. A session holds the source's
//! unwrapped identity until logout or idle expiry, when it is dropped and wiped.
//! A session never expires while one of its uploads is streaming.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::HeaderMap;
use zeroize::Zeroizing;

use crate::crypto::SourceIdentity;
use crate::random;
use crate::sources::PendingCode;

/// The session cookie.
pub const COOKIE: &str = "agedrop_session";
/// 256 random bits, as hex.
const ID_BYTES: usize = 32;

/// What requests see of a session.
#[derive(Clone)]
pub struct Session {
    /// The source it belongs to.
    pub source_id: String,
    /// The source's identity, for decrypting replies.
    pub identity: Arc<SourceIdentity>,
    activity: Arc<Activity>,
}

impl Session {
    /// Marks an upload as running until the guard is dropped.
    pub fn upload(&self) -> UploadGuard {
        self.activity.uploads.fetch_add(1, Ordering::SeqCst);
        UploadGuard(Arc::clone(&self.activity))
    }
}

struct Activity {
    started: Instant,
    /// Milliseconds after `started` of the last request or finished upload.
    last_seen_ms: AtomicU64,
    uploads: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_seen_ms.store(ms, Ordering::SeqCst);
    }

    fn idle_for(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_seen_ms.load(Ordering::SeqCst)))
    }
}

/// Keeps a session alive while an upload streams.
pub struct UploadGuard(Arc<Activity>);

impl Drop for UploadGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.uploads.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Entry {
    session: Session,
    /// A code rotation the source has not yet confirmed: shown on every inbox until
    /// then.
    rotation: Option<PendingCode>,
    /// What the session's last follow-up delivered, shown once on the next inbox.
    receipt: Option<Receipt>,
}

/// What a follow-up delivered: how many messages and files, and the UTC day. Kept in
/// memory only, for the one inbox page that confirms it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Messages received (0 or 1).
    pub messages: usize,
    /// Files received.
    pub files: usize,
    /// The UTC day.
    pub day: String,
}

/// All live sessions.
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
    idle: Duration,
    max: usize,
}

impl Sessions {
    /// An empty store; sessions expire after `idle` without activity.
    pub fn new(idle: Duration, max: usize) -> Self {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
            max,
        }
    }

    /// How many sessions are live (for metrics).
    pub fn count(&self) -> usize {
        self.map().len()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Entries are whole at every await-free step, so a poisoned map is usable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session. A source has one session at a time: a new login replaces
    /// its older one, so logging in again and again cannot fill the table. At `max`
    /// sessions the longest-idle session that is not uploading makes room; `None`
    /// only when every session is uploading. See SECURITY.md, "Floods".
    pub fn create(&self, source_id: String, identity: SourceIdentity) -> Option<String> {
        let mut map = self.map();
        map.retain(|_, entry| entry.session.source_id != source_id);
        if map.len() >= self.max {
            self.sweep_locked(&mut map);
        }
        if map.len() >= self.max {
            let idlest = map
                .iter()
                .filter(|(_, entry)| entry.session.activity.uploads.load(Ordering::SeqCst) == 0)
                .max_by_key(|(_, entry)| entry.session.activity.idle_for())
                .map(|(id, _)| id.clone())?;
            map.remove(&idlest);
        }
        let id = random::hex_id(ID_BYTES);
        let activity = Arc::new(Activity {
            started: Instant::now(),
            last_seen_ms: AtomicU64::new(0),
            uploads: AtomicUsize::new(0),
        });
        let session = Session {
            source_id,
            identity: Arc::new(identity),
            activity,
        };
        map.insert(
            id.clone(),
            Entry {
                session,
                rotation: None,
                receipt: None,
            },
        );
        Some(id)
    }

    /// The live session named by the request's cookie, touched.
    pub fn get(&self, headers: &HeaderMap) -> Option<Session> {
        let id = session_id(headers)?;
        let mut map = self.map();
        let expired = {
            let entry = map.get(&id)?;
            self.is_expired(&entry.session)
        };
        if expired {
            map.remove(&id);
            return None;
        }
        let entry = map.get(&id)?;
        entry.session.activity.touch();
        Some(entry.session.clone())
    }

    /// Attaches a pending new code, shown on the session's inbox until confirmed.
    pub fn set_rotation(&self, id: &str, rotation: PendingCode) {
        if let Some(entry) = self.map().get_mut(id) {
            entry.rotation = Some(rotation);
        }
    }

    /// The pending new code of the request's session, to show.
    pub fn pending_code(&self, headers: &HeaderMap) -> Option<Zeroizing<String>> {
        let id = session_id(headers)?;
        let map = self.map();
        let rotation = map.get(&id)?.rotation.as_ref()?;
        Some(Zeroizing::new(rotation.code.expose().to_owned()))
    }

    /// The lookup id of the request's session's pending new code.
    pub fn rotation_lookup(&self, headers: &HeaderMap) -> Option<[u8; 32]> {
        let id = session_id(headers)?;
        Some(self.map().get(&id)?.rotation.as_ref()?.lookup_id)
    }

    /// Forgets the session's pending new code: the source confirmed it and it is stored.
    pub fn clear_rotation(&self, headers: &HeaderMap) {
        if let Some(id) = session_id(headers) {
            if let Some(entry) = self.map().get_mut(&id) {
                entry.rotation = None;
            }
        }
    }

    /// Remembers what the session's follow-up delivered, for the next inbox.
    pub fn set_receipt(&self, headers: &HeaderMap, receipt: Receipt) {
        if let Some(id) = session_id(headers) {
            if let Some(entry) = self.map().get_mut(&id) {
                entry.receipt = Some(receipt);
            }
        }
    }

    /// What the session's last follow-up delivered, once: taken, not kept.
    pub fn take_receipt(&self, headers: &HeaderMap) -> Option<Receipt> {
        let id = session_id(headers)?;
        self.map().get_mut(&id)?.receipt.take()
    }

    /// Ends the request's session.
    pub fn remove(&self, headers: &HeaderMap) {
        if let Some(id) = session_id(headers) {
            self.map().remove(&id);
        }
    }

    /// Drops every expired session; the identities are wiped as they drop.
    pub fn sweep(&self) {
        let mut map = self.map();
        self.sweep_locked(&mut map);
    }

    fn sweep_locked(&self, map: &mut HashMap<String, Entry>) {
        map.retain(|_, entry| !self.is_expired(&entry.session));
    }

    fn is_expired(&self, session: &Session) -> bool {
        session.activity.uploads.load(Ordering::SeqCst) == 0
            && session.activity.idle_for() > self.idle
    }
}

/// The `Set-Cookie` value for a new session.
pub fn cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// True if the request carries a well-formed session cookie (live or not).
pub fn has_cookie(headers: &HeaderMap) -> bool {
    session_id(headers).is_some()
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    super::hex_cookie(headers, COOKIE, ID_BYTES * 2)
}

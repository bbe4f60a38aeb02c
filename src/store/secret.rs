//! The instance secret: 32 random bytes made once per data directory, which key the
//! CSRF tokens and source codes. Loaded (and kept private) at every start.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use super::{io_error, StoreError};
use crate::{fsync, random};

/// The instance secret: 32 random bytes made once per data directory. No `Debug`.
pub struct InstanceSecret(Zeroizing<[u8; 32]>);

impl InstanceSecret {
    /// The secret's bytes, for key derivation.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public name for this secret: HMAC-SHA-256 under it of a fixed label, 16 bytes
    /// in hex. Nodes sharing an object store compare it to know they share the secret
    /// (codes and CSRF tokens are keyed by it) without revealing it.
    pub(super) fn fingerprint(&self) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.0[..])
            .expect("HMAC takes keys of any length");
        mac.update(b"agedrop instance fingerprint v1");
        mac.finalize().into_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Reads the instance secret, making sure it is private (a backup restored with
/// looser permissions would let local users guess codes offline).
pub(super) fn load(path: &Path) -> Result<InstanceSecret, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let bytes = Zeroizing::new(fs::read(path).map_err(io_error("read the instance secret", path))?);
    if bytes.len() != 32 {
        return Err(StoreError::Io {
            action: "read the instance secret (it must be exactly 32 bytes)",
            path: path.to_owned(),
            source: io::ErrorKind::InvalidData.into(),
        });
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(io_error("restrict the instance secret's permissions", path))?;
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&bytes);
    Ok(InstanceSecret(secret))
}

pub(super) fn load_or_create(path: &Path) -> Result<InstanceSecret, StoreError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    match fs::symlink_metadata(path) {
        Ok(_) => return load(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            random::fill(&mut secret[..]);
            write_new(path, &secret[..]).map_err(io_error("create the instance secret", path))?;
        }
        Err(e) => return Err(io_error("read the instance secret", path)(e)),
    }
    Ok(InstanceSecret(secret))
}

/// This data directory's node id: 16 random hex digits made once, naming what this
/// node leaves in a shared object store (its upload and deletion markers), so one node's
/// start-up never touches what another node is doing. Not a secret. Made when missing
/// only if `make`; otherwise a missing id reads as `admin` (a command beside the server
/// leaves no marker of its own).
pub(super) fn node_id(path: &Path, make: bool) -> Result<String, StoreError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let id = text.trim();
            if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(id.to_owned());
            }
            Err(StoreError::Io {
                action: "read the node id (it must be 16 hex digits)",
                path: path.to_owned(),
                source: io::ErrorKind::InvalidData.into(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && !make => Ok("admin".to_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = random::hex_id(8);
            write_new(path, format!("{id}\n").as_bytes())
                .map_err(io_error("create the node id", path))?;
            Ok(id)
        }
        Err(e) => Err(io_error("read the node id", path)(e)),
    }
}

/// Writes `bytes` to `path` (0600) durably: a temp file, fsync, rename, fsync the
/// directory.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    fsync::sync_dir(path.parent().unwrap_or(Path::new(".")))
}

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
            let tmp = path.with_extension("tmp");
            let write = || -> io::Result<()> {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                io::Write::write_all(&mut file, &secret[..])?;
                file.sync_all()?;
                fs::rename(&tmp, path)?;
                fsync::sync_dir(path.parent().unwrap_or(Path::new(".")))
            };
            write().map_err(io_error("create the instance secret", path))?;
        }
        Err(e) => return Err(io_error("read the instance secret", path)(e)),
    }
    Ok(InstanceSecret(secret))
}

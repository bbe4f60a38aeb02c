//! TLS as a client of the services the store uses (an object store over `https://`,
//! PostgreSQL with `sslmode=require`): rustls with ring, the one TLS stack agedrop has,
//! and the CA certificates the config names or else the system's.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{io_error, StoreError};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Debian's bundle of the system's CA certificates (package ca-certificates).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A client config trusting the CA certificates in `ca_file`, or the system's when it is
/// `None` (none at all if the system has no bundle: then every handshake fails).
/// `action` names the config key for errors (`read storage.ca_file`).
pub(super) fn client_config(
    ca_file: Option<&Path>,
    action: &'static str,
) -> Result<rustls::ClientConfig, StoreError> {
    let path = ca_file.unwrap_or(Path::new(SYSTEM_ROOTS));
    roots_config(ca_file).map_err(io_error(action, path))
}

fn roots_config(ca_file: Option<&Path>) -> io::Result<rustls::ClientConfig> {
    let (path, required) = match ca_file {
        Some(path) => (path, true),
        None => (Path::new(SYSTEM_ROOTS), false),
    };
    let invalid =
        |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    match CertificateDer::pem_file_iter(path) {
        Ok(certs) => {
            for cert in certs {
                // A certificate rustls cannot use is left out, as browsers do.
                let _ = roots.add(cert.map_err(|e| invalid(&e))?);
            }
        }
        Err(e) if required => return Err(invalid(&e)),
        Err(_) => {}
    }
    if required && roots.is_empty() {
        return Err(invalid(&"no CA certificate in it"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth())
}

//! What rustls thinks of a certificate before any handshake: an X.509 version 1
//! certificate (what `openssl x509 -req` makes without `-extfile`) fails only during the
//! handshake, with an alert that blames the other side. Both `serve` and `pull` check
//! their own certificates here first and say what to do (docs/admin.md, "Journalist API
//! over TLS").

use rustls::pki_types::CertificateDer;

/// Whether rustls refuses `cert` for being X.509 version 1 (or 2): webpki parses only
/// version 3.
pub fn is_version_1(cert: &CertificateDer<'_>) -> bool {
    matches!(
        webpki::EndEntityCert::try_from(cert),
        Err(webpki::Error::UnsupportedCertVersion)
    )
}

/// The fault, for an error message that goes on with what to do.
pub const VERSION_1: &str = "an X.509 version 1 certificate, which TLS (rustls) refuses";

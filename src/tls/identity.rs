//! A peer's identity: a certificate and its key, made with rcgen on first start and kept, and the
//! fingerprint that others pin.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::fsutil::{write_atomic, Mode, Replace};

/// Why an identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing a file failed.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The file holds no usable certificate or key.
    #[error("{} does not hold a usable {what}", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        what: &'static str,
    },
    /// rcgen could not make a certificate.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The certificate cannot be parsed.
    #[error("the certificate cannot be parsed: {0}")]
    Certificate(rustls::Error),
}

/// The SHA-256 of a certificate's SubjectPublicKeyInfo, written `SHA256:<base64 without padding>`
/// as OpenSSH writes key fingerprints. Hashing the public key rather than the whole certificate
/// keeps a fingerprint stable when a certificate is re-issued for the same key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate's public key.
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Result<Self, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
        Ok(Fingerprint(
            Sha256::digest(parsed.subject_public_key_info().as_ref()).into(),
        ))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256:{}", STANDARD_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A fingerprint string that is not `SHA256:` and 43 base64 characters.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a fingerprint of the form SHA256:<43 base64 characters>")]
pub struct BadFingerprint(pub String);

impl FromStr for Fingerprint {
    type Err = BadFingerprint;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadFingerprint(crate::paths::sanitize(s));
        let b64 = s.strip_prefix("SHA256:").ok_or_else(bad)?;
        let bytes = STANDARD_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| bad())?;
        Ok(Fingerprint(bytes.try_into().map_err(|_| bad())?))
    }
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    /// The chain, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    fingerprint: Fingerprint,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint,
        }
    }
}

impl Identity {
    /// A fresh self-signed identity, held only in memory.
    pub fn generate() -> Result<Self, IdentityError> {
        let made = rcgen::generate_simple_self_signed(vec!["qft".to_string()])?;
        let cert = made.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        Self::new(vec![cert], key)
    }

    fn new(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, IdentityError> {
        let leaf = certs.first().ok_or(IdentityError::Certificate(
            rustls::Error::NoCertificatesPresented,
        ))?;
        let fingerprint = Fingerprint::of_certificate(leaf).map_err(IdentityError::Certificate)?;
        Ok(Identity {
            certs,
            key,
            fingerprint,
        })
    }

    /// The fingerprint peers pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Loads a certificate chain and a key from two PEM files (`--cert` / `--key`).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, IdentityError> {
        let certs = parse_certs(cert, &read(cert)?)?;
        let key_der = parse_key(key, &read(key)?)?;
        Self::new(certs, key_der)
    }

    /// Loads the identity kept in `path` (certificate and key in one PEM file), making and saving
    /// a new one if there is none. One file rather than two means a crash or a concurrent first
    /// start can never pair a certificate with the wrong key.
    pub fn load_or_create(path: &Path) -> Result<Self, IdentityError> {
        match std::fs::read(path) {
            Ok(pem) => return Self::from_pem(path, &pem),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(IdentityError::Io {
                    path: path.into(),
                    source,
                })
            }
        }
        let made = rcgen::generate_simple_self_signed(vec!["qft".to_string()])?;
        let pem = format!("{}{}", made.cert.pem(), made.signing_key.serialize_pem());
        // Private (0600), and linked into place only if nothing is there yet.
        let written = write_atomic(path, pem.as_bytes(), Replace::No, Mode::Private, "qft-key");
        match written {
            Ok(()) => Self::from_pem(path, pem.as_bytes()),
            // Another process made it first: use theirs, so both agree.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::load_or_create(path),
            Err(source) => Err(IdentityError::Io {
                path: path.into(),
                source,
            }),
        }
    }

    fn from_pem(path: &Path, pem: &[u8]) -> Result<Self, IdentityError> {
        Self::new(parse_certs(path, pem)?, parse_key(path, pem)?)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|source| IdentityError::Io {
        path: path.into(),
        source,
    })
}

fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|_| IdentityError::BadPem {
            path: path.into(),
            what: "certificate",
        })?;
    if certs.is_empty() {
        return Err(IdentityError::BadPem {
            path: path.into(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, IdentityError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| IdentityError::BadPem {
        path: path.into(),
        what: "private key",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_text_round_trips_and_rejects_junk() {
        let id = Identity::generate().unwrap();
        let text = id.fingerprint().to_string();
        assert!(
            text.starts_with("SHA256:") && text.len() == 7 + 43,
            "{text}"
        );
        assert_eq!(text.parse::<Fingerprint>().unwrap(), id.fingerprint());
        for bad in ["", "SHA256:", "MD5:abcd", "SHA256:!!!!", "SHA256:AAAA"] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn kept_identity_is_stable_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.pem");
        let first = Identity::load_or_create(&path).unwrap();
        let again = Identity::load_or_create(&path).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

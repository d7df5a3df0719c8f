//! The certificates a browser pins by hash (`serverCertificateHashes`).
//!
//! Chromium accepts a self-signed server only by the SHA-256 of its whole certificate, and only
//! an ECDSA P-256 certificate valid for at most 14 days. qft's identity certificate is valid for
//! centuries, so browsers get another one: issued for the *same key* (the qft fingerprint, which
//! hashes the public key, does not change), valid for [`VALIDITY`], one per [`PERIOD`].
//!
//! Time is cut into periods of [`PERIOD`] from the Unix epoch; period `k`'s certificate is valid
//! from an hour before the period starts (clocks differ) for [`VALIDITY`], so it still holds
//! while the next period's certificate takes over. The server presents the certificate of the
//! current period. A share link that lasts into later periods carries their hashes too
//! ([`WebCerts::hashes_until`]), which is why the certificates are made ahead and kept on disk:
//! `qft share` and `qft serve` are separate processes and must agree on every certificate. Each
//! is written once (`web-certs/<key>-<period>.der` in the qft home, no-clobber); whoever needs it
//! first makes it, and the other reads it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::fsutil::{write_atomic, Mode, Replace};
use crate::tls::Identity;

/// How often the browsers' certificate changes.
pub const PERIOD: Duration = Duration::from_secs(6 * 24 * 3600);
/// How long each browser certificate is valid: Chromium's limit is 14 days.
pub const VALIDITY: Duration = Duration::from_secs(13 * 24 * 3600);
/// How long before its period a certificate is already valid, for clocks that run behind.
const EARLY: Duration = Duration::from_secs(3600);
/// Where the certificates are kept, inside the qft home.
pub const DIR: &str = "web-certs";

/// Why a browser certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub enum WebCertError {
    /// The identity's key is not ECDSA P-256, which Chromium requires for pinned certificates.
    #[error("browsers pin only ECDSA P-256 keys; this identity's key is another kind")]
    UnsuitableKey,
    /// rcgen refused.
    #[error("cannot issue a browser certificate: {0}")]
    Issue(#[from] rcgen::Error),
    /// Reading or writing the kept certificates failed.
    #[error("cannot keep browser certificates in {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// rustls cannot use the key.
    #[error("cannot use the key for browsers: {0}")]
    Key(rustls::Error),
}

/// The short-lived certificates of one identity, made on demand and kept under the qft home.
#[derive(Debug)]
pub struct WebCerts {
    dir: PathBuf,
    key: rcgen::KeyPair,
    identity: Identity,
    /// The key's fingerprint in file names, so that a new identity never reads an old one's.
    tag: String,
    /// The certificate being presented, and its period.
    current: Mutex<Option<(u64, Arc<CertifiedKey>)>>,
}

impl WebCerts {
    /// Certificates for `identity`'s key, kept in `home`'s [`DIR`].
    pub fn new(home: &Path, identity: &Identity) -> Result<Self, WebCertError> {
        let key =
            rcgen::KeyPair::try_from(&identity.key).map_err(|_| WebCertError::UnsuitableKey)?;
        if key.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err(WebCertError::UnsuitableKey);
        }
        let fp = identity.fingerprint().0;
        let tag = fp[..6].iter().map(|b| format!("{b:02x}")).collect();
        Ok(WebCerts {
            dir: home.join(DIR),
            key,
            identity: identity.clone(),
            tag,
            current: Mutex::new(None),
        })
    }

    /// The certificate to present now, with the identity's key.
    pub fn current(&self) -> Result<Arc<CertifiedKey>, WebCertError> {
        let period = period_of(SystemTime::now());
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((p, key)) = current.as_ref() {
            if *p == period {
                return Ok(key.clone());
            }
        }
        let cert = self.certificate(period)?;
        let provider = crate::tls::crypto_provider();
        let certified =
            CertifiedKey::from_der(vec![cert], self.identity.key.clone_key(), &provider)
                .map_err(WebCertError::Key)?;
        let certified = Arc::new(certified);
        *current = Some((period, certified.clone()));
        self.forget_before(period.saturating_sub(1));
        Ok(certified)
    }

    /// The SHA-256 of every certificate the server will present from now until `until` (at
    /// least the current one): what a browser must be told to pin for a link that lasts as long.
    pub fn hashes_until(&self, until: SystemTime) -> Result<Vec<[u8; 32]>, WebCertError> {
        let first = period_of(SystemTime::now());
        let last = period_of(until).max(first);
        (first..=last)
            .map(|p| Ok(Sha256::digest(self.certificate(p)?.as_ref()).into()))
            .collect()
    }

    /// Period `period`'s certificate: the kept one, or a new one kept for the next asker.
    fn certificate(&self, period: u64) -> Result<CertificateDer<'static>, WebCertError> {
        let path = self.dir.join(format!("{}-{period}.der", self.tag));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WebCertError::Io { path, source }
        };
        match std::fs::read(&path) {
            Ok(der) => return Ok(CertificateDer::from(der)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let der = self.issue(period)?;
        match write_atomic(&path, &der, Replace::No, Mode::Normal, "web-cert") {
            Ok(()) => Ok(CertificateDer::from(der)),
            // Another process issued it first: present theirs, so every link agrees.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => std::fs::read(&path)
                .map(CertificateDer::from)
                .map_err(io(&path)),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn issue(&self, period: u64) -> Result<Vec<u8>, WebCertError> {
        let (not_before, not_after) = window(period);
        let mut params =
            rcgen::CertificateParams::new(vec!["qft".to_string(), "localhost".into()])?;
        params.not_before = to_time(not_before);
        params.not_after = to_time(not_after);
        Ok(params.self_signed(&self.key)?.der().to_vec())
    }

    /// Removes this key's certificates of periods before `period` (best effort).
    fn forget_before(&self, period: u64) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = format!("{}-", self.tag);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let old = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix)?.strip_suffix(".der"))
                .and_then(|p| p.parse::<u64>().ok())
                .is_some_and(|p| p < period);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// When period `period`'s certificate is valid: from a little before the period to
/// [`VALIDITY`] later.
fn window(period: u64) -> (SystemTime, SystemTime) {
    let start = UNIX_EPOCH + Duration::from_secs(PERIOD.as_secs().saturating_mul(period)) - EARLY;
    (start, start + VALIDITY)
}

/// The period `t` falls in.
fn period_of(t: SystemTime) -> u64 {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    secs / PERIOD.as_secs()
}

fn to_time(t: SystemTime) -> time::OffsetDateTime {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::Fingerprint;

    #[test]
    fn browser_certificates_keep_the_key_last_under_14_days_and_are_shared() {
        let home = tempfile::tempdir().unwrap();
        let id = Identity::generate().unwrap();
        let certs = WebCerts::new(home.path(), &id).unwrap();
        let now = certs.current().unwrap();
        let leaf = &now.cert[0];
        assert_eq!(Fingerprint::of_certificate(leaf).unwrap(), id.fingerprint());

        let (from, to) = window(period_of(SystemTime::now()));
        assert!(to.duration_since(from).unwrap() <= Duration::from_secs(14 * 24 * 3600));
        assert!(
            from <= SystemTime::now() && SystemTime::now() < to,
            "valid now"
        );
        // The next period starts while this certificate is still valid.
        let (next, _) = window(period_of(SystemTime::now()) + 1);
        assert!(next + EARLY < to);

        // Another process (here: another WebCerts) sees the same certificates.
        let again = WebCerts::new(home.path(), &id).unwrap();
        let in_20_days = SystemTime::now() + Duration::from_secs(20 * 24 * 3600);
        let hashes = again.hashes_until(in_20_days).unwrap();
        assert!((4..=5).contains(&hashes.len()), "{}", hashes.len());
        assert_eq!(hashes[0], <[u8; 32]>::from(Sha256::digest(leaf.as_ref())));
        assert_eq!(certs.hashes_until(in_20_days).unwrap(), hashes);
    }
}

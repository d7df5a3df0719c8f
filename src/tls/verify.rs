//! The client's certificate check: the server's public key must have the expected fingerprint.
//!
//! There is no CA here: a qft server's certificate is self-signed, and trust is the fingerprint
//! (pinned or recorded on first use), as with SSH host keys. The handshake signatures are still
//! checked by rustls' own code, which is what proves the server holds the private key: comparing
//! certificate bytes alone would trust anyone who copied the certificate.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::Fingerprint;

/// The handshake-signature methods both verifiers share: delegated to rustls' own checks with
/// the provider's algorithms, which is what proves the peer holds the key it presents.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.provider.signature_verification_algorithms;
            verify_tls12_signature(message, cert, dss, algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.provider.signature_verification_algorithms;
            verify_tls13_signature(message, cert, dss, algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// Accepts exactly one fingerprint, or (for `accept-new`) whatever is presented, and remembers
/// what it saw so the caller can explain a refusal or record a new host.
#[derive(Debug)]
pub struct FingerprintVerifier {
    expected: Option<Fingerprint>,
    accept_unknown: bool,
    seen: Arc<Mutex<Option<Fingerprint>>>,
    provider: Arc<CryptoProvider>,
}

impl FingerprintVerifier {
    /// With `expected`, only that key is accepted. Without, a key is accepted only if
    /// `accept_unknown` (first use, which the caller then records); otherwise the handshake is
    /// refused and [`Self::seen`] tells which key was offered, so the user can be asked.
    pub fn new(
        expected: Option<Fingerprint>,
        accept_unknown: bool,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        FingerprintVerifier {
            expected,
            accept_unknown,
            seen: Arc::default(),
            provider,
        }
    }

    /// A handle to the fingerprint the server presented, filled in during the handshake.
    pub fn seen(&self) -> Arc<Mutex<Option<Fingerprint>>> {
        self.seen.clone()
    }
}

impl ServerCertVerifier for FingerprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of_certificate(end_entity)?;
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(presented);
        }
        match self.expected {
            Some(expected) if expected == presented => Ok(ServerCertVerified::assertion()),
            None if self.accept_unknown => Ok(ServerCertVerified::assertion()),
            _ => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    handshake_signatures!();
}

/// The server's check of client certificates: like an SSH server with authorized_keys, it accepts
/// any self-signed certificate whose holder proves, by the handshake signature, that it has the
/// key; who that client is (its fingerprint) and what it may do is decided after the handshake.
#[derive(Debug)]
pub struct ClientKeyVerifier {
    /// Without a certificate a client cannot be identified; refuse it where identities matter.
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientKeyVerifier {
    /// `mandatory`: refuse clients that present no certificate.
    pub fn new(mandatory: bool, provider: Arc<CryptoProvider>) -> Self {
        ClientKeyVerifier {
            mandatory,
            provider,
        }
    }
}

impl rustls::server::danger::ClientCertVerifier for ClientKeyVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        // Parsing proves there is a public key to fingerprint; the signature checks below prove
        // the client holds its private half.
        Fingerprint::of_certificate(end_entity)?;
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    handshake_signatures!();
}

//! The rustls server configuration of a web config file's
//! `tls_server_config`, checked whole when it is loaded: a certificate that
//! has expired or is not yet valid, a key that does not belong to it, or an
//! unreadable file is refused here (at startup or reload) rather than found
//! out by every client's failed handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig};
use rustls::{SignatureScheme, SupportedProtocolVersion};

use super::file::{ClientAuth, TlsFile, TlsVersion};

/// What the startup log says of the TLS in force.
#[derive(Debug, Clone)]
pub struct TlsSummary {
    pub client_auth: ClientAuth,
    /// When the server certificate expires (Unix seconds).
    pub not_after: i64,
}

/// Builds the server configuration; relative paths resolve against `base`.
pub(super) fn server_config(
    tls: &TlsFile,
    base: &Path,
) -> Result<Option<(Arc<ServerConfig>, TlsSummary)>, String> {
    let path = |p: &Option<String>| p.as_deref().map(|p| base.join(p));
    let (cert_file, key_file) = match (path(&tls.cert_file), path(&tls.key_file)) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) => return Err("tls_server_config has cert_file but no key_file".into()),
        (None, Some(_)) => return Err("tls_server_config has key_file but no cert_file".into()),
    };
    let certs = read_certificates(&cert_file)?;
    let not_after = check_validity(&certs, &cert_file, unix_now())?;
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key_file.display()))?;

    let client_auth = match (tls.client_auth_type, &tls.client_ca_file) {
        (Some(kind), _) => kind,
        // The toolkit's rule: a CA without a type means verify and require.
        (None, Some(_)) => ClientAuth::RequireAndVerifyClientCert,
        (None, None) => ClientAuth::NoClientCert,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = client_verifier(client_auth, path(&tls.client_ca_file), &provider)?;
    let versions = versions(tls.min_version, tls.max_version)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "the private key in {} does not belong to the certificate in {}",
                key_file.display(),
                cert_file.display()
            ),
            e => format!(
                "cannot use the certificate {} with the key {}: {e}",
                cert_file.display(),
                key_file.display()
            ),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some((
        Arc::new(config),
        TlsSummary {
            client_auth,
            not_after,
        },
    )))
}

fn read_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let unreadable = |e: rustls::pki_types::pem::Error| {
        format!("cannot read certificates from {}: {e}", file.display())
    };
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate in {}", file.display()));
    }
    Ok(certs)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Refuses a chain with a certificate outside its validity at `now`;
/// returns when the first (the server's own) expires.
fn check_validity(certs: &[CertificateDer<'_>], file: &Path, now: i64) -> Result<i64, String> {
    let mut server_not_after = None;
    for (i, der) in certs.iter().enumerate() {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
            format!(
                "certificate {} in {} cannot be parsed: {e}",
                i + 1,
                file.display()
            )
        })?;
        let validity = cert.validity();
        let which = if i == 0 {
            format!("the certificate in {}", file.display())
        } else {
            format!("certificate {} of the chain in {}", i + 1, file.display())
        };
        if validity.not_after.timestamp() < now {
            return Err(format!("{which} expired at {}", validity.not_after));
        }
        if validity.not_before.timestamp() > now {
            return Err(format!(
                "{which} is not valid before {}",
                validity.not_before
            ));
        }
        server_not_after.get_or_insert(validity.not_after.timestamp());
    }
    Ok(server_not_after.unwrap_or(now))
}

fn versions(
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let (min, max) = (
        min.unwrap_or(TlsVersion::TLS12),
        max.unwrap_or(TlsVersion::TLS13),
    );
    if min < TlsVersion::TLS12 || max < TlsVersion::TLS12 {
        return Err("caretaker speaks TLS12 and TLS13 only (min_version, max_version)".into());
    }
    if min > max {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    let mut versions = Vec::new();
    if min == TlsVersion::TLS12 {
        versions.push(&rustls::version::TLS12);
    }
    if max == TlsVersion::TLS13 {
        versions.push(&rustls::version::TLS13);
    }
    Ok(versions)
}

fn client_verifier(
    kind: ClientAuth,
    ca_file: Option<PathBuf>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let algorithms = provider.signature_verification_algorithms;
    match (kind, ca_file) {
        (ClientAuth::NoClientCert, _) => Ok(WebPkiClientVerifier::no_client_auth()),
        (ClientAuth::RequestClientCert, _) => Ok(Arc::new(AnyClientCert {
            mandatory: false,
            algorithms,
        })),
        (ClientAuth::RequireAnyClientCert, _) => Ok(Arc::new(AnyClientCert {
            mandatory: true,
            algorithms,
        })),
        (kind, None) => Err(format!(
            "client_auth_type {} needs client_ca_file",
            kind.as_str()
        )),
        (kind, Some(ca_file)) => {
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(read_certificates(&ca_file)?);
            if added == 0 {
                return Err(format!("no usable CA certificate in {}", ca_file.display()));
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone());
            let builder = if kind == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| format!("client_ca_file {}: {e}", ca_file.display()))
        }
    }
}

/// `RequestClientCert` and `RequireAnyClientCert`: any certificate is taken
/// (as in the toolkit, nothing about it is checked but that the client holds
/// its key).
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_versions_rustls_speaks_are_taken() {
        assert_eq!(versions(None, None).unwrap().len(), 2);
        assert_eq!(
            versions(Some(TlsVersion::TLS13), None).unwrap(),
            vec![&rustls::version::TLS13]
        );
        assert!(versions(Some(TlsVersion::TLS11), None).is_err());
        assert!(versions(Some(TlsVersion::TLS13), Some(TlsVersion::TLS12)).is_err());
    }

    #[test]
    fn a_half_configured_pair_and_a_verifying_type_without_ca_are_refused() {
        let tls = TlsFile {
            cert_file: Some("a.crt".into()),
            ..TlsFile::default()
        };
        let e = server_config(&tls, Path::new("/")).unwrap_err();
        assert!(e.contains("no key_file"), "{e}");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let e = client_verifier(ClientAuth::RequireAndVerifyClientCert, None, &provider)
            .err()
            .unwrap();
        assert!(e.contains("needs client_ca_file"), "{e}");
    }
}

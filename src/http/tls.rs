//! TLS for the listeners, reloadable: the server certificate and key (`[tls]`) are read into a
//! rustls configuration per listener, held in a [`LiveAcceptor`] that each new connection reads.
//! [`LiveTls::reload`] builds new configurations from the files (and, for the card listener, the
//! current smartcard trust's CA names as hints) and swaps them in only when all of them load, so a
//! bad new file leaves the old certificate serving. `http::reload` calls it on SIGHUP and when
//! the files change. Connections already open keep the certificate they started with.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ServerConfig;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::domain::provider::Provider;
use crate::domain::smartcard::CardTrust;

/// Accepts any client certificate whose key signed the handshake; chain validation is deferred
/// to [`CardTrust::verify`]. The CA subjects are sent as hints so browsers offer only cards.
#[derive(Debug)]
struct ProofOfPossessionVerifier {
    hints: Vec<DistinguishedName>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ProofOfPossessionVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
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
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn tls_acceptor(tls: &TlsConfig, card_hints: Option<&CardTrust>) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(
        &mut std::fs::read(&tls.cert_file)
            .with_context(|| format!("tls.cert_file {}", tls.cert_file.display()))?
            .as_slice(),
    )
    .collect::<Result<_, _>>()
    .with_context(|| format!("tls.cert_file {}", tls.cert_file.display()))?;
    let key = rustls_pemfile::private_key(
        &mut std::fs::read(&tls.key_file)
            .with_context(|| format!("tls.key_file {}", tls.key_file.display()))?
            .as_slice(),
    )?
    .with_context(|| {
        format!(
            "tls.key_file {} holds no private key",
            tls.key_file.display()
        )
    })?;
    if let Some(expiry) = certs.first().and_then(not_after) {
        metrics::gauge!("careid_tls_certificate_not_after_timestamp_seconds").set(expiry as f64);
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match card_hints {
        Some(trust) => {
            let verifier = ProofOfPossessionVerifier {
                hints: trust
                    .subjects
                    .iter()
                    .map(|s| DistinguishedName::from(s.clone()))
                    .collect(),
                algorithms: provider.signature_verification_algorithms,
            };
            builder
                .with_client_cert_verifier(Arc::new(verifier))
                .with_single_cert(certs, key)?
        }
        None => builder.with_no_client_auth().with_single_cert(certs, key)?,
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A listener's TLS configuration, replaceable while it serves.
#[derive(Clone)]
pub struct LiveAcceptor(Arc<RwLock<TlsAcceptor>>);

impl LiveAcceptor {
    fn new(acceptor: TlsAcceptor) -> LiveAcceptor {
        LiveAcceptor(Arc::new(RwLock::new(acceptor)))
    }

    /// The configuration a new connection uses.
    pub fn current(&self) -> TlsAcceptor {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, acceptor: TlsAcceptor) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = acceptor;
    }
}

/// The TLS of both listeners, and where it comes from.
#[derive(Clone)]
pub struct LiveTls {
    config: TlsConfig,
    pub main: LiveAcceptor,
    /// Present when the card listener runs.
    pub card: Option<LiveAcceptor>,
}

impl LiveTls {
    /// Loads the certificate and key; an error names the file.
    pub fn load(config: &TlsConfig, card: bool, provider: &Provider) -> anyhow::Result<LiveTls> {
        let (main, card_acceptor) = build(config, card, provider)?;
        Ok(LiveTls {
            config: config.clone(),
            main: LiveAcceptor::new(main),
            card: card_acceptor.map(LiveAcceptor::new),
        })
    }

    /// The files to watch.
    pub fn files(&self) -> [PathBuf; 2] {
        [self.config.cert_file.clone(), self.config.key_file.clone()]
    }

    /// Reads the files again and, only if everything loads, serves the new certificate to new
    /// connections; otherwise the old one stays and the error says why.
    pub fn reload(&self, provider: &Provider) -> anyhow::Result<()> {
        let (main, card) = build(&self.config, self.card.is_some(), provider)?;
        self.main.replace(main);
        if let (Some(live), Some(new)) = (&self.card, card) {
            live.replace(new);
        }
        Ok(())
    }
}

/// The main listener's acceptor, and the card listener's when it runs; sets the expiry gauge.
fn build(
    config: &TlsConfig,
    card: bool,
    provider: &Provider,
) -> anyhow::Result<(TlsAcceptor, Option<TlsAcceptor>)> {
    let main = tls_acceptor(config, None)?;
    let card = card
        .then(|| tls_acceptor(config, Some(&provider.card_trust.current())))
        .transpose()?;
    Ok((main, card))
}

/// The `notAfter` of the first certificate in a PEM chain.
fn not_after(leaf: &CertificateDer<'_>) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    Some(cert.validity().not_after.timestamp())
}

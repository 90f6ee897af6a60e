//! Listeners and TLS. The main listener serves everything and never asks for a client
//! certificate. The card listener (RFC 8705-style alias) asks for one, optionally, and only
//! checks possession of its key during the handshake; whether the certificate may sign anyone
//! in is decided by the login service, so a refusal is a page and an audit record, not a broken
//! connection. Browsers therefore show the certificate picker only when the person chooses
//! smartcard sign-in, never on every page or token request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ServerConfig;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::{router, AppState};
use crate::clock::Clock;
use crate::config::{Config, TlsConfig};
use crate::domain::provider::Provider;
use crate::domain::smartcard::{load_trust, CardTrust};
use crate::domain::webauthn::policy::AttestationPolicy;
use crate::store::Db;

/// What the connection knows about its peer, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The client certificate chain from the TLS handshake (card listener only).
    pub client_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
}

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

/// Bound listeners, so tests (and `serve`) choose ports before the issuer is known.
pub struct Listeners {
    pub main: TcpListener,
    pub card: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
        let main = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listen {}", config.listen))?;
        let card = match config.smartcard.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("smartcard.listen {addr}"))?,
            ),
            None => None,
        };
        Ok(Listeners { main, card })
    }
}

/// A started server. Dropping it stops accepting and closes connections.
pub struct RunningServer {
    pub main_addr: SocketAddr,
    pub card_addr: Option<SocketAddr>,
    pub provider: Arc<Provider>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting, lets open requests finish, and waits for the listeners to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Connects and migrates the database, loads keys and trust, and starts serving.
pub async fn start(
    config: Config,
    clock: Arc<dyn Clock>,
    listeners: Listeners,
) -> anyhow::Result<RunningServer> {
    super::ops::metrics_handle();
    let db = Db::connect(&config.database.url, config.database.max_connections)
        .await
        .context("database")?;
    db.migrate().await.context("database migration")?;
    let trust = load_trust(&config.smartcard).context("smartcard trust")?;
    super::reload::announce(&trust, clock.now());
    let main_tls = config
        .tls
        .as_ref()
        .map(|t| tls_acceptor(t, None))
        .transpose()?;
    let card_tls = match (&config.tls, listeners.card.is_some()) {
        (Some(t), true) => Some(tls_acceptor(t, Some(&trust))?),
        _ => None,
    };
    let attestation = AttestationPolicy::load(&config.webauthn, clock.now())
        .context("webauthn attestation policy")?;
    tracing::info!(
        anchors = attestation.anchor_count(),
        "WebAuthn: AAL3 needs a trusted attestation; {} trust anchors loaded",
        attestation.anchor_count()
    );
    let provider = Arc::new(Provider::new(db, clock, config, trust, attestation));
    provider.load_keys().await.context("signing keys")?;
    let app = router(AppState {
        provider: provider.clone(),
    });
    let (shutdown, rx) = watch::channel(false);
    let main_addr = listeners.main.local_addr()?;
    let mut tasks = vec![tokio::spawn(accept_loop(
        listeners.main,
        main_tls,
        app.clone(),
        rx.clone(),
    ))];
    let card_addr = match listeners.card {
        Some(l) => {
            let addr = l.local_addr()?;
            tasks.push(tokio::spawn(accept_loop(l, card_tls, app, rx.clone())));
            Some(addr)
        }
        None => None,
    };
    tasks.push(tokio::spawn(deliver_logouts(provider.clone(), rx.clone())));
    tasks.push(tokio::spawn(housekeeping(provider.clone(), rx.clone())));
    tasks.push(tokio::spawn(super::reload::reload_card_trust(
        provider.clone(),
        rx.clone(),
    )));
    tasks.push(tokio::spawn(reload_keys_periodically(provider.clone(), rx)));
    Ok(RunningServer {
        main_addr,
        card_addr,
        provider,
        shutdown,
        tasks,
    })
}

/// Delivers back-channel logouts from the outbox: on every poll tick and whenever one is queued.
async fn deliver_logouts(provider: Arc<Provider>, mut shutdown: watch::Receiver<bool>) {
    let owner = format!("delivery-{}", uuid::Uuid::new_v4());
    let poll = Duration::from_millis(provider.config.backchannel.poll_interval_ms);
    loop {
        if let Err(e) = provider.deliver_due_logouts(&owner).await {
            tracing::warn!(error = %e, "back-channel logout delivery failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = provider.logout_wakeup.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Purges expired rows; one process per round does it (a lease in the database).
async fn housekeeping(provider: Arc<Provider>, mut shutdown: watch::Receiver<bool>) {
    let owner = format!("housekeeping-{}", uuid::Uuid::new_v4());
    let interval = Duration::from_secs(provider.config.housekeeping.interval_secs);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = provider.housekeep(&owner).await {
            tracing::warn!(error = %e, "housekeeping failed");
        }
    }
}

/// Every `RELOAD_INTERVAL_SECS`: adds keys when scheduled rotation is due (one process wins),
/// then rereads the keys (picking up keys other processes added, and retiring replaced ones).
async fn reload_keys_periodically(provider: Arc<Provider>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_secs(crate::domain::keys::RELOAD_INTERVAL_SECS.unsigned_abs());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {
                if let Err(e) = provider.rotate_keys_if_due().await {
                    tracing::warn!(error = %e, "scheduled signing-key rotation failed");
                }
                if let Err(e) = provider.reload_keys().await {
                    tracing::warn!(error = %e, "reloading signing keys failed");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let (app, tls, shutdown) = (app.clone(), tls.clone(), shutdown.clone());
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let client_certs = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|c| Arc::new(c.iter().map(|c| c.clone().into_owned()).collect()));
                    serve_connection(stream, app, ConnInfo { peer, client_certs }, shutdown).await;
                }
                None => {
                    serve_connection(
                        tcp,
                        app,
                        ConnInfo {
                            peer,
                            client_certs: None,
                        },
                        shutdown,
                    )
                    .await
                }
            }
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    app: Router,
    info: ConnInfo,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(info.clone());
        app.clone().oneshot(request)
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(10), connection).await;
        }
    }
}

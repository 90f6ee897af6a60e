//! Listeners and TLS. The main listener serves everything and never asks for a client
//! certificate. The card listener (RFC 8705-style alias) asks for one, optionally, and only
//! checks possession of its key during the handshake; whether the certificate may sign anyone
//! in is decided by the login service, so a refusal is a page and an audit record, not a broken
//! connection. Browsers therefore show the certificate picker only when the person chooses
//! smartcard sign-in, never on every page or token request.
//!
//! Both listeners hold under slow and abusive clients (`[server]`): a TLS handshake timeout, a
//! cap on open connections per listener (a new connection waits `connection_wait_ms` for a slot,
//! then is closed and counted), an HTTP/1.1 header-read timeout (hyper's), an idle timeout for
//! connections with no request in progress (HTTP/1.1 and HTTP/2, and before the protocol is
//! known), a per-request timeout, and HTTP/2 stream and header-size limits. The protocol comes
//! from ALPN under TLS, so a TLS client cannot sit in protocol detection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::ServiceExt;

use super::tls::{LiveAcceptor, LiveTls};
use super::{card_router, router, AppState};
use crate::config::{self, Config};
use crate::domain::provider::Provider;

/// What the connection knows about its peer, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The client certificate chain from the TLS handshake (card listener only).
    pub client_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
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
    /// The metrics listener, when `metrics.listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub provider: Arc<Provider>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Read by `/readyz`: set when the drain starts.
    draining: Arc<std::sync::atomic::AtomicBool>,
    /// Each listener's connection slots: all free again once every connection has ended.
    connections: Vec<Arc<ConnLimits>>,
}

impl RunningServer {
    /// The drain (SIGTERM, SIGINT): `/readyz` turns unready, and after `server.shutdown_delay_secs`
    /// the listeners stop accepting, and
    /// open connections finish their requests (new ones on them are refused) within
    /// `server.shutdown_grace_secs`; background tasks stop, handing back claimed back-channel
    /// deliveries. Returns whether every connection ended within the grace period.
    pub async fn shutdown(mut self) -> bool {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let delay = self.provider.config.server.shutdown_delay_secs;
        tokio::time::sleep(Duration::from_secs(delay)).await;
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        let grace = Duration::from_secs(self.provider.config.server.shutdown_grace_secs);
        let mut all_ended = true;
        for c in &self.connections {
            let all = u32::try_from(c.max).unwrap_or(u32::MAX);
            let ended = tokio::time::timeout(grace, c.slots.acquire_many(all)).await;
            all_ended &= matches!(ended, Ok(Ok(_)));
        }
        all_ended
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
/// Serves a ready `Provider` (see `app::start`, which builds it): the main, card and metrics
/// listeners and the background tasks, until [`RunningServer::shutdown`].
pub async fn serve(provider: Arc<Provider>, listeners: Listeners) -> anyhow::Result<RunningServer> {
    let config = &provider.config;
    let live_tls = config
        .tls
        .as_ref()
        .map(|t| LiveTls::load(t, listeners.card.is_some(), &provider))
        .transpose()?;
    let main_tls = live_tls.as_ref().map(|t| t.main.clone());
    let card_tls = live_tls.as_ref().and_then(|t| t.card.clone());
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = router(AppState {
        provider: provider.clone(),
        draining: draining.clone(),
    });
    let (shutdown, rx) = watch::channel(false);
    let main_addr = listeners.main.local_addr()?;
    let server_config = &provider.config.server;
    let mut connections = vec![Arc::new(ConnLimits::new("main", server_config))];
    let mut tasks = vec![tokio::spawn(accept_loop(
        listeners.main,
        main_tls,
        app.clone(),
        connections[0].clone(),
        rx.clone(),
    ))];
    let card_addr = match listeners.card {
        Some(l) => {
            let addr = l.local_addr()?;
            let limits = Arc::new(ConnLimits::new("card", server_config));
            connections.push(limits.clone());
            tasks.push(tokio::spawn(accept_loop(
                l,
                card_tls,
                card_router(AppState {
                    provider: provider.clone(),
                    draining: draining.clone(),
                }),
                limits,
                rx.clone(),
            )));
            Some(addr)
        }
        None => None,
    };
    tasks.push(tokio::spawn(flush_suppressed_audit(
        provider.clone(),
        rx.clone(),
    )));
    tasks.push(tokio::spawn(deliver_logouts(provider.clone(), rx.clone())));
    tasks.push(tokio::spawn(housekeeping(provider.clone(), rx.clone())));
    tasks.push(tokio::spawn(hr_scheduler(provider.clone(), rx.clone())));
    tasks.push(tokio::spawn(card_agent_sweep(provider.clone(), rx.clone())));
    tasks.push(tokio::spawn(crate::domain::audit_sink::run_audit_sink(
        provider.clone(),
        rx.clone(),
    )));
    tasks.push(tokio::spawn(super::reload::reload_on_change(
        provider.clone(),
        live_tls,
        rx.clone(),
    )));
    let metrics_addr = match provider.config.metrics.listen {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics.listen {addr}"))?;
            let bound = l.local_addr()?;
            let ops = super::ops::metrics_router(AppState {
                provider: provider.clone(),
                draining: draining.clone(),
            });
            let limits = Arc::new(ConnLimits::new("metrics", &provider.config.server));
            connections.push(limits.clone());
            tasks.push(tokio::spawn(accept_loop(l, None, ops, limits, rx.clone())));
            tracing::info!(%bound, "metrics listener (plain HTTP): keep it on a private network");
            Some(bound)
        }
        None => None,
    };
    tasks.push(tokio::spawn(reload_keys_periodically(provider.clone(), rx)));
    Ok(RunningServer {
        main_addr,
        card_addr,
        metrics_addr,
        provider,
        shutdown,
        tasks,
        draining,
        connections,
    })
}

/// Delivers back-channel logouts from the outbox: on every poll tick and whenever one is queued.
async fn deliver_logouts(provider: Arc<Provider>, mut shutdown: watch::Receiver<bool>) {
    let owner = format!("delivery-{}", uuid::Uuid::new_v4());
    let poll = Duration::from_millis(provider.config.backchannel.poll_interval_ms);
    loop {
        tokio::select! {
            r = provider.deliver_due_logouts(&owner) => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "back-channel logout delivery failed");
                }
            }
            _ = shutdown.changed() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = provider.logout_wakeup.notified() => {}
            _ = shutdown.changed() => break,
        }
    }
    // Deliveries this process claimed and did not finish go back to the queue at once, for
    // another process (or the next start) to deliver, instead of waiting for their lease.
    match provider.release_logout_claims(&owner).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(released = n, "handed back claimed back-channel deliveries"),
        Err(e) => tracing::warn!(error = %e, "could not hand back claimed deliveries"),
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

/// Every `hr.scheduler_interval_secs`: what the HR feed has due (pending events, leavers whose
/// date has come, ended assignments' sessions). Each item is claimed once across processes.
async fn hr_scheduler(provider: Arc<Provider>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_secs(provider.config.hr.scheduler_interval_secs);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        match provider.run_hr_schedule().await {
            Ok(done) if done != Default::default() => tracing::info!(?done, "HR schedule applied"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "HR schedule failed"),
        }
    }
}

/// Every `card_agent.sweep_interval_secs`: ends the card-bound sessions whose agent has gone
/// silent (`domain/card_agent.rs`). Each binding ends once across processes.
async fn card_agent_sweep(provider: Arc<Provider>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_secs(provider.config.card_agent.sweep_interval_secs);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        match provider.end_silent_agents().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "ended card-bound sessions of silent agents"),
            Err(e) => tracing::warn!(error = %e, "card agent sweep failed"),
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

/// Writes the summaries of audit events held back by `limits.failure_audit_per_minute` once
/// their minute has ended, and the rest at shutdown.
async fn flush_suppressed_audit(provider: Arc<Provider>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_secs(crate::domain::audit_limit::WINDOW_SECS.unsigned_abs());
    loop {
        let all = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = shutdown.changed() => true,
        };
        if let Err(e) = provider.flush_suppressed_audit(all).await {
            tracing::warn!(error = %e, "writing suppressed-failure audit summaries failed");
        }
        if all {
            return;
        }
    }
}

/// One listener's connection settings and its cap on open connections.
struct ConnLimits {
    listener: &'static str,
    slots: Arc<Semaphore>,
    max: usize,
    /// How long open connections get to finish when the process drains.
    grace: Duration,
    wait: Duration,
    tls_handshake: Duration,
    header_read: Duration,
    idle: Duration,
    request: Duration,
    h2_streams: u32,
    max_header_bytes: u32,
}

impl ConnLimits {
    fn new(listener: &'static str, c: &config::ServerConfig) -> ConnLimits {
        ConnLimits {
            listener,
            slots: Arc::new(Semaphore::new(c.max_connections)),
            max: c.max_connections,
            grace: Duration::from_secs(c.shutdown_grace_secs),
            wait: Duration::from_millis(c.connection_wait_ms),
            tls_handshake: Duration::from_secs(c.tls_handshake_timeout_secs),
            header_read: Duration::from_secs(c.header_read_timeout_secs),
            idle: Duration::from_secs(c.idle_timeout_secs),
            request: Duration::from_secs(c.request_timeout_secs),
            h2_streams: c.http2_max_concurrent_streams,
            max_header_bytes: c.max_header_bytes,
        }
    }

    fn closed(&self, reason: &'static str) {
        metrics::counter!("careid_connections_closed_total", "listener" => self.listener, "reason" => reason).increment(1);
    }
}

/// An open connection's slot; frees it and updates the gauge when dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
    listener: &'static str,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, listener: &'static str) -> Slot {
        metrics::gauge!("careid_connections_open", "listener" => listener).increment(1.0);
        Slot {
            _permit: permit,
            listener,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!("careid_connections_open", "listener" => self.listener).decrement(1.0);
    }
}

/// Warns about refused connections at most this often (the metric counts each one).
const REFUSAL_WARNING_INTERVAL: Duration = Duration::from_secs(10);

async fn accept_loop(
    listener: TcpListener,
    tls: Option<LiveAcceptor>,
    app: Router,
    limits: Arc<ConnLimits>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut refused_since_warning = 0u64;
    let mut last_warning: Option<Instant> = None;
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
        let permit = match limits.slots.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => tokio::time::timeout(limits.wait, limits.slots.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        };
        let Some(permit) = permit else {
            drop(tcp);
            limits.closed("connection_limit");
            refused_since_warning += 1;
            if last_warning.is_none_or(|t| t.elapsed() >= REFUSAL_WARNING_INTERVAL) {
                tracing::warn!(
                    listener = limits.listener,
                    %peer,
                    refused = refused_since_warning,
                    "connection limit reached (server.max_connections): refusing new connections"
                );
                refused_since_warning = 0;
                last_warning = Some(Instant::now());
            }
            continue;
        };
        let slot = Slot::new(permit, limits.listener);
        let _ = tcp.set_nodelay(true);
        let (app, tls, shutdown, limits) = (
            app.clone(),
            tls.as_ref().map(LiveAcceptor::current),
            shutdown.clone(),
            limits.clone(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        limits.tls_handshake,
                        acceptor.accept(tcp),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(_)) => return,
                        Err(_) => {
                            limits.closed("tls_handshake_timeout");
                            return;
                        }
                    };
                    let session = stream.get_ref().1;
                    let client_certs = session
                        .peer_certificates()
                        .map(|c| Arc::new(c.iter().map(|c| c.clone().into_owned()).collect()));
                    let protocol = match session.alpn_protocol() {
                        Some(b"h2") => Protocol::Http2,
                        _ => Protocol::Http1,
                    };
                    let info = ConnInfo { peer, client_certs };
                    serve_connection(stream, protocol, app, info, &limits, shutdown).await;
                }
                None => {
                    let info = ConnInfo {
                        peer,
                        client_certs: None,
                    };
                    serve_connection(tcp, Protocol::Detect, app, info, &limits, shutdown).await
                }
            }
        });
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    /// Plain TCP (behind a proxy): from the first bytes.
    Detect,
}

/// Requests in progress on a connection and when the last one ended.
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// When the connection becomes idle for too long, if nothing happens before.
    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::SeqCst)) + idle
    }
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let elapsed = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.store(elapsed, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn request_timeout_response() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        http::StatusCode::REQUEST_TIMEOUT,
        "the request took too long (server.request_timeout_secs)\n",
    )
        .into_response()
}

async fn serve_connection<S>(
    stream: S,
    protocol: Protocol,
    app: Router,
    info: ConnInfo,
    limits: &ConnLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        start: Instant::now(),
        in_flight: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
    });
    let request_timeout = limits.request;
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let in_flight = activity.begin();
            request.extensions_mut().insert(info.clone());
            let response = app.clone().oneshot(request);
            async move {
                let response = match tokio::time::timeout(request_timeout, response).await {
                    Ok(r) => r,
                    Err(_) => {
                        metrics::counter!("careid_request_timeouts_total").increment(1);
                        Ok(request_timeout_response())
                    }
                };
                drop(in_flight);
                response
            }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(limits.max_header_bytes as usize);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_streams)
        .max_header_list_size(limits.max_header_bytes);
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_only(),
        Protocol::Detect => builder,
    };
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut next_check = activity.idle_deadline(limits.idle);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    let timed_out = e
                        .downcast_ref::<hyper::Error>()
                        .is_some_and(hyper::Error::is_timeout);
                    if timed_out {
                        limits.closed("header_read_timeout");
                    }
                }
                return;
            }
            _ = shutdown.changed() => {
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(limits.grace, connection).await;
                return;
            }
            _ = tokio::time::sleep_until(next_check) => {
                if activity.in_flight.load(Ordering::SeqCst) > 0 {
                    // Busy (the request timeout bounds each request): look again soon.
                    next_check = Instant::now() + limits.idle.min(Duration::from_secs(1));
                    continue;
                }
                let idle_at = activity.idle_deadline(limits.idle);
                if idle_at > Instant::now() {
                    next_check = idle_at;
                    continue;
                }
                limits.closed("idle_timeout");
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
                return;
            }
        }
    }
}

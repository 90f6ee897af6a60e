//! Trust and certificates without a restart: the smartcard CA and CRL files and the server's TLS
//! certificate and key are read again on SIGHUP and when any of them changes (polled every
//! `smartcard.reload_poll_secs`). A new trust replaces the old one whole (and forgets the old
//! one's remembered verdicts); a new certificate serves new connections ([`super::tls`]). A
//! file that does not load is refused with a log line and a metric, and what is in use stays.
//! Gauges say how fresh the CRLs are and when the certificate expires, so an alarm can fire
//! before either goes stale (a stale CRL refuses card sign-ins).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::tls::LiveTls;
use crate::clock::UnixTime;
use crate::domain::provider::Provider;
use crate::domain::smartcard::{load_trust, CardTrust};

/// Logs what a newly loaded trust checks, and sets the freshness gauges.
pub fn announce(trust: &CardTrust, now: UnixTime) {
    if trust.is_empty() {
        tracing::warn!(
            "no smartcard CA configured: smartcard sign-in will refuse every certificate"
        );
    } else if !trust.checks_revocation() {
        tracing::warn!(
            "smartcard sign-in runs WITHOUT revocation checking: configure smartcard.crl_files (a CRL from every CA in the path)"
        );
    }
    metrics::gauge!("careid_smartcard_crl_checking")
        .set(f64::from(u8::from(trust.checks_revocation())));
    if let Some(next) = trust.crls_next_update() {
        metrics::gauge!("careid_smartcard_crl_next_update_timestamp_seconds").set(next as f64);
        if next <= now {
            tracing::error!(next_update = next, "a smartcard CRL is past its nextUpdate: card sign-in is refused until a fresh CRL is installed");
        }
    }
}

/// Modification times and sizes: a change in any is a reason to reload.
fn stamps<'a>(
    files: impl Iterator<Item = &'a std::path::PathBuf>,
) -> Vec<Option<(SystemTime, u64)>> {
    files
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

fn trust_stamps(provider: &Provider) -> Vec<Option<(SystemTime, u64)>> {
    let c = &provider.config.smartcard;
    stamps(c.ca_files.iter().chain(&c.crl_files))
}

fn tls_stamps(tls: Option<&LiveTls>) -> Vec<Option<(SystemTime, u64)>> {
    tls.map(|t| stamps(t.files().iter())).unwrap_or_default()
}

/// Loads the server certificate and key again; on failure keeps the ones in use.
pub fn reload_tls(provider: &Provider, tls: &LiveTls, why: &str) -> bool {
    match tls.reload(provider) {
        Ok(()) => {
            metrics::counter!("careid_tls_reloads_total", "outcome" => "success").increment(1);
            tracing::info!(why, "TLS certificate and key reloaded");
            true
        }
        Err(e) => {
            metrics::counter!("careid_tls_reloads_total", "outcome" => "refused").increment(1);
            tracing::error!(
                why,
                error = format!("{e:#}"),
                "TLS certificate NOT reloaded: the one in use stays"
            );
            false
        }
    }
}

/// Loads the configured trust again; on failure keeps the one in use. True if replaced.
pub fn reload(provider: &Provider, why: &str) -> bool {
    match load_trust(&provider.config.smartcard) {
        Ok(trust) => {
            announce(&trust, provider.now());
            provider.card_trust.replace(trust);
            metrics::counter!("careid_smartcard_trust_reloads_total", "outcome" => "success")
                .increment(1);
            tracing::info!(why, "smartcard CAs and CRLs reloaded");
            true
        }
        Err(e) => {
            metrics::counter!("careid_smartcard_trust_reloads_total", "outcome" => "refused")
                .increment(1);
            tracing::error!(why, error = %e, "smartcard trust NOT reloaded: the files in use stay in force");
            false
        }
    }
}

/// Runs until shutdown: reloads on SIGHUP and on file changes. A new smartcard trust also
/// rebuilds the card listener's TLS, whose certificate request names the trusted CAs.
pub async fn reload_on_change(
    provider: Arc<Provider>,
    tls: Option<LiveTls>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let poll = provider.config.smartcard.reload_poll_secs;
    let (mut seen_trust, mut seen_tls) = (trust_stamps(&provider), tls_stamps(tls.as_ref()));
    loop {
        let tick = async {
            if poll == 0 {
                std::future::pending::<()>().await
            }
            tokio::time::sleep(Duration::from_secs(poll)).await
        };
        let hup = async {
            match hangup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let (trust_changed, tls_changed, why) = tokio::select! {
            _ = shutdown.changed() => return,
            _ = hup => (true, true, "sighup"),
            _ = tick => (
                trust_stamps(&provider) != seen_trust,
                tls_stamps(tls.as_ref()) != seen_tls,
                "files_changed",
            ),
        };
        if trust_changed {
            seen_trust = trust_stamps(&provider);
        }
        if tls_changed {
            seen_tls = tls_stamps(tls.as_ref());
        }
        let trust_reloaded = trust_changed && reload(&provider, why);
        if let Some(tls) = &tls {
            if tls_changed || (trust_reloaded && tls.card.is_some()) {
                reload_tls(&provider, tls, why);
            }
        }
    }
}

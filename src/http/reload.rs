//! Smartcard trust without a restart: the CA and CRL files are read again on SIGHUP and when
//! any of them changes (polled every `smartcard.reload_poll_secs`). A new trust replaces the old
//! one whole (and forgets the old one's remembered verdicts); a file that does not load is
//! refused with a log line and a metric, and the trust in use stays. Gauges say how fresh the
//! CRLs are, so an alarm can fire before they go stale (a stale CRL refuses card sign-ins).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

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

/// The files' modification times and sizes: a change in any is a reason to reload.
fn stamps(provider: &Provider) -> Vec<Option<(SystemTime, u64)>> {
    let c = &provider.config.smartcard;
    c.ca_files
        .iter()
        .chain(&c.crl_files)
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
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

/// Runs until shutdown: reloads on SIGHUP and on file changes.
pub async fn reload_card_trust(provider: Arc<Provider>, mut shutdown: watch::Receiver<bool>) {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let poll = provider.config.smartcard.reload_poll_secs;
    let mut seen = stamps(&provider);
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
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = hup => {
                seen = stamps(&provider);
                reload(&provider, "sighup");
            }
            _ = tick => {
                let now = stamps(&provider);
                if now != seen {
                    seen = now;
                    reload(&provider, "files_changed");
                }
            }
        }
    }
}

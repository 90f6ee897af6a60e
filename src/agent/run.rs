//! What `careid-agent login` does: read the card, sign careid's challenge after the PIN, then
//! watch the reader, sending heartbeats, until the card leaves (reported, retried until careid
//! hears it) or the sign-in ends. Events go to standard output as JSON lines for automation;
//! words for people go to standard error.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use tokio::sync::mpsc;

use super::client::{AgentClient, ClientError};
use super::piv::{self, PivError};
use super::reader::{self, PcscCard, ReaderEvent, Watch};
use crate::model::card_agent::{to_be_signed, AgentLoginRequest};

#[derive(Debug, thiserror::Error)]
pub enum AgentRunError {
    #[error("{0}")]
    Card(#[from] PivError),
    #[error("{0}")]
    Server(#[from] ClientError),
    #[error("{0}")]
    Other(String),
}

/// Where the PIN comes from: a prompt on the terminal, or a line on a file descriptor.
pub enum PinSource {
    Prompt,
    Fd(i32),
}

impl PinSource {
    fn read(&self, client_name: &str, issuer: &str) -> Result<String, AgentRunError> {
        match self {
            PinSource::Prompt => rpassword::prompt_password(format!(
                "Signing in to {client_name} at {issuer}.\nSmartcard passcode (PIN): "
            ))
            .map_err(|e| AgentRunError::Other(format!("reading the PIN: {e}"))),
            PinSource::Fd(fd) => read_line_from_fd(*fd),
        }
    }
}

fn read_line_from_fd(fd: i32) -> Result<String, AgentRunError> {
    use std::io::BufRead;
    // The descriptor the caller handed over for the PIN (Linux: /dev/fd), read up to a newline.
    let file = std::fs::File::open(format!("/dev/fd/{fd}"))
        .map_err(|e| AgentRunError::Other(format!("the PIN's file descriptor {fd}: {e}")))?;
    let mut line = String::new();
    std::io::BufReader::new(file)
        .read_line(&mut line)
        .map_err(|e| AgentRunError::Other(format!("reading the PIN from fd {fd}: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn event(json: serde_json::Value) {
    println!("{json}");
}

/// What one card signed: the certificate it holds and its signature over the challenge.
struct Signed {
    certificate: Vec<u8>,
    signature: Vec<u8>,
}

/// On the card in `reader`: select PIV, read the certificate, verify the PIN, sign `message`.
/// The card is reset afterwards (the PIN does not stay verified).
fn sign_with_card(reader: &str, pin: &str, message: &[u8]) -> Result<Signed, PivError> {
    let ctx = reader::context()?;
    let mut card = PcscCard::connect(&ctx, reader)?;
    piv::select(&mut card)?;
    let certificate = piv::read_auth_certificate(&mut card)?;
    let algorithm = piv::key_algorithm(&certificate)?;
    piv::verify_pin(&mut card, pin)?;
    let signature = piv::sign(&mut card, algorithm, message)?;
    Ok(Signed {
        certificate,
        signature,
    })
}

/// Signs in for `code` with the card in `reader` (or the first reader with a card), then
/// watches until the card leaves. Returns when the sign-in has ended.
pub async fn login(
    client: &AgentClient,
    code: &str,
    reader: Option<String>,
    pin: PinSource,
    intermediates: Vec<Vec<u8>>,
) -> Result<(), AgentRunError> {
    let reader = tokio::task::spawn_blocking(move || {
        let ctx = reader::context()?;
        reader::wait_for_card(&ctx, reader.as_deref(), Duration::from_secs(30))
    })
    .await
    .map_err(|e| AgentRunError::Other(e.to_string()))??;
    // The watch starts before the card signs: a card swapped during sign-in counts as gone.
    let watch = {
        let r = reader.clone();
        tokio::task::spawn_blocking(move || Watch::new(&r))
            .await
            .map_err(|e| AgentRunError::Other(e.to_string()))??
    };
    let challenge = client.challenge(code).await?;
    eprintln!(
        "careid-agent: signing in to {} with the card in {reader}",
        challenge.client_name
    );
    let pin = pin.read(&challenge.client_name, client.issuer())?;
    let message = to_be_signed(client.issuer(), &challenge.challenge_id, &challenge.nonce);
    let signed = {
        let r = reader.clone();
        tokio::task::spawn_blocking(move || sign_with_card(&r, &pin, &message))
            .await
            .map_err(|e| AgentRunError::Other(e.to_string()))??
    };
    let mut certificates = vec![STANDARD.encode(&signed.certificate)];
    certificates.extend(intermediates.iter().map(|c| STANDARD.encode(c)));
    let signed_in = client
        .login(&AgentLoginRequest {
            challenge_id: challenge.challenge_id,
            certificates,
            signature: URL_SAFE_NO_PAD.encode(&signed.signature),
        })
        .await?;
    event(serde_json::json!({
        "event": "signed_in",
        "binding_id": signed_in.binding_id,
        "client_name": challenge.client_name,
        "reader": reader,
    }));
    eprintln!("careid-agent: signed in; taking the card out of {reader} signs you out");
    watch_until_ended(
        client,
        watch,
        &signed_in.agent_token,
        signed_in.heartbeat_interval_secs,
    )
    .await
}

/// Heartbeats every `interval` seconds while the card stays; the removal reported the moment
/// the reader sees it.
async fn watch_until_ended(
    client: &AgentClient,
    mut watch: Watch,
    token: &str,
    interval: i64,
) -> Result<(), AgentRunError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || loop {
        let e = watch.next(Duration::from_millis(500));
        let stop = !matches!(e, Ok(ReaderEvent::Unchanged));
        if tx.send(e).is_err() || stop {
            return;
        }
    });
    let period = Duration::from_secs(interval.max(1) as u64);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            e = rx.recv() => match e {
                Some(Ok(ReaderEvent::Unchanged)) => {}
                Some(Ok(ReaderEvent::Removed)) | None => break,
                Some(Err(e)) => {
                    eprintln!("careid-agent: the reader failed ({e}); treating the card as gone");
                    break;
                }
            },
            _ = beat.tick() => match client.heartbeat(token).await {
                Ok(s) if !s.active => {
                    event(serde_json::json!({ "event": "ended" }));
                    eprintln!("careid-agent: the sign-in has ended");
                    return Ok(());
                }
                Ok(_) => {}
                Err(ClientError::Unreachable(why)) => eprintln!("careid-agent: heartbeat failed ({why})"),
                Err(e) => return Err(e.into()),
            },
        }
    }
    event(serde_json::json!({ "event": "card_removed" }));
    match client.removed_until_delivered(token).await {
        Ok(_) | Err(ClientError::Refused { .. }) => {
            event(serde_json::json!({ "event": "signed_out" }));
            eprintln!("careid-agent: card removed; signed out");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

//! Card readers through PC/SC (`pcscd`): list readers, wait for a card, talk to it, and watch
//! it leave. Blocking calls: the agent runs them on their own threads.

use std::ffi::{CStr, CString};
use std::time::Duration;

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};

use super::piv::{PivError, Transport};

fn reader_error(e: pcsc::Error) -> PivError {
    PivError::Reader(e.to_string())
}

pub fn context() -> Result<Context, PivError> {
    Context::establish(Scope::User).map_err(|e| {
        PivError::Reader(format!(
            "cannot reach pcscd ({e}); is the pcscd service running?"
        ))
    })
}

/// The readers pcscd knows, with whether a card is in each.
pub fn readers(ctx: &Context) -> Result<Vec<(String, bool)>, PivError> {
    let names = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(vec![]),
        Err(e) => return Err(reader_error(e)),
    };
    let mut states: Vec<ReaderState> = names
        .iter()
        .map(|n| ReaderState::new(n.clone(), State::UNAWARE))
        .collect();
    if !states.is_empty() {
        ctx.get_status_change(Duration::from_millis(0), &mut states)
            .map_err(reader_error)?;
    }
    Ok(states
        .iter()
        .map(|s| {
            (
                s.name().to_string_lossy().into_owned(),
                s.event_state().contains(State::PRESENT),
            )
        })
        .collect())
}

/// Waits up to `timeout` for a card in `reader` (any reader when None); returns the reader.
pub fn wait_for_card(
    ctx: &Context,
    reader: Option<&str>,
    timeout: Duration,
) -> Result<String, PivError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let found = readers(ctx)?
            .into_iter()
            .find(|(name, present)| *present && reader.is_none_or(|r| r == name));
        if let Some((name, _)) = found {
            return Ok(name);
        }
        if std::time::Instant::now() >= deadline {
            return Err(PivError::Reader(match reader {
                Some(r) => format!("no card in reader {r}"),
                None => "no card in any reader".into(),
            }));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A connection to the card in a reader. Dropping it resets the card, so the PIN verified
/// through it does not stay verified for another program.
pub struct PcscCard {
    card: Option<pcsc::Card>,
}

impl PcscCard {
    pub fn connect(ctx: &Context, reader: &str) -> Result<PcscCard, PivError> {
        let name = CString::new(reader).map_err(|_| PivError::Reader("reader name".into()))?;
        let card = ctx
            .connect(&name, ShareMode::Shared, Protocols::ANY)
            .map_err(reader_error)?;
        Ok(PcscCard { card: Some(card) })
    }
}

impl Drop for PcscCard {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(Disposition::ResetCard);
        }
    }
}

impl Transport for PcscCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, PivError> {
        let card = self
            .card
            .as_ref()
            .ok_or(PivError::Reader("disconnected".into()))?;
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
        card.transmit(apdu, &mut buf)
            .map(<[u8]>::to_vec)
            .map_err(reader_error)
    }
}

/// What happened in a reader while it was watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderEvent {
    /// Nothing within the wait.
    Unchanged,
    /// The card that was there has left (or was swapped for another).
    Removed,
}

/// Watches the card in one reader. The first state read is the card that signed.
pub struct Watch {
    ctx: Context,
    state: ReaderState,
}

impl Watch {
    pub fn new(reader: &str) -> Result<Watch, PivError> {
        let ctx = context()?;
        let name = CString::new(reader).map_err(|_| PivError::Reader("reader name".into()))?;
        let mut states = [ReaderState::new(name, State::UNAWARE)];
        ctx.get_status_change(Duration::from_millis(0), &mut states)
            .map_err(reader_error)?;
        let [mut state] = states;
        state.sync_current_state();
        Ok(Watch { ctx, state })
    }

    pub fn reader(&self) -> &CStr {
        self.state.name()
    }

    /// Waits up to `timeout` for the reader to change. A card taken out, a reader unplugged, or
    /// a different card (another ATR, or the card's event counter moving past an
    /// out-and-in) all count as removal.
    pub fn next(&mut self, timeout: Duration) -> Result<ReaderEvent, PivError> {
        let before_count = self.state.event_count();
        let before_atr = self.state.atr().to_vec();
        match self
            .ctx
            .get_status_change(timeout, std::slice::from_mut(&mut self.state))
        {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => return Ok(ReaderEvent::Unchanged),
            Err(pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable) => {
                return Ok(ReaderEvent::Removed)
            }
            Err(e) => return Err(reader_error(e)),
        }
        let now = self.state.event_state();
        // While a card stays in, the reader's event counter does not move: a new count means
        // it went out (and maybe another came in).
        let gone = !now.contains(State::PRESENT)
            || now.intersects(State::UNKNOWN | State::UNAVAILABLE)
            || self.state.event_count() != before_count
            || self.state.atr() != before_atr.as_slice();
        self.state.sync_current_state();
        Ok(if gone {
            ReaderEvent::Removed
        } else {
            ReaderEvent::Unchanged
        })
    }
}

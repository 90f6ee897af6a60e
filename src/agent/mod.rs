//! `careid-agent`, the smartcard agent, and the virtual card its tests use (`docs/agent.md`).
//! It is a client of careid: it imports nothing of the server but the protocol's messages
//! (`model::card_agent`).
//!
//! - [`apdu`]: ISO 7816-4 command and response APDUs, BER-TLV.
//! - [`piv`]: the PIV commands (select, read the certificate, verify the PIN, sign).
//! - [`vcard`]: a virtual PIV card served to `vpcd`, for tests and demos.
//! - [`client`]: the agent's calls to careid.
//! - `reader` (feature `card-agent`): PC/SC through `pcscd`, and watching for removal.
//! - `run` (feature `card-agent`): `careid-agent login`, from code to sign-out.

pub mod apdu;
pub mod client;
pub mod piv;
#[cfg(feature = "card-agent")]
pub mod reader;
#[cfg(feature = "card-agent")]
pub mod run;
pub mod vcard;

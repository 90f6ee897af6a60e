//! The records that cross layers: what the domain decides about, the store keeps, and the HTTP
//! layer shows. Plain data with the small predicates that belong to it (a session is usable, an
//! authenticator is active, a client allows a scope). This module imports nothing from `domain`,
//! `store` or `http`; they all import it (`tests/it/layering.rs` is the check, and
//! `docs/ARCHITECTURE.md` the picture).

pub mod access_request;
pub mod assurance;
pub mod audit;
pub mod card_agent;
pub mod client;
pub mod console;
pub mod grant;
pub mod hr;
pub mod identity;
pub mod keys;
pub mod onboarding;
pub mod ra;
pub mod rbac;
pub mod session;
pub mod webauthn;

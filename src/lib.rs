//! careid: an OpenID Connect provider for health and care staff.
//!
//! Layers, one way: [`http`] (axum handlers, pages, TLS listeners) → [`domain`] (the rules: OIDC,
//! assurance, smartcards, sessions, RA) → [`store`] (SQLite or PostgreSQL) → [`model`] (the
//! records they share). [`config`] holds the one typed configuration; [`clock`] the time source
//! every rule is given. `tests/it/layering.rs` fails when an import points the other way.
//! [`demo`] (`serve --demo` and its PKI) sits outside the layers: only `main` and the tests use
//! it.

pub mod agent;
pub mod app;
pub mod clock;
pub mod config;
pub mod demo;
/// The development certificate authority: the demo's, the tests', and the test identities' cards
/// (`domain::pki`).
pub use domain::pki;
pub mod domain;
pub mod http;
pub mod model;
pub mod store;
pub mod telemetry;

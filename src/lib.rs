//! careid: an OpenID Connect provider for health and care staff.
//!
//! Layers, one way: [`http`] (axum handlers, pages, TLS listeners) → [`domain`] (the rules: OIDC,
//! assurance, smartcards, sessions, RA) → [`store`] (SQLite or PostgreSQL) → [`model`] (the
//! records they share). [`config`] holds the one typed configuration; [`clock`] the time source
//! every rule is given. `tests/it/layering.rs` fails when an import points the other way.

pub mod app;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod model;
pub mod pki;
pub mod store;

//! careid: an OpenID Connect provider for health and care staff.
//!
//! Layers: [`http`] (axum handlers, pages, TLS listeners) → [`domain`] (the rules: OIDC,
//! assurance, smartcards, sessions) → [`store`] (SQLite or PostgreSQL). [`config`] holds the one
//! typed configuration; [`clock`] the time source every rule is given.

pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod pki;
pub mod store;

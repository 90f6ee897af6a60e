//! The one integration-test binary: every module here starts real careid servers (TLS, a fresh
//! database per test) through the shared fixtures in `helpers`. Set TEST_DATABASE_URL to a
//! postgres:// URL to run the whole suite against PostgreSQL instead of SQLite.

mod helpers;

mod abuse;
mod admin;
mod audit;
mod audit_sink;
mod authorize_errors;
mod backup_and_rekey;
mod browser;
mod card_agent;
mod cdp;
mod cis2_rps;
mod cli;
mod client_auth;
mod console;
mod database;
mod drain;
mod faults;
mod flow_binding;
mod hr;
mod instances;
mod keys;
mod layering;
mod lifecycle;
mod login_flow;
mod onboarding;
mod ops;
mod passkeys_browser;
mod proxies;
mod roles;
mod smartcard;
mod telemetry;
mod terms;
mod tls_reload;
mod upgrade;
mod webauthn;

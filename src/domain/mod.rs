//! The rules of careid: OpenID Connect, assurance, smartcards, sessions, clients. Nothing here
//! knows about HTTP or SQL; services take what they need from [`provider::Provider`].

pub mod audit_limit;
pub mod audit_sink;
pub mod authorize;
pub mod backchannel;
pub mod card_agent;
pub mod claims;
pub mod client;
pub mod client_auth;
pub mod console;
pub mod grants;
pub mod hr;
pub mod keys;
pub mod login;
pub mod logout;
pub mod onboarding;
pub mod outbound;
pub mod pki;
pub mod provider;
pub mod ra;
pub mod rbac;
pub mod registry;
pub mod reports;
pub mod request_origin;
pub mod resource;
pub mod secrets;
pub mod smartcard;
pub mod terms;
pub mod token;
pub mod webauthn;

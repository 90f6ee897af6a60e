//! Relying parties (clients): their registered metadata under RFC 7591 names, and the rules for
//! registering one (redirect URIs, authentication methods, keys, PKCE policy).

use super::secrets;
use crate::clock::UnixTime;
pub use crate::model::client::{
    AuthMethod, Client, ClientMetadata, SigningAlg, Stage, ADMIN_SCOPE, HR_FEED_SCOPE,
};

/// Algorithms accepted for `private_key_jwt` client assertions (CIS2 RPs use RS512 or RS256).
pub const ASSERTION_ALGS: [&str; 4] = ["RS256", "RS512", "PS256", "ES256"];

pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// Every scope careid knows (CIS2's, `../shared/reference/cis2.md` §5).
pub const SCOPES: [&str; 11] = [
    "openid",
    "profile",
    "email",
    "nhsperson",
    "associatedorgs",
    "nationalrbacaccess",
    "professionalmemberships",
    "organisationalmemberships",
    "selectedrole",
    "changedrole",
    "offline_access",
];

/// Scopes about a user (CIS2's and the admin scope): never granted to a client acting for
/// itself (client credentials).
pub fn is_user_scope(scope: &str) -> bool {
    SCOPES.contains(&scope) || scope == ADMIN_SCOPE
}

/// A client's own API scope (RFC 6749 scope-token, kept simple): lower-case letters, digits
/// and `. _ : / -`, starting with a letter.
fn is_api_scope(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._:/-".contains(&b))
}

/// What an operator asks for when registering a client.
#[derive(Debug, Clone, Default)]
pub struct ClientRequest {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub auth_method: Option<String>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub id_token_signing_alg: Option<String>,
    pub token_endpoint_auth_signing_alg: Option<String>,
    pub allow_missing_pkce: bool,
    pub refresh_token_idle_ttl: Option<i64>,
    pub refresh_token_absolute_ttl: Option<i64>,
    /// Register an admin client: it is granted [`ADMIN_SCOPE`] and must use PKCE.
    pub admin: bool,
    /// Register an HR feed for these organisations: client credentials only, with
    /// [`HR_FEED_SCOPE`]; it needs no redirect URI.
    pub hr_feed_orgs: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RegistrationError {
    #[error("invalid_redirect_uri: {0}")]
    RedirectUri(String),
    #[error("invalid_client_metadata: {0}")]
    Metadata(String),
}

/// A newly registered client and its secret, which is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client: Client,
    pub secret: Option<String>,
}

impl NewClient {
    /// The RFC 7591 registration response: the metadata plus `client_secret` when there is one.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.client.metadata).unwrap_or_default();
        if let (Some(secret), Some(obj)) = (&self.secret, v.as_object_mut()) {
            obj.insert("client_secret".into(), secret.clone().into());
            obj.insert("client_secret_expires_at".into(), 0.into());
        }
        v
    }
}

/// Applies the registration rules and generates the client id (`<12 digits>.apps.national`, the
/// CIS2 shape) and, for secret methods, a 256-bit secret.
pub fn register(req: ClientRequest, now: UnixTime) -> Result<NewClient, RegistrationError> {
    let meta_err = |m: &str| RegistrationError::Metadata(m.to_string());
    if req.client_name.trim().is_empty() {
        return Err(meta_err("client_name is required"));
    }
    let hr_feed = !req.hr_feed_orgs.is_empty();
    if hr_feed {
        check_hr_feed(&req).map_err(|m| meta_err(&m))?;
    }
    let signs_users_in = !hr_feed
        && (req.grant_types.is_empty()
            || req.grant_types.iter().any(|g| g == "authorization_code"));
    if req.redirect_uris.is_empty() && signs_users_in {
        return Err(RegistrationError::RedirectUri(
            "at least one redirect URI is required".into(),
        ));
    }
    for uri in &req.redirect_uris {
        check_redirect_uri(uri).map_err(RegistrationError::RedirectUri)?;
    }
    for uri in &req.post_logout_redirect_uris {
        check_redirect_uri(uri).map_err(|e| meta_err(&format!("post_logout_redirect_uri: {e}")))?;
    }
    if let Some(uri) = &req.backchannel_logout_uri {
        check_redirect_uri(uri).map_err(|e| meta_err(&format!("backchannel_logout_uri: {e}")))?;
    }
    let method = match req.auth_method.as_deref() {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => AuthMethod::parse(m)
            .ok_or_else(|| meta_err(&format!("unknown token_endpoint_auth_method {m}")))?,
    };
    if method == AuthMethod::PrivateKeyJwt && req.jwks.is_none() && req.jwks_uri.is_none() {
        return Err(meta_err("private_key_jwt needs jwks or jwks_uri"));
    }
    if method != AuthMethod::PrivateKeyJwt && (req.jwks.is_some() || req.jwks_uri.is_some()) {
        return Err(meta_err("jwks and jwks_uri are only for private_key_jwt"));
    }
    if req.jwks.is_some() && req.jwks_uri.is_some() {
        return Err(meta_err("give jwks or jwks_uri, not both"));
    }
    if let Some(uri) = &req.jwks_uri {
        check_redirect_uri(uri).map_err(|e| meta_err(&format!("jwks_uri: {e}")))?;
    }
    if let Some(jwks) = &req.jwks {
        let keys = jwks
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| meta_err("jwks must be a JWK set with \"keys\""))?;
        for key in keys {
            let map = key
                .as_object()
                .cloned()
                .ok_or_else(|| meta_err("jwks: each key must be an object"))?;
            let jwk =
                josekit::jwk::Jwk::from_map(map).map_err(|e| meta_err(&format!("jwks: {e}")))?;
            if jwk.key_type() != "RSA" && jwk.key_type() != "EC" {
                return Err(meta_err("jwks: only RSA and EC keys are accepted"));
            }
            if jwk.parameter("d").is_some() {
                return Err(meta_err("jwks must hold public keys only"));
            }
        }
    }
    if let Some(alg) = &req.token_endpoint_auth_signing_alg {
        if !ASSERTION_ALGS.contains(&alg.as_str()) {
            return Err(meta_err(&format!(
                "token_endpoint_auth_signing_alg must be one of {}",
                ASSERTION_ALGS.join(", ")
            )));
        }
    }
    if req.allow_missing_pkce && method == AuthMethod::None {
        return Err(meta_err("a public client must use PKCE"));
    }
    let grant_types = if hr_feed {
        vec!["client_credentials".to_string()]
    } else if req.grant_types.is_empty() {
        vec!["authorization_code".to_string()]
    } else {
        req.grant_types.clone()
    };
    for g in &grant_types {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(meta_err(&format!("unsupported grant type {g}")));
        }
    }
    if method == AuthMethod::None && grant_types.iter().any(|g| g == "client_credentials") {
        return Err(meta_err("a public client cannot use client_credentials"));
    }
    for ttl in [req.refresh_token_idle_ttl, req.refresh_token_absolute_ttl]
        .into_iter()
        .flatten()
    {
        if ttl <= 0 {
            return Err(meta_err("refresh token lifetimes must be positive"));
        }
    }
    if req.admin && req.allow_missing_pkce {
        return Err(meta_err("an admin client must use PKCE"));
    }
    if !hr_feed && req.scopes.iter().any(|s| s == HR_FEED_SCOPE) {
        return Err(meta_err(&format!(
            "{HR_FEED_SCOPE} is granted only to HR feed clients"
        )));
    }
    if !req.admin && req.scopes.iter().any(|s| s == ADMIN_SCOPE) {
        return Err(meta_err(&format!(
            "{ADMIN_SCOPE} is granted only to admin clients"
        )));
    }
    let mut scopes = if hr_feed {
        vec![HR_FEED_SCOPE.to_string()]
    } else if req.scopes.is_empty() {
        vec![
            "openid",
            "profile",
            "email",
            "nhsperson",
            "associatedorgs",
            "nationalrbacaccess",
            "professionalmemberships",
            "organisationalmemberships",
            "selectedrole",
            "changedrole",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    } else {
        req.scopes.clone()
    };
    if req.admin && !scopes.iter().any(|s| s == ADMIN_SCOPE) {
        scopes.push(ADMIN_SCOPE.into());
    }
    for s in &scopes {
        if !is_user_scope(s) && !is_api_scope(s) {
            return Err(meta_err(&format!(
                "{s} is neither a careid scope nor a valid API scope name"
            )));
        }
    }
    let alg = match req.id_token_signing_alg.as_deref() {
        None => SigningAlg::RS256,
        Some(a) => SigningAlg::parse(a).ok_or_else(|| {
            meta_err(&format!(
                "id_token_signed_response_alg must be RS256, PS256 or ES256, not {a}"
            ))
        })?,
    };
    let secret = method.uses_secret().then(secrets::random_token);
    let metadata = ClientMetadata {
        client_id: format!("{}.apps.national", secrets::random_digits(12)),
        client_name: req.client_name.trim().to_string(),
        client_id_issued_at: now,
        redirect_uris: req.redirect_uris,
        post_logout_redirect_uris: req.post_logout_redirect_uris,
        backchannel_logout_uri: req.backchannel_logout_uri,
        token_endpoint_auth_method: method,
        token_endpoint_auth_signing_alg: req.token_endpoint_auth_signing_alg,
        jwks_uri: req.jwks_uri,
        jwks: req.jwks,
        grant_types,
        response_types: vec!["code".into()],
        scope: scopes.join(" "),
        id_token_signed_response_alg: alg,
        require_pkce: !req.allow_missing_pkce,
        refresh_token_idle_ttl: req.refresh_token_idle_ttl,
        refresh_token_absolute_ttl: req.refresh_token_absolute_ttl,
        careid_admin: req.admin,
        careid_hr_feed_orgs: req
            .hr_feed_orgs
            .iter()
            .map(|o| o.trim().to_uppercase())
            .collect(),
        careid_stage: None,
    };
    let client = Client {
        metadata,
        secret_digest: secret.as_deref().map(secrets::digest),
        previous_secret: None,
        active: true,
    };
    Ok(NewClient { client, secret })
}

/// An HR feed is a machine: confidential, client credentials only, no user scopes, no
/// redirect URIs, and organisations given as ODS codes.
fn check_hr_feed(req: &ClientRequest) -> Result<(), String> {
    if req.auth_method.as_deref() == Some("none") {
        return Err("an HR feed must authenticate (private_key_jwt or a client secret)".into());
    }
    if req.admin {
        return Err("an HR feed cannot also be an admin client".into());
    }
    if req.grant_types.iter().any(|g| g != "client_credentials") {
        return Err("an HR feed uses client_credentials only".into());
    }
    if !req.redirect_uris.is_empty() || req.scopes.iter().any(|s| s != HR_FEED_SCOPE) {
        return Err(format!(
            "an HR feed has no redirect URIs and no scope but {HR_FEED_SCOPE}"
        ));
    }
    match req.hr_feed_orgs.iter().find(|o| {
        let o = o.trim();
        !(3..=10).contains(&o.len()) || !o.chars().all(|c| c.is_ascii_alphanumeric())
    }) {
        Some(bad) => Err(format!("{bad:?} is not an ODS code")),
        None => Ok(()),
    }
}

/// Redirect URIs must be absolute `https` URLs without a fragment, except loopback `http`
/// (`127.0.0.1`, `[::1]`, `localhost`) for development clients, as RFC 8252 allows.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("{uri} is not a URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("{uri} must not have a fragment"));
    }
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) => Ok(()),
        _ => Err(format!(
            "{uri} must be https (or http on a loopback address)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ClientRequest {
        ClientRequest {
            client_name: "EPR".into(),
            redirect_uris: vec!["https://epr.example.org/cb".into()],
            ..Default::default()
        }
    }

    #[test]
    fn registers_confidential_client_with_secret_and_cis2_shaped_id() {
        let new = register(request(), 1000).unwrap();
        let id = &new.client.metadata.client_id;
        assert!(
            id.ends_with(".apps.national") && id[..12].chars().all(|c| c.is_ascii_digit()),
            "{id}"
        );
        let secret = new.secret.as_deref().unwrap();
        assert!(secrets::matches_digest(
            secret,
            new.client.secret_digest.as_deref().unwrap()
        ));
        assert!(new.client.metadata.require_pkce);
        assert_eq!(
            new.to_json()["token_endpoint_auth_method"],
            "client_secret_basic"
        );
    }

    #[test]
    fn redirect_uris_must_be_https_or_loopback() {
        assert!(check_redirect_uri("https://a.example/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8080/callback").is_ok());
        assert!(check_redirect_uri("http://localhost:3000/cb").is_ok());
        assert!(check_redirect_uri("http://evil.example/cb").is_err());
        assert!(check_redirect_uri("https://a.example/cb#frag").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        let mut r = request();
        r.redirect_uris = vec!["http://app.example/cb".into()];
        assert!(matches!(
            register(r, 0),
            Err(RegistrationError::RedirectUri(_))
        ));
    }

    #[test]
    fn public_client_cannot_skip_pkce() {
        let mut r = request();
        r.auth_method = Some("none".into());
        r.allow_missing_pkce = true;
        assert!(register(r, 0).is_err());
    }

    #[test]
    fn only_admin_clients_get_the_admin_scope() {
        let mut r = request();
        r.scopes = vec!["openid".into(), ADMIN_SCOPE.into()];
        assert!(
            matches!(register(r.clone(), 0), Err(RegistrationError::Metadata(m)) if m.contains("admin clients")),
            "an ordinary client cannot register the admin scope"
        );
        r.admin = true;
        let admin = register(r.clone(), 0).unwrap().client.metadata;
        assert!(admin.careid_admin && admin.allows_scope(ADMIN_SCOPE));
        let mut plain = admin.clone();
        plain.careid_admin = false;
        assert!(
            !plain.allows_scope(ADMIN_SCOPE),
            "a stored scope list alone does not make an admin client"
        );
        r.allow_missing_pkce = true;
        assert!(register(r, 0).is_err(), "admin clients use PKCE");
        let mut defaults = request();
        defaults.admin = true;
        let meta = register(defaults, 0).unwrap().client.metadata;
        assert!(meta.allows_scope(ADMIN_SCOPE) && meta.allows_scope("selectedrole"));
    }

    #[test]
    fn private_key_jwt_needs_public_keys() {
        let mut r = request();
        r.auth_method = Some("private_key_jwt".into());
        assert!(register(r.clone(), 0).is_err());
        r.jwks = Some(serde_json::json!({"keys": [{"kty": "oct", "k": "AAAA"}]}));
        assert!(register(r, 0).is_err());
    }
}

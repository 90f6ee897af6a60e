//! The rules of an authorization request (OpenID Connect Core §3.1.2, RFC 6749 §4.1, RFC 7636):
//! which parameters are required, which errors go back to the client and which must never
//! redirect (an unknown client or an unregistered redirect URI).

use super::client::ClientMetadata;
use crate::model::assurance::AcrRequest;
pub use crate::model::grant::{AuthorizationRequest, Prompt};

/// Longest accepted value of any single parameter.
const MAX_PARAM_LEN: usize = 4096;

/// Why a request cannot be answered by redirecting to the client: shown to the person instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeRequest {
    #[error("the request does not name a client (client_id)")]
    MissingClientId,
    #[error("the application (client_id) is not registered or is disabled")]
    UnknownClient,
    #[error("the request does not say where to return to (redirect_uri)")]
    MissingRedirectUri,
    #[error("the return address (redirect_uri) is not registered for this application")]
    UnregisteredRedirectUri,
    #[error("the parameter {0} appears more than once")]
    Repeated(String),
    #[error("the parameter {0} is too long")]
    TooLong(String),
}

/// An OAuth error to send back to the (verified) redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectError {
    pub error: &'static str,
    pub description: String,
}

fn redirect_error(error: &'static str, description: impl Into<String>) -> RedirectError {
    RedirectError {
        error,
        description: description.into(),
    }
}

/// Raw parameters with repeats detected.
pub struct Params<'a>(&'a [(String, String)]);

impl<'a> Params<'a> {
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Params(pairs)
    }

    /// The single value of `name`; a repeat or an oversized value is an error.
    pub fn get(&self, name: &str) -> Result<Option<&'a str>, UnsafeRequest> {
        let mut found = None;
        for (k, v) in self.0 {
            if k == name {
                if found.is_some() {
                    return Err(UnsafeRequest::Repeated(name.to_string()));
                }
                if v.len() > MAX_PARAM_LEN {
                    return Err(UnsafeRequest::TooLong(name.to_string()));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found.filter(|v| !v.is_empty()))
    }

    /// Any parameter that appears twice.
    pub fn first_repeated(&self) -> Option<&'a str> {
        self.0
            .iter()
            .enumerate()
            .find(|(i, (k, _))| self.0[..*i].iter().any(|(k2, _)| k2 == k))
            .map(|(_, (k, _))| k.as_str())
    }
}

/// The client id and redirect URI, which must be trusted before any error can be redirected.
pub fn client_and_redirect(params: &Params) -> Result<(String, Option<String>), UnsafeRequest> {
    let client_id = params
        .get("client_id")?
        .ok_or(UnsafeRequest::MissingClientId)?;
    let redirect_uri = params.get("redirect_uri")?;
    Ok((client_id.to_string(), redirect_uri.map(String::from)))
}

/// Exact string comparison with a registered URI (no normalisation, no prefix matching).
pub fn check_redirect(
    client: &ClientMetadata,
    redirect_uri: Option<&str>,
) -> Result<String, UnsafeRequest> {
    let uri = redirect_uri.ok_or(UnsafeRequest::MissingRedirectUri)?;
    if client.redirect_uris.iter().any(|r| r == uri) {
        Ok(uri.to_string())
    } else {
        Err(UnsafeRequest::UnregisteredRedirectUri)
    }
}

/// Validates the rest of the request for a known client and a verified redirect URI.
/// `state` is returned alongside so errors can carry it.
pub fn validate(
    params: &Params,
    client: &ClientMetadata,
    redirect_uri: String,
) -> Result<AuthorizationRequest, RedirectError> {
    let get = |name: &str| {
        params
            .get(name)
            .map_err(|e| redirect_error("invalid_request", e.to_string()))
    };
    if let Some(name) = params.first_repeated() {
        return Err(redirect_error(
            "invalid_request",
            format!("the parameter {name} appears more than once"),
        ));
    }
    if get("request")?.is_some() {
        return Err(redirect_error(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if get("request_uri")?.is_some() {
        return Err(redirect_error(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match get("response_type")? {
        None => {
            return Err(redirect_error(
                "invalid_request",
                "response_type is required",
            ))
        }
        Some("code") => {}
        Some(_) => {
            return Err(redirect_error(
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
    }
    if let Some(mode) = get("response_mode")? {
        if mode != "query" {
            return Err(redirect_error(
                "invalid_request",
                "only response_mode=query is supported",
            ));
        }
    }
    let requested: Vec<&str> = get("scope")?
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if !requested.contains(&"openid") {
        return Err(redirect_error(
            "invalid_scope",
            "the openid scope is required",
        ));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in requested {
        if (client.allows_scope(s) || s == "openid") && !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    let code_challenge = match (get("code_challenge")?, get("code_challenge_method")?) {
        (None, None) => None,
        (Some(c), Some("S256")) => {
            if !(43..=128).contains(&c.len())
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            {
                return Err(redirect_error(
                    "invalid_request",
                    "code_challenge is malformed",
                ));
            }
            Some(c.to_string())
        }
        (Some(_), None) | (Some(_), Some("plain")) => {
            return Err(redirect_error(
                "invalid_request",
                "code_challenge_method must be S256",
            ))
        }
        (_, Some(_)) => {
            return Err(redirect_error(
                "invalid_request",
                "code_challenge_method must be S256 with a code_challenge",
            ))
        }
    };
    if code_challenge.is_none() && (client.require_pkce || client.is_public()) {
        return Err(redirect_error(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ));
    }
    let mut prompt = Prompt::default();
    for p in get("prompt")?
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        match p {
            "none" => prompt.none = true,
            "login" | "select_account" => prompt.login = true,
            "consent" => {}
            other => {
                return Err(redirect_error(
                    "invalid_request",
                    format!("unsupported prompt value {other}"),
                ))
            }
        }
    }
    if prompt.none && prompt.login {
        return Err(redirect_error(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match get("max_age")? {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(redirect_error(
                    "invalid_request",
                    "max_age must be a non-negative integer",
                ))
            }
        },
    };
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        scopes,
        state: get("state")?.map(String::from),
        nonce: get("nonce")?.map(String::from),
        code_challenge,
        prompt,
        max_age,
        login_hint: get("login_hint")?.map(String::from),
        id_token_hint: get("id_token_hint")?.map(String::from),
        acr: AcrRequest::parse(get("acr_values")?),
        role_hint: get("role_hint")?.map(String::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::{register, ClientRequest};

    fn client(pkce: bool) -> ClientMetadata {
        let req = ClientRequest {
            client_name: "t".into(),
            redirect_uris: vec!["https://rp.example/cb".into()],
            allow_missing_pkce: !pkce,
            ..Default::default()
        };
        register(req, 0).unwrap().client.metadata
    }

    fn pairs(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    const PKCE: &str =
        "&code_challenge=EZxLzDDAIsO7xAOurWBSZa4qsw3DAUsVchkRQHjO5jw&code_challenge_method=S256";

    #[test]
    fn valid_request_keeps_only_registered_scopes() {
        let c = client(true);
        let p = pairs(&format!(
            "response_type=code&scope=openid%20profile%20bogus&state=s{PKCE}"
        ));
        let r = validate(&Params::new(&p), &c, "https://rp.example/cb".into()).unwrap();
        assert_eq!(r.scopes, vec!["openid", "profile"]);
        assert_eq!(r.acr.0, vec!["AAL3_ANY"]);
    }

    #[test]
    fn pkce_required_unless_client_opted_out() {
        let p = pairs("response_type=code&scope=openid");
        assert_eq!(
            validate(&Params::new(&p), &client(true), "x".into())
                .unwrap_err()
                .error,
            "invalid_request"
        );
        assert!(validate(&Params::new(&p), &client(false), "x".into()).is_ok());
        let plain = pairs("response_type=code&scope=openid&code_challenge=EZxLzDDAIsO7xAOurWBSZa4qsw3DAUsVchkRQHjO5jw&code_challenge_method=plain");
        assert_eq!(
            validate(&Params::new(&plain), &client(true), "x".into())
                .unwrap_err()
                .error,
            "invalid_request"
        );
    }

    #[test]
    fn errors_use_standard_codes() {
        let c = client(false);
        let check = |q: &str, code: &str| {
            assert_eq!(
                validate(&Params::new(&pairs(q)), &c, "x".into())
                    .unwrap_err()
                    .error,
                code,
                "{q}"
            )
        };
        check(
            "response_type=token&scope=openid",
            "unsupported_response_type",
        );
        check("response_type=code&scope=profile", "invalid_scope");
        check(
            "response_type=code&scope=openid&prompt=none%20login",
            "invalid_request",
        );
        check(
            "response_type=code&scope=openid&max_age=-1",
            "invalid_request",
        );
        check(
            "response_type=code&scope=openid&request=x",
            "request_not_supported",
        );
        check(
            "response_type=code&scope=openid&state=a&state=b",
            "invalid_request",
        );
    }

    #[test]
    fn redirect_uri_must_match_exactly() {
        let c = client(true);
        assert!(check_redirect(&c, Some("https://rp.example/cb")).is_ok());
        for bad in [
            "https://rp.example/cb/",
            "https://rp.example/cb?x=1",
            "https://RP.example/cb",
            "https://rp.example/c",
        ] {
            assert_eq!(
                check_redirect(&c, Some(bad)),
                Err(UnsafeRequest::UnregisteredRedirectUri),
                "{bad}"
            );
        }
        let dup = pairs("client_id=a&client_id=b");
        assert_eq!(
            client_and_redirect(&Params::new(&dup)),
            Err(UnsafeRequest::Repeated("client_id".into()))
        );
    }
}

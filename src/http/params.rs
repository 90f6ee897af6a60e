//! Reading request parameters strictly: raw pairs (so repeats are visible to the rules), a form
//! content type for POST bodies, and size limits.

use axum::body::Bytes;
use axum::http::{header, HeaderMap};

/// Longest query string accepted on any endpoint.
pub const MAX_QUERY: usize = 16 * 1024;
/// Largest form body accepted on any endpoint.
pub const MAX_BODY: usize = 64 * 1024;

pub type Pairs = Vec<(String, String)>;

#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error("the request is too large")]
    TooLarge,
    #[error("the body must be application/x-www-form-urlencoded")]
    NotForm,
}

pub fn from_query(query: Option<&str>) -> Result<Pairs, ParamsError> {
    let q = query.unwrap_or("");
    if q.len() > MAX_QUERY {
        return Err(ParamsError::TooLarge);
    }
    Ok(form_urlencoded::parse(q.as_bytes()).into_owned().collect())
}

pub fn from_form(headers: &HeaderMap, body: &Bytes) -> Result<Pairs, ParamsError> {
    if body.len() > MAX_BODY {
        return Err(ParamsError::TooLarge);
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form && !body.is_empty() {
        return Err(ParamsError::NotForm);
    }
    Ok(form_urlencoded::parse(body).into_owned().collect())
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive), if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    value
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer "))
        .map(|_| value[7..].trim())
}

/// The value of a cookie.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

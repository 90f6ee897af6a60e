//! Client certificates forwarded by a TLS-terminating proxy, in the formats operators meet
//! (`smartcard.cert_header_format`):
//!
//! - `nginx`: the URL-encoded PEM of `$ssl_client_escaped_cert` in `smartcard.cert_header`;
//! - `rfc9440`: RFC 9440's `Client-Cert` (a structured-field byte sequence, `:base64 DER:`)
//!   and, optionally, `Client-Cert-Chain` (a list of them, the leaf not included);
//! - `xfcc`: Envoy's `X-Forwarded-Client-Cert`, whose last element (the one the proxy nearest
//!   careid added) gives `Chain` (URL-encoded PEM, leaf first) or else `Cert`.
//!
//! The caller decides whether the request came from a trusted proxy; these functions only read.

use axum::http::HeaderMap;
use base64::Engine;
use rustls_pki_types::CertificateDer;

use crate::config::CertHeaderFormat;

/// The headers each format reads: every one of them is ignored (and must be stripped by the
/// proxy) when the request does not come from a trusted proxy.
pub fn header_names(format: CertHeaderFormat, nginx_header: &str) -> Vec<String> {
    match format {
        CertHeaderFormat::Nginx => vec![nginx_header.to_ascii_lowercase()],
        CertHeaderFormat::Rfc9440 => vec!["client-cert".into(), "client-cert-chain".into()],
        CertHeaderFormat::Xfcc => vec!["x-forwarded-client-cert".into()],
    }
}

/// The chain, leaf first, that a trusted proxy forwarded; None when there is none or it does
/// not parse.
pub fn forwarded_chain(
    format: CertHeaderFormat,
    nginx_header: &str,
    headers: &HeaderMap,
) -> Option<Vec<CertificateDer<'static>>> {
    let chain = match format {
        CertHeaderFormat::Nginx => {
            pem_chain(&percent_decode(headers.get(nginx_header)?.to_str().ok()?))
        }
        CertHeaderFormat::Rfc9440 => rfc9440(headers)?,
        CertHeaderFormat::Xfcc => xfcc(headers.get("x-forwarded-client-cert")?.to_str().ok()?)?,
    };
    (!chain.is_empty()).then_some(chain)
}

fn pem_chain(pem: &str) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("v={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// One RFC 8941 byte sequence: `:` base64 `:`.
fn byte_sequence(item: &str) -> Option<CertificateDer<'static>> {
    let inner = item.trim().strip_prefix(':')?.strip_suffix(':')?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(inner)
        .ok()?;
    Some(CertificateDer::from(der))
}

fn rfc9440(headers: &HeaderMap) -> Option<Vec<CertificateDer<'static>>> {
    let leaf = byte_sequence(headers.get("client-cert")?.to_str().ok()?)?;
    let mut chain = vec![leaf];
    for value in headers.get_all("client-cert-chain") {
        for item in value.to_str().ok()?.split(',') {
            chain.push(byte_sequence(item)?);
        }
    }
    Some(chain)
}

/// Splits at `separator` outside double quotes.
fn split_unquoted(s: &str, separator: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or('\\')
                } else {
                    c
                });
            }
            out
        }
        None => v.to_string(),
    }
}

fn xfcc(value: &str) -> Option<Vec<CertificateDer<'static>>> {
    let nearest = split_unquoted(value, ',').pop()?;
    let (mut cert, mut chain) = (None, None);
    for pair in split_unquoted(nearest, ';') {
        let (key, v) = pair.split_once('=')?;
        match key.trim().to_ascii_lowercase().as_str() {
            "cert" => cert = Some(unquote(v)),
            "chain" => chain = Some(unquote(v)),
            _ => {}
        }
    }
    let pem = percent_decode(&chain.or(cert)?);
    Some(pem_chain(&pem))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn pem_of(name: &str) -> (String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), cert.der().to_vec())
    }

    /// Percent-encoding as nginx's `$ssl_client_escaped_cert` and Envoy do (`%20`, not `+`).
    fn escaped(pem: &str) -> String {
        form_urlencoded::byte_serialize(pem.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn nginx_url_encoded_pem() {
        let (pem, der) = pem_of("leaf");
        let h = headers(&[("x-ssl-client-cert", escaped(&pem))]);
        let chain = forwarded_chain(CertHeaderFormat::Nginx, "x-ssl-client-cert", &h).unwrap();
        assert_eq!(chain, vec![CertificateDer::from(der)]);
        assert!(forwarded_chain(CertHeaderFormat::Nginx, "x-other", &h).is_none());
    }

    #[test]
    fn rfc9440_client_cert_and_chain() {
        let ((_, leaf), (_, ca)) = (pem_of("leaf"), pem_of("ca"));
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        let h = headers(&[
            ("client-cert", format!(":{}:", b64(&leaf))),
            ("client-cert-chain", format!(":{}:", b64(&ca))),
        ]);
        let chain = forwarded_chain(CertHeaderFormat::Rfc9440, "x-ssl-client-cert", &h).unwrap();
        assert_eq!(chain, vec![leaf.clone().into(), ca.into()]);
        let bad = headers(&[("client-cert", b64(&leaf))]);
        assert!(
            forwarded_chain(CertHeaderFormat::Rfc9440, "", &bad).is_none(),
            "a value without the colons of a byte sequence is refused"
        );
    }

    #[test]
    fn xfcc_takes_the_nearest_proxys_element_and_prefers_its_chain() {
        let ((far, far_der), (leaf, leaf_der), (ca, ca_der)) =
            (pem_of("far"), pem_of("leaf"), pem_of("ca"));
        let value = format!(
            "By=spiffe://a;Cert=\"{}\";Subject=\"CN=far,O=x;y\",By=spiffe://b;Hash=ab;Cert=\"{}\";Chain=\"{}\";Subject=\"CN=leaf\"",
            escaped(&far),
            escaped(&leaf),
            escaped(&format!("{leaf}{ca}"))
        );
        let h = headers(&[("x-forwarded-client-cert", value)]);
        let chain = forwarded_chain(CertHeaderFormat::Xfcc, "", &h).unwrap();
        assert_eq!(chain, vec![leaf_der.clone().into(), ca_der.into()]);
        assert!(!chain.contains(&CertificateDer::from(far_der)));
        let only_cert = headers(&[(
            "x-forwarded-client-cert",
            format!("Hash=ab;Cert=\"{}\"", escaped(&leaf)),
        )]);
        assert_eq!(
            forwarded_chain(CertHeaderFormat::Xfcc, "", &only_cert).unwrap(),
            vec![leaf_der.into()]
        );
        let none = headers(&[("x-forwarded-client-cert", "By=spiffe://b;Hash=ab".into())]);
        assert!(forwarded_chain(CertHeaderFormat::Xfcc, "", &none).is_none());
    }
}

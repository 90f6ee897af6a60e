//! Behind a TLS-terminating proxy: the card certificate comes in a header, in the format the
//! proxy speaks (nginx, RFC 9440, Envoy's XFCC), and is believed only from a trusted proxy
//! address or network; from anywhere else the header is ignored and the sign-in refused. The
//! client address in the audit trail is the one the trusted proxy forwarded.

use base64::Engine;
use careid::config::{CertHeaderFormat, Config};

use crate::helpers::*;

#[tokio::test]
async fn certificate_header_is_trusted_only_from_the_configured_proxy() {
    let proxy: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let env = TestEnv::start_with(Options {
        trusted_proxies: vec![proxy],
        ..Default::default()
    })
    .await;
    header_trusted_only_from(
        &env,
        CertHeaderFormat::Nginx,
        &[("127.0.0.1", false), ("127.0.0.2", true)],
    )
    .await;
}

/// An ingress controller's pods: 127.0.0.2 and 127.0.0.3.
fn proxy_network(c: &mut Config) {
    c.smartcard.trusted_proxies =
        careid::config::TrustedProxies(vec!["127.0.0.2/31".parse().unwrap()]);
}

const NETWORK_CASES: &[(&str, bool)] = &[
    ("127.0.0.1", false),
    ("127.0.0.3", true),
    ("127.0.0.4", false),
];

/// A server behind the proxy network, reading the card certificate in `format`.
async fn behind_proxies(format: CertHeaderFormat) -> TestEnv {
    TestEnv::start_with(Options {
        adjust: Some(Box::new(move |c| {
            proxy_network(c);
            c.smartcard.cert_header_format = format;
        })),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_proxy_network_is_trusted_for_the_header_and_nothing_outside_it() {
    let env = behind_proxies(CertHeaderFormat::Nginx).await;
    header_trusted_only_from(&env, CertHeaderFormat::Nginx, NETWORK_CASES).await;
}

#[tokio::test]
async fn rfc9440_client_cert_headers_from_a_trusted_proxy_sign_in() {
    let env = behind_proxies(CertHeaderFormat::Rfc9440).await;
    header_trusted_only_from(&env, CertHeaderFormat::Rfc9440, NETWORK_CASES).await;
}

#[tokio::test]
async fn envoy_xfcc_from_a_trusted_proxy_signs_in() {
    let env = behind_proxies(CertHeaderFormat::Xfcc).await;
    header_trusted_only_from(&env, CertHeaderFormat::Xfcc, NETWORK_CASES).await;
}

#[tokio::test]
async fn a_header_in_another_format_than_configured_is_not_read() {
    let env = behind_proxies(CertHeaderFormat::Xfcc).await;
    // nginx's header from the trusted proxy, while careid expects Envoy's: refused.
    header_trusted_only_from(&env, CertHeaderFormat::Nginx, &[("127.0.0.3", false)]).await;
}

/// As nginx's `$ssl_client_escaped_cert` and Envoy's XFCC: every reserved byte percent-encoded.
fn escaped(pem: &str) -> String {
    pem.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The headers a proxy of `format` adds for `card`, chained to its issuing sub-CA.
fn forwarded(
    env: &TestEnv,
    format: CertHeaderFormat,
    card: &careid::pki::Issued,
) -> Vec<(&'static str, String)> {
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    match format {
        CertHeaderFormat::Nginx => vec![("x-ssl-client-cert", escaped(&card.cert_pem))],
        CertHeaderFormat::Rfc9440 => vec![
            ("client-cert", format!(":{}:", b64(&card.der))),
            ("client-cert-chain", format!(":{}:", b64(env.pki.card_sub.cert.der()))),
        ],
        CertHeaderFormat::Xfcc => vec![(
            "x-forwarded-client-cert",
            format!(
                "By=spiffe://cluster.local/ns/careid/sa/careid;Hash=00;Cert=\"{}\";Chain=\"{}\";Subject=\"CN=x,O=NHS\";URI=",
                escaped(&card.cert_pem),
                escaped(&format!("{}{}", card.cert_pem, env.pki.card_sub.pem()))
            ),
        )],
    }
}

/// Signs in through a TLS-terminating proxy at each address: the card certificate in the
/// proxy's header is used only from a trusted one; the audit trail names the forwarded client.
async fn header_trusted_only_from(env: &TestEnv, format: CertHeaderFormat, cases: &[(&str, bool)]) {
    let card = env.user_with_card("600000000009").await;
    let client = env.confidential_client().await;
    for &(from, expect_ok) in cases {
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(env.pki.server_ca.pem().as_bytes()).unwrap(),
            )
            .redirect(reqwest::redirect::Policy::none())
            .local_address(Some(from.parse().unwrap()))
            .cookie_store(true)
            .build()
            .unwrap();
        let page = http
            .get(env.authorize_url(&client.client.metadata.client_id, &[], true))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let link = card_link(&page).unwrap();
        // The proxy terminates TLS and forwards to the main listener, certificate in the header.
        let main_link = link.replace(&env.card_base, &env.issuer);
        let mut request = http
            .get(&main_link)
            .header("x-forwarded-for", "198.51.100.23");
        for (name, value) in forwarded(env, format, &card) {
            request = request.header(name, value);
        }
        let r = request.send().await.unwrap();
        let event = env.db.recent_audit(1).await.unwrap().remove(0);
        if expect_ok {
            assert!(
                r.status().is_redirection(),
                "trusted proxy {from}: {}",
                r.status()
            );
            assert!(query_param(&location(&r), "code").is_some());
            assert_eq!(event.detail["client_ip"], "198.51.100.23", "{:?}", event);
        } else {
            assert_eq!(r.status(), 403, "a header from {from} must be ignored");
            assert!(r
                .text()
                .await
                .unwrap()
                .contains("smartcard certificate was presented"));
            // An untrusted peer's X-Forwarded-For is not believed either.
            let trusted = env
                .server
                .provider
                .config
                .smartcard
                .trusted_proxies
                .contains(from.parse().unwrap());
            let client = if trusted { "198.51.100.23" } else { from };
            assert_eq!(event.detail["client_ip"], client, "{:?}", event);
        }
    }
}

/// A CIS2-style realm path: a proxy forwards only this prefix to careid.
const REALM: &str = "/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare";

#[tokio::test]
async fn behind_a_path_prefix_every_page_asset_lives_under_the_issuer_path() {
    let env = TestEnv::start_with(Options {
        issuer_path: REALM.into(),
        ..Default::default()
    })
    .await;
    let client = env.confidential_client().await;
    let page = env
        .http()
        .get(env.authorize_url(&client.client.metadata.client_id, &[], true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let linked: Vec<&str> = ["href=\"/", "src=\"/"]
        .iter()
        .flat_map(|attr| {
            page.match_indices(attr)
                .map(|(i, a)| &page[i + a.len() - 1..])
        })
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    assert!(
        linked.iter().any(|l| l.ends_with("/static/careid.css")),
        "{linked:?} {page}"
    );
    for path in &linked {
        assert!(
            path.starts_with(REALM),
            "{path} is outside the issuer's path"
        );
        let url = format!("https://localhost:{}{}", env.server.main_addr.port(), path);
        let r = env.http().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}

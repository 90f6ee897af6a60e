//! Bad authorization requests: a person sees a page (never a redirect) when the client or
//! redirect URI cannot be trusted; otherwise the client gets the standard error with its state.

use careid::domain::client::ClientRequest;

use crate::helpers::*;

async fn get(env: &TestEnv, url: &str) -> reqwest::Response {
    env.browser(None).client.get(url).send().await.unwrap()
}

#[tokio::test]
async fn untrusted_client_or_redirect_uri_gets_a_page_not_a_redirect() {
    let env = TestEnv::start().await;
    let client = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let cases = [
        (
            "unregistered redirect URI",
            env.authorize_url(&id, &[("redirect_uri", "https://evil.example/cb")], true),
        ),
        (
            "altered redirect URI (path)",
            env.authorize_url(
                &id,
                &[("redirect_uri", "https://rp.example.org/callback/../x")],
                true,
            ),
        ),
        (
            "altered redirect URI (query)",
            env.authorize_url(
                &id,
                &[("redirect_uri", "https://rp.example.org/callback?x=1")],
                true,
            ),
        ),
        (
            "unknown client",
            env.authorize_url("000000000000.apps.national", &[], true),
        ),
        (
            "repeated client_id",
            format!("{}&client_id={id}", env.authorize_url(&id, &[], true)),
        ),
        (
            "repeated redirect_uri",
            format!(
                "{}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
                env.authorize_url(&id, &[], true)
            ),
        ),
        (
            "no client_id",
            format!("{}/authorize?response_type=code&scope=openid", env.issuer),
        ),
    ];
    for (what, url) in cases {
        let r = get(&env, &url).await;
        assert_eq!(r.status(), 400, "{what}");
        assert!(
            r.headers().get("location").is_none(),
            "{what}: never redirect"
        );
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}"
        );
        let body = r.text().await.unwrap();
        assert!(
            body.contains("This sign-in request is not valid"),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn a_disabled_client_cannot_start_a_sign_in() {
    let env = TestEnv::start().await;
    let client = env.confidential_client().await;
    careid::domain::registry::disable_client(
        &env.db,
        &client.client.metadata.client_id,
        "test",
        env.now(),
    )
    .await
    .unwrap();
    let r = get(
        &env,
        &env.authorize_url(&client.client.metadata.client_id, &[], true),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn invalid_requests_return_the_standard_error_with_state_and_iss() {
    let env = TestEnv::start().await;
    let client = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "no PKCE",
            env.authorize_url(&id, &[], false),
            "invalid_request",
        ),
        (
            "plain PKCE",
            env.authorize_url(
                &id,
                &[
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "plain"),
                ],
                false,
            ),
            "invalid_request",
        ),
        (
            "implicit flow",
            env.authorize_url(&id, &[("response_type", "token")], true),
            "unsupported_response_type",
        ),
        (
            "no openid scope",
            env.authorize_url(&id, &[("scope", "profile")], true),
            "invalid_scope",
        ),
        (
            "repeated state",
            format!("{}&state=again", env.authorize_url(&id, &[], true)),
            "invalid_request",
        ),
        (
            "bad max_age",
            env.authorize_url(&id, &[("max_age", "soon")], true),
            "invalid_request",
        ),
        (
            "bad prompt",
            env.authorize_url(&id, &[("prompt", "none login")], true),
            "invalid_request",
        ),
        (
            "request object",
            env.authorize_url(&id, &[("request", "eyJ.x.y")], true),
            "request_not_supported",
        ),
        (
            "unmeetable acr",
            env.authorize_url(&id, &[("acr_values", "AAL2_TOTP")], true),
            "unmet_authentication_requirements",
        ),
        (
            "oversized nonce",
            env.authorize_url(&id, &[("nonce", &"n".repeat(5000))], true),
            "invalid_request",
        ),
        (
            "malformed escapes",
            format!(
                "{}&nonce=%zz%",
                env.authorize_url(&id, &[("response_type", "%G0")], true)
            ),
            "unsupported_response_type",
        ),
    ];
    for (what, url, code) in cases {
        let r = get(&env, &url).await;
        assert!(r.status().is_redirection(), "{what}: {}", r.status());
        let back = location(&r);
        assert!(back.starts_with(RP_REDIRECT), "{what}");
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some(code),
            "{what}: {back}"
        );
        assert_eq!(
            query_param(&back, "iss").as_deref(),
            Some(env.issuer.as_str()),
            "{what}"
        );
        if what != "repeated state" {
            assert_eq!(
                query_param(&back, "state").as_deref(),
                Some("st-1"),
                "{what}"
            );
        }
        assert!(query_param(&back, "code").is_none(), "{what}");
    }
}

#[tokio::test]
async fn oversized_requests_are_refused_with_a_4xx_page() {
    let env = TestEnv::start().await;
    let client = env.confidential_client().await;
    let url = env.authorize_url(
        &client.client.metadata.client_id,
        &[("login_hint", &"x".repeat(20_000))],
        true,
    );
    let r = get(&env, &url).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.headers().get("location").is_none());
    let post = env
        .browser(None)
        .client
        .post(env.endpoint("/authorize"))
        .form(&[("client_id", "x".repeat(100_000))])
        .send()
        .await
        .unwrap();
    assert!(post.status().is_client_error(), "{}", post.status());
}

#[tokio::test]
async fn authorization_requests_may_be_posted() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("987654321098").await;
    let client = env
        .client(ClientRequest {
            client_name: "post".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            ..Default::default()
        })
        .await;
    let id = client.client.metadata.client_id.clone();
    let browser = env.browser(Some(&card));
    let r = browser
        .client
        .post(env.endpoint("/authorize"))
        .form(&[
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let link = card_link(&r.text().await.unwrap()).unwrap();
    let SignIn::Redirected(back) = browser.follow_card_link(&link).await else {
        panic!()
    };
    assert!(query_param(&back, "code").is_some());
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let env = TestEnv::start().await;
    let client = env.confidential_client().await;
    for url in [
        env.authorize_url(&client.client.metadata.client_id, &[], true),
        env.endpoint("/.well-known/openid-configuration"),
    ] {
        let r = get(&env, &url).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(h.contains_key("x-request-id"));
        // Forms post to careid, and end at most at this client's redirect origin (the sign-in
        // page's WebAuthn form redirects there); never anywhere else.
        let form_action = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("form-action"));
        assert!(
            matches!(
                form_action,
                Some("form-action 'self'" | "form-action 'self' https://rp.example.org")
            ),
            "{csp}"
        );
    }
    let forged = env
        .browser(None)
        .client
        .get(env.endpoint("/healthz"))
        .header("x-request-id", "evil id \"quoted\" with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(
        forged.headers()["x-request-id"],
        "evil id \"quoted\" with spaces",
        "malformed request ids are replaced"
    );
    let kept = env
        .browser(None)
        .client
        .get(env.endpoint("/healthz"))
        .header("x-request-id", "proxy-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        kept.headers()["x-request-id"],
        "proxy-id-123",
        "a proxy's plain request id is kept"
    );
}

/// The card link of one sign-in followed by several requests at once (a double click): one gets
/// a code, the others the "expired" page. (A link copied to another browser gets that page
/// anyway: the flow is bound to the browser that started it.)
#[tokio::test]
async fn a_sign_in_completes_once_when_its_link_is_followed_at_once() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341279").await;
    let client = env.confidential_client().await;
    let browser = env.browser(Some(&card));
    let r = browser
        .client
        .get(env.authorize_url(&client.client.metadata.client_id, &[], true))
        .send()
        .await
        .unwrap();
    let link = card_link(&r.text().await.unwrap()).unwrap();
    let attempts = (0..6).map(|_| browser.follow_card_link(&link));
    let mut codes = 0;
    for outcome in futures::future::join_all(attempts).await {
        match outcome {
            SignIn::Redirected(back) => {
                assert!(query_param(&back, "code").is_some());
                codes += 1;
            }
            SignIn::Page(status, body) => {
                assert_eq!(status, 400);
                assert!(body.contains("This sign-in has expired"), "{body}");
            }
        }
    }
    assert_eq!(codes, 1);
}

/// The same, from a browser already signed in (a double click on a re-authentication): the
/// request that loses the race for the flow changes nothing, so the session the winner's
/// cookie names still works afterwards.
#[tokio::test]
async fn a_reauthentication_completed_twice_at_once_keeps_the_session() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341287").await;
    let client = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let browser = env.browser(Some(&card));
    let SignIn::Redirected(_) = browser.sign_in(&env.authorize_url(&id, &[], true)).await else {
        panic!("first sign-in")
    };
    for round in 0..5 {
        let r = browser
            .client
            .get(env.authorize_url(&id, &[("prompt", "login")], true))
            .send()
            .await
            .unwrap();
        let link = card_link(&r.text().await.unwrap()).expect("prompt=login asks for the card");
        let outcomes =
            futures::future::join_all((0..4).map(|_| browser.follow_card_link(&link))).await;
        let codes = outcomes
            .iter()
            .filter(|o| matches!(o, SignIn::Redirected(_)))
            .count();
        assert_eq!(codes, 1, "round {round}");
        assert_eq!(
            env.silent_error(&browser, &id, &[]).await,
            None,
            "round {round}: the session still signs in silently"
        );
    }
}

/// A wrong method gets each API's own error shape, never an empty 405: OAuth JSON with
/// `Allow: POST` at the token, introspection, revocation and registration endpoints; problem
/// details on the admin, HR and onboarding APIs.
#[tokio::test]
async fn wrong_methods_get_the_apis_own_error_shape() {
    let env = TestEnv::start().await;
    let http = env.http();
    for path in [
        "/token",
        "/access_token",
        "/introspect",
        "/revoke",
        "/token/revoke",
        "/connect/register",
    ] {
        let r = http.get(env.endpoint(path)).send().await.unwrap();
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(r.headers()["allow"], "POST", "{path}");
        let body: serde_json::Value = r.json().await.expect("a JSON body");
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
    for (method, path) in [
        (reqwest::Method::DELETE, "/admin/api/v1/identities"),
        (reqwest::Method::PUT, "/hr/api/v1/events"),
        (
            reqwest::Method::GET,
            "/onboarding/api/v1/promotions/some-id",
        ),
    ] {
        let r = http
            .request(method, env.endpoint(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"], 405, "{path}");
    }
}

/// A body over the limit gets a 413 the client can read, in its API's shape, over HTTP/2 and
/// chunked HTTP/1.1 as well as with a Content-Length (curl, a real client of each protocol).
#[tokio::test]
async fn bodies_over_the_limit_get_a_readable_413_on_every_protocol() {
    let env = TestEnv::start().await;
    let ca = env.dir.path().join("curl-ca.pem");
    std::fs::write(&ca, env.pki.server_ca.pem()).unwrap();
    let big = env.dir.path().join("big.txt");
    std::fs::write(&big, "a".repeat(200 * 1024)).unwrap();
    let cases = [
        ("--http2", None, "/token", "application/json"),
        (
            "--http1.1",
            Some("Transfer-Encoding: chunked"),
            "/token",
            "application/json",
        ),
        ("--http1.1", None, "/token", "application/json"),
        (
            "--http2",
            None,
            "/admin/api/v1/identities",
            "application/problem+json",
        ),
        (
            "--http1.1",
            Some("Transfer-Encoding: chunked"),
            "/admin/api/v1/identities",
            "application/problem+json",
        ),
        ("--http2", None, "/authorize", "text/html"),
    ];
    for (protocol, header, path, content_type) in cases {
        // tokio's process: the server runs on this test's runtime and must keep answering.
        let mut curl = tokio::process::Command::new("curl");
        curl.args([
            "-sS",
            "--max-time",
            "30",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{content_type}",
            protocol,
            "--cacert",
        ])
        .arg(&ca)
        .args([
            "-X",
            "POST",
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", big.display()));
        if let Some(h) = header {
            curl.args(["-H", h]);
        }
        let out = curl
            .arg(env.endpoint(path))
            .output()
            .await
            .expect("curl (.ci/run installs it)");
        let seen = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{protocol} {header:?} {path}: curl failed ({seen}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            seen.starts_with("413 ") && seen.contains(content_type),
            "{protocol} {header:?} {path}: {seen}"
        );
    }
    // A body within the limit reaches the handler (which wants a client: 401 invalid_client).
    let r = env
        .http()
        .post(env.endpoint("/token"))
        .form(&[("grant_type", "nothing")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

//! Security keys, passkeys and platform authenticators end to end in a real headless Chromium,
//! with the DevTools protocol's virtual authenticators standing in for the hardware: an RA's
//! invitation opened in the browser, the kind chosen and registered through `static/webauthn.js`,
//! then a sign-in from the login page (by UUID for the security key, usernameless for the
//! discoverable kinds) that ends with the relying party's callback receiving a code whose ID token
//! says `amr: ["FIDO2"]` at AAL2. Along the way: a second registration of the same key, and a
//! sign-in with an authenticator that holds no registered credential, must both end in a readable
//! message on the page instead of a navigation. Screenshots go where `helpers::screenshot_dir` says.
//!
//! Chromium's virtual authenticators attest with a test certificate careid does not trust, so they
//! reach AAL2: the relying party asks for `AAL2_OR_AAL3_ANY`.
//!
//! Chromium's virtual environment answers a passkey-autofill (conditional) request at once, with
//! the first discoverable credential, where a person would pick it from the username field's
//! suggestions. So the button sign-ins run in a page told autofill is unavailable (as in browsers
//! without it), and autofill itself is checked once, at the end, in a page that offers it.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use careid::domain::client::NewClient;
use serde_json::{json, Value};

use crate::cdp::{Chromium, Page};
use crate::helpers::*;

const ACR: &str = "AAL2_OR_AAL3_ANY";

/// Makes the page see a browser without passkey autofill, so only the button starts a ceremony.
const NO_AUTOFILL: &str = "if (window.PublicKeyCredential) { \
    PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false); }";

/// What a person registers, and the virtual authenticator that plays it.
struct Case {
    uuid: &'static str,
    kind: &'static str,
    name: &'static str,
    transport: &'static str,
    resident: bool,
}

const SECURITY_KEY: Case = Case {
    uuid: "940000000301",
    kind: "security_key",
    name: "Blue key on my lanyard",
    transport: "usb",
    resident: false,
};
const PASSKEY: Case = Case {
    uuid: "940000000302",
    kind: "passkey",
    name: "My phone",
    transport: "internal",
    resident: true,
};
const PLATFORM: Case = Case {
    uuid: "940000000303",
    kind: "platform",
    name: "Ward laptop",
    transport: "internal",
    resident: true,
};

/// A ctap2 virtual authenticator with user verification; returns its id.
async fn add_authenticator(page: &Page<'_>, transport: &str, resident: bool) -> String {
    let r = page
        .call(
            "WebAuthn.addVirtualAuthenticator",
            json!({ "options": {
                "protocol": "ctap2", "transport": transport, "hasResidentKey": resident,
                "hasUserVerification": true, "isUserVerified": true
            } }),
        )
        .await;
    r["authenticatorId"].as_str().unwrap().to_string()
}

async fn remove_authenticator(page: &Page<'_>, id: &str) {
    page.call(
        "WebAuthn.removeVirtualAuthenticator",
        json!({ "authenticatorId": id }),
    )
    .await;
}

/// The credentials the virtual authenticator holds.
async fn held(page: &Page<'_>, id: &str) -> Vec<Value> {
    let r = page
        .call("WebAuthn.getCredentials", json!({ "authenticatorId": id }))
        .await;
    r["credentials"].as_array().unwrap().clone()
}

async fn invitation_url(env: &TestEnv, uuid: &str) -> String {
    let code = invitation_code(env, uuid).await;
    env.endpoint(&format!("/webauthn/register?invitation={code}"))
}

/// Types `text` into the element as a keyboard would (focus, then text input).
async fn type_into(page: &Page<'_>, id: &str, text: &str) {
    page.eval(&format!(
        "(() => {{ const e = document.getElementById({id:?}); e.focus(); e.select(); }})()"
    ))
    .await;
    page.call("Input.insertText", json!({ "text": text })).await;
    assert_eq!(
        page.eval(&format!("document.getElementById({id:?}).value"))
            .await,
        json!(text)
    );
}

async fn click(page: &Page<'_>, id: &str) {
    page.eval(&format!("document.getElementById({id:?}).click()"))
        .await;
}

async fn heading(page: &Page<'_>) -> String {
    page.eval("document.querySelector('h1').innerText")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn body_text(page: &Page<'_>) -> String {
    page.eval("document.body.innerText")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn status_text(page: &Page<'_>) -> String {
    page.eval("document.getElementById('webauthn-status').innerText")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Opens the invitation link, checks the code is filled in, chooses `case.kind` and types its name
/// (Register is left for the caller to click).
async fn open_registration(page: &Page<'_>, url: &str, case: &Case) {
    page.navigate(url).await;
    page.wait_for("document.getElementById('webauthn-register-button')")
        .await;
    let code = url.split("invitation=").nth(1).unwrap();
    assert_eq!(
        page.eval("document.getElementById('webauthn-invitation').value")
            .await,
        json!(code),
        "the invitation code from the link is filled in"
    );
    click(page, &format!("kind-{}", case.kind)).await;
    assert_eq!(
        page.eval("document.querySelector('input[name=kind]:checked').value")
            .await,
        json!(case.kind)
    );
    type_into(page, "webauthn-name", case.name).await;
}

/// Registers `case` with the invitation at `url`, through the page, and checks the result.
async fn register(page: &Page<'_>, env: &TestEnv, url: &str, case: &Case, authenticator: &str) {
    open_registration(page, url, case).await;
    click(page, "webauthn-register-button").await;
    page.wait_for("!document.getElementById('webauthn-register')")
        .await;
    let text = body_text(page).await;
    assert_eq!(heading(page).await, "Authenticator registered", "{text}");
    assert!(text.contains(case.name), "{text}");
    assert!(
        text.contains("authentication assurance level 2"),
        "an untrusted attestation registers at AAL2: {text}"
    );

    let stored = env.db.webauthn_credentials_of(case.uuid).await.unwrap();
    assert_eq!(stored.len(), 1, "one credential for {}", case.uuid);
    let s = &stored[0];
    assert_eq!(s.authenticator.kind.as_str(), case.kind);
    assert_eq!(s.name, case.name);
    assert_eq!(s.aal, 2);
    assert!(!s.attestation_trusted);
    assert_eq!(s.discoverable, case.resident, "{}", case.kind);
    assert!(
        s.transports.iter().any(|t| t == case.transport),
        "{:?}",
        s.transports
    );
    let creds = held(page, authenticator).await;
    assert_eq!(
        creds.len(),
        1,
        "the virtual authenticator made one credential"
    );
    assert_eq!(creds[0]["isResidentCredential"], json!(case.resident));
    assert_eq!(
        STANDARD
            .decode(creds[0]["credentialId"].as_str().unwrap())
            .unwrap(),
        URL_SAFE_NO_PAD.decode(&s.credential_id).unwrap(),
        "careid stored the credential the authenticator holds"
    );
}

fn authorize_url(env: &TestEnv, client: &NewClient, callback: &str, state: &str) -> String {
    format!(
        "{}?{}",
        env.endpoint("/authorize"),
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", client.client.metadata.client_id.as_str()),
                ("redirect_uri", callback),
                ("scope", "openid profile"),
                ("state", state),
                ("nonce", "n-passkeys"),
                ("acr_values", ACR),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .finish()
    )
}

/// Opens the authorization URL and waits for careid's sign-in page.
async fn open_sign_in(page: &Page<'_>, url: &str) {
    page.navigate(url).await;
    page.wait_for("document.getElementById('webauthn-signin-button')")
        .await;
    assert_eq!(heading(page).await, "Sign in");
}

/// Waits for the RP's callback and returns the ID token's claims for the code it received.
async fn id_token_at_callback(
    page: &Page<'_>,
    env: &TestEnv,
    client: &NewClient,
    callback: &str,
    state: &str,
) -> Value {
    page.wait_for(&format!("location.href.startsWith({callback:?})"))
        .await;
    let href = page.eval("location.href").await;
    let href = href.as_str().unwrap();
    assert_eq!(query_param(href, "state").as_deref(), Some(state));
    let code = query_param(href, "code").expect("the RP got a code");
    let r = env
        .http()
        .post(env.endpoint("/token"))
        .basic_auth(&client.client.metadata.client_id, client.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

fn assert_fido2_aal2(claims: &Value, uuid: &str) {
    assert_eq!(claims["sub"], json!(uuid), "{claims}");
    assert_eq!(claims["amr"], json!(["FIDO2"]), "{claims}");
    assert_eq!(claims["acr"], json!(ACR), "{claims}");
    assert_eq!(
        claims["authentication_assurance_level"],
        json!("2"),
        "{claims}"
    );
    assert_eq!(claims["nonce"], json!("n-passkeys"), "{claims}");
}

async fn sign_count(page: &Page<'_>, authenticator: &str) -> i64 {
    held(page, authenticator).await[0]["signCount"]
        .as_i64()
        .unwrap()
}

/// Signs `case`'s user in from a fresh sign-in page (by UUID unless the credential is
/// discoverable) and checks the tokens the RP gets, and that `authenticator` was the one used.
async fn sign_in(
    page: &Page<'_>,
    env: &TestEnv,
    client: &NewClient,
    callback: &str,
    case: &Case,
    authenticator: &str,
) {
    let before = sign_count(page, authenticator).await;
    let state = format!("st-{}", case.kind);
    open_sign_in(page, &authorize_url(env, client, callback, &state)).await;
    assert_eq!(
        page.eval("PublicKeyCredential.isConditionalMediationAvailable()")
            .await,
        json!(false),
        "only the button starts this sign-in"
    );
    if !case.resident {
        type_into(page, "webauthn-username", case.uuid).await;
    } else {
        assert_eq!(
            page.eval("document.getElementById('webauthn-username').value")
                .await,
            json!(""),
            "usernameless"
        );
    }
    click(page, "webauthn-signin-button").await;
    let claims = id_token_at_callback(page, env, client, callback, &state).await;
    assert_fido2_aal2(&claims, case.uuid);
    assert!(
        sign_count(page, authenticator).await > before,
        "the {} authenticator signed the assertion",
        case.kind
    );
    let stored = &env.db.webauthn_credentials_of(case.uuid).await.unwrap()[0];
    assert!(stored.authenticator.last_used_at.is_some());
}

/// The next person at this browser: no careid session left over.
async fn forget_cookies(page: &Page<'_>) {
    page.call("Network.clearBrowserCookies", json!({})).await;
}

#[tokio::test]
async fn security_keys_passkeys_and_platform_authenticators_sign_in_in_chromium() {
    let env = TestEnv::start().await;
    for case in [&SECURITY_KEY, &PASSKEY, &PLATFORM] {
        env.user(case.uuid).await;
    }
    let (client, callback) = relying_party(&env).await;
    let docs = screenshot_dir();

    let chromium = Chromium::launch().await;
    let page = chromium.new_page().await;
    let no_autofill = page
        .call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": NO_AUTOFILL }),
        )
        .await["identifier"]
        .clone();
    page.call("WebAuthn.enable", json!({})).await;

    // 1. A security key, registered with an RA's invitation, signed in with the UUID typed.
    let key = add_authenticator(&page, "usb", false).await;
    let url = invitation_url(&env, SECURITY_KEY.uuid).await;
    open_registration(&page, &url, &SECURITY_KEY).await;
    page.screenshot(&docs.join("webauthn-register.png")).await;
    page.navigate("about:blank").await;
    register(&page, &env, &url, &SECURITY_KEY, &key).await;

    // The same key again, with a new invitation: the browser refuses (excludeCredentials) and
    // the page says why, without leaving the page or registering anything.
    let again = invitation_url(&env, SECURITY_KEY.uuid).await;
    open_registration(&page, &again, &SECURITY_KEY).await;
    click(&page, "webauthn-register-button").await;
    page.wait_for(
        "document.getElementById('webauthn-status').innerText.includes('already registered')",
    )
    .await;
    assert_eq!(
        status_text(&page).await,
        "This authenticator is already registered to your Care Identity."
    );
    assert_eq!(heading(&page).await, "Register a security key or passkey");
    assert_eq!(
        env.db
            .webauthn_credentials_of(SECURITY_KEY.uuid)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(held(&page, &key).await.len(), 1);

    sign_in(&page, &env, &client, &callback, &SECURITY_KEY, &key).await;

    // Someone else's security key, holding no credential careid knows, with that UUID typed:
    // the browser finds nothing to use and the page explains, staying on the sign-in page.
    forget_cookies(&page).await;
    remove_authenticator(&page, &key).await;
    let stranger = add_authenticator(&page, "usb", false).await;
    let signin = authorize_url(&env, &client, &callback, "st-stranger");
    open_sign_in(&page, &signin).await;
    type_into(&page, "webauthn-username", SECURITY_KEY.uuid).await;
    click(&page, "webauthn-signin-button").await;
    page.wait_for(
        "document.getElementById('webauthn-status').innerText.startsWith('Nothing was used')",
    )
    .await;
    let status = status_text(&page).await;
    assert!(
        status.contains("this authenticator is not registered here")
            && status.contains("smartcard"),
        "{status}"
    );
    assert_eq!(page.eval("location.href").await, json!(signin));
    assert_eq!(heading(&page).await, "Sign in");
    page.screenshot(&docs.join("webauthn-sign-in.png")).await;
    assert!(held(&page, &stranger).await.is_empty());
    remove_authenticator(&page, &stranger).await;

    // 2. A passkey (discoverable, on this device), signed in without a username.
    forget_cookies(&page).await;
    let passkey = add_authenticator(&page, "internal", true).await;
    let url = invitation_url(&env, PASSKEY.uuid).await;
    register(&page, &env, &url, &PASSKEY, &passkey).await;
    sign_in(&page, &env, &client, &callback, &PASSKEY, &passkey).await;
    remove_authenticator(&page, &passkey).await;

    // 3. This device's platform authenticator, signed in without a username.
    forget_cookies(&page).await;
    let platform = add_authenticator(&page, "internal", true).await;
    let url = invitation_url(&env, PLATFORM.uuid).await;
    register(&page, &env, &url, &PLATFORM, &platform).await;
    sign_in(&page, &env, &client, &callback, &PLATFORM, &platform).await;

    // Passkey autofill where the browser offers it: the platform credential, picked from the
    // username field's suggestions (here: picked at once by the virtual environment), signs in
    // without the button.
    forget_cookies(&page).await;
    page.call(
        "Page.removeScriptToEvaluateOnNewDocument",
        json!({ "identifier": no_autofill }),
    )
    .await;
    let before = sign_count(&page, &platform).await;
    page.navigate(&authorize_url(&env, &client, &callback, "st-autofill"))
        .await;
    let claims = id_token_at_callback(&page, &env, &client, &callback, "st-autofill").await;
    assert_fido2_aal2(&claims, PLATFORM.uuid);
    assert!(sign_count(&page, &platform).await > before);
}

//! The eight real CIS2 relying parties of `../shared/reference/cis2.md` §16, each signing in
//! against careid exactly as it does against CIS2 (its scopes, acr_values, client authentication,
//! PKCE and nonce or their absence, discovered or hard-coded paths) and then applying the checks
//! it applies (§11, §16). Only the issuer and the credentials differ from CIS2: the issuer has an
//! explicit port and the ForgeRock realm path, like CIS2's `:443` one.

use careid::domain::client::ClientRequest;
use careid::domain::rbac;
use careid::model::identity::{User, UserStatus};
use careid::pki::Issued;
use serde_json::{json, Value};

use crate::helpers::*;

const SAMPLE: &str = include_str!("../../config/rbac-sample.json");
/// Sample positions (`config/rbac-sample.json`): a ward nurse at RZ9's site RZ9EX (workgroup
/// "Example Ward 7 Team"), and an immunisation nurse at RZ8 (workgroup "schoolagedimmunisations").
const NURSE: (&str, &str) = ("RZ9", "Staff Nurse - Example Ward 7");
const IMMS: (&str, &str) = ("RZ8", "Immunisation Nurse (inter-organisation)");
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A careid whose issuer looks like CIS2's: `https://localhost:<port>` + the realm path.
async fn cis2_env() -> TestEnv {
    let env = TestEnv::start_with(Options {
        issuer_path: CIS2_PATH.into(),
        ..Default::default()
    })
    .await;
    let port = env
        .issuer
        .strip_prefix("https://localhost:")
        .and_then(|rest| rest.strip_suffix(CIS2_PATH))
        .expect("issuer = host:port + realm path");
    assert!(port.parse::<u16>().is_ok(), "{}", env.issuer);
    env
}

/// The relying party's clock. careid runs on a `ManualClock` standing in for true time; an
/// NTP-synchronised RP reads the same time (§4, clock discipline).
fn rp_now(env: &TestEnv) -> i64 {
    env.now()
}

/// A member of staff, Dr Jane Ann Example, with a bound smartcard, the RBAC sample imported and
/// the given sample positions current. Returns the card and each position's `person_roleid`.
async fn staff(env: &TestEnv, uuid: &str, positions: &[(&str, &str)]) -> (Issued, Vec<String>) {
    rbac::import(&env.db, SAMPLE, "test", env.now())
        .await
        .unwrap();
    let card = env
        .person_with_card(&User {
            uuid: uuid.into(),
            title: Some("Dr".into()),
            given_name: "Jane".into(),
            middle_names: Some("Ann".into()),
            family_name: "Example".into(),
            email: Some(format!("jane.example{uuid}@example.nhs.uk")),
            id_assurance_level: 3,
            status: UserStatus::Active,
        })
        .await;
    let mut roles = Vec::new();
    for (org, name) in positions {
        let position = env
            .db
            .position_by_name(org, name)
            .await
            .unwrap()
            .expect("sample position");
        let ids = rbac::assign_position(
            &env.db,
            uuid,
            &position,
            env.now() - 60,
            None,
            "test",
            env.now(),
        )
        .await
        .unwrap();
        roles.push(ids[0].clone());
    }
    (card, roles)
}

/// A random alphanumeric string (state, nonce, Authlib's 36-character `jti`).
fn random(n: usize) -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn url_with(endpoint: &str, params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.extend_pairs(params);
    format!("{endpoint}?{}", s.finish())
}

/// `<issuer>/.well-known/openid-configuration`, as the discovering RPs fetch it.
async fn discover(env: &TestEnv, issuer: &str) -> Value {
    let r = env
        .http()
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The person's part: careid's sign-in page and the smartcard, then careid's role picker, which
/// must be shown exactly when `pick` names the role to choose there. Returns where careid sent
/// the browser back to.
async fn sign_in(env: &TestEnv, card: &Issued, url: &str, pick: Option<&str>) -> String {
    let browser = env.browser(Some(card));
    match (browser.sign_in(url).await, pick) {
        (SignIn::Redirected(back), None) => back,
        (SignIn::Page(200, page), Some(role)) if page.contains("Choose your role") => {
            let field = |name: &str| {
                page.split(&format!("name=\"{name}\" value=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("picker field {name}"))
                    .to_string()
            };
            let r = browser
                .client
                .post(env.endpoint("/role"))
                .form(&[
                    ("flow", field("flow")),
                    ("csrf_token", field("csrf_token")),
                    ("person_roleid", role.to_string()),
                ])
                .send()
                .await
                .unwrap();
            assert!(r.status().is_redirection(), "role chosen: {}", r.status());
            location(&r)
        }
        (outcome, pick) => {
            panic!("unexpected sign-in outcome {outcome:?} (role to pick: {pick:?})")
        }
    }
}

/// The callback as every RP reads it (§11.11): back at its redirect URI without an error, its
/// own `state`, and a `code`.
fn callback_code(back: &str, redirect: &str, state: &str) -> String {
    assert!(
        back.starts_with(&format!("{redirect}?")),
        "back at the redirect URI: {back}"
    );
    assert_eq!(query_param(back, "error"), None, "{back}");
    assert_eq!(query_param(back, "state").as_deref(), Some(state));
    query_param(back, "code").expect("a code")
}

/// A token request as the RP sends it (a form body). The answer must carry `token_type` (rack-
/// oauth2 fails without it, oauth4webapi wants bearer in any case: §4), an access token and an
/// ID token.
async fn redeem_at(env: &TestEnv, url: &str, form: &[(&str, &str)]) -> Value {
    let r = env.http().post(url).form(form).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "token request to {url}: {body}");
    assert!(
        body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "token_type: {body}"
    );
    assert!(body["access_token"].is_string() && body["id_token"].is_string());
    body
}

/// Verifies a careid-signed JWT as the RPs do (§1.1, §11.1): the header must name a `kid` (EPS
/// refuses a token without one), the key is the one with that `kid` in the JWKS fetched from
/// `jwks_url` (only `use: "sig"` keys when `sig_only`, as Mavis keeps), and `alg` is one of
/// `algs`. Returns the header and the claims.
async fn verify_jwt(
    env: &TestEnv,
    token: &str,
    jwks_url: &str,
    algs: &[&str],
    sig_only: bool,
) -> (Value, Value) {
    use josekit::jws::{JwsVerifier, RS256, RS512};
    let header = jwt_header(token);
    let alg = header["alg"].as_str().unwrap_or_default();
    assert!(algs.contains(&alg), "alg {alg} is not one of {algs:?}");
    let kid = header["kid"].as_str().expect("a kid in the JWT header");
    let r = env.http().get(jwks_url).send().await.unwrap();
    assert_eq!(r.status(), 200, "JWKS at {jwks_url}");
    let jwks = josekit::jwk::JwkSet::from_bytes(r.bytes().await.unwrap()).unwrap();
    let jwk = jwks
        .get(kid)
        .into_iter()
        .find(|k| !sig_only || k.key_use() == Some("sig"))
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS at {jwks_url}"));
    let verifier: Box<dyn JwsVerifier> = match alg {
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).unwrap()),
        _ => Box::new(RS512.verifier_from_jwk(jwk).unwrap()),
    };
    let (payload, _) =
        josekit::jwt::decode_with_verifier(token, verifier.as_ref()).expect("signature verifies");
    (header, Value::Object(payload.claims_set().clone()))
}

/// `at_hash` as a relying party recomputes it: left half of the SHA-256 of the access token.
fn expected_at_hash(access_token: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// The ID-token checks every RP below makes (§11): exact `iss`; `aud` a plain string equal to
/// the client_id and `azp` the client_id; `exp` in the future and `iat` not (zero leeway, as
/// NDR's PyJWT); `auth_time` a number, not in the future; `sid`, `acr` and `at_hash` present,
/// `at_hash` right for the access token (EPS and Authlib); `nonce` present exactly when one
/// was sent, and equal to it; `sub` the user's UUID.
fn check_id_token(
    claims: &Value,
    env: &TestEnv,
    client_id: &str,
    tokens: &Value,
    nonce: Option<&str>,
    sub: &str,
) {
    let now = rp_now(env);
    assert_eq!(claims["iss"], env.issuer.as_str(), "iss byte for byte");
    assert_eq!(claims["aud"], client_id, "aud a plain string");
    assert_eq!(claims["azp"], client_id);
    assert_eq!(claims["sub"], sub);
    let exp = claims["exp"].as_i64().expect("exp a number");
    let iat = claims["iat"].as_i64().expect("iat a number");
    let auth_time = claims["auth_time"].as_i64().expect("auth_time a number");
    assert!(exp > now, "exp in the future");
    assert!(iat <= now, "iat not in the future, zero leeway");
    assert!(auth_time <= now && auth_time <= iat);
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(claims["acr"].is_string());
    assert_eq!(
        claims["at_hash"].as_str(),
        Some(expected_at_hash(tokens["access_token"].as_str().unwrap()).as_str()),
        "at_hash"
    );
    match nonce {
        Some(n) => assert_eq!(claims["nonce"], n, "nonce echoed"),
        None => assert!(
            claims.get("nonce").is_none(),
            "no nonce claim without a nonce in the request"
        ),
    }
}

/// An assurance level as RPs read it (§6): a JSON string of digits, which the Django, Rails and
/// Notify RPs parse as an integer and the Next.js one compares as a string.
fn level(claims: &Value, name: &str) -> (String, i64) {
    let s = claims[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} a string: {claims}"))
        .to_string();
    let n = s.parse().unwrap_or_else(|_| panic!("{name} digits: {s}"));
    (s, n)
}

/// What the `AAL2_OR_AAL3_ANY` RPs check (§7.1): `authentication_assurance_level` at least 2,
/// whether compared as a string (`>= "2"`, Next.js) or as an integer.
fn check_aal2_or_better(claims: &Value) {
    let (s, n) = level(claims, "authentication_assurance_level");
    assert!(s.as_str() >= "2" && n >= 2, "AAL {s}");
}

/// GET userinfo with the access token as bearer, as every RP does; plain JSON (§5).
async fn userinfo_at(env: &TestEnv, url: &str, access: &str) -> Value {
    let r = env
        .http()
        .get(url)
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "userinfo at {url}");
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    r.json().await.unwrap()
}

/// The `nhsid_nrbac_roles` entry `selected_roleid` points to (§8.9).
fn selected_role(info: &Value, selected_roleid: &str) -> Value {
    info["nhsid_nrbac_roles"]
        .as_array()
        .expect("nhsid_nrbac_roles an array")
        .iter()
        .find(|r| r["person_roleid"] == selected_roleid)
        .unwrap_or_else(|| panic!("selected_roleid {selected_roleid} among the roles: {info}"))
        .clone()
}

/// Ends the careid session as an EPS sign-out function did (§10.2): `<issuer>/connect/endSession`
/// with `id_token_hint`, server to server, with the access token as bearer (without a browser,
/// careid ends a session only for a caller holding that session's access token). careid then
/// sends back-channel logout to each RP that holds the session.
async fn end_session(env: &TestEnv, tokens: &Value) {
    let r = env
        .http()
        .get(format!("{}/connect/endSession", env.issuer))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .query(&[("id_token_hint", tokens["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "endSession: {}",
        r.status()
    );
}

/// The one logout token the RP's back-channel endpoint receives, checked as the RPs with such an
/// endpoint check it (§10.1, §16): signed with an accepted alg by a key found by `kid` in the
/// JWKS at `jwks_url`; exact `iss`; `aud` a plain string equal to the client_id; `sub` the user;
/// `sid` the ID token's; `iat` within the last 300 s and not in the future; `exp` present and
/// in the future; a `jti`; the back-channel event; no `nonce`. Returns its claims.
async fn check_logout_token(
    env: &TestEnv,
    receiver: &LogoutReceiver,
    jwks_url: &str,
    algs: &[&str],
    client_id: &str,
    id_claims: &Value,
) -> Value {
    let tokens = receiver.wait_for(1).await;
    assert_eq!(tokens.len(), 1, "one logout token delivered");
    let (_, claims) = verify_jwt(env, &tokens[0], jwks_url, algs, false).await;
    let now = rp_now(env);
    assert_eq!(claims["iss"], env.issuer.as_str());
    assert_eq!(claims["aud"], client_id, "aud a plain string");
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert_eq!(
        claims["sid"], id_claims["sid"],
        "sid of the signed-in session"
    );
    let iat = claims["iat"].as_i64().expect("iat");
    assert!(
        iat <= now && iat >= now - 300,
        "iat within 300 s, not in the future"
    );
    assert!(claims["exp"].as_i64().expect("exp present") > now);
    assert!(claims["jti"].is_string());
    assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
    assert!(claims.get("nonce").is_none(), "no nonce in a logout token");
    claims
}

/// Breast screening (`NHSDigital/dtos-manage-breast-screening`, §16): Django + Authlib reading
/// discovery, which takes its ID-token algorithms from `id_token_signing_alg_values_supported`.
/// private_key_jwt RS512 with the key's thumbprint as `kid`, `exp` +300 s and Authlib's
/// 36-character alphanumeric `jti`, `aud` the discovered token endpoint; scopes `openid profile
/// email nhsperson associatedorgs`, `acr_values=AAL3_ANY`, `prompt=login`, nonce and state, no
/// PKCE. Authlib checks iss, aud, exp/iat, nonce and at_hash; the app wants both assurance levels
/// ≥ 3 and reads sub, email and names from userinfo (sub must match). Its back-channel endpoint
/// needs iss, aud, exp and iat, the event and no nonce, and ends the sessions of `sub`.
#[tokio::test]
async fn breast_screening_django_authlib() {
    let env = cis2_env().await;
    let uuid = "930000000001";
    let (card, _) = staff(&env, uuid, &[NURSE]).await;
    let key = rp_key("RS512", "set-below").with_thumbprint_kid();
    let backchannel = LogoutReceiver::start(vec![]).await;
    let redirect = "https://manage-breast-screening.example.nhs.uk/auth/cis2/callback";
    let client = env
        .client(ClientRequest {
            client_name: "Manage breast screening".into(),
            redirect_uris: vec![redirect.into()],
            backchannel_logout_uri: Some(backchannel.uri.clone()),
            auth_method: Some("private_key_jwt".into()),
            jwks_uri: Some(serve_jwks(key.jwks()).await),
            token_endpoint_auth_signing_alg: Some("RS512".into()),
            allow_missing_pkce: true,
            ..Default::default()
        })
        .await;
    let client_id = client.client.metadata.client_id.as_str();

    let meta = discover(&env, &env.issuer).await;
    assert!(
        meta["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("RS256")),
        "Authlib accepts only the discovered ID-token algorithms"
    );
    let (state, nonce) = (random(30), random(20));
    let url = url_with(
        meta["authorization_endpoint"].as_str().unwrap(),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("scope", "openid profile email nhsperson associatedorgs"),
            ("state", &state),
            ("nonce", &nonce),
            ("acr_values", "AAL3_ANY"),
            ("prompt", "login"),
        ],
    );
    let code = callback_code(&sign_in(&env, &card, &url, None).await, redirect, &state);

    let token_endpoint = meta["token_endpoint"].as_str().unwrap();
    let (kid, jti) = (key.kid(), random(36));
    let assertion = signed_assertion(
        &key,
        &AssertionSpec {
            kid: Some(&kid),
            typ: Some("JWT"),
            client_id,
            aud: token_endpoint,
            iat: rp_now(&env),
            lifetime: 300,
            jti: &jti,
        },
    );
    let tokens = redeem_at(
        &env,
        token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let jwks_uri = meta["jwks_uri"].as_str().unwrap();
    let (_, claims) = verify_jwt(&env, id_token, jwks_uri, &["RS256"], false).await;
    check_id_token(&claims, &env, client_id, &tokens, Some(&nonce), uuid);
    assert!(level(&claims, "id_assurance_level").1 >= 3);
    assert!(level(&claims, "authentication_assurance_level").1 >= 3);

    let info = userinfo_at(
        &env,
        meta["userinfo_endpoint"].as_str().unwrap(),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        info["sub"], claims["sub"],
        "the Django RP refuses a mismatch"
    );
    assert_eq!(
        info["email"],
        format!("jane.example{uuid}@example.nhs.uk").as_str()
    );
    assert_eq!(
        (info["given_name"].as_str(), info["family_name"].as_str()),
        (Some("Jane"), Some("Example"))
    );

    // The RP itself only signs out locally; the careid session ends elsewhere and the RP hears
    // of it over the back channel (with Authlib's 60 s leeway on exp and iat, user found by sub).
    end_session(&env, &tokens).await;
    check_logout_token(&env, &backchannel, jwks_uri, &["RS256"], client_id, &claims).await;
}

/// Mavis (`nhsuk/manage-vaccinations-in-schools`, §16): Rails + omniauth_openid_connect reading
/// discovery, which refuses a document whose `issuer` is not the configured one character for
/// character or that lacks the fields its library needs; it keeps only `use: "sig"` keys.
/// private_key_jwt RS256 with `typ: JWT`, thumbprint `kid`, `exp` +180 s and a 32-hex `jti`;
/// scopes `openid profile email nationalrbacaccess associatedorgs selectedrole`,
/// `acr_values=AAL2_OR_AAL3_ANY`, `prompt=login`, nonce and state, no PKCE. It reads
/// `auth_time` (≤ 5 min), both assurance levels, `selected_roleid` and `sid`, merges userinfo
/// into the ID-token claims (they must agree), finds the selected role in `nhsid_nrbac_roles`
/// (whole `role_code`, workgroup names) and its organisation in `nhsid_user_orgs`. Back-channel:
/// RS256 only, string aud, iat ≤ 300 s old, not in the future nor before the sign-in, known
/// sub, matching sid.
#[tokio::test]
async fn mavis_rails_omniauth() {
    let env = cis2_env().await;
    let uuid = "930000000002";
    let (card, roles) = staff(&env, uuid, &[NURSE, IMMS]).await;
    let imms = roles[1].clone();
    let key = rp_key("RS256", "set-below").with_thumbprint_kid();
    let backchannel = LogoutReceiver::start(vec![]).await;
    let redirect =
        "https://www.manage-vaccinations-in-schools.example.nhs.uk/users/auth/cis2/callback";
    let client = env
        .client(ClientRequest {
            client_name: "Manage vaccinations in schools".into(),
            redirect_uris: vec![redirect.into()],
            backchannel_logout_uri: Some(backchannel.uri.clone()),
            auth_method: Some("private_key_jwt".into()),
            jwks_uri: Some(serve_jwks(key.jwks()).await),
            token_endpoint_auth_signing_alg: Some("RS256".into()),
            allow_missing_pkce: true,
            ..Default::default()
        })
        .await;
    let client_id = client.client.metadata.client_id.as_str();

    let meta = discover(&env, &env.issuer).await;
    assert_eq!(
        meta["issuer"],
        env.issuer.as_str(),
        "issuer character for character"
    );
    for field in [
        "issuer",
        "authorization_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "token_endpoint",
        "userinfo_endpoint",
    ] {
        assert!(meta.get(field).is_some(), "discovery lacks {field}");
    }
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        assert!(
            url::Url::parse(meta[endpoint].as_str().unwrap()).is_ok(),
            "{endpoint}"
        );
    }
    let (state, nonce) = (random(32), random(32));
    let url = url_with(
        meta["authorization_endpoint"].as_str().unwrap(),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            (
                "scope",
                "openid profile email nationalrbacaccess associatedorgs selectedrole",
            ),
            ("state", &state),
            ("nonce", &nonce),
            ("acr_values", "AAL2_OR_AAL3_ANY"),
            ("prompt", "login"),
        ],
    );
    // Two roles: careid's picker asks, and the immunisation role is chosen.
    let code = callback_code(
        &sign_in(&env, &card, &url, Some(&imms)).await,
        redirect,
        &state,
    );

    let token_endpoint = meta["token_endpoint"].as_str().unwrap();
    let (kid, jti) = (key.kid(), uuid::Uuid::new_v4().simple().to_string());
    let assertion = signed_assertion(
        &key,
        &AssertionSpec {
            kid: Some(&kid),
            typ: Some("JWT"),
            client_id,
            aud: token_endpoint,
            iat: rp_now(&env),
            lifetime: 180,
            jti: &jti,
        },
    );
    let tokens = redeem_at(
        &env,
        token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let jwks_uri = meta["jwks_uri"].as_str().unwrap();
    let (_, claims) = verify_jwt(&env, id_token, jwks_uri, &["RS256"], true).await;
    check_id_token(&claims, &env, client_id, &tokens, Some(&nonce), uuid);
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!(
        rp_now(&env) - auth_time <= 300,
        "auth_time at most 5 minutes old"
    );
    check_aal2_or_better(&claims);
    assert_eq!(level(&claims, "id_assurance_level").1, 3);
    assert_eq!(claims["selected_roleid"], imms.as_str());

    let info = userinfo_at(
        &env,
        meta["userinfo_endpoint"].as_str().unwrap(),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    for (name, value) in info.as_object().unwrap() {
        if let Some(id_value) = claims.get(name) {
            assert_eq!(id_value, value, "userinfo and ID token disagree on {name}");
        }
    }
    for name in ["email", "given_name", "family_name"] {
        assert!(info[name].is_string(), "{name}");
    }
    assert_eq!(info["nhsid_nrbac_roles"].as_array().unwrap().len(), 2);
    let role = selected_role(&info, claims["selected_roleid"].as_str().unwrap());
    assert_eq!(
        role["role_code"], "S8000:G8000:R8001",
        "whole role_code compared"
    );
    assert_eq!(
        role["role_name"],
        "\"Clinical\":\"Clinical Provision\":\"Nurse Access Role\""
    );
    assert!(role["activity_codes"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    assert_eq!(role["org_code"], "RZ8");
    assert!(
        role["workgroups"]
            .as_array()
            .unwrap()
            .contains(&json!("schoolagedimmunisations")),
        "team found by workgroup name"
    );
    let org = info["nhsid_user_orgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["org_code"] == role["org_code"])
        .expect("the selected role's organisation in nhsid_user_orgs");
    assert_eq!(org["org_name"], "EXAMPLE HEALTH AND CARE NHS TRUST");

    end_session(&env, &tokens).await;
    let logout =
        check_logout_token(&env, &backchannel, jwks_uri, &["RS256"], client_id, &claims).await;
    assert!(
        logout["iat"].as_i64().unwrap() >= auth_time,
        "not older than the sign-in"
    );
}

/// EPS prescription tracker (`NHSDigital/eps-prescription-tracker-ui`, §16): AWS Cognito with
/// Lambda proxies and hard-coded `<issuer>/authorize`, `/access_token`, `/userinfo` and
/// `/connect/jwk_uri`. Its token proxy adds private_key_jwt RS512 under a fixed `kid` with a
/// UUID `jti`, beside the `client_id` Cognito sent; scopes `openid profile nhsperson
/// nationalrbacaccess associatedorgs`, no acr_values, `prompt=login`, state, no nonce, no PKCE.
/// It refuses a token without `kid`, accepts only an `acr` starting `AAL3_`, uses `at_hash` as
/// its session id, passes `session_state` on, and lists every role from userinfo (last part of
/// `role_name` and `role_code`, `activity_codes`, organisation names from `nhsid_user_orgs`),
/// calling userinfo on every user-details request. No back-channel endpoint.
#[tokio::test]
async fn eps_prescription_tracker_cognito() {
    let env = cis2_env().await;
    let uuid = "930000000003";
    let (card, roles) = staff(&env, uuid, &[NURSE, IMMS]).await;
    let kid = "eps-cpt-ui-cis2-key";
    let key = rp_key("RS512", kid);
    let redirect = "https://cpt-ui.example.nhs.uk/oauth2/idpresponse";
    let client = env
        .client(ClientRequest {
            client_name: "EPS prescription tracker".into(),
            redirect_uris: vec![redirect.into()],
            auth_method: Some("private_key_jwt".into()),
            jwks_uri: Some(serve_jwks(key.jwks()).await),
            token_endpoint_auth_signing_alg: Some("RS512".into()),
            allow_missing_pkce: true,
            ..Default::default()
        })
        .await;
    let client_id = client.client.metadata.client_id.as_str();
    let issuer = env.issuer.clone();

    let state = random(40);
    let url = url_with(
        &format!("{issuer}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            (
                "scope",
                "openid profile nhsperson nationalrbacaccess associatedorgs",
            ),
            ("state", &state),
            ("prompt", "login"),
        ],
    );
    let back = sign_in(&env, &card, &url, None).await;
    let code = callback_code(&back, redirect, &state);
    assert!(
        query_param(&back, "session_state").is_some(),
        "session_state passed on"
    );

    let token_endpoint = format!("{issuer}/access_token");
    let jti = uuid::Uuid::new_v4().to_string();
    let assertion = signed_assertion(
        &key,
        &AssertionSpec {
            kid: Some(kid),
            typ: Some("JWT"),
            client_id,
            aud: &token_endpoint,
            iat: rp_now(&env),
            lifetime: 300,
            jti: &jti,
        },
    );
    let tokens = redeem_at(
        &env,
        &token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let (_, claims) = verify_jwt(
        &env,
        id_token,
        &format!("{issuer}/connect/jwk_uri"),
        &["RS256"],
        false,
    )
    .await;
    check_id_token(&claims, &env, client_id, &tokens, None, uuid);
    assert!(
        claims["acr"].as_str().unwrap().starts_with("AAL3_"),
        "EPS accepts only AAL3 acr values: {}",
        claims["acr"]
    );

    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = format!("{issuer}/userinfo");
    let info = userinfo_at(&env, &userinfo, access).await;
    assert_eq!(info["sub"], claims["sub"]);
    for name in ["name", "given_name", "family_name"] {
        assert!(info[name].as_str().is_some_and(|v| !v.is_empty()), "{name}");
    }
    let listed = info["nhsid_nrbac_roles"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "every role, without selectedrole");
    for role in listed {
        let job = role["role_name"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap();
        assert_eq!(job.trim_matches('"'), "Nurse Access Role");
        let code = role["role_code"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap();
        assert!(code.starts_with('R'), "{code}");
        assert!(role["activity_codes"].is_array());
        assert!(roles.iter().any(|id| role["person_roleid"] == id.as_str()));
        let org = info["nhsid_user_orgs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["org_code"] == role["org_code"])
            .expect("organisation name for each role");
        assert!(org["org_name"].is_string());
    }
    assert_eq!(
        userinfo_at(&env, &userinfo, access).await,
        info,
        "the same access token on the next user-details request"
    );
}

/// National Document Repository (`nhsconnect/national-document-repository`, §16): Python
/// Lambdas with oauthlib + PyJWT, every endpoint configured one by one (the CIS2 paths);
/// client_secret_post with `client_id`; scopes `openid profile nhsperson nationalrbacaccess
/// selectedrole`, no acr_values, `prompt=login`, state, no nonce, no PKCE. It needs `sub`,
/// `sid`, `exp`, `selected_roleid` and an `acr` containing "aal3" (any case), `iat` with zero
/// leeway; from userinfo `nhsid_useruid` and the selected role's `org_code` and the `R` part of
/// its `role_code`. Back-channel: RS256, iss, aud, `sid` required and known.
#[tokio::test]
async fn national_document_repository_oauthlib_pyjwt() {
    let env = cis2_env().await;
    let uuid = "930000000004";
    // One role: chosen without a page (§8.3).
    let (card, roles) = staff(&env, uuid, &[NURSE]).await;
    let backchannel = LogoutReceiver::start(vec![]).await;
    let redirect = "https://ndr.example.nhs.uk/auth-callback";
    let client = env
        .client(ClientRequest {
            client_name: "National document repository".into(),
            redirect_uris: vec![redirect.into()],
            backchannel_logout_uri: Some(backchannel.uri.clone()),
            auth_method: Some("client_secret_post".into()),
            allow_missing_pkce: true,
            ..Default::default()
        })
        .await;
    let client_id = client.client.metadata.client_id.as_str();
    let secret = client.secret.as_deref().unwrap();
    let issuer = env.issuer.clone();
    let (authorize, token, userinfo, jwks) = (
        format!("{issuer}/authorize"),
        format!("{issuer}/access_token"),
        format!("{issuer}/userinfo"),
        format!("{issuer}/connect/jwk_uri"),
    );

    let state = random(30);
    let url = url_with(
        &authorize,
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            (
                "scope",
                "openid profile nhsperson nationalrbacaccess selectedrole",
            ),
            ("state", &state),
            ("prompt", "login"),
        ],
    );
    let code = callback_code(&sign_in(&env, &card, &url, None).await, redirect, &state);
    let tokens = redeem_at(
        &env,
        &token,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let (_, claims) = verify_jwt(&env, id_token, &jwks, &["RS256"], false).await;
    check_id_token(&claims, &env, client_id, &tokens, None, uuid);
    assert!(
        claims["acr"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("aal3"),
        "production NDR needs aal3 in acr: {}",
        claims["acr"]
    );
    assert_eq!(claims["selected_roleid"], roles[0].as_str());

    let info = userinfo_at(&env, &userinfo, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info["nhsid_useruid"], claims["sub"]);
    let role = selected_role(&info, claims["selected_roleid"].as_str().unwrap());
    assert_eq!(role["org_code"], "RZ9EX");
    let job_role = role["role_code"]
        .as_str()
        .unwrap()
        .split(':')
        .find(|part| part.starts_with('R'));
    assert_eq!(job_role, Some("R8001"));

    end_session(&env, &tokens).await;
    check_logout_token(&env, &backchannel, &jwks, &["RS256"], client_id, &claims).await;
}

/// Cohort manager (`NHSDigital/dtos-cohort-manager`, §16): Next.js + Auth.js v5 (oauth4webapi)
/// with the issuer configured as `<host>:<port>` + the realm path. oauth4webapi discovers (the
/// discovered issuer must equal the configured one after URL normalisation), then compares
/// ID-token `iss` raw with it, requires the callback's `iss` because discovery announces it,
/// wants bearer `token_type`, refuses an unexpected `nonce`, and checks `auth_time` against
/// `max_age`; token and userinfo URLs are hard-coded as `<issuer>/access_token` and
/// `<issuer>/userinfo`. client_secret_post with `client_id`; scopes `openid profile
/// nationalrbacaccess`, `acr_values=AAL2_OR_AAL3_ANY`, `max_age=240`, no prompt, state only.
/// The app checks `aud === client_id`, `idassurancelevel` and `authentication_assurance_level`
/// in the ID token ≥ "2" (strings), and gathers `workgroups` / `workgroups_codes` from every
/// role (userinfo is called twice per sign-in). No back-channel endpoint.
#[tokio::test]
async fn cohort_manager_nextjs_authjs() {
    let env = cis2_env().await;
    let uuid = "930000000005";
    let (card, _) = staff(&env, uuid, &[NURSE, IMMS]).await;
    let redirect = "https://cohort-manager.example.nhs.uk/api/auth/callback/cis2";
    let client = env
        .client(ClientRequest {
            client_name: "Cohort manager".into(),
            redirect_uris: vec![redirect.into()],
            auth_method: Some("client_secret_post".into()),
            allow_missing_pkce: true,
            ..Default::default()
        })
        .await;
    let client_id = client.client.metadata.client_id.as_str();
    let secret = client.secret.as_deref().unwrap();
    let configured_issuer = env.issuer.clone();

    let meta = discover(&env, &configured_issuer).await;
    let discovered_issuer = meta["issuer"].as_str().unwrap();
    assert_eq!(
        url::Url::parse(discovered_issuer).unwrap(),
        url::Url::parse(&configured_issuer).unwrap()
    );
    let state = random(43);
    let url = url_with(
        meta["authorization_endpoint"].as_str().unwrap(),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("scope", "openid profile nationalrbacaccess"),
            ("state", &state),
            ("acr_values", "AAL2_OR_AAL3_ANY"),
            ("max_age", "240"),
        ],
    );
    let back = sign_in(&env, &card, &url, None).await;
    let code = callback_code(&back, redirect, &state);
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(discovered_issuer),
        "oauth4webapi requires the announced iss parameter, exactly"
    );

    let tokens = redeem_at(
        &env,
        &format!("{configured_issuer}/access_token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let (_, claims) = verify_jwt(
        &env,
        id_token,
        meta["jwks_uri"].as_str().unwrap(),
        &["RS256"],
        false,
    )
    .await;
    check_id_token(&claims, &env, client_id, &tokens, None, uuid);
    assert_eq!(
        claims["iss"], discovered_issuer,
        "raw iss against the discovered issuer"
    );
    assert_eq!(
        claims["iss"],
        configured_issuer.as_str(),
        "and the app's own string"
    );
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!(auth_time + 240 >= rp_now(&env), "max_age=240");
    let (idal, _) = level(&claims, "idassurancelevel");
    assert!(
        idal.as_str() >= "2",
        "idassurancelevel in the ID token ≥ \"2\""
    );
    check_aal2_or_better(&claims);

    let userinfo = format!("{configured_issuer}/userinfo");
    let access = tokens["access_token"].as_str().unwrap();
    let info = userinfo_at(&env, &userinfo, access).await;
    assert_eq!(
        info["sub"], claims["sub"],
        "oauth4webapi checks the userinfo sub"
    );
    assert_eq!(info["uid"], info["sub"]);
    assert_eq!(
        (info["given_name"].as_str(), info["family_name"].as_str()),
        (Some("Jane"), Some("Example"))
    );
    let gather = |field: &str| -> Vec<Value> {
        info["nhsid_nrbac_roles"]
            .as_array()
            .expect("nhsid_nrbac_roles is flat-mapped")
            .iter()
            .flat_map(|r| r[field].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let codes = gather("workgroups_codes");
    assert!(codes.contains(&json!("501234567890")) && codes.contains(&json!("501234567892")));
    let names = gather("workgroups");
    assert!(names.contains(&json!("schoolagedimmunisations")));
    assert_eq!(
        userinfo_at(&env, &userinfo, access).await,
        info,
        "second userinfo call of the sign-in"
    );
}

/// The cohort manager's prototype (`chrimesdev/dtos-authentication-ui`, §16): Next.js + Auth.js
/// v5 using discovery for every endpoint; client_secret_post with `client_id`; scopes `openid
/// profile email`, `acr_values=AAL2_OR_AAL3_ANY`, state only (no nonce, no prompt, no max_age,
/// no PKCE). The library's ID-token checks (exact iss, the announced callback `iss`, aud, azp,
/// no unexpected nonce, bearer token_type) and `given_name`, `family_name`, `sub` from
/// userinfo. No back-channel endpoint.
#[tokio::test]
async fn cohort_manager_prototype_authjs() {
    let env = cis2_env().await;
    let uuid = "930000000006";
    let (card, _) = staff(&env, uuid, &[]).await;
    let redirect = "https://dtos-authentication-ui.example.org/api/auth/callback/nhs-cis2";
    let client = env
        .client(ClientRequest {
            client_name: "Cohort manager prototype".into(),
            redirect_uris: vec![redirect.into()],
            auth_method: Some("client_secret_post".into()),
            allow_missing_pkce: true,
            ..Default::default()
        })
        .await;
    let client_id = client.client.metadata.client_id.as_str();
    let secret = client.secret.as_deref().unwrap();

    let meta = discover(&env, &env.issuer).await;
    let state = random(43);
    let url = url_with(
        meta["authorization_endpoint"].as_str().unwrap(),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("scope", "openid profile email"),
            ("state", &state),
            ("acr_values", "AAL2_OR_AAL3_ANY"),
        ],
    );
    let back = sign_in(&env, &card, &url, None).await;
    let code = callback_code(&back, redirect, &state);
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        meta["issuer"].as_str()
    );

    let tokens = redeem_at(
        &env,
        meta["token_endpoint"].as_str().unwrap(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await;
    let (_, claims) = verify_jwt(
        &env,
        tokens["id_token"].as_str().unwrap(),
        meta["jwks_uri"].as_str().unwrap(),
        &["RS256"],
        false,
    )
    .await;
    check_id_token(&claims, &env, client_id, &tokens, None, uuid);
    assert_eq!(claims["iss"], meta["issuer"]);
    check_aal2_or_better(&claims);

    let info = userinfo_at(
        &env,
        meta["userinfo_endpoint"].as_str().unwrap(),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(
        (info["given_name"].as_str(), info["family_name"].as_str()),
        (Some("Jane"), Some("Example"))
    );
}

/// NHS API platform identity service (`NHSDigital/identity-service-api`, §16): an Apigee proxy
/// with the CIS2 paths configured; client_secret_post with `client_id`; scopes `openid
/// nationalrbacaccess`, the caller's acr_values (default `AAL3_ANY`), `max_age=300`, no prompt,
/// state, no nonce, no PKCE. It compares `iss` case-insensitively, takes a single `aud`, needs
/// `exp` (it exchanges the ID token right after) and `sid` (keys its token cache), and passes the
/// whole userinfo through to its callers for the life of the access token. Back-channel: RS256
/// or RS512, `sid` required, the event, no nonce.
#[tokio::test]
async fn nhs_api_platform_identity_service() {
    let env = cis2_env().await;
    let uuid = "930000000007";
    let (card, _) = staff(&env, uuid, &[NURSE, IMMS]).await;
    let backchannel = LogoutReceiver::start(vec![]).await;
    let redirect = "https://internal-dev.api.example.nhs.uk/oauth2/callback";
    let client = env
        .client(ClientRequest {
            client_name: "API platform identity service".into(),
            redirect_uris: vec![redirect.into()],
            backchannel_logout_uri: Some(backchannel.uri.clone()),
            auth_method: Some("client_secret_post".into()),
            allow_missing_pkce: true,
            ..Default::default()
        })
        .await;
    let client_id = client.client.metadata.client_id.as_str();
    let secret = client.secret.as_deref().unwrap();
    let issuer = env.issuer.clone();
    let jwks = format!("{issuer}/connect/jwk_uri");

    let state = random(36);
    let url = url_with(
        &format!("{issuer}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("scope", "openid nationalrbacaccess"),
            ("state", &state),
            ("acr_values", "AAL3_ANY"),
            ("max_age", "300"),
        ],
    );
    let code = callback_code(&sign_in(&env, &card, &url, None).await, redirect, &state);
    let tokens = redeem_at(
        &env,
        &format!("{issuer}/access_token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let (_, claims) = verify_jwt(&env, id_token, &jwks, &["RS256", "RS512"], false).await;
    check_id_token(&claims, &env, client_id, &tokens, None, uuid);
    assert!(claims["iss"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case(&issuer));
    assert!(
        claims["exp"].as_i64().unwrap() > rp_now(&env) + 60,
        "still valid for the token exchange right after sign-in"
    );

    let userinfo = format!("{issuer}/userinfo");
    let access = tokens["access_token"].as_str().unwrap();
    let info = userinfo_at(&env, &userinfo, access).await;
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(info["nhsid_nrbac_roles"].as_array().unwrap().len(), 2);
    assert_eq!(
        userinfo_at(&env, &userinfo, access).await,
        info,
        "proxied again with the same token"
    );

    end_session(&env, &tokens).await;
    check_logout_token(
        &env,
        &backchannel,
        &jwks,
        &["RS256", "RS512"],
        client_id,
        &claims,
    )
    .await;
}

/// NHS Notify (`NHSDigital/nhs-notify-iam-webauth`, §16): AWS Cognito federating to CIS2 with
/// `<issuer>/authorize`, `/access_token`, `/userinfo` and `/connect/jwk_uri` hard-coded; its
/// authorize proxy adds `acr_values=AAL2_OR_AAL3_ANY` and `prompt=login` to Cognito's request,
/// which carries state and Cognito's own nonce (inferred: §16 does not say, Cognito sends one);
/// its token proxy adds private_key_jwt RS512 signed by a KMS key (`kid` = the KMS key id),
/// UUID `jti`, `exp` +300 s, beside Cognito's `client_id`; scopes `openid profile email
/// nhsperson associatedorgs`, no PKCE. It wants `id_assurance_level` ≥ 3,
/// `authentication_assurance_level` ≥ 2, `auth_time` within 60 s of its clock when the code is
/// redeemed, and maps the userinfo profile claims and `nhsid_user_orgs`. No back-channel.
#[tokio::test]
async fn nhs_notify_cognito() {
    let env = cis2_env().await;
    let uuid = "930000000008";
    let (card, _) = staff(&env, uuid, &[NURSE, IMMS]).await;
    let kid = "mrk-1234abcd12ab34cd56ef1234567890ab";
    let key = rp_key("RS512", kid);
    let redirect = "https://auth.notify.example.nhs.uk/oauth2/idpresponse";
    let client = env
        .client(ClientRequest {
            client_name: "NHS Notify".into(),
            redirect_uris: vec![redirect.into()],
            auth_method: Some("private_key_jwt".into()),
            jwks_uri: Some(serve_jwks(key.jwks()).await),
            token_endpoint_auth_signing_alg: Some("RS512".into()),
            allow_missing_pkce: true,
            ..Default::default()
        })
        .await;
    let client_id = client.client.metadata.client_id.as_str();
    let issuer = env.issuer.clone();

    let (state, nonce) = (random(40), random(43));
    let url = url_with(
        &format!("{issuer}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("scope", "openid profile email nhsperson associatedorgs"),
            ("state", &state),
            ("nonce", &nonce),
            ("acr_values", "AAL2_OR_AAL3_ANY"),
            ("prompt", "login"),
        ],
    );
    let code = callback_code(&sign_in(&env, &card, &url, None).await, redirect, &state);

    let token_endpoint = format!("{issuer}/access_token");
    let jti = uuid::Uuid::new_v4().to_string();
    let assertion = signed_assertion(
        &key,
        &AssertionSpec {
            kid: Some(kid),
            typ: Some("JWT"),
            client_id,
            aud: &token_endpoint,
            iat: rp_now(&env),
            lifetime: 300,
            jti: &jti,
        },
    );
    let tokens = redeem_at(
        &env,
        &token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    let redeemed_at = rp_now(&env);
    let (_, claims) = verify_jwt(
        &env,
        tokens["id_token"].as_str().unwrap(),
        &format!("{issuer}/connect/jwk_uri"),
        &["RS256"],
        false,
    )
    .await;
    check_id_token(&claims, &env, client_id, &tokens, Some(&nonce), uuid);
    assert!(level(&claims, "id_assurance_level").1 >= 3);
    check_aal2_or_better(&claims);
    assert!(
        (redeemed_at - claims["auth_time"].as_i64().unwrap()).abs() <= 60,
        "auth_time within 60 s of the RP's clock at token exchange"
    );

    let info = userinfo_at(
        &env,
        &format!("{issuer}/userinfo"),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(info["nhsid_useruid"], claims["sub"]);
    for (name, value) in [
        ("email", format!("jane.example{uuid}@example.nhs.uk")),
        ("given_name", "Jane".into()),
        ("middle_names", "Ann".into()),
        ("family_name", "Example".into()),
        ("idassurancelevel", "3".into()),
    ] {
        assert_eq!(info[name], value.as_str(), "{name}");
    }
    assert!(info["display_name"].as_str().is_some_and(|d| !d.is_empty()));
    let mut orgs: Vec<&str> = info["nhsid_user_orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["org_code"].as_str().unwrap())
        .collect();
    orgs.sort();
    assert_eq!(orgs, ["RZ8", "RZ9EX"]);
}

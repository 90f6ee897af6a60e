//! The card agent (issue 17): signing in with a card through `careid-agent`'s protocol, and
//! sign-out when the card leaves the reader. These tests play the agent in-process with the
//! virtual PIV card as the card (the PIV commands are the real ones); `pcsc.rs` runs the real
//! agent binary against `pcscd` and `vpcd`.

mod browser;
#[cfg(feature = "card-agent")]
mod pcsc;
mod protocol;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use careid::agent::client::{AgentClient, ClientError};
use careid::agent::piv;
use careid::agent::vcard::VirtualPiv;
use careid::domain::client::{ClientRequest, NewClient};
use careid::model::card_agent::{to_be_signed, AgentLoginRequest, AgentLoginResponse};
use careid::pki::Issued;

use crate::helpers::*;

pub const PIN: &str = "123456";

/// A relying party with a back-channel logout endpoint.
pub async fn rp_with_logout(env: &TestEnv) -> (NewClient, LogoutReceiver) {
    let receiver = LogoutReceiver::start(vec![]).await;
    let client = env
        .client(ClientRequest {
            client_name: "Ward round".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            backchannel_logout_uri: Some(receiver.uri.clone()),
            ..Default::default()
        })
        .await;
    (client, receiver)
}

/// A browser's sign-in waiting for the agent: its flow and the code its page shows.
pub struct AgentSignIn {
    pub browser: Browser,
    pub flow: String,
    pub code: String,
}

fn between<'a>(html: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let start = html.find(before)? + before.len();
    let end = html[start..].find(after)? + start;
    Some(&html[start..end])
}

/// Opens the sign-in page for `client` in a new browser (no certificate) and asks for a code.
pub async fn start(env: &TestEnv, client: &NewClient) -> AgentSignIn {
    let browser = env.browser(None);
    let page = browser
        .client
        .get(env.authorize_url(&client.client.metadata.client_id, &[], true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let flow = between(&page, "name=\"flow\" value=\"", "\"")
        .expect("the sign-in page names its flow")
        .to_string();
    let r = browser
        .client
        .post(env.endpoint("/login/agent"))
        .form(&[("flow", flow.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let code = between(&page, "id=\"agent-code\" aria-label=\"Sign-in code ", "\"")
        .expect("the agent page shows a code")
        .to_string();
    AgentSignIn {
        browser,
        flow,
        code,
    }
}

impl AgentSignIn {
    /// The browser finishes (after the card has signed): the raw answer.
    pub async fn finish(&self, env: &TestEnv) -> reqwest::Response {
        self.browser
            .client
            .post(env.endpoint("/login/agent/complete"))
            .form(&[("flow", self.flow.as_str()), ("code", self.code.as_str())])
            .send()
            .await
            .unwrap()
    }

    /// Finishes and redeems the code: the relying party's tokens.
    pub async fn tokens(&self, env: &TestEnv, client: &NewClient) -> serde_json::Value {
        let r = self.finish(env).await;
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
        let code = query_param(&location(&r), "code").expect("a code for the RP");
        env.redeem(client, &code).await.json().await.unwrap()
    }
}

pub fn agent(env: &TestEnv) -> AgentClient {
    AgentClient::new(&env.issuer, Some(env.pki.server_ca.pem().as_bytes())).unwrap()
}

pub fn virtual_card(card: &Issued) -> VirtualPiv {
    VirtualPiv::new(card.der.clone(), card.key_pem.as_bytes(), PIN).unwrap()
}

/// What the agent does with a card for a code: challenge, PIN, signature, login.
pub async fn card_signs(
    env: &TestEnv,
    code: &str,
    card: &mut VirtualPiv,
) -> Result<AgentLoginResponse, ClientError> {
    let agent = agent(env);
    let challenge = agent.challenge(code).await?;
    piv::select(card).unwrap();
    let certificate = piv::read_auth_certificate(card).unwrap();
    piv::verify_pin(card, PIN).unwrap();
    let message = to_be_signed(&env.issuer, &challenge.challenge_id, &challenge.nonce);
    let algorithm = piv::key_algorithm(&certificate).unwrap();
    let signature = piv::sign(card, algorithm, &message).unwrap();
    agent
        .login(&AgentLoginRequest {
            challenge_id: challenge.challenge_id,
            certificates: vec![STANDARD.encode(&certificate)],
            signature: URL_SAFE_NO_PAD.encode(signature),
        })
        .await
}

/// A signed-in user through the agent: the tokens, and the agent's token.
pub async fn signed_in(
    env: &TestEnv,
    client: &NewClient,
    card: &Issued,
) -> (serde_json::Value, AgentLoginResponse, AgentSignIn) {
    let sign_in = start(env, client).await;
    let login = card_signs(env, &sign_in.code, &mut virtual_card(card))
        .await
        .unwrap();
    let tokens = sign_in.tokens(env, client).await;
    (tokens, login, sign_in)
}

pub fn refusal_code(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Refused { status, code, .. } => (status, code),
        other => panic!("expected a refusal, got {other}"),
    }
}

//! The agent's calls to careid (`/agent/v1`, `docs/agent.md`), over HTTPS with the system's
//! roots or a given CA file. A refusal carries the server's problem detail.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::card_agent::{
    AgentLoginRequest, AgentLoginResponse, BindingStatus, ChallengeRequest, ChallengeResponse,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// careid could not be reached (or did not answer): worth retrying.
    #[error("careid could not be reached: {0}")]
    Unreachable(String),
    /// careid answered with a refusal: `code` is the problem's code, `detail` its words.
    #[error("careid refused: {detail}")]
    Refused {
        status: u16,
        code: String,
        detail: String,
    },
    #[error("{0}")]
    Setup(String),
}

pub struct AgentClient {
    issuer: String,
    http: reqwest::Client,
}

impl AgentClient {
    /// A client of the careid at `issuer`, trusting `ca_pem` as well as the system's roots.
    pub fn new(issuer: &str, ca_pem: Option<&[u8]>) -> Result<AgentClient, ClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| ClientError::Setup(format!("the CA file: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(AgentClient {
            issuer: issuer.trim_end_matches('/').to_string(),
            http: builder
                .build()
                .map_err(|e| ClientError::Setup(e.to_string()))?,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
        token: Option<&str>,
    ) -> Result<T, ClientError> {
        let mut req = self.http.post(format!("{}/agent/v1/{path}", self.issuer));
        if let Some(body) = body {
            let json = serde_json::to_vec(body).map_err(|e| ClientError::Setup(e.to_string()))?;
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(json);
        }
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let r = req
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let status = r.status().as_u16();
        let bytes = r
            .bytes()
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        if status >= 500 {
            return Err(ClientError::Unreachable(format!(
                "careid answered {status}"
            )));
        }
        if status != 200 {
            let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(ClientError::Refused {
                status,
                code: problem["code"].as_str().unwrap_or("").to_string(),
                detail: problem["detail"]
                    .as_str()
                    .unwrap_or("no detail")
                    .to_string(),
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Unreachable(format!("an answer careid should not give: {e}")))
    }

    pub async fn challenge(&self, code: &str) -> Result<ChallengeResponse, ClientError> {
        let body = ChallengeRequest { code: code.into() };
        self.post("challenge", Some(&body), None).await
    }

    pub async fn login(&self, body: &AgentLoginRequest) -> Result<AgentLoginResponse, ClientError> {
        self.post("login", Some(body), None).await
    }

    pub async fn heartbeat(&self, token: &str) -> Result<BindingStatus, ClientError> {
        self.post::<(), _>("heartbeat", None, Some(token)).await
    }

    pub async fn removed(&self, token: &str) -> Result<BindingStatus, ClientError> {
        self.post::<(), _>("removed", None, Some(token)).await
    }

    /// Tells careid the card has gone, retrying (1 s, 2 s, ... up to 10 s apart) for as long
    /// as careid cannot be reached. A refusal is final (the sign-in has ended already).
    pub async fn removed_until_delivered(&self, token: &str) -> Result<BindingStatus, ClientError> {
        let mut wait = Duration::from_millis(500);
        loop {
            match self.removed(token).await {
                Err(ClientError::Unreachable(why)) => {
                    eprintln!(
                        "careid-agent: could not report the removal ({why}); retrying in {wait:?}"
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                other => return other,
            }
        }
    }
}

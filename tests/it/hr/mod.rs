//! The HR feed: events in through the API and files, applied exactly once and in recorded
//! order per person; parked events replayed once fixed; leavers, movers and future dates; the
//! RA's side (mappings, detail changes) and the reconciliation report.

use careid::domain::client::{ClientRequest, NewClient};
use careid::domain::ra::hr::NewPositionMap;
use careid::domain::rbac;
use serde_json::{json, Value};

use crate::helpers::*;

mod attacks;
mod events;
mod import;
mod lifecycle;
mod ra_side;

const SAMPLE: &str = include_str!("../../../config/rbac-sample.json");
pub const DAY: i64 = 86_400;

/// A server with the sample RBAC data, two mapped HR positions at RZ9 and an HR feed client.
pub struct Hr {
    pub env: TestEnv,
    pub token: String,
    /// Access-control positions the HR positions NURSE-B5 and SISTER-B7 map to.
    pub nurse: String,
    pub sister: String,
}

pub async fn map(env: &TestEnv, hr_position: &str, position_id: &str) -> Value {
    let mapped = env
        .server
        .provider
        .admin_map_hr_position(
            &ra_manager(),
            NewPositionMap {
                org_code: "RZ9".into(),
                hr_position: hr_position.into(),
                position_id: position_id.into(),
                approved_by: "IG Steering Group, 2026-11-20".into(),
            },
        )
        .await
        .unwrap();
    serde_json::to_value(mapped).unwrap()
}

/// An HR feed client for `orgs`, and its client-credentials token.
pub async fn feed_client(env: &TestEnv, orgs: &[&str]) -> (NewClient, String) {
    let feed = env
        .client(ClientRequest {
            client_name: "ESR interface".into(),
            hr_feed_orgs: orgs.iter().map(|o| o.to_string()).collect(),
            ..Default::default()
        })
        .await;
    let token = client_token(env, &feed).await;
    (feed, token)
}

/// A client-credentials access token for `client`.
pub async fn client_token(env: &TestEnv, client: &NewClient) -> String {
    let r: Value = env
        .http()
        .post(env.endpoint("/token"))
        .basic_auth(&client.client.metadata.client_id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a token: {r}"))
        .to_string()
}

pub async fn setup() -> Hr {
    setup_with(Options::default()).await
}

pub async fn setup_with(opts: Options) -> Hr {
    let env = TestEnv::start_with(opts).await;
    rbac::import(&env.db, SAMPLE, "test", env.now())
        .await
        .unwrap();
    let nurse = position_at_rz9(&env, "hr-nurse", "Staff Nurse (HR)", "R8001").await;
    let sister = position_at_rz9(&env, "hr-sister", "Ward Sister (HR)", "R8000").await;
    map(&env, "NURSE-B5", &nurse).await;
    map(&env, "SISTER-B7", &sister).await;
    let (_, token) = feed_client(&env, &["RZ9"]).await;
    Hr {
        env,
        token,
        nurse,
        sister,
    }
}

/// An RFC 3339 time `secs` from the test clock's now.
pub fn at(env: &TestEnv, secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(env.now() + secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

impl Hr {
    /// Sends a batch; the status and the answer.
    pub async fn send(&self, events: Vec<Value>) -> (u16, Value) {
        send_with(&self.env, Some(&self.token), json!({ "events": events })).await
    }

    /// Sends a batch that must be accepted; the report.
    pub async fn ok(&self, events: Vec<Value>) -> Value {
        let (status, report) = self.send(events).await;
        assert_eq!(status, 200, "{report}");
        report
    }

    /// A starter at RZ9 in `hr_position` from `starts_in` seconds from now.
    pub fn starter(
        &self,
        id: &str,
        person: &str,
        hr_position: &str,
        starts_in: i64,
        recorded: i64,
    ) -> Value {
        json!({ "event_id": id, "kind": "starter", "org_code": "RZ9", "person_id": person,
            "recorded_at": at(&self.env, recorded), "assignment_id": format!("{person}-1"),
            "hr_position": hr_position, "starts_on": at(&self.env, starts_in) })
    }

    pub fn link(&self, id: &str, person: &str, uuid: &str, recorded: i64) -> Value {
        json!({ "event_id": id, "kind": "identity_link", "org_code": "RZ9", "person_id": person,
            "recorded_at": at(&self.env, recorded), "uuid": uuid })
    }

    pub fn mover(
        &self,
        id: &str,
        person: &str,
        hr_position: &str,
        from: i64,
        recorded: i64,
    ) -> Value {
        json!({ "event_id": id, "kind": "assignment_change", "org_code": "RZ9", "person_id": person,
            "recorded_at": at(&self.env, recorded), "assignment_id": format!("{person}-1"),
            "hr_position": hr_position, "effective_from": at(&self.env, from) })
    }

    pub fn leaver(&self, id: &str, person: &str, leaving_in: i64, recorded: i64) -> Value {
        json!({ "event_id": id, "kind": "leaver", "org_code": "RZ9", "person_id": person,
            "recorded_at": at(&self.env, recorded), "leaving_on": at(&self.env, leaving_in) })
    }

    /// The position ids of the person's current roles.
    pub async fn current_positions(&self, uuid: &str) -> Vec<String> {
        let mut p: Vec<String> = self
            .env
            .db
            .current_assignments(uuid, self.env.now())
            .await
            .unwrap()
            .into_iter()
            .map(|(a, _)| a.position_id)
            .collect();
        p.sort();
        p
    }

    /// Every assignment the person has ever held: (position, starts, ends).
    pub async fn all_assignments(&self, uuid: &str) -> Vec<(String, i64, Option<i64>)> {
        let mut v: Vec<_> = self
            .env
            .db
            .live_assignments(uuid, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.position_id, a.starts_at, a.ends_at))
            .collect();
        v.sort();
        v
    }
}

pub async fn send_with(env: &TestEnv, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = env
        .http()
        .post(format!(
            "https://localhost:{}/hr/api/v1/events",
            env.server.main_addr.port()
        ))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The ids in a report's list.
pub fn ids(report: &Value, list: &str) -> Vec<String> {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v.as_str()
                .map(String::from)
                .unwrap_or_else(|| v["event_id"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

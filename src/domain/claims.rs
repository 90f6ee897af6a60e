//! What careid's tokens and userinfo say, in CIS2's claim names and formats
//! (`../shared/reference/cis2.md` §5–§7): the ID token carries identity and assurance, profile
//! claims come from userinfo, and claims are released only under the scopes that carry them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::rbac::RoleClaim;
use crate::clock::UnixTime;
pub use crate::model::grant::CodeGrant;
use crate::model::identity::User;

/// `at_hash`: left half of the SHA-256 of the access token, base64url (RS256, PS256 and ES256
/// all hash with SHA-256).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

pub struct TokenTimes {
    pub now: UnixTime,
    pub id_token_ttl: i64,
    pub access_token_ttl: i64,
}

/// ID token claims (§6). `aud` is a plain string; `nonce` only when the request had one.
pub fn id_token(
    issuer: &str,
    grant: &CodeGrant,
    user: &User,
    access_token: &str,
    t: &TokenTimes,
) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("iss".into(), issuer.into());
    c.insert("sub".into(), user.uuid.clone().into());
    c.insert("subname".into(), user.uuid.clone().into());
    c.insert("aud".into(), grant.client_id.clone().into());
    c.insert("azp".into(), grant.client_id.clone().into());
    c.insert("iat".into(), t.now.into());
    c.insert("exp".into(), (t.now + t.id_token_ttl).into());
    c.insert("auth_time".into(), grant.auth_time.into());
    if let Some(nonce) = &grant.nonce {
        c.insert("nonce".into(), nonce.clone().into());
    }
    c.insert("at_hash".into(), at_hash(access_token).into());
    c.insert("sid".into(), grant.sid.clone().into());
    c.insert("acr".into(), grant.acr.clone().into());
    c.insert("amr".into(), json!([grant.amr]));
    c.insert(
        "id_assurance_level".into(),
        user.id_assurance_level.to_string().into(),
    );
    c.insert(
        "idassurancelevel".into(),
        user.id_assurance_level.to_string().into(),
    );
    c.insert(
        "authentication_assurance_level".into(),
        grant.aal.to_string().into(),
    );
    if let Some(role) = &grant.selected_roleid {
        c.insert("selected_roleid".into(), role.clone().into());
    }
    c
}

/// Access token claims (RFC 9068, `typ` `at+jwt`). Returns the claims and the token's `jti`.
pub fn access_token(
    issuer: &str,
    grant: &CodeGrant,
    t: &TokenTimes,
) -> (Map<String, Value>, String) {
    let jti = uuid::Uuid::new_v4().to_string();
    let mut c = Map::new();
    c.insert("iss".into(), issuer.into());
    c.insert("sub".into(), grant.user_uuid.clone().into());
    c.insert("aud".into(), grant.client_id.clone().into());
    c.insert("client_id".into(), grant.client_id.clone().into());
    c.insert("iat".into(), t.now.into());
    c.insert("exp".into(), (t.now + t.access_token_ttl).into());
    c.insert("jti".into(), jti.clone().into());
    c.insert("scope".into(), grant.scopes.join(" ").into());
    c.insert("auth_time".into(), grant.auth_time.into());
    c.insert("acr".into(), grant.acr.clone().into());
    c.insert("amr".into(), json!([grant.amr]));
    c.insert("sid".into(), grant.sid.clone().into());
    c.insert(
        "authentication_assurance_level".into(),
        grant.aal.to_string().into(),
    );
    if let Some(role) = &grant.selected_roleid {
        c.insert("selected_roleid".into(), role.clone().into());
    }
    (c, jti)
}

/// What userinfo says about a user's roles (filled from current assignments when asked for).
#[derive(Debug, Default)]
pub struct RoleInfo {
    pub roles: Vec<RoleClaim>,
    pub orgs: Value,
    pub selected_roleid: Option<String>,
    /// Professional registration numbers by body (for `professionalmemberships`).
    pub registrations: std::collections::BTreeMap<String, String>,
}

/// `nhsid_org_memberships` (§5): the person's membership of each organisation where they hold a
/// current role, with its `person_orgid` (`gnc`, the GP national code, is not recorded, so it is
/// left out). Always an array.
fn org_memberships(roles: &RoleInfo) -> Value {
    let orgs = roles.orgs.as_array().map(Vec::as_slice).unwrap_or_default();
    let memberships = orgs.iter().filter_map(|o| {
        let code = o["org_code"].as_str()?;
        let role = roles.roles.iter().find(|r| r.org_code == code)?;
        Some(json!({ "person_orgid": role.person_orgid, "org_name": o["org_name"], "org_code": code }))
    });
    Value::Array(memberships.collect())
}

/// Userinfo claims for the granted scopes (§5). `sub` is always present and equals the ID token's.
/// Role claims are arrays, never absent (`[]` for a user with no current role): relying parties
/// crash on a missing `nhsid_nrbac_roles` or `nhsid_user_orgs`.
pub fn userinfo(user: &User, scopes: &[String], roles: &RoleInfo) -> Map<String, Value> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut c = Map::new();
    c.insert("sub".into(), user.uuid.clone().into());
    if has("profile") {
        c.insert("name".into(), user.display_name().into());
        c.insert("given_name".into(), user.given_name.clone().into());
        c.insert("family_name".into(), user.family_name.clone().into());
        c.insert("uid".into(), user.uuid.clone().into());
    }
    if has("email") {
        if let Some(email) = &user.email {
            c.insert("email".into(), email.clone().into());
        }
    }
    if has("nhsperson") {
        c.insert("nhsid_useruid".into(), user.uuid.clone().into());
        if let Some(title) = &user.title {
            c.insert("title".into(), title.clone().into());
        }
        if let Some(middle) = &user.middle_names {
            c.insert("middle_names".into(), middle.clone().into());
        }
        c.insert("initials".into(), initials(user).into());
        c.insert("display_name".into(), user.display_name().into());
        c.insert(
            "idassurancelevel".into(),
            user.id_assurance_level.to_string().into(),
        );
    }
    if has("associatedorgs") {
        let orgs = if roles.orgs.is_array() {
            roles.orgs.clone()
        } else {
            json!([])
        };
        c.insert("nhsid_user_orgs".into(), orgs);
    }
    if has("professionalmemberships") {
        for (body, number) in &roles.registrations {
            c.insert(format!("{body}_id"), number.clone().into());
        }
    }
    if has("organisationalmemberships") {
        c.insert("nhsid_org_memberships".into(), org_memberships(roles));
    }
    if has("nationalrbacaccess") {
        c.insert(
            "nhsid_nrbac_roles".into(),
            serde_json::to_value(&roles.roles).unwrap_or_else(|_| json!([])),
        );
    }
    if let Some(role) = &roles.selected_roleid {
        c.insert("selected_roleid".into(), role.clone().into());
    }
    c
}

fn initials(user: &User) -> String {
    std::iter::once(user.given_name.as_str())
        .chain(user.middle_names.as_deref().unwrap_or("").split(' '))
        .filter_map(|n| n.chars().next())
        .collect::<String>()
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::identity::UserStatus;

    fn user() -> User {
        User {
            uuid: "012345678901".into(),
            title: Some("Dr".into()),
            given_name: "Jane".into(),
            middle_names: Some("Ann".into()),
            family_name: "Example".into(),
            email: Some("jane@example.nhs.uk".into()),
            id_assurance_level: 3,
            status: UserStatus::Active,
        }
    }

    fn grant(nonce: Option<&str>) -> CodeGrant {
        CodeGrant {
            client_id: "123456789012.apps.national".into(),
            redirect_uri: "https://rp/cb".into(),
            user_uuid: "012345678901".into(),
            sid: "sid-1".into(),
            scopes: vec!["openid".into()],
            nonce: nonce.map(String::from),
            code_challenge: None,
            acr: "AAL3_ANY".into(),
            amr: "N3_SMARTCARD".into(),
            aal: 3,
            auth_time: 990,
            issued_at: 995,
            selected_roleid: None,
        }
    }

    const T: TokenTimes = TokenTimes {
        now: 1000,
        id_token_ttl: 600,
        access_token_ttl: 3599,
    };

    #[test]
    fn id_token_has_cis2_claims_as_strings_and_no_nonce_unless_sent() {
        let c = id_token("https://idp:443/realm", &grant(None), &user(), "tok", &T);
        assert_eq!(c["aud"], "123456789012.apps.national");
        assert_eq!(c["amr"], json!(["N3_SMARTCARD"]));
        assert_eq!(c["authentication_assurance_level"], "3");
        assert_eq!(c["id_assurance_level"], "3");
        assert_eq!(c["auth_time"], 990);
        assert!(!c.contains_key("nonce"));
        let c = id_token("https://idp", &grant(Some("n1")), &user(), "tok", &T);
        assert_eq!(c["nonce"], "n1");
    }

    #[test]
    fn at_hash_is_left_half_of_sha256() {
        // Value from OpenID Connect Core examples is for RS256 of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn userinfo_releases_claims_only_under_their_scope() {
        let base = userinfo(&user(), &["openid".into()], &RoleInfo::default());
        assert_eq!(base.len(), 1);
        let all: Vec<String> = [
            "openid",
            "profile",
            "email",
            "nhsperson",
            "associatedorgs",
            "nationalrbacaccess",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = userinfo(&user(), &all, &RoleInfo::default());
        assert_eq!(c["uid"], "012345678901");
        assert_eq!(c["nhsid_useruid"], "012345678901");
        assert_eq!(c["initials"], "JA");
        assert_eq!(c["idassurancelevel"], "3");
        assert_eq!(c["nhsid_nrbac_roles"], json!([]));
        assert_eq!(c["nhsid_user_orgs"], json!([]));
    }

    #[test]
    fn org_memberships_name_each_organisation_of_a_current_role_with_its_person_orgid() {
        let role = |org: &str, orgid: &str, id: &str| crate::model::rbac::RoleClaim {
            person_orgid: orgid.into(),
            person_roleid: id.into(),
            org_code: org.into(),
            role_name: "r".into(),
            role_code: "S0:G0:R8001".into(),
            activities: vec![],
            activity_codes: vec![],
            workgroups: vec![],
            workgroups_codes: vec![],
            aow: vec![],
            aow_codes: vec![],
        };
        let roles = RoleInfo {
            roles: vec![
                role("RZ9", "111", "a"),
                role("RZ9", "111", "b"),
                role("RZ8", "222", "c"),
            ],
            orgs: json!([{ "org_code": "RZ9", "org_name": "ACUTE" }, { "org_code": "RZ8", "org_name": "CARE" }]),
            selected_roleid: None,
            registrations: [("gmc".to_string(), "7654321".to_string())].into(),
        };
        let scopes = vec![
            "openid".to_string(),
            "organisationalmemberships".to_string(),
        ];
        let c = userinfo(&user(), &scopes, &roles);
        assert_eq!(
            c["nhsid_org_memberships"],
            json!([
                { "person_orgid": "111", "org_name": "ACUTE", "org_code": "RZ9" },
                { "person_orgid": "222", "org_name": "CARE", "org_code": "RZ8" }
            ])
        );
        let none = userinfo(&user(), &scopes, &RoleInfo::default());
        assert_eq!(none["nhsid_org_memberships"], json!([]), "always an array");
        assert!(
            !userinfo(&user(), &["openid".into()], &roles).contains_key("nhsid_org_memberships")
        );
        assert!(
            !c.contains_key("gmc_id"),
            "registrations only under professionalmemberships"
        );
        let scopes = vec!["openid".to_string(), "professionalmemberships".to_string()];
        assert_eq!(userinfo(&user(), &scopes, &roles)["gmc_id"], "7654321");
    }
}

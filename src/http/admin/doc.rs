//! The admin API's OpenAPI 3.1 document, generated: paths, parameters, bodies and success answers
//! from the handlers' `#[utoipa::path]` and the domain's typed requests and answers; problem
//! responses and each operation's rules (who may call it, on whom, what it audits) added here
//! from the permission table, so the document and `docs/ra-permissions.md` cannot disagree.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::domain::ra::authority::{self as op, Operation};

pub const PATH: &str = "/admin/api/v1/openapi.json";

/// Problem details (RFC 9457), as every admin error is sent (`application/problem+json`).
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)] // documents the shape `http::error::Problem` writes
pub struct ProblemDetails {
    /// Always `about:blank`: the status says what kind of problem it is.
    r#type: String,
    title: String,
    status: u16,
    /// What is wrong, for a person to read.
    detail: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "careid registration-authority API",
        version = "1",
        description = "Care Identity administration for Registration Authority staff. Authenticate with a careid access token issued to an admin client with the careid:admin scope, from an AAL3 sign-in with the selectedrole scope; the selected role's national job role decides the RA role (R5080/R5072 RA Manager, R5090 RA Agent), at that role's organisation only. Nobody may act on their own identity; RA staff are acted on only by an RA Manager of their organisation (docs/ra-permissions.md). Errors are problem details (RFC 9457)."
    ),
    components(schemas(ProblemDetails)),
    modifiers(&BearerScheme),
    security(("bearer" = []))
)]
struct Base;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT (careid access token)")
            .description(Some("An active careid access token issued to an admin client (careid clients add --admin) with the careid:admin scope, from an AAL3 sign-in with selectedrole. Tokens any other client received are refused with 403."))
            .build();
        if let Some(components) = api.components.as_mut() {
            components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        }
    }
}

/// The document before the routes are added.
pub fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

/// Each handler (its `operation_id`) and the permission-table row it carries out.
const OPERATION_OF: &[(&str, Operation)] = &[
    ("search", op::SEARCH),
    ("show", op::SHOW),
    ("create", op::CREATE_IDENTITY),
    ("update", op::UPDATE_DETAILS),
    ("verify", op::VERIFY),
    ("suspend", op::SET_STATUS),
    ("reinstate", op::SET_STATUS),
    ("close", op::SET_STATUS),
    ("bind_card", op::BIND_SMARTCARD),
    ("list_authenticators", op::LIST_AUTHENTICATORS),
    ("revoke_authenticator", op::REVOKE_AUTHENTICATOR),
    ("revoke_smartcard", op::REVOKE_AUTHENTICATOR),
    ("suspend_authenticator", op::SUSPEND_AUTHENTICATOR),
    ("unlock_authenticator", op::UNLOCK_AUTHENTICATOR),
    ("invite_authenticator", op::INVITE),
    ("issue_tac", op::ISSUE_TAC),
    ("return_tac", op::RETURN_TAC),
    ("grant_ra_role", op::GRANT_RA_ROLE),
    ("end_ra_role", op::END_RA_ROLE),
    ("assign", op::ASSIGN),
    ("end_assignment", op::END_ASSIGNMENT),
    ("create_position", op::CREATE_POSITION),
    ("request_access", op::REQUEST_ACCESS),
    ("list_access_requests", op::LIST_REQUESTS),
    ("approve_access", op::DECIDE_REQUEST),
    ("reject_access", op::DECIDE_REQUEST),
    ("fulfil_access", op::FULFIL_REQUEST),
    ("list_positions", op::LIST_POSITIONS),
    ("correct_position", op::CORRECT_POSITION),
    ("retire_position", op::RETIRE_POSITION),
    ("list_tacs", op::LIST_TACS),
    ("record_photo", op::RECORD_PHOTO),
    ("show_photo", op::SHOW_PHOTO),
    ("list_hr_maps", op::LIST_HR_MAPS),
    ("map_hr_position", op::MAP_HR_POSITION),
    ("unmap_hr_position", op::UNMAP_HR_POSITION),
    ("hr_attention", op::HR_ATTENTION),
    ("list_detail_changes", op::LIST_DETAIL_CHANGES),
    ("approve_detail_change", op::DECIDE_DETAIL_CHANGE),
    ("reject_detail_change", op::DECIDE_DETAIL_CHANGE),
    ("report", op::REPORTS),
    ("audit", op::AUDIT),
];

/// The problem responses every operation may answer.
const PROBLEMS: &[(&str, &str)] = &[
    ("400", "The request is not valid (body, query or a rule of the operation)"),
    ("401", "No active careid access token"),
    ("403", "The token is not an admin client's, or the caller's RA role may not do this here or to this person"),
    ("404", "No such person, position, request or resource at the caller's organisation"),
    ("409", "It conflicts with what is recorded (e.g. already bound, already decided)"),
    ("500", "The server could not complete the request"),
];

/// The HTTP methods an OpenAPI path item may hold.
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

/// The finished document as JSON: every operation gets its rules and the problem responses.
pub fn finish(api: utoipa::openapi::OpenApi) -> String {
    let mut doc = serde_json::to_value(api).expect("an OpenAPI document serialises");
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            for method in METHODS {
                if let Some(operation) = item.get_mut(*method) {
                    describe(operation);
                }
            }
        }
    }
    serde_json::to_string_pretty(&doc).expect("JSON serialises")
}

fn describe(operation: &mut Value) {
    let id = operation["operationId"].as_str().unwrap_or_default();
    if let Some((_, rule)) = OPERATION_OF.iter().find(|(name, _)| *name == id) {
        let summary = operation["description"].as_str().unwrap_or_default();
        let rules = format!(
            "{summary}\n\nAllowed to: {}. On: {}. Audited as: {}.",
            rule.who().join(", "),
            rule.target.describe(),
            rule.audited_as()
        );
        operation["summary"] = json!(capitalised(rule.name));
        operation["description"] = json!(rules.trim_start());
    }
    let problem = json!({ "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } });
    for (status, description) in PROBLEMS {
        operation["responses"][*status] = json!({ "description": description, "content": problem });
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

pub async fn serve(document: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Routes served under another name than the permission table's (kept for older clients).
    const ALIASES: &[&str] = &["revoke_smartcard"];

    fn document() -> Value {
        let (_, api) = super::super::documented_routes().split_for_parts();
        serde_json::from_str(&finish(api)).unwrap()
    }

    /// Every (operation_id, METHOD path-under-/admin/api/v1) the document holds.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                if let Some(o) = item.get(*method) {
                    let route = format!(
                        "{} {}",
                        method.to_uppercase(),
                        path.trim_start_matches("/admin/api/v1")
                    );
                    out.push((o["operationId"].as_str().unwrap().into(), route, o.clone()));
                }
            }
        }
        out
    }

    /// The routes a permission-table row names: `{a,b}` segments are alternatives, and a query
    /// (`?q=`) is not part of the route.
    fn table_routes(route: &str) -> Vec<String> {
        let route = route.split('?').next().unwrap();
        let mut out = vec![String::new()];
        for (i, part) in route.split('/').enumerate() {
            let choices: Vec<&str> = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            {
                Some(inner) if inner.contains(',') => inner.split(',').collect(),
                _ => vec![part],
            };
            out = out
                .iter()
                .flat_map(|prefix| {
                    choices.iter().map(move |c| {
                        if i == 0 {
                            c.to_string()
                        } else {
                            format!("{prefix}/{c}")
                        }
                    })
                })
                .collect();
        }
        out
    }

    #[test]
    fn every_route_is_documented_with_its_rule_answer_and_problems() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let documented = operations(&doc);
        assert_eq!(
            documented.len(),
            OPERATION_OF.len(),
            "one documented operation per handler"
        );
        for (id, route, o) in &documented {
            let (_, rule) = OPERATION_OF
                .iter()
                .find(|(name, _)| name == id)
                .unwrap_or_else(|| panic!("{id} ({route}) has no row in the permission table"));
            if !ALIASES.contains(&id.as_str()) {
                assert!(
                    table_routes(rule.route).contains(route),
                    "{id}: served at {route}, but the permission table says {}",
                    rule.route
                );
            }
            let success = o["responses"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(status, _)| status.starts_with('2'))
                .unwrap_or_else(|| panic!("{id}: no success answer documented"));
            assert!(
                success.1["content"]["application/json"]["schema"].is_object(),
                "{id}: the success answer has no schema"
            );
            for (status, _) in PROBLEMS {
                assert_eq!(
                    o["responses"][*status]["content"]["application/problem+json"]["schema"]
                        ["$ref"],
                    "#/components/schemas/Problem",
                    "{id}: problem {status} documented"
                );
            }
            let description = o["description"].as_str().unwrap();
            assert!(description.contains("Allowed to: "), "{id}: {description}");
        }
    }

    #[test]
    fn every_row_of_the_permission_table_is_served() {
        let doc = document();
        let served: BTreeSet<String> = operations(&doc).into_iter().map(|(_, r, _)| r).collect();
        for rule in op::OPERATIONS {
            for route in table_routes(rule.route) {
                assert!(
                    served.contains(&route),
                    "{} ({route}) is not served",
                    rule.name
                );
            }
        }
    }

    #[test]
    fn schemas_referenced_are_defined() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "schema {name} is referenced but not defined"
            );
        }
    }

    #[test]
    fn routes_are_only_added_with_their_documentation() {
        // `routes!` documents what it serves; a plain `.route(` would serve an undocumented
        // operation. Only the document itself and the problem-details fallback are plain routes.
        let source = include_str!("mod.rs");
        assert_eq!(
            source.matches(".route(").count(),
            2,
            "plain routes in http/admin/mod.rs"
        );
    }
}

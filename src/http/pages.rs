//! Server-rendered pages (minijinja templates compiled into the binary). Pages are plain HTML,
//! with JavaScript (`static/webauthn.js`) only for the WebAuthn calls, a skip link, headings and labels for screen readers, and text that tells a
//! person what happened and what to do next.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value};

tokio::task_local! {
    /// The issuer's path (`""` at the root) for the request being handled: set by
    /// [`with_issuer_path`] on every listener.
    pub static ISSUER_PATH: std::sync::Arc<str>;
}

/// Middleware: makes the issuer's path known to the pages rendered for this request.
pub async fn with_issuer_path(
    axum::extract::State(path): axum::extract::State<std::sync::Arc<str>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    ISSUER_PATH.scope(path, next.run(request)).await
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, text) in [
            ("base.html", include_str!("../../templates/base.html")),
            ("login.html", include_str!("../../templates/login.html")),
            ("agent.html", include_str!("../../templates/agent.html")),
            ("message.html", include_str!("../../templates/message.html")),
            ("terms.html", include_str!("../../templates/terms.html")),
            (
                "logout_confirm.html",
                include_str!("../../templates/logout_confirm.html"),
            ),
            (
                "role_select.html",
                include_str!("../../templates/role_select.html"),
            ),
            (
                "webauthn_register.html",
                include_str!("../../templates/webauthn_register.html"),
            ),
            ("account.html", include_str!("../../templates/account.html")),
            (
                "invitation_handover.html",
                include_str!("../../templates/invitation_handover.html"),
            ),
            (
                "ra/layout.html",
                include_str!("../../templates/ra/layout.html"),
            ),
            (
                "ra/message.html",
                include_str!("../../templates/ra/message.html"),
            ),
            ("ra/form.html", include_str!("../../templates/ra/form.html")),
            (
                "onboarding/layout.html",
                include_str!("../../templates/onboarding/layout.html"),
            ),
            (
                "onboarding/message.html",
                include_str!("../../templates/onboarding/message.html"),
            ),
            (
                "onboarding/home.html",
                include_str!("../../templates/onboarding/home.html"),
            ),
            (
                "onboarding/test_identity.html",
                include_str!("../../templates/onboarding/test_identity.html"),
            ),
            (
                "onboarding/promotions.html",
                include_str!("../../templates/onboarding/promotions.html"),
            ),
            ("ra/home.html", include_str!("../../templates/ra/home.html")),
            (
                "ra/people.html",
                include_str!("../../templates/ra/people.html"),
            ),
            (
                "ra/person.html",
                include_str!("../../templates/ra/person.html"),
            ),
            (
                "ra/invitation.html",
                include_str!("../../templates/ra/invitation.html"),
            ),
            (
                "ra/requests.html",
                include_str!("../../templates/ra/requests.html"),
            ),
            (
                "ra/reports.html",
                include_str!("../../templates/ra/reports.html"),
            ),
            (
                "ra/audit.html",
                include_str!("../../templates/ra/audit.html"),
            ),
            (
                "ra/associate.html",
                include_str!("../../templates/ra/associate.html"),
            ),
            (
                "ra/positions.html",
                include_str!("../../templates/ra/positions.html"),
            ),
            ("ra/hr.html", include_str!("../../templates/ra/hr.html")),
        ] {
            env.add_template(name, text).expect("templates are valid");
        }
        env.add_filter("when", when);
        env.add_filter("json", |v: Value| {
            serde_json::to_string(&v).unwrap_or_default()
        });
        env
    })
}

/// A Unix time as people read it: `2026-12-04 16:31 UTC`.
fn when(t: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&format).ok())
        .unwrap_or_else(|| t.to_string())
}

pub const STYLESHEET: &str = include_str!("../../static/careid.css");

/// The Content-Security-Policy of every response. Forms post to careid only; a page whose form
/// ends in a redirect to a relying party adds that origin ([`allowing_form_target`]), since
/// browsers apply `form-action` to the redirect too.
pub const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Lets this page's forms end at `origin` (a relying party's redirect URI origin).
pub fn allowing_form_target(mut r: Response, origin: &str) -> Response {
    let ok = !origin.is_empty()
        && origin
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',');
    if ok {
        if let Ok(v) = HeaderValue::from_str(&format!("{CSP} {origin}")) {
            r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    r
}

pub struct Page;

impl Page {
    pub fn render(status: StatusCode, template: &str, ctx: Value) -> Response {
        // Pages link their stylesheet and scripts under the issuer's path, so a proxy that
        // forwards only that prefix serves them too.
        let path = ISSUER_PATH.try_with(|p| p.to_string()).unwrap_or_default();
        // A URL path from the configuration: shown as it is unless it holds a character that
        // means something in HTML (then escaped as usual).
        let static_base = if path.contains(['"', '\'', '<', '>', '&']) {
            minijinja::Value::from(path)
        } else {
            minijinja::Value::from_safe_string(path)
        };
        let ctx = minijinja::context! { static_base => static_base, ..ctx };
        match environment()
            .get_template(template)
            .and_then(|t| t.render(ctx))
        {
            Ok(html) => {
                let mut r = (status, Html(html)).into_response();
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(e) => {
                tracing::error!(error = %e, template, "template failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "careid could not show this page",
                )
                    .into_response()
            }
        }
    }

    /// A page that explains an error (or a final state) to a person.
    pub fn error(status: StatusCode, heading: &str, message: &str, request_id: &str) -> Response {
        Self::render(
            status,
            "message.html",
            minijinja::context! { title => heading, heading => heading, message => message, request_id => request_id },
        )
    }

    /// [`Page::error`] with a "Try again" link back to a page that still works.
    pub fn error_with_retry(
        status: StatusCode,
        heading: &str,
        message: &str,
        request_id: &str,
        retry_url: &str,
    ) -> Response {
        Self::render(
            status,
            "message.html",
            minijinja::context! { title => heading, heading => heading, message => message, request_id => request_id, retry_url => retry_url },
        )
    }

    pub fn message(heading: &str, message: &str) -> Response {
        Self::render(
            StatusCode::OK,
            "message.html",
            minijinja::context! { title => heading, heading => heading, message => message },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template_names(dir: &std::path::Path, prefix: &str) -> Vec<String> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().into_string().unwrap());
            if entry.file_type().unwrap().is_dir() {
                names.extend(template_names(&entry.path(), &format!("{name}/")));
            } else {
                names.push(name);
            }
        }
        names
    }

    #[test]
    fn every_template_file_is_registered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let names = template_names(&dir, "");
        assert!(names.iter().any(|n| n == "ra/person.html"), "{names:?}");
        for name in names {
            assert!(
                environment().get_template(&name).is_ok(),
                "templates/{name} is not registered in pages.rs"
            );
        }
    }

    /// Every console page renders with the values its handler passes (an unknown filter or a
    /// template error shows only at render time).
    #[test]
    fn every_console_template_renders() {
        let me = minijinja::context! { name => "Rita Manager", uuid => "555100000001", org_code => "RZ9",
        roles => vec!["RA Manager"], csrf => "t", can_register => true, can_requests => true, can_reports => true, can_positions => true };
        let event = minijinja::context! { at => 0, kind => "admin.tac_issued", outcome => "success", actor => "555100000001", client_id => "careid-ra-console", detail => minijinja::context! { uuid => "1" } };
        let field = minijinja::context! { name => "reason", label => "Reason", kind => "select", hint => "h", required => true, value => "a", error => "e",
        choices => vec![minijinja::context! { value => "a", label => "A" }] };
        let ctx = minijinja::context! {
            title => "t", heading => "h", message => "m", link => "/ra/signin", link_text => "Sign in", request_id => "r",
            me => me, ra => "/ra", warning => "RZ9 has 1 RA Manager", can_audit => true, q => "x", error => "e",
            found => vec![minijinja::context! { uuid => "1", given_name => "A", family_name => "B", status => "active", id_assurance_level => 3 }],
            form => minijinja::context! { title => "f", intro => vec!["i"], action => "/ra/x", submit => "Go", back => "/ra/", danger => true, warnings => vec!["w"], fields => vec![field] },
            errors => vec![("reason", "e")],
            person => minijinja::context! { uuid => "1", given_name => "A", family_name => "B", status => "suspended", status_reason => "r", status_changed_at => 0,
                id_assurance_level => 3, email => "e", professional_registrations => minijinja::context! { gmc => "7654321" }, roles => vec![minijinja::context! { role_name => "R", org_code => "RZ9", person_roleid => "p" }],
                personal_details => minijinja::context! { date_of_birth => "1990-01-01", ni_number => "AB123456C", work_phones => vec!["0100"] } },
            authenticators => vec![minijinja::context! { id => "a", kind => "tac", status => "active", serial => "s", expires_at => 5, last_used_at => 1 }],
            tacs => vec![minijinja::context! { id => "t", tac_name => "TAC 1", reason => "r", issued_at => 0, issued_by => "u", expires_at => 0 }],
            history => vec![event.clone()], now => 10, notice => "done", own => true,
            can_verify => true, can_edit => true, can_status => true, can_assign => true, can_cards => true, can_authenticators => true, can_tac => true, can_grant => true,
            sent => minijinja::context! { uuid => "1", handover_url => "https://x/webauthn/invitation?handover=h", expires_at => 0 }, back => "/ra/",
            requests => vec![minijinja::context! { id => "r1", uuid => "1", position_id => "p", reason => "r", requested_at => 0, requested_by => "u", status => "pending" }],
            positions => vec![minijinja::context! { id => "p", name => "Nurse", esr_position => "ESR 1", approved_by => "IG", holders => 0, retired_at => 5,
                profiles => vec![minijinja::context! { job_role => "R8001", org_code => "RZ9", activities => vec!["B0820"] }] }], status => "pending", can_decide => true, can_fulfil => true,
            reports => vec!["tacs-issued", "ra-activity"], quarter => "2026-Q4", events => vec![event],
            chain => minijinja::context! { intact => false, broken_at => 3, reason => "row altered" },
            can_details => true, can_attention => true,
            changes => vec![minijinja::context! { id => "c1", user_uuid => "1", person_id => "P1", org_code => "RZ9", core => true,
                changes => vec![minijinja::context! { field => "family_name", current => "Smith", proposed => "Jones" }] }],
            attention => vec![minijinja::context! { event_id => "E1", reason => "not linked" }],
            maps => vec![minijinja::context! { hr_position => "NURSE-B5", org_code => "RZ9", position_id => "p", approved_by => "IG" }],
        };
        for name in [
            "ra/message.html",
            "ra/form.html",
            "ra/home.html",
            "ra/people.html",
            "ra/person.html",
            "ra/invitation.html",
            "ra/requests.html",
            "ra/reports.html",
            "ra/audit.html",
            "ra/associate.html",
            "ra/positions.html",
            "ra/hr.html",
        ] {
            let html = environment()
                .get_template(name)
                .and_then(|t| t.render(ctx.clone()))
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(html.contains("<h1>"), "{name}");
        }
    }
}

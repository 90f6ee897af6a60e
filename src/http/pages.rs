//! Server-rendered pages (minijinja templates compiled into the binary). Pages are plain HTML,
//! with JavaScript (`static/webauthn.js`) only for the WebAuthn calls, a skip link, headings and labels for screen readers, and text that tells a
//! person what happened and what to do next.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value};

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, text) in [
            ("base.html", include_str!("../../templates/base.html")),
            ("login.html", include_str!("../../templates/login.html")),
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

    #[test]
    fn every_template_file_is_registered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                environment().get_template(&name).is_ok(),
                "templates/{name} is not registered in pages.rs"
            );
        }
    }
}
